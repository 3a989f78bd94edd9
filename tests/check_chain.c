/*
 * check_chain.c: composition (design.md §4) as a table of cases: each names
 * a proxy and a template and the exact HTTP filter order expected, Wasm
 * extensions by short name and native filters by their own names.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "server/compose/chain.h"
#include "testutil.h"

#define EXT(name, extra)                                                       \
  "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"        \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec: {url: file:///w/" name ".wasm" extra "}\n"

#define ROUTER                                                                 \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

#define NATIVE(name, phase)                                                    \
  "  - name: " name "\n    phase: " phase "\n"                                 \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC}\n"

/* Laid out by hand: clang-format 14 does not lay out this chain of
 * macros and strings the same way twice. */
/* clang-format off */
static const char store[] =
    EXT("authn-a", ", phase: AUTHN, priority: 100")
    EXT("authn-b", ", phase: AUTHN, priority: 100")
    EXT("authn-hi", ", phase: AUTHN, priority: 200")
    EXT("authz-neg", ", phase: AUTHZ, priority: -5")
    EXT("authz-max", ", phase: AUTHZ, priority: 2147483647")
    EXT("authz-min", ", phase: AUTHZ, priority: -2147483648")
    EXT("stats-client", ", phase: STATS, match: {mode: CLIENT}")
    EXT("stats-server", ", phase: STATS, match: {mode: SERVER}")
    EXT("unspec", "")
    EXT("unspec-explicit", ", phase: UNSPECIFIED_PHASE, priority: 7")
    EXT("pay-only", ", phase: AUTHZ, priority: 1, "
                    "allowedIn: [organizations/acme/tenants/payments]")
    EXT("web-only", ", phase: AUTHZ, priority: 1, "
                    "allowedIn: [organizations/acme/tenants/web]")
    EXT("both", ", phase: STATS, priority: 3, "
                "allowedIn: [organizations/acme/tenants/web, "
                "organizations/acme/tenants/payments]")
    "---\n"
    "apiVersion: extension.tsb.tetrate.io/v2\n"
    "kind: WasmExtension\n"
    "metadata: {organization: other, name: foreign}\n"
    "spec: {url: file:///w/f.wasm, phase: AUTHN}\n"
    "---\n"
    "apiVersion: wasmxds.io/v1\n"
    "kind: ListenerTemplate\n"
    "metadata: {name: in}\n"
    "spec:\n"
    "  port: 15006\n"
    "  direction: INBOUND\n"
    "  route: {cluster: app}\n"
    "  httpFilters:\n"
    ROUTER
    "---\n"
    "apiVersion: wasmxds.io/v1\n"
    "kind: ListenerTemplate\n"
    "metadata: {name: out}\n"
    "spec:\n"
    "  port: 15001\n"
    "  direction: OUTBOUND\n"
    "  route: {cluster: up}\n"
    "  httpFilters:\n"
    ROUTER
    "---\n"
    "apiVersion: wasmxds.io/v1\n"
    "kind: ListenerTemplate\n"
    "metadata: {name: anchored}\n"
    "spec:\n"
    "  port: 15007\n"
    "  direction: INBOUND\n"
    "  route: {cluster: app}\n"
    "  httpFilters:\n"
    "  - name: cors\n"
    "    typedConfig: {'@type': "
    "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC}\n"
    NATIVE("jwt", "AUTHN")
    NATIVE("rbac", "AUTHZ")
    NATIVE("stats", "STATS")
    ROUTER
    "---\n"
    "apiVersion: wasmxds.io/v1\n"
    "kind: ListenerTemplate\n"
    "metadata: {name: authz-only}\n"
    "spec:\n"
    "  port: 15008\n"
    "  direction: OUTBOUND\n"
    "  route: {cluster: up}\n"
    "  httpFilters:\n"
    NATIVE("rbac", "AUTHZ")
    ROUTER
    "---\n"
    "apiVersion: wasmxds.io/v1\n"
    "kind: ListenerTemplate\n"
    "metadata: {name: stats-only}\n"
    "spec:\n"
    "  port: 15009\n"
    "  direction: INBOUND\n"
    "  route: {cluster: app}\n"
    "  httpFilters:\n"
    NATIVE("stats", "STATS")
    ROUTER;
/* clang-format on */
#define PAY "organizations/acme/tenants/payments"
#define WEB "organizations/acme/tenants/web"
#define R "envoy.filters.http.router"

/* Expected orders, written out once per situation. */
#define COMMON_AUTHN "authn-hi,authn-a,authn-b"
#define COMMON_AUTHZ "authz-max,authz-neg,authz-min"
#define UNSPEC "unspec-explicit,unspec"

static const struct chain_case {
  const char *what;
  const char *org, *tenant;
  enum proxy_mode mode;
  const char *tmpl;
  const char *want;
} cases[] = {
    {"payments sidecar inbound", "acme", PAY, PROXY_MODE_SIDECAR, "in",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ","
                  "both,stats-server," UNSPEC "," R},
    {"payments sidecar outbound", "acme", PAY, PROXY_MODE_SIDECAR, "out",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ","
                  "both,stats-client," UNSPEC "," R},
    {"web sidecar inbound", "acme", WEB, PROXY_MODE_SIDECAR, "in",
     COMMON_AUTHN ","
                  "authz-max,web-only,authz-neg,authz-min"
                  ","
                  "both,stats-server," UNSPEC "," R},
    {"web sidecar outbound", "acme", WEB, PROXY_MODE_SIDECAR, "out",
     COMMON_AUTHN ","
                  "authz-max,web-only,authz-neg,authz-min"
                  ","
                  "both,stats-client," UNSPEC "," R},
    {"no tenant: only extensions with empty allowedIn", "acme", NULL,
     PROXY_MODE_SIDECAR, "in",
     COMMON_AUTHN "," COMMON_AUTHZ ",stats-server," UNSPEC "," R},
    {"unknown tenant: like no tenant", "acme",
     "organizations/acme/tenants/nobody", PROXY_MODE_SIDECAR, "out",
     COMMON_AUTHN "," COMMON_AUTHZ ",stats-client," UNSPEC "," R},
    {"gateway outbound: SERVER-only excluded", "acme", PAY, PROXY_MODE_GATEWAY,
     "out",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ","
                  "both,stats-client," UNSPEC "," R},
    {"gateway on an inbound template: CLIENT applies, SERVER-only does not",
     "acme", PAY, PROXY_MODE_GATEWAY, "in",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ",both,stats-client," UNSPEC "," R},
    {"other organization sees only its own", "other", NULL, PROXY_MODE_SIDECAR,
     "in", "foreign," R},
    {"organization with no extensions", "empty", NULL, PROXY_MODE_SIDECAR, "in",
     R},
    {"organization name that prefixes another", "acm", NULL, PROXY_MODE_SIDECAR,
     "in", R},
    {"tenant of another organization does not unlock allowedIn", "other", PAY,
     PROXY_MODE_SIDECAR, "in", "foreign," R},
    {"all anchors present", "acme", PAY, PROXY_MODE_SIDECAR, "anchored",
     "cors," COMMON_AUTHN ",jwt,"
     "authz-max,pay-only,authz-neg,authz-min"
     ",rbac,both,stats-server,stats," UNSPEC "," R},
    {"all anchors, no tenant", "acme", NULL, PROXY_MODE_SIDECAR, "anchored",
     "cors," COMMON_AUTHN ",jwt," COMMON_AUTHZ
     ",rbac,stats-server,stats," UNSPEC "," R},
    {"only an AUTHZ anchor: AUTHN still first", "acme", WEB, PROXY_MODE_SIDECAR,
     "authz-only",
     COMMON_AUTHN ","
                  "authz-max,web-only,authz-neg,authz-min"
                  ",rbac,"
                  "both,stats-client," UNSPEC "," R},
    {"only a STATS anchor", "acme", NULL, PROXY_MODE_SIDECAR, "stats-only",
     COMMON_AUTHN "," COMMON_AUTHZ ",stats-server,stats," UNSPEC "," R},
    {"other org on anchored template keeps native order", "other", NULL,
     PROXY_MODE_SIDECAR, "anchored", "cors,foreign,jwt,rbac,stats," R},
    {"org without extensions on anchored template", "empty", NULL,
     PROXY_MODE_GATEWAY, "anchored", "cors,jwt,rbac,stats," R},
    {"payments gateway, anchors, inbound", "acme", PAY, PROXY_MODE_GATEWAY,
     "anchored",
     "cors," COMMON_AUTHN ",jwt,"
     "authz-max,pay-only,authz-neg,authz-min"
     ",rbac,both,stats-client,stats," UNSPEC "," R},
    {"web gateway outbound", "acme", WEB, PROXY_MODE_GATEWAY, "out",
     COMMON_AUTHN ","
                  "authz-max,web-only,authz-neg,authz-min"
                  ","
                  "both,stats-client," UNSPEC "," R},
    {"payments sidecar, only an AUTHZ anchor", "acme", PAY, PROXY_MODE_SIDECAR,
     "authz-only",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ",rbac,"
                  "both,stats-client," UNSPEC "," R},
    {"no tenant, only an AUTHZ anchor", "acme", NULL, PROXY_MODE_SIDECAR,
     "authz-only",
     COMMON_AUTHN "," COMMON_AUTHZ ",rbac,stats-client," UNSPEC "," R},
    {"gateway without tenant, outbound", "acme", NULL, PROXY_MODE_GATEWAY,
     "out", COMMON_AUTHN "," COMMON_AUTHZ ",stats-client," UNSPEC "," R},
    {"payments sidecar, only a STATS anchor", "acme", PAY, PROXY_MODE_SIDECAR,
     "stats-only",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ","
                  "both,stats-server,stats," UNSPEC "," R},
    {"web sidecar, only a STATS anchor", "acme", WEB, PROXY_MODE_SIDECAR,
     "stats-only",
     COMMON_AUTHN ","
                  "authz-max,web-only,authz-neg,authz-min"
                  ","
                  "both,stats-server,stats," UNSPEC "," R},
    {"payments gateway, only a STATS anchor on inbound", "acme", PAY,
     PROXY_MODE_GATEWAY, "stats-only",
     COMMON_AUTHN ","
                  "authz-max,pay-only,authz-neg,authz-min"
                  ","
                  "both,stats-client,stats," UNSPEC "," R},
    {"other organization gateway", "other", NULL, PROXY_MODE_GATEWAY, "out",
     "foreign," R},
    {"other organization, AUTHZ anchor", "other", NULL, PROXY_MODE_SIDECAR,
     "authz-only", "foreign,rbac," R},
    {"organization without extensions, gateway", "empty", NULL,
     PROXY_MODE_GATEWAY, "out", R},
    {"unknown tenant, gateway, anchors", "acme",
     "organizations/acme/tenants/nobody", PROXY_MODE_GATEWAY, "anchored",
     "cors," COMMON_AUTHN ",jwt," COMMON_AUTHZ
     ",rbac,stats-client,stats," UNSPEC "," R},
};

struct order_ctx {
  const struct listener_tmpl *t;
  const struct chain *c;
  struct xds_buf out;
};

static void put_name(struct order_ctx *o, const char *name) {
  if (o->out.len > 0)
    xds_buf_putc(&o->out, ',');
  xds_buf_puts(&o->out, name);
}

static int on_native(void *ctx, size_t i) {
  struct order_ctx *o = ctx;
  put_name(o, o->t->filters[i].name);
  return 0;
}

static int on_wasm(void *ctx, size_t k) {
  struct order_ctx *o = ctx;
  put_name(o, o->c->exts[k]->name);
  return 0;
}

static struct catalog *cat;

static void setup(void) {
  cat = tu_catalog(store);
}
static void teardown(void) {
  catalog_unref(cat);
}

START_TEST(composition_table) {
  const struct chain_case *k = &cases[_i];
  const struct listener_tmpl *t = catalog_tmpl_find(cat, k->tmpl);
  struct proxy_id p;
  struct chain c;
  struct order_ctx o;

  ck_assert_ptr_nonnull(t);
  tu_proxy(&p, "n1", k->org, k->tenant, k->mode, NULL);
  ck_assert_int_eq(chain_compute(cat, &p, t, &c), 0);
  o.t = t;
  o.c = &c;
  xds_buf_init(&o.out, 4096);
  ck_assert_int_eq(chain_interleave(t, &c, on_native, on_wasm, &o), 0);
  ck_assert_msg(strcmp(o.out.data, k->want) == 0, "%s:\n got  %s\n want %s",
                k->what, o.out.data, k->want);
  xds_buf_cleanup(&o.out);
  chain_cleanup(&c);
  proxy_id_cleanup(&p);
}
END_TEST

START_TEST(verdicts_explain_exclusion) {
  const struct listener_tmpl *in = catalog_tmpl_find(cat, "in");
  const struct listener_tmpl *out = catalog_tmpl_find(cat, "out");
  struct proxy_id web, gw;

  tu_proxy(&web, "w", "acme", WEB, PROXY_MODE_SIDECAR, NULL);
  tu_proxy(&gw, "g", "acme", PAY, PROXY_MODE_GATEWAY, NULL);
  ck_assert_int_eq(
      chain_judge(
          catalog_ext_find(cat, "organizations/acme/extensions/pay-only"), in,
          &web),
      CHAIN_NOT_ALLOWED);
  ck_assert_int_eq(
      chain_judge(
          catalog_ext_find(cat, "organizations/other/extensions/foreign"), in,
          &web),
      CHAIN_OTHER_ORG);
  ck_assert_int_eq(
      chain_judge(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-client"),
          in, &web),
      CHAIN_WRONG_DIRECTION);
  ck_assert_int_eq(
      chain_judge(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-server"),
          out, &gw),
      CHAIN_GATEWAY_MODE);
  ck_assert_int_eq(
      chain_judge(catalog_ext_find(cat, "organizations/acme/extensions/both"),
                  out, &web),
      CHAIN_IN);
  /* On a gateway, CLIENT applies to every listener, SERVER to none. */
  ck_assert_int_eq(
      chain_judge(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-client"),
          in, &gw),
      CHAIN_IN);
  ck_assert_int_eq(
      chain_judge(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-server"),
          in, &gw),
      CHAIN_GATEWAY_MODE);
  ck_assert_str_eq(
      chain_explain(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-client"),
          in, &gw),
      "included: on a gateway, CLIENT extensions run on every listener");
  ck_assert_str_eq(
      chain_explain(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-server"),
          in, &gw),
      "match.mode SERVER never applies on a gateway (a gateway runs CLIENT "
      "and CLIENT_AND_SERVER extensions on every listener)");
  ck_assert_str_eq(
      chain_explain(
          catalog_ext_find(cat, "organizations/acme/extensions/stats-client"),
          in, &web),
      "match.mode CLIENT excludes this INBOUND listener");
  proxy_id_cleanup(&web);
  proxy_id_cleanup(&gw);
}
END_TEST

START_TEST(selector_by_mode_and_labels) {
  struct catalog *c2 = tu_catalog(
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: sel}\nspec:\n  port: 1\n  direction: INBOUND\n"
      "  selector: {mode: SIDECAR, labels: {app: shop, tier: web}}\n"
      "  route: {cluster: app}\n  httpFilters:\n" ROUTER);
  const struct listener_tmpl *t = catalog_tmpl_find(c2, "sel");
  struct proxy_id a, b, g;

  tu_proxy(&a, "a", "acme", NULL, PROXY_MODE_SIDECAR, "tier=web,app=shop,x=y");
  tu_proxy(&b, "b", "acme", NULL, PROXY_MODE_SIDECAR, "app=shop");
  tu_proxy(&g, "g", "acme", NULL, PROXY_MODE_GATEWAY, "tier=web,app=shop");
  ck_assert_int_eq(chain_tmpl_applies(t, &a), 1);
  ck_assert_int_eq(chain_tmpl_applies(t, &b), 0);
  ck_assert_int_eq(chain_tmpl_applies(t, &g), 0);
  proxy_id_cleanup(&a);
  proxy_id_cleanup(&b);
  proxy_id_cleanup(&g);
  catalog_unref(c2);
}
END_TEST

Suite *chain_suite(void) {
  Suite *s = suite_create("chain");
  TCase *tc = tcase_create("chain");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, composition_table, 0,
                      (int)(sizeof(cases) / sizeof(cases[0])));
  tcase_add_test(tc, verdicts_explain_exclusion);
  tcase_add_test(tc, selector_by_mode_and_labels);
  suite_add_tcase(s, tc);
  return s;
}
