/*
 * check_etcd_live.c: the etcd store against a real etcd.
 *
 * Each test starts its own etcd (tests/helpers/etcd_proc.h) on free
 * loopback ports with a temporary data directory and removes it at the
 * end. The watcher's callback stores the last catalog and problems in a
 * sink the test waits on (bounded). Covered: an initial load of 10,000
 * keys then an update and a delete; etcd killed and restarted mid-watch;
 * a compaction past the watcher's revision (the watcher cut off by a TCP
 * proxy meanwhile); an invalid document written with etcdctl; member
 * failover; user/password auth with a role and expiring tokens; mutual
 * TLS with certificates made by openssl; two writers racing on one key,
 * through the client and through wasmxdsctl.
 *
 * Skipped (exit 77) without /usr/bin/etcd.
 */
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "store/catalog.h"
#include "store/etcd_client.h"
#include "store/etcd_config.h"
#include "store/etcd_watch.h"
#include "store/problems.h"
#include "tests/helpers/etcd_proc.h"
#include "tests/testkit.h"

#define PREFIX "/wx"
#define EXT_KEY(name) PREFIX "/WasmExtension/acme/" name

/* ---- the callback's sink ---- */

struct sink {
  pthread_mutex_t mu;
  struct catalog *cat;
  unsigned long n;
  char problems[16384];
};

static struct sink sink;

static void sink_init(void) {
  memset(&sink, 0, sizeof(sink));
  pthread_mutex_init(&sink.mu, NULL);
}

static void sink_cleanup(void) {
  catalog_unref(sink.cat);
  sink.cat = NULL;
}

static void on_load(void *ctx, struct catalog *cat, const struct problems *pb,
                    int64_t revision) {
  struct sink *s = ctx;
  struct xds_buf text;

  (void)revision;

  xds_buf_init(&text, sizeof(s->problems) - 1);
  for (size_t i = 0; i < problems_count(pb); i++)
    problem_format(problems_at(pb, i), &text);
  pthread_mutex_lock(&s->mu);
  catalog_unref(s->cat);
  s->cat = cat;
  s->n++;
  snprintf(s->problems, sizeof(s->problems), "%s",
           text.data != NULL ? text.data : "");
  pthread_mutex_unlock(&s->mu);
  xds_buf_cleanup(&text);
}

typedef int (*pred_fn)(const void *arg);

/* Polls pred (called with the sink locked) every 20 ms for secs. */
static int wait_until(pred_fn pred, const void *arg, int secs) {
  for (int i = 0; i < secs * 50; i++) {
    int ok;

    pthread_mutex_lock(&sink.mu);
    ok = pred(arg);
    pthread_mutex_unlock(&sink.mu);
    if (ok)
      return 1;
    usleep(20 * 1000);
  }
  return 0;
}

static int n_exts_is(const void *arg) {
  return sink.cat != NULL &&
         catalog_ext_count(sink.cat) == *(const size_t *)arg;
}

struct prio {
  const char *fqn;
  int prio; /* INT32_MIN: absent */
};

static int prio_is(const void *arg) {
  const struct prio *p = arg;
  const struct wasm_ext *e =
      sink.cat != NULL ? catalog_ext_find(sink.cat, p->fqn) : NULL;

  if (p->prio == INT32_MIN)
    return sink.cat != NULL && e == NULL;
  return e != NULL && e->priority == p->prio;
}

static int problems_have(const void *arg) {
  return strstr(sink.problems, arg) != NULL;
}

static void expect_exts(size_t n, int secs) {
  ck_assert_msg(wait_until(n_exts_is, &n, secs),
                "expected %zu extensions, have %zu", n,
                sink.cat ? catalog_ext_count(sink.cat) : 0);
}

static void expect_prio(const char *name, int prio, int secs) {
  char fqn[128];
  struct prio p = {fqn, prio};

  snprintf(fqn, sizeof(fqn), "organizations/acme/extensions/%s", name);
  ck_assert_msg(wait_until(prio_is, &p, secs), "%s: expected priority %d", fqn,
                prio);
}

/* ---- status ---- */

static struct etcd_watch *watch_for_status;

static int status_degraded(const void *arg) {
  struct etcd_watch_status st;

  etcd_watch_get_status(watch_for_status, &st);
  return st.degraded == *(const int *)arg;
}

static void expect_degraded(struct etcd_watch *w, int degraded, int secs) {
  watch_for_status = w;
  ck_assert_msg(wait_until(status_degraded, &degraded, secs),
                "expected degraded=%d", degraded);
}

/* ---- set-up ---- */

static void config_for(struct etcd_config *c, const char *endpoints, int tls) {
  char url[512];
  struct xds_err err = {0, ""};

  etcd_config_init(c);
  snprintf(url, sizeof(url), "%s://%s" PREFIX, tls ? "etcds" : "etcd",
           endpoints);
  ck_assert_int_eq(etcd_config_parse_url(url, c, &err), 0);
  c->debounce_ms = 20;
  c->backoff_min_ms = 50;
  c->backoff_max_ms = 400;
  c->connect_timeout_ms = 1000;
  c->start_timeout_ms = 15000;
}

static struct etcd_watch *start_watch(struct etcd_config *c) {
  struct xds_err err = {0, ""};
  struct etcd_watch *w = NULL;

  ck_assert_msg(etcd_config_finish(c, &err) == 0, "%s", err.msg);
  ck_assert_msg(etcd_watch_start(c, NULL, on_load, &sink, &w, &err) == 0, "%s",
                err.msg);
  return w;
}

static struct etcd_proc etcd;

static void setup(void) {
  xds_log_set_level(XDS_LOG_WARN);
  sink_init();
}

static void teardown(void) {
  sink_cleanup();
  etcd_proc_stop(&etcd);
}

/* Writes n extensions e00000.. in transactions of 100 puts. */
static void seed(struct etcd_client *c, int n) {
  for (int base = 0; base < n; base += 100) {
    json_t *ops = json_array(), *req, *resp = NULL;
    struct xds_err err = {0, ""};

    for (int i = base; i < base + 100 && i < n; i++) {
      char name[16], key[96];
      char *k64, *v64;
      const char *doc;

      snprintf(name, sizeof(name), "e%05d", i);
      snprintf(key, sizeof(key), EXT_KEY("%s"), name);
      doc = tk_ext_doc(name, i % 100);
      k64 = etcd_b64_encode(key, strlen(key));
      v64 = etcd_b64_encode(doc, strlen(doc));
      json_array_append_new(ops, json_pack("{s:{s:s, s:s}}", "request_put",
                                           "key", k64, "value", v64));
      xds_free(k64);
      xds_free(v64);
    }
    req = json_pack("{s:o}", "success", ops);
    ck_assert_msg(etcd_client_call(c, "/v3/kv/txn", req, &resp, &err) == 0,
                  "%s", err.msg);
    json_decref(req);
    json_decref(resp);
  }
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes the NUL-terminated text to path (tk_write_file()). */
static void write_text(const char *path, const char *text) {
  tk_write_file(path, text, strlen(text));
}

/* ---- tests ---- */

START_TEST(initial_load_10k_then_update_and_delete) {
  struct etcd_config c;
  struct etcd_client *cl = NULL;
  struct etcd_watch *w;
  struct etcd_watch_status st;
  struct xds_err err = {0, ""};
  double t0;

  etcd_proc_start(&etcd, 0, NULL);
  config_for(&c, etcd.endpoint, 0);
  c.page_size = 1000;
  ck_assert_int_eq(etcd_config_finish(&c, &err), 0);
  ck_assert_int_eq(etcd_client_new(&c, &cl, &err), 0);
  t0 = now_s();
  seed(cl, 10000);
  fprintf(stderr, "seeded 10000 keys in %.2f s\n", now_s() - t0);
  t0 = now_s();
  w = start_watch(&c);
  etcd_watch_get_status(w, &st);
  ck_assert_int_eq(st.ready, 1);
  fprintf(stderr, "initial load of 10000 keys: %.2f s\n", now_s() - t0);
  expect_exts(10000, 1);
  ck_assert_uint_eq(st.keys, 10000);
  ck_assert_int_eq(st.degraded, 0);
  ck_assert_uint_eq(st.relists, 1);

  ck_assert_int_eq(
      etcd_proc_put(&etcd, EXT_KEY("e00005"), tk_ext_doc("e00005", 777)), 0);
  expect_prio("e00005", 777, 10);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "del " EXT_KEY("e00007")), 0);
  expect_prio("e00007", INT32_MIN, 10);
  expect_exts(9999, 1);
  etcd_watch_get_status(w, &st);
  ck_assert_uint_eq(st.decodes, 10001); /* the update only */
  etcd_watch_stop(w);
  etcd_client_free(cl);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(etcd_killed_and_restarted) {
  struct etcd_config c;
  struct etcd_watch *w;
  struct etcd_watch_status st;
  unsigned long delivered;

  etcd_proc_start(&etcd, 0, NULL);
  for (int i = 0; i < 3; i++) {
    char name[8], key[64];

    snprintf(name, sizeof(name), "k%d", i);
    snprintf(key, sizeof(key), EXT_KEY("%s"), name);
    ck_assert_int_eq(etcd_proc_put(&etcd, key, tk_ext_doc(name, 1)), 0);
  }
  config_for(&c, etcd.endpoint, 0);
  w = start_watch(&c);
  expect_exts(3, 5);
  pthread_mutex_lock(&sink.mu);
  delivered = sink.n;
  pthread_mutex_unlock(&sink.mu);

  etcd_proc_kill(&etcd);
  expect_degraded(w, 1, 10);
  etcd_watch_get_status(w, &st);
  ck_assert_int_eq(st.ready, 1);
  ck_assert_ptr_nonnull(strstr(st.reason, etcd.endpoint));
  usleep(500 * 1000); /* a few failed reconnects */
  pthread_mutex_lock(&sink.mu);
  ck_assert_uint_eq(sink.n, delivered); /* nothing delivered, nothing lost */
  ck_assert_uint_eq(catalog_ext_count(sink.cat), 3);
  pthread_mutex_unlock(&sink.mu);

  etcd_proc_restart(&etcd);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("k1"), tk_ext_doc("k1", 42)),
                   0);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("k3"), tk_ext_doc("k3", 1)), 0);
  expect_prio("k1", 42, 15);
  expect_exts(4, 5);
  expect_degraded(w, 0, 5);
  etcd_watch_get_status(w, &st);
  ck_assert_uint_eq(st.relists, 1); /* resumed, not re-listed */
  ck_assert_uint_ge(st.reconnects, 1);
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(compaction_relists_and_converges) {
  struct etcd_config c;
  struct etcd_proxy *px;
  struct etcd_watch *w;
  struct etcd_watch_status st;
  char ep[64];
  unsigned long delivered;
  long long rev;
  int port;

  etcd_proc_start(&etcd, 0, NULL);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"), tk_ext_doc("a", 1)), 0);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("b"), tk_ext_doc("b", 1)), 0);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("c"), tk_ext_doc("c", 1)), 0);
  px = etcd_proxy_start(etcd.client_port, &port);
  snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
  config_for(&c, ep, 0);
  w = start_watch(&c);
  expect_exts(3, 5);

  etcd_proxy_block(px, 1);
  expect_degraded(w, 1, 10);
  pthread_mutex_lock(&sink.mu);
  delivered = sink.n;
  pthread_mutex_unlock(&sink.mu);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"), tk_ext_doc("a", 5)), 0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "del " EXT_KEY("b")), 0);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("d"), tk_ext_doc("d", 1)), 0);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("e"), tk_ext_doc("e", 1)), 0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "del " EXT_KEY("e")), 0);
  rev = etcd_proc_revision(&etcd);
  ck_assert_int_gt(rev, 0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "compact %lld", rev), 0);
  etcd_proxy_block(px, 0);

  expect_prio("a", 5, 15);
  expect_prio("b", INT32_MIN, 5);
  expect_prio("d", 1, 5);
  expect_prio("e", INT32_MIN, 5);
  expect_exts(3, 5);
  expect_degraded(w, 0, 5);
  etcd_watch_get_status(w, &st);
  ck_assert_uint_eq(st.relists, 2);
  ck_assert_int_eq(st.revision, rev);
  pthread_mutex_lock(&sink.mu);
  ck_assert_uint_eq(sink.n, delivered + 1); /* one catalog for the re-list */
  pthread_mutex_unlock(&sink.mu);

  /* And the watch goes on from there. */
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("c"), tk_ext_doc("c", 9)), 0);
  expect_prio("c", 9, 10);
  etcd_watch_stop(w);
  etcd_proxy_stop(px);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(invalid_put_keeps_last_good) {
  struct etcd_config c;
  struct etcd_watch *w;

  etcd_proc_start(&etcd, 0, NULL);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"), tk_ext_doc("a", 3)), 0);
  config_for(&c, etcd.endpoint, 0);
  w = start_watch(&c);
  expect_prio("a", 3, 5);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"),
                                 "apiVersion: extension.tsb.tetrate.io/v2\n"
                                 "kind: WasmExtension\n"
                                 "metadata: {organization: acme, name: a}\n"
                                 "spec:\n"
                                 "  url: file:///wasm/a.wasm\n"
                                 "  priority: 4\n"
                                 "  phase: NOT_A_PHASE\n"),
                   0);
  ck_assert_msg(
      wait_until(problems_have, "error: " EXT_KEY("a") ":7:10: spec.phase", 10),
      "problems: %s", sink.problems);
  ck_assert_ptr_nonnull(strstr(sink.problems, "last good"));
  expect_prio("a", 3, 1);
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(failover_to_a_live_member) {
  struct etcd_config c;
  struct etcd_watch *w;
  struct etcd_watch_status st;
  char eps[128];

  etcd_proc_start(&etcd, 0, NULL);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"), tk_ext_doc("a", 1)), 0);
  snprintf(eps, sizeof(eps), "127.0.0.1:%d,%s", etcd_free_port(),
           etcd.endpoint);
  config_for(&c, eps, 0);
  w = start_watch(&c);
  etcd_watch_get_status(w, &st);
  ck_assert_int_eq(st.ready, 1);
  expect_exts(1, 1);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("b"), tk_ext_doc("b", 1)), 0);
  expect_exts(2, 10);
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(auth_with_user_role_and_expiring_tokens) {
  struct etcd_config c;
  struct etcd_client *cl = NULL;
  struct etcd_watch *w;
  struct etcd_watch_status st;
  struct xds_err err = {0, ""};
  struct etcd_kv kv;
  char pw[320];
  int64_t rev;
  int found;

  etcd_proc_start(&etcd, 0, "--auth-token-ttl=2");
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "user add root:rootpw"), 0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "role add wasmxds-reader"), 0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "role grant-permission "
                                        "wasmxds-reader --prefix=true "
                                        "readwrite " PREFIX "/"),
                   0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "user add wx:wx-S3cret"), 0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "user grant-role wx wasmxds-reader"),
                   0);
  ck_assert_int_eq(etcd_proc_ctl(&etcd, "auth enable"), 0);
  snprintf(etcd.ctl_auth, sizeof(etcd.ctl_auth), "--user=root:rootpw");
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"), tk_ext_doc("a", 1)), 0);

  /* A wrong password: not ready, degraded, and the reason says why
   * without the password. */
  snprintf(pw, sizeof(pw), "%s/bad-password", etcd.dir);
  write_text(pw, "not-the-password\n");
  config_for(&c, etcd.endpoint, 0);
  c.start_timeout_ms = 1500;
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-user", "wx", &err), 0);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-password-file", pw, &err), 0);
  w = start_watch(&c);
  etcd_watch_get_status(w, &st);
  ck_assert_int_eq(st.ready, 0);
  ck_assert_int_eq(st.degraded, 1);
  ck_assert_msg(strstr(st.reason, "authentication failed") != NULL, "%s",
                st.reason);
  ck_assert_ptr_null(strstr(st.reason, "not-the-password"));
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);

  /* The right one. */
  snprintf(pw, sizeof(pw), "%s/password", etcd.dir);
  write_text(pw, "wx-S3cret\n");
  config_for(&c, etcd.endpoint, 0);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-user", "wx", &err), 0);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-password-file", pw, &err), 0);
  w = start_watch(&c);
  expect_exts(1, 5);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("b"), tk_ext_doc("b", 1)), 0);
  expect_exts(2, 10);

  /* Tokens expire after 2 s: a client keeps working (it authenticates
   * again on "invalid auth token"), and so does the watch. */
  ck_assert_int_eq(etcd_client_new(&c, &cl, &err), 0);
  ck_assert_int_eq(etcd_client_get(cl, EXT_KEY("a"), &kv, &found, &rev, &err),
                   0);
  ck_assert_int_eq(found, 1);
  etcd_kv_cleanup(&kv);
  sleep(4);
  ck_assert_msg(etcd_client_get(cl, EXT_KEY("a"), &kv, &found, &rev, &err) == 0,
                "%s", err.msg);
  ck_assert_int_eq(found, 1);
  etcd_kv_cleanup(&kv);
  /* Outside the role's prefix: permission denied, not a crash. */
  ck_assert_int_eq(etcd_client_get(cl, "/elsewhere", &kv, &found, &rev, &err),
                   XDS_EPERM);
  etcd_kv_cleanup(&kv);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("c"), tk_ext_doc("c", 1)), 0);
  expect_exts(3, 10);
  /* A restart loses the simple tokens: the watch re-authenticates. */
  etcd_proc_restart(&etcd);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("d"), tk_ext_doc("d", 1)), 0);
  expect_exts(4, 15);
  etcd_client_free(cl);
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(mutual_tls) {
  struct etcd_config c;
  struct etcd_watch *w;
  struct etcd_watch_status st;
  struct xds_err err = {0, ""};

  etcd_proc_start(&etcd, 1, NULL);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("a"), tk_ext_doc("a", 1)), 0);

  /* Without a client certificate the member refuses us. */
  config_for(&c, etcd.endpoint, 1);
  c.start_timeout_ms = 1500;
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-ca", etcd.ca, &err), 0);
  w = start_watch(&c);
  etcd_watch_get_status(w, &st);
  ck_assert_int_eq(st.ready, 0);
  ck_assert_int_eq(st.degraded, 1);
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);

  config_for(&c, etcd.endpoint, 0); /* --etcd-ca alone turns TLS on */
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-ca", etcd.ca, &err), 0);
  ck_assert_int_eq(
      etcd_config_set_flag(&c, "etcd-cert", etcd.client_cert, &err), 0);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-key", etcd.client_key, &err),
                   0);
  w = start_watch(&c);
  expect_exts(1, 5);
  ck_assert_int_eq(etcd_proc_put(&etcd, EXT_KEY("b"), tk_ext_doc("b", 1)), 0);
  expect_exts(2, 10);
  etcd_watch_stop(w);
  etcd_config_cleanup(&c);
}
END_TEST

struct racer {
  struct etcd_config *cfg;
  const char *value;
  pthread_barrier_t *go;
  int rc;
  char msg[XDS_ERR_MSG_MAX];
};

static void *race(void *arg) {
  struct racer *r = arg;
  struct etcd_client *cl = NULL;
  struct xds_err err = {0, ""};

  if (etcd_client_new(r->cfg, &cl, &err) < 0) {
    r->rc = -100;
    return NULL;
  }
  pthread_barrier_wait(r->go);
  r->rc = etcd_client_put_if(cl, EXT_KEY("raced"), r->value, strlen(r->value),
                             0, NULL, &err);
  snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
  etcd_client_free(cl);
  return NULL;
}

static int file_has(const char *path, const char *text) {
  char buf[8192];
  FILE *f = fopen(path, "r");
  size_t n;

  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

START_TEST(two_writers_one_wins) {
  struct etcd_config c;
  struct xds_err err = {0, ""};
  pthread_barrier_t go;
  pthread_t t[2];
  struct racer r[2];
  const char *bdir = getenv("WASMXDS_BUILDDIR");
  char ctl[1024], d[300];

  etcd_proc_start(&etcd, 0, NULL);
  config_for(&c, etcd.endpoint, 0);
  ck_assert_int_eq(etcd_config_finish(&c, &err), 0);
  pthread_barrier_init(&go, NULL, 2);
  for (int i = 0; i < 2; i++) {
    r[i] = (struct racer){
        &c, i == 0 ? tk_ext_doc("raced", 1) : "a different value\n", &go, 0,
        ""};
    ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&go);
  ck_assert_msg((r[0].rc == 0) != (r[1].rc == 0), "rc %d %d", r[0].rc, r[1].rc);
  for (int i = 0; i < 2; i++)
    if (r[i].rc != 0) {
      ck_assert_int_eq(r[i].rc, XDS_ECONFLICT);
      ck_assert_ptr_nonnull(strstr(r[i].msg, EXT_KEY("raced")));
    }

  /* Through wasmxdsctl: two operators edit what they both got. */
  ck_assert_ptr_nonnull(bdir);
  snprintf(ctl, sizeof(ctl), "%s/wasmxdsctl --store etcd://%s" PREFIX, bdir,
           etcd.endpoint);
  snprintf(d, sizeof(d), "%s", etcd.dir);
  {
    char f[400];

    snprintf(f, sizeof(f), "%s/ext.yaml", d);
    write_text(f, tk_ext_doc("shared", 1));
  }
  ck_assert_int_eq(tk_sh("%s apply -f %s/ext.yaml >%s/out0 2>&1", ctl, d, d),
                   0);
  ck_assert_int_eq(
      tk_sh("%s get WasmExtension/acme/shared >%s/got.yaml", ctl, d), 0);
  ck_assert_int_eq(tk_sh("sed 's/priority: 1/priority: 2/' %s/got.yaml "
                         ">%s/alice.yaml && "
                         "sed 's/priority: 1/priority: 3/' %s/got.yaml "
                         ">%s/bob.yaml",
                         d, d, d, d),
                   0);
  ck_assert_int_eq(tk_sh("%s apply -f %s/alice.yaml >%s/out1 2>&1", ctl, d, d),
                   0);
  ck_assert_int_eq(tk_sh("%s apply -f %s/bob.yaml >%s/out2 2>&1", ctl, d, d),
                   3);
  {
    char f[400];

    snprintf(f, sizeof(f), "%s/out2", d);
    ck_assert(file_has(f, "conflict on " EXT_KEY("shared")));
    snprintf(f, sizeof(f), "%s/out1", d);
    ck_assert(file_has(f, "configured"));
  }
  ck_assert_int_eq(tk_sh("%s get --raw WasmExtension/acme/shared "
                         ">%s/final.yaml",
                         ctl, d),
                   0);
  {
    char f[400];

    snprintf(f, sizeof(f), "%s/final.yaml", d);
    ck_assert(file_has(f, "priority: 2"));
  }
  /* An invalid document among valid ones: nothing is written. */
  {
    char f[400];

    snprintf(f, sizeof(f), "%s/bad.yaml", d);
    write_text(f, "apiVersion: extension.tsb.tetrate.io/v2\n"
                  "kind: WasmExtension\n"
                  "metadata: {organization: acme, name: fresh}\n"
                  "spec: {url: file:///x.wasm}\n"
                  "---\n"
                  "apiVersion: extension.tsb.tetrate.io/v2\n"
                  "kind: WasmExtension\n"
                  "metadata: {organization: acme, name: broken}\n"
                  "spec: {url: 'ftp://x'}\n");
  }
  ck_assert_int_eq(tk_sh("%s apply -f %s/bad.yaml >%s/out3 2>&1", ctl, d, d),
                   1);
  ck_assert_int_eq(
      tk_sh("%s get WasmExtension/acme/fresh >/dev/null 2>&1", ctl), 4);
  ck_assert_int_eq(tk_sh("%s delete WasmExtension/acme/shared --revision 1 "
                         ">/dev/null 2>&1",
                         ctl),
                   3);
  ck_assert_int_eq(tk_sh("%s delete WasmExtension/acme/shared >/dev/null", ctl),
                   0);
  ck_assert_int_eq(tk_sh("%s --store etcd://127.0.0.1:%d/x list >/dev/null "
                         "2>&1",
                         ctl, etcd_free_port()),
                   5);
  etcd_config_cleanup(&c);
}
END_TEST

/* apply checks its documents against the rest of the store: a template
 * that would share a port with another key's is refused whichever key
 * sorts first; errors the store already had do not block others. */
START_TEST(apply_refuses_what_clashes_with_the_store) {
  const char *bdir = getenv("WASMXDS_BUILDDIR");
  struct etcd_config c;
  struct etcd_client *cl;
  struct xds_err err = {0, ""};
  char ctl[1024], d[300], f[400];
  int64_t rev;

  etcd_proc_start(&etcd, 0, NULL);
  ck_assert_ptr_nonnull(bdir);
  snprintf(ctl, sizeof(ctl), "%s/wasmxdsctl --store etcd://%s" PREFIX, bdir,
           etcd.endpoint);
  snprintf(d, sizeof(d), "%s", etcd.dir);
  snprintf(f, sizeof(f), "%s/mid.yaml", d);
  write_text(f, tk_tmpl_doc("mid", 8080));
  ck_assert_int_eq(tk_sh("%s apply -f %s/mid.yaml >/dev/null 2>&1", ctl, d), 0);
  /* The new key sorts after the old one, then before it. */
  snprintf(f, sizeof(f), "%s/zz.yaml", d);
  write_text(f, tk_tmpl_doc("zz", 8080));
  ck_assert_int_eq(tk_sh("%s apply -f %s/zz.yaml >%s/out-zz 2>&1", ctl, d, d),
                   1);
  snprintf(f, sizeof(f), "%s/out-zz", d);
  ck_assert(file_has(f,
                     PREFIX "/ListenerTemplate/zz:1:1: spec.port: a "
                            "listener port reused on one proxy: port 8080 of "
                            "template \"zz\" is already used by template "
                            "\"mid\""));
  ck_assert(file_has(f, "1 conflicts with what the store holds"));
  snprintf(f, sizeof(f), "%s/aa.yaml", d);
  write_text(f, tk_tmpl_doc("aa", 8080));
  ck_assert_int_eq(tk_sh("%s apply -f %s/aa.yaml >%s/out-aa 2>&1", ctl, d, d),
                   1);
  snprintf(f, sizeof(f), "%s/out-aa", d);
  ck_assert(file_has(f,
                     PREFIX "/ListenerTemplate/mid:1:1: spec.port: a "
                            "listener port reused on one proxy: port 8080 of "
                            "template \"mid\" is already used by template "
                            "\"aa\""));
  ck_assert_int_eq(tk_sh("%s get ListenerTemplate/zz >/dev/null 2>&1", ctl), 4);
  ck_assert_int_eq(tk_sh("%s get ListenerTemplate/aa >/dev/null 2>&1", ctl), 4);
  /* Moving mid itself to the port it already has is no clash. */
  snprintf(f, sizeof(f), "%s/mid2.yaml", d);
  write_text(f, tk_tmpl_doc("mid", 8080));
  ck_assert_int_eq(tk_sh("%s apply -f %s/mid2.yaml >/dev/null 2>&1", ctl, d),
                   0);

  /* A clash already in the store (written around wasmxdsctl) is reported
   * by the servers; it does not stop an unrelated document. */
  config_for(&c, etcd.endpoint, 0);
  ck_assert_int_eq(etcd_config_finish(&c, &err), 0);
  ck_assert_int_eq(etcd_client_new(&c, &cl, &err), 0);
  ck_assert_int_eq(etcd_client_put_if(cl, PREFIX "/ListenerTemplate/old",
                                      tk_tmpl_doc("old", 8080),
                                      strlen(tk_tmpl_doc("old", 8080)), 0, &rev,
                                      &err),
                   0);
  etcd_client_free(cl);
  snprintf(f, sizeof(f), "%s/other.yaml", d);
  write_text(f, tk_tmpl_doc("other", 9090));
  ck_assert_int_eq(tk_sh("%s apply -f %s/other.yaml >%s/out-o 2>&1", ctl, d, d),
                   0);
  snprintf(f, sizeof(f), "%s/out-o", d);
  ck_assert(file_has(f, "ListenerTemplate other created"));

  /* The servers' own commands read the store once: validate reports the
   * clash written around wasmxdsctl (exit 1); render, through wasmxdsctl's
   * --store, shows what a proxy gets from etcd. */
  ck_assert_int_eq(tk_sh("%s/wasmxds validate etcd://%s" PREFIX " >%s/val 2>&1",
                         bdir, etcd.endpoint, d),
                   1);
  snprintf(f, sizeof(f), "%s/val", d);
  ck_assert(file_has(f,
                     PREFIX "/ListenerTemplate/old:1:1: spec.port: a "
                            "listener port reused on one proxy: port 8080 of "
                            "template \"old\""));
  ck_assert(file_has(f, " keys): 0 extensions, 2 listener templates, 1 "
                        "errors, 0 warnings"));
  ck_assert_int_eq(tk_sh("WASMXDS=%s/wasmxds %s render --node-id n1 "
                         "--metadata wasmxds.organization=acme >%s/render "
                         "2>%s/render.err",
                         bdir, ctl, d, d),
                   0);
  snprintf(f, sizeof(f), "%s/render.err", d); /* the store's problems */
  ck_assert(file_has(f, "1 errors"));
  snprintf(f, sizeof(f), "%s/render", d); /* what is served regardless */
  ck_assert(file_has(f, "\"name\": \"mid\""));
  ck_assert(file_has(f, "\"name\": \"other\""));
  etcd_config_cleanup(&c);
}
END_TEST

static Suite *etcd_live_suite(void) {
  Suite *s = suite_create("etcd_live");
  TCase *tc = tcase_create("live");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, initial_load_10k_then_update_and_delete);
  tcase_add_test(tc, etcd_killed_and_restarted);
  tcase_add_test(tc, compaction_relists_and_converges);
  tcase_add_test(tc, invalid_put_keeps_last_good);
  tcase_add_test(tc, failover_to_a_live_member);
  tcase_add_test(tc, auth_with_user_role_and_expiring_tokens);
  tcase_add_test(tc, mutual_tls);
  tcase_add_test(tc, two_writers_one_wins);
  tcase_add_test(tc, apply_refuses_what_clashes_with_the_store);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (!etcd_proc_available()) {
    fprintf(stderr, "check_etcd: /usr/bin/etcd or etcdctl missing; "
                    "skipped (install etcd-server and etcd-client)\n");
    return 77;
  }
  return tk_run_suite(etcd_live_suite());
}
