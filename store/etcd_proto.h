/*
 * etcd_proto.h: the etcd v3 JSON gateway, without I/O.
 *
 * What the client (store/etcd_client.c) and the watcher need from the wire
 * and that a test can drive with scripted bytes: base64 (keys and values
 * are base64 in JSON), the end of a prefix range, int64 fields (the
 * gateway writes them as strings), the shapes of a key-value, a response
 * header and a gRPC error, and a splitter that cuts a watch stream (JSON
 * objects one after the other, newline-separated in practice, arriving in
 * arbitrary chunks) into whole messages with a bounded buffer.
 *
 * Pure; every function is safe on any thread with its own arguments.
 */
#ifndef XDS_STORE_ETCD_PROTO_H
#define XDS_STORE_ETCD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"

/* Largest single JSON message (a unary response, or one watch message)
 * accepted: protects memory from a runaway response. A range page that
 * would exceed it is asked again with fewer keys; watches ask etcd to
 * fragment large responses, so one message stays near etcd's own request
 * limit (1.5 MiB by default). */
#define ETCD_MAX_MESSAGE_BYTES (64u * 1024u * 1024u)

/* gRPC status codes etcd reports in error bodies. */
#define ETCD_GRPC_INVALID_ARGUMENT 3
#define ETCD_GRPC_NOT_FOUND 5
#define ETCD_GRPC_PERMISSION_DENIED 7
#define ETCD_GRPC_FAILED_PRECONDITION 9
#define ETCD_GRPC_OUT_OF_RANGE 11
#define ETCD_GRPC_UNAVAILABLE 14
#define ETCD_GRPC_UNAUTHENTICATED 16

/* A new NUL-terminated base64 (standard alphabet, padded) of n bytes, or
 * NULL when out of memory. */
char *etcd_b64_encode(const void *p, size_t n);
/* Decodes s (padded or not); *out is NUL-terminated (the caller frees it)
 * and *len its length. Returns 0, XDS_EPARSE (not base64) or XDS_ENOMEM. */
int etcd_b64_decode(const char *s, char **out, size_t *len);

/* The range_end that makes [key, end) every key starting with the n bytes
 * of prefix: the prefix with its last byte below 0xff incremented (and the
 * rest dropped); "\0" (all keys) for an empty or all-0xff prefix. New
 * string (caller frees), *end_len its length; NULL on ENOMEM. */
char *etcd_prefix_end(const char *prefix, size_t n, size_t *end_len);

/* Reads an int64 written as a JSON string ("123") or an integer. A
 * missing (NULL) value is 0, as protobuf JSON omits zeros. Returns 0 or
 * XDS_EPARSE. */
int etcd_json_int64(const json_t *v, int64_t *out);
/* The same for uint64 (cluster ids). */
int etcd_json_uint64(const json_t *v, uint64_t *out);

struct etcd_header {
  int64_t revision;
  uint64_t cluster_id;
  uint64_t member_id;
};

/* Reads obj["header"] (missing fields are 0). Returns 0 or XDS_EPARSE. */
int etcd_parse_header(const json_t *obj, struct etcd_header *h);

/* One key-value as etcd returns it; key and value are decoded and
 * NUL-terminated (keys are text for this store, values may be anything). */
struct etcd_kv {
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  int64_t create_revision;
  int64_t mod_revision;
  int64_t version;
};

/* Decodes a JSON "kv" object into kv (the caller cleans it up, also on
 * error). Returns 0, XDS_EPARSE (err says which field), XDS_ENOMEM. */
int etcd_parse_kv(const json_t *obj, struct etcd_kv *kv, struct xds_err *err);
void etcd_kv_cleanup(struct etcd_kv *kv);

/*
 * Whether obj is a gRPC error body ({"error": "...", "code": N, ...} from
 * a unary call, or {"error": {"grpc_code": N, "message": "..."}} from a
 * stream). Returns 1 with *code and *msg (borrowed from obj), 0 when it is
 * not one.
 */
int etcd_error_of(const json_t *obj, int *code, const char **msg);

/* Called with each complete JSON message of a stream (text borrowed for
 * the call, not NUL-terminated). A negative return stops the feed and is
 * returned by etcd_splitter_feed(). */
typedef int (*etcd_msg_fn)(void *ctx, const char *json, size_t len);

/* Cuts a byte stream into top-level JSON objects: tracks brace depth
 * outside strings (escapes included); whitespace between objects is
 * skipped. The caller owns the struct (init/cleanup). */
struct etcd_splitter {
  struct xds_buf buf; /* the unfinished message */
  int depth;
  int in_str;
  int esc;
};

/* max: the largest message; a longer one makes feed return XDS_ETOOBIG. */
void etcd_splitter_init(struct etcd_splitter *s, size_t max);
void etcd_splitter_cleanup(struct etcd_splitter *s);
/* Feeds n bytes, calling fn for each message they complete. Returns 0,
 * XDS_ETOOBIG, XDS_EPARSE (a byte outside an object that is not
 * whitespace), XDS_ENOMEM or fn's negative return. After an error the
 * splitter must be reset (cleanup + init) before more feeding. */
int etcd_splitter_feed(struct etcd_splitter *s, const char *p, size_t n,
                       etcd_msg_fn fn, void *ctx);
/* Bytes of an unfinished message held (0 between messages). */
size_t etcd_splitter_pending(const struct etcd_splitter *s);

#endif
