/*
 * http_route.h: the plain types of one HTTP route, shared by the admin
 * server (server/admin/admin.h), which parses requests and sends answers,
 * and by every module that answers requests without depending on that
 * server (modules/serve.h, the status pages). A handler gets a struct
 * admin_req and fills a struct admin_resp; nothing here does I/O.
 */
#ifndef XDS_BASE_HTTP_ROUTE_H
#define XDS_BASE_HTTP_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"

/* Response headers one handler may add. */
#define ADMIN_RESP_MAX_HEADERS 8

/* One request, valid during the handler call only. */
struct admin_req {
  const char *method; /* "GET", "HEAD", ... */
  const char *path;   /* decoded path, without the query */
  const char *body;   /* NUL-terminated; "" when none */
  size_t body_len;
  const struct sockaddr *peer; /* nullable */
  /* Case-insensitive header lookup; NULL when absent. */
  const char *(*header)(const struct admin_req *req, const char *name);
  /* Query argument lookup; NULL when absent. */
  const char *(*query)(const struct admin_req *req, const char *name);
  void *impl; /* the server's */
};

struct admin_resp_header {
  char name[48];
  char value[208];
};

/* What a handler answers. The admin server presets status 200, no body,
 * fd -1. */
struct admin_resp {
  unsigned status;
  char content_type[64]; /* "" : none */
  char *body;            /* xds_malloc'd; the server frees it */
  size_t body_len;
  int fd; /* >= 0: send fd_size bytes of this file instead
             of body; the server closes it */
  uint64_t fd_size;
  struct admin_resp_header headers[ADMIN_RESP_MAX_HEADERS];
  size_t n_headers;
};

/* Adds a response header. Returns 0 or XDS_ETOOBIG (too many, too long). */
static inline int admin_resp_header(struct admin_resp *r, const char *name,
                                    const char *value) {
  struct admin_resp_header *h;

  if (r->n_headers >= ADMIN_RESP_MAX_HEADERS ||
      strlen(name) >= sizeof(h->name) || strlen(value) >= sizeof(h->value))
    return XDS_ETOOBIG;
  h = &r->headers[r->n_headers++];
  snprintf(h->name, sizeof(h->name), "%s", name);
  snprintf(h->value, sizeof(h->value), "%s", value);
  return 0;
}

/* Handles one request. Returns 0 when resp is to be sent; a negative code
 * makes the server answer 500 (503 for XDS_ENOMEM) and discard resp,
 * closing its fd and freeing its body. */
typedef int (*admin_handler_fn)(void *arg, const struct admin_req *req,
                                struct admin_resp *resp);

#endif
