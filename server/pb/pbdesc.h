/*
 * pbdesc.h: facts about protobuf-c descriptors that the descriptor walks
 * (pbyaml.c, pbjson.c) share.
 */
#ifndef XDS_PBDESC_H
#define XDS_PBDESC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <string.h>

/* Bytes one element of field f takes in a protobuf-c struct or array. */
static inline size_t pbdesc_elem_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return 4;
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_ENUM:
    return sizeof(int);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  }
  return sizeof(void *);
}

/* 1 when d is the entry message protoc generates for a map field. */
static inline int pbdesc_is_map_entry(const ProtobufCMessageDescriptor *d) {
  size_t len = strlen(d->short_name);

  return d->n_fields == 2 && len > 5 &&
         strcmp(d->short_name + len - 5, "Entry") == 0 &&
         d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
         d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

#endif
