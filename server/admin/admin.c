/*
 * admin.c: libmicrohttpd glue for the admin route table.
 *
 * The listening socket is made in admin_new (so a bad address fails early
 * and the port is known). From admin_start the gate thread accepts on it
 * and holds each connection until its request has arrived (admin.h), then
 * hands it to libmicrohttpd (MHD_add_connection), which serves it on its
 * internal thread(s) with epoll. Slow routes run on the worker thread
 * while libmicrohttpd keeps their connection suspended.
 * Each request gets a struct req_state (con_cls) that accumulates a
 * bounded body; when the request is complete the route's handler runs and
 * its struct admin_resp becomes an MHD response (a file descriptor body
 * goes out with sendfile).
 */
#include "server/admin/admin.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct route {
  char *prefix;
  size_t prefix_len;
  char *methods; /* NULL: any */
  admin_handler_fn fn;
  void *arg;
  int slow; /* runs on the worker thread */
};

/* A connection held by the gate until its request has arrived. */
struct pend {
  int fd; /* -1: free slot */
  struct sockaddr_storage addr;
  socklen_t alen;
  long long accepted_ms;
  char ip[INET6_ADDRSTRLEN];
};

/* One (name, value) of a request copied for the worker thread. */
struct kv {
  char *name, *value;
};

/* Copies of a request's parts, bounded: a slow route's job. */
#define ADMIN_MAX_KV 64

struct req_state;

struct admin {
  struct admin_config cfg;
  const char *flag;
  int fd; /* listening socket */
  int port;
  struct MHD_Daemon *d;
  struct route routes[ADMIN_MAX_ROUTES];
  size_t n_routes;
  char *protected_[ADMIN_MAX_ROUTES];
  size_t n_protected;
  unsigned char *token; /* NULL: no token */
  size_t token_len;
  /* The gate (its thread only, but for the per-IP counts). */
  pthread_t gate_thread;
  int gate_started;
  int ep, wake_fd;
  struct pend *pend;
  size_t n_pend_cap;
  char *peek;              /* max_request_bytes + 1 */
  pthread_mutex_t ip_lock; /* guards per_ip */
  struct xds_map *per_ip;  /* ip -> (uintptr_t) open connections */
  atomic_ulong refused_per_ip, header_timeouts, evicted;
  /* The slow-route worker. */
  pthread_t worker;
  int worker_started;
  pthread_mutex_t q_lock; /* guards the queue and stopping */
  pthread_cond_t q_cond;
  struct req_state *q_head, *q_tail;
  size_t q_len;
  int stopping;
};

struct req_state {
  struct xds_buf body;
  int toobig;
  /* A slow route's job: 1 queued or running, 2 done (resp is ready). */
  int job;
  struct req_state *q_next;
  struct MHD_Connection *conn;
  const struct route *rt;
  char *method, *url;
  struct sockaddr_storage peer;
  int has_peer;
  struct kv headers[ADMIN_MAX_KV], args[ADMIN_MAX_KV];
  size_t n_headers, n_args;
  struct admin_resp resp;
  int rc;
};

struct req_impl {
  struct MHD_Connection *conn; /* NULL: look in st's copies */
  struct req_state *st;
};

static long long mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *kv_find(const struct kv *v, size_t n, const char *name,
                           int nocase) {
  for (size_t i = 0; i < n; i++)
    if ((nocase ? strcasecmp(v[i].name, name) : strcmp(v[i].name, name)) == 0)
      return v[i].value;
  return NULL;
}

static const char *req_header(const struct admin_req *req, const char *name) {
  const struct req_impl *im = req->impl;

  if (im->conn == NULL)
    return kv_find(im->st->headers, im->st->n_headers, name, 1);
  return MHD_lookup_connection_value(im->conn, MHD_HEADER_KIND, name);
}

static const char *req_query(const struct admin_req *req, const char *name) {
  const struct req_impl *im = req->impl;

  if (im->conn == NULL)
    return kv_find(im->st->args, im->st->n_args, name, 0);
  return MHD_lookup_connection_value(im->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int method_listed(const char *list, const char *method) {
  size_t n = strlen(method);
  const char *p = list;

  if (list == NULL)
    return 1;
  /* HEAD is GET without the body (libmicrohttpd leaves it out): every GET
   * route answers HEAD too. */
  if (strcasecmp(method, "HEAD") == 0 && method_listed(list, "GET"))
    return 1;
  while (*p) {
    size_t k = strcspn(p, ",");

    if (k == n && strncasecmp(p, method, n) == 0)
      return 1;
    p += k;
    if (*p == ',')
      p++;
  }
  return 0;
}

static const struct route *find_route(const struct admin *a, const char *path) {
  const struct route *best = NULL;

  for (size_t i = 0; i < a->n_routes; i++) {
    const struct route *r = &a->routes[i];

    if (strncmp(path, r->prefix, r->prefix_len) == 0 &&
        (best == NULL || r->prefix_len > best->prefix_len))
      best = r;
  }
  return best;
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text, const char *allow) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret;

  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "text/plain; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (allow != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void free_body(void *p) {
  xds_free(p);
}

static enum MHD_Result send_resp(struct MHD_Connection *conn,
                                 struct admin_resp *r) {
  struct MHD_Response *resp;
  enum MHD_Result ret;

  if (r->fd >= 0) {
    resp = MHD_create_response_from_fd64(r->fd_size, r->fd);
    if (resp == NULL) {
      close(r->fd);
      r->fd = -1;
      return MHD_NO;
    }
    r->fd = -1; /* MHD closes it with the response */
  } else if (r->body != NULL) {
    resp = MHD_create_response_from_buffer_with_free_callback(
        r->body_len, r->body, free_body);
    if (resp == NULL)
      return MHD_NO;
    r->body = NULL;
  } else {
    resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
      return MHD_NO;
  }
  if (r->content_type[0] != '\0')
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type);
  for (size_t i = 0; i < r->n_headers; i++)
    MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  ret = MHD_queue_response(conn, r->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Sends what a handler returned (rc), then releases resp. */
static enum MHD_Result finish(struct MHD_Connection *conn, int rc,
                              struct admin_resp *resp) {
  enum MHD_Result ret;

  if (rc < 0) {
    if (resp->fd >= 0)
      close(resp->fd);
    resp->fd = -1;
    xds_free(resp->body);
    resp->body = NULL;
    return queue_text(conn,
                      rc == XDS_ENOMEM ? MHD_HTTP_SERVICE_UNAVAILABLE
                                       : MHD_HTTP_INTERNAL_SERVER_ERROR,
                      "internal error\n", NULL);
  }
  ret = send_resp(conn, resp);
  if (resp->fd >= 0)
    close(resp->fd);
  resp->fd = -1;
  xds_free(resp->body);
  resp->body = NULL;
  return ret;
}

/* Constant time in the token's length: 1 when the Authorization header
 * carries the admin's bearer token. */
static int token_ok(const struct admin *a, const char *auth) {
  static const char scheme[] = "Bearer ";
  const unsigned char *got;
  size_t n;
  volatile unsigned char diff = 0;

  if (auth == NULL || strncasecmp(auth, scheme, sizeof(scheme) - 1) != 0)
    return 0;
  got = (const unsigned char *)auth + sizeof(scheme) - 1;
  n = strlen((const char *)got);
  for (size_t i = 0; i < a->token_len; i++)
    diff |= (unsigned char)(a->token[i] ^ (i < n ? got[i] : 0));
  return diff == 0 && n == a->token_len;
}

static int is_protected(const struct admin *a, const char *url) {
  for (size_t i = 0; i < a->n_protected; i++)
    if (strncmp(url, a->protected_[i], strlen(a->protected_[i])) == 0)
      return 1;
  return 0;
}

static enum MHD_Result copy_kv(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value) {
  struct req_state *st = cls;
  struct kv *v = kind == MHD_HEADER_KIND ? st->headers : st->args;
  size_t *n = kind == MHD_HEADER_KIND ? &st->n_headers : &st->n_args;

  if (*n >= ADMIN_MAX_KV)
    return MHD_NO;
  v[*n].name = xds_strdup(key);
  v[*n].value = xds_strdup(value != NULL ? value : "");
  if (v[*n].name == NULL || v[*n].value == NULL) {
    xds_free(v[*n].name);
    xds_free(v[*n].value);
    return MHD_NO;
  }
  (*n)++;
  return MHD_YES;
}

static void job_clear(struct req_state *st) {
  for (size_t i = 0; i < st->n_headers; i++) {
    xds_free(st->headers[i].name);
    xds_free(st->headers[i].value);
  }
  for (size_t i = 0; i < st->n_args; i++) {
    xds_free(st->args[i].name);
    xds_free(st->args[i].value);
  }
  st->n_headers = st->n_args = 0;
  xds_free(st->method);
  xds_free(st->url);
  st->method = st->url = NULL;
  if (st->resp.fd >= 0)
    close(st->resp.fd);
  st->resp.fd = -1;
  xds_free(st->resp.body);
  st->resp.body = NULL;
}

/* Queues st for the worker (the connection is then suspended). Returns 0,
 * or XDS_ETOOBIG (queue full, or stopping), XDS_ENOMEM. */
static int job_queue(struct admin *a, struct req_state *st,
                     struct MHD_Connection *conn, const struct route *rt,
                     const char *url, const char *method) {
  const union MHD_ConnectionInfo *ci;
  int rc = 0;

  st->method = xds_strdup(method);
  st->url = xds_strdup(url);
  if (st->method == NULL || st->url == NULL)
    return XDS_ENOMEM;
  MHD_get_connection_values(conn, MHD_HEADER_KIND, copy_kv, st);
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, copy_kv, st);
  ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci != NULL && ci->client_addr != NULL) {
    memcpy(&st->peer, ci->client_addr,
           ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in));
    st->has_peer = 1;
  }
  st->conn = conn;
  st->rt = rt;
  memset(&st->resp, 0, sizeof(st->resp));
  st->resp.status = MHD_HTTP_OK;
  st->resp.fd = -1;
  pthread_mutex_lock(&a->q_lock);
  if (a->stopping || a->q_len >= ADMIN_MAX_SLOW_QUEUE) {
    rc = XDS_ETOOBIG;
  } else {
    st->job = 1;
    st->q_next = NULL;
    if (a->q_tail != NULL)
      a->q_tail->q_next = st;
    else
      a->q_head = st;
    a->q_tail = st;
    a->q_len++;
    /* Suspended before the worker may resume it. */
    MHD_suspend_connection(conn);
    pthread_cond_signal(&a->q_cond);
  }
  pthread_mutex_unlock(&a->q_lock);
  return rc;
}

static void *worker_main(void *arg) {
  struct admin *a = arg;

  for (;;) {
    struct req_state *st;
    struct admin_req req;
    struct req_impl im;
    int stopping;

    pthread_mutex_lock(&a->q_lock);
    while (a->q_head == NULL && !a->stopping)
      pthread_cond_wait(&a->q_cond, &a->q_lock);
    st = a->q_head;
    stopping = a->stopping;
    if (st != NULL) {
      a->q_head = st->q_next;
      if (a->q_head == NULL)
        a->q_tail = NULL;
      a->q_len--;
    }
    pthread_mutex_unlock(&a->q_lock);
    if (st == NULL)
      break;
    if (stopping) {
      st->rc = XDS_ENOMEM; /* answered 503 */
    } else {
      memset(&req, 0, sizeof(req));
      im.conn = NULL;
      im.st = st;
      req.method = st->method;
      req.path = st->url;
      req.body = st->body.data ? st->body.data : "";
      req.body_len = st->body.len;
      req.peer = st->has_peer ? (const struct sockaddr *)&st->peer : NULL;
      req.header = req_header;
      req.query = req_query;
      req.impl = &im;
      st->rc = st->rt->fn(st->rt->arg, &req, &st->resp);
    }
    st->job = 2;
    MHD_resume_connection(st->conn);
  }
  return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct admin *a = cls;
  struct req_state *st = *con_cls;
  const struct route *rt;
  struct admin_req req;
  struct req_impl im;
  struct admin_resp resp;
  const union MHD_ConnectionInfo *ci;
  int rc;

  (void)version;
  if (st == NULL) {
    st = xds_calloc(1, sizeof(*st));
    if (st == NULL)
      return MHD_NO;
    xds_buf_init(&st->body, a->cfg.max_request_bytes);
    st->resp.fd = -1;
    *con_cls = st;
    return MHD_YES;
  }
  if (st->job == 2) {
    enum MHD_Result ret = finish(conn, st->rc, &st->resp);

    job_clear(st);
    st->job = 0;
    return ret;
  }
  if (st->job == 1)
    return MHD_YES; /* resumed spuriously; the worker still runs it */
  if (*upload_data_size > 0) {
    if (!st->toobig &&
        xds_buf_append(&st->body, upload_data, *upload_data_size) < 0)
      st->toobig = 1;
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (st->toobig)
    return queue_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                      "request body too large\n", NULL);
  rt = find_route(a, url);
  if (rt == NULL)
    return queue_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
  if (!method_listed(rt->methods, method))
    return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                      rt->methods);
  if (a->token != NULL && is_protected(a, url) &&
      !token_ok(a, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_AUTHORIZATION)))
    return queue_text(conn, MHD_HTTP_UNAUTHORIZED,
                      "this page needs the admin bearer token "
                      "(Authorization: Bearer ...)\n",
                      NULL);
  if (rt->slow) {
    rc = job_queue(a, st, conn, rt, url, method);
    if (rc == 0)
      return MHD_YES;
    job_clear(st);
    return queue_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                      rc == XDS_ETOOBIG ? "busy: too many slow requests "
                                          "waiting; retry\n"
                                        : "out of memory\n",
                      NULL);
  }
  memset(&req, 0, sizeof(req));
  im.conn = conn;
  im.st = st;
  req.method = method;
  req.path = url;
  req.body = st->body.data ? st->body.data : "";
  req.body_len = st->body.len;
  ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  req.peer = ci ? ci->client_addr : NULL;
  req.header = req_header;
  req.query = req_query;
  req.impl = &im;
  memset(&resp, 0, sizeof(resp));
  resp.status = MHD_HTTP_OK;
  resp.fd = -1;
  rc = rt->fn(rt->arg, &req, &resp);
  return finish(conn, rc, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct req_state *st = *con_cls;

  (void)cls, (void)conn, (void)toe;
  if (st != NULL) {
    job_clear(st);
    xds_buf_cleanup(&st->body);
    xds_free(st);
  }
  *con_cls = NULL;
}

/* The client address of sa as text (IPv4-mapped IPv6 as IPv4). */
static void ip_key(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN]) {
  out[0] = '\0';
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
              INET6_ADDRSTRLEN);
  } else if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

    if (IN6_IS_ADDR_V4MAPPED(a6))
      inet_ntop(AF_INET, &a6->s6_addr[12], out, INET6_ADDRSTRLEN);
    else
      inet_ntop(AF_INET6, a6, out, INET6_ADDRSTRLEN);
  }
}

/* Adds delta to ip's count of open connections. With delta 1, refuses
 * (returns 0) when ip is at max_per_ip. Returns 1 otherwise. */
static int ip_count(struct admin *a, const char *ip, int delta) {
  uintptr_t n;
  int ok = 1;

  pthread_mutex_lock(&a->ip_lock);
  n = (uintptr_t)xds_map_get(a->per_ip, ip);
  if (delta > 0) {
    if (n >= a->cfg.max_per_ip ||
        xds_map_put(a->per_ip, ip, (void *)(n + 1), NULL) < 0)
      ok = 0;
  } else if (n <= 1) {
    xds_map_del(a->per_ip, ip);
  } else {
    xds_map_put(a->per_ip, ip, (void *)(n - 1), NULL);
  }
  pthread_mutex_unlock(&a->ip_lock);
  return ok;
}

/* libmicrohttpd closed a connection the gate handed over. */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  struct admin *a = cls;
  const union MHD_ConnectionInfo *ci;
  char ip[INET6_ADDRSTRLEN];

  (void)socket_context;
  if (code != MHD_CONNECTION_NOTIFY_CLOSED)
    return;
  ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci == NULL || ci->client_addr == NULL)
    return;
  ip_key(ci->client_addr, ip);
  ip_count(a, ip, -1);
}

static void pend_close(struct admin *a, struct pend *p) {
  epoll_ctl(a->ep, EPOLL_CTL_DEL, p->fd, NULL);
  close(p->fd);
  p->fd = -1;
  ip_count(a, p->ip, -1);
}

/* Where the request's headers end in buf[0..n) (just past the blank line),
 * or 0 when they have not ended yet. */
static size_t headers_end(const char *buf, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (buf[i] != '\n')
      continue;
    if (buf[i + 1] == '\n')
      return i + 2;
    if (i + 2 < n && buf[i + 1] == '\r' && buf[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

/* The body length the headers in buf[0..n) announce: 0 when none, -1 when
 * the body is chunked or the length is not a number (libmicrohttpd then
 * decides). */
static long long body_length(const char *buf, size_t n) {
  static const char cl[] = "content-length:", te[] = "transfer-encoding:";
  const char *p = memchr(buf, '\n', n), *end = buf + n;
  long long len = 0;

  while (p != NULL && p + 1 < end) {
    const char *line = p + 1;
    size_t rest = (size_t)(end - line);

    if (rest > sizeof(te) - 1 && strncasecmp(line, te, sizeof(te) - 1) == 0)
      return -1;
    if (rest > sizeof(cl) - 1 && strncasecmp(line, cl, sizeof(cl) - 1) == 0) {
      const char *q = line + sizeof(cl) - 1;

      while (q < end && (*q == ' ' || *q == '\t'))
        q++;
      if (q >= end || *q < '0' || *q > '9')
        return -1;
      len = 0;
      while (q < end && *q >= '0' && *q <= '9' && len < (1LL << 40))
        len = len * 10 + (*q++ - '0');
    }
    p = memchr(line, '\n', rest);
  }
  return len;
}

/* Looks at what p has sent: 1 when its request is complete (or too large:
 * libmicrohttpd answers it), 0 to keep waiting, -1 when it is gone. */
static int pend_ready(struct admin *a, struct pend *p) {
  size_t cap = a->cfg.max_request_bytes + 1;
  ssize_t n = recv(p->fd, a->peek, cap, MSG_PEEK | MSG_DONTWAIT);

  if (n == 0)
    return -1;
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
  return admin_request_ready(a->peek, (size_t)n, cap);
}

int admin_request_ready(const char *buf, size_t n, size_t cap) {
  size_t hend;
  long long body;

  if (n >= cap)
    return 1;
  hend = headers_end(buf, n);
  if (hend == 0)
    return 0;
  body = body_length(buf, hend);
  if (body < 0 || (unsigned long long)body + hend >= cap)
    return 1;
  return n >= hend + (size_t)body;
}

static void pend_handoff(struct admin *a, struct pend *p) {
  char ip[INET6_ADDRSTRLEN];

  epoll_ctl(a->ep, EPOLL_CTL_DEL, p->fd, NULL);
  memcpy(ip, p->ip, sizeof(ip));
  /* MHD closes the socket whatever happens; on failure no close
   * notification comes, so the count is taken back here. */
  if (MHD_add_connection(a->d, p->fd, (const struct sockaddr *)&p->addr,
                         p->alen) != MHD_YES)
    ip_count(a, ip, -1);
  p->fd = -1;
}

static void gate_accept(struct admin *a) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct epoll_event ev;
    struct pend *p = NULL, *oldest = NULL;
    char ip[INET6_ADDRSTRLEN];
    int fd = accept4(a->fd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    int r;

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE)
        XDS_LOGW("%s: cannot accept: %s", a->flag, strerror(errno));
      return;
    }
    ip_key((struct sockaddr *)&ss, ip);
    if (!ip_count(a, ip, 1)) {
      atomic_fetch_add(&a->refused_per_ip, 1);
      close(fd);
      continue;
    }
    for (size_t i = 0; i < a->n_pend_cap; i++) {
      struct pend *q = &a->pend[i];

      if (q->fd < 0) {
        p = q;
        break;
      }
      if (oldest == NULL || q->accepted_ms < oldest->accepted_ms)
        oldest = q;
    }
    if (p == NULL) {
      /* Full: the request waiting longest makes room. */
      atomic_fetch_add(&a->evicted, 1);
      pend_close(a, oldest);
      p = oldest;
    }
    p->fd = fd;
    memcpy(&p->addr, &ss, sl);
    p->alen = sl;
    p->accepted_ms = mono_ms();
    memcpy(p->ip, ip, sizeof(ip));
    r = pend_ready(a, p);
    if (r > 0) {
      pend_handoff(a, p);
      continue;
    }
    if (r < 0) {
      close(fd);
      p->fd = -1;
      ip_count(a, ip, -1);
      continue;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (uint64_t)(p - a->pend) + 2;
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      p->fd = -1;
      ip_count(a, ip, -1);
    }
  }
}

/* Closes what has waited too long; returns ms until the next deadline. */
static int gate_expire(struct admin *a) {
  long long now = mono_ms(), next = -1;

  for (size_t i = 0; i < a->n_pend_cap; i++) {
    struct pend *p = &a->pend[i];
    long long due;

    if (p->fd < 0)
      continue;
    due = p->accepted_ms + a->cfg.header_timeout_ms;
    if (due <= now) {
      atomic_fetch_add(&a->header_timeouts, 1);
      XDS_LOGD("%s: closing a connection from %s: request not complete "
               "%u ms after accept",
               a->flag, p->ip, a->cfg.header_timeout_ms);
      pend_close(a, p);
    } else if (next < 0 || due < next) {
      next = due;
    }
  }
  return next < 0 ? -1 : (int)(next - now);
}

static void *gate_main(void *arg) {
  struct admin *a = arg;
  struct epoll_event evs[64];

  for (;;) {
    int timeout = gate_expire(a);
    int n = epoll_wait(a->ep, evs, 64, timeout);

    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;

      if (tag == 1)
        return NULL;
      if (tag == 0) {
        gate_accept(a);
      } else if (tag - 2 < a->n_pend_cap && a->pend[tag - 2].fd >= 0) {
        struct pend *p = &a->pend[tag - 2];
        int r = pend_ready(a, p);

        if (r > 0)
          pend_handoff(a, p);
        else if (r < 0 || (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
          pend_close(a, p);
      }
    }
  }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char msg[512];
  size_t n;

  (void)cls;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  XDS_LOGW("admin: %s", msg);
}

/* Splits "host:port" / "[v6]:port", resolves numerically or by name. */
static int make_listener(const char *flag, const char *addr, int *fd_out,
                         int *port_out, struct xds_err *err) {
  char host[256];
  const char *port, *close_br;
  struct addrinfo hints, *res = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = -1, one = 1, gai;
  size_t hl;

  if (addr[0] == '[') {
    close_br = strchr(addr, ']');
    if (close_br == NULL || close_br[1] != ':')
      return xds_err_set(err, XDS_EINVAL, "%s %s: expected [address]:port",
                         flag, addr);
    hl = (size_t)(close_br - addr - 1);
    port = close_br + 2;
    if (hl >= sizeof(host))
      return xds_err_set(err, XDS_EINVAL, "%s: address too long", flag);
    memcpy(host, addr + 1, hl);
  } else {
    port = strrchr(addr, ':');
    if (port == NULL)
      return xds_err_set(err, XDS_EINVAL, "%s %s: expected host:port", flag,
                         addr);
    hl = (size_t)(port - addr);
    port++;
    if (hl >= sizeof(host))
      return xds_err_set(err, XDS_EINVAL, "%s: host too long", flag);
    memcpy(host, addr, hl);
  }
  host[hl] = '\0';
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
  if (gai != 0 || res == NULL)
    return xds_err_set(err, XDS_EINVAL, "%s %s: %s", flag, addr,
                       gai_strerror(gai));
  fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
              res->ai_protocol);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    int e = errno;

    if (fd >= 0)
      close(fd);
    freeaddrinfo(res);
    return xds_err_set(err, XDS_EIO, "%s %s: %s", flag, addr, strerror(e));
  }
  freeaddrinfo(res);
  *port_out =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
  *fd_out = fd;
  return 0;
}

static int read_token(struct admin *a, const char *path, struct xds_err *err) {
  unsigned char buf[ADMIN_TOKEN_MAX + 1];
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL)
    return xds_err_set(err, XDS_EIO, "--admin-token-file %s: %s", path,
                       strerror(errno));
  n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  if (n > ADMIN_TOKEN_MAX || n < ADMIN_TOKEN_MIN) {
    memset(buf, 0, sizeof(buf));
    return xds_err_set(err, XDS_EINVAL,
                       "--admin-token-file %s: the token must have %d to %d "
                       "bytes (one line)",
                       path, ADMIN_TOKEN_MIN, ADMIN_TOKEN_MAX);
  }
  for (size_t i = 0; i < n; i++)
    if (buf[i] <= ' ' || buf[i] >= 0x7f) {
      memset(buf, 0, sizeof(buf));
      return xds_err_set(err, XDS_EINVAL,
                         "--admin-token-file %s: the token must be printable "
                         "ASCII without spaces",
                         path);
    }
  a->token = xds_malloc(n);
  if (a->token == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  memcpy(a->token, buf, n);
  a->token_len = n;
  memset(buf, 0, sizeof(buf));
  return 0;
}

int admin_new(const struct admin_config *cfg, struct admin **out,
              struct xds_err *err) {
  struct admin *a = xds_calloc(1, sizeof(*a));
  int rc;

  *out = NULL;
  if (a == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  a->cfg = *cfg;
  a->flag = a->cfg.flag != NULL ? a->cfg.flag : "--admin-listen";
  if (a->cfg.listen == NULL)
    a->cfg.listen = ADMIN_DEFAULT_LISTEN;
  if (a->cfg.max_connections == 0)
    a->cfg.max_connections = ADMIN_DEFAULT_MAX_CONNECTIONS;
  if (a->cfg.max_request_bytes == 0)
    a->cfg.max_request_bytes = ADMIN_DEFAULT_MAX_REQUEST;
  if (a->cfg.timeout_s == 0)
    a->cfg.timeout_s = ADMIN_DEFAULT_TIMEOUT_S;
  if (a->cfg.threads == 0)
    a->cfg.threads = ADMIN_DEFAULT_THREADS;
  if (a->cfg.threads > ADMIN_MAX_THREADS)
    a->cfg.threads = ADMIN_MAX_THREADS;
  if (a->cfg.header_timeout_ms == 0)
    a->cfg.header_timeout_ms = ADMIN_DEFAULT_HEADER_TIMEOUT_MS;
  if (a->cfg.max_per_ip == 0)
    a->cfg.max_per_ip = ADMIN_DEFAULT_MAX_PER_IP;
  a->fd = a->ep = a->wake_fd = -1;
  pthread_mutex_init(&a->ip_lock, NULL);
  pthread_mutex_init(&a->q_lock, NULL);
  pthread_cond_init(&a->q_cond, NULL);
  a->per_ip = xds_map_new();
  a->n_pend_cap = a->cfg.max_connections;
  a->pend = xds_calloc(a->n_pend_cap, sizeof(*a->pend));
  a->peek = xds_malloc(a->cfg.max_request_bytes + 1);
  if (a->per_ip == NULL || a->pend == NULL || a->peek == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < a->n_pend_cap; i++)
    a->pend[i].fd = -1;
  if (a->cfg.token_file != NULL &&
      (rc = read_token(a, a->cfg.token_file, err)) < 0)
    goto fail;
  rc = make_listener(a->flag, a->cfg.listen, &a->fd, &a->port, err);
  if (rc < 0)
    goto fail;
  a->cfg.listen = NULL; /* not kept */
  a->cfg.token_file = NULL;
  *out = a;
  return 0;
fail:
  admin_free(a);
  return rc;
}

static int add_route(struct admin *a, const char *prefix, const char *methods,
                     admin_handler_fn fn, void *arg, int slow) {
  struct route *r;

  if (a->d != NULL || prefix == NULL || prefix[0] != '/' || fn == NULL)
    return XDS_EINVAL;
  if (a->n_routes >= ADMIN_MAX_ROUTES)
    return XDS_ETOOBIG;
  r = &a->routes[a->n_routes];
  r->prefix = xds_strdup(prefix);
  r->methods = methods ? xds_strdup(methods) : NULL;
  if (r->prefix == NULL || (methods != NULL && r->methods == NULL)) {
    xds_free(r->prefix);
    xds_free(r->methods);
    r->prefix = r->methods = NULL;
    return XDS_ENOMEM;
  }
  r->prefix_len = strlen(prefix);
  r->fn = fn;
  r->arg = arg;
  r->slow = slow;
  a->n_routes++;
  return 0;
}

int admin_route(struct admin *a, const char *prefix, const char *methods,
                admin_handler_fn fn, void *arg) {
  return add_route(a, prefix, methods, fn, arg, 0);
}

int admin_route_slow(struct admin *a, const char *prefix, const char *methods,
                     admin_handler_fn fn, void *arg) {
  return add_route(a, prefix, methods, fn, arg, 1);
}

int admin_protect(struct admin *a, const char *prefix) {
  if (a->d != NULL || prefix == NULL || prefix[0] != '/')
    return XDS_EINVAL;
  if (a->n_protected >= ADMIN_MAX_ROUTES)
    return XDS_ETOOBIG;
  a->protected_[a->n_protected] = xds_strdup(prefix);
  if (a->protected_[a->n_protected] == NULL)
    return XDS_ENOMEM;
  a->n_protected++;
  return 0;
}

int admin_start(struct admin *a, struct xds_err *err) {
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
                   MHD_ALLOW_SUSPEND_RESUME;
  size_t mem = a->cfg.max_request_bytes < 32 * 1024 ? 32 * 1024
                                                    : a->cfg.max_request_bytes;
  struct epoll_event ev;

  if (a->d != NULL)
    return 0;
  {
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, a},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)a->cfg.max_connections, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)mem, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)a->cfg.timeout_s, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, a},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, a},
        /* A pool of one is no pool (libmicrohttpd warns): left out. */
        {a->cfg.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)a->cfg.threads, NULL},
        {MHD_OPTION_END, 0, NULL}};

    a->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
                            MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
  }
  if (a->d == NULL)
    return xds_err_set(err, XDS_EIO, "%s: cannot start libmicrohttpd", a->flag);
  if (pthread_create(&a->worker, NULL, worker_main, a) != 0)
    return xds_err_set(err, XDS_EIO, "%s: cannot start a thread", a->flag);
  a->worker_started = 1;
  a->ep = epoll_create1(EPOLL_CLOEXEC);
  a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (a->ep < 0 || a->wake_fd < 0)
    return xds_err_set(err, XDS_EIO, "%s: %s", a->flag, strerror(errno));
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->fd, &ev) < 0)
    return xds_err_set(err, XDS_EIO, "%s: %s", a->flag, strerror(errno));
  ev.data.u64 = 1;
  if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->wake_fd, &ev) < 0)
    return xds_err_set(err, XDS_EIO, "%s: %s", a->flag, strerror(errno));
  if (pthread_create(&a->gate_thread, NULL, gate_main, a) != 0)
    return xds_err_set(err, XDS_EIO, "%s: cannot start a thread", a->flag);
  a->gate_started = 1;
  return 0;
}

int admin_port(const struct admin *a) {
  return a->port;
}

void admin_free(struct admin *a) {
  if (a == NULL)
    return;
  if (a->gate_started) {
    uint64_t one = 1;

    if (write(a->wake_fd, &one, sizeof(one)) < 0)
      XDS_LOGW("%s: cannot wake the accept thread: %s", a->flag,
               strerror(errno));
    pthread_join(a->gate_thread, NULL);
  }
  for (size_t i = 0; a->pend != NULL && i < a->n_pend_cap; i++)
    if (a->pend[i].fd >= 0)
      pend_close(a, &a->pend[i]);
  if (a->worker_started) {
    /* Queued requests are answered 503; the running one finishes. */
    pthread_mutex_lock(&a->q_lock);
    a->stopping = 1;
    pthread_cond_broadcast(&a->q_cond);
    pthread_mutex_unlock(&a->q_lock);
    pthread_join(a->worker, NULL);
  }
  if (a->d != NULL)
    MHD_stop_daemon(a->d);
  if (a->fd >= 0)
    close(a->fd);
  if (a->ep >= 0)
    close(a->ep);
  if (a->wake_fd >= 0)
    close(a->wake_fd);
  for (size_t i = 0; i < a->n_routes; i++) {
    xds_free(a->routes[i].prefix);
    xds_free(a->routes[i].methods);
  }
  for (size_t i = 0; i < a->n_protected; i++)
    xds_free(a->protected_[i]);
  if (a->token != NULL)
    memset(a->token, 0, a->token_len);
  xds_free(a->token);
  xds_map_free(a->per_ip, NULL);
  xds_free(a->pend);
  xds_free(a->peek);
  pthread_mutex_destroy(&a->ip_lock);
  pthread_mutex_destroy(&a->q_lock);
  pthread_cond_destroy(&a->q_cond);
  xds_free(a);
}
