/*
 * ads.c: the xDS protocol of one stream (envoy xds_protocol.rst), for the
 * LDS and ECDS types, state of the world and incremental: the stream's
 * lifecycle, its accessors, and the dispatch of each request (identity,
 * then type, then ACK/NACK and the subscription change of its protocol).
 * The other jobs live in the files ads_impl.h lists.
 *
 * Rules implemented, each in one place:
 * - identity comes from the first request's node; a later node must be the
 *   same identity or the stream is closed; with mutual TLS the node must
 *   agree with the certificate (ads_node.c);
 * - SotW: a request whose response_nonce is not the last nonce sent for its
 *   type is stale and ignored; delta: a stale nonce voids the ACK/NACK but
 *   subscription changes still apply (the protocol says both; ads_sotw.c,
 *   ads_delta.c);
 * - error_detail set means NACK: logged with the node id; the rejected
 *   versions stay recorded as sent, so they are not resent until the
 *   content changes (ads_ack, here);
 * - an ACK only records what was acknowledged; what is owed is computed
 *   from versions (the `sent` map), so an ACK never causes a resend
 *   (ads_sub.c, ads_resp.c);
 * - SotW LDS is full state; SotW ECDS sends subscribed names whose version
 *   differs from what this stream has, and names newly added to the
 *   subscription even when unchanged; a reconnecting proxy whose
 *   version_info matches the current state is sent nothing (ads_sotw.c);
 * - delta sends changed resources and names the ones that went away or do
 *   not exist in removed_resources; initial_resource_versions seed what the
 *   proxy has (ads_delta.c);
 * - a name the proxy may not see is never sent, and is logged once
 *   (ads_sub.c).
 */
#include "server/ads/ads_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "server/compose/identity.h"
#include "server/pb/typeurl.h"

const char *const ads_type_urls[ADS_T_N] = {TYPE_LISTENER, TYPE_ECDS};
const char *const ads_type_names[ADS_T_N] = {"LDS", "ECDS"};

int ads_stream_init(struct ads_stream *s, enum ads_service svc,
                    enum ads_mode mode, const char *peer) {
  struct timespec now;

  memset(s, 0, sizeof(*s));
  clock_gettime(CLOCK_REALTIME, &now);
  s->connected_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  s->magic = ADS_STREAM_MAGIC;
  s->sync_counted = -1;
  s->svc = svc;
  s->mode = mode;
  s->peer = xds_strdup(peer != NULL ? peer : "unknown");
  /* refused and absent are made on first use: most streams never need
   * them, and every map costs a few hundred bytes per stream. */
  if (s->peer == NULL) {
    ads_stream_cleanup(s);
    return XDS_ENOMEM;
  }
  return 0;
}

void ads_stream_cleanup(struct ads_stream *s) {
  if (s->sync_counts != NULL && s->sync_counted >= 0)
    atomic_fetch_sub(&s->sync_counts[s->sync_counted], 1);
  for (int i = 0; i < ADS_T_N; i++) {
    ads_names_free(&s->t[i]);
    ads_owe_removed_free(&s->t[i]);
    xds_free(s->t[i].nack_error);
    ads_sent_cleanup(&s->t[i].sent);
    xds_map_free(s->t[i].absent, NULL);
  }
  for (size_t i = 0; i < s->n_other; i++)
    ads_other_cleanup(&s->other[i]);
  xds_free(s->other);
  xds_free(s->log_name);
  xds_map_free(s->refused, NULL);
  xds_map_free(s->slot_holds, xds_free);
  ads_slots_cleanup(s);
  proxy_id_cleanup(&s->pid);
  snapshot_unref(s->snap);
  xds_free(s->peer);
  memset(s, 0, sizeof(*s));
}

void ads_stream_after(struct ads_stream *s) {
  int st;

  for (int i = 0; i < ADS_T_N; i++)
    ads_sent_settle(&s->t[i].sent);
  if (s->sync_counts == NULL)
    return;
  st = ads_stream_sync_state(s);
  if (st == s->sync_counted)
    return;
  if (s->sync_counted >= 0)
    atomic_fetch_sub(&s->sync_counts[s->sync_counted], 1);
  if (st >= 0)
    atomic_fetch_add(&s->sync_counts[st], 1);
  s->sync_counted = st;
}

void ads_stream_set_sync_counts(struct ads_stream *s, atomic_long *by_state) {
  XDS_ASSERT(s->sync_counts == NULL);
  s->sync_counts = by_state;
  ads_stream_after(s);
}

const char *ads_node_name(const struct ads_stream *s) {
  return s->has_node ? s->log_name : "(no node yet)";
}

int ads_log_allow(struct ads_stream *s, enum ads_event ev) {
  s->events[ev]++;
  if (!s->has_node || xds_ratelog_event(s->ratelog, s->pid.node_id, (int)ev,
                                        xds_ratelog_now_ms()))
    return 1;
  s->log_suppressed++;
  return 0;
}

static const char *const ads_event_names[ADS_EV_N] = {
    "NACKs", "refused ECDS names", "requests for types not served"};

struct xds_ratelog *ads_ratelog_new(void) {
  return xds_ratelog_new(ADS_LOG_PROXIES_MAX, ADS_LOG_PER_WINDOW,
                         ADS_LOG_WINDOW_MS, "node", ads_event_names, ADS_EV_N);
}

void ads_stream_set_ratelog(struct ads_stream *s, struct xds_ratelog *r) {
  s->ratelog = r;
}

const char *ads_stream_log_name(const struct ads_stream *s) {
  return s->has_node ? s->log_name : s->peer;
}

int ads_close_with(struct ads_close *c, int code, const char *fmt, ...) {
  va_list ap;

  if (c == NULL)
    return -1;
  c->code = code;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
  va_end(ap);
  return -1;
}

/* Ends the stream because memory ran out. Returns -1. */
int ads_close_oom(const struct ads_stream *s, struct ads_close *close) {
  return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                        "node %s: out of memory", ads_node_name(s));
}

static int type_index(struct ads_stream *s, const char *type,
                      struct ads_close *close, int *idx) {
  *idx = -1;
  for (int i = 0; i < ADS_T_N; i++)
    if (strcmp(type, ads_type_urls[i]) == 0)
      *idx = i;
  if (*idx < 0 && type[0] == '\0') {
    if (s->svc == ADS_SVC_ADS)
      return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                            "node %s: request without type_url on ADS",
                            ads_node_name(s));
    *idx = s->svc == ADS_SVC_LDS ? ADS_T_LDS : ADS_T_ECDS;
  }
  if ((s->svc == ADS_SVC_LDS && *idx != ADS_T_LDS) ||
      (s->svc == ADS_SVC_ECDS && *idx != ADS_T_ECDS)) {
    char esc[XDS_LOG_ESC_MAX];

    if (ads_log_allow(s, ADS_EV_TYPE))
      XDS_LOGW("node %s: type \"%s\" on the %s service; ignored",
               ads_node_name(s), xds_log_escape(type, esc, sizeof(esc)),
               s->svc == ADS_SVC_LDS ? "listener" : "extension config");
    *idx = -2;
  }
  return 0;
}

static uint64_t nonce_value(const char *nonce) {
  char *end;
  unsigned long long v = strtoull(nonce, &end, 10);

  return *end == '\0' ? (uint64_t)v : 0;
}

/*
 * An ACK or NACK of the response with nonce: updates the state of the
 * resources that response carried. latest says whether it is the last
 * response of the type; an earlier one (overtaken by a newer response
 * before the proxy answered it) still tells which of its resources were
 * accepted or rejected, but not the type's current version. A nonce this
 * stream never sent is ignored.
 */
/* Replaces, in place, every byte of s that is not part of a well-formed
 * UTF-8 sequence with '?': a proxy's NACK message is kept as text that
 * JSON (/debug/proxies, CSDS clients) can carry, also when the length
 * limit cut a character. */
static void utf8_repair(char *s) {
  unsigned char *p = (unsigned char *)s;

  while (*p != '\0') {
    unsigned c = *p, v = 0;
    size_t n = 0;

    if (c < 0x80) {
      p++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
      v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      v = c & 0x07;
    }
    for (size_t i = 1; i < n; i++) {
      if ((p[i] & 0xc0) != 0x80) {
        n = 0; /* also stops at the terminator */
        break;
      }
      v = (v << 6) | (p[i] & 0x3f);
    }
    if (n == 0 || (n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
        (n == 4 && (v < 0x10000 || v > 0x10ffff))) {
      *p++ = '?';
      continue;
    }
    p += n;
  }
}

void ads_ack(struct ads_stream *s, struct ads_type_state *t, int idx,
             const char *nonce, const char *version,
             const Google__Rpc__Status *error, int latest) {
  uint64_t n = nonce_value(nonce);

  if (n == 0 || n > s->nonce_seq)
    return;
  if (error != NULL) {
    const char *msg = error->message != NULL ? error->message : "";
    t->nacks++;
    xds_free(t->nack_error);
    t->nack_error = xds_strndup(msg, ADS_NACK_ERROR_MAX);
    if (t->nack_error != NULL)
      utf8_repair(t->nack_error);
    char e_nonce[64], e_version[64], e_msg[XDS_LOG_ESC_MAX];

    if (ads_log_allow(s, ADS_EV_NACK))
      XDS_LOGW(
          "NACK from node %s for %s version %s (nonce %s; still on %s): %s",
          ads_node_name(s), ads_type_names[idx],
          latest ? t->sent_version : "of an earlier response",
          xds_log_escape(nonce, e_nonce, sizeof(e_nonce)),
          version[0] ? xds_log_escape(version, e_version, sizeof(e_version))
                     : "nothing",
          xds_log_escape(msg, e_msg, sizeof(e_msg)));
  } else {
    t->acks++;
    if (latest && (version[0] != '\0' || s->mode == ADS_DELTA)) {
      const char *v = s->mode == ADS_DELTA ? t->sent_version : version;
      size_t len = strnlen(v, sizeof(t->acked_version) - 1);

      /* What snprintf "%s" would keep, without its cost on every ACK. */
      memcpy(t->acked_version, v, len);
      t->acked_version[len] = '\0';
    }
    char e_nonce[64];

    XDS_LOGD("ACK from node %s for %s nonce %s%s", ads_node_name(s),
             ads_type_names[idx],
             xds_log_escape(nonce, e_nonce, sizeof(e_nonce)),
             latest ? "" : " (an earlier response)");
  }
  if (t->sent.n_pending == 0)
    return;
  for (uint32_t i = 0; i < t->sent.n; i++) {
    struct ads_res *r = &t->sent.v[i];
    if (r->nonce != (uint32_t)n || r->state != ADS_RES_PENDING)
      continue;
    if (error != NULL) {
      ads_res_set_state(&t->sent, r, ADS_RES_NACKED);
    } else {
      ads_res_set_state(&t->sent, r, ADS_RES_ACKED);
      ads_res_ack_version(&t->sent, r);
    }
  }
}

/* Refuses a list of names longer than the limit, or holding a name
 * longer than the limit: the same rule for every type and list, checked
 * before any of the request is applied, in time linear in the request. */
static int check_names(struct ads_stream *s, char *const *v, size_t n,
                       const char *what, struct ads_close *close) {
  if (n > ADS_NAMES_MAX)
    return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                          "node %s: %zu %s in one request, more than the "
                          "limit %d",
                          ads_node_name(s), n, what, ADS_NAMES_MAX);
  for (size_t i = 0; i < n; i++)
    if (v != NULL && strnlen(v[i], ADS_NAME_LEN_MAX + 1) > ADS_NAME_LEN_MAX)
      return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                            "node %s: a resource name is longer than %d bytes",
                            ads_node_name(s), ADS_NAME_LEN_MAX);
  return 0;
}

/* What every request, SotW or delta, starts with: identity, the name
 * limits, then the type. Returns -1 (close the stream), 0 (the request is
 * done: another type, answered empty, or ignored) or 1 with *idx the
 * served type. */
int ads_request_start(struct ads_stream *s,
                      const Envoy__Config__Core__V3__Node *node,
                      const char *type, const struct ads_req_names *in,
                      struct snapshot *snap, struct ads_close *close,
                      int *idx) {
  if (ads_node_check(s, node, snap, close) < 0)
    return -1;
  if (check_names(s, in->sub, in->n_sub, "resource names", close) < 0 ||
      check_names(s, in->unsub, in->n_unsub, "names to unsubscribe", close) <
          0 ||
      check_names(s, NULL, in->n_initial, "initial resource versions", close) <
          0)
    return -1;
  if (type_index(s, type, close, idx) < 0)
    return -1;
  if (*idx == -2)
    return 0;
  if (*idx < 0)
    return ads_other_request(s, type, in, close) < 0 ? -1 : 0;
  return 1;
}

int ads_stream_on_snapshot(struct ads_stream *s, struct snapshot *snap,
                           struct ads_close *close) {
  int rc;

  ADS_CHECK(s);
  if (!s->has_node || s->snap == snap)
    return 0;
  rc = ads_node_set_snapshot(s, snap, close);
  ads_stream_after(s);
  return rc;
}

int ads_stream_new(enum ads_service svc, enum ads_mode mode, const char *peer,
                   struct ads_stream **out) {
  struct ads_stream *s = xds_malloc(sizeof(*s));

  *out = NULL;
  if (s == NULL)
    return XDS_ENOMEM;
  if (ads_stream_init(s, svc, mode, peer) < 0) {
    xds_free(s);
    return XDS_ENOMEM;
  }
  *out = s;
  return 0;
}

void ads_stream_free(struct ads_stream *s) {
  if (s == NULL)
    return;
  ads_stream_cleanup(s);
  xds_free(s);
}

void ads_stream_set_verified(struct ads_stream *s, const struct proxy_id *v) {
  s->verified = v;
}

const char *ads_stream_peer(const struct ads_stream *s) {
  return s->peer;
}

const char *ads_stream_node_id(const struct ads_stream *s) {
  return s->has_node ? s->pid.node_id : NULL;
}

const struct proxy_id *ads_stream_proxy(const struct ads_stream *s) {
  return s->has_node ? &s->pid : NULL;
}

enum ads_mode ads_stream_mode(const struct ads_stream *s) {
  return s->mode;
}

void ads_stream_counts(const struct ads_stream *s, struct ads_counts *out) {
  out->responses = s->responses;
  for (int i = 0; i < ADS_T_N; i++) {
    out->acks[i] = s->t[i].acks;
    out->nacks[i] = s->t[i].nacks;
  }
  out->last_type = s->last_type;
  out->last_resources = s->last_resources;
  out->refused_names = s->events[ADS_EV_REFUSED];
  out->log_suppressed = s->log_suppressed;
}

void ads_check_invariants(const struct ads_stream *s) {
  XDS_ASSERT(s->magic == ADS_STREAM_MAGIC);
  XDS_ASSERT(!s->has_node || (s->snap != NULL && s->cls != NULL));
  XDS_ASSERT(s->n_other <= ADS_OTHER_TYPES_MAX);
  for (int i = 0; i < ADS_T_N; i++) {
    const struct ads_type_state *t = &s->t[i];

    ads_sent_check(&t->sent);
    XDS_ASSERT(t->n_names <= ADS_NAMES_MAX);
    XDS_ASSERT(t->n_owe_removed <= ADS_NAMES_MAX);
    for (size_t j = 1; j < t->n_names; j++)
      XDS_ASSERT(strcmp(t->names[j - 1], t->names[j]) < 0);
  }
  for (size_t i = 0; i < s->n_other; i++)
    XDS_ASSERT(s->other[i].n_absent <= ADS_NAMES_MAX);
}

void ads_check_settled(const struct ads_stream *s) {
  ads_check_invariants(s);
  for (int i = 0; i < ADS_T_N; i++)
    XDS_ASSERT(s->t[i].sent.sorted == s->t[i].sent.n);
  XDS_ASSERT(s->sync_counts == NULL ||
             s->sync_counted == ads_stream_sync_state(s));
}
