/*
 * testutil.h: helpers shared by the offline suites.
 */
#ifndef XDS_TESTUTIL_H
#define XDS_TESTUTIL_H

#include "server/compose/proxy.h"
#include "store/catalog.h"

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

/* Loads yaml (one or more documents) through the file store, as the server
 * would, failing the test on any problem. Returns a new catalog reference. */
struct catalog *tu_catalog(const char *yaml);

/* Fills p for a proxy; tenant may be NULL; labels is "k=v,k2=v2" or NULL. */
void tu_proxy(struct proxy_id *p, const char *id, const char *org,
              const char *tenant, enum proxy_mode mode, const char *labels);

/* A WasmExtension acme/name (url file:///w/<name>.wasm; extra: more spec
 * fields, each led by ", ") and the ListenerTemplate "in" (INBOUND, port
 * 15006, the router), as YAML documents to concatenate. */
#define TU_EXT(name, extra)                                                    \
  "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"        \
  "metadata: {organization: acme, name: " name "}\n"                           \
  "spec: {url: file:///w/" name ".wasm" extra "}\n"
#define TU_TMPL                                                                \
  "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"                   \
  "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"         \
  "  route: {cluster: app}\n  httpFilters:\n"                                  \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

/* The stores the ADS suites serve in turn (check_ads.c, check_ads_oom.c):
 * [0] extensions a (AUTHN, config {v: 1}), b (AUTHZ) and secret (tenant
 * payments only) and the template; [1] a's config changes (ECDS only);
 * [2] c (STATS) is added too (the listener changes). */
extern const char *const tu_ads_stores[3];

/* A Node on the stack with metadata organization acme and, unless NULL,
 * tenant. */
struct tu_node {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md;
  Google__Protobuf__Struct__FieldsEntry e_tenant, e_org;
  Google__Protobuf__Struct__FieldsEntry *entries[2];
  Google__Protobuf__Value v_tenant, v_org;
};

/* Fills h as the node id (borrowed, as tenant is) of organization acme and
 * tenant (nullable). */
void tu_node_init(struct tu_node *h, const char *id, const char *tenant);

#endif
