/*
 * model.c: destructors for the plain records of model.h.
 */
#include "store/model.h"

#include <ctype.h>
#include <string.h>

#include "base/alloc.h"
#include "store/ydoc.h"

void src_loc_cleanup(struct src_loc *l) {
  xds_free(l->source);
  l->source = NULL;
}

/* refs counts the references beyond the first, so a record made with
 * calloc() starts with one. fetch_sub returns the old count: non-zero means
 * another holder remains. */
struct wasm_ext *wasm_ext_ref(struct wasm_ext *e) {
  if (e != NULL)
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  return e;
}

struct listener_tmpl *listener_tmpl_ref(struct listener_tmpl *t) {
  if (t != NULL)
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  return t;
}

const char *wasm_ext_null_vm_name(const struct wasm_ext *e) {
  static const char prefix[] = "file:///";
  const char *name;

  if (e->runtime == NULL || strcmp(e->runtime, WASM_RUNTIME_NULL) != 0 ||
      e->url == NULL || strncmp(e->url, prefix, sizeof(prefix) - 1) != 0)
    return NULL;
  name = e->url + sizeof(prefix) - 1;
  if (*name == '\0')
    return NULL;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
      return NULL;
  return name;
}

void wasm_ext_free(struct wasm_ext *e) {
  if (e == NULL ||
      atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 0)
    return;
  xds_free(e->fqn);
  xds_free(e->organization);
  xds_free(e->name);
  for (size_t i = 0; i < e->n_allowed_in; i++)
    xds_free(e->allowed_in[i]);
  xds_free(e->allowed_in);
  xds_free(e->url);
  xds_free(e->source);
  xds_free(e->description);
  xds_free(e->config_json);
  xds_free(e->pull_secret);
  for (size_t i = 0; i < e->n_env; i++) {
    xds_free(e->env[i].name);
    xds_free(e->env[i].value);
  }
  xds_free(e->env);
  xds_free(e->plugin_name);
  xds_free(e->vm_id);
  xds_free(e->runtime);
  xds_free(e->sha256);
  xds_free(e->namespace);
  for (size_t i = 0; i < e->n_match_labels; i++) {
    xds_free(e->match_labels[i].key);
    xds_free(e->match_labels[i].value);
  }
  xds_free(e->match_labels);
  for (size_t i = 0; i < e->n_target_refs; i++) {
    xds_free(e->target_refs[i].group);
    xds_free(e->target_refs[i].kind);
    xds_free(e->target_refs[i].name);
  }
  xds_free(e->target_refs);
  for (size_t i = 0; i < e->n_matches; i++)
    xds_free(e->matches[i].ports);
  xds_free(e->matches);
  xds_free(e->resource);
  xds_free(e->attached_to);
  for (size_t i = 0; i < e->n_selectors; i++) {
    struct wasm_workload_sel *w = &e->selectors[i];

    for (size_t k = 0; k < w->n_labels; k++) {
      xds_free(w->labels[k].key);
      xds_free(w->labels[k].value);
    }
    xds_free(w->labels);
    for (size_t k = 0; k < w->n_namespaces; k++)
      xds_free(w->namespaces[k]);
    xds_free(w->namespaces);
    for (size_t k = 0; k < w->n_clusters; k++)
      xds_free(w->clusters[k]);
    xds_free(w->clusters);
  }
  xds_free(e->selectors);
  xds_free(e->insert_before);
  xds_free(e->config_bytes);
  xds_free(e->vm_config_json);
  for (size_t i = 0; i < e->n_capabilities; i++)
    xds_free(e->capabilities[i]);
  xds_free(e->capabilities);
  src_loc_cleanup(&e->loc);
  xds_free(e);
}

void listener_tmpl_free(struct listener_tmpl *t) {
  if (t == NULL ||
      atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 0)
    return;
  xds_free(t->name);
  xds_free(t->address);
  for (size_t i = 0; i < t->n_labels; i++) {
    xds_free(t->labels[i].key);
    xds_free(t->labels[i].value);
  }
  xds_free(t->labels);
  xds_free(t->stat_prefix);
  xds_free(t->route_cluster);
  xds_free(t->route_prefix);
  xds_free(t->rds_name);
  xds_free(t->rds_cluster);
  for (size_t i = 0; i < t->n_filters; i++) {
    struct native_filter *f = &t->filters[i];
    xds_free(f->name);
    xds_free(f->type_url);
    ynode_free(f->typed_config);
    src_loc_cleanup(&f->loc);
  }
  xds_free(t->filters);
  xds_free(t->tcp_cluster);
  for (size_t i = 0; i < t->n_tcp_chains; i++) {
    for (size_t k = 0; k < t->tcp_chains[i].n_server_names; k++)
      xds_free(t->tcp_chains[i].server_names[k]);
    xds_free(t->tcp_chains[i].server_names);
    xds_free(t->tcp_chains[i].cluster);
  }
  xds_free(t->tcp_chains);
  for (size_t i = 0; i < t->n_attach; i++) {
    xds_free(t->attach[i].fqn);
    xds_free(t->attach[i].config_json);
    src_loc_cleanup(&t->attach[i].loc);
  }
  xds_free(t->attach);
  src_loc_cleanup(&t->loc);
  xds_free(t);
}
