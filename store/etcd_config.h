/*
 * etcd_config.h: where the etcd store lives and how to reach it.
 *
 * A plain value struct filled from `--store etcd://...` and the --etcd-*
 * flags, shared by the server, its watcher (store/etcd_watch.h) and
 * wasmxdsctl. The URL form is
 *
 *   etcd://HOST:PORT[,HOST:PORT...][/PREFIX]     (etcds:// for TLS)
 *
 * HOST is a name, an IPv4 literal or a bracketed IPv6 literal; PORT
 * defaults to 2379. PREFIX (trailing slashes dropped) defaults to
 * ETCD_DEFAULT_PREFIX; every key of the store lives below PREFIX + "/".
 * TLS (https to every member) is used with etcds://, or with etcd:// as soon
 * as --etcd-ca or --etcd-cert is given.
 *
 * The password is read from --etcd-password-file by etcd_config_finish()
 * and kept only in the struct (wiped by etcd_config_cleanup()); no function
 * of the etcd store ever logs it, nor the auth token.
 */
#ifndef XDS_STORE_ETCD_CONFIG_H
#define XDS_STORE_ETCD_CONFIG_H

#include <stddef.h>

#include "base/err.h"

/* Most members listed in one URL. */
#define ETCD_MAX_ENDPOINTS 16
/* Longest URL, prefix or flag value accepted. */
#define ETCD_MAX_URL 2048
/* Largest password file read (the password is its first line). */
#define ETCD_MAX_PASSWORD 1024
#define ETCD_DEFAULT_PORT 2379
#define ETCD_DEFAULT_PREFIX "/wasmxds"
#define ETCD_DEFAULT_DEBOUNCE_MS 100
#define ETCD_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define ETCD_DEFAULT_REQUEST_TIMEOUT_MS 30000
#define ETCD_DEFAULT_BACKOFF_MIN_MS 100
#define ETCD_DEFAULT_BACKOFF_MAX_MS 5000
#define ETCD_DEFAULT_PAGE_SIZE 1000
#define ETCD_DEFAULT_START_TIMEOUT_MS 10000

/* The flags etcd_config_set_flag() knows, for a usage text. */
#define ETCD_CONFIG_FLAGS_HELP                                                 \
  "  --etcd-user NAME          etcd user (auth enabled on the cluster)\n"      \
  "  --etcd-password-file F    file whose first line is that user's "          \
  "password\n"                                                                 \
  "  --etcd-ca FILE            CA bundle that signed the etcd members' "       \
  "certificates\n"                                                             \
  "                            (turns TLS on)\n"                               \
  "  --etcd-cert FILE          client certificate for etcd (PEM; turns TLS "   \
  "on)\n"                                                                      \
  "  --etcd-key FILE           its private key (PEM)\n"                        \
  "  --etcd-debounce MS        quiet time before a burst of changes is "       \
  "served (default 100)\n"

struct etcd_config {
  char *endpoints[ETCD_MAX_ENDPOINTS]; /* "HOST:PORT", in URL order */
  size_t n_endpoints;
  char *prefix;        /* no trailing '/', e.g. "/wasmxds" */
  int tls;             /* set by etcds:// or by etcd_config_finish() */
  char *user;          /* --etcd-user, nullable */
  char *password_file; /* --etcd-password-file, nullable */
  char *password;      /* read by etcd_config_finish(); never logged */
  char *ca;            /* --etcd-ca, nullable */
  char *cert;          /* --etcd-cert, nullable */
  char *key;           /* --etcd-key, nullable */
  unsigned debounce_ms;
  unsigned connect_timeout_ms;
  unsigned request_timeout_ms;
  unsigned backoff_min_ms;   /* first reconnect delay */
  unsigned backoff_max_ms;   /* cap of the doubling delay */
  unsigned page_size;        /* keys per range request of a (re-)list */
  unsigned start_timeout_ms; /* how long etcd_watch_start() waits for the
                                first load; 0: does not wait */
};

/* Zeroes c and sets every default above. */
void etcd_config_init(struct etcd_config *c);
/* Frees every string (wiping the password) and zeroes c. */
void etcd_config_cleanup(struct etcd_config *c);

/* Whether a --store value names an etcd store (etcd:// or etcds://). */
int etcd_config_is_url(const char *store);

/*
 * Parses an etcd:// or etcds:// URL (form above) into c's endpoints,
 * prefix and tls, replacing what c held there. Returns 0, or XDS_EINVAL
 * (err: which part is wrong; c's endpoints then empty), XDS_ETOOBIG (more
 * than ETCD_MAX_ENDPOINTS members, a URL over ETCD_MAX_URL), XDS_ENOMEM.
 */
int etcd_config_parse_url(const char *url, struct etcd_config *c,
                          struct xds_err *err);

/*
 * Sets one flag by its long name without the dashes: "etcd-user",
 * "etcd-password-file", "etcd-ca", "etcd-cert", "etcd-key" (values copied)
 * or "etcd-debounce" (milliseconds, 0..60000). Returns 0, XDS_ENOTFOUND
 * (not an etcd flag), XDS_EINVAL (a bad value; err names the flag),
 * XDS_ENOMEM.
 */
int etcd_config_set_flag(struct etcd_config *c, const char *name,
                         const char *value, struct xds_err *err);

/*
 * Checks the whole configuration once all flags are set, and reads the
 * password file. Returns 0, or XDS_EINVAL with err saying why (no endpoint,
 * --etcd-key without --etcd-cert or the reverse, --etcd-password-file
 * without --etcd-user or the reverse, an empty password), XDS_EIO (the
 * password file cannot be read; err names the file, never its content),
 * XDS_ENOMEM.
 */
int etcd_config_finish(struct etcd_config *c, struct xds_err *err);

/* The suffix of the default status prefix: "<prefix>-status". */
#define ETCD_STATUS_PREFIX_SUFFIX "-status"

/*
 * Where resource status is written back (README, "Status written back to
 * etcd"): given (nullable: "<store_prefix>-status"), without trailing
 * slashes, which must not overlap the store's keys (neither prefix/ may
 * start the other's) and must start with '/'. Returns 0 with *out (a new
 * string, caller frees), or XDS_EINVAL (err says why), XDS_ENOMEM.
 */
int etcd_status_prefix(const char *store_prefix, const char *given, char **out,
                       struct xds_err *err);

/* "etcd://h1:2379,h2:2379/prefix" (etcds:// with TLS) in a new string
 * (caller frees), for logs: it never holds credentials. NULL on ENOMEM. */
char *etcd_config_describe(const struct etcd_config *c);

#endif
