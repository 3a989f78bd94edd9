/*
 * decode_common.c: the checks and readers that several decode_<kind>.c
 * files share (Kubernetes names and metadata keys, bools, Struct fields as
 * JSON, lists, phase and priority, image pull fields, sha256 digests, env
 * lists). Contracts in decode_priv.h.
 *
 * Pure: no I/O, no globals; safe on any thread.
 */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "store/decode_priv.h"
#include "store/model.h"
#include "store/ydoc.h"

/* name and namespace, then what Kubernetes owns (accepted and ignored). */
const char *const decode_k8s_meta_keys[] = {"name",
                                            "namespace",
                                            "uid",
                                            "resourceVersion",
                                            "generation",
                                            "creationTimestamp",
                                            "deletionTimestamp",
                                            "deletionGracePeriodSeconds",
                                            "labels",
                                            "annotations",
                                            "ownerReferences",
                                            "finalizers",
                                            "managedFields",
                                            "selfLink",
                                            "generateName",
                                            NULL};

int decode_in_list(const char *s, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcmp(*list, s) == 0)
      return 1;
  return 0;
}

static int is_lower_alnum(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

int decode_dns_label(const char *s, size_t n) {
  if (n == 0 || n > 63 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_lower_alnum(s[i]) && s[i] != '-')
      return 0;
  return 1;
}

int decode_dns_subdomain(const char *s) {
  size_t n = strlen(s), start = 0;

  if (n == 0 || n > DECODE_NAME_MAX)
    return 0;
  for (size_t i = 0; i <= n; i++)
    if (s[i] == '.' || s[i] == '\0') {
      if (!decode_dns_label(s + start, i - start))
        return 0;
      start = i + 1;
    }
  return 1;
}

int decode_label_cmp(const void *a, const void *b) {
  return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

void dctx_get_bool(struct dctx *c, const struct ynode *map, const char *key,
                   int *out) {
  const struct ynode *v = decode_field(map, key);
  size_t mark = dctx_path_key(c, key);
  const char *t;

  if (v == NULL)
    goto done;
  t = ynode_text(v, NULL);
  if (ynode_kind(v) != YNODE_SCALAR || ynode_scalar_type(v) != YSCALAR_BOOL)
    dctx_bad(c, v, "expected true or false, got %s", ynode_describe(v));
  else
    *out = strcmp(t, "true") == 0 || strcmp(t, "True") == 0 ||
           strcmp(t, "TRUE") == 0;

done:
  dctx_path_restore(c, mark);
}

void dctx_struct_json(struct dctx *c, const struct ynode *v, const char *where,
                      char **out) {
  const struct ynode *at = NULL;
  const char *why = NULL;
  struct xds_buf b;
  int rc;

  xds_buf_init(&b, DECODE_MAX_CONFIG_JSON);
  rc = decode_json_put(&b, v, &at, &why);
  if (rc == XDS_EINVAL)
    dctx_bad(c, at, "%s (%s) in %s", why,
             ynode_text(at, NULL) ? ynode_text(at, NULL) : "", where);
  else if (rc == XDS_ETOOBIG)
    dctx_bad(c, v, "larger than %u bytes as JSON", DECODE_MAX_CONFIG_JSON);
  else if (rc < 0)
    c->rc = rc;
  else
    *out = xds_buf_steal(&b, NULL);
  xds_buf_cleanup(&b);
}

void dctx_get_k8s_name(struct dctx *c, const struct ynode *meta,
                       const char *kind, char **name, int64_t *generation) {
  const struct ynode *v = decode_field(meta, "generation");
  size_t mark;

  if (v != NULL && ynode_scalar_type(v) == YSCALAR_INT &&
      (ynode_int64(v, generation) < 0 || *generation < 0))
    *generation = 0;
  v = dctx_get_str(c, meta, "name", 1, name);
  if (*name != NULL && !decode_dns_subdomain(*name)) {
    mark = dctx_path_key(c, "name");
    dctx_bad(c, v,
             "\"%s\" is not a valid %s name: a DNS-1123 subdomain "
             "(lowercase letters, digits, '-' and '.', at most %d, "
             "alphanumeric at both ends)",
             *name, kind, DECODE_NAME_MAX);
    dctx_path_restore(c, mark);
  }
}

void dctx_check_namespace(struct dctx *c, const struct ynode *v,
                          const char *ns) {
  size_t mark;

  if (decode_dns_label(ns, strlen(ns)))
    return;
  mark = dctx_path_key(c, "namespace");
  dctx_bad(c, v,
           "\"%s\" is not a valid namespace: a DNS-1123 label (lowercase "
           "letters, digits and '-', at most 63, alphanumeric at both ends)",
           ns);
  dctx_path_restore(c, mark);
}

const char *const decode_phase_names[] = {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ",
                                          "STATS", NULL};
const char *const decode_pull_policy_names[] = {"UNSPECIFIED_POLICY",
                                                "IfNotPresent", "Always", NULL};

int decode_is_sha256(const char *s) {
  size_t n = strlen(s);

  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= '0' && s[i] <= '9') && !(s[i] >= 'a' && s[i] <= 'f'))
      return 0;
  return n == 64;
}

struct wasm_ext *dctx_ext_new(struct dctx *c, const struct ynode *doc) {
  struct wasm_ext *e = xds_calloc(1, sizeof(*e));

  if (e == NULL) {
    c->rc = XDS_ENOMEM;
    return NULL;
  }
  e->loc.line = ynode_line(doc);
  e->loc.column = ynode_column(doc);
  e->loc.source = dctx_strdup(c, ynode_source(doc));
  return e;
}

void *dctx_items(struct dctx *c, const struct ynode *v, size_t max,
                 const char *what, size_t size, size_t *n) {
  size_t len = ynode_len(v);
  void *items;

  *n = 0;
  if (len > max) {
    dctx_bad(c, v, "more than %zu %s", max, what);
    return NULL;
  }
  if (len == 0)
    return NULL;
  items = xds_calloc(len, size);
  if (items == NULL) {
    c->rc = XDS_ENOMEM;
    return NULL;
  }
  *n = len;
  return items;
}

void dctx_get_phase(struct dctx *c, const struct ynode *spec,
                    struct wasm_ext *e) {
  int x = WASM_PHASE_UNSPECIFIED;
  int64_t prio;

  dctx_get_enum(c, spec, "phase", decode_phase_names, &x);
  e->phase = (enum wasm_phase)x;
  if (dctx_get_int(c, spec, "priority", INT32_MIN, INT32_MAX,
                   "int32: -2147483648..2147483647", &prio))
    e->priority = (int32_t)prio;
}

void dctx_get_pull(struct dctx *c, const struct ynode *spec, size_t secret_max,
                   struct wasm_ext *e) {
  const struct ynode *v;
  int x = WASM_PULL_UNSPECIFIED;
  size_t mark;

  dctx_get_enum(c, spec, "imagePullPolicy", decode_pull_policy_names, &x);
  e->pull_policy = (enum wasm_pull_policy)x;
  v = dctx_get_str(c, spec, "imagePullSecret", 0, &e->pull_secret);
  if (secret_max > 0 && e->pull_secret != NULL &&
      strlen(e->pull_secret) > secret_max) {
    mark = dctx_path_key(c, "imagePullSecret");
    dctx_bad(c, v, "longer than %zu characters", secret_max);
    dctx_path_restore(c, mark);
  }
}

static const char *const ENV_KEYS[] = {"name", "valueFrom", "value", NULL};
static const char *const ENV_FROM[] = {"INLINE", "HOST", NULL};

/* One item of env into *env; 1 when it is kept. */
static int env_item(struct dctx *c, const struct ynode *v, size_t i,
                    const struct decode_env_rules *r, struct wasm_ext *e,
                    struct wasm_env *env) {
  const struct ynode *item = ynode_seq_item(v, i), *vn, *vv;
  size_t in, mk;
  int from = WASM_ENV_INLINE, errors = c->errors;

  if (!dctx_want_map(c, item))
    return 0;
  in = c->plen;
  dctx_check_keys(c, item, ENV_KEYS);
  if (!r->drop_on_key_error)
    errors = c->errors;
  vn = dctx_get_str(c, item, "name", 1, &env->name);
  if (env->name != NULL &&
      (!decode_is_ident(env->name, strlen(env->name)) ||
       (r->name_max > 0 && strlen(env->name) > r->name_max))) {
    dctx_path_key(c, "name");
    if (r->name_max > 0)
      dctx_bad(c, vn,
               "\"%s\" is not a C identifier of at most %zu characters "
               "([A-Za-z_][A-Za-z0-9_]*)",
               env->name, r->name_max);
    else
      dctx_bad(c, vn, "\"%s\" does not match [A-Za-z_][A-Za-z0-9_]*",
               env->name);
    dctx_path_restore(c, in);
  }
  dctx_get_enum(c, item, "valueFrom", ENV_FROM, &from);
  env->from = (enum wasm_env_from)from;
  vv = dctx_get_str(c, item, "value", 0, &env->value);
  dctx_path_key(c, "value");
  if (env->from == WASM_ENV_HOST && vv != NULL && r->host_value_is_error)
    dctx_bad(c, vv, "value may only be set when valueFrom is INLINE");
  else if (env->from == WASM_ENV_HOST && vv != NULL)
    dctx_warn(c, vv,
              "the value is ignored: with valueFrom HOST the proxy reads "
              "%s from its own environment",
              env->name != NULL ? env->name : "the variable");
  else if (r->value_max > 0 && env->value != NULL &&
           strlen(env->value) > r->value_max)
    dctx_bad(c, vv, "longer than %zu characters", r->value_max);
  dctx_path_restore(c, in);
  if (env->from == WASM_ENV_INLINE && env->value == NULL && c->rc == 0)
    env->value = dctx_strdup(c, "");
  for (size_t k = 0; env->name != NULL && k < e->n_env; k++)
    if (strcmp(e->env[k].name, env->name) == 0) {
      mk = dctx_path_key(c, "name");
      if (r->dup_first_line)
        dctx_bad(c, vn, "duplicate env name \"%s\" (first at line %d)",
                 env->name,
                 ynode_line(ynode_map_get(ynode_seq_item(v, k), "name")));
      else
        dctx_bad(c, vn, "duplicate env name \"%s\"", env->name);
      dctx_path_restore(c, mk);
      break;
    }
  if (c->errors != errors || env->name == NULL || c->rc < 0)
    return 0;
  if (env->from == WASM_ENV_HOST) {
    xds_free(env->value);
    env->value = NULL;
  }
  return 1;
}

void dctx_get_env(struct dctx *c, const struct ynode *vm,
                  const struct decode_env_rules *r, struct wasm_ext *e) {
  const struct ynode *v = decode_field(vm, "env");
  size_t mark = dctx_path_key(c, "env"), n;

  if (v == NULL || !dctx_want_seq(c, v))
    goto done;
  e->env = dctx_items(c, v, DECODE_MAX_ENV, "variables", sizeof(*e->env), &n);
  if (e->env == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    struct wasm_env env = {NULL, WASM_ENV_INLINE, NULL};
    size_t m = dctx_path_index(c, i);

    if (env_item(c, v, i, r, e, &env))
      e->env[e->n_env++] = env;
    else {
      xds_free(env.name);
      xds_free(env.value);
    }
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}
