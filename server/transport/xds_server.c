/*
 * xds_server.c: the completion-queue loop, accept slots, per-stream
 * operations and the shutdown choreography.
 *
 * Every tag is a struct xds_op embedded in its owner (an accept slot or a
 * stream); container_of leads back to the owner and a switch on the op kind
 * dispatches. Per stream (style.md §6.14):
 * - RECV_CLOSE_ON_SERVER is posted when the call is accepted;
 * - exactly one RECV_MESSAGE is pending until the client's side ends;
 * - at most one SEND_MESSAGE is in flight; what to send next is pulled from
 *   ads_stream_next_response() when the previous send completes, so the
 *   newest state always wins and nothing queues up per stream;
 * - a stream is freed in the after-events phase once none of its ops is
 *   outstanding (a batch that failed to start never counts);
 * - a stream belongs to one loop (struct loop: a completion queue and the
 *   thread that serves it) for its whole life: gRPC hands the call to the
 *   loop whose queue asked for it, and only that loop's thread starts
 *   batches on it, reads or changes its ADS state, or frees it.
 * What the loops share: the published snapshot (a pointer under
 * publish_lock; each loop holds its own reference to the one it serves),
 * the counters (atomics), the per-proxy log budget (base/ratelog, its own
 * mutex), the stream counts (atomics) and the jobs of status pages and
 * CSDS answers, which every loop answers for its own streams (struct job).
 * A build configured with --enable-debug checks these rules with
 * XDS_ASSERT (base/assert.h) at each event.
 */
#include "server/transport/xds_server.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "server/ads/ads.h"
#include "server/compose/identity.h"
#include "server/pb/wirecheck.h"
#include "server/transport/grpc_log.h"
#include "base/alloc.h"
#include "base/assert.h"
#include "base/buf.h"
#include "base/log.h"
#include "modules/unpack.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "envoy/service/status/v3/csds.pb-c.h"

#define container_of(p, type, member)                                          \
  ((type *)((char *)(p)-offsetof(type, member)))

/* Calls waiting to be accepted at any time: enough that a connection storm
 * does not wait on the loop to re-arm. */
#define ACCEPT_SLOTS 32
/* Largest request accepted, and largest response sent (Envoy's default
 * gRPC limit is 4 MiB). */
#define XDS_MESSAGE_MAX (4 * 1024 * 1024)
/* TCP reads: the first read's size and the largest a connection's reads
 * may grow to (see xds_server_new). */
#define XDS_READ_CHUNK 256
#define XDS_READ_CHUNK_MAX 512
/* Streams one HTTP/2 connection may open at once: an Envoy opens one or
 * two; the bound keeps one client from holding the whole stream budget. */
#define XDS_STREAMS_PER_CONNECTION 16
/* Largest PEM file read (certificates, keys, CA bundles). */
#define XDS_PEM_MAX (1024 * 1024)
/* After drain_ms the streams left are cancelled; those whose cancellation
 * does not complete within this grace (a peer that stopped reading keeps a
 * write stuck in the transport) are abandoned, so a stop never takes more
 * than drain_ms plus this. */
#define XDS_CANCEL_GRACE_MS 400

enum xds_op_kind {
  OP_ACCEPT,
  OP_RECV,     /* SEND_INITIAL_METADATA (first time) + RECV_MESSAGE */
  OP_SEND,     /* SEND_MESSAGE */
  OP_CLOSED,   /* RECV_CLOSE_ON_SERVER */
  OP_STATUS,   /* SEND_STATUS_FROM_SERVER */
  OP_SHUTDOWN, /* the server's shutdown notification */
  OP_WAKE      /* the loop's alarm went off (see wake_arm) */
};

struct xds_op {
  enum xds_op_kind kind;
};

struct accept_slot {
  struct xds_op op;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
};

enum stream_kind {
  STREAM_XDS,          /* one of the methods below */
  STREAM_CSDS,         /* ClientStatusDiscoveryService, streaming */
  STREAM_CSDS_UNARY,   /* ClientStatusDiscoveryService, FetchClientStatus */
  STREAM_UNIMPLEMENTED /* anything else: answered UNIMPLEMENTED */
};

#define CSDS_SERVICE "/envoy.service.status.v3.ClientStatusDiscoveryService/"

struct loop;
struct job;

struct stream {
  struct xds_op op_recv, op_send, op_closed, op_status;
  struct xds_server *server;
  struct loop *loop; /* its owner for its whole life */
  struct stream *prev, *next;
  uint64_t serial; /* stream id on the status pages; grows with accept */
  grpc_call *call;
  enum stream_kind kind;
  grpc_byte_buffer *recv_buf;
  grpc_byte_buffer *send_buf;
  int cancelled;     /* RECV_CLOSE_ON_SERVER result */
  int outstanding;   /* ops started and not yet completed */
  int sending;       /* a SEND_MESSAGE is in flight */
  int recv_armed;    /* a RECV_MESSAGE is in flight */
  int sent_metadata; /* initial metadata went out */
  int closing;       /* no more messages; status queued or sent */
  int status_started;
  int finished;     /* RECV_CLOSE_ON_SERVER completed */
  int close_posted; /* RECV_CLOSE_ON_SERVER was started (at accept) */
  int want_status;  /* send this status once no message is in flight */
  grpc_status_code status_code;
  char *status_msg; /* the status' message, set when the stream ends (NULL:
                       out of memory, sent without one) */
  grpc_slice status_slice;
  struct proxy_id verified; /* from the client certificate (mTLS); for
                               CSDS, the scope of what it may list */
  int has_verified;
  int stats_kind;                /* enum stats_stream, or -1 */
  int counted_proxy;             /* counted in stats->proxies */
  gpr_timespec push_since;       /* publication of the snapshot that caused the
                                    message in flight; tv_sec 0: a request did */
  int pushing;                   /* set while after_events pumps */
  unsigned long counted_refused; /* refused names already in stats */
  unsigned long counted_suppressed; /* suppressed lines already in stats */
  struct ads_stream *ads;           /* the protocol state (owned) */
  struct job *csds;         /* CSDS: the answer being built by every loop */
  struct stream *csds_next; /* next stream of its loop with a pending answer */
};

/*
 * A question about every stream (a status page, a CSDS answer), answered
 * by each loop for its own streams: the asker posts the job to every
 * loop's inbox and wakes it; each loop fills its part (parts[loop index])
 * a slice at a time between its other work, in stream id order, and
 * finishes it; whoever finishes the last part tells the asker (the status
 * condition variable, or a wake of the CSDS stream's loop), which merges
 * the parts by stream id. A part is written by its loop only, and read by
 * the asker only after `pending` reached 0 (the atomic orders the two).
 * The job is freed by whoever drops the last reference (the asker holds
 * one, each unfinished part one).
 */
enum job_kind { JOB_STATUS, JOB_CSDS };

struct job_entry {
  uint64_t serial; /* the stream's id */
  size_t off, len; /* its bytes in the part's text */
};

struct job_part {
  struct job *job;
  struct job_part *next; /* in its loop's inbox or work list */
  uint64_t cursor;       /* serial of the last stream looked at */
  struct stream *at;     /* once started: the next stream to look at
                            (NULL: the end); stream_free moves it on */
  int started;           /* at is valid */
  struct xds_buf text;   /* the entries, one after the other */
  struct job_entry *ents;
  size_t n_ents, cap_ents;
  int rc; /* 0, or why the part is incomplete (negative XDS_E*) */
};

/* What a CSDS caller may list (a copy of its certificate's identity). */
struct csds_scope {
  int limited; /* 0: every proxy */
  char *organization, *tenant, *namespace;
};

struct job {
  enum job_kind kind;
  atomic_int refs;
  atomic_int pending;   /* parts not finished yet */
  atomic_int cancelled; /* the asker gave up: parts end at once */
  struct xds_server *server;
  /* JOB_STATUS */
  struct xds_status_query q; /* strings owned */
  /* JOB_CSDS */
  Envoy__Service__Status__V3__ClientStatusRequest *req; /* owned */
  struct csds_scope scope;
  struct loop *owner; /* the loop of the CSDS stream, woken when done */
  int nparts;
  struct job_part parts[];
};

/*
 * One completion queue and the thread that serves it. Everything here
 * but the fields marked otherwise belongs to that thread.
 */
struct loop {
  struct xds_server *server;
  int index;
  grpc_completion_queue *cq;
  pthread_t thread;   /* set by the loop's own thread (debug checks) */
  pthread_t handle;   /* loops 1..: for pthread_join (xds_server_run) */
  int thread_started; /* loops 1..: handle is valid (xds_server_run) */
  struct accept_slot slots[ACCEPT_SLOTS];
  struct stream *streams; /* doubly linked, oldest first */
  struct stream *streams_tail;
  size_t n_streams;
  struct stream *csds_pending; /* CSDS streams with an answer in progress */
  atomic_int csds_ready;       /* a job of those finished (any thread) */
  struct snapshot *current;    /* the snapshot its streams are moved to */
  gpr_timespec current_at;     /* when current was published */
  atomic_int publish_pending;  /* a snapshot waits for after_events */
  gpr_timespec trim_at;        /* when to return freed memory (tv_sec 0: no) */
  int shutting_down;
  int cancelled_all;
  struct xds_buf out;        /* scratch for building responses */
  long long ratelog_flushed; /* when it last wrote log summaries */
  /* Jobs (struct job): the inbox, filled by any thread under jobs_lock,
   * and the parts being worked on. */
  pthread_mutex_t jobs_lock;
  struct job_part *jobs_in, **jobs_in_tail; /* guarded by jobs_lock */
  int jobs_closed; /* the loop has ended: parts posted now end at once
                      (guarded by jobs_lock) */
  struct job_part *jobs;
  /* The loop's alarm (wake_arm): other threads wake the loop, which
   * otherwise sleeps until an event or its next deadline. */
  struct xds_op op_wake;
  pthread_mutex_t wake_lock;   /* guards wake_call and wake_fired */
  grpc_call *wake_call;        /* armed, or NULL: the loop then ticks */
  int wake_fired;              /* wake_call was cancelled already */
  grpc_metadata_array wake_md; /* the armed call's status */
  grpc_status_code wake_status;
  grpc_slice wake_details;
};

struct xds_server {
  grpc_server *server;
  int port;
  struct xds_server_config cfg;
  struct loop *loops; /* cfg.threads of them; loops[0] runs on the caller */
  int n_loops;
  struct xds_op op_shutdown; /* on loops[0]'s queue */
  atomic_int shutdown_done;  /* gRPC says every call is over */
  atomic_int abandoned;      /* a loop gave up on streams that would not end */
  atomic_int loops_ended;    /* loops that ran and have returned: a status
                                query is no longer answered */
  int shutdown_called;       /* loop 0 asked gRPC to shut down */
  atomic_llong drain_deadline_ms; /* monotonic ms; 0: no stop yet */
  atomic_ullong next_serial;
  pthread_mutex_t publish_lock;
  struct snapshot *published; /* guarded by publish_lock */
  gpr_timespec published_at;  /* guarded by publish_lock */
  struct xds_stats *stats;    /* never NULL: cfg's or own_stats */
  struct xds_stats own_stats;
  atomic_int stop;
  int started; /* grpc_server_start was called */
  int mtls;    /* client certificates are required */
  /* Status requests from other threads (xds_server_status_query). */
  pthread_mutex_t status_lock; /* with status_cond: a status job finished */
  pthread_cond_t status_cond;
  pthread_mutex_t status_users; /* one request at a time */
  struct xds_ratelog *ratelog;  /* per-proxy log budget (its own mutex) */
  atomic_long n_streams_now;
  atomic_long n_proxies_now;
  grpc_channel *wake_ch; /* never connects: the loops' alarms wait on it */
  /* xds_server_stop() runs in signal handlers, where gRPC may not be
   * called: it posts stop_sem, and stop_thread turns that into wakes. */
  sem_t stop_sem;
  pthread_t stop_thread;
  int stop_thread_started;
  atomic_int stop_thread_quit;
};

/* Method paths and what they serve. */
static const struct {
  const char *path;
  enum ads_service svc;
  enum ads_mode mode;
  const char *label;
} methods[] = {
    {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
     "StreamAggregatedResources",
     ADS_SVC_ADS, ADS_SOTW, "ADS"},
    {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
     "DeltaAggregatedResources",
     ADS_SVC_ADS, ADS_DELTA, "delta ADS"},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
     ADS_SVC_LDS, ADS_SOTW, "LDS"},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners",
     ADS_SVC_LDS, ADS_DELTA, "delta LDS"},
    {"/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"
     "StreamExtensionConfigs",
     ADS_SVC_ECDS, ADS_SOTW, "ECDS"},
    {"/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"
     "DeltaExtensionConfigs",
     ADS_SVC_ECDS, ADS_DELTA, "delta ECDS"},
};

/* Asks gRPC for the next call on l's queue: each loop asks on its own, so
 * a new call belongs to the loop whose request it matched. */
static int start_accept(struct loop *l, struct accept_slot *slot) {
  grpc_call_error ce;

  slot->op.kind = OP_ACCEPT;
  slot->call = NULL;
  grpc_call_details_init(&slot->details);
  grpc_metadata_array_init(&slot->md);
  ce = grpc_server_request_call(l->server->server, &slot->call, &slot->details,
                                &slot->md, l->cq, l->cq, &slot->op);
  if (ce != GRPC_CALL_OK) {
    XDS_LOGE("cannot accept calls: grpc_server_request_call: %d", ce);
    grpc_call_details_destroy(&slot->details);
    grpc_metadata_array_destroy(&slot->md);
    return XDS_EIO;
  }
  return 0;
}

/* Reads a whole PEM file into a new string. */
static int read_pem(const char *flag, const char *path, char **out,
                    struct xds_err *err) {
  FILE *f = fopen(path, "rb");
  struct xds_buf b;
  char chunk[4096];
  size_t n;
  int rc = 0;

  *out = NULL;
  if (f == NULL)
    return xds_err_set(err, XDS_EIO, "%s %s: %s", flag, path, strerror(errno));
  xds_buf_init(&b, XDS_PEM_MAX);
  while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    rc = xds_buf_append(&b, chunk, n);
  if (rc == 0 && ferror(f))
    rc = XDS_EIO;
  fclose(f);
  if (rc == 0 && (b.len == 0 || strstr(b.data, "-----BEGIN") == NULL))
    rc = XDS_EINVAL;
  if (rc < 0) {
    xds_buf_cleanup(&b);
    return xds_err_set(err, rc, "%s %s: %s", flag, path,
                       rc == XDS_EINVAL    ? "not a PEM file"
                       : rc == XDS_ETOOBIG ? "larger than 1 MiB"
                                           : xds_strerror(rc));
  }
  *out = xds_buf_steal(&b, NULL);
  return 0;
}

static grpc_server_credentials *make_creds(const struct xds_server_config *cfg,
                                           int *mtls, struct xds_err *err) {
  grpc_ssl_pem_key_cert_pair pair;
  grpc_server_credentials *creds;
  char *cert = NULL, *key = NULL, *ca = NULL;

  *mtls = 0;
  if (cfg->tls_cert == NULL && cfg->tls_key == NULL) {
    if (cfg->tls_client_ca != NULL) {
      xds_err_set(err, XDS_EINVAL,
                  "--tls-client-ca needs --tls-cert and "
                  "--tls-key");
      return NULL;
    }
    return grpc_insecure_server_credentials_create();
  }
  if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
    xds_err_set(err, XDS_EINVAL, "--tls-cert and --tls-key go together");
    return NULL;
  }
  if (read_pem("--tls-cert", cfg->tls_cert, &cert, err) < 0 ||
      read_pem("--tls-key", cfg->tls_key, &key, err) < 0 ||
      (cfg->tls_client_ca != NULL &&
       read_pem("--tls-client-ca", cfg->tls_client_ca, &ca, err) < 0)) {
    xds_free(cert);
    xds_free(key);
    return NULL;
  }
  pair.private_key = key;
  pair.cert_chain = cert;
  creds = grpc_ssl_server_credentials_create_ex(
      ca, &pair, 1,
      ca != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
      NULL);
  *mtls = ca != NULL;
  xds_free(cert);
  xds_free(key);
  xds_free(ca);
  if (creds == NULL)
    xds_err_set(err, XDS_EINVAL, "--tls-cert/--tls-key: gRPC refused them");
  return creds;
}

/* Debian's abseil is built without NDEBUG, so every gRPC mutex runs its
 * lock-order deadlock detector: about a fifth of the server's CPU and
 * 2.5 KiB per stream (perf-notes). Declared weak: on another build of
 * abseil the symbol is absent and nothing is called. */
extern void
_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(int mode)
    __attribute__((weak));

/* Process-wide gRPC settings, before grpc_init(). The tcp_read_chunks
 * experiment keeps an 8 KiB read buffer per idle connection and makes the
 * read-chunk arguments below ignored; turning it off (unless the operator
 * set GRPC_EXPERIMENTS) saves about 3.6 KiB per stream. */
static void tune_grpc(void) {
  setenv("GRPC_EXPERIMENTS", "-tcp_read_chunks", 0);
  if (_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE !=
      NULL)
    _ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(0);
}

/* Why cfg->listen cannot be bound, for the error message: the errno of a
 * plain bind of the same address (gRPC does not say). */
static const char *probe_bind(const char *listen, char *why, size_t cap) {
  struct addrinfo hints, *res = NULL;
  char host[256];
  const char *colon = strrchr(listen, ':'), *h = listen;
  size_t hlen;
  int fd, rc, one = 1;

  snprintf(why, cap, "not a valid host:port");
  if (colon == NULL || colon[1] == '\0')
    return why;
  hlen = (size_t)(colon - listen);
  if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  }
  if (hlen >= sizeof(host))
    return why;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  rc = getaddrinfo(hlen > 0 ? host : NULL, colon + 1, &hints, &res);
  if (rc != 0) {
    snprintf(why, cap, "%s", gai_strerror(rc));
    return why;
  }
  fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, cap, "%s", strerror(errno));
  } else {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
      snprintf(why, cap, "%s%s", strerror(errno),
               errno == EADDRINUSE ? " (another wasmxds, or another program, "
                                     "holds the port)"
                                   : "");
    else
      snprintf(why, cap, "gRPC refused the address");
    close(fd);
  }
  freeaddrinfo(res);
  return why;
}

static void set_int_arg(grpc_arg *a, const char *key, int value) {
  a->type = GRPC_ARG_INTEGER;
  a->key = (char *)key;
  a->value.integer = value;
}

/*
 * Each loop's alarm. gRPC 1.51's C API has none, and a loop must not wake
 * on a timer when idle (issue 20): it keeps one client call armed on a
 * channel that never connects, with only RECV_STATUS_ON_CLIENT started.
 * Without SEND_INITIAL_METADATA the channel never picks a connection, so
 * the call waits in memory, no descriptor, no timer; grpc_call_cancel(),
 * which gRPC allows from any thread, completes it on the loop's queue
 * (OP_WAKE), and the loop arms a new one. Without an armed call (it could
 * not be made) the loop ticks every XDS_SERVER_TICK_MS as before.
 */
static void wake_loop(struct loop *l) {
  pthread_mutex_lock(&l->wake_lock);
  if (l->wake_call != NULL && !l->wake_fired) {
    l->wake_fired = 1;
    grpc_call_cancel(l->wake_call, NULL);
  }
  pthread_mutex_unlock(&l->wake_lock);
}

static void wake_all(struct xds_server *s) {
  for (int i = 0; i < s->n_loops; i++)
    wake_loop(&s->loops[i]);
}

/* Loop thread: drops the call that went off (if any) and arms a new one,
 * unless the server is stopping (it ticks then). */
static void wake_arm(struct loop *l) {
  struct xds_server *s = l->server;
  grpc_call *call = NULL;
  grpc_op op;

  pthread_mutex_lock(&l->wake_lock);
  if (l->wake_call != NULL)
    grpc_call_unref(l->wake_call);
  l->wake_call = NULL;
  grpc_metadata_array_destroy(&l->wake_md);
  grpc_metadata_array_init(&l->wake_md);
  grpc_slice_unref(l->wake_details);
  l->wake_details = grpc_empty_slice();
  if (s->wake_ch != NULL && !l->shutting_down && !atomic_load(&s->stop)) {
    call = grpc_channel_create_call(
        s->wake_ch, NULL, GRPC_PROPAGATE_DEFAULTS, l->cq,
        grpc_slice_from_static_string("/wasmxds.Loop/Wake"), NULL,
        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &l->wake_md;
    op.data.recv_status_on_client.status = &l->wake_status;
    op.data.recv_status_on_client.status_details = &l->wake_details;
    if (call != NULL && grpc_call_start_batch(call, &op, 1, &l->op_wake,
                                              NULL) != GRPC_CALL_OK) {
      grpc_call_unref(call);
      call = NULL;
    }
  }
  l->wake_call = call;
  l->wake_fired = 0;
  pthread_mutex_unlock(&l->wake_lock);
}

/* The stop thread: turns xds_server_stop()'s semaphore into wakes. */
static void *stop_main(void *arg) {
  struct xds_server *s = arg;

  for (;;) {
    while (sem_wait(&s->stop_sem) < 0 && errno == EINTR)
      ;
    if (atomic_load(&s->stop_thread_quit))
      return NULL;
    wake_all(s);
  }
}

/* The alarms' channel and the stop thread (signals blocked in it). On
 * failure the loops tick instead. */
static void wake_setup(struct xds_server *s) {
  grpc_channel_credentials *cr = grpc_insecure_credentials_create();
  sigset_t all, old;

  s->wake_ch =
      grpc_channel_create("unix:/nonexistent/wasmxds-loop-wake", cr, NULL);
  grpc_channel_credentials_release(cr);
  if (sem_init(&s->stop_sem, 0, 0) < 0)
    return;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  s->stop_thread_started =
      pthread_create(&s->stop_thread, NULL, stop_main, s) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!s->stop_thread_started)
    sem_destroy(&s->stop_sem);
}

/* Loop thread: how long the loop may sleep. Idle with an armed alarm:
 * until the next thing it must do by itself (a pending log summary, the
 * delayed malloc_trim), or for ever. */
static gpr_timespec loop_deadline(struct loop *l) {
  struct xds_server *s = l->server;
  gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC), d;
  int armed;

  /* Its part of a status page or CSDS answer under way: its next slice. */
  if (l->jobs != NULL)
    return gpr_time_add(now, gpr_time_from_millis(1, GPR_TIMESPAN));
  pthread_mutex_lock(&l->wake_lock);
  armed = l->wake_call != NULL;
  pthread_mutex_unlock(&l->wake_lock);
  if (!armed || l->shutting_down || atomic_load(&s->stop) ||
      !s->stop_thread_started)
    return gpr_time_add(now,
                        gpr_time_from_millis(XDS_SERVER_TICK_MS, GPR_TIMESPAN));
  d = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  if (xds_ratelog_pending(s->ratelog)) {
    long long wait = 1000 - (xds_ratelog_now_ms() - l->ratelog_flushed);
    d = gpr_time_add(now,
                     gpr_time_from_millis(wait > 1 ? wait : 1, GPR_TIMESPAN));
  }
  if (l->trim_at.tv_sec != 0 && gpr_time_cmp(l->trim_at, d) < 0)
    d = l->trim_at;
  return d;
}

int xds_server_default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);

  if (n < 1)
    return 1;
  return n > XDS_SERVER_DEFAULT_THREADS_MAX ? XDS_SERVER_DEFAULT_THREADS_MAX
                                            : (int)n;
}

/* Sets up loop i (its queue is registered with the server by the caller). */
static int loop_init(struct xds_server *s, struct loop *l, int i) {
  l->server = s;
  l->index = i;
  atomic_init(&l->csds_ready, 0);
  atomic_init(&l->publish_pending, 0);
  xds_buf_init(&l->out, XDS_MESSAGE_MAX);
  pthread_mutex_init(&l->jobs_lock, NULL);
  l->jobs_in_tail = &l->jobs_in;
  pthread_mutex_init(&l->wake_lock, NULL);
  grpc_metadata_array_init(&l->wake_md);
  l->wake_details = grpc_empty_slice();
  l->op_wake.kind = OP_WAKE;
  l->cq = grpc_completion_queue_create_for_next(NULL);
  return l->cq != NULL ? 0 : XDS_ENOMEM;
}

int xds_server_new(const struct xds_server_config *cfg, struct xds_server **out,
                   struct xds_err *err) {
  struct xds_server *s;
  grpc_server_credentials *creds;
  grpc_arg args[18];
  grpc_channel_args cargs;
  int keepalive, keepalive_timeout;

  *out = NULL;
  s = xds_calloc(1, sizeof(*s));
  if (s == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  s->cfg = *cfg;
  if (s->cfg.max_streams <= 0)
    s->cfg.max_streams = XDS_SERVER_DEFAULT_MAX_STREAMS;
  if (s->cfg.keepalive_ms <= 0)
    s->cfg.keepalive_ms = XDS_SERVER_DEFAULT_KEEPALIVE_MS;
  if (s->cfg.drain_ms <= 0)
    s->cfg.drain_ms = XDS_SERVER_DEFAULT_DRAIN_MS;
  if (s->cfg.threads <= 0)
    s->cfg.threads = xds_server_default_threads();
  if (s->cfg.threads > XDS_SERVER_THREADS_MAX)
    s->cfg.threads = XDS_SERVER_THREADS_MAX;
  stats_init(&s->own_stats);
  s->stats = cfg->stats != NULL ? cfg->stats : &s->own_stats;
  pthread_mutex_init(&s->publish_lock, NULL);
  pthread_mutex_init(&s->status_lock, NULL);
  pthread_mutex_init(&s->status_users, NULL);
  pthread_cond_init(&s->status_cond, NULL);
  atomic_init(&s->stop, 0);
  atomic_init(&s->shutdown_done, 0);
  atomic_init(&s->abandoned, 0);
  atomic_init(&s->loops_ended, 0);
  atomic_init(&s->drain_deadline_ms, 0);
  s->op_shutdown.kind = OP_SHUTDOWN;
  atomic_init(&s->next_serial, 0);
  atomic_init(&s->n_streams_now, 0);
  atomic_init(&s->n_proxies_now, 0);
  s->ratelog = ads_ratelog_new();
  atomic_init(&s->stop_thread_quit, 0);
  tune_grpc();
  grpc_log_route();
  grpc_init();
  s->loops = xds_calloc((size_t)s->cfg.threads, sizeof(*s->loops));
  if (s->loops == NULL) {
    xds_server_free(s);
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
  for (int i = 0; i < s->cfg.threads; i++) {
    int rc = loop_init(s, &s->loops[i], i);
    s->n_loops++; /* initialized, even in part: freed by xds_server_free */
    if (rc < 0) {
      xds_server_free(s);
      return xds_err_set(err, rc, "cannot create completion queue %d", i);
    }
  }
  wake_setup(s);
  keepalive = s->cfg.keepalive_ms;
  keepalive_timeout = keepalive / 3 > 5000 ? keepalive / 3 : 5000;
  set_int_arg(&args[0], GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, XDS_MESSAGE_MAX);
  set_int_arg(&args[1], GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, XDS_MESSAGE_MAX);
  set_int_arg(&args[2], GRPC_ARG_MAX_CONCURRENT_STREAMS,
              XDS_STREAMS_PER_CONNECTION);
  /* Dead peers: ping every keepalive ms, give up after the timeout. */
  set_int_arg(&args[3], GRPC_ARG_KEEPALIVE_TIME_MS, keepalive);
  set_int_arg(&args[4], GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_timeout);
  set_int_arg(&args[5], GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  /* Accept Envoy's own keepalive pings (its bootstraps commonly use 30 s;
   * allow down to 5 s) without answering with GOAWAY. */
  set_int_arg(&args[6], GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
              5000);
  set_int_arg(&args[7], GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  /* No bandwidth probes: xDS streams are small and mostly idle; probing
   * doubles the cost of reading ACKs (perf-notes). */
  set_int_arg(&args[8], GRPC_ARG_HTTP2_BDP_PROBE, 0);
  set_int_arg(&args[9], GRPC_ARG_ENABLE_CHANNELZ, 0);
  /* Small reads: every idle connection keeps a read buffer of the size
   * its reads grew to, and the reads of an ACK (its names, a few KiB) grow
   * it. Reads start at 256 bytes and never grow past 512: about 0.7 KiB
   * per idle connection, where reads of 1 KiB growing without a cap kept
   * 2.3 KiB after the storm and 4.5 after pushes (README "Figures"); a
   * request of a few KiB takes a few more reads (no measurable CPU). */
  set_int_arg(&args[10], GRPC_ARG_TCP_READ_CHUNK_SIZE, XDS_READ_CHUNK);
  set_int_arg(&args[11], GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 256);
  set_int_arg(&args[12], GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, XDS_READ_CHUNK_MAX);
  /* No HPACK dynamic tables: headers are sent once per stream. */
  set_int_arg(&args[13], GRPC_ARG_HTTP2_HPACK_TABLE_SIZE_DECODER, 0);
  set_int_arg(&args[14], GRPC_ARG_HTTP2_HPACK_TABLE_SIZE_ENCODER, 0);
  /* gRPC binds with SO_REUSEPORT by default: a second wasmxds on the same
   * --listen would then start and take half the proxies. Without it, the
   * bind fails when the port is taken. */
  set_int_arg(&args[15], GRPC_ARG_ALLOW_REUSEPORT, 0);
  /* Compressed requests: gzip only, inflated by take_message() with a
   * bound. gRPC 1.51 inflates a message without a bound and checks its
   * size afterwards, so a 4 MiB request of gzip could cost gigabytes
   * before it is refused; with its decompression off it hands the
   * message over as received. Deflate is refused by gRPC (UNIMPLEMENTED,
   * before anything is inflated). */
  set_int_arg(&args[16], GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET,
              (1 << GRPC_COMPRESS_NONE) | (1 << GRPC_COMPRESS_GZIP));
  set_int_arg(&args[17], GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
  cargs.num_args = 18;
  cargs.args = args;
  creds = make_creds(&s->cfg, &s->mtls, err);
  if (creds == NULL) {
    xds_server_free(s);
    return XDS_EINVAL;
  }
  s->server = grpc_server_create(&cargs, NULL);
  for (int i = 0; i < s->n_loops; i++)
    grpc_server_register_completion_queue(s->server, s->loops[i].cq, NULL);
  s->port = grpc_server_add_http2_port(s->server, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (s->port == 0) {
    char why[128];
    xds_err_set(err, XDS_EIO, "--listen %s: cannot bind: %s", cfg->listen,
                probe_bind(cfg->listen, why, sizeof(why)));
    grpc_server_destroy(s->server);
    s->server = NULL;
    xds_server_free(s);
    return XDS_EIO;
  }
  *out = s;
  return 0;
}

int xds_server_port(const struct xds_server *s) {
  return s->port;
}

void xds_server_publish(struct xds_server *s, struct snapshot *snap) {
  struct snapshot *old;

  snapshot_ref(snap);
  pthread_mutex_lock(&s->publish_lock);
  old = s->published;
  s->published = snap;
  s->published_at = gpr_now(GPR_CLOCK_MONOTONIC);
  for (int i = 0; i < s->n_loops; i++)
    atomic_store(&s->loops[i].publish_pending, 1);
  pthread_mutex_unlock(&s->publish_lock);
  wake_all(s);
  snapshot_unref(old);
  atomic_fetch_add(&s->stats->snapshots, 1);
}

void xds_server_stop(struct xds_server *s) {
  atomic_store(&s->stop, 1);
  if (s->stop_thread_started)
    sem_post(&s->stop_sem); /* async-signal-safe */
}

/* The rule of one owner: only a stream's loop thread touches its call and
 * its state. */
#define ASSERT_LOOP_THREAD(l)                                                  \
  XDS_ASSERT(pthread_equal(pthread_self(), (l)->thread))

/* Ops a stream can have outstanding at once: RECV_CLOSE_ON_SERVER, one
 * RECV_MESSAGE, one SEND_MESSAGE and SEND_STATUS_FROM_SERVER. */
#define STREAM_OPS_MAX 4

/* Starts a batch for a stream; counts it only when it started. */
static int stream_batch(struct stream *st, const grpc_op *ops, size_t n,
                        struct xds_op *tag) {
  grpc_call_error ce;

  ASSERT_LOOP_THREAD(st->loop);
  ce = grpc_call_start_batch(st->call, ops, n, tag, NULL);

  if (ce != GRPC_CALL_OK) {
    XDS_LOGE("stream %s: grpc_call_start_batch failed (%d)",
             ads_stream_peer(st->ads), ce);
    return XDS_EIO;
  }
  st->outstanding++;
  XDS_ASSERT(st->outstanding <= STREAM_OPS_MAX);
  return 0;
}

static void stream_arm_recv(struct stream *st) {
  grpc_op ops[2];
  size_t n = 0;

  /* Exactly one RECV_MESSAGE pending, and only after RECV_CLOSE_ON_SERVER
   * was posted at accept. */
  XDS_ASSERT(!st->recv_armed && st->close_posted && !st->closing);
  memset(ops, 0, sizeof(ops));
  if (!st->sent_metadata) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = 0;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &st->recv_buf;
  n++;
  st->recv_buf = NULL;
  if (stream_batch(st, ops, n, &st->op_recv) == 0) {
    st->recv_armed = 1;
    st->sent_metadata = 1;
  } else {
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
  }
}

/* Sets the message of the status the stream will end with (at most
 * XDS_STATUS_MSG_MAX bytes). */
#define XDS_STATUS_MSG_MAX 255
static void stream_status_msg(struct stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void stream_status_msg(struct stream *st, const char *fmt, ...) {
  char buf[XDS_STATUS_MSG_MAX + 1];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  xds_free(st->status_msg);
  st->status_msg = xds_strdup(buf);
}

static void stream_send_status(struct stream *st) {
  grpc_op ops[2];
  size_t n = 0;

  if (st->status_started || st->finished)
    return;
  st->status_started = 1;
  st->closing = 1;
  memset(ops, 0, sizeof(ops));
  /* gRPC does not write the trailers of a call whose initial metadata was
   * never sent. */
  if (!st->sent_metadata) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = 0;
    n++;
    st->sent_metadata = 1;
  }
  st->status_slice = grpc_slice_from_copied_string(
      st->status_msg != NULL ? st->status_msg : "");
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.trailing_metadata_count = 0;
  ops[n].data.send_status_from_server.status = st->status_code;
  ops[n].data.send_status_from_server.status_details = &st->status_slice;
  n++;
  if (stream_batch(st, ops, n, &st->op_status) < 0) {
    grpc_slice_unref(st->status_slice);
    grpc_call_cancel(st->call, NULL);
  }
}

/* Ends the stream with a status, after any message in flight. */
static void stream_close(struct stream *st, grpc_status_code code,
                         const char *msg) {
  if (st->closing)
    return;
  st->closing = 1;
  st->want_status = 1;
  st->status_code = code;
  stream_status_msg(st, "%s", msg);
  if (!st->sending)
    stream_send_status(st);
}

/* Drops the snapshot reference a shared slice held. */
static void unref_snapshot(void *p) {
  snapshot_unref(p);
}

static int stats_type(int ads_type) {
  return ads_type == ADS_T_LDS    ? STATS_T_LDS
         : ads_type == ADS_T_ECDS ? STATS_T_ECDS
                                  : STATS_T_OTHER;
}

/* The stream's node id for logs, or its peer before it has one. */
static const char *stream_name(const struct stream *st) {
  return ads_stream_log_name(st->ads);
}

/* Adds to the metrics what the stream's events since the last call
 * amount to (refusals happen while requests are applied and while
 * responses are built). */
static void stream_account(struct stream *st, const struct ads_counts *c) {
  struct xds_stats *stats = st->server->stats;

  atomic_fetch_add(&stats->refused_names,
                   c->refused_names - st->counted_refused);
  atomic_fetch_add(&stats->log_suppressed,
                   c->log_suppressed - st->counted_suppressed);
  st->counted_refused = c->refused_names;
  st->counted_suppressed = c->log_suppressed;
}

/* Sends the next response the stream owes, if no send is in flight. */
static void stream_pump(struct stream *st) {
  struct xds_server *s = st->server;
  struct loop *l = st->loop;
  struct ads_shared shared;
  grpc_slice slices[2];
  size_t n = 0;
  struct ads_counts c;
  grpc_op op;
  int rc;

  if (st->sending || st->closing || st->kind != STREAM_XDS)
    return;
  rc = ads_stream_next_response(st->ads, &l->out, &shared);
  ads_stream_counts(st->ads, &c);
  stream_account(st, &c);
  if (rc == 0)
    return;
  if (rc < 0) {
    XDS_LOGE("node %s: cannot build a response: %s", stream_name(st),
             xds_strerror(rc));
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 "the response does not fit the message size limit");
    return;
  }
  /* At most one SEND_MESSAGE in flight. */
  XDS_ASSERT(st->send_buf == NULL);
  /* The class's shared part goes out without a copy: the slice holds a
   * reference to the snapshot that owns the bytes. */
  if (shared.data != NULL)
    slices[n++] = grpc_slice_new_with_user_data((void *)shared.data, shared.len,
                                                unref_snapshot,
                                                snapshot_ref(shared.snap));
  slices[n++] = grpc_slice_from_copied_buffer(l->out.data, l->out.len);
  st->send_buf = grpc_raw_byte_buffer_create(slices, n);
  for (size_t i = 0; i < n; i++)
    grpc_slice_unref(slices[i]);
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = st->send_buf;
  if (stream_batch(st, &op, 1, &st->op_send) < 0) {
    grpc_byte_buffer_destroy(st->send_buf);
    st->send_buf = NULL;
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
    return;
  }
  st->sending = 1;
  st->push_since =
      st->pushing ? l->current_at : gpr_time_0(GPR_CLOCK_MONOTONIC);
  atomic_fetch_add(&s->stats->responses[stats_type(c.last_type)], 1);
  atomic_fetch_add(&s->stats->resources_sent[stats_type(c.last_type)],
                   c.last_resources);
}

static void csds_drop(struct stream *st);

static void stream_free(struct loop *l, struct stream *st) {
  struct xds_server *s = l->server;
  const char *node =
      ads_stream_node_id(st->ads) != NULL ? ads_stream_log_name(st->ads) : NULL;
  struct ads_counts c;

  csds_drop(st);
  /* The parts under way keep their place by pointer: move them on. */
  for (struct job_part *p = l->jobs; p != NULL; p = p->next)
    if (p->started && p->at == st)
      p->at = st->next;
  ads_stream_counts(st->ads, &c);
  /* Freed only once nothing of it can complete any more. */
  XDS_ASSERT(st->closing && st->outstanding == 0 && !st->sending &&
             !st->recv_armed);
  if (st->prev != NULL)
    st->prev->next = st->next;
  else
    l->streams = st->next;
  if (st->next != NULL)
    st->next->prev = st->prev;
  else
    l->streams_tail = st->prev;
  l->n_streams--;
  if (node != NULL)
    XDS_LOGI("proxy disconnected: node %s (%llu responses, %llu ACKs, "
             "%llu NACKs)",
             node, (unsigned long long)c.responses,
             (unsigned long long)(c.acks[ADS_T_LDS] + c.acks[ADS_T_ECDS]),
             (unsigned long long)(c.nacks[ADS_T_LDS] + c.nacks[ADS_T_ECDS]));
  atomic_fetch_sub(&s->n_streams_now, 1);
  if (node != NULL)
    atomic_fetch_sub(&s->n_proxies_now, 1);
  if (st->stats_kind >= 0)
    atomic_fetch_sub(&s->stats->streams[st->stats_kind], 1);
  if (st->counted_proxy)
    atomic_fetch_sub(&s->stats->proxies, 1);
  ads_stream_free(st->ads);
  proxy_id_cleanup(&st->verified);
  xds_free(st->status_msg);
  if (st->recv_buf != NULL)
    grpc_byte_buffer_destroy(st->recv_buf);
  grpc_call_unref(st->call);
  xds_free(st);
}

static int same_str(const char *a, const char *b) {
  return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* "organization O tenant T" or "namespace N" of a certificate's identity,
 * for a log line (each part passed the identity grammar). */
static const char *id_text(const struct proxy_id *id, char *buf, size_t n) {
  if (id->namespace != NULL)
    snprintf(buf, n, "namespace %s", id->namespace);
  else
    snprintf(buf, n, "organization %s tenant %s", id->organization,
             id->tenant != NULL ? id->tenant : "-");
  return buf;
}

/* With mutual TLS: the identity the client certificate proves, from its
 * SPIFFE URI SANs. Fails (status set) when there is none, or when two name
 * different organizations, tenants or namespaces. */
static int stream_verify_peer(struct stream *st, const char *peer) {
  /* Every URI SAN (peer_uri); peer_spiffe_id only when gRPC gave none. */
  static const char *const props[] = {GRPC_PEER_URI_PROPERTY_NAME,
                                      GRPC_PEER_SPIFFE_ID_PROPERTY_NAME};
  grpc_auth_context *ctx = grpc_call_auth_context(st->call);
  struct xds_err err = {0, "no spiffe:// URI SAN"};
  char first[600], other[600];
  int found = 0, ambiguous = 0;

  for (size_t i = 0; ctx != NULL && !found && i < 2; i++) {
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, props[i]);
    const grpc_auth_property *p;
    while ((p = grpc_auth_property_iterator_next(&it)) != NULL) {
      struct proxy_id id;
      if (p->value_length < 9 || strncmp(p->value, "spiffe://", 9) != 0)
        continue;
      if (identity_from_spiffe(p->value, p->value_length, &id, &err) < 0)
        continue;
      if (!found) {
        st->verified = id;
        found = 1;
        continue;
      }
      /* The same identity twice is harmless; two are ambiguous. */
      if (!ambiguous &&
          (!same_str(id.organization, st->verified.organization) ||
           !same_str(id.tenant, st->verified.tenant) ||
           !same_str(id.namespace, st->verified.namespace))) {
        ambiguous = 1;
        id_text(&id, other, sizeof(other));
      }
      proxy_id_cleanup(&id);
    }
  }
  if (ctx != NULL)
    grpc_auth_context_release(ctx);
  if (ambiguous) {
    XDS_LOGW("stream from %s refused: its client certificate is ambiguous: "
             "it names both %s and %s",
             peer, id_text(&st->verified, first, sizeof(first)), other);
    proxy_id_cleanup(&st->verified);
    stream_status_msg(
        st, "the client certificate names more than one organization or "
            "tenant");
    st->status_code = GRPC_STATUS_PERMISSION_DENIED;
    return -1;
  }
  if (!found) {
    char e_msg[XDS_LOG_ESC_MAX];
    XDS_LOGW("stream from %s refused: its client certificate names no "
             "organization (%s)",
             peer, xds_log_escape(err.msg, e_msg, sizeof(e_msg)));
    stream_status_msg(
        st, "the client certificate must carry a URI SAN "
            "spiffe://<trust-domain>/organizations/<org>[/tenants/<t>] or "
            "spiffe://<trust-domain>/ns/<namespace>/sa/<account>");
    st->status_code = GRPC_STATUS_PERMISSION_DENIED;
    return -1;
  }
  st->has_verified = 1;
  ads_stream_set_verified(st->ads, &st->verified);
  return 0;
}

static void on_accept(struct loop *l, struct accept_slot *slot, int ok) {
  struct xds_server *s = l->server;
  struct stream *st = NULL;
  long open_now;
  enum stream_kind kind = STREAM_UNIMPLEMENTED;
  enum ads_service svc = ADS_SVC_ADS;
  enum ads_mode mode = ADS_SOTW;
  const char *label = "";
  char *peer = NULL;
  grpc_op op;

  if (!ok || slot->call == NULL)
    goto done;
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    if (grpc_slice_str_cmp(slot->details.method, methods[i].path) == 0) {
      kind = STREAM_XDS;
      svc = methods[i].svc;
      mode = methods[i].mode;
      label = methods[i].label;
    }
  }
  if (grpc_slice_str_cmp(slot->details.method,
                         CSDS_SERVICE "StreamClientStatus") == 0) {
    kind = STREAM_CSDS;
    label = "CSDS";
  } else if (grpc_slice_str_cmp(slot->details.method,
                                CSDS_SERVICE "FetchClientStatus") == 0) {
    kind = STREAM_CSDS_UNARY;
    label = "CSDS fetch";
  }
  st = xds_calloc(1, sizeof(*st));
  peer = grpc_call_get_peer(slot->call);
  if (st == NULL || ads_stream_new(svc, mode, peer, &st->ads) < 0) {
    XDS_LOGE("out of memory accepting a stream from %s", peer);
    xds_free(st);
    grpc_call_cancel_with_status(slot->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "out of memory", NULL);
    grpc_call_unref(slot->call);
    goto done;
  }
  ads_stream_set_ratelog(st->ads, s->ratelog);
  /* /metrics' proxies by sync state: kept by the ADS core as streams
   * change state, no pass over the streams. Every loop's streams count
   * into the same gauges with atomic adds, so they hold the sum over the
   * loops without a lock or a merge. */
  ads_stream_set_sync_counts(st->ads, s->stats->proxies_by_state);
  st->op_recv.kind = OP_RECV;
  st->op_send.kind = OP_SEND;
  st->op_closed.kind = OP_CLOSED;
  st->op_status.kind = OP_STATUS;
  st->server = s;
  st->loop = l;
  st->call = slot->call;
  st->kind = kind;
  open_now = atomic_fetch_add(&s->n_streams_now, 1) + 1;
  st->stats_kind = -1;
  if (kind == STREAM_XDS) {
    st->stats_kind = (int)svc * 2 + (int)mode;
    atomic_fetch_add(&s->stats->streams[st->stats_kind], 1);
  }
  /* Ids grow along each loop's list: this loop takes them in order. */
  st->serial = atomic_fetch_add(&s->next_serial, 1) + 1;
  st->prev = l->streams_tail;
  if (l->streams_tail != NULL)
    l->streams_tail->next = st;
  else
    l->streams = st;
  l->streams_tail = st;
  l->n_streams++;

  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &st->cancelled;
  if (stream_batch(st, &op, 1, &st->op_closed) == 0)
    st->close_posted = 1;
  else {
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
    goto done;
  }
  if (l->shutting_down || atomic_load(&s->stop)) {
    stream_status_msg(st, "wasmxds is shutting down; reconnect");
    st->status_code = GRPC_STATUS_UNAVAILABLE;
    stream_send_status(st);
    goto done;
  }
  if (kind == STREAM_XDS && open_now > (long)s->cfg.max_streams) {
    atomic_fetch_add(&s->stats->refused_streams, 1);
    XDS_LOGW("stream from %s refused: %ld streams open, the limit is %d", peer,
             open_now - 1, s->cfg.max_streams);
    stream_status_msg(st, "wasmxds holds its limit of %d streams",
                      s->cfg.max_streams);
    st->status_code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    stream_send_status(st);
    goto done;
  }
  if (kind != STREAM_UNIMPLEMENTED && s->mtls &&
      stream_verify_peer(st, peer) < 0) {
    atomic_fetch_add(&s->stats->refused_streams, 1);
    stream_send_status(st);
    goto done;
  }
  if (kind == STREAM_UNIMPLEMENTED) {
    char *method = grpc_slice_to_c_string(slot->details.method);
    XDS_LOGW("call from %s to unknown method %s: UNIMPLEMENTED", peer, method);
    stream_status_msg(st, "wasmxds does not implement %s", method);
    gpr_free(method);
    st->status_code = GRPC_STATUS_UNIMPLEMENTED;
    stream_send_status(st);
    goto done;
  }
  XDS_LOGD("stream from %s on %s", peer, label);
  stream_arm_recv(st);
done:
  if (peer != NULL)
    gpr_free(peer);
  grpc_call_details_destroy(&slot->details);
  grpc_metadata_array_destroy(&slot->md);
  if (!l->shutting_down && !atomic_load(&s->stop))
    start_accept(l, slot);
}

static void query_free(struct xds_status_query *q) {
  xds_free((char *)q->node_id);
  xds_free((char *)q->organization);
  xds_free((char *)q->tenant);
  memset(q, 0, sizeof(*q));
}

/* Copies q into out (strings duplicated). Returns 0 or XDS_ENOMEM. */
static int query_copy(struct xds_status_query *out,
                      const struct xds_status_query *q) {
  *out = *q;
  out->node_id = q->node_id ? xds_strdup(q->node_id) : NULL;
  out->organization = q->organization ? xds_strdup(q->organization) : NULL;
  out->tenant = q->tenant ? xds_strdup(q->tenant) : NULL;
  if ((q->node_id && !out->node_id) ||
      (q->organization && !out->organization) || (q->tenant && !out->tenant)) {
    query_free(out);
    return XDS_ENOMEM;
  }
  return 0;
}

static int query_match(const struct xds_status_query *q,
                       const struct stream *st) {
  const struct proxy_id *p = ads_stream_proxy(st->ads);

  if (p == NULL || st->kind != STREAM_XDS)
    return 0;
  if (q->node_id != NULL && strcmp(p->node_id, q->node_id) != 0)
    return 0;
  if (q->organization != NULL &&
      (p->organization == NULL || strcmp(p->organization, q->organization)))
    return 0;
  if (q->tenant != NULL && (p->tenant == NULL || strcmp(p->tenant, q->tenant)))
    return 0;
  return 1;
}

static void scope_free(struct csds_scope *sc) {
  xds_free(sc->organization);
  xds_free(sc->tenant);
  xds_free(sc->namespace);
  memset(sc, 0, sizeof(*sc));
}

/* What a CSDS caller may list: the identity its certificate proves, if
 * any (copied: the job may outlive the caller's stream). */
static int scope_copy(struct csds_scope *sc, const struct stream *caller) {
  const struct proxy_id *v = &caller->verified;

  memset(sc, 0, sizeof(*sc));
  if (!caller->has_verified)
    return 0;
  sc->limited = 1;
  sc->organization = v->organization ? xds_strdup(v->organization) : NULL;
  sc->tenant = v->tenant ? xds_strdup(v->tenant) : NULL;
  sc->namespace = v->namespace ? xds_strdup(v->namespace) : NULL;
  if ((v->organization && !sc->organization) || (v->tenant && !sc->tenant) ||
      (v->namespace && !sc->namespace)) {
    scope_free(sc);
    return XDS_ENOMEM;
  }
  return 0;
}

/* Whether proxy stream px is one a CSDS caller of scope v may list: with
 * mutual TLS, proxies of the organization its certificate names (and of
 * its tenant, when the certificate names one; of its namespace, when an
 * Istio certificate names one); otherwise every proxy. */
static int csds_in_scope(const struct csds_scope *v, const struct stream *px) {
  const struct proxy_id *p = ads_stream_proxy(px->ads);

  if (!v->limited)
    return 1;
  if (p == NULL || p->organization == NULL || v->organization == NULL ||
      strcmp(p->organization, v->organization) != 0)
    return 0;
  if (v->namespace != NULL &&
      (p->namespace == NULL || strcmp(p->namespace, v->namespace) != 0))
    return 0;
  return v->tenant == NULL ||
         (p->tenant != NULL && strcmp(p->tenant, v->tenant) == 0);
}

static void job_unref(struct job *job) {
  if (job == NULL || atomic_fetch_sub(&job->refs, 1) != 1)
    return;
  for (int i = 0; i < job->nparts; i++) {
    xds_buf_cleanup(&job->parts[i].text);
    xds_free(job->parts[i].ents);
  }
  query_free(&job->q);
  if (job->req != NULL)
    envoy__service__status__v3__client_status_request__free_unpacked(job->req,
                                                                     NULL);
  scope_free(&job->scope);
  xds_free(job);
}

/* A job with one part per loop, each holding at most part_max bytes; the
 * caller holds the one reference until job_post. */
static struct job *job_new(struct xds_server *s, enum job_kind kind,
                           size_t part_max) {
  struct job *job =
      xds_calloc(1, sizeof(*job) + (size_t)s->n_loops * sizeof(job->parts[0]));

  if (job == NULL)
    return NULL;
  job->kind = kind;
  job->server = s;
  job->nparts = s->n_loops;
  atomic_init(&job->refs, 1);
  atomic_init(&job->pending, s->n_loops);
  atomic_init(&job->cancelled, 0);
  for (int i = 0; i < job->nparts; i++) {
    job->parts[i].job = job;
    xds_buf_init(&job->parts[i].text, part_max);
  }
  return job;
}

/* A part is over (done, failed, or given up): drops its reference; the
 * last part tells the asker. self: the calling loop, or NULL. */
static void part_done(struct job_part *p, struct loop *self) {
  struct job *job = p->job;
  struct xds_server *s = job->server;

  if (atomic_fetch_sub(&job->pending, 1) == 1) {
    if (job->kind == JOB_STATUS) {
      pthread_mutex_lock(&s->status_lock);
      pthread_cond_broadcast(&s->status_cond);
      pthread_mutex_unlock(&s->status_lock);
    } else {
      atomic_store(&job->owner->csds_ready, 1);
      if (job->owner != self)
        wake_loop(job->owner);
    }
  }
  job_unref(job);
}

/* Hands one part of job to every loop and wakes them (self, the calling
 * loop or NULL, runs its part at the end of this turn). A loop that has
 * ended (its streams are gone) finishes its part at once, empty. */
static void job_post(struct xds_server *s, struct job *job, struct loop *self) {
  atomic_fetch_add(&job->refs, job->nparts);
  for (int i = 0; i < job->nparts; i++) {
    struct loop *l = &s->loops[i];
    struct job_part *p = &job->parts[i];
    int closed;

    pthread_mutex_lock(&l->jobs_lock);
    closed = l->jobs_closed;
    if (!closed) {
      p->next = NULL;
      *l->jobs_in_tail = p;
      l->jobs_in_tail = &p->next;
    }
    pthread_mutex_unlock(&l->jobs_lock);
    if (closed) {
      part_done(p, self); /* an ended loop has no streams: an empty part */
    } else if (l != self) {
      wake_loop(l);
    }
  }
}

/* One stream's status as JSON text, with its stream_id and the index of
 * the loop that serves it ("loop"): the tree is made
 * and freed here, so no tree of a whole page is ever held. */
static int status_text(const struct stream *st, struct xds_buf *out) {
  json_t *one = ads_stream_status(st->ads);
  char *text = NULL;
  int rc = XDS_ENOMEM;

  if (one != NULL &&
      json_object_set_new(one, "stream_id",
                          json_integer((json_int_t)st->serial)) == 0 &&
      json_object_set_new(one, "loop", json_integer(st->loop->index)) == 0)
    text = json_dumps(one, JSON_INDENT(2));
  json_decref(one);
  if (text != NULL && xds_buf_puts(out, text) == 0)
    rc = 0;
  free(text); /* checksrc: allow alloc: from json_dumps() */
  return rc;
}

/* Adds stream st to part p if the job selects it. Returns 0 or a negative
 * XDS_E* (out of memory, or the part is full). */
static int part_visit(struct job_part *p, const struct stream *st) {
  struct job *job = p->job;
  size_t off = p->text.len;
  int rc;

  if (job->kind == JOB_STATUS) {
    if (!query_match(&job->q, st))
      return 0;
    rc = status_text(st, &p->text);
  } else {
    if (st->kind != STREAM_XDS || st->closing ||
        !csds_in_scope(&job->scope, st))
      return 0;
    rc = ads_stream_csds_match(st->ads, job->req);
    if (rc <= 0)
      return rc;
    rc = ads_stream_csds_append(st->ads, !job->req->exclude_resource_contents,
                                &p->text);
  }
  if (rc < 0)
    return rc;
  if (p->n_ents == p->cap_ents) {
    size_t cap = p->cap_ents > 0 ? p->cap_ents * 2 : 64;
    struct job_entry *e = xds_realloc(p->ents, cap * sizeof(*e));
    if (e == NULL)
      return XDS_ENOMEM;
    p->ents = e;
    p->cap_ents = cap;
  }
  p->ents[p->n_ents].serial = st->serial;
  p->ents[p->n_ents].off = off;
  p->ents[p->n_ents].len = p->text.len - off;
  p->n_ents++;
  return 0;
}

/* Continues part p over l's streams, in stream id order from where it
 * stopped (ids only grow along the list, so streams that come or go
 * meanwhile are handled), until `until` (at least one stream). Returns 1
 * when the part is over, 0 when more is to do. */
static int part_continue(struct loop *l, struct job_part *p,
                         gpr_timespec until) {
  const struct job *job = p->job;
  struct stream *st;

  /* Where the part starts: after the page's `after` id (streams are in id
   * order along the list); then it keeps its place by pointer, so a turn
   * costs its slice and not a walk from the start. */
  if (!p->started) {
    for (st = l->streams; st != NULL && st->serial <= p->cursor;)
      st = st->next;
    p->at = st;
    p->started = 1;
  }
  for (st = p->at; st != NULL; st = st->next) {
    /* A page of `limit` needs at most `limit` from each loop. */
    if (job->kind == JOB_STATUS && job->q.limit > 0 &&
        p->n_ents >= job->q.limit)
      break;
    p->cursor = st->serial;
    p->rc = part_visit(p, st);
    if (p->rc < 0)
      return 1;
    if (st->next != NULL &&
        gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) > 0) {
      p->at = st->next;
      return 0;
    }
  }
  return 1;
}

/* One loop turn's share of the jobs' parts: at most
 * XDS_SERVER_STATUS_SLICE_MS in all. Loop thread. */
static void jobs_run(struct loop *l) {
  struct job_part **pp, *p;
  gpr_timespec until;

  pthread_mutex_lock(&l->jobs_lock);
  if (l->jobs_in != NULL) {
    for (pp = &l->jobs; *pp != NULL;)
      pp = &(*pp)->next;
    *pp = l->jobs_in;
    l->jobs_in = NULL;
    l->jobs_in_tail = &l->jobs_in;
  }
  pthread_mutex_unlock(&l->jobs_lock);
  if (l->jobs == NULL)
    return;
  until = gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC),
      gpr_time_from_millis(XDS_SERVER_STATUS_SLICE_MS, GPR_TIMESPAN));
  for (pp = &l->jobs; (p = *pp) != NULL;) {
    if (atomic_load(&p->job->cancelled) || part_continue(l, p, until)) {
      *pp = p->next;
      part_done(p, l);
    } else {
      pp = &p->next;
    }
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) > 0)
      break;
  }
}

/* The loop ends (its streams are gone) or never ran: every part it holds
 * finishes at once with what it has, and every part posted from now on
 * finishes at once, empty. */
static void jobs_close(struct loop *l) {
  struct job_part *lists[2], *p, *next;

  pthread_mutex_lock(&l->jobs_lock);
  l->jobs_closed = 1;
  lists[0] = l->jobs_in;
  l->jobs_in = NULL;
  l->jobs_in_tail = &l->jobs_in;
  pthread_mutex_unlock(&l->jobs_lock);
  lists[1] = l->jobs;
  l->jobs = NULL;
  for (int i = 0; i < 2; i++)
    for (p = lists[i]; p != NULL; p = next) {
      next = p->next;
      part_done(p, l);
    }
}

/* Walks the entries of every part of a finished job in stream id order,
 * calling add for each, at most limit of them (0: all). Returns 0, or the
 * first error of add. */
static int job_merge(const struct job *job, size_t limit,
                     int (*add)(void *arg, const struct job_part *p,
                                const struct job_entry *e),
                     void *arg) {
  size_t at[XDS_SERVER_THREADS_MAX] = {0}, taken = 0;

  for (;;) {
    int best = -1, rc;
    for (int i = 0; i < job->nparts; i++) {
      const struct job_part *p = &job->parts[i];
      if (at[i] < p->n_ents &&
          (best < 0 ||
           p->ents[at[i]].serial < job->parts[best].ents[at[best]].serial))
        best = i;
    }
    if (best < 0 || (limit > 0 && taken >= limit))
      return 0;
    rc = add(arg, &job->parts[best], &job->parts[best].ents[at[best]]);
    if (rc < 0)
      return rc;
    at[best]++;
    taken++;
  }
}

/* The first error of a finished job's parts, or 0. */
static int job_error(const struct job *job) {
  for (int i = 0; i < job->nparts; i++)
    if (job->parts[i].rc < 0)
      return job->parts[i].rc;
  return 0;
}

/* Drops the CSDS answer in progress of st (which ends, or was answered):
 * the loops give up what is left of their parts. Loop thread. */
static void csds_drop(struct stream *st) {
  struct loop *l = st->loop;

  if (st->csds == NULL)
    return;
  for (struct stream **pp = &l->csds_pending; *pp != NULL;
       pp = &(*pp)->csds_next)
    if (*pp == st) {
      *pp = st->csds_next;
      break;
    }
  atomic_store(&st->csds->cancelled, 1);
  job_unref(st->csds);
  st->csds = NULL;
}

/* Appends one proxy's ClientConfig field to the answer. */
static int csds_add(void *arg, const struct job_part *p,
                    const struct job_entry *e) {
  struct xds_buf *out = arg;

  return xds_buf_append(out, p->text.data + e->off, e->len);
}

/* Sends the answer of a CSDS stream once every loop's part is in (or ends
 * the stream when it could not be built): the parts' ClientConfig fields
 * in stream id order, concatenated (a repeated field). Loop thread. */
static void csds_finish(struct stream *st) {
  struct job *job = st->csds;
  struct xds_buf out;
  grpc_slice slice;
  size_t count = 0;
  grpc_op op;
  int rc, loops;

  xds_buf_init(&out, XDS_MESSAGE_MAX);
  rc = job_error(job);
  if (rc == 0)
    rc = job_merge(job, 0, csds_add, &out);
  for (int i = 0; i < job->nparts; i++)
    count += job->parts[i].n_ents;
  loops = job->nparts;
  csds_drop(st); /* frees job */
  if (rc < 0) {
    xds_buf_cleanup(&out);
    XDS_LOGW("CSDS from %s: cannot answer: %s", ads_stream_peer(st->ads),
             rc == XDS_ETOOBIG ? "the response is over the 4 MiB limit"
                               : xds_strerror(rc));
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 rc == XDS_ETOOBIG
                     ? "the response is over the 4 MiB message limit: narrow "
                       "it with node_matchers or exclude_resource_contents"
                     : "out of memory");
    return;
  }
  XDS_LOGD("CSDS from %s: %zu proxies, %zu bytes, from %d loops",
           ads_stream_peer(st->ads), count, out.len, loops);
  slice = grpc_slice_from_copied_buffer(out.data, out.len);
  xds_buf_cleanup(&out);
  st->send_buf = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = st->send_buf;
  if (stream_batch(st, &op, 1, &st->op_send) < 0) {
    grpc_byte_buffer_destroy(st->send_buf);
    st->send_buf = NULL;
    st->closing = 1;
    grpc_call_cancel(st->call, NULL);
    return;
  }
  st->sending = 1;
  st->push_since = gpr_time_0(GPR_CLOCK_MONOTONIC);
}

/* Loop thread: sends the CSDS answers whose every part is in. */
static void csds_collect(struct loop *l) {
  struct stream *st, *next;

  if (!atomic_exchange(&l->csds_ready, 0))
    return;
  for (st = l->csds_pending; st != NULL; st = next) {
    next = st->csds_next;
    if (st->closing)
      csds_drop(st);
    else if (atomic_load(&st->csds->pending) == 0)
      csds_finish(st);
  }
}

/* The stream's proxy for a log line: its node id once known. */
static const char *node_or_unknown(struct stream *st) {
  return ads_stream_node_id(st->ads) != NULL ? ads_stream_log_name(st->ads)
                                             : "unknown";
}

/*
 * Takes the message in st->recv_buf as one slice (*out, a new reference;
 * recv_buf is released). A message of one uncompressed slice (nearly every
 * request) is read in place, one of several slices is copied once, and a
 * gzip-compressed one is inflated here into at most XDS_MESSAGE_MAX bytes
 * (the server turns gRPC's own inflating off, see xds_server_new). Returns
 * 0, or -1 with the stream closed: RESOURCE_EXHAUSTED when the request
 * inflates past the limit, INVALID_ARGUMENT when its gzip is corrupt.
 */
static int take_message(struct stream *st, const char *what, grpc_slice *out) {
  grpc_byte_buffer *bb = st->recv_buf;
  grpc_slice_buffer *sb = &bb->data.raw.slice_buffer;
  struct xds_buf packed, plain;
  struct xds_err err;
  int rc = 0;

  st->recv_buf = NULL;
  if (bb->type == GRPC_BB_RAW &&
      bb->data.raw.compression == GRPC_COMPRESS_NONE && sb->count == 1) {
    *out = grpc_slice_ref(sb->slices[0]);
    grpc_byte_buffer_destroy(bb);
    return 0;
  }
  if (bb->type == GRPC_BB_RAW &&
      bb->data.raw.compression == GRPC_COMPRESS_NONE) {
    *out = grpc_slice_malloc(sb->length);
    for (size_t i = 0, at = 0; i < sb->count; i++) {
      memcpy(GRPC_SLICE_START_PTR(*out) + at,
             GRPC_SLICE_START_PTR(sb->slices[i]),
             GRPC_SLICE_LENGTH(sb->slices[i]));
      at += GRPC_SLICE_LENGTH(sb->slices[i]);
    }
    grpc_byte_buffer_destroy(bb);
    return 0;
  }
  if (bb->type != GRPC_BB_RAW ||
      bb->data.raw.compression != GRPC_COMPRESS_GZIP) {
    /* gRPC refuses every other algorithm before the message comes here. */
    grpc_byte_buffer_destroy(bb);
    XDS_LOGW("%s from %s (node %s): compressed with an algorithm other "
             "than gzip; closing",
             what, ads_stream_peer(st->ads), node_or_unknown(st));
    stream_close(st, GRPC_STATUS_UNIMPLEMENTED,
                 "only gzip-compressed requests are accepted");
    return -1;
  }
  /* gRPC bounds the compressed message (XDS_MESSAGE_MAX); the copy is
   * needed because the inflater reads one contiguous buffer. */
  xds_buf_init(&packed, XDS_MESSAGE_MAX);
  xds_buf_init(&plain, XDS_MESSAGE_MAX);
  for (size_t i = 0; i < sb->count && rc == 0; i++)
    rc = xds_buf_append(&packed, GRPC_SLICE_START_PTR(sb->slices[i]),
                        GRPC_SLICE_LENGTH(sb->slices[i]));
  grpc_byte_buffer_destroy(bb);
  if (rc == 0)
    rc = unpack_gunzip(packed.data, packed.len, &plain, &err);
  else
    xds_err_set(&err, rc, "out of memory");
  xds_buf_cleanup(&packed);
  if (rc == 0) {
    size_t len;
    char *p = xds_buf_steal(&plain, &len);

    /* The slice owns the inflated bytes from here on. */
    *out = p != NULL ? grpc_slice_new(p, len, xds_free) : grpc_empty_slice();
    return 0;
  }
  xds_buf_cleanup(&plain);
  if (rc == XDS_ETOOBIG) {
    XDS_LOGW("%s from %s (node %s): the gzip-compressed request inflates "
             "past %d bytes; closing",
             what, ads_stream_peer(st->ads), node_or_unknown(st),
             XDS_MESSAGE_MAX);
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 "the request inflates past the 4 MiB limit");
  } else if (rc == XDS_EPARSE) {
    XDS_LOGW("%s from %s (node %s): the gzip-compressed request is corrupt "
             "(%s); closing",
             what, ads_stream_peer(st->ads), node_or_unknown(st), err.msg);
    stream_close(st, GRPC_STATUS_INVALID_ARGUMENT,
                 "the request's gzip is corrupt");
  } else {
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  return -1;
}

/* A ClientStatusRequest on a CSDS stream: checked, then posted to every
 * loop, each of which answers for its own streams in slices. */
static void csds_recv(struct loop *l, struct stream *st) {
  struct xds_server *s = l->server;
  Envoy__Service__Status__V3__ClientStatusRequest *req;
  struct job *job;
  const char *msg = "", *field = "";
  grpc_slice slice;
  char why[200];
  int rc;

  if (take_message(st, "CSDS", &slice) < 0)
    return;
  /* protobuf-c unpacks nested messages recursively, without a depth
   * limit: matchers nested deeply would exhaust this thread's stack. */
  rc = wirecheck_strings(
      &envoy__service__status__v3__client_status_request__descriptor,
      GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice), &msg, &field);
  if (rc == XDS_EINVAL || rc == XDS_ETOOBIG) {
    grpc_slice_unref(slice);
    if (rc == XDS_EINVAL)
      snprintf(why, sizeof(why), "field %s.%s of the request holds a NUL byte",
               msg, field);
    else
      snprintf(why, sizeof(why), "the request nests messages deeper than %d",
               WIRECHECK_DEPTH_MAX);
    XDS_LOGW("CSDS from %s: %s; closing", ads_stream_peer(st->ads), why);
    stream_close(st, GRPC_STATUS_INVALID_ARGUMENT, why);
    return;
  }
  req = envoy__service__status__v3__client_status_request__unpack(
      NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
  grpc_slice_unref(slice);
  if (req == NULL) {
    XDS_LOGW("CSDS from %s: malformed ClientStatusRequest; closing",
             ads_stream_peer(st->ads));
    stream_close(st, GRPC_STATUS_INVALID_ARGUMENT,
                 "malformed ClientStatusRequest");
    return;
  }
  if (ads_csds_check_request(req, why, sizeof(why)) < 0) {
    XDS_LOGW("CSDS from %s: %s", ads_stream_peer(st->ads), why);
    envoy__service__status__v3__client_status_request__free_unpacked(req, NULL);
    stream_close(st, GRPC_STATUS_INVALID_ARGUMENT, why);
    return;
  }
  job = job_new(s, JOB_CSDS, XDS_MESSAGE_MAX);
  if (job == NULL) {
    envoy__service__status__v3__client_status_request__free_unpacked(req, NULL);
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  job->req = req;
  job->owner = l;
  if (scope_copy(&job->scope, st) < 0) {
    job_unref(job);
    stream_close(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  st->csds = job;
  st->csds_next = l->csds_pending;
  l->csds_pending = st;
  job_post(s, job, l);
}

static void on_recv(struct loop *l, struct stream *st, int ok) {
  struct xds_server *s = l->server;
  struct ads_counts before, after;
  int rc, had_node;
  struct ads_close close;
  grpc_slice slice;

  XDS_ASSERT(st->recv_armed);
  st->recv_armed = 0;
  if (!ok || st->recv_buf == NULL) {
    /* The client finished sending (or the call died): end it cleanly. */
    if (!st->closing && st->kind == STREAM_CSDS_UNARY)
      stream_close(st, GRPC_STATUS_INVALID_ARGUMENT,
                   "FetchClientStatus without a request");
    else if (!st->closing)
      stream_close(st, GRPC_STATUS_OK, "");
    return;
  }
  if (st->kind != STREAM_XDS) {
    csds_recv(l, st);
    return;
  }
  if (l->current == NULL) {
    stream_close(st, GRPC_STATUS_UNAVAILABLE, "no configuration loaded yet");
    return;
  }
  if (take_message(st, "stream", &slice) < 0)
    return;
  had_node = ads_stream_node_id(st->ads) != NULL;
  ads_stream_counts(st->ads, &before);
  /* The limits, NUL bytes, nesting and malformed requests are refused
   * (and logged) by the core; an ACK is read without unpacking. */
  rc =
      ads_stream_on_request_bytes(st->ads, GRPC_SLICE_START_PTR(slice),
                                  GRPC_SLICE_LENGTH(slice), l->current, &close);
  grpc_slice_unref(slice);
  if (!had_node && ads_stream_node_id(st->ads) != NULL) {
    atomic_fetch_add(&s->n_proxies_now, 1);
    atomic_fetch_add(&s->stats->proxies, 1);
    st->counted_proxy = 1;
  }
  ads_stream_counts(st->ads, &after);
  for (int i = 0; i < ADS_T_N; i++) {
    atomic_fetch_add(&s->stats->acks[stats_type(i)],
                     after.acks[i] - before.acks[i]);
    atomic_fetch_add(&s->stats->nacks[stats_type(i)],
                     after.nacks[i] - before.nacks[i]);
  }
  stream_account(st, &after);
  if (rc < 0) {
    stream_close(st, (grpc_status_code)close.code, close.msg);
    return;
  }
  if (!st->closing)
    stream_arm_recv(st);
  stream_pump(st);
}

static void on_send(struct stream *st, int ok) {
  struct xds_server *s = st->server;

  XDS_ASSERT(st->sending && st->send_buf != NULL);
  st->sending = 0;
  if (ok && st->push_since.tv_sec != 0)
    stats_observe(&s->stats->push_latency,
                  gpr_timespec_to_micros(gpr_time_sub(
                      gpr_now(GPR_CLOCK_MONOTONIC), st->push_since)) /
                      1e6);
  grpc_byte_buffer_destroy(st->send_buf);
  st->send_buf = NULL;
  if (!ok) {
    st->closing = 1;
    return;
  }
  if (st->want_status) {
    stream_send_status(st);
    return;
  }
  if (st->kind == STREAM_CSDS_UNARY) {
    stream_close(st, GRPC_STATUS_OK, "");
    return;
  }
  if (st->kind == STREAM_CSDS) {
    stream_arm_recv(st);
    return;
  }
  stream_pump(st);
}

static void dispatch_op(struct loop *l, grpc_event ev);

/* Handles one event; a stream whose last operation just completed after
 * it was closed is freed here, so the loop never walks every stream to
 * find them. */
static void dispatch(struct loop *l, grpc_event ev) {
  struct xds_op *op = ev.tag;
  struct stream *st = NULL;

  ASSERT_LOOP_THREAD(l);
  switch (op->kind) {
  case OP_RECV:
    st = container_of(op, struct stream, op_recv);
    break;
  case OP_SEND:
    st = container_of(op, struct stream, op_send);
    break;
  case OP_CLOSED:
    st = container_of(op, struct stream, op_closed);
    break;
  case OP_STATUS:
    st = container_of(op, struct stream, op_status);
    break;
  default:
    break;
  }
  /* Completions come on the queue of the loop that started the batch. */
  XDS_ASSERT(st == NULL || st->loop == l);
  dispatch_op(l, ev);
  if (st != NULL && st->closing && st->outstanding == 0)
    stream_free(l, st);
}

static void dispatch_op(struct loop *l, grpc_event ev) {
  struct xds_op *op = ev.tag;
  struct stream *st;

  switch (op->kind) {
  case OP_ACCEPT:
    on_accept(l, container_of(op, struct accept_slot, op), ev.success);
    return;
  case OP_SHUTDOWN:
    atomic_store(&l->server->shutdown_done, 1);
    return;
  case OP_WAKE:
    wake_arm(l); /* after_events, next, looks at what the waker posted */
    return;
  case OP_RECV:
    st = container_of(op, struct stream, op_recv);
    XDS_ASSERT(st->outstanding > 0);
    st->outstanding--;
    on_recv(l, st, ev.success);
    return;
  case OP_SEND:
    st = container_of(op, struct stream, op_send);
    XDS_ASSERT(st->outstanding > 0);
    st->outstanding--;
    on_send(st, ev.success);
    return;
  case OP_CLOSED:
    st = container_of(op, struct stream, op_closed);
    XDS_ASSERT(st->outstanding > 0 && st->close_posted && !st->finished);
    st->outstanding--;
    st->finished = 1;
    st->closing = 1;
    /* Pending receives and sends complete once the call is cancelled. */
    if (!st->status_started)
      grpc_call_cancel(st->call, NULL);
    return;
  case OP_STATUS:
    st = container_of(op, struct stream, op_status);
    XDS_ASSERT(st->outstanding > 0 && st->status_started);
    st->outstanding--;
    grpc_slice_unref(st->status_slice);
    return;
  }
}

/* Appends one proxy's status to a page being merged. */
struct page_merge {
  struct xds_buf text;
  size_t count;
  uint64_t last;
};

static int page_add(void *arg, const struct job_part *p,
                    const struct job_entry *e) {
  struct page_merge *m = arg;

  if (xds_buf_puts(&m->text, m->count > 0 ? ",\n" : "\n") < 0 ||
      xds_buf_append(&m->text, p->text.data + e->off, e->len) < 0)
    return XDS_ENOMEM;
  m->count++;
  m->last = e->serial;
  return 0;
}

int xds_server_status_query(struct xds_server *s,
                            const struct xds_status_query *q, int timeout_ms,
                            struct xds_status_page *out) {
  struct page_merge m;
  struct timespec until;
  struct job *job;
  int rc = 0, ret;

  memset(out, 0, sizeof(*out));
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  job = job_new(s, JOB_STATUS, XDS_SERVER_STATUS_MAX_BYTES);
  if (job == NULL)
    return XDS_ENOMEM;
  if (query_copy(&job->q, q) < 0) {
    job_unref(job);
    return XDS_ENOMEM;
  }
  for (int i = 0; i < job->nparts; i++)
    job->parts[i].cursor = q->after; /* the page starts after it */
  pthread_mutex_lock(&s->status_users);
  job_post(s, job, NULL);
  pthread_mutex_lock(&s->status_lock);
  while (atomic_load(&job->pending) != 0 && rc == 0)
    rc = pthread_cond_timedwait(&s->status_cond, &s->status_lock, &until);
  pthread_mutex_unlock(&s->status_lock);
  pthread_mutex_unlock(&s->status_users);
  /* A loop that ran has returned (the server stops): its streams are
   * gone, and an empty part would read as a server without proxies. */
  if (atomic_load(&job->pending) != 0 || atomic_load(&s->loops_ended) > 0) {
    atomic_store(&job->cancelled, 1); /* the loops drop their parts */
    job_unref(job);
    return XDS_ETOOBIG;
  }
  ret = job_error(job) < 0 ? XDS_ENOMEM : 0;
  memset(&m, 0, sizeof(m));
  xds_buf_init(&m.text, XDS_SERVER_STATUS_MAX_BYTES);
  if (ret == 0 && (xds_buf_putc(&m.text, '[') < 0 ||
                   job_merge(job, job->q.limit, page_add, &m) < 0 ||
                   xds_buf_puts(&m.text, "\n]\n") < 0))
    ret = XDS_ENOMEM;
  job_unref(job);
  if (ret == 0) {
    out->count = m.count;
    out->last_id = m.last;
    out->json = xds_buf_steal(&m.text, &out->len);
    if (out->json == NULL)
      ret = XDS_ENOMEM;
  }
  xds_buf_cleanup(&m.text);
  return ret;
}

void xds_server_counts(struct xds_server *s, long *streams, long *proxies) {
  *streams = atomic_load(&s->n_streams_now);
  *proxies = atomic_load(&s->n_proxies_now);
}

/* Milliseconds of the monotonic clock. */
static long long mono_ms(void) {
  return (long long)(gpr_timespec_to_micros(gpr_now(GPR_CLOCK_MONOTONIC)) /
                     1000);
}

/* A stop: no new calls; every stream ends with UNAVAILABLE once its
 * message in flight is out, so proxies reconnect to another replica; what
 * is still open after drain_ms is cancelled. Each loop does this for its
 * own streams; the first to begin sets the deadline they all keep, and
 * loop 0 shuts the gRPC server down. */
static void begin_stop(struct loop *l) {
  struct xds_server *s = l->server;
  long long unset = 0;

  if (l->index == 0) {
    XDS_LOGI("stopping: draining %ld streams (at most %d ms)",
             atomic_load(&s->n_streams_now), s->cfg.drain_ms);
    grpc_server_shutdown_and_notify(s->server, l->cq, &s->op_shutdown);
    s->shutdown_called = 1;
  }
  l->shutting_down = 1;
  atomic_compare_exchange_strong(&s->drain_deadline_ms, &unset,
                                 mono_ms() + s->cfg.drain_ms);
  for (struct stream *st = l->streams; st != NULL; st = st->next)
    stream_close(st, GRPC_STATUS_UNAVAILABLE,
                 "wasmxds is shutting down; reconnect");
}

/* After-events: adopt a newly published snapshot, run the loop's share
 * of status pages and CSDS answers, free finished streams. */
static void after_events(struct loop *l) {
  struct xds_server *s = l->server;
  struct snapshot *snap = NULL;
  gpr_timespec at = gpr_time_0(GPR_CLOCK_MONOTONIC);
  struct stream *st;

  ASSERT_LOOP_THREAD(l);
  if (atomic_exchange(&l->publish_pending, 0)) {
    pthread_mutex_lock(&s->publish_lock);
    if (s->published != NULL && s->published != l->current)
      snap = snapshot_ref(s->published);
    at = s->published_at;
    pthread_mutex_unlock(&s->publish_lock);
  }
  if (snap != NULL) {
    snapshot_unref(l->current);
    l->current = snap;
    l->current_at = at;
    /* Once the streams have moved and their sends of the old snapshot
     * are out, hand the freed memory back (glibc keeps it otherwise; one
     * loop does it for the process). */
    if (l->index == 0)
      l->trim_at = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                gpr_time_from_seconds(2, GPR_TIMESPAN));
    for (st = l->streams; st != NULL; st = st->next) {
      struct ads_close close;
      if (st->closing)
        continue;
      if (ads_stream_on_snapshot(st->ads, snap, &close) < 0) {
        stream_close(st, (grpc_status_code)close.code, close.msg);
        continue;
      }
      st->pushing = 1;
      stream_pump(st);
      st->pushing = 0;
    }
  }
  jobs_run(l);
  csds_collect(l);
  /* Summaries of rate-limited log lines whose window ended quietly. */
  {
    long long now = xds_ratelog_now_ms();
    if (now - l->ratelog_flushed >= 1000) {
      xds_ratelog_flush(s->ratelog, now);
      l->ratelog_flushed = now;
    }
  }
  if (l->trim_at.tv_sec != 0 &&
      gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), l->trim_at) > 0) {
    l->trim_at.tv_sec = 0;
    malloc_trim(0);
  }
}

/* One loop: its accepts, then events until the server has stopped and
 * its streams are gone. */
static void loop_run(struct loop *l) {
  struct xds_server *s = l->server;

  l->thread = pthread_self();
  for (int i = 0; i < ACCEPT_SLOTS; i++)
    if (start_accept(l, &l->slots[i]) < 0) {
      atomic_store(&s->stop, 1);
      wake_all(s);
    }
  /* The caller publishes before run, so current is set on the first
   * turn, before any request needs it. */
  wake_arm(l);
  after_events(l);
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(l->cq, loop_deadline(l), NULL);
    long long deadline;
    if (ev.type == GRPC_OP_COMPLETE)
      dispatch(l, ev);
    else if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    /* Drain whatever else is ready without sleeping, unless a snapshot
     * waits: pushes go out before more requests are read, so a client
     * that floods requests never delays other proxies' pushes by more
     * than one request. */
    while (ev.type == GRPC_OP_COMPLETE && !atomic_load(&l->publish_pending)) {
      ev = grpc_completion_queue_next(l->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC),
                                      NULL);
      if (ev.type == GRPC_OP_COMPLETE)
        dispatch(l, ev);
    }
    after_events(l);
    if (atomic_load(&s->stop) && !l->shutting_down)
      begin_stop(l);
    deadline = atomic_load(&s->drain_deadline_ms);
    if (l->shutting_down && !l->cancelled_all && mono_ms() > deadline) {
      /* Loop 0 shut the server down, so it cancels every call; the other
       * loops wait for those cancellations to complete. */
      if (l->n_streams > 0)
        XDS_LOGW("stopping: %zu streams of loop %d still open after %d ms; "
                 "cancelling",
                 l->n_streams, l->index, s->cfg.drain_ms);
      if (l->index == 0)
        grpc_server_cancel_all_calls(s->server);
      l->cancelled_all = 1;
    }
    if (atomic_load(&s->shutdown_done) && l->streams == NULL)
      break;
    if (l->cancelled_all && mono_ms() > deadline + XDS_CANCEL_GRACE_MS) {
      if (l->n_streams > 0 || !atomic_load(&s->shutdown_done)) {
        XDS_LOGW("stopping: %zu streams of loop %d did not end within %d ms "
                 "of being cancelled (peers that do not read); exiting "
                 "without them",
                 l->n_streams, l->index, XDS_CANCEL_GRACE_MS);
        atomic_store(&s->abandoned, 1);
      }
      break;
    }
  }
  /* Counted before its parts finish, so an asker woken by them sees it. */
  atomic_fetch_add(&s->loops_ended, 1);
  jobs_close(l);
}

static void *loop_main(void *arg) {
  loop_run(arg);
  return NULL;
}

int xds_server_run(struct xds_server *s) {
  sigset_t all, old;

  grpc_server_start(s->server);
  s->started = 1;
  XDS_LOGI("serving xDS on %s (port %d, %d threads)", s->cfg.listen, s->port,
           s->n_loops);
  /* Signals go to the caller's thread, as without loop threads. */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 1; i < s->n_loops; i++) {
    struct loop *l = &s->loops[i];
    char name[16];
    l->thread_started = pthread_create(&l->handle, NULL, loop_main, l) == 0;
    if (!l->thread_started) {
      /* Its queue asks for no calls, so gRPC gives it none. */
      XDS_LOGE("cannot start serving thread %d: %s", i, strerror(errno));
      jobs_close(l);
      continue;
    }
    snprintf(name, sizeof(name), "xds-loop-%d", i % 1000);
    pthread_setname_np(l->handle, name);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  loop_run(&s->loops[0]);
  for (int i = 1; i < s->n_loops; i++)
    if (s->loops[i].thread_started)
      pthread_join(s->loops[i].handle, NULL);
  return 0;
}

/* A server the loops gave up on: kept reachable (its memory is the
 * process's until it exits, which follows at once). */
static struct xds_server *abandoned_server;

/* Frees what loop_init made (the queue must be drained and destroyed). */
static void loop_cleanup(struct loop *l) {
  snapshot_unref(l->current);
  l->current = NULL;
  xds_buf_cleanup(&l->out);
  pthread_mutex_destroy(&l->jobs_lock);
  grpc_metadata_array_destroy(&l->wake_md);
  grpc_slice_unref(l->wake_details);
  pthread_mutex_destroy(&l->wake_lock);
}

void xds_server_free(struct xds_server *s) {
  if (s == NULL)
    return;
  if (atomic_load(&s->abandoned)) {
    /* Destroying the server or draining its queues would wait for the
     * stuck transports; the process is about to exit. */
    abandoned_server = s;
    return;
  }
  for (int i = 0; i < s->n_loops; i++)
    jobs_close(&s->loops[i]);
  if (s->server != NULL && !s->shutdown_called) {
    /* Never started, or never stopped (an error elsewhere in start-up):
     * gRPC requires a shutdown before destroying a server that bound a
     * port. Nothing is in flight, so the notification comes at once. */
    gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_seconds(5, GPR_TIMESPAN));
    grpc_event ev;
    grpc_server_shutdown_and_notify(s->server, s->loops[0].cq, &s->op_shutdown);
    grpc_server_cancel_all_calls(s->server);
    do {
      ev = grpc_completion_queue_next(s->loops[0].cq, until, NULL);
    } while (ev.type == GRPC_OP_COMPLETE && ev.tag != (void *)&s->op_shutdown);
  }
  if (s->stop_thread_started) {
    atomic_store(&s->stop_thread_quit, 1);
    sem_post(&s->stop_sem);
    pthread_join(s->stop_thread, NULL);
    sem_destroy(&s->stop_sem);
    s->stop_thread_started = 0;
  }
  for (int i = 0; i < s->n_loops; i++) {
    struct loop *l = &s->loops[i];
    pthread_mutex_lock(&l->wake_lock);
    if (l->wake_call != NULL) {
      /* Its completion is drained with the queue below. */
      grpc_call_cancel(l->wake_call, NULL);
      grpc_call_unref(l->wake_call);
      l->wake_call = NULL;
    }
    pthread_mutex_unlock(&l->wake_lock);
  }
  if (s->wake_ch != NULL)
    grpc_channel_destroy(s->wake_ch);
  s->wake_ch = NULL;
  if (s->server != NULL)
    grpc_server_destroy(s->server);
  for (int i = 0; i < s->n_loops; i++) {
    struct loop *l = &s->loops[i];
    if (l->cq != NULL) {
      grpc_completion_queue_shutdown(l->cq);
      for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            l->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
          break;
      }
      grpc_completion_queue_destroy(l->cq);
    }
    loop_cleanup(l);
  }
  xds_free(s->loops);
  snapshot_unref(s->published);
  xds_ratelog_free(s->ratelog);
  pthread_mutex_destroy(&s->publish_lock);
  pthread_mutex_destroy(&s->status_lock);
  pthread_mutex_destroy(&s->status_users);
  pthread_cond_destroy(&s->status_cond);
  xds_free(s);
  grpc_shutdown();
}
