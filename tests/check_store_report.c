/*
 * check_store_report.c: how a store load reports (issue 14, item 10):
 * a document's problems in the order of its lines and columns, whatever
 * order its fields were checked in, for the file store and the etcd
 * store's key table; a directory where a load finds no document says so.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "store/catalog.h"
#include "store/etcd_store.h"
#include "store/file_store.h"
#include "store/problems.h"

#define EXT_API "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"

/* Errors the decoder finds in another order than their lines: spec.url
 * (line 8) is checked before spec.phase (line 7). */
#define UNORDERED_DOC                                                          \
  EXT_API "metadata:\n"                                                        \
          "  organization: acme\n"                                             \
          "  name: a\n"                                                        \
          "spec:\n"                                                            \
          "  phase: NOPE\n"                                                    \
          "  url: ftp://x\n"                                                   \
          "  priority: high\n"                                                 \
          "  vmConfig:\n"                                                      \
          "    env:\n"                                                         \
          "    - name: \"\"\n"                                                 \
          "  match: {mode: WRONG}\n"

static char tmpdir[256];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_store_report.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(p);
}

static void remove_tmpdir(void) {
  nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/rel, in one of two static buffers. */
static const char *at(const char *rel) {
  static char path[2][512];
  static int next;
  char *p = path[next++ % 2];

  snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, rel);
  return p;
}

static void put(const char *rel, const char *text) {
  FILE *f = fopen(at(rel), "w");

  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static struct catalog *load(const char *path, struct problems *pb) {
  struct catalog *c = NULL;
  struct xds_err err = {0, ""};

  ck_assert_msg(file_store_load(path, NULL, &c, pb, &err) == 0, "%s", err.msg);
  return c;
}

/* Fails unless the problems from first on are in (source, line, column)
 * order. */
static void expect_sorted(const struct problems *pb, size_t first) {
  for (size_t i = first + 1; i < problems_count(pb); i++) {
    const struct problem *a = problems_at(pb, i - 1), *b = problems_at(pb, i);
    int s = strcmp(a->source, b->source);

    ck_assert_msg(
        s < 0 || (s == 0 && (a->line < b->line ||
                             (a->line == b->line && a->column <= b->column))),
        "%s before %s", a->where, b->where);
  }
}

START_TEST(a_documents_errors_by_line_and_column) {
  struct problems pb;
  struct catalog *c;
  const struct problem *pr;

  make_tmpdir();
  /* Two documents in one file, then another file whose extension
   * duplicates one of the first (a catalog error, found last). */
  put("a.yaml",
      UNORDERED_DOC "---\n" EXT_API "metadata: {organization: acme, name: b}\n"
                    "spec: {url: 'ftp://y', phase: BAD}\n"
                    "---\n" EXT_API "metadata: {organization: acme, name: ok}\n"
                    "spec: {url: oci://r.example/ok:1}\n");
  put("b.yaml", "# the same resource again\n" EXT_API
                "metadata: {organization: acme, name: ok}\n"
                "spec: {url: oci://r.example/ok:2}\n");
  problems_init(&pb, 100);
  c = load(tmpdir, &pb);
  ck_assert_uint_eq(pb.n_errors, 8);
  expect_sorted(&pb, 0);
  pr = problems_at(&pb, 0);
  ck_assert_str_eq(pr->path, "spec.phase");
  ck_assert_int_eq(pr->line, 7);
  ck_assert_int_eq(pr->column, 10);
  ck_assert_str_eq(problems_at(&pb, 1)->path, "spec.url");
  ck_assert_int_eq(problems_at(&pb, 1)->line, 8);
  /* The second document's two errors on one line: by column. */
  ck_assert_int_eq(problems_at(&pb, 5)->line, 18);
  ck_assert_int_eq(problems_at(&pb, 6)->line, 18);
  ck_assert_str_eq(problems_at(&pb, 5)->path, "spec.url");
  ck_assert_str_eq(problems_at(&pb, 6)->path, "spec.phase");
  ck_assert_str_eq(problems_at(&pb, 7)->source, at("b.yaml"));
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(etcd_key_errors_by_line_and_column) {
  struct etcd_store *s = etcd_store_new("/wx", NULL);
  struct catalog *c = NULL;
  struct problems pb;

  ck_assert_ptr_nonnull(s);
  problems_init(&pb, 100);
  ck_assert_int_eq(etcd_store_put(s, "/wx/WasmExtension/acme/a", UNORDERED_DOC,
                                  strlen(UNORDERED_DOC), 2),
                   0);
  ck_assert_int_eq(etcd_store_build(s, &c, &pb), 0);
  ck_assert_uint_eq(pb.n_errors, 5);
  expect_sorted(&pb, 0);
  ck_assert_str_eq(problems_at(&pb, 0)->where, "/wx/WasmExtension/acme/a:7:10");
  catalog_unref(c);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

static const struct problem *no_docs_warning(const struct problems *pb) {
  for (size_t i = 0; i < problems_count(pb); i++)
    if (strstr(problems_at(pb, i)->msg, "found no documents") != NULL)
      return problems_at(pb, i);
  return NULL;
}

START_TEST(a_store_without_documents_warns) {
  struct problems pb;
  struct catalog *c;
  const struct problem *w;

  make_tmpdir();
  problems_init(&pb, 100);
  /* Empty. */
  c = load(tmpdir, &pb);
  w = no_docs_warning(&pb);
  ck_assert_ptr_nonnull(w);
  ck_assert_int_eq(w->severity, PROBLEM_WARNING);
  ck_assert_str_eq(w->where, tmpdir);
  ck_assert_ptr_nonnull(strstr(w->msg, "no *.yaml or *.yml file"));
  ck_assert_uint_eq(pb.n_errors, 0);
  ck_assert_uint_eq(pb.n_warnings, 1);
  catalog_unref(c);
  /* Files the walk skips, and YAML files with only empty documents. */
  put("notes.txt", EXT_API);
  put("a.yaml", "# nothing yet\n---\n");
  problems_reset(&pb);
  c = load(tmpdir, &pb);
  w = no_docs_warning(&pb);
  ck_assert_ptr_nonnull(w);
  ck_assert_ptr_nonnull(strstr(w->msg, "in its 1 YAML files"));
  catalog_unref(c);
  /* A file named directly is the operator's explicit choice: no warning. */
  problems_reset(&pb);
  c = load(at("a.yaml"), &pb);
  ck_assert_ptr_null(no_docs_warning(&pb));
  catalog_unref(c);
  /* One document, even a broken one, is not "no documents". */
  put("b.yaml", EXT_API "metadata: {organization: acme, name: b}\n"
                        "spec: {url: 'ftp://x'}\n");
  problems_reset(&pb);
  c = load(tmpdir, &pb);
  ck_assert_ptr_null(no_docs_warning(&pb));
  ck_assert_uint_eq(pb.n_errors, 1);
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

Suite *store_report_suite(void) {
  Suite *s = suite_create("store_report");
  TCase *tc = tcase_create("report");

  tcase_add_test(tc, a_documents_errors_by_line_and_column);
  tcase_add_test(tc, etcd_key_errors_by_line_and_column);
  tcase_add_test(tc, a_store_without_documents_warns);
  suite_add_tcase(s, tc);
  return s;
}
