/*
 * ratelog.h: a limit on how many log lines one source (a proxy, by node
 * id) may cause per kind of event, with a count of everything.
 *
 * Each key (a node id) has, per kind of event (a NACK, a refused name,
 * ...), a window of window_ms: the first per_window events of a window
 * may be logged, the rest are counted and suppressed. When a window with
 * suppressed events is over, one summary line says how many there were
 * ("node X: ... and 9995 more NACKs in the last 10 s"); xds_ratelog_flush
 * writes the summaries of windows that ended while no event came.
 *
 * The table outlives the streams: a proxy that reconnects under the same
 * key finds its window and counts where it left them. It holds at most
 * max_keys keys; a new key beyond that evicts the one seen least recently
 * (after writing its pending summary). Totals per key and kind are kept
 * while the key is in the table.
 *
 * Threads: any; a table has a mutex that each call takes (wasmxds: the
 * serving loops share one table, so a proxy keeps its budget whichever
 * loop serves it). Allocates only when a key is first seen.
 */
#ifndef XDS_BASE_RATELOG_H
#define XDS_BASE_RATELOG_H

#include <stddef.h>

/* Most kinds of event one table tells apart. */
#define XDS_RATELOG_KINDS_MAX 8

struct xds_ratelog;

/* What a key's events of one kind amount to since the key entered the
 * table. */
struct xds_ratelog_counts {
  unsigned long events;     /* every event counted */
  unsigned long suppressed; /* events not logged */
};

/*
 * A new table. kind_names (n_kinds of them, at most XDS_RATELOG_KINDS_MAX,
 * borrowed: static strings) name the events in summaries, in the plural
 * ("NACKs"); key_label prefixes keys there ("node"). Returns NULL when out
 * of memory or given bad arguments.
 */
struct xds_ratelog *xds_ratelog_new(size_t max_keys, unsigned per_window,
                                    unsigned window_ms, const char *key_label,
                                    const char *const *kind_names, int n_kinds);
/* Frees the table (pending summaries are not written). NULL: no-op. */
void xds_ratelog_free(struct xds_ratelog *r);

/*
 * Counts one event of kind for key at now_ms (a monotonic clock in ms).
 * Returns 1 when the caller may log it, 0 when it is suppressed. A window
 * of this key and kind that ended with suppressed events gets its summary
 * line first. NULL r: always 1. When the key cannot be added (out of
 * memory) the event is allowed: losing a log line is worse than one line
 * too many.
 */
int xds_ratelog_event(struct xds_ratelog *r, const char *key, int kind,
                      long long now_ms);

/* Writes the summary of every window that has ended with suppressed
 * events, and closes those windows. Cheap when nothing is pending. */
void xds_ratelog_flush(struct xds_ratelog *r, long long now_ms);

/* Whether some window holds suppressed events whose summary is still to
 * be written (a caller that sleeps wakes within window_ms to flush it). */
int xds_ratelog_pending(const struct xds_ratelog *r);

/* The counts of key for kind. Returns 0, or XDS_ENOTFOUND (*out zeroed)
 * when the key is not in the table. */
int xds_ratelog_counts(const struct xds_ratelog *r, const char *key, int kind,
                       struct xds_ratelog_counts *out);

/* Milliseconds of CLOCK_MONOTONIC, for now_ms. */
long long xds_ratelog_now_ms(void);

#endif
