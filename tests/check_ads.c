/*
 * check_ads.c: the state-of-the-world protocol of one stream, driven
 * offline with scripted requests (no gRPC): what is sent, when nothing is,
 * and what is refused.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "server/ads/ads_impl.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "testutil.h"
#include "server/pb/typeurl.h"

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define PAY "organizations/acme/tenants/payments"
#define WEB "organizations/acme/tenants/web"

static struct snapshot *snap_of(const char *yaml, uint64_t gen) {
  struct catalog *cat = tu_catalog(yaml);
  struct encode_opts o;
  struct snapshot *s;

  encode_opts_default(&o);
  ck_assert_int_eq(snapshot_build(cat, &o, gen, &s, NULL), 0);
  catalog_unref(cat);
  return s;
}

struct fixture {
  struct snapshot *v1, *v2, *v3;
  struct ads_stream s;
  struct tu_node node;
  struct xds_buf out;
  Envoy__Service__Discovery__V3__DiscoveryResponse *last;
};

static struct fixture fx;

static void setup(void) {
  xds_log_set_level(XDS_LOG_ERROR);
  fx.v1 = snap_of(tu_ads_stores[0], 1);
  fx.v2 = snap_of(tu_ads_stores[1], 2);
  fx.v3 = snap_of(tu_ads_stores[2], 3);
  ck_assert_int_eq(ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_SOTW, "test"), 0);
  tu_node_init(&fx.node, "proxy-1", PAY);
  xds_buf_init(&fx.out, 4 << 20);
  fx.last = NULL;
}

static void teardown(void) {
  if (fx.last != NULL)
    envoy__service__discovery__v3__discovery_response__free_unpacked(fx.last,
                                                                     NULL);
  xds_buf_cleanup(&fx.out);
  ads_stream_cleanup(&fx.s);
  /* Every interned name the stream took is given back. */
  ck_assert_uint_eq(xds_intern_count(), 0);
  snapshot_unref(fx.v1);
  snapshot_unref(fx.v2);
  snapshot_unref(fx.v3);
}

/* Sends one request; returns the on_request result. */
static int request(struct snapshot *snap, int with_node, const char *type,
                   const char *version, const char *nonce, const char *error,
                   const char **names, size_t n_names) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  struct ads_close close;

  req.node = with_node ? &fx.node.node : NULL;
  req.type_url = (char *)type;
  req.version_info = (char *)(version != NULL ? version : "");
  req.response_nonce = (char *)(nonce != NULL ? nonce : "");
  req.resource_names = (char **)names;
  req.n_resource_names = n_names;
  if (error != NULL) {
    st.code = 3;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  return ads_stream_on_request(&fx.s, &req, snap, &close);
}

/* The next response, or NULL when nothing is owed. */
static Envoy__Service__Discovery__V3__DiscoveryResponse *next(void) {
  int rc = ads_stream_next_response(&fx.s, &fx.out, NULL);

  ck_assert_int_ge(rc, 0);
  if (fx.last != NULL)
    envoy__service__discovery__v3__discovery_response__free_unpacked(fx.last,
                                                                     NULL);
  fx.last = NULL;
  if (rc == 0)
    return NULL;
  fx.last = envoy__service__discovery__v3__discovery_response__unpack(
      NULL, fx.out.len, (const uint8_t *)fx.out.data);
  ck_assert_ptr_nonnull(fx.last);
  return fx.last;
}

static const char *
ecds_names_of(Envoy__Service__Discovery__V3__DiscoveryResponse *r, char *buf,
              size_t n) {
  buf[0] = '\0';
  for (size_t i = 0; i < r->n_resources; i++) {
    Envoy__Config__Core__V3__TypedExtensionConfig *tec =
        envoy__config__core__v3__typed_extension_config__unpack(
            NULL, r->resources[i]->value.len, r->resources[i]->value.data);
    ck_assert_ptr_nonnull(tec);
    if (i > 0)
      strncat(buf, ",", n - strlen(buf) - 1);
    strncat(buf, strrchr(tec->name, '/') + 1, n - strlen(buf) - 1);
    envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  }
  return buf;
}

static const char *NAMES_AB[] = {"organizations/acme/extensions/a",
                                 "organizations/acme/extensions/b"};

START_TEST(lds_then_ack_sends_nothing_more) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  char version[64], nonce[32];

  ck_assert_int_eq(request(fx.v1, 1, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0),
                   0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, TYPE_LISTENER);
  ck_assert_uint_eq(r->n_resources, 1);
  ck_assert_str_eq(r->resources[0]->type_url, TYPE_LISTENER);
  ck_assert_str_ne(r->version_info, "");
  ck_assert_str_ne(r->nonce, "");
  snprintf(version, sizeof(version), "%s", r->version_info);
  snprintf(nonce, sizeof(nonce), "%s", r->nonce);
  ck_assert_ptr_null(next());
  ck_assert_int_eq(
      request(fx.v1, 0, TYPE_LISTENER, version, nonce, NULL, NULL, 0), 0);
  ck_assert_ptr_null(next());
  ck_assert_str_eq(fx.s.t[ADS_T_LDS].acked_version, version);
  /* The same snapshot again changes nothing. */
  ck_assert_int_eq(ads_stream_on_snapshot(&fx.s, fx.v1, NULL), 0);
  ck_assert_ptr_null(next());
}
END_TEST

START_TEST(ecds_by_name_and_config_only_push) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  struct ads_close close;
  char names[256], nonce[32], v1[32];

  ck_assert_int_eq(request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2),
                   0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a,b");
  snprintf(nonce, sizeof(nonce), "%s", r->nonce);
  snprintf(v1, sizeof(v1), "%s", r->version_info);
  ck_assert_int_eq(request(fx.v1, 0, TYPE_ECDS, v1, nonce, NULL, NAMES_AB, 2),
                   0);
  ck_assert_ptr_null(next());
  /* v2 changes only a's config: ECDS carries a alone; LDS is not owed
   * because nobody asked for it on this stream. */
  ck_assert_int_eq(ads_stream_on_snapshot(&fx.s, fx.v2, &close), 0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, TYPE_ECDS);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a");
  ck_assert_str_ne(r->version_info, v1);
  ck_assert_ptr_null(next());
}
END_TEST

START_TEST(config_change_does_not_touch_lds) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  char lds_v1[32];

  request(fx.v1, 1, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0);
  r = next();
  snprintf(lds_v1, sizeof(lds_v1), "%s", r->version_info);
  request(fx.v1, 0, TYPE_LISTENER, lds_v1, r->nonce, NULL, NULL, 0);
  ck_assert_int_eq(ads_stream_on_snapshot(&fx.s, fx.v2, NULL), 0);
  ck_assert_ptr_null(next());
  /* v3 adds an extension: the listener changes. */
  ck_assert_int_eq(ads_stream_on_snapshot(&fx.s, fx.v3, NULL), 0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, TYPE_LISTENER);
  ck_assert_str_ne(r->version_info, lds_v1);
}
END_TEST

START_TEST(lds_goes_before_ecds) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;

  request(fx.v1, 1, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0);
  r = next();
  request(fx.v1, 0, TYPE_LISTENER, r->version_info, r->nonce, NULL, NULL, 0);
  request(fx.v1, 0, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  request(fx.v1, 0, TYPE_ECDS, r->version_info, r->nonce, NULL, NAMES_AB, 2);
  ck_assert_ptr_null(next());
  /* Both types change at once (v1 -> v3: a's config and a new listener). */
  ads_stream_on_snapshot(&fx.s, fx.v3, NULL);
  r = next();
  ck_assert_str_eq(r->type_url, TYPE_LISTENER);
  r = next();
  ck_assert_str_eq(r->type_url, TYPE_ECDS);
  ck_assert_ptr_null(next());
}
END_TEST

/* The listener names of a SotW LDS response, comma-separated. */
static const char *
lds_names(Envoy__Service__Discovery__V3__DiscoveryResponse *r, char *buf,
          size_t n) {
  buf[0] = '\0';
  for (size_t i = 0; i < r->n_resources; i++) {
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(
            NULL, r->resources[i]->value.len, r->resources[i]->value.data);
    ck_assert_ptr_nonnull(l);
    if (buf[0])
      strncat(buf, ",", n - strlen(buf) - 1);
    strncat(buf, l->name, n - strlen(buf) - 1);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  }
  return buf;
}

/* A SotW client may ask for listeners by name: it gets those (full state
 * of its subscription), again whenever the subscription changes. */
START_TEST(sotw_lds_by_name) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  struct snapshot *w = snap_of(
      TU_EXT("a", "") TU_TMPL
      "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: out}\nspec:\n  port: 15001\n  direction: OUTBOUND\n"
      "  route: {cluster: app}\n  httpFilters:\n"
      "  - name: envoy.filters.http.router\n    typedConfig: {'@type': "
      "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n",
      7);
  const char *in[] = {"in"}, *in_out[] = {"in", "out"},
             *in_out_nope[] = {"in", "nope", "out"};
  char names[128], v[32], nonce[32];

#define ACK_LDS(list, n)                                                       \
  do {                                                                         \
    snprintf(v, sizeof(v), "%s", r->version_info);                             \
    snprintf(nonce, sizeof(nonce), "%s", r->nonce);                            \
    request(w, 0, TYPE_LISTENER, v, nonce, NULL, list, n);                     \
    ck_assert_ptr_null(next());                                                \
  } while (0)
  request(w, 1, TYPE_LISTENER, NULL, NULL, NULL, in, 1);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(lds_names(r, names, sizeof(names)), "in");
  ACK_LDS(in, 1);
  request(w, 0, TYPE_LISTENER, v, nonce, NULL, in_out, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(lds_names(r, names, sizeof(names)), "in,out");
  ACK_LDS(in_out, 2);
  /* A name that does not exist: answered, by its absence. */
  request(w, 0, TYPE_LISTENER, v, nonce, NULL, in_out_nope, 3);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(lds_names(r, names, sizeof(names)), "in,out");
  ACK_LDS(in_out_nope, 3);
  request(w, 0, TYPE_LISTENER, v, nonce, NULL, in, 1);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(lds_names(r, names, sizeof(names)), "in");
  ACK_LDS(in, 1);
  /* An empty list after names is no interest (not the wildcard): the
   * proxy is told it holds no listener. */
  request(w, 0, TYPE_LISTENER, v, nonce, NULL, NULL, 0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_uint_eq(r->n_resources, 0);
  ACK_LDS(NULL, 0);
  /* "*" is the wildcard again: every listener. */
  {
    const char *star[] = {"*"};

    request(w, 0, TYPE_LISTENER, v, nonce, NULL, star, 1);
    r = next();
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(lds_names(r, names, sizeof(names)), "in,out");
    ACK_LDS(star, 1);
  }
  /* Named again, then a reconnect at that version: nothing to send. */
  request(w, 0, TYPE_LISTENER, v, nonce, NULL, in, 1);
  r = next();
  ck_assert_ptr_nonnull(r);
  ACK_LDS(in, 1);
  ads_stream_cleanup(&fx.s);
  ck_assert_int_eq(ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_SOTW, "test"), 0);
  request(w, 1, TYPE_LISTENER, v, NULL, NULL, in, 1);
  ck_assert_ptr_null(next());
#undef ACK_LDS
  snapshot_unref(w);
}
END_TEST

START_TEST(stale_nonce_is_ignored) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *only_b[] = {"organizations/acme/extensions/b"};
  char old_nonce[32];

  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  snprintf(old_nonce, sizeof(old_nonce), "%s", r->nonce);
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  r = next(); /* a new nonce supersedes the old one */
  ck_assert_ptr_nonnull(r);
  /* A request carrying the superseded nonce changes nothing. */
  ck_assert_int_eq(
      request(fx.v2, 0, TYPE_ECDS, "x", old_nonce, NULL, only_b, 1), 0);
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].n_names, 2);
  ck_assert_str_eq(fx.s.t[ADS_T_ECDS].acked_version, "");
  ck_assert_ptr_null(next());
}
END_TEST

static enum ads_res_state res_state(const char *name) {
  struct ads_res *r = ads_sent_find(&fx.s.t[ADS_T_ECDS].sent, name);

  ck_assert_ptr_nonnull(r);
  return (enum ads_res_state)r->state;
}

/* Envoy adds a second filter's watch before it answers the first
 * response: the answer to that overtaken response still records the fate
 * of what it carried (SotW ignores the stale request's names, though). */
START_TEST(overtaken_response_is_still_acked_or_nacked) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *only_a[] = {"organizations/acme/extensions/a"};
  char n1[32], v1[32];

  for (int nack = 0; nack < 2; nack++) {
    if (nack) {
      teardown();
      setup();
    }
    request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, only_a, 1);
    r = next();
    snprintf(n1, sizeof(n1), "%s", r->nonce);
    snprintf(v1, sizeof(v1), "%s", r->version_info);
    request(fx.v1, 0, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
    r = next();
    ck_assert_ptr_nonnull(r);
    ck_assert_str_ne(r->nonce, n1);
    /* The answer to the first response arrives now. */
    ck_assert_int_eq(request(fx.v1, 0, TYPE_ECDS, nack ? "" : v1, n1,
                             nack ? "on_configure failed" : NULL, only_a, 1),
                     0);
    ck_assert_int_eq(res_state(NAMES_AB[0]),
                     nack ? ADS_RES_NACKED : ADS_RES_ACKED);
    ck_assert_int_eq(res_state(NAMES_AB[1]), ADS_RES_PENDING);
    ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].nacks, (unsigned)nack);
    ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].n_names, 2);
    ck_assert_str_eq(fx.s.t[ADS_T_ECDS].acked_version, "");
    ck_assert_ptr_null(next());
  }
  /* A nonce this stream never sent changes nothing. */
  ck_assert_int_eq(request(fx.v1, 0, TYPE_ECDS, "", "999", "x", only_a, 1), 0);
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].nacks, 1);
}
END_TEST

START_TEST(nack_keeps_state_and_is_not_resent) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  char v1[32], n1[32];

  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  snprintf(v1, sizeof(v1), "%s", r->version_info);
  request(fx.v1, 0, TYPE_ECDS, v1, r->nonce, NULL, NAMES_AB, 2);
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  r = next();
  snprintf(n1, sizeof(n1), "%s", r->nonce);
  /* NACK: previous version, latest nonce, error set. */
  ck_assert_int_eq(
      request(fx.v2, 0, TYPE_ECDS, v1, n1, "bad wasm", NAMES_AB, 2), 0);
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].nacks, 1);
  ck_assert_str_eq(fx.s.t[ADS_T_ECDS].nack_error, "bad wasm");
  /* A NACK message that is not UTF-8 is kept as UTF-8 text. */
  ck_assert_int_eq(request(fx.v2, 0, TYPE_ECDS, v1, n1,
                           "bad \xff wasm \xed\xa0\x80 \xe2\x82", NAMES_AB, 2),
                   0);
  ck_assert_str_eq(fx.s.t[ADS_T_ECDS].nack_error, "bad ? wasm ??? ??");
  ck_assert_str_eq(fx.s.t[ADS_T_ECDS].acked_version, v1);
  ck_assert_ptr_null(next());
  /* The same snapshot again: still nothing. */
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  ck_assert_ptr_null(next());
}
END_TEST

START_TEST(newly_subscribed_names_are_sent_even_if_unchanged) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *only_a[] = {"organizations/acme/extensions/a"};
  char names[256], v[32];

  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, only_a, 1);
  r = next();
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a");
  request(fx.v1, 0, TYPE_ECDS, r->version_info, r->nonce, NULL, NAMES_AB, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "b");
  /* Unsubscribe b, subscribe it again: it must be resent. */
  snprintf(v, sizeof(v), "%s", r->version_info);
  request(fx.v1, 0, TYPE_ECDS, v, r->nonce, NULL, only_a, 1);
  ck_assert_ptr_null(next());
  request(fx.v1, 0, TYPE_ECDS, v, fx.s.t[ADS_T_ECDS].nonce, NULL, NAMES_AB, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "b");
}
END_TEST

/* An ACK repeats the subscription, often in another order: nothing
 * changes. A list of the same length with a name twice is a change (the
 * name it lacks is unsubscribed, and sent again when named again). */
START_TEST(ack_in_another_order_or_with_a_repeat) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *ba[] = {"organizations/acme/extensions/b",
                      "organizations/acme/extensions/a"};
  const char *aa[] = {"organizations/acme/extensions/a",
                      "organizations/acme/extensions/a"};
  char names[256], v[32];

  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a,b");
  snprintf(v, sizeof(v), "%s", r->version_info);
  ck_assert_int_eq(request(fx.v1, 0, TYPE_ECDS, v, r->nonce, NULL, ba, 2), 0);
  ck_assert_ptr_null(next());
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].n_names, 2);
  ck_assert_int_eq(
      request(fx.v1, 0, TYPE_ECDS, v, fx.s.t[ADS_T_ECDS].nonce, NULL, aa, 2),
      0);
  ck_assert_ptr_null(next());
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].n_names, 1);
  request(fx.v1, 0, TYPE_ECDS, v, fx.s.t[ADS_T_ECDS].nonce, NULL, ba, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "b");
}
END_TEST

/* After an ACK nothing is recomputed (owed_clean), but every change that
 * decides what is owed still is: a new snapshot, a forgotten name. */
START_TEST(ack_keeps_nothing_owed_until_a_change) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *only_a[] = {"organizations/acme/extensions/a"};
  char names[256], v[32];

  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(fx.s.t[ADS_T_ECDS].owed_clean, 1);
  snprintf(v, sizeof(v), "%s", r->version_info);
  request(fx.v1, 0, TYPE_ECDS, v, r->nonce, NULL, NAMES_AB, 2);
  ck_assert_int_eq(fx.s.t[ADS_T_ECDS].owed_clean, 1);
  ck_assert_ptr_null(next());
  ck_assert_int_eq(ads_stream_on_snapshot(&fx.s, fx.v2, NULL), 0);
  ck_assert_int_eq(fx.s.t[ADS_T_ECDS].owed_clean, 0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a");
  snprintf(v, sizeof(v), "%s", r->version_info);
  request(fx.v2, 0, TYPE_ECDS, v, r->nonce, NULL, only_a, 1);
  ck_assert_ptr_null(next());
  /* b was forgotten: naming it again sends it, with nothing else new. */
  request(fx.v2, 0, TYPE_ECDS, v, fx.s.t[ADS_T_ECDS].nonce, NULL, NAMES_AB, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "b");
}
END_TEST

START_TEST(invisible_extension_never_sent) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *ask[] = {"organizations/acme/extensions/secret",
                       "organizations/acme/extensions/a",
                       "organizations/acme/extensions/nope"};
  char names[256];
  char v[32], n[32];

  tu_node_init(&fx.node, "web-1", WEB);
  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, ask, 3);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a");
  snprintf(v, sizeof(v), "%s", r->version_info);
  snprintf(n, sizeof(n), "%s", r->nonce);
  ck_assert_ptr_null(next());
  /* Wildcard does not reveal it either. */
  {
    const char *star[] = {"*"};
    ck_assert_int_eq(request(fx.v1, 0, TYPE_ECDS, v, n, NULL, star, 1), 0);
    ck_assert_int_eq(fx.s.t[ADS_T_ECDS].wildcard, 1);
    r = next();
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(ecds_names_of(r, names, sizeof(names)), "a,b");
  }
}
END_TEST

START_TEST(identity_rules) {
  struct tu_node other;
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  struct ads_close close;

  /* The first request must carry the node. */
  ck_assert_int_eq(request(fx.v1, 0, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0),
                   -1);
  ads_stream_cleanup(&fx.s);
  ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_SOTW, "test");
  ck_assert_int_eq(request(fx.v1, 1, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0),
                   0);
  /* The same node again is fine; another identity closes the stream. */
  ck_assert_int_eq(request(fx.v1, 1, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0),
                   0);
  tu_node_init(&other, "proxy-1", WEB);
  req.node = &other.node;
  req.type_url = TYPE_LISTENER;
  ck_assert_int_eq(ads_stream_on_request(&fx.s, &req, fx.v1, &close), -1);
  ck_assert_int_eq(close.code, ADS_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(unknown_type_gets_one_empty_response) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  const char *cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

  request(fx.v1, 1, cds, NULL, NULL, NULL, NULL, 0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, cds);
  ck_assert_uint_eq(r->n_resources, 0);
  request(fx.v1, 0, cds, "", r->nonce, NULL, NULL, 0);
  ck_assert_ptr_null(next());
  /* The stream still serves LDS. */
  request(fx.v1, 0, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0);
  r = next();
  ck_assert_str_eq(r->type_url, TYPE_LISTENER);
}
END_TEST

START_TEST(standalone_services_carry_their_type_only) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;

  ads_stream_cleanup(&fx.s);
  ads_stream_init(&fx.s, ADS_SVC_LDS, ADS_SOTW, "test");
  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  ck_assert_ptr_null(next());
  request(fx.v1, 1, "", NULL, NULL, NULL, NULL, 0);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, TYPE_LISTENER);
}
END_TEST

START_TEST(sotw_reconnect_at_current_version_gets_nothing) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  char lds_v[32], ecds_v[32];

  request(fx.v2, 1, TYPE_LISTENER, NULL, NULL, NULL, NULL, 0);
  r = next();
  snprintf(lds_v, sizeof(lds_v), "%s", r->version_info);
  request(fx.v2, 0, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  snprintf(ecds_v, sizeof(ecds_v), "%s", r->version_info);
  /* A new stream (the proxy reconnected) that reports those versions. */
  ads_stream_cleanup(&fx.s);
  ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_SOTW, "test");
  request(fx.v2, 1, TYPE_LISTENER, lds_v, NULL, NULL, NULL, 0);
  request(fx.v2, 0, TYPE_ECDS, ecds_v, NULL, NULL, NAMES_AB, 2);
  ck_assert_ptr_null(next());
  /* An older version gets the current state. */
  ads_stream_cleanup(&fx.s);
  ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_SOTW, "test");
  request(fx.v1, 1, TYPE_ECDS, ecds_v, NULL, NULL, NAMES_AB, 2);
  r = next();
  ck_assert_ptr_nonnull(r);
  ck_assert_uint_eq(r->n_resources, 2);
}
END_TEST

/* Delta. */

static Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *dlast;

static int drequest(struct snapshot *snap, int with_node, const char *type,
                    const char *nonce, const char *error, const char **sub,
                    size_t n_sub, const char **unsub, size_t n_unsub,
                    const char **init_names, const char **init_versions,
                    size_t n_init) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
      e[8],
      *ep[8];
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  struct ads_close close;

  ck_assert_uint_le(n_init, 8);
  for (size_t i = 0; i < n_init; i++) {
    envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
        &e[i]);
    e[i].key = (char *)init_names[i];
    e[i].value = (char *)init_versions[i];
    ep[i] = &e[i];
  }
  req.node = with_node ? &fx.node.node : NULL;
  req.type_url = (char *)type;
  req.response_nonce = (char *)(nonce != NULL ? nonce : "");
  req.resource_names_subscribe = (char **)sub;
  req.n_resource_names_subscribe = n_sub;
  req.resource_names_unsubscribe = (char **)unsub;
  req.n_resource_names_unsubscribe = n_unsub;
  req.initial_resource_versions = ep;
  req.n_initial_resource_versions = n_init;
  if (error != NULL) {
    st.message = (char *)error;
    req.error_detail = &st;
  }
  return ads_stream_on_delta_request(&fx.s, &req, snap, &close);
}

static Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *dnext(void) {
  int rc = ads_stream_next_response(&fx.s, &fx.out, NULL);

  ck_assert_int_ge(rc, 0);
  if (dlast != NULL)
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
        dlast, NULL);
  dlast = NULL;
  if (rc == 0)
    return NULL;
  dlast = envoy__service__discovery__v3__delta_discovery_response__unpack(
      NULL, fx.out.len, (const uint8_t *)fx.out.data);
  ck_assert_ptr_nonnull(dlast);
  return dlast;
}

/* "name@version,..." of the resources, then "-name,..." of the removed. */
static const char *
dnames(Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r, char *buf,
       size_t n) {
  buf[0] = '\0';
  for (size_t i = 0; i < r->n_resources; i++) {
    const char *name = strrchr(r->resources[i]->name, '/');
    name = name != NULL ? name + 1 : r->resources[i]->name;
    ck_assert_str_ne(r->resources[i]->version, "");
    ck_assert_ptr_nonnull(r->resources[i]->resource);
    ck_assert_str_eq(r->resources[i]->resource->type_url, r->type_url);
    if (buf[0])
      strncat(buf, ",", n - strlen(buf) - 1);
    strncat(buf, name, n - strlen(buf) - 1);
  }
  for (size_t i = 0; i < r->n_removed_resources; i++) {
    const char *name = strrchr(r->removed_resources[i], '/');
    name = name != NULL ? name + 1 : r->removed_resources[i];
    if (buf[0])
      strncat(buf, ",", n - strlen(buf) - 1);
    strncat(buf, "-", n - strlen(buf) - 1);
    strncat(buf, name, n - strlen(buf) - 1);
  }
  return buf;
}

static void delta_setup(void) {
  setup();
  dlast = NULL;
  ads_stream_cleanup(&fx.s);
  ck_assert_int_eq(ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_DELTA, "test"), 0);
}

static void delta_teardown(void) {
  if (dlast != NULL)
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
        dlast, NULL);
  dlast = NULL;
  teardown();
}

START_TEST(delta_lds_wildcard_then_changes_only) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  char names[256], nonce[32];

  ck_assert_int_eq(drequest(fx.v1, 1, TYPE_LISTENER, NULL, NULL, NULL, 0, NULL,
                            0, NULL, NULL, 0),
                   0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, TYPE_LISTENER);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "in");
  snprintf(nonce, sizeof(nonce), "%s", r->nonce);
  drequest(fx.v1, 0, TYPE_LISTENER, nonce, NULL, NULL, 0, NULL, 0, NULL, NULL,
           0);
  ck_assert_ptr_null(dnext());
  ck_assert_uint_eq(fx.s.t[ADS_T_LDS].acks, 1);
  /* A config-only change: nothing for LDS. */
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  ck_assert_ptr_null(dnext());
  /* A new extension changes the listener: it is sent again. */
  ads_stream_on_snapshot(&fx.s, fx.v3, NULL);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "in");
}
END_TEST

START_TEST(delta_ecds_subscribe_remove_and_absent) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *abc[] = {
      "organizations/acme/extensions/a", "organizations/acme/extensions/b",
      "organizations/acme/extensions/c", "organizations/acme/extensions/nope"};
  const char *unsub_b[] = {"organizations/acme/extensions/b"};
  char names[256], nonce[32];

  drequest(fx.v3, 1, TYPE_ECDS, NULL, NULL, abc, 4, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a,b,c,-nope");
  snprintf(nonce, sizeof(nonce), "%s", r->nonce);
  drequest(fx.v3, 0, TYPE_ECDS, nonce, NULL, NULL, 0, NULL, 0, NULL, NULL, 0);
  ck_assert_ptr_null(dnext());
  /* c goes away (v2 has no c); a changed between v3 and v2? No: same. */
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "-c");
  /* Back to v1: a's config differs. */
  ads_stream_on_snapshot(&fx.s, fx.v1, NULL);
  r = dnext();
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a");
  /* Unsubscribing needs no answer. */
  drequest(fx.v1, 0, TYPE_ECDS, NULL, NULL, NULL, 0, unsub_b, 1, NULL, NULL, 0);
  ck_assert_ptr_null(dnext());
  /* Subscribing again is answered even though nothing changed. */
  drequest(fx.v1, 0, TYPE_ECDS, NULL, NULL, unsub_b, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "b");
}
END_TEST

START_TEST(delta_reconnect_with_initial_versions) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *ab[] = {"organizations/acme/extensions/a",
                      "organizations/acme/extensions/b"};
  char va[32], vb[32], names[256];
  const char *versions[2];

  drequest(fx.v2, 1, TYPE_ECDS, NULL, NULL, ab, 2, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_uint_eq(r->n_resources, 2);
  snprintf(va, sizeof(va), "%s", r->resources[0]->version);
  snprintf(vb, sizeof(vb), "%s", r->resources[1]->version);
  ads_stream_cleanup(&fx.s);
  ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_DELTA, "test");
  /* It has both at the current versions: nothing to send. */
  versions[0] = va;
  versions[1] = vb;
  drequest(fx.v2, 1, TYPE_ECDS, NULL, NULL, ab, 2, NULL, 0, ab, versions, 2);
  ck_assert_ptr_null(dnext());
  /* Reconnecting to a server whose a differs (v1), and b vanished for
   * this proxy's view? b is the same: only a is sent. */
  ads_stream_cleanup(&fx.s);
  ads_stream_init(&fx.s, ADS_SVC_ADS, ADS_DELTA, "test");
  drequest(fx.v1, 1, TYPE_ECDS, NULL, NULL, ab, 2, NULL, 0, ab, versions, 2);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a");
}
END_TEST

START_TEST(delta_nack_not_resent_and_stale_nonce_subscribes) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *a[] = {"organizations/acme/extensions/a"};
  const char *b[] = {"organizations/acme/extensions/b"};
  char names[256], n1[32];

  drequest(fx.v1, 1, TYPE_ECDS, NULL, NULL, a, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  snprintf(n1, sizeof(n1), "%s", r->nonce);
  drequest(fx.v1, 0, TYPE_ECDS, n1, NULL, NULL, 0, NULL, 0, NULL, NULL, 0);
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  r = dnext();
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a");
  /* NACK it. */
  drequest(fx.v2, 0, TYPE_ECDS, r->nonce, "bad config", NULL, 0, NULL, 0, NULL,
           NULL, 0);
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].nacks, 1);
  ck_assert_ptr_null(dnext());
  /* A request with a stale nonce still subscribes. */
  drequest(fx.v2, 0, TYPE_ECDS, n1, NULL, b, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "b");
}
END_TEST

/* xds_protocol "Unsubscribing from Resources": a name subscribed both by
 * name and by "*" and then unsubscribed is answered, as a resource when
 * the wildcard covers it, else in removed_resources. */
START_TEST(delta_unsubscribe_under_wildcard_is_answered) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *sub[] = {"*", "organizations/acme/extensions/a",
                       "organizations/acme/extensions/nope"};
  const char *unsub_a[] = {"organizations/acme/extensions/a"};
  const char *unsub_nope[] = {"organizations/acme/extensions/nope"};
  const char *lds_sub[] = {"*", "in"};
  const char *lds_unsub[] = {"in"};
  char names[256];

  drequest(fx.v1, 1, TYPE_ECDS, NULL, NULL, sub, 3, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a,b,secret,-nope");
  drequest(fx.v1, 0, TYPE_ECDS, r->nonce, NULL, NULL, 0, NULL, 0, NULL, NULL,
           0);
  ck_assert_ptr_null(dnext());
  drequest(fx.v1, 0, TYPE_ECDS, NULL, NULL, NULL, 0, unsub_a, 1, NULL, NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a");
  drequest(fx.v1, 0, TYPE_ECDS, NULL, NULL, NULL, 0, unsub_nope, 1, NULL, NULL,
           0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "-nope");
  ck_assert_ptr_null(dnext());
  /* The same for listeners. */
  drequest(fx.v1, 0, TYPE_LISTENER, NULL, NULL, lds_sub, 2, NULL, 0, NULL, NULL,
           0);
  r = dnext();
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "in");
  drequest(fx.v1, 0, TYPE_LISTENER, NULL, NULL, NULL, 0, lds_unsub, 1, NULL,
           NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "in");
  ck_assert_ptr_null(dnext());
}
END_TEST

/* EDS is not served: a delta subscription to endpoints is answered as
 * not existing, each new name once. RDS gets one empty answer only: Envoy
 * ignores a route removal and would wait for ever. */
START_TEST(delta_unserved_type_names_are_removed) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *eds =
      "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
  const char *rds =
      "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
  const char *r1[] = {"r1"}, *r12[] = {"r1", "r2"};
  char names[256];

  drequest(fx.v1, 1, eds, NULL, NULL, r1, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, eds);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "-r1");
  drequest(fx.v1, 0, eds, r->nonce, NULL, NULL, 0, NULL, 0, NULL, NULL, 0);
  ck_assert_ptr_null(dnext());
  drequest(fx.v1, 0, eds, NULL, NULL, r12, 2, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "-r1,-r2");
  ck_assert_ptr_null(dnext());

  drequest(fx.v1, 0, rds, NULL, NULL, r1, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->type_url, rds);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "");
  drequest(fx.v1, 0, rds, NULL, NULL, r12, 2, NULL, 0, NULL, NULL, 0);
  ck_assert_ptr_null(dnext());
}
END_TEST

START_TEST(delta_overtaken_response_is_still_nacked) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *a[] = {"organizations/acme/extensions/a"};
  const char *b[] = {"organizations/acme/extensions/b"};
  char n1[32];

  drequest(fx.v1, 1, TYPE_ECDS, NULL, NULL, a, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  snprintf(n1, sizeof(n1), "%s", r->nonce);
  drequest(fx.v1, 0, TYPE_ECDS, NULL, NULL, b, 1, NULL, 0, NULL, NULL, 0);
  ck_assert_ptr_nonnull(dnext());
  drequest(fx.v1, 0, TYPE_ECDS, n1, "on_configure failed", NULL, 0, NULL, 0,
           NULL, NULL, 0);
  ck_assert_int_eq(res_state(a[0]), ADS_RES_NACKED);
  ck_assert_int_eq(res_state(b[0]), ADS_RES_PENDING);
  ck_assert_uint_eq(fx.s.t[ADS_T_ECDS].nacks, 1);
  ck_assert_str_eq(fx.s.t[ADS_T_ECDS].nack_error, "on_configure failed");
  ck_assert_ptr_null(dnext());
}
END_TEST

START_TEST(delta_hidden_resource_is_removed_when_access_goes) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  const char *star[] = {"*"};
  char names[256];
  struct snapshot *v5;

  /* A payments proxy sees "secret"; in v5 secret is for web only. */
  drequest(fx.v1, 1, TYPE_ECDS, NULL, NULL, star, 1, NULL, 0, NULL, NULL, 0);
  r = dnext();
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "a,b,secret");
  v5 = snap_of(TU_EXT("a", ", phase: AUTHN, config: {v: 1}")
                   TU_EXT("b", ", phase: AUTHZ")
                       TU_EXT("secret", ", allowedIn: [" WEB "]") TU_TMPL,
               5);
  ads_stream_on_snapshot(&fx.s, v5, NULL);
  r = dnext();
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(dnames(r, names, sizeof(names)), "-secret");
  ck_assert_ptr_null(dnext());
  snapshot_unref(v5);
}
END_TEST

START_TEST(status_reports_per_resource_state) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  json_t *st;
  char v[32], n[32];

  request(fx.v1, 1, TYPE_ECDS, NULL, NULL, NULL, NAMES_AB, 2);
  r = next();
  snprintf(v, sizeof(v), "%s", r->version_info);
  snprintf(n, sizeof(n), "%s", r->nonce);
  request(fx.v1, 0, TYPE_ECDS, v, n, NULL, NAMES_AB, 2);
  ads_stream_on_snapshot(&fx.s, fx.v2, NULL);
  r = next();
  request(fx.v2, 0, TYPE_ECDS, v, r->nonce, "boom", NAMES_AB, 2);
  st = ads_stream_status(&fx.s);
  ck_assert_ptr_nonnull(st);
  {
    json_t *res = json_object_get(
        json_object_get(json_object_get(json_object_get(st, "types"), "ECDS"),
                        "resources"),
        "organizations/acme/extensions/a");
    json_t *resb = json_object_get(
        json_object_get(json_object_get(json_object_get(st, "types"), "ECDS"),
                        "resources"),
        "organizations/acme/extensions/b");
    ck_assert_str_eq(json_string_value(json_object_get(res, "state")),
                     "DEPLOYMENT_FAILED");
    ck_assert_str_eq(json_string_value(json_object_get(res, "error")), "boom");
    ck_assert_str_eq(json_string_value(json_object_get(resb, "state")),
                     "FILTERS_DEPLOYED");
    ck_assert_str_eq(json_string_value(json_object_get(resb, "served_as")),
                     "wasm");
  }
  json_decref(st);
}
END_TEST

Suite *ads_suite(void) {
  Suite *s = suite_create("ads");
  TCase *tc = tcase_create("sotw");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, lds_then_ack_sends_nothing_more);
  tcase_add_test(tc, ecds_by_name_and_config_only_push);
  tcase_add_test(tc, config_change_does_not_touch_lds);
  tcase_add_test(tc, lds_goes_before_ecds);
  tcase_add_test(tc, stale_nonce_is_ignored);
  tcase_add_test(tc, overtaken_response_is_still_acked_or_nacked);
  tcase_add_test(tc, sotw_lds_by_name);
  tcase_add_test(tc, nack_keeps_state_and_is_not_resent);
  tcase_add_test(tc, newly_subscribed_names_are_sent_even_if_unchanged);
  tcase_add_test(tc, invisible_extension_never_sent);
  tcase_add_test(tc, ack_in_another_order_or_with_a_repeat);
  tcase_add_test(tc, ack_keeps_nothing_owed_until_a_change);
  tcase_add_test(tc, identity_rules);
  tcase_add_test(tc, unknown_type_gets_one_empty_response);
  tcase_add_test(tc, standalone_services_carry_their_type_only);
  tcase_add_test(tc, sotw_reconnect_at_current_version_gets_nothing);
  tcase_add_test(tc, status_reports_per_resource_state);
  suite_add_tcase(s, tc);
  tc = tcase_create("delta");
  tcase_add_checked_fixture(tc, delta_setup, delta_teardown);
  tcase_add_test(tc, delta_lds_wildcard_then_changes_only);
  tcase_add_test(tc, delta_ecds_subscribe_remove_and_absent);
  tcase_add_test(tc, delta_reconnect_with_initial_versions);
  tcase_add_test(tc, delta_nack_not_resent_and_stale_nonce_subscribes);
  tcase_add_test(tc, delta_overtaken_response_is_still_nacked);
  tcase_add_test(tc, delta_unserved_type_names_are_removed);
  tcase_add_test(tc, delta_unsubscribe_under_wildcard_is_answered);
  tcase_add_test(tc, delta_hidden_resource_is_removed_when_access_goes);
  suite_add_tcase(s, tc);
  return s;
}
