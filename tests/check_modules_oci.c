/*
 * check_modules_oci.c: pulling from a real OCI registry, Debian's
 * docker-registry, started on 127.0.0.1 by the tcase's unchecked fixture
 * (once, in the runner process) with one image of each supported layout:
 * the solo "oci" variant, a "compat" image with a gzip layer, a
 * multi-layer Docker image, an image index, wasm-to-oci and a CNCF Wasm
 * artifact. A second registry requires htpasswd credentials. Each is
 * pulled by tag and by digest; a blob tampered with on the registry's disk
 * is refused; a restart with a warm cache makes no request.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "tests/helpers/modtest.h"
#include "tests/helpers/registry.h"
#include "modules/oci.h"
#include "modules/resolver.h"

#define WAIT_MS 15000
#define FQN(name) "organizations/org/extensions/" name

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST                                                     \
  "application/vnd.docker.distribution.manifest.v2+json"

enum kind { K_OCI, K_COMPAT, K_MULTI, K_INDEX, K_W2O, K_CNCF, K_N };
static const char *const kind_repo[K_N] = {"wasm/oci",   "wasm/compat",
                                           "wasm/multi", "wasm/index",
                                           "wasm/w2o",   "wasm/cncf"};

static struct registry *reg, *reg_auth;
static char mod_hex[K_N][65]; /* expected module sha256 per kind */
static char man_hex[K_N][65]; /* manifest (or index) digest per kind */
static char auth_hex[65], auth_man[65];
static int setup_failed;

/* Pushes a blob, returning a descriptor JSON fragment in desc. */
static int blob(struct registry *r, const char *repo, const char *mt,
                const void *data, size_t len, char *desc, size_t cap) {
  char hex[65];

  if (registry_push_blob(r, repo, data, len, hex) < 0)
    return -1;
  snprintf(desc, cap,
           "{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":%zu}", mt,
           hex, len);
  return 0;
}

static int manifest(struct registry *r, const char *repo, const char *mt,
                    const char *config, const char *layers, const char *extra,
                    char *hex) {
  char json[8192];

  snprintf(json, sizeof(json),
           "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":%s,"
           "\"layers\":[%s]%s}",
           mt, config, layers, extra ? extra : "");
  if (registry_push_manifest(r, repo, "v1", mt, json, hex) < 0)
    return -1;
  /* Also under "latest" for the floating-tag default. */
  return registry_push_manifest(r, repo, "latest", mt, json, hex);
}

static int push_oci_variant(struct registry *r, const char *repo, unsigned seed,
                            char *mhex, char *manhex) {
  const char *cfg = "{\"type\":\"envoy_proxy\",\"abiVersions\":[\"v0.2.1\"],"
                    "\"config\":{\"rootIds\":[\"oci_root\"]}}";
  unsigned char *m = mt_wasm(20000, seed);
  char cdesc[512], ldesc[512];
  int rc;

  mt_sha(m, 20000, mhex);
  rc =
      blob(r, repo, "application/vnd.module.wasm.config.v1+json", cfg,
           strlen(cfg), cdesc, sizeof(cdesc)) < 0 ||
              blob(r, repo, "application/vnd.module.wasm.content.layer.v1+wasm",
                   m, 20000, ldesc, sizeof(ldesc)) < 0 ||
              manifest(r, repo, MT_OCI_MANIFEST, cdesc, ldesc, NULL, manhex) < 0
          ? -1
          : 0;
  xds_free(m);
  return rc;
}

static void setup(void) {
  const char *img_cfg =
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
      "\"layers\",\"diff_ids\":[]},\"config\":{}}";
  char cdesc[512], l1[512], l2[1100], hex[65];
  unsigned char *m, *tar, *gz;
  size_t tar_len, gz_len;
  int bad = 0;

  reg = registry_start(NULL, NULL);
  reg_auth = registry_start("u", "p");
  if (reg == NULL || reg_auth == NULL) {
    setup_failed = 1;
    return;
  }
  /* oci variant */
  bad |= push_oci_variant(reg, kind_repo[K_OCI], 1, mod_hex[K_OCI],
                          man_hex[K_OCI]);
  /* compat: OCI image, one tar+gzip layer with plugin.wasm */
  m = mt_wasm(30000, 2);
  mt_sha(m, 30000, mod_hex[K_COMPAT]);
  {
    const char *names[] = {"plugin.wasm"};
    const void *data[] = {m};
    size_t lens[] = {30000};

    tar = mt_tar(names, data, lens, 1, &tar_len);
  }
  gz = mt_gzip(tar, tar_len, &gz_len);
  bad |=
      blob(reg, kind_repo[K_COMPAT], "application/vnd.oci.image.config.v1+json",
           img_cfg, strlen(img_cfg), cdesc, sizeof(cdesc));
  bad |= blob(reg, kind_repo[K_COMPAT],
              "application/vnd.oci.image.layer.v1.tar+gzip", gz, gz_len, l1,
              sizeof(l1));
  bad |= manifest(reg, kind_repo[K_COMPAT], MT_OCI_MANIFEST, cdesc, l1,
                  ",\"annotations\":{\"module.wasm.image/variant\":"
                  "\"compat\"}",
                  man_hex[K_COMPAT]);
  xds_free(m);
  xds_free(tar);
  xds_free(gz);
  /* multi-layer Docker image: junk first, a single .wasm in the last */
  {
    const char *n1[] = {"etc/motd"}, *n2[] = {"filter.wasm"};
    const void *d1[] = {"hello\n"};
    size_t s1[] = {6}, s2[] = {25000};
    const void *d2[1];
    unsigned char *t1, *g1;
    size_t t1l, g1l;

    m = mt_wasm(25000, 3);
    mt_sha(m, 25000, mod_hex[K_MULTI]);
    d2[0] = m;
    t1 = mt_tar(n1, d1, s1, 1, &t1l);
    g1 = mt_gzip(t1, t1l, &g1l);
    tar = mt_tar(n2, d2, s2, 1, &tar_len);
    gz = mt_gzip(tar, tar_len, &gz_len);
    bad |= blob(reg, kind_repo[K_MULTI],
                "application/vnd.docker.container.image.v1+json", img_cfg,
                strlen(img_cfg), cdesc, sizeof(cdesc));
    bad |= blob(reg, kind_repo[K_MULTI],
                "application/vnd.docker.image.rootfs.diff.tar.gzip", g1, g1l,
                l1, sizeof(l1));
    bad |= blob(reg, kind_repo[K_MULTI],
                "application/vnd.docker.image.rootfs.diff.tar.gzip", gz, gz_len,
                l2, sizeof(l2));
    {
      char layers[2048];

      snprintf(layers, sizeof(layers), "%s,%s", l1, l2);
      bad |= manifest(reg, kind_repo[K_MULTI], MT_DOCKER_MANIFEST, cdesc,
                      layers, NULL, man_hex[K_MULTI]);
    }
    xds_free(m);
    xds_free(t1);
    xds_free(g1);
    xds_free(tar);
    xds_free(gz);
  }
  /* index: an arm64 image (a different module) and the amd64 one */
  {
    char arm_mod[65], arm_man[65], amd_mod[65], amd_man[65], json[2048];

    bad |= push_oci_variant(reg, kind_repo[K_INDEX], 40, arm_mod, arm_man);
    bad |= push_oci_variant(reg, kind_repo[K_INDEX], 4, amd_mod, amd_man);
    memcpy(mod_hex[K_INDEX], amd_mod, 65);
    snprintf(json, sizeof(json),
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
             "\"manifests\":["
             "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:%s\","
             "\"size\":1,\"platform\":{\"architecture\":\"arm64\",\"os\":"
             "\"linux\"}},"
             "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:%s\","
             "\"size\":1,\"platform\":{\"architecture\":\"amd64\",\"os\":"
             "\"linux\"}}]}",
             arm_man, amd_man);
    bad |= registry_push_manifest(reg, kind_repo[K_INDEX], "v1", MT_OCI_INDEX,
                                  json, man_hex[K_INDEX]);
    bad |= registry_push_manifest(reg, kind_repo[K_INDEX], "latest",
                                  MT_OCI_INDEX, json, hex);
  }
  /* wasm-to-oci */
  m = mt_wasm(15000, 5);
  mt_sha(m, 15000, mod_hex[K_W2O]);
  bad |= blob(reg, kind_repo[K_W2O], "application/vnd.wasm.config.v1+json",
              "{}", 2, cdesc, sizeof(cdesc));
  bad |=
      blob(reg, kind_repo[K_W2O], "application/vnd.wasm.content.layer.v1+wasm",
           m, 15000, l1, sizeof(l1));
  bad |= manifest(reg, kind_repo[K_W2O], MT_OCI_MANIFEST, cdesc, l1, NULL,
                  man_hex[K_W2O]);
  xds_free(m);
  /* CNCF Wasm artifact */
  m = mt_wasm(16000, 6);
  mt_sha(m, 16000, mod_hex[K_CNCF]);
  {
    const char *wcfg = "{\"architecture\":\"wasm\",\"os\":\"wasip1\","
                       "\"layerDigests\":[]}";

    bad |= blob(reg, kind_repo[K_CNCF], "application/vnd.wasm.config.v0+json",
                wcfg, strlen(wcfg), cdesc, sizeof(cdesc));
  }
  bad |= blob(reg, kind_repo[K_CNCF], "application/wasm", m, 16000, l1,
              sizeof(l1));
  bad |= manifest(reg, kind_repo[K_CNCF], MT_OCI_MANIFEST, cdesc, l1,
                  ",\"artifactType\":\"application/wasm\"", man_hex[K_CNCF]);
  xds_free(m);
  /* the private registry */
  bad |= push_oci_variant(reg_auth, "private/auth", 7, auth_hex, auth_man);
  setup_failed = bad != 0;
}

static void teardown(void) {
  registry_stop(reg);
  registry_stop(reg_auth);
  reg = reg_auth = NULL;
}

static void test_config(struct resolver_config *cfg, const char *dir) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->cache_dir = dir;
  cfg->workers = 4;
  cfg->fetch_timeout_ms = 10000;
  cfg->backoff_base_ms = 200;
  cfg->backoff_max_ms = 1000;
}

START_TEST(pull_each_layout_by_tag_and_digest) {
  struct oci_opts o;
  struct oci_ref ref;
  struct oci_result res;
  struct xds_err err;
  char url[512];

  ck_assert_msg(!setup_failed, "registry setup failed (see stderr)");
  memset(&o, 0, sizeof(o));
  o.fetch.timeout_ms = 10000;
  o.max_module = 1u << 20;
  ck_assert_int_eq(fetch_global_init(), 0);
  for (int k = 0; k < K_N; k++) {
    for (int by_digest = 0; by_digest < 2; by_digest++) {
      if (by_digest)
        snprintf(url, sizeof(url), "oci://%s/%s@sha256:%s", registry_host(reg),
                 kind_repo[k], man_hex[k]);
      else
        snprintf(url, sizeof(url), "oci://%s/%s:v1", registry_host(reg),
                 kind_repo[k]);
      ck_assert_int_eq(oci_ref_parse(url, &ref, NULL), 0);
      ck_assert_msg(oci_pull(&ref, &o, &res, &err) == 0, "%s: %s", url,
                    err.msg);
      ck_assert_msg(strcmp(res.sha256, mod_hex[k]) == 0, "%s", url);
      ck_assert_ptr_nonnull(res.module);
      ck_assert(digest_is_wasm(res.module, res.module_len));
      if (k == K_OCI || k == K_INDEX) {
        ck_assert_uint_eq(res.n_root_ids, 1);
        ck_assert_str_eq(res.root_ids[0], "oci_root");
        ck_assert_str_eq(res.variant, "oci");
      }
      if (k == K_COMPAT || k == K_MULTI)
        ck_assert_str_eq(res.variant, "compat");
      if (k == K_W2O)
        ck_assert_str_eq(res.variant, "wasm-to-oci");
      if (k == K_CNCF)
        ck_assert_str_eq(res.variant, "cncf");
      oci_result_cleanup(&res);
    }
  }
  /* A digest that is not in the registry. */
  snprintf(url, sizeof(url), "oci://%s/wasm/oci@sha256:%064d",
           registry_host(reg), 0);
  ck_assert_int_eq(oci_ref_parse(url, &ref, NULL), 0);
  ck_assert_int_eq(oci_pull(&ref, &o, &res, &err), XDS_ENOTFOUND);
  oci_result_cleanup(&res);
}
END_TEST

START_TEST(resolver_and_warm_restart) {
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[2 * K_N];
  struct module_info mi;
  char dir[256], url[512], name[64];
  long before;

  ck_assert_msg(!setup_failed, "registry setup failed (see stderr)");
  for (int k = 0; k < K_N; k++) {
    snprintf(url, sizeof(url), "oci://%s/%s:v1", registry_host(reg),
             kind_repo[k]);
    snprintf(name, sizeof(name), "tag%d", k);
    x[2 * k] = mt_ext(name, url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
    snprintf(url, sizeof(url), "oci://%s/%s@sha256:%s", registry_host(reg),
             kind_repo[k], man_hex[k]);
    snprintf(name, sizeof(name), "digest%d", k);
    x[2 * k + 1] =
        mt_ext(name, url, mod_hex[k], NULL, WASM_PULL_UNSPECIFIED, NULL);
  }
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(
      resolver_update(r, (const struct wasm_ext *const *)x, 2 * K_N), 0);
  for (int k = 0; k < 2 * K_N; k++) {
    ck_assert_msg(mt_wait(r, x[k]->fqn, MODULE_READY, 0, WAIT_MS, &mi),
                  "%s: %s", x[k]->fqn, mi.reason ? mi.reason : "");
    ck_assert_str_eq(mi.sha256, mod_hex[k / 2]);
    module_info_cleanup(&mi);
  }
  resolver_free(r);

  /* Restart on the warm cache: everything READY at once, no request. */
  before = registry_requests(reg);
  ck_assert_int_gt(before, 0);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(
      resolver_update(r, (const struct wasm_ext *const *)x, 2 * K_N), 0);
  for (int k = 0; k < 2 * K_N; k++) {
    ck_assert_int_eq(resolver_lookup(r, x[k]->fqn, &mi), 0);
    ck_assert_msg(mi.state == MODULE_READY, "%s", x[k]->fqn);
    ck_assert_str_eq(mi.sha256, mod_hex[k / 2]);
    module_info_cleanup(&mi);
  }
  usleep(500000);
  ck_assert_int_eq(registry_requests(reg), before);
  resolver_free(r);
  for (int k = 0; k < 2 * K_N; k++)
    wasm_ext_free(x[k]);
  mt_rmrf(dir);
}
END_TEST

START_TEST(latest_defaults_to_always) {
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[1];
  struct module_info mi;
  char dir[256], url[512];
  long before;

  ck_assert_msg(!setup_failed, "registry setup failed (see stderr)");
  snprintf(url, sizeof(url), "oci://%s/wasm/oci", registry_host(reg));
  x[0] = mt_ext("floating", url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.always_interval_s = 1;
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 1), 0);
  ck_assert(mt_wait(r, FQN("floating"), MODULE_READY, 1, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, mod_hex[K_OCI]);
  module_info_cleanup(&mi);
  /* Re-resolved on the interval: the manifest is fetched again (the blob
   * is not: its manifest is known). */
  before = registry_requests(reg);
  ck_assert(mt_wait(r, FQN("floating"), MODULE_READY, 3, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  ck_assert_int_gt(registry_requests(reg), before);
  resolver_free(r);
  wasm_ext_free(x[0]);
  mt_rmrf(dir);
}
END_TEST

START_TEST(htpasswd_registry_with_pull_secret) {
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[3];
  struct module_info mi;
  char dir[256], secrets[256], path[300], json[256], url[512], url_d[512];

  ck_assert_msg(!setup_failed, "registry setup failed (see stderr)");
  mt_tmpdir(secrets, sizeof(secrets));
  snprintf(path, sizeof(path), "%s/regcred.json", secrets);
  snprintf(json, sizeof(json),
           "{\"auths\":{\"http://%s\":{\"auth\":\"dTpw\"}}}",
           registry_host(reg_auth));
  ck_assert_int_eq(mt_write_file(path, json, strlen(json)), 0);
  snprintf(url, sizeof(url), "oci://%s/private/auth:v1",
           registry_host(reg_auth));
  snprintf(url_d, sizeof(url_d), "oci://%s/private/auth@sha256:%s",
           registry_host(reg_auth), auth_man);
  x[0] = mt_ext("bytag", url, NULL, "regcred", WASM_PULL_UNSPECIFIED, NULL);
  x[1] =
      mt_ext("bydigest", url_d, NULL, "regcred", WASM_PULL_UNSPECIFIED, NULL);
  x[2] = mt_ext("nosecret", url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.pull_secrets_dir = secrets;
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 3), 0);
  ck_assert(mt_wait(r, FQN("bytag"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, auth_hex);
  ck_assert(mi.is_private);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("bydigest"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, auth_hex);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("nosecret"), MODULE_FAILED, 0, WAIT_MS, &mi));
  ck_assert_msg(strstr(mi.reason, "imagePullSecret") != NULL, "%s", mi.reason);
  module_info_cleanup(&mi);
  resolver_free(r);
  for (int i = 0; i < 3; i++)
    wasm_ext_free(x[i]);
  mt_rmrf(dir);
  mt_rmrf(secrets);
}
END_TEST

/* A Gloo Mesh WasmDeployment's imagePullOptions: pullSecret as a secret
 * with username and password files, and plainHttp for a registry that is
 * neither loopback by name nor listed in --insecure-registries (the IPv4
 * loopback reached as an IPv4-mapped IPv6 address is such a host). */
START_TEST(deployment_pull_options) {
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[3];
  struct module_info mi;
  char dir[256], secrets[256], path[300], url[512], url6[512];
  const char *port;

  ck_assert_msg(!setup_failed, "registry setup failed (see stderr)");
  mt_tmpdir(secrets, sizeof(secrets));
  snprintf(path, sizeof(path), "%s/hubcreds", secrets);
  ck_assert_int_eq(mkdir(path, 0700), 0);
  snprintf(path, sizeof(path), "%s/hubcreds/username", secrets);
  ck_assert_int_eq(mt_write_file(path, "u\n", 2), 0);
  snprintf(path, sizeof(path), "%s/hubcreds/password", secrets);
  ck_assert_int_eq(mt_write_file(path, "p\n", 2), 0);
  port = strchr(registry_host(reg_auth), ':');
  ck_assert_ptr_nonnull(port);
  snprintf(url, sizeof(url), "oci://%s/private/auth:v1",
           registry_host(reg_auth));
  snprintf(url6, sizeof(url6), "oci://[::ffff:127.0.0.1]%s/private/auth:v1",
           port);
  x[0] = mt_ext("userpass", url, NULL, "hubcreds", WASM_PULL_UNSPECIFIED, NULL);
  x[1] = mt_ext("plain", url6, NULL, "hubcreds", WASM_PULL_UNSPECIFIED, NULL);
  x[1]->plain_http = 1;
  x[2] = mt_ext("tls", url6, NULL, "hubcreds", WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  cfg.pull_secrets_dir = secrets;
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 3), 0);
  ck_assert(mt_wait(r, FQN("userpass"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, auth_hex);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("plain"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, auth_hex);
  module_info_cleanup(&mi);
  /* Without plainHttp the same registry is asked over https, and fails. */
  ck_assert(mt_wait(r, FQN("tls"), MODULE_FAILED, 0, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  resolver_free(r);
  for (int i = 0; i < 3; i++)
    wasm_ext_free(x[i]);
  mt_rmrf(dir);
  mt_rmrf(secrets);
}
END_TEST

/* imagePullOptions.insecureSkipVerify against a registry serving https
 * with a self-signed certificate (reached as [::ffff:127.0.0.1], which is
 * not loopback by name, so https is used): the record with the flag pulls
 * the image; the same reference without it fails with the certificate
 * error, also after the first one's result is cached. */
START_TEST(deployment_insecure_skip_verify) {
  struct registry *tls = registry_start_tls(NULL, NULL);
  struct resolver_config cfg;
  struct resolver *r;
  struct wasm_ext *x[2];
  struct module_info mi;
  char dir[256], url[512], mhex[65], manhex[65];
  const char *port;

  ck_assert_ptr_nonnull(tls);
  ck_assert_int_eq(push_oci_variant(tls, "wasm/tls", 77, mhex, manhex), 0);
  port = strchr(registry_host(tls), ':');
  snprintf(url, sizeof(url), "oci://[::ffff:127.0.0.1]%s/wasm/tls:v1", port);
  x[0] = mt_ext("skip", url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  x[0]->insecure_skip_verify = 1;
  x[1] = mt_ext("verify", url, NULL, NULL, WASM_PULL_UNSPECIFIED, NULL);
  mt_tmpdir(dir, sizeof(dir));
  test_config(&cfg, dir);
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 2), 0);
  ck_assert(mt_wait(r, FQN("skip"), MODULE_READY, 0, WAIT_MS, &mi));
  ck_assert_str_eq(mi.sha256, mhex);
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("verify"), MODULE_FAILED, 2, WAIT_MS, &mi));
  ck_assert_msg(mi.reason != NULL &&
                    strstr(mi.reason, "TLS certificate of https://") != NULL,
                "%s", mi.reason ? mi.reason : "(none)");
  module_info_cleanup(&mi);
  resolver_free(r);
  /* A warm cache: the unverified resolution still answers only its own
   * kind of pull. */
  ck_assert_int_eq(resolver_new(&cfg, &r, NULL), 0);
  ck_assert_int_eq(resolver_update(r, (const struct wasm_ext *const *)x, 2), 0);
  ck_assert(mt_wait(r, FQN("verify"), MODULE_FAILED, 1, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  ck_assert(mt_wait(r, FQN("skip"), MODULE_READY, 0, WAIT_MS, &mi));
  module_info_cleanup(&mi);
  resolver_free(r);
  for (int i = 0; i < 2; i++)
    wasm_ext_free(x[i]);
  mt_rmrf(dir);
  registry_stop(tls);
}
END_TEST

START_TEST(tampered_blob_is_refused) {
  struct oci_opts o;
  struct oci_ref ref;
  struct oci_result res;
  struct xds_err err;
  char mhex[65], manhex[65], url[512], path[1024];
  unsigned char *evil = mt_wasm(20000, 99);

  ck_assert_msg(!setup_failed, "registry setup failed (see stderr)");
  ck_assert_int_eq(push_oci_variant(reg, "wasm/tamper", 1234, mhex, manhex), 0);
  /* Overwrite the layer's bytes in the registry's own storage. */
  snprintf(path, sizeof(path),
           "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data",
           registry_root(reg), mhex, mhex);
  ck_assert_int_eq(access(path, F_OK), 0);
  ck_assert_int_eq(mt_write_file(path, evil, 20000), 0);
  memset(&o, 0, sizeof(o));
  o.fetch.timeout_ms = 10000;
  o.max_module = 1u << 20;
  snprintf(url, sizeof(url), "oci://%s/wasm/tamper:v1", registry_host(reg));
  ck_assert_int_eq(oci_ref_parse(url, &ref, NULL), 0);
  ck_assert_int_eq(oci_pull(&ref, &o, &res, &err), XDS_EINVAL);
  ck_assert_msg(strstr(err.msg, "content has digest") != NULL, "%s", err.msg);
  ck_assert_ptr_null(res.module);
  oci_result_cleanup(&res);
  /* Too small a module limit: refused from the descriptor's size. */
  o.max_module = 1000;
  snprintf(url, sizeof(url), "oci://%s/wasm/oci:v1", registry_host(reg));
  ck_assert_int_eq(oci_ref_parse(url, &ref, NULL), 0);
  ck_assert_int_eq(oci_pull(&ref, &o, &res, &err), XDS_ETOOBIG);
  oci_result_cleanup(&res);
  xds_free(evil);
}
END_TEST

TCase *modules_oci_tcase(void) {
  TCase *tc = tcase_create("registry");

  tcase_set_timeout(tc, 90);
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_add_test(tc, pull_each_layout_by_tag_and_digest);
  tcase_add_test(tc, resolver_and_warm_restart);
  tcase_add_test(tc, latest_defaults_to_always);
  tcase_add_test(tc, htpasswd_registry_with_pull_secret);
  tcase_add_test(tc, tampered_blob_is_refused);
  tcase_add_test(tc, deployment_pull_options);
  tcase_add_test(tc, deployment_insecure_skip_verify);
  return tc;
}
