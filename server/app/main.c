/*
 * main.c: wasmxds, the program. Wiring only: flags, the store, the first
 * snapshot, signals, the serving loop.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/file_watch.h"
#include "server/admin/admin.h"
#include "server/admin/status.h"
#include "server/compose/delivery.h"
#include "modules/resolver.h"
#include "server/compose/stats.h"
#include "store/etcd_config.h"
#include "store/etcd_load.h"
#include "store/etcd_watch.h"

#include <pthread.h>
#include "store/problems.h"
#include "server/compose/identity.h"
#include "server/admin/render.h"
#include "server/compose/chain.h"

#include <jansson.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "server/transport/xds_server.h"

#define DEFAULT_LISTEN "127.0.0.1:18000"
#define DEFAULT_MODULE_CACHE "/var/cache/wasmxds/modules"
/* --insecure-registry flags kept. */
#define MAX_INSECURE_REGISTRIES 32

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

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: wasmxds [serve] [OPTION]...\n"
      "       wasmxds validate PATH|URL [--etcd-* ...]\n"
      "       wasmxds render --store PATH|URL --node-id ID [--cluster NAME]\n"
      "                      [--metadata KEY=VALUE]... [--dump-dir DIR]\n"
      "                      [--fetch-modules] [--etcd-* ...]\n"
      "                      [OPTION]...\n"
      "Serve WebAssembly HTTP filters to Envoy over xDS (LDS + ECDS).\n"
      "\n"
      "validate loads a store exactly as the server does, prints every\n"
      "problem and a summary, and exits 1 when there is an error.\n"
      "render prints, as JSON, what the proxy described by --node-id,\n"
      "--cluster and --metadata would receive, and why each extension is\n"
      "in or out. VALUE may be a JSON object (for wasmxds.labels).\n"
      "\n"
      "  --listen HOST:PORT     address of the xDS gRPC server "
      "(default " DEFAULT_LISTEN ")\n"
      "  --store PATH           YAML file or directory of WasmExtension "
      "and\n"
      "                         ListenerTemplate documents (required)\n"
      "  --module-cluster NAME  Envoy cluster through which remote "
      "modules are\n"
      "                         fetched (default " ENCODE_DEFAULT_MODULE_CLUSTER
      ")\n"
      "  --ecds-fetch-timeout MS  initial_fetch_timeout of each ECDS "
      "reference;\n"
      "                         0 (default) waits for the config\n"
      "  --inline-wasm          put Wasm configs inline in listeners "
      "instead of\n"
      "                         ECDS references (every change drains "
      "listeners)\n"
      "  --admin-listen HOST:PORT  admin HTTP address "
      "(default " ADMIN_DEFAULT_LISTEN ")\n"
      "  --tls-cert FILE        serve xDS over TLS with this PEM "
      "certificate chain\n"
      "  --tls-key FILE         and this PEM private key\n"
      "  --tls-client-ca FILE   require client certificates signed by "
      "this CA;\n"
      "                         identity then comes from their "
      "spiffe:// URI SAN\n"
      "  --max-streams N        concurrent xDS streams (default 100000)\n"
      "  --keepalive-ms MS      HTTP/2 keepalive ping interval (default "
      "60000)\n"
      "  --drain-ms MS          on SIGTERM, how long streams may take to "
      "end\n"
      "                         before they are cancelled (default 5000)\n"
      "  --debounce-ms MS       coalesce store changes this long "
      "(default 100)\n"
      "  --module-cache DIR     where fetched modules are kept "
      "(default " DEFAULT_MODULE_CACHE ")\n"
      "  --module-cache-max-bytes N  evict unreferenced modules above "
      "this size\n"
      "  --pull-secrets DIR     registry credentials, Docker config.json "
      "format,\n"
      "                         one NAME.json per imagePullSecret\n"
      "  --module-base-url URL  how proxies reach the admin server for "
      "modules\n"
      "                         (default http://<--admin-listen>)\n"
      "  --module-token-secret FILE  secret for private modules' "
      "capability URLs\n"
      "  --module-http-direct   let Envoy fetch http(s) modules that "
      "have a sha256\n"
      "  --insecure-registries H:P,...  registries reached over plain "
      "http\n"
      "  --module-ca-file FILE  CA bundle for https registries and "
      "origins\n"
      "  --module-pull-workers N  concurrent pulls (default 4)\n"
      "  --module-fetch-timeout MS  one pull attempt (default 60000)\n"
      "  --module-retry-max MS  cap of the retry backoff (default "
      "300000)\n"
      "  --module-always-interval S  re-resolve Always modules this "
      "often\n"
      "                         (default 300; -1: only on change)\n"
      "  --module-max-bytes N   largest module (default 64 MiB)\n"
      "  --module-allow-link-local  allow module URLs on link-local "
      "addresses\n"
      "  --no-module-fetch      fetch nothing; oci:// modules get their "
      "substitute\n"
      "  --store etcd://HOST:PORT[,HOST:PORT...]/PREFIX  an etcd v3 "
      "store instead of files, with:\n" ETCD_CONFIG_FLAGS_HELP
      "  --log-level LEVEL      error, warn, info (default) or debug\n"
      "  -h, --help             print this help and exit\n"
      "  -V, --version          print the version and exit\n");
}

enum {
  OPT_LISTEN = 256,
  OPT_STORE,
  OPT_LOG_LEVEL,
  OPT_MODULE_CLUSTER,
  OPT_ECDS_FETCH_TIMEOUT,
  OPT_INLINE_WASM,
  OPT_ADMIN_LISTEN,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_CLIENT_CA,
  OPT_MAX_STREAMS,
  OPT_KEEPALIVE_MS,
  OPT_DRAIN_MS,
  OPT_DEBOUNCE_MS,
  OPT_MODULE_CACHE,
  OPT_MODULE_CACHE_MAX,
  OPT_PULL_SECRETS,
  OPT_MODULE_BASE_URL,
  OPT_MODULE_TOKEN_SECRET,
  OPT_MODULE_DIRECT,
  OPT_INSECURE_REGISTRY,
  OPT_MODULE_PULL_INTERVAL,
  OPT_MODULE_ALLOW_LINK_LOCAL,
  OPT_NO_MODULE_FETCH,
  OPT_MODULE_CA_FILE,
  OPT_MODULE_WORKERS,
  OPT_MODULE_FETCH_TIMEOUT,
  OPT_MODULE_RETRY_MAX,
  OPT_MODULE_MAX_BYTES,
  OPT_ETCD,         /* etcd-* flags, handed to etcd_config_set_flag by name */
  OPT_FETCH_MODULES /* render: resolve modules as the server would */
};

/* The module-fetching flags (module_flag()), for serve and render. */
#define MODULE_LONG_OPTS                                                       \
  {"module-cache", required_argument, NULL, OPT_MODULE_CACHE},                 \
      {"module-cache-max-bytes", required_argument, NULL,                      \
       OPT_MODULE_CACHE_MAX},                                                  \
      {"pull-secrets", required_argument, NULL, OPT_PULL_SECRETS},             \
      {"module-base-url", required_argument, NULL, OPT_MODULE_BASE_URL},       \
      {"module-token-secret", required_argument, NULL,                         \
       OPT_MODULE_TOKEN_SECRET},                                               \
      {"module-http-direct", no_argument, NULL, OPT_MODULE_DIRECT},            \
      {"insecure-registries", required_argument, NULL, OPT_INSECURE_REGISTRY}, \
      {"module-always-interval", required_argument, NULL,                      \
       OPT_MODULE_PULL_INTERVAL},                                              \
      {"module-ca-file", required_argument, NULL, OPT_MODULE_CA_FILE},         \
      {"module-pull-workers", required_argument, NULL, OPT_MODULE_WORKERS},    \
      {"module-fetch-timeout", required_argument, NULL,                        \
       OPT_MODULE_FETCH_TIMEOUT},                                              \
      {"module-retry-max", required_argument, NULL, OPT_MODULE_RETRY_MAX},     \
      {"module-max-bytes", required_argument, NULL, OPT_MODULE_MAX_BYTES},     \
      {"module-allow-link-local", no_argument, NULL,                           \
       OPT_MODULE_ALLOW_LINK_LOCAL},                                           \
  {                                                                            \
    "no-module-fetch", no_argument, NULL, OPT_NO_MODULE_FETCH                  \
  }

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"store", required_argument, NULL, OPT_STORE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"module-cluster", required_argument, NULL, OPT_MODULE_CLUSTER},
    {"ecds-fetch-timeout", required_argument, NULL, OPT_ECDS_FETCH_TIMEOUT},
    {"inline-wasm", no_argument, NULL, OPT_INLINE_WASM},
    {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"keepalive-ms", required_argument, NULL, OPT_KEEPALIVE_MS},
    {"drain-ms", required_argument, NULL, OPT_DRAIN_MS},
    {"debounce-ms", required_argument, NULL, OPT_DEBOUNCE_MS},
    MODULE_LONG_OPTS,
    {"etcd-user", required_argument, NULL, OPT_ETCD},
    {"etcd-password-file", required_argument, NULL, OPT_ETCD},
    {"etcd-ca", required_argument, NULL, OPT_ETCD},
    {"etcd-cert", required_argument, NULL, OPT_ETCD},
    {"etcd-key", required_argument, NULL, OPT_ETCD},
    {"etcd-debounce", required_argument, NULL, OPT_ETCD},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

static int parse_ms(const char *flag, const char *s, uint32_t *out) {
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > 86400000UL) {
    fprintf(stderr,
            "wasmxds: %s: \"%s\" is not a number of milliseconds "
            "between 0 and 86400000\n",
            flag, s);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
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

static int parse_int_flag(const char *flag, const char *s, long min, long max,
                          int *out) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
    fprintf(stderr,
            "wasmxds: %s: \"%s\" is not a whole number between %ld "
            "and %ld\n",
            flag, s, min, max);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/*
 * The module-fetching flags (serve and render): c is the option's code,
 * arg its value. Returns 1 when c is one of them (applied to d, the
 * insecure-registry list and *fetch), 0 when it is not, -1 on a bad value
 * (said on stderr).
 */
static int module_flag(int c, char *arg, struct delivery_config *d,
                       const char **insecure, size_t *n_insecure, int *fetch) {
  switch (c) {
  case OPT_MODULE_CACHE:
    d->cache_dir = arg;
    return 1;
  case OPT_MODULE_CACHE_MAX: {
    char *end;
    errno = 0;
    d->cache_max_bytes = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0') {
      fprintf(stderr,
              "wasmxds: --module-cache-max-bytes: \"%s\" is not a "
              "number of bytes\n",
              arg);
      return -1;
    }
    return 1;
  }
  case OPT_PULL_SECRETS:
    d->pull_secrets_dir = arg;
    return 1;
  case OPT_MODULE_BASE_URL:
    if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0) {
      fprintf(stderr,
              "wasmxds: --module-base-url: \"%s\" must start "
              "with http:// or https://\n",
              arg);
      return -1;
    }
    d->base_url = arg;
    return 1;
  case OPT_MODULE_TOKEN_SECRET:
    d->token_secret_file = arg;
    return 1;
  case OPT_MODULE_DIRECT:
    d->direct = 1;
    return 1;
  case OPT_INSECURE_REGISTRY: {
    /* A comma-separated list; the flag may repeat. */
    char *save = NULL;
    for (char *h = strtok_r(arg, ",", &save); h != NULL;
         h = strtok_r(NULL, ",", &save)) {
      if ((*n_insecure) == MAX_INSECURE_REGISTRIES) {
        fprintf(stderr, "wasmxds: more than %d insecure registries\n",
                MAX_INSECURE_REGISTRIES);
        return -1;
      }
      insecure[(*n_insecure)++] = h;
    }
    return 1;
  }
  case OPT_MODULE_PULL_INTERVAL: {
    int v;
    if (parse_int_flag("--module-always-interval", arg, -1, 86400 * 30, &v) < 0)
      return -1;
    d->always_interval_s = v;
    return 1;
  }
  case OPT_MODULE_CA_FILE:
    d->ca_file = arg;
    return 1;
  case OPT_MODULE_WORKERS:
    if (parse_int_flag("--module-pull-workers", arg, 1, 64, &d->workers) < 0)
      return -1;
    return 1;
  case OPT_MODULE_FETCH_TIMEOUT: {
    int v;
    if (parse_int_flag("--module-fetch-timeout", arg, 100, 3600000, &v) < 0)
      return -1;
    d->fetch_timeout_ms = v;
    return 1;
  }
  case OPT_MODULE_RETRY_MAX: {
    int v;
    if (parse_int_flag("--module-retry-max", arg, 1000, 86400000, &v) < 0)
      return -1;
    d->backoff_max_ms = v;
    return 1;
  }
  case OPT_MODULE_MAX_BYTES: {
    int v;
    if (parse_int_flag("--module-max-bytes", arg, 1024, 1 << 30, &v) < 0)
      return -1;
    d->max_module_bytes = (size_t)v;
    return 1;
  }
  case OPT_MODULE_ALLOW_LINK_LOCAL:
    d->allow_link_local = 1;
    return 1;
  case OPT_NO_MODULE_FETCH:
    *fetch = 0;
    return 1;
  default:
    return 0;
  }
}

static int cmd_serve(int argc, char **argv) {
  struct xds_server_config scfg;
  struct admin_config acfg;
  struct serve_ctx sc;
  struct status status;
  struct delivery_config dcfg;
  const char *insecure[MAX_INSECURE_REGISTRIES + 1] = {NULL};
  size_t n_insecure = 0;
  int fetch_modules = 1;
  char base_url[300];
  struct store_hooks hooks = {encode_store_check, NULL};
  struct admin *admin = NULL;
  struct file_watch *watch = NULL;
  struct etcd_watch *ewatch = NULL;
  struct etcd_config ecfg;
  struct xds_stats stats;
  int opt_index, etcd_debounce_given = 0;
  struct xds_err err = {0, ""};
  enum xds_log_level level;
  struct sigaction sa;
  int c, debounce_ms = FILE_WATCH_DEFAULT_DEBOUNCE_MS, status_ok = 0;
  int rc, exit_status = EXIT_FAILURE;

  memset(&scfg, 0, sizeof(scfg));
  memset(&acfg, 0, sizeof(acfg));
  memset(&sc, 0, sizeof(sc));
  memset(&dcfg, 0, sizeof(dcfg));
  etcd_config_init(&ecfg);
  stats_init(&stats);
  sc.stats = &stats;
  scfg.stats = &stats;
  pthread_mutex_init(&sc.rebuild_lock, NULL);
  dcfg.cache_dir = DEFAULT_MODULE_CACHE;
  scfg.listen = DEFAULT_LISTEN;
  acfg.listen = ADMIN_DEFAULT_LISTEN;
  encode_opts_default(&sc.eopts);
  optind = 1;
  while ((c = getopt_long(argc, argv, "hV", long_opts, &opt_index)) != -1) {
    switch (c) {
    case OPT_LISTEN:
      scfg.listen = optarg;
      break;
    case OPT_STORE:
      sc.store = optarg;
      break;
    case OPT_ETCD:
      if (strcmp(long_opts[opt_index].name, "etcd-debounce") == 0)
        etcd_debounce_given = 1;
      if (etcd_config_set_flag(&ecfg, long_opts[opt_index].name, optarg, &err) <
          0) {
        fprintf(stderr, "wasmxds: %s\n", err.msg);
        etcd_config_cleanup(&ecfg);
        return EXIT_FAILURE;
      }
      break;
    case OPT_LOG_LEVEL:
      if (xds_log_parse_level(optarg, &level) < 0) {
        fprintf(stderr,
                "wasmxds: --log-level: \"%s\" is not one of error, "
                "warn, info, debug\n",
                optarg);
        return EXIT_FAILURE;
      }
      xds_log_set_level(level);
      break;
    case OPT_MODULE_CLUSTER:
      if (optarg[0] == '\0') {
        fprintf(stderr, "wasmxds: --module-cluster: must not be empty\n");
        return EXIT_FAILURE;
      }
      sc.eopts.module_cluster = optarg;
      break;
    case OPT_ECDS_FETCH_TIMEOUT:
      if (parse_ms("--ecds-fetch-timeout", optarg,
                   &sc.eopts.ecds_fetch_timeout_ms) < 0)
        return EXIT_FAILURE;
      break;
    case OPT_INLINE_WASM:
      sc.eopts.inline_wasm = 1;
      break;
    case OPT_ADMIN_LISTEN:
      acfg.listen = optarg;
      break;
    case OPT_TLS_CERT:
      scfg.tls_cert = optarg;
      break;
    case OPT_TLS_KEY:
      scfg.tls_key = optarg;
      break;
    case OPT_TLS_CLIENT_CA:
      scfg.tls_client_ca = optarg;
      break;
    case OPT_MAX_STREAMS:
      if (parse_int_flag("--max-streams", optarg, 1, 10000000,
                         &scfg.max_streams) < 0)
        return EXIT_FAILURE;
      break;
    case OPT_KEEPALIVE_MS:
      if (parse_int_flag("--keepalive-ms", optarg, 1000, 86400000,
                         &scfg.keepalive_ms) < 0)
        return EXIT_FAILURE;
      break;
    case OPT_DRAIN_MS:
      if (parse_int_flag("--drain-ms", optarg, 1, 3600000, &scfg.drain_ms) < 0)
        return EXIT_FAILURE;
      break;
    case OPT_DEBOUNCE_MS:
      if (parse_int_flag("--debounce-ms", optarg, 0, FILE_WATCH_MAX_DEBOUNCE_MS,
                         &debounce_ms) < 0)
        return EXIT_FAILURE;
      break;
    case 'h':
      usage(stdout);
      return EXIT_SUCCESS;
    case 'V':
      printf("wasmxds %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    default:
      rc = module_flag(c, optarg, &dcfg, insecure, &n_insecure, &fetch_modules);
      if (rc < 0)
        return EXIT_FAILURE;
      if (rc == 0) {
        usage(stderr);
        return EXIT_FAILURE;
      }
      break;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "wasmxds: unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return EXIT_FAILURE;
  }
  if (sc.store == NULL) {
    fprintf(stderr, "wasmxds: --store PATH is required\n");
    usage(stderr);
    return EXIT_FAILURE;
  }

  rc = xds_server_new(&scfg, &sc.server, &err);
  if (rc < 0) {
    XDS_LOGE("%s", err.msg);
    goto out;
  }
  status_init(&status, sc.server);
  status_ok = 1;
  sc.status = &status;
  rc = admin_new(&acfg, &admin, &err);
  if (rc == 0)
    rc = status_register(&status, admin);
  if (rc == 0)
    rc = admin_route(admin, "/metrics", "GET", stats_handle, &stats);
  if (rc == 0 && fetch_modules) {
    if (dcfg.base_url == NULL) {
      /* The admin address as bound (its port may have been 0). */
      const char *colon = strrchr(acfg.listen, ':');
      int host_len = colon != NULL ? (int)(colon - acfg.listen) : 0;
      snprintf(base_url, sizeof(base_url), "http://%.*s:%d", host_len,
               acfg.listen, admin_port(admin));
      dcfg.base_url = base_url;
    }
    dcfg.insecure_registries = n_insecure > 0 ? insecure : NULL;
    dcfg.on_change = on_modules;
    dcfg.on_change_arg = &sc;
    rc = delivery_new(&dcfg, &sc.delivery, &err);
    if (rc < 0) {
      XDS_LOGE("module fetching: %s", err.msg);
      goto out;
    }
    rc = admin_route(admin, DELIVERY_ROUTE_PREFIX, "GET,HEAD", delivery_handle,
                     sc.delivery);
    sc.eopts.module_of = delivery_module_of;
    sc.eopts.module_ctx = sc.delivery;
    XDS_LOGI("module fetching on: cache %s, served at %s%s", dcfg.cache_dir,
             dcfg.base_url, "/modules/sha256/");
  }
  if (rc == 0)
    rc = admin_start(admin, &err);
  if (rc < 0) {
    if (err.msg[0] != '\0')
      XDS_LOGE("%s", err.msg);
    else
      XDS_LOGE("--admin-listen %s: %s", acfg.listen, xds_strerror(rc));
    goto out;
  }
  XDS_LOGI("admin HTTP on %s (port %d)", acfg.listen, admin_port(admin));
  sc.is_etcd = etcd_config_is_url(sc.store);
  if (sc.is_etcd) {
    /* The etcd watcher loads (waiting a bounded time for the first load)
     * and calls on_catalog on its own thread. */
    rc = etcd_config_parse_url(sc.store, &ecfg, &err);
    if (rc == 0) {
      if (!etcd_debounce_given)
        ecfg.debounce_ms = (unsigned)debounce_ms;
      rc = etcd_config_finish(&ecfg, &err);
    }
    if (rc == 0)
      rc = etcd_watch_start_ex(&ecfg, &hooks, on_catalog, on_etcd_status, &sc,
                               &ewatch, &err);
  } else {
    /* The first load happens inside file_watch_start, on this thread. */
    rc = file_watch_start(sc.store, (unsigned)debounce_ms, &hooks, on_catalog,
                          &sc, &watch, &err);
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
  etcd_config_cleanup(&ecfg);
  if (status_ok)
    status_cleanup(&status);
  return exit_status;
}

/* Loads a store for a one-shot command: every problem is printed to out,
 * templates whose native filters do not convert are reported too. Returns
 * the number of errors, or -1 when the store cannot be read at all. */
/*
 * Loads the store at path (a file store, or an etcd:// URL read once with
 * ecfg's --etcd-* flags) as the server does, prints every problem and a
 * summary line to out. Returns the number of errors, or -1 when the store
 * could not be read at all (said on stderr).
 */
static int load_for_command(const char *path, struct etcd_config *ecfg,
                            struct catalog **cat, FILE *out) {
  struct store_hooks hooks = {encode_store_check, NULL};
  struct etcd_load_info info = {0, 0};
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf line;
  int errors, is_etcd = etcd_config_is_url(path), rc;

  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  if (is_etcd) {
    rc = etcd_config_parse_url(path, ecfg, &err);
    if (rc == 0)
      rc = etcd_config_finish(ecfg, &err);
    if (rc == 0)
      rc = etcd_load(ecfg, &hooks, cat, &pb, &info, &err);
  } else {
    rc = file_store_load_ex(path, &hooks, NULL, NULL, cat, &pb, &err);
  }
  if (rc < 0) {
    fprintf(stderr, "wasmxds: %s: %s\n", path, err.msg);
    problems_cleanup(&pb);
    return -1;
  }
  xds_buf_init(&line, 8192);
  for (size_t i = 0; i < problems_count(&pb); i++) {
    xds_buf_reset(&line);
    if (problem_format(problems_at(&pb, i), &line) == 0)
      fputs(line.data, out); /* one line, with its newline */
  }
  xds_buf_cleanup(&line);
  if (pb.dropped > 0)
    fprintf(out, "... and %zu more problems\n", pb.dropped);
  errors = (int)pb.n_errors;
  if (is_etcd)
    fprintf(out, "%s (revision %lld, %zu keys): ", path,
            (long long)info.revision, info.n_keys);
  else
    fprintf(out, "%s: ", path);
  fprintf(out,
          "%zu extensions, %zu listener templates, %zu errors, %zu "
          "warnings\n",
          catalog_ext_count(*cat), catalog_tmpl_count(*cat), pb.n_errors,
          pb.n_warnings);
  problems_cleanup(&pb);
  return errors;
}

/* The --etcd-* flags, for validate and render (serve has them in
 * long_opts). */
#define ETCD_LONG_OPTS                                                         \
  {"etcd-user", required_argument, NULL, OPT_ETCD},                            \
      {"etcd-password-file", required_argument, NULL, OPT_ETCD},               \
      {"etcd-ca", required_argument, NULL, OPT_ETCD},                          \
      {"etcd-cert", required_argument, NULL, OPT_ETCD},                        \
      {"etcd-key", required_argument, NULL, OPT_ETCD}, {                       \
    "etcd-debounce", required_argument, NULL, OPT_ETCD                         \
  }

static int cmd_validate(int argc, char **argv) {
  static const struct option opts[] = {ETCD_LONG_OPTS, {NULL, 0, NULL, 0}};
  struct catalog *cat = NULL;
  struct etcd_config ecfg;
  struct xds_err err = {0, ""};
  int errors, c, index;

  etcd_config_init(&ecfg);
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, &index)) != -1) {
    if (c != OPT_ETCD)
      goto usage;
    if (etcd_config_set_flag(&ecfg, opts[index].name, optarg, &err) < 0) {
      fprintf(stderr, "wasmxds: %s\n", err.msg);
      goto usage;
    }
  }
  if (argc - optind != 1)
    goto usage;
  errors = load_for_command(argv[optind], &ecfg, &cat, stdout);
  catalog_unref(cat);
  etcd_config_cleanup(&ecfg);
  return errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;

usage:
  fprintf(stderr, "Usage: wasmxds validate PATH|URL [--etcd-* ...]\n");
  etcd_config_cleanup(&ecfg);
  return 2;
}

/* Metadata built from --metadata KEY=VALUE flags. */
struct meta_builder {
  Google__Protobuf__Struct st;
  Google__Protobuf__Struct__FieldsEntry *entries[64];
  Google__Protobuf__Struct__FieldsEntry e[64];
  Google__Protobuf__Value v[64];
  /* Labels given as a JSON object: one nested struct per flag. */
  Google__Protobuf__Struct nested[8];
  Google__Protobuf__Struct__FieldsEntry *nested_entries[8][64];
  Google__Protobuf__Struct__FieldsEntry ne[8][64];
  Google__Protobuf__Value nv[8][64];
  size_t n_nested;
  json_t *json[8];
};

static int meta_add(struct meta_builder *m, char *kv) {
  char *eq = strchr(kv, '=');
  size_t i = m->st.n_fields;
  Google__Protobuf__Value *v;

  if (eq == NULL || eq == kv) {
    fprintf(stderr, "wasmxds: --metadata \"%s\": expected KEY=VALUE\n", kv);
    return -1;
  }
  if (i == 64) {
    fprintf(stderr, "wasmxds: more than 64 --metadata flags\n");
    return -1;
  }
  *eq = '\0';
  google__protobuf__struct__fields_entry__init(&m->e[i]);
  v = &m->v[i];
  google__protobuf__value__init(v);
  m->e[i].key = kv;
  m->e[i].value = v;
  if (eq[1] == '{') {
    json_error_t jerr;
    const char *k;
    json_t *val, *obj;
    size_t n = m->n_nested, j = 0;
    if (n == 8) {
      fprintf(stderr, "wasmxds: more than 8 JSON --metadata values\n");
      return -1;
    }
    obj = json_loads(eq + 1, 0, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
      fprintf(stderr, "wasmxds: --metadata %s: not a JSON object: %s\n", kv,
              obj == NULL ? jerr.text : "another JSON value");
      json_decref(obj);
      return -1;
    }
    m->json[n] = obj;
    m->n_nested++;
    google__protobuf__struct__init(&m->nested[n]);
    json_object_foreach(obj, k, val) {
      if (j == 64 || !json_is_string(val)) {
        fprintf(stderr,
                "wasmxds: --metadata %s: values must be strings "
                "(at most 64)\n",
                kv);
        return -1;
      }
      google__protobuf__struct__fields_entry__init(&m->ne[n][j]);
      google__protobuf__value__init(&m->nv[n][j]);
      m->nv[n][j].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
      m->nv[n][j].string_value = (char *)json_string_value(val);
      m->ne[n][j].key = (char *)k;
      m->ne[n][j].value = &m->nv[n][j];
      m->nested_entries[n][j] = &m->ne[n][j];
      j++;
    }
    m->nested[n].fields = m->nested_entries[n];
    m->nested[n].n_fields = j;
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    v->struct_value = &m->nested[n];
  } else {
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = eq + 1;
  }
  m->entries[i] = &m->e[i];
  m->st.n_fields++;
  return 0;
}

/* Writes one file of serialized bytes. */
static int write_file(const char *dir, const char *prefix, const char *name,
                      const uint8_t *p, size_t n) {
  char path[4096];
  FILE *f;
  int len = snprintf(path, sizeof(path), "%s/%s-", dir, prefix);

  for (const char *c = name; *c && len < (int)sizeof(path) - 8; c++)
    path[len++] = *c == '/' ? '_' : *c;
  snprintf(path + len, sizeof(path) - (size_t)len, ".pb");
  f = fopen(path, "wb");
  if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "wasmxds render: cannot write %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  return 0;
}

/* render --dump-dir: the exact bytes the proxy would be sent, one file per
 * resource (lds-<listener>.pb: envoy.config.listener.v3.Listener;
 * ecds-<fqn with / as _>.pb: envoy.config.core.v3.TypedExtensionConfig),
 * for protoc --decode or any other tool. */
static int dump_resources(struct snapshot *snap, const struct proxy_id *pid,
                          const char *dir) {
  const struct catalog *cat = snapshot_catalog(snap);
  const struct xds_class *cls;

  if (snapshot_class(snap, pid, &cls) < 0)
    return -1;
  for (size_t i = 0; i < cls->n_listeners; i++)
    if (write_file(dir, "lds", cls->listeners[i].name, cls->listeners[i].bytes,
                   cls->listeners[i].len) < 0)
      return -1;
  for (size_t i = 0; i < catalog_ext_count(cat); i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    const struct xds_resource *r = snapshot_ecds(snap, e->fqn);
    if (!chain_ext_visible(e, pid))
      continue;
    if (write_file(dir, "ecds", e->fqn, r->bytes, r->len) < 0)
      return -1;
  }
  return 0;
}

/*
 * render --fetch-modules: resolves every module of cat as the server
 * would (same cache, pull secrets and limits) and waits until none is
 * still being fetched, at most one fetch timeout plus 5 s; what is still
 * pending then renders as its substitute. Returns 0 with *out, or -1
 * (said on stderr).
 */
static int render_fetch(struct delivery_config *dcfg, const char **insecure,
                        size_t n_insecure, struct catalog *cat,
                        struct delivery **out) {
  struct xds_err err = {0, ""};
  long limit_ms = (dcfg->fetch_timeout_ms > 0 ? dcfg->fetch_timeout_ms
                                              : RESOLVER_DEFAULT_TIMEOUT_MS) +
                  5000,
       waited = 0, pending = 1;

  dcfg->insecure_registries = n_insecure > 0 ? insecure : NULL;
  if (delivery_new(dcfg, out, &err) < 0) {
    fprintf(stderr, "wasmxds render: module fetching: %s\n", err.msg);
    return -1;
  }
  if (delivery_update(*out, cat) < 0) {
    fprintf(stderr, "wasmxds render: out of memory\n");
    return -1;
  }
  while (waited < limit_ms && (pending = delivery_pending(*out)) > 0) {
    struct timespec ts = {0, 50 * 1000000L};

    nanosleep(&ts, NULL);
    waited += 50;
  }
  if (pending < 0) {
    fprintf(stderr, "wasmxds render: out of memory\n");
    return -1;
  }
  if (pending > 0)
    fprintf(stderr,
            "wasmxds render: %ld modules still being fetched after "
            "%ld ms; they render as their substitute\n",
            pending, waited);
  return 0;
}

static int cmd_render(int argc, char **argv) {
  static const struct option opts[] = {
      {"store", required_argument, NULL, 's'},
      {"node-id", required_argument, NULL, 'n'},
      {"cluster", required_argument, NULL, 'c'},
      {"metadata", required_argument, NULL, 'm'},
      {"module-cluster", required_argument, NULL, OPT_MODULE_CLUSTER},
      {"ecds-fetch-timeout", required_argument, NULL, OPT_ECDS_FETCH_TIMEOUT},
      {"inline-wasm", no_argument, NULL, OPT_INLINE_WASM},
      {"dump-dir", required_argument, NULL, 'd'},
      {"fetch-modules", no_argument, NULL, OPT_FETCH_MODULES},
      ETCD_LONG_OPTS,
      MODULE_LONG_OPTS,
      {NULL, 0, NULL, 0}};
  Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
  struct delivery_config dcfg;
  struct delivery *delivery = NULL;
  const char *insecure[MAX_INSECURE_REGISTRIES + 1] = {NULL};
  size_t n_insecure = 0;
  int fetch = 0, fetch_ok = 1;
  const char *dump_dir = NULL;
  struct meta_builder *mb = calloc(1, sizeof(*mb));
  struct encode_opts eopts;
  struct catalog *cat = NULL;
  struct snapshot *snap = NULL;
  struct proxy_id pid = {0};
  struct xds_err err = {0, ""};
  const char *store = NULL;
  json_t *out = NULL;
  struct etcd_config ecfg;
  int c, index, status = 2;

  if (mb == NULL)
    return 2;
  etcd_config_init(&ecfg);
  memset(&dcfg, 0, sizeof(dcfg));
  dcfg.cache_dir = DEFAULT_MODULE_CACHE;
  dcfg.base_url = "http://" ADMIN_DEFAULT_LISTEN;
  encode_opts_default(&eopts);
  google__protobuf__struct__init(&mb->st);
  mb->st.fields = mb->entries;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, &index)) != -1) {
    switch (c) {
    case 's':
      store = optarg;
      break;
    case OPT_ETCD:
      if (etcd_config_set_flag(&ecfg, opts[index].name, optarg, &err) < 0) {
        fprintf(stderr, "wasmxds render: %s\n", err.msg);
        goto out;
      }
      break;
    case 'n':
      node.id = optarg;
      break;
    case 'c':
      node.cluster = optarg;
      break;
    case 'm':
      if (meta_add(mb, optarg) < 0)
        goto out;
      break;
    case 'd':
      dump_dir = optarg;
      break;
    case OPT_MODULE_CLUSTER:
      eopts.module_cluster = optarg;
      break;
    case OPT_ECDS_FETCH_TIMEOUT:
      if (parse_ms("--ecds-fetch-timeout", optarg,
                   &eopts.ecds_fetch_timeout_ms) < 0)
        goto out;
      break;
    case OPT_INLINE_WASM:
      eopts.inline_wasm = 1;
      break;
    case OPT_FETCH_MODULES:
      fetch = 1;
      break;
    default: {
      int r = module_flag(c, optarg, &dcfg, insecure, &n_insecure, &fetch_ok);

      if (r < 0)
        goto out;
      if (r == 0) {
        usage(stderr);
        goto out;
      }
    }
    }
  }
  if (store == NULL || node.id == NULL) {
    fprintf(stderr, "wasmxds render: --store and --node-id are required\n");
    goto out;
  }
  node.metadata = &mb->st;
  if (identity_from_node(&node, &pid, &err) < 0) {
    fprintf(stderr, "wasmxds render: %s\n", err.msg);
    goto out;
  }
  /* Problems go to stderr; like the server, render serves what is valid. */
  if (load_for_command(store, &ecfg, &cat, stderr) < 0)
    goto out;
  if (fetch && fetch_ok &&
      render_fetch(&dcfg, insecure, n_insecure, cat, &delivery) < 0)
    goto out;
  if (delivery != NULL) {
    eopts.module_of = delivery_module_of;
    eopts.module_ctx = delivery;
  }
  if (snapshot_build(cat, &eopts, 1, &snap, &err) < 0) {
    fprintf(stderr, "wasmxds render: %s\n", err.msg);
    goto out;
  }
  if (dump_dir != NULL && dump_resources(snap, &pid, dump_dir) < 0)
    goto out;
  out = render_proxy(snap, &pid);
  if (out == NULL || json_dumpf(out, stdout, JSON_INDENT(2)) < 0) {
    fprintf(stderr, "wasmxds render: out of memory\n");
    goto out;
  }
  putchar('\n');
  status = EXIT_SUCCESS;
out:
  json_decref(out);
  snapshot_unref(snap);
  catalog_unref(cat);
  proxy_id_cleanup(&pid);
  etcd_config_cleanup(&ecfg);
  delivery_free(delivery);
  for (size_t i = 0; i < mb->n_nested; i++)
    json_decref(mb->json[i]);
  free(mb);
  return status;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "validate") == 0)
    return cmd_validate(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "render") == 0)
    return cmd_render(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "serve") == 0)
    return cmd_serve(argc - 1, argv + 1);
  return cmd_serve(argc, argv);
}
