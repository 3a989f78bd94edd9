/*
 * compose_bench.c: a full recompute at fleet scale (issue 4's figure).
 * 1,000 extensions over 200 tenants, 10,000 proxies in 400 classes
 * (200 tenants x 2 workload modes): build the snapshot (every extension's
 * ECDS resource) and every proxy's class view (listeners encoded once per
 * class). Prints wall time, allocations, and bytes per class and per proxy.
 * PUBLIC_PERCENT of the extensions (default 5) have an empty allowedIn and
 * so are in every proxy's chains; each of the others is allowed in one
 * tenant (round robin), so a proxy runs the public ones plus its tenant's.
 * Then a one-tenant change (issue 20, item 4): one extension allowed in one
 * tenant gets a new config, in a catalog that shares every other record
 * with the first (as the file and etcd stores do), and the snapshot is
 * rebuilt from the first one (snapshot_build_from) and every proxy looks
 * its class view up again; the same from scratch for comparison.
 * Usage: compose_bench [EXTENSIONS TENANTS PROXIES PUBLIC_PERCENT]
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_args.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: less moved by other load on the machine. */
static double cpu_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Looks up every proxy's class view in snap. Returns 0 or -1. */
static int lookup_all(struct snapshot *snap, int n_prox, int n_ten) {
  for (int i = 0; i < n_prox; i++) {
    struct proxy_id p;
    const struct xds_class *c;
    char id[32], tenant[64];
    memset(&p, 0, sizeof(p));
    snprintf(id, sizeof(id), "proxy-%d", i);
    snprintf(tenant, sizeof(tenant), "organizations/acme/tenants/t%d",
             i % n_ten);
    p.node_id = id;
    p.cluster = "";
    p.organization = "acme";
    p.tenant = tenant;
    p.mode = (i / n_ten) % 2 ? PROXY_MODE_GATEWAY : PROXY_MODE_SIDECAR;
    if (snapshot_class(snap, &p, &c) < 0)
      return -1;
  }
  return 0;
}

/* cat with extension `which` replaced by a copy with another config; every
 * other record shared. NULL on failure. */
static struct catalog *one_changed(const struct catalog *cat, size_t which) {
  struct catalog_builder *b = catalog_builder_new();
  struct catalog *out = NULL;
  struct problems pb;

  if (b == NULL)
    return NULL;
  problems_init(&pb, 100);
  for (size_t i = 0; i < catalog_ext_count(cat); i++) {
    struct wasm_ext *e = (struct wasm_ext *)catalog_ext_at(cat, i);
    if (i == which) {
      e = catalog_ext_copy(e);
      if (e == NULL)
        goto out;
      xds_free(e->config_json);
      e->config_json = xds_strdup("{\"k\":\"changed\"}");
    } else {
      e = wasm_ext_ref(e);
    }
    if (catalog_builder_add_ext(b, e, &pb) < 0)
      goto out;
  }
  for (size_t i = 0; i < catalog_tmpl_count(cat); i++)
    if (catalog_builder_add_tmpl(
            b,
            listener_tmpl_ref((struct listener_tmpl *)catalog_tmpl_at(cat, i)),
            &pb) < 0)
      goto out;
  catalog_builder_finish(b, &pb, &out);
  b = NULL;
out:
  catalog_builder_free(b);
  problems_cleanup(&pb);
  return out;
}

static const char *const phases[] = {"AUTHN", "AUTHZ", "STATS",
                                     "UNSPECIFIED_PHASE"};

int main(int argc, char **argv) {
  const char *me = "compose_bench";
  int n_ext = argc > 1 ? bench_arg_int(me, "EXTENSIONS", argv[1]) : 1000;
  int n_ten = argc > 2 ? bench_arg_int(me, "TENANTS", argv[2]) : 200;
  int n_prox = argc > 3 ? bench_arg_int(me, "PROXIES", argv[3]) : 10000;
  int public_pct = argc > 4 ? bench_arg_int(me, "PUBLIC_PCT", argv[4]) : 5;
  char dir[] = "/tmp/wasmxds-compose-bench-XXXXXX", path[256], cmd[300];
  struct catalog *cat = NULL;
  struct snapshot *snap = NULL;
  struct problems pb;
  struct encode_opts o;
  struct snapshot_stats st;
  struct xds_err err = {0, ""};
  double t0, t1, t2;
  long allocs;
  FILE *f;

  xds_log_set_level(XDS_LOG_ERROR);
  if (mkdtemp(dir) == NULL)
    return 1;
  snprintf(path, sizeof(path), "%s/store.yaml", dir);
  f = fopen(path, "w");
  srand(7);
  for (int i = 0; i < n_ext; i++) {
    fprintf(f,
            "---\napiVersion: extension.tsb.tetrate.io/v2\n"
            "kind: WasmExtension\nmetadata: {organization: acme, "
            "name: ext-%04d}\nspec:\n  url: file:///w/%d.wasm\n"
            "  phase: %s\n  priority: %d\n  config: {k: v%d, n: %d}\n",
            i, i, phases[i % 4], rand() % 1000, i, i);
    if (i % 100 >= public_pct)
      fprintf(f, "  allowedIn: [organizations/acme/tenants/t%d]\n", i % n_ten);
  }
  fprintf(f,
          "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
          "metadata: {name: in}\nspec:\n  port: 15006\n  direction: INBOUND\n"
          "  selector: {mode: SIDECAR}\n  route: {cluster: app}\n"
          "  httpFilters:\n  - {name: envoy.filters.http.router, "
          "typedConfig: {'@type': "
          "envoy.extensions.filters.http.router.v3.Router}}\n"
          "---\napiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
          "metadata: {name: out}\nspec:\n  port: 15001\n"
          "  direction: OUTBOUND\n  route: {cluster: up}\n"
          "  httpFilters:\n  - {name: envoy.filters.http.router, "
          "typedConfig: {'@type': "
          "envoy.extensions.filters.http.router.v3.Router}}\n");
  fclose(f);
  problems_init(&pb, 100);
  if (file_store_load(path, NULL, &cat, &pb, &err) < 0 || pb.n_errors > 0) {
    fprintf(stderr, "compose_bench: store: %s\n", err.msg);
    return 1;
  }
  problems_cleanup(&pb);
  encode_opts_default(&o);

  xds_alloc_fail_at(LONG_MAX); /* count allocations, fail none */
  t0 = now_ms();
  if (snapshot_build(cat, &o, 1, &snap, &err) < 0) {
    fprintf(stderr, "compose_bench: %s\n", err.msg);
    return 1;
  }
  t1 = now_ms();
  if (lookup_all(snap, n_prox, n_ten) < 0)
    return 1;
  t2 = now_ms();
  allocs = xds_alloc_fail_at(0);
  snapshot_class_stats(snap, &st);
  printf("compose_bench: %d extensions (%d%% organization-wide), %d "
         "tenants, %d proxies -> %zu classes\n",
         n_ext, public_pct, n_ten, n_prox, st.classes);
  printf("| step | wall ms |\n|---|---|\n");
  printf("| snapshot (every ECDS resource encoded) | %.1f |\n", t1 - t0);
  printf("| class views for every proxy | %.1f |\n", t2 - t1);
  printf("| total recompute | %.1f |\n", t2 - t0);
  printf("allocations: %ld (%.1f per proxy)\n", allocs,
         (double)allocs / n_prox);
  printf("encodings: %lu built, %lu reused\n", st.class_builds, st.class_hits);
  printf("bytes: ECDS %zu (%.0f per extension); listeners %zu = %.0f per "
         "class = %.1f per proxy\n",
         st.ecds_bytes, (double)st.ecds_bytes / n_ext, st.class_bytes,
         (double)st.class_bytes / (double)st.classes,
         (double)st.class_bytes / n_prox);

  /* The one-tenant change: the first extension allowed in one tenant. */
  {
    size_t which = 0;
    struct catalog *cat2;
    struct snapshot *inc = NULL, *full = NULL;
    struct snapshot_stats st2;
    double u0, u1, u2, f0, f1, f2, c0, c1, c2, c3;
    long inc_allocs;

    while (which < catalog_ext_count(cat) &&
           catalog_ext_at(cat, which)->n_allowed_in == 0)
      which++;
    if (which == catalog_ext_count(cat)) {
      fprintf(stderr, "compose_bench: no tenant's extension to change\n");
      return 1;
    }
    cat2 = one_changed(cat, which);
    if (cat2 == NULL) {
      fprintf(stderr, "compose_bench: cannot make the changed catalog\n");
      return 1;
    }
    xds_alloc_fail_at(LONG_MAX);
    c0 = cpu_ms();
    u0 = now_ms();
    if (snapshot_build_from(snap, cat2, &o, 2, &inc, &err) < 0) {
      fprintf(stderr, "compose_bench: %s\n", err.msg);
      return 1;
    }
    u1 = now_ms();
    if (lookup_all(inc, n_prox, n_ten) < 0)
      return 1;
    u2 = now_ms();
    c1 = cpu_ms();
    inc_allocs = xds_alloc_fail_at(0);
    snapshot_class_stats(inc, &st2);
    c2 = cpu_ms();
    f0 = now_ms();
    if (snapshot_build(cat2, &o, 2, &full, &err) < 0) {
      fprintf(stderr, "compose_bench: %s\n", err.msg);
      return 1;
    }
    f1 = now_ms();
    if (lookup_all(full, n_prox, n_ten) < 0)
      return 1;
    f2 = now_ms();
    c3 = cpu_ms();
    printf("one-tenant change (%s, allowed in %s):\n",
           catalog_ext_at(cat2, which)->fqn,
           catalog_ext_at(cat2, which)->allowed_in[0]);
    printf("| step | incremental ms | from scratch ms |\n|---|---|---|\n");
    printf("| snapshot | %.2f | %.2f |\n", u1 - u0, f1 - f0);
    printf("| class views for every proxy | %.2f | %.2f |\n", u2 - u1, f2 - f1);
    printf("| total recompute | %.2f | %.2f |\n", u2 - u0, f2 - f0);
    printf("| total recompute, CPU ms | %.2f | %.2f |\n", c1 - c0, c3 - c2);
    printf("incremental: %lu class views built, %lu taken over, %zu of %zu "
           "ECDS encodings shared, %ld allocations\n",
           st2.class_builds, st2.class_carried, st2.ecds_shared, st2.ecds,
           inc_allocs);
    snapshot_unref(inc);
    snapshot_unref(full);
    catalog_unref(cat2);
  }
  snapshot_unref(snap);
  catalog_unref(cat);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}
