/*
 * status.c: health, readiness and per-proxy status over the admin server.
 */
#include "server/admin/status.h"

#include <stdio.h>
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
static int json_reply(struct admin_resp *resp, unsigned code, json_t *j) {
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

static int on_proxies(void *arg, const struct admin_req *req,
                      struct admin_resp *resp) {
  struct status *st = arg;
  const char *id = req->path + strlen("/debug/proxies");
  json_t *arr;

  if (*id != '\0' && *id != '/')
    return text_reply(resp, 404, "not found\n");
  if (*id == '/')
    id++;
  arr = xds_server_status(st->server, *id != '\0' ? id : NULL, STATUS_WAIT_MS);
  if (arr == NULL)
    return text_reply(resp, 503, "the serving loop did not answer in time\n");
  if (*id != '\0' && json_array_size(arr) == 0) {
    json_decref(arr);
    return text_reply(resp, 404, "no connected proxy with that node id\n");
  }
  return json_reply(resp, 200, arr);
}

int status_register(struct status *st, struct admin *a) {
  int rc = admin_route(a, "/healthz", "GET,HEAD", on_healthz, st);

  if (rc == 0)
    rc = admin_route(a, "/readyz", "GET,HEAD", on_readyz, st);
  if (rc == 0)
    rc = admin_route(a, "/debug/proxies", "GET", on_proxies, st);
  return rc;
}
