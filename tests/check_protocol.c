/*
 * check_protocol.c: the end-to-end tests of issue 5, the xDS protocol.
 *
 * Each test starts the real wasmxds ($WASMXDS_BIN) on a free loopback port
 * on a private copy of tests/data/protocol/store (see its README.md), talks
 * to it with the gRPC C core client of tests/e2e/xds_client.h (SotW and
 * delta, on ADS and on the standalone LDS and ECDS services), edits the
 * store copy on disk to make the server push (it reloads through inotify
 * after its debounce; every wait for that is bounded), and checks what goes
 * over the wire against the rules of the xDS protocol (prior-art.md §2).
 *
 * Test groups: SotW semantics, delta semantics, standalone services, push,
 * load (a NACK storm, a client that never reads), mutual TLS (certificates
 * made here with the openssl CLI), drain and restart, the admin endpoints.
 * Tests that apply to several services or modes are Check loop tests; the
 * loop index picks the service (see the tables next to each test).
 *
 * Check's fork mode gives each test a fresh process, server and store; all
 * temporary directories live under one directory that main() removes at
 * the end, so even a test killed by its timeout leaves nothing behind (its
 * server dies with it: PR_SET_PDEATHSIG in server_proc.c).
 *
 * Usage: check_protocol. CK_TIMEOUT_MULTIPLIER scales the per-test limits;
 * CK_RUN_CASE / CK_RUN_SUITE select tests as in every Check program.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"

#include "google/protobuf/wrappers.pb-c.h"
#include "google/rpc/status.pb-c.h"

#ifndef XDS_TEST_DATA
#error "XDS_TEST_DATA must name the tests/data directory"
#endif

#define FIXTURE_DIR XDS_TEST_DATA "/protocol"

/* How long a test waits for an answer the server owes to a request. */
#define ANSWER_MS 5000
/* How long a store edit may take to reach a stream: debounce, reload,
 * snapshot, one loop tick. Generous for a loaded 2-core machine. */
#define PUSH_MS 5000
/* How long "the server sends nothing" is watched after something that must
 * not cause a message (the server answers requests within a few ms and
 * adopts a published snapshot within its 20 ms tick). */
#define QUIET_MS 400
/* After a restart, "nothing new" is watched this long (the brief's ~1 s). */
#define RESTART_QUIET_MS 1000
/* Per-test limit in seconds (scaled by CK_TIMEOUT_MULTIPLIER). */
#define TEST_TIMEOUT_S 30

#define FQN(name) "organizations/acme/extensions/" name
#define TENANT_PAYMENTS "organizations/acme/tenants/payments"
#define TENANT_WEB "organizations/acme/tenants/web"
#define L_IN "inbound-http"
#define L_OUT "outbound-http"
#define L_EXTRA "extra-http"
#define E_AUTHZ FQN("pay-authz")
#define E_AUDIT FQN("pay-audit")
#define E_SHARED FQN("shared-stats")
#define E_WEB FQN("web-secret")
#define E_LATE FQN("late-authn")
#define E_BIG FQN("big-blob")
#define E_GLOBEX "organizations/globex/extensions/globex-x"
#define E_NOPE FQN("does-not-exist")
#define WEB_MARKER "WEB-SECRET-CONFIG-5d2f"

#define F_AUTHZ "ext-pay-authz.yaml"
#define F_AUDIT "ext-pay-audit.yaml"
#define F_SHARED "ext-shared-stats.yaml"
#define F_OUTBOUND "tmpl-outbound.yaml"

/* Most resources one decoded response keeps (the fixture has a handful). */
#define MAXR 16

/* ---- fixture ----------------------------------------------------------- */

static char g_base[64];   /* made by main(); every test's directory is in it */
static char g_tmp[128];   /* this test's directory */
static char g_store[160]; /* g_tmp/store, the store the server reads */
static struct server_proc *g_sp;
static struct xds_client *g_client;
static unsigned g_gen;    /* last store generation the server served */
static size_t g_gen_from; /* log offset where the running server's log starts */
/* Every message payload the test received through the helpers below, for
 * assertions on the bytes that crossed the wire. */
static uint8_t *g_wire;
static size_t g_wire_len, g_wire_cap;

static const char *rc_str(int rc) {
  switch (rc) {
  case XDS_CLIENT_ETIMEDOUT:
    return "timed out";
  case XDS_CLIENT_EEOF:
    return "stream ended";
  case XDS_CLIENT_EUNEXPECTED:
    return "unexpected message";
  default:
    return xds_strerror(rc);
  }
}

/* Fails the test after copying the server's log to stderr. */
#define E2E_FAIL(...)                                                          \
  do {                                                                         \
    if (g_sp != NULL)                                                          \
      server_proc_dump_log(g_sp);                                              \
    ck_abort_msg(__VA_ARGS__);                                                 \
  } while (0)

#define E2E_ASSERT(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      E2E_FAIL(__VA_ARGS__);                                                   \
  } while (0)

static long long now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static void wire_add(const uint8_t *data, size_t len) {
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
static size_t wire_count(const char *s) {
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

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftwbuf) {
  (void)sb;
  (void)flag;
  (void)ftwbuf;
  remove(path);
  return 0;
}

static void rm_tree(const char *path) {
  if (path[0] != '\0')
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads a whole file (also /proc files, whose size reads as 0) into a new
 * NUL-terminated buffer; NULL if it cannot be read. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  size_t cap = 4096, n = 0, got;
  char *buf;

  if (f == NULL)
    return NULL;
  buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
      ck_assert_ptr_nonnull(buf);
    }
  }
  if (ferror(f)) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[n] = '\0';
  if (len != NULL)
    *len = n;
  return buf;
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");

  ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
  ck_assert_msg(fwrite(data, 1, len, f) == len && fclose(f) == 0,
                "cannot write %s", path);
}

/* Writes g_store/name atomically: a hidden temporary (which the store
 * skips) renamed into place, as editors and deploy tools do. */
static void store_write(const char *name, const char *data, size_t len) {
  char tmp[320], path[320];

  snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", g_store, name);
  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  write_file(tmp, data, len);
  ck_assert_msg(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
}

/* Replaces the first `from` in store file name with `to`. */
static void store_replace(const char *name, const char *from, const char *to) {
  char path[320], *text, *hit, *out;
  size_t len, flen = strlen(from), tlen = strlen(to);

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  text = read_file(path, &len);
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
static void store_set_rev(const char *name, int rev) {
  char path[320], *text, *hit, *end, from[32], to[32];

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  text = read_file(path, NULL);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  hit = strstr(text, "rev: ");
  ck_assert_msg(hit != NULL, "%s has no rev", name);
  (void)strtol(hit + 5, &end, 10);
  snprintf(from, sizeof(from), "%.*s", (int)(end - hit), hit);
  snprintf(to, sizeof(to), "rev: %d", rev);
  free(text);
  store_replace(name, from, to);
}

static void store_remove(const char *name) {
  char path[320];

  snprintf(path, sizeof(path), "%s/%s", g_store, name);
  ck_assert_msg(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
}

/* Copies tests/data/protocol/extra/name into the store. */
static void store_add_extra(const char *name) {
  char path[320], *text;
  size_t len;

  snprintf(path, sizeof(path), "%s/extra/%s", FIXTURE_DIR, name);
  text = read_file(path, &len);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  store_write(name, text, len);
  free(text);
}

/* Waits for the log line of store generation gen of the running server
 * ("serving ... generation N:" or "serving generation N (...)"). */
static void wait_gen(unsigned gen) {
  static const char *const forms[] = {"generation %u:", "generation %u (",
                                      "generation %u "};
  size_t saved = server_proc_log_get_mark(g_sp);
  long long end = now_ms() + PUSH_MS;
  char pat[48];
  int found = 0;

  server_proc_log_set_mark(g_sp, g_gen_from);
  while (!found) {
    for (size_t i = 0; !found && i < sizeof(forms) / sizeof(forms[0]); i++) {
      snprintf(pat, sizeof(pat), forms[i], gen);
      found = server_proc_wait_log(g_sp, pat, 0) == 0;
    }
    if (found || now_ms() > end)
      break;
    sleep_ms(10);
  }
  server_proc_log_set_mark(g_sp, saved);
  E2E_ASSERT(found,
             "the server did not serve store generation %u within "
             "%d ms of the edit",
             gen, PUSH_MS);
}

/* After a store edit: the server reloads and serves the next generation. */
static void store_changed(void) {
  wait_gen(++g_gen);
}

/* Copies the fixture store into a new directory for this test. */
static void setup_store(void) {
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
    text = read_file(from, &len);
    ck_assert_msg(text != NULL, "cannot read %s", from);
    write_file(to, text, len);
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
static void start_server(const char *const *args) {
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
static void start_plain(const char *const *args) {
  int rc;

  start_server(args);
  rc = xds_client_new(server_proc_target(g_sp), NULL, &g_client);
  ck_assert_msg(rc == 0, "cannot create a client: %s", xds_strerror(rc));
}

static void setup_default(void) {
  setup_store();
  start_plain(NULL);
}

/* Frees the client, stops the server (which must exit 0 by itself after
 * SIGTERM), removes the test's directory. */
static void teardown(void) {
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
  rm_tree(g_tmp);
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

static Envoy__Config__Core__V3__Node *node_new(const char *id,
                                               const char *tenant) {
  const char *meta[] = {"wasmxds.tenant", tenant, "wasmxds.mode", "SIDECAR",
                        NULL};
  const char *no_tenant[] = {"wasmxds.organization", "acme", "wasmxds.mode",
                             "SIDECAR", NULL};
  Envoy__Config__Core__V3__Node *node;

  node = xds_node_new(id, "e2e", tenant != NULL ? meta : no_tenant, NULL);
  ck_assert_ptr_nonnull(node);
  return node;
}

static size_t list_len(const char *const *v) {
  size_t n = 0;

  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

static struct xds_stream *open_stream(const char *method) {
  struct xds_stream *s;
  int rc = xds_stream_open(g_client, method, &s);

  ck_assert_msg(rc == 0, "open %s: %s", method, rc_str(rc));
  return s;
}

/* A SotW request; node, version, nonce, names (NULL-terminated) and error
 * (a NACK's message) are nullable. */
static void sotw_send(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                      const char *type_url, const char *version,
                      const char *nonce, const char *const *names,
                      const char *error) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  int rc;

  req.node = node;
  req.type_url = (char *)type_url;
  if (version != NULL)
    req.version_info = (char *)version;
  if (nonce != NULL)
    req.response_nonce = (char *)nonce;
  req.resource_names = (char **)names;
  req.n_resource_names = list_len(names);
  if (error != NULL) {
    st.code = GRPC_STATUS_INVALID_ARGUMENT;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  rc = xds_stream_send_request(s, &req, ANSWER_MS);
  E2E_ASSERT(rc == 0, "send %s request: %s", type_url, rc_str(rc));
}

/* A delta request; every argument but s and type_url is nullable; initial
 * is a NULL-terminated list of name, version pairs. */
static void delta_send(struct xds_stream *s,
                       Envoy__Config__Core__V3__Node *node,
                       const char *type_url, const char *nonce,
                       const char *const *sub, const char *const *unsub,
                       const char *const *initial, const char *error) {
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

/* One response, SotW or delta, decoded into plain arrays. */
struct got {
  int delta;
  int lds; /* 1: listeners, 0: ECDS configs */
  char type_url[160];
  char version[128]; /* version_info, or delta system_version_info */
  char nonce[64];
  size_t n;
  char name[MAXR][160];
  char rver[MAXR][80];  /* delta: each Resource.version */
  char body[MAXR][640]; /* LDS: the HTTP filter names, space-separated;
                           ECDS: the plugin's configuration JSON, or
                           "(rbac)" for the RBAC substitute */
  size_t n_removed;
  char removed[MAXR][160];
};

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

static const char *got_names(const struct got *g, char *buf, size_t size) {
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
static int got_find(const struct got *g, const char *name) {
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->name[i], name) == 0)
      return (int)i;
  return -1;
}

static int got_has(const struct got *g, const char *name) {
  return got_find(g, name) >= 0;
}

static int got_removed(const struct got *g, const char *name) {
  for (size_t i = 0; i < g->n_removed; i++)
    if (strcmp(g->removed[i], name) == 0)
      return 1;
  return 0;
}

/* Asserts that g holds exactly the resources of the NULL-terminated want,
 * each once. */
static void got_exactly(const struct got *g, const char *const *want,
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
static int recv_got(struct xds_stream *s, int delta, int ms, struct got *g) {
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
static void must_recv(struct xds_stream *s, int delta, const char *type_url,
                      int ms, struct got *g, const char *what) {
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
static void quiet(struct xds_stream *s, int delta, int ms, const char *after) {
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
static void ack(struct xds_stream *s, const struct got *g,
                const char *const *names) {
  if (g->delta)
    delta_send(s, NULL, g->type_url, g->nonce, NULL, NULL, NULL, NULL);
  else
    sotw_send(s, NULL, g->type_url, g->version, g->nonce, names, NULL);
}

/* NACKs g with error; SotW keeps prev_version (the last good one). */
static void nack(struct xds_stream *s, const struct got *g,
                 const char *prev_version, const char *const *names,
                 const char *error) {
  if (g->delta)
    delta_send(s, NULL, g->type_url, g->nonce, NULL, NULL, NULL, error);
  else
    sotw_send(s, NULL, g->type_url, prev_version, g->nonce, names, error);
}

/* Waits for the stream's final status. */
static grpc_status_code must_status(struct xds_stream *s, int ms,
                                    char **details, const char *what) {
  grpc_status_code code = GRPC_STATUS_OK;
  int rc = xds_stream_wait_status(s, ms, &code, details);

  E2E_ASSERT(rc == 0, "%s: the stream did not end within %d ms: %s", what, ms,
             rc_str(rc));
  return code;
}

/* ---- sessions: LDS and ECDS over ADS (one stream) or standalone (two) -- */

struct sess {
  int delta;
  struct xds_stream *lds, *ecds; /* the same stream on ADS */
  Envoy__Config__Core__V3__Node *node;
};

static void sess_open(struct sess *ss, int delta, int standalone,
                      const char *node_id, const char *tenant) {
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

static void sess_close(struct sess *ss) {
  if (ss->ecds != ss->lds)
    xds_stream_free(ss->ecds);
  xds_stream_free(ss->lds);
  xds_node_free(ss->node);
  memset(ss, 0, sizeof(*ss));
}

/* Subscribes LDS (sub NULL: SotW wildcard; delta ["*"]) and reads, checks
 * and ACKs the first response. */
static void sess_lds(struct sess *ss, struct got *g) {
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
static void sess_ecds(struct sess *ss, const char *const *names,
                      struct got *g) {
  if (ss->delta)
    delta_send(ss->ecds, ss->node, XDS_TYPE_ECDS, NULL, names, NULL, NULL,
               NULL);
  else
    sotw_send(ss->ecds, ss->node, XDS_TYPE_ECDS, NULL, NULL, names, NULL);
  must_recv(ss->ecds, ss->delta, XDS_TYPE_ECDS, ANSWER_MS, g,
            "the first ECDS request");
  ack(ss->ecds, g, names);
}

static const char *const PAY_LISTENERS[] = {L_IN, L_OUT, NULL};
static const char *const PAY_EXTS[] = {E_AUTHZ, E_AUDIT, E_SHARED, NULL};
static const char *const PAY_CHAIN =
    E_AUTHZ " " E_AUDIT " " E_SHARED " envoy.filters.http.router";

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

/* ---- delta ------------------------------------------------------------- */

/* Loop index: 0 delta ADS, 1 the standalone DeltaListeners and
 * DeltaExtensionConfigs. */

/* Collects name, version pairs of a delta response into kv (a
 * NULL-terminated list of pairs of new strings). */
static void kv_add(char **kv, size_t cap, const struct got *g) {
  size_t n = list_len((const char *const *)kv);

  for (size_t i = 0; i < g->n; i++) {
    ck_assert_uint_lt(n + 2, cap);
    kv[n++] = strdup(g->name[i]);
    kv[n++] = strdup(g->rver[i]);
  }
  kv[n] = NULL;
}

static void kv_free(char **kv) {
  for (size_t i = 0; kv[i] != NULL; i++)
    free(kv[i]);
  kv[0] = NULL;
}

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

/* ---- standalone services ----------------------------------------------- */

/* Each standalone service serves its own type, and a request for the other
 * type on it neither answers nor breaks the stream (loop: 0 StreamListeners,
 * 1 StreamExtensionConfigs, 2 DeltaListeners, 3 DeltaExtensionConfigs). */
START_TEST(standalone_serves_its_type) {
  static const char *const methods[] = {XDS_METHOD_LDS, XDS_METHOD_ECDS,
                                        XDS_METHOD_DELTA_LDS,
                                        XDS_METHOD_DELTA_ECDS};
  int delta = _i >= 2, lds = _i % 2 == 0;
  const char *mine = lds ? XDS_TYPE_LISTENER : XDS_TYPE_ECDS;
  const char *other = lds ? XDS_TYPE_ECDS : XDS_TYPE_LISTENER;
  const char *const *names = lds ? NULL : PAY_EXTS;
  Envoy__Config__Core__V3__Node *node =
      node_new("standalone-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(methods[_i]);
  struct got g;

  if (delta)
    delta_send(s, node, mine, NULL, names, NULL, NULL, NULL);
  else
    sotw_send(s, node, mine, NULL, NULL, names, NULL);
  must_recv(s, delta, mine, ANSWER_MS, &g, methods[_i]);
  got_exactly(&g, lds ? PAY_LISTENERS : PAY_EXTS, methods[_i]);
  ack(s, &g, names);

  server_proc_log_mark(g_sp);
  if (delta)
    delta_send(s, NULL, other, NULL, lds ? PAY_EXTS : NULL, NULL, NULL, NULL);
  else
    sotw_send(s, NULL, other, NULL, NULL, lds ? PAY_EXTS : NULL, NULL);
  quiet(s, delta, QUIET_MS, "a request for the other type");
  E2E_ASSERT(server_proc_wait_log(g_sp, other, 1000) == 0,
             "a request for %s on %s was not logged", other, methods[_i]);

  /* Still serving its type: a push arrives. */
  if (lds)
    store_add_extra("tmpl-extra.yaml");
  else
    store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(s, delta, mine, PUSH_MS, &g, "a push");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* ---- push -------------------------------------------------------------- */

/* Loop index: 0 SotW ADS, 1 delta ADS. A session that holds LDS and the
 * ECDS names of its listeners, both ACKed. */
static void push_session(struct sess *ss, int delta, const char *id,
                         const char *tenant, const char *const *names) {
  struct got l, e;

  sess_open(ss, delta, 0, id, tenant);
  sess_lds(ss, &l);
  sess_ecds(ss, names, &e);
}

/* A config-only change reaches the stream as ECDS alone. */
START_TEST(push_config_only_is_ecds) {
  struct sess ss;
  struct got g;
  int at;

  push_session(&ss, _i, "push-cfg-1", TENANT_PAYMENTS, PAY_EXTS);
  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(ss.ecds, _i, NULL, PUSH_MS, &g, "a config-only change");
  E2E_ASSERT(!g.lds, "a config-only change sent LDS");
  at = got_find(&g, E_AUTHZ);
  E2E_ASSERT(at >= 0 && strstr(g.body[at], "\"rev\":1") != NULL,
             "the ECDS push lacks pay-authz rev 1");
  ack(ss.ecds, &g, PAY_EXTS);
  quiet(ss.lds, _i, QUIET_MS, "a config-only change (no LDS may follow)");
  sess_close(&ss);
}
END_TEST

/* A membership change (a new extension for the proxy's tenant) reaches the
 * stream as LDS; its config follows once subscribed. */
START_TEST(push_membership_is_lds) {
  static const char *const with_late[] = {E_LATE, E_AUTHZ, E_AUDIT, E_SHARED,
                                          NULL};
  static const char *const late[] = {E_LATE, NULL};
  struct sess ss;
  struct got g;

  push_session(&ss, _i, "push-lds-1", TENANT_PAYMENTS, PAY_EXTS);
  store_add_extra("ext-late.yaml");
  store_changed();
  must_recv(ss.lds, _i, NULL, PUSH_MS, &g, "an extension added");
  E2E_ASSERT(g.lds, "adding an extension sent ECDS first, not LDS");
  for (size_t i = 0; i < g.n; i++)
    E2E_ASSERT(strncmp(g.body[i], E_LATE " ", strlen(E_LATE) + 1) == 0,
               "listener %s: chain '%s' does not start with late-authn",
               g.name[i], g.body[i]);
  ack(ss.lds, &g, NULL);
  /* Not subscribed yet: no ECDS. Then subscribe as Envoy would. */
  quiet(ss.ecds, _i, QUIET_MS, "the LDS ACK (late-authn is not subscribed)");
  if (_i)
    delta_send(ss.ecds, NULL, XDS_TYPE_ECDS, NULL, late, NULL, NULL, NULL);
  else
    sotw_send(ss.ecds, NULL, XDS_TYPE_ECDS, NULL, NULL, with_late, NULL);
  must_recv(ss.ecds, _i, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribe late-authn");
  got_exactly(&g, late, "ECDS after subscribing late-authn");
  sess_close(&ss);
}
END_TEST

/* A change for one tenant sends nothing to another tenant's stream. */
START_TEST(push_other_tenant_untouched) {
  static const char *const web_exts[] = {E_WEB, E_SHARED, NULL};
  struct sess pay, web;
  struct got g;

  push_session(&pay, _i, "push-pay-1", TENANT_PAYMENTS, PAY_EXTS);
  push_session(&web, _i, "push-web-1", TENANT_WEB, web_exts);
  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(pay.ecds, _i, XDS_TYPE_ECDS, PUSH_MS, &g, "payments config change");
  ack(pay.ecds, &g, PAY_EXTS);
  quiet(web.lds, _i, QUIET_MS, "a config change of a payments-only extension");

  store_add_extra("ext-late.yaml");
  store_changed();
  must_recv(pay.lds, _i, XDS_TYPE_LISTENER, PUSH_MS, &g,
            "a payments-only extension added");
  ack(pay.lds, &g, NULL);
  quiet(web.lds, _i, QUIET_MS, "a payments-only extension added");
  sess_close(&pay);
  sess_close(&web);
}
END_TEST

/* When a listener and a config it references change together, LDS comes
 * first. Both edits land within the debounce, so they form one snapshot. */
START_TEST(push_lds_before_ecds) {
  struct sess ss;
  struct got a, b;
  char pat[48];
  unsigned gen;

  push_session(&ss, _i, "push-order-1", TENANT_PAYMENTS, PAY_EXTS);
  /* The config change is written first on purpose. */
  store_set_rev(F_AUTHZ, 1);
  store_add_extra("ext-late.yaml");
  store_changed();
  gen = g_gen;
  must_recv(ss.lds, _i, NULL, PUSH_MS, &a, "both changed");
  if (!a.lds) {
    snprintf(pat, sizeof(pat), "generation %u", gen + 1);
    E2E_ASSERT(server_proc_wait_log(g_sp, pat, 1000) != 0,
               "the two edits were not coalesced into one snapshot (the "
               "debounce did not hold)");
  }
  E2E_ASSERT(a.lds,
             "a listener and a config changed together: ECDS came "
             "first (%zu resources), LDS must",
             a.n);
  ack(ss.lds, &a, NULL);
  must_recv(ss.ecds, _i, XDS_TYPE_ECDS, PUSH_MS, &b, "both changed");
  E2E_ASSERT(got_has(&b, E_AUTHZ), "the ECDS push after LDS lacks pay-authz");
  sess_close(&ss);
}
END_TEST

/* ---- load -------------------------------------------------------------- */

#define STORM_CHANGES 10

/* One client NACKs every ECDS update while the store changes N times: it
 * gets at most one message per change (no resend loop), and another client
 * gets every update (loop: 0 SotW ADS, 1 delta ADS). */
START_TEST(nack_storm) {
  static const char *const args[] = {"--debounce-ms", "20", NULL};
  struct sess bad, good;
  char want[32];
  struct got g;
  uint64_t base;
  int nacker_msgs = 0, rc;

  setup_store();
  start_plain(args);
  push_session(&bad, _i, "storm-nacker", TENANT_PAYMENTS, PAY_EXTS);
  push_session(&good, _i, "storm-good", TENANT_PAYMENTS, PAY_EXTS);
  base = xds_stream_msgs_received(bad.ecds);
  for (int i = 1; i <= STORM_CHANGES; i++) {
    store_set_rev(F_AUTHZ, i);
    store_changed();
    must_recv(good.ecds, _i, XDS_TYPE_ECDS, PUSH_MS, &g, "the good client");
    snprintf(want, sizeof(want), "\"rev\":%d", i);
    E2E_ASSERT(got_has(&g, E_AUTHZ) &&
                   strstr(g.body[got_find(&g, E_AUTHZ)], want) != NULL,
               "change %d did not reach the good client", i);
    ack(good.ecds, &g, PAY_EXTS);
    /* The nacker reads whatever came and rejects it. */
    while ((rc = recv_got(bad.ecds, _i, 150, &g)) == 0) {
      E2E_ASSERT(!g.lds, "the nacker got LDS for a config-only change");
      nacker_msgs++;
      nack(bad.ecds, &g, "", PAY_EXTS, "e2e-storm: rejected");
    }
    E2E_ASSERT(rc == XDS_CLIENT_ETIMEDOUT, "the nacker's stream: %s",
               rc_str(rc));
  }
  quiet(bad.ecds, _i, 800, "the last NACK of the storm");
  E2E_ASSERT(nacker_msgs <= STORM_CHANGES,
             "the nacker got %d messages for %d changes: a resend loop",
             nacker_msgs, STORM_CHANGES);
  E2E_ASSERT(nacker_msgs >= 1, "the nacker got no update at all");
  E2E_ASSERT(xds_stream_msgs_received(bad.ecds) - base == (uint64_t)nacker_msgs,
             "message count mismatch");
  sess_close(&bad);
  sess_close(&good);
}
END_TEST

#define SLOW_CHANGES 50
#define SLOW_BLOB_BYTES (192 * 1024)

/* 1 if process pid runs with AddressSanitizer (its allocator keeps freed
 * memory in a quarantine, which is not growth per stream). */
static int runs_asan(int pid) {
  char path[64], *maps;
  int yes;

  snprintf(path, sizeof(path), "/proc/%d/maps", pid);
  maps = read_file(path, NULL);
  yes = maps != NULL && strstr(maps, "libasan") != NULL;
  free(maps);
  return yes;
}

static long vm_rss_kib(int pid) {
  char path[64], *text, *p;
  long kib = -1;

  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  text = read_file(path, NULL);
  if (text == NULL)
    return -1;
  p = strstr(text, "VmRSS:");
  if (p != NULL)
    kib = strtol(p + 6, NULL, 10);
  free(text);
  return kib;
}

/* The big extension's document: a payments-only config of ~192 KiB. */
static void write_big(int rev) {
  size_t cap = SLOW_BLOB_BYTES + 1024, off;
  char *doc = malloc(cap);

  ck_assert_ptr_nonnull(doc);
  off = (size_t)snprintf(doc, cap,
                         "apiVersion: extension.tsb.tetrate.io/v2\n"
                         "kind: WasmExtension\n"
                         "metadata: {organization: acme, name: big-blob}\n"
                         "spec:\n"
                         "  url: file:///etc/envoy/wasm/big.wasm\n"
                         "  phase: STATS\n"
                         "  allowedIn: [" TENANT_PAYMENTS "]\n"
                         "  config: {rev: %d, blob: ",
                         rev);
  for (size_t i = 0; i < SLOW_BLOB_BYTES; i++)
    doc[off++] = (char)('a' + (i * 7 + (size_t)rev) % 26);
  off += (size_t)snprintf(doc + off, cap - off, "}\n");
  store_write("ext-big.yaml", doc, off);
  free(doc);
}

/* A client that never reads: the server's memory does not grow with the
 * updates it owes it, and other clients keep getting every update. */
START_TEST(never_reading_client) {
  static const char *const args[] = {"--debounce-ms", "20", NULL};
  static const char *const names[] = {E_BIG, E_AUTHZ, E_AUDIT, E_SHARED, NULL};
  Envoy__Config__Core__V3__Node *node;
  struct xds_stream *slow;
  struct sess good;
  long rss10 = -1, rss50 = -1;
  char want[32];
  struct got g;

  setup_store();
  write_big(0);
  {
    /* Under AddressSanitizer: no quarantine, so that freed snapshots are
     * reused as they are in a plain build. */
    const char *old = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0",
             old != NULL ? old : "", old != NULL && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
  }
  start_plain(args);
  node = node_new("slow-reader", TENANT_PAYMENTS);
  slow = open_stream(XDS_METHOD_ADS);
  sotw_send(slow, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  sotw_send(slow, node, XDS_TYPE_ECDS, NULL, NULL, names, NULL);
  push_session(&good, 0, "fast-reader", TENANT_PAYMENTS, names);

  for (int i = 1; i <= SLOW_CHANGES; i++) {
    write_big(i);
    store_changed();
    must_recv(good.ecds, 0, XDS_TYPE_ECDS, PUSH_MS, &g, "the reading client");
    snprintf(want, sizeof(want), "\"rev\":%d,", i);
    E2E_ASSERT(got_has(&g, E_BIG) && strncmp(g.body[got_find(&g, E_BIG)] + 1,
                                             want, strlen(want)) == 0,
               "change %d did not reach the reading client", i);
    ack(good.ecds, &g, names);
    if (i == 10)
      rss10 = vm_rss_kib(server_proc_pid(g_sp));
  }
  sleep_ms(200);
  rss50 = vm_rss_kib(server_proc_pid(g_sp));
  E2E_ASSERT(rss10 > 0 && rss50 > 0, "cannot read the server's VmRSS");
  fprintf(stderr,
          "never_reading_client: server VmRSS %ld KiB after 10 "
          "changes, %ld KiB after %d (%d KiB per update unread)\n",
          rss10, rss50, SLOW_CHANGES, SLOW_BLOB_BYTES / 1024);
  /* Queued updates would add ~40 x 192 KiB = 7.5 MiB. */
  E2E_ASSERT(rss50 - rss10 < (runs_asan(server_proc_pid(g_sp)) ? 4096 : 2048),
             "the server's VmRSS grew by %ld KiB between 10 and %d updates "
             "owed to a client that does not read",
             rss50 - rss10, SLOW_CHANGES);
  /* The slow client is still connected: the server did not drop it. */
  E2E_ASSERT(xds_stream_msgs_received(slow) == 0, "the slow client read");
  xds_stream_free(slow);
  xds_node_free(node);
  sess_close(&good);
}
END_TEST

/* ---- mutual TLS -------------------------------------------------------- */

static char *g_ca_pem, *g_pay_key, *g_pay_crt, *g_web_key, *g_web_crt;

static void run_sh(const char *cmd) {
  int rc = system(cmd);

  ck_assert_msg(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                "command failed (status 0x%x): %s", rc, cmd);
}

static char *pki_read(const char *name) {
  char path[320], *text;

  snprintf(path, sizeof(path), "%s/pki/%s", g_tmp, name);
  text = read_file(path, NULL);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  return text;
}

/* A CA, a server certificate for IP 127.0.0.1, and client certificates
 * for tenants payments and web (URI SAN spiffe://test/organizations/acme/
 * tenants/<t>), made with the openssl CLI; then the server with
 * --tls-cert/--tls-key/--tls-client-ca. */
static void setup_mtls(void) {
  char cmd[4096];
  char server_crt[320], server_key[320], ca[320];
  const char *args[] = {"--tls-cert",      server_crt, "--tls-key", server_key,
                        "--tls-client-ca", ca,         NULL};

  setup_store();
  snprintf(
      cmd, sizeof(cmd),
      "set -e; d='%s/pki'; mkdir -p \"$d\"; cd \"$d\"; "
      "exec >openssl.log 2>&1; "
      "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
      "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 "
      "-subj /CN=wasmxds-e2e-ca "
      "-addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign; "
      "leaf() { openssl req $K -keyout $1.key -out $1.csr -subj /CN=$1; "
      "printf 'subjectAltName=%%s\\nextendedKeyUsage=%%s\\n' \"$2\" \"$3\" "
      ">$1.ext; openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 2 -out $1.crt -extfile $1.ext; }; "
      "leaf server IP:127.0.0.1 serverAuth; "
      "leaf payments URI:spiffe://test/organizations/acme/tenants/payments "
      "clientAuth; "
      "leaf web URI:spiffe://test/organizations/acme/tenants/web "
      "clientAuth",
      g_tmp);
  run_sh(cmd);
  snprintf(server_crt, sizeof(server_crt), "%s/pki/server.crt", g_tmp);
  snprintf(server_key, sizeof(server_key), "%s/pki/server.key", g_tmp);
  snprintf(ca, sizeof(ca), "%s/pki/ca.crt", g_tmp);
  g_ca_pem = pki_read("ca.crt");
  g_pay_key = pki_read("payments.key");
  g_pay_crt = pki_read("payments.crt");
  g_web_key = pki_read("web.key");
  g_web_crt = pki_read("web.crt");
  start_server(args);
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

/* ---- drain and restart ------------------------------------------------- */

#define DRAIN_MS 1500

/* SIGTERM: every stream ends with UNAVAILABLE (the server's status, not a
 * transport reset) within --drain-ms; the server restarts on the same port
 * and store; clients reconnect with their versions and get nothing new. */
START_TEST(drain_and_restart) {
  static const char *const args[] = {"--drain-ms", "1500", NULL};
  char *lkv[2 * MAXR + 2] = {NULL}, *ekv[2 * MAXR + 2] = {NULL};
  char lds_ver[128], ecds_ver[128];
  struct sess sotw, delta;
  struct got l, e;
  long long t0;
  int ws = 0;

  setup_store();
  start_plain(args);
  /* What an Envoy remembers: the SotW versions, the delta resource
   * versions. */
  sess_open(&sotw, 0, 0, "drain-sotw", TENANT_PAYMENTS);
  sess_lds(&sotw, &l);
  snprintf(lds_ver, sizeof(lds_ver), "%s", l.version);
  sess_ecds(&sotw, PAY_EXTS, &e);
  snprintf(ecds_ver, sizeof(ecds_ver), "%s", e.version);
  sess_open(&delta, 1, 0, "drain-delta", TENANT_PAYMENTS);
  sess_lds(&delta, &l);
  kv_add(lkv, 2 * MAXR + 2, &l);
  sess_ecds(&delta, PAY_EXTS, &e);
  kv_add(ekv, 2 * MAXR + 2, &e);
  quiet(sotw.lds, 0, 100, "the ACKs");

  t0 = now_ms();
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGTERM), 0);
  for (int k = 0; k < 2; k++) {
    struct xds_stream *s = k ? delta.lds : sotw.lds;
    grpc_status_code code;
    char *details = NULL;
    long long took;

    code = must_status(s, DRAIN_MS + 3000, &details, "SIGTERM");
    took = now_ms() - t0;
    E2E_ASSERT(code == GRPC_STATUS_UNAVAILABLE,
               "%s stream after SIGTERM: status %d (%s), want UNAVAILABLE",
               k ? "delta" : "SotW", (int)code, details);
    E2E_ASSERT(details != NULL && strstr(details, "shutting down") != NULL,
               "%s stream after SIGTERM: UNAVAILABLE '%s' is not the "
               "server's drain status (a transport reset?)",
               k ? "delta" : "SotW", details);
    E2E_ASSERT(took <= DRAIN_MS + 500,
               "%s stream ended %lld ms after SIGTERM; --drain-ms is %d",
               k ? "delta" : "SotW", took, DRAIN_MS);
    free(details);
  }
  for (long long end = now_ms() + 5000;
       server_proc_alive(g_sp) && now_ms() < end;)
    sleep_ms(10);
  E2E_ASSERT(!server_proc_alive(g_sp), "the server did not exit after SIGTERM");
  server_proc_stop(g_sp, &ws);
  E2E_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
             "the server exited with status 0x%x after SIGTERM", ws);
  sess_close(&sotw);
  sess_close(&delta);
  xds_client_free(g_client);
  g_client = NULL;

  /* Restart on the same port and store. */
  ck_assert_int_eq(server_proc_restart(g_sp), 0);
  g_gen_from = server_proc_log_get_mark(g_sp);
  g_gen = 0;
  store_changed();
  ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &g_client),
                   0);

  /* SotW: the versions it had; nothing is sent. */
  sess_open(&sotw, 0, 0, "drain-sotw", TENANT_PAYMENTS);
  sotw_send(sotw.lds, sotw.node, XDS_TYPE_LISTENER, lds_ver, NULL, NULL, NULL);
  sotw_send(sotw.ecds, sotw.node, XDS_TYPE_ECDS, ecds_ver, NULL, PAY_EXTS,
            NULL);
  /* Delta: initial_resource_versions; no resources. */
  {
    static const char *const star[] = {"*", NULL};
    sess_open(&delta, 1, 0, "drain-delta", TENANT_PAYMENTS);
    delta_send(delta.lds, delta.node, XDS_TYPE_LISTENER, NULL, star, NULL,
               (const char *const *)lkv, NULL);
    delta_send(delta.ecds, delta.node, XDS_TYPE_ECDS, NULL, PAY_EXTS, NULL,
               (const char *const *)ekv, NULL);
  }
  quiet(sotw.lds, 0, RESTART_QUIET_MS,
        "a SotW reconnect with the current versions");
  {
    int rc;
    char buf[1024];
    while ((rc = recv_got(delta.lds, 1, 200, &l)) == 0)
      E2E_ASSERT(l.n == 0 && l.n_removed == 0,
                 "a delta reconnect with the current versions got %s %s",
                 l.lds ? "LDS" : "ECDS", got_names(&l, buf, sizeof(buf)));
    E2E_ASSERT(rc == XDS_CLIENT_ETIMEDOUT, "delta after restart: %s",
               rc_str(rc));
  }
  kv_free(lkv);
  kv_free(ekv);
  sess_close(&sotw);
  sess_close(&delta);
}
END_TEST

/* ---- admin endpoints --------------------------------------------------- */

struct body {
  char *data;
  size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct body *b = ud;
  size_t n = size * nmemb;
  char *p = realloc(b->data, b->len + n + 1);

  if (p == NULL)
    return 0;
  b->data = p;
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* GETs path from the admin endpoint; returns the HTTP status and sets
 * *body (nullable) to a new string. */
static long http_get(const char *path, char **body) {
  struct body b = {NULL, 0};
  char url[256];
  long code = 0;
  int port = server_proc_admin_port(g_sp);
  CURL *c;
  CURLcode rc;

  E2E_ASSERT(port > 0, "no admin port in the server's log");
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  c = curl_easy_init();
  ck_assert_ptr_nonnull(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  rc = curl_easy_perform(c);
  E2E_ASSERT(rc == CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  if (body != NULL)
    *body = b.data != NULL ? b.data : strdup("");
  else
    free(b.data);
  return code;
}

/* The status object of node id in the JSON array of path (NULL when
 * absent). New reference. */
static json_t *proxy_status(const char *path, const char *id) {
  json_error_t jerr;
  json_t *arr, *found = NULL;
  char *body = NULL;
  long code = http_get(path, &body);
  size_t i;
  json_t *o;

  E2E_ASSERT(code == 200, "GET %s: HTTP %ld: %s", path, code, body);
  arr = json_loads(body, 0, &jerr);
  E2E_ASSERT(arr != NULL && json_is_array(arr),
             "GET %s is not a JSON array: %s", path, body);
  free(body);
  json_array_foreach(arr, i, o) {
    json_t *nid = json_object_get(o, "node_id");
    if (json_is_string(nid) && strcmp(json_string_value(nid), id) == 0) {
      found = json_incref(o);
      break;
    }
  }
  json_decref(arr);
  return found;
}

/* The state of resource name of type ("LDS"/"ECDS") in a proxy's status
 * ("" when absent); *error the NACK error (nullable, "" when none). */
static const char *res_state(json_t *p, const char *type, const char *name,
                             const char **error) {
  json_t *r = json_object_get(
      json_object_get(json_object_get(json_object_get(p, "types"), type),
                      "resources"),
      name);
  json_t *st = json_object_get(r, "state"), *er = json_object_get(r, "error");

  if (error != NULL)
    *error = json_is_string(er) ? json_string_value(er) : "";
  return json_is_string(st) ? json_string_value(st) : "";
}

/* Polls /debug/proxies/{id} until resource name reaches state (bounded). */
static json_t *wait_state(const char *id, const char *type, const char *name,
                          const char *state) {
  char path[128];
  long long end = now_ms() + 3000;
  json_t *p = NULL;

  snprintf(path, sizeof(path), "/debug/proxies/%s", id);
  for (;;) {
    json_decref(p);
    p = proxy_status(path, id);
    if (p != NULL && strcmp(res_state(p, type, name, NULL), state) == 0)
      return p;
    if (now_ms() > end)
      break;
    sleep_ms(50);
  }
  {
    char *dump = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
    E2E_FAIL("%s %s of %s never reached %s; status: %s", type, name, id, state,
             dump != NULL ? dump : "(proxy absent)");
  }
  return NULL;
}

START_TEST(admin_health_and_ready) {
  char *body = NULL;
  long code;

  code = http_get("/healthz", &body);
  E2E_ASSERT(code == 200, "/healthz: HTTP %ld (%s)", code, body);
  free(body);
  code = http_get("/readyz", &body);
  E2E_ASSERT(code == 200, "/readyz: HTTP %ld (%s)", code, body);
  free(body);
  code = http_get("/debug/proxies/no-such-node", NULL);
  E2E_ASSERT(code == 404, "/debug/proxies/no-such-node: HTTP %ld, want 404",
             code);
}
END_TEST

/* Per resource: DEPLOYMENT_PENDING once sent, FILTERS_DEPLOYED once ACKed,
 * DEPLOYMENT_FAILED with the NACK's error once NACKed; the node shown. */
START_TEST(admin_proxy_status) {
  static const char nack_msg[] = "e2e-status-nack: plugin on_configure failed";
  Envoy__Config__Core__V3__Node *node = node_new("status-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(XDS_METHOD_ADS);
  const char *err = NULL;
  struct got l, e, e2;
  json_t *p;

  sotw_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  must_recv(s, 0, XDS_TYPE_LISTENER, ANSWER_MS, &l, "LDS");
  ack(s, &l, NULL);
  sotw_send(s, NULL, XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &e, "ECDS");

  /* Sent, not ACKed: pending; the node is shown. */
  p = wait_state("status-1", "ECDS", E_AUTHZ, "DEPLOYMENT_PENDING");
  json_decref(p);
  p = proxy_status("/debug/proxies", "status-1");
  E2E_ASSERT(p != NULL, "/debug/proxies does not list status-1");
  E2E_ASSERT(json_is_string(json_object_get(p, "tenant")) &&
                 strcmp(json_string_value(json_object_get(p, "tenant")),
                        TENANT_PAYMENTS) == 0,
             "/debug/proxies: status-1 without its tenant");
  E2E_ASSERT(strcmp(res_state(p, "LDS", L_IN, NULL), "FILTERS_DEPLOYED") == 0,
             "LDS inbound-http of status-1 is '%s' after its ACK",
             res_state(p, "LDS", L_IN, NULL));
  json_decref(p);

  ack(s, &e, PAY_EXTS);
  p = wait_state("status-1", "ECDS", E_AUTHZ, "FILTERS_DEPLOYED");
  json_decref(p);

  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(s, 0, XDS_TYPE_ECDS, PUSH_MS, &e2, "a config change");
  nack(s, &e2, e.version, PAY_EXTS, nack_msg);
  p = wait_state("status-1", "ECDS", E_AUTHZ, "DEPLOYMENT_FAILED");
  res_state(p, "ECDS", E_AUTHZ, &err);
  E2E_ASSERT(strstr(err, nack_msg) != NULL,
             "DEPLOYMENT_FAILED without the NACK's error: '%s'", err);
  E2E_ASSERT(strcmp(res_state(p, "ECDS", E_SHARED, NULL), "FILTERS_DEPLOYED") ==
                 0,
             "shared-stats (not in the NACKed response) is '%s'",
             res_state(p, "ECDS", E_SHARED, NULL));
  json_decref(p);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* Issue 5 item 4: for every connected proxy the node id, tenant, class
 * and connected since. */
START_TEST(admin_proxy_fields) {
  Envoy__Config__Core__V3__Node *node = node_new("status-2", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(XDS_METHOD_DELTA_ADS);
  const char *key;
  int since = 0;
  struct got l;
  json_t *p, *v;

  delta_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_LISTENER, ANSWER_MS, &l, "delta LDS");
  p = proxy_status("/debug/proxies/status-2", "status-2");
  E2E_ASSERT(p != NULL, "/debug/proxies/status-2 does not show the proxy");
  E2E_ASSERT(json_is_string(json_object_get(p, "tenant")),
             "no tenant in the status of status-2");
  E2E_ASSERT(json_is_object(json_object_get(p, "class")) &&
                 json_is_string(json_object_get(json_object_get(p, "class"),
                                                "organization")),
             "no class (organization, tenant, mode, templates) in the "
             "status of status-2");
  json_object_foreach(p, key, v) {
    if (strstr(key, "since") != NULL || strstr(key, "connected") != NULL)
      since = 1;
  }
  {
    char *dump = json_dumps(p, JSON_COMPACT);
    E2E_ASSERT(since,
               "the status of a proxy has no 'connected since' field "
               "(issue 5 item 4): %s",
               dump);
    free(dump);
  }
  json_decref(p);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* ---- runner ------------------------------------------------------------ */

static TCase *tc_new(Suite *s, const char *name, void (*setup)(void),
                     void (*down)(void)) {
  TCase *tc = tcase_create(name);

  tcase_add_checked_fixture(tc, setup, down);
  tcase_set_timeout(tc, TEST_TIMEOUT_S);
  suite_add_tcase(s, tc);
  return tc;
}

static Suite *protocol_suite(void) {
  Suite *s = suite_create("protocol");
  TCase *tc;

  tc = tc_new(s, "sotw", setup_default, teardown);
  tcase_add_loop_test(tc, sotw_lds_wildcard_full_set, 0, 2);
  tcase_add_loop_test(tc, sotw_ecds_follows_subscription, 0, 2);
  tcase_add_loop_test(tc, sotw_version_and_nonce, 0, 2);
  tcase_add_loop_test(tc, sotw_stale_nonce_ignored, 0, 2);
  tcase_add_loop_test(tc, sotw_ack_never_resends, 0, 3);
  tcase_add_loop_test(tc, sotw_nack, 0, 3);
  tcase_add_loop_test(tc, node_change_refused, 0, 2);

  tc = tc_new(s, "delta", setup_default, teardown);
  tcase_add_loop_test(tc, delta_initial_resource_versions, 0, 2);
  tcase_add_loop_test(tc, delta_subscribe_unsubscribe, 0, 2);
  tcase_add_loop_test(tc, delta_wildcard, 0, 2);
  tcase_add_loop_test(tc, delta_removed_when_deleted, 0, 2);
  tcase_add_loop_test(tc, delta_removed_when_access_lost, 0, 2);
  tcase_add_loop_test(tc, delta_system_version_info, 0, 2);
  tcase_add_loop_test(tc, ecds_name_appears_later, 0, 2);

  tc = tc_new(s, "standalone", setup_default, teardown);
  tcase_add_loop_test(tc, standalone_serves_its_type, 0, 4);

  tc = tc_new(s, "push", setup_default, teardown);
  tcase_add_loop_test(tc, push_config_only_is_ecds, 0, 2);
  tcase_add_loop_test(tc, push_membership_is_lds, 0, 2);
  tcase_add_loop_test(tc, push_other_tenant_untouched, 0, 2);
  tcase_add_loop_test(tc, push_lds_before_ecds, 0, 2);

  tc = tc_new(s, "load", NULL, teardown);
  tcase_add_loop_test(tc, nack_storm, 0, 2);
  tcase_add_test(tc, never_reading_client);

  tc = tc_new(s, "mtls", setup_mtls, teardown_mtls);
  tcase_add_test(tc, mtls_sotw_by_name);
  tcase_add_test(tc, mtls_metadata_claim);
  tcase_add_test(tc, mtls_delta_subscribe);
  tcase_add_test(tc, mtls_no_client_cert);

  tc = tc_new(s, "lifecycle", NULL, teardown);
  tcase_add_test(tc, drain_and_restart);

  tc = tc_new(s, "admin", setup_default, teardown);
  tcase_add_test(tc, admin_health_and_ready);
  tcase_add_test(tc, admin_proxy_status);
  tcase_add_test(tc, admin_proxy_fields);
  return s;
}

int main(void) {
  SRunner *sr;
  int failed;

  snprintf(g_base, sizeof(g_base), "/tmp/wasmxds-protocol-XXXXXX");
  if (mkdtemp(g_base) == NULL) {
    perror("mkdtemp");
    return EXIT_FAILURE;
  }
  sr = srunner_create(protocol_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  rm_tree(g_base);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
