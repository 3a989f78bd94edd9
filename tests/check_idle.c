/*
 * check_idle.c: an idle wasmxds sleeps (issue 20, target 5). With no
 * stream and nothing published, the serving loop wakes for nothing: it
 * blocks in the completion queue until an event, a publication, a status
 * query or a stop (the real wasmxds binary, tests/e2e/server_proc.h).
 *
 * idle_loop_does_not_tick: with --threads 3, each serving loop (the main
 * thread and the threads named xds-loop-N) makes at most a few context
 * switches in 2 s of idleness (a 20 ms tick made 100).
 * stop_is_prompt: SIGTERM still ends the idle server at once (the signal
 * handler cannot wake the loop itself; a helper thread does).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/testkit.h"

/* What 2 s of idleness may cost the serving thread in context switches
 * (the first publication's delayed malloc_trim is over by then). */
#define IDLE_SWITCHES_MAX 6
#define IDLE_WINDOW_MS 2000

static char g_tmp[64];
static char g_store[96];
static struct server_proc *g_sp;

static void store_write(const char *name, const char *text) {
  char path[160];

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  tk_write_file(path, text, strlen(text));
}

static void setup(void) {
  static const char *const args[] = {"--threads", "3", NULL};

  snprintf(g_tmp, sizeof(g_tmp), "/tmp/wasmxds-idle-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_tmp));
  snprintf(g_store, sizeof(g_store), "%s/store", g_tmp);
  ck_assert_int_eq(mkdir(g_store, 0700), 0);
  store_write("ext-a.yaml",
              "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
              "metadata: {organization: acme, name: a}\n"
              "spec: {url: file:///w/a.wasm}\n");
  store_write("tmpl.yaml",
              "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
              "metadata: {name: in}\nspec:\n  port: 15006\n"
              "  direction: INBOUND\n  route: {cluster: app}\n"
              "  httpFilters:\n  - name: envoy.filters.http.router\n"
              "    typedConfig: {'@type': type.googleapis.com/"
              "envoy.extensions.filters.http.router.v3.Router}\n");
  ck_assert_int_eq(server_proc_start(g_store, args, &g_sp), 0);
}

static void teardown(void) {
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(g_tmp);
}

/* Voluntary plus involuntary context switches of thread tid of pid. */
static long switches(int pid, int tid) {
  char path[96], *text, *p;
  long n = 0;

  snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
  text = tk_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  for (p = text; (p = strstr(p, "ctxt_switches:")) != NULL; p++)
    n += strtol(p + strlen("ctxt_switches:"), NULL, 10);
  free(text);
  return n;
}

/* The serving loops' thread ids: pid itself (loop 0) and the threads
 * named xds-loop-N. Returns how many (at most cap). */
static int loop_threads(int pid, int *tids, int cap) {
  char path[96];
  struct dirent *e;
  DIR *d;
  int n = 0;

  tids[n++] = pid;
  snprintf(path, sizeof(path), "/proc/%d/task", pid);
  d = opendir(path);
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)) != NULL && n < cap) {
    int tid = (int)strtol(e->d_name, NULL, 10);
    char comm[96], *name;
    if (tid <= 0 || tid == pid)
      continue;
    snprintf(comm, sizeof(comm), "/proc/%d/task/%d/comm", pid, tid);
    name = tk_read_file(comm, NULL);
    if (name != NULL && strncmp(name, "xds-loop-", 9) == 0)
      tids[n++] = tid;
    free(name);
  }
  closedir(d);
  return n;
}

START_TEST(idle_loop_does_not_tick) {
  int pid = server_proc_pid(g_sp), tids[8], n;
  long before[8], after;

  /* Start-up, the first publication and its malloc_trim 2 s later. */
  tk_sleep_ms(3000);
  n = loop_threads(pid, tids, 8);
  ck_assert_int_eq(n, 3);
  for (int i = 0; i < n; i++)
    before[i] = switches(pid, tids[i]);
  tk_sleep_ms(IDLE_WINDOW_MS);
  for (int i = 0; i < n; i++) {
    after = switches(pid, tids[i]);
    fprintf(stderr,
            "check_idle: %ld context switches of serving loop %d "
            "in %d ms of idleness\n",
            after - before[i], i, IDLE_WINDOW_MS);
    ck_assert_int_le(after - before[i], IDLE_SWITCHES_MAX);
  }
}
END_TEST

START_TEST(stop_is_prompt) {
  long long t0;
  int wstatus = 0;

  tk_sleep_ms(3000); /* idle, the loop asleep */
  t0 = tk_now_ms();
  ck_assert_int_eq(server_proc_stop(g_sp, &wstatus), 0);
  ck_assert_int_lt(tk_now_ms() - t0, 1000);
  ck_assert(WIFEXITED(wstatus));
  ck_assert_int_eq(WEXITSTATUS(wstatus), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("idle");
  TCase *tc = tcase_create("idle");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, idle_loop_does_not_tick);
  tcase_add_test(tc, stop_is_prompt);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
