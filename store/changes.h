/*
 * changes.h: the one path every store source's catalogs take before they
 * are delivered (store/source.h): compare with the catalog last
 * delivered, log what changed in one format, report the problems, and say
 * whether the catalog must be delivered.
 *
 * One format for every store (the file watcher, the etcd watcher and the
 * in-memory source all call changes_apply()):
 *   store: added WasmExtension <fqn> (<file or key>:<line>:<column>)
 *   store: updated ListenerTemplate <name> (...)
 *   store: removed ... (the location it had)
 *   store: ... and N more changes             (past CHANGES_MAX_LOGGED)
 *   store: <file or key>:<line>:<column>: <field>: <message>   (problems,
 *                                               error or warn level)
 *   store <name> loaded (<why>): N extensions, M listener templates;
 *     E errors, W warnings (T ms)                       (the first load)
 *   store <name> reloaded (<why>): A added, U updated, R removed; E errors
 *     (rejected), W warnings; the store holds N extensions, M listener
 *     templates (T ms)     ("holds", not "serves": the removal guard of
 *                           store/source.h may still hold the change)
 *   store <name> reloaded (<why>): nothing changed (...)   (CHANGES_SAY)
 * A catalog is delivered when it is the first, when a resource changed, or
 * when the problems differ from those last delivered (so an unchanged
 * store with a broken document is not logged again at every reload).
 *
 * Threads: one struct changes belongs to one source and is used by the
 * thread that delivers that source's catalogs.
 */
#ifndef XDS_STORE_CHANGES_H
#define XDS_STORE_CHANGES_H

#include <stdint.h>

#include "store/catalog.h"
#include "store/problems.h"

/* Most changed resources logged one by one per delivery; the rest are
 * counted in one line. */
#define CHANGES_MAX_LOGGED 200
/* Longest store name kept for the log, including the terminator. */
#define CHANGES_NAME_MAX 512

/* Flags of changes_apply(). CHANGES_INITIAL: the first load (a summary,
 * no per-change lines). CHANGES_SAY: log the reload at info even if
 * nothing changed (an operator asked for it: SIGHUP). */
#define CHANGES_INITIAL 1u
#define CHANGES_SAY 2u

struct changes {
  char name[CHANGES_NAME_MAX]; /* the store, for the summary line */
  struct catalog *last;        /* the catalog last delivered, or NULL */
  uint64_t sig;                /* of its problems */
  unsigned long delivered;     /* catalogs delivered */
};

/* Sets up c for the store called name (copied, truncated). */
void changes_init(struct changes *c, const char *name);
/* Drops the last catalog. */
void changes_cleanup(struct changes *c);

/*
 * Compares next (borrowed) with the catalog last delivered, logs as
 * above, and returns 1 when next must be delivered (it then becomes the
 * last delivered: c takes its own reference), 0 when it changes nothing.
 * why names what caused the load ("inotify", "SIGHUP", "revision 42");
 * ms is how long the load took (logged). Never fails: a log line that
 * cannot be formatted is skipped.
 */
int changes_apply(struct changes *c, struct catalog *next,
                  const struct problems *pb, const char *why, unsigned flags,
                  double ms);

/* Logs each problem of pb ("store: ..."), errors at error level. */
void changes_log_problems(const struct problems *pb);

#endif
