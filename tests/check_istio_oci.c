/*
 * check_istio_oci.c: sha256 on OCI images. Istio compares a WasmPlugin's
 * sha256 with the image manifest's digest; the WasmExtension reference
 * means the module's. The resolver accepts either, says which matched
 * (module_info.sha_match, "sha256_matched" on /debug/modules), and
 * refuses any other value; a manifest-pinned module is answered from a
 * warm cache without the network. Runs a real registry (docker-registry)
 * on loopback.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "modules/fetch.h"
#include "modules/resolver.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/registry.h"

#include "check_istio.h"

#define WAIT_MS 20000

static struct registry *reg;
static char mod_hex[65], man_hex[65];

static int blob(const char *mt, const void *data, size_t len, char *desc,
                size_t cap) {
  char hex[65];

  if (registry_push_blob(reg, "plugin", data, len, hex) < 0)
    return -1;
  snprintf(desc, cap,
           "{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":%zu}", mt,
           hex, len);
  return 0;
}

static void setup(void) {
  const char *cfg = "{\"type\":\"envoy_proxy\",\"abiVersions\":[\"v0.2.1\"],"
                    "\"config\":{\"rootIds\":[\"root\"]}}";
  unsigned char *m;
  char cdesc[512], ldesc[512], json[2048];

  ck_assert_int_eq(fetch_global_init(), 0);
  reg = registry_start(NULL, NULL);
  ck_assert_ptr_nonnull(reg);
  m = mt_wasm(12000, 15);
  mt_sha(m, 12000, mod_hex);
  ck_assert_int_eq(blob("application/vnd.module.wasm.config.v1+json", cfg,
                        strlen(cfg), cdesc, sizeof(cdesc)),
                   0);
  ck_assert_int_eq(blob("application/vnd.module.wasm.content.layer.v1+wasm", m,
                        12000, ldesc, sizeof(ldesc)),
                   0);
  xds_free(m);
  snprintf(json, sizeof(json),
           "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
           "manifest.v1+json\",\"config\":%s,\"layers\":[%s]}",
           cdesc, ldesc);
  ck_assert_int_eq(
      registry_push_manifest(reg, "plugin", "1.0",
                             "application/vnd.oci.image.manifest.v1+json", json,
                             man_hex),
      0);
  ck_assert_str_ne(mod_hex, man_hex);
}

static void teardown(void) {
  registry_stop(reg);
}

static void config(struct resolver_config *cfg, const char *dir) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->cache_dir = dir;
  cfg->workers = 2;
  cfg->fetch_timeout_ms = 10000;
  cfg->backoff_base_ms = 200;
  cfg->backoff_max_ms = 1000;
}

START_TEST(manifest_or_module_digest) {
  static const char other[] =
      "0000000000000000000000000000000000000000000000000000000000000000";
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[3];
  struct module_info mi;
  char dir[256], url[512];
  long before;

  snprintf(url, sizeof(url), "oci://%s/plugin:1.0", registry_host(reg));
  x[0] = mt_ext("by-manifest", url, man_hex, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[1] = mt_ext("by-module", url, mod_hex, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[2] = mt_ext("by-neither", url, other, NULL, WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 3), 0);
  ck_assert_msg(mt_wait(r, x[0]->fqn, MODULE_READY, 0, WAIT_MS, &mi), "%s",
                mi.reason ? mi.reason : "");
  /* Served is always the module (Envoy verifies its sha256). */
  ck_assert_str_eq(mi.sha256, mod_hex);
  ck_assert_int_eq(mi.sha_match, MODULE_SHA_MANIFEST);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, x[1]->fqn, MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, mod_hex);
  ck_assert_int_eq(mi.sha_match, MODULE_SHA_MODULE);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, x[2]->fqn, MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(mi.reason != NULL &&
                    strstr(mi.reason, "is neither the module's sha256") !=
                        NULL &&
                    strstr(mi.reason, man_hex) != NULL,
                "%s", mi.reason ? mi.reason : "");
  ck_assert_int_eq(mi.sha_match, MODULE_SHA_NONE);
  module_info_cleanup(&mi);
  resolver_free(r);

  /* A warm cache answers the manifest pin at once, without the network. */
  before = registry_requests(reg);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 1), 0);
  ck_assert_int_eq(resolver_lookup(r, x[0]->fqn, &mi), 0);
  ck_assert_int_eq(mi.state, MODULE_READY);
  ck_assert_int_eq(mi.sha_match, MODULE_SHA_MANIFEST);
  ck_assert_str_eq(mi.sha256, mod_hex);
  module_info_cleanup(&mi);
  usleep(300000);
  ck_assert_int_eq(registry_requests(reg), before);
  resolver_free(r);
  for (int k = 0; k < 3; k++)
    wasm_ext_free(x[k]);
  mt_rmrf(dir);
}
END_TEST

TCase *istio_oci_tcase(void) {
  TCase *tc = tcase_create("oci");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, manifest_or_module_digest);
  return tc;
}
