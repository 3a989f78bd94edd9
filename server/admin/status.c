/*
 * status.c: health, readiness and per-proxy status over the admin server.
 */
#include "server/admin/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "modules/resolver.h"
#include "store/catalog.h"
#include "store/decode.h"

void status_init(struct status *st, struct xds_server *server) {
  memset(st, 0, sizeof(*st));
  st->server = server;
  atomic_init(&st->ready, 0);
  atomic_init(&st->generation, 0);
  pthread_mutex_init(&st->lock, NULL);
}

static void problems_free(struct status_problem *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    xds_free(v[i].resource);
    xds_free(v[i].text);
  }
  xds_free(v);
}

void status_cleanup(struct status *st) {
  problems_free(st->problems, st->n_problems);
  snapshot_unref(st->snap);
  xds_free(st->subst);
  pthread_mutex_destroy(&st->lock);
}

void status_attach(struct status *st, struct delivery *d,
                   struct xds_stats *stats) {
  st->delivery = d;
  st->stats = stats;
}

/* Appends to b the fail-closed extensions snap serves as deny-all, with
 * why (live from the resolver when there is one: the snapshot keeps the
 * reason it was built with, and a failed retry builds no new one), within
 * STATUS_SUBST_MAX bytes. Returns how many there are. */
static size_t list_closed(struct status *st, struct snapshot *snap,
                          struct xds_buf *b, int with_reasons) {
  const struct catalog *cat = snapshot_catalog(snap);
  size_t n = 0, shown = 0;

  for (size_t i = 0; i < catalog_ext_count(cat); i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    const struct encode_module *m;
    struct module_info mi;

    if (snapshot_served_as(snap, e->fqn, &m) != SERVED_DENY_ALL)
      continue;
    n++;
    if (b->len >= STATUS_SUBST_MAX)
      continue;
    shown++;
    if (!with_reasons) {
      xds_buf_printf(b, "%s%s", shown > 1 ? ", " : "", e->fqn);
      continue;
    }
    memset(&mi, 0, sizeof(mi));
    if (st->delivery == NULL || delivery_lookup(st->delivery, e->fqn, &mi) < 0)
      mi.reason = NULL;
    xds_buf_printf(b, "%s%s (%s)", shown > 1 ? "; " : "", e->fqn,
                   mi.reason != NULL                ? mi.reason
                   : m != NULL && m->reason != NULL ? m->reason
                                                    : "unavailable");
    module_info_cleanup(&mi);
  }
  if (shown < n)
    xds_buf_printf(b, "; and %zu more", n - shown);
  return n;
}

void status_set_served(struct status *st, struct snapshot *snap) {
  const struct catalog *cat = snapshot_catalog(snap);
  long counts[SERVED_AS_N] = {0};
  struct xds_buf b;
  char *subst = NULL, *old;
  size_t n;
  int changed;

  for (size_t i = 0; i < catalog_ext_count(cat); i++)
    counts[snapshot_served_as(snap, catalog_ext_at(cat, i)->fqn, NULL)]++;
  if (st->stats != NULL)
    for (int i = 0; i < SERVED_AS_N; i++)
      atomic_store(&st->stats->extensions_served[i], counts[i]);
  xds_buf_init(&b, STATUS_SUBST_MAX + 256);
  n = list_closed(st, snap, &b, 0);
  if (n > 0)
    subst = xds_buf_steal(&b, NULL);
  xds_buf_cleanup(&b);
  pthread_mutex_lock(&st->lock);
  old = st->subst;
  changed = (old == NULL) != (subst == NULL) ||
            (old != NULL && strcmp(old, subst) != 0);
  st->subst = subst;
  snapshot_unref(st->snap);
  st->snap = snapshot_ref(snap);
  pthread_mutex_unlock(&st->lock);
  if (changed && subst != NULL)
    XDS_LOGW("degraded: %zu fail-closed extension%s served as deny-all RBAC "
             "(module unavailable; /debug/modules says why): %s",
             n, n == 1 ? " is" : "s are", subst);
  else if (changed)
    XDS_LOGI("no fail-closed extension is served as its substitute any more");
  xds_free(old);
}

void status_set_ready(struct status *st, unsigned long generation) {
  atomic_store(&st->generation, generation);
  atomic_store(&st->ready, 1);
}

void status_set_degraded(struct status *st, const char *reason) {
  pthread_mutex_lock(&st->lock);
  st->degraded = reason != NULL;
  snprintf(st->reason, sizeof(st->reason), "%s", reason != NULL ? reason : "");
  pthread_mutex_unlock(&st->lock);
}

/* Hands a JSON value to the response (consumes j). */
static int json_reply(struct admin_resp *resp, unsigned code, json_t *j) {
  char *text = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;
  size_t n;

  json_decref(j);
  if (text == NULL)
    return XDS_ENOMEM;
  n = strlen(text);
  resp->body = xds_malloc(n + 2);
  if (resp->body == NULL) {
    /* checksrc: allow alloc: json_dumps() allocates with malloc */
    free(text);
    return XDS_ENOMEM;
  }
  memcpy(resp->body, text, n);
  resp->body[n] = '\n';
  resp->body_len = n + 1;
  free(text); /* checksrc: allow alloc: from json_dumps() */
  resp->status = code;
  snprintf(resp->content_type, sizeof(resp->content_type), "application/json");
  return 0;
}

static int text_reply(struct admin_resp *resp, unsigned code, const char *s) {
  resp->body = xds_strdup(s);
  if (resp->body == NULL)
    return XDS_ENOMEM;
  resp->body_len = strlen(s);
  resp->status = code;
  snprintf(resp->content_type, sizeof(resp->content_type),
           "text/plain; charset=utf-8");
  return 0;
}

static int on_healthz(void *arg, const struct admin_req *req,
                      struct admin_resp *resp) {
  (void)arg;
  (void)req;
  return text_reply(resp, 200, "ok\n");
}

static int on_readyz(void *arg, const struct admin_req *req,
                     struct admin_resp *resp) {
  struct status *st = arg;
  struct snapshot *snap;
  struct xds_buf b;

  (void)req;
  if (!atomic_load(&st->ready))
    return text_reply(resp, 503, "not ready: no store loaded yet\n");
  xds_buf_init(&b, STATUS_SUBST_MAX + 1024);
  pthread_mutex_lock(&st->lock);
  if (st->degraded)
    xds_buf_printf(&b,
                   "degraded: %s (serving the last good "
                   "configuration)\n",
                   st->reason);
  snap = st->subst != NULL ? snapshot_ref(st->snap) : NULL;
  pthread_mutex_unlock(&st->lock);
  if (snap != NULL) {
    struct xds_buf list;
    size_t n;

    xds_buf_init(&list, STATUS_SUBST_MAX + 256);
    n = list_closed(st, snap, &list, 1);
    if (n > 0)
      xds_buf_printf(&b,
                     "degraded: %zu fail-closed extension%s served as "
                     "deny-all RBAC (their module is unavailable): %s\n",
                     n, n == 1 ? " is" : "s are",
                     list.data != NULL ? list.data : "");
    xds_buf_cleanup(&list);
    snapshot_unref(snap);
  }
  if (b.len == 0)
    xds_buf_puts(&b, "ready\n");
  if (b.data == NULL) {
    xds_buf_cleanup(&b);
    return XDS_ENOMEM;
  }
  resp->body = xds_buf_steal(&b, &resp->body_len);
  resp->status = 200;
  snprintf(resp->content_type, sizeof(resp->content_type),
           "text/plain; charset=utf-8");
  return 0;
}

static const char *state_name(enum module_state s) {
  return s == MODULE_READY    ? "READY"
         : s == MODULE_FAILED ? "FAILED"
                              : "PENDING";
}

/* One extension of /debug/modules. */
static json_t *module_json(struct status *st, struct snapshot *snap,
                           const struct wasm_ext *e) {
  const struct encode_module *m;
  enum served_as a = snapshot_served_as(snap, e->fqn, &m);
  json_t *o = json_object(), *r;
  struct module_info mi;
  int rc;

  json_object_set_new(o, "extension", json_string(e->fqn));
  json_object_set_new(o, "url", json_string(e->url));
  json_object_set_new(o, "fail_strategy",
                      json_string(wasm_fail_strategy_name(e->fail_strategy)));
  json_object_set_new(o, "served_as", json_string(served_as_label(a)));
  if (a != SERVED_WASM && m != NULL && m->reason != NULL)
    json_object_set_new(o, "reason", json_string(m->reason));
  if (a == SERVED_WASM && m != NULL && m->kind == ENCODE_MOD_REMOTE) {
    json_object_set_new(o, "module_sha256", json_string(m->sha256));
    json_object_set_new(o, "module_uri", json_string(m->uri));
  }
  if (st->delivery == NULL) {
    json_object_set_new(o, "resolver", json_null());
    return o;
  }
  memset(&mi, 0, sizeof(mi));
  rc = delivery_lookup(st->delivery, e->fqn, &mi);
  if (rc == XDS_ENOMEM) {
    json_decref(o);
    return NULL;
  }
  if (rc < 0) { /* not handed to the resolver yet */
    json_object_set_new(o, "resolver", json_null());
    return o;
  }
  r = json_object();
  json_object_set_new(r, "state", json_string(state_name(mi.state)));
  json_object_set_new(r, "source", json_string(mi.url));
  if (mi.sha256[0] != '\0') {
    json_object_set_new(r, "sha256", json_string(mi.sha256));
    json_object_set_new(r, "size", json_integer((json_int_t)mi.size));
  }
  json_object_set_new(r, "sha256_matched",
                      mi.sha_match == MODULE_SHA_MODULE ? json_string("module")
                      : mi.sha_match == MODULE_SHA_MANIFEST
                          ? json_string("manifest")
                          : json_null());
  json_object_set_new(r, "local", json_boolean(mi.local));
  json_object_set_new(r, "direct", json_boolean(mi.direct));
  json_object_set_new(r, "private", json_boolean(mi.is_private));
  json_object_set_new(r, "stale", json_boolean(mi.stale));
  json_object_set_new(r, "fetching", json_boolean(mi.busy));
  json_object_set_new(r, "last_error",
                      mi.reason != NULL ? json_string(mi.reason) : json_null());
  json_object_set_new(r, "attempts", json_integer((json_int_t)mi.attempts));
  json_object_set_new(r, "consecutive_failures",
                      json_integer((json_int_t)mi.failures));
  json_object_set_new(r, "next_attempt_in_ms",
                      mi.next_ms >= 0 ? json_integer((json_int_t)mi.next_ms)
                                      : json_null());
  json_object_set_new(o, "resolver", r);
  module_info_cleanup(&mi);
  return o;
}

static int on_modules(void *arg, const struct admin_req *req,
                      struct admin_resp *resp) {
  struct status *st = arg;
  struct snapshot *snap;
  const struct catalog *cat;
  json_t *arr;

  (void)req;
  pthread_mutex_lock(&st->lock);
  snap = st->snap != NULL ? snapshot_ref(st->snap) : NULL;
  pthread_mutex_unlock(&st->lock);
  if (snap == NULL)
    return text_reply(resp, 503, "not ready: no snapshot served yet\n");
  cat = snapshot_catalog(snap);
  arr = json_array();
  for (size_t i = 0; arr != NULL && i < catalog_ext_count(cat); i++) {
    json_t *one = module_json(st, snap, catalog_ext_at(cat, i));

    if (one == NULL || json_array_append_new(arr, one) < 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  snapshot_unref(snap);
  if (arr == NULL)
    return XDS_ENOMEM;
  return json_reply(resp, 200, arr);
}

/* A whole number query argument; 0 and *out unchanged when absent, -1
 * when not a number. */
static int query_ull(const struct admin_req *req, const char *name,
                     unsigned long long *out) {
  const char *v = req->query(req, name);
  char *end;

  if (v == NULL)
    return 0;
  errno = 0;
  *out = strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || v[0] == '-')
    return -1;
  return 0;
}

static int on_proxies(void *arg, const struct admin_req *req,
                      struct admin_resp *resp) {
  struct status *st = arg;
  const char *id = req->path + strlen("/debug/proxies");
  struct xds_status_query q;
  unsigned long long after = 0, limit = 0;
  struct xds_status_page page;
  int rc;

  if (*id != '\0' && *id != '/')
    return text_reply(resp, 404, "not found\n");
  if (*id == '/')
    id++;
  memset(&q, 0, sizeof(q));
  if (query_ull(req, "after", &after) < 0 ||
      query_ull(req, "limit", &limit) < 0)
    return text_reply(resp, 400,
                      "after and limit must be whole numbers (after: the "
                      "stream_id of the last proxy of the previous page)\n");
  q.after = after;
  q.limit = (size_t)limit;
  q.node_id = *id != '\0' ? id : req->query(req, "node");
  q.organization = req->query(req, "organization");
  q.tenant = req->query(req, "tenant");
  rc = xds_server_status_query(st->server, &q, STATUS_WAIT_MS, &page);
  if (rc == XDS_ETOOBIG)
    return text_reply(resp, 503, "the serving loop did not answer in time\n");
  if (rc < 0)
    return rc;
  if (*id != '\0' && page.count == 0) {
    xds_free(page.json);
    return text_reply(resp, 404, "no connected proxy with that node id\n");
  }
  if (limit > 0 && page.count == limit) {
    /* A full page: where the next one starts. */
    char next[32];

    snprintf(next, sizeof(next), "%llu", (unsigned long long)page.last_id);
    admin_resp_header(resp, STATUS_NEXT_HEADER, next);
  }
  resp->body = page.json;
  resp->body_len = page.len;
  resp->status = 200;
  snprintf(resp->content_type, sizeof(resp->content_type), "application/json");
  return 0;
}

void status_set_problems(struct status *st, const struct problems *pb) {
  struct status_problem *v = NULL, *old;
  size_t n = 0, cap = 0, n_old;
  int oom = 0;

  for (size_t i = 0; pb != NULL && i < problems_count(pb) && !oom; i++) {
    const struct problem *pr = problems_at(pb, i);
    struct xds_buf b;

    if (pr->resource == NULL || n == STATUS_PROBLEMS_MAX)
      continue;
    if (n == cap) {
      struct status_problem *w;

      cap = cap ? cap * 2 : 8;
      w = xds_realloc(v, cap * sizeof(*v));
      if (w == NULL) {
        oom = 1;
        break;
      }
      v = w;
    }
    xds_buf_init(&b, 4096);
    if (problem_format(pr, &b) == XDS_ENOMEM) {
      xds_buf_cleanup(&b);
      oom = 1;
      break;
    }
    while (b.len > 0 && b.data[b.len - 1] == '\n')
      b.len--;
    v[n].text = xds_strndup(b.data != NULL ? b.data : "", b.len);
    v[n].resource = xds_strdup(pr->resource);
    xds_buf_cleanup(&b);
    n++;
    if (v[n - 1].text == NULL || v[n - 1].resource == NULL)
      oom = 1;
  }
  if (oom) {
    problems_free(v, n);
    return;
  }
  pthread_mutex_lock(&st->lock);
  old = st->problems;
  n_old = st->n_problems;
  st->problems = v;
  st->n_problems = n;
  pthread_mutex_unlock(&st->lock);
  problems_free(old, n_old);
}

int status_resource_problems(struct status *st, const char *id,
                             struct xds_buf *out) {
  int rc = 0;

  pthread_mutex_lock(&st->lock);
  for (size_t i = 0; i < st->n_problems && rc == 0; i++) {
    if (strcmp(st->problems[i].resource, id) != 0)
      continue;
    if (out->len > 0)
      rc = xds_buf_puts(out, "; ");
    if (rc == 0)
      rc = xds_buf_puts(out, st->problems[i].text);
  }
  pthread_mutex_unlock(&st->lock);
  return rc;
}

/* ---- /debug/resources/<kind>/<a>/<b> ---- */

/* The served records of one resource (a WasmDeployment: its filters, in
 * filters[] order). Returns how many, at most max. */
static size_t resource_records(const struct catalog *cat, const char *kind,
                               const char *a, const char *b,
                               const struct wasm_ext **out, size_t max) {
  char id[600];
  size_t n = 0;

  if (strcmp(kind, "WasmExtension") == 0)
    snprintf(id, sizeof(id), "organizations/%s/extensions/%s", a, b);
  else if (strcmp(kind, "WasmPlugin") == 0)
    snprintf(id, sizeof(id), WASM_PLUGIN_FQN_PREFIX "%s.%s", a, b);
  else if (strcmp(kind, "WasmDeployment") == 0)
    snprintf(id, sizeof(id), WASM_DEPLOY_FQN_PREFIX "%s.%s", a, b);
  else
    return 0;
  for (size_t i = 0; i < catalog_ext_count(cat) && n < max; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);

    if (strcmp(wasm_ext_resource_id(e), id) == 0)
      out[n++] = e;
  }
  /* filters[] order (the catalog's is by fqn: ".../10" before ".../2"). */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && out[j - 1]->filter_index > out[j]->filter_index;
         j--) {
      const struct wasm_ext *t = out[j];

      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

/* Appends to err what keeps record e from being served as Wasm: its
 * module's failure (pull errors and the like). */
static int resource_error(struct status *st, struct snapshot *snap,
                          const struct wasm_ext *e, size_t n_records,
                          struct xds_buf *err) {
  const struct encode_module *m;
  enum served_as a = snapshot_served_as(snap, e->fqn, &m);
  struct module_info mi;
  const char *why = NULL;
  int rc = 0;

  memset(&mi, 0, sizeof(mi));
  if (a == SERVED_WASM)
    return 0;
  if (st->delivery != NULL && delivery_lookup(st->delivery, e->fqn, &mi) == 0)
    why = mi.reason;
  if (why == NULL && m != NULL)
    why = m->reason;
  if (err->len > 0)
    rc = xds_buf_puts(err, "; ");
  if (rc == 0 && n_records > 1 && e->kind == WASM_KIND_DEPLOYMENT)
    rc = xds_buf_printf(err, "filters[%zu]: ", e->filter_index);
  if (rc == 0)
    rc = xds_buf_printf(err, "served as %s: %s", served_as_label(a),
                        why != NULL ? why : "module not available");
  module_info_cleanup(&mi);
  return rc;
}

/* The worst state of the resource's filters on one proxy, from its ECDS
 * resources as /debug/proxies reports them: any DEPLOYMENT_FAILED wins,
 * then DEPLOYMENT_PENDING; NULL when the proxy was sent none of them. */
static json_t *proxy_state(json_t *proxy, const struct wasm_ext *const *v,
                           size_t n) {
  json_t *res = json_object_get(
      json_object_get(json_object_get(proxy, "types"), "ECDS"), "resources");
  const char *worst = NULL, *error = NULL;
  size_t seen = 0;
  json_t *o;

  for (size_t i = 0; i < n; i++) {
    json_t *r = json_object_get(res, v[i]->fqn);
    const char *state = json_string_value(json_object_get(r, "state"));

    if (state == NULL)
      continue;
    seen++;
    if (strcmp(state, "DEPLOYMENT_FAILED") == 0) {
      if (worst == NULL || strcmp(worst, "DEPLOYMENT_FAILED") != 0)
        error = json_string_value(json_object_get(r, "error"));
      worst = "DEPLOYMENT_FAILED";
    } else if (strcmp(state, "DEPLOYMENT_PENDING") == 0 &&
               (worst == NULL || strcmp(worst, "FILTERS_DEPLOYED") == 0)) {
      worst = "DEPLOYMENT_PENDING";
    } else if (worst == NULL) {
      worst = "FILTERS_DEPLOYED";
    }
  }
  if (seen == 0)
    return NULL;
  /* Some filters not sent yet: the deployment is not complete there. */
  if (seen < n && strcmp(worst, "FILTERS_DEPLOYED") == 0)
    worst = "DEPLOYMENT_PENDING";
  o = json_object();
  json_object_set_new(o, "state", json_string(worst));
  if (error != NULL)
    json_object_set_new(o, "error", json_string(error));
  return o;
}

/* Adds every connected proxy's state to states, page by page. */
static int resource_states(struct status *st, const struct wasm_ext *const *v,
                           size_t n, json_t *states) {
  struct xds_status_query q;
  uint64_t after = 0;

  for (;;) {
    struct xds_status_page page;
    json_error_t je;
    json_t *arr;
    int rc;

    memset(&q, 0, sizeof(q));
    q.after = after;
    q.limit = STATUS_RESOURCE_PAGE;
    rc = xds_server_status_query(st->server, &q, STATUS_WAIT_MS, &page);
    if (rc < 0)
      return rc;
    arr = json_loadb(page.json != NULL ? page.json : "[]", page.len, 0, &je);
    xds_free(page.json);
    if (arr == NULL)
      return XDS_ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
      json_t *p = json_array_get(arr, i);
      const char *node = json_string_value(json_object_get(p, "node_id"));
      json_t *one;

      if (node == NULL || node[0] == '\0')
        continue;
      one = proxy_state(p, v, n);
      if (one == NULL)
        continue;
      /* A node on two streams: the worse state stands. */
      if (json_object_get(states, node) != NULL &&
          strcmp(json_string_value(json_object_get(one, "state")),
                 "DEPLOYMENT_FAILED") != 0) {
        json_decref(one);
        continue;
      }
      json_object_set_new(states, node, one);
    }
    json_decref(arr);
    if (page.count < STATUS_RESOURCE_PAGE)
      return 0;
    after = page.last_id;
  }
}

static int on_resources(void *arg, const struct admin_req *req,
                        struct admin_resp *resp) {
  struct status *st = arg;
  const char *p = req->path + strlen("/debug/resources");
  const struct wasm_ext *v[DECODE_MAX_FILTERS];
  char kind[64], a[256], b[256];
  struct snapshot *snap;
  struct xds_buf err;
  json_t *o, *states, *filters;
  size_t n;
  int rc;

  if (sscanf(p, "/%63[^/]/%255[^/]/%255[^/]", kind, a, b) != 3 ||
      strchr(p + 1 + strlen(kind) + 1 + strlen(a) + 1 + strlen(b), '/') != NULL)
    return text_reply(resp, 404,
                      "expected /debug/resources/WasmExtension/ORG/NAME, "
                      "/debug/resources/WasmPlugin/NAMESPACE/NAME or "
                      "/debug/resources/WasmDeployment/NAMESPACE/NAME\n");
  pthread_mutex_lock(&st->lock);
  snap = st->snap != NULL ? snapshot_ref(st->snap) : NULL;
  pthread_mutex_unlock(&st->lock);
  if (snap == NULL)
    return text_reply(resp, 503, "not ready: no snapshot served yet\n");
  n = resource_records(snapshot_catalog(snap), kind, a, b, v,
                       DECODE_MAX_FILTERS);
  if (n == 0) {
    snapshot_unref(snap);
    return text_reply(resp, 404, "no such resource is served\n");
  }
  xds_buf_init(&err, 64 * 1024);
  o = json_object();
  states = json_object();
  filters = json_array();
  /* The current document's problems first: they say why the version
   * served is not the latest. */
  rc = o == NULL || states == NULL || filters == NULL
           ? XDS_ENOMEM
           : status_resource_problems(st, wasm_ext_resource_id(v[0]), &err);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = resource_error(st, snap, v[i], n, &err);
    if (rc == 0)
      rc = json_array_append_new(filters, json_string(v[i]->fqn)) < 0
               ? XDS_ENOMEM
               : 0;
  }
  if (rc == XDS_ETOOBIG)
    rc = 0; /* the error text is cut */
  if (rc == 0 && st->server != NULL)
    rc = resource_states(st, v, n, states);
  if (rc == 0) {
    json_object_set_new(o, "kind", json_string(kind));
    json_object_set_new(o, "name", json_string(wasm_ext_resource_id(v[0])));
    json_object_set_new(o, "observedGeneration",
                        v[0]->generation > 0
                            ? json_integer((json_int_t)v[0]->generation)
                            : json_null());
    json_object_set_new(o, "servedGeneration",
                        json_integer((json_int_t)snapshot_generation(snap)));
    json_object_set_new(o, "error",
                        err.len > 0 ? json_stringn(err.data, err.len)
                                    : json_null());
    json_object_set_new(o, "filters", filters);
    json_object_set_new(o, "workloadStates", states);
    filters = states = NULL;
  }
  json_decref(filters);
  json_decref(states);
  xds_buf_cleanup(&err);
  snapshot_unref(snap);
  if (rc == XDS_ETOOBIG) {
    json_decref(o);
    return text_reply(resp, 503, "the serving loop did not answer in time\n");
  }
  if (rc < 0) {
    json_decref(o);
    return rc;
  }
  return json_reply(resp, 200, o);
}

int status_register(struct status *st, struct admin *a) {
  int rc = admin_route(a, "/healthz", "GET,HEAD", on_healthz, st);

  if (rc == 0)
    rc = admin_route(a, "/readyz", "GET,HEAD", on_readyz, st);
  if (rc == 0)
    rc = admin_route_slow(a, "/debug/proxies", "GET", on_proxies, st);
  if (rc == 0)
    rc = admin_route_slow(a, "/debug/modules", "GET", on_modules, st);
  if (rc == 0)
    rc = admin_route_slow(a, "/debug/resources", "GET", on_resources, st);
  if (rc == 0)
    rc = admin_protect(a, "/debug/");
  return rc;
}

/* ---- every resource at once (status written back to etcd) ---- */

/* One resource being collected: its records and, for the proxy being
 * read, the worst state of its filters there. */
struct coll {
  const char *id;
  char ref[600]; /* "<Kind>/<a>/<b>" */
  const struct wasm_ext *v[DECODE_MAX_FILTERS];
  size_t n;
  size_t counts[3]; /* FILTERS_DEPLOYED, DEPLOYMENT_PENDING, _FAILED */
  json_t *failed;   /* [{node, error}], the first by node id */
  size_t failed_more;
  /* the proxy being read: */
  uint64_t mark;
  size_t seen;
  int worst; /* -1 none, 0 deployed, 1 pending, 2 failed */
  const char *error;
};

static const char *const STATE_NAMES[3] = {
    "FILTERS_DEPLOYED", "DEPLOYMENT_PENDING", "DEPLOYMENT_FAILED"};

static int state_rank(const char *s) {
  for (int i = 0; i < 3; i++)
    if (strcmp(s, STATE_NAMES[i]) == 0)
      return i;
  return -1;
}

/* Keeps at most max failed proxies of g, the first by node id. */
static void coll_failed(struct coll *g, const char *node, const char *error,
                        size_t max, size_t max_error) {
  size_t n = json_array_size(g->failed), at = n;
  json_t *o;

  for (size_t i = 0; i < n; i++)
    if (strcmp(node, json_string_value(json_object_get(
                         json_array_get(g->failed, i), "node"))) < 0) {
      at = i;
      break;
    }
  if (at >= max) {
    g->failed_more++;
    return;
  }
  o = json_object();
  json_object_set_new(o, "node", json_string(node));
  if (error != NULL)
    json_object_set_new(o, "error",
                        json_stringn(error, strnlen(error, max_error)));
  json_array_insert_new(g->failed, at, o);
  if (json_array_size(g->failed) > max) {
    json_array_remove(g->failed, max);
    g->failed_more++;
  }
}

int status_collect(struct status *st, const struct status_collect_opts *opts,
                   json_t **out) {
  struct snapshot *snap;
  const struct catalog *cat;
  struct coll *gs = NULL, **touched = NULL;
  struct xds_map *by_id = NULL, *by_fqn = NULL;
  size_t n_gs = 0;
  uint64_t after = 0, serial = 0;
  json_t *res = NULL;
  int rc = 0;

  *out = NULL;
  pthread_mutex_lock(&st->lock);
  snap = st->snap != NULL ? snapshot_ref(st->snap) : NULL;
  pthread_mutex_unlock(&st->lock);
  if (snap == NULL)
    return XDS_ENOTFOUND;
  cat = snapshot_catalog(snap);
  gs = xds_calloc(catalog_ext_count(cat) + 1, sizeof(*gs));
  touched = xds_calloc(catalog_ext_count(cat) + 1, sizeof(*touched));
  by_id = xds_map_new_borrowed();
  by_fqn = xds_map_new_borrowed();
  if (gs == NULL || touched == NULL || by_id == NULL || by_fqn == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  /* The stored resources (records derived for attachments are not). */
  for (size_t i = 0; i < catalog_ext_count(cat) && rc == 0; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    const char *id = wasm_ext_resource_id(e);
    struct coll *g;

    if (e->attached_to != NULL)
      continue;
    g = xds_map_get(by_id, id);
    if (g == NULL) {
      g = &gs[n_gs++];
      g->id = id;
      g->worst = -1;
      g->failed = json_array();
      snprintf(g->ref, sizeof(g->ref), "%s/%s/%s", wasm_ext_kind_name(e),
               e->kind == WASM_KIND_EXTENSION ? e->organization : e->namespace,
               e->name);
      if (g->failed == NULL || xds_map_put(by_id, id, g, NULL) < 0)
        rc = XDS_ENOMEM;
    }
    if (rc == 0 && g->n < DECODE_MAX_FILTERS) {
      g->v[g->n++] = e;
      if (xds_map_put(by_fqn, e->fqn, g, NULL) < 0)
        rc = XDS_ENOMEM;
    }
  }
  /* One pass over the connected proxies, a page at a time. */
  while (rc == 0 && st->server != NULL) {
    struct xds_status_query q;
    struct xds_status_page page;
    json_error_t je;
    json_t *arr;

    memset(&q, 0, sizeof(q));
    q.after = after;
    q.limit = STATUS_RESOURCE_PAGE;
    rc = xds_server_status_query(st->server, &q, STATUS_WAIT_MS, &page);
    if (rc < 0)
      break;
    arr = json_loadb(page.json != NULL ? page.json : "[]", page.len, 0, &je);
    xds_free(page.json);
    if (arr == NULL) {
      rc = XDS_ENOMEM;
      break;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
      json_t *p = json_array_get(arr, i);
      const char *node = json_string_value(json_object_get(p, "node_id"));
      json_t *ecds = json_object_get(
          json_object_get(json_object_get(p, "types"), "ECDS"), "resources");
      const char *fqn;
      size_t n_touched = 0;
      json_t *r;

      if (node == NULL || node[0] == '\0')
        continue;
      serial++;
      json_object_foreach(ecds, fqn, r) {
        struct coll *g = xds_map_get(by_fqn, fqn);
        const char *state = json_string_value(json_object_get(r, "state"));
        int k = state != NULL ? state_rank(state) : -1;

        if (g == NULL || k < 0)
          continue;
        if (g->mark != serial) {
          touched[n_touched++] = g;
          g->mark = serial;
          g->seen = 0;
          g->worst = -1;
          g->error = NULL;
        }
        g->seen++;
        if (k > g->worst) {
          g->worst = k;
          if (k == 2)
            g->error = json_string_value(json_object_get(r, "error"));
        }
      }
      /* Fold this proxy into the resources it was sent. */
      for (size_t k = 0; k < n_touched; k++) {
        struct coll *g = touched[k];

        if (g->worst < 0)
          continue;
        if (g->worst == 0 && g->seen < g->n)
          g->worst = 1; /* not all its filters were sent there */
        g->counts[g->worst]++;
        if (g->worst == 2)
          coll_failed(g, node, g->error, opts->max_failed, opts->max_error);
        g->worst = -1;
      }
    }
    json_decref(arr);
    if (page.count < STATUS_RESOURCE_PAGE)
      break;
    after = page.last_id;
  }
  if (rc < 0)
    goto out;
  res = json_object();
  if (res == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  for (size_t k = 0; k < n_gs && rc == 0; k++) {
    struct coll *g = &gs[k];
    struct xds_buf err;
    json_t *o = json_object(), *counts = json_object();

    xds_buf_init(&err, opts->max_error);
    rc = o == NULL || counts == NULL
             ? XDS_ENOMEM
             : status_resource_problems(st, g->id, &err);
    for (size_t i = 0; rc == 0 && i < g->n; i++)
      rc = resource_error(st, snap, g->v[i], g->n, &err);
    if (rc == XDS_ETOOBIG)
      rc = 0; /* the error text is cut */
    for (int s = 0; rc == 0 && s < 3; s++)
      json_object_set_new(counts, STATE_NAMES[s],
                          json_integer((json_int_t)g->counts[s]));
    if (rc == 0) {
      json_object_set_new(o, "observedGeneration",
                          g->v[0]->generation > 0
                              ? json_integer((json_int_t)g->v[0]->generation)
                              : json_null());
      json_object_set_new(o, "error",
                          err.len > 0 ? json_stringn(err.data, err.len)
                                      : json_null());
      json_object_set_new(o, "workloadStates", counts);
      json_object_set_new(o, "failedWorkloads", g->failed);
      g->failed = NULL;
      if (g->failed_more > 0)
        json_object_set_new(o, "failedWorkloadsNotListed",
                            json_integer((json_int_t)g->failed_more));
      counts = NULL;
      if (json_object_set_new(res, g->ref, o) < 0)
        rc = XDS_ENOMEM;
      o = NULL;
    }
    json_decref(o);
    json_decref(counts);
    xds_buf_cleanup(&err);
  }
out:
  for (size_t k = 0; k < n_gs; k++)
    json_decref(gs[k].failed);
  xds_free(gs);
  xds_free(touched);
  xds_map_free(by_id, NULL);
  xds_map_free(by_fqn, NULL);
  snapshot_unref(snap);
  if (rc < 0) {
    json_decref(res);
    return rc;
  }
  *out = res;
  return 0;
}
