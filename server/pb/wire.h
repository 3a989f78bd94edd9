/*
 * wire.h: protobuf wire-format writing (and strict reading) by hand, for
 * the hot path.
 *
 * A DiscoveryResponse is the concatenation of its fields in any order, so a
 * response can be assembled from pre-encoded parts (each resource's Any,
 * written once per snapshot) plus the few bytes that differ per stream (the
 * nonce). These helpers append one field to a bounded buffer. Each returns
 * 0, XDS_ENOMEM or XDS_ETOOBIG.
 */
#ifndef XDS_WIRE_H
#define XDS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Appends a length-delimited field (wire type 2): bytes, string or an
 * already encoded message. */
int wire_put_bytes(struct xds_buf *b, uint32_t field, const void *p, size_t n);
int wire_put_string(struct xds_buf *b, uint32_t field, const char *s);
/* Appends the tag and length of a length-delimited field whose n bytes the
 * caller appends next. */
int wire_put_len_prefix(struct xds_buf *b, uint32_t field, size_t n);
/* Bytes wire_put_bytes would add for a payload of n bytes. */
size_t wire_bytes_size(uint32_t field, size_t n);

/* Appends google.protobuf.Any{type_url, value} as field number field. */
int wire_put_any(struct xds_buf *b, uint32_t field, const char *type_url,
                 const void *value, size_t n);
/* The same, also telling at which offset of b the value bytes start. */
int wire_put_any_at(struct xds_buf *b, uint32_t field, const char *type_url,
                    const void *value, size_t n, size_t *value_off);

/* One field of an encoded message, as wire_next_strict() reads it. */
struct wire_field {
  uint32_t number;     /* field number, 1..15 */
  int type;            /* wire type: 0 varint, 1 fixed64, 2 length-delimited,
                          5 fixed32 */
  const uint8_t *data; /* types 1, 2, 5: the payload (borrowed) */
  size_t len;          /* its length */
  uint64_t value;      /* type 0: the varint's value */
};

/*
 * Reads the field at *p (before end) into *f and advances *p past it.
 * Strict: only what every protobuf reader reads the same way is accepted:
 * a one-byte tag (field numbers 1 to 15), minimal varints (no redundant
 * trailing 0x80 groups), varint values below 2^63, lengths below 2^28 that
 * fit in what is left. Anything else, well-formed or not, is XDS_EPARSE,
 * so a caller that falls back to a full parser on XDS_EPARSE never acts on
 * bytes two parsers could read differently. Returns 1 (a field), 0 (*p ==
 * end) or XDS_EPARSE (*p unspecified). Pure; any thread.
 */
int wire_next_strict(const uint8_t **p, const uint8_t *end,
                     struct wire_field *f);

#endif
