/*
 * etcd_bench.c: how long a change written to etcd takes to reach the
 * etcd store's catalog callback.
 *
 * Starts a private etcd (/usr/bin/etcd) on free loopback ports with a
 * temporary data directory (or uses $ETCD_BENCH_ENDPOINT), starts a
 * watcher on it, then for each debounce (0 ms and the default 100 ms)
 * writes 100 changes to one key and times each to its on_load call:
 *   - `etcdctl put` (time from spawning etcdctl: includes its start-up);
 *   - a put through the JSON gateway (etcd_client_put_if).
 * Prints p50, p99 and max per row. Usage: etcd_bench [N]
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "store/catalog.h"
#include "store/etcd_client.h"
#include "store/etcd_watch.h"

#define KEY "/bench/WasmExtension/acme/bench"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int last_prio = -1;
static double last_at;

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_load(void *ctx, struct catalog *cat, const struct problems *pb,
                    int64_t revision) {
  const struct wasm_ext *e =
      catalog_ext_find(cat, "organizations/acme/extensions/bench");

  (void)ctx, (void)pb, (void)revision;
  pthread_mutex_lock(&mu);
  last_prio = e != NULL ? e->priority : -1;
  last_at = now_ms();
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&mu);
  catalog_unref(cat);
}

static const char *doc(int prio) {
  static char buf[256];

  snprintf(buf, sizeof(buf),
           "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
           "metadata: {organization: acme, name: bench}\n"
           "spec: {url: 'file:///b.wasm', priority: %d}\n",
           prio);
  return buf;
}

/* Waits until the callback saw prio; returns when (ms), or -1. */
static double wait_prio(int prio) {
  struct timespec until;
  double at = -1;

  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&mu);
  while (last_prio != prio && pthread_cond_timedwait(&cond, &mu, &until) == 0)
    ;
  if (last_prio == prio)
    at = last_at;
  pthread_mutex_unlock(&mu);
  return at;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp);
  printf("%-44s n=%3d  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", what, n,
         v[n / 2], v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], v[n - 1]);
}

static int free_port(void) {
  struct sockaddr_in sa = {0};
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  getsockname(fd, (struct sockaddr *)&sa, &len);
  port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

static pid_t etcd_pid;
static char dir[64] = "/tmp/wasmxds-etcd-bench.XXXXXX";

static int start_etcd(char *endpoint, size_t n) {
  char curl[64], purl[64], cluster[96], data[128], cmd[256];
  int cp = free_port(), pp = free_port();

  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(endpoint, n, "127.0.0.1:%d", cp);
  snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", cp);
  snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pp);
  snprintf(cluster, sizeof(cluster), "default=%s", purl);
  snprintf(data, sizeof(data), "%s/data", dir);
  etcd_pid = fork();
  if (etcd_pid == 0) {
    int fd = open("/dev/null", O_WRONLY);

    dup2(fd, 1);
    dup2(fd, 2);
    execl("/usr/bin/etcd", "etcd", "--data-dir", data, "--listen-client-urls",
          curl, "--advertise-client-urls", curl, "--listen-peer-urls", purl,
          "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
          (char *)NULL);
    _exit(127);
  }
  snprintf(cmd, sizeof(cmd),
           "etcdctl --endpoints=%s endpoint health >/dev/null 2>&1", endpoint);
  for (int i = 0; i < 200; i++) {
    if (system(cmd) == 0)
      return 0;
    usleep(100000);
  }
  return -1;
}

static void stop_etcd(void) {
  char cmd[128];

  if (etcd_pid > 0) {
    kill(etcd_pid, SIGKILL);
    waitpid(etcd_pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
  }
}

int main(int argc, char **argv) {
  int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100;
  const char *ep_env = getenv("ETCD_BENCH_ENDPOINT");
  char endpoint[64], url[128], file[128], cmd[512];
  unsigned debounces[2] = {0, ETCD_DEFAULT_DEBOUNCE_MS};
  double *lat;
  int prio = 1, status = 1;

  if (n < 1 || n > 100000)
    n = 100;
  lat = calloc((size_t)n, sizeof(*lat));
  xds_log_set_level(XDS_LOG_ERROR);
  if (ep_env != NULL) {
    snprintf(endpoint, sizeof(endpoint), "%s", ep_env);
  } else if (start_etcd(endpoint, sizeof(endpoint)) < 0) {
    fprintf(stderr, "etcd_bench: cannot start /usr/bin/etcd\n");
    stop_etcd();
    return 1;
  }
  snprintf(url, sizeof(url), "etcd://%s/bench", endpoint);
  snprintf(file, sizeof(file), "/tmp/etcd_bench_value.%d", (int)getpid());
  for (int d = 0; d < 2; d++) {
    struct etcd_config cfg;
    struct etcd_client *cl = NULL;
    struct etcd_watch *w = NULL;
    struct xds_err err = {0, ""};
    char label[96];

    etcd_config_init(&cfg);
    etcd_config_parse_url(url, &cfg, &err);
    cfg.debounce_ms = debounces[d];
    if (etcd_config_finish(&cfg, &err) < 0 ||
        etcd_client_new(&cfg, &cl, &err) < 0 ||
        etcd_watch_start(&cfg, NULL, on_load, NULL, &w, &err) < 0) {
      fprintf(stderr, "etcd_bench: %s\n", err.msg);
      goto out;
    }
    /* etcdctl put: from spawning the process to the callback. */
    for (int i = 0; i < n; i++) {
      FILE *f = fopen(file, "w");
      double t0, at;

      fputs(doc(++prio), f);
      fclose(f);
      snprintf(cmd, sizeof(cmd),
               "ETCDCTL_API=3 etcdctl --endpoints=%s put " KEY
               " < %s >/dev/null",
               endpoint, file);
      t0 = now_ms();
      if (system(cmd) != 0 || (at = wait_prio(prio)) < 0) {
        fprintf(stderr, "etcd_bench: put %d was not seen\n", i);
        goto out;
      }
      lat[i] = at - t0;
    }
    snprintf(label, sizeof(label), "etcdctl put -> callback, debounce %u ms",
             debounces[d]);
    report(label, lat, n);
    /* A gateway put (compared on the revision read just before): from
     * the write request to the callback. */
    for (int i = 0; i < n; i++) {
      const char *v = doc(++prio);
      struct etcd_kv kv;
      int64_t rev;
      int found = 0;
      double t0, at;

      if (etcd_client_get(cl, KEY, &kv, &found, &rev, &err) < 0) {
        fprintf(stderr, "etcd_bench: %s\n", err.msg);
        goto out;
      }
      t0 = now_ms();
      if (etcd_client_put_if(cl, KEY, v, strlen(v), found ? kv.mod_revision : 0,
                             NULL, &err) < 0) {
        etcd_kv_cleanup(&kv);
        fprintf(stderr, "etcd_bench: %s\n", err.msg);
        goto out;
      }
      etcd_kv_cleanup(&kv);
      if ((at = wait_prio(prio)) < 0) {
        fprintf(stderr, "etcd_bench: put %d was not seen\n", i);
        goto out;
      }
      lat[i] = at - t0;
    }
    snprintf(label, sizeof(label), "gateway put -> callback, debounce %u ms",
             debounces[d]);
    report(label, lat, n);
    etcd_watch_stop(w);
    etcd_client_free(cl);
    etcd_config_cleanup(&cfg);
    continue;
  out:
    etcd_watch_stop(w);
    etcd_client_free(cl);
    etcd_config_cleanup(&cfg);
    unlink(file);
    stop_etcd();
    free(lat);
    return status;
  }
  unlink(file);
  stop_etcd();
  free(lat);
  return 0;
}
