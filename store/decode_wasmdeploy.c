/*
 * decode_wasmdeploy.c: the Gloo Mesh WasmDeployment kind
 * (networking.enterprise.mesh.gloo.solo.io/v1beta1), one document -> one
 * struct wasm_ext per spec.filters[] item (kind WASM_KIND_DEPLOYMENT).
 *
 * Every filter of a deployment is its own record, served as its own ECDS
 * resource named WASM_DEPLOY_FQN_PREFIX "<namespace>.<name>/<index>"; the
 * deployment's fields (selectors, weight, imagePullOptions) are copied
 * into each. A document with any error yields no record at all, so a
 * deployment is served whole or not at all. Kubernetes-owned metadata and
 * status are read and ignored, as for a WasmPlugin. README "Coming from
 * Gloo Mesh" has the field-by-field mapping.
 *
 * Pure: no I/O, no globals; safe on any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "store/decode_priv.h"

static const char *const SPEC_KEYS[] = {"workloadSelector", "filters", "weight",
                                        "imagePullOptions", NULL};
static const char *const SEL_KEYS[] = {"kubeWorkloadMatcher", "labels",
                                       "namespaces", "clusters", NULL};
static const char *const MATCHER_KEYS[] = {"labels", "namespaces", "clusters",
                                           NULL};
static const char *const FILTER_KEYS[] = {"localPathSource",
                                          "httpUriSource",
                                          "wasmImageSource",
                                          "staticFilterConfig",
                                          "dynamicFilterConfig",
                                          "rootId",
                                          "vmId",
                                          "filterContext",
                                          "insertBeforeFilter",
                                          NULL};
static const char *const URI_KEYS[] = {"uri", "sha", NULL};
static const char *const IMAGE_KEYS[] = {"wasmImageTag", NULL};
static const char *const PULL_KEYS[] = {"pullSecret", "insecureSkipVerify",
                                        "plainHttp", NULL};
static const char *const ANY_KEYS[] = {"@type", "value", NULL};
/* Istio's EnvoyFilter.PatchContext, in its declaration order. */
static const char *const CONTEXTS[] = {"ANY", "SIDECAR_INBOUND",
                                       "SIDECAR_OUTBOUND", "GATEWAY", NULL};

#define TYPE_STRUCT "type.googleapis.com/google.protobuf.Struct"
#define TYPE_STRING "type.googleapis.com/google.protobuf.StringValue"
#define TYPE_BYTES "type.googleapis.com/google.protobuf.BytesValue"

/* The deployment-wide fields, decoded once and copied into each filter. */
struct deploy {
  char *name;
  char *namespace;
  char *id; /* WASM_DEPLOY_FQN_PREFIX "<namespace>.<name>" */
  int64_t generation;
  uint32_t weight;
  struct wasm_workload_sel *sels;
  size_t n_sels;
  char *pull_secret;
  int insecure_skip_verify;
  int plain_http;
};

/* ---- metadata ---- */

static void decode_meta(struct dctx *c, const struct ynode *doc,
                        struct decode_result *out, struct deploy *d) {
  const struct ynode *meta = decode_field(doc, "metadata"), *v;

  dctx_path_key(c, "metadata");
  if (meta == NULL) {
    dctx_bad(c, doc, "missing required field \"metadata\"");
    goto done;
  }
  if (!dctx_want_map(c, meta))
    goto done;
  dctx_check_keys(c, meta, decode_k8s_meta_keys);
  /* Kubernetes' generation, for status. */
  dctx_get_k8s_name(c, meta, "WasmDeployment", &d->name, &d->generation);
  v = dctx_get_str(c, meta, "namespace", 1, &d->namespace);
  if (d->namespace != NULL)
    dctx_check_namespace(c, v, d->namespace);
  if (d->name != NULL && d->namespace != NULL) {
    d->id = xds_asprintf(WASM_DEPLOY_FQN_PREFIX "%s.%s", d->namespace, d->name);
    out->id = d->id != NULL ? xds_strdup(d->id) : NULL;
    if (out->id == NULL)
      c->rc = XDS_ENOMEM;
  }

done:
  dctx_path_restore(c, 0);
}

/* ---- workloadSelector ---- */

/* A list of non-empty strings (namespaces or clusters) into *v. */
static void decode_strs(struct dctx *c, const struct ynode *map,
                        const char *key, int dns, char ***v, size_t *n) {
  const struct ynode *s = decode_field(map, key);
  size_t mark = dctx_path_key(c, key), len;

  if (s == NULL || !dctx_want_seq(c, s))
    goto done;
  *v = dctx_items(c, s, DECODE_MAX_ALLOWED_IN, "items", sizeof(**v), &len);
  for (size_t i = 0; i < len; i++) {
    const struct ynode *it = ynode_seq_item(s, i);
    size_t m = dctx_path_index(c, i);
    const char *t = dctx_want_str(c, it);

    if (t != NULL && t[0] == '\0')
      dctx_bad(c, it, "must not be empty");
    else if (t != NULL && dns && !decode_dns_label(t, strlen(t)))
      dctx_bad(c, it,
               "\"%s\" is not a valid namespace: a DNS-1123 label "
               "(lowercase letters, digits and '-', at most 63)",
               t);
    else if (t != NULL)
      (*v)[(*n)++] = dctx_strdup(c, t);
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}

static void decode_labels(struct dctx *c, const struct ynode *map,
                          struct wasm_workload_sel *w) {
  const struct ynode *l = decode_field(map, "labels");
  size_t mark = dctx_path_key(c, "labels"), n;

  if (l == NULL || !dctx_want_map(c, l))
    goto done;
  w->labels =
      dctx_items(c, l, DECODE_MAX_LABELS, "labels", sizeof(*w->labels), &n);
  if (w->labels == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    const struct ynode *k = ynode_map_key(l, i), *v = ynode_map_value(l, i);
    const char *key = ynode_text(k, NULL), *val;
    size_t m = dctx_path_key(c, key);

    if (key[0] == '\0') {
      dctx_bad(c, k, "a label key must not be empty");
    } else if ((val = dctx_want_str(c, v)) != NULL) {
      w->labels[w->n_labels].key = dctx_strdup(c, key);
      w->labels[w->n_labels].value = dctx_strdup(c, val);
      w->n_labels++;
    }
    dctx_path_restore(c, m);
  }
  if (c->rc == 0)
    qsort(w->labels, w->n_labels, sizeof(*w->labels), decode_label_cmp);

done:
  dctx_path_restore(c, mark);
}

/* One item: labels/namespaces/clusters, directly or (Gloo Mesh's
 * networking.mesh.gloo.solo.io WorkloadSelector) under
 * kubeWorkloadMatcher. */
static void decode_sel(struct dctx *c, const struct ynode *it,
                       struct wasm_workload_sel *w) {
  const struct ynode *m;
  size_t mark = c->plen;

  if (!dctx_want_map(c, it))
    return;
  dctx_check_keys(c, it, SEL_KEYS);
  m = decode_field(it, "kubeWorkloadMatcher");
  if (m != NULL) {
    if (decode_field(it, "labels") != NULL ||
        decode_field(it, "namespaces") != NULL ||
        decode_field(it, "clusters") != NULL) {
      dctx_bad(c, it,
               "give labels, namespaces and clusters either directly or "
               "under kubeWorkloadMatcher, not both");
      return;
    }
    mark = dctx_path_key(c, "kubeWorkloadMatcher");
    if (dctx_want_map(c, m)) {
      dctx_check_keys(c, m, MATCHER_KEYS);
      it = m;
    } else {
      it = NULL;
    }
    if (it == NULL) {
      dctx_path_restore(c, mark);
      return;
    }
  }
  decode_labels(c, it, w);
  decode_strs(c, it, "namespaces", 1, &w->namespaces, &w->n_namespaces);
  decode_strs(c, it, "clusters", 0, &w->clusters, &w->n_clusters);
  if (m != NULL)
    dctx_path_restore(c, mark);
}

static void decode_selectors(struct dctx *c, const struct ynode *spec,
                             struct deploy *d) {
  const struct ynode *s = decode_field(spec, "workloadSelector");
  size_t mark = dctx_path_key(c, "workloadSelector");

  if (s == NULL || !dctx_want_seq(c, s))
    goto done;
  d->sels = dctx_items(c, s, DECODE_MAX_MATCHES, "selectors", sizeof(*d->sels),
                       &d->n_sels);
  for (size_t i = 0; i < d->n_sels; i++) {
    size_t m = dctx_path_index(c, i);

    decode_sel(c, ynode_seq_item(s, i), &d->sels[i]);
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}

/* ---- imagePullOptions, weight ---- */
static void decode_pull(struct dctx *c, const struct ynode *spec,
                        struct deploy *d) {
  const struct ynode *p = decode_field(spec, "imagePullOptions"), *v;
  size_t mark = dctx_path_key(c, "imagePullOptions"), in;

  if (p == NULL || !dctx_want_map(c, p))
    goto done;
  in = c->plen;
  dctx_check_keys(c, p, PULL_KEYS);
  v = dctx_get_str(c, p, "pullSecret", 0, &d->pull_secret);
  if (d->pull_secret != NULL && !decode_valid_name(d->pull_secret)) {
    dctx_path_key(c, "pullSecret");
    dctx_bad(c, v,
             "\"%s\" is not a valid secret name: 1 to %d letters, digits, "
             "'-', '_' or '.'",
             d->pull_secret, DECODE_NAME_MAX);
    dctx_path_restore(c, in);
  }
  dctx_get_bool(c, p, "insecureSkipVerify", &d->insecure_skip_verify);
  dctx_get_bool(c, p, "plainHttp", &d->plain_http);

done:
  dctx_path_restore(c, mark);
}

/* ---- staticFilterConfig ---- */

static int b64_val(int ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+' || ch == '-')
    return 62;
  if (ch == '/' || ch == '_')
    return 63;
  return -1;
}

/* Protobuf JSON bytes: standard or URL-safe base64, padding optional.
 * Returns 0 with *out (caller frees; never NULL) and *n, 1 when s is not
 * base64, or XDS_ENOMEM. */
static int b64_decode(const char *s, unsigned char **out, size_t *n) {
  size_t len = strlen(s), k = 0;
  unsigned acc = 0;
  int bits = 0;

  while (len > 0 && s[len - 1] == '=')
    len--;
  if (len % 4 == 1 || strlen(s) - len > 2)
    return 1;
  *out = xds_malloc(len * 3 / 4 + 1);
  if (*out == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < len; i++) {
    int v = b64_val((unsigned char)s[i]);

    if (v < 0) {
      xds_free(*out);
      *out = NULL;
      return 1;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      (*out)[k++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  *n = k;
  return 0;
}

/* A google.protobuf.Any in protobuf JSON: {"@type": ..., "value": ...}
 * for a Struct, a StringValue or a BytesValue. */
static void decode_static_config(struct dctx *c, const struct ynode *any,
                                 struct wasm_ext *e) {
  const struct ynode *value;
  const char *type, *s;
  char *t = NULL;
  size_t mark;
  int rc;

  if (!dctx_want_map(c, any))
    return;
  dctx_check_keys(c, any, ANY_KEYS);
  dctx_get_str(c, any, "@type", 1, &t);
  if (t == NULL)
    return;
  type = t;
  value = decode_field(any, "value");
  mark = dctx_path_key(c, "value");
  if (strcmp(type, TYPE_STRUCT) == 0) {
    if (value == NULL) {
      dctx_bad(c, any, "missing required field \"value\" (the Struct)");
      goto done;
    }
    if (!dctx_want_map(c, value))
      goto done;
    dctx_struct_json(c, value, "staticFilterConfig", &e->config_json);
    e->config_type = WASM_CONFIG_JSON;
  } else if (strcmp(type, TYPE_STRING) == 0 || strcmp(type, TYPE_BYTES) == 0) {
    /* Absent means the empty string or bytes, as in protobuf JSON. */
    s = value != NULL ? dctx_want_str(c, value) : "";
    if (s == NULL)
      goto done;
    if (strlen(s) > DECODE_MAX_CONFIG_JSON) {
      dctx_bad(c, value, "larger than %u bytes", DECODE_MAX_CONFIG_JSON);
      goto done;
    }
    if (strcmp(type, TYPE_STRING) == 0) {
      e->config_type = WASM_CONFIG_STRING;
      e->config_json = dctx_strdup(c, s);
      goto done;
    }
    e->config_type = WASM_CONFIG_BYTES;
    rc = b64_decode(s, &e->config_bytes, &e->config_bytes_len);
    if (rc == XDS_ENOMEM)
      c->rc = rc;
    else if (rc == 1)
      dctx_bad(c, value,
               "not base64: a BytesValue's value is its bytes in base64 "
               "(protobuf JSON)");
  } else {
    dctx_path_restore(c, mark);
    dctx_path_key(c, "@type");
    dctx_bad(c, decode_field(any, "@type"),
             "\"%s\" is not supported: use " TYPE_STRUCT ", " TYPE_STRING
             " or " TYPE_BYTES,
             type);
  }

done:
  xds_free(t);
}

/* ---- filters ---- */

/* Exactly one of the three sources: into e->url/scheme/sha256. Returns 1
 * when the source is wasmImageSource (rootId may then come from the
 * image). */
static int decode_source(struct dctx *c, const struct ynode *f,
                         struct wasm_ext *e) {
  const struct ynode *lp = decode_field(f, "localPathSource");
  const struct ynode *hu = decode_field(f, "httpUriSource");
  const struct ynode *wi = decode_field(f, "wasmImageSource");
  int n = (lp != NULL) + (hu != NULL) + (wi != NULL);
  size_t mark;
  char *s = NULL;
  const struct ynode *v;

  if (n != 1) {
    dctx_bad(c, f,
             n == 0 ? "missing the filter's source: give one of "
                      "localPathSource, httpUriSource or wasmImageSource"
                    : "give only one of localPathSource, httpUriSource and "
                      "wasmImageSource (they are a oneof)");
    return 0;
  }
  if (lp != NULL) {
    v = dctx_get_str(c, f, "localPathSource", 1, &s);
    mark = dctx_path_key(c, "localPathSource");
    if (s != NULL && s[0] != '/') {
      dctx_bad(c, v,
               "\"%s\" is not an absolute path: localPathSource is a file "
               "in the proxy's container",
               s);
    } else if (s != NULL) {
      char *u = xds_asprintf("file://%s", s);

      if (u == NULL)
        c->rc = XDS_ENOMEM;
      else
        e->url = decode_normalise_url(c, v, u, &e->scheme);
      xds_free(u);
    }
    dctx_path_restore(c, mark);
    xds_free(s);
    return 0;
  }
  if (hu != NULL) {
    mark = dctx_path_key(c, "httpUriSource");
    if (dctx_want_map(c, hu)) {
      size_t in = c->plen;

      dctx_check_keys(c, hu, URI_KEYS);
      v = dctx_get_str(c, hu, "uri", 1, &s);
      if (s != NULL) {
        dctx_path_key(c, "uri");
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
          dctx_bad(c, v, "\"%s\" is not an http:// or https:// URI", s);
        else
          e->url = decode_normalise_url(c, v, s, &e->scheme);
        dctx_path_restore(c, in);
      }
      v = dctx_get_str(c, hu, "sha", 1, &e->sha256);
      if (e->sha256 != NULL && !decode_is_sha256(e->sha256)) {
        dctx_path_key(c, "sha");
        dctx_bad(c, v,
                 "\"%s\" is not a sha256: 64 lowercase hexadecimal digits",
                 e->sha256);
        dctx_path_restore(c, in);
      }
    }
    dctx_path_restore(c, mark);
    xds_free(s);
    return 0;
  }
  mark = dctx_path_key(c, "wasmImageSource");
  if (dctx_want_map(c, wi)) {
    size_t in = c->plen;

    dctx_check_keys(c, wi, IMAGE_KEYS);
    v = dctx_get_str(c, wi, "wasmImageTag", 1, &s);
    if (s != NULL) {
      dctx_path_key(c, "wasmImageTag");
      if (strstr(s, "://") != NULL)
        dctx_bad(c, v,
                 "\"%s\": wasmImageTag is an image reference "
                 "(registry/repository:tag), without a scheme",
                 s);
      else
        e->url = decode_normalise_url(c, v, s, &e->scheme);
      dctx_path_restore(c, in);
    }
  }
  dctx_path_restore(c, mark);
  xds_free(s);
  return 1;
}

static int copy_deploy(struct wasm_ext *e, const struct deploy *d, size_t i,
                       size_t n) {
  int ok = 1;

  e->kind = WASM_KIND_DEPLOYMENT;
  e->filter_index = i;
  e->n_filters = n;
  e->weight = d->weight;
  e->generation = d->generation > 0 ? d->generation : 0;
  e->insecure_skip_verify = d->insecure_skip_verify;
  e->plain_http = d->plain_http;
  if (d->name == NULL || d->namespace == NULL || d->id == NULL)
    return 1; /* already reported; the record is dropped */
  e->name = xds_strdup(d->name);
  e->namespace = xds_strdup(d->namespace);
  e->resource = xds_strdup(d->id);
  e->fqn = xds_asprintf("%s/%zu", d->id, i);
  if (d->pull_secret != NULL)
    ok = (e->pull_secret = xds_strdup(d->pull_secret)) != NULL;
  ok = ok && e->name != NULL && e->namespace != NULL && e->resource != NULL &&
       e->fqn != NULL;
  if (ok && d->n_sels > 0) {
    e->selectors = xds_calloc(d->n_sels, sizeof(*e->selectors));
    ok = e->selectors != NULL;
    for (size_t k = 0; ok && k < d->n_sels; k++, e->n_selectors++) {
      const struct wasm_workload_sel *f = &d->sels[k];
      struct wasm_workload_sel *t = &e->selectors[k];

      if (f->n_labels > 0 &&
          (t->labels = xds_calloc(f->n_labels, sizeof(*t->labels))) == NULL)
        ok = 0;
      for (size_t j = 0; ok && j < f->n_labels; j++, t->n_labels++)
        ok = (t->labels[j].key = xds_strdup(f->labels[j].key)) != NULL &&
             (t->labels[j].value = xds_strdup(f->labels[j].value)) != NULL;
      if (ok && f->n_namespaces > 0)
        ok = xds_strv_dup(f->namespaces, f->n_namespaces, &t->namespaces) == 0;
      if (ok)
        t->n_namespaces = f->n_namespaces;
      if (ok && f->n_clusters > 0)
        ok = xds_strv_dup(f->clusters, f->n_clusters, &t->clusters) == 0;
      if (ok)
        t->n_clusters = f->n_clusters;
    }
  }
  return ok;
}

static void decode_filter(struct dctx *c, const struct ynode *f,
                          struct wasm_ext *e) {
  const struct ynode *v;
  size_t in = c->plen;
  int image, x;
  char *dyn = NULL;

  if (!dctx_want_map(c, f))
    return;
  dctx_check_keys(c, f, FILTER_KEYS);
  image = decode_source(c, f, e);
  v = decode_field(f, "staticFilterConfig");
  if (v != NULL) {
    dctx_path_key(c, "staticFilterConfig");
    decode_static_config(c, v, e);
    dctx_path_restore(c, in);
  }
  v = dctx_get_str(c, f, "dynamicFilterConfig", 0, &dyn);
  if (v != NULL && dyn != NULL) {
    dctx_path_key(c, "dynamicFilterConfig");
    dctx_bad(c, v,
             "not supported: Gloo Mesh declares dynamicFilterConfig as a "
             "placeholder that is not implemented; give the configuration "
             "in staticFilterConfig");
    dctx_path_restore(c, in);
  }
  xds_free(dyn);
  v = dctx_get_str(c, f, "rootId", 0, &e->plugin_name);
  if (e->plugin_name == NULL && !image) {
    dctx_path_key(c, "rootId");
    dctx_bad(c, v != NULL ? v : f,
             "missing required field \"rootId\": only a wasmImageSource "
             "filter may leave it out (it is then read from the image's "
             "config)");
    dctx_path_restore(c, in);
  } else if (e->plugin_name != NULL && strlen(e->plugin_name) > 256) {
    dctx_path_key(c, "rootId");
    dctx_bad(c, v, "longer than 256 characters");
    dctx_path_restore(c, in);
  }
  v = dctx_get_str(c, f, "vmId", 0, &e->vm_id);
  if (e->vm_id != NULL && strlen(e->vm_id) > 256) {
    dctx_path_key(c, "vmId");
    dctx_bad(c, v, "longer than 256 characters");
    dctx_path_restore(c, in);
  }
  x = WASM_CTX_ANY;
  dctx_get_enum(c, f, "filterContext", CONTEXTS, &x);
  e->filter_context = (enum wasm_filter_context)x;
  v = dctx_get_str(c, f, "insertBeforeFilter", 0, &e->insert_before);
  if (e->insert_before != NULL && strlen(e->insert_before) > 256) {
    dctx_path_key(c, "insertBeforeFilter");
    dctx_bad(c, v, "longer than 256 characters");
    dctx_path_restore(c, in);
  }
}

static void deploy_cleanup(struct deploy *d) {
  xds_free(d->name);
  xds_free(d->namespace);
  xds_free(d->id);
  xds_free(d->pull_secret);
  for (size_t i = 0; i < d->n_sels; i++) {
    struct wasm_workload_sel *w = &d->sels[i];

    for (size_t k = 0; k < w->n_labels; k++) {
      xds_free(w->labels[k].key);
      xds_free(w->labels[k].value);
    }
    xds_free(w->labels);
    xds_strv_free(w->namespaces, w->n_namespaces);
    xds_strv_free(w->clusters, w->n_clusters);
  }
  xds_free(d->sels);
}

static void wasmdeploy_decode(struct dctx *c, const struct ynode *doc,
                              struct decode_result *out) {
  const struct ynode *spec, *fs;
  struct deploy d;
  size_t n;
  int64_t w;

  memset(&d, 0, sizeof(d));
  decode_meta(c, doc, out, &d);
  spec = decode_field(doc, "spec");
  dctx_path_key(c, "spec");
  if (spec == NULL) {
    dctx_bad(c, doc, "missing required field \"spec\"");
    goto done;
  }
  if (!dctx_want_map(c, spec))
    goto done;
  dctx_check_keys(c, spec, SPEC_KEYS);
  decode_selectors(c, spec, &d);
  if (dctx_get_int(c, spec, "weight", 0, UINT32_MAX, "uint32: 0..4294967295",
                   &w))
    d.weight = (uint32_t)w;
  decode_pull(c, spec, &d);
  fs = decode_field(spec, "filters");
  dctx_path_key(c, "filters");
  if (fs == NULL) {
    dctx_bad(c, spec, "missing required field \"filters\"");
    goto done;
  }
  if (!dctx_want_seq(c, fs))
    goto done;
  n = ynode_len(fs);
  if (n == 0) {
    dctx_bad(c, fs, "a WasmDeployment needs at least one filter");
    goto done;
  }
  if (n > DECODE_MAX_FILTERS) {
    dctx_bad(c, fs, "more than %d filters", DECODE_MAX_FILTERS);
    goto done;
  }
  out->exts = xds_calloc(n, sizeof(*out->exts));
  if (out->exts == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n && c->rc == 0; i++) {
    /* Every filter is located at its document, as every record is. */
    struct wasm_ext *e = dctx_ext_new(c, doc);
    size_t m;

    if (e == NULL)
      break;
    out->exts[out->n_exts++] = e;
    if (!copy_deploy(e, &d, i, n)) {
      c->rc = XDS_ENOMEM;
      break;
    }
    m = dctx_path_index(c, i);
    decode_filter(c, ynode_seq_item(fs, i), e);
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, 0);
  deploy_cleanup(&d);
}

/* status is what the cluster wrote about the object; read and ignored. */
static const char *const TOP_KEYS[] = {"apiVersion", "kind",   "metadata",
                                       "spec",       "status", NULL};

const struct decode_kind_ops decode_wasmdeploy_ops = {
    DECODE_WASMDEPLOY_API, DECODE_WASMDEPLOY_KIND, DECODE_WASM_DEPLOYMENT,
    wasmdeploy_decode, TOP_KEYS};
