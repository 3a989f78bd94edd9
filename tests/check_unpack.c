/*
 * check_unpack.c: the "unpack" suite: the tar reader of modules/unpack.c
 * against a corpus of hostile archives, built here header by header (so
 * each one breaks exactly one rule), and against archives of every format
 * the reader supports, both built here and made by GNU tar
 * (tests/data/tar/, see its README).
 *
 * Every archive is handed to the reader in a heap buffer of exactly its
 * length, so a read past the end is caught by ASan.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "modules/unpack.h"
#include "tests/helpers/modtest.h"

#ifndef XDS_TEST_DATA
#define XDS_TEST_DATA "tests/data"
#endif

/* Header formats the builder writes. */
enum tb_fmt { TB_V7, TB_USTAR, TB_GNU };

/* A growing archive. */
struct tb {
  unsigned char *p;
  size_t len, cap;
};

static void tb_raw(struct tb *t, const void *data, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;

    while (cap < t->len + n)
      cap *= 2;
    t->p = xds_realloc(t->p, cap);
    ck_assert_ptr_nonnull(t->p);
    t->cap = cap;
  }
  if (n > 0)
    memcpy(t->p + t->len, data, n);
  t->len += n;
}

static void tb_zeros(struct tb *t, size_t n) {
  static const unsigned char z[512];

  while (n > 0) {
    size_t k = n < sizeof(z) ? n : sizeof(z);

    tb_raw(t, z, k);
    n -= k;
  }
}

/* Writes the checksum of header h (GNU style: six digits, NUL, space). */
static void tb_sum(unsigned char *h) {
  unsigned sum = 0;
  char f[8];

  memset(h + 148, ' ', 8);
  for (int i = 0; i < 512; i++)
    sum += h[i];
  snprintf(f, sizeof(f), "%06o", sum);
  memcpy(h + 148, f, 7);
}

/* Fills header h: name and prefix copied for exactly their lengths (no
 * terminator when they fill the field), size as 11 octal digits. */
static void tb_header(unsigned char *h, const char *name, const char *prefix,
                      char type, unsigned long long size, enum tb_fmt fmt) {
  char f[16];

  memset(h, 0, 512);
  memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
  memcpy(h + 100, "0000644", 7);
  memcpy(h + 108, "0000000", 7);
  memcpy(h + 116, "0000000", 7);
  snprintf(f, sizeof(f), "%011llo", size);
  memcpy(h + 124, f, 11);
  memcpy(h + 136, "00000000000", 11);
  h[156] = (unsigned char)type;
  if (fmt == TB_USTAR) {
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    if (prefix != NULL)
      memcpy(h + 345, prefix, strlen(prefix) < 155 ? strlen(prefix) : 155);
  } else if (fmt == TB_GNU) {
    memcpy(h + 257, "ustar  \0", 8);
  }
  tb_sum(h);
}

/* Appends a header then data padded to the block. */
static void tb_entry_h(struct tb *t, const unsigned char *h, const void *data,
                       size_t n) {
  tb_raw(t, h, 512);
  tb_raw(t, data, n);
  tb_zeros(t, (512 - n % 512) % 512);
}

static void tb_entry(struct tb *t, const char *name, const char *prefix,
                     char type, const void *data, size_t n, enum tb_fmt fmt) {
  unsigned char h[512];

  tb_header(h, name, prefix, type, n, fmt);
  tb_entry_h(t, h, data, n);
}

/* "LEN key=value\n" with LEN counting itself. */
static void pax_rec(struct xds_buf *b, const char *key, const char *value) {
  size_t body = 1 + strlen(key) + 1 + strlen(value) + 1, len = body + 1;
  char num[32];

  for (;;) {
    int d = snprintf(num, sizeof(num), "%zu", len);

    if ((size_t)d + body == len)
      break;
    len = (size_t)d + body;
  }
  ck_assert_int_eq(xds_buf_printf(b, "%s %s=%s\n", num, key, value), 0);
}

/* The archive in a heap buffer of exactly its length (ASan sees any read
 * past it); frees t. */
static unsigned char *tb_exact(struct tb *t, size_t *len) {
  unsigned char *p = xds_malloc(t->len ? t->len : 1);

  ck_assert_ptr_nonnull(p);
  memcpy(p, t->p, t->len);
  *len = t->len;
  xds_free(t->p);
  memset(t, 0, sizeof(*t));
  return p;
}

static int scan(struct tb *t, struct unpack_found *f, struct xds_err *err) {
  size_t len;
  unsigned char *p = tb_exact(t, &len);
  int rc;

  memset(err, 0, sizeof(*err));
  rc = unpack_tar_find_wasm(p, len, f, err);
  /* Whatever was found must point into the archive. */
  if (rc == 0) {
    ck_assert(f->wasm >= p && f->wasm + f->wasm_len <= p + len);
    if (f->runtime_config != NULL)
      ck_assert(f->runtime_config >= p &&
                f->runtime_config + f->runtime_config_len <= p + len);
  }
  xds_free(p);
  return rc;
}

#define EXPECT_ERR(rc, err, code, needle)                                      \
  do {                                                                         \
    ck_assert_int_eq((rc), (code));                                            \
    ck_assert_msg(strstr((err).msg, (needle)) != NULL,                         \
                  "message \"%s\" lacks \"%s\"", (err).msg, (needle));         \
  } while (0)

/* ---- the two memory-safety bugs of issue 13 ---- */

/* A ustar entry with a full 155-byte prefix and a full 100-byte name: the
 * path is 256 bytes (prefix, '/', name). The old reader wrote its
 * terminator one byte past a 256-byte stack array. */
START_TEST(ustar_full_prefix_and_name) {
  struct tb t = {0};
  struct unpack_found f;
  struct xds_err err;
  unsigned char *m = mt_wasm(100, 3);
  char prefix[156], name[101];

  memset(prefix, 'p', 155);
  prefix[155] = '\0';
  memset(name, 'n', 100);
  memcpy(name + 100 - strlen("/plugin.wasm"), "/plugin.wasm", 12);
  name[100] = '\0';
  tb_entry(&t, name, prefix, '0', m, 100, TB_USTAR);
  tb_zeros(&t, 1024);
  ck_assert_int_eq(scan(&t, &f, &err), 0);
  ck_assert_uint_eq(f.wasm_len, 100);
  ck_assert(memcmp(f.wasm_name, prefix, 100) == 0);
  xds_free(m);
}
END_TEST

/* A pax record whose length (1) is shorter than its own "1 " header,
 * placed so that the record ends the entry's data and the archive: the old
 * reader computed off + rec - i below zero and copied 255 bytes from past
 * the end of the buffer. */
START_TEST(pax_record_shorter_than_itself) {
  struct tb t = {0};
  struct unpack_found f;
  struct xds_err err;
  struct xds_buf pax;
  unsigned char h[512];
  char filler[600];

  xds_buf_init(&pax, 4096);
  /* 505 bytes of a valid record, then "1 path=" ends the 512-byte data. */
  memset(filler, 'c', 492);
  filler[492] = '\0';
  pax_rec(&pax, "comment", filler);
  ck_assert_uint_eq(pax.len, 505);
  ck_assert_int_eq(xds_buf_append(&pax, "1 path=", 7), 0);
  tb_header(h, "PaxHeaders/x", NULL, 'x', pax.len, TB_USTAR);
  tb_entry_h(&t, h, pax.data, pax.len);
  xds_buf_cleanup(&pax);
  EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "pax");
}
END_TEST

/* ---- truncation and sizes ---- */

START_TEST(truncated_headers) {
  unsigned char *m = mt_wasm(64, 4);
  struct unpack_found f;
  struct xds_err err;

  /* Cut inside the first header. */
  for (size_t cut = 1; cut < 512; cut += 97) {
    struct tb t = {0};

    tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
    t.len = cut;
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "truncated");
  }
  /* Cut inside the second header (the first entry is complete). */
  {
    struct tb t = {0};

    tb_entry(&t, "a.txt", NULL, '0', "hi", 2, TB_USTAR);
    tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
    t.len = 512 + 512 + 200;
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "truncated");
  }
  /* Cut inside the data, and inside the padding after it. */
  {
    struct tb t = {0};

    tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
    t.len = 512 + 10;
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "claims");
  }
  {
    struct tb t = {0};

    tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
    t.len = 512 + 100;
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "truncated");
  }
  /* No end-of-archive blocks at all is fine (the data is all there). */
  {
    struct tb t = {0};

    tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
  }
  xds_free(m);
}
END_TEST

/* Writes a raw size field into h and fixes the checksum. */
static void set_size_field(unsigned char *h, const void *field) {
  memcpy(h + 124, field, 12);
  tb_sum(h);
}

START_TEST(hostile_sizes) {
  static const struct {
    unsigned char field[12];
    int code;
    const char *needle;
  } cases[] = {
      /* 8 GiB - 1 in octal: far more than the archive holds. */
      {"77777777777", XDS_EPARSE, "claims"},
      /* Twelve digits, no terminator (64 GiB - 1). */
      {{'7', '7', '7', '7', '7', '7', '7', '7', '7', '7', '7', '7'},
       XDS_EPARSE,
       "claims"},
      /* Not octal. */
      {"0000000008 ", XDS_EPARSE, "size"},
      {"00000x00100", XDS_EPARSE, "size"},
      /* A sign. */
      {"-0000000100", XDS_EPARSE, "size"},
      /* Base-256, positive but past 2^64. */
      {{0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       XDS_EPARSE,
       "size"},
      /* Base-256, positive, 2^63: fits 64 bits, more than present. */
      {{0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0}, XDS_EPARSE, "claims"},
      /* Base-256, negative (-1). */
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       XDS_EPARSE,
       "negative"},
  };
  unsigned char *m = mt_wasm(64, 5);

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct tb t = {0};
    struct unpack_found f;
    struct xds_err err;
    unsigned char h[512];

    tb_header(h, "plugin.wasm", NULL, '0', 64, TB_USTAR);
    set_size_field(h, cases[i].field);
    tb_entry_h(&t, h, m, 64);
    tb_zeros(&t, 1024);
    EXPECT_ERR(scan(&t, &f, &err), err, cases[i].code, cases[i].needle);
  }
  /* Base-256 with a small positive value is read (GNU tar writes it for
   * sizes of 8 GiB and more; any size may use it). */
  {
    struct tb t = {0};
    struct unpack_found f;
    struct xds_err err;
    unsigned char h[512], field[12] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64};

    tb_header(h, "plugin.wasm", NULL, '0', 64, TB_GNU);
    set_size_field(h, field);
    tb_entry_h(&t, h, m, 64);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
    ck_assert_uint_eq(f.wasm_len, 64);
  }
  xds_free(m);
}
END_TEST

START_TEST(bad_checksum) {
  struct tb t = {0};
  struct unpack_found f;
  struct xds_err err;
  unsigned char h[512];
  unsigned char *m = mt_wasm(64, 6);

  tb_header(h, "plugin.wasm", NULL, '0', 64, TB_USTAR);
  h[0] = 'P'; /* changed after the checksum was written */
  tb_entry_h(&t, h, m, 64);
  tb_zeros(&t, 1024);
  EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "checksum");
  /* A checksum field that is not a number. */
  tb_header(h, "plugin.wasm", NULL, '0', 64, TB_USTAR);
  memcpy(h + 148, "zzzzzz\0 ", 8);
  tb_entry_h(&t, h, m, 64);
  EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "checksum");
  xds_free(m);
}
END_TEST

START_TEST(too_many_entries) {
  struct tb t = {0};
  struct unpack_found f;
  struct xds_err err;
  unsigned char *m = mt_wasm(64, 7);

  for (int i = 0; i < UNPACK_TAR_MAX_ENTRIES; i++)
    tb_entry(&t, "empty", NULL, '0', NULL, 0, TB_USTAR);
  tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
  tb_zeros(&t, 1024);
  EXPECT_ERR(scan(&t, &f, &err), err, XDS_ETOOBIG, "entries");
  xds_free(m);
}
END_TEST

/* ---- GNU long names ---- */

START_TEST(gnu_long_names) {
  unsigned char *m = mt_wasm(64, 8);
  struct unpack_found f;
  struct xds_err err;
  char longname[400];

  memset(longname, 'd', 300);
  memcpy(longname + 300, "/plugin.wasm", 13);
  /* Valid: the 'L' entry names the next one (terminator included). */
  {
    struct tb t = {0};

    tb_entry(&t, "././@LongLink", NULL, 'L', longname, strlen(longname) + 1,
             TB_GNU);
    tb_entry(&t, "ddd", NULL, '0', m, 64, TB_GNU);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
    ck_assert_uint_eq(f.wasm_len, 64);
    ck_assert(strncmp(f.wasm_name, longname, sizeof(f.wasm_name) - 1) == 0);
  }
  /* Valid without a terminator, and with a 'K' long link name too. */
  {
    struct tb t = {0};

    tb_entry(&t, "././@LongLink", NULL, 'K', "target", 6, TB_GNU);
    tb_entry(&t, "././@LongLink", NULL, 'L', longname, strlen(longname),
             TB_GNU);
    tb_entry(&t, "ddd", NULL, '0', m, 64, TB_GNU);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
  }
  /* A long name longer than any path: refused, not truncated into a
   * different name. */
  {
    struct tb t = {0};
    size_t n = UNPACK_TAR_MAX_PATH + 100;
    char *big = xds_malloc(n);

    memset(big, 'a', n);
    tb_entry(&t, "././@LongLink", NULL, 'L', big, n, TB_GNU);
    tb_entry(&t, "ddd", NULL, '0', m, 64, TB_GNU);
    tb_zeros(&t, 1024);
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "long name");
    xds_free(big);
  }
  /* An empty long name. */
  {
    struct tb t = {0};

    tb_entry(&t, "././@LongLink", NULL, 'L', "\0\0\0", 3, TB_GNU);
    tb_entry(&t, "ddd", NULL, '0', m, 64, TB_GNU);
    tb_zeros(&t, 1024);
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "long name");
  }
  /* A long name and then the end of the archive. */
  {
    struct tb t = {0};

    tb_entry(&t, "././@LongLink", NULL, 'L', longname, strlen(longname),
             TB_GNU);
    tb_zeros(&t, 1024);
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "ends after");
  }
  /* Endless meta headers. */
  {
    struct tb t = {0};

    for (int i = 0; i < UNPACK_TAR_MAX_META + 1; i++)
      tb_entry(&t, "././@LongLink", NULL, 'L', longname, strlen(longname),
               TB_GNU);
    tb_entry(&t, "ddd", NULL, '0', m, 64, TB_GNU);
    tb_zeros(&t, 1024);
    EXPECT_ERR(scan(&t, &f, &err), err, XDS_EPARSE, "extended headers");
  }
  xds_free(m);
}
END_TEST

/* ---- pax ---- */

/* A pax header with data (raw records) followed by plugin.wasm under a
 * short name. */
static int pax_case(const void *records, size_t n, struct unpack_found *f,
                    struct xds_err *err) {
  struct tb t = {0};
  unsigned char *m = mt_wasm(64, 9);
  int rc;

  tb_entry(&t, "PaxHeaders/x", NULL, 'x', records, n, TB_USTAR);
  tb_entry(&t, "x", NULL, '0', m, 64, TB_USTAR);
  tb_zeros(&t, 1024);
  rc = scan(&t, f, err);
  xds_free(m);
  return rc;
}

START_TEST(pax_bad_lengths) {
  static const char *const bad[] = {
      "0 path=a/plugin.wasm\n",           /* zero */
      "5 path=a/plugin.wasm\n",           /* shorter than the record */
      "99 path=a/plugin.wasm\n",          /* longer than the data */
      "22path=a/plugin.wasm\n",           /* no space after the length */
      "22 path=a/plugin.wasm",            /* no newline (21 bytes, claims 22) */
      "21 path=a/plugin.wasmX",           /* last byte not a newline */
      "x1 path=a/plugin.wasm\n",          /* not a number */
      "99999999999999999999999 path=a\n", /* overflow */
      "12 pathnoeq\n",                    /* no '=' */
      "5 =a\n",                           /* empty keyword */
      "4 \n\n\n",                         /* nothing */
      "12 size=12x\n",                    /* a size that is not a number */
      "33 size=999999999999999999999999\n", /* a size past 64 bits */
  };
  struct unpack_found f;
  struct xds_err err;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = pax_case(bad[i], strlen(bad[i]), &f, &err);

    ck_assert_msg(rc == XDS_EPARSE, "case %zu (%s): rc %d", i, bad[i], rc);
    ck_assert_msg(strstr(err.msg, "pax") != NULL, "case %zu: %s", i, err.msg);
  }
  /* A path with a NUL inside. */
  {
    const char rec[] = "22 path=a/plug\0n.wasm\n";

    ck_assert_int_eq(pax_case(rec, sizeof(rec) - 1, &f, &err), XDS_EPARSE);
  }
  /* A pax header larger than the pax limit. */
  {
    struct xds_buf b;
    char *v = xds_malloc(UNPACK_TAR_MAX_PAX + 1);

    memset(v, 'v', UNPACK_TAR_MAX_PAX);
    v[UNPACK_TAR_MAX_PAX] = '\0';
    xds_buf_init(&b, 2 * UNPACK_TAR_MAX_PAX);
    pax_rec(&b, "comment", v);
    EXPECT_ERR(pax_case(b.data, b.len, &f, &err), err, XDS_EPARSE, "pax");
    xds_buf_cleanup(&b);
    xds_free(v);
  }
}
END_TEST

START_TEST(pax_valid) {
  struct xds_buf b;
  struct unpack_found f;
  struct xds_err err;
  char longpath[700];

  /* A long path, a comment and an unknown key. */
  memset(longpath, 'q', 600);
  memcpy(longpath + 600, "/plugin.wasm", 13);
  xds_buf_init(&b, 1 << 16);
  pax_rec(&b, "comment", "made by hand");
  pax_rec(&b, "path", longpath);
  pax_rec(&b, "SCHILY.xattr.user.x", "y");
  ck_assert_int_eq(pax_case(b.data, b.len, &f, &err), 0);
  ck_assert_uint_eq(f.wasm_len, 64);
  ck_assert(strncmp(f.wasm_name, longpath, sizeof(f.wasm_name) - 1) == 0);
  xds_buf_cleanup(&b);
  /* A pax size overrides the header's (which says 0 here). */
  {
    struct tb t = {0};
    unsigned char *m = mt_wasm(700, 10), h[512];

    xds_buf_init(&b, 4096);
    pax_rec(&b, "size", "700");
    tb_entry(&t, "PaxHeaders/x", NULL, 'x', b.data, b.len, TB_USTAR);
    tb_header(h, "plugin.wasm", NULL, '0', 0, TB_USTAR);
    tb_entry_h(&t, h, m, 700);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
    ck_assert_uint_eq(f.wasm_len, 700);
    xds_buf_cleanup(&b);
    xds_free(m);
  }
  /* A global header is read for validity and does not rename entries. */
  {
    struct tb t = {0};
    unsigned char *m = mt_wasm(64, 11);

    xds_buf_init(&b, 4096);
    pax_rec(&b, "comment", "global");
    tb_entry(&t, "GlobalHead", NULL, 'g', b.data, b.len, TB_USTAR);
    tb_entry(&t, "plugin.wasm", NULL, '0', m, 64, TB_USTAR);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
    ck_assert_str_eq(f.wasm_name, "plugin.wasm");
    xds_buf_cleanup(&b);
    xds_free(m);
  }
}
END_TEST

/* ---- each format still read ---- */

START_TEST(each_format_built) {
  static const enum tb_fmt fmts[] = {TB_V7, TB_USTAR, TB_GNU};
  unsigned char *m = mt_wasm(3000, 12);
  const char *cfg = "{\"type\":\"envoy_proxy\"}";

  for (size_t i = 0; i < 3; i++) {
    struct tb t = {0};
    struct unpack_found f;
    struct xds_err err;

    tb_entry(&t, "etc/", NULL, fmts[i] == TB_V7 ? '\0' : '5', NULL, 0, fmts[i]);
    tb_entry(&t, "etc/hosts", NULL, '0', "127.0.0.1 x\n", 12, fmts[i]);
    tb_entry(&t, "lnk", NULL, '2', NULL, 0, fmts[i]);
    tb_entry(&t, "plugin.wasm", fmts[i] == TB_USTAR ? "some/dir" : NULL,
             fmts[i] == TB_V7 ? '\0' : '0', m, 3000, fmts[i]);
    tb_entry(&t, "runtime-config.json", NULL, '0', cfg, strlen(cfg), fmts[i]);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
    ck_assert_uint_eq(f.wasm_len, 3000);
    ck_assert_uint_eq(f.runtime_config_len, strlen(cfg));
    if (fmts[i] == TB_USTAR)
      ck_assert_str_eq(f.wasm_name, "some/dir/plugin.wasm");
    else
      ck_assert_str_eq(f.wasm_name, "plugin.wasm");
  }
  /* A GNU header's prefix area holds times, not a path prefix. */
  {
    struct tb t = {0};
    struct unpack_found f;
    struct xds_err err;
    unsigned char h[512];

    tb_header(h, "plugin.wasm", NULL, '0', 3000, TB_GNU);
    memcpy(h + 345, "14000000000", 11); /* atime */
    tb_sum(h);
    tb_entry_h(&t, h, m, 3000);
    tb_zeros(&t, 1024);
    ck_assert_int_eq(scan(&t, &f, &err), 0);
    ck_assert_str_eq(f.wasm_name, "plugin.wasm");
  }
  xds_free(m);
}
END_TEST

/* Archives written by GNU tar 1.34 (tests/data/tar/README): each holds
 * dir/plugin.wasm (the 44 bytes of tests/data/tar/plugin.wasm) under a
 * directory name long enough to need each format's long-name mechanism. */
START_TEST(each_format_gnu_tar) {
  static const char *const files[] = {"v7.tar.gz", "ustar.tar.gz", "gnu.tar.gz",
                                      "pax.tar.gz", "oldgnu.tar.gz"};
  /* Their module's directory: dir, a{60}/b{60} or a{100}/b{100}/c{100}. */
  static const unsigned dirs[][3] = {{0, 0, 0},
                                     {60, 60, 0},
                                     {100, 100, 100},
                                     {100, 100, 100},
                                     {100, 100, 100}};
  char path[512];
  unsigned char want[64];
  size_t want_len;
  FILE *fp;

  snprintf(path, sizeof(path), "%s/tar/plugin.wasm", XDS_TEST_DATA);
  fp = fopen(path, "rb");
  ck_assert_ptr_nonnull(fp);
  want_len = fread(want, 1, sizeof(want), fp);
  fclose(fp);
  ck_assert_uint_gt(want_len, 8);
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    unsigned char raw[16384];
    size_t n;
    struct xds_buf out;
    struct unpack_found f;
    struct xds_err err;
    unsigned char *exact;

    snprintf(path, sizeof(path), "%s/tar/%s", XDS_TEST_DATA, files[i]);
    fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "%s", path);
    n = fread(raw, 1, sizeof(raw), fp);
    fclose(fp);
    xds_buf_init(&out, 1 << 20);
    ck_assert_int_eq(unpack_gunzip(raw, n, &out, &err), 0);
    exact = xds_malloc(out.len);
    memcpy(exact, out.data, out.len);
    ck_assert_msg(unpack_tar_find_wasm(exact, out.len, &f, &err) == 0, "%s: %s",
                  files[i], err.msg);
    ck_assert_uint_eq(f.wasm_len, want_len);
    ck_assert(memcmp(f.wasm, want, want_len) == 0);
    {
      char name[400];
      size_t k = 0;

      if (dirs[i][0] == 0) {
        k = (size_t)snprintf(name, sizeof(name), "dir/");
      } else {
        for (int d = 0; d < 3 && dirs[i][d] > 0; d++) {
          memset(name + k, 'a' + d, dirs[i][d]);
          k += dirs[i][d];
          name[k++] = '/';
        }
      }
      snprintf(name + k, sizeof(name) - k, "plugin.wasm");
      name[sizeof(f.wasm_name) - 1] = '\0'; /* wasm_name is truncated */
      ck_assert_msg(strcmp(f.wasm_name, name) == 0, "%s: %s", files[i],
                    f.wasm_name);
    }
    xds_free(exact);
    xds_buf_cleanup(&out);
  }
}
END_TEST

/* What an http(s) download is unwrapped as: any tar format, v7 included
 * (no magic), is recognised by its header checksum; a Wasm module is not. */
START_TEST(tar_detection) {
  static const enum tb_fmt fmts[] = {TB_V7, TB_USTAR, TB_GNU};
  unsigned char *m = mt_wasm(600, 13);
  unsigned char zeros[512] = {0};

  for (size_t i = 0; i < 3; i++) {
    struct tb t = {0};
    size_t len;
    unsigned char *p;

    tb_entry(&t, "plugin.wasm", NULL, '0', m, 600, fmts[i]);
    tb_zeros(&t, 1024);
    p = tb_exact(&t, &len);
    ck_assert(unpack_is_tar(p, len));
    ck_assert(!unpack_is_tar(p, 511));
    p[10] ^= 1; /* checksum no longer matches */
    ck_assert(!unpack_is_tar(p, len));
    xds_free(p);
  }
  ck_assert(!unpack_is_tar(m, 600));
  ck_assert(!unpack_is_tar(zeros, sizeof(zeros)));
  xds_free(m);
}
END_TEST

Suite *unpack_suite(void) {
  Suite *s = suite_create("unpack");
  TCase *tc = tcase_create("tar");

  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, ustar_full_prefix_and_name);
  tcase_add_test(tc, pax_record_shorter_than_itself);
  tcase_add_test(tc, truncated_headers);
  tcase_add_test(tc, hostile_sizes);
  tcase_add_test(tc, bad_checksum);
  tcase_add_test(tc, too_many_entries);
  tcase_add_test(tc, gnu_long_names);
  tcase_add_test(tc, pax_bad_lengths);
  tcase_add_test(tc, pax_valid);
  tcase_add_test(tc, each_format_built);
  tcase_add_test(tc, each_format_gnu_tar);
  tcase_add_test(tc, tar_detection);
  suite_add_tcase(s, tc);
  return s;
}
