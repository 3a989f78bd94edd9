/*
 * cmd_serve.c: wasmxds [serve]: the server. Wiring only: the transport,
 * the admin server, module fetching, the store, signals, the serving loop.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>

#include "base/err.h"
#include "base/log.h"
#include "server/admin/admin.h"
#include "server/admin/status.h"
#include "server/app/cmd.h"
#include "server/app/flags.h"
#include "server/app/notify.h"
#include "server/compose/delivery.h"
#include "server/compose/publisher.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/compose/stats.h"
#include "server/transport/xds_server.h"
#include "store/catalog.h"
#include "base/alloc.h"
#include "store/problems.h"
#include "server/admin/status_etcd.h"
#include "store/source.h"

/* How long serving waits for the publisher to build the first snapshot
 * of a store that delivered a catalog at start. */
#define CMD_SERVE_FIRST_BUILD_WAIT_MS 30000

/* What the signal handlers act on (the only globals). The handlers are
 * installed first thing, so a signal during start-up is never the default
 * action (SIGHUP's kills the process): until the server and the source
 * exist, it is only remembered, and acted on once they do. */
static struct xds_server *volatile signal_target;
static struct store_source *volatile signal_source;
static volatile sig_atomic_t stop_pending, reload_pending;
/* What sending STOPPING=1 from the handler returned (logged after). */
static volatile sig_atomic_t stop_notify_rc;
/* READY=1 goes out once the serving loop is about to run (running) and a
 * snapshot is ready, whichever comes last; ready_sent makes it once. */
static atomic_int notify_running, notify_ready_sent;

static void on_stop_signal(int sig) {
  int rc = notify_send("STOPPING=1");

  (void)sig;
  if (rc < 0)
    stop_notify_rc = rc;
  if (signal_target != NULL)
    xds_server_stop(signal_target);
  else
    stop_pending = 1;
}

static void on_reload_signal(int sig) {
  (void)sig;
  if (signal_source != NULL)
    source_trigger(signal_source);
  else
    reload_pending = 1;
}

static void install_signals(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_reload_signal;
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* What the store source's sink, the publisher's sink and the admin
 * handlers need. */
struct serve_ctx {
  struct xds_server *server;
  struct status *status;
  struct xds_stats *stats;
  struct publisher *publisher;
  struct store_source *source;
};

/* Tells the service manager READY=1 when the loop runs and /readyz says
 * ready (main or publisher thread). */
static void notify_ready(struct status *st) {
  int no = 0;

  if (atomic_load(&notify_running) && atomic_load(&st->ready) &&
      atomic_compare_exchange_strong(&notify_ready_sent, &no, 1))
    notify_say("READY=1");
}

/* Publisher sink: the snapshot to serve (publisher thread). */
static void sink_publish(void *ctx, struct snapshot *snap) {
  struct serve_ctx *sc = ctx;

  /* The status pages first: once a proxy can receive this snapshot's
   * resources, /debug/resources must already describe it (a page that
   * lags the streams showed a proxy pending on a generation it named as
   * the previous one). */
  status_set_served(sc->status, snap);
  xds_server_publish(sc->server, snap);
}

/* Publisher sink: what /readyz says (publisher thread). */
static void sink_status(void *ctx, unsigned long generation,
                        const char *degraded) {
  struct serve_ctx *sc = ctx;

  status_set_degraded(sc->status, degraded);
  if (generation > 0) {
    status_set_ready(sc->status, generation);
    notify_ready(sc->status);
  }
}

/* Store source sink: each catalog goes to the publisher (source thread). */
static void on_catalog(void *ctx, struct catalog *cat,
                       const struct problems *pb) {
  struct serve_ctx *sc = ctx;

  status_set_problems(sc->status, pb);
  publisher_set_catalog(sc->publisher, cat, pb);
}

/* Store source sink: degraded (etcd unreachable, a change held) or fine. */
static void on_store_status(void *ctx, const char *degraded) {
  struct serve_ctx *sc = ctx;

  publisher_set_store_status(sc->publisher, degraded);
  atomic_store(&sc->stats->store_degraded, degraded != NULL ? 1 : 0);
}

/* Store source sink: the etcd revision of the catalog about to be served
 * (source thread, just before on_catalog). */
static void on_store_revision(void *ctx, int64_t revision) {
  struct serve_ctx *sc = ctx;

  atomic_store(&sc->stats->store_revision, (long long)revision);
}

/* Store source sink: a mass removal held, or its hold ended. */
static void on_store_hold(void *ctx, int held) {
  struct serve_ctx *sc = ctx;

  if (held)
    atomic_fetch_add(&sc->stats->store_holds, 1);
  atomic_store(&sc->stats->store_held, held ? 1 : 0);
}

/* POST /store/confirm-removal: serve the held change (admin thread). */
static int confirm_handle(void *arg, const struct admin_req *req,
                          struct admin_resp *resp) {
  struct serve_ctx *sc = arg;
  const char *msg;
  int rc;

  (void)req;
  rc = sc->source != NULL ? source_confirm_removal(sc->source) : XDS_ENOTFOUND;
  resp->status = rc == 0 ? 200 : 409;
  msg =
      rc == 0 ? "confirmed: the held change is served\n" : "nothing is held\n";
  resp->body = xds_strdup(msg);
  if (resp->body == NULL)
    return XDS_ENOMEM;
  resp->body_len = strlen(msg);
  snprintf(resp->content_type, sizeof(resp->content_type), "text/plain");
  return 0;
}

int cmd_serve(int argc, char **argv) {
  struct serve_config cfg;
  struct serve_ctx sc;
  struct status status;
  struct delivery_config *dcfg = &cfg.modules.delivery;
  char base_url[300];
  struct store_hooks hooks = {encode_store_check, NULL};
  struct admin *admin = NULL, *mods = NULL;
  struct admin_config mcfg;
  struct xds_stats stats;
  struct xds_err err = {0, ""};
  struct status_etcd *status_writer = NULL;
  char *status_prefix = NULL, replica[300];
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
  notify_open();
  install_signals();
  stats_init(&stats);
  cfg.server.stats = &stats;
  sc.stats = &stats;

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
  if (rc == 0)
    rc = admin_route(admin, "/store/confirm-removal", "POST", confirm_handle,
                     &sc);
  if (rc == 0) /* an operator's action: the bearer token too, when set */
    rc = admin_protect(admin, "/store/");
  if (rc == 0 && cfg.modules.fetch && cfg.modules_listen != NULL) {
    /* Modules on their own listener: what proxies must reach is apart
     * from what operators and health checkers use. Same limits, no
     * bearer token (module URLs carry their own authorization). */
    mcfg = cfg.admin;
    mcfg.listen = cfg.modules_listen;
    mcfg.token_file = NULL;
    mcfg.flag = "--modules-listen";
    rc = admin_new(&mcfg, &mods, &err);
  }
  if (rc == 0 && cfg.modules.fetch && dcfg->base_url == NULL) {
    /* The modules address as bound (its port may have been 0). */
    const char *listen = mods != NULL ? cfg.modules_listen : cfg.admin.listen;
    const char *colon = strrchr(listen, ':');
    int host_len = colon != NULL ? (int)(colon - listen) : 0;
    snprintf(base_url, sizeof(base_url), "http://%.*s:%d", host_len, listen,
             admin_port(mods != NULL ? mods : admin));
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
    rc = admin_route(mods != NULL ? mods : admin, DELIVERY_ROUTE_PREFIX,
                     "GET,HEAD", delivery_handle,
                     publisher_delivery(sc.publisher));
    XDS_LOGI("module fetching on: cache %s, served at %s%s", dcfg->cache_dir,
             dcfg->base_url, "/modules/sha256/");
  }
  if (sc.publisher != NULL)
    status_attach(&status, publisher_delivery(sc.publisher), &stats);
  /* Module metrics on /metrics (before any admin server starts). */
  if (sc.publisher != NULL)
    stats.delivery = publisher_delivery(sc.publisher);
  if (rc == 0 && mods != NULL)
    rc = admin_start(mods, &err);
  if (rc == 0 && mods != NULL)
    XDS_LOGI("modules HTTP on %s (port %d)", cfg.modules_listen,
             admin_port(mods));
  if (rc == 0) {
    struct source_config srcfg;
    struct source_sink sink = {on_catalog, on_store_status, on_store_hold, &sc,
                               on_store_revision};

    memset(&srcfg, 0, sizeof(srcfg));
    srcfg.store = cfg.store;
    srcfg.debounce_ms = (unsigned)cfg.debounce_ms;
    srcfg.etcd = &cfg.etcd;
    srcfg.etcd_debounce_given = cfg.etcd_debounce_given;
    srcfg.hooks = &hooks;
    srcfg.max_removal_pct = cfg.max_removal_pct;
    rc = source_open(&srcfg, &sink, &sc.source, &err);
    if (rc < 0) {
      XDS_LOGE("store %s: %s", cfg.store, err.msg);
      goto out;
    }
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
  /* A file store loads once here and delivers before this returns; an
   * etcd store waits a bounded time for its first catalog. */
  rc = source_start(sc.source, &err);
  if (rc < 0) {
    XDS_LOGE("store %s: %s", cfg.store, err.msg);
    goto out;
  }

  /* --write-status: the store's etcd configuration is complete now. */
  if (cfg.write_status) {
    struct status_etcd_config wc;

    rc = etcd_status_prefix(cfg.etcd.prefix, cfg.status_prefix, &status_prefix,
                            &err);
    if (rc < 0) {
      XDS_LOGE("%s", err.msg);
      goto out;
    }
    if (cfg.replica_name != NULL) {
      snprintf(replica, sizeof(replica), "%s", cfg.replica_name);
    } else {
      char host[256] = "";

      gethostname(host, sizeof(host) - 1);
      snprintf(replica, sizeof(replica), "%s:%ld", host[0] ? host : "wasmxds",
               (long)getpid());
    }
    memset(&wc, 0, sizeof(wc));
    wc.etcd = &cfg.etcd;
    wc.prefix = status_prefix;
    wc.replica = replica;
    wc.interval_ms = cfg.status_interval_ms;
    wc.lease_ttl_s = cfg.status_lease_ttl_s;
    rc = status_etcd_start(&status, &wc, &status_writer, &err);
    if (rc < 0) {
      XDS_LOGE("--write-status: %s", err.msg);
      goto out;
    }
  }

  /* Serve the first snapshot from the first request on, as long as the
   * store delivered one (an etcd store may not be reachable yet). */
  if (publisher_wait_idle(sc.publisher, CMD_SERVE_FIRST_BUILD_WAIT_MS) < 0)
    XDS_LOGW("the first snapshot is not built after %d ms; serving starts "
             "without it",
             CMD_SERVE_FIRST_BUILD_WAIT_MS);
  signal_target = sc.server;
  signal_source = sc.source;
  /* What arrived before the handlers could act. */
  if (reload_pending) {
    reload_pending = 0;
    source_trigger(sc.source);
  }
  if (stop_pending)
    xds_server_stop(sc.server);
  /* The xDS port is bound (xds_server_new) and the first snapshot is
   * published: served from the loop's first turn. An etcd store that was
   * not reachable yet says READY=1 when its first snapshot is. A stop
   * asked for during start-up says STOPPING=1 only. */
  if (!stop_pending) {
    atomic_store(&notify_running, 1);
    notify_ready(&status);
  }

  xds_server_run(sc.server);
  signal_target = NULL;
  signal_source = NULL;
  notify_report("STOPPING=1", stop_notify_rc);
  XDS_LOGI("stopped");
  exit_status = EXIT_SUCCESS;
out:
  /* The status writer first: it asks the serving loop, and its lease is
   * best handed over at once. */
  status_etcd_stop(status_writer);
  xds_free(status_prefix);
  /* The admin threads first (they read the source and the delivery), then
   * the producers: the store source (it posts to the publisher), the
   * publisher (it calls the transport and the status), then those. */
  admin_free(mods);
  admin_free(admin);
  source_free(sc.source);
  publisher_free(sc.publisher);
  xds_server_free(sc.server);
  flags_serve_cleanup(&cfg);
  if (status_ok)
    status_cleanup(&status);
  notify_close();
  return exit_status;
}
