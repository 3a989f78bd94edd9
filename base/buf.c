/*
 * buf.c: bounded growable buffer. Growth doubles, capped at max + 1 bytes
 * (the terminator).
 */
#include "base/buf.h"

#include "base/alloc.h"
#include "base/err.h"

#include <stdio.h>
#include <string.h>

void xds_buf_init(struct xds_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void xds_buf_cleanup(struct xds_buf *b) {
  xds_free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void xds_buf_reset(struct xds_buf *b) {
  b->len = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

static int reserve(struct xds_buf *b, size_t extra) {
  size_t need, cap;
  char *p;

  if (extra > b->max || b->len > b->max - extra)
    return XDS_ETOOBIG;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  if (cap > b->max + 1)
    cap = b->max + 1;
  p = xds_realloc(b->data, cap);
  if (p == NULL)
    return XDS_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int xds_buf_append(struct xds_buf *b, const void *p, size_t n) {
  int rc = reserve(b, n);

  if (rc < 0)
    return rc;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int xds_buf_extend(struct xds_buf *b, size_t n, char **p) {
  int rc = reserve(b, n);

  if (rc < 0)
    return rc;
  *p = b->data + b->len;
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int xds_buf_puts(struct xds_buf *b, const char *s) {
  return xds_buf_append(b, s, strlen(s));
}

int xds_buf_putc(struct xds_buf *b, char c) {
  return xds_buf_append(b, &c, 1);
}

int xds_buf_printf(struct xds_buf *b, const char *fmt, ...) {
  va_list ap;
  int n, rc;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return XDS_EINVAL;
  rc = reserve(b, (size_t)n);
  if (rc < 0)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

char *xds_buf_steal(struct xds_buf *b, size_t *len) {
  char *p = b->data;

  if (len != NULL)
    *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
