/*
 * fetch.h: one bounded HTTP(S) request over libcurl, with the destination
 * policy every module download obeys.
 *
 * Policy: redirects are followed by fetch_run itself, at most
 * max_redirects of them, and each hop's URL must pass the same rules as the
 * first before anything connects to it: http or https only, no
 * user:password (refused, so credentials only ever come from pull secrets
 * and never appear in a logged URL), and a host that is not a known
 * metadata name or a refused address literal. A request's Authorization
 * and Cookie headers go only to the first URL's origin (scheme, host,
 * port): once a redirect leaves it, they are dropped for the rest of the
 * chain. TLS peers are verified (system CA store, or ca_file) unless
 * insecure_skip_verify is set (a WasmDeployment's
 * imagePullOptions.insecureSkipVerify: neither the certificate chain nor
 * the host name is checked, for every request of that fetch, redirects
 * included); a certificate that fails verification is an XDS_EIO whose
 * message says "TLS certificate of ORIGIN not accepted" and why. The whole
 * transfer, redirects included, is bounded by timeout_ms and the body by
 * max_body. Unless allow_link_local is set, connections to link-local and
 * cloud-metadata addresses (169.254.0.0/16, 100.100.100.200, fe80::/10,
 * fd00:ec2::254, and any IPv6 address that embeds a refused IPv4 one:
 * IPv4-mapped, IPv4-compatible, SIIT, NAT64 64:ff9b::/96 and
 * 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32) are also refused at
 * connect time, after every DNS lookup, so DNS rebinding cannot reach them
 * either. Metadata host names (metadata.google.internal, metadata) are
 * refused before any lookup.
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
  int insecure_skip_verify; /* 1: TLS certificates are not verified */
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

/* Frees the body resp holds. */
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
