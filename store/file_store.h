/*
 * file_store.h: load a store from a YAML file or a directory of them.
 *
 * A directory is walked recursively: every regular file (or symlink to
 * one) named *.yaml or *.yml is read, in byte order of its path. Hidden
 * entries (a name starting with '.', which also covers Kubernetes
 * ConfigMap internals such as ..data) and editor leftovers (*~, .#*, #*#,
 * *.swp) are skipped; a symlinked directory is followed unless it loops
 * back to one of its ancestors. A file named directly is read whatever its
 * name.
 *
 * Every document of every file is decoded (store/decode.h). A bad document
 * is reported and skipped; good neighbours in the same file are kept.
 * Duplicates are settled by the catalog builder: on a reload (prev given),
 * a resource prev serves from a file keeps that file, and a newcomer that
 * redefines it in another file is rejected with an error naming both
 * locations; between two new definitions load order (path order, then
 * document order) decides: the first wins, the later one is rejected with
 * an error naming both. Port conflicts follow load order.
 *
 * Each file's own problems are sorted by line and column (problems_sort()),
 * so a document's read top to bottom whatever order its fields were
 * checked in; the catalog's (duplicates, ports) and retention's follow.
 * A directory where the load finds no document at all (no *.yaml or *.yml
 * file, or only empty documents) gets a warning naming it: the store is
 * empty.
 *
 * Nothing is lost on reload. Given the previous catalog, a resource of it
 * that has no valid definition in the new load is kept (its last good
 * version, with its original location) when:
 *   - a broken document in the new load names it (same fqn or name);
 *   - its file still exists but cannot be read or is not valid YAML (the
 *     complete documents before a syntax error still load normally);
 *   - its file holds a broken document whose identity cannot be read (it
 *     cannot be told apart from an edit of this resource).
 *   - its file is empty (0 bytes): an editor that truncates before it
 *     writes shows an empty file for a moment. To remove every resource
 *     of a file, delete the file or leave a `---` in it.
 * Otherwise it is gone: its document or its file was deleted. Each kept
 * resource is reported as a warning.
 *
 * A cache (struct file_store_cache) makes reloads cheap: it remembers, per
 * path, the bytes' size and a 128-bit hash and what they yielded (records,
 * problems, notes), so a later load with the same cache re-parses only the
 * files whose bytes changed. It reads every file on every load (no stat
 * heuristics, so a same-size edit within one mtime tick is still seen).
 * Records are shared between the cache and the catalogs (model.h
 * refcounts), not copied.
 */
#ifndef XDS_STORE_FILE_STORE_H
#define XDS_STORE_FILE_STORE_H

#include "base/err.h"
#include "store/catalog.h"
#include "store/problems.h"

/* Most files read in one load: bounds the walk of a mistaken --store /. */
#define FILE_STORE_MAX_FILES 10000
/* Deepest directory level walked below the store directory. */
#define FILE_STORE_MAX_DEPTH 16
/* Most directories read in one load, the store's own included (each one
 * once, however many symlinks lead to it): bounds the walk of a mistaken
 * --store / or of a symlink fan-out. The same as FILE_WATCH_MAX_WATCHES:
 * more could not be watched. */
#define FILE_STORE_MAX_DIRS 4096
/* Most threads that parse files at once (the calling thread included);
 * fewer on a machine with fewer cores or for a store of few files. */
#define FILE_STORE_MAX_THREADS 4

/*
 * What the server adds to validation without the store depending on it.
 *
 * check_tmpl (nullable) is called once for each ListenerTemplate document
 * that decoded without errors, before it enters the catalog: the server
 * converts each native filter's typedConfig to protobuf there. Returning 0
 * accepts the template. A negative return rejects it exactly like an
 * invalid document: the hook has added its error(s) to pb (naming the
 * filter's file:line:column; if it added none, a generic located error is
 * added for it), the template is skipped and, on reload, the last good
 * version of that template is kept. XDS_ENOMEM fails the whole load.
 *
 * The hook may be called from several loader threads at once (it must be
 * thread-safe, e.g. pure), and its verdict is cached with the file: the
 * same bytes are not checked again by a load that uses the same cache.
 */
struct store_hooks {
  int (*check_tmpl)(void *ctx, const struct listener_tmpl *t,
                    struct problems *pb);
  void *ctx;
};

/* Per-path results of earlier loads; see above. Used by one load at a
 * time. */
struct file_store_cache;

/* A new, empty cache, or NULL when out of memory. */
struct file_store_cache *file_store_cache_new(void);
/* Frees the cache (and drops its references to records). NULL: no-op. */
void file_store_cache_free(struct file_store_cache *c);
/* Number of files whose results the cache holds. */
size_t file_store_cache_files(const struct file_store_cache *c);

/*
 * Loads path (a file or a directory) into a new catalog.
 *
 * prev (nullable, borrowed) is the catalog currently served; see above for
 * what is kept from it. Every problem (errors and warnings) is added to pb.
 *
 * Returns 0 with *out holding one reference (even when pb got errors: the
 * catalog is whatever was valid). Returns, with *out NULL and err saying
 * why: XDS_ENOTFOUND when path does not exist, XDS_EIO when it cannot be
 * read at all, XDS_ETOOBIG over FILE_STORE_MAX_FILES or FILE_STORE_MAX_DIRS,
 * XDS_ENOMEM. The caller then keeps serving prev. Any thread; the store is only
 * read.
 */
int file_store_load(const char *path, const struct catalog *prev,
                    struct catalog **out, struct problems *pb,
                    struct xds_err *err);

/*
 * file_store_load() with the server's hooks (nullable) and a cache
 * (nullable; always pass the same hooks with the same cache). A load that
 * fails leaves the cache as it was. file_store_load(p, prev, out, pb, err)
 * is file_store_load_ex(p, NULL, NULL, prev, out, pb, err).
 */
int file_store_load_ex(const char *path, const struct store_hooks *hooks,
                       struct file_store_cache *cache,
                       const struct catalog *prev, struct catalog **out,
                       struct problems *pb, struct xds_err *err);

/* Whether a directory entry's name is one the walk reads (1) or skips (0):
 * the rule above, for watchers deciding which events matter. */
int file_store_wants_name(const char *name, int is_dir);

#endif
