/*
 * churn_bench.c: drains per proxy for plugin churn (issue 19), with and
 * without --ecds-slots. N proxies (offline ADS streams, the server's own
 * protocol core, no gRPC) hold a full config; then three changes are
 * published one after the other: an extension added, one removed, two
 * priorities swapped. For each change every stream is answered until it
 * owes nothing (each response ACKed), and the bench counts per proxy the
 * LDS messages (each one a listener drain in Envoy) and the ECDS messages
 * and configs.
 *
 * usage: churn_bench [--proxies N] [--slots H]   (defaults 10000, 4)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/ads/ads_impl.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#define NAMES_MAX 512

struct ext {
  const char *name, *phase;
  int priority;
};

/* The stores: base, +add, -remove, swap. */
static const struct ext st0[] = {{"authn", "AUTHN", 0},
                                 {"z1", "AUTHZ", 20},
                                 {"z2", "AUTHZ", 10},
                                 {"stats", "STATS", 0}};
static const struct ext st1[] = {{"authn", "AUTHN", 0},
                                 {"z0", "AUTHZ", 30},
                                 {"z1", "AUTHZ", 20},
                                 {"z2", "AUTHZ", 10},
                                 {"stats", "STATS", 0}};
static const struct ext st2[] = {
    {"authn", "AUTHN", 0}, {"z0", "AUTHZ", 30}, {"z2", "AUTHZ", 10}};
static const struct ext st3[] = {
    {"authn", "AUTHN", 0}, {"z0", "AUTHZ", 10}, {"z2", "AUTHZ", 30}};

static const char *yaml_of(const struct ext *e, size_t n) {
  static char buf[8192];
  size_t len = 0;

  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(
        buf + len, sizeof(buf) - len,
        "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
        "metadata: {organization: acme, name: %s}\n"
        "spec: {url: file:///w/%s.wasm, phase: %s, priority: %d}\n",
        e[i].name, e[i].name, e[i].phase, e[i].priority);
  snprintf(buf + len, sizeof(buf) - len, "%s",
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"
           "  route: {cluster: app}\n  httpFilters:\n"
           "  - name: envoy.filters.http.router\n"
           "    typedConfig: {'@type': "
           "type.googleapis.com/envoy.extensions.filters.http.router.v3."
           "Router}\n");
  return buf;
}

static struct snapshot *snap_of(const struct ext *e, size_t n, uint32_t h,
                                uint64_t gen) {
  char path[] = "/tmp/wasmxds-churn-XXXXXX.yaml";
  const char *yaml = yaml_of(e, n);
  struct catalog *cat = NULL;
  struct encode_opts o;
  struct snapshot *s = NULL;
  struct xds_err err = {0, ""};
  struct problems pb;
  int fd = mkstemps(path, 5), rc;

  if (fd < 0 || write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml)) {
    fprintf(stderr, "churn_bench: cannot write %s\n", path);
    exit(1);
  }
  close(fd);
  problems_init(&pb, 100);
  rc = file_store_load(path, NULL, &cat, &pb, &err);
  unlink(path);
  if (rc < 0 || problems_count(&pb) > 0) {
    fprintf(stderr, "churn_bench: store: %s\n", err.msg);
    exit(1);
  }
  problems_cleanup(&pb);
  encode_opts_default(&o);
  o.ecds_slots = h;
  if (snapshot_build(cat, &o, gen, &s, &err) < 0) {
    fprintf(stderr, "churn_bench: snapshot: %s\n", err.msg);
    exit(1);
  }
  catalog_unref(cat);
  return s;
}

struct px {
  struct ads_stream s;
  char lds_v[24], lds_n[24], ecds_v[24], ecds_n[24];
  unsigned lds, ecds, configs;
};

static Envoy__Config__Core__V3__Node node;
static Google__Protobuf__Struct md;
static Google__Protobuf__Struct__FieldsEntry e_org, *entries[1];
static Google__Protobuf__Value v_org;
static char *names[NAMES_MAX];
static size_t n_names;

static void request(struct px *p, struct snapshot *snap, int first,
                    const char *type, const char *v, const char *n,
                    int with_names) {
  Envoy__Service__Discovery__V3__DiscoveryRequest r =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  struct ads_close close;

  r.node = first ? &node : NULL;
  r.type_url = (char *)type;
  r.version_info = (char *)v;
  r.response_nonce = (char *)n;
  if (with_names) {
    r.resource_names = names;
    r.n_resource_names = n_names;
  }
  if (ads_stream_on_request(&p->s, &r, snap, &close) < 0) {
    fprintf(stderr, "churn_bench: request refused\n");
    exit(1);
  }
}

/* Answers p until it owes nothing, ACKing every response. */
static void drain(struct px *p, struct snapshot *snap, struct xds_buf *out) {
  for (;;) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r;
    int rc = ads_stream_next_response(&p->s, out, NULL);

    if (rc < 0) {
      fprintf(stderr, "churn_bench: response failed\n");
      exit(1);
    }
    if (rc == 0)
      return;
    r = envoy__service__discovery__v3__discovery_response__unpack(
        NULL, out->len, (const uint8_t *)out->data);
    if (r == NULL)
      exit(1);
    if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
      p->lds++;
      snprintf(p->lds_v, sizeof(p->lds_v), "%s", r->version_info);
      snprintf(p->lds_n, sizeof(p->lds_n), "%s", r->nonce);
      request(p, snap, 0, TYPE_LISTENER, p->lds_v, p->lds_n, 0);
    } else {
      p->ecds++;
      p->configs += (unsigned)r->n_resources;
      snprintf(p->ecds_v, sizeof(p->ecds_v), "%s", r->version_info);
      snprintf(p->ecds_n, sizeof(p->ecds_n), "%s", r->nonce);
      request(p, snap, 0, TYPE_ECDS, p->ecds_v, p->ecds_n, 1);
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
  }
}

/* The ECDS names the listeners of class view c reference (slots, or the
 * fqns of the extensions of s). */
static void names_of(const struct xds_class *c, struct snapshot *s) {
  const struct catalog *cat = snapshot_catalog(s);

  for (size_t i = 0; i < n_names; i++)
    free(names[i]);
  n_names = 0;
  for (size_t i = 0; i < c->n_slots && n_names < NAMES_MAX; i++)
    names[n_names++] = strdup(c->slots[i].name);
  if (c->n_slots == 0)
    for (size_t i = 0; i < catalog_ext_count(cat) && n_names < NAMES_MAX; i++)
      names[n_names++] = strdup(catalog_ext_at(cat, i)->fqn);
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(size_t n, uint32_t h) {
  static const char *what[] = {"add an extension (z0, first in AUTHZ)",
                               "remove two (z1, stats)",
                               "swap two priorities (z0 <-> z2)"};
  struct snapshot *snaps[4];
  struct px *px = calloc(n, sizeof(*px));
  struct xds_buf out;

  if (px == NULL)
    exit(1);
  xds_buf_init(&out, 4 << 20);
  snaps[0] = snap_of(st0, 4, h, 1);
  snaps[1] = snap_of(st1, 5, h, 2);
  snaps[2] = snap_of(st2, 3, h, 3);
  snaps[3] = snap_of(st3, 3, h, 4);
  for (size_t i = 0; i < n; i++) {
    if (ads_stream_init(&px[i].s, ADS_SVC_ADS, ADS_SOTW, "bench") < 0)
      exit(1);
    request(&px[i], snaps[0], 1, TYPE_LISTENER, "", "", 0);
    if (i == 0)
      names_of(px[0].s.cls, snaps[0]);
    request(&px[i], snaps[0], 0, TYPE_ECDS, "", "", 1);
    drain(&px[i], snaps[0], &out);
  }
  printf("--ecds-slots %u, %zu proxies (one ADS stream each, offline)\n", h, n);
  printf("  %-40s %12s %12s %14s %9s\n", "change", "drains/proxy",
         "ECDS msgs/px", "ECDS cfgs/px", "seconds");
  for (int k = 1; k <= 3; k++) {
    unsigned long lds = 0, ecds = 0, cfg = 0, lds_max = 0;
    double t0 = now_s();

    /* A proxy subscribes to what its listeners name: unchanged with
     * slots, the new extensions' names without. */
    for (size_t i = 0; i < n; i++) {
      px[i].lds = px[i].ecds = px[i].configs = 0;
      if (ads_stream_on_snapshot(&px[i].s, snaps[k], NULL) < 0)
        exit(1);
      if (i == 0)
        names_of(px[0].s.cls, snaps[k]);
      drain(&px[i], snaps[k], &out);
      if (h == 0) /* the ECDS subscription follows the new listener */
        request(&px[i], snaps[k], 0, TYPE_ECDS, px[i].ecds_v, px[i].ecds_n, 1);
      drain(&px[i], snaps[k], &out);
      lds += px[i].lds;
      ecds += px[i].ecds;
      cfg += px[i].configs;
      if (px[i].lds > lds_max)
        lds_max = px[i].lds;
    }
    printf("  %-40s %12.2f %12.2f %14.2f %9.2f\n", what[k - 1],
           (double)lds / (double)n, (double)ecds / (double)n,
           (double)cfg / (double)n, now_s() - t0);
  }
  for (size_t i = 0; i < n; i++)
    ads_stream_cleanup(&px[i].s);
  for (int k = 0; k < 4; k++)
    snapshot_unref(snaps[k]);
  xds_buf_cleanup(&out);
  free(px);
}

int main(int argc, char **argv) {
  size_t n = 10000;
  uint32_t h = 4;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--proxies") == 0)
      n = (size_t)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--slots") == 0)
      h = (uint32_t)strtoul(argv[i + 1], NULL, 10);
  }
  xds_log_set_level(XDS_LOG_ERROR);
  google__protobuf__struct__init(&md);
  google__protobuf__struct__fields_entry__init(&e_org);
  google__protobuf__value__init(&v_org);
  envoy__config__core__v3__node__init(&node);
  v_org.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  v_org.string_value = "acme";
  e_org.key = "wasmxds.organization";
  e_org.value = &v_org;
  entries[0] = &e_org;
  md.n_fields = 1;
  md.fields = entries;
  node.id = "bench";
  node.metadata = &md;
  run(n, 0);
  run(n, h);
  for (size_t i = 0; i < n_names; i++)
    free(names[i]);
  return 0;
}
