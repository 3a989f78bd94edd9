/*
 * source.h: where the catalogs to serve come from, behind one interface.
 *
 * Three kinds of store source implement the same operations (a static
 * const struct source_ops each): "file" (a YAML file or directory watched
 * with inotify, store/file_watch.h), "etcd" (an etcd v3 prefix, listed and
 * watched, store/etcd_watch.h) and "memory" (catalogs a test hands in,
 * source_memory_load). Whatever the kind, every catalog takes the same
 * path before it reaches the sink:
 *   1. store/changes.h: compare with the catalog last loaded, log what
 *      changed and every problem in one format, drop what changes nothing;
 *   2. the removal guard: a catalog that would take away every listener
 *      template the sink was given, or more than max_removal_pct percent
 *      of its resources (when it held at least removal_min), is held, not
 *      delivered: the previous catalog stays in service, the store is
 *      reported degraded with the reason (sink.on_status), the hold is
 *      counted (sink.on_hold) and logged. A later catalog that is not a
 *      mass removal replaces the held one and clears the hold; an
 *      operator confirms a real mass removal with source_confirm_removal()
 *      (the server: POST /store/confirm-removal on the admin server);
 *   3. sink.on_catalog.
 * A file store that does not exist when the server starts delivers
 * nothing until it appears (proxies would otherwise drop every listener);
 * the error is logged.
 *
 * Threads: source_open/_new_memory, source_start and source_free on one
 * thread (main); the sink is called on the source's own thread (file and
 * etcd: their watcher thread; the first file load: source_start's caller;
 * memory: source_memory_load's caller; a confirmed removal:
 * source_confirm_removal's caller), one call at a time (the source's own
 * mutex serializes deliveries). source_trigger is async-signal-safe.
 */
#ifndef XDS_STORE_SOURCE_H
#define XDS_STORE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/catalog.h"
#include "store/etcd_config.h"
#include "store/file_store.h"
#include "store/problems.h"

/* Defaults of the removal guard (struct source_config fields left 0). */
#define SOURCE_DEFAULT_MAX_REMOVAL_PCT 50
#define SOURCE_DEFAULT_REMOVAL_MIN 10
/* Longest reason kept, including the terminator. */
#define SOURCE_REASON_MAX 512

/* Where a source's catalogs and state go. */
struct source_sink {
  /* A catalog to serve: cat is a new reference the callee takes; pb (the
   * problems of that load) is borrowed for the call. */
  void (*on_catalog)(void *ctx, struct catalog *cat, const struct problems *pb);
  /* The store's state changed: degraded says why it is (etcd
   * unreachable, a change held), NULL when it is fine. Nullable. */
  void (*on_status)(void *ctx, const char *degraded);
  /* A change was held (held 1) or the hold ended (0: confirmed, or
   * replaced by a change that is no mass removal). Nullable. */
  void (*on_hold)(void *ctx, int held);
  void *ctx;
  /* Called just before on_catalog with the etcd revision that catalog
   * reflects (an etcd store only; a held change's revision is given when
   * it is confirmed). Nullable. */
  void (*on_revision)(void *ctx, int64_t revision);
};

struct source_config {
  const char *store;        /* a path, or an etcd:// or etcds:// URL */
  unsigned debounce_ms;     /* quiet time before a burst of changes loads */
  struct etcd_config *etcd; /* an etcd URL's --etcd-* flags: source_open
                               parses the URL into it and finishes it;
                               borrowed until source_start returns */
  int etcd_debounce_given;  /* etcd->debounce_ms was set by a flag: keep it
                               instead of debounce_ms */
  const struct store_hooks *hooks; /* nullable, copied */
  int max_removal_pct;             /* the guard's share, 1..100 (100: only the
                                      every-template rule); 0: default */
  size_t removal_min; /* the share rule applies from this many served
                         resources; 0: default */
};

struct store_source;

/* What every kind implements (a static const singleton per kind). */
struct source_ops {
  const char *name; /* "file", "etcd", "memory" */
  int (*start)(struct store_source *s, struct xds_err *err);
  int (*trigger)(struct store_source *s); /* async-signal-safe */
  void (*stop)(struct store_source *s);   /* no sink call after it */
};

/*
 * Creates the source cfg->store names: an etcd source for an etcd:// or
 * etcds:// URL (the URL parsed into cfg->etcd, which is then finished:
 * the password file read), a file source for anything else. Nothing runs
 * until source_start. Returns 0 with *out, or XDS_EINVAL (a bad URL or
 * flag; err says which), XDS_EIO (password file), XDS_ENOMEM.
 */
int source_open(const struct source_config *cfg, const struct source_sink *sink,
                struct store_source **out, struct xds_err *err);

/* An in-memory source (for tests): catalogs come from
 * source_memory_load. Returns 0 with *out, or XDS_ENOMEM. */
int source_new_memory(const struct source_config *cfg,
                      const struct source_sink *sink,
                      struct store_source **out);

/*
 * Starts it: a file source loads once and delivers before returning (see
 * above for a store that does not exist); an etcd source waits a bounded
 * time for its first catalog. Returns 0, or the kind's start errors (err
 * says why; nothing delivered).
 */
int source_start(struct store_source *s, struct xds_err *err);

/* Asks for a reload now (SIGHUP), logged even when nothing changed.
 * Async-signal-safe. Returns 0 or XDS_EIO. Between start and free. */
int source_trigger(struct store_source *s);

/*
 * Serves the held change (an operator confirmed the mass removal).
 * Returns 0, or XDS_ENOTFOUND when nothing is held. Any thread; the sink
 * is called on it.
 */
int source_confirm_removal(struct store_source *s);

/* Whether a change is held, and why (copied into reason, nullable, of
 * SOURCE_REASON_MAX bytes). Any thread. */
int source_held(struct store_source *s, char *reason);

/* Stops the source (no sink call after it returns) and frees it. NULL:
 * no-op. */
void source_free(struct store_source *s);

/* "file", "etcd" or "memory". */
const char *source_kind(const struct store_source *s);

/*
 * Memory source: loads cat (the caller's reference is taken) with its
 * problems pb (nullable, borrowed) through the shared path, on the
 * caller's thread. why names the cause in the log. Returns 1 when it was
 * delivered, 0 when it changed nothing or was held, XDS_EINVAL for
 * another kind of source.
 */
int source_memory_load(struct store_source *s, struct catalog *cat,
                       const struct problems *pb, const char *why);

#endif
