/*
 * xds_server.c: the completion-queue loop, accept slots, per-stream
 * operations and the shutdown choreography.
 *
 * Every tag is a struct xds_op embedded in its owner (an accept slot or a
 * stream); container_of leads back to the owner and a switch on the op kind
 * dispatches. Per stream (style.md §6.14):
 * - RECV_CLOSE_ON_SERVER is posted when the call is accepted;
 * - exactly one RECV_MESSAGE is pending until the client's side ends;
 * - at most one SEND_MESSAGE is in flight; what to send next is pulled from
 *   ads_stream_next_response() when the previous send completes, so the
 *   newest state always wins and nothing queues up per stream;
 * - a stream is freed in the after-events phase once none of its ops is
 *   outstanding (a batch that failed to start never counts).
 */
#include "xds_server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ads.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#define container_of(p, type, member)                                         \
  ((type *)((char *)(p)-offsetof(type, member)))

/* Calls waiting to be accepted at any time: enough that a connection storm
 * does not wait on the loop to re-arm. */
#define ACCEPT_SLOTS 32
/* Largest request accepted, and largest response sent (Envoy's default
 * gRPC limit is 4 MiB). */
#define XDS_MESSAGE_MAX (4 * 1024 * 1024)

enum xds_op_kind {
  OP_ACCEPT,
  OP_RECV,        /* SEND_INITIAL_METADATA (first time) + RECV_MESSAGE */
  OP_SEND,        /* SEND_MESSAGE */
  OP_CLOSED,      /* RECV_CLOSE_ON_SERVER */
  OP_STATUS,      /* SEND_STATUS_FROM_SERVER */
  OP_SHUTDOWN     /* the server's shutdown notification */
};

struct xds_op {
  enum xds_op_kind kind;
};

struct accept_slot {
  struct xds_op op;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
};

enum stream_kind {
  STREAM_XDS,          /* one of the methods below */
  STREAM_UNIMPLEMENTED /* anything else: answered UNIMPLEMENTED */
};

struct stream {
  struct xds_op op_recv, op_send, op_closed, op_status;
  struct xds_server *server;
  struct stream *prev, *next;
  grpc_call *call;
  enum stream_kind kind;
  grpc_byte_buffer *recv_buf;
  grpc_byte_buffer *send_buf;
  int cancelled;     /* RECV_CLOSE_ON_SERVER result */
  int outstanding;   /* ops started and not yet completed */
  int sending;       /* a SEND_MESSAGE is in flight */
  int recv_armed;    /* a RECV_MESSAGE is in flight */
  int sent_metadata; /* initial metadata went out */
  int closing;       /* no more messages; status queued or sent */
  int status_started;
  int finished;      /* RECV_CLOSE_ON_SERVER completed */
  int want_status;   /* send this status once no message is in flight */
  grpc_status_code status_code;
  char status_msg[256];
  grpc_slice status_slice;
  struct ads_stream ads;
};

struct xds_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  int port;
  struct xds_server_config cfg;
  struct accept_slot slots[ACCEPT_SLOTS];
  struct xds_op op_shutdown;
  struct stream *streams; /* doubly linked, newest first */
  size_t n_streams;
  struct snapshot *current; /* loop thread only */
  pthread_mutex_t publish_lock;
  struct snapshot *published; /* guarded by publish_lock */
  atomic_int stop;
  int shutting_down;
  int shutdown_done;
  struct xds_buf out; /* scratch for building responses */
};

/* Method paths and what they serve. */
static const struct {
  const char *path;
  enum ads_service svc;
  enum ads_mode mode;
  const char *label;
} methods[] = {
    {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
     "StreamAggregatedResources",
     ADS_SVC_ADS, ADS_SOTW, "ADS"},
    {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
     "DeltaAggregatedResources",
     ADS_SVC_ADS, ADS_DELTA, "delta ADS"},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
     ADS_SVC_LDS, ADS_SOTW, "LDS"},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners",
     ADS_SVC_LDS, ADS_DELTA, "delta LDS"},
    {"/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"
     "StreamExtensionConfigs",
     ADS_SVC_ECDS, ADS_SOTW, "ECDS"},
    {"/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"
     "DeltaExtensionConfigs",
     ADS_SVC_ECDS, ADS_DELTA, "delta ECDS"},
};

static int start_accept(struct xds_server *s, struct accept_slot *slot) {
  grpc_call_error ce;

  slot->op.kind = OP_ACCEPT;
  slot->call = NULL;
  grpc_call_details_init(&slot->details);
  grpc_metadata_array_init(&slot->md);
  ce = grpc_server_request_call(s->server, &slot->call, &slot->details,
                                &slot->md, s->cq, s->cq, &slot->op);
  if (ce != GRPC_CALL_OK) {
    XDS_LOGE("cannot accept calls: grpc_server_request_call: %d", ce);
    grpc_call_details_destroy(&slot->details);
    grpc_metadata_array_destroy(&slot->md);
    return XDS_EIO;
  }
  return 0;
}

int xds_server_new(const struct xds_server_config *cfg, struct xds_server **out,
                   struct xds_err *err) {
  struct xds_server *s;
  grpc_server_credentials *creds;
  grpc_arg args[3];
  grpc_channel_args cargs;

  *out = NULL;
  s = xds_calloc(1, sizeof(*s));
  if (s == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  s->cfg = *cfg;
  pthread_mutex_init(&s->publish_lock, NULL);
  atomic_init(&s->stop, 0);
  xds_buf_init(&s->out, XDS_MESSAGE_MAX);
  grpc_init();
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = XDS_MESSAGE_MAX;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = XDS_MESSAGE_MAX;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
  args[2].value.integer = cfg->max_streams > 0 ? cfg->max_streams : 1 << 30;
  cargs.num_args = 3;
  cargs.args = args;
  s->cq = grpc_completion_queue_create_for_next(NULL);
  s->server = grpc_server_create(&cargs, NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  creds = grpc_insecure_server_credentials_create();
  s->port = grpc_server_add_http2_port(s->server, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (s->port == 0) {
    xds_err_set(err, XDS_EIO, "--listen %s: cannot bind (address in use, or "
                              "not a valid host:port)",
                cfg->listen);
    grpc_server_destroy(s->server);
    s->server = NULL;
    xds_server_free(s);
    return XDS_EIO;
  }
  *out = s;
  return 0;
}

int xds_server_port(const struct xds_server *s) { return s->port; }

void xds_server_publish(struct xds_server *s, struct snapshot *snap) {
  struct snapshot *old;

  snapshot_ref(snap);
  pthread_mutex_lock(&s->publish_lock);
  old = s->published;
  s->published = snap;
  pthread_mutex_unlock(&s->publish_lock);
  snapshot_unref(old);
}

void xds_server_stop(struct xds_server *s) { atomic_store(&s->stop, 1); }

/* Starts a batch for a stream; counts it only when it started. */
static int stream_batch(struct stream *st, const grpc_op *ops, size_t n,
                        struct xds_op *tag) {
  grpc_call_error ce = grpc_call_start_batch(st->call, ops, n, tag, NULL);

  if (ce != GRPC_CALL_OK) {
    XDS_LOGE("stream %s: grpc_call_start_batch failed (%d)", st->ads.peer, ce);
    return XDS_EIO;
  }
  st->outstanding++;
  return 0;
}

static void stream_arm_recv(struct stream *st) {
  grpc_op ops[2];
  size_t n = 0;

  memset(ops, 0, sizeof(ops));
  if (!st->sent_metadata) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = 0;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &st->recv_buf;
  n++;
  st->recv_buf = NULL;
  if (stream_batch(st, ops, n, &st->op_recv) == 0) {
    st->recv_armed = 1;
    st->sent_metadata = 1;
  } else {
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
  }
}

static void stream_send_status(struct stream *st) {
  grpc_op ops[2];
  size_t n = 0;

  if (st->status_started || st->finished)
    return;
  st->status_started = 1;
  st->closing = 1;
  memset(ops, 0, sizeof(ops));
  /* gRPC does not write the trailers of a call whose initial metadata was
   * never sent. */
  if (!st->sent_metadata) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = 0;
    n++;
    st->sent_metadata = 1;
  }
  st->status_slice = grpc_slice_from_copied_string(st->status_msg);
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.trailing_metadata_count = 0;
  ops[n].data.send_status_from_server.status = st->status_code;
  ops[n].data.send_status_from_server.status_details = &st->status_slice;
  n++;
  if (stream_batch(st, ops, n, &st->op_status) < 0) {
    grpc_slice_unref(st->status_slice);
    grpc_call_cancel(st->call, NULL);
  }
}

/* Ends the stream with a status, after any message in flight. */
static void stream_close(struct stream *st, grpc_status_code code,
                         const char *msg) {
  if (st->closing)
    return;
  st->closing = 1;
  st->want_status = 1;
  st->status_code = code;
  snprintf(st->status_msg, sizeof(st->status_msg), "%s", msg);
  if (!st->sending)
    stream_send_status(st);
}

/* Sends the next response the stream owes, if no send is in flight. */
static void stream_pump(struct stream *st) {
  struct xds_server *s = st->server;
  grpc_slice slice;
  grpc_op op;
  int rc;

  if (st->sending || st->closing || st->kind == STREAM_UNIMPLEMENTED)
    return;
  rc = ads_stream_next_response(&st->ads, &s->out);
  if (rc == 0)
    return;
  if (rc < 0) {
    XDS_LOGE("node %s: cannot build a response: %s",
             st->ads.has_node ? st->ads.pid.node_id : st->ads.peer,
             xds_strerror(rc));
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 "the response does not fit the message size limit");
    return;
  }
  slice = grpc_slice_from_copied_buffer(s->out.data, s->out.len);
  st->send_buf = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = st->send_buf;
  if (stream_batch(st, &op, 1, &st->op_send) < 0) {
    grpc_byte_buffer_destroy(st->send_buf);
    st->send_buf = NULL;
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
    return;
  }
  st->sending = 1;
}

static void stream_free(struct xds_server *s, struct stream *st) {
  if (st->prev != NULL)
    st->prev->next = st->next;
  else
    s->streams = st->next;
  if (st->next != NULL)
    st->next->prev = st->prev;
  s->n_streams--;
  if (st->ads.has_node)
    XDS_LOGI("proxy disconnected: node %s (%llu responses, %llu ACKs, "
             "%llu NACKs)",
             st->ads.pid.node_id, (unsigned long long)st->ads.responses,
             (unsigned long long)(st->ads.t[ADS_T_LDS].acks +
                                  st->ads.t[ADS_T_ECDS].acks),
             (unsigned long long)(st->ads.t[ADS_T_LDS].nacks +
                                  st->ads.t[ADS_T_ECDS].nacks));
  ads_stream_cleanup(&st->ads);
  if (st->recv_buf != NULL)
    grpc_byte_buffer_destroy(st->recv_buf);
  grpc_call_unref(st->call);
  xds_free(st);
}

static void on_accept(struct xds_server *s, struct accept_slot *slot, int ok) {
  struct stream *st = NULL;
  enum stream_kind kind = STREAM_UNIMPLEMENTED;
  enum ads_service svc = ADS_SVC_ADS;
  enum ads_mode mode = ADS_SOTW;
  const char *label = "";
  char *peer = NULL;
  grpc_op op;

  if (!ok || slot->call == NULL)
    goto done;
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    if (grpc_slice_str_cmp(slot->details.method, methods[i].path) == 0) {
      kind = STREAM_XDS;
      svc = methods[i].svc;
      mode = methods[i].mode;
      label = methods[i].label;
    }
  }
  st = xds_calloc(1, sizeof(*st));
  peer = grpc_call_get_peer(slot->call);
  if (st == NULL || ads_stream_init(&st->ads, svc, mode, peer) < 0) {
    XDS_LOGE("out of memory accepting a stream from %s", peer);
    xds_free(st);
    grpc_call_cancel_with_status(slot->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "out of memory", NULL);
    grpc_call_unref(slot->call);
    goto done;
  }
  st->op_recv.kind = OP_RECV;
  st->op_send.kind = OP_SEND;
  st->op_closed.kind = OP_CLOSED;
  st->op_status.kind = OP_STATUS;
  st->server = s;
  st->call = slot->call;
  st->kind = kind;
  st->next = s->streams;
  if (s->streams != NULL)
    s->streams->prev = st;
  s->streams = st;
  s->n_streams++;

  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &st->cancelled;
  if (stream_batch(st, &op, 1, &st->op_closed) < 0) {
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
    goto done;
  }
  if (kind == STREAM_UNIMPLEMENTED) {
    char *method = grpc_slice_to_c_string(slot->details.method);
    XDS_LOGW("call from %s to unknown method %s: UNIMPLEMENTED", peer, method);
    snprintf(st->status_msg, sizeof(st->status_msg),
             "wasmxds does not implement %s", method);
    gpr_free(method);
    st->status_code = GRPC_STATUS_UNIMPLEMENTED;
    stream_send_status(st);
    goto done;
  }
  XDS_LOGD("stream from %s on %s", peer, label);
  stream_arm_recv(st);
done:
  if (peer != NULL)
    gpr_free(peer);
  grpc_call_details_destroy(&slot->details);
  grpc_metadata_array_destroy(&slot->md);
  if (!s->shutting_down)
    start_accept(s, slot);
}

static void on_recv(struct xds_server *s, struct stream *st, int ok) {
  Envoy__Service__Discovery__V3__DiscoveryRequest *req = NULL;
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *dreq = NULL;
  int rc;
  grpc_byte_buffer_reader reader;
  struct ads_close close;
  grpc_slice slice;

  st->recv_armed = 0;
  if (!ok || st->recv_buf == NULL) {
    /* The client finished sending (or the call died): end it cleanly. */
    if (!st->closing)
      stream_close(st, GRPC_STATUS_OK, "");
    return;
  }
  if (!grpc_byte_buffer_reader_init(&reader, st->recv_buf)) {
    stream_close(st, GRPC_STATUS_INTERNAL, "cannot read the request");
    return;
  }
  slice = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  grpc_byte_buffer_destroy(st->recv_buf);
  st->recv_buf = NULL;
  if (st->ads.mode == ADS_DELTA) {
    dreq = envoy__service__discovery__v3__delta_discovery_request__unpack(
        NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
    ok = dreq != NULL;
  } else {
    req = envoy__service__discovery__v3__discovery_request__unpack(
        NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
    ok = req != NULL;
  }
  grpc_slice_unref(slice);
  if (!ok) {
    XDS_LOGW("stream from %s (node %s): malformed %sDiscoveryRequest; closing",
             st->ads.peer, st->ads.has_node ? st->ads.pid.node_id : "unknown",
             st->ads.mode == ADS_DELTA ? "Delta" : "");
    stream_close(st, GRPC_STATUS_INVALID_ARGUMENT,
                 st->ads.mode == ADS_DELTA ? "malformed DeltaDiscoveryRequest"
                                           : "malformed DiscoveryRequest");
    return;
  }
  if (dreq != NULL) {
    rc = ads_stream_on_delta_request(&st->ads, dreq, s->current, &close);
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(dreq,
                                                                          NULL);
  } else {
    rc = ads_stream_on_request(&st->ads, req, s->current, &close);
    envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
  }
  if (rc < 0) {
    stream_close(st, (grpc_status_code)close.code, close.msg);
    return;
  }
  if (!st->closing)
    stream_arm_recv(st);
  stream_pump(st);
}

static void on_send(struct stream *st, int ok) {
  st->sending = 0;
  grpc_byte_buffer_destroy(st->send_buf);
  st->send_buf = NULL;
  if (!ok) {
    st->closing = 1;
    return;
  }
  if (st->want_status) {
    stream_send_status(st);
    return;
  }
  stream_pump(st);
}

static void dispatch(struct xds_server *s, grpc_event ev) {
  struct xds_op *op = ev.tag;
  struct stream *st;

  switch (op->kind) {
  case OP_ACCEPT:
    on_accept(s, container_of(op, struct accept_slot, op), ev.success);
    return;
  case OP_SHUTDOWN:
    s->shutdown_done = 1;
    return;
  case OP_RECV:
    st = container_of(op, struct stream, op_recv);
    st->outstanding--;
    on_recv(s, st, ev.success);
    return;
  case OP_SEND:
    st = container_of(op, struct stream, op_send);
    st->outstanding--;
    on_send(st, ev.success);
    return;
  case OP_CLOSED:
    st = container_of(op, struct stream, op_closed);
    st->outstanding--;
    st->finished = 1;
    st->closing = 1;
    /* Pending receives and sends complete once the call is cancelled. */
    if (!st->status_started)
      grpc_call_cancel(st->call, NULL);
    return;
  case OP_STATUS:
    st = container_of(op, struct stream, op_status);
    st->outstanding--;
    grpc_slice_unref(st->status_slice);
    return;
  }
}

/* After-events: adopt a newly published snapshot, free finished streams. */
static void after_events(struct xds_server *s) {
  struct snapshot *snap;
  struct stream *st, *next;

  pthread_mutex_lock(&s->publish_lock);
  snap = s->published;
  s->published = NULL;
  pthread_mutex_unlock(&s->publish_lock);
  if (snap != NULL) {
    snapshot_unref(s->current);
    s->current = snap;
    for (st = s->streams; st != NULL; st = st->next) {
      struct ads_close close;
      if (st->closing)
        continue;
      if (ads_stream_on_snapshot(&st->ads, snap, &close) < 0) {
        stream_close(st, (grpc_status_code)close.code, close.msg);
        continue;
      }
      stream_pump(st);
    }
  }
  for (st = s->streams; st != NULL; st = next) {
    next = st->next;
    if (st->closing && st->outstanding == 0)
      stream_free(s, st);
  }
}

int xds_server_run(struct xds_server *s) {
  gpr_timespec tick = gpr_time_from_millis(XDS_SERVER_TICK_MS, GPR_TIMESPAN);

  grpc_server_start(s->server);
  XDS_LOGI("serving xDS on %s (port %d)", s->cfg.listen, s->port);
  for (int i = 0; i < ACCEPT_SLOTS; i++)
    if (start_accept(s, &s->slots[i]) < 0)
      atomic_store(&s->stop, 1);
  /* Wait for a first snapshot before reading requests would need one: the
   * caller publishes before run, so current is set on the first tick. */
  after_events(s);
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        s->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), tick), NULL);
    if (ev.type == GRPC_OP_COMPLETE)
      dispatch(s, ev);
    else if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    /* Drain whatever else is ready without sleeping. */
    while (ev.type == GRPC_OP_COMPLETE) {
      ev = grpc_completion_queue_next(s->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC),
                                      NULL);
      if (ev.type == GRPC_OP_COMPLETE)
        dispatch(s, ev);
    }
    after_events(s);
    if (atomic_load(&s->stop) && !s->shutting_down) {
      XDS_LOGI("stopping: closing %zu streams", s->n_streams);
      s->shutting_down = 1;
      s->op_shutdown.kind = OP_SHUTDOWN;
      grpc_server_shutdown_and_notify(s->server, s->cq, &s->op_shutdown);
      grpc_server_cancel_all_calls(s->server);
    }
    if (s->shutdown_done && s->streams == NULL)
      break;
  }
  return 0;
}

void xds_server_free(struct xds_server *s) {
  if (s == NULL)
    return;
  if (s->server != NULL)
    grpc_server_destroy(s->server);
  if (s->cq != NULL) {
    grpc_completion_queue_shutdown(s->cq);
    for (;;) {
      grpc_event ev = grpc_completion_queue_next(
          s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
      if (ev.type == GRPC_QUEUE_SHUTDOWN)
        break;
    }
    grpc_completion_queue_destroy(s->cq);
  }
  snapshot_unref(s->current);
  snapshot_unref(s->published);
  xds_buf_cleanup(&s->out);
  pthread_mutex_destroy(&s->publish_lock);
  xds_free(s);
  grpc_shutdown();
}
