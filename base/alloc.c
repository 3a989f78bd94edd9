/*
 * alloc.c: allocation wrappers with a failure-injection hook.
 *
 * The hook costs one relaxed atomic load per allocation when it is off.
 */
#include "base/alloc.h"

#include "base/err.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_at;   /* 0: hook off */
static atomic_long alloc_seq; /* allocations since the hook was last set */

static int should_fail(void) {
  long target = atomic_load_explicit(&fail_at, memory_order_relaxed);

  if (target == 0)
    return 0;
  return atomic_fetch_add(&alloc_seq, 1) + 1 == target;
}

long xds_alloc_fail_at(long n) {
  long seen = atomic_exchange(&alloc_seq, 0);

  atomic_store(&fail_at, n);
  return seen;
}

void *xds_malloc(size_t n) {
  if (should_fail())
    return NULL;
  return malloc(n ? n : 1);
}

void *xds_calloc(size_t nmemb, size_t size) {
  if (should_fail())
    return NULL;
  if (nmemb == 0 || size == 0)
    nmemb = size = 1;
  return calloc(nmemb, size);
}

void *xds_realloc(void *p, size_t n) {
  if (should_fail())
    return NULL;
  return realloc(p, n ? n : 1);
}

void xds_free(void *p) {
  free(p);
}

char *xds_strdup(const char *s) {
  return xds_strndup(s, strlen(s));
}

char *xds_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *copy = xds_malloc(len + 1);

  if (copy == NULL)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *xds_vasprintf(const char *fmt, va_list ap) {
  va_list ap2;
  int len;
  char *out;

  va_copy(ap2, ap);
  len = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (len < 0)
    return NULL;
  out = xds_malloc((size_t)len + 1);
  if (out == NULL)
    return NULL;
  vsnprintf(out, (size_t)len + 1, fmt, ap);
  return out;
}

char *xds_asprintf(const char *fmt, ...) {
  va_list ap;
  char *out;

  va_start(ap, fmt);
  out = xds_vasprintf(fmt, ap);
  va_end(ap);
  return out;
}

void xds_strv_free(char **v, size_t n) {
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    xds_free(v[i]);
  xds_free(v);
}

int xds_strv_dup(char *const *src, size_t n, char ***dst) {
  char **v;

  *dst = NULL;
  if (n == 0)
    return 0;
  v = xds_calloc(n, sizeof(*v));
  if (v == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    v[i] = xds_strdup(src[i]);
    if (v[i] == NULL) {
      xds_strv_free(v, i);
      return XDS_ENOMEM;
    }
  }
  *dst = v;
  return 0;
}
