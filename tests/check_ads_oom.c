/*
 * check_ads_oom.c: allocation-failure sweeps over ADS request handling.
 *
 * A scripted sequence of requests (one SotW, one delta: subscriptions,
 * ACKs, NACKs, a refused name, an unserved type, unsubscriptions under a
 * wildcard, snapshot changes) is run once as the reference, then again
 * with the 1st, 2nd, ... Nth allocation made from the first request on
 * failing (base/alloc.h, xds_alloc_fail_at), until a run sees no failure.
 * Each run must either end the stream cleanly (the request closes it with
 * RESOURCE_EXHAUSTED, or a response reports XDS_ENOMEM: what the transport
 * turns into a closed stream) having sent a prefix of the reference
 * responses, or, when the failed allocation was one the core may do
 * without, send exactly the reference responses. Every interned name is
 * given back, and ASan sees no leak. A failure names the N that
 * reproduces it; ADS_OOM_AT=N runs that one allocation alone.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/ads/ads.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "testutil.h"

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define WEB "organizations/acme/tenants/web"
#define EXT_A "organizations/acme/extensions/a"
#define EXT_B "organizations/acme/extensions/b"
#define EXT_SECRET "organizations/acme/extensions/secret"
#define EXT_NONE "organizations/acme/extensions/nosuch"
#define TYPE_CDS TYPE_PREFIX "envoy.config.cluster.v3.Cluster"
#define TYPE_EDS TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment"

/* Every response of a run, each as its length then its bytes. Kept with
 * libc's allocator, which the failure hook does not count. */
struct transcript {
  char *data;
  size_t len, cap;
};

static void transcript_add(struct transcript *t, const void *p, size_t n) {
  if (t->len + n > t->cap) {
    t->cap = (t->len + n) * 2;
    t->data = realloc(t->data, t->cap);
    ck_assert_ptr_nonnull(t->data);
  }
  memcpy(t->data + t->len, p, n);
  t->len += n;
}

/* One run of a script. */
struct run {
  enum ads_mode mode;
  struct ads_stream *s;
  struct snapshot *v[3];
  struct tu_node node;
  struct xds_buf out;
  struct transcript transcript; /* each response: length, then bytes */
  char nonce[2][32];            /* last nonce of LDS, ECDS */
  char version[2][64];          /* last SotW version_info of LDS, ECDS */
  int ended;                    /* the stream had to end */
  char why[320];                /* how, when ended */
};

static void run_init(struct run *r, enum ads_mode mode) {
  memset(r, 0, sizeof(*r));
  r->mode = mode;
  for (int i = 0; i < 3; i++) {
    struct catalog *cat = tu_catalog(tu_ads_stores[i]);
    struct encode_opts o;
    encode_opts_default(&o);
    ck_assert_int_eq(snapshot_build(cat, &o, (uint64_t)i + 1, &r->v[i], NULL),
                     0);
    catalog_unref(cat);
  }
  tu_node_init(&r->node, "proxy-oom", WEB);
  xds_buf_init(&r->out, 4 << 20);
}

static void run_cleanup(struct run *r) {
  ads_stream_free(r->s);
  r->s = NULL;
  for (int i = 0; i < 3; i++)
    snapshot_unref(r->v[i]);
  xds_buf_cleanup(&r->out);
  free(r->transcript.data);
}

/* Notes the nonce (and SotW version) of a response, by its type. */
static void note_response(struct run *r) {
  const uint8_t *p = (const uint8_t *)r->out.data;
  const char *type, *nonce, *version = "";
  int idx;

  if (r->mode == ADS_DELTA) {
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *d =
        envoy__service__discovery__v3__delta_discovery_response__unpack(
            NULL, r->out.len, p);
    ck_assert_ptr_nonnull(d);
    type = d->type_url;
    nonce = d->nonce;
    idx = strcmp(type, TYPE_LISTENER) == 0 ? 0
          : strcmp(type, TYPE_ECDS) == 0   ? 1
                                           : -1;
    if (idx >= 0)
      snprintf(r->nonce[idx], sizeof(r->nonce[idx]), "%s", nonce);
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
        d, NULL);
    return;
  }
  {
    Envoy__Service__Discovery__V3__DiscoveryResponse *d =
        envoy__service__discovery__v3__discovery_response__unpack(
            NULL, r->out.len, p);
    ck_assert_ptr_nonnull(d);
    type = d->type_url;
    nonce = d->nonce;
    version = d->version_info;
    idx = strcmp(type, TYPE_LISTENER) == 0 ? 0
          : strcmp(type, TYPE_ECDS) == 0   ? 1
                                           : -1;
    if (idx >= 0) {
      snprintf(r->nonce[idx], sizeof(r->nonce[idx]), "%s", nonce);
      snprintf(r->version[idx], sizeof(r->version[idx]), "%s", version);
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(d, NULL);
  }
}

/* Takes every response owed. Returns 0, or -1 when the stream must end. */
static int pump(struct run *r) {
  for (int guard = 0; guard < 100; guard++) {
    int rc = ads_stream_next_response(r->s, &r->out, NULL);
    uint32_t len;

    if (rc == 0)
      return 0;
    if (rc < 0) {
      r->ended = 1;
      snprintf(r->why, sizeof(r->why), "response error %s", xds_strerror(rc));
      return rc == XDS_ENOMEM ? -1 : (ck_abort_msg("%s", r->why), -1);
    }
    /* With shared NULL the whole message is in out. */
    len = (uint32_t)r->out.len;
    transcript_add(&r->transcript, &len, sizeof(len));
    transcript_add(&r->transcript, r->out.data, r->out.len);
    note_response(r);
  }
  ck_abort_msg("a stream owes more than 100 responses in a row");
  return -1;
}

/* The stream ends because a request was refused: only out of memory is
 * expected here. */
static int closed(struct run *r, const struct ads_close *c) {
  r->ended = 1;
  snprintf(r->why, sizeof(r->why), "closed with status %d: %s", c->code,
           c->msg);
  return -1;
}

static int sotw(struct run *r, int snap, int with_node, const char *type,
                int ack_of, const char *error, const char **names, size_t n) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  struct ads_close c;

  req.node = with_node ? &r->node.node : NULL;
  req.type_url = (char *)type;
  req.version_info = ack_of >= 0 ? r->version[ack_of] : "";
  req.response_nonce = ack_of >= 0 ? r->nonce[ack_of] : "";
  req.resource_names = (char **)names;
  req.n_resource_names = n;
  if (error != NULL) {
    st.code = 3;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  if (ads_stream_on_request(r->s, &req, r->v[snap], &c) < 0)
    return closed(r, &c);
  return pump(r);
}

static int delta(struct run *r, int snap, int with_node, const char *type,
                 int ack_of, const char *error, const char **sub, size_t n_sub,
                 const char **unsub, size_t n_unsub, int with_initial) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
      e,
      *ep[1] = {&e};
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  struct ads_close c;

  envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
      &e);
  e.key = "in";
  e.value = "an-old-version";
  req.node = with_node ? &r->node.node : NULL;
  req.type_url = (char *)type;
  req.response_nonce = ack_of >= 0 ? r->nonce[ack_of] : "";
  req.resource_names_subscribe = (char **)sub;
  req.n_resource_names_subscribe = n_sub;
  req.resource_names_unsubscribe = (char **)unsub;
  req.n_resource_names_unsubscribe = n_unsub;
  if (with_initial) {
    req.initial_resource_versions = ep;
    req.n_initial_resource_versions = 1;
  }
  if (error != NULL) {
    st.message = (char *)error;
    req.error_detail = &st;
  }
  if (ads_stream_on_delta_request(r->s, &req, r->v[snap], &c) < 0)
    return closed(r, &c);
  return pump(r);
}

static int to_snapshot(struct run *r, int snap) {
  struct ads_close c;

  if (ads_stream_on_snapshot(r->s, r->v[snap], &c) < 0)
    return closed(r, &c);
  return pump(r);
}

static const char *ECDS_4[] = {EXT_A, EXT_B, EXT_SECRET, EXT_NONE};
static const char *ECDS_AB[] = {EXT_A, EXT_B};
static const char *NAMES_A[] = {EXT_A}, *NAMES_B[] = {EXT_B};
static const char *STAR[] = {"*"};
static const char *LISTENER_NAMES[] = {"in", "nosuch-listener"};
static const char *EDS_NAMES[] = {"r1", "r2", "r1"};

/* Runs the script of r's mode; stops at the first step that ends the
 * stream. */
static void script(struct run *r) {
  if (ads_stream_new(ADS_SVC_ADS, r->mode, "oom-test", &r->s) < 0) {
    r->ended = 1;
    snprintf(r->why, sizeof(r->why), "stream creation failed");
    return;
  }
  if (r->mode == ADS_SOTW) {
    if (sotw(r, 0, 1, TYPE_LISTENER, -1, NULL, NULL, 0) < 0 ||
        sotw(r, 0, 0, TYPE_ECDS, -1, NULL, ECDS_4, 4) < 0 ||
        sotw(r, 0, 0, TYPE_ECDS, 1, NULL, ECDS_AB, 2) < 0 ||
        sotw(r, 0, 0, TYPE_LISTENER, 0, "bad listener", NULL, 0) < 0 ||
        sotw(r, 0, 0, TYPE_CDS, -1, NULL, NULL, 0) < 0 ||
        to_snapshot(r, 1) < 0 ||
        sotw(r, 1, 0, TYPE_ECDS, 1, NULL, ECDS_4, 4) < 0 ||
        to_snapshot(r, 2) < 0 ||
        sotw(r, 2, 0, TYPE_LISTENER, 0, NULL, LISTENER_NAMES, 2) < 0 ||
        sotw(r, 2, 0, TYPE_ECDS, 1, "bad wasm", ECDS_AB, 2) < 0)
      return;
    return;
  }
  if (delta(r, 0, 1, TYPE_LISTENER, -1, NULL, NULL, 0, NULL, 0, 1) < 0 ||
      delta(r, 0, 0, TYPE_ECDS, -1, NULL, ECDS_4, 4, NULL, 0, 0) < 0 ||
      delta(r, 0, 0, TYPE_ECDS, 1, NULL, STAR, 1, NAMES_B, 1, 0) < 0 ||
      delta(r, 0, 0, TYPE_ECDS, 1, NULL, NULL, 0, NAMES_A, 1, 0) < 0 ||
      delta(r, 0, 0, TYPE_EDS, -1, NULL, EDS_NAMES, 3, NULL, 0, 0) < 0 ||
      to_snapshot(r, 1) < 0 ||
      delta(r, 1, 0, TYPE_ECDS, 1, "bad wasm", NULL, 0, NULL, 0, 0) < 0 ||
      delta(r, 1, 0, TYPE_ECDS, -1, NULL, NULL, 0, STAR, 1, 0) < 0 ||
      to_snapshot(r, 2) < 0)
    return;
}

/* Runs the script with allocation n failing (0: none) and checks the
 * run against the reference. Returns whether allocation n was reached. */
static int sweep_one(enum ads_mode mode, long n, const struct transcript *ref) {
  struct run r;
  long seen;

  run_init(&r, mode);
  xds_alloc_fail_at(n);
  script(&r);
  seen = xds_alloc_fail_at(0);
  if (r.ended) {
    /* What the transport turns into a closed stream: only because memory
     * ran out, and after sending what the reference sent up to then. */
    if (strstr(r.why, "closed with status 8") == NULL &&
        strstr(r.why, "out of memory") == NULL &&
        strstr(r.why, "stream creation failed") == NULL)
      ck_abort_msg("%s allocation %ld: the stream ended for another reason: "
                   "%s (reproduce: ADS_OOM_AT=%ld)",
                   mode == ADS_DELTA ? "delta" : "SotW", n, r.why, n);
    if (r.transcript.len > ref->len ||
        (r.transcript.len > 0 &&
         memcmp(r.transcript.data, ref->data, r.transcript.len) != 0))
      ck_abort_msg("%s allocation %ld: the responses before the end differ "
                   "from the reference (reproduce: ADS_OOM_AT=%ld)",
                   mode == ADS_DELTA ? "delta" : "SotW", n, n);
  } else if (r.transcript.len != ref->len ||
             memcmp(r.transcript.data, ref->data, ref->len) != 0) {
    /* A failure the core absorbed must not change what is sent. */
    ck_abort_msg("%s allocation %ld failed silently and changed the "
                 "responses (reproduce: ADS_OOM_AT=%ld)",
                 mode == ADS_DELTA ? "delta" : "SotW", n, n);
  }
  run_cleanup(&r);
  if (xds_intern_count() != 0)
    ck_abort_msg("%s allocation %ld: %zu interned names were not given back "
                 "(reproduce: ADS_OOM_AT=%ld)",
                 mode == ADS_DELTA ? "delta" : "SotW", n, xds_intern_count(),
                 n);
  return n == 0 || seen >= n;
}

static void sweep(enum ads_mode mode) {
  struct run ref;
  const char *only = getenv("ADS_OOM_AT");
  long n, ended = 0;

  xds_log_set_level(XDS_LOG_ERROR);
  run_init(&ref, mode);
  script(&ref);
  ck_assert_msg(!ref.ended, "the reference run ended: %s", ref.why);
  ck_assert_uint_gt(ref.transcript.len, 0);
  ads_stream_free(ref.s);
  ref.s = NULL;
  if (only != NULL) {
    sweep_one(mode, strtol(only, NULL, 10), &ref.transcript);
    run_cleanup(&ref);
    return;
  }
  for (n = 1; sweep_one(mode, n, &ref.transcript); n++)
    ended++;
  run_cleanup(&ref);
  /* The script allocates: a sweep that ends at once tested nothing. */
  ck_assert_int_gt(ended, 50);
}

START_TEST(sotw_requests_survive_every_failed_allocation) {
  sweep(ADS_SOTW);
}
END_TEST

START_TEST(delta_requests_survive_every_failed_allocation) {
  sweep(ADS_DELTA);
}
END_TEST

Suite *ads_oom_suite(void) {
  Suite *s = suite_create("ads_oom");
  TCase *tc = tcase_create("sweep");

  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, sotw_requests_survive_every_failed_allocation);
  tcase_add_test(tc, delta_requests_survive_every_failed_allocation);
  suite_add_tcase(s, tc);
  return s;
}
