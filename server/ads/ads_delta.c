/*
 * ads_delta.c: the incremental protocol. Subscriptions change by
 * resource_names_subscribe and _unsubscribe; initial_resource_versions
 * seed what a reconnecting proxy has; a response sends what changed and
 * names in removed_resources what went away, what does not exist for this
 * proxy, and what was unsubscribed under a wildcard that does not cover
 * it. A stale nonce voids the ACK/NACK but the subscription change applies.
 */
#include "server/ads/ads_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/pb/wire.h"

/* Adds name to t->names (which has room for it) at its sorted place,
 * unless it is there. Returns 0 or XDS_ENOMEM. */
static int insert_name(struct ads_type_state *t, const char *name) {
  size_t lo = 0, hi = t->n_names;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(t->names[mid], name);

    if (c == 0)
      return 0;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  name = xds_intern(name);
  if (name == NULL)
    return XDS_ENOMEM;
  memmove(t->names + lo + 1, t->names + lo,
          (t->n_names - lo) * sizeof(*t->names));
  t->names[lo] = name;
  t->n_names++;
  return 0;
}

/*
 * A name subscribed both by name and by the wildcard was unsubscribed: the
 * protocol wants an answer, the resource (sent again) when the wildcard
 * covers it, else its name in removed_resources. Returns 0 or XDS_ENOMEM.
 */
static int owe_unsubscribe(struct ads_stream *s, struct ads_type_state *t,
                           const char *name) {
  const char **v;

  ads_sub_forget(t, name);
  if (ads_sub_lookup(s, (int)(t - s->t), name, 0) != NULL)
    return 0;
  for (size_t i = 0; i < t->n_owe_removed; i++)
    if (strcmp(t->owe_removed[i], name) == 0)
      return 0;
  if (t->n_owe_removed >= ADS_NAMES_MAX)
    return 0; /* bounded: the proxy unsubscribed far too much at once */
  v = xds_realloc(t->owe_removed, (t->n_owe_removed + 1) * sizeof(*v));
  if (v == NULL)
    return XDS_ENOMEM;
  t->owe_removed = v;
  if ((v[t->n_owe_removed] = xds_intern(name)) == NULL)
    return XDS_ENOMEM;
  t->n_owe_removed++;
  return 0;
}

/* Applies a delta subscription change. */
static int delta_subscribe(struct ads_stream *s, struct ads_type_state *t,
                           char **sub, size_t n_sub, char **unsub,
                           size_t n_unsub, int first, struct ads_close *close) {
  size_t n = t->n_names;
  const char **v;

  if (n + n_sub > ADS_NAMES_MAX)
    return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                          "node %s: more than %d subscribed names",
                          ads_node_name(s), ADS_NAMES_MAX);
  if (first && n_sub == 0 && n_unsub == 0)
    t->wildcard = 1; /* legacy wildcard */
  for (size_t i = 0; i < n_unsub; i++) {
    const char *name = unsub[i];
    const char **hit;
    if (strcmp(name, "*") == 0) {
      t->wildcard = 0;
      continue;
    }
    hit = t->names != NULL ? bsearch(&name, t->names, t->n_names,
                                     sizeof(*t->names), ads_str_cmp)
                           : NULL;
    if (hit != NULL) {
      size_t at = (size_t)(hit - t->names);
      xds_intern_release(*hit);
      memmove(hit, hit + 1, (t->n_names - at - 1) * sizeof(*hit));
      t->n_names--;
    }
    if (!t->wildcard) {
      ads_sub_forget(t, name);
    } else if (hit != NULL && owe_unsubscribe(s, t, name) < 0) {
      return ads_close_oom(s, close);
    }
  }
  v = xds_realloc(t->names, (t->n_names + n_sub + 1) * sizeof(*v));
  if (v == NULL)
    return ads_close_oom(s, close);
  t->names = v;
  for (size_t i = 0; i < n_sub; i++) {
    const char *name = sub[i];
    if (strlen(name) > ADS_NAME_LEN_MAX)
      return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                            "node %s: a resource name is longer than %d bytes",
                            ads_node_name(s), ADS_NAME_LEN_MAX);
    if (strcmp(name, "*") == 0) {
      t->wildcard = 1;
      continue;
    }
    /* A subscription must be answered, even for a name the server thinks
     * the proxy has; what the first request's initial_resource_versions
     * declare is the exception. */
    if (!first)
      ads_sub_forget(t, name);
    if (insert_name(t, name) < 0)
      return ads_close_oom(s, close);
  }
  return 0;
}

int ads_stream_on_delta_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close) {
  struct ads_type_state *t;
  const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
  const char *type = req->type_url != NULL ? req->type_url : "";
  int idx, first, rc;

  ADS_CHECK(s);
  rc = ads_request_start(s, req->node, type, req->resource_names_subscribe,
                         req->n_resource_names_subscribe, snap, close, &idx);
  if (rc <= 0)
    return rc;
  t = &s->t[idx];
  if (nonce[0] != '\0') {
    int latest = strcmp(nonce, t->nonce) == 0;

    if (!latest)
      XDS_LOGD("node %s: delta %s request with stale nonce %s (latest %s): "
               "it ACKs or NACKs an earlier response",
               ads_node_name(s), ads_type_names[idx], nonce, t->nonce);
    ads_ack(s, t, idx, nonce, "", req->error_detail, latest);
  }
  first = !t->requested;
  if (first) {
    /* What the proxy already has, from a previous stream. */
    for (size_t i = 0; i < req->n_initial_resource_versions; i++) {
      const char *name = req->initial_resource_versions[i]->key;
      const char *ver = req->initial_resource_versions[i]->value;
      struct ads_res *r;
      if (name == NULL || ver == NULL || strlen(name) > ADS_NAME_LEN_MAX)
        continue;
      if (i >= ADS_NAMES_MAX)
        return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                              "node %s: more than %d initial resource versions",
                              ads_node_name(s), ADS_NAMES_MAX);
      if (ads_sub_remember(t, name, ver, 0) < 0)
        return ads_close_oom(s, close);
      r = xds_map_get(t->sent, name);
      r->state = ADS_RES_CLIENT;
      memcpy(r->acked, r->version, sizeof(r->acked));
    }
    t->must_answer = req->n_initial_resource_versions == 0;
  }
  if (delta_subscribe(s, t, req->resource_names_subscribe,
                      req->n_resource_names_subscribe,
                      req->resource_names_unsubscribe,
                      req->n_resource_names_unsubscribe, first, close) < 0)
    return -1;
  t->requested = 1;
  ADS_CHECK(s);
  return 0;
}

/* Appends one delta Resource{version, resource, name} as field 2. */
static int put_delta_resource(struct xds_buf *out, const char *type_url,
                              const struct xds_resource *r) {
  size_t tlen = strlen(type_url), nlen = strlen(r->name);
  size_t any_len = wire_bytes_size(1, tlen) + wire_bytes_size(2, r->len);
  size_t inner = wire_bytes_size(1, strlen(r->version)) +
                 wire_bytes_size(2, any_len) + wire_bytes_size(3, nlen);
  int rc = wire_put_len_prefix(out, 2, inner);

  if (rc == 0)
    rc = wire_put_string(out, 1, r->version);
  if (rc == 0)
    rc = wire_put_any(out, 2, type_url, r->bytes, r->len);
  if (rc == 0)
    rc = wire_put_bytes(out, 3, r->name, nlen);
  return rc;
}

static int delta_response(struct ads_stream *s, int idx, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[idx];
  const struct xds_resource **send = NULL;
  char **removed = NULL;
  size_t n_send = 0, n_removed = 0, pos = 0;
  char version[VERSION_LEN + 1];
  const char *key;
  void *val;
  uint64_t n;
  int rc;

  if (!t->requested || s->snap == NULL)
    return 0;
  rc = ads_resp_owed(s, idx, &send, &n_send);
  if (rc < 0)
    goto out;
  removed =
      xds_calloc(xds_map_count(t->sent) + t->n_names + t->n_owe_removed + 1,
                 sizeof(*removed));
  if (removed == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  /* What the proxy has that is gone or hidden now. */
  while (xds_map_next(t->sent, &pos, &key, &val)) {
    if (!t->wildcard && !ads_sub_has(t, key))
      continue;
    if (ads_sub_lookup(s, idx, key, 0) == NULL)
      removed[n_removed++] = (char *)key;
  }
  /* Names subscribed that do not exist (for this proxy), said once. */
  for (size_t i = 0; i < t->n_names; i++) {
    const char *name = t->names[i];
    if (xds_map_get(t->sent, name) != NULL ||
        xds_map_get(t->absent, name) != NULL ||
        ads_sub_lookup(s, idx, name, 0) != NULL)
      continue;
    removed[n_removed++] = (char *)name;
  }
  /* Unsubscribed names the wildcard does not cover (not already above). */
  for (size_t i = 0; i < t->n_owe_removed; i++) {
    const char *name = t->owe_removed[i];
    size_t j = 0;

    while (j < n_removed && strcmp(removed[j], name) != 0)
      j++;
    if (j == n_removed && xds_map_get(t->sent, name) == NULL &&
        ads_sub_lookup(s, idx, name, 0) == NULL)
      removed[n_removed++] = (char *)name;
  }
  if (n_send == 0 && n_removed == 0 && !t->must_answer)
    goto out; /* rc is 0 */
  rc = ads_resp_state_version(s, idx, version);
  if (rc < 0)
    goto out;
  n = ads_resp_next_nonce(s, t->nonce);
  rc = wire_put_string(out, 1, version);
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = put_delta_resource(out, ads_type_urls[idx], send[i]);
  if (rc == 0)
    rc = wire_put_string(out, 4, ads_type_urls[idx]);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  for (size_t i = 0; rc == 0 && i < n_removed; i++)
    rc = wire_put_string(out, 6, removed[i]);
  if (rc < 0)
    goto out;
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = ads_sub_remember(t, send[i]->name, send[i]->version, n);
  /* Removed names: no longer held by the proxy; explicit subscriptions to
   * them are remembered as answered. The strings may live in the maps we
   * edit, so copy first. */
  for (size_t i = 0; rc == 0 && i < n_removed; i++) {
    char *name = xds_strdup(removed[i]);
    if (name == NULL) {
      rc = XDS_ENOMEM;
      break;
    }
    ads_res_free(xds_map_del(t->sent, name));
    if (ads_sub_has(t, name) &&
        ((t->absent == NULL && (t->absent = xds_map_new()) == NULL) ||
         xds_map_put(t->absent, name, (void *)1, NULL) < 0))
      rc = XDS_ENOMEM;
    xds_free(name);
  }
  if (rc < 0)
    goto out;
  ads_owe_removed_free(t); /* answered: removed above, or sent again */
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += n_send;
  s->last_type = idx;
  s->last_resources = n_send;
  XDS_LOGD("node %s: sent delta %s %s (%zu resources, %zu removed, nonce %s)",
           s->pid.node_id, ads_type_names[idx], version, n_send, n_removed,
           t->nonce);
  rc = 1;
out:
  xds_free(send);
  xds_free(removed);
  return rc;
}

int ads_delta_response(struct ads_stream *s, struct xds_buf *out) {
  int rc = delta_response(s, ADS_T_LDS, out);

  if (rc == 0)
    rc = delta_response(s, ADS_T_ECDS, out);
  return rc;
}
