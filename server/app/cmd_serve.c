/*
 * cmd_serve.c: wasmxds [serve]: the server. Wiring only: the transport,
 * the admin server, module fetching, the store, signals, the serving loop.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "server/admin/admin.h"
#include "server/admin/status.h"
#include "server/app/cmd.h"
#include "server/app/flags.h"
#include "server/compose/delivery.h"
#include "server/compose/publisher.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/compose/stats.h"
#include "server/transport/xds_server.h"
#include "store/catalog.h"
#include "store/etcd_watch.h"
#include "store/file_watch.h"
#include "store/problems.h"

/* How long serving waits for the publisher to build the first snapshot
 * of a store that delivered a catalog at start. */
#define CMD_SERVE_FIRST_BUILD_WAIT_MS 30000

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

/* What the store callbacks and the publisher's sink need. */
struct serve_ctx {
  const char *store;
  int is_etcd; /* the store is etcd, not files */
  struct xds_server *server;
  struct status *status;
  struct publisher *publisher;
  int loaded; /* a catalog was handed to the publisher */
};

/* Publisher sink: the snapshot to serve (publisher thread). */
static void sink_publish(void *ctx, struct snapshot *snap) {
  struct serve_ctx *sc = ctx;

  xds_server_publish(sc->server, snap);
}

/* Publisher sink: what /readyz says (publisher thread). */
static void sink_status(void *ctx, unsigned long generation,
                        const char *degraded) {
  struct serve_ctx *sc = ctx;

  status_set_degraded(sc->status, degraded);
  if (generation > 0)
    status_set_ready(sc->status, generation);
}

/* etcd store callback: reachable or not. */
static void on_etcd_status(void *arg, const struct etcd_watch_status *st) {
  struct serve_ctx *sc = arg;

  publisher_set_store_status(sc->publisher, st->degraded ? st->reason : NULL);
}

/* Store watcher callback: every new catalog goes to the publisher. */
static void on_catalog(void *arg, struct catalog *cat,
                       const struct problems *pb) {
  struct serve_ctx *sc = arg;

  /* The store watchers log every problem of each load themselves. */
  if (!sc->loaded && !sc->is_etcd && access(sc->store, F_OK) != 0) {
    /* Never serve an empty configuration because the store is not there
     * (yet): proxies would drop every listener. Streams wait instead. */
    XDS_LOGE("store %s does not exist; waiting for it (nothing is served "
             "until it loads)",
             sc->store);
    catalog_unref(cat);
    return;
  }
  sc->loaded = 1;
  publisher_set_catalog(sc->publisher, cat, pb);
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
  cfg.server.stats = &stats;
  sc.store = cfg.store;

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
  if (rc == 0 && cfg.modules.fetch && dcfg->base_url == NULL) {
    /* The admin address as bound (its port may have been 0). */
    const char *colon = strrchr(cfg.admin.listen, ':');
    int host_len = colon != NULL ? (int)(colon - cfg.admin.listen) : 0;
    snprintf(base_url, sizeof(base_url), "http://%.*s:%d", host_len,
             cfg.admin.listen, admin_port(admin));
    dcfg->base_url = base_url;
  }
  if (rc == 0) {
    struct publisher_config pcfg;

    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.encode = cfg.encode;
    pcfg.modules = cfg.modules.fetch ? dcfg : NULL;
    pcfg.stats = &stats;
    pcfg.sink.publish = sink_publish;
    pcfg.sink.status = sink_status;
    pcfg.sink.ctx = &sc;
    rc = publisher_new(&pcfg, &sc.publisher, &err);
    if (rc < 0) {
      XDS_LOGE("%s%s", cfg.modules.fetch ? "module fetching: " : "", err.msg);
      goto out;
    }
  }
  if (rc == 0 && publisher_delivery(sc.publisher) != NULL) {
    rc = admin_route(admin, DELIVERY_ROUTE_PREFIX, "GET,HEAD", delivery_handle,
                     publisher_delivery(sc.publisher));
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

  /* Serve the first snapshot from the first request on, as long as the
   * store delivered one (an etcd store may not be reachable yet). */
  if (publisher_wait_idle(sc.publisher, CMD_SERVE_FIRST_BUILD_WAIT_MS) < 0)
    XDS_LOGW("the first snapshot is not built after %d ms; serving starts "
             "without it",
             CMD_SERVE_FIRST_BUILD_WAIT_MS);
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
  /* Producers first: the store source and the admin threads (which read
   * the delivery), then the publisher (which calls the transport and the
   * status), then those. */
  file_watch_stop(watch);
  etcd_watch_stop(ewatch);
  admin_free(admin);
  publisher_free(sc.publisher);
  xds_server_free(sc.server);
  flags_serve_cleanup(&cfg);
  if (status_ok)
    status_cleanup(&status);
  return exit_status;
}
