/*
 * unpack.c: bounded gunzip (zlib) and an in-place tar scanner.
 *
 * Invariant: nothing here allocates from a length read out of the input.
 * gunzip grows its output in fixed chunks under the caller's limit; the tar
 * scanner reads only inside [data, data + len): every offset it forms is
 * checked against what remains before it is used, every field is read for
 * its fixed width without assuming a terminator, and every string it
 * builds is bounded by UNPACK_TAR_MAX_PATH.
 */
#include "modules/unpack.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

/* Output grows by this much per inflate call. */
#define GUNZIP_CHUNK (64 * 1024)
#define TAR_BLOCK 512

int unpack_is_gzip(const void *data, size_t len) {
  const unsigned char *p = data;

  return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

int unpack_gunzip(const void *data, size_t len, struct xds_buf *out,
                  struct xds_err *err) {
  z_stream zs;
  int rc = 0, zrc;

  memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, 15 + 16) != Z_OK)
    return xds_err_set(err, XDS_ENOMEM, "gunzip: cannot initialise zlib");
  zs.next_in = (Bytef *)(uintptr_t)data;
  zs.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
  if (len > UINT32_MAX) {
    rc = xds_err_set(err, XDS_ETOOBIG, "gunzip: input too large");
    goto out;
  }
  for (;;) {
    size_t room = out->max - out->len;
    size_t chunk = room < GUNZIP_CHUNK ? room : GUNZIP_CHUNK;
    char *p;

    if (chunk == 0) {
      /* At the limit: one more byte of output means too big. */
      unsigned char probe;

      zs.next_out = &probe;
      zs.avail_out = 1;
      zrc = inflate(&zs, Z_NO_FLUSH);
      if (zs.avail_out == 0) {
        rc = xds_err_set(err, XDS_ETOOBIG,
                         "gunzip: output exceeds the limit of %zu bytes",
                         out->max);
        goto out;
      }
    } else {
      rc = xds_buf_extend(out, chunk, &p);
      if (rc < 0) {
        xds_err_set(err, rc, "gunzip: %s", xds_strerror(rc));
        goto out;
      }
      zs.next_out = (Bytef *)p;
      zs.avail_out = (uInt)chunk;
      zrc = inflate(&zs, Z_NO_FLUSH);
      out->len -= zs.avail_out;
      out->data[out->len] = '\0';
    }
    if (zrc == Z_STREAM_END) {
      /* Concatenated members: go on if more gzip follows. */
      if (zs.avail_in > 0 && unpack_is_gzip(zs.next_in, zs.avail_in)) {
        if (inflateReset(&zs) != Z_OK) {
          rc = xds_err_set(err, XDS_EPARSE, "gunzip: reset failed");
          goto out;
        }
        continue;
      }
      break;
    }
    if (zrc == Z_BUF_ERROR && zs.avail_in == 0) {
      rc = xds_err_set(err, XDS_EPARSE, "gunzip: truncated input");
      goto out;
    }
    if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
      rc = xds_err_set(err, XDS_EPARSE, "gunzip: corrupt input (%s)",
                       zs.msg ? zs.msg : "zlib error");
      goto out;
    }
  }
out:
  inflateEnd(&zs);
  return rc;
}

/* ---- tar ----
 *
 * Header layout (POSIX ustar; GNU and v7 share the first 257 bytes): name
 * 0..99, mode, uid, gid, size 124..135, mtime, chksum 148..155, typeflag
 * 156, linkname 157..256, magic 257..262, version 263..264, uname, gname,
 * devmajor, devminor, prefix 345..499 (ustar only: GNU keeps times there).
 */
#define TAR_NAME_OFF 0
#define TAR_NAME_LEN 100
#define TAR_SIZE_OFF 124
#define TAR_SIZE_LEN 12
#define TAR_SUM_OFF 148
#define TAR_SUM_LEN 8
#define TAR_TYPE_OFF 156
#define TAR_MAGIC_OFF 257
#define TAR_PREFIX_OFF 345
#define TAR_PREFIX_LEN 155

/* What the meta headers before an entry said about it. */
struct tar_next {
  char path[UNPACK_TAR_MAX_PATH + 1]; /* pax "path", else GNU 'L', or "" */
  int has_path;
  uint64_t size; /* pax "size" */
  int has_size;
  int sparse; /* pax GNU.sparse.* records */
  unsigned n_meta;
};

/* Parses a numeric header field of n bytes: octal digits (leading spaces,
 * then digits, then only NULs or spaces; all NULs or spaces is 0), or
 * base-256 when the first byte has its top bit set (bit 6 is the sign).
 * Returns 0 and *v, 1 for a negative base-256 value, or -1. */
static int tar_number(const unsigned char *f, size_t n, uint64_t *v) {
  uint64_t x = 0;
  size_t i = 0;

  if (f[0] & 0x80) {
    if (f[0] & 0x40)
      return 1;
    x = f[0] & 0x3f;
    for (i = 1; i < n; i++) {
      if (x >> 56)
        return -1; /* would pass 64 bits */
      x = (x << 8) | f[i];
    }
    *v = x;
    return 0;
  }
  while (i < n && f[i] == ' ')
    i++;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (x >> 61)
      return -1;
    x = (x << 3) | (uint64_t)(f[i] - '0');
  }
  for (; i < n; i++)
    if (f[i] != '\0' && f[i] != ' ')
      return -1;
  *v = x;
  return 0;
}

/* Verifies the header checksum: the sum of the header's bytes with the
 * checksum field counted as spaces, unsigned (POSIX) or signed (some old
 * writers). */
static int tar_sum_ok(const unsigned char *h) {
  uint64_t want;
  unsigned long su = 0;
  long ss = 0;

  if (tar_number(h + TAR_SUM_OFF, TAR_SUM_LEN, &want) != 0)
    return 0;
  for (size_t i = 0; i < TAR_BLOCK; i++) {
    unsigned char c = i >= TAR_SUM_OFF && i < TAR_SUM_OFF + TAR_SUM_LEN
                          ? (unsigned char)' '
                          : h[i];

    su += c;
    ss += (signed char)c;
  }
  return want == su || (ss >= 0 && want == (uint64_t)ss);
}

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return 0;
  return 1;
}

int unpack_is_tar(const void *data, size_t len) {
  return len >= TAR_BLOCK && !all_zero(data, TAR_BLOCK) && tar_sum_ok(data);
}

/* Copies at most n bytes of a field up to its first NUL into dst at *pos
 * (bounded by UNPACK_TAR_MAX_PATH, which the callers' sums never pass). */
static void put_field(char *dst, size_t *pos, const unsigned char *f,
                      size_t n) {
  size_t k = strnlen((const char *)f, n);

  memcpy(dst + *pos, f, k);
  *pos += k;
  dst[*pos] = '\0';
}

/* Parses a decimal string of n bytes (n > 0, digits only) into *v.
 * Returns 0 or -1 (empty, not a digit, over 64 bits). */
static int dec_number(const unsigned char *p, size_t n, uint64_t *v) {
  uint64_t x = 0;

  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9' || x > (UINT64_MAX - 9) / 10)
      return -1;
    x = x * 10 + (uint64_t)(p[i] - '0');
  }
  *v = x;
  return 0;
}

/* Reads the "LEN key=value\n" records of a pax extended header of n bytes
 * at archive offset at. For 'x' (global == 0) path, size and GNU.sparse.*
 * go into nx; a 'g' header is only checked. Returns 0 or XDS_EPARSE. */
static int pax_records(const unsigned char *p, size_t n, int global, size_t at,
                       struct tar_next *nx, struct xds_err *err) {
  size_t off = 0;

  while (off < n) {
    size_t i = off, digits, end, kw, eq;
    uint64_t rec;
    const unsigned char *e;

    while (i < n && p[i] >= '0' && p[i] <= '9' && i - off < 20)
      i++;
    digits = i - off;
    if (digits == 0 || i >= n || p[i] != ' ' ||
        dec_number(p + off, digits, &rec) < 0)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: pax header at offset %zu: record at byte %zu "
                         "does not start with a length and a space",
                         at, off);
    /* The length counts the whole record: digits, space, "k=", newline. */
    if (rec > n - off || rec < digits + 1 + 3)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: pax header at offset %zu: record at byte %zu "
                         "claims %llu bytes (%zu remain, %zu at least)",
                         at, off, (unsigned long long)rec, n - off, digits + 4);
    end = off + (size_t)rec; /* one past the newline */
    kw = i + 1;
    if (p[end - 1] != '\n')
      return xds_err_set(err, XDS_EPARSE,
                         "tar: pax header at offset %zu: record at byte %zu "
                         "does not end with a newline",
                         at, off);
    e = memchr(p + kw, '=', end - 1 - kw);
    if (e == NULL || e == p + kw)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: pax header at offset %zu: record at byte %zu "
                         "has no keyword=value",
                         at, off);
    eq = (size_t)(e - p);
    if (!global) {
      const unsigned char *v = p + eq + 1;
      size_t kl = eq - kw, vl = end - 1 - (eq + 1);

      if (kl == 4 && memcmp(p + kw, "path", 4) == 0) {
        if (vl == 0 || vl > UNPACK_TAR_MAX_PATH || memchr(v, '\0', vl))
          return xds_err_set(err, XDS_EPARSE,
                             "tar: pax header at offset %zu: path is empty, "
                             "longer than %d bytes or holds a NUL",
                             at, UNPACK_TAR_MAX_PATH);
        memcpy(nx->path, v, vl);
        nx->path[vl] = '\0';
        nx->has_path = 2; /* pax beats a GNU long name */
      } else if (kl == 4 && memcmp(p + kw, "size", 4) == 0) {
        if (dec_number(v, vl, &nx->size) < 0)
          return xds_err_set(err, XDS_EPARSE,
                             "tar: pax header at offset %zu: size is not a "
                             "decimal number of 64 bits",
                             at);
        nx->has_size = 1;
      } else if (kl > 11 && memcmp(p + kw, "GNU.sparse.", 11) == 0) {
        nx->sparse = 1;
      }
    }
    off = end;
  }
  return 0;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');

  return s ? s + 1 : path;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);

  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void copy_trunc(char *dst, size_t cap, const char *src) {
  size_t n = strnlen(src, cap - 1);

  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* The path of the entry whose header is h: what the meta headers said,
 * else ustar prefix/name, else name. path holds UNPACK_TAR_MAX_PATH + 1. */
static void entry_path(const unsigned char *h, const struct tar_next *nx,
                       char *path) {
  size_t pos = 0;

  if (nx->has_path) {
    memcpy(path, nx->path, strlen(nx->path) + 1);
    return;
  }
  path[0] = '\0';
  /* POSIX ustar ("ustar\0" "00") only: GNU ("ustar  \0") keeps times in
   * the prefix area. */
  if (memcmp(h + TAR_MAGIC_OFF,
             "ustar\0"
             "00",
             8) == 0 &&
      h[TAR_PREFIX_OFF] != '\0') {
    put_field(path, &pos, h + TAR_PREFIX_OFF, TAR_PREFIX_LEN);
    path[pos++] = '/';
    path[pos] = '\0';
  }
  put_field(path, &pos, h + TAR_NAME_OFF, TAR_NAME_LEN);
}

/* Types with no data whatever their size field says (POSIX: hard link,
 * symlink, character and block device, directory, FIFO). */
static int header_only(char type) {
  return type >= '1' && type <= '6';
}

int unpack_tar_find_wasm(const void *data, size_t len, struct unpack_found *out,
                         struct xds_err *err) {
  const unsigned char *base = data;
  const unsigned char *only = NULL, *plugin = NULL;
  size_t off = 0, only_len = 0, plugin_len = 0, n_wasm = 0, entries = 0;
  char only_name[sizeof(out->wasm_name)] = "";
  char plugin_name[sizeof(out->wasm_name)] = "";
  struct tar_next nx; /* about 8 KiB of stack with path */
  char path[UNPACK_TAR_MAX_PATH + 1];

  memset(out, 0, sizeof(*out));
  memset(&nx, 0, sizeof(nx));
  for (;;) {
    const unsigned char *h = base + off, *body;
    uint64_t size;
    size_t padded, left;
    char type;
    int nrc;

    left = len - off;
    if (left == 0)
      break; /* no end-of-archive blocks: fine, all data was present */
    if (left < TAR_BLOCK) {
      if (all_zero(h, left))
        break;
      return xds_err_set(err, XDS_EPARSE,
                         "tar: truncated header at offset %zu (%zu of %d "
                         "bytes)",
                         off, left, TAR_BLOCK);
    }
    if (all_zero(h, TAR_BLOCK))
      break; /* end of archive */
    if (++entries > UNPACK_TAR_MAX_ENTRIES)
      return xds_err_set(err, XDS_ETOOBIG,
                         "tar: more than %d entries (at offset %zu)",
                         UNPACK_TAR_MAX_ENTRIES, off);
    if (!tar_sum_ok(h))
      return xds_err_set(err, XDS_EPARSE,
                         "tar: bad header checksum at offset %zu (not a tar "
                         "header, or a corrupt one)",
                         off);
    type = (char)h[TAR_TYPE_OFF];
    nrc = tar_number(h + TAR_SIZE_OFF, TAR_SIZE_LEN, &size);
    if (nrc > 0)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: negative size field at offset %zu", off);
    if (nrc < 0)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: bad size field at offset %zu (not octal or "
                         "base-256, or over 64 bits)",
                         off);
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      if (nx.n_meta++ >= UNPACK_TAR_MAX_META)
        return xds_err_set(err, XDS_EPARSE,
                           "tar: more than %d extended headers in a row at "
                           "offset %zu",
                           UNPACK_TAR_MAX_META, off);
    } else {
      if (nx.has_size)
        size = nx.size;
      if (header_only(type))
        size = 0;
    }
    left -= TAR_BLOCK;
    if (size > left)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: entry at offset %zu claims %llu bytes but only "
                         "%zu remain",
                         off, (unsigned long long)size, left);
    padded = ((size_t)size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
    if (padded > left)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: entry at offset %zu: truncated padding after "
                         "its %llu bytes",
                         off, (unsigned long long)size);
    body = h + TAR_BLOCK;
    if (type == 'x' || type == 'g') {
      int rc;

      if (size > UNPACK_TAR_MAX_PAX)
        return xds_err_set(err, XDS_EPARSE,
                           "tar: pax header at offset %zu: %llu bytes, over "
                           "the limit of %d",
                           off, (unsigned long long)size, UNPACK_TAR_MAX_PAX);
      rc = pax_records(body, (size_t)size, type == 'g', off, &nx, err);
      if (rc < 0)
        return rc;
      if (type == 'g')
        nx.n_meta--; /* a global header describes no single entry */
    } else if (type == 'L') {
      size_t n = strnlen((const char *)body, (size_t)size);

      if (n == 0 || n > UNPACK_TAR_MAX_PATH)
        return xds_err_set(err, XDS_EPARSE,
                           "tar: GNU long name at offset %zu is empty or "
                           "longer than %d bytes",
                           off, UNPACK_TAR_MAX_PATH);
      if (nx.has_path < 2) { /* a pax path wins */
        memcpy(nx.path, body, n);
        nx.path[n] = '\0';
        nx.has_path = 1;
      }
    } else if (type == 'K') {
      if (size > UNPACK_TAR_MAX_PATH + 1)
        return xds_err_set(err, XDS_EPARSE,
                           "tar: GNU long link name at offset %zu is longer "
                           "than %d bytes",
                           off, UNPACK_TAR_MAX_PATH);
    } else {
      int regular = type == '0' || type == '\0' || type == '7';

      entry_path(h, &nx, path);
      if (regular || type == 'S') {
        const char *bn = base_name(path);
        int is_plugin = strcmp(bn, "plugin.wasm") == 0;
        int is_wasm = ends_with(bn, ".wasm");

        if ((is_plugin || is_wasm) && (type == 'S' || nx.sparse))
          return xds_err_set(err, XDS_EPARSE,
                             "tar: %s at offset %zu is a sparse file: not "
                             "read",
                             bn, off);
        if (strncmp(bn, ".wh.", 4) != 0) {
          if (is_plugin && plugin == NULL) {
            plugin = body;
            plugin_len = (size_t)size;
            copy_trunc(plugin_name, sizeof(plugin_name), path);
          } else if (is_wasm && !is_plugin) {
            n_wasm++;
            only = body;
            only_len = (size_t)size;
            copy_trunc(only_name, sizeof(only_name), path);
          }
          if (strcmp(bn, "runtime-config.json") == 0) {
            out->runtime_config = body;
            out->runtime_config_len = (size_t)size;
          }
        }
      }
      memset(&nx, 0, sizeof(nx));
    }
    off += TAR_BLOCK + padded;
  }
  if (nx.n_meta > 0)
    return xds_err_set(err, XDS_EPARSE,
                       "tar: the archive ends after an extended header (no "
                       "entry follows it)");
  if (plugin != NULL) {
    out->wasm = plugin;
    out->wasm_len = plugin_len;
    memcpy(out->wasm_name, plugin_name, sizeof(out->wasm_name));
    return 0;
  }
  if (n_wasm == 1) {
    out->wasm = only;
    out->wasm_len = only_len;
    memcpy(out->wasm_name, only_name, sizeof(out->wasm_name));
    return 0;
  }
  if (n_wasm > 1)
    return xds_err_set(err, XDS_ENOTFOUND,
                       "tar: %zu .wasm files and no plugin.wasm: ambiguous",
                       n_wasm);
  return xds_err_set(err, XDS_ENOTFOUND,
                     "tar: no plugin.wasm or .wasm file in the layer");
}
