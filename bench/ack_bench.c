/*
 * ack_bench.c: what the server's ADS core spends per ACK (issue 20 item
 * 1), without gRPC. N proxies (offline ADS streams, the server's own
 * protocol core) connect and hold a full config; then each push (a change
 * of one extension's config: ECDS only; or of the listener template: LDS
 * only) is answered on every stream, and every stream is fed its ACK as
 * the bytes an Envoy sends (SotW: version_info, node when --node-every,
 * resource_names, type_url, response_nonce; delta: node, type_url,
 * response_nonce). Only the feeding of those ACKs is measured: the
 * function ack_phase(), so that callgrind counts its instructions alone:
 *
 *   valgrind --tool=callgrind --collect-atstart=no \
 *     --toggle-collect=ack_phase bench/ack_bench --proxies 1000
 *
 * (Ir / (proxies x pushes) is the instructions per ACK). The bench prints
 * the CPU time of the phase too.
 *
 * --path unpack feeds each ACK as the transport did before
 * ads_stream_on_request_bytes: the name limits on the bytes, the NUL and
 * nesting check, the protobuf-c unpack, ads_stream_on_request, the free.
 * --path bytes calls ads_stream_on_request_bytes (the default).
 *
 * usage: ack_bench [--proxies N] [--extensions E] [--pushes K] [--delta]
 *                  [--node-every] [--shuffle] [--push ecds|lds]
 *                  [--path unpack|bytes]
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
#include "server/pb/wirecheck.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "bench_node.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#define NAMES_MAX 512

static struct {
  size_t proxies, extensions, pushes;
  int delta, node_every, shuffle, push_lds, path_bytes;
} opt = {1000, 7, 1, 0, 0, 0, 0, 1};

/* One ACK to feed, packed before the measured phase. */
struct msg {
  uint8_t *p;
  size_t len;
};

struct px {
  struct ads_stream s;
  size_t idx;
  char id[32], app[16];
  struct msg ack;
};

static char *names[NAMES_MAX];
static size_t n_names;

static void die(const char *what) {
  fprintf(stderr, "ack_bench: %s\n", what);
  exit(1);
}

/* The store: E organization-wide extensions and one inbound template; the
 * extension e00's config at revision rev, the route's cluster named by
 * cluster. */
static struct snapshot *snap_of(unsigned rev, unsigned cluster, uint64_t gen) {
  char path[] = "/tmp/wasmxds-ackbench-XXXXXX.yaml";
  static char yaml[1 << 16];
  size_t len = 0;
  struct catalog *cat = NULL;
  struct encode_opts o;
  struct snapshot *s = NULL;
  struct xds_err err = {0, ""};
  struct problems pb;
  int fd, rc;

  for (size_t i = 0; i < opt.extensions; i++)
    len += (size_t)snprintf(
        yaml + len, sizeof(yaml) - len,
        "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
        "metadata: {organization: acme, name: e%02zu}\n"
        "spec: {url: file:///w/e%02zu.wasm, phase: AUTHZ, priority: %zu, "
        "config: {rev: %u}}\n",
        i, i, i, i == 0 ? rev : 1);
  snprintf(yaml + len, sizeof(yaml) - len,
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: in}\nspec:\n  port: 15006\n"
           "  direction: INBOUND\n  route: {cluster: app%u}\n"
           "  httpFilters:\n  - name: envoy.filters.http.router\n"
           "    typedConfig: {'@type': "
           "type.googleapis.com/envoy.extensions.filters.http.router.v3."
           "Router}\n",
           cluster);
  fd = mkstemps(path, 5);
  if (fd < 0 || write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml))
    die("cannot write the store");
  close(fd);
  problems_init(&pb, 100);
  rc = file_store_load(path, NULL, &cat, &pb, &err);
  unlink(path);
  if (rc < 0 || problems_count(&pb) > 0)
    die(err.msg[0] ? err.msg : "store problems");
  problems_cleanup(&pb);
  encode_opts_default(&o);
  if (snapshot_build(cat, &o, gen, &s, &err) < 0)
    die(err.msg);
  catalog_unref(cat);
  return s;
}

/* A node like loadgen's (and an Envoy's, less its build and extensions). */
static void build_node(struct px *p, struct bench_node *nb) {
  bench_node_fill(nb, p->id, "t001", "organizations/acme/tenants/t001",
                  "SIDECAR", p->app, "v1");
}

static struct msg pack(const ProtobufCMessage *m) {
  struct msg out;

  out.len = protobuf_c_message_get_packed_size(m);
  out.p = malloc(out.len + 1);
  if (out.p == NULL)
    die("out of memory");
  protobuf_c_message_pack(m, out.p);
  return out;
}

/* The request a proxy sends: first (with the node, no nonce), or the
 * answer to a response of type with version and nonce. */
static struct msg request(struct px *p, int first, const char *type,
                          const char *version, const char *nonce,
                          int with_names) {
  struct bench_node nb;
  char *v[NAMES_MAX];
  size_t rot = opt.shuffle ? p->idx : 0;

  if (first || opt.node_every)
    build_node(p, &nb);
  for (size_t i = 0; i < n_names; i++)
    v[i] = names[(i + rot) % n_names];
  if (!opt.delta) {
    Envoy__Service__Discovery__V3__DiscoveryRequest r =
        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;

    r.node = first || opt.node_every ? &nb.node : NULL;
    r.type_url = (char *)type;
    r.version_info = (char *)version;
    r.response_nonce = (char *)nonce;
    if (with_names) {
      r.resource_names = v;
      r.n_resource_names = n_names;
    }
    return pack(&r.base);
  } else {
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r =
        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;

    r.node = first || opt.node_every ? &nb.node : NULL;
    r.type_url = (char *)type;
    r.response_nonce = (char *)nonce;
    if (with_names && nonce[0] == '\0') {
      r.resource_names_subscribe = v;
      r.n_resource_names_subscribe = n_names;
    }
    return pack(&r.base);
  }
}

/* Applies the request as the transport did before
 * ads_stream_on_request_bytes (the name limits, the NUL and nesting
 * check, the unpack, the call, the free). */
static int feed_unpack(struct ads_stream *s, const struct msg *m,
                       struct snapshot *snap, struct ads_close *close) {
  int rc;

  if (ads_stream_precheck(s, m->p, m->len, close) < 0)
    return -1;
  if (!opt.delta) {
    Envoy__Service__Discovery__V3__DiscoveryRequest *r;

    if (wirecheck_strings(
            &envoy__service__discovery__v3__discovery_request__descriptor, m->p,
            m->len, NULL, NULL) < 0)
      return -1;
    r = envoy__service__discovery__v3__discovery_request__unpack(NULL, m->len,
                                                                 m->p);
    if (r == NULL)
      return -1;
    rc = ads_stream_on_request(s, r, snap, close);
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
  } else {
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *r;

    if (wirecheck_strings(
            &envoy__service__discovery__v3__delta_discovery_request__descriptor,
            m->p, m->len, NULL, NULL) < 0)
      return -1;
    r = envoy__service__discovery__v3__delta_discovery_request__unpack(
        NULL, m->len, m->p);
    if (r == NULL)
      return -1;
    rc = ads_stream_on_delta_request(s, r, snap, close);
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r,
                                                                          NULL);
  }
  return rc;
}

static int feed(struct ads_stream *s, const struct msg *m,
                struct snapshot *snap) {
  struct ads_close close;

  if (!opt.path_bytes)
    return feed_unpack(s, m, snap, &close);
  return ads_stream_on_request_bytes(s, m->p, m->len, snap, &close);
}

/* The type, version and nonce of the response in out. */
static void response_of(const struct xds_buf *out, const char **type,
                        char version[1100], char nonce[32]) {
  if (!opt.delta) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(
            NULL, out->len, (const uint8_t *)out->data);

    if (r == NULL)
      die("cannot read a response");
    *type = strcmp(r->type_url, TYPE_LISTENER) == 0 ? TYPE_LISTENER : TYPE_ECDS;
    snprintf(version, 1100, "%s", r->version_info);
    snprintf(nonce, 32, "%s", r->nonce);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
  } else {
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
        envoy__service__discovery__v3__delta_discovery_response__unpack(
            NULL, out->len, (const uint8_t *)out->data);

    if (r == NULL)
      die("cannot read a response");
    *type = strcmp(r->type_url, TYPE_LISTENER) == 0 ? TYPE_LISTENER : TYPE_ECDS;
    version[0] = '\0';
    snprintf(nonce, 32, "%s", r->nonce);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
        r, NULL);
  }
}

/* Answers p until it owes nothing; the last response's ACK is left in
 * p->ack unfed when keep is set (it is what the measured phase feeds),
 * every other one is fed at once. Returns the responses written. */
static unsigned answer(struct px *p, struct snapshot *snap, struct xds_buf *out,
                       int keep) {
  unsigned n = 0;

  for (;;) {
    char version[1100], nonce[32];
    const char *type;
    struct msg m;
    int rc = ads_stream_next_response(&p->s, out, NULL);

    if (rc < 0)
      die("response failed");
    if (rc == 0)
      return n;
    n++;
    response_of(out, &type, version, nonce);
    m = request(p, 0, type, version, nonce, strcmp(type, TYPE_ECDS) == 0);
    if (keep) {
      free(p->ack.p);
      p->ack = m;
      /* A push owes one response per stream: there is no next one until
       * this ACK is fed (flow control, one message in flight). */
      if (ads_stream_next_response(&p->s, out, NULL) != 0)
        die("a push owed more than one response");
      return n;
    }
    if (feed(&p->s, &m, snap) < 0)
      die("an ACK was refused");
    free(m.p);
  }
}

static double cpu_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The measured phase: every stream is fed its ACK. */
__attribute__((noinline)) void ack_phase(struct px *px, size_t n,
                                         struct snapshot *snap);
__attribute__((noinline)) void ack_phase(struct px *px, size_t n,
                                         struct snapshot *snap) {
  for (size_t i = 0; i < n; i++)
    if (feed(&px[i].s, &px[i].ack, snap) < 0)
      die("an ACK was refused");
}

int main(int argc, char **argv) {
  struct snapshot *snap;
  struct xds_buf out;
  struct px *px;
  double spent = 0;
  size_t acks = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

    if (strcmp(a, "--proxies") == 0 && ++i)
      opt.proxies = (size_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--extensions") == 0 && ++i)
      opt.extensions = (size_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--pushes") == 0 && ++i)
      opt.pushes = (size_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--delta") == 0)
      opt.delta = 1;
    else if (strcmp(a, "--node-every") == 0)
      opt.node_every = 1;
    else if (strcmp(a, "--shuffle") == 0)
      opt.shuffle = 1;
    else if (strcmp(a, "--push") == 0 && ++i)
      opt.push_lds = strcmp(v, "lds") == 0;
    else if (strcmp(a, "--path") == 0 && ++i)
      opt.path_bytes = strcmp(v, "bytes") == 0;
    else
      die("usage: ack_bench [--proxies N] [--extensions E] [--pushes K] "
          "[--delta] [--node-every] [--shuffle] [--push ecds|lds] "
          "[--path unpack|bytes]");
  }
  if (opt.extensions == 0 || opt.extensions > NAMES_MAX)
    die("--extensions: 1 to 512");
  xds_log_set_level(XDS_LOG_ERROR);
  px = calloc(opt.proxies, sizeof(*px));
  if (px == NULL)
    die("out of memory");
  xds_buf_init(&out, 4 << 20);
  snap = snap_of(1, 0, 1);
  {
    const struct catalog *cat = snapshot_catalog(snap);

    for (size_t i = 0; i < catalog_ext_count(cat) && n_names < NAMES_MAX; i++)
      names[n_names++] = strdup(catalog_ext_at(cat, i)->fqn);
  }
  for (size_t i = 0; i < opt.proxies; i++) {
    struct px *p = &px[i];
    struct msg m;

    p->idx = i;
    snprintf(p->id, sizeof(p->id), "proxy-%05zu", i);
    snprintf(p->app, sizeof(p->app), "app-%zu", i % 10);
    if (ads_stream_init(&p->s, ADS_SVC_ADS, opt.delta ? ADS_DELTA : ADS_SOTW,
                        "bench") < 0)
      die("out of memory");
    m = request(p, 1, TYPE_LISTENER, "", "", 0);
    if (feed(&p->s, &m, snap) < 0)
      die("the first request was refused");
    free(m.p);
    /* Envoy subscribes to ECDS when it reads the listener. */
    m = request(p, 0, TYPE_ECDS, "", "", 1);
    if (feed(&p->s, &m, snap) < 0)
      die("the ECDS request was refused");
    free(m.p);
    answer(p, snap, &out, 0);
  }
  for (size_t k = 1; k <= opt.pushes; k++) {
    struct snapshot *next = opt.push_lds ? snap_of(1, (unsigned)k, k + 1)
                                         : snap_of((unsigned)k + 1, 0, k + 1);
    double t0;

    for (size_t i = 0; i < opt.proxies; i++) {
      if (ads_stream_on_snapshot(&px[i].s, next, NULL) < 0)
        die("on_snapshot failed");
      if (answer(&px[i], next, &out, 1) != 1)
        die("a push owed no response");
    }
    snapshot_unref(snap);
    snap = next;
    t0 = cpu_s();
    ack_phase(px, opt.proxies, snap);
    spent += cpu_s() - t0;
    acks += opt.proxies;
  }
  printf("%zu proxies, %s, %s push x %zu, %zu ECDS names, node %s, names "
         "%s, path %s: %.2f us of CPU per ACK\n",
         opt.proxies, opt.delta ? "delta" : "SotW",
         opt.push_lds ? "LDS" : "ECDS", opt.pushes, n_names,
         opt.node_every ? "in every request" : "in the first request",
         opt.shuffle ? "rotated" : "sorted",
         opt.path_bytes ? "bytes" : "unpack", spent / (double)acks * 1e6);
  printf("ACKS %zu\n", acks);
  for (size_t i = 0; i < opt.proxies; i++) {
    ads_stream_cleanup(&px[i].s);
    free(px[i].ack.p);
  }
  for (size_t i = 0; i < n_names; i++)
    free(names[i]);
  snapshot_unref(snap);
  xds_buf_cleanup(&out);
  free(px);
  return 0;
}
