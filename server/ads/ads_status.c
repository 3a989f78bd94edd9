/*
 * ads_status.c: a stream's status for the admin pages (/debug/proxies):
 * node, class, and per type and resource what was sent, acknowledged or
 * rejected, and what an extension is served as.
 */
#include "server/ads/ads_impl.h"

#include <string.h>
#include <time.h>

#include "server/compose/chain.h"

static const char *state_name(enum ads_res_state st) {
  switch (st) {
  case ADS_RES_PENDING:
    return "DEPLOYMENT_PENDING";
  case ADS_RES_ACKED:
    return "FILTERS_DEPLOYED";
  case ADS_RES_NACKED:
    return "DEPLOYMENT_FAILED";
  case ADS_RES_CLIENT:
    return "FILTERS_DEPLOYED";
  }
  return "UNKNOWN";
}

json_t *ads_stream_status(const struct ads_stream *s) {
  json_t *o = json_object(), *types = json_object();

  ADS_CHECK(s);
  if (o == NULL || types == NULL) {
    json_decref(o);
    json_decref(types);
    return NULL;
  }
  json_object_set_new(o, "node_id",
                      json_string(s->has_node ? s->pid.node_id : ""));
  if (s->has_node) {
    json_object_set_new(o, "cluster", json_string(s->pid.cluster));
    json_object_set_new(o, "organization", json_string(s->pid.organization));
    json_object_set_new(
        o, "tenant", s->pid.tenant ? json_string(s->pid.tenant) : json_null());
    json_object_set_new(o, "namespace",
                        s->pid.namespace != NULL ? json_string(s->pid.namespace)
                                                 : json_null());
    json_object_set_new(
        o, "mode",
        json_string(s->pid.mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR"));
  }
  json_object_set_new(o, "peer", json_string(s->peer));
  json_object_set_new(o, "protocol",
                      json_string(s->mode == ADS_DELTA ? "delta" : "sotw"));
  json_object_set_new(o, "verified_by_certificate",
                      json_boolean(s->verified != NULL));
  {
    char when[40];
    time_t secs = (time_t)(s->connected_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(o, "connected_since", json_string(when));
  }
  if (s->cls != NULL) {
    /* The class key is organization, tenant, mode and the selected
     * templates, one per line. */
    json_t *cls = json_object(), *tmpls = json_array();
    const char *p = s->cls->key;
    int field = 0;
    while (*p != '\0') {
      const char *nl = strchr(p, '\n');
      size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
      json_t *v = json_stringn(p, len);
      if (field == 0)
        json_object_set_new(cls, "organization", v);
      else if (field == 1)
        json_object_set_new(cls, "tenant",
                            len > 0 ? v : (json_decref(v), json_null()));
      else if (field == 2)
        json_object_set_new(cls, "mode", v);
      else
        json_array_append_new(tmpls, v);
      field++;
      p += len + (nl != NULL ? 1 : 0);
    }
    json_object_set_new(cls, "templates", tmpls);
    json_object_set_new(o, "class", cls);
  }
  json_object_set_new(o, "responses", json_integer((json_int_t)s->responses));
  {
    /* Events whose log lines are rate-limited: this stream's counts, and
     * the proxy's (its node id's) since it was first seen, across
     * reconnects, with the lines left out. */
    static const char *const keys[ADS_EV_N] = {"nack", "refused_name",
                                               "unserved_type"};
    json_t *ev = json_object();

    for (int k = 0; ev != NULL && k < ADS_EV_N; k++) {
      struct xds_ratelog_counts c;
      json_t *one = json_object();

      json_object_set_new(one, "stream",
                          json_integer((json_int_t)s->events[k]));
      if (s->has_node &&
          xds_ratelog_counts(s->ratelog, s->pid.node_id, k, &c) == 0) {
        json_object_set_new(one, "proxy", json_integer((json_int_t)c.events));
        json_object_set_new(one, "log_lines_suppressed",
                            json_integer((json_int_t)c.suppressed));
      }
      json_object_set_new(ev, keys[k], one);
    }
    json_object_set_new(o, "events", ev);
  }
  for (int i = 0; i < ADS_T_N; i++) {
    const struct ads_type_state *t = &s->t[i];
    json_t *tj, *res;
    if (!t->requested)
      continue;
    tj = json_object();
    res = json_object();
    json_object_set_new(tj, "version_sent", json_string(t->sent_version));
    json_object_set_new(tj, "version_acked", json_string(t->acked_version));
    json_object_set_new(tj, "acks", json_integer((json_int_t)t->acks));
    json_object_set_new(tj, "nacks", json_integer((json_int_t)t->nacks));
    if (t->nack_error != NULL)
      json_object_set_new(tj, "last_nack_error", json_string(t->nack_error));
    json_object_set_new(tj, "wildcard", json_boolean(t->wildcard));
    for (uint32_t j = 0; j < t->sent.n; j++) {
      const struct ads_res *r = &t->sent.v[j];
      const char *key = r->name;
      char ver[VERSION_LEN + 1], acked[VERSION_LEN + 1];
      json_t *rj = json_object();
      ads_res_version_text(r, ver);
      ads_res_acked_text(&t->sent, r, acked);
      json_object_set_new(rj, "version_sent", json_string(ver));
      json_object_set_new(rj, "version_acked", json_string(acked));
      json_object_set_new(rj, "state", json_string(state_name(r->state)));
      if (r->state == ADS_RES_NACKED && t->nack_error != NULL)
        json_object_set_new(rj, "error", json_string(t->nack_error));
      if (i == ADS_T_ECDS && s->snap != NULL) {
        /* What the extension is served as, and why when not itself. */
        const struct encode_module *m = snapshot_module(s->snap, key);
        const struct wasm_ext *e =
            catalog_ext_find(snapshot_catalog(s->snap), key);
        if (m != NULL && e != NULL) {
          if (m->kind != ENCODE_MOD_UNAVAILABLE) {
            json_object_set_new(rj, "served_as", json_string("wasm"));
            if (m->kind == ENCODE_MOD_REMOTE) {
              json_object_set_new(rj, "module_sha256", json_string(m->sha256));
              json_object_set_new(rj, "module_uri", json_string(m->uri));
            } else {
              json_object_set_new(rj, "module_url", json_string(e->url));
            }
          } else {
            json_object_set_new(
                rj, "served_as",
                json_string(e->fail_strategy == WASM_FAIL_OPEN
                                ? "allow-all RBAC substitute (FAIL_OPEN)"
                            : e->fail_strategy == WASM_FAIL_RELOAD
                                ? "deny-all RBAC substitute (FAIL_RELOAD)"
                                : "deny-all RBAC substitute (FAIL_CLOSE)"));
            json_object_set_new(rj, "reason", json_string(m->reason));
          }
          json_object_set_new(rj, "served_kind",
                              json_string(served_as_label(
                                  snapshot_served_as(s->snap, key, NULL))));
        }
      }
      json_object_set_new(res, key, rj);
    }
    json_object_set_new(tj, "resources", res);
    json_object_set_new(types, ads_type_names[i], tj);
  }
  json_object_set_new(o, "types", types);
  return o;
}
