/*
 * check_store_ydoc.c: YAML text -> ynode trees (store/ydoc.h): locations,
 * styles and tags, core-schema typing, multi-document streams, anchors,
 * merge keys, the limits, and syntax errors.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/ydoc.h"

static struct ydoc *parse_ok(const char *text) {
  struct ydoc *d = NULL;
  struct xds_err err;
  int rc = ydoc_parse("t.yaml", text, strlen(text), &d, &err);

  if (rc != 0)
    fprintf(stderr, "parse: %s\n", err.msg);
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_nonnull(d);
  return d;
}

START_TEST(locations_styles_and_types) {
  struct ydoc *d = parse_ok("# comment\n"
                            "a: 123\n"
                            "b: \"123\"\n"
                            "c: '12'\n"
                            "d: |\n  text\n"
                            "e: [x, {f: ~}]\n"
                            "g: !!str 7\n"
                            "h: true\n"
                            "i: 1.5e3\n"
                            "j: !local x\n");
  const struct ynode *r = ydoc_root(d, 0), *v;
  int64_t i64;
  double dbl;
  int b;

  ck_assert_uint_eq(ydoc_count(d), 1);
  ck_assert_int_eq(ynode_kind(r), YNODE_MAPPING);
  ck_assert_int_eq(ynode_style(r), YNODE_BLOCK);
  ck_assert_uint_eq(ynode_len(r), 9);
  ck_assert_str_eq(ynode_text(ynode_map_key(r, 0), NULL), "a");
  ck_assert_int_eq(ynode_line(ynode_map_key(r, 0)), 2);
  ck_assert_int_eq(ynode_column(ynode_map_key(r, 0)), 1);
  v = ynode_map_get(r, "a");
  ck_assert_int_eq(ynode_scalar_type(v), YSCALAR_INT);
  ck_assert_int_eq(ynode_line(v), 2);
  ck_assert_int_eq(ynode_column(v), 4);
  ck_assert_int_eq(ynode_int64(v, &i64), 0);
  ck_assert_int_eq(i64, 123);
  v = ynode_map_get(r, "b");
  ck_assert_int_eq(ynode_scalar_type(v), YSCALAR_STR);
  ck_assert_int_eq(ynode_style(v), YNODE_DOUBLE_QUOTED);
  ck_assert_int_eq(ynode_int64(v, &i64), XDS_EINVAL);
  ck_assert_int_eq(ynode_style(ynode_map_get(r, "c")), YNODE_SINGLE_QUOTED);
  v = ynode_map_get(r, "d");
  ck_assert_int_eq(ynode_style(v), YNODE_LITERAL);
  ck_assert_str_eq(ynode_text(v, NULL), "text\n");
  v = ynode_map_get(r, "e");
  ck_assert_int_eq(ynode_kind(v), YNODE_SEQUENCE);
  ck_assert_int_eq(ynode_style(v), YNODE_FLOW);
  ck_assert_uint_eq(ynode_len(v), 2);
  ck_assert_int_eq(ynode_kind(ynode_map_get(ynode_seq_item(v, 1), "f")),
                   YNODE_NULL);
  ck_assert_int_eq(ynode_column(ynode_seq_item(v, 1)), 8);
  v = ynode_map_get(r, "g");
  ck_assert_int_eq(ynode_scalar_type(v), YSCALAR_STR);
  ck_assert_str_eq(ynode_tag(v), "tag:yaml.org,2002:str");
  ck_assert_int_eq(ynode_bool(ynode_map_get(r, "h"), &b), 0);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(ynode_double(ynode_map_get(r, "i"), &dbl), 0);
  ck_assert(dbl == 1500.0);
  ck_assert_int_eq(ynode_scalar_type(ynode_map_get(r, "j")), YSCALAR_INVALID);
  ck_assert_ptr_null(ynode_map_get(r, "zz"));
  ck_assert_str_eq(ynode_source(r), "t.yaml");
  ydoc_free(d);
}
END_TEST

START_TEST(core_schema_plain_scalars) {
  static const struct {
    const char *text;
    enum yscalar_type type;
  } cases[] = {
      {"~", YSCALAR_NULL},      {"null", YSCALAR_NULL},
      {"NULL", YSCALAR_NULL},   {"nUll", YSCALAR_STR},
      {"True", YSCALAR_BOOL},   {"yes", YSCALAR_STR},
      {"off", YSCALAR_STR},     {"0", YSCALAR_INT},
      {"-12", YSCALAR_INT},     {"+3", YSCALAR_INT},
      {"0o17", YSCALAR_INT},    {"0x1f", YSCALAR_INT},
      {"0x", YSCALAR_STR},      {"1_000", YSCALAR_STR},
      {"1.", YSCALAR_FLOAT},    {".5", YSCALAR_FLOAT},
      {"-1e-3", YSCALAR_FLOAT}, {"1e", YSCALAR_STR},
      {".inf", YSCALAR_FLOAT},  {"-.Inf", YSCALAR_FLOAT},
      {".NaN", YSCALAR_FLOAT},  {".", YSCALAR_STR},
      {"1.2.3", YSCALAR_STR},   {"v1", YSCALAR_STR},
  };

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char text[64];
    struct ydoc *d;

    snprintf(text, sizeof(text), "k: %s\n", cases[i].text);
    d = parse_ok(text);
    if (ynode_scalar_type(ynode_map_get(ydoc_root(d, 0), "k")) != cases[i].type)
      ck_abort_msg("%s: got type %d, want %d", cases[i].text,
                   ynode_scalar_type(ynode_map_get(ydoc_root(d, 0), "k")),
                   cases[i].type);
    ydoc_free(d);
  }
}
END_TEST

START_TEST(big_integers_are_too_big) {
  struct ydoc *d = parse_ok("a: 9223372036854775807\nb: 9223372036854775808\n"
                            "c: 0xffffffffffffffff\n");
  const struct ynode *r = ydoc_root(d, 0);
  int64_t v;

  ck_assert_int_eq(ynode_int64(ynode_map_get(r, "a"), &v), 0);
  ck_assert(v == INT64_MAX);
  ck_assert_int_eq(ynode_int64(ynode_map_get(r, "b"), &v), XDS_ETOOBIG);
  ck_assert_int_eq(ynode_int64(ynode_map_get(r, "c"), &v), XDS_ETOOBIG);
  ydoc_free(d);
}
END_TEST

START_TEST(multi_document_and_empty_documents) {
  struct ydoc *d = parse_ok("a: 1\n---\n---\n# only a comment\n---\n[1, 2]\n"
                            "...\n");

  ck_assert_uint_eq(ydoc_count(d), 4);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 0)), YNODE_MAPPING);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 1)), YNODE_NULL);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 2)), YNODE_NULL);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 3)), YNODE_SEQUENCE);
  ck_assert_int_eq(ynode_line(ydoc_root(d, 3)), 6);
  ydoc_free(d);
  d = parse_ok("");
  ck_assert_uint_eq(ydoc_count(d), 0);
  ydoc_free(d);
}
END_TEST

START_TEST(json_document) {
  struct ydoc *d = parse_ok("{\n\t\"a\": [1, 2.5, \"x\", true, null],\n"
                            "\t\"b\": {\"c\": \"\\u00e9\"}\n}\n");
  const struct ynode *r = ydoc_root(d, 0), *a;

  a = ynode_map_get(r, "a");
  ck_assert_uint_eq(ynode_len(a), 5);
  ck_assert_int_eq(ynode_scalar_type(ynode_seq_item(a, 0)), YSCALAR_INT);
  ck_assert_int_eq(ynode_scalar_type(ynode_seq_item(a, 2)), YSCALAR_STR);
  ck_assert_int_eq(ynode_kind(ynode_seq_item(a, 4)), YNODE_NULL);
  ck_assert_str_eq(ynode_text(ynode_map_get(ynode_map_get(r, "b"), "c"), NULL),
                   "\xc3\xa9");
  ydoc_free(d);
}
END_TEST

START_TEST(anchors_aliases_and_merges) {
  struct ydoc *d = parse_ok("base: &b {x: 1, y: 2}\n"
                            "list: &l [a, b]\n"
                            "copy: *b\n"
                            "lists: [*l, *l]\n"
                            "merged:\n"
                            "  <<: *b\n"
                            "  y: 3\n"
                            "  z: 4\n"
                            "multi:\n"
                            "  <<: [{p: 1}, {p: 2, q: 2}]\n");
  const struct ynode *r = ydoc_root(d, 0), *m;
  struct ynode *clone;
  int64_t v;

  m = ynode_map_get(r, "copy");
  ck_assert_uint_eq(ynode_len(m), 2);
  ck_assert_int_eq(ynode_line(m), 1); /* the anchor's location */
  ck_assert_uint_eq(ynode_len(ynode_map_get(r, "lists")), 2);
  m = ynode_map_get(r, "merged");
  ck_assert_uint_eq(ynode_len(m), 3);
  ck_assert_str_eq(ynode_text(ynode_map_key(m, 0), NULL), "x");
  ck_assert_int_eq(ynode_int64(ynode_map_get(m, "y"), &v), 0);
  ck_assert_int_eq(v, 3); /* the explicit key wins */
  m = ynode_map_get(r, "multi");
  ck_assert_uint_eq(ynode_len(m), 2);
  ck_assert_int_eq(ynode_int64(ynode_map_get(m, "p"), &v), 0);
  ck_assert_int_eq(v, 1); /* the earlier mapping wins */
  clone = ynode_clone(r);
  ydoc_free(d); /* the clone outlives its document */
  ck_assert_uint_eq(ynode_len(clone), 6);
  ck_assert_str_eq(ynode_source(clone), "t.yaml");
  ynode_free(clone);
}
END_TEST

START_TEST(nested_collections_keep_their_children) {
  /* Children of open collections share one stack in the composer: a
   * mapping of 300 entries whose values are collections themselves must
   * get exactly its own keys and values, in order. */
  struct xds_buf b;
  struct ydoc *d;
  const struct ynode *outer, *tail, *v;

  xds_buf_init(&b, 1 << 20);
  ck_assert_int_eq(xds_buf_puts(&b, "outer:\n"), 0);
  for (int i = 0; i < 300; i++)
    ck_assert_int_eq(i % 2 ? xds_buf_printf(&b,
                                            "  k%03d: {a: %d, b: [x, y, "
                                            "{c: [%d]}]}\n",
                                            i, i, i)
                           : xds_buf_printf(&b, "  k%03d: [%d, %d, %d]\n", i, i,
                                            i + 1, i + 2),
                     0);
  ck_assert_int_eq(xds_buf_puts(&b, "tail: [t1, t2]\n"), 0);
  d = parse_ok(b.data);
  xds_buf_cleanup(&b);
  ck_assert_uint_eq(ynode_len(ydoc_root(d, 0)), 2);
  outer = ynode_map_get(ydoc_root(d, 0), "outer");
  ck_assert_uint_eq(ynode_len(outer), 300);
  for (size_t i = 0; i < 300; i++) {
    char key[8];
    int64_t x;

    snprintf(key, sizeof(key), "k%03zu", i);
    ck_assert_str_eq(ynode_text(ynode_map_key(outer, i), NULL), key);
    v = ynode_map_value(outer, i);
    if (i % 2 == 0) {
      ck_assert_uint_eq(ynode_len(v), 3);
      ck_assert_int_eq(ynode_int64(ynode_seq_item(v, 2), &x), 0);
      ck_assert_int_eq(x, (int64_t)i + 2);
    } else {
      ck_assert_uint_eq(ynode_len(v), 2);
      ck_assert_uint_eq(ynode_len(ynode_map_get(v, "b")), 3);
      v = ynode_map_get(ynode_seq_item(ynode_map_get(v, "b"), 2), "c");
      ck_assert_uint_eq(ynode_len(v), 1);
      ck_assert_int_eq(ynode_int64(ynode_seq_item(v, 0), &x), 0);
      ck_assert_int_eq(x, (int64_t)i);
    }
  }
  tail = ynode_map_get(ydoc_root(d, 0), "tail");
  ck_assert_uint_eq(ynode_len(tail), 2);
  ck_assert_str_eq(ynode_text(ynode_seq_item(tail, 1), NULL), "t2");
  ydoc_free(d);
  /* Empty collections, also before any child was ever pushed. */
  d = parse_ok("{}\n---\n[]\n---\na: {}\nb: [[], {c: []}]\n");
  ck_assert_uint_eq(ydoc_count(d), 3);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 0)), YNODE_MAPPING);
  ck_assert_uint_eq(ynode_len(ydoc_root(d, 0)), 0);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 1)), YNODE_SEQUENCE);
  ck_assert_uint_eq(ynode_len(ydoc_root(d, 1)), 0);
  ck_assert_uint_eq(ynode_len(ynode_map_get(ydoc_root(d, 2), "a")), 0);
  tail = ynode_map_get(ydoc_root(d, 2), "b");
  ck_assert_uint_eq(ynode_len(tail), 2);
  ck_assert_uint_eq(ynode_len(ynode_seq_item(tail, 0)), 0);
  ck_assert_uint_eq(ynode_len(ynode_map_get(ynode_seq_item(tail, 1), "c")), 0);
  ydoc_free(d);
}
END_TEST

START_TEST(take_root_outlives_document) {
  struct ydoc *d = parse_ok("a: [1]\n");
  struct ynode *root = ydoc_take_root(d, 0);

  ck_assert_ptr_nonnull(root);
  ck_assert_int_eq(ynode_kind(ydoc_root(d, 0)), YNODE_NULL);
  ydoc_free(d);
  ck_assert_uint_eq(ynode_len(ynode_map_get(root, "a")), 1);
  ynode_free(root);
  ynode_free(NULL);
}
END_TEST

START_TEST(alias_bomb_is_stopped) {
  const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
  struct ydoc *d = NULL;
  struct xds_err err;
  const char *msg;
  int line;

  ck_assert_int_eq(ydoc_parse("bomb.yaml", bomb, strlen(bomb), &d, &err),
                   XDS_ETOOBIG);
  ck_assert_ptr_nonnull(d);
  ck_assert_int_eq(ydoc_error(d, &line, NULL, &msg), XDS_ETOOBIG);
  ck_assert_int_eq(line, 5); /* e: 10^5 nodes */
  ck_assert_ptr_nonnull(strstr(msg, "alias bomb"));
  ck_assert_ptr_nonnull(strstr(err.msg, "bomb.yaml:5:"));
  ydoc_free(d);
}
END_TEST

START_TEST(unknown_and_recursive_aliases) {
  const char *texts[] = {"a: *nope\n", "a: &x [1, *x]\n"};

  for (int i = 0; i < 2; i++) {
    struct ydoc *d = NULL;
    const char *msg;

    ck_assert_int_eq(ydoc_parse("t.yaml", texts[i], strlen(texts[i]), &d, NULL),
                     XDS_EPARSE);
    ck_assert_int_eq(ydoc_error(d, NULL, NULL, &msg), XDS_EPARSE);
    ck_assert_ptr_nonnull(strstr(msg, "unknown alias"));
    ydoc_free(d);
  }
}
END_TEST

START_TEST(depth_limit) {
  char text[1024];
  size_t n = 0;
  struct ydoc *d = NULL;

  for (int i = 0; i < YDOC_MAX_DEPTH + 5; i++)
    text[n++] = '[';
  for (int i = 0; i < YDOC_MAX_DEPTH + 5; i++)
    text[n++] = ']';
  ck_assert_int_eq(ydoc_parse("t.yaml", text, n, &d, NULL), XDS_ETOOBIG);
  ydoc_free(d);
}
END_TEST

START_TEST(syntax_error_keeps_complete_documents) {
  const char *text = "a: 1\n---\nb: 2\n---\nc: [1, 2\nd: 4\n";
  struct ydoc *d = NULL;
  struct xds_err err;
  int line, column;

  ck_assert_int_eq(ydoc_parse("t.yaml", text, strlen(text), &d, &err),
                   XDS_EPARSE);
  ck_assert_uint_eq(ydoc_count(d), 2);
  ck_assert_int_eq(ydoc_error(d, &line, &column, NULL), XDS_EPARSE);
  ck_assert_int_eq(line, 6);
  ck_assert_ptr_nonnull(strstr(err.msg, "t.yaml:6:"));
  ydoc_free(d);
}
END_TEST

START_TEST(duplicate_and_complex_keys_are_issues) {
  struct ydoc *d = parse_ok("a: 1\nb: 2\na: 3\n? [x]\n: 4\n");
  const struct ydoc_issue *is;

  ck_assert_uint_eq(ydoc_issue_count(d, 0), 2);
  is = ydoc_issue(d, 0, 0);
  ck_assert_int_eq(is->line, 4);
  ck_assert_str_eq(is->msg, "a mapping key must be a scalar, not a sequence");
  is = ydoc_issue(d, 0, 1);
  ck_assert_int_eq(is->line, 3);
  ck_assert_int_eq(is->column, 1);
  ck_assert_str_eq(is->msg, "duplicate key \"a\" (first at line 1, column 1)");
  ydoc_free(d);
}
END_TEST

/* Small mappings are checked pair by pair, large ones (over 16 keys)
 * through a sort: both report each repeated key once per repeat, naming
 * the nearest earlier occurrence. */
START_TEST(duplicates_in_small_and_large_mappings) {
  char yaml[1024];
  size_t off = 0;

  for (int big = 0; big < 2; big++) {
    struct ydoc *d;
    int seen[3] = {0, 0, 0};

    off = (size_t)snprintf(yaml, sizeof(yaml), "a: 1\nb: 2\na: 3\na: 4\n");
    for (int i = 0; big && i < 20; i++)
      off +=
          (size_t)snprintf(yaml + off, sizeof(yaml) - off, "k%d: %d\n", i, i);
    snprintf(yaml + off, sizeof(yaml) - off, "b: 5\n");
    d = parse_ok(yaml);
    ck_assert_uint_eq(ydoc_issue_count(d, 0), 3);
    for (size_t k = 0; k < 3; k++) {
      const struct ydoc_issue *is = ydoc_issue(d, 0, k);

      if (is->line == 3) {
        ck_assert_str_eq(is->msg,
                         "duplicate key \"a\" (first at line 1, column 1)");
        seen[0]++;
      } else if (is->line == 4) {
        ck_assert_str_eq(is->msg,
                         "duplicate key \"a\" (first at line 3, column 1)");
        seen[1]++;
      } else {
        ck_assert_int_eq(is->line, big ? 25 : 5);
        ck_assert_str_eq(is->msg,
                         "duplicate key \"b\" (first at line 2, column 1)");
        seen[2]++;
      }
    }
    ck_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    ydoc_free(d);
  }
}
END_TEST

START_TEST(size_limit) {
  size_t n = YDOC_MAX_FILE_BYTES + 1;
  char *big = xds_malloc(n), path[] = "/tmp/check_ydoc.XXXXXX";
  struct ydoc *d = NULL;
  struct xds_err err;
  FILE *f;
  int fd;

  memset(big, '#', n);
  ck_assert_int_eq(ydoc_parse("big.yaml", big, n, &d, &err), XDS_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(err.msg, "big.yaml:1:1: larger than"));
  ydoc_free(d);
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  f = fdopen(fd, "w");
  fwrite(big, 1, n, f);
  fclose(f);
  d = NULL;
  ck_assert_int_eq(ydoc_load_file(path, &d, &err), XDS_ETOOBIG);
  ck_assert_ptr_null(d);
  ck_assert_ptr_nonnull(strstr(err.msg, "larger than the limit"));
  ck_assert_int_eq(ydoc_load_file("/nonexistent/x.yaml", &d, &err), XDS_EIO);
  remove(path);
  xds_free(big);
}
END_TEST

START_TEST(allocation_failures_are_clean) {
  const char *text = "a: &a {x: [1, 2], y: \"s\"}\nb:\n  <<: *a\n  z: 1\n"
                     "---\nc: [*nope]\n";
  long n;

  /* Fail each allocation in turn: every run must return cleanly. */
  for (n = 1; n < 400; n++) {
    struct ydoc *d = NULL;
    int rc;

    xds_alloc_fail_at(n);
    rc = ydoc_parse("t.yaml", text, strlen(text), &d, NULL);
    xds_alloc_fail_at(0);
    ck_assert(rc == XDS_ENOMEM || rc == XDS_EPARSE);
    if (rc == XDS_ENOMEM)
      ck_assert_ptr_null(d);
    ydoc_free(d);
  }
}
END_TEST

Suite *ydoc_suite(void) {
  Suite *s = suite_create("ydoc");
  TCase *tc = tcase_create("ydoc");

  tcase_add_test(tc, locations_styles_and_types);
  tcase_add_test(tc, duplicates_in_small_and_large_mappings);
  tcase_add_test(tc, core_schema_plain_scalars);
  tcase_add_test(tc, big_integers_are_too_big);
  tcase_add_test(tc, multi_document_and_empty_documents);
  tcase_add_test(tc, json_document);
  tcase_add_test(tc, anchors_aliases_and_merges);
  tcase_add_test(tc, take_root_outlives_document);
  tcase_add_test(tc, nested_collections_keep_their_children);
  tcase_add_test(tc, alias_bomb_is_stopped);
  tcase_add_test(tc, unknown_and_recursive_aliases);
  tcase_add_test(tc, depth_limit);
  tcase_add_test(tc, syntax_error_keeps_complete_documents);
  tcase_add_test(tc, duplicate_and_complex_keys_are_issues);
  tcase_add_test(tc, size_limit);
  tcase_add_test(tc, allocation_failures_are_clean);
  suite_add_tcase(s, tc);
  return s;
}
