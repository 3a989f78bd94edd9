/*
 * encode.c: builds Envoy messages with protobuf-c in an arena and packs
 * them. Every nested Any is packed bottom-up into arena memory; the arena is
 * dropped when the outer message has been appended to the caller's buffer.
 *
 * The decisions recorded here (design.md §5, README "What Envoy receives"):
 * - Each Wasm filter in a listener is an ECDS reference named by the
 *   extension fqn, with an ADS config source and type_urls {Wasm, RBAC}: the
 *   RBAC type is there because an extension that cannot be served gets an
 *   RBAC substitute under the same name.
 * - default_config is that same substitute (deny-all for FAIL_CLOSE,
 *   allow-all for FAIL_OPEN), and apply_default_config_without_warming is
 *   false: a listener never goes live with a security filter missing; it
 *   waits for the real config, or, when initial_fetch_timeout is set and
 *   runs out, applies the substitute instead of Envoy's default (a disabled
 *   filter that answers 500).
 * - initial_fetch_timeout defaults to 0 (wait however long it takes), as
 *   Istio does for Wasm, because wasmxds always answers a name it put in a
 *   listener: a timeout would only fire when the control plane is gone.
 */
#include "server/compose/encode.h"

#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "server/pb/pbyaml.h"
#include "store/problems.h"
#include "server/pb/typeurl.h"
#include "server/pb/wire.h"

#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/core/v3/http_uri.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/listener/v3/listener_components.pb-c.h"
#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/filters/network/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/wasm/v3/wasm.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

/* An encoded listener or extension config larger than this is refused: it
 * protects proxies (and the 4 MiB gRPC message limit) from a runaway
 * template or config. */
#define ENCODE_RESOURCE_MAX (1024 * 1024)

void encode_opts_default(struct encode_opts *o) {
  o->module_cluster = ENCODE_DEFAULT_MODULE_CLUSTER;
  o->module_fetch_timeout_ms = 30000;
  o->module_fetch_retries = 3;
  o->ecds_fetch_timeout_ms = 0;
  o->inline_wasm = 0;
  o->ecds_slots = 0;
  o->attachment_required = 0;
  o->istio_root_namespace = NULL;
  o->module_of = NULL;
  o->module_ctx = NULL;
}

void encode_module_default(const struct wasm_ext *e,
                           struct encode_module *out) {
  memset(out, 0, sizeof(*out));
  switch (e->scheme) {
  case WASM_URL_FILE:
    out->kind = ENCODE_MOD_LOCAL;
    return;
  case WASM_URL_HTTP:
  case WASM_URL_HTTPS:
    if (e->sha256 != NULL) {
      out->kind = ENCODE_MOD_REMOTE;
      out->uri = e->url;
      out->sha256 = e->sha256;
      return;
    }
    out->kind = ENCODE_MOD_UNAVAILABLE;
    out->reason = "remote module without sha256: Envoy refuses remote code "
                  "without one, and module fetching is off";
    return;
  case WASM_URL_OCI:
    break;
  }
  out->kind = ENCODE_MOD_UNAVAILABLE;
  out->reason = "oci:// module and module fetching is off: Envoy cannot pull "
                "OCI images";
}

/* Packs m into arena memory as an Any. NULL on allocation failure. */
static Google__Protobuf__Any *
any_pack(struct xds_arena *a, const char *type_url, const ProtobufCMessage *m) {
  Google__Protobuf__Any *any = xds_arena_alloc(a, sizeof(*any));
  size_t n;

  if (any == NULL)
    return NULL;
  google__protobuf__any__init(any);
  any->type_url = (char *)type_url;
  n = protobuf_c_message_get_packed_size(m);
  any->value.data = xds_arena_alloc(a, n);
  if (any->value.data == NULL)
    return NULL;
  any->value.len = protobuf_c_message_pack(m, any->value.data);
  return any;
}

static Google__Protobuf__Duration *duration_ms(struct xds_arena *a,
                                               uint32_t ms) {
  Google__Protobuf__Duration *d = xds_arena_alloc(a, sizeof(*d));

  if (d == NULL)
    return NULL;
  google__protobuf__duration__init(d);
  d->seconds = ms / 1000;
  d->nanos = (int32_t)(ms % 1000) * 1000000;
  return d;
}

/* A ConfigSource for ADS (xDS v3), with initial_fetch_timeout when given.
 * NULL on allocation failure. */
static Envoy__Config__Core__V3__ConfigSource *
ads_source(struct xds_arena *a, Google__Protobuf__Duration *timeout) {
  Envoy__Config__Core__V3__ConfigSource *cs = xds_arena_alloc(a, sizeof(*cs));
  Envoy__Config__Core__V3__AggregatedConfigSource *ads =
      xds_arena_alloc(a, sizeof(*ads));

  if (cs == NULL || ads == NULL)
    return NULL;
  envoy__config__core__v3__config_source__init(cs);
  envoy__config__core__v3__aggregated_config_source__init(ads);
  cs->config_source_specifier_case =
      ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
  cs->ads = ads;
  cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
  cs->initial_fetch_timeout = timeout;
  return cs;
}

/* The ConfigSource of a template's RDS route: Envoy's gRPC client streams
 * it (SotW or delta, xDS v3) from the server behind bootstrap cluster
 * t->rds_cluster. NULL on allocation failure. */
static Envoy__Config__Core__V3__ConfigSource *
rds_source(struct xds_arena *a, const struct listener_tmpl *t) {
  Envoy__Config__Core__V3__ConfigSource *cs = xds_arena_alloc(a, sizeof(*cs));
  Envoy__Config__Core__V3__ApiConfigSource *api =
      xds_arena_alloc(a, sizeof(*api));
  Envoy__Config__Core__V3__GrpcService *gs = xds_arena_alloc(a, sizeof(*gs));
  Envoy__Config__Core__V3__GrpcService__EnvoyGrpc *eg =
      xds_arena_alloc(a, sizeof(*eg));
  Envoy__Config__Core__V3__GrpcService **services =
      xds_arena_alloc(a, sizeof(*services));

  if (cs == NULL || api == NULL || gs == NULL || eg == NULL || services == NULL)
    return NULL;
  envoy__config__core__v3__grpc_service__envoy_grpc__init(eg);
  eg->cluster_name = t->rds_cluster;
  envoy__config__core__v3__grpc_service__init(gs);
  gs->target_specifier_case =
      ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
  gs->envoy_grpc = eg;
  services[0] = gs;
  envoy__config__core__v3__api_config_source__init(api);
  api->api_type =
      t->rds_api == TMPL_RDS_DELTA_GRPC
          ? ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC
          : ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
  api->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
  api->n_grpc_services = 1;
  api->grpc_services = services;
  envoy__config__core__v3__config_source__init(cs);
  cs->config_source_specifier_case =
      ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
  cs->api_config_source = api;
  cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
  return cs;
}

/* The fail-strategy substitute: RBAC with empty rules denies everything;
 * RBAC without rules enforces nothing. FAIL_RELOAD only concerns a VM that
 * failed at run time; a module that cannot be fetched fails closed. A
 * NETWORK plugin's substitute is the network RBAC filter (which requires a
 * stat_prefix), an HTTP one's the HTTP RBAC filter. */
static Google__Protobuf__Any *substitute_any(struct xds_arena *a,
                                             const struct wasm_ext *e) {
  Envoy__Config__Rbac__V3__RBAC *rules = NULL;

  if (e->fail_strategy != WASM_FAIL_OPEN) {
    rules = xds_arena_alloc(a, sizeof(*rules));
    if (rules == NULL)
      return NULL;
    envoy__config__rbac__v3__rbac__init(rules);
    rules->action = ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW;
  }
  if (e->type == WASM_TYPE_NETWORK) {
    Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *net =
        xds_arena_alloc(a, sizeof(*net));

    if (net == NULL)
      return NULL;
    envoy__extensions__filters__network__rbac__v3__rbac__init(net);
    net->rules = rules;
    net->stat_prefix = ENCODE_SUBSTITUTE_STAT_PREFIX;
    return any_pack(a, TYPE_NET_RBAC, &net->base);
  } else {
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac =
        xds_arena_alloc(a, sizeof(*rbac));

    if (rbac == NULL)
      return NULL;
    envoy__extensions__filters__http__rbac__v3__rbac__init(rbac);
    rbac->rules = rules;
    return any_pack(a, TYPE_RBAC, &rbac->base);
  }
}

static Envoy__Config__Core__V3__AsyncDataSource *
code_source(struct xds_arena *a, const struct wasm_ext *e,
            const struct encode_module *mod, const struct encode_opts *o) {
  Envoy__Config__Core__V3__AsyncDataSource *code =
      xds_arena_alloc(a, sizeof(*code));
  Envoy__Config__Core__V3__DataSource *local;
  Envoy__Config__Core__V3__RemoteDataSource *remote;
  Envoy__Config__Core__V3__HttpUri *uri;
  Envoy__Config__Core__V3__RetryPolicy *retry;
  Google__Protobuf__UInt32Value *retries;

  if (code == NULL)
    return NULL;
  envoy__config__core__v3__async_data_source__init(code);
  if (mod->kind == ENCODE_MOD_LOCAL) {
    const char *null_name = wasm_ext_null_vm_name(e);

    local = xds_arena_alloc(a, sizeof(*local));
    if (local == NULL)
      return NULL;
    envoy__config__core__v3__data_source__init(local);
    if (null_name != NULL) {
      /* The null VM: the plugin is compiled into Envoy and the code is
       * its registered name. */
      local->specifier_case =
          ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
      local->inline_string = (char *)null_name;
    } else {
      local->specifier_case =
          ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
      local->filename = e->url + strlen("file://");
    }
    code->specifier_case =
        ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_LOCAL;
    code->local = local;
    return code;
  }
  remote = xds_arena_alloc(a, sizeof(*remote));
  uri = xds_arena_alloc(a, sizeof(*uri));
  retry = xds_arena_alloc(a, sizeof(*retry));
  retries = xds_arena_alloc(a, sizeof(*retries));
  if (remote == NULL || uri == NULL || retry == NULL || retries == NULL)
    return NULL;
  envoy__config__core__v3__remote_data_source__init(remote);
  envoy__config__core__v3__http_uri__init(uri);
  envoy__config__core__v3__retry_policy__init(retry);
  google__protobuf__uint32_value__init(retries);
  uri->uri = (char *)mod->uri;
  uri->http_upstream_type_case =
      ENVOY__CONFIG__CORE__V3__HTTP_URI__HTTP_UPSTREAM_TYPE_CLUSTER;
  uri->cluster = (char *)o->module_cluster;
  uri->timeout = duration_ms(a, o->module_fetch_timeout_ms);
  if (uri->timeout == NULL)
    return NULL;
  retries->value = o->module_fetch_retries;
  retry->num_retries = retries;
  remote->http_uri = uri;
  remote->sha256 = (char *)mod->sha256;
  remote->retry_policy = retry;
  code->specifier_case =
      ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_REMOTE;
  code->remote = remote;
  return code;
}

/* The Wasm filter config of a servable extension, as an Any. */
static Google__Protobuf__Any *wasm_any(struct xds_arena *a,
                                       const struct wasm_ext *e,
                                       const struct encode_module *mod,
                                       const struct encode_opts *o) {
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *wasm;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc;
  Envoy__Extensions__Wasm__V3__VmConfig *vm;
  Envoy__Extensions__Wasm__V3__EnvironmentVariables *env;
  Google__Protobuf__StringValue *json;
  size_t n_host = 0, n_inline = 0;

  wasm = xds_arena_alloc(a, sizeof(*wasm));
  pc = xds_arena_alloc(a, sizeof(*pc));
  vm = xds_arena_alloc(a, sizeof(*vm));
  if (wasm == NULL || pc == NULL || vm == NULL)
    return NULL;
  envoy__extensions__filters__http__wasm__v3__wasm__init(wasm);
  envoy__extensions__wasm__v3__plugin_config__init(pc);
  envoy__extensions__wasm__v3__vm_config__init(vm);

  vm->vm_id = e->vm_id != NULL ? e->vm_id : "";
  vm->allow_precompiled = e->allow_precompiled;
  vm->nack_on_code_cache_miss = e->nack_on_code_cache_miss;
  if (e->vm_config_json != NULL) {
    Google__Protobuf__StringValue *vj = xds_arena_alloc(a, sizeof(*vj));

    if (vj == NULL)
      return NULL;
    google__protobuf__string_value__init(vj);
    vj->value = e->vm_config_json;
    vm->configuration = any_pack(a, TYPE_STRING_VALUE, &vj->base);
    if (vm->configuration == NULL)
      return NULL;
  }
  if (e->has_capabilities) {
    /* Only what is listed may be called (an empty map: nothing the
     * restriction covers). */
    Envoy__Extensions__Wasm__V3__CapabilityRestrictionConfig *cr =
        xds_arena_alloc(a, sizeof(*cr));

    if (cr == NULL)
      return NULL;
    envoy__extensions__wasm__v3__capability_restriction_config__init(cr);
    cr->allowed_capabilities =
        xds_arena_alloc(a, (e->n_capabilities + 1) * sizeof(void *));
    if (cr->allowed_capabilities == NULL)
      return NULL;
    for (size_t i = 0; i < e->n_capabilities; i++) {
      Envoy__Extensions__Wasm__V3__CapabilityRestrictionConfig__AllowedCapabilitiesEntry
          *ce = xds_arena_alloc(a, sizeof(*ce));
      Envoy__Extensions__Wasm__V3__SanitizationConfig *sc =
          xds_arena_alloc(a, sizeof(*sc));

      if (ce == NULL || sc == NULL)
        return NULL;
      envoy__extensions__wasm__v3__capability_restriction_config__allowed_capabilities_entry__init(
          ce);
      envoy__extensions__wasm__v3__sanitization_config__init(sc);
      ce->key = e->capabilities[i];
      ce->value = sc;
      cr->allowed_capabilities[cr->n_allowed_capabilities++] = ce;
    }
    pc->capability_restriction_config = cr;
  }

  vm->runtime = e->runtime != NULL ? e->runtime : ENCODE_DEFAULT_RUNTIME;
  vm->code = code_source(a, e, mod, o);
  if (vm->code == NULL)
    return NULL;
  if (e->n_env > 0) {
    env = xds_arena_alloc(a, sizeof(*env));
    if (env == NULL)
      return NULL;
    envoy__extensions__wasm__v3__environment_variables__init(env);
    for (size_t i = 0; i < e->n_env; i++)
      if (e->env[i].from == WASM_ENV_HOST)
        n_host++;
    n_inline = e->n_env - n_host;
    env->host_env_keys = xds_arena_alloc(a, (n_host + 1) * sizeof(char *));
    env->key_values = xds_arena_alloc(a, (n_inline + 1) * sizeof(void *));
    if (env->host_env_keys == NULL || env->key_values == NULL)
      return NULL;
    for (size_t i = 0; i < e->n_env; i++) {
      Envoy__Extensions__Wasm__V3__EnvironmentVariables__KeyValuesEntry *kv;
      if (e->env[i].from == WASM_ENV_HOST) {
        env->host_env_keys[env->n_host_env_keys++] = e->env[i].name;
        continue;
      }
      kv = xds_arena_alloc(a, sizeof(*kv));
      if (kv == NULL)
        return NULL;
      envoy__extensions__wasm__v3__environment_variables__key_values_entry__init(
          kv);
      kv->key = e->env[i].name;
      kv->value = e->env[i].value != NULL ? e->env[i].value : "";
      env->key_values[env->n_key_values++] = kv;
    }
    vm->environment_variables = env;
  }

  pc->name = e->fqn;
  pc->root_id = e->plugin_name != NULL ? e->plugin_name
                : mod->root_id != NULL ? (char *)mod->root_id
                                       : "";
  pc->vm_case = ENVOY__EXTENSIONS__WASM__V3__PLUGIN_CONFIG__VM_VM_CONFIG;
  pc->vm_config = vm;
  if (e->config_type == WASM_CONFIG_BYTES) {
    /* A WasmDeployment's BytesValue: Envoy passes the bytes as they are. */
    Google__Protobuf__BytesValue *bytes = xds_arena_alloc(a, sizeof(*bytes));

    if (bytes == NULL)
      return NULL;
    google__protobuf__bytes_value__init(bytes);
    bytes->value.data = e->config_bytes;
    bytes->value.len = e->config_bytes_len;
    pc->configuration = any_pack(a, TYPE_BYTES_VALUE, &bytes->base);
    if (pc->configuration == NULL)
      return NULL;
  } else if (e->config_json != NULL) {
    /* JSON, or a WasmDeployment's StringValue: the text as it is. */
    json = xds_arena_alloc(a, sizeof(*json));
    if (json == NULL)
      return NULL;
    google__protobuf__string_value__init(json);
    json->value = e->config_json;
    pc->configuration = any_pack(a, TYPE_STRING_VALUE, &json->base);
    if (pc->configuration == NULL)
      return NULL;
  }
  /* Both the deprecated fail_open (older Envoys) and failure_policy (newer
   * ones, which prefer it) say the same thing. */
  if (e->fail_strategy == WASM_FAIL_OPEN) {
    pc->fail_open = 1;
    pc->failure_policy = ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_OPEN;
  } else if (e->fail_strategy == WASM_FAIL_RELOAD) {
    /* Older Envoys know only fail_open (false): closed, the fallback
     * FAIL_RELOAD itself has for every failure but a runtime error. */
    pc->failure_policy =
        ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_RELOAD;
  } else {
    pc->failure_policy =
        ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_CLOSED;
  }
  if (e->type == WASM_TYPE_NETWORK) {
    Envoy__Extensions__Filters__Network__Wasm__V3__Wasm *net =
        xds_arena_alloc(a, sizeof(*net));

    if (net == NULL)
      return NULL;
    envoy__extensions__filters__network__wasm__v3__wasm__init(net);
    net->config = pc;
    return any_pack(a, TYPE_NET_WASM, &net->base);
  }
  wasm->config = pc;
  return any_pack(a, TYPE_WASM, &wasm->base);
}

/* The typed_config an extension is served with: the Wasm filter, or its
 * fail-strategy substitute. mod NULL: encode_module_default. */
static Google__Protobuf__Any *extension_any(struct xds_arena *a,
                                            const struct wasm_ext *e,
                                            const struct encode_module *mod,
                                            const struct encode_opts *o) {
  struct encode_module def;

  if (mod == NULL) {
    encode_module_default(e, &def);
    mod = &def;
  }
  if (mod->kind != ENCODE_MOD_UNAVAILABLE)
    return wasm_any(a, e, mod, o);
  return substitute_any(a, e);
}

/* Packs m and appends it to out, enforcing ENCODE_RESOURCE_MAX. */
static int append_packed(struct xds_buf *out, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  char *p;
  int rc;

  if (n > ENCODE_RESOURCE_MAX)
    return XDS_ETOOBIG;
  rc = xds_buf_extend(out, n, &p);
  if (rc < 0)
    return rc;
  protobuf_c_message_pack(m, (uint8_t *)p);
  return 0;
}

int encode_extension_config(const struct wasm_ext *e,
                            const struct encode_module *mod,
                            const struct encode_opts *o, struct xds_buf *out) {
  Envoy__Config__Core__V3__TypedExtensionConfig tec =
      ENVOY__CONFIG__CORE__V3__TYPED_EXTENSION_CONFIG__INIT;
  struct xds_arena a;
  int rc;

  xds_arena_init(&a, 0);
  tec.name = e->fqn;
  tec.typed_config = extension_any(&a, e, mod, o);
  rc = tec.typed_config == NULL ? XDS_ENOMEM : append_packed(out, &tec.base);
  xds_arena_cleanup(&a);
  return rc;
}

/* Everything encode_listener builds, so the interleave callbacks can reach
 * it. */
struct listener_build {
  struct xds_arena *a;
  const struct listener_tmpl *t;
  const struct chain *c;
  const struct encode_module *const *mods; /* nullable */
  const struct encode_entry *entries;      /* nullable: pre-encoded */
  const struct encode_opts *o;
  struct xds_buf *filters; /* HCM field 5 entries, in order */
  struct xds_err *err;
};

/* The generated name is long; this is only a shorter spelling of it. */
#define http_filter_t                                                          \
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter

static http_filter_t *new_http_filter(struct xds_arena *a, const char *name) {
  http_filter_t *f = xds_arena_alloc(a, sizeof(*f));

  if (f == NULL)
    return NULL;
  envoy__extensions__filters__network__http_connection_manager__v3__http_filter__init(
      f);
  f->name = (char *)name;
  return f;
}

/* Appends f as one HCM http_filters entry (field 5). */
static int put_filter(struct xds_buf *out, const http_filter_t *f) {
  size_t n = protobuf_c_message_get_packed_size(&f->base);
  char *p;
  int rc = wire_put_len_prefix(out, 5, n);

  if (rc == 0)
    rc = xds_buf_extend(out, n, &p);
  if (rc == 0)
    protobuf_c_message_pack(&f->base, (uint8_t *)p);
  return rc;
}

static int emit_native(void *ctx, size_t i) {
  struct listener_build *lb = ctx;
  const struct native_filter *nf = &lb->t->filters[i];
  http_filter_t *f = new_http_filter(lb->a, nf->name);
  int rc;

  if (f == NULL)
    return XDS_ENOMEM;
  rc = pbyaml_pack_any(nf->typed_config, nf->type_url, lb->a, &f->typed_config,
                       lb->err);
  if (rc < 0) {
    if (rc == XDS_EINVAL && lb->err != NULL) {
      char detail[XDS_ERR_MSG_MAX];
      memcpy(detail, lb->err->msg, sizeof(detail));
      xds_err_set(lb->err, rc, "listener template %s, filter %s: %s",
                  lb->t->name, nf->name, detail);
    }
    return rc;
  }
  f->config_type_case =
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
  return put_filter(lb->filters, f);
}

/* The config discovery of extension e's filter (HTTP or network): ECDS
 * over ADS, accepting type_urls (two: the Wasm filter and its RBAC
 * substitute; static), with the substitute as the default config. NULL
 * when out of memory. */
static Envoy__Config__Core__V3__ExtensionConfigSource *
ecds_config_source(struct xds_arena *a, const struct wasm_ext *e,
                   const struct encode_opts *o, char **type_urls) {
  Envoy__Config__Core__V3__ExtensionConfigSource *ecs =
      xds_arena_alloc(a, sizeof(*ecs));

  if (ecs == NULL)
    return NULL;
  envoy__config__core__v3__extension_config_source__init(ecs);
  ecs->config_source = ads_source(a, duration_ms(a, o->ecds_fetch_timeout_ms));
  if (ecs->config_source == NULL ||
      ecs->config_source->initial_fetch_timeout == NULL)
    return NULL;
  ecs->default_config = substitute_any(a, e);
  if (ecs->default_config == NULL)
    return NULL;
  ecs->apply_default_config_without_warming = 0;
  ecs->n_type_urls = 2;
  ecs->type_urls = type_urls;
  return ecs;
}

/* Appends an HttpFilter named name that is an ECDS reference whose
 * default_config is the substitute of dflt. */
static int ecds_filter(struct xds_arena *a, const char *name,
                       const struct wasm_ext *dflt, const struct encode_opts *o,
                       struct xds_buf *out) {
  http_filter_t *f = new_http_filter(a, name);
  static char *type_urls[] = {TYPE_WASM, TYPE_RBAC};

  if (f == NULL)
    return XDS_ENOMEM;
  f->config_discovery = ecds_config_source(a, dflt, o, type_urls);
  if (f->config_discovery == NULL)
    return XDS_ENOMEM;
  f->config_type_case =
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY;
  return put_filter(out, f);
}

/* The HttpFilter of a Wasm extension: an ECDS reference, or (inline mode)
 * its config. */
static int wasm_filter(struct xds_arena *a, const struct wasm_ext *e,
                       const struct encode_module *mod,
                       const struct encode_opts *o, struct xds_buf *out) {
  http_filter_t *f;

  if (!o->inline_wasm)
    return ecds_filter(a, e->fqn, e, o, out);
  f = new_http_filter(a, e->fqn);
  if (f == NULL)
    return XDS_ENOMEM;
  f->typed_config = extension_any(a, e, mod, o);
  if (f->typed_config == NULL)
    return XDS_ENOMEM;
  f->config_type_case =
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
  return put_filter(out, f);
}

const enum wasm_phase encode_slot_phases[4] = {
    WASM_PHASE_AUTHN, WASM_PHASE_AUTHZ, WASM_PHASE_STATS,
    WASM_PHASE_UNSPECIFIED};

const char *encode_slot_phase_name(enum wasm_phase p) {
  switch (p) {
  case WASM_PHASE_AUTHN:
    return "AUTHN";
  case WASM_PHASE_AUTHZ:
    return "AUTHZ";
  case WASM_PHASE_STATS:
    return "STATS";
  default:
    return "UNSPECIFIED";
  }
}

size_t encode_slot_capacity(uint32_t h, size_t n) {
  size_t cap = h;

  if (h == 0)
    return 0;
  while (cap <= n) {
    if (cap > ENCODE_SLOTS_PHASE_MAX / 2)
      return 0;
    cap *= 2;
  }
  return cap <= ENCODE_SLOTS_PHASE_MAX ? cap : 0;
}

int encode_slot_name(const char *listener, const char *layout,
                     enum wasm_phase p, size_t pos, struct xds_buf *out) {
  return xds_buf_printf(out, ENCODE_SLOT_PREFIX "%s/%s/%s/%zu", listener,
                        layout, encode_slot_phase_name(p), pos);
}

void encode_slot_layout(const size_t *caps, size_t n,
                        char out[ENCODE_SLOT_LAYOUT_LEN + 1]) {
  char v[VERSION_LEN + 1];
  uint8_t b[8];
  struct version_hasher h;

  if (version_begin(&h) < 0) {
    /* No memory for the hasher: hash the caps' bytes directly. */
    version_of(caps, n * sizeof(*caps), v);
  } else {
    for (size_t i = 0; i < n; i++) {
      for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)((uint64_t)caps[i] >> (8 * k));
      version_add(&h, b, sizeof(b));
    }
    version_end(&h, v);
  }
  out[0] = 'L';
  memcpy(out + 1, v, ENCODE_SLOT_LAYOUT_LEN - 1);
  out[ENCODE_SLOT_LAYOUT_LEN] = '\0';
}

uint32_t encode_slot_ident(const char *fqn) {
  uint32_t h = 2166136261u;

  if (fqn == NULL)
    return 0;
  for (const unsigned char *c = (const unsigned char *)fqn; *c; c++)
    h = (h ^ *c) * 16777619u;
  h = (h ^ (h >> 24)) & 0xffffffu;
  return h != 0 ? h : 1;
}

void encode_slot_version(const void *bytes, size_t len, const char *fqn,
                         char out[VERSION_LEN + 1]) {
  version_of(bytes, len, out);
  snprintf(out + 9, VERSION_LEN + 1 - 9, "s%06x",
           (unsigned)encode_slot_ident(fqn));
}

int encode_slot_version_ident(const char *version, uint32_t *ident) {
  uint32_t v = 0;

  if (version == NULL || strlen(version) != VERSION_LEN || version[9] != 's')
    return XDS_EINVAL;
  for (int i = 10; i < VERSION_LEN; i++) {
    char c = version[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (d < 0)
      return XDS_EINVAL;
    v = v << 4 | (uint32_t)d;
  }
  *ident = v;
  return 0;
}

int encode_tcp_slot_name(const char *listener, const char *layout, size_t ci,
                         size_t n_tcp_chains, enum wasm_phase p, size_t pos,
                         struct xds_buf *out) {
  if (ci >= n_tcp_chains)
    return xds_buf_printf(out, ENCODE_SLOT_PREFIX "%s/%s/default/%s/%zu",
                          listener, layout, encode_slot_phase_name(p), pos);
  return xds_buf_printf(out, ENCODE_SLOT_PREFIX "%s/%s/c%zu/%s/%zu", listener,
                        layout, ci, encode_slot_phase_name(p), pos);
}

int encode_slot_entry(const char *name, const struct encode_opts *o,
                      struct xds_buf *out) {
  /* What a slot falls back to: a fail-closed HTTP filter's substitute. */
  static const struct wasm_ext closed = {.fail_strategy = WASM_FAIL_CLOSE,
                                         .type = WASM_TYPE_HTTP};
  struct xds_arena a;
  int rc;

  xds_arena_init(&a, ENCODE_RESOURCE_MAX);
  rc = ecds_filter(&a, name, &closed, o, out);
  xds_arena_cleanup(&a);
  return rc;
}

int encode_slot_config(const char *name, const uint8_t *ext, size_t ext_len,
                       int network, struct xds_buf *out) {
  size_t i = 1, len = 0;
  int rc, shift = 0;

  rc = wire_put_string(out, 1, name);
  if (rc < 0)
    return rc;
  /* The empty slot: RBAC without rules enforces nothing. */
  if (ext == NULL && !network)
    return wire_put_any(out, 2, TYPE_RBAC, "", 0);
  if (ext == NULL) {
    /* The network RBAC filter requires a stat_prefix; nothing else. */
    Envoy__Extensions__Filters__Network__Rbac__V3__RBAC net =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__RBAC__V3__RBAC__INIT;
    uint8_t buf[128];
    size_t n;

    net.stat_prefix = ENCODE_SLOT_STAT_PREFIX;
    n = protobuf_c_message_get_packed_size(&net.base);
    if (n > sizeof(buf))
      return XDS_ETOOBIG;
    protobuf_c_message_pack(&net.base, buf);
    return wire_put_any(out, 2, TYPE_NET_RBAC, buf, n);
  }
  /* ext is TypedExtensionConfig{1: name, 2: typed_config}, packed in field
   * order: skip the name field (tag 0x0a, varint length, bytes) and keep
   * the rest as it is. */
  if (ext_len < 2 || ext[0] != 0x0a)
    return XDS_EINVAL;
  for (;; i++) {
    if (i >= ext_len || shift > 28)
      return XDS_EINVAL;
    len |= (size_t)(ext[i] & 0x7f) << shift;
    shift += 7;
    if ((ext[i] & 0x80) == 0)
      break;
  }
  i++;
  if (len > ext_len - i)
    return XDS_EINVAL;
  i += len;
  return xds_buf_append(out, ext + i, ext_len - i);
}

int encode_wasm_filter_entry(const struct wasm_ext *e,
                             const struct encode_module *mod,
                             const struct encode_opts *o, struct xds_buf *out) {
  struct xds_arena a;
  int rc;

  xds_arena_init(&a, ENCODE_RESOURCE_MAX);
  rc = wasm_filter(&a, e, mod, o, out);
  xds_arena_cleanup(&a);
  return rc;
}

static int emit_wasm(void *ctx, size_t k) {
  struct listener_build *lb = ctx;

  if (lb->entries != NULL)
    return xds_buf_append(lb->filters, lb->entries[k].data, lb->entries[k].len);
  return wasm_filter(lb->a, lb->c->exts[k],
                     lb->mods != NULL ? lb->mods[k] : NULL, lb->o, lb->filters);
}

/* The route part of the HCM: an inline route to a cluster, or RDS. */
static int set_route(
    struct listener_build *lb,
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
        *hcm) {
  struct xds_arena *a = lb->a;
  const struct listener_tmpl *t = lb->t;
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds *rds;
  Envoy__Config__Route__V3__RouteConfiguration *rc;
  Envoy__Config__Route__V3__VirtualHost *vh;
  Envoy__Config__Route__V3__Route *route;
  Envoy__Config__Route__V3__RouteMatch *match;
  Envoy__Config__Route__V3__RouteAction *action;
  static char *all_domains[] = {"*"};

  if (t->route_kind == TMPL_ROUTE_RDS) {
    rds = xds_arena_alloc(a, sizeof(*rds));
    if (rds == NULL)
      return XDS_ENOMEM;
    envoy__extensions__filters__network__http_connection_manager__v3__rds__init(
        rds);
    rds->config_source = rds_source(a, t);
    if (rds->config_source == NULL)
      return XDS_ENOMEM;
    rds->route_config_name = t->rds_name;
    hcm->route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm->rds = rds;
    return 0;
  }
  rc = xds_arena_alloc(a, sizeof(*rc));
  vh = xds_arena_alloc(a, sizeof(*vh));
  route = xds_arena_alloc(a, sizeof(*route));
  match = xds_arena_alloc(a, sizeof(*match));
  action = xds_arena_alloc(a, sizeof(*action));
  if (rc == NULL || vh == NULL || route == NULL || match == NULL ||
      action == NULL)
    return XDS_ENOMEM;
  envoy__config__route__v3__route_configuration__init(rc);
  envoy__config__route__v3__virtual_host__init(vh);
  envoy__config__route__v3__route__init(route);
  envoy__config__route__v3__route_match__init(match);
  envoy__config__route__v3__route_action__init(action);
  rc->virtual_hosts = xds_arena_alloc(a, sizeof(*rc->virtual_hosts));
  vh->routes = xds_arena_alloc(a, sizeof(*vh->routes));
  if (rc->virtual_hosts == NULL || vh->routes == NULL)
    return XDS_ENOMEM;
  match->path_specifier_case =
      ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
  match->prefix = t->route_prefix != NULL ? t->route_prefix : "/";
  action->cluster_specifier_case =
      ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
  action->cluster = t->route_cluster;
  route->match = match;
  route->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
  route->route = action;
  vh->name = t->name;
  vh->n_domains = 1;
  vh->domains = all_domains;
  vh->routes[0] = route;
  vh->n_routes = 1;
  rc->name = t->name;
  rc->virtual_hosts[0] = vh;
  rc->n_virtual_hosts = 1;
  hcm->route_specifier_case =
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
  hcm->route_config = rc;
  return 0;
}

/* ---- TCP listeners ---- */

/* A network filter entry named name: an ECDS reference admitting the
 * network Wasm and RBAC filters, whose default config is the substitute of
 * dflt. */
static Envoy__Config__Listener__V3__Filter *
net_ecds_filter(struct xds_arena *a, const char *name,
                const struct wasm_ext *dflt, const struct encode_opts *o) {
  static char *type_urls[] = {TYPE_NET_WASM, TYPE_NET_RBAC};
  Envoy__Config__Listener__V3__Filter *f = xds_arena_alloc(a, sizeof(*f));
  Envoy__Config__Core__V3__ExtensionConfigSource *ecs =
      ecds_config_source(a, dflt, o, type_urls);

  if (f == NULL || ecs == NULL)
    return NULL;
  envoy__config__listener__v3__filter__init(f);
  f->name = (char *)name;
  f->config_type_case =
      ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_CONFIG_DISCOVERY;
  f->config_discovery = ecs;
  return f;
}

/* A network filter entry for a NETWORK plugin: always an ECDS reference
 * (also with --inline-wasm), with its substitute as the default config. */
static Envoy__Config__Listener__V3__Filter *
net_wasm_filter(struct xds_arena *a, const struct wasm_ext *e,
                const struct encode_opts *o) {
  return net_ecds_filter(a, e->fqn, e, o);
}

/* A network slot: what it holds is not known to the listener, so a timeout
 * fails closed (a network RBAC that denies every connection). */
static Envoy__Config__Listener__V3__Filter *
net_slot_filter(struct xds_arena *a, const char *name,
                const struct encode_opts *o) {
  static const struct wasm_ext closed = {.fail_strategy = WASM_FAIL_CLOSE,
                                         .type = WASM_TYPE_NETWORK};

  return net_ecds_filter(a, name, &closed, o);
}

int encode_tcp_chain_has(const struct chain *c, size_t k, size_t ci) {
  return c->on == NULL || ci >= 64 || (c->on[k] & (UINT64_C(1) << ci)) != 0;
}

/* The terminal tcp_proxy filter to cluster. */
static Envoy__Config__Listener__V3__Filter *
tcp_proxy_filter(struct xds_arena *a, const struct listener_tmpl *t,
                 const char *cluster) {
  Envoy__Config__Listener__V3__Filter *f = xds_arena_alloc(a, sizeof(*f));
  Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
      xds_arena_alloc(a, sizeof(*tp));

  if (f == NULL || tp == NULL)
    return NULL;
  envoy__config__listener__v3__filter__init(f);
  envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__init(tp);
  tp->stat_prefix = t->stat_prefix != NULL ? t->stat_prefix : t->name;
  tp->cluster_specifier_case =
      ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
  tp->cluster = (char *)cluster;
  f->name = TCP_PROXY_FILTER_NAME;
  f->config_type_case =
      ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
  f->typed_config = any_pack(a, TYPE_TCP_PROXY, &tp->base);
  return f->typed_config != NULL ? f : NULL;
}

/* One filter chain: the chain's network Wasm filters in order (with
 * slots, the n_slots slot names instead), then the tcp_proxy to cluster;
 * matched by m (NULL: the default chain). */
static Envoy__Config__Listener__V3__FilterChain *
tcp_chain(struct xds_arena *a, const struct listener_tmpl *t,
          const struct chain *c, const char *const *slots, size_t n_slots,
          const struct encode_opts *o, size_t ci,
          const struct tmpl_tcp_chain *m, const char *cluster) {
  Envoy__Config__Listener__V3__FilterChain *fc =
      xds_arena_alloc(a, sizeof(*fc));
  size_t n = 0, max = slots != NULL ? n_slots : c->n;

  if (fc == NULL)
    return NULL;
  envoy__config__listener__v3__filter_chain__init(fc);
  fc->filters = xds_arena_alloc(a, (max + 1) * sizeof(*fc->filters));
  if (fc->filters == NULL)
    return NULL;
  for (size_t k = 0; slots != NULL && k < n_slots; k++)
    if ((fc->filters[n++] = net_slot_filter(a, slots[k], o)) == NULL)
      return NULL;
  for (size_t k = 0; slots == NULL && k < c->n; k++) {
    /* The plugin's match[].ports may keep it off this chain. */
    if (!encode_tcp_chain_has(c, k, ci))
      continue;
    if ((fc->filters[n++] = net_wasm_filter(a, c->exts[k], o)) == NULL)
      return NULL;
  }
  if ((fc->filters[n++] = tcp_proxy_filter(a, t, cluster)) == NULL)
    return NULL;
  fc->n_filters = n;
  if (m != NULL) {
    Envoy__Config__Listener__V3__FilterChainMatch *fcm =
        xds_arena_alloc(a, sizeof(*fcm));

    if (fcm == NULL)
      return NULL;
    envoy__config__listener__v3__filter_chain_match__init(fcm);
    if (m->destination_port != 0) {
      Google__Protobuf__UInt32Value *port = xds_arena_alloc(a, sizeof(*port));

      if (port == NULL)
        return NULL;
      google__protobuf__uint32_value__init(port);
      port->value = m->destination_port;
      fcm->destination_port = port;
    }
    fcm->server_names = m->server_names;
    fcm->n_server_names = m->n_server_names;
    fc->filter_chain_match = fcm;
  }
  return fc;
}

/* What every Listener takes from its template: name, address (written
 * into the caller's addr and sa, which must outlive l) and traffic
 * direction. */
static void listener_head(Envoy__Config__Listener__V3__Listener *l,
                          const struct listener_tmpl *t,
                          Envoy__Config__Core__V3__Address *addr,
                          Envoy__Config__Core__V3__SocketAddress *sa) {
  sa->address = t->address;
  sa->port_specifier_case =
      ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
  sa->port_value = t->port;
  addr->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
  addr->socket_address = sa;
  l->name = t->name;
  l->address = addr;
  l->traffic_direction =
      t->direction == TMPL_INBOUND
          ? ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND
          : ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND;
}

/* A TCP template's Listener: one filter chain per spec.tcp.filterChains
 * item, then the default chain; the TLS inspector when a chain matches
 * SNI names. With slots (not NULL), filter chain i holds the n_slots[i]
 * slots slots[i] instead of c's filters. */
static int
encode_tcp_listener(const struct listener_tmpl *t, const struct chain *c,
                    const char *const *const *slots, const size_t *n_slots,
                    const struct encode_opts *o, struct xds_buf *out) {
  Envoy__Config__Listener__V3__Listener l =
      ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
  Envoy__Config__Core__V3__Address addr =
      ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
  Envoy__Config__Core__V3__SocketAddress sa =
      ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
  Envoy__Config__Listener__V3__ListenerFilter lf =
      ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__INIT;
  Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector tls =
      ENVOY__EXTENSIONS__FILTERS__LISTENER__TLS_INSPECTOR__V3__TLS_INSPECTOR__INIT;
  Envoy__Config__Listener__V3__ListenerFilter *lfs[1] = {&lf};
  struct xds_arena a;
  size_t n = t->n_tcp_chains + 1;
  int sni = 0, rc = XDS_ENOMEM;

  xds_arena_init(&a, 0);
  l.filter_chains = xds_arena_alloc(&a, n * sizeof(*l.filter_chains));
  if (l.filter_chains == NULL)
    goto out;
  for (size_t i = 0; i < t->n_tcp_chains; i++) {
    l.filter_chains[i] = tcp_chain(&a, t, c, slots != NULL ? slots[i] : NULL,
                                   slots != NULL ? n_slots[i] : 0, o, i,
                                   &t->tcp_chains[i], t->tcp_chains[i].cluster);
    if (l.filter_chains[i] == NULL)
      goto out;
    sni |= t->tcp_chains[i].n_server_names > 0;
  }
  l.filter_chains[n - 1] =
      tcp_chain(&a, t, c, slots != NULL ? slots[n - 1] : NULL,
                slots != NULL ? n_slots[n - 1] : 0, o, t->n_tcp_chains, NULL,
                t->tcp_cluster);
  if (l.filter_chains[n - 1] == NULL)
    goto out;
  l.n_filter_chains = n;
  if (sni) {
    lf.name = TLS_INSPECTOR_FILTER_NAME;
    lf.config_type_case =
        ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    lf.typed_config = any_pack(&a, TYPE_TLS_INSPECTOR, &tls.base);
    if (lf.typed_config == NULL)
      goto out;
    l.listener_filters = lfs;
    l.n_listener_filters = 1;
  }
  listener_head(&l, t, &addr, &sa);
  rc = append_packed(out, &l.base);
out:
  xds_arena_cleanup(&a);
  return rc;
}

int encode_tcp_listener_slots(const struct listener_tmpl *t,
                              const char *const *const *slots,
                              const size_t *n_slots,
                              const struct encode_opts *o,
                              struct xds_buf *out) {
  if (t->protocol != TMPL_TCP)
    return XDS_EINVAL;
  return encode_tcp_listener(t, NULL, slots, n_slots, o, out);
}

int encode_listener(const struct listener_tmpl *t, const struct chain *c,
                    const struct encode_opts *o, struct xds_buf *out,
                    struct xds_err *err) {
  return encode_listener_mods(t, c, NULL, NULL, o, out, err);
}

int encode_listener_mods(const struct listener_tmpl *t, const struct chain *c,
                         const struct encode_module *const *mods,
                         const struct encode_entry *entries,
                         const struct encode_opts *o, struct xds_buf *out,
                         struct xds_err *err) {
  Envoy__Config__Listener__V3__Listener l =
      ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
  Envoy__Config__Core__V3__Address addr =
      ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
  Envoy__Config__Core__V3__SocketAddress sa =
      ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
  Envoy__Config__Listener__V3__FilterChain fc =
      ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT;
  Envoy__Config__Listener__V3__Filter net =
      ENVOY__CONFIG__LISTENER__V3__FILTER__INIT;
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
      hcm =
          ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Envoy__Config__Listener__V3__FilterChain *fcs[1] = {&fc};
  Envoy__Config__Listener__V3__Filter *nets[1] = {&net};
  struct listener_build lb;
  struct xds_buf hcm_bytes;
  struct xds_arena a;
  size_t n;
  char *p;
  int rc;

  if (t->protocol == TMPL_TCP)
    return encode_tcp_listener(t, c, NULL, NULL, o, out);
  xds_arena_init(&a, 0);
  xds_buf_init(&hcm_bytes, ENCODE_RESOURCE_MAX);
  lb.a = &a;
  lb.t = t;
  lb.c = c;
  lb.mods = mods;
  lb.entries = entries;
  lb.o = o;
  lb.err = err;
  /* The HCM's own fields first, then its http_filters entries appended in
   * chain order: a message is the concatenation of its fields, so the
   * Wasm entries can be the ones encoded once per snapshot. */
  hcm.stat_prefix = t->stat_prefix != NULL ? t->stat_prefix : t->name;
  hcm.codec_type =
      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__AUTO;
  rc = set_route(&lb, &hcm);
  if (rc < 0)
    goto out;
  n = protobuf_c_message_get_packed_size(&hcm.base);
  rc = xds_buf_extend(&hcm_bytes, n, &p);
  if (rc < 0)
    goto out;
  protobuf_c_message_pack(&hcm.base, (uint8_t *)p);
  lb.filters = &hcm_bytes;
  rc = chain_interleave(t, c, emit_native, emit_wasm, &lb);
  if (rc != 0)
    goto out;
  any.type_url = TYPE_HCM;
  any.value.data = (uint8_t *)hcm_bytes.data;
  any.value.len = hcm_bytes.len;
  net.name = HCM_FILTER_NAME;
  net.config_type_case =
      ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
  net.typed_config = &any;
  fc.filters = nets;
  fc.n_filters = 1;
  listener_head(&l, t, &addr, &sa);
  l.filter_chains = fcs;
  l.n_filter_chains = 1;
  rc = append_packed(out, &l.base);
out:
  xds_buf_cleanup(&hcm_bytes);
  xds_arena_cleanup(&a);
  return rc;
}

/* Converts every native filter of t; on failure *at is the filter's index
 * and fault says where. */
static int check_filters(const struct listener_tmpl *t, struct xds_err *err,
                         struct pbyaml_fault *fault, size_t *at) {
  struct xds_arena a;
  Google__Protobuf__Any *any;
  int rc = 0;

  xds_arena_init(&a, ENCODE_RESOURCE_MAX);
  for (size_t i = 0; rc == 0 && i < t->n_filters; i++) {
    const struct native_filter *nf = &t->filters[i];
    rc = pbyaml_pack_any_ex(nf->typed_config, nf->type_url, &a, &any, err,
                            fault);
    if (rc < 0 && at != NULL)
      *at = i;
  }
  xds_arena_cleanup(&a);
  return rc;
}

int encode_check_template(const struct listener_tmpl *t, struct xds_err *err) {
  struct pbyaml_fault fault;

  return check_filters(t, err, &fault, NULL);
}

int encode_store_check(void *ctx, const struct listener_tmpl *t,
                       struct problems *pb) {
  struct pbyaml_fault fault;
  struct xds_err err = {0, ""};
  size_t at = 0;
  int rc;

  (void)ctx;
  memset(&fault, 0, sizeof(fault));
  rc = check_filters(t, &err, &fault, &at);
  if (rc == XDS_EINVAL && fault.source != NULL) {
    /* The exact node, and its path from the document's root. */
    char path[1024];
    const char *tail = strncmp(fault.path, "typedConfig", 11) == 0
                           ? fault.path + 11
                           : fault.path;
    snprintf(path, sizeof(path), "spec.httpFilters[%zu].typedConfig%s", at,
             tail);
    problems_add(pb, PROBLEM_ERROR, fault.source, fault.line, fault.column,
                 path, "%s", fault.msg);
  } else if (rc < 0 && rc != XDS_ENOMEM) {
    problems_add(pb, PROBLEM_ERROR, t->loc.source, t->loc.line, t->loc.column,
                 "spec.httpFilters", "%s", err.msg);
  }
  return rc;
}
