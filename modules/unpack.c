/*
 * unpack.c: bounded gunzip (zlib) and an in-place tar scanner.
 *
 * Invariant: nothing here allocates from a length read out of the input.
 * gunzip grows its output in fixed chunks under the caller's limit; the tar
 * scanner checks each header's size against what remains of the buffer.
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

/* Parses a tar numeric field: octal digits, or GNU base-256 when the top
 * bit of the first byte is set. Returns 0 and *v, or -1. */
static int tar_number(const unsigned char *f, size_t n, unsigned long long *v) {
  unsigned long long x = 0;
  size_t i = 0;

  if (f[0] & 0x80) {
    if (f[0] != 0x80)
      return -1; /* negative or absurd */
    for (i = 1; i < n; i++) {
      if (x >> 55)
        return -1;
      x = (x << 8) | f[i];
    }
    *v = x;
    return 0;
  }
  while (i < n && f[i] == ' ')
    i++;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (x >> 60)
      return -1;
    x = (x << 3) | (unsigned)(f[i] - '0');
  }
  if (i < n && f[i] != '\0' && f[i] != ' ')
    return -1;
  *v = x;
  return 0;
}

static void copy_trunc(char *dst, size_t cap, const char *src) {
  size_t n = strnlen(src, cap - 1);

  memcpy(dst, src, n);
  dst[n] = '\0';
}

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return 0;
  return 1;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');

  return s ? s + 1 : path;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);

  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Reads "len path=value\n" records of a pax header for the path. */
static void pax_path(const unsigned char *p, size_t n, char *name,
                     size_t name_cap) {
  size_t off = 0;

  while (off < n) {
    unsigned long long rec = 0;
    size_t i = off;

    while (i < n && p[i] >= '0' && p[i] <= '9' && rec < n)
      rec = rec * 10 + (unsigned)(p[i++] - '0');
    if (rec == 0 || rec > n - off || i >= n || p[i] != ' ')
      return;
    i++;
    if (off + rec - i > 5 && memcmp(p + i, "path=", 5) == 0) {
      size_t vlen = off + rec - (i + 5) - 1; /* drop the newline */
      if (vlen >= name_cap)
        vlen = name_cap - 1;
      memcpy(name, p + i + 5, vlen);
      name[vlen] = '\0';
    }
    off += rec;
  }
}

int unpack_tar_find_wasm(const void *data, size_t len, struct unpack_found *out,
                         struct xds_err *err) {
  const unsigned char *base = data;
  size_t off = 0;
  char longname[256] = "";
  const unsigned char *only = NULL, *plugin = NULL;
  size_t only_len = 0, plugin_len = 0, n_wasm = 0;
  char only_name[128] = "", plugin_name[128] = "";

  memset(out, 0, sizeof(*out));
  while (off + TAR_BLOCK <= len) {
    const unsigned char *h = base + off;
    unsigned long long size;
    size_t padded;
    char name[256];
    char type;

    if (all_zero(h, TAR_BLOCK))
      break; /* end of archive */
    if (tar_number(h + 124, 12, &size) < 0)
      return xds_err_set(err, XDS_EPARSE, "tar: bad size field at offset %zu",
                         off);
    if (size > len - off - TAR_BLOCK)
      return xds_err_set(err, XDS_EPARSE,
                         "tar: entry at offset %zu claims %llu bytes but only "
                         "%zu remain",
                         off, size, len - off - TAR_BLOCK);
    padded = (size_t)((size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK);
    type = (char)h[156];
    if (longname[0] != '\0') {
      memcpy(name, longname, sizeof(name));
      longname[0] = '\0';
    } else {
      size_t pl = 0;

      name[0] = '\0';
      if (memcmp(h + 257, "ustar", 5) == 0 && h[345] != '\0') {
        pl = strnlen((const char *)h + 345, 155);
        memcpy(name, h + 345, pl);
        name[pl++] = '/';
      }
      memcpy(name + pl, h, strnlen((const char *)h, 100));
      name[pl + strnlen((const char *)h, 100)] = '\0';
    }
    if (type == 'L') { /* GNU long name: the next entry's name */
      size_t n =
          size < sizeof(longname) - 1 ? (size_t)size : sizeof(longname) - 1;
      memcpy(longname, h + TAR_BLOCK, n);
      longname[n] = '\0';
      longname[strnlen(longname, n)] = '\0';
    } else if (type == 'x') { /* pax extended header for the next entry */
      pax_path(h + TAR_BLOCK, (size_t)size, longname, sizeof(longname));
    } else if (type == '0' || type == '\0' || type == '7') {
      const char *bn = base_name(name);

      if (strncmp(bn, ".wh.", 4) != 0) {
        if (strcmp(bn, "plugin.wasm") == 0 && plugin == NULL) {
          plugin = h + TAR_BLOCK;
          plugin_len = (size_t)size;
          copy_trunc(plugin_name, sizeof(plugin_name), name);
        } else if (ends_with(bn, ".wasm")) {
          n_wasm++;
          only = h + TAR_BLOCK;
          only_len = (size_t)size;
          copy_trunc(only_name, sizeof(only_name), name);
        }
        if (strcmp(bn, "runtime-config.json") == 0) {
          out->runtime_config = h + TAR_BLOCK;
          out->runtime_config_len = (size_t)size;
        }
      }
    }
    off += TAR_BLOCK + padded;
  }
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
