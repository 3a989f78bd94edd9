/*
 * decode.c: documents -> validated records, reporting every error.
 *
 * Holds the field walker every kind uses and the dispatch by apiVersion
 * and kind; the JSON renderer is in decode_json.c and each kind in its own
 * decode_<kind>.c (decode_priv.h says how they fit).
 *
 * Each kind is decoded by walking its mapping with a current field path
 * (struct dctx.path). Walkers never stop at the first error: they record it
 * and go on, so one run reports everything. Allocation failure is sticky in
 * dctx.rc and turns the whole result into XDS_ENOMEM. A record is built
 * alongside validation and thrown away at the end if any error was found.
 */
#include "store/decode.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "store/decode_priv.h"
#include "store/ydoc.h"

/* ---- paths and reports ---- */

/* Appends n bytes of s to the path, cut at DECODE_PATH_MAX - 1 bytes.
 * (Not snprintf: every field read extends the path, a tenth of a store
 * load's instructions went to formatting it.) */
static void path_put(struct dctx *c, const char *s, size_t n) {
  size_t room = sizeof(c->path) - 1 - c->plen;

  if (n > room)
    n = room;
  memcpy(c->path + c->plen, s, n);
  c->plen += n;
  c->path[c->plen] = '\0';
}

size_t dctx_path_key(struct dctx *c, const char *key) {
  size_t mark = c->plen;

  if (c->plen > 0)
    path_put(c, ".", 1);
  path_put(c, key, strlen(key));
  return mark;
}

size_t dctx_path_index(struct dctx *c, size_t i) {
  size_t mark = c->plen;
  char d[24];
  size_t k = sizeof(d);

  d[--k] = ']';
  do {
    d[--k] = (char)('0' + i % 10);
    i /= 10;
  } while (i > 0);
  d[--k] = '[';
  path_put(c, d + k, sizeof(d) - k);
  return mark;
}

void dctx_path_restore(struct dctx *c, size_t mark) {
  c->plen = mark;
  c->path[mark] = '\0';
}

static void report(struct dctx *c, enum problem_severity sev,
                   const struct ynode *at, const char *fmt, va_list ap) {
  int rc = problems_vadd(c->pb, sev, ynode_source(at), ynode_line(at),
                         ynode_column(at), c->path, fmt, ap);

  if (rc < 0)
    c->rc = rc;
}

void dctx_bad(struct dctx *c, const struct ynode *at, const char *fmt, ...) {
  va_list ap;

  c->errors++;
  va_start(ap, fmt);
  report(c, PROBLEM_ERROR, at, fmt, ap);
  va_end(ap);
}

void dctx_warn(struct dctx *c, const struct ynode *at, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  report(c, PROBLEM_WARNING, at, fmt, ap);
  va_end(ap);
}

char *dctx_strdup(struct dctx *c, const char *s) {
  char *p = xds_strdup(s);

  if (p == NULL)
    c->rc = XDS_ENOMEM;
  return p;
}

/* ---- typed getters ---- */

/* 1 when n is a mapping, else reports "expected a mapping". */
int dctx_want_map(struct dctx *c, const struct ynode *n) {
  if (ynode_kind(n) == YNODE_MAPPING)
    return 1;
  dctx_bad(c, n, "expected a mapping, got %s", ynode_describe(n));
  return 0;
}

int dctx_want_seq(struct dctx *c, const struct ynode *n) {
  if (ynode_kind(n) == YNODE_SEQUENCE)
    return 1;
  dctx_bad(c, n, "expected a sequence, got %s", ynode_describe(n));
  return 0;
}

/* Reports each key of map that is not in allowed (NULL-terminated). */
void dctx_check_keys(struct dctx *c, const struct ynode *map,
                     const char *const *allowed) {
  for (size_t i = 0; i < ynode_len(map); i++) {
    const struct ynode *k = ynode_map_key(map, i);
    const char *name = ynode_text(k, NULL);
    const char *const *a;
    size_t mark;

    for (a = allowed; *a != NULL; a++)
      if ((*a)[0] == name[0] && strcmp(*a, name) == 0)
        break;
    if (*a != NULL)
      continue;
    mark = dctx_path_key(c, name);
    dctx_bad(c, k, "unknown field \"%s\"", name);
    dctx_path_restore(c, mark);
  }
}

/* The value under key, or NULL when absent or null (null means "not set",
 * as in protobuf JSON). */
const struct ynode *decode_field(const struct ynode *map, const char *key) {
  const struct ynode *v = ynode_map_get(map, key);

  return v == NULL || ynode_kind(v) == YNODE_NULL ? NULL : v;
}

/* Checks that n is a string scalar; returns its text or NULL (reported). */
const char *dctx_want_str(struct dctx *c, const struct ynode *n) {
  size_t len;
  const char *s;

  if (ynode_kind(n) != YNODE_SCALAR || ynode_scalar_type(n) != YSCALAR_STR) {
    if (ynode_kind(n) == YNODE_SCALAR && ynode_style(n) == YNODE_PLAIN)
      dctx_bad(c, n, "expected a string, got %s (quote it to make it a string)",
               ynode_describe(n));
    else
      dctx_bad(c, n, "expected a string, got %s", ynode_describe(n));
    return NULL;
  }
  s = ynode_text(n, &len);
  if (strlen(s) != len) {
    dctx_bad(c, n, "a string must not contain NUL characters");
    return NULL;
  }
  return s;
}

/*
 * Reads the string field key of map into *out (NULL when absent, null or
 * empty). A required field that is missing or empty is reported at the
 * mapping. Returns the value node or NULL.
 */
const struct ynode *dctx_get_str(struct dctx *c, const struct ynode *map,
                                 const char *key, int required, char **out) {
  const struct ynode *v = decode_field(map, key);
  size_t mark = dctx_path_key(c, key);
  const char *s;

  *out = NULL;
  if (v == NULL) {
    if (required)
      dctx_bad(c, map, "missing required field \"%s\"", key);
    goto done;
  }
  s = dctx_want_str(c, v);
  if (s == NULL)
    goto done;
  if (s[0] == '\0') {
    if (required)
      dctx_bad(c, v, "must not be empty");
    goto done;
  }
  *out = dctx_strdup(c, s);

done:
  dctx_path_restore(c, mark);
  return v;
}

/* Reads the enum field key: *out is the index of its value in names (or
 * left alone when absent). Returns the value node or NULL. */
const struct ynode *dctx_get_enum(struct dctx *c, const struct ynode *map,
                                  const char *key, const char *const *names,
                                  int *out) {
  const struct ynode *v = decode_field(map, key);
  size_t mark = dctx_path_key(c, key);
  char allowed[256];
  size_t used = 0;
  const char *s;

  if (v == NULL)
    goto done;
  s = dctx_want_str(c, v);
  if (s == NULL)
    goto done;
  for (int i = 0; names[i] != NULL; i++)
    if (strcmp(names[i], s) == 0) {
      *out = i;
      goto done;
    }
  /* The list of allowed values only for the message (formatting it for
   * every enum read cost a store load about 2 % of its instructions). */
  allowed[0] = '\0';
  for (int i = 0; names[i] != NULL; i++) {
    int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
                     i > 0 ? ", " : "", names[i]);

    if (n > 0 && (size_t)n < sizeof(allowed) - used)
      used += (size_t)n;
  }
  dctx_bad(c, v, "\"%s\" is not one of %s", s, allowed);

done:
  dctx_path_restore(c, mark);
  return v;
}

/* Reads the integer field key within [min, max]. Returns 1 when *out was
 * set, 0 when absent or bad (bad is reported). */
int dctx_get_int(struct dctx *c, const struct ynode *map, const char *key,
                 int64_t min, int64_t max, const char *range, int64_t *out) {
  const struct ynode *v = decode_field(map, key);
  size_t mark = dctx_path_key(c, key);
  int64_t x;
  int ok = 0, rc;

  if (v == NULL)
    goto done;
  if (ynode_scalar_type(v) != YSCALAR_INT) {
    dctx_bad(c, v, "expected an integer, got %s", ynode_describe(v));
    goto done;
  }
  rc = ynode_int64(v, &x);
  if (rc < 0 || x < min || x > max) {
    dctx_bad(c, v, "%s is out of range (%s)", ynode_text(v, NULL), range);
    goto done;
  }
  *out = x;
  ok = 1;

done:
  dctx_path_restore(c, mark);
  return ok;
}

/* A name of an organization, tenant, extension or template: 1 to
 * DECODE_NAME_MAX letters, digits, '-', '_' or '.', starting with a letter
 * or digit. Also keeps '/' out of fqns. */
int decode_valid_name(const char *s) {
  size_t n = strlen(s);

  if (n == 0 || n > DECODE_NAME_MAX || !isalnum((unsigned char)s[0]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
      return 0;
  return 1;
}

void dctx_check_name(struct dctx *c, const struct ynode *at, const char *s) {
  if (s != NULL && !decode_valid_name(s))
    dctx_bad(
        c, at,
        "\"%s\" is not a valid name: use 1 to %d letters, digits, '-', '_' "
        "or '.', starting with a letter or digit",
        s, DECODE_NAME_MAX);
}

int decode_is_ident(const char *s, size_t n) {
  if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
      return 0;
  return 1;
}

/* ---- documents ---- */

/* Every kind decode_document() knows; see decode_priv.h to add one. */
static const struct decode_kind_ops *const KINDS[] = {
    &decode_wasmext_ops,
    &decode_template_ops,
    &decode_wasmplugin_ops,
    &decode_wasmdeploy_ops,
};
#define N_KINDS (sizeof(KINDS) / sizeof(KINDS[0]))

/* "status" is read and ignored: what servers write back to etcd, which
 * `wasmxdsctl get` prints next to the spec (Kubernetes exports carry one
 * too). */
static const char *const TOP_KEYS[] = {"apiVersion", "kind",   "metadata",
                                       "spec",       "status", NULL};

/* Reports a document whose apiVersion/kind is none of KINDS, at kind when
 * the apiVersion is known, else at apiVersion. */
static void unsupported(struct dctx *c, const char *api, const char *kind,
                        const struct ynode *va, const struct ynode *vk) {
  char expected[512];
  size_t used = 0;
  int api_known = 0;

  expected[0] = '\0';
  for (size_t i = 0; i < N_KINDS; i++) {
    int n = snprintf(expected + used, sizeof(expected) - used, "%s%s %s",
                     i == 0             ? ""
                     : i + 1 == N_KINDS ? " or "
                                        : ", ",
                     KINDS[i]->api_version, KINDS[i]->kind);

    if (n > 0 && (size_t)n < sizeof(expected) - used)
      used += (size_t)n;
    if (strcmp(api, KINDS[i]->api_version) == 0)
      api_known = 1;
  }
  dctx_path_key(c, api_known ? "kind" : "apiVersion");
  dctx_bad(c, api_known ? vk : va, "unsupported resource %s %s: expected %s",
           api, kind, expected);
}

int decode_document(const struct ynode *doc, struct problems *pb,
                    struct decode_result *out) {
  const struct decode_kind_ops *ops = NULL;
  struct dctx c;
  char *api = NULL, *kind = NULL;
  const struct ynode *va, *vk;

  memset(out, 0, sizeof(*out));
  memset(&c, 0, sizeof(c));
  c.pb = pb;
  if (!dctx_want_map(&c, doc))
    goto done;
  va = dctx_get_str(&c, doc, "apiVersion", 1, &api);
  vk = dctx_get_str(&c, doc, "kind", 1, &kind);
  if (api == NULL || kind == NULL)
    goto done;
  for (size_t i = 0; i < N_KINDS && ops == NULL; i++)
    if (strcmp(api, KINDS[i]->api_version) == 0 &&
        strcmp(kind, KINDS[i]->kind) == 0)
      ops = KINDS[i];
  if (ops == NULL) {
    unsupported(&c, api, kind, va, vk);
    goto done;
  }
  out->kind = ops->id;
  dctx_check_keys(&c, doc, ops->top_keys != NULL ? ops->top_keys : TOP_KEYS);
  ops->decode(&c, doc, out);

done:
  xds_free(api);
  xds_free(kind);
  if (c.rc < 0 || c.errors > 0) {
    wasm_ext_free(out->ext);
    listener_tmpl_free(out->tmpl);
    out->ext = NULL;
    out->tmpl = NULL;
    for (size_t i = 0; i < out->n_exts; i++)
      wasm_ext_free(out->exts[i]);
    xds_free(out->exts);
    out->exts = NULL;
    out->n_exts = 0;
  }
  if (c.rc < 0) {
    decode_result_cleanup(out);
    return c.rc;
  }
  return c.errors > 0 ? XDS_EINVAL : 0;
}

static const char *const LIST_KEYS[] = {"apiVersion", "kind", "metadata",
                                        "items", NULL};

int decode_list(const struct ynode *doc, struct problems *pb,
                const struct ynode **items) {
  const struct ynode *va, *vk, *v;
  const char *api, *kind;
  struct dctx c;
  int is_list;

  *items = NULL;
  if (ynode_kind(doc) != YNODE_MAPPING)
    return 0;
  va = decode_field(doc, "apiVersion");
  vk = decode_field(doc, "kind");
  if (va == NULL || vk == NULL || ynode_kind(va) != YNODE_SCALAR ||
      ynode_kind(vk) != YNODE_SCALAR)
    return 0;
  api = ynode_text(va, NULL);
  kind = ynode_text(vk, NULL);
  is_list = (strcmp(api, "v1") == 0 && strcmp(kind, "List") == 0) ||
            (strcmp(api, DECODE_WASMPLUGIN_API) == 0 &&
             strcmp(kind, DECODE_WASMPLUGIN_KIND "List") == 0) ||
            (strcmp(api, DECODE_WASMDEPLOY_API) == 0 &&
             strcmp(kind, DECODE_WASMDEPLOY_KIND "List") == 0);
  if (!is_list)
    return 0;
  memset(&c, 0, sizeof(c));
  c.pb = pb;
  dctx_check_keys(&c, doc, LIST_KEYS);
  v = decode_field(doc, "items");
  dctx_path_key(&c, "items");
  if (v == NULL)
    dctx_bad(&c, doc, "missing required field \"items\" of a %s", kind);
  else if (dctx_want_seq(&c, v) && ynode_len(v) > DECODE_MAX_LIST_ITEMS)
    dctx_bad(&c, v, "more than %d items", DECODE_MAX_LIST_ITEMS);
  if (c.rc < 0)
    return c.rc;
  if (c.errors > 0)
    return XDS_EINVAL;
  *items = v;
  return 1;
}

void decode_result_cleanup(struct decode_result *out) {
  wasm_ext_free(out->ext);
  listener_tmpl_free(out->tmpl);
  for (size_t i = 0; i < out->n_exts; i++)
    wasm_ext_free(out->exts[i]);
  xds_free(out->exts);
  xds_free(out->id);
  memset(out, 0, sizeof(*out));
}
