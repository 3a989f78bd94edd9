/*
 * sotw.c: check_protocol, SotW semantics: wildcard LDS, ECDS following the
 * subscription, versions and nonces, stale nonces, ACKs, NACKs, a node that
 * changes.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- SotW -------------------------------------------------------------- */

/* Loop index: 0 ADS, 1 the standalone service of the type under test. */

/* LDS is wildcard and every response is the full set: adding a listener
 * sends all three, removing it sends the two again (same version as the
 * first time: the version is a hash of the content). */
START_TEST(sotw_lds_wildcard_full_set) {
  static const char *const three[] = {L_IN, L_OUT, L_EXTRA, NULL};
  static const char *const star[] = {"*", NULL};
  const char *method = _i ? XDS_METHOD_LDS : XDS_METHOD_ADS;
  Envoy__Config__Core__V3__Node *node = node_new("sotw-lds-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(method), *s2;
  struct got g, g2, g3;

  /* An empty first request is the legacy wildcard. */
  sotw_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  must_recv(s, 0, XDS_TYPE_LISTENER, ANSWER_MS, &g, "LDS wildcard");
  got_exactly(&g, PAY_LISTENERS, "the first LDS response");
  for (size_t i = 0; i < g.n; i++)
    E2E_ASSERT(strcmp(g.body[i], PAY_CHAIN) == 0,
               "listener %s has the chain '%s', want '%s'", g.name[i],
               g.body[i], PAY_CHAIN);
  ack(s, &g, NULL);
  quiet(s, 0, QUIET_MS, "the LDS ACK");

  store_add_extra("tmpl-extra.yaml");
  store_changed();
  must_recv(s, 0, XDS_TYPE_LISTENER, PUSH_MS, &g2, "a listener added");
  got_exactly(&g2, three, "LDS after a listener was added (full state)");
  E2E_ASSERT(strcmp(g2.version, g.version) != 0,
             "the LDS version did not change with the content");
  ack(s, &g2, NULL);

  store_remove("tmpl-extra.yaml");
  store_changed();
  must_recv(s, 0, XDS_TYPE_LISTENER, PUSH_MS, &g3, "a listener removed");
  got_exactly(&g3, PAY_LISTENERS, "LDS after a listener was removed");
  E2E_ASSERT(strcmp(g3.version, g.version) == 0,
             "the same listeners came with version '%s', first '%s'",
             g3.version, g.version);
  ack(s, &g3, NULL);
  quiet(s, 0, QUIET_MS, "the LDS ACK");

  /* An explicit "*" gets the same full set. */
  s2 = open_stream(method);
  sotw_send(s2, node, XDS_TYPE_LISTENER, NULL, NULL, star, NULL);
  must_recv(s2, 0, XDS_TYPE_LISTENER, ANSWER_MS, &g, "LDS \"*\"");
  got_exactly(&g, PAY_LISTENERS, "LDS with \"*\"");
  xds_stream_free(s2);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* ECDS by name follows subscribe and unsubscribe: a name added arrives
 * (even when unchanged and sent before), a name dropped needs no response
 * and is not pushed while unsubscribed. */
START_TEST(sotw_ecds_follows_subscription) {
  static const char *const one[] = {E_AUTHZ, NULL};
  static const char *const two[] = {E_AUTHZ, E_SHARED, NULL};
  static const char *const shared[] = {E_SHARED, NULL};
  const char *method = _i ? XDS_METHOD_ECDS : XDS_METHOD_ADS;
  Envoy__Config__Core__V3__Node *node =
      node_new("sotw-ecds-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(method);
  struct got g;
  int at;

  sotw_send(s, node, XDS_TYPE_ECDS, NULL, NULL, one, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "ECDS [pay-authz]");
  got_exactly(&g, one, "ECDS for [pay-authz]");
  ack(s, &g, one);
  quiet(s, 0, QUIET_MS, "the ECDS ACK");

  /* Subscribe: the added name arrives; nothing unrequested. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g.version, g.nonce, two, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "adding shared-stats");
  E2E_ASSERT(got_has(&g, E_SHARED), "the added name shared-stats was not sent");
  for (size_t i = 0; i < g.n; i++)
    E2E_ASSERT(strcmp(g.name[i], E_AUTHZ) == 0 ||
                   strcmp(g.name[i], E_SHARED) == 0,
               "ECDS sent %s, which is not subscribed", g.name[i]);
  ack(s, &g, two);
  quiet(s, 0, QUIET_MS, "the ECDS ACK");

  /* Unsubscribe: no response needed. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g.version, g.nonce, one, NULL);
  quiet(s, 0, QUIET_MS, "unsubscribing shared-stats");

  /* Subscribe again: sent again although unchanged and sent before. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g.version, g.nonce, two, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g,
            "re-adding the unchanged shared-stats");
  E2E_ASSERT(got_has(&g, E_SHARED),
             "re-subscribing the unchanged shared-stats did not resend it");
  ack(s, &g, two);

  /* Drop it, change it: nothing while it is not subscribed. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g.version, g.nonce, one, NULL);
  quiet(s, 0, QUIET_MS, "unsubscribing shared-stats again");
  store_set_rev(F_SHARED, 1);
  store_changed();
  quiet(s, 0, QUIET_MS, "a change of an unsubscribed config");

  /* Only shared-stats subscribed now (pay-authz dropped): its new config. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g.version, g.nonce, shared, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribing shared-stats");
  got_exactly(&g, shared, "ECDS for [shared-stats]");
  at = got_find(&g, E_SHARED);
  E2E_ASSERT(strstr(g.body[at], "\"rev\":1") != NULL,
             "shared-stats came with the old config %s", g.body[at]);
  ack(s, &g, shared);
  quiet(s, 0, QUIET_MS, "the ECDS ACK");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* version_info and nonce: present in every response, a new nonce each
 * time, and the version a hash of the content (two streams of one class
 * see the same versions; a config change changes the ECDS version). */
START_TEST(sotw_version_and_nonce) {
  Envoy__Config__Core__V3__Node *n1 = node_new("sotw-ver-1", TENANT_PAYMENTS);
  Envoy__Config__Core__V3__Node *n2 = node_new("sotw-ver-2", TENANT_PAYMENTS);
  struct xds_stream *s1 = open_stream(_i ? XDS_METHOD_ECDS : XDS_METHOD_ADS);
  struct xds_stream *s2 = open_stream(_i ? XDS_METHOD_ECDS : XDS_METHOD_ADS);
  struct got a, b, c;

  sotw_send(s1, n1, XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
  must_recv(s1, 0, XDS_TYPE_ECDS, ANSWER_MS, &a, "ECDS on stream 1");
  sotw_send(s2, n2, XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
  must_recv(s2, 0, XDS_TYPE_ECDS, ANSWER_MS, &b, "ECDS on stream 2");
  got_exactly(&a, PAY_EXTS, "ECDS");
  E2E_ASSERT(strcmp(a.version, b.version) == 0,
             "the same content has versions '%s' and '%s' on two streams",
             a.version, b.version);
  ack(s1, &a, PAY_EXTS);

  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(s1, 0, XDS_TYPE_ECDS, PUSH_MS, &c, "a config change");
  E2E_ASSERT(strcmp(c.version, a.version) != 0,
             "a config change kept the ECDS version '%s'", a.version);
  E2E_ASSERT(strcmp(c.nonce, a.nonce) != 0, "the nonce '%s' was reused",
             a.nonce);
  xds_stream_free(s1);
  xds_stream_free(s2);
  xds_node_free(n1);
  xds_node_free(n2);
}
END_TEST

/* A request whose nonce is not the latest is ignored: its names do not
 * change the subscription. */
START_TEST(sotw_stale_nonce_ignored) {
  static const char *const one[] = {E_AUTHZ, NULL};
  static const char *const two[] = {E_AUTHZ, E_SHARED, NULL};
  static const char *const other[] = {E_AUTHZ, E_AUDIT, NULL};
  Envoy__Config__Core__V3__Node *node =
      node_new("sotw-stale-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(_i ? XDS_METHOD_ECDS : XDS_METHOD_ADS);
  struct got g1, g2, g3;

  sotw_send(s, node, XDS_TYPE_ECDS, NULL, NULL, one, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g1, "ECDS [pay-authz]");
  ack(s, &g1, one);
  sotw_send(s, NULL, XDS_TYPE_ECDS, g1.version, g1.nonce, two, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g2, "adding shared-stats");
  ack(s, &g2, two);
  quiet(s, 0, QUIET_MS, "the ECDS ACK");

  /* The old nonce with other names: ignored, so pay-audit is not sent. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g1.version, g1.nonce, other, NULL);
  quiet(s, 0, QUIET_MS, "a request with a stale nonce naming pay-audit");
  /* Had it been applied, shared-stats would now count as newly added. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g2.version, g2.nonce, two, NULL);
  quiet(s, 0, QUIET_MS, "repeating the current subscription");
  /* The stream still works with the latest nonce. */
  sotw_send(s, NULL, XDS_TYPE_ECDS, g2.version, g2.nonce, PAY_EXTS, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g3, "adding pay-audit");
  E2E_ASSERT(got_has(&g3, E_AUDIT) && !got_has(&g3, E_SHARED),
             "adding pay-audit with the latest nonce did not send just it");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* An ACK never triggers a resend (loop: 0 ADS, 1 LDS, 2 ECDS service). */
START_TEST(sotw_ack_never_resends) {
  Envoy__Config__Core__V3__Node *node = node_new("sotw-ack-1", TENANT_PAYMENTS);
  const char *methods[] = {XDS_METHOD_ADS, XDS_METHOD_LDS, XDS_METHOD_ECDS};
  struct xds_stream *s = open_stream(methods[_i]);
  struct got g;

  if (_i != 2) {
    sotw_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
    must_recv(s, 0, XDS_TYPE_LISTENER, ANSWER_MS, &g, "LDS");
    ack(s, &g, NULL);
    quiet(s, 0, QUIET_MS, "an LDS ACK");
    ack(s, &g, NULL);
    quiet(s, 0, QUIET_MS, "a repeated LDS ACK");
  }
  if (_i != 1) {
    sotw_send(s, node, XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
    must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "ECDS");
    ack(s, &g, PAY_EXTS);
    quiet(s, 0, QUIET_MS, "an ECDS ACK");
    ack(s, &g, PAY_EXTS);
    quiet(s, 0, QUIET_MS, "a repeated ECDS ACK");
    /* And after a push. */
    store_set_rev(F_AUDIT, 1);
    store_changed();
    must_recv(s, 0, XDS_TYPE_ECDS, PUSH_MS, &g, "a config change");
    ack(s, &g, PAY_EXTS);
    quiet(s, 0, QUIET_MS, "the ACK of a push");
  } else {
    store_add_extra("tmpl-extra.yaml");
    store_changed();
    must_recv(s, 0, XDS_TYPE_LISTENER, PUSH_MS, &g, "a listener added");
    ack(s, &g, NULL);
    quiet(s, 0, QUIET_MS, "the ACK of a push");
  }
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* A NACK is logged with the node id and the error, the rejected version is
 * not resent, and the next real change is sent (loop: 0 ECDS on ADS, 1 ECDS
 * service, 2 LDS service). */
START_TEST(sotw_nack) {
  const char *methods[] = {XDS_METHOD_ADS, XDS_METHOD_ECDS, XDS_METHOD_LDS};
  const char *type = _i == 2 ? XDS_TYPE_LISTENER : XDS_TYPE_ECDS;
  const char *const *names = _i == 2 ? NULL : PAY_EXTS;
  char node_id[32], err[96], *line = NULL;
  Envoy__Config__Core__V3__Node *node;
  struct xds_stream *s = open_stream(methods[_i]);
  struct got good, bad, next;
  int rc;

  snprintf(node_id, sizeof(node_id), "sotw-nack-%d", _i);
  snprintf(err, sizeof(err), "e2e-nack-%d-%ld: the plugin failed to load", _i,
           (long)getpid());
  node = node_new(node_id, TENANT_PAYMENTS);
  sotw_send(s, node, type, NULL, NULL, names, NULL);
  must_recv(s, 0, type, ANSWER_MS, &good, "the first response");
  ack(s, &good, names);

  if (_i == 2)
    store_add_extra("tmpl-extra.yaml");
  else
    store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(s, 0, type, PUSH_MS, &bad, "a change");
  server_proc_log_mark(g_sp);
  nack(s, &bad, good.version, names, err);
  rc = server_proc_wait_log_line(g_sp, err, 3000, &line);
  E2E_ASSERT(rc == 0, "the NACK was not logged with its error message");
  E2E_ASSERT(strstr(line, node_id) != NULL,
             "the NACK log line lacks the node id %s: %s", node_id, line);
  free(line);
  quiet(s, 0, QUIET_MS * 2, "a NACK (the rejected version was resent)");

  /* The next real change is sent. */
  if (_i == 2)
    store_remove("tmpl-extra.yaml");
  else
    store_set_rev(F_AUTHZ, 2);
  store_changed();
  must_recv(s, 0, type, PUSH_MS, &next, "the change after a NACK");
  E2E_ASSERT(strcmp(next.version, bad.version) != 0,
             "after the NACK the rejected version '%s' came again",
             bad.version);
  if (_i == 2) {
    got_exactly(&next, PAY_LISTENERS, "LDS after the NACK");
  } else {
    int at = got_find(&next, E_AUTHZ);
    E2E_ASSERT(at >= 0 && strstr(next.body[at], "\"rev\":2") != NULL,
               "the change after the NACK lacks pay-authz rev 2");
  }
  ack(s, &next, names);
  quiet(s, 0, QUIET_MS, "the ACK after a NACK");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* A later request whose node is another identity ends the stream with
 * INVALID_ARGUMENT (loop: 0 SotW ADS, 1 delta ADS; streams change the id,
 * the tenant). */
START_TEST(node_change_refused) {
  int delta = _i;
  Envoy__Config__Core__V3__Node *a = node_new("node-a", TENANT_PAYMENTS);
  Envoy__Config__Core__V3__Node *other[2];
  const char *what[2] = {"another node id", "another tenant"};

  other[0] = node_new("node-b", TENANT_PAYMENTS);
  other[1] = node_new("node-a", TENANT_WEB);
  for (int k = 0; k < 2; k++) {
    struct xds_stream *s =
        open_stream(delta ? XDS_METHOD_DELTA_ADS : XDS_METHOD_ADS);
    grpc_status_code code;
    char *details = NULL;
    struct got g;

    server_proc_log_mark(g_sp);
    if (delta)
      delta_send(s, a, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL, NULL);
    else
      sotw_send(s, a, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
    must_recv(s, delta, XDS_TYPE_LISTENER, ANSWER_MS, &g, "LDS");
    if (delta)
      delta_send(s, other[k], XDS_TYPE_ECDS, NULL, PAY_EXTS, NULL, NULL, NULL);
    else
      sotw_send(s, other[k], XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
    code = must_status(s, 3000, &details, what[k]);
    E2E_ASSERT(code == GRPC_STATUS_INVALID_ARGUMENT,
               "%s in a later request: status %d (%s), want INVALID_ARGUMENT",
               what[k], (int)code, details);
    free(details);
    E2E_ASSERT(server_proc_wait_log(g_sp, "changed the node identity", 2000) ==
                   0,
               "%s: the refusal was not logged", what[k]);
    xds_stream_free(s);
  }
  xds_node_free(a);
  xds_node_free(other[0]);
  xds_node_free(other[1]);
}
END_TEST

/* Requests as other gRPC clients send them: compressed (gzip, the
 * channel's default algorithm, so every request message is compressed)
 * and with the node in every request (Envoy's default). The server reads
 * each (the ACKs through its fast path when the node is byte for byte the
 * one accepted), answers nothing to an ACK, and still pushes. Loop: 0 ADS
 * SotW, 1 ADS delta. */
START_TEST(requests_compressed_with_node_every_time) {
  Envoy__Config__Core__V3__Node *node =
      node_new(_i ? "gzip-delta-1" : "gzip-sotw-1", TENANT_PAYMENTS);
  struct xds_client *c = NULL;
  struct xds_stream *s = NULL;
  struct got g;
  int rc;

  rc = xds_client_new_compressing(server_proc_target(g_sp), GRPC_COMPRESS_GZIP,
                                  &c);
  ck_assert_msg(rc == 0, "gzip client: %s", rc_str(rc));
  rc = xds_stream_open(c, _i ? XDS_METHOD_DELTA_ADS : XDS_METHOD_ADS, &s);
  ck_assert_msg(rc == 0, "open: %s", rc_str(rc));

  if (_i) {
    delta_send(s, node, XDS_TYPE_ECDS, NULL, PAY_EXTS, NULL, NULL, NULL);
    must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "compressed delta ECDS");
    got_exactly(&g, PAY_EXTS, "delta ECDS to a compressed request");
    delta_send(s, node, XDS_TYPE_ECDS, g.nonce, NULL, NULL, NULL, NULL);
    quiet(s, 1, QUIET_MS, "a compressed delta ACK with the node");
    delta_send(s, node, XDS_TYPE_ECDS, g.nonce, NULL, NULL, NULL, NULL);
    quiet(s, 1, QUIET_MS, "a repeated compressed delta ACK with the node");
  } else {
    sotw_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
    must_recv(s, 0, XDS_TYPE_LISTENER, ANSWER_MS, &g, "compressed LDS");
    got_exactly(&g, PAY_LISTENERS, "LDS to a compressed request");
    sotw_send(s, node, XDS_TYPE_LISTENER, g.version, g.nonce, NULL, NULL);
    quiet(s, 0, QUIET_MS, "a compressed LDS ACK with the node");
    sotw_send(s, node, XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
    must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "compressed ECDS");
    got_exactly(&g, PAY_EXTS, "ECDS to a compressed request");
    sotw_send(s, node, XDS_TYPE_ECDS, g.version, g.nonce, PAY_EXTS, NULL);
    quiet(s, 0, QUIET_MS, "a compressed ECDS ACK with the node");
    sotw_send(s, node, XDS_TYPE_ECDS, g.version, g.nonce, PAY_EXTS, NULL);
    quiet(s, 0, QUIET_MS, "a repeated compressed ECDS ACK with the node");
  }
  /* A push still comes, and its ACK (compressed, with the node) ends it. */
  store_set_rev(F_AUDIT, 1);
  store_changed();
  must_recv(s, _i, XDS_TYPE_ECDS, PUSH_MS, &g, "a push to a gzip client");
  if (_i)
    delta_send(s, node, XDS_TYPE_ECDS, g.nonce, NULL, NULL, NULL, NULL);
  else
    sotw_send(s, node, XDS_TYPE_ECDS, g.version, g.nonce, PAY_EXTS, NULL);
  quiet(s, _i, QUIET_MS, "the compressed ACK of a push");
  xds_stream_free(s);
  xds_client_free(c);
  xds_node_free(node);
}
END_TEST

void protocol_add_sotw(Suite *s) {
  TCase *tc = protocol_tcase(s, "sotw", setup_default, teardown);

  tcase_add_loop_test(tc, sotw_lds_wildcard_full_set, 0, 2);
  tcase_add_loop_test(tc, sotw_ecds_follows_subscription, 0, 2);
  tcase_add_loop_test(tc, sotw_version_and_nonce, 0, 2);
  tcase_add_loop_test(tc, sotw_stale_nonce_ignored, 0, 2);
  tcase_add_loop_test(tc, sotw_ack_never_resends, 0, 3);
  tcase_add_loop_test(tc, sotw_nack, 0, 3);
  tcase_add_loop_test(tc, node_change_refused, 0, 2);
  tcase_add_loop_test(tc, requests_compressed_with_node_every_time, 0, 2);
}
