/*
 * pbyaml.h: YAML to protobuf, driven by protobuf-c descriptors.
 *
 * A native filter's typedConfig is written as YAML with an "@type"; this
 * module finds the message by its full name among the types compiled into
 * proto/ and fills it field by field: nested messages, repeated fields,
 * maps, enums by name (or number), 64-bit integers from numbers or strings,
 * bytes as base64, and the well-known types the way Envoy's YAML accepts
 * them: Any (a mapping with its own "@type"), Struct/Value/ListValue (any
 * YAML), Duration ("30s", "1.5s", "250ms"), and the wrapper types (a bare
 * scalar). Field names may be snake_case (proto) or lowerCamelCase (JSON).
 * Supporting another Envoy filter means adding its messages to proto/ and
 * one line to the registry in pbyaml.c, not writing code.
 *
 * An unknown field, a value of the wrong type, an unknown enum name or an
 * unknown @type is an error naming the node's file:line:column, the field
 * path and the message type. Pure; safe from any thread.
 */
#ifndef XDS_PBYAML_H
#define XDS_PBYAML_H

#include <protobuf-c/protobuf-c.h>

#include "base/arena.h"
#include "base/err.h"
#include "store/ydoc.h"

#include "google/protobuf/any.pb-c.h"

/* Nesting deeper than this is refused (protects the stack). */
#define PBYAML_MAX_DEPTH 48

/* The descriptor of the message with full name (no type.googleapis.com/
 * prefix) in the registry, or NULL. */
const ProtobufCMessageDescriptor *pbyaml_find_type(const char *full_name);

/* 1 when full_name may configure a native HTTP filter. */
int pbyaml_is_http_filter(const char *full_name);

/*
 * Converts mapping node (which holds "@type" naming type_url's message;
 * the key is skipped) to an Any allocated in arena a. Returns 0, XDS_EINVAL
 * (err says where and why), or XDS_ENOMEM. On error *out is NULL.
 */
int pbyaml_pack_any(const struct ynode *node, const char *type_url,
                    struct xds_arena *a, Google__Protobuf__Any **out,
                    struct xds_err *err);

/* Where a conversion failed, for callers that report it structured. */
struct pbyaml_fault {
  const char *source; /* file or key of the node (borrowed from it) */
  int line, column;
  char path[512]; /* "typedConfig.rules.policies[\"p\"]..." */
  char msg[320];  /* the reason, without location or path */
};

/* pbyaml_pack_any that also fills *fault (when not NULL) on XDS_EINVAL. */
int pbyaml_pack_any_ex(const struct ynode *node, const char *type_url,
                       struct xds_arena *a, Google__Protobuf__Any **out,
                       struct xds_err *err, struct pbyaml_fault *fault);

/*
 * Fills a new message of type desc, allocated in a, from mapping node.
 * path names the node in messages ("typedConfig"). Returns 0, XDS_EINVAL or
 * XDS_ENOMEM.
 */
int pbyaml_to_message(const struct ynode *node,
                      const ProtobufCMessageDescriptor *desc, const char *path,
                      struct xds_arena *a, ProtobufCMessage **out,
                      struct xds_err *err);

#endif
