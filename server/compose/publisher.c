/*
 * publisher.c: the publisher thread, its mailbox and its rebuilds.
 *
 * Invariant: the fields under "publisher thread only" are touched by the
 * publisher thread alone once it runs (publisher_new sets them before it
 * starts, publisher_free after it is joined). The mailbox fields are
 * guarded by mu, which is never held during a build or a sink call.
 */
#include "server/compose/publisher.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"

struct publisher {
  struct encode_opts encode;
  struct xds_stats *stats;
  struct publisher_sink sink;
  struct delivery *delivery; /* owned; NULL: modules not fetched */
  pthread_t tid;
  int started;

  /* Mailbox, under mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv;   /* the thread waits for posts */
  pthread_cond_t idle; /* publisher_wait_idle waits for the thread */
  struct catalog *next_cat;
  int cat_posted;
  int modules_posted;
  int status_posted;
  int stop;
  int busy; /* the thread is handling what it took */
  unsigned long seq_posted, seq_done;
  char store_reason[PUBLISHER_REASON_MAX]; /* "" when fine */
  struct publisher_stats st;

  /* Publisher thread only. */
  struct catalog *cat;
  struct snapshot *current;
  uint64_t generation;
  char build_error[PUBLISHER_REASON_MAX]; /* "" when the last build worked */
  char reported[PUBLISHER_REASON_MAX * 2 + 2]; /* last given to the sink */
  int reported_any;
};

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Tells the sink the state, when it changed or force is set. */
static void report(struct publisher *p, const char *store_reason, int force) {
  char reason[PUBLISHER_REASON_MAX * 2 + 2];

  if (store_reason[0] != '\0' && p->build_error[0] != '\0')
    snprintf(reason, sizeof(reason), "%s; %s", store_reason, p->build_error);
  else
    snprintf(reason, sizeof(reason), "%s",
             store_reason[0] != '\0' ? store_reason : p->build_error);
  if (!force && p->reported_any && strcmp(reason, p->reported) == 0)
    return;
  snprintf(p->reported, sizeof(p->reported), "%s", reason);
  p->reported_any = 1;
  if (p->sink.status != NULL)
    p->sink.status(p->sink.ctx, (unsigned long)p->generation,
                   reason[0] != '\0' ? reason : NULL);
}

/* One rebuild: builds a snapshot of p->cat and publishes it when proxies
 * would receive something else. why is for the log. */
static void rebuild(struct publisher *p, const char *why) {
  struct snapshot *snap = NULL;
  struct xds_err err = {0, ""};
  double t0 = now_s();
  int rc;

  /* From the snapshot served: what the change cannot touch is shared. */
  rc = snapshot_build_from(p->current, p->cat, &p->encode, p->generation + 1,
                           &snap, &err);
  pthread_mutex_lock(&p->mu);
  p->st.builds++;
  if (rc < 0)
    p->st.failed++;
  pthread_mutex_unlock(&p->mu);
  if (rc < 0) {
    XDS_LOGE("cannot build a snapshot (%s): %s; still serving generation "
             "%llu",
             why, err.msg[0] != '\0' ? err.msg : xds_strerror(rc),
             (unsigned long long)p->generation);
    snprintf(p->build_error, sizeof(p->build_error),
             "cannot build a snapshot (%s): %s", why,
             err.msg[0] != '\0' ? err.msg : xds_strerror(rc));
    return;
  }
  p->build_error[0] = '\0';
  if (p->stats != NULL)
    stats_observe(&p->stats->snapshot_build, now_s() - t0);
  if (snapshot_same_content(p->current, snap)) {
    XDS_LOGD("rebuilt (%s): nothing any proxy receives changed; still "
             "serving generation %llu",
             why, (unsigned long long)p->generation);
    snapshot_unref(snap);
    pthread_mutex_lock(&p->mu);
    p->st.unchanged++;
    pthread_mutex_unlock(&p->mu);
    return;
  }
  if (p->stats != NULL)
    snapshot_set_stats(snap, p->stats);
  p->generation++;
  XDS_LOGI("serving generation %llu (%s): %zu extensions, %zu listener "
           "templates",
           (unsigned long long)p->generation, why, catalog_ext_count(p->cat),
           catalog_tmpl_count(p->cat));
  if (p->sink.publish != NULL)
    p->sink.publish(p->sink.ctx, snap);
  snapshot_unref(p->current);
  p->current = snap;
  pthread_mutex_lock(&p->mu);
  p->st.published++;
  p->st.generation = p->generation;
  pthread_mutex_unlock(&p->mu);
}

static void *publisher_main(void *arg) {
  struct publisher *p = arg;
  char store_reason[PUBLISHER_REASON_MAX];

  pthread_mutex_lock(&p->mu);
  for (;;) {
    struct catalog *cat = NULL;
    int got_cat, modules;
    uint64_t published_before = p->generation;
    unsigned long seq;

    while (!p->stop && !p->cat_posted && !p->modules_posted &&
           !p->status_posted) {
      p->busy = 0;
      pthread_cond_broadcast(&p->idle);
      pthread_cond_wait(&p->cv, &p->mu);
    }
    if (p->stop)
      break;
    p->busy = 1;
    got_cat = p->cat_posted;
    modules = p->modules_posted;
    cat = p->next_cat;
    p->next_cat = NULL;
    p->cat_posted = p->modules_posted = p->status_posted = 0;
    seq = p->seq_posted;
    if (got_cat)
      p->st.catalogs++;
    snprintf(store_reason, sizeof(store_reason), "%s", p->store_reason);
    pthread_mutex_unlock(&p->mu);

    if (got_cat) {
      catalog_unref(p->cat);
      p->cat = cat;
      if (p->delivery != NULL && delivery_update(p->delivery, p->cat) < 0)
        XDS_LOGE("out of memory handing the new catalog to the module "
                 "resolver");
    }
    if (p->cat != NULL && (got_cat || modules))
      rebuild(p, got_cat ? "store changed" : "modules changed");
    /* After a publish, or when only the store's state was posted. */
    report(p, store_reason, published_before != p->generation);

    pthread_mutex_lock(&p->mu);
    p->seq_done = seq;
  }
  p->busy = 0;
  pthread_cond_broadcast(&p->idle);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void post(struct publisher *p, int *flag) {
  pthread_mutex_lock(&p->mu);
  *flag = 1;
  p->seq_posted++;
  p->st.posts++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

int publisher_new(const struct publisher_config *cfg, struct publisher **out,
                  struct xds_err *err) {
  struct publisher *p;
  int rc;

  *out = NULL;
  p = xds_calloc(1, sizeof(*p));
  if (p == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  p->encode = cfg->encode;
  p->stats = cfg->stats;
  p->sink = cfg->sink;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  pthread_cond_init(&p->idle, NULL);
  if (cfg->modules != NULL) {
    struct delivery_config d = *cfg->modules;

    d.on_change = publisher_post_modules;
    d.on_change_arg = p;
    rc = delivery_new(&d, &p->delivery, err);
    if (rc < 0)
      goto fail;
    p->encode.module_of = delivery_module_of;
    p->encode.module_ctx = p->delivery;
  }
  rc = pthread_create(&p->tid, NULL, publisher_main, p);
  if (rc != 0) {
    rc = xds_err_set(err, XDS_EIO, "cannot start the publisher thread: %s",
                     strerror(rc));
    goto fail;
  }
  p->started = 1;
  *out = p;
  return 0;
fail:
  publisher_free(p);
  return rc;
}

void publisher_free(struct publisher *p) {
  if (p == NULL)
    return;
  if (p->started) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->tid, NULL);
  }
  /* The workers may still post until they are joined: p stays valid. */
  delivery_free(p->delivery);
  catalog_unref(p->next_cat);
  catalog_unref(p->cat);
  snapshot_unref(p->current);
  pthread_cond_destroy(&p->idle);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  xds_free(p);
}

struct delivery *publisher_delivery(struct publisher *p) {
  return p->delivery;
}

void publisher_set_catalog(struct publisher *p, struct catalog *cat,
                           const struct problems *pb) {
  struct catalog *old;

  if (cat == NULL)
    return;
  if (p->stats != NULL) {
    atomic_fetch_add(&p->stats->store_reloads, 1);
    if (pb != NULL)
      atomic_fetch_add(&p->stats->store_errors, pb->n_errors);
    atomic_store(&p->stats->store_errors_now,
                 pb != NULL ? (long)pb->n_errors : 0);
  }
  pthread_mutex_lock(&p->mu);
  old = p->next_cat;
  p->next_cat = cat;
  pthread_mutex_unlock(&p->mu);
  catalog_unref(old); /* overtaken before the thread took it */
  post(p, &p->cat_posted);
}

void publisher_post_modules(void *arg) {
  struct publisher *p = arg;

  post(p, &p->modules_posted);
}

void publisher_set_store_status(struct publisher *p, const char *degraded) {
  pthread_mutex_lock(&p->mu);
  snprintf(p->store_reason, sizeof(p->store_reason), "%s",
           degraded != NULL ? degraded : "");
  pthread_mutex_unlock(&p->mu);
  post(p, &p->status_posted);
}

int publisher_wait_idle(struct publisher *p, int timeout_ms) {
  struct timespec dl;
  unsigned long want;
  int rc = 0;

  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += timeout_ms / 1000;
  dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&p->mu);
  want = p->seq_posted;
  while (rc == 0 && (p->seq_done < want || p->busy) && !p->stop)
    if (pthread_cond_timedwait(&p->idle, &p->mu, &dl) == ETIMEDOUT)
      rc = XDS_EIO;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void publisher_get_stats(struct publisher *p, struct publisher_stats *out) {
  pthread_mutex_lock(&p->mu);
  *out = p->st;
  pthread_mutex_unlock(&p->mu);
}
