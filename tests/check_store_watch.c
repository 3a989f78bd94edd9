/*
 * check_store_watch.c: hot reload of the file store (store/file_watch.h),
 * the template check hook and the reload cache of file_store_load_ex(),
 * and catalog_diff().
 *
 * Each watcher test starts a real watcher on a fresh temporary directory,
 * changes files the way editors, `mv`, Kubernetes and operators do, and
 * then waits (polling the last delivered catalog against a deadline, never
 * sleeping and hoping) until the catalog delivered to on_load holds exactly
 * the expected resources.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/file_watch.h"
#include "store/problems.h"
#include "store/ydoc.h"
#include "tests/testkit.h"

/* How long a test waits for the watcher before it fails. */
#define WAIT_MS 5000
/* The debounce of most tests: short, so the suite stays quick. */
#define TEST_DEBOUNCE_MS 30

/* ---- files ---- */

static char tmpdir[256];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_watch.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  tk_rm_tree(tmpdir);
}

static const char *at(const char *rel) {
  static char path[4][512];
  static int k;

  k = (k + 1) % 4;
  snprintf(path[k], sizeof(path[k]), "%s/%s", tmpdir, rel);
  return path[k];
}

static void mkdirs(const char *rel) {
  char path[512];

  snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
  for (char *s = strchr(path + strlen(tmpdir) + 1, '/');;
       s = strchr(s + 1, '/')) {
    if (s != NULL)
      *s = '\0';
    if (mkdir(path, 0755) < 0)
      ck_assert_int_eq(errno, EEXIST);
    if (s == NULL)
      break;
    *s = '/';
  }
}

/* Writes in place: open with O_TRUNC, write, close. */
static void put(const char *rel, const char *text) {
  int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  ck_assert_int_eq(close(fd), 0);
}

/* Writes a temporary file next to rel, then renames it over rel. */
static void put_by_rename(const char *rel, const char *tmp_rel,
                          const char *text) {
  put(tmp_rel, text);
  ck_assert_int_eq(rename(at(tmp_rel), at(rel)), 0);
}

/* A WasmExtension of org acme whose url ends in ":<ver>". */
static char *ext(const char *name, int ver) {
  return xds_asprintf("---\napiVersion: extension.tsb.tetrate.io/v2\n"
                      "kind: WasmExtension\n"
                      "metadata: {organization: acme, name: %s}\n"
                      "spec: {url: 'oci://r.example/%s:%d'}\n",
                      name, name, ver);
}

static char *tmpl(const char *name, int port) {
  return xds_asprintf("---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
                      "metadata: {name: %s}\n"
                      "spec:\n"
                      "  port: %d\n"
                      "  direction: INBOUND\n"
                      "  route: {cluster: c}\n"
                      "  httpFilters:\n"
                      "  - name: router\n"
                      "    typedConfig: {'@type': "
                      "envoy.extensions.filters.http.router.v3.Router}\n",
                      name, port);
}

/* Concatenates documents (each freed) into one text (caller frees). */
static char *docs(int n, ...) {
  struct xds_buf b;
  va_list ap;
  char *out;

  xds_buf_init(&b, 1 << 20);
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    char *d = va_arg(ap, char *);

    xds_buf_append(&b, d, strlen(d));
    xds_free(d);
  }
  va_end(ap);
  xds_buf_putc(&b, '\0');
  out = xds_strdup(b.data);
  xds_buf_cleanup(&b);
  return out;
}

static void put_docs(const char *rel, char *text) {
  put(rel, text);
  xds_free(text);
}

/* ---- the callback and waiting ---- */

struct rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct catalog *cat;
  int calls;
  size_t n_errors;
  size_t n_warnings;
  char problems[8192];
};

static struct rec R;

static void rec_init(void) {
  memset(&R, 0, sizeof(R));
  pthread_mutex_init(&R.mu, NULL);
  pthread_cond_init(&R.cv, NULL);
}

static void rec_cleanup(void) {
  catalog_unref(R.cat);
  R.cat = NULL;
}

static void on_load(void *ctx, struct catalog *cat, const struct problems *pb) {
  struct rec *r = ctx;
  struct xds_buf b;

  xds_buf_init(&b, sizeof(r->problems) - 1);
  for (size_t i = 0; i < problems_count(pb); i++)
    problem_format(problems_at(pb, i), &b);
  pthread_mutex_lock(&r->mu);
  catalog_unref(r->cat);
  r->cat = cat;
  r->calls++;
  r->n_errors = pb->n_errors;
  r->n_warnings = pb->n_warnings;
  snprintf(r->problems, sizeof(r->problems), "%.*s", (int)b.len,
           b.data != NULL ? b.data : "");
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  xds_buf_cleanup(&b);
}

/* Renders the catalog as "a:1,b:2|t1:8080,t2:8081" (extension names of
 * org acme with their url version, then template names with ports). */
static void describe(const struct catalog *c, char *out, size_t size) {
  size_t n = 0;

  out[0] = '\0';
  if (c == NULL)
    return;
  for (size_t i = 0; i < catalog_ext_count(c); i++) {
    const struct wasm_ext *e = catalog_ext_at(c, i);
    const char *colon = strrchr(e->url, ':');

    n += snprintf(out + n, size - n, "%s%s:%s", i ? "," : "", e->name,
                  colon != NULL ? colon + 1 : "?");
  }
  n += snprintf(out + n, size - n, "|");
  for (size_t i = 0; i < catalog_tmpl_count(c); i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(c, i);

    n += snprintf(out + n, size - n, "%s%s:%u", i ? "," : "", t->name,
                  (unsigned)t->port);
  }
}

static void deadline_in(struct timespec *ts, long ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Waits until the delivered catalog reads exactly want (see describe()),
 * failing the test with what it holds after WAIT_MS. */
static void wait_for(const char *want) {
  struct timespec dl;
  char have[4096];
  int ok = 0;

  deadline_in(&dl, WAIT_MS);
  pthread_mutex_lock(&R.mu);
  for (;;) {
    describe(R.cat, have, sizeof(have));
    if (strcmp(have, want) == 0) {
      ok = 1;
      break;
    }
    if (pthread_cond_timedwait(&R.cv, &R.mu, &dl) == ETIMEDOUT) {
      describe(R.cat, have, sizeof(have));
      ok = strcmp(have, want) == 0;
      break;
    }
  }
  pthread_mutex_unlock(&R.mu);
  ck_assert_msg(ok, "catalog is \"%s\", want \"%s\"; problems:\n%s", have, want,
                R.problems);
}

/* Waits until on_load has been called more than calls times. */
static void wait_calls(int calls) {
  struct timespec dl;
  int got;

  deadline_in(&dl, WAIT_MS);
  pthread_mutex_lock(&R.mu);
  while (R.calls <= calls &&
         pthread_cond_timedwait(&R.cv, &R.mu, &dl) != ETIMEDOUT)
    ;
  got = R.calls;
  pthread_mutex_unlock(&R.mu);
  ck_assert_msg(got > calls, "on_load called %d times, want more than %d", got,
                calls);
}

static int calls(void) {
  int n;

  pthread_mutex_lock(&R.mu);
  n = R.calls;
  pthread_mutex_unlock(&R.mu);
  return n;
}

/* Polls the stats until loads passes n (bounded). */
static void wait_loads(struct file_watch *w, unsigned long n) {
  struct file_watch_stats st;

  for (int i = 0; i < WAIT_MS / 5; i++) {
    file_watch_get_stats(w, &st);
    if (st.loads > n)
      return;
    usleep(5000);
  }
  ck_abort_msg("no reload after %lu", n);
}

static struct file_watch *start(const char *path, unsigned debounce) {
  struct file_watch *w = NULL;
  struct xds_err err = {0, ""};
  int rc;

  rc = file_watch_start(path, debounce, NULL, on_load, &R, &w, &err);
  ck_assert_msg(rc == 0, "file_watch_start: %s", err.msg);
  ck_assert_int_eq(calls(), 1); /* the initial load, before returning */
  return w;
}

static void setup(void) {
  xds_log_set_level(XDS_LOG_ERROR);
  make_tmpdir();
  rec_init();
}

static void teardown(void) {
  rec_cleanup();
  remove_tmpdir();
}

/* ---- save patterns ---- */

START_TEST(in_place_write) {
  struct file_watch *w;

  put_docs("a.yaml", docs(2, ext("a", 1), tmpl("t1", 8080)));
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  wait_for("a:1|t1:8080");
  put_docs("a.yaml", docs(3, ext("a", 2), ext("b", 1), tmpl("t1", 8081)));
  wait_for("a:2,b:1|t1:8081");
  file_watch_stop(w);
}
END_TEST

START_TEST(editor_rename_over) {
  struct file_watch *w;
  char *text;

  put_docs("a.yaml", docs(1, ext("a", 1)));
  put_docs("b.yaml", docs(1, ext("b", 1)));
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  /* vim (backupcopy=no): the original becomes the backup, a new file is
   * written under the name, the backup is deleted. */
  ck_assert_int_eq(rename(at("a.yaml"), at("a.yaml~")), 0);
  put_docs("a.yaml", docs(1, ext("a", 2)));
  ck_assert_int_eq(unlink(at("a.yaml~")), 0);
  wait_for("a:2,b:1|");
  /* VS Code, emacs, atomic writers: a hidden temporary renamed over. */
  text = docs(1, ext("b", 2));
  put_by_rename("b.yaml", ".b.yaml.tmp", text);
  xds_free(text);
  wait_for("a:2,b:2|");
  file_watch_stop(w);
}
END_TEST

START_TEST(mv_into_place_and_out) {
  struct file_watch *w;
  char outside[300];

  mkdirs("store");
  put_docs("store/a.yaml", docs(1, ext("a", 1)));
  mkdirs("elsewhere");
  put_docs("elsewhere/b.yaml", docs(2, ext("b", 1), tmpl("tb", 9000)));
  w = start(at("store"), TEST_DEBOUNCE_MS);
  wait_for("a:1|");
  ck_assert_int_eq(rename(at("elsewhere/b.yaml"), at("store/b.yaml")), 0);
  wait_for("a:1,b:1|tb:9000");
  /* Moved out of the store: deliberately gone. */
  snprintf(outside, sizeof(outside), "%s", at("elsewhere/a.yaml"));
  ck_assert_int_eq(rename(at("store/a.yaml"), outside), 0);
  wait_for("b:1|tb:9000");
  file_watch_stop(w);
}
END_TEST

/* The layout of a Kubernetes ConfigMap volume: the real files live in a
 * hidden timestamped directory, ..data points at it, and each visible
 * name is a symlink through ..data. An update writes a new directory and
 * renames a new ..data symlink over the old one. */
START_TEST(configmap_symlink_swap) {
  struct file_watch *w;

  mkdirs("cm/..2024_01");
  put_docs("cm/..2024_01/exts.yaml", docs(2, ext("a", 1), ext("b", 1)));
  put_docs("cm/..2024_01/tmpls.yaml", docs(1, tmpl("t1", 8080)));
  ck_assert_int_eq(symlink("..2024_01", at("cm/..data")), 0);
  ck_assert_int_eq(symlink("..data/exts.yaml", at("cm/exts.yaml")), 0);
  ck_assert_int_eq(symlink("..data/tmpls.yaml", at("cm/tmpls.yaml")), 0);
  w = start(at("cm"), TEST_DEBOUNCE_MS);
  wait_for("a:1,b:1|t1:8080");

  mkdirs("cm/..2024_02");
  put_docs("cm/..2024_02/exts.yaml", docs(2, ext("a", 2), ext("c", 1)));
  put_docs("cm/..2024_02/tmpls.yaml", docs(1, tmpl("t1", 8081)));
  ck_assert_int_eq(symlink("..2024_02", at("cm/..data_tmp")), 0);
  ck_assert_int_eq(rename(at("cm/..data_tmp"), at("cm/..data")), 0);
  ck_assert_int_eq(unlink(at("cm/..2024_01/exts.yaml")), 0);
  ck_assert_int_eq(unlink(at("cm/..2024_01/tmpls.yaml")), 0);
  ck_assert_int_eq(rmdir(at("cm/..2024_01")), 0);
  wait_for("a:2,c:1|t1:8081");
  file_watch_stop(w);
}
END_TEST

/* The store path is a symlink to a file, switched to another target. */
START_TEST(single_file_symlink_switch) {
  struct file_watch *w;

  put_docs("v1.yaml", docs(1, ext("a", 1)));
  put_docs("v2.yaml", docs(2, ext("a", 2), ext("b", 1)));
  ck_assert_int_eq(symlink("v1.yaml", at("store.yaml")), 0);
  w = start(at("store.yaml"), TEST_DEBOUNCE_MS);
  wait_for("a:1|");
  /* An in-place edit of the target is seen through the link. */
  put_docs("v1.yaml", docs(1, ext("a", 3)));
  wait_for("a:3|");
  ck_assert_int_eq(symlink("v2.yaml", at("store.yaml.new")), 0);
  ck_assert_int_eq(rename(at("store.yaml.new"), at("store.yaml")), 0);
  wait_for("a:2,b:1|");
  /* And an unrelated file next to it does not matter. */
  put_docs("other.yaml", docs(1, ext("zzz", 1)));
  put_docs("v2.yaml", docs(1, ext("b", 2)));
  wait_for("b:2|");
  file_watch_stop(w);
}
END_TEST

START_TEST(directory_created_later) {
  struct file_watch *w;

  put_docs("a.yaml", docs(1, ext("a", 1)));
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  mkdirs("sub");
  put_docs("sub/c.yaml", docs(1, ext("c", 1)));
  wait_for("a:1,c:1|");
  /* The new directory is watched now: an edit inside it is seen. */
  put_docs("sub/c.yaml", docs(1, ext("c", 2)));
  wait_for("a:1,c:2|");
  /* A whole tree at once, files written right after mkdir -p. */
  mkdirs("x/y/z");
  put_docs("x/y/z/d.yaml", docs(1, tmpl("td", 7000)));
  wait_for("a:1,c:2|td:7000");
  put_docs("x/y/z/d.yaml", docs(1, tmpl("td", 7001)));
  wait_for("a:1,c:2|td:7001");
  /* A directory moved in with files already in it. */
  mkdirs("staging/team");
  put_docs("staging/team/e.yaml", docs(1, ext("e", 1)));
  ck_assert_int_eq(rename(at("staging"), at("y-moved-in")), 0);
  wait_for("a:1,c:2,e:1|td:7001");
  file_watch_stop(w);
}
END_TEST

START_TEST(store_path_created_later) {
  struct file_watch *w;

  w = start(at("later/store"), TEST_DEBOUNCE_MS);
  wait_for("|");
  pthread_mutex_lock(&R.mu);
  ck_assert_msg(strstr(R.problems, "no such file or directory") != NULL, "%s",
                R.problems);
  pthread_mutex_unlock(&R.mu);
  mkdirs("later/store");
  put_docs("later/store/a.yaml", docs(1, ext("a", 1)));
  wait_for("a:1|");
  put_docs("later/store/a.yaml", docs(1, ext("a", 2)));
  wait_for("a:2|");
  file_watch_stop(w);
}
END_TEST

START_TEST(delete_document_and_file) {
  struct file_watch *w;

  put_docs("ab.yaml", docs(3, ext("a", 1), ext("b", 1), tmpl("t1", 8080)));
  put_docs("c.yaml", docs(2, ext("c", 1), tmpl("t2", 8081)));
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  wait_for("a:1,b:1,c:1|t1:8080,t2:8081");
  /* A document deleted from a file that parses: that resource only. */
  put_docs("ab.yaml", docs(2, ext("a", 1), tmpl("t1", 8080)));
  wait_for("a:1,c:1|t1:8080,t2:8081");
  /* A file deleted: all of its resources. */
  ck_assert_int_eq(unlink(at("c.yaml")), 0);
  wait_for("a:1|t1:8080");
  file_watch_stop(w);
}
END_TEST

START_TEST(truncated_mid_edit_then_fixed) {
  struct file_watch *w;
  char *full, *cut;
  int before;

  full = docs(3, ext("a", 1), ext("b", 1), tmpl("t1", 8080));
  put("f.yaml", full);
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  wait_for("a:1,b:1|t1:8080");

  /* Cut inside b's flow mapping: not YAML any more. Everything of the
   * file stays as it was; the problem is delivered. */
  before = calls();
  cut = xds_strndup(full, (size_t)(strstr(full, "name: b") - full));
  put("f.yaml", cut);
  wait_calls(before);
  wait_for("a:1,b:1|t1:8080");
  pthread_mutex_lock(&R.mu);
  ck_assert_msg(strstr(R.problems, "not valid YAML") != NULL, "%s", R.problems);
  ck_assert_msg(strstr(R.problems, "keeping the last good version of "
                                   "WasmExtension \"organizations/acme/"
                                   "extensions/b\"") != NULL,
                "%s", R.problems);
  pthread_mutex_unlock(&R.mu);

  /* Truncated to nothing (an editor between O_TRUNC and write). */
  before = calls();
  put("f.yaml", "");
  wait_calls(before);
  wait_for("a:1,b:1|t1:8080");
  pthread_mutex_lock(&R.mu);
  ck_assert_msg(strstr(R.problems, "its file is empty") != NULL, "%s",
                R.problems);
  pthread_mutex_unlock(&R.mu);

  /* Fixed, with new versions. */
  put_docs("f.yaml", docs(3, ext("a", 2), ext("b", 2), tmpl("t1", 8081)));
  wait_for("a:2,b:2|t1:8081");
  pthread_mutex_lock(&R.mu);
  ck_assert_int_eq(R.n_errors, 0);
  ck_assert_int_eq(R.n_warnings, 0);
  pthread_mutex_unlock(&R.mu);
  xds_free(full);
  xds_free(cut);
  file_watch_stop(w);
}
END_TEST

START_TEST(burst_is_one_reload) {
  struct file_watch *w;
  struct file_watch_stats st;
  struct timespec t0, t1;
  long ms;

  put_docs("a.yaml", docs(1, ext("a", 0)));
  w = start(tmpdir, FILE_WATCH_DEFAULT_DEBOUNCE_MS);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 1; i <= 20; i++) {
    put_docs("a.yaml", docs(1, ext("a", i)));
    usleep(2500);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  wait_for("a:20|");
  /* Quiet for three debounces: no reload may follow. */
  usleep(3 * FILE_WATCH_DEFAULT_DEBOUNCE_MS * 1000);
  file_watch_get_stats(w, &st);
  if (ms < FILE_WATCH_DEFAULT_DEBOUNCE_MS)
    ck_assert_msg(st.loads == 1, "%lu reloads for a burst of %ld ms", st.loads,
                  ms);
  else /* a slow machine stretched the burst past one debounce */
    ck_assert_msg(st.loads <= 2, "%lu reloads for a burst of %ld ms", st.loads,
                  ms);
  ck_assert_int_eq(st.delivered, 2);
  ck_assert_uint_ge(st.events, 20);
  file_watch_stop(w);
}
END_TEST

START_TEST(trigger_forces_a_reload) {
  struct file_watch *w;
  struct file_watch_stats st;

  put_docs("a.yaml", docs(1, ext("a", 1)));
  /* A debounce far beyond the test's deadline: only trigger() can make
   * the change below visible in time. */
  w = start(tmpdir, FILE_WATCH_MAX_DEBOUNCE_MS);
  put_docs("a.yaml", docs(1, ext("a", 2)));
  ck_assert_int_eq(file_watch_trigger(w), 0);
  wait_for("a:2|");
  file_watch_get_stats(w, &st);
  ck_assert_uint_eq(st.triggers, 1);
  ck_assert_uint_eq(st.loads, 1);
  /* A trigger with nothing changed reloads but delivers nothing. */
  ck_assert_int_eq(file_watch_trigger(w), 0);
  wait_loads(w, 1);
  ck_assert_int_eq(calls(), 2);
  file_watch_stop(w);
}
END_TEST

START_TEST(unrelated_and_unchanged_writes_deliver_nothing) {
  struct file_watch *w;
  struct file_watch_stats st;
  char *text = docs(1, ext("a", 1));

  put("a.yaml", text);
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  /* Editor leftovers and other names do not even reload. */
  put("a.yaml.swp", "x");
  put(".#a.yaml", "x");
  put("notes.txt", "x");
  put("a.yaml~", "x");
  /* The same bytes again: a reload, but nothing to deliver. */
  put("a.yaml", text);
  wait_loads(w, 0);
  file_watch_get_stats(w, &st);
  ck_assert_uint_eq(st.loads, 1);
  ck_assert_int_eq(calls(), 1);
  xds_free(text);
  file_watch_stop(w);
}
END_TEST

START_TEST(broken_document_keeps_last_good_then_delete_removes) {
  struct file_watch *w;
  int before;

  put_docs("a.yaml", docs(2, ext("a", 1), ext("b", 1)));
  w = start(tmpdir, TEST_DEBOUNCE_MS);
  before = calls();
  put("a.yaml", "---\napiVersion: extension.tsb.tetrate.io/v2\n"
                "kind: WasmExtension\n"
                "metadata: {organization: acme, name: a}\n"
                "spec: {url: 'ftp://nope'}\n");
  wait_calls(before);
  /* a is broken: its last good version stays; b was deleted from a file
   * that parses: gone. */
  wait_for("a:1|");
  pthread_mutex_lock(&R.mu);
  ck_assert_msg(strstr(R.problems, "a.yaml:5:13: spec.url:") != NULL, "%s",
                R.problems);
  pthread_mutex_unlock(&R.mu);
  ck_assert_int_eq(unlink(at("a.yaml")), 0);
  wait_for("|");
  file_watch_stop(w);
}
END_TEST

START_TEST(too_many_directories) {
  struct file_watch *w = NULL;
  struct xds_err err = {0, ""};
  char rel[64];
  int rc;

  for (int i = 0; i < FILE_WATCH_MAX_WATCHES; i++) {
    snprintf(rel, sizeof(rel), "d%04d", i);
    mkdirs(rel);
  }
  rc = file_watch_start(tmpdir, TEST_DEBOUNCE_MS, NULL, on_load, &R, &w, &err);
  ck_assert_ptr_null(w);
  ck_assert_int_eq(calls(), 0);
  if (rc == XDS_EIO && strstr(err.msg, "max_user_watches") != NULL)
    return; /* the machine's own limit is lower: also a clear error */
  ck_assert_int_eq(rc, XDS_ETOOBIG);
  ck_assert_msg(strstr(err.msg, "more than 4096 directories to watch") != NULL,
                "%s", err.msg);
}
END_TEST

/* ---- the template hook ---- */

/* Rejects any template with a Lua filter, naming the filter, the way the
 * server rejects a typedConfig that does not convert. */
static int reject_lua(void *ctx, const struct listener_tmpl *t,
                      struct problems *pb) {
  int *called = ctx;

  (*called)++;
  for (size_t i = 0; i < t->n_filters; i++)
    if (strstr(t->filters[i].type_url, ".lua.") != NULL) {
      problems_add(pb, PROBLEM_ERROR, t->filters[i].loc.source,
                   t->filters[i].loc.line, t->filters[i].loc.column,
                   "spec.httpFilters[0].typedConfig", "no Lua today");
      return XDS_EINVAL;
    }
  return 0;
}

static int reject_silently(void *ctx, const struct listener_tmpl *t,
                           struct problems *pb) {
  (void)ctx, (void)pb;
  return strcmp(t->name, "t2") == 0 ? XDS_EINVAL : 0;
}

#define LUA_TMPL(name, port)                                                   \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: " name "}\n"                                               \
  "spec:\n"                                                                    \
  "  port: " port "\n"                                                         \
  "  direction: INBOUND\n"                                                     \
  "  route: {cluster: c}\n"                                                    \
  "  httpFilters:\n"                                                           \
  "  - name: lua\n"                                                            \
  "    typedConfig: {'@type': envoy.extensions.filters.http.lua.v3.Lua}\n"     \
  "  - name: router\n"                                                         \
  "    typedConfig: {'@type': "                                                \
  "envoy.extensions.filters.http.router.v3.Router}\n"

START_TEST(hook_rejects_like_an_invalid_document) {
  int called = 0;
  struct store_hooks hooks = {reject_lua, &called};
  struct problems pb;
  struct catalog *prev, *c;
  struct xds_err err;
  const struct problem *p;

  problems_init(&pb, 100);
  put_docs("t.yaml", docs(2, tmpl("t1", 8080), tmpl("t2", 8081)));
  ck_assert_int_eq(
      file_store_load_ex(tmpdir, &hooks, NULL, NULL, &prev, &pb, &err), 0);
  ck_assert_int_eq(called, 2);
  ck_assert_uint_eq(problems_count(&pb), 0);

  /* t2 gains a filter the hook rejects; t3 is new and rejected too. */
  {
    char *text = docs(1, tmpl("t1", 8080));
    char *all = xds_asprintf("%s%s%s", text, LUA_TMPL("t2", "8082"),
                             LUA_TMPL("t3", "8083"));

    put("t.yaml", all);
    xds_free(text);
    xds_free(all);
  }
  problems_reset(&pb);
  ck_assert_int_eq(
      file_store_load_ex(tmpdir, &hooks, NULL, prev, &c, &pb, &err), 0);
  /* The hook's own located error, for each. */
  ck_assert_uint_eq(pb.n_errors, 2);
  p = problems_at(&pb, 0);
  ck_assert_str_eq(p->msg, "no Lua today");
  ck_assert_int_eq(p->line, 21);
  ck_assert_int_eq(p->column, 5);
  /* t2 keeps its last good version (port 8081), t3 is not served. */
  ck_assert_uint_eq(catalog_tmpl_count(c), 2);
  ck_assert_uint_eq(catalog_tmpl_find(c, "t2")->port, 8081);
  ck_assert_ptr_null(catalog_tmpl_find(c, "t3"));
  ck_assert_uint_eq(pb.n_warnings, 1);
  ck_assert_ptr_nonnull(
      strstr(problems_at(&pb, 2)->msg,
             "keeping the last good version of ListenerTemplate \"t2\": its "
             "document is broken"));
  catalog_unref(c);

  /* A hook that rejects without a problem still gets a located error. */
  {
    struct store_hooks quiet = {reject_silently, NULL};

    problems_reset(&pb);
    put_docs("t.yaml", docs(2, tmpl("t1", 8080), tmpl("t2", 8085)));
    ck_assert_int_eq(
        file_store_load_ex(tmpdir, &quiet, NULL, prev, &c, &pb, &err), 0);
    ck_assert_uint_eq(pb.n_errors, 1);
    ck_assert_str_eq(problems_at(&pb, 0)->msg,
                     "ListenerTemplate \"t2\" was rejected by the server's "
                     "check");
    ck_assert_int_eq(problems_at(&pb, 0)->line, 13);
    ck_assert_uint_eq(catalog_tmpl_find(c, "t2")->port, 8081);
    catalog_unref(c);
  }
  catalog_unref(prev);
  problems_cleanup(&pb);
}
END_TEST

START_TEST(watcher_passes_hooks) {
  int called = 0;
  struct store_hooks hooks = {reject_lua, &called};
  struct file_watch *w = NULL;
  struct xds_err err;

  put("t.yaml", LUA_TMPL("t1", "8080"));
  put_docs("u.yaml", docs(1, tmpl("t2", 8081)));
  ck_assert_int_eq(
      file_watch_start(tmpdir, TEST_DEBOUNCE_MS, &hooks, on_load, &R, &w, &err),
      0);
  wait_for("|t2:8081");
  ck_assert_ptr_nonnull(strstr(R.problems, "no Lua today"));
  file_watch_stop(w);
}
END_TEST

/* ---- the reload cache ---- */

START_TEST(cache_reuses_unchanged_files_and_sees_same_size_edits) {
  struct file_store_cache *cache = file_store_cache_new();
  struct problems pb;
  struct catalog *c1, *c2, *c3;
  struct xds_err err;
  const struct wasm_ext *a1, *b1;

  problems_init(&pb, 100);
  put_docs("a.yaml", docs(1, ext("a", 1)));
  put_docs("b.yaml", docs(2, ext("b", 1), tmpl("t1", 8080)));
  put("bad.yaml", "---\napiVersion: extension.tsb.tetrate.io/v2\n"
                  "kind: WasmExtension\n"
                  "metadata: {organization: acme, name: bad}\n"
                  "spec: {url: 'ftp://nope'}\n");
  ck_assert_int_eq(
      file_store_load_ex(tmpdir, NULL, cache, NULL, &c1, &pb, &err), 0);
  ck_assert_uint_eq(file_store_cache_files(cache), 3);
  ck_assert_uint_eq(pb.n_errors, 1);
  a1 = catalog_ext_find(c1, "organizations/acme/extensions/a");
  b1 = catalog_ext_find(c1, "organizations/acme/extensions/b");

  /* Same size, new bytes, written right away (same mtime tick). */
  put_docs("a.yaml", docs(1, ext("a", 2)));
  problems_reset(&pb);
  ck_assert_int_eq(file_store_load_ex(tmpdir, NULL, cache, c1, &c2, &pb, &err),
                   0);
  /* The cached file's problems are replayed, its records shared. */
  ck_assert_uint_eq(pb.n_errors, 1);
  ck_assert_ptr_nonnull(strstr(problems_at(&pb, 0)->msg, "ftp://nope"));
  ck_assert_ptr_eq(catalog_ext_find(c2, "organizations/acme/extensions/b"), b1);
  ck_assert_ptr_ne(catalog_ext_find(c2, "organizations/acme/extensions/a"), a1);
  ck_assert_str_eq(catalog_ext_find(c2, "organizations/acme/extensions/a")->url,
                   "oci://r.example/a:2");
  ck_assert_int_eq(catalog_diff(c1, c2, NULL, NULL), 1);
  catalog_unref(c1);

  /* A deleted file leaves the cache. */
  ck_assert_int_eq(unlink(at("bad.yaml")), 0);
  problems_reset(&pb);
  ck_assert_int_eq(file_store_load_ex(tmpdir, NULL, cache, c2, &c3, &pb, &err),
                   0);
  ck_assert_uint_eq(file_store_cache_files(cache), 2);
  ck_assert_uint_eq(problems_count(&pb), 0);
  ck_assert_int_eq(catalog_diff(c2, c3, NULL, NULL), 0);
  catalog_unref(c2);
  file_store_cache_free(cache);
  /* Records outlive the cache while a catalog holds them. */
  ck_assert_str_eq(catalog_ext_find(c3, "organizations/acme/extensions/b")->url,
                   "oci://r.example/b:1");
  catalog_unref(c3);
  problems_cleanup(&pb);
}
END_TEST

/* ---- catalog_diff ---- */

static struct catalog *load_text(const char *text) {
  struct problems pb;
  struct catalog *c = NULL;
  struct xds_err err;
  char rel[64];
  static int n;

  snprintf(rel, sizeof(rel), "diff-%d", n++);
  mkdirs(rel);
  snprintf(rel + strlen(rel), sizeof(rel) - strlen(rel), "/x.yaml");
  put(rel, text);
  problems_init(&pb, 100);
  *strrchr(rel, '/') = '\0';
  ck_assert_int_eq(file_store_load(at(rel), NULL, &c, &pb, &err), 0);
  ck_assert_msg(problems_count(&pb) == 0, "%s", problems_at(&pb, 0)->msg);
  problems_cleanup(&pb);
  return c;
}

struct seen {
  char text[1024];
  int stop_after;
  int n;
};

static int note(void *ctx, const struct catalog_change *ch) {
  struct seen *s = ctx;
  size_t len = strlen(s->text);

  snprintf(s->text + len, sizeof(s->text) - len, "%s%s %s %s", len ? "; " : "",
           catalog_op_name(ch->op), catalog_kind_name(ch->kind), ch->id);
  if (ch->kind == CATALOG_EXT) {
    ck_assert(ch->op == CATALOG_ADDED ? ch->old_ext == NULL
                                      : ch->old_ext != NULL);
    ck_assert(ch->op == CATALOG_REMOVED ? ch->new_ext == NULL
                                        : ch->new_ext != NULL);
    ck_assert(ch->old_tmpl == NULL && ch->new_tmpl == NULL);
  } else {
    ck_assert(ch->op == CATALOG_ADDED ? ch->old_tmpl == NULL
                                      : ch->old_tmpl != NULL);
    ck_assert(ch->op == CATALOG_REMOVED ? ch->new_tmpl == NULL
                                        : ch->new_tmpl != NULL);
    ck_assert(ch->old_ext == NULL && ch->new_ext == NULL);
  }
  return ++s->n == s->stop_after ? -42 : 0;
}

#define FULL_EXT(extra)                                                        \
  "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"        \
  "metadata: {organization: acme, name: full}\n"                               \
  "spec:\n"                                                                    \
  "  url: oci://r/full:1\n"                                                    \
  "  allowedIn: [organizations/acme/tenants/t1]\n"                             \
  "  phase: AUTHZ\n"                                                           \
  "  priority: 5\n"                                                            \
  "  config: {a: 1, b: [x, y]}\n"                                              \
  "  vmConfig: {env: [{name: A, value: '1'}]}\n" extra

#define FULL_TMPL(extra)                                                       \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: tf}\n"                                                     \
  "spec:\n"                                                                    \
  "  port: 8080\n"                                                             \
  "  direction: INBOUND\n"                                                     \
  "  selector: {labels: {app: x}}\n"                                           \
  "  route: {cluster: c}\n"                                                    \
  "  httpFilters:\n"                                                           \
  "  - name: lua\n"                                                            \
  "    typedConfig:\n"                                                         \
  "      '@type': envoy.extensions.filters.http.lua.v3.Lua\n" extra            \
  "  - name: router\n"                                                         \
  "    typedConfig: {'@type': "                                                \
  "envoy.extensions.filters.http.router.v3.Router}\n"

START_TEST(diff_reports_each_change_in_order) {
  struct catalog *a, *b;
  struct seen s = {"", 0, 0};
  char *ta = docs(4, ext("keep", 1), ext("gone", 1), ext("edit", 1),
                  tmpl("t-gone", 9000));
  char *tb = docs(5, ext("edit", 2), ext("keep", 1), ext("new", 1),
                  tmpl("t-new", 9001), tmpl("a-new", 9002));

  a = load_text(ta);
  b = load_text(tb);
  ck_assert_int_eq(catalog_diff(a, b, note, &s), 6);
  ck_assert_str_eq(s.text,
                   "updated WasmExtension organizations/acme/extensions/edit; "
                   "removed WasmExtension organizations/acme/extensions/gone; "
                   "added WasmExtension organizations/acme/extensions/new; "
                   "added ListenerTemplate a-new; "
                   "removed ListenerTemplate t-gone; "
                   "added ListenerTemplate t-new");
  /* Nothing to nothing, and from or to an empty catalog. */
  ck_assert_int_eq(catalog_diff(a, a, note, &s), 0);
  ck_assert_int_eq(catalog_diff(NULL, NULL, NULL, NULL), 0);
  ck_assert_int_eq(catalog_diff(NULL, b, NULL, NULL), 5);
  ck_assert_int_eq(catalog_diff(a, NULL, NULL, NULL), 4);
  /* A negative return stops the walk and is returned. */
  memset(&s, 0, sizeof(s));
  s.stop_after = 2;
  ck_assert_int_eq(catalog_diff(a, b, note, &s), -42);
  ck_assert_int_eq(s.n, 2);
  catalog_unref(a);
  catalog_unref(b);
  xds_free(ta);
  xds_free(tb);
}
END_TEST

START_TEST(diff_compares_every_field_but_not_locations) {
  static const char *const ext_edits[] = {
      "  description: now described\n",
      "  sha256: "
      "0123456789abcdef0123456789abcdef"
      "0123456789abcdef0123456789abcdef\n",
      "  failStrategy: FAIL_OPEN\n",
      "  match: {mode: SERVER}\n",
      "  pluginName: p\n",
      "  imagePullSecret: s\n",
  };
  static const char *const tmpl_edits[] = {
      "      inlineCode: 'x'\n",
      "      sourceCodes: {a: {inlineString: b}}\n",
  };
  struct catalog *base, *moved, *c;
  const char *plain_ext = FULL_EXT("");
  const char *plain_tmpl = FULL_TMPL("");
  char *text;

  text = xds_asprintf("%s%s", plain_ext, plain_tmpl);
  base = load_text(text);
  xds_free(text);
  /* The same resources from another file, at other lines: no change. */
  text = xds_asprintf("# moved\n\n%s\n%s", plain_tmpl, plain_ext);
  moved = load_text(text);
  xds_free(text);
  ck_assert_ptr_ne(catalog_ext_at(base, 0), catalog_ext_at(moved, 0));
  ck_assert_int_eq(catalog_diff(base, moved, NULL, NULL), 0);
  ck_assert(
      catalog_ext_equal(catalog_ext_at(base, 0), catalog_ext_at(moved, 0)));
  ck_assert(
      catalog_tmpl_equal(catalog_tmpl_at(base, 0), catalog_tmpl_at(moved, 0)));
  catalog_unref(moved);

  for (size_t i = 0; i < sizeof(ext_edits) / sizeof(*ext_edits); i++) {
    char *e = xds_asprintf(FULL_EXT("%s"), ext_edits[i]);

    text = xds_asprintf("%s%s", e, plain_tmpl);
    c = load_text(text);
    ck_assert_msg(catalog_diff(base, c, NULL, NULL) == 1, "edit %zu", i);
    ck_assert(
        !catalog_ext_equal(catalog_ext_at(base, 0), catalog_ext_at(c, 0)));
    catalog_unref(c);
    xds_free(text);
    xds_free(e);
  }
  for (size_t i = 0; i < sizeof(tmpl_edits) / sizeof(*tmpl_edits); i++) {
    char *t = xds_asprintf(FULL_TMPL("%s"), tmpl_edits[i]);

    text = xds_asprintf("%s%s", plain_ext, t);
    c = load_text(text);
    ck_assert_msg(catalog_diff(base, c, NULL, NULL) == 1, "edit %zu", i);
    catalog_unref(c);
    xds_free(text);
    xds_free(t);
  }
  catalog_unref(base);
}
END_TEST

/* A template's RDS source is part of what it is: another cluster or API
 * type is an update (an LDS push), the same one is not. */
START_TEST(diff_sees_rds_source) {
#define RDS_TMPL(route)                                                        \
  "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                        \
  "metadata: {name: tr}\nspec:\n  port: 8080\n  direction: INBOUND\n"          \
  "  route: " route "\n  httpFilters:\n  - name: router\n    typedConfig: "    \
  "{'@type': envoy.extensions.filters.http.router.v3.Router}\n"
  struct catalog *base = load_text(RDS_TMPL("{rds: r, rdsCluster: a}"));
  struct catalog *same =
      load_text(RDS_TMPL("{rds: r, rdsCluster: a, rdsApiType: GRPC}"));
  struct catalog *cluster = load_text(RDS_TMPL("{rds: r, rdsCluster: b}"));
  struct catalog *delta =
      load_text(RDS_TMPL("{rds: r, rdsCluster: a, rdsApiType: DELTA_GRPC}"));

  ck_assert_int_eq(catalog_diff(base, same, NULL, NULL), 0);
  ck_assert_int_eq(catalog_diff(base, cluster, NULL, NULL), 1);
  ck_assert_int_eq(catalog_diff(base, delta, NULL, NULL), 1);
  catalog_unref(base);
  catalog_unref(same);
  catalog_unref(cluster);
  catalog_unref(delta);
#undef RDS_TMPL
}
END_TEST

START_TEST(ynode_equal_is_by_value) {
  struct ydoc *d;
  struct xds_err err;
  const char *text = "a: {x: 1, y: [a, 'b']}\n"
                     "b:\n  x: 1\n  y:\n  - \"a\"\n  - b\n"
                     "c: {x: '1', y: [a, b]}\n"
                     "d: {y: [a, b], x: 1}\n"
                     "e: {x: 1, y: [a, b], z: null}\n";

  ck_assert_int_eq(ydoc_parse("t", text, strlen(text), &d, &err), 0);
  {
    const struct ynode *r = ydoc_root(d, 0);
    const struct ynode *a = ynode_map_get(r, "a"), *b = ynode_map_get(r, "b");

    ck_assert(ynode_equal(a, b)); /* flow vs block, quoting of strings */
    ck_assert(!ynode_equal(a, ynode_map_get(r, "c"))); /* "1" is not 1 */
    ck_assert(!ynode_equal(a, ynode_map_get(r, "d"))); /* key order */
    ck_assert(!ynode_equal(a, ynode_map_get(r, "e")));
    ck_assert(ynode_equal(NULL, NULL));
    ck_assert(!ynode_equal(a, NULL));
  }
  ydoc_free(d);
}
END_TEST

Suite *store_watch_suite(void) {
  Suite *s = suite_create("store_watch");
  TCase *tc;

  tc = tcase_create("save_patterns");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, in_place_write);
  tcase_add_test(tc, editor_rename_over);
  tcase_add_test(tc, mv_into_place_and_out);
  tcase_add_test(tc, configmap_symlink_swap);
  tcase_add_test(tc, single_file_symlink_switch);
  tcase_add_test(tc, directory_created_later);
  tcase_add_test(tc, store_path_created_later);
  tcase_add_test(tc, delete_document_and_file);
  tcase_add_test(tc, truncated_mid_edit_then_fixed);
  tcase_add_test(tc, broken_document_keeps_last_good_then_delete_removes);
  suite_add_tcase(s, tc);

  tc = tcase_create("timing");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, burst_is_one_reload);
  tcase_add_test(tc, trigger_forces_a_reload);
  tcase_add_test(tc, unrelated_and_unchanged_writes_deliver_nothing);
  tcase_add_test(tc, too_many_directories);
  suite_add_tcase(s, tc);

  tc = tcase_create("hooks_and_cache");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, hook_rejects_like_an_invalid_document);
  tcase_add_test(tc, watcher_passes_hooks);
  tcase_add_test(tc, cache_reuses_unchanged_files_and_sees_same_size_edits);
  suite_add_tcase(s, tc);

  tc = tcase_create("diff");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, diff_reports_each_change_in_order);
  tcase_add_test(tc, diff_compares_every_field_but_not_locations);
  tcase_add_test(tc, diff_sees_rds_source);
  tcase_add_test(tc, ynode_equal_is_by_value);
  suite_add_tcase(s, tc);
  return s;
}
