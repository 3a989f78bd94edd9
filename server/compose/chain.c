/*
 * chain.c: the composition rules of design.md §4.
 *
 * Candidates are found by organization with one binary search: the catalog
 * is sorted by fqn, and every fqn of an organization starts with
 * "organizations/<org>/extensions/", so they are contiguous.
 */
#include "server/compose/chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

const char *chain_verdict_str(enum chain_verdict v) {
  switch (v) {
  case CHAIN_IN:
    return "included";
  case CHAIN_OTHER_ORG:
    return "belongs to another organization";
  case CHAIN_NOT_ALLOWED:
    return "not allowed in the proxy's tenant";
  case CHAIN_WRONG_DIRECTION:
    return "match.mode excludes this listener's direction";
  case CHAIN_GATEWAY_MODE:
    return "SERVER-only extension on a gateway";
  }
  return "unknown";
}

const char *proxy_id_label(const struct proxy_id *p, const char *key) {
  size_t lo = 0, hi = p->n_labels;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(p->labels[mid].key, key);
    if (c == 0)
      return p->labels[mid].value;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

void proxy_id_cleanup(struct proxy_id *p) {
  xds_free(p->node_id);
  xds_free(p->cluster);
  xds_free(p->organization);
  xds_free(p->tenant);
  for (size_t i = 0; i < p->n_labels; i++) {
    xds_free(p->labels[i].key);
    xds_free(p->labels[i].value);
  }
  xds_free(p->labels);
  memset(p, 0, sizeof(*p));
}

int chain_tmpl_applies(const struct listener_tmpl *t,
                       const struct proxy_id *p) {
  if (t->has_mode && t->mode != p->mode)
    return 0;
  for (size_t i = 0; i < t->n_labels; i++) {
    const char *v = proxy_id_label(p, t->labels[i].key);
    if (v == NULL || strcmp(v, t->labels[i].value) != 0)
      return 0;
  }
  return 1;
}

int chain_ext_visible(const struct wasm_ext *e, const struct proxy_id *p) {
  if (p->organization == NULL || strcmp(e->organization, p->organization) != 0)
    return 0;
  if (e->n_allowed_in == 0)
    return 1;
  if (p->tenant == NULL)
    return 0;
  for (size_t i = 0; i < e->n_allowed_in; i++)
    if (strcmp(e->allowed_in[i], p->tenant) == 0)
      return 1;
  return 0;
}

enum chain_verdict chain_judge(const struct wasm_ext *e,
                               const struct listener_tmpl *t,
                               const struct proxy_id *p) {
  if (p->organization == NULL || strcmp(e->organization, p->organization) != 0)
    return CHAIN_OTHER_ORG;
  if (!chain_ext_visible(e, p))
    return CHAIN_NOT_ALLOWED;
  if (p->mode == PROXY_MODE_GATEWAY && e->match_mode == WASM_MATCH_SERVER)
    return CHAIN_GATEWAY_MODE;
  if (e->match_mode == WASM_MATCH_CLIENT && t->direction != TMPL_OUTBOUND)
    return CHAIN_WRONG_DIRECTION;
  if (e->match_mode == WASM_MATCH_SERVER && t->direction != TMPL_INBOUND)
    return CHAIN_WRONG_DIRECTION;
  return CHAIN_IN;
}

int chain_order(const struct wasm_ext *a, const struct wasm_ext *b) {
  int ra = wasm_phase_rank(a->phase), rb = wasm_phase_rank(b->phase);

  if (ra != rb)
    return ra < rb ? -1 : 1;
  if (a->priority != b->priority)
    return a->priority > b->priority ? -1 : 1;
  return strcmp(a->fqn, b->fqn);
}

/* Chain entries are sorted with their catalog positions. */
struct chain_item {
  const struct wasm_ext *e;
  size_t index;
};

static int order_cmp(const void *pa, const void *pb) {
  return chain_order(((const struct chain_item *)pa)->e,
                     ((const struct chain_item *)pb)->e);
}

/* First catalog index whose fqn is >= key. */
static size_t lower_bound(const struct catalog *cat, const char *key) {
  size_t lo = 0, hi = catalog_ext_count(cat);

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(catalog_ext_at(cat, mid)->fqn, key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int chain_compute(const struct catalog *cat, const struct proxy_id *p,
                  const struct listener_tmpl *t, struct chain *out) {
  char prefix[512];
  size_t plen, first, n_all, n = 0, cap = 0;
  struct chain_item *v = NULL;

  out->exts = NULL;
  out->index = NULL;
  out->n = 0;
  if (p->organization == NULL)
    return 0;
  plen = (size_t)snprintf(prefix, sizeof(prefix),
                          "organizations/%s/extensions/", p->organization);
  if (plen >= sizeof(prefix))
    return 0; /* no valid fqn can have such a prefix */
  first = lower_bound(cat, prefix);
  n_all = catalog_ext_count(cat);
  for (size_t i = first; i < n_all; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    if (strncmp(e->fqn, prefix, plen) != 0)
      break;
    if (chain_judge(e, t, p) != CHAIN_IN)
      continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      struct chain_item *nv = xds_realloc(v, ncap * sizeof(*v));
      if (nv == NULL) {
        xds_free(v);
        return XDS_ENOMEM;
      }
      v = nv;
      cap = ncap;
    }
    v[n].e = e;
    v[n].index = i;
    n++;
  }
  if (n > 1)
    qsort(v, n, sizeof(*v), order_cmp);
  out->exts = xds_malloc((n + 1) * sizeof(*out->exts));
  out->index = xds_malloc((n + 1) * sizeof(*out->index));
  if (out->exts == NULL || out->index == NULL) {
    xds_free(out->exts);
    xds_free(out->index);
    out->exts = NULL;
    out->index = NULL;
    xds_free(v);
    return XDS_ENOMEM;
  }
  for (size_t k = 0; k < n; k++) {
    out->exts[k] = v[k].e;
    out->index[k] = v[k].index;
  }
  out->n = n;
  xds_free(v);
  return 0;
}

void chain_cleanup(struct chain *c) {
  xds_free(c->exts);
  xds_free(c->index);
  c->exts = NULL;
  c->index = NULL;
  c->n = 0;
}

int chain_interleave(const struct listener_tmpl *t, const struct chain *c,
                     int (*emit_native)(void *ctx, size_t i),
                     int (*emit_wasm)(void *ctx, size_t k), void *ctx) {
  size_t k = 0, n_native = t->n_filters;
  int rc;

  /* The router is validated to be last; everything before it may anchor. */
  for (size_t i = 0; i + 1 < n_native; i++) {
    const struct native_filter *f = &t->filters[i];
    if (f->anchor != WASM_PHASE_UNSPECIFIED) {
      int rank = wasm_phase_rank(f->anchor);
      while (k < c->n && wasm_phase_rank(c->exts[k]->phase) <= rank) {
        rc = emit_wasm(ctx, k++);
        if (rc != 0)
          return rc;
      }
    }
    rc = emit_native(ctx, i);
    if (rc != 0)
      return rc;
  }
  while (k < c->n) {
    rc = emit_wasm(ctx, k++);
    if (rc != 0)
      return rc;
  }
  if (n_native > 0)
    return emit_native(ctx, n_native - 1);
  return 0;
}
