/*
 * admin.c: check_protocol, the admin endpoints: health, readiness,
 * /debug/proxies.
 */
#include "tests/protocol/protocol.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- admin endpoints --------------------------------------------------- */

struct body {
  char *data;
  size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct body *b = ud;
  size_t n = size * nmemb;
  char *p = realloc(b->data, b->len + n + 1);

  if (p == NULL)
    return 0;
  b->data = p;
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* GETs path from the admin endpoint; returns the HTTP status and sets
 * *body (nullable) to a new string. */
static long http_get(const char *path, char **body) {
  struct body b = {NULL, 0};
  char url[256];
  long code = 0;
  int port = server_proc_admin_port(g_sp);
  CURL *c;
  CURLcode rc;

  E2E_ASSERT(port > 0, "no admin port in the server's log");
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  c = curl_easy_init();
  ck_assert_ptr_nonnull(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  rc = curl_easy_perform(c);
  E2E_ASSERT(rc == CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  if (body != NULL)
    *body = b.data != NULL ? b.data : strdup("");
  else
    free(b.data);
  return code;
}

/* The status object of node id in the JSON array of path (NULL when
 * absent). New reference. */
static json_t *proxy_status(const char *path, const char *id) {
  json_error_t jerr;
  json_t *arr, *found = NULL;
  char *body = NULL;
  long code = http_get(path, &body);
  size_t i;
  json_t *o;

  E2E_ASSERT(code == 200, "GET %s: HTTP %ld: %s", path, code, body);
  arr = json_loads(body, 0, &jerr);
  E2E_ASSERT(arr != NULL && json_is_array(arr),
             "GET %s is not a JSON array: %s", path, body);
  free(body);
  json_array_foreach(arr, i, o) {
    json_t *nid = json_object_get(o, "node_id");
    if (json_is_string(nid) && strcmp(json_string_value(nid), id) == 0) {
      found = json_incref(o);
      break;
    }
  }
  json_decref(arr);
  return found;
}

/* The state of resource name of type ("LDS"/"ECDS") in a proxy's status
 * ("" when absent); *error the NACK error (nullable, "" when none). */
static const char *res_state(json_t *p, const char *type, const char *name,
                             const char **error) {
  json_t *r = json_object_get(
      json_object_get(json_object_get(json_object_get(p, "types"), type),
                      "resources"),
      name);
  json_t *st = json_object_get(r, "state"), *er = json_object_get(r, "error");

  if (error != NULL)
    *error = json_is_string(er) ? json_string_value(er) : "";
  return json_is_string(st) ? json_string_value(st) : "";
}

/* Polls /debug/proxies/{id} until resource name reaches state (bounded). */
static json_t *wait_state(const char *id, const char *type, const char *name,
                          const char *state) {
  char path[128];
  long long end = tk_now_ms() + 3000;
  json_t *p = NULL;

  snprintf(path, sizeof(path), "/debug/proxies/%s", id);
  for (;;) {
    json_decref(p);
    p = proxy_status(path, id);
    if (p != NULL && strcmp(res_state(p, type, name, NULL), state) == 0)
      return p;
    if (tk_now_ms() > end)
      break;
    tk_sleep_ms(50);
  }
  {
    char *dump = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
    E2E_FAIL("%s %s of %s never reached %s; status: %s", type, name, id, state,
             dump != NULL ? dump : "(proxy absent)");
  }
  return NULL;
}

START_TEST(admin_health_and_ready) {
  char *body = NULL;
  long code;

  code = http_get("/healthz", &body);
  E2E_ASSERT(code == 200, "/healthz: HTTP %ld (%s)", code, body);
  free(body);
  code = http_get("/readyz", &body);
  E2E_ASSERT(code == 200, "/readyz: HTTP %ld (%s)", code, body);
  free(body);
  code = http_get("/debug/proxies/no-such-node", NULL);
  E2E_ASSERT(code == 404, "/debug/proxies/no-such-node: HTTP %ld, want 404",
             code);
}
END_TEST

/* Per resource: DEPLOYMENT_PENDING once sent, FILTERS_DEPLOYED once ACKed,
 * DEPLOYMENT_FAILED with the NACK's error once NACKed; the node shown. */
START_TEST(admin_proxy_status) {
  static const char nack_msg[] = "e2e-status-nack: plugin on_configure failed";
  Envoy__Config__Core__V3__Node *node = node_new("status-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(XDS_METHOD_ADS);
  const char *err = NULL;
  struct got l, e, e2;
  json_t *p;

  sotw_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  must_recv(s, 0, XDS_TYPE_LISTENER, ANSWER_MS, &l, "LDS");
  ack(s, &l, NULL);
  sotw_send(s, NULL, XDS_TYPE_ECDS, NULL, NULL, PAY_EXTS, NULL);
  must_recv(s, 0, XDS_TYPE_ECDS, ANSWER_MS, &e, "ECDS");

  /* Sent, not ACKed: pending; the node is shown. */
  p = wait_state("status-1", "ECDS", E_AUTHZ, "DEPLOYMENT_PENDING");
  json_decref(p);
  p = proxy_status("/debug/proxies", "status-1");
  E2E_ASSERT(p != NULL, "/debug/proxies does not list status-1");
  E2E_ASSERT(json_is_string(json_object_get(p, "tenant")) &&
                 strcmp(json_string_value(json_object_get(p, "tenant")),
                        TENANT_PAYMENTS) == 0,
             "/debug/proxies: status-1 without its tenant");
  E2E_ASSERT(strcmp(res_state(p, "LDS", L_IN, NULL), "FILTERS_DEPLOYED") == 0,
             "LDS inbound-http of status-1 is '%s' after its ACK",
             res_state(p, "LDS", L_IN, NULL));
  json_decref(p);

  ack(s, &e, PAY_EXTS);
  p = wait_state("status-1", "ECDS", E_AUTHZ, "FILTERS_DEPLOYED");
  json_decref(p);

  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(s, 0, XDS_TYPE_ECDS, PUSH_MS, &e2, "a config change");
  nack(s, &e2, e.version, PAY_EXTS, nack_msg);
  p = wait_state("status-1", "ECDS", E_AUTHZ, "DEPLOYMENT_FAILED");
  res_state(p, "ECDS", E_AUTHZ, &err);
  E2E_ASSERT(strstr(err, nack_msg) != NULL,
             "DEPLOYMENT_FAILED without the NACK's error: '%s'", err);
  E2E_ASSERT(strcmp(res_state(p, "ECDS", E_SHARED, NULL), "FILTERS_DEPLOYED") ==
                 0,
             "shared-stats (not in the NACKed response) is '%s'",
             res_state(p, "ECDS", E_SHARED, NULL));
  json_decref(p);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

/* Issue 5 item 4: for every connected proxy the node id, tenant, class
 * and connected since. */
START_TEST(admin_proxy_fields) {
  Envoy__Config__Core__V3__Node *node = node_new("status-2", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(XDS_METHOD_DELTA_ADS);
  const char *key;
  int since = 0;
  struct got l;
  json_t *p, *v;

  delta_send(s, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL, NULL);
  must_recv(s, 1, XDS_TYPE_LISTENER, ANSWER_MS, &l, "delta LDS");
  p = proxy_status("/debug/proxies/status-2", "status-2");
  E2E_ASSERT(p != NULL, "/debug/proxies/status-2 does not show the proxy");
  E2E_ASSERT(json_is_string(json_object_get(p, "tenant")),
             "no tenant in the status of status-2");
  E2E_ASSERT(json_is_object(json_object_get(p, "class")) &&
                 json_is_string(json_object_get(json_object_get(p, "class"),
                                                "organization")),
             "no class (organization, tenant, mode, templates) in the "
             "status of status-2");
  json_object_foreach(p, key, v) {
    if (strstr(key, "since") != NULL || strstr(key, "connected") != NULL)
      since = 1;
  }
  {
    char *dump = json_dumps(p, JSON_COMPACT);
    E2E_ASSERT(since,
               "the status of a proxy has no 'connected since' field "
               "(issue 5 item 4): %s",
               dump);
    free(dump);
  }
  json_decref(p);
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

void protocol_add_admin(Suite *s) {
  TCase *tc = protocol_tcase(s, "admin", setup_default, teardown);

  tcase_add_test(tc, admin_health_and_ready);
  tcase_add_test(tc, admin_proxy_status);
  tcase_add_test(tc, admin_proxy_fields);
}
