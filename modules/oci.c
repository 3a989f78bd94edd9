/*
 * oci.c: a minimal, bounded OCI distribution client for Wasm modules.
 *
 * One pull is one struct reg session: a base URL, the Authorization header
 * earned from the registry's challenge (kept for the session only, never
 * logged), and the caller's limits. Every document is read into a bounded
 * buffer, hashed, and compared with the digest that named it before it is
 * parsed or used.
 */
#include "modules/oci.h"
#include "modules/oci_parse.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "modules/unpack.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST                                                     \
  "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                         \
  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_SOLO_CONFIG "application/vnd.module.wasm.config.v1+json"
#define MT_SOLO_LAYER "application/vnd.module.wasm.content.layer.v1+wasm"
#define MT_W2O_LAYER "application/vnd.wasm.content.layer.v1+wasm"
#define MT_CNCF_LAYER "application/wasm"

#define ACCEPT_MANIFESTS                                                       \
  "Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST         \
  ", " MT_DOCKER_LIST

struct reg {
  const struct oci_ref *ref;
  const struct oci_opts *o;
  char base[320];                   /* scheme://host[:port]/v2/repo */
  char auth[FETCH_MAX_HEADER + 64]; /* "Authorization: ...", or "" */
  int plain_ok;                     /* registry reached over http by policy */
};

/* ---- references ---------------------------------------------------- */

int oci_registry_is_loopback(const char *registry) {
  char host[256];
  size_t n;
  struct in_addr a;

  if (registry[0] == '[')
    return strncmp(registry, "[::1]", 5) == 0;
  n = strcspn(registry, ":");
  if (n >= sizeof(host))
    return 0;
  memcpy(host, registry, n);
  host[n] = '\0';
  if (strcasecmp(host, "localhost") == 0)
    return 1;
  return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static int valid_repo_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

int oci_ref_parse(const char *url, struct oci_ref *out, struct xds_err *err) {
  const char *p = url, *at, *slash, *name;
  char rest[512];
  size_t n;
  char *colon;

  memset(out, 0, sizeof(*out));
  if (strncmp(p, "oci://", 6) == 0)
    p += 6;
  if (strlen(p) >= sizeof(rest))
    return xds_err_set(err, XDS_EINVAL, "%s: reference too long", url);
  at = strchr(p, '@');
  if (at != NULL) {
    if (digest_parse_oci(at + 1, out->digest) < 0)
      return xds_err_set(err, XDS_EINVAL,
                         "%s: digest must be sha256:<64 lowercase hex>", url);
    n = (size_t)(at - p);
  } else {
    n = strlen(p);
  }
  memcpy(rest, p, n);
  rest[n] = '\0';
  slash = strchr(rest, '/');
  if (slash != NULL &&
      (memchr(rest, '.', (size_t)(slash - rest)) != NULL ||
       memchr(rest, ':', (size_t)(slash - rest)) != NULL ||
       (slash - rest == 9 && strncmp(rest, "localhost", 9) == 0))) {
    if ((size_t)(slash - rest) >= sizeof(out->registry))
      return xds_err_set(err, XDS_EINVAL, "%s: registry too long", url);
    memcpy(out->registry, rest, (size_t)(slash - rest));
    name = slash + 1;
  } else {
    snprintf(out->registry, sizeof(out->registry), "docker.io");
    name = rest;
  }
  /* A tag follows the last ':' after the last '/'. */
  colon = strrchr(name, ':');
  if (colon != NULL && strchr(colon, '/') == NULL) {
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(out->tag))
      return xds_err_set(err, XDS_EINVAL, "%s: bad tag", url);
    snprintf(out->tag, sizeof(out->tag), "%s", colon + 1);
    *colon = '\0';
  }
  if (name[0] == '\0' || name[strlen(name) - 1] == '/' || name[0] == '/')
    return xds_err_set(err, XDS_EINVAL, "%s: no repository", url);
  for (const char *c = name; *c; c++)
    if (!valid_repo_char(*c))
      return xds_err_set(err, XDS_EINVAL,
                         "%s: repository may hold only a-z 0-9 . _ - /", url);
  if (strcmp(out->registry, "docker.io") == 0 && strchr(name, '/') == NULL)
    n = (size_t)snprintf(out->repo, sizeof(out->repo), "library/%s", name);
  else
    n = (size_t)snprintf(out->repo, sizeof(out->repo), "%s", name);
  if (n >= sizeof(out->repo))
    return xds_err_set(err, XDS_EINVAL, "%s: repository too long", url);
  for (const char *c = out->tag; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
          (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '-'))
      return xds_err_set(err, XDS_EINVAL, "%s: bad tag", url);
  if (out->tag[0] == '\0' && out->digest[0] == '\0')
    snprintf(out->tag, sizeof(out->tag), "latest");
  return 0;
}

int oci_ref_is_latest(const struct oci_ref *ref) {
  return ref->digest[0] == '\0' && strcmp(ref->tag, "latest") == 0;
}

/* ---- root ids ------------------------------------------------------ */

static json_t *ids_in(json_t *obj) {
  json_t *a;

  if (!json_is_object(obj))
    return NULL;
  a = json_object_get(obj, "rootIds");
  if (!json_is_array(a))
    a = json_object_get(obj, "root_ids");
  return json_is_array(a) ? a : NULL;
}

int oci_parse_root_ids(const char *json, size_t len, char ***ids, size_t *n) {
  json_error_t jerr;
  json_t *root = json_loadb(json, len, 0, &jerr), *a;
  size_t i, k = 0;
  char **out = NULL;
  int rc = 0;

  *ids = NULL;
  *n = 0;
  if (root == NULL)
    return XDS_EPARSE;
  a = ids_in(json_object_get(root, "config"));
  if (a == NULL)
    a = ids_in(root);
  if (a == NULL || json_array_size(a) == 0)
    goto out;
  out = xds_calloc(OCI_MAX_ROOT_IDS, sizeof(char *));
  if (out == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  for (i = 0; i < json_array_size(a) && k < OCI_MAX_ROOT_IDS; i++) {
    json_t *s = json_array_get(a, i);

    if (!json_is_string(s) || json_string_length(s) == 0 ||
        json_string_length(s) > 256)
      continue;
    out[k] = xds_strdup(json_string_value(s));
    if (out[k] == NULL) {
      xds_strv_free(out, k);
      out = NULL;
      k = 0;
      rc = XDS_ENOMEM;
      goto out;
    }
    k++;
  }
  *ids = out;
  *n = k;
  out = NULL;
out:
  if (out != NULL && k == 0)
    xds_free(out);
  json_decref(root);
  return rc;
}

/* ---- registry session ---------------------------------------------- */

static int host_listed(const char *host, const char *const *list) {
  for (; list != NULL && *list != NULL; list++)
    if (strcasecmp(host, *list) == 0)
      return 1;
  return 0;
}

static int reg_init(struct reg *r, const struct oci_ref *ref,
                    const struct oci_opts *o, struct xds_err *err) {
  const char *host = ref->registry;
  int n;

  memset(r, 0, sizeof(*r));
  r->ref = ref;
  r->o = o;
  r->plain_ok = o->plain_http || oci_registry_is_loopback(host) ||
                host_listed(host, o->insecure);
  if (strcmp(host, "docker.io") == 0)
    host = "registry-1.docker.io";
  n = snprintf(r->base, sizeof(r->base), "%s://%s/v2/%s",
               r->plain_ok ? "http" : "https", host, ref->repo);
  if (n < 0 || (size_t)n >= sizeof(r->base))
    return xds_err_set(err, XDS_EINVAL, "%s/%s: reference too long",
                       ref->registry, ref->repo);
  return 0;
}

/* Reads the next auth-param (key=value or key="value") from *pp into key
 * and val. Returns 1, or 0 at the end. */
static int next_param(const char **pp, char *key, size_t kcap, char *val,
                      size_t vcap) {
  const char *p = *pp;
  size_t k = 0, v = 0;

  while (*p == ' ' || *p == ',')
    p++;
  if (*p == '\0')
    return 0;
  while (*p && *p != '=' && *p != ',' && *p != ' ') {
    if (k + 1 < kcap)
      key[k++] = *p;
    p++;
  }
  key[k] = '\0';
  if (*p == '=') {
    p++;
    if (*p == '"') {
      p++;
      while (*p && *p != '"') {
        if (*p == '\\' && p[1])
          p++;
        if (v + 1 < vcap)
          val[v++] = *p;
        p++;
      }
      if (*p == '"')
        p++;
    } else {
      while (*p && *p != ',' && *p != ' ') {
        if (v + 1 < vcap)
          val[v++] = *p;
        p++;
      }
    }
  }
  val[v] = '\0';
  *pp = p;
  return 1;
}

/* Host[:port] of an http(s) URL, into out. */
static void url_host(const char *url, char *out, size_t cap) {
  const char *p = strstr(url, "://");
  size_t n;

  p = p ? p + 3 : url;
  n = strcspn(p, "/?#");
  if (n >= cap)
    n = cap - 1;
  memcpy(out, p, n);
  out[n] = '\0';
}

static int fetch_token(struct reg *r, const char *challenge,
                       struct xds_err *err) {
  char key[32], val[1024], realm[1024] = "", service[1024] = "",
                           scope[1024] = "";
  char esc_service[3072], esc_scope[3072], rhost[256], *url = NULL;
  char basic_hdr[FETCH_MAX_HEADER];
  const char *hdrs[2] = {NULL, NULL};
  const char *p = challenge + 6;
  struct fetch_req req;
  struct fetch_resp resp;
  json_error_t jerr;
  json_t *root = NULL, *tok;
  int rc;

  while (next_param(&p, key, sizeof(key), val, sizeof(val))) {
    if (strcasecmp(key, "realm") == 0)
      snprintf(realm, sizeof(realm), "%s", val);
    else if (strcasecmp(key, "service") == 0)
      snprintf(service, sizeof(service), "%s", val);
    else if (strcasecmp(key, "scope") == 0)
      snprintf(scope, sizeof(scope), "%s", val);
  }
  if (realm[0] == '\0')
    return xds_err_set(err, XDS_EPARSE, "%s: Bearer challenge without a realm",
                       r->ref->registry);
  if (scope[0] == '\0')
    snprintf(scope, sizeof(scope), "repository:%s:pull", r->ref->repo);
  url_host(realm, rhost, sizeof(rhost));
  if (r->o->basic != NULL && strncasecmp(realm, "https://", 8) != 0 &&
      !r->o->plain_http && !oci_registry_is_loopback(rhost) &&
      !host_listed(rhost, r->o->insecure))
    return xds_err_set(err, XDS_EPERM,
                       "%s: token realm %s is not https; credentials are "
                       "not sent there",
                       r->ref->registry, rhost);
  if (fetch_query_escape(service, esc_service, sizeof(esc_service)) < 0 ||
      fetch_query_escape(scope, esc_scope, sizeof(esc_scope)) < 0)
    return xds_err_set(err, XDS_ETOOBIG, "%s: challenge too long",
                       r->ref->registry);
  url = xds_asprintf("%s%cservice=%s&scope=%s", realm,
                     strchr(realm, '?') ? '&' : '?', esc_service, esc_scope);
  if (url == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  if (r->o->basic != NULL) {
    snprintf(basic_hdr, sizeof(basic_hdr), "Authorization: Basic %s",
             r->o->basic);
    hdrs[0] = basic_hdr;
  }
  memset(&req, 0, sizeof(req));
  req.url = url;
  req.headers = hdrs;
  req.max_body = OCI_MAX_TOKEN_RESPONSE;
  rc = fetch_run(&r->o->fetch, &req, &resp, err);
  memset(basic_hdr, 0, sizeof(basic_hdr));
  if (rc < 0)
    goto out;
  if (resp.status == 401 || resp.status == 403) {
    rc = xds_err_set(err, XDS_EPERM,
                     "%s: token service %s refused %s (HTTP %ld)",
                     r->ref->registry, rhost,
                     r->o->basic ? "the pull secret's credentials"
                                 : "anonymous access (no imagePullSecret)",
                     resp.status);
    goto out;
  }
  if (resp.status != 200) {
    rc = xds_err_set(err, resp.status >= 500 ? XDS_EIO : XDS_EPERM,
                     "%s: token service %s answered HTTP %ld", r->ref->registry,
                     rhost, resp.status);
    goto out;
  }
  root = json_loadb(resp.body.data, resp.body.len, 0, &jerr);
  tok = json_object_get(root, "token");
  if (!json_is_string(tok))
    tok = json_object_get(root, "access_token");
  if (!json_is_string(tok) || json_string_length(tok) == 0 ||
      json_string_length(tok) > FETCH_MAX_HEADER) {
    rc = xds_err_set(err, XDS_EPARSE, "%s: token service %s gave no token",
                     r->ref->registry, rhost);
    goto out;
  }
  snprintf(r->auth, sizeof(r->auth), "Authorization: Bearer %s",
           json_string_value(tok));
  rc = 0;
out:
  json_decref(root);
  fetch_resp_cleanup(&resp);
  xds_free(url);
  return rc;
}

static int authenticate(struct reg *r, const char *challenge,
                        struct xds_err *err) {
  if (strncasecmp(challenge, "Bearer ", 7) == 0)
    return fetch_token(r, challenge, err);
  if (strncasecmp(challenge, "Basic", 5) == 0) {
    if (r->o->basic == NULL)
      return xds_err_set(err, XDS_EPERM,
                         "%s: registry requires credentials and the "
                         "extension has no imagePullSecret",
                         r->ref->registry);
    snprintf(r->auth, sizeof(r->auth), "Authorization: Basic %s", r->o->basic);
    return 0;
  }
  return xds_err_set(err, XDS_EPERM, "%s: unsupported authentication challenge",
                     r->ref->registry);
}

/* GETs base + "/" + path with the session's auth, answering one 401
 * challenge. Maps HTTP errors to codes. what names the document. */
static int reg_get(struct reg *r, const char *path, const char *accept,
                   size_t max, struct fetch_resp *resp, const char *what,
                   struct xds_err *err) {
  char url[512];
  const char *hdrs[3];
  struct fetch_req req;
  struct fetch_policy pol = r->o->fetch;
  int rc, n;

  n = snprintf(url, sizeof(url), "%s/%s", r->base, path);
  if (n < 0 || (size_t)n >= sizeof(url))
    return xds_err_set(err, XDS_EINVAL, "%s: URL too long", what);
  pol.max_redirects = OCI_MAX_REDIRECTS;
  for (int attempt = 0;; attempt++) {
    size_t k = 0;

    if (accept != NULL)
      hdrs[k++] = accept;
    if (r->auth[0] != '\0')
      hdrs[k++] = r->auth;
    hdrs[k] = NULL;
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.headers = hdrs;
    req.max_body = max;
    rc = fetch_run(&pol, &req, resp, err);
    if (rc < 0)
      return rc;
    if (resp->status != 401 || attempt > 0)
      break;
    if (resp->www_authenticate[0] == '\0')
      return xds_err_set(err, XDS_EPERM, "%s/%s: HTTP 401 without a challenge",
                         r->ref->registry, r->ref->repo);
    {
      char challenge[FETCH_MAX_HEADER];

      memcpy(challenge, resp->www_authenticate, sizeof(challenge));
      fetch_resp_cleanup(resp);
      rc = authenticate(r, challenge, err);
      if (rc < 0)
        return rc;
    }
  }
  switch (resp->status) {
  case 200:
    return 0;
  case 401:
  case 403:
    return xds_err_set(err, XDS_EPERM, "%s/%s: %s: access denied (HTTP %ld)%s",
                       r->ref->registry, r->ref->repo, what, resp->status,
                       r->o->basic ? "" : "; no imagePullSecret was given");
  case 404:
    return xds_err_set(err, XDS_ENOTFOUND, "%s/%s: %s: not found",
                       r->ref->registry, r->ref->repo, what);
  default:
    return xds_err_set(err,
                       resp->status == 429 || resp->status >= 500 ||
                               resp->status == 408
                           ? XDS_EIO
                           : XDS_EINVAL,
                       "%s/%s: %s: HTTP %ld", r->ref->registry, r->ref->repo,
                       what, resp->status);
  }
}

/* Fetches a manifest by tag or "sha256:<hex>", checks its digest, parses
 * it. expect_hex: nullable digest it must have. */
static int get_manifest(struct reg *r, const char *reference,
                        const char *expect_hex, json_t **out,
                        char hex[DIGEST_HEX_LEN + 1], struct xds_err *err) {
  struct fetch_resp resp;
  char path[300], hdr_hex[DIGEST_HEX_LEN + 1];
  json_error_t jerr;
  size_t max =
      r->o->max_manifest ? r->o->max_manifest : OCI_DEFAULT_MAX_MANIFEST;
  int rc;

  *out = NULL;
  snprintf(path, sizeof(path), "manifests/%s", reference);
  rc = reg_get(r, path, ACCEPT_MANIFESTS, max, &resp, reference, err);
  if (rc < 0)
    goto out;
  rc = digest_sha256_hex(resp.body.data ? resp.body.data : "", resp.body.len,
                         hex);
  if (rc < 0)
    goto out;
  if (expect_hex != NULL && strcmp(expect_hex, hex) != 0) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "%s/%s: manifest %s: content has digest sha256:%s",
                     r->ref->registry, r->ref->repo, reference, hex);
    goto out;
  }
  if (resp.docker_digest[0] != '\0' &&
      digest_parse_oci(resp.docker_digest, hdr_hex) == 0 &&
      strcmp(hdr_hex, hex) != 0) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "%s/%s: manifest %s: Docker-Content-Digest does not "
                     "match the content",
                     r->ref->registry, r->ref->repo, reference);
    goto out;
  }
  *out =
      json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
  if (!json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    rc = xds_err_set(err, XDS_EPARSE, "%s/%s: manifest %s: not JSON",
                     r->ref->registry, r->ref->repo, reference);
  }
out:
  fetch_resp_cleanup(&resp);
  return rc;
}

/* Fetches a blob by descriptor (mediaType/digest/size) into buf (steals
 * the bytes into *data), checking digest and size. */
static int get_blob(struct reg *r, json_t *desc, size_t max,
                    unsigned char **data, size_t *len,
                    char hex[DIGEST_HEX_LEN + 1], struct xds_err *err) {
  const char *digest = json_string_value(json_object_get(desc, "digest"));
  json_t *size = json_object_get(desc, "size");
  struct fetch_resp resp;
  char path[300], got[DIGEST_HEX_LEN + 1];
  int rc;

  *data = NULL;
  *len = 0;
  if (digest == NULL || digest_parse_oci(digest, hex) < 0)
    return xds_err_set(err, XDS_EPARSE,
                       "%s/%s: descriptor without a sha256 digest",
                       r->ref->registry, r->ref->repo);
  if (json_is_integer(size) &&
      (json_integer_value(size) < 0 ||
       (unsigned long long)json_integer_value(size) > max))
    return xds_err_set(err, XDS_ETOOBIG,
                       "%s/%s: blob sha256:%.12s: size %lld is over the "
                       "limit of %zu bytes",
                       r->ref->registry, r->ref->repo, hex,
                       (long long)json_integer_value(size), max);
  snprintf(path, sizeof(path), "blobs/sha256:%s", hex);
  rc = reg_get(r, path, NULL, max, &resp, path, err);
  if (rc < 0)
    goto out;
  rc = digest_sha256_hex(resp.body.data ? resp.body.data : "", resp.body.len,
                         got);
  if (rc < 0)
    goto out;
  if (strcmp(got, hex) != 0) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "%s/%s: blob sha256:%s: content has digest sha256:%s: "
                     "refused",
                     r->ref->registry, r->ref->repo, hex, got);
    goto out;
  }
  if (json_is_integer(size) &&
      (size_t)json_integer_value(size) != resp.body.len) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "%s/%s: blob sha256:%.12s: %zu bytes, descriptor says "
                     "%lld",
                     r->ref->registry, r->ref->repo, hex, resp.body.len,
                     (long long)json_integer_value(size));
    goto out;
  }
  *data = (unsigned char *)xds_buf_steal(&resp.body, len);
  if (*data == NULL) {
    *data = xds_malloc(1);
    if (*data == NULL)
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
out:
  fetch_resp_cleanup(&resp);
  return rc;
}

static const char *str_of(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));

  return s ? s : "";
}

/* Picks the entry of an index. */
static int pick_entry(const char *where, json_t *idx, json_t **chosen,
                      struct xds_err *err) {
  json_t *list = json_object_get(idx, "manifests"), *e, *only = NULL;
  size_t i, real = 0;
  char seen[256] = "";
  size_t seen_len = 0;

  *chosen = NULL;
  json_array_foreach(list, i, e) {
    json_t *plat = json_object_get(e, "platform");
    const char *os = str_of(plat, "os"), *arch = str_of(plat, "architecture");

    if (strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0) {
      *chosen = e;
      return 0;
    }
    if (strcmp(os, "unknown") == 0 && strcmp(arch, "unknown") == 0)
      continue; /* a buildx attestation, not an image */
    real++;
    only = e;
    if (seen_len < sizeof(seen) - 1) {
      int n = snprintf(seen + seen_len, sizeof(seen) - seen_len, "%s%s/%s",
                       seen_len ? ", " : "", os[0] ? os : "?",
                       arch[0] ? arch : "?");
      if (n > 0)
        seen_len += (size_t)n;
      if (seen_len >= sizeof(seen))
        seen_len = sizeof(seen) - 1;
    }
  }
  if (real == 1) {
    *chosen = only;
    return 0;
  }
  if (real == 0)
    return xds_err_set(err, XDS_EINVAL, "%s: image index is empty", where);
  return xds_err_set(err, XDS_EINVAL,
                     "%s: image index has no linux/amd64 entry and %zu "
                     "others (%s): pin one by digest",
                     where, real, seen);
}

static int is_raw_wasm(const char *mt, const char **variant) {
  if (strcmp(mt, MT_SOLO_LAYER) == 0)
    *variant = "oci";
  else if (strcmp(mt, MT_W2O_LAYER) == 0)
    *variant = "wasm-to-oci";
  else if (strcmp(mt, MT_CNCF_LAYER) == 0)
    *variant = "cncf";
  else
    return 0;
  return 1;
}

static int is_tar(const char *mt, int *gz) {
  static const char *const plain[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.docker.image.rootfs.diff.tar"};
  static const char *const gzipped[] = {
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.docker.image.rootfs.diff.tar.gzip"};

  for (size_t i = 0; i < 2; i++) {
    if (strcmp(mt, plain[i]) == 0) {
      *gz = 0;
      return 1;
    }
    if (strcmp(mt, gzipped[i]) == 0) {
      *gz = 1;
      return 1;
    }
  }
  return 0;
}

int oci_index_pick(const char *where, json_t *idx,
                   char child_hex[DIGEST_HEX_LEN + 1], struct xds_err *err) {
  json_t *chosen = NULL;
  int rc = pick_entry(where, idx, &chosen, err);

  if (rc < 0)
    return rc;
  if (digest_parse_oci(str_of(chosen, "digest"), child_hex) < 0)
    return xds_err_set(err, XDS_EPARSE, "%s: index entry without digest",
                       where);
  return 0;
}

int oci_manifest_layer(const char *where, json_t *m, json_t **layer,
                       const char **variant, int *gz, struct xds_err *err) {
  json_t *layers = json_object_get(m, "layers");
  size_t i;

  *layer = NULL;
  *variant = NULL;
  *gz = 0;
  if (!json_is_array(layers) || json_array_size(layers) == 0)
    return xds_err_set(err, XDS_EPARSE, "%s: manifest has no layers", where);
  for (i = json_array_size(layers); i-- > 0;) {
    if (is_raw_wasm(str_of(json_array_get(layers, i), "mediaType"), variant)) {
      *layer = json_array_get(layers, i);
      return 0;
    }
  }
  *layer = json_array_get(layers, json_array_size(layers) - 1);
  if (!is_tar(str_of(*layer, "mediaType"), gz)) {
    int rc = xds_err_set(err, XDS_EPARSE,
                         "%s: no Wasm layer, and the last layer's media "
                         "type %s is neither tar nor tar+gzip",
                         where, str_of(*layer, "mediaType"));

    *layer = NULL;
    return rc;
  }
  *variant = "compat";
  return 0;
}

/* Takes the module out of a compat layer (tar or tar+gzip). */
static int module_from_tar(struct reg *r, unsigned char *blob, size_t len,
                           struct oci_result *res, struct xds_err *err) {
  struct xds_buf plain;
  const unsigned char *tar = blob;
  size_t tar_len = len;
  struct unpack_found f;
  int rc;

  xds_buf_init(&plain, 2 * r->o->max_module);
  if (unpack_is_gzip(blob, len)) {
    rc = unpack_gunzip(blob, len, &plain, err);
    if (rc < 0)
      goto out;
    tar = (const unsigned char *)plain.data;
    tar_len = plain.len;
  }
  rc = unpack_tar_find_wasm(tar, tar_len, &f, err);
  if (rc < 0)
    goto out;
  if (f.wasm_len > r->o->max_module) {
    rc = xds_err_set(err, XDS_ETOOBIG, "%s: %zu bytes, over the limit",
                     f.wasm_name, f.wasm_len);
    goto out;
  }
  res->module = xds_malloc(f.wasm_len ? f.wasm_len : 1);
  if (res->module == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto out;
  }
  memcpy(res->module, f.wasm, f.wasm_len);
  res->module_len = f.wasm_len;
  if (f.runtime_config != NULL)
    oci_parse_root_ids((const char *)f.runtime_config, f.runtime_config_len,
                       &res->root_ids, &res->n_root_ids);
out:
  xds_buf_cleanup(&plain);
  return rc;
}

int oci_pull(const struct oci_ref *ref, const struct oci_opts *o,
             struct oci_result *res, struct xds_err *err) {
  struct reg r;
  json_t *m = NULL, *layer = NULL, *config;
  char hex[DIGEST_HEX_LEN + 1], blob_hex[DIGEST_HEX_LEN + 1];
  char reference[140];
  const char *mt, *variant = NULL;
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  char where[OCI_WHERE_LEN];
  int rc, gz = 0;

  memset(res, 0, sizeof(*res));
  snprintf(where, sizeof(where), "%s/%s", ref->registry, ref->repo);
  rc = reg_init(&r, ref, o, err);
  if (rc < 0)
    return rc;
  if (ref->digest[0] != '\0')
    snprintf(reference, sizeof(reference), "sha256:%s", ref->digest);
  else
    snprintf(reference, sizeof(reference), "%s", ref->tag);
  rc = get_manifest(&r, reference, ref->digest[0] ? ref->digest : NULL, &m, hex,
                    err);
  if (rc < 0)
    goto out;
  mt = str_of(m, "mediaType");
  if (json_is_array(json_object_get(m, "manifests")) ||
      strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0) {
    char child[DIGEST_HEX_LEN + 1];

    rc = oci_index_pick(where, m, child, err);
    if (rc < 0)
      goto out;
    json_decref(m);
    m = NULL;
    snprintf(reference, sizeof(reference), "sha256:%s", child);
    rc = get_manifest(&r, reference, child, &m, hex, err);
    if (rc < 0)
      goto out;
    if (json_is_array(json_object_get(m, "manifests"))) {
      rc = xds_err_set(err, XDS_EPARSE,
                       "%s/%s: nested image indexes are "
                       "not supported",
                       ref->registry, ref->repo);
      goto out;
    }
  }
  memcpy(res->manifest_digest, hex, sizeof(hex));
  rc = oci_manifest_layer(where, m, &layer, &variant, &gz, err);
  if (rc < 0)
    goto out;
  if (o->known != NULL && o->known(o->known_arg, hex, res->sha256)) {
    res->variant = "cached";
    goto out;
  }
  rc = get_blob(&r, layer, o->max_module, &blob, &blob_len, blob_hex, err);
  if (rc < 0)
    goto out;
  if (strcmp(variant, "compat") == 0) {
    rc = module_from_tar(&r, blob, blob_len, res, err);
    if (rc < 0)
      goto out;
  } else {
    res->module = blob;
    res->module_len = blob_len;
    blob = NULL;
  }
  if (!digest_is_wasm(res->module, res->module_len)) {
    rc = xds_err_set(err, XDS_EPARSE,
                     "%s/%s: the %s layer is not a Wasm binary (no \\0asm "
                     "version 1 header)",
                     ref->registry, ref->repo, variant);
    goto out;
  }
  if (strcmp(variant, "compat") == 0) {
    rc = digest_sha256_hex(res->module, res->module_len, res->sha256);
    if (rc < 0)
      goto out;
  } else {
    memcpy(res->sha256, blob_hex, sizeof(blob_hex)); /* verified above */
  }
  res->variant = variant;
  config = json_object_get(m, "config");
  if (strcmp(str_of(config, "mediaType"), MT_SOLO_CONFIG) == 0) {
    unsigned char *cfg = NULL;
    size_t cfg_len = 0;
    char cfg_hex[DIGEST_HEX_LEN + 1];

    rc = get_blob(&r, config, OCI_MAX_CONFIG, &cfg, &cfg_len, cfg_hex, err);
    if (rc < 0)
      goto out;
    if (res->n_root_ids == 0)
      oci_parse_root_ids((const char *)cfg, cfg_len, &res->root_ids,
                         &res->n_root_ids);
    xds_free(cfg);
  }
out:
  memset(r.auth, 0, sizeof(r.auth));
  xds_free(blob);
  json_decref(m);
  return rc;
}

void oci_result_cleanup(struct oci_result *res) {
  xds_free(res->module);
  xds_strv_free(res->root_ids, res->n_root_ids);
  res->module = NULL;
  res->root_ids = NULL;
  res->n_root_ids = 0;
}
