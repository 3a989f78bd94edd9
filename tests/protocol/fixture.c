/*
 * fixture.c: the shared part of tests/check_protocol (protocol.h): the
 * store copy and the server per test, requests, decoding of responses,
 * sessions.
 */
#include "tests/protocol/protocol.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fixture ----------------------------------------------------------- */

char g_base[64];   /* made by main(); every test's directory is in it */
char g_tmp[128];   /* this test's directory */
char g_store[160]; /* g_tmp/store, the store the server reads */
struct server_proc *g_sp;
struct xds_client *g_client;
unsigned g_gen;    /* last store generation the server served */
size_t g_gen_from; /* log offset where the running server's log starts */
/* Every message payload the test received through the helpers below, for
 * assertions on the bytes that crossed the wire. */
uint8_t *g_wire;
size_t g_wire_len, g_wire_cap;

const char *rc_str(int rc) {
  return xds_client_strerror(rc);
}

void wire_add(const uint8_t *data, size_t len) {
  if (g_wire_len + len > g_wire_cap) {
    size_t cap = g_wire_cap ? g_wire_cap : 65536;
    while (cap < g_wire_len + len)
      cap *= 2;
    g_wire = realloc(g_wire, cap);
    ck_assert_ptr_nonnull(g_wire);
    g_wire_cap = cap;
  }
  memcpy(g_wire + g_wire_len, data, len);
  g_wire_len += len;
}

/* Occurrences of s in the bytes received so far. */
size_t wire_count(const char *s) {
  size_t n = 0, len = strlen(s);
  const uint8_t *p = g_wire, *end = g_wire + g_wire_len;

  while (p != NULL && p < end) {
    p = memmem(p, (size_t)(end - p), s, len);
    if (p != NULL) {
      n++;
      p += len;
    }
  }
  return n;
}

/* Writes g_store/name atomically: a hidden temporary (which the store
 * skips) renamed into place, as editors and deploy tools do. */
void store_write(const char *name, const char *data, size_t len) {
  char tmp[320], path[320];

  snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", g_store, name);
  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  tk_write_file(tmp, data, len);
  ck_assert_msg(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
}

/* Replaces the first `from` in store file name with `to`. */
void store_replace(const char *name, const char *from, const char *to) {
  char path[320], *text, *hit, *out;
  size_t len, flen = strlen(from), tlen = strlen(to);

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  text = tk_read_file(path, &len);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  hit = strstr(text, from);
  ck_assert_msg(hit != NULL, "%s does not contain \"%s\"", name, from);
  out = malloc(len - flen + tlen + 1);
  ck_assert_ptr_nonnull(out);
  memcpy(out, text, (size_t)(hit - text));
  memcpy(out + (hit - text), to, tlen);
  memcpy(out + (hit - text) + tlen, hit + flen,
         len - (size_t)(hit - text) - flen);
  store_write(name, out, len - flen + tlen);
  free(out);
  free(text);
}

/* Sets the "rev: N" of the config in store file name to rev: a config-only
 * change. */
void store_set_rev(const char *name, int rev) {
  char path[320], *text, *hit, *end, from[32], to[32];

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  text = tk_read_file(path, NULL);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  hit = strstr(text, "rev: ");
  ck_assert_msg(hit != NULL, "%s has no rev", name);
  (void)strtol(hit + 5, &end, 10);
  snprintf(from, sizeof(from), "%.*s", (int)(end - hit), hit);
  snprintf(to, sizeof(to), "rev: %d", rev);
  free(text);
  store_replace(name, from, to);
}

void store_remove(const char *name) {
  char path[320];

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  ck_assert_msg(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
}

/* Copies tests/data/protocol/extra/name into the store. */
void store_add_extra(const char *name) {
  char path[320], *text;
  size_t len;

  snprintf(path, sizeof(path), "%s/extra/%s", FIXTURE_DIR, name);
  text = tk_read_file(path, &len);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  store_write(name, text, len);
  free(text);
}

/* Waits for the log line of store generation gen of the running server
 * ("serving ... generation N:" or "serving generation N (...)"). */
void wait_gen(unsigned gen) {
  static const char *const forms[] = {"generation %u:", "generation %u (",
                                      "generation %u "};
  size_t saved = server_proc_log_get_mark(g_sp);
  long long end = tk_now_ms() + PUSH_MS;
  char pat[48];
  int found = 0;

  server_proc_log_set_mark(g_sp, g_gen_from);
  while (!found) {
    for (size_t i = 0; !found && i < sizeof(forms) / sizeof(forms[0]); i++) {
      snprintf(pat, sizeof(pat), forms[i], gen);
      found = server_proc_wait_log(g_sp, pat, 0) == 0;
    }
    if (found || tk_now_ms() > end)
      break;
    tk_sleep_ms(10);
  }
  server_proc_log_set_mark(g_sp, saved);
  E2E_ASSERT(found,
             "the server did not serve store generation %u within "
             "%d ms of the edit",
             gen, PUSH_MS);
}

/* After a store edit: the server reloads and serves the next generation. */
void store_changed(void) {
  wait_gen(++g_gen);
}

/* Copies the fixture store into a new directory for this test. */
void setup_store(void) {
  char from[512], to[512], *text;
  struct dirent *de;
  size_t len;
  DIR *d;

  ck_assert_msg(g_base[0] != '\0', "main() made no base directory");
  snprintf(g_tmp, sizeof(g_tmp), "%s/t-XXXXXX", g_base);
  ck_assert_msg(mkdtemp(g_tmp) != NULL, "mkdtemp: %s", strerror(errno));
  snprintf(g_store, sizeof(g_store), "%s/store", g_tmp);
  ck_assert_int_eq(mkdir(g_store, 0700), 0);
  d = opendir(FIXTURE_DIR "/store");
  ck_assert_msg(d != NULL, "cannot open %s/store", FIXTURE_DIR);
  while ((de = readdir(d)) != NULL) {
    if (strstr(de->d_name, ".yaml") == NULL || de->d_name[0] == '.')
      continue;
    snprintf(from, sizeof(from), "%s/store/%s", FIXTURE_DIR, de->d_name);
    snprintf(to, sizeof(to), "%s/%s", g_store, de->d_name);
    text = tk_read_file(from, &len);
    ck_assert_msg(text != NULL, "cannot read %s", from);
    tk_write_file(to, text, len);
    free(text);
  }
  closedir(d);
  g_gen = 0;
  g_gen_from = 0;
}

/* Starts the server on the test's store with extra args (nullable) and
 * waits for its first generation. No client. The server's module cache is
 * in the test's directory, so it goes with it however the test ends (a
 * failed check exits at once, without teardown). */
void start_server(const char *const *args) {
  const char *argv[32];
  char cache[192];
  size_t n = 0;
  int rc;

  snprintf(cache, sizeof(cache), "%s/module-cache", g_tmp);
  ck_assert_int_eq(mkdir(cache, 0700), 0);
  for (size_t i = 0; args != NULL && args[i] != NULL && n < 28; i++)
    argv[n++] = args[i];
  argv[n++] = "--module-cache";
  argv[n++] = cache;
  argv[n] = NULL;
  rc = server_proc_start(g_store, argv, &g_sp);
  ck_assert_msg(rc == 0, "cannot start wasmxds: %s", xds_strerror(rc));
  g_gen_from = 0;
  g_gen = 0;
  store_changed();
}

/* As start_server(), plus a plaintext client. */
void start_plain(const char *const *args) {
  int rc;

  start_server(args);
  rc = xds_client_new(server_proc_target(g_sp), NULL, &g_client);
  ck_assert_msg(rc == 0, "cannot create a client: %s", xds_strerror(rc));
}

void setup_default(void) {
  setup_store();
  start_plain(NULL);
}

/* Frees the client, stops the server (which must exit 0 by itself after
 * SIGTERM), removes the test's directory. */
void teardown(void) {
  int rc = 0, ws = 0, had = g_sp != NULL;

  xds_client_free(g_client);
  g_client = NULL;
  if (g_sp != NULL) {
    rc = server_proc_stop(g_sp, &ws);
    if (rc < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
      server_proc_dump_log(g_sp);
    server_proc_free(g_sp);
    g_sp = NULL;
  }
  tk_rm_tree(g_tmp);
  g_tmp[0] = '\0';
  free(g_wire);
  g_wire = NULL;
  g_wire_len = g_wire_cap = 0;
  if (!had)
    return;
  ck_assert_msg(rc == 0, "wasmxds did not exit within %d ms of SIGTERM",
                SERVER_PROC_STOP_TIMEOUT_MS);
  ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
                "wasmxds ended with wait status 0x%x after SIGTERM", ws);
}

/* ---- requests ---------------------------------------------------------- */

Envoy__Config__Core__V3__Node *node_new(const char *id, const char *tenant) {
  const char *meta[] = {"wasmxds.tenant", tenant, "wasmxds.mode", "SIDECAR",
                        NULL};
  const char *no_tenant[] = {"wasmxds.organization", "acme", "wasmxds.mode",
                             "SIDECAR", NULL};
  Envoy__Config__Core__V3__Node *node;

  node = xds_node_new(id, "e2e", tenant != NULL ? meta : no_tenant, NULL);
  ck_assert_ptr_nonnull(node);
  return node;
}

size_t list_len(const char *const *v) {
  size_t n = 0;

  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

struct xds_stream *open_stream(const char *method) {
  struct xds_stream *s;
  int rc = xds_stream_open(g_client, method, &s);

  ck_assert_msg(rc == 0, "open %s: %s", method, rc_str(rc));
  return s;
}

/* A SotW request; node, version, nonce, names (NULL-terminated) and error
 * (a NACK's message) are nullable. */
void sotw_send(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
               const char *type_url, const char *version, const char *nonce,
               const char *const *names, const char *error) {
  int rc =
      xds_stream_send_sotw(s, node, type_url, version, nonce, (char **)names,
                           list_len(names), error, ANSWER_MS);

  E2E_ASSERT(rc == 0, "send %s request: %s", type_url, rc_str(rc));
}

/* A delta request; every argument but s and type_url is nullable; initial
 * is a NULL-terminated list of name, version pairs. */
void delta_send(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                const char *type_url, const char *nonce, const char *const *sub,
                const char *const *unsub, const char *const *initial,
                const char *error) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
      ent[MAXR * 2],
      *entp[MAXR * 2];
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  size_t n_init = list_len(initial) / 2;
  int rc;

  ck_assert_uint_le(n_init, MAXR * 2);
  req.node = node;
  req.type_url = (char *)type_url;
  if (nonce != NULL)
    req.response_nonce = (char *)nonce;
  req.resource_names_subscribe = (char **)sub;
  req.n_resource_names_subscribe = list_len(sub);
  req.resource_names_unsubscribe = (char **)unsub;
  req.n_resource_names_unsubscribe = list_len(unsub);
  for (size_t i = 0; i < n_init; i++) {
    envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
        &ent[i]);
    ent[i].key = (char *)initial[2 * i];
    ent[i].value = (char *)initial[2 * i + 1];
    entp[i] = &ent[i];
  }
  req.initial_resource_versions = n_init > 0 ? entp : NULL;
  req.n_initial_resource_versions = n_init;
  if (error != NULL) {
    st.code = GRPC_STATUS_INVALID_ARGUMENT;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  rc = xds_stream_send_delta_request(s, &req, ANSWER_MS);
  E2E_ASSERT(rc == 0, "send delta %s request: %s", type_url, rc_str(rc));
}

/* ---- responses --------------------------------------------------------- */

static void decode_listener(const Google__Protobuf__Any *any, char *name,
                            size_t name_size, char *body, size_t body_size) {
  Envoy__Config__Listener__V3__Listener *l = xds_any_to_listener(any);
  size_t off = 0;

  E2E_ASSERT(l != NULL, "an LDS resource (type_url '%s') is not a Listener",
             any != NULL ? any->type_url : "(none)");
  snprintf(name, name_size, "%s", l->name);
  body[0] = '\0';
  for (size_t c = 0; c < l->n_filter_chains; c++) {
    for (size_t f = 0; f < l->filter_chains[c]->n_filters; f++) {
      Envoy__Config__Listener__V3__Filter *nf = l->filter_chains[c]->filters[f];
      Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
          *hcm;

      if (nf->config_type_case !=
          ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
        continue;
      hcm = xds_any_to_hcm(nf->typed_config);
      if (hcm == NULL)
        continue;
      for (size_t h = 0; h < hcm->n_http_filters && off < body_size; h++)
        off += (size_t)snprintf(body + off, body_size - off, "%s%s",
                                off ? " " : "", hcm->http_filters[h]->name);
      xds_msg_free(hcm);
    }
  }
  xds_msg_free(l);
}

static void decode_tec(const Google__Protobuf__Any *any, char *name,
                       size_t name_size, char *body, size_t body_size) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec =
      xds_any_to_typed_extension_config(any);
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  char *json;

  E2E_ASSERT(tec != NULL,
             "an ECDS resource (type_url '%s') is not a TypedExtensionConfig",
             any != NULL ? any->type_url : "(none)");
  snprintf(name, name_size, "%s", tec->name);
  snprintf(body, body_size, "(rbac)");
  w = xds_any_to_wasm(tec->typed_config);
  if (w != NULL && w->config != NULL) {
    json = xds_any_to_string(w->config->configuration);
    snprintf(body, body_size, "%s", json != NULL ? json : "(no config)");
    free(json);
  }
  xds_msg_free(w);
  xds_msg_free(tec);
}

static void decode_any(struct got *g, size_t i,
                       const Google__Protobuf__Any *any) {
  if (g->lds)
    decode_listener(any, g->name[i], sizeof(g->name[i]), g->body[i],
                    sizeof(g->body[i]));
  else
    decode_tec(any, g->name[i], sizeof(g->name[i]), g->body[i],
               sizeof(g->body[i]));
}

/* Decodes a message of a stream in mode delta into g. Checks what every
 * response must have: a served type, a nonce, a version (SotW) or a
 * system_version_info (delta). */
static void decode_got(const uint8_t *data, size_t len, int delta,
                       struct got *g) {
  memset(g, 0, sizeof(*g));
  g->delta = delta;
  if (!delta) {
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len,
                                                                  data);
    E2E_ASSERT(r != NULL, "a response does not decode as DiscoveryResponse");
    snprintf(g->type_url, sizeof(g->type_url), "%s", r->type_url);
    E2E_ASSERT(strcmp(r->type_url, XDS_TYPE_LISTENER) == 0 ||
                   strcmp(r->type_url, XDS_TYPE_ECDS) == 0,
               "a response of type '%s'", r->type_url);
    g->lds = strcmp(r->type_url, XDS_TYPE_LISTENER) == 0;
    snprintf(g->version, sizeof(g->version), "%s", r->version_info);
    snprintf(g->nonce, sizeof(g->nonce), "%s", r->nonce);
    E2E_ASSERT(r->version_info[0] != '\0', "a %s response without version_info",
               g->lds ? "LDS" : "ECDS");
    E2E_ASSERT(r->nonce[0] != '\0', "a %s response without nonce",
               g->lds ? "LDS" : "ECDS");
    E2E_ASSERT(r->n_resources <= MAXR, "%zu resources in one response",
               r->n_resources);
    g->n = r->n_resources;
    for (size_t i = 0; i < r->n_resources; i++) {
      E2E_ASSERT(strcmp(r->resources[i]->type_url, r->type_url) == 0,
                 "a %s response holds a resource of type '%s'", r->type_url,
                 r->resources[i]->type_url);
      decode_any(g, i, r->resources[i]);
    }
    xds_msg_free(r);
    return;
  }
  {
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
        envoy__service__discovery__v3__delta_discovery_response__unpack(
            NULL, len, data);
    E2E_ASSERT(r != NULL,
               "a response does not decode as DeltaDiscoveryResponse");
    snprintf(g->type_url, sizeof(g->type_url), "%s", r->type_url);
    E2E_ASSERT(strcmp(r->type_url, XDS_TYPE_LISTENER) == 0 ||
                   strcmp(r->type_url, XDS_TYPE_ECDS) == 0,
               "a delta response of type '%s'", r->type_url);
    g->lds = strcmp(r->type_url, XDS_TYPE_LISTENER) == 0;
    snprintf(g->version, sizeof(g->version), "%s", r->system_version_info);
    snprintf(g->nonce, sizeof(g->nonce), "%s", r->nonce);
    E2E_ASSERT(r->nonce[0] != '\0', "a delta %s response without nonce",
               g->lds ? "LDS" : "ECDS");
    E2E_ASSERT(r->system_version_info[0] != '\0',
               "a delta %s response without system_version_info",
               g->lds ? "LDS" : "ECDS");
    E2E_ASSERT(r->n_resources <= MAXR && r->n_removed_resources <= MAXR,
               "too many resources in one delta response");
    g->n = r->n_resources;
    for (size_t i = 0; i < r->n_resources; i++) {
      Envoy__Service__Discovery__V3__Resource *res = r->resources[i];
      E2E_ASSERT(res->resource != NULL &&
                     strcmp(res->resource->type_url, r->type_url) == 0,
                 "a delta %s response holds a resource '%s' of another type",
                 r->type_url, res->name);
      E2E_ASSERT(res->version[0] != '\0', "delta resource %s has no version",
                 res->name);
      decode_any(g, i, res->resource);
      E2E_ASSERT(strcmp(g->name[i], res->name) == 0,
                 "delta Resource.name '%s' but the resource is named '%s'",
                 res->name, g->name[i]);
      snprintf(g->rver[i], sizeof(g->rver[i]), "%s", res->version);
    }
    g->n_removed = r->n_removed_resources;
    for (size_t i = 0; i < r->n_removed_resources; i++)
      snprintf(g->removed[i], sizeof(g->removed[i]), "%s",
               r->removed_resources[i]);
    xds_msg_free(r);
  }
}

const char *got_names(const struct got *g, char *buf, size_t size) {
  size_t off = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < g->n && off < size; i++)
    off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? " " : "",
                            g->name[i]);
  for (size_t i = 0; i < g->n_removed && off < size; i++)
    off += (size_t)snprintf(buf + off, size - off, " -%s", g->removed[i]);
  return buf;
}

/* Index of resource name in g, or -1. */
int got_find(const struct got *g, const char *name) {
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->name[i], name) == 0)
      return (int)i;
  return -1;
}

int got_has(const struct got *g, const char *name) {
  return got_find(g, name) >= 0;
}

int got_removed(const struct got *g, const char *name) {
  for (size_t i = 0; i < g->n_removed; i++)
    if (strcmp(g->removed[i], name) == 0)
      return 1;
  return 0;
}

/* Asserts that g holds exactly the resources of the NULL-terminated want,
 * each once. */
void got_exactly(const struct got *g, const char *const *want,
                 const char *what) {
  char buf[1024];
  size_t n = list_len(want);

  E2E_ASSERT(g->n == n, "%s: %zu resources (%s), want %zu", what, g->n,
             got_names(g, buf, sizeof(buf)), n);
  for (size_t i = 0; i < n; i++)
    E2E_ASSERT(got_has(g, want[i]), "%s: lacks %s (got: %s)", what, want[i],
               got_names(g, buf, sizeof(buf)));
  for (size_t i = 0; i < g->n; i++)
    for (size_t j = i + 1; j < g->n; j++)
      E2E_ASSERT(strcmp(g->name[i], g->name[j]) != 0, "%s: %s twice", what,
                 g->name[i]);
}

/* Receives the next message; 0 and g filled, or the client's code. */
int recv_got(struct xds_stream *s, int delta, int ms, struct got *g) {
  uint8_t *data;
  size_t len;
  int rc = xds_stream_recv_raw(s, ms, &data, &len);

  if (rc < 0)
    return rc;
  wire_add(data, len);
  decode_got(data, len, delta, g);
  free(data);
  return 0;
}

/* Receives the next message, which must be of type_url (NULL: any served
 * type). Says why when none arrives. */
void must_recv(struct xds_stream *s, int delta, const char *type_url, int ms,
               struct got *g, const char *what) {
  grpc_status_code code;
  char *details = NULL;
  int rc = recv_got(s, delta, ms, g);

  if (rc == XDS_CLIENT_EEOF &&
      xds_stream_wait_status(s, 1000, &code, &details) == 0) {
    server_proc_dump_log(g_sp);
    ck_abort_msg("%s: no response: the stream ended with status %d (%s)", what,
                 (int)code, details);
  }
  E2E_ASSERT(rc == 0, "%s: no response within %d ms: %s", what, ms, rc_str(rc));
  E2E_ASSERT(type_url == NULL || strcmp(g->type_url, type_url) == 0,
             "%s: expected a %s response, got %s", what,
             strcmp(type_url ? type_url : "", XDS_TYPE_LISTENER) == 0 ? "LDS"
                                                                      : "ECDS",
             g->lds ? "LDS" : "ECDS");
}

/* Asserts that nothing arrives on s for ms; says what came if it did. */
void quiet(struct xds_stream *s, int delta, int ms, const char *after) {
  struct got g;
  char buf[1024];
  int rc = xds_stream_expect_nothing(s, ms);

  if (rc == XDS_CLIENT_EUNEXPECTED) {
    rc = recv_got(s, delta, 0, &g);
    E2E_ASSERT(rc != 0,
               "after %s the server sent a %s%s response within %d "
               "ms (version '%s', nonce '%s', %zu resources, %zu "
               "removed: %s)",
               after, delta ? "delta " : "", g.lds ? "LDS" : "ECDS", ms,
               g.version, g.nonce, g.n, g.n_removed,
               got_names(&g, buf, sizeof(buf)));
  }
  E2E_ASSERT(rc == 0, "after %s: %s", after, rc_str(rc));
}

/* ACKs g. SotW: names is the subscription to repeat (NULL: none, as for
 * wildcard LDS). */
void ack(struct xds_stream *s, const struct got *g, const char *const *names) {
  if (g->delta)
    delta_send(s, NULL, g->type_url, g->nonce, NULL, NULL, NULL, NULL);
  else
    sotw_send(s, NULL, g->type_url, g->version, g->nonce, names, NULL);
}

/* NACKs g with error; SotW keeps prev_version (the last good one). */
void nack(struct xds_stream *s, const struct got *g, const char *prev_version,
          const char *const *names, const char *error) {
  if (g->delta)
    delta_send(s, NULL, g->type_url, g->nonce, NULL, NULL, NULL, error);
  else
    sotw_send(s, NULL, g->type_url, prev_version, g->nonce, names, error);
}

/* Waits for the stream's final status. */
grpc_status_code must_status(struct xds_stream *s, int ms, char **details,
                             const char *what) {
  grpc_status_code code = GRPC_STATUS_OK;
  int rc = xds_stream_wait_status(s, ms, &code, details);

  E2E_ASSERT(rc == 0, "%s: the stream did not end within %d ms: %s", what, ms,
             rc_str(rc));
  return code;
}

/* ---- sessions: LDS and ECDS over ADS (one stream) or standalone (two) -- */

void sess_open(struct sess *ss, int delta, int standalone, const char *node_id,
               const char *tenant) {
  memset(ss, 0, sizeof(*ss));
  ss->delta = delta;
  ss->node = node_new(node_id, tenant);
  if (standalone) {
    ss->lds = open_stream(delta ? XDS_METHOD_DELTA_LDS : XDS_METHOD_LDS);
    ss->ecds = open_stream(delta ? XDS_METHOD_DELTA_ECDS : XDS_METHOD_ECDS);
  } else {
    ss->lds = open_stream(delta ? XDS_METHOD_DELTA_ADS : XDS_METHOD_ADS);
    ss->ecds = ss->lds;
  }
}

void sess_close(struct sess *ss) {
  if (ss->ecds != ss->lds)
    xds_stream_free(ss->ecds);
  xds_stream_free(ss->lds);
  xds_node_free(ss->node);
  memset(ss, 0, sizeof(*ss));
}

/* Subscribes LDS (sub NULL: SotW wildcard; delta ["*"]) and reads, checks
 * and ACKs the first response. */
void sess_lds(struct sess *ss, struct got *g) {
  static const char *const star[] = {"*", NULL};

  if (ss->delta)
    delta_send(ss->lds, ss->node, XDS_TYPE_LISTENER, NULL, star, NULL, NULL,
               NULL);
  else
    sotw_send(ss->lds, ss->node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  must_recv(ss->lds, ss->delta, XDS_TYPE_LISTENER, ANSWER_MS, g,
            "the first LDS request");
  ack(ss->lds, g, NULL);
}

/* Subscribes ECDS to names (NULL-terminated) and reads and ACKs the
 * first response. */
void sess_ecds(struct sess *ss, const char *const *names, struct got *g) {
  if (ss->delta)
    delta_send(ss->ecds, ss->node, XDS_TYPE_ECDS, NULL, names, NULL, NULL,
               NULL);
  else
    sotw_send(ss->ecds, ss->node, XDS_TYPE_ECDS, NULL, NULL, names, NULL);
  must_recv(ss->ecds, ss->delta, XDS_TYPE_ECDS, ANSWER_MS, g,
            "the first ECDS request");
  ack(ss->ecds, g, names);
}

const char *const PAY_LISTENERS[] = {L_IN, L_OUT, NULL};
const char *const PAY_EXTS[] = {E_AUTHZ, E_AUDIT, E_SHARED, NULL};
const char *const PAY_CHAIN =
    E_AUTHZ " " E_AUDIT " " E_SHARED " envoy.filters.http.router";

/* Collects name, version pairs of a delta response into kv (a
 * NULL-terminated list of pairs of new strings). */
void kv_add(char **kv, size_t cap, const struct got *g) {
  size_t n = list_len((const char *const *)kv);

  for (size_t i = 0; i < g->n; i++) {
    ck_assert_uint_lt(n + 2, cap);
    kv[n++] = strdup(g->name[i]);
    kv[n++] = strdup(g->rver[i]);
  }
  kv[n] = NULL;
}

void kv_free(char **kv) {
  for (size_t i = 0; kv[i] != NULL; i++)
    free(kv[i]);
  kv[0] = NULL;
}

/* A session that holds LDS and the ECDS names of its listeners, both
 * ACKed (delta: 0 SotW, 1 delta; on ADS). */
void push_session(struct sess *ss, int delta, const char *id,
                  const char *tenant, const char *const *names) {
  struct got l, e;

  sess_open(ss, delta, 0, id, tenant);
  sess_lds(ss, &l);
  sess_ecds(ss, names, &e);
}

TCase *protocol_tcase(Suite *s, const char *name, void (*setup)(void),
                      void (*down)(void)) {
  TCase *tc = tcase_create(name);

  tcase_add_checked_fixture(tc, setup, down);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  suite_add_tcase(s, tc);
  return tc;
}
