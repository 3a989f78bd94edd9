/*
 * etcd_watch.h: the etcd store, live: list, watch, debounce, deliver.
 *
 * A watcher owns one thread and one etcd client (store/etcd_client.h). It
 *   1. lists every key below <prefix>/ in pages at one revision, decodes
 *      them (store/etcd_store.h) and delivers the first catalog;
 *   2. watches the prefix from the next revision over one streaming
 *      request, applying each put and delete as it arrives; a burst is
 *      debounced: a catalog is built debounce_ms after the last change
 *      of a burst (at most max(10 x debounce_ms, 1 s) after its first);
 *   3. when the stream breaks (member down, network, TLS), marks the store
 *      degraded with the reason, moves to the next member and reconnects
 *      after a capped exponential backoff with jitter (a random delay in
 *      [d/2, d], d doubling from backoff_min_ms to backoff_max_ms, reset
 *      once a watch is established), resuming the watch from the last
 *      revision applied, so nothing is lost or applied twice;
 *   4. when etcd answers that the revision was compacted (or the cluster
 *      id changed: a restored or replaced cluster), lists everything
 *      again and replaces the keys (etcd_store_relist_end), so the next
 *      catalog differs from the last one by exactly what changed;
 *   5. re-authenticates when a watch is refused for an invalid token.
 * While etcd cannot be reached nothing is removed: the last catalog stays
 * in force (the callback is simply not called).
 *
 * After each build the watcher hands the catalog to the shared path of
 * every store (store/changes.h: compare with the one last delivered, log
 * in the one format, report every problem naming the key and the line in
 * its value) and calls on_load only when that path says it changed. The status
 * (ready, degraded, reason, revision) is logged on each change and readable
 * from any thread for /readyz.
 */
#ifndef XDS_STORE_ETCD_WATCH_H
#define XDS_STORE_ETCD_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/catalog.h"
#include "store/etcd_config.h"
#include "store/file_store.h"
#include "store/problems.h"

/* Longest status reason kept, including the terminator. */
#define ETCD_WATCH_REASON_MAX 256

struct etcd_watch;

/*
 * Called with each catalog to serve, always on the watcher thread: cat is
 * a new reference the callee takes (and eventually drops with
 * catalog_unref()); pb (borrowed for the call) holds every problem of that
 * build; revision is the etcd revision the catalog reflects (what
 * /metrics publishes as wasmxds_store_revision). Must not call
 * etcd_watch_stop().
 */
typedef void (*etcd_watch_load_fn)(void *ctx, struct catalog *cat,
                                   const struct problems *pb, int64_t revision);

/* A consistent copy of the watcher's state, for /readyz and tests. */
struct etcd_watch_status {
  int ready;    /* the first complete load has been delivered */
  int degraded; /* etcd is unreachable or the watch is down: the last
                   catalog stays in force */
  char reason[ETCD_WATCH_REASON_MAX]; /* why degraded; "" when not */
  int64_t revision;                   /* the etcd revision the keys reflect */
  size_t keys;                        /* keys held */
  unsigned long delivered;            /* on_load calls */
  unsigned long builds;               /* catalogs built (delivered or not) */
  unsigned long relists;    /* complete listings, the first one included */
  unsigned long reconnects; /* watches opened after the first */
  unsigned long decodes;    /* values decoded */
};

/*
 * Called on the watcher thread whenever ready, degraded or the reason
 * changes (st borrowed for the call), e.g. to feed /readyz. Must not call
 * etcd_watch_stop().
 */
typedef void (*etcd_watch_status_fn)(void *ctx,
                                     const struct etcd_watch_status *st);

/*
 * Starts watching the store cfg describes (etcd_config_finish() done;
 * borrowed during the call only). hooks (nullable) is copied; its
 * check_tmpl runs on the watcher thread. Waits at most
 * cfg->start_timeout_ms for the first catalog to be delivered; whether it
 * was is in etcd_watch_get_status() (not ready: etcd was unreachable, the
 * thread keeps trying and delivers when it can). Returns 0 with *out; or,
 * with *out NULL and no callback made, XDS_EIO (thread or descriptor
 * setup failed), XDS_ENOMEM.
 */
int etcd_watch_start(const struct etcd_config *cfg,
                     const struct store_hooks *hooks,
                     etcd_watch_load_fn on_load, void *ctx,
                     struct etcd_watch **out, struct xds_err *err);

/* etcd_watch_start() plus on_status (nullable), called with ctx. */
int etcd_watch_start_ex(const struct etcd_config *cfg,
                        const struct store_hooks *hooks,
                        etcd_watch_load_fn on_load,
                        etcd_watch_status_fn on_status, void *ctx,
                        struct etcd_watch **out, struct xds_err *err);

/*
 * Asks for a reload: the watcher lists every key again (within a second,
 * or when the current attempt to reach etcd ends) and logs the result
 * even when nothing changed. Async-signal-safe (an atomic store). Returns
 * 0.
 */
int etcd_watch_trigger(struct etcd_watch *w);

/* Stops the thread (a request under way is cancelled; no on_load call
 * happens after this returns) and frees everything. NULL is a no-op. */
void etcd_watch_stop(struct etcd_watch *w);

/* Fills out. Any thread. */
void etcd_watch_get_status(struct etcd_watch *w, struct etcd_watch_status *out);

#endif
