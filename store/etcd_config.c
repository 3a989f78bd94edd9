/*
 * etcd_config.c: the etcd:// URL and the --etcd-* flags.
 *
 * Parsing only checks form; whether a member answers is the client's
 * business (store/etcd_client.c). The password is read here, once, and
 * the buffer that held it is wiped when it is freed.
 */
#include "store/etcd_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

static void free_secret(char *s) {
  if (s == NULL)
    return;
  /* volatile: the wipe must not be optimised away before the free. */
  for (volatile char *p = s; *p != '\0'; p++)
    *p = '\0';
  xds_free(s);
}

void etcd_config_init(struct etcd_config *c) {
  memset(c, 0, sizeof(*c));
  c->debounce_ms = ETCD_DEFAULT_DEBOUNCE_MS;
  c->connect_timeout_ms = ETCD_DEFAULT_CONNECT_TIMEOUT_MS;
  c->request_timeout_ms = ETCD_DEFAULT_REQUEST_TIMEOUT_MS;
  c->backoff_min_ms = ETCD_DEFAULT_BACKOFF_MIN_MS;
  c->backoff_max_ms = ETCD_DEFAULT_BACKOFF_MAX_MS;
  c->page_size = ETCD_DEFAULT_PAGE_SIZE;
  c->start_timeout_ms = ETCD_DEFAULT_START_TIMEOUT_MS;
}

static void clear_endpoints(struct etcd_config *c) {
  for (size_t i = 0; i < c->n_endpoints; i++)
    xds_free(c->endpoints[i]);
  c->n_endpoints = 0;
}

void etcd_config_cleanup(struct etcd_config *c) {
  clear_endpoints(c);
  xds_free(c->prefix);
  xds_free(c->user);
  xds_free(c->password_file);
  free_secret(c->password);
  xds_free(c->ca);
  xds_free(c->cert);
  xds_free(c->key);
  memset(c, 0, sizeof(*c));
}

int etcd_config_is_url(const char *store) {
  return store != NULL && (strncmp(store, "etcd://", 7) == 0 ||
                           strncmp(store, "etcds://", 8) == 0);
}

/* Checks one "HOST[:PORT]" member and stores it as "HOST:PORT". */
static int add_endpoint(struct etcd_config *c, const char *s, size_t n,
                        struct xds_err *err) {
  const char *port = NULL;
  size_t host_len;
  unsigned long p = ETCD_DEFAULT_PORT;
  char *ep;

  if (n == 0)
    return xds_err_set(err, XDS_EINVAL, "etcd URL: an empty member");
  if (c->n_endpoints == ETCD_MAX_ENDPOINTS)
    return xds_err_set(err, XDS_ETOOBIG, "etcd URL: more than %d members",
                       ETCD_MAX_ENDPOINTS);
  if (s[0] == '[') {
    const char *close = memchr(s, ']', n);

    if (close == NULL)
      return xds_err_set(err, XDS_EINVAL, "etcd URL: \"%.*s\": unclosed '['",
                         (int)n, s);
    host_len = (size_t)(close - s) + 1;
    if (host_len < n) {
      if (s[host_len] != ':')
        return xds_err_set(err, XDS_EINVAL,
                           "etcd URL: \"%.*s\": expected ':' after ']'", (int)n,
                           s);
      port = s + host_len + 1;
    }
  } else {
    const char *colon = memchr(s, ':', n);

    host_len = colon != NULL ? (size_t)(colon - s) : n;
    if (colon != NULL)
      port = colon + 1;
  }
  if (host_len == 0 || (s[0] == '[' && host_len <= 2))
    return xds_err_set(err, XDS_EINVAL, "etcd URL: \"%.*s\": no host", (int)n,
                       s);
  for (size_t i = 0; i < host_len; i++) {
    unsigned char ch = (unsigned char)s[i];

    if (ch <= ' ' || ch == '@' || ch == '?' || ch == '#' || ch == '/' ||
        ch >= 0x7f)
      return xds_err_set(err, XDS_EINVAL,
                         "etcd URL: \"%.*s\": bad character in host "
                         "(credentials go in --etcd-user and "
                         "--etcd-password-file)",
                         (int)n, s);
  }
  if (port != NULL) {
    size_t plen = n - (size_t)(port - s);
    char buf[8];
    char *end;

    if (plen == 0 || plen > 5)
      return xds_err_set(err, XDS_EINVAL, "etcd URL: \"%.*s\": bad port",
                         (int)n, s);
    memcpy(buf, port, plen);
    buf[plen] = '\0';
    errno = 0;
    p = strtoul(buf, &end, 10);
    if (*end != '\0' || buf[0] < '0' || buf[0] > '9' || p == 0 || p > 65535)
      return xds_err_set(err, XDS_EINVAL, "etcd URL: \"%.*s\": bad port",
                         (int)n, s);
  }
  ep = xds_asprintf("%.*s:%lu", (int)host_len, s, p);
  if (ep == NULL)
    return XDS_ENOMEM;
  c->endpoints[c->n_endpoints++] = ep;
  return 0;
}

int etcd_config_parse_url(const char *url, struct etcd_config *c,
                          struct xds_err *err) {
  const char *hosts, *slash, *s;
  size_t plen;
  char *prefix;
  int rc = 0;

  clear_endpoints(c);
  if (strlen(url) > ETCD_MAX_URL)
    return xds_err_set(err, XDS_ETOOBIG, "etcd URL longer than %d bytes",
                       ETCD_MAX_URL);
  if (strncmp(url, "etcd://", 7) == 0) {
    hosts = url + 7;
  } else if (strncmp(url, "etcds://", 8) == 0) {
    hosts = url + 8;
    c->tls = 1;
  } else {
    return xds_err_set(err, XDS_EINVAL,
                       "\"%s\": an etcd store URL starts with etcd:// or "
                       "etcds://",
                       url);
  }
  slash = strchr(hosts, '/');
  if (slash == NULL)
    slash = hosts + strlen(hosts);
  if (memchr(hosts, '@', (size_t)(slash - hosts)) != NULL)
    return xds_err_set(err, XDS_EINVAL,
                       "etcd URL: credentials do not go in the URL; use "
                       "--etcd-user and --etcd-password-file");
  s = hosts;
  while (rc == 0 && s <= slash) {
    const char *comma = memchr(s, ',', (size_t)(slash - s));
    const char *end = comma != NULL ? comma : slash;

    rc = add_endpoint(c, s, (size_t)(end - s), err);
    s = end + 1;
  }
  if (rc < 0) {
    clear_endpoints(c);
    return rc;
  }
  plen = strlen(slash);
  while (plen > 0 && slash[plen - 1] == '/')
    plen--;
  for (size_t i = 0; i < plen; i++)
    if ((unsigned char)slash[i] <= ' ' || slash[i] == '?' || slash[i] == '#') {
      clear_endpoints(c);
      return xds_err_set(err, XDS_EINVAL,
                         "etcd URL: bad character in the prefix \"%s\"", slash);
    }
  prefix =
      plen > 0 ? xds_strndup(slash, plen) : xds_strdup(ETCD_DEFAULT_PREFIX);
  if (prefix == NULL) {
    clear_endpoints(c);
    return XDS_ENOMEM;
  }
  xds_free(c->prefix);
  c->prefix = prefix;
  return 0;
}

static int set_str(char **slot, const char *name, const char *value,
                   struct xds_err *err) {
  char *v;

  if (value == NULL || value[0] == '\0')
    return xds_err_set(err, XDS_EINVAL, "--%s: an empty value", name);
  if (strlen(value) > ETCD_MAX_URL)
    return xds_err_set(err, XDS_EINVAL, "--%s: longer than %d bytes", name,
                       ETCD_MAX_URL);
  if ((v = xds_strdup(value)) == NULL)
    return XDS_ENOMEM;
  xds_free(*slot);
  *slot = v;
  return 0;
}

int etcd_config_set_flag(struct etcd_config *c, const char *name,
                         const char *value, struct xds_err *err) {
  if (strcmp(name, "etcd-user") == 0)
    return set_str(&c->user, name, value, err);
  if (strcmp(name, "etcd-password-file") == 0)
    return set_str(&c->password_file, name, value, err);
  if (strcmp(name, "etcd-ca") == 0)
    return set_str(&c->ca, name, value, err);
  if (strcmp(name, "etcd-cert") == 0)
    return set_str(&c->cert, name, value, err);
  if (strcmp(name, "etcd-key") == 0)
    return set_str(&c->key, name, value, err);
  if (strcmp(name, "etcd-debounce") == 0) {
    char *end;
    unsigned long v;

    errno = 0;
    v = value != NULL ? strtoul(value, &end, 10) : 0;
    if (value == NULL || value[0] < '0' || value[0] > '9' || *end != '\0' ||
        errno != 0 || v > 60000)
      return xds_err_set(err, XDS_EINVAL,
                         "--etcd-debounce: expected milliseconds, 0 to "
                         "60000");
    c->debounce_ms = (unsigned)v;
    return 0;
  }
  return XDS_ENOTFOUND;
}

static int read_password(struct etcd_config *c, struct xds_err *err) {
  char buf[ETCD_MAX_PASSWORD + 2];
  size_t n;
  FILE *f;

  f = fopen(c->password_file, "r");
  if (f == NULL)
    return xds_err_set(err, XDS_EIO, "--etcd-password-file %s: %s",
                       c->password_file, strerror(errno));
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  n = strcspn(buf, "\r\n");
  buf[n] = '\0';
  if (n > ETCD_MAX_PASSWORD) {
    memset(buf, 0, sizeof(buf));
    return xds_err_set(err, XDS_EINVAL,
                       "--etcd-password-file %s: the password is longer "
                       "than %d bytes",
                       c->password_file, ETCD_MAX_PASSWORD);
  }
  if (n == 0)
    return xds_err_set(err, XDS_EINVAL,
                       "--etcd-password-file %s: the first line is empty",
                       c->password_file);
  free_secret(c->password);
  c->password = xds_strdup(buf);
  memset(buf, 0, sizeof(buf));
  return c->password == NULL ? XDS_ENOMEM : 0;
}

int etcd_config_finish(struct etcd_config *c, struct xds_err *err) {
  if (c->n_endpoints == 0 || c->prefix == NULL)
    return xds_err_set(err, XDS_EINVAL, "the etcd store has no endpoint");
  if ((c->cert == NULL) != (c->key == NULL))
    return xds_err_set(err, XDS_EINVAL,
                       "--etcd-cert and --etcd-key go together");
  if ((c->user == NULL) != (c->password_file == NULL))
    return xds_err_set(err, XDS_EINVAL,
                       "--etcd-user and --etcd-password-file go together");
  if (c->ca != NULL || c->cert != NULL)
    c->tls = 1;
  if (c->password_file != NULL)
    return read_password(c, err);
  return 0;
}

char *etcd_config_describe(const struct etcd_config *c) {
  size_t n = 64 + (c->prefix != NULL ? strlen(c->prefix) : 0);
  char *s, *p;

  for (size_t i = 0; i < c->n_endpoints; i++)
    n += strlen(c->endpoints[i]) + 1;
  if ((s = xds_malloc(n)) == NULL)
    return NULL;
  p = s + snprintf(s, n, "%s://", c->tls ? "etcds" : "etcd");
  for (size_t i = 0; i < c->n_endpoints; i++)
    p +=
        snprintf(p, n - (size_t)(p - s), "%s%s", i ? "," : "", c->endpoints[i]);
  snprintf(p, n - (size_t)(p - s), "%s", c->prefix != NULL ? c->prefix : "");
  return s;
}

int etcd_status_prefix(const char *store_prefix, const char *given, char **out,
                       struct xds_err *err) {
  char *sp, *a, *b;
  size_t n;
  int overlap;

  *out = NULL;
  sp = given != NULL
           ? xds_strdup(given)
           : xds_asprintf("%s" ETCD_STATUS_PREFIX_SUFFIX, store_prefix);
  if (sp == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  n = strlen(sp);
  while (n > 1 && sp[n - 1] == '/')
    sp[--n] = '\0';
  if (sp[0] != '/' || n < 2) {
    xds_err_set(err, XDS_EINVAL,
                "--status-prefix \"%s\": a key prefix starting with '/' "
                "(and not '/' alone)",
                sp);
    xds_free(sp);
    return XDS_EINVAL;
  }
  a = xds_asprintf("%s/", sp);
  b = xds_asprintf("%s/", store_prefix);
  if (a == NULL || b == NULL) {
    xds_free(a);
    xds_free(b);
    xds_free(sp);
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
  overlap = strncmp(a, b, strlen(b)) == 0 || strncmp(b, a, strlen(a)) == 0;
  xds_free(a);
  xds_free(b);
  if (overlap) {
    xds_err_set(err, XDS_EINVAL,
                "--status-prefix %s overlaps the store prefix \"%s\": status "
                "keys must stay apart from the spec keys the store reads",
                sp, store_prefix);
    xds_free(sp);
    return XDS_EINVAL;
  }
  *out = sp;
  return 0;
}
