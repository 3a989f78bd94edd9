/*
 * loadgen_run.h: what the files of `loadgen run` share (see loadgen.c for
 * what the program does). One thread drives everything; nothing here is
 * thread-safe.
 */
#ifndef WASMXDS_BENCH_LOADGEN_RUN_H
#define WASMXDS_BENCH_LOADGEN_RUN_H

#include "bench_node.h"
#include "loadgen.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/wasm/v3/wasm.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "google/rpc/status.pb-c.h"

/* ---- Debian's abseil runs a lock-order deadlock detector in every gRPC
 * mutex (perf-notes.md): switch it off, as the server does. Weak, so the
 * program still links where the symbol does not exist. */
extern void
_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(int)
    __attribute__((weak));

#define TYPE_PREFIX "type.googleapis.com/"
#define TYPE_LISTENER TYPE_PREFIX "envoy.config.listener.v3.Listener"
#define TYPE_ECDS TYPE_PREFIX "envoy.config.core.v3.TypedExtensionConfig"
#define TYPE_HCM                                                               \
  TYPE_PREFIX "envoy.extensions.filters.network.http_connection_manager.v3."   \
              "HttpConnectionManager"
#define TYPE_WASM TYPE_PREFIX "envoy.extensions.filters.http.wasm.v3.Wasm"
#define TYPE_RBAC TYPE_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"
#define TYPE_STRING TYPE_PREFIX "google.protobuf.StringValue"
#define METHOD_ADS                                                             \
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/"                    \
  "StreamAggregatedResources"
#define METHOD_DELTA_ADS                                                       \
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/"                    \
  "DeltaAggregatedResources"

#define MAX_PROXIES 100000
#define MAX_STEPS 16
#define MAX_NAMES 1000000   /* distinct resource names, all proxies */
#define MAX_MSG (16u << 20) /* largest response accepted */
#define TICK_MS 10          /* bound on one completion-queue wait */
#define DRAIN_S 20.0        /* bound on the teardown */
#define FAIL_LOG_MAX 10     /* stream failures / NACKs / strays named */
/* A phase ends when the server is quiet: its CPU counter in /proc/PID/stat
 * (utime + stime, in clock ticks of 10 ms) has not moved for QUIET_SETTLE_MS,
 * read every TICK_MS. Every server CPU figure runs from before the phase to
 * that point, and the RSS figures are read there. */
#define QUIET_SETTLE_MS 500

#define TAG_RECV 1u
#define TAG_SEND 2u
#define TAG_STATUS 3u

struct srv_sample {
  int ok;
  double cpu_s; /* utime + stime, seconds */
  double rss_kib;
};

struct self_sample {
  double user_s, sys_s, maxrss_kib;
};

struct idset {
  uint32_t *v;
  uint32_t n;
};

struct dc_entry {
  uint64_t hash;
  size_t len;
  uint8_t *bytes;
  int kind; /* 1 listener, 2 ecds */
  uint32_t name;
  struct idset ecds; /* listener: normalized ECDS names */
};
/* Decode cache size: slots (open addressing) and bytes held. */
#define DC_SLOTS (1u << 16)
#define DC_MAX_BYTES ((size_t)256 << 20)

struct lis {
  uint32_t name;     /* interned listener name */
  struct idset ecds; /* ECDS names its HCMs reference */
  uint64_t hash;     /* of its bytes: a new hash under the same name is a
                        drain (Envoy rebuilds and drains a listener whose
                        config changed) */
};

struct proxy {
  grpc_channel *ch;
  grpc_call *call;
  grpc_byte_buffer *recv_bb;
  grpc_byte_buffer *send_bb;
  grpc_metadata_array imd, tmd;
  grpc_status_code status;
  grpc_slice details;

  uint32_t idx;
  uint16_t tenant;
  uint8_t gateway;
  uint8_t recv_pending, send_pending, status_pending;
  uint8_t started, ended, failed, cancelled, imd_posted;
  uint8_t lds_ok; /* an LDS response has been decoded and ACKed */
  uint8_t full;   /* holds a full config (counted in g.n_full) */
  uint8_t ever_full;
  uint8_t owe_lds, owe_ecds; /* a request of that type is to be sent */
  uint8_t lds_ack_nonce, ecds_ack_nonce; /* delta: nonce to echo */

  char *lds_ver, *lds_nonce, *ecds_ver, *ecds_nonce;
  char *lds_err, *ecds_err; /* NACK text to send, or NULL */

  struct lis *lis;
  uint32_t nlis;
  struct idset want; /* union of the listeners' ECDS names */
  uint8_t *got;      /* parallel to want: decoded and ACKed */
  struct idset sub;  /* delta: what the server was told we subscribe */

  uint32_t mark_gen; /* step in which the fields below were reset */
  uint32_t mark_msgs, mark_lds, mark_ecds;
  uint32_t mark_drains;   /* listeners changed or removed (each a drain) */
  uint32_t mark_ecds_res; /* ECDS configs received (resources) */
  double t_full, t_done;

  uint64_t msgs, bytes;
};

struct step {
  char name[64];
  char src[1024], dst[1024];
  int expect_kind; /* 0 all, 1 none, 2 tenant */
  int expect_tenant;
  int hup;
};

/* The proxy's Node and its strings, built on the stack of the caller. */
struct node_buf {
  struct bench_node n;
  char id[32], cluster[16], tenant[320], app[16], ver[8];
};

struct phase_base {
  double t0;
  uint64_t msgs, bytes, lds, ecds, nacks, decode_errors, stray, removed, reqs;
  uint64_t drains, ecds_res;
  uint32_t failed;
  struct srv_sample srv;
  struct self_sample self;
};

/* Everything of one run: options, the proxies, counters, the current
 * step (defined in loadgen.c). */
struct lg_state {
  /* options */
  const char *target;
  const char *org;
  int n, tenants, gateway_every, delta, quiet_ms, timeout_s, idle_s;
  const char *label;
  int wave_period_s, wave_percent; /* --nack-wave; 0: no waves */
  struct step steps[MAX_STEPS];
  int nsteps;

  grpc_completion_queue *cq;
  grpc_slice method;
  struct proxy *px;

  /* counters */
  uint32_t n_full, n_failed, n_started_streams;
  uint64_t msgs, bytes, msgs_lds, msgs_ecds, nacks, decode_errors, stray_ecds,
      ecds_removed, bytes_sent, reqs_sent;
  uint64_t drains;     /* listener drains, all proxies (see struct lis) */
  uint64_t ecds_res;   /* ECDS configs received, all proxies */
  uint64_t wave_nacks; /* ECDS pushes NACKed on purpose (--nack-wave) */
  double last_rx;
  int fail_logged, nack_logged, stray_logged;

  /* the current step */
  uint32_t gen; /* 0 = no step yet */
  double mark_t0;
  int expect_kind, expect_tenant;
  uint32_t expected, expected_rx;
  double t_last_delivery, t_last_done;
  struct srv_sample srv_at_delivery;
};

/* The one run (loadgen.c). */
extern struct lg_state g;
extern long g_clk_tck;
extern int g_server_pid;
extern char **g_names;
extern struct dc_entry *g_dc; /* DC_SLOTS, open addressing */
extern int g_dc_off;
extern uint64_t g_dc_hits, g_dc_misses;
extern grpc_channel_args *g_chargs;
extern double g_srv_baseline_kib;

/* ---- loadgen_sample.c ---- */

/* Seconds on the monotonic clock. */
double now_s(void);

/* CPU seconds and RSS of the server (--server-pid); .ok = 0 when
 * there is none or /proc cannot be read. */
struct srv_sample srv_sample(void);

/* The server once quiet (QUIET_SETTLE_MS without a CPU tick), the
 * generator's completion queue pumped meanwhile; bounded by g.timeout_s.
 * The sample is the one read at the end (its CPU equals the last change);
 * *t_quiet is the time the counter last moved (the call's start if it never
 * did), and *quiet is 0 when the bound ran out first. .ok = 0 without
 * --server-pid (then it returns at once). */
struct srv_sample srv_wait_quiet(double *t_quiet, int *quiet);

/* This process's CPU seconds and peak RSS (getrusage). */
struct self_sample self_sample(void);

/* This process's current RSS in KiB. */
double self_rss_kib(void);

/* ---- loadgen_ids.c ---- */

/* Returns the id of s, adding it; UINT32_MAX when the table is full. */
uint32_t intern(const char *s);

/* Allocates the intern table; 0 or -1. */
int intern_init(void);

/* Frees the intern table and its names. */
void intern_free(void);

/* 1 when the normalized set s holds id. */
int idset_has(const struct idset *s, uint32_t id);

/* Index of id in the normalized set s (which holds it). */
uint32_t idset_index(const struct idset *s, uint32_t id);

/* Sorts and removes duplicates in place. */
void idset_normalize(struct idset *s);

/* 1 when the normalized sets a and b are equal. */
int idset_equal(const struct idset *a, const struct idset *b);

/* A 64-bit hash of n bytes, never 0. */
uint64_t hash_bytes(const uint8_t *p, size_t n);

/* The decode cache entry of kind (1 listener, 2 ECDS) for the bytes p
 * with hash h, or NULL. */
struct dc_entry *dc_find(int kind, const uint8_t *p, size_t n, uint64_t h);

/* Adds the decoded result of the bytes p (name, and ecds for a
 * listener) to the decode cache, unless it is full. */
void dc_put(int kind, const uint8_t *p, size_t n, uint64_t h, uint32_t name,
            const struct idset *ecds);

/* Frees the decode cache. */
void dc_free(void);

/* ---- loadgen_proxy.c ---- */

/* Logs what happened to proxy p, for the first FAIL_LOG_MAX failures. */
void fail_log(struct proxy *p, const char *what);

/* 1 when the current step expects p to receive a change. */
int expected_proxy(const struct proxy *p);

/* Replaces *dst with a copy of src ("" for NULL). */
void set_str(char **dst, const char *src);

/* Marks p as holding (or no longer holding) a full config at now. */
void set_full(struct proxy *p, int full, double now);

/* 1 when p has ACKed LDS and every ECDS name its listeners reference. */
int holds_all(const struct proxy *p);

/* 1 when --nack-wave is on now (wall clock: a wave in every odd period of
 * wave_period_s seconds since the epoch, so that successive runs and
 * several generators agree) and proxy idx is one of its wave_percent per
 * cent (idx % 100 < wave_percent); else 0. */
int nack_wave_on(uint32_t idx, time_t now, int wave_period_s, int wave_percent);

/* The completion-queue tag of operation kind (TAG_*) of p. */
void *tag_of(struct proxy *p, unsigned kind);

/* Starts the next owed send if none is in flight. */
void pump_send(struct proxy *p);

/* ---- loadgen_response.c ---- */

/* Frees n listeners of l and l. */
void free_lis(struct lis *l, uint32_t n);

/* Handles one SotW response of len bytes received by p. */
void on_sotw(struct proxy *p, const uint8_t *data, size_t len, double now);

/* Handles one delta response of len bytes received by p. */
void on_delta(struct proxy *p, const uint8_t *data, size_t len, double now);

/* ---- loadgen_stream.c ---- */

/* One bounded wait plus everything already queued. */
void pump(int ms);

/* Builds the channel arguments every proxy's channel uses. */
void channel_args_init(void);

/* Creates p's channel and call and posts its first operations; 0 or
 * -1. */
int start_proxy(struct proxy *p, grpc_channel_credentials *creds);

/* ---- loadgen_phase.c ---- */

/* Phase 1: every proxy connects at once; 0 when all hold a full config. */
int run_storm(grpc_channel_credentials *creds);

/* Phase 2: applies one store change and measures who receives it. */
void run_step(const struct step *st);

/* Phase 3: nothing changes for --idle-s seconds. */
void run_idle(void);

/* Cancels every call, drains them (bounded) and destroys the queue. */
void teardown(void);

#endif
