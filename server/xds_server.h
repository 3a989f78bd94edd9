/*
 * xds_server.h: the gRPC side of wasmxds, on the gRPC C core
 * completion-queue API.
 *
 * Threads: xds_server_run() runs the completion-queue loop on the calling
 * thread, which then owns the grpc_server, every call and every stream.
 * Other threads talk to it only through xds_server_publish() (a pointer
 * swap under a mutex) and xds_server_stop() (an atomic flag); the loop
 * picks both up within XDS_SERVER_TICK_MS.
 */
#ifndef XDS_SERVER_H
#define XDS_SERVER_H

#include "base/err.h"
#include "snapshot.h"

/* How long the loop sleeps in grpc_completion_queue_next when idle: the
 * longest delay before a published snapshot or a stop request is seen
 * (gRPC 1.51's C API has no alarm to wake it sooner). */
#define XDS_SERVER_TICK_MS 20

struct xds_server_config {
  const char *listen;  /* host:port */
  int max_streams;     /* concurrent streams; 0: no limit */
};

struct xds_server;

/* Creates a server bound to cfg->listen. Initializes gRPC. Returns 0 and a
 * new server in *out, or XDS_EIO (cannot bind; err says where) or
 * XDS_ENOMEM. */
int xds_server_new(const struct xds_server_config *cfg, struct xds_server **out,
                   struct xds_err *err);

/* The port actually bound (useful with port 0). */
int xds_server_port(const struct xds_server *s);

/* Makes snap the current snapshot (the server takes its own reference).
 * Any thread. Streams move to it on the loop's next tick. */
void xds_server_publish(struct xds_server *s, struct snapshot *snap);

/* Asks the loop to stop: it stops accepting, cancels every stream and
 * returns from xds_server_run. Async-signal-safe. */
void xds_server_stop(struct xds_server *s);

/* Serves until xds_server_stop. Returns 0. */
int xds_server_run(struct xds_server *s);

/* Frees a server whose run has returned (or never started). Shuts gRPC
 * down. NULL: no-op. */
void xds_server_free(struct xds_server *s);

#endif
