/*
 * modules_bench.c: serving one cached 2 MiB module to many concurrent HTTP
 * fetchers through the admin server (GET /modules/sha256/<hex>.wasm), all
 * on 127.0.0.1. Not a test: `make bench-modules` builds and runs it.
 *
 * Usage: modules_bench [CLIENTS [REQUESTS_PER_CLIENT [MODULE_BYTES
 *                      [ADMIN_THREADS]]]]
 * (defaults 200, 10, 2 MiB, the admin default). Each client is a thread
 * with its own keep-alive libcurl handle; all start together at a barrier.
 * Prints throughput and latency percentiles per request.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_args.h"
#include "base/alloc.h"
#include "modules/cache.h"
#include "modules/serve.h"
#include "server/admin/admin.h"
#include "tests/helpers/modtest.h"

struct client {
  pthread_t t;
  int n;
  const char *url;
  size_t expect;
  double *lat; /* seconds, n entries */
  size_t bytes;
  int errors;
  size_t got;
};

static pthread_barrier_t start;

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  struct client *c = ud;

  (void)p;
  c->got += s * n;
  return s * n;
}

static void *run(void *arg) {
  struct client *c = arg;
  CURL *h = curl_easy_init();

  curl_easy_setopt(h, CURLOPT_URL, c->url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
  pthread_barrier_wait(&start);
  for (int i = 0; i < c->n; i++) {
    double t0 = now_s();
    long status = 0;

    c->got = 0;
    if (curl_easy_perform(h) != CURLE_OK ||
        (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status),
         status != 200) ||
        c->got != c->expect)
      c->errors++;
    c->lat[i] = now_s() - t0;
    c->bytes += c->got;
  }
  curl_easy_cleanup(h);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *me = "modules_bench";
  int clients = argc > 1 ? bench_arg_int(me, "CLIENTS", argv[1]) : 200;
  int per = argc > 2 ? bench_arg_int(me, "PER_CLIENT", argv[2]) : 10;
  size_t size = argc > 3
                    ? (size_t)bench_arg_long(me, "SIZE", argv[3], 1, LONG_MAX)
                    : 2u << 20;
  unsigned threads =
      argc > 4 ? (unsigned)bench_arg_long(me, "THREADS", argv[4], 0, 1024) : 0;
  char dir[256], hex[65], url[256];
  unsigned char *m = mt_wasm(size, 1);
  struct modcache *cache;
  struct admin_config acfg;
  struct admin *a;
  struct modserve ms;
  struct client *cs = calloc((size_t)clients, sizeof(*cs));
  double *all = calloc((size_t)clients * (size_t)per, sizeof(double));
  double t0, wall;
  size_t bytes = 0, k = 0;
  int errors = 0;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  mt_tmpdir(dir, sizeof(dir));
  mt_sha(m, size, hex);
  if (modcache_open(dir, 0, &cache, NULL) < 0 ||
      modcache_put(cache, hex, m, size, NULL, 0, 0, NULL) < 0)
    return 1;
  memset(&acfg, 0, sizeof(acfg));
  acfg.listen = "127.0.0.1:0";
  acfg.threads = threads;
  /* Every client is one Envoy: in production each has its own address
   * (here all share 127.0.0.1, and a closed connection is counted off a
   * little after the client has its answer). */
  acfg.max_per_ip = 1000000;
  memset(&ms, 0, sizeof(ms));
  ms.cache = cache;
  if (admin_new(&acfg, &a, NULL) < 0 ||
      admin_route(a, MODSERVE_PREFIX, "GET,HEAD", modserve_handle, &ms) < 0 ||
      admin_start(a, NULL) < 0)
    return 1;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d" MODSERVE_PREFIX "%s.wasm",
           admin_port(a), hex);
  pthread_barrier_init(&start, NULL, (unsigned)clients + 1);
  for (int i = 0; i < clients; i++) {
    cs[i].n = per;
    cs[i].url = url;
    cs[i].expect = size;
    cs[i].lat = all + (size_t)i * (size_t)per;
    pthread_create(&cs[i].t, NULL, run, &cs[i]);
  }
  pthread_barrier_wait(&start);
  t0 = now_s();
  for (int i = 0; i < clients; i++) {
    pthread_join(cs[i].t, NULL);
    bytes += cs[i].bytes;
    errors += cs[i].errors;
  }
  wall = now_s() - t0;
  k = (size_t)clients * (size_t)per;
  qsort(all, k, sizeof(double), cmp);
  printf("modules_bench: %d clients x %d requests, module %zu bytes, admin "
         "threads %u\n",
         clients, per, size, threads ? threads : ADMIN_DEFAULT_THREADS);
  printf("  requests %zu, errors %d, wall %.2f s\n", k, errors, wall);
  printf("  throughput %.1f req/s, %.1f MiB/s\n", k / wall,
         bytes / wall / (1024.0 * 1024.0));
  printf("  latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
         all[k / 2] * 1e3, all[k * 9 / 10] * 1e3, all[k * 99 / 100] * 1e3,
         all[k - 1] * 1e3);
  admin_free(a);
  modcache_free(cache);
  mt_rmrf(dir);
  xds_free(m);
  free(cs);
  free(all);
  return errors ? 1 : 0;
}
