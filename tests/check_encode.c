/*
 * check_encode.c: the Envoy resources built from records, decoded back with
 * protobuf-c and checked field by field.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "testutil.h"
#include "server/pb/typeurl.h"

#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

static const char store[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: authn}\n"
    "spec:\n  url: file:///etc/envoy/authn.wasm\n  phase: AUTHN\n"
    "  pluginName: authn-root\n"
    "  config: {header: x-acme, limit: 10, enabled: true, nested: {a: [1, "
    "'2']}}\n"
    "  vmConfig:\n    vmId: vm1\n    runtime: envoy.wasm.runtime.wamr\n"
    "    env:\n    - {name: LOG_LEVEL, value: debug}\n"
    "    - {name: HOSTNAME, valueFrom: HOST}\n"
    "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: remote}\n"
    "spec:\n  url: https://modules.example/r.wasm\n  failStrategy: FAIL_OPEN\n"
    "  sha256: "
    "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
    "\n"
    "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: oci-closed}\n"
    "spec: {url: registry.example/x:1.0, phase: AUTHZ}\n"
    "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: oci-open}\n"
    "spec: {url: 'oci://registry.example/y:1.0', failStrategy: FAIL_OPEN}\n"
    "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: in}\nspec:\n  address: 10.0.0.1\n  port: 15006\n"
    "  direction: INBOUND\n  statPrefix: inbound_http\n"
    "  route: {cluster: local_app, prefix: /api}\n  httpFilters:\n"
    "  - name: deny-admin\n    phase: AUTHZ\n    typedConfig:\n"
    "      '@type': "
    "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC\n"
    "      rules: {action: DENY, policies: {admin: {permissions: [{any: "
    "true}], "
    "principals: [{any: true}]}}}\n"
    "  - name: envoy.filters.http.router\n"
    "    typedConfig: {'@type': "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"
    "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: out}\nspec:\n  port: 15001\n  direction: OUTBOUND\n"
    "  route: {rds: outbound-routes, rdsCluster: routes-xds}\n"
    "  httpFilters:\n"
    "  - name: envoy.filters.http.router\n"
    "    typedConfig: {'@type': "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"
    "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: out-delta}\nspec:\n  port: 15002\n"
    "  direction: OUTBOUND\n"
    "  route: {rds: r2, rdsCluster: delta-xds, rdsApiType: DELTA_GRPC}\n"
    "  httpFilters:\n"
    "  - name: envoy.filters.http.router\n"
    "    typedConfig: {'@type': "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n";

static struct catalog *cat;
static struct encode_opts opts;

static void setup(void) {
  cat = tu_catalog(store);
  encode_opts_default(&opts);
}
static void teardown(void) {
  catalog_unref(cat);
}

static Envoy__Config__Core__V3__TypedExtensionConfig *ecds(const char *name) {
  const struct wasm_ext *e = catalog_ext_find(cat, name);
  struct xds_buf b;
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;

  ck_assert_ptr_nonnull(e);
  xds_buf_init(&b, 1 << 20);
  ck_assert_int_eq(encode_extension_config(e, NULL, &opts, &b), 0);
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, b.len, (const uint8_t *)b.data);
  ck_assert_ptr_nonnull(tec);
  xds_buf_cleanup(&b);
  return tec;
}

static Envoy__Extensions__Wasm__V3__PluginConfig *
plugin(Envoy__Config__Core__V3__TypedExtensionConfig *tec,
       Envoy__Extensions__Filters__Http__Wasm__V3__Wasm **wasm) {
  ck_assert_str_eq(tec->typed_config->type_url, TYPE_WASM);
  *wasm = envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  ck_assert_ptr_nonnull(*wasm);
  ck_assert_ptr_nonnull((*wasm)->config);
  return (*wasm)->config;
}

START_TEST(local_module_plugin_config) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec =
      ecds("organizations/acme/extensions/authn");
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc = plugin(tec, &wasm);
  Envoy__Extensions__Wasm__V3__VmConfig *vm = pc->vm_config;
  Google__Protobuf__StringValue *json;

  ck_assert_str_eq(tec->name, "organizations/acme/extensions/authn");
  ck_assert_str_eq(pc->name, "organizations/acme/extensions/authn");
  ck_assert_str_eq(pc->root_id, "authn-root");
  ck_assert_ptr_nonnull(vm);
  ck_assert_str_eq(vm->vm_id, "vm1");
  ck_assert_str_eq(vm->runtime, "envoy.wasm.runtime.wamr");
  ck_assert_int_eq(vm->code->specifier_case,
                   ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_LOCAL);
  ck_assert_str_eq(vm->code->local->filename, "/etc/envoy/authn.wasm");
  ck_assert_uint_eq(vm->environment_variables->n_host_env_keys, 1);
  ck_assert_str_eq(vm->environment_variables->host_env_keys[0], "HOSTNAME");
  ck_assert_uint_eq(vm->environment_variables->n_key_values, 1);
  ck_assert_str_eq(vm->environment_variables->key_values[0]->key, "LOG_LEVEL");
  ck_assert_str_eq(vm->environment_variables->key_values[0]->value, "debug");
  ck_assert_str_eq(pc->configuration->type_url, TYPE_STRING_VALUE);
  json = google__protobuf__string_value__unpack(
      NULL, pc->configuration->value.len, pc->configuration->value.data);
  ck_assert_str_eq(json->value,
                   "{\"header\":\"x-acme\",\"limit\":10,"
                   "\"enabled\":true,\"nested\":{\"a\":[1,\"2\"]}}");
  ck_assert_int_eq(pc->fail_open, 0);
  ck_assert_int_eq(pc->failure_policy,
                   ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_CLOSED);
  google__protobuf__string_value__free_unpacked(json, NULL);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(wasm, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
}
END_TEST

START_TEST(remote_module_carries_sha256_and_cluster) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec =
      ecds("organizations/acme/extensions/remote");
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc = plugin(tec, &wasm);
  Envoy__Config__Core__V3__RemoteDataSource *r = pc->vm_config->code->remote;

  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->http_uri->uri, "https://modules.example/r.wasm");
  ck_assert_str_eq(r->http_uri->cluster, ENCODE_DEFAULT_MODULE_CLUSTER);
  ck_assert_int_eq(r->http_uri->timeout->seconds, 30);
  ck_assert_str_eq(
      r->sha256,
      "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  ck_assert_uint_eq(r->retry_policy->num_retries->value, 3);
  ck_assert_str_eq(pc->vm_config->runtime, ENCODE_DEFAULT_RUNTIME);
  ck_assert_ptr_null(pc->configuration);
  ck_assert_int_eq(pc->fail_open, 1);
  ck_assert_int_eq(pc->failure_policy,
                   ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_OPEN);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(wasm, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
}
END_TEST

/* An unfetchable module is served as RBAC under the same name: deny-all
 * when failing closed, allow-all when failing open. */
START_TEST(unservable_module_gets_fail_strategy_substitute) {
  Envoy__Config__Core__V3__TypedExtensionConfig *closed =
      ecds("organizations/acme/extensions/oci-closed");
  Envoy__Config__Core__V3__TypedExtensionConfig *open =
      ecds("organizations/acme/extensions/oci-open");
  Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac;

  ck_assert_str_eq(closed->name, "organizations/acme/extensions/oci-closed");
  ck_assert_str_eq(closed->typed_config->type_url, TYPE_RBAC);
  rbac = envoy__extensions__filters__http__rbac__v3__rbac__unpack(
      NULL, closed->typed_config->value.len, closed->typed_config->value.data);
  ck_assert_ptr_nonnull(rbac->rules);
  ck_assert_int_eq(rbac->rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW);
  ck_assert_uint_eq(rbac->rules->n_policies, 0);
  envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(rbac, NULL);

  ck_assert_str_eq(open->typed_config->type_url, TYPE_RBAC);
  rbac = envoy__extensions__filters__http__rbac__v3__rbac__unpack(
      NULL, open->typed_config->value.len, open->typed_config->value.data);
  ck_assert_ptr_null(rbac->rules);
  envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(rbac, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(closed, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(open, NULL);
}
END_TEST

static Envoy__Config__Listener__V3__Listener *listener(const char *tmpl,
                                                       const char *tenant) {
  const struct listener_tmpl *t = catalog_tmpl_find(cat, tmpl);
  struct proxy_id p;
  struct chain c;
  struct xds_buf b;
  struct xds_err err = {0, ""};
  Envoy__Config__Listener__V3__Listener *l;

  tu_proxy(&p, "n", "acme", tenant, PROXY_MODE_SIDECAR, NULL);
  ck_assert_int_eq(chain_compute(cat, &p, t, &c), 0);
  xds_buf_init(&b, 1 << 20);
  ck_assert_msg(encode_listener(t, &c, &opts, &b, &err) == 0, "%s", err.msg);
  l = envoy__config__listener__v3__listener__unpack(NULL, b.len,
                                                    (const uint8_t *)b.data);
  ck_assert_ptr_nonnull(l);
  xds_buf_cleanup(&b);
  chain_cleanup(&c);
  proxy_id_cleanup(&p);
  return l;
}

#define HCM_T                                                                  \
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager

static HCM_T *hcm_of(Envoy__Config__Listener__V3__Listener *l) {
  Envoy__Config__Listener__V3__Filter *f;

  ck_assert_uint_eq(l->n_filter_chains, 1);
  ck_assert_uint_eq(l->filter_chains[0]->n_filters, 1);
  f = l->filter_chains[0]->filters[0];
  ck_assert_str_eq(f->name, HCM_FILTER_NAME);
  ck_assert_str_eq(f->typed_config->type_url, TYPE_HCM);
  return envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
      NULL, f->typed_config->value.len, f->typed_config->value.data);
}

START_TEST(listener_references_ecds_router_last) {
  Envoy__Config__Listener__V3__Listener *l = listener("in", NULL);
  HCM_T *hcm = hcm_of(l);
  Envoy__Config__Core__V3__ExtensionConfigSource *ecs;
  const char *want[] = {"organizations/acme/extensions/authn",
                        "organizations/acme/extensions/oci-closed",
                        "deny-admin",
                        "organizations/acme/extensions/oci-open",
                        "organizations/acme/extensions/remote",
                        "envoy.filters.http.router"};

  ck_assert_str_eq(l->name, "in");
  ck_assert_str_eq(l->address->socket_address->address, "10.0.0.1");
  ck_assert_uint_eq(l->address->socket_address->port_value, 15006);
  ck_assert_int_eq(l->traffic_direction,
                   ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND);
  ck_assert_str_eq(hcm->stat_prefix, "inbound_http");
  ck_assert_ptr_nonnull(hcm->route_config);
  ck_assert_str_eq(hcm->route_config->virtual_hosts[0]->domains[0], "*");
  ck_assert_str_eq(
      hcm->route_config->virtual_hosts[0]->routes[0]->match->prefix, "/api");
  ck_assert_str_eq(
      hcm->route_config->virtual_hosts[0]->routes[0]->route->cluster,
      "local_app");
  ck_assert_uint_eq(hcm->n_http_filters, 6);
  for (size_t i = 0; i < 6; i++)
    ck_assert_str_eq(hcm->http_filters[i]->name, want[i]);
  ck_assert_int_eq(
      hcm->http_filters[0]->config_type_case,
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY);
  ecs = hcm->http_filters[0]->config_discovery;
  ck_assert_ptr_nonnull(ecs);
  ck_assert_ptr_nonnull(ecs->config_source->ads);
  ck_assert_int_eq(ecs->config_source->resource_api_version,
                   ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
  ck_assert_int_eq(ecs->config_source->initial_fetch_timeout->seconds, 0);
  ck_assert_uint_eq(ecs->n_type_urls, 2);
  ck_assert_str_eq(ecs->type_urls[0], TYPE_WASM);
  ck_assert_str_eq(ecs->type_urls[1], TYPE_RBAC);
  ck_assert_int_eq(ecs->apply_default_config_without_warming, 0);
  ck_assert_str_eq(ecs->default_config->type_url, TYPE_RBAC);
  /* The native RBAC filter came through the YAML converter. */
  {
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac =
        envoy__extensions__filters__http__rbac__v3__rbac__unpack(
            NULL, hcm->http_filters[2]->typed_config->value.len,
            hcm->http_filters[2]->typed_config->value.data);
    ck_assert_ptr_nonnull(rbac);
    ck_assert_int_eq(rbac->rules->action,
                     ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
    ck_assert_uint_eq(rbac->rules->n_policies, 1);
    ck_assert_str_eq(rbac->rules->policies[0]->key, "admin");
    ck_assert_int_eq(rbac->rules->policies[0]->value->permissions[0]->any, 1);
    envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(rbac, NULL);
  }
  ck_assert_str_eq(hcm->http_filters[5]->typed_config->type_url, TYPE_ROUTER);
  envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
      hcm, NULL);
  envoy__config__listener__v3__listener__free_unpacked(l, NULL);
}
END_TEST

START_TEST(rds_route_and_defaults) {
  Envoy__Config__Listener__V3__Listener *l = listener("out", NULL);
  HCM_T *hcm = hcm_of(l);
  Envoy__Config__Core__V3__ConfigSource *cs;
  Envoy__Config__Core__V3__ApiConfigSource *api;

  ck_assert_str_eq(l->address->socket_address->address, "0.0.0.0");
  ck_assert_int_eq(l->traffic_direction,
                   ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND);
  ck_assert_str_eq(hcm->stat_prefix, "out");
  ck_assert_ptr_nonnull(hcm->rds);
  ck_assert_str_eq(hcm->rds->route_config_name, "outbound-routes");
  cs = hcm->rds->config_source;
  ck_assert_int_eq(
      cs->config_source_specifier_case,
      ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE);
  ck_assert_int_eq(cs->resource_api_version,
                   ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
  api = cs->api_config_source;
  ck_assert_int_eq(api->api_type,
                   ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC);
  ck_assert_int_eq(api->transport_api_version,
                   ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
  ck_assert_uint_eq(api->n_grpc_services, 1);
  ck_assert_int_eq(
      api->grpc_services[0]->target_specifier_case,
      ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC);
  ck_assert_str_eq(api->grpc_services[0]->envoy_grpc->cluster_name,
                   "routes-xds");
  envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
      hcm, NULL);
  envoy__config__listener__v3__listener__free_unpacked(l, NULL);
}
END_TEST

START_TEST(rds_delta_api_type) {
  Envoy__Config__Listener__V3__Listener *l = listener("out-delta", NULL);
  HCM_T *hcm = hcm_of(l);
  Envoy__Config__Core__V3__ApiConfigSource *api =
      hcm->rds->config_source->api_config_source;

  ck_assert_str_eq(hcm->rds->route_config_name, "r2");
  ck_assert_int_eq(
      api->api_type,
      ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC);
  ck_assert_str_eq(api->grpc_services[0]->envoy_grpc->cluster_name,
                   "delta-xds");
  envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
      hcm, NULL);
  envoy__config__listener__v3__listener__free_unpacked(l, NULL);
}
END_TEST

START_TEST(inline_mode_embeds_configs) {
  Envoy__Config__Listener__V3__Listener *l;
  HCM_T *hcm;

  opts.inline_wasm = 1;
  opts.ecds_fetch_timeout_ms = 1500;
  l = listener("in", NULL);
  hcm = hcm_of(l);
  ck_assert_int_eq(
      hcm->http_filters[0]->config_type_case,
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG);
  ck_assert_str_eq(hcm->http_filters[0]->typed_config->type_url, TYPE_WASM);
  ck_assert_str_eq(hcm->http_filters[1]->typed_config->type_url, TYPE_RBAC);
  envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
      hcm, NULL);
  envoy__config__listener__v3__listener__free_unpacked(l, NULL);
}
END_TEST

START_TEST(encoding_is_deterministic) {
  const struct wasm_ext *e =
      catalog_ext_find(cat, "organizations/acme/extensions/authn");
  struct xds_buf a, b;

  xds_buf_init(&a, 1 << 20);
  xds_buf_init(&b, 1 << 20);
  ck_assert_int_eq(encode_extension_config(e, NULL, &opts, &a), 0);
  ck_assert_int_eq(encode_extension_config(e, NULL, &opts, &b), 0);
  ck_assert_uint_eq(a.len, b.len);
  ck_assert_int_eq(memcmp(a.data, b.data, a.len), 0);
  xds_buf_cleanup(&a);
  xds_buf_cleanup(&b);
}
END_TEST

/* A resolved module: remote code from wasmxds' cache, with the image's
 * root id as the default root_id. */
START_TEST(resolved_module_is_remote_with_default_root_id) {
  const struct wasm_ext *e =
      catalog_ext_find(cat, "organizations/acme/extensions/oci-closed");
  struct encode_module m = {ENCODE_MOD_REMOTE,
                            "http://127.0.0.1:18001/modules/sha256/aa.wasm",
                            "aaaa", "from-image", NULL};
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc;
  struct xds_buf b;

  xds_buf_init(&b, 1 << 20);
  ck_assert_int_eq(encode_extension_config(e, &m, &opts, &b), 0);
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, b.len, (const uint8_t *)b.data);
  pc = plugin(tec, &wasm);
  ck_assert_str_eq(pc->root_id, "from-image");
  ck_assert_str_eq(pc->vm_config->code->remote->http_uri->uri,
                   "http://127.0.0.1:18001/modules/sha256/aa.wasm");
  ck_assert_str_eq(pc->vm_config->code->remote->sha256, "aaaa");
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(wasm, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  xds_buf_cleanup(&b);
}
END_TEST

/* The null VM runs a plugin compiled into Envoy: the code is its
 * registered name as local.inline_string (issue 14 item 6), taken from the
 * url file:///<name>; the root_id stays the plugin name. */
#define NULL_VM_EXT(name, url, runtime)                                        \
  "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"             \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec:\n  url: " url "\n  pluginName: stats_inbound\n"                       \
  "  vmConfig: {runtime: " runtime "}\n"

static Envoy__Config__Core__V3__TypedExtensionConfig *
ecds_of(struct catalog *c, const char *fqn, const struct encode_module *m) {
  const struct wasm_ext *e = catalog_ext_find(c, fqn);
  struct xds_buf b;
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;

  ck_assert_ptr_nonnull(e);
  xds_buf_init(&b, 1 << 20);
  ck_assert_int_eq(encode_extension_config(e, m, &opts, &b), 0);
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, b.len, (const uint8_t *)b.data);
  ck_assert_ptr_nonnull(tec);
  xds_buf_cleanup(&b);
  return tec;
}

START_TEST(null_runtime_sends_registered_name) {
  struct catalog *c = tu_catalog(NULL_VM_EXT(
      "stats", "file:///envoy.wasm.stats", "envoy.wasm.runtime.null"));
  struct encode_module local = {ENCODE_MOD_LOCAL, NULL, NULL, NULL, NULL};
  const struct encode_module *mods[] = {NULL, &local};

  for (size_t i = 0; i < 2; i++) {
    Envoy__Config__Core__V3__TypedExtensionConfig *tec =
        ecds_of(c, "organizations/acme/extensions/stats", mods[i]);
    Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
    Envoy__Extensions__Wasm__V3__PluginConfig *pc = plugin(tec, &wasm);
    Envoy__Extensions__Wasm__V3__VmConfig *vm = pc->vm_config;

    ck_assert_str_eq(vm->runtime, "envoy.wasm.runtime.null");
    ck_assert_str_eq(pc->root_id, "stats_inbound");
    ck_assert_int_eq(
        vm->code->specifier_case,
        ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_LOCAL);
    ck_assert_int_eq(
        vm->code->local->specifier_case,
        ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING);
    ck_assert_str_eq(vm->code->local->inline_string, "envoy.wasm.stats");
    envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(wasm, NULL);
    envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  }
  catalog_unref(c);
}
END_TEST

/* WAVM is a runtime name Envoy registers in builds made with it: passed
 * through like wamr and wasmtime, code by file name. */
START_TEST(wavm_runtime_is_passed_through) {
  struct catalog *c = tu_catalog(
      NULL_VM_EXT("w", "file:///etc/envoy/w.wasm", "envoy.wasm.runtime.wavm"));
  Envoy__Config__Core__V3__TypedExtensionConfig *tec =
      ecds_of(c, "organizations/acme/extensions/w", NULL);
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc = plugin(tec, &wasm);

  ck_assert_str_eq(pc->vm_config->runtime, "envoy.wasm.runtime.wavm");
  ck_assert_str_eq(pc->vm_config->code->local->filename, "/etc/envoy/w.wasm");
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(wasm, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  catalog_unref(c);
}
END_TEST

/* Loads yaml and returns the messages of its problems, one per line. */
static void load_problems(const char *yaml, struct xds_buf *out) {
  char path[] = "/tmp/wasmxds-test-XXXXXX.yaml";
  struct catalog *c = NULL;
  struct problems pb;
  struct xds_err err = {0, ""};
  int fd = mkstemps(path, 5);

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  problems_init(&pb, 100);
  ck_assert_int_eq(file_store_load(path, NULL, &c, &pb, &err), 0);
  unlink(path);
  ck_assert_uint_eq(catalog_ext_count(c), 0);
  for (size_t i = 0; i < problems_count(&pb); i++) {
    problem_format(problems_at(&pb, i), out);
    xds_buf_putc(out, '\n');
  }
  catalog_unref(c);
  problems_cleanup(&pb);
}

START_TEST(null_runtime_needs_a_registered_name) {
  static const char *const bad[] = {
      NULL_VM_EXT("a", "oci://r.example/stats:1", "envoy.wasm.runtime.null"),
      NULL_VM_EXT("b", "https://m.example/s.wasm", "envoy.wasm.runtime.null"),
      NULL_VM_EXT("c", "file:///etc/envoy/stats.wasm",
                  "envoy.wasm.runtime.null"),
  };

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct xds_buf msgs;

    xds_buf_init(&msgs, 1 << 16);
    load_problems(bad[i], &msgs);
    ck_assert_msg(msgs.data != NULL &&
                      strstr(msgs.data, "registered name") != NULL,
                  "case %zu: %s", i, msgs.data ? msgs.data : "(none)");
    xds_buf_cleanup(&msgs);
  }
}
END_TEST

Suite *encode_suite(void) {
  Suite *s = suite_create("encode");
  TCase *tc = tcase_create("encode");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, local_module_plugin_config);
  tcase_add_test(tc, remote_module_carries_sha256_and_cluster);
  tcase_add_test(tc, unservable_module_gets_fail_strategy_substitute);
  tcase_add_test(tc, listener_references_ecds_router_last);
  tcase_add_test(tc, rds_route_and_defaults);
  tcase_add_test(tc, rds_delta_api_type);
  tcase_add_test(tc, inline_mode_embeds_configs);
  tcase_add_test(tc, encoding_is_deterministic);
  tcase_add_test(tc, resolved_module_is_remote_with_default_root_id);
  tcase_add_test(tc, null_runtime_sends_registered_name);
  tcase_add_test(tc, wavm_runtime_is_passed_through);
  tcase_add_test(tc, null_runtime_needs_a_registered_name);
  suite_add_tcase(s, tc);
  return s;
}
