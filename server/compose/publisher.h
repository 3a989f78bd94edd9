/*
 * publisher.h: the one owner of what wasmxds serves.
 *
 * The publisher alone holds the current catalog, the generation counter
 * and the module results (it owns the struct delivery when modules are
 * fetched), and alone builds snapshots and hands them to the transport and
 * to the status page, through the sink it is given. Everything else only
 * posts to it:
 *   - a store source posts each new catalog (publisher_set_catalog: the
 *     newest replaces one not yet taken) and its degraded/ok state
 *     (publisher_set_store_status);
 *   - the module resolver workers post "module results changed"
 *     (publisher_post_modules).
 * A post sets a flag and signals a condition variable, nothing more (like
 * libuv's uv_async_send): several posts before the publisher thread wakes
 * are one rebuild, and a post that arrives during a rebuild causes exactly
 * one more. No lock is held across modules: the publisher's own mutex
 * guards only its mailbox and counters, never a build.
 *
 * A rebuild builds a snapshot of the current catalog with the current
 * module results, from the snapshot served (snapshot_build_from: the
 * encodings and class views the change cannot touch are shared, not
 * built again). It is published (generation + 1) only when something a
 * proxy receives differs from the snapshot served (snapshot_same_content);
 * otherwise it is dropped silently (a failed pull retried, a module
 * re-resolved to the same digest). A build that fails keeps the previous
 * snapshot in service and reports the store degraded with the reason
 * until a later build succeeds.
 *
 * The threads of a running wasmxds and what each owns (README "How it is
 * built" says the same):
 *   - the serving loops (xds_server_run, --threads N: loop 0 on the main
 *     thread, the others on threads it starts), each with its own gRPC
 *     completion queue, each owning the calls and streams gRPC hands it
 *     for their whole life; they only read the snapshot the publisher
 *     last published (each takes its own reference);
 *   - the publisher thread (this module) owns the catalog being served,
 *     the generation, the module results handed to encoding
 *     (delivery_update, delivery_module_of) and every snapshot build;
 *   - the store source's thread (file watcher: inotify; etcd watcher: the
 *     etcd connection; see store/source.h) owns its descriptors and the
 *     last catalog it delivered; it posts catalogs here;
 *   - the module resolver workers (modules/resolver) own the transfers in
 *     progress; they post "modules changed" here;
 *   - the admin threads (libmicrohttpd) own their connections; they read
 *     published snapshots, counters, the status slot and the module cache.
 *   - with --write-status, the status writer (server/admin/status_etcd)
 *     owns its etcd client and lease; it asks the serving loop for stream
 *     status as /debug/proxies does and reads the status slot.
 *   - gRPC's own threads touch no wasmxds state but one: their log lines
 *     go through server/transport/grpc_log (a table of recent lines behind
 *     its own mutex, then the logger).
 *
 * Threads: publisher_new and publisher_free on one thread (main);
 * every publisher_set_* / publisher_post_* from any thread; the sink's
 * functions are called on the publisher thread only.
 */
#ifndef XDS_PUBLISHER_H
#define XDS_PUBLISHER_H

#include <stdint.h>

#include "base/err.h"
#include "server/compose/delivery.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/compose/stats.h"
#include "store/catalog.h"
#include "store/problems.h"

/* Longest degraded reason kept, including the terminator. */
#define PUBLISHER_REASON_MAX 256

/* Where snapshots and the serving state go. Called on the publisher
 * thread. */
struct publisher_sink {
  /* snap is borrowed for the call (take a reference to keep it). */
  void (*publish)(void *ctx, struct snapshot *snap);
  /* generation: the one served (0: none yet); degraded: why the store or
   * the build is degraded (NULL: it is not). Called after every publish
   * and whenever the degraded reason changes. */
  void (*status)(void *ctx, unsigned long generation, const char *degraded);
  void *ctx;
};

struct publisher_config {
  struct encode_opts encode;             /* copied; strings must outlive p */
  const struct delivery_config *modules; /* nullable: modules are not
                                            fetched; else the publisher
                                            creates and owns the delivery
                                            (its on_change is replaced) */
  struct xds_stats *stats;               /* nullable; must outlive p */
  struct publisher_sink sink;
};

struct publisher_stats {
  unsigned long posts;     /* set_catalog, post_modules, set_store_status */
  unsigned long builds;    /* snapshots built (or attempted) */
  unsigned long failed;    /* builds that failed */
  unsigned long published; /* snapshots handed to the sink */
  unsigned long unchanged; /* builds dropped: nothing proxies get changed */
  uint64_t generation;     /* the generation served */
  unsigned long catalogs;  /* catalogs taken from the mailbox */
};

struct publisher;

/*
 * Creates the publisher (and, with cfg->modules, the delivery and its
 * resolver workers) and starts its thread. Returns 0 with *out, or
 * XDS_ENOMEM, XDS_EIO (thread; err says why) or delivery_new's errors
 * (err names the flag).
 */
int publisher_new(const struct publisher_config *cfg, struct publisher **out,
                  struct xds_err *err);

/*
 * Stops the publisher thread (a build under way finishes first; no sink
 * call happens after this returns), the module workers, and frees
 * everything, the last snapshot reference included. NULL: no-op. Posts
 * racing with it are ignored.
 */
void publisher_free(struct publisher *p);

/* The delivery (module results and the module route), or NULL when
 * modules are not fetched. Owned by p. */
struct delivery *publisher_delivery(struct publisher *p);

/*
 * Posts a new catalog to serve (takes the caller's reference; NULL is
 * ignored). pb (nullable, borrowed) is counted in the stats' store
 * counters. A catalog not yet taken by the publisher thread is replaced
 * (dropped) by a newer one. Any thread.
 */
void publisher_set_catalog(struct publisher *p, struct catalog *cat,
                           const struct problems *pb);

/* Posts "module results changed". Any thread; the shape of
 * delivery_config.on_change (arg is the publisher). */
void publisher_post_modules(void *arg);

/* Posts the store's state: degraded with reason, or fine (NULL). The
 * reason is copied (truncated to PUBLISHER_REASON_MAX - 1). Any thread. */
void publisher_set_store_status(struct publisher *p, const char *degraded);

/*
 * Waits until the publisher thread has handled every post made before
 * the call (and is idle) or timeout_ms passed. Returns 0, or XDS_EIO on
 * timeout. For tests and one-shot commands. Any thread but the
 * publisher's.
 */
int publisher_wait_idle(struct publisher *p, int timeout_ms);

/* A consistent copy of the counters. Any thread. */
void publisher_get_stats(struct publisher *p, struct publisher_stats *out);

#endif
