/*
 * origin.h: a scripted HTTP server on 127.0.0.1 (libmicrohttpd, one thread
 * per connection) for the module tests: canned responses per exact path,
 * extra headers, delays, required Authorization with a challenge, and
 * request counters. It serves both as a plain HTTP origin and as a fake
 * OCI registry (the test writes the /v2/... paths itself).
 * Routes may change while it runs (a mutex guards them).
 */
#ifndef XDS_TESTS_ORIGIN_H
#define XDS_TESTS_ORIGIN_H

#include <stddef.h>

struct origin;

/* Starts on an ephemeral loopback port. Aborts on failure. */
struct origin *origin_start(void);
/* The same over TLS (libmicrohttpd with GnuTLS) with the PEM certificate
 * and key given (borrowed: keep them until origin_stop). Aborts when TLS is
 * unsupported. */
struct origin *origin_start_tls(const char *cert_pem, const char *key_pem);
int origin_port(const struct origin *o);
/* "http://127.0.0.1:PORT" ("https://..." over TLS) */
const char *origin_base(const struct origin *o);
void origin_stop(struct origin *o);

/* Sets (or replaces) the response for path; body is copied. */
void origin_set(struct origin *o, const char *path, unsigned status,
                const char *content_type, const void *body, size_t len);
/* Adds a header to path's response (set the route first). */
void origin_header(struct origin *o, const char *path, const char *name,
                   const char *value);
/* Delays path's response by ms (checked in 20 ms steps). */
void origin_delay(struct origin *o, const char *path, long ms);
/* Requests under prefix whose Authorization is not exactly authz get 401
 * with WWW-Authenticate: challenge. */
void origin_require(struct origin *o, const char *prefix, const char *authz,
                    const char *challenge);

/* Requests seen for path (NULL: all paths). */
long origin_hits(struct origin *o, const char *path);
void origin_reset_hits(struct origin *o);

#endif
