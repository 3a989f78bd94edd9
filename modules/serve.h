/*
 * serve.h: GET/HEAD /modules/sha256/<hex>.wasm from the module cache, as an
 * admin route (base/http_route.h; registered on server/admin/admin.h).
 *
 *   200  the module: Content-Type application/wasm, Content-Length,
 *        ETag "<hex>", Cache-Control immutable (public or private);
 *   304  If-None-Match lists the ETag (or *);
 *   403  a private module (fetched with a pull secret) and the caller is
 *        not a proxy of a tenant whose extension references it;
 *   404  anything else under the prefix (unknown digest, bad name).
 * Bodies go out with sendfile from the cache file; a module evicted while
 * being sent is still sent whole (the file stays open).
 *
 * Wiring: fill a struct modserve (it must outlive the admin server) and
 *   admin_route(admin, MODSERVE_PREFIX, "GET,HEAD", modserve_handle, &ms);
 * Thread-safe: runs on the admin threads.
 */
#ifndef XDS_MODULES_SERVE_H
#define XDS_MODULES_SERVE_H

#include <stddef.h>

#include "modules/cache.h"
#include "modules/resolver.h"
#include "base/http_route.h"

#define MODSERVE_PREFIX "/modules/sha256/"

/* Says who is asking: fills org and tenant (fqns, NUL-terminated, within
 * the given capacities) and returns 1, or returns 0 when the caller is not
 * known. Runs on an admin thread. */
typedef int (*modserve_identify_fn)(void *arg, const struct admin_req *req,
                                    char *org, size_t org_cap, char *tenant,
                                    size_t tenant_cap);

struct modserve {
  struct modcache *cache;        /* required */
  struct resolver *resolver;     /* nullable: then private modules are 403 */
  modserve_identify_fn identify; /* nullable: callers are unknown, so
                                    private modules are 403 */
  void *identify_arg;
};

/* The admin handler; arg is a struct modserve *. Returns 0 (the answer is
 * in resp) or XDS_EIO (the cache file could not be opened). */
int modserve_handle(void *arg, const struct admin_req *req,
                    struct admin_resp *resp);

#endif
