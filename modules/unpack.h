/*
 * unpack.h: the two container formats a Wasm module can arrive in inside an
 * ordinary ("compat") image layer: gzip and tar.
 *
 * Both work on memory already read under a limit and never trust a size
 * written in the input: gunzip stops at the caller's output limit, and the
 * tar reader only points into the buffer it was given, checking every
 * header's size against the bytes actually present (no allocation at all).
 * Pure functions; any thread.
 */
#ifndef XDS_MODULES_UNPACK_H
#define XDS_MODULES_UNPACK_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/* 1 when data starts with the gzip magic (1f 8b), else 0. */
int unpack_is_gzip(const void *data, size_t len);

/* Inflates gzip data (one or more concatenated members) into out, which the
 * caller has initialised; out->max bounds the output. Returns 0,
 * XDS_ETOOBIG (the output would pass out->max), XDS_EPARSE (corrupt or
 * truncated input) or XDS_ENOMEM. */
int unpack_gunzip(const void *data, size_t len, struct xds_buf *out,
                  struct xds_err *err);

/* 1 when data starts with a tar header (any format, v7 included): a
 * non-zero 512-byte block whose checksum is right; else 0. */
int unpack_is_tar(const void *data, size_t len);

/* Limits of the tar reader. Each bounds the work or the memory a hostile
 * archive can cost; an archive over one is refused (XDS_EPARSE, or
 * XDS_ETOOBIG for the entry count), never read in part. */
/* Headers of any kind in one archive (meta headers included). */
#define UNPACK_TAR_MAX_ENTRIES 20000
/* Longest path, whichever way it is written (ustar prefix + name, GNU
 * 'L' entry, pax "path" record), in bytes. */
#define UNPACK_TAR_MAX_PATH 4096
/* Data of one pax extended header ('x' or 'g'), in bytes. */
#define UNPACK_TAR_MAX_PAX 65536
/* Meta headers ('x', 'L', 'K') in a row before the entry they describe. */
#define UNPACK_TAR_MAX_META 8

/* What unpack_tar_find_wasm found: pointers into the caller's buffer. */
struct unpack_found {
  const unsigned char *wasm; /* the module's bytes */
  size_t wasm_len;
  char wasm_name[128];                 /* its path in the archive (truncated) */
  const unsigned char *runtime_config; /* runtime-config.json, or NULL */
  size_t runtime_config_len;
};

/* Scans a tar archive for the module: the first regular file whose base
 * name is plugin.wasm, else the only regular file whose name ends in
 * .wasm. Also notes a runtime-config.json (the last one seen).
 *
 * Formats: v7, POSIX ustar (prefix + name), GNU ('L' long names, 'K' long
 * link names, base-256 sizes) and pax ('x' records: path and size are
 * used, others skipped; 'g' records checked and ignored). Every header is
 * checked: its checksum, every numeric field it uses (octal, or base-256;
 * negative and over-64-bit values refused), its data and padding present
 * in the buffer, names read without assuming a terminator; pax records
 * must have a length that covers exactly "LEN key=value\n". Link,
 * device, directory and FIFO entries carry no data. Sparse files are not
 * read (a sparse module is refused). Nothing is allocated; the limits
 * above apply.
 *
 * Returns 0, XDS_ENOTFOUND (no module, or several .wasm files and no
 * plugin.wasm), XDS_EPARSE (a bad, hostile or truncated archive) or
 * XDS_ETOOBIG (over UNPACK_TAR_MAX_ENTRIES); err says which and at which
 * offset. Pure; any thread. */
int unpack_tar_find_wasm(const void *data, size_t len, struct unpack_found *out,
                         struct xds_err *err);

#endif
