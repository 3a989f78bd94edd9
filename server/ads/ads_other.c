/*
 * ads_other.c: types wasmxds does not serve. Each is answered once with an
 * empty response (a wildcard type such as CDS is then known to be empty);
 * in delta, names subscribed to a cluster, endpoint or secret type are
 * answered in removed_resources, which Envoy takes as "does not exist".
 * A stream may ask for ADS_OTHER_TYPES_MAX such types.
 */
#include "server/ads/ads_impl.h"

#include <string.h>

#include "base/alloc.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/pb/typeurl.h"
#include "server/pb/wire.h"

/* Unserved types whose Envoy client takes a delta removal of a name it
 * asked for as "this resource does not exist" (and stops waiting). */
static const char *const REMOVABLE_TYPES[] = {
    TYPE_PREFIX "envoy.config.cluster.v3.Cluster",
    TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment",
    TYPE_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret", NULL};

/* Notes the delta subscriptions to an unserved type, to be answered as
 * removed when the type allows it. Returns 0 or XDS_ENOMEM. */
static int other_absent(struct ads_other_type *o, char **names, size_t n) {
  if (!o->report_absent)
    return 0;
  for (size_t i = 0; i < n; i++) {
    const char **v;
    size_t j = 0;

    if (strcmp(names[i], "*") == 0 || strlen(names[i]) > ADS_NAME_LEN_MAX)
      continue;
    while (j < o->n_absent && strcmp(o->absent[j], names[i]) != 0)
      j++;
    if (j < o->n_absent || o->n_absent >= ADS_NAMES_MAX)
      continue;
    v = xds_realloc(o->absent, (o->n_absent + 1) * sizeof(*v));
    if (v == NULL)
      return XDS_ENOMEM;
    o->absent = v;
    if ((v[o->n_absent] = xds_intern(names[i])) == NULL)
      return XDS_ENOMEM;
    o->n_absent++;
    o->answered = 0;
  }
  return 0;
}

/* A request for a type wasmxds does not serve; sub (delta) names the
 * resources it subscribes to. Returns 0 or XDS_ENOMEM. */
int ads_other_request(struct ads_stream *s, const char *type_url, char **sub,
                      size_t n_sub) {
  struct ads_other_type *o;

  for (size_t i = 0; i < s->n_other; i++)
    if (strcmp(s->other[i].type_url, type_url) == 0)
      /* answered once; ACKs and repeats need nothing, new delta names
       * are answered as absent */
      return other_absent(&s->other[i], sub, n_sub);
  if (s->n_other == ADS_OTHER_TYPES_MAX) {
    XDS_LOGW("node %s: request for type %s ignored: wasmxds does not serve "
             "it and this stream already asked for %d other types",
             ads_node_name(s), type_url, ADS_OTHER_TYPES_MAX);
    return 0;
  }
  o = &s->other[s->n_other];
  memset(o, 0, sizeof(*o));
  o->type_url = xds_strndup(type_url, ADS_NAME_LEN_MAX);
  if (o->type_url == NULL)
    return XDS_ENOMEM;
  s->n_other++;
  for (int i = 0; REMOVABLE_TYPES[i] != NULL; i++)
    if (strcmp(type_url, REMOVABLE_TYPES[i]) == 0)
      o->report_absent = 1;
  if (other_absent(o, sub, n_sub) < 0)
    return XDS_ENOMEM;
  XDS_LOGI("node %s: type %s is not served by wasmxds; answering with an "
           "empty response",
           ads_node_name(s), type_url);
  return 0;
}

int ads_other_response(struct ads_stream *s, struct xds_buf *out) {
  for (size_t i = 0; i < s->n_other; i++) {
    struct ads_other_type *o = &s->other[i];
    int rc;
    if (o->answered)
      continue;
    ads_resp_next_nonce(s, o->nonce);
    /* Fields 4 and 5 are type_url and nonce in both response messages;
     * 6 is DeltaDiscoveryResponse.removed_resources. */
    rc = wire_put_string(out, 4, o->type_url);
    if (rc == 0)
      rc = wire_put_string(out, 5, o->nonce);
    for (size_t j = 0; rc == 0 && j < o->n_absent; j++)
      rc = wire_put_string(out, 6, o->absent[j]);
    if (rc < 0)
      return rc;
    ads_names_release(o->absent, o->n_absent);
    o->absent = NULL;
    o->n_absent = 0;
    o->answered = 1;
    s->responses++;
    s->last_type = -1;
    s->last_resources = 0;
    return 1;
  }
  return 0;
}
