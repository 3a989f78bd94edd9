/*
 * fuzz_admin.c: what a client sends the admin server. The bytes are a raw
 * HTTP request: the gate's framing decision (admin_request_ready(): where
 * the headers end, Content-Length, chunked), checked to be monotonic (a
 * request found whole stays whole when more bytes come), then its request
 * line and headers routed to the module download handler
 * (modules/serve.h: path parsing, digest check, ETag / If-None-Match),
 * with a real cache holding one module.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "modules/cache.h"
#include "modules/digest.h"
#include "modules/serve.h"
#include "server/admin/admin.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct modcache *cache;
static struct modserve ms;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const unsigned char wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
  char dir[] = "/tmp/wasmxds-fuzz-admin-XXXXXX";
  char hex[DIGEST_HEX_LEN + 1];
  struct xds_err err = {0, ""};

  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  if (mkdtemp(dir) == NULL || modcache_open(dir, 1u << 20, &cache, &err) != 0 ||
      digest_sha256_hex(wasm, sizeof(wasm), hex) != 0 ||
      modcache_put(cache, hex, wasm, sizeof(wasm), NULL, 0, 0, &err) != 0) {
    fprintf(stderr, "fuzz_admin: cache: %s\n", err.msg);
    abort();
  }
  ms.cache = cache;
  return 0;
}

struct hdrs {
  char inm[256];
  int has_inm;
};

static const char *hdr(const struct admin_req *req, const char *name) {
  const struct hdrs *h = req->impl;

  return strcasecmp(name, "If-None-Match") == 0 && h->has_inm ? h->inm : NULL;
}

static const char *query(const struct admin_req *req, const char *name) {
  (void)req;
  (void)name;
  return NULL;
}

/* The request line and the If-None-Match header, as libmicrohttpd hands
 * them to a handler. */
static void route(const char *text, size_t n) {
  char method[16], path[1024];
  struct hdrs h = {"", 0};
  struct admin_req req;
  struct admin_resp resp;
  const char *sp = memchr(text, ' ', n), *sp2, *eol, *line;
  size_t k;

  if (sp == NULL || (size_t)(sp - text) >= sizeof(method))
    return;
  memcpy(method, text, (size_t)(sp - text));
  method[sp - text] = '\0';
  sp++;
  sp2 = memchr(sp, ' ', n - (size_t)(sp - text));
  eol = memchr(sp, '\n', n - (size_t)(sp - text));
  if (sp2 == NULL || (eol != NULL && eol < sp2))
    return;
  k = strcspn(sp, "? ");
  if (k > (size_t)(sp2 - sp))
    k = (size_t)(sp2 - sp);
  if (k >= sizeof(path) || memchr(sp, '\0', k) != NULL)
    return;
  memcpy(path, sp, k);
  path[k] = '\0';
  for (line = eol; line != NULL && line + 1 < text + n;
       line = memchr(line + 1, '\n', (size_t)(text + n - line - 1))) {
    static const char name[] = "If-None-Match:";
    size_t rest = (size_t)(text + n - line - 1), len;

    if (rest < sizeof(name) - 1 ||
        strncasecmp(line + 1, name, sizeof(name) - 1) != 0)
      continue;
    len = strcspn(line + sizeof(name), "\r\n");
    if (len > rest - (sizeof(name) - 1))
      len = rest - (sizeof(name) - 1);
    if (len >= sizeof(h.inm) || memchr(line + sizeof(name), '\0', len))
      continue;
    memcpy(h.inm, line + sizeof(name), len);
    h.inm[len] = '\0';
    h.has_inm = 1;
  }
  memset(&req, 0, sizeof(req));
  req.method = method;
  req.path = path;
  req.body = "";
  req.header = hdr;
  req.query = query;
  req.impl = &h;
  memset(&resp, 0, sizeof(resp));
  resp.status = 200;
  resp.fd = -1;
  if (modserve_handle(&ms, &req, &resp) == 0 && resp.status == 200 &&
      resp.fd < 0)
    __builtin_trap(); /* a 200 sends the module's file */
  if (resp.fd >= 0)
    close(resp.fd);
  xds_free(resp.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* NUL-terminated, as libmicrohttpd's strings are. */
  char *text = xds_malloc(size + 1);
  size_t cap = 4096;

  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  for (size_t n = 0; n + 1 <= size && n < 600; n++) {
    if (admin_request_ready(text, n, cap) &&
        !admin_request_ready(text, n + 1, cap))
      __builtin_trap();
  }
  admin_request_ready(text, size, cap);
  route(text, size);
  xds_free(text);
  return 0;
}
