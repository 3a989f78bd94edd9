/*
 * fetch.c: libcurl easy requests with a body limit, header capture and the
 * destination policy of fetch.h.
 *
 * The link-local/metadata refusal lives in CURLOPT_OPENSOCKETFUNCTION, so it
 * sees the address curl is about to connect to after every DNS lookup,
 * including on redirects and through DNS rebinding; the host-name check
 * before the request only adds a clearer message for well-known names.
 */
#include "config.h"

#include "modules/fetch.h"

#include "base/alloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FETCH_DEFAULT_TIMEOUT_MS 30000L
#define FETCH_DEFAULT_CONNECT_TIMEOUT_MS 10000L

struct fetch_ctx {
  struct fetch_resp *resp;
  const atomic_int *cancel;
  int allow_link_local;
  int toobig;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void do_init(void) {
  init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : XDS_EIO;
}

int fetch_global_init(void) {
  pthread_once(&init_once, do_init);
  return init_rc;
}

static int v4_allowed(uint32_t a) {
  if ((a & 0xffff0000u) == 0xa9fe0000u) /* 169.254.0.0/16 link-local */
    return 0;
  if (a == 0x646464c8u) /* 100.100.100.200: Alibaba Cloud metadata */
    return 0;
  return 1;
}

static uint32_t v4_at(const unsigned char *b, int i0, int i1, int i2, int i3) {
  return (uint32_t)b[i0] << 24 | (uint32_t)b[i1] << 16 | (uint32_t)b[i2] << 8 |
         b[i3];
}

static int zeros(const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0)
      return 0;
  return 1;
}

/* IPv6 addresses that carry an IPv4 address are judged by the IPv4 rules,
 * for every way of embedding one: the traffic ends up at that IPv4 host
 * (through the kernel, a NAT64 gateway, a 6to4 or Teredo relay). */
static int v6_allowed(const unsigned char *b) {
  static const unsigned char ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0,
                                        0,    0, 0,    0,    0, 0, 2, 0x54};
  static const unsigned char nat64[4] = {0, 0x64, 0xff, 0x9b};

  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 */
    return 0;
  if (memcmp(b, ec2, 16) == 0) /* fd00:ec2::254: AWS metadata */
    return 0;
  /* ::ffff:0:0/96 IPv4-mapped, ::/96 IPv4-compatible (deprecated, still
   * routed by some stacks), ::ffff:0:0:0/96 SIIT IPv4-translated. */
  if (zeros(b, 10) && b[10] == 0xff && b[11] == 0xff)
    return v4_allowed(v4_at(b, 12, 13, 14, 15));
  if (zeros(b, 12))
    return v4_allowed(v4_at(b, 12, 13, 14, 15));
  if (zeros(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
    return v4_allowed(v4_at(b, 12, 13, 14, 15));
  /* NAT64 well-known prefix 64:ff9b::/96 (RFC 6052). */
  if (memcmp(b, nat64, 4) == 0 && zeros(b + 4, 8))
    return v4_allowed(v4_at(b, 12, 13, 14, 15));
  /* Local-use NAT64 64:ff9b:1::/48 (RFC 8215): the operator picks the
   * prefix length inside it, so every RFC 6052 position that fits (/48,
   * /56, /64, /96) is judged and any refusal refuses. */
  if (memcmp(b, nat64, 4) == 0 && b[4] == 0 && b[5] == 1)
    return v4_allowed(v4_at(b, 6, 7, 9, 10)) &&
           v4_allowed(v4_at(b, 7, 9, 10, 11)) &&
           v4_allowed(v4_at(b, 9, 10, 11, 12)) &&
           v4_allowed(v4_at(b, 12, 13, 14, 15));
  /* 6to4 2002::/16: the IPv4 address follows the prefix. */
  if (b[0] == 0x20 && b[1] == 0x02)
    return v4_allowed(v4_at(b, 2, 3, 4, 5));
  /* Teredo 2001::/32: the server's address, and the client's, inverted,
   * in the last 32 bits. */
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
    return v4_allowed(v4_at(b, 4, 5, 6, 7)) &&
           v4_allowed(~v4_at(b, 12, 13, 14, 15));
  return 1;
}

int fetch_addr_allowed(const struct sockaddr *sa, int allow_link_local) {
  if (allow_link_local)
    return 1;
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in in;

    memcpy(&in, sa, sizeof(in));
    return v4_allowed(ntohl(in.sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 in6;

    memcpy(&in6, sa, sizeof(in6));
    return v6_allowed(in6.sin6_addr.s6_addr);
  }
  return 1;
}

int fetch_host_allowed(const char *host, int allow_link_local) {
  static const char *const names[] = {"metadata.google.internal",
                                      "metadata.google.internal.", "metadata",
                                      "instance-data.ec2.internal"};
  char lit[64];
  size_t n;
  struct in_addr in4;
  struct in6_addr in6;

  if (allow_link_local)
    return 1;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcasecmp(host, names[i]) == 0)
      return 0;
  n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    host++;
    n -= 2;
  }
  if (n >= sizeof(lit))
    return 1;
  memcpy(lit, host, n);
  lit[n] = '\0';
  if ((n = strcspn(lit, "%")) < strlen(lit))
    lit[n] = '\0'; /* zone id */
  if (inet_pton(AF_INET, lit, &in4) == 1)
    return v4_allowed(ntohl(in4.s_addr));
  if (inet_pton(AF_INET6, lit, &in6) == 1)
    return v6_allowed(in6.s6_addr);
  return 1;
}

int fetch_query_escape(const char *s, char *out, size_t cap) {
  static const char hexd[] = "0123456789ABCDEF";
  size_t o = 0;

  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                c == '~';

    if (o + (plain ? 1 : 3) >= cap)
      return XDS_ETOOBIG;
    if (plain) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hexd[c >> 4];
      out[o++] = hexd[c & 15];
    }
  }
  out[o] = '\0';
  return 0;
}

static curl_socket_t open_cb(void *clientp, curlsocktype purpose,
                             struct curl_sockaddr *a) {
  struct fetch_ctx *c = clientp;

  (void)purpose;
  if (!fetch_addr_allowed(&a->addr, c->allow_link_local)) {
    c->resp->refused = 1;
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype, a->protocol);
}

static int progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  struct fetch_ctx *c = ud;

  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  return c->cancel != NULL && atomic_load(c->cancel) ? 1 : 0;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud) {
  struct fetch_ctx *c = ud;
  size_t n = size * nmemb;

  if (xds_buf_append(&c->resp->body, p, n) < 0) {
    c->toobig = c->resp->body.len + n > c->resp->body.max;
    return 0;
  }
  return n;
}

/* Copies a header's value, trimmed, into dst if name matches. */
static void take_header(const char *line, size_t n, const char *name, char *dst,
                        size_t cap) {
  size_t nl = strlen(name), vl;
  const char *v;

  if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
    return;
  v = line + nl + 1;
  vl = n - nl - 1;
  while (vl > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    vl--;
  }
  while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
    vl--;
  if (vl >= cap)
    vl = cap - 1;
  memcpy(dst, v, vl);
  dst[vl] = '\0';
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud) {
  struct fetch_ctx *c = ud;
  struct fetch_resp *r = c->resp;
  size_t n = size * nmemb;

  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    /* A new response (after a redirect or a 100): forget the last one. */
    r->content_type[0] = r->www_authenticate[0] = '\0';
    r->docker_digest[0] = r->location[0] = '\0';
    return n;
  }
  take_header(p, n, "Content-Type", r->content_type, sizeof(r->content_type));
  take_header(p, n, "WWW-Authenticate", r->www_authenticate,
              sizeof(r->www_authenticate));
  take_header(p, n, "Docker-Content-Digest", r->docker_digest,
              sizeof(r->docker_digest));
  take_header(p, n, "Location", r->location, sizeof(r->location));
  return n;
}

/* The URL up to its query, without any user:password, for messages. */
static void redact(const char *url, char *out, size_t cap) {
  const char *auth = strstr(url, "://"), *rest = url;
  size_t o = 0, n;

  if (auth != NULL && auth < url + strcspn(url, "/?#")) {
    const char *a = auth + 3, *at = NULL;
    size_t alen = strcspn(a, "/?#");

    for (size_t i = 0; i < alen; i++)
      if (a[i] == '@')
        at = a + i;
    if (at != NULL) {
      o = (size_t)(a - url) < cap ? (size_t)(a - url) : cap - 1;
      memcpy(out, url, o);
      rest = at + 1;
    }
  }
  n = strcspn(rest, "?#");
  if (o + n >= cap)
    n = cap - 1 - o;
  memcpy(out + o, rest, n);
  out[o + n] = '\0';
}

static int check_url(const char *url, int allow_link_local,
                     struct xds_err *err) {
  CURLU *u = curl_url();
  char *host = NULL, *user = NULL, *pass = NULL, *scheme = NULL;
  char shown[256];
  int rc = 0;

  redact(url, shown, sizeof(shown));
  if (u == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) !=
          CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    rc = xds_err_set(err, XDS_EINVAL, "%s: not a valid URL", shown);
    goto out;
  }
  if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
    rc = xds_err_set(err, XDS_EINVAL, "%s: only http and https are fetched",
                     shown);
    goto out;
  }
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    rc = xds_err_set(err, XDS_EINVAL, "%s: not a valid URL (no host)", shown);
    goto out;
  }
  if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
      curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "%s://%s: credentials in the URL are refused (use a "
                     "pull secret)",
                     scheme, host);
    goto out;
  }
  if (!fetch_host_allowed(host, allow_link_local)) {
    rc = xds_err_set(err, XDS_EPERM,
                     "%s: refused: link-local or cloud-metadata destination",
                     shown);
    goto out;
  }
out:
  curl_free(host);
  curl_free(user);
  curl_free(pass);
  curl_free(scheme);
  curl_url_cleanup(u);
  return rc;
}

static int64_t mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "scheme://host:port" of url (default ports filled in), into out. Returns
 * 0, or -1 when url does not parse. */
static int origin_of(const char *url, char *out, size_t cap) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;

  if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(out, cap, "%s://%s:%s", scheme, host, port);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* Whether header line h ("Name: value") carries credentials that must not
 * follow a redirect to another origin. */
static int is_credential_header(const char *h) {
  return strncasecmp(h, "Authorization:", 14) == 0 ||
         strncasecmp(h, "Cookie:", 7) == 0;
}

static int is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

/* Builds the header list for a hop: all of req's headers, or all but the
 * credential ones when the hop left the first URL's origin. */
static int hop_headers(const struct fetch_req *req, int foreign,
                       struct curl_slist **out) {
  struct curl_slist *hdrs = NULL;

  for (const char *const *p = req->headers; p != NULL && *p != NULL; p++) {
    struct curl_slist *n;

    if (foreign && is_credential_header(*p))
      continue;
    n = curl_slist_append(hdrs, *p);
    if (n == NULL) {
      curl_slist_free_all(hdrs);
      return XDS_ENOMEM;
    }
    hdrs = n;
  }
  *out = hdrs;
  return 0;
}

/* Redirects are followed here, not by curl, so that each hop's URL passes
 * check_url() (scheme, credentials, host) before anything connects to it;
 * the address rules then apply again at connect time (open_cb). */
int fetch_run(const struct fetch_policy *pol, const struct fetch_req *req,
              struct fetch_resp *resp, struct xds_err *err) {
  struct fetch_ctx ctx;
  struct curl_slist *hdrs = NULL;
  CURL *h = NULL;
  CURLcode cc = CURLE_OK;
  char shown[256], first_origin[512], hop_origin[512];
  char ebuf[CURL_ERROR_SIZE];
  char *url = NULL;
  long total_ms =
      pol->timeout_ms > 0 ? pol->timeout_ms : FETCH_DEFAULT_TIMEOUT_MS;
  int64_t deadline = mono_ms() + total_ms;
  int rc, hop = 0, foreign = 0;

  memset(resp, 0, sizeof(resp[0]));
  xds_buf_init(&resp->body, req->max_body);
  redact(req->url, shown, sizeof(shown));
  rc = check_url(req->url, pol->allow_link_local, err);
  if (rc < 0)
    return rc;
  if (origin_of(req->url, first_origin, sizeof(first_origin)) < 0)
    return xds_err_set(err, XDS_EINVAL, "%s: not a valid URL", shown);
  ctx.resp = resp;
  ctx.allow_link_local = pol->allow_link_local;
  ctx.cancel = pol->cancel;
  ctx.toobig = 0;
  url = xds_strdup(req->url);
  h = curl_easy_init();
  if (url == NULL || h == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "%s: cannot create a curl handle", shown);
    goto out;
  }
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   pol->connect_timeout_ms > 0
                       ? pol->connect_timeout_ms
                       : FETCH_DEFAULT_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER,
                   pol->insecure_skip_verify ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST,
                   pol->insecure_skip_verify ? 0L : 2L);
  ebuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
  if (pol->ca_file != NULL)
    curl_easy_setopt(h, CURLOPT_CAINFO, pol->ca_file);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "wasmxds/" PACKAGE_VERSION);
  curl_easy_setopt(h, CURLOPT_NOBODY, req->head ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_cb);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &ctx);
  if (pol->cancel != NULL) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ctx);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }
  for (;;) {
    int64_t left = deadline - mono_ms();
    char *next = NULL;

    if (left <= 0) {
      cc = CURLE_OPERATION_TIMEDOUT;
      break;
    }
    curl_slist_free_all(hdrs);
    hdrs = NULL;
    rc = hop_headers(req, foreign, &hdrs);
    if (rc < 0) {
      xds_err_set(err, rc, "out of memory");
      goto out;
    }
    xds_buf_reset(&resp->body); /* a redirect's own body is dropped */
    resp->status = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (cc != CURLE_OK || !is_redirect(resp->status) || pol->max_redirects <= 0)
      break;
    if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next) != CURLE_OK ||
        next == NULL)
      break; /* a 3xx without a usable Location: the caller sees it */
    if (hop >= pol->max_redirects) {
      cc = CURLE_TOO_MANY_REDIRECTS;
      break;
    }
    hop++;
    {
      char hop_shown[256];
      struct xds_err why;

      redact(next, hop_shown, sizeof(hop_shown));
      rc = check_url(next, pol->allow_link_local, &why);
      if (rc < 0) {
        xds_err_set(err, rc, "%s: redirect %d to %s", shown, hop, why.msg);
        goto out;
      }
      if (origin_of(next, hop_origin, sizeof(hop_origin)) < 0) {
        rc = xds_err_set(err, XDS_EINVAL,
                         "%s: redirect %d to %s: not a "
                         "valid URL",
                         shown, hop, hop_shown);
        goto out;
      }
    }
    if (strcmp(hop_origin, first_origin) != 0)
      foreign = 1; /* and stays so, even if a later hop comes back */
    xds_free(url);
    url = xds_strdup(next);
    if (url == NULL) {
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
      goto out;
    }
  }
  if (cc == CURLE_OK) {
    rc = 0;
  } else if (resp->refused) {
    rc = xds_err_set(err, XDS_EPERM,
                     "%s: refused: connection to a link-local or "
                     "cloud-metadata address",
                     shown);
  } else if (ctx.toobig || cc == CURLE_FILESIZE_EXCEEDED) {
    rc =
        xds_err_set(err, XDS_ETOOBIG, "%s: body exceeds the limit of %zu bytes",
                    shown, req->max_body);
  } else if (cc == CURLE_OUT_OF_MEMORY) {
    rc = xds_err_set(err, XDS_ENOMEM, "%s: out of memory", shown);
  } else if (cc == CURLE_TOO_MANY_REDIRECTS) {
    rc = xds_err_set(err, XDS_EIO, "%s: more than %d redirects", shown,
                     pol->max_redirects);
  } else if (cc == CURLE_OPERATION_TIMEDOUT) {
    rc = xds_err_set(err, XDS_EIO, "%s: timeout after %ld ms", shown, total_ms);
  } else if (cc == CURLE_PEER_FAILED_VERIFICATION) {
    char peer[512];

    if (origin_of(url, peer, sizeof(peer)) < 0)
      snprintf(peer, sizeof(peer), "the server");
    rc = xds_err_set(err, XDS_EIO,
                     "%s: TLS certificate of %s not accepted: %s (give its CA "
                     "with --module-ca-file; a WasmDeployment may set "
                     "spec.imagePullOptions.insecureSkipVerify)",
                     shown, peer, ebuf[0] ? ebuf : curl_easy_strerror(cc));
  } else {
    rc = xds_err_set(err, XDS_EIO, "%s: %s", shown, curl_easy_strerror(cc));
  }
out:
  xds_free(url);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return rc;
}

void fetch_resp_cleanup(struct fetch_resp *resp) {
  xds_buf_cleanup(&resp->body);
}
