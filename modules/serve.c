/*
 * serve.c: the module download endpoint. Pure glue: parse the path, ask the
 * cache for an open file, apply ETag and tenant rules, hand the fd to the
 * admin server.
 */
#include "modules/serve.h"

#include "base/alloc.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void text(struct admin_resp *resp, unsigned status, const char *msg) {
  resp->status = status;
  snprintf(resp->content_type, sizeof(resp->content_type),
           "text/plain; charset=utf-8");
  resp->body = xds_strdup(msg);
  resp->body_len = resp->body ? strlen(resp->body) : 0;
}

/* 1 when an If-None-Match list names etag (strong or weak) or is "*". */
static int etag_matches(const char *inm, const char *etag) {
  size_t el = strlen(etag);
  const char *p = inm;

  while (*p) {
    size_t n;

    while (*p == ' ' || *p == ',')
      p++;
    if (*p == '*')
      return 1;
    if (strncmp(p, "W/", 2) == 0)
      p += 2;
    n = strcspn(p, ",");
    while (n > 0 && p[n - 1] == ' ')
      n--;
    if (n == el && strncmp(p, etag, el) == 0)
      return 1;
    p += strcspn(p, ",");
  }
  return 0;
}

int modserve_handle(void *arg, const struct admin_req *req,
                    struct admin_resp *resp) {
  const struct modserve *ms = arg;
  const char *name = req->path + strlen(MODSERVE_PREFIX);
  const char *inm;
  char hex[DIGEST_HEX_LEN + 1], etag[DIGEST_HEX_LEN + 3];
  uint64_t size = 0;
  int fd = -1, is_private = 0, rc;

  if (strncmp(req->path, MODSERVE_PREFIX, strlen(MODSERVE_PREFIX)) != 0 ||
      strlen(name) != DIGEST_HEX_LEN + 5 ||
      strcmp(name + DIGEST_HEX_LEN, ".wasm") != 0) {
    text(resp, 404, "not found\n");
    return 0;
  }
  memcpy(hex, name, DIGEST_HEX_LEN);
  hex[DIGEST_HEX_LEN] = '\0';
  if (!digest_is_hex(hex)) {
    text(resp, 404, "not found\n");
    return 0;
  }
  rc = modcache_open_module(ms->cache, hex, &fd, &size, &is_private);
  if (rc == XDS_ENOTFOUND) {
    text(resp, 404, "no such module\n");
    return 0;
  }
  if (rc < 0)
    return rc;
  if (is_private) {
    char org[256] = "", tenant[256] = "";
    int known = ms->identify != NULL &&
                ms->identify(ms->identify_arg, req, org, sizeof(org), tenant,
                             sizeof(tenant));

    if (ms->resolver == NULL ||
        !resolver_module_allowed(ms->resolver, hex, known ? org : NULL,
                                 known && tenant[0] ? tenant : NULL)) {
      close(fd);
      text(resp, 403, "module not available to this caller\n");
      return 0;
    }
  }
  snprintf(etag, sizeof(etag), "\"%s\"", hex);
  admin_resp_header(resp, "ETag", etag);
  admin_resp_header(resp, "Cache-Control",
                    is_private ? "private, max-age=31536000, immutable"
                               : "public, max-age=31536000, immutable");
  inm = req->header(req, "If-None-Match");
  if (inm != NULL && etag_matches(inm, etag)) {
    close(fd);
    resp->status = 304;
    return 0;
  }
  resp->status = 200;
  snprintf(resp->content_type, sizeof(resp->content_type), "application/wasm");
  resp->fd = fd;
  resp->fd_size = size;
  return 0;
}
