/*
 * catalog.c: the immutable, reference-counted set of validated records,
 * and the builder that makes one.
 *
 * The builder keeps records in the order added, with an open-addressing
 * hash index per kind so duplicate checks stay O(1) for stores of tens of
 * thousands of resources. finish() drops port conflicts, sorts, and hands
 * the arrays to the catalog. A catalog owns its records and frees them with
 * its last reference.
 */
#include "store/catalog.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/map.h"
#include "store/ydoc.h"

struct catalog {
  atomic_long refs;
  struct wasm_ext **exts; /* sorted by fqn */
  size_t n_exts;
  struct listener_tmpl **tmpls; /* sorted by name */
  size_t n_tmpls;
  unsigned char *attached; /* attached[i]: a template attaches exts[i] */
};

/* A string -> position index; keys are borrowed from the records. */
struct str_index {
  const char **keys;
  size_t *pos;
  size_t cap; /* a power of two, or 0 */
  size_t n;
};

struct catalog_builder {
  struct wasm_ext **exts;
  size_t n_exts;
  size_t cap_exts;
  struct listener_tmpl **tmpls;
  size_t n_tmpls;
  size_t cap_tmpls;
  struct str_index ext_index;
  struct str_index tmpl_index;
  const struct catalog *served; /* borrowed, nullable: see _set_served */
};

/* ---- string index ---- */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */

  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t index_slot(const struct str_index *x, const char *key) {
  size_t i = (size_t)hash_str(key) & (x->cap - 1);

  while (x->keys[i] != NULL && strcmp(x->keys[i], key) != 0)
    i = (i + 1) & (x->cap - 1);
  return i;
}

static int index_find(const struct str_index *x, const char *key, size_t *pos) {
  size_t i;

  if (x->cap == 0)
    return 0;
  i = index_slot(x, key);
  if (x->keys[i] == NULL)
    return 0;
  if (pos != NULL)
    *pos = x->pos[i];
  return 1;
}

static int index_put(struct str_index *x, const char *key, size_t pos) {
  size_t i;

  if ((x->n + 1) * 2 > x->cap) {
    struct str_index bigger;

    bigger.cap = x->cap ? x->cap * 2 : 64;
    bigger.n = 0;
    bigger.keys = xds_calloc(bigger.cap, sizeof(*bigger.keys));
    bigger.pos = xds_calloc(bigger.cap, sizeof(*bigger.pos));
    if (bigger.keys == NULL || bigger.pos == NULL) {
      xds_free(bigger.keys);
      xds_free(bigger.pos);
      return XDS_ENOMEM;
    }
    for (size_t k = 0; k < x->cap; k++)
      if (x->keys[k] != NULL) {
        i = index_slot(&bigger, x->keys[k]);
        bigger.keys[i] = x->keys[k];
        bigger.pos[i] = x->pos[k];
        bigger.n++;
      }
    xds_free(x->keys);
    xds_free(x->pos);
    *x = bigger;
  }
  i = index_slot(x, key);
  x->keys[i] = key;
  x->pos[i] = pos;
  x->n++;
  return 0;
}

static void index_cleanup(struct str_index *x) {
  xds_free(x->keys);
  xds_free(x->pos);
  memset(x, 0, sizeof(*x));
}

/* ---- builder ---- */

struct catalog_builder *catalog_builder_new(void) {
  return xds_calloc(1, sizeof(struct catalog_builder));
}

void catalog_builder_free(struct catalog_builder *b) {
  if (b == NULL)
    return;
  for (size_t i = 0; i < b->n_exts; i++)
    wasm_ext_free(b->exts[i]);
  for (size_t i = 0; i < b->n_tmpls; i++)
    listener_tmpl_free(b->tmpls[i]);
  xds_free(b->exts);
  xds_free(b->tmpls);
  index_cleanup(&b->ext_index);
  index_cleanup(&b->tmpl_index);
  xds_free(b);
}

static int grow(void **items, size_t *cap, size_t n, size_t size) {
  size_t c;
  void *p;

  if (n < *cap)
    return 0;
  c = *cap ? *cap * 2 : 16;
  p = xds_realloc(*items, c * size);
  if (p == NULL)
    return XDS_ENOMEM;
  *items = p;
  *cap = c;
  return 0;
}

static int report_dup(struct problems *pb, const char *what, const char *id,
                      const struct src_loc *first,
                      const struct src_loc *second) {
  return problems_add(pb, PROBLEM_ERROR, second->source, second->line,
                      second->column, "metadata.name",
                      "duplicate %s \"%s\": already defined at %s:%d:%d; "
                      "this definition is rejected and the first is kept",
                      what, id, first->source, first->line, first->column);
}

void catalog_builder_set_served(struct catalog_builder *b,
                                const struct catalog *served) {
  b->served = served;
}

/* Whether the resource id, defined at source, is the one being served
 * (the served catalog has it from the same file or key). */
static int is_served(const struct catalog_builder *b, int ext, const char *id,
                     const char *source) {
  const struct src_loc *loc = NULL;

  if (b->served == NULL)
    return 0;
  if (ext) {
    const struct wasm_ext *e = catalog_ext_find(b->served, id);
    loc = e != NULL ? &e->loc : NULL;
  } else {
    const struct listener_tmpl *t = catalog_tmpl_find(b->served, id);
    loc = t != NULL ? &t->loc : NULL;
  }
  return loc != NULL && strcmp(loc->source, source) == 0;
}

/* A newcomer at loc redefines the resource served from kept. */
static int report_dup_served(struct problems *pb, const char *what,
                             const char *id, const struct src_loc *kept,
                             const struct src_loc *rejected) {
  return problems_add(pb, PROBLEM_ERROR, rejected->source, rejected->line,
                      rejected->column, "metadata.name",
                      "duplicate %s \"%s\": already served from %s:%d:%d; "
                      "this new definition is rejected and the served one "
                      "keeps its source",
                      what, id, kept->source, kept->line, kept->column);
}

/*
 * A duplicate of the record at *slot: keeps the served one (see
 * catalog_builder_set_served), else the first. Returns 1 when the new
 * record replaced the one at *slot (which is then the caller's to free),
 * 0 when the new one is rejected, or XDS_ENOMEM. Reports the rejected one.
 */
static int settle_dup(struct catalog_builder *b, int ext, const char *what,
                      const char *id, const struct src_loc *have,
                      const struct src_loc *next, struct problems *pb) {
  int rc;

  if (strcmp(have->source, next->source) != 0 &&
      is_served(b, ext, id, next->source)) {
    rc = report_dup_served(pb, what, id, next, have);
    return rc < 0 ? rc : 1;
  }
  if (is_served(b, ext, id, have->source))
    rc = report_dup_served(pb, what, id, have, next);
  else
    rc = report_dup(pb, what, id, have, next);
  return rc < 0 ? rc : 0;
}

int catalog_builder_add_ext(struct catalog_builder *b, struct wasm_ext *e,
                            struct problems *pb) {
  size_t pos;
  int rc;

  if (index_find(&b->ext_index, e->fqn, &pos)) {
    rc = settle_dup(b, 1, wasm_ext_kind_name(e), e->fqn, &b->exts[pos]->loc,
                    &e->loc, pb);
    if (rc == 1) {
      /* The served definition takes its place; the index's key is the
       * record's own string, so it moves to the new record's. */
      wasm_ext_free(b->exts[pos]);
      b->exts[pos] = e;
      b->ext_index.keys[index_slot(&b->ext_index, e->fqn)] = e->fqn;
      return XDS_ECONFLICT;
    }
    wasm_ext_free(e);
    return rc < 0 ? rc : XDS_ECONFLICT;
  }
  if (b->n_exts >= CATALOG_MAX_EXTS) {
    rc = problems_add(pb, PROBLEM_ERROR, e->loc.source, e->loc.line,
                      e->loc.column, "", "more than %d WasmExtensions",
                      CATALOG_MAX_EXTS);
    wasm_ext_free(e);
    return rc < 0 ? rc : XDS_ETOOBIG;
  }
  rc = grow((void **)&b->exts, &b->cap_exts, b->n_exts, sizeof(*b->exts));
  if (rc == 0)
    rc = index_put(&b->ext_index, e->fqn, b->n_exts);
  if (rc < 0) {
    wasm_ext_free(e);
    return rc;
  }
  b->exts[b->n_exts++] = e;
  return 0;
}

int catalog_builder_add_tmpl(struct catalog_builder *b, struct listener_tmpl *t,
                             struct problems *pb) {
  size_t pos;
  int rc;

  if (index_find(&b->tmpl_index, t->name, &pos)) {
    rc = settle_dup(b, 0, "ListenerTemplate", t->name, &b->tmpls[pos]->loc,
                    &t->loc, pb);
    if (rc == 1) {
      listener_tmpl_free(b->tmpls[pos]);
      b->tmpls[pos] = t;
      b->tmpl_index.keys[index_slot(&b->tmpl_index, t->name)] = t->name;
      return XDS_ECONFLICT;
    }
    listener_tmpl_free(t);
    return rc < 0 ? rc : XDS_ECONFLICT;
  }
  if (b->n_tmpls >= CATALOG_MAX_TMPLS) {
    rc = problems_add(pb, PROBLEM_ERROR, t->loc.source, t->loc.line,
                      t->loc.column, "", "more than %d ListenerTemplates",
                      CATALOG_MAX_TMPLS);
    listener_tmpl_free(t);
    return rc < 0 ? rc : XDS_ETOOBIG;
  }
  rc = grow((void **)&b->tmpls, &b->cap_tmpls, b->n_tmpls, sizeof(*b->tmpls));
  if (rc == 0)
    rc = index_put(&b->tmpl_index, t->name, b->n_tmpls);
  if (rc < 0) {
    listener_tmpl_free(t);
    return rc;
  }
  b->tmpls[b->n_tmpls++] = t;
  return 0;
}

int catalog_builder_has_ext(const struct catalog_builder *b, const char *fqn) {
  return index_find(&b->ext_index, fqn, NULL);
}

int catalog_builder_has_tmpl(const struct catalog_builder *b,
                             const char *name) {
  return index_find(&b->tmpl_index, name, NULL);
}

int catalog_tmpl_selectors_overlap(const struct listener_tmpl *a,
                                   const struct listener_tmpl *b) {
  if (a->has_mode && b->has_mode && a->mode != b->mode)
    return 0;
  /* Both label lists are sorted by key: merge-walk them. */
  for (size_t i = 0, j = 0; i < a->n_labels && j < b->n_labels;) {
    int r = strcmp(a->labels[i].key, b->labels[j].key);

    if (r == 0) {
      if (strcmp(a->labels[i].value, b->labels[j].value) != 0)
        return 0;
      i++, j++;
    } else if (r < 0) {
      i++;
    } else {
      j++;
    }
  }
  return 1;
}

static const char *mode_text(const struct listener_tmpl *t) {
  if (!t->has_mode)
    return "any mode";
  return t->mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR";
}

/* Orders positions of templates by port, then position (stable). */
static int by_port(const void *a, const void *b, void *arg) {
  struct listener_tmpl *const *tmpls = arg;
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  uint32_t px = tmpls[x]->port, py = tmpls[y]->port;

  if (px != py)
    return px < py ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* Rejects each template that shares a port with an earlier kept template
 * of an overlapping selector. Quadratic only within one port. */
static int drop_port_conflicts(struct catalog_builder *b, struct problems *pb) {
  size_t *order, n = b->n_tmpls, kept = 0;
  int rc = 0;

  if (n < 2)
    return 0;
  order = xds_malloc(n * sizeof(*order));
  if (order == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++)
    order[i] = i;
  qsort_r(order, n, sizeof(*order), by_port, b->tmpls);
  for (size_t g = 0; g < n && rc == 0;) {
    size_t end = g;

    while (end < n && b->tmpls[order[end]]->port == b->tmpls[order[g]]->port)
      end++;
    for (size_t i = g + 1; i < end && rc == 0; i++) {
      struct listener_tmpl *t = b->tmpls[order[i]];

      for (size_t j = g; j < i; j++) {
        struct listener_tmpl *u = b->tmpls[order[j]];

        if (u == NULL || !catalog_tmpl_selectors_overlap(u, t))
          continue;
        rc = problems_add(
            pb, PROBLEM_ERROR, t->loc.source, t->loc.line, t->loc.column,
            "spec.port",
            "a listener port reused on one proxy: port %u of template "
            "\"%s\" is already used by template \"%s\" (%s:%d:%d) and both "
            "can apply to the same proxy (%s / %s, labels overlap); this "
            "template is rejected",
            (unsigned)t->port, t->name, u->name, u->loc.source, u->loc.line,
            u->loc.column, mode_text(t), mode_text(u));
        listener_tmpl_free(t);
        b->tmpls[order[i]] = NULL;
        break;
      }
    }
    g = end;
  }
  xds_free(order);
  for (size_t i = 0; i < n; i++)
    if (b->tmpls[i] != NULL)
      b->tmpls[kept++] = b->tmpls[i];
  b->n_tmpls = kept;
  /* The index now points at stale positions; it is not used again. */
  return rc;
}

static int ext_cmp(const void *a, const void *b) {
  return strcmp((*(struct wasm_ext *const *)a)->fqn,
                (*(struct wasm_ext *const *)b)->fqn);
}

static int tmpl_cmp(const void *a, const void *b) {
  return strcmp((*(struct listener_tmpl *const *)a)->name,
                (*(struct listener_tmpl *const *)b)->name);
}

/* ---- vm_id sharing ---- */

static int vm_str_eq(const char *a, const char *b) {
  return (a == NULL && b == NULL) ||
         (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int vm_env_eq(const struct wasm_ext *a, const struct wasm_ext *b) {
  if (a->n_env != b->n_env)
    return 0;
  for (size_t i = 0; i < a->n_env; i++)
    if (!vm_str_eq(a->env[i].name, b->env[i].name) ||
        a->env[i].from != b->env[i].from ||
        !vm_str_eq(a->env[i].value, b->env[i].value))
      return 0;
  return 1;
}

/* Envoy keys a VM by vm_id and the VM's settings together: two plugins
 * with the same vm_id but another runtime, code, environment, VM
 * configuration or code cache mode (allowPrecompiled, nackOnCodeCacheMiss)
 * get two VMs, without a word. Each extension whose vmId an
 * earlier one (in fqn order) already uses with other settings is reported
 * (a warning: Envoy accepts it, the operator probably meant one VM). */
static int warn_vm_id_clashes(const struct catalog_builder *b,
                              struct problems *pb) {
  /* The first extension (in fqn order) of each vmId, so each one is
   * compared once: linear in the catalog, whatever the vmIds. */
  struct xds_map *first = xds_map_new_borrowed();
  int rc = 0;

  if (first == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < b->n_exts; i++) {
    const struct wasm_ext *e = b->exts[i], *f;
    char what[128];
    size_t n = 0;

    if (e->vm_id == NULL || e->vm_id[0] == '\0')
      continue;
    f = xds_map_get(first, e->vm_id);
    if (f == NULL) {
      rc = xds_map_put(first, e->vm_id, (void *)e, NULL);
      if (rc < 0)
        break;
      continue;
    }
    what[0] = '\0';
    if (!vm_str_eq(e->runtime, f->runtime))
      n += (size_t)snprintf(what + n, sizeof(what) - n, "%sruntime",
                            n > 0 ? ", " : "");
    if (!vm_str_eq(e->url, f->url) || !vm_str_eq(e->sha256, f->sha256))
      n += (size_t)snprintf(what + n, sizeof(what) - n, "%scode",
                            n > 0 ? ", " : "");
    if (!vm_env_eq(e, f))
      n += (size_t)snprintf(what + n, sizeof(what) - n, "%senvironment",
                            n > 0 ? ", " : "");
    if (!vm_str_eq(e->vm_config_json, f->vm_config_json))
      n += (size_t)snprintf(what + n, sizeof(what) - n, "%sVM configuration",
                            n > 0 ? ", " : "");
    if (e->allow_precompiled != f->allow_precompiled ||
        e->nack_on_code_cache_miss != f->nack_on_code_cache_miss)
      n += (size_t)snprintf(what + n, sizeof(what) - n, "%scode cache mode",
                            n > 0 ? ", " : "");
    if (n == 0)
      continue; /* shares f's VM */
    rc = problems_add(
        pb, PROBLEM_WARNING, e->loc.source, e->loc.line, e->loc.column, NULL,
        "%s: vmId \"%s\" is also used by %s (%s:%d) with "
        "another %s: Envoy runs the two in separate VMs; give "
        "them different vmIds or the same VM settings",
        e->fqn, e->vm_id, f->fqn, f->loc.source != NULL ? f->loc.source : "?",
        f->loc.line, what);
    if (rc < 0)
      break;
  }
  xds_map_free(first, NULL);
  return rc;
}

/* Position of the stored WasmExtension fqn among the first n (sorted)
 * exts, or n when there is none. */
static size_t find_base(struct wasm_ext *const *v, size_t n, const char *fqn) {
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(v[mid]->fqn, fqn);

    if (r == 0)
      return v[mid]->kind == WASM_KIND_EXTENSION && v[mid]->attached_to == NULL
                 ? mid
                 : n;
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return n;
}

/* The record attachment a of template t runs: a copy of base named
 * "<fqn>@<template>" with a's overrides. NULL when out of memory. */
static struct wasm_ext *derive(const struct wasm_ext *base,
                               const struct listener_tmpl *t,
                               const struct tmpl_attach *a) {
  struct wasm_ext *d = catalog_ext_copy(base);
  size_t len;

  if (d == NULL)
    return NULL;
  len = strlen(base->fqn) + 1 + strlen(t->name) + 1;
  xds_free(d->fqn);
  d->fqn = xds_malloc(len);
  d->attached_to = xds_strdup(t->name);
  if (d->fqn == NULL || d->attached_to == NULL)
    goto fail;
  snprintf(d->fqn, len, "%s@%s", base->fqn, t->name);
  if (a->config_json != NULL) {
    xds_free(d->config_json);
    if ((d->config_json = xds_strdup(a->config_json)) == NULL)
      goto fail;
  }
  if (a->has_match)
    d->match_mode = a->match_mode;
  return d;

fail:
  wasm_ext_free(d);
  return NULL;
}

/* Attachments (README "Attachments"): drops records derived for an
 * earlier catalog (a last-good carry), checks every template's
 * spec.extensions against the stored WasmExtensions (an unknown fqn is an
 * error at the attachment; the template stays served without it), adds
 * one derived record per attachment with an override, and marks the
 * attached records. exts are sorted on entry and on return. */
static int attach_all(struct catalog_builder *b, struct problems *pb,
                      unsigned char **attached) {
  size_t n = 0, n_base;
  int rc;

  for (size_t i = 0; i < b->n_exts; i++) {
    if (b->exts[i]->attached_to != NULL)
      wasm_ext_free(b->exts[i]);
    else
      b->exts[n++] = b->exts[i];
  }
  b->n_exts = n_base = n;
  for (size_t k = 0; k < b->n_tmpls; k++) {
    const struct listener_tmpl *t = b->tmpls[k];

    for (size_t j = 0; j < t->n_attach; j++) {
      const struct tmpl_attach *a = &t->attach[j];
      size_t pos = find_base(b->exts, n_base, a->fqn);
      struct wasm_ext *d;

      if (pos == n_base) {
        rc = problems_add(pb, PROBLEM_ERROR, a->loc.source, a->loc.line,
                          a->loc.column, "spec.extensions",
                          "ListenerTemplate %s attaches %s, which is not "
                          "a WasmExtension of the store; the template is "
                          "served without this attachment",
                          t->name, a->fqn);
        if (rc == XDS_ENOMEM)
          return rc;
        continue;
      }
      if (a->config_json == NULL && !a->has_match)
        continue;
      if (grow((void **)&b->exts, &b->cap_exts, b->n_exts, sizeof(*b->exts)) <
              0 ||
          (d = derive(b->exts[pos], t, a)) == NULL)
        return XDS_ENOMEM;
      b->exts[b->n_exts++] = d;
    }
  }
  if (b->n_exts > 1)
    qsort(b->exts, b->n_exts, sizeof(*b->exts), ext_cmp);
  *attached = xds_calloc(b->n_exts + 1, 1);
  if (*attached == NULL)
    return XDS_ENOMEM;
  for (size_t k = 0; k < b->n_tmpls; k++)
    for (size_t j = 0; j < b->tmpls[k]->n_attach; j++) {
      size_t pos = find_base(b->exts, b->n_exts, b->tmpls[k]->attach[j].fqn);
      if (pos < b->n_exts)
        (*attached)[pos] = 1;
    }
  return 0;
}

int catalog_builder_finish(struct catalog_builder *b, struct problems *pb,
                           struct catalog **out) {
  struct catalog *c;
  int rc;

  *out = NULL;
  rc = drop_port_conflicts(b, pb);
  if (rc < 0)
    goto out_builder;
  c = xds_calloc(1, sizeof(*c));
  rc = XDS_ENOMEM;
  if (c == NULL)
    goto out_builder;
  if (b->n_exts > 1)
    qsort(b->exts, b->n_exts, sizeof(*b->exts), ext_cmp);
  if (b->n_tmpls > 1)
    qsort(b->tmpls, b->n_tmpls, sizeof(*b->tmpls), tmpl_cmp);
  rc = warn_vm_id_clashes(b, pb);
  if (rc >= 0)
    rc = attach_all(b, pb, &c->attached);
  if (rc < 0) {
    xds_free(c->attached);
    xds_free(c);
    goto out_builder;
  }
  atomic_init(&c->refs, 1);
  c->exts = b->exts;
  c->n_exts = b->n_exts;
  c->tmpls = b->tmpls;
  c->n_tmpls = b->n_tmpls;
  b->exts = NULL;
  b->tmpls = NULL;
  b->n_exts = b->n_tmpls = 0;
  *out = c;
  rc = 0;

out_builder:
  catalog_builder_free(b);
  return rc;
}

/* ---- catalog ---- */

struct catalog *catalog_ref(struct catalog *c) {
  if (c != NULL)
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

void catalog_unref(struct catalog *c) {
  if (c == NULL ||
      atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (size_t i = 0; i < c->n_exts; i++)
    wasm_ext_free(c->exts[i]);
  for (size_t i = 0; i < c->n_tmpls; i++)
    listener_tmpl_free(c->tmpls[i]);
  xds_free(c->exts);
  xds_free(c->tmpls);
  xds_free(c->attached);
  xds_free(c);
}

int catalog_ext_attached(const struct catalog *c, size_t i) {
  return c->attached != NULL && i < c->n_exts && c->attached[i];
}

size_t catalog_ext_count(const struct catalog *c) {
  return c->n_exts;
}

const struct wasm_ext *catalog_ext_at(const struct catalog *c, size_t i) {
  return c->exts[i];
}

const struct wasm_ext *catalog_ext_find(const struct catalog *c,
                                        const char *fqn) {
  size_t lo = 0, hi = c->n_exts;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(c->exts[mid]->fqn, fqn);

    if (r == 0)
      return c->exts[mid];
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

size_t catalog_tmpl_count(const struct catalog *c) {
  return c->n_tmpls;
}

const struct listener_tmpl *catalog_tmpl_at(const struct catalog *c, size_t i) {
  return c->tmpls[i];
}

const struct listener_tmpl *catalog_tmpl_find(const struct catalog *c,
                                              const char *name) {
  size_t lo = 0, hi = c->n_tmpls;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(c->tmpls[mid]->name, name);

    if (r == 0)
      return c->tmpls[mid];
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* ---- copies ---- */

/* Copies a nullable string; *ok drops to 0 on allocation failure. */
static char *copy_str(const char *s, int *ok) {
  char *p;

  if (s == NULL)
    return NULL;
  p = xds_strdup(s);
  if (p == NULL)
    *ok = 0;
  return p;
}

static void copy_loc(struct src_loc *to, const struct src_loc *from, int *ok) {
  to->source = copy_str(from->source, ok);
  to->line = from->line;
  to->column = from->column;
}

static int copy_strs(char ***to, size_t *n_to, char *const *from, size_t n) {
  int ok = 1;

  if (n == 0)
    return 1;
  *to = xds_calloc(n, sizeof(**to));
  if (*to == NULL)
    return 0;
  for (size_t i = 0; ok && i < n; i++, (*n_to)++)
    (*to)[i] = copy_str(from[i], &ok);
  return ok;
}

/* A WasmDeployment filter's workloadSelector into c (whose selectors are
 * NULL). Returns 1, or 0 on allocation failure (c frees what was made). */
static int copy_selectors(struct wasm_ext *c, const struct wasm_ext *e) {
  int ok = 1;

  c->selectors = xds_calloc(e->n_selectors, sizeof(*c->selectors));
  if (c->selectors == NULL)
    return 0;
  for (size_t i = 0; ok && i < e->n_selectors; i++, c->n_selectors++) {
    const struct wasm_workload_sel *f = &e->selectors[i];
    struct wasm_workload_sel *t = &c->selectors[i];

    if (f->n_labels > 0) {
      t->labels = xds_calloc(f->n_labels, sizeof(*t->labels));
      ok = t->labels != NULL;
      for (size_t k = 0; ok && k < f->n_labels; k++, t->n_labels++) {
        t->labels[k].key = copy_str(f->labels[k].key, &ok);
        t->labels[k].value = copy_str(f->labels[k].value, &ok);
      }
    }
    ok = ok &&
         copy_strs(&t->namespaces, &t->n_namespaces, f->namespaces,
                   f->n_namespaces) &&
         copy_strs(&t->clusters, &t->n_clusters, f->clusters, f->n_clusters);
  }
  return ok;
}

struct wasm_ext *catalog_ext_copy(const struct wasm_ext *e) {
  struct wasm_ext *c = xds_calloc(1, sizeof(*c));
  int ok = 1;

  if (c == NULL)
    return NULL;
  *c = *e;
  atomic_init(&c->refs, 0);
  /* Clear every owned pointer first so a partial copy frees cleanly. */
  c->fqn = c->organization = c->name = c->url = c->source = NULL;
  c->description = c->config_json = c->pull_secret = c->plugin_name = NULL;
  c->vm_id = c->runtime = c->sha256 = c->loc.source = NULL;
  c->allowed_in = NULL;
  c->n_allowed_in = 0;
  c->env = NULL;
  c->n_env = 0;
  c->namespace = NULL;
  c->match_labels = NULL;
  c->n_match_labels = 0;
  c->target_refs = NULL;
  c->n_target_refs = 0;
  c->matches = NULL;
  c->n_matches = 0;
  c->resource = c->insert_before = NULL;
  c->selectors = NULL;
  c->n_selectors = 0;
  c->config_bytes = NULL;
  c->config_bytes_len = 0;
  c->vm_config_json = NULL;
  c->capabilities = NULL;
  c->n_capabilities = 0;
  c->attached_to = copy_str(e->attached_to, &ok);
  c->vm_config_json = copy_str(e->vm_config_json, &ok);
  if (ok && e->n_capabilities > 0)
    ok = copy_strs(&c->capabilities, &c->n_capabilities, e->capabilities,
                   e->n_capabilities);
  c->resource = copy_str(e->resource, &ok);
  c->insert_before = copy_str(e->insert_before, &ok);
  if (ok && e->config_bytes_len > 0) {
    c->config_bytes = xds_malloc(e->config_bytes_len);
    ok = c->config_bytes != NULL;
    if (ok) {
      memcpy(c->config_bytes, e->config_bytes, e->config_bytes_len);
      c->config_bytes_len = e->config_bytes_len;
    }
  }
  if (ok && e->n_selectors > 0)
    ok = copy_selectors(c, e);
  c->namespace = copy_str(e->namespace, &ok);
  c->fqn = copy_str(e->fqn, &ok);
  c->organization = copy_str(e->organization, &ok);
  c->name = copy_str(e->name, &ok);
  c->url = copy_str(e->url, &ok);
  c->source = copy_str(e->source, &ok);
  c->description = copy_str(e->description, &ok);
  c->config_json = copy_str(e->config_json, &ok);
  c->pull_secret = copy_str(e->pull_secret, &ok);
  c->plugin_name = copy_str(e->plugin_name, &ok);
  c->vm_id = copy_str(e->vm_id, &ok);
  c->runtime = copy_str(e->runtime, &ok);
  c->sha256 = copy_str(e->sha256, &ok);
  copy_loc(&c->loc, &e->loc, &ok);
  if (ok && e->n_allowed_in > 0) {
    c->allowed_in = xds_calloc(e->n_allowed_in, sizeof(*c->allowed_in));
    ok = c->allowed_in != NULL;
    for (size_t i = 0; ok && i < e->n_allowed_in; i++, c->n_allowed_in++)
      c->allowed_in[i] = copy_str(e->allowed_in[i], &ok);
  }
  if (ok && e->n_env > 0) {
    c->env = xds_calloc(e->n_env, sizeof(*c->env));
    ok = c->env != NULL;
    for (size_t i = 0; ok && i < e->n_env; i++, c->n_env++) {
      c->env[i].name = copy_str(e->env[i].name, &ok);
      c->env[i].from = e->env[i].from;
      c->env[i].value = copy_str(e->env[i].value, &ok);
    }
  }
  if (ok && e->n_match_labels > 0) {
    c->match_labels = xds_calloc(e->n_match_labels, sizeof(*c->match_labels));
    ok = c->match_labels != NULL;
    for (size_t i = 0; ok && i < e->n_match_labels; i++, c->n_match_labels++) {
      c->match_labels[i].key = copy_str(e->match_labels[i].key, &ok);
      c->match_labels[i].value = copy_str(e->match_labels[i].value, &ok);
    }
  }
  if (ok && e->n_target_refs > 0) {
    c->target_refs = xds_calloc(e->n_target_refs, sizeof(*c->target_refs));
    ok = c->target_refs != NULL;
    for (size_t i = 0; ok && i < e->n_target_refs; i++, c->n_target_refs++) {
      c->target_refs[i].group = copy_str(e->target_refs[i].group, &ok);
      c->target_refs[i].kind = copy_str(e->target_refs[i].kind, &ok);
      c->target_refs[i].name = copy_str(e->target_refs[i].name, &ok);
    }
  }
  if (ok && e->n_matches > 0) {
    c->matches = xds_calloc(e->n_matches, sizeof(*c->matches));
    ok = c->matches != NULL;
    for (size_t i = 0; ok && i < e->n_matches; i++, c->n_matches++) {
      const struct wasm_traffic_sel *m = &e->matches[i];

      c->matches[i].mode = m->mode;
      if (m->n_ports == 0)
        continue;
      c->matches[i].ports = xds_calloc(m->n_ports, sizeof(*m->ports));
      ok = c->matches[i].ports != NULL;
      if (ok) {
        memcpy(c->matches[i].ports, m->ports, m->n_ports * sizeof(*m->ports));
        c->matches[i].n_ports = m->n_ports;
      }
    }
  }
  if (!ok) {
    wasm_ext_free(c);
    return NULL;
  }
  return c;
}

struct listener_tmpl *catalog_tmpl_copy(const struct listener_tmpl *t) {
  struct listener_tmpl *c = xds_calloc(1, sizeof(*c));
  int ok = 1;

  if (c == NULL)
    return NULL;
  *c = *t;
  atomic_init(&c->refs, 0);
  c->name = c->address = c->stat_prefix = c->route_cluster = NULL;
  c->route_prefix = c->rds_name = c->rds_cluster = c->loc.source = NULL;
  c->labels = NULL;
  c->n_labels = 0;
  c->filters = NULL;
  c->n_filters = 0;
  c->tcp_cluster = NULL;
  c->tcp_chains = NULL;
  c->n_tcp_chains = 0;
  c->attach = NULL;
  c->n_attach = 0;
  c->tcp_cluster = copy_str(t->tcp_cluster, &ok);
  c->name = copy_str(t->name, &ok);
  c->address = copy_str(t->address, &ok);
  c->stat_prefix = copy_str(t->stat_prefix, &ok);
  c->route_cluster = copy_str(t->route_cluster, &ok);
  c->route_prefix = copy_str(t->route_prefix, &ok);
  c->rds_name = copy_str(t->rds_name, &ok);
  c->rds_cluster = copy_str(t->rds_cluster, &ok);
  copy_loc(&c->loc, &t->loc, &ok);
  if (ok && t->n_labels > 0) {
    c->labels = xds_calloc(t->n_labels, sizeof(*c->labels));
    ok = c->labels != NULL;
    for (size_t i = 0; ok && i < t->n_labels; i++, c->n_labels++) {
      c->labels[i].key = copy_str(t->labels[i].key, &ok);
      c->labels[i].value = copy_str(t->labels[i].value, &ok);
    }
  }
  if (ok && t->n_filters > 0) {
    c->filters = xds_calloc(t->n_filters, sizeof(*c->filters));
    ok = c->filters != NULL;
    for (size_t i = 0; ok && i < t->n_filters; i++, c->n_filters++) {
      const struct native_filter *f = &t->filters[i];
      struct native_filter *g = &c->filters[i];

      g->name = copy_str(f->name, &ok);
      g->anchor = f->anchor;
      g->type_url = copy_str(f->type_url, &ok);
      g->is_router = f->is_router;
      copy_loc(&g->loc, &f->loc, &ok);
      if (f->typed_config != NULL &&
          (g->typed_config = ynode_clone(f->typed_config)) == NULL)
        ok = 0;
    }
  }
  if (ok && t->n_tcp_chains > 0) {
    c->tcp_chains = xds_calloc(t->n_tcp_chains, sizeof(*c->tcp_chains));
    ok = c->tcp_chains != NULL;
    for (size_t i = 0; ok && i < t->n_tcp_chains; i++, c->n_tcp_chains++) {
      const struct tmpl_tcp_chain *f = &t->tcp_chains[i];
      struct tmpl_tcp_chain *g = &c->tcp_chains[i];

      g->destination_port = f->destination_port;
      g->cluster = copy_str(f->cluster, &ok);
      if (ok && f->n_server_names > 0) {
        g->server_names = xds_calloc(f->n_server_names, sizeof(char *));
        ok = g->server_names != NULL;
        for (size_t k = 0; ok && k < f->n_server_names;
             k++, g->n_server_names++)
          g->server_names[k] = copy_str(f->server_names[k], &ok);
      }
    }
  }
  if (ok && t->n_attach > 0) {
    c->attach = xds_calloc(t->n_attach, sizeof(*c->attach));
    ok = c->attach != NULL;
    for (size_t i = 0; ok && i < t->n_attach; i++, c->n_attach++) {
      c->attach[i] = t->attach[i];
      c->attach[i].fqn = copy_str(t->attach[i].fqn, &ok);
      c->attach[i].config_json = copy_str(t->attach[i].config_json, &ok);
      copy_loc(&c->attach[i].loc, &t->attach[i].loc, &ok);
    }
  }
  if (!ok) {
    listener_tmpl_free(c);
    return NULL;
  }
  return c;
}

/* ---- equality and diff ---- */

static int str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static int strs_eq(char *const *a, size_t na, char *const *b, size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++)
    if (!str_eq(a[i], b[i]))
      return 0;
  return 1;
}

/* The WasmDeployment fields, the configuration's type and bytes, and the
 * fields added with them (generation, allowed_none, the Envoy VM and
 * capability fields). */
static int deploy_equal(const struct wasm_ext *a, const struct wasm_ext *b) {
  if (!str_eq(a->resource, b->resource) || a->filter_index != b->filter_index ||
      a->n_filters != b->n_filters || a->weight != b->weight ||
      a->filter_context != b->filter_context ||
      !str_eq(a->insert_before, b->insert_before) ||
      a->insecure_skip_verify != b->insecure_skip_verify ||
      a->plain_http != b->plain_http || a->config_type != b->config_type ||
      a->config_bytes_len != b->config_bytes_len ||
      (a->config_bytes_len > 0 &&
       memcmp(a->config_bytes, b->config_bytes, a->config_bytes_len) != 0) ||
      a->n_selectors != b->n_selectors || a->generation != b->generation ||
      a->allowed_none != b->allowed_none ||
      a->allow_precompiled != b->allow_precompiled ||
      a->nack_on_code_cache_miss != b->nack_on_code_cache_miss ||
      !str_eq(a->vm_config_json, b->vm_config_json) ||
      a->has_capabilities != b->has_capabilities ||
      !strs_eq(a->capabilities, a->n_capabilities, b->capabilities,
               b->n_capabilities))
    return 0;
  for (size_t i = 0; i < a->n_selectors; i++) {
    const struct wasm_workload_sel *x = &a->selectors[i], *y = &b->selectors[i];

    if (x->n_labels != y->n_labels ||
        !strs_eq(x->namespaces, x->n_namespaces, y->namespaces,
                 y->n_namespaces) ||
        !strs_eq(x->clusters, x->n_clusters, y->clusters, y->n_clusters))
      return 0;
    for (size_t k = 0; k < x->n_labels; k++)
      if (!str_eq(x->labels[k].key, y->labels[k].key) ||
          !str_eq(x->labels[k].value, y->labels[k].value))
        return 0;
  }
  return 1;
}

int catalog_ext_equal(const struct wasm_ext *a, const struct wasm_ext *b) {
  if (a == b)
    return 1;
  if (a == NULL || b == NULL)
    return 0;
  if (!str_eq(a->fqn, b->fqn) || !str_eq(a->organization, b->organization) ||
      !str_eq(a->name, b->name) || !str_eq(a->url, b->url) ||
      a->scheme != b->scheme || !str_eq(a->source, b->source) ||
      !str_eq(a->description, b->description) || a->phase != b->phase ||
      a->priority != b->priority || !str_eq(a->config_json, b->config_json) ||
      a->pull_policy != b->pull_policy ||
      !str_eq(a->pull_secret, b->pull_secret) ||
      a->match_mode != b->match_mode ||
      !str_eq(a->plugin_name, b->plugin_name) || !str_eq(a->vm_id, b->vm_id) ||
      !str_eq(a->runtime, b->runtime) || a->fail_strategy != b->fail_strategy ||
      !str_eq(a->sha256, b->sha256) || a->n_allowed_in != b->n_allowed_in ||
      a->n_env != b->n_env || a->kind != b->kind ||
      !str_eq(a->namespace, b->namespace) || a->type != b->type ||
      a->n_match_labels != b->n_match_labels ||
      a->n_target_refs != b->n_target_refs || a->n_matches != b->n_matches ||
      !str_eq(a->attached_to, b->attached_to) || !deploy_equal(a, b))
    return 0;
  for (size_t i = 0; i < a->n_match_labels; i++)
    if (!str_eq(a->match_labels[i].key, b->match_labels[i].key) ||
        !str_eq(a->match_labels[i].value, b->match_labels[i].value))
      return 0;
  for (size_t i = 0; i < a->n_target_refs; i++)
    if (!str_eq(a->target_refs[i].group, b->target_refs[i].group) ||
        !str_eq(a->target_refs[i].kind, b->target_refs[i].kind) ||
        !str_eq(a->target_refs[i].name, b->target_refs[i].name))
      return 0;
  for (size_t i = 0; i < a->n_matches; i++)
    if (a->matches[i].mode != b->matches[i].mode ||
        a->matches[i].n_ports != b->matches[i].n_ports ||
        (a->matches[i].n_ports > 0 &&
         memcmp(a->matches[i].ports, b->matches[i].ports,
                a->matches[i].n_ports * sizeof(uint32_t)) != 0))
      return 0;
  for (size_t i = 0; i < a->n_allowed_in; i++)
    if (!str_eq(a->allowed_in[i], b->allowed_in[i]))
      return 0;
  for (size_t i = 0; i < a->n_env; i++)
    if (!str_eq(a->env[i].name, b->env[i].name) ||
        a->env[i].from != b->env[i].from ||
        !str_eq(a->env[i].value, b->env[i].value))
      return 0;
  return 1;
}

int catalog_tmpl_equal(const struct listener_tmpl *a,
                       const struct listener_tmpl *b) {
  if (a == b)
    return 1;
  if (a == NULL || b == NULL)
    return 0;
  if (!str_eq(a->name, b->name) || !str_eq(a->address, b->address) ||
      a->port != b->port || a->direction != b->direction ||
      a->has_mode != b->has_mode || (a->has_mode && a->mode != b->mode) ||
      !str_eq(a->stat_prefix, b->stat_prefix) ||
      a->route_kind != b->route_kind ||
      !str_eq(a->route_cluster, b->route_cluster) ||
      !str_eq(a->route_prefix, b->route_prefix) ||
      !str_eq(a->rds_name, b->rds_name) ||
      !str_eq(a->rds_cluster, b->rds_cluster) || a->rds_api != b->rds_api ||
      a->n_labels != b->n_labels || a->n_filters != b->n_filters ||
      a->protocol != b->protocol || !str_eq(a->tcp_cluster, b->tcp_cluster) ||
      a->n_tcp_chains != b->n_tcp_chains || a->n_attach != b->n_attach)
    return 0;
  for (size_t i = 0; i < a->n_attach; i++)
    if (!str_eq(a->attach[i].fqn, b->attach[i].fqn) ||
        !str_eq(a->attach[i].config_json, b->attach[i].config_json) ||
        a->attach[i].has_match != b->attach[i].has_match ||
        (a->attach[i].has_match &&
         a->attach[i].match_mode != b->attach[i].match_mode))
      return 0;
  for (size_t i = 0; i < a->n_tcp_chains; i++) {
    const struct tmpl_tcp_chain *f = &a->tcp_chains[i], *g = &b->tcp_chains[i];

    if (f->destination_port != g->destination_port ||
        !str_eq(f->cluster, g->cluster) ||
        f->n_server_names != g->n_server_names)
      return 0;
    for (size_t k = 0; k < f->n_server_names; k++)
      if (!str_eq(f->server_names[k], g->server_names[k]))
        return 0;
  }
  for (size_t i = 0; i < a->n_labels; i++)
    if (!str_eq(a->labels[i].key, b->labels[i].key) ||
        !str_eq(a->labels[i].value, b->labels[i].value))
      return 0;
  for (size_t i = 0; i < a->n_filters; i++) {
    const struct native_filter *f = &a->filters[i], *g = &b->filters[i];

    if (!str_eq(f->name, g->name) || f->anchor != g->anchor ||
        !str_eq(f->type_url, g->type_url) || f->is_router != g->is_router ||
        !ynode_equal(f->typed_config, g->typed_config))
      return 0;
  }
  return 1;
}

const char *catalog_kind_name(enum catalog_kind k) {
  return k == CATALOG_EXT ? "WasmExtension" : "ListenerTemplate";
}

const char *catalog_change_kind_name(const struct catalog_change *ch) {
  const struct wasm_ext *e = ch->new_ext != NULL ? ch->new_ext : ch->old_ext;

  if (ch->kind == CATALOG_EXT && e != NULL)
    return wasm_ext_kind_name(e);
  return catalog_kind_name(ch->kind);
}

const char *catalog_op_name(enum catalog_op op) {
  switch (op) {
  case CATALOG_ADDED:
    return "added";
  case CATALOG_UPDATED:
    return "updated";
  case CATALOG_REMOVED:
    return "removed";
  }
  return "?";
}

/* Reports one change: counts it and calls fn. */
static int emit(long *n, catalog_diff_fn fn, void *ctx,
                struct catalog_change *ch) {
  (*n)++;
  return fn != NULL ? fn(ctx, ch) : 0;
}

long catalog_diff(const struct catalog *old, const struct catalog *next,
                  catalog_diff_fn fn, void *ctx) {
  size_t na = old != NULL ? old->n_exts : 0;
  size_t nb = next != NULL ? next->n_exts : 0;
  size_t i = 0, j = 0;
  long n = 0;
  int rc = 0;

  /* Both arrays are sorted by id: merge-walk them. */
  while (rc >= 0 && (i < na || j < nb)) {
    struct catalog_change ch = {.kind = CATALOG_EXT};
    const struct wasm_ext *a = i < na ? old->exts[i] : NULL;
    const struct wasm_ext *b = j < nb ? next->exts[j] : NULL;
    int r = a == NULL ? 1 : b == NULL ? -1 : strcmp(a->fqn, b->fqn);

    if (r < 0) {
      ch.op = CATALOG_REMOVED, ch.id = a->fqn, ch.old_ext = a, i++;
    } else if (r > 0) {
      ch.op = CATALOG_ADDED, ch.id = b->fqn, ch.new_ext = b, j++;
    } else {
      i++, j++;
      if (catalog_ext_equal(a, b))
        continue;
      ch.op = CATALOG_UPDATED, ch.id = b->fqn, ch.old_ext = a, ch.new_ext = b;
    }
    rc = emit(&n, fn, ctx, &ch);
  }
  na = old != NULL ? old->n_tmpls : 0;
  nb = next != NULL ? next->n_tmpls : 0;
  i = j = 0;
  while (rc >= 0 && (i < na || j < nb)) {
    struct catalog_change ch = {.kind = CATALOG_TMPL};
    const struct listener_tmpl *a = i < na ? old->tmpls[i] : NULL;
    const struct listener_tmpl *b = j < nb ? next->tmpls[j] : NULL;
    int r = a == NULL ? 1 : b == NULL ? -1 : strcmp(a->name, b->name);

    if (r < 0) {
      ch.op = CATALOG_REMOVED, ch.id = a->name, ch.old_tmpl = a, i++;
    } else if (r > 0) {
      ch.op = CATALOG_ADDED, ch.id = b->name, ch.new_tmpl = b, j++;
    } else {
      i++, j++;
      if (catalog_tmpl_equal(a, b))
        continue;
      ch.op = CATALOG_UPDATED, ch.id = b->name, ch.old_tmpl = a,
      ch.new_tmpl = b;
    }
    rc = emit(&n, fn, ctx, &ch);
  }
  return rc < 0 ? rc : n;
}
