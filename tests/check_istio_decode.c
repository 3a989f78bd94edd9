/*
 * check_istio_decode.c: reading Istio WasmPlugin documents: every field
 * mapped onto the record, every validation rule with its file:line
 * message, kind: List with Kubernetes-only metadata and status ignored.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "check_istio.h"
#include "storekit.h"

#define HEAD                                                                   \
  "apiVersion: extensions.istio.io/v1alpha1\n"                                 \
  "kind: WasmPlugin\n"                                                         \
  "metadata: {name: p, namespace: ns}\n"                                       \
  "spec:\n"

START_TEST(every_field) {
  static const char yaml[] =
      "apiVersion: extensions.istio.io/v1alpha1\n"
      "kind: WasmPlugin\n"
      "metadata:\n"
      "  name: openid-connect\n"
      "  namespace: istio-ingress\n"
      "  uid: 0b9e5c1e-3f7a-4a6f-9d55-3c3f4b1d2a10\n"
      "  resourceVersion: \"123456\"\n"
      "  generation: 3\n"
      "  creationTimestamp: \"2024-05-01T10:00:00Z\"\n"
      "  annotations: {kubectl.kubernetes.io/last-applied-configuration: x}\n"
      "  labels: {team: edge}\n"
      "  managedFields:\n"
      "  - {apiVersion: extensions.istio.io/v1alpha1, fieldsType: FieldsV1,\n"
      "     manager: kubectl, operation: Update}\n"
      "spec:\n"
      "  selector:\n"
      "    matchLabels: {istio: ingressgateway, app.kubernetes.io/name: gw}\n"
      "  url: private-registry:5000/openid-connect/openid:1.0\n"
      "  sha256: "
      "1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210\n"
      "  imagePullPolicy: Always\n"
      "  imagePullSecret: private-registry-pull-secret\n"
      "  phase: AUTHN\n"
      "  priority: -7\n"
      "  failStrategy: FAIL_RELOAD\n"
      "  pluginName: openid\n"
      "  pluginConfig:\n"
      "    openid_server: authn\n"
      "    realms: [ingress, 2]\n"
      "  vmConfig:\n"
      "    env:\n"
      "    - {name: POD_NAME, valueFrom: HOST}\n"
      "    - {name: TRUST_DOMAIN, value: cluster.local}\n"
      "  match:\n"
      "  - mode: CLIENT\n"
      "    ports: [{number: 8443}, {number: 443}]\n"
      "  - mode: SERVER\n"
      "  type: HTTP\n"
      "status:\n"
      "  conditions: [{type: Ready, status: \"True\"}]\n";
  struct catalog *cat;
  char *problems = sk_load_yaml(yaml, &cat);
  const struct wasm_ext *e;

  ck_assert_msg(problems[0] == '\0', "%s", problems);
  ck_assert_uint_eq(catalog_ext_count(cat), 1);
  e = catalog_ext_find(
      cat, "extensions.istio.io/wasmplugin/istio-ingress.openid-connect");
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->kind, WASM_KIND_PLUGIN);
  ck_assert_ptr_null(e->organization);
  ck_assert_str_eq(e->namespace, "istio-ingress");
  ck_assert_str_eq(e->name, "openid-connect");
  ck_assert_uint_eq(e->n_match_labels, 2);
  ck_assert_str_eq(e->match_labels[0].key, "app.kubernetes.io/name");
  ck_assert_str_eq(e->match_labels[1].key, "istio");
  ck_assert_str_eq(e->match_labels[1].value, "ingressgateway");
  ck_assert_str_eq(e->url,
                   "oci://private-registry:5000/openid-connect/openid:1.0");
  ck_assert_int_eq(e->scheme, WASM_URL_OCI);
  ck_assert_str_eq(
      e->sha256,
      "1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210");
  ck_assert_int_eq(e->pull_policy, WASM_PULL_ALWAYS);
  ck_assert_str_eq(e->pull_secret, "private-registry-pull-secret");
  ck_assert_int_eq(e->phase, WASM_PHASE_AUTHN);
  ck_assert_int_eq(e->priority, -7);
  ck_assert_int_eq(e->fail_strategy, WASM_FAIL_RELOAD);
  ck_assert_str_eq(e->plugin_name, "openid");
  ck_assert_str_eq(e->config_json,
                   "{\"openid_server\":\"authn\",\"realms\":[\"ingress\",2]}");
  ck_assert_uint_eq(e->n_env, 2);
  ck_assert_str_eq(e->env[0].name, "POD_NAME");
  ck_assert_int_eq(e->env[0].from, WASM_ENV_HOST);
  ck_assert_ptr_null(e->env[0].value);
  ck_assert_str_eq(e->env[1].value, "cluster.local");
  ck_assert_int_eq(e->env[1].from, WASM_ENV_INLINE);
  ck_assert_uint_eq(e->n_matches, 2);
  ck_assert_int_eq(e->matches[0].mode, WASM_MATCH_CLIENT);
  ck_assert_uint_eq(e->matches[0].n_ports, 2);
  ck_assert_uint_eq(e->matches[0].ports[0], 443);
  ck_assert_uint_eq(e->matches[0].ports[1], 8443);
  ck_assert_int_eq(e->matches[1].mode, WASM_MATCH_SERVER);
  ck_assert_uint_eq(e->matches[1].n_ports, 0);
  ck_assert_int_eq(e->type, WASM_TYPE_HTTP);
  ck_assert_int_eq(e->loc.line, 1);
  xds_free(problems);
  catalog_unref(cat);
}
END_TEST

START_TEST(defaults_and_schemes) {
  static const char yaml[] =
      HEAD "  url: file:///opt/filters/a.wasm\n"
           "---\n"
           "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
           "metadata: {name: h, namespace: ns}\n"
           "spec: {url: 'https://cdn.example/h.wasm', type: "
           "UNSPECIFIED_PLUGIN_TYPE, match: [{mode: UNDEFINED}, {mode: "
           "CLIENT_AND_SERVER}]}\n"
           "---\n"
           "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
           "metadata: {name: t, namespace: ns}\n"
           "spec:\n  url: oci://r.example/t:1\n  targetRef: {group: "
           "gateway.networking.k8s.io, kind: Gateway, name: public}\n"
           "---\n"
           "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
           "metadata: {name: s, namespace: ns}\n"
           "spec:\n  url: oci://r.example/s:1\n  targetRefs:\n"
           "  - {kind: Service, name: frontend}\n"
           "  - {group: core, kind: Service, name: backend, namespace: ns}\n"
           "---\n"
           "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
           "metadata: {name: n, namespace: ns}\n"
           "spec: {url: oci://r.example/n:1, type: NETWORK}\n";
  struct catalog *cat;
  char *problems = sk_load_yaml(yaml, &cat);
  const struct wasm_ext *e;

  ck_assert_msg(problems[0] == '\0', "%s", problems);
  e = catalog_ext_find(cat, "extensions.istio.io/wasmplugin/ns.p");
  ck_assert_int_eq(e->scheme, WASM_URL_FILE);
  ck_assert_int_eq(e->phase, WASM_PHASE_UNSPECIFIED);
  ck_assert_int_eq(e->priority, 0);
  ck_assert_int_eq(e->fail_strategy, WASM_FAIL_CLOSE);
  ck_assert_int_eq(e->pull_policy, WASM_PULL_UNSPECIFIED);
  ck_assert_int_eq(e->type, WASM_TYPE_HTTP);
  ck_assert_uint_eq(e->n_matches, 0);
  ck_assert_uint_eq(e->n_target_refs, 0);
  ck_assert_ptr_null(e->config_json);
  e = catalog_ext_find(cat, "extensions.istio.io/wasmplugin/ns.h");
  ck_assert_int_eq(e->scheme, WASM_URL_HTTPS);
  ck_assert_int_eq(e->matches[0].mode, WASM_MATCH_CLIENT_AND_SERVER);
  ck_assert_int_eq(e->matches[1].mode, WASM_MATCH_CLIENT_AND_SERVER);
  ck_assert_int_eq(e->type, WASM_TYPE_HTTP);
  e = catalog_ext_find(cat, "extensions.istio.io/wasmplugin/ns.t");
  ck_assert_uint_eq(e->n_target_refs, 1);
  ck_assert_str_eq(e->target_refs[0].kind, "Gateway");
  ck_assert_str_eq(e->target_refs[0].name, "public");
  e = catalog_ext_find(cat, "extensions.istio.io/wasmplugin/ns.n");
  ck_assert_int_eq(e->type, WASM_TYPE_NETWORK);
  e = catalog_ext_find(cat, "extensions.istio.io/wasmplugin/ns.s");
  ck_assert_uint_eq(e->n_target_refs, 2);
  ck_assert_str_eq(e->target_refs[0].group, "");
  ck_assert_str_eq(e->target_refs[1].group, "");
  ck_assert_str_eq(e->target_refs[1].name, "backend");
  xds_free(problems);
  catalog_unref(cat);
}
END_TEST

/* One bad document: want is the exact problem text (one line or more). */
static const struct bad_case {
  const char *what;
  const char *spec; /* the spec lines after HEAD */
  const char *want;
} bad_cases[] = {
    {"bad phase", "  url: a.wasm\n  phase: BEFORE\n",
     "error: F:6:10: spec.phase: \"BEFORE\" is not one of UNSPECIFIED_PHASE, "
     "AUTHN, AUTHZ, STATS\n"},
    {"bad fail strategy", "  url: a\n  failStrategy: FAIL_CLOSED\n",
     "error: F:6:17: spec.failStrategy: \"FAIL_CLOSED\" is not one of "
     "FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD\n"},
    {"bad pull policy", "  url: a\n  imagePullPolicy: Never\n",
     "error: F:6:20: spec.imagePullPolicy: \"Never\" is not one of "
     "UNSPECIFIED_POLICY, IfNotPresent, Always\n"},
    {"bad type", "  url: a\n  type: GRPC\n",
     "error: F:6:9: spec.type: \"GRPC\" is not one of "
     "UNSPECIFIED_PLUGIN_TYPE, HTTP, NETWORK\n"},
    {"bad match mode", "  url: a\n  match: [{mode: INBOUND}]\n",
     "error: F:6:18: spec.match[0].mode: \"INBOUND\" is not one of UNDEFINED, "
     "CLIENT, SERVER, CLIENT_AND_SERVER\n"},
    {"bad scheme", "  url: ftp://host/a.wasm\n",
     "error: F:5:8: spec.url: \"ftp://host/a.wasm\" does not match "
     "^(oci|https?|file)://\n"},
    {"missing url", "  phase: AUTHN\n",
     "error: F:5:3: spec.url: missing required field \"url\"\n"},
    {"empty url", "  url: ''\n", "error: F:5:8: spec.url: must not be empty\n"},
    {"bad sha256", "  url: a\n  sha256: ABC\n",
     "error: F:6:11: spec.sha256: \"ABC\" does not match (^$|^[a-f0-9]{64}$): "
     "a sha256 is 64 lowercase hexadecimal digits\n"},
    {"url digest disagrees",
     "  url: oci://r/x@sha256:"
     "1111111111111111111111111111111111111111111111111111111111111111\n"
     "  sha256: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "error: F:5:8: spec.url: the url references sha256 "
     "1111111111111111111111111111111111111111111111111111111111111111 but "
     "the sha256 field is "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: they "
     "must match\n"},
    {"bad env name", "  url: a\n  vmConfig:\n    env: [{name: 1BAD}]\n",
     "error: F:7:18: spec.vmConfig.env[0].name: \"1BAD\" is not a C "
     "identifier of at most 256 characters ([A-Za-z_][A-Za-z0-9_]*)\n"},
    {"env HOST with value",
     "  url: a\n  vmConfig:\n    env: [{name: A, valueFrom: HOST, value: "
     "x}]\n",
     "error: F:7:45: spec.vmConfig.env[0].value: value may only be set when "
     "valueFrom is INLINE\n"},
    {"duplicate env",
     "  url: a\n  vmConfig:\n    env: [{name: A}, {name: A}]\n",
     "error: F:7:29: spec.vmConfig.env[1].name: duplicate env name \"A\"\n"},
    {"unknown vmConfig field", "  url: a\n  vmConfig: {runtime: v8}\n",
     "error: F:6:14: spec.vmConfig.runtime: unknown field \"runtime\"\n"},
    {"unknown spec field", "  url: a\n  config: {a: 1}\n",
     "error: F:6:3: spec.config: unknown field \"config\"\n"},
    {"unknown metadata field", "  url: a\n", NULL /* see metadata_cases */},
    {"bad port", "  url: a\n  match: [{ports: [{number: 0}]}]\n",
     "error: F:6:29: spec.match[0].ports[0].number: 0 is out of range "
     "(1..65535)\n"},
    {"duplicate port",
     "  url: a\n  match: [{ports: [{number: 80}, {number: 80}]}]\n",
     "error: F:6:43: spec.match[0].ports[1].number: duplicate port 80\n"},
    {"port without number", "  url: a\n  match: [{ports: [{}]}]\n",
     "error: F:6:20: spec.match[0].ports[0].number: missing required field "
     "\"number\"\n"},
    {"selector and targetRefs",
     "  url: a\n  selector: {matchLabels: {app: x}}\n  targetRefs: [{kind: "
     "Service, name: s}]\n",
     "error: F:7:15: spec.targetRefs: only one of targetRefs or selector can "
     "be set\n"},
    {"selector wildcard", "  url: a\n  selector: {matchLabels: {app: '*'}}\n",
     "error: F:6:33: spec.selector.matchLabels.app: wildcard is not supported "
     "in selector\n"},
    {"selector bad label key",
     "  url: a\n  selector: {matchLabels: {'-bad': x}}\n",
     "error: F:6:28: spec.selector.matchLabels.-bad: \"-bad\" is not a valid "
     "label key ([prefix/]name: name up to 63 of letters, digits, '-', '_', "
     "'.', alphanumeric at both ends)\n"},
    {"selector without matchLabels", "  url: a\n  selector: {}\n",
     "error: F:6:13: spec.selector.matchLabels: missing required field "
     "\"matchLabels\" (omit the selector to select every proxy of the "
     "namespace)\n"},
    {"targetRef GatewayClass",
     "  url: a\n  targetRefs: [{group: gateway.networking.k8s.io, kind: "
     "GatewayClass, name: istio}]\n",
     "error: F:6:57: spec.targetRefs[0].kind: targetRef kind GatewayClass "
     "(group gateway.networking.k8s.io) has no meaning outside Kubernetes and "
     "wasmxds cannot honour it: target a Gateway or a Service by name, or use "
     "selector.matchLabels\n"},
    {"targetRef ServiceEntry",
     "  url: a\n  targetRef: {group: networking.istio.io, kind: ServiceEntry, "
     "name: x}\n",
     "error: F:6:49: spec.targetRef.kind: targetRef kind ServiceEntry (group "
     "networking.istio.io) has no meaning outside Kubernetes and wasmxds "
     "cannot honour it: target a Gateway or a Service by name, or use "
     "selector.matchLabels\n"},
    {"targetRef unknown kind",
     "  url: a\n  targetRefs: [{group: apps, kind: Deployment, name: x}]\n",
     "error: F:6:36: spec.targetRefs[0].kind: unsupported targetRef group "
     "\"apps\" kind \"Deployment\": Istio accepts Gateway "
     "(gateway.networking.k8s.io), GatewayClass (gateway.networking.k8s.io), "
     "Service (\"\" or core) and ServiceEntry (networking.istio.io)\n"},
    {"targetRef cross namespace",
     "  url: a\n  targetRefs: [{kind: Service, name: x, namespace: other}]\n",
     "error: F:6:52: spec.targetRefs[0].namespace: cross namespace "
     "referencing is not supported: \"other\" is not the WasmPlugin's "
     "namespace \"ns\"\n"},
    {"targetRef without name", "  url: a\n  targetRefs: [{kind: Service}]\n",
     "error: F:6:16: spec.targetRefs[0].name: missing required field "
     "\"name\"\n"},
    {"verificationKey", "  url: a\n  verificationKey: KEY\n",
     "error: F:6:20: spec.verificationKey: wasmxds cannot verify module "
     "signatures (Istio does not implement verificationKey either); remove it "
     "and pin the module with sha256 instead\n"},
    {"priority out of int32", "  url: a\n  priority: 2147483648\n",
     "error: F:6:13: spec.priority: 2147483648 is out of range (int32: "
     "-2147483648..2147483647)\n"},
    {"pluginConfig not a map", "  url: a\n  pluginConfig: [1]\n",
     "error: F:6:17: spec.pluginConfig: expected a mapping, got a sequence\n"},
    /* Fields read after pluginConfig, vmConfig, imagePullSecret or
     * pluginName keep their spec. prefix. */
    {"priority after pluginConfig",
     "  url: a\n  pluginConfig: {a: 1}\n  priority: x\n",
     "error: F:7:13: spec.priority: expected an integer, got a string\n"},
    {"match after vmConfig",
     "  url: a\n  vmConfig: {env: [{name: A, value: b}]}\n"
     "  match: [{mode: INBOUND}]\n",
     "error: F:7:18: spec.match[0].mode: \"INBOUND\" is not one of UNDEFINED, "
     "CLIENT, SERVER, CLIENT_AND_SERVER\n"},
};

START_TEST(validation) {
  const struct bad_case *k = &bad_cases[_i];
  struct xds_buf doc;
  struct catalog *cat;
  char *problems;

  if (k->want == NULL)
    return;
  xds_buf_init(&doc, 1 << 16);
  xds_buf_puts(&doc, HEAD);
  xds_buf_puts(&doc, k->spec);
  xds_buf_putc(&doc, '\0');
  problems = sk_load_yaml(doc.data, &cat);
  ck_assert_msg(strcmp(problems, k->want) == 0, "%s:\n got  %s want %s",
                k->what, problems, k->want);
  ck_assert_uint_eq(catalog_ext_count(cat), 0);
  xds_free(problems);
  catalog_unref(cat);
  xds_buf_cleanup(&doc);
}
END_TEST

START_TEST(metadata_rules) {
  static const struct {
    const char *meta, *want;
  } cases[] = {
      {"{name: p}",
       "error: F:3:11: metadata.namespace: missing required field "
       "\"namespace\": a WasmPlugin applies to the proxies of its namespace "
       "(wasmxds has no current namespace to default to)\n"},
      {"{name: p, namespace: Bad.NS}",
       "error: F:3:32: metadata.namespace: \"Bad.NS\" is not a valid "
       "namespace: a DNS-1123 label (lowercase letters, digits and '-', at "
       "most 63, alphanumeric at both ends)\n"},
      {"{name: P_1, namespace: ns}",
       "error: F:3:18: metadata.name: \"P_1\" is not a valid WasmPlugin name: "
       "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most "
       "253, alphanumeric at both ends)\n"},
      {"{name: p, namespace: ns, organization: acme}",
       "error: F:3:36: metadata.organization: unknown field "
       "\"organization\"\n"},
      {"{namespace: ns}",
       "error: F:3:11: metadata.name: missing required field \"name\"\n"},
  };

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char doc[512];
    struct catalog *cat;
    char *problems;

    snprintf(doc, sizeof(doc),
             "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
             "metadata: %s\nspec: {url: a}\n",
             cases[i].meta);
    problems = sk_load_yaml(doc, &cat);
    ck_assert_msg(strcmp(problems, cases[i].want) == 0, "%s:\n got  %s want %s",
                  cases[i].meta, problems, cases[i].want);
    ck_assert_uint_eq(catalog_ext_count(cat), 0);
    xds_free(problems);
    catalog_unref(cat);
  }
}
END_TEST

START_TEST(unknown_top_level_and_status) {
  static const char yaml[] =
      HEAD "  url: a\nstatus: {anything: [goes]}\nextra: 1\n";
  struct catalog *cat;
  char *problems = sk_load_yaml(yaml, &cat);

  ck_assert_str_eq(problems, "error: F:7:1: extra: unknown field \"extra\"\n");
  xds_free(problems);
  catalog_unref(cat);
}
END_TEST

START_TEST(kubectl_list) {
  static const char yaml[] =
      "apiVersion: v1\n"
      "kind: List\n"
      "metadata: {resourceVersion: \"\"}\n"
      "items:\n"
      "- apiVersion: extensions.istio.io/v1alpha1\n"
      "  kind: WasmPlugin\n"
      "  metadata: {name: a, namespace: one, uid: u1, generation: 1}\n"
      "  spec: {url: oci://r/a:1, phase: AUTHZ}\n"
      "  status: {}\n"
      "- apiVersion: extensions.istio.io/v1alpha1\n"
      "  kind: WasmPlugin\n"
      "  metadata: {name: bad, namespace: one}\n"
      "  spec: {url: oci://r/b:1, phase: NOPE}\n"
      "- apiVersion: extensions.istio.io/v1alpha1\n"
      "  kind: WasmPlugin\n"
      "  metadata: {name: b, namespace: two}\n"
      "  spec: {url: oci://r/b:1}\n"
      "---\n"
      "apiVersion: extensions.istio.io/v1alpha1\n"
      "kind: WasmPluginList\n"
      "items:\n"
      "- apiVersion: extensions.istio.io/v1alpha1\n"
      "  kind: WasmPlugin\n"
      "  metadata: {name: c, namespace: two}\n"
      "  spec: {url: oci://r/c:1}\n"
      "---\n"
      "apiVersion: v1\nkind: List\nitems: {not: a list}\n";
  struct catalog *cat;
  char *problems = sk_load_yaml(yaml, &cat);

  ck_assert_str_eq(
      problems,
      "error: F:13:35: spec.phase: \"NOPE\" is not one of UNSPECIFIED_PHASE, "
      "AUTHN, AUTHZ, STATS\n"
      "error: F:29:8: items: expected a sequence, got a mapping\n");
  ck_assert_uint_eq(catalog_ext_count(cat), 3);
  ck_assert_ptr_nonnull(
      catalog_ext_find(cat, "extensions.istio.io/wasmplugin/one.a"));
  ck_assert_ptr_nonnull(
      catalog_ext_find(cat, "extensions.istio.io/wasmplugin/two.b"));
  ck_assert_ptr_nonnull(
      catalog_ext_find(cat, "extensions.istio.io/wasmplugin/two.c"));
  ck_assert_int_eq(
      catalog_ext_find(cat, "extensions.istio.io/wasmplugin/one.a")->loc.line,
      5);
  xds_free(problems);
  catalog_unref(cat);
}
END_TEST

START_TEST(same_name_other_namespace_and_duplicates) {
  static const char yaml[] =
      "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
      "metadata: {name: p, namespace: one}\nspec: {url: a}\n---\n"
      "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
      "metadata: {name: p, namespace: two}\nspec: {url: a}\n---\n"
      "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
      "metadata: {name: p, namespace: one}\nspec: {url: b}\n";
  struct catalog *cat;
  char *problems = sk_load_yaml(yaml, &cat);

  ck_assert_msg(strstr(problems, "WasmPlugin") != NULL &&
                    strstr(problems, "extensions.istio.io/wasmplugin/one.p") !=
                        NULL,
                "%s", problems);
  ck_assert_uint_eq(catalog_ext_count(cat), 2);
  xds_free(problems);
  catalog_unref(cat);
}
END_TEST

#define TCP_HEAD                                                               \
  "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                        \
  "metadata: {name: db}\nspec:\n  port: 5432\n  direction: INBOUND\n"

START_TEST(tcp_templates) {
  static const char ok[] =
      TCP_HEAD "  tcp:\n    cluster: db\n    filterChains:\n"
               "    - match: {serverNames: [a.example, b.example]}\n"
               "      cluster: ab\n"
               "    - match: {destinationPort: 15432}\n      cluster: alt\n";
  static const struct {
    const char *tcp, *want;
  } bad[] = {
      {"  route: {cluster: app}\n  tcp: {cluster: db}\n",
       "error: F:7:10: spec.route: \"route\" is for HTTP listeners; a \"tcp\" "
       "listener has none\n"},
      {"  tcp: {filterChains: []}\n",
       "error: F:7:8: spec.tcp.cluster: missing required field \"cluster\"\n"},
      {"  tcp:\n    cluster: db\n    filterChains: [{cluster: x, match: {}}]\n",
       "error: F:9:40: spec.tcp.filterChains[0].match: an empty match would "
       "take every connection: set serverNames or destinationPort\n"},
      {"  tcp:\n    cluster: db\n    filterChains: [{cluster: x}]\n",
       "error: F:9:20: spec.tcp.filterChains[0].match: missing required field "
       "\"match\" (serverNames and/or destinationPort; unmatched connections "
       "go to tcp.cluster)\n"},
      {"  tcp:\n    cluster: db\n    filterChains:\n    - {cluster: x, "
       "match: {destinationPort: 0}}\n",
       "error: F:10:45: spec.tcp.filterChains[0].match.destinationPort: 0 is "
       "out of range (1..65535)\n"},
      {"  tcp:\n    cluster: db\n    filterChains:\n    - {cluster: x, "
       "match: {serverNames: ['']}}\n",
       "error: F:10:42: spec.tcp.filterChains[0].match.serverNames[0]: must "
       "not be empty\n"},
      {"  tcp:\n    cluster: db\n    filterChains:\n"
       "    - {cluster: x, match: {serverNames: [a, b], destinationPort: 9}}\n"
       "    - {cluster: y, match: {destinationPort: 9, serverNames: [b, a]}}\n",
       "error: F:11:7: spec.tcp.filterChains[1].match: the same match as "
       "filterChains[0]: Envoy refuses a listener whose filter chains match "
       "alike\n"},
  };
  struct catalog *cat;
  char *problems = sk_load_yaml(ok, &cat);
  const struct listener_tmpl *t;

  ck_assert_msg(problems[0] == '\0', "%s", problems);
  t = catalog_tmpl_find(cat, "db");
  ck_assert_int_eq(t->protocol, TMPL_TCP);
  ck_assert_str_eq(t->tcp_cluster, "db");
  ck_assert_uint_eq(t->n_tcp_chains, 2);
  ck_assert_uint_eq(t->tcp_chains[0].n_server_names, 2);
  ck_assert_str_eq(t->tcp_chains[0].server_names[1], "b.example");
  ck_assert_str_eq(t->tcp_chains[0].cluster, "ab");
  ck_assert_uint_eq(t->tcp_chains[0].destination_port, 0);
  ck_assert_uint_eq(t->tcp_chains[1].destination_port, 15432);
  ck_assert_uint_eq(t->n_filters, 0);
  xds_free(problems);
  catalog_unref(cat);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char doc[1024];

    snprintf(doc, sizeof(doc), "%s%s", TCP_HEAD, bad[i].tcp);
    problems = sk_load_yaml(doc, &cat);
    ck_assert_msg(strcmp(problems, bad[i].want) == 0, "got  %swant %s",
                  problems, bad[i].want);
    ck_assert_uint_eq(catalog_tmpl_count(cat), 0);
    xds_free(problems);
    catalog_unref(cat);
  }
}
END_TEST

TCase *istio_decode_tcase(void) {
  TCase *tc = tcase_create("decode");

  tcase_add_test(tc, every_field);
  tcase_add_test(tc, defaults_and_schemes);
  tcase_add_loop_test(tc, validation, 0,
                      (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
  tcase_add_test(tc, metadata_rules);
  tcase_add_test(tc, unknown_top_level_and_status);
  tcase_add_test(tc, kubectl_list);
  tcase_add_test(tc, same_name_other_namespace_and_duplicates);
  tcase_add_test(tc, tcp_templates);
  return tc;
}
