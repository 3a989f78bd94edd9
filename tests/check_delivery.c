/*
 * check_delivery.c: the module path end to end. An oci:// extension in the
 * file store, its image in a real docker-registry on loopback: wasmxds
 * pulls it, and an ADS client receives ECDS remote code whose URL, fetched
 * from wasmxds, returns bytes with exactly the advertised sha256 (and the
 * image's root id as the default root_id). A restart with the warm cache
 * makes no request to the registry. A private module (pulled with a pull
 * secret from a registry that needs one) reaches an allowed proxy as a
 * capability URL that works, while the bare URL, a forged token and a
 * proxy of another tenant get nothing.
 */
#include <check.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/registry.h"
#include "server/pb/typeurl.h"

#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"

#define FQN "organizations/acme/extensions/auth"

struct body {
  unsigned char *data;
  size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  struct body *b = arg;
  unsigned char *q = realloc(b->data, b->len + size * n);

  if (q == NULL)
    return 0;
  memcpy(q + b->len, p, size * n);
  b->data = q;
  b->len += size * n;
  return size * n;
}

static long http_get(const char *url, struct body *b) {
  CURL *c = curl_easy_init();
  long code = 0;

  ck_assert_ptr_nonnull(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

/* Pushes an oci-variant image; returns the module's sha256 in hex. */
static void push_image(struct registry *r, char *wasm_hex) {
  static const char config[] =
      "{\"type\":\"envoy_proxy\",\"abiVersions\":[\"v0-"
      "097b7f2e4cc1fb490cc1943d0d633655ac3c522f\"],"
      "\"config\":{\"rootIds\":[\"from_image\"],\"root_ids\":[\"from_image\"]}"
      "}";
  unsigned char *wasm = mt_wasm(8192, 42);
  char cfg_hex[65], man_hex[65], manifest[1024];

  ck_assert_int_eq(registry_push_blob(r, "acme/auth", wasm, 8192, wasm_hex), 0);
  ck_assert_int_eq(
      registry_push_blob(r, "acme/auth", config, strlen(config), cfg_hex), 0);
  snprintf(manifest, sizeof(manifest),
           "{\"schemaVersion\":2,"
           "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
           "\"config\":{\"mediaType\":\"application/"
           "vnd.module.wasm.config.v1+json\","
           "\"digest\":\"sha256:%s\",\"size\":%zu},"
           "\"layers\":[{\"mediaType\":\"application/"
           "vnd.module.wasm.content.layer.v1+wasm\","
           "\"digest\":\"sha256:%s\",\"size\":8192}]}",
           cfg_hex, strlen(config), wasm_hex);
  ck_assert_int_eq(
      registry_push_manifest(r, "acme/auth", "1.0",
                             "application/vnd.oci.image.manifest.v1+json",
                             manifest, man_hex),
      0);
  free(wasm);
}

/* extra: more lines of the extension's spec (private modules). */
static void write_store(const char *dir, const char *registry_host,
                        const char *extra) {
  char path[512], text[2048];

  snprintf(path, sizeof(path), "%s/store.yaml", dir);
  snprintf(text, sizeof(text),
           "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
           "metadata: {organization: acme, name: auth}\n"
           "spec:\n  url: oci://%s/acme/auth:1.0\n  phase: AUTHZ\n"
           "  imagePullPolicy: IfNotPresent\n%s"
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"
           "  route: {cluster: app}\n  httpFilters:\n"
           "  - name: envoy.filters.http.router\n"
           "    typedConfig: {'@type': "
           "envoy.extensions.filters.http.router.v3.Router}\n",
           registry_host, extra);
  ck_assert_int_eq(mt_write_file(path, text, strlen(text)), 0);
}

/* Subscribes to FQN over ADS as a proxy with node metadata meta and waits
 * up to secs for its Wasm config; returns it (caller frees with
 * xds_msg_free), or NULL when none came. A response must hold FQN alone,
 * as Wasm or as the FAIL_CLOSE substitute; *seen (nullable) counts the
 * resources received. */
static Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *
wait_for_wasm_as(struct server_proc *sp, const char *const *meta, int secs,
                 int *seen) {
  Envoy__Config__Core__V3__Node *node = xds_node_new("d-1", "c", meta, NULL);
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm = NULL;
  char *names[] = {FQN};
  struct xds_client *c;
  struct xds_stream *s;
  time_t deadline = time(NULL) + secs;

  ck_assert_int_eq(xds_client_new(server_proc_target(sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &s), 0);
  req.node = node;
  req.type_url = TYPE_ECDS;
  req.resource_names = names;
  req.n_resource_names = 1;
  ck_assert_int_eq(xds_stream_send_request(s, &req, 2000), 0);
  while (wasm == NULL && time(NULL) < deadline) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
    Envoy__Config__Core__V3__TypedExtensionConfig *tec;
    if (xds_stream_recv_response(s, 2000, &r) != 0)
      continue;
    if (r->n_resources == 0) { /* not (or no longer) ours to see */
      req.node = NULL;
      req.version_info = r->version_info;
      req.response_nonce = r->nonce;
      ck_assert_int_eq(xds_stream_send_request(s, &req, 2000), 0);
      xds_msg_free(r);
      continue;
    }
    ck_assert_uint_eq(r->n_resources, 1);
    if (seen != NULL)
      (*seen)++;
    tec = xds_any_to_typed_extension_config(r->resources[0]);
    ck_assert_ptr_nonnull(tec);
    ck_assert_str_eq(tec->name, FQN);
    if (strcmp(tec->typed_config->type_url, TYPE_WASM) == 0)
      wasm = xds_any_to_wasm(tec->typed_config);
    else /* not fetched yet: the FAIL_CLOSE substitute */
      ck_assert_str_eq(tec->typed_config->type_url, TYPE_RBAC);
    /* ACK and wait for the next. */
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
  return wasm;
}

/* The Wasm config of FQN for a proxy of organization acme (20 s). */
static Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *
wait_for_wasm(struct server_proc *sp) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm =
      wait_for_wasm_as(sp, meta, 20, NULL);

  if (wasm == NULL)
    server_proc_dump_log(sp);
  ck_assert_msg(wasm != NULL, "no Wasm config for %s within 20 s", FQN);
  return wasm;
}

START_TEST(oci_module_reaches_envoy_through_the_cache) {
  char dir[64], cache[600], wasm_hex[65], got_hex[65];
  const char *args[5];
  struct registry *reg = registry_start(NULL, NULL);
  struct server_proc *sp;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  Envoy__Config__Core__V3__RemoteDataSource *remote;
  struct body b = {NULL, 0};
  long before;

  ck_assert_ptr_nonnull(reg);
  push_image(reg, wasm_hex);
  mt_tmpdir(dir, sizeof(dir));
  write_store(dir, registry_host(reg), "");
  snprintf(cache, sizeof(cache), "%s/cache", dir);
  args[0] = "--module-cache";
  args[1] = cache;
  args[2] = NULL;
  {
    char store[600];
    snprintf(store, sizeof(store), "%s/store.yaml", dir);
    ck_assert_int_eq(server_proc_start(store, args, &sp), 0);
  }
  wasm = wait_for_wasm(sp);
  ck_assert_int_eq(
      wasm->config->vm_config->code->specifier_case,
      ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_REMOTE);
  remote = wasm->config->vm_config->code->remote;
  ck_assert_str_eq(remote->sha256, wasm_hex);
  ck_assert_str_eq(wasm->config->root_id, "from_image");
  ck_assert_str_eq(remote->http_uri->cluster, "wasmxds_modules");
  ck_assert_ptr_nonnull(strstr(remote->http_uri->uri, "/modules/sha256/"));
  ck_assert_int_eq(http_get(remote->http_uri->uri, &b), 200);
  mt_sha(b.data, b.len, got_hex);
  ck_assert_str_eq(got_hex, wasm_hex);
  free(b.data);
  xds_msg_free(wasm);

  /* A restart on the warm cache: served again without asking the
   * registry. */
  before = registry_requests(reg);
  server_proc_free(sp);
  {
    char store[600];
    snprintf(store, sizeof(store), "%s/store.yaml", dir);
    ck_assert_int_eq(server_proc_start(store, args, &sp), 0);
  }
  wasm = wait_for_wasm(sp);
  ck_assert_str_eq(wasm->config->vm_config->code->remote->sha256, wasm_hex);
  xds_msg_free(wasm);
  ck_assert_int_eq(registry_requests(reg), before);
  server_proc_free(sp);
  registry_stop(reg);
  mt_rmrf(dir);
}
END_TEST

START_TEST(private_module_only_through_its_capability_url) {
  static const char *const pay[] = {"wasmxds.tenant",
                                    "organizations/acme/tenants/pay", NULL};
  static const char *const web[] = {"wasmxds.tenant",
                                    "organizations/acme/tenants/web", NULL};
  char dir[64], path[700], cache[600], secrets[600], token[600];
  char wasm_hex[65], got_hex[65], url[1024], *q;
  const char *args[9];
  struct registry *reg = registry_start("alice", "s3cret");
  struct server_proc *sp;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  const char *uri;
  struct body b = {NULL, 0};
  /* base64("alice:s3cret") */
  static const char secret_json[] =
      "{\"auths\": {\"%s\": {\"auth\": \"YWxpY2U6czNjcmV0\"}}}";
  char json[256];
  int seen = 0;

  ck_assert_ptr_nonnull(reg);
  push_image(reg, wasm_hex);
  mt_tmpdir(dir, sizeof(dir));
  write_store(dir, registry_host(reg),
              "  imagePullSecret: regcred\n"
              "  allowedIn: [organizations/acme/tenants/pay]\n");
  snprintf(secrets, sizeof(secrets), "%s/secrets", dir);
  ck_assert_int_eq(mkdir(secrets, 0700), 0);
  snprintf(path, sizeof(path), "%s/regcred.json", secrets);
  snprintf(json, sizeof(json), secret_json, registry_host(reg));
  ck_assert_int_eq(mt_write_file(path, json, strlen(json)), 0);
  snprintf(token, sizeof(token), "%s/token.secret", dir);
  ck_assert_int_eq(mt_write_file(token, "0123456789abcdef0123456789abcdef", 32),
                   0);
  snprintf(cache, sizeof(cache), "%s/cache", dir);
  args[0] = "--module-cache";
  args[1] = cache;
  args[2] = "--pull-secrets";
  args[3] = secrets;
  args[4] = "--module-token-secret";
  args[5] = token;
  args[6] = NULL;
  snprintf(path, sizeof(path), "%s/store.yaml", dir);
  ck_assert_int_eq(server_proc_start(path, args, &sp), 0);

  wasm = wait_for_wasm_as(sp, pay, 20, NULL);
  if (wasm == NULL)
    server_proc_dump_log(sp);
  ck_assert_ptr_nonnull(wasm);
  ck_assert_str_eq(wasm->config->vm_config->code->remote->sha256, wasm_hex);
  uri = wasm->config->vm_config->code->remote->http_uri->uri;
  ck_assert_msg(strstr(uri, ".wasm?ext=") != NULL && strstr(uri, "&t=") != NULL,
                "not a capability URL: %s", uri);
  ck_assert_int_eq(http_get(uri, &b), 200);
  mt_sha(b.data, b.len, got_hex);
  ck_assert_str_eq(got_hex, wasm_hex);
  free(b.data);
  b.data = NULL;
  b.len = 0;
  /* The bare URL, and the token with its last digit changed. */
  snprintf(url, sizeof(url), "%s", uri);
  q = strchr(url, '?');
  *q = '\0';
  ck_assert_int_eq(http_get(url, &b), 403);
  snprintf(url, sizeof(url), "%s", uri);
  q = url + strlen(url) - 1;
  *q = *q == '0' ? '1' : '0';
  ck_assert_int_eq(http_get(url, &b), 403);
  free(b.data);
  xds_msg_free(wasm);

  /* Tenant web is not in allowedIn: asking for the name by itself yields
   * nothing under that name (no config, no URL, no substitute). */
  wasm = wait_for_wasm_as(sp, web, 3, &seen);
  ck_assert_ptr_null(wasm);
  ck_assert_int_eq(seen, 0);

  server_proc_free(sp);
  registry_stop(reg);
  mt_rmrf(dir);
}
END_TEST

static int file_has(const char *path, const char *text) {
  static char buf[1 << 20];
  FILE *f = fopen(path, "r");
  size_t n;

  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

/* render --fetch-modules resolves the image as the server would and shows
 * the remote code Envoy would get; without it, the substitute. */
START_TEST(render_fetches_modules_when_asked) {
  const char *bin = getenv("WASMXDS_BIN");
  char dir[64], cmd[2048], out[600], want[300], wasm_hex[65];
  struct registry *reg = registry_start(NULL, NULL);
  int st;

  ck_assert_ptr_nonnull(bin);
  ck_assert_ptr_nonnull(reg);
  push_image(reg, wasm_hex);
  mt_tmpdir(dir, sizeof(dir));
  write_store(dir, registry_host(reg), "");
  snprintf(out, sizeof(out), "%s/render.json", dir);
  snprintf(cmd, sizeof(cmd),
           "%s render --store %s/store.yaml --node-id r1 --metadata "
           "wasmxds.organization=acme --fetch-modules --module-cache "
           "%s/cache --module-base-url http://mods.example:9000 >%s "
           "2>%s/render.err",
           bin, dir, dir, out, dir);
  st = system(cmd);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "render: %d", st);
  snprintf(want, sizeof(want),
           "http://mods.example:9000/modules/sha256/%s.wasm", wasm_hex);
  ck_assert_msg(file_has(out, want), "no %s in the rendered JSON", want);
  ck_assert(file_has(out, wasm_hex));
  /* Offline (the default): the FAIL_CLOSE substitute, and why. */
  snprintf(cmd, sizeof(cmd),
           "%s render --store %s/store.yaml --node-id r1 --metadata "
           "wasmxds.organization=acme >%s 2>/dev/null",
           bin, dir, out);
  st = system(cmd);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ck_assert(!file_has(out, wasm_hex));
  ck_assert(file_has(out, "envoy.extensions.filters.http.rbac.v3.RBAC"));
  registry_stop(reg);
  mt_rmrf(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("delivery");
  TCase *tc = tcase_create("delivery");
  SRunner *sr;
  int failed;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  tcase_set_timeout(tc, 90);
  tcase_add_test(tc, oci_module_reaches_envoy_through_the_cache);
  tcase_add_test(tc, private_module_only_through_its_capability_url);
  tcase_add_test(tc, render_fetches_modules_when_asked);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  curl_global_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
