/*
 * status_etcd.c: the status writer thread (status_etcd.h). Everything but
 * `stopping`, `writer` and the condition variable belongs to the thread.
 */
#include "server/admin/status_etcd.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/map.h"
#include "store/etcd_client.h"
#include "store/etcd_lease.h"

struct status_etcd {
  struct status *st;
  struct etcd_client *c;
  char *prefix, *replica, *leader_key;
  long interval_ms;
  int ttl_s;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stopping; /* under lock */
  atomic_int writer;
  /* the thread's: */
  int64_t lease;
  int64_t renewed_ms;
  struct xds_map *written; /* status key -> value there (xds_malloc'd) */
  char *holder_logged;     /* the other holder last logged */
  char *err_logged;        /* the last error logged */
};

static int64_t mono_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs an error unless it is the one logged last. */
static void log_error(struct status_etcd *w, const char *what,
                      const struct xds_err *err) {
  char line[sizeof(err->msg) + 64];

  snprintf(line, sizeof(line), "%s: %s", what, err->msg);
  if (w->err_logged != NULL && strcmp(w->err_logged, line) == 0)
    return;
  XDS_LOGW("status: %s", line);
  xds_free(w->err_logged);
  w->err_logged = xds_strdup(line);
}

static void forget_written(struct status_etcd *w) {
  xds_map_free(w->written, xds_free);
  w->written = xds_map_new();
}

/* No longer the writer (lease gone, fence failed, or stopping). */
static void step_down(struct status_etcd *w, const char *why) {
  if (atomic_load(&w->writer))
    XDS_LOGW("status: this replica (%s) no longer writes resource status: "
             "%s",
             w->replica, why);
  atomic_store(&w->writer, 0);
  forget_written(w);
}

struct collect_ctx {
  struct status_etcd *w;
  int rc;
};

/* Listing callback: what the status keys hold when this replica takes
 * over (so unchanged ones are not written again, and stale ones go). */
static int on_existing(void *arg, const struct etcd_kv *kv) {
  struct collect_ctx *cx = arg;
  char *v;

  if (strcmp(kv->key, cx->w->leader_key) == 0)
    return 0;
  v = xds_strndup(kv->value != NULL ? kv->value : "", kv->value_len);
  if (v == NULL || xds_map_put(cx->w->written, kv->key, v, NULL) < 0) {
    xds_free(v);
    return XDS_ENOMEM;
  }
  return 0;
}

/* Writes what changed; deletes what is no longer served. */
static void write_all(struct status_etcd *w) {
  struct status_collect_opts opts = {STATUS_ETCD_MAX_FAILED,
                                     STATUS_ETCD_MAX_ERROR};
  struct xds_map *seen = xds_map_new();
  struct xds_err err = {0, ""};
  json_t *all = NULL, *o;
  const char *ref, *key;
  void *val;
  size_t pos = 0, n_written = 0, n_deleted = 0;
  int rc;

  if (seen == NULL)
    return;
  rc = status_collect(w->st, &opts, &all);
  if (rc < 0) {
    if (rc != XDS_ENOTFOUND) {
      xds_err_set(&err, rc, "%s", xds_strerror(rc));
      log_error(w, "collecting resource status", &err);
    }
    xds_map_free(seen, NULL);
    return;
  }
  json_object_foreach(all, ref, o) {
    char k[1024], *text;
    const char *was;

    if (!atomic_load(&w->writer))
      break;
    snprintf(k, sizeof(k), "%s/%s", w->prefix, ref);
    json_object_set_new(o, "writer", json_string(w->replica));
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL || xds_map_put(seen, k, (void *)1, NULL) < 0) {
      free(text); /* checksrc: allow alloc: jansson's json_dumps */
      continue;
    }
    was = xds_map_get(w->written, k);
    if (was != NULL && strcmp(was, text) == 0) {
      free(text); /* checksrc: allow alloc: jansson's json_dumps */
      continue;
    }
    rc = etcd_lease_put_if_holder(w->c, w->leader_key, w->lease, k, text,
                                  strlen(text), &err);
    if (rc == 0) {
      char *copy = xds_strdup(text);

      if (copy == NULL || xds_map_put(w->written, k, copy, &val) < 0)
        xds_free(copy);
      else
        xds_free(val);
      n_written++;
    }
    free(text); /* checksrc: allow alloc: jansson's json_dumps */
    if (rc == XDS_ECONFLICT) {
      step_down(w, err.msg);
    } else if (rc < 0) {
      log_error(w, "writing resource status", &err);
      break;
    }
  }
  /* Resources no longer served: their status goes too. */
  while (atomic_load(&w->writer) && rc == 0 &&
         xds_map_next(w->written, &pos, &key, &val)) {
    if (xds_map_get(seen, key) != NULL)
      continue;
    rc = etcd_lease_put_if_holder(w->c, w->leader_key, w->lease, key, NULL, 0,
                                  &err);
    if (rc == 0) {
      xds_free(xds_map_del(w->written, key));
      n_deleted++;
      pos = 0; /* the map changed: walk it again */
    } else if (rc == XDS_ECONFLICT) {
      step_down(w, err.msg);
    } else {
      log_error(w, "deleting resource status", &err);
    }
  }
  if (n_written + n_deleted > 0)
    XDS_LOGD("status: wrote %zu and deleted %zu status keys under %s/",
             n_written, n_deleted, w->prefix);
  json_decref(all);
  xds_map_free(seen, NULL);
}

/* One turn: hold a lease, hold (or campaign for) the leader key, write. */
static void step(struct status_etcd *w) {
  struct xds_err err = {0, ""};
  int64_t now = mono_ms();
  int rc;

  if (w->lease == 0) {
    rc = etcd_lease_grant(w->c, w->ttl_s, &w->lease, &err);
    if (rc < 0) {
      log_error(w, "lease grant", &err);
      return;
    }
    w->renewed_ms = now;
  } else if (now - w->renewed_ms >= (int64_t)w->ttl_s * 1000 / 3) {
    int64_t ttl = 0;

    rc = etcd_lease_keepalive(w->c, w->lease, &ttl, &err);
    if (rc < 0) {
      log_error(w, "lease keepalive", &err);
      return;
    }
    if (ttl == 0) {
      step_down(w, "its lease expired");
      w->lease = 0;
      return;
    }
    w->renewed_ms = now;
  }
  if (!atomic_load(&w->writer)) {
    char *holder = NULL;
    int won = 0;

    rc = etcd_lease_campaign(w->c, w->leader_key, w->replica, w->lease, &won,
                             &holder, &err);
    if (rc < 0) {
      log_error(w, "campaign", &err);
      return;
    }
    if (won) {
      struct collect_ctx cx = {w, 0};
      struct etcd_header h;
      char sub[1024];

      forget_written(w);
      snprintf(sub, sizeof(sub), "%s/", w->prefix);
      rc = etcd_client_list(w->c, sub, 1000, on_existing, &cx, &h, &err);
      if (rc < 0) {
        log_error(w, "listing status keys", &err);
        xds_free(holder);
        return; /* the next turn lists again (still holding the key) */
      }
      atomic_store(&w->writer, 1);
      XDS_LOGI("status: this replica (%s) writes resource status under %s/ "
               "(leader key %s, lease %llx, ttl %d s)",
               w->replica, w->prefix, w->leader_key,
               (unsigned long long)w->lease, w->ttl_s);
      xds_free(w->holder_logged);
      w->holder_logged = NULL;
    } else if (holder != NULL && (w->holder_logged == NULL ||
                                  strcmp(holder, w->holder_logged) != 0)) {
      XDS_LOGI("status: %s writes resource status under %s/; this replica "
               "(%s) does not",
               holder, w->prefix, w->replica);
      xds_free(w->holder_logged);
      w->holder_logged = holder;
      holder = NULL;
    }
    xds_free(holder);
  }
  if (atomic_load(&w->writer))
    write_all(w);
}

static void *writer_main(void *arg) {
  struct status_etcd *w = arg;

  pthread_mutex_lock(&w->lock);
  while (!w->stopping) {
    struct timespec ts;

    pthread_mutex_unlock(&w->lock);
    step(w);
    pthread_mutex_lock(&w->lock);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += w->interval_ms / 1000;
    ts.tv_nsec += (w->interval_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->lock, &ts) == 0)
      ;
  }
  pthread_mutex_unlock(&w->lock);
  if (w->lease != 0) {
    struct xds_err err = {0, ""};

    /* The leader key goes with the lease: another replica takes over at
     * its next turn. */
    if (etcd_lease_revoke(w->c, w->lease, &err) < 0)
      log_error(w, "lease revoke", &err);
    else if (atomic_load(&w->writer))
      XDS_LOGI("status: this replica (%s) stopped writing resource status",
               w->replica);
  }
  atomic_store(&w->writer, 0);
  return NULL;
}

static void writer_free(struct status_etcd *w) {
  etcd_client_free(w->c);
  xds_map_free(w->written, xds_free);
  xds_free(w->prefix);
  xds_free(w->replica);
  xds_free(w->leader_key);
  xds_free(w->holder_logged);
  xds_free(w->err_logged);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  xds_free(w);
}

int status_etcd_start(struct status *st, const struct status_etcd_config *cfg,
                      struct status_etcd **out, struct xds_err *err) {
  struct status_etcd *w = xds_calloc(1, sizeof(*w));
  struct etcd_config ec;
  pthread_condattr_t ca;
  int rc;

  *out = NULL;
  if (w == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  pthread_mutex_init(&w->lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->wake, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&w->writer, 0);
  w->st = st;
  w->interval_ms =
      cfg->interval_ms > 0 ? cfg->interval_ms : STATUS_ETCD_DEFAULT_INTERVAL_MS;
  w->ttl_s =
      cfg->lease_ttl_s > 0 ? cfg->lease_ttl_s : STATUS_ETCD_DEFAULT_LEASE_TTL_S;
  w->prefix = xds_strdup(cfg->prefix);
  w->replica = xds_strdup(cfg->replica);
  w->leader_key = xds_asprintf("%s" STATUS_ETCD_LEADER, cfg->prefix);
  w->written = xds_map_new();
  if (w->prefix == NULL || w->replica == NULL || w->leader_key == NULL ||
      w->written == NULL) {
    writer_free(w);
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
  /* Its own client (the watcher's belongs to the watcher thread), whose
   * calls end well within the lease TTL. */
  ec = *cfg->etcd;
  if (ec.request_timeout_ms > (unsigned)w->ttl_s * 1000 / 3)
    ec.request_timeout_ms = (unsigned)w->ttl_s * 1000 / 3;
  if (ec.request_timeout_ms < 500)
    ec.request_timeout_ms = 500;
  if (ec.connect_timeout_ms > ec.request_timeout_ms)
    ec.connect_timeout_ms = ec.request_timeout_ms;
  rc = etcd_client_new(&ec, &w->c, err);
  if (rc < 0) {
    writer_free(w);
    return rc;
  }
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    writer_free(w);
    return xds_err_set(err, XDS_EIO, "status: cannot start the writer thread");
  }
  *out = w;
  return 0;
}

void status_etcd_stop(struct status_etcd *w) {
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->lock);
  w->stopping = 1;
  pthread_cond_broadcast(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  writer_free(w);
}

int status_etcd_is_writer(struct status_etcd *w) {
  return atomic_load(&w->writer);
}
