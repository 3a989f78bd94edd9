/*
 * etcd_watch.c: the watcher thread: a small state machine around one
 * etcd client.
 *
 *   LIST ──ok──> WATCH ──compacted / new cluster──> LIST
 *    │            │
 *    └─error──> BACKOFF <──stream error, next member──┘ (resume WATCH)
 *
 * Only this thread touches the client, the key table and the last
 * delivered catalog. Other threads read the status under its mutex and
 * stop the thread through an atomic flag plus an eventfd that every wait
 * (curl_multi_poll, the backoff's poll) also watches.
 */
#include "store/etcd_watch.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "store/etcd_client.h"
#include "store/etcd_proto.h"
#include "store/etcd_store.h"
#include "store/changes.h"

enum watch_action {
  ACT_NONE = 0,
  ACT_RELIST = 1, /* compacted, or another cluster: list everything */
  ACT_REAUTH = 2, /* the token was refused: authenticate, then resume */
  ACT_ERROR = 3   /* the watch was refused: back off, then resume */
};

/* A sentinel a message handler returns to end the poll with an action. */
#define WATCH_STOP_STREAM (-100)

struct etcd_watch {
  struct etcd_client *client;
  struct etcd_store *store;
  char *prefix;   /* keys live below prefix + "/" */
  char *describe; /* the store URL for logs, no credentials */
  unsigned debounce_ms;
  unsigned backoff_min_ms;
  unsigned backoff_max_ms;
  unsigned page_size;
  etcd_watch_load_fn on_load;
  etcd_watch_status_fn on_status;
  void *ctx;
  pthread_t thread;
  int wake_fd;
  atomic_int stop;
  atomic_int trigger; /* etcd_watch_trigger() asked for a re-list */

  /* Watcher thread only. */
  int64_t revision;    /* every event up to it is applied */
  int64_t pending_rev; /* highest event revision of a response under way */
  uint64_t cluster_id;
  struct changes changes; /* the shared diff, log and report */
  int triggered;          /* a reload was asked (etcd_watch_trigger) */
  int dirty;              /* keys changed since the last build */
  int64_t first_ms;       /* when the burst began */
  int64_t deadline_ms;    /* when to build */
  enum watch_action action;
  char action_msg[ETCD_WATCH_REASON_MAX];
  unsigned backoff_ms;
  unsigned seed;

  pthread_mutex_t mu; /* guards st and the condition */
  pthread_cond_t cond;
  struct etcd_watch_status st;
};

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- status ---- */

/* Tells the status callback; watcher thread only. */
static void notify_status(struct etcd_watch *w) {
  struct etcd_watch_status st;

  if (w->on_status == NULL)
    return;
  etcd_watch_get_status(w, &st);
  w->on_status(w->ctx, &st);
}

static void set_degraded(struct etcd_watch *w, const char *reason) {
  int changed;

  pthread_mutex_lock(&w->mu);
  changed = !w->st.degraded || strcmp(w->st.reason, reason) != 0;
  w->st.degraded = 1;
  snprintf(w->st.reason, sizeof(w->st.reason), "%s", reason);
  pthread_mutex_unlock(&w->mu);
  if (changed) {
    XDS_LOGW("etcd store %s: degraded: %s; serving the last catalog "
             "(revision %lld)",
             w->describe, reason, (long long)w->revision);
    notify_status(w);
  }
}

static void set_healthy(struct etcd_watch *w) {
  int was;

  pthread_mutex_lock(&w->mu);
  was = w->st.degraded;
  w->st.degraded = 0;
  w->st.reason[0] = '\0';
  w->st.revision = w->revision;
  pthread_mutex_unlock(&w->mu);
  if (was) {
    XDS_LOGI("etcd store %s: connected to %s again, watching from revision "
             "%lld",
             w->describe, etcd_client_endpoint(w->client),
             (long long)w->revision + 1);
    notify_status(w);
  }
}

void etcd_watch_get_status(struct etcd_watch *w,
                           struct etcd_watch_status *out) {
  pthread_mutex_lock(&w->mu);
  *out = w->st;
  pthread_mutex_unlock(&w->mu);
}

/* ---- delivering ---- */

/* Builds a catalog from the keys and delivers it when it differs from the
 * last one. Returns 0, or XDS_ENOMEM (the keys stay dirty). */
static int deliver(struct etcd_watch *w) {
  struct catalog *cat = NULL;
  struct problems pb;
  char why[96];
  int first = w->changes.delivered == 0, say, rc;
  int64_t t0 = now_ms();

  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  rc = etcd_store_build_ex(w->store, w->changes.last, &cat, &pb);
  if (rc < 0) {
    XDS_LOGE("etcd store %s: out of memory building the catalog; will "
             "retry",
             w->describe);
    goto out;
  }
  w->dirty = 0;
  say = w->triggered;
  w->triggered = 0;
  pthread_mutex_lock(&w->mu);
  w->st.builds++;
  w->st.keys = etcd_store_count(w->store);
  w->st.decodes = etcd_store_decodes(w->store);
  w->st.revision = w->revision;
  pthread_mutex_unlock(&w->mu);
  snprintf(why, sizeof(why), "%srevision %lld", say ? "SIGHUP, " : "",
           (long long)w->revision);
  if (!changes_apply(&w->changes, cat, &pb, why,
                     (first ? CHANGES_INITIAL : 0) | (say ? CHANGES_SAY : 0),
                     (double)(now_ms() - t0))) {
    catalog_unref(cat);
    goto out;
  }
  w->on_load(w->ctx, cat, &pb, w->revision);
  pthread_mutex_lock(&w->mu);
  w->st.delivered++;
  if (!w->st.ready) {
    w->st.ready = 1;
    pthread_cond_broadcast(&w->cond);
  }
  pthread_mutex_unlock(&w->mu);
  if (first) {
    XDS_LOGI("etcd store %s: ready", w->describe);
    notify_status(w);
  }
out:
  problems_cleanup(&pb);
  return rc;
}

static void touch(struct etcd_watch *w) {
  int64_t t = now_ms(), cap;
  unsigned d = w->debounce_ms;

  if (!w->dirty) {
    w->dirty = 1;
    w->first_ms = t;
  }
  cap = w->first_ms + (10 * (int64_t)d > 1000 ? 10 * (int64_t)d : 1000);
  w->deadline_ms = t + d < cap ? t + d : cap;
}

/* ---- listing ---- */

struct listing {
  struct etcd_kv *v;
  size_t n, cap;
};

static int collect(void *ctx, const struct etcd_kv *kv) {
  struct listing *l = ctx;
  struct etcd_kv *c;

  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    struct etcd_kv *v = xds_realloc(l->v, cap * sizeof(*v));

    if (v == NULL)
      return XDS_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  c = &l->v[l->n];
  *c = *kv;
  c->key = xds_strdup(kv->key);
  c->value = xds_malloc(kv->value_len + 1);
  if (c->key == NULL || c->value == NULL) {
    xds_free(c->key);
    xds_free(c->value);
    return XDS_ENOMEM;
  }
  memcpy(c->value, kv->value, kv->value_len + 1);
  l->n++;
  return 0;
}

static void listing_cleanup(struct listing *l) {
  for (size_t i = 0; i < l->n; i++)
    etcd_kv_cleanup(&l->v[i]);
  xds_free(l->v);
  memset(l, 0, sizeof(*l));
}

/* Lists every key and, only when the whole listing arrived, replaces the
 * key table with it. */
static int relist(struct etcd_watch *w, struct xds_err *err) {
  struct listing l = {0};
  struct etcd_header h;
  char *dir = xds_asprintf("%s/", w->prefix);
  size_t gone, too_many = 0;
  int rc;

  if (dir == NULL)
    return XDS_ENOMEM;
  rc = etcd_client_list(w->client, dir, w->page_size, collect, &l, &h, err);
  xds_free(dir);
  if (rc < 0) {
    listing_cleanup(&l);
    return rc;
  }
  etcd_store_relist_begin(w->store);
  for (size_t i = 0; i < l.n && rc >= 0; i++) {
    rc = etcd_store_put(w->store, l.v[i].key, l.v[i].value, l.v[i].value_len,
                        l.v[i].mod_revision);
    if (rc == XDS_ETOOBIG) {
      too_many++;
      rc = 0;
    }
  }
  if (rc < 0) {
    /* Out of memory half-way: keep the table (end would delete keys not
     * put yet); the next attempt lists again. */
    listing_cleanup(&l);
    return xds_err_set(err, rc, "out of memory applying the listing");
  }
  gone = etcd_store_relist_end(w->store);
  if (too_many > 0)
    XDS_LOGE("etcd store %s: more than %d keys; %zu ignored", w->describe,
             ETCD_STORE_MAX_KEYS, too_many);
  if (w->cluster_id != 0 && h.cluster_id != w->cluster_id)
    XDS_LOGW("etcd store %s: the cluster id changed (a restored or "
             "replaced cluster)",
             w->describe);
  w->cluster_id = h.cluster_id;
  w->revision = h.revision;
  w->pending_rev = 0;
  pthread_mutex_lock(&w->mu);
  w->st.relists++;
  w->st.revision = h.revision;
  w->st.keys = etcd_store_count(w->store);
  pthread_mutex_unlock(&w->mu);
  XDS_LOGI("etcd store %s: listed %zu keys at revision %lld from %s%s",
           w->describe, l.n, (long long)h.revision,
           etcd_client_endpoint(w->client),
           gone > 0 ? " (keys deleted meanwhile removed)" : "");
  listing_cleanup(&l);
  w->dirty = 1;
  return 0;
}

/* ---- watching ---- */

static void set_action(struct etcd_watch *w, enum watch_action a,
                       const char *msg) {
  w->action = a;
  snprintf(w->action_msg, sizeof(w->action_msg), "%s", msg);
}

static int apply_events(struct etcd_watch *w, const json_t *events) {
  for (size_t i = 0; i < json_array_size(events); i++) {
    const json_t *ev = json_array_get(events, i);
    const json_t *type = json_object_get(ev, "type");
    struct xds_err err = {0, ""};
    struct etcd_kv kv;
    int rc;

    rc = etcd_parse_kv(json_object_get(ev, "kv"), &kv, &err);
    if (rc < 0) {
      etcd_kv_cleanup(&kv);
      if (rc == XDS_ENOMEM)
        return rc;
      set_action(w, ACT_ERROR, err.msg);
      return WATCH_STOP_STREAM;
    }
    if (json_is_string(type) &&
        strcmp(json_string_value(type), "DELETE") == 0) {
      etcd_store_delete(w->store, kv.key);
      rc = 0;
    } else {
      rc = etcd_store_put(w->store, kv.key, kv.value, kv.value_len,
                          kv.mod_revision);
      if (rc == XDS_ETOOBIG) {
        XDS_LOGE("etcd store %s: %s ignored: more than %d keys", w->describe,
                 kv.key, ETCD_STORE_MAX_KEYS);
        rc = 0;
      }
    }
    if (kv.mod_revision > w->pending_rev)
      w->pending_rev = kv.mod_revision;
    etcd_kv_cleanup(&kv);
    if (rc < 0)
      return rc;
    touch(w);
  }
  return 0;
}

static int on_message(void *ctx, const char *json, size_t len) {
  struct etcd_watch *w = ctx;
  const json_t *res, *events;
  struct etcd_header h;
  json_error_t jerr;
  const char *emsg;
  int64_t compact = 0;
  json_t *msg;
  int code, rc = 0;

  msg = json_loadb(json, len, 0, &jerr);
  if (msg == NULL) {
    set_action(w, ACT_ERROR, "a watch message is not JSON");
    return WATCH_STOP_STREAM;
  }
  if (etcd_error_of(msg, &code, &emsg)) {
    char buf[ETCD_WATCH_REASON_MAX];

    snprintf(buf, sizeof(buf), "%s: watch: %s", etcd_client_endpoint(w->client),
             emsg);
    set_action(w, code == ETCD_GRPC_UNAUTHENTICATED ? ACT_REAUTH : ACT_ERROR,
               buf);
    json_decref(msg);
    return WATCH_STOP_STREAM;
  }
  res = json_object_get(msg, "result");
  if (!json_is_object(res) || etcd_parse_header(res, &h) < 0) {
    set_action(w, ACT_ERROR, "a watch message has no result");
    json_decref(msg);
    return WATCH_STOP_STREAM;
  }
  etcd_json_int64(json_object_get(res, "compact_revision"), &compact);
  if (compact > 0) {
    char buf[ETCD_WATCH_REASON_MAX];

    snprintf(buf, sizeof(buf),
             "revision %lld was compacted (etcd keeps history from %lld)",
             (long long)w->revision + 1, (long long)compact);
    set_action(w, ACT_RELIST, buf);
    rc = WATCH_STOP_STREAM;
  } else if (json_is_true(json_object_get(res, "canceled"))) {
    const json_t *why = json_object_get(res, "cancel_reason");
    const char *reason =
        json_is_string(why) ? json_string_value(why) : "no reason given";
    char buf[ETCD_WATCH_REASON_MAX];

    snprintf(buf, sizeof(buf), "%s: watch refused: %s",
             etcd_client_endpoint(w->client), reason);
    set_action(w, strstr(reason, "auth token") != NULL ? ACT_REAUTH : ACT_ERROR,
               buf);
    rc = WATCH_STOP_STREAM;
  } else if (json_is_true(json_object_get(res, "created"))) {
    if (w->cluster_id != 0 && h.cluster_id != 0 &&
        h.cluster_id != w->cluster_id) {
      set_action(w, ACT_RELIST, "the cluster id changed");
      rc = WATCH_STOP_STREAM;
    } else {
      w->backoff_ms = 0;
      set_healthy(w);
    }
  }
  events = json_object_get(res, "events");
  if (rc == 0 && json_array_size(events) > 0)
    rc = apply_events(w, events);
  if (rc == 0 && !json_is_true(json_object_get(res, "fragment"))) {
    /* A whole response: every event up to its highest revision is in. A
     * progress notification (no events) vouches for its header's. */
    if (w->pending_rev > w->revision)
      w->revision = w->pending_rev;
    else if (json_array_size(events) == 0 &&
             !json_is_true(json_object_get(res, "created")) &&
             h.revision > w->revision)
      w->revision = h.revision;
    w->pending_rev = 0;
  }
  json_decref(msg);
  return rc;
}

static json_t *watch_request(struct etcd_watch *w) {
  size_t plen = strlen(w->prefix) + 1, end_len;
  char *dir = xds_asprintf("%s/", w->prefix);
  char *end = dir != NULL ? etcd_prefix_end(dir, plen, &end_len) : NULL;
  char *k64 = dir != NULL ? etcd_b64_encode(dir, plen) : NULL;
  char *e64 = end != NULL ? etcd_b64_encode(end, end_len) : NULL;
  char rev[32];
  json_t *req = NULL;

  snprintf(rev, sizeof(rev), "%lld", (long long)w->revision + 1);
  if (k64 != NULL && e64 != NULL)
    req = json_pack("{s:{s:s, s:s, s:s, s:b, s:b}}", "create_request", "key",
                    k64, "range_end", e64, "start_revision", rev,
                    "progress_notify", 1, "fragment", 1);
  xds_free(dir);
  xds_free(end);
  xds_free(k64);
  xds_free(e64);
  return req;
}

/* Runs one watch stream until it ends, an action is asked, or stop.
 * Delivers debounced builds meanwhile. Returns 0 or an error (err). */
static int watch_once(struct etcd_watch *w, struct xds_err *err) {
  struct etcd_stream *s = NULL;
  json_t *req = watch_request(w);
  int rc;

  if (req == NULL)
    return XDS_ENOMEM;
  w->action = ACT_NONE;
  w->pending_rev = 0;
  rc = etcd_stream_open(w->client, req, &s, err);
  json_decref(req);
  if (rc < 0)
    return rc;
  while (!atomic_load(&w->stop)) {
    int timeout = 1000;

    if (w->dirty) {
      int64_t left = w->deadline_ms - now_ms();

      timeout = left < 0 ? 0 : (left > 1000 ? 1000 : (int)left);
    }
    rc = etcd_stream_poll(s, timeout, w->wake_fd, on_message, w, err);
    if (w->dirty && now_ms() >= w->deadline_ms && !atomic_load(&w->stop))
      deliver(w);
    if (rc < 0)
      break;
    if (atomic_exchange(&w->trigger, 0)) {
      /* Asked to reload: read every key again, as after a compaction. */
      w->action = ACT_RELIST;
      snprintf(w->action_msg, sizeof(w->action_msg), "reload asked");
      w->triggered = 1;
      break;
    }
  }
  etcd_stream_close(s);
  if (rc == WATCH_STOP_STREAM)
    rc = 0;
  return rc;
}

/* Waits the backoff (or until stopped), doubling it for the next time. */
static void backoff(struct etcd_watch *w) {
  struct pollfd pfd = {w->wake_fd, POLLIN, 0};
  unsigned d, wait;

  if (w->backoff_ms == 0)
    w->backoff_ms = w->backoff_min_ms;
  d = w->backoff_ms;
  wait = d / 2 + (unsigned)(rand_r(&w->seed) % (d / 2 + 1));
  w->backoff_ms = d * 2 > w->backoff_max_ms ? w->backoff_max_ms : d * 2;
  if (!atomic_load(&w->stop))
    poll(&pfd, 1, (int)wait);
}

static void *run(void *arg) {
  struct etcd_watch *w = arg;
  int need_list = 1, opened = 0;

  while (!atomic_load(&w->stop)) {
    struct xds_err err = {0, ""};
    int rc;

    if (need_list) {
      rc = relist(w, &err);
      if (atomic_load(&w->stop))
        break;
      if (rc < 0) {
        set_degraded(w, err.msg);
        if (rc == XDS_EIO)
          etcd_client_next_endpoint(w->client);
        backoff(w);
        continue;
      }
      need_list = 0;
      deliver(w); /* a listing is served at once, without debounce */
    }
    if (opened++ > 0) {
      pthread_mutex_lock(&w->mu);
      w->st.reconnects++;
      pthread_mutex_unlock(&w->mu);
    }
    rc = watch_once(w, &err);
    if (atomic_load(&w->stop))
      break;
    if (w->dirty)
      deliver(w); /* what arrived before the break is served now */
    if (rc == XDS_ETOOBIG) {
      /* Resuming would meet the same message: list in pages instead. */
      XDS_LOGW("etcd store %s: %s; listing every key again", w->describe,
               err.msg);
      need_list = 1;
      continue;
    }
    if (rc < 0) {
      set_degraded(w, err.msg[0] ? err.msg : xds_strerror(rc));
      etcd_client_next_endpoint(w->client);
      backoff(w);
      continue;
    }
    switch (w->action) {
    case ACT_RELIST:
      if (w->triggered)
        XDS_LOGI("etcd store %s: %s; listing every key again", w->describe,
                 w->action_msg);
      else
        XDS_LOGW("etcd store %s: %s; listing every key again", w->describe,
                 w->action_msg);
      need_list = 1;
      break;
    case ACT_REAUTH:
      XDS_LOGI("etcd store %s: %s; authenticating again", w->describe,
               w->action_msg);
      if (etcd_client_reauth(w->client, &err) < 0) {
        set_degraded(w, err.msg);
        backoff(w);
      }
      break;
    case ACT_ERROR:
      set_degraded(w, w->action_msg);
      etcd_client_next_endpoint(w->client);
      backoff(w);
      break;
    case ACT_NONE:
      break;
    }
  }
  return NULL;
}

int etcd_watch_start(const struct etcd_config *cfg,
                     const struct store_hooks *hooks,
                     etcd_watch_load_fn on_load, void *ctx,
                     struct etcd_watch **out, struct xds_err *err) {
  return etcd_watch_start_ex(cfg, hooks, on_load, NULL, ctx, out, err);
}

int etcd_watch_start_ex(const struct etcd_config *cfg,
                        const struct store_hooks *hooks,
                        etcd_watch_load_fn on_load,
                        etcd_watch_status_fn on_status, void *ctx,
                        struct etcd_watch **out, struct xds_err *err) {
  struct etcd_watch *w;
  int rc;

  *out = NULL;
  if ((w = xds_calloc(1, sizeof(*w))) == NULL)
    return XDS_ENOMEM;
  w->wake_fd = -1;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cond, NULL);
  atomic_init(&w->stop, 0);
  atomic_init(&w->trigger, 0);
  w->on_load = on_load;
  w->on_status = on_status;
  w->ctx = ctx;
  w->debounce_ms = cfg->debounce_ms;
  w->backoff_min_ms = cfg->backoff_min_ms > 0 ? cfg->backoff_min_ms : 1;
  w->backoff_max_ms = cfg->backoff_max_ms > w->backoff_min_ms
                          ? cfg->backoff_max_ms
                          : w->backoff_min_ms;
  w->page_size = cfg->page_size;
  w->seed = (unsigned)now_ms() ^ (unsigned)getpid();
  w->prefix = xds_strdup(cfg->prefix);
  w->describe = etcd_config_describe(cfg);
  changes_init(&w->changes, w->describe);
  if (w->prefix == NULL || w->describe == NULL ||
      (w->store = etcd_store_new(cfg->prefix, hooks)) == NULL) {
    rc = XDS_ENOMEM;
    goto fail;
  }
  rc = etcd_client_new(cfg, &w->client, err);
  if (rc < 0)
    goto fail;
  etcd_client_set_abort(w->client, &w->stop);
  w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->wake_fd < 0) {
    rc = xds_err_set(err, XDS_EIO, "etcd store: eventfd failed");
    goto fail;
  }
  if (pthread_create(&w->thread, NULL, run, w) != 0) {
    rc = xds_err_set(err, XDS_EIO, "etcd store: cannot start its thread");
    goto fail;
  }
  if (cfg->start_timeout_ms > 0) {
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += cfg->start_timeout_ms / 1000;
    until.tv_nsec += (long)(cfg->start_timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->st.ready &&
           pthread_cond_timedwait(&w->cond, &w->mu, &until) == 0)
      ;
    if (!w->st.ready)
      XDS_LOGW("etcd store %s: not loaded after %u ms (%s); serving "
               "nothing until it is",
               w->describe, cfg->start_timeout_ms,
               w->st.reason[0] ? w->st.reason : "no answer yet");
    pthread_mutex_unlock(&w->mu);
  }
  *out = w;
  return 0;

fail:
  if (w->wake_fd >= 0)
    close(w->wake_fd);
  etcd_client_free(w->client);
  etcd_store_free(w->store);
  xds_free(w->prefix);
  xds_free(w->describe);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cond);
  xds_free(w);
  return rc;
}

int etcd_watch_trigger(struct etcd_watch *w) {
  atomic_store(&w->trigger, 1);
  return 0;
}

void etcd_watch_stop(struct etcd_watch *w) {
  uint64_t one = 1;

  if (w == NULL)
    return;
  atomic_store(&w->stop, 1);
  if (write(w->wake_fd, &one, sizeof(one)) < 0) {
    /* The flag alone stops it within a poll timeout. */
  }
  pthread_join(w->thread, NULL);
  close(w->wake_fd);
  etcd_client_free(w->client);
  etcd_store_free(w->store);
  changes_cleanup(&w->changes);
  xds_free(w->prefix);
  xds_free(w->describe);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cond);
  xds_free(w);
}
