/*
 * testkit.c: see testkit.h. Plain libc, Check and the shell (openssl for
 * the PKI); no project code.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/testkit.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

long long tk_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tk_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftwbuf) {
  (void)sb;
  (void)flag;
  (void)ftwbuf;
  remove(path);
  return 0;
}

void tk_rm_tree(const char *path) {
  if (path != NULL && path[0] != '\0')
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tk_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  size_t cap = 4096, n = 0, got;
  char *buf;

  if (f == NULL)
    return NULL;
  buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
      ck_assert_ptr_nonnull(buf);
    }
  }
  if (ferror(f)) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[n] = '\0';
  if (len != NULL)
    *len = n;
  return buf;
}

void tk_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");

  ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
  ck_assert_msg(fwrite(data, 1, len, f) == len && fclose(f) == 0,
                "cannot write %s", path);
}

int tk_sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  int st;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  st = system(cmd);
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

char *tk_read_in(const char *dir, const char *name) {
  char path[1024], *text;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  text = tk_read_file(path, NULL);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  return text;
}

void tk_write_store_doc(const char *dir, const char *name, const char *text) {
  char path[1024];

  snprintf(path, sizeof(path), "%s/store", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/store/%s", dir, name);
  tk_write_file(path, text, strlen(text));
}

void tk_make_pki(struct tk_pki *pki, const char *dir, const char *ca_cn,
                 const struct tk_cert *certs, size_t n) {
  char cmd[8192];
  size_t o;
  int rc;

  o = (size_t)snprintf(
      cmd, sizeof(cmd),
      "set -e; d='%s'; mkdir -p \"$d\"; cd \"$d\"; "
      "exec >openssl.log 2>&1; "
      "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
      "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 "
      "-subj /CN=%s "
      "-addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign; "
      "leaf() { openssl req $K -keyout $1.key -out $1.csr -subj /CN=$1; "
      "printf 'subjectAltName=%%s\\nextendedKeyUsage=%%s\\n' \"$2\" \"$3\" "
      ">$1.ext; openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 2 -out $1.crt -extfile $1.ext; }",
      dir, ca_cn);
  for (size_t i = 0; i < n && o < sizeof(cmd); i++)
    o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "; leaf %s %s %s",
                          certs[i].name, certs[i].san, certs[i].eku);
  ck_assert_msg(o < sizeof(cmd), "tk_make_pki: the command is too long");
  rc = system(cmd);
  ck_assert_msg(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                "command failed (status 0x%x): %s", rc, cmd);
  snprintf(pki->dir, sizeof(pki->dir), "%s", dir);
  snprintf(pki->ca_crt, sizeof(pki->ca_crt), "%s/ca.crt", dir);
  snprintf(pki->server_crt, sizeof(pki->server_crt), "%s/server.crt", dir);
  snprintf(pki->server_key, sizeof(pki->server_key), "%s/server.key", dir);
  pki->server_args[0] = "--tls-cert";
  pki->server_args[1] = pki->server_crt;
  pki->server_args[2] = "--tls-key";
  pki->server_args[3] = pki->server_key;
  pki->server_args[4] = "--tls-client-ca";
  pki->server_args[5] = pki->ca_crt;
  pki->server_args[6] = NULL;
}

size_t tk_body_write(char *p, size_t size, size_t n, void *arg) {
  struct tk_body *b = arg;
  char *d = realloc(b->data, b->len + size * n + 1);

  if (d == NULL)
    return 0;
  memcpy(d + b->len, p, size * n);
  b->len += size * n;
  d[b->len] = '\0';
  b->data = d;
  return size * n;
}

double tk_metric_sample(const char *body, const char *name) {
  size_t n = strlen(name);

  for (const char *p = body; p != NULL && *p != '\0';) {
    if (strncmp(p, name, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  return -1;
}

int tk_run_suite(struct Suite *s) {
  SRunner *sr = srunner_create(s);
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *tk_ext_doc(const char *name, int prio) {
  static char buf[4][512];
  static int next;
  char *b = buf[next++ % 4];

  snprintf(b, sizeof(buf[0]),
           "apiVersion: extension.tsb.tetrate.io/v2\n"
           "kind: WasmExtension\n"
           "metadata: {organization: acme, name: %s}\n"
           "spec:\n"
           "  url: file:///wasm/%s.wasm\n"
           "  priority: %d\n",
           name, name, prio);
  return b;
}

const char *tk_tmpl_doc(const char *name, int port) {
  static char buf[4][1024];
  static int next;
  char *b = buf[next++ % 4];

  snprintf(b, sizeof(buf[0]),
           "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: %s}\n"
           "spec:\n  port: %d\n  direction: INBOUND\n"
           "  route: {cluster: app}\n  httpFilters:\n"
           "  - name: envoy.filters.http.router\n    typedConfig: {'@type': "
           "envoy.extensions.filters.http.router.v3.Router}\n",
           name, port);
  return b;
}
