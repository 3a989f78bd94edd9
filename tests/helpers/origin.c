/*
 * origin.c: see origin.h.
 */
#include "tests/helpers/origin.h"

#include "base/alloc.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORIGIN_MAX_ROUTES 64
#define ORIGIN_MAX_HEADERS 4
#define ORIGIN_MAX_AUTH 4

struct oroute {
  char *path;
  unsigned status;
  char ctype[128];
  unsigned char *body;
  size_t len;
  char hname[ORIGIN_MAX_HEADERS][64];
  char hvalue[ORIGIN_MAX_HEADERS][512];
  int n_headers;
  long delay_ms;
  long hits;
};

struct oauth {
  char prefix[256];
  char authz[512];
  char challenge[512];
};

struct origin {
  struct MHD_Daemon *d;
  int port;
  char base[64];
  pthread_mutex_t lock;
  struct oroute routes[ORIGIN_MAX_ROUTES];
  int n_routes;
  struct oauth auth[ORIGIN_MAX_AUTH];
  int n_auth;
  long total;
  atomic_int stopping; /* set by origin_stop, read by handler threads */
};

static struct oroute *find(struct origin *o, const char *path) {
  for (int i = 0; i < o->n_routes; i++)
    if (strcmp(o->routes[i].path, path) == 0)
      return &o->routes[i];
  return NULL;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *ctype, const void *body, size_t len,
                             const char (*hn)[64], const char (*hv)[512],
                             int nh) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret;

  if (ctype != NULL && ctype[0])
    MHD_add_response_header(r, "Content-Type", ctype);
  for (int i = 0; i < nh; i++)
    MHD_add_response_header(r, hn[i], hv[i]);
  ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *up,
                              size_t *up_size, void **con_cls) {
  struct origin *o = cls;
  struct oroute *rt, copy;
  const char *authz;
  enum MHD_Result ret;
  long waited = 0;

  (void)method, (void)version, (void)up;
  if (*con_cls == NULL) {
    *con_cls = (void *)1;
    return MHD_YES;
  }
  if (*up_size) {
    *up_size = 0;
    return MHD_YES;
  }
  authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  pthread_mutex_lock(&o->lock);
  o->total++;
  for (int i = 0; i < o->n_auth; i++) {
    struct oauth *a = &o->auth[i];

    if (strncmp(url, a->prefix, strlen(a->prefix)) == 0 &&
        (authz == NULL || strcmp(authz, a->authz) != 0)) {
      char hn[1][64], hv[1][512];

      snprintf(hn[0], sizeof(hn[0]), "WWW-Authenticate");
      snprintf(hv[0], sizeof(hv[0]), "%s", a->challenge);
      rt = find(o, url);
      if (rt != NULL)
        rt->hits++;
      pthread_mutex_unlock(&o->lock);
      return reply(c, 401, "application/json", "{}", 2, (const char(*)[64])hn,
                   (const char(*)[512])hv, 1);
    }
  }
  rt = find(o, url);
  if (rt == NULL) {
    pthread_mutex_unlock(&o->lock);
    return reply(c, 404, "text/plain", "no route\n", 9, NULL, NULL, 0);
  }
  rt->hits++;
  copy = *rt;
  copy.body = xds_malloc(rt->len ? rt->len : 1);
  memcpy(copy.body, rt->body, rt->len);
  pthread_mutex_unlock(&o->lock);
  while (waited < copy.delay_ms && !atomic_load(&o->stopping)) {
    usleep(20000);
    waited += 20;
  }
  ret = reply(c, copy.status, copy.ctype, copy.body, copy.len,
              (const char(*)[64])copy.hname, (const char(*)[512])copy.hvalue,
              copy.n_headers);
  xds_free(copy.body);
  return ret;
}

/* Starts the daemon, over TLS when cert_pem and key_pem are given. */
static struct origin *start(const char *cert_pem, const char *key_pem) {
  struct origin *o = xds_calloc(1, sizeof(*o));
  const union MHD_DaemonInfo *info;
  struct sockaddr_in sa;

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  pthread_mutex_init(&o->lock, NULL);
  if (cert_pem != NULL)
    o->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS,
                            0, NULL, NULL, handle, o, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
                            MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_END);
  else
    o->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, handle, o, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
  if (o->d == NULL)
    abort();
  info = MHD_get_daemon_info(o->d, MHD_DAEMON_INFO_BIND_PORT);
  o->port = info->port;
  snprintf(o->base, sizeof(o->base), "%s://127.0.0.1:%d",
           cert_pem != NULL ? "https" : "http", o->port);
  return o;
}

struct origin *origin_start(void) {
  return start(NULL, NULL);
}

struct origin *origin_start_tls(const char *cert_pem, const char *key_pem) {
  if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
    abort();
  return start(cert_pem, key_pem);
}

int origin_port(const struct origin *o) {
  return o->port;
}
const char *origin_base(const struct origin *o) {
  return o->base;
}

void origin_stop(struct origin *o) {
  if (o == NULL)
    return;
  atomic_store(&o->stopping, 1);
  MHD_stop_daemon(o->d);
  for (int i = 0; i < o->n_routes; i++) {
    xds_free(o->routes[i].path);
    xds_free(o->routes[i].body);
  }
  pthread_mutex_destroy(&o->lock);
  xds_free(o);
}

void origin_set(struct origin *o, const char *path, unsigned status,
                const char *content_type, const void *body, size_t len) {
  struct oroute *r;

  pthread_mutex_lock(&o->lock);
  r = find(o, path);
  if (r == NULL) {
    if (o->n_routes >= ORIGIN_MAX_ROUTES)
      abort();
    r = &o->routes[o->n_routes++];
    memset(r, 0, sizeof(*r));
    r->path = xds_strdup(path);
  }
  xds_free(r->body);
  r->body = xds_malloc(len ? len : 1);
  memcpy(r->body, body, len);
  r->len = len;
  r->status = status;
  snprintf(r->ctype, sizeof(r->ctype), "%s", content_type ? content_type : "");
  pthread_mutex_unlock(&o->lock);
}

void origin_header(struct origin *o, const char *path, const char *name,
                   const char *value) {
  struct oroute *r;

  pthread_mutex_lock(&o->lock);
  r = find(o, path);
  if (r == NULL || r->n_headers >= ORIGIN_MAX_HEADERS)
    abort();
  snprintf(r->hname[r->n_headers], 64, "%s", name);
  snprintf(r->hvalue[r->n_headers], 512, "%s", value);
  r->n_headers++;
  pthread_mutex_unlock(&o->lock);
}

void origin_delay(struct origin *o, const char *path, long ms) {
  struct oroute *r;

  pthread_mutex_lock(&o->lock);
  r = find(o, path);
  if (r == NULL)
    abort();
  r->delay_ms = ms;
  pthread_mutex_unlock(&o->lock);
}

void origin_require(struct origin *o, const char *prefix, const char *authz,
                    const char *challenge) {
  struct oauth *a;

  pthread_mutex_lock(&o->lock);
  if (o->n_auth >= ORIGIN_MAX_AUTH)
    abort();
  a = &o->auth[o->n_auth++];
  snprintf(a->prefix, sizeof(a->prefix), "%s", prefix);
  snprintf(a->authz, sizeof(a->authz), "%s", authz);
  snprintf(a->challenge, sizeof(a->challenge), "%s", challenge);
  pthread_mutex_unlock(&o->lock);
}

long origin_hits(struct origin *o, const char *path) {
  long n;

  pthread_mutex_lock(&o->lock);
  if (path == NULL) {
    n = o->total;
  } else {
    struct oroute *r = find(o, path);

    n = r ? r->hits : 0;
  }
  pthread_mutex_unlock(&o->lock);
  return n;
}

void origin_reset_hits(struct origin *o) {
  pthread_mutex_lock(&o->lock);
  o->total = 0;
  for (int i = 0; i < o->n_routes; i++)
    o->routes[i].hits = 0;
  pthread_mutex_unlock(&o->lock);
}
