/*
 * ads_sub.c: what a stream's proxy is subscribed to and what it has. The
 * explicit subscriptions of a type are a sorted array of interned names;
 * what the proxy has is the `sent` array of records (ads_sent.c), which
 * decides what is owed: a resource is sent when its version differs from
 * the one recorded there, so an ACK never causes a resend. Lookups decide
 * visibility: a name the proxy may not see is never a candidate, and is
 * logged once per stream.
 */
#include "server/ads/ads_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/compose/chain.h"

void ads_names_release(const char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    xds_intern_release(v[i]);
  xds_free(v);
}

void ads_names_free(struct ads_type_state *t) {
  if (t->names_shared)
    xds_intern_list_release(t->names);
  else
    ads_names_release(t->names, t->n_names);
  t->names_shared = 0;
  t->names = NULL;
  t->n_names = 0;
}

void ads_owe_removed_free(struct ads_type_state *t) {
  ads_names_release(t->owe_removed, t->n_owe_removed);
  t->owe_removed = NULL;
  t->n_owe_removed = 0;
  xds_map_free(t->owe_set, NULL);
  t->owe_set = NULL;
}

int ads_str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int ads_sub_has(const struct ads_type_state *t, const char *name) {
  return t->names != NULL && bsearch(&name, t->names, t->n_names,
                                     sizeof(*t->names), ads_str_cmp) != NULL;
}

/* Forgets that the proxy has name (so it is sent again). name may be the
 * sent entry's own name: it is used before that entry is freed. */
void ads_sub_forget(struct ads_type_state *t, const char *name) {
  t->owed_clean = 0;
  xds_map_del(t->absent, name);
  ads_sent_del(&t->sent, name);
}

/* For ads_sent_filter: a name forgotten is no longer known as absent. */
static void forgotten(void *ctx, const char *name) {
  struct ads_type_state *t = ctx;

  t->owed_clean = 0;
  xds_map_del(t->absent, name);
}

/* Forgets every resource the proxy was sent whose name keep() rejects,
 * in one pass. */
void ads_sub_forget_unless(struct ads_type_state *t,
                           int (*keep)(const void *ctx, const char *name),
                           const void *ctx) {
  ads_sent_filter(&t->sent, keep, ctx, forgotten, t);
}

/* Records that name went out at version in the response with nonce. */
int ads_sub_remember(struct ads_type_state *t, const char *name,
                     const char *version, uint64_t nonce) {
  t->owed_clean = 0;
  return ads_sent_put(&t->sent, name, version, nonce, NULL);
}

/* The resource name of type idx, if this proxy may see it; NULL otherwise.
 * Refusals of names that exist but are not visible are logged once. */
const struct xds_resource *ads_sub_lookup(struct ads_stream *s, int idx,
                                          const char *name, int log) {
  const struct catalog *cat;
  const struct wasm_ext *e;

  if (s->snap == NULL || s->cls == NULL)
    return NULL;
  if (idx == ADS_T_LDS) {
    size_t lo = 0, hi = s->cls->n_listeners;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp(s->cls->listeners[mid].name, name);
      if (c == 0)
        return &s->cls->listeners[mid];
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    return NULL;
  }
  /* A slot is the proxy's own (its class view's), so always visible. */
  if (strncmp(name, ENCODE_SLOT_PREFIX, strlen(ENCODE_SLOT_PREFIX)) == 0) {
    const struct xds_resource *r = snapshot_class_slot(s->cls, name);
    if (r != NULL)
      return r;
  }
  cat = snapshot_catalog(s->snap);
  e = catalog_ext_find(cat, name);
  if (e != NULL && chain_ext_visible(e, &s->pid))
    return snapshot_ecds(s->snap, name);
  if (log && xds_map_get(s->refused, name) == NULL &&
      xds_map_count(s->refused) < ADS_NAMES_MAX) {
    /* A name this stream was sent before went away or lost its access
     * (the proxy asks until it processes the new listeners): routine, so
     * only at debug level. A name never sent is someone asking for what
     * it may not have: a warning. */
    char esc[XDS_LOG_ESC_MAX];

    if (ads_sent_find(&s->t[ADS_T_ECDS].sent, name) != NULL)
      XDS_LOGD("node %s: ECDS name %s no longer served to it: %s",
               ads_node_name(s), xds_log_escape(name, esc, sizeof(esc)),
               e == NULL ? "no such extension" : "not visible to this proxy");
    else if (ads_log_allow(s, ADS_EV_REFUSED))
      XDS_LOGW("node %s: ECDS name %s refused: %s", ads_node_name(s),
               xds_log_escape(name, esc, sizeof(esc)),
               e == NULL ? "no such extension" : "not visible to this proxy");
    if (s->refused == NULL)
      s->refused = xds_map_new();
    if (s->refused != NULL)
      xds_map_put(s->refused, name, (void *)1, NULL);
  }
  return NULL;
}

/* Number of candidate resources of type idx under wildcard, and the i-th
 * (visible ones only; NULL for an invisible one). */
static size_t all_count(const struct ads_stream *s, int idx) {
  if (s->snap == NULL || s->cls == NULL)
    return 0;
  if (idx == ADS_T_LDS)
    return s->cls->n_listeners;
  return catalog_ext_count(snapshot_catalog(s->snap)) + s->cls->n_slots;
}

static const struct xds_resource *all_at(struct ads_stream *s, int idx,
                                         size_t i) {
  const struct wasm_ext *e;

  size_t n_ext;

  if (idx == ADS_T_LDS)
    return &s->cls->listeners[i];
  n_ext = catalog_ext_count(snapshot_catalog(s->snap));
  if (i >= n_ext) /* the class's slots, after the extensions */
    return &s->cls->slots[s->cls->slot_by_name[i - n_ext]];
  e = catalog_ext_at(snapshot_catalog(s->snap), i);
  if (!chain_ext_visible(e, &s->pid))
    return NULL;
  return snapshot_ecds(s->snap, e->fqn);
}

/* The candidates of type idx: every visible resource under wildcard, else
 * the subscribed names; ads_sub_candidate() is NULL for one that does not exist
 * or that the proxy may not see (logged once when log is set). */
size_t ads_sub_candidate_count(const struct ads_stream *s, int idx) {
  const struct ads_type_state *t = &s->t[idx];

  return t->wildcard ? all_count(s, idx) : t->n_names;
}

const struct xds_resource *ads_sub_candidate(struct ads_stream *s, int idx,
                                             size_t i, int log) {
  struct ads_type_state *t = &s->t[idx];

  return t->wildcard ? all_at(s, idx, i)
                     : ads_sub_lookup(s, idx, t->names[i], log);
}
