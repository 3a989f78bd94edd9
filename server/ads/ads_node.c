/*
 * ads_node.c: who the proxy on a stream is. The first request's node sets
 * the identity (with mutual TLS it must agree with the certificate), every
 * later node must be the same identity, and the identity picks the proxy's
 * class in the current snapshot.
 */
#include "server/ads/ads_impl.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "server/compose/identity.h"

int ads_node_set_snapshot(struct ads_stream *s, struct snapshot *snap,
                          struct ads_close *close) {
  const struct xds_class *cls;
  int rc;

  rc = snapshot_class(snap, &s->pid, &cls);
  if (rc < 0)
    return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                          "node %s: cannot build its configuration: %s",
                          ads_node_name(s), xds_strerror(rc));
  if (cls->problems != NULL && s->cls != cls)
    XDS_LOGW("node %s: some listeners left out: %s", ads_node_name(s),
             cls->problems);
  if (s->snap != snap) {
    snapshot_ref(snap);
    snapshot_unref(s->snap);
    s->snap = snap;
  }
  s->cls = cls;
  for (int i = 0; i < ADS_T_N; i++)
    s->t[i].owed_clean = 0;
  return 0;
}

static int str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

/* With mutual TLS the certificate names the organization and tenant (or,
 * an Istio certificate, the namespace); the node may not claim another,
 * nor claim one the certificate does not name. */
static int check_verified(struct ads_stream *s, struct proxy_id *pid,
                          struct ads_close *close) {
  const struct proxy_id *v = s->verified;
  const char *v_org =
      v != NULL && v->organization != NULL ? v->organization : "";

  if (v == NULL)
    return 0;
  if (!str_eq(pid->organization, v_org) ||
      (pid->tenant != NULL && !str_eq(pid->tenant, v->tenant))) {
    char e_id[ADS_LOG_NAME_MAX], e_org[ADS_LOG_NAME_MAX],
        e_tenant[ADS_LOG_NAME_MAX], e_peer[ADS_LOG_NAME_MAX];

    XDS_LOGW("node %s from %s: metadata claims organization %s tenant %s but "
             "its certificate says organization %s tenant %s; refused",
             xds_log_escape(pid->node_id, e_id, sizeof(e_id)),
             xds_log_escape(s->peer, e_peer, sizeof(e_peer)),
             xds_log_escape(pid->organization, e_org, sizeof(e_org)),
             pid->tenant != NULL
                 ? xds_log_escape(pid->tenant, e_tenant, sizeof(e_tenant))
                 : "-",
             v_org[0] != '\0' ? v_org : "-",
             v->tenant != NULL ? v->tenant : "-");
    return ads_close_with(
        close, ADS_STATUS_PERMISSION_DENIED,
        "node metadata claims a tenant its certificate does not "
        "name");
  }
  if (pid->namespace != NULL && !str_eq(pid->namespace, v->namespace)) {
    XDS_LOGW("node %s from %s: claims namespace %s but its certificate "
             "says namespace %s; refused",
             pid->node_id, s->peer, pid->namespace,
             v->namespace != NULL ? v->namespace : "-");
    return ads_close_with(close, ADS_STATUS_PERMISSION_DENIED,
                          "node claims a namespace its certificate does not "
                          "name");
  }
  /* The certificate's tenant and namespace apply even when the node names
   * none. */
  if (pid->tenant == NULL && v->tenant != NULL) {
    pid->tenant = xds_strdup(v->tenant);
    if (pid->tenant == NULL)
      return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
  }
  if (pid->namespace == NULL && v->namespace != NULL) {
    pid->namespace = xds_strdup(v->namespace);
    if (pid->namespace == NULL)
      return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
  }
  return 0;
}

/* Identity: set from the first request, checked on every later one. */
int ads_node_check(struct ads_stream *s,
                   const Envoy__Config__Core__V3__Node *node,
                   struct snapshot *snap, struct ads_close *close) {
  char e_peer[ADS_LOG_NAME_MAX], e_msg[XDS_LOG_ESC_MAX],
      e_cluster[ADS_LOG_NAME_MAX], e_org[ADS_LOG_NAME_MAX],
      e_tenant[ADS_LOG_NAME_MAX];
  struct proxy_id pid;
  struct xds_err err;
  int same;

  if (node == NULL) {
    if (s->has_node)
      return 0;
    XDS_LOGW("stream from %s: first request has no node; closing",
             xds_log_escape(s->peer, e_peer, sizeof(e_peer)));
    return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                          "the first request of a stream must carry the node");
  }
  if (identity_from_node_verified(node, s->verified, &pid, &err) < 0) {
    XDS_LOGW("stream from %s: %s; closing",
             xds_log_escape(s->peer, e_peer, sizeof(e_peer)),
             xds_log_escape(err.msg, e_msg, sizeof(e_msg)));
    return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT, "%s", err.msg);
  }
  if (snap != NULL)
    pid.root_namespace = snapshot_opts(snap)->istio_root_namespace;
  if (check_verified(s, &pid, close) < 0) {
    proxy_id_cleanup(&pid);
    return -1;
  }
  if (s->has_node) {
    same = identity_equal(&pid, &s->pid);
    proxy_id_cleanup(&pid);
    if (same)
      return 0;
    XDS_LOGW("node %s: a later request changed the node identity; closing",
             ads_node_name(s));
    return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                          "node identity changed within the stream");
  }
  {
    char esc[ADS_LOG_NAME_MAX];

    xds_log_escape(pid.node_id, esc, sizeof(esc));
    s->log_name = xds_strdup(esc);
  }
  if (s->log_name == NULL) {
    proxy_id_cleanup(&pid);
    return ads_close_oom(s, close);
  }
  s->pid = pid;
  s->has_node = 1;
  XDS_LOGI("proxy connected: node %s cluster %s organization %s tenant %s "
           "mode %s from %s (%s%s)",
           s->log_name,
           pid.cluster[0]
               ? xds_log_escape(pid.cluster, e_cluster, sizeof(e_cluster))
               : "-",
           xds_log_escape(pid.organization, e_org, sizeof(e_org)),
           pid.tenant != NULL
               ? xds_log_escape(pid.tenant, e_tenant, sizeof(e_tenant))
               : "-",
           pid.mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR",
           xds_log_escape(s->peer, e_peer, sizeof(e_peer)),
           s->mode == ADS_DELTA ? "delta" : "state of the world",
           s->verified != NULL ? ", verified by certificate" : "");
  return ads_node_set_snapshot(s, snap, close);
}
