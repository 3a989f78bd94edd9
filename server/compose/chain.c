/*
 * chain.c: the composition rules of design.md §4.
 *
 * Candidates are found by organization with one binary search: the catalog
 * is sorted by fqn, and every fqn of an organization starts with
 * "organizations/<org>/extensions/", so they are contiguous. WasmPlugins
 * are found the same way by namespace: their fqns start with
 * WASM_PLUGIN_FQN_PREFIX "<namespace>.".
 */
#include "server/compose/chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
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
  case CHAIN_OTHER_NAMESPACE:
    return "WasmPlugin of another namespace";
  case CHAIN_NOT_SELECTED:
    return "selector or targetRefs do not select the proxy";
  case CHAIN_WRONG_PORT:
    return "match[] selects other ports or directions";
  case CHAIN_WRONG_TYPE:
    return "plugin type does not fit the listener";
  case CHAIN_WRONG_CONTEXT:
    return "filterContext excludes this listener";
  case CHAIN_NOT_ATTACHED:
    return "attached to other listener templates only";
  case CHAIN_UNATTACHED:
    return "attached to no listener template (--attachment-required)";
  case CHAIN_OVERRIDDEN:
    return "attached here with an override, served as <fqn>@<template>";
  }
  return "unknown";
}

const char *chain_explain(const struct wasm_ext *e,
                          const struct listener_tmpl *t,
                          const struct proxy_id *p) {
  enum chain_verdict v = chain_judge(e, t, p);

  if (v == CHAIN_GATEWAY_MODE)
    return "match.mode SERVER never applies on a gateway (a gateway runs "
           "CLIENT and CLIENT_AND_SERVER extensions on every listener)";
  if (v == CHAIN_IN && e->kind != WASM_KIND_PLUGIN &&
      p->mode == PROXY_MODE_GATEWAY && e->match_mode == WASM_MATCH_CLIENT &&
      t->direction != TMPL_OUTBOUND)
    return "included: on a gateway, CLIENT extensions run on every listener";
  if (v == CHAIN_WRONG_DIRECTION)
    return e->match_mode == WASM_MATCH_CLIENT
               ? "match.mode CLIENT excludes this INBOUND listener"
               : "match.mode SERVER excludes this OUTBOUND listener";
  return chain_verdict_str(v);
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
  xds_free(p->namespace);
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

static int plugin_visible(const struct wasm_ext *e, const struct proxy_id *p) {
  return p->namespace != NULL && (strcmp(e->namespace, p->namespace) == 0 ||
                                  strcmp(e->namespace, proxy_id_root(p)) == 0);
}

static int in_strs(char *const *v, size_t n, const char *s) {
  if (n == 0)
    return 1;
  if (s == NULL)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return 1;
  return 0;
}

/* A WasmDeployment workloadSelector item: labels, namespaces, clusters. */
static int workload_selects(const struct wasm_workload_sel *w,
                            const struct proxy_id *p) {
  const char *cluster = proxy_id_label(p, CHAIN_LABEL_CLUSTER);

  if (cluster == NULL && p->cluster != NULL && p->cluster[0] != '\0')
    cluster = p->cluster;
  for (size_t i = 0; i < w->n_labels; i++) {
    const char *v = proxy_id_label(p, w->labels[i].key);
    if (v == NULL || strcmp(v, w->labels[i].value) != 0)
      return 0;
  }
  return in_strs(w->namespaces, w->n_namespaces, p->namespace) &&
         in_strs(w->clusters, w->n_clusters, cluster);
}

static int deploy_selects(const struct wasm_ext *e, const struct proxy_id *p) {
  if (e->n_selectors == 0)
    return 1;
  for (size_t i = 0; i < e->n_selectors; i++)
    if (workload_selects(&e->selectors[i], p))
      return 1;
  return 0;
}

int chain_ext_selects(const struct wasm_ext *e, const struct proxy_id *p) {
  if (e->kind == WASM_KIND_DEPLOYMENT)
    return deploy_selects(e, p);
  if (e->kind != WASM_KIND_PLUGIN)
    return 1;
  for (size_t i = 0; i < e->n_match_labels; i++) {
    const char *v = proxy_id_label(p, e->match_labels[i].key);
    if (v == NULL || strcmp(v, e->match_labels[i].value) != 0)
      return 0;
  }
  if (e->n_target_refs == 0)
    return 1;
  for (size_t i = 0; i < e->n_target_refs; i++) {
    const struct wasm_target_ref *r = &e->target_refs[i];
    const char *v = proxy_id_label(p, strcmp(r->kind, "Gateway") == 0
                                          ? CHAIN_LABEL_GATEWAY_NAME
                                          : CHAIN_LABEL_SERVICE);
    if (v != NULL && strcmp(v, r->name) == 0)
      return 1;
  }
  return 0;
}

/* Whether one match[] item selects traffic to port of listener t of
 * proxy p. */
static int traffic_selects(const struct wasm_traffic_sel *m,
                           const struct listener_tmpl *t,
                           const struct proxy_id *p, uint32_t port) {
  int port_ok = m->n_ports == 0;

  if (p->mode == PROXY_MODE_GATEWAY && m->mode == WASM_MATCH_SERVER)
    return 0;
  if (p->mode != PROXY_MODE_GATEWAY &&
      ((m->mode == WASM_MATCH_CLIENT && t->direction != TMPL_OUTBOUND) ||
       (m->mode == WASM_MATCH_SERVER && t->direction != TMPL_INBOUND)))
    return 0;
  for (size_t i = 0; !port_ok && i < m->n_ports; i++)
    port_ok = m->ports[i] == port;
  return port_ok;
}

/* Whether e's match[] selects traffic to port (no match[]: all). */
static int plugin_on_port(const struct wasm_ext *e,
                          const struct listener_tmpl *t,
                          const struct proxy_id *p, uint32_t port) {
  if (e->kind != WASM_KIND_PLUGIN || e->n_matches == 0)
    return 1;
  for (size_t i = 0; i < e->n_matches; i++)
    if (traffic_selects(&e->matches[i], t, p, port))
      return 1;
  return 0;
}

/* The port of TCP filter chain i of t (i == n_tcp_chains: the default). */
static uint32_t chain_port(const struct listener_tmpl *t, size_t i) {
  if (i < t->n_tcp_chains && t->tcp_chains[i].destination_port != 0)
    return t->tcp_chains[i].destination_port;
  return t->port;
}

static enum chain_verdict plugin_judge(const struct wasm_ext *e,
                                       const struct listener_tmpl *t,
                                       const struct proxy_id *p) {
  if (!plugin_visible(e, p))
    return CHAIN_OTHER_NAMESPACE;
  if (!chain_ext_selects(e, p))
    return CHAIN_NOT_SELECTED;
  if ((e->type == WASM_TYPE_NETWORK) != (t->protocol == TMPL_TCP))
    return CHAIN_WRONG_TYPE;
  /* On a TCP listener, any filter chain's port will do (encoding keeps the
   * plugin off the others). */
  for (size_t i = 0; i <= (t->protocol == TMPL_TCP ? t->n_tcp_chains : 0); i++)
    if (plugin_on_port(e, t, p, chain_port(t, i)))
      return CHAIN_IN;
  return CHAIN_WRONG_PORT;
}

static enum chain_verdict deploy_judge(const struct wasm_ext *e,
                                       const struct listener_tmpl *t,
                                       const struct proxy_id *p) {
  if (!deploy_selects(e, p))
    return CHAIN_NOT_SELECTED;
  if (t->protocol == TMPL_TCP)
    return CHAIN_WRONG_TYPE; /* WasmDeployment filters are HTTP filters */
  switch (e->filter_context) {
  case WASM_CTX_ANY:
    return CHAIN_IN;
  case WASM_CTX_GATEWAY:
    return p->mode == PROXY_MODE_GATEWAY ? CHAIN_IN : CHAIN_WRONG_CONTEXT;
  case WASM_CTX_SIDECAR_INBOUND:
    return p->mode == PROXY_MODE_SIDECAR && t->direction == TMPL_INBOUND
               ? CHAIN_IN
               : CHAIN_WRONG_CONTEXT;
  case WASM_CTX_SIDECAR_OUTBOUND:
    return p->mode == PROXY_MODE_SIDECAR && t->direction == TMPL_OUTBOUND
               ? CHAIN_IN
               : CHAIN_WRONG_CONTEXT;
  }
  return CHAIN_WRONG_CONTEXT;
}

int chain_ext_visible(const struct wasm_ext *e, const struct proxy_id *p) {
  if (e->kind == WASM_KIND_DEPLOYMENT)
    return deploy_selects(e, p);
  if (e->kind == WASM_KIND_PLUGIN)
    return plugin_visible(e, p);
  if (p->organization == NULL || strcmp(e->organization, p->organization) != 0)
    return 0;
  if (e->n_allowed_in == 0)
    return !e->allowed_none;
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
  if (e->kind == WASM_KIND_DEPLOYMENT)
    return deploy_judge(e, t, p);
  if (e->kind == WASM_KIND_PLUGIN)
    return plugin_judge(e, t, p);
  if (p->organization == NULL || strcmp(e->organization, p->organization) != 0)
    return CHAIN_OTHER_ORG;
  if (t->protocol == TMPL_TCP)
    return CHAIN_WRONG_TYPE; /* WasmExtensions are HTTP filters */
  if (!chain_ext_visible(e, p))
    return CHAIN_NOT_ALLOWED;
  /* Every listener of a gateway is client-side (as in Istio, and as the
   * WasmExtension reference says of match.mode for gateways): CLIENT and
   * CLIENT_AND_SERVER run on all of them, SERVER on none. */
  if (p->mode == PROXY_MODE_GATEWAY)
    return e->match_mode == WASM_MATCH_SERVER ? CHAIN_GATEWAY_MODE : CHAIN_IN;
  if (e->match_mode == WASM_MATCH_CLIENT && t->direction != TMPL_OUTBOUND)
    return CHAIN_WRONG_DIRECTION;
  if (e->match_mode == WASM_MATCH_SERVER && t->direction != TMPL_INBOUND)
    return CHAIN_WRONG_DIRECTION;
  return CHAIN_IN;
}

/* The attachment of fqn in t's spec.extensions, or NULL. */
static const struct tmpl_attach *attachment(const struct listener_tmpl *t,
                                            const char *fqn) {
  for (size_t j = 0; j < t->n_attach; j++)
    if (strcmp(t->attach[j].fqn, fqn) == 0)
      return &t->attach[j];
  return NULL;
}

enum chain_verdict chain_attach_judge(const struct catalog *cat, size_t i,
                                      const struct listener_tmpl *t,
                                      unsigned flags) {
  const struct wasm_ext *e = catalog_ext_at(cat, i);
  const struct tmpl_attach *a;

  if (e->kind != WASM_KIND_EXTENSION)
    return CHAIN_IN;
  if (e->attached_to != NULL)
    return strcmp(e->attached_to, t->name) == 0 ? CHAIN_IN : CHAIN_NOT_ATTACHED;
  a = attachment(t, e->fqn);
  if (a != NULL)
    return a->config_json == NULL && !a->has_match ? CHAIN_IN
                                                   : CHAIN_OVERRIDDEN;
  if (catalog_ext_attached(cat, i))
    return CHAIN_NOT_ATTACHED;
  return (flags & CHAIN_ATTACHMENT_REQUIRED) ? CHAIN_UNATTACHED : CHAIN_IN;
}

int chain_order_for(const struct wasm_ext *a, const struct wasm_ext *b,
                    const struct proxy_id *p) {
  int ra = wasm_phase_rank(a->phase), rb = wasm_phase_rank(b->phase), c;

  if (ra != rb)
    return ra < rb ? -1 : 1;
  if ((a->kind == WASM_KIND_DEPLOYMENT) != (b->kind == WASM_KIND_DEPLOYMENT))
    return a->kind == WASM_KIND_DEPLOYMENT ? 1 : -1;
  if (a->kind == WASM_KIND_DEPLOYMENT) {
    if (a->weight != b->weight)
      return a->weight > b->weight ? -1 : 1;
    if ((c = strcmp(a->namespace, b->namespace)) != 0)
      return c;
    if ((c = strcmp(a->name, b->name)) != 0)
      return c;
    return a->filter_index < b->filter_index   ? -1
           : a->filter_index > b->filter_index ? 1
                                               : 0;
  }
  if (a->priority != b->priority)
    return a->priority > b->priority ? -1 : 1;
  if (a->kind != b->kind)
    return a->kind == WASM_KIND_PLUGIN ? -1 : 1;
  if (a->kind == WASM_KIND_EXTENSION)
    return strcmp(a->fqn, b->fqn);
  if (p != NULL && strcmp(a->namespace, b->namespace) != 0) {
    int a_root = strcmp(a->namespace, proxy_id_root(p)) == 0;
    int b_root = strcmp(b->namespace, proxy_id_root(p)) == 0;

    if (a_root != b_root)
      return a_root ? -1 : 1;
  }
  c = strcmp(a->name, b->name);
  return c != 0 ? c : strcmp(a->namespace, b->namespace);
}

int chain_order(const struct wasm_ext *a, const struct wasm_ext *b) {
  return chain_order_for(a, b, NULL);
}

/* Chain entries are sorted with their catalog positions; the proxy gives
 * the root namespace to the tie rule (qsort has no context argument). */
struct chain_item {
  const struct wasm_ext *e;
  size_t index;
  const struct proxy_id *p;
};

static int order_cmp(const void *pa, const void *pb) {
  const struct chain_item *a = pa, *b = pb;

  return chain_order_for(a->e, b->e, a->p);
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

/* Appends to *v every extension of cat whose fqn starts with prefix and
 * that runs on t for p. Returns 0 or XDS_ENOMEM. */
static int collect(const struct catalog *cat, const char *prefix,
                   const struct proxy_id *p, const struct listener_tmpl *t,
                   unsigned flags, struct chain_item **v, size_t *n,
                   size_t *cap) {
  size_t plen = strlen(prefix), n_all = catalog_ext_count(cat);

  for (size_t i = lower_bound(cat, prefix); i < n_all; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    if (strncmp(e->fqn, prefix, plen) != 0)
      break;
    if (chain_judge(e, t, p) != CHAIN_IN ||
        chain_attach_judge(cat, i, t, flags) != CHAIN_IN)
      continue;
    if (*n == *cap) {
      size_t ncap = *cap ? *cap * 2 : 8;
      struct chain_item *nv = xds_realloc(*v, ncap * sizeof(**v));
      if (nv == NULL)
        return XDS_ENOMEM;
      *v = nv;
      *cap = ncap;
    }
    (*v)[*n].e = e;
    (*v)[*n].index = i;
    (*v)[*n].p = p;
    (*n)++;
  }
  return 0;
}

int chain_compute(const struct catalog *cat, const struct proxy_id *p,
                  const struct listener_tmpl *t, struct chain *out) {
  return chain_compute_opts(cat, p, t, 0, out);
}

int chain_compute_opts(const struct catalog *cat, const struct proxy_id *p,
                       const struct listener_tmpl *t, unsigned flags,
                       struct chain *out) {
  /* The candidates of a proxy are contiguous runs of the fqn order: its
   * organization's extensions, and the WasmPlugins of the root namespace
   * and of its own namespace ("<namespace>." prefixes exactly one, as
   * namespaces have no '.'). */
  char prefix[4][512];
  size_t n_prefix = 0, n = 0, cap = 0;
  struct chain_item *v = NULL;

  out->exts = NULL;
  out->index = NULL;
  out->on = NULL;
  out->n = 0;
  if (p->organization != NULL && p->organization[0] != '\0' &&
      (size_t)snprintf(prefix[n_prefix], sizeof(prefix[0]),
                       "organizations/%s/extensions/",
                       p->organization) < sizeof(prefix[0]))
    n_prefix++;
  if (p->namespace != NULL) {
    if ((size_t)snprintf(prefix[n_prefix], sizeof(prefix[0]),
                         WASM_PLUGIN_FQN_PREFIX "%s.",
                         proxy_id_root(p)) < sizeof(prefix[0]))
      n_prefix++;
    if (strcmp(p->namespace, proxy_id_root(p)) != 0 &&
        (size_t)snprintf(prefix[n_prefix], sizeof(prefix[0]),
                         WASM_PLUGIN_FQN_PREFIX "%s.",
                         p->namespace) < sizeof(prefix[0]))
      n_prefix++;
  }
  /* WasmDeployments are mesh-wide: their selectors decide. */
  snprintf(prefix[n_prefix++], sizeof(prefix[0]), "%s", WASM_DEPLOY_FQN_PREFIX);
  for (size_t k = 0; k < n_prefix; k++)
    if (collect(cat, prefix[k], p, t, flags, &v, &n, &cap) < 0) {
      xds_free(v);
      return XDS_ENOMEM;
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
  if (t->protocol == TMPL_TCP) {
    out->on = xds_calloc(n + 1, sizeof(*out->on));
    if (out->on == NULL) {
      chain_cleanup(out);
      return XDS_ENOMEM;
    }
    for (size_t k = 0; k < n; k++)
      for (size_t i = 0; i <= t->n_tcp_chains && i < 64; i++)
        if (plugin_on_port(out->exts[k], t, p, chain_port(t, i)))
          out->on[k] |= UINT64_C(1) << i;
  }
  return 0;
}

int chain_scope_key(const struct catalog *cat, const struct proxy_id *p,
                    struct xds_buf *b) {
  const char *ns[2];
  size_t n_ns = 0, n_all = catalog_ext_count(cat);
  size_t dlen = strlen(WASM_DEPLOY_FQN_PREFIX);
  int rc = 0;

  /* Which selecting WasmDeployment filters select the proxy. */
  for (size_t i = lower_bound(cat, WASM_DEPLOY_FQN_PREFIX);
       rc == 0 && i < n_all; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    if (strncmp(e->fqn, WASM_DEPLOY_FQN_PREFIX, dlen) != 0)
      break;
    if (e->n_selectors > 0)
      rc =
          xds_buf_printf(b, "%c%s\n", deploy_selects(e, p) ? '+' : '-', e->fqn);
  }
  if (rc != 0 || p->namespace == NULL)
    return rc;
  rc = xds_buf_printf(b, "ns %s\n", p->namespace);
  ns[n_ns++] = proxy_id_root(p);
  if (strcmp(p->namespace, proxy_id_root(p)) != 0)
    ns[n_ns++] = p->namespace;
  for (size_t k = 0; rc == 0 && k < n_ns; k++) {
    char prefix[512];
    size_t plen = (size_t)snprintf(prefix, sizeof(prefix),
                                   WASM_PLUGIN_FQN_PREFIX "%s.", ns[k]);

    if (plen >= sizeof(prefix))
      continue;
    for (size_t i = lower_bound(cat, prefix); rc == 0 && i < n_all; i++) {
      const struct wasm_ext *e = catalog_ext_at(cat, i);
      if (strncmp(e->fqn, prefix, plen) != 0)
        break;
      if (e->n_match_labels == 0 && e->n_target_refs == 0)
        continue;
      rc = xds_buf_printf(b, "%c%s\n", chain_ext_selects(e, p) ? '+' : '-',
                          e->fqn);
    }
  }
  return rc;
}

void chain_cleanup(struct chain *c) {
  xds_free(c->exts);
  xds_free(c->index);
  xds_free(c->on);
  c->exts = NULL;
  c->index = NULL;
  c->on = NULL;
  c->n = 0;
}

/* The native filter before which chain entry k goes: its
 * insertBeforeFilter's first match among t's filters other than the
 * router, else the router (n_filters - 1). */
static size_t pinned_to(const struct listener_tmpl *t, const struct chain *c,
                        size_t k) {
  const struct wasm_ext *e = c->exts[k];

  if (e->kind == WASM_KIND_DEPLOYMENT && e->insert_before != NULL)
    for (size_t i = 0; i + 1 < t->n_filters; i++)
      if (strcmp(t->filters[i].name, e->insert_before) == 0)
        return i;
  return t->n_filters > 0 ? t->n_filters - 1 : 0;
}

int chain_interleave(const struct listener_tmpl *t, const struct chain *c,
                     int (*emit_native)(void *ctx, size_t i),
                     int (*emit_wasm)(void *ctx, size_t k), void *ctx) {
  size_t k = 0, n_native = t->n_filters, last = n_native ? n_native - 1 : 0;
  int rc;

  /* The router is validated to be last; everything before it may anchor.
   * Entries pinned to a filter before the router are skipped by the phase
   * walk and emitted just before their filter. */
  for (size_t i = 0; i + 1 < n_native; i++) {
    const struct native_filter *f = &t->filters[i];
    if (f->anchor != WASM_PHASE_UNSPECIFIED) {
      int rank = wasm_phase_rank(f->anchor);
      for (; k < c->n && wasm_phase_rank(c->exts[k]->phase) <= rank; k++) {
        if (pinned_to(t, c, k) != last)
          continue;
        rc = emit_wasm(ctx, k);
        if (rc != 0)
          return rc;
      }
    }
    for (size_t j = 0; j < c->n; j++) {
      if (pinned_to(t, c, j) != i)
        continue;
      rc = emit_wasm(ctx, j);
      if (rc != 0)
        return rc;
    }
    rc = emit_native(ctx, i);
    if (rc != 0)
      return rc;
  }
  for (; k < c->n; k++) {
    if (n_native > 0 && pinned_to(t, c, k) != last)
      continue;
    rc = emit_wasm(ctx, k);
    if (rc != 0)
      return rc;
  }
  if (n_native > 0)
    return emit_native(ctx, n_native - 1);
  return 0;
}
