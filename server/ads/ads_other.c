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

/* Notes a name subscribed to an unserved type whose names are answered as
 * removed: once per answer, however often it is subscribed meanwhile.
 * Returns 0 or XDS_ENOMEM. */
static int note_absent(struct ads_other_type *o, const char *name) {
  const char *in;

  /* Bounded like a subscription; more are not reported this time. */
  if (xds_map_get(o->absent_set, name) != NULL || o->n_absent >= ADS_NAMES_MAX)
    return 0;
  if (o->absent_set == NULL && (o->absent_set = xds_map_new_borrowed()) == NULL)
    return XDS_ENOMEM;
  /* absent grows by doubling: its capacity is the next power of two. */
  if ((o->n_absent & (o->n_absent - 1)) == 0) {
    size_t cap = o->n_absent == 0 ? 8 : o->n_absent * 2;
    const char **v = xds_realloc(o->absent, cap * sizeof(*v));
    if (v == NULL)
      return XDS_ENOMEM;
    o->absent = v;
  }
  if ((in = xds_intern(name)) == NULL)
    return XDS_ENOMEM;
  if (xds_map_put(o->absent_set, in, (void *)in, NULL) < 0) {
    xds_intern_release(in);
    return XDS_ENOMEM;
  }
  o->absent[o->n_absent++] = in;
  o->answered = 0;
  return 0;
}

/* Applies a delta subscription change to an unserved type: the same limit
 * as served types (ADS_NAMES_MAX names per stream), each name in constant
 * time. Returns 0 or -1 with *close set. */
static int other_subscribe(struct ads_stream *s, struct ads_other_type *o,
                           const struct ads_req_names *in,
                           struct ads_close *close) {
  for (size_t i = 0; i < in->n_unsub; i++)
    xds_map_del(o->subscribed, in->unsub[i]);
  for (size_t i = 0; i < in->n_sub; i++) {
    const char *name = in->sub[i];

    if (strcmp(name, "*") == 0)
      continue;
    if (xds_map_get(o->subscribed, name) == NULL) {
      if (xds_map_count(o->subscribed) >= ADS_NAMES_MAX)
        return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                              "node %s: more than %d names subscribed to one "
                              "type",
                              ads_node_name(s), ADS_NAMES_MAX);
      if ((o->subscribed == NULL && (o->subscribed = xds_map_new()) == NULL) ||
          xds_map_put(o->subscribed, name, (void *)1, NULL) < 0)
        return ads_close_oom(s, close);
    }
    if (o->report_absent && note_absent(o, name) < 0)
      return ads_close_oom(s, close);
  }
  return 0;
}

int ads_other_request(struct ads_stream *s, const char *type_url,
                      const struct ads_req_names *in, struct ads_close *close) {
  struct ads_other_type *o;

  for (size_t i = 0; i < s->n_other; i++)
    if (strcmp(s->other[i].type_url, type_url) == 0)
      /* answered once; ACKs and repeats need nothing, new delta names
       * are answered as absent */
      return s->mode == ADS_DELTA ? other_subscribe(s, &s->other[i], in, close)
                                  : 0;
  if (s->n_other == ADS_OTHER_TYPES_MAX) {
    char esc[XDS_LOG_ESC_MAX];

    if (ads_log_allow(s, ADS_EV_TYPE))
      XDS_LOGW("node %s: request for type %s ignored: wasmxds does not serve "
               "it and this stream already asked for %d other types",
               ads_node_name(s), xds_log_escape(type_url, esc, sizeof(esc)),
               ADS_OTHER_TYPES_MAX);
    return 0;
  }
  o = xds_realloc(s->other, (s->n_other + 1) * sizeof(*o));
  if (o == NULL)
    return ads_close_oom(s, close);
  s->other = o;
  o = &s->other[s->n_other];
  memset(o, 0, sizeof(*o));
  o->type_url = xds_strndup(type_url, ADS_NAME_LEN_MAX);
  if (o->type_url == NULL)
    return ads_close_oom(s, close);
  s->n_other++;
  for (int i = 0; REMOVABLE_TYPES[i] != NULL; i++)
    if (strcmp(type_url, REMOVABLE_TYPES[i]) == 0)
      o->report_absent = 1;
  if (s->mode == ADS_DELTA && other_subscribe(s, o, in, close) < 0)
    return -1;
  if (ads_log_allow(s, ADS_EV_TYPE)) {
    char esc[XDS_LOG_ESC_MAX];

    XDS_LOGI("node %s: type %s is not served by wasmxds; answering with an "
             "empty response",
             ads_node_name(s), xds_log_escape(type_url, esc, sizeof(esc)));
  }
  return 0;
}

/* Frees what an unserved type's entry holds. */
void ads_other_cleanup(struct ads_other_type *o) {
  xds_free(o->type_url);
  ads_names_release(o->absent, o->n_absent);
  xds_map_free(o->absent_set, NULL);
  xds_map_free(o->subscribed, NULL);
  memset(o, 0, sizeof(*o));
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
    xds_map_free(o->absent_set, NULL);
    o->absent_set = NULL;
    o->answered = 1;
    s->responses++;
    s->last_type = -1;
    s->last_resources = 0;
    return 1;
  }
  return 0;
}
