/*
 * status.c: health, readiness and per-proxy status over the admin server.
 */
#include "server/admin/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

void status_init(struct status *st, struct xds_server *server) {
  memset(st, 0, sizeof(*st));
  st->server = server;
  atomic_init(&st->ready, 0);
  atomic_init(&st->generation, 0);
  pthread_mutex_init(&st->lock, NULL);
}

void status_cleanup(struct status *st) {
  pthread_mutex_destroy(&st->lock);
}

void status_set_ready(struct status *st, unsigned long generation) {
  atomic_store(&st->generation, generation);
  atomic_store(&st->ready, 1);
}

void status_set_degraded(struct status *st, const char *reason) {
  pthread_mutex_lock(&st->lock);
  st->degraded = reason != NULL;
  snprintf(st->reason, sizeof(st->reason), "%s", reason != NULL ? reason : "");
  pthread_mutex_unlock(&st->lock);
}

/* Hands a JSON value to the response (consumes j). */
__attribute__((unused)) static int json_reply(struct admin_resp *resp, unsigned code, json_t *j) {
  char *text = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;
  size_t n;

  json_decref(j);
  if (text == NULL)
    return XDS_ENOMEM;
  n = strlen(text);
  resp->body = xds_malloc(n + 2);
  if (resp->body == NULL) {
    free(text);
    return XDS_ENOMEM;
  }
  memcpy(resp->body, text, n);
  resp->body[n] = '\n';
  resp->body_len = n + 1;
  free(text);
  resp->status = code;
  snprintf(resp->content_type, sizeof(resp->content_type), "application/json");
  return 0;
}

static int text_reply(struct admin_resp *resp, unsigned code, const char *s) {
  resp->body = xds_strdup(s);
  if (resp->body == NULL)
    return XDS_ENOMEM;
  resp->body_len = strlen(s);
  resp->status = code;
  snprintf(resp->content_type, sizeof(resp->content_type),
           "text/plain; charset=utf-8");
  return 0;
}

static int on_healthz(void *arg, const struct admin_req *req,
                      struct admin_resp *resp) {
  (void)arg;
  (void)req;
  return text_reply(resp, 200, "ok\n");
}

static int on_readyz(void *arg, const struct admin_req *req,
                     struct admin_resp *resp) {
  struct status *st = arg;
  char line[320];
  int degraded;

  (void)req;
  if (!atomic_load(&st->ready))
    return text_reply(resp, 503, "not ready: no store loaded yet\n");
  pthread_mutex_lock(&st->lock);
  degraded = st->degraded;
  snprintf(line, sizeof(line),
           "degraded: %s (serving the last good "
           "configuration)\n",
           st->reason);
  pthread_mutex_unlock(&st->lock);
  return text_reply(resp, 200, degraded ? line : "ready\n");
}

/* A whole number query argument; 0 and *out unchanged when absent, -1
 * when not a number. */
static int query_ull(const struct admin_req *req, const char *name,
                     unsigned long long *out) {
  const char *v = req->query(req, name);
  char *end;

  if (v == NULL)
    return 0;
  errno = 0;
  *out = strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || v[0] == '-')
    return -1;
  return 0;
}

static int on_proxies(void *arg, const struct admin_req *req,
                      struct admin_resp *resp) {
  struct status *st = arg;
  const char *id = req->path + strlen("/debug/proxies");
  struct xds_status_query q;
  unsigned long long after = 0, limit = 0;
  struct xds_status_page page;
  int rc;

  if (*id != '\0' && *id != '/')
    return text_reply(resp, 404, "not found\n");
  if (*id == '/')
    id++;
  memset(&q, 0, sizeof(q));
  if (query_ull(req, "after", &after) < 0 ||
      query_ull(req, "limit", &limit) < 0)
    return text_reply(resp, 400,
                      "after and limit must be whole numbers (after: the "
                      "stream_id of the last proxy of the previous page)\n");
  q.after = after;
  q.limit = (size_t)limit;
  q.node_id = *id != '\0' ? id : req->query(req, "node");
  q.organization = req->query(req, "organization");
  q.tenant = req->query(req, "tenant");
  rc = xds_server_status_query(st->server, &q, STATUS_WAIT_MS, &page);
  if (rc == XDS_ETOOBIG)
    return text_reply(resp, 503, "the serving loop did not answer in time\n");
  if (rc < 0)
    return rc;
  if (*id != '\0' && page.count == 0) {
    xds_free(page.json);
    return text_reply(resp, 404, "no connected proxy with that node id\n");
  }
  if (limit > 0 && page.count == limit) {
    /* A full page: where the next one starts. */
    char next[32];

    snprintf(next, sizeof(next), "%llu", (unsigned long long)page.last_id);
    admin_resp_header(resp, STATUS_NEXT_HEADER, next);
  }
  resp->body = page.json;
  resp->body_len = page.len;
  resp->status = 200;
  snprintf(resp->content_type, sizeof(resp->content_type), "application/json");
  return 0;
}

int status_register(struct status *st, struct admin *a) {
  int rc = admin_route(a, "/healthz", "GET,HEAD", on_healthz, st);

  if (rc == 0)
    rc = admin_route(a, "/readyz", "GET,HEAD", on_readyz, st);
  if (rc == 0)
    rc = admin_route_slow(a, "/debug/proxies", "GET", on_proxies, st);
  if (rc == 0)
    rc = admin_protect(a, "/debug/");
  return rc;
}
