/*
 * check_etcd.c: the etcd store without etcd: the etcd:// URL and flags,
 * base64 and prefix ranges, the watch-stream splitter fed in every chunk
 * size, operators' references, and the key table's decoding and last-good
 * retention (store/etcd_store.h). The live tests are in check_etcd_live.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/catalog.h"
#include "store/etcd_config.h"
#include "store/etcd_proto.h"
#include "store/etcd_store.h"
#include "store/problems.h"

#define EXT_DOC(org, name, prio)                                               \
  "apiVersion: extension.tsb.tetrate.io/v2\n"                                  \
  "kind: WasmExtension\n"                                                      \
  "metadata: {organization: " org ", name: " name "}\n"                        \
  "spec:\n"                                                                    \
  "  url: file:///wasm/" name ".wasm\n"                                        \
  "  priority: " prio "\n"

#define TMPL_DOC(name, port)                                                   \
  "apiVersion: wasmxds.io/v1\n"                                                \
  "kind: ListenerTemplate\n"                                                   \
  "metadata: {name: " name "}\n"                                               \
  "spec:\n"                                                                    \
  "  port: " port "\n"                                                         \
  "  direction: INBOUND\n"                                                     \
  "  route: {cluster: app}\n"                                                  \
  "  httpFilters:\n"                                                           \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig:\n"                                                         \
  "      \"@type\": type.googleapis.com/"                                      \
  "envoy.extensions.filters.http.router.v3.Router\n"

/* ---- config ---- */

START_TEST(url_forms) {
  struct etcd_config c;
  struct xds_err err = {0, ""};
  char *d;

  etcd_config_init(&c);
  ck_assert_int_eq(
      etcd_config_parse_url("etcd://a:1,b,[::1]:2380/x/y//", &c, &err), 0);
  ck_assert_uint_eq(c.n_endpoints, 3);
  ck_assert_str_eq(c.endpoints[0], "a:1");
  ck_assert_str_eq(c.endpoints[1], "b:2379");
  ck_assert_str_eq(c.endpoints[2], "[::1]:2380");
  ck_assert_str_eq(c.prefix, "/x/y");
  ck_assert_int_eq(c.tls, 0);
  ck_assert_int_eq(etcd_config_finish(&c, &err), 0);
  d = etcd_config_describe(&c);
  ck_assert_str_eq(d, "etcd://a:1,b:2379,[::1]:2380/x/y");
  xds_free(d);

  ck_assert_int_eq(etcd_config_parse_url("etcds://h:2379", &c, &err), 0);
  ck_assert_str_eq(c.prefix, ETCD_DEFAULT_PREFIX);
  ck_assert_int_eq(c.tls, 1);
  ck_assert_int_eq(etcd_config_parse_url("etcd://h/", &c, &err), 0);
  ck_assert_str_eq(c.prefix, ETCD_DEFAULT_PREFIX);

  ck_assert_int_eq(etcd_config_parse_url("http://h:1/x", &c, &err), XDS_EINVAL);
  ck_assert_int_eq(etcd_config_parse_url("etcd://u:pw@h:1/x", &c, &err),
                   XDS_EINVAL);
  ck_assert_ptr_null(strstr(err.msg, "pw"));
  ck_assert_int_eq(etcd_config_parse_url("etcd://h:0/x", &c, &err), XDS_EINVAL);
  ck_assert_int_eq(etcd_config_parse_url("etcd://h:99999/x", &c, &err),
                   XDS_EINVAL);
  ck_assert_int_eq(etcd_config_parse_url("etcd://a,,b/x", &c, &err),
                   XDS_EINVAL);
  ck_assert_int_eq(etcd_config_parse_url("etcd:///x", &c, &err), XDS_EINVAL);
  ck_assert_int_eq(etcd_config_parse_url("etcd://[::1/x", &c, &err),
                   XDS_EINVAL);
  ck_assert_int_eq(etcd_config_finish(&c, &err), XDS_EINVAL);
  etcd_config_cleanup(&c);
}
END_TEST

START_TEST(flags) {
  struct etcd_config c;
  struct xds_err err = {0, ""};
  char path[] = "/tmp/check_etcd_pw.XXXXXX";
  int fd = mkstemp(path);

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "s3cret\nignored\n", 15), 15);
  close(fd);
  etcd_config_init(&c);
  ck_assert_int_eq(etcd_config_parse_url("etcd://h:1/p", &c, &err), 0);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-user", "u", &err), 0);
  ck_assert_int_eq(etcd_config_finish(&c, &err), XDS_EINVAL);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-password-file", path, &err),
                   0);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-debounce", "250", &err), 0);
  ck_assert_uint_eq(c.debounce_ms, 250);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-debounce", "-1", &err),
                   XDS_EINVAL);
  ck_assert_int_eq(etcd_config_set_flag(&c, "listen", "x", &err),
                   XDS_ENOTFOUND);
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-cert", "/c.pem", &err), 0);
  ck_assert_int_eq(etcd_config_finish(&c, &err), XDS_EINVAL); /* no key */
  ck_assert_int_eq(etcd_config_set_flag(&c, "etcd-key", "/k.pem", &err), 0);
  ck_assert_int_eq(etcd_config_finish(&c, &err), 0);
  ck_assert_str_eq(c.password, "s3cret");
  ck_assert_int_eq(c.tls, 1);
  unlink(path);
  ck_assert_int_eq(etcd_config_finish(&c, &err), XDS_EIO);
  ck_assert_ptr_nonnull(strstr(err.msg, path));
  etcd_config_cleanup(&c);
}
END_TEST

/* ---- wire ---- */

START_TEST(base64_and_ranges) {
  const char *cases[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char *want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  size_t n;
  char *s, *d;

  for (size_t i = 0; i < 7; i++) {
    s = etcd_b64_encode(cases[i], strlen(cases[i]));
    ck_assert_str_eq(s, want[i]);
    ck_assert_int_eq(etcd_b64_decode(s, &d, &n), 0);
    ck_assert_uint_eq(n, strlen(cases[i]));
    ck_assert_str_eq(d, cases[i]);
    xds_free(s);
    xds_free(d);
  }
  ck_assert_int_eq(etcd_b64_decode("Zm9v!", &d, &n), XDS_EPARSE);
  ck_assert_int_eq(etcd_b64_decode("Z", &d, &n), XDS_EPARSE);
  s = etcd_prefix_end("/w/", 3, &n);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(s, "/w0");
  xds_free(s);
  s = etcd_prefix_end("a\xff", 2, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(s, "b");
  xds_free(s);
}
END_TEST

struct msgs {
  int n;
  char last[256];
  char all[4096];
};

static int on_msg(void *ctx, const char *json, size_t len) {
  struct msgs *m = ctx;

  size_t used = strlen(m->all);

  m->n++;
  snprintf(m->last, sizeof(m->last), "%.*s", (int)len, json);
  snprintf(m->all + used, sizeof(m->all) - used, "%.*s|", (int)len, json);
  return 0;
}

START_TEST(splitter_every_chunk_size) {
  const char *stream =
      "{\"result\":{\"a\":\"}{\\\"\"}}\n"
      "  {\"result\":{\"events\":[{\"kv\":{}},{}]}}\r\n{\"error\":{}}";
  const char *want =
      "{\"result\":{\"a\":\"}{\\\"\"}}|"
      "{\"result\":{\"events\":[{\"kv\":{}},{}]}}|{\"error\":{}}|";
  size_t len = strlen(stream);

  for (size_t chunk = 1; chunk <= len; chunk++) {
    struct etcd_splitter s;
    struct msgs m = {0, "", ""};

    etcd_splitter_init(&s, 1024);
    for (size_t off = 0; off < len; off += chunk) {
      size_t n = len - off < chunk ? len - off : chunk;

      ck_assert_int_eq(etcd_splitter_feed(&s, stream + off, n, on_msg, &m), 0);
    }
    ck_assert_int_eq(m.n, 3);
    ck_assert_str_eq(m.all, want);
    ck_assert_uint_eq(etcd_splitter_pending(&s), 0);
    etcd_splitter_cleanup(&s);
  }
}
END_TEST

START_TEST(splitter_limits) {
  struct etcd_splitter s;
  struct msgs m = {0, "", ""};
  char big[200];

  etcd_splitter_init(&s, 64);
  memset(big, 'x', sizeof(big));
  big[0] = '{';
  big[1] = '"';
  ck_assert_int_eq(etcd_splitter_feed(&s, big, 100, on_msg, &m), XDS_ETOOBIG);
  etcd_splitter_cleanup(&s);
  etcd_splitter_init(&s, 64);
  ck_assert_int_eq(etcd_splitter_feed(&s, "<html>", 6, on_msg, &m), XDS_EPARSE);
  etcd_splitter_cleanup(&s);
}
END_TEST

START_TEST(error_bodies) {
  json_t *u = json_loads("{\"error\":\"etcdserver: invalid auth token\","
                         "\"message\":\"x\",\"code\":16}",
                         0, NULL);
  json_t *w = json_loads("{\"error\":{\"grpc_code\":14,\"message\":\"no "
                         "leader\"}}",
                         0, NULL);
  json_t *ok = json_loads("{\"header\":{\"revision\":\"42\","
                          "\"cluster_id\":\"18446744073709551615\"}}",
                          0, NULL);
  struct etcd_header h;
  const char *msg;
  int code;

  ck_assert_int_eq(etcd_error_of(u, &code, &msg), 1);
  ck_assert_int_eq(code, ETCD_GRPC_UNAUTHENTICATED);
  ck_assert_str_eq(msg, "etcdserver: invalid auth token");
  ck_assert_int_eq(etcd_error_of(w, &code, &msg), 1);
  ck_assert_int_eq(code, ETCD_GRPC_UNAVAILABLE);
  ck_assert_str_eq(msg, "no leader");
  ck_assert_int_eq(etcd_error_of(ok, &code, &msg), 0);
  ck_assert_int_eq(etcd_parse_header(ok, &h), 0);
  ck_assert_int_eq(h.revision, 42);
  ck_assert(h.cluster_id == UINT64_MAX);
  json_decref(u);
  json_decref(w);
  json_decref(ok);
}
END_TEST

START_TEST(references) {
  struct xds_err err = {0, ""};
  char *k;

  ck_assert_int_eq(
      etcd_store_key_of_ref("/p", "WasmExtension/acme/auth", &k, &err), 0);
  ck_assert_str_eq(k, "/p/WasmExtension/acme/auth");
  xds_free(k);
  ck_assert_int_eq(etcd_store_key_of_ref(
                       "/p", "organizations/acme/extensions/auth", &k, &err),
                   0);
  ck_assert_str_eq(k, "/p/WasmExtension/acme/auth");
  xds_free(k);
  ck_assert_int_eq(etcd_store_key_of_ref("/p", "listenertemplate/in", &k, &err),
                   0);
  ck_assert_str_eq(k, "/p/ListenerTemplate/in");
  xds_free(k);
  ck_assert_int_eq(etcd_store_key_of_ref("/p", "ext/acme/../x", &k, &err),
                   XDS_EINVAL);
  ck_assert_int_eq(
      etcd_store_key_of_ref("/p", "ListenerTemplate/a/b", &k, &err),
      XDS_EINVAL);
  ck_assert_int_eq(etcd_store_key_of_ref("/p", "Foo/a", &k, &err), XDS_EINVAL);
}
END_TEST

/* ---- the key table ---- */

static struct catalog *build(struct etcd_store *s, struct problems *pb) {
  struct catalog *c = NULL;

  problems_reset(pb);
  ck_assert_int_eq(etcd_store_build(s, &c, pb), 0);
  return c;
}

/* Whether some problem of pb has this source and contains text. */
static int has_problem(const struct problems *pb, enum problem_severity sev,
                       const char *source, const char *text) {
  for (size_t i = 0; i < problems_count(pb); i++) {
    const struct problem *p = problems_at(pb, i);

    if (p->severity == sev && strcmp(p->source, source) == 0 &&
        strstr(p->msg, text) != NULL)
      return 1;
  }
  return 0;
}

#define PUT(s, k, v) ck_assert_int_eq(etcd_store_put(s, k, v, strlen(v), 1), 0)

START_TEST(store_retention) {
  struct etcd_store *s = etcd_store_new("/w", NULL);
  const char *ka = "/w/WasmExtension/acme/a";
  const char *kt = "/w/ListenerTemplate/in";
  struct problems pb;
  struct catalog *c;

  problems_init(&pb, 100);
  PUT(s, ka, EXT_DOC("acme", "a", "1"));
  PUT(s, kt, TMPL_DOC("in", "8080"));
  PUT(s, "/other/x", "garbage: ["); /* outside the prefix: ignored */
  c = build(s, &pb);
  ck_assert_uint_eq(etcd_store_count(s), 2);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  ck_assert_uint_eq(catalog_tmpl_count(c), 1);
  ck_assert_uint_eq(pb.n_errors + pb.n_warnings, 0);
  ck_assert_str_eq(catalog_ext_at(c, 0)->loc.source, ka);
  catalog_unref(c);

  /* A broken value keeps the last good version, with a located error. */
  PUT(s, ka, EXT_DOC("acme", "a", "1") "  phase: NOPE\n");
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  ck_assert_int_eq(catalog_ext_at(c, 0)->priority, 1);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, ka, "NOPE"));
  ck_assert(has_problem(&pb, PROBLEM_WARNING, ka, "last good"));
  for (size_t i = 0; i < problems_count(&pb); i++)
    if (problems_at(&pb, i)->severity == PROBLEM_ERROR)
      ck_assert_int_eq(problems_at(&pb, i)->line, 7);
  catalog_unref(c);

  /* So does a value that is not YAML, two documents, or nothing. */
  PUT(s, ka, "a: [1,\n");
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, ka, "not valid YAML"));
  catalog_unref(c);
  PUT(s, ka, EXT_DOC("acme", "a", "5") "---\n" EXT_DOC("acme", "b", "1"));
  c = build(s, &pb);
  ck_assert_int_eq(catalog_ext_at(c, 0)->priority, 1);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, ka, "exactly one document"));
  catalog_unref(c);
  PUT(s, ka, "# nothing\n");
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, ka, "no document"));
  catalog_unref(c);

  /* A good value replaces it; a delete removes it. */
  PUT(s, ka, EXT_DOC("acme", "a", "9"));
  c = build(s, &pb);
  ck_assert_int_eq(catalog_ext_at(c, 0)->priority, 9);
  ck_assert_uint_eq(pb.n_errors + pb.n_warnings, 0);
  catalog_unref(c);
  ck_assert_int_eq(etcd_store_delete(s, ka), 1);
  ck_assert_int_eq(etcd_store_delete(s, ka), 0);
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 0);
  ck_assert_uint_eq(catalog_tmpl_count(c), 1);
  catalog_unref(c);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

START_TEST(store_keys_and_duplicates) {
  struct etcd_store *s = etcd_store_new("/w", NULL);
  struct problems pb;
  struct catalog *c;

  problems_init(&pb, 100);
  /* The same resource under two keys: the first key (byte order) wins. */
  PUT(s, "/w/b", EXT_DOC("acme", "a", "2"));
  PUT(s, "/w/WasmExtension/acme/a", EXT_DOC("acme", "a", "1"));
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  ck_assert_int_eq(catalog_ext_at(c, 0)->priority, 1);
  ck_assert(has_problem(&pb, PROBLEM_WARNING, "/w/b", "belongs under"));
  ck_assert_uint_ge(pb.n_errors, 1); /* the duplicate */
  catalog_unref(c);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

START_TEST(store_relist_keeps_decodes) {
  struct etcd_store *s = etcd_store_new("/w", NULL);
  struct problems pb;
  struct catalog *c, *c2;
  char key[64], doc[512];

  problems_init(&pb, 100);
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof(key), "/w/WasmExtension/o/e%02d", i);
    snprintf(doc, sizeof(doc), EXT_DOC("o", "e%02d", "1"), i, i);
    PUT(s, key, doc);
  }
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 50);
  ck_assert_uint_eq(etcd_store_decodes(s), 50);

  /* A listing without e00, with e01 changed and e99 new. */
  etcd_store_relist_begin(s);
  for (int i = 1; i < 50; i++) {
    snprintf(key, sizeof(key), "/w/WasmExtension/o/e%02d", i);
    snprintf(doc, sizeof(doc), EXT_DOC("o", "e%02d", "%d"), i, i,
             i == 1 ? 7 : 1);
    PUT(s, key, doc);
  }
  PUT(s, "/w/WasmExtension/o/e99", EXT_DOC("o", "e99", "1"));
  ck_assert_uint_eq(etcd_store_relist_end(s), 1);
  c2 = build(s, &pb);
  ck_assert_uint_eq(etcd_store_decodes(s), 52); /* e01 and e99 only */
  ck_assert_int_eq(catalog_diff(c, c2, NULL, NULL), 3);
  catalog_unref(c);
  catalog_unref(c2);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

static int reject_port_9(void *ctx, const struct listener_tmpl *t,
                         struct problems *pb) {
  (void)ctx, (void)pb;
  return t->port == 9 ? XDS_EINVAL : 0;
}

START_TEST(store_hook) {
  struct store_hooks h = {reject_port_9, NULL};
  struct etcd_store *s = etcd_store_new("/w", &h);
  const char *kt = "/w/ListenerTemplate/in";
  struct problems pb;
  struct catalog *c;

  problems_init(&pb, 100);
  PUT(s, kt, TMPL_DOC("in", "8"));
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_tmpl_count(c), 1);
  catalog_unref(c);
  PUT(s, kt, TMPL_DOC("in", "9"));
  c = build(s, &pb);
  ck_assert_uint_eq(catalog_tmpl_count(c), 1);
  ck_assert_uint_eq(catalog_tmpl_at(c, 0)->port, 8);
  ck_assert(has_problem(&pb, PROBLEM_ERROR, kt, "rejected"));
  catalog_unref(c);
  problems_cleanup(&pb);
  etcd_store_free(s);
}
END_TEST

Suite *etcd_suite(void) {
  Suite *s = suite_create("etcd");
  TCase *tc = tcase_create("offline");

  tcase_add_test(tc, url_forms);
  tcase_add_test(tc, flags);
  tcase_add_test(tc, base64_and_ranges);
  tcase_add_test(tc, splitter_every_chunk_size);
  tcase_add_test(tc, splitter_limits);
  tcase_add_test(tc, error_bodies);
  tcase_add_test(tc, references);
  tcase_add_test(tc, store_retention);
  tcase_add_test(tc, store_keys_and_duplicates);
  tcase_add_test(tc, store_relist_keeps_decodes);
  tcase_add_test(tc, store_hook);
  suite_add_tcase(s, tc);
  return s;
}
