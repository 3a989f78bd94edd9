/*
 * check_app.c: the wasmxds program as a user runs it: its subcommands'
 * command lines (--help after each), the README's first command, signals
 * and what the server says in its log. The binary is $WASMXDS_BIN; each
 * test runs in its own process (Check's fork mode) and stops what it
 * starts.
 *
 * Usage: check_app. CK_TIMEOUT_MULTIPLIER scales the per-test timeouts.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"

/* Per-test limit, in seconds (scaled by CK_TIMEOUT_MULTIPLIER). */
#define TEST_TIMEOUT_S 30
/* Most output a command may print for these tests. */
#define OUT_MAX (64 * 1024)

/*
 * Runs $WASMXDS_BIN with args (NULL-terminated, argv[0] excluded) and
 * returns its exit status (-1 when it did not exit normally); its stdout
 * goes to out and its stderr to err (each NUL-terminated, truncated to
 * OUT_MAX - 1 bytes).
 */
static int run_bin(const char *const *args, char *out, char *err) {
  const char *bin = getenv("WASMXDS_BIN");
  char tmpl_o[] = "/tmp/check_app_outXXXXXX",
       tmpl_e[] = "/tmp/check_app_errXXXXXX";
  const char *argv[32];
  int fo, fe, ws;
  size_t n = 0;
  ssize_t r;
  pid_t pid;

  ck_assert_msg(bin != NULL, "WASMXDS_BIN is not set");
  argv[n++] = bin;
  for (size_t i = 0; args[i] != NULL && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  fo = mkstemp(tmpl_o);
  fe = mkstemp(tmpl_e);
  ck_assert(fo >= 0 && fe >= 0);
  pid = fork();
  ck_assert(pid >= 0);
  if (pid == 0) {
    dup2(fo, 1);
    dup2(fe, 2);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  ck_assert(waitpid(pid, &ws, 0) == pid);
  r = pread(fo, out, OUT_MAX - 1, 0);
  out[r > 0 ? r : 0] = '\0';
  r = pread(fe, err, OUT_MAX - 1, 0);
  err[r > 0 ? r : 0] = '\0';
  close(fo);
  close(fe);
  unlink(tmpl_o);
  unlink(tmpl_e);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* ---- command lines ------------------------------------------------------ */

/* --help after each subcommand prints that subcommand's usage on stdout
 * and exits 0 (issue 14 item 10). */
START_TEST(help_after_each_subcommand) {
  static const struct {
    const char *args[3];
    const char *usage;
  } cases[] = {
      {{"--help", NULL}, "Usage: wasmxds [serve]"},
      {{"-h", NULL}, "Usage: wasmxds [serve]"},
      {{"serve", "--help", NULL}, "Usage: wasmxds [serve]"},
      {{"validate", "--help", NULL}, "Usage: wasmxds validate PATH|URL"},
      {{"validate", "-h", NULL}, "Usage: wasmxds validate PATH|URL"},
      {{"render", "--help", NULL}, "Usage: wasmxds render --store"},
      {{"render", "-h", NULL}, "Usage: wasmxds render --store"},
  };
  char *out = malloc(OUT_MAX), *err = malloc(OUT_MAX);

  ck_assert(out != NULL && err != NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int st = run_bin(cases[i].args, out, err);

    ck_assert_msg(st == 0, "wasmxds %s %s: exit %d, stderr: %s",
                  cases[i].args[0], cases[i].args[1] ? cases[i].args[1] : "",
                  st, err);
    ck_assert_msg(strstr(out, cases[i].usage) == out,
                  "wasmxds %s %s: stdout does not start with \"%s\": %s",
                  cases[i].args[0], cases[i].args[1] ? cases[i].args[1] : "",
                  cases[i].usage, out);
  }
  free(out);
  free(err);
}
END_TEST

/* A usage error still exits non-zero with the subcommand's usage on
 * stderr, and nothing on stdout. */
START_TEST(usage_errors_name_the_subcommand) {
  static const struct {
    const char *args[4];
    int status;
    const char *usage;
  } cases[] = {
      {{"validate", NULL}, 2, "Usage: wasmxds validate"},
      {{"validate", "--bogus", "x", NULL}, 2, "Usage: wasmxds validate"},
      {{"render", "--node-id", "n", NULL}, 2, "Usage: wasmxds render"},
      {{"serve", "--bogus", NULL}, 1, "Usage: wasmxds [serve]"},
      {{"serve", NULL}, 1, "--store PATH is required"},
  };
  char *out = malloc(OUT_MAX), *err = malloc(OUT_MAX);

  ck_assert(out != NULL && err != NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int st = run_bin(cases[i].args, out, err);

    ck_assert_msg(st == cases[i].status, "case %zu: exit %d, want %d", i, st,
                  cases[i].status);
    ck_assert_msg(strstr(err, cases[i].usage) != NULL,
                  "case %zu: stderr lacks \"%s\": %s", i, cases[i].usage, err);
    ck_assert_msg(out[0] == '\0', "case %zu: stdout: %s", i, out);
  }
  free(out);
  free(err);
}
END_TEST

static Suite *app_suite(void) {
  Suite *s = suite_create("app");
  TCase *tc = tcase_create("command_line");

  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, help_after_each_subcommand);
  tcase_add_test(tc, usage_errors_name_the_subcommand);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(app_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
