/*
 * ads.c: state-of-the-world xDS for one stream (envoy xds_protocol.rst,
 * "State of the world"), for the LDS and ECDS types.
 *
 * Rules implemented, each in one place:
 * - identity comes from the first request's node; a later node must be the
 *   same identity or the stream is closed (on_request);
 * - a request whose response_nonce is not the last nonce sent for its type
 *   is stale and ignored; the first request of a type carries none;
 * - error_detail set means NACK: logged once with the node id, the
 *   rejected version is remembered as sent, so it is not resent until the
 *   content changes;
 * - an ACK only records the acked version; what is owed is computed from
 *   versions, so an ACK can never cause a resend;
 * - LDS is full state; ECDS sends the subscribed names whose version
 *   differs from what this stream was last sent, and names newly added to
 *   the subscription even when unchanged;
 * - an ECDS name the proxy may not see is never sent, and is logged once.
 */
#include "ads.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "chain.h"
#include "identity.h"
#include "typeurl.h"
#include "wire.h"

#include "google/rpc/status.pb-c.h"

static const char *const type_urls[ADS_T_N] = {TYPE_LISTENER, TYPE_ECDS};

int ads_stream_init(struct ads_stream *s, enum ads_service svc,
                    const char *peer) {
  memset(s, 0, sizeof(*s));
  s->svc = svc;
  s->peer = xds_strdup(peer != NULL ? peer : "unknown");
  s->t[ADS_T_ECDS].sent = xds_map_new();
  s->refused = xds_map_new();
  if (s->peer == NULL || s->t[ADS_T_ECDS].sent == NULL || s->refused == NULL) {
    ads_stream_cleanup(s);
    return XDS_ENOMEM;
  }
  return 0;
}

static void free_names(struct ads_type_state *t) {
  for (size_t i = 0; i < t->n_names; i++)
    xds_free(t->names[i]);
  xds_free(t->names);
  t->names = NULL;
  t->n_names = 0;
}

void ads_stream_cleanup(struct ads_stream *s) {
  for (int i = 0; i < ADS_T_N; i++) {
    free_names(&s->t[i]);
    xds_free(s->t[i].nack_error);
    xds_map_free(s->t[i].sent, xds_free);
  }
  for (size_t i = 0; i < s->n_other; i++)
    xds_free(s->other[i].type_url);
  xds_map_free(s->refused, NULL);
  proxy_id_cleanup(&s->pid);
  snapshot_unref(s->snap);
  xds_free(s->peer);
  memset(s, 0, sizeof(*s));
}

static const char *node_name(const struct ads_stream *s) {
  return s->has_node ? s->pid.node_id : "(no node yet)";
}

static int close_with(struct ads_close *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int close_with(struct ads_close *c, int code, const char *fmt, ...) {
  va_list ap;

  c->code = code;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
  va_end(ap);
  return -1;
}

static int set_snapshot(struct ads_stream *s, struct snapshot *snap,
                        struct ads_close *close) {
  const struct xds_class *cls;
  int rc;

  rc = snapshot_class(snap, &s->pid, &cls);
  if (rc < 0)
    return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                      "node %s: cannot build its configuration: %s",
                      s->pid.node_id, xds_strerror(rc));
  if (cls->problems != NULL && (s->snap != snap || s->cls != cls))
    XDS_LOGW("node %s: some listeners left out: %s", s->pid.node_id,
             cls->problems);
  if (s->snap != snap) {
    snapshot_ref(snap);
    snapshot_unref(s->snap);
    s->snap = snap;
  }
  s->cls = cls;
  return 0;
}

/* Identity: set from the first request, checked on every later one. */
static int check_node(struct ads_stream *s,
                      const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
                      struct snapshot *snap, struct ads_close *close) {
  struct proxy_id pid;
  struct xds_err err;
  int same;

  if (req->node == NULL) {
    if (s->has_node)
      return 0;
    XDS_LOGW("stream from %s: first request has no node; closing", s->peer);
    return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                      "the first request of a stream must carry the node");
  }
  if (identity_from_node(req->node, &pid, &err) < 0) {
    XDS_LOGW("stream from %s: %s; closing", s->peer, err.msg);
    return close_with(close, ADS_STATUS_INVALID_ARGUMENT, "%s", err.msg);
  }
  if (s->has_node) {
    same = identity_equal(&pid, &s->pid);
    proxy_id_cleanup(&pid);
    if (same)
      return 0;
    XDS_LOGW("node %s: a later request changed the node identity; closing",
             s->pid.node_id);
    return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                      "node identity changed within the stream");
  }
  s->pid = pid;
  s->has_node = 1;
  XDS_LOGI("proxy connected: node %s cluster %s organization %s tenant %s "
           "mode %s from %s",
           pid.node_id, pid.cluster[0] ? pid.cluster : "-", pid.organization,
           pid.tenant != NULL ? pid.tenant : "-",
           pid.mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR", s->peer);
  return set_snapshot(s, snap, close);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replaces the subscription of type t with the request's names. Names newly
 * added are forgotten from the sent map, so they are sent again even if
 * unchanged (the protocol requires it). */
static int update_names(struct ads_stream *s, struct ads_type_state *t,
                        char **names, size_t n, struct ads_close *close) {
  char **v;
  size_t m = 0;
  int wildcard = 0;

  if (n > ADS_NAMES_MAX)
    return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                      "node %s: %zu resource names, more than the limit %d",
                      node_name(s), n, ADS_NAMES_MAX);
  v = xds_calloc(n + 1, sizeof(*v));
  if (v == NULL)
    goto oom;
  for (size_t i = 0; i < n; i++) {
    if (strlen(names[i]) > ADS_NAME_LEN_MAX) {
      for (size_t j = 0; j < m; j++)
        xds_free(v[j]);
      xds_free(v);
      return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                        "node %s: a resource name is longer than %d bytes",
                        node_name(s), ADS_NAME_LEN_MAX);
    }
    if (strcmp(names[i], "*") == 0) {
      wildcard = 1;
      continue;
    }
    v[m] = xds_strdup(names[i]);
    if (v[m] == NULL) {
      for (size_t j = 0; j < m; j++)
        xds_free(v[j]);
      xds_free(v);
      goto oom;
    }
    m++;
  }
  qsort(v, m, sizeof(*v), str_cmp);
  /* Drop duplicates. */
  if (m > 1) {
    size_t w = 1;
    for (size_t r = 1; r < m; r++) {
      if (strcmp(v[r], v[w - 1]) == 0)
        xds_free(v[r]);
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
  /* Forget what was sent for names no longer subscribed, and for names
   * newly subscribed. */
  if (t->sent != NULL) {
    size_t pos = 0;
    const char *key;
    void *val;
    char **gone = xds_calloc(xds_map_count(t->sent) + 1, sizeof(*gone));
    size_t n_gone = 0;
    if (gone == NULL) {
      for (size_t j = 0; j < m; j++)
        xds_free(v[j]);
      xds_free(v);
      goto oom;
    }
    while (xds_map_next(t->sent, &pos, &key, &val))
      if (!wildcard && bsearch(&key, v, m, sizeof(*v), str_cmp) == NULL)
        gone[n_gone++] = (char *)key;
    for (size_t i = 0; i < n_gone; i++)
      xds_free(xds_map_del(t->sent, gone[i]));
    xds_free(gone);
    for (size_t i = 0; i < m; i++) {
      const char *name = v[i];
      if (t->names == NULL ||
          bsearch(&name, t->names, t->n_names, sizeof(*t->names), str_cmp) ==
              NULL)
        xds_free(xds_map_del(t->sent, name));
    }
    if (wildcard && !t->wildcard) {
      /* Becoming wildcard subscribes everything anew. */
      pos = 0;
      while (xds_map_next(t->sent, &pos, &key, &val))
        ((char *)val)[0] = '\0';
    }
  }
  free_names(t);
  t->names = v;
  t->n_names = m;
  t->wildcard = wildcard;
  return 0;
oom:
  return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                    "node %s: out of memory", node_name(s));
}

static int other_type(struct ads_stream *s,
                      const Envoy__Service__Discovery__V3__DiscoveryRequest *req) {
  struct ads_other_type *o = NULL;

  for (size_t i = 0; i < s->n_other; i++)
    if (strcmp(s->other[i].type_url, req->type_url) == 0)
      o = &s->other[i];
  if (o != NULL)
    return 0; /* answered once; ACKs and repeats need nothing */
  if (s->n_other == ADS_OTHER_TYPES_MAX) {
    XDS_LOGW("node %s: request for type %s ignored: wasmxds does not serve "
             "it and this stream already asked for %d other types",
             node_name(s), req->type_url, ADS_OTHER_TYPES_MAX);
    return 0;
  }
  o = &s->other[s->n_other];
  o->type_url = xds_strndup(req->type_url, ADS_NAME_LEN_MAX);
  if (o->type_url == NULL)
    return XDS_ENOMEM;
  s->n_other++;
  XDS_LOGI("node %s: type %s is not served by wasmxds; answering with an "
           "empty response",
           node_name(s), req->type_url);
  return 0;
}

int ads_stream_on_request(
    struct ads_stream *s,
    const Envoy__Service__Discovery__V3__DiscoveryRequest *req,
    struct snapshot *snap, struct ads_close *close) {
  struct ads_type_state *t;
  const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
  const char *version = req->version_info != NULL ? req->version_info : "";
  const char *type = req->type_url != NULL ? req->type_url : "";
  int idx = -1;

  if (check_node(s, req, snap, close) < 0)
    return -1;
  for (int i = 0; i < ADS_T_N; i++)
    if (strcmp(type, type_urls[i]) == 0)
      idx = i;
  if (idx < 0 && type[0] == '\0') {
    if (s->svc == ADS_SVC_ADS)
      return close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                        "node %s: request without type_url on ADS",
                        node_name(s));
    idx = s->svc == ADS_SVC_LDS ? ADS_T_LDS : ADS_T_ECDS;
  }
  if ((s->svc == ADS_SVC_LDS && idx != ADS_T_LDS) ||
      (s->svc == ADS_SVC_ECDS && idx != ADS_T_ECDS)) {
    XDS_LOGW("node %s: type \"%s\" on the %s service; ignored", node_name(s),
             type, s->svc == ADS_SVC_LDS ? "listener" : "extension config");
    return 0;
  }
  if (idx < 0) {
    if (other_type(s, req) < 0)
      return close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                        "node %s: out of memory", node_name(s));
    return 0;
  }
  t = &s->t[idx];

  if (nonce[0] != '\0' && strcmp(nonce, t->nonce) != 0) {
    XDS_LOGD("node %s: %s request with stale nonce %s (latest %s) ignored",
             node_name(s), type, nonce, t->nonce);
    return 0;
  }
  if (req->error_detail != NULL) {
    const char *msg = req->error_detail->message != NULL
                          ? req->error_detail->message
                          : "";
    s->nacks++;
    memcpy(t->nacked_version, t->sent_version, sizeof(t->nacked_version));
    xds_free(t->nack_error);
    t->nack_error = xds_strndup(msg, 4096);
    XDS_LOGW("NACK from node %s for %s version %s (nonce %s; still on %s): %s",
             node_name(s), type, t->sent_version, nonce,
             version[0] ? version : "nothing", msg);
  } else if (nonce[0] != '\0') {
    s->acks++;
    snprintf(t->acked_version, sizeof(t->acked_version), "%s", version);
    XDS_LOGD("ACK from node %s for %s version %s", node_name(s), type, version);
  }
  t->requested = 1;
  return update_names(s, t, req->resource_names, req->n_resource_names, close);
}

int ads_stream_on_snapshot(struct ads_stream *s, struct snapshot *snap,
                           struct ads_close *close) {
  if (!s->has_node || s->snap == snap)
    return 0;
  return set_snapshot(s, snap, close);
}

static void next_nonce(struct ads_stream *s, char out[24]) {
  snprintf(out, 24, "%" PRIu64, ++s->nonce_seq);
}

static int lds_response(struct ads_stream *s, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[ADS_T_LDS];
  int rc;

  if (!t->requested || s->cls == NULL)
    return 0;
  if (t->sent_once && strcmp(t->sent_version, s->cls->lds_version) == 0)
    return 0;
  next_nonce(s, t->nonce);
  rc = xds_buf_append(out, s->cls->lds_body, s->cls->lds_body_len);
  if (rc == 0)
    rc = wire_put_string(out, 5, t->nonce);
  if (rc < 0)
    return rc;
  memcpy(t->sent_version, s->cls->lds_version, sizeof(t->sent_version));
  t->sent_once = 1;
  s->responses++;
  XDS_LOGD("node %s: sent LDS version %s (%zu listeners, nonce %s)",
           s->pid.node_id, t->sent_version, s->cls->n_listeners, t->nonce);
  return 1;
}

/* The extension named name if this proxy may see it, else NULL (logged
 * once per name). */
static const struct xds_resource *visible_ecds(struct ads_stream *s,
                                               const char *name) {
  const struct catalog *cat = snapshot_catalog(s->snap);
  const struct wasm_ext *e = catalog_ext_find(cat, name);

  if (e != NULL && chain_ext_visible(e, &s->pid))
    return snapshot_ecds(s->snap, name);
  if (xds_map_get(s->refused, name) == NULL &&
      xds_map_count(s->refused) < ADS_NAMES_MAX) {
    XDS_LOGW("node %s: ECDS name %s refused: %s", s->pid.node_id, name,
             e == NULL ? "no such extension" : "not visible to this proxy");
    xds_map_put(s->refused, name, (void *)1, NULL);
  }
  return NULL;
}

static int ecds_response(struct ads_stream *s, struct xds_buf *out) {
  struct ads_type_state *t = &s->t[ADS_T_ECDS];
  const struct catalog *cat;
  const struct xds_resource **send = NULL;
  struct version_hasher h;
  size_t n_send = 0, n_all, n_cand;
  int rc = 0;

  if (!t->requested || s->snap == NULL)
    return 0;
  cat = snapshot_catalog(s->snap);
  n_all = catalog_ext_count(cat);
  n_cand = t->wildcard ? n_all : t->n_names;
  send = xds_calloc(n_cand + 1, sizeof(*send));
  if (send == NULL)
    return XDS_ENOMEM;
  rc = version_begin(&h);
  if (rc < 0)
    goto out;
  for (size_t i = 0; i < n_cand; i++) {
    const char *name = t->wildcard ? catalog_ext_at(cat, i)->fqn : t->names[i];
    const struct xds_resource *r;
    const char *was;
    if (t->wildcard && !chain_ext_visible(catalog_ext_at(cat, i), &s->pid))
      continue;
    r = visible_ecds(s, name);
    if (r == NULL)
      continue;
    version_add_str(&h, r->name);
    version_add_str(&h, r->version);
    was = xds_map_get(t->sent, r->name);
    if (was == NULL || strcmp(was, r->version) != 0)
      send[n_send++] = r;
  }
  {
    char version[VERSION_LEN + 1];
    version_end(&h, version);
    if (n_send == 0)
      goto out; /* rc is 0: nothing owed */
    next_nonce(s, t->nonce);
    rc = wire_put_string(out, 1, version);
    for (size_t i = 0; rc == 0 && i < n_send; i++)
      rc = wire_put_any(out, 2, TYPE_ECDS, send[i]->bytes, send[i]->len);
    if (rc == 0)
      rc = wire_put_string(out, 4, TYPE_ECDS);
    if (rc == 0)
      rc = wire_put_string(out, 5, t->nonce);
    if (rc < 0)
      goto out;
    for (size_t i = 0; i < n_send; i++) {
      char *copy = xds_strdup(send[i]->version);
      void *old = NULL;
      if (copy == NULL || xds_map_put(t->sent, send[i]->name, copy, &old) < 0) {
        xds_free(copy);
        rc = XDS_ENOMEM;
        goto out;
      }
      xds_free(old);
    }
    memcpy(t->sent_version, version, sizeof(version));
    t->sent_once = 1;
    s->responses++;
    XDS_LOGD("node %s: sent ECDS version %s (%zu of %zu configs, nonce %s)",
             s->pid.node_id, version, n_send, n_cand, t->nonce);
    rc = 1;
  }
out:
  xds_free(send);
  return rc;
}

static int other_response(struct ads_stream *s, struct xds_buf *out) {
  for (size_t i = 0; i < s->n_other; i++) {
    struct ads_other_type *o = &s->other[i];
    int rc;
    if (o->answered)
      continue;
    next_nonce(s, o->nonce);
    rc = wire_put_string(out, 4, o->type_url);
    if (rc == 0)
      rc = wire_put_string(out, 5, o->nonce);
    if (rc < 0)
      return rc;
    o->answered = 1;
    s->responses++;
    return 1;
  }
  return 0;
}

int ads_stream_next_response(struct ads_stream *s, struct xds_buf *out) {
  int rc;

  xds_buf_reset(out);
  if (!s->has_node)
    return 0;
  rc = lds_response(s, out);
  if (rc != 0)
    return rc;
  rc = ecds_response(s, out);
  if (rc != 0)
    return rc;
  return other_response(s, out);
}
