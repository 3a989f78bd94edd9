/*
 * loadgen_stream.c: loadgen run, the gRPC side: receive and send operations,
 * the completion-queue pump, channels and calls.
 */
#include "loadgen_run.h"

/* ---- Stream events ---- */

static void post_recv(struct proxy *p) {
  grpc_op ops[2];
  size_t n = 0;

  memset(ops, 0, sizeof(ops));
  if (!p->imd_posted) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &p->imd;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &p->recv_bb;
  n++;
  if (grpc_call_start_batch(p->call, ops, n, tag_of(p, TAG_RECV), NULL) ==
      GRPC_CALL_OK) {
    p->recv_pending = 1;
    p->imd_posted = 1;
  } else
    fail_log(p, "cannot post a receive");
}

static void on_recv(struct proxy *p, int ok) {
  grpc_byte_buffer *bb = p->recv_bb;
  grpc_byte_buffer_reader rd;
  grpc_slice sl;
  double now;
  size_t len;

  p->recv_pending = 0;
  p->recv_bb = NULL;
  if (!ok || bb == NULL) {
    if (bb != NULL)
      grpc_byte_buffer_destroy(bb);
    p->ended = 1; /* the status follows */
    return;
  }
  now = now_s();
  if (!grpc_byte_buffer_reader_init(&rd, bb)) {
    grpc_byte_buffer_destroy(bb);
    g.decode_errors++;
    post_recv(p);
    return;
  }
  sl = grpc_byte_buffer_reader_readall(&rd);
  grpc_byte_buffer_reader_destroy(&rd);
  grpc_byte_buffer_destroy(bb);
  len = GRPC_SLICE_LENGTH(sl);
  p->msgs++;
  p->bytes += len;
  g.msgs++;
  g.bytes += len;
  g.last_rx = now;
  if (g.gen != 0 && p->mark_gen != g.gen) {
    p->mark_gen = g.gen;
    p->mark_msgs = p->mark_lds = p->mark_ecds = 0;
    p->mark_drains = p->mark_ecds_res = 0;
    p->t_done = 0;
    if (expected_proxy(p) && !p->failed) {
      if (++g.expected_rx == g.expected) {
        g.t_last_delivery = now;
        g.srv_at_delivery = srv_sample();
      }
    }
  }
  if (g.gen != 0)
    p->mark_msgs++;
  if (len <= MAX_MSG) {
    if (g.delta)
      on_delta(p, GRPC_SLICE_START_PTR(sl), len, now);
    else
      on_sotw(p, GRPC_SLICE_START_PTR(sl), len, now);
  } else {
    g.decode_errors++;
    fail_log(p, "response over 16 MiB");
  }
  grpc_slice_unref(sl);
  post_recv(p);
  pump_send(p);
}

static void on_send(struct proxy *p, int ok) {
  p->send_pending = 0;
  if (p->send_bb != NULL) {
    grpc_byte_buffer_destroy(p->send_bb);
    p->send_bb = NULL;
  }
  if (ok)
    pump_send(p);
}

static void on_status(struct proxy *p) {
  char buf[512];
  size_t n;

  p->status_pending = 0;
  p->ended = 1;
  if (p->cancelled || p->failed)
    return;
  p->failed = 1;
  g.n_failed++;
  set_full(p, 0, now_s());
  n = GRPC_SLICE_LENGTH(p->details);
  if (n > 300)
    n = 300;
  snprintf(buf, sizeof(buf), "stream ended: status %d: %.*s", (int)p->status,
           (int)n, (const char *)GRPC_SLICE_START_PTR(p->details));
  fail_log(p, buf);
}

static void dispatch(void *tag, int ok) {
  struct proxy *p = (struct proxy *)((uintptr_t)tag & ~(uintptr_t)7);

  switch ((uintptr_t)tag & 7) {
  case TAG_RECV:
    on_recv(p, ok);
    break;
  case TAG_SEND:
    on_send(p, ok);
    break;
  case TAG_STATUS:
    on_status(p);
    break;
  default:
    abort();
  }
}

/* One bounded wait plus everything already queued. */
void pump(int ms) {
  gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_millis(ms, GPR_TIMESPAN));
  grpc_event ev;
  int k;

  for (k = 0; k < 4096; k++) {
    ev = grpc_completion_queue_next(g.cq, dl, NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      return;
    dispatch(ev.tag, ev.success);
    dl = gpr_inf_past(GPR_CLOCK_MONOTONIC);
  }
}

grpc_channel_args *g_chargs;
static grpc_arg g_argv[12];

void channel_args_init(void) {
  int n = 0;

  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  g_argv[n++].value.integer = 1;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = "wasmxds.loadgen.proxy"; /* set per channel: no sharing */
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_ENABLE_CHANNELZ;
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_HTTP2_BDP_PROBE;
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  g_argv[n++].value.integer = (int)MAX_MSG;
  /* Reconnect backoff and connect timeouts stay at gRPC's defaults (1 s
   * initial backoff, 20 s minimum connect timeout): a shorter minimum
   * connect timeout makes every connection still in the server's accept
   * queue time out and reconnect, a storm of its own. */
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_HTTP2_HPACK_TABLE_SIZE_DECODER;
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_TCP_READ_CHUNK_SIZE;
  g_argv[n++].value.integer = 4096;
  g_chargs = calloc(1, sizeof(*g_chargs));
  if (g_chargs == NULL)
    abort();
  g_chargs->num_args = (size_t)n;
  g_chargs->args = g_argv;
}

int start_proxy(struct proxy *p, grpc_channel_credentials *creds) {
  grpc_op op;

  g_argv[1].value.integer = (int)p->idx + 1;
  p->ch = grpc_channel_create(g.target, creds, g_chargs);
  if (p->ch == NULL)
    return -1;
  p->call = grpc_channel_create_call(p->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g.cq,
                                     g.method, NULL,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (p->call == NULL)
    return -1;
  grpc_metadata_array_init(&p->imd);
  grpc_metadata_array_init(&p->tmd);
  p->details = grpc_empty_slice();
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &p->tmd;
  op.data.recv_status_on_client.status = &p->status;
  op.data.recv_status_on_client.status_details = &p->details;
  if (grpc_call_start_batch(p->call, &op, 1, tag_of(p, TAG_STATUS), NULL) !=
      GRPC_CALL_OK)
    return -1;
  p->status_pending = 1;
  pump_send(p); /* initial metadata + the LDS wildcard request */
  post_recv(p); /* initial metadata + the first response */
  g.n_started_streams++;
  return 0;
}
