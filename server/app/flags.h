/*
 * flags.h: the command line of every wasmxds subcommand, parsed into plain
 * config structs. Nothing here starts anything: the subcommands
 * (cmd_serve.c, cmd_validate.c, cmd_render.c) take the structs and wire
 * the program.
 *
 * Each parser fills its struct from argv (argv[0] is the subcommand's
 * name, or the program's for serve without a subcommand) and returns
 *   FLAGS_RUN   run the subcommand with the struct,
 *   FLAGS_EXIT  --help or --version was printed on stdout: exit 0,
 *   FLAGS_ERROR a bad flag or value was said on stderr (with the usage):
 *               exit with the subcommand's usage status.
 * Strings in the structs borrow argv (which outlives them), except those
 * of struct etcd_config, which flags_*_cleanup() frees. Every struct must
 * be cleaned up after a parse, whatever it returned.
 *
 * To add a serve flag: a field in struct serve_config with its default in
 * flags_parse_serve(), an OPT_ code, a long_opts entry and a case in
 * flags.c, and a line of the usage text (and the README's "Running").
 *
 * Threads: the main thread, before any other starts (getopt is not
 * reentrant).
 */
#ifndef XDS_APP_FLAGS_H
#define XDS_APP_FLAGS_H

#include <stddef.h>
#include <stdio.h>

#include "base/log.h"
#include "server/admin/admin.h"
#include "server/compose/delivery.h"
#include "server/compose/encode.h"
#include "server/transport/xds_server.h"
#include "store/etcd_config.h"

#define FLAGS_DEFAULT_LISTEN "127.0.0.1:18000"
#define FLAGS_DEFAULT_MODULE_CACHE "/var/cache/wasmxds/modules"
/* Most --insecure-registries hosts kept (they protect nothing but the
 * array's size). */
#define FLAGS_MAX_INSECURE_REGISTRIES 32
/* Most --metadata flags of render (and JSON-object values among them). */
#define FLAGS_MAX_METADATA 64

enum flags_result { FLAGS_ERROR = -1, FLAGS_RUN = 0, FLAGS_EXIT = 1 };

/* The module-fetching flags, shared by serve and render. */
struct module_flags {
  struct delivery_config delivery; /* insecure_registries points below */
  const char *insecure[FLAGS_MAX_INSECURE_REGISTRIES + 1]; /* NULL-ended */
  size_t n_insecure;
  int fetch; /* 0 after --no-module-fetch */
};

struct serve_config {
  const char *store;               /* --store (required) */
  struct etcd_config etcd;         /* --etcd-* (an etcd:// store) */
  int etcd_debounce_given;         /* --etcd-debounce was given */
  int debounce_ms;                 /* --debounce-ms */
  int max_removal_pct;             /* --max-removal-share (percent) */
  enum xds_log_level log_level;    /* --log-level */
  struct xds_server_config server; /* --listen, --tls-*, --max-streams, ... */
  struct admin_config admin;       /* --admin-listen, --admin-token-file,
                                      --admin-header-timeout,
                                      --admin-max-conns-per-ip */
  const char *modules_listen;      /* --modules-listen, nullable: modules
                                      on the admin listener */
  struct encode_opts encode;       /* --module-cluster, --ecds-fetch-timeout,
                                      --inline-wasm */
  struct module_flags modules;     /* --module-*, --pull-secrets, ... */
  int write_status;                /* --write-status (etcd stores) */
  const char *status_prefix;       /* --status-prefix, nullable: default */
  int status_interval_ms;          /* --status-interval; 0: default */
  int status_lease_ttl_s;          /* --status-lease-ttl; 0: default */
  const char *replica_name;        /* --replica-name, nullable: default */
};

struct validate_config {
  const char *store;       /* the one PATH|URL argument */
  struct etcd_config etcd; /* --etcd-* */
};

struct render_config {
  const char *store;                  /* --store */
  const char *node_id;                /* --node-id */
  const char *cluster;                /* --cluster, nullable */
  const char *dump_dir;               /* --dump-dir, nullable */
  int fetch_modules;                  /* --fetch-modules */
  char *metadata[FLAGS_MAX_METADATA]; /* --metadata KEY=VALUE, in order */
  size_t n_metadata;
  struct etcd_config etcd;     /* --etcd-* */
  struct encode_opts encode;   /* as serve */
  struct module_flags modules; /* as serve */
};

/* wasmxds [serve] [OPTION]... */
int flags_parse_serve(int argc, char **argv, struct serve_config *cfg);
void flags_serve_cleanup(struct serve_config *cfg);

/* wasmxds validate PATH|URL [--etcd-* ...] */
int flags_parse_validate(int argc, char **argv, struct validate_config *cfg);
void flags_validate_cleanup(struct validate_config *cfg);

/* wasmxds render --store ... --node-id ... */
int flags_parse_render(int argc, char **argv, struct render_config *cfg);
void flags_render_cleanup(struct render_config *cfg);

/* The usage text of each subcommand (the program's is serve's, which
 * also lists the others). */
void flags_usage_serve(FILE *f);
void flags_usage_validate(FILE *f);
void flags_usage_render(FILE *f);

#endif
