/*
 * check_slots.c: zero-drain plugin changes (--ecds-slots, README
 * "Zero-drain changes (slots)"). One offline ADS stream (no gRPC) plays a
 * proxy that applies every ECDS config one at a time, in the order the
 * server sends them; after each one the test looks at the chain each
 * listener would run. For each kind of change: no LDS message, the final
 * chain is the one composed from scratch, and no state in between drops a
 * fail-closed extension or runs another extension twice.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/intern.h"
#include "base/log.h"
#include "base/map.h"
#include "server/ads/ads_impl.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "testutil.h"

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/wasm/v3/wasm.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#define N_NAMES 256

/* An extension of a test store. */
struct ext {
  const char *name;
  const char *phase;
  int priority;
  int fail_open;
};

static char *store_yaml(const struct ext *e, size_t n) {
  static char buf[16384];
  size_t len = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(
        buf + len, sizeof(buf) - len,
        "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
        "metadata: {organization: acme, name: %s}\n"
        "spec: {url: file:///w/%s.wasm, phase: %s, priority: %d%s}\n",
        e[i].name, e[i].name, e[i].phase, e[i].priority,
        e[i].fail_open ? ", failStrategy: FAIL_OPEN" : "");
  snprintf(buf + len, sizeof(buf) - len, "%s",
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"
           "  route: {cluster: app}\n  httpFilters:\n"
           "  - name: envoy.filters.http.router\n"
           "    typedConfig: {'@type': "
           "type.googleapis.com/envoy.extensions.filters.http.router.v3."
           "Router}\n"
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: out}\nspec:\n  port: 15001\n  direction: "
           "OUTBOUND\n"
           "  route: {cluster: egress}\n  httpFilters:\n"
           "  - name: envoy.filters.http.router\n"
           "    typedConfig: {'@type': "
           "type.googleapis.com/envoy.extensions.filters.http.router.v3."
           "Router}\n");
  return buf;
}

/* TCP mode (the tcp_* tests): the extensions are NETWORK WasmPlugins of
 * namespace "ns" and the one listener is the TCP template "db", with a
 * filter chain for destination port 15432 (c0) and the default chain; a
 * plugin whose name starts with "alt" runs only on c0 (match ports). */
static int tcp_mode;

static char *store_yaml_tcp(const struct ext *e, size_t n) {
  static char buf[16384];
  size_t len = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(
        buf + len, sizeof(buf) - len,
        "---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
        "metadata: {namespace: ns, name: %s}\n"
        "spec: {type: NETWORK, url: file:///w/%s.wasm, phase: %s, "
        "priority: %d, failStrategy: %s%s}\n",
        e[i].name, e[i].name, e[i].phase, e[i].priority,
        e[i].fail_open ? "FAIL_OPEN" : "FAIL_CLOSE",
        strncmp(e[i].name, "alt", 3) == 0 ? ", match: [{ports: [{number: "
                                            "15432}]}]"
                                          : "");
  snprintf(buf + len, sizeof(buf) - len, "%s",
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: db}\nspec:\n  port: 5432\n  direction: INBOUND\n"
           "  tcp:\n    cluster: db\n    filterChains:\n"
           "    - match: {destinationPort: 15432}\n      cluster: db-alt\n");
  return buf;
}

static struct snapshot *snap_of(const struct ext *e, size_t n, uint32_t slots,
                                uint64_t gen) {
  struct catalog *cat =
      tu_catalog(tcp_mode ? store_yaml_tcp(e, n) : store_yaml(e, n));
  struct encode_opts o;
  struct snapshot *s;

  encode_opts_default(&o);
  o.ecds_slots = slots;
  ck_assert_int_eq(snapshot_build(cat, &o, gen, &s, NULL), 0);
  catalog_unref(cat);
  return s;
}

struct node_holder {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md;
  Google__Protobuf__Struct__FieldsEntry e_org, e_ns;
  Google__Protobuf__Struct__FieldsEntry *entries[2];
  Google__Protobuf__Value v_org, v_ns;
};

/* The proxy: the stream, and what each slot holds ("" nothing). */
struct px {
  struct ads_stream s;
  struct node_holder nh;
  struct xds_buf out;
  struct xds_map *holds;
  char *names[N_NAMES];
  size_t n_names;
  char lds_nonce[32], lds_version[32], ecds_nonce[32], ecds_version[2048];
  /* Delta: the version of each resource it holds (name -> version), for
   * initial_resource_versions when it reconnects. */
  struct xds_map *lds_vers, *ecds_vers;
  int strict;       /* every config applied must be a slot of px.after */
  int reconnecting; /* delta requests carry initial_resource_versions */
  int unknown_held; /* it reported slots the server cannot read: a
                       fail-closed extension may run more than twice */
  int first_type;   /* type of the first message since reset: 1 LDS, 2 ECDS */
  int lds_msgs, ecds_msgs, ecds_configs;
  /* The chains before and after the change (fqns per listener slot). */
  const struct xds_class *before, *after;
  struct snapshot *snap_after;
  int states; /* intermediate states checked */
  int delta;  /* the proxy speaks delta ADS */
};

static struct px px;

static void holds_free(void *p) {
  free(p);
}

/* The test proxy's identity (in namespace "ns" in TCP mode). */
static void make_pid(struct proxy_id *pid) {
  tu_proxy(pid, "proxy-1", "acme", NULL, PROXY_MODE_SIDECAR, NULL);
  if (tcp_mode)
    pid->namespace = xds_strdup("ns");
}

static void setup(void) {
  xds_log_set_level(XDS_LOG_ERROR);
  tcp_mode = 0;
  memset(&px, 0, sizeof(px));
  xds_buf_init(&px.out, 4 << 20);
  px.holds = xds_map_new();
  px.lds_vers = xds_map_new();
  px.ecds_vers = xds_map_new();
}

static void teardown(void) {
  ads_stream_cleanup(&px.s);
  xds_buf_cleanup(&px.out);
  xds_map_free(px.holds, holds_free);
  xds_map_free(px.lds_vers, holds_free);
  xds_map_free(px.ecds_vers, holds_free);
  for (size_t i = 0; i < px.n_names; i++)
    free(px.names[i]);
  ck_assert_uint_eq(xds_intern_count(), 0);
}

static int req(struct snapshot *snap, int first, const char *type,
               const char *version, const char *nonce, int with_names) {
  Envoy__Service__Discovery__V3__DiscoveryRequest r =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  struct ads_close close;

  if (px.delta) {
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest d =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
        iv[N_NAMES],
        *ivp[N_NAMES];
    struct xds_map *vers =
        strcmp(type, TYPE_ECDS) == 0 ? px.ecds_vers : px.lds_vers;
    size_t pos = 0, n = 0;
    const char *key;
    void *val;

    d.node = first ? &px.nh.node : NULL;
    d.type_url = (char *)type;
    d.response_nonce = (char *)nonce;
    if (with_names && strcmp(type, TYPE_ECDS) == 0) {
      d.resource_names_subscribe = px.names;
      d.n_resource_names_subscribe = px.n_names;
    }
    /* Reconnecting: what it holds. */
    while (px.reconnecting && n < N_NAMES &&
           xds_map_next(vers, &pos, &key, &val)) {
      envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
          &iv[n]);
      iv[n].key = (char *)key;
      iv[n].value = (char *)val;
      ivp[n] = &iv[n];
      n++;
    }
    d.initial_resource_versions = ivp;
    d.n_initial_resource_versions = n;
    return ads_stream_on_delta_request(&px.s, &d, snap, &close);
  }

  r.node = first ? &px.nh.node : NULL;
  r.type_url = (char *)type;
  r.version_info = (char *)version;
  r.response_nonce = (char *)nonce;
  if (with_names) {
    r.resource_names = px.names;
    r.n_resource_names = px.n_names;
  }
  return ads_stream_on_request(&px.s, &r, snap, &close);
}

/* The extension a TypedExtensionConfig runs: its Wasm plugin's name, or ""
 * for the empty slot's RBAC filter without rules (anything else fails). */
static char *occupant(const uint8_t *p, size_t n, char *name, size_t cap) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec =
      envoy__config__core__v3__typed_extension_config__unpack(NULL, n, p);
  char *who;

  ck_assert_ptr_nonnull(tec);
  ck_assert_ptr_nonnull(tec->typed_config);
  snprintf(name, cap, "%s", tec->name);
  if (strcmp(tec->typed_config->type_url, TYPE_WASM) == 0) {
    Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w =
        envoy__extensions__filters__http__wasm__v3__wasm__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(w->config);
    who = strdup(w->config->name);
    envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  } else if (strcmp(tec->typed_config->type_url, TYPE_NET_WASM) == 0) {
    Envoy__Extensions__Filters__Network__Wasm__V3__Wasm *w =
        envoy__extensions__filters__network__wasm__v3__wasm__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    ck_assert(tcp_mode);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(w->config);
    who = strdup(w->config->name);
    envoy__extensions__filters__network__wasm__v3__wasm__free_unpacked(w, NULL);
  } else if (strcmp(tec->typed_config->type_url, TYPE_NET_RBAC) == 0) {
    Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *r =
        envoy__extensions__filters__network__rbac__v3__rbac__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    ck_assert(tcp_mode);
    ck_assert_ptr_nonnull(r);
    /* No rules: enforces nothing (the empty network slot). */
    ck_assert_ptr_null(r->rules);
    ck_assert_ptr_null(r->shadow_rules);
    ck_assert_str_eq(r->stat_prefix, ENCODE_SLOT_STAT_PREFIX);
    who = strdup("");
    envoy__extensions__filters__network__rbac__v3__rbac__free_unpacked(r, NULL);
  } else {
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *r;
    ck_assert_str_eq(tec->typed_config->type_url, TYPE_RBAC);
    ck_assert(!tcp_mode);
    r = envoy__extensions__filters__http__rbac__v3__rbac__unpack(
        NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    ck_assert_ptr_nonnull(r);
    /* No rules: enforces nothing (the empty slot's no-op). */
    ck_assert_ptr_null(r->rules);
    ck_assert_ptr_null(r->shadow_rules);
    who = strdup("");
    envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(r, NULL);
  }
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  return who;
}

static int fail_closed(struct snapshot *s, const char *fqn) {
  const struct wasm_ext *e = catalog_ext_find(snapshot_catalog(s), fqn);

  ck_assert_ptr_nonnull(e);
  return e->fail_strategy != WASM_FAIL_OPEN;
}

/* A slot's group: its name up to the "/<PHASE>/<pos>" tail, the slot
 * names of one listener layout (HTTP) or of one filter chain of it (TCP).
 * The safety rules hold per group. */
static size_t group_len(const char *name) {
  const char *e = strrchr(name, '/');

  while (e != NULL && e > name && e[-1] != '/')
    e--;
  return e != NULL ? (size_t)(e - name) : 0;
}

static int in_group(const char *name, const char *g) {
  size_t n = strlen(g);

  return strncmp(name, g, n) == 0 && group_len(name) == n;
}

static size_t count_in(const struct xds_class *c, const char *g,
                       const char *fqn) {
  size_t n = 0;

  for (size_t i = 0; c != NULL && i < c->n_slots; i++)
    n += in_group(c->slots[i].name, g) && c->slot_fqn[i] != NULL &&
         strcmp(c->slot_fqn[i], fqn) == 0;
  return n;
}

/* Copies of fqn the proxy runs in group g now. */
static size_t running(const char *g, const char *fqn) {
  size_t n = 0, pos = 0;
  const char *key;
  void *val;

  while (xds_map_next(px.holds, &pos, &key, &val))
    n += in_group(key, g) && strcmp((const char *)val, fqn) == 0;
  return n;
}

/* Class c has slots in group g. */
static int has_group(const struct xds_class *c, const char *g) {
  for (size_t i = 0; c != NULL && i < c->n_slots; i++)
    if (in_group(c->slots[i].name, g))
      return 1;
  return 0;
}

/* Every slot of group g in class c has a config: its listener is warm. */
static int warm(const struct xds_class *c, const char *g) {
  for (size_t i = 0; i < c->n_slots; i++)
    if (in_group(c->slots[i].name, g) &&
        xds_map_get(px.holds, c->slots[i].name) == NULL)
      return 0;
  return 1;
}

/* The rules on group g, which serves traffic now. */
static void check_group(const char *g) {
  const struct catalog *cat = snapshot_catalog(px.snap_after);
  size_t pl = strlen(ENCODE_SLOT_PREFIX), ll;
  char listener[256];

  /* The same listener in the new class (whatever its layout). */
  ll = strcspn(g + pl, "/");
  snprintf(listener, sizeof(listener), "%.*s", (int)ll, g + pl);
  for (size_t k = 0; k < catalog_ext_count(cat); k++) {
    const char *fqn = catalog_ext_at(cat, k)->fqn;
    size_t now = running(g, fqn), later = 0;
    for (size_t i = 0; i < px.after->n_slots; i++)
      later += strncmp(px.after->slots[i].name + pl, listener, ll) == 0 &&
               px.after->slots[i].name[pl + ll] == '/' &&
               px.after->slot_fqn[i] != NULL &&
               strcmp(px.after->slot_fqn[i], fqn) == 0;
    if (fail_closed(px.snap_after, fqn)) {
      if (count_in(px.before, g, fqn) > 0 && later > 0)
        ck_assert_msg(now >= 1, "state %d: %s missing on %s", px.states, fqn,
                      g);
      ck_assert_msg(now <= 2 || px.unknown_held,
                    "state %d: %s runs %zu times on %s", px.states, fqn, now,
                    g);
    } else {
      ck_assert_msg(now <= 1, "state %d: %s (fail open) runs %zu times on %s",
                    px.states, fqn, now, g);
    }
  }
}

/* The safety rules, on the state the proxy runs now: in every group of
 * the listeners it had (a listener stays active until its replacement is
 * warm), and in every warm group of the new class. */
static void check_state(void) {
  const struct xds_class *cs[2] = {px.before, px.after};

  px.states++;
  for (int c = 0; c < 2; c++)
    for (size_t i = 0; cs[c] != NULL && i < cs[c]->n_slots; i++) {
      char g[512];
      snprintf(g, sizeof(g), "%.*s", (int)group_len(cs[c]->slots[i].name),
               cs[c]->slots[i].name);
      if (i > 0 && in_group(cs[c]->slots[i - 1].name, g))
        continue; /* one check per group */
      if (c == 1 && !has_group(px.before, g) && !warm(px.after, g))
        continue;
      check_group(g);
    }
}

/* The ECDS names: every slot of the class's listeners. */
static void subscribe(const struct xds_class *c) {
  for (size_t i = 0; i < px.n_names; i++)
    free(px.names[i]);
  px.n_names = 0;
  for (size_t i = 0; i < c->n_slots && i < N_NAMES; i++)
    px.names[px.n_names++] = strdup(c->slots[i].name);
}

/* Bookkeeping of one ECDS config the proxy applies, named name. */
static void applied(const char *name) {
  if (px.first_type == 0)
    px.first_type = 2;
  if (px.strict)
    ck_assert_msg(snapshot_class_slot(px.after, name) != NULL,
                  "a config for %s, not a slot of the listeners now", name);
}

/* Applies the delta response in px.out like drain() (ECDS configs one at
 * a time), then ACKs it. */
static void drain_delta(struct snapshot *snap) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
      envoy__service__discovery__v3__delta_discovery_response__unpack(
          NULL, px.out.len, (const uint8_t *)px.out.data);
  char nonce[32];

  ck_assert_ptr_nonnull(r);
  snprintf(nonce, sizeof(nonce), "%s", r->nonce);
  if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
    px.lds_msgs++;
    if (px.first_type == 0)
      px.first_type = 1;
    for (size_t i = 0; i < r->n_resources; i++) {
      void *old = NULL;
      ck_assert_int_eq(xds_map_put(px.lds_vers, r->resources[i]->name,
                                   strdup(r->resources[i]->version), &old),
                       0);
      free(old);
    }
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
        r, NULL);
    ck_assert_int_eq(req(snap, 0, TYPE_LISTENER, "", nonce, 0), 0);
    subscribe(px.after);
    ck_assert_int_eq(req(snap, 0, TYPE_ECDS, "", "", 1), 0);
    return;
  }
  ck_assert_str_eq(r->type_url, TYPE_ECDS);
  px.ecds_msgs++;
  for (size_t i = 0; i < r->n_resources; i++) {
    char name[512];
    char *who;
    void *old = NULL;
    ck_assert_ptr_nonnull(r->resources[i]->resource);
    who = occupant(r->resources[i]->resource->value.data,
                   r->resources[i]->resource->value.len, name, sizeof(name));
    applied(name);
    ck_assert_int_eq(xds_map_put(px.holds, name, who, &old), 0);
    free(old);
    old = NULL;
    ck_assert_int_eq(
        xds_map_put(px.ecds_vers, name, strdup(r->resources[i]->version), &old),
        0);
    free(old);
    px.ecds_configs++;
    check_state();
  }
  envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r,
                                                                         NULL);
  ck_assert_int_eq(req(snap, 0, TYPE_ECDS, "", nonce, 0), 0);
}

/* Answers every response the stream owes, applying ECDS configs one at a
 * time, and ACKs each. */
static void drain_n(struct snapshot *snap, int max) {
  for (int guard = 0; guard < 50; guard++) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r;
    int rc = ads_stream_next_response(&px.s, &px.out, NULL);

    ck_assert_int_ge(rc, 0);
    if (rc == 0 || max-- == 0)
      return;
    if (px.delta) {
      drain_delta(snap);
      continue;
    }
    r = envoy__service__discovery__v3__discovery_response__unpack(
        NULL, px.out.len, (const uint8_t *)px.out.data);
    ck_assert_ptr_nonnull(r);
    if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
      px.lds_msgs++;
      if (px.first_type == 0)
        px.first_type = 1;
      snprintf(px.lds_nonce, sizeof(px.lds_nonce), "%s", r->nonce);
      snprintf(px.lds_version, sizeof(px.lds_version), "%s", r->version_info);
      envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
      ck_assert_int_eq(
          req(snap, 0, TYPE_LISTENER, px.lds_version, px.lds_nonce, 0), 0);
      /* As Envoy does on a new listener: subscribe to what it names. */
      subscribe(px.after);
      ck_assert_int_eq(
          req(snap, 0, TYPE_ECDS, px.ecds_version, px.ecds_nonce, 1), 0);
      continue;
    }
    ck_assert_str_eq(r->type_url, TYPE_ECDS);
    px.ecds_msgs++;
    for (size_t i = 0; i < r->n_resources; i++) {
      char name[512];
      char *who = occupant(r->resources[i]->value.data,
                           r->resources[i]->value.len, name, sizeof(name));
      void *old = NULL;
      applied(name);
      ck_assert_int_eq(xds_map_put(px.holds, name, who, &old), 0);
      free(old);
      px.ecds_configs++;
      check_state();
    }
    snprintf(px.ecds_nonce, sizeof(px.ecds_nonce), "%s", r->nonce);
    snprintf(px.ecds_version, sizeof(px.ecds_version), "%s", r->version_info);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    ck_assert_int_eq(req(snap, 0, TYPE_ECDS, px.ecds_version, px.ecds_nonce, 1),
                     0);
  }
  ck_abort_msg("the stream never stopped sending");
}

static void drain(struct snapshot *snap) {
  drain_n(snap, -1);
}

/* Connects the proxy to s0 (SotW or delta-free SotW ADS) and lets it take
 * everything, subscribing to every slot of its listeners as Envoy does. */
/* A new stream, and the proxy's node. */
static void stream_open(void) {
  ck_assert_int_eq(ads_stream_init(&px.s, ADS_SVC_ADS,
                                   px.delta ? ADS_DELTA : ADS_SOTW, "test"),
                   0);
  envoy__config__core__v3__node__init(&px.nh.node);
  google__protobuf__struct__init(&px.nh.md);
  google__protobuf__struct__fields_entry__init(&px.nh.e_org);
  google__protobuf__value__init(&px.nh.v_org);
  px.nh.node.id = "proxy-1";
  px.nh.node.metadata = &px.nh.md;
  px.nh.v_org.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  px.nh.v_org.string_value = "acme";
  px.nh.e_org.key = "wasmxds.organization";
  px.nh.e_org.value = &px.nh.v_org;
  px.nh.entries[0] = &px.nh.e_org;
  px.nh.md.n_fields = 1;
  if (tcp_mode) {
    google__protobuf__struct__fields_entry__init(&px.nh.e_ns);
    google__protobuf__value__init(&px.nh.v_ns);
    px.nh.v_ns.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    px.nh.v_ns.string_value = "ns";
    px.nh.e_ns.key = "NAMESPACE";
    px.nh.e_ns.value = &px.nh.v_ns;
    px.nh.entries[px.nh.md.n_fields++] = &px.nh.e_ns;
  }
  px.nh.md.fields = px.nh.entries;
}

static void proxy_connect(struct snapshot *s0) {
  const struct xds_class *c;
  struct proxy_id pid;

  stream_open();
  make_pid(&pid);
  ck_assert_int_eq(snapshot_class(s0, &pid, &c), 0);
  proxy_id_cleanup(&pid);
  ck_assert_uint_gt(c->n_slots, 0);
  subscribe(c);
  ck_assert_int_eq(req(s0, 1, TYPE_LISTENER, "", "", 0), 0);
  ck_assert_int_eq(req(s0, 0, TYPE_ECDS, "", "", 1), 0);
  px.snap_after = s0;
  px.after = c;
  drain(s0);
}

static const struct xds_class *class_of(struct snapshot *s) {
  const struct xds_class *c;
  struct proxy_id pid;

  make_pid(&pid);
  ck_assert_int_eq(snapshot_class(s, &pid, &c), 0);
  proxy_id_cleanup(&pid);
  return c;
}

/* The proxy ends where a proxy that starts on s would: every slot holds
 * what the class view of s composed from scratch says, and in each
 * listener the slots, read in order, are chain_compute's chain. */
static void check_final(struct snapshot *s) {
  const struct xds_class *c = class_of(s);
  const struct catalog *cat = snapshot_catalog(s);
  struct proxy_id pid;

  for (size_t i = 0; i < c->n_slots; i++) {
    const char *h = xds_map_get(px.holds, c->slots[i].name);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(h, c->slot_fqn[i] != NULL ? c->slot_fqn[i] : "");
  }
  make_pid(&pid);
  for (size_t t = 0; t < catalog_tmpl_count(cat); t++) {
    const struct listener_tmpl *tm = catalog_tmpl_at(cat, t);
    int tcp = tm->protocol == TMPL_TCP;
    struct chain ch;

    ck_assert_int_eq(chain_compute(cat, &pid, tm, &ch), 0);
    /* An HTTP listener is one group of slots; a TCP one a group per
     * filter chain, holding the extensions that run on that chain. */
    for (size_t fc = 0; fc < (tcp ? tm->n_tcp_chains + 1 : 1); fc++) {
      char prefix[256], chain[32];
      size_t k = 0;

      snprintf(prefix, sizeof(prefix), ENCODE_SLOT_PREFIX "%s/", tm->name);
      if (fc < tm->n_tcp_chains)
        snprintf(chain, sizeof(chain), "/c%zu/", fc);
      else
        snprintf(chain, sizeof(chain), "/default/");
      for (size_t i = 0; i < c->n_slots; i++) {
        const char *h = xds_map_get(px.holds, c->slots[i].name);
        size_t gl = group_len(c->slots[i].name);
        if (strncmp(c->slots[i].name, prefix, strlen(prefix)) != 0 ||
            h[0] == '\0')
          continue;
        if (tcp && (gl < strlen(chain) ||
                    strncmp(c->slots[i].name + gl - strlen(chain), chain,
                            strlen(chain)) != 0))
          continue;
        ck_assert_int_eq(c->slot_net[i], tcp);
        while (k < ch.n && tcp && !encode_tcp_chain_has(&ch, k, fc))
          k++;
        ck_assert_uint_lt(k, ch.n);
        ck_assert_str_eq(h, ch.exts[k]->fqn);
        k++;
      }
      while (k < ch.n && tcp && !encode_tcp_chain_has(&ch, k, fc))
        k++;
      ck_assert_uint_eq(k, ch.n);
    }
    chain_cleanup(&ch);
  }
  proxy_id_cleanup(&pid);
}

/* Runs one change from e0 to e1 with headroom h; returns LDS messages it
 * caused. */
static int change(const struct ext *e0, size_t n0, const struct ext *e1,
                  size_t n1, uint32_t h) {
  struct snapshot *s0 = snap_of(e0, n0, h, 1), *s1 = snap_of(e1, n1, h, 2);
  int lds;

  proxy_connect(s0);
  check_final(s0);
  px.before = class_of(s0);
  px.after = class_of(s1);
  px.snap_after = s1;
  px.lds_msgs = 0;
  px.states = 0;
  ck_assert_int_eq(ads_stream_on_snapshot(&px.s, s1, NULL), 0);
  drain(s1);
  check_final(s1);
  lds = px.lds_msgs;
  ads_stream_cleanup(&px.s);
  px.before = px.after = NULL;
  snapshot_unref(s0);
  snapshot_unref(s1);
  return lds;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct ext base[] = {{"authn", "AUTHN", 0, 0},
                                  {"z1", "AUTHZ", 20, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"stats", "STATS", 0, 1}};

START_TEST(add_within_headroom_no_lds) {
  /* z0 goes first in AUTHZ: z1 and z2 (fail closed) move down a slot. */
  static const struct ext to[] = {{"authn", "AUTHN", 0, 0},
                                  {"z0", "AUTHZ", 30, 0},
                                  {"z1", "AUTHZ", 20, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"stats", "STATS", 0, 1}};
  ck_assert_int_eq(change(base, N(base), to, N(to), 4), 0);
  ck_assert_int_gt(px.states, 0);
}
END_TEST

START_TEST(remove_within_headroom_no_lds) {
  /* z1 goes: z2 moves up into its slot. */
  static const struct ext to[] = {{"authn", "AUTHN", 0, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"stats", "STATS", 0, 1}};
  ck_assert_int_eq(change(base, N(base), to, N(to), 4), 0);
  ck_assert_int_gt(px.states, 0);
}
END_TEST

START_TEST(swap_fail_closed_no_lds_never_missing) {
  /* z1 and z2 swap priorities: a cycle of fail-closed extensions, which
   * takes a spare slot and two responses. */
  static const struct ext to[] = {{"authn", "AUTHN", 0, 0},
                                  {"z1", "AUTHZ", 10, 0},
                                  {"z2", "AUTHZ", 20, 0},
                                  {"stats", "STATS", 0, 1}};
  ck_assert_int_eq(change(base, N(base), to, N(to), 4), 0);
  ck_assert_int_ge(px.ecds_msgs, 2);
}
END_TEST

START_TEST(swap_fail_open_never_twice) {
  static const struct ext from[] = {
      {"o1", "STATS", 20, 1}, {"o2", "STATS", 10, 1}, {"o3", "STATS", 5, 1}};
  static const struct ext to[] = {
      {"o1", "STATS", 5, 1}, {"o2", "STATS", 20, 1}, {"o3", "STATS", 10, 1}};
  ck_assert_int_eq(change(from, N(from), to, N(to), 4), 0);
}
END_TEST

START_TEST(move_across_phases_no_lds) {
  /* z1 (fail closed) moves from AUTHZ to AUTHN; stats from STATS to
   * UNSPECIFIED. */
  static const struct ext to[] = {{"authn", "AUTHN", 0, 0},
                                  {"z1", "AUTHN", 20, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"stats", "UNSPECIFIED_PHASE", 0, 1}};
  ck_assert_int_eq(change(base, N(base), to, N(to), 4), 0);
}
END_TEST

START_TEST(rotate_three_fail_closed) {
  static const struct ext from[] = {
      {"a", "AUTHZ", 3, 0}, {"b", "AUTHZ", 2, 0}, {"c", "AUTHZ", 1, 0}};
  static const struct ext to[] = {
      {"a", "AUTHZ", 1, 0}, {"b", "AUTHZ", 3, 0}, {"c", "AUTHZ", 2, 0}};
  ck_assert_int_eq(change(from, N(from), to, N(to), 4), 0);
}
END_TEST

START_TEST(outgrowing_headroom_is_one_lds) {
  /* Headroom 2: AUTHZ holds 1 of 2 slots; a second one needs 4 (a phase
   * always keeps a spare), so the listener grows once, by doubling. */
  static const struct ext from[] = {{"z1", "AUTHZ", 20, 0}};
  static const struct ext to[] = {{"z1", "AUTHZ", 20, 0},
                                  {"z2", "AUTHZ", 10, 0}};
  ck_assert_int_eq(change(from, N(from), to, N(to), 2), 1);
}
END_TEST

START_TEST(without_slots_every_change_is_lds) {
  /* Today's behaviour, for contrast: membership changes the listener. */
  static const struct ext to[] = {{"authn", "AUTHN", 0, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"stats", "STATS", 0, 1}};
  struct snapshot *s0 = snap_of(base, N(base), 0, 1),
                  *s1 = snap_of(to, N(to), 0, 2);
  const struct xds_class *c0 = class_of(s0), *c1 = class_of(s1);

  ck_assert_uint_eq(c0->n_slots, 0);
  ck_assert_str_ne(c0->lds_version, c1->lds_version);
  snapshot_unref(s0);
  snapshot_unref(s1);
}
END_TEST

START_TEST(delta_swap_and_add_no_lds) {
  /* The same rules for a delta proxy. */
  static const struct ext swap[] = {{"authn", "AUTHN", 0, 0},
                                    {"z1", "AUTHZ", 10, 0},
                                    {"z2", "AUTHZ", 20, 0},
                                    {"stats", "STATS", 0, 1}};
  static const struct ext add[] = {{"authn", "AUTHN", 0, 0},
                                   {"z0", "AUTHZ", 30, 0},
                                   {"z1", "AUTHZ", 20, 0},
                                   {"z2", "AUTHZ", 10, 0},
                                   {"stats", "STATS", 0, 1}};
  px.delta = 1;
  ck_assert_int_eq(change(base, N(base), swap, N(swap), 4), 0);
  ck_assert_int_ge(px.ecds_msgs, 2);
  xds_map_free(px.holds, holds_free);
  px.holds = xds_map_new();
  ck_assert_int_eq(change(base, N(base), add, N(add), 4), 0);
  ck_assert_int_gt(px.states, 0);
}
END_TEST

START_TEST(capacity_doubles_and_keeps_a_spare) {
  ck_assert_uint_eq(encode_slot_capacity(0, 3), 0);
  ck_assert_uint_eq(encode_slot_capacity(4, 0), 4);
  ck_assert_uint_eq(encode_slot_capacity(4, 3), 4);
  ck_assert_uint_eq(encode_slot_capacity(4, 4), 8);
  ck_assert_uint_eq(encode_slot_capacity(4, 8), 16);
  ck_assert_uint_eq(encode_slot_capacity(1, 0), 1);
  ck_assert_uint_eq(encode_slot_capacity(1, 1), 2);
  ck_assert_uint_eq(encode_slot_capacity(4, ENCODE_SLOTS_PHASE_MAX), 0);
}
END_TEST

START_TEST(same_store_same_bytes) {
  /* Two builds (two replicas, or a restart) give identical listeners and
   * slot configs. */
  struct snapshot *a = snap_of(base, N(base), 4, 1),
                  *b = snap_of(base, N(base), 4, 7);
  const struct xds_class *ca = class_of(a), *cb = class_of(b);

  ck_assert_str_eq(ca->lds_version, cb->lds_version);
  ck_assert_uint_eq(ca->n_slots, cb->n_slots);
  for (size_t i = 0; i < ca->n_slots; i++) {
    ck_assert_str_eq(ca->slots[i].name, cb->slots[i].name);
    ck_assert_str_eq(ca->slots[i].version, cb->slots[i].version);
  }
  snapshot_unref(a);
  snapshot_unref(b);
}
END_TEST

/* ---- TCP listeners: network slots in every filter chain ---- */

/* NETWORK WasmPlugins of namespace ns; alt-stats only on c0 (port
 * 15432). */
static const struct ext tcp_base[] = {{"nauthn", "AUTHN", 0, 0},
                                      {"z1", "AUTHZ", 20, 0},
                                      {"z2", "AUTHZ", 10, 0},
                                      {"alt-stats", "STATS", 0, 1}};

START_TEST(tcp_listener_shape) {
  /* Each filter chain: 4 phases x 4 network slots (ECDS references to
   * the network Wasm and RBAC filters, deny-all by default), then the
   * tcp_proxy; the slots hold each chain's own plugins. */
  struct snapshot *s;
  const struct xds_class *c;
  Envoy__Config__Listener__V3__Listener *l;
  size_t caps[8] = {4, 4, 4, 4, 4, 4, 4, 4};
  char layout[ENCODE_SLOT_LAYOUT_LEN + 1];

  tcp_mode = 1;
  encode_slot_layout(caps, 8, layout);
  s = snap_of(tcp_base, N(tcp_base), 4, 1);
  c = class_of(s);
  ck_assert_uint_eq(c->n_listeners, 1);
  ck_assert_uint_eq(c->n_slots, 2 * 16);
  l = envoy__config__listener__v3__listener__unpack(NULL, c->listeners[0].len,
                                                    c->listeners[0].bytes);
  ck_assert_ptr_nonnull(l);
  ck_assert_uint_eq(l->n_filter_chains, 2);
  for (size_t i = 0; i < 2; i++) {
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[i];
    ck_assert_uint_eq(fc->n_filters, 17);
    for (size_t k = 0; k < 16; k++) {
      const Envoy__Config__Listener__V3__Filter *f = fc->filters[k];
      const Envoy__Config__Core__V3__ExtensionConfigSource *cd =
          f->config_discovery;
      Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *deny;
      char want[128];

      snprintf(want, sizeof(want), ENCODE_SLOT_PREFIX "db/%s/%s/%s/%zu", layout,
               i == 0 ? "c0" : "default",
               encode_slot_phase_name(encode_slot_phases[k / 4]), k % 4);
      ck_assert_str_eq(f->name, want);
      ck_assert_ptr_nonnull(snapshot_class_slot(c, want));
      ck_assert_int_eq(
          f->config_type_case,
          ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_CONFIG_DISCOVERY);
      ck_assert_uint_eq(cd->n_type_urls, 2);
      ck_assert_str_eq(cd->type_urls[0], TYPE_NET_WASM);
      ck_assert_str_eq(cd->type_urls[1], TYPE_NET_RBAC);
      ck_assert_int_eq(cd->apply_default_config_without_warming, 0);
      ck_assert_str_eq(cd->default_config->type_url, TYPE_NET_RBAC);
      deny = envoy__extensions__filters__network__rbac__v3__rbac__unpack(
          NULL, cd->default_config->value.len, cd->default_config->value.data);
      ck_assert_ptr_nonnull(deny);
      ck_assert_ptr_nonnull(deny->rules); /* present, no policies: DENY */
      ck_assert_uint_eq(deny->rules->n_policies, 0);
      envoy__extensions__filters__network__rbac__v3__rbac__free_unpacked(deny,
                                                                         NULL);
    }
    ck_assert_str_eq(fc->filters[16]->typed_config->type_url, TYPE_TCP_PROXY);
  }
  envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  /* alt-stats sits in c0's first STATS slot only. */
  for (size_t i = 0; i < c->n_slots; i++) {
    ck_assert_int_eq(c->slot_net[i], 1);
    char c0stats[128];
    snprintf(c0stats, sizeof(c0stats), ENCODE_SLOT_PREFIX "db/%s/c0/STATS/0",
             layout);
    if (strcmp(c->slots[i].name, c0stats) == 0)
      ck_assert_str_eq(c->slot_fqn[i], WASM_PLUGIN_FQN_PREFIX "ns.alt-stats");
    else if (c->slot_fqn[i] != NULL)
      ck_assert_msg(strstr(c->slot_fqn[i], "alt-stats") == NULL, "%s holds %s",
                    c->slots[i].name, c->slot_fqn[i]);
  }
  snapshot_unref(s);
}
END_TEST

START_TEST(tcp_add_remove_no_lds) {
  /* z0 goes first in AUTHZ (z1, z2 move down); then, from the base, z1
   * goes (z2 moves up). */
  static const struct ext add[] = {{"nauthn", "AUTHN", 0, 0},
                                   {"z0", "AUTHZ", 30, 0},
                                   {"z1", "AUTHZ", 20, 0},
                                   {"z2", "AUTHZ", 10, 0},
                                   {"alt-stats", "STATS", 0, 1}};
  static const struct ext rm[] = {{"nauthn", "AUTHN", 0, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"alt-stats", "STATS", 0, 1}};
  tcp_mode = 1;
  ck_assert_int_eq(change(tcp_base, N(tcp_base), add, N(add), 4), 0);
  ck_assert_int_gt(px.states, 0);
  xds_map_free(px.holds, holds_free);
  px.holds = xds_map_new();
  ck_assert_int_eq(change(tcp_base, N(tcp_base), rm, N(rm), 4), 0);
  ck_assert_int_gt(px.states, 0);
}
END_TEST

START_TEST(tcp_swap_fail_closed_never_missing) {
  /* Two fail-closed network plugins trade places on both filter chains:
   * the spare slot takes a copy first (two responses). */
  static const struct ext to[] = {{"nauthn", "AUTHN", 0, 0},
                                  {"z1", "AUTHZ", 10, 0},
                                  {"z2", "AUTHZ", 20, 0},
                                  {"alt-stats", "STATS", 0, 1}};
  tcp_mode = 1;
  ck_assert_int_eq(change(tcp_base, N(tcp_base), to, N(to), 4), 0);
  ck_assert_int_ge(px.ecds_msgs, 2);
}
END_TEST

START_TEST(tcp_move_across_phases_and_ports_no_lds) {
  /* z1 moves from AUTHZ to AUTHN; alt-stats becomes alt-authz (a new
   * fail-closed plugin on c0 only) while alt-stats goes. */
  static const struct ext to[] = {{"nauthn", "AUTHN", 0, 0},
                                  {"z1", "AUTHN", 20, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"alt-authz", "AUTHZ", 50, 0}};
  tcp_mode = 1;
  ck_assert_int_eq(change(tcp_base, N(tcp_base), to, N(to), 4), 0);
}
END_TEST

START_TEST(tcp_delta_swap_no_lds) {
  static const struct ext to[] = {{"nauthn", "AUTHN", 0, 0},
                                  {"z1", "AUTHZ", 10, 0},
                                  {"z2", "AUTHZ", 20, 0},
                                  {"alt-stats", "STATS", 0, 1}};
  tcp_mode = 1;
  px.delta = 1;
  ck_assert_int_eq(change(tcp_base, N(tcp_base), to, N(to), 4), 0);
  ck_assert_int_ge(px.ecds_msgs, 2);
}
END_TEST

START_TEST(tcp_outgrowing_headroom_is_one_lds) {
  static const struct ext from[] = {{"z1", "AUTHZ", 20, 0}};
  static const struct ext to[] = {{"z1", "AUTHZ", 20, 0},
                                  {"z2", "AUTHZ", 10, 0}};
  tcp_mode = 1;
  ck_assert_int_eq(change(from, N(from), to, N(to), 2), 1);
}
END_TEST

START_TEST(tcp_without_slots_membership_is_lds) {
  static const struct ext to[] = {{"nauthn", "AUTHN", 0, 0},
                                  {"z2", "AUTHZ", 10, 0},
                                  {"alt-stats", "STATS", 0, 1}};
  struct snapshot *s0, *s1;
  const struct xds_class *c0, *c1;

  tcp_mode = 1;
  s0 = snap_of(tcp_base, N(tcp_base), 0, 1);
  s1 = snap_of(to, N(to), 0, 2);
  c0 = class_of(s0);
  c1 = class_of(s1);
  ck_assert_uint_eq(c0->n_slots, 0);
  ck_assert_str_ne(c0->lds_version, c1->lds_version);
  snapshot_unref(s0);
  snapshot_unref(s1);
}
END_TEST

/* ---- Reconnects: the proxy keeps what it holds (README "Switch-over") ---- */

/* The proxy reconnects to snapshot s keeping its listeners and configs, as
 * Envoy does, and says what it has: SotW, the version_info of its last LDS
 * and ECDS responses; delta, initial_resource_versions. Then it takes what
 * the server sends, one config at a time. */
static void proxy_reconnect(struct snapshot *s) {
  ads_stream_cleanup(&px.s);
  stream_open();
  /* A new stream: no nonce of the old one counts (Envoy clears them). */
  px.lds_nonce[0] = px.ecds_nonce[0] = '\0';
  px.reconnecting = 1;
  ck_assert_int_eq(req(s, 1, TYPE_LISTENER, px.lds_version, "", 0), 0);
  ck_assert_int_eq(req(s, 0, TYPE_ECDS, px.ecds_version, "", 1), 0);
  px.reconnecting = 0;
  drain(s);
}

/* Connected to e0 with headroom h, the proxy reconnects to e1 (after
 * first_responses of e1's push, 0: none, on the old stream). */
static void reconnect_change(const struct ext *e0, size_t n0,
                             const struct ext *e1, size_t n1, uint32_t h,
                             int first_responses) {
  struct snapshot *s0 = snap_of(e0, n0, h, 1), *s1 = snap_of(e1, n1, h, 2);

  proxy_connect(s0);
  check_final(s0);
  px.before = class_of(s0);
  px.after = class_of(s1);
  px.snap_after = s1;
  if (first_responses > 0) {
    ck_assert_int_eq(ads_stream_on_snapshot(&px.s, s1, NULL), 0);
    drain_n(s1, first_responses);
  }
  px.lds_msgs = px.ecds_msgs = px.states = px.first_type = 0;
  px.strict = 1;
  proxy_reconnect(s1);
  px.strict = 0;
  check_final(s1);
  ads_stream_cleanup(&px.s);
  px.before = px.after = NULL;
  snapshot_unref(s0);
  snapshot_unref(s1);
}

static const struct ext swapped[] = {{"authn", "AUTHN", 0, 0},
                                     {"z1", "AUTHZ", 10, 0},
                                     {"z2", "AUTHZ", 20, 0},
                                     {"stats", "STATS", 0, 1}};

START_TEST(reconnect_sotw_swap_in_safe_order) {
  /* Away while z1 and z2 swapped: the server learns from the ECDS
   * version_info what each slot holds, and plans as for a live change
   * (planned as empty, z2 would overwrite z1's only copy first). */
  reconnect_change(base, N(base), swapped, N(swapped), 4, 0);
  ck_assert_int_eq(px.lds_msgs, 0);
  ck_assert_int_ge(px.ecds_msgs, 2);
  ck_assert_int_gt(px.states, 0);
}
END_TEST

START_TEST(reconnect_delta_swap_in_safe_order) {
  /* The same from initial_resource_versions: a slot's version names its
   * occupant. */
  px.delta = 1;
  reconnect_change(base, N(base), swapped, N(swapped), 4, 0);
  ck_assert_int_eq(px.lds_msgs, 0);
  ck_assert_int_ge(px.ecds_msgs, 2);
}
END_TEST

START_TEST(reconnect_sotw_mid_swap_completes) {
  /* Cut off after the first response of the swap (the spare slot holds a
   * copy): its version_info is the current state's, but the holdings say
   * the spare is not final, so the rest is sent, safely. */
  reconnect_change(base, N(base), swapped, N(swapped), 4, 1);
  ck_assert_int_eq(px.lds_msgs, 0);
  ck_assert_int_ge(px.ecds_msgs, 1);
}
END_TEST

START_TEST(reconnect_delta_mid_swap_completes) {
  px.delta = 1;
  reconnect_change(base, N(base), swapped, N(swapped), 4, 1);
  ck_assert_int_eq(px.lds_msgs, 0);
}
END_TEST

START_TEST(reconnect_unchanged_sends_nothing) {
  /* Nothing changed while away: nothing is sent (SotW and delta). */
  reconnect_change(base, N(base), base, N(base), 4, 0);
  ck_assert_int_eq(px.lds_msgs + px.ecds_msgs, 0);
  xds_map_free(px.holds, holds_free);
  px.holds = xds_map_new();
  px.delta = 1;
  reconnect_change(base, N(base), base, N(base), 4, 0);
  ck_assert_int_eq(px.lds_msgs + px.ecds_msgs, 0);
}
END_TEST

START_TEST(reconnect_layout_changed_lds_first_new_slots_only) {
  /* AUTHZ outgrew its slots while the proxy was away: LDS goes first, its
   * listener names slots of a new layout, and only those are written; the
   * old listener's slots, which it serves until the new one is warm, are
   * never touched (px.strict), in SotW and in delta. */
  static const struct ext from[] = {{"z1", "AUTHZ", 20, 0}};
  static const struct ext to[] = {{"z1", "AUTHZ", 20, 0},
                                  {"z2", "AUTHZ", 10, 0}};
  reconnect_change(from, N(from), to, N(to), 2, 0);
  ck_assert_int_eq(px.lds_msgs, 1);
  ck_assert_int_eq(px.first_type, 1);
  xds_map_free(px.holds, holds_free);
  px.holds = xds_map_new();
  px.delta = 1;
  reconnect_change(from, N(from), to, N(to), 2, 0);
  ck_assert_int_eq(px.lds_msgs, 1);
  ck_assert_int_eq(px.first_type, 1);
}
END_TEST

START_TEST(reconnect_unknown_occupant_is_kept_until_copied) {
  /* A delta proxy reports slot versions that name nothing (another form):
   * each such slot might hold a needed fail-closed extension, so it is
   * written only once every needed one runs elsewhere; z1 and z2 run
   * there in truth, and the checks see them never missing. */
  struct snapshot *s0 = snap_of(base, N(base), 4, 1),
                  *s1 = snap_of(swapped, N(swapped), 4, 2);
  size_t pos = 0;
  const char *key;
  void *val;

  px.delta = 1;
  proxy_connect(s0);
  while (xds_map_next(px.ecds_vers, &pos, &key, &val))
    if (strstr(key, "/AUTHZ/") != NULL)
      snprintf((char *)val, strlen((char *)val) + 1, "%s", "0123456789abcdef");
  px.unknown_held = 1;
  px.before = class_of(s0);
  px.after = class_of(s1);
  px.snap_after = s1;
  px.states = 0;
  proxy_reconnect(s1);
  check_final(s1);
  ck_assert_int_gt(px.states, 0);
  ads_stream_cleanup(&px.s);
  px.before = px.after = NULL;
  snapshot_unref(s0);
  snapshot_unref(s1);
}
END_TEST

START_TEST(slot_version_names_its_occupant) {
  char v[VERSION_LEN + 1];
  uint32_t id = 99;

  encode_slot_version("abc", 3, "organizations/acme/extensions/z1", v);
  ck_assert_uint_eq(strlen(v), VERSION_LEN);
  ck_assert_int_eq(encode_slot_version_ident(v, &id), 0);
  ck_assert_uint_eq(id, encode_slot_ident("organizations/acme/extensions/z1"));
  encode_slot_version("abc", 3, NULL, v);
  ck_assert_int_eq(encode_slot_version_ident(v, &id), 0);
  ck_assert_uint_eq(id, 0);
  ck_assert_int_eq(encode_slot_version_ident("0123456789abcdef", &id),
                   XDS_EINVAL);
  ck_assert_uint_ne(encode_slot_ident("x"), 0);
}
END_TEST

static Suite *slots_suite(void) {
  Suite *s = suite_create("slots");
  TCase *tc = tcase_create("changes");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, add_within_headroom_no_lds);
  tcase_add_test(tc, remove_within_headroom_no_lds);
  tcase_add_test(tc, swap_fail_closed_no_lds_never_missing);
  tcase_add_test(tc, swap_fail_open_never_twice);
  tcase_add_test(tc, move_across_phases_no_lds);
  tcase_add_test(tc, rotate_three_fail_closed);
  tcase_add_test(tc, outgrowing_headroom_is_one_lds);
  tcase_add_test(tc, without_slots_every_change_is_lds);
  tcase_add_test(tc, delta_swap_and_add_no_lds);
  tcase_add_test(tc, capacity_doubles_and_keeps_a_spare);
  tcase_add_test(tc, same_store_same_bytes);
  tcase_add_test(tc, tcp_listener_shape);
  tcase_add_test(tc, tcp_add_remove_no_lds);
  tcase_add_test(tc, tcp_swap_fail_closed_never_missing);
  tcase_add_test(tc, tcp_move_across_phases_and_ports_no_lds);
  tcase_add_test(tc, tcp_delta_swap_no_lds);
  tcase_add_test(tc, tcp_outgrowing_headroom_is_one_lds);
  tcase_add_test(tc, tcp_without_slots_membership_is_lds);
  tcase_add_test(tc, reconnect_sotw_swap_in_safe_order);
  tcase_add_test(tc, reconnect_delta_swap_in_safe_order);
  tcase_add_test(tc, reconnect_sotw_mid_swap_completes);
  tcase_add_test(tc, reconnect_delta_mid_swap_completes);
  tcase_add_test(tc, reconnect_unchanged_sends_nothing);
  tcase_add_test(tc, reconnect_layout_changed_lds_first_new_slots_only);
  tcase_add_test(tc, reconnect_unknown_occupant_is_kept_until_copied);
  tcase_add_test(tc, slot_version_names_its_occupant);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(slots_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
