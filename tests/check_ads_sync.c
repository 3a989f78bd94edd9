/*
 * check_ads_sync.c: what a stream remembers having sent (the sorted array
 * of records of server/ads/ads_sent.c), and the count of proxies by sync
 * state that the ADS core keeps on every transition: after random
 * sequences of requests, ACKs, NACKs, stale nonces, responses, snapshot
 * changes and stream ends over several streams, the counts must equal a
 * full walk of every stream's records.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ads/ads_impl.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/compose/stats.h"
#include "testutil.h"
#include "server/pb/typeurl.h"

#include "google/protobuf/struct.pb-c.h"

#define EXT(name, extra)                                                       \
  "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"        \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec: {url: file:///w/" name ".wasm" extra "}\n"

#define TMPL                                                                   \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"         \
  "  route: {cluster: app}\n  httpFilters:\n"                                  \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

#define PAY "organizations/acme/tenants/payments"
#define WEB "organizations/acme/tenants/web"

/* Three generations: a config change, then an extension added and one
 * whose access moves. */
static const char *const stores[] = {
    EXT("a", ", phase: AUTHN, config: {v: 1}") EXT("b", ", phase: AUTHZ")
        EXT("c", ", phase: STATS") EXT("secret", ", allowedIn: [" PAY "]") TMPL,
    EXT("a", ", phase: AUTHN, config: {v: 2}") EXT("b", ", phase: AUTHZ")
        EXT("c", ", phase: STATS") EXT("secret", ", allowedIn: [" PAY "]") TMPL,
    EXT("a", ", phase: AUTHN, config: {v: 2}") EXT("b", ", phase: AUTHZ")
        EXT("d", ", phase: STATS") EXT("secret", ", allowedIn: [" WEB "]") TMPL,
};
#define N_SNAPS 3

static const char *const ecds_names[] = {"organizations/acme/extensions/a",
                                         "organizations/acme/extensions/b",
                                         "organizations/acme/extensions/c",
                                         "organizations/acme/extensions/d",
                                         "organizations/acme/extensions/secret",
                                         "organizations/acme/extensions/x",
                                         "*"};
#define N_ECDS_NAMES 7

/* --- the sent array ----------------------------------------------------- */

START_TEST(version_text_round_trip) {
  char out[VERSION_LEN + 1];
  uint64_t v;

  ck_assert_int_eq(ads_ver_parse("0123456789abcdef", &v), 1);
  ck_assert_uint_eq(v, 0x0123456789abcdefULL);
  ads_ver_format(v, 1, out);
  ck_assert_str_eq(out, "0123456789abcdef");
  ads_ver_format(0, 1, out);
  ck_assert_str_eq(out, "0000000000000000");
  /* Not a version: uppercase, short, long, empty, foreign. */
  ck_assert_int_eq(ads_ver_parse("0123456789ABCDEF", &v), 0);
  ck_assert_int_eq(ads_ver_parse("0123456789abcde", &v), 0);
  ck_assert_int_eq(ads_ver_parse("0123456789abcdef0", &v), 0);
  ck_assert_int_eq(ads_ver_parse("", &v), 0);
  ck_assert_int_eq(ads_ver_parse("v1", &v), 0);
  /* A slot's version: the letter s at its tenth digit, and only there. */
  ck_assert_int_eq(ads_ver_parse("012345678s00002a", &v), 2);
  ads_ver_format(v, 2, out);
  ck_assert_str_eq(out, "012345678s00002a");
  ck_assert_int_eq(ads_ver_parse("01234567s900002a", &v), 0);
}
END_TEST

/* The array against a plain reference: n names put in random order (more
 * than the unsorted tail holds), some twice, some deleted, then filtered;
 * after each settle it is sorted, unique, and finds exactly the names it
 * should, with their versions and states. */
START_TEST(sent_array_matches_a_reference) {
  enum { N = 300 };
  static char names[N][16];
  int in[N], state[N];
  uint64_t ver[N], acked[N]; /* UINT64_MAX: none (or not a version) */
  struct ads_sent a;
  unsigned seed = 12345;

  memset(&a, 0, sizeof(a));
  memset(in, 0, sizeof(in));
  for (int i = 0; i < N; i++)
    snprintf(names[i], sizeof(names[i]), "n%05d", (i * 7919) % 100000);
  for (int step = 0; step < 5000; step++) {
    int i = (int)(rand_r(&seed) % N), op = (int)(rand_r(&seed) % 10);
    if (op < 6) {
      char vt[VERSION_LEN + 1];
      struct ads_res *r;
      uint64_t v = ((uint64_t)rand_r(&seed) << 32) | (uint64_t)rand_r(&seed);
      int foreign = rand_r(&seed) % 8 == 0;
      ads_ver_format(v, 1, vt);
      ck_assert_int_eq(
          ads_sent_put(&a, names[i], foreign ? "v-other" : vt, 7, &r), 0);
      ck_assert_str_eq(r->name, names[i]);
      if (!in[i])
        acked[i] = UINT64_MAX; /* a send does not change what was acked */
      in[i] = 1;
      ver[i] = foreign ? UINT64_MAX : v;
      state[i] = ADS_RES_PENDING;
      if (op == 5) {
        ads_res_set_state(&a, r, ADS_RES_NACKED);
        state[i] = ADS_RES_NACKED;
      }
    } else if (op < 8) {
      ck_assert_int_eq(ads_sent_del(&a, names[i]), in[i]);
      in[i] = 0;
    } else if (op == 8) {
      struct ads_res *r = ads_sent_find(&a, names[i]);
      ck_assert_int_eq(r != NULL, in[i]);
      if (r != NULL) {
        ads_res_set_state(&a, r, ADS_RES_ACKED);
        ads_res_ack_version(&a, r);
        state[i] = ADS_RES_ACKED;
        acked[i] = ver[i];
      }
    } else {
      ads_sent_settle(&a);
      ck_assert_uint_eq(a.sorted, a.n);
    }
  }
  ads_sent_settle(&a);
  {
    uint32_t n = 0, pending = 0, nacked = 0;
    for (int i = 0; i < N; i++) {
      struct ads_res *r = ads_sent_find(&a, names[i]);
      ck_assert_int_eq(r != NULL, in[i]);
      if (r == NULL)
        continue;
      n++;
      ck_assert_int_eq(r->state, state[i]);
      pending += state[i] == ADS_RES_PENDING;
      nacked += state[i] == ADS_RES_NACKED;
      if (ver[i] == UINT64_MAX) {
        ck_assert(!(r->flags & ADS_RES_HAS_VERSION));
      } else {
        char vt[VERSION_LEN + 1];
        ads_ver_format(ver[i], 1, vt);
        ck_assert(ads_res_version_is(r, vt));
      }
      {
        char want[VERSION_LEN + 1], got[VERSION_LEN + 1];
        if (acked[i] == UINT64_MAX)
          want[0] = '\0';
        else
          ads_ver_format(acked[i], 1, want);
        ads_res_acked_text(&a, r, got);
        ck_assert_str_eq(got, want);
      }
    }
    ck_assert_uint_eq(a.n, n);
    ads_sent_check(&a);
    ck_assert_uint_eq(a.n_pending, pending);
    ck_assert_uint_eq(a.n_nacked, nacked);
    for (uint32_t i = 1; i < a.n; i++)
      ck_assert_int_lt(strcmp(a.v[i - 1].name, a.v[i].name), 0);
    /* Capacity given back: no more than an eighth over, plus a few. */
    ck_assert_uint_le(a.cap, a.n + a.n / 8 + 4);
  }
  ads_sent_cleanup(&a);
  ck_assert_uint_eq(xds_intern_count(), 0);
}
END_TEST

static int odd_out(const void *ctx, const char *name) {
  (void)ctx;
  return (name[strlen(name) - 1] - '0') % 2 == 0;
}

static void count_drop(void *ctx, const char *name) {
  (void)name;
  (*(int *)ctx)++;
}

START_TEST(sent_filter_keeps_order_and_counts) {
  struct ads_sent a;
  char name[16];
  int dropped = 0;

  memset(&a, 0, sizeof(a));
  /* Descending, so the tail is merged several times. */
  for (int i = 99; i >= 0; i--) {
    snprintf(name, sizeof(name), "r%02d", i);
    ck_assert_int_eq(ads_sent_put(&a, name, "00000000000000aa", 1, NULL), 0);
  }
  /* Leave a few in the unsorted tail: the filter must handle both parts. */
  ads_sent_filter(&a, odd_out, NULL, count_drop, &dropped);
  ck_assert_int_eq(dropped, 50);
  ck_assert_uint_eq(a.n, 50);
  ck_assert_uint_eq(a.n_pending, 50);
  ads_sent_settle(&a);
  for (uint32_t i = 0; i < a.n; i++) {
    snprintf(name, sizeof(name), "r%02u", 2 * i);
    ck_assert_str_eq(a.v[i].name, name);
  }
  ads_sent_cleanup(&a);
  ck_assert_uint_eq(xds_intern_count(), 0);
}
END_TEST

/* --- sync-state counts: a property test --------------------------------- */

struct sim {
  struct ads_stream *s; /* NULL: no stream now */
  int delta;
  int node_no; /* node id number; changing it closes the stream */
  char node_id[32];
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md;
  Google__Protobuf__Struct__FieldsEntry e_tenant, e_org;
  Google__Protobuf__Struct__FieldsEntry *entries[2];
  Google__Protobuf__Value v_tenant, v_org;
};

#define N_SIMS 8

static struct snapshot *snaps[N_SNAPS];
static struct sim sims[N_SIMS];
static atomic_long counts[STATS_SYNC_STATES];
static unsigned rng;
static struct xds_buf out;

static unsigned rnd(unsigned n) {
  return (unsigned)rand_r(&rng) % n;
}

static void sim_node(struct sim *m, int id_no, const char *tenant) {
  envoy__config__core__v3__node__init(&m->node);
  google__protobuf__struct__init(&m->md);
  google__protobuf__struct__fields_entry__init(&m->e_tenant);
  google__protobuf__struct__fields_entry__init(&m->e_org);
  google__protobuf__value__init(&m->v_tenant);
  google__protobuf__value__init(&m->v_org);
  snprintf(m->node_id, sizeof(m->node_id), "proxy-%d", id_no);
  m->node.id = m->node_id;
  m->node.metadata = &m->md;
  m->v_org.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  m->v_org.string_value = "acme";
  m->e_org.key = "wasmxds.organization";
  m->e_org.value = &m->v_org;
  m->v_tenant.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  m->v_tenant.string_value = (char *)tenant;
  m->e_tenant.key = "wasmxds.tenant";
  m->e_tenant.value = &m->v_tenant;
  m->entries[0] = &m->e_org;
  m->entries[1] = &m->e_tenant;
  m->md.n_fields = 2;
  m->md.fields = m->entries;
}

static void sim_start(struct sim *m, int i) {
  m->delta = (int)rnd(2);
  m->node_no = i;
  sim_node(m, i, i % 2 ? PAY : WEB);
  ck_assert_int_eq(ads_stream_new(ADS_SVC_ADS, m->delta ? ADS_DELTA : ADS_SOTW,
                                  "sim", &m->s),
                   0);
  ads_stream_set_sync_counts(m->s, counts);
}

/* The state by a full walk of the stream's records, as the transport
 * counted it before the core kept counts. */
static int walk_state(const struct ads_stream *s) {
  int worst = STATS_SYNCED, any = 0;

  if (!s->has_node)
    return -1;
  for (int i = 0; i < ADS_T_N; i++) {
    const struct ads_type_state *t = &s->t[i];
    uint32_t pending = 0, nacked = 0;
    if (!t->requested)
      continue;
    any = 1;
    for (uint32_t j = 0; j < t->sent.n; j++) {
      const struct ads_res *r = &t->sent.v[j];
      int st = r->state == ADS_RES_NACKED    ? STATS_NACKED
               : r->state == ADS_RES_PENDING ? STATS_STALE
                                             : STATS_SYNCED;
      pending += r->state == ADS_RES_PENDING;
      nacked += r->state == ADS_RES_NACKED;
      if (st > worst)
        worst = st;
      if (j > 0)
        ck_assert_int_lt(strcmp(t->sent.v[j - 1].name, t->sent.v[j].name), 0);
    }
    ck_assert_uint_eq(t->sent.sorted, t->sent.n);
    ck_assert_uint_eq(pending, t->sent.n_pending);
    ck_assert_uint_eq(nacked, t->sent.n_nacked);
    if (t->sent.n < t->n_names && worst < STATS_NOT_SENT)
      worst = STATS_NOT_SENT;
    if (t->wildcard && !t->sent_once && worst < STATS_NOT_SENT)
      worst = STATS_NOT_SENT;
  }
  return any ? worst : STATS_NOT_SENT;
}

static void check_counts(int step) {
  long want[STATS_SYNC_STATES] = {0};

  for (int i = 0; i < N_SIMS; i++) {
    int st = sims[i].s != NULL ? walk_state(sims[i].s) : -1;
    if (st >= 0)
      want[st]++;
  }
  for (int k = 0; k < STATS_SYNC_STATES; k++)
    ck_assert_msg(atomic_load(&counts[k]) == want[k],
                  "seed-step %d: state %d counted %ld, a walk finds %ld", step,
                  k, atomic_load(&counts[k]), want[k]);
}

/* Picks a nonce to answer with: the latest of the type, an earlier one,
 * none, or one never sent. */
static const char *pick_nonce(struct sim *m, int idx, char *buf, size_t n) {
  switch (rnd(6)) {
  case 0:
    return "";
  case 1:
    snprintf(buf, n, "%u", 1 + rnd(40));
    return buf;
  default:
    return m->s->t[idx].nonce;
  }
}

static int sotw_step(struct sim *m, struct snapshot *snap) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  const char *names[N_ECDS_NAMES];
  char nbuf[24], vbuf[VERSION_LEN + 1];
  int idx = (int)rnd(2);
  size_t n = 0;
  struct ads_close close;

  req.node = &m->node;
  req.type_url = (char *)ads_type_urls[idx];
  req.response_nonce = (char *)pick_nonce(m, idx, nbuf, sizeof(nbuf));
  /* The version: what was sent, something else, or none. */
  if (rnd(4) == 0) {
    ads_ver_format(rnd(1000), 1, vbuf);
    req.version_info = vbuf;
  } else {
    req.version_info = m->s->t[idx].sent_version;
  }
  if (idx == ADS_T_ECDS) {
    for (int i = 0; i < N_ECDS_NAMES; i++)
      if (rnd(2))
        names[n++] = ecds_names[i];
  } else if (rnd(4) == 0) {
    names[n++] = rnd(2) ? "in" : "nope";
  }
  req.resource_names = (char **)names;
  req.n_resource_names = n;
  if (rnd(5) == 0) {
    st.code = 3;
    st.message = "rejected";
    req.error_detail = &st;
  }
  return ads_stream_on_request(m->s, &req, snap, &close);
}

static int delta_step(struct sim *m, struct snapshot *snap) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
      ent[N_ECDS_NAMES],
      *entp[N_ECDS_NAMES];
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  const char *sub[N_ECDS_NAMES], *unsub[N_ECDS_NAMES];
  char nbuf[24], vers[N_ECDS_NAMES][VERSION_LEN + 1];
  int idx = (int)rnd(2);
  size_t ns = 0, nu = 0, ni = 0;
  struct ads_close close;

  req.node = &m->node;
  req.type_url = (char *)ads_type_urls[idx];
  req.response_nonce = (char *)pick_nonce(m, idx, nbuf, sizeof(nbuf));
  for (int i = 0; i < N_ECDS_NAMES; i++) {
    const char *name = idx == ADS_T_ECDS ? ecds_names[i] : i ? "nope" : "*";
    unsigned r = rnd(6);
    if (r == 0)
      sub[ns++] = name;
    else if (r == 1)
      unsub[nu++] = name;
    if (!m->s->t[idx].requested && rnd(3) == 0) {
      /* What a reconnecting proxy says it has: a version, a foreign
       * version, or none. */
      envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
          &ent[ni]);
      ads_ver_format(rnd(3), 1, vers[ni]);
      ent[ni].key = (char *)name;
      ent[ni].value = rnd(3) == 0 ? "v-elsewhere" : vers[ni];
      entp[ni] = &ent[ni];
      ni++;
    }
  }
  req.resource_names_subscribe = (char **)sub;
  req.n_resource_names_subscribe = ns;
  req.resource_names_unsubscribe = (char **)unsub;
  req.n_resource_names_unsubscribe = nu;
  req.initial_resource_versions = entp;
  req.n_initial_resource_versions = ni;
  if (rnd(5) == 0) {
    st.code = 3;
    st.message = "rejected";
    req.error_detail = &st;
  }
  return ads_stream_on_delta_request(m->s, &req, snap, &close);
}

static void run_seed(unsigned seed, int steps) {
  struct snapshot *snap = snaps[0];

  rng = seed;
  for (int i = 0; i < N_SIMS; i++)
    sim_start(&sims[i], i);
  check_counts(0);
  for (int step = 1; step <= steps; step++) {
    struct sim *m = &sims[rnd(N_SIMS)];
    unsigned what = rnd(20);
    int rc = 0;

    if (m->s == NULL) {
      sim_start(m, (int)(m - sims));
    } else if (what < 8) {
      rc = m->delta ? delta_step(m, snap) : sotw_step(m, snap);
    } else if (what < 15) {
      /* The transport pulls what is owed. */
      rc = ads_stream_next_response(m->s, &out, NULL);
      ck_assert_int_ge(rc, 0);
      rc = 0;
    } else if (what < 17) {
      /* A new generation reaches every stream. */
      snap = snaps[rnd(N_SNAPS)];
      for (int i = 0; i < N_SIMS; i++)
        if (sims[i].s != NULL)
          ck_assert_int_eq(ads_stream_on_snapshot(sims[i].s, snap, NULL), 0);
    } else if (what < 19) {
      /* The stream ends (the proxy went away). */
      ads_stream_free(m->s);
      m->s = NULL;
    } else {
      /* Another node on the same stream: refused, the stream closes
       * (before its first node, it is simply its node). */
      int had = m->s->has_node;
      m->node_no += 100;
      sim_node(m, m->node_no, PAY);
      rc = m->delta ? delta_step(m, snap) : sotw_step(m, snap);
      ck_assert_int_eq(rc, had ? -1 : 0);
    }
    if (rc < 0) {
      /* A stream the core closed is counted until the transport frees
       * it. */
      check_counts((int)(seed * 100000 + (unsigned)step));
      ads_stream_free(m->s);
      m->s = NULL;
    }
    check_counts((int)(seed * 100000 + (unsigned)step));
  }
  for (int i = 0; i < N_SIMS; i++) {
    ads_stream_free(sims[i].s);
    sims[i].s = NULL;
  }
  for (int k = 0; k < STATS_SYNC_STATES; k++)
    ck_assert_int_eq(atomic_load(&counts[k]), 0);
}

static void sync_setup(void) {
  xds_log_set_level(XDS_LOG_ERROR);
  for (int i = 0; i < N_SNAPS; i++) {
    struct catalog *cat = tu_catalog(stores[i]);
    struct encode_opts o;

    encode_opts_default(&o);
    ck_assert_int_eq(snapshot_build(cat, &o, (uint64_t)i + 1, &snaps[i], NULL),
                     0);
    catalog_unref(cat);
  }
  for (int k = 0; k < STATS_SYNC_STATES; k++)
    atomic_init(&counts[k], 0);
  xds_buf_init(&out, 4 << 20);
}

static void sync_teardown(void) {
  xds_buf_cleanup(&out);
  for (int i = 0; i < N_SNAPS; i++)
    snapshot_unref(snaps[i]);
  ck_assert_uint_eq(xds_intern_count(), 0);
}

START_TEST(sync_counts_equal_a_full_walk) {
  /* Every state is reached along the way (checked below), so the counts
   * are compared in each, not only in the easy ones. */
  long seen[STATS_SYNC_STATES] = {0};

  for (unsigned seed = 1; seed <= 40; seed++) {
    rng = seed;
    run_seed(seed, 400);
  }
  /* One more pass that records which states occurred. */
  rng = 4242;
  for (int i = 0; i < N_SIMS; i++)
    sim_start(&sims[i], i);
  for (int step = 0; step < 2000; step++) {
    struct sim *m = &sims[rnd(N_SIMS)];
    if (rnd(2))
      ck_assert_int_eq(m->delta ? delta_step(m, snaps[step / 700])
                                : sotw_step(m, snaps[step / 700]),
                       0);
    else
      ck_assert_int_ge(ads_stream_next_response(m->s, &out, NULL), 0);
    if (step % 700 == 0)
      for (int i = 0; i < N_SIMS; i++)
        ads_stream_on_snapshot(sims[i].s, snaps[step / 700], NULL);
    check_counts(step);
    for (int k = 0; k < STATS_SYNC_STATES; k++)
      seen[k] += atomic_load(&counts[k]) > 0;
  }
  for (int i = 0; i < N_SIMS; i++) {
    ads_stream_free(sims[i].s);
    sims[i].s = NULL;
  }
  for (int k = 0; k < STATS_SYNC_STATES; k++)
    ck_assert_msg(seen[k] > 0, "state %d never occurred", k);
}
END_TEST

Suite *ads_sync_suite(void) {
  Suite *s = suite_create("ads_sync");
  TCase *tc = tcase_create("sent");

  tcase_add_test(tc, version_text_round_trip);
  tcase_add_test(tc, sent_array_matches_a_reference);
  tcase_add_test(tc, sent_filter_keeps_order_and_counts);
  suite_add_tcase(s, tc);
  tc = tcase_create("sync_counts");
  tcase_add_checked_fixture(tc, sync_setup, sync_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, sync_counts_equal_a_full_walk);
  suite_add_tcase(s, tc);
  return s;
}
