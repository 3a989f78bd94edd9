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
 * Slow clients (slowloris): the admin's own accept thread (the "gate")
 * accepts every connection and holds it until its whole request (headers,
 * and a body announced by Content-Length) has arrived, looking at it with
 * MSG_PEEK; only then is it handed to libmicrohttpd. A connection whose
 * request is not complete header_timeout_ms after accept is closed, however
 * often it sends a byte. At most max_per_ip connections per client address
 * are open at once (held or served); more are closed at accept. When the
 * gate holds max_connections requests, the oldest is closed for a new one.
 * Every response carries "Connection: close": one request per connection,
 * so a second, slow request cannot follow a fast first one.
 *
 * Bearer token: with token_file, paths under a prefix given to
 * admin_protect() need "Authorization: Bearer <token>" (compared in
 * constant time); others get 401.
 *
 * Threads: admin_new, admin_route, admin_protect, admin_start and
 * admin_free belong to the owner's thread; routes are fixed once started.
 * Handlers run on the admin's thread(s), concurrently when threads > 1, so
 * they must be thread-safe; they must not block for long. A handler that
 * may take long (waits for another thread, builds a large page) is
 * registered with admin_route_slow(): it runs on the admin's own worker
 * thread, one at a time, while its connection waits and every other
 * connection is served.
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
/* From accept to the end of the request's headers (and small body). */
#define ADMIN_DEFAULT_HEADER_TIMEOUT_MS 10000
/* Connections open at once from one client address. */
#define ADMIN_DEFAULT_MAX_PER_IP 64
/* Requests waiting for the slow-route worker; more get 503. */
#define ADMIN_MAX_SLOW_QUEUE 16
/* Bytes of a token file read; the least a token may have. */
#define ADMIN_TOKEN_MAX 4096
#define ADMIN_TOKEN_MIN 16
#define ADMIN_DEFAULT_THREADS 2
#define ADMIN_MAX_THREADS 32
#define ADMIN_MAX_ROUTES 32

struct admin;

struct admin_config {
  const char *listen;         /* "host:port" or "[v6]:port"; NULL: default */
  unsigned max_connections;   /* 0: default */
  size_t max_request_bytes;   /* 0: default */
  unsigned timeout_s;         /* 0: default */
  unsigned threads;           /* 0: default */
  unsigned header_timeout_ms; /* 0: default */
  unsigned max_per_ip;        /* 0: default */
  const char *token_file;     /* nullable: no bearer token */
  const char *flag;           /* names the listener in errors and logs;
                                 NULL: "--admin-listen" */
};

/* Binds the listen address (the socket listens from here on; requests
 * wait until admin_start) and reads token_file. Returns 0 and *out, or
 * XDS_EINVAL (bad listen address, token too short), XDS_EIO (cannot bind,
 * cannot read the token file; err says why), XDS_ENOMEM. */
int admin_new(const struct admin_config *cfg, struct admin **out,
              struct xds_err *err);

/* Registers fn for paths starting with prefix, for the comma-separated
 * methods (e.g. "GET,HEAD"; NULL: any). Borrows arg, copies the strings.
 * Returns 0, XDS_EINVAL (already started, or prefix not starting with '/'),
 * XDS_ETOOBIG (ADMIN_MAX_ROUTES), XDS_ENOMEM. */
int admin_route(struct admin *a, const char *prefix, const char *methods,
                admin_handler_fn fn, void *arg);

/* As admin_route, but fn runs on the admin's worker thread (see above).
 * The same errors. */
int admin_route_slow(struct admin *a, const char *prefix, const char *methods,
                     admin_handler_fn fn, void *arg);

/* Paths starting with prefix need the bearer token when the admin has a
 * token_file (no-op otherwise). Returns 0, XDS_EINVAL (started, bad
 * prefix), XDS_ETOOBIG (ADMIN_MAX_ROUTES), XDS_ENOMEM. */
int admin_protect(struct admin *a, const char *prefix);

/* Starts serving on the admin's own thread(s). Returns 0 or XDS_EIO. */
int admin_start(struct admin *a, struct xds_err *err);

/* The bound port (useful with port 0). */
int admin_port(const struct admin *a);

/* Stops serving (waits for the threads) and frees. NULL: no-op. */
void admin_free(struct admin *a);

/*
 * The gate's decision on buf[0..n), the first bytes a client sent (pure,
 * any thread): 1 when they hold a whole request (headers ended by a blank
 * line and the Content-Length bytes after them), or when they reach cap
 * bytes, or the body is chunked or its length unreadable (libmicrohttpd
 * then answers or refuses it); 0 to wait for more.
 */
int admin_request_ready(const char *buf, size_t n, size_t cap);

#endif
