/*
 * xds_client.c: the test xDS client on gRPC C core's completion queue.
 *
 * Tags are the op structs embedded in each stream (start, recv, send,
 * status). An event maps tag -> op, op -> stream with container_of, then
 * switches on the op kind. Invariants per stream: each op is pending at most
 * once; a batch that failed to start is never marked pending; a stream is
 * only freed when none of its ops is pending (cancel first, then drain with
 * bounded completion-queue waits). Every wait is bounded by the caller's
 * deadline and wakes at least every XDS_CLIENT_TICK_MS.
 */
#include "xds_client.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "base/err.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#define XC_CONTAINER_OF(ptr, type, member)                                     \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Largest message the client will copy out, to bound test memory. */
#define XC_MAX_MESSAGE (64u * 1024 * 1024)

/* Messages a stream keeps that were read before anyone asked for them (by
 * expect_nothing, or while waiting for the status); more are counted and
 * dropped. */
#define XC_INBOX_MAX 256

enum xc_op_kind {
  XC_OP_START = 1, /* SEND_INITIAL_METADATA */
  XC_OP_RECV,      /* RECV_MESSAGE (+ RECV_INITIAL_METADATA the first time) */
  XC_OP_SEND,      /* SEND_MESSAGE or SEND_CLOSE_FROM_CLIENT */
  XC_OP_STATUS     /* RECV_STATUS_ON_CLIENT */
};

struct xc_op {
  enum xc_op_kind kind;
  int pending; /* a batch with this tag has started and not completed */
  int done;    /* completed at least once since last posted */
  int ok;      /* success flag of the last completion */
};

/* A received message waiting in a stream's inbox. */
struct xc_msg {
  struct xc_msg *next;
  size_t len;
  uint8_t *data;
};

struct xds_stream {
  struct xds_client *client;
  struct xds_stream *next; /* client's list */
  grpc_call *call;
  struct xc_op start, recv, send, status;

  grpc_metadata_array initial_md;
  int initial_md_posted;
  grpc_byte_buffer *recv_bb; /* written by RECV_MESSAGE */
  int eof;                   /* the server will send no more messages */
  struct xc_msg *inbox;      /* read but not yet returned, oldest first */
  struct xc_msg **inbox_tail;
  size_t inbox_n;
  uint64_t inbox_dropped; /* did not fit in the inbox */

  grpc_byte_buffer *send_bb; /* owned until its SEND_MESSAGE completes */
  int half_closed;

  grpc_metadata_array trailing_md;
  grpc_status_code status_code;
  grpc_slice status_details;
  const char *error_string; /* from RECV_STATUS_ON_CLIENT; gpr_free */
  int cancelled;
  int parked; /* free requested while ops were still pending */

  uint64_t msgs;
  uint64_t bytes;
};

struct xds_client {
  grpc_channel *channel;
  grpc_completion_queue *cq;
  struct xds_stream *streams;
  uint64_t msgs;
  uint64_t bytes;
};

static gpr_timespec deadline_in(int ms) {
  if (ms < 0)
    ms = 0;
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static int past(gpr_timespec deadline) {
  return gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0;
}

/* Records a completion in the op's stream. */
static void dispatch(void *tag, int ok) {
  struct xc_op *op = tag;
  struct xds_stream *s;

  switch (op->kind) {
  case XC_OP_START:
    s = XC_CONTAINER_OF(op, struct xds_stream, start);
    break;
  case XC_OP_RECV:
    s = XC_CONTAINER_OF(op, struct xds_stream, recv);
    break;
  case XC_OP_SEND:
    s = XC_CONTAINER_OF(op, struct xds_stream, send);
    if (s->send_bb != NULL) {
      grpc_byte_buffer_destroy(s->send_bb);
      s->send_bb = NULL;
    }
    break;
  case XC_OP_STATUS:
    s = XC_CONTAINER_OF(op, struct xds_stream, status);
    break;
  default:
    abort(); /* not one of our tags: memory corruption */
  }
  (void)s;
  op->pending = 0;
  op->done = 1;
  op->ok = ok;
}

/* One bounded completion-queue wait; dispatches at most one event.
 * Returns 1 if an event was handled, 0 on timeout, -1 on shutdown. */
static int pump(struct xds_client *c, gpr_timespec deadline) {
  gpr_timespec tick = deadline_in(XDS_CLIENT_TICK_MS);
  grpc_event ev;

  if (gpr_time_cmp(deadline, tick) > 0)
    deadline = tick;
  ev = grpc_completion_queue_next(c->cq, deadline, NULL);
  switch (ev.type) {
  case GRPC_OP_COMPLETE:
    dispatch(ev.tag, ev.success);
    return 1;
  case GRPC_QUEUE_TIMEOUT:
    return 0;
  case GRPC_QUEUE_SHUTDOWN:
  default:
    return -1;
  }
}

/* Drives the queue until op is no longer pending or the deadline passes. */
static int wait_op(struct xds_stream *s, struct xc_op *op,
                   gpr_timespec deadline) {
  while (op->pending) {
    if (past(deadline))
      return XDS_CLIENT_ETIMEDOUT;
    if (pump(s->client, deadline) < 0)
      return XDS_EIO;
  }
  return 0;
}

static int start_batch(struct xds_stream *s, const grpc_op *ops, size_t n,
                       struct xc_op *op) {
  grpc_call_error err;

  err = grpc_call_start_batch(s->call, ops, n, op, NULL);
  if (err != GRPC_CALL_OK)
    return XDS_EIO;
  op->pending = 1;
  op->done = 0;
  return 0;
}

int xds_client_new_creds(const char *target, grpc_channel_credentials *creds,
                         const grpc_channel_args *args,
                         struct xds_client **out) {
  struct xds_client *c;

  *out = NULL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return XDS_ENOMEM;
  grpc_init();
  c->channel = grpc_channel_create(target, creds, args);
  if (c->channel == NULL)
    goto fail_init;
  c->cq = grpc_completion_queue_create_for_next(NULL);
  if (c->cq == NULL)
    goto fail_channel;
  *out = c;
  return 0;

fail_channel:
  grpc_channel_destroy(c->channel);
fail_init:
  grpc_shutdown();
  free(c);
  return XDS_EIO;
}

const char *xds_client_strerror(int rc) {
  switch (rc) {
  case XDS_CLIENT_ETIMEDOUT:
    return "timed out";
  case XDS_CLIENT_EEOF:
    return "stream ended";
  case XDS_CLIENT_EUNEXPECTED:
    return "unexpected message";
  default:
    return xds_strerror(rc);
  }
}

int xds_client_new(const char *target, const grpc_channel_args *args,
                   struct xds_client **out) {
  grpc_channel_credentials *creds;
  int rc;

  *out = NULL;
  /* Credentials need an initialised library; the client holds its own
   * grpc_init() reference, so this one is dropped at once. */
  grpc_init();
  creds = grpc_insecure_credentials_create();
  if (creds == NULL) {
    grpc_shutdown();
    return XDS_EIO;
  }
  rc = xds_client_new_creds(target, creds, args, out);
  grpc_channel_credentials_release(creds);
  grpc_shutdown();
  return rc;
}

int xds_client_new_compressing(const char *target,
                               grpc_compression_algorithm algo,
                               struct xds_client **out) {
  grpc_arg arg;
  grpc_channel_args args;

  arg.type = GRPC_ARG_INTEGER;
  arg.key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
  arg.value.integer = algo;
  args.num_args = 1;
  args.args = &arg;
  return xds_client_new(target, &args, out);
}

int xds_client_new_tls(const char *target, const char *root_pem,
                       const char *key_pem, const char *cert_pem,
                       const grpc_channel_args *args, struct xds_client **out) {
  grpc_ssl_pem_key_cert_pair pair = {key_pem, cert_pem};
  grpc_channel_credentials *creds;
  int rc;

  *out = NULL;
  grpc_init(); /* as in xds_client_new(): credentials need the library */
  creds = grpc_ssl_credentials_create(
      root_pem, key_pem != NULL && cert_pem != NULL ? &pair : NULL, NULL, NULL);
  if (creds == NULL) {
    grpc_shutdown();
    return XDS_EIO;
  }
  rc = xds_client_new_creds(target, creds, args, out);
  grpc_channel_credentials_release(creds);
  grpc_shutdown();
  return rc;
}

uint64_t xds_client_msgs_received(const struct xds_client *c) {
  return c->msgs;
}

uint64_t xds_client_bytes_received(const struct xds_client *c) {
  return c->bytes;
}

static int any_pending(const struct xds_stream *s) {
  return s->start.pending || s->recv.pending || s->send.pending ||
         s->status.pending;
}

/* Frees a stream whose ops have all completed, and unlinks it. */
static void stream_destroy(struct xds_stream *s) {
  struct xds_stream **pp;

  for (pp = &s->client->streams; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  if (s->call != NULL)
    grpc_call_unref(s->call);
  if (s->recv_bb != NULL)
    grpc_byte_buffer_destroy(s->recv_bb);
  if (s->send_bb != NULL)
    grpc_byte_buffer_destroy(s->send_bb);
  grpc_metadata_array_destroy(&s->initial_md);
  grpc_metadata_array_destroy(&s->trailing_md);
  grpc_slice_unref(s->status_details);
  if (s->error_string != NULL)
    gpr_free((void *)s->error_string);
  while (s->inbox != NULL) {
    struct xc_msg *m = s->inbox;

    s->inbox = m->next;
    free(m->data);
    free(m);
  }
  free(s);
}

int xds_stream_open(struct xds_client *c, const char *method,
                    struct xds_stream **out) {
  struct xds_stream *s;
  grpc_slice path;
  grpc_op op;
  int rc;

  *out = NULL;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return XDS_ENOMEM;
  s->client = c;
  s->start.kind = XC_OP_START;
  s->recv.kind = XC_OP_RECV;
  s->send.kind = XC_OP_SEND;
  s->status.kind = XC_OP_STATUS;
  s->status_details = grpc_empty_slice();
  s->inbox_tail = &s->inbox;
  grpc_metadata_array_init(&s->initial_md);
  grpc_metadata_array_init(&s->trailing_md);
  s->next = c->streams;
  c->streams = s;

  path = grpc_slice_from_copied_string(method);
  s->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                     c->cq, path, NULL,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_slice_unref(path);
  if (s->call == NULL) {
    rc = XDS_EIO;
    goto fail;
  }

  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  op.data.send_initial_metadata.count = 0;
  rc = start_batch(s, &op, 1, &s->start);
  if (rc < 0)
    goto fail;

  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
  op.data.recv_status_on_client.status = &s->status_code;
  op.data.recv_status_on_client.status_details = &s->status_details;
  op.data.recv_status_on_client.error_string = &s->error_string;
  rc = start_batch(s, &op, 1, &s->status);
  if (rc < 0)
    goto fail;
  *out = s;
  return 0;

fail:
  /* Whatever did start must finish before the stream can go. */
  xds_stream_free(s);
  return rc;
}

/* Waits for an earlier send, then starts one SEND-kind op. Takes ownership
 * of bb (may be NULL for a half-close). */
static int send_op(struct xds_stream *s, grpc_op *op, grpc_byte_buffer *bb,
                   int timeout_ms) {
  gpr_timespec deadline = deadline_in(timeout_ms);
  int rc;

  rc = wait_op(s, &s->send, deadline);
  if (rc < 0)
    goto fail;
  if (s->half_closed) {
    rc = XDS_EINVAL;
    goto fail;
  }
  s->send_bb = bb;
  rc = start_batch(s, op, 1, &s->send);
  if (rc < 0) {
    s->send_bb = NULL;
    goto fail;
  }
  rc = wait_op(s, &s->send, deadline);
  if (rc < 0)
    return rc; /* bb is freed when the send completes */
  return s->send.ok ? 0 : XDS_EIO;

fail:
  if (bb != NULL)
    grpc_byte_buffer_destroy(bb);
  return rc;
}

int xds_stream_send_raw(struct xds_stream *s, const void *data, size_t len,
                        int timeout_ms) {
  grpc_byte_buffer *bb;
  grpc_slice slice;
  grpc_op op;

  slice = grpc_slice_from_copied_buffer(data, len);
  bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  if (bb == NULL)
    return XDS_ENOMEM;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = bb;
  return send_op(s, &op, bb, timeout_ms);
}

static int send_packed(struct xds_stream *s, const ProtobufCMessage *msg,
                       int timeout_ms) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf;
  int rc;

  buf = malloc(len > 0 ? len : 1);
  if (buf == NULL)
    return XDS_ENOMEM;
  protobuf_c_message_pack(msg, buf);
  rc = xds_stream_send_raw(s, buf, len, timeout_ms);
  free(buf);
  return rc;
}

int xds_stream_send_request(
    struct xds_stream *s,
    const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
    int timeout_ms) {
  return send_packed(s, &req->base, timeout_ms);
}

int xds_stream_send_sotw(struct xds_stream *s,
                         Envoy__Config__Core__V3__Node *node,
                         const char *type_url, const char *version,
                         const char *nonce, char **names, size_t n_names,
                         const char *error, int timeout_ms) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;

  req.node = node;
  req.type_url = (char *)type_url;
  if (version != NULL)
    req.version_info = (char *)version;
  if (nonce != NULL)
    req.response_nonce = (char *)nonce;
  req.resource_names = names;
  req.n_resource_names = n_names;
  if (error != NULL) {
    st.code = GRPC_STATUS_INVALID_ARGUMENT;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  return xds_stream_send_request(s, &req, timeout_ms);
}

int xds_stream_send_delta_request(
    struct xds_stream *s,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    int timeout_ms) {
  return send_packed(s, &req->base, timeout_ms);
}

int xds_stream_half_close(struct xds_stream *s, int timeout_ms) {
  grpc_op op;
  int rc;

  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  rc = send_op(s, &op, NULL, timeout_ms);
  if (rc == 0 || rc == XDS_CLIENT_ETIMEDOUT)
    s->half_closed = 1;
  return rc;
}

static int post_recv(struct xds_stream *s) {
  grpc_op ops[2];
  size_t n = 0;

  memset(ops, 0, sizeof(ops));
  if (!s->initial_md_posted) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &s->recv_bb;
  n++;
  if (start_batch(s, ops, n, &s->recv) < 0)
    return XDS_EIO;
  s->initial_md_posted = 1;
  return 0;
}

/* Copies the payload of bb into a new buffer. */
static int copy_bb(grpc_byte_buffer *bb, uint8_t **data, size_t *len) {
  grpc_byte_buffer_reader reader;
  grpc_slice slice;
  size_t n;

  if (!grpc_byte_buffer_reader_init(&reader, bb))
    return XDS_EPARSE;
  slice = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  n = GRPC_SLICE_LENGTH(slice);
  if (n > XC_MAX_MESSAGE) {
    grpc_slice_unref(slice);
    return XDS_ETOOBIG;
  }
  *data = malloc(n > 0 ? n : 1);
  if (*data == NULL) {
    grpc_slice_unref(slice);
    return XDS_ENOMEM;
  }
  memcpy(*data, GRPC_SLICE_START_PTR(slice), n);
  *len = n;
  grpc_slice_unref(slice);
  return 0;
}

/* Takes the result of a completed RECV_MESSAGE: 0 with a new buffer, or
 * XDS_CLIENT_EEOF when the server will send no more. */
static int consume_recv(struct xds_stream *s, uint8_t **data, size_t *len) {
  grpc_byte_buffer *bb = s->recv_bb;
  int rc;

  s->recv.done = 0;
  s->recv_bb = NULL;
  if (!s->recv.ok || bb == NULL) {
    if (bb != NULL)
      grpc_byte_buffer_destroy(bb);
    s->eof = 1;
    return XDS_CLIENT_EEOF;
  }
  rc = copy_bb(bb, data, len);
  grpc_byte_buffer_destroy(bb);
  if (rc < 0)
    return rc;
  s->msgs++;
  s->bytes += *len;
  s->client->msgs++;
  s->client->bytes += *len;
  return 0;
}

/* Appends a message to the inbox (takes ownership of data). */
static void inbox_push(struct xds_stream *s, uint8_t *data, size_t len) {
  struct xc_msg *m;

  if (s->inbox_n >= XC_INBOX_MAX || (m = malloc(sizeof(*m))) == NULL) {
    free(data);
    s->inbox_dropped++;
    return;
  }
  m->next = NULL;
  m->data = data;
  m->len = len;
  *s->inbox_tail = m;
  s->inbox_tail = &m->next;
  s->inbox_n++;
}

static int inbox_pop(struct xds_stream *s, uint8_t **data, size_t *len) {
  struct xc_msg *m = s->inbox;

  if (m == NULL)
    return 0;
  s->inbox = m->next;
  if (s->inbox == NULL)
    s->inbox_tail = &s->inbox;
  s->inbox_n--;
  *data = m->data;
  *len = m->len;
  free(m);
  return 1;
}

int xds_stream_recv_raw(struct xds_stream *s, int timeout_ms, uint8_t **data,
                        size_t *len) {
  int rc;

  *data = NULL;
  *len = 0;
  if (inbox_pop(s, data, len))
    return 0;
  if (s->eof)
    return XDS_CLIENT_EEOF;
  /* Reuse a RECV_MESSAGE that is pending or completed but unconsumed. */
  if (!s->recv.pending && !s->recv.done) {
    rc = post_recv(s);
    if (rc < 0) {
      s->eof = 1;
      return XDS_CLIENT_EEOF;
    }
  }
  rc = wait_op(s, &s->recv, deadline_in(timeout_ms));
  if (rc < 0)
    return rc;
  return consume_recv(s, data, len);
}

int xds_stream_recv_response(
    struct xds_stream *s, int timeout_ms,
    Envoy__Service__Discovery__V3__DiscoveryResponse **out) {
  uint8_t *data;
  size_t len;
  int rc;

  *out = NULL;
  rc = xds_stream_recv_raw(s, timeout_ms, &data, &len);
  if (rc < 0)
    return rc;
  *out = envoy__service__discovery__v3__discovery_response__unpack(NULL, len,
                                                                   data);
  free(data);
  return *out != NULL ? 0 : XDS_EPARSE;
}

int xds_stream_recv_delta_response(
    struct xds_stream *s, int timeout_ms,
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse **out) {
  uint8_t *data;
  size_t len;
  int rc;

  *out = NULL;
  rc = xds_stream_recv_raw(s, timeout_ms, &data, &len);
  if (rc < 0)
    return rc;
  *out = envoy__service__discovery__v3__delta_discovery_response__unpack(
      NULL, len, data);
  free(data);
  return *out != NULL ? 0 : XDS_EPARSE;
}

int xds_stream_expect_nothing(struct xds_stream *s, int ms) {
  uint8_t *data;
  size_t len;
  int rc;

  if (s->inbox != NULL)
    return XDS_CLIENT_EUNEXPECTED;
  rc = xds_stream_recv_raw(s, ms, &data, &len);
  if (rc == XDS_CLIENT_ETIMEDOUT)
    return 0;
  if (rc < 0)
    return rc;
  inbox_push(s, data, len);
  return XDS_CLIENT_EUNEXPECTED;
}

int xds_stream_wait_status(struct xds_stream *s, int timeout_ms,
                           grpc_status_code *code, char **details) {
  gpr_timespec deadline = deadline_in(timeout_ms);
  uint8_t *data;
  size_t len;

  if (details != NULL)
    *details = NULL;
  /* gRPC delivers the status only after every message has been read, so
   * keep a RECV_MESSAGE posted and park what arrives in the inbox. */
  while (s->status.pending) {
    if (!s->eof && !s->recv.pending) {
      if (!s->recv.done) {
        if (post_recv(s) < 0)
          s->eof = 1;
      } else if (consume_recv(s, &data, &len) == 0) {
        inbox_push(s, data, len);
      }
      continue;
    }
    if (past(deadline))
      return XDS_CLIENT_ETIMEDOUT;
    if (pump(s->client, deadline) < 0)
      return XDS_EIO;
  }
  *code = s->status_code;
  if (details != NULL) {
    size_t n = GRPC_SLICE_LENGTH(s->status_details);

    *details = malloc(n + 1);
    if (*details == NULL)
      return XDS_ENOMEM;
    memcpy(*details, GRPC_SLICE_START_PTR(s->status_details), n);
    (*details)[n] = '\0';
  }
  return 0;
}

void xds_stream_cancel(struct xds_stream *s) {
  if (s->call != NULL && !s->cancelled) {
    grpc_call_cancel(s->call, NULL);
    s->cancelled = 1;
  }
}

uint64_t xds_stream_msgs_received(const struct xds_stream *s) {
  return s->msgs;
}

uint64_t xds_stream_bytes_received(const struct xds_stream *s) {
  return s->bytes;
}

/* Drives the queue until none of s's ops is pending or the deadline. */
static int drain_stream(struct xds_stream *s, gpr_timespec deadline) {
  while (any_pending(s)) {
    if (past(deadline))
      return XDS_CLIENT_ETIMEDOUT;
    if (pump(s->client, deadline) < 0)
      return XDS_EIO;
  }
  return 0;
}

void xds_stream_free(struct xds_stream *s) {
  if (s == NULL)
    return;
  /* Cancelling a call whose status has arrived is harmless, and it is the
   * only way to end a pending RECV_MESSAGE or send. */
  if (any_pending(s))
    xds_stream_cancel(s);
  if (drain_stream(s, deadline_in(XDS_CLIENT_DRAIN_MS)) < 0) {
    s->parked = 1; /* xds_client_free() finishes the job */
    return;
  }
  stream_destroy(s);
}

void xds_client_free(struct xds_client *c) {
  struct xds_stream *s, *next;
  gpr_timespec deadline;
  grpc_event ev;
  int cq_down = 0;

  if (c == NULL)
    return;
  for (s = c->streams; s != NULL; s = s->next)
    if (any_pending(s))
      xds_stream_cancel(s);
  deadline = deadline_in(XDS_CLIENT_DRAIN_MS);
  for (s = c->streams; s != NULL; s = next) {
    next = s->next;
    if (drain_stream(s, deadline) == 0)
      stream_destroy(s);
  }
  grpc_channel_destroy(c->channel);
  grpc_completion_queue_shutdown(c->cq);
  /* Bounded: after shutdown only already-started ops can still report,
   * and every call has been cancelled. */
  deadline = deadline_in(XDS_CLIENT_DRAIN_MS);
  for (;;) {
    ev = grpc_completion_queue_next(c->cq, deadline, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {
      cq_down = 1;
      break;
    }
    if (ev.type == GRPC_QUEUE_TIMEOUT)
      break;
    dispatch(ev.tag, ev.success);
  }
  if (cq_down) {
    /* The queue reports shutdown only once every op has completed, so
     * streams parked by a slow drain can go now. */
    for (s = c->streams; s != NULL; s = next) {
      next = s->next;
      stream_destroy(s);
    }
    grpc_completion_queue_destroy(c->cq);
  }
  /* else: ops still outstanding after every bound; leaking beats freeing
   * memory that gRPC may still write. */
  grpc_shutdown();
  free(c);
}

/* ---- messages ---------------------------------------------------------- */

static Google__Protobuf__Value *string_value_new(const char *v) {
  Google__Protobuf__Value *val = malloc(sizeof(*val));

  if (val == NULL)
    return NULL;
  google__protobuf__value__init(val);
  val->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  val->string_value = strdup(v);
  if (val->string_value == NULL) {
    free(val);
    return NULL;
  }
  return val;
}

static void value_free(Google__Protobuf__Value *v);

static void struct_free(Google__Protobuf__Struct *st) {
  if (st == NULL)
    return;
  for (size_t i = 0; i < st->n_fields; i++) {
    free(st->fields[i]->key);
    value_free(st->fields[i]->value);
    free(st->fields[i]);
  }
  free(st->fields);
  free(st);
}

static void value_free(Google__Protobuf__Value *v) {
  if (v == NULL)
    return;
  if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
    free(v->string_value);
  else if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE)
    struct_free(v->struct_value);
  free(v);
}

/* Appends key -> value (takes ownership of value, even on failure). */
static int struct_add(Google__Protobuf__Struct *st, const char *key,
                      Google__Protobuf__Value *value) {
  Google__Protobuf__Struct__FieldsEntry **fields, *e;

  if (value == NULL)
    return XDS_ENOMEM;
  fields = realloc(st->fields, (st->n_fields + 1) * sizeof(*fields));
  if (fields == NULL)
    goto fail;
  st->fields = fields;
  e = malloc(sizeof(*e));
  if (e == NULL)
    goto fail;
  google__protobuf__struct__fields_entry__init(e);
  e->key = strdup(key);
  if (e->key == NULL) {
    free(e);
    goto fail;
  }
  e->value = value;
  st->fields[st->n_fields++] = e;
  return 0;
fail:
  value_free(value);
  return XDS_ENOMEM;
}

static Google__Protobuf__Struct *struct_from_kv(const char *const *kv) {
  Google__Protobuf__Struct *st = malloc(sizeof(*st));

  if (st == NULL)
    return NULL;
  google__protobuf__struct__init(st);
  for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL; i += 2) {
    if (struct_add(st, kv[i], string_value_new(kv[i + 1])) < 0) {
      struct_free(st);
      return NULL;
    }
  }
  return st;
}

Envoy__Config__Core__V3__Node *xds_node_new(const char *id, const char *cluster,
                                            const char *const *meta_kv,
                                            const char *const *labels_kv) {
  Envoy__Config__Core__V3__Node *node;
  Google__Protobuf__Value *labels;

  node = malloc(sizeof(*node));
  if (node == NULL)
    return NULL;
  envoy__config__core__v3__node__init(node);
  node->id = strdup(id != NULL ? id : "");
  node->cluster = strdup(cluster != NULL ? cluster : "");
  node->user_agent_name = strdup("wasmxds-e2e");
  node->metadata = struct_from_kv(meta_kv);
  if (node->id == NULL || node->cluster == NULL ||
      node->user_agent_name == NULL || node->metadata == NULL)
    goto fail;
  if (labels_kv != NULL) {
    labels = malloc(sizeof(*labels));
    if (labels == NULL)
      goto fail;
    google__protobuf__value__init(labels);
    labels->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    labels->struct_value = struct_from_kv(labels_kv);
    if (labels->struct_value == NULL) {
      free(labels);
      goto fail;
    }
    if (struct_add(node->metadata, "wasmxds.labels", labels) < 0)
      goto fail;
  }
  return node;
fail:
  xds_node_free(node);
  return NULL;
}

/* Frees a Node built by xds_node_new(): every pointer in it is ours (the
 * init'ed defaults of unset fields are not heap memory, so this does not use
 * protobuf_c_message_free_unpacked). */
void xds_node_free(Envoy__Config__Core__V3__Node *node) {
  if (node == NULL)
    return;
  free(node->id == protobuf_c_empty_string ? NULL : node->id);
  free(node->cluster == protobuf_c_empty_string ? NULL : node->cluster);
  free(node->user_agent_name == protobuf_c_empty_string
           ? NULL
           : node->user_agent_name);
  struct_free(node->metadata);
  free(node);
}

int xds_any_unpack(const Google__Protobuf__Any *any,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out) {
  size_t plen = strlen(XDS_TYPE_PREFIX);

  *out = NULL;
  if (any == NULL || any->type_url == NULL ||
      strncmp(any->type_url, XDS_TYPE_PREFIX, plen) != 0 ||
      strcmp(any->type_url + plen, desc->name) != 0)
    return XDS_EINVAL;
  *out = protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data);
  return *out != NULL ? 0 : XDS_EPARSE;
}

static void *any_to(const Google__Protobuf__Any *any,
                    const ProtobufCMessageDescriptor *desc) {
  ProtobufCMessage *m;

  return xds_any_unpack(any, desc, &m) == 0 ? (void *)m : NULL;
}

Envoy__Config__Listener__V3__Listener *
xds_any_to_listener(const Google__Protobuf__Any *any) {
  return any_to(any, &envoy__config__listener__v3__listener__descriptor);
}

Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
xds_any_to_hcm(const Google__Protobuf__Any *any) {
  return any_to(
      any,
      &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
}

Envoy__Config__Core__V3__TypedExtensionConfig *
xds_any_to_typed_extension_config(const Google__Protobuf__Any *any) {
  return any_to(any,
                &envoy__config__core__v3__typed_extension_config__descriptor);
}

Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *
xds_any_to_wasm(const Google__Protobuf__Any *any) {
  return any_to(any,
                &envoy__extensions__filters__http__wasm__v3__wasm__descriptor);
}

Envoy__Extensions__Wasm__V3__PluginConfig *
xds_any_to_plugin_config(const Google__Protobuf__Any *any) {
  return any_to(any, &envoy__extensions__wasm__v3__plugin_config__descriptor);
}

Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *
xds_any_to_rbac(const Google__Protobuf__Any *any) {
  return any_to(any,
                &envoy__extensions__filters__http__rbac__v3__rbac__descriptor);
}

char *xds_any_to_string(const Google__Protobuf__Any *any) {
  Google__Protobuf__StringValue *sv;
  char *s;

  sv = any_to(any, &google__protobuf__string_value__descriptor);
  if (sv == NULL)
    return NULL;
  s = strdup(sv->value != NULL ? sv->value : "");
  xds_msg_free(sv);
  return s;
}

void xds_msg_free(void *msg) {
  if (msg != NULL)
    protobuf_c_message_free_unpacked(msg, NULL);
}
