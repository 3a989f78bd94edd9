/*
 * cache.h: the on-disk, content-addressed module cache (--module-cache DIR).
 *
 * Layout under DIR (created 0700; files 0600):
 *   sha256/<hex>.wasm    a module, named by the SHA-256 of its bytes
 *   sha256/<hex>.json    its metadata: {"size", "root_ids", "private"}
 *   resolutions.json     what each source resolved to, so a restart needs no
 *                        network for what it already has: {"resolutions":
 *                        {KEY: {"sha256", "manifest", "at"}}, "manifests":
 *                        {MANIFEST_HEX: MODULE_HEX}}
 *   tmp/                 files being written; emptied at open
 * Every file is written to tmp/, fsynced and renamed into place, so a crash
 * never leaves a partial module under its final name. At open every module
 * is re-hashed and one whose bytes do not match its name is deleted.
 *
 * Size: when the modules' total passes max_bytes, the least recently used
 * modules that no extension references (modcache_set_referenced) are
 * deleted until it fits; a referenced module is never deleted, even if the
 * cache stays over its bound. Recency is the last put or serve, kept in the
 * file's mtime across restarts.
 *
 * Thread-safe: one mutex; no call blocks on the network.
 */
#ifndef XDS_MODULES_CACHE_H
#define XDS_MODULES_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "modules/digest.h"

/* Most resolutions kept; the oldest are forgotten first. */
#define MODCACHE_MAX_RESOLUTIONS 10000
/* Largest resolutions.json or metadata file read back. */
#define MODCACHE_MAX_INDEX_FILE (16u * 1024 * 1024)

struct modcache;

struct modcache_meta {
  uint64_t size;
  char **root_ids; /* owned copy */
  size_t n_root_ids;
  int is_private; /* only ever fetched with credentials */
};

/* Opens (creating if needed) the cache in dir, bounded to max_bytes (0: no
 * bound). Returns 0 and *out, XDS_EIO (dir not usable; err says why) or
 * XDS_ENOMEM. */
int modcache_open(const char *dir, uint64_t max_bytes, struct modcache **out,
                  struct xds_err *err);

/* Closes. NULL: no-op. */
void modcache_free(struct modcache *c);

/* Stores a module under hex, which must equal its SHA-256 (checked: else
 * XDS_EINVAL). root_ids (borrowed) go to its metadata. is_private: fetched
 * with credentials; a module once stored as public stays public. Storing
 * bytes already present only updates metadata and recency. The module
 * counts as referenced until the next modcache_set_referenced, so it is
 * not evicted before its extension can claim it. Returns 0,
 * XDS_EINVAL, XDS_EIO or XDS_ENOMEM. May evict other unreferenced modules. */
int modcache_put(struct modcache *c, const char *hex, const void *data,
                 size_t len, char *const *root_ids, size_t n_root_ids,
                 int is_private, struct xds_err *err);

/* 1 when the module is present, else 0. When meta is not NULL and the
 * module is present, fills it (release with modcache_meta_cleanup). */
int modcache_has(struct modcache *c, const char *hex,
                 struct modcache_meta *meta);
void modcache_meta_cleanup(struct modcache_meta *m);

/* Opens the module for reading and marks it used. Returns 0 with *fd (the
 * caller closes it), *size and *is_private, or XDS_ENOTFOUND / XDS_EIO. */
int modcache_open_module(struct modcache *c, const char *hex, int *fd,
                         uint64_t *size, int *is_private);

/* Records that source key (any string without credentials) resolved to
 * the module hex through manifest_hex (nullable: not OCI). Persisted. */
int modcache_resolution_put(struct modcache *c, const char *key,
                            const char *hex, const char *manifest_hex);

/* Looks key up. Returns 0 and fills hex (and *at, the unix time it was
 * resolved, when at is not NULL), or XDS_ENOTFOUND. */
int modcache_resolution_get(struct modcache *c, const char *key,
                            char hex[DIGEST_HEX_LEN + 1], int64_t *at);

/* 1 and hex when manifest_hex is known to hold a module that is present. */
int modcache_manifest_get(struct modcache *c, const char *manifest_hex,
                          char hex[DIGEST_HEX_LEN + 1]);

/* Replaces the set of referenced modules (borrowed hex strings), then
 * evicts if over the bound. Returns 0 or XDS_ENOMEM (set unchanged). */
int modcache_set_referenced(struct modcache *c, const char *const *hexes,
                            size_t n);

/* Totals, for stats and tests. */
uint64_t modcache_bytes(struct modcache *c);
size_t modcache_count(struct modcache *c);
/* Modules deleted to fit max_bytes since open (not the ones deleted at open
 * because their bytes did not match their name). */
uint64_t modcache_evictions(struct modcache *c);

#endif
