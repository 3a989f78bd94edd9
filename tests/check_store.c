/*
 * check_store.c: the file store end to end: decoding and validation of
 * both kinds (every field), the table of bad inputs with their exact
 * location, path and reason, directory walking, duplicates, port
 * conflicts, the catalog, and last-good retention on reload.
 *
 * Tests write their documents into a fresh temporary directory and load it
 * through file_store_load(), the same path the server takes.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/catalog.h"
#include "store/decode.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "store/ydoc.h"
#include "tests/testkit.h"

#ifndef XDS_TEST_DATA
#error "XDS_TEST_DATA must name the tests/data directory"
#endif

#define STORE_DATA XDS_TEST_DATA "/store"

/* ---- helpers ---- */

static char tmpdir[256];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_store.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  tk_rm_tree(tmpdir);
}

/* Writes text to tmpdir/rel (creating parent directories); returns the
 * full path in a static buffer. */
static const char *put(const char *rel, const char *text) {
  static char path[512];
  char dir[512];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
  for (char *s = strchr(path + strlen(tmpdir) + 1, '/'); s != NULL;
       s = strchr(s + 1, '/')) {
    snprintf(dir, sizeof(dir), "%.*s", (int)(s - path), path);
    mkdir(dir, 0755);
  }
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static const char *at(const char *rel) {
  static char path[512];

  snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
  return path;
}

static void dump(const struct problems *pb) {
  struct xds_buf b;

  xds_buf_init(&b, 1 << 20);
  for (size_t i = 0; i < problems_count(pb); i++)
    problem_format(problems_at(pb, i), &b);
  if (b.data != NULL)
    fprintf(stderr, "%s", b.data);
  xds_buf_cleanup(&b);
}

static struct catalog *load(const char *path, const struct catalog *prev,
                            struct problems *pb) {
  struct catalog *c = NULL;
  struct xds_err err;
  int rc;

  rc = file_store_load(path, prev, &c, pb, &err);
  if (rc != 0)
    fprintf(stderr, "load: %s\n", err.msg);
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_nonnull(c);
  return c;
}

/* Loads tmpdir afresh into a new catalog, its problems (pb initialised
 * here, as problems_init(pb, 100)) also on stderr. */
static struct catalog *load_tmpdir(struct problems *pb) {
  struct catalog *c;

  problems_init(pb, 100);
  c = load(tmpdir, NULL, pb);
  dump(pb);
  return c;
}

/* The first problem whose message contains needle, or NULL. */
static const struct problem *find_problem(const struct problems *pb,
                                          const char *needle) {
  for (size_t i = 0; i < problems_count(pb); i++)
    if (strstr(problems_at(pb, i)->msg, needle) != NULL)
      return problems_at(pb, i);
  return NULL;
}

#define EXT_API "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmExtension\n"
#define TMPL_API "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
#define ROUTER_TYPE "envoy.extensions.filters.http.router.v3.Router"

/* Valid documents that sit next to each bad one: they must still load. */
#define NEIGHBOURS                                                             \
  "---\n" EXT_API "metadata: {organization: acme, name: neighbour}\n"          \
  "spec: {url: oci://r.example/n:1}\n"                                         \
  "---\n" TMPL_API "metadata: {name: neighbour}\n"                             \
  "spec:\n"                                                                    \
  "  port: 9999\n"                                                             \
  "  direction: INBOUND\n"                                                     \
  "  route: {cluster: c}\n"                                                    \
  "  httpFilters:\n"                                                           \
  "  - name: router\n"                                                         \
  "    typedConfig: {'@type': " ROUTER_TYPE "}\n"

/* ---- the table of bad inputs ---- */

/* Lines 1-3 of a bad extension; spec follows on line 4. */
#define K50 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define EXT_HEAD EXT_API "metadata: {organization: acme, name: bad}\n"
/* Lines 1-4 of a bad template; spec fields follow from line 5. */
#define TMPL_HEAD TMPL_API "metadata: {name: bad}\nspec:\n"
#define T_PORT "  port: 8080\n"
#define T_DIR "  direction: INBOUND\n"
#define T_ROUTE "  route: {cluster: c}\n"
#define T_ROUTER                                                               \
  "  httpFilters:\n"                                                           \
  "  - name: router\n"                                                         \
  "    typedConfig: {'@type': " ROUTER_TYPE "}\n"
#define T_ROUTER_ITEM                                                          \
  "  - name: router\n"                                                         \
  "    typedConfig: {'@type': " ROUTER_TYPE "}\n"
#define LUA_FILTER(name)                                                       \
  "  - name: " name "\n"                                                       \
  "    typedConfig: {'@type': envoy.extensions.filters.http.lua.v3.Lua}\n"

struct bad_case {
  const char *name;
  const char *doc; /* the bad document, first in its file */
  int line;
  int column;
  const char *path;
  const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"unknown top-level field", EXT_HEAD "spec: {url: x}\nstate: {}\n", 5, 1,
     "state", "unknown field \"state\""},
    {"unknown spec field", EXT_HEAD "spec:\n  url: x\n  foo: 1\n", 6, 3,
     "spec.foo", "unknown field \"foo\""},
    {"unknown metadata field",
     EXT_API "metadata: {organization: acme, name: bad, labels: {}}\n"
             "spec: {url: x}\n",
     3, 43, "metadata.labels", "unknown field \"labels\""},
    {"missing organization", EXT_API "metadata: {name: bad}\nspec: {url: x}\n",
     3, 11, "metadata.organization", "missing required field \"organization\""},
    {"missing metadata", EXT_API "spec: {url: x}\n", 1, 1, "metadata",
     "missing required field \"metadata\""},
    {"invalid metadata.name",
     EXT_API "metadata: {organization: acme, name: 'bad name'}\n"
             "spec: {url: x}\n",
     3, 38, "metadata.name",
     "\"bad name\" is not a valid name: use 1 to 253 letters, digits, '-', "
     "'_' or '.', starting with a letter or digit"},
    {"missing url and image", EXT_HEAD "spec: {phase: AUTHN}\n", 4, 7,
     "spec.url",
     "missing required field \"url\" (or the deprecated \"image\")"},
    {"missing spec", EXT_HEAD, 1, 1, "spec", "missing required field \"spec\""},
    {"spec not a mapping", EXT_HEAD "spec: [1]\n", 4, 7, "spec",
     "expected a mapping, got a sequence"},
    {"url scheme not allowed", EXT_HEAD "spec:\n  url: ftp://x/y\n", 5, 8,
     "spec.url", "\"ftp://x/y\" does not match ^(oci|https?|file)://"},
    {"url scheme upper case", EXT_HEAD "spec:\n  url: HTTPS://x/y\n", 5, 8,
     "spec.url", "\"HTTPS://x/y\" does not match ^(oci|https?|file)://"},
    {"file url not absolute", EXT_HEAD "spec:\n  url: file://etc/a.wasm\n", 5,
     8, "spec.url",
     "\"file://etc/a.wasm\": a file:// url needs an absolute path "
     "(file:///path/to/module.wasm)"},
    {"url with whitespace", EXT_HEAD "spec:\n  url: 'oci://a b'\n", 5, 8,
     "spec.url", "\"oci://a b\" must not contain whitespace"},
    {"url not a string", EXT_HEAD "spec:\n  url: {a: 1}\n", 5, 8, "spec.url",
     "expected a string, got a mapping"},
    {"bad phase", EXT_HEAD "spec:\n  url: x\n  phase: AUTHORIZATION\n", 6, 10,
     "spec.phase",
     "\"AUTHORIZATION\" is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS"},
    {"priority over int32",
     EXT_HEAD "spec:\n  url: x\n  priority: 2147483648\n", 6, 13,
     "spec.priority",
     "2147483648 is out of range (int32: -2147483648..2147483647)"},
    {"priority under int32",
     EXT_HEAD "spec:\n  url: x\n  priority: -2147483649\n", 6, 13,
     "spec.priority",
     "-2147483649 is out of range (int32: -2147483648..2147483647)"},
    {"priority quoted", EXT_HEAD "spec:\n  url: x\n  priority: \"10\"\n", 6, 13,
     "spec.priority", "expected an integer, got a string"},
    {"priority float", EXT_HEAD "spec:\n  url: x\n  priority: 1.5\n", 6, 13,
     "spec.priority", "expected an integer, got a number"},
    {"bad imagePullPolicy",
     EXT_HEAD "spec:\n  url: x\n  imagePullPolicy: Never\n", 6, 20,
     "spec.imagePullPolicy",
     "\"Never\" is not one of UNSPECIFIED_POLICY, IfNotPresent, Always"},
    {"config not a mapping", EXT_HEAD "spec:\n  url: x\n  config: [1, 2]\n", 6,
     11, "spec.config", "expected a mapping, got a sequence"},
    {"config with infinity",
     EXT_HEAD "spec:\n  url: x\n  config:\n    ratio: .inf\n", 7, 12,
     "spec.config", "infinity and NaN have no JSON form (.inf) in config"},
    {"config with unknown tag",
     EXT_HEAD "spec:\n  url: x\n  config:\n    a: !custom 1\n", 7, 8,
     "spec.config", "a value of an unsupported tag (1) in config"},
    {"env name pattern",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env:\n    - name: 1ABC\n", 8,
     13, "spec.vmConfig.env[0].name",
     "\"1ABC\" does not match [A-Za-z_][A-Za-z0-9_]*"},
    {"env duplicate name",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env:\n"
              "    - {name: A, value: '1'}\n    - {name: A, value: '2'}\n",
     9, 14, "spec.vmConfig.env[1].name",
     "duplicate env name \"A\" (first at line 8)"},
    {"env bad valueFrom",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env:\n"
              "    - {name: A, valueFrom: ENV}\n",
     8, 28, "spec.vmConfig.env[0].valueFrom",
     "\"ENV\" is not one of INLINE, HOST"},
    {"env missing name",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env:\n    - {value: x}\n", 8,
     7, "spec.vmConfig.env[0].name", "missing required field \"name\""},
    {"env value not a string",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env:\n"
              "    - {name: PORT, value: 8080}\n",
     8, 27, "spec.vmConfig.env[0].value",
     "expected a string, got an integer (quote it to make it a string)"},
    {"env unknown field",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env:\n"
              "    - {name: A, secret: x}\n",
     8, 17, "spec.vmConfig.env[0].secret", "unknown field \"secret\""},
    {"env not a sequence",
     EXT_HEAD "spec:\n  url: x\n  vmConfig:\n    env: {A: b}\n", 7, 10,
     "spec.vmConfig.env", "expected a sequence, got a mapping"},
    {"vmConfig unknown field",
     EXT_HEAD "spec:\n  url: x\n  vmConfig: {memory: 1}\n", 6, 14,
     "spec.vmConfig.memory", "unknown field \"memory\""},
    {"bad runtime", EXT_HEAD "spec:\n  url: x\n  vmConfig: {runtime: v8}\n", 6,
     23, "spec.vmConfig.runtime",
     "\"v8\" is not one of envoy.wasm.runtime.v8, envoy.wasm.runtime.wamr, "
     "envoy.wasm.runtime.wasmtime, envoy.wasm.runtime.null, "
     "envoy.wasm.runtime.wavm"},
    {"bad match mode", EXT_HEAD "spec:\n  url: x\n  match: {mode: BOTH}\n", 6,
     17, "spec.match.mode",
     "\"BOTH\" is not one of CLIENT_AND_SERVER, CLIENT, SERVER"},
    {"bad failStrategy",
     EXT_HEAD "spec:\n  url: x\n  failStrategy: FAIL_CLOSED\n", 6, 17,
     "spec.failStrategy",
     "\"FAIL_CLOSED\" is not one of FAIL_CLOSE, FAIL_OPEN"},
    {"short sha256", EXT_HEAD "spec:\n  url: x\n  sha256: abc123\n", 6, 11,
     "spec.sha256",
     "\"abc123\" is not a sha256: expected 64 hexadecimal digits"},
    {"sha256 not hex",
     EXT_HEAD "spec:\n  url: x\n  sha256: "
              "g0000000000000000000000000000000"
              "00000000000000000000000000000000\n",
     6, 11, "spec.sha256",
     "\"g000000000000000000000000000000000000000000000000000000000000000\" "
     "is not a sha256: expected 64 hexadecimal digits"},
    {"allowedIn empty item", EXT_HEAD "spec:\n  url: x\n  allowedIn: ['']\n", 6,
     15, "spec.allowedIn[0]", "must not be empty"},
    {"allowedIn not a tenant fqn",
     EXT_HEAD "spec:\n  url: x\n  allowedIn: [tenant1]\n", 6, 15,
     "spec.allowedIn[0]",
     "\"tenant1\" is not a tenant fqn of the form "
     "organizations/<org>/tenants/<tenant>"},
    {"allowedIn other organization",
     EXT_HEAD "spec:\n  url: x\n  allowedIn:\n"
              "  - organizations/acme/tenants/a\n"
              "  - organizations/other/tenants/b\n",
     8, 5, "spec.allowedIn[1]",
     "tenant \"organizations/other/tenants/b\" is not in organization "
     "\"acme\""},
    {"allowedIn not a sequence",
     EXT_HEAD "spec:\n  url: x\n  allowedIn: organizations/acme/tenants/a\n", 6,
     14, "spec.allowedIn", "expected a sequence, got a string"},
    {"description not a string",
     EXT_HEAD "spec:\n  url: x\n  description: {a: 1}\n", 6, 16,
     "spec.description", "expected a string, got a mapping"},
    {"pluginName not a string", EXT_HEAD "spec:\n  url: x\n  pluginName: 42\n",
     6, 15, "spec.pluginName",
     "expected a string, got an integer (quote it to make it a string)"},
    /* A field path longer than PROBLEMS_PATH_MAX - 1 bytes is cut. */
    {"long field path cut",
     EXT_HEAD "spec:\n  url: x\n  " K50 K50 K50 K50 K50 K50 ": 1\n", 6, 3,
     "spec." K50 K50 K50 K50 K50,
     "unknown field \"" K50 K50 K50 K50 K50 K50 "\""},
    {"duplicate mapping key", EXT_HEAD "spec:\n  url: x\n  url: y\n", 6, 3, "",
     "duplicate key \"url\" (first at line 5, column 3)"},
    {"unsupported kind",
     "apiVersion: extension.tsb.tetrate.io/v2\nkind: WasmPlugin\n"
     "metadata: {name: x}\n",
     2, 7, "kind",
     "unsupported resource extension.tsb.tetrate.io/v2 WasmPlugin: expected "
     "extension.tsb.tetrate.io/v2 WasmExtension, wasmxds.io/v1 "
     "ListenerTemplate, extensions.istio.io/v1alpha1 WasmPlugin or "
     "networking.enterprise.mesh.gloo.solo.io/v1beta1 WasmDeployment"},
    {"unsupported apiVersion",
     "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\n", 1, 13,
     "apiVersion",
     "unsupported resource networking.istio.io/v1alpha3 EnvoyFilter: "
     "expected extension.tsb.tetrate.io/v2 WasmExtension, wasmxds.io/v1 "
     "ListenerTemplate, extensions.istio.io/v1alpha1 WasmPlugin or "
     "networking.enterprise.mesh.gloo.solo.io/v1beta1 WasmDeployment"},
    {"missing kind", "apiVersion: wasmxds.io/v1\nmetadata: {name: x}\n", 1, 1,
     "kind", "missing required field \"kind\""},
    {"document is a sequence", "- a\n- b\n", 1, 1, "",
     "expected a mapping, got a sequence"},
    /* ListenerTemplate */
    {"template missing port", TMPL_HEAD T_DIR T_ROUTE T_ROUTER, 5, 3,
     "spec.port", "missing required field \"port\""},
    {"template port 0", TMPL_HEAD "  port: 0\n" T_DIR T_ROUTE T_ROUTER, 5, 9,
     "spec.port", "0 is out of range (1..65535)"},
    {"template port too big",
     TMPL_HEAD "  port: 70000\n" T_DIR T_ROUTE T_ROUTER, 5, 9, "spec.port",
     "70000 is out of range (1..65535)"},
    {"template port quoted", TMPL_HEAD "  port: '80'\n" T_DIR T_ROUTE T_ROUTER,
     5, 9, "spec.port", "expected an integer, got a string"},
    {"template missing direction", TMPL_HEAD T_PORT T_ROUTE T_ROUTER, 5, 3,
     "spec.direction",
     "missing required field \"direction\" (INBOUND or OUTBOUND)"},
    {"template bad direction",
     TMPL_HEAD T_PORT "  direction: IN\n" T_ROUTE T_ROUTER, 6, 14,
     "spec.direction", "\"IN\" is not one of INBOUND, OUTBOUND"},
    {"template bad address",
     TMPL_HEAD "  address: localhost\n" T_PORT T_DIR T_ROUTE T_ROUTER, 5, 12,
     "spec.address", "\"localhost\" is not an IPv4 or IPv6 address"},
    {"template route with cluster and rds",
     TMPL_HEAD T_PORT T_DIR "  route: {cluster: c, rds: r}\n" T_ROUTER, 7, 10,
     "spec.route", "set exactly one of \"cluster\" or \"rds\""},
    {"template route with neither",
     TMPL_HEAD T_PORT T_DIR "  route: {prefix: /}\n" T_ROUTER, 7, 10,
     "spec.route", "set exactly one of \"cluster\" or \"rds\""},
    {"template prefix with rds",
     TMPL_HEAD T_PORT T_DIR
     "  route: {rds: r, rdsCluster: x, prefix: /api}\n" T_ROUTER,
     7, 42, "spec.route.prefix",
     "\"prefix\" applies to cluster routes only; an RDS route config has "
     "its own routes"},
    {"template rds without rdsCluster",
     TMPL_HEAD T_PORT T_DIR "  route: {rds: r}\n" T_ROUTER, 7, 10, "spec.route",
     "\"rds\" needs \"rdsCluster\": the bootstrap cluster of the xDS server "
     "that serves route configurations (wasmxds does not serve RDS)"},
    {"template rdsCluster on a cluster route",
     TMPL_HEAD T_PORT T_DIR "  route: {cluster: c, rdsCluster: x}\n" T_ROUTER,
     7, 35, "spec.route.rdsCluster",
     "applies to RDS routes only (set with \"rds\")"},
    {"template bad rdsApiType",
     TMPL_HEAD T_PORT T_DIR
     "  route: {rds: r, rdsCluster: x, rdsApiType: REST}\n" T_ROUTER,
     7, 46, "spec.route.rdsApiType", "\"REST\" is not one of GRPC, DELTA_GRPC"},
    {"template empty rdsCluster",
     TMPL_HEAD T_PORT T_DIR "  route: {rds: r, rdsCluster: ''}\n" T_ROUTER, 7,
     31, "spec.route.rdsCluster", "must not be empty"},
    {"template prefix without slash",
     TMPL_HEAD T_PORT T_DIR "  route: {cluster: c, prefix: api}\n" T_ROUTER, 7,
     31, "spec.route.prefix", "\"api\" must start with '/'"},
    {"template missing route", TMPL_HEAD T_PORT T_DIR T_ROUTER, 5, 3,
     "spec.route", "missing required field \"route\" (set cluster or rds)"},
    {"template without router",
     TMPL_HEAD T_PORT T_DIR T_ROUTE "  httpFilters:\n" LUA_FILTER("lua"), 9, 3,
     "spec.httpFilters",
     "no router filter (" ROUTER_TYPE "): the router must be the last HTTP "
     "filter"},
    {"template filter after router",
     TMPL_HEAD T_PORT T_DIR T_ROUTE T_ROUTER LUA_FILTER("lua"), 11, 5,
     "spec.httpFilters[1]",
     "filter after the router (line 9): the router must be the last HTTP "
     "filter"},
    {"template duplicate filter name",
     TMPL_HEAD T_PORT T_DIR T_ROUTE "  httpFilters:\n" LUA_FILTER("f")
         LUA_FILTER("f") T_ROUTER_ITEM,
     11, 11, "spec.httpFilters[1].name",
     "duplicate filter name \"f\" (first at line 9)"},
    {"template filter without @type",
     TMPL_HEAD T_PORT T_DIR T_ROUTE
     "  httpFilters:\n"
     "  - name: lua\n    typedConfig: {inline_code: x}\n" T_ROUTER_ITEM,
     10, 18, "spec.httpFilters[0].typedConfig.@type",
     "missing required field \"@type\""},
    {"template filter without typedConfig",
     TMPL_HEAD T_PORT T_DIR T_ROUTE
     "  httpFilters:\n  - name: lua\n" T_ROUTER_ITEM,
     9, 5, "spec.httpFilters[0].typedConfig",
     "missing required field \"typedConfig\""},
    {"template filter bad @type",
     TMPL_HEAD T_PORT T_DIR T_ROUTE
     "  httpFilters:\n"
     "  - name: lua\n    typedConfig: {'@type': 'not a type'}\n" T_ROUTER_ITEM,
     10, 28, "spec.httpFilters[0].typedConfig.@type",
     "\"not a type\" is not a type URL "
     "(type.googleapis.com/<package>.<Message>) or a message name"},
    {"template filter bad phase",
     TMPL_HEAD T_PORT T_DIR T_ROUTE
     "  httpFilters:\n"
     "  - name: lua\n    phase: ROUTING\n"
     "    typedConfig: {'@type': "
     "envoy.extensions.filters.http.lua.v3.Lua}\n" T_ROUTER_ITEM,
     10, 12, "spec.httpFilters[0].phase",
     "\"ROUTING\" is not one of AUTHN, AUTHZ, STATS"},
    {"template selector bad mode",
     TMPL_HEAD T_PORT T_DIR "  selector: {mode: POD}\n" T_ROUTE T_ROUTER, 7, 20,
     "spec.selector.mode", "\"POD\" is not one of SIDECAR, GATEWAY"},
    {"template label value not a string",
     TMPL_HEAD T_PORT T_DIR
     "  selector: {labels: {version: 2}}\n" T_ROUTE T_ROUTER,
     7, 32, "spec.selector.labels.version",
     "expected a string, got an integer (quote it to make it a string)"},
    {"template selector unknown field",
     TMPL_HEAD T_PORT T_DIR "  selector: {namespace: x}\n" T_ROUTE T_ROUTER, 7,
     14, "spec.selector.namespace", "unknown field \"namespace\""},
    {"template unknown spec field",
     TMPL_HEAD T_PORT "  ports: [80]\n" T_DIR T_ROUTE T_ROUTER, 6, 3,
     "spec.ports", "unknown field \"ports\""},
    {"template missing httpFilters", TMPL_HEAD T_PORT T_DIR T_ROUTE, 5, 3,
     "spec.httpFilters",
     "missing required field \"httpFilters\": the router filter (" ROUTER_TYPE
     ") must be the last filter"},
    {"template missing name",
     TMPL_API "metadata: {}\nspec:\n" T_PORT T_DIR T_ROUTE T_ROUTER, 3, 11,
     "metadata.name", "missing required field \"name\""},
};

START_TEST(bad_input_is_located_and_neighbours_load) {
  const struct bad_case *bc = &bad_cases[_i];
  char *text, where[512];
  struct problems pb;
  struct catalog *c;
  const struct problem *pr = NULL;
  size_t n_errors = 0;

  make_tmpdir();
  text = xds_asprintf("%s%s", bc->doc, NEIGHBOURS);
  put("case.yaml", text);
  xds_free(text);
  problems_init(&pb, 100);
  c = load(tmpdir, NULL, &pb);
  for (size_t i = 0; i < problems_count(&pb); i++)
    if (problems_at(&pb, i)->severity == PROBLEM_ERROR) {
      pr = problems_at(&pb, i);
      n_errors++;
    }
  if (n_errors != 1 || pr == NULL || pr->line != bc->line ||
      pr->column != bc->column || strcmp(pr->path, bc->path) != 0 ||
      strcmp(pr->msg, bc->msg) != 0) {
    fprintf(stderr, "case \"%s\":\n", bc->name);
    dump(&pb);
  }
  ck_assert_uint_eq(n_errors, 1);
  snprintf(where, sizeof(where), "%s/case.yaml:%d:%d", tmpdir, bc->line,
           bc->column);
  ck_assert_str_eq(pr->where, where);
  ck_assert_str_eq(pr->path, bc->path);
  ck_assert_str_eq(pr->msg, bc->msg);
  /* The good neighbours in the same file are served. */
  ck_assert_ptr_nonnull(
      catalog_ext_find(c, "organizations/acme/extensions/neighbour"));
  ck_assert_ptr_nonnull(catalog_tmpl_find(c, "neighbour"));
  ck_assert_uint_eq(catalog_ext_count(c) + catalog_tmpl_count(c), 2);
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(all_errors_of_a_document_are_reported) {
  struct problems pb;
  struct catalog *c;

  make_tmpdir();
  put("many.yaml", EXT_HEAD "spec:\n"
                            "  url: ftp://x\n"
                            "  phase: NOPE\n"
                            "  priority: x\n"
                            "  bogus: 1\n"
                            "  sha256: zz\n");
  problems_init(&pb, 100);
  c = load(tmpdir, NULL, &pb);
  ck_assert_uint_eq(pb.n_errors, 5);
  ck_assert_uint_eq(catalog_ext_count(c), 0);
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

/* ---- round trips ---- */

START_TEST(wasm_extension_every_field) {
  struct problems pb;
  struct catalog *c;
  const struct wasm_ext *e, *d;

  problems_init(&pb, 100);
  c = load(STORE_DATA "/roundtrip", NULL, &pb);
  dump(&pb);
  ck_assert_uint_eq(pb.n_errors, 0);
  e = catalog_ext_find(c, "organizations/acme/extensions/full");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq(e->organization, "acme");
  ck_assert_str_eq(e->name, "full");
  ck_assert_uint_eq(e->n_allowed_in, 2);
  ck_assert_str_eq(e->allowed_in[0], "organizations/acme/tenants/payments");
  ck_assert_str_eq(e->allowed_in[1], "organizations/acme/tenants/web");
  ck_assert_str_eq(e->url, "https://downloads.example/full.wasm");
  ck_assert_int_eq(e->scheme, WASM_URL_HTTPS);
  ck_assert_str_eq(e->source, "https://github.com/acme/full");
  ck_assert_str_eq(e->description, "Every field set.");
  ck_assert_int_eq(e->phase, WASM_PHASE_AUTHZ);
  ck_assert_int_eq(e->priority, -42);
  ck_assert_str_eq(e->config_json,
                   "{\"z\":1,\"a\":\"two\",\"list\":[true,null,1.5],"
                   "\"nested\":{\"k\":\"v\"}}");
  ck_assert_int_eq(e->pull_policy, WASM_PULL_ALWAYS);
  ck_assert_str_eq(e->pull_secret, "regcred");
  ck_assert_uint_eq(e->n_env, 3);
  ck_assert_str_eq(e->env[0].name, "LOG_LEVEL");
  ck_assert_int_eq(e->env[0].from, WASM_ENV_INLINE);
  ck_assert_str_eq(e->env[0].value, "debug");
  ck_assert_str_eq(e->env[1].name, "HOSTNAME");
  ck_assert_int_eq(e->env[1].from, WASM_ENV_HOST);
  ck_assert_ptr_null(e->env[1].value);
  ck_assert_str_eq(e->env[2].name, "_EMPTY");
  ck_assert_str_eq(e->env[2].value, "");
  ck_assert_str_eq(e->vm_id, "shared-vm");
  ck_assert_str_eq(e->runtime, "envoy.wasm.runtime.wasmtime");
  ck_assert_int_eq(e->match_mode, WASM_MATCH_SERVER);
  ck_assert_str_eq(e->plugin_name, "full_root");
  ck_assert_int_eq(e->fail_strategy, WASM_FAIL_OPEN);
  ck_assert_str_eq(e->sha256, "0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef");
  ck_assert_str_eq(e->loc.source, STORE_DATA "/roundtrip/full.yaml");
  ck_assert_int_eq(e->loc.line, 3);
  ck_assert_int_eq(e->loc.column, 1);

  /* Defaults, a bare url, and the deprecated image. */
  d = catalog_ext_find(c, "organizations/acme/extensions/defaults");
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(d->url, "oci://registry.example/defaults:1");
  ck_assert_int_eq(d->scheme, WASM_URL_OCI);
  ck_assert_uint_eq(d->n_allowed_in, 0);
  ck_assert_int_eq(d->phase, WASM_PHASE_UNSPECIFIED);
  ck_assert_int_eq(d->priority, 0);
  ck_assert_ptr_null(d->config_json);
  ck_assert_int_eq(d->pull_policy, WASM_PULL_UNSPECIFIED);
  ck_assert_int_eq(d->match_mode, WASM_MATCH_CLIENT_AND_SERVER);
  ck_assert_int_eq(d->fail_strategy, WASM_FAIL_CLOSE);
  ck_assert_ptr_null(d->source);
  ck_assert_ptr_null(d->description);
  ck_assert_ptr_null(d->pull_secret);
  ck_assert_ptr_null(d->plugin_name);
  ck_assert_ptr_null(d->vm_id);
  ck_assert_ptr_null(d->runtime);
  ck_assert_ptr_null(d->sha256);
  ck_assert_uint_eq(d->n_env, 0);

  d = catalog_ext_find(c, "organizations/acme/extensions/old-image");
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(d->url, "oci://registry.example/old:2");
  ck_assert_ptr_nonnull(find_problem(&pb, "spec.image is deprecated; use"));
  ck_assert_int_eq(find_problem(&pb, "spec.image is deprecated; use")->severity,
                   PROBLEM_WARNING);
  d = catalog_ext_find(c, "organizations/acme/extensions/file-module");
  ck_assert_ptr_nonnull(d);
  ck_assert_int_eq(d->scheme, WASM_URL_FILE);
  ck_assert_int_eq(d->match_mode, WASM_MATCH_CLIENT);
  ck_assert_int_eq(d->phase, WASM_PHASE_STATS);
  ck_assert_str_eq(d->runtime, "envoy.wasm.runtime.v8");
  catalog_unref(c);
  problems_cleanup(&pb);
}
END_TEST

START_TEST(listener_template_every_field) {
  struct problems pb;
  struct catalog *c;
  const struct listener_tmpl *t;
  const struct native_filter *f;

  problems_init(&pb, 100);
  c = load(STORE_DATA "/roundtrip", NULL, &pb);
  ck_assert_uint_eq(pb.n_errors, 0);
  t = catalog_tmpl_find(c, "full");
  ck_assert_ptr_nonnull(t);
  ck_assert_str_eq(t->address, "::1");
  ck_assert_uint_eq(t->port, 8443);
  ck_assert_int_eq(t->direction, TMPL_OUTBOUND);
  ck_assert_int_eq(t->has_mode, 1);
  ck_assert_int_eq(t->mode, PROXY_MODE_GATEWAY);
  ck_assert_uint_eq(t->n_labels, 2);
  ck_assert_str_eq(t->labels[0].key, "app"); /* sorted by key */
  ck_assert_str_eq(t->labels[0].value, "shop");
  ck_assert_str_eq(t->labels[1].key, "zone");
  ck_assert_str_eq(t->labels[1].value, "eu-1");
  ck_assert_str_eq(t->stat_prefix, "edge");
  ck_assert_int_eq(t->route_kind, TMPL_ROUTE_RDS);
  ck_assert_str_eq(t->rds_name, "edge-routes");
  ck_assert_str_eq(t->rds_cluster, "route-server");
  ck_assert_int_eq(t->rds_api, TMPL_RDS_DELTA_GRPC);
  ck_assert_ptr_null(t->route_cluster);
  ck_assert_uint_eq(t->n_filters, 3);
  f = &t->filters[0];
  ck_assert_str_eq(f->name, "envoy.filters.http.rbac");
  ck_assert_int_eq(f->anchor, WASM_PHASE_AUTHZ);
  ck_assert_str_eq(f->type_url,
                   "type.googleapis.com/envoy.extensions.filters.http.rbac."
                   "v3.RBAC");
  ck_assert_int_eq(f->is_router, 0);
  ck_assert_int_eq(ynode_kind(f->typed_config), YNODE_MAPPING);
  ck_assert_str_eq(ynode_text(ynode_map_get(f->typed_config, "@type"), NULL),
                   "envoy.extensions.filters.http.rbac.v3.RBAC");
  ck_assert_ptr_nonnull(ynode_map_get(f->typed_config, "rules"));
  ck_assert_int_eq(f->loc.line, 22);
  f = &t->filters[1];
  ck_assert_int_eq(f->anchor, WASM_PHASE_STATS);
  ck_assert_int_eq(f->anchor == WASM_PHASE_STATS, 1);
  f = &t->filters[2];
  ck_assert_int_eq(f->anchor, WASM_PHASE_UNSPECIFIED);
  ck_assert_int_eq(f->is_router, 1);
  ck_assert_str_eq(f->type_url, "type.googleapis.com/" ROUTER_TYPE);

  t = catalog_tmpl_find(c, "minimal");
  ck_assert_ptr_nonnull(t);
  ck_assert_str_eq(t->address, "0.0.0.0");
  ck_assert_int_eq(t->direction, TMPL_INBOUND);
  ck_assert_int_eq(t->has_mode, 0);
  ck_assert_uint_eq(t->n_labels, 0);
  ck_assert_str_eq(t->stat_prefix, "minimal");
  ck_assert_int_eq(t->route_kind, TMPL_ROUTE_CLUSTER);
  ck_assert_str_eq(t->route_cluster, "local_app");
  ck_assert_str_eq(t->route_prefix, "/");
  ck_assert_ptr_null(t->rds_name);
  ck_assert_ptr_null(t->rds_cluster);
  ck_assert_uint_eq(t->n_filters, 1);
  ck_assert_int_eq(t->filters[0].is_router, 1);
  catalog_unref(c);
  problems_cleanup(&pb);
}
END_TEST

START_TEST(config_json_follows_yaml_core_schema) {
  struct problems pb;
  struct catalog *c;
  const struct wasm_ext *e;

  make_tmpdir();
  put("cfg.yaml", EXT_HEAD "spec:\n"
                           "  url: x\n"
                           "  config:\n"
                           "    quoted: \"123\"\n"
                           "    int: 123\n"
                           "    neg: -007\n"
                           "    plus: +5\n"
                           "    octal: 0o17\n"
                           "    hex: 0x1F\n"
                           "    big: 123456789012345678901234567890\n"
                           "    float: 1.50\n"
                           "    exp: 1e3\n"
                           "    dot: .5\n"
                           "    yes11: yes\n"
                           "    bools: [true, False, TRUE]\n"
                           "    nulls: [~, null, '', !!str null]\n"
                           "    empty:\n"
                           "    tagged: !!int \"42\"\n"
                           "    block: |\n"
                           "      line \"one\"\n"
                           "      tab\there\n"
                           "    utf8: h\xc3\xa9llo\n"
                           "    1: numeric key\n"
                           "    z: {b: 1, a: 2}\n");
  c = load_tmpdir(&pb);
  e = catalog_ext_find(c, "organizations/acme/extensions/bad");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq(
      e->config_json,
      "{\"quoted\":\"123\",\"int\":123,\"neg\":-7,\"plus\":5,\"octal\":15,"
      "\"hex\":31,\"big\":123456789012345678901234567890,\"float\":1.5,"
      "\"exp\":1000.0,\"dot\":0.5,\"yes11\":\"yes\","
      "\"bools\":[true,false,true],\"nulls\":[null,null,\"\",\"null\"],"
      "\"empty\":null,\"tagged\":42,"
      "\"block\":\"line \\\"one\\\"\\ntab\\there\\n\","
      "\"utf8\":\"h\xc3\xa9llo\",\"1\":\"numeric key\","
      "\"z\":{\"b\":1,\"a\":2}}");
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(json_and_flow_documents_load) {
  struct problems pb;
  struct catalog *c;
  const struct wasm_ext *e;

  make_tmpdir();
  put("ext.yaml",
      "{\"apiVersion\": \"extension.tsb.tetrate.io/v2\",\n"
      " \"kind\": \"WasmExtension\",\n"
      " \"metadata\": {\"organization\": \"acme\", \"name\": \"json\"},\n"
      " \"spec\": {\"url\": \"oci://r/j:1\", \"priority\": 7,\n"
      "          \"config\": {\"n\": 1.0, \"s\": \"1\"}}}\n");
  c = load_tmpdir(&pb);
  ck_assert_uint_eq(pb.n_errors, 0);
  e = catalog_ext_find(c, "organizations/acme/extensions/json");
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->priority, 7);
  ck_assert_str_eq(e->config_json, "{\"n\":1.0,\"s\":\"1\"}");
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(anchors_and_merge_keys_in_resources) {
  struct problems pb;
  struct catalog *c;
  const struct wasm_ext *a, *b;

  make_tmpdir();
  put("anchors.yaml",
      EXT_API "metadata: {organization: acme, name: a}\n"
              "spec: &base\n"
              "  url: oci://r/a:1\n"
              "  phase: AUTHZ\n"
              "  config: &cfg {level: 3}\n"
              "---\n" EXT_API "metadata: {organization: acme, name: b}\n"
              "spec:\n"
              "  <<: *base\n"
              "  phase: STATS\n"
              "  config: *cfg\n");
  c = load_tmpdir(&pb);
  ck_assert_uint_eq(pb.n_errors, 1); /* anchors do not cross documents */
  ck_assert_ptr_nonnull(find_problem(&pb, "unknown alias \"*base\""));
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  catalog_unref(c);
  problems_cleanup(&pb);

  put("anchors.yaml",
      EXT_API "metadata: {organization: acme, name: b}\n"
              "spec:\n"
              "  <<: {url: oci://r/a:1, phase: AUTHZ, priority: 5}\n"
              "  phase: STATS\n"
              "  config:\n"
              "    defaults: &d {level: 3, mode: x}\n"
              "    copy: *d\n");
  c = load_tmpdir(&pb);
  ck_assert_uint_eq(pb.n_errors, 0);
  b = catalog_ext_find(c, "organizations/acme/extensions/b");
  ck_assert_ptr_nonnull(b);
  ck_assert_str_eq(b->url, "oci://r/a:1");
  ck_assert_int_eq(b->phase, WASM_PHASE_STATS); /* explicit key wins */
  ck_assert_int_eq(b->priority, 5);
  ck_assert_str_eq(b->config_json, "{\"defaults\":{\"level\":3,\"mode\":\"x\"},"
                                   "\"copy\":{\"level\":3,\"mode\":\"x\"}}");
  a = catalog_ext_find(c, "organizations/acme/extensions/a");
  ck_assert_ptr_null(a);
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

/* ---- directory walking ---- */

static const char *ext_doc(const char *name) {
  static char buf[512];

  snprintf(buf, sizeof(buf),
           EXT_API "metadata: {organization: acme, name: %s}\n"
                   "spec: {url: oci://r/%s:1}\n",
           name, name);
  return buf;
}

START_TEST(directory_walk_rules) {
  struct problems pb;
  struct catalog *c;
  char target[600], link[600];
  static const char *const want[] = {"a", "b", "deep", "linked", "sub"};

  make_tmpdir();
  put("a.yaml", ext_doc("a"));
  put("b.yml", ext_doc("b"));
  put("sub/c.yaml", ext_doc("sub"));
  put("sub/deeper/d.yaml", ext_doc("deep"));
  put(".hidden.yaml", ext_doc("hidden1"));
  put(".git/e.yaml", ext_doc("hidden2"));
  put("..2024_01_01/f.yaml", ext_doc("hidden3"));
  put("backup.yaml~", ext_doc("backup1"));
  put("#auto.yaml#", ext_doc("backup2"));
  put("swap.yaml.swp", ext_doc("backup3"));
  put("notes.txt", ext_doc("text"));
  put("yaml.json", ext_doc("json"));
  put("real/l.yaml", ext_doc("linked"));
  /* A symlinked directory is followed; one pointing up is not. */
  snprintf(target, sizeof(target), "%s/real", tmpdir);
  snprintf(link, sizeof(link), "%s/sub/link", tmpdir);
  ck_assert_int_eq(symlink("../real", link), 0);
  snprintf(link, sizeof(link), "%s/sub/up", tmpdir);
  ck_assert_int_eq(symlink("..", link), 0);
  /* "real" itself is walked too, so "linked" would be defined twice: hide
   * the original from the walk. */
  snprintf(link, sizeof(link), "%s/.real", tmpdir);
  ck_assert_int_eq(rename(target, link), 0);
  snprintf(link, sizeof(link), "%s/sub/link", tmpdir);
  ck_assert_int_eq(unlink(link), 0);
  ck_assert_int_eq(symlink("../.real", link), 0);

  c = load_tmpdir(&pb);
  ck_assert_uint_eq(pb.n_errors, 0);
  ck_assert_ptr_nonnull(find_problem(&pb, "a symlink back to a directory"));
  ck_assert_uint_eq(catalog_ext_count(c), 5);
  for (size_t i = 0; i < 5; i++) {
    char fqn[128];

    snprintf(fqn, sizeof(fqn), "organizations/acme/extensions/%s", want[i]);
    ck_assert_str_eq(catalog_ext_at(c, i)->fqn, fqn);
  }
  ck_assert_str_eq(
      catalog_ext_find(c, "organizations/acme/extensions/linked")->loc.source,
      at("sub/link/l.yaml"));
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(single_file_and_missing_path) {
  struct problems pb;
  struct catalog *c = NULL;
  struct xds_err err;

  make_tmpdir();
  put("store.conf", ext_doc("one")); /* named directly: any name is read */
  problems_init(&pb, 100);
  c = load(at("store.conf"), NULL, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 1);
  catalog_unref(c);
  c = NULL;
  ck_assert_int_eq(file_store_load(at("nope"), NULL, &c, &pb, &err),
                   XDS_ENOTFOUND);
  ck_assert_ptr_null(c);
  ck_assert_ptr_nonnull(strstr(err.msg, "no such file or directory"));
  /* An empty directory is an empty, valid store. */
  mkdir(at("empty"), 0755);
  c = load(at("empty"), NULL, &pb);
  ck_assert_uint_eq(catalog_ext_count(c) + catalog_tmpl_count(c), 0);
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(wants_name_rules) {
  ck_assert_int_eq(file_store_wants_name("a.yaml", 0), 1);
  ck_assert_int_eq(file_store_wants_name("a.yml", 0), 1);
  ck_assert_int_eq(file_store_wants_name("a.json", 0), 0);
  ck_assert_int_eq(file_store_wants_name(".a.yaml", 0), 0);
  ck_assert_int_eq(file_store_wants_name("a.yaml~", 0), 0);
  ck_assert_int_eq(file_store_wants_name("#a.yaml#", 0), 0);
  ck_assert_int_eq(file_store_wants_name(".#a.yaml", 0), 0);
  ck_assert_int_eq(file_store_wants_name("a.yaml.swp", 0), 0);
  ck_assert_int_eq(file_store_wants_name("sub", 1), 1);
  ck_assert_int_eq(file_store_wants_name("..data", 1), 0);
}
END_TEST

/* ---- duplicates and conflicts ---- */

START_TEST(duplicate_fqn_names_both_locations) {
  struct problems pb;
  struct catalog *c;
  const struct problem *pr;
  char msg[1024];

  make_tmpdir();
  put("a.yaml", ext_doc("dup"));
  put("b/x.yaml", "# the second definition\n---\n" EXT_API
                  "metadata: {organization: acme, name: dup}\n"
                  "spec: {url: oci://r/second:1}\n");
  problems_init(&pb, 100);
  c = load(tmpdir, NULL, &pb);
  ck_assert_uint_eq(pb.n_errors, 1);
  pr = find_problem(&pb, "duplicate WasmExtension");
  ck_assert_ptr_nonnull(pr);
  snprintf(msg, sizeof(msg),
           "duplicate WasmExtension \"organizations/acme/extensions/dup\": "
           "already defined at %s:1:1; this definition is rejected and the "
           "first is kept",
           at("a.yaml"));
  ck_assert_str_eq(pr->msg, msg);
  ck_assert_str_eq(pr->source, at("b/x.yaml"));
  ck_assert_int_eq(pr->line, 3);
  ck_assert_str_eq(
      catalog_ext_find(c, "organizations/acme/extensions/dup")->url,
      "oci://r/dup:1");
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

static const char *tmpl_doc(const char *name, int port, const char *sel) {
  static char buf[1024];

  snprintf(buf, sizeof(buf),
           TMPL_API "metadata: {name: %s}\n"
                    "spec:\n"
                    "  port: %d\n"
                    "  direction: INBOUND\n"
                    "  %s\n" T_ROUTE T_ROUTER,
           name, port, sel);
  return buf;
}

START_TEST(port_reuse_on_one_proxy) {
  struct problems pb;
  struct catalog *c;

  make_tmpdir();
  put("1.yaml", tmpl_doc("any", 80, "selector: {}"));
  put("2.yaml", tmpl_doc("sidecar", 80, "selector: {mode: SIDECAR}"));
  put("3.yaml", tmpl_doc("gw-a", 81,
                         "selector: {mode: GATEWAY, labels: "
                         "{app: a}}"));
  put("4.yaml", tmpl_doc("gw-b", 81,
                         "selector: {mode: GATEWAY, labels: "
                         "{app: b}}"));
  put("5.yaml", tmpl_doc("sc-a", 81,
                         "selector: {mode: SIDECAR, labels: "
                         "{app: a}}"));
  put("6.yaml", tmpl_doc("gw-a-eu", 81,
                         "selector: {labels: {app: a, "
                         "zone: eu}}"));
  c = load_tmpdir(&pb);
  /* "sidecar" overlaps "any"; "gw-a-eu" overlaps "gw-a". */
  ck_assert_uint_eq(pb.n_errors, 2);
  ck_assert_uint_eq(catalog_tmpl_count(c), 4);
  ck_assert_ptr_null(catalog_tmpl_find(c, "sidecar"));
  ck_assert_ptr_null(catalog_tmpl_find(c, "gw-a-eu"));
  ck_assert_ptr_nonnull(catalog_tmpl_find(c, "gw-b"));
  ck_assert_ptr_nonnull(catalog_tmpl_find(c, "sc-a"));
  ck_assert_ptr_nonnull(find_problem(
      &pb, "a listener port reused on one proxy: port 80 of template "
           "\"sidecar\" is already used by template \"any\""));
  catalog_unref(c);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

/* ---- the catalog ---- */

START_TEST(catalog_lookup_and_refcount) {
  struct problems pb;
  struct catalog *c, *c2;
  const char *names[] = {"m", "c", "x", "a", "q"};

  make_tmpdir();
  for (size_t i = 0; i < 5; i++) {
    char rel[32];

    snprintf(rel, sizeof(rel), "%zu.yaml", i);
    put(rel, ext_doc(names[i]));
  }
  problems_init(&pb, 100);
  c = load(tmpdir, NULL, &pb);
  ck_assert_uint_eq(catalog_ext_count(c), 5);
  for (size_t i = 1; i < 5; i++)
    ck_assert_int_lt(
        strcmp(catalog_ext_at(c, i - 1)->fqn, catalog_ext_at(c, i)->fqn), 0);
  for (size_t i = 0; i < 5; i++) {
    char fqn[64];

    snprintf(fqn, sizeof(fqn), "organizations/acme/extensions/%s", names[i]);
    ck_assert_str_eq(catalog_ext_find(c, fqn)->name, names[i]);
  }
  ck_assert_ptr_null(catalog_ext_find(c, "organizations/acme/extensions/b"));
  ck_assert_ptr_null(catalog_tmpl_find(c, "a"));
  c2 = catalog_ref(c);
  ck_assert_ptr_eq(c2, c);
  catalog_unref(c);
  ck_assert_uint_eq(catalog_ext_count(c2), 5); /* still alive */
  catalog_unref(c2);
  catalog_unref(NULL);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(problems_are_bounded) {
  struct problems pb;

  problems_init(&pb, 2);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(problems_add(&pb, i == 4 ? PROBLEM_WARNING : PROBLEM_ERROR,
                                  "f.yaml", i + 1, 2, "spec.x", "n=%d", i),
                     0);
  ck_assert_uint_eq(problems_count(&pb), 2);
  ck_assert_uint_eq(pb.dropped, 3);
  ck_assert_uint_eq(pb.n_errors, 4);
  ck_assert_uint_eq(pb.n_warnings, 1);
  ck_assert_str_eq(problems_at(&pb, 1)->where, "f.yaml:2:2");
  ck_assert_str_eq(problems_at(&pb, 1)->msg, "n=1");
  problems_cleanup(&pb);
}
END_TEST

/* ---- reload: nothing lost ---- */

static const char *const TWO_EXTS =
    EXT_API "metadata: {organization: acme, name: one}\n"
            "spec: {url: oci://r/one:1, priority: 1}\n"
            "---\n" EXT_API "metadata: {organization: acme, name: two}\n"
            "spec: {url: oci://r/two:1, priority: 2}\n";

START_TEST(reload_keeps_last_good_of_a_broken_document) {
  struct problems pb;
  struct catalog *v1, *v2;
  const struct wasm_ext *e;

  make_tmpdir();
  put("exts.yaml", TWO_EXTS);
  put("tmpl.yaml", tmpl_doc("web", 80, "selector: {}"));
  problems_init(&pb, 100);
  v1 = load(tmpdir, NULL, &pb);
  ck_assert_uint_eq(catalog_ext_count(v1), 2);
  problems_reset(&pb);

  /* "one" is edited and broken; "two" is edited validly; the template
   * is broken too. */
  put("exts.yaml",
      EXT_API "metadata: {organization: acme, name: one}\n"
              "spec: {url: oci://r/one:2, priority: high}\n"
              "---\n" EXT_API "metadata: {organization: acme, name: two}\n"
              "spec: {url: oci://r/two:2, priority: 2}\n");
  put("tmpl.yaml", tmpl_doc("web", 0, "selector: {}"));
  v2 = load(tmpdir, v1, &pb);
  ck_assert_uint_eq(pb.n_errors, 2);
  e = catalog_ext_find(v2, "organizations/acme/extensions/one");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq(e->url, "oci://r/one:1"); /* the last good version */
  ck_assert_int_eq(e->priority, 1);
  e = catalog_ext_find(v2, "organizations/acme/extensions/two");
  ck_assert_str_eq(e->url, "oci://r/two:2"); /* the new version */
  ck_assert_uint_eq(catalog_tmpl_find(v2, "web")->port, 80);
  ck_assert_ptr_nonnull(find_problem(
      &pb, "keeping the last good version of WasmExtension "
           "\"organizations/acme/extensions/one\": its document is broken"));
  ck_assert_ptr_nonnull(
      find_problem(&pb, "keeping the last good version of ListenerTemplate "
                        "\"web\": its document is broken"));
  /* Each problem is tagged with the resource its document claims, for
   * the status page of the version kept (/debug/resources). */
  for (size_t i = 0; i < problems_count(&pb); i++) {
    const struct problem *p = problems_at(&pb, i);
    int about_one = strstr(p->where, "exts.yaml") != NULL;

    ck_assert_ptr_nonnull(p->resource);
    ck_assert_str_eq(p->resource,
                     about_one ? "organizations/acme/extensions/one" : "web");
  }
  {
    int found = 0;

    for (size_t i = 0; i < problems_count(&pb); i++)
      found |= strcmp(problems_at(&pb, i)->path, "spec.priority") == 0;
    ck_assert(found);
  }
  catalog_unref(v1);
  catalog_unref(v2);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(reload_keeps_everything_of_a_file_that_is_not_yaml) {
  struct problems pb;
  struct catalog *v1, *v2, *v3;
  const struct problem *pr;

  make_tmpdir();
  put("exts.yaml", TWO_EXTS);
  problems_init(&pb, 100);
  v1 = load(tmpdir, NULL, &pb);
  problems_reset(&pb);

  /* Truncated mid-save: the first document is complete and updated, the
   * second is cut inside a flow mapping. */
  put("exts.yaml",
      EXT_API "metadata: {organization: acme, name: one}\n"
              "spec: {url: oci://r/one:2, priority: 1}\n"
              "---\n" EXT_API "metadata: {organization: acme, name: two}\n"
              "spec: {url: oci://r/tw");
  v2 = load(tmpdir, v1, &pb);
  dump(&pb);
  ck_assert_uint_eq(pb.n_errors, 1);
  pr = find_problem(&pb, "not valid YAML");
  ck_assert_ptr_nonnull(pr);
  ck_assert_str_eq(pr->source, at("exts.yaml"));
  ck_assert_int_eq(pr->line, 10);
  ck_assert_uint_eq(catalog_ext_count(v2), 2);
  ck_assert_str_eq(
      catalog_ext_find(v2, "organizations/acme/extensions/one")->url,
      "oci://r/one:2");
  ck_assert_str_eq(
      catalog_ext_find(v2, "organizations/acme/extensions/two")->url,
      "oci://r/two:1");
  problems_reset(&pb);

  /* Fixed: both come from the file again. */
  put("exts.yaml", TWO_EXTS);
  v3 = load(tmpdir, v2, &pb);
  ck_assert_uint_eq(pb.n_errors + pb.n_warnings, 0);
  ck_assert_uint_eq(catalog_ext_count(v3), 2);
  catalog_unref(v1);
  catalog_unref(v2);
  catalog_unref(v3);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(reload_removes_deleted_documents_and_files) {
  struct problems pb;
  struct catalog *v1, *v2, *v3;

  make_tmpdir();
  put("exts.yaml", TWO_EXTS);
  put("other.yaml", ext_doc("other"));
  problems_init(&pb, 100);
  v1 = load(tmpdir, NULL, &pb);
  ck_assert_uint_eq(catalog_ext_count(v1), 3);

  /* "two" deleted from a file that parses; "other.yaml" deleted. */
  put("exts.yaml", EXT_API "metadata: {organization: acme, name: one}\n"
                           "spec: {url: oci://r/one:1, priority: 1}\n");
  ck_assert_int_eq(unlink(at("other.yaml")), 0);
  v2 = load(tmpdir, v1, &pb);
  ck_assert_uint_eq(pb.n_errors + pb.n_warnings, 0);
  ck_assert_uint_eq(catalog_ext_count(v2), 1);
  ck_assert_ptr_nonnull(
      catalog_ext_find(v2, "organizations/acme/extensions/one"));

  /* A broken document whose identity cannot be read keeps the file's
   * resources: it may be "one" being edited. */
  put("exts.yaml", EXT_API "metadata: [oops]\nspec: {url: oci://r/x:1}\n");
  v3 = load(tmpdir, v2, &pb);
  ck_assert_uint_eq(pb.n_errors, 1);
  ck_assert_ptr_nonnull(
      catalog_ext_find(v3, "organizations/acme/extensions/one"));
  ck_assert_ptr_nonnull(
      find_problem(&pb, "its file has a broken document that may be this "
                        "resource"));
  catalog_unref(v1);
  catalog_unref(v2);
  catalog_unref(v3);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

START_TEST(reload_keeps_resources_of_an_unreadable_file) {
  struct problems pb;
  struct catalog *v1, *v2;

  make_tmpdir();
  put("exts.yaml", TWO_EXTS);
  problems_init(&pb, 100);
  v1 = load(tmpdir, NULL, &pb);
  /* Mid-swap: the name now points nowhere. */
  ck_assert_int_eq(unlink(at("exts.yaml")), 0);
  ck_assert_int_eq(symlink("..data/exts.yaml", at("exts.yaml")), 0);
  v2 = load(tmpdir, v1, &pb);
  ck_assert_uint_eq(pb.n_errors, 1);
  ck_assert_uint_eq(catalog_ext_count(v2), 2);
  catalog_unref(v1);
  catalog_unref(v2);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

/* Fails each allocation of a reload in turn (with a previous catalog, so
 * last-good copies run too): every run must end in 0 or XDS_ENOMEM, leak
 * nothing (ASan/valgrind), and never crash. */
START_TEST(load_survives_every_allocation_failure) {
  struct problems pb;
  struct catalog *prev, *c;
  struct xds_err err;
  long n, seen = 0;
  int rc;

  make_tmpdir();
  put("exts.yaml", TWO_EXTS);
  put("full/templates.yaml", "# copied\n");
  problems_init(&pb, 100);
  prev = load(tmpdir, NULL, &pb);
  /* Break "one", keep "two", add every field of both kinds. */
  put("exts.yaml",
      EXT_HEAD "spec: {url: ftp://x}\n---\n" EXT_API
               "metadata: {organization: acme, name: one}\nspec: 1\n");
  for (n = 1;; n++) {
    problems_reset(&pb);
    c = NULL;
    xds_alloc_fail_at(n);
    rc = file_store_load(tmpdir, prev, &c, &pb, &err);
    seen = xds_alloc_fail_at(0);
    if (rc == 0 && seen < n) {
      catalog_unref(c);
      break; /* no allocation failed: the sweep is complete */
    }
    /* A failed allocation must surface: a load that "succeeds" after one
     * may have silently lost a resource. */
    if (rc != XDS_ENOMEM)
      ck_abort_msg("allocation %ld failed but the load returned %d", n, rc);
    if (rc == XDS_ENOMEM)
      ck_assert_ptr_null(c);
    catalog_unref(c);
  }
  ck_assert_int_gt(n, 50);
  catalog_unref(prev);
  problems_cleanup(&pb);
  remove_tmpdir();
}
END_TEST

Suite *store_suite(void) {
  Suite *s = suite_create("store");
  TCase *tc;

  tc = tcase_create("bad_inputs");
  tcase_add_loop_test(tc, bad_input_is_located_and_neighbours_load, 0,
                      (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
  tcase_add_test(tc, all_errors_of_a_document_are_reported);
  suite_add_tcase(s, tc);

  tc = tcase_create("round_trip");
  tcase_add_test(tc, wasm_extension_every_field);
  tcase_add_test(tc, listener_template_every_field);
  tcase_add_test(tc, config_json_follows_yaml_core_schema);
  tcase_add_test(tc, json_and_flow_documents_load);
  tcase_add_test(tc, anchors_and_merge_keys_in_resources);
  suite_add_tcase(s, tc);

  tc = tcase_create("walk");
  tcase_add_test(tc, directory_walk_rules);
  tcase_add_test(tc, single_file_and_missing_path);
  tcase_add_test(tc, wants_name_rules);
  suite_add_tcase(s, tc);

  tc = tcase_create("catalog");
  tcase_add_test(tc, duplicate_fqn_names_both_locations);
  tcase_add_test(tc, port_reuse_on_one_proxy);
  tcase_add_test(tc, catalog_lookup_and_refcount);
  tcase_add_test(tc, problems_are_bounded);
  suite_add_tcase(s, tc);

  tc = tcase_create("reload");
  tcase_add_test(tc, reload_keeps_last_good_of_a_broken_document);
  tcase_add_test(tc, reload_keeps_everything_of_a_file_that_is_not_yaml);
  tcase_add_test(tc, reload_removes_deleted_documents_and_files);
  tcase_add_test(tc, reload_keeps_resources_of_an_unreadable_file);
  tcase_add_test(tc, load_survives_every_allocation_failure);
  suite_add_tcase(s, tc);
  return s;
}
