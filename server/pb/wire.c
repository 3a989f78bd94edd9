/*
 * wire.c: varints and length-delimited fields, written; and the strict
 * reader of one field.
 */
#include "server/pb/wire.h"

#include <string.h>

#include "base/err.h"

static size_t varint_len(uint64_t v) {
  size_t n = 1;

  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static int put_varint(struct xds_buf *b, uint64_t v) {
  unsigned char tmp[10];
  size_t n = 0;

  while (v >= 0x80) {
    tmp[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (unsigned char)v;
  return xds_buf_append(b, tmp, n);
}

int wire_put_len_prefix(struct xds_buf *b, uint32_t field, size_t n) {
  int rc = put_varint(b, ((uint64_t)field << 3) | 2);

  if (rc < 0)
    return rc;
  return put_varint(b, n);
}

size_t wire_bytes_size(uint32_t field, size_t n) {
  return varint_len(((uint64_t)field << 3) | 2) + varint_len(n) + n;
}

int wire_put_bytes(struct xds_buf *b, uint32_t field, const void *p, size_t n) {
  size_t before = b->len;
  int rc = wire_put_len_prefix(b, field, n);

  if (rc == 0)
    rc = xds_buf_append(b, p, n);
  if (rc < 0)
    b->len = before;
  return rc;
}

int wire_put_string(struct xds_buf *b, uint32_t field, const char *s) {
  return wire_put_bytes(b, field, s, strlen(s));
}

int wire_put_any(struct xds_buf *b, uint32_t field, const char *type_url,
                 const void *value, size_t n) {
  size_t off;

  return wire_put_any_at(b, field, type_url, value, n, &off);
}

int wire_put_any_at(struct xds_buf *b, uint32_t field, const char *type_url,
                    const void *value, size_t n, size_t *value_off) {
  size_t tlen = strlen(type_url), before = b->len;
  size_t inner = wire_bytes_size(1, tlen) + wire_bytes_size(2, n);
  int rc;

  rc = wire_put_len_prefix(b, field, inner);
  if (rc == 0)
    rc = wire_put_bytes(b, 1, type_url, tlen);
  if (rc == 0)
    rc = wire_put_len_prefix(b, 2, n);
  *value_off = b->len;
  if (rc == 0)
    rc = xds_buf_append(b, value, n);
  if (rc < 0)
    b->len = before;
  return rc;
}

/* Reads a minimal varint of at most max bytes. Returns 0 or XDS_EPARSE. */
static int get_varint_strict(const uint8_t **p, const uint8_t *end, int max,
                             uint64_t *v) {
  uint64_t x = 0;

  for (int i = 0; i < max && *p < end; i++) {
    uint8_t b = *(*p)++;

    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 0)
        return XDS_EPARSE; /* not minimal */
      *v = x;
      return 0;
    }
  }
  return XDS_EPARSE;
}

int wire_next_strict(const uint8_t **p, const uint8_t *end,
                     struct wire_field *f) {
  uint8_t tag;
  uint64_t v;

  if (*p >= end)
    return 0;
  tag = *(*p)++;
  if (tag & 0x80 || tag >> 3 == 0)
    return XDS_EPARSE;
  f->number = tag >> 3;
  f->type = tag & 7;
  f->data = NULL;
  f->len = 0;
  f->value = 0;
  switch (f->type) {
  case 0:
    /* 9 bytes hold 63 bits: every value protobuf readers agree on. */
    if (get_varint_strict(p, end, 9, &f->value) < 0)
      return XDS_EPARSE;
    return 1;
  case 1:
  case 5:
    f->len = f->type == 1 ? 8 : 4;
    break;
  case 2:
    if (get_varint_strict(p, end, 4, &v) < 0)
      return XDS_EPARSE;
    f->len = (size_t)v;
    break;
  default:
    return XDS_EPARSE; /* groups */
  }
  if (f->len > (size_t)(end - *p))
    return XDS_EPARSE;
  f->data = *p;
  *p += f->len;
  return 1;
}
