/*
 * check_ads_wire.c: requests given as their bytes (server/ads/ads_wire.c).
 * The fast path, which reads an ACK from the bytes without unpacking it,
 * must do exactly what the slow path (the checks of the bytes, the unpack,
 * ads_stream_on_request / _on_delta_request) does: a differential property
 * test feeds the same random request sequences (ACKs, NACKs, changed
 * subscriptions, nonces current, stale, never sent, empty or odd; the node
 * absent, the same bytes, the same identity in other bytes, another
 * identity or malformed; oddly encoded bytes: repeated fields, unknown
 * fields, redundant varint bytes, NUL bytes, long names and versions) to
 * two streams, one through ads_stream_on_request_bytes and one through the
 * slow path only, with snapshot changes and responses in between, and
 * compares after every step what each returned and how it closed, every
 * response's bytes, the JSON status, the counters and the per-type state.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/intern.h"
#include "base/log.h"
#include "server/ads/ads_impl.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "server/pb/wire.h"
#include "testutil.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#define PAY "organizations/acme/tenants/payments"

/* Snapshots: the shared ADS stores, without and with slots. */
static struct snapshot *snaps[2][3];
static unsigned rng;

static unsigned rnd(unsigned n) {
  return (unsigned)rand_r(&rng) % n;
}

/* Node bytes: [0] the stream's node, [1] the same identity in other bytes
 * (another user agent), [2] another node id, [3] a node whose id holds a
 * NUL byte, [4] a node without id. */
#define N_NODES 5
static struct xds_buf nodes[N_NODES];

static void pack_node(struct xds_buf *b, const char *id, const char *agent) {
  struct tu_node h;
  size_t n;

  uint8_t *tmp;

  tu_node_init(&h, id, PAY);
  h.node.user_agent_name = (char *)agent;
  n = protobuf_c_message_get_packed_size(&h.node.base);
  tmp = malloc(n + 1);
  ck_assert_ptr_nonnull(tmp);
  protobuf_c_message_pack(&h.node.base, tmp);
  xds_buf_init(b, 1 << 20);
  ck_assert_int_eq(xds_buf_append(b, tmp, n), 0);
  free(tmp);
}

static const char *const ecds_names[] = {
    "organizations/acme/extensions/a", "organizations/acme/extensions/b",
    "organizations/acme/extensions/c", "organizations/acme/extensions/secret",
    "organizations/acme/extensions/x", "*"};
#define N_ECDS 6

/* A pair of streams fed alike. */
struct pair {
  struct ads_stream *a, *b; /* a: on_request_bytes; b: the slow path */
  int delta, slots;
  struct snapshot *snap;
  char last_nonce[ADS_T_N][24], last_version[ADS_T_N][512];
};

static unsigned long fast_hits, requests;

static void put_str(struct xds_buf *b, uint32_t field, const char *s) {
  ck_assert_int_eq(wire_put_string(b, field, s), 0);
}

/* One field with a redundant varint byte in its length (only a full
 * parser reads it). */
static void put_str_long_varint(struct xds_buf *b, uint32_t field,
                                const char *s) {
  unsigned char hdr[3] = {(unsigned char)(field << 3 | 2),
                          (unsigned char)(strlen(s) | 0x80), 0};

  ck_assert_int_lt(strlen(s), 128);
  ck_assert_int_eq(xds_buf_append(b, hdr, 3), 0);
  ck_assert_int_eq(xds_buf_append(b, s, strlen(s)), 0);
}

static const char *pick_nonce(struct pair *p, int idx, char *buf) {
  switch (rnd(12)) {
  case 0:
    return "";
  case 1:
    snprintf(buf, 24, "%u", 1 + rnd(30)); /* stale, or never sent */
    return buf;
  case 2:
    return "x7";
  case 3:
    return " 3"; /* strtoull reads it */
  case 4:
    return p->last_nonce[idx]; /* the last answered */
  default:
    return p->a->t[idx].nonce;
  }
}

static const char *pick_type(struct pair *p, int *idx) {
  unsigned r = rnd(20);

  *idx = (int)rnd(2);
  if (r == 0)
    return "";
  if (r == 1)
    return "type.googleapis.com/envoy.config.cluster.v3.Cluster";
  if (r == 2)
    return "type.googleapis.com/envoy.config.listener.v3.Listene";
  (void)p;
  return ads_type_urls[*idx];
}

static void add_node(struct xds_buf *b, uint32_t field, int first) {
  unsigned r = rnd(40);
  int k = first || r < 8 ? 0
          : r < 12       ? 1
          : r == 12      ? 2
          : r == 13      ? 3
          : r == 14      ? 4
                         : -1;

  if (k >= 0)
    ck_assert_int_eq(wire_put_bytes(b, field, nodes[k].data, nodes[k].len), 0);
  if (r == 15) /* the node twice: a parser merges the two */
    for (int i = 0; i < 2; i++)
      ck_assert_int_eq(wire_put_bytes(b, field, nodes[0].data, nodes[0].len),
                       0);
}

/* Names for an ECDS request: usually the stream's subscription in some
 * order, else a random choice, with oddities now and then. */
static void add_names(struct pair *p, struct xds_buf *b, uint32_t field,
                      int idx) {
  const struct ads_type_state *t = &p->a->t[idx];
  unsigned r = rnd(10);

  if (idx == ADS_T_LDS) {
    if (r == 0)
      put_str(b, field, "*");
    else if (r == 1)
      put_str(b, field, "in");
    return;
  }
  if (r < 6) {
    size_t n = t->n_names, rot = n > 0 ? rnd((unsigned)n) : 0;

    if (t->wildcard)
      put_str(b, field, "*");
    for (size_t i = 0; i < n; i++)
      put_str(b, field, t->names[rnd(2) ? i : (i + rot) % n]);
  } else {
    for (int i = 0; i < N_ECDS; i++)
      if (rnd(2))
        put_str(b, field, ecds_names[i]);
  }
  if (rnd(25) == 0)
    ck_assert_int_eq(wire_put_bytes(b, field, "organizations/acme\0/x", 21), 0);
  if (rnd(40) == 0) {
    char longname[ADS_NAME_LEN_MAX + 2];

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    put_str(b, field, longname + rnd(2));
  }
}

/* Oddities any request may carry at its end. */
static void add_odd(struct xds_buf *b, uint32_t nonce_field, int delta) {
  switch (rnd(30)) {
  case 0:
    put_str(b, 15, "unknown field"); /* kept aside by a parser */
    break;
  case 1:
    put_str(b, nonce_field, "1"); /* a repeated field: the last counts */
    break;
  case 2:
    ck_assert_int_eq(xds_buf_append(b, "\x08\x01", 2), 0); /* varint 1 */
    break;
  case 3:
    ck_assert_int_eq(xds_buf_append(b,
                                    "\x2a\x05"
                                    "ab",
                                    4),
                     0); /* truncated */
    break;
  case 4:
    put_str_long_varint(b, delta ? 2 : 4, TYPE_ECDS);
    break;
  case 5:
    /* resource_locators (SotW 7, delta 8): an empty locator */
    ck_assert_int_eq(wire_put_bytes(b, delta ? 8 : 7, "", 0), 0);
    break;
  default:
    break;
  }
}

static void build_sotw(struct pair *p, struct xds_buf *b, int first) {
  char nbuf[24], vbuf[1200];
  const char *type, *nonce, *version;
  int idx;

  type = pick_type(p, &idx);
  nonce = first ? "" : pick_nonce(p, idx, nbuf);
  switch (rnd(8)) {
  case 0:
    version = "";
    break;
  case 1:
    ads_ver_format(rnd(1000), 1, vbuf);
    version = vbuf;
    break;
  case 2:
    memset(vbuf, 'v', 1100);
    vbuf[1000 + rnd(100)] = '\0'; /* around the fast path's limit */
    version = vbuf;
    break;
  case 3:
    version = p->last_version[idx];
    break;
  default:
    version = p->a->t[idx].sent_version;
    break;
  }
  if (version[0] != '\0' || rnd(3) == 0)
    put_str(b, 1, version);
  add_node(b, 2, first);
  add_names(p, b, 3, idx);
  if (type[0] != '\0' || rnd(2))
    put_str(b, 4, type);
  if (nonce[0] != '\0' || rnd(3) == 0)
    put_str(b, 5, nonce);
  if (rnd(6) == 0) {
    /* error_detail: code 3, a message */
    ck_assert_int_eq(xds_buf_append(b, "\x32\x0a\x08\x03\x12\x06reject", 12),
                     0);
  }
  if (rnd(40) == 0)
    ck_assert_int_eq(wire_put_bytes(b, 1, "v\0w", 3), 0);
  add_odd(b, 5, 0);
}

static void build_delta(struct pair *p, struct xds_buf *b, int first) {
  char nbuf[24];
  const char *type, *nonce;
  int idx;

  type = pick_type(p, &idx);
  nonce = first ? "" : pick_nonce(p, idx, nbuf);
  add_node(b, 1, first);
  if (type[0] != '\0' || rnd(2))
    put_str(b, 2, type);
  if (rnd(4) == 0)
    add_names(p, b, rnd(2) ? 3 : 4, idx);
  if (rnd(15) == 0) {
    /* initial_resource_versions {a: a version} */
    struct xds_buf e;

    xds_buf_init(&e, 4096);
    put_str(&e, 1, ecds_names[rnd(N_ECDS)]);
    put_str(&e, 2, "00000000000000aa");
    ck_assert_int_eq(wire_put_bytes(b, 5, e.data, e.len), 0);
    xds_buf_cleanup(&e);
  }
  if (nonce[0] != '\0' || rnd(3) == 0)
    put_str(b, 6, nonce);
  if (rnd(6) == 0)
    ck_assert_int_eq(xds_buf_append(b, "\x3a\x0a\x08\x03\x12\x06reject", 12),
                     0);
  add_odd(b, 6, 1);
}

static void same_state(const struct pair *p, const char *where) {
  const struct ads_stream *a = p->a, *b = p->b;
  struct ads_counts ca, cb;
  json_t *ja = ads_stream_status(a), *jb = ads_stream_status(b);
  char *sa, *sb;

  ck_assert_ptr_nonnull(ja);
  ck_assert_ptr_nonnull(jb);
  sa = json_dumps(ja, JSON_SORT_KEYS | JSON_COMPACT);
  sb = json_dumps(jb, JSON_SORT_KEYS | JSON_COMPACT);
  ck_assert_msg(strcmp(sa, sb) == 0, "%s: status differs:\n%s\n%s", where, sa,
                sb);
  free(sa);
  free(sb);
  json_decref(ja);
  json_decref(jb);
  ads_stream_counts(a, &ca);
  ads_stream_counts(b, &cb);
  ck_assert_uint_eq(ca.responses, cb.responses);
  for (int i = 0; i < ADS_T_N; i++) {
    ck_assert_uint_eq(ca.acks[i], cb.acks[i]);
    ck_assert_uint_eq(ca.nacks[i], cb.nacks[i]);
  }
  ck_assert_int_eq(ca.last_type, cb.last_type);
  ck_assert_uint_eq(ca.last_resources, cb.last_resources);
  ck_assert_uint_eq(ca.refused_names, cb.refused_names);
  ck_assert_uint_eq(ca.log_suppressed, cb.log_suppressed);
  ck_assert_int_eq(ads_stream_sync_state(a), ads_stream_sync_state(b));
  ck_assert_int_eq(a->has_node, b->has_node);
  ck_assert_uint_eq(a->nonce_seq, b->nonce_seq);
  ck_assert_uint_eq(a->n_other, b->n_other);
  for (int i = 0; i < ADS_T_N; i++) {
    const struct ads_type_state *x = &a->t[i], *y = &b->t[i];

    ck_assert_int_eq(x->requested, y->requested);
    ck_assert_int_eq(x->ever_named, y->ever_named);
    ck_assert_int_eq(x->wildcard, y->wildcard);
    ck_assert_int_eq(x->must_answer, y->must_answer);
    ck_assert_int_eq(x->sent_once, y->sent_once);
    ck_assert_int_eq(x->owed_clean, y->owed_clean);
    ck_assert_str_eq(x->nonce, y->nonce);
    ck_assert_str_eq(x->sent_version, y->sent_version);
    ck_assert_str_eq(x->acked_version, y->acked_version);
    ck_assert_uint_eq(x->n_names, y->n_names);
    for (size_t j = 0; j < x->n_names; j++)
      ck_assert_str_eq(x->names[j], y->names[j]);
    ck_assert_uint_eq(x->sent.n, y->sent.n);
    for (uint32_t j = 0; j < x->sent.n; j++) {
      ck_assert_str_eq(x->sent.v[j].name, y->sent.v[j].name);
      ck_assert_uint_eq(x->sent.v[j].version, y->sent.v[j].version);
      ck_assert_uint_eq(x->sent.v[j].state, y->sent.v[j].state);
      ck_assert_uint_eq(x->sent.v[j].flags, y->sent.v[j].flags);
    }
    ck_assert_uint_eq(x->acks, y->acks);
    ck_assert_uint_eq(x->nacks, y->nacks);
  }
}

/* Drains both streams' responses; they must be byte for byte the same.
 * Remembers the last nonce and version of each type. */
static void drain(struct pair *p) {
  struct xds_buf oa, ob;

  xds_buf_init(&oa, 4 << 20);
  xds_buf_init(&ob, 4 << 20);
  for (int i = 0; i < 8; i++) {
    int ra = ads_stream_next_response(p->a, &oa, NULL);
    int rb = ads_stream_next_response(p->b, &ob, NULL);

    ck_assert_int_eq(ra, rb);
    if (ra <= 0)
      break;
    ck_assert_uint_eq(oa.len, ob.len);
    ck_assert_int_eq(memcmp(oa.data, ob.data, oa.len), 0);
    if (p->a->last_type >= 0) {
      int t = p->a->last_type;

      memcpy(p->last_nonce[t], p->a->t[t].nonce, sizeof(p->last_nonce[t]));
      snprintf(p->last_version[t], sizeof(p->last_version[t]), "%s",
               p->a->t[t].sent_version);
    }
  }
  xds_buf_cleanup(&oa);
  xds_buf_cleanup(&ob);
}

static void pair_start(struct pair *p) {
  static const enum ads_service svc[] = {ADS_SVC_ADS, ADS_SVC_ADS, ADS_SVC_ADS,
                                         ADS_SVC_LDS, ADS_SVC_ECDS};
  enum ads_service sv = svc[rnd(5)];

  memset(p, 0, sizeof(*p));
  p->delta = (int)rnd(2);
  p->slots = (int)rnd(2);
  p->snap = snaps[p->slots][0];
  ck_assert_int_eq(
      ads_stream_new(sv, p->delta ? ADS_DELTA : ADS_SOTW, "a", &p->a), 0);
  ck_assert_int_eq(
      ads_stream_new(sv, p->delta ? ADS_DELTA : ADS_SOTW, "a", &p->b), 0);
  p->b->connected_ms = p->a->connected_ms;
}

static void pair_end(struct pair *p) {
  ads_stream_free(p->a);
  ads_stream_free(p->b);
  memset(p, 0, sizeof(*p));
}

/* One request to both streams; returns 0, or -1 when both closed. */
static int pair_request(struct pair *p, int first, int step) {
  struct ads_close ca, cb;
  struct xds_buf b;
  int ra, rb;
  char where[64];

  snprintf(where, sizeof(where), "seed %u step %d", rng, step);
  xds_buf_init(&b, 1 << 20);
  if (p->delta)
    build_delta(p, &b, first);
  else
    build_sotw(p, &b, first);
  memset(&ca, 0, sizeof(ca));
  memset(&cb, 0, sizeof(cb));
  /* What ads_stream_on_request_bytes does, counting the fast path. */
  if (ads_wire_fast(p->a, (const uint8_t *)b.data, b.len, &ca, &ra))
    fast_hits++;
  else
    ra = ads_wire_slow(p->a, (const uint8_t *)b.data, b.len, p->snap, &ca);
  rb = ads_wire_slow(p->b, (const uint8_t *)b.data, b.len, p->snap, &cb);
  requests++;
  xds_buf_cleanup(&b);
  ck_assert_msg(ra == rb, "%s: %d vs %d (%s)", where, ra, rb,
                ra < 0 ? ca.msg : cb.msg);
  if (ra < 0) {
    ck_assert_int_eq(ca.code, cb.code);
    ck_assert_str_eq(ca.msg, cb.msg);
    return -1;
  }
  same_state(p, where);
  return 0;
}

static void run_seed(unsigned seed, int steps) {
  struct pair p;
  int first = 1;

  rng = seed;
  pair_start(&p);
  for (int step = 0; step < steps; step++) {
    unsigned op = rnd(10);

    if (op < 6 || first) {
      if (pair_request(&p, first, step) < 0) {
        pair_end(&p);
        pair_start(&p);
        first = 1;
        continue;
      }
      first = !p.a->has_node;
    } else if (op < 9) {
      drain(&p);
    } else {
      p.snap = snaps[p.slots][rnd(3)];
      ck_assert_int_eq(ads_stream_on_snapshot(p.a, p.snap, NULL),
                       ads_stream_on_snapshot(p.b, p.snap, NULL));
    }
    if (!first)
      same_state(&p, "after a step");
  }
  pair_end(&p);
}

static void wire_setup(void) {
  xds_log_set_level(XDS_LOG_ERROR);
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < 3; i++) {
      struct catalog *cat = tu_catalog(tu_ads_stores[i]);
      struct encode_opts o;

      encode_opts_default(&o);
      o.ecds_slots = s ? 4 : 0;
      ck_assert_int_eq(
          snapshot_build(cat, &o, (uint64_t)i + 1, &snaps[s][i], NULL), 0);
      catalog_unref(cat);
    }
  pack_node(&nodes[0], "proxy-1", "envoy");
  pack_node(&nodes[1], "proxy-1", "envoy-other");
  pack_node(&nodes[2], "proxy-2", "envoy");
  {
    /* A node id "proxy-1" followed by a NUL byte and more. */
    static const char id[] = "proxy-1\0x";

    xds_buf_init(&nodes[3], 1 << 20);
    ck_assert_int_eq(wire_put_bytes(&nodes[3], 1, id, sizeof(id) - 1), 0);
  }
  pack_node(&nodes[4], "", "envoy");
}

static void wire_teardown(void) {
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < 3; i++)
      snapshot_unref(snaps[s][i]);
  for (int i = 0; i < N_NODES; i++)
    xds_buf_cleanup(&nodes[i]);
  ck_assert_uint_eq(xds_intern_count(), 0);
}

START_TEST(fast_path_equals_slow_path) {
  fast_hits = requests = 0;
  for (unsigned seed = 1; seed <= 200; seed++)
    run_seed(seed, 200);
  /* Both paths were taken often (the test means something). */
  ck_assert_msg(fast_hits * 10 >= requests && fast_hits * 10 <= requests * 9,
                "fast path taken %lu times of %lu requests", fast_hits,
                requests);
}
END_TEST

/* Envoy's ACKs, as it sends them, take the fast path; a NACK, a changed
 * subscription and a changed node do not. */
START_TEST(envoy_acks_take_the_fast_path) {
  struct ads_stream *s;
  struct ads_close close;
  struct xds_buf b, out;
  int rc;

  xds_buf_init(&b, 1 << 20);
  xds_buf_init(&out, 4 << 20);
  ck_assert_int_eq(ads_stream_new(ADS_SVC_ADS, ADS_SOTW, "t", &s), 0);
  /* First LDS request with the node: the slow path. */
  ck_assert_int_eq(wire_put_bytes(&b, 2, nodes[0].data, nodes[0].len), 0);
  put_str(&b, 4, TYPE_LISTENER);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 0);
  ck_assert_int_eq(ads_stream_on_request_bytes(s, (uint8_t *)b.data, b.len,
                                               snaps[0][0], &close),
                   0);
  ck_assert_int_eq(s->node_known, 1);
  ck_assert_int_eq(ads_stream_next_response(s, &out, NULL), 1);
  /* Its ACK, node absent and node the same bytes: fast. */
  for (int with_node = 0; with_node < 2; with_node++) {
    b.len = 0;
    put_str(&b, 1, s->t[ADS_T_LDS].sent_version);
    if (with_node)
      ck_assert_int_eq(wire_put_bytes(&b, 2, nodes[0].data, nodes[0].len), 0);
    put_str(&b, 4, TYPE_LISTENER);
    put_str(&b, 5, s->t[ADS_T_LDS].nonce);
    ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc),
                     1);
    ck_assert_int_eq(rc, 0);
  }
  ck_assert_uint_eq(s->t[ADS_T_LDS].acks, 2);
  ck_assert_str_eq(s->t[ADS_T_LDS].acked_version, s->t[ADS_T_LDS].sent_version);
  /* The same identity in other bytes: slow, then remembered. */
  b.len = 0;
  ck_assert_int_eq(wire_put_bytes(&b, 2, nodes[1].data, nodes[1].len), 0);
  put_str(&b, 4, TYPE_LISTENER);
  put_str(&b, 5, s->t[ADS_T_LDS].nonce);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 0);
  ck_assert_int_eq(ads_stream_on_request_bytes(s, (uint8_t *)b.data, b.len,
                                               snaps[0][0], &close),
                   0);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 1);
  /* ECDS subscription (a change): slow; its ACK: fast, names in any
   * order. */
  b.len = 0;
  put_str(&b, 3, "organizations/acme/extensions/b");
  put_str(&b, 3, "organizations/acme/extensions/a");
  put_str(&b, 4, TYPE_ECDS);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 0);
  ck_assert_int_eq(ads_stream_on_request_bytes(s, (uint8_t *)b.data, b.len,
                                               snaps[0][0], &close),
                   0);
  ck_assert_int_eq(ads_stream_next_response(s, &out, NULL), 1);
  b.len = 0;
  put_str(&b, 1, s->t[ADS_T_ECDS].sent_version);
  put_str(&b, 3, "organizations/acme/extensions/b");
  put_str(&b, 3, "organizations/acme/extensions/a");
  put_str(&b, 4, TYPE_ECDS);
  put_str(&b, 5, s->t[ADS_T_ECDS].nonce);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 1);
  ck_assert_int_eq(ads_stream_sync_state(s), 0 /* STATS_SYNCED */);
  /* A NACK: slow. */
  ck_assert_int_eq(xds_buf_append(&b, "\x32\x02\x08\x03", 4), 0);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 0);
  /* Another node: slow, and the stream closes. */
  b.len = 0;
  ck_assert_int_eq(wire_put_bytes(&b, 2, nodes[2].data, nodes[2].len), 0);
  put_str(&b, 4, TYPE_LISTENER);
  ck_assert_int_eq(ads_wire_fast(s, (uint8_t *)b.data, b.len, &close, &rc), 0);
  ck_assert_int_eq(ads_stream_on_request_bytes(s, (uint8_t *)b.data, b.len,
                                               snaps[0][0], &close),
                   -1);
  ck_assert_int_eq(close.code, ADS_STATUS_INVALID_ARGUMENT);
  ads_stream_free(s);
  xds_buf_cleanup(&b);
  xds_buf_cleanup(&out);
}
END_TEST

/* The strict reader refuses what two parsers could read differently. */
START_TEST(strict_reader_refuses_odd_encodings) {
  static const struct {
    const char *bytes;
    size_t len;
    int rc;
  } cases[] = {
      {"\x0a\x01x", 3, 1},      /* field 1, "x" */
      {"\x0a\x81\x00x", 4, -1}, /* length with a redundant byte */
      {"\x0a\x02x", 3, -1},     /* length past the end */
      {"\x82\x01\x01x", 4, -1}, /* two-byte tag (field 16) */
      {"\x02\x01x", 3, -1},     /* field 0 */
      {"\x08\x80\x01", 3, 1},   /* varint 128 */
      {"\x08\x80\x00", 3, -1},  /* varint with a redundant byte */
      {"\x0b", 1, -1},          /* a group */
      {"\x0d\x01\x02\x03\x04", 5, 1},
      {"\x0d\x01\x02", 3, -1},
  };

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const uint8_t *p = (const uint8_t *)cases[i].bytes;
    struct wire_field f;
    int rc = wire_next_strict(&p, p + cases[i].len, &f);

    ck_assert_msg(rc == cases[i].rc || (rc < 0 && cases[i].rc < 0),
                  "case %zu: %d", i, rc);
  }
}
END_TEST

Suite *ads_wire_suite(void) {
  Suite *s = suite_create("ads_wire");
  TCase *tc = tcase_create("wire");

  tcase_add_checked_fixture(tc, wire_setup, wire_teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, strict_reader_refuses_odd_encodings);
  tcase_add_test(tc, envoy_acks_take_the_fast_path);
  tcase_add_test(tc, fast_path_equals_slow_path);
  suite_add_tcase(s, tc);
  return s;
}
