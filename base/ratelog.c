/*
 * ratelog.c: per key and kind windows in a bounded hash map (base/map.h).
 * Eviction scans for the least recently seen key: only when a new key
 * arrives at a full table, so its cost is paid by whoever makes new keys.
 * Every entry point takes the table's mutex: the serving loops share one.
 */
#include "base/ratelog.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/map.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

struct window {
  long long start;      /* ms; 0: no window open */
  unsigned logged;      /* events logged in this window */
  unsigned long held;   /* events suppressed in this window */
  unsigned long events; /* totals */
  unsigned long suppressed;
};

struct entry {
  char *key; /* owned; the map's key is its own copy */
  long long seen;
  struct window w[XDS_RATELOG_KINDS_MAX];
};

struct xds_ratelog {
  struct xds_map *keys; /* key -> struct entry */
  size_t max_keys;
  unsigned per_window, window_ms;
  const char *key_label;
  const char *const *kind_names;
  int n_kinds;
  size_t pending;       /* windows with held > 0 */
  pthread_mutex_t lock; /* guards everything above */
};

long long xds_ratelog_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct xds_ratelog *xds_ratelog_new(size_t max_keys, unsigned per_window,
                                    unsigned window_ms, const char *key_label,
                                    const char *const *kind_names,
                                    int n_kinds) {
  struct xds_ratelog *r;

  if (max_keys == 0 || window_ms == 0 || n_kinds <= 0 ||
      n_kinds > XDS_RATELOG_KINDS_MAX)
    return NULL;
  r = xds_calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->keys = xds_map_new();
  if (r->keys == NULL) {
    xds_free(r);
    return NULL;
  }
  r->max_keys = max_keys;
  r->per_window = per_window;
  r->window_ms = window_ms;
  r->key_label = key_label;
  r->kind_names = kind_names;
  r->n_kinds = n_kinds;
  pthread_mutex_init(&r->lock, NULL);
  return r;
}

static void entry_free(void *p) {
  struct entry *e = p;

  if (e != NULL)
    xds_free(e->key);
  xds_free(e);
}

void xds_ratelog_free(struct xds_ratelog *r) {
  if (r == NULL)
    return;
  xds_map_free(r->keys, entry_free);
  pthread_mutex_destroy(&r->lock);
  xds_free(r);
}

/* Writes the summary of e's window of kind k if it holds events, and
 * closes the window. */
static void close_window(struct xds_ratelog *r, struct entry *e, int k) {
  struct window *w = &e->w[k];
  char key[128];

  if (w->held > 0) {
    xds_log(XDS_LOG_WARN, "%s %s: ... and %lu more %s in the last %u s",
            r->key_label, xds_log_escape(e->key, key, sizeof(key)), w->held,
            r->kind_names[k], (r->window_ms + 999) / 1000);
    r->pending--;
  }
  w->start = 0;
  w->logged = 0;
  w->held = 0;
}

/* Makes room for one more key: evicts the one seen least recently. */
static void evict(struct xds_ratelog *r) {
  struct entry *old = NULL;
  size_t pos = 0;
  const char *key;
  void *val;

  while (xds_map_next(r->keys, &pos, &key, &val)) {
    struct entry *e = val;
    if (old == NULL || e->seen < old->seen)
      old = e;
  }
  if (old == NULL)
    return;
  for (int k = 0; k < r->n_kinds; k++)
    close_window(r, old, k);
  entry_free(xds_map_del(r->keys, old->key));
}

static int event_locked(struct xds_ratelog *r, const char *key, int kind,
                        long long now_ms) {
  struct entry *e;
  struct window *w;

  e = xds_map_get(r->keys, key);
  if (e == NULL) {
    if (xds_map_count(r->keys) >= r->max_keys)
      evict(r);
    e = xds_calloc(1, sizeof(*e));
    if (e == NULL || (e->key = xds_strdup(key)) == NULL ||
        xds_map_put(r->keys, key, e, NULL) < 0) {
      entry_free(e);
      return 1;
    }
  }
  e->seen = now_ms;
  w = &e->w[kind];
  w->events++;
  if (w->start != 0 && now_ms - w->start >= (long long)r->window_ms)
    close_window(r, e, kind);
  if (w->start == 0)
    w->start = now_ms != 0 ? now_ms : 1;
  if (w->logged < r->per_window) {
    w->logged++;
    return 1;
  }
  if (w->held++ == 0)
    r->pending++;
  w->suppressed++;
  return 0;
}

int xds_ratelog_event(struct xds_ratelog *r, const char *key, int kind,
                      long long now_ms) {
  int rc;

  if (r == NULL || kind < 0 || kind >= r->n_kinds)
    return 1;
  pthread_mutex_lock(&r->lock);
  rc = event_locked(r, key, kind, now_ms);
  pthread_mutex_unlock(&r->lock);
  return rc;
}

void xds_ratelog_flush(struct xds_ratelog *r, long long now_ms) {
  size_t pos = 0;
  const char *key;
  void *val;

  if (r == NULL)
    return;
  pthread_mutex_lock(&r->lock);
  while (r->pending > 0 && xds_map_next(r->keys, &pos, &key, &val)) {
    struct entry *e = val;
    for (int k = 0; k < r->n_kinds; k++)
      if (e->w[k].held > 0 && now_ms - e->w[k].start >= (long long)r->window_ms)
        close_window(r, e, k);
  }
  pthread_mutex_unlock(&r->lock);
}

int xds_ratelog_pending(const struct xds_ratelog *r) {
  struct xds_ratelog *m = (struct xds_ratelog *)r; /* the lock only */
  int pending;

  if (r == NULL)
    return 0;
  pthread_mutex_lock(&m->lock);
  pending = r->pending > 0;
  pthread_mutex_unlock(&m->lock);
  return pending;
}

int xds_ratelog_counts(const struct xds_ratelog *r, const char *key, int kind,
                       struct xds_ratelog_counts *out) {
  struct xds_ratelog *m = (struct xds_ratelog *)r; /* the lock only */
  const struct entry *e;
  int rc = XDS_ENOTFOUND;

  memset(out, 0, sizeof(*out));
  if (r == NULL || kind < 0 || kind >= r->n_kinds)
    return XDS_ENOTFOUND;
  pthread_mutex_lock(&m->lock);
  e = xds_map_get(r->keys, key);
  if (e != NULL) {
    out->events = e->w[kind].events;
    out->suppressed = e->w[kind].suppressed;
    rc = 0;
  }
  pthread_mutex_unlock(&m->lock);
  return rc;
}
