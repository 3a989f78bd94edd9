/*
 * check_istio_store.c: a store exported from a cluster (tests/data/istio/
 * store: 21 WasmPlugins, 4 of them NETWORK, in a kubectl List with status and
 * managedFields, across three namespaces and the root namespace, plus two
 * WasmExtensions and four listener templates, one of them TCP), served to
 * proxies identified the Istio way. Asserts the exact HTTP filter order of
 * every listener of every proxy as encoded in its snapshot, the ECDS names and
 * configs, and that no proxy sees another namespace's plugin.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/compose/identity.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/filters/network/wasm/v3/wasm.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#include "check_istio.h"
#include "storekit.h"

static struct catalog *cat;
static struct snapshot *snap;
static struct encode_opts opts;

static void setup(void) {
  sk_load_store(XDS_TEST_DATA "/istio/store", 23, NULL, &cat, &opts, &snap);
}

static void teardown(void) {
  snapshot_unref(snap);
  catalog_unref(cat);
}

#define BI_IN_HEAD                                                             \
  "in-8080=istio-system.r-authn,bookinfo.b-authn,jwt,istio-system.z-tie,"      \
  "bookinfo.a-tie,bookinfo.b-tie,rbac,istio-system.r-stats-server,stats,"
#define BI_OUT_HEAD                                                            \
  "out-9080=istio-system.r-authn,bookinfo.b-authn,istio-system.z-tie,"         \
  "bookinfo.a-tie,bookinfo.b-tie,bookinfo.out-9080,"

/* The TCP listener: NETWORK plugins only (by phase: AUTHN, AUTHZ, STATS),
 * before the tcp_proxy of every filter chain; n-alt-port (match ports
 * [15432]) only on the chain of that destination port; n-client (mode
 * CLIENT) not on this inbound listener. */
#define TCP_CHAIN(nets, alt)                                                   \
  "tcp-5432=[primary.db.example:5432]" nets                                    \
  "envoy.filters.network.tcp_proxy>db-primary|[:15432]" alt nets               \
  "envoy.filters.network.tcp_proxy>db-alt|" nets                               \
  "envoy.filters.network.tcp_proxy>db"
#define BI_TCP                                                                 \
  TCP_CHAIN("bookinfo.n-authz,istio-system.n-conn-log,", "bookinfo.n-alt-"     \
                                                         "port,")
#define ROOT_TCP TCP_CHAIN("istio-system.n-conn-log,", "")

/* The proxies, as istio-agent would describe them. want: the HTTP filters
 * per listener, "name=f1,f2,..." joined by ";", listeners in name order;
 * Wasm filters by "<namespace>.<name>" or "<org>/<name>", native ones by
 * name. */
static const struct sk_proxy proxies[] = {
    {"bookinfo reviews sidecar",
     "sidecar~10.0.0.1~reviews-v1-5b6f.bookinfo~bookinfo.svc.cluster.local",
     {"NAMESPACE", "bookinfo", "ISTIO_VERSION", "1.24.0", NULL},
     {"app", "reviews", "version", "v1", NULL},
     BI_IN_HEAD "bookinfo.reviews-only,router;" BI_OUT_HEAD
                "bookinfo.reviews-only,router;" BI_TCP},
    {"bookinfo ratings sidecar",
     "sidecar~10.0.0.2~ratings-v1-77c8.bookinfo~bookinfo.svc.cluster.local",
     {"CLUSTER_ID", "Kubernetes", NULL},
     {"app", "ratings", NULL},
     BI_IN_HEAD "router;" BI_OUT_HEAD "router;" BI_TCP},
    {"shop sidecar with a tenant too",
     "sidecar~10.0.0.3~cart-0.shop~shop.svc.cluster.local",
     {"NAMESPACE", "shop", "wasmxds.tenant", "organizations/acme/tenants/web",
      NULL},
     {NULL},
     "in-8080=shop.s-authn,istio-system.r-authn,acme/x-authn,jwt,acme/x-authz,"
     "istio-system.z-tie,shop.s-authz-neg,rbac,istio-system.r-stats-server,"
     "stats,shop.s-reload,router;"
     "out-9080=shop.s-authn,istio-system.r-authn,acme/x-authn,acme/x-authz,"
     "istio-system.z-tie,shop.s-reload,router;" ROOT_TCP},
    {"edge gateway public",
     "router~10.0.0.4~gw-public-6d9f.edge~edge.svc.cluster.local",
     {"NAMESPACE", "edge", "MESH_ID", "cluster.local", NULL},
     {"istio", "ingressgateway", "gateway.networking.k8s.io/gateway-name",
      "public", NULL},
     "gw-443=istio-system.r-authn,edge.e-gw,jwt,istio-system.z-tie,"
     "istio-system.r-gw-authz,edge.e-all,router"},
    {"edge gateway of the frontend service",
     "router~10.0.0.5~gw-private-1.edge~edge.svc.cluster.local",
     {NULL},
     {"gateway.networking.k8s.io/gateway-name", "private",
      "service.istio.io/canonical-name", "frontend", NULL},
     "gw-443=istio-system.r-authn,jwt,istio-system.z-tie,edge.e-svc,edge.e-all,"
     "router"},
    {"sidecar in the root namespace",
     "sidecar~10.0.0.6~tool-1.istio-system~istio-system.svc.cluster.local",
     {NULL},
     {NULL},
     "in-8080=istio-system.r-authn,jwt,istio-system.z-tie,rbac,"
     "istio-system.r-stats-server,stats,router;"
     "out-9080=istio-system.r-authn,istio-system.z-tie,router;" ROOT_TCP},
    {"plain wasmxds proxy (no namespace)",
     "vm-1",
     {"wasmxds.organization", "acme", NULL},
     {NULL},
     "in-8080=acme/x-authn,jwt,acme/x-authz,rbac,stats,router;"
     "out-9080=acme/x-authn,acme/x-authz,router;" TCP_CHAIN("", "")},
};

static void short_name(struct xds_buf *b, const char *name) {
  static const char ip[] = WASM_PLUGIN_FQN_PREFIX;
  static const char org[] = "organizations/";

  if (strncmp(name, ip, sizeof(ip) - 1) == 0) {
    xds_buf_puts(b, name + sizeof(ip) - 1);
  } else if (strncmp(name, org, sizeof(org) - 1) == 0) {
    const char *o = name + sizeof(org) - 1, *slash = strchr(o, '/');

    xds_buf_append(b, o, (size_t)(slash - o));
    xds_buf_putc(b, '/');
    xds_buf_puts(b, strrchr(name, '/') + 1);
  } else {
    xds_buf_puts(b, name);
  }
}

/* A TCP listener: each filter chain as [sni,...:port]filters...>cluster,
 * chains joined by '|'; checks each NETWORK filter's ECDS reference. */
static void render_tcp(const Envoy__Config__Listener__V3__Listener *l,
                       const struct proxy_id *p, struct xds_buf *b) {
  for (size_t i = 0; i < l->n_filter_chains; i++) {
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[i];
    const Envoy__Config__Listener__V3__FilterChainMatch *m =
        fc->filter_chain_match;

    if (i > 0)
      xds_buf_putc(b, '|');
    if (m != NULL) {
      xds_buf_putc(b, '[');
      for (size_t k = 0; k < m->n_server_names; k++)
        xds_buf_printf(b, "%s%s", k > 0 ? "," : "", m->server_names[k]);
      if (m->destination_port != NULL)
        xds_buf_printf(b, ":%u", m->destination_port->value);
      xds_buf_putc(b, ']');
    }
    for (size_t k = 0; k < fc->n_filters; k++) {
      const Envoy__Config__Listener__V3__Filter *f = fc->filters[k];

      if (k > 0)
        xds_buf_putc(b, ',');
      short_name(b, f->name);
      if (f->config_type_case ==
          ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_CONFIG_DISCOVERY) {
        const struct wasm_ext *e = catalog_ext_find(cat, f->name);

        ck_assert_msg(e != NULL, "no extension %s", f->name);
        ck_assert(chain_ext_visible(e, p));
        ck_assert_int_eq(e->type, WASM_TYPE_NETWORK);
        ck_assert_ptr_nonnull(snapshot_ecds(snap, f->name));
        ck_assert_uint_eq(f->config_discovery->n_type_urls, 2);
        ck_assert_str_eq(f->config_discovery->type_urls[0], TYPE_NET_WASM);
        ck_assert_str_eq(f->config_discovery->type_urls[1], TYPE_NET_RBAC);
      } else {
        Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp;

        ck_assert_str_eq(f->typed_config->type_url, TYPE_TCP_PROXY);
        ck_assert_uint_eq(k + 1, fc->n_filters);
        tp =
            envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__unpack(
                NULL, f->typed_config->value.len, f->typed_config->value.data);
        ck_assert_str_eq(tp->stat_prefix, "tcp_db");
        xds_buf_printf(b, ">%s", tp->cluster);
        envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__free_unpacked(
            tp, NULL);
      }
    }
  }
  /* SNI matching needs the TLS inspector. */
  ck_assert_uint_eq(l->n_listener_filters, 1);
  ck_assert_str_eq(l->listener_filters[0]->typed_config->type_url,
                   TYPE_TLS_INSPECTOR);
}

/* Renders what a class's listeners say, and checks every Wasm filter's
 * ECDS reference on the way. */
static void render_class(const struct xds_class *c, const struct proxy_id *p,
                         struct xds_buf *b) {
  for (size_t i = 0; i < c->n_listeners; i++) {
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(NULL, c->listeners[i].len,
                                                      c->listeners[i].bytes);
    HCM_T *hcm;

    ck_assert_ptr_nonnull(l);
    if (i > 0)
      xds_buf_putc(b, ';');
    xds_buf_printf(b, "%s=", l->name);
    if (l->filter_chains[0]
                ->filters[l->filter_chains[0]->n_filters - 1]
                ->config_type_case ==
            ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG &&
        strcmp(l->filter_chains[0]
                   ->filters[l->filter_chains[0]->n_filters - 1]
                   ->name,
               TCP_PROXY_FILTER_NAME) == 0) {
      render_tcp(l, p, b);
      envoy__config__listener__v3__listener__free_unpacked(l, NULL);
      continue;
    }
    hcm = sk_hcm_of(l);
    ck_assert_ptr_nonnull(hcm);
    for (size_t k = 0; k < hcm->n_http_filters; k++) {
      const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter
          *f = hcm->http_filters[k];

      if (k > 0)
        xds_buf_putc(b, ',');
      short_name(b, f->name);
      if (f->config_type_case ==
          ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY) {
        const struct wasm_ext *e = catalog_ext_find(cat, f->name);

        /* An ECDS reference by the extension's name, to a config this
         * proxy may see. */
        ck_assert_msg(e != NULL, "no extension %s", f->name);
        ck_assert(chain_ext_visible(e, p));
        ck_assert_ptr_nonnull(snapshot_ecds(snap, f->name));
        ck_assert_uint_eq(f->config_discovery->n_type_urls, 2);
        ck_assert_str_eq(f->config_discovery->type_urls[0], TYPE_WASM);
      }
    }
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
        hcm, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  }
  xds_buf_putc(b, '\0');
}

START_TEST(filter_order_per_listener) {
  sk_check_render(snap, &proxies[_i], render_class);
}
END_TEST

/* Every plugin is visible to exactly the proxies of its namespace and, in
 * the root namespace, to every proxy with a namespace. */
START_TEST(no_cross_namespace_leak) {
  for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
    struct proxy_id p;

    sk_identify(&proxies[i], &p);
    for (size_t j = 0; j < catalog_ext_count(cat); j++) {
      const struct wasm_ext *e = catalog_ext_at(cat, j);
      int want;

      if (e->kind != WASM_KIND_PLUGIN)
        continue;
      want = p.namespace != NULL && (strcmp(e->namespace, p.namespace) == 0 ||
                                     strcmp(e->namespace, "istio-system") == 0);
      ck_assert_msg(chain_ext_visible(e, &p) == want, "%s sees %s: %d",
                    proxies[i].what, e->fqn, !want);
    }
    proxy_id_cleanup(&p);
  }
}
END_TEST

/* --istio-root-namespace moves the root: istio-system's plugins become an
 * ordinary namespace's, and the new root's apply everywhere. */
START_TEST(root_namespace_flag) {
  struct proxy_id p;
  const struct listener_tmpl *t = catalog_tmpl_find(cat, "out-9080");
  struct chain c;

  sk_identify(&proxies[1], &p); /* bookinfo ratings */
  p.root_namespace = "bookinfo";
  ck_assert(!chain_ext_visible(
      catalog_ext_find(cat,
                       "extensions.istio.io/wasmplugin/istio-system.z-tie"),
      &p));
  ck_assert_int_eq(chain_compute(cat, &p, t, &c), 0);
  ck_assert_uint_eq(c.n, 4);
  ck_assert_str_eq(c.exts[0]->name, "b-authn");
  ck_assert_str_eq(c.exts[1]->name, "a-tie");
  ck_assert_str_eq(c.exts[2]->name, "b-tie");
  ck_assert_str_eq(c.exts[3]->name, "out-9080");
  chain_cleanup(&c);
  proxy_id_cleanup(&p);
  /* A proxy of the new root namespace still gets its plugins once. */
  sk_identify(&proxies[5], &p); /* istio-system sidecar */
  p.root_namespace = "shop";
  ck_assert_int_eq(chain_compute(cat, &p, t, &c), 0);
  ck_assert_uint_eq(c.n, 4);
  ck_assert_str_eq(c.exts[0]->name, "s-authn");
  ck_assert_str_eq(c.exts[1]->name, "r-authn");
  ck_assert_str_eq(c.exts[2]->name, "z-tie");
  ck_assert_str_eq(c.exts[3]->name, "s-reload");
  chain_cleanup(&c);
  proxy_id_cleanup(&p);
}
END_TEST

static Envoy__Config__Core__V3__TypedExtensionConfig *ecds(const char *fqn) {
  const struct xds_resource *r = snapshot_ecds(snap, fqn);
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;

  ck_assert_ptr_nonnull(r);
  tec = envoy__config__core__v3__typed_extension_config__unpack(NULL, r->len,
                                                                r->bytes);
  ck_assert_ptr_nonnull(tec);
  ck_assert_str_eq(tec->name, fqn);
  return tec;
}

START_TEST(ecds_configs) {
  static const char fqn[] = "extensions.istio.io/wasmplugin/shop.s-reload";
  Envoy__Config__Core__V3__TypedExtensionConfig *tec = ecds(fqn);
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  Envoy__Extensions__Wasm__V3__PluginConfig *pc;
  Envoy__Extensions__Wasm__V3__VmConfig *vm;
  Google__Protobuf__StringValue *json;

  ck_assert_str_eq(tec->typed_config->type_url, TYPE_WASM);
  w = envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  pc = w->config;
  ck_assert_str_eq(pc->name, fqn);
  ck_assert_str_eq(pc->root_id, "reloader");
  ck_assert_int_eq(pc->failure_policy,
                   ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_RELOAD);
  ck_assert_int_eq(pc->fail_open, 0);
  json = google__protobuf__string_value__unpack(
      NULL, pc->configuration->value.len, pc->configuration->value.data);
  ck_assert_str_eq(json->value, "{\"limit\":10,\"header\":\"x-shop\"}");
  vm = pc->vm_config;
  ck_assert_str_eq(vm->code->local->filename, "/wasm/s-reload.wasm");
  ck_assert_uint_eq(vm->environment_variables->n_host_env_keys, 1);
  ck_assert_str_eq(vm->environment_variables->host_env_keys[0], "POD_NAME");
  ck_assert_uint_eq(vm->environment_variables->n_key_values, 1);
  ck_assert_str_eq(vm->environment_variables->key_values[0]->key, "REGION");
  ck_assert_str_eq(vm->environment_variables->key_values[0]->value,
                   "eu-west-1");
  google__protobuf__string_value__free_unpacked(json, NULL);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
}
END_TEST

/* Modules that cannot be fetched (oci:// with fetching off) are served as
 * their substitute under the same ECDS name: deny-all for FAIL_CLOSE and
 * FAIL_RELOAD, allow-all for FAIL_OPEN. */
START_TEST(substitutes) {
  static const struct {
    const char *fqn;
    int deny;
  } cases[] = {{"extensions.istio.io/wasmplugin/istio-system.r-authn", 1},
               {"extensions.istio.io/wasmplugin/shop.s-authz-neg", 1},
               {"extensions.istio.io/wasmplugin/shop.s-authn", 0}};

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    Envoy__Config__Core__V3__TypedExtensionConfig *tec = ecds(cases[i].fqn);
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *rbac;

    ck_assert_str_eq(tec->typed_config->type_url, TYPE_RBAC);
    rbac = envoy__extensions__filters__http__rbac__v3__rbac__unpack(
        NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    ck_assert_msg((rbac->rules != NULL) == cases[i].deny, "%s", cases[i].fqn);
    envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(rbac, NULL);
    envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  }
}
END_TEST

/* A NETWORK plugin: the network Wasm filter over ECDS, and when its module
 * cannot be fetched, the network RBAC substitute (deny-all for
 * FAIL_CLOSE), with the stat_prefix Envoy requires. */
START_TEST(network_ecds) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec =
      ecds("extensions.istio.io/wasmplugin/istio-system.n-conn-log");
  Envoy__Extensions__Filters__Network__Wasm__V3__Wasm *w;
  Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *rbac;

  ck_assert_str_eq(tec->typed_config->type_url, TYPE_NET_WASM);
  w = envoy__extensions__filters__network__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  ck_assert_str_eq(w->config->name,
                   "extensions.istio.io/wasmplugin/istio-system.n-conn-log");
  ck_assert_str_eq(w->config->vm_config->code->local->filename,
                   "/wasm/n-conn-log.wasm");
  envoy__extensions__filters__network__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);

  tec = ecds("extensions.istio.io/wasmplugin/bookinfo.n-authz");
  ck_assert_str_eq(tec->typed_config->type_url, TYPE_NET_RBAC);
  rbac = envoy__extensions__filters__network__rbac__v3__rbac__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  ck_assert_ptr_nonnull(rbac->rules);
  ck_assert_uint_eq(rbac->rules->n_policies, 0);
  ck_assert_str_eq(rbac->stat_prefix, ENCODE_SUBSTITUTE_STAT_PREFIX);
  envoy__extensions__filters__network__rbac__v3__rbac__free_unpacked(rbac,
                                                                     NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
}
END_TEST

/* Proxies whose labels select the same plugins share a class; labels that
 * change a plugin's selection do not. */
START_TEST(classes_follow_selection) {
  const struct xds_class *a, *b, *c;
  struct proxy_id p1, p2, p3;
  struct sk_proxy k = proxies[1]; /* ratings: selects no labelled plugin */

  sk_identify(&k, &p1);
  k.labels[1] = "details";
  sk_identify(&k, &p2);
  sk_identify(&proxies[0], &p3); /* reviews: selects reviews-only */
  ck_assert_int_eq(snapshot_class(snap, &p1, &a), 0);
  ck_assert_int_eq(snapshot_class(snap, &p2, &b), 0);
  ck_assert_int_eq(snapshot_class(snap, &p3, &c), 0);
  ck_assert_ptr_eq(a, b);
  ck_assert_ptr_ne(a, c);
  proxy_id_cleanup(&p1);
  proxy_id_cleanup(&p2);
  proxy_id_cleanup(&p3);
}
END_TEST

/* The worked example of the README ("Coming from Istio"): the example
 * store and the node of deploy/examples/istio/envoy-bootstrap.yaml. */
START_TEST(deploy_example) {
  static const struct sk_proxy k = {
      "the bootstrap's sidecar",
      "sidecar~10.44.0.12~reviews-v1-5b6f8d7c9-x2x7k.bookinfo~bookinfo.svc."
      "cluster.local",
      {"NAMESPACE", "bookinfo", "WORKLOAD_NAME", "reviews-v1", NULL},
      {"app", "reviews", "version", "v1", NULL},
      "inbound=istio-system.request-id,bookinfo.reviews-acl,"
      "envoy.filters.http.router;"
      "outbound=istio-system.request-id,bookinfo.outbound-stats,"
      "envoy.filters.http.router"};
  struct catalog *c;
  struct snapshot *s;
  struct problems pb;
  struct xds_err err = {0, ""};
  const struct xds_class *cls;
  struct proxy_id p;
  struct xds_buf b;

  problems_init(&pb, 10);
  ck_assert_int_eq(file_store_load(XDS_SRCDIR "/deploy/examples/istio/store",
                                   NULL, &c, &pb, &err),
                   0);
  ck_assert_uint_eq(problems_count(&pb), 0);
  problems_cleanup(&pb);
  ck_assert_int_eq(snapshot_build(c, &opts, 1, &s, &err), 0);
  sk_identify(&k, &p);
  ck_assert_int_eq(snapshot_class(s, &p, &cls), 0);
  /* render_class checks ECDS names against the fixture's catalog. */
  catalog_unref(cat);
  cat = catalog_ref(c);
  snapshot_unref(snap);
  snap = snapshot_ref(s);
  xds_buf_init(&b, 1 << 16);
  render_class(cls, &p, &b);
  ck_assert_msg(strcmp(b.data, k.want) == 0, "got  %s\nwant %s", b.data,
                k.want);
  xds_buf_cleanup(&b);
  proxy_id_cleanup(&p);
  snapshot_unref(s);
  catalog_unref(c);
}
END_TEST

TCase *istio_store_tcase(void) {
  TCase *tc = tcase_create("store");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, filter_order_per_listener, 0,
                      (int)(sizeof(proxies) / sizeof(proxies[0])));
  tcase_add_test(tc, no_cross_namespace_leak);
  tcase_add_test(tc, root_namespace_flag);
  tcase_add_test(tc, ecds_configs);
  tcase_add_test(tc, substitutes);
  tcase_add_test(tc, classes_follow_selection);
  tcase_add_test(tc, network_ecds);
  tcase_add_test(tc, deploy_example);
  return tc;
}
