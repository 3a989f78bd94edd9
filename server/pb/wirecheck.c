/*
 * wirecheck.c: see wirecheck.h. The walk follows the wire format: a tag
 * (field number and wire type) then varint, fixed 64, length-delimited or
 * fixed 32 payload; only length-delimited fields can be strings or
 * messages, and the descriptor says which.
 */
#include "server/pb/wirecheck.h"

#include <string.h>

#include "base/err.h"

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t out = 0;

  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b;
    if (*p >= end)
      return XDS_EPARSE;
    b = *(*p)++;
    out |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = out;
      return 0;
    }
  }
  return XDS_EPARSE;
}

static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                const uint8_t *end, int depth, const char **msg,
                const char **field) {
  if (depth > WIRECHECK_DEPTH_MAX)
    return XDS_ETOOBIG;
  while (p < end) {
    const ProtobufCFieldDescriptor *f;
    uint64_t tag, len;
    int rc;

    if (get_varint(&p, end, &tag) < 0)
      return XDS_EPARSE;
    switch (tag & 7) {
    case 0:
      if (get_varint(&p, end, &len) < 0)
        return XDS_EPARSE;
      continue;
    case 1:
      if ((size_t)(end - p) < 8)
        return XDS_EPARSE;
      p += 8;
      continue;
    case 5:
      if ((size_t)(end - p) < 4)
        return XDS_EPARSE;
      p += 4;
      continue;
    case 2:
      break;
    default: /* groups: not in any message wasmxds reads */
      return XDS_EPARSE;
    }
    if (get_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p))
      return XDS_EPARSE;
    f = tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(
                                     desc, (unsigned)(tag >> 3))
                               : NULL;
    if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
        memchr(p, '\0', (size_t)len) != NULL) {
      if (msg != NULL)
        *msg = desc->name;
      if (field != NULL)
        *field = f->name;
      return XDS_EINVAL;
    }
    if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
      rc = walk(f->descriptor, p, p + len, depth + 1, msg, field);
      if (rc < 0)
        return rc;
    }
    p += len;
  }
  return 0;
}

int wirecheck_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                      size_t n, const char **msg, const char **field) {
  return walk(desc, p, p + n, 0, msg, field);
}
