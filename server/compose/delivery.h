/*
 * delivery.h: how each extension's Wasm module reaches the proxies when
 * wasmxds fetches modules (issue 7): the module resolver (modules/) turns
 * urls into verified, cached bytes; this module turns its results into
 * what encode needs (struct encode_module) and serves the cache on the
 * admin HTTP server, only to callers entitled to a private module.
 *
 * Delivery, per extension:
 *   file://                  local filename, not fetched;
 *   resolved (READY)         remote code at
 *                            <base-url>/modules/sha256/<hex>.wasm with its
 *                            sha256 (and the image's first root id as the
 *                            default root_id);
 *   --module-http-direct and an http(s):// url with a sha256: that url, fetched
 *                            by Envoy itself;
 *   pending or failed        unavailable: the fail-strategy RBAC substitute,
 *                            with the resolver's reason.
 *
 * Private modules (pulled with a pull secret) get a capability URL: the
 * query carries the extension's fqn and a token, the first 32 hex digits
 * of SHA-256(secret, fqn, module digest), with the secret from
 * --module-token-secret (a file shared by all replicas, so URLs are the
 * same everywhere). Only proxies allowed to see that extension receive the
 * URL; the module route re-checks the token and that the extension
 * references the module. Without a secret, private modules are refused to
 * everyone (logged).
 *
 * Threads: delivery_update and the encode_module_fn are called by one
 * thread only, the publisher's (server/compose/publisher.h), which owns
 * the delivery; on_change runs on a resolver worker; the route runs on
 * admin threads.
 */
#ifndef XDS_DELIVERY_H
#define XDS_DELIVERY_H

#include "base/err.h"
#include "base/http_route.h"
#include "server/compose/encode.h"
#include "store/catalog.h"

struct delivery_config {
  const char *cache_dir;              /* --module-cache */
  unsigned long long cache_max_bytes; /* --module-cache-max-bytes, 0: none */
  const char *pull_secrets_dir;       /* --pull-secrets, nullable */
  const char *base_url;               /* --module-base-url, no trailing / */
  const char *token_secret_file;      /* --module-token-secret, nullable */
  const char *const *insecure_registries; /* NULL-terminated, nullable */
  int direct;                             /* --module-http-direct */
  int allow_link_local;                   /* --module-allow-link-local */
  long always_interval_s;       /* --module-always-interval, 0: default */
  const char *ca_file;          /* --module-ca-file, nullable */
  int workers;                  /* --module-pull-workers, 0: default */
  long fetch_timeout_ms;        /* --module-fetch-timeout, 0: default */
  long backoff_max_ms;          /* --module-retry-max, 0: default */
  size_t max_module_bytes;      /* --module-max-bytes, 0: default */
  void (*on_change)(void *arg); /* results changed (a worker thread) */
  void *on_change_arg;
};

struct delivery;

/* Opens the module cache and starts the resolver's workers. Returns 0,
 * XDS_EIO/XDS_EINVAL (err names the flag and the reason), XDS_ENOMEM. */
int delivery_new(const struct delivery_config *cfg, struct delivery **out,
                 struct xds_err *err);
/* Stops the workers; no callback runs after it returns. NULL: no-op. */
void delivery_free(struct delivery *d);

/* Makes cat (a reference is taken) the set of extensions to resolve. */
int delivery_update(struct delivery *d, struct catalog *cat);

/* Number of extensions of the current set whose module is still being
 * resolved (not ready and not failed yet); file:// ones never are. For a
 * one-shot command (render) that waits for the fetches. Returns the count
 * or XDS_ENOMEM. */
long delivery_pending(struct delivery *d);
/* The resolver's result for extension fqn (resolver_lookup), for the
 * operator's pages. Any thread. Returns 0, XDS_ENOTFOUND, XDS_ENOMEM. */
struct module_info;
int delivery_lookup(struct delivery *d, const char *fqn,
                    struct module_info *out);

/*
 * An encode_module_fn for a one-shot command that fetches nothing (render
 * without --fetch-modules); ctx is the const struct delivery_config the
 * server would run with. It decides as the server's resolver does
 * (resolver_route_of): file:// is local, an http(s) url with a sha256
 * under --module-http-direct is fetched by Envoy from that url; every
 * other module, which the server would fetch and serve from its own URL,
 * is unavailable with reason DELIVERY_NOT_FETCHED (not a guess at what
 * the fetch would give).
 */
#define DELIVERY_NOT_FETCHED "not fetched by render; pass --fetch-modules"
int delivery_module_unfetched(void *ctx, const struct wasm_ext *e,
                              struct encode_module *out);

/* Appends the module metrics in the Prometheus text format to out:
 * wasmxds_module_fetches_total{result}, wasmxds_module_fetch_seconds,
 * wasmxds_module_cache_bytes and wasmxds_module_cache_entries. Any
 * thread. Returns 0, XDS_ENOMEM or XDS_ETOOBIG. */
struct xds_buf;
int delivery_metrics(struct delivery *d, struct xds_buf *out);

/* An encode_module_fn (ctx is the struct delivery). */
int delivery_module_of(void *ctx, const struct wasm_ext *e,
                       struct encode_module *out);

/* The GET/HEAD handler of DELIVERY_ROUTE_PREFIX (/modules/sha256/<hex>.wasm,
 * base/http_route.h); arg is the struct delivery. Runs on an admin thread. */
#define DELIVERY_ROUTE_PREFIX "/modules/sha256/"
int delivery_handle(void *arg, const struct admin_req *req,
                    struct admin_resp *resp);

#endif
