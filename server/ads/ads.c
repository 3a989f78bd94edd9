/*
 * ads.c: the xDS protocol of one stream (envoy xds_protocol.rst), for the
 * LDS and ECDS types, state of the world and incremental.
 *
 * Rules implemented, each in one place:
 * - identity comes from the first request's node; a later node must be the
 *   same identity or the stream is closed; with mutual TLS the node must
 *   agree with the certificate (check_node);
 * - SotW: a request whose response_nonce is not the last nonce sent for its
 *   type is stale and ignored; delta: a stale nonce voids the ACK/NACK but
 *   subscription changes still apply (the protocol says both);
 * - error_detail set means NACK: logged with the node id; the rejected
 *   versions stay recorded as sent, so they are not resent until the
 *   content changes;
 * - an ACK only records what was acknowledged; what is owed is computed
 *   from versions (the `sent` map), so an ACK never causes a resend;
 * - SotW LDS is full state; SotW ECDS sends subscribed names whose version
 *   differs from what this stream has, and names newly added to the
 *   subscription even when unchanged; a reconnecting proxy whose
 *   version_info matches the current state is sent nothing;
 * - delta sends changed resources and names the ones that went away or do
 *   not exist in removed_resources; initial_resource_versions seed what the
 *   proxy has;
 * - a name the proxy may not see is never sent, and is logged once.
 */
#include "server/ads/ads.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/compose/chain.h"
#include "server/compose/identity.h"
#include "server/pb/typeurl.h"
#include "server/pb/wire.h"

#include "google/rpc/status.pb-c.h"

static const char *const type_urls[ADS_T_N] = {TYPE_LISTENER, TYPE_ECDS};
static const char *const type_names[ADS_T_N] = {"LDS", "ECDS"};

int ads_stream_init(struct ads_stream *s, enum ads_service svc,
                    enum ads_mode mode, const char *peer) {
  struct timespec now;

  memset(s, 0, sizeof(*s));
  clock_gettime(CLOCK_REALTIME, &now);
  s->connected_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  s->svc = svc;
  s->mode = mode;
  s->peer = xds_strdup(peer != NULL ? peer : "unknown");
  /* refused and absent are made on first use: most streams never need
   * them, and every map costs a few hundred bytes per stream. */
  for (int i = 0; i < ADS_T_N; i++)
    s->t[i].sent = xds_map_new_borrowed();
  if (s->peer == NULL || s->t[0].sent == NULL || s->t[1].sent == NULL) {
    ads_stream_cleanup(s);
    return XDS_ENOMEM;
  }
  return 0;
}

static void release_names(const char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    xds_intern_release(v[i]);
  xds_free(v);
}

static void free_names(struct ads_type_state *t) {
  release_names(t->names, t->n_names);
  t->names = NULL;
  t->n_names = 0;
}

static void free_owe_removed(struct ads_type_state *t) {
  release_names(t->owe_removed, t->n_owe_removed);
  t->owe_removed = NULL;
  t->n_owe_removed = 0;
}

/* Frees a value of a sent map. */
static void res_free(void *p) {
  struct ads_res *r = p;

  if (r != NULL)
    xds_intern_release(r->name);
  xds_free(r);
}

void ads_stream_cleanup(struct ads_stream *s) {
  for (int i = 0; i < ADS_T_N; i++) {
    free_names(&s->t[i]);
    free_owe_removed(&s->t[i]);
    xds_free(s->t[i].nack_error);
    xds_map_free(s->t[i].sent, res_free);
    xds_map_free(s->t[i].absent, NULL);
  }
  for (size_t i = 0; i < s->n_other; i++) {
    xds_free(s->other[i].type_url);
    release_names(s->other[i].absent, s->other[i].n_absent);
  }
  xds_map_free(s->refused, NULL);
  proxy_id_cleanup(&s->pid);
  snapshot_unref(s->snap);
  xds_free(s->peer);
  memset(s, 0, sizeof(*s));
}

static const char *node_name(const struct ads_stream *s) {
  return s->has_node ? s->pid.node_id : "(no node yet)";
}

static int close_with(struct ads_close *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int close_with(struct ads_close *c, int code, const char *fmt, ...) {
  va_list ap;

  if (c == NULL)
    return -1;
  c->code = code;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
  va_end(ap);
  return -1;
}

/* Ends the stream because memory ran out. Returns -1. */
static int close_oom(const struct ads_stream *s, struct ads_close *close) {
  return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                    "node %s: out of memory", node_name(s));
}

static int set_snapshot(struct ads_stream *s, struct snapshot *snap,
                        struct ads_close *close) {
  const struct xds_class *cls;
  int rc;

  rc = snapshot_class(snap, &s->pid, &cls);
  if (rc < 0)
    return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                      "node %s: cannot build its configuration: %s",
                      s->pid.node_id, xds_strerror(rc));
  if (cls->problems != NULL && s->cls != cls)
    XDS_LOGW("node %s: some listeners left out: %s", s->pid.node_id,
             cls->problems);
  if (s->snap != snap) {
    snapshot_ref(snap);
    snapshot_unref(s->snap);
    s->snap = snap;
  }
  s->cls = cls;
  return 0;
}

static int str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

/* With mutual TLS the certificate names the organization and tenant; the
 * node may not claim another. */
static int check_verified(struct ads_stream *s, struct proxy_id *pid,
                          struct ads_close *close) {
  const struct proxy_id *v = s->verified;

  if (v == NULL)
    return 0;
  if (!str_eq(pid->organization, v->organization) ||
      (pid->tenant != NULL && !str_eq(pid->tenant, v->tenant))) {
    XDS_LOGW("node %s from %s: metadata claims organization %s tenant %s but "
             "its certificate says organization %s tenant %s; refused",
             pid->node_id, s->peer, pid->organization,
             pid->tenant != NULL ? pid->tenant : "-", v->organization,
             v->tenant != NULL ? v->tenant : "-");
    return close_with(close, ADS_STATUS_PERMISSION_DENIED,
                      "node metadata claims a tenant its certificate does not "
                      "name");
  }
  /* The certificate's tenant applies even when the node names none. */
  if (pid->tenant == NULL && v->tenant != NULL) {
    pid->tenant = xds_strdup(v->tenant);
    if (pid->tenant == NULL)
      return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  return 0;
}

/* Identity: set from the first request, checked on every later one. */
static int check_node(struct ads_stream *s,
                      const Envoy__Config__Core__V3__Node *node,
                      struct snapshot *snap, struct ads_close *close) {
  struct proxy_id pid;
  struct xds_err err;
  int same;

  if (node == NULL) {
    if (s->has_node)
      return 0;
    XDS_LOGW("stream from %s: first request has no node; closing", s->peer);
    return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                      "the first request of a stream must carry the node");
  }
  if (identity_from_node(node, &pid, &err) < 0) {
    XDS_LOGW("stream from %s: %s; closing", s->peer, err.msg);
    return close_with(close, ADS_STATUS_INVALID_ARGUMENT, "%s", err.msg);
  }
  if (check_verified(s, &pid, close) < 0) {
    proxy_id_cleanup(&pid);
    return -1;
  }
  if (s->has_node) {
    same = identity_equal(&pid, &s->pid);
    proxy_id_cleanup(&pid);
    if (same)
      return 0;
    XDS_LOGW("node %s: a later request changed the node identity; closing",
             s->pid.node_id);
    return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                      "node identity changed within the stream");
  }
  s->pid = pid;
  s->has_node = 1;
  XDS_LOGI("proxy connected: node %s cluster %s organization %s tenant %s "
           "mode %s from %s (%s%s)",
           pid.node_id, pid.cluster[0] ? pid.cluster : "-", pid.organization,
           pid.tenant != NULL ? pid.tenant : "-",
           pid.mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR", s->peer,
           s->mode == ADS_DELTA ? "delta" : "state of the world",
           s->verified != NULL ? ", verified by certificate" : "");
  return set_snapshot(s, snap, close);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_subscribed(const struct ads_type_state *t, const char *name) {
  return t->names != NULL && bsearch(&name, t->names, t->n_names,
                                     sizeof(*t->names), str_cmp) != NULL;
}

/* Forgets that the proxy has name (so it is sent again). name may be the
 * sent entry's own name: it is used before that entry is freed. */
static void forget(struct ads_type_state *t, const char *name) {
  xds_map_del(t->absent, name);
  res_free(xds_map_del(t->sent, name));
}

/* Forgets every resource the proxy was sent whose name keep() rejects.
 * Returns 0 or XDS_ENOMEM (nothing forgotten). */
static int forget_unless(struct ads_type_state *t,
                         int (*keep)(const void *ctx, const char *name),
                         const void *ctx) {
  struct ads_res **gone = xds_calloc(xds_map_count(t->sent) + 1, sizeof(*gone));
  size_t pos = 0, n = 0;
  const char *key;
  void *val;

  if (gone == NULL)
    return XDS_ENOMEM;
  while (xds_map_next(t->sent, &pos, &key, &val))
    if (!keep(ctx, key))
      gone[n++] = val;
  for (size_t i = 0; i < n; i++) /* the name lives in the entry itself */
    forget(t, gone[i]->name);
  xds_free(gone);
  return 0;
}

/* Records that name went out at version in the response with nonce. */
static int remember(struct ads_type_state *t, const char *name,
                    const char *version, uint64_t nonce) {
  struct ads_res *r = xds_map_get(t->sent, name);

  if (r == NULL) {
    r = xds_calloc(1, sizeof(*r));
    if (r == NULL || (r->name = xds_intern(name)) == NULL ||
        xds_map_put(t->sent, r->name, r, NULL) < 0) {
      res_free(r);
      return XDS_ENOMEM;
    }
  }
  snprintf(r->version, sizeof(r->version), "%s", version);
  r->nonce = nonce;
  r->state = ADS_RES_PENDING;
  return 0;
}

/* The resource name of type idx, if this proxy may see it; NULL otherwise.
 * Refusals of names that exist but are not visible are logged once. */
static const struct xds_resource *lookup(struct ads_stream *s, int idx,
                                         const char *name, int log) {
  const struct catalog *cat;
  const struct wasm_ext *e;

  if (s->snap == NULL || s->cls == NULL)
    return NULL;
  if (idx == ADS_T_LDS) {
    size_t lo = 0, hi = s->cls->n_listeners;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp(s->cls->listeners[mid].name, name);
      if (c == 0)
        return &s->cls->listeners[mid];
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    return NULL;
  }
  cat = snapshot_catalog(s->snap);
  e = catalog_ext_find(cat, name);
  if (e != NULL && chain_ext_visible(e, &s->pid))
    return snapshot_ecds(s->snap, name);
  if (log && xds_map_get(s->refused, name) == NULL &&
      xds_map_count(s->refused) < ADS_NAMES_MAX) {
    /* A name this stream was sent before went away or lost its access
     * (the proxy asks until it processes the new listeners): routine, so
     * only at debug level. A name never sent is someone asking for what
     * it may not have: a warning. */
    if (xds_map_get(s->t[ADS_T_ECDS].sent, name) != NULL)
      XDS_LOGD("node %s: ECDS name %s no longer served to it: %s",
               s->pid.node_id, name,
               e == NULL ? "no such extension" : "not visible to this proxy");
    else
      XDS_LOGW("node %s: ECDS name %s refused: %s", s->pid.node_id, name,
               e == NULL ? "no such extension" : "not visible to this proxy");
    if (s->refused == NULL)
      s->refused = xds_map_new();
    if (s->refused != NULL)
      xds_map_put(s->refused, name, (void *)1, NULL);
  }
  return NULL;
}

/* Number of candidate resources of type idx under wildcard, and the i-th
 * (visible ones only; NULL for an invisible one). */
static size_t all_count(const struct ads_stream *s, int idx) {
  if (s->snap == NULL || s->cls == NULL)
    return 0;
  if (idx == ADS_T_LDS)
    return s->cls->n_listeners;
  return catalog_ext_count(snapshot_catalog(s->snap));
}

static const struct xds_resource *all_at(struct ads_stream *s, int idx,
                                         size_t i) {
  const struct wasm_ext *e;

  if (idx == ADS_T_LDS)
    return &s->cls->listeners[i];
  e = catalog_ext_at(snapshot_catalog(s->snap), i);
  if (!chain_ext_visible(e, &s->pid))
    return NULL;
  return snapshot_ecds(s->snap, e->fqn);
}

/* Whether two sorted lists of names are equal. */
static int same_names(const char *const *a, size_t na, const char *const *b,
                      size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0)
      return 0;
  return 1;
}

/* A sorted list of names, for forget_unless(). */
struct name_list {
  const char *const *v;
  size_t n;
};

static int in_name_list(const void *ctx, const char *name) {
  const struct name_list *l = ctx;

  return bsearch(&name, l->v, l->n, sizeof(*l->v), str_cmp) != NULL;
}

/* Replaces the SotW subscription of type t with the request's names.
 * Names newly added are forgotten, so they are sent again even if
 * unchanged (the protocol requires it). */
static int sotw_names(struct ads_stream *s, struct ads_type_state *t,
                      char **names, size_t n, struct ads_close *close) {
  const char **v;
  size_t m = 0;
  int wildcard = 0;

  if (n > ADS_NAMES_MAX)
    return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                      "node %s: %zu resource names, more than the limit %d",
                      node_name(s), n, ADS_NAMES_MAX);
  v = xds_calloc(n + 1, sizeof(*v));
  if (v == NULL)
    goto oom;
  for (size_t i = 0; i < n; i++) {
    if (strlen(names[i]) > ADS_NAME_LEN_MAX) {
      release_names(v, m);
      return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                        "node %s: a resource name is longer than %d bytes",
                        node_name(s), ADS_NAME_LEN_MAX);
    }
    if (strcmp(names[i], "*") == 0) {
      wildcard = 1;
      continue;
    }
    v[m] = xds_intern(names[i]);
    if (v[m] == NULL) {
      release_names(v, m);
      goto oom;
    }
    m++;
  }
  qsort(v, m, sizeof(*v), str_cmp);
  if (m > 1) {
    size_t w = 1;
    for (size_t r = 1; r < m; r++) {
      if (strcmp(v[r], v[w - 1]) == 0)
        xds_intern_release(v[r]);
      else
        v[w++] = v[r];
    }
    m = w;
  }
  if (n > 0)
    t->ever_named = 1;
  /* Legacy wildcard: an empty list before anything was ever named. */
  if (n == 0 && !t->ever_named)
    wildcard = 1;
  if (!wildcard) {
    /* Forget names no longer subscribed, and names newly subscribed. */
    struct name_list keep = {v, m};

    if (forget_unless(t, in_name_list, &keep) < 0) {
      release_names(v, m);
      goto oom;
    }
    for (size_t i = 0; i < m; i++)
      if (!t->wildcard && !is_subscribed(t, v[i]))
        forget(t, v[i]);
  } else if (!t->wildcard && t->requested) {
    /* Becoming wildcard subscribes everything anew. */
    size_t pos = 0;
    const char *key;
    void *val;
    while (xds_map_next(t->sent, &pos, &key, &val))
      ((struct ads_res *)val)->version[0] = '\0';
  }
  /* A changed subscription of a full-state type is always answered. */
  if (t == &s->t[ADS_T_LDS] && t->requested &&
      (wildcard != t->wildcard || !same_names(t->names, t->n_names, v, m)))
    t->must_answer = 1;
  free_names(t);
  t->names = v;
  t->n_names = m;
  t->wildcard = wildcard;
  return 0;
oom:
  return close_oom(s, close);
}

/* Unserved types whose Envoy client takes a delta removal of a name it
 * asked for as "this resource does not exist" (and stops waiting). */
static const char *const REMOVABLE_TYPES[] = {
    TYPE_PREFIX "envoy.config.cluster.v3.Cluster",
    TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment",
    TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret", NULL};

/* Notes the delta subscriptions to an unserved type, to be answered as
 * removed when the type allows it. Returns 0 or XDS_ENOMEM. */
static int other_absent(struct ads_other_type *o, char **names, size_t n) {
  if (!o->report_absent)
    return 0;
  for (size_t i = 0; i < n; i++) {
    const char **v;
    size_t j = 0;

    if (strcmp(names[i], "*") == 0 || strlen(names[i]) > ADS_NAME_LEN_MAX)
      continue;
    while (j < o->n_absent && strcmp(o->absent[j], names[i]) != 0)
      j++;
    if (j < o->n_absent || o->n_absent >= ADS_NAMES_MAX)
      continue;
    v = xds_realloc(o->absent, (o->n_absent + 1) * sizeof(*v));
    if (v == NULL)
      return XDS_ENOMEM;
    o->absent = v;
    if ((v[o->n_absent] = xds_intern(names[i])) == NULL)
      return XDS_ENOMEM;
    o->n_absent++;
    o->answered = 0;
  }
  return 0;
}

/* A request for a type wasmxds does not serve; sub (delta) names the
 * resources it subscribes to. Returns 0 or XDS_ENOMEM. */
static int other_type(struct ads_stream *s, const char *type_url, char **sub,
                      size_t n_sub) {
  struct ads_other_type *o;

  for (size_t i = 0; i < s->n_other; i++)
    if (strcmp(s->other[i].type_url, type_url) == 0)
      /* answered once; ACKs and repeats need nothing, new delta names
       * are answered as absent */
      return other_absent(&s->other[i], sub, n_sub);
  if (s->n_other == ADS_OTHER_TYPES_MAX) {
    XDS_LOGW("node %s: request for type %s ignored: wasmxds does not serve "
             "it and this stream already asked for %d other types",
             node_name(s), type_url, ADS_OTHER_TYPES_MAX);
    return 0;
  }
  o = &s->other[s->n_other];
  memset(o, 0, sizeof(*o));
  o->type_url = xds_strndup(type_url, ADS_NAME_LEN_MAX);
  if (o->type_url == NULL)
    return XDS_ENOMEM;
  s->n_other++;
  for (int i = 0; REMOVABLE_TYPES[i] != NULL; i++)
    if (strcmp(type_url, REMOVABLE_TYPES[i]) == 0)
      o->report_absent = 1;
  if (other_absent(o, sub, n_sub) < 0)
    return XDS_ENOMEM;
  XDS_LOGI("node %s: type %s is not served by wasmxds; answering with an "
           "empty response",
           node_name(s), type_url);
  return 0;
}

/* Maps a type URL to a served type for this stream's service: the index,
 * -1 for a type to answer empty, -2 for a request to ignore (logged). */
static int type_index(struct ads_stream *s, const char *type,
                      struct ads_close *close, int *idx) {
  *idx = -1;
  for (int i = 0; i < ADS_T_N; i++)
    if (strcmp(type, type_urls[i]) == 0)
      *idx = i;
  if (*idx < 0 && type[0] == '\0') {
    if (s->svc == ADS_SVC_ADS)
      return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                        "node %s: request without type_url on ADS",
                        node_name(s));
    *idx = s->svc == ADS_SVC_LDS ? ADS_T_LDS : ADS_T_ECDS;
  }
  if ((s->svc == ADS_SVC_LDS && *idx != ADS_T_LDS) ||
      (s->svc == ADS_SVC_ECDS && *idx != ADS_T_ECDS)) {
    XDS_LOGW("node %s: type \"%s\" on the %s service; ignored", node_name(s),
             type, s->svc == ADS_SVC_LDS ? "listener" : "extension config");
    *idx = -2;
  }
  return 0;
}

static uint64_t nonce_value(const char *nonce) {
  char *end;
  unsigned long long v = strtoull(nonce, &end, 10);

  return *end == '\0' ? (uint64_t)v : 0;
}

/*
 * An ACK or NACK of the response with nonce: updates the state of the
 * resources that response carried. latest says whether it is the last
 * response of the type; an earlier one (overtaken by a newer response
 * before the proxy answered it) still tells which of its resources were
 * accepted or rejected, but not the type's current version. A nonce this
 * stream never sent is ignored.
 */
static void on_ack(struct ads_stream *s, struct ads_type_state *t, int idx,
                   const char *nonce, const char *version,
                   const Google__Rpc__Status *error, int latest) {
  uint64_t n = nonce_value(nonce);
  size_t pos = 0;
  const char *key;
  void *val;

  if (n == 0 || n > s->nonce_seq)
    return;
  if (error != NULL) {
    const char *msg = error->message != NULL ? error->message : "";
    t->nacks++;
    xds_free(t->nack_error);
    t->nack_error = xds_strndup(msg, ADS_NACK_ERROR_MAX);
    XDS_LOGW("NACK from node %s for %s version %s (nonce %s; still on %s): %s",
             node_name(s), type_names[idx],
             latest ? t->sent_version : "of an earlier response", nonce,
             version[0] ? version : "nothing", msg);
  } else {
    t->acks++;
    if (latest && (version[0] != '\0' || s->mode == ADS_DELTA))
      snprintf(t->acked_version, sizeof(t->acked_version), "%s",
               s->mode == ADS_DELTA ? t->sent_version : version);
    XDS_LOGD("ACK from node %s for %s nonce %s%s", node_name(s),
             type_names[idx], nonce, latest ? "" : " (an earlier response)");
  }
  while (xds_map_next(t->sent, &pos, &key, &val)) {
    struct ads_res *r = val;
    if (r->nonce != n || r->state != ADS_RES_PENDING)
      continue;
    if (error != NULL) {
      r->state = ADS_RES_NACKED;
    } else {
      r->state = ADS_RES_ACKED;
      memcpy(r->acked, r->version, sizeof(r->acked));
    }
  }
}

/* The candidates of type idx: every visible resource under wildcard, else
 * the subscribed names; candidate() is NULL for one that does not exist or
 * that the proxy may not see (logged once when log is set). */
static size_t candidate_count(const struct ads_stream *s, int idx) {
  const struct ads_type_state *t = &s->t[idx];

  return t->wildcard ? all_count(s, idx) : t->n_names;
}

static const struct xds_resource *candidate(struct ads_stream *s, int idx,
                                            size_t i, int log) {
  struct ads_type_state *t = &s->t[idx];

  return t->wildcard ? all_at(s, idx, i) : lookup(s, idx, t->names[i], log);
}

/* The version of a type's state for this stream: a hash of every
 * candidate's name and version (SotW version_info, delta
 * system_version_info). */
static int state_version(struct ads_stream *s, int idx,
                         char out[VERSION_LEN + 1]) {
  struct version_hasher h;
  size_t n = candidate_count(s, idx);

  if (version_begin(&h) < 0)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct xds_resource *r = candidate(s, idx, i, 0);
    if (r == NULL)
      continue;
    version_add_str(&h, r->name);
    version_add_str(&h, r->version);
  }
  version_end(&h, out);
  return 0;
}

/* A SotW stream's first request of a type with a version: a reconnecting
 * proxy. When its version is the current state, it has everything. */
static int sotw_resume(struct ads_stream *s, int idx, const char *version) {
  struct ads_type_state *t = &s->t[idx];
  char current[VERSION_LEN + 1];
  size_t n;

  if (idx == ADS_T_LDS && t->wildcard) {
    if (s->cls == NULL || strcmp(version, s->cls->lds_version) != 0)
      return 0;
    n = s->cls->n_listeners;
    for (size_t i = 0; i < n; i++)
      if (remember(t, s->cls->listeners[i].name, s->cls->listeners[i].version,
                   0) < 0)
        return XDS_ENOMEM;
  } else {
    if (state_version(s, idx, current) < 0)
      return XDS_ENOMEM;
    if (strcmp(version, current) != 0)
      return 0;
    n = candidate_count(s, idx);
    for (size_t i = 0; i < n; i++) {
      const struct xds_resource *r = candidate(s, idx, i, 0);
      if (r != NULL && remember(t, r->name, r->version, 0) < 0)
        return XDS_ENOMEM;
    }
  }
  {
    size_t pos = 0;
    const char *key;
    void *val;
    while (xds_map_next(t->sent, &pos, &key, &val))
      ((struct ads_res *)val)->state = ADS_RES_CLIENT;
  }
  snprintf(t->sent_version, sizeof(t->sent_version), "%s", version);
  memcpy(t->acked_version, t->sent_version, sizeof(t->acked_version));
  t->sent_once = 1;
  XDS_LOGD("node %s: resumed %s at version %s; nothing to send", node_name(s),
           type_names[idx], version);
  return 0;
}

/* What every request, SotW or delta, starts with: identity, then the type.
 * Returns -1 (close the stream), 0 (the request is done: another type,
 * answered empty, or ignored) or 1 with *idx the served type. */
static int request_start(struct ads_stream *s,
                         const Envoy__Config__Core__V3__Node *node,
                         const char *type, char **sub, size_t n_sub,
                         struct snapshot *snap, struct ads_close *close,
                         int *idx) {
  if (check_node(s, node, snap, close) < 0)
    return -1;
  if (type_index(s, type, close, idx) < 0)
    return -1;
  if (*idx == -2)
    return 0;
  if (*idx < 0) {
    if (other_type(s, type, sub, n_sub) < 0)
      return close_oom(s, close);
    return 0;
  }
  return 1;
}

int ads_stream_on_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close) {
  struct ads_type_state *t;
  const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
  const char *version = req->version_info != NULL ? req->version_info : "";
  const char *type = req->type_url != NULL ? req->type_url : "";
  int idx, first, rc;

  rc = request_start(s, req->node, type, NULL, 0, snap, close, &idx);
  if (rc <= 0)
    return rc;
  t = &s->t[idx];
  if (nonce[0] != '\0' && strcmp(nonce, t->nonce) != 0) {
    /* Stale: its subscription is ignored, as the protocol says, but it
     * still ACKs or NACKs the earlier response it names. */
    XDS_LOGD("node %s: %s request with stale nonce %s (latest %s): only its "
             "ACK or NACK counts",
             node_name(s), type_names[idx], nonce, t->nonce);
    on_ack(s, t, idx, nonce, version, req->error_detail, 0);
    return 0;
  }
  if (nonce[0] != '\0')
    on_ack(s, t, idx, nonce, version, req->error_detail, 1);
  first = !t->requested;
  if (sotw_names(s, t, req->resource_names, req->n_resource_names, close) < 0)
    return -1;
  t->requested = 1;
  if (first && nonce[0] == '\0' && version[0] != '\0' &&
      sotw_resume(s, idx, version) < 0)
    return close_oom(s, close);
  return 0;
}

/* Adds name to t->names (which has room for it) at its sorted place,
 * unless it is there. Returns 0 or XDS_ENOMEM. */
static int insert_name(struct ads_type_state *t, const char *name) {
  size_t lo = 0, hi = t->n_names;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(t->names[mid], name);

    if (c == 0)
      return 0;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  name = xds_intern(name);
  if (name == NULL)
    return XDS_ENOMEM;
  memmove(t->names + lo + 1, t->names + lo,
          (t->n_names - lo) * sizeof(*t->names));
  t->names[lo] = name;
  t->n_names++;
  return 0;
}

/*
 * A name subscribed both by name and by the wildcard was unsubscribed: the
 * protocol wants an answer, the resource (sent again) when the wildcard
 * covers it, else its name in removed_resources. Returns 0 or XDS_ENOMEM.
 */
static int owe_unsubscribe(struct ads_stream *s, struct ads_type_state *t,
                           const char *name) {
  const char **v;

  forget(t, name);
  if (lookup(s, (int)(t - s->t), name, 0) != NULL)
    return 0;
  for (size_t i = 0; i < t->n_owe_removed; i++)
    if (strcmp(t->owe_removed[i], name) == 0)
      return 0;
  if (t->n_owe_removed >= ADS_NAMES_MAX)
    return 0; /* bounded: the proxy unsubscribed far too much at once */
  v = xds_realloc(t->owe_removed, (t->n_owe_removed + 1) * sizeof(*v));
  if (v == NULL)
    return XDS_ENOMEM;
  t->owe_removed = v;
  if ((v[t->n_owe_removed] = xds_intern(name)) == NULL)
    return XDS_ENOMEM;
  t->n_owe_removed++;
  return 0;
}

/* Applies a delta subscription change. */
static int delta_subscribe(struct ads_stream *s, struct ads_type_state *t,
                           char **sub, size_t n_sub, char **unsub,
                           size_t n_unsub, int first, struct ads_close *close) {
  size_t n = t->n_names;
  const char **v;

  if (n + n_sub > ADS_NAMES_MAX)
    return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                      "node %s: more than %d subscribed names", node_name(s),
                      ADS_NAMES_MAX);
  if (first && n_sub == 0 && n_unsub == 0)
    t->wildcard = 1; /* legacy wildcard */
  for (size_t i = 0; i < n_unsub; i++) {
    const char *name = unsub[i];
    const char **hit;
    if (strcmp(name, "*") == 0) {
      t->wildcard = 0;
      continue;
    }
    hit = t->names != NULL
              ? bsearch(&name, t->names, t->n_names, sizeof(*t->names), str_cmp)
              : NULL;
    if (hit != NULL) {
      size_t at = (size_t)(hit - t->names);
      xds_intern_release(*hit);
      memmove(hit, hit + 1, (t->n_names - at - 1) * sizeof(*hit));
      t->n_names--;
    }
    if (!t->wildcard) {
      forget(t, name);
    } else if (hit != NULL && owe_unsubscribe(s, t, name) < 0) {
      return close_oom(s, close);
    }
  }
  v = xds_realloc(t->names, (t->n_names + n_sub + 1) * sizeof(*v));
  if (v == NULL)
    return close_oom(s, close);
  t->names = v;
  for (size_t i = 0; i < n_sub; i++) {
    const char *name = sub[i];
    if (strlen(name) > ADS_NAME_LEN_MAX)
      return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                        "node %s: a resource name is longer than %d bytes",
                        node_name(s), ADS_NAME_LEN_MAX);
    if (strcmp(name, "*") == 0) {
      t->wildcard = 1;
      continue;
    }
    /* A subscription must be answered, even for a name the server thinks
     * the proxy has; what the first request's initial_resource_versions
     * declare is the exception. */
    if (!first)
      forget(t, name);
    if (insert_name(t, name) < 0)
      return close_oom(s, close);
  }
  return 0;
}

int ads_stream_on_delta_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close) {
  struct ads_type_state *t;
  const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
  const char *type = req->type_url != NULL ? req->type_url : "";
  int idx, first, rc;

  rc = request_start(s, req->node, type, req->resource_names_subscribe,
                     req->n_resource_names_subscribe, snap, close, &idx);
  if (rc <= 0)
    return rc;
  t = &s->t[idx];
  if (nonce[0] != '\0') {
    int latest = strcmp(nonce, t->nonce) == 0;

    if (!latest)
      XDS_LOGD("node %s: delta %s request with stale nonce %s (latest %s): "
               "it ACKs or NACKs an earlier response",
               node_name(s), type_names[idx], nonce, t->nonce);
    on_ack(s, t, idx, nonce, "", req->error_detail, latest);
  }
  first = !t->requested;
  if (first) {
    /* What the proxy already has, from a previous stream. */
    for (size_t i = 0; i < req->n_initial_resource_versions; i++) {
      const char *name = req->initial_resource_versions[i]->key;
      const char *ver = req->initial_resource_versions[i]->value;
      struct ads_res *r;
      if (name == NULL || ver == NULL || strlen(name) > ADS_NAME_LEN_MAX)
        continue;
      if (i >= ADS_NAMES_MAX)
        return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                          "node %s: more than %d initial resource versions",
                          node_name(s), ADS_NAMES_MAX);
      if (remember(t, name, ver, 0) < 0)
        return close_oom(s, close);
      r = xds_map_get(t->sent, name);
      r->state = ADS_RES_CLIENT;
      memcpy(r->acked, r->version, sizeof(r->acked));
    }
    t->must_answer = req->n_initial_resource_versions == 0;
  }
  if (delta_subscribe(s, t, req->resource_names_subscribe,
                      req->n_resource_names_subscribe,
                      req->resource_names_unsubscribe,
                      req->n_resource_names_unsubscribe, first, close) < 0)
    return -1;
  t->requested = 1;
  return 0;
}

int ads_stream_on_snapshot(struct ads_stream *s, struct snapshot *snap,
                           struct ads_close *close) {
  if (!s->has_node || s->snap == snap)
    return 0;
  return set_snapshot(s, snap, close);
}

static uint64_t next_nonce(struct ads_stream *s, char out[24]) {
  snprintf(out, 24, "%" PRIu64, ++s->nonce_seq);
  return s->nonce_seq;
}

/*
 * SotW LDS by name (a client that lists the listeners it wants instead of
 * the wildcard): every response carries every subscribed listener the
 * proxy has, and one is owed when that set or a version changes, or the
 * subscription itself changed (a name that does not exist is thus
 * answered by its absence).
 */
static int sotw_lds_named_response(struct ads_stream *s, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[ADS_T_LDS];
  char version[VERSION_LEN + 1];
  size_t n_sent = 0;
  uint64_t n;
  int rc;

  if (state_version(s, ADS_T_LDS, version) < 0)
    return XDS_ENOMEM;
  if (t->sent_once && !t->must_answer && strcmp(version, t->sent_version) == 0)
    return 0;
  n = next_nonce(s, t->nonce);
  rc = wire_put_string(out, 1, version);
  for (size_t i = 0; rc == 0 && i < t->n_names; i++) {
    const struct xds_resource *r = candidate(s, ADS_T_LDS, i, 0);
    if (r != NULL)
      rc = wire_put_any(out, 2, TYPE_LISTENER, r->bytes, r->len);
  }
  if (rc == 0)
    rc = wire_put_string(out, 4, TYPE_LISTENER);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  if (rc < 0)
    return rc;
  /* The proxy now has exactly these. */
  for (size_t i = 0; i < t->n_names; i++) {
    const struct xds_resource *r = candidate(s, ADS_T_LDS, i, 0);
    if (r == NULL) {
      forget(t, t->names[i]);
    } else {
      if (remember(t, r->name, r->version, n) < 0)
        return XDS_ENOMEM;
      n_sent++;
    }
  }
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += n_sent;
  s->last_type = ADS_T_LDS;
  s->last_resources = n_sent;
  XDS_LOGD("node %s: sent LDS version %s (%zu named listeners, nonce %s)",
           s->pid.node_id, version, n_sent, t->nonce);
  return 1;
}

/* For forget_unless(): name is one of the stream's listeners now. */
static int is_listener_of(const void *ctx, const char *name) {
  return lookup((struct ads_stream *)ctx, ADS_T_LDS, name, 0) != NULL;
}

static int sotw_lds_response(struct ads_stream *s, struct xds_buf *out,
                             struct ads_shared *shared) {
  struct ads_type_state *t = &s->t[ADS_T_LDS];
  uint64_t n;
  int rc = 0;

  if (!t->requested || s->cls == NULL)
    return 0;
  if (!t->wildcard)
    return sotw_lds_named_response(s, out);
  if (t->sent_once && !t->must_answer &&
      strcmp(t->sent_version, s->cls->lds_version) == 0)
    return 0;
  n = next_nonce(s, t->nonce);
  if (shared != NULL) {
    /* The class's body, shared; only the nonce is this stream's. */
    shared->data = s->cls->lds_body;
    shared->len = s->cls->lds_body_len;
    shared->snap = s->snap;
  } else {
    rc = xds_buf_append(out, s->cls->lds_body, s->cls->lds_body_len);
  }
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  if (rc < 0)
    return rc;
  /* Full state: the proxy now has exactly these listeners. */
  if (forget_unless(t, is_listener_of, s) < 0)
    return XDS_ENOMEM;
  for (size_t i = 0; i < s->cls->n_listeners; i++)
    if (remember(t, s->cls->listeners[i].name, s->cls->listeners[i].version,
                 n) < 0)
      return XDS_ENOMEM;
  memcpy(t->sent_version, s->cls->lds_version, sizeof(t->sent_version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += s->cls->n_listeners;
  s->last_type = ADS_T_LDS;
  s->last_resources = s->cls->n_listeners;
  XDS_LOGD("node %s: sent LDS version %s (%zu listeners, nonce %s)",
           s->pid.node_id, t->sent_version, s->cls->n_listeners, t->nonce);
  return 1;
}

/* Resources of type idx the stream owes: visible candidates whose version
 * differs from what the proxy has. *send is a new array (caller frees). */
static int owed(struct ads_stream *s, int idx,
                const struct xds_resource ***send, size_t *n_send) {
  struct ads_type_state *t = &s->t[idx];
  size_t n = candidate_count(s, idx);
  const struct xds_resource **v = xds_calloc(n + 1, sizeof(*v));

  *send = v;
  *n_send = 0;
  if (v == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct xds_resource *r = candidate(s, idx, i, 1);
    const struct ads_res *had;
    if (r == NULL)
      continue;
    had = xds_map_get(t->sent, r->name);
    if (had == NULL || strcmp(had->version, r->version) != 0)
      v[(*n_send)++] = r;
  }
  return 0;
}

static int sotw_ecds_response(struct ads_stream *s, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[ADS_T_ECDS];
  const struct xds_resource **send;
  char version[VERSION_LEN + 1];
  size_t n_send;
  uint64_t n;
  int rc;

  if (!t->requested || s->snap == NULL)
    return 0;
  rc = owed(s, ADS_T_ECDS, &send, &n_send);
  if (rc < 0 || n_send == 0)
    goto out;
  rc = state_version(s, ADS_T_ECDS, version);
  if (rc < 0)
    goto out;
  n = next_nonce(s, t->nonce);
  rc = wire_put_string(out, 1, version);
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = wire_put_any(out, 2, TYPE_ECDS, send[i]->bytes, send[i]->len);
  if (rc == 0)
    rc = wire_put_string(out, 4, TYPE_ECDS);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = remember(t, send[i]->name, send[i]->version, n);
  if (rc < 0)
    goto out;
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  s->responses++;
  s->resources_sent += n_send;
  s->last_type = ADS_T_ECDS;
  s->last_resources = n_send;
  XDS_LOGD("node %s: sent ECDS version %s (%zu configs, nonce %s)",
           s->pid.node_id, version, n_send, t->nonce);
  rc = 1;
out:
  xds_free(send);
  return rc;
}

/* Appends one delta Resource{version, resource, name} as field 2. */
static int put_delta_resource(struct xds_buf *out, const char *type_url,
                              const struct xds_resource *r) {
  size_t tlen = strlen(type_url), nlen = strlen(r->name);
  size_t any_len = wire_bytes_size(1, tlen) + wire_bytes_size(2, r->len);
  size_t inner = wire_bytes_size(1, strlen(r->version)) +
                 wire_bytes_size(2, any_len) + wire_bytes_size(3, nlen);
  int rc = wire_put_len_prefix(out, 2, inner);

  if (rc == 0)
    rc = wire_put_string(out, 1, r->version);
  if (rc == 0)
    rc = wire_put_any(out, 2, type_url, r->bytes, r->len);
  if (rc == 0)
    rc = wire_put_bytes(out, 3, r->name, nlen);
  return rc;
}

static int delta_response(struct ads_stream *s, int idx, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[idx];
  const struct xds_resource **send = NULL;
  char **removed = NULL;
  size_t n_send = 0, n_removed = 0, pos = 0;
  char version[VERSION_LEN + 1];
  const char *key;
  void *val;
  uint64_t n;
  int rc;

  if (!t->requested || s->snap == NULL)
    return 0;
  rc = owed(s, idx, &send, &n_send);
  if (rc < 0)
    goto out;
  removed =
      xds_calloc(xds_map_count(t->sent) + t->n_names + t->n_owe_removed + 1,
                 sizeof(*removed));
  if (removed == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  /* What the proxy has that is gone or hidden now. */
  while (xds_map_next(t->sent, &pos, &key, &val)) {
    if (!t->wildcard && !is_subscribed(t, key))
      continue;
    if (lookup(s, idx, key, 0) == NULL)
      removed[n_removed++] = (char *)key;
  }
  /* Names subscribed that do not exist (for this proxy), said once. */
  for (size_t i = 0; i < t->n_names; i++) {
    const char *name = t->names[i];
    if (xds_map_get(t->sent, name) != NULL ||
        xds_map_get(t->absent, name) != NULL || lookup(s, idx, name, 0) != NULL)
      continue;
    removed[n_removed++] = (char *)name;
  }
  /* Unsubscribed names the wildcard does not cover (not already above). */
  for (size_t i = 0; i < t->n_owe_removed; i++) {
    const char *name = t->owe_removed[i];
    size_t j = 0;

    while (j < n_removed && strcmp(removed[j], name) != 0)
      j++;
    if (j == n_removed && xds_map_get(t->sent, name) == NULL &&
        lookup(s, idx, name, 0) == NULL)
      removed[n_removed++] = (char *)name;
  }
  if (n_send == 0 && n_removed == 0 && !t->must_answer)
    goto out; /* rc is 0 */
  rc = state_version(s, idx, version);
  if (rc < 0)
    goto out;
  n = next_nonce(s, t->nonce);
  rc = wire_put_string(out, 1, version);
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = put_delta_resource(out, type_urls[idx], send[i]);
  if (rc == 0)
    rc = wire_put_string(out, 4, type_urls[idx]);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  for (size_t i = 0; rc == 0 && i < n_removed; i++)
    rc = wire_put_string(out, 6, removed[i]);
  if (rc < 0)
    goto out;
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = remember(t, send[i]->name, send[i]->version, n);
  /* Removed names: no longer held by the proxy; explicit subscriptions to
   * them are remembered as answered. The strings may live in the maps we
   * edit, so copy first. */
  for (size_t i = 0; rc == 0 && i < n_removed; i++) {
    char *name = xds_strdup(removed[i]);
    if (name == NULL) {
      rc = XDS_ENOMEM;
      break;
    }
    res_free(xds_map_del(t->sent, name));
    if (is_subscribed(t, name) &&
        ((t->absent == NULL && (t->absent = xds_map_new()) == NULL) ||
         xds_map_put(t->absent, name, (void *)1, NULL) < 0))
      rc = XDS_ENOMEM;
    xds_free(name);
  }
  if (rc < 0)
    goto out;
  free_owe_removed(t); /* answered: removed above, or sent again */
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += n_send;
  s->last_type = idx;
  s->last_resources = n_send;
  XDS_LOGD("node %s: sent delta %s %s (%zu resources, %zu removed, nonce %s)",
           s->pid.node_id, type_names[idx], version, n_send, n_removed,
           t->nonce);
  rc = 1;
out:
  xds_free(send);
  xds_free(removed);
  return rc;
}

static int other_response(struct ads_stream *s, struct xds_buf *out) {
  for (size_t i = 0; i < s->n_other; i++) {
    struct ads_other_type *o = &s->other[i];
    int rc;
    if (o->answered)
      continue;
    next_nonce(s, o->nonce);
    /* Fields 4 and 5 are type_url and nonce in both response messages;
     * 6 is DeltaDiscoveryResponse.removed_resources. */
    rc = wire_put_string(out, 4, o->type_url);
    if (rc == 0)
      rc = wire_put_string(out, 5, o->nonce);
    for (size_t j = 0; rc == 0 && j < o->n_absent; j++)
      rc = wire_put_string(out, 6, o->absent[j]);
    if (rc < 0)
      return rc;
    release_names(o->absent, o->n_absent);
    o->absent = NULL;
    o->n_absent = 0;
    o->answered = 1;
    s->responses++;
    s->last_type = -1;
    s->last_resources = 0;
    return 1;
  }
  return 0;
}

int ads_stream_next_response(struct ads_stream *s, struct xds_buf *out,
                             struct ads_shared *shared) {
  int rc;

  xds_buf_reset(out);
  if (shared != NULL)
    shared->data = NULL;
  if (!s->has_node)
    return 0;
  if (s->mode == ADS_DELTA) {
    rc = delta_response(s, ADS_T_LDS, out);
    if (rc == 0)
      rc = delta_response(s, ADS_T_ECDS, out);
  } else {
    rc = sotw_lds_response(s, out, shared);
    if (rc == 0)
      rc = sotw_ecds_response(s, out);
  }
  if (rc != 0)
    return rc;
  return other_response(s, out);
}

static const char *state_name(enum ads_res_state st) {
  switch (st) {
  case ADS_RES_PENDING:
    return "DEPLOYMENT_PENDING";
  case ADS_RES_ACKED:
    return "FILTERS_DEPLOYED";
  case ADS_RES_NACKED:
    return "DEPLOYMENT_FAILED";
  case ADS_RES_CLIENT:
    return "FILTERS_DEPLOYED";
  }
  return "UNKNOWN";
}

json_t *ads_stream_status(const struct ads_stream *s) {
  json_t *o = json_object(), *types = json_object();

  if (o == NULL || types == NULL) {
    json_decref(o);
    json_decref(types);
    return NULL;
  }
  json_object_set_new(o, "node_id",
                      json_string(s->has_node ? s->pid.node_id : ""));
  if (s->has_node) {
    json_object_set_new(o, "cluster", json_string(s->pid.cluster));
    json_object_set_new(o, "organization", json_string(s->pid.organization));
    json_object_set_new(
        o, "tenant", s->pid.tenant ? json_string(s->pid.tenant) : json_null());
    json_object_set_new(
        o, "mode",
        json_string(s->pid.mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR"));
  }
  json_object_set_new(o, "peer", json_string(s->peer));
  json_object_set_new(o, "protocol",
                      json_string(s->mode == ADS_DELTA ? "delta" : "sotw"));
  json_object_set_new(o, "verified_by_certificate",
                      json_boolean(s->verified != NULL));
  {
    char when[40];
    time_t secs = (time_t)(s->connected_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(o, "connected_since", json_string(when));
  }
  if (s->cls != NULL) {
    /* The class key is organization, tenant, mode and the selected
     * templates, one per line. */
    json_t *cls = json_object(), *tmpls = json_array();
    const char *p = s->cls->key;
    int field = 0;
    while (*p != '\0') {
      const char *nl = strchr(p, '\n');
      size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
      json_t *v = json_stringn(p, len);
      if (field == 0)
        json_object_set_new(cls, "organization", v);
      else if (field == 1)
        json_object_set_new(cls, "tenant",
                            len > 0 ? v : (json_decref(v), json_null()));
      else if (field == 2)
        json_object_set_new(cls, "mode", v);
      else
        json_array_append_new(tmpls, v);
      field++;
      p += len + (nl != NULL ? 1 : 0);
    }
    json_object_set_new(cls, "templates", tmpls);
    json_object_set_new(o, "class", cls);
  }
  json_object_set_new(o, "responses", json_integer((json_int_t)s->responses));
  for (int i = 0; i < ADS_T_N; i++) {
    const struct ads_type_state *t = &s->t[i];
    json_t *tj, *res;
    size_t pos = 0;
    const char *key;
    void *val;
    if (!t->requested)
      continue;
    tj = json_object();
    res = json_object();
    json_object_set_new(tj, "version_sent", json_string(t->sent_version));
    json_object_set_new(tj, "version_acked", json_string(t->acked_version));
    json_object_set_new(tj, "acks", json_integer((json_int_t)t->acks));
    json_object_set_new(tj, "nacks", json_integer((json_int_t)t->nacks));
    if (t->nack_error != NULL)
      json_object_set_new(tj, "last_nack_error", json_string(t->nack_error));
    json_object_set_new(tj, "wildcard", json_boolean(t->wildcard));
    while (xds_map_next(t->sent, &pos, &key, &val)) {
      const struct ads_res *r = val;
      json_t *rj = json_object();
      json_object_set_new(rj, "version_sent", json_string(r->version));
      json_object_set_new(rj, "version_acked", json_string(r->acked));
      json_object_set_new(rj, "state", json_string(state_name(r->state)));
      if (r->state == ADS_RES_NACKED && t->nack_error != NULL)
        json_object_set_new(rj, "error", json_string(t->nack_error));
      if (i == ADS_T_ECDS && s->snap != NULL) {
        /* What the extension is served as, and why when not itself. */
        const struct encode_module *m = snapshot_module(s->snap, key);
        const struct wasm_ext *e =
            catalog_ext_find(snapshot_catalog(s->snap), key);
        if (m != NULL && e != NULL) {
          if (m->kind != ENCODE_MOD_UNAVAILABLE) {
            json_object_set_new(rj, "served_as", json_string("wasm"));
          } else {
            json_object_set_new(
                rj, "served_as",
                json_string(e->fail_strategy == WASM_FAIL_OPEN
                                ? "allow-all RBAC substitute (FAIL_OPEN)"
                                : "deny-all RBAC substitute (FAIL_CLOSE)"));
            json_object_set_new(rj, "reason", json_string(m->reason));
          }
        }
      }
      json_object_set_new(res, key, rj);
    }
    json_object_set_new(tj, "resources", res);
    json_object_set_new(types, type_names[i], tj);
  }
  json_object_set_new(o, "types", types);
  return o;
}
