/*
 * check_istio.c: runs the Istio suite (WasmPlugin store, identity,
 * composition). `check_istio NAME...` runs only the named test cases.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_istio.h"
#include "storekit.h"

int main(int argc, char **argv) {
  static const struct sk_case cases[] = {{"identity", istio_identity_tcase},
                                         {"decode", istio_decode_tcase},
                                         {"store", istio_store_tcase},
                                         {"etcd", istio_etcd_tcase},
                                         {"oci", istio_oci_tcase}};

  return sk_run("istio", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
