/*
 * check_modules_oom.c: allocation-failure sweeps over the module
 * resolver (modules/resolver.h), as check_etcd_oom.c does for the etcd
 * store: resolver_update and resolver_lookup run with the 1st, 2nd, ...
 * Nth allocation failing (base/alloc.h) until a run reaches no Nth
 * allocation. A failed resolver_update returns XDS_ENOMEM and leaves the
 * previous set served (the cached module still READY with its digest,
 * the new extensions unknown); one that returns 0 gives exactly the
 * reference results. Nothing may leak under the ASan build. The set
 * swept is answered without a worker (a cached module and a file://
 * module), so the workers stay idle and only the call under test
 * allocates. MODULES_OOM_AT=N runs one N.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "modules/resolver.h"
#include "store/model.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/origin.h"

#define FQN(name) "organizations/org/extensions/" name

static char dir[256], hex[65];
static struct wasm_ext *x[2];

static void config(struct resolver_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->cache_dir = dir;
  cfg->workers = 2;
  cfg->fetch_timeout_ms = 3000;
  cfg->backoff_base_ms = 100;
  cfg->backoff_max_ms = 400;
  cfg->always_interval_s = -1;
}

/* Fetches the module once from an origin, so the cache answers it. */
static void setup(void) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(3000, 5);
  char url[256];
  struct resolver_config cfg;
  struct resolver *r;
  struct module_info mi;

  xds_log_set_level(XDS_LOG_ERROR);
  mt_sha(m, 3000, hex);
  origin_set(o, "/m.wasm", 200, "application/wasm", m, 3000);
  snprintf(url, sizeof(url), "%s/m.wasm", origin_base(o));
  mt_tmpdir(dir, sizeof(dir));
  x[0] = mt_ext("cached", url, NULL, NULL, WASM_PULL_IF_NOT_PRESENT, NULL);
  x[1] = mt_ext("local", "file:///etc/envoy/l.wasm", NULL, NULL,
                WASM_PULL_UNSPECIFIED, NULL);
  config(&cfg);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 1), 0);
  ck_assert(mt_wait(r, FQN("cached"), MODULE_READY, 0, 10000, &mi));
  module_info_cleanup(&mi);
  resolver_free(r);
  origin_stop(o);
  xds_free(m);
}

static void teardown(void) {
  for (size_t i = 0; i < 2; i++)
    wasm_ext_free(x[i]);
  mt_rmrf(dir);
}

static void sweep(const char *what, int (*step)(long n), long min_steps) {
  const char *only = getenv("MODULES_OOM_AT");
  long n;

  if (only != NULL) {
    step(strtol(only, NULL, 10));
    return;
  }
  for (n = 1; step(n); n++)
    ;
  if (getenv("MODULES_OOM_VERBOSE") != NULL)
    fprintf(stderr, "%s: %ld allocations swept\n", what, n - 1);
  ck_assert_msg(n > min_steps, "%s: only %ld allocations, expected more", what,
                n - 1);
}

/* A resolver serving the first extension (from the warm cache). */
static struct resolver *serving_first(void) {
  struct resolver_config cfg;
  struct resolver *r;
  struct module_info mi;

  config(&cfg);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 1), 0);
  ck_assert_int_eq(resolver_lookup(r, FQN("cached"), &mi), 0);
  ck_assert_int_eq(mi.state, MODULE_READY);
  module_info_cleanup(&mi);
  return r;
}

static void expect(struct resolver *r, const char *fqn, int state, int local,
                   int direct, long n) {
  struct module_info mi;

  ck_assert_msg(resolver_lookup(r, fqn, &mi) == 0,
                "%s missing after allocation %ld failed", fqn, n);
  ck_assert_msg((int)mi.state == state && mi.local == local &&
                    mi.direct == direct,
                "%s: state %d local %d direct %d after allocation %ld "
                "failed (reproduce: MODULES_OOM_AT=%ld)",
                fqn, mi.state, mi.local, mi.direct, n, n);
  if (state == MODULE_READY && !local && !direct)
    ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);
}

static int update_step(long n) {
  struct resolver *r = serving_first();
  struct module_info mi;
  long seen;
  int rc;

  xds_alloc_fail_at(n);
  rc = resolver_update(r, (const struct wasm_ext *const *)x, 2);
  seen = xds_alloc_fail_at(0);
  if (rc < 0) {
    ck_assert_msg(rc == XDS_ENOMEM,
                  "resolver_update: allocation %ld failed: returned %d "
                  "(reproduce: MODULES_OOM_AT=%ld)",
                  n, rc, n);
    /* The previous set stays served. */
    expect(r, FQN("cached"), MODULE_READY, 0, 0, n);
    ck_assert_int_eq(resolver_lookup(r, FQN("local"), &mi), XDS_ENOTFOUND);
    /* And the same update, without a failure, then goes through. */
    ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 2),
                     0);
  }
  expect(r, FQN("cached"), MODULE_READY, 0, 0, n);
  expect(r, FQN("local"), MODULE_READY, 1, 0, n);
  resolver_free(r);
  return seen >= n;
}

START_TEST(update_sweep) {
  sweep("resolver_update", update_step, 5);
}
END_TEST

static int lookup_step(long n) {
  struct resolver *r = serving_first();
  struct module_info mi;
  long seen;
  int rc;

  memset(&mi, 0, sizeof(mi));
  xds_alloc_fail_at(n);
  rc = resolver_lookup(r, FQN("cached"), &mi);
  seen = xds_alloc_fail_at(0);
  if (rc < 0)
    ck_assert_msg(rc == XDS_ENOMEM, "resolver_lookup: allocation %ld: %d", n,
                  rc);
  else
    ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);
  expect(r, FQN("cached"), MODULE_READY, 0, 0, n);
  resolver_free(r);
  return seen >= n;
}

START_TEST(lookup_sweep) {
  sweep("resolver_lookup", lookup_step, 1);
}
END_TEST

Suite *modules_oom_suite(void) {
  Suite *s = suite_create("modules_oom");
  TCase *tc = tcase_create("sweeps");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, update_sweep);
  tcase_add_test(tc, lookup_sweep);
  suite_add_tcase(s, tc);
  return s;
}
