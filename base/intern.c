/*
 * intern.c: the process's table of interned strings: a map, keyed by the
 * entries' own text (borrowed keys), from the text to its entry. The
 * pointer handed out is entry->text, so a release finds its entry by
 * address; the last one removes the map slot and frees the entry.
 */
#include "base/intern.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
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

void xds_intern_release(const char *p) {
  struct intern_entry *e;

  if (p == NULL)
    return;
  e = entry_of(p);
  pthread_mutex_lock(&lock);
  if (--e->refs == 0) {
    xds_map_del(table, e->text);
    xds_free(e);
  }
  pthread_mutex_unlock(&lock);
}

size_t xds_intern_count(void) {
  size_t n;

  pthread_mutex_lock(&lock);
  n = xds_map_count(table);
  pthread_mutex_unlock(&lock);
  return n;
}
