/*
 * check_main.c: the one runner for the offline suites of tests/suites.h.
 *
 * Usage: check_unit [SUITE...]. Fork mode stays on (CK_FORK=no only for a
 * debugger), so a crash fails one test, not the run. Exit status is 0 when
 * every test passed.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define X(name) Suite *name##_suite(void);
#include "suites.h"
#undef X

struct suite_entry {
  const char *name;
  Suite *(*make)(void);
};

static const struct suite_entry all_suites[] = {
#define X(name) {#name, name##_suite},
#include "suites.h"
#undef X
};

static int wanted(const char *name, int argc, char **argv) {
  if (argc < 2)
    return 1;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return 1;
  return 0;
}

int main(int argc, char **argv) {
  SRunner *sr = NULL;
  int failed;

  for (size_t i = 0; i < sizeof(all_suites) / sizeof(all_suites[0]); i++) {
    if (!wanted(all_suites[i].name, argc, argv))
      continue;
    if (sr == NULL)
      sr = srunner_create(all_suites[i].make());
    else
      srunner_add_suite(sr, all_suites[i].make());
  }
  if (sr == NULL)
    return EXIT_FAILURE;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
