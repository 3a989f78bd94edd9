/*
 * source.c: the three kinds of store source and the path they share: the
 * removal guard and the sink (store/changes.h does the diff and the log,
 * inside each watcher or, for memory, here).
 *
 * Invariant: every sink call is made with s->mu held, so deliveries from
 * the watcher thread and from source_confirm_removal never interleave;
 * s->mu is the source's own and nothing it calls takes it back.
 */
#include "store/source.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "store/changes.h"
#include "store/etcd_watch.h"
#include "store/file_watch.h"

struct store_source {
  const struct source_ops *ops;
  struct source_sink sink;
  char *store; /* the path or URL, for logs */
  unsigned debounce_ms;
  struct etcd_config *etcd; /* borrowed until start returns */
  struct store_hooks hooks;
  int has_hooks;
  int max_removal_pct;
  size_t removal_min;
  struct file_watch *fw;
  struct etcd_watch *ew;
  struct changes mem; /* memory: the shared diff and log */

  pthread_mutex_t mu;     /* guards what follows, and every sink call */
  struct catalog *served; /* the catalog last given to the sink */
  struct catalog *held;   /* a mass removal waiting for confirmation */
  int64_t held_revision;  /* its etcd revision; 0: not etcd */
  char held_reason[SOURCE_REASON_MAX];
  char store_reason[SOURCE_REASON_MAX]; /* the kind's own (etcd down) */
  char reported[SOURCE_REASON_MAX * 2 + 2];
  int reported_any;
};

/* ---- the shared path ---- */

/* Tells the sink the state when it changed (s->mu held). */
static void report_status(struct store_source *s) {
  char reason[SOURCE_REASON_MAX * 2 + 2];

  if (s->store_reason[0] != '\0' && s->held_reason[0] != '\0')
    snprintf(reason, sizeof(reason), "%s; %s", s->store_reason, s->held_reason);
  else
    snprintf(reason, sizeof(reason), "%s",
             s->store_reason[0] != '\0' ? s->store_reason : s->held_reason);
  if (s->reported_any && strcmp(reason, s->reported) == 0)
    return;
  snprintf(s->reported, sizeof(s->reported), "%s", reason);
  s->reported_any = 1;
  if (s->sink.on_status != NULL)
    s->sink.on_status(s->sink.ctx, reason[0] != '\0' ? reason : NULL);
}

struct removals {
  size_t ext, tmpl;
};

static int count_removal(void *ctx, const struct catalog_change *ch) {
  struct removals *r = ctx;

  if (ch->op == CATALOG_REMOVED) {
    if (ch->kind == CATALOG_EXT)
      r->ext++;
    else
      r->tmpl++;
  }
  return 0;
}

/* Whether next, replacing s->served, is a mass removal; if so says why in
 * reason. */
static int mass_removal(struct store_source *s, const struct catalog *next,
                        char *reason, size_t size) {
  struct removals r = {0, 0};
  size_t served_tmpl, total, removed;

  if (s->served == NULL)
    return 0;
  served_tmpl = catalog_tmpl_count(s->served);
  total = catalog_ext_count(s->served) + served_tmpl;
  catalog_diff(s->served, next, count_removal, &r);
  removed = r.ext + r.tmpl;
  if (served_tmpl > 0 && catalog_tmpl_count(next) == 0) {
    snprintf(reason, size,
             "held a change of store %s that removes every listener "
             "template (%zu of %zu resources removed)",
             s->store, removed, total);
    return 1;
  }
  if (total >= s->removal_min &&
      removed * 100 > (size_t)s->max_removal_pct * total) {
    snprintf(reason, size,
             "held a change of store %s that removes %zu of %zu resources "
             "(more than %d%%)",
             s->store, removed, total, s->max_removal_pct);
    return 1;
  }
  return 0;
}

/* Gives cat (a reference the sink takes) to the sink (s->mu held). */
static void give(struct store_source *s, struct catalog *cat,
                 const struct problems *pb, int64_t revision) {
  catalog_unref(s->served);
  s->served = catalog_ref(cat);
  if (revision > 0 && s->sink.on_revision != NULL)
    s->sink.on_revision(s->sink.ctx, revision);
  s->sink.on_catalog(s->sink.ctx, cat, pb);
}

/* Ends a hold (s->mu held). */
static void unhold(struct store_source *s) {
  if (s->held == NULL)
    return;
  catalog_unref(s->held);
  s->held = NULL;
  s->held_revision = 0;
  s->held_reason[0] = '\0';
  if (s->sink.on_hold != NULL)
    s->sink.on_hold(s->sink.ctx, 0);
  report_status(s);
}

/* Every catalog a source loads, after store/changes.h said it changed:
 * the guard, then the sink. Takes cat; revision is its etcd revision (0:
 * not etcd). Returns 1 delivered, 0 held or dropped. */
static int deliver(struct store_source *s, struct catalog *cat,
                   const struct problems *pb, int64_t revision) {
  char reason[SOURCE_REASON_MAX];
  int rc = 1;

  pthread_mutex_lock(&s->mu);
  if (mass_removal(s, cat, reason, sizeof(reason))) {
    int first = s->held == NULL;

    catalog_unref(s->held);
    s->held = cat;
    s->held_revision = revision;
    snprintf(s->held_reason, sizeof(s->held_reason), "%s", reason);
    XDS_LOGE("%s; still serving the previous catalog (%zu extensions, %zu "
             "listener templates). If the removal is meant, confirm it: "
             "POST /store/confirm-removal on the admin server",
             reason, catalog_ext_count(s->served),
             catalog_tmpl_count(s->served));
    if (first && s->sink.on_hold != NULL)
      s->sink.on_hold(s->sink.ctx, 1);
    report_status(s);
    rc = 0;
  } else {
    if (s->held != NULL) {
      XDS_LOGI("store %s: the held change is replaced by one that removes "
               "less; serving it",
               s->store);
      unhold(s);
    }
    give(s, cat, pb, revision);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- file ---- */

static void file_on_load(void *ctx, struct catalog *cat,
                         const struct problems *pb) {
  struct store_source *s = ctx;
  int first;

  pthread_mutex_lock(&s->mu);
  first = s->served == NULL;
  pthread_mutex_unlock(&s->mu);
  if (first && access(s->store, F_OK) != 0) {
    /* Never serve an empty configuration because the store is not there
     * (yet): proxies would drop every listener. Streams wait instead. */
    XDS_LOGE("store %s does not exist; waiting for it (nothing is served "
             "until it loads)",
             s->store);
    catalog_unref(cat);
    return;
  }
  deliver(s, cat, pb, 0);
}

static int file_start(struct store_source *s, struct xds_err *err) {
  return file_watch_start(s->store, s->debounce_ms,
                          s->has_hooks ? &s->hooks : NULL, file_on_load, s,
                          &s->fw, err);
}

static int file_trigger(struct store_source *s) {
  return s->fw != NULL ? file_watch_trigger(s->fw) : XDS_EIO;
}

static void file_stop(struct store_source *s) {
  file_watch_stop(s->fw);
  s->fw = NULL;
}

static const struct source_ops file_ops = {"file", file_start, file_trigger,
                                           file_stop};

/* ---- etcd ---- */

static void etcd_on_load(void *ctx, struct catalog *cat,
                         const struct problems *pb, int64_t revision) {
  deliver(ctx, cat, pb, revision);
}

static void etcd_on_status(void *ctx, const struct etcd_watch_status *st) {
  struct store_source *s = ctx;

  pthread_mutex_lock(&s->mu);
  snprintf(s->store_reason, sizeof(s->store_reason), "%s",
           st->degraded ? st->reason : "");
  report_status(s);
  pthread_mutex_unlock(&s->mu);
}

static int etcd_start(struct store_source *s, struct xds_err *err) {
  return etcd_watch_start_ex(s->etcd, s->has_hooks ? &s->hooks : NULL,
                             etcd_on_load, etcd_on_status, s, &s->ew, err);
}

static int etcd_trigger(struct store_source *s) {
  return s->ew != NULL ? etcd_watch_trigger(s->ew) : XDS_EIO;
}

static void etcd_stop(struct store_source *s) {
  etcd_watch_stop(s->ew);
  s->ew = NULL;
}

static const struct source_ops etcd_ops = {"etcd", etcd_start, etcd_trigger,
                                           etcd_stop};

/* ---- memory ---- */

static int memory_start(struct store_source *s, struct xds_err *err) {
  (void)s;
  (void)err;
  return 0;
}

/* Loads the last catalog again, said in the log. Not from a signal
 * handler (memory sources are for tests). */
static int memory_trigger(struct store_source *s) {
  struct catalog *c = s->mem.last;

  if (c != NULL)
    changes_apply(&s->mem, c, NULL, "trigger", CHANGES_SAY, 0);
  return 0;
}

static void memory_stop(struct store_source *s) {
  (void)s;
}

static const struct source_ops memory_ops = {"memory", memory_start,
                                             memory_trigger, memory_stop};

/* ---- API ---- */

static int source_alloc(const struct source_config *cfg,
                        const struct source_sink *sink,
                        const struct source_ops *ops,
                        struct store_source **out) {
  struct store_source *s = xds_calloc(1, sizeof(*s));

  *out = NULL;
  if (s == NULL)
    return XDS_ENOMEM;
  s->ops = ops;
  s->sink = *sink;
  s->store = xds_strdup(cfg->store != NULL ? cfg->store : "(memory)");
  if (s->store == NULL) {
    xds_free(s);
    return XDS_ENOMEM;
  }
  s->debounce_ms = cfg->debounce_ms;
  s->etcd = cfg->etcd;
  if (cfg->hooks != NULL) {
    s->hooks = *cfg->hooks;
    s->has_hooks = 1;
  }
  s->max_removal_pct = cfg->max_removal_pct > 0
                           ? cfg->max_removal_pct
                           : SOURCE_DEFAULT_MAX_REMOVAL_PCT;
  s->removal_min =
      cfg->removal_min > 0 ? cfg->removal_min : SOURCE_DEFAULT_REMOVAL_MIN;
  changes_init(&s->mem, s->store);
  pthread_mutex_init(&s->mu, NULL);
  *out = s;
  return 0;
}

int source_open(const struct source_config *cfg, const struct source_sink *sink,
                struct store_source **out, struct xds_err *err) {
  int rc;

  *out = NULL;
  if (!etcd_config_is_url(cfg->store)) {
    rc = source_alloc(cfg, sink, &file_ops, out);
    return rc < 0 ? xds_err_set(err, rc, "out of memory") : 0;
  }
  if (cfg->etcd == NULL)
    return xds_err_set(err, XDS_EINVAL, "%s: no etcd configuration",
                       cfg->store);
  rc = etcd_config_parse_url(cfg->store, cfg->etcd, err);
  if (rc == 0) {
    if (!cfg->etcd_debounce_given)
      cfg->etcd->debounce_ms = cfg->debounce_ms;
    rc = etcd_config_finish(cfg->etcd, err);
  }
  if (rc == 0) {
    rc = source_alloc(cfg, sink, &etcd_ops, out);
    if (rc < 0)
      xds_err_set(err, rc, "out of memory");
  }
  return rc;
}

int source_new_memory(const struct source_config *cfg,
                      const struct source_sink *sink,
                      struct store_source **out) {
  return source_alloc(cfg, sink, &memory_ops, out);
}

int source_start(struct store_source *s, struct xds_err *err) {
  return s->ops->start(s, err);
}

int source_trigger(struct store_source *s) {
  return s->ops->trigger(s);
}

int source_confirm_removal(struct store_source *s) {
  struct catalog *cat;
  int64_t revision;

  pthread_mutex_lock(&s->mu);
  if (s->held == NULL) {
    pthread_mutex_unlock(&s->mu);
    return XDS_ENOTFOUND;
  }
  cat = catalog_ref(s->held);
  revision = s->held_revision;
  XDS_LOGW("store %s: mass removal confirmed by the operator; serving %zu "
           "extensions, %zu listener templates",
           s->store, catalog_ext_count(cat), catalog_tmpl_count(cat));
  unhold(s);
  give(s, cat, NULL, revision);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int source_held(struct store_source *s, char *reason) {
  int held;

  pthread_mutex_lock(&s->mu);
  held = s->held != NULL;
  if (reason != NULL)
    snprintf(reason, SOURCE_REASON_MAX, "%s", s->held_reason);
  pthread_mutex_unlock(&s->mu);
  return held;
}

void source_free(struct store_source *s) {
  if (s == NULL)
    return;
  s->ops->stop(s);
  catalog_unref(s->served);
  catalog_unref(s->held);
  changes_cleanup(&s->mem);
  pthread_mutex_destroy(&s->mu);
  xds_free(s->store);
  xds_free(s);
}

const char *source_kind(const struct store_source *s) {
  return s->ops->name;
}

int source_memory_load(struct store_source *s, struct catalog *cat,
                       const struct problems *pb, const char *why) {
  int first = s->mem.delivered == 0;

  if (s->ops != &memory_ops) {
    catalog_unref(cat);
    return XDS_EINVAL;
  }
  if (!changes_apply(&s->mem, cat, pb, why, first ? CHANGES_INITIAL : 0, 0)) {
    catalog_unref(cat);
    return 0;
  }
  return deliver(s, cat, pb, 0);
}
