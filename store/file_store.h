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
 * Duplicates and port conflicts are settled by the catalog builder in load
 * order (path order, then document order): the first wins, the later one
 * is rejected with an error naming both.
 *
 * Nothing is lost on reload. Given the previous catalog, a resource of it
 * that has no valid definition in the new load is kept (its last good
 * version, with its original location) when:
 *   - a broken document in the new load names it (same fqn or name);
 *   - its file still exists but cannot be read or is not valid YAML (the
 *     complete documents before a syntax error still load normally);
 *   - its file holds a broken document whose identity cannot be read (it
 *     cannot be told apart from an edit of this resource).
 * Otherwise it is gone: its document or its file was deleted. Each kept
 * resource is reported as a warning.
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

/*
 * Loads path (a file or a directory) into a new catalog.
 *
 * prev (nullable, borrowed) is the catalog currently served; see above for
 * what is kept from it. Every problem (errors and warnings) is added to pb.
 *
 * Returns 0 with *out holding one reference (even when pb got errors: the
 * catalog is whatever was valid). Returns, with *out NULL and err saying
 * why: XDS_ENOTFOUND when path does not exist, XDS_EIO when it cannot be
 * read at all, XDS_ETOOBIG over FILE_STORE_MAX_FILES, XDS_ENOMEM. The
 * caller then keeps serving prev. Any thread; the store is only read.
 */
int file_store_load(const char *path, const struct catalog *prev,
                    struct catalog **out, struct problems *pb,
                    struct xds_err *err);

/* Whether a directory entry's name is one the walk reads (1) or skips (0):
 * the rule above, for watchers deciding which events matter. */
int file_store_wants_name(const char *name, int is_dir);

#endif
