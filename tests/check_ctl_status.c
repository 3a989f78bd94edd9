/*
 * check_ctl_status.c: `wasmxdsctl status` against two real wasmxds
 * replicas on one real etcd (the end-to-end store applied with `wasmxdsctl
 * apply`), with proxies on both: the fleet table names each proxy's
 * replica and state; the exit status is 0 while every proxy is in sync and
 * 6 once one NACKs; `status PROXY` shows its listeners' HTTP filters in
 * order with what each is served as (a Wasm module, the deny-all
 * substitute) and the rejection; -o json / yaml / wide; 4 for a proxy
 * connected nowhere, 7 for a server that cannot be asked.
 */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/helpers/etcd_proc.h"
#include "tests/testkit.h"

#include "envoy/admin/v3/config_dump_shared.pb-c.h"

#define E2E_STORE XDS_TEST_DATA "/e2e/store.yaml"
#define PAYMENTS "organizations/acme/tenants/payments"
#define WAIT_MS 5000

static struct server_proc *g_ra, *g_rb;
#define E2E_SERVER g_ra

static const char *ctl_bin(void) {
  static char path[512];
  const char *bin = getenv("WASMXDSCTL"), *bdir = getenv("WASMXDS_BUILDDIR");

  if (bin != NULL)
    return bin;
  snprintf(path, sizeof(path), "%s/wasmxdsctl", bdir != NULL ? bdir : ".");
  return path;
}

/* Runs wasmxdsctl with args (one shell word list); returns its exit status
 * and its stdout in a new string (*out). */
static int ctl(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ctl(char **out, const char *fmt, ...) {
  char args[2048], cmd[3072], tmpl[] = "/tmp/ctlstatus.XXXXXX";
  va_list ap;
  int fd = mkstemp(tmpl), ws;
  size_t len;

  ck_assert_int_ge(fd, 0);
  close(fd);
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof(cmd), "%s %s >%s", ctl_bin(), args, tmpl);
  ws = system(cmd);
  *out = tk_read_file(tmpl, &len);
  unlink(tmpl);
  ck_assert_ptr_nonnull(*out);
  ck_assert_msg(WIFEXITED(ws), "%s: did not exit", cmd);
  return WEXITSTATUS(ws);
}

/* The line of out that starts with node, or NULL (a static copy). */
static const char *line_of(const char *out, const char *node) {
  static char line[1024];
  const char *p = out;
  size_t n = strlen(node);

  while (p != NULL && *p != '\0') {
    const char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
    if (len > n && strncmp(p, node, n) == 0 && p[n] == ' ') {
      snprintf(line, sizeof(line), "%.*s", (int)len, p);
      return line;
    }
    p = nl != NULL ? nl + 1 : NULL;
  }
  return NULL;
}

static struct fleet_proxy *proxy(struct server_proc *sp, const char *id,
                                 enum fleet_state st) {
  struct fleet_proxy *p;

  E2E_ASSERT(fleet_proxy_new(server_proc_target(sp), id, PAYMENTS, st, &p) == 0,
             "proxy %s", id);
  return p;
}

/* Waits until the server sees node id's listeners in state want. */
static void settle(struct server_proc *sp, const char *id, int want) {
  Envoy__Service__Status__V3__ClientStatusResponse *r = fleet_wait_state(
      server_proc_target(sp), id, XDS_TYPE_LISTENER, want, WAIT_MS);
  fleet_response_free(r);
}

START_TEST(test_status_two_replicas) {
  struct etcd_proc e;
  const char *args[] = {"--debounce-ms", "20", NULL};
  struct fleet_proxy *a1, *b1, *b2;
  char store[160], servers[256], *out;
  const char *l;
  json_t *doc;
  int rc;

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_ctl_status: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  rc = ctl(&out, "--store %s apply -f %s", store, E2E_STORE);
  ck_assert_msg(rc == 0, "apply of the e2e store: exit %d: %s", rc, out);
  free(out);
  ck_assert_int_eq(server_proc_start(store, args, &g_ra), 0);
  ck_assert_int_eq(server_proc_start(store, args, &g_rb), 0);
  snprintf(servers, sizeof(servers), "--server %s --server %s",
           server_proc_target(g_ra), server_proc_target(g_rb));

  a1 = proxy(g_ra, "ctl-a1", FLEET_SYNCED);
  b1 = proxy(g_rb, "ctl-b1", FLEET_SYNCED);
  settle(g_ra, "ctl-a1", ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED);
  settle(g_rb, "ctl-b1", ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED);

  /* In sync on both replicas: 0, each proxy with its replica. */
  rc = ctl(&out, "status %s", servers);
  E2E_ASSERT(rc == 0, "status with all in sync: exit %d:\n%s", rc, out);
  l = line_of(out, "ctl-a1");
  E2E_ASSERT(l != NULL && strstr(l, server_proc_target(g_ra)) != NULL &&
                 strstr(l, PAYMENTS) != NULL && strstr(l, "SIDECAR") != NULL &&
                 strstr(l, "SYNCED    SYNCED") != NULL,
             "ctl-a1's line: %s\n%s", l, out);
  l = line_of(out, "ctl-b1");
  E2E_ASSERT(l != NULL && strstr(l, server_proc_target(g_rb)) != NULL,
             "ctl-b1's line: %s", l);
  free(out);

  /* One proxy NACKs: 6, and its line says NACKED. */
  b2 = proxy(g_rb, "ctl-b2", FLEET_NACKED);
  settle(g_rb, "ctl-b2", ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED);
  rc = ctl(&out, "status %s", servers);
  E2E_ASSERT(rc == 6, "status with a NACK: exit %d, want 6:\n%s", rc, out);
  l = line_of(out, "ctl-b2");
  E2E_ASSERT(l != NULL && strstr(l, "NACKED") != NULL, "ctl-b2's line: %s", l);
  E2E_ASSERT(line_of(out, "ctl-a1") != NULL && line_of(out, "ctl-b1") != NULL,
             "a proxy is missing:\n%s", out);
  free(out);

  /* -o json: one object per proxy with its server and states. */
  rc = ctl(&out, "status %s -o json", servers);
  E2E_ASSERT(rc == 6, "status -o json: exit %d", rc);
  doc = json_loads(out, 0, NULL);
  E2E_ASSERT(json_is_array(doc) && json_array_size(doc) == 3,
             "status -o json: not an array of 3:\n%s", out);
  E2E_ASSERT(
      strcmp(
          json_string_value(json_object_get(json_array_get(doc, 1), "server")),
          server_proc_target(g_rb)) == 0 &&
          strcmp(json_string_value(json_object_get(
                     json_object_get(json_array_get(doc, 2), "lds"), "state")),
                 "NACKED") == 0,
      "status -o json:\n%s", out);
  json_decref(doc);
  free(out);
  rc = ctl(&out, "status %s -o yaml", servers);
  E2E_ASSERT(rc == 6 && strstr(out, "- node: \"ctl-b2\"") != NULL &&
                 strstr(out, "  state: \"NACKED\"") != NULL,
             "status -o yaml: exit %d:\n%s", rc, out);
  free(out);
  rc = ctl(&out, "status %s -o wide", servers);
  E2E_ASSERT(rc == 6 && strstr(out, "LDS VERSION") != NULL &&
                 strstr(out, "sotw") != NULL,
             "status -o wide: exit %d:\n%s", rc, out);
  free(out);

  /* One proxy: its listeners' filters in order, what each is served as. */
  rc = ctl(&out, "status ctl-a1 %s", servers);
  E2E_ASSERT(rc == 0, "status ctl-a1: exit %d:\n%s", rc, out);
  {
    const char *opa = strstr(out, FLEET_EXT_WASM);
    const char *deny = strstr(out, FLEET_EXT_SUBSTITUTE);
    const char *router = strstr(out, "envoy.filters.http.router");
    E2E_ASSERT(strstr(out, "Listener inbound-http") != NULL &&
                   strstr(out, "Listener outbound-http") != NULL,
               "status ctl-a1 lacks its listeners:\n%s", out);
    E2E_ASSERT(opa != NULL && deny != NULL && router != NULL && opa < deny &&
                   deny < router,
               "status ctl-a1: filters not in chain order:\n%s", out);
    E2E_ASSERT(strstr(out, "SYNCED    wasm") != NULL &&
                   strstr(out, "SYNCED    substitute: deny-all RBAC "
                               "(FAIL_CLOSE)") != NULL,
               "status ctl-a1: served-as column:\n%s", out);
  }
  free(out);
  rc = ctl(&out, "status ctl-b2 %s", servers);
  E2E_ASSERT(rc == 6 && strstr(out, "NACKED") != NULL &&
                 strstr(out, "error: " FLEET_NACK_ERROR) != NULL,
             "status ctl-b2: exit %d:\n%s", rc, out);
  free(out);

  /* A proxy connected nowhere: 4. A server that cannot be asked: 7. */
  rc = ctl(&out, "status no-such-proxy %s", servers);
  E2E_ASSERT(rc == 4, "status of an unknown proxy: exit %d", rc);
  free(out);
  rc = ctl(&out, "status --timeout-ms 2000 --server %s --server 127.0.0.1:1",
           server_proc_target(g_ra));
  E2E_ASSERT(rc == 7 && line_of(out, "ctl-a1") != NULL,
             "status with a dead server: exit %d:\n%s", rc, out);
  free(out);
  rc = ctl(&out, "status -o xml");
  E2E_ASSERT(rc == 2, "status -o xml: exit %d", rc);
  free(out);

  fleet_proxy_free(a1);
  fleet_proxy_free(b1);
  fleet_proxy_free(b2);
  server_proc_stop(g_ra, NULL);
  server_proc_stop(g_rb, NULL);
  server_proc_free(g_rb);
  g_rb = NULL;
  server_proc_free(g_ra);
  g_ra = NULL;
  etcd_proc_stop(&e);
}
END_TEST

/* A proxy's NACK message is its own text: terminal escapes, newlines and
 * bytes that are not UTF-8 reach neither the operator's terminal nor the
 * JSON (where jansson refused the string and dropped the error). */
START_TEST(test_status_hostile_nack) {
  struct fleet_proxy *p;
  char *out;
  json_t *doc;
  const char *err;
  int rc;

  ck_assert_int_eq(server_proc_start(E2E_STORE, NULL, &g_ra), 0);
  fleet_set_nack_error("bad \x1b[2J\x1b]0;pwned\x07 filter\nnext \xff\xfe end");
  p = proxy(g_ra, "ctl-evil", FLEET_NACKED);
  fleet_set_nack_error(NULL);
  settle(g_ra, "ctl-evil", ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED);
  rc = ctl(&out, "status ctl-evil --server %s", server_proc_target(g_ra));
  E2E_ASSERT(rc == 6, "status ctl-evil: exit %d:\n%s", rc, out);
  E2E_ASSERT(strchr(out, '\x1b') == NULL && strchr(out, '\x07') == NULL &&
                 strstr(out, "\xff") == NULL,
             "raw control or invalid bytes in:\n%s", out);
  /* (The server keeps bytes that are not UTF-8 as '?'.) */
  E2E_ASSERT(strstr(out, "bad \xef\xbf\xbd[2J") != NULL &&
                 strstr(out, " filter next ") != NULL &&
                 strstr(out, " end") != NULL,
             "the error is not shown sanitised:\n%s", out);
  free(out);
  rc = ctl(&out, "status ctl-evil --server %s -o json",
           server_proc_target(g_ra));
  E2E_ASSERT(rc == 6, "status ctl-evil -o json: exit %d", rc);
  doc = json_loads(out, 0, NULL);
  err = json_string_value(json_object_get(
      json_array_get(json_object_get(doc, "listeners"), 0), "error"));
  E2E_ASSERT(err != NULL && strstr(err, "filter next") != NULL,
             "-o json lost the error:\n%s", out);
  json_decref(doc);
  free(out);
  fleet_proxy_free(p);
  server_proc_stop(g_ra, NULL);
  server_proc_free(g_ra);
  g_ra = NULL;
}
END_TEST

int main(void) {
  Suite *s = suite_create("ctl_status");
  TCase *tc = tcase_create("ctl_status");
  SRunner *sr;
  int failed;

  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_status_two_replicas);
  tcase_add_test(tc, test_status_hostile_nack);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
