/*
 * check_ctl.c: wasmxdsctl against a real etcd (issue 14, item 8).
 *
 * Each test starts its own etcd (tests/helpers/etcd_proc.h) on free
 * loopback ports with a temporary data directory, runs the built
 * wasmxdsctl ($WASMXDSCTL, else $WASMXDS_BUILDDIR/wasmxdsctl) through the
 * shell with its output in files of that directory, and checks exit
 * statuses, output and what etcd holds afterwards (the store's revision
 * tells whether anything was written). Covered: apply writes all its
 * documents in one transaction or none (a stale "# mod_revision" among
 * fresh documents; a conflict found by the transaction itself; more
 * documents than one transaction may carry); list refuses an unknown
 * kind; get of several resources prints one stream apply takes back;
 * --dry-run says per document created / configured / unchanged; -V.
 *
 * Skipped (exit 77) without /usr/bin/etcd.
 */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "config.h"
#include "store/etcd_client.h"
#include "store/etcd_config.h"
#include "tests/helpers/etcd_proc.h"
#include "tests/testkit.h"

#define PREFIX "/wx"
#define EXT_KEY(name) PREFIX "/WasmExtension/acme/" name

static struct etcd_proc etcd;
static char ctl[1024]; /* "wasmxdsctl --store etcd://.../wx" */
static char d[300];    /* etcd's temporary directory, for files */

/* Writes text to d/name. */
static void put_file(const char *name, const char *text) {
  char path[400];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", d, name);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fputs(text, f) >= 0, 1);
  ck_assert_int_eq(fclose(f), 0);
}

/* The content of d/name (static; at most 64 KiB). */
static const char *file_text(const char *name) {
  static char buf[65536];
  char path[400];
  FILE *f;
  size_t n;

  snprintf(path, sizeof(path), "%s/%s", d, name);
  f = fopen(path, "r");
  ck_assert_msg(f != NULL, "%s missing", path);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

#define ck_file_has(name, text)                                                \
  ck_assert_msg(strstr(file_text(name), (text)) != NULL,                       \
                "%s lacks \"%s\":\n%s", (name), (text), file_text(name))
#define ck_file_lacks(name, text)                                              \
  ck_assert_msg(strstr(file_text(name), (text)) == NULL, "%s has \"%s\":\n%s", \
                (name), (text), file_text(name))

/* Runs a shell command built from fmt in d; returns its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char cmd[8192];
  int n, st;
  va_list ap;

  n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", d);
  va_start(ap, fmt);
  vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
  va_end(ap);
  st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* What `get --raw` prints for one resource, or "" when it is not found. */
static const char *stored(const char *ref) {
  if (run("%s get --raw %s >stored.out 2>/dev/null", ctl, ref) != 0)
    return "";
  return file_text("stored.out");
}

static void setup(void) {
  const char *bin = getenv("WASMXDSCTL"), *bdir = getenv("WASMXDS_BUILDDIR");
  char dflt[700];

  xds_log_set_level(XDS_LOG_WARN);
  if (bin == NULL) {
    ck_assert_msg(bdir != NULL, "WASMXDS_BUILDDIR unset (run by make check)");
    snprintf(dflt, sizeof(dflt), "%s/wasmxdsctl", bdir);
    bin = dflt;
  }
  etcd_proc_start(&etcd, 0, NULL);
  snprintf(ctl, sizeof(ctl), "%s --store etcd://%s" PREFIX, bin, etcd.endpoint);
  snprintf(d, sizeof(d), "%s", etcd.dir);
}

static void teardown(void) {
  etcd_proc_stop(&etcd);
}

/* ---- apply: all or none ---- */

/* The report's case: a fresh document and one whose "# mod_revision" is
 * outdated, applied together, write nothing. */
START_TEST(apply_fresh_and_stale_writes_nothing) {
  long long rev;

  put_file("a.yaml", tk_ext_doc("a", 1));
  ck_assert_int_eq(run("%s apply -f a.yaml >out0 2>&1", ctl), 0);
  ck_assert_int_eq(run("%s get WasmExtension/acme/a >a-got.yaml", ctl), 0);
  /* Someone else changes a meanwhile. */
  put_file("a2.yaml", tk_ext_doc("a", 2));
  ck_assert_int_eq(run("%s apply -f a2.yaml >out1 2>&1", ctl), 0);
  /* Our edit of what we got is now stale. */
  ck_assert_int_eq(
      run("sed 's/priority: 1/priority: 3/' a-got.yaml >stale.yaml"), 0);
  put_file("fresh.yaml", tk_ext_doc("fresh", 5));
  rev = etcd_proc_revision(&etcd);
  ck_assert_int_eq(run("%s apply -f fresh.yaml -f stale.yaml >out2 2>&1", ctl),
                   3);
  ck_file_has("out2", "conflict on " EXT_KEY("a"));
  ck_file_has("out2", "nothing was written");
  ck_file_lacks("out2", "created");
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev);
  ck_assert_str_eq(stored("WasmExtension/acme/fresh"), "");
  ck_assert_ptr_nonnull(strstr(stored("WasmExtension/acme/a"), "priority: 2"));

  /* Without the stale one, the others go in one transaction: one
   * revision for all of them. */
  put_file("t.yaml", tk_tmpl_doc("t", 8080));
  ck_assert_int_eq(run("%s apply -f fresh.yaml -f t.yaml -f a-got.yaml "
                       ">out3 2>&1",
                       ctl),
                   3);
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev);
  ck_assert_int_eq(run("%s apply -f fresh.yaml -f t.yaml >out4 2>&1", ctl), 0);
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev + 1);
  {
    char want[160];

    snprintf(want, sizeof(want),
             "created (key " EXT_KEY("fresh") ", "
                                              "mod_revision %lld)",
             rev + 1);
    ck_file_has("out4", want);
    snprintf(want, sizeof(want),
             "created (key " PREFIX "/ListenerTemplate/t, "
             "mod_revision %lld)",
             rev + 1);
    ck_file_has("out4", want);
  }
}
END_TEST

/* A conflict only the transaction sees (the key changed after apply read
 * the store): etcd_client_put_all_if() writes nothing and names it. */
START_TEST(transaction_conflict_writes_nothing) {
  struct etcd_config c;
  struct etcd_client *cl = NULL;
  struct xds_err err = {0, ""};
  struct etcd_put_if v[3];
  struct etcd_kv kv;
  int64_t rev = 0, r0, r1;
  int found;
  const char *x = tk_ext_doc("x", 1), *y = tk_ext_doc("y", 1),
             *z = tk_ext_doc("z", 1);

  etcd_config_init(&c);
  {
    char url[200];

    snprintf(url, sizeof(url), "etcd://%s" PREFIX, etcd.endpoint);
    ck_assert_int_eq(etcd_config_parse_url(url, &c, &err), 0);
  }
  ck_assert_int_eq(etcd_config_finish(&c, &err), 0);
  ck_assert_int_eq(etcd_client_new(&c, &cl, &err), 0);
  ck_assert_int_eq(
      etcd_client_put_if(cl, EXT_KEY("x"), x, strlen(x), 0, &r0, &err), 0);
  ck_assert_int_eq(
      etcd_client_put_if(cl, EXT_KEY("x"), y, strlen(y), r0, &r1, &err), 0);
  memset(v, 0, sizeof(v));
  v[0] =
      (struct etcd_put_if){.key = EXT_KEY("new"), .value = z, .len = strlen(z)};
  v[1] = (struct etcd_put_if){
      .key = EXT_KEY("x"), .value = z, .len = strlen(z), .expect = r0};
  v[2] = (struct etcd_put_if){.key = EXT_KEY("x2"), .value = NULL, .expect = 0};
  ck_assert_int_eq(etcd_client_put_all_if(cl, v, 3, &rev, &err), XDS_ECONFLICT);
  ck_assert_msg(strstr(err.msg, "conflict on " EXT_KEY("x")) != NULL, "%s",
                err.msg);
  ck_assert_int_eq(v[0].conflict, 0);
  ck_assert_int_eq(v[1].conflict, 1);
  ck_assert_int_eq(v[1].now, r1);
  ck_assert_int_eq(v[2].conflict, 0);
  ck_assert_int_eq(rev, r1); /* nothing written */
  ck_assert_int_eq(etcd_client_get(cl, EXT_KEY("new"), &kv, &found, &rev, &err),
                   0);
  ck_assert_int_eq(found, 0);
  etcd_kv_cleanup(&kv);
  /* With the right revision, both are written at one revision, and the
   * compare-only key is not written. */
  v[1].expect = r1;
  ck_assert_int_eq(etcd_client_put_all_if(cl, v, 3, &rev, &err), 0);
  ck_assert_int_eq(rev, r1 + 1);
  ck_assert_int_eq(etcd_client_get(cl, EXT_KEY("new"), &kv, &found, &rev, &err),
                   0);
  ck_assert_int_eq(found, 1);
  ck_assert_int_eq(kv.mod_revision, r1 + 1);
  etcd_kv_cleanup(&kv);
  ck_assert_int_eq(etcd_client_get(cl, EXT_KEY("x2"), &kv, &found, &rev, &err),
                   0);
  ck_assert_int_eq(found, 0);
  etcd_kv_cleanup(&kv);
  /* A key created since: a create compare fails. */
  v[1].expect = r1 + 1;
  ck_assert_int_eq(etcd_client_put_all_if(cl, v, 2, &rev, &err), XDS_ECONFLICT);
  ck_assert_int_eq(v[0].conflict, 1);
  ck_assert_int_eq(v[0].now, r1 + 1);
  ck_assert_int_eq(v[1].conflict, 0);
  ck_assert_ptr_nonnull(strstr(err.msg, "created by another writer"));
  etcd_client_free(cl);
  etcd_config_cleanup(&c);
}
END_TEST

/* More documents than one etcd transaction may carry: refused whole. */
START_TEST(apply_too_many_documents_refused) {
  size_t cap = 200 * 600;
  char *text = malloc(cap);
  size_t off = 0;
  long long rev;

  ck_assert_ptr_nonnull(text);
  for (int i = 0; i < 129; i++) {
    char name[16];

    snprintf(name, sizeof(name), "m%03d", i);
    off += (size_t)snprintf(text + off, cap - off, "%s%s", i ? "---\n" : "",
                            tk_ext_doc(name, 1));
  }
  put_file("many.yaml", text);
  free(text);
  rev = etcd_proc_revision(&etcd);
  ck_assert_int_eq(run("%s apply -f many.yaml >out 2>&1", ctl), 2);
  ck_file_has("out", "129 documents");
  ck_file_has("out", "at most 128");
  ck_file_has("out", "nothing was written");
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev);
  /* 128 fit. */
  ck_assert_int_eq(run("sed '/^---$/,$!d' many.yaml | sed 1d >some.yaml && "
                       "%s apply -f some.yaml >out2 2>&1",
                       ctl),
                   0);
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev + 1);
  ck_assert_str_eq(stored("WasmExtension/acme/m000"), "");
  ck_assert_ptr_nonnull(strstr(stored("WasmExtension/acme/m128"), "m128"));
}
END_TEST

/* ---- list, get, --dry-run, -V ---- */

START_TEST(list_refuses_an_unknown_kind) {
  put_file("both.yaml", tk_ext_doc("e1", 1));
  ck_assert_int_eq(run("%s apply -f both.yaml >/dev/null 2>&1", ctl), 0);
  put_file("t.yaml", tk_tmpl_doc("t1", 8080));
  ck_assert_int_eq(run("%s apply -f t.yaml >/dev/null 2>&1", ctl), 0);
  ck_assert_int_eq(run("%s list Gateway >out 2>err", ctl), 2);
  ck_file_has("err", "unknown kind \"Gateway\"");
  ck_assert_str_eq(file_text("out"), "");
  ck_assert_int_eq(run("%s list wasmextension >out 2>&1", ctl), 0);
  ck_file_has("out", EXT_KEY("e1"));
  ck_file_lacks("out", "ListenerTemplate/t1");
  ck_assert_int_eq(run("%s list tmpl >out 2>&1", ctl), 0);
  ck_file_has("out", PREFIX "/ListenerTemplate/t1");
  ck_file_lacks("out", EXT_KEY("e1"));
  ck_assert_int_eq(run("%s list >out 2>&1", ctl), 0);
  ck_file_has("out", PREFIX "/ListenerTemplate/t1");
  ck_file_has("out", EXT_KEY("e1"));
}
END_TEST

START_TEST(get_several_is_one_stream_apply_takes_back) {
  long long rev;

  put_file("two.yaml", tk_ext_doc("g1", 1));
  ck_assert_int_eq(run("cat two.yaml >all.yaml && echo --- >>all.yaml"), 0);
  put_file("two.yaml", tk_ext_doc("g2", 2));
  ck_assert_int_eq(run("cat two.yaml >>all.yaml"), 0);
  ck_assert_int_eq(run("%s apply -f all.yaml >out 2>&1", ctl), 0);
  ck_assert_int_eq(run("%s get WasmExtension/acme/g1 "
                       "organizations/acme/extensions/g2 >got.yaml 2>err",
                       ctl),
                   0);
  ck_file_has("got.yaml", "name: g1}\n");
  ck_file_has("got.yaml", "priority: 1\n---\n# key: " EXT_KEY("g2") "\n");
  /* The second document of a stream is stored without its "---". */
  ck_assert_int_eq(strncmp(stored("WasmExtension/acme/g2"), "apiVersion", 10),
                   0);
  rev = etcd_proc_revision(&etcd);
  ck_assert_int_eq(run("%s apply -f got.yaml >out2 2>&1", ctl), 0);
  ck_file_has("out2", "organizations/acme/extensions/g1 unchanged");
  ck_file_has("out2", "organizations/acme/extensions/g2 unchanged");
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev);
  /* --raw too; a missing one is reported, the others printed. */
  ck_assert_int_eq(run("%s get --raw ext/acme/g1 ext/acme/nope ext/acme/g2 "
                       ">raw.yaml 2>err",
                       ctl),
                   4);
  ck_file_has("err", "ext/acme/nope: not found");
  ck_file_has("raw.yaml", "priority: 1\n---\napiVersion");
  ck_file_lacks("raw.yaml", "# key");
}
END_TEST

START_TEST(dry_run_says_what_each_document_does) {
  long long rev;

  put_file("base.yaml", tk_ext_doc("same", 1));
  ck_assert_int_eq(run("cat base.yaml >start.yaml && echo --- >>start.yaml"),
                   0);
  put_file("base.yaml", tk_ext_doc("edited", 1));
  ck_assert_int_eq(run("cat base.yaml >>start.yaml"), 0);
  ck_assert_int_eq(run("%s apply -f start.yaml >out0 2>&1", ctl), 0);
  ck_assert_int_eq(run("%s get ext/acme/edited >edited.yaml", ctl), 0);
  put_file("same.yaml", tk_ext_doc("same", 1));
  put_file("new.yaml", tk_ext_doc("new", 1));
  ck_assert_int_eq(
      run("sed 's/priority: 1/priority: 7/' edited.yaml >edit2.yaml"), 0);
  rev = etcd_proc_revision(&etcd);
  ck_assert_int_eq(run("%s apply --dry-run -f same.yaml -f edit2.yaml "
                       "-f new.yaml >out 2>&1",
                       ctl),
                   0);
  ck_file_has("out", "WasmExtension organizations/acme/extensions/same "
                     "unchanged (dry run");
  ck_file_has("out", "WasmExtension organizations/acme/extensions/edited "
                     "configured (dry run");
  ck_file_has("out", "WasmExtension organizations/acme/extensions/new "
                     "created (dry run");
  ck_assert_int_eq(etcd_proc_revision(&etcd), rev);
  ck_assert_str_eq(stored("ext/acme/new"), "");
  /* Once edit2 is applied, the same edit is stale for a dry run too. */
  ck_assert_int_eq(run("%s apply -f edit2.yaml >out1 2>&1", ctl), 0);
  ck_file_has("out1", "edited configured");
  ck_assert_int_eq(run("sed 's/priority: 7/priority: 8/' edit2.yaml "
                       ">edit3.yaml && "
                       "%s apply --dry-run -f edit3.yaml >out2 2>&1",
                       ctl),
                   3);
  ck_file_has("out2", "conflict on " EXT_KEY("edited"));
}
END_TEST

START_TEST(version_flag) {
  char want[64];

  snprintf(want, sizeof(want), "wasmxdsctl %s", PACKAGE_VERSION);
  ck_assert_int_eq(run("%s -V >v1 2>&1", ctl), 0);
  ck_file_has("v1", want);
  ck_assert_int_eq(run("%s --version >v2 2>&1", ctl), 0);
  ck_file_has("v2", want);
}
END_TEST

static Suite *ctl_suite(void) {
  Suite *s = suite_create("ctl");
  TCase *tc = tcase_create("etcd");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, apply_fresh_and_stale_writes_nothing);
  tcase_add_test(tc, transaction_conflict_writes_nothing);
  tcase_add_test(tc, apply_too_many_documents_refused);
  tcase_add_test(tc, list_refuses_an_unknown_kind);
  tcase_add_test(tc, get_several_is_one_stream_apply_takes_back);
  tcase_add_test(tc, dry_run_says_what_each_document_does);
  tcase_add_test(tc, version_flag);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (!etcd_proc_available()) {
    fprintf(stderr, "check_ctl: /usr/bin/etcd or etcdctl missing; "
                    "skipped (install etcd-server and etcd-client)\n");
    return 77;
  }
  return tk_run_suite(ctl_suite());
}
