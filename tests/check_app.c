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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/helpers/etcd_proc.h"
#include "tests/testkit.h"

#define E2E_SERVER g_sp
static struct server_proc *g_sp;

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

/* Every whole-number flag refuses a value out of its bounds, or not a
 * number, naming the flag, the value and the bounds (server/app/flags.c's
 * INT_FLAGS), before anything starts. */
START_TEST(whole_number_flags_name_their_bounds) {
  static const struct {
    const char *cmd, *flag, *value, *bounds;
  } cases[] = {
      {"serve", "--max-streams", "0", "1 and 10000000"},
      {"serve", "--keepalive-ms", "999", "1000 and 86400000"},
      {"serve", "--drain-ms", "x", "1 and 3600000"},
      {"serve", "--debounce-ms", "-1", "0 and "},
      {"serve", "--max-removal-share", "101", "1 and 100"},
      {"serve", "--admin-header-timeout", "99", "100 and 3600000"},
      {"serve", "--admin-max-conns-per-ip", "0", "1 and 1000000"},
      {"serve", "--ecds-slots", "65", "0 and 64"},
      {"serve", "--module-pull-workers", "65", "1 and 64"},
      {"render", "--ecds-slots", "-1", "0 and 64"},
      {"render", "--module-pull-workers", "0", "1 and 64"},
      {"render", "--module-always-interval", "-2", "-1 and 2592000"},
      {"render", "--module-fetch-timeout", "99", "100 and 3600000"},
      {"render", "--module-retry-max", "86400001", "1000 and 86400000"},
      {"render", "--module-max-bytes", "1023", "1024 and 1073741824"},
  };
  char *out = malloc(OUT_MAX), *err = malloc(OUT_MAX), want[256];

  ck_assert(out != NULL && err != NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *args[] = {cases[i].cmd,
                          cases[i].flag,
                          cases[i].value,
                          "--store",
                          "/nonexistent",
                          "--node-id",
                          "n",
                          NULL};
    int st = run_bin(args, out, err);

    snprintf(want, sizeof(want),
             "wasmxds: %s: \"%s\" is not a whole number between %s",
             cases[i].flag, cases[i].value, cases[i].bounds);
    ck_assert_msg(st > 0, "%s %s %s: exit %d", cases[i].cmd, cases[i].flag,
                  cases[i].value, st);
    ck_assert_msg(strstr(err, want) != NULL, "%s %s: stderr lacks \"%s\": %s",
                  cases[i].cmd, cases[i].flag, want, err);
    ck_assert_msg(out[0] == '\0', "%s %s: stdout: %s", cases[i].cmd,
                  cases[i].flag, out);
  }
  free(out);
  free(err);
}
END_TEST

/* render --dump-dir creates the directory with its parents (issue 14
 * item 9). */
START_TEST(render_dump_dir_is_created_with_parents) {
  const char *src = getenv("WASMXDS_SRCDIR");
  char dir[] = "/tmp/check_app_dumpXXXXXX", deep[160], store[4096], file[256];
  const char *args[] = {"render",
                        "--store",
                        store,
                        "--node-id",
                        "p1",
                        "--metadata",
                        "wasmxds.tenant=organizations/acme/tenants/web",
                        "--dump-dir",
                        deep,
                        NULL};
  char *out = malloc(OUT_MAX), *err = malloc(OUT_MAX);
  struct stat st;
  int status;

  ck_assert(src != NULL && out != NULL && err != NULL && mkdtemp(dir));
  snprintf(store, sizeof(store), "%s/deploy/examples/store", src);
  snprintf(deep, sizeof(deep), "%s/a/b/c", dir);
  status = run_bin(args, out, err);
  ck_assert_msg(status == 0, "render: exit %d: %s", status, err);
  ck_assert(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
  snprintf(file, sizeof(file),
           "%s/ecds-organizations_acme_extensions_add-headers.pb", deep);
  ck_assert_msg(stat(file, &st) == 0 && st.st_size > 0, "%s missing", file);
  tk_rm_tree(dir);
  free(out);
  free(err);
}
END_TEST

/* ---- the admin server ---------------------------------------------- */

static size_t http_collect(char *p, size_t size, size_t n, void *arg) {
  char *out = arg;
  size_t have = strlen(out), add = size * n;

  if (have + add >= OUT_MAX)
    add = OUT_MAX - 1 - have;
  memcpy(out + have, p, add);
  out[have + add] = '\0';
  return size * n;
}

/* method ("GET" or "POST") path on the running server's admin port; the
 * body goes to out (OUT_MAX). Returns the HTTP status, or 0. */
static long http(const char *method, const char *path, char *out) {
  char url[160];
  long code = 0;
  CURL *c = curl_easy_init();

  out[0] = '\0';
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s",
           server_proc_admin_port(g_sp), path);
  ck_assert(c != NULL);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
  if (strcmp(method, "POST") == 0)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

/* Waits (5 s at most) until GET path answers code with a body holding
 * needle. */
static void wait_http(const char *path, long code, const char *needle) {
  char *out = malloc(OUT_MAX);
  long got = 0;
  long long end = tk_now_ms() + 5000;

  ck_assert(out != NULL);
  do {
    got = http("GET", path, out);
    if (got == code && strstr(out, needle) != NULL)
      break;
    tk_sleep_ms(50);
  } while (tk_now_ms() < end);
  E2E_ASSERT(got == code && strstr(out, needle) != NULL,
             "GET %s: %ld \"%s\", want %ld with \"%s\"", path, got, out, code,
             needle);
  free(out);
}

/* ---- the removal guard (issue 13 item 8) --------------------------------- */

static const char ext_a[] = "apiVersion: extension.tsb.tetrate.io/v2\n"
                            "kind: WasmExtension\n"
                            "metadata: {organization: acme, name: a}\n"
                            "spec: {url: 'file:///m.wasm'}\n";
static const char tmpl_in[] =
    "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: in}\nspec:\n  port: 15006\n"
    "  direction: INBOUND\n  route: {cluster: c}\n  httpFilters:\n"
    "  - name: envoy.filters.http.router\n"
    "    typedConfig: {'@type': "
    "envoy.extensions.filters.http.router.v3.Router}\n";

/* The held state as /readyz and /metrics say it. */
static void expect_held_everywhere(int held) {
  if (held) {
    wait_http("/readyz", 200, "degraded: ");
    wait_http("/readyz", 200, "removes every listener template");
    wait_http("/metrics", 200, "wasmxds_store_removal_held 1");
    wait_http("/metrics", 200, "wasmxds_store_removals_held_total 1");
  } else {
    wait_http("/readyz", 200, "ready");
    wait_http("/metrics", 200, "wasmxds_store_removal_held 0");
  }
}

/* Every file of a file store deleted: held (the previous catalog is
 * served, no new generation), degraded, counted; confirmed with POST
 * /store/confirm-removal. */
START_TEST(file_store_mass_removal_is_held) {
  char dir[] = "/tmp/check_app_storeXXXXXX", path[160];
  const char *args[] = {"--debounce-ms", "20", NULL};
  char *out = malloc(OUT_MAX);
  char *both = malloc(sizeof(ext_a) + sizeof(tmpl_in) + 8);

  ck_assert(out != NULL && both != NULL && mkdtemp(dir) != NULL);
  snprintf(both, sizeof(ext_a) + sizeof(tmpl_in) + 8, "%s---\n%s", ext_a,
           tmpl_in);
  snprintf(path, sizeof(path), "%s/a.yaml", dir);
  tk_write_file(path, both, strlen(both));
  ck_assert_int_eq(server_proc_start(dir, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 5000) == 0,
             "no first generation");
  wait_http("/readyz", 200, "ready");
  server_proc_log_mark(g_sp);
  ck_assert_int_eq(unlink(path), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "held a change of store", 5000) == 0,
             "the removal was not held");
  expect_held_everywhere(1);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 2", 300) ==
                 XDS_ENOTFOUND,
             "a new generation was served");
  /* The operator confirms. */
  ck_assert_int_eq(http("POST", "/store/confirm-removal", out), 200);
  E2E_ASSERT(server_proc_wait_log(g_sp,
                                  "serving generation 2 (store changed): 0 "
                                  "extensions, 0 listener templates",
                                  5000) == 0,
             "the confirmed removal is not served");
  expect_held_everywhere(0);
  ck_assert_int_eq(http("POST", "/store/confirm-removal", out), 409);
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(dir);
  free(out);
  free(both);
}
END_TEST

/* etcdctl del --prefix: held the same way; putting a template back ends
 * the hold (the rest is no mass removal). */
START_TEST(etcd_prefix_deleted_is_held) {
  struct etcd_proc e;
  char store[160];
  const char *args[] = {"--debounce-ms", "20", NULL};

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_app: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/WasmExtension/acme/a", ext_a), 0);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/ListenerTemplate/in", tmpl_in), 0);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  ck_assert_int_eq(server_proc_start(store, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 10000) == 0,
             "no first generation");
  wait_http("/readyz", 200, "ready");
  server_proc_log_mark(g_sp);
  ck_assert_int_eq(etcd_proc_ctl(&e, "del --prefix /wx/"), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "held a change of store", 5000) == 0,
             "the removal was not held");
  expect_held_everywhere(1);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 2", 300) ==
                 XDS_ENOTFOUND,
             "a new generation was served");
  /* The template back: one extension removed is no mass removal. */
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/ListenerTemplate/in", tmpl_in), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp,
                                  "the held change is replaced by one that "
                                  "removes less",
                                  5000) == 0,
             "the hold did not end");
  E2E_ASSERT(server_proc_wait_log(g_sp,
                                  "serving generation 2 (store changed): 0 "
                                  "extensions, 1 listener templates",
                                  5000) == 0,
             "the new catalog is not served");
  expect_held_everywhere(0);
  server_proc_free(g_sp);
  g_sp = NULL;
  etcd_proc_stop(&e);
}
END_TEST

/* ---- duplicates on reload (issue 14 item 5) ---------------------------- */

static const char jwt_served[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: jwt-authn}\n"
    "spec: {url: 'file:///jwt.wasm', priority: 1, failStrategy: FAIL_CLOSE}\n";
static const char jwt_newcomer[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: jwt-authn}\n"
    "spec: {url: 'file:///other.wasm', priority: 9, failStrategy: "
    "FAIL_OPEN}\n";

/* After a newcomer appeared at newcomer_at: the error is located there,
 * names where the served one is, and nothing was updated. */
static void expect_newcomer_rejected(const char *newcomer_at,
                                     const char *served_at) {
  char *line = NULL, want[400];

  E2E_ASSERT(server_proc_wait_log_line(g_sp, "duplicate WasmExtension", 5000,
                                       &line) == 0,
             "no duplicate reported");
  snprintf(want, sizeof(want), "store: error: %s:", newcomer_at);
  E2E_ASSERT(strstr(line, want) != NULL,
             "the duplicate is not reported at the newcomer %s: %s",
             newcomer_at, line);
  snprintf(want, sizeof(want), "already served from %s:", served_at);
  E2E_ASSERT(strstr(line, want) != NULL,
             "the error does not name the served location %s: %s", served_at,
             line);
  free(line);
  E2E_ASSERT(server_proc_wait_log(g_sp, "updated WasmExtension", 300) ==
                 XDS_ENOTFOUND,
             "the newcomer replaced the served extension");
}

START_TEST(file_duplicate_newcomer_is_rejected) {
  char dir[] = "/tmp/check_app_dupXXXXXX", path[160], dup[160];
  const char *args[] = {"--debounce-ms", "20", NULL};
  char text[2048];

  ck_assert(mkdtemp(dir) != NULL);
  snprintf(text, sizeof(text), "%s---\n%s", jwt_served, tmpl_in);
  snprintf(path, sizeof(path), "%s/jwt.yaml", dir);
  tk_write_file(path, text, strlen(text));
  ck_assert_int_eq(server_proc_start(dir, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 5000) == 0,
             "no first generation");
  server_proc_log_mark(g_sp);
  snprintf(dup, sizeof(dup), "%s/00-dup.yaml", dir);
  tk_write_file(dup, jwt_newcomer, strlen(jwt_newcomer));
  expect_newcomer_rejected(dup, path);
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(dir);
}
END_TEST

START_TEST(etcd_duplicate_newcomer_is_rejected) {
  struct etcd_proc e;
  char store[160];
  const char *args[] = {"--debounce-ms", "20", NULL};

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_app: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  ck_assert_int_eq(
      etcd_proc_put(&e, "/wx/WasmExtension/acme/jwt-authn", jwt_served), 0);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/ListenerTemplate/in", tmpl_in), 0);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  ck_assert_int_eq(server_proc_start(store, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 10000) == 0,
             "no first generation");
  server_proc_log_mark(g_sp);
  ck_assert_int_eq(
      etcd_proc_put(&e, "/wx/WasmExtension/acme/00-dup", jwt_newcomer), 0);
  expect_newcomer_rejected("/wx/WasmExtension/acme/00-dup",
                           "/wx/WasmExtension/acme/jwt-authn");
  server_proc_free(g_sp);
  g_sp = NULL;
  etcd_proc_stop(&e);
}
END_TEST

/* ---- the first command on a fresh machine (issue 14 item 9) ------------ */

/*
 * README, Quick start: `build/wasmxds --store deploy/examples/store
 * --listen 127.0.0.1:18000` on a machine without /var/cache/wasmxds. The
 * server runs in a private mount namespace with an empty tmpfs over
 * /var/cache (unshare -m, as root), so the default --module-cache
 * /var/cache/wasmxds/modules has no parent; it must create it (mode 0700)
 * and become ready. (server_proc adds a free --listen port and an
 * --admin-listen on port 0, so tests never compete for 18000/18001.)
 */
START_TEST(first_command_on_a_fresh_machine) {
  static const char *const first_args[] = {"--module-cache",
                                           "/var/cache/wasmxds/modules", NULL};
  const char *bin = getenv("WASMXDS_BIN"), *src = getenv("WASMXDS_SRCDIR");
  char wrapper[] = "/tmp/check_app_wrapXXXXXX", store[4096], cache[160];
  char script[8192];
  struct stat st;
  int fd;

  ck_assert(bin != NULL && src != NULL);
  if (tk_sh("unshare -m sh -c 'mount -t tmpfs tmpfs /var/cache' "
            ">/dev/null 2>&1") != 0) {
    fprintf(stderr, "check_app: cannot make a private mount namespace "
                    "(unshare -m needs root); skipped\n");
    return;
  }
  fd = mkstemp(wrapper);
  ck_assert_int_ge(fd, 0);
  snprintf(script, sizeof(script),
           "#!/bin/sh\n"
           "exec unshare -m sh -c 'mount -t tmpfs tmpfs /var/cache && "
           "exec \"$0\" \"$@\"' '%s' \"$@\"\n",
           bin);
  ck_assert_int_eq(write(fd, script, strlen(script)), (ssize_t)strlen(script));
  ck_assert_int_eq(fchmod(fd, 0700), 0);
  close(fd);
  setenv("WASMXDS_BIN", wrapper, 1);
  snprintf(store, sizeof(store), "%s/deploy/examples/store", src);
  /* The default cache, named so that server_proc adds no cache of its
   * own. */
  ck_assert_int_eq(server_proc_start(store, first_args, &g_sp), 0);
  wait_http("/readyz", 200, "ready");
  E2E_ASSERT(server_proc_wait_log(g_sp,
                                  "module fetching on: cache "
                                  "/var/cache/wasmxds/modules",
                                  1000) == 0,
             "not started with the default module cache");
  /* The cache, as the server sees it (its namespace's root). */
  snprintf(cache, sizeof(cache), "/proc/%d/root/var/cache/wasmxds/modules",
           server_proc_pid(g_sp));
  ck_assert_msg(stat(cache, &st) == 0 && S_ISDIR(st.st_mode), "%s: not created",
                cache);
  ck_assert_int_eq(st.st_mode & 0777, 0700);
  /* The example's first run is clean: nothing to fetch, nothing failed,
   * and the shipped module is served as Wasm. */
  wait_http("/metrics", 200, "wasmxds_extensions{served_as=\"wasm\"} 3\n");
  wait_http("/metrics", 200,
            "wasmxds_extensions{served_as=\"deny_all\"} 0\n"
            "wasmxds_extensions{served_as=\"allow_all\"} 0\n");
  E2E_ASSERT(server_proc_wait_log(g_sp, "Z error ", 0) == XDS_ENOTFOUND &&
                 server_proc_wait_log(g_sp, "Z warn ", 0) == XDS_ENOTFOUND,
             "the first run logged an error or a warning");
  server_proc_free(g_sp);
  g_sp = NULL;
  unlink(wrapper);
  setenv("WASMXDS_BIN", bin, 1);
}
END_TEST

/* The shipped example module is what its WAT source compiles to (when
 * wat2wasm is installed), and the example store names its sha256. */
START_TEST(example_module_matches_its_source) {
  const char *src = getenv("WASMXDS_SRCDIR");
  char wasm[4096], out[] = "/tmp/check_app_wasmXXXXXX", yaml[4096];
  char *text, *built, *shipped, want[128];
  size_t n_built = 0, n_shipped = 0;
  int fd;

  ck_assert(src != NULL);
  snprintf(wasm, sizeof(wasm), "%s/deploy/examples/wasm/add_headers.wasm", src);
  shipped = tk_read_file(wasm, &n_shipped);
  ck_assert_msg(shipped != NULL, "%s: cannot read", wasm);
  ck_assert_uint_gt(n_shipped, 8);
  ck_assert_uint_lt(n_shipped, 1024);
  ck_assert_int_eq(memcmp(shipped, "\0asm\1\0\0\0", 8), 0);
  /* The store's sha256 is the file's. */
  snprintf(yaml, sizeof(yaml),
           "%s/deploy/examples/store/extensions/stats-and-headers.yaml", src);
  text = tk_read_file(yaml, NULL);
  ck_assert(text != NULL);
  fd = mkstemp(out);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(tk_sh("sha256sum '%s' | cut -c1-64 > '%s'", wasm, out), 0);
  built = tk_read_file(out, NULL);
  ck_assert(built != NULL && strlen(built) >= 64);
  snprintf(want, sizeof(want), "sha256: %.64s", built);
  ck_assert_msg(strstr(text, want) != NULL, "%s lacks \"%s\"", yaml, want);
  free(built);
  free(text);
  if (tk_sh("command -v wat2wasm >/dev/null") != 0) {
    fprintf(stderr, "check_app: no wat2wasm (Debian: wabt); the module was "
                    "not rebuilt from its source\n");
  } else {
    ck_assert_int_eq(tk_sh("wat2wasm '%s/deploy/examples/wasm/add_headers.wat' "
                           "-o '%s'",
                           src, out),
                     0);
    built = tk_read_file(out, &n_built);
    ck_assert(built != NULL);
    ck_assert_msg(n_built == n_shipped && memcmp(built, shipped, n_built) == 0,
                  "add_headers.wasm is not what add_headers.wat compiles to");
    free(built);
  }
  unlink(out);
  free(shipped);
}
END_TEST

/* ---- what the server says (issue 14 item 10) --------------------------- */

/* SIGHUP reloads and says so, also when nothing changed; and says what
 * changed when something did. */
START_TEST(sighup_says_it_reloaded) {
  char dir[] = "/tmp/check_app_hupXXXXXX", path[160];
  const char *args[] = {"--debounce-ms", "60000", NULL};
  char text[2048];

  ck_assert(mkdtemp(dir) != NULL);
  snprintf(text, sizeof(text), "%s---\n%s", ext_a, tmpl_in);
  snprintf(path, sizeof(path), "%s/a.yaml", dir);
  tk_write_file(path, text, strlen(text));
  ck_assert_int_eq(server_proc_start(dir, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 5000) == 0,
             "no first generation");
  server_proc_log_mark(g_sp);
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGHUP), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "reloaded (SIGHUP): nothing changed",
                                  5000) == 0,
             "SIGHUP did not say it reloaded");
  /* A change inotify has not delivered yet (a 60 s debounce): SIGHUP
   * loads it at once and says what changed. */
  server_proc_log_mark(g_sp);
  tk_write_file(path, tmpl_in, strlen(tmpl_in));
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGHUP), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp,
                                  "reloaded (SIGHUP): 0 added, 0 updated, 1 "
                                  "removed",
                                  5000) == 0,
             "SIGHUP did not say what changed");
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 2", 5000) == 0,
             "the change is not served");
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(dir);
}
END_TEST

/* SIGHUP (or SIGTERM) that arrives while the server is still starting is
 * remembered and acted on once it serves, never the default action that
 * kills the process: an operator's reload racing a restart must not stop
 * the service. */
START_TEST(sighup_during_startup_is_kept) {
  char dir[] = "/tmp/check_app_hup0XXXXXX", path[160];
  const char *args[] = {"--debounce-ms", "60000", NULL};
  char text[2048];

  ck_assert(mkdtemp(dir) != NULL);
  snprintf(text, sizeof(text), "%s---\n%s", ext_a, tmpl_in);
  snprintf(path, sizeof(path), "%s/a.yaml", dir);
  tk_write_file(path, text, strlen(text));
  ck_assert_int_eq(server_proc_start(dir, args, &g_sp), 0);
  /* As early as the log shows the process is ours: before the store, the
   * publisher and the serving loop exist. */
  E2E_ASSERT(server_proc_wait_log(g_sp, "admin HTTP on", 5000) == 0,
             "no admin line");
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGHUP), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving xDS on", 5000) == 0,
             "the server did not survive a SIGHUP during start-up");
  E2E_ASSERT(server_proc_wait_log(g_sp, "reloaded (SIGHUP)", 5000) == 0,
             "the SIGHUP during start-up was not acted on");
  ck_assert_int_eq(kill(server_proc_pid(g_sp), 0), 0);
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(dir);
}
END_TEST

START_TEST(sighup_says_it_reloaded_etcd) {
  struct etcd_proc e;
  char store[160];

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_app: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/ListenerTemplate/in", tmpl_in), 0);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  ck_assert_int_eq(server_proc_start(store, NULL, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 10000) == 0,
             "no first generation");
  server_proc_log_mark(g_sp);
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGHUP), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "(SIGHUP, revision ", 5000) == 0 &&
                 server_proc_wait_log(g_sp, "): nothing changed", 0) == 0,
             "SIGHUP did not say it reloaded the etcd store");
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 2", 300) ==
                 XDS_ENOTFOUND,
             "a reload that changed nothing served a generation");
  server_proc_free(g_sp);
  g_sp = NULL;
  etcd_proc_stop(&e);
}
END_TEST

/* wasmxds_store_revision follows etcd: the revision of the first catalog,
 * then that of a put which changes the catalog (issue 17). */
START_TEST(store_revision_metric_follows_etcd) {
  struct etcd_proc e;
  char store[160], want[96];
  long long rev;

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_app: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/ListenerTemplate/in", tmpl_in), 0);
  ck_assert_int_eq(etcd_proc_ctl(&e, "put /other/key x"), 0);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  ck_assert_int_eq(server_proc_start(store, NULL, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 10000) == 0,
             "no first generation");
  rev = etcd_proc_revision(&e);
  ck_assert_int_gt(rev, 2);
  snprintf(want, sizeof(want), "\nwasmxds_store_revision %lld\n", rev);
  wait_http("/metrics", 200, want);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/WasmExtension/acme/a", ext_a), 0);
  rev = etcd_proc_revision(&e);
  snprintf(want, sizeof(want), "\nwasmxds_store_revision %lld\n", rev);
  wait_http("/metrics", 200, want);
  server_proc_free(g_sp);
  g_sp = NULL;
  etcd_proc_stop(&e);
}
END_TEST

/* ---- readiness notification (issue 17) ------------------------------------
 */

/* One datagram from fd within timeout_ms, NUL-terminated in buf ("" on
 * timeout). */
static void notify_recv(int fd, char *buf, size_t cap, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  ssize_t n = -1;

  buf[0] = '\0';
  if (poll(&p, 1, timeout_ms) == 1)
    n = recv(fd, buf, cap - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
}

/* The server tells NOTIFY_SOCKET (a path when abstract is 0, an @name
 * otherwise) READY=1 once /readyz says ready, then STOPPING=1 on SIGTERM,
 * and nothing else. */
static void check_notify(int abstract) {
  char dir[] = "/tmp/check_app_notifyXXXXXX", path[160], env[200];
  char got[256], out[4096];
  struct sockaddr_un a;
  socklen_t alen;
  int fd;

  ck_assert(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/a.yaml", dir);
  {
    char text[2048];

    snprintf(text, sizeof(text), "%s---\n%s", ext_a, tmpl_in);
    tk_write_file(path, text, strlen(text));
  }
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  if (abstract) {
    snprintf(env, sizeof(env), "@check_app_notify_%ld", (long)getpid());
    memcpy(a.sun_path + 1, env + 1, strlen(env) - 1);
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(env));
  } else {
    snprintf(env, sizeof(env), "%s/notify", dir);
    ck_assert(strlen(env) < sizeof(a.sun_path));
    memcpy(a.sun_path, env, strlen(env) + 1);
    alen = (socklen_t)sizeof(a);
  }
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert(fd >= 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, alen), 0);
  ck_assert_int_eq(setenv("NOTIFY_SOCKET", env, 1), 0);
  ck_assert_int_eq(server_proc_start(dir, NULL, &g_sp), 0);
  unsetenv("NOTIFY_SOCKET");
  notify_recv(fd, got, sizeof(got), 10000);
  ck_assert_str_eq(got, "READY=1");
  /* Sent no earlier than /readyz says ready. */
  ck_assert_int_eq(http("GET", "/readyz", out), 200);
  notify_recv(fd, got, sizeof(got), 300);
  ck_assert_str_eq(got, "");
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGTERM), 0);
  notify_recv(fd, got, sizeof(got), 5000);
  ck_assert_str_eq(got, "STOPPING=1");
  server_proc_free(g_sp);
  g_sp = NULL;
  close(fd);
  tk_rm_tree(dir);
}

START_TEST(notify_socket_path) {
  check_notify(0);
}
END_TEST

START_TEST(notify_socket_abstract) {
  check_notify(1);
}
END_TEST

/* A module whose pulls keep failing the same way: the retries publish no
 * generation and log no "serving generation N (modules changed)". */
START_TEST(failed_pull_retries_publish_nothing) {
  char dir[] = "/tmp/check_app_pullXXXXXX", path[160];
  const char *args[] = {"--module-retry-max", "1000", "--module-fetch-timeout",
                        "500", NULL};
  char text[4096];

  ck_assert(mkdtemp(dir) != NULL);
  /* Port 1 on loopback: refused at once, every time. */
  snprintf(text, sizeof(text),
           "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
           "metadata: {organization: acme, name: gone}\n"
           "spec: {url: 'http://127.0.0.1:1/gone.wasm', sha256: "
           "'%064d', failStrategy: FAIL_CLOSE}\n---\n%s",
           0, tmpl_in);
  snprintf(path, sizeof(path), "%s/a.yaml", dir);
  tk_write_file(path, text, strlen(text));
  ck_assert_int_eq(server_proc_start(dir, args, &g_sp), 0);
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation 1", 5000) == 0,
             "no first generation");
  /* The first failure may change what is served (the substitute's
   * reason); let it happen, then watch the retries. */
  tk_sleep_ms(1500);
  server_proc_log_mark(g_sp);
  tk_sleep_ms(3500); /* three or more retries at most 1 s apart */
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving generation", 0) ==
                 XDS_ENOTFOUND,
             "a failed pull retry published a generation");
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(dir);
}
END_TEST

static Suite *app_suite(void) {
  Suite *s = suite_create("app");
  TCase *tc = tcase_create("command_line");

  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, help_after_each_subcommand);
  tcase_add_test(tc, usage_errors_name_the_subcommand);
  tcase_add_test(tc, whole_number_flags_name_their_bounds);
  tcase_add_test(tc, render_dump_dir_is_created_with_parents);
  suite_add_tcase(s, tc);
  tc = tcase_create("store_guard");
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, file_store_mass_removal_is_held);
  tcase_add_test(tc, etcd_prefix_deleted_is_held);
  suite_add_tcase(s, tc);
  tc = tcase_create("duplicates");
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, file_duplicate_newcomer_is_rejected);
  tcase_add_test(tc, etcd_duplicate_newcomer_is_rejected);
  suite_add_tcase(s, tc);
  tc = tcase_create("first_run");
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, first_command_on_a_fresh_machine);
  tcase_add_test(tc, example_module_matches_its_source);
  suite_add_tcase(s, tc);
  tc = tcase_create("logs");
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, sighup_says_it_reloaded);
  tcase_add_test(tc, sighup_during_startup_is_kept);
  tcase_add_test(tc, sighup_says_it_reloaded_etcd);
  tcase_add_test(tc, store_revision_metric_follows_etcd);
  tcase_add_test(tc, notify_socket_path);
  tcase_add_test(tc, notify_socket_abstract);
  tcase_add_test(tc, failed_pull_retries_publish_nothing);
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
