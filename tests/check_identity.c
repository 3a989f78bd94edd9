/*
 * check_identity.c: end-to-end tests of who a proxy is and of the server's
 * edges (issues 13 and 14): forged proxy classes, identity strings outside
 * the grammar, NUL bytes in requests, identity from a client certificate
 * alone, gRPC's own log lines, a second server on a taken port, and a
 * bounded shutdown when peers do not read.
 *
 * Each test starts the real wasmxds ($WASMXDS_BIN) on a free loopback port
 * on a store written here into a private temporary directory, and talks to
 * it with the gRPC C core client of tests/e2e/xds_client.h. Requests that
 * protobuf-c cannot express (strings holding NUL bytes) are encoded by hand
 * with server/pb/wire.h. Certificates are made with the openssl CLI.
 *
 * Usage: check_identity. CK_TIMEOUT_MULTIPLIER scales the per-test limits;
 * CK_RUN_CASE / CK_RUN_SUITE select tests as in every Check program.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "server/pb/wire.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#define ANSWER_MS 5000
#define QUIET_MS 400
#define TEST_TIMEOUT_S 40

#define TENANT_PAYMENTS "organizations/acme/tenants/payments"
#define E_JWT "organizations/acme/extensions/jwt-authn"
#define PAY_MARKER "PAY-PLUGIN-CONFIG-7c1e"

/* The store: a template named GATEWAY (inbound, sidecars only), an
 * outbound template for every proxy, and payments' AUTHN plugin. Template
 * names are chosen so that, under the old "\n"-joined class key, a proxy
 * claiming tenant "organizations/acme/tenants/payments\nSIDECAR" in
 * GATEWAY mode got the same key as a real payments sidecar. */
static const char tmpl_gateway[] =
    "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: GATEWAY}\nspec:\n  address: 0.0.0.0\n  port: 15006\n"
    "  direction: INBOUND\n  selector: {mode: SIDECAR}\n"
    "  route: {cluster: local_app}\n  httpFilters:\n"
    "  - name: envoy.filters.http.router\n    typedConfig: {\"@type\": "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n";
static const char tmpl_outbound[] =
    "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: outbound}\nspec:\n  address: 0.0.0.0\n  port: 15001\n"
    "  direction: OUTBOUND\n  route: {cluster: upstream}\n  httpFilters:\n"
    "  - name: envoy.filters.http.router\n    typedConfig: {\"@type\": "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n";
static const char ext_jwt[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: jwt-authn}\n"
    "spec:\n  url: file:///etc/envoy/wasm/jwt-authn.wasm\n  phase: AUTHN\n"
    "  allowedIn: [organizations/acme/tenants/payments]\n"
    "  config: {issuer: payments, marker: " PAY_MARKER "}\n";

/* ---- fixture ----------------------------------------------------------- */

static char g_base[64];
static char g_tmp[128];
static char g_store[160];
static struct server_proc *g_sp;
static struct xds_client *g_client;

/* The server E2E_FAIL dumps the log of (tests/testkit.h). */
#define E2E_SERVER g_sp

static void store_put(const char *name, const char *text) {
  char path[320];

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  tk_write_file(path, text, strlen(text));
}

/* A fresh test directory with the store above in it. */
static void setup_store(void) {
  snprintf(g_tmp, sizeof(g_tmp), "%s/t-XXXXXX", g_base);
  ck_assert_msg(mkdtemp(g_tmp) != NULL, "mkdtemp: %s", strerror(errno));
  snprintf(g_store, sizeof(g_store), "%s/store", g_tmp);
  ck_assert_int_eq(mkdir(g_store, 0700), 0);
  store_put("tmpl-a-gateway.yaml", tmpl_gateway);
  store_put("tmpl-b-outbound.yaml", tmpl_outbound);
  store_put("ext-jwt.yaml", ext_jwt);
}

static void start_server(const char *const *args) {
  int rc = server_proc_start(g_store, args, &g_sp);

  ck_assert_msg(rc == 0, "cannot start wasmxds: %s", xds_strerror(rc));
  E2E_ASSERT(server_proc_wait_log(g_sp, "serving xDS on", 5000) == 0,
             "the server did not say it serves");
}

static void start_plain(const char *const *args) {
  int rc;

  start_server(args);
  rc = xds_client_new(server_proc_target(g_sp), NULL, &g_client);
  ck_assert_msg(rc == 0, "cannot create a client: %s", xds_strerror(rc));
}

static void setup(void) {
  setup_store();
}

static void teardown(void) {
  int ws = 0;

  xds_client_free(g_client);
  g_client = NULL;
  if (g_sp != NULL) {
    (void)server_proc_stop(g_sp, &ws);
    server_proc_free(g_sp);
    g_sp = NULL;
  }
  if (g_tmp[0] != '\0')
    tk_rm_tree(g_tmp);
  g_tmp[0] = '\0';
}

/* ---- requests and answers ---------------------------------------------- */

static struct xds_stream *open_on(struct xds_client *c, const char *method) {
  struct xds_stream *s;
  int rc = xds_stream_open(c, method, &s);

  ck_assert_msg(rc == 0, "open %s: %s", method, xds_client_strerror(rc));
  return s;
}

/* A node with id, tenant (nullable) and mode (nullable). */
static Envoy__Config__Core__V3__Node *
node_new(const char *id, const char *tenant, const char *mode) {
  const char *meta[6];
  size_t n = 0;
  Envoy__Config__Core__V3__Node *node;

  if (tenant != NULL) {
    meta[n++] = "wasmxds.tenant";
    meta[n++] = tenant;
  }
  if (mode != NULL) {
    meta[n++] = "wasmxds.mode";
    meta[n++] = mode;
  }
  meta[n] = NULL;
  node = xds_node_new(id, "e2e", meta, NULL);
  ck_assert_ptr_nonnull(node);
  return node;
}

static void sotw_send(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                      const char *type_url, const char *const *names) {
  size_t n = 0;
  int rc;

  while (names != NULL && names[n] != NULL)
    n++;
  rc = xds_stream_send_sotw(s, node, type_url, NULL, NULL, (char **)names, n,
                            NULL, ANSWER_MS);
  E2E_ASSERT(rc == 0, "send %s request: %s", type_url, xds_client_strerror(rc));
}

/* What one stream got: the bytes of its first response (NULL if none) and
 * its status if it ended. */
struct outcome {
  uint8_t *data;
  size_t len;
  size_t n_resources;
  int ended;
  grpc_status_code code;
  char *details;
};

static void outcome_free(struct outcome *o) {
  free(o->data);
  free(o->details);
  memset(o, 0, sizeof(*o));
}

/* Waits for the first response or the end of the stream. */
static void wait_outcome(struct xds_stream *s, struct outcome *o) {
  int rc;

  memset(o, 0, sizeof(*o));
  rc = xds_stream_recv_raw(s, ANSWER_MS, &o->data, &o->len);
  if (rc == 0) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, o->len,
                                                                  o->data);
    E2E_ASSERT(r != NULL, "a response that does not decode");
    o->n_resources = r->n_resources;
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    return;
  }
  E2E_ASSERT(rc == XDS_CLIENT_EEOF, "no answer: %s", xds_client_strerror(rc));
  rc = xds_stream_wait_status(s, ANSWER_MS, &o->code, &o->details);
  E2E_ASSERT(rc == 0, "no status after the end: %s", xds_client_strerror(rc));
  o->ended = 1;
}

static size_t count_in(const uint8_t *p, size_t len, const char *s) {
  size_t n = 0, sl = strlen(s);
  const uint8_t *end = p + len;

  while (p != NULL && p < end) {
    p = memmem(p, (size_t)(end - p), s, sl);
    if (p != NULL) {
      n++;
      p += sl;
    }
  }
  return n;
}

/* The stream must end with INVALID_ARGUMENT and no message. */
static void expect_invalid(struct xds_stream *s, const char *what) {
  struct outcome o;

  wait_outcome(s, &o);
  E2E_ASSERT(o.data == NULL, "%s: the server answered (%zu resources)", what,
             o.n_resources);
  E2E_ASSERT(o.ended && o.code == GRPC_STATUS_INVALID_ARGUMENT,
             "%s: the stream ended with status %d (%s), want "
             "INVALID_ARGUMENT",
             what, (int)o.code, o.details != NULL ? o.details : "");
  outcome_free(&o);
}

/* A payments sidecar gets both listeners, each running jwt-authn. */
static void expect_payments_view(const struct outcome *o, const char *what) {
  E2E_ASSERT(o->data != NULL, "%s: no LDS response (status %d %s)", what,
             (int)o->code, o->details != NULL ? o->details : "");
  E2E_ASSERT(o->n_resources == 2, "%s: %zu listeners, want 2", what,
             o->n_resources);
  E2E_ASSERT(count_in(o->data, o->len, E_JWT) >= 2,
             "%s: the listeners do not both run " E_JWT, what);
}

/* ---- A: forged classes ------------------------------------------------- */

#define FORGED_TENANT TENANT_PAYMENTS "\nSIDECAR"

/* The attacker connects first: the real payments sidecar still gets its
 * own listeners with its AUTHN plugin; the attacker is refused. */
START_TEST(forged_class_attacker_first) {
  Envoy__Config__Core__V3__Node *evil =
      node_new("evil-1", FORGED_TENANT, "GATEWAY");
  Envoy__Config__Core__V3__Node *pay = node_new("pay-1", TENANT_PAYMENTS, NULL);
  struct xds_stream *a, *v;
  struct outcome o;

  struct outcome ao;

  start_plain(NULL);
  server_proc_log_mark(g_sp);
  a = open_on(g_client, XDS_METHOD_ADS);
  sotw_send(a, evil, XDS_TYPE_LISTENER, NULL);
  wait_outcome(a, &ao);
  v = open_on(g_client, XDS_METHOD_ADS);
  sotw_send(v, pay, XDS_TYPE_LISTENER, NULL);
  wait_outcome(v, &o);
  expect_payments_view(&o, "payments sidecar after the forger");
  outcome_free(&o);
  E2E_ASSERT(ao.data == NULL && ao.ended &&
                 ao.code == GRPC_STATUS_INVALID_ARGUMENT,
             "the forger was not refused with INVALID_ARGUMENT (status %d)",
             (int)ao.code);
  outcome_free(&ao);
  E2E_ASSERT(server_proc_wait_log(g_sp, "payments\\nSIDECAR", 2000) == 0,
             "the refusal was not logged with the tenant escaped");
  xds_stream_free(a);
  xds_stream_free(v);
  xds_node_free(evil);
  xds_node_free(pay);
}
END_TEST

/* The attacker connects second, with the configuration inline in the
 * listeners: it never receives the payments plugin's configuration. */
START_TEST(forged_class_attacker_second) {
  static const char *const args[] = {"--inline-wasm", NULL};
  Envoy__Config__Core__V3__Node *evil =
      node_new("evil-2", FORGED_TENANT, "GATEWAY");
  Envoy__Config__Core__V3__Node *pay = node_new("pay-2", TENANT_PAYMENTS, NULL);
  struct xds_stream *a, *v;
  struct outcome o;

  start_plain(args);
  v = open_on(g_client, XDS_METHOD_ADS);
  sotw_send(v, pay, XDS_TYPE_LISTENER, NULL);
  wait_outcome(v, &o);
  expect_payments_view(&o, "payments sidecar");
  E2E_ASSERT(count_in(o.data, o.len, PAY_MARKER) > 0,
             "control: the inline config lacks the marker");
  outcome_free(&o);
  a = open_on(g_client, XDS_METHOD_ADS);
  sotw_send(a, evil, XDS_TYPE_LISTENER, NULL);
  wait_outcome(a, &o);
  E2E_ASSERT(o.data == NULL || count_in(o.data, o.len, PAY_MARKER) == 0,
             "the forger received the payments plugin configuration");
  E2E_ASSERT(o.ended && o.code == GRPC_STATUS_INVALID_ARGUMENT,
             "the forger's stream ended with %d, want INVALID_ARGUMENT",
             (int)o.code);
  outcome_free(&o);
  xds_stream_free(a);
  xds_stream_free(v);
  xds_node_free(evil);
  xds_node_free(pay);
}
END_TEST

/* Identity strings outside the grammar: each refused with
 * INVALID_ARGUMENT, and the log line shows them escaped. */
static const struct bad_node {
  const char *what, *id, *cluster, *tenant, *org, *mode, *lkey, *lval;
  const char *logged; /* in the log line, escaped */
} bad_nodes[] = {
    {"node id with a newline", "evil\nE forged line", "c", TENANT_PAYMENTS,
     NULL, NULL, NULL, NULL, "evil\\nE forged line"},
    {"node id with a space", "a b", "c", TENANT_PAYMENTS, NULL, NULL, NULL,
     NULL, "id \\\"a b\\\""},
    {"cluster with a control character", "n1", "c\x01", TENANT_PAYMENTS, NULL,
     NULL, NULL, NULL, "c\\x01"},
    {"tenant with a carriage return", "n2", "c",
     "organizations/acme/tenants/pay\rments", NULL, NULL, NULL, NULL,
     "pay\\rments"},
    {"tenant with a space", "n3", "c", "organizations/acme/tenants/pay ments",
     NULL, NULL, NULL, NULL, "pay ments"},
    {"organization with a tab", "n4", "c", NULL, "ac\tme", NULL, NULL, NULL,
     "ac\\tme"},
    {"organization with bytes above ASCII", "n5", "c", NULL, "acm\xc3\xa9",
     NULL, NULL, NULL, "acm\xc3\xa9\\\" is not a name"},
    {"mode with a newline", "n6", "c", TENANT_PAYMENTS, NULL, "GATEWAY\nx",
     NULL, NULL, "GATEWAY\\nx"},
    {"label value with a newline", "n7", "c", TENANT_PAYMENTS, NULL, NULL,
     "app", "a\nb", "a\\nb"},
    {"label key with an escape", "n8", "c", TENANT_PAYMENTS, NULL, NULL,
     "ap\x1bp", "v", "ap\\x1bp"},
};

START_TEST(identity_strings_refused) {
  const struct bad_node *b = &bad_nodes[_i];
  const char *meta[8], *labels[3] = {b->lkey, b->lval, NULL};
  Envoy__Config__Core__V3__Node *node;
  struct xds_stream *s;
  size_t n = 0;

  start_plain(NULL);
  if (b->tenant != NULL) {
    meta[n++] = "wasmxds.tenant";
    meta[n++] = b->tenant;
  }
  if (b->org != NULL) {
    meta[n++] = "wasmxds.organization";
    meta[n++] = b->org;
  }
  if (b->mode != NULL) {
    meta[n++] = "wasmxds.mode";
    meta[n++] = b->mode;
  }
  meta[n] = NULL;
  node = xds_node_new(b->id, b->cluster, meta, b->lkey ? labels : NULL);
  ck_assert_ptr_nonnull(node);
  server_proc_log_mark(g_sp);
  s = open_on(g_client, XDS_METHOD_ADS);
  sotw_send(s, node, XDS_TYPE_LISTENER, NULL);
  expect_invalid(s, b->what);
  E2E_ASSERT(server_proc_wait_log(g_sp, b->logged, 2000) == 0,
             "%s: no log line with \"%s\"", b->what, b->logged);
  /* Nothing the peer sent starts a line of its own. */
  E2E_ASSERT(server_proc_wait_log(g_sp, "\nE forged line", 0) != 0,
             "%s: the node id forged a log line", b->what);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* ---- B: NUL bytes ------------------------------------------------------ */

/* A DiscoveryRequest (or delta) by hand: node {id, metadata {wasmxds.tenant:
 * tenant}}, type_url, one resource name; each given with its length so it
 * may hold NUL bytes. */
struct raw_str {
  const char *p;
  size_t n;
};
#define RS(lit) ((struct raw_str){lit, sizeof(lit) - 1})

static void raw_request(struct xds_buf *out, int delta, struct raw_str id,
                        struct raw_str tenant_key, struct raw_str tenant,
                        const char *type_url, struct raw_str name) {
  struct xds_buf node, md, entry, value;

  xds_buf_init(&node, 1 << 16);
  xds_buf_init(&md, 1 << 16);
  xds_buf_init(&entry, 1 << 16);
  xds_buf_init(&value, 1 << 16);
  ck_assert_int_eq(wire_put_bytes(&value, 3, tenant.p, tenant.n), 0);
  ck_assert_int_eq(wire_put_bytes(&entry, 1, tenant_key.p, tenant_key.n), 0);
  ck_assert_int_eq(wire_put_bytes(&entry, 2, value.data, value.len), 0);
  ck_assert_int_eq(wire_put_bytes(&md, 1, entry.data, entry.len), 0);
  ck_assert_int_eq(wire_put_bytes(&node, 1, id.p, id.n), 0);
  ck_assert_int_eq(wire_put_bytes(&node, 3, md.data, md.len), 0);
  xds_buf_init(out, 1 << 16);
  ck_assert_int_eq(wire_put_bytes(out, delta ? 1 : 2, node.data, node.len), 0);
  ck_assert_int_eq(wire_put_string(out, delta ? 2 : 4, type_url), 0);
  if (name.p != NULL)
    ck_assert_int_eq(wire_put_bytes(out, 3, name.p, name.n), 0);
  xds_buf_cleanup(&node);
  xds_buf_cleanup(&md);
  xds_buf_cleanup(&entry);
  xds_buf_cleanup(&value);
}

static const struct nul_case {
  const char *what;
  int delta;
  struct raw_str id, key, tenant, name;
  const char *field; /* named in the log line */
} nul_cases[] = {
    {"node id",
     0,
     RS("a\0b"),
     RS("wasmxds.tenant"),
     RS(TENANT_PAYMENTS),
     {NULL, 0},
     "Node.id"},
    {"tenant value",
     0,
     RS("n1"),
     RS("wasmxds.tenant"),
     RS(TENANT_PAYMENTS "\0x"),
     {NULL, 0},
     "Value.string_value"},
    {"metadata key",
     1,
     RS("n2"),
     RS("wasmxds.tenant\0x"),
     RS(TENANT_PAYMENTS),
     {NULL, 0},
     "FieldsEntry.key"},
    {"ECDS name (SotW)", 0, RS("n3"), RS("wasmxds.tenant"), RS(TENANT_PAYMENTS),
     RS(E_JWT "\0x"), "DiscoveryRequest.resource_names"},
    {"ECDS name (delta subscribe)", 1, RS("n4"), RS("wasmxds.tenant"),
     RS(TENANT_PAYMENTS), RS(E_JWT "\0x"),
     "DeltaDiscoveryRequest.resource_names_subscribe"},
};

START_TEST(nul_bytes_refused) {
  const struct nul_case *k = &nul_cases[_i];
  struct xds_buf req;
  struct xds_stream *s;
  struct outcome o;
  int rc;

  start_plain(NULL);
  raw_request(&req, k->delta, k->id, k->key, k->tenant,
              k->name.p != NULL ? XDS_TYPE_ECDS : XDS_TYPE_LISTENER, k->name);
  server_proc_log_mark(g_sp);
  s = open_on(g_client, k->delta ? XDS_METHOD_DELTA_ADS : XDS_METHOD_ADS);
  rc = xds_stream_send_raw(s, req.data, req.len, ANSWER_MS);
  E2E_ASSERT(rc == 0, "send: %s", xds_client_strerror(rc));
  memset(&o, 0, sizeof(o));
  rc = xds_stream_recv_raw(s, ANSWER_MS, &o.data, &o.len);
  E2E_ASSERT(rc == XDS_CLIENT_EEOF,
             "%s: a request with a NUL byte was answered (%s)", k->what,
             rc == 0 ? "a message" : xds_client_strerror(rc));
  rc = xds_stream_wait_status(s, ANSWER_MS, &o.code, &o.details);
  E2E_ASSERT(rc == 0 && o.code == GRPC_STATUS_INVALID_ARGUMENT,
             "%s: status %d (%s), want INVALID_ARGUMENT", k->what, (int)o.code,
             o.details != NULL ? o.details : xds_client_strerror(rc));
  E2E_ASSERT(server_proc_wait_log(g_sp, k->field, 2000) == 0 &&
                 server_proc_wait_log(g_sp, "NUL byte", 0) == 0,
             "%s: the refusal was not logged naming %s", k->what, k->field);
  outcome_free(&o);
  xds_stream_free(s);
  xds_buf_cleanup(&req);
}
END_TEST

/* ---- gateways (issue 14 item 1) ----------------------------------------- */

static const char tmpl_edge[] =
    "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: edge-in}\nspec:\n  address: 0.0.0.0\n  port: 8443\n"
    "  direction: INBOUND\n  selector: {mode: GATEWAY}\n"
    "  route: {cluster: backend}\n  httpFilters:\n"
    "  - name: envoy.filters.http.router\n    typedConfig: {\"@type\": "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n";
static const char ext_edge_authz[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: edge-authz}\n"
    "spec:\n  url: file:///etc/envoy/wasm/edge-authz.wasm\n  phase: AUTHZ\n"
    "  match: {mode: CLIENT}\n";
static const char ext_srv_audit[] =
    "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
    "metadata: {organization: acme, name: srv-audit}\n"
    "spec:\n  url: file:///etc/envoy/wasm/srv-audit.wasm\n  phase: STATS\n"
    "  match: {mode: SERVER}\n";

#define E_EDGE "organizations/acme/extensions/edge-authz"
#define E_SRV "organizations/acme/extensions/srv-audit"

/* A gateway's listeners, INBOUND included, all run its CLIENT extension and
 * none its SERVER one; render says why. */
START_TEST(gateway_client_extensions_everywhere) {
  Envoy__Config__Core__V3__Node *gw =
      node_new("gw-1", TENANT_PAYMENTS, "GATEWAY");
  char cmd[1024], *out;
  struct xds_stream *s;
  struct outcome o;
  FILE *f;
  size_t n = 0, got;

  store_put("tmpl-c-edge.yaml", tmpl_edge);
  store_put("ext-edge-authz.yaml", ext_edge_authz);
  store_put("ext-srv-audit.yaml", ext_srv_audit);
  start_plain(NULL);
  s = open_on(g_client, XDS_METHOD_ADS);
  sotw_send(s, gw, XDS_TYPE_LISTENER, NULL);
  wait_outcome(s, &o);
  E2E_ASSERT(o.data != NULL && o.n_resources == 2,
             "a payments gateway got %zu listeners, want edge-in and "
             "outbound",
             o.n_resources);
  E2E_ASSERT(count_in(o.data, o.len, E_EDGE) >= 2,
             "the CLIENT extension is not on both gateway listeners (INBOUND "
             "edge-in included)");
  E2E_ASSERT(count_in(o.data, o.len, E_SRV) == 0,
             "the SERVER extension reached a gateway");
  outcome_free(&o);
  xds_stream_free(s);
  xds_node_free(gw);

  snprintf(cmd, sizeof(cmd),
           "'%s' render --store '%s' --node-id gw-1 --metadata "
           "wasmxds.tenant=" TENANT_PAYMENTS " --metadata wasmxds.mode=GATEWAY "
           "2>/dev/null",
           getenv("WASMXDS_BIN"), g_store);
  f = popen(cmd, "r");
  ck_assert_ptr_nonnull(f);
  out = malloc(1 << 20);
  ck_assert_ptr_nonnull(out);
  while (n < (1 << 20) - 1 &&
         (got = fread(out + n, 1, (1 << 20) - 1 - n, f)) > 0)
    n += got;
  out[n] = '\0';
  pclose(f);
  ck_assert_msg(strstr(out, "included: on a gateway, CLIENT extensions run on "
                            "every listener") != NULL,
                "render does not say why the CLIENT extension runs on the "
                "gateway's INBOUND listener:\n%s",
                out);
  ck_assert_msg(
      strstr(out, "match.mode SERVER never applies on a gateway") != NULL,
      "render does not say why the SERVER extension is left off:\n%s", out);
  free(out);
}
END_TEST

/* ---- C: identity from the certificate (issue 14 item 2) ------------------ */

static char *g_ca_pem, *g_sa_key, *g_sa_crt, *g_two_key, *g_two_crt;

/* A CA, a server certificate for 127.0.0.1, a client certificate for a
 * payments workload (spiffe://td/organizations/acme/tenants/payments/sa/x)
 * and one naming two tenants; then the server with mutual TLS. */
static void setup_mtls(void) {
  static const struct tk_cert certs[] = {
      {"server", "IP:127.0.0.1", "serverAuth"},
      {"sa", "URI:spiffe://td/organizations/acme/tenants/payments/sa/x",
       "clientAuth"},
      {"two",
       "URI:spiffe://td/organizations/acme/tenants/payments,"
       "URI:spiffe://td/organizations/acme/tenants/web",
       "clientAuth"}};
  static struct tk_pki pki; /* server_args point into it */
  char dir[300];

  setup_store();
  snprintf(dir, sizeof(dir), "%s/pki", g_tmp);
  tk_make_pki(&pki, dir, "wasmxds-ident-ca", certs, 3);
  g_ca_pem = tk_read_in(dir, "ca.crt");
  g_sa_key = tk_read_in(dir, "sa.key");
  g_sa_crt = tk_read_in(dir, "sa.crt");
  g_two_key = tk_read_in(dir, "two.key");
  g_two_crt = tk_read_in(dir, "two.crt");
  start_server(pki.server_args);
}

static void teardown_mtls(void) {
  free(g_ca_pem);
  free(g_sa_key);
  free(g_sa_crt);
  free(g_two_key);
  free(g_two_crt);
  g_ca_pem = g_sa_key = g_sa_crt = g_two_key = g_two_crt = NULL;
  teardown();
}

static struct xds_client *tls_client(const char *key, const char *crt) {
  struct xds_client *c;
  int rc = xds_client_new_tls(server_proc_target(g_sp), g_ca_pem, key, crt,
                              NULL, &c);

  ck_assert_msg(rc == 0, "cannot create a TLS client: %s", xds_strerror(rc));
  return c;
}

/* A node whose metadata holds only meta_kv (nullable: none at all). */
static struct outcome mtls_lds(struct xds_client *c, const char *id,
                               const char *const *meta_kv) {
  static const char *const none[] = {NULL};
  Envoy__Config__Core__V3__Node *node =
      xds_node_new(id, "e2e", meta_kv != NULL ? meta_kv : none, NULL);
  struct xds_stream *s = open_on(c, XDS_METHOD_ADS);
  struct outcome o;

  ck_assert_ptr_nonnull(node);
  sotw_send(s, node, XDS_TYPE_LISTENER, NULL);
  wait_outcome(s, &o);
  xds_stream_free(s);
  xds_node_free(node);
  return o;
}

/* The certificate alone says who the proxy is: no metadata needed. */
START_TEST(mtls_certificate_alone) {
  static const char *const same[] = {"wasmxds.tenant", TENANT_PAYMENTS, NULL};
  static const char *const org[] = {"wasmxds.organization", "acme", NULL};
  struct xds_client *c = tls_client(g_sa_key, g_sa_crt);
  struct outcome o;

  o = mtls_lds(c, "sa-1", NULL);
  expect_payments_view(&o, "a payments certificate without metadata");
  outcome_free(&o);
  /* Metadata that agrees is fine too. */
  o = mtls_lds(c, "sa-2", same);
  expect_payments_view(&o, "a payments certificate, tenant in metadata");
  outcome_free(&o);
  o = mtls_lds(c, "sa-3", org);
  expect_payments_view(&o, "a payments certificate, organization only");
  outcome_free(&o);
  xds_client_free(c);
}
END_TEST

/* Metadata that disagrees with the certificate is refused. */
START_TEST(mtls_metadata_must_agree) {
  static const char *const web[] = {"wasmxds.tenant",
                                    "organizations/acme/tenants/web", NULL};
  static const char *const globex[] = {"wasmxds.organization", "globex", NULL};
  const char *const *claims[] = {web, globex};
  struct xds_client *c = tls_client(g_sa_key, g_sa_crt);

  for (int i = 0; i < 2; i++) {
    struct outcome o = mtls_lds(c, "liar", claims[i]);
    E2E_ASSERT(o.data == NULL && o.ended &&
                   o.code == GRPC_STATUS_PERMISSION_DENIED,
               "claim %d: status %d (%s), want PERMISSION_DENIED", i,
               (int)o.code, o.details != NULL ? o.details : "");
    outcome_free(&o);
  }
  xds_client_free(c);
}
END_TEST

/* Two tenant URI SANs: which one counts is ambiguous, so neither does. */
START_TEST(mtls_two_tenants_refused) {
  static const char *const pay[] = {"wasmxds.tenant", TENANT_PAYMENTS, NULL};
  struct xds_client *c = tls_client(g_two_key, g_two_crt);
  struct outcome o;

  /* Even with metadata naming one of them (the old code let the first
   * URI SAN win). */
  server_proc_log_mark(g_sp);
  o = mtls_lds(c, "two-1", pay);
  E2E_ASSERT(o.data == NULL && o.ended &&
                 o.code == GRPC_STATUS_PERMISSION_DENIED,
             "a certificate naming two tenants: status %d (%s), want "
             "PERMISSION_DENIED",
             (int)o.code, o.details != NULL ? o.details : "");
  E2E_ASSERT(server_proc_wait_log(g_sp, "ambiguous", 2000) == 0,
             "the refusal does not say the certificate is ambiguous");
  outcome_free(&o);
  xds_client_free(c);
}
END_TEST

/* A plaintext client retrying against the TLS port: gRPC's "Handshake
 * failed" goes through wasmxds' logger (its format, escaped), once for
 * many attempts. */
START_TEST(grpc_handshake_failures_logged_once) {
  char *line = NULL;

  server_proc_log_mark(g_sp);
  for (int i = 0; i < 4; i++) {
    struct xds_client *plain;
    struct xds_stream *s;
    uint8_t *data;
    size_t len;

    ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &plain), 0);
    s = open_on(plain, XDS_METHOD_ADS);
    (void)xds_stream_send_raw(s, "", 0, 1000);
    E2E_ASSERT(xds_stream_recv_raw(s, 3000, &data, &len) == XDS_CLIENT_EEOF,
               "a plaintext client got an answer");
    xds_stream_free(s);
    xds_client_free(plain);
    if (i == 0) {
      E2E_ASSERT(
          server_proc_wait_log_line(g_sp, "Handshake failed", 3000, &line) == 0,
          "no log line for the failed handshake");
      E2E_ASSERT(strstr(line, " warn  grpc: Handshake failed") != NULL,
                 "the handshake failure is not in wasmxds' format: %s", line);
      free(line);
      server_proc_log_mark(g_sp);
    }
  }
  E2E_ASSERT(server_proc_wait_log(g_sp, "Handshake failed", 500) != 0,
             "a handshake failure of the same reason was logged again");
}
END_TEST

/* ---- a taken port (issue 13 item 10) ------------------------------------ */

/* A second wasmxds on the xDS port of a running one exits non-zero at once
 * and says why, instead of sharing the port (gRPC sets SO_REUSEPORT). */
START_TEST(second_server_on_taken_port) {
  char listen[64], log_path[256], cache[256], *log;
  long long t0;
  int ws = 0, fd;
  pid_t pid, done = 0;

  start_server(NULL);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", server_proc_port(g_sp));
  snprintf(log_path, sizeof(log_path), "%s/second.log", g_tmp);
  snprintf(cache, sizeof(cache), "%s/cache2", g_tmp);
  fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_int_ge(fd, 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execl(getenv("WASMXDS_BIN"), "wasmxds", "--listen", listen, "--store",
          g_store, "--admin-listen", "127.0.0.1:0", "--module-cache", cache,
          (char *)NULL);
    _exit(127);
  }
  close(fd);
  t0 = tk_now_ms();
  while (tk_now_ms() - t0 < 5000 && (done = waitpid(pid, &ws, WNOHANG)) == 0)
    tk_sleep_ms(20);
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
  }
  log = tk_read_file(log_path, NULL);
  ck_assert_ptr_nonnull(log);
  E2E_ASSERT(done == pid, "a second wasmxds on %s kept running:\n%s", listen,
             log);
  E2E_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) != 0,
             "the second wasmxds exited with status 0x%x:\n%s", ws, log);
  E2E_ASSERT(strstr(log, listen) != NULL && strstr(log, "in use") != NULL,
             "the second wasmxds did not say the port is in use:\n%s", log);
  free(log);
  /* The first one still serves. */
  E2E_ASSERT(server_proc_alive(g_sp), "the first server died");
}
END_TEST

/* ---- bounded shutdown (issue 13 item 11) -------------------------------- */

#define DRAIN_MS 1000
#define BIG_EXTS 3
#define BIG_BYTES (900 * 1024)
#define STUCK_STREAMS 16

/* A client process that asks for every big config on STUCK_STREAMS
 * streams with a huge flow-control window, then stops (SIGSTOP): the
 * server's sends fill the socket buffers and stay stuck at the TCP level.
 * Returns its pid; the caller kills it. */
static pid_t stuck_client(const char *target) {
  static const char *const names[] = {"organizations/acme/extensions/big-0",
                                      "organizations/acme/extensions/big-1",
                                      "organizations/acme/extensions/big-2",
                                      NULL};
  pid_t pid = fork();

  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    grpc_arg a[1];
    grpc_channel_args args = {1, a};
    struct xds_client *c;
    struct xds_stream *st;
    Envoy__Config__Core__V3__Node *node;

    a[0].type = GRPC_ARG_INTEGER;
    a[0].key = (char *)GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
    a[0].value.integer = 64 * 1024 * 1024;
    node = xds_node_new(
        "stuck", "e2e",
        (const char *const[]){"wasmxds.tenant", TENANT_PAYMENTS, NULL}, NULL);
    if (node == NULL || xds_client_new(target, &args, &c) < 0)
      _exit(2);
    for (int i = 0; i < STUCK_STREAMS; i++) {
      Envoy__Service__Discovery__V3__DiscoveryRequest req =
          ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
      req.node = node;
      req.type_url = (char *)XDS_TYPE_ECDS;
      req.resource_names = (char **)names;
      req.n_resource_names = BIG_EXTS;
      if (xds_stream_open(c, XDS_METHOD_ADS, &st) < 0 ||
          xds_stream_send_request(st, &req, ANSWER_MS) < 0)
        _exit(3);
    }
    raise(SIGSTOP);
    _exit(0);
  }
  return pid;
}

/* Peers that stop reading while owed more than the socket buffers hold:
 * after SIGTERM the process still exits within --drain-ms and a small
 * margin. */
START_TEST(shutdown_bounded_when_peers_do_not_read) {
  static const char *const args[] = {"--drain-ms", "1000", NULL};
  size_t cap = BIG_BYTES + 512, off;
  char *doc = malloc(cap), name[32];
  pid_t kids[2];
  long long t0, took;
  int rc, ws = 0;

  ck_assert_ptr_nonnull(doc);
  for (int k = 0; k < BIG_EXTS; k++) {
    off = (size_t)snprintf(doc, cap,
                           "apiVersion: extension.tsb.tetrate.io/v2\n"
                           "kind: WasmExtension\n"
                           "metadata: {organization: acme, name: big-%d}\n"
                           "spec:\n  url: file:///etc/envoy/wasm/big.wasm\n"
                           "  config: {blob: ",
                           k);
    for (size_t i = 0; i < BIG_BYTES; i++)
      doc[off++] = (char)('a' + (i * 7 + (size_t)k) % 26);
    off += (size_t)snprintf(doc + off, cap - off, "}\n");
    doc[off] = '\0';
    snprintf(name, sizeof(name), "ext-big-%d.yaml", k);
    store_put(name, doc);
  }
  free(doc);
  start_server(args);
  for (int i = 0; i < 2; i++)
    kids[i] = stuck_client(server_proc_target(g_sp));
  for (int i = 0; i < 2; i++) {
    E2E_ASSERT(waitpid(kids[i], &ws, WUNTRACED) == kids[i] && WIFSTOPPED(ws),
               "a stuck client failed (status 0x%x)", ws);
  }
  tk_sleep_ms(500);
  t0 = tk_now_ms();
  rc = server_proc_stop(g_sp, &ws);
  took = tk_now_ms() - t0;
  for (int i = 0; i < 2; i++) {
    kill(kids[i], SIGKILL);
    waitpid(kids[i], NULL, 0);
  }
  fprintf(stderr,
          "shutdown_bounded: exit %lld ms after SIGTERM (--drain-ms %d)\n",
          took, DRAIN_MS);
  E2E_ASSERT(rc == 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
             "the server did not exit 0 by itself after SIGTERM (status "
             "0x%x, %lld ms)",
             ws, took);
  E2E_ASSERT(took < DRAIN_MS + 1000,
             "the server took %lld ms to exit, more than --drain-ms %d + 1 s",
             took, DRAIN_MS);
}
END_TEST

/* ---- main -------------------------------------------------------------- */

static Suite *identity_e2e_suite(void) {
  Suite *s = suite_create("identity_e2e");
  TCase *tc = tcase_create("classes");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, forged_class_attacker_first);
  tcase_add_test(tc, forged_class_attacker_second);
  tcase_add_loop_test(tc, identity_strings_refused, 0,
                      (int)(sizeof(bad_nodes) / sizeof(bad_nodes[0])));
  suite_add_tcase(s, tc);
  tc = tcase_create("nul");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_loop_test(tc, nul_bytes_refused, 0,
                      (int)(sizeof(nul_cases) / sizeof(nul_cases[0])));
  suite_add_tcase(s, tc);
  tc = tcase_create("gateway");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, gateway_client_extensions_everywhere);
  suite_add_tcase(s, tc);
  tc = tcase_create("mtls");
  tcase_add_checked_fixture(tc, setup_mtls, teardown_mtls);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, mtls_certificate_alone);
  tcase_add_test(tc, mtls_metadata_must_agree);
  tcase_add_test(tc, mtls_two_tenants_refused);
  tcase_add_test(tc, grpc_handshake_failures_logged_once);
  suite_add_tcase(s, tc);
  tc = tcase_create("lifecycle");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, second_server_on_taken_port);
  tcase_add_test(tc, shutdown_bounded_when_peers_do_not_read);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr;
  int failed;

  snprintf(g_base, sizeof(g_base), "/tmp/check_identity-XXXXXX");
  if (mkdtemp(g_base) == NULL) {
    perror("mkdtemp");
    return 99;
  }
  sr = srunner_create(identity_e2e_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  tk_rm_tree(g_base);
  return failed == 0 ? 0 : 1;
}
