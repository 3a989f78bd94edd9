/*
 * decode_template.c: wasmxds.io/v1 ListenerTemplate documents -> struct
 * listener_tmpl (store/model.h): address, port, direction, selector, route
 * and the native HTTP filters around the Wasm chain (README, "Resource
 * reference"). Walks the document with the field walker of decode.c.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "store/decode_priv.h"
#include "store/model.h"
#include "store/ydoc.h"

static const char *const TMPL_META_KEYS[] = {"name", NULL};
static const char *const TMPL_SPEC_KEYS[] = {
    "address", "port",        "direction", "selector",   "statPrefix",
    "route",   "httpFilters", "tcp",       "extensions", NULL};
static const char *const ATTACH_KEYS[] = {"fqn", "config", "match", NULL};
static const char *const ATTACH_MATCH_KEYS[] = {"mode", NULL};
/* Order of enum wasm_match_mode. */
static const char *const ATTACH_MODES[] = {"CLIENT_AND_SERVER", "CLIENT",
                                           "SERVER", NULL};
static const char *const TCP_KEYS[] = {"cluster", "filterChains", NULL};
static const char *const TCP_CHAIN_KEYS[] = {"match", "cluster", NULL};
static const char *const TCP_MATCH_KEYS[] = {"serverNames", "destinationPort",
                                             NULL};
static const char *const SELECTOR_KEYS[] = {"mode", "labels", NULL};
static const char *const ROUTE_KEYS[] = {"cluster",    "prefix",     "rds",
                                         "rdsCluster", "rdsApiType", NULL};
/* Index is enum tmpl_rds_api. */
static const char *const RDS_API_TYPES[] = {"GRPC", "DELTA_GRPC", NULL};
static const char *const FILTER_KEYS[] = {"name", "phase", "typedConfig", NULL};
static const char *const DIRECTIONS[] = {"INBOUND", "OUTBOUND", NULL};
static const char *const PROXY_MODES[] = {"SIDECAR", "GATEWAY", NULL};
/* A filter anchors one of these; index + 1 is its enum wasm_phase. */
static const char *const ANCHORS[] = {"AUTHN", "AUTHZ", "STATS", NULL};

static int label_cmp(const void *a, const void *b) {
  return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

static void decode_selector(struct dctx *c, const struct ynode *spec,
                            struct listener_tmpl *t) {
  const struct ynode *sel = decode_field(spec, "selector"), *labels;
  size_t mark = dctx_path_key(c, "selector"), n;
  int x = -1;

  if (sel == NULL || !dctx_want_map(c, sel))
    goto done;
  dctx_check_keys(c, sel, SELECTOR_KEYS);
  dctx_get_enum(c, sel, "mode", PROXY_MODES, &x);
  if (x >= 0) {
    t->has_mode = 1;
    t->mode = (enum proxy_mode)x;
  }
  labels = decode_field(sel, "labels");
  dctx_path_key(c, "labels");
  if (labels == NULL || !dctx_want_map(c, labels))
    goto done;
  n = ynode_len(labels);
  if (n > DECODE_MAX_LABELS) {
    dctx_bad(c, labels, "more than %d labels", DECODE_MAX_LABELS);
    goto done;
  }
  if (n == 0)
    goto done;
  t->labels = xds_calloc(n, sizeof(*t->labels));
  if (t->labels == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *k = ynode_map_key(labels, i);
    const struct ynode *v = ynode_map_value(labels, i);
    const char *key = ynode_text(k, NULL), *val;
    size_t m = dctx_path_key(c, key);

    if (key[0] == '\0' || ynode_scalar_type(k) != YSCALAR_STR) {
      dctx_bad(c, k, "a label key must be a non-empty string");
      dctx_path_restore(c, m);
      continue;
    }
    val = dctx_want_str(c, v);
    if (val != NULL) {
      struct label *l = &t->labels[t->n_labels];

      l->key = dctx_strdup(c, key);
      l->value = dctx_strdup(c, val);
      t->n_labels++;
    }
    dctx_path_restore(c, m);
  }
  if (c->rc == 0)
    qsort(t->labels, t->n_labels, sizeof(*t->labels), label_cmp);

done:
  dctx_path_restore(c, mark);
}

/* Reports the string field key of the current mapping, at v, as empty when
 * it is a string (want_str already reported any other type). */
static void empty_at(struct dctx *c, const char *key, const struct ynode *v) {
  size_t m = dctx_path_key(c, key);

  if (ynode_kind(v) == YNODE_SCALAR && ynode_scalar_type(v) == YSCALAR_STR &&
      ynode_text(v, NULL)[0] == '\0')
    dctx_bad(c, v, "must not be empty");
  dctx_path_restore(c, m);
}

static void decode_route(struct dctx *c, const struct ynode *spec,
                         struct listener_tmpl *t) {
  const struct ynode *r = decode_field(spec, "route"), *vc, *vp, *vr, *vrc,
                     *vra;
  size_t mark = dctx_path_key(c, "route");
  int api = TMPL_RDS_GRPC;

  if (r == NULL) {
    dctx_bad(c, spec, "missing required field \"route\" (set cluster or rds)");
    goto done;
  }
  if (!dctx_want_map(c, r))
    goto done;
  dctx_check_keys(c, r, ROUTE_KEYS);
  vc = dctx_get_str(c, r, "cluster", 0, &t->route_cluster);
  vp = dctx_get_str(c, r, "prefix", 0, &t->route_prefix);
  vr = dctx_get_str(c, r, "rds", 0, &t->rds_name);
  vrc = dctx_get_str(c, r, "rdsCluster", 0, &t->rds_cluster);
  vra = dctx_get_enum(c, r, "rdsApiType", RDS_API_TYPES, &api);
  if ((vc != NULL) == (vr != NULL)) {
    dctx_bad(c, r, "set exactly one of \"cluster\" or \"rds\"");
    goto done;
  }
  if (vr != NULL) {
    t->route_kind = TMPL_ROUTE_RDS;
    t->rds_api = (enum tmpl_rds_api)api;
    if (vp != NULL) {
      size_t m = dctx_path_key(c, "prefix");

      dctx_bad(c, vp,
               "\"prefix\" applies to cluster routes only; an RDS route "
               "config has its own routes");
      dctx_path_restore(c, m);
    }
    if (t->rds_name == NULL)
      empty_at(c, "rds", vr);
    if (vrc != NULL && t->rds_cluster == NULL)
      empty_at(c, "rdsCluster", vrc);
    else if (vrc == NULL)
      dctx_bad(c, r,
               "\"rds\" needs \"rdsCluster\": the bootstrap cluster of "
               "the xDS server that serves route configurations (wasmxds "
               "does not serve RDS)");
    goto done;
  }
  t->route_kind = TMPL_ROUTE_CLUSTER;
  if (t->route_cluster == NULL)
    empty_at(c, "cluster", vc);
  if (vrc != NULL || vra != NULL) {
    size_t m = dctx_path_key(c, vrc != NULL ? "rdsCluster" : "rdsApiType");

    dctx_bad(c, vrc != NULL ? vrc : vra,
             "applies to RDS routes only (set with \"rds\")");
    dctx_path_restore(c, m);
  }
  if (t->route_prefix != NULL && t->route_prefix[0] != '/') {
    dctx_path_key(c, "prefix");
    dctx_bad(c, vp, "\"%s\" must start with '/'", t->route_prefix);
  }
  if (t->route_prefix == NULL && vp == NULL)
    t->route_prefix = dctx_strdup(c, "/");

done:
  dctx_path_restore(c, mark);
}

/* "type.googleapis.com/a.b.C" or a bare "a.b.C" -> the full URL, or NULL
 * (reported, or OOM). */
static char *type_url(struct dctx *c, const struct ynode *at, const char *s) {
  const char *msg = strrchr(s, '/');
  char *out;
  size_t start = 0;
  int dots = 0;

  msg = msg != NULL ? msg + 1 : s;
  /* A message name: identifiers joined by dots, at least one dot. */
  for (size_t i = 0;; i++) {
    if (msg[i] == '.' || msg[i] == '\0') {
      if (!decode_is_ident(msg + start, i - start)) {
        dots = -1;
        break;
      }
      if (msg[i] == '\0')
        break;
      dots++;
      start = i + 1;
    }
  }
  if (dots <= 0 || (msg != s && msg == s + 1)) {
    dctx_bad(
        c, at,
        "\"%s\" is not a type URL (type.googleapis.com/<package>.<Message>) "
        "or a message name",
        s);
    return NULL;
  }
  out = msg == s ? xds_asprintf(DECODE_TYPE_URL_PREFIX "%s", s) : xds_strdup(s);
  if (out == NULL)
    c->rc = XDS_ENOMEM;
  return out;
}

static void decode_filters(struct dctx *c, const struct ynode *spec,
                           struct listener_tmpl *t) {
  const struct ynode *v = decode_field(spec, "httpFilters");
  size_t mark = dctx_path_key(c, "httpFilters"), n;
  int router_at = -1, unknown_types = 0;

  if (v == NULL) {
    dctx_bad(c, spec,
             "missing required field \"httpFilters\": the router "
             "filter (" DECODE_ROUTER_MSG ") must be the last filter");
    goto done;
  }
  if (!dctx_want_seq(c, v))
    goto done;
  n = ynode_len(v);
  if (n > DECODE_MAX_FILTERS) {
    dctx_bad(c, v, "more than %d filters", DECODE_MAX_FILTERS);
    goto done;
  }
  if (n > 0) {
    t->filters = xds_calloc(n, sizeof(*t->filters));
    if (t->filters == NULL) {
      c->rc = XDS_ENOMEM;
      goto done;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i), *vn, *tc;
    size_t m = dctx_path_index(c, i), in = c->plen;
    struct native_filter *f = &t->filters[t->n_filters];
    char *type = NULL;
    int x = -1;

    if (!dctx_want_map(c, item))
      goto next;
    dctx_check_keys(c, item, FILTER_KEYS);
    t->n_filters++; /* from here f is owned by t */
    f->loc.line = ynode_line(item);
    f->loc.column = ynode_column(item);
    f->loc.source = dctx_strdup(c, ynode_source(item));
    vn = dctx_get_str(c, item, "name", 1, &f->name);
    for (size_t k = 0; f->name != NULL && k + 1 < t->n_filters; k++)
      if (t->filters[k].name != NULL &&
          strcmp(t->filters[k].name, f->name) == 0) {
        size_t mk = dctx_path_key(c, "name");

        dctx_bad(c, vn, "duplicate filter name \"%s\" (first at line %d)",
                 f->name, t->filters[k].loc.line);
        dctx_path_restore(c, mk);
        break;
      }
    dctx_get_enum(c, item, "phase", ANCHORS, &x);
    f->anchor = x >= 0 ? (enum wasm_phase)(x + 1) : WASM_PHASE_UNSPECIFIED;
    tc = decode_field(item, "typedConfig");
    dctx_path_key(c, "typedConfig");
    if (tc == NULL) {
      dctx_bad(c, item, "missing required field \"typedConfig\"");
      unknown_types++;
      goto next;
    }
    if (!dctx_want_map(c, tc)) {
      unknown_types++;
      goto next;
    }
    dctx_get_str(c, tc, "@type", 1, &type);
    if (type != NULL) {
      size_t mk = dctx_path_key(c, "@type");

      f->type_url = type_url(c, ynode_map_get(tc, "@type"), type);
      dctx_path_restore(c, mk);
      xds_free(type);
    }
    if (f->type_url != NULL) {
      const char *msg = strrchr(f->type_url, '/') + 1;

      f->is_router = strcmp(msg, DECODE_ROUTER_MSG) == 0;
    } else {
      unknown_types++;
    }
    f->typed_config = ynode_clone(tc);
    if (f->typed_config == NULL)
      c->rc = XDS_ENOMEM;
    dctx_path_restore(c, in);
    if (router_at >= 0) {
      dctx_bad(c, item,
               "filter after the router (line %d): the router must be "
               "the last HTTP filter",
               t->filters[router_at].loc.line);
    }
    if (f->is_router && router_at < 0)
      router_at = (int)t->n_filters - 1;
  next:
    dctx_path_restore(c, m);
  }
  /* Without a router, say so, unless a filter's type could not be read
   * (it may have been meant as the router). */
  if (router_at < 0 && unknown_types == 0)
    dctx_bad(c, v,
             "no router filter (" DECODE_ROUTER_MSG "): the router must be "
             "the last HTTP filter");

done:
  dctx_path_restore(c, mark);
}

/* One spec.tcp.filterChains[] item into t->tcp_chains (room reserved). */
static void decode_tcp_chain(struct dctx *c, const struct ynode *item,
                             struct listener_tmpl *t) {
  struct tmpl_tcp_chain *ch = &t->tcp_chains[t->n_tcp_chains];
  const struct ynode *m, *names;
  size_t in = c->plen;
  int64_t port;

  if (!dctx_want_map(c, item))
    return;
  t->n_tcp_chains++; /* from here ch is owned by t */
  dctx_check_keys(c, item, TCP_CHAIN_KEYS);
  dctx_get_str(c, item, "cluster", 1, &ch->cluster);
  m = decode_field(item, "match");
  dctx_path_key(c, "match");
  if (m == NULL) {
    dctx_bad(c, item,
             "missing required field \"match\" (serverNames and/or "
             "destinationPort; unmatched connections go to tcp.cluster)");
    goto done;
  }
  if (!dctx_want_map(c, m))
    goto done;
  dctx_check_keys(c, m, TCP_MATCH_KEYS);
  if (dctx_get_int(c, m, "destinationPort", 1, 65535, "1..65535", &port))
    ch->destination_port = (uint32_t)port;
  names = decode_field(m, "serverNames");
  if (names != NULL) {
    size_t mk = dctx_path_key(c, "serverNames");
    size_t n = ynode_kind(names) == YNODE_SEQUENCE ? ynode_len(names) : 0;

    if (!dctx_want_seq(c, names)) {
      /* reported */
    } else if (n > DECODE_MAX_SERVER_NAMES) {
      dctx_bad(c, names, "more than %d names", DECODE_MAX_SERVER_NAMES);
    } else if (n > 0) {
      ch->server_names = xds_calloc(n, sizeof(*ch->server_names));
      if (ch->server_names == NULL)
        c->rc = XDS_ENOMEM;
      for (size_t i = 0; ch->server_names != NULL && i < n; i++) {
        size_t mi = dctx_path_index(c, i);
        const char *s = dctx_want_str(c, ynode_seq_item(names, i));

        if (s != NULL && s[0] == '\0')
          dctx_bad(c, ynode_seq_item(names, i), "must not be empty");
        else if (s != NULL)
          ch->server_names[ch->n_server_names++] = dctx_strdup(c, s);
        dctx_path_restore(c, mi);
      }
    }
    dctx_path_restore(c, mk);
  }
  if (ch->destination_port == 0 && ch->n_server_names == 0 &&
      decode_field(m, "destinationPort") == NULL && names == NULL)
    dctx_bad(c, m,
             "an empty match would take every connection: set "
             "serverNames or destinationPort");

done:
  dctx_path_restore(c, in);
}

/* Whether two chains match the same connections (same port, same SNI
 * names in any order). */
static int same_match(const struct tmpl_tcp_chain *a,
                      const struct tmpl_tcp_chain *b) {
  if (a->destination_port != b->destination_port ||
      a->n_server_names != b->n_server_names)
    return 0;
  for (size_t i = 0; i < a->n_server_names; i++) {
    size_t k = 0;

    while (k < b->n_server_names &&
           (a->server_names[i] == NULL || b->server_names[k] == NULL ||
            strcmp(a->server_names[i], b->server_names[k]) != 0))
      k++;
    if (k == b->n_server_names)
      return 0;
  }
  return 1;
}

/* One spec.extensions[] item's config override into a->config_json. */
static void decode_attach_config(struct dctx *c, const struct ynode *v,
                                 struct tmpl_attach *a) {
  const struct ynode *at = NULL;
  const char *why = NULL;
  struct xds_buf b;
  int rc;

  if (!dctx_want_map(c, v))
    return;
  xds_buf_init(&b, DECODE_MAX_CONFIG_JSON);
  rc = decode_json_put(&b, v, &at, &why);
  if (rc == XDS_EINVAL)
    dctx_bad(c, at, "%s (%s) in config", why,
             ynode_text(at, NULL) ? ynode_text(at, NULL) : "");
  else if (rc == XDS_ETOOBIG)
    dctx_bad(c, v, "larger than %u bytes as JSON", DECODE_MAX_CONFIG_JSON);
  else if (rc < 0)
    c->rc = rc;
  else
    a->config_json = xds_buf_steal(&b, NULL);
  xds_buf_cleanup(&b);
}

/* spec.extensions: WasmExtensions attached by fqn, each with optional
 * config and match.mode overrides (README "Attachments"). Whether the fqn
 * names an extension is the catalog's question (another file may hold
 * it). */
static void decode_attachments(struct dctx *c, const struct ynode *spec,
                               struct listener_tmpl *t) {
  const struct ynode *v = decode_field(spec, "extensions");
  size_t mark = dctx_path_key(c, "extensions"), n;

  if (v == NULL || !dctx_want_seq(c, v))
    goto done;
  n = ynode_len(v);
  if (n > DECODE_MAX_FILTERS) {
    dctx_bad(c, v, "more than %d extensions", DECODE_MAX_FILTERS);
    goto done;
  }
  if (n == 0)
    goto done;
  t->attach = xds_calloc(n, sizeof(*t->attach));
  if (t->attach == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *item = ynode_seq_item(v, i), *vf, *vm;
    size_t m = dctx_path_index(c, i);
    struct tmpl_attach *a = &t->attach[t->n_attach];

    if (!dctx_want_map(c, item)) {
      dctx_path_restore(c, m);
      continue;
    }
    dctx_check_keys(c, item, ATTACH_KEYS);
    t->n_attach++;
    a->loc.line = ynode_line(item);
    a->loc.column = ynode_column(item);
    a->loc.source = dctx_strdup(c, ynode_source(item));
    vf = dctx_get_str(c, item, "fqn", 1, &a->fqn);
    for (size_t k = 0; a->fqn != NULL && k + 1 < t->n_attach; k++)
      if (t->attach[k].fqn != NULL && strcmp(t->attach[k].fqn, a->fqn) == 0)
        dctx_bad(c, vf, "extension %s is already attached at line %d", a->fqn,
                 t->attach[k].loc.line);
    if (decode_field(item, "config") != NULL) {
      size_t mc = dctx_path_key(c, "config");
      decode_attach_config(c, decode_field(item, "config"), a);
      dctx_path_restore(c, mc);
    }
    vm = decode_field(item, "match");
    if (vm != NULL) {
      size_t mm = dctx_path_key(c, "match");
      int x = -1;

      if (dctx_want_map(c, vm)) {
        dctx_check_keys(c, vm, ATTACH_MATCH_KEYS);
        dctx_get_enum(c, vm, "mode", ATTACH_MODES, &x);
        if (x >= 0) {
          a->has_match = 1;
          a->match_mode = (enum wasm_match_mode)x;
        }
      }
      dctx_path_restore(c, mm);
    }
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}

/* spec.tcp: a TCP listener of tcp_proxy filter chains (no route, no HTTP
 * filters); network Wasm filters (Istio WasmPlugins of type NETWORK) run
 * before the tcp_proxy of each chain. */
static void decode_tcp(struct dctx *c, const struct ynode *spec,
                       struct listener_tmpl *t) {
  const struct ynode *tcp = decode_field(spec, "tcp"), *chains;
  size_t mark = c->plen, n;

  t->protocol = TMPL_TCP;
  for (const char *const *k =
           (const char *const[]){"route", "httpFilters", "extensions", NULL};
       *k != NULL; k++)
    if (decode_field(spec, *k) != NULL) {
      dctx_path_key(c, *k);
      dctx_bad(c, decode_field(spec, *k),
               "\"%s\" is for HTTP listeners; a \"tcp\" listener has "
               "none",
               *k);
      dctx_path_restore(c, mark);
    }
  dctx_path_key(c, "tcp");
  if (!dctx_want_map(c, tcp))
    goto done;
  dctx_check_keys(c, tcp, TCP_KEYS);
  dctx_get_str(c, tcp, "cluster", 1, &t->tcp_cluster);
  chains = decode_field(tcp, "filterChains");
  if (chains == NULL)
    goto done;
  dctx_path_key(c, "filterChains");
  if (!dctx_want_seq(c, chains))
    goto done;
  n = ynode_len(chains);
  if (n > DECODE_MAX_TCP_CHAINS) {
    dctx_bad(c, chains, "more than %d filter chains", DECODE_MAX_TCP_CHAINS);
    goto done;
  }
  if (n == 0)
    goto done;
  t->tcp_chains = xds_calloc(n, sizeof(*t->tcp_chains));
  if (t->tcp_chains == NULL) {
    c->rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    size_t m = dctx_path_index(c, i), before = t->n_tcp_chains;

    decode_tcp_chain(c, ynode_seq_item(chains, i), t);
    /* Envoy refuses a listener with two chains of one match. */
    for (size_t k = 0; t->n_tcp_chains > before && k + 1 < t->n_tcp_chains; k++)
      if (same_match(&t->tcp_chains[k], &t->tcp_chains[t->n_tcp_chains - 1])) {
        dctx_path_key(c, "match");
        dctx_bad(c, ynode_seq_item(chains, i),
                 "the same match as filterChains[%zu]: Envoy refuses a "
                 "listener whose filter chains match alike",
                 k);
        break;
      }
    dctx_path_restore(c, m);
  }

done:
  dctx_path_restore(c, mark);
}

static void template_decode(struct dctx *c, const struct ynode *doc,
                            struct decode_result *out) {
  const struct ynode *meta = decode_field(doc, "metadata"), *spec, *v;
  struct listener_tmpl *t;
  int64_t port;
  size_t mark;
  int x;

  t = xds_calloc(1, sizeof(*t));
  if (t == NULL) {
    c->rc = XDS_ENOMEM;
    return;
  }
  out->tmpl = t;
  t->loc.line = ynode_line(doc);
  t->loc.column = ynode_column(doc);
  t->loc.source = dctx_strdup(c, ynode_source(doc));

  mark = dctx_path_key(c, "metadata");
  if (meta == NULL) {
    dctx_bad(c, doc, "missing required field \"metadata\"");
  } else if (dctx_want_map(c, meta)) {
    dctx_check_keys(c, meta, TMPL_META_KEYS);
    v = dctx_get_str(c, meta, "name", 1, &t->name);
    dctx_path_key(c, "name");
    dctx_check_name(c, v, t->name);
    if (t->name != NULL && (out->id = xds_strdup(t->name)) == NULL)
      c->rc = XDS_ENOMEM;
  }
  dctx_path_restore(c, 0);

  spec = decode_field(doc, "spec");
  dctx_path_key(c, "spec");
  mark = c->plen;
  if (spec == NULL) {
    dctx_bad(c, doc, "missing required field \"spec\"");
    goto done;
  }
  if (!dctx_want_map(c, spec))
    goto done;
  dctx_check_keys(c, spec, TMPL_SPEC_KEYS);
  v = dctx_get_str(c, spec, "address", 0, &t->address);
  if (t->address != NULL) {
    unsigned char addr[16];

    if (inet_pton(AF_INET, t->address, addr) != 1 &&
        inet_pton(AF_INET6, t->address, addr) != 1) {
      dctx_path_key(c, "address");
      dctx_bad(c, v, "\"%s\" is not an IPv4 or IPv6 address", t->address);
      dctx_path_restore(c, mark);
    }
  } else {
    t->address = dctx_strdup(c, "0.0.0.0");
  }
  if (ynode_map_get(spec, "port") == NULL ||
      ynode_kind(ynode_map_get(spec, "port")) == YNODE_NULL) {
    dctx_path_key(c, "port");
    dctx_bad(c, spec, "missing required field \"port\"");
    dctx_path_restore(c, mark);
  } else if (dctx_get_int(c, spec, "port", 1, 65535, "1..65535", &port)) {
    t->port = (uint32_t)port;
  }
  x = -1;
  dctx_get_enum(c, spec, "direction", DIRECTIONS, &x);
  if (x < 0 && decode_field(spec, "direction") == NULL) {
    dctx_path_key(c, "direction");
    dctx_bad(c, spec,
             "missing required field \"direction\" (INBOUND or "
             "OUTBOUND)");
    dctx_path_restore(c, mark);
  }
  t->direction = x == 1 ? TMPL_OUTBOUND : TMPL_INBOUND;
  decode_selector(c, spec, t);
  dctx_get_str(c, spec, "statPrefix", 0, &t->stat_prefix);
  if (t->stat_prefix == NULL && t->name != NULL)
    t->stat_prefix = dctx_strdup(c, t->name);
  if (decode_field(spec, "tcp") != NULL) {
    decode_tcp(c, spec, t);
  } else {
    decode_route(c, spec, t);
    decode_filters(c, spec, t);
    decode_attachments(c, spec, t);
  }

done:
  dctx_path_restore(c, 0);
}

const struct decode_kind_ops decode_template_ops = {
    DECODE_TMPL_API, DECODE_TMPL_KIND, DECODE_LISTENER_TMPL, template_decode,
    NULL};
