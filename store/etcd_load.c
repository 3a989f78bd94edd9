/*
 * etcd_load.c: list, put into a fresh etcd_store, build.
 */
#include "store/etcd_load.h"

#include <string.h>

#include "base/alloc.h"
#include "store/etcd_client.h"
#include "store/etcd_store.h"

static int put_one(void *ctx, const struct etcd_kv *kv) {
  return etcd_store_put(ctx, kv->key, kv->value, kv->value_len,
                        kv->mod_revision) == XDS_ENOMEM
             ? XDS_ENOMEM
             : 0;
}

int etcd_load(const struct etcd_config *cfg, const struct store_hooks *hooks,
              struct catalog **out, struct problems *pb,
              struct etcd_load_info *info, struct xds_err *err) {
  struct etcd_client *c = NULL;
  struct etcd_store *s = NULL;
  struct etcd_header h;
  char *dir = NULL;
  int rc;

  *out = NULL;
  memset(info, 0, sizeof(*info));
  memset(&h, 0, sizeof(h));
  rc = etcd_client_new(cfg, &c, err);
  if (rc < 0)
    goto done;
  s = etcd_store_new(cfg->prefix, hooks);
  dir = xds_asprintf("%s/", cfg->prefix);
  if (s == NULL || dir == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto done;
  }
  /* A listing restarted after a compaction puts the same keys again; a
   * put replaces, so the store ends as the last listing says. */
  rc = etcd_client_list(c, dir, cfg->page_size, put_one, s, &h, err);
  if (rc < 0)
    goto done;
  rc = etcd_store_build(s, out, pb);
  if (rc < 0) {
    xds_err_set(err, rc, "out of memory");
    goto done;
  }
  info->revision = h.revision;
  info->n_keys = etcd_store_count(s);

done:
  etcd_store_free(s);
  etcd_client_free(c);
  xds_free(dir);
  return rc;
}
