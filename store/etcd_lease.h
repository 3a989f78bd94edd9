/*
 * etcd_lease.h: etcd leases and a leader key, over the JSON gateway (the
 * client of etcd_client.h), for the one replica that writes resource
 * status back to etcd (README, "Status written back to etcd").
 *
 * Election: a replica grants itself a lease, then puts the leader key,
 * bound to that lease, in a transaction that succeeds only when the key
 * does not exist (create_revision 0). The holder renews its lease (keep
 * alive, well within the TTL); when it stops renewing (stopped, killed,
 * cut off), etcd deletes the key as the lease expires and another replica
 * wins the next campaign. Every write of the holder is a transaction that
 * first compares the leader key's lease with its own, so a replica that
 * lost the key (an expired lease it has not noticed yet) writes nothing.
 *
 * Same thread rule and errors as etcd_client.h.
 */
#ifndef XDS_STORE_ETCD_LEASE_H
#define XDS_STORE_ETCD_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/etcd_client.h"

/* Grants a lease of ttl_s seconds. Returns 0 with *id, or an error. */
int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *id,
                     struct xds_err *err);

/* Renews lease id once. Returns 0 with *ttl the seconds it now has left
 * (0: the lease is gone: expired or revoked), or an error. */
int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl,
                         struct xds_err *err);

/* Revokes lease id (the keys bound to it are deleted). Returns 0, or an
 * error (a lease already gone is not one). */
int etcd_lease_revoke(struct etcd_client *c, int64_t id, struct xds_err *err);

/*
 * Puts key = value bound to lease when key does not exist. Returns 0 with
 * *won 1 when this call (or an earlier one: the key is bound to lease
 * already) holds it, else *won 0 and *holder (nullable out; caller frees
 * with xds_free) the current holder's value; or an error.
 */
int etcd_lease_campaign(struct etcd_client *c, const char *key,
                        const char *value, int64_t lease, int *won,
                        char **holder, struct xds_err *err);

/*
 * Writes key = value[0..len) (value NULL: deletes key) only while
 * leader_key is bound to lease, in one transaction. Returns 0, XDS_ECONFLICT
 * (leader_key is not bound to lease any more: nothing was written), or an
 * error.
 */
int etcd_lease_put_if_holder(struct etcd_client *c, const char *leader_key,
                             int64_t lease, const char *key, const char *value,
                             size_t len, struct xds_err *err);

#endif
