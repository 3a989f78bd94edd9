/*
 * pbjson.c: the descriptor walk behind pbjson.h.
 */
#include "server/pb/pbjson.h"
#include "server/pb/pbdesc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "server/pb/pbyaml.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

/* Deeper nesting prints as "..." (protects the stack). */
#define PBJSON_MAX_DEPTH 64

static json_t *message(const ProtobufCMessage *m, int depth);

static json_t *value_json(const Google__Protobuf__Value *v, int depth);

static json_t *struct_json(const Google__Protobuf__Struct *st, int depth) {
  json_t *o = json_object();

  for (size_t i = 0; o != NULL && i < st->n_fields; i++)
    json_object_set_new(o, st->fields[i]->key,
                        value_json(st->fields[i]->value, depth + 1));
  return o;
}

static json_t *value_json(const Google__Protobuf__Value *v, int depth) {
  json_t *a;

  if (v == NULL || depth > PBJSON_MAX_DEPTH)
    return json_null();
  switch (v->kind_case) {
  case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
    return json_real(v->number_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
    return json_string(v->string_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
    return json_boolean(v->bool_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
    return struct_json(v->struct_value, depth + 1);
  case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
    a = json_array();
    for (size_t i = 0; a != NULL && i < v->list_value->n_values; i++)
      json_array_append_new(a, value_json(v->list_value->values[i], depth + 1));
    return a;
  default:
    return json_null();
  }
}

static json_t *base64(const uint8_t *p, size_t n) {
  static const char tbl[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t out_len = 4 * ((n + 2) / 3);
  char *s = xds_malloc(out_len + 1), *q = s;
  json_t *j;

  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    *q++ = tbl[(v >> 18) & 63];
    *q++ = tbl[(v >> 12) & 63];
    *q++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
    *q++ = i + 2 < n ? tbl[v & 63] : '=';
  }
  *q = '\0';
  j = json_string(s);
  xds_free(s);
  return j;
}

static json_t *any_json(const Google__Protobuf__Any *any, int depth) {
  const char *name = strrchr(any->type_url, '/');
  const ProtobufCMessageDescriptor *d =
      pbyaml_find_type(name ? name + 1 : any->type_url);
  ProtobufCMessage *inner;
  json_t *o = NULL;

  if (d != NULL) {
    inner = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    if (inner != NULL) {
      o = message(inner, depth + 1);
      protobuf_c_message_free_unpacked(inner, NULL);
      if (o != NULL && !json_is_object(o)) {
        /* Well-known types print as scalars: wrap them as proto JSON does. */
        json_t *w = json_object();
        json_object_set_new(w, "value", o);
        o = w;
      }
    }
  }
  if (o == NULL) {
    o = json_object();
    if (o != NULL)
      json_object_set_new(o, "value", base64(any->value.data, any->value.len));
  }
  if (o != NULL) {
    /* "@type" first, as in proto JSON. */
    json_t *typed = json_object();
    if (typed != NULL) {
      json_object_set_new(typed, "@type", json_string(any->type_url));
      json_object_update(typed, o);
    }
    json_decref(o);
    o = typed;
  }
  return o;
}

/* One element of field f at p. */
static json_t *elem(const ProtobufCFieldDescriptor *f, const void *p,
                    int depth) {
  char num[32];

  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return json_integer(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return json_integer(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)p);
    return json_string(num);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)p);
    return json_string(num);
  case PROTOBUF_C_TYPE_FLOAT:
    return json_real(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE:
    return json_real(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL:
    return json_boolean(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
    return ev != NULL ? json_string(ev->name) : json_integer(*(const int *)p);
  }
  case PROTOBUF_C_TYPE_STRING:
    return json_string(*(char *const *)p != NULL ? *(char *const *)p : "");
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = p;
    return base64(b->data, b->len);
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return message(*(ProtobufCMessage *const *)p, depth + 1);
  }
  return json_null();
}

/* 1 when a singular proto3 field holds its default and so is omitted. */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return *(const uint64_t *)p == 0;
  case PROTOBUF_C_TYPE_DOUBLE:
    return *(const double *)p == 0;
  case PROTOBUF_C_TYPE_FLOAT:
    return *(const float *)p == 0;
  case PROTOBUF_C_TYPE_ENUM:
    return *(const int *)p == 0;
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)p == 0;
  case PROTOBUF_C_TYPE_STRING:
    return *(char *const *)p == NULL || (*(char *const *)p)[0] == '\0';
  case PROTOBUF_C_TYPE_MESSAGE:
    return *(void *const *)p == NULL;
  case PROTOBUF_C_TYPE_BYTES:
    return ((const ProtobufCBinaryData *)p)->len == 0;
  default:
    return *(const uint32_t *)p == 0;
  }
}

static json_t *message(const ProtobufCMessage *m, int depth) {
  const ProtobufCMessageDescriptor *d;
  const char *base = (const char *)m;
  json_t *o;

  if (m == NULL)
    return json_null();
  if (depth > PBJSON_MAX_DEPTH)
    return json_string("...");
  d = m->descriptor;
  if (strcmp(d->name, "google.protobuf.Any") == 0)
    return any_json((const Google__Protobuf__Any *)m, depth);
  if (strcmp(d->name, "google.protobuf.Struct") == 0)
    return struct_json((const Google__Protobuf__Struct *)m, depth);
  if (strcmp(d->name, "google.protobuf.Value") == 0)
    return value_json((const Google__Protobuf__Value *)m, depth);
  if (strcmp(d->name, "google.protobuf.Duration") == 0) {
    const Google__Protobuf__Duration *du = (const void *)m;
    char s[48];
    if (du->nanos == 0)
      snprintf(s, sizeof(s), "%" PRId64 "s", du->seconds);
    else
      snprintf(s, sizeof(s), "%" PRId64 ".%09" PRId32 "s", du->seconds,
               du->nanos < 0 ? -du->nanos : du->nanos);
    return json_string(s);
  }
  if (strncmp(d->name, "google.protobuf.", 16) == 0 && d->n_fields == 1 &&
      strcmp(d->fields[0].name, "value") == 0)
    return elem(&d->fields[0], base + d->fields[0].offset, depth);

  o = json_object();
  for (unsigned i = 0; o != NULL && i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      const char *arr = *(char *const *)p;
      json_t *a;
      if (n == 0)
        continue;
      if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
          pbdesc_is_map_entry(f->descriptor)) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        a = json_object();
        for (size_t k = 0; a != NULL && k < n; k++) {
          const char *e = ((char *const *)arr)[k];
          const char *key = *(char *const *)(e + ed->fields[0].offset);
          json_object_set_new(
              a, key != NULL ? key : "",
              elem(&ed->fields[1], e + ed->fields[1].offset, depth + 1));
        }
      } else {
        size_t sz = pbdesc_elem_size(f);
        a = json_array();
        for (size_t k = 0; a != NULL && k < n; k++)
          json_array_append_new(a, elem(f, arr + k * sz, depth));
      }
      json_object_set_new(o, f->name, a);
      continue;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
        continue;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
               f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
      if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
        continue;
    } else if (is_default(f, p)) {
      continue;
    }
    json_object_set_new(o, f->name, elem(f, p, depth));
  }
  return o;
}

json_t *pbjson_message(const ProtobufCMessage *m) {
  return message(m, 0);
}

json_t *pbjson_bytes(const ProtobufCMessageDescriptor *desc,
                     const uint8_t *data, size_t len) {
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
  json_t *j;

  if (m == NULL)
    return NULL;
  j = message(m, 0);
  protobuf_c_message_free_unpacked(m, NULL);
  return j;
}
