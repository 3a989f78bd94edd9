/*
 * file_store.c: walk, parse, decode, retain, build.
 *
 * A load runs in four steps: (1) collect the file list (sorted, bounded);
 * (2) parse and decode each file, adding valid records to a catalog builder
 * and noting, per file, whether it was unusable (unreadable, not YAML) or
 * held an anonymous broken document, and which identities broken documents
 * claimed; (3) carry over from the previous catalog what those notes say
 * must be kept; (4) finish the catalog. Only step 1 touches directories and
 * only step 2 reads files.
 */
#include "store/file_store.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "store/decode.h"
#include "store/ydoc.h"

struct strv {
  char **v;
  size_t n;
  size_t cap;
};

struct file_note {
  const char *path; /* borrowed from walk.files */
  const char *why;  /* non-NULL: unusable, and why (static text) */
  int anon_broken;  /* a broken document of unknown identity */
};

struct load {
  struct problems *pb;
  struct strv files;          /* sorted */
  struct strv unreadable;     /* dirs and files that could not be read */
  struct strv broken_exts;    /* fqns claimed by broken documents */
  struct strv broken_tmpls;   /* names claimed by broken documents */
  struct file_note *notes;    /* parallel to files */
  dev_t anc_dev[FILE_STORE_MAX_DEPTH + 1];
  ino_t anc_ino[FILE_STORE_MAX_DEPTH + 1];
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
  while ((de = readdir(d)) != NULL && rc == 0)
    if (de->d_name[0] != '.')
      rc = strv_push(&names, xds_strdup(de->d_name));
  closedir(d);
  strv_sort(&names);
  for (size_t i = 0; i < names.n && rc == 0; i++) {
    struct stat st;
    char *child;
    int loop = 0;

    child = xds_asprintf("%s%s%s", dir, ends_with(dir, "/") ? "" : "/",
                         names.v[i]);
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
      } else if (depth + 1 > FILE_STORE_MAX_DEPTH) {
        rc = problems_add(l->pb, PROBLEM_ERROR, child, 0, 0, "",
                          "skipped: deeper than %d directory levels",
                          FILE_STORE_MAX_DEPTH);
      } else {
        l->anc_dev[depth + 1] = st.st_dev;
        l->anc_ino[depth + 1] = st.st_ino;
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
      rc = xds_err_set(err, XDS_ETOOBIG, "%s: more than %d store files",
                       dir, FILE_STORE_MAX_FILES);
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
  l->anc_dev[0] = st.st_dev;
  l->anc_ino[0] = st.st_ino;
  rc = walk_dir(l, path, 0, err);
  if (rc < 0)
    return rc;
  /* Names were walked in order per directory; sort the full paths so the
   * order is plain byte order of the path whatever the nesting. */
  strv_sort(&l->files);
  return 0;
}

/* ---- parse and decode ---- */

static int note_broken(struct load *l, struct file_note *fn,
                       const struct decode_result *r) {
  if (r->id == NULL || r->kind == DECODE_NONE) {
    fn->anon_broken = 1;
    return 0;
  }
  return strv_push(r->kind == DECODE_WASM_EXT ? &l->broken_exts
                                              : &l->broken_tmpls,
                   xds_strdup(r->id));
}

static int load_docs(struct load *l, struct file_note *fn, struct ydoc *d,
                     struct catalog_builder *b) {
  int rc = 0;

  for (size_t i = 0; i < ydoc_count(d) && rc >= 0; i++) {
    const struct ynode *root = ydoc_root(d, i);
    struct decode_result r = {0};
    size_t n_issues = ydoc_issue_count(d, i);

    if (ynode_kind(root) == YNODE_NULL)
      continue; /* an empty document: a stray `---` or only comments */
    for (size_t k = 0; k < n_issues && rc >= 0; k++) {
      const struct ydoc_issue *is = ydoc_issue(d, i, k);

      rc = problems_add(l->pb, PROBLEM_ERROR, fn->path, is->line, is->column,
                        "", "%s", is->msg);
    }
    if (rc < 0)
      break;
    rc = decode_document(root, l->pb, &r);
    if (rc == XDS_ENOMEM) {
      decode_result_cleanup(&r);
      break;
    }
    if (rc < 0 || n_issues > 0) {
      rc = note_broken(l, fn, &r);
    } else if (r.ext != NULL) {
      rc = catalog_builder_add_ext(b, r.ext, l->pb);
      r.ext = NULL;
    } else {
      rc = catalog_builder_add_tmpl(b, r.tmpl, l->pb);
      r.tmpl = NULL;
    }
    decode_result_cleanup(&r);
    if (rc == XDS_ECONFLICT || rc == XDS_ETOOBIG)
      rc = 0; /* reported; the first definition stays */
  }
  return rc;
}

/* Strips a leading "path: " that ydoc puts in its messages. */
static const char *reason(const char *msg, const char *path) {
  size_t n = strlen(path);

  if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
    return msg + n + 2;
  return msg;
}

static int load_file(struct load *l, struct file_note *fn,
                     struct catalog_builder *b) {
  struct xds_err xerr;
  struct ydoc *d = NULL;
  const char *msg;
  int rc, line, column;

  rc = ydoc_load_file(fn->path, &d, &xerr);
  if (rc == XDS_ENOMEM)
    return rc;
  if (d == NULL) {
    fn->why = "its file cannot be read";
    return problems_add(l->pb, PROBLEM_ERROR, fn->path, 0, 0, "",
                        "%s; keeping the last good resources of this file",
                        reason(xerr.msg, fn->path));
  }
  rc = 0;
  if (ydoc_error(d, &line, &column, &msg) != 0) {
    fn->why = "its file is not valid YAML";
    rc = problems_add(l->pb, PROBLEM_ERROR, fn->path, line, column, "",
                      "not valid YAML: %s; keeping the last good resources "
                      "of this file not defined before this point",
                      msg);
  }
  /* The documents complete before a syntax error still load. */
  if (rc == 0)
    rc = load_docs(l, fn, d, b);
  ydoc_free(d);
  return rc;
}

/* ---- retention ---- */

static const char *keep_reason(const struct load *l, const char *id,
                               const struct strv *broken,
                               const char *source) {
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
  if (l->notes[f].why != NULL)
    return l->notes[f].why;
  if (l->notes[f].anon_broken)
    return "its file has a broken document that may be this resource";
  return NULL; /* the file parses and no longer defines it */
}

static int keep_last_good(struct load *l, const struct catalog *prev,
                          struct catalog_builder *b) {
  int rc = 0;

  strv_sort(&l->broken_exts);
  strv_sort(&l->broken_tmpls);
  for (size_t i = 0; i < catalog_ext_count(prev) && rc >= 0; i++) {
    const struct wasm_ext *e = catalog_ext_at(prev, i);
    const char *why;
    struct wasm_ext *copy;

    if (catalog_builder_has_ext(b, e->fqn))
      continue;
    why = keep_reason(l, e->fqn, &l->broken_exts, e->loc.source);
    if (why == NULL)
      continue;
    rc = problems_add(l->pb, PROBLEM_WARNING, e->loc.source, e->loc.line,
                      e->loc.column, "",
                      "keeping the last good version of WasmExtension "
                      "\"%s\": %s",
                      e->fqn, why);
    if (rc < 0)
      break;
    copy = catalog_ext_copy(e);
    if (copy == NULL)
      return XDS_ENOMEM;
    rc = catalog_builder_add_ext(b, copy, l->pb);
  }
  for (size_t i = 0; i < catalog_tmpl_count(prev) && rc >= 0; i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(prev, i);
    const char *why;
    struct listener_tmpl *copy;

    if (catalog_builder_has_tmpl(b, t->name))
      continue;
    why = keep_reason(l, t->name, &l->broken_tmpls, t->loc.source);
    if (why == NULL)
      continue;
    rc = problems_add(l->pb, PROBLEM_WARNING, t->loc.source, t->loc.line,
                      t->loc.column, "",
                      "keeping the last good version of ListenerTemplate "
                      "\"%s\": %s",
                      t->name, why);
    if (rc < 0)
      break;
    copy = catalog_tmpl_copy(t);
    if (copy == NULL)
      return XDS_ENOMEM;
    rc = catalog_builder_add_tmpl(b, copy, l->pb);
  }
  return rc == XDS_ENOMEM ? rc : 0;
}

int file_store_load(const char *path, const struct catalog *prev,
                    struct catalog **out, struct problems *pb,
                    struct xds_err *err) {
  struct load l;
  struct catalog_builder *b = NULL;
  int rc;

  *out = NULL;
  memset(&l, 0, sizeof(l));
  l.pb = pb;
  rc = collect_files(&l, path, err);
  if (rc < 0)
    goto out;
  rc = XDS_ENOMEM;
  if (l.files.n > 0 &&
      (l.notes = xds_calloc(l.files.n, sizeof(*l.notes))) == NULL)
    goto out;
  if ((b = catalog_builder_new()) == NULL)
    goto out;
  rc = 0;
  for (size_t i = 0; i < l.files.n && rc >= 0; i++) {
    l.notes[i].path = l.files.v[i];
    rc = load_file(&l, &l.notes[i], b);
  }
  if (rc >= 0 && prev != NULL)
    rc = keep_last_good(&l, prev, b);
  if (rc < 0)
    goto out;
  rc = catalog_builder_finish(b, pb, out);
  b = NULL;

out:
  if (rc == XDS_ENOMEM)
    xds_err_set(err, rc, "%s: out of memory while loading the store", path);
  catalog_builder_free(b);
  xds_free(l.notes);
  strv_cleanup(&l.files);
  strv_cleanup(&l.unreadable);
  strv_cleanup(&l.broken_exts);
  strv_cleanup(&l.broken_tmpls);
  return rc;
}
