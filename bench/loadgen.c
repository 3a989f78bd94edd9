/*
 * loadgen.c: the fleet load generator. N simulated Envoys on ADS against a
 * running wasmxds, each on its own gRPC connection, all driven by ONE
 * thread and ONE completion queue.
 *
 *   loadgen run --target HOST:PORT -n N --tenants T [options]
 *   loadgen gen-store --dir DIR --extensions E --tenants T   (loadgen_store.c)
 *
 * Each proxy behaves as Envoy over ADS, state of the world (or delta with
 * --delta): LDS wildcard; decode every Listener and its HTTP connection
 * manager; subscribe ECDS to exactly the names of the HCMs' http_filters
 * that use config_discovery; decode every TypedExtensionConfig (Wasm with
 * its PluginConfig, or the RBAC substitute); ACK after decoding, NACK (with
 * error_detail, keeping the last good version) what it cannot decode; keep
 * the stream open and ACK every later push. A proxy "holds a full config"
 * once it has acknowledged LDS and every ECDS name its listeners reference.
 *
 * Phases, in order:
 *  1. storm: all N channels and streams are created at once; the phase ends
 *     when all N hold a full config (or a stream fails, or --timeout-s).
 *  2. each --step NAME,SRC,DST,EXPECT[,hup]: t0 is taken, SRC is renamed
 *     over DST (one atomic store write; the server's inotify watcher
 *     reloads after its debounce), and with "hup" the server is sent
 *     SIGHUP at once (a reload without the debounce). EXPECT says which
 *     proxies should change: all, none, or tenant=tNNN. The step ends when
 *     every expected proxy has received something since t0 and no message
 *     has arrived for --quiet-ms. Per proxy, the latency is t0 -> the last
 *     request (ACK) it sent after receiving the change, once it again holds
 *     a full config. Proxies that were not expected to change but received
 *     anything are counted and named.
 *  3. --idle-s S: nothing changes for S seconds; messages received, server
 *     CPU and RSS are reported.
 * Then every call is cancelled, drained (bounded), and the process exits.
 *
 * Decoding: each distinct resource (equal bytes) is decoded once and the
 * result reused by every proxy receiving the same bytes (a proxy class gets
 * identical listeners), which keeps the generator's CPU off the server's
 * cores; --no-decode-cache decodes every copy, as N real Envoys would.
 *
 * With --server-pid, the server's RSS (VmRSS of /proc/PID/status) and CPU
 * seconds (utime + stime of /proc/PID/stat, all its threads) are sampled at
 * the phase boundaries; the generator's own CPU is from getrusage().
 *
 * Output: a table per phase on stdout, and one machine-readable line per
 * phase starting with "FLEET " (key=value pairs).
 */
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
#define ACK_GRACE_S 0.25    /* last ACK sent -> server CPU sample */

#define TAG_RECV 1u
#define TAG_SEND 2u
#define TAG_STATUS 3u

/* ------------------------------------------------------------------ */
/* Time, /proc, rusage */

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct srv_sample {
  int ok;
  double cpu_s; /* utime + stime, seconds */
  double rss_kib;
};

static long g_clk_tck = 100;
static int g_server_pid;

static struct srv_sample srv_sample(void) {
  struct srv_sample s = {0, 0, 0};
  char path[64], buf[4096], *p;
  unsigned long long ut = 0, st = 0;
  FILE *f;
  size_t n;
  int field;

  if (g_server_pid <= 0)
    return s;
  snprintf(path, sizeof(path), "/proc/%d/stat", g_server_pid);
  f = fopen(path, "r");
  if (f == NULL)
    return s;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');
  if (p == NULL)
    return s;
  /* After ")": field 3 (state) ... utime is field 14, stime 15. */
  p += 2;
  for (field = 3; field < 14 && p != NULL; field++) {
    p = strchr(p, ' ');
    if (p != NULL)
      p++;
  }
  if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2)
    return s;
  s.cpu_s = (double)(ut + st) / (double)g_clk_tck;
  snprintf(path, sizeof(path), "/proc/%d/status", g_server_pid);
  f = fopen(path, "r");
  if (f == NULL)
    return s;
  while (fgets(buf, sizeof(buf), f) != NULL) {
    if (strncmp(buf, "VmRSS:", 6) == 0) {
      s.rss_kib = strtod(buf + 6, NULL);
      break;
    }
  }
  fclose(f);
  s.ok = 1;
  return s;
}

struct self_sample {
  double user_s, sys_s, maxrss_kib;
};

static struct self_sample self_sample(void) {
  struct rusage ru;
  struct self_sample s = {0, 0, 0};

  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    s.user_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    s.sys_s = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    s.maxrss_kib = (double)ru.ru_maxrss;
  }
  return s;
}

static double self_rss_kib(void) {
  char buf[256];
  double v = 0;
  FILE *f = fopen("/proc/self/status", "r");

  if (f == NULL)
    return 0;
  while (fgets(buf, sizeof(buf), f) != NULL)
    if (strncmp(buf, "VmRSS:", 6) == 0) {
      v = strtod(buf + 6, NULL);
      break;
    }
  fclose(f);
  return v;
}

/* ------------------------------------------------------------------ */
/* Interned resource names: id <-> string, open addressing. */

static char **g_names;
static uint32_t g_nnames;
static uint32_t *g_name_slots; /* id + 1, 0 = empty */
static uint32_t g_name_cap;    /* slots, a power of two */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;

  while (*s != '\0') {
    h ^= (unsigned char)*s++;
    h *= 1099511628211ull;
  }
  return h;
}

/* Returns the id of s, adding it; UINT32_MAX when the table is full. */
static uint32_t intern(const char *s) {
  uint32_t mask = g_name_cap - 1, i = (uint32_t)hash_str(s) & mask;

  for (;;) {
    uint32_t v = g_name_slots[i];

    if (v == 0)
      break;
    if (strcmp(g_names[v - 1], s) == 0)
      return v - 1;
    i = (i + 1) & mask;
  }
  if (g_nnames >= MAX_NAMES || (g_names[g_nnames] = strdup(s)) == NULL)
    return UINT32_MAX;
  g_name_slots[i] = ++g_nnames;
  return g_nnames - 1;
}

static int intern_init(void) {
  g_name_cap = 1u << 21; /* > 2 x MAX_NAMES */
  g_names = calloc(MAX_NAMES, sizeof(*g_names));
  g_name_slots = calloc(g_name_cap, sizeof(*g_name_slots));
  return g_names != NULL && g_name_slots != NULL ? 0 : -1;
}

static void intern_free(void) {
  uint32_t i;

  for (i = 0; i < g_nnames; i++)
    free(g_names[i]);
  free(g_names);
  free(g_name_slots);
}

/* ------------------------------------------------------------------ */
/* Sorted id sets */

struct idset {
  uint32_t *v;
  uint32_t n;
};

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return x < y ? -1 : x > y;
}

static int idset_has(const struct idset *s, uint32_t id) {
  uint32_t lo = 0, hi = s->n;

  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;

    if (s->v[mid] == id)
      return 1;
    if (s->v[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

static uint32_t idset_index(const struct idset *s, uint32_t id) {
  uint32_t lo = 0, hi = s->n;

  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;

    if (s->v[mid] == id)
      return mid;
    if (s->v[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return UINT32_MAX;
}

/* Sorts and removes duplicates in place. */
static void idset_normalize(struct idset *s) {
  uint32_t i, j = 0;

  if (s->n == 0)
    return;
  qsort(s->v, s->n, sizeof(uint32_t), cmp_u32);
  for (i = 1; i < s->n; i++)
    if (s->v[i] != s->v[j])
      s->v[++j] = s->v[i];
  s->n = j + 1;
}

static int idset_equal(const struct idset *a, const struct idset *b) {
  return a->n == b->n &&
         (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(uint32_t)) == 0);
}

/* ------------------------------------------------------------------ */
/* Decode cache. Proxies of one class receive the very same resource bytes;
 * each distinct resource is decoded once and its result (the listener's
 * ECDS names, or the ECDS name) reused when the bytes are equal (compared
 * in full, not only hashed). --no-decode-cache decodes every copy. */

struct dc_entry {
  uint64_t hash;
  size_t len;
  uint8_t *bytes;
  int kind; /* 1 listener, 2 ecds */
  uint32_t name;
  struct idset ecds; /* listener: normalized ECDS names */
};

#define DC_SLOTS (1u << 16)
#define DC_MAX_BYTES ((size_t)256 << 20)

static struct dc_entry *g_dc; /* DC_SLOTS, open addressing */
static size_t g_dc_bytes, g_dc_n;
static int g_dc_off;
static uint64_t g_dc_hits, g_dc_misses;

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
  size_t i = 0;

  for (; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  for (; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  return h ? h : 1;
}

static struct dc_entry *dc_find(int kind, const uint8_t *p, size_t n,
                                uint64_t h) {
  uint32_t i = (uint32_t)h & (DC_SLOTS - 1), k;

  if (g_dc == NULL)
    return NULL;
  for (k = 0; k < DC_SLOTS; k++, i = (i + 1) & (DC_SLOTS - 1)) {
    struct dc_entry *e = &g_dc[i];

    if (e->hash == 0)
      return NULL;
    if (e->hash == h && e->len == n && e->kind == kind &&
        memcmp(e->bytes, p, n) == 0)
      return e;
  }
  return NULL;
}

static void dc_put(int kind, const uint8_t *p, size_t n, uint64_t h,
                   uint32_t name, const struct idset *ecds) {
  uint32_t i = (uint32_t)h & (DC_SLOTS - 1);
  struct dc_entry *e;

  if (g_dc == NULL || g_dc_n >= DC_SLOTS / 2 || g_dc_bytes + n > DC_MAX_BYTES)
    return;
  while (g_dc[i].hash != 0)
    i = (i + 1) & (DC_SLOTS - 1);
  e = &g_dc[i];
  e->bytes = malloc(n > 0 ? n : 1);
  if (e->bytes == NULL)
    return;
  if (ecds != NULL && ecds->n > 0) {
    e->ecds.v = malloc(ecds->n * sizeof(uint32_t));
    if (e->ecds.v == NULL) {
      free(e->bytes);
      return;
    }
    memcpy(e->ecds.v, ecds->v, ecds->n * sizeof(uint32_t));
    e->ecds.n = ecds->n;
  }
  memcpy(e->bytes, p, n);
  e->hash = h;
  e->len = n;
  e->kind = kind;
  e->name = name;
  g_dc_bytes += n;
  g_dc_n++;
}

static void dc_free(void) {
  uint32_t i;

  if (g_dc == NULL)
    return;
  for (i = 0; i < DC_SLOTS; i++) {
    free(g_dc[i].bytes);
    free(g_dc[i].ecds.v);
  }
  free(g_dc);
  g_dc = NULL;
}

/* ------------------------------------------------------------------ */
/* Proxies */

struct lis {
  uint32_t name;     /* interned listener name */
  struct idset ecds; /* ECDS names its HCMs reference */
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

static struct {
  /* options */
  const char *target;
  const char *org;
  int n, tenants, gateway_every, delta, quiet_ms, timeout_s, idle_s;
  const char *label;
  struct step steps[MAX_STEPS];
  int nsteps;

  grpc_completion_queue *cq;
  grpc_slice method;
  struct proxy *px;

  /* counters */
  uint32_t n_full, n_failed, n_started_streams;
  uint64_t msgs, bytes, msgs_lds, msgs_ecds, nacks, decode_errors, stray_ecds,
      ecds_removed, bytes_sent, reqs_sent;
  double last_rx;
  int fail_logged, nack_logged, stray_logged;

  /* the current step */
  uint32_t gen; /* 0 = no step yet */
  double mark_t0;
  int expect_kind, expect_tenant;
  uint32_t expected, expected_rx;
  double t_last_delivery, t_last_done;
  struct srv_sample srv_at_delivery;
} g;

static void fail_log(struct proxy *p, const char *what) {
  if (g.fail_logged++ < FAIL_LOG_MAX)
    fprintf(stderr, "loadgen: proxy-%05u: %s\n", p->idx, what);
}

static int expected_proxy(const struct proxy *p) {
  switch (g.expect_kind) {
  case 0:
    return 1;
  case 2:
    return p->tenant == g.expect_tenant;
  default:
    return 0;
  }
}

static void set_str(char **dst, const char *src) {
  free(*dst);
  *dst = strdup(src != NULL ? src : "");
}

static void set_full(struct proxy *p, int full, double now) {
  if (full && !p->full) {
    p->full = 1;
    g.n_full++;
    if (!p->ever_full) {
      p->ever_full = 1;
      p->t_full = now;
    }
  } else if (!full && p->full) {
    p->full = 0;
    g.n_full--;
  }
}

static int holds_all(const struct proxy *p) {
  uint32_t i;

  if (!p->lds_ok)
    return 0;
  for (i = 0; i < p->want.n; i++)
    if (!p->got[i])
      return 0;
  return 1;
}

/* ---- Requests ---- */

static void *tag_of(struct proxy *p, unsigned kind) {
  return (void *)((uintptr_t)p | kind);
}

static Google__Protobuf__Value *str_value(Google__Protobuf__Value *v,
                                          const char *s) {
  google__protobuf__value__init(v);
  v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  v->string_value = (char *)s;
  return v;
}

/* Packs msg into a new byte buffer. */
static grpc_byte_buffer *pack_bb(const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  grpc_slice sl = grpc_slice_malloc(len);
  grpc_byte_buffer *bb;

  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(sl));
  bb = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  g.bytes_sent += len;
  return bb;
}

/* The proxy's Node, built on the stack of the caller through nb. */
struct node_buf {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md, labels;
  Google__Protobuf__Struct__FieldsEntry e[3], le[2];
  Google__Protobuf__Struct__FieldsEntry *ep[3], *lep[2];
  Google__Protobuf__Value v[3], lv[2];
  char id[32], cluster[16], tenant[320], app[16], ver[8];
};

static void build_node(struct proxy *p, struct node_buf *nb) {
  int i;

  envoy__config__core__v3__node__init(&nb->node);
  google__protobuf__struct__init(&nb->md);
  google__protobuf__struct__init(&nb->labels);
  snprintf(nb->id, sizeof(nb->id), "proxy-%05u", p->idx);
  snprintf(nb->cluster, sizeof(nb->cluster), "t%03u", p->tenant);
  snprintf(nb->tenant, sizeof(nb->tenant), "organizations/%s/tenants/t%03u",
           g.org, p->tenant);
  snprintf(nb->app, sizeof(nb->app), "app-%u", p->idx % LOADGEN_APPS);
  snprintf(nb->ver, sizeof(nb->ver), "v%u", 1 + p->idx % 2);
  for (i = 0; i < 3; i++) {
    google__protobuf__struct__fields_entry__init(&nb->e[i]);
    nb->ep[i] = &nb->e[i];
  }
  for (i = 0; i < 2; i++) {
    google__protobuf__struct__fields_entry__init(&nb->le[i]);
    nb->lep[i] = &nb->le[i];
  }
  nb->e[0].key = "wasmxds.tenant";
  nb->e[0].value = str_value(&nb->v[0], nb->tenant);
  nb->e[1].key = "wasmxds.mode";
  nb->e[1].value = str_value(&nb->v[1], p->gateway ? "GATEWAY" : "SIDECAR");
  nb->le[0].key = "app";
  nb->le[0].value = str_value(&nb->lv[0], nb->app);
  nb->le[1].key = "version";
  nb->le[1].value = str_value(&nb->lv[1], nb->ver);
  nb->labels.n_fields = 2;
  nb->labels.fields = nb->lep;
  google__protobuf__value__init(&nb->v[2]);
  nb->v[2].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
  nb->v[2].struct_value = &nb->labels;
  nb->e[2].key = "wasmxds.labels";
  nb->e[2].value = &nb->v[2];
  nb->md.n_fields = 3;
  nb->md.fields = nb->ep;
  nb->node.id = nb->id;
  nb->node.cluster = nb->cluster;
  nb->node.metadata = &nb->md;
  nb->node.user_agent_name = "envoy";
}

/* Names of ids, for a request (pointers into the intern table). */
static char **names_of(const uint32_t *ids, uint32_t n) {
  char **v = malloc((n > 0 ? n : 1) * sizeof(char *));
  uint32_t i;

  if (v == NULL)
    abort();
  for (i = 0; i < n; i++)
    v[i] = g_names[ids[i]];
  return v;
}

/* The next request the proxy owes, or NULL (nothing owed). Clears the
 * flag it satisfies. */
static grpc_byte_buffer *next_request(struct proxy *p, int *is_first) {
  Google__Rpc__Status err;
  grpc_byte_buffer *bb;
  char **names = NULL, **unsub = NULL;

  *is_first = 0;
  google__rpc__status__init(&err);
  err.code = 3; /* INVALID_ARGUMENT, as Envoy sends */

  if (!g.delta) {
    Envoy__Service__Discovery__V3__DiscoveryRequest r;
    struct node_buf nb;

    envoy__service__discovery__v3__discovery_request__init(&r);
    if (!p->started) {
      build_node(p, &nb);
      r.node = &nb.node;
      r.type_url = TYPE_LISTENER;
      p->started = 1;
      *is_first = 1;
    } else if (p->owe_lds) {
      p->owe_lds = 0;
      r.type_url = TYPE_LISTENER;
      r.version_info = p->lds_ver != NULL ? p->lds_ver : "";
      r.response_nonce = p->lds_nonce != NULL ? p->lds_nonce : "";
      if (p->lds_err != NULL) {
        err.message = p->lds_err;
        r.error_detail = &err;
      }
    } else if (p->owe_ecds) {
      p->owe_ecds = 0;
      r.type_url = TYPE_ECDS;
      r.version_info = p->ecds_ver != NULL ? p->ecds_ver : "";
      r.response_nonce = p->ecds_nonce != NULL ? p->ecds_nonce : "";
      names = names_of(p->want.v, p->want.n);
      r.n_resource_names = p->want.n;
      r.resource_names = names;
      if (p->ecds_err != NULL) {
        err.message = p->ecds_err;
        r.error_detail = &err;
      }
    } else {
      return NULL;
    }
    bb = pack_bb(&r.base);
  } else {
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r;
    struct node_buf nb;
    struct idset add = {NULL, 0}, del = {NULL, 0};
    uint32_t i;

    envoy__service__discovery__v3__delta_discovery_request__init(&r);
    if (!p->started) {
      build_node(p, &nb);
      r.node = &nb.node;
      r.type_url = TYPE_LISTENER;
      p->started = 1;
      *is_first = 1;
    } else if (p->owe_lds) {
      p->owe_lds = 0;
      r.type_url = TYPE_LISTENER;
      if (p->lds_ack_nonce)
        r.response_nonce = p->lds_nonce != NULL ? p->lds_nonce : "";
      p->lds_ack_nonce = 0;
      if (p->lds_err != NULL) {
        err.message = p->lds_err;
        r.error_detail = &err;
      }
    } else if (p->owe_ecds) {
      p->owe_ecds = 0;
      r.type_url = TYPE_ECDS;
      if (p->ecds_ack_nonce)
        r.response_nonce = p->ecds_nonce != NULL ? p->ecds_nonce : "";
      p->ecds_ack_nonce = 0;
      if (p->ecds_err != NULL) {
        err.message = p->ecds_err;
        r.error_detail = &err;
      }
      add.v = malloc((p->want.n + 1) * sizeof(uint32_t));
      del.v = malloc((p->sub.n + 1) * sizeof(uint32_t));
      if (add.v == NULL || del.v == NULL)
        abort();
      for (i = 0; i < p->want.n; i++)
        if (!idset_has(&p->sub, p->want.v[i]))
          add.v[add.n++] = p->want.v[i];
      for (i = 0; i < p->sub.n; i++)
        if (!idset_has(&p->want, p->sub.v[i]))
          del.v[del.n++] = p->sub.v[i];
      names = names_of(add.v, add.n);
      unsub = names_of(del.v, del.n);
      r.n_resource_names_subscribe = add.n;
      r.resource_names_subscribe = names;
      r.n_resource_names_unsubscribe = del.n;
      r.resource_names_unsubscribe = unsub;
      /* The server now knows the subscription is want. */
      free(p->sub.v);
      p->sub.v = malloc((p->want.n + 1) * sizeof(uint32_t));
      if (p->sub.v == NULL)
        abort();
      memcpy(p->sub.v, p->want.v, p->want.n * sizeof(uint32_t));
      p->sub.n = p->want.n;
      free(add.v);
      free(del.v);
    } else {
      return NULL;
    }
    bb = pack_bb(&r.base);
  }
  free(names);
  free(unsub);
  if (err.message != NULL && err.message != protobuf_c_empty_string) {
    g.nacks++;
    if (p->lds_err != NULL && err.message == p->lds_err) {
      free(p->lds_err);
      p->lds_err = NULL;
    } else if (p->ecds_err != NULL && err.message == p->ecds_err) {
      free(p->ecds_err);
      p->ecds_err = NULL;
    }
  }
  g.reqs_sent++;
  return bb;
}

/* Starts the next owed send if none is in flight. */
static void pump_send(struct proxy *p) {
  grpc_op ops[2];
  grpc_byte_buffer *bb;
  size_t n = 0;
  int first;
  double now;

  if (p->send_pending || p->ended || p->cancelled)
    return;
  bb = next_request(p, &first);
  if (bb == NULL)
    return;
  memset(ops, 0, sizeof(ops));
  if (first) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  if (grpc_call_start_batch(p->call, ops, n, tag_of(p, TAG_SEND), NULL) !=
      GRPC_CALL_OK) {
    grpc_byte_buffer_destroy(bb);
    fail_log(p, "cannot start a send");
    return;
  }
  p->send_bb = bb;
  p->send_pending = 1;
  if (first)
    return;
  /* Sending the last owed request: the proxy holds what it ACKs now. */
  if (!p->owe_lds && !p->owe_ecds && holds_all(p)) {
    now = now_s();
    set_full(p, 1, now);
    if (g.gen != 0 && p->mark_gen == g.gen) {
      p->t_done = now;
      if (now > g.t_last_done)
        g.t_last_done = now;
    }
  }
}

/* ---- Responses ---- */

static int type_is(const Google__Protobuf__Any *a, const char *url) {
  return a != NULL && a->type_url != NULL && strcmp(a->type_url, url) == 0;
}

/* Decodes one Listener resource into l (l->ecds unnormalized). Returns 0 or
 * -1 with a reason in err. */
static int decode_listener_full(const Google__Protobuf__Any *a, struct lis *l,
                                char *err, size_t errlen) {
  Envoy__Config__Listener__V3__Listener *lst;
  size_t c, f, h, cap = 16;
  int rc = 0;

  l->ecds.v = NULL;
  l->ecds.n = 0;
  if (!type_is(a, TYPE_LISTENER)) {
    snprintf(err, errlen, "LDS resource of type %s",
             a != NULL && a->type_url != NULL ? a->type_url : "(none)");
    return -1;
  }
  lst = envoy__config__listener__v3__listener__unpack(NULL, a->value.len,
                                                      a->value.data);
  if (lst == NULL) {
    snprintf(err, errlen, "Listener does not decode");
    return -1;
  }
  l->name = intern(lst->name);
  l->ecds.v = malloc(cap * sizeof(uint32_t));
  if (l->ecds.v == NULL || l->name == UINT32_MAX)
    abort();
  for (c = 0; c < lst->n_filter_chains + 1 && rc == 0; c++) {
    Envoy__Config__Listener__V3__FilterChain *fc =
        c < lst->n_filter_chains ? lst->filter_chains[c]
                                 : lst->default_filter_chain;

    if (fc == NULL)
      continue;
    for (f = 0; f < fc->n_filters && rc == 0; f++) {
      Envoy__Config__Listener__V3__Filter *flt = fc->filters[f];
      Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
          *hcm;

      if (flt->config_type_case !=
              ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
          !type_is(flt->typed_config, TYPE_HCM))
        continue;
      hcm =
          envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
              NULL, flt->typed_config->value.len,
              flt->typed_config->value.data);
      if (hcm == NULL) {
        snprintf(err, errlen,
                 "listener %s: HttpConnectionManager does not "
                 "decode",
                 lst->name);
        rc = -1;
        break;
      }
      for (h = 0; h < hcm->n_http_filters; h++) {
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter
            *hf = hcm->http_filters[h];
        uint32_t id;

        if (hf->config_type_case !=
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY)
          continue;
        if (hf->config_discovery == NULL || hf->name == NULL ||
            hf->name[0] == '\0') {
          snprintf(err, errlen,
                   "listener %s: http filter %zu has an empty "
                   "config_discovery",
                   lst->name, h);
          rc = -1;
          break;
        }
        id = intern(hf->name);
        if (id == UINT32_MAX)
          abort();
        if (l->ecds.n == cap) {
          cap *= 2;
          l->ecds.v = realloc(l->ecds.v, cap * sizeof(uint32_t));
          if (l->ecds.v == NULL)
            abort();
        }
        l->ecds.v[l->ecds.n++] = id;
      }
      protobuf_c_message_free_unpacked(&hcm->base, NULL);
    }
  }
  protobuf_c_message_free_unpacked(&lst->base, NULL);
  if (rc < 0) {
    free(l->ecds.v);
    l->ecds.v = NULL;
    return -1;
  }
  idset_normalize(&l->ecds);
  return 0;
}

/* A listener through the cache (only successes are cached). */
static int decode_listener(const Google__Protobuf__Any *a, struct lis *l,
                           char *err, size_t errlen) {
  struct dc_entry *e;
  uint64_t h;

  if (g_dc_off || !type_is(a, TYPE_LISTENER))
    return decode_listener_full(a, l, err, errlen);
  h = hash_bytes(a->value.data, a->value.len);
  e = dc_find(1, a->value.data, a->value.len, h);
  if (e != NULL) {
    g_dc_hits++;
    l->name = e->name;
    l->ecds.n = e->ecds.n;
    l->ecds.v = malloc((e->ecds.n + 1) * sizeof(uint32_t));
    if (l->ecds.v == NULL)
      abort();
    if (e->ecds.n > 0)
      memcpy(l->ecds.v, e->ecds.v, e->ecds.n * sizeof(uint32_t));
    return 0;
  }
  g_dc_misses++;
  if (decode_listener_full(a, l, err, errlen) < 0)
    return -1;
  dc_put(1, a->value.data, a->value.len, h, l->name, &l->ecds);
  return 0;
}

/* Decodes one TypedExtensionConfig; *name_id is its interned name. */
static int decode_ecds_full(const Google__Protobuf__Any *a, uint32_t *name_id,
                            char *err, size_t errlen) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  int rc = 0;

  if (!type_is(a, TYPE_ECDS)) {
    snprintf(err, errlen, "ECDS resource of type %s",
             a != NULL && a->type_url != NULL ? a->type_url : "(none)");
    return -1;
  }
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, a->value.len, a->value.data);
  if (tec == NULL) {
    snprintf(err, errlen, "TypedExtensionConfig does not decode");
    return -1;
  }
  *name_id = intern(tec->name);
  if (type_is(tec->typed_config, TYPE_WASM)) {
    Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w =
        envoy__extensions__filters__http__wasm__v3__wasm__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);

    if (w == NULL || w->config == NULL) {
      snprintf(err, errlen, "%s: Wasm does not decode", tec->name);
      rc = -1;
    } else if (w->config->configuration != NULL) {
      Google__Protobuf__StringValue *sv;

      if (!type_is(w->config->configuration, TYPE_STRING) ||
          (sv = google__protobuf__string_value__unpack(
               NULL, w->config->configuration->value.len,
               w->config->configuration->value.data)) == NULL) {
        snprintf(err, errlen, "%s: configuration is not a StringValue",
                 tec->name);
        rc = -1;
      } else {
        protobuf_c_message_free_unpacked(&sv->base, NULL);
      }
    }
    if (w != NULL)
      protobuf_c_message_free_unpacked(&w->base, NULL);
  } else if (type_is(tec->typed_config, TYPE_RBAC)) {
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *r =
        envoy__extensions__filters__http__rbac__v3__rbac__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);

    if (r == NULL) {
      snprintf(err, errlen, "%s: RBAC does not decode", tec->name);
      rc = -1;
    } else {
      protobuf_c_message_free_unpacked(&r->base, NULL);
    }
  } else {
    snprintf(err, errlen, "%s: unsupported filter type %s", tec->name,
             tec->typed_config != NULL && tec->typed_config->type_url != NULL
                 ? tec->typed_config->type_url
                 : "(none)");
    rc = -1;
  }
  protobuf_c_message_free_unpacked(&tec->base, NULL);
  if (*name_id == UINT32_MAX)
    abort();
  return rc;
}

static int decode_ecds(const Google__Protobuf__Any *a, uint32_t *name_id,
                       char *err, size_t errlen) {
  struct dc_entry *e;
  uint64_t h;

  if (g_dc_off || !type_is(a, TYPE_ECDS))
    return decode_ecds_full(a, name_id, err, errlen);
  h = hash_bytes(a->value.data, a->value.len);
  e = dc_find(2, a->value.data, a->value.len, h);
  if (e != NULL) {
    g_dc_hits++;
    *name_id = e->name;
    return 0;
  }
  g_dc_misses++;
  if (decode_ecds_full(a, name_id, err, errlen) < 0)
    return -1;
  dc_put(2, a->value.data, a->value.len, h, *name_id, NULL);
  return 0;
}

static void free_lis(struct lis *l, uint32_t n) {
  uint32_t i;

  for (i = 0; i < n; i++)
    free(l[i].ecds.v);
  free(l);
}

/* Recomputes want from the listeners, keeping got for retained names; may
 * drop the proxy out of "full". Sets owe_ecds when the set changed. */
static void recompute_want(struct proxy *p, double now) {
  struct idset w = {NULL, 0};
  uint8_t *got;
  uint32_t i, total = 0, k;

  for (i = 0; i < p->nlis; i++)
    total += p->lis[i].ecds.n;
  w.v = malloc((total + 1) * sizeof(uint32_t));
  if (w.v == NULL)
    abort();
  for (i = 0; i < p->nlis; i++) {
    memcpy(w.v + w.n, p->lis[i].ecds.v, p->lis[i].ecds.n * sizeof(uint32_t));
    w.n += p->lis[i].ecds.n;
  }
  idset_normalize(&w);
  if (idset_equal(&w, &p->want)) {
    free(w.v);
    return;
  }
  got = calloc(w.n + 1, 1);
  if (got == NULL)
    abort();
  for (i = 0; i < w.n; i++) {
    k = idset_index(&p->want, w.v[i]);
    got[i] = k != UINT32_MAX ? p->got[k] : 0;
  }
  free(p->want.v);
  free(p->got);
  p->want = w;
  p->got = got;
  p->owe_ecds = 1;
  if (!holds_all(p))
    set_full(p, 0, now);
}

static void nack(struct proxy *p, int lds, const char *why) {
  if (g.nack_logged++ < FAIL_LOG_MAX)
    fprintf(stderr, "loadgen: proxy-%05u NACKs %s: %s\n", p->idx,
            lds ? "LDS" : "ECDS", why);
  g.decode_errors++;
  if (lds) {
    set_str(&p->lds_err, why);
    p->owe_lds = 1;
  } else {
    set_str(&p->ecds_err, why);
    p->owe_ecds = 1;
  }
}

static void mark_ecds_got(struct proxy *p, uint32_t id) {
  uint32_t k = idset_index(&p->want, id);

  if (k == UINT32_MAX) {
    g.stray_ecds++;
    if (g.stray_logged++ < FAIL_LOG_MAX)
      fprintf(stderr,
              "loadgen: proxy-%05u got ECDS %s it does not "
              "reference\n",
              p->idx, g_names[id]);
    return;
  }
  p->got[k] = 1;
}

static void on_sotw(struct proxy *p, const uint8_t *data, size_t len,
                    double now) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  char err[512];
  size_t i;

  r = envoy__service__discovery__v3__discovery_response__unpack(NULL, len,
                                                                data);
  if (r == NULL) {
    g.decode_errors++;
    fail_log(p, "a DiscoveryResponse does not decode");
    return;
  }
  if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
    struct lis *nl = calloc(r->n_resources + 1, sizeof(*nl));
    int bad = 0;

    g.msgs_lds++;
    p->mark_lds++;
    if (nl == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_listener(r->resources[i], &nl[i], err, sizeof(err)) < 0)
        bad = 1;
    set_str(&p->lds_nonce, r->nonce);
    if (bad) {
      free_lis(nl, (uint32_t)i);
      nack(p, 1, err);
    } else {
      free_lis(p->lis, p->nlis);
      p->lis = nl;
      p->nlis = (uint32_t)r->n_resources;
      set_str(&p->lds_ver, r->version_info);
      p->lds_ok = 1;
      p->owe_lds = 1;
      recompute_want(p, now);
    }
  } else if (strcmp(r->type_url, TYPE_ECDS) == 0) {
    uint32_t *ids = malloc((r->n_resources + 1) * sizeof(uint32_t));
    int bad = 0;

    g.msgs_ecds++;
    p->mark_ecds++;
    if (ids == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_ecds(r->resources[i], &ids[i], err, sizeof(err)) < 0)
        bad = 1;
    set_str(&p->ecds_nonce, r->nonce);
    if (bad) {
      nack(p, 0, err);
    } else {
      for (i = 0; i < r->n_resources; i++)
        mark_ecds_got(p, ids[i]);
      set_str(&p->ecds_ver, r->version_info);
      p->owe_ecds = 1;
    }
    free(ids);
  } else {
    /* A type we never asked for: ACK it so the server is not left
     * waiting, and count it as an error. */
    g.decode_errors++;
    fail_log(p, "response of a type it did not request");
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void on_delta(struct proxy *p, const uint8_t *data, size_t len,
                     double now) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  char err[512];
  size_t i, j;

  r = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len,
                                                                      data);
  if (r == NULL) {
    g.decode_errors++;
    fail_log(p, "a DeltaDiscoveryResponse does not decode");
    return;
  }
  if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
    struct lis *nl = calloc(r->n_resources + 1, sizeof(*nl));
    int bad = 0;

    g.msgs_lds++;
    p->mark_lds++;
    if (nl == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_listener(r->resources[i]->resource, &nl[i], err, sizeof(err)) <
          0)
        bad = 1;
    set_str(&p->lds_nonce, r->nonce);
    p->lds_ack_nonce = 1;
    if (bad) {
      free_lis(nl, (uint32_t)i);
      nack(p, 1, err);
    } else {
      /* Upsert, then remove. */
      struct lis *all = malloc((p->nlis + r->n_resources + 1) * sizeof(*all));
      uint32_t n = 0;

      if (all == NULL)
        abort();
      for (j = 0; j < p->nlis; j++) {
        int replaced = 0, removed = 0;

        for (i = 0; i < r->n_resources; i++)
          if (nl[i].name == p->lis[j].name)
            replaced = 1;
        for (i = 0; i < r->n_removed_resources; i++)
          if (strcmp(r->removed_resources[i], g_names[p->lis[j].name]) == 0)
            removed = 1;
        if (replaced || removed)
          free(p->lis[j].ecds.v);
        else
          all[n++] = p->lis[j];
      }
      for (i = 0; i < r->n_resources; i++)
        all[n++] = nl[i];
      free(p->lis);
      free(nl);
      p->lis = all;
      p->nlis = n;
      p->lds_ok = 1;
      p->owe_lds = 1;
      recompute_want(p, now);
    }
  } else if (strcmp(r->type_url, TYPE_ECDS) == 0) {
    uint32_t *ids = malloc((r->n_resources + 1) * sizeof(uint32_t));
    int bad = 0;

    g.msgs_ecds++;
    p->mark_ecds++;
    if (ids == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_ecds(r->resources[i]->resource, &ids[i], err, sizeof(err)) < 0)
        bad = 1;
    set_str(&p->ecds_nonce, r->nonce);
    p->ecds_ack_nonce = 1;
    if (bad) {
      nack(p, 0, err);
    } else {
      for (i = 0; i < r->n_resources; i++)
        mark_ecds_got(p, ids[i]);
      for (i = 0; i < r->n_removed_resources; i++) {
        uint32_t k = idset_index(&p->want, intern(r->removed_resources[i]));

        g.ecds_removed++;
        if (k != UINT32_MAX) {
          p->got[k] = 0;
          set_full(p, 0, now);
        }
      }
      p->owe_ecds = 1;
    }
    free(ids);
  } else {
    g.decode_errors++;
    fail_log(p, "response of a type it did not request");
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* ---- Stream events ---- */

static void post_recv(struct proxy *p) {
  grpc_op ops[2];
  size_t n = 0;

  memset(ops, 0, sizeof(ops));
  if (!p->imd_posted) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &p->imd;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &p->recv_bb;
  n++;
  if (grpc_call_start_batch(p->call, ops, n, tag_of(p, TAG_RECV), NULL) ==
      GRPC_CALL_OK) {
    p->recv_pending = 1;
    p->imd_posted = 1;
  } else
    fail_log(p, "cannot post a receive");
}

static void on_recv(struct proxy *p, int ok) {
  grpc_byte_buffer *bb = p->recv_bb;
  grpc_byte_buffer_reader rd;
  grpc_slice sl;
  double now;
  size_t len;

  p->recv_pending = 0;
  p->recv_bb = NULL;
  if (!ok || bb == NULL) {
    if (bb != NULL)
      grpc_byte_buffer_destroy(bb);
    p->ended = 1; /* the status follows */
    return;
  }
  now = now_s();
  if (!grpc_byte_buffer_reader_init(&rd, bb)) {
    grpc_byte_buffer_destroy(bb);
    g.decode_errors++;
    post_recv(p);
    return;
  }
  sl = grpc_byte_buffer_reader_readall(&rd);
  grpc_byte_buffer_reader_destroy(&rd);
  grpc_byte_buffer_destroy(bb);
  len = GRPC_SLICE_LENGTH(sl);
  p->msgs++;
  p->bytes += len;
  g.msgs++;
  g.bytes += len;
  g.last_rx = now;
  if (g.gen != 0 && p->mark_gen != g.gen) {
    p->mark_gen = g.gen;
    p->mark_msgs = p->mark_lds = p->mark_ecds = 0;
    p->t_done = 0;
    if (expected_proxy(p) && !p->failed) {
      if (++g.expected_rx == g.expected) {
        g.t_last_delivery = now;
        g.srv_at_delivery = srv_sample();
      }
    }
  }
  if (g.gen != 0)
    p->mark_msgs++;
  if (len <= MAX_MSG) {
    if (g.delta)
      on_delta(p, GRPC_SLICE_START_PTR(sl), len, now);
    else
      on_sotw(p, GRPC_SLICE_START_PTR(sl), len, now);
  } else {
    g.decode_errors++;
    fail_log(p, "response over 16 MiB");
  }
  grpc_slice_unref(sl);
  post_recv(p);
  pump_send(p);
}

static void on_send(struct proxy *p, int ok) {
  p->send_pending = 0;
  if (p->send_bb != NULL) {
    grpc_byte_buffer_destroy(p->send_bb);
    p->send_bb = NULL;
  }
  if (ok)
    pump_send(p);
}

static void on_status(struct proxy *p) {
  char buf[512];
  size_t n;

  p->status_pending = 0;
  p->ended = 1;
  if (p->cancelled || p->failed)
    return;
  p->failed = 1;
  g.n_failed++;
  set_full(p, 0, now_s());
  n = GRPC_SLICE_LENGTH(p->details);
  if (n > 300)
    n = 300;
  snprintf(buf, sizeof(buf), "stream ended: status %d: %.*s", (int)p->status,
           (int)n, (const char *)GRPC_SLICE_START_PTR(p->details));
  fail_log(p, buf);
}

static void dispatch(void *tag, int ok) {
  struct proxy *p = (struct proxy *)((uintptr_t)tag & ~(uintptr_t)7);

  switch ((uintptr_t)tag & 7) {
  case TAG_RECV:
    on_recv(p, ok);
    break;
  case TAG_SEND:
    on_send(p, ok);
    break;
  case TAG_STATUS:
    on_status(p);
    break;
  default:
    abort();
  }
}

/* One bounded wait plus everything already queued. */
static void pump(int ms) {
  gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_millis(ms, GPR_TIMESPAN));
  grpc_event ev;
  int k;

  for (k = 0; k < 4096; k++) {
    ev = grpc_completion_queue_next(g.cq, dl, NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      return;
    dispatch(ev.tag, ev.success);
    dl = gpr_inf_past(GPR_CLOCK_MONOTONIC);
  }
}

static grpc_channel_args *g_chargs;
static grpc_arg g_argv[12];

static void channel_args_init(void) {
  int n = 0;

  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  g_argv[n++].value.integer = 1;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = "wasmxds.loadgen.proxy"; /* set per channel: no sharing */
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_ENABLE_CHANNELZ;
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_HTTP2_BDP_PROBE;
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  g_argv[n++].value.integer = (int)MAX_MSG;
  /* Reconnect backoff and connect timeouts stay at gRPC's defaults (1 s
   * initial backoff, 20 s minimum connect timeout): a shorter minimum
   * connect timeout makes every connection still in the server's accept
   * queue time out and reconnect, a storm of its own. */
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_HTTP2_HPACK_TABLE_SIZE_DECODER;
  g_argv[n++].value.integer = 0;
  g_argv[n].type = GRPC_ARG_INTEGER;
  g_argv[n].key = GRPC_ARG_TCP_READ_CHUNK_SIZE;
  g_argv[n++].value.integer = 4096;
  g_chargs = calloc(1, sizeof(*g_chargs));
  if (g_chargs == NULL)
    abort();
  g_chargs->num_args = (size_t)n;
  g_chargs->args = g_argv;
}

static int start_proxy(struct proxy *p, grpc_channel_credentials *creds) {
  grpc_op op;

  g_argv[1].value.integer = (int)p->idx + 1;
  p->ch = grpc_channel_create(g.target, creds, g_chargs);
  if (p->ch == NULL)
    return -1;
  p->call = grpc_channel_create_call(p->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g.cq,
                                     g.method, NULL,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (p->call == NULL)
    return -1;
  grpc_metadata_array_init(&p->imd);
  grpc_metadata_array_init(&p->tmd);
  p->details = grpc_empty_slice();
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &p->tmd;
  op.data.recv_status_on_client.status = &p->status;
  op.data.recv_status_on_client.status_details = &p->details;
  if (grpc_call_start_batch(p->call, &op, 1, tag_of(p, TAG_STATUS), NULL) !=
      GRPC_CALL_OK)
    return -1;
  p->status_pending = 1;
  pump_send(p); /* initial metadata + the LDS wildcard request */
  post_recv(p); /* initial metadata + the first response */
  g.n_started_streams++;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Reporting */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q) {
  size_t k;

  if (n == 0)
    return NAN;
  k = (size_t)ceil(q * (double)n);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return v[k - 1];
}

static void fmt_bytes(char *out, size_t len, double b) {
  if (b >= 1048576.0)
    snprintf(out, len, "%.1f MiB", b / 1048576.0);
  else if (b >= 1024.0)
    snprintf(out, len, "%.1f KiB", b / 1024.0);
  else
    snprintf(out, len, "%.0f B", b);
}

struct phase_base {
  double t0;
  uint64_t msgs, bytes, lds, ecds, nacks, decode_errors, stray, removed, reqs;
  uint32_t failed;
  struct srv_sample srv;
  struct self_sample self;
};

static struct phase_base phase_begin(void) {
  struct phase_base b;

  b.t0 = now_s();
  b.msgs = g.msgs;
  b.bytes = g.bytes;
  b.lds = g.msgs_lds;
  b.ecds = g.msgs_ecds;
  b.nacks = g.nacks;
  b.decode_errors = g.decode_errors;
  b.stray = g.stray_ecds;
  b.removed = g.ecds_removed;
  b.reqs = g.reqs_sent;
  b.failed = g.n_failed;
  b.srv = srv_sample();
  b.self = self_sample();
  return b;
}

static double g_srv_baseline_kib;

static void print_common(const struct phase_base *b,
                         const struct srv_sample *srv_end,
                         const struct self_sample *self_end, char *ml,
                         size_t mllen) {
  char b1[32];
  size_t o = strlen(ml);

  fmt_bytes(b1, sizeof(b1), (double)(g.bytes - b->bytes));
  printf("  %-34s %" PRIu64 " (LDS %" PRIu64 ", ECDS %" PRIu64 "), %s\n",
         "messages received", g.msgs - b->msgs, g.msgs_lds - b->lds,
         g.msgs_ecds - b->ecds, b1);
  printf("  %-34s %" PRIu64 "\n", "requests sent (incl. ACKs)",
         g.reqs_sent - b->reqs);
  printf("  %-34s NACKs %" PRIu64 ", undecodable %" PRIu64
         ", stream failures %u, unreferenced ECDS %" PRIu64 "\n",
         "errors", g.nacks - b->nacks, g.decode_errors - b->decode_errors,
         g.n_failed - b->failed, g.stray_ecds - b->stray);
  o += (size_t)snprintf(
      ml + o, mllen - o,
      " msgs=%" PRIu64 " lds_msgs=%" PRIu64 " ecds_msgs=%" PRIu64
      " bytes=%" PRIu64 " nacks=%" PRIu64 " decode_errors=%" PRIu64
      " stream_failures=%u",
      g.msgs - b->msgs, g.msgs_lds - b->lds, g.msgs_ecds - b->ecds,
      g.bytes - b->bytes, g.nacks - b->nacks,
      g.decode_errors - b->decode_errors, g.n_failed - b->failed);
  if (b->srv.ok && srv_end->ok) {
    double per = g.n > 0 ? (srv_end->rss_kib - g_srv_baseline_kib) / g.n : 0;

    printf("  %-34s %.2f core-s; RSS %.1f MiB (baseline %.1f MiB, "
           "%+.1f KiB per proxy above it)\n",
           "server CPU, RSS at end", srv_end->cpu_s - b->srv.cpu_s,
           srv_end->rss_kib / 1024.0, g_srv_baseline_kib / 1024.0, per);
    o += (size_t)snprintf(ml + o, mllen - o,
                          " server_cpu_s=%.3f server_rss_kib=%.0f "
                          "server_baseline_kib=%.0f server_kib_per_proxy=%.2f",
                          srv_end->cpu_s - b->srv.cpu_s, srv_end->rss_kib,
                          g_srv_baseline_kib, per);
  }
  printf("  %-34s %.2f core-s (user %.2f, sys %.2f); RSS %.1f MiB\n",
         "generator CPU (separate process)",
         self_end->user_s + self_end->sys_s - b->self.user_s - b->self.sys_s,
         self_end->user_s - b->self.user_s, self_end->sys_s - b->self.sys_s,
         self_rss_kib() / 1024.0);
  snprintf(ml + o, mllen - o, " gen_cpu_s=%.3f gen_rss_kib=%.0f",
           self_end->user_s + self_end->sys_s - b->self.user_s - b->self.sys_s,
           self_rss_kib());
}

/* ------------------------------------------------------------------ */
/* Phases */

static int run_storm(grpc_channel_credentials *creds) {
  struct phase_base b = phase_begin();
  double t_created, deadline, *lat, now, t_all = NAN;
  struct srv_sample srv_end;
  struct self_sample self_end;
  char ml[1024];
  size_t nl = 0;
  int i;

  for (i = 0; i < g.n; i++) {
    if (start_proxy(&g.px[i], creds) < 0) {
      fprintf(stderr, "loadgen: proxy-%05d: cannot create its channel/call\n",
              i);
      return -1;
    }
    if ((i & 255) == 255)
      pump(0); /* keep completions flowing while creating */
  }
  t_created = now_s();
  deadline = b.t0 + g.timeout_s;
  for (;;) {
    pump(TICK_MS);
    now = now_s();
    if (g.n_full + g.n_failed >= (uint32_t)g.n) {
      t_all = now;
      break;
    }
    if (now >= deadline)
      break;
  }
  /* Let the last ACKs reach the server before sampling it. */
  {
    double until = now_s() + 0.3;

    while (now_s() < until)
      pump(TICK_MS);
  }
  srv_end = srv_sample();
  self_end = self_sample();
  lat = malloc(((size_t)g.n + 1) * sizeof(double));
  if (lat == NULL)
    abort();
  for (i = 0; i < g.n; i++)
    if (g.px[i].ever_full)
      lat[nl++] = g.px[i].t_full - b.t0;
  qsort(lat, nl, sizeof(double), cmp_double);

  printf("\n[a] connect storm: %d proxies at once (%s ADS), %s\n", g.n,
         g.delta ? "delta" : "SotW", g.label);
  printf("  %-34s %s\n", "all hold a full config after",
         g.n_full == (uint32_t)g.n ? "" : "NOT REACHED");
  if (!isnan(t_all) && g.n_full == (uint32_t)g.n)
    printf("  %-34s %.3f s\n", "  time", t_all - b.t0);
  else
    printf("  %-34s %u of %d hold a full config, %u failed (timeout %d s)\n",
           "  state", g.n_full, g.n, g.n_failed, g.timeout_s);
  printf("  %-34s %.3f s (client side)\n", "channels+streams created in",
         t_created - b.t0);
  printf("  %-34s p50 %.3f s, p99 %.3f s, max %.3f s (%zu proxies)\n",
         "per proxy: start -> full config", pct(lat, nl, 0.5),
         pct(lat, nl, 0.99), nl > 0 ? lat[nl - 1] : NAN, nl);
  snprintf(ml, sizeof(ml),
           "FLEET phase=storm label=%s n=%d proxies_full=%u all_full_s=%.3f "
           "p50_s=%.3f p99_s=%.3f max_s=%.3f",
           g.label, g.n, g.n_full,
           g.n_full == (uint32_t)g.n ? t_all - b.t0 : -1.0, pct(lat, nl, 0.5),
           pct(lat, nl, 0.99), nl > 0 ? lat[nl - 1] : NAN);
  print_common(&b, &srv_end, &self_end, ml, sizeof(ml));
  printf("%s\n", ml);
  fflush(stdout);
  free(lat);
  return g.n_full == (uint32_t)g.n ? 0 : -1;
}

static void run_step(const struct step *st) {
  struct phase_base b;
  double now, deadline, *lat;
  struct srv_sample srv_end, srv_settled = {0, 0, 0};
  struct self_sample self_end;
  uint32_t changed = 0, exp_changed = 0, unsettled = 0, unexpected = 0;
  uint64_t unexpected_msgs = 0;
  char ml[1536], names[512] = "";
  size_t nl = 0, o = 0;
  double t_settled = NAN;
  int i, done = 0, timed_out = 0;

  /* The expectation. */
  g.expect_kind = st->expect_kind;
  g.expect_tenant = st->expect_tenant;
  g.expected = 0;
  g.expected_rx = 0;
  for (i = 0; i < g.n; i++)
    if (!g.px[i].failed && expected_proxy(&g.px[i]))
      g.expected++;
  g.t_last_delivery = NAN;
  g.t_last_done = 0;
  g.srv_at_delivery.ok = 0;

  b = phase_begin(); /* server CPU sampled before the write */
  g.gen++;
  g.mark_t0 = b.t0 = now_s();
  if (strncmp(st->src, "cmd:", 4) == 0) {
    /* A change made by a command (e.g. `etcdctl put` for an etcd store);
     * the clock starts when the command starts. */
    int rc = system(st->src + 4);
    if (rc != 0) {
      fprintf(stderr, "loadgen: step %s: \"%s\" failed (%d)\n", st->name,
              st->src + 4, rc);
      return;
    }
  } else if (rename(st->src, st->dst) < 0) {
    fprintf(stderr, "loadgen: step %s: rename %s -> %s: %s\n", st->name,
            st->src, st->dst, strerror(errno));
    return;
  }
  if (st->hup && g_server_pid > 0)
    kill(g_server_pid, SIGHUP);
  if (g.expected == 0) {
    /* Wait for anything at all for a fixed window. */
    g.expected_rx = 0;
  }
  deadline = b.t0 + g.timeout_s;
  for (;;) {
    pump(TICK_MS);
    now = now_s();
    if (g.expected_rx >= g.expected && g.n_full + g.n_failed >= (uint32_t)g.n) {
      /* Server CPU including the ACKs: sampled once the last ACK has been
       * out for ACK_GRACE_S (the server reads it well within that). */
      if (isnan(t_settled) && now >= g.t_last_done + ACK_GRACE_S) {
        t_settled = now;
        srv_settled = srv_sample();
      }
      /* quiet: nothing received for quiet_ms, and for expect=none at
       * least 3 s after the write (debounce + reload + push) */
      if (now - (g.last_rx > b.t0 ? g.last_rx : b.t0) >= g.quiet_ms / 1000.0 &&
          (g.expected > 0 || now - b.t0 >= 3.0)) {
        done = 1;
        break;
      }
    } else if (!isnan(t_settled)) {
      t_settled = NAN; /* something more arrived: not settled after all */
      srv_settled.ok = 0;
    }
    if (now >= deadline) {
      timed_out = 1;
      break;
    }
  }
  srv_end = srv_sample();
  self_end = self_sample();

  lat = malloc(((size_t)g.n + 1) * sizeof(double));
  if (lat == NULL)
    abort();
  for (i = 0; i < g.n; i++) {
    struct proxy *p = &g.px[i];
    int exp = expected_proxy(p);

    if (p->mark_gen != g.gen)
      continue; /* received nothing since t0 */
    changed++;
    if (exp) {
      exp_changed++;
      if (p->t_done > 0)
        lat[nl++] = p->t_done - b.t0;
      else
        unsettled++;
    } else {
      unexpected++;
      unexpected_msgs += p->mark_msgs;
      if (o < sizeof(names) - 64)
        o += (size_t)snprintf(names + o, sizeof(names) - o,
                              "%sproxy-%05u(t%03u: %u LDS, %u ECDS)",
                              o > 0 ? ", " : "", p->idx, p->tenant, p->mark_lds,
                              p->mark_ecds);
    }
  }
  qsort(lat, nl, sizeof(double), cmp_double);

  printf("\n[%s] %s -> %s, reload by %s, expect %s%s, %s\n", st->name,
         strrchr(st->src, '/') ? strrchr(st->src, '/') + 1 : st->src, st->dst,
         st->hup ? "SIGHUP (no debounce)" : "inotify (debounce)",
         st->expect_kind == 0   ? "all"
         : st->expect_kind == 1 ? "none"
                                : "tenant ",
         "", g.label);
  if (st->expect_kind == 2)
    printf("  %-34s t%03d\n", "expected tenant", st->expect_tenant);
  printf("  %-34s expected %u, changed %u (of them expected %u), "
         "settled %zu, unsettled %u\n",
         "proxies", g.expected, changed, exp_changed, nl, unsettled);
  printf("  %-34s %u proxies, %" PRIu64 " messages%s%s\n",
         "received but not expected to", unexpected, unexpected_msgs,
         unexpected ? ": " : "", names);
  printf("  %-34s p50 %.3f s, p99 %.3f s, max %.3f s\n",
         "change -> ACK of new version", pct(lat, nl, 0.5), pct(lat, nl, 0.99),
         nl > 0 ? lat[nl - 1] : NAN);
  if (!isnan(g.t_last_delivery))
    printf("  %-34s %.3f s\n", "change -> last expected delivery",
           g.t_last_delivery - b.t0);
  if (g.srv_at_delivery.ok && b.srv.ok)
    printf("  %-34s %.2f core-s to the last delivery (reload + send), "
           "%.2f to last ACK + 0.25 s\n",
           "server CPU for the push", g.srv_at_delivery.cpu_s - b.srv.cpu_s,
           (srv_settled.ok ? srv_settled.cpu_s : srv_end.cpu_s) - b.srv.cpu_s);
  if (timed_out)
    printf("  %-34s timed out after %d s: %u of %u expected proxies "
           "received anything\n",
           "RESULT", g.timeout_s, g.expected_rx, g.expected);
  o = (size_t)snprintf(
      ml, sizeof(ml),
      "FLEET phase=%s label=%s n=%d trigger=%s expected=%u changed=%u "
      "expected_changed=%u settled=%zu unsettled=%u unexpected=%u "
      "unexpected_msgs=%" PRIu64 " p50_s=%.4f p99_s=%.4f max_s=%.4f "
      "last_delivery_s=%.4f timed_out=%d",
      st->name, g.label, g.n, st->hup ? "sighup" : "inotify", g.expected,
      changed, exp_changed, nl, unsettled, unexpected, unexpected_msgs,
      pct(lat, nl, 0.5), pct(lat, nl, 0.99), nl > 0 ? lat[nl - 1] : NAN,
      isnan(g.t_last_delivery) ? -1.0 : g.t_last_delivery - b.t0, timed_out);
  if (g.srv_at_delivery.ok && b.srv.ok)
    snprintf(ml + o, sizeof(ml) - o,
             " server_push_send_cpu_s=%.3f server_push_total_cpu_s=%.3f",
             g.srv_at_delivery.cpu_s - b.srv.cpu_s,
             (srv_settled.ok ? srv_settled.cpu_s : srv_end.cpu_s) -
                 b.srv.cpu_s);
  print_common(&b, &srv_end, &self_end, ml, sizeof(ml));
  printf("%s\n", ml);
  fflush(stdout);
  free(lat);
  (void)done;
}

static void run_idle(void) {
  struct phase_base b = phase_begin();
  struct srv_sample srv_end;
  struct self_sample self_end;
  char ml[1024];
  double until = b.t0 + g.idle_s;

  g.gen++; /* so messages during idle are attributed to it */
  g.expect_kind = 1;
  g.expected = 0;
  while (now_s() < until)
    pump(TICK_MS * 10);
  srv_end = srv_sample();
  self_end = self_sample();
  printf("\n[e] idle: %d proxies held for %d s, %s\n", g.n, g.idle_s, g.label);
  printf("  %-34s %u of %d\n", "proxies holding a full config", g.n_full, g.n);
  snprintf(ml, sizeof(ml),
           "FLEET phase=idle label=%s n=%d idle_s=%d "
           "proxies_full=%u",
           g.label, g.n, g.idle_s, g.n_full);
  print_common(&b, &srv_end, &self_end, ml, sizeof(ml));
  printf("%s\n", ml);
  fflush(stdout);
}

static void teardown(void) {
  double deadline = now_s() + DRAIN_S;
  int i, busy;

  for (i = 0; i < g.n; i++) {
    struct proxy *p = &g.px[i];

    if (p->call != NULL && !p->cancelled) {
      p->cancelled = 1;
      grpc_call_cancel(p->call, NULL);
    }
  }
  do {
    pump(TICK_MS);
    busy = 0;
    for (i = 0; i < g.n && !busy; i++)
      busy = g.px[i].recv_pending || g.px[i].send_pending ||
             g.px[i].status_pending;
  } while (busy && now_s() < deadline);
  if (busy)
    fprintf(stderr,
            "loadgen: teardown: operations still pending after "
            "%.0f s; leaking them\n",
            DRAIN_S);
  for (i = 0; i < g.n; i++) {
    struct proxy *p = &g.px[i];

    if (p->recv_pending || p->send_pending || p->status_pending)
      continue;
    if (p->call != NULL)
      grpc_call_unref(p->call);
    if (p->ch != NULL)
      grpc_channel_destroy(p->ch);
    if (p->recv_bb != NULL)
      grpc_byte_buffer_destroy(p->recv_bb);
    grpc_metadata_array_destroy(&p->imd);
    grpc_metadata_array_destroy(&p->tmd);
    grpc_slice_unref(p->details);
    free_lis(p->lis, p->nlis);
    free(p->want.v);
    free(p->got);
    free(p->sub.v);
    free(p->lds_ver);
    free(p->lds_nonce);
    free(p->ecds_ver);
    free(p->ecds_nonce);
    free(p->lds_err);
    free(p->ecds_err);
  }
  grpc_completion_queue_shutdown(g.cq);
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        g.cq,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(1000, GPR_TIMESPAN)),
        NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_QUEUE_TIMEOUT && now_s() > deadline + 5)
      break;
  }
  grpc_completion_queue_destroy(g.cq);
}

/* ------------------------------------------------------------------ */
/* Options */

static int parse_step(const char *arg, struct step *st) {
  char buf[4096], *f[5], *save = NULL, *tok;
  int n = 0;

  memset(st, 0, sizeof(*st));
  snprintf(buf, sizeof(buf), "%s", arg);
  for (tok = strtok_r(buf, ",", &save); tok != NULL && n < 5;
       tok = strtok_r(NULL, ",", &save))
    f[n++] = tok;
  if (n < 4)
    return -1;
  snprintf(st->name, sizeof(st->name), "%s", f[0]);
  snprintf(st->src, sizeof(st->src), "%s", f[1]);
  snprintf(st->dst, sizeof(st->dst), "%s", f[2]);
  if (strcmp(f[3], "all") == 0)
    st->expect_kind = 0;
  else if (strcmp(f[3], "none") == 0)
    st->expect_kind = 1;
  else if (sscanf(f[3], "tenant=t%d", &st->expect_tenant) == 1)
    st->expect_kind = 2;
  else
    return -1;
  if (n == 5) {
    if (strcmp(f[4], "hup") == 0)
      st->hup = 1;
    else if (strcmp(f[4], "inotify") != 0)
      return -1;
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen run --target HOST:PORT -n N --tenants T [OPTION]...\n"
          "       loadgen gen-store --dir DIR --extensions E --tenants T\n"
          "run options:\n"
          "  --org ORG            organization (default %s)\n"
          "  --gateway-every K    every K-th proxy is a GATEWAY (default 10)\n"
          "  --delta              delta ADS instead of state of the world\n"
          "  --server-pid PID     sample the server's RSS and CPU in /proc\n"
          "  --step NAME,SRC,DST,EXPECT[,hup]   a change (repeatable, in "
          "order);\n"
          "                       SRC cmd:COMMAND runs COMMAND instead of "
          "renaming\n"
          "                       SRC over DST (no commas in it)\n"
          "                       EXPECT: all | none | tenant=tNNN\n"
          "  --idle-s S           hold the fleet idle S seconds at the end\n"
          "  --quiet-ms MS        a step ends after MS without a message "
          "(2000)\n"
          "  --timeout-s S        bound on each phase (60)\n"
          "  --label TEXT         copied into the report\n"
          "  --no-decode-cache    decode every copy of a resource (default: "
          "each\n"
          "                       distinct resource is decoded once, equal "
          "bytes reuse it)\n",
          LOADGEN_DEFAULT_ORG);
}

static int run_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"target", required_argument, NULL, 'T'},
      {"n", required_argument, NULL, 'n'},
      {"tenants", required_argument, NULL, 't'},
      {"org", required_argument, NULL, 'o'},
      {"gateway-every", required_argument, NULL, 'G'},
      {"delta", no_argument, NULL, 'D'},
      {"server-pid", required_argument, NULL, 'P'},
      {"step", required_argument, NULL, 'S'},
      {"idle-s", required_argument, NULL, 'I'},
      {"quiet-ms", required_argument, NULL, 'Q'},
      {"timeout-s", required_argument, NULL, 'W'},
      {"label", required_argument, NULL, 'L'},
      {"no-decode-cache", no_argument, NULL, 'C'},
      {NULL, 0, NULL, 0}};
  grpc_channel_credentials *creds;
  char target[512];
  struct rlimit rl;
  int c, i, rc;

  g.org = LOADGEN_DEFAULT_ORG;
  g.gateway_every = 10;
  g.quiet_ms = 2000;
  g.timeout_s = 60;
  g.label = "-";
  optind = 1;
  while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
    switch (c) {
    case 'T':
      g.target = optarg;
      break;
    case 'n':
      g.n = atoi(optarg);
      break;
    case 't':
      g.tenants = atoi(optarg);
      break;
    case 'o':
      g.org = optarg;
      break;
    case 'G':
      g.gateway_every = atoi(optarg);
      break;
    case 'D':
      g.delta = 1;
      break;
    case 'P':
      g_server_pid = atoi(optarg);
      break;
    case 'S':
      if (g.nsteps >= MAX_STEPS || parse_step(optarg, &g.steps[g.nsteps]) < 0) {
        fprintf(stderr, "loadgen: bad --step %s\n", optarg);
        return 2;
      }
      g.nsteps++;
      break;
    case 'I':
      g.idle_s = atoi(optarg);
      break;
    case 'Q':
      g.quiet_ms = atoi(optarg);
      break;
    case 'W':
      g.timeout_s = atoi(optarg);
      break;
    case 'L':
      g.label = optarg;
      break;
    case 'C':
      g_dc_off = 1;
      break;
    default:
      usage();
      return 2;
    }
  }
  if (g.target == NULL || g.n < 1 || g.n > MAX_PROXIES || g.tenants < 1 ||
      g.tenants > 65535 || g.gateway_every < 1 || g.quiet_ms < 0 ||
      g.timeout_s < 1 || g.idle_s < 0) {
    usage();
    return 2;
  }
  /* The sockaddr resolver for a literal address: no DNS per channel. */
  if (strchr(g.target, ':') != NULL && strncmp(g.target, "ipv4:", 5) != 0 &&
      strncmp(g.target, "ipv6:", 5) != 0 && strncmp(g.target, "dns:", 4) != 0 &&
      g.target[0] >= '0' && g.target[0] <= '9')
    snprintf(target, sizeof(target), "ipv4:%s", g.target);
  else
    snprintf(target, sizeof(target), "%s", g.target);
  g.target = target;

  /* One descriptor per connection plus gRPC's own. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t need = (rlim_t)g.n + 256;

    if (rl.rlim_cur < need) {
      rl.rlim_cur = need <= rl.rlim_max ? need : rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)g.n + 64) {
      fprintf(stderr,
              "loadgen: RLIMIT_NOFILE is %llu, %d proxies need "
              "about %d (raise the hard limit)\n",
              (unsigned long long)rl.rlim_cur, g.n, g.n + 256);
      return 1;
    }
  }
  g_clk_tck = sysconf(_SC_CLK_TCK);
  if (g_clk_tck <= 0)
    g_clk_tck = 100;
  signal(SIGPIPE, SIG_IGN);

  /* Client tuning as perf-notes.md: smaller idle read buffers. */
  setenv("GRPC_EXPERIMENTS", "-tcp_read_chunks", 0);
  if (_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE)
    _ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(0);
  if (intern_init() < 0)
    return 1;
  if (!g_dc_off && (g_dc = calloc(DC_SLOTS, sizeof(*g_dc))) == NULL)
    return 1;
  g.px = calloc((size_t)g.n, sizeof(*g.px));
  if (g.px == NULL)
    return 1;
  for (i = 0; i < g.n; i++) {
    g.px[i].idx = (uint32_t)i;
    g.px[i].tenant = (uint16_t)(i % g.tenants);
    g.px[i].gateway = i % g.gateway_every == g.gateway_every - 1;
  }

  grpc_init();
  g.cq = grpc_completion_queue_create_for_next(NULL);
  g.method =
      grpc_slice_from_static_string(g.delta ? METHOD_DELTA_ADS : METHOD_ADS);
  channel_args_init();
  creds = grpc_insecure_credentials_create();

  {
    struct srv_sample s = srv_sample();
    g_srv_baseline_kib = s.ok ? s.rss_kib : 0;
  }
  printf("loadgen: %d proxies (%d tenants of %s, every %d-th a GATEWAY, "
         "labels app=app-<i%%%d>), %s ADS, target %s, one thread, one "
         "completion queue\n",
         g.n, g.tenants, g.org, g.gateway_every, LOADGEN_APPS,
         g.delta ? "delta" : "SotW", g.target);
  printf("loadgen: NOTE the generator and the server share this machine's "
         "%ld cores: the figures include that contention\n",
         sysconf(_SC_NPROCESSORS_ONLN));
  if (g_server_pid > 0)
    printf("loadgen: server pid %d, RSS with 0 proxies (baseline) %.1f MiB\n",
           g_server_pid, g_srv_baseline_kib / 1024.0);
  fflush(stdout);

  rc = run_storm(creds);
  if (rc == 0) {
    for (i = 0; i < g.nsteps; i++)
      run_step(&g.steps[i]);
    if (g.idle_s > 0)
      run_idle();
  } else {
    fprintf(stderr, "loadgen: the storm did not complete; skipping the "
                    "later phases\n");
  }
  {
    double t = now_s();

    teardown();
    printf("loadgen: teardown of %d streams in %.2f s; total generator CPU "
           "%.2f s; decode cache %s: %" PRIu64 " hits, %" PRIu64
           " distinct resources decoded\n",
           g.n, now_s() - t, self_sample().user_s + self_sample().sys_s,
           g_dc_off ? "off" : "on", g_dc_hits, g_dc_misses);
  }
  grpc_channel_credentials_release(creds);
  grpc_shutdown();
  free(g.px);
  free(g_chargs);
  dc_free();
  intern_free();
  return rc == 0 && g.n_failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "gen-store") == 0)
    return loadgen_gen_store_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "run") == 0)
    return run_main(argc - 1, argv + 1);
  usage();
  return 2;
}
