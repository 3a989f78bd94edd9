/*
 * ads_sotw.c: the state-of-the-world protocol. A request replaces the
 * type's subscription (its stale-nonce form only ACKs or NACKs); LDS is
 * full state (by wildcard, the class's shared encoding; by name, the named
 * listeners the proxy has); ECDS sends the subscribed names whose content
 * changed; a reconnecting proxy whose version_info is the current state is
 * sent nothing.
 */
#include "server/ads/ads_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/intern.h"
#include "base/log.h"
#include "server/pb/typeurl.h"
#include "server/pb/wire.h"

/* Whether two sorted lists of names are equal. */
static int same_names(const char *const *a, size_t na, const char *const *b,
                      size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0)
      return 0;
  return 1;
}

/* A sorted list of names, for ads_sub_forget_unless(). */
struct name_list {
  const char *const *v;
  size_t n;
};

static int in_name_list(const void *ctx, const char *name) {
  const struct name_list *l = ctx;

  return bsearch(&name, l->v, l->n, sizeof(*l->v), ads_str_cmp) != NULL;
}

void ads_names_src_array(struct ads_names_src *src, char *const *v, size_t n) {
  memset(src, 0, sizeof(*src));
  src->v = v;
  src->n = n;
}

void ads_names_src_wire(struct ads_names_src *src, const uint8_t *p, size_t len,
                        size_t n) {
  memset(src, 0, sizeof(*src));
  src->wire = 1;
  src->p = src->at = p;
  src->end = p + len;
  src->n = n;
}

static void names_rewind(struct ads_names_src *src) {
  src->i = 0;
  src->at = src->p;
}

int ads_names_next(struct ads_names_src *src, const char **name, size_t *len) {
  struct wire_field f;

  if (src->i >= src->n)
    return 0;
  if (!src->wire) {
    *name = src->v[src->i++];
    *len = strlen(*name);
    return 1;
  }
  /* The bytes were checked (ads_wire.c): every field reads, and n of
   * them are field 3. */
  while (wire_next_strict(&src->at, src->end, &f) == 1)
    if (f.number == 3) {
      *name = (const char *)f.data;
      *len = f.len;
      src->i++;
      return 1;
    }
  XDS_ASSERT(0 && "fewer names than counted");
  return 0;
}

/* strcmp's order between the len bytes at p (no NUL among them) and the
 * string b. */
static int slice_cmp(const char *p, size_t len, const char *b) {
  int c = strncmp(p, b, len);

  if (c != 0)
    return c;
  /* b's first len bytes are p's, none of them NUL: b[len] exists. */
  return b[len] == '\0' ? 0 : -1;
}

static int is_star(const char *p, size_t len) {
  return len == 1 && p[0] == '*';
}

/*
 * Whether replacing t's SotW subscription by the request's names would
 * change nothing: the same wildcard and "ever named" flags, and the names
 * other than "*" exactly t's explicit names, none twice. In the request's
 * order first (linear); otherwise by binary search, with a bitmap on the
 * stack against repeats (lists up to NAMES_SAME_BITS). An ACK repeats the
 * subscription, so this is what most requests take.
 */
#define NAMES_SAME_BITS 4096
static int names_unchanged(const struct ads_type_state *t,
                           struct ads_names_src *src) {
  unsigned char seen[NAMES_SAME_BITS / 8];
  size_t stars = 0, k = 0, len;
  const char *name;
  int in_order = 1;

  /* A name makes the subscription "ever named" for good. */
  if (!t->requested || (!t->ever_named && src->n > 0))
    return 0;
  names_rewind(src);
  while (ads_names_next(src, &name, &len)) {
    if (is_star(name, len)) {
      stars++;
    } else if (in_order) {
      if (k < t->n_names && slice_cmp(name, len, t->names[k]) == 0)
        k++;
      else
        in_order = 0;
    }
  }
  /* What the request would make the subscription. */
  if ((stars > 0 || (src->n == 0 && !t->ever_named)) != (t->wildcard != 0))
    return 0;
  if (src->n - stars != t->n_names)
    return 0;
  if (in_order)
    return 1;
  if (t->n_names > NAMES_SAME_BITS)
    return 0;
  memset(seen, 0, (t->n_names + 7) / 8);
  names_rewind(src);
  while (ads_names_next(src, &name, &len)) {
    size_t lo = 0, hi = t->n_names;

    if (is_star(name, len))
      continue;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = slice_cmp(name, len, t->names[mid]);

      if (c == 0) {
        lo = mid;
        break;
      }
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (lo >= t->n_names || slice_cmp(name, len, t->names[lo]) != 0)
      return 0;
    if (seen[lo / 8] & (1u << (lo % 8)))
      return 0;
    seen[lo / 8] |= (unsigned char)(1u << (lo % 8));
  }
  return 1;
}

/* Replaces the SotW subscription of type t with the request's names (which
 * names_unchanged() found to change it). Names newly added are forgotten,
 * so they are sent again even if unchanged (the protocol requires it). */
static int sotw_names(struct ads_stream *s, struct ads_type_state *t,
                      char *const *names, size_t n, struct ads_close *close) {
  const char **v;
  size_t m = 0;
  int wildcard = 0;

  if (n > ADS_NAMES_MAX)
    return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                          "node %s: %zu resource names, more than the limit %d",
                          ads_node_name(s), n, ADS_NAMES_MAX);
  v = xds_calloc(n + 1, sizeof(*v));
  if (v == NULL)
    goto oom;
  for (size_t i = 0; i < n; i++) {
    if (strlen(names[i]) > ADS_NAME_LEN_MAX) {
      ads_names_release(v, m);
      return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                            "node %s: a resource name is longer than %d bytes",
                            ads_node_name(s), ADS_NAME_LEN_MAX);
    }
    if (strcmp(names[i], "*") == 0) {
      wildcard = 1;
      continue;
    }
    v[m] = xds_intern(names[i]);
    if (v[m] == NULL) {
      ads_names_release(v, m);
      goto oom;
    }
    m++;
  }
  qsort(v, m, sizeof(*v), ads_str_cmp);
  if (m > 1) {
    size_t w = 1;
    for (size_t r = 1; r < m; r++) {
      if (strcmp(v[r], v[w - 1]) == 0)
        xds_intern_release(v[r]);
      else
        v[w++] = v[r];
    }
    m = w;
  }
  if (n > 0)
    t->ever_named = 1;
  /* Legacy wildcard: an empty list before anything was ever named. */
  if (n == 0 && !t->ever_named)
    wildcard = 1;
  if (!wildcard) {
    /* Forget names no longer subscribed, and names newly subscribed. */
    struct name_list keep = {v, m};

    ads_sub_forget_unless(t, in_name_list, &keep);
    for (size_t i = 0; i < m; i++)
      if (!t->wildcard && !ads_sub_has(t, v[i]))
        ads_sub_forget(t, v[i]);
  } else if (!t->wildcard && t->requested) {
    /* Becoming wildcard subscribes everything anew. */
    for (uint32_t i = 0; i < t->sent.n; i++)
      t->sent.v[i].flags &= (uint8_t)~ADS_RES_HAS_VERSION;
  }
  /* A changed subscription of a full-state type is always answered. */
  if (t == &s->t[ADS_T_LDS] && t->requested &&
      (wildcard != t->wildcard || !same_names(t->names, t->n_names, v, m)))
    t->must_answer = 1;
  ads_names_free(t);
  t->names = v;
  t->n_names = m;
  /* The streams of a class subscribe to the same names: share one copy
   * (without memory for it, this stream keeps its own). */
  if (m > 0) {
    const char *const *shared = xds_intern_list(v, m);
    if (shared != NULL) {
      ads_names_release(v, m);
      t->names = (const char **)(uintptr_t)shared;
      t->names_shared = 1;
    }
  }
  t->wildcard = wildcard;
  t->owed_clean = 0;
  return 0;
oom:
  return ads_close_oom(s, close);
}

/* A SotW stream's first request of a type with a version: a reconnecting
 * proxy. When its version is the current state, it has everything. */
static int sotw_resume(struct ads_stream *s, int idx, const char *version) {
  struct ads_type_state *t = &s->t[idx];
  char current[VERSION_LEN + 1];
  size_t n;

  if (idx == ADS_T_LDS && t->wildcard) {
    if (s->cls == NULL || strcmp(version, s->cls->lds_version) != 0)
      return 0;
    n = s->cls->n_listeners;
    for (size_t i = 0; i < n; i++)
      if (ads_sub_remember(t, s->cls->listeners[i].name,
                           s->cls->listeners[i].version, 0) < 0)
        return XDS_ENOMEM;
  } else {
    if (ads_resp_state_version(s, idx, current) < 0)
      return XDS_ENOMEM;
    if (idx == ADS_T_ECDS && s->cls != NULL && s->cls->n_slots > 0) {
      /* With slots the version also says what each slot holds: record it
       * (the next plan starts from it); resume only when every slot holds
       * its final occupant and the configs are current. */
      int rc = strlen(version) > VERSION_LEN ? ads_slots_resume(s, version) : 0;
      if (rc < 0)
        return rc;
      if (rc == 0 || strncmp(version, current, VERSION_LEN) != 0)
        return 0;
    } else if (strcmp(version, current) != 0) {
      return 0;
    }
    n = ads_sub_candidate_count(s, idx);
    for (size_t i = 0; i < n; i++) {
      const struct xds_resource *r = ads_sub_candidate(s, idx, i, 0);
      if (r != NULL && ads_sub_remember(t, r->name, r->version, 0) < 0)
        return XDS_ENOMEM;
    }
  }
  for (uint32_t i = 0; i < t->sent.n; i++)
    ads_res_set_state(&t->sent, &t->sent.v[i], ADS_RES_CLIENT);
  snprintf(t->sent_version, sizeof(t->sent_version), "%s", version);
  memcpy(t->acked_version, t->sent_version, sizeof(t->acked_version));
  t->sent_once = 1;
  XDS_LOGD("node %s: resumed %s at version %s; nothing to send",
           ads_node_name(s), ads_type_names[idx], t->sent_version);
  return 0;
}

int ads_sotw_apply(struct ads_stream *s, int idx, const char *nonce,
                   const char *version, const Google__Rpc__Status *error,
                   struct ads_names_src *src, struct ads_close *close) {
  struct ads_type_state *t = &s->t[idx];
  int first, same;

  if (nonce[0] != '\0' && strcmp(nonce, t->nonce) != 0) {
    /* Stale: its subscription is ignored, as the protocol says, but it
     * still ACKs or NACKs the earlier response it names. */
    char esc[64];

    XDS_LOGD("node %s: %s request with stale nonce %s (latest %s): only its "
             "ACK or NACK counts",
             ads_node_name(s), ads_type_names[idx],
             xds_log_escape(nonce, esc, sizeof(esc)), t->nonce);
    ads_ack(s, t, idx, nonce, version, error, 0);
    return 0;
  }
  /* An ACK names what it named before: nothing to replace (every name
   * subscribed already passed the length check, and what the proxy has is
   * a subset of them). Decided before the ACK is applied (it changes
   * nothing this reads), so that a request read from its bytes can still
   * be unpacked and applied instead. */
  same = names_unchanged(t, src);
  if (!same && src->wire)
    return ADS_NEED_UNPACK;
  if (nonce[0] != '\0')
    ads_ack(s, t, idx, nonce, version, error, 1);
  first = !t->requested;
  if (!same && sotw_names(s, t, src->v, src->n, close) < 0)
    return -1;
  t->requested = 1;
  if (first && nonce[0] == '\0' && version[0] != '\0' &&
      sotw_resume(s, idx, version) < 0)
    return ads_close_oom(s, close);
  ADS_CHECK(s);
  return 0;
}

static int
sotw_request(struct ads_stream *s,
             const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
             struct snapshot *snap, struct ads_close *close) {
  const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
  const char *version = req->version_info != NULL ? req->version_info : "";
  const char *type = req->type_url != NULL ? req->type_url : "";
  struct ads_req_names in = {req->resource_names, req->n_resource_names, NULL,
                             0, 0};
  struct ads_names_src src;
  int idx, rc;

  rc = ads_request_start(s, req->node, type, &in, snap, close, &idx);
  if (rc <= 0)
    return rc;
  ads_names_src_array(&src, req->resource_names, req->n_resource_names);
  return ads_sotw_apply(s, idx, nonce, version, req->error_detail, &src, close);
}

int ads_stream_on_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close) {
  int rc;

  ADS_CHECK_SETTLED(s);
  rc = sotw_request(s, req, snap, close);
  ads_stream_after(s);
  return rc;
}

/*
 * SotW LDS by name (a client that lists the listeners it wants instead of
 * the wildcard): every response carries every subscribed listener the
 * proxy has, and one is owed when that set or a version changes, or the
 * subscription itself changed (a name that does not exist is thus
 * answered by its absence).
 */
static int sotw_lds_named_response(struct ads_stream *s, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[ADS_T_LDS];
  char version[VERSION_LEN + 1];
  size_t n_sent = 0;
  uint64_t n;
  int rc;

  if (ads_resp_state_version(s, ADS_T_LDS, version) < 0)
    return XDS_ENOMEM;
  if (t->sent_once && !t->must_answer && strcmp(version, t->sent_version) == 0)
    return 0;
  n = ads_resp_next_nonce(s, t->nonce);
  rc = wire_put_string(out, 1, version);
  for (size_t i = 0; rc == 0 && i < t->n_names; i++) {
    const struct xds_resource *r = ads_sub_candidate(s, ADS_T_LDS, i, 0);
    if (r != NULL)
      rc = wire_put_any(out, 2, TYPE_LISTENER, r->bytes, r->len);
  }
  if (rc == 0)
    rc = wire_put_string(out, 4, TYPE_LISTENER);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  if (rc < 0)
    return rc;
  /* The proxy now has exactly these. */
  for (size_t i = 0; i < t->n_names; i++) {
    const struct xds_resource *r = ads_sub_candidate(s, ADS_T_LDS, i, 0);
    if (r == NULL) {
      ads_sub_forget(t, t->names[i]);
    } else {
      if (ads_sub_remember(t, r->name, r->version, n) < 0)
        return XDS_ENOMEM;
      n_sent++;
    }
  }
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += n_sent;
  s->last_type = ADS_T_LDS;
  s->last_resources = n_sent;
  XDS_LOGD("node %s: sent LDS version %s (%zu named listeners, nonce %s)",
           ads_node_name(s), version, n_sent, t->nonce);
  return 1;
}

/* For ads_sub_forget_unless(): name is one of the stream's listeners now. */
static int is_listener_of(const void *ctx, const char *name) {
  return ads_sub_lookup((struct ads_stream *)ctx, ADS_T_LDS, name, 0) != NULL;
}

static int sotw_lds_response(struct ads_stream *s, struct xds_buf *out,
                             struct ads_shared *shared) {
  struct ads_type_state *t = &s->t[ADS_T_LDS];
  uint64_t n;
  int rc = 0;

  if (!t->requested || s->cls == NULL)
    return 0;
  if (!t->wildcard)
    return sotw_lds_named_response(s, out);
  if (t->sent_once && !t->must_answer &&
      strcmp(t->sent_version, s->cls->lds_version) == 0)
    return 0;
  n = ads_resp_next_nonce(s, t->nonce);
  if (shared != NULL) {
    /* The class's body, shared; only the nonce is this stream's. */
    shared->data = s->cls->lds_body;
    shared->len = s->cls->lds_body_len;
    shared->snap = s->snap;
  } else {
    rc = xds_buf_append(out, s->cls->lds_body, s->cls->lds_body_len);
  }
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  if (rc < 0)
    return rc;
  /* Full state: the proxy now has exactly these listeners. */
  ads_sub_forget_unless(t, is_listener_of, s);
  for (size_t i = 0; i < s->cls->n_listeners; i++)
    if (ads_sub_remember(t, s->cls->listeners[i].name,
                         s->cls->listeners[i].version, n) < 0)
      return XDS_ENOMEM;
  memcpy(t->sent_version, s->cls->lds_version, sizeof(t->sent_version));
  t->sent_once = 1;
  t->must_answer = 0;
  s->responses++;
  s->resources_sent += s->cls->n_listeners;
  s->last_type = ADS_T_LDS;
  s->last_resources = s->cls->n_listeners;
  XDS_LOGD("node %s: sent LDS version %s (%zu listeners, nonce %s)",
           ads_node_name(s), t->sent_version, s->cls->n_listeners, t->nonce);
  return 1;
}

static int sotw_ecds_response(struct ads_stream *s, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[ADS_T_ECDS];
  const struct xds_resource **send;
  char version[VERSION_LEN + 1];
  size_t n_send;
  uint64_t n;
  int rc;

  if (!t->requested || s->snap == NULL || t->owed_clean)
    return 0;
  rc = ads_resp_owed(s, ADS_T_ECDS, &send, &n_send);
  if (rc == 0 && n_send == 0)
    t->owed_clean = 1;
  if (rc < 0 || n_send == 0)
    goto out;
  rc = ads_resp_state_version(s, ADS_T_ECDS, version);
  if (rc < 0)
    goto out;
  n = ads_resp_next_nonce(s, t->nonce);
  if (s->cls->n_slots > 0) {
    /* The version_info also records what each slot holds once this is
     * applied, for a reconnect (ads_slots.c). */
    struct xds_buf vb;
    xds_buf_init(&vb, 1 << 20);
    rc = xds_buf_puts(&vb, version);
    if (rc == 0)
      rc = ads_slots_holdings(s, &vb);
    if (rc == 0)
      rc = xds_buf_putc(&vb, '\0');
    if (rc == 0)
      rc = wire_put_string(out, 1, vb.data);
    xds_buf_cleanup(&vb);
  } else {
    rc = wire_put_string(out, 1, version);
  }
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = wire_put_any(out, 2, TYPE_ECDS, send[i]->bytes, send[i]->len);
  if (rc == 0)
    rc = wire_put_string(out, 4, TYPE_ECDS);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  for (size_t i = 0; rc == 0 && i < n_send; i++)
    rc = ads_sub_remember(t, send[i]->name, send[i]->version, n);
  if (rc < 0)
    goto out;
  memcpy(t->sent_version, version, sizeof(version));
  t->sent_once = 1;
  /* Everything owed went out at its current version: nothing is owed until
   * the snapshot, the subscription or the sent map changes; unless the
   * slot plan held some back for the next response (ads_slots.c). */
  t->owed_clean = !s->slots_deferred;
  s->responses++;
  s->resources_sent += n_send;
  s->last_type = ADS_T_ECDS;
  s->last_resources = n_send;
  XDS_LOGD("node %s: sent ECDS version %s (%zu configs, nonce %s)",
           ads_node_name(s), version, n_send, t->nonce);
  rc = 1;
out:
  xds_free(send);
  return rc;
}

int ads_sotw_response(struct ads_stream *s, struct xds_buf *out,
                      struct ads_shared *shared) {
  int rc = sotw_lds_response(s, out, shared);

  if (rc == 0)
    rc = sotw_ecds_response(s, out);
  return rc;
}
