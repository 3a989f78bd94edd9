/*
 * check_threads.c: the real wasmxds binary with --threads 3 (issue 20,
 * target 2): every stream belongs to one of three serving loops, and what
 * the loops share still works while they run at once.
 *
 * pushes_connects_and_reads_at_once: 24 ADS proxies, each on its own
 * connection, receive and ACK three pushes of one extension's config
 * while another thread connects and drops proxies and a third reads
 * /debug/proxies (in pages), /metrics and CSDS without pause (every walk
 * of the pages and every CSDS answer holds the 24). Then:
 * the proxies are spread over more than one loop ("loop" in
 * /debug/proxies); a full page and a walk of 5-entry pages list the same
 * 24 in stream id order; CSDS lists the 24; /metrics sums the loops'
 * counts (24 proxies, 24 synced); SIGTERM ends every loop and the process
 * exits 0. In a ThreadSanitizer build (tests/tsan.sh) a race in the
 * server makes it exit 66 instead: the server gets the options of
 * $WASMXDS_SERVER_TSAN_OPTIONS when it is set.
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#define PROXIES 24
#define PUSHES 3
#define EXT "organizations/acme/extensions/a"
#define TENANT "organizations/acme/tenants/t1"
#define ANSWER_MS 20000

static char g_tmp[64];
static char g_store[96];
static struct server_proc *g_sp;
#define E2E_SERVER g_sp

static void write_ext(int rev) {
  char path[160], text[512];

  snprintf(path, sizeof(path), "%s/ext-a.yaml", g_store);
  snprintf(text, sizeof(text),
           "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
           "metadata: {organization: acme, name: a}\n"
           "spec:\n  url: file:///w/a.wasm\n  config: {rev: %d}\n",
           rev);
  tk_write_file(path, text, strlen(text));
}

static void setup(void) {
  static const char tmpl[] =
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: in}\nspec:\n  port: 15006\n"
      "  direction: INBOUND\n  route: {cluster: app}\n"
      "  httpFilters:\n  - name: envoy.filters.http.router\n"
      "    typedConfig: {'@type': type.googleapis.com/"
      "envoy.extensions.filters.http.router.v3.Router}\n";
  static const char *const args[] = {"--threads", "3", NULL};
  const char *tsan = getenv("WASMXDS_SERVER_TSAN_OPTIONS");
  char path[160];

  /* Under tests/tsan.sh: the server's ThreadSanitizer options (this
   * program read its own at start; the child reads the environment). */
  if (tsan != NULL)
    setenv("TSAN_OPTIONS", tsan, 1);

  snprintf(g_tmp, sizeof(g_tmp), "/tmp/wasmxds-threads-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_tmp));
  snprintf(g_store, sizeof(g_store), "%s/store", g_tmp);
  ck_assert_int_eq(mkdir(g_store, 0700), 0);
  write_ext(0);
  snprintf(path, sizeof(path), "%s/tmpl.yaml", g_store);
  tk_write_file(path, tmpl, strlen(tmpl));
  ck_assert_int_eq(server_proc_start(g_store, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "3 threads", 10000) == 0,
             "the server does not say it serves on 3 threads");
}

static void teardown(void) {
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(g_tmp);
}

/* ---- proxies --------------------------------------------------------- */

struct proxy {
  struct xds_client *client;
  struct xds_stream *stream;
  Envoy__Config__Core__V3__Node *node;
  char version[64];
};

static int send_ecds(struct proxy *p, const char *version, const char *nonce) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  char *names[] = {(char *)EXT};

  req.node = p->node;
  req.type_url = XDS_TYPE_ECDS;
  req.resource_names = names;
  req.n_resource_names = 1;
  if (version != NULL)
    req.version_info = (char *)version;
  if (nonce != NULL)
    req.response_nonce = (char *)nonce;
  return xds_stream_send_request(p->stream, &req, ANSWER_MS);
}

/* Waits for an ECDS response of another version than p's last, ACKs it
 * and remembers its version. Returns 0 or a negative code. */
static int recv_and_ack(struct proxy *p) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  int rc = xds_stream_recv_response(p->stream, ANSWER_MS, &r);

  if (rc < 0)
    return rc;
  if (strcmp(r->type_url, XDS_TYPE_ECDS) != 0 || r->n_resources != 1 ||
      strcmp(r->version_info, p->version) == 0) {
    xds_msg_free(r);
    return XDS_EINVAL;
  }
  snprintf(p->version, sizeof(p->version), "%s", r->version_info);
  rc = send_ecds(p, r->version_info, r->nonce);
  xds_msg_free(r);
  return rc;
}

/* Connects proxy id on its own connection and takes its first config. */
static int proxy_open(struct proxy *p, const char *id) {
  grpc_arg arg = {GRPC_ARG_INTEGER,
                  (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                  {.integer = 1}};
  grpc_channel_args own_conn = {1, &arg};
  const char *meta[] = {"wasmxds.tenant", TENANT, "wasmxds.mode", "SIDECAR",
                        NULL};
  int rc;

  memset(p, 0, sizeof(*p));
  p->node = xds_node_new(id, "c", meta, NULL);
  if (p->node == NULL)
    return XDS_ENOMEM;
  /* Its own connection, as each Envoy has (gRPC shares one between the
   * channels of a process otherwise). */
  rc = xds_client_new(server_proc_target(g_sp), &own_conn, &p->client);
  if (rc == 0)
    rc = xds_stream_open(p->client, XDS_METHOD_ADS, &p->stream);
  if (rc == 0)
    rc = send_ecds(p, NULL, NULL);
  if (rc == 0)
    rc = recv_and_ack(p);
  return rc;
}

static void proxy_close(struct proxy *p) {
  xds_client_free(p->client);
  xds_node_free(p->node);
  memset(p, 0, sizeof(*p));
}

/* ---- the admin side ------------------------------------------------------ */

/* GET path on the admin port: the status, the body in *b (caller frees
 * b->data) and the next page's start (0: none) in *next when non-NULL. */
static long get(const char *path, struct tk_body *b, unsigned long long *next) {
  CURL *c = curl_easy_init();
  struct curl_header *h;
  char url[256];
  long code = 0;

  b->data = NULL;
  b->len = 0;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s",
           server_proc_admin_port(g_sp), path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tk_body_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (next != NULL) {
    *next = 0;
    if (curl_easy_header(c, "X-Wasmxds-Next-After", 0, CURLH_HEADER, -1, &h) ==
        CURLHE_OK)
      *next = strtoull(h->value, NULL, 10);
  }
  curl_easy_cleanup(c);
  return code;
}

/* Every proxy on /debug/proxies, walked in pages of `limit` (0: one page):
 * their stream ids into ids (at most cap), their loops into loops (a bit
 * per loop), and in *stable (when not NULL) how many of them are the
 * proxy-NN ones connected for the whole test. Returns how many, or -1
 * when a page is not a JSON array in stream id order. */
static int list_proxies(size_t limit, unsigned long long *ids, int cap,
                        unsigned *loops, int *stable) {
  unsigned long long after = 0, next, last = 0;
  int n = 0;

  *loops = 0;
  if (stable != NULL)
    *stable = 0;
  for (;;) {
    struct tk_body b;
    char path[128];
    json_t *arr, *e;
    size_t i;

    snprintf(path, sizeof(path), "/debug/proxies?limit=%zu&after=%llu", limit,
             after);
    if (get(path, &b, &next) != 200) {
      fprintf(stderr, "check_threads: GET %s: %.200s\n", path,
              b.data != NULL ? b.data : "");
      free(b.data);
      return -1;
    }
    arr = json_loads(b.data, 0, NULL);
    free(b.data);
    if (!json_is_array(arr)) {
      json_decref(arr);
      return -1;
    }
    json_array_foreach(arr, i, e) {
      unsigned long long id = (unsigned long long)json_integer_value(
          json_object_get(e, "stream_id"));
      json_int_t loop = json_integer_value(json_object_get(e, "loop"));
      if (id <= last || loop < 0 || loop > 31) {
        fprintf(stderr,
                "check_threads: %s: stream %llu (loop %lld) after %llu\n", path,
                id, (long long)loop, last);
        json_decref(arr);
        return -1;
      }
      last = id;
      *loops |= 1u << loop;
      if (stable != NULL) {
        const char *node = json_string_value(json_object_get(e, "node_id"));
        if (node != NULL && strncmp(node, "proxy-", 6) == 0)
          (*stable)++;
      }
      if (n < cap)
        ids[n] = id;
      n++;
    }
    json_decref(arr);
    if (limit == 0 || next == 0)
      return n;
    after = next;
  }
}

static atomic_int g_stop;
static atomic_int g_reads, g_read_errors, g_churns, g_churn_errors;

/* Reads the admin pages and CSDS without pause until g_stop. Every walk
 * of the pages and every CSDS answer must hold all PROXIES stable
 * proxies, whichever loops serve them and whatever the churn and the
 * pushes do meanwhile. */
static void *reader_main(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    Envoy__Service__Status__V3__ClientStatusResponse *r;
    unsigned long long ids[1];
    unsigned loops;
    struct tk_body b;
    char err[256];
    long code;
    int stable = 0;

    if (list_proxies(7, ids, 1, &loops, &stable) < 0) {
      fprintf(stderr, "check_threads: a /debug/proxies walk failed\n");
      atomic_fetch_add(&g_read_errors, 1);
    } else if (stable != PROXIES) {
      fprintf(stderr,
              "check_threads: a /debug/proxies walk listed %d of the %d "
              "stable proxies\n",
              stable, PROXIES);
      atomic_fetch_add(&g_read_errors, 1);
    }
    code = get("/metrics", &b, NULL);
    if (code != 200 || tk_metric_sample(b.data, "wasmxds_proxies") < 0) {
      fprintf(stderr, "check_threads: GET /metrics: %ld\n", code);
      atomic_fetch_add(&g_read_errors, 1);
    }
    free(b.data);
    r = fleet_fetch(server_proc_target(g_sp), NULL, err, sizeof(err));
    if (r == NULL) {
      fprintf(stderr, "check_threads: CSDS: %s\n", err);
      atomic_fetch_add(&g_read_errors, 1);
    }
    for (int i = 0; r != NULL && i < PROXIES; i++) {
      char id[32];
      snprintf(id, sizeof(id), "proxy-%02d", i);
      if (fleet_find(r, id) == NULL) {
        fprintf(stderr, "check_threads: CSDS lacks %s\n", id);
        atomic_fetch_add(&g_read_errors, 1);
        break;
      }
    }
    fleet_response_free(r);
    atomic_fetch_add(&g_reads, 1);
  }
  return NULL;
}

/* Connects a proxy, takes its config and drops it, until g_stop. */
static void *churn_main(void *arg) {
  int n = 0;

  (void)arg;
  while (!atomic_load(&g_stop)) {
    struct proxy p;
    char id[32];

    snprintf(id, sizeof(id), "churn-%d", n++);
    if (proxy_open(&p, id) < 0)
      atomic_fetch_add(&g_churn_errors, 1);
    proxy_close(&p);
    atomic_fetch_add(&g_churns, 1);
  }
  return NULL;
}

START_TEST(pushes_connects_and_reads_at_once) {
  static struct proxy px[PROXIES];
  unsigned long long full[PROXIES + 1], paged[PROXIES + 1];
  Envoy__Service__Status__V3__ClientStatusResponse *r;
  pthread_t reader, churn;
  unsigned loops = 0, loops_paged;
  long long until;
  struct tk_body b;
  char err[256];
  int n, rc, ws = 0;

  for (int i = 0; i < PROXIES; i++) {
    char id[32];
    snprintf(id, sizeof(id), "proxy-%02d", i);
    rc = proxy_open(&px[i], id);
    E2E_ASSERT(rc == 0, "%s: no first config: %s", id, xds_strerror(rc));
  }
  atomic_store(&g_stop, 0);
  ck_assert_int_eq(pthread_create(&reader, NULL, reader_main, NULL), 0);
  ck_assert_int_eq(pthread_create(&churn, NULL, churn_main, NULL), 0);
  for (int rev = 1; rev <= PUSHES; rev++) {
    write_ext(rev);
    for (int i = 0; i < PROXIES; i++) {
      rc = recv_and_ack(&px[i]);
      E2E_ASSERT(rc == 0, "push %d: proxy-%02d got no new config: %s", rev, i,
                 xds_strerror(rc));
    }
  }
  atomic_store(&g_stop, 1);
  pthread_join(reader, NULL);
  pthread_join(churn, NULL);
  fprintf(stderr,
          "check_threads: %d admin rounds, %d churned proxies during %d "
          "pushes\n",
          atomic_load(&g_reads), atomic_load(&g_churns), PUSHES);
  E2E_ASSERT(atomic_load(&g_read_errors) == 0,
             "%d admin or CSDS reads failed while the loops ran",
             atomic_load(&g_read_errors));
  E2E_ASSERT(atomic_load(&g_churn_errors) == 0,
             "%d churned proxies got no config", atomic_load(&g_churn_errors));
  E2E_ASSERT(atomic_load(&g_reads) > 0 && atomic_load(&g_churns) > 0,
             "the reader or the churn thread never completed a round");

  /* The churned streams end asynchronously: wait for the 24. */
  until = tk_now_ms() + 10000;
  do {
    n = list_proxies(0, full, PROXIES + 1, &loops, NULL);
    if (n == PROXIES)
      break;
    tk_sleep_ms(100);
  } while (tk_now_ms() < until);
  E2E_ASSERT(n == PROXIES, "/debug/proxies lists %d proxies, not %d", n,
             PROXIES);
  E2E_ASSERT((loops & (loops - 1)) != 0,
             "every proxy is on one loop (mask 0x%x): the streams are not "
             "spread",
             loops);
  E2E_ASSERT((loops & ~7u) == 0, "a loop index beyond 2 (mask 0x%x)", loops);
  n = list_proxies(5, paged, PROXIES + 1, &loops_paged, NULL);
  E2E_ASSERT(n == PROXIES, "pages of 5 list %d proxies, not %d", n, PROXIES);
  for (int i = 0; i < PROXIES; i++)
    E2E_ASSERT(paged[i] == full[i],
               "page walk: entry %d is stream %llu, not %llu", i, paged[i],
               full[i]);

  r = fleet_fetch(server_proc_target(g_sp), NULL, err, sizeof(err));
  E2E_ASSERT(r != NULL, "CSDS: %s", err);
  E2E_ASSERT(r->n_config == PROXIES, "CSDS lists %zu proxies, not %d",
             r->n_config, PROXIES);
  for (int i = 0; i < PROXIES; i++) {
    char id[32];
    snprintf(id, sizeof(id), "proxy-%02d", i);
    E2E_ASSERT(fleet_find(r, id) != NULL, "CSDS lacks %s", id);
  }
  fleet_response_free(r);

  /* The sync-state gauges, which every loop's streams move with atomic
   * adds as their state changes. */
  until = tk_now_ms() + 10000;
  for (;;) {
    E2E_ASSERT(get("/metrics", &b, NULL) == 200, "GET /metrics");
    if ((tk_metric_sample(b.data, "wasmxds_proxies") == PROXIES &&
         tk_metric_sample(b.data,
                          "wasmxds_proxies_by_state{state=\"synced\"}") ==
             PROXIES) ||
        tk_now_ms() > until)
      break;
    free(b.data);
    tk_sleep_ms(200);
  }
  E2E_ASSERT(tk_metric_sample(b.data, "wasmxds_proxies") == PROXIES &&
                 tk_metric_sample(
                     b.data, "wasmxds_proxies_by_state{state=\"synced\"}") ==
                     PROXIES &&
                 tk_metric_sample(
                     b.data, "wasmxds_proxies_by_state{state=\"stale\"}") == 0,
             "metrics do not sum the loops:\n%s", b.data);
  free(b.data);

  for (int i = 0; i < PROXIES; i++)
    proxy_close(&px[i]);
  rc = server_proc_stop(g_sp, &ws);
  E2E_ASSERT(rc == 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
             "wasmxds did not stop cleanly: wait status 0x%x", ws);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("threads");
  SRunner *sr;
  int failed;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, pushes_connects_and_reads_at_once);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  curl_global_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
