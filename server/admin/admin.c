/*
 * admin.c: libmicrohttpd glue for the admin route table.
 *
 * The listening socket is made in admin_new (so a bad address fails early
 * and the port is known), then handed to libmicrohttpd in admin_start,
 * which serves it on its internal thread(s) with epoll where available.
 * Each request gets a struct req_state (con_cls) that accumulates a
 * bounded body; when the request is complete the route's handler runs and
 * its struct admin_resp becomes an MHD response (a file descriptor body
 * goes out with sendfile).
 */
#include "server/admin/admin.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

struct route {
  char *prefix;
  size_t prefix_len;
  char *methods; /* NULL: any */
  admin_handler_fn fn;
  void *arg;
};

struct admin {
  struct admin_config cfg;
  int fd; /* listening socket until MHD owns it */
  int port;
  struct MHD_Daemon *d;
  struct route routes[ADMIN_MAX_ROUTES];
  size_t n_routes;
};

struct req_state {
  struct xds_buf body;
  int toobig;
};

struct req_impl {
  struct MHD_Connection *conn;
};

static const char *req_header(const struct admin_req *req, const char *name) {
  const struct req_impl *im = req->impl;

  return MHD_lookup_connection_value(im->conn, MHD_HEADER_KIND, name);
}

static const char *req_query(const struct admin_req *req, const char *name) {
  const struct req_impl *im = req->impl;

  return MHD_lookup_connection_value(im->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int method_listed(const char *list, const char *method) {
  size_t n = strlen(method);
  const char *p = list;

  if (list == NULL)
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
  if (allow != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
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
  ret = MHD_queue_response(conn, r->status, resp);
  MHD_destroy_response(resp);
  return ret;
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
  enum MHD_Result ret;
  int rc;

  (void)version;
  if (st == NULL) {
    st = xds_calloc(1, sizeof(*st));
    if (st == NULL)
      return MHD_NO;
    xds_buf_init(&st->body, a->cfg.max_request_bytes);
    *con_cls = st;
    return MHD_YES;
  }
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
  memset(&req, 0, sizeof(req));
  im.conn = conn;
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
  if (rc < 0) {
    if (resp.fd >= 0)
      close(resp.fd);
    xds_free(resp.body);
    return queue_text(conn,
                      rc == XDS_ENOMEM ? MHD_HTTP_SERVICE_UNAVAILABLE
                                       : MHD_HTTP_INTERNAL_SERVER_ERROR,
                      "internal error\n", NULL);
  }
  ret = send_resp(conn, &resp);
  if (resp.fd >= 0)
    close(resp.fd);
  xds_free(resp.body);
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct req_state *st = *con_cls;

  (void)cls, (void)conn, (void)toe;
  if (st != NULL) {
    xds_buf_cleanup(&st->body);
    xds_free(st);
  }
  *con_cls = NULL;
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
static int make_listener(const char *addr, int *fd_out, int *port_out,
                         struct xds_err *err) {
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
      return xds_err_set(err, XDS_EINVAL,
                         "--admin-listen %s: expected [address]:port", addr);
    hl = (size_t)(close_br - addr - 1);
    port = close_br + 2;
    if (hl >= sizeof(host))
      return xds_err_set(err, XDS_EINVAL, "--admin-listen: address too long");
    memcpy(host, addr + 1, hl);
  } else {
    port = strrchr(addr, ':');
    if (port == NULL)
      return xds_err_set(err, XDS_EINVAL,
                         "--admin-listen %s: expected host:port", addr);
    hl = (size_t)(port - addr);
    port++;
    if (hl >= sizeof(host))
      return xds_err_set(err, XDS_EINVAL, "--admin-listen: host too long");
    memcpy(host, addr, hl);
  }
  host[hl] = '\0';
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
  if (gai != 0 || res == NULL)
    return xds_err_set(err, XDS_EINVAL, "--admin-listen %s: %s", addr,
                       gai_strerror(gai));
  fd =
      socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    int e = errno;

    if (fd >= 0)
      close(fd);
    freeaddrinfo(res);
    return xds_err_set(err, XDS_EIO, "--admin-listen %s: %s", addr,
                       strerror(e));
  }
  freeaddrinfo(res);
  *port_out =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
  *fd_out = fd;
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
  a->fd = -1;
  rc = make_listener(a->cfg.listen, &a->fd, &a->port, err);
  if (rc < 0) {
    xds_free(a);
    return rc;
  }
  a->cfg.listen = NULL; /* not kept */
  *out = a;
  return 0;
}

int admin_route(struct admin *a, const char *prefix, const char *methods,
                admin_handler_fn fn, void *arg) {
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
  a->n_routes++;
  return 0;
}

int admin_start(struct admin *a, struct xds_err *err) {
  unsigned flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  size_t mem = a->cfg.max_request_bytes < 32 * 1024 ? 32 * 1024
                                                    : a->cfg.max_request_bytes;

  if (a->d != NULL)
    return 0;
  a->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
      a, MHD_OPTION_LISTEN_SOCKET, a->fd, MHD_OPTION_CONNECTION_LIMIT,
      a->cfg.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
      MHD_OPTION_CONNECTION_TIMEOUT, a->cfg.timeout_s,
      MHD_OPTION_THREAD_POOL_SIZE, a->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, a, MHD_OPTION_END);
  if (a->d == NULL)
    return xds_err_set(err, XDS_EIO, "admin: cannot start libmicrohttpd");
  a->fd = -1; /* MHD owns and closes it */
  return 0;
}

int admin_port(const struct admin *a) {
  return a->port;
}

void admin_free(struct admin *a) {
  if (a == NULL)
    return;
  if (a->d != NULL)
    MHD_stop_daemon(a->d);
  if (a->fd >= 0)
    close(a->fd);
  for (size_t i = 0; i < a->n_routes; i++) {
    xds_free(a->routes[i].prefix);
    xds_free(a->routes[i].methods);
  }
  xds_free(a);
}
