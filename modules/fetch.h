/*
 * fetch.h: one bounded HTTP(S) request over libcurl, with the destination
 * policy every module download obeys.
 *
 * Policy: redirects only to http/https and at most max_redirects of them;
 * TLS peers verified (system CA store, or ca_file); the whole transfer
 * bounded by timeout_ms and the body by max_body; and, unless
 * allow_link_local is set, connections to link-local and cloud-metadata
 * addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200,
 * and those inside IPv4-mapped IPv6) are refused at connect time, for the
 * first request and every redirect alike, and host names known to be
 * metadata services (metadata.google.internal, metadata) are refused before
 * any lookup. URLs carrying user:password are refused, so credentials can
 * only come from pull secrets and never appear in a logged URL.
 *
 * Any thread; each call uses its own curl handle. fetch_global_init() must
 * have run once before (resolver_new does it).
 */
#ifndef XDS_MODULES_FETCH_H
#define XDS_MODULES_FETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/err.h"

/* Longest response header value kept (WWW-Authenticate, digests...). */
#define FETCH_MAX_HEADER 2048

struct fetch_policy {
  long timeout_ms;          /* whole request including redirects; 0: 30 s */
  long connect_timeout_ms;  /* 0: 10 s */
  int max_redirects;        /* 0: do not follow */
  int allow_link_local;     /* 1: skip the link-local/metadata refusal */
  const char *ca_file;      /* nullable: CA bundle instead of the system's */
  const atomic_int *cancel; /* nullable: nonzero aborts the transfer (EIO) */
};

struct fetch_req {
  const char *url;
  int head;                   /* 1: HEAD instead of GET */
  const char *const *headers; /* NULL-terminated "Name: value", nullable */
  size_t max_body;            /* body limit (XDS_ETOOBIG past it) */
};

struct fetch_resp {
  long status; /* final HTTP status */
  struct xds_buf body;
  char content_type[256]; /* "" when absent */
  char www_authenticate[FETCH_MAX_HEADER];
  char docker_digest[128];         /* Docker-Content-Digest, "" when absent */
  char location[FETCH_MAX_HEADER]; /* Location of the final response */
  int refused;                     /* 1: a destination broke the policy */
};

/* Once per process before any fetch, any thread (idempotent, thread-safe).
 * Returns 0 or XDS_EIO. */
int fetch_global_init(void);

/* Performs req. Fills resp (whose body the caller releases with
 * fetch_resp_cleanup, also on error). An HTTP error status is not an error
 * here: the caller reads resp->status. Returns 0, or XDS_EINVAL (bad URL,
 * credentials in the URL), XDS_EPERM (destination refused by the policy),
 * XDS_ETOOBIG (body over max_body), XDS_EIO (network, TLS, timeout) or
 * XDS_ENOMEM; err says which, naming the URL without its query. */
int fetch_run(const struct fetch_policy *pol, const struct fetch_req *req,
              struct fetch_resp *resp, struct xds_err *err);

void fetch_resp_cleanup(struct fetch_resp *resp);

/* 1 when a connection to sa is allowed by the policy, else 0. */
int fetch_addr_allowed(const struct sockaddr *sa, int allow_link_local);

/* 1 when host (a name or address literal, brackets allowed) is allowed
 * before resolution, else 0. */
int fetch_host_allowed(const char *host, int allow_link_local);

/* Percent-encodes s for a query string into out (cap bytes). Returns 0 or
 * XDS_ETOOBIG. */
int fetch_query_escape(const char *s, char *out, size_t cap);

#endif
