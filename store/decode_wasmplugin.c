/*
 * decode_wasmplugin.c: Istio's extensions.istio.io/v1alpha1 WasmPlugin ->
 * struct wasm_ext (kind WASM_KIND_PLUGIN).
 *
 * Follows the published API (istio/api extensions/v1alpha1/wasm.proto) and
 * the checks Istio's validation and CRD schema make, field for field, with
 * the same JSON names. What Kubernetes adds to an object it stores
 * (metadata.uid, resourceVersion, managedFields, ..., and status) is read
 * and ignored, so `kubectl get wasmplugins -A -o yaml` output decodes as
 * it is. A field Istio accepts that wasmxds cannot honour is an error that
 * says so; nothing is dropped silently. The README's "Coming from Istio"
 * table is the user-facing version of this file.
 *
 * The record's fqn is the ECDS name Istio gives the plugin,
 * extensions.istio.io/wasmplugin/<namespace>.<name>; namespaces are
 * DNS labels (no '.'), so "<namespace>." prefixes exactly one namespace's
 * plugins in the catalog's fqn order.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/decode_priv.h"

static const char *const SPEC_KEYS[] = {"selector",
                                        "targetRef",
                                        "targetRefs",
                                        "url",
                                        "sha256",
                                        "imagePullPolicy",
                                        "imagePullSecret",
                                        "verificationKey",
                                        "pluginConfig",
                                        "pluginName",
                                        "phase",
                                        "priority",
                                        "failStrategy",
                                        "vmConfig",
                                        "match",
                                        "type",
                                        NULL};
static const char *const SELECTOR_KEYS[] = {"matchLabels", NULL};
static const char *const REF_KEYS[] = {"group", "kind", "name", "namespace",
                                       NULL};
static const char *const VM_KEYS[] = {"env", NULL};
static const char *const MATCH_KEYS[] = {"mode", "ports", NULL};
static const char *const PORT_KEYS[] = {"number", NULL};

/* Index is enum wasm_fail_strategy. */
static const char *const FAIL_STRATEGIES[] = {"FAIL_CLOSE", "FAIL_OPEN",
                                              "FAIL_RELOAD", NULL};
/* Istio's limits: names of at most 256, values of at most 2048. */
static const struct decode_env_rules ENV_RULES = {256, 2048, 1, 0, 1};
/* istio.type.v1beta1.WorkloadMode, in its order. */
static const char *const WORKLOAD_MODES[] = {"UNDEFINED", "CLIENT", "SERVER",
                                             "CLIENT_AND_SERVER", NULL};
static const char *const PLUGIN_TYPES[] = {"UNSPECIFIED_PLUGIN_TYPE", "HTTP",
                                           "NETWORK", NULL};
/* A DNS-1123 subdomain: 1..253, dot-separated labels. */
/* A Kubernetes label name or value part: up to 63 of [A-Za-z0-9-_.],
 * alphanumeric at both ends (empty allowed when empty_ok). */
static int label_part(const char *s, size_t n, int empty_ok) {
  if (n == 0)
    return empty_ok;
  if (n > 63 || !isalnum((unsigned char)s[0]) ||
      !isalnum((unsigned char)s[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
      return 0;
  return 1;
}

/* A label key: [prefix/]name, the prefix a DNS subdomain. */
static int label_key(const char *s) {
  const char *slash = strchr(s, '/');

  if (slash == NULL)
    return label_part(s, strlen(s), 0);
  if (strchr(slash + 1, '/') != NULL)
    return 0;
  {
    char prefix[DECODE_NAME_MAX + 1];
    size_t n = (size_t)(slash - s);

    if (n == 0 || n > DECODE_NAME_MAX)
      return 0;
    memcpy(prefix, s, n);
    prefix[n] = '\0';
    if (!decode_dns_subdomain(prefix))
      return 0;
  }
  return label_part(slash + 1, strlen(slash + 1), 0);
}

/* ---- metadata ---- */

static void decode_meta(struct dctx *c, const struct ynode *doc,
                        struct decode_result *out, struct wasm_ext *e) {
  const struct ynode *meta = decode_field(doc, "metadata"), *v;
  size_t in;

  in = dctx_path_key(c, "metadata");
  if (meta == NULL) {
    dctx_bad(c, doc, "missing required field \"metadata\"");
    goto done;
  }
  if (!dctx_want_map(c, meta))
    goto done;
  in = c->plen;
  dctx_check_keys(c, meta, decode_k8s_meta_keys);
  /* Kubernetes' generation is kept for status (/debug/resources). */
  dctx_get_k8s_name(c, meta, "WasmPlugin", &e->name, &e->generation);
  v = dctx_get_str(c, meta, "namespace", 0, &e->namespace);
  if (v == NULL) {
    dctx_path_key(c, "namespace");
    dctx_bad(c, meta,
             "missing required field \"namespace\": a WasmPlugin applies "
             "to the proxies of its namespace (wasmxds has no current "
             "namespace to default to)");
    dctx_path_restore(c, in);
  } else if (e->namespace != NULL) {
    dctx_check_namespace(c, v, e->namespace);
  } else if (e->namespace == NULL) {
    dctx_path_key(c, "namespace");
    dctx_bad(c, v, "must not be empty");
    dctx_path_restore(c, in);
  }
  if (e->name != NULL && e->namespace != NULL) {
    e->fqn =
        xds_asprintf(WASM_PLUGIN_FQN_PREFIX "%s.%s", e->namespace, e->name);
    out->id = e->fqn != NULL ? xds_strdup(e->fqn) : NULL;
    if (out->id == NULL)
      c->rc = XDS_ENOMEM;
  }

done:
  dctx_path_restore(c, 0);
}

/* ---- selector and targets ---- */

static void decode_selector(struct dctx *c, const struct ynode *sel,
                            struct wasm_ext *e) {
  const struct ynode *ml;
  size_t mark = dctx_path_key(c, "selector"), n;

  if (!dctx_want_map(c, sel))
    goto done;
  dctx_check_keys(c, sel, SELECTOR_KEYS);
  ml = decode_field(sel, "matchLabels");
  dctx_path_key(c, "matchLabels");
  if (ml == NULL) {
    dctx_bad(c, sel,
             "missing required field \"matchLabels\" (omit the selector "
             "to select every proxy of the namespace)");
    goto done;
  }
  if (!dctx_want_map(c, ml))
    goto done;
  e->match_labels = dctx_items(c, ml, DECODE_MAX_LABELS, "labels",
                               sizeof(*e->match_labels), &n);
  if (e->match_labels == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const struct ynode *k = ynode_map_key(ml, i), *v = ynode_map_value(ml, i);
    const char *key = ynode_text(k, NULL), *val;
    size_t m = dctx_path_key(c, key);

    if (key[0] == '\0') {
      dctx_bad(c, k, "empty key is not supported in selector");
      goto next;
    }
    if (strchr(key, '*') != NULL) {
      dctx_bad(c, k, "wildcard is not supported in selector");
      goto next;
    }
    if (!label_key(key)) {
      dctx_bad(c, k,
               "\"%s\" is not a valid label key ([prefix/]name: name up to "
               "63 of letters, digits, '-', '_', '.', alphanumeric at both "
               "ends)",
               key);
      goto next;
    }
    val = dctx_want_str(c, v);
    if (val == NULL)
      goto next;
    if (strchr(val, '*') != NULL) {
      dctx_bad(c, v, "wildcard is not supported in selector");
      goto next;
    }
    if (!label_part(val, strlen(val), 1)) {
      dctx_bad(c, v,
               "\"%s\" is not a valid label value (up to 63 of letters, "
               "digits, '-', '_', '.', alphanumeric at both ends)",
               val);
      goto next;
    }
    e->match_labels[e->n_match_labels].key = dctx_strdup(c, key);
    e->match_labels[e->n_match_labels].value = dctx_strdup(c, val);
    e->n_match_labels++;
  next:
    dctx_path_restore(c, m);
  }
  if (c->rc == 0)
    qsort(e->match_labels, e->n_match_labels, sizeof(*e->match_labels),
          decode_label_cmp);

done:
  dctx_path_restore(c, mark);
}

/* One PolicyTargetReference into e->target_refs (room reserved). */
static void decode_ref(struct dctx *c, const struct ynode *ref,
                       struct wasm_ext *e) {
  struct wasm_target_ref r = {NULL, NULL, NULL};
  const struct ynode *vk, *vn, *vns;
  char *ns = NULL;
  size_t in = c->plen;
  int errors = c->errors;

  if (!dctx_want_map(c, ref))
    return;
  dctx_check_keys(c, ref, REF_KEYS);
  dctx_get_str(c, ref, "group", 0, &r.group);
  vk = dctx_get_str(c, ref, "kind", 1, &r.kind);
  vn = dctx_get_str(c, ref, "name", 1, &r.name);
  vns = dctx_get_str(c, ref, "namespace", 0, &ns);
  if (r.group == NULL && c->rc == 0)
    r.group = dctx_strdup(c, "");
  if (r.kind != NULL && r.group != NULL) {
    const char *g = r.group, *k = r.kind;
    int gw_api = strcmp(g, "gateway.networking.k8s.io") == 0;
    int core = g[0] == '\0' || strcmp(g, "core") == 0;

    dctx_path_key(c, "kind");
    if (strcmp(k, "Gateway") == 0 && gw_api) {
      /* served: matched against the gateway proxy's name */
    } else if (strcmp(k, "Service") == 0 && core) {
      /* served: matched against the proxy's service */
      if (strcmp(g, "core") == 0) {
        xds_free(r.group);
        r.group = dctx_strdup(c, "");
      }
    } else if ((strcmp(k, "GatewayClass") == 0 && gw_api) ||
               (strcmp(k, "ServiceEntry") == 0 &&
                strcmp(g, "networking.istio.io") == 0)) {
      dctx_bad(c, vk,
               "targetRef kind %s (group %s) has no meaning outside "
               "Kubernetes and wasmxds cannot honour it: target a Gateway "
               "or a Service by name, or use selector.matchLabels",
               k, g);
    } else {
      dctx_bad(c, vk,
               "unsupported targetRef group \"%s\" kind \"%s\": Istio "
               "accepts Gateway (gateway.networking.k8s.io), GatewayClass "
               "(gateway.networking.k8s.io), Service (\"\" or core) and "
               "ServiceEntry (networking.istio.io)",
               g, k);
    }
    dctx_path_restore(c, in);
  }
  if (r.name != NULL && !decode_dns_subdomain(r.name)) {
    dctx_path_key(c, "name");
    dctx_bad(c, vn, "\"%s\" is not a valid resource name (DNS-1123 subdomain)",
             r.name);
    dctx_path_restore(c, in);
  }
  if (ns != NULL && e->namespace != NULL && strcmp(ns, e->namespace) != 0) {
    dctx_path_key(c, "namespace");
    dctx_bad(c, vns,
             "cross namespace referencing is not supported: \"%s\" is not "
             "the WasmPlugin's namespace \"%s\"",
             ns, e->namespace);
    dctx_path_restore(c, in);
  }
  xds_free(ns);
  if (c->errors != errors || c->rc < 0) {
    xds_free(r.group);
    xds_free(r.kind);
    xds_free(r.name);
    return;
  }
  e->target_refs[e->n_target_refs++] = r;
}

static void decode_targets(struct dctx *c, const struct ynode *spec,
                           struct wasm_ext *e) {
  const struct ynode *one = decode_field(spec, "targetRef");
  const struct ynode *many = decode_field(spec, "targetRefs");
  const struct ynode *sel = decode_field(spec, "selector");
  size_t mark, n;

  if ((sel != NULL) + (one != NULL) + (many != NULL) > 1) {
    const struct ynode *at = many != NULL ? many : one;

    mark = dctx_path_key(c, many != NULL ? "targetRefs" : "targetRef");
    dctx_bad(c, at, "only one of targetRefs or selector can be set");
    dctx_path_restore(c, mark);
  }
  if (sel != NULL)
    decode_selector(c, sel, e);
  if (one != NULL) {
    mark = dctx_path_key(c, "targetRef");
    e->target_refs = xds_calloc(1, sizeof(*e->target_refs));
    if (e->target_refs == NULL)
      c->rc = XDS_ENOMEM;
    else
      decode_ref(c, one, e);
    dctx_path_restore(c, mark);
    return;
  }
  if (many == NULL)
    return;
  mark = dctx_path_key(c, "targetRefs");
  if (!dctx_want_seq(c, many))
    goto done;
  e->target_refs = dctx_items(c, many, DECODE_MAX_TARGET_REFS, "items",
                              sizeof(*e->target_refs), &n);
  if (e->target_refs == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    size_t m = dctx_path_index(c, i);

    decode_ref(c, ynode_seq_item(many, i), e);
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}

/* ---- url and sha256 ---- */

static void decode_url_sha(struct dctx *c, const struct ynode *spec,
                           struct wasm_ext *e) {
  char *url = NULL;
  const struct ynode *vu = dctx_get_str(c, spec, "url", 0, &url);
  const struct ynode *vs = dctx_get_str(c, spec, "sha256", 0, &e->sha256);
  const char *at;
  size_t mark;

  if (vs != NULL && e->sha256 != NULL && !decode_is_sha256(e->sha256)) {
    mark = dctx_path_key(c, "sha256");
    dctx_bad(c, vs,
             "\"%s\" does not match (^$|^[a-f0-9]{64}$): a sha256 is 64 "
             "lowercase hexadecimal digits",
             e->sha256);
    dctx_path_restore(c, mark);
  }
  mark = dctx_path_key(c, "url");
  if (url == NULL) {
    if (vu == NULL || ynode_kind(vu) == YNODE_SCALAR)
      dctx_bad(c, vu != NULL ? vu : spec,
               vu != NULL ? "must not be empty"
                          : "missing required field \"url\"");
    goto done;
  }
  e->url = decode_normalise_url(c, vu, url, &e->scheme);
  /* "oci://repo@sha256:<digest>" pins the manifest: sha256 must agree. */
  at = e->url != NULL ? strstr(e->url, "@sha256:") : NULL;
  if (at != NULL && e->sha256 != NULL && strcmp(at + 8, e->sha256) != 0)
    dctx_bad(c, vu,
             "the url references sha256 %s but the sha256 field is %s: "
             "they must match",
             at + 8, e->sha256);

done:
  dctx_path_restore(c, mark);
  xds_free(url);
}

/* ---- vmConfig, match ---- */

static int port_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return x < y ? -1 : x > y;
}

static void decode_ports(struct dctx *c, const struct ynode *item,
                         struct wasm_traffic_sel *sel) {
  const struct ynode *v = decode_field(item, "ports");
  size_t mark = dctx_path_key(c, "ports"), n;

  if (v == NULL || !dctx_want_seq(c, v))
    goto done;
  sel->ports =
      dctx_items(c, v, DECODE_MAX_PORTS, "ports", sizeof(*sel->ports), &n);
  if (sel->ports == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const struct ynode *p = ynode_seq_item(v, i);
    size_t m = dctx_path_index(c, i);
    int64_t num;

    if (!dctx_want_map(c, p))
      goto next;
    dctx_check_keys(c, p, PORT_KEYS);
    if (decode_field(p, "number") == NULL) {
      dctx_path_key(c, "number");
      dctx_bad(c, p, "missing required field \"number\"");
      goto next;
    }
    if (!dctx_get_int(c, p, "number", 1, 65535, "1..65535", &num))
      goto next;
    for (size_t k = 0; k < sel->n_ports; k++)
      if (sel->ports[k] == (uint32_t)num) {
        dctx_path_key(c, "number");
        dctx_bad(c, decode_field(p, "number"), "duplicate port %u",
                 (unsigned)num);
        goto next;
      }
    sel->ports[sel->n_ports++] = (uint32_t)num;
  next:
    dctx_path_restore(c, m);
  }
  qsort(sel->ports, sel->n_ports, sizeof(*sel->ports), port_cmp);

done:
  dctx_path_restore(c, mark);
}

static void decode_match(struct dctx *c, const struct ynode *spec,
                         struct wasm_ext *e) {
  const struct ynode *v = decode_field(spec, "match");
  size_t mark = dctx_path_key(c, "match"), n;

  if (v == NULL || !dctx_want_seq(c, v))
    goto done;
  e->matches =
      dctx_items(c, v, DECODE_MAX_MATCHES, "items", sizeof(*e->matches), &n);
  if (e->matches == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i);
    size_t m = dctx_path_index(c, i);
    struct wasm_traffic_sel *sel = &e->matches[e->n_matches];
    int mode = 0;

    if (!dctx_want_map(c, item))
      goto next;
    e->n_matches++; /* from here sel is owned by e */
    dctx_check_keys(c, item, MATCH_KEYS);
    dctx_get_enum(c, item, "mode", WORKLOAD_MODES, &mode);
    sel->mode = mode == 1   ? WASM_MATCH_CLIENT
                : mode == 2 ? WASM_MATCH_SERVER
                            : WASM_MATCH_CLIENT_AND_SERVER;
    decode_ports(c, item, sel);
  next:
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}

/* pluginConfig (a google.protobuf.Struct): passed to the plugin as JSON,
 * as a WasmExtension's config is. */
static void decode_plugin_config(struct dctx *c, const struct ynode *v,
                                 struct wasm_ext *e) {
  dctx_struct_json(c, v, "pluginConfig", &e->config_json);
}

/* ---- the document ---- */

static void wasmplugin_decode(struct dctx *c, const struct ynode *doc,
                              struct decode_result *out) {
  const struct ynode *spec, *v;
  struct wasm_ext *e;
  char *ignored = NULL;
  size_t in;
  int x;

  e = dctx_ext_new(c, doc);
  if (e == NULL)
    return;
  out->ext = e;
  e->kind = WASM_KIND_PLUGIN;
  decode_meta(c, doc, out, e);

  spec = decode_field(doc, "spec");
  dctx_path_key(c, "spec");
  if (spec == NULL) {
    dctx_bad(c, doc, "missing required field \"spec\"");
    goto done;
  }
  if (!dctx_want_map(c, spec))
    goto done;
  in = c->plen; /* "spec" */
  dctx_check_keys(c, spec, SPEC_KEYS);
  decode_targets(c, spec, e);
  decode_url_sha(c, spec, e);
  dctx_get_pull(c, spec, 253, e);
  v = dctx_get_str(c, spec, "verificationKey", 0, &ignored);
  if (ignored != NULL) {
    dctx_path_key(c, "verificationKey");
    dctx_bad(c, v,
             "wasmxds cannot verify module signatures (Istio does not "
             "implement verificationKey either); remove it and pin the "
             "module with sha256 instead");
    dctx_path_restore(c, in);
  }
  xds_free(ignored);
  v = decode_field(spec, "pluginConfig");
  if (v != NULL) {
    dctx_path_key(c, "pluginConfig");
    if (dctx_want_map(c, v))
      decode_plugin_config(c, v, e);
    dctx_path_restore(c, in);
  }
  v = dctx_get_str(c, spec, "pluginName", 0, &e->plugin_name);
  if (e->plugin_name != NULL && strlen(e->plugin_name) > 256) {
    dctx_path_key(c, "pluginName");
    dctx_bad(c, v, "longer than 256 characters");
    dctx_path_restore(c, in);
  }
  dctx_get_phase(c, spec, e);
  x = WASM_FAIL_CLOSE;
  dctx_get_enum(c, spec, "failStrategy", FAIL_STRATEGIES, &x);
  e->fail_strategy = (enum wasm_fail_strategy)x;
  v = decode_field(spec, "vmConfig");
  if (v != NULL) {
    dctx_path_key(c, "vmConfig");
    if (dctx_want_map(c, v)) {
      dctx_check_keys(c, v, VM_KEYS);
      dctx_get_env(c, v, &ENV_RULES, e);
    }
    dctx_path_restore(c, in);
  }
  decode_match(c, spec, e);
  x = 0;
  v = dctx_get_enum(c, spec, "type", PLUGIN_TYPES, &x);
  e->type = x == 2 ? WASM_TYPE_NETWORK : WASM_TYPE_HTTP;

done:
  dctx_path_restore(c, 0);
}

/* status is what the cluster wrote about the object; read and ignored. */
static const char *const TOP_KEYS[] = {"apiVersion", "kind",   "metadata",
                                       "spec",       "status", NULL};

const struct decode_kind_ops decode_wasmplugin_ops = {
    DECODE_WASMPLUGIN_API, DECODE_WASMPLUGIN_KIND, DECODE_WASM_PLUGIN,
    wasmplugin_decode, TOP_KEYS};
