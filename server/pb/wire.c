/*
 * wire.c: varints and length-delimited fields.
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
