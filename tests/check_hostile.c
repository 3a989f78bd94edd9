/*
 * check_hostile.c: hostile xDS clients against the real wasmxds binary
 * (issue 13), end to end on loopback.
 *
 * serving_stays_fast_under_name_floods: while one client sends what cost
 * the serving thread seconds before (a delta request subscribing 350,000
 * names to a type wasmxds does not serve, and storms of 60 requests that
 * subscribe and unsubscribe 10,000 names), another client's pushes keep
 * going out within 50 ms of each snapshot's publication, as the server's
 * own histogram wasmxds_push_latency_seconds measures it (all but
 * PUSH_LATE_MAX of them: the machine is shared), and none takes more than
 * PUSH_CLIENT_MAX_S from the store edit to the client.
 *
 * The server is $WASMXDS_BIN (tests/e2e/server_proc.h); every port is a
 * free loopback one and every wait is bounded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#include "google/rpc/status.pb-c.h"

#define EXT_A "organizations/acme/extensions/a"
/* Names the hostile client floods with: short, so 350,000 of them fit in
 * one 4 MiB request. */
#define HUGE_N 350000
#define STORM_N 10000
#define STORM_REQUESTS 60
/* The bound of issue 13: a push waits at most this long for the serving
 * thread, whatever another client does (a bucket of the histogram). Under
 * AddressSanitizer every request costs the server several times more, so
 * the sanitizer build checks the next bucket but one. */
#if defined(__SANITIZE_ADDRESS__)
#define PUSH_BOUND_S 0.25
#define PUSH_BUCKET "0.25"
#else
#define PUSH_BOUND_S 0.05
#define PUSH_BUCKET "0.05"
#endif
#define PUSHES 12
/* Pushes allowed past the bound: on a 2-core machine shared with the
 * flooding client, the test's own threads and whatever else the suite
 * runs in parallel, the scheduler alone can hold one push back; the
 * defect this guards against held every push for seconds. */
#define PUSH_LATE_MAX 2
/* Store edit to receipt on the victim, whatever the load. */
#define PUSH_CLIENT_MAX_S 2.0

static char g_tmp[64];
static char g_store[96];
static struct server_proc *g_sp;

#define E2E_SERVER g_sp

static double now_s(void) {
  return (double)tk_now_ms() / 1000.0;
}

static void sleep_ms(int ms) {
  tk_sleep_ms(ms);
}

/* Writes g_store/name atomically (a hidden temporary, then rename). */
static void store_write(const char *name, const char *text) {
  char tmp[160], path[160];
  FILE *f;

  snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", g_store, name);
  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  f = fopen(tmp, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_ge(fputs(text, f), 0);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(rename(tmp, path), 0);
}

static void write_ext_a(int v) {
  char text[512];

  snprintf(text, sizeof(text),
           "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
           "metadata: {organization: acme, name: a}\n"
           "spec: {url: file:///w/a.wasm, config: {v: %d}}\n",
           v);
  store_write("ext-a.yaml", text);
}

static void setup(void) {
  static const char *const args[] = {"--debounce-ms", "0", NULL};

  snprintf(g_tmp, sizeof(g_tmp), "/tmp/wasmxds-hostile-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_tmp));
  snprintf(g_store, sizeof(g_store), "%s/store", g_tmp);
  ck_assert_int_eq(mkdir(g_store, 0700), 0);
  write_ext_a(0);
  store_write("tmpl.yaml",
              "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
              "metadata: {name: in}\nspec:\n  port: 15006\n"
              "  direction: INBOUND\n  route: {cluster: app}\n"
              "  httpFilters:\n  - name: envoy.filters.http.router\n"
              "    typedConfig: {'@type': type.googleapis.com/"
              "envoy.extensions.filters.http.router.v3.Router}\n");
  ck_assert_int_eq(server_proc_start(g_store, args, &g_sp), 0);
}

static void teardown(void) {
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(g_tmp);
}

/* ---- /metrics ----------------------------------------------------------- */

/* The value of the metric line starting with name (up to the value). */
static unsigned long metric(const char *text, const char *name) {
  size_t n = strlen(name);
  const char *p = text;

  /* At the start of a line: the # HELP and # TYPE lines name it too. */
  while (p != NULL && strncmp(p, name, n) != 0) {
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  E2E_ASSERT(p != NULL, "no %s in /metrics", name);
  return strtoul(p + n, NULL, 10);
}

/* GET path from the admin server; a new NUL-terminated body (free()). */
/* GET path on the admin port: the body (malloc'd, NULL when empty) and
 * the HTTP status in *code. Fails the test if the request cannot be made. */
static char *http_get_code(const char *path, long *code) {
  char url[256];
  struct tk_body b = {NULL, 0};
  CURL *c = curl_easy_init();
  CURLcode rc;

  *code = 0;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s",
           server_proc_admin_port(g_sp), path);
  ck_assert_ptr_nonnull(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tk_body_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
  curl_easy_cleanup(c);
  E2E_ASSERT(rc == CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
  return b.data;
}

/* GET path on the admin port; anything but 200 with a body fails. */
static char *http_get(const char *path) {
  long code;
  char *body = http_get_code(path, &code);

  E2E_ASSERT(code == 200 && body != NULL, "GET %s: HTTP %ld", path, code);
  return body;
}

/* Observations of the push latency histogram: all, and within the bound. */
static void push_hist(unsigned long *count, unsigned long *fast) {
  char *m = http_get("/metrics");

  *count = metric(m, "wasmxds_push_latency_seconds_count ");
  *fast =
      metric(m, "wasmxds_push_latency_seconds_bucket{le=\"" PUSH_BUCKET "\"} ");
  free(m);
}

/* ---- the hostile client ---------------------------------------------------
 */

struct hostile {
  pthread_t thread;
  atomic_int stop;
  atomic_int refused; /* 350,000-name requests the server refused */
  atomic_int storm;   /* storm requests sent */
  atomic_int rounds;  /* rounds of both attacks completed */
  char **names;       /* HUGE_N names; the first STORM_N are the storm's */
};

static Envoy__Config__Core__V3__Node *acme_node(const char *id) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};

  return xds_node_new(id, "c", meta, NULL);
}

/* Reads what the server sent without waiting. */
static void drain_stream(struct xds_stream *st) {
  uint8_t *data;
  size_t len;

  while (xds_stream_recv_raw(st, 0, &data, &len) == 0)
    free(data);
}

static int send_delta(struct xds_stream *st, Envoy__Config__Core__V3__Node *n,
                      const char *type, char **sub, size_t n_sub, char **unsub,
                      size_t n_unsub) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;

  req.node = n;
  req.type_url = (char *)type;
  req.resource_names_subscribe = sub;
  req.n_resource_names_subscribe = n_sub;
  req.resource_names_unsubscribe = unsub;
  req.n_resource_names_unsubscribe = n_unsub;
  return xds_stream_send_delta_request(st, &req, 5000);
}

static void *hostile_main(void *arg) {
  struct hostile *h = arg;
  Envoy__Config__Core__V3__Node *node = acme_node("hostile");
  struct xds_client *c = NULL;

  if (node == NULL || xds_client_new(server_proc_target(g_sp), NULL, &c) < 0)
    goto out;
  while (!atomic_load(&h->stop)) {
    static const char *const types[] = {XDS_TYPE_ECDS, XDS_TYPE_PREFIX
                                        "envoy.config.endpoint.v3."
                                        "ClusterLoadAssignment"};
    struct xds_stream *st = NULL;
    grpc_status_code code;
    char *details = NULL;

    /* 350,000 names to endpoints, which wasmxds does not serve. */
    if (xds_stream_open(c, XDS_METHOD_DELTA_ADS, &st) == 0 &&
        send_delta(st, node, types[1], h->names, HUGE_N, NULL, 0) == 0 &&
        xds_stream_wait_status(st, 15000, &code, &details) == 0 &&
        code == GRPC_STATUS_RESOURCE_EXHAUSTED)
      atomic_fetch_add(&h->refused, 1);
    free(details);
    xds_stream_free(st);
    /* The storm: subscribe and unsubscribe 10,000 names, 60 times, on a
     * served type and on an unserved one, reading what comes back. */
    for (int t = 0; t < 2 && !atomic_load(&h->stop); t++) {
      if (xds_stream_open(c, XDS_METHOD_DELTA_ADS, &st) < 0)
        break;
      for (int i = 0; i < STORM_REQUESTS && !atomic_load(&h->stop); i++) {
        int rc = i % 2 == 0 ? send_delta(st, i == 0 ? node : NULL, types[t],
                                         h->names, STORM_N, NULL, 0)
                            : send_delta(st, NULL, types[t], NULL, 0, h->names,
                                         STORM_N);
        if (rc < 0)
          break;
        atomic_fetch_add(&h->storm, 1);
        drain_stream(st);
      }
      xds_stream_free(st);
    }
    atomic_fetch_add(&h->rounds, 1);
  }
out:
  xds_client_free(c);
  xds_node_free(node);
  return NULL;
}

/* ---- the victim -----------------------------------------------------------
 */

static Envoy__Service__Discovery__V3__DiscoveryResponse *
recv_type(struct xds_stream *st, const char *type) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  int rc = xds_stream_recv_response(st, 10000, &r);

  E2E_ASSERT(rc == 0, "victim: no response (%d)", rc);
  E2E_ASSERT(strcmp(r->type_url, type) == 0, "victim: got %s, want %s",
             r->type_url, type);
  return r;
}

static void send_sotw_error(struct xds_stream *st,
                            Envoy__Config__Core__V3__Node *n, const char *type,
                            const char *version, const char *nonce,
                            char **names, size_t n_names, const char *error) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;

  req.node = n;
  req.type_url = (char *)type;
  req.version_info = (char *)version;
  req.response_nonce = (char *)nonce;
  req.resource_names = names;
  req.n_resource_names = n_names;
  if (error != NULL) {
    status.code = 3;
    status.message = (char *)error;
    req.error_detail = &status;
  }
  E2E_ASSERT(xds_stream_send_request(st, &req, 5000) == 0, "send failed");
}

static void send_sotw(struct xds_stream *st, Envoy__Config__Core__V3__Node *n,
                      const char *type, const char *version, const char *nonce,
                      char **names, size_t n_names) {
  send_sotw_error(st, n, type, version, nonce, names, n_names, NULL);
}

START_TEST(serving_stays_fast_under_name_floods) {
  Envoy__Config__Core__V3__Node *node = acme_node("victim");
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  struct xds_client *c;
  struct xds_stream *st;
  struct hostile h;
  char *ecds[] = {EXT_A};
  unsigned long count0, fast0, count1, fast1;
  double worst_client = 0, t0;

  memset(&h, 0, sizeof(h));
  h.names = malloc(HUGE_N * sizeof(*h.names));
  ck_assert_ptr_nonnull(h.names);
  for (size_t i = 0; i < HUGE_N; i++) {
    h.names[i] = malloc(8);
    ck_assert_ptr_nonnull(h.names[i]);
    snprintf(h.names[i], 8, "n%06zu", i);
  }
  ck_assert_ptr_nonnull(node);
  ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &st), 0);
  send_sotw(st, node, XDS_TYPE_LISTENER, "", "", NULL, 0);
  r = recv_type(st, XDS_TYPE_LISTENER);
  send_sotw(st, NULL, XDS_TYPE_LISTENER, r->version_info, r->nonce, NULL, 0);
  xds_msg_free(r);
  send_sotw(st, NULL, XDS_TYPE_ECDS, "", "", ecds, 1);
  r = recv_type(st, XDS_TYPE_ECDS);
  send_sotw(st, NULL, XDS_TYPE_ECDS, r->version_info, r->nonce, ecds, 1);
  xds_msg_free(r);

  /* The flood starts; pushes begin once the first huge request is in. */
  atomic_init(&h.stop, 0);
  ck_assert_int_eq(pthread_create(&h.thread, NULL, hostile_main, &h), 0);
  t0 = now_s();
  while (atomic_load(&h.storm) == 0 && now_s() - t0 < 30)
    sleep_ms(10);
  push_hist(&count0, &fast0);
  for (int i = 1; i <= PUSHES; i++) {
    double sent = now_s(), took;

    write_ext_a(i);
    r = recv_type(st, XDS_TYPE_ECDS);
    took = now_s() - sent;
    if (took > worst_client)
      worst_client = took;
    send_sotw(st, NULL, XDS_TYPE_ECDS, r->version_info, r->nonce, ecds, 1);
    xds_msg_free(r);
    sleep_ms(150);
  }
  push_hist(&count1, &fast1);
  atomic_store(&h.stop, 1);
  pthread_join(h.thread, NULL);
  fprintf(stderr,
          "hostile: %d huge requests refused, %d storm requests, %d rounds; "
          "victim: %d pushes, %lu of %lu pushes within %.0f ms on the "
          "server, slowest from store edit to receipt %.1f ms\n",
          atomic_load(&h.refused), atomic_load(&h.storm),
          atomic_load(&h.rounds), PUSHES, fast1 - fast0, count1 - count0,
          PUSH_BOUND_S * 1000, worst_client * 1000);
  E2E_ASSERT(atomic_load(&h.refused) >= 1 && atomic_load(&h.storm) >= 20,
             "the hostile client did not get its requests through (%d "
             "refused, %d storm requests)",
             atomic_load(&h.refused), atomic_load(&h.storm));
  E2E_ASSERT(count1 - count0 >= PUSHES, "only %lu pushes were measured",
             count1 - count0);
  E2E_ASSERT((count1 - count0) - (fast1 - fast0) <= PUSH_LATE_MAX,
             "%lu of %lu pushes waited more than %.0f ms for the serving "
             "thread",
             (count1 - count0) - (fast1 - fast0), count1 - count0,
             PUSH_BOUND_S * 1000);
  E2E_ASSERT(worst_client < PUSH_CLIENT_MAX_S,
             "a push took %.0f ms from store edit to receipt",
             worst_client * 1000);
  E2E_ASSERT(server_proc_alive(g_sp), "the server died");
  xds_stream_free(st);
  xds_client_free(c);
  xds_node_free(node);
  for (size_t i = 0; i < HUGE_N; i++)
    free(h.names[i]);
  free(h.names);
}
END_TEST

/* ---- logs ---------------------------------------------------------------- */

/* The stream's status from /debug/proxies/<node>: the entry whose events
 * show n events of kind on this stream, or any when n < 0; -1 when
 * absent, also when no stream has that node yet (404: a stream is listed
 * under its node id once the server has read its first request, which
 * for a request of thousands of names may be after the client's send
 * returned). Returns the proxy-wide count and sets *suppressed. */
static long proxy_events(const char *node, const char *kind, long n,
                         long *suppressed) {
  char path[128], *body;
  json_t *arr;
  json_error_t jerr;
  long proxy = -1, code;

  snprintf(path, sizeof(path), "/debug/proxies/%s", node);
  body = http_get_code(path, &code);
  if (code == 404) {
    free(body);
    return -1;
  }
  E2E_ASSERT(code == 200 && body != NULL, "GET %s: HTTP %ld", path, code);
  arr = json_loads(body, 0, &jerr);
  E2E_ASSERT(json_is_array(arr), "/debug/proxies: %s", jerr.text);
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *ev = json_object_get(
        json_object_get(json_array_get(arr, i), "events"), kind);
    long here = (long)json_integer_value(json_object_get(ev, "stream"));
    if (n >= 0 && here != n)
      continue;
    proxy = (long)json_integer_value(json_object_get(ev, "proxy"));
    *suppressed =
        (long)json_integer_value(json_object_get(ev, "log_lines_suppressed"));
  }
  json_decref(arr);
  free(body);
  return proxy;
}

/* A node id carrying a newline and a fake log line: every log line that
 * mentions it holds it escaped, inline; none starts with the fake. */
START_TEST(forged_node_id_stays_on_one_line) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};
  const char *forged = "evil\n2026-12-02T00:00:00.000Z info  proxy "
                       "connected: node admin-forged";
  Envoy__Config__Core__V3__Node *node = xds_node_new(forged, "c", meta, NULL);
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  struct xds_client *c;
  struct xds_stream *st;
  long all, escaped;

  ck_assert_ptr_nonnull(node);
  ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &st), 0);
  send_sotw(st, node, XDS_TYPE_LISTENER, "", "", NULL, 0);
  /* Served, or refused by the identity rules: either way it was logged. */
  if (xds_stream_recv_response(st, 5000, &r) == 0)
    xds_msg_free(r);
  sleep_ms(200);
  all = server_proc_log_count(g_sp, "admin-forged");
  escaped = server_proc_log_count(
      g_sp, "evil\\n2026-12-02T00:00:00.000Z info  proxy connected: node "
            "admin-forged");
  E2E_ASSERT(all == escaped,
             "%ld log lines mention the forged node id, %ld of them with "
             "its newline escaped",
             all, escaped);
  xds_stream_free(st);
  xds_client_free(c);
  xds_node_free(node);
}
END_TEST

#define NACKS 20000

/* 20,000 NACKs from one proxy: a handful of lines and one summary, the
 * full count in its status and in /metrics, and a reconnect under the same
 * node id does not get a new budget. */
START_TEST(nack_flood_is_rate_limited_and_counted) {
  Envoy__Config__Core__V3__Node *node = acme_node("nacker");
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  struct xds_client *c;
  struct xds_stream *st, *st2;
  char *ecds[] = {EXT_A}, nonce[32], *m, err[64];
  long lines, lines_after, proxy = -1, suppressed = 0;
  double t0, flood_s;

  ck_assert_ptr_nonnull(node);
  ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &st), 0);
  send_sotw(st, node, XDS_TYPE_ECDS, "", "", ecds, 1);
  r = recv_type(st, XDS_TYPE_ECDS);
  snprintf(nonce, sizeof(nonce), "%s", r->nonce);
  xds_msg_free(r);
  server_proc_log_mark(g_sp);
  t0 = now_s();
  for (int i = 0; i < NACKS; i++) {
    snprintf(err, sizeof(err), "bad wasm %d\nfake line", i);
    send_sotw_error(st, NULL, XDS_TYPE_ECDS, "", nonce, ecds, 1, err);
  }
  /* Wait until the server has taken every one. */
  for (double end = now_s() + 30; now_s() < end; sleep_ms(100)) {
    proxy = proxy_events("nacker", "nack", -1, &suppressed);
    if (proxy >= NACKS)
      break;
  }
  flood_s = now_s() - t0;
  E2E_ASSERT(proxy == NACKS, "the server counted %ld NACKs of %d", proxy,
             NACKS);
  lines = server_proc_log_count(g_sp, "NACK from node nacker");
  fprintf(stderr,
          "NACK flood: %d NACKs in %.1f s, %ld log lines, %ld suppressed\n",
          NACKS, flood_s, lines, suppressed);
  E2E_ASSERT(lines >= 1 && lines <= 5 * (1 + (long)(flood_s / 10)),
             "%ld log lines for %d NACKs in %.1f s", lines, NACKS, flood_s);
  E2E_ASSERT(suppressed == NACKS - lines, "%ld suppressed, %ld logged",
             suppressed, lines);
  E2E_ASSERT(server_proc_log_count(g_sp, "fake line") ==
                 server_proc_log_count(g_sp, "\\nfake line"),
             "a NACK message's newline reached the log");
  /* The same node reconnects and NACKs again, within the window. */
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &st2), 0);
  send_sotw(st2, node, XDS_TYPE_ECDS, "", "", ecds, 1);
  r = recv_type(st2, XDS_TYPE_ECDS);
  send_sotw_error(st2, NULL, XDS_TYPE_ECDS, "", r->nonce, ecds, 1, "again");
  xds_msg_free(r);
  for (double end = now_s() + 10; now_s() < end; sleep_ms(50))
    if (proxy_events("nacker", "nack", 1, &suppressed) == NACKS + 1)
      break;
  E2E_ASSERT(proxy_events("nacker", "nack", 1, &suppressed) == NACKS + 1,
             "the reconnected stream's NACK was not counted for the proxy");
  lines_after = server_proc_log_count(g_sp, "NACK from node nacker");
  if (now_s() - t0 < 9)
    E2E_ASSERT(lines_after == lines,
               "a reconnect got a new log budget (%ld lines, then %ld)", lines,
               lines_after);
  /* One summary once the window is over. */
  E2E_ASSERT(server_proc_wait_log(g_sp, "node nacker: ... and ", 15000) == 0,
             "no summary line");
  m = http_get("/metrics");
  E2E_ASSERT(metric(m, "wasmxds_nacks_total{type=\"ECDS\"} ") >= NACKS + 1,
             "/metrics lost NACKs");
  E2E_ASSERT(metric(m, "wasmxds_log_lines_suppressed_total ") >=
                 (unsigned long)(NACKS - lines),
             "/metrics does not count the suppressed lines");
  free(m);
  xds_stream_free(st2);
  xds_stream_free(st);
  xds_client_free(c);
  xds_node_free(node);
}
END_TEST

/* 10,000 names a proxy may not have: a handful of lines, every refusal
 * counted. */
START_TEST(refused_names_are_rate_limited_and_counted) {
  Envoy__Config__Core__V3__Node *node = acme_node("snoop");
  struct xds_client *c;
  struct xds_stream *st;
  char **names = malloc(STORM_N * sizeof(*names)), *m;
  long proxy = -1, suppressed = 0, lines;

  ck_assert_ptr_nonnull(names);
  for (int i = 0; i < STORM_N; i++) {
    names[i] = malloc(64);
    snprintf(names[i], 64, "organizations/acme/extensions/x%05d", i);
  }
  server_proc_log_mark(g_sp);
  ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &st), 0);
  send_sotw(st, node, XDS_TYPE_ECDS, "", "", names, STORM_N);
  for (double end = now_s() + 20; now_s() < end; sleep_ms(100))
    if ((proxy = proxy_events("snoop", "refused_name", -1, &suppressed)) >=
        STORM_N)
      break;
  E2E_ASSERT(proxy == STORM_N, "%ld refusals counted of %d", proxy, STORM_N);
  lines = server_proc_log_count(g_sp, "node snoop: ECDS name");
  E2E_ASSERT(lines >= 1 && lines <= 5, "%ld log lines for %d refused names",
             lines, STORM_N);
  m = http_get("/metrics");
  E2E_ASSERT(metric(m, "wasmxds_refused_names_total ") >= STORM_N,
             "/metrics does not count refused names");
  free(m);
  xds_stream_free(st);
  xds_client_free(c);
  xds_node_free(node);
  for (int i = 0; i < STORM_N; i++)
    free(names[i]);
  free(names);
}
END_TEST

/* ---- compressed requests ---------------------------------------------- */

#define CSDS_STREAM_METHOD                                                     \
  "/envoy.service.status.v3.ClientStatusDiscoveryService/StreamClientStatus"
/* A request of BOMB_MIB MiB of zeros, gzip-compressed by the client to
 * about BOMB_MIB KiB on the wire (under the 4 MiB limit). */
#define BOMB_MIB 64
/* What the two bombs may add to the server's peak RSS: the bounded
 * inflating holds a few 4 MiB buffers at once; AddressSanitizer's
 * quarantine keeps freed ones around. Inflating a bomb whole costs
 * BOMB_MIB or more. */
#if defined(__SANITIZE_ADDRESS__)
#define BOMB_HWM_MAX_KIB (48 * 1024)
#else
#define BOMB_HWM_MAX_KIB (24 * 1024)
#endif

/* The server's peak resident set (VmHWM), in KiB; -1 when unreadable. */
static long server_hwm_kib(void) {
  char path[64], line[128];
  long kib = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", server_proc_pid(g_sp));
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

/* A client whose every message is compressed with algo. */
static struct xds_client *compressing_client(grpc_compression_algorithm algo) {
  struct xds_client *c = NULL;

  ck_assert_int_eq(
      xds_client_new_compressing(server_proc_target(g_sp), algo, &c), 0);
  return c;
}

/* Sends len bytes of zeros on a new stream of method and returns the
 * status the server ends it with (details copied into why). */
static grpc_status_code send_zeros(struct xds_client *c, const char *method,
                                   size_t len, char *why, size_t why_len) {
  struct xds_stream *st;
  grpc_status_code code = GRPC_STATUS_OK;
  char *details = NULL;
  uint8_t *zeros = calloc(1, len);
  int rc;

  ck_assert_ptr_nonnull(zeros);
  ck_assert_int_eq(xds_stream_open(c, method, &st), 0);
  rc = xds_stream_send_raw(st, zeros, len, 30000);
  free(zeros);
  E2E_ASSERT(rc == 0, "sending %zu bytes: %d", len, rc);
  rc = xds_stream_wait_status(st, 20000, &code, &details);
  E2E_ASSERT(rc == 0, "no status within 20 s: %d", rc);
  snprintf(why, why_len, "%s", details != NULL ? details : "");
  free(details);
  xds_stream_free(st);
  return code;
}

/* gRPC C core 1.51 inflates a compressed message whole and only then
 * checks its size: 256 MiB of zeros, about 256 KiB of gzip, raised the
 * server's peak RSS by 280 MiB before it was refused (a 4 MiB request,
 * gigabytes). The server inflates
 * gzip itself with a bound, so the bomb is refused with
 * RESOURCE_EXHAUSTED at a few MiB on ADS and on CSDS; deflate is refused
 * unread (UNIMPLEMENTED); a proxy's gzip request is served all the same
 * (tests/protocol/sotw.c requests_compressed_with_node_every_time). */
START_TEST(compressed_bombs_are_refused_before_they_inflate) {
  static const char *const methods[] = {XDS_METHOD_ADS, CSDS_STREAM_METHOD};
  struct xds_client *gz = compressing_client(GRPC_COMPRESS_GZIP);
  struct xds_client *df = compressing_client(GRPC_COMPRESS_DEFLATE);
  Envoy__Config__Core__V3__Node *node = acme_node("after-the-bombs");
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  struct xds_stream *st;
  long before = server_hwm_kib(), after;
  grpc_status_code code;
  char why[256];

  ck_assert_int_gt(before, 0);
  for (size_t i = 0; i < 2; i++) {
    code = send_zeros(gz, methods[i], (size_t)BOMB_MIB << 20, why, sizeof(why));
    E2E_ASSERT(code == GRPC_STATUS_RESOURCE_EXHAUSTED &&
                   strstr(why, "inflates past") != NULL,
               "%s: a %d MiB gzip bomb ended with status %d '%s'", methods[i],
               BOMB_MIB, (int)code, why);
  }
  after = server_hwm_kib();
  E2E_ASSERT(after - before < BOMB_HWM_MAX_KIB,
             "the server's peak RSS grew by %ld KiB for two %d MiB bombs",
             after - before, BOMB_MIB);
  E2E_ASSERT(server_proc_wait_log(
                 g_sp, "the gzip-compressed request inflates past", 5000) == 0,
             "no log line names the refused bomb");

  code = send_zeros(df, XDS_METHOD_ADS, 4096, why, sizeof(why));
  E2E_ASSERT(code == GRPC_STATUS_UNIMPLEMENTED,
             "a deflate request ended with status %d '%s'", (int)code, why);

  /* Still serving, compressed requests too. */
  ck_assert_int_eq(xds_stream_open(gz, XDS_METHOD_ADS, &st), 0);
  send_sotw(st, node, XDS_TYPE_LISTENER, "", "", NULL, 0);
  E2E_ASSERT(xds_stream_recv_response(st, 5000, &r) == 0,
             "no LDS answer to a gzip request after the bombs");
  xds_msg_free(r);
  xds_stream_free(st);
  xds_client_free(gz);
  xds_client_free(df);
  xds_node_free(node);
}
END_TEST

static Suite *hostile_suite(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("floods");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, serving_stays_fast_under_name_floods);
  suite_add_tcase(s, tc);
  tc = tcase_create("logs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, forged_node_id_stays_on_one_line);
  tcase_add_test(tc, nack_flood_is_rate_limited_and_counted);
  tcase_add_test(tc, refused_names_are_rate_limited_and_counted);
  suite_add_tcase(s, tc);
  tc = tcase_create("compression");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, compressed_bombs_are_refused_before_they_inflate);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  int rc;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = tk_run_suite(hostile_suite());
  curl_global_cleanup();
  return rc;
}
