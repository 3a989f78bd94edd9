/*
 * check_compose_oom.c: allocation-failure sweeps over snapshot building
 * and encoding (server/compose/snapshot.h, encode.h).
 *
 * Each sweep runs one operation once as the reference, then again with the
 * 1st, 2nd, ... Nth allocation failing (base/alloc.h, xds_alloc_fail_at),
 * until a run reaches no Nth allocation. A run with a failed allocation
 * must return an error (XDS_ENOMEM) and hand out nothing; a run that
 * returns 0 anyway must give exactly the reference bytes. Throughout, a
 * snapshot built before the sweep (the one being served) must keep serving
 * the same bytes, and under the ASan build nothing may leak. A failure
 * names the N that reproduces it; COMPOSE_OOM_AT=N runs that one alone.
 *
 * The operations: snapshot_build; snapshot_build_from (from the snapshot
 * served, which must be left as it was; a view of another organization is
 * taken over); snapshot_class (a proxy class's
 * listeners and LDS body, encoded on first use); encode_extension_config,
 * encode_wasm_filter_entry, encode_listener and encode_check_template on
 * every extension and template of a store that has each kind of delivery
 * (local, remote, unavailable FAIL_CLOSE and FAIL_OPEN) and a native filter
 * whose typedConfig is converted through descriptors.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "store/catalog.h"
#include "testutil.h"

#define EXT_HDR                                                                \
  "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
#define TMPL_HDR "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
#define ROUTER                                                                 \
  "  - name: envoy.filters.http.router\n"                                      \
  "    typedConfig: {'@type': "                                                \
  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

/* Every kind of delivery, a config with nested values, env, a template
 * with a converted native filter and one with an RDS route. rev changes
 * one config, so the store of the sweep differs from the one served. */
#define STORE(rev)                                                             \
  EXT_HDR "metadata: {organization: acme, name: authn}\n"                      \
          "spec:\n  url: file:///etc/envoy/authn.wasm\n  phase: AUTHN\n"       \
          "  config: {rev: " rev ", nested: {a: [1, '2', true]}}\n"            \
          "  vmConfig:\n    vmId: vm1\n    env:\n"                             \
          "    - {name: LOG_LEVEL, value: debug}\n"                            \
          "    - {name: HOSTNAME, valueFrom: HOST}\n" EXT_HDR                  \
          "metadata: {organization: acme, name: remote}\n"                     \
          "spec:\n  url: https://modules.example/r.wasm\n  phase: AUTHZ\n"     \
          "  sha256: "                                                         \
          "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"   \
          "\n" EXT_HDR "metadata: {organization: acme, name: oci-closed}\n"    \
          "spec: {url: registry.example/x:1.0, phase: STATS}\n" EXT_HDR        \
          "metadata: {organization: acme, name: oci-open}\n"                   \
          "spec: {url: 'oci://registry.example/y:1.0', failStrategy: "         \
          "FAIL_OPEN}\n" TMPL_HDR                                              \
          "metadata: {name: in}\nspec:\n  port: 15006\n"                       \
          "  direction: INBOUND\n"                                             \
          "  route: {cluster: local_app, prefix: /api}\n  httpFilters:\n"      \
          "  - name: deny-admin\n    phase: AUTHZ\n    typedConfig:\n"         \
          "      '@type': "                                                    \
          "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC\n"   \
          "      rules: {action: DENY, policies: {admin: {permissions: "       \
          "[{any: true}], principals: [{any: true}]}}}\n" ROUTER TMPL_HDR      \
          "metadata: {name: out}\nspec:\n  port: 15001\n"                      \
          "  direction: OUTBOUND\n"                                            \
          "  route: {rds: outbound-routes, rdsCluster: routes-xds}\n"          \
          "  httpFilters:\n" ROUTER

/* Everything a proxy of the test's class receives from snapshot s, as one
 * byte string (libc's allocator: the failure hook does not count it). */
struct served {
  char *data;
  size_t len;
};

static void served_add(struct served *sv, const void *p, size_t n) {
  sv->data = realloc(sv->data, sv->len + n + 1);
  ck_assert_ptr_nonnull(sv->data);
  memcpy(sv->data + sv->len, p, n);
  sv->len += n;
}

static void proxy_of(struct proxy_id *p) {
  tu_proxy(p, "oom-proxy", "acme", NULL, PROXY_MODE_SIDECAR, NULL);
}

/* The bytes s serves: every ECDS resource and the test proxy's LDS body.
 * Fails the test when s cannot serve them (no allocation fails here). */
static struct served served_of(struct snapshot *s) {
  const struct catalog *cat = snapshot_catalog(s);
  const struct xds_class *view;
  struct served sv = {NULL, 0};
  struct proxy_id p;

  for (size_t i = 0; i < catalog_ext_count(cat); i++) {
    const struct xds_resource *r =
        snapshot_ecds(s, catalog_ext_at(cat, i)->fqn);

    ck_assert_ptr_nonnull(r);
    served_add(&sv, r->version, strlen(r->version));
    served_add(&sv, r->bytes, r->len);
  }
  proxy_of(&p);
  ck_assert_int_eq(snapshot_class(s, &p, &view), 0);
  ck_assert_ptr_null(view->problems);
  ck_assert_uint_eq(view->n_listeners, 2);
  served_add(&sv, view->lds_version, strlen(view->lds_version));
  served_add(&sv, view->lds_body, view->lds_body_len);
  for (size_t i = 0; i < view->n_slots; i++) { /* --ecds-slots */
    served_add(&sv, view->slots[i].name, strlen(view->slots[i].name));
    served_add(&sv, view->slots[i].bytes, view->slots[i].len);
  }
  proxy_id_cleanup(&p);
  return sv;
}

static int served_eq(const struct served *a, const struct served *b) {
  return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* The store being served (with its snapshot and what it serves) and the
 * store of the sweep. */
static struct catalog *cat_old, *cat_new;
static struct snapshot *served_snap;
static struct served served_before;
static struct encode_opts opts;

static void setup(void) {
  xds_log_set_level(XDS_LOG_ERROR);
  cat_old = tu_catalog(STORE("1"));
  cat_new = tu_catalog(STORE("2"));
  encode_opts_default(&opts);
  ck_assert_int_eq(snapshot_build(cat_old, &opts, 1, &served_snap, NULL), 0);
  served_before = served_of(served_snap);
}

static void teardown(void) {
  snapshot_unref(served_snap);
  catalog_unref(cat_old);
  catalog_unref(cat_new);
  free(served_before.data);
}

/* The snapshot being served still serves what it served before. */
static void still_served(const char *what, long n) {
  struct served now = served_of(served_snap);

  ck_assert_msg(served_eq(&now, &served_before),
                "%s: with allocation %ld failed, the served snapshot's bytes "
                "changed (reproduce: COMPOSE_OOM_AT=%ld)",
                what, n, n);
  free(now.data);
}

/* Runs step(n) for n = 1, 2, ... until it reports that allocation n was
 * not reached (or only COMPOSE_OOM_AT); checks that it went far enough to
 * have tested something. */
static void sweep(const char *what, int (*step)(long n), long min_steps) {
  const char *only = getenv("COMPOSE_OOM_AT");
  long n;

  if (only != NULL) {
    step(strtol(only, NULL, 10));
    return;
  }
  for (n = 1; step(n); n++)
    ;
  if (getenv("COMPOSE_OOM_VERBOSE") != NULL)
    fprintf(stderr, "%s: %ld allocations swept\n", what, n - 1);
  ck_assert_msg(n > min_steps, "%s: only %ld allocations, expected more", what,
                n - 1);
}

/* ---- snapshot_build ---- */

static struct served build_ref;

static int build_step(long n) {
  struct snapshot *s = (struct snapshot *)(uintptr_t)1;
  struct xds_err err = {0, ""};
  long seen;
  int rc;

  xds_alloc_fail_at(n);
  rc = snapshot_build(cat_new, &opts, 2, &s, &err);
  seen = xds_alloc_fail_at(0);
  if (rc < 0) {
    ck_assert_msg(seen >= n,
                  "snapshot_build failed (%d) without a failed allocation", rc);
    ck_assert_msg(rc == XDS_ENOMEM,
                  "snapshot_build: allocation %ld failed: returned %d, not "
                  "XDS_ENOMEM (reproduce: COMPOSE_OOM_AT=%ld)",
                  n, rc, n);
    ck_assert_msg(s == NULL,
                  "snapshot_build: allocation %ld failed: *out is not NULL "
                  "(reproduce: COMPOSE_OOM_AT=%ld)",
                  n, n);
    ck_assert_msg(err.code == XDS_ENOMEM && err.msg[0] != '\0',
                  "snapshot_build: allocation %ld failed: err not set "
                  "(reproduce: COMPOSE_OOM_AT=%ld)",
                  n, n);
  } else {
    struct served got = served_of(s);

    ck_assert_msg(served_eq(&got, &build_ref),
                  "snapshot_build: allocation %ld failed, yet it returned a "
                  "snapshot that serves other bytes (reproduce: "
                  "COMPOSE_OOM_AT=%ld)",
                  n, n);
    free(got.data);
    snapshot_unref(s);
  }
  still_served("snapshot_build", n);
  return seen >= n;
}

START_TEST(snapshot_build_survives_every_failed_allocation) {
  struct snapshot *s;

  ck_assert_int_eq(snapshot_build(cat_new, &opts, 2, &s, NULL), 0);
  build_ref = served_of(s);
  snapshot_unref(s);
  ck_assert(!served_eq(&build_ref, &served_before));
  sweep("snapshot_build", build_step, 20);
  free(build_ref.data);
}
END_TEST

/* ---- snapshot_build_from ---- */

static int build_from_step(long n) {
  struct snapshot *s = (struct snapshot *)(uintptr_t)1;
  struct xds_err err = {0, ""};
  long seen;
  int rc;

  xds_alloc_fail_at(n);
  rc = snapshot_build_from(served_snap, cat_new, &opts, 2, &s, &err);
  seen = xds_alloc_fail_at(0);
  if (rc < 0) {
    ck_assert_msg(seen >= n && rc == XDS_ENOMEM && s == NULL &&
                      err.code == XDS_ENOMEM,
                  "snapshot_build_from: allocation %ld failed: returned %d "
                  "(*out %p, err %d) (reproduce: COMPOSE_OOM_AT=%ld)",
                  n, rc, (void *)s, err.code, n);
  } else {
    struct served got = served_of(s);
    struct snapshot_stats st;

    snapshot_class_stats(s, &st);
    ck_assert_msg(served_eq(&got, &build_ref) && st.class_carried == 1,
                  "snapshot_build_from: allocation %ld failed, yet it "
                  "returned a snapshot that serves other bytes or took over "
                  "%lu views, not 1 (reproduce: COMPOSE_OOM_AT=%ld)",
                  n, st.class_carried, n);
    free(got.data);
    snapshot_unref(s);
  }
  still_served("snapshot_build_from", n);
  return seen >= n;
}

START_TEST(snapshot_build_from_survives_every_failed_allocation) {
  struct snapshot *s;
  struct proxy_id g;
  const struct xds_class *view;

  /* A view the change (acme's authn) cannot touch. */
  tu_proxy(&g, "other", "globex", NULL, PROXY_MODE_SIDECAR, NULL);
  ck_assert_int_eq(snapshot_class(served_snap, &g, &view), 0);
  proxy_id_cleanup(&g);
  ck_assert_int_eq(snapshot_build(cat_new, &opts, 2, &s, NULL), 0);
  build_ref = served_of(s);
  snapshot_unref(s);
  sweep("snapshot_build_from", build_from_step, 10);
  free(build_ref.data);
}
END_TEST

/* ---- snapshot_class ---- */

static struct served class_ref;

static int class_step(long n) {
  struct snapshot *s;
  const struct xds_class *view = (const struct xds_class *)(uintptr_t)1;
  struct proxy_id p;
  struct served got;
  long seen;
  int rc;

  ck_assert_int_eq(snapshot_build(cat_new, &opts, 2, &s, NULL), 0);
  proxy_of(&p);
  xds_alloc_fail_at(n);
  rc = snapshot_class(s, &p, &view);
  seen = xds_alloc_fail_at(0);
  if (rc < 0) {
    ck_assert_msg(seen >= n && rc == XDS_ENOMEM,
                  "snapshot_class: allocation %ld failed: returned %d, not "
                  "XDS_ENOMEM (reproduce: COMPOSE_OOM_AT=%ld)",
                  n, rc, n);
    ck_assert_msg(view == NULL,
                  "snapshot_class: allocation %ld failed: a view was handed "
                  "out (reproduce: COMPOSE_OOM_AT=%ld)",
                  n, n);
    ck_assert_msg(snapshot_n_classes(s) == 0,
                  "snapshot_class: allocation %ld failed, yet a view was "
                  "kept (reproduce: COMPOSE_OOM_AT=%ld)",
                  n, n);
  }
  /* Failed or not, the snapshot serves exactly the reference now: a failed
   * build leaves nothing behind that a later lookup would reuse. */
  got = served_of(s);
  ck_assert_msg(served_eq(&got, &class_ref),
                "snapshot_class: with allocation %ld failed, the snapshot "
                "then serves other bytes (reproduce: COMPOSE_OOM_AT=%ld)",
                n, n);
  free(got.data);
  proxy_id_cleanup(&p);
  snapshot_unref(s);
  still_served("snapshot_class", n);
  return seen >= n;
}

START_TEST(snapshot_class_survives_every_failed_allocation) {
  struct snapshot *s;

  ck_assert_int_eq(snapshot_build(cat_new, &opts, 2, &s, NULL), 0);
  class_ref = served_of(s);
  snapshot_unref(s);
  sweep("snapshot_class", class_step, 20);
  free(class_ref.data);
}
END_TEST

START_TEST(snapshot_class_with_slots_survives_every_failed_allocation) {
  /* The same with --ecds-slots: slot layout, slot configs, their index. */
  struct snapshot *s;

  snapshot_unref(served_snap);
  free(served_before.data);
  opts.ecds_slots = 2;
  ck_assert_int_eq(snapshot_build(cat_old, &opts, 1, &served_snap, NULL), 0);
  served_before = served_of(served_snap);
  ck_assert_int_eq(snapshot_build(cat_new, &opts, 2, &s, NULL), 0);
  class_ref = served_of(s);
  snapshot_unref(s);
  sweep("snapshot_class (slots)", class_step, 40);
  free(class_ref.data);
}
END_TEST

/* ---- encode_* ---- */

enum enc_op {
  ENC_CONFIG,
  ENC_ENTRY,
  ENC_ENTRY_INLINE,
  ENC_LISTENER,
  ENC_CHECK
};
static const char *const ENC_NAMES[] = {
    "encode_extension_config", "encode_wasm_filter_entry",
    "encode_wasm_filter_entry (--inline-wasm)", "encode_listener",
    "encode_check_template"};

/* The operation under test and its subject: an extension or a template of
 * cat_new (index). */
static enum enc_op enc_op;
static size_t enc_index;
static struct xds_buf enc_ref;

/* Runs the operation into out (which already holds a prefix, as when
 * appending to a response). */
static int enc_run(struct xds_buf *out, struct xds_err *err) {
  struct encode_opts o = opts;

  switch (enc_op) {
  case ENC_CONFIG:
    return encode_extension_config(catalog_ext_at(cat_new, enc_index), NULL, &o,
                                   out);
  case ENC_ENTRY_INLINE:
    o.inline_wasm = 1;
    /* fall through */
  case ENC_ENTRY:
    return encode_wasm_filter_entry(catalog_ext_at(cat_new, enc_index), NULL,
                                    &o, out);
  case ENC_LISTENER: {
    const struct listener_tmpl *t = catalog_tmpl_at(cat_new, enc_index);
    struct proxy_id p;
    struct chain ch;
    int rc;

    proxy_of(&p);
    ck_assert_int_eq(chain_compute(cat_new, &p, t, &ch), 0);
    proxy_id_cleanup(&p);
    rc = encode_listener(t, &ch, &o, out, err);
    chain_cleanup(&ch);
    return rc;
  }
  case ENC_CHECK:
    return encode_check_template(catalog_tmpl_at(cat_new, enc_index), err);
  }
  return XDS_EINVAL;
}

static int enc_step(long n) {
  struct xds_err err = {0, ""};
  struct xds_buf out;
  long seen;
  int rc;

  xds_buf_init(&out, 1 << 20);
  ck_assert_int_eq(xds_buf_puts(&out, "prefix"), 0);
  if (enc_op == ENC_LISTENER) {
    /* The chain is computed first, without the hook: only the encoding is
     * swept. */
    struct proxy_id p;
    struct chain ch;
    const struct listener_tmpl *t = catalog_tmpl_at(cat_new, enc_index);

    proxy_of(&p);
    ck_assert_int_eq(chain_compute(cat_new, &p, t, &ch), 0);
    proxy_id_cleanup(&p);
    xds_alloc_fail_at(n);
    rc = encode_listener(t, &ch, &opts, &out, &err);
    seen = xds_alloc_fail_at(0);
    chain_cleanup(&ch);
  } else {
    xds_alloc_fail_at(n);
    rc = enc_run(&out, &err);
    seen = xds_alloc_fail_at(0);
  }
  if (rc < 0) {
    ck_assert_msg(seen >= n && rc == XDS_ENOMEM,
                  "%s of item %zu: allocation %ld failed: returned %d (%s), "
                  "not XDS_ENOMEM (reproduce: COMPOSE_OOM_AT=%ld)",
                  ENC_NAMES[enc_op], enc_index, n, rc, err.msg, n);
  } else {
    ck_assert_msg(out.len == enc_ref.len &&
                      memcmp(out.data, enc_ref.data, out.len) == 0,
                  "%s of item %zu: allocation %ld failed, yet it returned 0 "
                  "with other bytes (reproduce: COMPOSE_OOM_AT=%ld)",
                  ENC_NAMES[enc_op], enc_index, n, n);
  }
  xds_buf_cleanup(&out);
  return seen >= n;
}

static void enc_sweep(enum enc_op op, size_t count) {
  for (size_t i = 0; i < count; i++) {
    struct xds_err err = {0, ""};

    enc_op = op;
    enc_index = i;
    xds_buf_init(&enc_ref, 1 << 20);
    ck_assert_int_eq(xds_buf_puts(&enc_ref, "prefix"), 0);
    ck_assert_msg(enc_run(&enc_ref, &err) == 0, "%s of item %zu: %s",
                  ENC_NAMES[op], i, err.msg);
    sweep(ENC_NAMES[op], enc_step, op == ENC_CHECK ? 0 : 1);
    xds_buf_cleanup(&enc_ref);
  }
}

START_TEST(encode_survives_every_failed_allocation) {
  size_t n_ext = catalog_ext_count(cat_new), n_t = catalog_tmpl_count(cat_new);

  enc_sweep(ENC_CONFIG, n_ext);
  enc_sweep(ENC_ENTRY, n_ext);
  enc_sweep(ENC_ENTRY_INLINE, n_ext);
  enc_sweep(ENC_LISTENER, n_t);
  enc_sweep(ENC_CHECK, n_t);
  still_served("encode", 0);
}
END_TEST

Suite *compose_oom_suite(void) {
  Suite *s = suite_create("compose_oom");
  TCase *tc = tcase_create("sweep");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, snapshot_build_survives_every_failed_allocation);
  tcase_add_test(tc, snapshot_build_from_survives_every_failed_allocation);
  tcase_add_test(tc, snapshot_class_survives_every_failed_allocation);
  tcase_add_test(tc,
                 snapshot_class_with_slots_survives_every_failed_allocation);
  tcase_add_test(tc, encode_survives_every_failed_allocation);
  suite_add_tcase(s, tc);
  return s;
}
