/*
 * decode.c: documents -> validated records, reporting every error.
 *
 * Each kind is decoded by walking its mapping with a current field path
 * (struct dctx.path). Walkers never stop at the first error: they record it
 * and go on, so one run reports everything. Allocation failure is sticky in
 * dctx.rc and turns the whole result into XDS_ENOMEM. A record is built
 * alongside validation and thrown away at the end if any error was found.
 */
#include "store/decode.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/ydoc.h"

/* Longest field path built while decoding (longer ones are cut). */
#define DECODE_PATH_MAX PROBLEMS_PATH_MAX

struct dctx {
  struct problems *pb;
  int rc;     /* 0 or XDS_ENOMEM, sticky */
  int errors; /* errors found in this document */
  char path[DECODE_PATH_MAX];
  size_t plen;
};

/* ---- paths and reports ---- */

static size_t path_key(struct dctx *c, const char *key) {
  size_t mark = c->plen;
  int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s",
                   c->plen > 0 ? "." : "", key);

  if (n > 0)
    c->plen += (size_t)n;
  if (c->plen >= sizeof(c->path))
    c->plen = sizeof(c->path) - 1;
  return mark;
}

static size_t path_index(struct dctx *c, size_t i) {
  size_t mark = c->plen;
  int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);

  if (n > 0)
    c->plen += (size_t)n;
  if (c->plen >= sizeof(c->path))
    c->plen = sizeof(c->path) - 1;
  return mark;
}

static void path_restore(struct dctx *c, size_t mark) {
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

static void bad(struct dctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad(struct dctx *c, const struct ynode *at, const char *fmt, ...) {
  va_list ap;

  c->errors++;
  va_start(ap, fmt);
  report(c, PROBLEM_ERROR, at, fmt, ap);
  va_end(ap);
}

static void warn(struct dctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct dctx *c, const struct ynode *at, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  report(c, PROBLEM_WARNING, at, fmt, ap);
  va_end(ap);
}

static char *dup_or_oom(struct dctx *c, const char *s) {
  char *p = xds_strdup(s);

  if (p == NULL)
    c->rc = XDS_ENOMEM;
  return p;
}

/* ---- typed getters ---- */

/* 1 when n is a mapping, else reports "expected a mapping". */
static int want_map(struct dctx *c, const struct ynode *n) {
  if (ynode_kind(n) == YNODE_MAPPING)
    return 1;
  bad(c, n, "expected a mapping, got %s", ynode_describe(n));
  return 0;
}

static int want_seq(struct dctx *c, const struct ynode *n) {
  if (ynode_kind(n) == YNODE_SEQUENCE)
    return 1;
  bad(c, n, "expected a sequence, got %s", ynode_describe(n));
  return 0;
}

/* Reports each key of map that is not in allowed (NULL-terminated). */
static void check_keys(struct dctx *c, const struct ynode *map,
                       const char *const *allowed) {
  for (size_t i = 0; i < ynode_len(map); i++) {
    const struct ynode *k = ynode_map_key(map, i);
    const char *name = ynode_text(k, NULL);
    const char *const *a;
    size_t mark;

    for (a = allowed; *a != NULL; a++)
      if (strcmp(*a, name) == 0)
        break;
    if (*a != NULL)
      continue;
    mark = path_key(c, name);
    bad(c, k, "unknown field \"%s\"", name);
    path_restore(c, mark);
  }
}

/* The value under key, or NULL when absent or null (null means "not set",
 * as in protobuf JSON). */
static const struct ynode *field(const struct ynode *map, const char *key) {
  const struct ynode *v = ynode_map_get(map, key);

  return v == NULL || ynode_kind(v) == YNODE_NULL ? NULL : v;
}

/* Checks that n is a string scalar; returns its text or NULL (reported). */
static const char *want_str(struct dctx *c, const struct ynode *n) {
  size_t len;
  const char *s;

  if (ynode_kind(n) != YNODE_SCALAR || ynode_scalar_type(n) != YSCALAR_STR) {
    if (ynode_kind(n) == YNODE_SCALAR && ynode_style(n) == YNODE_PLAIN)
      bad(c, n, "expected a string, got %s (quote it to make it a string)",
          ynode_describe(n));
    else
      bad(c, n, "expected a string, got %s", ynode_describe(n));
    return NULL;
  }
  s = ynode_text(n, &len);
  if (strlen(s) != len) {
    bad(c, n, "a string must not contain NUL characters");
    return NULL;
  }
  return s;
}

/*
 * Reads the string field key of map into *out (NULL when absent, null or
 * empty). A required field that is missing or empty is reported at the
 * mapping. Returns the value node or NULL.
 */
static const struct ynode *get_str(struct dctx *c, const struct ynode *map,
                                   const char *key, int required, char **out) {
  const struct ynode *v = field(map, key);
  size_t mark = path_key(c, key);
  const char *s;

  *out = NULL;
  if (v == NULL) {
    if (required)
      bad(c, map, "missing required field \"%s\"", key);
    goto done;
  }
  s = want_str(c, v);
  if (s == NULL)
    goto done;
  if (s[0] == '\0') {
    if (required)
      bad(c, v, "must not be empty");
    goto done;
  }
  *out = dup_or_oom(c, s);

done:
  path_restore(c, mark);
  return v;
}

/* Reads the enum field key: *out is the index of its value in names (or
 * left alone when absent). Returns the value node or NULL. */
static const struct ynode *get_enum(struct dctx *c, const struct ynode *map,
                                    const char *key, const char *const *names,
                                    int *out) {
  const struct ynode *v = field(map, key);
  size_t mark = path_key(c, key);
  char allowed[256];
  size_t used = 0;
  const char *s;

  if (v == NULL)
    goto done;
  s = want_str(c, v);
  if (s == NULL)
    goto done;
  for (int i = 0; names[i] != NULL; i++) {
    int n;

    if (strcmp(names[i], s) == 0) {
      *out = i;
      goto done;
    }
    n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
                 i > 0 ? ", " : "", names[i]);
    if (n > 0 && (size_t)n < sizeof(allowed) - used)
      used += (size_t)n;
  }
  bad(c, v, "\"%s\" is not one of %s", s, allowed);

done:
  path_restore(c, mark);
  return v;
}

/* Reads the integer field key within [min, max]. Returns 1 when *out was
 * set, 0 when absent or bad (bad is reported). */
static int get_int(struct dctx *c, const struct ynode *map, const char *key,
                   int64_t min, int64_t max, const char *range, int64_t *out) {
  const struct ynode *v = field(map, key);
  size_t mark = path_key(c, key);
  int64_t x;
  int ok = 0, rc;

  if (v == NULL)
    goto done;
  if (ynode_scalar_type(v) != YSCALAR_INT) {
    bad(c, v, "expected an integer, got %s", ynode_describe(v));
    goto done;
  }
  rc = ynode_int64(v, &x);
  if (rc < 0 || x < min || x > max) {
    bad(c, v, "%s is out of range (%s)", ynode_text(v, NULL), range);
    goto done;
  }
  *out = x;
  ok = 1;

done:
  path_restore(c, mark);
  return ok;
}

/* A name of an organization, tenant, extension or template: 1 to
 * DECODE_NAME_MAX letters, digits, '-', '_' or '.', starting with a letter
 * or digit. Also keeps '/' out of fqns. */
static int valid_name(const char *s) {
  size_t n = strlen(s);

  if (n == 0 || n > DECODE_NAME_MAX || !isalnum((unsigned char)s[0]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
      return 0;
  return 1;
}

static void check_name(struct dctx *c, const struct ynode *at, const char *s) {
  if (s != NULL && !valid_name(s))
    bad(c, at,
        "\"%s\" is not a valid name: use 1 to %d letters, digits, '-', '_' "
        "or '.', starting with a letter or digit",
        s, DECODE_NAME_MAX);
}

static int is_ident(const char *s, size_t n) {
  if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
      return 0;
  return 1;
}

/* ---- JSON ---- */

struct jctx {
  struct xds_buf *out;
  const struct ynode *bad_node; /* where a conversion failed */
  const char *why;
  int rc;
};

static int json_string(struct xds_buf *b, const char *s, size_t len) {
  int rc = xds_buf_putc(b, '"');

  for (size_t i = 0; i < len && rc == 0; i++) {
    unsigned char ch = (unsigned char)s[i];

    switch (ch) {
    case '"':
      rc = xds_buf_puts(b, "\\\"");
      break;
    case '\\':
      rc = xds_buf_puts(b, "\\\\");
      break;
    case '\n':
      rc = xds_buf_puts(b, "\\n");
      break;
    case '\r':
      rc = xds_buf_puts(b, "\\r");
      break;
    case '\t':
      rc = xds_buf_puts(b, "\\t");
      break;
    case '\b':
      rc = xds_buf_puts(b, "\\b");
      break;
    case '\f':
      rc = xds_buf_puts(b, "\\f");
      break;
    default:
      if (ch < 0x20 || ch == 0x7f)
        rc = xds_buf_printf(b, "\\u%04x", ch);
      else
        rc = xds_buf_putc(b, (char)ch);
    }
  }
  return rc == 0 ? xds_buf_putc(b, '"') : rc;
}

/* Decimal integers keep every digit (JSON has no size limit); only the
 * sign '+' and leading zeros go. */
static int json_int(struct jctx *j, const struct ynode *n) {
  const char *s = ynode_text(n, NULL);
  int64_t v;
  int rc;

  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    rc = ynode_int64(n, &v);
    if (rc < 0) {
      j->bad_node = n;
      j->why = "integer out of range";
      return XDS_EINVAL;
    }
    return xds_buf_printf(j->out, "%" PRId64, v);
  }
  if (s[0] == '-' || s[0] == '+') {
    int neg = s[0] == '-';

    s++;
    while (s[0] == '0' && s[1] != '\0')
      s++;
    if (neg && strcmp(s, "0") != 0 && (rc = xds_buf_putc(j->out, '-')) < 0)
      return rc;
  } else {
    while (s[0] == '0' && s[1] != '\0')
      s++;
  }
  return xds_buf_puts(j->out, s);
}

/* Shortest text that reads back as the same double, always with a '.' or
 * an exponent so it stays a float. */
static int json_float(struct jctx *j, const struct ynode *n) {
  char text[64];
  double d;

  ynode_double(n, &d);
  if (d != d || d - d != 0) {
    j->bad_node = n;
    j->why = "infinity and NaN have no JSON form";
    return XDS_EINVAL;
  }
  /* Whole numbers of a sane size read best in plain notation: 1000.0,
   * not 1e+03. */
  if (d > -1e15 && d < 1e15 && (double)(long long)d == d) {
    snprintf(text, sizeof(text), "%.1f", d);
    return xds_buf_puts(j->out, text);
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(text, sizeof(text), "%.*g", prec, d);
    if (strtod(text, NULL) == d)
      break;
  }
  if (strpbrk(text, ".eE") == NULL)
    strncat(text, ".0", sizeof(text) - strlen(text) - 1);
  return xds_buf_puts(j->out, text);
}

static int json_node(struct jctx *j, const struct ynode *n) {
  size_t len;
  const char *s;
  int rc = 0;

  switch (ynode_kind(n)) {
  case YNODE_NULL:
    return xds_buf_puts(j->out, "null");
  case YNODE_MAPPING:
    rc = xds_buf_putc(j->out, '{');
    for (size_t i = 0; i < ynode_len(n) && rc == 0; i++) {
      const struct ynode *k = ynode_map_key(n, i);

      if (i > 0)
        rc = xds_buf_putc(j->out, ',');
      s = ynode_text(k, &len);
      if (rc == 0)
        rc = json_string(j->out, s, len);
      if (rc == 0)
        rc = xds_buf_putc(j->out, ':');
      if (rc == 0)
        rc = json_node(j, ynode_map_value(n, i));
    }
    return rc == 0 ? xds_buf_putc(j->out, '}') : rc;
  case YNODE_SEQUENCE:
    rc = xds_buf_putc(j->out, '[');
    for (size_t i = 0; i < ynode_len(n) && rc == 0; i++) {
      if (i > 0)
        rc = xds_buf_putc(j->out, ',');
      if (rc == 0)
        rc = json_node(j, ynode_seq_item(n, i));
    }
    return rc == 0 ? xds_buf_putc(j->out, ']') : rc;
  case YNODE_SCALAR:
    break;
  }
  switch (ynode_scalar_type(n)) {
  case YSCALAR_BOOL: {
    int v = 0;

    ynode_bool(n, &v);
    return xds_buf_puts(j->out, v ? "true" : "false");
  }
  case YSCALAR_INT:
    return json_int(j, n);
  case YSCALAR_FLOAT:
    return json_float(j, n);
  case YSCALAR_STR:
    s = ynode_text(n, &len);
    return json_string(j->out, s, len);
  default:
    j->bad_node = n;
    j->why = "a value of an unsupported tag";
    return XDS_EINVAL;
  }
}

int decode_json(const struct ynode *n, size_t max, char **json,
                struct xds_err *err) {
  struct xds_buf b;
  struct jctx j = {&b, NULL, NULL, 0};
  int rc;

  *json = NULL;
  xds_buf_init(&b, max);
  rc = json_node(&j, n);
  if (rc == XDS_EINVAL) {
    const struct ynode *at = j.bad_node;

    xds_err_set(err, rc, "%s:%d:%d: %s (%s)", ynode_source(at), ynode_line(at),
                ynode_column(at), j.why,
                ynode_text(at, NULL) ? ynode_text(at, NULL) : "");
  } else if (rc == XDS_ETOOBIG) {
    xds_err_set(err, rc, "%s:%d:%d: larger than %zu bytes as JSON",
                ynode_source(n), ynode_line(n), ynode_column(n), max);
  }
  if (rc < 0) {
    xds_buf_cleanup(&b);
    return rc;
  }
  *json = xds_buf_steal(&b, NULL);
  return 0;
}

/* ---- WasmExtension ---- */

static const char *const TOP_KEYS[] = {"apiVersion", "kind", "metadata", "spec",
                                       NULL};
static const char *const EXT_META_KEYS[] = {"organization", "name", NULL};
static const char *const EXT_SPEC_KEYS[] = {
    "allowedIn", "url",      "image",      "source",          "description",
    "phase",     "priority", "config",     "imagePullPolicy", "imagePullSecret",
    "vmConfig",  "match",    "pluginName", "failStrategy",    "sha256",
    NULL};
static const char *const VM_KEYS[] = {"env", "vmId", "runtime", NULL};
static const char *const ENV_KEYS[] = {"name", "valueFrom", "value", NULL};
static const char *const MATCH_KEYS[] = {"mode", NULL};

static const char *const PHASES[] = {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ",
                                     "STATS", NULL};
static const char *const PULL_POLICIES[] = {"UNSPECIFIED_POLICY",
                                            "IfNotPresent", "Always", NULL};
static const char *const ENV_FROM[] = {"INLINE", "HOST", NULL};
/* Order of enum wasm_match_mode. */
static const char *const MATCH_MODES[] = {"CLIENT_AND_SERVER", "CLIENT",
                                          "SERVER", NULL};
static const char *const FAIL_STRATEGIES[] = {"FAIL_CLOSE", "FAIL_OPEN", NULL};
static const char *const RUNTIMES[] = {
    "envoy.wasm.runtime.v8", "envoy.wasm.runtime.wamr",
    "envoy.wasm.runtime.wasmtime", "envoy.wasm.runtime.null", NULL};

static void decode_allowed_in(struct dctx *c, const struct ynode *spec,
                              struct wasm_ext *e) {
  const struct ynode *v = field(spec, "allowedIn");
  size_t mark = path_key(c, "allowedIn"), n;

  if (v == NULL || !want_seq(c, v))
    goto done;
  n = ynode_len(v);
  if (n > DECODE_MAX_ALLOWED_IN) {
    bad(c, v, "more than %d items", DECODE_MAX_ALLOWED_IN);
    goto done;
  }
  if (n == 0)
    goto done;
  e->allowed_in = xds_calloc(n, sizeof(*e->allowed_in));
  if (e->allowed_in == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i);
    size_t m = path_index(c, i);
    const char *s = want_str(c, item), *tenant;
    char org[DECODE_NAME_MAX + 2];
    int ok = 0;

    if (s == NULL)
      goto next;
    if (s[0] == '\0') {
      bad(c, item, "must not be empty");
      goto next;
    }
    /* organizations/<org>/tenants/<tenant> */
    if (strncmp(s, "organizations/", 14) == 0) {
      const char *o = s + 14, *slash = strchr(o, '/');

      if (slash != NULL && (size_t)(slash - o) <= DECODE_NAME_MAX) {
        memcpy(org, o, (size_t)(slash - o));
        org[slash - o] = '\0';
        tenant = slash + 1;
        if (strncmp(tenant, "tenants/", 8) == 0 && valid_name(org) &&
            valid_name(tenant + 8))
          ok = 1;
      }
    }
    if (!ok) {
      bad(c, item,
          "\"%s\" is not a tenant fqn of the form "
          "organizations/<org>/tenants/<tenant>",
          s);
      goto next;
    }
    if (e->organization != NULL && strcmp(org, e->organization) != 0) {
      bad(c, item, "tenant \"%s\" is not in organization \"%s\"", s,
          e->organization);
      goto next;
    }
    for (size_t k = 0; k < e->n_allowed_in; k++)
      if (strcmp(e->allowed_in[k], s) == 0)
        warn(c, item, "tenant \"%s\" is listed twice", s);
    e->allowed_in[e->n_allowed_in] = dup_or_oom(c, s);
    if (e->allowed_in[e->n_allowed_in] != NULL)
      e->n_allowed_in++;
  next:
    path_restore(c, m);
  }

done:
  path_restore(c, mark);
}

/* Validates a module location and gives it a scheme ("oci://" when none).
 * Returns the new string (caller frees) or NULL (reported, or OOM). */
static char *normalise_url(struct dctx *c, const struct ynode *at,
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
      bad(c, at, "\"%s\" must not contain whitespace", s);
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
      bad(c, at, "\"%s\" has nothing after the scheme", s);
      return NULL;
    }
    if (schemes[i].scheme == WASM_URL_FILE && sep[3] != '/') {
      bad(c, at,
          "\"%s\": a file:// url needs an absolute path "
          "(file:///path/to/module.wasm)",
          s);
      return NULL;
    }
    *scheme = schemes[i].scheme;
    return dup_or_oom(c, s);
  }
  bad(c, at, "\"%s\" does not match ^(oci|https?|file)://", s);
  return NULL;
}

static void decode_url(struct dctx *c, const struct ynode *spec,
                       struct wasm_ext *e) {
  char *url = NULL, *image = NULL;
  const struct ynode *vu = get_str(c, spec, "url", 0, &url);
  const struct ynode *vi = get_str(c, spec, "image", 0, &image);
  size_t mark;

  if (url != NULL) {
    mark = path_key(c, "url");
    e->url = normalise_url(c, vu, url, &e->scheme);
    path_restore(c, mark);
    if (image != NULL) {
      mark = path_key(c, "image");
      warn(c, vi,
           "spec.image is deprecated and ignored because spec.url "
           "is set; remove it");
      path_restore(c, mark);
    }
  } else if (image != NULL) {
    mark = path_key(c, "image");
    warn(c, vi, "spec.image is deprecated; use spec.url");
    e->url = normalise_url(c, vi, image, &e->scheme);
    path_restore(c, mark);
  } else if (c->rc == 0 && (vu == NULL || ynode_kind(vu) == YNODE_SCALAR) &&
             (vi == NULL || ynode_kind(vi) == YNODE_SCALAR)) {
    mark = path_key(c, "url");
    bad(c, vu != NULL ? vu : spec,
        "missing required field \"url\" (or the deprecated \"image\")");
    path_restore(c, mark);
  }
  xds_free(url);
  xds_free(image);
}

static void decode_env(struct dctx *c, const struct ynode *vm,
                       struct wasm_ext *e) {
  const struct ynode *v = field(vm, "env");
  size_t mark = path_key(c, "env"), n;

  if (v == NULL || !want_seq(c, v))
    goto done;
  n = ynode_len(v);
  if (n > DECODE_MAX_ENV) {
    bad(c, v, "more than %d variables", DECODE_MAX_ENV);
    goto done;
  }
  if (n == 0)
    goto done;
  e->env = xds_calloc(n, sizeof(*e->env));
  if (e->env == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i), *vn, *vv;
    size_t m = path_index(c, i), k;
    struct wasm_env env = {NULL, WASM_ENV_INLINE, NULL};
    int from = WASM_ENV_INLINE, ok;

    if (!want_map(c, item))
      goto next;
    check_keys(c, item, ENV_KEYS);
    ok = c->errors;
    vn = get_str(c, item, "name", 1, &env.name);
    if (env.name != NULL && !is_ident(env.name, strlen(env.name))) {
      size_t mk = path_key(c, "name");

      bad(c, vn, "\"%s\" does not match [A-Za-z_][A-Za-z0-9_]*", env.name);
      path_restore(c, mk);
    }
    get_enum(c, item, "valueFrom", ENV_FROM, &from);
    env.from = (enum wasm_env_from)from;
    vv = get_str(c, item, "value", 0, &env.value);
    if (env.from == WASM_ENV_HOST && vv != NULL) {
      size_t mk = path_key(c, "value");

      bad(c, vv,
          "a value is not allowed when valueFrom is HOST (the proxy "
          "reads it from its own environment)");
      path_restore(c, mk);
    }
    if (env.from == WASM_ENV_INLINE && env.value == NULL)
      env.value = dup_or_oom(c, "");
    for (k = 0; env.name != NULL && k < e->n_env; k++)
      if (strcmp(e->env[k].name, env.name) == 0) {
        const struct ynode *first = ynode_seq_item(v, k);
        size_t mk = path_key(c, "name");

        bad(c, vn, "duplicate env name \"%s\" (first at line %d)", env.name,
            ynode_line(ynode_map_get(first, "name")));
        path_restore(c, mk);
        break;
      }
    if (c->errors != ok || env.name == NULL || c->rc < 0) {
      xds_free(env.name);
      xds_free(env.value);
      goto next;
    }
    if (env.from == WASM_ENV_HOST) {
      xds_free(env.value);
      env.value = NULL;
    }
    e->env[e->n_env++] = env;
  next:
    path_restore(c, m);
  }

done:
  path_restore(c, mark);
}

static void decode_config(struct dctx *c, const struct ynode *spec,
                          struct wasm_ext *e) {
  const struct ynode *v = field(spec, "config");
  size_t mark = path_key(c, "config");
  struct xds_buf b;
  struct jctx j;
  int rc;

  if (v == NULL || !want_map(c, v))
    goto done;
  xds_buf_init(&b, DECODE_MAX_CONFIG_JSON);
  memset(&j, 0, sizeof(j));
  j.out = &b;
  rc = json_node(&j, v);
  if (rc == XDS_EINVAL)
    bad(c, j.bad_node, "%s (%s) in config", j.why,
        ynode_text(j.bad_node, NULL) ? ynode_text(j.bad_node, NULL) : "");
  else if (rc == XDS_ETOOBIG)
    bad(c, v, "larger than %u bytes as JSON", DECODE_MAX_CONFIG_JSON);
  else if (rc < 0)
    c->rc = rc;
  else
    e->config_json = xds_buf_steal(&b, NULL);
  xds_buf_cleanup(&b);

done:
  path_restore(c, mark);
}

static void decode_sha256(struct dctx *c, const struct ynode *spec,
                          struct wasm_ext *e) {
  const struct ynode *v = get_str(c, spec, "sha256", 0, &e->sha256);
  size_t mark = path_key(c, "sha256"), n;

  if (e->sha256 == NULL)
    goto done;
  n = strlen(e->sha256);
  for (size_t i = 0; i < n; i++) {
    if (!isxdigit((unsigned char)e->sha256[i])) {
      n = 0;
      break;
    }
    e->sha256[i] = (char)tolower((unsigned char)e->sha256[i]);
  }
  if (n != 64)
    bad(c, v, "\"%s\" is not a sha256: expected 64 hexadecimal digits",
        ynode_text(v, NULL));

done:
  path_restore(c, mark);
}

static void decode_wasmext(struct dctx *c, const struct ynode *doc,
                           struct decode_result *out) {
  const struct ynode *meta = field(doc, "metadata"), *spec, *v;
  struct wasm_ext *e;
  size_t mark;
  int x;
  int64_t prio;

  e = xds_calloc(1, sizeof(*e));
  if (e == NULL) {
    c->rc = XDS_ENOMEM;
    return;
  }
  out->ext = e;
  e->loc.line = ynode_line(doc);
  e->loc.column = ynode_column(doc);
  e->loc.source = dup_or_oom(c, ynode_source(doc));

  /* metadata */
  if (meta == NULL) {
    mark = path_key(c, "metadata");
    bad(c, doc, "missing required field \"metadata\"");
    path_restore(c, mark);
  } else {
    size_t in;

    path_key(c, "metadata");
    in = c->plen;
    if (want_map(c, meta)) {
      check_keys(c, meta, EXT_META_KEYS);
      v = get_str(c, meta, "organization", 1, &e->organization);
      path_key(c, "organization");
      check_name(c, v, e->organization);
      path_restore(c, in);
      v = get_str(c, meta, "name", 1, &e->name);
      path_key(c, "name");
      check_name(c, v, e->name);
      path_restore(c, in);
    }
    path_restore(c, 0);
  }
  if (e->organization != NULL && e->name != NULL) {
    e->fqn = xds_asprintf("organizations/%s/extensions/%s", e->organization,
                          e->name);
    out->id = e->fqn != NULL ? xds_strdup(e->fqn) : NULL;
    if (out->id == NULL)
      c->rc = XDS_ENOMEM;
  }

  /* spec */
  spec = field(doc, "spec");
  mark = path_key(c, "spec");
  if (spec == NULL) {
    bad(c, doc, "missing required field \"spec\"");
    goto done;
  }
  if (!want_map(c, spec))
    goto done;
  check_keys(c, spec, EXT_SPEC_KEYS);
  decode_allowed_in(c, spec, e);
  decode_url(c, spec, e);
  get_str(c, spec, "source", 0, &e->source);
  get_str(c, spec, "description", 0, &e->description);
  x = WASM_PHASE_UNSPECIFIED;
  get_enum(c, spec, "phase", PHASES, &x);
  e->phase = (enum wasm_phase)x;
  if (get_int(c, spec, "priority", INT32_MIN, INT32_MAX,
              "int32: -2147483648..2147483647", &prio))
    e->priority = (int32_t)prio;
  decode_config(c, spec, e);
  x = WASM_PULL_UNSPECIFIED;
  get_enum(c, spec, "imagePullPolicy", PULL_POLICIES, &x);
  e->pull_policy = (enum wasm_pull_policy)x;
  get_str(c, spec, "imagePullSecret", 0, &e->pull_secret);
  v = field(spec, "vmConfig");
  if (v != NULL) {
    size_t m = path_key(c, "vmConfig");

    if (want_map(c, v)) {
      check_keys(c, v, VM_KEYS);
      decode_env(c, v, e);
      get_str(c, v, "vmId", 0, &e->vm_id);
      x = -1;
      get_enum(c, v, "runtime", RUNTIMES, &x);
      if (x >= 0)
        e->runtime = dup_or_oom(c, RUNTIMES[x]);
    }
    path_restore(c, m);
  }
  v = field(spec, "match");
  if (v != NULL) {
    size_t m = path_key(c, "match");

    if (want_map(c, v)) {
      check_keys(c, v, MATCH_KEYS);
      x = WASM_MATCH_CLIENT_AND_SERVER;
      get_enum(c, v, "mode", MATCH_MODES, &x);
      e->match_mode = (enum wasm_match_mode)x;
    }
    path_restore(c, m);
  }
  get_str(c, spec, "pluginName", 0, &e->plugin_name);
  x = WASM_FAIL_CLOSE;
  get_enum(c, spec, "failStrategy", FAIL_STRATEGIES, &x);
  e->fail_strategy = (enum wasm_fail_strategy)x;
  decode_sha256(c, spec, e);

done:
  path_restore(c, 0);
}

/* ---- ListenerTemplate ---- */

static const char *const TMPL_META_KEYS[] = {"name", NULL};
static const char *const TMPL_SPEC_KEYS[] = {
    "address",    "port",  "direction",   "selector",
    "statPrefix", "route", "httpFilters", NULL};
static const char *const SELECTOR_KEYS[] = {"mode", "labels", NULL};
static const char *const ROUTE_KEYS[] = {"cluster",    "prefix",     "rds",
                                         "rdsCluster", "rdsApiType", NULL};
/* Index is enum tmpl_rds_api. */
static const char *const RDS_API_TYPES[] = {"GRPC", "DELTA_GRPC", NULL};
static const char *const FILTER_KEYS[] = {"name", "phase", "typedConfig", NULL};
static const char *const DIRECTIONS[] = {"INBOUND", "OUTBOUND", NULL};
static const char *const PROXY_MODES[] = {"SIDECAR", "GATEWAY", NULL};
/* A filter anchors one of these; index + 1 is its enum wasm_phase. */
static const char *const ANCHORS[] = {"AUTHN", "AUTHZ", "STATS", NULL};

static int label_cmp(const void *a, const void *b) {
  return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

static void decode_selector(struct dctx *c, const struct ynode *spec,
                            struct listener_tmpl *t) {
  const struct ynode *sel = field(spec, "selector"), *labels;
  size_t mark = path_key(c, "selector"), n;
  int x = -1;

  if (sel == NULL || !want_map(c, sel))
    goto done;
  check_keys(c, sel, SELECTOR_KEYS);
  get_enum(c, sel, "mode", PROXY_MODES, &x);
  if (x >= 0) {
    t->has_mode = 1;
    t->mode = (enum proxy_mode)x;
  }
  labels = field(sel, "labels");
  path_key(c, "labels");
  if (labels == NULL || !want_map(c, labels))
    goto done;
  n = ynode_len(labels);
  if (n > DECODE_MAX_LABELS) {
    bad(c, labels, "more than %d labels", DECODE_MAX_LABELS);
    goto done;
  }
  if (n == 0)
    goto done;
  t->labels = xds_calloc(n, sizeof(*t->labels));
  if (t->labels == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *k = ynode_map_key(labels, i);
    const struct ynode *v = ynode_map_value(labels, i);
    const char *key = ynode_text(k, NULL), *val;
    size_t m = path_key(c, key);

    if (key[0] == '\0' || ynode_scalar_type(k) != YSCALAR_STR) {
      bad(c, k, "a label key must be a non-empty string");
      path_restore(c, m);
      continue;
    }
    val = want_str(c, v);
    if (val != NULL) {
      struct label *l = &t->labels[t->n_labels];

      l->key = dup_or_oom(c, key);
      l->value = dup_or_oom(c, val);
      t->n_labels++;
    }
    path_restore(c, m);
  }
  if (c->rc == 0)
    qsort(t->labels, t->n_labels, sizeof(*t->labels), label_cmp);

done:
  path_restore(c, mark);
}

/* Reports the string field key of the current mapping, at v, as empty when
 * it is a string (want_str already reported any other type). */
static void empty_at(struct dctx *c, const char *key, const struct ynode *v) {
  size_t m = path_key(c, key);

  if (ynode_kind(v) == YNODE_SCALAR && ynode_scalar_type(v) == YSCALAR_STR &&
      ynode_text(v, NULL)[0] == '\0')
    bad(c, v, "must not be empty");
  path_restore(c, m);
}

static void decode_route(struct dctx *c, const struct ynode *spec,
                         struct listener_tmpl *t) {
  const struct ynode *r = field(spec, "route"), *vc, *vp, *vr, *vrc, *vra;
  size_t mark = path_key(c, "route");
  int api = TMPL_RDS_GRPC;

  if (r == NULL) {
    bad(c, spec, "missing required field \"route\" (set cluster or rds)");
    goto done;
  }
  if (!want_map(c, r))
    goto done;
  check_keys(c, r, ROUTE_KEYS);
  vc = get_str(c, r, "cluster", 0, &t->route_cluster);
  vp = get_str(c, r, "prefix", 0, &t->route_prefix);
  vr = get_str(c, r, "rds", 0, &t->rds_name);
  vrc = get_str(c, r, "rdsCluster", 0, &t->rds_cluster);
  vra = get_enum(c, r, "rdsApiType", RDS_API_TYPES, &api);
  if ((vc != NULL) == (vr != NULL)) {
    bad(c, r, "set exactly one of \"cluster\" or \"rds\"");
    goto done;
  }
  if (vr != NULL) {
    t->route_kind = TMPL_ROUTE_RDS;
    t->rds_api = (enum tmpl_rds_api)api;
    if (vp != NULL) {
      size_t m = path_key(c, "prefix");

      bad(c, vp,
          "\"prefix\" applies to cluster routes only; an RDS route "
          "config has its own routes");
      path_restore(c, m);
    }
    if (t->rds_name == NULL)
      empty_at(c, "rds", vr);
    if (vrc != NULL && t->rds_cluster == NULL)
      empty_at(c, "rdsCluster", vrc);
    else if (vrc == NULL)
      bad(c, r,
          "\"rds\" needs \"rdsCluster\": the bootstrap cluster of "
          "the xDS server that serves route configurations (wasmxds "
          "does not serve RDS)");
    goto done;
  }
  t->route_kind = TMPL_ROUTE_CLUSTER;
  if (t->route_cluster == NULL)
    empty_at(c, "cluster", vc);
  if (vrc != NULL || vra != NULL) {
    size_t m = path_key(c, vrc != NULL ? "rdsCluster" : "rdsApiType");

    bad(c, vrc != NULL ? vrc : vra,
        "applies to RDS routes only (set with \"rds\")");
    path_restore(c, m);
  }
  if (t->route_prefix != NULL && t->route_prefix[0] != '/') {
    path_key(c, "prefix");
    bad(c, vp, "\"%s\" must start with '/'", t->route_prefix);
  }
  if (t->route_prefix == NULL && vp == NULL)
    t->route_prefix = dup_or_oom(c, "/");

done:
  path_restore(c, mark);
}

/* "type.googleapis.com/a.b.C" or a bare "a.b.C" -> the full URL, or NULL
 * (reported, or OOM). */
static char *type_url(struct dctx *c, const struct ynode *at, const char *s) {
  const char *msg = strrchr(s, '/');
  char *out;
  size_t start = 0;
  int dots = 0;

  msg = msg != NULL ? msg + 1 : s;
  /* A message name: identifiers joined by dots, at least one dot. */
  for (size_t i = 0;; i++) {
    if (msg[i] == '.' || msg[i] == '\0') {
      if (!is_ident(msg + start, i - start)) {
        dots = -1;
        break;
      }
      if (msg[i] == '\0')
        break;
      dots++;
      start = i + 1;
    }
  }
  if (dots <= 0 || (msg != s && msg == s + 1)) {
    bad(c, at,
        "\"%s\" is not a type URL (type.googleapis.com/<package>.<Message>) "
        "or a message name",
        s);
    return NULL;
  }
  out = msg == s ? xds_asprintf(DECODE_TYPE_URL_PREFIX "%s", s) : xds_strdup(s);
  if (out == NULL)
    c->rc = XDS_ENOMEM;
  return out;
}

static void decode_filters(struct dctx *c, const struct ynode *spec,
                           struct listener_tmpl *t) {
  const struct ynode *v = field(spec, "httpFilters");
  size_t mark = path_key(c, "httpFilters"), n;
  int router_at = -1, unknown_types = 0;

  if (v == NULL) {
    bad(c, spec,
        "missing required field \"httpFilters\": the router "
        "filter (" DECODE_ROUTER_MSG ") must be the last filter");
    goto done;
  }
  if (!want_seq(c, v))
    goto done;
  n = ynode_len(v);
  if (n > DECODE_MAX_FILTERS) {
    bad(c, v, "more than %d filters", DECODE_MAX_FILTERS);
    goto done;
  }
  if (n > 0) {
    t->filters = xds_calloc(n, sizeof(*t->filters));
    if (t->filters == NULL) {
      c->rc = XDS_ENOMEM;
      goto done;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i), *vn, *tc;
    size_t m = path_index(c, i), in = c->plen;
    struct native_filter *f = &t->filters[t->n_filters];
    char *type = NULL;
    int x = -1;

    if (!want_map(c, item))
      goto next;
    check_keys(c, item, FILTER_KEYS);
    t->n_filters++; /* from here f is owned by t */
    f->loc.line = ynode_line(item);
    f->loc.column = ynode_column(item);
    f->loc.source = dup_or_oom(c, ynode_source(item));
    vn = get_str(c, item, "name", 1, &f->name);
    for (size_t k = 0; f->name != NULL && k + 1 < t->n_filters; k++)
      if (t->filters[k].name != NULL &&
          strcmp(t->filters[k].name, f->name) == 0) {
        size_t mk = path_key(c, "name");

        bad(c, vn, "duplicate filter name \"%s\" (first at line %d)", f->name,
            t->filters[k].loc.line);
        path_restore(c, mk);
        break;
      }
    get_enum(c, item, "phase", ANCHORS, &x);
    f->anchor = x >= 0 ? (enum wasm_phase)(x + 1) : WASM_PHASE_UNSPECIFIED;
    tc = field(item, "typedConfig");
    path_key(c, "typedConfig");
    if (tc == NULL) {
      bad(c, item, "missing required field \"typedConfig\"");
      unknown_types++;
      goto next;
    }
    if (!want_map(c, tc)) {
      unknown_types++;
      goto next;
    }
    get_str(c, tc, "@type", 1, &type);
    if (type != NULL) {
      size_t mk = path_key(c, "@type");

      f->type_url = type_url(c, ynode_map_get(tc, "@type"), type);
      path_restore(c, mk);
      xds_free(type);
    }
    if (f->type_url != NULL) {
      const char *msg = strrchr(f->type_url, '/') + 1;

      f->is_router = strcmp(msg, DECODE_ROUTER_MSG) == 0;
    } else {
      unknown_types++;
    }
    f->typed_config = ynode_clone(tc);
    if (f->typed_config == NULL)
      c->rc = XDS_ENOMEM;
    path_restore(c, in);
    if (router_at >= 0) {
      bad(c, item,
          "filter after the router (line %d): the router must be "
          "the last HTTP filter",
          t->filters[router_at].loc.line);
    }
    if (f->is_router && router_at < 0)
      router_at = (int)t->n_filters - 1;
  next:
    path_restore(c, m);
  }
  /* Without a router, say so, unless a filter's type could not be read
   * (it may have been meant as the router). */
  if (router_at < 0 && unknown_types == 0)
    bad(c, v,
        "no router filter (" DECODE_ROUTER_MSG "): the router must be "
        "the last HTTP filter");

done:
  path_restore(c, mark);
}

static void decode_tmpl(struct dctx *c, const struct ynode *doc,
                        struct decode_result *out) {
  const struct ynode *meta = field(doc, "metadata"), *spec, *v;
  struct listener_tmpl *t;
  int64_t port;
  size_t mark;
  int x;

  t = xds_calloc(1, sizeof(*t));
  if (t == NULL) {
    c->rc = XDS_ENOMEM;
    return;
  }
  out->tmpl = t;
  t->loc.line = ynode_line(doc);
  t->loc.column = ynode_column(doc);
  t->loc.source = dup_or_oom(c, ynode_source(doc));

  mark = path_key(c, "metadata");
  if (meta == NULL) {
    bad(c, doc, "missing required field \"metadata\"");
  } else if (want_map(c, meta)) {
    check_keys(c, meta, TMPL_META_KEYS);
    v = get_str(c, meta, "name", 1, &t->name);
    path_key(c, "name");
    check_name(c, v, t->name);
    if (t->name != NULL && (out->id = xds_strdup(t->name)) == NULL)
      c->rc = XDS_ENOMEM;
  }
  path_restore(c, 0);

  spec = field(doc, "spec");
  path_key(c, "spec");
  mark = c->plen;
  if (spec == NULL) {
    bad(c, doc, "missing required field \"spec\"");
    goto done;
  }
  if (!want_map(c, spec))
    goto done;
  check_keys(c, spec, TMPL_SPEC_KEYS);
  v = get_str(c, spec, "address", 0, &t->address);
  if (t->address != NULL) {
    unsigned char addr[16];

    if (inet_pton(AF_INET, t->address, addr) != 1 &&
        inet_pton(AF_INET6, t->address, addr) != 1) {
      path_key(c, "address");
      bad(c, v, "\"%s\" is not an IPv4 or IPv6 address", t->address);
      path_restore(c, mark);
    }
  } else {
    t->address = dup_or_oom(c, "0.0.0.0");
  }
  if (ynode_map_get(spec, "port") == NULL ||
      ynode_kind(ynode_map_get(spec, "port")) == YNODE_NULL) {
    path_key(c, "port");
    bad(c, spec, "missing required field \"port\"");
    path_restore(c, mark);
  } else if (get_int(c, spec, "port", 1, 65535, "1..65535", &port)) {
    t->port = (uint32_t)port;
  }
  x = -1;
  get_enum(c, spec, "direction", DIRECTIONS, &x);
  if (x < 0 && field(spec, "direction") == NULL) {
    path_key(c, "direction");
    bad(c, spec,
        "missing required field \"direction\" (INBOUND or "
        "OUTBOUND)");
    path_restore(c, mark);
  }
  t->direction = x == 1 ? TMPL_OUTBOUND : TMPL_INBOUND;
  decode_selector(c, spec, t);
  get_str(c, spec, "statPrefix", 0, &t->stat_prefix);
  if (t->stat_prefix == NULL && t->name != NULL)
    t->stat_prefix = dup_or_oom(c, t->name);
  decode_route(c, spec, t);
  decode_filters(c, spec, t);

done:
  path_restore(c, 0);
}

/* ---- documents ---- */

int decode_document(const struct ynode *doc, struct problems *pb,
                    struct decode_result *out) {
  struct dctx c;
  char *api = NULL, *kind = NULL;
  const struct ynode *va, *vk;

  memset(out, 0, sizeof(*out));
  memset(&c, 0, sizeof(c));
  c.pb = pb;
  if (!want_map(&c, doc))
    goto done;
  va = get_str(&c, doc, "apiVersion", 1, &api);
  vk = get_str(&c, doc, "kind", 1, &kind);
  if (api == NULL || kind == NULL)
    goto done;
  if (strcmp(api, DECODE_WASMEXT_API) == 0 &&
      strcmp(kind, DECODE_WASMEXT_KIND) == 0) {
    out->kind = DECODE_WASM_EXT;
  } else if (strcmp(api, DECODE_TMPL_API) == 0 &&
             strcmp(kind, DECODE_TMPL_KIND) == 0) {
    out->kind = DECODE_LISTENER_TMPL;
  } else {
    int api_known = strcmp(api, DECODE_WASMEXT_API) == 0 ||
                    strcmp(api, DECODE_TMPL_API) == 0;

    path_key(&c, api_known ? "kind" : "apiVersion");
    bad(&c, api_known ? vk : va,
        "unsupported resource %s %s: expected " DECODE_WASMEXT_API
        " " DECODE_WASMEXT_KIND " or " DECODE_TMPL_API " " DECODE_TMPL_KIND,
        api, kind);
    goto done;
  }
  check_keys(&c, doc, TOP_KEYS);
  if (out->kind == DECODE_WASM_EXT)
    decode_wasmext(&c, doc, out);
  else
    decode_tmpl(&c, doc, out);

done:
  xds_free(api);
  xds_free(kind);
  if (c.rc < 0 || c.errors > 0) {
    wasm_ext_free(out->ext);
    listener_tmpl_free(out->tmpl);
    out->ext = NULL;
    out->tmpl = NULL;
  }
  if (c.rc < 0) {
    decode_result_cleanup(out);
    return c.rc;
  }
  return c.errors > 0 ? XDS_EINVAL : 0;
}

void decode_result_cleanup(struct decode_result *out) {
  wasm_ext_free(out->ext);
  listener_tmpl_free(out->tmpl);
  xds_free(out->id);
  memset(out, 0, sizeof(*out));
}
