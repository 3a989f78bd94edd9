/*
 * file_store.c: walk, parse, decode, retain, build.
 *
 * A load runs in five steps: (1) collect the file list (sorted, bounded);
 * (2) read each file and, unless the cache holds a result for exactly these
 * bytes at this path, parse and decode it into a per-file result: its
 * valid records in document order, its problems, whether it was unusable
 * (unreadable, not YAML, empty) or held an anonymous broken document, and
 * which identities its broken documents claimed. Files are independent, so
 * step 2 runs on a few threads for large stores; (3) merge the results in
 * path order into a catalog builder (which settles duplicates) and the
 * caller's problem list; (4) carry over from the previous catalog what the
 * notes say must be kept; (5) finish the catalog and refresh the cache.
 * Only step 1 touches directories and only step 2 reads files.
 *
 * Records are shared, not copied, between a file's cached result, the
 * catalogs built from it and a kept last-good version (model.h refcounts),
 * so a reload after one file changed costs a read and a hash of every file,
 * one parse, and a rebuild of the index.
 */
#include "store/file_store.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/map.h"
#include "store/decode.h"
#include "store/ydoc.h"

struct strv {
  char **v;
  size_t n;
  size_t cap;
};

/* What one file yielded: everything a load needs from it, so a result can
 * be cached and replayed while the file's bytes stay the same. */
struct file_result {
  char *path;
  int cacheable; /* the bytes were read: size and hash are valid */
  size_t size;
  uint64_t hash[2];
  const char *why;          /* non-NULL: unusable, and why (static text) */
  int anon_broken;          /* a broken document of unknown identity */
  struct strv broken_exts;  /* fqns claimed by broken documents */
  struct strv broken_tmpls; /* names claimed by broken documents */
  size_t n_docs;            /* documents that are not empty, broken included */
  struct problems pb;       /* this file's problems, in order */
  struct wasm_ext **exts;   /* valid records, document order; one ref each */
  size_t n_exts;
  size_t cap_exts;
  struct listener_tmpl **tmpls;
  size_t n_tmpls;
  size_t cap_tmpls;
};

struct file_store_cache {
  struct file_result **v; /* sorted by path */
  size_t n;
};

struct load {
  struct problems *pb;
  const struct store_hooks *hooks;
  const struct file_store_cache *cache; /* read-only while loading */
  struct strv files;                    /* sorted */
  int is_dir;                           /* the store is a directory */
  struct strv unreadable;     /* dirs and files that could not be read */
  struct strv broken_exts;    /* fqns claimed by broken documents */
  struct strv broken_tmpls;   /* names claimed by broken documents */
  struct file_result **fresh; /* parallel to files: parsed this time */
  struct file_result **used;  /* parallel to files: fresh or cached */
  atomic_size_t next;         /* the next file a worker takes */
  atomic_int failed;          /* XDS_ENOMEM in a worker */
  dev_t anc_dev[FILE_STORE_MAX_DEPTH + 1];
  ino_t anc_ino[FILE_STORE_MAX_DEPTH + 1];
  struct xds_map *seen; /* "dev:ino" -> the path it was read by (owned) */
  size_t n_dirs;        /* directories read, the store's own included */
};

/* ---- string vectors ---- */

static int strv_push(struct strv *s, char *str) {
  if (str == NULL)
    return XDS_ENOMEM;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    char **v = xds_realloc(s->v, cap * sizeof(*v));

    if (v == NULL) {
      xds_free(str);
      return XDS_ENOMEM;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = str;
  return 0;
}

static void strv_cleanup(struct strv *s) {
  for (size_t i = 0; i < s->n; i++)
    xds_free(s->v[i]);
  xds_free(s->v);
  memset(s, 0, sizeof(*s));
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strv_sort(struct strv *s) {
  if (s->n > 1)
    qsort(s->v, s->n, sizeof(*s->v), str_cmp);
}

/* Position of str in the sorted s, or -1. */
static long strv_find(const struct strv *s, const char *str) {
  char **hit;

  if (s->n == 0)
    return -1;
  hit = bsearch(&str, s->v, s->n, sizeof(*s->v), str_cmp);
  return hit == NULL ? -1 : (long)(hit - s->v);
}

/* ---- walk ---- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);

  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int file_store_wants_name(const char *name, int is_dir) {
  size_t n = strlen(name);

  if (n == 0 || name[0] == '.')
    return 0; /* hidden, ".", "..", ".#lock", ConfigMap "..data" */
  if (name[n - 1] == '~' || ends_with(name, ".swp") ||
      (name[0] == '#' && n > 1 && name[n - 1] == '#'))
    return 0;
  if (is_dir)
    return 1;
  return ends_with(name, ".yaml") || ends_with(name, ".yml");
}

/* The directories read so far, by device and inode. */
static const char *seen_get(const struct load *l, const struct stat *st) {
  char key[64];

  snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st->st_dev,
           (unsigned long long)st->st_ino);
  return xds_map_get(l->seen, key);
}

/* Records st as read by path. Returns 0 or XDS_ENOMEM. */
static int seen_put(struct load *l, const struct stat *st, const char *path) {
  char key[64], *copy = xds_strdup(path);

  snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st->st_dev,
           (unsigned long long)st->st_ino);
  if (copy == NULL || xds_map_put(l->seen, key, copy, NULL) < 0) {
    xds_free(copy);
    return XDS_ENOMEM;
  }
  l->n_dirs++;
  return 0;
}

static int walk_dir(struct load *l, const char *dir, int depth,
                    struct xds_err *err) {
  struct strv names = {0};
  struct dirent *de;
  DIR *d;
  int rc = 0;

  d = opendir(dir);
  if (d == NULL) {
    if (depth == 0)
      return xds_err_set(err, XDS_EIO, "%s: cannot read directory: %s", dir,
                         strerror(errno));
    rc = problems_add(l->pb, PROBLEM_ERROR, dir, 0, 0, "",
                      "cannot read directory: %s; keeping the last good "
                      "resources of its files",
                      strerror(errno));
    return rc < 0 ? rc : strv_push(&l->unreadable, xds_strdup(dir));
  }
  /* Regular files with names the loader skips are not even stat'ed. */
  while ((de = readdir(d)) != NULL && rc == 0)
    if (de->d_name[0] != '.' &&
        (de->d_type != DT_REG || file_store_wants_name(de->d_name, 0)))
      rc = strv_push(&names, xds_strdup(de->d_name));
  closedir(d);
  strv_sort(&names);
  for (size_t i = 0; i < names.n && rc == 0; i++) {
    struct stat st;
    char *child;
    const char *seen;
    int loop = 0;

    child =
        xds_asprintf("%s%s%s", dir, ends_with(dir, "/") ? "" : "/", names.v[i]);
    if (child == NULL) {
      rc = XDS_ENOMEM;
      break;
    }
    if (stat(child, &st) < 0) {
      /* A dangling symlink, or a file deleted meanwhile. A .yaml name is
       * reported: it may be mid-swap, and its resources are kept. */
      if (file_store_wants_name(names.v[i], 0)) {
        rc = problems_add(l->pb, PROBLEM_ERROR, child, 0, 0, "",
                          "cannot read: %s; keeping the last good "
                          "resources of this file",
                          strerror(errno));
        if (rc == 0) {
          rc = strv_push(&l->unreadable, child);
          child = NULL;
        }
      }
      xds_free(child);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!file_store_wants_name(names.v[i], 1)) {
        xds_free(child);
        continue;
      }
      for (int a = 0; a <= depth; a++)
        if (l->anc_dev[a] == st.st_dev && l->anc_ino[a] == st.st_ino)
          loop = 1;
      if (loop) {
        rc = problems_add(l->pb, PROBLEM_WARNING, child, 0, 0, "",
                          "skipped: a symlink back to a directory above it");
      } else if ((seen = seen_get(l, &st)) != NULL) {
        /* Each directory is read once, by the first path in walk order:
         * symlinks fanning out to the same directories cost nothing. */
        rc = problems_add(l->pb, PROBLEM_WARNING, child, 0, 0, "",
                          "skipped: the same directory was already read as "
                          "%s",
                          seen);
      } else if (depth + 1 > FILE_STORE_MAX_DEPTH) {
        rc = problems_add(l->pb, PROBLEM_ERROR, child, 0, 0, "",
                          "skipped: deeper than %d directory levels",
                          FILE_STORE_MAX_DEPTH);
      } else if (l->n_dirs >= FILE_STORE_MAX_DIRS) {
        rc = xds_err_set(err, XDS_ETOOBIG,
                         "%s: more than %d directories in the store (the "
                         "walk stopped here)",
                         child, FILE_STORE_MAX_DIRS);
      } else {
        l->anc_dev[depth + 1] = st.st_dev;
        l->anc_ino[depth + 1] = st.st_ino;
        rc = seen_put(l, &st, child);
        if (rc == 0)
          rc = walk_dir(l, child, depth + 1, err);
      }
      xds_free(child);
      continue;
    }
    if (!S_ISREG(st.st_mode) || !file_store_wants_name(names.v[i], 0)) {
      xds_free(child);
      continue;
    }
    if (l->files.n >= FILE_STORE_MAX_FILES) {
      xds_free(child);
      rc = xds_err_set(err, XDS_ETOOBIG, "%s: more than %d store files", dir,
                       FILE_STORE_MAX_FILES);
      break;
    }
    rc = strv_push(&l->files, child);
  }
  strv_cleanup(&names);
  return rc;
}

static int collect_files(struct load *l, const char *path,
                         struct xds_err *err) {
  struct stat st;
  int rc;

  if (stat(path, &st) < 0) {
    if (errno == ENOENT)
      return xds_err_set(err, XDS_ENOTFOUND, "%s: no such file or directory",
                         path);
    return xds_err_set(err, XDS_EIO, "%s: %s", path, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode))
    return strv_push(&l->files, xds_strdup(path));
  l->is_dir = 1;
  l->anc_dev[0] = st.st_dev;
  l->anc_ino[0] = st.st_ino;
  l->seen = xds_map_new();
  if (l->seen == NULL)
    return XDS_ENOMEM;
  rc = seen_put(l, &st, path);
  if (rc == 0)
    rc = walk_dir(l, path, 0, err);
  if (rc < 0)
    return rc;
  /* Names were walked in order per directory; sort the full paths so the
   * order is plain byte order of the path whatever the nesting. */
  strv_sort(&l->files);
  return 0;
}

/* ---- per-file results and the cache ---- */

static void file_result_free(struct file_result *fr) {
  if (fr == NULL)
    return;
  xds_free(fr->path);
  strv_cleanup(&fr->broken_exts);
  strv_cleanup(&fr->broken_tmpls);
  problems_cleanup(&fr->pb);
  for (size_t i = 0; i < fr->n_exts; i++)
    wasm_ext_free(fr->exts[i]);
  for (size_t i = 0; i < fr->n_tmpls; i++)
    listener_tmpl_free(fr->tmpls[i]);
  xds_free(fr->exts);
  xds_free(fr->tmpls);
  xds_free(fr);
}

struct file_store_cache *file_store_cache_new(void) {
  return xds_calloc(1, sizeof(struct file_store_cache));
}

void file_store_cache_free(struct file_store_cache *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++)
    file_result_free(c->v[i]);
  xds_free(c->v);
  xds_free(c);
}

size_t file_store_cache_files(const struct file_store_cache *c) {
  return c != NULL ? c->n : 0;
}

static struct file_result *cache_find(const struct file_store_cache *c,
                                      const char *path) {
  size_t lo = 0, hi = c != NULL ? c->n : 0;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(c->v[mid]->path, path);

    if (r == 0)
      return c->v[mid];
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Two independent 64-bit lanes over 8-byte words, finished with MurmurHash3's
 * fmix64: 128 bits that tell an edited file from the cached one. */
static uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

static void hash_bytes(const char *p, size_t n, uint64_t out[2]) {
  uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0x6a09e667f3bcc909ull + n;
  size_t i = 0;

  for (; i + 8 <= n; i += 8) {
    uint64_t w;

    memcpy(&w, p + i, 8);
    a = (a ^ w) * 0x100000001b3ull;
    a = (a << 29) | (a >> 35);
    b = (b + w) * 0x87c37b91114253d5ull;
    b ^= b >> 31;
  }
  for (; i < n; i++) {
    a = (a ^ (unsigned char)p[i]) * 0x100000001b3ull;
    b = (b + (unsigned char)p[i]) * 0x4cf5ad432745937full;
  }
  out[0] = fmix64(a ^ fmix64(b));
  out[1] = fmix64(b + 0x52dce729 * a);
}

static int push_ext(struct file_result *fr, struct wasm_ext *e) {
  if (fr->n_exts == fr->cap_exts) {
    size_t cap = fr->cap_exts ? fr->cap_exts * 2 : 16;
    struct wasm_ext **v = xds_realloc(fr->exts, cap * sizeof(*v));

    if (v == NULL) {
      wasm_ext_free(e);
      return XDS_ENOMEM;
    }
    fr->exts = v;
    fr->cap_exts = cap;
  }
  fr->exts[fr->n_exts++] = e;
  return 0;
}

static int push_tmpl(struct file_result *fr, struct listener_tmpl *t) {
  if (fr->n_tmpls == fr->cap_tmpls) {
    size_t cap = fr->cap_tmpls ? fr->cap_tmpls * 2 : 16;
    struct listener_tmpl **v = xds_realloc(fr->tmpls, cap * sizeof(*v));

    if (v == NULL) {
      listener_tmpl_free(t);
      return XDS_ENOMEM;
    }
    fr->tmpls = v;
    fr->cap_tmpls = cap;
  }
  fr->tmpls[fr->n_tmpls++] = t;
  return 0;
}

/* ---- parse and decode (workers) ---- */

static int note_broken(struct file_result *fr, enum decode_kind kind,
                       const char *id) {
  if (id == NULL || kind == DECODE_NONE) {
    fr->anon_broken = 1;
    return 0;
  }
  return strv_push(kind == DECODE_LISTENER_TMPL ? &fr->broken_tmpls
                                                : &fr->broken_exts,
                   xds_strdup(id));
}

/* Runs the caller's check on a template that decoded cleanly. Returns 0
 * (keep it), 1 (rejected: reported and freed) or XDS_ENOMEM. */
static int check_tmpl(const struct store_hooks *h, struct file_result *fr,
                      struct listener_tmpl *t) {
  size_t errors = fr->pb.n_errors;
  int rc;

  if (h == NULL || h->check_tmpl == NULL)
    return 0;
  rc = h->check_tmpl(h->ctx, t, &fr->pb);
  if (rc >= 0)
    return 0;
  if (rc == XDS_ENOMEM) {
    listener_tmpl_free(t);
    return rc;
  }
  /* A hook that rejects without saying why still gets a located error. */
  if (fr->pb.n_errors == errors &&
      problems_add(&fr->pb, PROBLEM_ERROR, t->loc.source, t->loc.line,
                   t->loc.column, "",
                   "ListenerTemplate \"%s\" was rejected by the server's "
                   "check",
                   t->name) < 0) {
    listener_tmpl_free(t);
    return XDS_ENOMEM;
  }
  rc = note_broken(fr, DECODE_LISTENER_TMPL, t->name);
  listener_tmpl_free(t);
  return rc < 0 ? rc : 1;
}

/* Decodes one resource (a document, or an item of a List) into fr;
 * broken: the document had YAML issues (already reported). The problems
 * fr->pb holds from index `from` on are this resource's: a broken one
 * whose identity is known gets them tagged with it (status pages show
 * them next to its last good version). */
static int load_one(const struct load *l, struct file_result *fr,
                    const struct ynode *root, int broken, size_t from) {
  struct decode_result r = {0};
  int rc = decode_document(root, &fr->pb, &r);

  if (rc == XDS_ENOMEM) {
    decode_result_cleanup(&r);
    return rc;
  }
  if (rc < 0 || broken) {
    rc = note_broken(fr, r.kind, r.id);
    if (rc == 0 && r.id != NULL && r.kind != DECODE_NONE)
      rc = problems_set_resource(&fr->pb, from, r.id);
  } else if (r.ext != NULL) {
    rc = push_ext(fr, r.ext);
    r.ext = NULL;
  } else if (r.kind == DECODE_WASM_DEPLOYMENT) {
    /* Each filter of a WasmDeployment is its own record. */
    for (size_t i = 0; i < r.n_exts && rc >= 0; i++) {
      rc = push_ext(fr, r.exts[i]);
      r.exts[i] = NULL;
    }
  } else {
    struct listener_tmpl *t = r.tmpl;
    char *name = xds_strdup(t->name);

    r.tmpl = NULL;
    rc = name == NULL ? XDS_ENOMEM : check_tmpl(l->hooks, fr, t);
    if (rc == 0)
      rc = push_tmpl(fr, t);
    else if (rc == 1)
      rc = problems_set_resource(&fr->pb, from, name);
    else if (name == NULL)
      listener_tmpl_free(t);
    xds_free(name);
  }
  decode_result_cleanup(&r);
  return rc;
}

static int load_docs(const struct load *l, struct file_result *fr,
                     struct ydoc *d) {
  int rc = 0;

  for (size_t i = 0; i < ydoc_count(d) && rc >= 0; i++) {
    const struct ynode *root = ydoc_root(d, i), *items;
    size_t n_issues = ydoc_issue_count(d, i), from = fr->pb.n;

    if (ynode_kind(root) == YNODE_NULL)
      continue; /* an empty document: a stray `---` or only comments */
    fr->n_docs++;
    for (size_t k = 0; k < n_issues && rc >= 0; k++) {
      const struct ydoc_issue *is = ydoc_issue(d, i, k);

      rc = problems_add(&fr->pb, PROBLEM_ERROR, fr->path, is->line, is->column,
                        "", "%s", is->msg);
    }
    if (rc < 0)
      break;
    /* A List (kubectl get -o yaml) holds resources under items. */
    rc = decode_list(root, &fr->pb, &items);
    if (rc == XDS_EINVAL) {
      fr->anon_broken = 1;
      rc = 0;
    } else if (rc == 1) {
      rc = 0;
      for (size_t k = 0; k < ynode_len(items) && rc >= 0; k++)
        rc = load_one(l, fr, ynode_seq_item(items, k), n_issues > 0,
                      k == 0 ? from : fr->pb.n);
    } else if (rc == 0) {
      rc = load_one(l, fr, root, n_issues > 0, from);
    }
  }
  return rc < 0 ? rc : 0;
}

/* Strips a leading "path: " that ydoc puts in its messages. */
static const char *reason(const char *msg, const char *path) {
  size_t n = strlen(path);

  if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
    return msg + n + 2;
  return msg;
}

/* Reads one file; parses and decodes it into a new result unless the cache
 * has one for the same bytes. Sets l->used[i] (and l->fresh[i] when a new
 * result was made). Returns 0 or XDS_ENOMEM. */
static int load_file(struct load *l, size_t i) {
  const char *path = l->files.v[i];
  struct file_result *fr, *hit;
  struct xds_err xerr;
  struct xds_buf text;
  struct ydoc *d = NULL;
  const char *msg;
  int rc, line, column;

  fr = xds_calloc(1, sizeof(*fr));
  if (fr == NULL)
    return XDS_ENOMEM;
  problems_init(&fr->pb, l->pb->max);
  l->fresh[i] = l->used[i] = fr;
  if ((fr->path = xds_strdup(path)) == NULL)
    return XDS_ENOMEM;
  rc = ydoc_read_file(path, &text, &xerr);
  if (rc == XDS_ENOMEM)
    return rc;
  if (rc < 0) {
    fr->why = "its file cannot be read";
    return problems_add(&fr->pb, PROBLEM_ERROR, path, 0, 0, "",
                        "%s; keeping the last good resources of this file",
                        reason(xerr.msg, path));
  }
  fr->cacheable = 1;
  fr->size = text.len;
  hash_bytes(text.data != NULL ? text.data : "", text.len, fr->hash);
  hit = cache_find(l->cache, path);
  if (hit != NULL && hit->size == fr->size && hit->hash[0] == fr->hash[0] &&
      hit->hash[1] == fr->hash[1]) {
    xds_buf_cleanup(&text);
    file_result_free(fr);
    l->fresh[i] = NULL;
    l->used[i] = hit;
    return 0;
  }
  if (text.len == 0) {
    /* An editor that truncates before it writes shows an empty file for a
     * moment: not a deliberate deletion of everything in it. */
    xds_buf_cleanup(&text);
    fr->why = "its file is empty (delete the file, or leave a `---` in it, "
              "to remove its resources)";
    return 0;
  }
  rc = ydoc_parse(path, text.data, text.len, &d, &xerr);
  xds_buf_cleanup(&text);
  if (rc == XDS_ENOMEM)
    return rc;
  rc = 0;
  if (ydoc_error(d, &line, &column, &msg) != 0) {
    fr->why = "its file is not valid YAML";
    rc = problems_add(&fr->pb, PROBLEM_ERROR, path, line, column, "",
                      "not valid YAML: %s; keeping the last good resources "
                      "of this file not defined before this point",
                      msg);
  }
  /* The documents complete before a syntax error still load. */
  if (rc == 0)
    rc = load_docs(l, fr, d);
  ydoc_free(d);
  /* The file's problems top to bottom, not in the order the decoder
   * checked fields in. */
  problems_sort(&fr->pb);
  return rc;
}

static void *worker(void *arg) {
  struct load *l = arg;

  for (;;) {
    size_t i = atomic_fetch_add(&l->next, 1);

    if (i >= l->files.n || atomic_load(&l->failed) != 0)
      break;
    if (load_file(l, i) < 0)
      atomic_store(&l->failed, XDS_ENOMEM);
  }
  return NULL;
}

/* Loads every file: on this thread, plus up to FILE_STORE_MAX_THREADS - 1
 * helpers for a large store on a machine with more than one core. */
static int load_files(struct load *l) {
  pthread_t tids[FILE_STORE_MAX_THREADS];
  size_t n_threads = 0, want = 1;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);

  if (l->files.n >= 8 && cpus > 1)
    want = (size_t)cpus < FILE_STORE_MAX_THREADS ? (size_t)cpus
                                                 : FILE_STORE_MAX_THREADS;
  if (want > l->files.n / 4)
    want = l->files.n / 4 > 0 ? l->files.n / 4 : 1;
  atomic_init(&l->next, 0);
  atomic_init(&l->failed, 0);
  for (size_t t = 1; t < want; t++) {
    if (pthread_create(&tids[n_threads], NULL, worker, l) != 0)
      break; /* fewer helpers; this thread still does the rest */
    n_threads++;
  }
  worker(l);
  for (size_t t = 0; t < n_threads; t++)
    pthread_join(tids[t], NULL);
  return atomic_load(&l->failed);
}

/* ---- merge ---- */

static int merge_file(struct load *l, const struct file_result *fr,
                      struct catalog_builder *b) {
  int rc = problems_append(l->pb, &fr->pb);

  for (size_t i = 0; i < fr->broken_exts.n && rc >= 0; i++)
    rc = strv_push(&l->broken_exts, xds_strdup(fr->broken_exts.v[i]));
  for (size_t i = 0; i < fr->broken_tmpls.n && rc >= 0; i++)
    rc = strv_push(&l->broken_tmpls, xds_strdup(fr->broken_tmpls.v[i]));
  for (size_t i = 0; i < fr->n_exts && rc >= 0; i++) {
    rc = catalog_builder_add_ext(b, wasm_ext_ref(fr->exts[i]), l->pb);
    if (rc == XDS_ECONFLICT || rc == XDS_ETOOBIG)
      rc = 0; /* reported; the first definition stays */
  }
  for (size_t i = 0; i < fr->n_tmpls && rc >= 0; i++) {
    rc = catalog_builder_add_tmpl(b, listener_tmpl_ref(fr->tmpls[i]), l->pb);
    if (rc == XDS_ECONFLICT || rc == XDS_ETOOBIG)
      rc = 0;
  }
  return rc;
}

/* A directory with no document at all serves nothing: most likely the
 * wrong path (or a ConfigMap not mounted yet), so say so. */
static int warn_if_empty(const struct load *l, const char *path) {
  size_t docs = 0;

  if (!l->is_dir)
    return 0;
  for (size_t i = 0; i < l->files.n; i++)
    docs += l->used[i]->n_docs;
  if (docs > 0)
    return 0;
  if (l->files.n == 0)
    return problems_add(l->pb, PROBLEM_WARNING, path, 0, 0, "",
                        "found no documents: no *.yaml or *.yml file in "
                        "this directory; the store is empty");
  return problems_add(l->pb, PROBLEM_WARNING, path, 0, 0, "",
                      "found no documents in its %zu YAML files: the store "
                      "is empty",
                      l->files.n);
}

/* ---- retention ---- */

static const char *keep_reason(const struct load *l, const char *id,
                               const struct strv *broken, const char *source) {
  const struct file_result *fr;
  long f;

  if (strv_find(broken, id) >= 0)
    return "its document is broken";
  for (size_t i = 0; i < l->unreadable.n; i++) {
    size_t n = strlen(l->unreadable.v[i]);

    if (strncmp(source, l->unreadable.v[i], n) == 0 &&
        (source[n] == '\0' || source[n] == '/'))
      return "its file cannot be read";
  }
  f = strv_find(&l->files, source);
  if (f < 0)
    return NULL; /* the file is gone: deliberately deleted */
  fr = l->used[f];
  if (fr->why != NULL)
    return fr->why;
  if (fr->anon_broken)
    return "its file has a broken document that may be this resource";
  return NULL; /* the file parses and no longer defines it */
}

static int keep_last_good(struct load *l, const struct catalog *prev,
                          struct catalog_builder *b) {
  size_t n;
  int rc = 0;

  strv_sort(&l->broken_exts);
  strv_sort(&l->broken_tmpls);
  for (size_t i = 0; i < catalog_ext_count(prev) && rc >= 0; i++) {
    const struct wasm_ext *e = catalog_ext_at(prev, i);
    const char *why;

    if (catalog_builder_has_ext(b, e->fqn))
      continue;
    why =
        keep_reason(l, wasm_ext_resource_id(e), &l->broken_exts, e->loc.source);
    if (why == NULL)
      continue;
    n = l->pb->n;
    rc = problems_add(l->pb, PROBLEM_WARNING, e->loc.source, e->loc.line,
                      e->loc.column, "",
                      "keeping the last good version of %s \"%s\": %s",
                      wasm_ext_kind_name(e), e->fqn, why);
    if (rc == 0)
      rc = problems_set_resource(l->pb, n, wasm_ext_resource_id(e));
    if (rc < 0)
      break;
    /* Records are immutable: the kept version is shared, not copied. */
    rc = catalog_builder_add_ext(b, wasm_ext_ref((struct wasm_ext *)e), l->pb);
  }
  for (size_t i = 0; i < catalog_tmpl_count(prev) && rc >= 0; i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(prev, i);
    const char *why;

    if (catalog_builder_has_tmpl(b, t->name))
      continue;
    why = keep_reason(l, t->name, &l->broken_tmpls, t->loc.source);
    if (why == NULL)
      continue;
    n = l->pb->n;
    rc = problems_add(l->pb, PROBLEM_WARNING, t->loc.source, t->loc.line,
                      t->loc.column, "",
                      "keeping the last good version of ListenerTemplate "
                      "\"%s\": %s",
                      t->name, why);
    if (rc == 0)
      rc = problems_set_resource(l->pb, n, t->name);
    if (rc < 0)
      break;
    rc = catalog_builder_add_tmpl(
        b, listener_tmpl_ref((struct listener_tmpl *)t), l->pb);
  }
  return rc == XDS_ENOMEM ? rc : 0;
}

/* Replaces the cache's results by this load's (files read this time; a
 * file that could not be read is not cached). */
static int refresh_cache(struct load *l, struct file_store_cache *cache) {
  struct file_result **v = NULL;
  size_t n = 0, j = 0;

  if (l->files.n > 0 && (v = xds_calloc(l->files.n, sizeof(*v))) == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < l->files.n; i++) {
    if (!l->used[i]->cacheable)
      continue;
    v[n++] = l->used[i];
    l->fresh[i] = NULL; /* the cache owns it now */
  }
  /* Both lists are sorted by path: free the old results not carried
   * over (hits are the same pointer in both). */
  for (size_t i = 0; i < cache->n; i++) {
    struct file_result *old = cache->v[i];

    while (j < n && strcmp(v[j]->path, old->path) < 0)
      j++;
    if (j >= n || v[j] != old)
      file_result_free(old);
  }
  xds_free(cache->v);
  cache->v = v;
  cache->n = n;
  return 0;
}

int file_store_load_ex(const char *path, const struct store_hooks *hooks,
                       struct file_store_cache *cache,
                       const struct catalog *prev, struct catalog **out,
                       struct problems *pb, struct xds_err *err) {
  struct load l;
  struct catalog_builder *b = NULL;
  int rc;

  *out = NULL;
  memset(&l, 0, sizeof(l));
  l.pb = pb;
  l.hooks = hooks;
  l.cache = cache;
  rc = collect_files(&l, path, err);
  if (rc < 0)
    goto out;
  rc = XDS_ENOMEM;
  if (l.files.n > 0 &&
      ((l.fresh = xds_calloc(l.files.n, sizeof(*l.fresh))) == NULL ||
       (l.used = xds_calloc(l.files.n, sizeof(*l.used))) == NULL))
    goto out;
  if ((b = catalog_builder_new()) == NULL)
    goto out;
  /* A resource being served keeps its file against a newcomer. */
  catalog_builder_set_served(b, prev);
  rc = load_files(&l);
  for (size_t i = 0; i < l.files.n && rc >= 0; i++)
    rc = merge_file(&l, l.used[i], b);
  if (rc >= 0 && prev != NULL)
    rc = keep_last_good(&l, prev, b);
  if (rc >= 0)
    rc = warn_if_empty(&l, path);
  if (rc < 0)
    goto out;
  if (cache != NULL && (rc = refresh_cache(&l, cache)) < 0)
    goto out;
  rc = catalog_builder_finish(b, pb, out);
  b = NULL;

out:
  if (rc == XDS_ENOMEM)
    xds_err_set(err, rc, "%s: out of memory while loading the store", path);
  catalog_builder_free(b);
  for (size_t i = 0; i < l.files.n && l.fresh != NULL; i++)
    file_result_free(l.fresh[i]);
  xds_free(l.fresh);
  xds_free(l.used);
  strv_cleanup(&l.files);
  strv_cleanup(&l.unreadable);
  strv_cleanup(&l.broken_exts);
  strv_cleanup(&l.broken_tmpls);
  xds_map_free(l.seen, xds_free);
  return rc;
}

int file_store_load(const char *path, const struct catalog *prev,
                    struct catalog **out, struct problems *pb,
                    struct xds_err *err) {
  return file_store_load_ex(path, NULL, NULL, prev, out, pb, err);
}
