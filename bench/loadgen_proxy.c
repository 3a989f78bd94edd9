/*
 * loadgen_proxy.c: loadgen run, the state helpers of one simulated proxy and
 * the requests it sends (Node, SotW and delta, ACK and NACK).
 */
#include "loadgen_run.h"

/* Proxies */

void fail_log(struct proxy *p, const char *what) {
  if (g.fail_logged++ < FAIL_LOG_MAX)
    fprintf(stderr, "loadgen: proxy-%05u: %s\n", p->idx, what);
}

int expected_proxy(const struct proxy *p) {
  switch (g.expect_kind) {
  case 0:
    return 1;
  case 2:
    return p->tenant == g.expect_tenant;
  default:
    return 0;
  }
}

void set_str(char **dst, const char *src) {
  free(*dst);
  *dst = strdup(src != NULL ? src : "");
}

void set_full(struct proxy *p, int full, double now) {
  if (full && !p->full) {
    p->full = 1;
    g.n_full++;
    if (!p->ever_full) {
      p->ever_full = 1;
      p->t_full = now;
    }
  } else if (!full && p->full) {
    p->full = 0;
    g.n_full--;
  }
}

int nack_wave_on(uint32_t idx, time_t now, int wave_period_s,
                 int wave_percent) {
  if (wave_period_s <= 0 || wave_percent <= 0)
    return 0;
  return (now / wave_period_s) % 2 == 1 && (int)(idx % 100) < wave_percent;
}

int holds_all(const struct proxy *p) {
  uint32_t i;

  if (!p->lds_ok)
    return 0;
  for (i = 0; i < p->want.n; i++)
    if (!p->got[i])
      return 0;
  return 1;
}

/* ---- Requests ---- */

void *tag_of(struct proxy *p, unsigned kind) {
  return (void *)((uintptr_t)p | kind);
}

/* Packs msg into a new byte buffer. */
static grpc_byte_buffer *pack_bb(const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  grpc_slice sl = grpc_slice_malloc(len);
  grpc_byte_buffer *bb;

  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(sl));
  bb = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  g.bytes_sent += len;
  return bb;
}

static void build_node(struct proxy *p, struct node_buf *nb) {
  snprintf(nb->id, sizeof(nb->id), "proxy-%05u", p->idx);
  snprintf(nb->cluster, sizeof(nb->cluster), "t%03u", p->tenant);
  snprintf(nb->tenant, sizeof(nb->tenant), "organizations/%s/tenants/t%03u",
           g.org, p->tenant);
  snprintf(nb->app, sizeof(nb->app), "app-%u", p->idx % LOADGEN_APPS);
  snprintf(nb->ver, sizeof(nb->ver), "v%u", 1 + p->idx % 2);
  bench_node_fill(&nb->n, nb->id, nb->cluster, nb->tenant,
                  p->gateway ? "GATEWAY" : "SIDECAR", nb->app, nb->ver);
}

/* Names of ids, for a request (pointers into the intern table). */
static char **names_of(const uint32_t *ids, uint32_t n) {
  char **v = malloc((n > 0 ? n : 1) * sizeof(char *));
  uint32_t i;

  if (v == NULL)
    abort();
  for (i = 0; i < n; i++)
    v[i] = g_names[ids[i]];
  return v;
}

/* The next request the proxy owes, or NULL (nothing owed). Clears the
 * flag it satisfies. */
static grpc_byte_buffer *next_request(struct proxy *p, int *is_first) {
  Google__Rpc__Status err;
  grpc_byte_buffer *bb;
  char **names = NULL, **unsub = NULL;

  *is_first = 0;
  google__rpc__status__init(&err);
  err.code = 3; /* INVALID_ARGUMENT, as Envoy sends */

  if (!g.delta) {
    Envoy__Service__Discovery__V3__DiscoveryRequest r;
    struct node_buf nb;

    envoy__service__discovery__v3__discovery_request__init(&r);
    if (!p->started) {
      build_node(p, &nb);
      r.node = &nb.n.node;
      r.type_url = TYPE_LISTENER;
      p->started = 1;
      *is_first = 1;
    } else if (p->owe_lds) {
      p->owe_lds = 0;
      r.type_url = TYPE_LISTENER;
      r.version_info = p->lds_ver != NULL ? p->lds_ver : "";
      r.response_nonce = p->lds_nonce != NULL ? p->lds_nonce : "";
      if (p->lds_err != NULL) {
        err.message = p->lds_err;
        r.error_detail = &err;
      }
    } else if (p->owe_ecds) {
      p->owe_ecds = 0;
      r.type_url = TYPE_ECDS;
      r.version_info = p->ecds_ver != NULL ? p->ecds_ver : "";
      r.response_nonce = p->ecds_nonce != NULL ? p->ecds_nonce : "";
      names = names_of(p->want.v, p->want.n);
      r.n_resource_names = p->want.n;
      r.resource_names = names;
      if (p->ecds_err != NULL) {
        err.message = p->ecds_err;
        r.error_detail = &err;
      }
    } else {
      return NULL;
    }
    bb = pack_bb(&r.base);
  } else {
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r;
    struct node_buf nb;
    struct idset add = {NULL, 0}, del = {NULL, 0};
    uint32_t i;

    envoy__service__discovery__v3__delta_discovery_request__init(&r);
    if (!p->started) {
      build_node(p, &nb);
      r.node = &nb.n.node;
      r.type_url = TYPE_LISTENER;
      p->started = 1;
      *is_first = 1;
    } else if (p->owe_lds) {
      p->owe_lds = 0;
      r.type_url = TYPE_LISTENER;
      if (p->lds_ack_nonce)
        r.response_nonce = p->lds_nonce != NULL ? p->lds_nonce : "";
      p->lds_ack_nonce = 0;
      if (p->lds_err != NULL) {
        err.message = p->lds_err;
        r.error_detail = &err;
      }
    } else if (p->owe_ecds) {
      p->owe_ecds = 0;
      r.type_url = TYPE_ECDS;
      if (p->ecds_ack_nonce)
        r.response_nonce = p->ecds_nonce != NULL ? p->ecds_nonce : "";
      p->ecds_ack_nonce = 0;
      if (p->ecds_err != NULL) {
        err.message = p->ecds_err;
        r.error_detail = &err;
      }
      add.v = malloc((p->want.n + 1) * sizeof(uint32_t));
      del.v = malloc((p->sub.n + 1) * sizeof(uint32_t));
      if (add.v == NULL || del.v == NULL)
        abort();
      for (i = 0; i < p->want.n; i++)
        if (!idset_has(&p->sub, p->want.v[i]))
          add.v[add.n++] = p->want.v[i];
      for (i = 0; i < p->sub.n; i++)
        if (!idset_has(&p->want, p->sub.v[i]))
          del.v[del.n++] = p->sub.v[i];
      names = names_of(add.v, add.n);
      unsub = names_of(del.v, del.n);
      r.n_resource_names_subscribe = add.n;
      r.resource_names_subscribe = names;
      r.n_resource_names_unsubscribe = del.n;
      r.resource_names_unsubscribe = unsub;
      /* The server now knows the subscription is want. */
      free(p->sub.v);
      p->sub.v = malloc((p->want.n + 1) * sizeof(uint32_t));
      if (p->sub.v == NULL)
        abort();
      memcpy(p->sub.v, p->want.v, p->want.n * sizeof(uint32_t));
      p->sub.n = p->want.n;
      free(add.v);
      free(del.v);
    } else {
      return NULL;
    }
    bb = pack_bb(&r.base);
  }
  free(names);
  free(unsub);
  if (err.message != NULL && err.message != protobuf_c_empty_string) {
    g.nacks++;
    if (p->lds_err != NULL && err.message == p->lds_err) {
      free(p->lds_err);
      p->lds_err = NULL;
    } else if (p->ecds_err != NULL && err.message == p->ecds_err) {
      free(p->ecds_err);
      p->ecds_err = NULL;
    }
  }
  g.reqs_sent++;
  return bb;
}

/* Starts the next owed send if none is in flight. */
void pump_send(struct proxy *p) {
  grpc_op ops[2];
  grpc_byte_buffer *bb;
  size_t n = 0;
  int first;
  double now;

  if (p->send_pending || p->ended || p->cancelled)
    return;
  bb = next_request(p, &first);
  if (bb == NULL)
    return;
  memset(ops, 0, sizeof(ops));
  if (first) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  if (grpc_call_start_batch(p->call, ops, n, tag_of(p, TAG_SEND), NULL) !=
      GRPC_CALL_OK) {
    grpc_byte_buffer_destroy(bb);
    fail_log(p, "cannot start a send");
    return;
  }
  p->send_bb = bb;
  p->send_pending = 1;
  if (first)
    return;
  /* Sending the last owed request: the proxy holds what it ACKs now. */
  if (!p->owe_lds && !p->owe_ecds && holds_all(p)) {
    now = now_s();
    set_full(p, 1, now);
    if (g.gen != 0 && p->mark_gen == g.gen) {
      p->t_done = now;
      if (now > g.t_last_done)
        g.t_last_done = now;
    }
  }
}
