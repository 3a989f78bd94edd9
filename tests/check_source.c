/*
 * check_source.c: store sources (store/source.h) and the path every
 * catalog takes (store/changes.h), offline: the in-memory source for the
 * shared path (one log format for changes and problems, nothing delivered
 * when nothing changed, a reload asked is said), the file source through
 * the same path (the last good version of a broken document is kept and
 * the problem delivered), and the removal guard for both kinds (a change
 * that takes every listener template away or more than the share is held
 * until confirmed or replaced).
 *
 * The log goes to stderr; each test (its own process in Check's fork
 * mode) sends stderr to a temporary file and reads it back.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/etcd_store.h"
#include "store/file_store.h"
#include "store/source.h"
#include "tests/testutil.h"

/* ---- what the sink saw ---- */

struct seen {
  pthread_mutex_t mu;
  unsigned long catalogs;
  struct catalog *last;
  size_t last_errors;
  char status[1100]; /* "" : fine */
  unsigned long status_calls;
  int held;
  unsigned long holds;
};

static struct seen S;

static void on_catalog(void *ctx, struct catalog *cat,
                       const struct problems *pb) {
  struct seen *s = ctx;

  pthread_mutex_lock(&s->mu);
  catalog_unref(s->last);
  s->last = cat;
  s->last_errors = pb != NULL ? pb->n_errors : 0;
  s->catalogs++;
  pthread_mutex_unlock(&s->mu);
}

static void on_status(void *ctx, const char *degraded) {
  struct seen *s = ctx;

  pthread_mutex_lock(&s->mu);
  snprintf(s->status, sizeof(s->status), "%s",
           degraded != NULL ? degraded : "");
  s->status_calls++;
  pthread_mutex_unlock(&s->mu);
}

static void on_hold(void *ctx, int held) {
  struct seen *s = ctx;

  pthread_mutex_lock(&s->mu);
  s->held = held;
  s->holds += held;
  pthread_mutex_unlock(&s->mu);
}

static const struct source_sink sink = {on_catalog, on_status, on_hold, &S,
                                        NULL};

/* ---- the log ---- */

static char log_path[] = "/tmp/check_source_logXXXXXX";
static int saved_stderr = -1;

static void capture_log(void) {
  int fd = mkstemp(log_path);

  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  saved_stderr = dup(2);
  ck_assert_int_eq(dup2(fd, 2), 2);
  close(fd);
}

/* The log so far (caller frees). */
static char *read_log(void) {
  FILE *f = fopen(log_path, "r");
  char *text = xds_calloc(1, 1 << 20);
  size_t n;

  ck_assert(f != NULL && text != NULL);
  n = fread(text, 1, (1 << 20) - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* Asserts the log holds needle (count times when count >= 0). */
static void log_has(const char *needle, int count) {
  char *text = read_log();
  int n = 0;

  for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
    n++;
  if (count < 0)
    ck_assert_msg(n > 0, "the log lacks \"%s\":\n%s", needle, text);
  else
    ck_assert_msg(n == count, "\"%s\" %d times in the log, not %d:\n%s", needle,
                  n, count, text);
  xds_free(text);
}

static void setup(void) {
  memset(&S, 0, sizeof(S));
  pthread_mutex_init(&S.mu, NULL);
  capture_log();
}

static void teardown(void) {
  catalog_unref(S.last);
  S.last = NULL;
  fflush(stderr);
  if (saved_stderr >= 0) {
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
  }
  unlink(log_path);
  snprintf(log_path, sizeof(log_path), "/tmp/check_source_logXXXXXX");
}

/* ---- documents ---- */

static void ext_doc(struct xds_buf *b, const char *name, int prio) {
  xds_buf_printf(b,
                 "---\napiVersion: extension.tsb.tetrate.io/v2\n"
                 "kind: WasmExtension\n"
                 "metadata: {organization: acme, name: %s}\n"
                 "spec: {url: 'file:///m.wasm', priority: %d}\n",
                 name, prio);
}

static void tmpl_doc(struct xds_buf *b, const char *name, int port) {
  xds_buf_printf(b,
                 "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
                 "metadata: {name: %s}\nspec:\n  port: %d\n"
                 "  direction: INBOUND\n  route: {cluster: c}\n"
                 "  httpFilters:\n  - name: envoy.filters.http.router\n"
                 "    typedConfig: {'@type': "
                 "envoy.extensions.filters.http.router.v3.Router}\n",
                 name, port);
}

/* A catalog of n_ext extensions e0..e<n-1> (priority prio) and n_tmpl
 * templates. */
static struct catalog *cat_of(int n_ext, int prio, int n_tmpl) {
  struct xds_buf b;
  struct catalog *c;
  char name[16];

  xds_buf_init(&b, 1 << 20);
  for (int i = 0; i < n_ext; i++) {
    snprintf(name, sizeof(name), "e%d", i);
    ext_doc(&b, name, prio);
  }
  for (int i = 0; i < n_tmpl; i++) {
    snprintf(name, sizeof(name), "t%d", i);
    tmpl_doc(&b, name, 15000 + i);
  }
  xds_buf_puts(&b, "");
  c = tu_catalog(b.data != NULL ? b.data : "");
  xds_buf_cleanup(&b);
  return c;
}

static struct store_source *memory_source(int pct) {
  struct source_config cfg;
  struct store_source *s = NULL;

  memset(&cfg, 0, sizeof(cfg));
  cfg.store = "mem";
  cfg.max_removal_pct = pct;
  ck_assert_int_eq(source_new_memory(&cfg, &sink, &s), 0);
  ck_assert_int_eq(source_start(s, NULL), 0);
  return s;
}

static unsigned long seen_catalogs(void) {
  unsigned long n;

  pthread_mutex_lock(&S.mu);
  n = S.catalogs;
  pthread_mutex_unlock(&S.mu);
  return n;
}

/* ---- the shared path ---- */

START_TEST(changes_are_logged_in_one_format) {
  struct store_source *s = memory_source(0);
  struct catalog *c2 = cat_of(3, 7, 1);

  ck_assert_int_eq(source_memory_load(s, cat_of(2, 1, 1), NULL, "t1"), 1);
  log_has("store mem loaded (t1): 2 extensions, 1 listener templates; 0 "
          "errors, 0 warnings",
          1);
  /* Two updated, one added; each named with its location. */
  ck_assert_int_eq(source_memory_load(s, catalog_ref(c2), NULL, "t2"), 1);
  log_has("store: updated WasmExtension organizations/acme/extensions/e0 (", 1);
  log_has("store: updated WasmExtension organizations/acme/extensions/e1 (", 1);
  log_has("store: added WasmExtension organizations/acme/extensions/e2 (/tmp/",
          1);
  log_has("store mem reloaded (t2): 1 added, 2 updated, 0 removed; 0 errors "
          "(rejected), 0 warnings; the store holds 3 extensions, 1 listener "
          "templates",
          1);
  ck_assert_uint_eq(seen_catalogs(), 2);
  /* The same again: nothing delivered, nothing said at info. */
  ck_assert_int_eq(source_memory_load(s, catalog_ref(c2), NULL, "t3"), 0);
  ck_assert_uint_eq(seen_catalogs(), 2);
  log_has("(t3)", 0);
  /* A reload asked (SIGHUP) is said even when nothing changed. */
  ck_assert_int_eq(source_trigger(s), 0);
  log_has("store mem reloaded (trigger): nothing changed; the store holds 3 "
          "extensions",
          1);
  /* A removal, with the location the resource had. */
  ck_assert_int_eq(source_memory_load(s, cat_of(2, 7, 1), NULL, "t4"), 1);
  log_has(
      "store: removed WasmExtension organizations/acme/extensions/e2 (/tmp/",
      1);
  catalog_unref(c2);
  source_free(s);
}
END_TEST

START_TEST(problems_are_reported_once) {
  struct store_source *s = memory_source(0);
  struct catalog *c = cat_of(1, 1, 1);
  struct problems pb;

  problems_init(&pb, 10);
  problems_add(&pb, PROBLEM_ERROR, "x.yaml", 3, 5, "spec.url", "bad url");
  ck_assert_int_eq(source_memory_load(s, catalog_ref(c), &pb, "t1"), 1);
  log_has("store: error: x.yaml:3:5: spec.url: bad url", 1);
  pthread_mutex_lock(&S.mu);
  ck_assert_uint_eq(S.last_errors, 1);
  pthread_mutex_unlock(&S.mu);
  /* The same catalog and problems: not again. */
  ck_assert_int_eq(source_memory_load(s, catalog_ref(c), &pb, "t2"), 0);
  log_has("store: error: x.yaml:3:5", 1);
  /* The same catalog, the problem fixed: delivered (problems changed). */
  ck_assert_int_eq(source_memory_load(s, catalog_ref(c), NULL, "t3"), 1);
  ck_assert_uint_eq(seen_catalogs(), 2);
  log_has("store mem reloaded (t3): 0 added, 0 updated, 0 removed; 0 errors",
          1);
  problems_cleanup(&pb);
  catalog_unref(c);
  source_free(s);
}
END_TEST

/* A file source takes the same path: a broken document keeps its last
 * good version, and the problem is delivered and logged in that format. */
static char tmpdir[64];

static void put_file(const char *name, const char *text) {
  char path[160], tmp[170];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", tmpdir, name);
  f = fopen(tmp, "w");
  ck_assert(f != NULL);
  fputs(text, f);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(rename(tmp, path), 0);
}

static void wait_catalogs(unsigned long n) {
  for (int i = 0; i < 500 && seen_catalogs() < n; i++)
    usleep(10 * 1000);
  ck_assert_uint_ge(seen_catalogs(), n);
}

static struct store_source *file_source(void) {
  struct source_config cfg;
  struct store_source *s = NULL;
  struct xds_err err = {0, ""};

  memset(&cfg, 0, sizeof(cfg));
  cfg.store = tmpdir;
  cfg.debounce_ms = 20;
  ck_assert_int_eq(source_open(&cfg, &sink, &s, &err), 0);
  ck_assert_str_eq(source_kind(s), "file");
  ck_assert_msg(source_start(s, &err) == 0, "%s", err.msg);
  return s;
}

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_source.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  char cmd[128];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(file_source_keeps_last_good_and_reports) {
  struct store_source *s;
  struct xds_buf b;

  make_tmpdir();
  xds_buf_init(&b, 4096);
  ext_doc(&b, "a", 1);
  tmpl_doc(&b, "t", 15006);
  put_file("a.yaml", b.data);
  s = file_source();
  ck_assert_uint_eq(seen_catalogs(), 1);
  log_has("loaded (start): 1 extensions, 1 listener templates", 1);
  xds_buf_reset(&b);
  xds_buf_puts(&b, "---\napiVersion: extension.tsb.tetrate.io/v2\n"
                   "kind: WasmExtension\n"
                   "metadata: {organization: acme, name: a}\n"
                   "spec: {url: 'ftp://nope'}\n");
  tmpl_doc(&b, "t", 15006);
  put_file("a.yaml", b.data);
  wait_catalogs(2);
  pthread_mutex_lock(&S.mu);
  ck_assert_ptr_nonnull(
      catalog_ext_find(S.last, "organizations/acme/extensions/a"));
  ck_assert_int_eq(
      catalog_ext_find(S.last, "organizations/acme/extensions/a")->priority, 1);
  ck_assert_uint_ge(S.last_errors, 1);
  pthread_mutex_unlock(&S.mu);
  log_has("store: error: ", -1);
  log_has("a.yaml:5:13: spec.url", -1);
  source_free(s);
  xds_buf_cleanup(&b);
  remove_tmpdir();
}
END_TEST

/* ---- the removal guard (issue 13 item 8) ---- */

static void expect_held(int held, const char *reason) {
  pthread_mutex_lock(&S.mu);
  ck_assert_int_eq(S.held, held);
  if (reason != NULL)
    ck_assert_msg(strstr(S.status, reason) != NULL, "status: \"%s\"", S.status);
  else
    ck_assert_str_eq(S.status, "");
  pthread_mutex_unlock(&S.mu);
}

START_TEST(every_template_removed_is_held_until_confirmed) {
  struct store_source *s = memory_source(0);
  char reason[SOURCE_REASON_MAX];

  ck_assert_int_eq(source_memory_load(s, cat_of(1, 1, 2), NULL, "t1"), 1);
  ck_assert_int_eq(source_confirm_removal(s), XDS_ENOTFOUND);
  /* Everything deleted (etcdctl del --prefix, rm -r): held. */
  ck_assert_int_eq(source_memory_load(s, cat_of(0, 1, 0), NULL, "t2"), 0);
  ck_assert_uint_eq(seen_catalogs(), 1);
  expect_held(1, "removes every listener template (3 of 3 resources");
  ck_assert_int_eq(source_held(s, reason), 1);
  log_has("still serving the previous catalog (1 extensions, 2 listener "
          "templates). If the removal is meant, confirm it: POST "
          "/store/confirm-removal",
          1);
  pthread_mutex_lock(&S.mu);
  ck_assert_uint_eq(catalog_tmpl_count(S.last), 2);
  pthread_mutex_unlock(&S.mu);
  /* The operator confirms: served, the hold ends. */
  ck_assert_int_eq(source_confirm_removal(s), 0);
  ck_assert_uint_eq(seen_catalogs(), 2);
  expect_held(0, NULL);
  ck_assert_int_eq(source_held(s, NULL), 0);
  pthread_mutex_lock(&S.mu);
  ck_assert_uint_eq(catalog_tmpl_count(S.last), 0);
  ck_assert_uint_eq(S.holds, 1);
  pthread_mutex_unlock(&S.mu);
  log_has("mass removal confirmed by the operator", 1);
  source_free(s);
}
END_TEST

START_TEST(share_rule_and_replacement) {
  struct store_source *s = memory_source(50);

  /* 20 extensions and 1 template: removing 10 (under half of 21) is
   * served; then removing 6 of the 11 left (more than half) is held. */
  ck_assert_int_eq(source_memory_load(s, cat_of(20, 1, 1), NULL, "t1"), 1);
  ck_assert_int_eq(source_memory_load(s, cat_of(10, 1, 1), NULL, "t2"), 1);
  ck_assert_uint_eq(seen_catalogs(), 2);
  expect_held(0, NULL);
  ck_assert_int_eq(source_memory_load(s, cat_of(4, 1, 1), NULL, "t3"), 0);
  expect_held(1, "removes 6 of 11 resources (more than 50%)");
  /* A later change that is no mass removal replaces the held one. */
  ck_assert_int_eq(source_memory_load(s, cat_of(9, 2, 1), NULL, "t4"), 1);
  expect_held(0, NULL);
  pthread_mutex_lock(&S.mu);
  ck_assert_uint_eq(catalog_ext_count(S.last), 9);
  pthread_mutex_unlock(&S.mu);
  log_has("the held change is replaced by one that removes less", 1);
  /* Small stores: the share rule does not apply under 10 resources. */
  ck_assert_int_eq(source_memory_load(s, cat_of(2, 2, 1), NULL, "t5"), 0);
  ck_assert_int_eq(source_memory_load(s, cat_of(8, 2, 1), NULL, "t6"), 1);
  source_free(s);
}
END_TEST

/* The file store follows the same rule: every file deleted is held. */
START_TEST(file_store_emptied_is_held) {
  struct store_source *s;
  struct xds_buf b;
  char path[160];

  make_tmpdir();
  xds_buf_init(&b, 4096);
  ext_doc(&b, "a", 1);
  tmpl_doc(&b, "t", 15006);
  put_file("a.yaml", b.data);
  s = file_source();
  snprintf(path, sizeof(path), "%s/a.yaml", tmpdir);
  ck_assert_int_eq(unlink(path), 0);
  for (int i = 0; i < 500 && !source_held(s, NULL); i++)
    usleep(10 * 1000);
  expect_held(1, "removes every listener template");
  ck_assert_uint_eq(seen_catalogs(), 1);
  /* Put back: served again, the hold ends. */
  put_file("a.yaml", b.data);
  for (int i = 0; i < 500 && source_held(s, NULL); i++)
    usleep(10 * 1000);
  expect_held(0, NULL);
  source_free(s);
  xds_buf_cleanup(&b);
  remove_tmpdir();
}
END_TEST

/* ---- duplicates: the served definition keeps its source (issue 14
 * item 5) ---- */

/* The problem of pb whose message holds text, or NULL. */
static const struct problem *problem_with(const struct problems *pb,
                                          const char *text) {
  for (size_t i = 0; i < problems_count(pb); i++)
    if (strstr(problems_at(pb, i)->msg, text) != NULL)
      return problems_at(pb, i);
  return NULL;
}

START_TEST(file_newcomer_duplicate_is_rejected) {
  struct catalog *c1 = NULL, *c2 = NULL, *c3 = NULL;
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf b;
  const struct problem *p;
  const struct wasm_ext *e;
  char jwt[160], dup[160], want[512];

  make_tmpdir();
  snprintf(jwt, sizeof(jwt), "%s/jwt.yaml", tmpdir);
  snprintf(dup, sizeof(dup), "%s/00-dup.yaml", tmpdir);
  xds_buf_init(&b, 4096);
  ext_doc(&b, "jwt-authn", 1);
  put_file("jwt.yaml", b.data);
  problems_init(&pb, 50);
  ck_assert_int_eq(file_store_load(tmpdir, NULL, &c1, &pb, &err), 0);
  ck_assert_uint_eq(pb.n_errors, 0);

  /* 00-dup.yaml sorts first and redefines it: the served one stays. */
  xds_buf_reset(&b);
  ext_doc(&b, "jwt-authn", 9);
  put_file("00-dup.yaml", b.data);
  problems_reset(&pb);
  ck_assert_int_eq(file_store_load(tmpdir, c1, &c2, &pb, &err), 0);
  e = catalog_ext_find(c2, "organizations/acme/extensions/jwt-authn");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq(e->loc.source, jwt);
  ck_assert_int_eq(e->priority, 1);
  ck_assert_uint_eq(pb.n_errors, 1);
  p = problem_with(&pb, "duplicate WasmExtension");
  ck_assert_ptr_nonnull(p);
  ck_assert_str_eq(p->source, dup); /* the newcomer is the one rejected */
  snprintf(want, sizeof(want),
           "duplicate WasmExtension \"organizations/acme/extensions/"
           "jwt-authn\": already served from %s:2:1; this new definition is "
           "rejected and the served one keeps its source",
           jwt);
  ck_assert_str_eq(p->msg, want);

  /* Both new (nothing served): path order decides, as before. */
  problems_reset(&pb);
  ck_assert_int_eq(file_store_load(tmpdir, NULL, &c3, &pb, &err), 0);
  e = catalog_ext_find(c3, "organizations/acme/extensions/jwt-authn");
  ck_assert_str_eq(e->loc.source, dup);
  p = problem_with(&pb, "duplicate WasmExtension");
  ck_assert_ptr_nonnull(p);
  ck_assert_str_eq(p->source, jwt);
  ck_assert_ptr_nonnull(strstr(p->msg, "first is kept"));
  catalog_unref(c1);
  catalog_unref(c2);
  catalog_unref(c3);
  problems_cleanup(&pb);
  xds_buf_cleanup(&b);
  remove_tmpdir();
}
END_TEST

START_TEST(etcd_newcomer_duplicate_is_rejected) {
  struct etcd_store *es = etcd_store_new("/p", NULL);
  struct catalog *c1 = NULL, *c2 = NULL;
  struct problems pb;
  struct xds_buf b;
  const struct problem *p;
  const struct wasm_ext *e;

  ck_assert_ptr_nonnull(es);
  xds_buf_init(&b, 4096);
  ext_doc(&b, "jwt-authn", 1);
  ck_assert_int_ge(
      etcd_store_put(es, "/p/WasmExtension/acme/jwt-authn", b.data, b.len, 2),
      0);
  problems_init(&pb, 50);
  ck_assert_int_eq(etcd_store_build_ex(es, NULL, &c1, &pb), 0);
  xds_buf_reset(&b);
  ext_doc(&b, "jwt-authn", 9);
  /* Another key, sorting first, defines the same extension. */
  ck_assert_int_ge(
      etcd_store_put(es, "/p/WasmExtension/acme/00", b.data, b.len, 3), 0);
  problems_reset(&pb);
  ck_assert_int_eq(etcd_store_build_ex(es, c1, &c2, &pb), 0);
  e = catalog_ext_find(c2, "organizations/acme/extensions/jwt-authn");
  ck_assert_str_eq(e->loc.source, "/p/WasmExtension/acme/jwt-authn");
  ck_assert_int_eq(e->priority, 1);
  p = problem_with(&pb, "duplicate WasmExtension");
  ck_assert_ptr_nonnull(p);
  ck_assert_str_eq(p->source, "/p/WasmExtension/acme/00");
  ck_assert_ptr_nonnull(
      strstr(p->msg, "already served from /p/WasmExtension/acme/jwt-authn:"));
  catalog_unref(c1);
  catalog_unref(c2);
  problems_cleanup(&pb);
  xds_buf_cleanup(&b);
  etcd_store_free(es);
}
END_TEST

Suite *source_suite(void) {
  Suite *s = suite_create("source");
  TCase *tc = tcase_create("shared_path");
  TCase *tg = tcase_create("removal_guard");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, changes_are_logged_in_one_format);
  tcase_add_test(tc, problems_are_reported_once);
  tcase_add_test(tc, file_source_keeps_last_good_and_reports);
  suite_add_tcase(s, tc);
  tcase_add_checked_fixture(tg, setup, teardown);
  tcase_set_timeout(tg, 30);
  tcase_add_test(tg, every_template_removed_is_held_until_confirmed);
  tcase_add_test(tg, share_rule_and_replacement);
  tcase_add_test(tg, file_store_emptied_is_held);
  suite_add_tcase(s, tg);
  tg = tcase_create("duplicates");
  tcase_add_checked_fixture(tg, setup, teardown);
  tcase_set_timeout(tg, 30);
  tcase_add_test(tg, file_newcomer_duplicate_is_rejected);
  tcase_add_test(tg, etcd_newcomer_duplicate_is_rejected);
  suite_add_tcase(s, tg);
  return s;
}
