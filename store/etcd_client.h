/*
 * etcd_client.h: etcd v3 over its JSON gateway, with libcurl and jansson.
 *
 * One client talks to the members of one cluster (struct etcd_config):
 *   - failover: requests go to the current member; a transport error (no
 *     connection, TLS failure, timeout) or an UNAVAILABLE answer ("no
 *     leader") moves to the next member and tries again, each member at
 *     most once per call; the error of a call that found no member says
 *     what each one answered;
 *   - auth: with a user, a token from /v3/auth/authenticate goes in the
 *     Authorization header of every request; an "invalid auth token"
 *     answer (a token expired or lost by a restarted member) gets a new
 *     token and the request is sent once more. Neither the password nor
 *     the token is ever put in an error message or a log line;
 *   - TLS: https to every member when the configuration says so, checked
 *     against --etcd-ca (else the system's CAs), with an optional client
 *     certificate.
 * Every response body is capped at ETCD_MAX_MESSAGE_BYTES in the write
 * callback. Errors map to: XDS_EIO (no member answered, or a member's
 * failure), XDS_EPERM (authentication failed, permission denied),
 * XDS_ENOTFOUND (a compacted or future revision; a missing key for
 * delete), XDS_ECONFLICT (a compare failed), XDS_EINVAL (etcd refused the
 * request), XDS_ETOOBIG, XDS_ENOMEM.
 *
 * A client and its streams are used by one thread at a time; blocking
 * calls last at most the configured request timeout and end early when
 * the abort flag (etcd_client_set_abort()) is raised from any thread.
 */
#ifndef XDS_STORE_ETCD_CLIENT_H
#define XDS_STORE_ETCD_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "store/etcd_config.h"
#include "store/etcd_proto.h"

struct etcd_client;
struct etcd_stream;

/*
 * A client for cfg (borrowed only during the call: endpoints, TLS files,
 * user and password are copied; etcd_config_finish() must have run). No
 * request is made yet. Returns 0 with *out, XDS_EIO (libcurl could not be
 * initialised) or XDS_ENOMEM.
 */
int etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out,
                    struct xds_err *err);
/* Frees the client (its token is wiped). NULL is a no-op. Streams opened
 * on it must be closed first. */
void etcd_client_free(struct etcd_client *c);

/* Blocking calls (and stream polls) return XDS_EIO "cancelled" soon after
 * *flag becomes non-zero. flag is borrowed for the client's life. */
void etcd_client_set_abort(struct etcd_client *c, atomic_int *flag);

/* "HOST:PORT" of the member requests go to now (borrowed). */
const char *etcd_client_endpoint(const struct etcd_client *c);
/* Moves to the next member (after a failed stream). */
void etcd_client_next_endpoint(struct etcd_client *c);

/* Drops the token and authenticates again (a stream's "invalid auth
 * token"). 0 without a user. Errors as above. */
int etcd_client_reauth(struct etcd_client *c, struct xds_err *err);

/*
 * POSTs req (borrowed) to path ("/v3/kv/range") with failover and auth as
 * above. Returns 0 with *resp (a new reference; never an error body), or
 * an error (see above) with *resp NULL and err saying why.
 */
int etcd_client_call(struct etcd_client *c, const char *path, const json_t *req,
                     json_t **resp, struct xds_err *err);

/* Called with each key-value of a listing (borrowed for the call); a
 * negative return stops the listing and is returned. */
typedef int (*etcd_kv_fn)(void *ctx, const struct etcd_kv *kv);

/*
 * Lists every key starting with prefix, page_size keys per request, every
 * page read at the revision of the first one (so the listing is one
 * consistent view), in key order. A page too large for
 * ETCD_MAX_MESSAGE_BYTES is asked again with half as many keys; a listing
 * whose revision gets compacted meanwhile starts again (at most 3 times).
 * *header gets the header of the first page (its revision is the
 * listing's). fn may be called again for the same keys after a restart:
 * collect into a fresh container per call. Returns 0 or an error.
 */
int etcd_client_list(struct etcd_client *c, const char *prefix,
                     unsigned page_size, etcd_kv_fn fn, void *ctx,
                     struct etcd_header *header, struct xds_err *err);

/* Reads one key. Returns 0 with *found, kv filled when found (the caller
 * cleans it up) and *revision the store's revision; or an error. */
int etcd_client_get(struct etcd_client *c, const char *key, struct etcd_kv *kv,
                    int *found, int64_t *revision, struct xds_err *err);

/*
 * Writes key = value (len bytes) in a transaction that first compares the
 * key's mod_revision with expect: 0 means "the key must not exist", a
 * positive value "must still be at this revision". Returns 0 with
 * *revision (nullable) the revision of the write, XDS_ECONFLICT when the
 * compare failed (err names the key and its current mod_revision, or says
 * it was deleted), or another error.
 */
int etcd_client_put_if(struct etcd_client *c, const char *key,
                       const char *value, size_t len, int64_t expect,
                       int64_t *revision, struct xds_err *err);

/* Deletes key if its mod_revision is still expect (> 0). Returns 0,
 * XDS_ECONFLICT (changed or deleted meanwhile; err names the key), or
 * another error. */
int etcd_client_delete_if(struct etcd_client *c, const char *key,
                          int64_t expect, struct xds_err *err);

/* Says in err why a compare of key failed: expected mod_revision expect
 * (0: the key must not exist), found now (0: it does not exist). Returns
 * XDS_ECONFLICT. */
int etcd_conflict_explain(const char *key, int64_t expect, int64_t now,
                          struct xds_err *err);

/* The most operations one transaction may carry: etcd's --max-txn-ops
 * default. etcd counts compares, success ops and failure ops separately,
 * so it bounds the number of keys of etcd_client_put_all_if(). */
#define ETCD_MAX_TXN_OPS 128

/* One key of etcd_client_put_all_if(). */
struct etcd_put_if {
  const char *key;   /* borrowed */
  const char *value; /* borrowed; NULL: compared, not written */
  size_t len;
  int64_t expect; /* 0: must not exist; > 0: must be at this mod_revision */
  /* Set by the call when the transaction failed: whether this key's
   * compare failed, and its mod_revision now (0: it does not exist). */
  int conflict;
  int64_t now;
};

/*
 * Writes every key of v[0..n) whose value is set, in ONE transaction that
 * first compares every key of v (create_revision == 0 for expect 0,
 * mod_revision == expect otherwise): all the puts happen, or none.
 * n must be at most ETCD_MAX_TXN_OPS. Returns 0 with *revision (nullable)
 * the revision of the write (the store's revision when nothing was to be
 * written); XDS_ECONFLICT when a compare failed: nothing was written, each
 * failed entry has conflict set and now filled, and err names the first;
 * XDS_ETOOBIG (n too large; nothing sent); or another error (see above;
 * etcd's "request is too large" is XDS_EINVAL).
 */
int etcd_client_put_all_if(struct etcd_client *c, struct etcd_put_if *v,
                           size_t n, int64_t *revision, struct xds_err *err);

/*
 * Opens a watch stream on the current member: POST /v3/watch with body
 * req (borrowed; {"create_request": {...}}). Nothing is read yet; a
 * member that does not answer shows up as an error of the first poll.
 * Returns 0 with *out, or XDS_ENOMEM / XDS_EIO.
 */
int etcd_stream_open(struct etcd_client *c, const json_t *req,
                     struct etcd_stream **out, struct xds_err *err);

/*
 * Waits at most timeout_ms for data on s, or for wake_fd (nullable: -1)
 * to become readable, and calls fn for every complete message received.
 * Returns 0 while the stream is open, XDS_EIO when it ended or failed
 * (err says why), XDS_ETOOBIG (a message over ETCD_MAX_MESSAGE_BYTES), or
 * fn's negative return (the stream is then finished too). After an error
 * only etcd_stream_close() may be called.
 */
int etcd_stream_poll(struct etcd_stream *s, int timeout_ms, int wake_fd,
                     etcd_msg_fn fn, void *ctx, struct xds_err *err);
/* Ends and frees the stream. NULL is a no-op. */
void etcd_stream_close(struct etcd_stream *s);

#endif
