/*
 * check_compose.c: composition as a whole. Random stores and proxies
 * (property test): every chain is sorted by (phase, -priority, fqn), holds
 * every extension whose verdict is "included" and nothing else, and is the
 * same bytes and versions however the store's documents are spread over
 * files. Sharing: proxies of one class share one encoding. Incremental
 * builds (snapshot_build_from), over random stores and random changes of
 * records, templates and module results, serve byte for byte what a build
 * from scratch serves, and a one-tenant change takes over the other
 * tenants' views.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
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

/* ---- incremental builds ---- */

/* Module results of the property test: an extension whose fqn hashes to a
 * bit set in unavailable_mask is unavailable (its substitute is served). */
static uint64_t unavailable_mask;

static unsigned fqn_bit(const char *fqn) {
  unsigned h = 2166136261u;

  for (; *fqn; fqn++)
    h = (h ^ (unsigned char)*fqn) * 16777619u;
  return h % 64;
}

static int masked_module_of(void *ctx, const struct wasm_ext *e,
                            struct encode_module *out) {
  (void)ctx;
  encode_module_default(e, out);
  if (unavailable_mask & (UINT64_C(1) << fqn_bit(e->fqn))) {
    out->kind = ENCODE_MOD_UNAVAILABLE;
    out->uri = out->sha256 = out->root_id = NULL;
    out->reason = "test: unavailable";
  }
  return 0;
}

/* Replaces e's allowedIn with a random one of its organization's tenants
 * (sometimes empty: the whole organization). */
static void random_allowed_in(struct wasm_ext *e) {
  char *v[3];
  size_t n = 0;

  xds_strv_free(e->allowed_in, e->n_allowed_in);
  e->allowed_in = NULL;
  e->n_allowed_in = 0;
  if (rnd(3) == 0)
    return;
  for (int t = 1; t <= 3; t++)
    if (rnd(2) || (t == 3 && n == 0)) {
      char buf[96];
      snprintf(buf, sizeof(buf), "organizations/%s/tenants/t%d",
               e->organization, t);
      v[n++] = xds_strdup(buf);
    }
  ck_assert_int_eq(xds_strv_dup(v, n, &e->allowed_in), 0);
  e->n_allowed_in = n;
  for (size_t i = 0; i < n; i++)
    xds_free(v[i]);
}

/* A new catalog from c with one random change; every record not changed
 * is shared, as the stores share the records of unchanged files and keys.
 * *what says which. Module changes are made by the caller. */
static struct catalog *random_change(const struct catalog *c, int round,
                                     const char **what) {
  struct catalog_builder *b = catalog_builder_new();
  size_t n = catalog_ext_count(c), pick = n > 0 ? rnd((unsigned)n) : 0;
  unsigned kind = rnd(10);
  struct catalog *out = NULL;
  struct problems pb;

  ck_assert_ptr_nonnull(b);
  problems_init(&pb, 100);
  if (n == 0 && kind < 7)
    kind = 7;
  *what = kind < 4   ? "an extension updated"
          : kind < 5 ? "an extension removed"
          : kind < 8 ? "an extension added"
          : kind < 9 ? "a template updated"
                     : "nothing";
  for (size_t i = 0; i < n; i++) {
    struct wasm_ext *e = (struct wasm_ext *)catalog_ext_at(c, i);

    if (e->attached_to != NULL)
      continue; /* derived again by the builder */
    if (i == pick && kind == 4)
      continue;
    if (i == pick && kind < 4) {
      e = catalog_ext_copy(e);
      ck_assert_ptr_nonnull(e);
      switch (rnd(4)) {
      case 0:
        e->priority = (int32_t)rnd(1000) - 500;
        break;
      case 1:
        e->phase = (enum wasm_phase)rnd(4);
        break;
      case 2:
        random_allowed_in(e);
        break;
      default:
        xds_free(e->config_json);
        e->config_json =
            xds_asprintf("{\"round\":%d,\"r\":%u}", round, rnd(1000));
        ck_assert_ptr_nonnull(e->config_json);
      }
    } else if (i == pick && kind < 8) {
      /* Add a copy under a new name (maybe in another organization). */
      struct wasm_ext *d = catalog_ext_copy(e);
      const char *org = orgs[rnd(3)];

      ck_assert_ptr_nonnull(d);
      xds_free(d->fqn);
      xds_free(d->name);
      xds_free(d->organization);
      d->organization = xds_strdup(org);
      d->name = xds_asprintf("n%d-%u", round, rnd(100000));
      d->fqn = xds_asprintf("organizations/%s/extensions/%s", org, d->name);
      random_allowed_in(d);
      ck_assert_int_eq(catalog_builder_add_ext(b, d, &pb), 0);
      e = wasm_ext_ref(e);
    } else {
      e = wasm_ext_ref(e);
    }
    ck_assert_int_eq(catalog_builder_add_ext(b, e, &pb), 0);
  }
  for (size_t i = 0; i < catalog_tmpl_count(c); i++) {
    struct listener_tmpl *t = (struct listener_tmpl *)catalog_tmpl_at(c, i);

    if (kind == 8 && i == (size_t)round % catalog_tmpl_count(c)) {
      t = catalog_tmpl_copy(t);
      ck_assert_ptr_nonnull(t);
      t->port = 20000 + (uint32_t)rnd(1000) * 2 + (uint32_t)i;
    } else {
      t = listener_tmpl_ref(t);
    }
    ck_assert_int_eq(catalog_builder_add_tmpl(b, t, &pb), 0);
  }
  ck_assert_int_eq(catalog_builder_finish(b, &pb, &out), 0);
  ck_assert_uint_eq(pb.n_errors, 0);
  problems_cleanup(&pb);
  return out;
}

static void resource_eq(const struct xds_resource *a,
                        const struct xds_resource *b, const char *what) {
  ck_assert_msg(strcmp(a->name, b->name) == 0, "%s: name", what);
  ck_assert_msg(strcmp(a->version, b->version) == 0, "%s %s: version", what,
                a->name);
  ck_assert_msg(a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0,
                "%s %s: bytes", what, a->name);
}

static int str_same(const char *a, const char *b) {
  return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Everything the two class views serve is the same. */
static void class_eq(const struct xds_class *a, const struct xds_class *b) {
  ck_assert_str_eq(a->key, b->key);
  ck_assert_str_eq(a->lds_version, b->lds_version);
  ck_assert_uint_eq(a->lds_body_len, b->lds_body_len);
  ck_assert_int_eq(memcmp(a->lds_body, b->lds_body, a->lds_body_len), 0);
  ck_assert_uint_eq(a->n_listeners, b->n_listeners);
  for (size_t i = 0; i < a->n_listeners; i++)
    resource_eq(&a->listeners[i], &b->listeners[i], "listener");
  ck_assert(str_same(a->problems, b->problems));
  ck_assert_uint_eq(a->n_slots, b->n_slots);
  for (size_t i = 0; i < a->n_slots; i++) {
    resource_eq(&a->slots[i], &b->slots[i], "slot");
    ck_assert(str_same(a->slot_fqn[i], b->slot_fqn[i]));
    ck_assert_uint_eq(a->slot_by_name[i], b->slot_by_name[i]);
  }
}

/* Every ECDS resource and module result of the two snapshots are the
 * same. */
static void ecds_eq(struct snapshot *a, struct snapshot *b) {
  const struct catalog *cat = snapshot_catalog(b);

  ck_assert(snapshot_same_content(a, b));
  for (size_t i = 0; i < catalog_ext_count(cat); i++) {
    const char *fqn = catalog_ext_at(cat, i)->fqn;
    const struct encode_module *ma = snapshot_module(a, fqn),
                               *mb = snapshot_module(b, fqn);

    resource_eq(snapshot_ecds(a, fqn), snapshot_ecds(b, fqn), "ECDS");
    ck_assert(ma->kind == mb->kind && str_same(ma->uri, mb->uri) &&
              str_same(ma->sha256, mb->sha256) &&
              str_same(ma->root_id, mb->root_id) &&
              str_same(ma->reason, mb->reason));
  }
}

#define N_STEPS 14

/* Random store, then N_STEPS random changes: each snapshot built from the
 * one before serves what a build from scratch serves. Proxies look up
 * their views in a random half of the generations (so views are carried
 * over generations, and dropped after SNAPSHOT_CLASS_KEEP unused). Even
 * rounds run with --ecds-slots. */
START_TEST(incremental_builds_equal_full_builds) {
  char *docs[N_EXT + 8];
  struct proxy_id px[N_PROXY];
  struct catalog *cat;
  struct snapshot *prev;
  struct encode_opts o;
  unsigned long carried = 0, rebuilt = 0, shared = 0;
  int n;

  rng = 0x2545f4914f6cdd1dUL ^ (unsigned long)(_i + 1);
  unavailable_mask = 0;
  n = gen_docs(docs);
  cat = load_shuffled(docs, n, (unsigned)_i + 11);
  for (int i = 0; i < n; i++)
    xds_free(docs[i]);
  encode_opts_default(&o);
  o.module_of = masked_module_of;
  if (_i % 2 == 0)
    o.ecds_slots = 2;
  for (int i = 0; i < N_PROXY; i++)
    random_proxy(&px[i], i);
  ck_assert_int_eq(snapshot_build(cat, &o, 1, &prev, NULL), 0);
  for (int i = 0; i < N_PROXY; i++) {
    const struct xds_class *c;
    ck_assert_int_eq(snapshot_class(prev, &px[i], &c), 0);
  }
  for (int step = 0; step < N_STEPS; step++) {
    const char *what;
    struct catalog *next = random_change(cat, _i * 100 + step, &what);
    struct snapshot *inc, *full;
    struct snapshot_stats st;

    if (rnd(4) == 0) {
      unavailable_mask ^= UINT64_C(1) << rnd(64);
      what = "module results changed";
    }
    ck_assert_int_eq(
        snapshot_build_from(prev, next, &o, (uint64_t)step + 2, &inc, NULL), 0);
    ck_assert_int_eq(snapshot_build(next, &o, (uint64_t)step + 2, &full, NULL),
                     0);
    ecds_eq(inc, full);
    for (int i = 0; i < N_PROXY; i++) {
      const struct xds_class *a, *b;
      if (rnd(2) == 0 && step + 1 < N_STEPS)
        continue;
      ck_assert_int_eq(snapshot_class(inc, &px[i], &a), 0);
      ck_assert_int_eq(snapshot_class(full, &px[i], &b), 0);
      ck_assert_msg(a != NULL && b != NULL, "step %d (%s)", step, what);
      class_eq(a, b);
    }
    snapshot_class_stats(inc, &st);
    carried += st.class_carried;
    rebuilt += st.class_builds;
    shared += st.ecds_shared;
    snapshot_unref(full);
    snapshot_unref(prev);
    catalog_unref(cat);
    prev = inc;
    cat = next;
  }
  snapshot_unref(prev);
  catalog_unref(cat);
  for (int i = 0; i < N_PROXY; i++)
    proxy_id_cleanup(&px[i]);
  /* It compared something: views were taken over and views were built
   * again, encodings were shared. */
  ck_assert_uint_gt(carried, 0);
  ck_assert_uint_gt(rebuilt, 0);
  ck_assert_uint_gt(shared, 0);
}
END_TEST

/* A change of one tenant's extension: the other tenant's view (and the
 * views of another organization) are the same objects in the new
 * snapshot, the changed tenant's is built again; every unchanged
 * extension's encoding is shared. An organization-wide change touches
 * every view of the organization and none of another. */
START_TEST(one_tenant_change_rebuilds_one_view) {
  static const char *const base =
      "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
      "metadata: {organization: acme, name: a}\n"
      "spec: {url: file:///a.wasm, allowedIn: "
      "[organizations/acme/tenants/t1], config: {v: %d}}\n"
      "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
      "metadata: {organization: acme, name: wide}\n"
      "spec: {url: file:///w.wasm, config: {v: %d}}\n"
      "---\napiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
      "metadata: {organization: globex, name: g}\n"
      "spec: {url: file:///g.wasm}\n"
      "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: in}\nspec:\n  port: 1\n  direction: INBOUND\n"
      "  route: {cluster: app}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n";
  char yaml[2048];
  struct catalog *c[3];
  struct snapshot *s[3];
  struct encode_opts o;
  struct proxy_id t1, t2, g;
  const struct xds_class *v[3][3];
  struct snapshot_stats st;

  for (int k = 0; k < 3; k++) {
    snprintf(yaml, sizeof(yaml), base, k >= 1 ? 2 : 1, k >= 2 ? 2 : 1);
    c[k] = tu_catalog(yaml);
  }
  encode_opts_default(&o);
  tu_proxy(&t1, "p1", "acme", "organizations/acme/tenants/t1",
           PROXY_MODE_SIDECAR, NULL);
  tu_proxy(&t2, "p2", "acme", "organizations/acme/tenants/t2",
           PROXY_MODE_SIDECAR, NULL);
  tu_proxy(&g, "p3", "globex", NULL, PROXY_MODE_SIDECAR, NULL);
  ck_assert_int_eq(snapshot_build(c[0], &o, 1, &s[0], NULL), 0);
  for (int k = 0; k < 3; k++) {
    if (k > 0)
      ck_assert_int_eq(
          snapshot_build_from(s[k - 1], c[k], &o, (uint64_t)k + 1, &s[k], NULL),
          0);
    ck_assert_int_eq(snapshot_class(s[k], &t1, &v[k][0]), 0);
    ck_assert_int_eq(snapshot_class(s[k], &t2, &v[k][1]), 0);
    ck_assert_int_eq(snapshot_class(s[k], &g, &v[k][2]), 0);
  }
  /* a (allowed in t1) changed: t1's view rebuilt, t2's and globex's kept. */
  ck_assert_ptr_ne(v[1][0], v[0][0]);
  ck_assert_ptr_eq(v[1][1], v[0][1]);
  ck_assert_ptr_eq(v[1][2], v[0][2]);
  snapshot_class_stats(s[1], &st);
  ck_assert_uint_eq(st.class_carried, 2);
  ck_assert_uint_eq(st.class_builds, 1);
  ck_assert_uint_eq(st.ecds_shared, 2);
  ck_assert_ptr_eq(
      snapshot_ecds(s[1], "organizations/globex/extensions/g")->bytes,
      snapshot_ecds(s[0], "organizations/globex/extensions/g")->bytes);
  /* wide (the whole of acme) changed: both acme views rebuilt. */
  ck_assert_ptr_ne(v[2][0], v[1][0]);
  ck_assert_ptr_ne(v[2][1], v[1][1]);
  ck_assert_ptr_eq(v[2][2], v[1][2]);
  /* The views outlive the snapshot and catalog they were built with. */
  snapshot_unref(s[0]);
  snapshot_unref(s[1]);
  catalog_unref(c[0]);
  catalog_unref(c[1]);
  ck_assert_str_eq(v[2][2]->listeners[0].name, "in");
  snapshot_unref(s[2]);
  catalog_unref(c[2]);
  proxy_id_cleanup(&t1);
  proxy_id_cleanup(&t2);
  proxy_id_cleanup(&g);
}
END_TEST

/* A view no proxy looked up for SNAPSHOT_CLASS_KEEP generations is not
 * taken over; one looked up is, however many generations it spans. */
START_TEST(unused_views_are_not_kept) {
  struct catalog *cat = tu_catalog(
      "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
      "metadata: {name: in}\nspec:\n  port: 1\n  direction: INBOUND\n"
      "  route: {cluster: app}\n"
      "  httpFilters:\n  - {name: envoy.filters.http.router, typedConfig: "
      "{'@type': envoy.extensions.filters.http.router.v3.Router}}\n");
  struct encode_opts o;
  struct snapshot *s;
  struct proxy_id used, idle;
  const struct xds_class *c;
  uint64_t gen = 1;

  encode_opts_default(&o);
  tu_proxy(&used, "p1", "acme", NULL, PROXY_MODE_SIDECAR, NULL);
  tu_proxy(&idle, "p2", "acme", NULL, PROXY_MODE_GATEWAY, NULL);
  ck_assert_int_eq(snapshot_build(cat, &o, gen, &s, NULL), 0);
  ck_assert_int_eq(snapshot_class(s, &used, &c), 0);
  ck_assert_int_eq(snapshot_class(s, &idle, &c), 0);
  for (int k = 0; k < SNAPSHOT_CLASS_KEEP + 2; k++) {
    struct snapshot *next;

    gen++;
    ck_assert_int_eq(snapshot_build_from(s, cat, &o, gen, &next, NULL), 0);
    snapshot_unref(s);
    s = next;
    ck_assert_uint_eq(snapshot_n_classes(s),
                      gen <= 1 + SNAPSHOT_CLASS_KEEP ? 2 : 1);
    ck_assert_int_eq(snapshot_class(s, &used, &c), 0);
  }
  snapshot_unref(s);
  catalog_unref(cat);
  proxy_id_cleanup(&used);
  proxy_id_cleanup(&idle);
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
  tcase_add_loop_test(tc, incremental_builds_equal_full_builds, 0, N_ROUNDS);
  tcase_add_test(tc, one_tenant_change_rebuilds_one_view);
  tcase_add_test(tc, unused_views_are_not_kept);
  suite_add_tcase(s, tc);
  return s;
}
