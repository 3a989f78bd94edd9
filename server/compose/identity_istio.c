/*
 * identity_istio.c: the parts of a proxy's identity an Envoy bootstrapped
 * the way istio-agent does it reports (README "Coming from Istio"):
 *
 *   Node.id   <type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>
 *             type sidecar (a SIDECAR) or router (a GATEWAY)
 *   metadata  NAMESPACE, LABELS (a struct of strings), WORKLOAD_NAME,
 *             CLUSTER_ID, MESH_ID, ISTIO_VERSION (strings)
 *
 * and the SPIFFE identity Istio's certificates carry,
 * spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
 * Pure; safe from any thread.
 */
#include "server/compose/identity.h"

#include <string.h>

#include "base/alloc.h"

#include "google/protobuf/struct.pb-c.h"

/* The metadata keys istio-agent writes that are read as strings. */
static const char *const ISTIO_STRING_KEYS[] = {IDENTITY_ISTIO_NAMESPACE,
                                                "WORKLOAD_NAME",
                                                "CLUSTER_ID",
                                                "MESH_ID",
                                                "ISTIO_VERSION",
                                                NULL};

int identity_namespace_valid(const char *s, size_t n) {
  if (n == 0 || n > 63)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

    if (!alnum && (c != '-' || i == 0 || i + 1 == n))
      return 0;
  }
  return 1;
}

void identity_istio_cleanup(struct identity_istio *ist) {
  xds_free(ist->namespace);
  memset(ist, 0, sizeof(*ist));
}

int identity_istio_read(const Envoy__Config__Core__V3__Node *node,
                        struct identity_istio *out, struct xds_err *err) {
  const Google__Protobuf__Struct *md = node->metadata;
  const char *id = node->id, *part[4], *ns_meta = NULL, *ns_id = NULL;
  size_t len[4], n = 0, ns_id_len = 0;
  int istio_id = 0;
  const Google__Protobuf__Value *v;

  memset(out, 0, sizeof(*out));
  for (size_t i = 0; ISTIO_STRING_KEYS[i] != NULL; i++) {
    if (identity_meta_find(md, ISTIO_STRING_KEYS[i], &v) < 0)
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: metadata %s appears more than once", id,
                         ISTIO_STRING_KEYS[i]);
    if (v == NULL)
      continue;
    if (v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: metadata %s must be a string", id,
                         ISTIO_STRING_KEYS[i]);
    out->present = 1;
    if (i == 0)
      ns_meta = v->string_value;
  }
  if (identity_meta_find(md, IDENTITY_ISTIO_LABELS, &out->labels) < 0)
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: metadata " IDENTITY_ISTIO_LABELS
                       " appears more than once",
                       id);
  if (out->labels != NULL)
    out->present = 1;

  /* Node.id: exactly four '~'-separated parts is Istio's shape. */
  for (const char *p = id; *p != '\0'; p++)
    if (*p == '~')
      n++;
  if (n == 3) {
    const char *p = id;

    for (size_t k = 0; k < 4; k++) {
      const char *t = strchr(p, '~');

      part[k] = p;
      len[k] = t != NULL ? (size_t)(t - p) : strlen(p);
      p = t != NULL ? t + 1 : p + len[k];
    }
    istio_id = 1;
  }
  /* Only exactly three '~' split the id: with four, part[] is unset. */
  if (istio_id) {
    const char *dot;

    out->present = 1;
    if (len[0] == 7 && strncmp(part[0], "sidecar", 7) == 0) {
      out->mode = PROXY_MODE_SIDECAR;
    } else if (len[0] == 6 && strncmp(part[0], "router", 6) == 0) {
      out->mode = PROXY_MODE_GATEWAY;
    } else {
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: Istio node type \"%.*s\" is not sidecar "
                         "or router",
                         id, (int)len[0], part[0]);
    }
    out->has_mode = 1;
    /* <pod>.<namespace>: pod names may hold dots, namespaces may not. */
    dot = NULL;
    for (const char *q = part[2]; q < part[2] + len[2]; q++)
      if (*q == '.')
        dot = q;
    if (dot != NULL) {
      ns_id = dot + 1;
      ns_id_len = (size_t)(part[2] + len[2] - ns_id);
    }
  }
  if (!out->present)
    return 0;
  if (ns_meta != NULL && ns_id != NULL &&
      (strlen(ns_meta) != ns_id_len || memcmp(ns_meta, ns_id, ns_id_len) != 0))
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: metadata " IDENTITY_ISTIO_NAMESPACE
                       " \"%s\" disagrees with the namespace \"%.*s\" of the "
                       "node id",
                       id, ns_meta, (int)ns_id_len, ns_id);
  if (ns_meta == NULL && ns_id == NULL)
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: an Istio node needs a namespace: set "
                       "metadata " IDENTITY_ISTIO_NAMESPACE
                       " or a node id <type>~<ip>~<pod>.<namespace>~<domain>",
                       id);
  if (ns_meta != NULL) {
    ns_id = ns_meta;
    ns_id_len = strlen(ns_meta);
  }
  /* The id's last part is the proxy's DNS domain, <namespace>.svc.<...>
   * for a Kubernetes workload: when it has that shape it must name the
   * same namespace (a domain without ".svc" is a VM's own, not checked). */
  if (istio_id) {
    const char *d = part[3];
    size_t dl = len[3], nl = 0;

    while (nl < dl && d[nl] != '.')
      nl++;
    if (nl < dl && dl - nl >= 4 && memcmp(d + nl, ".svc", 4) == 0 &&
        (dl - nl == 4 || d[nl + 4] == '.') &&
        (nl != ns_id_len || memcmp(d, ns_id, nl) != 0))
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: the domain \"%.*s\" of the node id names "
                         "namespace \"%.*s\", not \"%.*s\"",
                         id, (int)dl, d, (int)nl, d, (int)ns_id_len, ns_id);
  }
  if (!identity_namespace_valid(ns_id, ns_id_len))
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: namespace \"%.*s\" is not a DNS-1123 label "
                       "(lowercase letters, digits and '-', at most 63)",
                       id, (int)ns_id_len, ns_id);
  out->namespace = xds_strndup(ns_id, ns_id_len);
  if (out->namespace == NULL)
    return xds_err_set(err, XDS_ENOMEM, "node %s: out of memory", id);
  return 0;
}
