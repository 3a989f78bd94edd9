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
 *
 * The grammar of identity strings (README "Who a proxy is"); anything else
 * is refused, so no identity holds a control character, a NUL or a
 * separator another part could forge:
 *   organization, tenant  a name: 1 to IDENTITY_NAME_MAX letters, digits,
 *                         '-', '_' or '.', starting with a letter or digit
 *                         (the store's grammar for these names)
 *   namespace (Istio)     a DNS-1123 label (identity_namespace_valid)
 *   mode                  SIDECAR or GATEWAY, any case
 *   node id               1 to IDENTITY_ID_MAX printable ASCII characters
 *                         other than space (0x21..0x7e)
 *   cluster               0 to IDENTITY_ID_MAX of the same
 *   label key             1 to IDENTITY_LABEL_MAX of the same
 *   label value           0 to IDENTITY_LABEL_MAX of the same
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

#define IDENTITY_NAME_MAX 253
#define IDENTITY_ID_MAX 512
#define IDENTITY_LABEL_MAX 253

/* 1 if the len bytes at s are an organization or tenant name. */
int identity_name_ok(const char *s, size_t len);

/* 1 if the len bytes at s are min to max printable ASCII characters other
 * than space (node id, cluster, label keys and values). */
int identity_token_ok(const char *s, size_t len, size_t min, size_t max);

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
/*
 * Looks key up in the node metadata st (nullable). Returns 1 and *out (a
 * borrowed value) when key appears once, 0 with *out NULL when it is
 * absent, and -1 with *out NULL when it appears more than once: a map on
 * the wire may repeat a key, and which one would count is ambiguous, so
 * callers refuse such a node.
 */
int identity_meta_find(const Google__Protobuf__Struct *st, const char *key,
                       const Google__Protobuf__Value **out);
/* 1 when the n bytes at s are a Kubernetes namespace (DNS-1123 label). */
int identity_namespace_valid(const char *s, size_t n);

/*
 * Fills out (caller-owned, released with proxy_id_cleanup) from node.
 * Returns 0, XDS_ENOMEM, or XDS_EINVAL with err naming the node id and the
 * offending key (missing id, a string outside the grammar above, malformed
 * tenant, no organization, unknown mode, a label that is not a string, a
 * key given twice). err quotes what the peer sent as it is: escape err.msg
 * (xds_log_escape) before logging it. out is left empty on error.
 */
int identity_from_node(const Envoy__Config__Core__V3__Node *node,
                       struct proxy_id *out, struct xds_err *err);

/* As identity_from_node(); with verified (nullable: the identity a client
 * certificate proves), a node whose metadata names no organization takes
 * the certificate's. Whether the metadata agrees with the certificate is
 * the caller's check (server/ads). */
int identity_from_node_verified(const Envoy__Config__Core__V3__Node *node,
                                const struct proxy_id *verified,
                                struct proxy_id *out, struct xds_err *err);

/* 1 if a and b are the same identity (every field equal). */
int identity_equal(const struct proxy_id *a, const struct proxy_id *b);

/* Checks that s is a tenant fqn organizations/<org>/tenants/<tenant> whose
 * parts are names (identity_name_ok). On success stores a new copy of <org> in
 * *org when org is not NULL. Returns 0, XDS_EINVAL or XDS_ENOMEM. */
int identity_parse_tenant(const char *s, char **org);

/*
 * The identity a client certificate proves: its SPIFFE-style URI SAN
 *   spiffe://<trust-domain>/organizations/<org>[/tenants/<tenant>][/...]
 * (anything after the tenant, such as a workload name, is ignored; <org>
 * and <tenant> must be names, identity_name_ok). Fills
 * out->organization and out->tenant (NULL without a tenants segment); the
 * rest of out is zero. Istio's spiffe://<trust-domain>/ns/<ns>/sa/<account>
 * is read too: out->namespace, and out->organization "" (none). Returns 0,
 * XDS_EINVAL (err says why) or XDS_ENOMEM.
 */
int identity_from_spiffe(const char *uri, size_t len, struct proxy_id *out,
                         struct xds_err *err);

#endif
