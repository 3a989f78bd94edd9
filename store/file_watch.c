/*
 * file_watch.c: inotify, debounce, reload, diff, log, deliver.
 *
 * One thread polls three descriptors: the inotify instance, an eventfd
 * that file_watch_trigger() writes (async-signal-safe) and an eventfd that
 * file_watch_stop() writes. Watches are (re)built before every load by
 * walking the store as the loader does, so whatever the load reads is
 * watched by the time it reads it; watches of directories no longer
 * reached are removed. Each watch remembers which names in its directory
 * matter (a tree directory: whatever the loader reads; the store path's
 * parent: the path's own name; a symlink target's directory: the target's
 * name).
 */
#include "store/file_watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "store/changes.h"

#define WATCH_MASK                                                             \
  (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM |        \
   IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
/* Names one non-tree watch can care about (the path's, its target's). */
#define WATCH_MAX_NAMES 4

struct wentry {
  int wd;
  unsigned gen; /* the rescan that last wanted it */
  int tree;     /* a directory the loader walks: wanted names count */
  char *names[WATCH_MAX_NAMES];
  size_t n_names;
};

struct file_watch {
  char *path;
  unsigned debounce_ms;
  struct store_hooks hooks;
  int has_hooks;
  file_watch_load_fn on_load;
  void *ctx;
  int ifd;
  int trig_fd;
  int stop_fd;
  pthread_t tid;
  int started;
  /* Watcher-thread state. */
  struct wentry *w;
  size_t n_w;
  size_t cap_w;
  unsigned gen;
  struct catalog *cur;
  struct file_store_cache *cache;
  struct changes changes; /* the shared diff, log and report */
  dev_t anc_dev[FILE_STORE_MAX_DEPTH + 1];
  ino_t anc_ino[FILE_STORE_MAX_DEPTH + 1];
  struct xds_map *seen; /* during a rescan: "dev:ino" of directories walked */
  char *buf; /* FILE_WATCH_BUF_BYTES, aligned for struct inotify_event */
  /* Shared with readers of the stats. */
  pthread_mutex_t mu;
  struct file_watch_stats st;
};

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- watches ---- */

static struct wentry *find_wd(struct file_watch *w, int wd) {
  for (size_t i = 0; i < w->n_w; i++)
    if (w->w[i].wd == wd)
      return &w->w[i];
  return NULL;
}

static void wentry_clear(struct wentry *e) {
  for (size_t i = 0; i < e->n_names; i++)
    xds_free(e->names[i]);
  e->n_names = 0;
  e->tree = 0;
}

static size_t live_watches(const struct file_watch *w) {
  size_t n = 0;

  for (size_t i = 0; i < w->n_w; i++)
    n += w->w[i].gen == w->gen;
  return n;
}

/* Watches dir (for the whole tree, or for one name in it). A directory
 * that vanished meanwhile is skipped (its parent's events cover it).
 * Returns 0, XDS_ETOOBIG, XDS_EIO or XDS_ENOMEM with err set. */
static int add_watch(struct file_watch *w, const char *dir, int tree,
                     const char *name, struct xds_err *err) {
  struct wentry *e;
  int wd;

  if (live_watches(w) >= FILE_WATCH_MAX_WATCHES)
    return xds_err_set(err, XDS_ETOOBIG,
                       "%s: more than %d directories to watch", w->path,
                       FILE_WATCH_MAX_WATCHES);
  wd = inotify_add_watch(w->ifd, dir, WATCH_MASK);
  if (wd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
        errno == EACCES)
      return 0; /* gone, or not readable: the load reports it */
    if (errno == ENOSPC)
      return xds_err_set(err, XDS_EIO,
                         "%s: cannot watch: the kernel's inotify watch limit "
                         "is reached (sysctl fs.inotify.max_user_watches)",
                         dir);
    return xds_err_set(err, XDS_EIO, "%s: cannot watch: %s", dir,
                       strerror(errno));
  }
  e = find_wd(w, wd);
  if (e == NULL) {
    if (w->n_w == w->cap_w) {
      size_t cap = w->cap_w ? w->cap_w * 2 : 16;
      struct wentry *v = xds_realloc(w->w, cap * sizeof(*v));

      if (v == NULL)
        return xds_err_set(err, XDS_ENOMEM, "out of memory");
      w->w = v;
      w->cap_w = cap;
    }
    e = &w->w[w->n_w++];
    memset(e, 0, sizeof(*e));
    e->wd = wd;
  } else if (e->gen != w->gen) {
    wentry_clear(e); /* what it was watched for last time may be stale */
  }
  e->gen = w->gen;
  if (tree)
    e->tree = 1;
  if (name != NULL) {
    for (size_t i = 0; i < e->n_names; i++)
      if (strcmp(e->names[i], name) == 0)
        return 0;
    if (e->n_names < WATCH_MAX_NAMES) {
      if ((e->names[e->n_names] = xds_strdup(name)) == NULL)
        return xds_err_set(err, XDS_ENOMEM, "out of memory");
      e->n_names++;
    } else {
      e->tree = 1; /* too many names: take every wanted name */
    }
  }
  return 0;
}

/* dirname and basename of path into dir and base (both sized PATH_MAX). */
static void split_path(const char *path, char *dir, char *base) {
  size_t n = strlen(path);
  const char *slash;

  while (n > 1 && path[n - 1] == '/')
    n--;
  snprintf(dir, PATH_MAX, "%.*s", (int)n, path);
  slash = strrchr(dir, '/');
  if (slash == NULL) {
    snprintf(base, PATH_MAX, "%s", dir);
    snprintf(dir, PATH_MAX, ".");
  } else if (slash == dir) {
    snprintf(base, PATH_MAX, "%s", slash + 1);
    dir[1] = '\0';
  } else {
    snprintf(base, PATH_MAX, "%s", slash + 1);
    dir[slash - dir] = '\0';
  }
}

/* Also watches the directory of a symlink's final target, for its name:
 * an in-place edit of the target is then seen too. */
static int watch_link_target(struct file_watch *w, const char *path,
                             struct xds_err *err) {
  char real[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
  struct stat st;

  if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode) ||
      realpath(path, real) == NULL)
    return 0;
  split_path(real, dir, base);
  return add_watch(w, dir, 0, base, err);
}

static int watch_tree(struct file_watch *w, const char *dir, int depth,
                      struct xds_err *err) {
  DIR *d;
  struct dirent *de;
  int rc = add_watch(w, dir, 1, NULL, err);

  if (rc < 0)
    return rc;
  d = opendir(dir);
  if (d == NULL)
    return 0; /* the load reports it */
  while (rc == 0 && (de = readdir(d)) != NULL) {
    char child[PATH_MAX], key[64];
    struct stat st;
    int loop = 0;

    if (de->d_name[0] == '.')
      continue;
    if (de->d_type != DT_DIR && de->d_type != DT_LNK &&
        de->d_type != DT_UNKNOWN)
      continue; /* a plain file: its directory's watch covers it */
    if (snprintf(child, sizeof(child), "%s/%s", dir, de->d_name) >=
        (int)sizeof(child))
      continue;
    if (stat(child, &st) < 0)
      continue;
    if (!S_ISDIR(st.st_mode)) {
      if (file_store_wants_name(de->d_name, 0))
        rc = watch_link_target(w, child, err);
      continue;
    }
    if (!file_store_wants_name(de->d_name, 1) ||
        depth + 1 > FILE_STORE_MAX_DEPTH)
      continue;
    for (int a = 0; a <= depth; a++)
      if (w->anc_dev[a] == st.st_dev && w->anc_ino[a] == st.st_ino)
        loop = 1;
    if (loop)
      continue;
    /* Each directory once, as the loader reads it (a symlink fan-out
     * would otherwise be walked once per path); the watch count bounds
     * how many. */
    snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    if (xds_map_get(w->seen, key) != NULL)
      continue;
    if (xds_map_put(w->seen, key, w, NULL) < 0) {
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
      break;
    }
    w->anc_dev[depth + 1] = st.st_dev;
    w->anc_ino[depth + 1] = st.st_ino;
    rc = watch_tree(w, child, depth + 1, err);
  }
  closedir(d);
  return rc;
}

/* Brings the watches in line with what is on disk now. On error the
 * watches set so far stay (and stale ones are not removed). */
static int rescan(struct file_watch *w, struct xds_err *err) {
  char dir[PATH_MAX], base[PATH_MAX];
  struct stat st;
  int rc;

  w->gen++;
  if (stat(w->path, &st) == 0) {
    split_path(w->path, dir, base);
    rc = add_watch(w, dir, 0, base, err);
    if (rc == 0)
      rc = watch_link_target(w, w->path, err);
    if (rc == 0 && S_ISDIR(st.st_mode)) {
      char key[64];

      w->anc_dev[0] = st.st_dev;
      w->anc_ino[0] = st.st_ino;
      w->seen = xds_map_new();
      snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st.st_dev,
               (unsigned long long)st.st_ino);
      if (w->seen == NULL || xds_map_put(w->seen, key, w, NULL) < 0)
        rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
      else
        rc = watch_tree(w, w->path, 0, err);
      xds_map_free(w->seen, NULL);
      w->seen = NULL;
    }
  } else {
    /* Not there (yet): watch the nearest existing ancestor for the next
     * component of the path. */
    char cur[PATH_MAX];

    snprintf(cur, sizeof(cur), "%s", w->path);
    for (;;) {
      split_path(cur, dir, base);
      if (stat(dir, &st) == 0 || strcmp(dir, cur) == 0)
        break;
      snprintf(cur, sizeof(cur), "%s", dir);
    }
    rc = add_watch(w, dir, 0, base, err);
  }
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < w->n_w;) {
    if (w->w[i].gen == w->gen) {
      i++;
      continue;
    }
    inotify_rm_watch(w->ifd, w->w[i].wd);
    wentry_clear(&w->w[i]);
    w->w[i] = w->w[--w->n_w];
  }
  pthread_mutex_lock(&w->mu);
  w->st.watches = w->n_w;
  pthread_mutex_unlock(&w->mu);
  return 0;
}

/* Whether an event may change what a load reads. */
static int event_matters(const struct file_watch *w,
                         const struct inotify_event *ev) {
  const struct wentry *e;

  if (ev->mask & IN_Q_OVERFLOW)
    return 1;
  e = NULL;
  for (size_t i = 0; i < w->n_w && e == NULL; i++)
    if (w->w[i].wd == ev->wd)
      e = &w->w[i];
  if (e == NULL)
    return 0; /* a watch removed meanwhile */
  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT))
    return 1;
  if (ev->len == 0 || ev->name[0] == '\0')
    return 0;
  if (strcmp(ev->name, "..data") == 0)
    return 1; /* a ConfigMap mount switched to a new version */
  for (size_t i = 0; i < e->n_names; i++)
    if (strcmp(e->names[i], ev->name) == 0)
      return 1;
  return e->tree && file_store_wants_name(ev->name, (ev->mask & IN_ISDIR) != 0);
}

/* ---- reload, diff, log, deliver ---- */

/* Strips a leading "path: " from a message that a problem already
 * locates at path. */
static const char *strip_path(const char *msg, const char *path) {
  size_t n = strlen(path);

  if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
    return msg + n + 2;
  return msg;
}

static struct catalog *empty_catalog(void) {
  struct catalog_builder *b = catalog_builder_new();
  struct catalog *c = NULL;
  struct problems none;

  problems_init(&none, 1);
  if (b != NULL)
    catalog_builder_finish(b, &none, &c);
  problems_cleanup(&none);
  return c;
}

/* One load. why names what started it ("start", "inotify", "trigger").
 * Returns 0, or (start only) the error that must fail the start. */
static int reload(struct file_watch *w, const char *why, int initial,
                  struct xds_err *start_err) {
  struct problems pb;
  struct catalog *next = NULL;
  struct xds_err err = {0, ""};
  double t0 = now_ms(), dt;
  int rc;

  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  rc = rescan(w, &err);
  if (rc < 0) {
    if (initial || rc == XDS_ENOMEM) {
      if (start_err != NULL)
        *start_err = err;
      problems_cleanup(&pb);
      return rc;
    }
    problems_add(&pb, PROBLEM_ERROR, w->path, 0, 0, "",
                 "%s; changes there may not be seen until the next reload",
                 strip_path(err.msg, w->path));
  }
  rc = file_store_load_ex(w->path, w->has_hooks ? &w->hooks : NULL, w->cache,
                          w->cur, &next, &pb, &err);
  if (rc < 0) {
    if (initial && rc != XDS_ENOTFOUND) {
      if (start_err != NULL)
        *start_err = err;
      problems_cleanup(&pb);
      return rc;
    }
    problems_add(&pb, PROBLEM_ERROR, w->path, 0, 0, "", "%s; %s",
                 strip_path(err.msg, w->path),
                 initial ? "serving nothing until it appears"
                         : "still serving the last good catalog");
    next = w->cur != NULL ? catalog_ref(w->cur) : empty_catalog();
    if (next == NULL) {
      problems_cleanup(&pb);
      if (start_err != NULL)
        xds_err_set(start_err, XDS_ENOMEM, "out of memory");
      return XDS_ENOMEM;
    }
  }
  /* Counted before the delivery, so whoever sees the callback sees the
   * load counted too. */
  pthread_mutex_lock(&w->mu);
  if (!initial)
    w->st.loads++;
  pthread_mutex_unlock(&w->mu);
  dt = now_ms() - t0;
  if (changes_apply(&w->changes, next, &pb, why,
                    (initial ? CHANGES_INITIAL : 0) |
                        (strcmp(why, "SIGHUP") == 0 ? CHANGES_SAY : 0),
                    dt)) {
    w->on_load(w->ctx, catalog_ref(next), &pb);
    pthread_mutex_lock(&w->mu);
    w->st.delivered++;
    pthread_mutex_unlock(&w->mu);
  }
  /* Always move on to the new catalog: its records carry the current
   * locations, which the next load's retention rules look at. */
  catalog_unref(w->cur);
  w->cur = next;
  dt = now_ms() - t0;
  pthread_mutex_lock(&w->mu);
  w->st.last_load_ms = dt;
  pthread_mutex_unlock(&w->mu);
  problems_cleanup(&pb);
  return 0;
}

/* ---- the thread ---- */

static void drain(int fd) {
  uint64_t v;

  while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
    ;
}

/* Reads what inotify has; returns whether any event matters. */
static int read_events(struct file_watch *w) {
  int matters = 0;
  unsigned long n = 0;

  for (;;) {
    ssize_t got = read(w->ifd, w->buf, FILE_WATCH_BUF_BYTES);

    if (got <= 0)
      break; /* EAGAIN: drained */
    for (char *p = w->buf; p < w->buf + got;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;

      n++;
      if (!matters && event_matters(w, ev))
        matters = 1;
      p += sizeof(*ev) + ev->len;
    }
  }
  pthread_mutex_lock(&w->mu);
  w->st.events += n;
  pthread_mutex_unlock(&w->mu);
  return matters;
}

static void *watch_main(void *arg) {
  struct file_watch *w = arg;
  double first = 0, last = 0;
  double max_wait = w->debounce_ms * 10.0 < 1000 ? 1000 : w->debounce_ms * 10.0;
  int pending = 0;

  for (;;) {
    struct pollfd fds[3] = {
        {w->stop_fd, POLLIN, 0}, {w->trig_fd, POLLIN, 0}, {w->ifd, POLLIN, 0}};
    int timeout = -1, triggered = 0;
    double now = now_ms();

    if (pending) {
      double due = last + w->debounce_ms;

      if (due > first + max_wait)
        due = first + max_wait;
      timeout = due <= now ? 0 : (int)(due - now) + 1;
    }
    if (poll(fds, 3, timeout) < 0 && errno != EINTR)
      break;
    if (fds[0].revents)
      break;
    if (fds[1].revents) {
      drain(w->trig_fd);
      triggered = 1;
    }
    now = now_ms();
    if (fds[2].revents && read_events(w)) {
      if (!pending)
        first = now;
      pending = 1;
      last = now;
    }
    if (triggered) {
      pthread_mutex_lock(&w->mu);
      w->st.triggers++;
      pthread_mutex_unlock(&w->mu);
      reload(w, "SIGHUP", 0, NULL);
      pending = 0;
    } else if (pending &&
               (now >= last + w->debounce_ms || now >= first + max_wait)) {
      reload(w, "inotify", 0, NULL);
      pending = 0;
    }
  }
  return NULL;
}

/* ---- API ---- */

static void watch_free(struct file_watch *w) {
  for (size_t i = 0; i < w->n_w; i++)
    wentry_clear(&w->w[i]);
  xds_free(w->w);
  if (w->ifd >= 0)
    close(w->ifd);
  if (w->trig_fd >= 0)
    close(w->trig_fd);
  if (w->stop_fd >= 0)
    close(w->stop_fd);
  catalog_unref(w->cur);
  changes_cleanup(&w->changes);
  file_store_cache_free(w->cache);
  pthread_mutex_destroy(&w->mu);
  xds_free(w->buf);
  xds_free(w->path);
  xds_free(w);
}

int file_watch_start(const char *path, unsigned debounce_ms,
                     const struct store_hooks *hooks,
                     file_watch_load_fn on_load, void *ctx,
                     struct file_watch **out, struct xds_err *err) {
  struct file_watch *w;
  int rc;

  *out = NULL;
  w = xds_calloc(1, sizeof(*w));
  if (w == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  w->ifd = w->trig_fd = w->stop_fd = -1;
  pthread_mutex_init(&w->mu, NULL);
  w->debounce_ms = debounce_ms > FILE_WATCH_MAX_DEBOUNCE_MS
                       ? FILE_WATCH_MAX_DEBOUNCE_MS
                       : debounce_ms;
  if (hooks != NULL) {
    w->hooks = *hooks;
    w->has_hooks = 1;
  }
  w->on_load = on_load;
  w->ctx = ctx;
  w->path = xds_strdup(path);
  changes_init(&w->changes, path);
  w->cache = file_store_cache_new();
  w->buf = xds_malloc(FILE_WATCH_BUF_BYTES);
  if (w->path == NULL || w->cache == NULL || w->buf == NULL) {
    watch_free(w);
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
  w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  w->trig_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->ifd < 0 || w->trig_fd < 0 || w->stop_fd < 0) {
    rc = xds_err_set(
        err, XDS_EIO, "%s: cannot set up inotify: %s%s", path, strerror(errno),
        errno == EMFILE ? " (sysctl fs.inotify.max_user_instances)" : "");
    watch_free(w);
    return rc;
  }
  rc = reload(w, "start", 1, err);
  if (rc < 0) {
    watch_free(w);
    return rc;
  }
  rc = pthread_create(&w->tid, NULL, watch_main, w);
  if (rc != 0) {
    watch_free(w);
    return xds_err_set(err, XDS_EIO, "cannot start the store watcher: %s",
                       strerror(rc));
  }
  w->started = 1;
  *out = w;
  return 0;
}

int file_watch_trigger(struct file_watch *w) {
  uint64_t one = 1;
  int saved = errno;
  ssize_t n = write(w->trig_fd, &one, sizeof(one));

  errno = saved;
  return n == (ssize_t)sizeof(one) ? 0 : XDS_EIO;
}

void file_watch_stop(struct file_watch *w) {
  uint64_t one = 1;

  if (w == NULL)
    return;
  if (w->started) {
    while (write(w->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
      ;
    pthread_join(w->tid, NULL);
  }
  watch_free(w);
}

void file_watch_get_stats(struct file_watch *w, struct file_watch_stats *out) {
  pthread_mutex_lock(&w->mu);
  *out = w->st;
  pthread_mutex_unlock(&w->mu);
}
