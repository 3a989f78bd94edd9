/*
 * etcd_load.h: one complete read of an etcd store into a catalog, built
 * exactly as a server's first load builds it (every key under the prefix,
 * paged at one revision, then store/etcd_store.h). For the commands that
 * look at a store once: `wasmxds validate` and `render`, `wasmxdsctl
 * validate`.
 */
#ifndef XDS_STORE_ETCD_LOAD_H
#define XDS_STORE_ETCD_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/catalog.h"
#include "store/etcd_config.h"
#include "store/file_store.h"
#include "store/problems.h"

struct etcd_load_info {
  int64_t revision; /* the store's revision the listing read */
  size_t n_keys;    /* keys under the prefix */
};

/*
 * Connects with cfg (finished: etcd_config_finish()), lists every key
 * below cfg->prefix + "/" and builds the catalog with hooks (nullable).
 * Returns 0 with *out (one reference; whatever was valid), every key's
 * problems in pb and info filled; or an etcd client error (XDS_EIO
 * unreachable, XDS_EPERM authentication or permission, XDS_ETLS, ...;
 * err says why) or XDS_ENOMEM, with *out NULL.
 */
int etcd_load(const struct etcd_config *cfg, const struct store_hooks *hooks,
              struct catalog **out, struct problems *pb,
              struct etcd_load_info *info, struct xds_err *err);

#endif
