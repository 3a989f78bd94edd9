/*
 * arena.c: chunks of at least ARENA_CHUNK bytes, linked newest first. A
 * request larger than a chunk gets a chunk of its own.
 */
#include "base/arena.h"

#include "base/alloc.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

/* Default chunk payload: large enough that a typical xDS resource needs one
 * or two chunks, small enough not to waste memory on tiny messages. */
#define ARENA_CHUNK 4096

struct xds_arena_chunk {
  struct xds_arena_chunk *next;
  size_t size;
  alignas(max_align_t) unsigned char data[];
};

void xds_arena_init(struct xds_arena *a, size_t max) {
  a->head = NULL;
  a->used = 0;
  a->total = 0;
  a->max = max;
}

void xds_arena_cleanup(struct xds_arena *a) {
  struct xds_arena_chunk *c = a->head, *next;

  while (c != NULL) {
    next = c->next;
    xds_free(c);
    c = next;
  }
  a->head = NULL;
  a->used = a->total = 0;
}

void *xds_arena_alloc(struct xds_arena *a, size_t n) {
  const size_t align = alignof(max_align_t);
  struct xds_arena_chunk *c;
  size_t size;
  void *p;

  n = (n + align - 1) & ~(align - 1);
  if (n == 0)
    n = align;
  if (a->max != 0 && (n > a->max || a->total > a->max - n))
    return NULL;
  if (a->head == NULL || a->head->size - a->used < n) {
    size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    c = xds_malloc(sizeof(*c) + size);
    if (c == NULL)
      return NULL;
    c->size = size;
    if (a->head != NULL && n > ARENA_CHUNK) {
      /* Keep the partly used head for later small requests. */
      c->next = a->head->next;
      a->head->next = c;
      a->total += n;
      memset(c->data, 0, n);
      return c->data;
    }
    c->next = a->head;
    a->head = c;
    a->used = 0;
  }
  p = a->head->data + a->used;
  a->used += n;
  a->total += n;
  memset(p, 0, n);
  return p;
}

void *xds_arena_memdup(struct xds_arena *a, const void *p, size_t n) {
  void *q = xds_arena_alloc(a, n);

  if (q != NULL && n > 0)
    memcpy(q, p, n);
  return q;
}

char *xds_arena_strndup(struct xds_arena *a, const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *q = xds_arena_alloc(a, len + 1);

  if (q == NULL)
    return NULL;
  memcpy(q, s, len);
  q[len] = '\0';
  return q;
}

char *xds_arena_strdup(struct xds_arena *a, const char *s) {
  return xds_arena_strndup(a, s, strlen(s));
}
