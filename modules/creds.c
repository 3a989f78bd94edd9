/*
 * creds.c: Docker config.json pull secrets (jansson, OpenSSL base64).
 */
#include "modules/creds.h"

#include "base/alloc.h"
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Reduces a config key to host[:port], lowercase; docker.io aliases fold
 * to "docker.io". */
static void key_host(const char *key, char *out, size_t cap) {
  const char *p = strstr(key, "://");
  size_t n;

  p = p ? p + 3 : key;
  n = strcspn(p, "/");
  if (n >= cap)
    n = cap - 1;
  for (size_t i = 0; i < n; i++)
    out[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
  out[n] = '\0';
  if (strcmp(out, "index.docker.io") == 0 ||
      strcmp(out, "registry-1.docker.io") == 0)
    snprintf(out, cap, "docker.io");
}

static int b64_encode(const char *in, size_t n, char **out) {
  size_t cap = 4 * ((n + 2) / 3) + 1;
  char *b = xds_malloc(cap);

  if (b == NULL)
    return XDS_ENOMEM;
  EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)in, (int)n);
  *out = b;
  return 0;
}

int creds_from_json(const char *json, size_t len, const char *registry,
                    struct creds *out, struct xds_err *err) {
  json_error_t jerr;
  json_t *root, *auths, *entry = NULL, *v;
  const char *key;
  char want[256], have[256];
  int rc = 0;

  memset(out, 0, sizeof(*out));
  key_host(registry, want, sizeof(want));
  root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return xds_err_set(err, XDS_EPARSE, "pull secret: not JSON (line %d)",
                       jerr.line);
  auths = json_object_get(root, "auths");
  if (!json_is_object(auths)) {
    rc = xds_err_set(err, XDS_EPARSE, "pull secret: no \"auths\" object");
    goto out;
  }
  json_object_foreach(auths, key, v) {
    key_host(key, have, sizeof(have));
    if (strcmp(have, want) == 0 && json_is_object(v)) {
      entry = v;
      break;
    }
  }
  if (entry == NULL) {
    rc = xds_err_set(err, XDS_ENOTFOUND,
                     "pull secret: no entry for registry %s", want);
    goto out;
  }
  v = json_object_get(entry, "auth");
  if (json_is_string(v) && json_string_length(v) > 0) {
    out->basic = xds_strdup(json_string_value(v));
    if (out->basic == NULL)
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
  } else {
    json_t *u = json_object_get(entry, "username");
    json_t *p = json_object_get(entry, "password");
    char *pair;

    if (!json_is_string(u) || !json_is_string(p)) {
      rc = xds_err_set(err, XDS_EPARSE,
                       "pull secret: entry for %s has neither \"auth\" nor "
                       "\"username\" and \"password\"",
                       want);
      goto out;
    }
    pair = xds_asprintf("%s:%s", json_string_value(u), json_string_value(p));
    if (pair == NULL) {
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
      goto out;
    }
    rc = b64_encode(pair, strlen(pair), &out->basic);
    OPENSSL_cleanse(pair, strlen(pair));
    xds_free(pair);
    if (rc < 0)
      xds_err_set(err, rc, "out of memory");
  }
out:
  json_decref(root);
  return rc;
}

static int read_file(const char *path, struct xds_buf *b, int *found) {
  char chunk[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  int rc = 0;

  *found = fd >= 0;
  if (fd < 0)
    return errno == ENOENT ? XDS_ENOTFOUND : XDS_EIO;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
    rc = xds_buf_append(b, chunk, (size_t)n);
    if (rc < 0)
      break;
  }
  if (n < 0)
    rc = XDS_EIO;
  OPENSSL_cleanse(chunk, sizeof(chunk));
  close(fd);
  return rc;
}

/* DIR/NAME/username and DIR/NAME/password (a Kubernetes secret with those
 * keys, mounted as a directory): credentials for any registry. Returns 0
 * with out filled, XDS_ENOTFOUND when the secret has no username file,
 * another error (err set) when it is unreadable or half there. */
static int creds_userpass(const char *dir, const char *name, struct creds *out,
                          struct xds_err *err) {
  struct xds_buf u, p;
  char *path = NULL, *pair = NULL;
  int rc, found = 0;

  xds_buf_init(&u, CREDS_MAX_FILE);
  xds_buf_init(&p, CREDS_MAX_FILE);
  path = xds_asprintf("%s/%s/username", dir, name);
  rc = path == NULL ? XDS_ENOMEM : read_file(path, &u, &found);
  if (path != NULL && !found) {
    rc = XDS_ENOTFOUND;
    goto out;
  }
  if (rc == 0) {
    xds_free(path);
    path = xds_asprintf("%s/%s/password", dir, name);
    rc = path == NULL ? XDS_ENOMEM : read_file(path, &p, &found);
    if (path != NULL && !found) {
      rc = xds_err_set(err, XDS_EPARSE,
                       "imagePullSecret %s: %s/%s has a username but no "
                       "password file",
                       name, dir, name);
      goto out;
    }
  }
  if (rc < 0) {
    xds_err_set(err, rc, "imagePullSecret %s: cannot read %s: %s", name,
                path != NULL ? path : "", xds_strerror(rc));
    goto out;
  }
  /* A trailing newline (echo > file) is not part of either. */
  while (u.len > 0 && (u.data[u.len - 1] == '\n' || u.data[u.len - 1] == '\r'))
    u.len--;
  while (p.len > 0 && (p.data[p.len - 1] == '\n' || p.data[p.len - 1] == '\r'))
    p.len--;
  if (u.len == 0 || memchr(u.data, ':', u.len) != NULL) {
    rc = xds_err_set(err, XDS_EPARSE,
                     "imagePullSecret %s: the username is empty or holds ':'",
                     name);
    goto out;
  }
  pair = xds_asprintf("%.*s:%.*s", (int)u.len, u.data, (int)p.len,
                      p.data != NULL ? p.data : "");
  rc = pair == NULL ? XDS_ENOMEM : b64_encode(pair, strlen(pair), &out->basic);
  if (rc < 0)
    xds_err_set(err, rc, "out of memory");
out:
  if (pair != NULL) {
    OPENSSL_cleanse(pair, strlen(pair));
    xds_free(pair);
  }
  if (u.data != NULL)
    OPENSSL_cleanse(u.data, u.cap);
  if (p.data != NULL)
    OPENSSL_cleanse(p.data, p.cap);
  xds_buf_cleanup(&u);
  xds_buf_cleanup(&p);
  xds_free(path);
  return rc;
}

int creds_load(const char *dir, const char *name, const char *registry,
               struct creds *out, struct xds_err *err) {
  struct xds_buf b;
  char *path = NULL;
  int rc, found = 0;

  memset(out, 0, sizeof(*out));
  if (dir == NULL)
    return xds_err_set(err, XDS_EINVAL,
                       "imagePullSecret %s: no --pull-secrets directory "
                       "configured",
                       name);
  if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL)
    return xds_err_set(err, XDS_EINVAL,
                       "imagePullSecret '%s': not a plain file name", name);
  xds_buf_init(&b, CREDS_MAX_FILE);
  path = xds_asprintf("%s/%s.json", dir, name);
  if (path == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto out;
  }
  rc = read_file(path, &b, &found);
  if (!found) {
    xds_free(path);
    path = xds_asprintf("%s/%s/.dockerconfigjson", dir, name);
    if (path == NULL) {
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
      goto out;
    }
    xds_buf_reset(&b);
    rc = read_file(path, &b, &found);
  }
  if (!found) {
    rc = creds_userpass(dir, name, out, err);
    if (rc == XDS_ENOTFOUND)
      rc = xds_err_set(err, XDS_ENOTFOUND,
                       "imagePullSecret %s: none of %s/%s.json, "
                       "%s/%s/.dockerconfigjson and %s/%s/username exists",
                       name, dir, name, dir, name, dir, name);
    goto out;
  }
  if (rc < 0) {
    xds_err_set(err, rc, "imagePullSecret %s: cannot read %s: %s", name, path,
                xds_strerror(rc));
    goto out;
  }
  rc = creds_from_json(b.data, b.len, registry, out, err);
  if (rc < 0 && err != NULL) {
    struct xds_err inner = *err;

    xds_err_set(err, rc, "imagePullSecret %s: %s", name, inner.msg);
  }
out:
  if (b.data != NULL)
    OPENSSL_cleanse(b.data, b.cap);
  xds_buf_cleanup(&b);
  xds_free(path);
  return rc;
}

void creds_cleanup(struct creds *c) {
  if (c->basic != NULL) {
    OPENSSL_cleanse(c->basic, strlen(c->basic));
    xds_free(c->basic);
  }
  c->basic = NULL;
}
