/*
 * check_base.c: the leaf utilities of base/.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/assert.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/intern.h"
#include "base/map.h"
#include "base/ratelog.h"
#include "base/log.h"

START_TEST(buf_grows_and_stops_at_limit) {
  struct xds_buf b;

  xds_buf_init(&b, 10);
  ck_assert_int_eq(xds_buf_puts(&b, "hello"), 0);
  ck_assert_int_eq(xds_buf_printf(&b, "%d", 1234), 0);
  ck_assert_str_eq(b.data, "hello1234");
  ck_assert_int_eq(xds_buf_puts(&b, "xy"), XDS_ETOOBIG);
  ck_assert_str_eq(b.data, "hello1234");
  ck_assert_int_eq(xds_buf_putc(&b, '!'), 0);
  ck_assert_uint_eq(b.len, 10);
  xds_buf_cleanup(&b);
}
END_TEST

START_TEST(arena_aligns_zeroes_and_limits) {
  struct xds_arena a;
  char *big;
  long *p;

  xds_arena_init(&a, 64 * 1024);
  for (int i = 0; i < 1000; i++) {
    p = xds_arena_alloc(&a, sizeof(long) * 3);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % _Alignof(max_align_t), 0);
    ck_assert_int_eq(p[0] | p[1] | p[2], 0);
    p[0] = p[1] = p[2] = -1;
  }
  big = xds_arena_alloc(&a, 10000);
  ck_assert_ptr_nonnull(big);
  ck_assert_str_eq(xds_arena_strdup(&a, "abc"), "abc");
  ck_assert_ptr_null(xds_arena_alloc(&a, 64 * 1024));
  xds_arena_cleanup(&a);
}
END_TEST

START_TEST(alloc_hook_fails_exactly_the_nth) {
  void *a, *b, *c;

  xds_alloc_fail_at(2);
  a = xds_malloc(8);
  b = xds_malloc(8);
  c = xds_malloc(8);
  xds_alloc_fail_at(0);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_null(b);
  ck_assert_ptr_nonnull(c);
  xds_free(a);
  xds_free(c);
}
END_TEST

START_TEST(err_set_formats_and_ignores_null) {
  struct xds_err e;

  ck_assert_int_eq(xds_err_set(NULL, XDS_EINVAL, "x"), XDS_EINVAL);
  ck_assert_int_eq(xds_err_set(&e, XDS_EPARSE, "f.yaml:%d: bad", 3),
                   XDS_EPARSE);
  ck_assert_str_eq(e.msg, "f.yaml:3: bad");
  ck_assert_str_eq(xds_strerror(XDS_ETOOBIG), "limit exceeded");
}
END_TEST

/* Lists of interned names: equal lists share one copy, which holds its
 * own reference to each name; many lists (past the first bucket array)
 * are found again; the last release frees the list and its names. */
START_TEST(intern_lists_share_and_free_on_last_release) {
  enum { N = 200 };
  const char *v[3], *w[3];
  const char *const *l1, *const *l2, *const *l3;
  const char *const *many[N];
  size_t before = xds_intern_count();
  char buf[32];

  v[0] = xds_intern("a");
  v[1] = xds_intern("b");
  v[2] = xds_intern("c");
  memcpy(w, v, sizeof(v));
  l1 = xds_intern_list(v, 3);
  l2 = xds_intern_list(w, 3);
  ck_assert_ptr_nonnull(l1);
  ck_assert_ptr_eq(l1, l2);
  ck_assert_ptr_ne((const void *)l1, (const void *)v);
  ck_assert_str_eq(l1[2], "c");
  l3 = xds_intern_list(v, 2); /* a prefix is another list */
  ck_assert_ptr_ne(l3, l1);
  ck_assert_uint_eq(xds_intern_list_count(), 2);
  /* The lists keep the names alive once the caller lets go. */
  for (int i = 0; i < 3; i++)
    xds_intern_release(v[i]);
  ck_assert_uint_eq(xds_intern_count(), before + 3);
  ck_assert_str_eq(l1[0], "a");
  for (int i = 0; i < N; i++) {
    const char *one;
    snprintf(buf, sizeof(buf), "name-%d", i);
    one = xds_intern(buf);
    many[i] = xds_intern_list(&one, 1);
    ck_assert_ptr_nonnull(many[i]);
    xds_intern_release(one);
  }
  for (int i = 0; i < N; i++) {
    const char *one;
    snprintf(buf, sizeof(buf), "name-%d", i);
    one = xds_intern(buf);
    ck_assert_ptr_eq(xds_intern_list(&one, 1), many[i]);
    xds_intern_list_release(many[i]);
    xds_intern_release(one);
  }
  ck_assert_uint_eq(xds_intern_list_count(), 2 + N);
  for (int i = 0; i < N; i++)
    xds_intern_list_release(many[i]);
  xds_intern_list_release(l1);
  ck_assert_uint_eq(xds_intern_count(), before + 3); /* l2 holds them */
  xds_intern_list_release(l2);
  xds_intern_list_release(l3);
  xds_intern_list_release(NULL);
  ck_assert_uint_eq(xds_intern_list_count(), 0);
  ck_assert_uint_eq(xds_intern_count(), before);
  /* Out of memory: NULL, nothing held. */
  v[0] = xds_intern("x");
  xds_alloc_fail_at(1);
  l1 = xds_intern_list(v, 1);
  xds_alloc_fail_at(0);
  ck_assert_ptr_null(l1);
  ck_assert_uint_eq(xds_intern_list_count(), 0);
  xds_intern_release(v[0]);
  ck_assert_uint_eq(xds_intern_count(), before);
}
END_TEST

START_TEST(intern_shares_and_frees_on_last_release) {
  char a[] = "organizations/acme/extensions/x", b[sizeof(a)];
  size_t before = xds_intern_count();
  const char *p, *q, *r;

  memcpy(b, a, sizeof(a));
  p = xds_intern(a);
  q = xds_intern(b);
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_eq(p, q); /* one copy for equal text */
  ck_assert_ptr_ne(p, a);
  ck_assert_str_eq(p, a);
  r = xds_intern("another");
  ck_assert_ptr_ne(r, p);
  ck_assert_uint_eq(xds_intern_count(), before + 2);
  xds_intern_release(p);
  ck_assert_uint_eq(xds_intern_count(), before + 2); /* q still holds it */
  xds_intern_release(q);
  xds_intern_release(r);
  xds_intern_release(NULL);
  ck_assert_uint_eq(xds_intern_count(), before);
  /* Out of memory: NULL, and nothing held. */
  xds_alloc_fail_at(1);
  p = xds_intern("fresh text");
  xds_alloc_fail_at(0);
  ck_assert_ptr_null(p);
  ck_assert_uint_eq(xds_intern_count(), before);
}
END_TEST

struct keyed {
  char key[16];
};

START_TEST(map_borrowed_keys_are_the_callers) {
  struct xds_map *m = xds_map_new_borrowed();
  struct keyed *x = xds_calloc(1, sizeof(*x)), *y = xds_calloc(1, sizeof(*y));
  const char *key;
  void *val, *old;
  size_t pos = 0;

  ck_assert_ptr_nonnull(m);
  snprintf(x->key, sizeof(x->key), "k");
  snprintf(y->key, sizeof(y->key), "k");
  ck_assert_int_eq(xds_map_put(m, x->key, x, NULL), 0);
  ck_assert_int_eq(xds_map_next(m, &pos, &key, &val), 1);
  ck_assert_ptr_eq(key, x->key); /* the very pointer, not a copy */
  /* Replacing stores the new value's key, so the old value may go. */
  ck_assert_int_eq(xds_map_put(m, y->key, y, &old), 0);
  ck_assert_ptr_eq(old, x);
  xds_free(x);
  pos = 0;
  ck_assert_int_eq(xds_map_next(m, &pos, &key, &val), 1);
  ck_assert_ptr_eq(key, y->key);
  ck_assert_ptr_eq(xds_map_get(m, "k"), y);
  ck_assert_ptr_eq(xds_map_del(m, "k"), y);
  ck_assert_uint_eq(xds_map_count(m), 0);
  ck_assert_int_eq(xds_map_put(m, y->key, y, NULL), 0);
  xds_map_free(m, xds_free); /* frees y, not its key separately */
}
END_TEST

static int assert_evaluations;

static int counted_false(void) {
  assert_evaluations++;
  return 0;
}

#ifdef XDS_DEBUG
/* --enable-debug: a false assertion aborts (the test expects SIGABRT). */
START_TEST(assert_aborts_in_debug_builds) {
  XDS_ASSERT(counted_false());
}
END_TEST
#else
/* Otherwise the expression is not even evaluated. */
START_TEST(assert_compiles_out_otherwise) {
  XDS_ASSERT(counted_false());
  ck_assert_int_eq(assert_evaluations, 0);
  /* A call does count, so the 0 above means the assertion did not run.
   * (This call also keeps clang from calling counted_false unneeded.) */
  ck_assert_int_eq(counted_false(), 0);
  ck_assert_int_eq(assert_evaluations, 1);
}
END_TEST
#endif

/* What a peer sends cannot forge a line or reach a terminal raw. */
START_TEST(log_escape_keeps_lines_whole) {
  char buf[64];

  ck_assert_str_eq(xds_log_escape("plain-id_1.2", buf, sizeof(buf)),
                   "plain-id_1.2");
  ck_assert_str_eq(
      xds_log_escape("a\n2026 info fake\r\t\"q\"\\", buf, sizeof(buf)),
      "a\\n2026 info fake\\r\\t\\\"q\\\"\\\\");
  ck_assert_str_eq(xds_log_escape("\x1b[31mred\x7f", buf, sizeof(buf)),
                   "\\x1b[31mred\\x7f");
  /* Valid UTF-8 stays; invalid bytes, C1 controls and U+2028 do not. */
  ck_assert_str_eq(xds_log_escape("caf\xc3\xa9", buf, sizeof(buf)),
                   "caf\xc3\xa9");
  ck_assert_str_eq(xds_log_escape("a\xff\xc3(", buf, sizeof(buf)),
                   "a\\xff\\xc3(");
  ck_assert_str_eq(xds_log_escape("\xc2\x85|\xe2\x80\xa8", buf, sizeof(buf)),
                   "\\xc2\\x85|\\xe2\\x80\\xa8");
  ck_assert_str_eq(xds_log_escape("\xe0\x80\xaf", buf, sizeof(buf)),
                   "\\xe0\\x80\\xaf"); /* overlong "/" */
  ck_assert_str_eq(xds_log_escape(NULL, buf, sizeof(buf)), "(null)");
  /* Bounded: a long input ends in "..." within the buffer. */
  {
    char big[200], small[16];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    xds_log_escape(big, small, sizeof(small));
    ck_assert_uint_lt(strlen(small), sizeof(small));
    ck_assert_str_eq(small + strlen(small) - 3, "...");
  }
}
END_TEST

static const char *const kinds[] = {"NACKs", "refused names"};

/* 5 lines per window per key and kind; the rest counted; the window
 * survives as long as the key is in the table. */
START_TEST(ratelog_limits_per_key_and_kind) {
  struct xds_ratelog *r = xds_ratelog_new(2, 5, 10000, "node", kinds, 2);
  struct xds_ratelog_counts c;
  int logged = 0;

  ck_assert_ptr_nonnull(r);
  for (int i = 0; i < 20000; i++)
    logged += xds_ratelog_event(r, "p1", 0, 1000 + i / 10);
  ck_assert_int_eq(logged, 5);
  /* Another kind and another key have their own budget. */
  ck_assert_int_eq(xds_ratelog_event(r, "p1", 1, 3000), 1);
  ck_assert_int_eq(xds_ratelog_event(r, "p2", 0, 3000), 1);
  ck_assert_int_eq(xds_ratelog_counts(r, "p1", 0, &c), 0);
  ck_assert_uint_eq(c.events, 20000);
  ck_assert_uint_eq(c.suppressed, 19995);
  /* A new window: logging again (after the summary). */
  ck_assert_int_eq(xds_ratelog_event(r, "p1", 0, 11000), 1);
  ck_assert_int_eq(xds_ratelog_counts(r, "p1", 0, &c), 0);
  ck_assert_uint_eq(c.events, 20001);
  /* A third key evicts the least recently seen (p2: seen at 3000). */
  ck_assert_int_eq(xds_ratelog_event(r, "p3", 0, 12000), 1);
  ck_assert_int_eq(xds_ratelog_counts(r, "p2", 0, &c), XDS_ENOTFOUND);
  ck_assert_int_eq(xds_ratelog_counts(r, "p1", 0, &c), 0);
  xds_ratelog_flush(r, 30000);
  xds_ratelog_free(r);
}
END_TEST

Suite *base_suite(void) {
  Suite *s = suite_create("base");
  TCase *tc = tcase_create("base");

  tcase_add_test(tc, buf_grows_and_stops_at_limit);
  tcase_add_test(tc, arena_aligns_zeroes_and_limits);
  tcase_add_test(tc, alloc_hook_fails_exactly_the_nth);
  tcase_add_test(tc, err_set_formats_and_ignores_null);
  tcase_add_test(tc, intern_shares_and_frees_on_last_release);
  tcase_add_test(tc, intern_lists_share_and_free_on_last_release);
  tcase_add_test(tc, map_borrowed_keys_are_the_callers);
  tcase_add_test(tc, log_escape_keeps_lines_whole);
  tcase_add_test(tc, ratelog_limits_per_key_and_kind);
#ifdef XDS_DEBUG
  tcase_add_test_raise_signal(tc, assert_aborts_in_debug_builds, SIGABRT);
#else
  tcase_add_test(tc, assert_compiles_out_otherwise);
#endif
  suite_add_tcase(s, tc);
  return s;
}
