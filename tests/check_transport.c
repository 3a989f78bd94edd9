/*
 * check_transport.c: the serving loops' answers to status queries
 * (server/transport/xds_server.h) in-process, on loopback: a running
 * server with several loops answers, and once xds_server_run has returned
 * a query fails at once with XDS_ETOOBIG rather than an empty page (the
 * status writer would otherwise take a stopped server for one without
 * proxies).
 */
#include <check.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "server/transport/xds_server.h"

static void *run_server(void *arg) {
  xds_server_run(arg);
  return NULL;
}

static double mono_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(status_query_after_run_fails_at_once) {
  struct xds_server_config cfg;
  struct xds_server *s = NULL;
  struct xds_status_query q;
  struct xds_status_page page;
  struct xds_err err;
  pthread_t t;
  double t0;

  memset(&cfg, 0, sizeof(cfg));
  cfg.listen = "127.0.0.1:0";
  cfg.threads = 3;
  cfg.drain_ms = 100;
  memset(&err, 0, sizeof(err));
  ck_assert_int_eq(xds_server_new(&cfg, &s, &err), 0);
  ck_assert_int_eq(pthread_create(&t, NULL, run_server, s), 0);
  memset(&q, 0, sizeof(q));
  /* Running: every loop answers, with no proxies. */
  ck_assert_int_eq(xds_server_status_query(s, &q, 5000, &page), 0);
  ck_assert_uint_eq(page.count, 0);
  xds_free(page.json);
  xds_server_stop(s);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  /* Returned: no loop will answer. */
  t0 = mono_s();
  ck_assert_int_eq(xds_server_status_query(s, &q, 5000, &page), XDS_ETOOBIG);
  ck_assert_ptr_null(page.json);
  ck_assert(mono_s() - t0 < 1.0);
  xds_server_free(s);
}
END_TEST

Suite *transport_suite(void) {
  Suite *s = suite_create("transport");
  TCase *tc = tcase_create("status");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, status_query_after_run_fails_at_once);
  suite_add_tcase(s, tc);
  return s;
}
