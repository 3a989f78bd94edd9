/*
 * modtest.c: see modtest.h.
 */
#include "tests/helpers/modtest.h"

#include "base/alloc.h"
#include "modules/digest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static size_t leb128(unsigned char *p, size_t v) {
  size_t n = 0;

  do {
    unsigned char b = v & 0x7f;

    v >>= 7;
    if (v)
      b |= 0x80;
    p[n++] = b;
  } while (v);
  return n;
}

unsigned char *mt_wasm(size_t len, unsigned seed) {
  static const unsigned char hdr[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
  unsigned char *m = xds_malloc(len), lebbuf[8];
  size_t body, lb, off;
  unsigned x = seed * 2654435761u + 1;

  if (m == NULL || len < 16)
    abort();
  memcpy(m, hdr, 8);
  m[8] = 0; /* custom section */
  /* Section size: everything after the id and the size itself. Pick the
   * LEB128 width that makes the total come out at len. */
  for (lb = 1; lb <= 5; lb++) {
    body = len - 9 - lb;
    if (leb128(lebbuf, body) == lb)
      break;
  }
  off = 9 + leb128(m + 9, body);
  m[off++] = 4; /* name length */
  memcpy(m + off, "test", 4);
  off += 4;
  for (; off < len; off++) {
    x = x * 1103515245u + 12345u;
    m[off] = (unsigned char)(x >> 16);
  }
  return m;
}

unsigned char *mt_tar(const char *const *names, const void *const *data,
                      const size_t *lens, size_t n, size_t *out_len) {
  size_t total = 1024, off = 0;
  unsigned char *t;

  for (size_t i = 0; i < n; i++)
    total += 512 + (lens[i] + 511) / 512 * 512;
  t = xds_calloc(1, total);
  if (t == NULL)
    abort();
  for (size_t i = 0; i < n; i++) {
    unsigned char *h = t + off;
    unsigned sum = 0;

    snprintf((char *)h, 100, "%s", names[i]);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011zo", lens[i]);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = '0';
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    memset(h + 148, ' ', 8);
    for (int k = 0; k < 512; k++)
      sum += h[k];
    snprintf((char *)h + 148, 8, "%06o", sum);
    off += 512;
    memcpy(t + off, data[i], lens[i]);
    off += (lens[i] + 511) / 512 * 512;
  }
  *out_len = off + 1024;
  return t;
}

unsigned char *mt_gzip(const void *data, size_t len, size_t *out_len) {
  z_stream zs;
  size_t cap = len + len / 100 + 1024;
  unsigned char *out = xds_malloc(cap);

  memset(&zs, 0, sizeof(zs));
  if (out == NULL ||
      deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  zs.next_in = (Bytef *)(uintptr_t)data;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
    abort();
  *out_len = zs.total_out;
  deflateEnd(&zs);
  return out;
}

void mt_sha(const void *data, size_t len, char *hex) {
  if (digest_sha256_hex(data, len, hex) < 0)
    abort();
}

char *mt_tmpdir(char *buf, size_t cap) {
  const char *base = getenv("TMPDIR");

  snprintf(buf, cap, "%s/wasmxds-mod-XXXXXX", base && *base ? base : "/tmp");
  if (mkdtemp(buf) == NULL)
    abort();
  return buf;
}

static void rmrf_depth(const char *path, int depth) {
  DIR *d;
  struct dirent *de;
  char sub[4096];

  if (depth > 16)
    return;
  d = opendir(path);
  if (d == NULL) {
    unlink(path);
    return;
  }
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
    if (de->d_type == DT_DIR)
      rmrf_depth(sub, depth + 1);
    else
      unlink(sub);
  }
  closedir(d);
  rmdir(path);
}

void mt_rmrf(const char *path) {
  rmrf_depth(path, 0);
}

int mt_free_port(void) {
  struct sockaddr_in a;
  socklen_t sl = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &sl) < 0)
    abort();
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int mt_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");

  if (f == NULL)
    return -1;
  if (fwrite(data, 1, len, f) != len) {
    fclose(f);
    return -1;
  }
  return fclose(f) == 0 ? 0 : -1;
}

struct wasm_ext *mt_ext(const char *name, const char *url, const char *sha,
                        const char *secret, enum wasm_pull_policy policy,
                        const char *allowed_in) {
  struct wasm_ext *e = xds_calloc(1, sizeof(*e));

  e->fqn = xds_asprintf("organizations/org/extensions/%s", name);
  e->organization = xds_strdup("org");
  e->name = xds_strdup(name);
  e->url = xds_strdup(url);
  e->scheme = strncmp(url, "https://", 8) == 0  ? WASM_URL_HTTPS
              : strncmp(url, "http://", 7) == 0 ? WASM_URL_HTTP
              : strncmp(url, "file://", 7) == 0 ? WASM_URL_FILE
                                                : WASM_URL_OCI;
  e->sha256 = sha ? xds_strdup(sha) : NULL;
  e->pull_secret = secret ? xds_strdup(secret) : NULL;
  e->pull_policy = policy;
  if (allowed_in != NULL) {
    e->allowed_in = xds_calloc(1, sizeof(char *));
    e->allowed_in[0] = xds_strdup(allowed_in);
    e->n_allowed_in = 1;
  }
  return e;
}

int mt_wait(struct resolver *r, const char *fqn, enum module_state state,
            unsigned min_attempts, long timeout_ms, struct module_info *out) {
  for (long waited = 0;; waited += 20) {
    memset(out, 0, sizeof(*out));
    if (resolver_lookup(r, fqn, out) == 0 && out->state == state &&
        out->attempts >= min_attempts)
      return 1;
    if (waited >= timeout_ms)
      return 0;
    module_info_cleanup(out);
    usleep(20000);
  }
}
