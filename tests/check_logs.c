/*
 * check_logs.c: --log-format json (issue 17 item 4).
 * - In process: base/log's JSON lines (stderr redirected to a file) parse
 *   as JSON objects with time, level and message; the structured fields
 *   come out of the project's usual wording (node, tenant, resource,
 *   version, the error of a NACK); quotes, control characters and bytes
 *   that are not UTF-8 stay valid JSON; text stays the default.
 * - The real wasmxds with --log-format json: every line of its log is a
 *   JSON object; a proxy's NACK is one with node, version and error; gRPC
 *   core's own error (a --listen it cannot resolve), which
 *   server/transport/grpc_log hands to base/log, is one with "component":
 *   "grpc" and its source file and line.
 */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#define E2E_STORE XDS_TEST_DATA "/e2e/store.yaml"

static struct server_proc *g_sp;
#define E2E_SERVER g_sp

/* Runs fn with stderr going to a temporary file; returns its text. */
static char *capture(void (*fn)(void)) {
  char path[] = "/tmp/check_logs.XXXXXX";
  int fd = mkstemp(path), saved = dup(STDERR_FILENO);
  size_t len;
  char *text;

  ck_assert_int_ge(fd, 0);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  text = tk_read_file(path, &len);
  unlink(path);
  ck_assert_ptr_nonnull(text);
  return text;
}

/* The n-th line of text (0-based) parsed as a JSON object. */
static json_t *line_json(const char *text, int n) {
  const char *p = text;
  json_error_t je;
  json_t *o;

  for (int i = 0; i < n && p != NULL; i++) {
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  ck_assert_ptr_nonnull(p);
  o = json_loadb(p, strcspn(p, "\n"), 0, &je);
  ck_assert_msg(json_is_object(o), "line %d is not a JSON object (%s): %.300s",
                n, je.text, p);
  ck_assert_str_eq(json_string_value(json_object_get(o, "level")) != NULL
                       ? "ok"
                       : "no level",
                   "ok");
  ck_assert_ptr_nonnull(json_string_value(json_object_get(o, "time")));
  ck_assert_ptr_nonnull(json_string_value(json_object_get(o, "message")));
  return o;
}

static const char *field(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v != NULL ? v : "(absent)";
}

static void write_lines(void) {
  xds_log_set_format(XDS_LOG_JSON);
  XDS_LOGW("NACK from node edge-1 for LDS version 3f2a (nonce 7; still on "
           "1b2c): listener \"in\" has a bad filter");
  XDS_LOGI("proxy connected: node gw-2 cluster c organization acme tenant "
           "organizations/acme/tenants/web mode GATEWAY");
  XDS_LOGW("modules: organizations/acme/extensions/auth: pull failed");
  XDS_LOGE("weird \"quoted\" \t tab \x01 ctl \xff\xfe not utf-8 \xc3\xa9 ok");
  XDS_LOGI("store loaded: 3 listener templates, node metadata ok");
  XDS_LOGW("grpc: bind failed [chttp2_server.cc:10]");
  /* Lead and continuation bytes that are not UTF-8: an overlong '/', a
   * surrogate, a value past U+10FFFF, a lead byte past F4. */
  XDS_LOGW("node a\xc0\xaf b\xe0\x80\xaf c\xed\xa0\x80 d\xf4\x90\x80\x80 "
           "e\xf8\x88\x80\x80\x80 f");
  XDS_LOGD("not printed at info");
  xds_log_set_format(XDS_LOG_TEXT);
  XDS_LOGI("back to text");
}

START_TEST(test_json_lines) {
  char *text = capture(write_lines);
  json_t *o;

  o = line_json(text, 0);
  ck_assert_str_eq(field(o, "level"), "warn");
  ck_assert_str_eq(field(o, "node"), "edge-1");
  ck_assert_str_eq(field(o, "version"), "3f2a");
  ck_assert_str_eq(field(o, "error"), "listener \"in\" has a bad filter");
  json_decref(o);
  o = line_json(text, 1);
  ck_assert_str_eq(field(o, "node"), "gw-2");
  ck_assert_str_eq(field(o, "tenant"), "organizations/acme/tenants/web");
  json_decref(o);
  o = line_json(text, 2);
  ck_assert_str_eq(field(o, "resource"), "organizations/acme/extensions/auth");
  json_decref(o);
  o = line_json(text, 3);
  ck_assert_str_eq(field(o, "level"), "error");
  ck_assert_msg(strstr(field(o, "message"), "\"quoted\" \t tab \x01 ctl") !=
                        NULL &&
                    strstr(field(o, "message"), "\xc3\xa9 ok") != NULL,
                "message: %s", field(o, "message"));
  json_decref(o);
  o = line_json(text, 4);
  ck_assert_msg(json_object_get(o, "node") == NULL &&
                    json_object_get(o, "resource") == NULL,
                "prose taken for fields: %s", text);
  json_decref(o);
  o = line_json(text, 5);
  ck_assert_str_eq(field(o, "component"), "grpc");
  ck_assert_str_eq(field(o, "source"), "chttp2_server.cc:10");
  ck_assert_str_eq(field(o, "message"),
                   "grpc: bind failed [chttp2_server.cc:10]");
  json_decref(o);
  o = line_json(text, 6);
  ck_assert_msg(strstr(field(o, "message"), "\xed\xa0") == NULL &&
                    strstr(field(o, "message"), "\xef\xbf\xbd f") != NULL,
                "message: %s", field(o, "message"));
  json_decref(o);
  ck_assert_msg(strstr(text, "not printed") == NULL, "%s", text);
  ck_assert_msg(strstr(text, " info  back to text\n") != NULL, "%s", text);
  free(text);
}
END_TEST

/* Every line of the server's log so far is a JSON object. */
static void all_json(const char *log, int min) {
  int n = 0;

  for (const char *p = log; *p != '\0';) {
    size_t len = strcspn(p, "\n");
    json_t *o = json_loadb(p, len, 0, NULL);
    E2E_ASSERT(json_is_object(o), "log line %d is not JSON: %.*s", n, (int)len,
               p);
    json_decref(o);
    n++;
    p += len;
    if (*p == '\n')
      p++;
  }
  E2E_ASSERT(n >= min, "only %d log lines", n);
}

START_TEST(test_server_json) {
  static const char *const args[] = {"--log-format", "json", NULL};
  struct fleet_proxy *p;
  char *line = NULL, *log, cmd[1024], path[] = "/tmp/check_logs.XXXXXX";
  char path2[] = "/tmp/check_logs.XXXXXX";
  json_t *o;
  size_t len;
  int fd, rc;

  ck_assert_int_eq(server_proc_start(E2E_STORE, args, &g_sp), 0);
  E2E_ASSERT(fleet_proxy_new(server_proc_target(g_sp), "log-1",
                             "organizations/acme/tenants/payments",
                             FLEET_NACKED, &p) == 0,
             "proxy");
  rc = server_proc_wait_log_line(g_sp, "\"NACK from node", 5000, &line);
  E2E_ASSERT(rc == 0, "no NACK line");
  o = json_loads(line, 0, NULL);
  E2E_ASSERT(json_is_object(o), "NACK line: %s", line);
  E2E_ASSERT(strcmp(field(o, "node"), "log-1") == 0 &&
                 strcmp(field(o, "error"), FLEET_NACK_ERROR) == 0 &&
                 strcmp(field(o, "version"), "(absent)") != 0,
             "NACK line: %s", line);
  json_decref(o);
  free(line);
  fleet_proxy_free(p);
  rc = server_proc_stop(g_sp, NULL);
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  server_proc_free(g_sp);
  g_sp = NULL;

  /* gRPC core's own error, and the whole log, from a direct run. */
  snprintf(cmd, sizeof(cmd),
           "%s --store %s --listen no-such-host.invalid:1 --admin-listen "
           "127.0.0.1:0 --no-module-fetch --log-format json 2>%s",
           getenv("WASMXDS_BIN"), E2E_STORE, path);
  rc = system(cmd);
  E2E_ASSERT(WIFEXITED(rc) && WEXITSTATUS(rc) != 0, "bad --listen accepted");
  log = tk_read_file(path, &len);
  unlink(path);
  ck_assert_ptr_nonnull(log);
  all_json(log, 2);
  E2E_ASSERT(strstr(log, "\"component\":\"grpc\"") != NULL &&
                 strstr(log, "\"source\":\"") != NULL,
             "no gRPC line in:\n%s", log);
  free(log);

  /* A whole run at debug level (start, serve, stop): every line JSON. */
  fd = mkstemp(path2);
  ck_assert_int_ge(fd, 0);
  close(fd);
  snprintf(cmd, sizeof(cmd),
           "timeout -s TERM 2 %s --store %s --listen 127.0.0.1:0 "
           "--admin-listen 127.0.0.1:0 --no-module-fetch --log-level debug "
           "--log-format json 2>%s",
           getenv("WASMXDS_BIN"), E2E_STORE, path2);
  rc = system(cmd);
  log = tk_read_file(path2, &len);
  unlink(path2);
  ck_assert_ptr_nonnull(log);
  all_json(log, 5);
  E2E_ASSERT(strstr(log, "\"message\":\"stopped\"") != NULL,
             "the run did not stop cleanly:\n%s", log);
  free(log);
}
END_TEST

int main(void) {
  Suite *s = suite_create("logs");
  TCase *tc = tcase_create("logs");
  SRunner *sr;
  int failed;

  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_json_lines);
  tcase_add_test(tc, test_server_json);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
