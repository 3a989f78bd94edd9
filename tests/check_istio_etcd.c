/*
 * check_istio_etcd.c: WasmPlugins in the etcd store, offline: their key
 * layout <prefix>/WasmPlugin/<namespace>/<name>, the references
 * wasmxdsctl accepts for them, and last-good retention per key.
 */
#include <check.h>
#include <string.h>

#include "base/alloc.h"
#include "store/catalog.h"
#include "store/etcd_store.h"
#include "store/problems.h"

#include "check_istio.h"
#include "storekit.h"

#define PLUGIN_DOC(ns, name, extra)                                            \
  "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"               \
  "metadata: {name: " name ", namespace: " ns ", uid: x}\n"                    \
  "spec:\n  url: oci://r.example/" name ":1\n" extra "status: {}\n"

#define PUT(s, k, v) ck_assert_int_eq(etcd_store_put(s, k, v, strlen(v), 1), 0)

static int has_problem(const struct problems *pb, enum problem_severity sev,
                       const char *source, const char *text) {
  for (size_t i = 0; i < problems_count(pb); i++) {
    const struct problem *p = problems_at(pb, i);

    if (p->severity == sev && strcmp(p->source, source) == 0 &&
        strstr(p->msg, text) != NULL)
      return 1;
  }
  return 0;
}

START_TEST(keys_and_retention) {
  struct etcd_store *s = etcd_store_new("/w", NULL);
  const char *ka = "/w/WasmPlugin/shop/authn";
  const char *kb = "/w/WasmPlugin/elsewhere/b";
  struct problems pb;
  struct catalog *c;
  const struct wasm_ext *e;

  problems_init(&pb, 100);
  PUT(s, ka, PLUGIN_DOC("shop", "authn", "  phase: AUTHN\n"));
  PUT(s, kb, PLUGIN_DOC("bookinfo", "b", ""));
  c = sk_etcd_build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 2);
  e = catalog_ext_find(c, "extensions.istio.io/wasmplugin/shop.authn");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq(e->loc.source, ka);
  ck_assert_int_eq(e->phase, WASM_PHASE_AUTHN);
  /* Served from a key that is not its own, with a warning naming it. */
  ck_assert(has_problem(&pb, PROBLEM_WARNING, kb,
                        "WasmPlugin \"extensions.istio.io/wasmplugin/"
                        "bookinfo.b\" belongs under the key "
                        "/w/WasmPlugin/bookinfo/b"));
  ck_assert_uint_eq(pb.n_errors, 0);
  catalog_unref(c);

  /* A broken value keeps the last good plugin, with a located error. */
  PUT(s, ka, PLUGIN_DOC("shop", "authn", "  phase: NOPE\n"));
  c = sk_etcd_build(s, &pb);
  e = catalog_ext_find(c, "extensions.istio.io/wasmplugin/shop.authn");
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->phase, WASM_PHASE_AUTHN);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, ka, "\"NOPE\" is not one of"));
  ck_assert(has_problem(&pb, PROBLEM_WARNING, ka,
                        "keeping the last good version of WasmPlugin "
                        "\"extensions.istio.io/wasmplugin/shop.authn\""));
  catalog_unref(c);
  ck_assert_int_eq(etcd_store_delete(s, ka), 1);
  c = sk_etcd_build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  catalog_unref(c);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

START_TEST(references) {
  static const struct {
    const char *ref, *key;
  } ok[] = {
      {"WasmPlugin/shop/authn", "/p/WasmPlugin/shop/authn"},
      {"wasmplugin/shop/authn", "/p/WasmPlugin/shop/authn"},
      {"extensions.istio.io/wasmplugin/shop.authn", "/p/WasmPlugin/shop/authn"},
      {"extensions.istio.io/wasmplugin/shop.a.b.c", "/p/WasmPlugin/shop/a.b.c"},
  };
  static const char *const bad[] = {"WasmPlugin/shop", "WasmPlugin/shop/a/b",
                                    "extensions.istio.io/wasmplugin/noname",
                                    "extensions.istio.io/wasmplugin/shop./x",
                                    "extensions.istio.io/wasmplugin/sh/op.x"};
  struct xds_err err = {0, ""};
  char *k;

  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    ck_assert_int_eq(etcd_store_key_of_ref("/p", ok[i].ref, &k, &err), 0);
    ck_assert_str_eq(k, ok[i].key);
    xds_free(k);
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_msg(etcd_store_key_of_ref("/p", bad[i], &k, &err) == XDS_EINVAL,
                  "%s", bad[i]);
    ck_assert_msg(strstr(err.msg, "NAMESPACE") != NULL, "%s", err.msg);
  }
}
END_TEST

TCase *istio_etcd_tcase(void) {
  TCase *tc = tcase_create("etcd");

  tcase_add_test(tc, keys_and_retention);
  tcase_add_test(tc, references);
  return tc;
}
