/*
 * pbjson.h: protobuf to JSON, driven by protobuf-c descriptors, for
 * people: `wasmxds render` and the debug endpoints. Field names are the
 * proto (snake_case) names, as in Envoy's config_dump; fields at their
 * default are left out; enums print by name; Any prints as its "@type" plus
 * the fields of the message inside (when its type is compiled in); Struct,
 * Value, Duration ("1.5s") and the wrapper types print in their JSON forms.
 * Pure; safe from any thread.
 */
#ifndef XDS_PBJSON_H
#define XDS_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* A new JSON value for message m, or NULL when out of memory. */
json_t *pbjson_message(const ProtobufCMessage *m);

/* Unpacks len bytes as message type desc and renders them; NULL when the
 * bytes do not decode or memory runs out. */
json_t *pbjson_bytes(const ProtobufCMessageDescriptor *desc,
                     const uint8_t *data, size_t len);

#endif
