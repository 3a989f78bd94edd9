/*
 * ads_resp.c: what every response needs (the next nonce, the version of a
 * type's state, the set of resources owed) and the order in which a stream
 * is answered: served types first (LDS before ECDS), then unserved ones.
 */
#include "server/ads/ads_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

uint64_t ads_resp_next_nonce(struct ads_stream *s, char out[24]) {
  snprintf(out, 24, "%" PRIu64, ++s->nonce_seq);
  return s->nonce_seq;
}

/* The version of a type's state for this stream: a hash of every
 * candidate's name and version (SotW version_info, delta
 * system_version_info). */
int ads_resp_state_version(struct ads_stream *s, int idx,
                           char out[VERSION_LEN + 1]) {
  struct version_hasher h;
  size_t n = ads_sub_candidate_count(s, idx);

  if (version_begin(&h) < 0)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct xds_resource *r = ads_sub_candidate(s, idx, i, 0);
    if (r == NULL)
      continue;
    version_add_str(&h, r->name);
    version_add_str(&h, r->version);
  }
  version_end(&h, out);
  return 0;
}

/* Resources of type idx the stream owes: visible candidates whose version
 * differs from what the proxy has. *send is a new array (caller frees). */
int ads_resp_owed(struct ads_stream *s, int idx,
                  const struct xds_resource ***send, size_t *n_send) {
  struct ads_type_state *t = &s->t[idx];
  size_t n = ads_sub_candidate_count(s, idx);
  const struct xds_resource **v = xds_calloc(n + 1, sizeof(*v));

  *send = v;
  *n_send = 0;
  if (v == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct xds_resource *r = ads_sub_candidate(s, idx, i, 1);
    const struct ads_res *had;
    if (r == NULL)
      continue;
    had = ads_sent_find(&t->sent, r->name);
    if (had == NULL || !ads_res_version_is(had, r->version))
      v[(*n_send)++] = r;
  }
  s->slots_deferred = 0;
  if (idx == ADS_T_ECDS && s->cls->n_slots > 0 && *n_send > 0)
    return ads_slots_plan(s, send, n_send);
  return 0;
}

int ads_stream_next_response(struct ads_stream *s, struct xds_buf *out,
                             struct ads_shared *shared) {
  int rc;

  ADS_CHECK_SETTLED(s);
  xds_buf_reset(out);
  if (shared != NULL)
    shared->data = NULL;
  if (!s->has_node)
    return 0;
  if (s->mode == ADS_DELTA)
    rc = ads_delta_response(s, out);
  else
    rc = ads_sotw_response(s, out, shared);
  if (rc == 0)
    rc = ads_other_response(s, out);
  ads_stream_after(s);
  return rc;
}
