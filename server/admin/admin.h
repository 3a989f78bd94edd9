/*
 * admin.h: the admin HTTP server (libmicrohttpd), on its own thread(s).
 *
 * Other modules add endpoints with a route table: admin_route() registers a
 * path prefix, the methods it takes and a handler; the longest matching
 * prefix wins; no match is 404, a method not listed is 405. Handlers fill a
 * plain struct admin_resp (a copied body or a file descriptor, status,
 * content type, a few headers), so a module that serves HTTP needs only
 * this header, not the server's code or libmicrohttpd's.
 *
 * Limits (set at admin_new): concurrent connections, bytes per request
 * (request line, headers and body together; more is refused with 413 or
 * libmicrohttpd's own 431), and an idle timeout per connection.
 *
 * Threads: admin_new, admin_route, admin_start and admin_free belong to the
 * owner's thread; routes are fixed once started. Handlers run on the
 * admin's thread(s), concurrently when threads > 1, so they must be
 * thread-safe; they must not block for long.
 */
#ifndef XDS_SERVER_ADMIN_H
#define XDS_SERVER_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"
#include "base/http_route.h"

#define ADMIN_DEFAULT_LISTEN "127.0.0.1:18001"
/* Connections served at once; more wait in the kernel's backlog. */
#define ADMIN_DEFAULT_MAX_CONNECTIONS 1024
/* Bytes of one request (line + headers + body): admin requests are small. */
#define ADMIN_DEFAULT_MAX_REQUEST (32u * 1024)
/* A connection idle this long is closed. */
#define ADMIN_DEFAULT_TIMEOUT_S 30
#define ADMIN_DEFAULT_THREADS 2
#define ADMIN_MAX_THREADS 32
#define ADMIN_MAX_ROUTES 32

struct admin;

struct admin_config {
  const char *listen;       /* "host:port" or "[v6]:port"; NULL: default */
  unsigned max_connections; /* 0: default */
  size_t max_request_bytes; /* 0: default */
  unsigned timeout_s;       /* 0: default */
  unsigned threads;         /* 0: default */
};

/* Binds the listen address (the socket listens from here on; requests
 * wait until admin_start). Returns 0 and *out, or XDS_EINVAL (bad listen
 * address), XDS_EIO (cannot bind; err says why), XDS_ENOMEM. */
int admin_new(const struct admin_config *cfg, struct admin **out,
              struct xds_err *err);

/* Registers fn for paths starting with prefix, for the comma-separated
 * methods (e.g. "GET,HEAD"; NULL: any). Borrows arg, copies the strings.
 * Returns 0, XDS_EINVAL (already started, or prefix not starting with '/'),
 * XDS_ETOOBIG (ADMIN_MAX_ROUTES), XDS_ENOMEM. */
int admin_route(struct admin *a, const char *prefix, const char *methods,
                admin_handler_fn fn, void *arg);

/* Starts serving on the admin's own thread(s). Returns 0 or XDS_EIO. */
int admin_start(struct admin *a, struct xds_err *err);

/* The bound port (useful with port 0). */
int admin_port(const struct admin *a);

/* Stops serving (waits for the threads) and frees. NULL: no-op. */
void admin_free(struct admin *a);

#endif
