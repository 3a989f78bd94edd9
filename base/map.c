/*
 * map.c: open addressing with linear probing and tombstones; grows at 70 %
 * load. FNV-1a hashing.
 */
#include "base/map.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

#define TOMBSTONE ((char *)1)

struct map_slot {
  char *key; /* NULL: empty; TOMBSTONE: deleted */
  void *value;
  uint64_t hash;
};

struct xds_map {
  struct map_slot *slots;
  size_t cap; /* power of two */
  size_t count;
  size_t used;  /* count + tombstones */
  int borrowed; /* keys are the caller's, neither copied nor freed */
};

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;

  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

struct xds_map *xds_map_new_borrowed(void) {
  struct xds_map *m = xds_map_new();

  if (m != NULL)
    m->borrowed = 1;
  return m;
}

struct xds_map *xds_map_new(void) {
  struct xds_map *m = xds_calloc(1, sizeof(*m));

  if (m == NULL)
    return NULL;
  m->cap = 16;
  m->slots = xds_calloc(m->cap, sizeof(*m->slots));
  if (m->slots == NULL) {
    xds_free(m);
    return NULL;
  }
  return m;
}

void xds_map_free(struct xds_map *m, void (*free_val)(void *)) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->cap; i++) {
    struct map_slot *s = &m->slots[i];
    if (s->key == NULL || s->key == TOMBSTONE)
      continue;
    if (free_val != NULL)
      free_val(s->value);
    if (!m->borrowed)
      xds_free(s->key);
  }
  xds_free(m->slots);
  xds_free(m);
}

static struct map_slot *find(const struct xds_map *m, const char *key,
                             uint64_t h) {
  size_t mask = m->cap - 1;

  for (size_t i = h & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
    struct map_slot *s = &m->slots[i];
    if (s->key == NULL)
      return NULL;
    if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
      return s;
  }
  return NULL;
}

void *xds_map_get(const struct xds_map *m, const char *key) {
  struct map_slot *s;

  if (m == NULL)
    return NULL;
  s = find(m, key, fnv1a(key));

  return s != NULL ? s->value : NULL;
}

static int grow(struct xds_map *m) {
  size_t ncap = m->count * 2 >= m->cap ? m->cap * 2 : m->cap;
  struct map_slot *ns = xds_calloc(ncap, sizeof(*ns));

  if (ns == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < m->cap; i++) {
    struct map_slot *s = &m->slots[i];
    size_t j;
    if (s->key == NULL || s->key == TOMBSTONE)
      continue;
    for (j = s->hash & (ncap - 1); ns[j].key != NULL; j = (j + 1) & (ncap - 1))
      ;
    ns[j] = *s;
  }
  xds_free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  m->used = m->count;
  return 0;
}

int xds_map_put(struct xds_map *m, const char *key, void *value, void **old) {
  uint64_t h = fnv1a(key);
  struct map_slot *s = find(m, key, h);
  size_t mask, i;
  char *copy;

  if (old != NULL)
    *old = NULL;
  if (s != NULL) {
    if (old != NULL)
      *old = s->value;
    s->value = value;
    if (m->borrowed) /* the new value's key, as the old may go with it */
      s->key = (char *)key;
    return 0;
  }
  if ((m->used + 1) * 10 >= m->cap * 7 && grow(m) < 0)
    return XDS_ENOMEM;
  copy = m->borrowed ? (char *)key : xds_strdup(key);
  if (copy == NULL)
    return XDS_ENOMEM;
  mask = m->cap - 1;
  for (i = h & mask; m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE;
       i = (i + 1) & mask)
    ;
  if (m->slots[i].key == NULL)
    m->used++;
  m->slots[i].key = copy;
  m->slots[i].value = value;
  m->slots[i].hash = h;
  m->count++;
  return 0;
}

void *xds_map_del(struct xds_map *m, const char *key) {
  struct map_slot *s;
  void *v;

  if (m == NULL)
    return NULL;
  s = find(m, key, fnv1a(key));
  if (s == NULL)
    return NULL;
  v = s->value;
  if (!m->borrowed)
    xds_free(s->key);
  s->key = TOMBSTONE;
  s->value = NULL;
  m->count--;
  return v;
}

size_t xds_map_count(const struct xds_map *m) {
  return m != NULL ? m->count : 0;
}

int xds_map_next(const struct xds_map *m, size_t *pos, const char **key,
                 void **value) {
  while (m != NULL && *pos < m->cap) {
    struct map_slot *s = &m->slots[(*pos)++];
    if (s->key == NULL || s->key == TOMBSTONE)
      continue;
    *key = s->key;
    *value = s->value;
    return 1;
  }
  return 0;
}
