/*
 * protocol.h: what the groups of tests/check_protocol share: the fixture
 * (a private store copy and the real wasmxds on it, started per test),
 * requests, decoded responses and sessions, and one registration function
 * per group (tests/protocol/<group>.c). See tests/check_protocol.c.
 *
 * Every helper fails the test (with the server's log) when something it
 * needs does not happen; state is per test process (Check's fork mode).
 */
#ifndef XDS_TESTS_PROTOCOL_H
#define XDS_TESTS_PROTOCOL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#include "google/protobuf/wrappers.pb-c.h"
#include "google/rpc/status.pb-c.h"

#ifndef XDS_TEST_DATA
#error "XDS_TEST_DATA must name the tests/data directory"
#endif

/* The server E2E_FAIL dumps the log of (tests/testkit.h). */
#define E2E_SERVER g_sp

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

/* ---- the fixture's state (fixture.c) ---- */

extern char g_base[64];   /* made by main(); every test's directory is in it */
extern char g_tmp[128];   /* this test's directory */
extern char g_store[160]; /* g_tmp/store, the store the server reads */
extern struct server_proc *g_sp;
extern struct xds_client *g_client;
extern unsigned g_gen;    /* last store generation the server served */
extern size_t g_gen_from; /* log offset where the running server's log starts */
/* Every message payload the test received through the helpers below, for
 * assertions on the bytes that crossed the wire. */
extern uint8_t *g_wire;
extern size_t g_wire_len, g_wire_cap;

/* Every LDS of tenant payments, its extensions, and its HTTP filter chain. */
extern const char *const PAY_LISTENERS[];
extern const char *const PAY_EXTS[];
extern const char *const PAY_CHAIN;

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

struct sess {
  int delta;
  struct xds_stream *lds, *ecds; /* the same stream on ADS */
  Envoy__Config__Core__V3__Node *node;
};

/* ---- helpers (fixture.c) ---- */

/* A readable text for an xds_client return code. */
const char *rc_str(int rc);

/* Appends one received payload to the bytes that crossed the wire. */
void wire_add(const uint8_t *data, size_t len);

/* Occurrences of s in the bytes received so far. */
size_t wire_count(const char *s);

/* Writes g_store/name atomically: a hidden temporary (which the store
 * skips) renamed into place, as editors and deploy tools do. */
void store_write(const char *name, const char *data, size_t len);

/* Replaces the first `from` in store file name with `to`. */
void store_replace(const char *name, const char *from, const char *to);

/* Sets the "rev: N" of the config in store file name to rev: a config-only
 * change. */
void store_set_rev(const char *name, int rev);

/* Removes store file name. */
void store_remove(const char *name);

/* Copies tests/data/protocol/extra/name into the store. */
void store_add_extra(const char *name);

/* Waits for the log line of store generation gen of the running server
 * ("serving ... generation N:" or "serving generation N (...)"). */
void wait_gen(unsigned gen);

/* After a store edit: the server reloads and serves the next generation. */
void store_changed(void);

/* Copies the fixture store into a new directory for this test. */
void setup_store(void);

/* Starts the server on the test's store with extra args (nullable) and
 * waits for its first generation. No client. The server's module cache is
 * in the test's directory, so it goes with it however the test ends (a
 * failed check exits at once, without teardown). */
void start_server(const char *const *args);

/* As start_server(), plus a plaintext client. */
void start_plain(const char *const *args);

/* Fixture: a fresh store copy, the server on it and a plaintext client. */
void setup_default(void);

/* Frees the client, stops the server (which must exit 0 by itself after
 * SIGTERM), removes the test's directory. */
void teardown(void);

/* A new Node (free with xds_node_free) for proxy id of tenant (NULL:
 * no tenant, organization acme), SIDECAR mode. */
Envoy__Config__Core__V3__Node *node_new(const char *id, const char *tenant);

/* Length of a NULL-terminated list (0 for NULL). */
size_t list_len(const char *const *v);

/* Opens a stream of method on g_client; fails the test if it cannot. */
struct xds_stream *open_stream(const char *method);

/* A SotW request; node, version, nonce, names (NULL-terminated) and error
 * (a NACK's message) are nullable. */
void sotw_send(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
               const char *type_url, const char *version, const char *nonce,
               const char *const *names, const char *error);

/* A delta request; every argument but s and type_url is nullable; initial
 * is a NULL-terminated list of name, version pairs. */
void delta_send(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                const char *type_url, const char *nonce, const char *const *sub,
                const char *const *unsub, const char *const *initial,
                const char *error);

/* The names in g, space-separated, in buf (returned). */
const char *got_names(const struct got *g, char *buf, size_t size);

/* Index of resource name in g, or -1. */
int got_find(const struct got *g, const char *name);

/* 1 when g carries a resource named name. */
int got_has(const struct got *g, const char *name);

/* 1 when g (delta) lists name in removed_resources. */
int got_removed(const struct got *g, const char *name);

/* Asserts that g holds exactly the resources of the NULL-terminated want,
 * each once. */
void got_exactly(const struct got *g, const char *const *want,
                 const char *what);

/* Receives the next message; 0 and g filled, or the client's code. */
int recv_got(struct xds_stream *s, int delta, int ms, struct got *g);

/* Receives the next message, which must be of type_url (NULL: any served
 * type). Says why when none arrives. */
void must_recv(struct xds_stream *s, int delta, const char *type_url, int ms,
               struct got *g, const char *what);

/* Asserts that nothing arrives on s for ms; says what came if it did. */
void quiet(struct xds_stream *s, int delta, int ms, const char *after);

/* ACKs g. SotW: names is the subscription to repeat (NULL: none, as for
 * wildcard LDS). */
void ack(struct xds_stream *s, const struct got *g, const char *const *names);

/* NACKs g with error; SotW keeps prev_version (the last good one). */
void nack(struct xds_stream *s, const struct got *g, const char *prev_version,
          const char *const *names, const char *error);

/* Waits for the stream's final status. */
grpc_status_code must_status(struct xds_stream *s, int ms, char **details,
                             const char *what);

/* Opens a session for node_id of tenant: one ADS stream, or the two
 * standalone ones (LDS and ECDS), SotW or delta. */
void sess_open(struct sess *ss, int delta, int standalone, const char *node_id,
               const char *tenant);

/* Frees the session's streams and node. */
void sess_close(struct sess *ss);

/* Subscribes LDS (sub NULL: SotW wildcard; delta ["*"]) and reads, checks
 * and ACKs the first response. */
void sess_lds(struct sess *ss, struct got *g);

/* Subscribes ECDS to names (NULL-terminated) and reads and ACKs the
 * first response. */
void sess_ecds(struct sess *ss, const char *const *names, struct got *g);

/* Collects name, version pairs of a delta response into kv (a
 * NULL-terminated list of pairs of new strings). */
void kv_add(char **kv, size_t cap, const struct got *g);

/* Frees the strings of kv (from kv_add) and empties it. */
void kv_free(char **kv);

/* A session that holds LDS and the ECDS names of its listeners, both
 * ACKed (delta: 0 SotW, 1 delta; on ADS). */
void push_session(struct sess *ss, int delta, const char *id,
                  const char *tenant, const char *const *names);

/* ---- the groups: each adds its TCase to s (one file each) ---- */

/* Per-test limit in seconds of every TCase (scaled by
 * CK_TIMEOUT_MULTIPLIER). */
TCase *protocol_tcase(Suite *s, const char *name, void (*setup)(void),
                      void (*down)(void));
/* SotW semantics (sotw.c). */
void protocol_add_sotw(Suite *s);
/* Delta semantics (delta.c). */
void protocol_add_delta(Suite *s);
/* The standalone LDS and ECDS services (standalone.c). */
void protocol_add_standalone(Suite *s);
/* Pushes after store edits (push.c). */
void protocol_add_push(Suite *s);
/* Load: a NACK storm, a client that never reads (load.c). */
void protocol_add_load(Suite *s);
/* Mutual TLS (mtls.c). */
void protocol_add_mtls(Suite *s);
/* Drain and restart (lifecycle.c). */
void protocol_add_lifecycle(Suite *s);
/* The admin endpoints (admin.c). */
void protocol_add_admin(Suite *s);

#endif
