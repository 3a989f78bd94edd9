/*
 * check_compose.c: composition as a whole. Random stores and proxies
 * (property test): every chain is sorted by (phase, -priority, fqn), holds
 * every extension whose verdict is "included" and nothing else, and is the
 * same bytes and versions however the store's documents are spread over
 * files. Sharing: proxies of one class share one encoding.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "testutil.h"

#define N_EXT 60
#define N_PROXY 60
#define N_ROUNDS 8

static unsigned long rng;

static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

static const char *const orgs[] = {"acme", "globex", "initech"};
static const char *const phases[] = {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ",
                                     "STATS"};
static const char *const modes[] = {"CLIENT", "SERVER", "CLIENT_AND_SERVER"};
static const long prios[] = {INT_MIN, -5, 0, 0, 1, 7, 100, INT_MAX};

/* One document per entry, generated from the current seed. */
static int gen_docs(char **docs) {
  int n = 0;

  for (int i = 0; i < N_EXT; i++) {
    const char *org = orgs[rnd(3)];
    struct xds_buf b;
    xds_buf_init(&b, 4096);
    xds_buf_printf(&b,
                   "apiVersion: extension.tsb.tetrate.io/v2\n"
                   "kind: WasmExtension\n"
                   "metadata: {organization: %s, name: e%03d}\n"
                   "spec:\n  url: file:///w/e%03d.wasm\n  phase: %s\n"
                   "  priority: %ld\n  match: {mode: %s}\n",
                   org, i, i, phases[rnd(4)],
                   rnd(3) == 0 ? (long)rnd(1000) - 500 : prios[rnd(8)],
                   modes[rnd(3)]);
    if (rnd(2)) {
      xds_buf_puts(&b, "  allowedIn:\n");
      for (int t = 1; t <= 3; t++)
        if (rnd(2))
          xds_buf_printf(&b, "  - organizations/%s/tenants/t%d\n", org, t);
      if (b.data[b.len - 2] == ':') /* none chosen: name one */
        xds_buf_printf(&b, "  - organizations/%s/tenants/t1\n", org);
    }
    docs[n++] = xds_buf_steal(&b, NULL);
  }
  docs[n++] = xds_strdup(
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"
      "  selector: {mode: SIDECAR}\n  route: {cluster: app}\n  httpFilters:\n"
      "  - {name: jwt, phase: AUTHN, typedConfig: {'@type': "
      "envoy.extensions.filters.http.rbac.v3.RBAC}}\n"
      "  - {name: rbac, phase: AUTHZ, typedConfig: {'@type': "
      "envoy.extensions.filters.http.rbac.v3.RBAC}}\n"
      "  - {name: envoy.filters.http.router, typedConfig: {'@type': "
      "envoy.extensions.filters.http.router.v3.Router}}\n");
  docs[n++] = xds_strdup(
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: out}\nspec:\n  port: 15001\n  direction: OUTBOUND\n"
      "  route: {cluster: up}\n  httpFilters:\n"
      "  - {name: stats, phase: STATS, typedConfig: {'@type': "
      "envoy.extensions.filters.http.rbac.v3.RBAC}}\n"
      "  - {name: envoy.filters.http.router, typedConfig: {'@type': "
      "envoy.extensions.filters.http.router.v3.Router}}\n");
  return n;
}

/* Writes docs over n_files files of a new temp dir in a shuffled order and
 * loads it. */
static struct catalog *load_shuffled(char **docs, int n, unsigned seed) {
  char dir[] = "/tmp/wasmxds-compose-XXXXXX";
  int order[N_EXT + 8], n_files = 1 + (int)(seed % 7);
  struct catalog *cat = NULL;
  struct problems pb;
  struct xds_err err = {0, ""};
  unsigned long saved = rng;

  rng = seed * 2654435761UL + 1;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  for (int i = 0; i < n; i++)
    order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)rnd((unsigned)i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int i = 0; i < n; i++) {
    char path[128];
    FILE *f;
    snprintf(path, sizeof(path), "%s/f%u-%d.yaml", dir, rnd(1000), i % n_files);
    f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "---\n%s", docs[order[i]]);
    fclose(f);
  }
  problems_init(&pb, 100);
  ck_assert_int_eq(file_store_load(dir, NULL, &cat, &pb, &err), 0);
  ck_assert_uint_eq(pb.n_errors, 0);
  problems_cleanup(&pb);
  {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
  }
  rng = saved;
  return cat;
}

static void random_proxy(struct proxy_id *p, int i) {
  char id[32], tenant[96];
  const char *org = rnd(8) == 0 ? "nobody" : orgs[rnd(3)];
  int t = (int)rnd(4);

  snprintf(id, sizeof(id), "p%d", i);
  snprintf(tenant, sizeof(tenant), "organizations/%s/tenants/t%d", org, t);
  tu_proxy(p, id, org, t == 0 ? NULL : tenant,
           rnd(3) == 0 ? PROXY_MODE_GATEWAY : PROXY_MODE_SIDECAR, NULL);
}

START_TEST(random_stores_obey_the_rules) {
  char *docs[N_EXT + 8];
  struct catalog *a, *b;
  struct snapshot *sa, *sb;
  struct encode_opts o;
  int n;

  rng = 0x9e3779b97f4a7c15UL ^ (unsigned long)(_i + 1);
  n = gen_docs(docs);
  a = load_shuffled(docs, n, (unsigned)_i * 3 + 1);
  b = load_shuffled(docs, n, (unsigned)_i * 3 + 2);
  encode_opts_default(&o);
  ck_assert_int_eq(snapshot_build(a, &o, 1, &sa, NULL), 0);
  ck_assert_int_eq(snapshot_build(b, &o, 1, &sb, NULL), 0);
  for (int i = 0; i < N_PROXY; i++) {
    struct proxy_id p;
    const struct xds_class *ca, *cb;
    random_proxy(&p, i);
    for (size_t k = 0; k < catalog_tmpl_count(a); k++) {
      const struct listener_tmpl *t = catalog_tmpl_at(a, k);
      struct chain c;
      size_t expected = 0;
      if (!chain_tmpl_applies(t, &p))
        continue;
      ck_assert_int_eq(chain_compute(a, &p, t, &c), 0);
      for (size_t j = 0; j < c.n; j++) {
        ck_assert_int_eq(chain_judge(c.exts[j], t, &p), CHAIN_IN);
        ck_assert(chain_ext_visible(c.exts[j], &p));
        if (j > 0)
          ck_assert_msg(chain_order(c.exts[j - 1], c.exts[j]) < 0,
                        "%s before %s", c.exts[j - 1]->fqn, c.exts[j]->fqn);
      }
      for (size_t j = 0; j < catalog_ext_count(a); j++) {
        const struct wasm_ext *e = catalog_ext_at(a, j);
        if (chain_judge(e, t, &p) == CHAIN_IN)
          expected++;
        /* A gateway runs CLIENT and CLIENT_AND_SERVER extensions on every
         * listener, whatever its direction, and SERVER ones on none. */
        if (p.mode == PROXY_MODE_GATEWAY && chain_ext_visible(e, &p))
          ck_assert_msg((chain_judge(e, t, &p) == CHAIN_IN) ==
                            (e->match_mode != WASM_MATCH_SERVER),
                        "gateway, %s on %s", e->fqn, t->name);
      }
      ck_assert_uint_eq(c.n, expected);
      chain_cleanup(&c);
    }
    /* The same store spread differently over files: same bytes. */
    ck_assert_int_eq(snapshot_class(sa, &p, &ca), 0);
    ck_assert_int_eq(snapshot_class(sb, &p, &cb), 0);
    ck_assert_str_eq(ca->lds_version, cb->lds_version);
    ck_assert_uint_eq(ca->lds_body_len, cb->lds_body_len);
    ck_assert_int_eq(memcmp(ca->lds_body, cb->lds_body, ca->lds_body_len), 0);
    proxy_id_cleanup(&p);
  }
  for (size_t j = 0; j < catalog_ext_count(a); j++) {
    const char *fqn = catalog_ext_at(a, j)->fqn;
    ck_assert_str_eq(snapshot_ecds(sa, fqn)->version,
                     snapshot_ecds(sb, fqn)->version);
  }
  snapshot_unref(sa);
  snapshot_unref(sb);
  catalog_unref(a);
  catalog_unref(b);
  for (int i = 0; i < n; i++)
    xds_free(docs[i]);
}
END_TEST

/* 1,000 proxies in 5 classes: 5 encodings, 995 reuses. Labels that no
 * template selects on do not split a class. */
START_TEST(classes_share_one_encoding) {
  struct catalog *cat = tu_catalog(
      "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
      "metadata: {organization: acme, name: a}\n"
      "spec: {url: file:///a.wasm, allowedIn: "
      "[organizations/acme/tenants/t1]}\n"
      "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: in}\nspec:\n  port: 1\n  direction: INBOUND\n"
      "  selector: {labels: {tier: web}}\n  route: {cluster: app}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n"
      "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: out}\nspec:\n  port: 2\n  direction: OUTBOUND\n"
      "  route: {cluster: up}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n");
  static const struct {
    const char *tenant;
    enum proxy_mode mode;
    const char *labels;
  } kinds[5] = {
      {"organizations/acme/tenants/t1", PROXY_MODE_SIDECAR, "tier=web"},
      {"organizations/acme/tenants/t1", PROXY_MODE_SIDECAR, "tier=db"},
      {"organizations/acme/tenants/t2", PROXY_MODE_SIDECAR, "tier=web"},
      {"organizations/acme/tenants/t1", PROXY_MODE_GATEWAY, "tier=web"},
      {NULL, PROXY_MODE_SIDECAR, NULL},
  };
  struct encode_opts o;
  struct snapshot *s;
  struct snapshot_stats st;
  const struct xds_class *first[5];

  encode_opts_default(&o);
  ck_assert_int_eq(snapshot_build(cat, &o, 1, &s, NULL), 0);
  for (int i = 0; i < 1000; i++) {
    struct proxy_id p;
    char id[32], labels[64];
    const struct xds_class *c;
    int k = i % 5;
    snprintf(id, sizeof(id), "proxy-%d", i);
    /* An extra label per proxy that nothing selects on. */
    snprintf(labels, sizeof(labels), "%s%sinstance=%d",
             kinds[k].labels ? kinds[k].labels : "", kinds[k].labels ? "," : "",
             i);
    tu_proxy(&p, id, "acme", kinds[k].tenant, kinds[k].mode, labels);
    ck_assert_int_eq(snapshot_class(s, &p, &c), 0);
    if (i < 5)
      first[k] = c;
    else
      ck_assert_ptr_eq(c, first[k]);
    proxy_id_cleanup(&p);
  }
  snapshot_class_stats(s, &st);
  ck_assert_uint_eq(st.classes, 5);
  ck_assert_uint_eq(st.class_builds, 5);
  ck_assert_uint_eq(st.class_hits, 995);
  snapshot_unref(s);
  catalog_unref(cat);
}
END_TEST

/* A store with no extension (templates only), and an empty store, build
 * snapshots: a proxy then gets its listeners with the router alone, or
 * nothing. */
START_TEST(stores_without_extensions) {
  struct catalog *only_tmpl = tu_catalog(
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: in}\nspec:\n  port: 1\n  direction: INBOUND\n"
      "  route: {cluster: app}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n");
  struct catalog *empty = tu_catalog("# nothing yet\n");
  struct encode_opts o;
  struct snapshot *s1, *s2;
  const struct xds_class *c;
  struct proxy_id p;

  encode_opts_default(&o);
  tu_proxy(&p, "p", "acme", NULL, PROXY_MODE_SIDECAR, NULL);
  ck_assert_int_eq(snapshot_build(only_tmpl, &o, 1, &s1, NULL), 0);
  ck_assert_int_eq(snapshot_class(s1, &p, &c), 0);
  ck_assert_uint_eq(c->n_listeners, 1);
  ck_assert_int_eq(snapshot_build(empty, &o, 1, &s2, NULL), 0);
  ck_assert_int_eq(snapshot_class(s2, &p, &c), 0);
  ck_assert_uint_eq(c->n_listeners, 0);
  ck_assert_uint_gt(c->lds_body_len, 0); /* version and type URL */
  snapshot_unref(s1);
  snapshot_unref(s2);
  catalog_unref(only_tmpl);
  catalog_unref(empty);
  proxy_id_cleanup(&p);
}
END_TEST

Suite *compose_suite(void) {
  Suite *s = suite_create("compose");
  TCase *tc = tcase_create("compose");

  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, random_stores_obey_the_rules, 0, N_ROUNDS);
  tcase_add_test(tc, classes_share_one_encoding);
  tcase_add_test(tc, stores_without_extensions);
  suite_add_tcase(s, tc);
  return s;
}
