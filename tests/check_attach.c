/*
 * check_attach.c: attachments (README "Attachments"; issue 16, item 3).
 *
 *   store     tests/data/attach/store.yaml: one extension with a config
 *             and match override on an edge gateway template and none on
 *             a sidecar template, exact ECDS names and configs each proxy
 *             receives; tenancy not widened; an unattached extension with
 *             and without --attachment-required (render says why)
 *   rules     an unknown fqn is an error at file:line and the template is
 *             served without it; decode errors; a changed override is an
 *             update of the derived record on reload
 *
 * `check_attach NAME...` runs only the named test cases (store, rules).
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "server/admin/render.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "tests/storekit.h"

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#define HCM_T                                                                  \
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
#define EXT "organizations/acme/extensions/"
#define PAYMENTS "organizations/acme/tenants/payments"
#define OTHER "organizations/acme/tenants/other"

static void proxy(struct proxy_id *p, const char *id, const char *tenant,
                  enum proxy_mode mode) {
  memset(p, 0, sizeof(*p));
  p->node_id = xds_strdup(id);
  p->cluster = xds_strdup("");
  p->organization = xds_strdup("acme");
  p->tenant = xds_strdup(tenant);
  p->mode = mode;
}

static HCM_T *hcm_of(const Envoy__Config__Listener__V3__Listener *l) {
  const Envoy__Config__Listener__V3__Filter *f =
      l->filter_chains[0]->filters[0];

  return envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
      NULL, f->typed_config->value.len, f->typed_config->value.data);
}

/* "listener=filter,filter;..." of what proxy p receives from s, with EXT
 * cut from extension names. Every Wasm filter's ECDS resource must be
 * visible to p. */
static char *listeners_of(struct snapshot *s, const struct proxy_id *p) {
  const struct catalog *cat = snapshot_catalog(s);
  const struct xds_class *c;
  struct xds_buf b;

  ck_assert_int_eq(snapshot_class(s, p, &c), 0);
  xds_buf_init(&b, 1 << 16);
  for (size_t i = 0; i < c->n_listeners; i++) {
    Envoy__Config__Listener__V3__Listener *l =
        envoy__config__listener__v3__listener__unpack(NULL, c->listeners[i].len,
                                                      c->listeners[i].bytes);
    HCM_T *hcm;

    ck_assert_ptr_nonnull(l);
    hcm = hcm_of(l);
    ck_assert_ptr_nonnull(hcm);
    if (i > 0)
      xds_buf_putc(&b, ';');
    xds_buf_printf(&b, "%s=", l->name);
    for (size_t k = 0; k < hcm->n_http_filters; k++) {
      const char *name = hcm->http_filters[k]->name;

      if (k > 0)
        xds_buf_putc(&b, ',');
      if (strncmp(name, EXT, strlen(EXT)) == 0) {
        const struct wasm_ext *e = catalog_ext_find(cat, name);

        ck_assert_msg(e != NULL, "no extension %s", name);
        ck_assert_msg(chain_ext_visible(e, p), "%s not visible", name);
        ck_assert_ptr_nonnull(snapshot_ecds(s, name));
        xds_buf_puts(&b, name + strlen(EXT));
      } else {
        xds_buf_puts(&b, name);
      }
    }
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
        hcm, NULL);
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  }
  xds_buf_putc(&b, '\0');
  return xds_buf_steal(&b, NULL);
}

/* The configuration string the plugin of ECDS resource name receives. */
static char *config_of(struct snapshot *s, const char *name) {
  const struct xds_resource *r = snapshot_ecds(s, name);
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w;
  Google__Protobuf__StringValue *sv;
  char *out;

  ck_assert_msg(r != NULL, "no ECDS resource %s", name);
  tec = envoy__config__core__v3__typed_extension_config__unpack(NULL, r->len,
                                                                r->bytes);
  ck_assert_ptr_nonnull(tec);
  ck_assert_str_eq(tec->name, name);
  ck_assert_str_eq(tec->typed_config->type_url, TYPE_WASM);
  w = envoy__extensions__filters__http__wasm__v3__wasm__unpack(
      NULL, tec->typed_config->value.len, tec->typed_config->value.data);
  ck_assert_ptr_nonnull(w);
  ck_assert_str_eq(w->config->configuration->type_url, TYPE_STRING_VALUE);
  sv = google__protobuf__string_value__unpack(
      NULL, w->config->configuration->value.len,
      w->config->configuration->value.data);
  ck_assert_ptr_nonnull(sv);
  out = xds_strdup(sv->value);
  google__protobuf__string_value__free_unpacked(sv, NULL);
  envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  return out;
}

static struct catalog *store_cat;

static void store_setup(void) {
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf text;

  problems_init(&pb, 100);
  ck_assert_int_eq(file_store_load(XDS_TEST_DATA "/attach/store.yaml", NULL,
                                   &store_cat, &pb, &err),
                   0);
  xds_buf_init(&text, 1 << 16);
  for (size_t i = 0; i < problems_count(&pb); i++)
    problem_format(problems_at(&pb, i), &text);
  ck_assert_msg(problems_count(&pb) == 0, "%s", text.data);
  xds_buf_cleanup(&text);
  problems_cleanup(&pb);
}

static void store_teardown(void) {
  catalog_unref(store_cat);
}

static struct snapshot *build(int attachment_required) {
  struct encode_opts o;
  struct snapshot *s;
  struct xds_err err = {0, ""};

  encode_opts_default(&o);
  o.attachment_required = attachment_required;
  ck_assert_int_eq(snapshot_build(store_cat, &o, 1, &s, &err), 0);
  return s;
}

static void expect_listeners(struct snapshot *s, const char *id,
                             const char *tenant, enum proxy_mode mode,
                             const char *want) {
  struct proxy_id p;
  char *got;

  proxy(&p, id, tenant, mode);
  got = listeners_of(s, &p);
  ck_assert_msg(strcmp(got, want) == 0, "%s:\n got  %s\n want %s", id, got,
                want);
  xds_free(got);
  proxy_id_cleanup(&p);
}

static void expect_config(struct snapshot *s, const char *name,
                          const char *want) {
  char *got = config_of(s, name);

  ck_assert_msg(strcmp(got, want) == 0, "%s:\n got  %s\n want %s", name, got,
                want);
  xds_free(got);
}

/* The edge gateway runs jwt-authn as "<fqn>@edge" with its own issuer (and
 * its match override lets a SERVER extension onto a gateway); sidecars
 * run the stored record under its fqn with the default config. */
START_TEST(two_overrides) {
  struct snapshot *s = build(0);

  /* Two stored extensions got a derived record each. */
  ck_assert_uint_eq(catalog_ext_count(store_cat), 5);
  ck_assert_str_eq(
      catalog_ext_find(store_cat, EXT "jwt-authn@edge")->attached_to, "edge");
  ck_assert_ptr_null(catalog_ext_find(store_cat, EXT "jwt-authn")->attached_to);
  expect_listeners(s, "gw-1", PAYMENTS, PROXY_MODE_GATEWAY,
                   "edge=jwt-authn@edge,tenant-only@edge,stats,"
                   "envoy.filters.http.router");
  expect_listeners(s, "sc-1", PAYMENTS, PROXY_MODE_SIDECAR,
                   "sidecar-in=jwt-authn,tenant-only,stats,"
                   "envoy.filters.http.router;"
                   "sidecar-out=stats,envoy.filters.http.router");
  expect_config(s, EXT "jwt-authn@edge",
                "{\"issuer\":\"https://edge.acme.example\","
                "\"audiences\":[\"web\"]}");
  expect_config(s, EXT "jwt-authn",
                "{\"issuer\":\"https://mesh.acme.example\"}");
  expect_config(s, EXT "tenant-only@edge", "{\"level\":\"strict\"}");
  snapshot_unref(s);
}
END_TEST

/* An attachment never widens allowedIn: the derived record keeps it, so a
 * proxy of another tenant neither runs it nor may fetch it over ECDS. */
START_TEST(tenancy_not_widened) {
  struct snapshot *s = build(0);
  struct proxy_id p;

  expect_listeners(s, "gw-2", OTHER, PROXY_MODE_GATEWAY,
                   "edge=jwt-authn@edge,stats,envoy.filters.http.router");
  expect_listeners(s, "sc-2", OTHER, PROXY_MODE_SIDECAR,
                   "sidecar-in=jwt-authn,stats,envoy.filters.http.router;"
                   "sidecar-out=stats,envoy.filters.http.router");
  proxy(&p, "gw-2", OTHER, PROXY_MODE_GATEWAY);
  ck_assert(!chain_ext_visible(
      catalog_ext_find(store_cat, EXT "tenant-only@edge"), &p));
  ck_assert(
      chain_ext_visible(catalog_ext_find(store_cat, EXT "jwt-authn@edge"), &p));
  proxy_id_cleanup(&p);
  snapshot_unref(s);
}
END_TEST

/* The reason render gives for ext on template tmpl for proxy p. */
static const char *render_reason(json_t *root, const char *tmpl,
                                 const char *ext, int *included) {
  json_t *tmpls = json_object_get(root, "templates"), *t, *e;
  size_t i, k;

  json_array_foreach(tmpls, i, t) {
    if (strcmp(json_string_value(json_object_get(t, "template")), tmpl) != 0)
      continue;
    json_array_foreach(json_object_get(t, "extensions"), k, e) {
      if (strcmp(json_string_value(json_object_get(e, "extension")), ext) ==
          0) {
        *included = json_is_true(json_object_get(e, "included"));
        return json_string_value(json_object_get(e, "reason"));
      }
    }
  }
  ck_abort_msg("render has no verdict for %s on %s", ext, tmpl);
  return NULL;
}

/* stats is attached nowhere: every listener of its tenants, as before
 * attachments, unless --attachment-required, when it reaches nobody and
 * render says why. jwt-authn, attached to two templates, never reaches
 * sidecar-out. */
START_TEST(unattached) {
  struct snapshot *open = build(0), *req = build(1);
  struct proxy_id p;
  json_t *r;
  int in = -1;

  expect_listeners(req, "sc-1", PAYMENTS, PROXY_MODE_SIDECAR,
                   "sidecar-in=jwt-authn,tenant-only,envoy.filters.http.router;"
                   "sidecar-out=envoy.filters.http.router");
  expect_listeners(req, "gw-1", PAYMENTS, PROXY_MODE_GATEWAY,
                   "edge=jwt-authn@edge,tenant-only@edge,"
                   "envoy.filters.http.router");
  proxy(&p, "sc-1", PAYMENTS, PROXY_MODE_SIDECAR);
  r = render_proxy(req, &p);
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(render_reason(r, "sidecar-out", EXT "stats", &in),
                   "attached to no listener template (--attachment-required)");
  ck_assert_int_eq(in, 0);
  ck_assert_str_eq(render_reason(r, "sidecar-out", EXT "tenant-only", &in),
                   "attached to other listener templates only");
  ck_assert_int_eq(in, 0);
  ck_assert_str_eq(render_reason(r, "sidecar-in", EXT "jwt-authn@edge", &in),
                   "attached to other listener templates only");
  ck_assert_int_eq(in, 0);
  ck_assert_str_eq(render_reason(r, "sidecar-in", EXT "jwt-authn", &in),
                   "included");
  ck_assert_int_eq(in, 1);
  json_decref(r);
  proxy_id_cleanup(&p);
  proxy(&p, "gw-1", PAYMENTS, PROXY_MODE_GATEWAY);
  r = render_proxy(req, &p);
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(
      render_reason(r, "edge", EXT "jwt-authn", &in),
      "attached here with an override, served as <fqn>@<template>");
  ck_assert_int_eq(in, 0);
  ck_assert_str_eq(render_reason(r, "edge", EXT "jwt-authn@edge", &in),
                   "included");
  ck_assert_int_eq(in, 1);
  json_decref(r);
  proxy_id_cleanup(&p);
  proxy(&p, "sc-1", PAYMENTS, PROXY_MODE_SIDECAR);
  r = render_proxy(open, &p);
  ck_assert_str_eq(render_reason(r, "sidecar-out", EXT "stats", &in),
                   "included");
  ck_assert_int_eq(in, 1);
  json_decref(r);
  proxy_id_cleanup(&p);
  snapshot_unref(open);
  snapshot_unref(req);
}
END_TEST

static TCase *store_tcase(void) {
  TCase *tc = tcase_create("store");

  tcase_add_checked_fixture(tc, store_setup, store_teardown);
  tcase_add_test(tc, two_overrides);
  tcase_add_test(tc, tenancy_not_widened);
  tcase_add_test(tc, unattached);
  return tc;
}

/* ---- rules ---- */

#define EXT_DOC(name)                                                          \
  "apiVersion: extension.tsb.tetrate.io/v2\n"                                  \
  "kind: WasmExtension\n"                                                      \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec: {url: file:///w/" name ".wasm, config: {a: 1}}\n"
#define TMPL_HEAD(name, port)                                                  \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: " name "}\n"                                               \
  "spec:\n"                                                                    \
  "  port: " port "\n"                                                         \
  "  direction: INBOUND\n"                                                     \
  "  route: {cluster: app}\n"                                                  \
  "  httpFilters:\n"                                                           \
  "  - {name: envoy.filters.http.router, typedConfig: {'@type': "              \
  "envoy.extensions.filters.http.router.v3.Router}}\n"

/* A neighbour's typo: the attachment naming no extension is reported at
 * its line, and the template is still served with its other attachment. */
START_TEST(unknown_fqn) {
  static const char yaml[] =
      EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                       "  - fqn: " EXT "nope\n"
                                       "  - fqn: " EXT "a\n"
                                       "    config: "
                                       "{b: 2}\n";
  struct catalog *cat;
  char *probs = sk_load_yaml(yaml, &cat);
  struct encode_opts o;
  struct snapshot *s;
  struct proxy_id p;
  char *got;

  ck_assert_str_eq(probs, "error: F:16:5: spec.extensions: ListenerTemplate t "
                          "attaches " EXT "nope, which is not a WasmExtension "
                          "of the store; the template is served without this "
                          "attachment\n");
  xds_free(probs);
  ck_assert_ptr_nonnull(catalog_tmpl_find(cat, "t"));
  encode_opts_default(&o);
  ck_assert_int_eq(snapshot_build(cat, &o, 1, &s, NULL), 0);
  proxy(&p, "sc", PAYMENTS, PROXY_MODE_SIDECAR);
  got = listeners_of(s, &p);
  ck_assert_str_eq(got, "t=a@t,envoy.filters.http.router");
  xds_free(got);
  proxy_id_cleanup(&p);
  snapshot_unref(s);
  catalog_unref(cat);
}
END_TEST

static const struct {
  const char *what, *yaml, *want;
} bad[] = {
    {"duplicate fqn",
     EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                      "  - fqn: " EXT "a\n"
                                      "  - fqn: " EXT "a\n",
     "error: F:17:10: spec.extensions[1]: extension " EXT
     "a is already attached at line 16\n"},
    {"bad match mode",
     EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                      "  - fqn: " EXT "a\n"
                                      "    match: {mode: BOTH}\n",
     "error: F:17:19: spec.extensions[0].match.mode: \"BOTH\" is not "},
    {"unknown key",
     EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                      "  - fqn: " EXT "a\n"
                                      "    phase: AUTHN\n",
     "error: F:17:5: spec.extensions[0].phase: unknown field "},
    {"missing fqn",
     EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                      "  - config: {a: 2}\n",
     "error: F:16:5: spec.extensions[0].fqn: missing required field"},
};

/* Each bad attachment is an error at its line; the template is refused
 * (as any template with an invalid field is), the extension kept. */
START_TEST(decode_rules) {
  struct catalog *cat;
  char *probs = sk_load_yaml(bad[_i].yaml, &cat);

  ck_assert_msg(strncmp(probs, bad[_i].want, strlen(bad[_i].want)) == 0,
                "%s:\n got  %s\n want %s...", bad[_i].what, probs,
                bad[_i].want);
  ck_assert_ptr_null(catalog_tmpl_find(cat, "t"));
  ck_assert_ptr_nonnull(catalog_ext_find(cat, EXT "a"));
  xds_free(probs);
  catalog_unref(cat);
}
END_TEST

/* A changed override is an update of the derived record (replicas and
 * reloads agree on its name); removing the attachment removes it. */
START_TEST(reload_diff) {
  struct catalog *a, *b, *c;
  char *pa =
      sk_load_yaml(EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                                    "  - fqn: " EXT "a\n"
                                                    "    config: {b: 2}\n",
                   &a);
  char *pb =
      sk_load_yaml(EXT_DOC("a") TMPL_HEAD("t", "1") "  extensions:\n"
                                                    "  - fqn: " EXT "a\n"
                                                    "    config: {b: 3}\n",
                   &b);
  char *pc = sk_load_yaml(EXT_DOC("a") TMPL_HEAD("t", "1"), &c);
  const struct wasm_ext *e;

  ck_assert_str_eq(pa, "");
  ck_assert_str_eq(pb, "");
  ck_assert_str_eq(pc, "");
  e = catalog_ext_find(b, EXT "a@t");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq(e->config_json, "{\"b\":3}");
  ck_assert_str_eq(catalog_ext_find(b, EXT "a")->config_json, "{\"a\":1}");
  /* The extension itself is unchanged; its derived record and the
   * template are updated. */
  ck_assert_int_eq(catalog_diff(a, b, NULL, NULL), 2);
  ck_assert_ptr_null(catalog_ext_find(c, EXT "a@t"));
  ck_assert_int_eq(catalog_diff(a, c, NULL, NULL), 2);
  xds_free(pa);
  xds_free(pb);
  xds_free(pc);
  catalog_unref(a);
  catalog_unref(b);
  catalog_unref(c);
}
END_TEST

static TCase *rules_tcase(void) {
  TCase *tc = tcase_create("rules");

  tcase_add_test(tc, unknown_fqn);
  tcase_add_loop_test(tc, decode_rules, 0, (int)(sizeof(bad) / sizeof(bad[0])));
  tcase_add_test(tc, reload_diff);
  return tc;
}

int main(int argc, char **argv) {
  static const struct sk_case cases[] = {{"store", store_tcase},
                                         {"rules", rules_tcase}};

  return sk_run("attach", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
