/*
 * check_modules_http.c: module fetching against a scripted HTTP server on
 * 127.0.0.1 (tests/helpers/origin): plain HTTP sources (ok, wrong sha256,
 * 404, timeout, redirect, gzip+tar, metadata address), last-good retention,
 * warm-cache restarts without network, a fake OCI registry with Bearer
 * tokens and pull secrets, tampered blobs; and the admin endpoint that
 * serves cached modules. Part of the "modules" suite (check_modules.c).
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/origin.h"
#include "modules/cache.h"
#include "modules/fetch.h"
#include "modules/resolver.h"
#include "modules/serve.h"
#include "server/admin/admin.h"

#define WAIT_MS 10000

static void test_config(struct resolver_config *cfg, const char *dir) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->cache_dir = dir;
  cfg->workers = 3;
  cfg->fetch_timeout_ms = 3000;
  cfg->backoff_base_ms = 100;
  cfg->backoff_max_ms = 400;
}

static void update(struct resolver *r, struct wasm_ext **x, size_t n) {
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, n), 0);
}

static void free_exts(struct wasm_ext **x, size_t n) {
  for (size_t i = 0; i < n; i++)
    wasm_ext_free(x[i]);
}

#define FQN(name) "organizations/org/extensions/" name

START_TEST(http_sources) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(5000, 7), *tar, *gz;
  char hex[65], other[65], dir[256], url[8][256];
  const char *names[] = {"plugin.wasm"};
  const void *data[1];
  size_t lens[] = {5000}, tar_len, gz_len;
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[8];
  struct module_info mi;
  struct xds_err err;

  mt_sha(m, 5000, hex);
  mt_sha("x", 1, other);
  data[0] = m;
  tar = mt_tar(names, data, lens, 1, &tar_len);
  gz = mt_gzip(tar, tar_len, &gz_len);
  origin_set(o, "/mod.wasm", 200, "application/wasm", m, 5000);
  origin_set(o, "/slow.wasm", 200, "application/wasm", m, 5000);
  origin_delay(o, "/slow.wasm", 4000);
  origin_set(o, "/r", 302, "text/plain", "", 0);
  snprintf(url[0], sizeof(url[0]), "%s/mod.wasm", origin_base(o));
  origin_header(o, "/r", "Location", url[0]);
  origin_set(o, "/mod.tgz", 200, "application/gzip", gz, gz_len);
  origin_set(o, "/notwasm", 200, "text/html", "<html>", 6);
  snprintf(url[1], sizeof(url[1]), "%s/missing.wasm", origin_base(o));
  snprintf(url[2], sizeof(url[2]), "%s/slow.wasm", origin_base(o));
  snprintf(url[3], sizeof(url[3]), "%s/r", origin_base(o));
  snprintf(url[4], sizeof(url[4]), "%s/mod.tgz", origin_base(o));
  snprintf(url[5], sizeof(url[5]), "http://169.254.169.254/latest/x.wasm");
  snprintf(url[6], sizeof(url[6]), "%s/notwasm", origin_base(o));
  x[0] = mt_ext("ok", url[0], hex, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[1] = mt_ext("wrongsha", url[0], other, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[2] = mt_ext("missing", url[1], NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[3] = mt_ext("slow", url[2], NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[4] = mt_ext("redirect", url[3], NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[5] = mt_ext("tgz", url[4], NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[6] = mt_ext("metadata", url[5], NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[7] = mt_ext("notwasm", url[6], NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.fetch_timeout_ms = 700;
  cfg.workers = 8;
  ck_assert_int_eq(resolver_new(&cfg, &r, &err), 0);
  update(r, x, 8);

  ck_assert(mt_wait(r, FQN("ok"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, hex);
  ck_assert_uint_eq(mi.size, 5000);
  ck_assert(!mi.stale);
  module_info_cleanup(&mi);
  ck_assert(modcache_has(resolver_cache(r), hex, NULL));

  ck_assert(mt_wait(r, FQN("wrongsha"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_ptr_nonnull(strstr(mi.reason, "does not match"));
  ck_assert_str_eq(mi.sha256, "");
  module_info_cleanup(&mi);

  ck_assert(mt_wait(r, FQN("missing"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_ptr_nonnull(strstr(mi.reason, "HTTP 404"));
  module_info_cleanup(&mi);

  ck_assert(mt_wait(r, FQN("slow"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strcasestr(mi.reason, "timeout") != NULL, "%s", mi.reason);
  module_info_cleanup(&mi);

  ck_assert(mt_wait(r, FQN("redirect"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);

  ck_assert(mt_wait(r, FQN("tgz"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);

  ck_assert(mt_wait(r, FQN("metadata"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "refused") != NULL, "%s", mi.reason);
  module_info_cleanup(&mi);

  ck_assert(mt_wait(r, FQN("notwasm"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_ptr_nonnull(strstr(mi.reason, "not a Wasm binary"));
  module_info_cleanup(&mi);

  ck_assert_int_eq(resolver_lookup(r, FQN("nope"), &mi), XDS_ENOTFOUND);
  resolver_free(r);
  origin_stop(o);
  free_exts(x, 8);
  mt_rmrf(dir);
  xds_free(m);
  xds_free(tar);
  xds_free(gz);
}
END_TEST

static void count_change(void *arg) {
  __atomic_add_fetch((int *)arg, 1, 0);
}

START_TEST(last_good_is_kept) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(2000, 9);
  char hex[65], dir[256], url[256];
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[1];
  struct module_info mi;
  int changes = 0;

  mt_sha(m, 2000, hex);
  origin_set(o, "/m.wasm", 200, "application/wasm", m, 2000);
  snprintf(url, sizeof(url), "%s/m.wasm", origin_base(o));
  x[0] = mt_ext("always", url, NULL, NULL, WASM_PULL_ALWAYS, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.always_interval_s = 1;
  cfg.on_change = count_change;
  cfg.on_change_arg = &changes;
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 1);
  ck_assert(mt_wait(r, FQN("always"), MODULE_READY, 1, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);
  ck_assert_int_ge(__atomic_load_n(&changes, 0), 1);
  /* The origin breaks: the re-resolution fails, the module stays. */
  origin_set(o, "/m.wasm", 503, "text/plain", "down", 4);
  for (int i = 0; i < 300; i++) {
    ck_assert_int_eq(resolver_lookup(r, FQN("always"), &mi), 0);
    if (mi.stale)
      break;
    module_info_cleanup(&mi);
    usleep(20000);
  }
  ck_assert_int_eq(mi.state, MODULE_READY);
  ck_assert(mi.stale);
  ck_assert_str_eq(mi.sha256, hex);
  ck_assert_ptr_nonnull(strstr(mi.reason, "HTTP 503"));
  module_info_cleanup(&mi);
  ck_assert(modcache_has(resolver_cache(r), hex, NULL));
  /* The origin recovers with new bytes: Always picks them up. */
  {
    unsigned char *m2 = mt_wasm(2100, 10);
    char hex2[65];

    mt_sha(m2, 2100, hex2);
    origin_set(o, "/m.wasm", 200, "application/wasm", m2, 2100);
    for (int i = 0; i < 300; i++) {
      ck_assert_int_eq(resolver_lookup(r, FQN("always"), &mi), 0);
      if (strcmp(mi.sha256, hex2) == 0)
        break;
      module_info_cleanup(&mi);
      usleep(20000);
    }
    ck_assert_str_eq(mi.sha256, hex2);
    ck_assert(!mi.stale);
    module_info_cleanup(&mi);
    xds_free(m2);
  }
  resolver_free(r);
  origin_stop(o);
  free_exts(x, 1);
  mt_rmrf(dir);
  xds_free(m);
}
END_TEST

START_TEST(warm_restart_http) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(3000, 11);
  char hex[65], dir[256], url[256], url2[256];
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[2];
  struct module_info mi;

  mt_sha(m, 3000, hex);
  origin_set(o, "/v1.wasm", 200, "application/wasm", m, 3000);
  snprintf(url, sizeof(url), "%s/v1.wasm", origin_base(o));
  snprintf(url2, sizeof(url2), "%s/elsewhere.wasm", origin_base(o));
  x[0] = mt_ext("ifnp", url, NULL, NULL, WASM_PULL_IF_NOT_PRESENT, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 1);
  ck_assert(mt_wait(r, FQN("ifnp"), MODULE_READY, 0, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  resolver_free(r);
  ck_assert_int_ge(origin_hits(o, NULL), 1);
  origin_reset_hits(o);

  /* Restart on the same cache: READY before resolver_update returns, and
   * no request for it at all; a sha256-pinned extension at another URL is
   * not answered by the cached copy: its own URL is asked (and 404s). */
  x[1] = mt_ext("pinned", url2, hex, NULL, WASM_PULL_IF_NOT_PRESENT, NULL);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 2);
  ck_assert_int_eq(resolver_lookup(r, FQN("ifnp"), &mi), 0);
  ck_assert_int_eq(mi.state, MODULE_READY);
  ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("pinned"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_ptr_nonnull(strstr(mi.reason, "HTTP 404"));
  module_info_cleanup(&mi);
  ck_assert_int_eq(origin_hits(o, "/v1.wasm"), 0);
  ck_assert_int_ge(origin_hits(o, NULL), 1); /* the 404 of elsewhere */
  resolver_free(r);
  origin_stop(o);
  free_exts(x, 2);
  mt_rmrf(dir);
  xds_free(m);
}
END_TEST

/* The result for an extension pinned by sha256 depends on the store and
 * on what its URL serves, never on what the cache happens to hold (issue
 * 14 item 4): a URL serving other bytes is refused on a cold cache and on
 * a warm one that holds a module with that digest for another extension;
 * a URL serving the right bytes is fetched once, then answered from the
 * cache across restarts. */
static void pinned_states(const char *dir, struct wasm_ext **x, size_t n,
                          int warm_ok) {
  struct resolver_config cfg;
  struct resolver *r;
  struct module_info mi;

  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, n);
  /* "evil" is never READY, whatever order the workers take. */
  ck_assert_int_eq(resolver_lookup(r, FQN("evil"), &mi), 0);
  ck_assert_int_ne(mi.state, MODULE_READY);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("evil"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "does not match") != NULL, "%s", mi.reason);
  module_info_cleanup(&mi);
  if (warm_ok) {
    ck_assert(mt_wait(r, FQN("copy"), MODULE_READY, 0, WAIT_MS, &mi));
    module_info_cleanup(&mi);
  }
  resolver_free(r);
}

START_TEST(pinned_sha_is_checked_against_its_own_url) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(2500, 21), *evil = mt_wasm(2500, 22);
  char hex[65], dir[256], cold[256], url[3][256];
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[3];
  struct module_info mi;

  mt_sha(m, 2500, hex);
  origin_set(o, "/good.wasm", 200, "application/wasm", m, 2500);
  origin_set(o, "/evil.wasm", 200, "application/wasm", evil, 2500);
  origin_set(o, "/copy.wasm", 200, "application/wasm", m, 2500);
  snprintf(url[0], sizeof(url[0]), "%s/good.wasm", origin_base(o));
  snprintf(url[1], sizeof(url[1]), "%s/evil.wasm", origin_base(o));
  snprintf(url[2], sizeof(url[2]), "%s/copy.wasm", origin_base(o));
  x[0] = mt_ext("good", url[0], hex, NULL, WASM_PULL_IF_NOT_PRESENT, NULL);
  x[1] = mt_ext("evil", url[1], hex, NULL, WASM_PULL_IF_NOT_PRESENT, NULL);
  x[2] = mt_ext("copy", url[2], hex, NULL, WASM_PULL_IF_NOT_PRESENT, NULL);
  mt_tmpdir(dir, sizeof(dir));
  mt_tmpdir(cold, sizeof(cold));
  /* Warm the cache with the module of "good" alone. */
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 1);
  ck_assert(mt_wait(r, FQN("good"), MODULE_READY, 0, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  resolver_free(r);
  /* Cold cache and warm cache give the same answer for "evil". */
  pinned_states(cold, x + 1, 1, 0);
  origin_reset_hits(o);
  pinned_states(dir, x, 3, 1);
  ck_assert_int_ge(origin_hits(o, "/evil.wasm"), 1);
  ck_assert_int_ge(origin_hits(o, "/copy.wasm"), 1);
  /* Once fetched through its own URL, "copy" is answered by the cache. */
  origin_reset_hits(o);
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x + 2, 1);
  ck_assert_int_eq(resolver_lookup(r, FQN("copy"), &mi), 0);
  ck_assert_int_eq(mi.state, MODULE_READY);
  ck_assert_str_eq(mi.sha256, hex);
  module_info_cleanup(&mi);
  resolver_free(r);
  ck_assert_int_eq(origin_hits(o, NULL), 0);
  origin_stop(o);
  free_exts(x, 3);
  mt_rmrf(dir);
  mt_rmrf(cold);
  xds_free(m);
  xds_free(evil);
}
END_TEST

/* Sends this process's stderr to a new temporary file; returns the saved
 * descriptor for stderr_restore. */
static int stderr_capture(char *path, size_t cap) {
  int fd, saved;

  snprintf(path, cap, "/tmp/wasmxds-log-XXXXXX");
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  saved = dup(2);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_eq(dup2(fd, 2), 2);
  close(fd);
  return saved;
}

/* Restores stderr and reads what was captured into out (initialised by
 * the caller); removes the file. */
static void stderr_restore(int saved, const char *path, struct xds_buf *out) {
  char chunk[4096];
  size_t n;
  FILE *f;

  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    ck_assert_int_eq(xds_buf_append(out, chunk, n), 0);
  fclose(f);
  unlink(path);
}

/* Lines of log holding both needles. */
static int count_lines(const struct xds_buf *log, const char *a,
                       const char *b) {
  const char *p = log->data;
  int n = 0;

  while (p != NULL && *p != '\0') {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char line[4096];

    snprintf(line, sizeof(line), "%.*s", (int)len, p);
    if (strstr(line, a) != NULL && strstr(line, b) != NULL)
      n++;
    p = nl ? nl + 1 : NULL;
  }
  return n;
}

/* Polls until fqn's reason holds needle and, when sha is not NULL, its
 * module is sha and not stale. */
static void wait_reason(struct resolver *r, const char *fqn, const char *needle,
                        const char *sha) {
  struct module_info mi;

  for (int i = 0; i < 500; i++) {
    ck_assert_int_eq(resolver_lookup(r, fqn, &mi), 0);
    if (sha != NULL ? strcmp(mi.sha256, sha) == 0 && !mi.stale
                    : mi.reason != NULL && strstr(mi.reason, needle) != NULL) {
      module_info_cleanup(&mi);
      return;
    }
    module_info_cleanup(&mi);
    usleep(10000);
  }
  ck_abort_msg("%s never reached %s", fqn, sha ? sha : needle);
}

/* Under Always, a re-resolution that finds the same module is neither
 * logged nor a change (issue 14 item 10); a new module is both. The same
 * failure repeated is logged once per RESOLVER_LOG_REPEAT_MS and is a
 * change once; another error is logged at once. */
START_TEST(always_logs_changes_only) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(1500, 31), *m2 = mt_wasm(1600, 32);
  char hex2[65], dir[256], url[256], logf[64];
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[1];
  struct module_info mi;
  struct xds_buf log;
  int saved, changes = 0, before_503;

  mt_sha(m2, 1600, hex2);
  origin_set(o, "/a.wasm", 200, "application/wasm", m, 1500);
  snprintf(url, sizeof(url), "%s/a.wasm", origin_base(o));
  x[0] = mt_ext("always", url, NULL, NULL, WASM_PULL_ALWAYS, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.always_interval_s = 1;
  cfg.on_change = count_change;
  cfg.on_change_arg = &changes;
  saved = stderr_capture(logf, sizeof(logf));
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 1);
  /* The first resolution and two unchanged re-resolutions. */
  ck_assert(mt_wait(r, FQN("always"), MODULE_READY, 3, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  /* The same failure again and again (backoff 100..400 ms). */
  before_503 = __atomic_load_n(&changes, 0);
  origin_set(o, "/a.wasm", 503, "text/plain", "down", 4);
  wait_reason(r, FQN("always"), "HTTP 503", NULL);
  ck_assert(mt_wait(r, FQN("always"), MODULE_READY, 9, WAIT_MS, &mi));
  ck_assert(mi.stale);
  module_info_cleanup(&mi);
  ck_assert_int_eq(__atomic_load_n(&changes, 0) - before_503, 1);
  /* Another error, then a recovery with new bytes. */
  origin_set(o, "/a.wasm", 404, "text/plain", "gone", 4);
  wait_reason(r, FQN("always"), "HTTP 404", NULL);
  origin_set(o, "/a.wasm", 200, "application/wasm", m2, 1600);
  wait_reason(r, FQN("always"), NULL, hex2);
  resolver_free(r);
  xds_buf_init(&log, 1 << 20);
  stderr_restore(saved, logf, &log);
  ck_assert_msg(count_lines(&log, FQN("always"), "-> sha256:") == 2, "%s",
                log.data);
  ck_assert_msg(count_lines(&log, FQN("always"), "HTTP 503") == 1, "%s",
                log.data);
  ck_assert_msg(count_lines(&log, FQN("always"), "HTTP 404") == 1, "%s",
                log.data);
  xds_buf_cleanup(&log);
  origin_stop(o);
  free_exts(x, 1);
  mt_rmrf(dir);
  xds_free(m);
  xds_free(m2);
}
END_TEST

/* ---- a fake registry on the origin ---------------------------------- */

#define MT_SOLO_CONFIG "application/vnd.module.wasm.config.v1+json"
#define MT_SOLO_LAYER "application/vnd.module.wasm.content.layer.v1+wasm"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"

/* Puts a solo "oci" variant image at /v2/<repo>/ under tag, returning the
 * manifest's digest. */
static void fake_image(struct origin *o, const char *repo, const char *tag,
                       const unsigned char *m, size_t len,
                       const unsigned char *served, char *mhex) {
  const char *cfg = "{\"type\":\"envoy_proxy\",\"abiVersions\":[\"v0.2.1\"],"
                    "\"config\":{\"rootIds\":[\"auth_root\"]}}";
  char chex[65], lhex[65], path[512], man[2048];

  mt_sha(cfg, strlen(cfg), chex);
  mt_sha(m, len, lhex);
  snprintf(man, sizeof(man),
           "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
           "\"config\":{\"mediaType\":\"" MT_SOLO_CONFIG "\","
           "\"digest\":\"sha256:%s\",\"size\":%zu},"
           "\"layers\":[{\"mediaType\":\"" MT_SOLO_LAYER "\","
           "\"digest\":\"sha256:%s\",\"size\":%zu}]}",
           chex, strlen(cfg), lhex, len);
  mt_sha(man, strlen(man), mhex);
  snprintf(path, sizeof(path), "/v2/%s/blobs/sha256:%s", repo, chex);
  origin_set(o, path, 200, "application/octet-stream", cfg, strlen(cfg));
  snprintf(path, sizeof(path), "/v2/%s/blobs/sha256:%s", repo, lhex);
  origin_set(o, path, 200, "application/octet-stream", served, len);
  snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, tag);
  origin_set(o, path, 200, MT_OCI_MANIFEST, man, strlen(man));
  snprintf(path, sizeof(path), "/v2/%s/manifests/sha256:%s", repo, mhex);
  origin_set(o, path, 200, MT_OCI_MANIFEST, man, strlen(man));
}

START_TEST(fake_registry_bearer_and_secrets) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(4000, 12);
  char hex[65], mhex[65], dir[256], secrets[256], path[512], url[512],
      url_d[512], challenge[512], json[512];
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[3];
  struct module_info mi;

  mt_sha(m, 4000, hex);
  fake_image(o, "team/auth", "v1", m, 4000, m, mhex);
  origin_set(o, "/token", 200, "application/json",
             "{\"token\":\"tok-123\",\"expires_in\":300}", 36);
  snprintf(challenge, sizeof(challenge),
           "Bearer realm=\"%s/token\",service=\"fake\","
           "scope=\"repository:team/auth:pull\"",
           origin_base(o));
  origin_require(o, "/v2/", "Bearer tok-123", challenge);
  origin_require(o, "/token", "Basic dTpw", "Basic realm=\"fake\"");
  mt_tmpdir(secrets, sizeof(secrets));
  snprintf(path, sizeof(path), "%s/regcred.json", secrets);
  snprintf(json, sizeof(json),
           "{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"dTpw\"}}}",
           origin_port(o));
  ck_assert_int_eq(mt_write_file(path, json, strlen(json)), 0);
  snprintf(path, sizeof(path), "%s/wrong.json", secrets);
  snprintf(json, sizeof(json),
           "{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"dTp4\"}}}",
           origin_port(o));
  ck_assert_int_eq(mt_write_file(path, json, strlen(json)), 0);
  snprintf(url, sizeof(url), "oci://127.0.0.1:%d/team/auth:v1", origin_port(o));
  snprintf(url_d, sizeof(url_d), "oci://127.0.0.1:%d/team/auth@sha256:%s",
           origin_port(o), mhex);
  x[0] = mt_ext("secret", url, NULL, "regcred", WASM_PULL_IF_NOT_PRESENT,
                "organizations/org/tenants/t1");
  x[1] = mt_ext("anon", url_d, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[2] = mt_ext("wrong", url, NULL, "wrong", WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.pull_secrets_dir = secrets;
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 3);
  ck_assert(mt_wait(r, FQN("secret"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, hex);
  ck_assert_uint_eq(mi.n_root_ids, 1);
  ck_assert_str_eq(mi.root_ids[0], "auth_root");
  ck_assert(mi.is_private);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("anon"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "anonymous") != NULL, "%s", mi.reason);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("wrong"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "refused") != NULL, "%s", mi.reason);
  ck_assert_ptr_null(strstr(mi.reason, "dTp"));
  module_info_cleanup(&mi);
  /* Tenancy: only the referencing extension's tenants see it. */
  ck_assert(
      resolver_module_allowed(r, hex, "org", "organizations/org/tenants/t1"));
  ck_assert(
      !resolver_module_allowed(r, hex, "org", "organizations/org/tenants/t2"));
  ck_assert(!resolver_module_allowed(r, hex, "other", NULL));
  ck_assert(!resolver_module_allowed(r, hex, NULL, NULL));
  resolver_free(r);

  /* Warm restart: the IfNotPresent tag needs no request. */
  origin_reset_hits(o);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  update(r, x, 1);
  ck_assert_int_eq(resolver_lookup(r, FQN("secret"), &mi), 0);
  ck_assert_int_eq(mi.state, MODULE_READY);
  ck_assert_str_eq(mi.sha256, hex);
  ck_assert_str_eq(mi.root_ids[0], "auth_root");
  module_info_cleanup(&mi);
  usleep(300000);
  ck_assert_int_eq(origin_hits(o, NULL), 0);
  resolver_free(r);
  origin_stop(o);
  free_exts(x, 3);
  mt_rmrf(dir);
  mt_rmrf(secrets);
  xds_free(m);
}
END_TEST

START_TEST(fake_registry_tampered) {
  struct origin *o = origin_start();
  unsigned char *m = mt_wasm(4000, 13), *evil = mt_wasm(4000, 14);
  char mhex[65], dir[256], url[512], path[512];
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[2];
  struct module_info mi;

  fake_image(o, "bad/blob", "v1", m, 4000, evil, mhex);
  fake_image(o, "bad/manifest", "v1", m, 4000, m, mhex);
  snprintf(path, sizeof(path), "/v2/bad/manifest/manifests/v1");
  origin_header(o, path, "Docker-Content-Digest",
                "sha256:0000000000000000000000000000000000000000000000000000"
                "000000000000");
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  snprintf(url, sizeof(url), "oci://127.0.0.1:%d/bad/blob:v1", origin_port(o));
  x[0] = mt_ext("blob", url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  snprintf(url, sizeof(url), "oci://127.0.0.1:%d/bad/manifest:v1",
           origin_port(o));
  x[1] = mt_ext("manifest", url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  update(r, x, 2);
  ck_assert(mt_wait(r, FQN("blob"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "content has digest") != NULL, "%s",
                mi.reason);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("manifest"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "Docker-Content-Digest") != NULL, "%s",
                mi.reason);
  module_info_cleanup(&mi);
  ck_assert_uint_eq(modcache_count(resolver_cache(r)), 0);
  resolver_free(r);
  origin_stop(o);
  free_exts(x, 2);
  mt_rmrf(dir);
  xds_free(m);
  xds_free(evil);
}
END_TEST

/* Every redirect hop obeys the URL rules before anything connects to it
 * (issue 13 item 3): no credentials in the URL, http/https only, no
 * metadata address however it is written; at most max_redirects hops; a
 * request's Authorization goes to its own origin only. */
static int run_get(const char *url, const char *const *headers,
                   struct fetch_resp *resp, struct xds_err *err) {
  struct fetch_policy pol;
  struct fetch_req req;

  memset(&pol, 0, sizeof(pol));
  pol.timeout_ms = 3000;
  pol.max_redirects = 5;
  memset(&req, 0, sizeof(req));
  req.url = url;
  req.headers = headers;
  req.max_body = 1 << 20;
  memset(err, 0, sizeof(*err));
  return fetch_run(&pol, &req, resp, err);
}

static void redirect(struct origin *o, const char *path, const char *to) {
  origin_set(o, path, 302, "text/plain", "", 0);
  origin_header(o, path, "Location", to);
}

START_TEST(redirect_every_hop_checked) {
  struct origin *o = origin_start(), *o2 = origin_start();
  const char *const bearer[] = {"Authorization: Bearer t0k", NULL};
  struct fetch_resp resp;
  struct xds_err err;
  char loc[512], url[512];

  ck_assert_int_eq(fetch_global_init(), 0);
  origin_set(o, "/target", 200, "text/plain", "ok", 2);
  /* Credentials in a redirect's URL: refused before connecting. */
  snprintf(loc, sizeof(loc), "http://user:s3cret@127.0.0.1:%d/target",
           origin_port(o));
  redirect(o, "/to-creds", loc);
  snprintf(url, sizeof(url), "%s/to-creds", origin_base(o));
  ck_assert_int_eq(run_get(url, NULL, &resp, &err), XDS_EINVAL);
  ck_assert_msg(strstr(err.msg, "credentials") != NULL, "%s", err.msg);
  ck_assert_ptr_null(strstr(err.msg, "s3cret"));
  ck_assert_int_eq(origin_hits(o, "/target"), 0);
  fetch_resp_cleanup(&resp);
  /* A password alone counts too. */
  snprintf(loc, sizeof(loc), "http://:s3cret@127.0.0.1:%d/target",
           origin_port(o));
  redirect(o, "/to-pass", loc);
  snprintf(url, sizeof(url), "%s/to-pass", origin_base(o));
  ck_assert_int_eq(run_get(url, NULL, &resp, &err), XDS_EINVAL);
  ck_assert_int_eq(origin_hits(o, "/target"), 0);
  fetch_resp_cleanup(&resp);
  /* Another scheme. */
  redirect(o, "/to-file", "file:///etc/passwd");
  snprintf(url, sizeof(url), "%s/to-file", origin_base(o));
  ck_assert_int_eq(run_get(url, NULL, &resp, &err), XDS_EINVAL);
  ck_assert_msg(strstr(err.msg, "only http and https") != NULL, "%s", err.msg);
  fetch_resp_cleanup(&resp);
  /* A metadata address through NAT64: refused, nothing attempted. */
  redirect(o, "/to-nat64", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/");
  snprintf(url, sizeof(url), "%s/to-nat64", origin_base(o));
  ck_assert_int_eq(run_get(url, NULL, &resp, &err), XDS_EPERM);
  ck_assert_msg(strstr(err.msg, "refused") != NULL, "%s", err.msg);
  fetch_resp_cleanup(&resp);
  /* A loop: the first request and 5 redirects, then an error. */
  redirect(o, "/loop", "/loop");
  snprintf(url, sizeof(url), "%s/loop", origin_base(o));
  ck_assert_int_eq(run_get(url, NULL, &resp, &err), XDS_EIO);
  ck_assert_msg(strstr(err.msg, "more than 5 redirects") != NULL, "%s",
                err.msg);
  ck_assert_int_eq(origin_hits(o, "/loop"), 6);
  fetch_resp_cleanup(&resp);
  /* A relative redirect that is fine. */
  redirect(o, "/rel", "target");
  snprintf(url, sizeof(url), "%s/rel", origin_base(o));
  ck_assert_int_eq(run_get(url, NULL, &resp, &err), 0);
  ck_assert_int_eq(resp.status, 200);
  ck_assert_uint_eq(resp.body.len, 2);
  ck_assert(memcmp(resp.body.data, "ok", 2) == 0);
  fetch_resp_cleanup(&resp);
  /* Authorization follows a redirect within the origin, not to another. */
  origin_set(o, "/private", 200, "text/plain", "mine", 4);
  origin_require(o, "/private", "Bearer t0k", "Bearer realm=\"x\"");
  origin_set(o2, "/private", 200, "text/plain", "mine", 4);
  origin_require(o2, "/private", "Bearer t0k", "Bearer realm=\"x\"");
  redirect(o, "/to-private", "/private");
  snprintf(url, sizeof(url), "%s/to-private", origin_base(o));
  ck_assert_int_eq(run_get(url, bearer, &resp, &err), 0);
  ck_assert_int_eq(resp.status, 200);
  fetch_resp_cleanup(&resp);
  snprintf(loc, sizeof(loc), "%s/private", origin_base(o2));
  redirect(o, "/to-other", loc);
  snprintf(url, sizeof(url), "%s/to-other", origin_base(o));
  ck_assert_int_eq(run_get(url, bearer, &resp, &err), 0);
  ck_assert_int_eq(resp.status, 401);
  ck_assert_int_eq(origin_hits(o2, "/private"), 1);
  fetch_resp_cleanup(&resp);
  origin_stop(o);
  origin_stop(o2);
}
END_TEST

TCase *modules_http_tcase(void) {
  TCase *tc = tcase_create("http");

  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, http_sources);
  tcase_add_test(tc, last_good_is_kept);
  tcase_add_test(tc, warm_restart_http);
  tcase_add_test(tc, pinned_sha_is_checked_against_its_own_url);
  tcase_add_test(tc, always_logs_changes_only);
  tcase_add_test(tc, fake_registry_bearer_and_secrets);
  tcase_add_test(tc, fake_registry_tampered);
  tcase_add_test(tc, redirect_every_hop_checked);
  return tc;
}

/* ---- the admin endpoint ---------------------------------------------- */

struct got {
  long status;
  struct xds_buf body;
  char ctype[128], etag[128], clen[32];
};

static size_t got_body(char *p, size_t s, size_t n, void *ud) {
  struct got *g = ud;

  xds_buf_append(&g->body, p, s * n);
  return s * n;
}

static void hdr_copy(const char *line, size_t len, const char *name, char *dst,
                     size_t cap) {
  size_t nl = strlen(name);

  if (len > nl + 2 && strncasecmp(line, name, nl) == 0 && line[nl] == ':')
    snprintf(dst, cap, "%.*s", (int)(len - nl - 4), line + nl + 2);
}

static size_t got_header(char *p, size_t s, size_t n, void *ud) {
  struct got *g = ud;

  hdr_copy(p, s * n, "Content-Type", g->ctype, sizeof(g->ctype));
  hdr_copy(p, s * n, "ETag", g->etag, sizeof(g->etag));
  hdr_copy(p, s * n, "Content-Length", g->clen, sizeof(g->clen));
  return s * n;
}

static void get(int port, const char *method, const char *path,
                const char *header, struct got *g) {
  CURL *c = curl_easy_init();
  struct curl_slist *hl = NULL;
  char url[512];

  memset(g, 0, sizeof(*g));
  xds_buf_init(&g->body, 64u << 20);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (header != NULL) {
    hl = curl_slist_append(hl, header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, got_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, got_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, g);
  ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
}

static int test_identify(void *arg, const struct admin_req *req, char *org,
                         size_t org_cap, char *tenant, size_t tenant_cap) {
  const char *t = req->header(req, "X-Test-Tenant");

  (void)arg;
  if (t == NULL)
    return 0;
  snprintf(org, org_cap, "org");
  snprintf(tenant, tenant_cap, "%s", t);
  return 1;
}

START_TEST(admin_serves_modules) {
  unsigned char *m = mt_wasm(300000, 21), *p = mt_wasm(1000, 22);
  char hex[65], phex[65], dir[256], path[256], inm[128], got_hex[65];
  struct modcache *c;
  struct resolver_config cfg;
  struct resolver *r;
  struct admin_config acfg;
  struct admin *a;
  struct modserve ms;
  struct wasm_ext *x[1];
  struct module_info mi;
  struct xds_err err;
  struct got g;
  int port;

  mt_sha(m, 300000, hex);
  mt_sha(p, 1000, phex);
  mt_tmpdir(dir, sizeof(dir));
  /* A public module, and a private one this extension fetched with its
   * pull secret (as a previous run would have left them). */
  ck_assert_int_eq(modcache_open(dir, 0, &c, &err), 0);
  ck_assert_int_eq(modcache_put(c, hex, m, 300000, NULL, 0, 0, &err), 0);
  ck_assert_int_eq(modcache_put(c, phex, p, 1000, NULL, 0, 1, &err), 0);
  ck_assert_int_eq(
      modcache_resolution_put(c, "oci://r.example/p:1\nregcred", phex, NULL),
      0);
  modcache_free(c);
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, &err), 0);
  x[0] = mt_ext("private", "oci://r.example/p:1", phex, "regcred",
                WASM_PULL_IF_NOT_PRESENT, "organizations/org/tenants/t1");
  update(r, x, 1);
  ck_assert_int_eq(resolver_lookup(r, FQN("private"), &mi), 0);
  ck_assert_int_eq(mi.state, MODULE_READY);
  module_info_cleanup(&mi);

  memset(&acfg, 0, sizeof(acfg));
  acfg.listen = "127.0.0.1:0";
  ck_assert_int_eq(admin_new(&acfg, &a, &err), 0);
  memset(&ms, 0, sizeof(ms));
  ms.cache = resolver_cache(r);
  ms.resolver = r;
  ms.identify = test_identify;
  ck_assert_int_eq(
      admin_route(a, MODSERVE_PREFIX, "GET,HEAD", modserve_handle, &ms), 0);
  ck_assert_int_eq(admin_start(a, &err), 0);
  ck_assert_int_eq(admin_route(a, "/late", NULL, modserve_handle, &ms),
                   XDS_EINVAL);
  port = admin_port(a);
  ck_assert_int_gt(port, 0);

  snprintf(path, sizeof(path), MODSERVE_PREFIX "%s.wasm", hex);
  get(port, "GET", path, NULL, &g);
  ck_assert_int_eq(g.status, 200);
  ck_assert_uint_eq(g.body.len, 300000);
  mt_sha(g.body.data, g.body.len, got_hex);
  ck_assert_str_eq(got_hex, hex);
  ck_assert_str_eq(g.ctype, "application/wasm");
  ck_assert_str_eq(g.clen, "300000");
  snprintf(inm, sizeof(inm), "\"%s\"", hex);
  ck_assert_str_eq(g.etag, inm);
  xds_buf_cleanup(&g.body);

  get(port, "HEAD", path, NULL, &g);
  ck_assert_int_eq(g.status, 200);
  ck_assert_str_eq(g.clen, "300000");
  ck_assert_uint_eq(g.body.len, 0);
  xds_buf_cleanup(&g.body);

  snprintf(inm, sizeof(inm), "If-None-Match: W/\"abc\", \"%s\"", hex);
  get(port, "GET", path, inm, &g);
  ck_assert_int_eq(g.status, 304);
  ck_assert_uint_eq(g.body.len, 0);
  xds_buf_cleanup(&g.body);

  get(port, "POST", path, NULL, &g);
  ck_assert_int_eq(g.status, 405);
  xds_buf_cleanup(&g.body);

  snprintf(path, sizeof(path), MODSERVE_PREFIX "%064d.wasm", 0);
  get(port, "GET", path, NULL, &g);
  ck_assert_int_eq(g.status, 404);
  xds_buf_cleanup(&g.body);
  get(port, "GET", MODSERVE_PREFIX "../../etc/passwd", NULL, &g);
  ck_assert_int_eq(g.status, 404);
  xds_buf_cleanup(&g.body);
  get(port, "GET", "/elsewhere", NULL, &g);
  ck_assert_int_eq(g.status, 404);
  xds_buf_cleanup(&g.body);

  /* The private module: only for tenant t1 of org. */
  snprintf(path, sizeof(path), MODSERVE_PREFIX "%s.wasm", phex);
  get(port, "GET", path, NULL, &g);
  ck_assert_int_eq(g.status, 403);
  xds_buf_cleanup(&g.body);
  get(port, "GET", path, "X-Test-Tenant: organizations/org/tenants/t2", &g);
  ck_assert_int_eq(g.status, 403);
  xds_buf_cleanup(&g.body);
  get(port, "GET", path, "X-Test-Tenant: organizations/org/tenants/t1", &g);
  ck_assert_int_eq(g.status, 200);
  ck_assert_uint_eq(g.body.len, 1000);
  xds_buf_cleanup(&g.body);

  admin_free(a);
  resolver_free(r);
  free_exts(x, 1);
  mt_rmrf(dir);
  xds_free(m);
  xds_free(p);
}
END_TEST

START_TEST(admin_limits) {
  struct admin_config acfg;
  struct admin *a;
  struct xds_err err;

  memset(&acfg, 0, sizeof(acfg));
  acfg.listen = "nonsense";
  ck_assert_int_eq(admin_new(&acfg, &a, &err), XDS_EINVAL);
  acfg.listen = "127.0.0.1:0";
  ck_assert_int_eq(admin_new(&acfg, &a, &err), 0);
  ck_assert_int_eq(admin_route(a, "nope", NULL, modserve_handle, NULL),
                   XDS_EINVAL);
  admin_free(a);
  admin_free(NULL);
}
END_TEST

TCase *modules_admin_tcase(void) {
  TCase *tc = tcase_create("admin");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, admin_serves_modules);
  tcase_add_test(tc, admin_limits);
  return tc;
}
