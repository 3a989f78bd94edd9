/*
 * arena.h: a bump allocator for short-lived object graphs (one protobuf
 * message being built, one parsed request). Everything allocated from an
 * arena is released at once by xds_arena_cleanup; there is no per-object
 * free. The caller owns the struct; not thread-safe.
 */
#ifndef XDS_BASE_ARENA_H
#define XDS_BASE_ARENA_H

#include <stddef.h>

struct xds_arena_chunk;

struct xds_arena {
  struct xds_arena_chunk *head; /* newest chunk first */
  size_t used;                  /* bytes handed out from head */
  size_t total;                 /* bytes handed out overall */
  size_t max;                   /* limit on total, 0 for none */
};

/* Starts an empty arena that hands out at most max bytes (0: no limit);
 * xds_arena_cleanup() frees everything it handed out at once. */
void xds_arena_init(struct xds_arena *a, size_t max);
void xds_arena_cleanup(struct xds_arena *a);

/* Returns zeroed, max_align_t-aligned memory, or NULL (out of memory or
 * over the limit). */
void *xds_arena_alloc(struct xds_arena *a, size_t n);
/* Copies s into the arena; NULL on failure. */
char *xds_arena_strdup(struct xds_arena *a, const char *s);
char *xds_arena_strndup(struct xds_arena *a, const char *s, size_t n);
void *xds_arena_memdup(struct xds_arena *a, const void *p, size_t n);

#endif
