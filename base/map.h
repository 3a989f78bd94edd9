/*
 * map.h: a string-keyed hash map. The map copies keys (or, made with
 * xds_map_new_borrowed, borrows them) and borrows values; xds_map_free can
 * release values through a callback. Not thread-safe: callers that share a
 * map hold their own lock.
 */
#ifndef XDS_BASE_MAP_H
#define XDS_BASE_MAP_H

#include <stddef.h>

struct xds_map;

/* Returns a new empty map, or NULL when out of memory. */
struct xds_map *xds_map_new(void);
/* The same, but the map keeps the key pointers it is given instead of
 * copies: each key must stay valid and unchanged while its entry is in the
 * map (typically the key lives in the value); replacing a value stores
 * the new key pointer. */
struct xds_map *xds_map_new_borrowed(void);
/* Frees the map and its keys; calls free_val(value) for each value when
 * free_val is not NULL. NULL map: no-op. */
void xds_map_free(struct xds_map *m, void (*free_val)(void *));

/* The reading functions and xds_map_del accept a NULL map (an empty map
 * not created yet): nothing found, count 0. */

/* The value stored under key, or NULL. */
void *xds_map_get(const struct xds_map *m, const char *key);
/* Stores value under key, replacing (and returning in *old, when old is not
 * NULL) any previous value. Returns 0 or XDS_ENOMEM (map unchanged). */
int xds_map_put(struct xds_map *m, const char *key, void *value, void **old);
/* Removes key; returns its value, or NULL when absent. */
void *xds_map_del(struct xds_map *m, const char *key);
size_t xds_map_count(const struct xds_map *m);

/* Iteration: start with *pos = 0; each call returns 1 and sets key and
 * value, or 0 at the end. The map must not change during iteration. */
int xds_map_next(const struct xds_map *m, size_t *pos, const char **key,
                 void **value);

#endif
