/*
 * resolver.c: worker pool and per-extension state machine.
 *
 * Invariants, under r->lock: `entries` maps fqn -> struct entry for exactly
 * the extensions of the last resolver_update (plus entries marked removed
 * that a worker still holds); an entry is worked on by at most one worker
 * (busy); due_ms says when it next needs work (INT64_MAX: idle). A worker
 * copies what it needs into a struct job, drops the lock for the network,
 * and applies the outcome only if the entry's epoch did not change
 * meanwhile (else the entry is simply due again). The lock order is
 * resolver -> cache; the cache never calls back.
 */
#include "modules/resolver.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "modules/creds.h"
#include "modules/fetch.h"
#include "modules/oci.h"
#include "modules/unpack.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE INT64_MAX

struct entry {
  char *fqn, *org, *url, *secret, *want_sha; /* secret, want_sha nullable */
  char **allowed_in;
  size_t n_allowed_in;
  enum wasm_url_scheme scheme;
  int always;                /* effective pull policy */
  int pinned;                /* digest-pinned oci reference */
  int plain_http;            /* imagePullOptions.plainHttp */
  int insecure;              /* imagePullOptions.insecureSkipVerify */
  int allowed_none;          /* allowedIn names no tenant at all */
  uint64_t fingerprint;      /* of the record, to see changes */
  uint64_t epoch;            /* bumped on every change */
  int busy, removed, forced; /* forced: next attempt goes to the network */
  int64_t due_ms;
  unsigned failures; /* consecutive */
  uint64_t attempts;
  /* result */
  enum module_state state;
  char *reason;
  int stale, local, direct;
  char good_sha[DIGEST_HEX_LEN + 1];
  uint64_t good_size;
  char **good_ids;
  size_t n_good_ids;
  int good_private;
  enum module_sha_match good_match; /* what want_sha matched */
  /* failure logging (rate-limited) */
  char *logged_err;    /* the failure last logged, or NULL */
  int64_t logged_ms;   /* when */
  unsigned long quiet; /* identical failures not logged since */
};

struct job {
  char *fqn, *url, *secret, *want_sha;
  enum wasm_url_scheme scheme;
  int plain_http;
  int insecure; /* TLS certificates not verified */
  int always, forced;
  uint64_t epoch;
};

struct outcome {
  int rc;
  struct xds_err err;
  char sha[DIGEST_HEX_LEN + 1];
  uint64_t size;
  char **ids;
  size_t n_ids;
  int is_private;
  int direct;
  enum module_sha_match sha_match;
  char detail[192]; /* for the log: how it was resolved, or "" */
};

struct resolver {
  struct resolver_config cfg;
  char **insecure; /* owned copy, NULL-terminated */
  char *secrets_dir, *ca_file;
  struct modcache *cache;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct xds_map *entries;
  struct xds_map *unverified; /* deployment ids warned about: those with
                                 insecureSkipVerify in the current set */
  pthread_t *threads;
  int n_threads;
  int stopping;
  atomic_int cancel;
  atomic_uint_fast64_t generation;
  struct resolver_counts counts; /* guarded by lock */
};

const double resolver_fetch_bounds[RESOLVER_FETCH_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30};

const char *resolver_fetch_result_name(enum resolver_fetch_result res) {
  switch (res) {
  case RESOLVER_FETCH_OK:
    return "ok";
  case RESOLVER_FETCH_NOT_FOUND:
    return "not_found";
  case RESOLVER_FETCH_REFUSED:
    return "refused";
  default:
    return "error";
  }
}

/* Counts one pull that took ms and ended with rc. Under r->lock. */
static void count_pull(struct resolver *r, int rc, int64_t ms) {
  struct resolver_counts *c = &r->counts;
  enum resolver_fetch_result res =
      rc == 0               ? RESOLVER_FETCH_OK
      : rc == XDS_ENOTFOUND ? RESOLVER_FETCH_NOT_FOUND
      : rc == XDS_EINVAL || rc == XDS_EPARSE || rc == XDS_ETOOBIG
          ? RESOLVER_FETCH_REFUSED
          : RESOLVER_FETCH_ERROR;
  double s = (double)ms / 1000.0;
  int i = 0;

  c->fetches[res]++;
  while (i < RESOLVER_FETCH_BUCKETS && s > resolver_fetch_bounds[i])
    i++;
  c->buckets[i]++;
  c->count++;
  c->sum_us += (uint64_t)(ms > 0 ? ms : 0) * 1000;
}

void resolver_get_counts(struct resolver *r, struct resolver_counts *out) {
  pthread_mutex_lock(&r->lock);
  *out = r->counts;
  pthread_mutex_unlock(&r->lock);
}

static int64_t mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s, int *oom) {
  char *c;

  if (s == NULL)
    return NULL;
  c = xds_strdup(s);
  if (c == NULL)
    *oom = 1;
  return c;
}

static void entry_free(void *p) {
  struct entry *e = p;

  if (e == NULL)
    return;
  xds_free(e->fqn);
  xds_free(e->org);
  xds_free(e->url);
  xds_free(e->secret);
  xds_free(e->want_sha);
  xds_strv_free(e->allowed_in, e->n_allowed_in);
  xds_free(e->reason);
  xds_strv_free(e->good_ids, e->n_good_ids);
  xds_free(e->logged_err);
  xds_free(e);
}

void module_info_cleanup(struct module_info *m) {
  xds_strv_free(m->root_ids, m->n_root_ids);
  xds_free(m->reason);
  xds_free(m->url);
  memset(m, 0, sizeof(*m));
}

static uint64_t fnv(uint64_t h, const char *s) {
  if (s == NULL)
    s = "\x01";
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (h ^ 0xff) * 1099511628211ULL;
}

static uint64_t fingerprint(const struct wasm_ext *x) {
  uint64_t h = 14695981039346656037ULL;
  char num[32];

  h = fnv(h, x->url);
  h = fnv(h, x->pull_secret);
  h = fnv(h, x->sha256);
  snprintf(num, sizeof(num), "%d/%d/%d/%d", (int)x->pull_policy, (int)x->phase,
           (int)x->priority, (int)x->fail_strategy);
  h = fnv(h, num);
  h = fnv(h, x->config_json);
  h = fnv(h, x->plugin_name);
  h = fnv(h, x->vm_id);
  h = fnv(h, x->runtime);
  h = fnv(h, x->plain_http ? "plain" : "tls");
  h = fnv(h, x->insecure_skip_verify ? "unverified" : "verified");
  h = fnv(h, x->allowed_none ? "none" : "listed");
  for (size_t i = 0; i < x->n_allowed_in; i++)
    h = fnv(h, x->allowed_in[i]);
  for (size_t i = 0; i < x->n_env; i++) {
    h = fnv(h, x->env[i].name);
    h = fnv(h, x->env[i].value);
  }
  return h;
}

static void set_reason(struct entry *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_reason(struct entry *e, const char *fmt, ...) {
  va_list ap;
  char *s;

  va_start(ap, fmt);
  s = fmt ? xds_vasprintf(fmt, ap) : NULL;
  va_end(ap);
  xds_free(e->reason);
  e->reason = s; /* NULL on OOM: no reason is better than a wrong one */
}

/* Resolution key: the source, the credential name (never a secret) and
 * how far the transport was trusted. A pull made without TLS verification
 * or over plain http (a WasmDeployment's imagePullOptions) records its
 * answer under its own key ("...\nunverified"), so it never answers for an
 * extension that pulls the same url verified: that one fetches (and
 * verifies) for itself, as on a cold cache. The verified key keeps the
 * form older caches persisted. */
static char *source_key(const char *url, const char *secret, int unverified) {
  return xds_asprintf("%s\n%s%s", url, secret ? secret : "",
                      unverified ? "\nunverified" : "");
}

/* Re-derives the referenced set for the cache. Lock held. */
static void publish_refs(struct resolver *r) {
  size_t n = xds_map_count(r->entries), k = 0, pos = 0;
  const char **hexes = xds_calloc(n ? n : 1, sizeof(char *));
  const char *key;
  void *val;

  if (hexes == NULL)
    return; /* keep the previous set: never evicts more than before */
  while (xds_map_next(r->entries, &pos, &key, &val)) {
    struct entry *e = val;

    if (e->good_sha[0] != '\0')
      hexes[k++] = e->good_sha;
  }
  modcache_set_referenced(r->cache, hexes, k);
  xds_free(hexes);
}

static void set_good(struct entry *e, const char *sha, uint64_t size,
                     char **ids, size_t n_ids, int is_private) {
  char **copy;

  snprintf(e->good_sha, sizeof(e->good_sha), "%s", sha);
  e->good_size = size;
  if (xds_strv_dup(ids, n_ids, &copy) == 0) {
    xds_strv_free(e->good_ids, e->n_good_ids);
    e->good_ids = copy;
    e->n_good_ids = n_ids;
  }
  e->good_private = is_private;
}

/* Answers from the cache alone, if policy allows. Lock held (cache calls
 * are local and quick). Returns 1 when e is now READY. */
static int try_cached(struct resolver *r, struct entry *e) {
  char hex[DIGEST_HEX_LEN + 1] = "";
  enum module_sha_match match = MODULE_SHA_NONE;
  struct modcache_meta meta;
  char *key;
  int have_res = 0;

  if (e->forced)
    return 0;
  key = source_key(e->url, e->secret, e->insecure || e->plain_http);
  if (key == NULL)
    return 0;
  have_res = modcache_resolution_get(r->cache, key, hex, NULL) == 0;
  xds_free(key);
  if (e->want_sha != NULL) {
    /* Pinned by the resource: the cache answers only if this very source
     * (url + secret) resolved to those bytes. A copy with that digest
     * fetched for another extension proves nothing about what this url
     * serves, and answering from it would make the result depend on the
     * cache's history (issue 14 item 4). */
    char from_manifest[DIGEST_HEX_LEN + 1] = "";

    if (!have_res)
      return 0;
    if (strcmp(hex, e->want_sha) == 0) {
      match = MODULE_SHA_MODULE;
    } else if (e->scheme == WASM_URL_OCI &&
               modcache_manifest_get(r->cache, e->want_sha, from_manifest) &&
               strcmp(from_manifest, hex) == 0) {
      /* Pinned by the image manifest (Istio's sha256) that this very
       * source resolved through to this module. */
      match = MODULE_SHA_MANIFEST;
    } else {
      return 0;
    }
    if (!modcache_has(r->cache, hex, &meta))
      return 0;
  } else {
    if (!have_res || (e->always && !e->pinned))
      return 0;
    if (!modcache_has(r->cache, hex, &meta))
      return 0;
  }
  set_good(e, hex, meta.size, meta.root_ids, meta.n_root_ids, meta.is_private);
  e->good_match = match;
  modcache_meta_cleanup(&meta);
  e->state = MODULE_READY;
  e->stale = 0;
  set_reason(e, NULL);
  return 1;
}

/* ---- pulling --------------------------------------------------------- */

static int known_manifest(void *arg, const char *manifest_hex,
                          char module_hex[DIGEST_HEX_LEN + 1]) {
  return modcache_manifest_get(arg, manifest_hex, module_hex);
}

static void base_policy(struct resolver *r, const struct job *j,
                        struct fetch_policy *p) {
  memset(p, 0, sizeof(*p));
  p->timeout_ms = r->cfg.fetch_timeout_ms;
  p->allow_link_local = r->cfg.allow_link_local;
  p->ca_file = r->ca_file;
  p->insecure_skip_verify = j->insecure;
  p->cancel = &r->cancel;
}

static void pull_oci(struct resolver *r, const struct job *j,
                     struct outcome *out) {
  struct oci_ref ref;
  struct oci_opts o;
  struct oci_result res;
  struct creds cr = {NULL};
  char *key = NULL;
  int rc;

  memset(&res, 0, sizeof(res));
  rc = oci_ref_parse(j->url, &ref, &out->err);
  if (rc < 0)
    goto out;
  if (j->secret != NULL) {
    rc = creds_load(r->secrets_dir, j->secret, ref.registry, &cr, &out->err);
    if (rc < 0)
      goto out;
  }
  memset(&o, 0, sizeof(o));
  base_policy(r, j, &o.fetch);
  o.max_module = r->cfg.max_module_bytes;
  o.insecure = (const char *const *)r->insecure;
  o.basic = cr.basic;
  o.plain_http = j->plain_http;
  o.known = known_manifest;
  o.known_arg = r->cache;
  rc = oci_pull(&ref, &o, &res, &out->err);
  if (rc < 0)
    goto out;
  /* A sha256 in the resource pins the module's digest or, as Istio's
   * WasmPlugin means it, the image manifest's. */
  if (j->want_sha != NULL && strcmp(j->want_sha, res.sha256) == 0) {
    out->sha_match = MODULE_SHA_MODULE;
  } else if (j->want_sha != NULL &&
             strcmp(j->want_sha, res.manifest_digest) == 0) {
    out->sha_match = MODULE_SHA_MANIFEST;
  } else if (j->want_sha != NULL) {
    rc = xds_err_set(&out->err, XDS_EINVAL,
                     "the sha256 %s given in the resource is neither the "
                     "module's sha256 %s nor the image manifest's %s: refused",
                     j->want_sha, res.sha256, res.manifest_digest);
    goto out;
  }
  if (res.module != NULL) {
    rc = modcache_put(r->cache, res.sha256, res.module, res.module_len,
                      res.root_ids, res.n_root_ids, j->secret != NULL,
                      &out->err);
    if (rc < 0)
      goto out;
  } else {
    struct modcache_meta meta;

    /* Known manifest: the registry just re-authorised this credential. */
    if (!modcache_has(r->cache, res.sha256, &meta)) {
      rc = xds_err_set(&out->err, XDS_EIO, "cached module vanished");
      goto out;
    }
    xds_strv_free(res.root_ids, res.n_root_ids);
    res.root_ids = meta.root_ids;
    res.n_root_ids = meta.n_root_ids;
    meta.root_ids = NULL;
    meta.n_root_ids = 0;
    modcache_meta_cleanup(&meta);
  }
  key = source_key(j->url, j->secret, j->insecure || j->plain_http);
  if (key != NULL)
    modcache_resolution_put(r->cache, key, res.sha256, res.manifest_digest);
  memcpy(out->sha, res.sha256, sizeof(out->sha));
  {
    struct modcache_meta meta;

    if (modcache_has(r->cache, res.sha256, &meta)) {
      out->size = meta.size;
      out->is_private = meta.is_private;
      modcache_meta_cleanup(&meta);
    }
  }
  out->ids = res.root_ids;
  out->n_ids = res.n_root_ids;
  res.root_ids = NULL;
  res.n_root_ids = 0;
  snprintf(out->detail, sizeof(out->detail), "%s, manifest sha256:%.12s",
           res.variant ? res.variant : "?", res.manifest_digest);
out:
  out->rc = rc;
  xds_free(key);
  creds_cleanup(&cr);
  oci_result_cleanup(&res);
}

static void pull_http(struct resolver *r, const struct job *j,
                      struct outcome *out) {
  struct fetch_req req;
  struct fetch_resp resp;
  struct fetch_policy pol;
  struct xds_buf plain;
  const unsigned char *mod;
  size_t mod_len;
  char *key = NULL;
  int rc;

  xds_buf_init(&plain, 2 * r->cfg.max_module_bytes);
  /* RESOLVER_ROUTE_DIRECT (resolver_route_of): Envoy fetches it. */
  if (r->cfg.http_direct && j->want_sha != NULL && !j->insecure) {
    memcpy(out->sha, j->want_sha, sizeof(out->sha));
    out->sha_match = MODULE_SHA_MODULE; /* Envoy verifies the module */
    out->direct = 1;
    out->rc = 0;
    return;
  }
  base_policy(r, j, &pol);
  pol.max_redirects = RESOLVER_MAX_HTTP_REDIRECTS;
  memset(&req, 0, sizeof(req));
  req.url = j->url;
  req.max_body = r->cfg.max_module_bytes;
  rc = fetch_run(&pol, &req, &resp, &out->err);
  if (rc < 0)
    goto out;
  if (resp.status != 200) {
    char shown[256];

    snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(j->url, "?#"), j->url);
    rc = xds_err_set(&out->err,
                     resp.status >= 500 || resp.status == 429 ||
                             resp.status == 408
                         ? XDS_EIO
                         : XDS_ENOTFOUND,
                     "%s: HTTP %ld", shown, resp.status);
    goto out;
  }
  mod = (const unsigned char *)resp.body.data;
  mod_len = resp.body.len;
  /* Like Istio: unwrap a gzip and/or tar download to the module inside. */
  if (mod != NULL && unpack_is_gzip(mod, mod_len)) {
    rc = unpack_gunzip(mod, mod_len, &plain, &out->err);
    if (rc < 0)
      goto out;
    mod = (const unsigned char *)plain.data;
    mod_len = plain.len;
  }
  if (mod != NULL && unpack_is_tar(mod, mod_len)) {
    struct unpack_found f;

    rc = unpack_tar_find_wasm(mod, mod_len, &f, &out->err);
    if (rc < 0)
      goto out;
    mod = f.wasm;
    mod_len = f.wasm_len;
  }
  if (mod == NULL || !digest_is_wasm(mod, mod_len) ||
      mod_len > r->cfg.max_module_bytes) {
    rc = xds_err_set(&out->err, XDS_EPARSE,
                     "downloaded body is not a Wasm binary (no \\0asm version "
                     "1 header)");
    goto out;
  }
  rc = digest_sha256_hex(mod, mod_len, out->sha);
  if (rc < 0)
    goto out;
  if (j->want_sha != NULL)
    out->sha_match = MODULE_SHA_MODULE; /* checked just below */
  if (j->want_sha != NULL && strcmp(j->want_sha, out->sha) != 0) {
    rc = xds_err_set(&out->err, XDS_EINVAL,
                     "module sha256 %s does not match the sha256 %s given "
                     "in the resource: refused",
                     out->sha, j->want_sha);
    goto out;
  }
  rc = modcache_put(r->cache, out->sha, mod, mod_len, NULL, 0, 0, &out->err);
  if (rc < 0)
    goto out;
  key = source_key(j->url, j->secret, j->insecure || j->plain_http);
  if (key != NULL)
    modcache_resolution_put(r->cache, key, out->sha, NULL);
  out->size = mod_len;
out:
  out->rc = rc;
  xds_free(key);
  xds_buf_cleanup(&plain);
  fetch_resp_cleanup(&resp);
}

/* ---- workers --------------------------------------------------------- */

static int64_t backoff_ms(struct resolver *r, unsigned failures, int rc) {
  int64_t d = r->cfg.backoff_base_ms, max = r->cfg.backoff_max_ms;

  if (rc != XDS_EIO)
    d = max; /* not transient: a slow, steady retry */
  for (unsigned i = 1; i < failures && d < max; i++)
    d *= 2;
  if (d > max)
    d = max;
  /* Jitter: between half and all of the delay. */
  return d / 2 + (int64_t)arc4random_uniform((uint32_t)(d / 2 + 1));
}

/* Logs a failed attempt of e, rate-limited: a failure is logged when its
 * message differs from the last one logged for e, or when
 * RESOLVER_LOG_REPEAT_MS passed since (saying how many identical ones were
 * not logged meanwhile). Lock held. */
static void log_failure(struct entry *e, const struct outcome *o, int64_t now,
                        int64_t retry_ms) {
  if (e->logged_err != NULL && strcmp(e->logged_err, o->err.msg) == 0 &&
      now - e->logged_ms < RESOLVER_LOG_REPEAT_MS) {
    e->quiet++;
    return;
  }
  if (e->quiet > 0 && e->logged_err != NULL &&
      strcmp(e->logged_err, o->err.msg) == 0)
    XDS_LOGW("modules: %s: pull failed (attempt %llu, retry in %lld ms): %s "
             "(and %lu more failures like it in the last %lld s)",
             e->fqn, (unsigned long long)e->attempts, (long long)retry_ms,
             o->err.msg, e->quiet, (long long)((now - e->logged_ms) / 1000));
  else
    XDS_LOGW("modules: %s: pull failed (attempt %llu, retry in %lld ms): %s",
             e->fqn, (unsigned long long)e->attempts, (long long)retry_ms,
             o->err.msg);
  xds_free(e->logged_err);
  e->logged_err = xds_strdup(o->err.msg); /* NULL on OOM: logs next time */
  e->logged_ms = now;
  e->quiet = 0;
}

static int str_same(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Applies an outcome. Lock held. Returns 1 when the visible result
 * changed (state, module, staleness or reason); an attempt that finds what
 * was already there changes nothing and logs nothing (at info level). */
static int apply(struct resolver *r, struct entry *e, struct outcome *o) {
  int64_t now = mono_ms();
  enum module_state was_state = e->state;
  int was_stale = e->stale, changed;
  char *was_reason = e->reason;

  e->attempts++;
  if (o->rc == 0) {
    changed = e->state != MODULE_READY || e->stale ||
              strcmp(e->good_sha, o->sha) != 0 || e->direct != o->direct;
    set_good(e, o->sha, o->size, o->ids, o->n_ids, o->is_private);
    e->good_match = o->sha_match;
    e->state = MODULE_READY;
    e->stale = 0;
    e->direct = o->direct;
    e->failures = 0;
    e->forced = 0;
    set_reason(e, NULL);
    e->due_ms = e->always && !e->pinned && r->cfg.always_interval_s >= 0
                    ? now + r->cfg.always_interval_s * 1000
                    : IDLE;
    if (e->always)
      e->forced = 1; /* the next scheduled attempt re-resolves */
    if (changed)
      XDS_LOGI("modules: %s: %.*s -> sha256:%s%s%s%s", e->fqn,
               (int)strcspn(e->url, "?#"), e->url, o->sha,
               o->detail[0] ? " (" : "", o->detail, o->detail[0] ? ")" : "");
    else
      XDS_LOGD("modules: %s: re-resolved, unchanged (sha256:%.12s)", e->fqn,
               o->sha);
    xds_free(e->logged_err);
    e->logged_err = NULL;
    e->quiet = 0;
    return changed;
  }
  e->failures++;
  e->reason = NULL; /* kept in was_reason to compare */
  if (e->good_sha[0] != '\0' || e->direct) {
    e->state = MODULE_READY;
    e->stale = 1;
    set_reason(e, "last pull failed, keeping sha256:%.12s: %s", e->good_sha,
               o->err.msg);
  } else {
    e->state = MODULE_FAILED;
    set_reason(e, "%s", o->err.msg);
  }
  changed = e->state != was_state || e->stale != was_stale ||
            !str_same(e->reason, was_reason);
  xds_free(was_reason);
  e->due_ms = now + backoff_ms(r, e->failures, o->rc);
  log_failure(e, o, now, e->due_ms - now);
  return changed;
}

static void job_cleanup(struct job *j) {
  xds_free(j->fqn);
  xds_free(j->url);
  xds_free(j->secret);
  xds_free(j->want_sha);
}

static struct entry *next_due(struct resolver *r, int64_t now,
                              int64_t *earliest) {
  const char *key;
  void *val;
  size_t pos = 0;
  struct entry *best = NULL;

  *earliest = IDLE;
  while (xds_map_next(r->entries, &pos, &key, &val)) {
    struct entry *e = val;

    if (e->busy || e->removed || e->due_ms == IDLE)
      continue;
    if (e->due_ms <= now && (best == NULL || e->due_ms < best->due_ms))
      best = e;
    if (e->due_ms < *earliest)
      *earliest = e->due_ms;
  }
  return best;
}

static void *worker_main(void *arg) {
  struct resolver *r = arg;

  pthread_mutex_lock(&r->lock);
  while (!r->stopping) {
    int64_t now = mono_ms(), earliest;
    struct entry *e = next_due(r, now, &earliest);
    struct job j;
    struct outcome o;
    int64_t started;
    int oom = 0, changed = 0;

    if (e == NULL) {
      struct timespec ts;
      int64_t wait = earliest == IDLE ? 1000 : earliest - now;

      if (wait > 1000)
        wait = 1000;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_sec += wait / 1000;
      ts.tv_nsec += (wait % 1000) * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&r->wake, &r->lock, &ts);
      continue;
    }
    memset(&j, 0, sizeof(j));
    memset(&o, 0, sizeof(o));
    j.fqn = dup_or_null(e->fqn, &oom);
    j.url = dup_or_null(e->url, &oom);
    j.secret = dup_or_null(e->secret, &oom);
    j.want_sha = dup_or_null(e->want_sha, &oom);
    j.scheme = e->scheme;
    j.plain_http = e->plain_http;
    j.insecure = e->insecure;
    j.always = e->always;
    j.forced = e->forced;
    j.epoch = e->epoch;
    if (oom) {
      job_cleanup(&j);
      e->due_ms = now + 1000;
      continue;
    }
    e->busy = 1;
    /* A cache answer may have appeared (another extension pulled it). */
    if (try_cached(r, e)) {
      e->busy = 0;
      e->due_ms = IDLE;
      job_cleanup(&j);
      publish_refs(r);
      atomic_fetch_add(&r->generation, 1);
      pthread_mutex_unlock(&r->lock);
      if (r->cfg.on_change)
        r->cfg.on_change(r->cfg.on_change_arg);
      pthread_mutex_lock(&r->lock);
      continue;
    }
    pthread_mutex_unlock(&r->lock);

    started = mono_ms();
    if (j.scheme == WASM_URL_OCI)
      pull_oci(r, &j, &o);
    else
      pull_http(r, &j, &o);

    pthread_mutex_lock(&r->lock);
    if (!o.direct && !(r->stopping && o.rc < 0))
      count_pull(r, o.rc, mono_ms() - started);
    e->busy = 0;
    if (e->removed) {
      entry_free(e);
    } else if (e->epoch != j.epoch) {
      e->due_ms = mono_ms(); /* changed meanwhile: go again */
    } else if (r->stopping && o.rc < 0) {
      /* Aborted by shutdown: not a real failure. */
    } else {
      changed = apply(r, e, &o);
      if (changed)
        publish_refs(r);
    }
    xds_strv_free(o.ids, o.n_ids);
    job_cleanup(&j);
    if (changed) {
      atomic_fetch_add(&r->generation, 1);
      pthread_mutex_unlock(&r->lock);
      if (r->cfg.on_change)
        r->cfg.on_change(r->cfg.on_change_arg);
      pthread_mutex_lock(&r->lock);
    }
  }
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* ---- public ---------------------------------------------------------- */

int resolver_new(const struct resolver_config *cfg, struct resolver **out,
                 struct xds_err *err) {
  struct resolver *r;
  pthread_condattr_t ca;
  size_t n_insecure = 0;
  int rc;

  *out = NULL;
  if (cfg->cache_dir == NULL)
    return xds_err_set(err, XDS_EINVAL, "resolver: no module cache directory");
  rc = fetch_global_init();
  if (rc < 0)
    return xds_err_set(err, rc, "resolver: libcurl initialisation failed");
  r = xds_calloc(1, sizeof(*r));
  if (r == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  r->cfg = *cfg;
  if (r->cfg.workers <= 0)
    r->cfg.workers = RESOLVER_DEFAULT_WORKERS;
  if (r->cfg.workers > RESOLVER_MAX_WORKERS)
    r->cfg.workers = RESOLVER_MAX_WORKERS;
  if (r->cfg.fetch_timeout_ms <= 0)
    r->cfg.fetch_timeout_ms = RESOLVER_DEFAULT_TIMEOUT_MS;
  if (r->cfg.backoff_base_ms <= 0)
    r->cfg.backoff_base_ms = RESOLVER_DEFAULT_BACKOFF_BASE_MS;
  if (r->cfg.backoff_max_ms <= 0)
    r->cfg.backoff_max_ms = RESOLVER_DEFAULT_BACKOFF_MAX_MS;
  if (r->cfg.backoff_max_ms < r->cfg.backoff_base_ms)
    r->cfg.backoff_max_ms = r->cfg.backoff_base_ms;
  if (r->cfg.always_interval_s == 0)
    r->cfg.always_interval_s = RESOLVER_DEFAULT_ALWAYS_INTERVAL_S;
  if (r->cfg.max_module_bytes == 0)
    r->cfg.max_module_bytes = RESOLVER_DEFAULT_MAX_MODULE;
  r->cfg.cache_dir = NULL; /* not kept: the cache has its own copy */
  r->cfg.pull_secrets_dir = NULL;
  r->cfg.insecure_registries = NULL;
  r->cfg.ca_file = NULL;
  pthread_mutex_init(&r->lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->wake, &ca);
  pthread_condattr_destroy(&ca);
  for (const char *const *p = cfg->insecure_registries; p && *p; p++)
    n_insecure++;
  r->insecure = xds_calloc(n_insecure + 1, sizeof(char *));
  r->entries = xds_map_new();
  r->unverified = xds_map_new();
  rc = r->insecure == NULL || r->entries == NULL || r->unverified == NULL
           ? XDS_ENOMEM
           : 0;
  for (size_t i = 0; rc == 0 && i < n_insecure; i++)
    if ((r->insecure[i] = xds_strdup(cfg->insecure_registries[i])) == NULL)
      rc = XDS_ENOMEM;
  if (rc == 0 && cfg->pull_secrets_dir != NULL &&
      (r->secrets_dir = xds_strdup(cfg->pull_secrets_dir)) == NULL)
    rc = XDS_ENOMEM;
  if (rc == 0 && cfg->ca_file != NULL &&
      (r->ca_file = xds_strdup(cfg->ca_file)) == NULL)
    rc = XDS_ENOMEM;
  if (rc < 0) {
    xds_err_set(err, rc, "out of memory");
    goto fail;
  }
  rc = modcache_open(cfg->cache_dir, cfg->cache_max_bytes, &r->cache, err);
  if (rc < 0)
    goto fail;
  r->threads = xds_calloc((size_t)r->cfg.workers, sizeof(pthread_t));
  if (r->threads == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto fail;
  }
  for (int i = 0; i < r->cfg.workers; i++) {
    if (pthread_create(&r->threads[i], NULL, worker_main, r) != 0) {
      rc = xds_err_set(err, XDS_EIO, "resolver: cannot start worker %d", i);
      goto fail;
    }
    r->n_threads++;
  }
  *out = r;
  return 0;
fail:
  resolver_free(r);
  return rc;
}

void resolver_free(struct resolver *r) {
  if (r == NULL)
    return;
  pthread_mutex_lock(&r->lock);
  r->stopping = 1;
  atomic_store(&r->cancel, 1);
  pthread_cond_broadcast(&r->wake);
  pthread_mutex_unlock(&r->lock);
  for (int i = 0; i < r->n_threads; i++)
    pthread_join(r->threads[i], NULL);
  xds_free(r->threads);
  xds_map_free(r->entries, entry_free);
  xds_map_free(r->unverified, NULL);
  modcache_free(r->cache);
  for (char **p = r->insecure; p && *p; p++)
    xds_free(*p);
  xds_free(r->insecure);
  xds_free(r->secrets_dir);
  xds_free(r->ca_file);
  pthread_cond_destroy(&r->wake);
  pthread_mutex_destroy(&r->lock);
  xds_free(r);
}

/* Fills the record part of e from x. Returns 0 or XDS_ENOMEM. */
static int entry_set(struct entry *e, const struct wasm_ext *x) {
  struct oci_ref ref;
  int oom = 0;
  char **allowed = NULL;

  xds_free(e->org);
  xds_free(e->url);
  xds_free(e->secret);
  xds_free(e->want_sha);
  xds_strv_free(e->allowed_in, e->n_allowed_in);
  e->allowed_in = NULL;
  e->n_allowed_in = 0;
  e->org = dup_or_null(x->organization, &oom);
  e->url = dup_or_null(x->url, &oom);
  e->secret = dup_or_null(x->pull_secret, &oom);
  e->want_sha = dup_or_null(x->sha256, &oom);
  if (xds_strv_dup(x->allowed_in, x->n_allowed_in, &allowed) < 0)
    oom = 1;
  e->allowed_in = allowed;
  e->n_allowed_in = allowed ? x->n_allowed_in : 0;
  if (oom)
    return XDS_ENOMEM;
  e->scheme = x->scheme;
  e->plain_http = x->plain_http;
  e->insecure = x->insecure_skip_verify;
  e->allowed_none = x->allowed_none;
  e->pinned = 0;
  e->always = x->pull_policy == WASM_PULL_ALWAYS;
  if (x->scheme == WASM_URL_OCI && oci_ref_parse(x->url, &ref, NULL) == 0) {
    e->pinned = ref.digest[0] != '\0';
    if (x->pull_policy == WASM_PULL_UNSPECIFIED)
      e->always = oci_ref_is_latest(&ref);
  }
  e->fingerprint = fingerprint(x);
  e->epoch++;
  e->failures = 0;
  e->attempts = 0;
  e->forced = e->always && !e->pinned && e->want_sha == NULL;
  e->local = resolver_route_of(x, 0) == RESOLVER_ROUTE_LOCAL;
  return 0;
}

/* Warns once per resource (a WasmDeployment and all its filters) that its
 * pulls skip TLS verification: when it first appears in the set with
 * insecureSkipVerify, again only after it left the set or dropped the
 * flag. Lock held. Out of memory: the warning may repeat, never lost. */
static void warn_unverified(struct resolver *r,
                            const struct wasm_ext *const *exts, size_t n) {
  struct xds_map *now = xds_map_new();

  if (now == NULL)
    return;
  for (size_t i = 0; i < n; i++) {
    const char *id = wasm_ext_resource_id(exts[i]);

    if (!exts[i]->insecure_skip_verify || xds_map_get(now, id) != NULL)
      continue;
    if (xds_map_get(r->unverified, id) == NULL)
      XDS_LOGW("modules: %s: imagePullOptions.insecureSkipVerify: the TLS "
               "certificates of its registries and origins are not "
               "verified",
               id);
    if (xds_map_put(now, id, (void *)1, NULL) < 0) {
      xds_map_free(now, NULL);
      return;
    }
  }
  xds_map_free(r->unverified, NULL);
  r->unverified = now;
}

int resolver_update(struct resolver *r, const struct wasm_ext *const *exts,
                    size_t n) {
  struct xds_map *next = xds_map_new();
  const char *key;
  void *val;
  size_t pos = 0;
  int rc = 0;

  if (next == NULL)
    return XDS_ENOMEM;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < n; i++) {
    const struct wasm_ext *x = exts[i];
    struct entry *e = xds_map_get(r->entries, x->fqn);
    int fresh = 0;

    if (xds_map_get(next, x->fqn) != NULL)
      continue; /* duplicate fqn: the first wins */
    if (e == NULL || e->removed) {
      e = xds_calloc(1, sizeof(*e));
      if (e == NULL || (e->fqn = xds_strdup(x->fqn)) == NULL) {
        entry_free(e);
        rc = XDS_ENOMEM;
        break;
      }
      e->state = MODULE_PENDING;
      e->due_ms = IDLE;
      fresh = 1;
    } else if (e->fingerprint == fingerprint(x)) {
      if (xds_map_put(next, x->fqn, e, NULL) < 0) {
        rc = XDS_ENOMEM;
        break;
      }
      continue;
    }
    if (entry_set(e, x) < 0 || xds_map_put(next, x->fqn, e, NULL) < 0) {
      if (fresh)
        entry_free(e);
      rc = XDS_ENOMEM;
      break;
    }
    if (e->local) {
      e->state = MODULE_READY;
      e->stale = 0;
      e->good_sha[0] = '\0';
      set_reason(e, NULL);
      e->due_ms = IDLE;
    } else if (!try_cached(r, e)) {
      if (e->state == MODULE_PENDING)
        set_reason(e, "waiting for the first pull");
      e->due_ms = mono_ms();
    } else {
      e->due_ms = e->always && !e->pinned && r->cfg.always_interval_s >= 0
                      ? mono_ms() + r->cfg.always_interval_s * 1000
                      : IDLE;
      if (e->always)
        e->forced = 1;
    }
  }
  if (rc < 0) {
    /* Undo: free the entries this call created; changed ones keep their
     * new record, which is harmless (they were due for work anyway). */
    while (xds_map_next(next, &pos, &key, &val))
      if (xds_map_get(r->entries, key) != val)
        entry_free(val);
    xds_map_free(next, NULL);
    pthread_mutex_unlock(&r->lock);
    return rc;
  }
  /* Forget what is gone. */
  while (xds_map_next(r->entries, &pos, &key, &val)) {
    struct entry *e = val;

    if (xds_map_get(next, key) == NULL)
      e->removed = 1;
  }
  pos = 0;
  {
    struct xds_map *keep = next;

    next = r->entries;
    r->entries = keep;
  }
  while (xds_map_next(next, &pos, &key, &val)) {
    struct entry *e = val;

    if (e->removed && !e->busy)
      entry_free(e);
    /* A busy removed entry is freed by its worker. */
  }
  xds_map_free(next, NULL);
  warn_unverified(r, exts, n);
  publish_refs(r);
  atomic_fetch_add(&r->generation, 1);
  pthread_cond_broadcast(&r->wake);
  pthread_mutex_unlock(&r->lock);
  return 0;
}

int resolver_lookup(struct resolver *r, const char *fqn,
                    struct module_info *out) {
  struct entry *e;
  int rc = 0;

  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&r->lock);
  e = xds_map_get(r->entries, fqn);
  if (e == NULL || e->removed) {
    rc = XDS_ENOTFOUND;
    goto out;
  }
  out->state = e->state;
  out->stale = e->stale;
  out->local = e->local;
  out->direct = e->direct;
  out->attempts = e->attempts;
  out->is_private = e->good_private;
  out->busy = e->busy;
  out->failures = e->failures;
  if (e->due_ms == IDLE || e->busy) {
    out->next_ms = -1;
  } else {
    int64_t now = mono_ms();

    out->next_ms = e->due_ms > now ? e->due_ms - now : 0;
  }
  if ((out->url = xds_strdup(e->url)) == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  if (e->state == MODULE_READY && !e->local) {
    memcpy(out->sha256, e->good_sha, sizeof(out->sha256));
    out->size = e->good_size;
    out->sha_match = e->good_match;
    if (xds_strv_dup(e->good_ids, e->n_good_ids, &out->root_ids) < 0) {
      rc = XDS_ENOMEM;
      goto out;
    }
    out->n_root_ids = e->n_good_ids;
  }
  if (e->reason != NULL && (out->reason = xds_strdup(e->reason)) == NULL)
    rc = XDS_ENOMEM;
out:
  pthread_mutex_unlock(&r->lock);
  if (rc < 0)
    module_info_cleanup(out);
  return rc;
}

uint64_t resolver_generation(struct resolver *r) {
  return atomic_load(&r->generation);
}

int resolver_module_allowed(struct resolver *r, const char *hex,
                            const char *org, const char *tenant) {
  const char *key;
  void *val;
  size_t pos = 0;
  int referenced = 0, allowed = 0;
  struct modcache_meta meta;

  pthread_mutex_lock(&r->lock);
  while (!allowed && xds_map_next(r->entries, &pos, &key, &val)) {
    struct entry *e = val;

    if (e->removed || strcmp(e->good_sha, hex) != 0)
      continue;
    referenced = 1;
    if (e->secret == NULL) {
      allowed = 1; /* public: fetched without credentials */
      break;
    }
    if (org == NULL || e->org == NULL || strcmp(org, e->org) != 0)
      continue;
    if (e->n_allowed_in == 0 && !e->allowed_none) {
      allowed = 1;
      break;
    }
    for (size_t i = 0; tenant != NULL && i < e->n_allowed_in; i++)
      if (strcmp(e->allowed_in[i], tenant) == 0)
        allowed = 1;
  }
  pthread_mutex_unlock(&r->lock);
  if (allowed || referenced)
    return allowed;
  if (!modcache_has(r->cache, hex, &meta))
    return 0;
  allowed = !meta.is_private;
  modcache_meta_cleanup(&meta);
  return allowed;
}

enum resolver_route resolver_route_of(const struct wasm_ext *e,
                                      int http_direct) {
  if (e->scheme == WASM_URL_FILE)
    return RESOLVER_ROUTE_LOCAL;
  /* insecureSkipVerify is honoured by wasmxds' own pull only: Envoy
   * would verify the origin. */
  if ((e->scheme == WASM_URL_HTTP || e->scheme == WASM_URL_HTTPS) &&
      e->sha256 != NULL && http_direct && !e->insecure_skip_verify)
    return RESOLVER_ROUTE_DIRECT;
  return RESOLVER_ROUTE_FETCH;
}

struct modcache *resolver_cache(struct resolver *r) {
  return r->cache;
}
