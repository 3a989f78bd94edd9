/*
 * identity.h: who a proxy is, from its Envoy Node.
 *
 * Node metadata keys read (README "Node metadata"):
 *   wasmxds.tenant        tenant fqn organizations/<org>/tenants/<tenant>
 *   wasmxds.organization  organization name; needed only without a tenant,
 *                         and must agree with the tenant when both are set
 *   wasmxds.mode          SIDECAR (default) or GATEWAY
 *   wasmxds.labels        a struct of string values, matched by listener
 *                         template selectors
 * Pure; safe from any thread.
 */
#ifndef XDS_IDENTITY_H
#define XDS_IDENTITY_H

#include "base/err.h"
#include "server/compose/proxy.h"

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#define IDENTITY_KEY_TENANT "wasmxds.tenant"
#define IDENTITY_KEY_ORGANIZATION "wasmxds.organization"
#define IDENTITY_KEY_MODE "wasmxds.mode"
#define IDENTITY_KEY_LABELS "wasmxds.labels"

/* Istio's node metadata keys (README "Coming from Istio"). */
#define IDENTITY_ISTIO_NAMESPACE "NAMESPACE"
#define IDENTITY_ISTIO_LABELS "LABELS"

/* What an Istio-bootstrapped node says (identity_istio.c). */
struct identity_istio {
  int present;  /* the node has Istio's id shape or metadata */
  int has_mode; /* the id named sidecar or router */
  enum proxy_mode mode;
  char *namespace;                       /* owned; set when present */
  const Google__Protobuf__Value *labels; /* LABELS, borrowed; nullable */
};

/*
 * Reads the Istio side of node: Node.id <type>~<ip>~<pod>.<ns>~<domain>
 * (type sidecar or router) and metadata NAMESPACE, LABELS, WORKLOAD_NAME,
 * CLUSTER_ID, MESH_ID, ISTIO_VERSION. Returns 0 (out->present 0 when the
 * node shows none of it), XDS_EINVAL (err names the node and what is
 * wrong: a non-string value, an unknown node type, a namespace that the id
 * and the metadata disagree on, or that is missing or malformed) or
 * XDS_ENOMEM. out is released with identity_istio_cleanup() in every case.
 */
int identity_istio_read(const Envoy__Config__Core__V3__Node *node,
                        struct identity_istio *out, struct xds_err *err);
void identity_istio_cleanup(struct identity_istio *ist);
/* 1 when the n bytes at s are a Kubernetes namespace (DNS-1123 label). */
int identity_namespace_valid(const char *s, size_t n);

/*
 * Fills out (caller-owned, released with proxy_id_cleanup) from node.
 * Returns 0, XDS_ENOMEM, or XDS_EINVAL with err naming the node id and the
 * offending key (missing id, malformed tenant, no organization, unknown
 * mode, a label that is not a string). out is left empty on error.
 */
int identity_from_node(const Envoy__Config__Core__V3__Node *node,
                       struct proxy_id *out, struct xds_err *err);

/* 1 if a and b are the same identity (every field equal). */
int identity_equal(const struct proxy_id *a, const struct proxy_id *b);

/* Checks that s is a tenant fqn organizations/<org>/tenants/<tenant> with
 * non-empty parts free of '/'. On success stores a new copy of <org> in
 * *org when org is not NULL. Returns 0, XDS_EINVAL or XDS_ENOMEM. */
int identity_parse_tenant(const char *s, char **org);

/*
 * The identity a client certificate proves: its SPIFFE-style URI SAN
 *   spiffe://<trust-domain>/organizations/<org>[/tenants/<tenant>][/...]
 * (anything after the tenant, such as a workload name, is ignored). Fills
 * out->organization and out->tenant (NULL without a tenants segment); the
 * rest of out is zero. Istio's spiffe://<trust-domain>/ns/<ns>/sa/<account>
 * is read too: out->namespace, and out->organization "" (none). Returns 0,
 * XDS_EINVAL (err says why) or XDS_ENOMEM.
 */
int identity_from_spiffe(const char *uri, size_t len, struct proxy_id *out,
                         struct xds_err *err);

#endif
