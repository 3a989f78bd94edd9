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

/*
 * A name subscribed both by name and by the wildcard was unsubscribed: the
 * protocol wants an answer, the resource (sent again) when the wildcard
 * covers it, else its name in removed_resources. Constant time. Returns 0
 * or XDS_ENOMEM.
 */
static int owe_unsubscribe(struct ads_stream *s, struct ads_type_state *t,
                           const char *name) {
  const char *in;

  ads_sub_forget(t, name);
  if (ads_sub_lookup(s, (int)(t - s->t), name, 0) != NULL ||
      xds_map_get(t->owe_set, name) != NULL)
    return 0;
  if (t->n_owe_removed >= ADS_NAMES_MAX)
    return 0; /* bounded: the proxy unsubscribed far too much at once */
  if (t->owe_set == NULL && (t->owe_set = xds_map_new_borrowed()) == NULL)
    return XDS_ENOMEM;
  /* owe_removed grows by doubling: its capacity is the next power of two. */
  if ((t->n_owe_removed & (t->n_owe_removed - 1)) == 0) {
    size_t cap = t->n_owe_removed == 0 ? 8 : t->n_owe_removed * 2;
    const char **v = xds_realloc(t->owe_removed, cap * sizeof(*v));
    if (v == NULL)
      return XDS_ENOMEM;
    t->owe_removed = v;
  }
  if ((in = xds_intern(name)) == NULL)
    return XDS_ENOMEM;
  if (xds_map_put(t->owe_set, in, (void *)in, NULL) < 0) {
    xds_intern_release(in);
    return XDS_ENOMEM;
  }
  t->owe_removed[t->n_owe_removed++] = in;
  return 0;
}

/* The request's names other than "*", sorted and without duplicates, in
 * a new array of borrowed pointers (*out; NULL when none). *star says
 * whether "*" was among them. Returns 0 or XDS_ENOMEM. */
static int sorted_names(char **v, size_t n, const char ***out, size_t *n_out,
                        int *star) {
  const char **w;
  size_t m = 0;

  *out = NULL;
  *n_out = 0;
  *star = 0;
  if (n == 0)
    return 0;
  w = xds_malloc(n * sizeof(*w));
  if (w == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v[i], "*") == 0)
      *star = 1;
    else
      w[m++] = v[i];
  }
  qsort(w, m, sizeof(*w), ads_str_cmp);
  if (m > 1) {
    size_t k = 1;
    for (size_t i = 1; i < m; i++)
      if (strcmp(w[i], w[k - 1]) != 0)
        w[k++] = w[i];
    m = k;
  }
  *out = w;
  *n_out = m;
  return 0;
}

/*
 * Applies a delta subscription change, in time O((n + m) log m) for n
 * names subscribed and m in the request: both lists are sorted, then
 * merged in one pass. The request's lists were checked against the limits
 * (ads_request_start); the subscription may hold ADS_NAMES_MAX names.
 * Returns 0 or -1 with *close set.
 */
static int delta_subscribe(struct ads_stream *s, struct ads_type_state *t,
                           char **sub, size_t n_sub, char **unsub,
                           size_t n_unsub, int first, struct ads_close *close) {
  const char **add = NULL, **gone = NULL, **v = NULL;
  size_t n_add, n_gone, n = 0, i, j;
  int star_add, star_gone, rc = -1;

  t->owed_clean = 0;
  XDS_ASSERT(!t->names_shared); /* delta edits its own array in place */
  if (sorted_names(sub, n_sub, &add, &n_add, &star_add) < 0 ||
      sorted_names(unsub, n_unsub, &gone, &n_gone, &star_gone) < 0)
    goto oom;
  if (first && n_sub == 0 && n_unsub == 0)
    t->wildcard = 1; /* legacy wildcard */
  if (star_gone)
    t->wildcard = 0;
  /* Unsubscribe: one merge pass keeps the names not in gone. */
  for (i = 0, j = 0; i < t->n_names || j < n_gone;) {
    int c = i == t->n_names ? 1
            : j == n_gone   ? -1
                            : strcmp(t->names[i], gone[j]);
    if (c < 0) {
      t->names[n++] = t->names[i++];
      continue;
    }
    if (c > 0) {
      /* Not explicitly subscribed: the proxy no longer wants it. */
      if (!t->wildcard)
        ads_sub_forget(t, gone[j]);
      j++;
      continue;
    }
    if (!t->wildcard)
      ads_sub_forget(t, gone[j]);
    else if (owe_unsubscribe(s, t, gone[j]) < 0)
      goto oom_after; /* names[i] is still to keep */
    xds_intern_release(t->names[i]);
    i++;
    j++;
    continue;
  oom_after:
    while (i < t->n_names)
      t->names[n++] = t->names[i++];
    t->n_names = n;
    goto oom;
  }
  t->n_names = n;
  if (star_add)
    t->wildcard = 1;
  if (n_add == 0) {
    rc = 0;
    goto out;
  }
  /* Subscribe: merge the sorted new names into a new sorted array. */
  v = xds_malloc((t->n_names + n_add + 1) * sizeof(*v));
  if (v == NULL)
    goto oom;
  n = 0;
  for (i = 0, j = 0; i < t->n_names || j < n_add;) {
    int c = i == t->n_names ? 1 : j == n_add ? -1 : strcmp(t->names[i], add[j]);
    const char *name;

    if (c < 0) {
      v[n++] = t->names[i++];
      continue;
    }
    /* A subscription must be answered, even for a name the server thinks
     * the proxy has; what the first request's initial_resource_versions
     * declare is the exception. */
    if (!first)
      ads_sub_forget(t, add[j]);
    if (c == 0) {
      v[n++] = t->names[i++];
      j++;
      continue;
    }
    if (n >= ADS_NAMES_MAX || (name = xds_intern(add[j])) == NULL) {
      /* Keep what the stream holds consistent for its cleanup. */
      while (i < t->n_names)
        v[n++] = t->names[i++];
      xds_free(t->names);
      t->names = v;
      t->n_names = n;
      v = NULL;
      if (n < ADS_NAMES_MAX)
        goto oom; /* xds_intern failed */
      rc = ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                          "node %s: more than %d subscribed names",
                          ads_node_name(s), ADS_NAMES_MAX);
      goto out;
    }
    v[n++] = name;
    j++;
  }
  xds_free(t->names);
  t->names = v;
  t->n_names = n;
  rc = 0;
  goto out;
oom:
  rc = ads_close_oom(s, close);
out:
  xds_free(add);
  xds_free(gone);
  return rc;
}

int ads_delta_apply(
    struct ads_stream *s, int idx, const char *nonce,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    struct ads_close *close) {
  struct ads_type_state *t = &s->t[idx];
  size_t n_initial = req != NULL ? req->n_initial_resource_versions : 0;
  int first;

  if (nonce[0] != '\0') {
    int latest = strcmp(nonce, t->nonce) == 0;

    char esc[64];

    if (!latest)
      XDS_LOGD("node %s: delta %s request with stale nonce %s (latest %s): "
               "it ACKs or NACKs an earlier response",
               ads_node_name(s), ads_type_names[idx],
               xds_log_escape(nonce, esc, sizeof(esc)), t->nonce);
    ads_ack(s, t, idx, nonce, "", req != NULL ? req->error_detail : NULL,
            latest);
  }
  first = !t->requested;
  if (first) {
    /* What the proxy already has, from a previous stream. */
    for (size_t i = 0; i < n_initial; i++) {
      const char *name = req->initial_resource_versions[i]->key;
      const char *ver = req->initial_resource_versions[i]->value;
      struct ads_res *r;
      if (name == NULL || ver == NULL || strlen(name) > ADS_NAME_LEN_MAX)
        continue;
      t->owed_clean = 0;
      if (ads_sent_put(&t->sent, name, ver, 0, &r) < 0)
        return ads_close_oom(s, close);
      ads_res_set_state(&t->sent, r, ADS_RES_CLIENT);
      ads_res_ack_version(&t->sent, r);
    }
    t->must_answer = n_initial == 0;
  }
  if (delta_subscribe(s, t, req != NULL ? req->resource_names_subscribe : NULL,
                      req != NULL ? req->n_resource_names_subscribe : 0,
                      req != NULL ? req->resource_names_unsubscribe : NULL,
                      req != NULL ? req->n_resource_names_unsubscribe : 0,
                      first, close) < 0)
    return -1;
  t->requested = 1;
  ADS_CHECK(s);
  return 0;
}

static int
delta_request(struct ads_stream *s,
              const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
              struct snapshot *snap, struct ads_close *close) {
  const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
  const char *type = req->type_url != NULL ? req->type_url : "";
  int idx, rc;
  struct ads_req_names in = {
      req->resource_names_subscribe, req->n_resource_names_subscribe,
      req->resource_names_unsubscribe, req->n_resource_names_unsubscribe,
      req->n_initial_resource_versions};

  rc = ads_request_start(s, req->node, type, &in, snap, close, &idx);
  if (rc <= 0)
    return rc;
  return ads_delta_apply(s, idx, nonce, req, close);
}

int ads_stream_on_delta_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close) {
  int rc;

  ADS_CHECK_SETTLED(s);
  rc = delta_request(s, req, snap, close);
  ads_stream_after(s);
  return rc;
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

/* Names a response removed, sorted by address (they are interned). */
struct removed_set {
  const char **v;
  size_t n;
};

static int ptr_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (const char *const *)a;
  uintptr_t y = (uintptr_t) * (const char *const *)b;

  return x < y ? -1 : x > y;
}

/* For ads_sent_filter(): the proxy keeps name unless it was removed. */
static int not_removed(const void *ctx, const char *name) {
  const struct removed_set *g = ctx;

  return bsearch(&name, g->v, g->n, sizeof(*g->v), ptr_cmp) == NULL;
}

static int delta_response(struct ads_stream *s, int idx, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[idx];
  const struct xds_resource **send = NULL;
  const char **removed = NULL;
  size_t n_send = 0, n_removed = 0;
  char version[VERSION_LEN + 1];
  struct removed_set gone;
  uint64_t n;
  int rc;

  if (!t->requested || s->snap == NULL)
    return 0;
  rc = ads_resp_owed(s, idx, &send, &n_send);
  if (rc < 0)
    goto out;
  removed = xds_calloc(t->sent.n + t->n_names + t->n_owe_removed + 1,
                       sizeof(*removed));
  if (removed == NULL) {
    rc = XDS_ENOMEM;
    goto out;
  }
  /* What the proxy has that is gone or hidden now. */
  for (uint32_t i = 0; i < t->sent.n; i++) {
    const char *key = t->sent.v[i].name;
    if (!t->wildcard && !ads_sub_has(t, key))
      continue;
    if (ads_sub_lookup(s, idx, key, 0) == NULL)
      removed[n_removed++] = key;
  }
  /* Names subscribed that do not exist (for this proxy), said once. */
  for (size_t i = 0; i < t->n_names; i++) {
    const char *name = t->names[i];
    if (ads_sent_find(&t->sent, name) != NULL ||
        xds_map_get(t->absent, name) != NULL ||
        ads_sub_lookup(s, idx, name, 0) != NULL)
      continue;
    removed[n_removed++] = name;
  }
  /* Unsubscribed names the wildcard does not cover (not already above). */
  for (size_t i = 0; i < t->n_owe_removed; i++) {
    const char *name = t->owe_removed[i];

    /* The loop above took it already when it is subscribed again and was
     * not reported absent; the other conditions are the same. */
    if (ads_sent_find(&t->sent, name) == NULL &&
        ads_sub_lookup(s, idx, name, 0) == NULL &&
        !(ads_sub_has(t, name) && xds_map_get(t->absent, name) == NULL))
      removed[n_removed++] = name;
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
  /* Removed names: explicit subscriptions to them are remembered as
   * answered (the absent map copies the names), and the proxy no longer
   * holds them: one pass over the sent records. Every name here is
   * interned, as are the records' names, so equal names are equal
   * pointers. */
  for (size_t i = 0; rc == 0 && i < n_removed; i++)
    if (ads_sub_has(t, removed[i]) &&
        ((t->absent == NULL && (t->absent = xds_map_new()) == NULL) ||
         xds_map_put(t->absent, removed[i], (void *)1, NULL) < 0))
      rc = XDS_ENOMEM;
  if (rc < 0)
    goto out;
  qsort(removed, n_removed, sizeof(*removed), ptr_cmp);
  gone.v = removed;
  gone.n = n_removed;
  ads_sent_filter(&t->sent, not_removed, &gone, NULL, NULL);
  ads_owe_removed_free(t); /* answered: removed above, or sent again */
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += n_send;
  s->last_type = idx;
  s->last_resources = n_send;
  XDS_LOGD("node %s: sent delta %s %s (%zu resources, %zu removed, nonce %s)",
           ads_node_name(s), ads_type_names[idx], version, n_send, n_removed,
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
