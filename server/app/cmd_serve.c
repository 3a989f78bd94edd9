/*
 * cmd_serve.c: wasmxds [serve]: the server. Wiring only: the transport,
 * the admin server, module fetching, the store, signals, the serving loop.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "server/admin/admin.h"
#include "server/admin/status.h"
#include "server/app/cmd.h"
#include "server/app/flags.h"
#include "server/compose/delivery.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/compose/stats.h"
#include "server/transport/xds_server.h"
#include "store/catalog.h"
#include "store/etcd_watch.h"
#include "store/file_watch.h"
#include "store/problems.h"

/* What the signal handlers act on (the only globals). */
static struct xds_server *volatile signal_target;
static struct file_watch *volatile signal_watch;

static void on_stop_signal(int sig) {
  (void)sig;
  if (signal_target != NULL)
    xds_server_stop(signal_target);
}

static void on_reload_signal(int sig) {
  (void)sig;
  if (signal_watch != NULL)
    file_watch_trigger(signal_watch);
}

/* What the store watcher and the module resolver need to publish
 * snapshots. */
struct serve_ctx {
  const char *store;
  struct encode_opts eopts;
  struct xds_server *server;
  struct status *status;
  struct delivery *delivery; /* NULL: wasmxds does not fetch modules */
  struct xds_stats *stats;
  int is_etcd;                  /* the store is etcd, not files */
  pthread_mutex_t rebuild_lock; /* guards what follows */
  struct catalog *cat;          /* the catalog being served */
  uint64_t generation;
};

/* Builds and publishes a snapshot of the current catalog. Called by the
 * store watcher and by the module resolver, on their threads. */
static void rebuild(struct serve_ctx *sc, const char *why) {
  struct snapshot *snap = NULL;
  struct xds_err err = {0, ""};
  struct timespec t0, t1;

  pthread_mutex_lock(&sc->rebuild_lock);
  if (sc->cat == NULL) {
    pthread_mutex_unlock(&sc->rebuild_lock);
    return;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (snapshot_build(sc->cat, &sc->eopts, sc->generation + 1, &snap, &err) <
      0) {
    XDS_LOGE("cannot build a snapshot (%s): %s; still serving the previous "
             "one",
             why, err.msg);
    status_set_degraded(sc->status, err.msg);
    pthread_mutex_unlock(&sc->rebuild_lock);
    return;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  stats_observe(&sc->stats->snapshot_build,
                (double)(t1.tv_sec - t0.tv_sec) +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  snapshot_set_stats(snap, sc->stats);
  sc->generation++;
  XDS_LOGI("serving generation %llu (%s): %zu extensions, %zu listener "
           "templates",
           (unsigned long long)sc->generation, why, catalog_ext_count(sc->cat),
           catalog_tmpl_count(sc->cat));
  xds_server_publish(sc->server, snap);
  status_set_ready(sc->status, (unsigned long)sc->generation);
  pthread_mutex_unlock(&sc->rebuild_lock);
  snapshot_unref(snap);
}

/* etcd store callback: reachable or not. */
static void on_etcd_status(void *arg, const struct etcd_watch_status *st) {
  struct serve_ctx *sc = arg;

  status_set_degraded(sc->status, st->degraded ? st->reason : NULL);
}

/* Module resolver callback: a module became ready, failed, or changed. */
static void on_modules(void *arg) {
  rebuild(arg, "modules changed");
}

/* Store watcher callback: every new catalog becomes a snapshot. */
static void on_catalog(void *arg, struct catalog *cat,
                       const struct problems *pb) {
  struct serve_ctx *sc = arg;
  struct catalog *old;

  atomic_fetch_add(&sc->stats->store_reloads, 1);
  atomic_fetch_add(&sc->stats->store_errors, pb->n_errors);
  /* The store watchers log every problem of each load themselves. */
  if (sc->generation == 0 && !sc->is_etcd && access(sc->store, F_OK) != 0) {
    /* Never serve an empty configuration because the store is not there
     * (yet): proxies would drop every listener. Streams wait instead. */
    XDS_LOGE("store %s does not exist; waiting for it (nothing is served "
             "until it loads)",
             sc->store);
    catalog_unref(cat);
    return;
  }
  pthread_mutex_lock(&sc->rebuild_lock);
  old = sc->cat;
  sc->cat = cat;
  if (sc->delivery != NULL && delivery_update(sc->delivery, cat) < 0)
    XDS_LOGE("out of memory handing the new catalog to the module resolver");
  pthread_mutex_unlock(&sc->rebuild_lock);
  catalog_unref(old);
  rebuild(sc, "store changed");
}

int cmd_serve(int argc, char **argv) {
  struct serve_config cfg;
  struct serve_ctx sc;
  struct status status;
  struct delivery_config *dcfg = &cfg.modules.delivery;
  char base_url[300];
  struct store_hooks hooks = {encode_store_check, NULL};
  struct admin *admin = NULL;
  struct file_watch *watch = NULL;
  struct etcd_watch *ewatch = NULL;
  struct xds_stats stats;
  struct xds_err err = {0, ""};
  struct sigaction sa;
  int status_ok = 0;
  int rc, exit_status = EXIT_FAILURE;

  memset(&sc, 0, sizeof(sc));
  pthread_mutex_init(&sc.rebuild_lock, NULL);
  switch (flags_parse_serve(argc, argv, &cfg)) {
  case FLAGS_EXIT:
    exit_status = EXIT_SUCCESS;
    goto out;
  case FLAGS_ERROR:
    goto out;
  default:
    break;
  }
  xds_log_set_level(cfg.log_level);
  stats_init(&stats);
  sc.stats = &stats;
  cfg.server.stats = &stats;
  sc.store = cfg.store;
  sc.eopts = cfg.encode;

  rc = xds_server_new(&cfg.server, &sc.server, &err);
  if (rc < 0) {
    XDS_LOGE("%s", err.msg);
    goto out;
  }
  status_init(&status, sc.server);
  status_ok = 1;
  sc.status = &status;
  rc = admin_new(&cfg.admin, &admin, &err);
  if (rc == 0)
    rc = status_register(&status, admin);
  if (rc == 0)
    rc = admin_route(admin, "/metrics", "GET", stats_handle, &stats);
  if (rc == 0 && cfg.modules.fetch) {
    if (dcfg->base_url == NULL) {
      /* The admin address as bound (its port may have been 0). */
      const char *colon = strrchr(cfg.admin.listen, ':');
      int host_len = colon != NULL ? (int)(colon - cfg.admin.listen) : 0;
      snprintf(base_url, sizeof(base_url), "http://%.*s:%d", host_len,
               cfg.admin.listen, admin_port(admin));
      dcfg->base_url = base_url;
    }
    dcfg->on_change = on_modules;
    dcfg->on_change_arg = &sc;
    rc = delivery_new(dcfg, &sc.delivery, &err);
    if (rc < 0) {
      XDS_LOGE("module fetching: %s", err.msg);
      goto out;
    }
    rc = admin_route(admin, DELIVERY_ROUTE_PREFIX, "GET,HEAD", delivery_handle,
                     sc.delivery);
    sc.eopts.module_of = delivery_module_of;
    sc.eopts.module_ctx = sc.delivery;
    XDS_LOGI("module fetching on: cache %s, served at %s%s", dcfg->cache_dir,
             dcfg->base_url, "/modules/sha256/");
  }
  if (rc == 0)
    rc = admin_start(admin, &err);
  if (rc < 0) {
    if (err.msg[0] != '\0')
      XDS_LOGE("%s", err.msg);
    else
      XDS_LOGE("--admin-listen %s: %s", cfg.admin.listen, xds_strerror(rc));
    goto out;
  }
  XDS_LOGI("admin HTTP on %s (port %d)", cfg.admin.listen, admin_port(admin));
  sc.is_etcd = etcd_config_is_url(sc.store);
  if (sc.is_etcd) {
    /* The etcd watcher loads (waiting a bounded time for the first load)
     * and calls on_catalog on its own thread. */
    rc = etcd_config_parse_url(sc.store, &cfg.etcd, &err);
    if (rc == 0) {
      if (!cfg.etcd_debounce_given)
        cfg.etcd.debounce_ms = (unsigned)cfg.debounce_ms;
      rc = etcd_config_finish(&cfg.etcd, &err);
    }
    if (rc == 0)
      rc = etcd_watch_start_ex(&cfg.etcd, &hooks, on_catalog, on_etcd_status,
                               &sc, &ewatch, &err);
  } else {
    /* The first load happens inside file_watch_start, on this thread. */
    rc = file_watch_start(sc.store, (unsigned)cfg.debounce_ms, &hooks,
                          on_catalog, &sc, &watch, &err);
  }
  if (rc < 0) {
    XDS_LOGE("store %s: %s", sc.store, err.msg);
    goto out;
  }

  signal_target = sc.server;
  signal_watch = watch;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_reload_signal;
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  xds_server_run(sc.server);
  signal_target = NULL;
  signal_watch = NULL;
  XDS_LOGI("stopped");
  exit_status = EXIT_SUCCESS;
out:
  file_watch_stop(watch);
  etcd_watch_stop(ewatch);
  admin_free(admin);
  delivery_free(sc.delivery);
  xds_server_free(sc.server);
  catalog_unref(sc.cat);
  pthread_mutex_destroy(&sc.rebuild_lock);
  flags_serve_cleanup(&cfg);
  if (status_ok)
    status_cleanup(&status);
  return exit_status;
}
