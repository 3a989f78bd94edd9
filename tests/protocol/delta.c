/*
 * delta.c: check_protocol, delta semantics: initial_resource_versions,
 * subscribe and unsubscribe, wildcard, removals (deleted, access lost),
 * system_version_info, a name that appears later.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- delta ------------------------------------------------------------- */

/* Loop index: 0 delta ADS, 1 the standalone DeltaListeners and
 * DeltaExtensionConfigs. */

/* Opens a session that holds LDS and ECDS ("*" both), and ACKs both. */
static void delta_wild(struct sess *ss, int standalone, const char *id,
                       struct got *l, struct got *e) {
  static const char *const star[] = {"*", NULL};

  sess_open(ss, 1, standalone, id, TENANT_PAYMENTS);
  sess_lds(ss, l);
  sess_ecds(ss, star, e);
}

/* Reconnect with initial_resource_versions: only what differs is sent,
 * and what went away while disconnected comes as removed_resources. */
START_TEST(delta_initial_resource_versions) {
  static const char *const star[] = {"*", NULL};
  static const char *const authz[] = {E_AUTHZ, NULL};
  char *lkv[2 * MAXR + 2] = {NULL}, *ekv[2 * MAXR + 2] = {NULL};
  struct got l, e;
  struct sess ss;
  char buf[1024];

  delta_wild(&ss, _i, "delta-irv-1", &l, &e);
  got_exactly(&l, PAY_LISTENERS, "delta LDS \"*\"");
  got_exactly(&e, PAY_EXTS, "delta ECDS \"*\"");
  kv_add(lkv, 2 * MAXR + 2, &l);
  kv_add(ekv, 2 * MAXR + 2, &e);
  sess_close(&ss);

  /* While disconnected: pay-authz's config changes, outbound-http goes. */
  store_set_rev(F_AUTHZ, 1);
  store_changed();
  store_remove(F_OUTBOUND);
  store_changed();

  sess_open(&ss, 1, _i, "delta-irv-1", TENANT_PAYMENTS);
  delta_send(ss.lds, ss.node, XDS_TYPE_LISTENER, NULL, star, NULL,
             (const char *const *)lkv, NULL);
  must_recv(ss.lds, 1, XDS_TYPE_LISTENER, ANSWER_MS, &l,
            "LDS reconnect with initial_resource_versions");
  E2E_ASSERT(l.n == 0 && l.n_removed == 1 && got_removed(&l, L_OUT),
             "delta LDS on reconnect: got %s; want only outbound-http "
             "removed (inbound-http is unchanged)",
             got_names(&l, buf, sizeof(buf)));
  ack(ss.lds, &l, NULL);
  delta_send(ss.ecds, ss.node, XDS_TYPE_ECDS, NULL, star, NULL,
             (const char *const *)ekv, NULL);
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, ANSWER_MS, &e,
            "ECDS reconnect with initial_resource_versions");
  got_exactly(&e, authz, "delta ECDS on reconnect (only what changed)");
  E2E_ASSERT(e.n_removed == 0, "delta ECDS on reconnect removed %s",
             e.removed[0]);
  ack(ss.ecds, &e, NULL);
  quiet(ss.lds, 1, QUIET_MS, "the ACKs after reconnecting");
  kv_free(lkv);
  kv_free(ekv);
  sess_close(&ss);

  /* Again, now an extension is deleted while disconnected. */
  delta_wild(&ss, _i, "delta-irv-2", &l, &e);
  kv_add(lkv, 2 * MAXR + 2, &l);
  kv_add(ekv, 2 * MAXR + 2, &e);
  sess_close(&ss);
  store_remove(F_AUDIT);
  store_changed();
  sess_open(&ss, 1, _i, "delta-irv-2", TENANT_PAYMENTS);
  delta_send(ss.ecds, ss.node, XDS_TYPE_ECDS, NULL, star, NULL,
             (const char *const *)ekv, NULL);
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, ANSWER_MS, &e,
            "ECDS reconnect after a deletion");
  E2E_ASSERT(e.n == 0 && e.n_removed == 1 && got_removed(&e, E_AUDIT),
             "delta ECDS on reconnect after pay-audit was deleted: got %s; "
             "want only pay-audit removed",
             got_names(&e, buf, sizeof(buf)));
  kv_free(lkv);
  kv_free(ekv);
  sess_close(&ss);
}
END_TEST

/* resource_names_subscribe / _unsubscribe on ECDS by name (loop: 0 delta
 * ADS, 1 DeltaExtensionConfigs). */
START_TEST(delta_subscribe_unsubscribe) {
  static const char *const authz[] = {E_AUTHZ, NULL};
  static const char *const shared[] = {E_SHARED, NULL};
  static const char *const audit[] = {E_AUDIT, NULL};
  static const char *const nope[] = {E_NOPE, NULL};
  Envoy__Config__Core__V3__Node *node =
      node_new("delta-sub-1", TENANT_PAYMENTS);
  struct xds_stream *s =
      open_stream(_i ? XDS_METHOD_DELTA_ECDS : XDS_METHOD_DELTA_ADS);
  struct got g;
  char buf[1024];
  int at;

  delta_send(s, node, XDS_TYPE_ECDS, NULL, authz, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribe pay-authz");
  got_exactly(&g, authz, "delta ECDS subscribe [pay-authz]");
  ack(s, &g, NULL);

  delta_send(s, NULL, XDS_TYPE_ECDS, NULL, shared, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribe shared-stats");
  got_exactly(&g, shared, "delta ECDS subscribe [shared-stats] (only it)");
  ack(s, &g, NULL);

  /* A subscription to a name the proxy already has is still answered. */
  delta_send(s, NULL, XDS_TYPE_ECDS, NULL, authz, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "re-subscribe pay-authz");
  got_exactly(&g, authz, "delta ECDS re-subscribe [pay-authz]");
  ack(s, &g, NULL);

  /* Unsubscribe: no answer needed, and no pushes for it. */
  delta_send(s, NULL, XDS_TYPE_ECDS, NULL, NULL, authz, NULL, NULL);
  quiet(s, 1, QUIET_MS, "unsubscribing pay-authz");
  store_set_rev(F_AUTHZ, 1);
  store_changed();
  quiet(s, 1, QUIET_MS, "a change of the unsubscribed pay-authz");
  store_set_rev(F_SHARED, 1);
  store_changed();
  must_recv(s, 1, XDS_TYPE_ECDS, PUSH_MS, &g, "a change of shared-stats");
  got_exactly(&g, shared, "delta ECDS push");
  at = got_find(&g, E_SHARED);
  E2E_ASSERT(strstr(g.body[at], "\"rev\":1") != NULL,
             "shared-stats pushed with config %s", g.body[at]);
  ack(s, &g, NULL);

  /* Subscription changes apply even with a stale nonce. */
  delta_send(s, NULL, XDS_TYPE_ECDS, "1", audit, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g,
            "subscribe pay-audit with a stale nonce");
  got_exactly(&g, audit, "delta ECDS subscribe with a stale nonce");
  ack(s, &g, NULL);

  /* A name that does not exist is answered in removed_resources. */
  delta_send(s, NULL, XDS_TYPE_ECDS, NULL, nope, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribe a missing name");
  E2E_ASSERT(g.n == 0 && got_removed(&g, E_NOPE),
             "subscribing a missing name: got %s, want it removed",
             got_names(&g, buf, sizeof(buf)));
  ack(s, &g, NULL);
  quiet(s, 1, QUIET_MS, "the ACK");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* Wildcard: "*" and the legacy empty first request, on LDS and ECDS; only
 * what the proxy may see. */
START_TEST(delta_wildcard) {
  static const char *const star[] = {"*", NULL};
  struct got l, e;
  struct sess ss;

  delta_wild(&ss, _i, "delta-wild-1", &l, &e);
  got_exactly(&l, PAY_LISTENERS, "delta LDS \"*\"");
  got_exactly(&e, PAY_EXTS, "delta ECDS \"*\" (payments sees these only)");
  quiet(ss.lds, 1, QUIET_MS, "the ACKs");
  sess_close(&ss);

  /* Legacy: a first request with no names at all. */
  sess_open(&ss, 1, _i, "delta-wild-2", TENANT_PAYMENTS);
  delta_send(ss.lds, ss.node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL, NULL);
  must_recv(ss.lds, 1, XDS_TYPE_LISTENER, ANSWER_MS, &l, "legacy LDS");
  got_exactly(&l, PAY_LISTENERS, "delta LDS legacy wildcard");
  ack(ss.lds, &l, NULL);
  delta_send(ss.ecds, ss.node, XDS_TYPE_ECDS, NULL, NULL, NULL, NULL, NULL);
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, ANSWER_MS, &e, "legacy ECDS");
  got_exactly(&e, PAY_EXTS, "delta ECDS legacy wildcard");
  ack(ss.ecds, &e, NULL);
  sess_close(&ss);

  /* A web proxy's wildcard: its own two. */
  {
    static const char *const web[] = {E_WEB, E_SHARED, NULL};
    sess_open(&ss, 1, _i, "delta-wild-web", TENANT_WEB);
    sess_ecds(&ss, star, &e);
    got_exactly(&e, web, "delta ECDS \"*\" for tenant web");
    sess_close(&ss);
  }
}
END_TEST

/* removed_resources when a resource goes away from the store: an
 * extension (wildcard and explicit subscribers), a listener. */
START_TEST(delta_removed_when_deleted) {
  static const char *const audit[] = {E_AUDIT, NULL};
  struct xds_stream *x;
  struct got l, e, g;
  struct sess ss;
  char buf[1024];

  delta_wild(&ss, _i, "delta-rm-1", &l, &e);
  x = open_stream(_i ? XDS_METHOD_DELTA_ECDS : XDS_METHOD_DELTA_ADS);
  delta_send(x, ss.node, XDS_TYPE_ECDS, NULL, audit, NULL, NULL, NULL);
  must_recv(x, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "explicit pay-audit");
  ack(x, &g, NULL);

  store_remove(F_AUDIT);
  store_changed();
  /* Its filter leaves both listeners: an LDS update, then the removal. */
  must_recv(ss.lds, 1, XDS_TYPE_LISTENER, PUSH_MS, &l, "pay-audit deleted");
  got_exactly(&l, PAY_LISTENERS, "delta LDS after pay-audit was deleted");
  for (size_t i = 0; i < l.n; i++)
    E2E_ASSERT(strstr(l.body[i], E_AUDIT) == NULL,
               "listener %s still has pay-audit", l.name[i]);
  ack(ss.lds, &l, NULL);
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, PUSH_MS, &e, "pay-audit deleted");
  E2E_ASSERT(e.n == 0 && e.n_removed == 1 && got_removed(&e, E_AUDIT),
             "wildcard delta ECDS after pay-audit was deleted: %s",
             got_names(&e, buf, sizeof(buf)));
  ack(ss.ecds, &e, NULL);
  must_recv(x, 1, XDS_TYPE_ECDS, PUSH_MS, &g, "pay-audit deleted");
  E2E_ASSERT(g.n == 0 && got_removed(&g, E_AUDIT),
             "explicit delta ECDS after pay-audit was deleted: %s",
             got_names(&g, buf, sizeof(buf)));
  ack(x, &g, NULL);

  store_remove(F_OUTBOUND);
  store_changed();
  must_recv(ss.lds, 1, XDS_TYPE_LISTENER, PUSH_MS, &l, "outbound-http deleted");
  E2E_ASSERT(l.n == 0 && l.n_removed == 1 && got_removed(&l, L_OUT),
             "delta LDS after outbound-http was deleted: %s",
             got_names(&l, buf, sizeof(buf)));
  ack(ss.lds, &l, NULL);
  quiet(ss.ecds, 1, QUIET_MS, "a listener deletion (no ECDS change)");
  quiet(x, 1, 10, "a listener deletion");
  xds_stream_free(x);
  sess_close(&ss);
}
END_TEST

/* removed_resources when the proxy loses access (allowedIn no longer names
 * its tenant), and the resource back when access returns. */
START_TEST(delta_removed_when_access_lost) {
  static const char *const audit[] = {E_AUDIT, NULL};
  struct xds_stream *x;
  struct got l, e, g;
  struct sess ss;
  char buf[1024];

  delta_wild(&ss, _i, "delta-acl-1", &l, &e);
  x = open_stream(_i ? XDS_METHOD_DELTA_ECDS : XDS_METHOD_DELTA_ADS);
  delta_send(x, ss.node, XDS_TYPE_ECDS, NULL, audit, NULL, NULL, NULL);
  must_recv(x, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "explicit pay-audit");
  ack(x, &g, NULL);

  store_replace(F_AUDIT, "tenants/payments]", "tenants/web]");
  store_changed();
  must_recv(ss.lds, 1, XDS_TYPE_LISTENER, PUSH_MS, &l,
            "pay-audit moved to web");
  ack(ss.lds, &l, NULL);
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, PUSH_MS, &e, "pay-audit moved to web");
  E2E_ASSERT(e.n == 0 && e.n_removed == 1 && got_removed(&e, E_AUDIT),
             "wildcard delta ECDS after payments lost pay-audit: %s",
             got_names(&e, buf, sizeof(buf)));
  ack(ss.ecds, &e, NULL);
  must_recv(x, 1, XDS_TYPE_ECDS, PUSH_MS, &g, "pay-audit moved to web");
  E2E_ASSERT(g.n == 0 && got_removed(&g, E_AUDIT),
             "explicit delta ECDS after payments lost pay-audit: %s",
             got_names(&g, buf, sizeof(buf)));
  ack(x, &g, NULL);

  store_replace(F_AUDIT, "tenants/web]", "tenants/payments]");
  store_changed();
  must_recv(ss.lds, 1, XDS_TYPE_LISTENER, PUSH_MS, &l, "pay-audit back");
  ack(ss.lds, &l, NULL);
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, PUSH_MS, &e, "pay-audit back");
  E2E_ASSERT(e.n == 1 && got_has(&e, E_AUDIT) && e.n_removed == 0,
             "wildcard delta ECDS after pay-audit came back: %s",
             got_names(&e, buf, sizeof(buf)));
  ack(ss.ecds, &e, NULL);
  must_recv(x, 1, XDS_TYPE_ECDS, PUSH_MS, &g, "pay-audit back");
  E2E_ASSERT(g.n == 1 && got_has(&g, E_AUDIT),
             "explicit delta ECDS after pay-audit came back: %s",
             got_names(&g, buf, sizeof(buf)));
  ack(x, &g, NULL);
  xds_stream_free(x);
  sess_close(&ss);
}
END_TEST

/* system_version_info in every delta response (must_recv checks it), and
 * it moves with the content. */
START_TEST(delta_system_version_info) {
  struct got l, e, e2;
  struct sess ss;

  delta_wild(&ss, _i, "delta-svi-1", &l, &e);
  store_set_rev(F_SHARED, 1);
  store_changed();
  must_recv(ss.ecds, 1, XDS_TYPE_ECDS, PUSH_MS, &e2, "a config change");
  E2E_ASSERT(strcmp(e2.version, e.version) != 0,
             "system_version_info stayed '%s' across a change", e.version);
  E2E_ASSERT(e2.n == 1 && got_has(&e2, E_SHARED),
             "a change of shared-stats did not send just it");
  for (size_t i = 0; i < e.n; i++)
    if (strcmp(e.name[i], E_SHARED) == 0)
      E2E_ASSERT(strcmp(e.rver[i], e2.rver[0]) != 0,
                 "shared-stats kept its resource version across a change");
  ack(ss.ecds, &e2, NULL);
  sess_close(&ss);
}
END_TEST

/* A subscribed ECDS name that does not exist yet is remembered and sent
 * when it appears (SotW: "servers must remember requested names"; delta:
 * first said removed, then sent). Loop: 0 SotW ADS, 1 delta ADS. */
START_TEST(ecds_name_appears_later) {
  static const char *const late[] = {E_LATE, NULL};
  Envoy__Config__Core__V3__Node *node = node_new("late-1", TENANT_PAYMENTS);
  struct xds_stream *s =
      open_stream(_i ? XDS_METHOD_DELTA_ADS : XDS_METHOD_ADS);
  struct got g;
  char buf[1024];

  if (_i) {
    delta_send(s, node, XDS_TYPE_ECDS, NULL, late, NULL, NULL, NULL);
    must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribe late-authn");
    E2E_ASSERT(g.n == 0 && got_removed(&g, E_LATE),
               "delta subscribe to a missing name: %s",
               got_names(&g, buf, sizeof(buf)));
    ack(s, &g, NULL);
  } else {
    sotw_send(s, node, XDS_TYPE_ECDS, NULL, NULL, late, NULL);
  }
  quiet(s, _i, QUIET_MS, "subscribing a name that does not exist yet");
  store_add_extra("ext-late.yaml");
  store_changed();
  must_recv(s, _i, XDS_TYPE_ECDS, PUSH_MS, &g, "late-authn appearing");
  got_exactly(&g, late, "ECDS once late-authn exists");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

void protocol_add_delta(Suite *s) {
  TCase *tc = protocol_tcase(s, "delta", setup_default, teardown);

  tcase_add_loop_test(tc, delta_initial_resource_versions, 0, 2);
  tcase_add_loop_test(tc, delta_subscribe_unsubscribe, 0, 2);
  tcase_add_loop_test(tc, delta_wildcard, 0, 2);
  tcase_add_loop_test(tc, delta_removed_when_deleted, 0, 2);
  tcase_add_loop_test(tc, delta_removed_when_access_lost, 0, 2);
  tcase_add_loop_test(tc, delta_system_version_info, 0, 2);
  tcase_add_loop_test(tc, ecds_name_appears_later, 0, 2);
}
