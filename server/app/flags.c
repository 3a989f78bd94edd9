/*
 * flags.c: parsing of every wasmxds flag into the plain config structs of
 * flags.h, and the usage texts. Bad values are said on stderr naming the
 * flag and the value; nothing is started here.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app/flags.h"
#include "server/admin/status_etcd.h"

#include "base/build_info.h"
#include "server/compose/identity.h"
#include "store/file_watch.h"

void flags_usage_serve(FILE *f) {
  fprintf(
      f,
      "Usage: wasmxds [serve] [OPTION]...\n"
      "       wasmxds validate PATH|URL [--etcd-* ...]\n"
      "       wasmxds render --store PATH|URL --node-id ID [OPTION]...\n"
      "       wasmxds validate --help, wasmxds render --help\n"
      "Serve WebAssembly HTTP filters to Envoy over xDS (LDS + ECDS).\n"
      "\n"
      "  --listen HOST:PORT     address of the xDS gRPC server "
      "(default " FLAGS_DEFAULT_LISTEN ")\n"
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
      "  --attachment-required  an extension no ListenerTemplate attaches "
      "(spec.extensions)\n"
      "                         reaches no listener (README "
      "\"Attachments\")\n"
      "  --inline-wasm          put Wasm configs inline in listeners "
      "instead of\n"
      "                         ECDS references (every change drains "
      "listeners)\n"
      "  --ecds-slots N         give each listener at least N ECDS filter "
      "slots per\n"
      "                         phase: adding, removing and reordering "
      "extensions\n"
      "                         then drains nothing (0, default: off; at "
      "most 64)\n"
      "  --istio-root-namespace NS  Istio config root namespace: its "
      "WasmPlugins\n"
      "                         apply to every namespace (default "
      "istio-system)\n"
      "  --admin-listen HOST:PORT  admin HTTP address "
      "(default " ADMIN_DEFAULT_LISTEN ")\n"
      "  --modules-listen HOST:PORT  serve /modules/ on this address "
      "instead of\n"
      "                         the admin one (recommended in production)\n"
      "  --admin-token-file FILE  /debug/ pages need "
      "\"Authorization: Bearer\"\n"
      "                         with the token in FILE (one line)\n"
      "  --admin-header-timeout MS  a request's headers must arrive "
      "within MS of\n"
      "                         connecting (default 10000; both "
      "listeners)\n"
      "  --admin-max-conns-per-ip N  connections one client address may "
      "hold\n"
      "                         open (default 64; both listeners)\n"
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
      "  --threads N            serving threads, each owning a share of the "
      "streams\n"
      "                         (default: the online CPUs, at most 16)\n"
      "  --debounce-ms MS       coalesce store changes this long "
      "(default 100)\n"
      "  --max-removal-share PCT  hold a store change that removes more "
      "than PCT%%\n"
      "                         of the resources (from 10 resources on; "
      "default 50;\n"
      "                         100: only a change removing every listener\n"
      "                         template is held) until POST "
      "/store/confirm-removal\n"
      "  --write-status         (etcd store) write each resource's status "
      "under\n"
      "                         the status prefix; one replica at a time "
      "writes\n"
      "  --status-prefix PATH   where (default <store prefix>-status)\n"
      "  --status-interval MS   collect and write changes this often "
      "(default 2000)\n"
      "  --status-lease-ttl S   the writer's etcd lease (default 10)\n"
      "  --replica-name NAME    this replica in the leader key and the "
      "status\n"
      "                         (default <hostname>:<pid>)\n"
      "  --module-cache DIR     where fetched modules are kept "
      "(default " FLAGS_DEFAULT_MODULE_CACHE ")\n"
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
      "  --log-format FORMAT    text (default) or json (one object a "
      "line)\n"
      "  -h, --help             print this help and exit\n"
      "  -V, --version          print the version and commit, and exit\n");
}

void flags_usage_validate(FILE *f) {
  fprintf(f, "Usage: wasmxds validate PATH|URL [--etcd-* ...]\n"
             "Loads a store (a YAML file or directory, or an etcd:// URL) "
             "exactly as the\n"
             "server does, prints every problem and a summary, and exits 1 "
             "when there is\n"
             "an error (0 otherwise, 2 on a usage error).\n"
             "\n" ETCD_CONFIG_FLAGS_HELP
             "  -h, --help                print this help and exit\n");
}

void flags_usage_render(FILE *f) {
  fprintf(f,
          "Usage: wasmxds render --store PATH|URL --node-id ID [OPTION]...\n"
          "Prints, as JSON, what the proxy described by --node-id, --cluster "
          "and\n"
          "--metadata would receive, and why each extension is in or out.\n"
          "\n"
          "  --store PATH|URL       the store, as for serve (required)\n"
          "  --node-id ID           the proxy's node id (required)\n"
          "  --cluster NAME         the proxy's node cluster\n"
          "  --metadata KEY=VALUE   a node metadata field (repeatable); VALUE "
          "may be a\n"
          "                         JSON object of strings (for "
          "wasmxds.labels)\n"
          "  --dump-dir DIR         also write the exact bytes of each "
          "resource there\n"
          "  --fetch-modules        resolve modules as the server would (and "
          "wait)\n"
          "  --module-cluster NAME, --ecds-fetch-timeout MS, --inline-wasm, "
          "--attachment-required, "
          "--ecds-slots N, "
          "--istio-root-namespace NS, the\n"
          "  --module-* flags and the --etcd-* flags: as for serve (wasmxds "
          "--help)\n"
          "  -h, --help             print this help and exit\n");
}

enum {
  OPT_LISTEN = 256,
  OPT_STORE,
  OPT_LOG_LEVEL,
  OPT_LOG_FORMAT,
  OPT_MODULE_CLUSTER,
  OPT_ECDS_FETCH_TIMEOUT,
  OPT_ISTIO_ROOT_NAMESPACE,
  OPT_INLINE_WASM,
  OPT_ATTACHMENT_REQUIRED,
  OPT_ECDS_SLOTS,
  OPT_ADMIN_LISTEN,
  OPT_MODULES_LISTEN,
  OPT_ADMIN_TOKEN_FILE,
  OPT_ADMIN_HEADER_TIMEOUT,
  OPT_ADMIN_PER_IP,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_CLIENT_CA,
  OPT_MAX_STREAMS,
  OPT_KEEPALIVE_MS,
  OPT_DRAIN_MS,
  OPT_THREADS,
  OPT_DEBOUNCE_MS,
  OPT_MAX_REMOVAL_SHARE,
  OPT_WRITE_STATUS,
  OPT_STATUS_PREFIX,
  OPT_STATUS_INTERVAL,
  OPT_STATUS_LEASE_TTL,
  OPT_REPLICA_NAME,
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
  OPT_ETCD, /* etcd-* flags, handed to etcd_config_set_flag by name */
  OPT_NODE_ID,
  OPT_CLUSTER,
  OPT_METADATA,
  OPT_DUMP_DIR,
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

/* The --etcd-* flags. */
#define ETCD_LONG_OPTS                                                         \
  {"etcd-user", required_argument, NULL, OPT_ETCD},                            \
      {"etcd-password-file", required_argument, NULL, OPT_ETCD},               \
      {"etcd-ca", required_argument, NULL, OPT_ETCD},                          \
      {"etcd-cert", required_argument, NULL, OPT_ETCD},                        \
      {"etcd-key", required_argument, NULL, OPT_ETCD}, {                       \
    "etcd-debounce", required_argument, NULL, OPT_ETCD                         \
  }

/* The flags that shape the encoded resources, for serve and render. */
#define ENCODE_LONG_OPTS                                                       \
  {"module-cluster", required_argument, NULL, OPT_MODULE_CLUSTER},             \
      {"ecds-fetch-timeout", required_argument, NULL, OPT_ECDS_FETCH_TIMEOUT}, \
      {"istio-root-namespace", required_argument, NULL,                        \
       OPT_ISTIO_ROOT_NAMESPACE},                                              \
      {"ecds-slots", required_argument, NULL, OPT_ECDS_SLOTS},                 \
      {"attachment-required", no_argument, NULL, OPT_ATTACHMENT_REQUIRED}, {   \
    "inline-wasm", no_argument, NULL, OPT_INLINE_WASM                          \
  }

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

/* The flags that take a whole number, with their bounds. */
static const struct int_flag {
  int code;
  const char *name;
  long min, max;
} INT_FLAGS[] = {
    {OPT_MODULE_PULL_INTERVAL, "--module-always-interval", -1, 86400 * 30},
    {OPT_MODULE_WORKERS, "--module-pull-workers", 1, 64},
    {OPT_MODULE_FETCH_TIMEOUT, "--module-fetch-timeout", 100, 3600000},
    {OPT_MODULE_RETRY_MAX, "--module-retry-max", 1000, 86400000},
    {OPT_MODULE_MAX_BYTES, "--module-max-bytes", 1024, 1 << 30},
    {OPT_ECDS_SLOTS, "--ecds-slots", 0, ENCODE_SLOTS_MAX},
    {OPT_ADMIN_HEADER_TIMEOUT, "--admin-header-timeout", 100, 3600000},
    {OPT_ADMIN_PER_IP, "--admin-max-conns-per-ip", 1, 1000000},
    {OPT_MAX_STREAMS, "--max-streams", 1, 10000000},
    {OPT_KEEPALIVE_MS, "--keepalive-ms", 1000, 86400000},
    {OPT_DRAIN_MS, "--drain-ms", 1, 3600000},
    {OPT_THREADS, "--threads", 1, XDS_SERVER_THREADS_MAX},
    {OPT_DEBOUNCE_MS, "--debounce-ms", 0, FILE_WATCH_MAX_DEBOUNCE_MS},
    {OPT_MAX_REMOVAL_SHARE, "--max-removal-share", 1, 100},
    {OPT_STATUS_INTERVAL, "--status-interval", 50, 3600000},
    {OPT_STATUS_LEASE_TTL, "--status-lease-ttl", 2, 3600}};

/* When c is a flag of INT_FLAGS, parses its value s into *out within the
 * flag's bounds. Returns 0 (also when c is not one of them; *out is then
 * left alone), or -1 on a bad value (said on stderr). */
static int int_arg(int c, const char *s, long *out) {
  const struct int_flag *f = NULL;
  char *end;
  long v;

  for (size_t i = 0; i < sizeof(INT_FLAGS) / sizeof(INT_FLAGS[0]); i++)
    if (INT_FLAGS[i].code == c)
      f = &INT_FLAGS[i];
  if (f == NULL)
    return 0;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < f->min || v > f->max) {
    fprintf(stderr,
            "wasmxds: %s: \"%s\" is not a whole number between %ld "
            "and %ld\n",
            f->name, s, f->min, f->max);
    return -1;
  }
  *out = v;
  return 0;
}

static void module_flags_init(struct module_flags *m) {
  memset(m, 0, sizeof(*m));
  m->delivery.cache_dir = FLAGS_DEFAULT_MODULE_CACHE;
  m->fetch = 1;
}

/*
 * The module-fetching flags (serve and render): c is the option's code,
 * arg its value. Returns 1 when c is one of them (applied to m), 0 when it
 * is not, -1 on a bad value (said on stderr).
 */
static int module_flag(int c, char *arg, struct module_flags *m) {
  struct delivery_config *d = &m->delivery;
  long v = 0;

  if (int_arg(c, arg, &v) < 0)
    return -1;
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
      if (m->n_insecure == FLAGS_MAX_INSECURE_REGISTRIES) {
        fprintf(stderr, "wasmxds: more than %d insecure registries\n",
                FLAGS_MAX_INSECURE_REGISTRIES);
        return -1;
      }
      m->insecure[m->n_insecure++] = h;
    }
    d->insecure_registries = m->insecure;
    return 1;
  }
  case OPT_MODULE_PULL_INTERVAL:
    d->always_interval_s = v;
    return 1;
  case OPT_MODULE_CA_FILE:
    d->ca_file = arg;
    return 1;
  case OPT_MODULE_WORKERS:
    d->workers = (int)v;
    return 1;
  case OPT_MODULE_FETCH_TIMEOUT:
    d->fetch_timeout_ms = v;
    return 1;
  case OPT_MODULE_RETRY_MAX:
    d->backoff_max_ms = v;
    return 1;
  case OPT_MODULE_MAX_BYTES:
    d->max_module_bytes = (size_t)v;
    return 1;
  case OPT_MODULE_ALLOW_LINK_LOCAL:
    d->allow_link_local = 1;
    return 1;
  case OPT_NO_MODULE_FETCH:
    m->fetch = 0;
    return 1;
  default:
    return 0;
  }
}

/* The encoding flags (serve and render), as module_flag(). */
static int encode_flag(int c, char *arg, struct encode_opts *o) {
  long v = 0;

  if (int_arg(c, arg, &v) < 0)
    return -1;
  switch (c) {
  case OPT_MODULE_CLUSTER:
    if (arg[0] == '\0') {
      fprintf(stderr, "wasmxds: --module-cluster: must not be empty\n");
      return -1;
    }
    o->module_cluster = arg;
    return 1;
  case OPT_ECDS_FETCH_TIMEOUT:
    return parse_ms("--ecds-fetch-timeout", arg, &o->ecds_fetch_timeout_ms) < 0
               ? -1
               : 1;
  case OPT_INLINE_WASM:
    o->inline_wasm = 1;
    return 1;
  case OPT_ATTACHMENT_REQUIRED:
    o->attachment_required = 1;
    return 1;
  case OPT_ECDS_SLOTS:
    o->ecds_slots = (uint32_t)v;
    return 1;
  case OPT_ISTIO_ROOT_NAMESPACE:
    if (!identity_namespace_valid(arg, strlen(arg))) {
      fprintf(stderr,
              "wasmxds: --istio-root-namespace: \"%s\" is not a namespace "
              "(a DNS-1123 label: lowercase letters, digits and '-', at most "
              "63)\n",
              arg);
      return -1;
    }
    o->istio_root_namespace = arg;
    return 1;
  default:
    return 0;
  }
}

/* A flag serve and render share (encode_flag, then module_flag): 1 when
 * applied, 0 when c is none of them, -1 on a bad value (said). */
static int shared_flag(int c, char *arg, struct encode_opts *o,
                       struct module_flags *m) {
  int r = encode_flag(c, arg, o);

  return r == 0 ? module_flag(c, arg, m) : r;
}

/* An --etcd-* flag by its long name; -1 on a bad value (said). */
static int etcd_flag(struct etcd_config *e, const char *name, char *arg) {
  struct xds_err err = {0, ""};

  if (etcd_config_set_flag(e, name, arg, &err) < 0) {
    fprintf(stderr, "wasmxds: %s\n", err.msg);
    return -1;
  }
  return 0;
}

int flags_parse_serve(int argc, char **argv, struct serve_config *cfg) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"store", required_argument, NULL, OPT_STORE},
      {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
      {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
      {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
      {"modules-listen", required_argument, NULL, OPT_MODULES_LISTEN},
      {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN_FILE},
      {"admin-header-timeout", required_argument, NULL,
       OPT_ADMIN_HEADER_TIMEOUT},
      {"admin-max-conns-per-ip", required_argument, NULL, OPT_ADMIN_PER_IP},
      {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
      {"tls-key", required_argument, NULL, OPT_TLS_KEY},
      {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
      {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
      {"keepalive-ms", required_argument, NULL, OPT_KEEPALIVE_MS},
      {"drain-ms", required_argument, NULL, OPT_DRAIN_MS},
      {"threads", required_argument, NULL, OPT_THREADS},
      {"debounce-ms", required_argument, NULL, OPT_DEBOUNCE_MS},
      {"max-removal-share", required_argument, NULL, OPT_MAX_REMOVAL_SHARE},
      {"write-status", no_argument, NULL, OPT_WRITE_STATUS},
      {"status-prefix", required_argument, NULL, OPT_STATUS_PREFIX},
      {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
      {"status-lease-ttl", required_argument, NULL, OPT_STATUS_LEASE_TTL},
      {"replica-name", required_argument, NULL, OPT_REPLICA_NAME},
      ENCODE_LONG_OPTS,
      MODULE_LONG_OPTS,
      ETCD_LONG_OPTS,
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  int c, index, r;
  long v = 0;

  memset(cfg, 0, sizeof(*cfg));
  etcd_config_init(&cfg->etcd);
  cfg->debounce_ms = FILE_WATCH_DEFAULT_DEBOUNCE_MS;
  cfg->log_level = xds_log_get_level();
  cfg->server.listen = FLAGS_DEFAULT_LISTEN;
  cfg->admin.listen = ADMIN_DEFAULT_LISTEN;
  encode_opts_default(&cfg->encode);
  module_flags_init(&cfg->modules);
  optind = 1;
  while ((c = getopt_long(argc, argv, "hV", opts, &index)) != -1) {
    if (int_arg(c, optarg, &v) < 0)
      return FLAGS_ERROR;
    switch (c) {
    case OPT_LISTEN:
      cfg->server.listen = optarg;
      break;
    case OPT_STORE:
      cfg->store = optarg;
      break;
    case OPT_ETCD:
      if (strcmp(opts[index].name, "etcd-debounce") == 0)
        cfg->etcd_debounce_given = 1;
      if (etcd_flag(&cfg->etcd, opts[index].name, optarg) < 0)
        return FLAGS_ERROR;
      break;
    case OPT_LOG_LEVEL:
      if (xds_log_parse_level(optarg, &cfg->log_level) < 0) {
        fprintf(stderr,
                "wasmxds: --log-level: \"%s\" is not one of error, "
                "warn, info, debug\n",
                optarg);
        return FLAGS_ERROR;
      }
      break;
    case OPT_LOG_FORMAT: {
      enum xds_log_format f;
      if (xds_log_parse_format(optarg, &f) < 0) {
        fprintf(stderr, "wasmxds: --log-format: \"%s\" is not text or json\n",
                optarg);
        return FLAGS_ERROR;
      }
      /* At once, so that every later line (flag errors included) uses
       * it. */
      xds_log_set_format(f);
      break;
    }
    case OPT_ADMIN_LISTEN:
      cfg->admin.listen = optarg;
      break;
    case OPT_MODULES_LISTEN:
      cfg->modules_listen = optarg;
      break;
    case OPT_ADMIN_TOKEN_FILE:
      cfg->admin.token_file = optarg;
      break;
    case OPT_ADMIN_HEADER_TIMEOUT:
      cfg->admin.header_timeout_ms = (unsigned)v;
      break;
    case OPT_ADMIN_PER_IP:
      cfg->admin.max_per_ip = (unsigned)v;
      break;
    case OPT_TLS_CERT:
      cfg->server.tls_cert = optarg;
      break;
    case OPT_TLS_KEY:
      cfg->server.tls_key = optarg;
      break;
    case OPT_TLS_CLIENT_CA:
      cfg->server.tls_client_ca = optarg;
      break;
    case OPT_MAX_STREAMS:
      cfg->server.max_streams = (int)v;
      break;
    case OPT_KEEPALIVE_MS:
      cfg->server.keepalive_ms = (int)v;
      break;
    case OPT_DRAIN_MS:
      cfg->server.drain_ms = (int)v;
      break;
    case OPT_THREADS:
      cfg->server.threads = (int)v;
      break;
    case OPT_DEBOUNCE_MS:
      cfg->debounce_ms = (int)v;
      break;
    case OPT_WRITE_STATUS:
      cfg->write_status = 1;
      break;
    case OPT_STATUS_PREFIX:
      cfg->status_prefix = optarg;
      break;
    case OPT_STATUS_INTERVAL:
      cfg->status_interval_ms = (int)v;
      break;
    case OPT_STATUS_LEASE_TTL:
      cfg->status_lease_ttl_s = (int)v;
      break;
    case OPT_REPLICA_NAME:
      if (optarg[0] == '\0' || strlen(optarg) > 256) {
        fprintf(stderr, "wasmxds: --replica-name: 1 to 256 bytes\n");
        return FLAGS_ERROR;
      }
      cfg->replica_name = optarg;
      break;
    case OPT_MAX_REMOVAL_SHARE:
      cfg->max_removal_pct = (int)v;
      break;
    case 'h':
      flags_usage_serve(stdout);
      return FLAGS_EXIT;
    case 'V':
      printf("wasmxds %s (commit %s)\n", xds_build_version(),
             xds_build_commit());
      return FLAGS_EXIT;
    default:
      r = shared_flag(c, optarg, &cfg->encode, &cfg->modules);
      if (r < 0)
        return FLAGS_ERROR;
      if (r == 0) {
        flags_usage_serve(stderr);
        return FLAGS_ERROR;
      }
      break;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "wasmxds: unexpected argument \"%s\"\n", argv[optind]);
    flags_usage_serve(stderr);
    return FLAGS_ERROR;
  }
  if (cfg->store == NULL) {
    fprintf(stderr, "wasmxds: --store PATH is required\n");
    flags_usage_serve(stderr);
    return FLAGS_ERROR;
  }
  if ((cfg->write_status || cfg->status_prefix != NULL ||
       cfg->status_interval_ms != 0 || cfg->status_lease_ttl_s != 0 ||
       cfg->replica_name != NULL) &&
      !(cfg->write_status && etcd_config_is_url(cfg->store))) {
    fprintf(stderr, "wasmxds: --write-status (and --status-prefix, "
                    "--status-interval, --status-lease-ttl, --replica-name) "
                    "need an etcd:// store and --write-status\n");
    return FLAGS_ERROR;
  }
  {
    long iv = cfg->status_interval_ms ? cfg->status_interval_ms
                                      : STATUS_ETCD_DEFAULT_INTERVAL_MS;
    long ttl = cfg->status_lease_ttl_s ? cfg->status_lease_ttl_s
                                       : STATUS_ETCD_DEFAULT_LEASE_TTL_S;

    if (iv * 3 > ttl * 1000) {
      fprintf(stderr,
              "wasmxds: --status-interval %ld ms: the lease is renewed "
              "at most once per interval, so it must be at most a third "
              "of --status-lease-ttl (%ld s)\n",
              iv, ttl);
      return FLAGS_ERROR;
    }
  }
  return FLAGS_RUN;
}

void flags_serve_cleanup(struct serve_config *cfg) {
  etcd_config_cleanup(&cfg->etcd);
}

int flags_parse_validate(int argc, char **argv, struct validate_config *cfg) {
  static const struct option opts[] = {
      ETCD_LONG_OPTS, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  int c, index;

  memset(cfg, 0, sizeof(*cfg));
  etcd_config_init(&cfg->etcd);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, &index)) != -1) {
    switch (c) {
    case 'h':
      flags_usage_validate(stdout);
      return FLAGS_EXIT;
    case OPT_ETCD:
      if (etcd_flag(&cfg->etcd, opts[index].name, optarg) < 0)
        goto usage;
      break;
    default:
      goto usage;
    }
  }
  if (argc - optind != 1)
    goto usage;
  cfg->store = argv[optind];
  return FLAGS_RUN;
usage:
  flags_usage_validate(stderr);
  return FLAGS_ERROR;
}

void flags_validate_cleanup(struct validate_config *cfg) {
  etcd_config_cleanup(&cfg->etcd);
}

int flags_parse_render(int argc, char **argv, struct render_config *cfg) {
  static const struct option opts[] = {
      {"store", required_argument, NULL, OPT_STORE},
      {"node-id", required_argument, NULL, OPT_NODE_ID},
      {"cluster", required_argument, NULL, OPT_CLUSTER},
      {"metadata", required_argument, NULL, OPT_METADATA},
      {"dump-dir", required_argument, NULL, OPT_DUMP_DIR},
      {"fetch-modules", no_argument, NULL, OPT_FETCH_MODULES},
      ENCODE_LONG_OPTS,
      ETCD_LONG_OPTS,
      MODULE_LONG_OPTS,
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c, index, r;

  memset(cfg, 0, sizeof(*cfg));
  etcd_config_init(&cfg->etcd);
  encode_opts_default(&cfg->encode);
  module_flags_init(&cfg->modules);
  cfg->modules.delivery.base_url = "http://" ADMIN_DEFAULT_LISTEN;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, &index)) != -1) {
    switch (c) {
    case 'h':
      flags_usage_render(stdout);
      return FLAGS_EXIT;
    case OPT_STORE:
      cfg->store = optarg;
      break;
    case OPT_ETCD:
      if (etcd_flag(&cfg->etcd, opts[index].name, optarg) < 0)
        return FLAGS_ERROR;
      break;
    case OPT_NODE_ID:
      cfg->node_id = optarg;
      break;
    case OPT_CLUSTER:
      cfg->cluster = optarg;
      break;
    case OPT_METADATA:
      if (cfg->n_metadata == FLAGS_MAX_METADATA) {
        fprintf(stderr, "wasmxds render: more than %d --metadata flags\n",
                FLAGS_MAX_METADATA);
        return FLAGS_ERROR;
      }
      cfg->metadata[cfg->n_metadata++] = optarg;
      break;
    case OPT_DUMP_DIR:
      cfg->dump_dir = optarg;
      break;
    case OPT_FETCH_MODULES:
      cfg->fetch_modules = 1;
      break;
    default:
      r = shared_flag(c, optarg, &cfg->encode, &cfg->modules);
      if (r < 0)
        return FLAGS_ERROR;
      if (r == 0) {
        flags_usage_render(stderr);
        return FLAGS_ERROR;
      }
    }
  }
  if (optind < argc) {
    fprintf(stderr, "wasmxds render: unexpected argument \"%s\"\n",
            argv[optind]);
    flags_usage_render(stderr);
    return FLAGS_ERROR;
  }
  if (cfg->store == NULL || cfg->node_id == NULL) {
    fprintf(stderr, "wasmxds render: --store and --node-id are required\n");
    flags_usage_render(stderr);
    return FLAGS_ERROR;
  }
  return FLAGS_RUN;
}

void flags_render_cleanup(struct render_config *cfg) {
  etcd_config_cleanup(&cfg->etcd);
}
