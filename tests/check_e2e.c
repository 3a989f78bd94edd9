/*
 * check_e2e.c: end-to-end tests. Each test starts the real wasmxds binary
 * ($WASMXDS_BIN) on a free loopback port with a YAML store, talks ADS to it
 * with the gRPC C core client of tests/e2e/xds_client.h, decodes with
 * protobuf-c and checks what an Envoy would get.
 *
 * The fixture store is tests/data/e2e/store.yaml (its header lists the
 * expected chains); one test uses the shipped example store under
 * deploy/examples/store. Check's fork mode gives every test a fresh process
 * and a fresh server; a server outlives no test (server_proc.c).
 *
 * Usage: check_e2e. CK_TIMEOUT_MULTIPLIER scales the per-test timeouts.
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#include "google/rpc/status.pb-c.h"

#ifndef XDS_TEST_DATA
#error "XDS_TEST_DATA must name the tests/data directory"
#endif

#define FIXTURE_STORE XDS_TEST_DATA "/e2e/store.yaml"

/* How long a test waits for an answer the server owes it. */
#define ANSWER_MS 5000
/* How long "the server sends nothing" is watched after an ACK or a NACK. */
#define QUIET_MS 1500
/* Per-test limit, in seconds (scaled by CK_TIMEOUT_MULTIPLIER). */
#define TEST_TIMEOUT_S 30

#define FQN(name) "organizations/acme/extensions/" name
#define TENANT_PAYMENTS "organizations/acme/tenants/payments"
#define TENANT_WEB "organizations/acme/tenants/web"
#define HCM_FILTER "envoy.filters.network.http_connection_manager"
#define ROUTER_FILTER "envoy.filters.http.router"

/* ---- fixture ----------------------------------------------------------- */

/* One server and one client per test process (fork mode). */
static struct server_proc *g_sp;
static struct xds_client *g_client;

static void start_on(const char *store) {
  int rc;

  rc = server_proc_start(store, NULL, &g_sp);
  ck_assert_msg(rc == 0, "cannot start wasmxds on %s: %s", store,
                xds_strerror(rc));
  rc = xds_client_new(server_proc_target(g_sp), NULL, &g_client);
  ck_assert_msg(rc == 0, "cannot create a client: %s", xds_strerror(rc));
}

static void setup_fixture(void) {
  start_on(FIXTURE_STORE);
}

/* Frees the client, then stops the server, which must exit by itself with
 * status 0 soon after SIGTERM. */
static void teardown(void) {
  int rc, ws = 0;

  xds_client_free(g_client);
  g_client = NULL;
  if (g_sp == NULL)
    return;
  rc = server_proc_stop(g_sp, &ws);
  if (rc < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
    server_proc_dump_log(g_sp);
  server_proc_free(g_sp);
  g_sp = NULL;
  ck_assert_msg(rc == 0, "wasmxds did not exit within %d ms of SIGTERM",
                SERVER_PROC_STOP_TIMEOUT_MS);
  ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
                "wasmxds ended with wait status 0x%x after SIGTERM", ws);
}

/* The server E2E_FAIL dumps the log of (tests/testkit.h). */
#define E2E_SERVER g_sp

/* ---- requests and responses -------------------------------------------- */

static Envoy__Config__Core__V3__Node *node_new(const char *id,
                                               const char *cluster,
                                               const char *tenant,
                                               const char *mode) {
  const char *meta[] = {"wasmxds.tenant", tenant, "wasmxds.mode", mode, NULL};
  Envoy__Config__Core__V3__Node *node;

  node = xds_node_new(id, cluster, meta, NULL);
  ck_assert_ptr_nonnull(node);
  return node;
}

/* Sends a SotW request. node, version, nonce and error (a NACK's message)
 * are nullable. */
static void send_req(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                     const char *type_url, const char *version,
                     const char *nonce, char **names, size_t n_names,
                     const char *error) {
  int rc = xds_stream_send_sotw(s, node, type_url, version, nonce, names,
                                n_names, error, ANSWER_MS);

  E2E_ASSERT(rc == 0, "send %s request: %s", type_url, xds_client_strerror(rc));
}

/* Receives the next response, which must be of type_url and carry a
 * version and a nonce. */
static Envoy__Service__Discovery__V3__DiscoveryResponse *
recv_resp(struct xds_stream *s, const char *type_url) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  grpc_status_code code;
  char *details = NULL;
  int rc;

  rc = xds_stream_recv_response(s, ANSWER_MS, &r);
  if (rc == XDS_CLIENT_EEOF &&
      xds_stream_wait_status(s, 1000, &code, &details) == 0) {
    server_proc_dump_log(g_sp);
    ck_abort_msg("no %s response: stream ended with status %d (%s)", type_url,
                 (int)code, details);
  }
  E2E_ASSERT(rc == 0, "no %s response within %d ms: %s", type_url, ANSWER_MS,
             xds_client_strerror(rc));
  E2E_ASSERT(strcmp(r->type_url, type_url) == 0,
             "expected a %s response, got type_url '%s'", type_url,
             r->type_url);
  E2E_ASSERT(r->version_info[0] != '\0', "%s response without version_info",
             type_url);
  E2E_ASSERT(r->nonce[0] != '\0', "%s response without nonce", type_url);
  return r;
}

/* Asserts that nothing arrives on s for ms; says what came if it did. */
static void expect_quiet(struct xds_stream *s, int ms, const char *after) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  int rc;

  rc = xds_stream_expect_nothing(s, ms);
  if (rc == XDS_CLIENT_EUNEXPECTED) {
    if (xds_stream_recv_response(s, 0, &r) == 0) {
      server_proc_dump_log(g_sp);
      ck_abort_msg("after %s the server sent a %s response (version '%s', "
                   "nonce '%s', %zu resources) within %d ms",
                   after, r->type_url, r->version_info, r->nonce,
                   r->n_resources, ms);
    }
    E2E_FAIL("after %s the server sent an undecodable message", after);
  }
  E2E_ASSERT(rc == 0, "after %s: %s", after, xds_client_strerror(rc));
}

static void ack(struct xds_stream *s,
                const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
                char **names, size_t n_names) {
  send_req(s, NULL, r->type_url, r->version_info, r->nonce, names, n_names,
           NULL);
}

static struct xds_stream *open_ads(void) {
  struct xds_stream *s;
  int rc;

  rc = xds_stream_open(g_client, XDS_METHOD_ADS, &s);
  ck_assert_msg(rc == 0, "open ADS stream: %s", xds_client_strerror(rc));
  return s;
}

/* ---- LDS decoding ------------------------------------------------------ */

struct lis {
  char *name;
  int direction; /* envoy.config.core.v3.TrafficDirection */
  uint32_t port;
  char **filters; /* HttpFilter names, in order */
  size_t n_filters;
};

struct lds {
  struct lis *l;
  size_t n;
};

static int has_str(char *const *v, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return 1;
  return 0;
}

/* Checks one HTTP filter of listener ln: the last must be the router, every
 * other one an ECDS reference over ADS naming an extension fqn. */
static void check_http_filter(
    const char *ln,
    const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter
        *f,
    int last) {
  const Envoy__Config__Core__V3__ExtensionConfigSource *cd;

  if (last) {
    E2E_ASSERT(strcmp(f->name, ROUTER_FILTER) == 0,
               "listener %s: last HTTP filter is '%s', not the router", ln,
               f->name);
    E2E_ASSERT(
        f->config_type_case ==
                ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG &&
            strcmp(f->typed_config->type_url, XDS_TYPE_ROUTER) == 0,
        "listener %s: router filter without a Router typed_config", ln);
    return;
  }
  E2E_ASSERT(
      f->config_type_case ==
          ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY,
      "listener %s: HTTP filter '%s' is not a config_discovery reference", ln,
      f->name);
  cd = f->config_discovery;
  E2E_ASSERT(
      cd->config_source != NULL &&
          cd->config_source->config_source_specifier_case ==
              ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS,
      "listener %s, filter %s: config_source is not ADS", ln, f->name);
  E2E_ASSERT(has_str(cd->type_urls, cd->n_type_urls, XDS_TYPE_WASM),
             "listener %s, filter %s: type_urls lack the Wasm type", ln,
             f->name);
  E2E_ASSERT(has_str(cd->type_urls, cd->n_type_urls, XDS_TYPE_RBAC),
             "listener %s, filter %s: type_urls lack the RBAC type", ln,
             f->name);
  E2E_ASSERT(strncmp(f->name, "organizations/", 14) == 0 &&
                 strstr(f->name, "/extensions/") != NULL,
             "listener %s: ECDS filter name '%s' is not an extension fqn", ln,
             f->name);
}

/* Decodes every Listener of an LDS response, checking the structure every
 * listener must have (one HCM, ECDS references, router last). */
static void
lds_decode(const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
           struct lds *out) {
  out->n = r->n_resources;
  out->l = calloc(r->n_resources + 1, sizeof(*out->l));
  ck_assert_ptr_nonnull(out->l);
  for (size_t i = 0; i < r->n_resources; i++) {
    Envoy__Config__Listener__V3__Listener *l;
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
        *hcm = NULL;
    struct lis *li = &out->l[i];

    E2E_ASSERT(strcmp(r->resources[i]->type_url, XDS_TYPE_LISTENER) == 0,
               "LDS resource %zu has type_url '%s'", i,
               r->resources[i]->type_url);
    l = xds_any_to_listener(r->resources[i]);
    E2E_ASSERT(l != NULL, "LDS resource %zu does not decode as a Listener", i);
    li->name = strdup(l->name);
    li->direction = (int)l->traffic_direction;
    if (l->address != NULL && l->address->socket_address != NULL)
      li->port = l->address->socket_address->port_value;
    for (size_t c = 0; c < l->n_filter_chains; c++) {
      for (size_t f = 0; f < l->filter_chains[c]->n_filters; f++) {
        Envoy__Config__Listener__V3__Filter *nf =
            l->filter_chains[c]->filters[f];

        if (strcmp(nf->name, HCM_FILTER) != 0)
          continue;
        E2E_ASSERT(hcm == NULL, "listener %s has more than one HCM", l->name);
        E2E_ASSERT(
            nf->config_type_case ==
                ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG,
            "listener %s: HCM filter without typed_config", l->name);
        E2E_ASSERT(strcmp(nf->typed_config->type_url, XDS_TYPE_HCM) == 0,
                   "listener %s: HCM typed_config has type_url '%s'", l->name,
                   nf->typed_config->type_url);
        hcm = xds_any_to_hcm(nf->typed_config);
        E2E_ASSERT(hcm != NULL, "listener %s: HCM does not decode", l->name);
      }
    }
    E2E_ASSERT(hcm != NULL, "listener %s has no %s filter", l->name,
               HCM_FILTER);
    E2E_ASSERT(hcm->n_http_filters >= 1, "listener %s: no HTTP filters",
               l->name);
    li->n_filters = hcm->n_http_filters;
    li->filters = calloc(hcm->n_http_filters, sizeof(char *));
    ck_assert_ptr_nonnull(li->filters);
    for (size_t f = 0; f < hcm->n_http_filters; f++) {
      check_http_filter(l->name, hcm->http_filters[f],
                        f + 1 == hcm->n_http_filters);
      li->filters[f] = strdup(hcm->http_filters[f]->name);
    }
    xds_msg_free(hcm);
    xds_msg_free(l);
  }
}

static void lds_cleanup(struct lds *d) {
  for (size_t i = 0; i < d->n; i++) {
    free(d->l[i].name);
    for (size_t f = 0; f < d->l[i].n_filters; f++)
      free(d->l[i].filters[f]);
    free(d->l[i].filters);
  }
  free(d->l);
  d->l = NULL;
  d->n = 0;
}

static const struct lis *lds_find(const struct lds *d, const char *name) {
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->l[i].name, name) == 0)
      return &d->l[i];
  return NULL;
}

static const char *lds_names(const struct lds *d, char *buf, size_t size) {
  size_t off = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < d->n && off < size; i++)
    off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? " " : "",
                            d->l[i].name);
  return buf;
}

static const char *filter_list(const struct lis *l, char *buf, size_t size) {
  size_t off = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < l->n_filters && off < size; i++)
    off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? " " : "",
                            l->filters[i]);
  return buf;
}

/* Asserts listener name exists and its Wasm chain is exactly the extensions
 * of acme named in want (short names, NULL-terminated), then the router. */
static const struct lis *assert_chain(const struct lds *d, const char *name,
                                      const char *const *want) {
  const struct lis *l = lds_find(d, name);
  char got[2048], names[512];
  size_t n = 0;

  E2E_ASSERT(l != NULL, "no listener %s in LDS (got: %s)", name,
             lds_names(d, names, sizeof(names)));
  while (want[n] != NULL)
    n++;
  filter_list(l, got, sizeof(got));
  E2E_ASSERT(l->n_filters == n + 1,
             "listener %s: %zu HTTP filters, want %zu: %s", name, l->n_filters,
             n + 1, got);
  for (size_t i = 0; i < n; i++) {
    char fqn[256];

    snprintf(fqn, sizeof(fqn), "organizations/acme/extensions/%s", want[i]);
    E2E_ASSERT(strcmp(l->filters[i], fqn) == 0,
               "listener %s: HTTP filter %zu is '%s', want '%s' (chain: %s)",
               name, i, l->filters[i], fqn, got);
  }
  return l;
}

/* Collects the distinct ECDS names of every listener, in first-seen order.
 * Returns a new NULL-terminated array of new strings. */
static char **ecds_names(const struct lds *d, size_t *n) {
  char **v = NULL;

  *n = 0;
  for (size_t i = 0; i < d->n; i++) {
    for (size_t f = 0; f + 1 < d->l[i].n_filters; f++) {
      if (has_str(v, *n, d->l[i].filters[f]))
        continue;
      v = realloc(v, (*n + 2) * sizeof(*v));
      ck_assert_ptr_nonnull(v);
      v[(*n)++] = strdup(d->l[i].filters[f]);
      v[*n] = NULL;
    }
  }
  return v;
}

static void free_names(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Runs one LDS round on s: a wildcard request (with node, nullable), the
 * response decoded into out, and its ACK. */
static void lds_round(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                      struct lds *out) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;

  send_req(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, 0, NULL);
  r = recv_resp(s, XDS_TYPE_LISTENER);
  lds_decode(r, out);
  ack(s, r, NULL, 0);
  xds_msg_free(r);
}

/* ---- ECDS decoding ----------------------------------------------------- */

/* Finds the TypedExtensionConfig named name in an ECDS response and returns
 * it decoded (NULL when absent). */
static Envoy__Config__Core__V3__TypedExtensionConfig *
ecds_find(const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
          const char *name) {
  for (size_t i = 0; i < r->n_resources; i++) {
    Envoy__Config__Core__V3__TypedExtensionConfig *tec;

    tec = xds_any_to_typed_extension_config(r->resources[i]);
    E2E_ASSERT(tec != NULL,
               "ECDS resource %zu (type_url '%s') is not a "
               "TypedExtensionConfig",
               i, r->resources[i]->type_url);
    if (strcmp(tec->name, name) == 0)
      return tec;
    xds_msg_free(tec);
  }
  return NULL;
}

/* Every resource is a TypedExtensionConfig named once, and among names. */
static void
ecds_check_names(const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
                 char *const *names, size_t n) {
  char **seen = calloc(r->n_resources + 1, sizeof(char *));

  ck_assert_ptr_nonnull(seen);
  for (size_t i = 0; i < r->n_resources; i++) {
    Envoy__Config__Core__V3__TypedExtensionConfig *tec;

    E2E_ASSERT(strcmp(r->resources[i]->type_url, XDS_TYPE_ECDS) == 0,
               "ECDS resource %zu has type_url '%s'", i,
               r->resources[i]->type_url);
    tec = xds_any_to_typed_extension_config(r->resources[i]);
    E2E_ASSERT(tec != NULL, "ECDS resource %zu does not decode", i);
    E2E_ASSERT(has_str(names, n, tec->name),
               "ECDS response has '%s', which was not requested", tec->name);
    E2E_ASSERT(!has_str(seen, i, tec->name), "ECDS response has '%s' twice",
               tec->name);
    seen[i] = strdup(tec->name);
    xds_msg_free(tec);
  }
  free_names(seen, r->n_resources);
}

/* The Wasm filter config under ECDS name fqn; fails if it is not Wasm. */
static Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *
ecds_wasm(const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
          const char *fqn) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec = ecds_find(r, fqn);
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;

  E2E_ASSERT(tec != NULL, "ECDS response lacks %s", fqn);
  E2E_ASSERT(tec->typed_config != NULL &&
                 strcmp(tec->typed_config->type_url, XDS_TYPE_WASM) == 0,
             "%s: typed_config is '%s', not Wasm", fqn,
             tec->typed_config ? tec->typed_config->type_url : "(none)");
  w = xds_any_to_wasm(tec->typed_config);
  E2E_ASSERT(w != NULL && w->config != NULL,
             "%s: Wasm does not decode or has no PluginConfig", fqn);
  E2E_ASSERT(strcmp(w->config->name, fqn) == 0, "%s: PluginConfig.name is '%s'",
             fqn, w->config->name);
  E2E_ASSERT(w->config->vm_case ==
                     ENVOY__EXTENSIONS__WASM__V3__PLUGIN_CONFIG__VM_VM_CONFIG &&
                 w->config->vm_config != NULL,
             "%s: PluginConfig has no vm_config", fqn);
  xds_msg_free(tec);
  return w;
}

/* Asserts the PluginConfig's configuration is Any(StringValue(json)). */
static void
assert_config_json(const Envoy__Extensions__Wasm__V3__PluginConfig *pc,
                   const char *json) {
  char *got;

  E2E_ASSERT(pc->configuration != NULL, "%s: no configuration", pc->name);
  E2E_ASSERT(strcmp(pc->configuration->type_url, XDS_TYPE_STRING_VALUE) == 0,
             "%s: configuration type_url is '%s', want StringValue", pc->name,
             pc->configuration->type_url);
  got = xds_any_to_string(pc->configuration);
  E2E_ASSERT(got != NULL, "%s: configuration does not decode", pc->name);
  E2E_ASSERT(strcmp(got, json) == 0, "%s: configuration is %s, want %s",
             pc->name, got, json);
  free(got);
}

/* Asserts the code is a local file. */
static void
assert_local_file(const Envoy__Extensions__Wasm__V3__PluginConfig *pc,
                  const char *path) {
  const Envoy__Extensions__Wasm__V3__VmConfig *vm = pc->vm_config;

  E2E_ASSERT(
      vm->code != NULL &&
          vm->code->specifier_case ==
              ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_LOCAL &&
          vm->code->local != NULL &&
          vm->code->local->specifier_case ==
              ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME,
      "%s: code is not local.filename", pc->name);
  E2E_ASSERT(strcmp(vm->code->local->filename, path) == 0,
             "%s: code.local.filename is '%s', want '%s'", pc->name,
             vm->code->local->filename, path);
}

static int fails_open(const Envoy__Extensions__Wasm__V3__PluginConfig *pc) {
  return pc->fail_open ||
         pc->failure_policy ==
             ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_OPEN;
}

/* The RBAC filter config under ECDS name fqn. */
static Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *
ecds_rbac(const Envoy__Service__Discovery__V3__DiscoveryResponse *r,
          const char *fqn) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec = ecds_find(r, fqn);
  Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac;

  E2E_ASSERT(tec != NULL, "ECDS response lacks %s", fqn);
  E2E_ASSERT(tec->typed_config != NULL &&
                 strcmp(tec->typed_config->type_url, XDS_TYPE_RBAC) == 0,
             "%s: typed_config is '%s', want the RBAC fallback", fqn,
             tec->typed_config ? tec->typed_config->type_url : "(none)");
  rbac = xds_any_to_rbac(tec->typed_config);
  E2E_ASSERT(rbac != NULL, "%s: RBAC does not decode", fqn);
  xds_msg_free(tec);
  return rbac;
}

/* ---- tests ------------------------------------------------------------- */

static const char *const PAYMENTS_INBOUND[] = {
    "authn-jwt", "authz-opa",    "payments-deny", "stats-hi", "stats-a",
    "stats-b",   "open-metrics", "server-audit",  "misc",     NULL};
static const char *const PAYMENTS_OUTBOUND[] = {
    "egress-audit", "authz-opa",    "payments-deny", "stats-hi", "stats-a",
    "stats-b",      "open-metrics", "misc",          NULL};
static const char *const WEB_INBOUND[] = {
    "authz-opa",    "stats-hi", "stats-a",  "stats-b", "open-metrics",
    "server-audit", "misc",     "web-only", NULL};
static const char *const WEB_OUTBOUND[] = {
    "egress-audit", "authz-opa", "stats-hi", "stats-a", "stats-b",
    "open-metrics", "misc",      "web-only", NULL};

START_TEST(lds_then_ecds) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *lds_r, *r;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc;
  Envoy__Extensions__Wasm__V3__VmConfig *vm;
  Envoy__Config__Core__V3__Node *node;
  const struct lis *in, *out;
  struct xds_stream *s;
  struct lds d;
  char **names;
  size_t n_names;
  int found;

  node = node_new("sidecar-1", "payments", TENANT_PAYMENTS, "SIDECAR");
  s = open_ads();

  /* LDS, wildcard. */
  send_req(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, 0, NULL);
  lds_r = recv_resp(s, XDS_TYPE_LISTENER);
  lds_decode(lds_r, &d);
  in = assert_chain(&d, "inbound-http", PAYMENTS_INBOUND);
  out = assert_chain(&d, "outbound-http", PAYMENTS_OUTBOUND);
  ck_assert_msg(lds_find(&d, "gateway-edge") == NULL,
                "a sidecar got the GATEWAY-only listener gateway-edge");
  ck_assert_uint_eq(d.n, 2);
  ck_assert_msg(in->direction ==
                    ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND,
                "inbound-http has traffic_direction %d", in->direction);
  ck_assert_msg(out->direction ==
                    ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND,
                "outbound-http has traffic_direction %d", out->direction);
  ck_assert_uint_eq(in->port, 15006);
  ck_assert_uint_eq(out->port, 15001);

  /* ACK LDS; then ECDS for exactly the names found. */
  ack(s, lds_r, NULL, 0);
  names = ecds_names(&d, &n_names);
  ck_assert_uint_eq(n_names, 10);
  send_req(s, NULL, XDS_TYPE_ECDS, NULL, NULL, names, n_names, NULL);
  r = recv_resp(s, XDS_TYPE_ECDS);
  ecds_check_names(r, names, n_names);
  E2E_ASSERT(r->n_resources == n_names, "ECDS answered %zu of %zu names",
             r->n_resources, n_names);

  /* authn-jwt: every field the store sets. */
  w = ecds_wasm(r, FQN("authn-jwt"));
  pc = w->config;
  vm = pc->vm_config;
  ck_assert_str_eq(pc->root_id, "authn");
  ck_assert_str_eq(vm->vm_id, "vm1");
  ck_assert_str_eq(vm->runtime, "envoy.wasm.runtime.v8");
  assert_local_file(pc, "/etc/envoy/wasm/authn.wasm");
  assert_config_json(pc,
                     "{\"header\":\"x-acme\",\"limit\":10,\"enabled\":true}");
  ck_assert_msg(!fails_open(pc), "authn-jwt is FAIL_CLOSE but fails open");
  ck_assert_ptr_nonnull(vm->environment_variables);
  ck_assert_uint_eq(vm->environment_variables->n_key_values, 1);
  ck_assert_str_eq(vm->environment_variables->key_values[0]->key, "LOG_LEVEL");
  ck_assert_str_eq(vm->environment_variables->key_values[0]->value, "debug");
  ck_assert_uint_eq(vm->environment_variables->n_host_env_keys, 1);
  ck_assert_str_eq(vm->environment_variables->host_env_keys[0], "HOSTNAME");
  xds_msg_free(w);

  /* misc: defaults (no pluginName, no vmConfig) and JSON fidelity. */
  w = ecds_wasm(r, FQN("misc"));
  pc = w->config;
  ck_assert_str_eq(pc->root_id, "");
  ck_assert_str_eq(pc->vm_config->runtime, "envoy.wasm.runtime.v8");
  assert_local_file(pc, "/etc/envoy/wasm/misc.wasm");
  assert_config_json(pc, "{\"b\":[1,\"two\",null],\"a\":{\"z\":1,\"y\":false},"
                         "\"version\":\"10\",\"note\":\"say \\\"hi\\\"\"}");
  ck_assert_msg(!fails_open(pc), "misc fails open; FAIL_CLOSE is the default");
  xds_msg_free(w);

  /* authz-opa: root_id and a list in the config; stats-a fails open. */
  w = ecds_wasm(r, FQN("authz-opa"));
  ck_assert_str_eq(w->config->root_id, "opa");
  assert_config_json(
      w->config,
      "{\"policy\":\"allow-listed\",\"paths\":[\"/api\",\"/health\"]}");
  xds_msg_free(w);
  w = ecds_wasm(r, FQN("stats-a"));
  ck_assert_msg(fails_open(w->config), "stats-a is FAIL_OPEN but fails closed");
  xds_msg_free(w);

  /* Nothing of another organization or tenant was sent. */
  found = 0;
  for (size_t i = 0; i < r->n_resources; i++)
    if (memmem(r->resources[i]->value.data, r->resources[i]->value.len,
               "globex", 6) != NULL ||
        memmem(r->resources[i]->value.data, r->resources[i]->value.len,
               "web-only", 8) != NULL)
      found = 1;
  ck_assert_msg(!found, "ECDS bytes mention globex or web-only");

  /* ACK; an ACK never triggers a resend. */
  ack(s, r, names, n_names);
  expect_quiet(s, QUIET_MS, "the ECDS ACK");

  xds_msg_free(r);
  xds_msg_free(lds_r);
  free_names(names, n_names);
  lds_cleanup(&d);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

START_TEST(tenant_isolation_in_lds) {
  Envoy__Config__Core__V3__Node *web, *gw;
  struct xds_stream *s1, *s2;
  struct lds d;
  char names[512];

  /* A web sidecar: no payments-only extensions; web-only present. */
  web = node_new("web-1", "web", TENANT_WEB, "SIDECAR");
  s1 = open_ads();
  lds_round(s1, web, &d);
  assert_chain(&d, "inbound-http", WEB_INBOUND);
  assert_chain(&d, "outbound-http", WEB_OUTBOUND);
  ck_assert_uint_eq(d.n, 2);
  lds_cleanup(&d);

  /* A payments gateway: no INBOUND listener (inbound-http selects
   * SIDECAR), gateway-edge present, no SERVER-only extension anywhere. */
  gw = node_new("gateway-1", "edge", TENANT_PAYMENTS, "GATEWAY");
  s2 = open_ads();
  lds_round(s2, gw, &d);
  ck_assert_msg(lds_find(&d, "inbound-http") == NULL,
                "a gateway got inbound-http (listeners: %s)",
                lds_names(&d, names, sizeof(names)));
  for (size_t i = 0; i < d.n; i++) {
    ck_assert_msg(d.l[i].direction !=
                      ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND,
                  "a gateway got the INBOUND listener %s", d.l[i].name);
    for (size_t f = 0; f < d.l[i].n_filters; f++) {
      ck_assert_msg(strcmp(d.l[i].filters[f], FQN("authn-jwt")) != 0 &&
                        strcmp(d.l[i].filters[f], FQN("server-audit")) != 0,
                    "gateway listener %s has the SERVER-only %s", d.l[i].name,
                    d.l[i].filters[f]);
    }
  }
  assert_chain(&d, "outbound-http", PAYMENTS_OUTBOUND);
  assert_chain(&d, "gateway-edge", PAYMENTS_OUTBOUND);
  ck_assert_uint_eq(d.n, 2);
  lds_cleanup(&d);

  xds_stream_free(s1);
  xds_stream_free(s2);
  xds_node_free(web);
  xds_node_free(gw);
}
END_TEST

START_TEST(nack_is_logged_and_not_resent) {
  static const char nack_msg[] = "e2e-nack-7f3a: wasm module failed to load";
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  Envoy__Config__Core__V3__Node *node;
  char *one[] = {FQN("authn-jwt")};
  char *two[] = {FQN("authn-jwt"), FQN("authz-opa")};
  struct xds_stream *s;
  struct lds d;
  char *line = NULL, *nonce;
  int rc;

  node = node_new("sidecar-nack-1", "payments", TENANT_PAYMENTS, "SIDECAR");
  s = open_ads();
  lds_round(s, node, &d);
  lds_cleanup(&d);

  send_req(s, NULL, XDS_TYPE_ECDS, NULL, NULL, one, 1, NULL);
  r = recv_resp(s, XDS_TYPE_ECDS);
  ecds_check_names(r, one, 1);
  nonce = strdup(r->nonce);
  xds_msg_free(r);

  /* NACK: previous (no) version, the latest nonce, error_detail set. */
  server_proc_log_mark(g_sp);
  send_req(s, NULL, XDS_TYPE_ECDS, "", nonce, one, 1, nack_msg);
  rc = server_proc_wait_log_line(g_sp, nack_msg, 3000, &line);
  E2E_ASSERT(rc == 0, "the NACK was not logged with its error message");
  ck_assert_msg(strstr(line, "sidecar-nack-1") != NULL,
                "the NACK log line lacks the node id: %s", line);
  free(line);
  expect_quiet(s, QUIET_MS, "a NACK");

  /* The stream keeps working: a newly named resource is sent. */
  send_req(s, NULL, XDS_TYPE_ECDS, "", nonce, two, 2, NULL);
  r = recv_resp(s, XDS_TYPE_ECDS);
  ecds_check_names(r, two, 2);
  tec = ecds_find(r, FQN("authz-opa"));
  E2E_ASSERT(tec != NULL,
             "after a NACK, a request adding authz-opa got a response "
             "without it (%zu resources)",
             r->n_resources);
  xds_msg_free(tec);
  E2E_ASSERT(strcmp(r->nonce, nonce) != 0, "the nonce was reused");
  xds_msg_free(r);

  free(nonce);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

START_TEST(unservable_modules_become_rbac) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac;
  Envoy__Config__Core__V3__Node *node;
  char *names[] = {FQN("payments-deny"), FQN("open-metrics")};
  struct xds_stream *s;
  struct lds d;

  node = node_new("sidecar-rbac", "payments", TENANT_PAYMENTS, "SIDECAR");
  s = open_ads();
  lds_round(s, node, &d);
  assert_chain(&d, "inbound-http", PAYMENTS_INBOUND);
  lds_cleanup(&d);

  send_req(s, NULL, XDS_TYPE_ECDS, NULL, NULL, names, 2, NULL);
  r = recv_resp(s, XDS_TYPE_ECDS);
  ecds_check_names(r, names, 2);
  ck_assert_uint_eq(r->n_resources, 2);

  /* oci://, FAIL_CLOSE: deny-all = rules set, ALLOW action, no policy. */
  rbac = ecds_rbac(r, FQN("payments-deny"));
  ck_assert_msg(rbac->rules != NULL, "payments-deny: RBAC without rules "
                                     "allows everything; FAIL_CLOSE must deny");
  ck_assert_uint_eq(rbac->rules->n_policies, 0);
  ck_assert_int_eq(rbac->rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW);
  xds_msg_free(rbac);

  /* https:// without sha256, FAIL_OPEN: allow-all = no rules. */
  rbac = ecds_rbac(r, FQN("open-metrics"));
  ck_assert_msg(rbac->rules == NULL,
                "open-metrics: RBAC with rules; FAIL_OPEN must allow all");
  xds_msg_free(rbac);

  ack(s, r, names, 2);
  xds_msg_free(r);
  expect_quiet(s, 500, "the ECDS ACK");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* (a) garbage bytes, (b) streams before and after keep working. */
START_TEST(garbage_message) {
  static const uint8_t garbage[] = {0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 'g',
                                    'a',  'r',  'b',  'a',  'g',  'e'};
  Envoy__Config__Core__V3__Node *node;
  struct xds_stream *before, *bad, *after;
  grpc_status_code code;
  char *details = NULL;
  size_t mark;
  struct lds d;
  int rc;

  node = node_new("sidecar-garbage", "payments", TENANT_PAYMENTS, "SIDECAR");
  before = open_ads();
  bad = open_ads();
  mark = server_proc_log_size(g_sp);
  rc = xds_stream_send_raw(bad, garbage, sizeof(garbage), ANSWER_MS);
  ck_assert_msg(rc == 0, "sending garbage: %s", xds_client_strerror(rc));
  rc = xds_stream_wait_status(bad, 2000, &code, &details);
  if (rc == 0) {
    ck_assert_msg(code == GRPC_STATUS_INVALID_ARGUMENT,
                  "garbage ended the stream with status %d (%s), want "
                  "INVALID_ARGUMENT (%d)",
                  (int)code, details, GRPC_STATUS_INVALID_ARGUMENT);
    free(details);
  } else {
    /* Ignored: then it must have been logged, and the stream must still
     * serve. */
    ck_assert_msg(rc == XDS_CLIENT_ETIMEDOUT, "wait status: %s",
                  xds_client_strerror(rc));
    E2E_ASSERT(server_proc_log_size(g_sp) > mark,
               "garbage neither ended the stream nor was logged");
    expect_quiet(bad, 10, "garbage");
    lds_round(bad, node, &d);
    lds_cleanup(&d);
  }

  lds_round(before, node, &d);
  assert_chain(&d, "inbound-http", PAYMENTS_INBOUND);
  lds_cleanup(&d);
  after = open_ads();
  lds_round(after, node, &d);
  assert_chain(&d, "inbound-http", PAYMENTS_INBOUND);
  lds_cleanup(&d);

  xds_stream_free(bad);
  xds_stream_free(before);
  xds_stream_free(after);
  xds_node_free(node);
}
END_TEST

/* (c) a type the server does not serve. */
START_TEST(unserved_type) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  Envoy__Config__Core__V3__Node *node;
  struct xds_stream *s;
  struct lds d;
  int rc;

  node = node_new("sidecar-cds", "payments", TENANT_PAYMENTS, "SIDECAR");
  s = open_ads();
  send_req(s, node, XDS_TYPE_CLUSTER, NULL, NULL, NULL, 0, NULL);
  rc = xds_stream_recv_response(s, 1000, &r);
  if (rc == 0) {
    E2E_ASSERT(strcmp(r->type_url, XDS_TYPE_CLUSTER) == 0,
               "a Cluster request was answered with type_url '%s'",
               r->type_url);
    E2E_ASSERT(r->n_resources == 0,
               "a Cluster request got %zu resources, want an empty response",
               r->n_resources);
    xds_msg_free(r);
  } else {
    E2E_ASSERT(rc == XDS_CLIENT_ETIMEDOUT,
               "after a Cluster request the stream failed: %s",
               xds_client_strerror(rc));
    E2E_ASSERT(server_proc_wait_log(g_sp, XDS_TYPE_CLUSTER, 1000) == 0,
               "a Cluster request was ignored without a log line naming "
               "its type");
  }
  /* The stream still answers LDS (node was on the first request only). */
  lds_round(s, NULL, &d);
  assert_chain(&d, "inbound-http", PAYMENTS_INBOUND);
  lds_cleanup(&d);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* (d) an unknown method of a known service. */
START_TEST(unknown_method) {
  static const uint8_t empty[1];
  grpc_status_code code;
  struct xds_stream *s;
  char *details = NULL;
  int rc;

  rc = xds_stream_open(g_client,
                       "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
                       "NoSuchMethod",
                       &s);
  ck_assert_int_eq(rc, 0);
  /* Either may fail once the server has ended the call: not an error. */
  (void)xds_stream_send_raw(s, empty, 0, 1000);
  (void)xds_stream_half_close(s, 1000);
  rc = xds_stream_wait_status(s, 3000, &code, &details);
  E2E_ASSERT(rc == 0, "no status for an unknown method within 3 s: %s",
             xds_client_strerror(rc));
  ck_assert_msg(code == GRPC_STATUS_UNIMPLEMENTED,
                "unknown method got status %d (%s), want UNIMPLEMENTED",
                (int)code, details);
  free(details);
  xds_stream_free(s);
}
END_TEST

/* ---- the shipped example store ----------------------------------------- */

/*
 * What deploy/examples/store gives the sidecar of deploy/examples/
 * envoy-bootstrap.yaml (tenant payments): the inbound listener runs
 * jwt-authn (file://, so a real Wasm config) then request-stats; add-headers
 * belongs to tenant web. Keep in step with extensions/authn-jwt.yaml.
 */
#define EXAMPLE_JWT FQN("jwt-authn")
#define EXAMPLE_JWT_JSON                                                       \
  "{\"issuer\":\"https://"                                                     \
  "auth.acme.example\",\"audiences\":[\"payments-api\"],"                      \
  "\"clock_skew_seconds\":30}"

START_TEST(example_store) {
  const char *meta[] = {"wasmxds.tenant", TENANT_PAYMENTS, "wasmxds.mode",
                        "SIDECAR", NULL};
  const char *labels[] = {"app", "payments-api", "version", "v3", NULL};
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  Envoy__Config__Core__V3__Node *node;
  const char *srcdir = getenv("WASMXDS_SRCDIR");
  const struct lis *in;
  struct xds_stream *s;
  char store[4096], **names;
  size_t n_names;
  struct lds d;

  ck_assert_msg(srcdir != NULL, "WASMXDS_SRCDIR is not set");
  snprintf(store, sizeof(store), "%s/deploy/examples/store", srcdir);
  start_on(store);
  node = xds_node_new("payments-7f9c-sidecar", "payments", meta, labels);
  ck_assert_ptr_nonnull(node);
  s = open_ads();
  lds_round(s, node, &d);
  in = lds_find(&d, "inbound");
  E2E_ASSERT(in != NULL && in->n_filters >= 2,
             "the example store gives a payments sidecar no inbound listener "
             "with an ECDS filter");
  E2E_ASSERT(strcmp(in->filters[0], EXAMPLE_JWT) == 0,
             "inbound: first HTTP filter is '%s', want %s", in->filters[0],
             EXAMPLE_JWT);
  for (size_t i = 0; i < d.n; i++)
    for (size_t f = 0; f < d.l[i].n_filters; f++)
      ck_assert_msg(strstr(d.l[i].filters[f], "add-headers") == NULL,
                    "listener %s has web's add-headers", d.l[i].name);

  names = ecds_names(&d, &n_names);
  send_req(s, NULL, XDS_TYPE_ECDS, NULL, NULL, names, n_names, NULL);
  r = recv_resp(s, XDS_TYPE_ECDS);
  ecds_check_names(r, names, n_names);
  E2E_ASSERT(r->n_resources == n_names, "ECDS answered %zu of %zu names",
             r->n_resources, n_names);
  w = ecds_wasm(r, EXAMPLE_JWT);
  ck_assert_str_eq(w->config->root_id, "jwt_authn");
  assert_local_file(w->config, "/etc/envoy/wasm/jwt_authn.wasm");
  assert_config_json(w->config, EXAMPLE_JWT_JSON);
  xds_msg_free(w);
  ack(s, r, names, n_names);
  expect_quiet(s, 500, "the ECDS ACK");

  xds_msg_free(r);
  free_names(names, n_names);
  lds_cleanup(&d);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* A start-up error after the xDS port is bound (here: the admin port is
 * taken) ends the process with status 1 and a message, not an abort. */
START_TEST(busy_admin_port_fails_cleanly) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  char cmd[1024];
  int fd = socket(AF_INET, SOCK_STREAM, 0), status;

  ck_assert_int_ge(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(listen(fd, 1), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  snprintf(cmd, sizeof(cmd),
           "'%s' --store '%s' --listen 127.0.0.1:0 --no-module-fetch "
           "--admin-listen 127.0.0.1:%d 2>/dev/null",
           getenv("WASMXDS_BIN"), FIXTURE_STORE, ntohs(sa.sin_port));
  status = system(cmd);
  close(fd);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
                "wasmxds with a busy admin port: wait status %d", status);
}
END_TEST

static Suite *e2e_suite(void) {
  Suite *s = suite_create("e2e");
  TCase *tc;

  tc = tcase_create("fixture");
  tcase_add_checked_fixture(tc, setup_fixture, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, lds_then_ecds);
  tcase_add_test(tc, tenant_isolation_in_lds);
  tcase_add_test(tc, nack_is_logged_and_not_resent);
  tcase_add_test(tc, unservable_modules_become_rbac);
  suite_add_tcase(s, tc);

  tc = tcase_create("malformed");
  tcase_add_checked_fixture(tc, setup_fixture, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, garbage_message);
  tcase_add_test(tc, unserved_type);
  tcase_add_test(tc, unknown_method);
  suite_add_tcase(s, tc);

  tc = tcase_create("example");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, example_store);
  suite_add_tcase(s, tc);

  tc = tcase_create("startup");
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  tcase_add_test(tc, busy_admin_port_fails_cleanly);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(e2e_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
