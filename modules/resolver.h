/*
 * resolver.h: turns the current set of WasmExtensions into modules, in the
 * background.
 *
 * The caller hands over the whole set with resolver_update() whenever the
 * catalog changes; the call only copies what it needs and returns (cache
 * lookups, never network). A small pool of worker threads then fetches
 * (oci.h, fetch.h), verifies and caches (cache.h) each extension's module,
 * with bounded concurrency (one fetch per worker), a timeout per attempt,
 * and retries with capped exponential backoff and jitter, forever: a
 * registry that comes back is noticed without a config change.
 *
 * Each extension (by fqn) has a state:
 *   PENDING  never resolved yet, first attempt not finished;
 *   READY    sha256/size/root_ids name a cached module (or, for file://,
 *            nothing to fetch: local = 1; for a direct http(s) url,
 *            direct = 1: Envoy fetches the url itself, with the pinned
 *            sha256). stale = 1 means the latest attempt failed (reason
 *            says why) and this is the last good module, kept;
 *   FAILED   no module was ever obtained; reason says why.
 * A failed pull never drops a good module. When results change (state,
 * module, staleness or reason; not the attempt count), the caller's
 * on_change(arg) runs on a worker thread (no lock held); the server should
 * then rebuild its snapshot, reading states with resolver_lookup().
 *
 * Logging: a resolution is logged (info) only when it changes the result;
 * a re-resolution that finds the same module is logged at debug level
 * only. Failures are logged (warn) when their message changes, identical
 * ones at most once per RESOLVER_LOG_REPEAT_MS.
 *
 * Pull policy: IfNotPresent resolves a tag once and keeps the answer
 * (persisted in the cache, so restarts need no network); Always re-resolves
 * when the extension's record changes and every always_interval_s seconds;
 * unspecified means Always for a floating reference (tag "latest" or none)
 * and IfNotPresent otherwise. A digest-pinned reference, or a sha256 given
 * in the resource that this same url and secret already resolved to, is
 * never re-fetched. The cache answers by (source, digest) only: a module
 * cached for another source never answers for this one, so a result never
 * depends on what else the cache holds. The source includes its trust: a
 * pull made without TLS verification or over plain http (a WasmDeployment's
 * imagePullOptions.insecureSkipVerify / plainHttp, honoured for that
 * record only) never answers for a verified pull of the same url. A
 * record with insecureSkipVerify is logged (warn) once when its resource
 * appears with the flag.
 *
 * Tenancy: a module fetched with a pull secret is private; the HTTP server
 * asks resolver_module_allowed() before serving it to a caller.
 *
 * All functions are thread-safe.
 */
#ifndef XDS_MODULES_RESOLVER_H
#define XDS_MODULES_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "modules/cache.h"
#include "modules/digest.h"
#include "store/model.h"

/* Defaults for zero fields of struct resolver_config. */
#define RESOLVER_DEFAULT_WORKERS 4
#define RESOLVER_MAX_WORKERS 64
#define RESOLVER_DEFAULT_TIMEOUT_MS 60000L /* one attempt, all requests */
#define RESOLVER_DEFAULT_BACKOFF_BASE_MS 1000L
#define RESOLVER_DEFAULT_BACKOFF_MAX_MS                                        \
  300000L /* also the retry period of                                          \
             non-transient failures */
#define RESOLVER_DEFAULT_ALWAYS_INTERVAL_S 300L
#define RESOLVER_DEFAULT_MAX_MODULE (64u * 1024 * 1024)
#define RESOLVER_MAX_HTTP_REDIRECTS 5
/* A failure identical to the last one logged for an extension is logged
 * again only after this long (then with how many were not logged). */
#define RESOLVER_LOG_REPEAT_MS 600000L

enum module_state { MODULE_PENDING = 0, MODULE_READY = 1, MODULE_FAILED = 2 };

/* What a resource's sha256 was found equal to. An oci:// module may be
 * pinned by the module's own digest (the WasmExtension reference) or by
 * the image manifest's digest (what Istio's WasmPlugin compares). */
enum module_sha_match {
  MODULE_SHA_NONE = 0,    /* no sha256 given, or not READY */
  MODULE_SHA_MODULE = 1,  /* the module's sha256 */
  MODULE_SHA_MANIFEST = 2 /* the OCI image manifest's digest */
};

/* A copy of one extension's result; release with module_info_cleanup. */
struct module_info {
  enum module_state state;
  char sha256[DIGEST_HEX_LEN + 1]; /* "" unless READY with a module */
  uint64_t size;
  char **root_ids; /* from the image, for a default root_id */
  size_t n_root_ids;
  char *reason;   /* nullable: why FAILED, PENDING or stale */
  int stale;      /* READY on the last good module; latest pull failed */
  int local;      /* file://: not fetched, Envoy reads the path */
  int direct;     /* http(s) passed to Envoy as is (http_direct) */
  int is_private; /* fetched with a pull secret */
  enum module_sha_match sha_match; /* which digest the sha256 given matched */
  uint64_t attempts; /* pulls tried since the record last changed */
  /* For the operator's page (/debug/modules): */
  char *url;         /* the extension's module URL (its source) */
  int busy;          /* a pull is running now */
  unsigned failures; /* consecutive failed pulls */
  int64_t next_ms;   /* ms until the next pull; -1: none planned */
};

/* Frees the root ids and reason m holds and zeroes it. */
void module_info_cleanup(struct module_info *m);

/* Called on a worker thread, with no lock held, after results change. */
typedef void (*resolver_change_fn)(void *arg);

struct resolver_config {
  const char *cache_dir;                  /* required: --module-cache */
  uint64_t cache_max_bytes;               /* 0: unbounded */
  const char *pull_secrets_dir;           /* nullable: --pull-secrets */
  const char *const *insecure_registries; /* NULL-terminated host[:port]
                                             reached over http; nullable */
  int allow_link_local;  /* 1: do not refuse metadata addresses */
  const char *ca_file;   /* nullable: CA bundle for https */
  int workers;           /* concurrent pulls */
  long fetch_timeout_ms; /* one attempt */
  long backoff_base_ms, backoff_max_ms;
  long always_interval_s; /* < 0: never by time */
  size_t max_module_bytes;
  int http_direct;              /* 1: an http(s) url with a sha256 is not
                                   fetched; Envoy fetches the url */
  resolver_change_fn on_change; /* nullable */
  void *on_change_arg;
};

struct resolver;

/* Opens the cache and starts the workers. Returns 0 and *out, or
 * XDS_EINVAL (no cache_dir), XDS_EIO (cache unusable, thread creation;
 * err says which) or XDS_ENOMEM. */
int resolver_new(const struct resolver_config *cfg, struct resolver **out,
                 struct xds_err *err);

/* Stops the workers (in-flight transfers are aborted) and frees. No
 * callback runs after it returns. NULL: no-op. Not from on_change. */
void resolver_free(struct resolver *r);

/* Makes exts (borrowed; copied as needed) the whole set of extensions.
 * New or changed ones are queued; removed ones are forgotten; those the
 * cache can already answer become READY before this returns. Returns 0 or
 * XDS_ENOMEM (then the previous set stays). */
int resolver_update(struct resolver *r, const struct wasm_ext *const *exts,
                    size_t n);

/* Copies the result for fqn into out. Returns 0, or XDS_ENOTFOUND (fqn is
 * not in the current set), XDS_ENOMEM. */
int resolver_lookup(struct resolver *r, const char *fqn,
                    struct module_info *out);

/* Increases whenever any result changes (including by resolver_update). */
uint64_t resolver_generation(struct resolver *r);

/* Whether the module hex may be served to a proxy of tenant (a tenant fqn,
 * nullable: unknown) in organization org (nullable). 1 when the module is
 * public (referenced by an extension without a pull secret, or cached as
 * fetched anonymously), or when an extension referencing it belongs to org
 * and its allowedIn is empty or lists tenant; 0 otherwise, and for unknown
 * modules. */
int resolver_module_allowed(struct resolver *r, const char *hex,
                            const char *org, const char *tenant);

/* How an extension's module is obtained, whatever happens later: read
 * by Envoy from its disk (file://), fetched by Envoy itself (an http(s)
 * url with a sha256 when http_direct), or fetched by the resolver. Pure;
 * the resolver and its callers (render) decide with it alike. */
enum resolver_route {
  RESOLVER_ROUTE_LOCAL = 0,
  RESOLVER_ROUTE_DIRECT = 1,
  RESOLVER_ROUTE_FETCH = 2
};
enum resolver_route resolver_route_of(const struct wasm_ext *e,
                                      int http_direct);

/* The resolver's cache (borrowed; lives until resolver_free). */
struct modcache *resolver_cache(struct resolver *r);

/* Results of module pulls (one per attempt, cache answers not counted). */
enum resolver_fetch_result {
  RESOLVER_FETCH_OK = 0,        /* fetched, verified, cached */
  RESOLVER_FETCH_NOT_FOUND = 1, /* HTTP 4xx, unknown tag or repository */
  RESOLVER_FETCH_REFUSED = 2,   /* not Wasm, digest mismatch, too large,
                                   bad reference or secret */
  RESOLVER_FETCH_ERROR = 3,     /* network, TLS, 5xx, timeout, disk */
  RESOLVER_FETCH_RESULTS = 4
};

/* Upper bounds (seconds) of the pull duration histogram. */
#define RESOLVER_FETCH_BUCKETS 8
extern const double resolver_fetch_bounds[RESOLVER_FETCH_BUCKETS];

/* Counters since resolver_new: pulls by result, and their durations
 * (buckets[RESOLVER_FETCH_BUCKETS] is above every bound). */
struct resolver_counts {
  uint64_t fetches[RESOLVER_FETCH_RESULTS];
  uint64_t buckets[RESOLVER_FETCH_BUCKETS + 1];
  uint64_t count;
  uint64_t sum_us;
};

/* Copies the counters (a consistent cut). Any thread. */
void resolver_get_counts(struct resolver *r, struct resolver_counts *out);

/* The name of a result, for metric labels ("ok", "not_found", "refused",
 * "error"). */
const char *resolver_fetch_result_name(enum resolver_fetch_result res);

#endif
