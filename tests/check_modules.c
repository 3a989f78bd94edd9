/*
 * check_modules.c: the "modules" suite. Offline tcases here (digests,
 * references, gzip/tar, pull secrets, destination policy, the cache); the
 * network tcases live in check_modules_http.c (a scripted HTTP origin and
 * fake registry, the admin endpoint) and check_modules_oci.c (Debian's
 * docker-registry), and are added to this suite by modules_suite().
 */
#include <check.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "tests/helpers/modtest.h"
#include "modules/cache.h"
#include "modules/creds.h"
#include "modules/digest.h"
#include "modules/fetch.h"
#include "modules/oci.h"
#include "modules/unpack.h"

TCase *modules_http_tcase(void);
TCase *modules_admin_tcase(void);
TCase *modules_oci_tcase(void);

START_TEST(digest_and_magic) {
  char hex[65];
  unsigned char *m = mt_wasm(100, 1);

  ck_assert_int_eq(digest_sha256_hex("abc", 3, hex), 0);
  ck_assert_str_eq(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ck_assert(digest_is_hex(hex));
  ck_assert(!digest_is_hex("BA7816"));
  ck_assert_int_eq(digest_parse_oci("sha256:"
                                    "ba7816bf8f01cfea414140de5dae2223"
                                    "b00361a396177a9cb410ff61f20015ad",
                                    hex),
                   0);
  ck_assert_int_eq(digest_parse_oci("sha512:abc", hex), XDS_EINVAL);
  ck_assert(digest_is_wasm(m, 100));
  m[4] = 2;
  ck_assert(!digest_is_wasm(m, 100));
  ck_assert(!digest_is_wasm("\0asm", 4));
  xds_free(m);
}
END_TEST

START_TEST(oci_references) {
  struct oci_ref r;

  ck_assert_int_eq(oci_ref_parse("oci://ghcr.io/org/auth:1.0", &r, NULL), 0);
  ck_assert_str_eq(r.registry, "ghcr.io");
  ck_assert_str_eq(r.repo, "org/auth");
  ck_assert_str_eq(r.tag, "1.0");
  ck_assert(!oci_ref_is_latest(&r));
  ck_assert_int_eq(oci_ref_parse("oci://nginx", &r, NULL), 0);
  ck_assert_str_eq(r.registry, "docker.io");
  ck_assert_str_eq(r.repo, "library/nginx");
  ck_assert_str_eq(r.tag, "latest");
  ck_assert(oci_ref_is_latest(&r));
  ck_assert_int_eq(oci_ref_parse("oci://localhost:5000/a/b:latest", &r, NULL),
                   0);
  ck_assert_str_eq(r.registry, "localhost:5000");
  ck_assert(oci_registry_is_loopback(r.registry));
  ck_assert_int_eq(
      oci_ref_parse("oci://127.0.0.1:5000/x@sha256:ba7816bf8f01cfea414140de5"
                    "dae2223b00361a396177a9cb410ff61f20015ad",
                    &r, NULL),
      0);
  ck_assert_str_eq(r.tag, "");
  ck_assert_int_eq(strlen(r.digest), 64);
  ck_assert(!oci_ref_is_latest(&r));
  ck_assert(oci_registry_is_loopback("127.0.0.1:5000"));
  ck_assert(!oci_registry_is_loopback("10.0.0.1:5000"));
  ck_assert_int_eq(oci_ref_parse("oci://h.io/x@sha256:zz", &r, NULL),
                   XDS_EINVAL);
  ck_assert_int_eq(oci_ref_parse("oci://h.io/UPPER:1", &r, NULL), XDS_EINVAL);
  ck_assert_int_eq(oci_ref_parse("oci://h.io/", &r, NULL), XDS_EINVAL);
}
END_TEST

START_TEST(tar_and_gzip) {
  unsigned char *mod = mt_wasm(3000, 2), *tar, *gz;
  const char *names[] = {"etc/readme.txt", "plugin.wasm",
                         "runtime-config.json"};
  const char *cfg =
      "{\"type\":\"envoy_proxy\",\"config\":{\"rootIds\":[\"r1\"]}}";
  const void *data[] = {"hello", mod, cfg};
  size_t lens[] = {5, 3000, strlen(cfg)}, tar_len, gz_len;
  struct unpack_found f;
  struct xds_buf out;
  struct xds_err err;
  char **ids;
  size_t n;

  tar = mt_tar(names, data, lens, 3, &tar_len);
  ck_assert_int_eq(unpack_tar_find_wasm(tar, tar_len, &f, &err), 0);
  ck_assert_uint_eq(f.wasm_len, 3000);
  ck_assert(memcmp(f.wasm, mod, 3000) == 0);
  ck_assert_ptr_nonnull(f.runtime_config);
  ck_assert_int_eq(oci_parse_root_ids((const char *)f.runtime_config,
                                      f.runtime_config_len, &ids, &n),
                   0);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(ids[0], "r1");
  xds_free(ids[0]);
  xds_free(ids);
  gz = mt_gzip(tar, tar_len, &gz_len);
  ck_assert(unpack_is_gzip(gz, gz_len));
  xds_buf_init(&out, 1 << 20);
  ck_assert_int_eq(unpack_gunzip(gz, gz_len, &out, &err), 0);
  ck_assert_uint_eq(out.len, tar_len);
  ck_assert(memcmp(out.data, tar, tar_len) == 0);
  xds_buf_cleanup(&out);
  /* The output limit holds: a small limit on a larger stream. */
  xds_buf_init(&out, 1000);
  ck_assert_int_eq(unpack_gunzip(gz, gz_len, &out, &err), XDS_ETOOBIG);
  xds_buf_cleanup(&out);
  /* Truncated gzip. */
  xds_buf_init(&out, 1 << 20);
  ck_assert_int_eq(unpack_gunzip(gz, gz_len / 2, &out, &err), XDS_EPARSE);
  xds_buf_cleanup(&out);
  /* A header claiming more than there is: refused, nothing allocated. */
  snprintf((char *)tar + 124, 12, "%011o", 07777777777);
  {
    unsigned sum = 0;

    memset(tar + 148, ' ', 8);
    for (int k = 0; k < 512; k++)
      sum += tar[k];
    snprintf((char *)tar + 148, 8, "%06o", sum);
  }
  ck_assert_int_eq(unpack_tar_find_wasm(tar, tar_len, &f, &err), XDS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err.msg, "claims"));
  xds_free(tar);
  xds_free(gz);
  xds_free(mod);
}
END_TEST

START_TEST(gzip_bomb_is_bounded) {
  size_t big = 64u << 20, gz_len;
  unsigned char *zeros = xds_calloc(1, big), *gz;
  struct xds_buf out;
  struct xds_err err;

  gz = mt_gzip(zeros, big, &gz_len);
  ck_assert_uint_lt(gz_len, 1u << 20);
  xds_buf_init(&out, 4u << 20);
  ck_assert_int_eq(unpack_gunzip(gz, gz_len, &out, &err), XDS_ETOOBIG);
  ck_assert_uint_le(out.cap, (4u << 20) + 1);
  xds_buf_cleanup(&out);
  xds_free(gz);
  xds_free(zeros);
}
END_TEST

START_TEST(tar_single_and_ambiguous) {
  unsigned char *a = mt_wasm(64, 1), *b = mt_wasm(64, 2), *tar;
  const char *one[] = {"filter.wasm"}, *two[] = {"a.wasm", "b.wasm"};
  const void *d1[] = {a}, *d2[] = {a, b};
  size_t l1[] = {64}, l2[] = {64, 64}, len;
  struct unpack_found f;
  struct xds_err err;

  tar = mt_tar(one, d1, l1, 1, &len);
  ck_assert_int_eq(unpack_tar_find_wasm(tar, len, &f, &err), 0);
  ck_assert_str_eq(f.wasm_name, "filter.wasm");
  xds_free(tar);
  tar = mt_tar(two, d2, l2, 2, &len);
  ck_assert_int_eq(unpack_tar_find_wasm(tar, len, &f, &err), XDS_ENOTFOUND);
  ck_assert_ptr_nonnull(strstr(err.msg, "ambiguous"));
  xds_free(tar);
  xds_free(a);
  xds_free(b);
}
END_TEST

START_TEST(pull_secrets) {
  const char *json =
      "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"ZDpw\"},"
      "\"127.0.0.1:5000\":{\"auth\":\"dTpw\"},"
      "\"reg.example\":{\"username\":\"u\",\"password\":\"secret\"}}}";
  struct creds c;
  struct xds_err err;
  char dir[256], path[300];

  ck_assert_int_eq(creds_from_json(json, strlen(json), "docker.io", &c, &err),
                   0);
  ck_assert_str_eq(c.basic, "ZDpw");
  creds_cleanup(&c);
  ck_assert_int_eq(
      creds_from_json(json, strlen(json), "127.0.0.1:5000", &c, &err), 0);
  ck_assert_str_eq(c.basic, "dTpw");
  creds_cleanup(&c);
  ck_assert_int_eq(creds_from_json(json, strlen(json), "reg.example", &c, &err),
                   0);
  ck_assert_str_eq(c.basic, "dTpzZWNyZXQ="); /* base64("u:secret") */
  creds_cleanup(&c);
  ck_assert_int_eq(creds_from_json(json, strlen(json), "other.io", &c, &err),
                   XDS_ENOTFOUND);
  ck_assert_ptr_null(strstr(err.msg, "ZDpw"));
  ck_assert_ptr_null(strstr(err.msg, "dTpw"));
  mt_tmpdir(dir, sizeof(dir));
  snprintf(path, sizeof(path), "%s/regcred.json", dir);
  ck_assert_int_eq(mt_write_file(path, json, strlen(json)), 0);
  ck_assert_int_eq(creds_load(dir, "regcred", "127.0.0.1:5000", &c, &err), 0);
  creds_cleanup(&c);
  snprintf(path, sizeof(path), "%s/k8s", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/k8s/.dockerconfigjson", dir);
  ck_assert_int_eq(mt_write_file(path, json, strlen(json)), 0);
  ck_assert_int_eq(creds_load(dir, "k8s", "reg.example", &c, &err), 0);
  creds_cleanup(&c);
  ck_assert_int_eq(creds_load(dir, "../etc/passwd", "x", &c, &err), XDS_EINVAL);
  ck_assert_int_eq(creds_load(dir, ".hidden", "x", &c, &err), XDS_EINVAL);
  ck_assert_int_eq(creds_load(dir, "missing", "x", &c, &err), XDS_ENOTFOUND);
  ck_assert_int_eq(creds_load(NULL, "regcred", "x", &c, &err), XDS_EINVAL);
  mt_rmrf(dir);
}
END_TEST

static int allowed_v4(const char *a) {
  struct sockaddr_in in;

  memset(&in, 0, sizeof(in));
  in.sin_family = AF_INET;
  inet_pton(AF_INET, a, &in.sin_addr);
  return fetch_addr_allowed((struct sockaddr *)&in, 0);
}

static int allowed_v6(const char *a) {
  struct sockaddr_in6 in;

  memset(&in, 0, sizeof(in));
  in.sin6_family = AF_INET6;
  inet_pton(AF_INET6, a, &in.sin6_addr);
  return fetch_addr_allowed((struct sockaddr *)&in, 0);
}

START_TEST(destination_policy) {
  struct fetch_policy pol;
  struct fetch_req req;
  struct fetch_resp resp;
  struct xds_err err;

  ck_assert(!allowed_v4("169.254.169.254"));
  ck_assert(!allowed_v4("169.254.1.1"));
  ck_assert(!allowed_v4("100.100.100.200"));
  ck_assert(allowed_v4("127.0.0.1"));
  ck_assert(allowed_v4("10.1.2.3"));
  ck_assert(!allowed_v6("fe80::1"));
  ck_assert(!allowed_v6("febf::1"));
  ck_assert(!allowed_v6("fd00:ec2::254"));
  ck_assert(!allowed_v6("::ffff:169.254.169.254"));
  ck_assert(allowed_v6("::1"));
  ck_assert(!fetch_host_allowed("metadata.google.internal", 0));
  ck_assert(!fetch_host_allowed("[fe80::1%25eth0]", 0));
  ck_assert(fetch_host_allowed("metadata.google.internal", 1));
  ck_assert(fetch_host_allowed("example.com", 0));
  /* End to end, refused before any packet leaves. */
  ck_assert_int_eq(fetch_global_init(), 0);
  memset(&pol, 0, sizeof(pol));
  pol.timeout_ms = 2000;
  memset(&req, 0, sizeof(req));
  req.url = "http://169.254.169.254/latest/meta-data/";
  req.max_body = 1024;
  ck_assert_int_eq(fetch_run(&pol, &req, &resp, &err), XDS_EPERM);
  fetch_resp_cleanup(&resp);
  req.url = "http://user:pw@127.0.0.1:1/x";
  ck_assert_int_eq(fetch_run(&pol, &req, &resp, &err), XDS_EINVAL);
  ck_assert_ptr_null(strstr(err.msg, "pw"));
  fetch_resp_cleanup(&resp);
  req.url = "file:///etc/passwd";
  ck_assert_int_eq(fetch_run(&pol, &req, &resp, &err), XDS_EINVAL);
  fetch_resp_cleanup(&resp);
}
END_TEST

/* IPv4 embedded in IPv6 is judged by the IPv4 rules, whichever way it is
 * embedded (issue 13 item 3). */
START_TEST(embedded_ipv4_destinations) {
  static const char *const refused[] = {
      "::ffff:169.254.169.254",        /* IPv4-mapped */
      "::169.254.169.254",             /* IPv4-compatible */
      "::ffff:0:169.254.169.254",      /* SIIT IPv4-translated */
      "64:ff9b::169.254.169.254",      /* NAT64 well-known prefix */
      "64:ff9b::a9fe:a9fe",            /* the same, in hex */
      "64:ff9b::100.100.100.200",      /* Alibaba metadata through NAT64 */
      "64:ff9b:1::a9fe:a9fe",          /* local-use NAT64, /96 inside /48 */
      "64:ff9b:1:a9fe:a9:fe00::",      /* local-use NAT64, RFC 6052 /48 */
      "64:ff9b:1:ffa9:fe:a9fe::",      /* local-use NAT64, RFC 6052 /56 */
      "64:ff9b:1:ffff:a9:fea9:fe00:0", /* local-use NAT64, /64 */
      "2002:a9fe:a9fe::1",             /* 6to4 */
      "2001:0:a9fe:a9fe::1",           /* Teredo server */
      "2001:0:4136:e378:8000:63bf:5601:5601", /* Teredo client 169.254.169.254
                                                 obscured */
  };
  static const char *const allowed[] = {
      "::ffff:127.0.0.1",     "64:ff9b::10.1.2.3",
      "2002:0a01:0203::1",    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      "2001:db8::1",          "::1",
      "64:ff9b:2::a9fe:a9fe", /* outside 64:ff9b:1::/48 */
  };
  char lit[80];

  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    ck_assert_msg(!allowed_v6(refused[i]), "%s allowed", refused[i]);
    snprintf(lit, sizeof(lit), "[%s]", refused[i]);
    ck_assert_msg(!fetch_host_allowed(lit, 0), "%s allowed", lit);
    ck_assert(fetch_host_allowed(lit, 1));
  }
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
    ck_assert_msg(allowed_v6(allowed[i]), "%s refused", allowed[i]);
}
END_TEST

START_TEST(cache_put_restart_evict) {
  char dir[256], h1[65], h2[65], h3[65], got[65], path[400];
  unsigned char *m1 = mt_wasm(1000, 1), *m2 = mt_wasm(1000, 2),
                *m3 = mt_wasm(1000, 3);
  char *ids[] = {"root"};
  struct modcache *c;
  struct modcache_meta meta;
  struct xds_err err;
  const char *refs[1];
  int fd, priv;
  uint64_t size;

  mt_tmpdir(dir, sizeof(dir));
  mt_sha(m1, 1000, h1);
  mt_sha(m2, 1000, h2);
  mt_sha(m3, 1000, h3);
  ck_assert_int_eq(modcache_open(dir, 2500, &c, &err), 0);
  /* The name must be the content's digest. */
  ck_assert_int_eq(modcache_put(c, h2, m1, 1000, NULL, 0, 0, &err), XDS_EINVAL);
  ck_assert_int_eq(modcache_put(c, h1, m1, 1000, ids, 1, 1, &err), 0);
  ck_assert_int_eq(modcache_put(c, h2, m2, 1000, NULL, 0, 0, &err), 0);
  ck_assert_int_eq(modcache_resolution_put(c, "oci://x/y:1\n", h1, h2), 0);
  ck_assert(modcache_has(c, h1, &meta));
  ck_assert_uint_eq(meta.size, 1000);
  ck_assert(meta.is_private);
  ck_assert_uint_eq(meta.n_root_ids, 1);
  modcache_meta_cleanup(&meta);
  modcache_free(c);

  /* Restart: modules, metadata and resolutions are back. */
  ck_assert_int_eq(modcache_open(dir, 2500, &c, &err), 0);
  ck_assert_uint_eq(modcache_count(c), 2);
  ck_assert_uint_eq(modcache_evictions(c), 0);
  ck_assert(modcache_has(c, h1, &meta));
  ck_assert(meta.is_private);
  ck_assert_str_eq(meta.root_ids[0], "root");
  modcache_meta_cleanup(&meta);
  ck_assert_int_eq(modcache_resolution_get(c, "oci://x/y:1\n", got, NULL), 0);
  ck_assert_str_eq(got, h1);
  ck_assert(modcache_manifest_get(c, h2, got));
  ck_assert_str_eq(got, h1);
  ck_assert_int_eq(modcache_open_module(c, h2, &fd, &size, &priv), 0);
  ck_assert_uint_eq(size, 1000);
  ck_assert(!priv);
  close(fd);

  /* Over the bound: h1 is referenced and older; h2 is the unreferenced
   * one, so it goes even though it was used last. */
  refs[0] = h1;
  modcache_set_referenced(c, refs, 1);
  ck_assert_int_eq(modcache_put(c, h3, m3, 1000, NULL, 0, 0, &err), 0);
  ck_assert(modcache_has(c, h1, NULL));
  ck_assert(!modcache_has(c, h2, NULL));
  ck_assert(modcache_has(c, h3, NULL));
  ck_assert_uint_eq(modcache_bytes(c), 2000);
  ck_assert_uint_eq(modcache_evictions(c), 1);
  /* Everything referenced: the bound is exceeded rather than evicting. */
  {
    const char *all[] = {h1, h3};
    unsigned char *m4 = mt_wasm(1000, 4);
    char h4[65];

    modcache_set_referenced(c, all, 2);
    mt_sha(m4, 1000, h4);
    ck_assert_int_eq(modcache_put(c, h4, m4, 1000, NULL, 0, 0, &err), 0);
    ck_assert(modcache_has(c, h1, NULL) && modcache_has(c, h3, NULL));
    ck_assert_uint_eq(modcache_evictions(c), 1);
    /* Once unreferenced, the oldest goes. */
    modcache_set_referenced(c, all + 1, 1);
    ck_assert(!modcache_has(c, h1, NULL));
    ck_assert_uint_eq(modcache_evictions(c), 2);
    ck_assert(modcache_has(c, h3, NULL) && modcache_has(c, h4, NULL));
    xds_free(m4);
  }
  modcache_free(c);

  /* A corrupted file is dropped at open, never served. */
  snprintf(path, sizeof(path), "%s/sha256/%s.wasm", dir, h3);
  ck_assert_int_eq(mt_write_file(path, m1, 1000), 0);
  ck_assert_int_eq(modcache_open(dir, 0, &c, &err), 0);
  ck_assert(!modcache_has(c, h3, NULL));
  ck_assert(access(path, F_OK) != 0);
  modcache_free(c);
  mt_rmrf(dir);
  xds_free(m1);
  xds_free(m2);
  xds_free(m3);
}
END_TEST

Suite *modules_suite(void) {
  Suite *s = suite_create("modules");
  TCase *tc = tcase_create("offline");

  tcase_add_test(tc, digest_and_magic);
  tcase_add_test(tc, oci_references);
  tcase_add_test(tc, tar_and_gzip);
  tcase_add_test(tc, gzip_bomb_is_bounded);
  tcase_add_test(tc, tar_single_and_ambiguous);
  tcase_add_test(tc, pull_secrets);
  tcase_add_test(tc, destination_policy);
  tcase_add_test(tc, embedded_ipv4_destinations);
  tcase_add_test(tc, cache_put_restart_evict);
  suite_add_tcase(s, tc);
  suite_add_tcase(s, modules_http_tcase());
  suite_add_tcase(s, modules_admin_tcase());
  suite_add_tcase(s, modules_oci_tcase());
  return s;
}
