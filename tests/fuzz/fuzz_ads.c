/*
 * fuzz_ads.c: request bytes from a proxy through the sans-I/O ADS core
 * (server/ads/ads.h), as the transport hands them over
 * (ads_stream_on_request_bytes): one stream, a sequence of requests, the
 * snapshot changing in between, responses drained. A twin stream gets the
 * same bytes through the slow path alone (the checks of the bytes, the
 * unpack, ads_stream_on_request: ads_wire_slow), so the fast path that
 * reads ACKs from their bytes is checked against it: any difference in
 * what a request returns, how a stream closes, a response's bytes or a
 * stream's status traps. Built twice: FUZZ_ADS_DELTA 0 (DiscoveryRequest,
 * state of the world) and 1 (DeltaDiscoveryRequest).
 *
 * Input: the first byte picks the service (ADS, LDS, ECDS); then records
 *   op (1 byte) | length (2 bytes, little-endian) | payload
 * op & 3: 0 a request (payload: its protobuf bytes; op & 0x10 copies the
 * last response's nonce into it, op & 0x20 its version), 1 a new
 * snapshot (payload[0] picks one of three), 2 drain the responses owed
 * (op & 0x10: with a shared part), 3 both a snapshot change and a drain.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "server/ads/ads_impl.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#ifndef FUZZ_ADS_DELTA
#define FUZZ_ADS_DELTA 0
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EXT(name, extra)                                                       \
  "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"        \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec: {url: file:///w/" name ".wasm" extra "}\n"
#define TMPL                                                                   \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"         \
  "  route: {cluster: app}\n  httpFilters:\n"                                  \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"
#define PAY "organizations/acme/tenants/payments"

static const char *const STORES[3] = {
    EXT("a", ", phase: AUTHN, config: {v: 1}") EXT("b", ", phase: AUTHZ")
        EXT("secret", ", allowedIn: [" PAY "]") TMPL,
    EXT("a", ", phase: AUTHN, config: {v: 2}") EXT("b", ", phase: AUTHZ")
        EXT("secret", ", allowedIn: [" PAY "]") TMPL,
    EXT("a", ", phase: AUTHN, config: {v: 2}") EXT("c", ", phase: STATS") TMPL};

static struct snapshot *snaps[3];

static struct snapshot *snap_of(const char *yaml, uint64_t gen) {
  char path[] = "/tmp/wasmxds-fuzz-XXXXXX.yaml";
  struct catalog *cat = NULL;
  struct snapshot *s = NULL;
  struct problems pb;
  struct encode_opts o;
  int fd = mkstemps(path, 5);

  if (fd < 0 || write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml))
    abort();
  close(fd);
  problems_init(&pb, 100);
  if (file_store_load(path, NULL, &cat, &pb, NULL) != 0 ||
      problems_count(&pb) != 0)
    abort();
  unlink(path);
  problems_cleanup(&pb);
  encode_opts_default(&o);
  if (snapshot_build(cat, &o, gen, &s, NULL) != 0)
    abort();
  catalog_unref(cat);
  return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  for (int i = 0; i < 3; i++)
    snaps[i] = snap_of(STORES[i], (uint64_t)i + 1);
  return 0;
}

struct last {
  char nonce[64];
  char version[128];
};

/* Reads what a response says the next request should echo. */
static void remember(const struct xds_buf *out, const struct ads_shared *sh,
                     struct last *l) {
  struct xds_buf all;
  const uint8_t *p;

  xds_buf_init(&all, 64u << 20);
  if (sh->data != NULL && xds_buf_append(&all, sh->data, sh->len) < 0)
    goto out;
  if (out->len > 0 && xds_buf_append(&all, out->data, out->len) < 0)
    goto out;
  p = (const uint8_t *)(all.data != NULL ? all.data : "");
#if FUZZ_ADS_DELTA
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
      envoy__service__discovery__v3__delta_discovery_response__unpack(
          NULL, all.len, p);
  if (r == NULL)
    __builtin_trap(); /* the core wrote bytes that do not decode */
  snprintf(l->nonce, sizeof(l->nonce), "%s", r->nonce);
  snprintf(l->version, sizeof(l->version), "%s", r->system_version_info);
  envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r,
                                                                         NULL);
#else
  Envoy__Service__Discovery__V3__DiscoveryResponse *r =
      envoy__service__discovery__v3__discovery_response__unpack(NULL, all.len,
                                                                p);
  if (r == NULL)
    __builtin_trap();
  snprintf(l->nonce, sizeof(l->nonce), "%s", r->nonce);
  snprintf(l->version, sizeof(l->version), "%s", r->version_info);
  envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
#endif
out:
  xds_buf_cleanup(&all);
}

/* Drains both streams; their responses must be the same bytes. */
static int drain(struct ads_stream *s, struct ads_stream *twin, int use_shared,
                 struct last *l) {
  struct xds_buf out, out2;
  int rc = 0;

  xds_buf_init(&out, 64u << 20);
  xds_buf_init(&out2, 64u << 20);
  for (int i = 0; i < 16; i++) {
    struct ads_shared sh = {NULL, 0, NULL}, sh2 = {NULL, 0, NULL};
    int rc2;

    rc = ads_stream_next_response(s, &out, use_shared ? &sh : NULL);
    rc2 = ads_stream_next_response(twin, &out2, use_shared ? &sh2 : NULL);
    if (rc != rc2 || out.len != out2.len || sh.len != sh2.len ||
        (out.len > 0 && memcmp(out.data, out2.data, out.len) != 0) ||
        (sh.len > 0 && memcmp(sh.data, sh2.data, sh.len) != 0))
      __builtin_trap(); /* the fast path changed what is sent */
    if (rc <= 0)
      break;
    remember(&out, &sh, l);
  }
  xds_buf_cleanup(&out);
  xds_buf_cleanup(&out2);
  return rc < 0 ? -1 : 0;
}

/* The two streams' status pages must be the same. */
static void same_status(const struct ads_stream *s,
                        const struct ads_stream *twin) {
  json_t *a = ads_stream_status(s), *b = ads_stream_status(twin);
  char *x = a != NULL ? json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
  char *y = b != NULL ? json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

  if (x != NULL && y != NULL && strcmp(x, y) != 0)
    __builtin_trap();
  free(x);
  free(y);
  json_decref(a);
  json_decref(b);
}

/* The request's bytes, with the last response's nonce (op & 0x10) and
 * version (op & 0x20) put in when it unpacks; in *buf (to free) when
 * rewritten. */
static const uint8_t *rewrite(int op, const uint8_t *p, size_t *n,
                              const struct last *l, uint8_t **buf) {
  *buf = NULL;
  if ((op & 0x30) == 0)
    return p;
#if FUZZ_ADS_DELTA
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req =
      envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, *n,
                                                                     p);
  char *keep_nonce;

  if (req == NULL)
    return p;
  keep_nonce = req->response_nonce;
  if (op & 0x10)
    req->response_nonce = (char *)l->nonce;
#else
  Envoy__Service__Discovery__V3__DiscoveryRequest *req =
      envoy__service__discovery__v3__discovery_request__unpack(NULL, *n, p);
  char *keep_nonce, *keep_version;

  if (req == NULL)
    return p;
  keep_nonce = req->response_nonce;
  keep_version = req->version_info;
  if (op & 0x10)
    req->response_nonce = (char *)l->nonce;
  if (op & 0x20)
    req->version_info = (char *)l->version;
#endif
  *n = protobuf_c_message_get_packed_size(&req->base);
  *buf = malloc(*n + 1);
  if (*buf != NULL)
    protobuf_c_message_pack(&req->base, *buf);
  req->response_nonce = keep_nonce;
#if FUZZ_ADS_DELTA
  envoy__service__discovery__v3__delta_discovery_request__free_unpacked(req,
                                                                        NULL);
#else
  req->version_info = keep_version;
  envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
#endif
  if (*buf == NULL)
    abort();
  return *buf;
}

static int request(struct ads_stream *s, struct ads_stream *twin, int op,
                   const uint8_t *p, size_t n, struct snapshot *cur,
                   const struct last *l) {
  struct ads_close close, close2;
  uint8_t *buf;
  int rc, rc2;

  p = rewrite(op, p, &n, l, &buf);
  memset(&close, 0, sizeof(close));
  memset(&close2, 0, sizeof(close2));
  rc = ads_stream_on_request_bytes(s, p, n, cur, &close);
  rc2 = ads_wire_slow(twin, p, n, cur, &close2);
  free(buf);
  if (rc != rc2 || (rc < 0 && (close.code != close2.code ||
                               strcmp(close.msg, close2.msg) != 0)))
    __builtin_trap(); /* the fast path decided otherwise */
  if (rc == 0)
    same_status(s, twin);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const enum ads_service SVC[3] = {ADS_SVC_ADS, ADS_SVC_LDS,
                                          ADS_SVC_ECDS};
  struct ads_stream *s = NULL, *twin = NULL;
  struct snapshot *cur = snaps[0];
  struct last l = {"", ""};
  size_t at = 1;
  int closed = 0;

  if (size < 1)
    return 0;
  if (ads_stream_new(SVC[data[0] % 3], FUZZ_ADS_DELTA ? ADS_DELTA : ADS_SOTW,
                     "fuzz", &s) != 0)
    return 0;
  if (ads_stream_new(SVC[data[0] % 3], FUZZ_ADS_DELTA ? ADS_DELTA : ADS_SOTW,
                     "fuzz", &twin) != 0) {
    ads_stream_free(s);
    return 0;
  }
  twin->connected_ms = s->connected_ms;
  while (at + 3 <= size) {
    int op = data[at];
    size_t n = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
    const uint8_t *p = data + at + 3;

    if (n > size - at - 3)
      n = size - at - 3;
    at += 3 + n;
    if ((op & 3) == 0) {
      if (request(s, twin, op, p, n, cur, &l) < 0) {
        closed = 1; /* the transport ends the stream */
        break;
      }
      continue;
    }
    if ((op & 1) != 0) {
      cur = snaps[(n > 0 ? p[0] : 0) % 3];
      int rc = ads_stream_on_snapshot(s, cur, NULL);

      if (rc != ads_stream_on_snapshot(twin, cur, NULL))
        __builtin_trap();
      if (rc < 0) {
        closed = 1;
        break;
      }
    }
    if ((op & 2) != 0 && drain(s, twin, op & 0x10, &l) < 0) {
      closed = 1;
      break;
    }
  }
  if (!closed)
    drain(s, twin, 0, &l);
  ads_stream_free(s);
  ads_stream_free(twin);
  return 0;
}
