/*
 * wire.h: protobuf wire-format writing by hand, for the hot path.
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

#endif
