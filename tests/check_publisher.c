/*
 * check_publisher.c: the publisher (server/compose/publisher.h), offline:
 * posts coalesce into few rebuilds and the last post is always served; a
 * rebuild that changes nothing a proxy receives publishes nothing; a
 * failed build keeps the previous snapshot and says degraded; stop is
 * prompt (and leak-free: the suite runs under ASan/LSan in CI).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "server/compose/publisher.h"
#include "tests/testutil.h"

/* What the sink saw (publisher thread writes, the test reads). */
struct seen {
  pthread_mutex_t mu;
  unsigned long published;
  struct snapshot *last; /* a reference to the last published */
  unsigned long status_calls;
  unsigned long generation;
  char degraded[512]; /* "" when fine */
  int slow_ms;        /* each publish sleeps this long */
};

static struct seen S;
static atomic_int fail_builds;

static void seen_publish(void *ctx, struct snapshot *snap) {
  struct seen *s = ctx;
  struct snapshot *old;

  if (s->slow_ms > 0)
    usleep((useconds_t)s->slow_ms * 1000);
  pthread_mutex_lock(&s->mu);
  old = s->last;
  s->last = snapshot_ref(snap);
  s->published++;
  pthread_mutex_unlock(&s->mu);
  snapshot_unref(old);
}

static void seen_status(void *ctx, unsigned long generation,
                        const char *degraded) {
  struct seen *s = ctx;

  pthread_mutex_lock(&s->mu);
  s->status_calls++;
  s->generation = generation;
  snprintf(s->degraded, sizeof(s->degraded), "%s",
           degraded != NULL ? degraded : "");
  pthread_mutex_unlock(&s->mu);
}

/* An encode_module_fn that fails while fail_builds is set. */
static int test_module_of(void *ctx, const struct wasm_ext *e,
                          struct encode_module *out) {
  (void)ctx;
  if (atomic_load(&fail_builds))
    return XDS_ENOMEM;
  encode_module_default(e, out);
  return 0;
}

/* A catalog of one extension whose priority is prio, and one template. */
static struct catalog *cat_with(int prio) {
  char yaml[1024];

  snprintf(yaml, sizeof(yaml),
           "apiVersion: extension.tsb.tetrate.io/v2\n"
           "kind: WasmExtension\n"
           "metadata: {organization: acme, name: a}\n"
           "spec: {url: 'file:///m.wasm', priority: %d}\n"
           "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
           "metadata: {name: in}\nspec:\n  port: 15006\n"
           "  direction: INBOUND\n  route: {cluster: c}\n  httpFilters:\n"
           "  - name: envoy.filters.http.router\n"
           "    typedConfig: {'@type': "
           "envoy.extensions.filters.http.router.v3.Router}\n",
           prio);
  return tu_catalog(yaml);
}

static struct publisher *start(void) {
  struct publisher_config cfg;
  struct publisher *p = NULL;
  struct xds_err err = {0, ""};

  memset(&S, 0, sizeof(S));
  pthread_mutex_init(&S.mu, NULL);
  atomic_store(&fail_builds, 0);
  memset(&cfg, 0, sizeof(cfg));
  encode_opts_default(&cfg.encode);
  cfg.encode.module_of = test_module_of;
  cfg.sink.publish = seen_publish;
  cfg.sink.status = seen_status;
  cfg.sink.ctx = &S;
  ck_assert_msg(publisher_new(&cfg, &p, &err) == 0, "%s", err.msg);
  return p;
}

static void finish(struct publisher *p) {
  publisher_free(p);
  snapshot_unref(S.last);
  S.last = NULL;
  pthread_mutex_destroy(&S.mu);
}

/* The catalog of the last published snapshot (NULL: none). */
static const struct catalog *served(void) {
  const struct catalog *c;

  pthread_mutex_lock(&S.mu);
  c = S.last != NULL ? snapshot_catalog(S.last) : NULL;
  pthread_mutex_unlock(&S.mu);
  return c;
}

/* N catalogs posted back to back while the sink is slow: at most N
 * rebuilds (fewer: they coalesce), and the last one posted is served. */
START_TEST(posts_coalesce_last_one_wins) {
  enum { N = 40 };
  struct catalog *cats[N];
  struct publisher *p = start();
  struct publisher_stats st;

  for (int i = 0; i < N; i++)
    cats[i] = cat_with(i + 1);
  S.slow_ms = 20;
  for (int i = 0; i < N; i++) {
    catalog_ref(cats[i]);
    publisher_set_catalog(p, cats[i], NULL);
  }
  ck_assert_int_eq(publisher_wait_idle(p, 10000), 0);
  publisher_get_stats(p, &st);
  ck_assert_uint_eq(st.posts, N);
  ck_assert_uint_le(st.builds, N);
  ck_assert_uint_lt(st.builds, N / 2); /* a 20 ms sink: they pile up */
  ck_assert_uint_ge(st.builds, 1);
  ck_assert_ptr_eq(served(), cats[N - 1]);
  ck_assert_uint_eq(st.generation, st.published);
  pthread_mutex_lock(&S.mu);
  ck_assert_uint_eq(S.generation, st.generation);
  ck_assert_str_eq(S.degraded, "");
  pthread_mutex_unlock(&S.mu);
  for (int i = 0; i < N; i++)
    catalog_unref(cats[i]);
  finish(p);
}
END_TEST

/* Module posts from several threads at once, with nothing changed:
 * rebuilds follow (at most one per post), no generation is published. */
struct poster {
  struct publisher *p;
};

static void *poster_main(void *arg) {
  struct poster *ps = arg;

  for (int i = 0; i < 200; i++)
    publisher_post_modules(ps->p);
  return NULL;
}

START_TEST(module_posts_that_change_nothing_publish_nothing) {
  struct publisher *p = start();
  struct publisher_stats st;
  struct catalog *c = cat_with(5);
  pthread_t t[3];
  struct poster ps = {p};

  publisher_set_catalog(p, c, NULL);
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  publisher_get_stats(p, &st);
  ck_assert_uint_eq(st.generation, 1);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, poster_main, &ps), 0);
  for (int i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  publisher_get_stats(p, &st);
  ck_assert_uint_eq(st.posts, 601);
  ck_assert_uint_ge(st.builds, 2);   /* at least one after the last post */
  ck_assert_uint_le(st.builds, 601); /* never more than one per post */
  ck_assert_uint_eq(st.unchanged, st.builds - 1);
  ck_assert_uint_eq(st.generation, 1); /* nothing proxies get changed */
  ck_assert_uint_eq(st.published, 1);
  finish(p);
}
END_TEST

/* A build that fails keeps the previous snapshot in service, says
 * degraded with the reason, and the next good build clears it. */
START_TEST(failed_build_keeps_previous_snapshot) {
  struct publisher *p = start();
  struct publisher_stats st;
  struct catalog *c1 = cat_with(1), *c2 = cat_with(2);

  publisher_set_catalog(p, catalog_ref(c1), NULL);
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  ck_assert_ptr_eq(served(), c1);

  atomic_store(&fail_builds, 1);
  publisher_set_catalog(p, catalog_ref(c2), NULL);
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  publisher_get_stats(p, &st);
  ck_assert_uint_eq(st.failed, 1);
  ck_assert_uint_eq(st.generation, 1);
  ck_assert_ptr_eq(served(), c1);
  pthread_mutex_lock(&S.mu);
  ck_assert_msg(strstr(S.degraded, "cannot build a snapshot") != NULL, "%s",
                S.degraded);
  ck_assert_uint_eq(S.generation, 1);
  pthread_mutex_unlock(&S.mu);

  /* The store's own state and the build error are both said. */
  publisher_set_store_status(p, "etcd unreachable");
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  pthread_mutex_lock(&S.mu);
  ck_assert_msg(strstr(S.degraded, "etcd unreachable; cannot build") != NULL,
                "%s", S.degraded);
  pthread_mutex_unlock(&S.mu);
  publisher_set_store_status(p, NULL);

  atomic_store(&fail_builds, 0);
  publisher_post_modules(p); /* a retry: the same catalog builds now */
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  publisher_get_stats(p, &st);
  ck_assert_uint_eq(st.generation, 2);
  ck_assert_ptr_eq(served(), c2);
  pthread_mutex_lock(&S.mu);
  ck_assert_str_eq(S.degraded, "");
  ck_assert_uint_eq(S.generation, 2);
  pthread_mutex_unlock(&S.mu);
  catalog_unref(c1);
  catalog_unref(c2);
  finish(p);
}
END_TEST

/* Stop is prompt, even with posts pending and one racing it; what was
 * posted and not taken is freed (LSan checks the rest). */
START_TEST(stop_is_prompt) {
  struct publisher *p = start();
  struct timespec t0, t1;
  long ms;

  publisher_set_catalog(p, cat_with(1), NULL);
  ck_assert_int_eq(publisher_wait_idle(p, 5000), 0);
  for (int i = 0; i < 5; i++) {
    publisher_set_catalog(p, cat_with(i + 2), NULL);
    publisher_post_modules(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  finish(p);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  ck_assert_msg(ms < 500, "publisher_free took %ld ms", ms);
}
END_TEST

Suite *publisher_suite(void) {
  Suite *s = suite_create("publisher");
  TCase *tc = tcase_create("publisher");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, posts_coalesce_last_one_wins);
  tcase_add_test(tc, module_posts_that_change_nothing_publish_nothing);
  tcase_add_test(tc, failed_build_keeps_previous_snapshot);
  tcase_add_test(tc, stop_is_prompt);
  suite_add_tcase(s, tc);
  return s;
}
