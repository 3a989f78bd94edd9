/*
 * xds_client.h: a small xDS client on the gRPC C core client API, for the
 * end-to-end tests and benchmarks.
 *
 * One struct xds_client is one channel to one target plus its own
 * completion queue. One struct xds_stream is one bidirectional call on a
 * method path (ADS, LDS, ECDS, SotW or delta). Every call blocks for at most
 * the timeout it is given, by driving the client's completion queue with
 * bounded deadlines; events for other streams of the same client that arrive
 * meanwhile are recorded in those streams and picked up by their next call.
 *
 * Per stream at most one RECV_MESSAGE and one SEND_MESSAGE (or half-close)
 * are in flight. A receive that times out leaves its RECV_MESSAGE pending,
 * and the next receive waits for that same operation instead of posting a
 * second one. RECV_STATUS_ON_CLIENT is posted when the stream opens.
 *
 * Errors: functions return 0 or a negative code, either an XDS_E* of
 * base/err.h or one of the XDS_CLIENT_E* below. One thread at a time per
 * client: none of this is thread-safe.
 */
#ifndef XDS_TESTS_XDS_CLIENT_H
#define XDS_TESTS_XDS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/status.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/wasm/v3/wasm.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"

/* Codes of this client in addition to base/err.h's (which are -1..-8). */
enum xds_client_errc {
  XDS_CLIENT_ETIMEDOUT = -100,  /* the operation did not complete in time */
  XDS_CLIENT_EEOF = -101,       /* the stream has ended: no more messages */
  XDS_CLIENT_EUNEXPECTED = -102 /* expect_nothing: a message did arrive */
};

/* A short text for rc: "timed out", "stream ended" and "unexpected
 * message" for the XDS_CLIENT_E* codes, xds_strerror()'s for the others.
 * Static; any thread. */
const char *xds_client_strerror(int rc);

/* Method paths. */
#define XDS_METHOD_ADS                                                         \
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/"                    \
  "StreamAggregatedResources"
#define XDS_METHOD_DELTA_ADS                                                   \
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/"                    \
  "DeltaAggregatedResources"
#define XDS_METHOD_LDS                                                         \
  "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners"
#define XDS_METHOD_DELTA_LDS                                                   \
  "/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners"
#define XDS_METHOD_ECDS                                                        \
  "/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"               \
  "StreamExtensionConfigs"
#define XDS_METHOD_DELTA_ECDS                                                  \
  "/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"               \
  "DeltaExtensionConfigs"

/* Type URLs. */
#define XDS_TYPE_PREFIX "type.googleapis.com/"
#define XDS_TYPE_LISTENER XDS_TYPE_PREFIX "envoy.config.listener.v3.Listener"
#define XDS_TYPE_ECDS                                                          \
  XDS_TYPE_PREFIX "envoy.config.core.v3.TypedExtensionConfig"
#define XDS_TYPE_CLUSTER XDS_TYPE_PREFIX "envoy.config.cluster.v3.Cluster"
#define XDS_TYPE_HCM                                                           \
  XDS_TYPE_PREFIX                                                              \
  "envoy.extensions.filters.network.http_connection_manager.v3."               \
  "HttpConnectionManager"
#define XDS_TYPE_WASM                                                          \
  XDS_TYPE_PREFIX "envoy.extensions.filters.http.wasm.v3.Wasm"
#define XDS_TYPE_RBAC                                                          \
  XDS_TYPE_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"
#define XDS_TYPE_ROUTER                                                        \
  XDS_TYPE_PREFIX "envoy.extensions.filters.http.router.v3.Router"
#define XDS_TYPE_STRING_VALUE XDS_TYPE_PREFIX "google.protobuf.StringValue"

/* Default time a stream's teardown waits for its cancelled ops, in ms. */
#define XDS_CLIENT_DRAIN_MS 5000

/* Upper bound on one completion-queue wait, so every loop rechecks its own
 * deadline at least this often (1.51's C API has no alarm). */
#define XDS_CLIENT_TICK_MS 100

struct xds_client;
struct xds_stream;

/*
 * Creates a client for target ("127.0.0.1:PORT") over an insecure channel
 * with args (nullable; borrowed for the call only). Calls grpc_init(); the
 * matching grpc_shutdown() is in xds_client_free(). *out is a new client.
 * Returns 0 or XDS_ENOMEM / XDS_EIO.
 */
int xds_client_new(const char *target, const grpc_channel_args *args,
                   struct xds_client **out);

/*
 * As xds_client_new() for a client that compresses every message it sends
 * with algo (the channel's default compression algorithm), as a gRPC
 * client configured to compress does.
 */
int xds_client_new_compressing(const char *target,
                               grpc_compression_algorithm algo,
                               struct xds_client **out);

/*
 * As xds_client_new() with the given channel credentials (borrowed: the
 * caller releases them; for TLS and mutual TLS tests).
 */
int xds_client_new_creds(const char *target, grpc_channel_credentials *creds,
                         const grpc_channel_args *args,
                         struct xds_client **out);

/*
 * As xds_client_new() over TLS: root_pem (PEM text of the CA that signed
 * the server's certificate) verifies the server; key_pem and cert_pem
 * (both NULL for none) are the client's key and certificate chain for
 * mutual TLS. The strings are borrowed for the call only. Returns 0 or
 * XDS_ENOMEM / XDS_EIO.
 */
int xds_client_new_tls(const char *target, const char *root_pem,
                       const char *key_pem, const char *cert_pem,
                       const grpc_channel_args *args, struct xds_client **out);

/*
 * Cancels every stream still open, waits (bounded) for their operations to
 * finish, frees them, destroys the channel and completion queue. NULL is a
 * no-op. Any struct xds_stream of c is invalid afterwards.
 */
void xds_client_free(struct xds_client *c);

/* Totals over every stream the client ever had. */
uint64_t xds_client_msgs_received(const struct xds_client *c);
uint64_t xds_client_bytes_received(const struct xds_client *c);

/*
 * Opens a bidirectional call on method (a path such as XDS_METHOD_ADS,
 * copied) and posts SEND_INITIAL_METADATA and RECV_STATUS_ON_CLIENT. Does
 * not wait for the server. *out is a new stream owned by c, to be freed with
 * xds_stream_free() (or by xds_client_free()).
 * Returns 0, XDS_ENOMEM or XDS_EIO (a batch could not start).
 */
int xds_stream_open(struct xds_client *c, const char *method,
                    struct xds_stream **out);

/*
 * Sends len bytes (copied) as one message and waits up to timeout_ms for
 * the send to complete. A send still pending from an earlier timed-out call
 * is waited for first. Returns 0, XDS_CLIENT_ETIMEDOUT, XDS_EINVAL (after
 * half-close), XDS_EIO (the call has failed or ended) or XDS_ENOMEM.
 */
int xds_stream_send_raw(struct xds_stream *s, const void *data, size_t len,
                        int timeout_ms);

/* Packs req and sends it as xds_stream_send_raw() does. req is borrowed. */
int xds_stream_send_request(
    struct xds_stream *s,
    const Envoy__Service__Discovery__V3__DiscoveryRequest *req, int timeout_ms);
/* Builds a SotW DiscoveryRequest and sends it as xds_stream_send_request()
 * does: node, version, nonce and error (a NACK's message, sent with status
 * INVALID_ARGUMENT) are nullable; names holds n_names resource names. All
 * borrowed. */
int xds_stream_send_sotw(struct xds_stream *s,
                         Envoy__Config__Core__V3__Node *node,
                         const char *type_url, const char *version,
                         const char *nonce, char **names, size_t n_names,
                         const char *error, int timeout_ms);
int xds_stream_send_delta_request(
    struct xds_stream *s,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    int timeout_ms);

/*
 * Returns the oldest kept message if any, else waits up to timeout_ms for
 * the next message. On 0, *data is a new buffer
 * of *len bytes (free with free(); non-NULL even when len is 0). Returns
 * XDS_CLIENT_ETIMEDOUT (the receive stays posted and the next call reuses
 * it), XDS_CLIENT_EEOF (the server ended the stream or the call failed; see
 * xds_stream_wait_status), or XDS_ENOMEM.
 */
int xds_stream_recv_raw(struct xds_stream *s, int timeout_ms, uint8_t **data,
                        size_t *len);

/*
 * Receives as xds_stream_recv_raw() and unpacks. On 0, *out is a new
 * message for xds_msg_free(). Returns XDS_EPARSE if the bytes are not a
 * valid message (the message is consumed), and the codes of recv_raw.
 */
int xds_stream_recv_response(
    struct xds_stream *s, int timeout_ms,
    Envoy__Service__Discovery__V3__DiscoveryResponse **out);
int xds_stream_recv_delta_response(
    struct xds_stream *s, int timeout_ms,
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse **out);

/*
 * Asserts quiet: returns 0 if no message arrives within ms. If one does
 * (or one is already kept unread), returns XDS_CLIENT_EUNEXPECTED and keeps
 * it, so the next receive returns it (to show what the server sent).
 * Returns XDS_CLIENT_EEOF if the stream ended instead.
 */
int xds_stream_expect_nothing(struct xds_stream *s, int ms);

/*
 * Half-closes (SEND_CLOSE_FROM_CLIENT) and waits up to timeout_ms for it.
 * Returns 0, XDS_CLIENT_ETIMEDOUT or XDS_EIO.
 */
int xds_stream_half_close(struct xds_stream *s, int timeout_ms);

/*
 * Waits up to timeout_ms for the call's final status. gRPC reports the
 * status only once every message has been read, so this keeps reading;
 * messages that arrive meanwhile are kept (up to 256) for later receives.
 * On 0, *code is the status and *details (nullable) a new NUL-terminated
 * copy of its message (free with free()). Returns XDS_CLIENT_ETIMEDOUT or
 * XDS_ENOMEM.
 */
int xds_stream_wait_status(struct xds_stream *s, int timeout_ms,
                           grpc_status_code *code, char **details);

/* Cancels the call (the server sees CANCELLED); the stream stays valid
 * until freed. Idempotent. */
void xds_stream_cancel(struct xds_stream *s);

/* Messages and payload bytes received on this stream so far. */
uint64_t xds_stream_msgs_received(const struct xds_stream *s);
uint64_t xds_stream_bytes_received(const struct xds_stream *s);

/*
 * Cancels the call if it has not ended, waits up to XDS_CLIENT_DRAIN_MS for
 * its operations, and frees everything. If an operation is still
 * outstanding after that (never seen in practice), the stream is parked and
 * freed by xds_client_free(). NULL is a no-op.
 */
void xds_stream_free(struct xds_stream *s);

/*
 * Builds a Node with id, cluster and metadata: meta_kv is a NULL-terminated
 * list of key, string value pairs; labels_kv (nullable) likewise becomes the
 * Struct under "wasmxds.labels". Returns a new Node for xds_node_free(), or
 * NULL on allocation failure.
 */
Envoy__Config__Core__V3__Node *xds_node_new(const char *id, const char *cluster,
                                            const char *const *meta_kv,
                                            const char *const *labels_kv);
void xds_node_free(Envoy__Config__Core__V3__Node *node);

/*
 * Unpacks any as the message type desc after checking that its type_url is
 * "type.googleapis.com/<desc->name>". *out is a new message for
 * xds_msg_free(). Returns 0, XDS_EINVAL (NULL any or another type) or
 * XDS_EPARSE.
 */
int xds_any_unpack(const Google__Protobuf__Any *any,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out);

/* Typed shorthands for xds_any_unpack(): NULL on any error. */
Envoy__Config__Listener__V3__Listener *
xds_any_to_listener(const Google__Protobuf__Any *any);
Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
xds_any_to_hcm(const Google__Protobuf__Any *any);
Envoy__Config__Core__V3__TypedExtensionConfig *
xds_any_to_typed_extension_config(const Google__Protobuf__Any *any);
Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *
xds_any_to_wasm(const Google__Protobuf__Any *any);
Envoy__Extensions__Wasm__V3__PluginConfig *
xds_any_to_plugin_config(const Google__Protobuf__Any *any);
Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *
xds_any_to_rbac(const Google__Protobuf__Any *any);

/* The value of an Any(google.protobuf.StringValue) as a new string (free
 * with free()), or NULL if any is NULL, of another type, or malformed. */
char *xds_any_to_string(const Google__Protobuf__Any *any);

/* Frees a message returned by this module (protobuf_c_message_free_unpacked
 * with the default allocator). NULL is a no-op. */
void xds_msg_free(void *msg);

#endif
