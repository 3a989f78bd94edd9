/*
 * check_render.c: `wasmxds render` computes what the server serves
 * (issue 14 item 3). Without --fetch-modules it says plainly which
 * modules it did not fetch instead of describing another server setting
 * (the origin's URL as served Wasm); with --fetch-modules its extension
 * config is byte for byte the one the server sends for the same store and
 * flags.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "server/pb/typeurl.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/origin.h"
#include "tests/testkit.h"

#define FQN "organizations/acme/extensions/remote"
#define TMPL                                                                   \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"         \
  "  route: {cluster: app}\n  httpFilters:\n"                                  \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "envoy.extensions.filters.http.router.v3.Router}\n"

static void write_store(const char *dir, const char *url, const char *hex) {
  char path[300], text[2048];

  snprintf(path, sizeof(path), "%s/store", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/store/store.yaml", dir);
  snprintf(text, sizeof(text),
           "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
           "metadata: {organization: acme, name: remote}\n"
           "spec:\n  url: %s\n  sha256: %s\n  phase: AUTHZ\n"
           "  failStrategy: FAIL_CLOSE\n" TMPL,
           url, hex);
  ck_assert_int_eq(mt_write_file(path, text, strlen(text)), 0);
}

/* Runs $WASMXDS_BIN render ARGS with stdout to a file; returns the exit
 * status and the output (free it). */
static int run_render(const char *dir, const char *const *args, char **out) {
  const char *bin = getenv("WASMXDS_BIN");
  const char *argv[40];
  char path[300];
  size_t n = 0, len;
  int status = -1, fd;
  pid_t pid;

  ck_assert_ptr_nonnull(bin);
  argv[n++] = bin;
  argv[n++] = "render";
  for (size_t i = 0; args[i] != NULL && n < 38; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  snprintf(path, sizeof(path), "%s/render.out", dir);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0)
      _exit(127);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  *out = tk_read_file(path, &len);
  ck_assert_ptr_nonnull(*out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The extension_configs entry of FQN in render's JSON. */
static json_t *ext_of(json_t *root) {
  json_t *arr = json_object_get(root, "extension_configs"), *v;
  size_t i;

  json_array_foreach(arr, i, v) {
    if (strcmp(json_string_value(json_object_get(v, "name")), FQN) == 0)
      return v;
  }
  ck_abort_msg("render shows no %s", FQN);
  return NULL;
}

START_TEST(render_says_what_it_did_not_fetch) {
  static const char url[] = "https://modules.example.invalid/remote.wasm";
  char dir[64], store[128], *out, hex[65];
  const char *args[] = {"--store", store,        "--node-id",
                        "n1",      "--metadata", "wasmxds.organization=acme",
                        NULL,      NULL};
  json_error_t je;
  json_t *root, *e;

  mt_tmpdir(dir, sizeof(dir));
  memset(hex, 'a', 64);
  hex[64] = '\0';
  write_store(dir, url, hex);
  snprintf(store, sizeof(store), "%s/store", dir);

  /* The server would fetch it and serve its own URL, or the substitute:
   * render, which did not fetch it, says so. */
  ck_assert_int_eq(run_render(dir, args, &out), 0);
  root = json_loads(out, 0, &je);
  ck_assert_msg(root != NULL, "render printed no JSON: %s", out);
  e = ext_of(root);
  ck_assert_msg(strcmp(json_string_value(json_object_get(e, "served_as")),
                       "not fetched by render; pass --fetch-modules") == 0,
                "render shows %s as %s (%s)", FQN,
                json_string_value(json_object_get(e, "served_as")),
                json_string_value(json_object_get(e, "module_uri")));
  ck_assert_ptr_null(json_object_get(e, "module_uri"));
  ck_assert_ptr_null(strstr(out, url));
  json_decref(root);
  free(out);

  /* A server with --module-http-direct does send the origin's URL, and
   * one with --no-module-fetch too: render says the same with them. */
  args[6] = "--module-http-direct";
  ck_assert_int_eq(run_render(dir, args, &out), 0);
  root = json_loads(out, 0, &je);
  e = ext_of(root);
  ck_assert_str_eq(json_string_value(json_object_get(e, "served_as")), "wasm");
  ck_assert_str_eq(json_string_value(json_object_get(e, "module_uri")), url);
  json_decref(root);
  free(out);
  args[6] = "--no-module-fetch";
  ck_assert_int_eq(run_render(dir, args, &out), 0);
  root = json_loads(out, 0, &je);
  e = ext_of(root);
  ck_assert_str_eq(json_string_value(json_object_get(e, "module_uri")), url);
  json_decref(root);
  free(out);
  mt_rmrf(dir);
}
END_TEST

/* The ECDS resource the server sends for FQN (the Any's value bytes),
 * once it is Wasm (20 s). */
static uint8_t *served_bytes(struct server_proc *sp, size_t *len) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};
  char *names[] = {FQN};
  Envoy__Config__Core__V3__Node *node = xds_node_new("r-1", "c", meta, NULL);
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  struct xds_client *c;
  struct xds_stream *s;
  uint8_t *bytes = NULL;
  time_t until = time(NULL) + 20;

  ck_assert_int_eq(xds_client_new(server_proc_target(sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &s), 0);
  req.node = node;
  req.type_url = TYPE_ECDS;
  req.resource_names = names;
  req.n_resource_names = 1;
  ck_assert_int_eq(xds_stream_send_request(s, &req, 2000), 0);
  while (bytes == NULL && time(NULL) < until) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
    Envoy__Config__Core__V3__TypedExtensionConfig *tec;

    if (xds_stream_recv_response(s, 2000, &r) != 0)
      continue;
    ck_assert_uint_eq(r->n_resources, 1);
    tec = xds_any_to_typed_extension_config(r->resources[0]);
    ck_assert_ptr_nonnull(tec);
    if (strcmp(tec->typed_config->type_url, TYPE_WASM) == 0) {
      *len = r->resources[0]->value.len;
      bytes = malloc(*len);
      ck_assert_ptr_nonnull(bytes);
      memcpy(bytes, r->resources[0]->value.data, *len);
    }
    req.node = NULL;
    req.version_info = r->version_info;
    req.response_nonce = r->nonce;
    ck_assert_int_eq(xds_stream_send_request(s, &req, 2000), 0);
    xds_msg_free(tec);
    xds_msg_free(r);
  }
  xds_stream_free(s);
  xds_client_free(c);
  xds_node_free(node);
  if (bytes == NULL)
    server_proc_dump_log(sp);
  ck_assert_msg(bytes != NULL, "no Wasm config for %s within 20 s", FQN);
  return bytes;
}

START_TEST(render_fetch_matches_server) {
  char dir[64], store[128], cache1[128], cache2[128], dump[128], url[256];
  char hex[65], file[512], *out;
  const char *sargs[] = {"--module-cache", cache1, "--module-base-url",
                         "http://modules.example:8080", NULL};
  const char *rargs[] = {"--store",
                         store,
                         "--node-id",
                         "n1",
                         "--metadata",
                         "wasmxds.organization=acme",
                         "--fetch-modules",
                         "--module-cache",
                         cache2,
                         "--module-base-url",
                         "http://modules.example:8080",
                         "--dump-dir",
                         dump,
                         NULL};
  struct origin *o = origin_start();
  unsigned char *wasm = mt_wasm(3000, 11);
  struct server_proc *sp;
  uint8_t *served, *rendered;
  size_t served_len, rendered_len;

  mt_tmpdir(dir, sizeof(dir));
  mt_sha(wasm, 3000, hex);
  origin_set(o, "/remote.wasm", 200, "application/wasm", wasm, 3000);
  snprintf(url, sizeof(url), "%s/remote.wasm", origin_base(o));
  write_store(dir, url, hex);
  snprintf(store, sizeof(store), "%s/store", dir);
  snprintf(cache1, sizeof(cache1), "%s/cache1", dir);
  snprintf(cache2, sizeof(cache2), "%s/cache2", dir);
  snprintf(dump, sizeof(dump), "%s/dump", dir);
  ck_assert_int_eq(server_proc_start(store, sargs, &sp), 0);
  served = served_bytes(sp, &served_len);
  server_proc_free(sp);

  ck_assert_int_eq(run_render(dir, rargs, &out), 0);
  ck_assert_msg(strstr(out, "http://modules.example:8080/modules/sha256/") !=
                    NULL,
                "%.600s", out);
  free(out);
  snprintf(file, sizeof(file), "%s/ecds-%s.pb", dump,
           "organizations_acme_extensions_remote");
  rendered = (uint8_t *)tk_read_file(file, &rendered_len);
  ck_assert_msg(rendered != NULL, "render wrote no %s", file);
  ck_assert_msg(rendered_len == served_len &&
                    memcmp(rendered, served, served_len) == 0,
                "render's extension config (%zu bytes) differs from the "
                "server's (%zu bytes)",
                rendered_len, served_len);
  free(rendered);
  free(served);
  origin_stop(o);
  free(wasm);
  mt_rmrf(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("render");
  TCase *tc = tcase_create("render");
  SRunner *sr;
  int failed;

  tcase_set_timeout(tc, 90);
  tcase_add_test(tc, render_says_what_it_did_not_fetch);
  tcase_add_test(tc, render_fetch_matches_server);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
