/*
 * check_store_walk.c: the "store_walk" suite: the directory walk of the
 * file store (store/file_store.c) and of its watcher (store/file_watch.c)
 * against hostile trees (issue 13 item 9): a symlink fan-out that names
 * the same directories 4^16 ways must be walked once per directory, with a
 * warning naming each path skipped, in bounded time; a tree with more
 * directories than FILE_STORE_MAX_DIRS is refused with an error naming
 * where the cap was hit.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/file_watch.h"
#include "store/problems.h"

#define EXT_DOC(name)                                                          \
  "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"             \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec: {url: oci://r.example/x:1}\n"

/* Levels and links per level of the fan-out: 4^16 paths, 17 directories. */
#define FAN_LEVELS 16
#define FAN_LINKS 4

static char tmp[256];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(p);
}

static void tmp_make(void) {
  snprintf(tmp, sizeof(tmp), "/tmp/check_walk.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void tmp_remove(void) {
  nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");

  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* tmp/store holds top.yaml and links s0..s3 -> tmp/l1; tmp/lK holds links
 * to tmp/l(K+1); tmp/l16 holds deep.yaml. Returns the store path. */
static const char *make_fanout(void) {
  static char store[300];
  char dir[700], link[800], target[700];

  snprintf(store, sizeof(store), "%s/store", tmp);
  ck_assert_int_eq(mkdir(store, 0700), 0);
  snprintf(dir, sizeof(dir), "%s/top.yaml", store);
  write_file(dir, EXT_DOC("top"));
  for (int k = 1; k <= FAN_LEVELS; k++) {
    snprintf(dir, sizeof(dir), "%s/l%d", tmp, k);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
  }
  snprintf(dir, sizeof(dir), "%s/l%d/deep.yaml", tmp, FAN_LEVELS);
  write_file(dir, EXT_DOC("deep"));
  for (int k = 0; k < FAN_LEVELS; k++) {
    if (k == 0)
      snprintf(dir, sizeof(dir), "%s", store);
    else
      snprintf(dir, sizeof(dir), "%s/l%d", tmp, k);
    snprintf(target, sizeof(target), "%s/l%d", tmp, k + 1);
    for (int i = 0; i < FAN_LINKS; i++) {
      snprintf(link, sizeof(link), "%s/s%d", dir, i);
      ck_assert_int_eq(symlink(target, link), 0);
    }
  }
  return store;
}

static size_t count_msgs(const struct problems *pb, const char *needle) {
  size_t n = 0;

  for (size_t i = 0; i < problems_count(pb); i++)
    if (strstr(pb->items[i].msg, needle) != NULL)
      n++;
  return n;
}

START_TEST(symlink_fanout_load) {
  const char *store;
  struct catalog *c = NULL;
  struct problems pb;
  struct xds_err err;
  double t0, ms;
  int rc;

  tmp_make();
  store = make_fanout();
  problems_init(&pb, 1000);
  t0 = now_ms();
  rc = file_store_load(store, NULL, &c, &pb, &err);
  ms = now_ms() - t0;
  ck_assert_msg(rc == 0, "%s", err.msg);
  printf("store_walk: fan-out of %d links x %d levels loaded in %.1f ms\n",
         FAN_LINKS, FAN_LEVELS, ms);
  ck_assert_msg(ms < 2000, "%.1f ms", ms);
  /* Both resources, each once (no duplicate errors). */
  ck_assert_uint_eq(catalog_ext_count(c), 2);
  ck_assert_uint_eq(pb.n_errors, 0);
  /* Each level's three other links are skipped with a warning that names
   * the link's path and the path the directory was read by. */
  ck_assert_uint_eq(count_msgs(&pb, "already read as"),
                    (size_t)FAN_LEVELS * (FAN_LINKS - 1));
  {
    char want[600];

    snprintf(want, sizeof(want), "%s/s1", store);
    for (size_t i = 0; i < problems_count(&pb); i++)
      if (strcmp(pb.items[i].source, want) == 0) {
        ck_assert_msg(strstr(pb.items[i].msg, "s0") != NULL, "%s",
                      pb.items[i].msg);
        want[0] = '\0';
      }
    ck_assert_msg(want[0] == '\0', "no warning for %s/s1", store);
  }
  catalog_unref(c);
  problems_cleanup(&pb);
  tmp_remove();
}
END_TEST

static void on_load(void *ctx, struct catalog *cat, const struct problems *pb) {
  (void)pb;
  *(size_t *)ctx = catalog_ext_count(cat);
  catalog_unref(cat);
}

START_TEST(symlink_fanout_watch) {
  const char *store;
  struct file_watch *w = NULL;
  struct file_watch_stats st;
  struct xds_err err;
  size_t n = 0;
  double t0, ms;

  tmp_make();
  store = make_fanout();
  t0 = now_ms();
  ck_assert_int_eq(file_watch_start(store, 30, NULL, on_load, &n, &w, &err), 0);
  ms = now_ms() - t0;
  printf("store_walk: watcher started on the fan-out in %.1f ms\n", ms);
  ck_assert_msg(ms < 2000, "%.1f ms", ms);
  ck_assert_uint_eq(n, 2);
  file_watch_get_stats(w, &st);
  /* The store's parent, the store and l1..l16, each once. */
  ck_assert_uint_le(st.watches, FAN_LEVELS + 2);
  /* A reload walks the same way. */
  t0 = now_ms();
  ck_assert_int_eq(file_watch_trigger(w), 0);
  for (int i = 0; i < 200; i++) {
    file_watch_get_stats(w, &st);
    if (st.loads >= 1)
      break;
    usleep(10000);
  }
  ck_assert_uint_ge(st.loads, 1);
  ck_assert_msg(st.last_load_ms < 2000, "%.1f ms", st.last_load_ms);
  file_watch_stop(w);
  tmp_remove();
}
END_TEST

START_TEST(directory_cap) {
  char store[300], dir[400];
  struct catalog *c = NULL;
  struct problems pb;
  struct xds_err err;
  int rc;

  tmp_make();
  snprintf(store, sizeof(store), "%s/store", tmp);
  ck_assert_int_eq(mkdir(store, 0700), 0);
  for (int i = 0; i <= FILE_STORE_MAX_DIRS; i++) {
    snprintf(dir, sizeof(dir), "%s/d%05d", store, i);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
  }
  problems_init(&pb, 100);
  rc = file_store_load(store, NULL, &c, &pb, &err);
  ck_assert_int_eq(rc, XDS_ETOOBIG);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(err.msg, "directories") != NULL, "%s", err.msg);
  ck_assert_msg(strstr(err.msg, store) != NULL, "%s", err.msg);
  problems_cleanup(&pb);
  /* The store directory counts: with it, FILE_STORE_MAX_DIRS is fine. */
  for (int i = FILE_STORE_MAX_DIRS - 1; i <= FILE_STORE_MAX_DIRS; i++) {
    snprintf(dir, sizeof(dir), "%s/d%05d", store, i);
    ck_assert_int_eq(rmdir(dir), 0);
  }
  problems_init(&pb, 100);
  rc = file_store_load(store, NULL, &c, &pb, &err);
  ck_assert_msg(rc == 0, "%s", err.msg);
  catalog_unref(c);
  problems_cleanup(&pb);
  tmp_remove();
}
END_TEST

Suite *store_walk_suite(void) {
  Suite *s = suite_create("store_walk");
  TCase *tc = tcase_create("walk");

  /* directory_cap makes and walks 4,097 directories: 14 s when the
   * machine is loaded as under make -j2 check (load 15 on 2 cores). */
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, symlink_fanout_load);
  tcase_add_test(tc, symlink_fanout_watch);
  tcase_add_test(tc, directory_cap);
  suite_add_tcase(s, tc);
  return s;
}
