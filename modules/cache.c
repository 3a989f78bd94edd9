/*
 * cache.c: content-addressed module files with JSON side files.
 *
 * Invariants, under c->lock: `entries` maps hex -> struct centry for every
 * sha256/<hex>.wasm on disk whose bytes hash to its name; `bytes` is the
 * sum of their sizes; an entry with referenced = 1 is never removed.
 * Filesystem writes happen under the lock too: they are small and rare
 * (a module arrives, a resolution changes), and it keeps the files and the
 * maps in step.
 */
#include "modules/cache.h"

#include "base/alloc.h"
#include "base/fsdir.h"
#include "base/buf.h"
#include "base/map.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A module's file mtime is refreshed at most this often when served. */
#define TOUCH_INTERVAL_NS (600LL * 1000000000LL)

struct centry {
  uint64_t size;
  int64_t last_use;   /* ns since the epoch */
  int64_t last_touch; /* when the file's mtime was last set */
  int referenced;
  int is_private;
  char **root_ids;
  size_t n_root_ids;
};

struct resolution {
  char hex[DIGEST_HEX_LEN + 1];
  char manifest[DIGEST_HEX_LEN + 1]; /* "" when not OCI */
  int64_t at;
};

struct modcache {
  pthread_mutex_t lock;
  char *dir;
  uint64_t max_bytes;
  uint64_t bytes;
  uint64_t evictions;          /* modules deleted by evict() since open */
  struct xds_map *entries;     /* hex -> struct centry */
  struct xds_map *resolutions; /* key -> struct resolution */
  struct xds_map *manifests;   /* manifest hex -> char *module hex */
};

static int64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void centry_free(void *p) {
  struct centry *e = p;

  if (e != NULL)
    xds_strv_free(e->root_ids, e->n_root_ids);
  xds_free(e);
}

/* ---- files ---------------------------------------------------------- */

static char *path_of(const struct modcache *c, const char *hex,
                     const char *ext) {
  return xds_asprintf("%s/sha256/%s.%s", c->dir, hex, ext);
}

/* Writes data to a temporary file, fsyncs and renames it to path. */
static int write_atomic(const struct modcache *c, const char *path,
                        const void *data, size_t len) {
  char *tmp = xds_asprintf("%s/tmp/w.XXXXXX", c->dir);
  const char *p = data;
  int fd, rc = 0;

  if (tmp == NULL)
    return XDS_ENOMEM;
  fd = mkstemp(tmp);
  if (fd < 0) {
    xds_free(tmp);
    return XDS_EIO;
  }
  while (len > 0) {
    ssize_t n = write(fd, p, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = XDS_EIO;
      break;
    }
    p += n;
    len -= (size_t)n;
  }
  if (rc == 0 && (fchmod(fd, 0600) < 0 || fsync(fd) < 0))
    rc = XDS_EIO;
  if (close(fd) < 0 && rc == 0)
    rc = XDS_EIO;
  if (rc == 0 && rename(tmp, path) < 0)
    rc = XDS_EIO;
  if (rc < 0)
    unlink(tmp);
  xds_free(tmp);
  return rc;
}

/* Reads a whole small file under a limit. */
static int read_small(const char *path, size_t max, struct xds_buf *b) {
  char chunk[8192];
  int fd;
  ssize_t n;
  int rc = 0;

  xds_buf_init(b, max);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? XDS_ENOTFOUND : XDS_EIO;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0)
    if ((rc = xds_buf_append(b, chunk, (size_t)n)) < 0)
      break;
  if (n < 0)
    rc = XDS_EIO;
  close(fd);
  return rc;
}

/* Hashes a file, streaming. */
static int hash_file(const char *path, char hex[DIGEST_HEX_LEN + 1],
                     uint64_t *size) {
  static const char hexd[] = "0123456789abcdef";
  unsigned char chunk[65536], md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  int rc = 0;

  *size = 0;
  if (ctx == NULL || fd < 0 ||
      EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    rc = XDS_EIO;
    goto out;
  }
  while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
    EVP_DigestUpdate(ctx, chunk, (size_t)n);
    *size += (uint64_t)n;
  }
  if (n < 0 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
    rc = XDS_EIO;
    goto out;
  }
  for (unsigned i = 0; i < 32; i++) {
    hex[2 * i] = hexd[md[i] >> 4];
    hex[2 * i + 1] = hexd[md[i] & 15];
  }
  hex[DIGEST_HEX_LEN] = '\0';
out:
  if (fd >= 0)
    close(fd);
  EVP_MD_CTX_free(ctx);
  return rc;
}

static int write_meta(const struct modcache *c, const char *hex,
                      const struct centry *e) {
  json_t *o = json_object(), *ids = json_array();
  char *text = NULL, *path = NULL;
  int rc = XDS_ENOMEM;

  if (o == NULL || ids == NULL)
    goto out;
  for (size_t i = 0; i < e->n_root_ids; i++)
    json_array_append_new(ids, json_string(e->root_ids[i]));
  json_object_set_new(o, "size", json_integer((json_int_t)e->size));
  json_object_set(o, "root_ids", ids);
  json_object_set_new(o, "private", json_boolean(e->is_private));
  text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  path = path_of(c, hex, "json");
  if (text == NULL || path == NULL)
    goto out;
  rc = write_atomic(c, path, text, strlen(text));
out:
  /* checksrc: allow alloc: json_dumps() allocates with malloc */
  free(text);
  xds_free(path);
  json_decref(ids);
  json_decref(o);
  return rc;
}

static void read_meta(const struct modcache *c, const char *hex,
                      struct centry *e) {
  struct xds_buf b;
  char *path = path_of(c, hex, "json");
  json_t *o = NULL, *ids;
  json_error_t jerr;
  size_t i, k = 0;

  e->is_private = 1; /* unknown: do not hand it to just anyone */
  if (path == NULL)
    return;
  if (read_small(path, MODCACHE_MAX_INDEX_FILE, &b) < 0) {
    xds_buf_cleanup(&b);
    xds_free(path);
    return;
  }
  o = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
  xds_buf_cleanup(&b);
  xds_free(path);
  if (json_is_boolean(json_object_get(o, "private")))
    e->is_private = json_is_true(json_object_get(o, "private"));
  ids = json_object_get(o, "root_ids");
  if (json_is_array(ids) && json_array_size(ids) > 0 &&
      json_array_size(ids) <= 64 &&
      (e->root_ids = xds_calloc(json_array_size(ids), sizeof(char *))) !=
          NULL) {
    for (i = 0; i < json_array_size(ids); i++) {
      const char *s = json_string_value(json_array_get(ids, i));

      if (s != NULL && (e->root_ids[k] = xds_strdup(s)) != NULL)
        k++;
    }
    e->n_root_ids = k;
  }
  json_decref(o);
}

static int save_resolutions(struct modcache *c) {
  json_t *doc = json_object(), *res = json_object(), *man = json_object();
  const char *key;
  void *val;
  size_t pos = 0;
  char *text = NULL, *path = NULL;
  int rc = XDS_ENOMEM;

  if (doc == NULL || res == NULL || man == NULL)
    goto out;
  while (xds_map_next(c->resolutions, &pos, &key, &val)) {
    struct resolution *r = val;
    json_t *o = json_pack("{s:s,s:s,s:I}", "sha256", r->hex, "manifest",
                          r->manifest, "at", (json_int_t)r->at);

    if (o == NULL || json_object_set_new(res, key, o) < 0)
      goto out;
  }
  pos = 0;
  while (xds_map_next(c->manifests, &pos, &key, &val))
    if (json_object_set_new(man, key, json_string(val)) < 0)
      goto out;
  json_object_set_new(doc, "version", json_integer(1));
  json_object_set(doc, "resolutions", res);
  json_object_set(doc, "manifests", man);
  text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
  path = xds_asprintf("%s/resolutions.json", c->dir);
  if (text == NULL || path == NULL)
    goto out;
  rc = write_atomic(c, path, text, strlen(text));
out:
  /* checksrc: allow alloc: json_dumps() allocates with malloc */
  free(text);
  xds_free(path);
  json_decref(res);
  json_decref(man);
  json_decref(doc);
  return rc;
}

static void load_resolutions(struct modcache *c) {
  struct xds_buf b;
  char *path = xds_asprintf("%s/resolutions.json", c->dir);
  json_t *doc, *v;
  json_error_t jerr;
  const char *key;

  if (path == NULL)
    return;
  if (read_small(path, MODCACHE_MAX_INDEX_FILE, &b) < 0) {
    xds_buf_cleanup(&b);
    xds_free(path);
    return;
  }
  xds_free(path);
  doc = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
  xds_buf_cleanup(&b);
  json_object_foreach(json_object_get(doc, "resolutions"), key, v) {
    const char *hex = json_string_value(json_object_get(v, "sha256"));
    const char *man = json_string_value(json_object_get(v, "manifest"));
    struct resolution *r;

    if (!digest_is_hex(hex) || (man && man[0] && !digest_is_hex(man)) ||
        xds_map_count(c->resolutions) >= MODCACHE_MAX_RESOLUTIONS)
      continue;
    r = xds_calloc(1, sizeof(*r));
    if (r == NULL)
      break;
    memcpy(r->hex, hex, sizeof(r->hex));
    snprintf(r->manifest, sizeof(r->manifest), "%s", man ? man : "");
    r->at = json_integer_value(json_object_get(v, "at"));
    if (xds_map_put(c->resolutions, key, r, NULL) < 0) {
      xds_free(r);
      break;
    }
  }
  json_object_foreach(json_object_get(doc, "manifests"), key, v) {
    const char *hex = json_string_value(v);
    char *copy;

    if (!digest_is_hex(key) || !digest_is_hex(hex) ||
        xds_map_count(c->manifests) >= MODCACHE_MAX_RESOLUTIONS)
      continue;
    copy = xds_strdup(hex);
    if (copy == NULL || xds_map_put(c->manifests, key, copy, NULL) < 0) {
      xds_free(copy);
      break;
    }
  }
  json_decref(doc);
}

/* Scans sha256/, re-hashing each module; drops what does not verify. */
static int load_entries(struct modcache *c) {
  char *dirpath = xds_asprintf("%s/sha256", c->dir);
  DIR *d;
  struct dirent *de;
  int rc = 0;

  if (dirpath == NULL)
    return XDS_ENOMEM;
  d = opendir(dirpath);
  if (d == NULL) {
    xds_free(dirpath);
    return XDS_EIO;
  }
  while ((de = readdir(d)) != NULL) {
    char hex[DIGEST_HEX_LEN + 1], got[DIGEST_HEX_LEN + 1];
    size_t n = strlen(de->d_name);
    char *path;
    struct stat st;
    struct centry *e;
    uint64_t size;

    if (n != DIGEST_HEX_LEN + 5 ||
        strcmp(de->d_name + DIGEST_HEX_LEN, ".wasm") != 0)
      continue;
    memcpy(hex, de->d_name, DIGEST_HEX_LEN);
    hex[DIGEST_HEX_LEN] = '\0';
    path = path_of(c, hex, "wasm");
    if (path == NULL) {
      rc = XDS_ENOMEM;
      break;
    }
    if (!digest_is_hex(hex) || hash_file(path, got, &size) < 0 ||
        strcmp(got, hex) != 0 || stat(path, &st) < 0) {
      char *meta = path_of(c, hex, "json");

      unlink(path); /* corrupt or foreign: never serve it */
      if (meta != NULL)
        unlink(meta);
      xds_free(meta);
      xds_free(path);
      continue;
    }
    xds_free(path);
    e = xds_calloc(1, sizeof(*e));
    if (e == NULL) {
      rc = XDS_ENOMEM;
      break;
    }
    e->size = size;
    e->last_use = e->last_touch =
        (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    read_meta(c, hex, e);
    if (xds_map_put(c->entries, hex, e, NULL) < 0) {
      centry_free(e);
      rc = XDS_ENOMEM;
      break;
    }
    c->bytes += size;
  }
  closedir(d);
  xds_free(dirpath);
  return rc;
}

static void clean_tmp(const struct modcache *c) {
  char *dirpath = xds_asprintf("%s/tmp", c->dir);
  DIR *d = dirpath ? opendir(dirpath) : NULL;
  struct dirent *de;

  while (d != NULL && (de = readdir(d)) != NULL) {
    char *p;

    if (de->d_name[0] == '.')
      continue;
    p = xds_asprintf("%s/%s", dirpath, de->d_name);
    if (p != NULL)
      unlink(p);
    xds_free(p);
  }
  if (d != NULL)
    closedir(d);
  xds_free(dirpath);
}

static int make_dir(const char *path) {
  return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : XDS_EIO;
}

/* ---- eviction -------------------------------------------------------- */

static void remove_entry(struct modcache *c, const char *hex) {
  char key[DIGEST_HEX_LEN + 1];
  struct centry *e;
  char *p;

  memcpy(key, hex, sizeof(key)); /* hex may be the map's own key */
  e = xds_map_del(c->entries, key);
  if (e == NULL)
    return;
  c->bytes -= e->size;
  if ((p = path_of(c, key, "wasm")) != NULL)
    unlink(p);
  xds_free(p);
  if ((p = path_of(c, key, "json")) != NULL)
    unlink(p);
  xds_free(p);
  centry_free(e);
}

static void evict(struct modcache *c) {
  while (c->max_bytes > 0 && c->bytes > c->max_bytes) {
    const char *key, *victim = NULL;
    void *val;
    size_t pos = 0;
    int64_t oldest = INT64_MAX;

    while (xds_map_next(c->entries, &pos, &key, &val)) {
      struct centry *e = val;

      if (!e->referenced && e->last_use < oldest) {
        oldest = e->last_use;
        victim = key;
      }
    }
    if (victim == NULL)
      return; /* everything left is in use */
    remove_entry(c, victim);
    c->evictions++;
  }
}

/* ---- public ---------------------------------------------------------- */

int modcache_open(const char *dir, uint64_t max_bytes, struct modcache **out,
                  struct xds_err *err) {
  struct modcache *c = xds_calloc(1, sizeof(*c));
  char *sub = NULL;
  int rc;

  *out = NULL;
  if (c == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  pthread_mutex_init(&c->lock, NULL);
  c->max_bytes = max_bytes;
  c->dir = xds_strdup(dir);
  c->entries = xds_map_new();
  c->resolutions = xds_map_new();
  c->manifests = xds_map_new();
  if (c->dir == NULL || c->entries == NULL || c->resolutions == NULL ||
      c->manifests == NULL) {
    rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    goto fail;
  }
  /* The cache and its missing parents (a fresh machine has no
   * /var/cache/wasmxds), private to this user. */
  rc = xds_mkdir_p(dir, 0700);
  if (rc == XDS_EINVAL)
    rc = XDS_EIO; /* an empty --module-cache */
  for (int i = 0; rc == 0 && i < 2; i++) {
    sub = xds_asprintf("%s/%s", dir, i == 0 ? "sha256" : "tmp");
    rc = sub == NULL ? XDS_ENOMEM : make_dir(sub);
    xds_free(sub);
  }
  if (rc == 0 && access(dir, R_OK | W_OK | X_OK) < 0)
    rc = XDS_EIO;
  if (rc < 0) {
    xds_err_set(err, rc, "--module-cache %s: cannot create or write: %s", dir,
                rc == XDS_EIO ? strerror(errno) : xds_strerror(rc));
    goto fail;
  }
  clean_tmp(c);
  rc = load_entries(c);
  if (rc < 0) {
    xds_err_set(err, rc, "--module-cache %s: cannot read: %s", dir,
                xds_strerror(rc));
    goto fail;
  }
  load_resolutions(c);
  evict(c);
  *out = c;
  return 0;
fail:
  modcache_free(c);
  return rc;
}

void modcache_free(struct modcache *c) {
  if (c == NULL)
    return;
  xds_map_free(c->entries, centry_free);
  xds_map_free(c->resolutions, xds_free);
  xds_map_free(c->manifests, xds_free);
  xds_free(c->dir);
  pthread_mutex_destroy(&c->lock);
  xds_free(c);
}

int modcache_put(struct modcache *c, const char *hex, const void *data,
                 size_t len, char *const *root_ids, size_t n_root_ids,
                 int is_private, struct xds_err *err) {
  char got[DIGEST_HEX_LEN + 1];
  struct centry *e, *fresh = NULL;
  char *path = NULL;
  int rc;

  if (!digest_is_hex(hex))
    return xds_err_set(err, XDS_EINVAL, "cache: bad digest");
  rc = digest_sha256_hex(data, len, got);
  if (rc < 0 || strcmp(got, hex) != 0)
    return xds_err_set(err, XDS_EINVAL, "cache: bytes hash to %s, not %s", got,
                       hex);
  pthread_mutex_lock(&c->lock);
  e = xds_map_get(c->entries, hex);
  if (e == NULL) {
    fresh = e = xds_calloc(1, sizeof(*e));
    path = path_of(c, hex, "wasm");
    if (e == NULL || path == NULL) {
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
      goto out;
    }
    e->is_private = is_private;
    rc = write_atomic(c, path, data, len);
    if (rc < 0) {
      xds_err_set(err, rc, "cache: cannot write %s: %s", path,
                  xds_strerror(rc));
      goto out;
    }
    e->size = len;
    rc = xds_map_put(c->entries, hex, e, NULL);
    if (rc < 0) {
      unlink(path);
      xds_err_set(err, rc, "out of memory");
      goto out;
    }
    fresh = NULL;
    c->bytes += len;
  }
  if (!is_private)
    e->is_private = 0;
  /* Its extension is about to reference it: protect it from eviction
   * until the next modcache_set_referenced says otherwise. */
  e->referenced = 1;
  if (n_root_ids > 0) {
    char **ids;

    if (xds_strv_dup(root_ids, n_root_ids, &ids) == 0) {
      xds_strv_free(e->root_ids, e->n_root_ids);
      e->root_ids = ids;
      e->n_root_ids = n_root_ids;
    }
  }
  e->last_use = e->last_touch = now_ns();
  rc = write_meta(c, hex, e);
  if (rc < 0) {
    xds_err_set(err, rc, "cache: cannot write metadata of %s", hex);
    goto out;
  }
  evict(c);
out:
  centry_free(fresh);
  xds_free(path);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int modcache_has(struct modcache *c, const char *hex,
                 struct modcache_meta *meta) {
  struct centry *e;
  int found = 0;

  if (!digest_is_hex(hex))
    return 0;
  pthread_mutex_lock(&c->lock);
  e = xds_map_get(c->entries, hex);
  if (e != NULL) {
    found = 1;
    if (meta != NULL) {
      memset(meta, 0, sizeof(*meta));
      meta->size = e->size;
      meta->is_private = e->is_private;
      if (xds_strv_dup(e->root_ids, e->n_root_ids, &meta->root_ids) == 0)
        meta->n_root_ids = e->n_root_ids;
    }
  }
  pthread_mutex_unlock(&c->lock);
  return found;
}

void modcache_meta_cleanup(struct modcache_meta *m) {
  xds_strv_free(m->root_ids, m->n_root_ids);
  m->root_ids = NULL;
  m->n_root_ids = 0;
}

int modcache_open_module(struct modcache *c, const char *hex, int *fd,
                         uint64_t *size, int *is_private) {
  struct centry *e;
  char *path;
  int rc = 0;
  int64_t now;

  *fd = -1;
  if (!digest_is_hex(hex))
    return XDS_ENOTFOUND;
  path = path_of(c, hex, "wasm");
  if (path == NULL)
    return XDS_ENOMEM;
  pthread_mutex_lock(&c->lock);
  e = xds_map_get(c->entries, hex);
  if (e == NULL) {
    rc = XDS_ENOTFOUND;
    goto out;
  }
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) {
    rc = XDS_EIO;
    goto out;
  }
  *size = e->size;
  *is_private = e->is_private;
  now = now_ns();
  e->last_use = now;
  if (now - e->last_touch > TOUCH_INTERVAL_NS) {
    e->last_touch = now;
    futimens(*fd, NULL); /* recency survives a restart; best effort */
  }
out:
  pthread_mutex_unlock(&c->lock);
  xds_free(path);
  return rc;
}

int modcache_resolution_put(struct modcache *c, const char *key,
                            const char *hex, const char *manifest_hex) {
  struct resolution *r = xds_calloc(1, sizeof(*r)), *old = NULL;
  char *mcopy = NULL;
  void *mold = NULL;
  int rc;

  if (r == NULL)
    return XDS_ENOMEM;
  snprintf(r->hex, sizeof(r->hex), "%s", hex);
  snprintf(r->manifest, sizeof(r->manifest), "%s",
           manifest_hex ? manifest_hex : "");
  r->at = (int64_t)time(NULL);
  pthread_mutex_lock(&c->lock);
  if (xds_map_count(c->resolutions) >= MODCACHE_MAX_RESOLUTIONS &&
      xds_map_get(c->resolutions, key) == NULL) {
    /* Forget the oldest resolution to make room. */
    const char *k, *oldest_key = NULL;
    void *v;
    size_t pos = 0;
    int64_t oldest = INT64_MAX;
    char victim[1024];

    while (xds_map_next(c->resolutions, &pos, &k, &v))
      if (((struct resolution *)v)->at < oldest) {
        oldest = ((struct resolution *)v)->at;
        oldest_key = k;
      }
    if (oldest_key != NULL) {
      snprintf(victim, sizeof(victim), "%s", oldest_key);
      xds_free(xds_map_del(c->resolutions, victim));
    }
  }
  rc = xds_map_put(c->resolutions, key, r, (void **)&old);
  if (rc < 0) {
    xds_free(r);
    goto out;
  }
  xds_free(old);
  if (manifest_hex != NULL && manifest_hex[0] != '\0' &&
      xds_map_count(c->manifests) < MODCACHE_MAX_RESOLUTIONS) {
    mcopy = xds_strdup(hex);
    if (mcopy != NULL &&
        xds_map_put(c->manifests, manifest_hex, mcopy, &mold) == 0)
      mcopy = NULL;
    xds_free(mold);
    xds_free(mcopy);
  }
  rc = save_resolutions(c);
out:
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int modcache_resolution_get(struct modcache *c, const char *key,
                            char hex[DIGEST_HEX_LEN + 1], int64_t *at) {
  struct resolution *r;
  int rc = XDS_ENOTFOUND;

  pthread_mutex_lock(&c->lock);
  r = xds_map_get(c->resolutions, key);
  if (r != NULL) {
    memcpy(hex, r->hex, DIGEST_HEX_LEN + 1);
    if (at != NULL)
      *at = r->at;
    rc = 0;
  }
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int modcache_manifest_get(struct modcache *c, const char *manifest_hex,
                          char hex[DIGEST_HEX_LEN + 1]) {
  const char *h;
  int found = 0;

  pthread_mutex_lock(&c->lock);
  h = xds_map_get(c->manifests, manifest_hex);
  if (h != NULL && xds_map_get(c->entries, h) != NULL) {
    memcpy(hex, h, DIGEST_HEX_LEN + 1);
    found = 1;
  }
  pthread_mutex_unlock(&c->lock);
  return found;
}

int modcache_set_referenced(struct modcache *c, const char *const *hexes,
                            size_t n) {
  const char *key;
  void *val;
  size_t pos = 0;

  pthread_mutex_lock(&c->lock);
  while (xds_map_next(c->entries, &pos, &key, &val))
    ((struct centry *)val)->referenced = 0;
  for (size_t i = 0; i < n; i++) {
    struct centry *e = hexes[i] ? xds_map_get(c->entries, hexes[i]) : NULL;

    if (e != NULL)
      e->referenced = 1;
  }
  evict(c);
  pthread_mutex_unlock(&c->lock);
  return 0;
}

uint64_t modcache_bytes(struct modcache *c) {
  uint64_t b;

  pthread_mutex_lock(&c->lock);
  b = c->bytes;
  pthread_mutex_unlock(&c->lock);
  return b;
}

uint64_t modcache_evictions(struct modcache *c) {
  uint64_t n;

  pthread_mutex_lock(&c->lock);
  n = c->evictions;
  pthread_mutex_unlock(&c->lock);
  return n;
}

size_t modcache_count(struct modcache *c) {
  size_t n;

  pthread_mutex_lock(&c->lock);
  n = xds_map_count(c->entries);
  pthread_mutex_unlock(&c->lock);
  return n;
}
