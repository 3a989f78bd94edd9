/*
 * check_istio.c: runs the Istio suite (WasmPlugin store, identity,
 * composition). `check_istio NAME...` runs only the named test cases.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_istio.h"

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    TCase *(*make)(void);
  } cases[] = {{"identity", istio_identity_tcase},
               {"decode", istio_decode_tcase},
               {"store", istio_store_tcase},
               {"etcd", istio_etcd_tcase},
               {"oci", istio_oci_tcase}};
  Suite *s = suite_create("istio");
  SRunner *sr;
  int failed;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int want = argc <= 1;

    for (int a = 1; a < argc && !want; a++)
      want = strcmp(argv[a], cases[i].name) == 0;
    if (want)
      suite_add_tcase(s, cases[i].make());
  }
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
