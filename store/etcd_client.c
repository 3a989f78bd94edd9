/*
 * etcd_client.c: requests to etcd members over libcurl.
 *
 * One easy handle serves the unary calls (its connection is reused); each
 * stream has its own easy handle in its own multi handle, so a poll can
 * also wait on the caller's wake-up descriptor. The token is the only
 * secret kept after creation besides the password; both are wiped on free
 * and never formatted into a message.
 */
#include "store/etcd_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"

/* Longest "Authorization: <token>" header kept. */
#define ETCD_MAX_TOKEN 1024
/* Most restarts of a listing whose revision was compacted under it. */
#define ETCD_LIST_RESTARTS 3

struct etcd_client {
  char *endpoints[ETCD_MAX_ENDPOINTS];
  size_t n_endpoints;
  size_t current;
  int tls;
  char *ca, *cert, *key;
  char *user, *password;
  char *token;       /* nullable; never logged */
  int auth_disabled; /* etcd said auth is not enabled: no token needed */
  unsigned connect_timeout_ms;
  unsigned request_timeout_ms;
  atomic_int *abort_flag;
  CURL *easy;
  struct xds_buf body;
  int toobig;
};

struct etcd_stream {
  struct etcd_client *c;
  CURL *easy;
  CURLM *multi;
  struct curl_slist *headers;
  char *req;
  struct etcd_splitter split;
  etcd_msg_fn fn;
  void *ctx;
  int rc; /* first error seen by the write callback */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_curl(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

static void wipe_free(char *s) {
  if (s == NULL)
    return;
  for (volatile char *p = s; *p != '\0'; p++)
    *p = '\0';
  xds_free(s);
}

static char *dup_or_null(const char *s, int *fail) {
  char *d;

  if (s == NULL)
    return NULL;
  if ((d = xds_strdup(s)) == NULL)
    *fail = 1;
  return d;
}

int etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out,
                    struct xds_err *err) {
  struct etcd_client *c;
  int fail = 0;

  *out = NULL;
  pthread_once(&curl_once, init_curl);
  if (curl_init_rc != CURLE_OK)
    return xds_err_set(err, XDS_EIO, "libcurl: %s",
                       curl_easy_strerror(curl_init_rc));
  if ((c = xds_calloc(1, sizeof(*c))) == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < cfg->n_endpoints; i++)
    c->endpoints[c->n_endpoints++] = dup_or_null(cfg->endpoints[i], &fail);
  c->tls = cfg->tls;
  c->ca = dup_or_null(cfg->ca, &fail);
  c->cert = dup_or_null(cfg->cert, &fail);
  c->key = dup_or_null(cfg->key, &fail);
  c->user = dup_or_null(cfg->user, &fail);
  c->password = dup_or_null(cfg->password, &fail);
  c->connect_timeout_ms = cfg->connect_timeout_ms;
  c->request_timeout_ms = cfg->request_timeout_ms;
  xds_buf_init(&c->body, ETCD_MAX_MESSAGE_BYTES);
  if (!fail && (c->easy = curl_easy_init()) == NULL) {
    etcd_client_free(c);
    return xds_err_set(err, XDS_EIO, "libcurl: cannot create a handle");
  }
  if (fail || c->n_endpoints == 0) {
    etcd_client_free(c);
    return fail ? XDS_ENOMEM
                : xds_err_set(err, XDS_EINVAL, "etcd: no endpoint");
  }
  *out = c;
  return 0;
}

void etcd_client_free(struct etcd_client *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_endpoints; i++)
    xds_free(c->endpoints[i]);
  xds_free(c->ca);
  xds_free(c->cert);
  xds_free(c->key);
  xds_free(c->user);
  wipe_free(c->password);
  wipe_free(c->token);
  if (c->easy != NULL)
    curl_easy_cleanup(c->easy);
  xds_buf_cleanup(&c->body);
  xds_free(c);
}

void etcd_client_set_abort(struct etcd_client *c, atomic_int *flag) {
  c->abort_flag = flag;
}

const char *etcd_client_endpoint(const struct etcd_client *c) {
  return c->endpoints[c->current];
}

void etcd_client_next_endpoint(struct etcd_client *c) {
  c->current = (c->current + 1) % c->n_endpoints;
}

static int aborted(const struct etcd_client *c) {
  return c->abort_flag != NULL && atomic_load(c->abort_flag) != 0;
}

static int xferinfo(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                    curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  return aborted(p) ? 1 : 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct etcd_client *c = ud;

  if (xds_buf_append(&c->body, p, size * n) < 0) {
    c->toobig = 1;
    return 0; /* aborts the transfer */
  }
  return size * n;
}

/* Options every request shares: the member's URL, TLS, timeouts. */
static int setup(struct etcd_client *c, CURL *h, size_t ep, const char *path,
                 struct curl_slist **headers, int with_token) {
  char url[ETCD_MAX_URL + 64];
  struct curl_slist *hs = NULL, *t;

  snprintf(url, sizeof(url), "%s://%s%s", c->tls ? "https" : "http",
           c->endpoints[ep], path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
  if (c->tls) {
    if (c->ca != NULL)
      curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
    if (c->cert != NULL) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
      curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
    }
  }
  t = curl_slist_append(hs, "Content-Type: application/json");
  if (t == NULL)
    return XDS_ENOMEM;
  hs = t;
  if (with_token && c->token != NULL) {
    char hdr[ETCD_MAX_TOKEN + 32];

    snprintf(hdr, sizeof(hdr), "Authorization: %s", c->token);
    t = curl_slist_append(hs, hdr);
    memset(hdr, 0, sizeof(hdr));
    if (t == NULL) {
      curl_slist_free_all(hs);
      return XDS_ENOMEM;
    }
    hs = t;
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
  *headers = hs;
  return 0;
}

/*
 * One POST to member ep. Returns 0 with *resp (any JSON object, perhaps an
 * error body), XDS_EIO for a transport failure (msg gets why), or
 * XDS_ETOOBIG / XDS_ENOMEM.
 */
static int perform(struct etcd_client *c, size_t ep, const char *path,
                   const char *body, int with_token, json_t **resp, char *msg,
                   size_t msg_len) {
  struct curl_slist *headers = NULL;
  json_error_t jerr;
  long status = 0;
  CURLcode cc;
  int rc;

  *resp = NULL;
  curl_easy_reset(c->easy);
  rc = setup(c, c->easy, ep, path, &headers, with_token);
  if (rc < 0)
    return rc;
  xds_buf_reset(&c->body);
  c->toobig = 0;
  curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)c->request_timeout_ms);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
  cc = curl_easy_perform(c->easy);
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
  if (c->toobig) {
    snprintf(msg, msg_len, "%s: a response larger than %u bytes",
             c->endpoints[ep], ETCD_MAX_MESSAGE_BYTES);
    return XDS_ETOOBIG;
  }
  if (cc != CURLE_OK) {
    snprintf(msg, msg_len, "%s: %s", c->endpoints[ep],
             aborted(c) ? "cancelled" : curl_easy_strerror(cc));
    return XDS_EIO;
  }
  *resp = json_loadb(c->body.data != NULL ? c->body.data : "", c->body.len, 0,
                     &jerr);
  if (*resp == NULL || !json_is_object(*resp)) {
    json_decref(*resp);
    *resp = NULL;
    snprintf(msg, msg_len,
             "%s: HTTP %ld with a body that is not a JSON "
             "object (is this an etcd v3 client URL?)",
             c->endpoints[ep], status);
    return XDS_EIO;
  }
  return 0;
}

static int map_grpc(int code) {
  switch (code) {
  case ETCD_GRPC_PERMISSION_DENIED:
  case ETCD_GRPC_UNAUTHENTICATED:
    return XDS_EPERM;
  case ETCD_GRPC_OUT_OF_RANGE:
    return XDS_ENOTFOUND;
  case ETCD_GRPC_INVALID_ARGUMENT:
  case ETCD_GRPC_FAILED_PRECONDITION:
    return XDS_EINVAL;
  default:
    return XDS_EIO;
  }
}

/* Gets a token: tries every member. 0 also when etcd has auth disabled. */
static int authenticate(struct etcd_client *c, struct xds_err *err) {
  char msgs[XDS_ERR_MSG_MAX] = "", one[256];
  json_t *req, *resp = NULL;
  char *body;
  int rc = XDS_EIO, said = 0;

  wipe_free(c->token);
  c->token = NULL;
  req = json_pack("{s:s, s:s}", "name", c->user, "password", c->password);
  if (req == NULL)
    return XDS_ENOMEM;
  body = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (body == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < c->n_endpoints; i++) {
    size_t ep = (c->current + i) % c->n_endpoints;
    const char *emsg;
    int code;

    rc = perform(c, ep, "/v3/auth/authenticate", body, 0, &resp, one,
                 sizeof(one));
    if (rc == XDS_ENOMEM || rc == XDS_ETOOBIG)
      break;
    if (rc < 0) {
      size_t n = strlen(msgs);

      snprintf(msgs + n, sizeof(msgs) - n, "%s%s", n ? "; " : "", one);
      if (aborted(c))
        break;
      continue;
    }
    c->current = ep;
    if (etcd_error_of(resp, &code, &emsg)) {
      if (strstr(emsg, "authentication is not enabled") != NULL) {
        c->auth_disabled = 1;
        rc = 0;
      } else if (code == ETCD_GRPC_UNAVAILABLE) {
        size_t n = strlen(msgs);

        snprintf(msgs + n, sizeof(msgs) - n, "%s%s: %s", n ? "; " : "",
                 c->endpoints[ep], emsg);
        json_decref(resp);
        resp = NULL;
        rc = XDS_EIO;
        continue;
      } else {
        rc = xds_err_set(err,
                         code == ETCD_GRPC_INVALID_ARGUMENT ? XDS_EPERM
                                                            : map_grpc(code),
                         "etcd %s: authenticating as \"%s\": %s",
                         c->endpoints[ep], c->user, emsg);
        said = 1;
      }
      break;
    }
    {
      const json_t *tok = json_object_get(resp, "token");

      if (!json_is_string(tok) ||
          strlen(json_string_value(tok)) > ETCD_MAX_TOKEN) {
        rc = xds_err_set(err, XDS_EIO,
                         "etcd %s: authenticate returned no usable token",
                         c->endpoints[ep]);
        said = 1;
        break;
      }
      c->token = xds_strdup(json_string_value(tok));
      rc = c->token == NULL ? XDS_ENOMEM : 0;
    }
    break;
  }
  json_decref(resp);
  wipe_free(body);
  if (rc == XDS_EIO && !said)
    xds_err_set(err, rc, "etcd unreachable: %s", msgs);
  else if (rc == XDS_ETOOBIG)
    xds_err_set(err, rc, "etcd: %s", one);
  return rc;
}

int etcd_client_reauth(struct etcd_client *c, struct xds_err *err) {
  if (c->user == NULL || c->auth_disabled)
    return 0;
  return authenticate(c, err);
}

int etcd_client_call(struct etcd_client *c, const char *path, const json_t *req,
                     json_t **resp, struct xds_err *err) {
  char msgs[XDS_ERR_MSG_MAX] = "", one[256];
  int reauthed = 0, rc = XDS_EIO, said = 0;
  char *body;

  *resp = NULL;
  if (c->user != NULL && c->token == NULL && !c->auth_disabled &&
      (rc = authenticate(c, err)) < 0)
    return rc;
  body = json_dumps(req, JSON_COMPACT);
  if (body == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < c->n_endpoints; i++) {
    size_t ep = (c->current + i) % c->n_endpoints;
    const char *emsg;
    int code;

    rc = perform(c, ep, path, body, 1, resp, one, sizeof(one));
    if (rc == XDS_ENOMEM)
      break;
    if (rc == XDS_ETOOBIG) {
      xds_err_set(err, rc, "etcd %s", one);
      said = 1;
      break;
    }
    if (rc < 0) {
      size_t n = strlen(msgs);

      snprintf(msgs + n, sizeof(msgs) - n, "%s%s", n ? "; " : "", one);
      if (aborted(c))
        break;
      continue;
    }
    c->current = ep;
    if (!etcd_error_of(*resp, &code, &emsg))
      break; /* success */
    if (code == ETCD_GRPC_UNAUTHENTICATED && c->user != NULL && !reauthed &&
        strstr(emsg, "auth token") != NULL) {
      /* An expired token, or one a restarted member no longer knows. */
      json_decref(*resp);
      *resp = NULL;
      reauthed = 1;
      if ((rc = authenticate(c, err)) < 0) {
        said = 1;
        break;
      }
      i--; /* the same member once more, with the new token */
      continue;
    }
    if (code == ETCD_GRPC_UNAVAILABLE) {
      size_t n = strlen(msgs);

      snprintf(msgs + n, sizeof(msgs) - n, "%s%s: %s", n ? "; " : "",
               c->endpoints[ep], emsg);
      json_decref(*resp);
      *resp = NULL;
      rc = XDS_EIO;
      continue;
    }
    rc =
        xds_err_set(err, map_grpc(code), "etcd %s: %s", c->endpoints[ep], emsg);
    said = 1;
    json_decref(*resp);
    *resp = NULL;
    break;
  }
  xds_free(body);
  if (rc == XDS_EIO && !said)
    xds_err_set(err, rc, "etcd unreachable: %s", msgs);
  if (rc < 0) {
    json_decref(*resp);
    *resp = NULL;
  }
  return rc;
}

/* ---- range, get, txn ---- */

static json_t *b64_json(const char *p, size_t n) {
  char *s = etcd_b64_encode(p, n);
  json_t *j;

  if (s == NULL)
    return NULL;
  j = json_string(s);
  xds_free(s);
  return j;
}

static json_t *int_json(int64_t v) {
  char buf[32];

  snprintf(buf, sizeof(buf), "%lld", (long long)v);
  return json_string(buf);
}

/* One page: [key, end) from key, at revision rev (0: current). */
static int range_page(struct etcd_client *c, const char *key, size_t key_len,
                      const char *end, size_t end_len, int64_t limit,
                      int64_t rev, json_t **resp, struct xds_err *err) {
  json_t *req = json_object();
  int rc = XDS_ENOMEM;

  if (req == NULL)
    return rc;
  if (json_object_set_new(req, "key", b64_json(key, key_len)) == 0 &&
      (end == NULL ||
       json_object_set_new(req, "range_end", b64_json(end, end_len)) == 0) &&
      (limit == 0 || json_object_set_new(req, "limit", int_json(limit)) == 0) &&
      (rev == 0 || json_object_set_new(req, "revision", int_json(rev)) == 0))
    rc = etcd_client_call(c, "/v3/kv/range", req, resp, err);
  json_decref(req);
  return rc;
}

int etcd_client_list(struct etcd_client *c, const char *prefix,
                     unsigned page_size, etcd_kv_fn fn, void *ctx,
                     struct etcd_header *header, struct xds_err *err) {
  size_t plen = strlen(prefix), end_len, key_len;
  char *end = etcd_prefix_end(prefix, plen, &end_len);
  char *key = NULL;
  int restarts = 0, rc;

  if (end == NULL)
    return XDS_ENOMEM;
restart:
  xds_free(key);
  key = xds_strdup(prefix);
  key_len = plen;
  memset(header, 0, sizeof(*header));
  rc = key == NULL ? XDS_ENOMEM : 0;
  for (int64_t limit = page_size ? page_size : 1000; rc == 0;) {
    json_t *resp = NULL;
    const json_t *kvs, *more;
    struct etcd_header h;
    size_t i;

    rc = range_page(c, key, key_len, end, end_len, limit, header->revision,
                    &resp, err);
    if (rc == XDS_ETOOBIG && limit > 1) {
      limit /= 2;
      rc = 0;
      continue;
    }
    if (rc == XDS_ENOTFOUND && header->revision != 0 &&
        restarts++ < ETCD_LIST_RESTARTS)
      goto restart; /* compacted under us: list again at a newer one */
    if (rc < 0)
      break;
    if (etcd_parse_header(resp, &h) < 0) {
      json_decref(resp);
      rc = xds_err_set(err, XDS_EIO, "etcd: a range header is malformed");
      break;
    }
    if (header->revision == 0)
      *header = h;
    kvs = json_object_get(resp, "kvs");
    more = json_object_get(resp, "more");
    for (i = 0; kvs != NULL && i < json_array_size(kvs) && rc == 0; i++) {
      struct etcd_kv kv;

      rc = etcd_parse_kv(json_array_get(kvs, i), &kv, err);
      if (rc == 0)
        rc = fn(ctx, &kv);
      if (rc == 0 && i + 1 == json_array_size(kvs)) {
        /* The next page starts just after this key. */
        char *next = xds_malloc(kv.key_len + 2);

        if (next == NULL) {
          rc = XDS_ENOMEM;
        } else {
          memcpy(next, kv.key, kv.key_len);
          next[kv.key_len] = '\0';
          next[kv.key_len + 1] = '\0';
          xds_free(key);
          key = next;
          key_len = kv.key_len + 1;
        }
      }
      etcd_kv_cleanup(&kv);
    }
    if (rc == 0 && (!json_is_true(more) || i == 0)) {
      json_decref(resp);
      break;
    }
    json_decref(resp);
  }
  xds_free(key);
  xds_free(end);
  return rc;
}

int etcd_client_get(struct etcd_client *c, const char *key, struct etcd_kv *kv,
                    int *found, int64_t *revision, struct xds_err *err) {
  struct etcd_header h;
  json_t *resp = NULL;
  const json_t *kvs;
  int rc;

  *found = 0;
  memset(kv, 0, sizeof(*kv));
  rc = range_page(c, key, strlen(key), NULL, 0, 0, 0, &resp, err);
  if (rc < 0)
    return rc;
  if (etcd_parse_header(resp, &h) < 0) {
    json_decref(resp);
    return xds_err_set(err, XDS_EIO, "etcd: a range header is malformed");
  }
  *revision = h.revision;
  kvs = json_object_get(resp, "kvs");
  if (json_array_size(kvs) > 0) {
    rc = etcd_parse_kv(json_array_get(kvs, 0), kv, err);
    *found = rc == 0;
  }
  json_decref(resp);
  return rc;
}

/* A txn: if key's mod_revision == expect then op, else read the key. */
static int txn_if(struct etcd_client *c, const char *key, int64_t expect,
                  json_t *op, int *succeeded, int64_t *revision,
                  int64_t *now_rev, struct xds_err *err) {
  json_t *req, *resp = NULL;
  struct etcd_header h;
  int rc = XDS_ENOMEM;

  *succeeded = 0;
  *now_rev = 0;
  req =
      json_pack("{s:[{s:o, s:s, s:s, s:o}], s:[o], s:[{s:{s:o}}]}", "compare",
                "key", b64_json(key, strlen(key)), "target", "MOD", "result",
                "EQUAL", "mod_revision", int_json(expect), "success", op,
                "failure", "request_range", "key", b64_json(key, strlen(key)));
  if (req == NULL)
    return rc;
  rc = etcd_client_call(c, "/v3/kv/txn", req, &resp, err);
  json_decref(req);
  if (rc < 0)
    return rc;
  etcd_parse_header(resp, &h);
  if (revision != NULL)
    *revision = h.revision;
  *succeeded = json_is_true(json_object_get(resp, "succeeded"));
  if (!*succeeded) {
    /* responses[0].response_range.kvs[0].mod_revision: who won. */
    const json_t *r = json_array_get(json_object_get(resp, "responses"), 0);
    const json_t *kvs =
        json_object_get(json_object_get(r, "response_range"), "kvs");

    if (json_array_size(kvs) > 0)
      etcd_json_int64(json_object_get(json_array_get(kvs, 0), "mod_revision"),
                      now_rev);
  }
  json_decref(resp);
  return 0;
}

int etcd_conflict_explain(const char *key, int64_t expect, int64_t now,
                          struct xds_err *err) {
  if (expect == 0)
    return xds_err_set(err, XDS_ECONFLICT,
                       "conflict on %s: it was created by another writer "
                       "(now at mod_revision %lld); get it and apply again",
                       key, (long long)now);
  if (now == 0)
    return xds_err_set(err, XDS_ECONFLICT,
                       "conflict on %s: it was deleted by another writer "
                       "since mod_revision %lld",
                       key, (long long)expect);
  return xds_err_set(err, XDS_ECONFLICT,
                     "conflict on %s: another writer changed it (expected "
                     "mod_revision %lld, found %lld); get it and apply again",
                     key, (long long)expect, (long long)now);
}

int etcd_client_put_if(struct etcd_client *c, const char *key,
                       const char *value, size_t len, int64_t expect,
                       int64_t *revision, struct xds_err *err) {
  json_t *op;
  int64_t now;
  int ok, rc;

  op = json_pack("{s:{s:o, s:o}}", "request_put", "key",
                 b64_json(key, strlen(key)), "value", b64_json(value, len));
  if (op == NULL)
    return XDS_ENOMEM;
  rc = txn_if(c, key, expect, op, &ok, revision, &now, err);
  if (rc < 0)
    return rc;
  return ok ? 0 : etcd_conflict_explain(key, expect, now, err);
}

int etcd_client_delete_if(struct etcd_client *c, const char *key,
                          int64_t expect, struct xds_err *err) {
  json_t *op;
  int64_t now;
  int ok, rc;

  op = json_pack("{s:{s:o}}", "request_delete_range", "key",
                 b64_json(key, strlen(key)));
  if (op == NULL)
    return XDS_ENOMEM;
  rc = txn_if(c, key, expect, op, &ok, NULL, &now, err);
  if (rc < 0)
    return rc;
  return ok ? 0 : etcd_conflict_explain(key, expect, now, err);
}

/* A compare of key: "must not exist" (expect 0) or "still at expect". */
static json_t *compare_json(const char *key, int64_t expect) {
  if (expect == 0)
    return json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(key, strlen(key)),
                     "target", "CREATE", "result", "EQUAL", "create_revision",
                     int_json(0));
  return json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(key, strlen(key)),
                   "target", "MOD", "result", "EQUAL", "mod_revision",
                   int_json(expect));
}

/* After a failed transaction: failure op i read v[i].key; marks each key
 * whose compare failed and returns the index of the first (n if none: a
 * key changed and changed back cannot happen, so that is an answer etcd
 * does not give). */
static size_t mark_conflicts(const json_t *resp, struct etcd_put_if *v,
                             size_t n) {
  const json_t *rs = json_object_get(resp, "responses");
  size_t first = n;

  for (size_t i = 0; i < n; i++) {
    const json_t *r = json_array_get(rs, i);
    const json_t *kvs =
        json_object_get(json_object_get(r, "response_range"), "kvs");
    int64_t now = 0;

    if (json_array_size(kvs) > 0)
      etcd_json_int64(json_object_get(json_array_get(kvs, 0), "mod_revision"),
                      &now);
    v[i].now = now;
    v[i].conflict = now != v[i].expect;
    if (v[i].conflict && first == n)
      first = i;
  }
  return first;
}

int etcd_client_put_all_if(struct etcd_client *c, struct etcd_put_if *v,
                           size_t n, int64_t *revision, struct xds_err *err) {
  json_t *req, *cmp, *ok, *fail, *resp = NULL;
  struct etcd_header h = {0};
  size_t first;
  int rc = XDS_ENOMEM;

  if (n > ETCD_MAX_TXN_OPS)
    return xds_err_set(err, XDS_ETOOBIG,
                       "%zu keys in one transaction; etcd allows %d "
                       "(--max-txn-ops)",
                       n, ETCD_MAX_TXN_OPS);
  req = json_object();
  cmp = json_array();
  ok = json_array();
  fail = json_array();
  if (req == NULL || cmp == NULL || ok == NULL || fail == NULL)
    goto out;
  for (size_t i = 0; i < n; i++) {
    const char *k = v[i].key;

    v[i].conflict = 0;
    v[i].now = 0;
    if (json_array_append_new(cmp, compare_json(k, v[i].expect)) < 0 ||
        (v[i].value != NULL &&
         json_array_append_new(
             ok, json_pack("{s:{s:o, s:o}}", "request_put", "key",
                           b64_json(k, strlen(k)), "value",
                           b64_json(v[i].value, v[i].len))) < 0) ||
        json_array_append_new(fail, json_pack("{s:{s:o}}", "request_range",
                                              "key", b64_json(k, strlen(k)))) <
            0)
      goto out;
  }
  if (json_object_set(req, "compare", cmp) < 0 ||
      json_object_set(req, "success", ok) < 0 ||
      json_object_set(req, "failure", fail) < 0)
    goto out;
  rc = etcd_client_call(c, "/v3/kv/txn", req, &resp, err);
  if (rc < 0)
    goto out;
  if (etcd_parse_header(resp, &h) < 0) {
    rc = xds_err_set(err, XDS_EIO, "etcd: a txn header is malformed");
    goto out;
  }
  if (revision != NULL)
    *revision = h.revision;
  if (json_is_true(json_object_get(resp, "succeeded")))
    goto out;
  first = mark_conflicts(resp, v, n);
  if (first == n)
    rc = xds_err_set(err, XDS_ECONFLICT,
                     "conflict: a key changed during the transaction; get "
                     "it and apply again");
  else
    rc =
        etcd_conflict_explain(v[first].key, v[first].expect, v[first].now, err);
out:
  json_decref(resp);
  json_decref(req);
  json_decref(cmp);
  json_decref(ok);
  json_decref(fail);
  return rc;
}

/* ---- streams ---- */

static int stream_msg(void *ctx, const char *json, size_t len) {
  struct etcd_stream *s = ctx;

  return s->fn(s->ctx, json, len);
}

static size_t on_stream(char *p, size_t size, size_t n, void *ud) {
  struct etcd_stream *s = ud;
  int rc;

  rc = etcd_splitter_feed(&s->split, p, size * n, stream_msg, s);
  if (rc < 0) {
    s->rc = rc;
    return 0;
  }
  return size * n;
}

int etcd_stream_open(struct etcd_client *c, const json_t *req,
                     struct etcd_stream **out, struct xds_err *err) {
  struct etcd_stream *s;
  int rc;

  *out = NULL;
  if (c->user != NULL && c->token == NULL && !c->auth_disabled &&
      (rc = authenticate(c, err)) < 0)
    return rc;
  if ((s = xds_calloc(1, sizeof(*s))) == NULL)
    return XDS_ENOMEM;
  s->c = c;
  etcd_splitter_init(&s->split, ETCD_MAX_MESSAGE_BYTES);
  s->req = json_dumps(req, JSON_COMPACT);
  s->easy = curl_easy_init();
  s->multi = curl_multi_init();
  if (s->req == NULL || s->easy == NULL || s->multi == NULL) {
    etcd_stream_close(s);
    return XDS_ENOMEM;
  }
  rc = setup(c, s->easy, c->current, "/v3/watch", &s->headers, 1);
  if (rc < 0) {
    etcd_stream_close(s);
    return rc;
  }
  curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->req);
  curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_stream);
  curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
  if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK) {
    etcd_stream_close(s);
    return xds_err_set(err, XDS_EIO, "libcurl: cannot start a stream");
  }
  *out = s;
  return 0;
}

/* Runs the transfer: data goes through the write callback to fn. */
static int stream_step(struct etcd_stream *s, struct xds_err *err) {
  int running = 0, left = 0;
  CURLMsg *m;

  curl_multi_perform(s->multi, &running);
  if (s->rc < 0) {
    if (s->rc == XDS_ETOOBIG)
      xds_err_set(err, s->rc,
                  "etcd %s: a watch message larger than %u "
                  "bytes",
                  s->c->endpoints[s->c->current], ETCD_MAX_MESSAGE_BYTES);
    else if (s->rc == XDS_EPARSE)
      s->rc = xds_err_set(err, XDS_EIO, "etcd %s: the watch stream is not JSON",
                          s->c->endpoints[s->c->current]);
    return s->rc;
  }
  while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
    long status = 0;

    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (m->data.result != CURLE_OK)
      xds_err_set(
          err, XDS_EIO, "etcd %s: watch: %s", s->c->endpoints[s->c->current],
          aborted(s->c) ? "cancelled" : curl_easy_strerror(m->data.result));
    else
      xds_err_set(err, XDS_EIO, "etcd %s: the watch stream ended (HTTP %ld)",
                  s->c->endpoints[s->c->current], status);
    s->rc = XDS_EIO;
    return s->rc;
  }
  return 0;
}

int etcd_stream_poll(struct etcd_stream *s, int timeout_ms, int wake_fd,
                     etcd_msg_fn fn, void *ctx, struct xds_err *err) {
  struct curl_waitfd extra = {0};
  int numfds = 0, rc;

  if (s->rc < 0)
    return s->rc;
  s->fn = fn;
  s->ctx = ctx;
  /* Perform first: a new transfer starts only when performed, and data
   * already buffered by libcurl must not wait for the poll. */
  rc = stream_step(s, err);
  if (rc == 0) {
    extra.fd = wake_fd;
    extra.events = CURL_WAIT_POLLIN;
    curl_multi_poll(s->multi, wake_fd >= 0 ? &extra : NULL,
                    wake_fd >= 0 ? 1 : 0, timeout_ms, &numfds);
    rc = stream_step(s, err);
  }
  s->fn = NULL;
  s->ctx = NULL;
  return rc;
}

void etcd_stream_close(struct etcd_stream *s) {
  if (s == NULL)
    return;
  if (s->multi != NULL && s->easy != NULL)
    curl_multi_remove_handle(s->multi, s->easy);
  if (s->easy != NULL)
    curl_easy_cleanup(s->easy);
  if (s->multi != NULL)
    curl_multi_cleanup(s->multi);
  curl_slist_free_all(s->headers);
  xds_free(s->req);
  etcd_splitter_cleanup(&s->split);
  xds_free(s);
}
