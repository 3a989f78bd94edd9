/*
 * intern.c: the process's table of interned strings: a map, keyed by the
 * entries' own text (borrowed keys), from the text to its entry. The
 * pointer handed out is entry->text, so a release finds its entry by
 * address; the last one removes the map slot and frees the entry.
 */
#include "base/intern.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/map.h"

struct intern_entry {
  size_t refs;
  char text[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct xds_map *table; /* text -> struct intern_entry; made on use */

static struct intern_entry *entry_of(const char *p) {
  return (struct intern_entry *)(void *)(p -
                                         offsetof(struct intern_entry, text));
}

const char *xds_intern(const char *s) {
  struct intern_entry *e;
  size_t len;

  pthread_mutex_lock(&lock);
  if (table == NULL && (table = xds_map_new_borrowed()) == NULL)
    goto oom;
  e = xds_map_get(table, s);
  if (e != NULL) {
    e->refs++;
    pthread_mutex_unlock(&lock);
    return e->text;
  }
  len = strlen(s);
  e = xds_malloc(sizeof(*e) + len + 1);
  if (e == NULL)
    goto oom;
  e->refs = 1;
  memcpy(e->text, s, len + 1);
  if (xds_map_put(table, e->text, e, NULL) < 0) {
    xds_free(e);
    goto oom;
  }
  pthread_mutex_unlock(&lock);
  return e->text;

oom:
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* Drops one reference to p; the lock is held. */
static void release_locked(const char *p) {
  struct intern_entry *e = entry_of(p);

  if (--e->refs == 0) {
    xds_map_del(table, e->text);
    xds_free(e);
  }
}

void xds_intern_release(const char *p) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&lock);
  release_locked(p);
  pthread_mutex_unlock(&lock);
}

/* --- lists --------------------------------------------------------------- */

/* One shared list: the names follow the header. Chained in its bucket. */
struct intern_list {
  struct intern_list *next;
  size_t refs;
  size_t n;
  uint64_t hash;
  const char *names[];
};

static struct intern_list **buckets; /* n_buckets chains; made on use */
static size_t n_buckets, n_lists;

static uint64_t list_hash(const char *const *v, size_t n) {
  uint64_t h = 1469598103934665603ULL;

  for (size_t i = 0; i < n; i++) {
    uintptr_t x = (uintptr_t)v[i];
    for (size_t k = 0; k < sizeof(x); k++) {
      h ^= (x >> (8 * k)) & 0xff;
      h *= 1099511628211ULL;
    }
  }
  return h ^ n;
}

static struct intern_list *list_of(const char *const *p) {
  return (struct intern_list *)(void *)((char *)(uintptr_t)p -
                                        offsetof(struct intern_list, names));
}

/* Doubles the bucket array (lock held). Returns 0 or XDS_ENOMEM. */
static int lists_grow(void) {
  size_t nb = n_buckets == 0 ? 64 : n_buckets * 2;
  struct intern_list **b = xds_calloc(nb, sizeof(*b));

  if (b == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n_buckets; i++)
    for (struct intern_list *l = buckets[i], *next; l != NULL; l = next) {
      next = l->next;
      l->next = b[l->hash & (nb - 1)];
      b[l->hash & (nb - 1)] = l;
    }
  xds_free(buckets);
  buckets = b;
  n_buckets = nb;
  return 0;
}

const char *const *xds_intern_list(const char *const *v, size_t n) {
  uint64_t h = list_hash(v, n);
  struct intern_list *l;

  pthread_mutex_lock(&lock);
  if (n_buckets > 0)
    for (l = buckets[h & (n_buckets - 1)]; l != NULL; l = l->next)
      if (l->hash == h && l->n == n &&
          memcmp(l->names, v, n * sizeof(*v)) == 0) {
        l->refs++;
        goto out;
      }
  if (n_lists >= n_buckets && lists_grow() < 0) {
    l = NULL;
    goto out;
  }
  l = xds_malloc(sizeof(*l) + n * sizeof(*v));
  if (l == NULL)
    goto out;
  l->refs = 1;
  l->n = n;
  l->hash = h;
  for (size_t i = 0; i < n; i++) {
    entry_of(v[i])->refs++; /* the list's own reference */
    l->names[i] = v[i];
  }
  l->next = buckets[h & (n_buckets - 1)];
  buckets[h & (n_buckets - 1)] = l;
  n_lists++;
out:
  pthread_mutex_unlock(&lock);
  return l != NULL ? l->names : NULL;
}

void xds_intern_list_release(const char *const *p) {
  struct intern_list *l, **pp;

  if (p == NULL)
    return;
  l = list_of(p);
  pthread_mutex_lock(&lock);
  if (--l->refs == 0) {
    for (pp = &buckets[l->hash & (n_buckets - 1)]; *pp != l; pp = &(*pp)->next)
      ;
    *pp = l->next;
    n_lists--;
    for (size_t i = 0; i < l->n; i++)
      release_locked(l->names[i]);
    xds_free(l);
    if (n_lists == 0) { /* nothing shared: give the buckets back */
      xds_free(buckets);
      buckets = NULL;
      n_buckets = 0;
    }
  }
  pthread_mutex_unlock(&lock);
}

size_t xds_intern_list_count(void) {
  size_t n;

  pthread_mutex_lock(&lock);
  n = n_lists;
  pthread_mutex_unlock(&lock);
  return n;
}

size_t xds_intern_count(void) {
  size_t n;

  pthread_mutex_lock(&lock);
  n = xds_map_count(table);
  pthread_mutex_unlock(&lock);
  return n;
}
