/*
 * file_watch.h: hot reload of a file store.
 *
 * A watcher owns one thread that watches the store path with inotify and
 * reloads it (file_store_load_ex(), with the previous catalog, so nothing
 * is lost: see file_store.h) when it changes:
 *   - the store directory and every directory below it that the loader
 *     walks (symlinked directories included) are watched; so is the
 *     directory holding the store path itself, for the name of the path
 *     only (a store file saved by rename or `mv` into place, a store path
 *     that is a symlink switched to another target, a store path deleted
 *     and created again), and the directory of a symlinked file's target;
 *   - an event counts when it names something the loader reads (a *.yaml
 *     or *.yml name, a directory it walks) or `..data` (the symlink a
 *     Kubernetes ConfigMap mount switches atomically); editor leftovers
 *     (swap files, *~, .#lock) do not;
 *   - a directory created later is watched from the reload its creation
 *     triggers (files written into it meanwhile are read by that reload);
 *   - a store path that does not exist yet is waited for: its nearest
 *     existing ancestor is watched for the next path component;
 *   - events are debounced: a reload runs debounce_ms after the last event
 *     of a burst (and at most max(10 x debounce_ms, 1 s) after the first,
 *     so a never-ending stream of writes cannot starve it);
 *   - file_watch_trigger() (SIGHUP) reloads at once, without debounce;
 *   - a lost inotify queue (IN_Q_OVERFLOW) reloads and rewatches everything.
 *
 * After each reload the watcher hands the new catalog to the shared path
 * of every store (store/changes.h: compare with the one last delivered,
 * log each added, updated or removed resource and each problem in the one
 * format, then a summary) and calls on_load on the watcher thread only
 * when that path says it changed (a reload asked by file_watch_trigger is
 * logged even when nothing changed). A reload that cannot
 * load at all (the store path vanished, out of memory) keeps the previous
 * catalog and delivers it again with the error as a problem.
 *
 * Limits: at most FILE_WATCH_MAX_WATCHES watched directories (start fails
 * with XDS_ETOOBIG above it; a later reload reports it as a problem and
 * keeps the watches it has), an inotify read buffer of FILE_WATCH_BUF_BYTES,
 * and the kernel's fs.inotify.max_user_watches (reported by name).
 */
#ifndef XDS_STORE_FILE_WATCH_H
#define XDS_STORE_FILE_WATCH_H

#include <stddef.h>

#include "base/err.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"

#define FILE_WATCH_DEFAULT_DEBOUNCE_MS 100
/* Longest debounce accepted (a longer one is clamped). */
#define FILE_WATCH_MAX_DEBOUNCE_MS 60000
/* Most directories watched at once. */
#define FILE_WATCH_MAX_WATCHES 4096
/* Bytes read from inotify at once. */
#define FILE_WATCH_BUF_BYTES 65536

struct file_watch;

/*
 * Called with each catalog to serve: cat is a new reference the callee
 * takes (and eventually drops with catalog_unref()); pb (borrowed for the
 * call) holds every problem of that load. Runs on the watcher thread,
 * except the first call (the initial load), which runs inside
 * file_watch_start() on the caller's thread.
 */
typedef void (*file_watch_load_fn)(void *ctx, struct catalog *cat,
                                   const struct problems *pb);

/* Counters, for tests, benchmarks and an admin page. */
struct file_watch_stats {
  unsigned long loads;     /* reloads run since start (initial excluded) */
  unsigned long delivered; /* on_load calls (initial included) */
  unsigned long events;    /* inotify events read */
  unsigned long triggers;  /* reloads asked by file_watch_trigger() */
  size_t watches;          /* directories watched now */
  double last_load_ms;     /* wall time of the last (re)load, in ms */
};

/*
 * Sets up the watches, loads the store once (with hooks, nullable, copied)
 * and delivers that catalog to on_load before returning (always, even when
 * empty or with problems), then starts the watcher thread. debounce_ms is
 * the quiet time before a reload (FILE_WATCH_DEFAULT_DEBOUNCE_MS is the
 * usual value; 0 reloads after each batch of events read; more than
 * FILE_WATCH_MAX_DEBOUNCE_MS is clamped). A store path that does not exist
 * yet is not an error: an empty
 * catalog is delivered with the error as a problem, and the path is waited
 * for.
 *
 * Returns 0 with *out; or, with *out NULL, nothing delivered and err
 * saying why: XDS_EIO (inotify or thread setup failed, the kernel's watch
 * limit), XDS_ETOOBIG (more than FILE_WATCH_MAX_WATCHES directories, more
 * than FILE_STORE_MAX_FILES files), XDS_ENOMEM.
 */
int file_watch_start(const char *path, unsigned debounce_ms,
                     const struct store_hooks *hooks,
                     file_watch_load_fn on_load, void *ctx,
                     struct file_watch **out, struct xds_err *err);

/*
 * Asks for a reload now (the server calls it on SIGHUP). Async-signal-safe:
 * one write(2) to an eventfd; errno is preserved. Returns 0, or XDS_EIO
 * when the write failed. Not after file_watch_stop() has begun.
 */
int file_watch_trigger(struct file_watch *w);

/* Stops the thread (joins it; a reload under way finishes first, and no
 * on_load call happens after this returns) and frees everything. NULL is a
 * no-op. Not from on_load. */
void file_watch_stop(struct file_watch *w);

/* A consistent copy of the counters. Any thread. */
void file_watch_get_stats(struct file_watch *w, struct file_watch_stats *out);

#endif
