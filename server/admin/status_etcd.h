/*
 * status_etcd.h: resource status written back to an etcd store
 * (--write-status; README, "Status written back to etcd").
 *
 * One thread per server. Every interval it makes sure this replica holds
 * a lease; a replica that does not hold the leader key <prefix>/leader
 * campaigns for it (etcd_lease.h: put if absent, bound to its lease), and
 * the one that holds it renews its lease and is the only one that
 * writes. The holder collects every served resource's status in one pass
 * (status_collect), and writes <prefix>/<Kind>/<a>/<b> only when its JSON
 * differs from what is there (what it wrote, or found when it took over),
 * each write fenced by the leader key's lease; keys of resources no longer
 * served are deleted. So a key is written at most once per interval, and
 * never by two replicas: a replica whose lease expired unnoticed finds the
 * fence failed and writes nothing. At stop the lease is revoked, so
 * another replica takes over within one interval; a replica that dies
 * without stopping is replaced when its lease expires (lease_ttl_s).
 *
 * The status keys live under their own prefix, outside the store's
 * (flags refuse one inside it), so the store never reads them as spec.
 */
#ifndef XDS_STATUS_ETCD_H
#define XDS_STATUS_ETCD_H

#include <stddef.h>

#include "base/err.h"
#include "server/admin/status.h"
#include "store/etcd_config.h"

#define STATUS_ETCD_DEFAULT_INTERVAL_MS 2000
#define STATUS_ETCD_DEFAULT_LEASE_TTL_S 10
/* Failed proxies listed per resource, and the bytes of an error text. */
#define STATUS_ETCD_MAX_FAILED 10
#define STATUS_ETCD_MAX_ERROR 4096
/* The leader key, under the status prefix. */
#define STATUS_ETCD_LEADER "/leader"

struct status_etcd_config {
  const struct etcd_config *etcd; /* the store's (borrowed for the call) */
  const char *prefix;             /* the status prefix, no trailing '/' */
  const char *replica;            /* this replica's name (the leader key's
                                     value, and "writer" in each status) */
  long interval_ms;               /* 0: STATUS_ETCD_DEFAULT_INTERVAL_MS */
  int lease_ttl_s;                /* 0: STATUS_ETCD_DEFAULT_LEASE_TTL_S */
};

struct status_etcd;

/* Starts the writer thread for st (borrowed until status_etcd_stop).
 * Returns 0 with *out, or XDS_ENOMEM / XDS_EIO (err says why). Nothing is
 * sent to etcd before the thread runs. */
int status_etcd_start(struct status *st, const struct status_etcd_config *cfg,
                      struct status_etcd **out, struct xds_err *err);

/* Stops the thread (a call in progress ends within the etcd request
 * timeout, at most a third of the lease TTL), revokes the lease when this
 * replica holds it, and frees. NULL: no-op. */
void status_etcd_stop(struct status_etcd *w);

/* 1 while this replica holds the leader key (for tests and logs). */
int status_etcd_is_writer(struct status_etcd *w);

#endif
