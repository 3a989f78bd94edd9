/*
 * mtls.c: check_protocol, mutual TLS: certificates made with the openssl CLI; a
 * tenant's certificate gets only its tenant's extensions.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- mutual TLS -------------------------------------------------------- */

static char *g_ca_pem, *g_pay_key, *g_pay_crt, *g_web_key, *g_web_crt;

/* A CA, a server certificate for IP 127.0.0.1, and client certificates
 * for tenants payments and web (URI SAN spiffe://test/organizations/acme/
 * tenants/<t>), made with the openssl CLI; then the server with
 * --tls-cert/--tls-key/--tls-client-ca. */
static void setup_mtls(void) {
  static const struct tk_cert certs[] = {
      {"server", "IP:127.0.0.1", "serverAuth"},
      {"payments", "URI:spiffe://test/organizations/acme/tenants/payments",
       "clientAuth"},
      {"web", "URI:spiffe://test/organizations/acme/tenants/web",
       "clientAuth"}};
  static struct tk_pki pki; /* server_args point into it */
  char dir[300];

  setup_store();
  snprintf(dir, sizeof(dir), "%s/pki", g_tmp);
  tk_make_pki(&pki, dir, "wasmxds-e2e-ca", certs, 3);
  g_ca_pem = tk_read_in(dir, "ca.crt");
  g_pay_key = tk_read_in(dir, "payments.key");
  g_pay_crt = tk_read_in(dir, "payments.crt");
  g_web_key = tk_read_in(dir, "web.key");
  g_web_crt = tk_read_in(dir, "web.crt");
  start_server(pki.server_args);
}

static void teardown_mtls(void) {
  free(g_ca_pem);
  free(g_pay_key);
  free(g_pay_crt);
  free(g_web_key);
  free(g_web_crt);
  g_ca_pem = g_pay_key = g_pay_crt = g_web_key = g_web_crt = NULL;
  teardown();
}

static struct xds_client *tls_client(const char *key, const char *crt) {
  struct xds_client *c;
  int rc = xds_client_new_tls(server_proc_target(g_sp), g_ca_pem, key, crt,
                              NULL, &c);

  ck_assert_msg(rc == 0, "cannot create a TLS client: %s", xds_strerror(rc));
  return c;
}

static struct xds_stream *open_on(struct xds_client *c, const char *method) {
  struct xds_stream *s;
  int rc = xds_stream_open(c, method, &s);

  ck_assert_msg(rc == 0, "open %s: %s", method, rc_str(rc));
  return s;
}

/* Nothing of web-secret's config, and not its name, crossed the wire. */
static void assert_no_web_bytes(size_t allowed_fqn, const char *how) {
  E2E_ASSERT(wire_count(WEB_MARKER) == 0,
             "%s: web-secret's config (" WEB_MARKER ") reached a payments "
             "proxy",
             how);
  E2E_ASSERT(wire_count(E_WEB) <= allowed_fqn,
             "%s: the bytes received name %s %zu times (allowed: %zu, the "
             "echo of the proxy's own subscription in removed_resources)",
             how, E_WEB, wire_count(E_WEB), allowed_fqn);
}

/* A payments certificate cannot get web-secret by naming it in SotW ECDS
 * (with and without a tenant in its metadata); a web certificate can (the
 * control that shows the fixture would leak if the server let it). */
START_TEST(mtls_sotw_by_name) {
  static const char *const ask[] = {E_AUTHZ, E_WEB, NULL};
  static const char *const only_web[] = {E_WEB, NULL};
  static const char *const authz[] = {E_AUTHZ, NULL};
  struct xds_client *pay = tls_client(g_pay_key, g_pay_crt);
  Envoy__Config__Core__V3__Node *n1 = node_new("mtls-pay-1", TENANT_PAYMENTS);
  Envoy__Config__Core__V3__Node *n2 = node_new("mtls-pay-2", NULL);
  struct xds_stream *s;
  struct got g;

  /* With the tenant named in metadata too. */
  server_proc_log_mark(g_sp);
  s = open_on(pay, XDS_METHOD_ADS);
  sotw_send(s, n1, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  must_recv(s, 0, XDS_TYPE_LISTENER, ANSWER_MS, &g, "LDS over mTLS");
  got_exactly(&g, PAY_LISTENERS, "LDS over mTLS");
  for (size_t i = 0; i < g.n; i++)
    E2E_ASSERT(strcmp(g.body[i], PAY_CHAIN) == 0,
               "listener %s chain '%s' over mTLS", g.name[i], g.body[i]);
  ack(s, &g, NULL);
  sotw_send(s, n1, XDS_TYPE_ECDS, NULL, NULL, ask, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "ECDS naming web-secret");
  got_exactly(&g, authz, "ECDS [pay-authz, web-secret] for a payments cert");
  ack(s, &g, ask);
  quiet(s, 0, QUIET_MS, "naming web-secret");
  E2E_ASSERT(server_proc_wait_log(g_sp, "ECDS name " E_WEB " refused", 2000) ==
                 0,
             "the refused ECDS name was not logged");
  xds_stream_free(s);

  /* No tenant in metadata: the certificate's applies. */
  server_proc_log_mark(g_sp);
  s = open_on(pay, XDS_METHOD_ECDS);
  sotw_send(s, n2, XDS_TYPE_ECDS, NULL, NULL, only_web, NULL);
  quiet(s, 0, QUIET_MS, "naming only web-secret");
  E2E_ASSERT(server_proc_wait_log(g_sp, "ECDS name " E_WEB " refused", 2000) ==
                 0,
             "the refused ECDS name was not logged (second attempt)");
  xds_stream_free(s);
  assert_no_web_bytes(0, "SotW ECDS by name");
  xds_client_free(pay);

  /* Control: a web certificate does get it. */
  {
    struct xds_client *web = tls_client(g_web_key, g_web_crt);
    Envoy__Config__Core__V3__Node *nw = node_new("mtls-web-1", TENANT_WEB);

    s = open_on(web, XDS_METHOD_ECDS);
    sotw_send(s, nw, XDS_TYPE_ECDS, NULL, NULL, only_web, NULL);
    must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &g, "web cert, web-secret");
    got_exactly(&g, only_web, "ECDS web-secret for a web cert");
    E2E_ASSERT(strstr(g.body[0], WEB_MARKER) != NULL,
               "the control lacks the marker: %s", g.body[0]);
    xds_stream_free(s);
    xds_node_free(nw);
    xds_client_free(web);
  }
  xds_node_free(n1);
  xds_node_free(n2);
}
END_TEST

/* Node metadata claiming tenant web on a payments certificate: the stream
 * ends with PERMISSION_DENIED and a log line (SotW and delta). */
START_TEST(mtls_metadata_claim) {
  static const char *const only_web[] = {E_WEB, NULL};
  struct xds_client *pay = tls_client(g_pay_key, g_pay_crt);
  Envoy__Config__Core__V3__Node *liar = node_new("mtls-liar", TENANT_WEB);

  for (int delta = 0; delta < 2; delta++) {
    struct xds_stream *s =
        open_on(pay, delta ? XDS_METHOD_DELTA_ADS : XDS_METHOD_ADS);
    grpc_status_code code;
    char *details = NULL;
    uint8_t *data;
    size_t len;

    server_proc_log_mark(g_sp);
    if (delta)
      delta_send(s, liar, XDS_TYPE_ECDS, NULL, only_web, NULL, NULL, NULL);
    else
      sotw_send(s, liar, XDS_TYPE_ECDS, NULL, NULL, only_web, NULL);
    code = must_status(s, 3000, &details, "claiming tenant web");
    E2E_ASSERT(code == GRPC_STATUS_PERMISSION_DENIED,
               "%s: claiming tenant web with a payments certificate ended "
               "with status %d (%s), want PERMISSION_DENIED",
               delta ? "delta" : "SotW", (int)code, details);
    free(details);
    while (xds_stream_recv_raw(s, 0, &data, &len) == 0) {
      wire_add(data, len);
      free(data);
    }
    E2E_ASSERT(xds_stream_msgs_received(s) == 0,
               "%s: the refused stream received %llu messages",
               delta ? "delta" : "SotW",
               (unsigned long long)xds_stream_msgs_received(s));
    E2E_ASSERT(server_proc_wait_log(g_sp, "node mtls-liar from", 2000) == 0 &&
                   server_proc_wait_log(g_sp, "metadata claims", 10) == 0,
               "%s: the refused claim was not logged",
               delta ? "delta" : "SotW");
    xds_stream_free(s);
  }
  assert_no_web_bytes(0, "a tenant claim in metadata");
  xds_node_free(liar);
  xds_client_free(pay);
}
END_TEST

/* Delta with an explicit subscribe to web-secret, and with "*", on a
 * payments certificate: never a web-secret resource. */
START_TEST(mtls_delta_subscribe) {
  static const char *const ask[] = {E_WEB, NULL};
  static const char *const star[] = {"*", NULL};
  struct xds_client *pay = tls_client(g_pay_key, g_pay_crt);
  Envoy__Config__Core__V3__Node *node =
      node_new("mtls-delta-1", TENANT_PAYMENTS);
  struct xds_stream *s;
  size_t echoes = 0;
  struct got g;
  int rc;

  server_proc_log_mark(g_sp);
  s = open_on(pay, XDS_METHOD_DELTA_ECDS);
  delta_send(s, node, XDS_TYPE_ECDS, NULL, ask, NULL, NULL, NULL);
  /* Either nothing, or an answer that names it removed (does not exist
   * for this proxy): never as a resource. */
  while ((rc = recv_got(s, 1, QUIET_MS, &g)) == 0) {
    E2E_ASSERT(!got_has(&g, E_WEB), "delta subscribe: web-secret was sent "
                                    "to a payments certificate");
    echoes += got_removed(&g, E_WEB);
    ack(s, &g, NULL);
  }
  E2E_ASSERT(rc == XDS_CLIENT_ETIMEDOUT, "delta subscribe: %s", rc_str(rc));
  E2E_ASSERT(server_proc_wait_log(g_sp, "ECDS name " E_WEB " refused", 2000) ==
                 0,
             "the refused delta subscription was not logged");
  /* "*" then: the payments configs only. */
  delta_send(s, NULL, XDS_TYPE_ECDS, NULL, star, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_ECDS, ANSWER_MS, &g, "delta \"*\"");
  got_exactly(&g, PAY_EXTS, "delta ECDS \"*\" on a payments certificate");
  echoes += got_removed(&g, E_WEB);
  assert_no_web_bytes(echoes, "delta ECDS subscribe");
  xds_stream_free(s);
  xds_node_free(node);
  xds_client_free(pay);
}
END_TEST

/* A client without a certificate (and a plaintext one) cannot connect. */
START_TEST(mtls_no_client_cert) {
  struct xds_client *anon = tls_client(NULL, NULL), *plain = NULL;
  struct xds_client *clients[2];
  int rc;

  rc = xds_client_new(server_proc_target(g_sp), NULL, &plain);
  ck_assert_int_eq(rc, 0);
  clients[0] = anon;
  clients[1] = plain;
  for (int k = 0; k < 2; k++) {
    struct xds_stream *s = open_on(clients[k], XDS_METHOD_ADS);
    grpc_status_code code;
    char *details = NULL;
    uint8_t *data;
    size_t len;

    (void)xds_stream_send_raw(s, "", 0, 2000);
    rc = xds_stream_recv_raw(s, 3000, &data, &len);
    E2E_ASSERT(rc == XDS_CLIENT_EEOF,
               "%s: a stream without a client certificate %s",
               k ? "plaintext" : "TLS without a certificate",
               rc == 0 ? "received a message" : rc_str(rc));
    code = must_status(s, 3000, &details, "no client certificate");
    E2E_ASSERT(code != GRPC_STATUS_OK, "no certificate: status OK");
    free(details);
    E2E_ASSERT(xds_client_bytes_received(clients[k]) == 0,
               "a client without a certificate received bytes");
    xds_stream_free(s);
  }
  xds_client_free(anon);
  xds_client_free(plain);
}
END_TEST

void protocol_add_mtls(Suite *s) {
  TCase *tc = protocol_tcase(s, "mtls", setup_mtls, teardown_mtls);

  tcase_add_test(tc, mtls_sotw_by_name);
  tcase_add_test(tc, mtls_metadata_claim);
  tcase_add_test(tc, mtls_delta_subscribe);
  tcase_add_test(tc, mtls_no_client_cert);
}
