/*
 * check_proxyid.c: who a proxy is, offline: the grammar of identity
 * strings (server/compose/identity.h), the NUL check of requests on the wire
 * (server/pb/wirecheck.h) and the injectivity of proxy class keys
 * (server/compose/snapshot.c).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "server/compose/encode.h"
#include "server/compose/identity.h"
#include "server/compose/snapshot.h"
#include "server/pb/wire.h"
#include "server/pb/wirecheck.h"
#include "testutil.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

/* ---- grammar ------------------------------------------------------------ */

START_TEST(names_and_tokens) {
  ck_assert(identity_name_ok("acme", 4));
  ck_assert(identity_name_ok("a-b_c.d9", 8));
  ck_assert(identity_name_ok("9lives", 6));
  ck_assert(!identity_name_ok("", 0));
  ck_assert(!identity_name_ok("-acme", 5));
  ck_assert(!identity_name_ok(".acme", 5));
  ck_assert(!identity_name_ok("ac me", 5));
  ck_assert(!identity_name_ok("ac/me", 5));
  ck_assert(!identity_name_ok("ac\nme", 5));
  ck_assert(!identity_name_ok("ac\0me", 5));
  {
    char big[300];
    memset(big, 'a', sizeof(big));
    ck_assert(identity_name_ok(big, IDENTITY_NAME_MAX));
    ck_assert(!identity_name_ok(big, IDENTITY_NAME_MAX + 1));
  }
  ck_assert(identity_token_ok("sidecar~10.0.0.1~pod.ns~ns.svc", 30, 1, 512));
  ck_assert(identity_token_ok("", 0, 0, 10));
  ck_assert(!identity_token_ok("", 0, 1, 10));
  ck_assert(!identity_token_ok("a b", 3, 1, 10));
  ck_assert(!identity_token_ok("a\tb", 3, 1, 10));
  ck_assert(!identity_token_ok("a\x7f", 2, 1, 10));
  ck_assert(!identity_token_ok("a\x80", 2, 1, 10));
  ck_assert(!identity_token_ok("abcdef", 6, 1, 5));
}
END_TEST

START_TEST(tenant_fqn) {
  char *org = NULL;

  ck_assert_int_eq(
      identity_parse_tenant("organizations/acme/tenants/payments", &org), 0);
  ck_assert_str_eq(org, "acme");
  xds_free(org);
  ck_assert_int_eq(
      identity_parse_tenant("organizations/acme/tenants/pay\nSIDECAR", NULL),
      XDS_EINVAL);
  ck_assert_int_eq(
      identity_parse_tenant("organizations/ac me/tenants/pay", NULL),
      XDS_EINVAL);
  ck_assert_int_eq(
      identity_parse_tenant("organizations/acme/tenants/pay/x", NULL),
      XDS_EINVAL);
  ck_assert_int_eq(identity_parse_tenant("organizations//tenants/pay", NULL),
                   XDS_EINVAL);
  ck_assert_int_eq(identity_parse_tenant("organizations/acme/tenants/", NULL),
                   XDS_EINVAL);
}
END_TEST

/* A Node from one id and string metadata (NULL-terminated pairs); labels
 * as pairs under wasmxds.labels. Freed with node_free. */
struct node_holder {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md, lst;
  Google__Protobuf__Struct__FieldsEntry ent[8], lent[8];
  Google__Protobuf__Struct__FieldsEntry *entp[8], *lentp[8];
  Google__Protobuf__Value val[8], lval[8], labels;
};

static void node_fill(struct node_holder *h, const char *id,
                      const char *cluster, const char *const *kv,
                      const char *const *labels) {
  size_t n = 0;

  memset(h, 0, sizeof(*h));
  envoy__config__core__v3__node__init(&h->node);
  google__protobuf__struct__init(&h->md);
  google__protobuf__struct__init(&h->lst);
  h->node.id = (char *)id;
  h->node.cluster = (char *)cluster;
  h->node.metadata = &h->md;
  for (; kv != NULL && kv[2 * n] != NULL; n++) {
    google__protobuf__struct__fields_entry__init(&h->ent[n]);
    google__protobuf__value__init(&h->val[n]);
    h->val[n].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    h->val[n].string_value = (char *)kv[2 * n + 1];
    h->ent[n].key = (char *)kv[2 * n];
    h->ent[n].value = &h->val[n];
    h->entp[n] = &h->ent[n];
  }
  if (labels != NULL) {
    size_t m = 0;
    for (; labels[2 * m] != NULL; m++) {
      google__protobuf__struct__fields_entry__init(&h->lent[m]);
      google__protobuf__value__init(&h->lval[m]);
      h->lval[m].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
      h->lval[m].string_value = (char *)labels[2 * m + 1];
      h->lent[m].key = (char *)labels[2 * m];
      h->lent[m].value = &h->lval[m];
      h->lentp[m] = &h->lent[m];
    }
    h->lst.fields = h->lentp;
    h->lst.n_fields = m;
    google__protobuf__value__init(&h->labels);
    h->labels.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    h->labels.struct_value = &h->lst;
    google__protobuf__struct__fields_entry__init(&h->ent[n]);
    h->ent[n].key = IDENTITY_KEY_LABELS;
    h->ent[n].value = &h->labels;
    h->entp[n] = &h->ent[n];
    n++;
  }
  h->md.fields = h->entp;
  h->md.n_fields = n;
}

static const struct {
  const char *id, *cluster;
  const char *kv[7];
  const char *labels[3];
  int ok;
} node_cases[] = {
    {"pay-1",
     "c",
     {"wasmxds.tenant", "organizations/acme/tenants/pay", NULL},
     {NULL},
     1},
    {"router~10.0.0.1~p.ns~ns.svc.cluster.local",
     "",
     {"wasmxds.organization", "acme", "wasmxds.mode", "gateway", NULL},
     {"app.kubernetes.io/name", "shop", NULL},
     1},
    {"a\nb", "c", {"wasmxds.organization", "acme", NULL}, {NULL}, 0},
    {"a b", "c", {"wasmxds.organization", "acme", NULL}, {NULL}, 0},
    {"a", "c\x1b[2J", {"wasmxds.organization", "acme", NULL}, {NULL}, 0},
    {"a",
     "c",
     {"wasmxds.tenant", "organizations/acme/tenants/x\nGATEWAY", NULL},
     {NULL},
     0},
    {"a", "c", {"wasmxds.organization", "ac\nme", NULL}, {NULL}, 0},
    {"a", "c", {"wasmxds.organization", "acme/x", NULL}, {NULL}, 0},
    {"a",
     "c",
     {"wasmxds.organization", "acme", "wasmxds.mode", "SIDECAR\n", NULL},
     {NULL},
     0},
    {"a", "c", {"wasmxds.organization", "acme", NULL}, {"k", "v\r", NULL}, 0},
    {"a", "c", {"wasmxds.organization", "acme", NULL}, {"k\n", "v", NULL}, 0},
    {"a", "c", {"wasmxds.organization", "acme", NULL}, {"", "v", NULL}, 0},
    /* The same key twice: which one counts would be ambiguous. */
    {"a",
     "c",
     {"wasmxds.organization", "acme", "wasmxds.organization", "other", NULL},
     {NULL},
     0},
};

START_TEST(node_grammar) {
  struct node_holder h;
  struct proxy_id p;
  struct xds_err err = {0, ""};
  int rc;

  node_fill(&h, node_cases[_i].id, node_cases[_i].cluster, node_cases[_i].kv,
            node_cases[_i].labels[0] != NULL ? node_cases[_i].labels : NULL);
  rc = identity_from_node(&h.node, &p, &err);
  if (node_cases[_i].ok) {
    ck_assert_msg(rc == 0, "case %d refused: %s", _i, err.msg);
    proxy_id_cleanup(&p);
    return;
  }
  ck_assert_msg(rc == XDS_EINVAL, "case %d accepted", _i);
  ck_assert_msg(strstr(err.msg, "node") != NULL, "case %d: \"%s\"", _i,
                err.msg);
  ck_assert_ptr_null(p.node_id);
}
END_TEST

/* With a certificate's identity, metadata may name no organization. */
START_TEST(node_without_metadata_takes_certificate) {
  struct node_holder h;
  struct proxy_id p, cert;
  struct xds_err err;

  node_fill(&h, "pay-1", "c", NULL, NULL);
  ck_assert_int_eq(identity_from_node(&h.node, &p, &err), XDS_EINVAL);
  ck_assert_int_eq(identity_from_spiffe(
                       "spiffe://td/organizations/acme/tenants/payments/sa/x",
                       50, &cert, &err),
                   0);
  ck_assert_int_eq(identity_from_node_verified(&h.node, &cert, &p, &err), 0);
  ck_assert_str_eq(p.organization, "acme");
  proxy_id_cleanup(&p);
  proxy_id_cleanup(&cert);
}
END_TEST

START_TEST(spiffe_grammar) {
  static const char *const bad[] = {
      "spiffe://td/organizations/ac\nme/tenants/x",
      "spiffe://td/organizations/acme/tenants/x y",
      "spiffe://td/organizations/acme/tenants/%0a",
      "spiffe://td/organizations//tenants/x",
  };
  struct proxy_id p;
  struct xds_err err;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(identity_from_spiffe(bad[i], strlen(bad[i]), &p, &err),
                     XDS_EINVAL);
    ck_assert_msg(strstr(err.msg, "certificate URI") != NULL, "\"%s\"",
                  err.msg);
  }
  ck_assert_int_eq(
      identity_from_spiffe("spiffe://td/organizations/a\0b", 29, &p, &err),
      XDS_EINVAL);
  ck_assert_int_eq(
      identity_from_spiffe("spiffe://td/organizations/acme/tenants/pay/sa/x",
                           47, &p, &err),
      0);
  ck_assert_str_eq(p.tenant, "organizations/acme/tenants/pay");
  proxy_id_cleanup(&p);
}
END_TEST

/* ---- NUL bytes on the wire ---------------------------------------------- */

START_TEST(wire_nul_found_at_any_depth) {
  const ProtobufCMessageDescriptor *d =
      &envoy__service__discovery__v3__discovery_request__descriptor;
  struct xds_buf req, node, md, ent, val;
  const char *msg = NULL, *field = NULL;

  xds_buf_init(&req, 4096);
  xds_buf_init(&node, 4096);
  xds_buf_init(&md, 4096);
  xds_buf_init(&ent, 4096);
  xds_buf_init(&val, 4096);
  /* Clean: a node with metadata, a name, a version varint field inside. */
  ck_assert_int_eq(wire_put_bytes(&val, 3, "x", 1), 0);
  ck_assert_int_eq(wire_put_bytes(&ent, 1, "k", 1), 0);
  ck_assert_int_eq(wire_put_bytes(&ent, 2, val.data, val.len), 0);
  ck_assert_int_eq(wire_put_bytes(&md, 1, ent.data, ent.len), 0);
  ck_assert_int_eq(wire_put_bytes(&node, 1, "id", 2), 0);
  ck_assert_int_eq(wire_put_bytes(&node, 3, md.data, md.len), 0);
  ck_assert_int_eq(wire_put_bytes(&req, 2, node.data, node.len), 0);
  ck_assert_int_eq(wire_put_string(&req, 3, "name"), 0);
  ck_assert_int_eq(
      wirecheck_strings(d, (const uint8_t *)req.data, req.len, &msg, &field),
      0);
  /* A NUL in the Struct value, three messages down. */
  xds_buf_reset(&val);
  xds_buf_reset(&ent);
  xds_buf_reset(&md);
  xds_buf_reset(&node);
  xds_buf_reset(&req);
  ck_assert_int_eq(wire_put_bytes(&val, 3, "x\0y", 3), 0);
  ck_assert_int_eq(wire_put_bytes(&ent, 1, "k", 1), 0);
  ck_assert_int_eq(wire_put_bytes(&ent, 2, val.data, val.len), 0);
  ck_assert_int_eq(wire_put_bytes(&md, 1, ent.data, ent.len), 0);
  ck_assert_int_eq(wire_put_bytes(&node, 1, "id", 2), 0);
  ck_assert_int_eq(wire_put_bytes(&node, 3, md.data, md.len), 0);
  ck_assert_int_eq(wire_put_bytes(&req, 2, node.data, node.len), 0);
  ck_assert_int_eq(
      wirecheck_strings(d, (const uint8_t *)req.data, req.len, &msg, &field),
      XDS_EINVAL);
  ck_assert_str_eq(msg, "google.protobuf.Value");
  ck_assert_str_eq(field, "string_value");
  /* Bytes fields may hold NUL: error_detail.details[0].value (an Any). */
  xds_buf_reset(&req);
  xds_buf_reset(&val);
  xds_buf_reset(&ent);
  ck_assert_int_eq(wire_put_bytes(&val, 2, "a\0b", 3), 0);
  ck_assert_int_eq(wire_put_bytes(&ent, 3, val.data, val.len), 0);
  ck_assert_int_eq(wire_put_bytes(&req, 6, ent.data, ent.len), 0);
  ck_assert_int_eq(
      wirecheck_strings(d, (const uint8_t *)req.data, req.len, &msg, &field),
      0);
  /* A top-level repeated string. */
  xds_buf_reset(&req);
  ck_assert_int_eq(wire_put_bytes(&req, 3, "a\0b", 3), 0);
  ck_assert_int_eq(
      wirecheck_strings(d, (const uint8_t *)req.data, req.len, &msg, &field),
      XDS_EINVAL);
  ck_assert_str_eq(field, "resource_names");
  /* Truncated: a length past the end. */
  xds_buf_reset(&req);
  ck_assert_int_eq(wire_put_len_prefix(&req, 3, 10), 0);
  ck_assert_int_eq(
      wirecheck_strings(d, (const uint8_t *)req.data, req.len, NULL, NULL),
      XDS_EPARSE);
  xds_buf_cleanup(&req);
  xds_buf_cleanup(&node);
  xds_buf_cleanup(&md);
  xds_buf_cleanup(&ent);
  xds_buf_cleanup(&val);
}
END_TEST

START_TEST(wire_depth_bounded) {
  const ProtobufCMessageDescriptor *d = &google__protobuf__struct__descriptor;
  struct xds_buf a, b;

  /* Struct{fields{key, Value{struct_value: Struct{...}}}} nested deep. */
  xds_buf_init(&a, 1 << 20);
  xds_buf_init(&b, 1 << 20);
  for (int i = 0; i < WIRECHECK_DEPTH_MAX; i++) {
    xds_buf_reset(&b);
    ck_assert_int_eq(wire_put_bytes(&b, 5, a.data, a.len), 0); /* Value */
    xds_buf_reset(&a);
    ck_assert_int_eq(wire_put_bytes(&a, 2, b.data, b.len), 0); /* entry */
    xds_buf_reset(&b);
    ck_assert_int_eq(wire_put_bytes(&b, 1, a.data, a.len), 0); /* Struct */
    xds_buf_reset(&a);
    ck_assert_int_eq(xds_buf_append(&a, b.data, b.len), 0);
  }
  ck_assert_int_eq(
      wirecheck_strings(d, (const uint8_t *)a.data, a.len, NULL, NULL),
      XDS_ETOOBIG);
  xds_buf_cleanup(&a);
  xds_buf_cleanup(&b);
}
END_TEST

/* ---- class keys ---------------------------------------------------------- */

/* Under the old "\n"-joined key, a GATEWAY proxy whose tenant string
 * ends in "\nSIDECAR" collided with a payments sidecar when a template
 * named GATEWAY selects sidecars. Each pair here must get its own class. */
START_TEST(class_keys_are_injective) {
  struct catalog *cat = tu_catalog(
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: GATEWAY}\nspec:\n  port: 1\n  direction: INBOUND\n"
      "  selector: {mode: SIDECAR}\n  route: {cluster: app}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n"
      "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: outbound}\nspec:\n  port: 2\n  direction: OUTBOUND\n"
      "  route: {cluster: up}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n");
  static const struct {
    const char *org, *tenant;
    enum proxy_mode mode;
  } pairs[][2] = {
      {{"acme", "organizations/acme/tenants/payments", PROXY_MODE_SIDECAR},
       {"acme", "organizations/acme/tenants/payments\nSIDECAR",
        PROXY_MODE_GATEWAY}},
      {{"acme", NULL, PROXY_MODE_SIDECAR}, {"acme", "", PROXY_MODE_SIDECAR}},
      {{"a\nb", "c", PROXY_MODE_SIDECAR}, {"a", "b\nc", PROXY_MODE_SIDECAR}},
      {{"a|1:b", NULL, PROXY_MODE_SIDECAR}, {"a", "1:b", PROXY_MODE_SIDECAR}},
  };
  struct encode_opts o;
  struct snapshot *s;

  encode_opts_default(&o);
  ck_assert_int_eq(snapshot_build(cat, &o, 1, &s, NULL), 0);
  for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
    const struct xds_class *c[2];
    for (int k = 0; k < 2; k++) {
      struct proxy_id p;
      tu_proxy(&p, "n", pairs[i][k].org, pairs[i][k].tenant, pairs[i][k].mode,
               NULL);
      ck_assert_int_eq(snapshot_class(s, &p, &c[k]), 0);
      proxy_id_cleanup(&p);
    }
    ck_assert_msg(c[0] != c[1], "pair %zu shares one class", i);
  }
  snapshot_unref(s);
  catalog_unref(cat);
}
END_TEST

Suite *proxyid_suite(void) {
  Suite *s = suite_create("proxyid");
  TCase *tc = tcase_create("proxyid");

  tcase_add_test(tc, names_and_tokens);
  tcase_add_test(tc, tenant_fqn);
  tcase_add_loop_test(tc, node_grammar, 0,
                      (int)(sizeof(node_cases) / sizeof(node_cases[0])));
  tcase_add_test(tc, node_without_metadata_takes_certificate);
  tcase_add_test(tc, spiffe_grammar);
  tcase_add_test(tc, wire_nul_found_at_any_depth);
  tcase_add_test(tc, wire_depth_bounded);
  tcase_add_test(tc, class_keys_are_injective);
  suite_add_tcase(s, tc);
  return s;
}
