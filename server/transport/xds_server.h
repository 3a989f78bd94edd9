/*
 * xds_server.h: the gRPC side of wasmxds, on the gRPC C core
 * completion-queue API.
 *
 * Threads: xds_server_run() runs cfg->threads completion-queue loops: the
 * first on the calling thread, the others on threads it starts (and joins
 * before it returns). Each loop has its own completion queue, on which it
 * asks gRPC for new calls, and owns every stream gRPC hands it there for
 * the stream's whole life: its call, its ADS state and its sends (no other
 * thread touches them). Other threads talk to the loops only through
 * xds_server_publish() (a pointer swap under a mutex, then a wake of every
 * loop), xds_server_stop() (an atomic flag and a semaphore post: safe in a
 * signal handler) and xds_server_status_query() (a job each loop answers
 * for its own streams); a loop sleeps until an event, a wake or its own
 * next deadline.
 */
#ifndef XDS_SERVER_H
#define XDS_SERVER_H

#include <jansson.h>

#include "base/err.h"
#include "server/compose/stats.h"
#include "server/compose/snapshot.h"

/* How often the loop wakes when it cannot sleep until woken: while
 * stopping, or when its alarm (a never-connecting call it cancels to wake
 * itself, xds_server.c) could not be set up. */
#define XDS_SERVER_TICK_MS 20

/* Defaults of struct xds_server_config's fields left at 0. */
#define XDS_SERVER_DEFAULT_MAX_STREAMS 100000
#define XDS_SERVER_DEFAULT_KEEPALIVE_MS 60000
#define XDS_SERVER_DEFAULT_DRAIN_MS 5000
/* Most loops: --threads accepts 1 to XDS_SERVER_THREADS_MAX; the default
 * is the number of online CPUs, at most XDS_SERVER_DEFAULT_THREADS_MAX. */
#define XDS_SERVER_THREADS_MAX 256
#define XDS_SERVER_DEFAULT_THREADS_MAX 16

struct xds_server_config {
  const char *listen;        /* host:port */
  int max_streams;           /* concurrent streams in all; more are refused
                                with RESOURCE_EXHAUSTED; 0: default */
  const char *tls_cert;      /* PEM certificate chain file; NULL: plaintext */
  const char *tls_key;       /* PEM private key file, with tls_cert */
  const char *tls_client_ca; /* PEM CA bundle: require client certificates
                                signed by it; the proxy's organization and
                                tenant then come from the certificate */
  int keepalive_ms;          /* HTTP/2 ping interval to notice dead peers;
                                0: default; the peer has a third of it, at
                                least 5 s, to answer */
  int drain_ms;              /* how long a stop waits for streams to end
                                before cancelling them; 0: default */
  struct xds_stats *stats;   /* counters to update; NULL: none */
  int threads; /* completion-queue loops, each owning a share of the
                  streams; 0: xds_server_default_threads() */
};

/* The number of loops when config.threads is 0: the online CPUs
 * (sysconf), between 1 and XDS_SERVER_DEFAULT_THREADS_MAX. */
int xds_server_default_threads(void);

struct xds_server;

/* Creates a server bound to cfg->listen. Initializes gRPC. Returns 0 and a
 * new server in *out, or XDS_EIO (cannot bind; err says where) or
 * XDS_ENOMEM. */
int xds_server_new(const struct xds_server_config *cfg, struct xds_server **out,
                   struct xds_err *err);

/* The port actually bound (useful with port 0). */
int xds_server_port(const struct xds_server *s);

/* Makes snap the current snapshot (the server takes its own reference;
 * each loop takes one more when it adopts it). Any thread. Every loop is
 * woken and moves its streams to it. */
void xds_server_publish(struct xds_server *s, struct snapshot *snap);

/* Asks the loops to stop: they stop accepting, each ends its streams with
 * UNAVAILABLE (after any message in flight) so proxies reconnect
 * elsewhere, cancels what remains after drain_ms, and xds_server_run
 * returns once every loop has. Async-signal-safe. */
void xds_server_stop(struct xds_server *s);

/* Serves until xds_server_stop, on the calling thread and threads-1 more
 * (started here, joined before returning). Returns 0. */
int xds_server_run(struct xds_server *s);

/* The loop's time for one slice of a status page, and the largest page. */
#define XDS_SERVER_STATUS_SLICE_MS 2
#define XDS_SERVER_STATUS_MAX_BYTES (1024u * 1024 * 1024)

/* Which proxies a status page shows; NULL strings match any. */
struct xds_status_query {
  const char *node_id;
  const char *organization;
  const char *tenant; /* the tenant fqn, "organizations/o/tenants/t" */
  uint64_t after;     /* only streams whose stream_id is larger */
  size_t limit;       /* at most this many; 0: no limit */
};

/* A status page: JSON text (xds_malloc'd, the caller frees json). */
struct xds_status_page {
  char *json;
  size_t len;
  size_t count;     /* proxies on the page */
  uint64_t last_id; /* stream_id of the last one (0: none) */
};

/*
 * The status of the connected proxies that q selects, as the text of a
 * JSON array of ads_stream_status() objects, each with its "stream_id"
 * (stream ids grow with accept; the array is in that order, so a next
 * page starts after the last one shown). Each loop turns its own streams
 * into text, one at a time, in slices of XDS_SERVER_STATUS_SLICE_MS
 * between its other work, so a large page delays no stream noticeably;
 * the calling thread merges the loops' parts in stream id order. Any
 * thread (one request at a time, others wait); waits at most timeout_ms.
 * Returns 0 with *out, XDS_ETOOBIG (a loop did not answer in time, or a
 * loop has returned: the server stops, or xds_server_run has returned) or
 * XDS_ENOMEM (also: the page would pass XDS_SERVER_STATUS_MAX_BYTES).
 */
int xds_server_status_query(struct xds_server *s,
                            const struct xds_status_query *q, int timeout_ms,
                            struct xds_status_page *out);

/* Streams open now, and streams with a known node (any thread). */
void xds_server_counts(struct xds_server *s, long *streams, long *proxies);

/* Frees a server whose run has returned (or never started). Shuts gRPC
 * down. NULL: no-op. */
void xds_server_free(struct xds_server *s);

#endif
