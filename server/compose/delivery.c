/*
 * delivery.c: resolver results to encode_module, and the module route.
 */
#include "server/compose/delivery.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "modules/cache.h"
#include "modules/resolver.h"
#include "modules/serve.h"

/* Bytes of the token secret read (more is ignored), and the least. */
#define DELIVERY_SECRET_MAX 4096
#define DELIVERY_SECRET_MIN 16
/* Hex digits of a capability token. */
#define DELIVERY_TOKEN_HEX 32

struct delivery {
  struct resolver *res;
  struct modserve ms;
  char *base_url;
  unsigned char *secret; /* NULL: no private module gets a URL */
  size_t secret_len;
  pthread_mutex_t cat_lock; /* guards cat (read by admin threads) */
  struct catalog *cat;
  /* Scratch for delivery_module_of's strings (one caller at a time). */
  struct module_info mi;
  char *uri;
  int warned_no_secret;
};

static int read_secret(const char *path, struct delivery *d,
                       struct xds_err *err) {
  FILE *f = fopen(path, "rb");
  unsigned char buf[DELIVERY_SECRET_MAX];
  size_t n;

  if (f == NULL)
    return xds_err_set(err, XDS_EIO, "--module-token-secret %s: %s", path,
                       strerror(errno));
  n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  if (n < DELIVERY_SECRET_MIN)
    return xds_err_set(err, XDS_EINVAL,
                       "--module-token-secret %s: at least %d bytes needed",
                       path, DELIVERY_SECRET_MIN);
  d->secret = xds_malloc(n);
  if (d->secret == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  memcpy(d->secret, buf, n);
  d->secret_len = n;
  OPENSSL_cleanse(buf, sizeof(buf));
  return 0;
}

/* The capability token for (fqn, hex), DELIVERY_TOKEN_HEX hex digits. */
static void token_of(const struct delivery *d, const char *fqn, const char *hex,
                     char out[DELIVERY_TOKEN_HEX + 1]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  memset(md, 0, sizeof(md));
  if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
    EVP_DigestUpdate(ctx, d->secret, d->secret_len);
    EVP_DigestUpdate(ctx, "", 1);
    EVP_DigestUpdate(ctx, fqn, strlen(fqn) + 1);
    EVP_DigestUpdate(ctx, hex, strlen(hex));
    EVP_DigestFinal_ex(ctx, md, &len);
  }
  EVP_MD_CTX_free(ctx);
  for (int i = 0; i < DELIVERY_TOKEN_HEX / 2; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[DELIVERY_TOKEN_HEX] = '\0';
}

/* Who asks for a module: the extension a valid capability token names. */
static int identify(void *arg, const struct admin_req *req, char *org,
                    size_t org_cap, char *tenant, size_t tenant_cap) {
  struct delivery *d = arg;
  const char *ext = req->query(req, "ext"), *tok = req->query(req, "t");
  const char *name = req->path + strlen(MODSERVE_PREFIX);
  char hex[65], want[DELIVERY_TOKEN_HEX + 1];
  const struct wasm_ext *e;
  int known = 0;

  if (d->secret == NULL || ext == NULL || tok == NULL ||
      strlen(name) != 64 + 5 || strcmp(name + 64, ".wasm") != 0)
    return 0;
  memcpy(hex, name, 64);
  hex[64] = '\0';
  token_of(d, ext, hex, want);
  if (strlen(tok) != DELIVERY_TOKEN_HEX ||
      CRYPTO_memcmp(tok, want, DELIVERY_TOKEN_HEX) != 0)
    return 0;
  pthread_mutex_lock(&d->cat_lock);
  e = d->cat != NULL ? catalog_ext_find(d->cat, ext) : NULL;
  if (e != NULL) {
    snprintf(org, org_cap, "%s", e->organization);
    snprintf(tenant, tenant_cap, "%s",
             e->n_allowed_in > 0 ? e->allowed_in[0] : "");
    known = 1;
  }
  pthread_mutex_unlock(&d->cat_lock);
  return known;
}

int delivery_new(const struct delivery_config *cfg, struct delivery **out,
                 struct xds_err *err) {
  struct resolver_config rc;
  struct delivery *d;
  int r;

  *out = NULL;
  d = xds_calloc(1, sizeof(*d));
  if (d == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  pthread_mutex_init(&d->cat_lock, NULL);
  d->base_url = xds_strdup(cfg->base_url);
  if (d->base_url == NULL) {
    r = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto fail;
  }
  if (cfg->token_secret_file != NULL &&
      (r = read_secret(cfg->token_secret_file, d, err)) < 0)
    goto fail;
  memset(&rc, 0, sizeof(rc));
  rc.cache_dir = cfg->cache_dir;
  rc.cache_max_bytes = cfg->cache_max_bytes;
  rc.pull_secrets_dir = cfg->pull_secrets_dir;
  rc.insecure_registries = cfg->insecure_registries;
  rc.allow_link_local = cfg->allow_link_local;
  rc.http_direct = cfg->direct;
  rc.always_interval_s = cfg->always_interval_s;
  rc.ca_file = cfg->ca_file;
  rc.workers = cfg->workers;
  rc.fetch_timeout_ms = cfg->fetch_timeout_ms;
  rc.backoff_max_ms = cfg->backoff_max_ms;
  rc.max_module_bytes = cfg->max_module_bytes;
  rc.on_change = cfg->on_change;
  rc.on_change_arg = cfg->on_change_arg;
  r = resolver_new(&rc, &d->res, err);
  if (r < 0)
    goto fail;
  d->ms.cache = resolver_cache(d->res);
  d->ms.resolver = d->res;
  d->ms.identify = identify;
  d->ms.identify_arg = d;
  *out = d;
  return 0;
fail:
  delivery_free(d);
  return r;
}

int delivery_metrics(struct delivery *d, struct xds_buf *out) {
  struct resolver_counts c;
  struct modcache *cache = resolver_cache(d->res);
  uint64_t cum = 0;
  int rc = 0;

  resolver_get_counts(d->res, &c);
  rc |= xds_buf_puts(out, "# HELP wasmxds_module_fetches_total Module pulls "
                          "(one per attempt) by result.\n"
                          "# TYPE wasmxds_module_fetches_total counter\n");
  for (int i = 0; i < RESOLVER_FETCH_RESULTS; i++)
    rc |= xds_buf_printf(out,
                         "wasmxds_module_fetches_total{result=\"%s\"} "
                         "%llu\n",
                         resolver_fetch_result_name(i),
                         (unsigned long long)c.fetches[i]);
  rc |= xds_buf_puts(out, "# HELP wasmxds_module_fetch_seconds Duration of "
                          "module pulls.\n"
                          "# TYPE wasmxds_module_fetch_seconds histogram\n");
  for (int i = 0; i < RESOLVER_FETCH_BUCKETS; i++) {
    cum += c.buckets[i];
    rc |= xds_buf_printf(out,
                         "wasmxds_module_fetch_seconds_bucket{le=\"%g\"} "
                         "%llu\n",
                         resolver_fetch_bounds[i], (unsigned long long)cum);
  }
  cum += c.buckets[RESOLVER_FETCH_BUCKETS];
  rc |= xds_buf_printf(out,
                       "wasmxds_module_fetch_seconds_bucket{le=\"+Inf\"} "
                       "%llu\nwasmxds_module_fetch_seconds_sum %.3f\n"
                       "wasmxds_module_fetch_seconds_count %llu\n",
                       (unsigned long long)cum, (double)c.sum_us / 1e6,
                       (unsigned long long)c.count);
  rc |= xds_buf_printf(
      out,
      "# HELP wasmxds_module_cache_bytes Bytes of modules in the cache.\n"
      "# TYPE wasmxds_module_cache_bytes gauge\n"
      "wasmxds_module_cache_bytes %llu\n"
      "# HELP wasmxds_module_cache_entries Modules in the cache.\n"
      "# TYPE wasmxds_module_cache_entries gauge\n"
      "wasmxds_module_cache_entries %zu\n"
      "# HELP wasmxds_module_cache_evictions_total Modules deleted from the "
      "cache to fit --module-cache-max-bytes.\n"
      "# TYPE wasmxds_module_cache_evictions_total counter\n"
      "wasmxds_module_cache_evictions_total %llu\n",
      (unsigned long long)modcache_bytes(cache), modcache_count(cache),
      (unsigned long long)modcache_evictions(cache));
  return rc < 0 ? XDS_ENOMEM : 0;
}

void delivery_free(struct delivery *d) {
  if (d == NULL)
    return;
  resolver_free(d->res);
  catalog_unref(d->cat);
  module_info_cleanup(&d->mi);
  xds_free(d->uri);
  xds_free(d->base_url);
  if (d->secret != NULL)
    OPENSSL_cleanse(d->secret, d->secret_len);
  xds_free(d->secret);
  pthread_mutex_destroy(&d->cat_lock);
  xds_free(d);
}

int delivery_update(struct delivery *d, struct catalog *cat) {
  size_t n = catalog_ext_count(cat);
  const struct wasm_ext **v = xds_calloc(n + 1, sizeof(*v));
  struct catalog *old;
  int rc;

  if (v == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++)
    v[i] = catalog_ext_at(cat, i);
  rc = resolver_update(d->res, v, n);
  xds_free(v);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&d->cat_lock);
  old = d->cat;
  d->cat = catalog_ref(cat);
  pthread_mutex_unlock(&d->cat_lock);
  catalog_unref(old);
  return 0;
}

long delivery_pending(struct delivery *d) {
  struct module_info mi;
  struct catalog *cat;
  long n = 0;

  pthread_mutex_lock(&d->cat_lock);
  cat = catalog_ref(d->cat);
  pthread_mutex_unlock(&d->cat_lock);
  for (size_t i = 0; cat != NULL && i < catalog_ext_count(cat); i++) {
    int rc;

    memset(&mi, 0, sizeof(mi));
    rc = resolver_lookup(d->res, catalog_ext_at(cat, i)->fqn, &mi);
    if (rc == XDS_ENOMEM) {
      catalog_unref(cat);
      return XDS_ENOMEM;
    }
    if (rc < 0 || (!mi.local && mi.state == MODULE_PENDING))
      n++;
    module_info_cleanup(&mi);
  }
  catalog_unref(cat);
  return n;
}

int delivery_lookup(struct delivery *d, const char *fqn,
                    struct module_info *out) {
  return resolver_lookup(d->res, fqn, out);
}

int delivery_module_unfetched(void *ctx, const struct wasm_ext *e,
                              struct encode_module *out) {
  const struct delivery_config *cfg = ctx;

  memset(out, 0, sizeof(*out));
  switch (resolver_route_of(e, cfg->direct)) {
  case RESOLVER_ROUTE_LOCAL:
    out->kind = ENCODE_MOD_LOCAL;
    return 0;
  case RESOLVER_ROUTE_DIRECT: /* as delivery_module_of with mi.direct */
    out->kind = ENCODE_MOD_REMOTE;
    out->uri = e->url;
    out->sha256 = e->sha256;
    return 0;
  case RESOLVER_ROUTE_FETCH:
    break;
  }
  out->kind = ENCODE_MOD_UNAVAILABLE;
  out->reason = DELIVERY_NOT_FETCHED;
  return 0;
}

int delivery_module_of(void *ctx, const struct wasm_ext *e,
                       struct encode_module *out) {
  struct delivery *d = ctx;
  char tok[DELIVERY_TOKEN_HEX + 1];
  int rc;

  memset(out, 0, sizeof(*out));
  module_info_cleanup(&d->mi);
  xds_free(d->uri);
  d->uri = NULL;
  rc = resolver_lookup(d->res, e->fqn, &d->mi);
  if (rc == XDS_ENOMEM)
    return rc;
  if (rc < 0) {
    out->kind = ENCODE_MOD_UNAVAILABLE;
    out->reason = "module not resolved yet";
    return 0;
  }
  if (d->mi.local) {
    out->kind = ENCODE_MOD_LOCAL;
    return 0;
  }
  if (d->mi.state != MODULE_READY) {
    out->kind = ENCODE_MOD_UNAVAILABLE;
    out->reason = d->mi.reason != NULL            ? d->mi.reason
                  : d->mi.state == MODULE_PENDING ? "module being fetched"
                                                  : "module fetch failed";
    return 0;
  }
  out->kind = ENCODE_MOD_REMOTE;
  out->sha256 = d->mi.sha256;
  out->root_id = d->mi.n_root_ids > 0 ? d->mi.root_ids[0] : NULL;
  if (d->mi.direct) {
    out->uri = e->url;
    return 0;
  }
  if (d->mi.is_private) {
    if (d->secret == NULL) {
      if (!d->warned_no_secret)
        XDS_LOGW("extension %s uses a private module, and without "
                 "--module-token-secret private modules are served to "
                 "no one: it gets its fail-strategy substitute",
                 e->fqn);
      d->warned_no_secret = 1;
      out->kind = ENCODE_MOD_UNAVAILABLE;
      out->reason = "private module and no --module-token-secret to "
                    "authorize proxies to fetch it";
      return 0;
    }
    token_of(d, e->fqn, d->mi.sha256, tok);
    d->uri = xds_asprintf("%s" MODSERVE_PREFIX "%s.wasm?ext=%s&t=%s",
                          d->base_url, d->mi.sha256, e->fqn, tok);
  } else {
    d->uri =
        xds_asprintf("%s" MODSERVE_PREFIX "%s.wasm", d->base_url, d->mi.sha256);
  }
  if (d->uri == NULL)
    return XDS_ENOMEM;
  out->uri = d->uri;
  return 0;
}

int delivery_handle(void *arg, const struct admin_req *req,
                    struct admin_resp *resp) {
  struct delivery *d = arg;

  return modserve_handle(&d->ms, req, resp);
}
