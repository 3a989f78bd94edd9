/*
 * check_metrics.c: /metrics and HEAD of the real wasmxds binary. The
 * scrape, taken with proxies in sync and rejecting, and after module pulls
 * failed (the end-to-end store names an unreachable registry and origin),
 * must parse with the Prometheus text parser of python3-prometheus-client
 * and hold every metric README.md's "Metrics" table names
 * (tests/metrics_check.py); the new gauges must say what happened; every
 * GET route answers HEAD with its GET status and no body.
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#define E2E_STORE XDS_TEST_DATA "/e2e/store.yaml"
#define PAYMENTS "organizations/acme/tenants/payments"

static struct server_proc *g_sp;
#define E2E_SERVER g_sp

/* GET (or HEAD) of path on the admin port; returns the status, body in *b
 * (the caller frees b->data). */
static long request(int port, const char *path, int head, struct tk_body *b) {
  CURL *c = curl_easy_init();
  char url[256];
  long code = 0;

  b->data = NULL;
  b->len = 0;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tk_body_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  if (head)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

START_TEST(test_metrics_scrape) {
  struct fleet_proxy *ok, *bad;
  struct tk_body b = {NULL, 0};
  char path[512], cmd[1536];
  const char *py =
      access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  long long until;
  int port, rc;

  ck_assert_int_eq(server_proc_start(E2E_STORE, NULL, &g_sp), 0);
  port = server_proc_admin_port(g_sp);
  ck_assert_int_gt(port, 0);
  E2E_ASSERT(fleet_proxy_new(server_proc_target(g_sp), "m-ok", PAYMENTS,
                             FLEET_SYNCED, &ok) == 0,
             "proxy m-ok");
  E2E_ASSERT(fleet_proxy_new(server_proc_target(g_sp), "m-bad", PAYMENTS,
                             FLEET_NACKED, &bad) == 0,
             "proxy m-bad");
  /* Counted about once a second; pulls fail within their backoff. */
  until = tk_now_ms() + 8000;
  for (;;) {
    free(b.data);
    rc = (int)request(port, "/metrics", 0, &b);
    E2E_ASSERT(rc == 200, "GET /metrics: %d", rc);
    if ((tk_metric_sample(b.data,
                          "wasmxds_proxies_by_state{state=\"synced\"}") == 1 &&
         tk_metric_sample(b.data,
                          "wasmxds_proxies_by_state{state=\"nacked\"}") == 1 &&
         tk_metric_sample(
             b.data, "wasmxds_module_fetches_total{result=\"error\"}") >= 1) ||
        tk_now_ms() > until)
      break;
    tk_sleep_ms(200);
  }
  E2E_ASSERT(
      tk_metric_sample(b.data, "wasmxds_proxies_by_state{state=\"synced\"}") ==
              1 &&
          tk_metric_sample(b.data,
                           "wasmxds_proxies_by_state{state=\"nacked\"}") == 1 &&
          tk_metric_sample(b.data,
                           "wasmxds_proxies_by_state{state=\"stale\"}") == 0,
      "proxies by state:\n%s", b.data);
  E2E_ASSERT(
      tk_metric_sample(b.data,
                       "wasmxds_module_fetches_total{result=\"error\"}") >= 1 &&
          tk_metric_sample(b.data, "wasmxds_module_fetch_seconds_count") >= 1,
      "no failed module pull counted:\n%s", b.data);
  E2E_ASSERT(tk_metric_sample(b.data, "wasmxds_store_errors") == 0 &&
                 tk_metric_sample(b.data, "wasmxds_store_degraded") == 0,
             "store gauges:\n%s", b.data);
  E2E_ASSERT(tk_metric_sample(b.data, "process_resident_memory_bytes") > 1e6 &&
                 tk_metric_sample(b.data, "process_open_fds") > 3 &&
                 tk_metric_sample(b.data, "process_start_time_seconds") > 1.6e9,
             "process metrics:\n%s", b.data);
  E2E_ASSERT(strstr(b.data, "wasmxds_build_info{version=\"") != NULL,
             "no build info");
  snprintf(path, sizeof(path), "/tmp/check_metrics.%d.txt", (int)getpid());
  tk_write_file(path, b.data, b.len);
  snprintf(cmd, sizeof(cmd), "%s %s/tests/metrics_check.py %s %s/README.md", py,
           XDS_SRCDIR, path, XDS_SRCDIR);
  rc = tk_sh("%s", cmd);
  unlink(path);
  E2E_ASSERT(rc == 0, "%s failed (%d); the scrape:\n%s", cmd, rc, b.data);
  free(b.data);
  fleet_proxy_free(ok);
  fleet_proxy_free(bad);
  server_proc_stop(g_sp, NULL);
  server_proc_free(g_sp);
  g_sp = NULL;
}
END_TEST

START_TEST(test_head_on_get_routes) {
  static const char *const paths[] = {"/healthz", "/readyz", "/metrics",
                                      "/debug/proxies", "/debug/modules"};
  struct tk_body b;
  int port;

  ck_assert_int_eq(server_proc_start(E2E_STORE, NULL, &g_sp), 0);
  port = server_proc_admin_port(g_sp);
  ck_assert_int_gt(port, 0);
  /* Ready first (a sanitizer build takes a while to build the first
   * snapshot): /readyz answers 503 before, to GET and HEAD alike. */
  for (int waited = 0; waited < 10000; waited += 50) {
    long ready = request(port, "/readyz", 0, &b);

    free(b.data);
    if (ready == 200)
      break;
    tk_sleep_ms(50);
  }
  for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
    long get = request(port, paths[i], 0, &b), head;
    free(b.data);
    head = request(port, paths[i], 1, &b);
    E2E_ASSERT(get == 200 && head == get && b.len == 0,
               "%s: GET %ld, HEAD %ld with %zu body bytes", paths[i], get, head,
               b.len);
    free(b.data);
  }
  server_proc_stop(g_sp, NULL);
  server_proc_free(g_sp);
  g_sp = NULL;
}
END_TEST

int main(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");
  SRunner *sr;
  int failed;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_metrics_scrape);
  tcase_add_test(tc, test_head_on_get_routes);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  curl_global_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
