/*
 * check_status_e2e.c: per-resource status on the admin server of the real
 * wasmxds binary (issue 16 item 2): /debug/resources/<kind>/<a>/<b> shows
 * a WasmDeployment's observedGeneration, the error of a filter whose
 * module cannot be pulled, and per proxy DEPLOYMENT_FAILED with the NACK's
 * error, DEPLOYMENT_PENDING while a new version is unanswered and
 * FILTERS_DEPLOYED once the proxy ACKs it; the invalid-field error of a
 * document whose last good version is served; and
 * imagePullOptions.insecureSkipVerify against an https origin with a
 * self-signed certificate (made by the openssl CLI): honoured for exactly
 * the deployment that sets it; and, on a real etcd, the status two
 * replicas with --write-status write back: one writes (the lease holder),
 * the other takes over when it dies; wasmxdsctl get shows it, apply drops
 * it.
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "server/pb/typeurl.h"
#include "base/alloc.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/etcd_proc.h"
#include "tests/helpers/origin.h"
#include "store/etcd_client.h"
#include "store/etcd_config.h"
#include "store/etcd_proto.h"
#include "tests/testkit.h"

#include "google/rpc/status.pb-c.h"

#define DP "networking.enterprise.mesh.gloo.solo.io/wasmdeployment/"
/* Two local filters (served as Wasm) of generation G, configs rev N (a
 * fixed version changes both: a filter the proxy rejected and that is not
 * sent again stays DEPLOYMENT_FAILED there); and a
 * deployment whose image cannot be pulled (nothing listens on port 1). */
#define DEPLOY                                                                 \
  "apiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\n"              \
  "kind: WasmDeployment\n"                                                     \
  "metadata: {name: d, namespace: shop, generation: %d}\n"                     \
  "spec:\n  filters:\n"                                                        \
  "  - localPathSource: /etc/envoy/wasm/a.wasm\n    rootId: a\n"               \
  "    staticFilterConfig:\n"                                                  \
  "      '@type': type.googleapis.com/google.protobuf.StringValue\n"           \
  "      value: rev-%d\n"                                                      \
  "  - localPathSource: /etc/envoy/wasm/b.wasm\n    rootId: b\n"               \
  "    staticFilterConfig:\n"                                                  \
  "      '@type': type.googleapis.com/google.protobuf.StringValue\n"           \
  "      value: rev-%d\n"                                                      \
  "---\n"                                                                      \
  "apiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\n"              \
  "kind: WasmDeployment\n"                                                     \
  "metadata: {name: bad, namespace: shop}\n"                                   \
  "spec:\n  workloadSelector: [{namespaces: [nowhere]}]\n  filters:\n"         \
  "  - wasmImageSource: {wasmImageTag: '127.0.0.1:1/x/y:v1'}\n"

struct http {
  long code;
  struct tk_body b; /* the body */
};

static void http_get(int port, const char *path, struct http *h) {
  CURL *c = curl_easy_init();
  char url[512];

  memset(h, 0, sizeof(*h));
  ck_assert_ptr_nonnull(c);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tk_body_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &h->b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->code);
  curl_easy_cleanup(c);
}

/* Polls path until its 200 body contains want; returns the body parsed. */
static json_t *wait_json(int port, const char *path, const char *want, int ms) {
  long long until = tk_now_ms() + ms;
  struct http h;

  for (;;) {
    http_get(port, path, &h);
    if (h.code == 200 && h.b.data != NULL && strstr(h.b.data, want) != NULL) {
      json_error_t je;
      json_t *j = json_loads(h.b.data, 0, &je);

      ck_assert_msg(j != NULL, "not JSON: %.600s", h.b.data);
      free(h.b.data);
      return j;
    }
    if (tk_now_ms() > until)
      ck_abort_msg("GET %s: %ld, no %s in: %.800s", path, h.code, want,
                   h.b.data ? h.b.data : "");
    free(h.b.data);
    tk_sleep_ms(100);
  }
}

static void write_deploy(const char *dir, int generation, int rev) {
  char text[2048];

  snprintf(text, sizeof(text), DEPLOY, generation, rev, rev);
  tk_write_store_doc(dir, "deploy.yaml", text);
}

/* Sends an ECDS request: the first (no nonce), an ACK, or a NACK with
 * error. */
static void send_ecds(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                      char **names, size_t n, const char *version,
                      const char *nonce, const char *error) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;

  req.node = node;
  req.type_url = TYPE_ECDS;
  req.resource_names = names;
  req.n_resource_names = n;
  if (version != NULL)
    req.version_info = (char *)version;
  if (nonce != NULL)
    req.response_nonce = (char *)nonce;
  if (error != NULL) {
    st.code = 3;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  ck_assert_int_eq(xds_stream_send_request(s, &req, 5000), 0);
}

/* Runs `wasmxdsctl status REF --server TARGET -o json` (wasmxdsctl next to
 * $WASMXDS_BIN); returns its exit status and *out its stdout as JSON. */
static int ctl_status_ref(const char *target, const char *ref, json_t **out) {
  char bin[512], cmd[2048], tmpl[] = "/tmp/gloostatus.XXXXXX";
  const char *wx = getenv("WASMXDS_BIN");
  const char *slash = wx != NULL ? strrchr(wx, '/') : NULL;
  int fd = mkstemp(tmpl), ws;
  json_error_t je;

  ck_assert_int_ge(fd, 0);
  close(fd);
  snprintf(bin, sizeof(bin), "%.*s/wasmxdsctl",
           slash != NULL ? (int)(slash - wx) : 1, slash != NULL ? wx : ".");
  snprintf(cmd, sizeof(cmd), "%s status '%s' --server %s -o json >%s", bin, ref,
           target, tmpl);
  ws = system(cmd);
  *out = json_load_file(tmpl, 0, &je);
  unlink(tmpl);
  ck_assert_msg(*out != NULL, "%s: no JSON (%s)", cmd, je.text);
  ck_assert(WIFEXITED(ws));
  return WEXITSTATUS(ws);
}

/* The state of node in a `wasmxdsctl status REF -o json` answer. */
static const char *ctl_state(json_t *j, const char *node, const char **err) {
  json_t *v = json_object_get(j, "workloadStates"), *p;
  size_t i;

  json_array_foreach(v, i, p) {
    if (strcmp(json_string_value(json_object_get(p, "node")), node) == 0) {
      *err = json_string_value(json_object_get(p, "error"));
      return json_string_value(json_object_get(p, "state"));
    }
  }
  return NULL;
}

static const char *state_of(json_t *j, const char *node) {
  return json_string_value(json_object_get(
      json_object_get(json_object_get(j, "workloadStates"), node), "state"));
}

START_TEST(deployment_status_follows_acks) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};
  const char *args[] = {
      "--module-cache", NULL, "--debounce-ms", "20", "--module-retry-max",
      "1000",           NULL};
  char dir[64], cache[128], store[128],
      *names[] = {DP "shop.d/0", DP "shop.d/1"};
  static const char path[] = "/debug/resources/WasmDeployment/shop/d";
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  Envoy__Config__Core__V3__Node *node;
  struct server_proc *sp;
  struct xds_client *c;
  struct xds_stream *s;
  struct http h;
  char *first_version;
  json_t *j;
  int admin;

  mt_tmpdir(dir, sizeof(dir));
  snprintf(cache, sizeof(cache), "%s/cache", dir);
  mkdir(cache, 0700);
  args[1] = cache;
  tk_write_store_doc(dir, "tmpl.yaml", tk_tmpl_doc("in", 15006));
  write_deploy(dir, 3, 1);
  snprintf(store, sizeof(store), "%s/store", dir);
  ck_assert_int_eq(server_proc_start(store, args, &sp), 0);
  ck_assert_int_eq(server_proc_wait_log(sp, "serving generation 1", 10000), 0);
  admin = server_proc_admin_port(sp);

  /* The image that cannot be pulled: its error, no proxy states. */
  /* Until the first attempt fails the error says it is waiting for it. */
  j = wait_json(admin, "/debug/resources/WasmDeployment/shop/bad",
                "127.0.0.1:1", 15000);
  ck_assert_str_eq(json_string_value(json_object_get(j, "kind")),
                   "WasmDeployment");
  ck_assert_str_eq(json_string_value(json_object_get(j, "name")),
                   DP "shop.bad");
  ck_assert_msg(strstr(json_string_value(json_object_get(j, "error")),
                       "served as deny_all: ") != NULL,
                "%s", json_string_value(json_object_get(j, "error")));
  ck_assert(json_is_null(json_object_get(j, "observedGeneration")));
  ck_assert_uint_eq(json_object_size(json_object_get(j, "workloadStates")), 0);
  json_decref(j);
  http_get(admin, "/debug/resources/WasmDeployment/shop/nope", &h);
  ck_assert_int_eq(h.code, 404);
  free(h.b.data);
  http_get(admin, "/debug/resources/Nope/a/b", &h);
  ck_assert_int_eq(h.code, 404);
  free(h.b.data);

  /* A proxy NACKs the filters: DEPLOYMENT_FAILED with its error. */
  node = xds_node_new("gloo-1", "c", meta, NULL);
  ck_assert_ptr_nonnull(node);
  ck_assert_int_eq(xds_client_new(server_proc_target(sp), NULL, &c), 0);
  ck_assert_int_eq(xds_stream_open(c, XDS_METHOD_ADS, &s), 0);
  send_ecds(s, node, names, 2, NULL, NULL, NULL);
  ck_assert_int_eq(xds_stream_recv_response(s, 5000, &r), 0);
  ck_assert_uint_eq(r->n_resources, 2);
  first_version = strdup(r->version_info);
  send_ecds(s, NULL, names, 2, "", r->nonce, "wasm: root_id a not found");
  xds_msg_free(r);
  j = wait_json(admin, path, "DEPLOYMENT_FAILED", 5000);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "observedGeneration")),
                   3);
  ck_assert(json_is_null(json_object_get(j, "error")));
  ck_assert_uint_eq(json_array_size(json_object_get(j, "filters")), 2);
  ck_assert_str_eq(state_of(j, "gloo-1"), "DEPLOYMENT_FAILED");
  ck_assert_str_eq(
      json_string_value(json_object_get(
          json_object_get(json_object_get(j, "workloadStates"), "gloo-1"),
          "error")),
      "wasm: root_id a not found");
  json_decref(j);
  /* wasmxdsctl status REF says the same over CSDS (exit 6: not all
   * deployed), by kind/namespace/name and by a filter's fqn. */
  {
    const char *err = NULL;

    ck_assert_int_eq(
        ctl_status_ref(server_proc_target(sp), "WasmDeployment/shop/d", &j), 6);
    ck_assert_str_eq(ctl_state(j, "gloo-1", &err), "DEPLOYMENT_FAILED");
    ck_assert_str_eq(err, "wasm: root_id a not found");
    json_decref(j);
    ck_assert_int_eq(ctl_status_ref(server_proc_target(sp), DP "shop.d/1", &j),
                     6);
    ck_assert_str_eq(ctl_state(j, "gloo-1", &err), "DEPLOYMENT_FAILED");
    json_decref(j);
    ck_assert_int_eq(
        ctl_status_ref(server_proc_target(sp), "WasmDeployment/shop/bad", &j),
        4);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "workloadStates")), 0);
    json_decref(j);
  }

  /* A fixed version: pending until the proxy answers, deployed once it
   * ACKs. */
  write_deploy(dir, 4, 2);
  ck_assert_int_eq(xds_stream_recv_response(s, 10000, &r), 0);
  ck_assert_str_ne(r->version_info, first_version);
  j = wait_json(admin, path, "DEPLOYMENT_PENDING", 5000);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "observedGeneration")),
                   4);
  json_decref(j);
  send_ecds(s, NULL, names, 2, r->version_info, r->nonce, NULL);
  xds_msg_free(r);
  j = wait_json(admin, path, "FILTERS_DEPLOYED", 5000);
  ck_assert_str_eq(state_of(j, "gloo-1"), "FILTERS_DEPLOYED");
  ck_assert_ptr_null(json_object_get(
      json_object_get(json_object_get(j, "workloadStates"), "gloo-1"),
      "error"));
  json_decref(j);
  {
    const char *err = NULL;

    ck_assert_int_eq(
        ctl_status_ref(server_proc_target(sp), "WasmDeployment/shop/d", &j), 0);
    ck_assert_str_eq(ctl_state(j, "gloo-1", &err), "FILTERS_DEPLOYED");
    ck_assert_ptr_null(err);
    json_decref(j);
  }

  /* An invalid field in d's document: the last good version (generation
   * 4) stays served and its status names the document's problem (file,
   * line, field, reason); the other deployment of the file is not
   * concerned. */
  {
    char text[2048], *bad;
    const char *e;

    snprintf(text, sizeof(text), DEPLOY, 5, 3, 3);
    bad = strstr(text, "    rootId: b\n");
    ck_assert_ptr_nonnull(bad);
    memcpy(bad, "    rootI: bb\n", 14);
    tk_write_store_doc(dir, "deploy.yaml", text);
    j = wait_json(admin, path, "rootI", 10000);
    e = json_string_value(json_object_get(j, "error"));
    ck_assert_msg(strstr(e, "error: ") == e && strstr(e, "/deploy.yaml:11:") &&
                      strstr(e, "spec.filters[1]") != NULL &&
                      strstr(e, "keeping the last good version of "
                                "WasmDeployment") != NULL,
                  "%s", e);
    ck_assert_int_eq(
        json_integer_value(json_object_get(j, "observedGeneration")), 4);
    ck_assert_str_eq(state_of(j, "gloo-1"), "FILTERS_DEPLOYED");
    json_decref(j);
    j = wait_json(admin, "/debug/resources/WasmDeployment/shop/bad",
                  "\"error\"", 5000);
    ck_assert_ptr_null(
        strstr(json_string_value(json_object_get(j, "error")), "rootI"));
    json_decref(j);
    /* Fixed: the error goes. */
    write_deploy(dir, 6, 4);
    j = wait_json(admin, path, "\"observedGeneration\": 6", 10000);
    ck_assert(json_is_null(json_object_get(j, "error")));
    json_decref(j);
  }

  free(first_version);
  xds_stream_free(s);
  xds_client_free(c);
  xds_node_free(node);
  server_proc_free(sp);
  mt_rmrf(dir);
}
END_TEST

/* Two deployments pull the same https url (pinned by sha) from an origin
 * whose certificate is self-signed: "lax" sets insecureSkipVerify and is
 * served its module; "strict" does not and fails with the certificate
 * error, although the other one's pull of those very bytes is cached. */
#define TLS_DEPLOY                                                             \
  "apiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\n"              \
  "kind: WasmDeployment\n"                                                     \
  "metadata: {name: %s, namespace: shop}\n"                                    \
  "spec:\n%s  filters:\n"                                                      \
  "  - httpUriSource: {uri: '%s/m.wasm', sha: %s}\n    rootId: r\n"

START_TEST(insecure_skip_verify_per_deployment) {
  const char *args[] = {
      "--module-cache", NULL, "--debounce-ms", "20", "--module-retry-max",
      "1000",           NULL};
  char dir[64], cache[128], store[128], text[2048], path[256], sha[65];
  char *cert, *key, *err;
  unsigned char *wasm = mt_wasm(4096, 16);
  struct server_proc *sp;
  struct origin *o;
  struct http h;
  json_t *j, *mods, *m;
  size_t i;
  int admin, lax_served = 0;

  mt_tmpdir(dir, sizeof(dir));
  ck_assert_int_eq(
      tk_sh("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout "
            "key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 -addext "
            "subjectAltName=IP:127.0.0.1 >openssl.log 2>&1",
            dir),
      0);
  snprintf(path, sizeof(path), "%s/cert.pem", dir);
  cert = tk_read_file(path, NULL);
  snprintf(path, sizeof(path), "%s/key.pem", dir);
  key = tk_read_file(path, NULL);
  ck_assert_ptr_nonnull(cert);
  ck_assert_ptr_nonnull(key);
  o = origin_start_tls(cert, key);
  origin_set(o, "/m.wasm", 200, "application/wasm", wasm, 4096);
  mt_sha(wasm, 4096, sha);

  snprintf(cache, sizeof(cache), "%s/cache", dir);
  mkdir(cache, 0700);
  args[1] = cache;
  tk_write_store_doc(dir, "tmpl.yaml", tk_tmpl_doc("in", 15006));
  snprintf(text, sizeof(text), TLS_DEPLOY, "lax",
           "  imagePullOptions: {insecureSkipVerify: true}\n", origin_base(o),
           sha);
  tk_write_store_doc(dir, "lax.yaml", text);
  snprintf(text, sizeof(text), TLS_DEPLOY, "strict", "", origin_base(o), sha);
  tk_write_store_doc(dir, "strict.yaml", text);
  snprintf(store, sizeof(store), "%s/store", dir);
  ck_assert_int_eq(server_proc_start(store, args, &sp), 0);
  ck_assert_int_eq(server_proc_wait_log(sp, "serving generation 1", 10000), 0);
  admin = server_proc_admin_port(sp);

  /* lax: pulled without verification, served as Wasm, the module on the
   * admin server. */
  for (long long until = tk_now_ms() + 15000; !lax_served;) {
    j = wait_json(admin, "/debug/modules", "shop.lax/0", 5000);
    mods = j;
    json_array_foreach(mods, i, m) {
      const char *ext = json_string_value(json_object_get(m, "extension"));

      if (strcmp(ext, DP "shop.lax/0") == 0 &&
          strcmp(json_string_value(json_object_get(m, "served_as")), "wasm") ==
              0) {
        ck_assert_str_eq(json_string_value(json_object_get(m, "module_sha256")),
                         sha);
        lax_served = 1;
      }
    }
    json_decref(j);
    if (!lax_served && tk_now_ms() >= until)
      server_proc_dump_log(sp);
    ck_assert_msg(lax_served || tk_now_ms() < until, "shop.lax never served");
    if (!lax_served)
      tk_sleep_ms(100);
  }
  j = wait_json(admin, "/debug/resources/WasmDeployment/shop/lax", "\"error\"",
                5000);
  ck_assert(json_is_null(json_object_get(j, "error")));
  json_decref(j);
  snprintf(path, sizeof(path), "/modules/sha256/%s.wasm", sha);
  http_get(admin, path, &h);
  ck_assert_int_eq(h.code, 200);
  ck_assert_uint_eq(h.b.len, 4096);
  ck_assert(memcmp(h.b.data, wasm, 4096) == 0);
  free(h.b.data);
  /* The warning, once for the deployment. */
  ck_assert_int_eq(server_proc_log_count(
                       sp, DP "shop.lax: imagePullOptions.insecureSkipVerify"),
                   1);

  /* strict: the certificate error, in its status and in the log naming
   * its filter; still failing on later attempts, after lax cached the
   * module those bytes are. */
  j = wait_json(admin, "/debug/resources/WasmDeployment/shop/strict",
                "TLS certificate", 15000);
  err = (char *)json_string_value(json_object_get(j, "error"));
  ck_assert_msg(strstr(err, "served as deny_all") != NULL &&
                    strstr(err, "TLS certificate of https://127.0.0.1:") !=
                        NULL &&
                    strstr(err, "not accepted") != NULL,
                "error: %s", err);
  json_decref(j);
  for (long long until = tk_now_ms() + 10000;;) {
    json_int_t attempts = 0;
    const char *state = "";

    j = wait_json(admin, "/debug/modules", "shop.strict/0", 5000);
    json_array_foreach(j, i, m) {
      json_t *res = json_object_get(m, "resolver");

      if (strcmp(json_string_value(json_object_get(m, "extension")),
                 DP "shop.strict/0") != 0)
        continue;
      attempts = json_integer_value(json_object_get(res, "attempts"));
      state = json_string_value(json_object_get(res, "state"));
    }
    ck_assert_str_eq(state, "FAILED");
    json_decref(j);
    if (attempts >= 2)
      break;
    ck_assert_msg(tk_now_ms() < until, "shop.strict not retried");
    tk_sleep_ms(100);
  }
  ck_assert_int_eq(
      server_proc_log_count(sp, "modules: " DP "shop.strict/0: pull failed"),
      1);
  ck_assert_int_ge(server_proc_log_count(sp, "TLS certificate of https://"), 1);
  ck_assert_int_eq(
      server_proc_log_count(sp, DP "shop.strict: imagePullOptions"), 0);
  j = wait_json(admin, "/debug/resources/WasmDeployment/shop/strict",
                "TLS certificate", 5000);
  json_decref(j);

  server_proc_free(sp);
  origin_stop(o);
  free(cert);
  free(key);
  xds_free(wasm);
  mt_rmrf(dir);
}
END_TEST

/* ---- status written back to etcd ---- */

#define XD                                                                     \
  "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"             \
  "metadata: {organization: acme, name: x}\n"                                  \
  "spec: {url: file:///w/x.wasm}\n"

/* The value of key in etcd as JSON, or NULL when absent. */
static json_t *etcd_json(struct etcd_client *c, const char *key,
                         int64_t *mod_revision) {
  struct xds_err err = {0, ""};
  struct etcd_kv kv;
  json_error_t je;
  json_t *j = NULL;
  int64_t rev;
  int found = 0;

  memset(&kv, 0, sizeof(kv));
  ck_assert_int_eq(etcd_client_get(c, key, &kv, &found, &rev, &err), 0);
  if (found) {
    j = json_loadb(kv.value, kv.value_len, 0, &je);
    ck_assert_msg(j != NULL, "%s: not JSON: %.*s", key, (int)kv.value_len,
                  kv.value);
    if (mod_revision != NULL)
      *mod_revision = kv.mod_revision;
  }
  etcd_kv_cleanup(&kv);
  return j;
}

/* Waits until the status at key has writer and, when state is not NULL,
 * workloadStates[state] == count. Returns it. */
static json_t *wait_status(struct etcd_client *c, const char *key,
                           const char *writer, const char *state, int count,
                           int ms) {
  long long until = tk_now_ms() + ms;

  for (;;) {
    json_t *j = etcd_json(c, key, NULL);
    const char *w =
        j != NULL ? json_string_value(json_object_get(j, "writer")) : NULL;

    if (w != NULL && strcmp(w, writer) == 0 &&
        (state == NULL ||
         json_integer_value(json_object_get(
             json_object_get(j, "workloadStates"), state)) == count))
      return j;
    if (tk_now_ms() > until) {
      char *t = j != NULL ? json_dumps(j, 0) : NULL;

      ck_abort_msg("%s: no status by %s with %s = %d: %s", key, writer,
                   state ? state : "-", count, t ? t : "(none)");
    }
    json_decref(j);
    tk_sleep_ms(100);
  }
}

/* Runs wasmxdsctl (next to $WASMXDS_BIN) with args (a shell fragment);
 * returns its exit status, its stdout in out (cap bytes). */
static int ctl(const char *store, char *out, size_t cap, const char *args) {
  char cmd[2048], tmpl[] = "/tmp/ctlout.XXXXXX";
  const char *wx = getenv("WASMXDS_BIN");
  const char *slash = wx != NULL ? strrchr(wx, '/') : NULL;
  int fd = mkstemp(tmpl), ws;
  ssize_t n;

  ck_assert_int_ge(fd, 0);
  snprintf(cmd, sizeof(cmd), "%.*s/wasmxdsctl --store %s %s >%s",
           slash != NULL ? (int)(slash - wx) : 1, slash != NULL ? wx : ".",
           store, args, tmpl);
  ws = system(cmd);
  n = read(fd, out, cap - 1);
  out[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(tmpl);
  ck_assert(WIFEXITED(ws));
  return WEXITSTATUS(ws);
}

START_TEST(status_written_back_to_etcd) {
  static const char *const meta[] = {"wasmxds.organization", "acme", NULL};
  const char *args_a[] = {
      "--etcd-debounce",    "20", "--write-status", "--status-interval", "200",
      "--status-lease-ttl", "2",  "--replica-name", "replica-a",         NULL};
  const char *args_b[] = {
      "--etcd-debounce",    "20", "--write-status", "--status-interval", "200",
      "--status-lease-ttl", "2",  "--replica-name", "replica-b",         NULL};
  static const char dkey[] = "/wx-status/WasmDeployment/shop/d";
  char store[160], text[2048], out[8192],
      *names[] = {DP "shop.d/0", DP "shop.d/1"};
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  Envoy__Config__Core__V3__Node *node;
  struct etcd_config ec;
  struct etcd_client *c;
  struct server_proc *ra, *rb;
  struct xds_client *xc;
  struct xds_stream *s;
  struct xds_err err = {0, ""};
  struct etcd_proc e;
  json_t *j, *failed;
  char *sp = NULL;

  /* The status prefix: <prefix>-status by default, never overlapping. */
  ck_assert_int_eq(etcd_status_prefix("/wx", NULL, &sp, &err), 0);
  ck_assert_str_eq(sp, "/wx-status");
  xds_free(sp);
  ck_assert_int_eq(etcd_status_prefix("/wx", "/wx/status", &sp, &err),
                   XDS_EINVAL);
  ck_assert_int_eq(etcd_status_prefix("/wx/a", "/wx", &sp, &err), XDS_EINVAL);
  ck_assert_int_eq(etcd_status_prefix("/wx", "/wxs//", &sp, &err), 0);
  ck_assert_str_eq(sp, "/wxs");
  xds_free(sp);

  if (!etcd_proc_available()) {
    fprintf(stderr, "check_status_e2e: no /usr/bin/etcd; skipped\n");
    return;
  }
  etcd_proc_start(&e, 0, NULL);
  ck_assert_int_eq(
      etcd_proc_put(&e, "/wx/ListenerTemplate/in", tk_tmpl_doc("in", 15006)),
      0);
  snprintf(text, sizeof(text), DEPLOY, 3, 1, 1);
  *strstr(text, "---\n") = '\0'; /* d only */
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/WasmDeployment/shop/d", text), 0);
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/WasmExtension/acme/x", XD), 0);
  snprintf(store, sizeof(store), "etcd://%s/wx", e.endpoint);
  /* Refused: without an etcd store, and a status prefix inside the
   * store's. */
  ck_assert_int_eq(tk_sh("'%s' --store /nonexistent --write-status 2>&1 | "
                         "grep -q 'need an etcd:// store'",
                         getenv("WASMXDS_BIN")),
                   0);
  ck_assert_int_eq(tk_sh("'%s' --store %s --listen 127.0.0.1:0 --admin-listen "
                         "127.0.0.1:0 --write-status --status-prefix /wx/st "
                         "2>&1 | grep -q 'overlaps the store prefix'",
                         getenv("WASMXDS_BIN"), store),
                   0);
  etcd_config_init(&ec);
  ck_assert_int_eq(etcd_config_parse_url(store, &ec, &err), 0);
  ck_assert_int_eq(etcd_config_finish(&ec, &err), 0);
  ck_assert_int_eq(etcd_client_new(&ec, &c, &err), 0);

  /* A without a rival: it takes the leader key and writes. */
  ck_assert_int_eq(server_proc_start(store, args_a, &ra), 0);
  ck_assert_int_eq(server_proc_wait_log(
                       ra, "status: this replica (replica-a) writes", 10000),
                   0);
  j = wait_status(c, dkey, "replica-a", NULL, 0, 10000);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "observedGeneration")),
                   3);
  ck_assert(json_is_null(json_object_get(j, "error")));
  ck_assert_uint_eq(json_array_size(json_object_get(j, "failedWorkloads")), 0);
  json_decref(j);
  j = wait_status(c, "/wx-status/WasmExtension/acme/x", "replica-a", NULL, 0,
                  5000);
  json_decref(j);
  /* B runs too, and does not write. */
  ck_assert_int_eq(server_proc_start(store, args_b, &rb), 0);
  ck_assert_int_eq(server_proc_wait_log(rb,
                                        "status: replica-a writes resource "
                                        "status under /wx-status/; this "
                                        "replica (replica-b) does not",
                                        10000),
                   0);

  /* A proxy on A NACKs: DEPLOYMENT_FAILED, with its node and error. */
  node = xds_node_new("gloo-1", "c", meta, NULL);
  ck_assert_int_eq(xds_client_new(server_proc_target(ra), NULL, &xc), 0);
  ck_assert_int_eq(xds_stream_open(xc, XDS_METHOD_ADS, &s), 0);
  send_ecds(s, node, names, 2, NULL, NULL, NULL);
  ck_assert_int_eq(xds_stream_recv_response(s, 5000, &r), 0);
  send_ecds(s, NULL, names, 2, "", r->nonce, "wasm: root_id a not found");
  xds_msg_free(r);
  j = wait_status(c, dkey, "replica-a", "DEPLOYMENT_FAILED", 1, 10000);
  failed = json_array_get(json_object_get(j, "failedWorkloads"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(failed, "node")),
                   "gloo-1");
  ck_assert_str_eq(json_string_value(json_object_get(failed, "error")),
                   "wasm: root_id a not found");
  json_decref(j);
  /* A fixed version, ACKed: FILTERS_DEPLOYED. */
  snprintf(text, sizeof(text), DEPLOY, 4, 2, 2);
  *strstr(text, "---\n") = '\0';
  ck_assert_int_eq(etcd_proc_put(&e, "/wx/WasmDeployment/shop/d", text), 0);
  ck_assert_int_eq(xds_stream_recv_response(s, 10000, &r), 0);
  send_ecds(s, NULL, names, 2, r->version_info, r->nonce, NULL);
  xds_msg_free(r);
  j = wait_status(c, dkey, "replica-a", "FILTERS_DEPLOYED", 1, 10000);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "observedGeneration")),
                   4);
  ck_assert_int_eq(
      json_integer_value(json_object_get(json_object_get(j, "workloadStates"),
                                         "DEPLOYMENT_FAILED")),
      0);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "failedWorkloads")), 0);
  json_decref(j);
  /* Only A wrote: B never said it writes; the spec store did not read the
   * status keys (no problem names them). */
  ck_assert_int_eq(server_proc_log_count(rb, "this replica (replica-b) writes"),
                   0);
  ck_assert_int_eq(server_proc_log_count(ra, "/wx-status/Wasm"), 0);
  ck_assert_int_eq(server_proc_log_count(rb, "/wx-status/Wasm"), 0);
  /* Unchanged statuses are not written again. */
  {
    int64_t r1 = 0, r2 = 0;

    json_decref(etcd_json(c, "/wx-status/WasmExtension/acme/x", &r1));
    tk_sleep_ms(800);
    json_decref(etcd_json(c, "/wx-status/WasmExtension/acme/x", &r2));
    ck_assert_int_eq(r1, r2);
  }

  /* wasmxdsctl get shows the status next to the spec; apply of what get
   * printed drops it (unchanged). */
  ck_assert_int_eq(ctl(store, out, sizeof(out), "get WasmDeployment/shop/d"),
                   0);
  ck_assert_msg(strstr(out, "# status written back by wasmxds") != NULL &&
                    strstr(out, "\nstatus:\n") != NULL &&
                    strstr(out, "\"FILTERS_DEPLOYED\": 1") != NULL,
                "%s", out);
  {
    char path[64] = "/tmp/ctlget.XXXXXX", args[128];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
    close(fd);
    snprintf(args, sizeof(args), "apply -f %s", path);
    ck_assert_int_eq(ctl(store, out, sizeof(out), args), 0);
    ck_assert_msg(strstr(out, "unchanged") != NULL, "%s", out);
    unlink(path);
  }
  /* A WasmExtension too (its decoder reads and ignores status). */
  ck_assert_int_eq(ctl(store, out, sizeof(out), "get WasmExtension/acme/x"), 0);
  ck_assert_msg(strstr(out, "\nstatus:\n") != NULL, "%s", out);
  {
    char path[64] = "/tmp/ctlget.XXXXXX", args[128];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
    close(fd);
    snprintf(args, sizeof(args), "apply -f %s", path);
    ck_assert_int_eq(ctl(store, out, sizeof(out), args), 0);
    ck_assert_msg(strstr(out, "unchanged") != NULL, "%s", out);
    unlink(path);
  }
  ck_assert_int_eq(
      ctl(store, out, sizeof(out), "get --raw WasmDeployment/shop/d"), 0);
  ck_assert_ptr_null(strstr(out, "status"));

  /* A dies without a word: B takes over once A's lease expires, and
   * writes what it sees (no proxy of its own). */
  kill(server_proc_pid(ra), SIGKILL);
  ck_assert_int_eq(server_proc_wait_log(
                       rb, "status: this replica (replica-b) writes", 10000),
                   0);
  j = wait_status(c, dkey, "replica-b", "FILTERS_DEPLOYED", 0, 10000);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "observedGeneration")),
                   4);
  json_decref(j);
  /* A resource removed: its status goes too. */
  ck_assert_int_eq(etcd_proc_ctl(&e, "del /wx/WasmExtension/acme/x"), 0);
  for (long long until = tk_now_ms() + 10000;;) {
    j = etcd_json(c, "/wx-status/WasmExtension/acme/x", NULL);
    if (j == NULL)
      break;
    json_decref(j);
    ck_assert_msg(tk_now_ms() < until, "status of a removed resource stays");
    tk_sleep_ms(100);
  }
  /* B stops: its lease is revoked, the leader key goes at once. */
  server_proc_free(rb);
  ck_assert_ptr_null(etcd_json(c, "/wx-status/leader", NULL));

  xds_stream_free(s);
  xds_client_free(xc);
  xds_node_free(node);
  server_proc_free(ra);
  etcd_client_free(c);
  etcd_config_cleanup(&ec);
  etcd_proc_stop(&e);
}
END_TEST

int main(void) {
  Suite *su = suite_create("status_e2e");
  TCase *tc = tcase_create("resources");
  int rc;

  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, deployment_status_follows_acks);
  tcase_add_test(tc, insecure_skip_verify_per_deployment);
  tcase_add_test(tc, status_written_back_to_etcd);
  suite_add_tcase(su, tc);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = tk_run_suite(su);
  curl_global_cleanup();
  return rc;
}
