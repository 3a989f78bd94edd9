/*
 * stats.h: the server's counters, exported on /metrics in the Prometheus
 * text format. Every field is an atomic, updated from any thread without a
 * lock; the exporter reads them one by one (a scrape is not a consistent
 * cut, as usual for Prometheus counters).
 */
#ifndef XDS_STATS_H
#define XDS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/http_route.h"

/* Histogram buckets, in seconds (upper bounds; +Inf is implicit). */
#define STATS_BUCKETS 12

struct stats_hist {
  atomic_ulong buckets[STATS_BUCKETS + 1]; /* last: above every bound */
  atomic_ulong count;
  atomic_ullong sum_us; /* microseconds */
};

/* Stream kinds, by service and protocol. */
enum stats_stream {
  STATS_ADS_SOTW = 0,
  STATS_ADS_DELTA,
  STATS_LDS_SOTW,
  STATS_LDS_DELTA,
  STATS_ECDS_SOTW,
  STATS_ECDS_DELTA,
  STATS_STREAM_KINDS
};

/* Resource types counted. */
enum stats_type {
  STATS_T_LDS = 0,
  STATS_T_ECDS = 1,
  STATS_T_OTHER = 2,
  STATS_TYPES = 3
};

/* A proxy's sync state over its served types (worst first in the enum's
 * reverse): every resource acknowledged; one asked for and not sent; one
 * sent and not answered; one rejected. */
enum stats_sync {
  STATS_SYNCED = 0,
  STATS_NOT_SENT = 1,
  STATS_STALE = 2,
  STATS_NACKED = 3,
  STATS_SYNC_STATES = 4
};

/* Kinds of enum served_as (snapshot.h). */
#define STATS_SERVED_AS 3

struct delivery;

struct xds_stats {
  atomic_long streams[STATS_STREAM_KINDS]; /* open now */
  atomic_long proxies;                     /* streams with a node */
  atomic_ulong responses[STATS_TYPES];     /* messages sent */
  atomic_ulong resources_sent[STATS_TYPES];
  atomic_ulong acks[STATS_TYPES];
  atomic_ulong nacks[STATS_TYPES];
  atomic_ulong refused_streams;     /* limits, identity, TLS */
  atomic_ulong refused_names;       /* ECDS names a proxy may not have */
  atomic_ulong log_suppressed;      /* log lines left out (rate limit) */
  atomic_ulong snapshots;           /* published */
  atomic_ulong class_builds;        /* class views encoded */
  atomic_ulong class_reuses;        /* class views shared */
  atomic_ulong store_reloads;       /* catalogs delivered by the store */
  atomic_ulong store_errors;        /* problems (errors) in those loads */
  atomic_ulong store_holds;         /* changes held as mass removals */
  atomic_long store_held;           /* 1 while such a change is held */
  struct stats_hist push_latency;   /* snapshot published -> response sent */
  struct stats_hist snapshot_build; /* snapshot_build() duration */
  /* Extensions of the served snapshot by what they are served as, indexed
   * by enum served_as (snapshot.h): Wasm, deny-all, allow-all. */
  atomic_long extensions_served[STATS_SERVED_AS];
  /* Errors (rejected documents) in the store's last load: a gauge. */
  atomic_long store_errors_now;
  /* 1 while the store is degraded (etcd unreachable or its watch down, a
   * removal held): the last good catalog is served. */
  atomic_int store_degraded;
  /* The etcd revision of the catalog last handed to be served (set on the
   * store's watcher thread); 0 with a file store. */
  atomic_llong store_revision;
  /* Connected proxies by sync state (enum stats_sync), kept by the ADS
   * core as each stream changes state (ads_stream_set_sync_counts). */
  atomic_long proxies_by_state[STATS_SYNC_STATES];
  /* Module delivery whose metrics /metrics appends (set before the admin
   * server starts, never changed after); NULL: none. */
  struct delivery *delivery;
};

/* Zeroes every counter. */
void stats_init(struct xds_stats *st);

/* Adds one observation of seconds to h. */
void stats_observe(struct stats_hist *h, double seconds);

/* The GET /metrics handler (base/http_route.h); arg is the struct
 * xds_stats, borrowed. Runs on an admin thread. Returns 0 or XDS_ENOMEM. */
int stats_handle(void *arg, const struct admin_req *req,
                 struct admin_resp *resp);

#endif
