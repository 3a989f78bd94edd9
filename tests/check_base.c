/*
 * check_base.c: the leaf utilities of server/base.
 */
#include <check.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

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

Suite *base_suite(void) {
  Suite *s = suite_create("base");
  TCase *tc = tcase_create("base");

  tcase_add_test(tc, buf_grows_and_stops_at_limit);
  tcase_add_test(tc, arena_aligns_zeroes_and_limits);
  tcase_add_test(tc, alloc_hook_fails_exactly_the_nth);
  tcase_add_test(tc, err_set_formats_and_ignores_null);
  suite_add_tcase(s, tc);
  return s;
}
