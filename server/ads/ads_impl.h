/*
 * ads_impl.h: what the files of the ADS core share, private to
 * server/ads/ (and to its offline tests, which may look inside a stream).
 *
 * The core is split by job:
 *   ads.c         stream lifecycle, accessors, request dispatch (identity,
 *                 then type), ACK/NACK tracking;
 *   ads_node.c    who the proxy is: node identity, the certificate check,
 *                 the proxy's class in the snapshot;
 *   ads_sub.c     what the proxy is subscribed to and what it has;
 *   ads_sotw.c    state-of-the-world requests and responses;
 *   ads_delta.c   incremental requests and responses;
 *   ads_other.c   types wasmxds does not serve;
 *   ads_resp.c    what every response needs (nonce, version, owed set) and
 *                 which response goes next;
 *   ads_status.c  the stream's JSON status for the admin pages;
 *   ads_wire.c    a request given as its bytes: ACKs read without
 *                 unpacking, the rest checked, unpacked and applied.
 *
 * Threads: all of it runs on the thread that owns the stream.
 */
#ifndef XDS_ADS_IMPL_H
#define XDS_ADS_IMPL_H

#include "server/ads/ads.h"

#include "base/assert.h"
#include "base/log.h"
#include "base/ratelog.h"

#include "google/rpc/status.pb-c.h"

/* Where one resource stands with this proxy. */
enum ads_res_state {
  ADS_RES_PENDING = 0, /* sent, not yet acknowledged */
  ADS_RES_ACKED = 1,
  ADS_RES_NACKED = 2,
  ADS_RES_CLIENT = 3 /* the proxy said it has it (reconnect) */
};

/* Per resource the proxy has or was sent: 24 bytes (one of these per
 * resource and proxy is most of what wasmxds itself holds per proxy). */
struct ads_res {
  const char *name; /* interned (base/intern.h), owned */
  uint64_t version; /* last sent (or reported by the proxy), binary: the 16
                       hex digits of a version (server/compose/version.h) */
  uint32_t nonce;   /* low 32 bits of the nonce of the response that carried
                       version (a stream would need 2^32 responses for two
                       of them to share it) */
  uint8_t state;    /* enum ads_res_state */
  uint8_t flags;    /* ADS_RES_* */
};
/* version holds a version; without it the proxy holds none, or one that
 * is not a wasmxds version (a delta initial_resource_versions entry from
 * another server): either way it differs from every version served. */
#define ADS_RES_HAS_VERSION 1u
/* The last version acknowledged is the value in version (whether or not
 * ADS_RES_HAS_VERSION still says it is current). */
#define ADS_RES_ACKED_SAME 2u
/* The last version acknowledged differs from version: it is kept in the
 * array's old list (ads_sent.old) until the next ACK. Neither flag: none
 * was acknowledged ("" in the status pages). */
#define ADS_RES_ACKED_OLD 4u
/* version (and an acknowledged version equal to it) is a slot's: its
 * digit ADS_VER_S_AT is the letter s (encode_slot_version). */
#define ADS_RES_VER_S 8u
#define ADS_VER_S_AT 9

/* An acknowledged version that a later send replaced, until the proxy
 * acknowledges again (a push in flight, or a NACK). */
struct ads_old_ack {
  const char *name; /* the record's name (borrowed from it) */
  uint64_t acked;
  uint8_t form; /* as ads_ver_parse returns it */
};

/* Names added since the last merge that ads_sent_put keeps unsorted. */
#define ADS_SENT_TAIL 32

/* What the proxy has of one type (ads_sent.c): records sorted by name
 * (v[0..sorted)), then up to ADS_SENT_TAIL recent additions. */
struct ads_sent {
  struct ads_res *v;
  uint32_t n, cap, sorted;
  uint32_t n_pending, n_nacked; /* records in those states */
  struct ads_old_ack *old;      /* sorted by name pointer; NULL when empty */
  uint32_t n_old;
};

struct ads_type_state {
  int requested;  /* a valid request of this type was seen */
  int ever_named; /* SotW: some request named resources */
  int wildcard;
  const char **names; /* sorted, unique explicitly subscribed names, each
                         interned (base/intern.h) and owned; SotW: a list
                         shared with the streams that subscribe to the same
                         (xds_intern_list, read-only) when names_shared */
  int names_shared;
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
  struct ads_sent sent;     /* what the proxy has (ads_sent.c) */
  struct xds_map *absent;   /* delta: names reported as not existing */
  const char **owe_removed; /* delta: names unsubscribed under wildcard
                               that it does not cover, to be answered in
                               removed_resources (interned, owned) */
  size_t n_owe_removed;
  struct xds_map *owe_set; /* the same names, borrowed, for lookups */
  uint64_t acks, nacks;
  int owed_clean; /* SotW ECDS: nothing is owed, and nothing that decides
                     it (snapshot, class, subscription, the sent map) has
                     changed since; cleared by every such change, so an
                     ACK does not recompute what is owed */
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
  struct xds_map *absent_set; /* the same names, borrowed, for lookups */
  struct xds_map *subscribed; /* delta: names subscribed (copied keys) */
};

/* Kinds of event whose log lines are limited per proxy (base/ratelog.h):
 * the ratelog's kinds, in this order. */
enum ads_event {
  ADS_EV_NACK = 0,    /* a NACK */
  ADS_EV_REFUSED = 1, /* an ECDS name the proxy may not have */
  ADS_EV_TYPE = 2,    /* a request for a type wasmxds does not serve */
  ADS_EV_N = 3
};

/* Log lines one proxy may cause per kind of event and window, and the
 * window. */
#define ADS_LOG_PER_WINDOW 5
#define ADS_LOG_WINDOW_MS 10000
/* Proxies (node ids) whose log budget is remembered across reconnects. */
#define ADS_LOG_PROXIES_MAX 10000
/* Longest escaped node id in log lines. */
#define ADS_LOG_NAME_MAX 256

/* Bytes of the digest of a node's bytes (SHA-256). */
#define ADS_NODE_DIGEST_LEN 32

/* ads_stream.magic while the stream is initialized. */
#define ADS_STREAM_MAGIC 0x41445353u

struct ads_stream {
  unsigned magic; /* ADS_STREAM_MAGIC; 0 after cleanup */
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
  struct ads_other_type *other; /* n_other entries (made on first use: most
                                   streams ask for no other type) */
  size_t n_other;
  struct xds_map *refused; /* names refused and logged once */
  uint64_t nonce_seq;
  uint64_t responses, resources_sent;
  long long connected_ms;      /* wall clock (ms since the epoch) at init */
  int last_type;               /* type of the last response: ADS_T_*, or -1 */
  size_t last_resources;       /* resources in it */
  struct xds_ratelog *ratelog; /* shared log budget, or NULL; borrowed */
  char *log_name;              /* the node id escaped for logs (at most
                                  ADS_LOG_NAME_MAX bytes), once it has a node */
  unsigned long events[ADS_EV_N]; /* events of this stream, by kind */
  unsigned long log_suppressed;   /* their log lines left out */
  /* --ecds-slots (ads_slots.c): what each slot sent holds (slot name ->
   * fqn, "" for nothing; copied keys and values), and the transit configs
   * of the last response. */
  struct xds_map *slot_holds;
  struct xds_resource *transit;
  size_t n_transit;
  int slots_deferred; /* the last ECDS plan left slot configs owed */
  /* ads_stream_set_sync_counts: the counts (borrowed, or NULL) and the
   * state this stream is counted in there (-1: none). */
  atomic_long *sync_counts;
  int sync_counted;
  /* ads_wire.c: the SHA-256 and length of the bytes of a node the stream
   * accepted, when node_known: a request whose node has the same bytes
   * has the same identity. */
  int node_known;
  uint32_t node_len;
  unsigned char node_sha[ADS_NODE_DIGEST_LEN];
};

/* Type URLs and short names of the served types, by enum ads_type. */
extern const char *const ads_type_urls[ADS_T_N];
extern const char *const ads_type_names[ADS_T_N];

/* --- ads_sent.c --- */

/* Reads a version's 16 lowercase hex digits into *out: 1; a slot's
 * version, whose digit ADS_VER_S_AT is the letter s (read as 0): 2; 0 when
 * text is neither. */
int ads_ver_parse(const char *text, uint64_t *out);
/* Writes v as a version's 16 hex digits, of the form ads_ver_parse gave. */
void ads_ver_format(uint64_t v, int form, char out[VERSION_LEN + 1]);
/* A record's version and acknowledged version as text ("" for none). */
void ads_res_version_text(const struct ads_res *r, char out[VERSION_LEN + 1]);
void ads_res_acked_text(const struct ads_sent *a, const struct ads_res *r,
                        char out[VERSION_LEN + 1]);
/* Whether r holds exactly the version given as text. */
int ads_res_version_is(const struct ads_res *r, const char *version);
/* Records r's version (r in a) as its acknowledged one (none when it has
 * none). */
void ads_res_ack_version(struct ads_sent *a, struct ads_res *r);
/* Sets r's state (r in a), keeping a's counts. */
void ads_res_set_state(struct ads_sent *a, struct ads_res *r,
                       enum ads_res_state st);
/* Frees the records (releasing their names) and zeroes a. */
void ads_sent_cleanup(struct ads_sent *a);
/* The record named name, or NULL. The pointer is valid until a changes. */
struct ads_res *ads_sent_find(const struct ads_sent *a, const char *name);
/* Records that name went out at version (text; one that is not a version
 * is recorded as none) in the response with nonce: state PENDING. *out
 * (when not NULL) is set to the record. Returns 0 or XDS_ENOMEM (a
 * unchanged). */
int ads_sent_put(struct ads_sent *a, const char *name, const char *version,
                 uint64_t nonce, struct ads_res **out);
/* Removes the record named name; returns 1, or 0 when there was none. */
int ads_sent_del(struct ads_sent *a, const char *name);
/* Removes, in one pass, every record whose name keep() rejects, calling
 * dropped() (when not NULL) with its name before the name is released. */
void ads_sent_filter(struct ads_sent *a,
                     int (*keep)(const void *ctx, const char *name),
                     const void *ctx,
                     void (*dropped)(void *dctx, const char *name), void *dctx);
/* Merges the recent additions into the sorted part and gives back unused
 * capacity (never fails: a shrink that fails keeps the larger array). */
void ads_sent_settle(struct ads_sent *a);
/* Asserts a's invariants (order, uniqueness of the sorted part, counts). */
void ads_sent_check(const struct ads_sent *a);

/* --- ads_slots.c --- */

/* Orders the owed ECDS resources *send (n_send; a new array from
 * ads_resp_owed, replaced by another) of a stream whose class has slots so
 * that every state the proxy passes through is safe, deferring what cannot
 * go out in this response. Returns 0 or XDS_ENOMEM. */
int ads_slots_plan(struct ads_stream *s, const struct xds_resource ***send,
                   size_t *n_send);
/* Frees the stream's transit configs. */
void ads_slots_cleanup(struct ads_stream *s);

/* Appends to out the slot part of a SotW ECDS version_info of a stream
 * whose class has slots: ":<slot layout>:<holdings>", holdings one token
 * per slot in class order (6 hex digits: encode_slot_ident of its
 * occupant; "-" empty; "x" something not in the store; "?" not known),
 * a repeated token written once with "*<count>.". Returns 0 or
 * XDS_ENOMEM/XDS_ETOOBIG. */
int ads_slots_holdings(const struct ads_stream *s, struct xds_buf *out);

/* A SotW proxy reconnecting with ECDS version_info version (at least
 * VERSION_LEN characters): when its slot part is of this class's layout,
 * records in s->slot_holds what each slot holds. Returns 1 when every slot
 * holds its final occupant, 0 otherwise (also when version is not of this
 * layout: nothing recorded), or XDS_ENOMEM. */
int ads_slots_resume(struct ads_stream *s, const char *version);

/* --- ads.c --- */

/* Initializes caller-owned storage (the offline tests keep a stream on
 * their stack; everyone else uses ads_stream_new). peer is copied (may be
 * NULL). Returns 0 or XDS_ENOMEM (nothing to clean up). */
int ads_stream_init(struct ads_stream *s, enum ads_service svc,
                    enum ads_mode mode, const char *peer);
/* Frees what the stream holds and zeroes it. */
void ads_stream_cleanup(struct ads_stream *s);

/* What every public call that changes a stream ends with: merges the
 * records added to the sent arrays, and moves the stream to its current
 * sync state in the counts (ads_stream_set_sync_counts). */
void ads_stream_after(struct ads_stream *s);

/* Counts an event of kind ev for this stream's proxy; returns 1 when its
 * log line may be written (the proxy's budget, shared with its other and
 * later streams, allows it), 0 when it is left out. */
int ads_log_allow(struct ads_stream *s, enum ads_event ev);

/* The node id for logs (escaped: xds_log_escape), or "(no node yet)". */
const char *ads_node_name(const struct ads_stream *s);

/* Fills *c (which may be NULL) with a gRPC status code and a formatted
 * message. Returns -1, so callers can `return ads_close_with(...)`. */
int ads_close_with(struct ads_close *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the stream because memory ran out. Returns -1. */
int ads_close_oom(const struct ads_stream *s, struct ads_close *close);

/* The names a request carries: SotW resource_names (as sub), delta
 * resource_names_subscribe and _unsubscribe, and the number of delta
 * initial_resource_versions. Borrowed from the request. */
struct ads_req_names {
  char **sub;
  size_t n_sub;
  char **unsub;
  size_t n_unsub;
  size_t n_initial;
};

/* What every request, SotW or delta, starts with: identity, the limits on
 * names (every list at most ADS_NAMES_MAX names of at most
 * ADS_NAME_LEN_MAX bytes, whatever the type), then the type. Returns -1
 * (close the stream, *close set), 0 (the request is done: another type,
 * answered empty, or ignored) or 1 with *idx the served type. */
int ads_request_start(struct ads_stream *s,
                      const Envoy__Config__Core__V3__Node *node,
                      const char *type, const struct ads_req_names *in,
                      struct snapshot *snap, struct ads_close *close, int *idx);

/* An ACK or NACK (error not NULL) of the response of type idx that carried
 * nonce; latest: that response is the newest of its type. */
void ads_ack(struct ads_stream *s, struct ads_type_state *t, int idx,
             const char *nonce, const char *version,
             const Google__Rpc__Status *error, int latest);

/* Debug builds (XDS_DEBUG): asserts the stream's invariants (initialized,
 * a class once it has a node, names sorted, unique and within their
 * limits). ADS_CHECK compiles to nothing otherwise. */
void ads_check_invariants(const struct ads_stream *s);
/* The same, and what ads_stream_after leaves: the sent arrays merged and
 * the stream counted in its sync state. ADS_CHECK_SETTLED starts every
 * public call. */
void ads_check_settled(const struct ads_stream *s);
#ifdef XDS_DEBUG
#define ADS_CHECK(s) ads_check_invariants(s)
#define ADS_CHECK_SETTLED(s) ads_check_settled(s)
#else
#define ADS_CHECK(s) ((void)0)
#define ADS_CHECK_SETTLED(s) ((void)0)
#endif

/* --- ads_node.c --- */

/* Identity: set from the first request's node, checked against it (and
 * the certificate) on every later one. The first node also picks the
 * stream's class in snap. Returns 0, or -1 with *close set. */
int ads_node_check(struct ads_stream *s,
                   const Envoy__Config__Core__V3__Node *node,
                   struct snapshot *snap, struct ads_close *close);
/* Moves the stream to snap (takes a reference) and its class there.
 * Returns 0, or -1 with *close set (out of memory). */
int ads_node_set_snapshot(struct ads_stream *s, struct snapshot *snap,
                          struct ads_close *close);

/* --- ads_sub.c --- */

/* Releases n interned names and frees their array. */
void ads_names_release(const char **v, size_t n);
/* Releases t's explicit subscriptions (t->names). */
void ads_names_free(struct ads_type_state *t);
/* Releases t's owed removals. */
void ads_owe_removed_free(struct ads_type_state *t);
/* qsort/bsearch comparison of two `const char *`. */
int ads_str_cmp(const void *a, const void *b);

/* Whether name is explicitly subscribed in t. */
int ads_sub_has(const struct ads_type_state *t, const char *name);
/* Forgets that the proxy has name (so it is sent again). name may be the
 * sent entry's own name: it is used before that entry is freed. */
void ads_sub_forget(struct ads_type_state *t, const char *name);
/* Forgets every resource the proxy was sent whose name keep() rejects. */
void ads_sub_forget_unless(struct ads_type_state *t,
                           int (*keep)(const void *ctx, const char *name),
                           const void *ctx);
/* Records that name went out at version in the response with nonce.
 * Returns 0 or XDS_ENOMEM. */
int ads_sub_remember(struct ads_type_state *t, const char *name,
                     const char *version, uint64_t nonce);
/* The resource name of type idx, if this proxy may see it; NULL otherwise.
 * With log set, refusals of ECDS names are logged once per stream. */
const struct xds_resource *ads_sub_lookup(struct ads_stream *s, int idx,
                                          const char *name, int log);
/* The candidates of type idx: every visible resource under wildcard, else
 * the subscribed names; ads_sub_candidate() is NULL for one that does not
 * exist or that the proxy may not see (logged once when log is set). */
size_t ads_sub_candidate_count(const struct ads_stream *s, int idx);
const struct xds_resource *ads_sub_candidate(struct ads_stream *s, int idx,
                                             size_t i, int log);

/* --- ads_sotw.c, ads_delta.c, ads_other.c --- */

/* A SotW request's resource names, in order: from an unpacked request's
 * array, or read from the request's encoded bytes (field 3 of a
 * DiscoveryRequest that ads_wire.c checked: every field reads strictly,
 * and no name holds a NUL byte). Borrowed. */
struct ads_names_src {
  int wire;               /* read from the bytes */
  char *const *v;         /* !wire: the names */
  const uint8_t *p, *end; /* wire: the request's bytes */
  size_t n;               /* names in all (with "*") */
  size_t i;               /* iteration: names read */
  const uint8_t *at;      /* wire: where reading goes on */
};
/* Sets src to the n names of v, or to the n names (field 3) in the len
 * bytes at p. */
void ads_names_src_array(struct ads_names_src *src, char *const *v, size_t n);
void ads_names_src_wire(struct ads_names_src *src, const uint8_t *p, size_t len,
                        size_t n);
/* The next name (*name, *len bytes, not NUL-terminated when read from
 * bytes): 1, or 0 after the last. */
int ads_names_next(struct ads_names_src *src, const char **name, size_t *len);

/* What ads_sotw_apply returns when the request, read from its bytes,
 * changes the subscription: nothing was applied, unpack it instead. */
#define ADS_NEED_UNPACK 1

/* A SotW request of served type idx that ads_request_start accepted (or
 * that ads_wire.c found it would accept): its ACK or NACK (error not NULL),
 * then its subscription (names). nonce and version are "" when absent.
 * Returns 0, -1 with *close set, or ADS_NEED_UNPACK (names read from
 * bytes). */
int ads_sotw_apply(struct ads_stream *s, int idx, const char *nonce,
                   const char *version, const Google__Rpc__Status *error,
                   struct ads_names_src *src, struct ads_close *close);
/* The same for delta: req gives the names, initial_resource_versions and
 * error_detail; NULL is a request with none of them (an ACK). */
int ads_delta_apply(
    struct ads_stream *s, int idx, const char *nonce,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    struct ads_close *close);

/* Write into out the next response of the stream's mode owed for a served
 * type (LDS before ECDS). Return 1 (written), 0 (none owed), XDS_ENOMEM
 * or XDS_ETOOBIG. ads_sotw_response may put the class's shared part in
 * *shared (see ads_stream_next_response). */
int ads_sotw_response(struct ads_stream *s, struct xds_buf *out,
                      struct ads_shared *shared);
int ads_delta_response(struct ads_stream *s, struct xds_buf *out);

/* A request for a type wasmxds does not serve. In delta, in's names
 * change the type's subscription, which holds at most ADS_NAMES_MAX names
 * as for served types. Returns 0, or -1 with *close set (out of memory,
 * over the limit). */
int ads_other_request(struct ads_stream *s, const char *type_url,
                      const struct ads_req_names *in, struct ads_close *close);
/* Frees what an unserved type's entry holds. */
void ads_other_cleanup(struct ads_other_type *o);
/* The next (empty) answer owed to an unserved type: 1, 0 or an error, as
 * above. */
int ads_other_response(struct ads_stream *s, struct xds_buf *out);

/* --- ads_wire.c --- */

/* The fast path of ads_stream_on_request_bytes: when the request is of a
 * form it reads from the bytes (ads_wire.c says which), applies it as the
 * slow path would and returns 1 with *rc what the slow path would have
 * returned; otherwise returns 0 having changed nothing. */
int ads_wire_fast(struct ads_stream *s, const uint8_t *p, size_t len,
                  struct ads_close *close, int *rc);
/* The slow path: the name limits on the bytes, strings without NUL bytes
 * and nesting within bounds, the unpack, then ads_stream_on_request or
 * _on_delta_request (each refusal logged). Remembers the node's bytes
 * when the request carried one that was accepted. Returns 0 or -1 with
 * *close set. */
int ads_wire_slow(struct ads_stream *s, const uint8_t *p, size_t len,
                  struct snapshot *snap, struct ads_close *close);

/* --- ads_resp.c --- */

/* Writes the stream's next nonce (decimal) into out; returns its value. */
uint64_t ads_resp_next_nonce(struct ads_stream *s, char out[24]);
/* The version of a type's state for this stream: a hash of every
 * candidate's name and version (SotW version_info, delta
 * system_version_info). Returns 0 or XDS_ENOMEM. */
int ads_resp_state_version(struct ads_stream *s, int idx,
                           char out[VERSION_LEN + 1]);
/* Resources of type idx the stream owes: visible candidates whose version
 * differs from what the proxy has. *send is a new array (caller frees,
 * also on error). Returns 0 or XDS_ENOMEM. */
int ads_resp_owed(struct ads_stream *s, int idx,
                  const struct xds_resource ***send, size_t *n_send);

#endif
