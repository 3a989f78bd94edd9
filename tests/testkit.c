/*
 * testkit.c: see testkit.h. Plain libc and Check; no project code.
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
