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
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/map.h"
#include "server/compose/proxy.h"
#include "server/compose/snapshot.h"
#include "server/compose/version.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"

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

/* Where one resource stands with this proxy. */
enum ads_res_state {
  ADS_RES_PENDING = 0, /* sent, not yet acknowledged */
  ADS_RES_ACKED = 1,
  ADS_RES_NACKED = 2,
  ADS_RES_CLIENT = 3 /* the proxy said it has it (reconnect) */
};

/* Per resource the proxy has or was sent (values of ads_type_state.sent,
 * whose key is name). */
struct ads_res {
  const char *name;              /* interned (base/intern.h), owned */
  char version[VERSION_LEN + 1]; /* last sent (or reported by the proxy) */
  char acked[VERSION_LEN + 1];   /* last acknowledged, "" if none */
  uint64_t nonce;                /* response that carried version */
  enum ads_res_state state;
};

struct ads_type_state {
  int requested;  /* a valid request of this type was seen */
  int ever_named; /* SotW: some request named resources */
  int wildcard;
  const char **names; /* sorted, unique explicitly subscribed names, each
                         interned (base/intern.h) and owned */
  size_t n_names;
  char nonce[24];                     /* last nonce sent, "" before the first */
  char sent_version[VERSION_LEN + 1]; /* version_info (SotW) or
                                         system_version_info (delta) */
  char acked_version[VERSION_LEN + 1];
  char *nack_error;         /* error_detail.message of the last NACK */
  int sent_once;            /* a response of this type went out, or the proxy
                               reconnected already holding the current state */
  int must_answer;          /* a response is owed even if it carries nothing
                               new: delta's first request; SotW LDS whose
                               subscription changed */
  struct xds_map *sent;     /* name -> struct ads_res (keys borrowed from
                               the values) */
  struct xds_map *absent;   /* delta: names reported as not existing */
  const char **owe_removed; /* delta: names unsubscribed under wildcard
                               that it does not cover, to be answered in
                               removed_resources (interned, owned) */
  size_t n_owe_removed;
  uint64_t acks, nacks;
};

/* A type wasmxds does not serve, asked for on this stream. */
struct ads_other_type {
  char *type_url;
  char nonce[24];
  int answered;
  int report_absent;   /* delta: names are answered as removed */
  const char **absent; /* delta: names subscribed since the last answer,
                          to report in removed_resources (interned) */
  size_t n_absent;
};

struct ads_stream {
  enum ads_service svc;
  enum ads_mode mode;
  char *peer; /* transport peer, for logs */
  /* Identity fixed by transport security (mTLS), or NULL: the node's
   * metadata must then agree with it. Not owned. */
  const struct proxy_id *verified;
  int has_node;
  struct proxy_id pid;
  struct snapshot *snap;       /* reference held while the stream lives */
  const struct xds_class *cls; /* view of snap for pid */
  struct ads_type_state t[ADS_T_N];
  struct ads_other_type other[ADS_OTHER_TYPES_MAX];
  size_t n_other;
  struct xds_map *refused; /* names refused and logged once */
  uint64_t nonce_seq;
  uint64_t responses, resources_sent;
  long long connected_ms; /* wall clock (ms since the epoch) at init */
  int last_type;          /* type of the last response: ADS_T_*, or -1 */
  size_t last_resources;  /* resources in it */
};

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

/* Initializes caller-owned storage. peer is copied (may be NULL). Returns
 * 0 or XDS_ENOMEM. */
int ads_stream_init(struct ads_stream *s, enum ads_service svc,
                    enum ads_mode mode, const char *peer);
void ads_stream_cleanup(struct ads_stream *s);

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

#endif
