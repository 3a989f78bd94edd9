/*
 * decode_wasmext.c: extension.tsb.tetrate.io/v2 WasmExtension documents ->
 * struct wasm_ext (store/model.h), every field checked (README, "Resource
 * reference"). Walks the document with the field walker of decode.c.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/decode_priv.h"
#include "store/model.h"
#include "store/ydoc.h"

static const char *const EXT_META_KEYS[] = {"organization", "name", NULL};
static const char *const EXT_SPEC_KEYS[] = {"allowedIn",
                                            "url",
                                            "image",
                                            "source",
                                            "description",
                                            "phase",
                                            "priority",
                                            "config",
                                            "imagePullPolicy",
                                            "imagePullSecret",
                                            "vmConfig",
                                            "match",
                                            "pluginName",
                                            "failStrategy",
                                            "sha256",
                                            "allowedCapabilities",
                                            NULL};
static const char *const VM_KEYS[] = {"env",
                                      "vmId",
                                      "runtime",
                                      "allowPrecompiled",
                                      "nackOnCodeCacheMiss",
                                      "configuration",
                                      NULL};
static const char *const MATCH_KEYS[] = {"mode", NULL};

static const struct decode_env_rules ENV_RULES = {0, 0, 0, 1, 0};
/* Order of enum wasm_match_mode. */
static const char *const MATCH_MODES[] = {"CLIENT_AND_SERVER", "CLIENT",
                                          "SERVER", NULL};
static const char *const FAIL_STRATEGIES[] = {"FAIL_CLOSE", "FAIL_OPEN", NULL};
static const char *const RUNTIMES[] = {
    "envoy.wasm.runtime.v8",       "envoy.wasm.runtime.wamr",
    "envoy.wasm.runtime.wasmtime", WASM_RUNTIME_NULL,
    "envoy.wasm.runtime.wavm",     NULL};

/* 1 when s is the fqn of some TSB resource other than a tenant:
 * organizations/<org>/<kind>/<name>[/<kind>/<name>...], every part a
 * valid name (a workspace, a group, a tenant's child...). */
static int other_fqn(const char *s) {
  char part[DECODE_NAME_MAX + 1];
  size_t parts = 0;

  if (strncmp(s, "organizations/", 14) != 0)
    return 0;
  for (const char *p = s + 14;; parts++) {
    size_t n = strcspn(p, "/");

    if (n == 0 || n > DECODE_NAME_MAX)
      return 0;
    memcpy(part, p, n);
    part[n] = '\0';
    if (!decode_valid_name(part))
      return 0;
    if (p[n] == '\0')
      break;
    p += n + 1;
  }
  /* parts: the segments after the org; kind/name pairs, at least one. */
  return parts >= 2 && parts % 2 == 0;
}

static void decode_allowed_in(struct dctx *c, const struct ynode *spec,
                              struct wasm_ext *e) {
  const struct ynode *v = decode_field(spec, "allowedIn");
  size_t mark = dctx_path_key(c, "allowedIn"), n, ignored = 0;

  if (v == NULL || !dctx_want_seq(c, v))
    goto done;
  e->allowed_in = dctx_items(c, v, DECODE_MAX_ALLOWED_IN, "items",
                             sizeof(*e->allowed_in), &n);
  if (e->allowed_in == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i);
    size_t m = dctx_path_index(c, i);
    const char *s = dctx_want_str(c, item), *tenant;
    char org[DECODE_NAME_MAX + 2];
    int ok = 0;

    if (s == NULL)
      goto next;
    if (s[0] == '\0') {
      dctx_bad(c, item, "must not be empty");
      goto next;
    }
    /* organizations/<org>/tenants/<tenant> */
    if (strncmp(s, "organizations/", 14) == 0) {
      const char *o = s + 14, *slash = strchr(o, '/');

      if (slash != NULL && (size_t)(slash - o) <= DECODE_NAME_MAX) {
        memcpy(org, o, (size_t)(slash - o));
        org[slash - o] = '\0';
        tenant = slash + 1;
        if (strncmp(tenant, "tenants/", 8) == 0 && decode_valid_name(org) &&
            decode_valid_name(tenant + 8))
          ok = 1;
      }
    }
    if (!ok && other_fqn(s)) {
      /* TSB: "currently only Tenant resources are considered". */
      dctx_warn(c, item,
                "\"%s\" is not a tenant: only tenants are considered "
                "(organizations/<org>/tenants/<tenant>); this entry is "
                "ignored",
                s);
      ignored++;
      goto next;
    }
    if (!ok) {
      dctx_bad(c, item,
               "\"%s\" is not a tenant fqn of the form "
               "organizations/<org>/tenants/<tenant>",
               s);
      goto next;
    }
    if (e->organization != NULL && strcmp(org, e->organization) != 0) {
      dctx_bad(c, item, "tenant \"%s\" is not in organization \"%s\"", s,
               e->organization);
      goto next;
    }
    for (size_t k = 0; k < e->n_allowed_in; k++)
      if (strcmp(e->allowed_in[k], s) == 0)
        dctx_warn(c, item, "tenant \"%s\" is listed twice", s);
    e->allowed_in[e->n_allowed_in] = dctx_strdup(c, s);
    if (e->allowed_in[e->n_allowed_in] != NULL)
      e->n_allowed_in++;
  next:
    dctx_path_restore(c, m);
  }
  if (e->n_allowed_in == 0 && ignored > 0 && c->errors == 0) {
    /* An empty list would mean the whole organization: listing only
     * things that are not tenants must not widen the extension's reach. */
    e->allowed_none = 1;
    dctx_warn(c, v,
              "no tenant is listed (every entry was ignored): the extension "
              "reaches no proxy");
  }

done:
  dctx_path_restore(c, mark);
}

/* "organizations/<org>/extensions/<name>" (a new string, or NULL): put
 * together by hand, as every document needs one (xds_asprintf was 1 % of a
 * store load). */
static char *ext_fqn(const char *org, const char *name) {
  static const char a[] = "organizations/", b[] = "/extensions/";
  size_t lo = strlen(org), ln = strlen(name);
  char *s = xds_malloc(sizeof(a) - 1 + lo + sizeof(b) - 1 + ln + 1), *p = s;

  if (s == NULL)
    return NULL;
  memcpy(p, a, sizeof(a) - 1);
  p += sizeof(a) - 1;
  memcpy(p, org, lo);
  p += lo;
  memcpy(p, b, sizeof(b) - 1);
  p += sizeof(b) - 1;
  memcpy(p, name, ln + 1);
  return s;
}
/* decode_priv.h */
char *decode_normalise_url(struct dctx *c, const struct ynode *at,
                           const char *s, enum wasm_url_scheme *scheme) {
  static const struct {
    const char *name;
    enum wasm_url_scheme scheme;
  } schemes[] = {{"oci", WASM_URL_OCI},
                 {"http", WASM_URL_HTTP},
                 {"https", WASM_URL_HTTPS},
                 {"file", WASM_URL_FILE}};
  const char *sep = strstr(s, "://");
  char *out;

  for (const char *p = s; *p; p++)
    if (isspace((unsigned char)*p)) {
      dctx_bad(c, at, "\"%s\" must not contain whitespace", s);
      return NULL;
    }
  if (sep == NULL) {
    *scheme = WASM_URL_OCI;
    out = xds_asprintf("oci://%s", s);
    if (out == NULL)
      c->rc = XDS_ENOMEM;
    return out;
  }
  for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
    size_t n = strlen(schemes[i].name);

    if ((size_t)(sep - s) != n || strncmp(s, schemes[i].name, n) != 0)
      continue;
    if (sep[3] == '\0') {
      dctx_bad(c, at, "\"%s\" has nothing after the scheme", s);
      return NULL;
    }
    if (schemes[i].scheme == WASM_URL_FILE && sep[3] != '/') {
      dctx_bad(c, at,
               "\"%s\": a file:// url needs an absolute path "
               "(file:///path/to/module.wasm)",
               s);
      return NULL;
    }
    *scheme = schemes[i].scheme;
    return dctx_strdup(c, s);
  }
  dctx_bad(c, at, "\"%s\" does not match ^(oci|https?|file)://", s);
  return NULL;
}

static void decode_url(struct dctx *c, const struct ynode *spec,
                       struct wasm_ext *e) {
  char *url = NULL, *image = NULL;
  const struct ynode *vu = dctx_get_str(c, spec, "url", 0, &url);
  const struct ynode *vi = dctx_get_str(c, spec, "image", 0, &image);
  size_t mark;

  if (url != NULL) {
    mark = dctx_path_key(c, "url");
    e->url = decode_normalise_url(c, vu, url, &e->scheme);
    dctx_path_restore(c, mark);
    if (image != NULL) {
      mark = dctx_path_key(c, "image");
      dctx_warn(c, vi,
                "spec.image is deprecated and ignored because spec.url "
                "is set; remove it");
      dctx_path_restore(c, mark);
    }
  } else if (image != NULL) {
    mark = dctx_path_key(c, "image");
    dctx_warn(c, vi, "spec.image is deprecated; use spec.url");
    e->url = decode_normalise_url(c, vi, image, &e->scheme);
    dctx_path_restore(c, mark);
  } else if (c->rc == 0 && (vu == NULL || ynode_kind(vu) == YNODE_SCALAR) &&
             (vi == NULL || ynode_kind(vi) == YNODE_SCALAR)) {
    mark = dctx_path_key(c, "url");
    dctx_bad(c, vu != NULL ? vu : spec,
             "missing required field \"url\" (or the deprecated \"image\")");
    dctx_path_restore(c, mark);
  }
  xds_free(url);
  xds_free(image);
}

/* vmConfig.configuration (a Struct): the VM's configuration, as JSON. */
static void decode_vm_configuration(struct dctx *c, const struct ynode *vm,
                                    struct wasm_ext *e) {
  const struct ynode *v = decode_field(vm, "configuration");
  size_t mark = dctx_path_key(c, "configuration");

  if (v == NULL || !dctx_want_map(c, v))
    goto done;
  dctx_struct_json(c, v, "configuration", &e->vm_config_json);

done:
  dctx_path_restore(c, mark);
}

static int cap_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* allowedCapabilities: the ABI functions the module may call (Envoy's
 * capability_restriction_config); identifiers of at most 256. */
static void decode_capabilities(struct dctx *c, const struct ynode *spec,
                                struct wasm_ext *e) {
  const struct ynode *v = decode_field(spec, "allowedCapabilities");
  size_t mark = dctx_path_key(c, "allowedCapabilities"), n;

  if (v == NULL || !dctx_want_seq(c, v))
    goto done;
  e->has_capabilities = 1;
  e->capabilities =
      dctx_items(c, v, DECODE_MAX_ENV, "items", sizeof(*e->capabilities), &n);
  if (e->capabilities == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i);
    size_t m = dctx_path_index(c, i);
    const char *s = dctx_want_str(c, item);
    int dup = 0;

    if (s != NULL && (!decode_is_ident(s, strlen(s)) || strlen(s) > 256)) {
      dctx_bad(c, item,
               "\"%s\" is not a function name ([A-Za-z_][A-Za-z0-9_]*, at "
               "most 256)",
               s);
      s = NULL;
    }
    for (size_t k = 0; s != NULL && k < e->n_capabilities; k++)
      dup |= strcmp(e->capabilities[k], s) == 0;
    if (s != NULL && dup)
      dctx_warn(c, item, "\"%s\" is listed twice", s);
    else if (s != NULL &&
             (e->capabilities[e->n_capabilities] = dctx_strdup(c, s)) != NULL)
      e->n_capabilities++;
    dctx_path_restore(c, m);
  }
  if (c->rc == 0)
    qsort(e->capabilities, e->n_capabilities, sizeof(*e->capabilities),
          cap_cmp);

done:
  dctx_path_restore(c, mark);
}

static void decode_config(struct dctx *c, const struct ynode *spec,
                          struct wasm_ext *e) {
  const struct ynode *v = decode_field(spec, "config");
  size_t mark = dctx_path_key(c, "config");

  if (v == NULL || !dctx_want_map(c, v))
    goto done;
  dctx_struct_json(c, v, "config", &e->config_json);

done:
  dctx_path_restore(c, mark);
}

static void decode_sha256(struct dctx *c, const struct ynode *spec,
                          struct wasm_ext *e) {
  const struct ynode *v = dctx_get_str(c, spec, "sha256", 0, &e->sha256);
  size_t mark = dctx_path_key(c, "sha256");

  if (e->sha256 == NULL)
    goto done;
  /* Upper-case digits are accepted (and kept in lower case). */
  for (char *p = e->sha256; *p != '\0'; p++)
    *p = (char)tolower((unsigned char)*p);
  if (!decode_is_sha256(e->sha256))
    dctx_bad(c, v, "\"%s\" is not a sha256: expected 64 hexadecimal digits",
             ynode_text(v, NULL));

done:
  dctx_path_restore(c, mark);
}

static void wasmext_decode(struct dctx *c, const struct ynode *doc,
                           struct decode_result *out) {
  const struct ynode *meta = decode_field(doc, "metadata"), *spec, *v;
  struct wasm_ext *e;
  size_t mark;
  int x;

  e = dctx_ext_new(c, doc);
  if (e == NULL)
    return;
  out->ext = e;

  /* metadata */
  if (meta == NULL) {
    mark = dctx_path_key(c, "metadata");
    dctx_bad(c, doc, "missing required field \"metadata\"");
    dctx_path_restore(c, mark);
  } else {
    size_t in;

    dctx_path_key(c, "metadata");
    in = c->plen;
    if (dctx_want_map(c, meta)) {
      dctx_check_keys(c, meta, EXT_META_KEYS);
      v = dctx_get_str(c, meta, "organization", 1, &e->organization);
      dctx_path_key(c, "organization");
      dctx_check_name(c, v, e->organization);
      dctx_path_restore(c, in);
      v = dctx_get_str(c, meta, "name", 1, &e->name);
      dctx_path_key(c, "name");
      dctx_check_name(c, v, e->name);
      dctx_path_restore(c, in);
    }
    dctx_path_restore(c, 0);
  }
  if (e->organization != NULL && e->name != NULL) {
    e->fqn = ext_fqn(e->organization, e->name);
    out->id = e->fqn != NULL ? xds_strdup(e->fqn) : NULL;
    if (out->id == NULL)
      c->rc = XDS_ENOMEM;
  }

  /* spec */
  spec = decode_field(doc, "spec");
  mark = dctx_path_key(c, "spec");
  if (spec == NULL) {
    dctx_bad(c, doc, "missing required field \"spec\"");
    goto done;
  }
  if (!dctx_want_map(c, spec))
    goto done;
  dctx_check_keys(c, spec, EXT_SPEC_KEYS);
  decode_allowed_in(c, spec, e);
  decode_url(c, spec, e);
  dctx_get_str(c, spec, "source", 0, &e->source);
  dctx_get_str(c, spec, "description", 0, &e->description);
  dctx_get_phase(c, spec, e);
  decode_config(c, spec, e);
  decode_capabilities(c, spec, e);
  dctx_get_pull(c, spec, 0, e);
  v = decode_field(spec, "vmConfig");
  if (v != NULL) {
    size_t m = dctx_path_key(c, "vmConfig");
    const struct ynode *rt;

    if (dctx_want_map(c, v)) {
      dctx_check_keys(c, v, VM_KEYS);
      dctx_get_env(c, v, &ENV_RULES, e);
      dctx_get_str(c, v, "vmId", 0, &e->vm_id);
      dctx_get_bool(c, v, "allowPrecompiled", &e->allow_precompiled);
      dctx_get_bool(c, v, "nackOnCodeCacheMiss", &e->nack_on_code_cache_miss);
      decode_vm_configuration(c, v, e);
      x = -1;
      rt = dctx_get_enum(c, v, "runtime", RUNTIMES, &x);
      if (x >= 0)
        e->runtime = dctx_strdup(c, RUNTIMES[x]);
      if (e->runtime != NULL && e->url != NULL &&
          strcmp(e->runtime, WASM_RUNTIME_NULL) == 0 &&
          wasm_ext_null_vm_name(e) == NULL)
        dctx_bad(c, rt,
                 "the null runtime runs a plugin compiled into Envoy: the url "
                 "must give its registered name as file:///NAME (e.g. "
                 "file:///envoy.wasm.stats), not \"%s\"",
                 e->url);
    }
    dctx_path_restore(c, m);
  }
  v = decode_field(spec, "match");
  if (v != NULL) {
    size_t m = dctx_path_key(c, "match");

    if (dctx_want_map(c, v)) {
      dctx_check_keys(c, v, MATCH_KEYS);
      x = WASM_MATCH_CLIENT_AND_SERVER;
      dctx_get_enum(c, v, "mode", MATCH_MODES, &x);
      e->match_mode = (enum wasm_match_mode)x;
    }
    dctx_path_restore(c, m);
  }
  dctx_get_str(c, spec, "pluginName", 0, &e->plugin_name);
  x = WASM_FAIL_CLOSE;
  dctx_get_enum(c, spec, "failStrategy", FAIL_STRATEGIES, &x);
  e->fail_strategy = (enum wasm_fail_strategy)x;
  decode_sha256(c, spec, e);

done:
  dctx_path_restore(c, 0);
}

const struct decode_kind_ops decode_wasmext_ops = {
    DECODE_WASMEXT_API, DECODE_WASMEXT_KIND, DECODE_WASM_EXT, wasmext_decode,
    NULL};
