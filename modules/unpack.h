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

/* What unpack_tar_find_wasm found: pointers into the caller's buffer. */
struct unpack_found {
  const unsigned char *wasm; /* the module's bytes */
  size_t wasm_len;
  char wasm_name[128];                 /* its path in the archive (truncated) */
  const unsigned char *runtime_config; /* runtime-config.json, or NULL */
  size_t runtime_config_len;
};

/* Scans a tar archive (ustar, GNU long names and pax path records) for the
 * module: the first regular file whose base name is plugin.wasm, else the
 * only regular file whose name ends in .wasm. Also notes a
 * runtime-config.json next to it. Returns 0, XDS_ENOTFOUND (no module, or
 * several .wasm files and no plugin.wasm) or XDS_EPARSE (bad or truncated
 * archive); err says which. */
int unpack_tar_find_wasm(const void *data, size_t len, struct unpack_found *out,
                         struct xds_err *err);

#endif
