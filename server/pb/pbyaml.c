/*
 * pbyaml.c: the descriptor walk behind pbyaml.h.
 *
 * Messages are built in an arena with the descriptor's own init function,
 * so defaults are right and nothing needs freeing one by one; the finished
 * message is packed by protobuf-c into the same arena.
 */
#include "server/pb/pbyaml.h"
#include "server/pb/pbdesc.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "server/pb/typeurl.h"

#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "envoy/extensions/filters/http/lua/v3/lua.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/filters/network/wasm/v3/wasm.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

/* Longest field path kept in messages. */
#define PATH_MAX_LEN 512

/* Every message an "@type" may name. http_filter marks the ones that may
 * be the typedConfig of a native HTTP filter; the others are known so that
 * nested Anys and rendered resources can be expanded. */
static const struct {
  const ProtobufCMessageDescriptor *desc;
  int http_filter;
} registry[] = {
    {&envoy__extensions__filters__http__router__v3__router__descriptor, 1},
    {&envoy__extensions__filters__http__rbac__v3__rbac__descriptor, 1},
    {&envoy__extensions__filters__http__wasm__v3__wasm__descriptor, 1},
    {&envoy__extensions__filters__http__lua__v3__lua__descriptor, 1},
    {&envoy__extensions__filters__http__cors__v3__cors__descriptor, 1},
    {&envoy__extensions__filters__http__lua__v3__lua_per_route__descriptor, 0},
    {&envoy__extensions__filters__http__cors__v3__cors_policy__descriptor, 0},
    {&envoy__config__rbac__v3__rbac__descriptor, 0},
    {&envoy__config__listener__v3__listener__descriptor, 0},
    {&envoy__config__core__v3__typed_extension_config__descriptor, 0},
    {&envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
     0},
    {&envoy__extensions__filters__network__wasm__v3__wasm__descriptor, 0},
    {&envoy__extensions__filters__network__rbac__v3__rbac__descriptor, 0},
    {&envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor,
     0},
    {&envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__descriptor,
     0},
    {&google__protobuf__struct__descriptor, 0},
    {&google__protobuf__string_value__descriptor, 0},
};

const ProtobufCMessageDescriptor *pbyaml_find_type(const char *full_name) {
  for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
    if (strcmp(registry[i].desc->name, full_name) == 0)
      return registry[i].desc;
  return NULL;
}

int pbyaml_is_http_filter(const char *full_name) {
  for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
    if (strcmp(registry[i].desc->name, full_name) == 0)
      return registry[i].http_filter;
  return 0;
}

struct conv {
  struct xds_arena *a;
  struct xds_err *err;
  int depth;
  struct pbyaml_fault *fault; /* nullable */
};

static int fail(struct conv *c, const struct ynode *n, const char *path,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct conv *c, const struct ynode *n, const char *path,
                const char *fmt, ...) {
  char msg[320];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (c->fault != NULL) {
    c->fault->source = ynode_source(n);
    c->fault->line = ynode_line(n);
    c->fault->column = ynode_column(n);
    snprintf(c->fault->path, sizeof(c->fault->path), "%s", path);
    snprintf(c->fault->msg, sizeof(c->fault->msg), "%s", msg);
  }
  return xds_err_set(c->err, XDS_EINVAL, "%s:%d:%d: %s: %s", ynode_source(n),
                     ynode_line(n), ynode_column(n), path, msg);
}

static int oom(struct conv *c) {
  return xds_err_set(c->err, XDS_ENOMEM, "out of memory");
}

static void join(char *out, const char *path, const char *key) {
  snprintf(out, PATH_MAX_LEN, "%s.%s", path, key);
}

static void join_index(char *out, const char *path, size_t i) {
  snprintf(out, PATH_MAX_LEN, "%s[%zu]", path, i);
}

/* fooBarBaz -> foo_bar_baz, into out (size n). */
static void camel_to_snake(const char *in, char *out, size_t n) {
  size_t j = 0;

  for (; *in && j + 2 < n; in++) {
    if (*in >= 'A' && *in <= 'Z') {
      out[j++] = '_';
      out[j++] = (char)(*in - 'A' + 'a');
    } else {
      out[j++] = *in;
    }
  }
  out[j] = '\0';
}

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, const char *key) {
  const ProtobufCFieldDescriptor *f;
  char snake[256];

  f = protobuf_c_message_descriptor_get_field_by_name(d, key);
  if (f != NULL)
    return f;
  camel_to_snake(key, snake, sizeof(snake));
  return protobuf_c_message_descriptor_get_field_by_name(d, snake);
}

static int to_message(struct conv *c, const struct ynode *n,
                      const ProtobufCMessageDescriptor *d, const char *path,
                      int skip_type, ProtobufCMessage **out);

/* Integers from YAML integers, or from strings of digits (proto JSON writes
 * 64-bit integers as strings). */
/* "[-+]?[0-9]+" exactly: what proto JSON accepts for a quoted integer. */
static int is_int_text(const char *t) {
  if (*t == '-' || *t == '+')
    t++;
  if (*t < '0' || *t > '9')
    return 0;
  while (*t >= '0' && *t <= '9')
    t++;
  return *t == '\0';
}

/* Integers from YAML integers, or from strings of digits (proto JSON writes
 * 64-bit integers as strings). */
static int scalar_int(struct conv *c, const struct ynode *n, const char *path,
                      int64_t *v) {
  const char *text;
  char *end;

  if (ynode_scalar_type(n) == YSCALAR_INT) {
    if (ynode_int64(n, v) == 0)
      return 0;
    return fail(c, n, path, "integer out of range");
  }
  if (ynode_scalar_type(n) == YSCALAR_STR) {
    text = ynode_text(n, NULL);
    errno = 0;
    if (is_int_text(text)) {
      *v = strtoll(text, &end, 10);
      if (errno == 0 && *end == '\0')
        return 0;
      return fail(c, n, path, "integer out of range");
    }
  }
  return fail(c, n, path, "expected an integer, got %s", ynode_describe(n));
}

/* Unsigned 64-bit integers: up to 18446744073709551615. */
static int scalar_uint(struct conv *c, const struct ynode *n, const char *path,
                       uint64_t *v) {
  const char *text = ynode_text(n, NULL);
  char *end;

  if (text != NULL &&
      (ynode_scalar_type(n) == YSCALAR_INT ||
       ynode_scalar_type(n) == YSCALAR_STR) &&
      is_int_text(text)) {
    if (text[0] == '-')
      return fail(c, n, path, "%s is negative", text);
    errno = 0;
    *v = strtoull(text, &end, 10);
    if (errno == 0 && *end == '\0')
      return 0;
    return fail(c, n, path, "integer out of range");
  }
  return fail(c, n, path, "expected an integer, got %s", ynode_describe(n));
}

static int base64_decode(struct xds_arena *a, const char *s,
                         ProtobufCBinaryData *out) {
  size_t len = strlen(s), j = 0;
  uint32_t acc = 0;
  int bits = 0;
  uint8_t *p = xds_arena_alloc(a, len + 1);

  if (p == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    int v;
    if (ch >= 'A' && ch <= 'Z')
      v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      v = ch - '0' + 52;
    else if (ch == '+' || ch == '-')
      v = 62;
    else if (ch == '/' || ch == '_')
      v = 63;
    else if (ch == '=' || ch == '\n' || ch == '\r' || ch == ' ')
      continue;
    else
      return XDS_EINVAL;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      p[j++] = (uint8_t)(acc >> bits);
    }
  }
  out->data = p;
  out->len = j;
  return 0;
}

/* One value of field f (a single element of a repeated field) into dst. */
static int convert_elem(struct conv *c, const ProtobufCFieldDescriptor *f,
                        const struct ynode *n, void *dst, const char *path) {
  int64_t iv;
  double dv;
  int bv, rc;
  const char *text;

  if (f->type != PROTOBUF_C_TYPE_MESSAGE && ynode_kind(n) != YNODE_SCALAR &&
      ynode_kind(n) != YNODE_NULL)
    return fail(c, n, path, "expected a scalar, got %s", ynode_describe(n));
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if ((rc = scalar_int(c, n, path, &iv)) < 0)
      return rc;
    if (iv < INT32_MIN || iv > INT32_MAX)
      return fail(c, n, path, "%" PRId64 " does not fit an int32", iv);
    *(int32_t *)dst = (int32_t)iv;
    return 0;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if ((rc = scalar_int(c, n, path, &iv)) < 0)
      return rc;
    if (iv < 0 || iv > (int64_t)UINT32_MAX)
      return fail(c, n, path, "%" PRId64 " does not fit a uint32", iv);
    *(uint32_t *)dst = (uint32_t)iv;
    return 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if ((rc = scalar_int(c, n, path, &iv)) < 0)
      return rc;
    *(int64_t *)dst = iv;
    return 0;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return scalar_uint(c, n, path, (uint64_t *)dst);
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_DOUBLE:
    if (ynode_double(n, &dv) < 0)
      return fail(c, n, path, "expected a number, got %s", ynode_describe(n));
    if (f->type == PROTOBUF_C_TYPE_FLOAT)
      *(float *)dst = (float)dv;
    else
      *(double *)dst = dv;
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (ynode_bool(n, &bv) < 0)
      return fail(c, n, path, "expected true or false, got %s",
                  ynode_describe(n));
    *(protobuf_c_boolean *)dst = bv ? 1 : 0;
    return 0;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    const ProtobufCEnumValue *ev;
    if (ynode_scalar_type(n) == YSCALAR_INT) {
      if ((rc = scalar_int(c, n, path, &iv)) < 0)
        return rc;
      if (iv < INT32_MIN || iv > INT32_MAX ||
          (ev = protobuf_c_enum_descriptor_get_value(ed, (int)iv)) == NULL)
        return fail(c, n, path, "%" PRId64 " is not a value of enum %s", iv,
                    ed->name);
    } else {
      text = ynode_text(n, NULL);
      ev = protobuf_c_enum_descriptor_get_value_by_name(ed, text);
      if (ev == NULL)
        return fail(c, n, path, "\"%s\" is not a value of enum %s", text,
                    ed->name);
    }
    *(int *)dst = ev->value;
    return 0;
  }
  case PROTOBUF_C_TYPE_STRING:
    /* As protobuf JSON: a string field takes a string; a plain 12 or
     * true is a number or a boolean (quote it). */
    if (ynode_scalar_type(n) != YSCALAR_STR)
      return fail(c, n, path, "expected a string, got %s (quote it)",
                  ynode_describe(n));
    text = ynode_text(n, NULL);
    *(char **)dst = xds_arena_strdup(c->a, text);
    return *(char **)dst == NULL ? oom(c) : 0;
  case PROTOBUF_C_TYPE_BYTES:
    rc = base64_decode(c->a, ynode_text(n, NULL), dst);
    if (rc == XDS_ENOMEM)
      return oom(c);
    if (rc < 0)
      return fail(c, n, path, "expected base64 bytes");
    return 0;
  case PROTOBUF_C_TYPE_MESSAGE:
    return to_message(c, n, f->descriptor, path, 0, (ProtobufCMessage **)dst);
  }
  return fail(c, n, path, "unsupported field type");
}

/* A map field from a YAML mapping: one entry message per key. */
static int convert_map(struct conv *c, const ProtobufCFieldDescriptor *f,
                       const struct ynode *n, char *msg, const char *path) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  size_t len = ynode_len(n);
  ProtobufCMessage **entries;
  char sub[PATH_MAX_LEN];
  int rc;

  if (ynode_kind(n) != YNODE_MAPPING)
    return fail(c, n, path, "expected a mapping, got %s", ynode_describe(n));
  entries = xds_arena_alloc(c->a, (len + 1) * sizeof(*entries));
  if (entries == NULL)
    return oom(c);
  for (size_t i = 0; i < len; i++) {
    const struct ynode *k = ynode_map_key(n, i), *v = ynode_map_value(n, i);
    char *e = xds_arena_alloc(c->a, ed->sizeof_message);
    if (e == NULL)
      return oom(c);
    ed->message_init((ProtobufCMessage *)e);
    snprintf(sub, sizeof(sub), "%s[\"%s\"]", path, ynode_text(k, NULL));
    rc = convert_elem(c, &ed->fields[0], k, e + ed->fields[0].offset, sub);
    if (rc == 0)
      rc = convert_elem(c, &ed->fields[1], v, e + ed->fields[1].offset, sub);
    if (rc < 0)
      return rc;
    entries[i] = (ProtobufCMessage *)e;
  }
  *(size_t *)(msg + f->quantifier_offset) = len;
  *(void **)(msg + f->offset) = entries;
  return 0;
}

static int set_field(struct conv *c, char *msg,
                     const ProtobufCMessageDescriptor *d,
                     const ProtobufCFieldDescriptor *f, const struct ynode *n,
                     const char *path) {
  char sub[PATH_MAX_LEN];
  int rc;

  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t len, size;
    char *arr;
    if (ynode_kind(n) == YNODE_NULL)
      return 0;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
        pbdesc_is_map_entry(f->descriptor))
      return convert_map(c, f, n, msg, path);
    if (ynode_kind(n) != YNODE_SEQUENCE)
      return fail(c, n, path, "expected a list, got %s", ynode_describe(n));
    len = ynode_len(n);
    size = pbdesc_elem_size(f);
    arr = xds_arena_alloc(c->a, (len + 1) * size);
    if (arr == NULL)
      return oom(c);
    for (size_t i = 0; i < len; i++) {
      join_index(sub, path, i);
      rc = convert_elem(c, f, ynode_seq_item(n, i), arr + i * size, sub);
      if (rc < 0)
        return rc;
    }
    *(size_t *)(msg + f->quantifier_offset) = len;
    *(void **)(msg + f->offset) = arr;
    return 0;
  }
  /* null means "not set", for every singular field (a oneof member
   * included). */
  if (ynode_kind(n) == YNODE_NULL)
    return 0;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *which = (uint32_t *)(msg + f->quantifier_offset);
    if (*which != 0 && *which != f->id) {
      const ProtobufCFieldDescriptor *other =
          protobuf_c_message_descriptor_get_field(d, *which);
      return fail(c, n, path, "only one of %s and %s may be set", f->name,
                  other != NULL ? other->name : "another field");
    }
    *which = f->id;
  } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
             f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING) {
    *(protobuf_c_boolean *)(msg + f->quantifier_offset) = 1;
  }
  return convert_elem(c, f, n, msg + f->offset, path);
}

static int new_message(struct conv *c, const ProtobufCMessageDescriptor *d,
                       char **out) {
  *out = xds_arena_alloc(c->a, d->sizeof_message);
  if (*out == NULL)
    return oom(c);
  d->message_init((ProtobufCMessage *)*out);
  return 0;
}

static int to_value(struct conv *c, const struct ynode *n, const char *path,
                    Google__Protobuf__Value **out);

static int to_struct(struct conv *c, const struct ynode *n, const char *path,
                     Google__Protobuf__Struct **out) {
  Google__Protobuf__Struct *st;
  char sub[PATH_MAX_LEN];
  size_t len;
  int rc;

  if (ynode_kind(n) != YNODE_MAPPING)
    return fail(c, n, path, "expected a mapping, got %s", ynode_describe(n));
  if ((rc = new_message(c, &google__protobuf__struct__descriptor,
                        (char **)&st)) < 0)
    return rc;
  len = ynode_len(n);
  st->fields = xds_arena_alloc(c->a, (len + 1) * sizeof(*st->fields));
  if (st->fields == NULL)
    return oom(c);
  for (size_t i = 0; i < len; i++) {
    Google__Protobuf__Struct__FieldsEntry *e;
    const char *key = ynode_text(ynode_map_key(n, i), NULL);
    if ((rc =
             new_message(c, &google__protobuf__struct__fields_entry__descriptor,
                         (char **)&e)) < 0)
      return rc;
    e->key = xds_arena_strdup(c->a, key);
    if (e->key == NULL)
      return oom(c);
    join(sub, path, key);
    if ((rc = to_value(c, ynode_map_value(n, i), sub, &e->value)) < 0)
      return rc;
    st->fields[st->n_fields++] = e;
  }
  *out = st;
  return 0;
}

static int to_list(struct conv *c, const struct ynode *n, const char *path,
                   Google__Protobuf__ListValue **out) {
  Google__Protobuf__ListValue *lv;
  char sub[PATH_MAX_LEN];
  size_t len = ynode_len(n);
  int rc;

  if ((rc = new_message(c, &google__protobuf__list_value__descriptor,
                        (char **)&lv)) < 0)
    return rc;
  lv->values = xds_arena_alloc(c->a, (len + 1) * sizeof(*lv->values));
  if (lv->values == NULL)
    return oom(c);
  for (size_t i = 0; i < len; i++) {
    join_index(sub, path, i);
    if ((rc = to_value(c, ynode_seq_item(n, i), sub, &lv->values[i])) < 0)
      return rc;
    lv->n_values++;
  }
  *out = lv;
  return 0;
}

static int to_value(struct conv *c, const struct ynode *n, const char *path,
                    Google__Protobuf__Value **out) {
  Google__Protobuf__Value *v;
  int rc, b;

  if (++c->depth > PBYAML_MAX_DEPTH) {
    c->depth--;
    return fail(c, n, path, "nested deeper than %d levels", PBYAML_MAX_DEPTH);
  }
  if ((rc = new_message(c, &google__protobuf__value__descriptor, (char **)&v)) <
      0)
    goto out;
  switch (ynode_kind(n)) {
  case YNODE_NULL:
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
    v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
    break;
  case YNODE_MAPPING:
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    rc = to_struct(c, n, path, &v->struct_value);
    break;
  case YNODE_SEQUENCE:
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    rc = to_list(c, n, path, &v->list_value);
    break;
  case YNODE_SCALAR:
    switch (ynode_scalar_type(n)) {
    case YSCALAR_BOOL:
      ynode_bool(n, &b);
      v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
      v->bool_value = b;
      break;
    case YSCALAR_INT:
    case YSCALAR_FLOAT:
      v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
      if (ynode_double(n, &v->number_value) < 0)
        rc = fail(c, n, path, "number out of range");
      break;
    case YSCALAR_NULL:
      v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
      break;
    default:
      v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
      v->string_value = xds_arena_strdup(c->a, ynode_text(n, NULL));
      if (v->string_value == NULL)
        rc = oom(c);
    }
    break;
  }
  *out = v;
out:
  c->depth--;
  return rc;
}

/* "30s", "1.5s", "-2s", "250ms". */
static int to_duration(struct conv *c, const struct ynode *n, const char *path,
                       Google__Protobuf__Duration **out) {
  Google__Protobuf__Duration *d;
  const char *text = ynode_text(n, NULL), *p;
  double secs;
  char *end;
  int rc;

  if (ynode_kind(n) != YNODE_SCALAR)
    return fail(c, n, path, "expected a duration like \"30s\", got %s",
                ynode_describe(n));
  errno = 0;
  secs = strtod(text, &end);
  p = end;
  if (errno != 0 || end == text || !isfinite(secs) ||
      (strcmp(p, "s") != 0 && strcmp(p, "ms") != 0))
    return fail(c, n, path,
                "\"%s\" is not a duration like \"30s\" or "
                "\"1.5s\" or \"250ms\"",
                text);
  if (strcmp(p, "ms") == 0)
    secs /= 1000.0;
  if (fabs(secs) > 315576000000.0)
    return fail(c, n, path, "duration \"%s\" is out of range", text);
  if ((rc = new_message(c, &google__protobuf__duration__descriptor,
                        (char **)&d)) < 0)
    return rc;
  d->seconds = (int64_t)secs;
  d->nanos = (int32_t)llround((secs - (double)d->seconds) * 1e9);
  *out = d;
  return 0;
}

static int to_any(struct conv *c, const struct ynode *n, const char *path,
                  Google__Protobuf__Any **out) {
  const struct ynode *t;
  const ProtobufCMessageDescriptor *d;
  Google__Protobuf__Any *any;
  ProtobufCMessage *m;
  const char *url, *name;
  int rc;

  if (ynode_kind(n) != YNODE_MAPPING)
    return fail(c, n, path, "expected a mapping with \"@type\", got %s",
                ynode_describe(n));
  t = ynode_map_get(n, "@type");
  if (t == NULL || ynode_kind(t) != YNODE_SCALAR || ynode_text(t, NULL) == NULL)
    return fail(c, t != NULL ? t : n, path, "an Any needs an \"@type\" string");
  url = ynode_text(t, NULL);
  name = strrchr(url, '/');
  name = name != NULL ? name + 1 : url;
  d = pbyaml_find_type(name);
  if (d == NULL)
    return fail(c, t, path,
                "unknown @type \"%s\": wasmxds has no "
                "descriptor for it (add its messages to proto/)",
                url);
  if (strncmp(d->name, "google.protobuf.", 16) == 0 &&
      ynode_map_get(n, "value") != NULL &&
      (ynode_len(n) == 2 || strcmp(d->name, "google.protobuf.Struct") != 0)) {
    /* Proto JSON writes an Any of a well-known type as its "@type" and
     * the type's JSON form under "value". */
    char sub[PATH_MAX_LEN];
    join(sub, path, "value");
    rc = to_message(c, ynode_map_get(n, "value"), d, sub, 0, &m);
  } else {
    rc = to_message(c, n, d, path, 1, &m);
  }
  if (rc < 0)
    return rc;
  if ((rc = new_message(c, &google__protobuf__any__descriptor, (char **)&any)) <
      0)
    return rc;
  if (strchr(url, '/') != NULL) {
    any->type_url = xds_arena_strdup(c->a, url);
  } else {
    size_t len = strlen(TYPE_PREFIX) + strlen(url) + 1;
    any->type_url = xds_arena_alloc(c->a, len);
    if (any->type_url != NULL)
      snprintf(any->type_url, len, "%s%s", TYPE_PREFIX, url);
  }
  if (any->type_url == NULL)
    return oom(c);
  any->value.len = protobuf_c_message_get_packed_size(m);
  any->value.data = xds_arena_alloc(c->a, any->value.len);
  if (any->value.data == NULL)
    return oom(c);
  protobuf_c_message_pack(m, any->value.data);
  *out = any;
  return 0;
}

static int is_wrapper(const ProtobufCMessageDescriptor *d) {
  return strncmp(d->name, "google.protobuf.", 16) == 0 &&
         strlen(d->name) > 21 &&
         strcmp(d->name + strlen(d->name) - 5, "Value") == 0 &&
         d->n_fields == 1 && strcmp(d->fields[0].name, "value") == 0;
}

/* The field-by-field walk of a message (no well-known-type forms). */
static int to_message_plain(struct conv *c, const struct ynode *n,
                            const ProtobufCMessageDescriptor *d,
                            const char *path, int skip_type,
                            ProtobufCMessage **out) {
  char *msg, sub[PATH_MAX_LEN];
  int rc = 0;

  if ((rc = new_message(c, d, &msg)) < 0)
    goto out;
  if (is_wrapper(d) && ynode_kind(n) != YNODE_MAPPING) {
    rc = set_field(c, msg, d, &d->fields[0], n, path);
    *out = (ProtobufCMessage *)msg;
    goto out;
  }
  if (ynode_kind(n) == YNODE_NULL) {
    *out = (ProtobufCMessage *)msg;
    goto out;
  }
  if (ynode_kind(n) != YNODE_MAPPING) {
    rc = fail(c, n, path, "expected a mapping for message %s, got %s", d->name,
              ynode_describe(n));
    goto out;
  }
  for (size_t i = 0; i < ynode_len(n); i++) {
    const struct ynode *k = ynode_map_key(n, i);
    const char *key = ynode_text(k, NULL);
    const ProtobufCFieldDescriptor *f;
    if (key == NULL) {
      rc = fail(c, k, path, "a mapping key must be a scalar");
      goto out;
    }
    if (skip_type && strcmp(key, "@type") == 0)
      continue;
    f = find_field(d, key);
    join(sub, path, key);
    if (f == NULL) {
      rc = fail(c, k, sub, "unknown field \"%s\" of %s", key, d->name);
      goto out;
    }
    rc = set_field(c, msg, d, f, ynode_map_value(n, i), sub);
    if (rc < 0)
      goto out;
  }
  *out = (ProtobufCMessage *)msg;
out:
  return rc;
}

static int to_message(struct conv *c, const struct ynode *n,
                      const ProtobufCMessageDescriptor *d, const char *path,
                      int skip_type, ProtobufCMessage **out) {
  int rc = 0;

  if (++c->depth > PBYAML_MAX_DEPTH) {
    c->depth--;
    return fail(c, n, path, "nested deeper than %d levels", PBYAML_MAX_DEPTH);
  }
  if (strcmp(d->name, "google.protobuf.Any") == 0) {
    rc = to_any(c, n, path, (Google__Protobuf__Any **)out);
    goto out;
  }
  if (strcmp(d->name, "google.protobuf.Struct") == 0 &&
      ynode_kind(n) == YNODE_MAPPING && !skip_type) {
    rc = to_struct(c, n, path, (Google__Protobuf__Struct **)out);
    goto out;
  }
  if (strcmp(d->name, "google.protobuf.Value") == 0) {
    rc = to_value(c, n, path, (Google__Protobuf__Value **)out);
    goto out;
  }
  if (strcmp(d->name, "google.protobuf.ListValue") == 0 &&
      ynode_kind(n) == YNODE_SEQUENCE) {
    rc = to_list(c, n, path, (Google__Protobuf__ListValue **)out);
    goto out;
  }
  if (strcmp(d->name, "google.protobuf.Duration") == 0 &&
      ynode_kind(n) == YNODE_SCALAR) {
    rc = to_duration(c, n, path, (Google__Protobuf__Duration **)out);
    goto out;
  }
  if (strcmp(d->name, "google.protobuf.Duration") == 0 &&
      ynode_kind(n) == YNODE_MAPPING) {
    /* {seconds, nanos}: the generic walk, then the Duration's own rules. */
    Google__Protobuf__Duration *du;
    c->depth--;
    rc = to_message_plain(c, n, d, path, 0, (ProtobufCMessage **)&du);
    c->depth++;
    if (rc == 0 &&
        (du->nanos <= -1000000000 || du->nanos >= 1000000000 ||
         (du->seconds > 0 && du->nanos < 0) ||
         (du->seconds < 0 && du->nanos > 0) || du->seconds > 315576000000LL ||
         du->seconds < -315576000000LL))
      rc = fail(c, n, path,
                "not a valid duration: nanos must be within "
                "(-1e9, 1e9) with the sign of seconds, and "
                "seconds within +-10,000 years");
    if (rc == 0)
      *out = &du->base;
    goto out;
  }
  rc = to_message_plain(c, n, d, path, skip_type, out);
out:
  c->depth--;
  return rc;
}

int pbyaml_to_message(const struct ynode *node,
                      const ProtobufCMessageDescriptor *desc, const char *path,
                      struct xds_arena *a, ProtobufCMessage **out,
                      struct xds_err *err) {
  struct conv c = {a, err, 0, NULL};

  *out = NULL;
  return to_message(&c, node, desc, path, 0, out);
}

int pbyaml_pack_any(const struct ynode *node, const char *type_url,
                    struct xds_arena *a, Google__Protobuf__Any **out,
                    struct xds_err *err) {
  return pbyaml_pack_any_ex(node, type_url, a, out, err, NULL);
}

int pbyaml_pack_any_ex(const struct ynode *node, const char *type_url,
                       struct xds_arena *a, Google__Protobuf__Any **out,
                       struct xds_err *err, struct pbyaml_fault *fault) {
  struct conv c = {a, err, 0, fault};
  const struct ynode *t;

  *out = NULL;
  if (node == NULL || ynode_kind(node) != YNODE_MAPPING)
    return xds_err_set(err, XDS_EINVAL, "typedConfig: expected a mapping");
  t = ynode_map_get(node, "@type");
  if (t == NULL)
    return fail(&c, node, "typedConfig", "missing \"@type\"");
  if (ynode_kind(t) != YNODE_SCALAR || ynode_text(t, NULL) == NULL)
    return fail(&c, t, "typedConfig.@type",
                "expected a type name string, got %s", ynode_describe(t));
  {
    const char *url = ynode_text(t, NULL), *name = strrchr(url, '/');
    name = name != NULL ? name + 1 : url;
    if (pbyaml_find_type(name) != NULL && !pbyaml_is_http_filter(name))
      return fail(&c, t, "typedConfig.@type",
                  "%s is not an HTTP filter configuration", name);
  }
  (void)type_url; /* the node's own @type is authoritative; the store
                     derived type_url from it */
  return to_any(&c, node, "typedConfig", out);
}
