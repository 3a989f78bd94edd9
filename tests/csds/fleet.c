/*
 * fleet.c: see fleet.h.
 */
#include "tests/csds/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "server/transport/csds_client.h"
#include "tests/e2e/xds_client.h"
#include "tests/testkit.h"

#define FLEET_MS 5000

struct fleet_proxy {
  struct xds_client *client;
  struct xds_stream *stream;
};

static int send_req(struct xds_stream *s, Envoy__Config__Core__V3__Node *node,
                    const char *type_url, const char *version,
                    const char *nonce, char **names, size_t n_names,
                    const char *error) {
  Envoy__Service__Discovery__V3__DiscoveryRequest req =
      ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;

  req.node = node;
  req.type_url = (char *)type_url;
  req.version_info = (char *)(version != NULL ? version : "");
  req.response_nonce = (char *)(nonce != NULL ? nonce : "");
  req.resource_names = names;
  req.n_resource_names = n_names;
  if (error != NULL) {
    st.code = 3;
    st.message = (char *)error;
    req.error_detail = &st;
  }
  return xds_stream_send_request(s, &req, FLEET_MS);
}

static int fail(const char *id, const char *what, int rc) {
  fprintf(stderr, "fleet: proxy %s: %s (%d)\n", id, what, rc);
  return -1;
}

static const char *g_nack_error = FLEET_NACK_ERROR;

void fleet_set_nack_error(const char *msg) {
  g_nack_error = msg != NULL ? msg : FLEET_NACK_ERROR;
}

static int proxy_new(const char *target, const char *id, const char *tenant,
                     enum fleet_state state, const char *ca_pem,
                     const char *key_pem, const char *cert_pem,
                     struct fleet_proxy **out);

int fleet_proxy_new(const char *target, const char *id, const char *tenant,
                    enum fleet_state state, struct fleet_proxy **out) {
  return proxy_new(target, id, tenant, state, NULL, NULL, NULL, out);
}

int fleet_proxy_new_tls(const char *target, const char *id, const char *tenant,
                        enum fleet_state state, const char *ca_pem,
                        const char *key_pem, const char *cert_pem,
                        struct fleet_proxy **out) {
  return proxy_new(target, id, tenant, state, ca_pem, key_pem, cert_pem, out);
}

static int proxy_new(const char *target, const char *id, const char *tenant,
                     enum fleet_state state, const char *ca_pem,
                     const char *key_pem, const char *cert_pem,
                     struct fleet_proxy **out) {
  const char *meta[] = {"wasmxds.tenant", tenant, NULL};
  const char *meta_org[] = {"wasmxds.organization", "acme", NULL};
  char *ecds[] = {FLEET_EXT_WASM, FLEET_EXT_SUBSTITUTE, FLEET_EXT_MISSING};
  Envoy__Config__Core__V3__Node *node;
  Envoy__Service__Discovery__V3__DiscoveryResponse *r = NULL;
  struct fleet_proxy *p = xds_calloc(1, sizeof(*p));
  size_t n_ecds;
  int rc;

  *out = NULL;
  if (p == NULL)
    return fail(id, "out of memory", XDS_ENOMEM);
  node = xds_node_new(id, "fleet", tenant != NULL ? meta : meta_org, NULL);
  rc = node == NULL     ? XDS_ENOMEM
       : ca_pem != NULL ? xds_client_new_tls(target, ca_pem, key_pem, cert_pem,
                                             NULL, &p->client)
                        : xds_client_new(target, NULL, &p->client);
  if (rc == 0)
    rc = xds_stream_open(p->client, XDS_METHOD_ADS, &p->stream);
  if (rc < 0)
    goto err;
  rc = send_req(p->stream, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, 0, NULL);
  if (rc == 0)
    rc = xds_stream_recv_response(p->stream, FLEET_MS, &r);
  if (rc < 0 || state == FLEET_PENDING)
    goto done;
  rc = send_req(p->stream, NULL, XDS_TYPE_LISTENER, r->version_info, r->nonce,
                NULL, 0, state == FLEET_NACKED ? g_nack_error : NULL);
  if (rc < 0 || state == FLEET_NACKED)
    goto done;
  xds_msg_free(r);
  r = NULL;
  n_ecds = state == FLEET_SYNCED ? 2 : 3;
  rc = send_req(p->stream, NULL, XDS_TYPE_ECDS, NULL, NULL, ecds, n_ecds, NULL);
  if (rc == 0)
    rc = xds_stream_recv_response(p->stream, FLEET_MS, &r);
  if (rc == 0)
    rc = send_req(p->stream, NULL, XDS_TYPE_ECDS, r->version_info, r->nonce,
                  ecds, n_ecds, NULL);
done:
  xds_msg_free(r);
  xds_node_free(node);
  if (rc < 0) {
    fleet_proxy_free(p);
    return fail(id, "xDS exchange failed", rc);
  }
  *out = p;
  return 0;
err:
  xds_node_free(node);
  fleet_proxy_free(p);
  return fail(id, "cannot connect", rc);
}

void fleet_proxy_free(struct fleet_proxy *p) {
  if (p == NULL)
    return;
  xds_stream_free(p->stream);
  xds_client_free(p->client);
  xds_free(p);
}

static Envoy__Service__Status__V3__ClientStatusResponse *
fetch(const struct csds_client_opts *opts,
      const Envoy__Service__Status__V3__ClientStatusRequest *req, char *err,
      size_t size);

Envoy__Service__Status__V3__ClientStatusResponse *
fleet_fetch(const char *target,
            const Envoy__Service__Status__V3__ClientStatusRequest *req,
            char *err, size_t size) {
  struct csds_client_opts o = {0};

  o.target = target;
  return fetch(&o, req, err, size);
}

Envoy__Service__Status__V3__ClientStatusResponse *
fleet_fetch_tls(const char *target, const char *ca, const char *cert,
                const char *key, char *err, size_t size) {
  struct csds_client_opts o = {0};

  o.target = target;
  o.tls_ca = ca;
  o.tls_cert = cert;
  o.tls_key = key;
  return fetch(&o, NULL, err, size);
}

static Envoy__Service__Status__V3__ClientStatusResponse *
fetch(const struct csds_client_opts *opts,
      const Envoy__Service__Status__V3__ClientStatusRequest *req, char *err,
      size_t size) {
  Envoy__Service__Status__V3__ClientStatusRequest empty =
      ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  struct csds_client_opts o = *opts;
  Envoy__Service__Status__V3__ClientStatusResponse *r;
  struct xds_err e = {0, ""};
  uint8_t *in, *out = NULL;
  size_t in_len, out_len = 0;
  int rc;

  if (req == NULL)
    req = &empty;
  o.timeout_ms = FLEET_MS;
  in_len = protobuf_c_message_get_packed_size(&req->base);
  in = malloc(in_len + 1);
  if (in == NULL) {
    snprintf(err, size, "out of memory");
    return NULL;
  }
  protobuf_c_message_pack(&req->base, in);
  rc = csds_fetch(&o, in, in_len, &out, &out_len, &e);
  free(in);
  if (rc < 0) {
    snprintf(err, size, "%s", e.msg);
    return NULL;
  }
  r = envoy__service__status__v3__client_status_response__unpack(NULL, out_len,
                                                                 out);
  xds_free(out);
  if (r == NULL)
    snprintf(err, size, "the ClientStatusResponse does not decode");
  return r;
}

void fleet_response_free(Envoy__Service__Status__V3__ClientStatusResponse *r) {
  if (r != NULL)
    envoy__service__status__v3__client_status_response__free_unpacked(r, NULL);
}

const Envoy__Service__Status__V3__ClientConfig *
fleet_find(const Envoy__Service__Status__V3__ClientStatusResponse *r,
           const char *id) {
  for (size_t i = 0; r != NULL && i < r->n_config; i++)
    if (r->config[i]->node != NULL && strcmp(r->config[i]->node->id, id) == 0)
      return r->config[i];
  return NULL;
}

const Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig *
fleet_resource(const Envoy__Service__Status__V3__ClientConfig *c,
               const char *type_url, const char *name) {
  for (size_t i = 0; c != NULL && i < c->n_generic_xds_configs; i++) {
    const Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig *g =
        c->generic_xds_configs[i];
    if (strcmp(g->type_url, type_url) == 0 && strcmp(g->name, name) == 0)
      return g;
  }
  return NULL;
}

static int in_state(const Envoy__Service__Status__V3__ClientConfig *c,
                    const char *type_url, int want) {
  size_t n = 0;

  for (size_t i = 0; c != NULL && i < c->n_generic_xds_configs; i++) {
    const Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig *g =
        c->generic_xds_configs[i];
    if (strcmp(g->type_url, type_url) != 0)
      continue;
    if ((int)g->client_status != want)
      return 0;
    n++;
  }
  return n > 0;
}

Envoy__Service__Status__V3__ClientStatusResponse *
fleet_wait_state(const char *target, const char *id, const char *type_url,
                 int want, int timeout_ms) {
  long long until = tk_now_ms() + timeout_ms;
  Envoy__Service__Status__V3__ClientStatusResponse *r = NULL;
  char err[256];

  for (;;) {
    fleet_response_free(r);
    r = fleet_fetch(target, NULL, err, sizeof(err));
    if (r != NULL && in_state(fleet_find(r, id), type_url, want))
      return r;
    if (tk_now_ms() > until)
      return r;
    tk_sleep_ms(50);
  }
}
