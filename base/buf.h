/*
 * buf.h: a growable byte buffer with a hard limit set at init.
 *
 * The caller owns the struct (init/cleanup); the buffer owns data. data is
 * always NUL-terminated after a successful append, so text can be read as a
 * C string. Exceeding max returns XDS_ETOOBIG and leaves the contents as they
 * were.
 */
#ifndef XDS_BASE_BUF_H
#define XDS_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct xds_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max; /* largest len allowed */
};

/* Starts an empty buffer whose length may never exceed max bytes;
 * xds_buf_cleanup() frees its memory (the buffer may be reused after
 * another xds_buf_init()). */
void xds_buf_init(struct xds_buf *b, size_t max);
void xds_buf_cleanup(struct xds_buf *b);
/* Empties the buffer, keeping its memory. */
void xds_buf_reset(struct xds_buf *b);

/* Each returns 0, XDS_ENOMEM or XDS_ETOOBIG. */
int xds_buf_append(struct xds_buf *b, const void *p, size_t n);
int xds_buf_puts(struct xds_buf *b, const char *s);
int xds_buf_putc(struct xds_buf *b, char c);
int xds_buf_printf(struct xds_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes room for n more bytes, counts them as used and points *p at them,
 * for a writer that fills them in place. 0, XDS_ENOMEM or XDS_ETOOBIG. */
int xds_buf_extend(struct xds_buf *b, size_t n, char **p);

/* Hands data to the caller (who frees it with xds_free) and empties b. */
char *xds_buf_steal(struct xds_buf *b, size_t *len);

#endif
