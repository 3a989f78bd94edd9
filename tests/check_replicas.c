/*
 * check_replicas.c: the etcd store behind real wasmxds servers (issue 6).
 * One etcd on loopback; documents written with `etcdctl put` (the way an
 * operator's tooling would); two wasmxds replicas on it:
 * - both serve byte-identical LDS and ECDS with identical versions;
 * - a proxy that moves from replica A to replica B reporting its versions
 *   receives nothing new;
 * - an update (an ECDS-only push) and a delete (an LDS push) written to
 *   etcd reach a connected ADS client;
 * - an invalid document is reported with its key and its last good
 *   version stays served;
 * - etcd down: /readyz says degraded, the configuration stays served.
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/helpers/etcd_proc.h"
#include "server/pb/typeurl.h"

#include "envoy/config/core/v3/extension.pb-c.h"

#define EXT_A "organizations/acme/extensions/a"
#define EXT_B "organizations/acme/extensions/b"

static const char doc_a1[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: a}\n"
    "spec: {url: file:///w/a.wasm, phase: AUTHN, config: {v: 1}}\n";
static const char doc_a2[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: a}\n"
    "spec: {url: file:///w/a.wasm, phase: AUTHN, config: {v: 2}}\n";
static const char doc_a_bad[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: a}\n"
    "spec: {url: ftp://w/a.wasm, phase: AUTHN}\n";
static const char doc_b[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: b}\n"
    "spec: {url: file:///w/b.wasm, phase: STATS}\n";
static const char doc_t[] =
    "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"
    "  route: {cluster: app}\n  httpFilters:\n"
    "  - name: envoy.filters.http.router\n"
    "    typedConfig: {'@type': "
    "envoy.extensions.filters.http.router.v3.Router}\n";

struct proxy {
  struct xds_client *c;
  struct xds_stream *s;
  Envoy__Config__Core__V3__Node *node;
  char lds_version[64], lds_nonce[32], ecds_version[64], ecds_nonce[32];
  size_t lds_len, ecds_len;
  unsigned char lds_bytes[8192], ecds_bytes[8192];
};

static void send_req(struct proxy *p, int first, const char *type,
                     const char *version, const char *nonce, int names) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  static char *ab[] = {EXT_A, EXT_B};

  req.node = first ? p->node : NULL;
  req.type_url = (char *)type;
  req.version_info = (char *)version;
  req.response_nonce = (char *)nonce;
  if (names) {
    req.resource_names = ab;
    req.n_resource_names = 2;
  }
  ck_assert_int_eq(xds_stream_send_request(p->s, &req, 2000), 0);
}

/* The next response, which must be of type; kept (bytes and version) and
 * ACKed. */
static Envoy__Service__Discovery__V3__DiscoveryResponse *
take(struct proxy *p, const char *type, int ms) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  int rc = xds_stream_recv_response(p->s, ms, &r);
  int lds = strcmp(type, TYPE_LISTENER) == 0;

  ck_assert_msg(rc == 0, "no %s response within %d ms (%d)", type, ms, rc);
  ck_assert_str_eq(r->type_url, type);
  snprintf(lds ? p->lds_version : p->ecds_version, 64, "%s", r->version_info);
  snprintf(lds ? p->lds_nonce : p->ecds_nonce, 32, "%s", r->nonce);
  {
    unsigned char *dst = lds ? p->lds_bytes : p->ecds_bytes;
    size_t len = 0;
    for (size_t i = 0; i < r->n_resources && len < 8000; i++) {
      size_t n = r->resources[i]->value.len;
      if (len + n > 8000)
        n = 8000 - len;
      memcpy(dst + len, r->resources[i]->value.data, n);
      len += n;
    }
    if (lds)
      p->lds_len = len;
    else
      p->ecds_len = len;
  }
  send_req(p, 0, type, r->version_info, r->nonce, !lds);
  return r;
}

static void connect_proxy(struct proxy *p, struct server_proc *sp,
                          const char *lds_version, const char *ecds_version) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};

  memset(p, 0, sizeof(*p));
  p->node = xds_node_new("replica-test", "c", meta, NULL);
  ck_assert_int_eq(xds_client_new(server_proc_target(sp), NULL, &p->c), 0);
  ck_assert_int_eq(xds_stream_open(p->c, XDS_METHOD_ADS, &p->s), 0);
  send_req(p, 1, TYPE_LISTENER, lds_version != NULL ? lds_version : "", "", 0);
  send_req(p, 0, TYPE_ECDS, ecds_version != NULL ? ecds_version : "", "", 1);
}

static void disconnect(struct proxy *p) {
  xds_stream_free(p->s);
  xds_client_free(p->c);
  xds_node_free(p->node);
}

static void put(struct etcd_proc *e, const char *key, const char *doc) {
  ck_assert_int_eq(etcd_proc_put(e, key, doc), 0);
}

static long http_get(const char *url, char *out, size_t cap) {
  CURL *c = curl_easy_init();
  FILE *f = fmemopen(out, cap, "w");
  long code = 0;

  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  fclose(f);
  curl_easy_cleanup(c);
  return code;
}

START_TEST(two_replicas_one_etcd) {
  struct etcd_proc e;
  struct server_proc *ra, *rb;
  struct proxy pa, pb;
  char store[160], admin[64], url[128], body[512];
  const char *args[4];
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_replicas: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  put(&e, "/wx/WasmExtension/acme/a", doc_a1);
  put(&e, "/wx/WasmExtension/acme/b", doc_b);
  put(&e, "/wx/ListenerTemplate/in", doc_t);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  args[0] = "--debounce-ms";
  args[1] = "20";
  args[2] = NULL;
  ck_assert_int_eq(server_proc_start(store, args, &ra), 0);
  ck_assert_int_eq(server_proc_start(store, args, &rb), 0);

  /* 1. Identical bytes and versions from both replicas. */
  connect_proxy(&pa, ra, NULL, NULL);
  xds_msg_free(take(&pa, TYPE_LISTENER, 5000));
  xds_msg_free(take(&pa, TYPE_ECDS, 5000));
  connect_proxy(&pb, rb, NULL, NULL);
  xds_msg_free(take(&pb, TYPE_LISTENER, 5000));
  xds_msg_free(take(&pb, TYPE_ECDS, 5000));
  ck_assert_str_eq(pa.lds_version, pb.lds_version);
  ck_assert_str_eq(pa.ecds_version, pb.ecds_version);
  ck_assert_uint_eq(pa.lds_len, pb.lds_len);
  ck_assert_int_eq(memcmp(pa.lds_bytes, pb.lds_bytes, pa.lds_len), 0);
  ck_assert_uint_eq(pa.ecds_len, pb.ecds_len);
  ck_assert_int_eq(memcmp(pa.ecds_bytes, pb.ecds_bytes, pa.ecds_len), 0);
  disconnect(&pb);

  /* 2. The proxy moves from A to B with its versions: nothing new. */
  {
    struct proxy moved;
    connect_proxy(&moved, rb, pa.lds_version, pa.ecds_version);
    ck_assert_int_eq(xds_stream_expect_nothing(moved.s, 1500), 0);
    disconnect(&moved);
  }

  /* 3. An update in etcd: an ECDS-only push to the connected proxy. */
  put(&e, "/wx/WasmExtension/acme/a", doc_a2);
  r = take(&pa, TYPE_ECDS, 5000);
  ck_assert_uint_eq(r->n_resources, 1);
  xds_msg_free(r);
  ck_assert_int_eq(xds_stream_expect_nothing(pa.s, 500), 0);

  /* 4. An invalid document: reported with its key, last good kept. */
  server_proc_log_mark(ra);
  put(&e, "/wx/WasmExtension/acme/a", doc_a_bad);
  ck_assert_int_eq(server_proc_wait_log(ra, "/wx/WasmExtension/acme/a", 5000),
                   0);
  ck_assert_int_eq(xds_stream_expect_nothing(pa.s, 500), 0);

  /* 5. A delete: b leaves the listener (LDS push). */
  ck_assert_int_eq(etcd_proc_ctl(&e, "del /wx/WasmExtension/acme/b"), 0);
  r = take(&pa, TYPE_LISTENER, 5000);
  xds_msg_free(r);

  /* 6. etcd down: degraded, still serving. */
  etcd_proc_kill(&e);
  snprintf(admin, sizeof(admin), "%d", server_proc_admin_port(ra));
  snprintf(url, sizeof(url), "http://127.0.0.1:%s/readyz", admin);
  {
    time_t until = time(NULL) + 15;
    int degraded = 0;
    while (!degraded && time(NULL) < until) {
      memset(body, 0, sizeof(body));
      if (http_get(url, body, sizeof(body) - 1) == 200 &&
          strstr(body, "degraded") != NULL)
        degraded = 1;
      else
        usleep(200 * 1000);
    }
    ck_assert_msg(degraded, "/readyz never said degraded: %s", body);
  }
  ck_assert_int_eq(xds_stream_expect_nothing(pa.s, 300), 0);

  disconnect(&pa);
  server_proc_free(ra);
  server_proc_free(rb);
  etcd_proc_stop(&e);
}
END_TEST

int main(void) {
  Suite *s = suite_create("replicas");
  TCase *tc = tcase_create("replicas");
  SRunner *sr;
  int failed;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, two_replicas_one_etcd);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  curl_global_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
