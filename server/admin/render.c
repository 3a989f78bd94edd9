/*
 * render.c: the JSON of render.h. Listeners and extension configs are the
 * very bytes the proxy would be sent, decoded again, so what is shown is
 * what is served.
 */
#include "server/admin/render.h"

#include <string.h>

#include "server/compose/chain.h"
#include "server/compose/delivery.h"
#include "server/compose/encode.h"
#include "server/pb/pbjson.h"
#include "store/catalog.h"

#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"

static const char *mode_name(enum proxy_mode m) {
  return m == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR";
}

static json_t *node_json(const struct proxy_id *p) {
  json_t *o = json_object(), *labels = json_object();

  json_object_set_new(o, "id", json_string(p->node_id));
  json_object_set_new(o, "cluster", json_string(p->cluster));
  json_object_set_new(o, "organization", json_string(p->organization));
  json_object_set_new(o, "tenant",
                      p->tenant ? json_string(p->tenant) : json_null());
  json_object_set_new(o, "mode", json_string(mode_name(p->mode)));
  for (size_t i = 0; i < p->n_labels; i++)
    json_object_set_new(labels, p->labels[i].key,
                        json_string(p->labels[i].value));
  json_object_set_new(o, "labels", labels);
  json_object_set_new(o, "namespace",
                      p->namespace != NULL ? json_string(p->namespace)
                                           : json_null());
  return o;
}

/* How an extension is served: the real Wasm config or a substitute, or
 * that render did not fetch its module (the server would). */
static json_t *serving_json(struct snapshot *s, const struct wasm_ext *e) {
  const struct encode_module *m;
  enum served_as a = snapshot_served_as(s, e->fqn, &m);
  const char *subst = e->fail_strategy == WASM_FAIL_OPEN
                          ? "allow-all RBAC substitute (FAIL_OPEN)"
                      : e->fail_strategy == WASM_FAIL_RELOAD
                          ? "deny-all RBAC substitute (FAIL_RELOAD)"
                          : "deny-all RBAC substitute (FAIL_CLOSE)";
  json_t *o = json_object();

  if (a == SERVED_WASM) {
    json_object_set_new(o, "served_as", json_string("wasm"));
    if (m != NULL && m->kind == ENCODE_MOD_REMOTE) {
      json_object_set_new(o, "module_uri", json_string(m->uri));
      json_object_set_new(o, "module_sha256", json_string(m->sha256));
    }
  } else if (m != NULL && m->reason != NULL &&
             strcmp(m->reason, DELIVERY_NOT_FETCHED) == 0) {
    /* Not a guess: the server's answer depends on the fetch. */
    json_object_set_new(o, "served_as", json_string(DELIVERY_NOT_FETCHED));
    json_object_set_new(o, "until_fetched", json_string(subst));
  } else {
    json_object_set_new(o, "served_as", json_string(subst));
    json_object_set_new(
        o, "reason",
        json_string(m != NULL && m->reason ? m->reason : "unavailable"));
  }
  json_object_set_new(o, "served_kind", json_string(served_as_label(a)));
  return o;
}

json_t *render_proxy(struct snapshot *s, const struct proxy_id *p) {
  const struct catalog *cat = snapshot_catalog(s);
  const struct xds_class *cls;
  json_t *root, *listeners, *exts, *tmpls;
  char prefix[512];
  size_t plen;
  unsigned flags =
      snapshot_opts(s)->attachment_required ? CHAIN_ATTACHMENT_REQUIRED : 0;

  if (snapshot_class(s, p, &cls) < 0)
    return NULL;
  root = json_object();
  json_object_set_new(root, "node", node_json(p));
  json_object_set_new(root, "lds_version", json_string(cls->lds_version));
  if (cls->problems != NULL)
    json_object_set_new(root, "problems", json_string(cls->problems));

  /* Templates: applied or not, and the verdict of every extension of the
   * proxy's organization, and of every WasmPlugin of its namespace and of
   * the root namespace, on each applied one. */
  tmpls = json_array();
  plen = (size_t)snprintf(prefix, sizeof(prefix),
                          "organizations/%s/extensions/", p->organization);
  for (size_t i = 0; i < catalog_tmpl_count(cat); i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(cat, i);
    json_t *tj = json_object(), *verdicts;
    json_object_set_new(tj, "template", json_string(t->name));
    if (!chain_tmpl_applies(t, p)) {
      json_object_set_new(tj, "applies", json_false());
      json_object_set_new(tj, "reason",
                          json_string("selector does not match the proxy"));
      json_array_append_new(tmpls, tj);
      continue;
    }
    json_object_set_new(tj, "applies", json_true());
    verdicts = json_array();
    for (size_t k = 0; k < catalog_ext_count(cat); k++) {
      const struct wasm_ext *e = catalog_ext_at(cat, k);
      enum chain_verdict v;
      json_t *vj;
      if (e->kind == WASM_KIND_DEPLOYMENT
              ? 0 /* mesh-wide: every filter gets its verdict */
          : e->kind == WASM_KIND_PLUGIN
              ? !chain_ext_visible(e, p)
              : plen >= sizeof(prefix) || strncmp(e->fqn, prefix, plen) != 0)
        continue;
      /* The attachment rule first: it says which record serves here. */
      v = chain_attach_judge(cat, k, t, flags);
      if (v == CHAIN_IN)
        v = chain_judge(e, t, p);
      vj = json_object();
      json_object_set_new(vj, "extension", json_string(e->fqn));
      json_object_set_new(vj, "included", json_boolean(v == CHAIN_IN));
      json_object_set_new(vj, "reason",
                          json_string(v == CHAIN_NOT_ATTACHED ||
                                              v == CHAIN_UNATTACHED ||
                                              v == CHAIN_OVERRIDDEN
                                          ? chain_verdict_str(v)
                                          : chain_explain(e, t, p)));
      json_array_append_new(verdicts, vj);
    }
    json_object_set_new(tj, "extensions", verdicts);
    json_array_append_new(tmpls, tj);
  }
  json_object_set_new(root, "templates", tmpls);

  listeners = json_array();
  for (size_t i = 0; i < cls->n_listeners; i++) {
    const struct xds_resource *r = &cls->listeners[i];
    json_t *lj = json_object();
    json_object_set_new(lj, "name", json_string(r->name));
    json_object_set_new(lj, "version", json_string(r->version));
    json_object_set_new(
        lj, "resource",
        pbjson_bytes(&envoy__config__listener__v3__listener__descriptor,
                     r->bytes, r->len));
    json_array_append_new(listeners, lj);
  }
  json_object_set_new(root, "listeners", listeners);

  /* ECDS: every extension some listener of this proxy references. */
  exts = json_array();
  for (size_t k = 0; k < catalog_ext_count(cat); k++) {
    const struct wasm_ext *e = catalog_ext_at(cat, k);
    const struct xds_resource *r;
    int used = 0;
    json_t *ej;
    for (size_t i = 0; i < catalog_tmpl_count(cat) && !used; i++) {
      const struct listener_tmpl *t = catalog_tmpl_at(cat, i);
      used = chain_tmpl_applies(t, p) && chain_judge(e, t, p) == CHAIN_IN &&
             chain_attach_judge(cat, k, t, flags) == CHAIN_IN;
    }
    if (!used)
      continue;
    r = snapshot_ecds(s, e->fqn);
    ej = serving_json(s, e);
    json_object_set_new(ej, "name", json_string(e->fqn));
    json_object_set_new(ej, "version", json_string(r->version));
    json_object_set_new(
        ej, "resource",
        pbjson_bytes(
            &envoy__config__core__v3__typed_extension_config__descriptor,
            r->bytes, r->len));
    json_array_append_new(exts, ej);
  }
  json_object_set_new(root, "extension_configs", exts);

  /* --ecds-slots: each slot in listener order, what it holds (null: empty,
   * its no-op) and its version. */
  if (cls->n_slots > 0) {
    json_t *slots = json_array();
    for (size_t i = 0; i < cls->n_slots; i++) {
      json_t *sj = json_object();
      json_object_set_new(sj, "name", json_string(cls->slots[i].name));
      json_object_set_new(sj, "extension",
                          cls->slot_fqn[i] != NULL
                              ? json_string(cls->slot_fqn[i])
                              : json_null());
      json_object_set_new(sj, "version", json_string(cls->slots[i].version));
      json_array_append_new(slots, sj);
    }
    json_object_set_new(root, "slots", slots);
  }
  return root;
}
