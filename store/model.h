/*
 * model.h: what operators configure, as plain validated C structs.
 *
 * These are the records the store produces and the catalog indexes. Every
 * string is NUL-terminated UTF-8 owned by the record; records are immutable
 * once they are in a catalog. No gRPC or protobuf types appear here.
 *
 * Records are reference-counted so that successive catalogs (and the file
 * store's per-file cache) can share the records of unchanged files instead
 * of copying them: a new record has one reference, *_ref() adds one and
 * *_free() drops one, freeing the record with the last. Whoever only ever
 * holds one reference can keep treating *_free() as a plain destructor.
 */
#ifndef XDS_STORE_MODEL_H
#define XDS_STORE_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct ynode;

/* Where a record or a problem came from. line and column are 1-based; 0
 * when unknown (for example a whole etcd key). */
struct src_loc {
  char *source; /* file path or etcd key */
  int line;
  int column;
};

/* Phases, in declaration order of the WasmExtension API. Composition order
 * is AUTHN, AUTHZ, STATS, then UNSPECIFIED last: see wasm_phase_rank(). */
enum wasm_phase {
  WASM_PHASE_UNSPECIFIED = 0,
  WASM_PHASE_AUTHN = 1,
  WASM_PHASE_AUTHZ = 2,
  WASM_PHASE_STATS = 3
};

static inline int wasm_phase_rank(enum wasm_phase p) {
  return p == WASM_PHASE_UNSPECIFIED ? 3 : (int)p - 1;
}

enum wasm_pull_policy {
  WASM_PULL_UNSPECIFIED = 0,
  WASM_PULL_IF_NOT_PRESENT = 1,
  WASM_PULL_ALWAYS = 2
};

/* match.mode: which listener directions the extension applies to. */
enum wasm_match_mode {
  WASM_MATCH_CLIENT_AND_SERVER = 0, /* default: both */
  WASM_MATCH_CLIENT = 1,            /* outbound listeners (and gateways) */
  WASM_MATCH_SERVER = 2             /* inbound listeners */
};

enum wasm_fail_strategy {
  WASM_FAIL_CLOSE = 0, /* default: a broken plugin denies traffic */
  WASM_FAIL_OPEN = 1,  /* a broken plugin is skipped */
  WASM_FAIL_RELOAD = 2 /* WasmPlugin only: a plugin that failed at run time
                          gets a new VM; Envoy's FAIL_RELOAD (other
                          failures fail closed) */
};

/* Which API a wasm_ext record was read from. Both are served by the same
 * composition; the fields that only one API has say which. */
enum wasm_ext_kind {
  WASM_KIND_EXTENSION = 0, /* extension.tsb.tetrate.io/v2 WasmExtension */
  WASM_KIND_PLUGIN = 1,    /* extensions.istio.io/v1alpha1 WasmPlugin */
  WASM_KIND_DEPLOYMENT = 2 /* one filters[] item of a Gloo Mesh
                              WasmDeployment (networking.enterprise.mesh.
                              gloo.solo.io/v1beta1) */
};

/* WasmDeployment filterContext (Istio's EnvoyFilter PatchContext): which
 * listeners of which proxies a filter goes to. */
enum wasm_filter_context {
  WASM_CTX_ANY = 0,              /* every listener */
  WASM_CTX_SIDECAR_INBOUND = 1,  /* inbound listeners of sidecars */
  WASM_CTX_SIDECAR_OUTBOUND = 2, /* outbound listeners of sidecars */
  WASM_CTX_GATEWAY = 3           /* every listener of gateways */
};

/* How the plugin receives its configuration (Envoy PluginConfig
 * .configuration): JSON text in a StringValue (WasmExtension config,
 * WasmPlugin pluginConfig, a WasmDeployment Struct), a StringValue's text
 * or a BytesValue's bytes as they are (WasmDeployment staticFilterConfig),
 * which Envoy passes to the plugin without the wrapper. */
enum wasm_config_type {
  WASM_CONFIG_JSON = 0,   /* config_json: JSON */
  WASM_CONFIG_STRING = 1, /* config_json: the string, as given */
  WASM_CONFIG_BYTES = 2   /* config_bytes/config_bytes_len */
};

/* One WasmDeployment workloadSelector[] item: every part given must match
 * (labels all present with equal values; namespaces and clusters: one of
 * them). */
struct wasm_workload_sel {
  struct label *labels; /* sorted by key */
  size_t n_labels;
  char **namespaces;
  size_t n_namespaces;
  char **clusters;
  size_t n_clusters;
};

/* WasmPlugin spec.type: where in Envoy the filter runs. */
enum wasm_plugin_type {
  WASM_TYPE_HTTP = 0,   /* an HTTP filter (also UNSPECIFIED_PLUGIN_TYPE) */
  WASM_TYPE_NETWORK = 1 /* a network (L4) filter */
};

/* One WasmPlugin match[] item: traffic it selects. ports empty: any. */
struct wasm_traffic_sel {
  enum wasm_match_mode mode;
  uint32_t *ports; /* ascending, unique */
  size_t n_ports;
};

/* One WasmPlugin targetRefs[] item (or the older targetRef). */
struct wasm_target_ref {
  char *group; /* "" for the core group */
  char *kind;  /* Gateway or Service */
  char *name;
};

enum wasm_url_scheme {
  WASM_URL_OCI = 0, /* oci:// or no scheme */
  WASM_URL_HTTP = 1,
  WASM_URL_HTTPS = 2,
  WASM_URL_FILE = 3
};

enum wasm_env_from {
  WASM_ENV_INLINE = 0, /* value given in the resource */
  WASM_ENV_HOST = 1    /* value read from the proxy's own environment */
};

struct wasm_env {
  char *name;
  enum wasm_env_from from;
  char *value; /* INLINE only; NULL for HOST */
};

struct label;

/* The fqn prefix of every WasmPlugin: Istio's ECDS name for a plugin is
 * this + "<namespace>.<name>". */
#define WASM_PLUGIN_FQN_PREFIX "extensions.istio.io/wasmplugin/"
/* The fqn prefix of every WasmDeployment filter: a filter's fqn (and ECDS
 * name) is this + "<namespace>.<name>/<index in filters[]>"; the
 * deployment's own id is the fqn without "/<index>". */
#define WASM_DEPLOY_FQN_PREFIX                                                 \
  "networking.enterprise.mesh.gloo.solo.io/wasmdeployment/"

/* One WasmExtension (extension.tsb.tetrate.io/v2), or one Istio WasmPlugin
 * (kind WASM_KIND_PLUGIN) mapped onto the same record: see the README,
 * "Coming from Istio". */
struct wasm_ext {
  enum wasm_ext_kind kind;
  char *fqn; /* organizations/<org>/extensions/<name>, or for a WasmPlugin
                extensions.istio.io/wasmplugin/<namespace>.<name> (the ECDS
                name Istio gives it) */
  char *organization; /* metadata.organization; NULL for a WasmPlugin */
  char *name;         /* metadata.name */
  char **allowed_in;  /* tenant fqns, document order; empty: whole org */
  size_t n_allowed_in;
  int allowed_none; /* allowedIn listed only fqns that are not tenants
                       (ignored with a warning): no tenant, not the whole
                       organization */
  char *url;        /* with its scheme: "oci://..." when none was given */
  enum wasm_url_scheme scheme;
  char *source;      /* nullable */
  char *description; /* nullable */
  enum wasm_phase phase;
  int32_t priority;
  char *config_json; /* spec.config as compact JSON, keys in document
                        order; NULL when spec.config is absent */
  enum wasm_pull_policy pull_policy;
  char *pull_secret; /* nullable */
  struct wasm_env *env;
  size_t n_env;
  enum wasm_match_mode match_mode;
  char *plugin_name; /* nullable; Envoy root_id */
  char *vm_id;       /* nullable */
  char *runtime;     /* nullable: envoy.wasm.runtime.v8 */
  enum wasm_fail_strategy fail_strategy;
  char *sha256; /* nullable; 64 lowercase hex digits */
  /* WasmPlugin only (zero for a WasmExtension): */
  char *namespace;            /* metadata.namespace */
  struct label *match_labels; /* selector.matchLabels, sorted by key */
  size_t n_match_labels;
  struct wasm_target_ref *target_refs; /* targetRefs (or targetRef) */
  size_t n_target_refs;
  struct wasm_traffic_sel *matches; /* match[]; empty: all traffic */
  size_t n_matches;
  enum wasm_plugin_type type;
  /* WasmDeployment only (zero for the other kinds; namespace and name are
   * the deployment's metadata above): */
  char *resource;      /* the deployment's id: WASM_DEPLOY_FQN_PREFIX
                          "<namespace>.<name>" */
  size_t filter_index; /* position in spec.filters[] */
  size_t n_filters;    /* how many filters the deployment has */
  uint32_t weight;     /* spec.weight: higher runs first */
  struct wasm_workload_sel *selectors; /* spec.workloadSelector; empty:
                                          every proxy */
  size_t n_selectors;
  enum wasm_filter_context filter_context;
  char *insert_before;      /* insertBeforeFilter; NULL: the router */
  int insecure_skip_verify; /* imagePullOptions.insecureSkipVerify */
  int plain_http;           /* imagePullOptions.plainHttp */
  /* WasmExtension's Envoy VM and plugin fields (zero: not set): */
  int allow_precompiled;       /* vmConfig.allowPrecompiled */
  int nack_on_code_cache_miss; /* vmConfig.nackOnCodeCacheMiss */
  char *vm_config_json;        /* vmConfig.configuration as JSON; nullable */
  int has_capabilities;        /* allowedCapabilities given (even empty: the
                                  module may call nothing restricted) */
  char **capabilities;         /* allowedCapabilities, sorted, unique */
  size_t n_capabilities;
  /* Any kind: */
  int64_t generation; /* metadata.generation as exported from Kubernetes
                         (WasmPlugin, WasmDeployment); 0 when absent */
  enum wasm_config_type config_type;
  unsigned char *config_bytes; /* WASM_CONFIG_BYTES: the bytes */
  size_t config_bytes_len;
  /* Attachments (README "Attachments"): set only on a record the catalog
   * derived from a WasmExtension for one listener template's attachment
   * with a config or match override; its fqn is "<fqn>@<template>" and it
   * runs only on that template's listeners. NULL on every stored record. */
  char *attached_to;
  struct src_loc loc; /* the document's first line */
  atomic_uint refs;   /* references beyond the first; see above */
};

/* The runtime whose plugins are compiled into Envoy (no Wasm code). */
#define WASM_RUNTIME_NULL "envoy.wasm.runtime.null"

/* For runtime envoy.wasm.runtime.null, Envoy's code is the plugin's
 * registered name (vm_config.code.local.inline_string). A WasmExtension
 * names it with the url file:///NAME, NAME being letters, digits, '.',
 * '_' and '-' (e.g. file:///envoy.wasm.stats). Returns NAME (pointing into
 * e->url) when e's runtime is null and its url has that form, else NULL.
 * Pure. */
const char *wasm_ext_null_vm_name(const struct wasm_ext *e);

enum tmpl_direction { TMPL_INBOUND = 0, TMPL_OUTBOUND = 1 };

enum proxy_mode { PROXY_MODE_SIDECAR = 0, PROXY_MODE_GATEWAY = 1 };

struct label {
  char *key;
  char *value;
};

/* A native (non-Wasm) HTTP filter of a listener template. */
struct native_filter {
  char *name;                 /* HttpFilter.name */
  enum wasm_phase anchor;     /* AUTHN/AUTHZ/STATS, or UNSPECIFIED: no anchor */
  char *type_url;             /* "type.googleapis.com/<message>" from @type */
  struct ynode *typed_config; /* the typedConfig mapping, owned; the server
                                 converts it to protobuf with the message's
                                 descriptor */
  int is_router;              /* type_url names the router filter */
  struct src_loc loc;
};

enum tmpl_route_kind {
  TMPL_ROUTE_CLUSTER = 0, /* inline route to a cluster in the bootstrap */
  TMPL_ROUTE_RDS = 1      /* RDS by route-config name from another xDS
                             server, reached over a bootstrap cluster */
};

/* How Envoy streams an RDS route from the server at rds_cluster. */
enum tmpl_rds_api {
  TMPL_RDS_GRPC = 0,      /* state of the world (ApiType GRPC) */
  TMPL_RDS_DELTA_GRPC = 1 /* incremental (ApiType DELTA_GRPC) */
};

/* What a listener template carries. */
enum tmpl_protocol {
  TMPL_HTTP = 0, /* an HttpConnectionManager: route, httpFilters */
  TMPL_TCP = 1   /* tcp_proxy filter chains (spec.tcp) */
};

/* One spec.tcp.filterChains[] item: connections it matches go to cluster. */
struct tmpl_tcp_chain {
  char **server_names; /* SNI names (needs the TLS inspector); may be empty */
  size_t n_server_names;
  uint32_t destination_port; /* 0: any */
  char *cluster;
};

/* One spec.extensions[] item of a template: a WasmExtension attached to
 * the template's listeners by fqn, with optional overrides. */
struct tmpl_attach {
  char *fqn;
  char *config_json; /* config override as compact JSON (replaces the
                        extension's config); NULL: no override */
  int has_match;     /* match.mode override given */
  enum wasm_match_mode match_mode;
  struct src_loc loc;
};

/* One ListenerTemplate (wasmxds.io/v1). */
struct listener_tmpl {
  char *name;    /* metadata.name; the Envoy listener name */
  char *address; /* IP address to bind */
  uint32_t port;
  enum tmpl_direction direction;
  int has_mode;         /* selector.mode given */
  enum proxy_mode mode; /* valid when has_mode */
  struct label *labels; /* selector.labels: all must match; sorted by key */
  size_t n_labels;
  char *stat_prefix; /* HCM stat_prefix; defaults to name */
  enum tmpl_route_kind route_kind;
  char *route_cluster; /* TMPL_ROUTE_CLUSTER */
  char *route_prefix;  /* TMPL_ROUTE_CLUSTER: path prefix, default "/" */
  char *rds_name;      /* TMPL_ROUTE_RDS: the RouteConfiguration name */
  char *rds_cluster;   /* TMPL_ROUTE_RDS: bootstrap cluster of its server */
  enum tmpl_rds_api rds_api;     /* TMPL_ROUTE_RDS */
  struct native_filter *filters; /* in order; the last one is the router */
  size_t n_filters;
  enum tmpl_protocol protocol;       /* TMPL_TCP: the route and filters above
                                        are unset */
  char *tcp_cluster;                 /* TMPL_TCP: the default chain's cluster */
  struct tmpl_tcp_chain *tcp_chains; /* TMPL_TCP: tried before the default */
  size_t n_tcp_chains;
  struct tmpl_attach *attach; /* spec.extensions, document order, fqns
                                 unique */
  size_t n_attach;
  struct src_loc loc;
  atomic_uint refs; /* references beyond the first; see above */
};

/* The API name of a fail strategy: "FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD". */
static inline const char *wasm_fail_strategy_name(enum wasm_fail_strategy f) {
  return f == WASM_FAIL_OPEN     ? "FAIL_OPEN"
         : f == WASM_FAIL_RELOAD ? "FAIL_RELOAD"
                                 : "FAIL_CLOSE";
}

/* "WasmPlugin", "WasmDeployment" or "WasmExtension": the kind the record
 * was read from. */
static inline const char *wasm_ext_kind_name(const struct wasm_ext *e) {
  return e->kind == WASM_KIND_PLUGIN       ? "WasmPlugin"
         : e->kind == WASM_KIND_DEPLOYMENT ? "WasmDeployment"
                                           : "WasmExtension";
}

/* The id of the resource the record was read from: the fqn, or for a
 * WasmDeployment filter its deployment's id. */
static inline const char *wasm_ext_resource_id(const struct wasm_ext *e) {
  return e->resource != NULL ? e->resource : e->fqn;
}

/* Drop one reference (NULL is a no-op); the last frees the record. */
void wasm_ext_free(struct wasm_ext *e);
void listener_tmpl_free(struct listener_tmpl *t);
/* Add one reference and return the record (NULL is passed through). Any
 * thread. */
struct wasm_ext *wasm_ext_ref(struct wasm_ext *e);
struct listener_tmpl *listener_tmpl_ref(struct listener_tmpl *t);
void src_loc_cleanup(struct src_loc *l);

#endif
