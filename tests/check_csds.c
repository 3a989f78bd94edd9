/*
 * check_csds.c: the Client Status Discovery Service of the real wasmxds
 * binary, over real gRPC clients: FetchClientStatus through
 * server/transport/csds_client, StreamClientStatus through the test xDS
 * client. Proxies stand in every state (acknowledged, rejected, pending,
 * served a substitute, asking for a name that does not exist); node
 * matchers select among them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/err.h"
#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#include "envoy/admin/v3/config_dump_shared.pb-c.h"

#define FIXTURE_STORE XDS_TEST_DATA "/e2e/store.yaml"
#define TENANT_PAYMENTS "organizations/acme/tenants/payments"
#define TENANT_WEB "organizations/acme/tenants/web"
#define WAIT_MS 5000
#define CSDS_STREAM                                                            \
  "/envoy.service.status.v3.ClientStatusDiscoveryService/StreamClientStatus"

typedef Envoy__Service__Status__V3__ClientStatusResponse Resp;
typedef Envoy__Service__Status__V3__ClientStatusRequest Req;
typedef Envoy__Service__Status__V3__ClientConfig Config;
typedef Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig Generic;

static struct server_proc *g_sp;
#define E2E_SERVER g_sp

static void setup(void) {
  int rc = server_proc_start(FIXTURE_STORE, NULL, &g_sp);
  ck_assert_msg(rc == 0, "cannot start wasmxds: %s", xds_strerror(rc));
}

/* The server must exit by itself, status 0 (a sanitizer's report makes
 * it fail). */
static void teardown(void) {
  int rc, ws = 0;

  rc = server_proc_stop(g_sp, &ws);
  if (rc < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
    server_proc_dump_log(g_sp);
  server_proc_free(g_sp);
  g_sp = NULL;
  ck_assert_msg(rc == 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
                "wasmxds ended with wait status 0x%x after SIGTERM", ws);
}

static struct fleet_proxy *proxy(const char *id, const char *tenant,
                                 enum fleet_state st) {
  struct fleet_proxy *p;

  E2E_ASSERT(fleet_proxy_new(server_proc_target(g_sp), id, tenant, st, &p) == 0,
             "proxy %s could not be set up", id);
  return p;
}

static const char *meta_str(const Envoy__Config__Core__V3__Node *n,
                            const char *key, const char *sub) {
  for (size_t i = 0; n->metadata != NULL && i < n->metadata->n_fields; i++) {
    const Google__Protobuf__Value *v = n->metadata->fields[i]->value;
    if (strcmp(n->metadata->fields[i]->key, key) != 0)
      continue;
    if (sub == NULL)
      return v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE
                 ? v->string_value
                 : NULL;
    if (v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE)
      return NULL;
    for (size_t j = 0; j < v->struct_value->n_fields; j++)
      if (strcmp(v->struct_value->fields[j]->key, sub) == 0)
        return v->struct_value->fields[j]->value->string_value;
  }
  return NULL;
}

/* Every LDS resource of c in the given statuses. Returns how many. */
static size_t check_lds(const Config *c, int client_status, int config_status) {
  size_t n = 0;

  for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
    const Generic *g = c->generic_xds_configs[i];
    if (strcmp(g->type_url, XDS_TYPE_LISTENER) != 0)
      continue;
    E2E_ASSERT((int)g->client_status == client_status &&
                   (int)g->config_status == config_status,
               "node %s, listener %s: client_status %d config_status %d, "
               "want %d %d",
               c->node->id, g->name, g->client_status, g->config_status,
               client_status, config_status);
    E2E_ASSERT(g->version_info[0] != '\0', "listener %s without a version",
               g->name);
    E2E_ASSERT(g->xds_config != NULL &&
                   strcmp(g->xds_config->type_url, XDS_TYPE_LISTENER) == 0,
               "listener %s: xds_config is not the Listener sent", g->name);
    {
      Envoy__Config__Listener__V3__Listener *l =
          xds_any_to_listener(g->xds_config);
      E2E_ASSERT(l != NULL && strcmp(l->name, g->name) == 0,
                 "listener %s: xds_config does not decode to it", g->name);
      xds_msg_free(l);
    }
    n++;
  }
  return n;
}

START_TEST(test_csds_states) {
  const char *t = server_proc_target(g_sp);
  struct fleet_proxy *a = proxy("csds-acked", TENANT_PAYMENTS, FLEET_ACKED);
  struct fleet_proxy *n = proxy("csds-nacked", TENANT_PAYMENTS, FLEET_NACKED);
  struct fleet_proxy *p = proxy("csds-pending", TENANT_WEB, FLEET_PENDING);
  const Config *c;
  const Generic *g;
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  Resp *r;

  r = fleet_wait_state(t, "csds-acked", XDS_TYPE_LISTENER,
                       ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED,
                       WAIT_MS);
  fleet_response_free(r);
  r = fleet_wait_state(t, "csds-nacked", XDS_TYPE_LISTENER,
                       ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED,
                       WAIT_MS);
  fleet_response_free(r);
  r = fleet_wait_state(t, "csds-acked", XDS_TYPE_ECDS,
                       ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED,
                       WAIT_MS);
  fleet_response_free(r);
  /* The ECDS name that does not exist keeps "acked" from holding for
   * every ECDS resource: wait on the Wasm one directly. */
  r = fleet_wait_state(t, "csds-acked", XDS_TYPE_LISTENER,
                       ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED,
                       WAIT_MS);
  E2E_ASSERT(r != NULL, "FetchClientStatus failed");
  E2E_ASSERT(r->n_config == 3, "%zu proxies listed, want 3", r->n_config);

  /* Acknowledged: every listener SYNCED, the resource as sent. */
  c = fleet_find(r, "csds-acked");
  E2E_ASSERT(c != NULL, "csds-acked not listed");
  E2E_ASSERT(strcmp(c->node->cluster, "fleet") == 0, "cluster '%s'",
             c->node->cluster);
  E2E_ASSERT(meta_str(c->node, "wasmxds.tenant", NULL) != NULL &&
                 strcmp(meta_str(c->node, "wasmxds.tenant", NULL),
                        TENANT_PAYMENTS) == 0,
             "node metadata lacks wasmxds.tenant");
  E2E_ASSERT(meta_str(c->node, "wasmxds.mode", NULL) != NULL &&
                 strcmp(meta_str(c->node, "wasmxds.mode", NULL), "SIDECAR") ==
                     0,
             "node metadata lacks wasmxds.mode");
  E2E_ASSERT(meta_str(c->node, "wasmxds.csds", "connected_since") != NULL,
             "node metadata lacks wasmxds.csds.connected_since");
  E2E_ASSERT(check_lds(c, ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED,
                       ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__SYNCED) >= 2,
             "csds-acked: fewer than 2 listeners");
  /* ECDS: a Wasm module, a substitute, a name that does not exist. */
  g = fleet_resource(c, XDS_TYPE_ECDS, FLEET_EXT_WASM);
  E2E_ASSERT(g != NULL && g->client_status ==
                              ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED,
             "%s not ACKED", FLEET_EXT_WASM);
  tec = xds_any_to_typed_extension_config(g->xds_config);
  E2E_ASSERT(tec != NULL && tec->typed_config != NULL &&
                 strcmp(tec->typed_config->type_url, XDS_TYPE_WASM) == 0,
             "%s: xds_config is not its Wasm filter", FLEET_EXT_WASM);
  xds_msg_free(tec);
  g = fleet_resource(c, XDS_TYPE_ECDS, FLEET_EXT_SUBSTITUTE);
  E2E_ASSERT(
      g != NULL &&
          g->client_status == ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED &&
          g->config_status == ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__SYNCED,
      "%s not ACKED", FLEET_EXT_SUBSTITUTE);
  tec = xds_any_to_typed_extension_config(g->xds_config);
  E2E_ASSERT(tec != NULL && tec->typed_config != NULL &&
                 strcmp(tec->typed_config->type_url, XDS_TYPE_RBAC) == 0,
             "%s: xds_config is not the RBAC substitute", FLEET_EXT_SUBSTITUTE);
  xds_msg_free(tec);
  g = fleet_resource(c, XDS_TYPE_ECDS, FLEET_EXT_MISSING);
  E2E_ASSERT(g != NULL &&
                 g->client_status ==
                     ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__DOES_NOT_EXIST &&
                 g->config_status ==
                     ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__NOT_SENT &&
                 g->xds_config == NULL,
             "%s not DOES_NOT_EXIST / NOT_SENT", FLEET_EXT_MISSING);

  /* Rejected: NACKED, ERROR, the proxy's message. */
  c = fleet_find(r, "csds-nacked");
  E2E_ASSERT(c != NULL, "csds-nacked not listed");
  E2E_ASSERT(check_lds(c, ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED,
                       ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__ERROR) >= 2,
             "csds-nacked: fewer than 2 listeners");
  for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
    g = c->generic_xds_configs[i];
    E2E_ASSERT(g->error_state != NULL &&
                   strcmp(g->error_state->details, FLEET_NACK_ERROR) == 0 &&
                   strcmp(g->error_state->version_info, g->version_info) == 0,
               "csds-nacked %s: error_state lacks the NACK", g->name);
  }

  /* Sent, not answered: REQUESTED, STALE. The web tenant has one
   * listener fewer (no inbound authn), still at least one. */
  c = fleet_find(r, "csds-pending");
  E2E_ASSERT(c != NULL, "csds-pending not listed");
  E2E_ASSERT(check_lds(c, ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__REQUESTED,
                       ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__STALE) >= 1,
             "csds-pending: no listener");
  E2E_ASSERT(fleet_resource(c, XDS_TYPE_ECDS, FLEET_EXT_WASM) == NULL,
             "csds-pending lists ECDS it never asked for");
  fleet_response_free(r);
  fleet_proxy_free(a);
  fleet_proxy_free(n);
  fleet_proxy_free(p);

  /* Gone proxies are no longer listed. */
  {
    long long until = tk_now_ms() + WAIT_MS;
    char err[256];
    for (;;) {
      r = fleet_fetch(t, NULL, err, sizeof(err));
      E2E_ASSERT(r != NULL, "FetchClientStatus: %s", err);
      if (r->n_config == 0 || tk_now_ms() > until)
        break;
      fleet_response_free(r);
      tk_sleep_ms(50);
    }
    E2E_ASSERT(r->n_config == 0, "%zu proxies still listed after they left",
               r->n_config);
    fleet_response_free(r);
  }
}
END_TEST

static Envoy__Type__Matcher__V3__StringMatcher *sm_new(int kind,
                                                       const char *s) {
  Envoy__Type__Matcher__V3__StringMatcher *m = calloc(1, sizeof(*m));

  envoy__type__matcher__v3__string_matcher__init(m);
  m->match_pattern_case = kind;
  switch (kind) {
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
    m->exact = (char *)s;
    break;
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
    m->prefix = (char *)s;
    break;
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
    m->suffix = (char *)s;
    break;
  default:
    m->contains = (char *)s;
    break;
  }
  return m;
}

/* Fetches with one node matcher; returns the node ids listed, sorted and
 * joined by commas, into buf. */
static const char *fetch_ids(Envoy__Type__Matcher__V3__NodeMatcher *m,
                             int exclude, char *buf, size_t size,
                             size_t *with_contents) {
  Req req = ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  Envoy__Type__Matcher__V3__NodeMatcher *ms[1] = {m};
  char err[256], *ids[16];
  size_t n = 0, len = 0;
  Resp *r;

  req.n_node_matchers = m != NULL;
  req.node_matchers = ms;
  req.exclude_resource_contents = exclude;
  r = fleet_fetch(server_proc_target(g_sp), &req, err, sizeof(err));
  E2E_ASSERT(r != NULL, "FetchClientStatus: %s", err);
  *with_contents = 0;
  for (size_t i = 0; i < r->n_config && n < 16; i++) {
    ids[n++] = r->config[i]->node->id;
    for (size_t j = 0; j < r->config[i]->n_generic_xds_configs; j++)
      *with_contents +=
          r->config[i]->generic_xds_configs[j]->xds_config != NULL;
  }
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
      char *x = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = x;
    }
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++)
    len +=
        (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", ids[i]);
  fleet_response_free(r);
  return buf;
}

START_TEST(test_csds_node_matchers) {
  struct fleet_proxy *p[3];
  Envoy__Type__Matcher__V3__NodeMatcher m;
  Envoy__Type__Matcher__V3__StructMatcher sm, *sms[1] = {&sm};
  Envoy__Type__Matcher__V3__StructMatcher__PathSegment seg, *segs[1] = {&seg};
  Envoy__Type__Matcher__V3__ValueMatcher vm;
  Envoy__Type__Matcher__V3__RegexMatcher re;
  Req req = ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  Envoy__Type__Matcher__V3__NodeMatcher *ms[1] = {&m};
  char buf[256], err[256];
  size_t contents;
  Resp *r;

  p[0] = proxy("edge-1", TENANT_PAYMENTS, FLEET_PENDING);
  p[1] = proxy("edge-2", TENANT_WEB, FLEET_PENDING);
  p[2] = proxy("core-1", TENANT_WEB, FLEET_PENDING);

  fetch_ids(NULL, 0, buf, sizeof(buf), &contents);
  E2E_ASSERT(strcmp(buf, "core-1,edge-1,edge-2") == 0, "all: %s", buf);
  E2E_ASSERT(contents > 0, "no xds_config without exclude_resource_contents");
  fetch_ids(NULL, 1, buf, sizeof(buf), &contents);
  E2E_ASSERT(contents == 0, "%zu xds_config with exclude_resource_contents",
             contents);

  envoy__type__matcher__v3__node_matcher__init(&m);
  m.node_id = sm_new(
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT, "edge-2");
  fetch_ids(&m, 0, buf, sizeof(buf), &contents);
  E2E_ASSERT(strcmp(buf, "edge-2") == 0, "exact edge-2: %s", buf);
  free(m.node_id);
  m.node_id = sm_new(
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX, "edge-");
  fetch_ids(&m, 0, buf, sizeof(buf), &contents);
  E2E_ASSERT(strcmp(buf, "edge-1,edge-2") == 0, "prefix edge-: %s", buf);

  /* And node metadata: prefix edge- and tenant web. */
  envoy__type__matcher__v3__struct_matcher__init(&sm);
  envoy__type__matcher__v3__struct_matcher__path_segment__init(&seg);
  envoy__type__matcher__v3__value_matcher__init(&vm);
  seg.segment_case =
      ENVOY__TYPE__MATCHER__V3__STRUCT_MATCHER__PATH_SEGMENT__SEGMENT_KEY;
  seg.key = "wasmxds.tenant";
  sm.n_path = 1;
  sm.path = segs;
  sm.value = &vm;
  vm.match_pattern_case =
      ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_STRING_MATCH;
  vm.string_match =
      sm_new(ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT,
             TENANT_WEB);
  m.n_node_metadatas = 1;
  m.node_metadatas = sms;
  fetch_ids(&m, 0, buf, sizeof(buf), &contents);
  E2E_ASSERT(strcmp(buf, "edge-2") == 0, "prefix edge- and web: %s", buf);
  free(m.node_id);
  m.node_id = NULL;
  fetch_ids(&m, 0, buf, sizeof(buf), &contents);
  E2E_ASSERT(strcmp(buf, "core-1,edge-2") == 0, "tenant web: %s", buf);
  free(vm.string_match);

  /* A pattern wasmxds cannot apply is refused, saying which. */
  envoy__type__matcher__v3__node_matcher__init(&m);
  m.node_id = sm_new(
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX, NULL);
  envoy__type__matcher__v3__regex_matcher__init(&re);
  re.regex = "edge-.*";
  m.node_id->safe_regex = &re;
  req.n_node_matchers = 1;
  req.node_matchers = ms;
  r = fleet_fetch(server_proc_target(g_sp), &req, err, sizeof(err));
  E2E_ASSERT(r == NULL, "safe_regex accepted");
  E2E_ASSERT(strstr(err, "status 3") != NULL &&
                 strstr(err, "node_matchers[0].node_id: safe_regex") != NULL,
             "safe_regex refused with '%s'", err);
  free(m.node_id);
  for (int i = 0; i < 3; i++)
    fleet_proxy_free(p[i]);
}
END_TEST

/* StreamClientStatus: one answer per request on one stream, each the
 * state at that moment; half-closing ends it with OK. */
START_TEST(test_csds_stream) {
  Req req = ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  struct xds_client *cl;
  struct xds_stream *s;
  struct fleet_proxy *p;
  grpc_status_code code;
  char *details = NULL;
  uint8_t buf[64], *data;
  size_t len, n;
  Resp *r;
  int rc;

  rc = xds_client_new(server_proc_target(g_sp), NULL, &cl);
  ck_assert_int_eq(rc, 0);
  rc = xds_stream_open(cl, CSDS_STREAM, &s);
  ck_assert_int_eq(rc, 0);
  n = protobuf_c_message_pack(&req.base, buf);
  rc = xds_stream_send_raw(s, buf, n, WAIT_MS);
  E2E_ASSERT(rc == 0, "send: %d", rc);
  rc = xds_stream_recv_raw(s, WAIT_MS, &data, &len);
  E2E_ASSERT(rc == 0, "first answer: %d", rc);
  r = envoy__service__status__v3__client_status_response__unpack(NULL, len,
                                                                 data);
  free(data);
  E2E_ASSERT(r != NULL && r->n_config == 0, "first answer lists proxies");
  fleet_response_free(r);

  p = proxy("stream-1", TENANT_PAYMENTS, FLEET_PENDING);
  rc = xds_stream_send_raw(s, buf, n, WAIT_MS);
  E2E_ASSERT(rc == 0, "send: %d", rc);
  rc = xds_stream_recv_raw(s, WAIT_MS, &data, &len);
  E2E_ASSERT(rc == 0, "second answer: %d", rc);
  r = envoy__service__status__v3__client_status_response__unpack(NULL, len,
                                                                 data);
  free(data);
  E2E_ASSERT(r != NULL && r->n_config == 1 &&
                 strcmp(r->config[0]->node->id, "stream-1") == 0,
             "second answer does not list stream-1");
  fleet_response_free(r);
  rc = xds_stream_half_close(s, WAIT_MS);
  E2E_ASSERT(rc == 0, "half-close: %d", rc);
  rc = xds_stream_wait_status(s, WAIT_MS, &code, &details);
  E2E_ASSERT(rc == 0 && code == GRPC_STATUS_OK, "status %d (%s)", (int)code,
             details != NULL ? details : "");
  free(details);
  xds_stream_free(s);
  xds_client_free(cl);
  fleet_proxy_free(p);
}
END_TEST

/* Writes v as a varint ending just before *end; moves *end back. */
static void put_varint_back(uint8_t **end, size_t v) {
  uint8_t tmp[10];
  size_t n = 0;

  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  *end -= n;
  memcpy(*end, tmp, n);
}

/* Wraps the len bytes before *end (ending at `stop`) in field `tag`. */
static void wrap_back(uint8_t **end, const uint8_t *stop, uint8_t tag) {
  put_varint_back(end, (size_t)(stop - *end));
  *--*end = tag;
}

/* A ClientStatusRequest whose node matcher nests list matchers `depth`
 * deep (each level a few bytes; protobuf-c unpacks recursively) is
 * refused with INVALID_ARGUMENT before it is unpacked, and the server
 * still answers. */
START_TEST(test_csds_deep_nesting) {
  const int depth = 200000;
  size_t cap = (size_t)depth * 8 + 64;
  uint8_t *buf = malloc(cap), *stop = buf + cap, *p = stop;
  struct xds_client *cl;
  struct xds_stream *s;
  grpc_status_code code;
  char *details = NULL, err[256];
  int rc;
  Resp *r;

  ck_assert_ptr_nonnull(buf);
  *--p = 0x01; /* present_match: true */
  *--p = 0x28;
  for (int i = 0; i < depth; i++) {
    wrap_back(&p, stop, 0x0a); /* ListMatcher.one_of */
    wrap_back(&p, stop, 0x32); /* ValueMatcher.list_match */
  }
  wrap_back(&p, stop, 0x1a); /* StructMatcher.value */
  {
    uint8_t *mark = p;
    *--p = 'k';
    *--p = 1;
    *--p = 0x0a;               /* PathSegment.key */
    wrap_back(&p, mark, 0x12); /* StructMatcher.path */
  }
  wrap_back(&p, stop, 0x12); /* NodeMatcher.node_metadatas */
  wrap_back(&p, stop, 0x0a); /* ClientStatusRequest.node_matchers */

  rc = xds_client_new(server_proc_target(g_sp), NULL, &cl);
  ck_assert_int_eq(rc, 0);
  rc = xds_stream_open(cl, CSDS_STREAM, &s);
  ck_assert_int_eq(rc, 0);
  rc = xds_stream_send_raw(s, p, (size_t)(stop - p), WAIT_MS);
  E2E_ASSERT(rc == 0, "send: %d", rc);
  rc = xds_stream_wait_status(s, WAIT_MS, &code, &details);
  E2E_ASSERT(rc == 0 && code == GRPC_STATUS_INVALID_ARGUMENT &&
                 details != NULL && strstr(details, "nests") != NULL,
             "status %d (%s)", (int)code, details != NULL ? details : "");
  free(details);
  xds_stream_free(s);
  xds_client_free(cl);
  free(buf);
  r = fleet_fetch(server_proc_target(g_sp), NULL, err, sizeof(err));
  E2E_ASSERT(r != NULL, "the server no longer answers: %s", err);
  fleet_response_free(r);
}
END_TEST

/* Every proxy is tried against every matcher: a request carries at most
 * 64 node matchers (and 64 metadata matchers each, an or_match of 64, a
 * path of 8 keys); more is refused, naming the limit. */
START_TEST(test_csds_matcher_limits) {
  Envoy__Type__Matcher__V3__NodeMatcher m[65], *ms[65];
  Envoy__Type__Matcher__V3__StructMatcher sm, *sms[1] = {&sm};
  Envoy__Type__Matcher__V3__StructMatcher__PathSegment seg, *segs[9];
  Envoy__Type__Matcher__V3__ValueMatcher vm;
  Req req = ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  char err[256];
  Resp *r;

  for (int i = 0; i < 65; i++) {
    envoy__type__matcher__v3__node_matcher__init(&m[i]);
    ms[i] = &m[i];
  }
  req.node_matchers = ms;
  req.n_node_matchers = 64;
  r = fleet_fetch(server_proc_target(g_sp), &req, err, sizeof(err));
  E2E_ASSERT(r != NULL, "64 node matchers refused: %s", err);
  fleet_response_free(r);
  req.n_node_matchers = 65;
  r = fleet_fetch(server_proc_target(g_sp), &req, err, sizeof(err));
  E2E_ASSERT(r == NULL && strstr(err, "status 3") != NULL &&
                 strstr(err, "node_matchers: more than 64") != NULL,
             "65 node matchers: %s", r != NULL ? "answered" : err);

  envoy__type__matcher__v3__struct_matcher__init(&sm);
  envoy__type__matcher__v3__struct_matcher__path_segment__init(&seg);
  envoy__type__matcher__v3__value_matcher__init(&vm);
  seg.segment_case =
      ENVOY__TYPE__MATCHER__V3__STRUCT_MATCHER__PATH_SEGMENT__SEGMENT_KEY;
  seg.key = "k";
  for (int i = 0; i < 9; i++)
    segs[i] = &seg;
  vm.match_pattern_case =
      ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_PRESENT_MATCH;
  vm.present_match = 1;
  sm.path = segs;
  sm.n_path = 9;
  sm.value = &vm;
  m[0].node_metadatas = sms;
  m[0].n_node_metadatas = 1;
  req.n_node_matchers = 1;
  r = fleet_fetch(server_proc_target(g_sp), &req, err, sizeof(err));
  E2E_ASSERT(r == NULL && strstr(err, "a path of more than 8 keys") != NULL,
             "a path of 9 keys: %s", r != NULL ? "answered" : err);
}
END_TEST

static Suite *csds_suite(void) {
  Suite *s = suite_create("csds");
  TCase *tc = tcase_create("csds");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_csds_states);
  tcase_add_test(tc, test_csds_node_matchers);
  tcase_add_test(tc, test_csds_stream);
  tcase_add_test(tc, test_csds_deep_nesting);
  tcase_add_test(tc, test_csds_matcher_limits);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(csds_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
