/*
 * check_csds_mtls.c: CSDS behind mutual TLS. The real wasmxds with
 * --tls-cert, --tls-key and --tls-client-ca (certificates made with the
 * openssl CLI) and proxies of tenants payments and web, each with its
 * certificate. FetchClientStatus through server/transport/csds_client
 * with PEM files, as `wasmxdsctl status --tls-*` does: a caller whose
 * certificate names tenant payments lists only payments' proxy, web's
 * only web's, an organization-wide certificate both, and a caller without
 * a certificate is refused.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#define E2E_STORE XDS_TEST_DATA "/e2e/store.yaml"

static struct server_proc *g_sp;
#define E2E_SERVER g_sp

static char g_dir[] = "/tmp/check_csds_mtls.XXXXXX";

static char *pem(const char *name) {
  char path[320], *text;

  snprintf(path, sizeof(path), "%s/%s", g_dir, name);
  text = tk_read_file(path, NULL);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  return text;
}

/* The ids listed to a caller with certificate name (NULL: none), sorted
 * and comma-joined into buf; or the error. */
static const char *listed(const char *name, char *buf, size_t size) {
  char ca[320], crt[320], key[320], err[256];
  Envoy__Service__Status__V3__ClientStatusResponse *r;
  size_t len = 0;

  snprintf(ca, sizeof(ca), "%s/ca.crt", g_dir);
  snprintf(crt, sizeof(crt), "%s/%s.crt", g_dir, name ? name : "");
  snprintf(key, sizeof(key), "%s/%s.key", g_dir, name ? name : "");
  r = fleet_fetch_tls(server_proc_target(g_sp), ca, name ? crt : NULL,
                      name ? key : NULL, err, sizeof(err));
  if (r == NULL) {
    snprintf(buf, size, "error: %s", err);
    return buf;
  }
  buf[0] = '\0';
  /* The fleet is small: two passes give a sorted list. */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < r->n_config; i++) {
      const char *id = r->config[i]->node->id;
      if ((pass == 0) == (strcmp(id, "pay-1") == 0))
        len +=
            (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", id);
    }
  fleet_response_free(r);
  return buf;
}

/* An Istio-bootstrapped proxy of namespace ns (node id only, identity
 * from its certificate ns.crt) that sent one LDS request. */
static struct xds_stream *istio_proxy(const char *ns, const char *ca_pem,
                                      struct xds_client **cl) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  char id[128], kn[64], cn[64], *k, *c;
  struct xds_stream *st;

  snprintf(id, sizeof(id), "sidecar~10.0.0.1~p.%s~%s.svc.cluster.local", ns,
           ns);
  snprintf(kn, sizeof(kn), "%s.key", ns);
  snprintf(cn, sizeof(cn), "%s.crt", ns);
  k = pem(kn);
  c = pem(cn);
  ck_assert_int_eq(
      xds_client_new_tls(server_proc_target(g_sp), ca_pem, k, c, NULL, cl), 0);
  ck_assert_int_eq(xds_stream_open(*cl, XDS_METHOD_ADS, &st), 0);
  req.node = xds_node_new(id, "fleet", NULL, NULL);
  req.type_url = "type.googleapis.com/envoy.config.listener.v3.Listener";
  ck_assert_int_eq(xds_stream_send_request(st, &req, 5000), 0);
  xds_node_free(req.node);
  free(k);
  free(c);
  return st;
}

START_TEST(test_csds_scoped_by_certificate) {
  char cmd[4096], crt[320], key[320], ca[320], buf[512];
  const char *args[] = {"--tls-cert",      crt, "--tls-key", key,
                        "--tls-client-ca", ca,  NULL};
  char *ca_pem, *pk, *pc, *wk, *wc;
  struct fleet_proxy *pay, *web;
  int rc;

  ck_assert_ptr_nonnull(mkdtemp(g_dir));
  snprintf(
      cmd, sizeof(cmd),
      "set -e; cd '%s'; exec >openssl.log 2>&1; "
      "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
      "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 "
      "-subj /CN=csds-ca -addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign; "
      "leaf() { openssl req $K -keyout $1.key -out $1.csr -subj /CN=$1; "
      "printf 'subjectAltName=%%s\\nextendedKeyUsage=%%s\\n' \"$2\" \"$3\" "
      ">$1.ext; openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 2 -out $1.crt -extfile $1.ext; }; "
      "leaf server IP:127.0.0.1 serverAuth; "
      "leaf payments URI:spiffe://t/organizations/acme/tenants/payments "
      "clientAuth; "
      "leaf web URI:spiffe://t/organizations/acme/tenants/web clientAuth; "
      "leaf acme URI:spiffe://t/organizations/acme clientAuth; "
      "leaf globex URI:spiffe://t/organizations/globex clientAuth; "
      "leaf shop URI:spiffe://t/ns/shop/sa/a clientAuth; "
      "leaf books URI:spiffe://t/ns/books/sa/b clientAuth",
      g_dir);
  rc = system(cmd);
  ck_assert_msg(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                "openssl failed; see %s/openssl.log", g_dir);
  snprintf(crt, sizeof(crt), "%s/server.crt", g_dir);
  snprintf(key, sizeof(key), "%s/server.key", g_dir);
  snprintf(ca, sizeof(ca), "%s/ca.crt", g_dir);
  ck_assert_int_eq(server_proc_start(E2E_STORE, args, &g_sp), 0);
  ca_pem = pem("ca.crt");
  pk = pem("payments.key");
  pc = pem("payments.crt");
  wk = pem("web.key");
  wc = pem("web.crt");
  E2E_ASSERT(fleet_proxy_new_tls(server_proc_target(g_sp), "pay-1",
                                 "organizations/acme/tenants/payments",
                                 FLEET_PENDING, ca_pem, pk, pc, &pay) == 0,
             "payments proxy");
  E2E_ASSERT(fleet_proxy_new_tls(server_proc_target(g_sp), "web-1",
                                 "organizations/acme/tenants/web",
                                 FLEET_PENDING, ca_pem, wk, wc, &web) == 0,
             "web proxy");

  listed("payments", buf, sizeof(buf));
  E2E_ASSERT(strcmp(buf, "pay-1") == 0, "payments' certificate lists: %s", buf);
  listed("web", buf, sizeof(buf));
  E2E_ASSERT(strcmp(buf, "web-1") == 0, "web's certificate lists: %s", buf);
  listed("acme", buf, sizeof(buf));
  E2E_ASSERT(strcmp(buf, "pay-1,web-1") == 0,
             "the organization's certificate lists: %s", buf);
  listed("globex", buf, sizeof(buf));
  E2E_ASSERT(buf[0] == '\0', "another organization's certificate lists: %s",
             buf);
  listed(NULL, buf, sizeof(buf));
  E2E_ASSERT(strncmp(buf, "error: ", 7) == 0,
             "a caller without a certificate was answered: %s", buf);

  /* Istio certificates name a namespace (and no organization): a caller
   * of namespace shop lists shop's proxies, not books'. */
  {
    struct xds_client *sc, *bc;
    struct xds_stream *ss = istio_proxy("shop", ca_pem, &sc);
    struct xds_stream *bs = istio_proxy("books", ca_pem, &bc);
    const char *want = "sidecar~10.0.0.1~p.shop~shop.svc.cluster.local";

    /* Until both streams are connected (each listed to its own). */
    for (int i = 0; i < 100; i++) {
      if (strstr(listed("books", buf, sizeof(buf)), "p.books") != NULL &&
          strstr(listed("shop", buf, sizeof(buf)), "p.shop") != NULL)
        break;
      usleep(50000);
    }
    E2E_ASSERT(strcmp(buf, want) == 0, "shop's certificate lists: %s", buf);
    listed("books", buf, sizeof(buf));
    E2E_ASSERT(
        strcmp(buf, "sidecar~10.0.0.1~p.books~books.svc.cluster.local") == 0,
        "books' certificate lists: %s", buf);
    listed("acme", buf, sizeof(buf));
    E2E_ASSERT(strcmp(buf, "pay-1,web-1") == 0,
               "the organization's certificate lists: %s", buf);
    xds_stream_free(ss);
    xds_stream_free(bs);
    xds_client_free(sc);
    xds_client_free(bc);
  }

  fleet_proxy_free(pay);
  fleet_proxy_free(web);
  free(ca_pem);
  free(pk);
  free(pc);
  free(wk);
  free(wc);
  server_proc_stop(g_sp, NULL);
  server_proc_free(g_sp);
  g_sp = NULL;
  tk_rm_tree(g_dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("csds_mtls");
  TCase *tc = tcase_create("csds_mtls");
  SRunner *sr;
  int failed;

  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_csds_scoped_by_certificate);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
