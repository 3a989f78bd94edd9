/*
 * check_istio_live.c: a cluster export (`kubectl get wasmplugins -A -o
 * yaml`, a List with status and managedFields) applied to a real etcd with
 * wasmxdsctl, one key per plugin under <prefix>/WasmPlugin/<ns>/<name>;
 * then get, list, validate and delete. Starts its own etcd on free
 * loopback ports (tests/helpers/etcd_proc.h) and removes it at the end.
 * Skipped (exit 77) without /usr/bin/etcd.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/helpers/etcd_proc.h"
#include "tests/testkit.h"

#define PREFIX "/wx"

static struct etcd_proc etcd;

/* The whole file (up to 64 KiB) in a static buffer. */
static const char *slurp(const char *path) {
  static char buf[65536];
  FILE *f = fopen(path, "r");
  size_t n;

  ck_assert_ptr_nonnull(f);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static size_t count(const char *text, const char *what) {
  size_t n = 0;

  for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what))
    n++;
  return n;
}

START_TEST(apply_a_cluster_export) {
  const char *bdir = getenv("WASMXDS_BUILDDIR");
  char ctl[1024], out[400];
  const char *text;

  ck_assert_ptr_nonnull(bdir);
  etcd_proc_start(&etcd, 0, NULL);
  snprintf(ctl, sizeof(ctl), "%s/wasmxdsctl --store etcd://%s" PREFIX, bdir,
           etcd.endpoint);
  snprintf(out, sizeof(out), "%s/out", etcd.dir);
  ck_assert_int_eq(tk_sh("%s apply -f " XDS_TEST_DATA
                         "/istio/store/cluster-export.yaml >%s 2>&1",
                         ctl, out),
                   0);
  text = slurp(out);
  ck_assert_uint_eq(count(text, "WasmPlugin extensions.istio.io/wasmplugin/"),
                    21);
  ck_assert_msg(strstr(text, "WasmPlugin extensions.istio.io/wasmplugin/"
                             "shop.s-reload created (key " PREFIX
                             "/WasmPlugin/shop/s-reload") != NULL,
                "%s", text);
  /* Applying the same export again changes nothing. */
  ck_assert_int_eq(tk_sh("%s apply -f " XDS_TEST_DATA
                         "/istio/store/cluster-export.yaml >%s 2>&1",
                         ctl, out),
                   0);
  ck_assert_uint_eq(count(slurp(out), " unchanged (key "), 21);
  /* get by Istio's ECDS name and by kind/namespace/name. */
  ck_assert_int_eq(tk_sh("%s get extensions.istio.io/wasmplugin/shop.s-reload "
                         ">%s 2>&1",
                         ctl, out),
                   0);
  text = slurp(out);
  ck_assert_msg(strstr(text, "\"pluginName\":\"reloader\"") != NULL, "%s",
                text);
  ck_assert_int_eq(tk_sh("%s get WasmPlugin/edge/e-gw >%s 2>&1", ctl, out), 0);
  ck_assert_msg(strstr(slurp(out), "\"name\":\"public\"") != NULL, "%s",
                slurp(out));
  ck_assert_int_eq(tk_sh("%s list WasmPlugin >%s 2>&1", ctl, out), 0);
  text = slurp(out);
  ck_assert_uint_eq(count(text, "\nWasmPlugin "), 21);
  ck_assert_msg(strstr(text, "extensions.istio.io/wasmplugin/istio-system."
                             "z-tie") != NULL,
                "%s", text);
  /* The server reads them back from etcd without a problem. */
  ck_assert_int_eq(tk_sh("%s/wasmxds validate etcd://%s" PREFIX " >%s 2>&1",
                         bdir, etcd.endpoint, out),
                   0);
  ck_assert_int_eq(tk_sh("%s delete WasmPlugin/edge/e-gw >%s 2>&1", ctl, out),
                   0);
  ck_assert_int_eq(tk_sh("%s get WasmPlugin/edge/e-gw >%s 2>&1", ctl, out), 4);
  etcd_proc_stop(&etcd);
}
END_TEST

int main(void) {
  Suite *s = suite_create("istio_live");
  TCase *tc = tcase_create("etcd");
  SRunner *sr;
  int failed;

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_istio_live: /usr/bin/etcd or etcdctl missing; "
                    "skipped\n");
    return 77;
  }
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, apply_a_cluster_export);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
