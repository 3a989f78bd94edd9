/*
 * check_etcd_oom.c: allocation-failure sweeps over the etcd store's
 * decoding (store/etcd_proto.h, store/etcd_store.h).
 *
 * Each sweep runs one operation with the 1st, 2nd, ... Nth allocation
 * failing (base/alloc.h, xds_alloc_fail_at) until a run reaches no Nth
 * allocation. A run with a failed allocation must return XDS_ENOMEM and
 * hand out nothing; the catalog already built (the one being served) must
 * still hold what it held, and the store must afterwards build exactly
 * what a store that never saw a failure builds (records and problems).
 * Under the ASan build nothing may leak. A failure names the N that
 * reproduces it; ETCD_OOM_AT=N runs that one alone.
 *
 * The operations: etcd_store_build over changed values (a valid update,
 * a broken key whose last good record is kept, a new template, a delete);
 * etcd_store_put of a new value; etcd_parse_kv of a gateway kv object.
 */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "store/catalog.h"
#include "store/etcd_proto.h"
#include "store/etcd_store.h"
#include "store/problems.h"

#define PFX "/wasmxds"
#define EXT(org, name, extra)                                                  \
  "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"             \
  "metadata: {organization: " org ", name: " name "}\n"                        \
  "spec: {url: file:///w/" name ".wasm" extra "}\n"
#define TMPL(name, port)                                                       \
  "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                        \
  "metadata: {name: " name "}\nspec:\n  port: " port "\n"                      \
  "  direction: INBOUND\n  route: {cluster: app}\n  httpFilters:\n"            \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

struct kv {
  const char *key, *value; /* value NULL: a delete */
};

/* What is served first. */
static const struct kv V1[] = {
    {PFX "/WasmExtension/acme/a", EXT("acme", "a", ", config: {v: 1}")},
    {PFX "/WasmExtension/acme/b", EXT("acme", "b", ", phase: AUTHZ")},
    {PFX "/WasmExtension/acme/gone", EXT("acme", "gone", "")},
    {PFX "/ListenerTemplate/in", TMPL("in", "15006")},
    {NULL, NULL}};
/* The change the sweeps build: a's config, b broken (its last good record
 * stays, with a warning), gone deleted, a new template and extension. */
static const struct kv V2[] = {
    {PFX "/WasmExtension/acme/a",
     EXT("acme", "a", ", config: {v: 2, list: [1, '2', true]}")},
    {PFX "/WasmExtension/acme/b", EXT("acme", "b", ", phase: NOPE")},
    {PFX "/WasmExtension/acme/gone", NULL},
    {PFX "/WasmExtension/acme/c",
     EXT("acme", "c", ", allowedIn: [organizations/acme/tenants/p]")},
    {PFX "/ListenerTemplate/out", TMPL("out", "15001")},
    {NULL, NULL}};

static void apply(struct etcd_store *s, const struct kv *v, int64_t rev) {
  for (; v->key != NULL; v++) {
    if (v->value == NULL)
      etcd_store_delete(s, v->key);
    else
      ck_assert_int_eq(
          etcd_store_put(s, v->key, v->value, strlen(v->value), rev), 0);
  }
}

/* A catalog and its problems as text (libc's allocator: not counted). */
struct built {
  struct catalog *cat;
  char *problems;
};

static char *problems_text(const struct problems *pb) {
  struct xds_buf b;
  char *out;

  xds_buf_init(&b, 1u << 20);
  for (size_t i = 0; i < problems_count(pb); i++) {
    ck_assert_int_eq(problem_format(problems_at(pb, i), &b), 0);
    ck_assert_int_eq(xds_buf_putc(&b, '\n'), 0);
  }
  out = strdup(b.data != NULL ? b.data : "");
  xds_buf_cleanup(&b);
  ck_assert_ptr_nonnull(out);
  return out;
}

static void built_cleanup(struct built *b) {
  catalog_unref(b->cat);
  free(b->problems);
  b->cat = NULL;
  b->problems = NULL;
}

static int same_catalog(const struct catalog *a, const struct catalog *b) {
  if (catalog_ext_count(a) != catalog_ext_count(b) ||
      catalog_tmpl_count(a) != catalog_tmpl_count(b))
    return 0;
  for (size_t i = 0; i < catalog_ext_count(a); i++)
    if (!catalog_ext_equal(catalog_ext_at(a, i), catalog_ext_at(b, i)))
      return 0;
  for (size_t i = 0; i < catalog_tmpl_count(a); i++)
    if (!catalog_tmpl_equal(catalog_tmpl_at(a, i), catalog_tmpl_at(b, i)))
      return 0;
  return 1;
}

/* A store holding V1, and what it builds (the served catalog). */
static struct etcd_store *store_v1(struct built *served) {
  struct etcd_store *s = etcd_store_new(PFX, NULL);
  struct problems pb;

  ck_assert_ptr_nonnull(s);
  apply(s, V1, 1);
  problems_init(&pb, 100);
  ck_assert_int_eq(etcd_store_build(s, &served->cat, &pb), 0);
  served->problems = problems_text(&pb);
  problems_cleanup(&pb);
  return s;
}

static struct built ref_v1, ref_v2;

static void setup(void) {
  struct etcd_store *s;
  struct problems pb;

  xds_log_set_level(XDS_LOG_ERROR);
  s = store_v1(&ref_v1);
  apply(s, V2, 2);
  problems_init(&pb, 100);
  ck_assert_int_eq(etcd_store_build(s, &ref_v2.cat, &pb), 0);
  ref_v2.problems = problems_text(&pb);
  problems_cleanup(&pb);
  etcd_store_free(s);
  /* The sweep's change is one: a, c, b's last good record; out and in. */
  ck_assert_uint_eq(catalog_ext_count(ref_v2.cat), 3);
  ck_assert_uint_eq(catalog_tmpl_count(ref_v2.cat), 2);
  ck_assert_ptr_nonnull(strstr(ref_v2.problems, "NOPE"));
}

static void teardown(void) {
  built_cleanup(&ref_v1);
  built_cleanup(&ref_v2);
}

/* Runs step(n) for n = 1, 2, ... until it reports that allocation n was
 * not reached (or only ETCD_OOM_AT); checks that it tested something. */
static void sweep(const char *what, int (*step)(long n), long min_steps) {
  const char *only = getenv("ETCD_OOM_AT");
  long n;

  if (only != NULL) {
    step(strtol(only, NULL, 10));
    return;
  }
  for (n = 1; step(n); n++)
    ;
  if (getenv("ETCD_OOM_VERBOSE") != NULL)
    fprintf(stderr, "%s: %ld allocations swept\n", what, n - 1);
  ck_assert_msg(n > min_steps, "%s: only %ld allocations, expected more", what,
                n - 1);
}

/* After a failure: what was served is intact, and the store, built again
 * with no failure, gives exactly the reference. */
static void still_good(struct etcd_store *s, const struct built *served,
                       const char *what, long n) {
  struct built again = {NULL, NULL};
  struct problems pb;

  ck_assert_msg(same_catalog(served->cat, ref_v1.cat),
                "%s: allocation %ld failed: the served catalog changed "
                "(reproduce: ETCD_OOM_AT=%ld)",
                what, n, n);
  problems_init(&pb, 100);
  ck_assert_int_eq(etcd_store_build(s, &again.cat, &pb), 0);
  again.problems = problems_text(&pb);
  problems_cleanup(&pb);
  ck_assert_msg(same_catalog(again.cat, ref_v2.cat),
                "%s: allocation %ld failed: the next build differs from the "
                "reference (reproduce: ETCD_OOM_AT=%ld)",
                what, n, n);
  ck_assert_msg(strcmp(again.problems, ref_v2.problems) == 0,
                "%s: allocation %ld failed: problems differ:\n%s\nexpected:\n"
                "%s(reproduce: ETCD_OOM_AT=%ld)",
                what, n, again.problems, ref_v2.problems, n);
  built_cleanup(&again);
}

/* ---- etcd_store_build over V2 ---- */

static int build_step(long n) {
  struct built served = {NULL, NULL};
  struct etcd_store *s = store_v1(&served);
  struct catalog *out = (struct catalog *)(uintptr_t)1;
  struct problems pb;
  long seen;
  int rc;

  apply(s, V2, 2);
  problems_init(&pb, 100);
  xds_alloc_fail_at(n);
  rc = etcd_store_build_ex(s, served.cat, &out, &pb);
  seen = xds_alloc_fail_at(0);
  problems_cleanup(&pb);
  if (rc < 0) {
    ck_assert_msg(seen >= n,
                  "etcd_store_build failed (%d) without a failed "
                  "allocation",
                  rc);
    ck_assert_msg(rc == XDS_ENOMEM,
                  "etcd_store_build: allocation %ld failed: returned %d "
                  "(reproduce: ETCD_OOM_AT=%ld)",
                  n, rc, n);
    ck_assert_msg(out == NULL,
                  "etcd_store_build: allocation %ld failed: *out is set "
                  "(reproduce: ETCD_OOM_AT=%ld)",
                  n, n);
  } else {
    /* Allocation n failed inside and was absorbed: the result must be
     * exactly the reference. */
    ck_assert_msg(same_catalog(out, ref_v2.cat),
                  "etcd_store_build: allocation %ld failed but it returned "
                  "0 with a different catalog (reproduce: ETCD_OOM_AT=%ld)",
                  n, n);
    catalog_unref(out);
  }
  still_good(s, &served, "etcd_store_build", n);
  etcd_store_free(s);
  built_cleanup(&served);
  return seen >= n;
}

START_TEST(build_sweep) {
  sweep("etcd_store_build", build_step, 50);
}
END_TEST

/* ---- etcd_store_put of a new value ---- */

static int put_step(long n) {
  struct built served = {NULL, NULL};
  struct etcd_store *s = store_v1(&served);
  const struct kv *v;
  long seen = 0;
  int failed = 0;

  /* Every put of V2, allocation n of the whole sequence failing; a put
   * that fails is repeated (as the watcher's re-list would). */
  xds_alloc_fail_at(n);
  for (v = V2; v->key != NULL; v++) {
    int rc;

    if (v->value == NULL) {
      etcd_store_delete(s, v->key);
      continue;
    }
    rc = etcd_store_put(s, v->key, v->value, strlen(v->value), 2);
    if (rc < 0) {
      seen += xds_alloc_fail_at(0);
      ck_assert_msg(rc == XDS_ENOMEM,
                    "etcd_store_put: allocation %ld failed: returned %d", n,
                    rc);
      failed = 1;
      ck_assert_int_eq(etcd_store_put(s, v->key, v->value, strlen(v->value), 2),
                       0);
    }
  }
  if (!failed)
    seen = xds_alloc_fail_at(0);
  still_good(s, &served, "etcd_store_put", n);
  etcd_store_free(s);
  built_cleanup(&served);
  return failed || seen >= n;
}

START_TEST(put_sweep) {
  sweep("etcd_store_put", put_step, 4);
}
END_TEST

/* ---- etcd_parse_kv ---- */

static int kv_step(long n) {
  static const char text[] =
      "{\"key\": \"L3dhc214ZHMvV2FzbUV4dGVuc2lvbi9hY21lL2E=\", "
      "\"value\": \"YXBpVmVyc2lvbjogdjEK\", \"create_revision\": \"3\", "
      "\"mod_revision\": \"9\", \"version\": \"2\"}";
  json_error_t jerr;
  json_t *obj = json_loads(text, 0, &jerr);
  struct xds_err err = {0, ""};
  struct etcd_kv kv;
  long seen;
  int rc;

  ck_assert_ptr_nonnull(obj);
  memset(&kv, 0, sizeof(kv));
  xds_alloc_fail_at(n);
  rc = etcd_parse_kv(obj, &kv, &err);
  seen = xds_alloc_fail_at(0);
  if (rc < 0) {
    ck_assert_msg(rc == XDS_ENOMEM, "etcd_parse_kv: allocation %ld: %d %s", n,
                  rc, err.msg);
  } else {
    ck_assert_str_eq(kv.key, PFX "/WasmExtension/acme/a");
    ck_assert_str_eq(kv.value, "apiVersion: v1\n");
    ck_assert_int_eq(kv.mod_revision, 9);
  }
  etcd_kv_cleanup(&kv);
  json_decref(obj);
  return seen >= n;
}

START_TEST(parse_kv_sweep) {
  sweep("etcd_parse_kv", kv_step, 2);
}
END_TEST

Suite *etcd_oom_suite(void) {
  Suite *s = suite_create("etcd_oom");
  TCase *tc = tcase_create("sweeps");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, build_sweep);
  tcase_add_test(tc, put_sweep);
  tcase_add_test(tc, parse_kv_sweep);
  suite_add_tcase(s, tc);
  return s;
}
