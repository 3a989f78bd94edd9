/*
 * ads.h: the xDS protocol of one stream, state of the world (SotW) and
 * incremental (delta), without I/O.
 *
 * The gRPC glue (xds_server.c) unpacks each request and hands it here; this
 * module keeps the stream's per-type state (subscriptions, nonces, what the
 * proxy has, ACKs and NACKs) and, when asked, writes the next response the
 * stream owes. Responses are pulled, not pushed: the glue asks for one only
 * when no send is in flight, and the response is built from the newest
 * snapshot at that moment, so a slow stream never queues stale responses
 * and holds at most one message.
 *
 * Served types: LDS and ECDS. SotW LDS is full state; SotW ECDS sends the
 * subscribed names whose content changed; delta sends changed resources and
 * removed_resources for both. Any other type gets one empty response (a
 * wildcard type such as CDS is then known to be empty). In delta, a name
 * subscribed to a cluster, endpoint or secret type is also answered in
 * removed_resources (Envoy takes that as "does not exist"); route types
 * are not, because Envoy's RDS ignores a removal and would then wait for
 * the route for ever instead of for its initial-fetch timeout. A SotW
 * Envoy waiting for named resources of such a type learns nothing from an
 * empty response and waits for that timeout.
 *
 * Threads: one stream is used by one thread (the serving loop). Logs the
 * protocol events an operator needs (connect, NACK, refused names).
 */
#ifndef XDS_ADS_H
#define XDS_ADS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/map.h"
#include "base/ratelog.h"
#include "server/compose/proxy.h"
#include "server/compose/snapshot.h"
#include "server/compose/version.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "envoy/service/status/v3/csds.pb-c.h"

/* Which service a stream came in on; it limits the types it may carry. */
enum ads_service {
  ADS_SVC_ADS = 0, /* AggregatedDiscoveryService: every type */
  ADS_SVC_LDS = 1, /* ListenerDiscoveryService: listeners only */
  ADS_SVC_ECDS = 2 /* ExtensionConfigDiscoveryService: ECDS only */
};

enum ads_mode { ADS_SOTW = 0, ADS_DELTA = 1 };

enum ads_type { ADS_T_LDS = 0, ADS_T_ECDS = 1, ADS_T_N = 2 };

/* Unknown types a stream may ask for before further ones are ignored. */
#define ADS_OTHER_TYPES_MAX 8
/* Names one stream may subscribe to for one type. */
#define ADS_NAMES_MAX 10000
/* Longest type URL or resource name accepted. */
#define ADS_NAME_LEN_MAX 1024
/* Longest NACK error detail kept. */
#define ADS_NACK_ERROR_MAX 4096

/* One stream's protocol state; opaque (server/ads/ads_impl.h). */
struct ads_stream;

/* A response's part shared by every stream of a class (SotW LDS): bytes
 * owned by snap, to send before the stream's own bytes. */
struct ads_shared {
  const uint8_t *data; /* NULL: none */
  size_t len;
  struct snapshot *snap; /* borrowed: the stream holds a reference */
};

/* A reason to end the stream: a gRPC status code and message. */
struct ads_close {
  int code; /* grpc_status_code value */
  char msg[256];
};

/* gRPC status codes used here (same values as grpc_status_code). */
#define ADS_STATUS_INVALID_ARGUMENT 3
#define ADS_STATUS_PERMISSION_DENIED 7
#define ADS_STATUS_RESOURCE_EXHAUSTED 8
#define ADS_STATUS_INTERNAL 13

/* A new stream of the given service and protocol; peer (the transport's
 * name for the client, for logs) is copied and may be NULL. Returns 0 with
 * *out set, or XDS_ENOMEM (*out NULL). */
int ads_stream_new(enum ads_service svc, enum ads_mode mode, const char *peer,
                   struct ads_stream **out);
/* Frees the stream and what it holds (its snapshot reference, interned
 * names). NULL: no-op. */
void ads_stream_free(struct ads_stream *s);

/* With mutual TLS: the identity the client certificate proves, which the
 * node's metadata must then agree with. Borrowed: v must outlive the
 * stream. Call before the first request. */
void ads_stream_set_verified(struct ads_stream *s, const struct proxy_id *v);

/*
 * The table that limits the log lines of each proxy (by node id) per kind
 * of event (NACKs, refused names, requests for types not served): 5 lines
 * per 10 s each, then a summary line, remembered across reconnects for the
 * last 10,000 node ids (base/ratelog.h). One per server, shared by its
 * serving loops (the table locks itself). NULL when out of memory; free with
 * xds_ratelog_free().
 */
struct xds_ratelog *ads_ratelog_new(void);
/* Makes the stream's events count against r (borrowed; it outlives the
 * stream). Without one, every event is logged. */
void ads_stream_set_ratelog(struct ads_stream *s, struct xds_ratelog *r);

/* The node id escaped for logs (base/log.h xds_log_escape), or the peer
 * before the node is known. Never NULL. */
const char *ads_stream_log_name(const struct ads_stream *s);

/* The peer given at creation (never NULL). */
const char *ads_stream_peer(const struct ads_stream *s);
/* The node id of the proxy, or NULL before its first request with a node
 * was accepted (the stream is then not yet a proxy). */
const char *ads_stream_node_id(const struct ads_stream *s);
/* The proxy's identity (node, organization, tenant, ...), NULL likewise;
 * valid while the stream lives (for filtering status pages). */
const struct proxy_id *ads_stream_proxy(const struct ads_stream *s);
enum ads_mode ads_stream_mode(const struct ads_stream *s);

/* Counters of a stream, for the transport's metrics and logs. */
struct ads_counts {
  uint64_t responses;                     /* responses written */
  uint64_t acks[ADS_T_N], nacks[ADS_T_N]; /* per served type */
  int last_type;                /* type of the last response: ADS_T_*, or -1 */
  size_t last_resources;        /* resources in it */
  unsigned long refused_names;  /* ECDS names refused (not visible) */
  unsigned long log_suppressed; /* log lines left out by the rate limit */
};
void ads_stream_counts(const struct ads_stream *s, struct ads_counts *out);

/*
 * Checks a request's bytes (a DiscoveryRequest or DeltaDiscoveryRequest by
 * the stream's mode) against the name limits before the transport unpacks
 * them: no list of names may hold more than ADS_NAMES_MAX entries. Linear
 * in len, allocates nothing; a malformed message passes (unpacking reports
 * it). Returns 0, or -1 with *close set (RESOURCE_EXHAUSTED): the stream
 * must end.
 */
int ads_stream_precheck(const struct ads_stream *s, const uint8_t *p,
                        size_t len, struct ads_close *close);

/*
 * Applies one request given as its encoded bytes (a DiscoveryRequest or
 * DeltaDiscoveryRequest by the stream's mode), as the transport reads it:
 * everything ads_stream_precheck, the NUL and nesting checks (wirecheck.h),
 * the unpack and ads_stream_on_request / _on_delta_request would do,
 * with the same outcome, state and logs; an ACK that changes nothing but
 * the ACK itself (SotW: the same subscription; delta: no names; the node
 * absent or byte for byte one the stream accepted) is read from the bytes
 * without unpacking or allocating. p is borrowed for the call; snap as
 * below. Returns 0, or -1 when the stream must be closed with the status
 * in *close (malformed, a string holding a NUL byte, nesting deeper than
 * WIRECHECK_DEPTH_MAX, over the limits, and every reason below); the
 * refusals of the bytes (the first four) are logged here.
 */
int ads_stream_on_request_bytes(struct ads_stream *s, const uint8_t *p,
                                size_t len, struct snapshot *snap,
                                struct ads_close *close);

/*
 * Applies one SotW request. snap is the current snapshot (borrowed; the
 * stream takes its own reference). Returns 0, or -1 when the stream must
 * be closed with the status in *close (bad identity, a changed node, a
 * tenant claim the certificate does not back, limits). Stale-nonce
 * requests are ignored, as the protocol says.
 */
int ads_stream_on_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close);

/* The same for a delta request. */
int ads_stream_on_delta_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close);

/*
 * Moves the stream to a newer snapshot. Returns 0, or -1 with *close set
 * when the stream's view cannot be built (out of memory). close may be
 * NULL.
 */
int ads_stream_on_snapshot(struct ads_stream *s, struct snapshot *snap,
                           struct ads_close *close);

/*
 * Writes into out (emptied first) the next response the stream owes
 * (DiscoveryResponse or DeltaDiscoveryResponse by the stream's mode), LDS
 * before ECDS before other types. Returns 1 when a response was written, 0
 * when nothing is owed, or XDS_ENOMEM / XDS_ETOOBIG. When shared is not
 * NULL, a part common to the stream's class may be returned there instead
 * of copied into out: the message is then shared's bytes followed by out's
 * (fields may come in any order). With shared NULL, out holds it all.
 */
int ads_stream_next_response(struct ads_stream *s, struct xds_buf *out,
                             struct ads_shared *shared);

/*
 * The stream's status for the admin pages: node, class, and per type and
 * resource the version sent, acknowledged or rejected (with the error). A
 * new JSON object, or NULL when out of memory.
 */
json_t *ads_stream_status(const struct ads_stream *s);

/*
 * CSDS (server/ads/ads_csds.c). The key, in the node metadata CSDS
 * reports, of a struct saying how the proxy is connected: connected_since
 * (RFC 3339, UTC), peer and protocol ("sotw" or "delta").
 */
#define ADS_CSDS_STATUS_KEY "wasmxds.csds"

/* Whether req's node matchers are all ones ads_stream_csds_match can
 * apply (not safe_regex, a pattern set, a non-empty path). Returns 0, or
 * -1 with why (size bytes) saying which matcher and what is wrong. */
int ads_csds_check_request(
    const Envoy__Service__Status__V3__ClientStatusRequest *req, char *why,
    size_t size);

/* Whether the stream is a proxy (has a node) selected by req's node
 * matchers (any of them; none selects every proxy), matched against the
 * node as wasmxds read it (id, cluster, the wasmxds.* metadata). Returns 1,
 * 0 or XDS_ENOMEM. */
int ads_stream_csds_match(
    const struct ads_stream *s,
    const Envoy__Service__Status__V3__ClientStatusRequest *req);

/*
 * Appends to out, as one `config` field (1) of a ClientStatusResponse, the
 * stream's ClientConfig: its node (as above, plus ADS_CSDS_STATUS_KEY) and
 * one GenericXdsConfig per LDS and ECDS resource it asked for or was sent:
 * not sent (REQUESTED or DOES_NOT_EXIST, NOT_SENT), sent and not answered
 * (REQUESTED, STALE), ACKED (SYNCED) or NACKED (ERROR, error_state with the
 * proxy's message and the rejected version). version_info is the version
 * sent; with contents, xds_config holds the resource as sent when the
 * stream's snapshot still has that version. Nothing for a stream without a
 * node. Returns 0, XDS_ENOMEM or XDS_ETOOBIG (out unchanged). Runs on the
 * stream's thread.
 */
int ads_stream_csds_append(struct ads_stream *s, int contents,
                           struct xds_buf *out);

/* The proxy's sync state over its served types, as enum stats_sync
 * (server/compose/stats.h): NACKED if a resource was rejected, else STALE
 * if one was sent and not answered, else NOT_SENT if one asked for was not
 * sent (or it asked for nothing yet), else SYNCED. -1 for a stream without
 * a node. Constant time (the core keeps the counts it needs). Same thread
 * as the stream. */
int ads_stream_sync_state(const struct ads_stream *s);

/*
 * Makes the core keep the stream counted in by_state[STATS_SYNC_STATES]
 * (borrowed: it outlives the stream; e.g. struct xds_stats'
 * proxies_by_state), under the state ads_stream_sync_state gives: after
 * every call that may change it (a request, a snapshot, a response) the
 * stream moves from the state it was counted in to the new one, and
 * ads_stream_free uncounts it. A stream without a node is not counted.
 * Atomic adds, so other threads may read the counts at any time; call on
 * the stream's thread, before its first request.
 */
void ads_stream_set_sync_counts(struct ads_stream *s, atomic_long *by_state);

#endif
