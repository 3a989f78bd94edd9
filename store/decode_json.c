/*
 * decode_json.c: any YAML node -> compact JSON (decode_json() in decode.h),
 * for a WasmExtension's spec.config and for the native filters' typed
 * configs. Plain scalars are typed by the YAML 1.2 core schema; every value
 * without a JSON form (.inf, .nan, an unknown tag) is an error naming its
 * node. The output is bounded by the buffer's limit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/decode.h"
#include "store/decode_priv.h"
#include "store/ydoc.h"

/* The state of one rendering: where the output goes and, on XDS_EINVAL,
 * which node had no JSON form and why. */
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
    size_t run = i;

    /* A run of bytes that need no escape goes in with one append. */
    while (run < len && (unsigned char)s[run] >= 0x20 && s[run] != '"' &&
           s[run] != '\\' && s[run] != 0x7f)
      run++;
    if (run > i) {
      rc = xds_buf_append(b, s + i, run - i);
      i = run - 1;
      continue;
    }
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

int decode_json_put(struct xds_buf *out, const struct ynode *n,
                    const struct ynode **bad_node, const char **why) {
  struct jctx j = {out, NULL, NULL, 0};
  int rc = json_node(&j, n);

  if (rc == XDS_EINVAL) {
    *bad_node = j.bad_node;
    *why = j.why;
  }
  return rc;
}

int decode_json(const struct ynode *n, size_t max, char **json,
                struct xds_err *err) {
  const struct ynode *at = NULL;
  const char *why = NULL;
  struct xds_buf b;
  int rc;

  *json = NULL;
  xds_buf_init(&b, max);
  rc = decode_json_put(&b, n, &at, &why);
  if (rc == XDS_EINVAL) {
    xds_err_set(err, rc, "%s:%d:%d: %s (%s)", ynode_source(at), ynode_line(at),
                ynode_column(at), why,
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
