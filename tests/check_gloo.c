/*
 * check_gloo.c: Gloo Mesh WasmDeployment as input (README "Coming from
 * Gloo Mesh"; issue 16, item 1).
 *
 *   decode    every field onto the records, every rule with file:line
 *   store     three deployments (tests/data/gloo/store) served to
 *             Istio-identified proxies: exact filter order per listener,
 *             one ECDS resource per filter, the three staticFilterConfig
 *             kinds as the plugin receives them
 *   etcd      key layout, references, last-good retention per key
 *
 * `check_gloo NAME...` runs only the named test cases.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/compose/identity.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "store/catalog.h"
#include "store/etcd_store.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#include "check_istio.h"
#include "storekit.h"

#define DP WASM_DEPLOY_FQN_PREFIX

/* ---- decode ---- */

#define HEAD                                                                   \
  "apiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\n"              \
  "kind: WasmDeployment\n"                                                     \
  "metadata: {name: d, namespace: ns}\n"                                       \
  "spec:\n"

START_TEST(every_field) {
  static const char yaml[] =
      HEAD "  weight: 7\n"
           "  workloadSelector:\n"
           "  - labels: {app: web, tier: front}\n"
           "    namespaces: [ns, other]\n"
           "    clusters: [east]\n"
           "  - kubeWorkloadMatcher: {namespaces: [edge]}\n"
           "  imagePullOptions:\n"
           "    pullSecret: hub-creds\n"
           "    insecureSkipVerify: true\n"
           "    plainHttp: true\n"
           "  filters:\n"
           "  - wasmImageSource: {wasmImageTag: reg.example:5000/a/b:v1}\n"
           "    vmId: v\n"
           "    filterContext: GATEWAY\n"
           "    insertBeforeFilter: jwt\n"
           "  - httpUriSource:\n"
           "      uri: http://m.example/x.wasm\n"
           "      sha: \""
           "0000000000000000000000000000000000000000000000000000000000000001"
           "\"\n"
           "    rootId: x\n"
           "    staticFilterConfig:\n"
           "      '@type': type.googleapis.com/google.protobuf.StringValue\n"
           "      value: hello\n";
  struct catalog *cat;
  char *probs = sk_load_yaml(yaml, &cat);
  const struct wasm_ext *a, *b;

  ck_assert_msg(probs[0] == '\0', "%s", probs);
  ck_assert_uint_eq(catalog_ext_count(cat), 2);
  a = catalog_ext_find(cat, DP "ns.d/0");
  b = catalog_ext_find(cat, DP "ns.d/1");
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(a->kind, WASM_KIND_DEPLOYMENT);
  ck_assert_str_eq(wasm_ext_kind_name(a), "WasmDeployment");
  ck_assert_str_eq(a->resource, DP "ns.d");
  ck_assert_str_eq(wasm_ext_resource_id(b), DP "ns.d");
  ck_assert_uint_eq(a->filter_index, 0);
  ck_assert_uint_eq(b->filter_index, 1);
  ck_assert_uint_eq(a->n_filters, 2);
  ck_assert_uint_eq(a->weight, 7);
  ck_assert_uint_eq(b->weight, 7);
  ck_assert_str_eq(a->url, "oci://reg.example:5000/a/b:v1");
  ck_assert_int_eq(a->scheme, WASM_URL_OCI);
  ck_assert_ptr_null(a->plugin_name); /* from the image */
  ck_assert_str_eq(a->vm_id, "v");
  ck_assert_int_eq(a->filter_context, WASM_CTX_GATEWAY);
  ck_assert_str_eq(a->insert_before, "jwt");
  ck_assert_str_eq(a->pull_secret, "hub-creds");
  ck_assert_int_eq(a->insecure_skip_verify, 1);
  ck_assert_int_eq(a->plain_http, 1);
  ck_assert_uint_eq(a->n_selectors, 2);
  ck_assert_uint_eq(a->selectors[0].n_labels, 2);
  ck_assert_str_eq(a->selectors[0].labels[0].key, "app");
  ck_assert_str_eq(a->selectors[0].labels[1].value, "front");
  ck_assert_uint_eq(a->selectors[0].n_namespaces, 2);
  ck_assert_str_eq(a->selectors[0].namespaces[1], "other");
  ck_assert_str_eq(a->selectors[0].clusters[0], "east");
  ck_assert_uint_eq(a->selectors[1].n_labels, 0);
  ck_assert_str_eq(a->selectors[1].namespaces[0], "edge");
  ck_assert_uint_eq(b->n_selectors, 2);
  ck_assert_str_eq(b->url, "http://m.example/x.wasm");
  ck_assert_int_eq(b->scheme, WASM_URL_HTTP);
  ck_assert_str_eq(
      b->sha256,
      "0000000000000000000000000000000000000000000000000000000000000001");
  ck_assert_str_eq(b->plugin_name, "x");
  ck_assert_int_eq(b->config_type, WASM_CONFIG_STRING);
  ck_assert_str_eq(b->config_json, "hello");
  ck_assert_int_eq(b->filter_context, WASM_CTX_ANY);
  ck_assert_ptr_null(b->insert_before);
  /* Records compare equal to their copies (the catalog's change diff). */
  {
    struct wasm_ext *c = catalog_ext_copy(a);

    ck_assert_ptr_nonnull(c);
    ck_assert(catalog_ext_equal(a, c));
    c->weight = 8;
    ck_assert(!catalog_ext_equal(a, c));
    wasm_ext_free(c);
  }
  xds_free(probs);
  catalog_unref(cat);
}
END_TEST

/* Each rule: the document and a line its error must contain. */
static const struct {
  const char *yaml;
  const char *want;
} bad[] = {
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n"
          "    dynamicFilterConfig: cfg-server\n",
     "F:8:26: spec.filters[0].dynamicFilterConfig: not supported: Gloo Mesh "
     "declares dynamicFilterConfig as a placeholder"},
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n",
     "F:6:5: spec.filters[0].rootId: missing required field \"rootId\": only "
     "a wasmImageSource filter may leave it out"},
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n"
          "    wasmImageSource: {wasmImageTag: a/b:1}\n",
     "F:6:5: spec.filters[0]: give only one of localPathSource, "
     "httpUriSource and wasmImageSource"},
    {HEAD "  filters:\n  - rootId: r\n",
     "F:6:5: spec.filters[0]: missing the filter's source"},
    {HEAD "  filters:\n  - localPathSource: w.wasm\n    rootId: r\n",
     "F:6:22: spec.filters[0].localPathSource: \"w.wasm\" is not an absolute "
     "path"},
    {HEAD "  filters:\n  - httpUriSource: {uri: http://x/y.wasm}\n"
          "    rootId: r\n",
     "F:6:20: spec.filters[0].httpUriSource.sha: missing required field "
     "\"sha\""},
    {HEAD "  filters:\n  - httpUriSource: {uri: http://x/y.wasm, sha: abc}\n"
          "    rootId: r\n",
     "spec.filters[0].httpUriSource.sha: \"abc\" is not a sha256"},
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n"
          "    filterContext: SIDECAR\n",
     "F:8:20: spec.filters[0].filterContext: \"SIDECAR\" is not one of ANY, "
     "SIDECAR_INBOUND, SIDECAR_OUTBOUND, GATEWAY"},
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n"
          "    staticFilterConfig: {'@type': type.googleapis.com/foo.Bar}\n",
     "spec.filters[0].staticFilterConfig.@type: \"type.googleapis.com/"
     "foo.Bar\" is not supported"},
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n"
          "    staticFilterConfig:\n"
          "      '@type': type.googleapis.com/google.protobuf.BytesValue\n"
          "      value: '%%%'\n",
     "F:10:14: spec.filters[0].staticFilterConfig.value: not base64"},
    {HEAD "  weight: -1\n  filters:\n  - localPathSource: /w.wasm\n"
          "    rootId: r\n",
     "F:5:11: spec.weight: -1 is out of range (uint32"},
    {HEAD "  filters: []\n",
     "F:5:12: spec.filters: a WasmDeployment needs at least one filter"},
    {HEAD "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n"
          "    rootID: typo\n",
     "F:8:5: spec.filters[0].rootID: unknown field \"rootID\""},
    {HEAD "  workloadSelector:\n  - namespaces: [Bad_NS]\n"
          "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n",
     "F:6:18: spec.workloadSelector[0].namespaces[0]: \"Bad_NS\" is not a "
     "valid namespace"},
    {HEAD "  imagePullOptions: {plainHttp: yes-please}\n"
          "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n",
     "spec.imagePullOptions.plainHttp: expected true or false"},
    {"apiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\n"
     "kind: WasmDeployment\nmetadata: {name: d}\nspec:\n"
     "  filters:\n  - localPathSource: /w.wasm\n    rootId: r\n",
     "F:3:11: metadata.namespace: missing required field \"namespace\""},
};

START_TEST(every_rule) {
  struct catalog *cat;
  char *probs = sk_load_yaml(bad[_i].yaml, &cat);

  ck_assert_msg(strstr(probs, bad[_i].want) != NULL, "want %s\ngot %s",
                bad[_i].want, probs);
  /* A deployment with any error serves none of its filters. */
  ck_assert_uint_eq(catalog_ext_count(cat), 0);
  xds_free(probs);
  catalog_unref(cat);
}
END_TEST

/* WasmExtension (issue 16 item 4): allowedIn entries that are not tenants
 * and a HOST env value are ignored with a located warning, not refused;
 * an allowedIn left with no tenant reaches no proxy (not the whole
 * organization). */
#define EXT_DOC(name, spec)                                                    \
  "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"             \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec:\n  url: file:///w.wasm\n" spec

START_TEST(wasmext_ignored_with_warnings) {
  static const char yaml[] = EXT_DOC(
      "mixed", "  allowedIn:\n  - organizations/acme/tenants/t1\n"
               "  - organizations/acme/tenants/t1/workspaces/w\n"
               "  vmConfig:\n    env:\n"
               "    - {name: POD, valueFrom: HOST, value: "
               "ignored}\n") "---\n" EXT_DOC("none", "  allowedIn:\n"
                                                     "  - "
                                                     "organizations/acme/"
                                                     "workspaces/w\n");
  struct catalog *cat;
  char *probs = sk_load_yaml(yaml, &cat);
  const struct wasm_ext *m, *n;
  struct proxy_id p;

  ck_assert_msg(
      strstr(probs, "warning: F:8:5: spec.allowedIn[1]: "
                    "\"organizations/acme/tenants/t1/workspaces/w\" is not a "
                    "tenant: only tenants are considered") != NULL,
      "%s", probs);
  ck_assert_msg(strstr(probs,
                       "warning: F:11:43: spec.vmConfig.env[0].value: "
                       "the value is ignored: with valueFrom HOST the "
                       "proxy reads POD from its own environment") != NULL,
                "%s", probs);
  ck_assert_msg(strstr(probs, "spec.allowedIn: no tenant is listed") != NULL,
                "%s", probs);
  ck_assert_msg(strstr(probs, "error") == NULL, "%s", probs);
  m = catalog_ext_find(cat, "organizations/acme/extensions/mixed");
  n = catalog_ext_find(cat, "organizations/acme/extensions/none");
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(n);
  ck_assert_uint_eq(m->n_allowed_in, 1);
  ck_assert_str_eq(m->allowed_in[0], "organizations/acme/tenants/t1");
  ck_assert_int_eq(m->allowed_none, 0);
  ck_assert_uint_eq(m->n_env, 1);
  ck_assert_int_eq(m->env[0].from, WASM_ENV_HOST);
  ck_assert_ptr_null(m->env[0].value);
  ck_assert_uint_eq(n->n_allowed_in, 0);
  ck_assert_int_eq(n->allowed_none, 1);
  memset(&p, 0, sizeof(p));
  p.organization = "acme";
  p.tenant = "organizations/acme/tenants/t1";
  ck_assert(chain_ext_visible(m, &p));
  ck_assert(!chain_ext_visible(n, &p));
  p.tenant = NULL;
  ck_assert(!chain_ext_visible(n, &p));
  xds_free(probs);
  catalog_unref(cat);
}
END_TEST

/* WasmExtension (issue 16 item 4): Envoy's VM and plugin fields reach the
 * PluginConfig as Envoy reads them. */
START_TEST(wasmext_envoy_fields) {
  static const char yaml[] =
      EXT_DOC("vm",
              "  allowedCapabilities: [proxy_log, "
              "proxy_get_header_map_value,"
              " proxy_log]\n"
              "  vmConfig:\n    vmId: shared\n    "
              "allowPrecompiled: true\n"
              "    nackOnCodeCacheMiss: true\n"
              "    configuration: {cache: 64, mode: "
              "strict}\n") "---\n" EXT_DOC("none",
                                           "  "
                                           "allowedCapab"
                                           "ilities: "
                                           "[]\n") "---"
                                                   "\n" EXT_DOC("plain", "");
  static const char bad_yaml[] =
      EXT_DOC("b", "  allowedCapabilities: [proxy-log]\n"
                   "  vmConfig: {allowPrecompiled: 'yes'}\n");
  struct catalog *cat;
  char *probs = sk_load_yaml(yaml, &cat);
  const struct wasm_ext *e;
  struct encode_module mod;
  struct encode_opts o;
  struct xds_buf b;
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc;
  Google__Protobuf__StringValue *sv;
  struct wasm_ext *copy;

  ck_assert_msg(strstr(probs, "warning: F:6:64: spec.allowedCapabilities[2]: "
                              "\"proxy_log\" is listed twice") != NULL,
                "%s", probs);
  encode_opts_default(&o);
  /* Every field set. */
  e = catalog_ext_find(cat, "organizations/acme/extensions/vm");
  ck_assert_ptr_nonnull(e);
  encode_module_default(e, &mod);
  xds_buf_init(&b, 1 << 20);
  ck_assert_int_eq(encode_extension_config(e, &mod, &o, &b), 0);
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, b.len, (const uint8_t *)b.data);
  ck_assert_ptr_nonnull(tec);
  w = envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  pc = w->config;
  ck_assert_str_eq(pc->vm_config->vm_id, "shared");
  ck_assert_int_eq(pc->vm_config->allow_precompiled, 1);
  ck_assert_int_eq(pc->vm_config->nack_on_code_cache_miss, 1);
  ck_assert_str_eq(pc->vm_config->configuration->type_url, TYPE_STRING_VALUE);
  sv = google__protobuf__string_value__unpack(
      NULL, pc->vm_config->configuration->value.len,
      pc->vm_config->configuration->value.data);
  ck_assert_str_eq(sv->value, "{\"cache\":64,\"mode\":\"strict\"}");
  google__protobuf__string_value__free_unpacked(sv, NULL);
  ck_assert_ptr_nonnull(pc->capability_restriction_config);
  ck_assert_uint_eq(pc->capability_restriction_config->n_allowed_capabilities,
                    2);
  ck_assert_str_eq(
      pc->capability_restriction_config->allowed_capabilities[0]->key,
      "proxy_get_header_map_value");
  ck_assert_str_eq(
      pc->capability_restriction_config->allowed_capabilities[1]->key,
      "proxy_log");
  ck_assert_ptr_nonnull(
      pc->capability_restriction_config->allowed_capabilities[1]->value);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  /* A change of any of them is a change of the record. */
  copy = catalog_ext_copy(e);
  ck_assert(catalog_ext_equal(e, copy));
  copy->nack_on_code_cache_miss = 0;
  ck_assert(!catalog_ext_equal(e, copy));
  copy->nack_on_code_cache_miss = 1;
  copy->allowed_none = 1;
  ck_assert(!catalog_ext_equal(e, copy));
  wasm_ext_free(copy);
  /* An empty list restricts to nothing listed; none given: no
   * restriction, and the VM fields unset. */
  e = catalog_ext_find(cat, "organizations/acme/extensions/none");
  encode_module_default(e, &mod);
  xds_buf_reset(&b);
  ck_assert_int_eq(encode_extension_config(e, &mod, &o, &b), 0);
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, b.len, (const uint8_t *)b.data);
  w = envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  ck_assert_ptr_nonnull(w->config->capability_restriction_config);
  ck_assert_uint_eq(
      w->config->capability_restriction_config->n_allowed_capabilities, 0);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  e = catalog_ext_find(cat, "organizations/acme/extensions/plain");
  encode_module_default(e, &mod);
  xds_buf_reset(&b);
  ck_assert_int_eq(encode_extension_config(e, &mod, &o, &b), 0);
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, b.len, (const uint8_t *)b.data);
  w = envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  ck_assert_ptr_null(w->config->capability_restriction_config);
  ck_assert_int_eq(w->config->vm_config->allow_precompiled, 0);
  ck_assert_ptr_null(w->config->vm_config->configuration);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  xds_buf_cleanup(&b);
  xds_free(probs);
  catalog_unref(cat);
  /* Bad values are located errors. */
  probs = sk_load_yaml(bad_yaml, &cat);
  ck_assert_msg(strstr(probs, "error: F:6:25: spec.allowedCapabilities[0]: "
                              "\"proxy-log\" is not a function name") != NULL,
                "%s", probs);
  ck_assert_msg(strstr(probs, "spec.vmConfig.allowPrecompiled: expected true "
                              "or false") != NULL,
                "%s", probs);
  ck_assert_uint_eq(catalog_ext_count(cat), 0);
  xds_free(probs);
  catalog_unref(cat);
}
END_TEST

/* Extensions of any kind that share a vmId with other VM settings get
 * separate VMs in Envoy: the catalog warns, naming both; the same settings
 * share the VM silently. */
START_TEST(vm_id_sharing_rule) {
  const char *yaml =
      HEAD "  filters:\n"
           "  - {localPathSource: /a.wasm, rootId: r, vmId: one}\n"
           "  - {localPathSource: /a.wasm, rootId: r, vmId: one}\n"
           "  - {localPathSource: /b.wasm, rootId: r, vmId: two}\n"
           "---\n"
           "apiVersion: extension.tsb.tetrate.io/v2\n"
           "kind: WasmExtension\n"
           "metadata: {organization: acme, name: e}\n"
           "spec:\n"
           "  url: file:///b.wasm\n"
           "  vmConfig:\n"
           "    vmId: two\n"
           "    runtime: envoy.wasm.runtime.v8\n"
           "    env: [{name: X, value: \"1\"}]\n";
  struct catalog *cat = NULL;
  char *probs = sk_load_yaml(yaml, &cat);

  ck_assert_uint_eq(catalog_ext_count(cat), 4);
  ck_assert_msg(strstr(probs, "vmId \"one\"") == NULL, "%s", probs);
  ck_assert_msg(
      strstr(probs,
             "organizations/acme/extensions/e: vmId \"two\" is also used "
             "by " DP "ns.d/2 (F:1) with another runtime, environment: "
             "Envoy runs the two in separate VMs") != NULL,
      "%s", probs);
  xds_free(probs);
  catalog_unref(cat);
}
END_TEST

static TCase *decode_tcase(void) {
  TCase *tc = tcase_create("decode");

  tcase_add_test(tc, every_field);
  tcase_add_test(tc, wasmext_ignored_with_warnings);
  tcase_add_test(tc, wasmext_envoy_fields);
  tcase_add_test(tc, vm_id_sharing_rule);
  tcase_add_loop_test(tc, every_rule, 0, (int)(sizeof(bad) / sizeof(bad[0])));
  return tc;
}

/* ---- store and composition ---- */

static struct catalog *cat;
static struct snapshot *snap;
static struct encode_opts opts;

static void setup(void) {
  /* m0 and m1 share vmId "shared" with different code: Envoy gives them
   * two VMs, which the catalog reports. */
  sk_load_store(XDS_TEST_DATA "/gloo/store", 9,
                "vmId \"shared\" is also used by " DP "istio-system.mesh/0",
                &cat, &opts, &snap);
}

static void teardown(void) {
  snapshot_unref(snap);
  catalog_unref(cat);
}

/* want: "listener=f1,f2,..." joined by ";", listeners in name order; Wasm
 * filters as "<namespace>.<name>/<index>". */
static const struct sk_proxy proxies[] = {
    {"reviews sidecar: auth (label and namespace) and mesh, equal weights",
     "sidecar~10.0.0.1~reviews-v1-5b6f.bookinfo~bookinfo.svc.cluster.local",
     {"NAMESPACE", "bookinfo", NULL},
     {"app", "reviews", NULL},
     "in-8080=jwt,bookinfo.auth/0,rbac,bookinfo.auth/2,istio-system.mesh/0,"
     "istio-system.mesh/1,router;"
     "out-9080=bookinfo.auth/1,bookinfo.auth/2,istio-system.mesh/0,"
     "istio-system.mesh/2,router"},
    {"ratings sidecar: the label does not match, mesh only",
     "sidecar~10.0.0.2~ratings-v1-77c8.bookinfo~bookinfo.svc.cluster.local",
     {"NAMESPACE", "bookinfo", NULL},
     {"app", "ratings", NULL},
     "in-8080=jwt,rbac,istio-system.mesh/0,istio-system.mesh/1,router;"
     "out-9080=istio-system.mesh/0,istio-system.mesh/2,router"},
    {"reviews in another namespace: the namespace does not match",
     "sidecar~10.0.0.3~reviews-1.shop~shop.svc.cluster.local",
     {"NAMESPACE", "shop", NULL},
     {"app", "reviews", NULL},
     "in-8080=jwt,rbac,istio-system.mesh/0,istio-system.mesh/1,router;"
     "out-9080=istio-system.mesh/0,istio-system.mesh/2,router"},
    {"ingress gateway: gw (weight 20) first, one filter before jwt",
     "router~10.0.0.4~gw-6d9f.edge~edge.svc.cluster.local",
     {"NAMESPACE", "edge", NULL},
     {"istio", "ingressgateway", NULL},
     "gw-443=edge.gw/1,jwt,edge.gw/0,istio-system.mesh/0,router"},
    {"another gateway of edge: not selected",
     "router~10.0.0.5~egress-1.edge~edge.svc.cluster.local",
     {"NAMESPACE", "edge", NULL},
     {"istio", "egressgateway", NULL},
     "gw-443=jwt,istio-system.mesh/0,router"},
    {"plain wasmxds proxy: no selector means every workload",
     "vm-1",
     {"wasmxds.organization", "acme", NULL},
     {NULL},
     "in-8080=jwt,rbac,istio-system.mesh/0,istio-system.mesh/1,router;"
     "out-9080=istio-system.mesh/0,istio-system.mesh/2,router"},
};

static void render_class(const struct xds_class *c, const struct proxy_id *p,
                         struct xds_buf *b) {
  for (size_t i = 0; i < c->n_listeners; i++) {
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(NULL, c->listeners[i].len,
                                                      c->listeners[i].bytes);
    HCM_T *hcm;

    ck_assert_ptr_nonnull(l);
    hcm = sk_hcm_of(l);
    ck_assert_ptr_nonnull(hcm);
    if (i > 0)
      xds_buf_putc(b, ';');
    xds_buf_printf(b, "%s=", l->name);
    for (size_t k = 0; k < hcm->n_http_filters; k++) {
      const char *name = hcm->http_filters[k]->name;

      if (k > 0)
        xds_buf_putc(b, ',');
      if (strncmp(name, DP, strlen(DP)) == 0) {
        const struct wasm_ext *e = catalog_ext_find(cat, name);

        /* One ECDS resource per filter, visible to this proxy. */
        ck_assert_msg(e != NULL, "no extension %s", name);
        ck_assert(chain_ext_visible(e, p));
        ck_assert_ptr_nonnull(snapshot_ecds(snap, name));
        xds_buf_puts(b, name + strlen(DP));
      } else {
        xds_buf_puts(b, name);
      }
    }
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
        hcm, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  }
  xds_buf_putc(b, '\0');
}

START_TEST(filter_order_per_listener) {
  sk_check_render(snap, &proxies[_i], render_class);
}
END_TEST

/* The Wasm PluginConfig of one filter's ECDS resource. */
static Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *
wasm_of(const char *fqn, Envoy__Config__Core__V3__TypedExtensionConfig **tec) {
  const struct xds_resource *r = snapshot_ecds(snap, fqn);

  ck_assert_ptr_nonnull(r);
  *tec = envoy__config__core__v3__typed_extension_config__unpack(NULL, r->len,
                                                                 r->bytes);
  ck_assert_ptr_nonnull(*tec);
  ck_assert_str_eq((*tec)->name, fqn);
  ck_assert_str_eq((*tec)->typed_config->type_url, TYPE_WASM);
  return envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, (*tec)->typed_config->value.len, (*tec)->typed_config->value.data);
}

/* What each plugin receives: a Struct as JSON text, a StringValue's text
 * and a BytesValue's bytes, without a wrapper of wasmxds's own. */
START_TEST(static_filter_configs) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc;
  Google__Protobuf__StringValue *sv;
  Google__Protobuf__BytesValue *bv;
  static const unsigned char raw[] = {0x00, 0x01, 0x02, 0xff};

  w = wasm_of(DP "bookinfo.auth/0", &tec);
  pc = w->config;
  ck_assert_str_eq(pc->root_id, "header_check");
  ck_assert_str_eq(pc->vm_config->code->local->filename,
                   "/wasm/header-check.wasm");
  ck_assert_str_eq(pc->configuration->type_url, TYPE_STRING_VALUE);
  sv = google__protobuf__string_value__unpack(
      NULL, pc->configuration->value.len, pc->configuration->value.data);
  ck_assert_str_eq(sv->value, "{\"header\":\"x-user\",\"required\":true,"
                              "\"max\":3}");
  google__protobuf__string_value__free_unpacked(sv, NULL);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);

  w = wasm_of(DP "bookinfo.auth/1", &tec);
  pc = w->config;
  ck_assert_str_eq(pc->root_id, "egress_tag");
  ck_assert_str_eq(pc->vm_config->code->remote->http_uri->uri,
                   "https://modules.example.com/egress-tag.wasm");
  ck_assert_str_eq(
      pc->vm_config->code->remote->sha256,
      "3f3c5e2b1d0a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706");
  ck_assert_str_eq(pc->configuration->type_url, TYPE_STRING_VALUE);
  sv = google__protobuf__string_value__unpack(
      NULL, pc->configuration->value.len, pc->configuration->value.data);
  ck_assert_str_eq(sv->value, "tag=reviews; mode=strict");
  google__protobuf__string_value__free_unpacked(sv, NULL);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);

  w = wasm_of(DP "bookinfo.auth/2", &tec);
  pc = w->config;
  ck_assert_str_eq(pc->root_id, "raw");
  ck_assert_str_eq(pc->vm_config->vm_id, "raw-vm");
  ck_assert_str_eq(pc->configuration->type_url,
                   "type.googleapis.com/google.protobuf.BytesValue");
  bv = google__protobuf__bytes_value__unpack(NULL, pc->configuration->value.len,
                                             pc->configuration->value.data);
  ck_assert_uint_eq(bv->value.len, sizeof(raw));
  ck_assert(memcmp(bv->value.data, raw, sizeof(raw)) == 0);
  google__protobuf__bytes_value__free_unpacked(bv, NULL);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);

  /* No staticFilterConfig: no configuration; vmId shared by two filters. */
  w = wasm_of(DP "istio-system.mesh/1", &tec);
  pc = w->config;
  ck_assert_ptr_null(pc->configuration);
  ck_assert_str_eq(pc->vm_config->vm_id, "shared");
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
}
END_TEST

/* Equal weights: the deployment's namespace, then name, then the filter's
 * position decide, whatever the catalog order. */
START_TEST(equal_weights_are_deterministic) {
  const struct wasm_ext *a0 = catalog_ext_find(cat, DP "bookinfo.auth/0");
  const struct wasm_ext *a2 = catalog_ext_find(cat, DP "bookinfo.auth/2");
  const struct wasm_ext *m0 = catalog_ext_find(cat, DP "istio-system.mesh/0");
  const struct wasm_ext *g1 = catalog_ext_find(cat, DP "edge.gw/1");

  ck_assert_int_lt(chain_order(a0, a2), 0);
  ck_assert_int_gt(chain_order(a2, a0), 0);
  ck_assert_int_lt(chain_order(a2, m0), 0);
  ck_assert_int_gt(chain_order(m0, a2), 0);
  ck_assert_int_lt(chain_order(g1, a0), 0); /* weight 20 before 10 */
  ck_assert_int_eq(chain_order(m0, m0), 0);
}
END_TEST

/* Proxies that differ only in a label a selector reads get different
 * classes; labels no selector reads do not split them. */
START_TEST(classes_follow_selection) {
  const struct xds_class *a, *b, *c;
  struct proxy_id p1, p2, p3;
  struct sk_proxy k = proxies[1]; /* ratings */

  sk_identify(&k, &p1);
  k.labels[1] = "details";
  sk_identify(&k, &p2);
  sk_identify(&proxies[0], &p3); /* reviews */
  ck_assert_int_eq(snapshot_class(snap, &p1, &a), 0);
  ck_assert_int_eq(snapshot_class(snap, &p2, &b), 0);
  ck_assert_int_eq(snapshot_class(snap, &p3, &c), 0);
  ck_assert_ptr_eq(a, b);
  ck_assert_ptr_ne(a, c);
  proxy_id_cleanup(&p1);
  proxy_id_cleanup(&p2);
  proxy_id_cleanup(&p3);
}
END_TEST

/* clusters: the topology.istio.io/cluster label, else Node.cluster. */
START_TEST(cluster_selector) {
  struct wasm_workload_sel sel;
  char *clusters[] = {"east"};
  struct wasm_ext e;
  struct proxy_id p;
  struct sk_proxy k = proxies[1];

  memset(&sel, 0, sizeof(sel));
  memset(&e, 0, sizeof(e));
  sel.clusters = clusters;
  sel.n_clusters = 1;
  e.kind = WASM_KIND_DEPLOYMENT;
  e.selectors = &sel;
  e.n_selectors = 1;
  sk_identify(&k, &p);
  ck_assert(!chain_ext_selects(&e, &p));
  xds_free(p.cluster);
  p.cluster = xds_strdup("east");
  ck_assert(chain_ext_selects(&e, &p));
  proxy_id_cleanup(&p);
  k.labels[2] = "topology.istio.io/cluster";
  k.labels[3] = "west";
  {
    struct tnode t;
    struct xds_err err = {0, ""};

    tnode_init(&t, k.id);
    tnode_str(&t, "NAMESPACE", "bookinfo");
    tnode_labels(&t, "LABELS", "topology.istio.io/cluster", "west", NULL);
    t.node.cluster = "east";
    ck_assert_int_eq(identity_from_node(&t.node, &p, &err), 0);
  }
  ck_assert(!chain_ext_selects(&e, &p)); /* the label wins */
  proxy_id_cleanup(&p);
}
END_TEST

/* Deployment filters are HTTP filters: never on a TCP listener. */
START_TEST(tcp_listener_excluded) {
  const struct wasm_ext *m0 = catalog_ext_find(cat, DP "istio-system.mesh/0");
  struct listener_tmpl t = *catalog_tmpl_find(cat, "in-8080");
  struct proxy_id p;

  sk_identify(&proxies[1], &p);
  ck_assert_int_eq(chain_judge(m0, &t, &p), CHAIN_IN);
  t.protocol = TMPL_TCP;
  ck_assert_int_eq(chain_judge(m0, &t, &p), CHAIN_WRONG_TYPE);
  proxy_id_cleanup(&p);
}
END_TEST

static TCase *store_tcase(void) {
  TCase *tc = tcase_create("store");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, filter_order_per_listener, 0,
                      (int)(sizeof(proxies) / sizeof(proxies[0])));
  tcase_add_test(tc, static_filter_configs);
  tcase_add_test(tc, equal_weights_are_deterministic);
  tcase_add_test(tc, classes_follow_selection);
  tcase_add_test(tc, cluster_selector);
  tcase_add_test(tc, tcp_listener_excluded);
  return tc;
}

/* ---- etcd ---- */

#define DEPLOY_DOC(ns, name, filters)                                          \
  "apiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\n"              \
  "kind: WasmDeployment\nmetadata: {name: " name ", namespace: " ns "}\n"      \
  "spec:\n  filters:\n" filters

#define F1 "  - {localPathSource: /a.wasm, rootId: a}\n"
#define F2 "  - {localPathSource: /b.wasm, rootId: b}\n"

#define PUT(s, k, v) ck_assert_int_eq(etcd_store_put(s, k, v, strlen(v), 1), 0)

static int has_problem(const struct problems *pb, enum problem_severity sev,
                       const char *text) {
  for (size_t i = 0; i < problems_count(pb); i++) {
    const struct problem *p = problems_at(pb, i);

    if (p->severity == sev && strstr(p->msg, text) != NULL)
      return 1;
  }
  return 0;
}

START_TEST(etcd_keys_and_retention) {
  struct etcd_store *s = etcd_store_new("/w", NULL);
  const char *k = "/w/WasmDeployment/shop/d";
  struct problems pb;
  struct catalog *c;
  char *key = NULL;
  struct xds_err err = {0, ""};

  problems_init(&pb, 100);
  PUT(s, k, DEPLOY_DOC("shop", "d", F1 F2));
  c = sk_etcd_build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 2);
  ck_assert_str_eq(catalog_ext_find(c, DP "shop.d/1")->loc.source, k);
  ck_assert_uint_eq(problems_count(&pb), 0);
  catalog_unref(c);
  /* A broken value keeps every filter of the last good one. */
  PUT(s, k, DEPLOY_DOC("shop", "d", "  - {localPathSource: /a.wasm}\n"));
  c = sk_etcd_build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 2);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, "missing required field"));
  ck_assert(has_problem(&pb, PROBLEM_WARNING,
                        "keeping the last good version of WasmDeployment "
                        "\"" DP "shop.d\""));
  /* Both are the deployment's: /debug/resources shows them. */
  for (size_t i = 0; i < problems_count(&pb); i++) {
    ck_assert_ptr_nonnull(problems_at(&pb, i)->resource);
    ck_assert_str_eq(problems_at(&pb, i)->resource, DP "shop.d");
    ck_assert_str_eq(problems_at(&pb, i)->source, k);
  }
  catalog_unref(c);
  /* A good value with one filter serves exactly that one. */
  PUT(s, k, DEPLOY_DOC("shop", "d", F2));
  c = sk_etcd_build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  ck_assert_str_eq(catalog_ext_find(c, DP "shop.d/0")->plugin_name, "b");
  catalog_unref(c);
  /* Under another key: served, with a warning naming the right one. */
  PUT(s, "/w/WasmDeployment/x/y", DEPLOY_DOC("edge", "e", F1));
  c = sk_etcd_build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 2);
  ck_assert(has_problem(&pb, PROBLEM_WARNING,
                        "belongs under the key /w/WasmDeployment/edge/e"));
  catalog_unref(c);
  /* References wasmxdsctl accepts. */
  ck_assert_int_eq(
      etcd_store_key_of_ref("/w", "WasmDeployment/shop/d", &key, &err), 0);
  ck_assert_str_eq(key, k);
  xds_free(key);
  ck_assert_int_eq(etcd_store_key_of_ref("/w", DP "shop.d", &key, &err), 0);
  ck_assert_str_eq(key, k);
  xds_free(key);
  ck_assert_int_eq(etcd_store_key_of_ref("/w", DP "shop.d/1", &key, &err), 0);
  ck_assert_str_eq(key, k);
  xds_free(key);
  ck_assert_int_eq(etcd_store_key_of_ref("/w", DP "shop.d/x", &key, &err),
                   XDS_EINVAL);
  ck_assert_int_eq(etcd_store_key_of_ref("/w", DP "shop", &key, &err),
                   XDS_EINVAL);
  ck_assert_str_eq(etcd_store_kind_dir("wasmdeployments"),
                   ETCD_KIND_DEPLOY_DIR);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

static TCase *etcd_tcase(void) {
  TCase *tc = tcase_create("etcd");

  tcase_add_test(tc, etcd_keys_and_retention);
  return tc;
}

int main(int argc, char **argv) {
  static const struct sk_case cases[] = {
      {"decode", decode_tcase}, {"store", store_tcase}, {"etcd", etcd_tcase}};

  return sk_run("gloo", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
