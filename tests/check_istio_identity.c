/*
 * check_istio_identity.c: proxies identified the way istio-agent bootstraps
 * Envoy (Node.id sidecar~/router~, metadata NAMESPACE, LABELS, ...) and
 * Istio's SPIFFE certificates (README "Coming from Istio").
 */
#include <check.h>
#include <stdarg.h>
#include <string.h>

#include "server/ads/ads.h"
#include "server/compose/encode.h"
#include "server/compose/identity.h"
#include "server/compose/snapshot.h"
#include "server/pb/typeurl.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "server/compose/proxy.h"

#include "check_istio.h"

START_TEST(sidecar_id_and_metadata) {
  struct tnode t;
  struct proxy_id p;
  struct xds_err err = {0, ""};

  tnode_init(&t, "sidecar~10.1.2.3~reviews-v1-7d8f.bookinfo~bookinfo.svc."
                 "cluster.local");
  tnode_str(&t, "NAMESPACE", "bookinfo");
  tnode_str(&t, "WORKLOAD_NAME", "reviews-v1");
  tnode_str(&t, "CLUSTER_ID", "Kubernetes");
  tnode_str(&t, "MESH_ID", "cluster.local");
  tnode_str(&t, "ISTIO_VERSION", "1.24.0");
  tnode_labels(&t, "LABELS", "app", "reviews", "version", "v1", NULL);
  ck_assert_int_eq(identity_from_node(&t.node, &p, &err), 0);
  ck_assert_str_eq(p.namespace, "bookinfo");
  ck_assert_int_eq(p.mode, PROXY_MODE_SIDECAR);
  ck_assert_str_eq(p.organization, "");
  ck_assert_ptr_null(p.tenant);
  ck_assert_uint_eq(p.n_labels, 2);
  ck_assert_str_eq(proxy_id_label(&p, "app"), "reviews");
  ck_assert_str_eq(proxy_id_label(&p, "version"), "v1");
  proxy_id_cleanup(&p);
}
END_TEST

START_TEST(router_is_a_gateway) {
  struct tnode t;
  struct proxy_id p;
  struct xds_err err = {0, ""};

  /* No NAMESPACE: the id's <pod>.<namespace> names it (pod with dots). */
  tnode_init(&t, "router~10.0.0.9~ingress.gw.abc.istio-ingress~istio-ingress."
                 "svc.cluster.local");
  ck_assert_int_eq(identity_from_node(&t.node, &p, &err), 0);
  ck_assert_str_eq(p.namespace, "istio-ingress");
  ck_assert_int_eq(p.mode, PROXY_MODE_GATEWAY);
  proxy_id_cleanup(&p);
}
END_TEST

START_TEST(metadata_only_and_wasmxds_keys_together) {
  struct tnode t;
  struct proxy_id p;
  struct xds_err err = {0, ""};

  /* A plain id with NAMESPACE: Istio identity; with a tenant too, both
   * WasmExtensions and WasmPlugins can reach it. */
  tnode_init(&t, "vm-17");
  tnode_str(&t, "NAMESPACE", "shop");
  tnode_str(&t, "wasmxds.tenant", "organizations/acme/tenants/web");
  ck_assert_int_eq(identity_from_node(&t.node, &p, &err), 0);
  ck_assert_str_eq(p.namespace, "shop");
  ck_assert_str_eq(p.organization, "acme");
  ck_assert_str_eq(p.tenant, "organizations/acme/tenants/web");
  proxy_id_cleanup(&p);
}
END_TEST

/* Each case is refused with a message containing want. */
static void refused(struct tnode *t, const char *want) {
  struct proxy_id p;
  struct xds_err err = {0, ""};

  ck_assert_int_eq(identity_from_node(&t->node, &p, &err), XDS_EINVAL);
  ck_assert_msg(strstr(err.msg, want) != NULL, "\"%s\" lacks \"%s\"", err.msg,
                want);
  ck_assert_msg(strstr(err.msg, t->node.id) != NULL, "no node id in \"%s\"",
                err.msg);
  ck_assert_ptr_null(p.node_id);
  ck_assert_ptr_null(p.namespace);
}

START_TEST(refusals) {
  struct tnode t;

  tnode_init(&t, "waypoint~1.2.3.4~w.ns~ns.svc.cluster.local");
  refused(&t, "Istio node type \"waypoint\" is not sidecar or router");
  tnode_init(&t, "sidecar~1.2.3.4~pod.a~a.svc.cluster.local");
  tnode_str(&t, "NAMESPACE", "b");
  refused(&t, "metadata NAMESPACE \"b\" disagrees with the namespace \"a\"");
  tnode_init(&t, "sidecar~1.2.3.4~podonly~x.svc.cluster.local");
  refused(&t, "an Istio node needs a namespace");
  tnode_init(&t, "x");
  tnode_str(&t, "NAMESPACE", "Bad_NS");
  refused(&t, "namespace \"Bad_NS\" is not a DNS-1123 label");
  tnode_init(&t, "router~1.2.3.4~gw.ns~ns.svc.cluster.local");
  tnode_str(&t, "wasmxds.mode", "SIDECAR");
  refused(&t, "metadata wasmxds.mode disagrees with the Istio node type");
  tnode_init(&t, "x");
  tnode_str(&t, "NAMESPACE", "ns");
  tnode_labels(&t, "wasmxds.labels", "a", "b", NULL);
  {
    /* Both label keys at once. */
    size_t i = t.md.n_fields++;

    google__protobuf__struct__fields_entry__init(&t.e[i]);
    t.e[i].key = "LABELS";
    t.e[i].value = &t.v[i - 1];
    t.ep[i] = &t.e[i];
  }
  refused(&t, "set labels in one of metadata wasmxds.labels or LABELS");
  tnode_init(&t, "x");
  tnode_str(&t, "NAMESPACE", "ns");
  t.v[0].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
  refused(&t, "metadata NAMESPACE must be a string");
  tnode_init(&t, "x");
  tnode_str(&t, "ISTIO_VERSION", "1.24");
  tnode_str(&t, "NAMESPACE", "ns");
  tnode_labels(&t, "LABELS", "app", "x", NULL);
  t.lv[0].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
  refused(&t, "label app in metadata LABELS is not a string");
  /* The id's domain <namespace>.svc.<...> must name the same namespace. */
  tnode_init(&t, "sidecar~1.2.3.4~pod.a~b.svc.cluster.local");
  refused(&t, "the domain \"b.svc.cluster.local\" of the node id names "
              "namespace \"b\", not \"a\"");
  tnode_init(&t, "sidecar~1.2.3.4~pod~b.svc");
  tnode_str(&t, "NAMESPACE", "a");
  refused(&t, "names namespace \"b\", not \"a\"");
  /* A key the wire repeats is ambiguous (which one counts?): refused, as
   * for wasmxds' own keys, not the first one taken. */
  tnode_init(&t, "x");
  tnode_str(&t, "NAMESPACE", "shop");
  tnode_str(&t, "NAMESPACE", "payments");
  refused(&t, "metadata NAMESPACE appears more than once");
  tnode_init(&t, "x");
  tnode_str(&t, "NAMESPACE", "ns");
  tnode_labels(&t, "LABELS", "app", "x", NULL);
  tnode_labels(&t, "LABELS", "app", "y", NULL);
  refused(&t, "metadata LABELS appears more than once");
}
END_TEST

START_TEST(plain_nodes_unchanged) {
  struct tnode t;
  struct proxy_id p;
  struct xds_err err = {0, ""};

  /* Without any Istio sign, a node still needs an organization... */
  tnode_init(&t, "plain");
  refused(&t, "no organization");
  /* ...and an id with '~' but not four parts is not Istio's. */
  tnode_init(&t, "a~b~c");
  tnode_str(&t, "wasmxds.organization", "acme");
  ck_assert_int_eq(identity_from_node(&t.node, &p, &err), 0);
  ck_assert_ptr_null(p.namespace);
  ck_assert_str_eq(p.organization, "acme");
  proxy_id_cleanup(&p);
  /* Nor is one with five parts, even when it starts like Istio's. */
  tnode_init(&t, "sidecar~1.2.3.4~pod.ns~ns.svc.cluster.local~x");
  tnode_str(&t, "wasmxds.organization", "acme");
  ck_assert_msg(identity_from_node(&t.node, &p, &err) == 0, "%s", err.msg);
  ck_assert_ptr_null(p.namespace);
  ck_assert_str_eq(p.organization, "acme");
  proxy_id_cleanup(&p);
}
END_TEST

/* Leaves a pattern where the next call's locals will be, so a read of an
 * uninitialized local shows (it is not 0 by luck). */
static void __attribute__((noinline)) dirty_stack(void) {
  volatile unsigned char junk[4096];

  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = 0x41;
}

/* Found by tests/fuzz/fuzz_identity (corpus: regress-identity-five-parts):
 * an id with five '~'-separated parts was taken for Istio's shape and its
 * parts read uninitialized. It is not Istio's: a plain wasmxds node. */
START_TEST(five_part_id_is_not_istio) {
  struct tnode t;
  struct proxy_id p;
  struct xds_err err = {0, ""};

  tnode_init(&t, "sidecar~10.0.0.1~pod-1.shop~shop.svc.cluster.local~x");
  tnode_str(&t, "wasmxds.organization", "acme");
  dirty_stack();
  ck_assert_msg(identity_from_node(&t.node, &p, &err) == 0, "%s", err.msg);
  ck_assert_ptr_null(p.namespace);
  ck_assert_str_eq(p.organization, "acme");
  proxy_id_cleanup(&p);
}
END_TEST

/* Found by tests/fuzz/fuzz_identity (and fuzz_ads_*; corpus:
 * regress-identity-valueless-key): a metadata entry with a key and no
 * value (protobuf's default Value) crashed the server (NULL dereference)
 * when the key is one read as a string. It is refused as not a string. */
START_TEST(valueless_metadata_key_is_refused) {
  struct tnode t;
  struct proxy_id p;
  struct xds_err err = {0, ""};

  tnode_init(&t, "proxy-1");
  tnode_str(&t, "wasmxds.organization", "acme");
  t.e[t.md.n_fields - 1].value = NULL;
  ck_assert_int_eq(identity_from_node(&t.node, &p, &err), XDS_EINVAL);
  tnode_init(&t, "proxy-1");
  tnode_str(&t, "wasmxds.organization", "acme");
  tnode_str(&t, "wasmxds.tenant", "organizations/acme/tenants/t");
  t.e[t.md.n_fields - 1].value = NULL;
  ck_assert_int_eq(identity_from_node(&t.node, &p, &err), XDS_EINVAL);
}
END_TEST

START_TEST(equal_compares_namespace) {
  struct tnode a, b;
  struct proxy_id pa, pb;
  struct xds_err err = {0, ""};

  tnode_init(&a, "x");
  tnode_str(&a, "NAMESPACE", "one");
  tnode_init(&b, "x");
  tnode_str(&b, "NAMESPACE", "two");
  ck_assert_int_eq(identity_from_node(&a.node, &pa, &err), 0);
  ck_assert_int_eq(identity_from_node(&b.node, &pb, &err), 0);
  ck_assert(!identity_equal(&pa, &pb));
  ck_assert(identity_equal(&pa, &pa));
  proxy_id_cleanup(&pa);
  proxy_id_cleanup(&pb);
}
END_TEST

START_TEST(istio_spiffe) {
  static const char ok[] = "spiffe://cluster.local/ns/bookinfo/sa/reviews";
  static const char *const bad[] = {
      "spiffe://cluster.local/ns/Bad/sa/x", "spiffe://cluster.local/ns/a/sa/",
      "spiffe://cluster.local/ns/a", "spiffe://cluster.local/ns/a/sa/x/more",
      "spiffe://cluster.local/ns/a/xx/x"};
  struct proxy_id p;
  struct xds_err err = {0, ""};

  ck_assert_int_eq(identity_from_spiffe(ok, strlen(ok), &p, &err), 0);
  ck_assert_str_eq(p.namespace, "bookinfo");
  ck_assert_str_eq(p.organization, "");
  ck_assert_ptr_null(p.tenant);
  proxy_id_cleanup(&p);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(identity_from_spiffe(bad[i], strlen(bad[i]), &p, &err),
                     XDS_EINVAL);
    ck_assert_msg(strstr(err.msg, "/ns/<namespace>/sa/<account>") != NULL,
                  "%s: %s", bad[i], err.msg);
  }
}
END_TEST

/* Under mutual TLS, a stream whose certificate is cert sends node t.
 * Returns the close code (0: accepted). */
static int over_mtls(const char *cert, struct tnode *t) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  struct catalog *cat;
  struct snapshot *snap;
  struct encode_opts o;
  struct problems pb;
  struct xds_err err = {0, ""};
  struct proxy_id v;
  struct ads_stream *s;
  struct ads_close close = {0, ""};
  int rc;

  problems_init(&pb, 10);
  ck_assert_int_eq(
      file_store_load(XDS_TEST_DATA "/istio/store", NULL, &cat, &pb, &err), 0);
  problems_cleanup(&pb);
  encode_opts_default(&o);
  ck_assert_int_eq(snapshot_build(cat, &o, 1, &snap, &err), 0);
  catalog_unref(cat);
  ck_assert_int_eq(identity_from_spiffe(cert, strlen(cert), &v, &err), 0);
  ck_assert_int_eq(ads_stream_new(ADS_SVC_ADS, ADS_SOTW, "test", &s), 0);
  ads_stream_set_verified(s, &v);
  req.node = &t->node;
  req.type_url = TYPE_LISTENER;
  rc = ads_stream_on_request(s, &req, snap, &close);
  ck_assert_int_eq(rc < 0, close.code != 0);
  ads_stream_free(s);
  proxy_id_cleanup(&v);
  snapshot_unref(snap);
  return close.code;
}

START_TEST(mtls_binds_the_namespace) {
  static const char bookinfo[] =
      "spiffe://cluster.local/ns/bookinfo/sa/reviews";
  struct tnode t;

  /* The certificate's namespace and the node's agree. */
  tnode_init(&t, "sidecar~10.0.0.1~r-1.bookinfo~bookinfo.svc.cluster.local");
  ck_assert_int_eq(over_mtls(bookinfo, &t), 0);
  /* The node claims another namespace. */
  tnode_init(&t, "sidecar~10.0.0.1~r-1.shop~shop.svc.cluster.local");
  ck_assert_int_eq(over_mtls(bookinfo, &t), ADS_STATUS_PERMISSION_DENIED);
  /* An Istio certificate names no organization: claiming one is refused. */
  tnode_init(&t, "sidecar~10.0.0.1~r-1.bookinfo~bookinfo.svc.cluster.local");
  tnode_str(&t, "wasmxds.organization", "acme");
  ck_assert_int_eq(over_mtls(bookinfo, &t), ADS_STATUS_PERMISSION_DENIED);
  /* A wasmxds certificate names no namespace: claiming one is refused. */
  tnode_init(&t, "sidecar~10.0.0.1~r-1.bookinfo~bookinfo.svc.cluster.local");
  tnode_str(&t, "wasmxds.organization", "acme");
  ck_assert_int_eq(over_mtls("spiffe://td/organizations/acme", &t),
                   ADS_STATUS_PERMISSION_DENIED);
  /* Without the namespace claim the same node is fine. */
  tnode_init(&t, "vm-1");
  tnode_str(&t, "wasmxds.organization", "acme");
  ck_assert_int_eq(over_mtls("spiffe://td/organizations/acme", &t), 0);
}
END_TEST

TCase *istio_identity_tcase(void) {
  TCase *tc = tcase_create("identity");

  tcase_add_test(tc, sidecar_id_and_metadata);
  tcase_add_test(tc, router_is_a_gateway);
  tcase_add_test(tc, metadata_only_and_wasmxds_keys_together);
  tcase_add_test(tc, refusals);
  tcase_add_test(tc, plain_nodes_unchanged);
  tcase_add_test(tc, five_part_id_is_not_istio);
  tcase_add_test(tc, valueless_metadata_key_is_refused);
  tcase_add_test(tc, equal_compares_namespace);
  tcase_add_test(tc, istio_spiffe);
  tcase_add_test(tc, mtls_binds_the_namespace);
  return tc;
}
