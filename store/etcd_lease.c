/*
 * etcd_lease.c: leases, the leader key and writes fenced by it.
 */
#include "store/etcd_lease.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "store/etcd_proto.h"

static json_t *b64(const char *p, size_t n) {
  char *s = etcd_b64_encode(p, n);
  json_t *j;

  if (s == NULL)
    return NULL;
  j = json_string(s);
  xds_free(s);
  return j;
}

static json_t *int64_json(int64_t v) {
  char buf[32];

  snprintf(buf, sizeof(buf), "%lld", (long long)v);
  return json_string(buf);
}

int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *id,
                     struct xds_err *err) {
  json_t *req = json_pack("{s:o}", "TTL", int64_json(ttl_s)), *resp = NULL;
  int rc;

  *id = 0;
  if (req == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  rc = etcd_client_call(c, "/v3/lease/grant", req, &resp, err);
  json_decref(req);
  if (rc < 0)
    return rc;
  if (etcd_json_int64(json_object_get(resp, "ID"), id) < 0 || *id == 0)
    rc = xds_err_set(err, XDS_EPARSE, "etcd %s: lease grant: no lease id",
                     etcd_client_endpoint(c));
  json_decref(resp);
  return rc;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl,
                         struct xds_err *err) {
  json_t *req = json_pack("{s:o}", "ID", int64_json(id)), *resp = NULL, *r;
  int rc;

  *ttl = 0;
  if (req == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  rc = etcd_client_call(c, "/v3/lease/keepalive", req, &resp, err);
  json_decref(req);
  if (rc < 0)
    return rc;
  /* A streaming call: the gateway wraps its one answer in "result". A
   * lease that is gone comes back without a TTL (protobuf JSON omits 0). */
  r = json_object_get(resp, "result");
  if (r == NULL)
    r = resp;
  if (etcd_json_int64(json_object_get(r, "TTL"), ttl) < 0)
    rc = xds_err_set(err, XDS_EPARSE, "etcd %s: lease keepalive: bad TTL",
                     etcd_client_endpoint(c));
  if (*ttl < 0)
    *ttl = 0;
  json_decref(resp);
  return rc;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, struct xds_err *err) {
  json_t *req = json_pack("{s:o}", "ID", int64_json(id)), *resp = NULL;
  int rc;

  if (req == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  rc = etcd_client_call(c, "/v3/lease/revoke", req, &resp, err);
  json_decref(req);
  json_decref(resp);
  return rc == XDS_ENOTFOUND ? 0 : rc;
}

int etcd_lease_campaign(struct etcd_client *c, const char *key,
                        const char *value, int64_t lease, int *won,
                        char **holder, struct xds_err *err) {
  json_t *req, *resp = NULL, *kv;
  int64_t held_by = 0;
  int rc;

  *won = 0;
  if (holder != NULL)
    *holder = NULL;
  req = json_pack(
      "{s:[{s:o, s:s, s:s, s:o}], s:[{s:{s:o, s:o, s:o}}], s:[{s:{s:o}}]}",
      "compare", "key", b64(key, strlen(key)), "target", "CREATE", "result",
      "EQUAL", "create_revision", int64_json(0), "success", "request_put",
      "key", b64(key, strlen(key)), "value", b64(value, strlen(value)), "lease",
      int64_json(lease), "failure", "request_range", "key",
      b64(key, strlen(key)));
  if (req == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  rc = etcd_client_call(c, "/v3/kv/txn", req, &resp, err);
  json_decref(req);
  if (rc < 0)
    return rc;
  if (json_is_true(json_object_get(resp, "succeeded"))) {
    *won = 1;
    json_decref(resp);
    return 0;
  }
  kv = json_array_get(
      json_object_get(
          json_object_get(json_array_get(json_object_get(resp, "responses"), 0),
                          "response_range"),
          "kvs"),
      0);
  etcd_json_int64(json_object_get(kv, "lease"), &held_by);
  if (held_by == lease) {
    *won = 1; /* an earlier campaign of ours whose answer was lost */
  } else if (holder != NULL && kv != NULL) {
    char *v = NULL;
    size_t n = 0;
    const char *s = json_string_value(json_object_get(kv, "value"));

    if (s != NULL && etcd_b64_decode(s, &v, &n) == 0)
      *holder = v;
  }
  json_decref(resp);
  return 0;
}

int etcd_lease_put_if_holder(struct etcd_client *c, const char *leader_key,
                             int64_t lease, const char *key, const char *value,
                             size_t len, struct xds_err *err) {
  json_t *op, *req, *resp = NULL;
  int rc;

  if (value != NULL)
    op = json_pack("{s:{s:o, s:o}}", "request_put", "key",
                   b64(key, strlen(key)), "value", b64(value, len));
  else
    op = json_pack("{s:{s:o}}", "request_delete_range", "key",
                   b64(key, strlen(key)));
  if (op == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  req = json_pack("{s:[{s:o, s:s, s:s, s:o}], s:[o]}", "compare", "key",
                  b64(leader_key, strlen(leader_key)), "target", "LEASE",
                  "result", "EQUAL", "lease", int64_json(lease), "success", op);
  if (req == NULL)
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  rc = etcd_client_call(c, "/v3/kv/txn", req, &resp, err);
  json_decref(req);
  if (rc < 0)
    return rc;
  if (!json_is_true(json_object_get(resp, "succeeded")))
    rc = xds_err_set(err, XDS_ECONFLICT,
                     "%s is not held by lease %lld any more: %s not written",
                     leader_key, (long long)lease, key);
  json_decref(resp);
  return rc;
}
