/*
 * chain.h: composition. For one proxy and one listener template, which Wasm
 * extensions run and in which order (design.md §4). Pure: no I/O, no
 * protobuf, safe from any thread on an immutable catalog.
 */
#ifndef XDS_CHAIN_H
#define XDS_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "server/compose/proxy.h"
#include "store/catalog.h"
#include "store/model.h"

/* Why an extension is or is not in a chain. */
enum chain_verdict {
  CHAIN_IN = 0,              /* runs on this listener */
  CHAIN_OTHER_ORG = 1,       /* belongs to another organization */
  CHAIN_NOT_ALLOWED = 2,     /* allowedIn excludes the proxy's tenant */
  CHAIN_WRONG_DIRECTION = 3, /* match.mode excludes the listener direction */
  CHAIN_GATEWAY_MODE = 4,    /* SERVER-only extension on a gateway */
  CHAIN_OTHER_NAMESPACE = 5, /* WasmPlugin of another namespace (or the
                                proxy names no namespace) */
  CHAIN_NOT_SELECTED = 6,    /* WasmPlugin whose selector or targetRefs do
                                not select the proxy */
  CHAIN_WRONG_PORT = 7,      /* WasmPlugin match[] selects other ports */
  CHAIN_WRONG_TYPE = 8,      /* an HTTP filter on a TCP listener or a
                                NETWORK plugin on an HTTP one */
  CHAIN_WRONG_CONTEXT = 9,   /* WasmDeployment filterContext excludes this
                                listener or proxy mode */
  CHAIN_NOT_ATTACHED = 10,   /* attached to other templates only */
  CHAIN_UNATTACHED = 11,     /* attached nowhere, and the server runs with
                                --attachment-required */
  CHAIN_OVERRIDDEN = 12      /* this template attaches it with an override:
                                the "<fqn>@<template>" record runs here */
};

/* chain_compute_opts() flags. */
#define CHAIN_ATTACHMENT_REQUIRED                                              \
  1u /* an extension no template attaches                                      \
        reaches no listener */

/* The attachment rule (README "Attachments") for catalog extension i on
 * template t: a record derived for a template's attachment runs only on
 * that template; a WasmExtension some template attaches runs only on the
 * templates that attach it without override; one attached nowhere runs
 * everywhere chain_judge() allows, or nowhere under
 * CHAIN_ATTACHMENT_REQUIRED. Other kinds: always CHAIN_IN. Pure. */
enum chain_verdict chain_attach_judge(const struct catalog *cat, size_t i,
                                      const struct listener_tmpl *t,
                                      unsigned flags);

/* Short English text for a verdict, for logs and render output. */
const char *chain_verdict_str(enum chain_verdict v);

/* The ordered Wasm extensions of one listener. exts is owned by the chain;
 * the extensions it points to are borrowed from the catalog. */
struct chain {
  const struct wasm_ext **exts;
  size_t *index; /* index[k]: catalog position of exts[k] */
  size_t n;
  /* TCP templates only (NULL otherwise): bit i of on[k] set when exts[k]
   * runs on filter chain i (spec.tcp.filterChains[i]; bit n_tcp_chains is
   * the default chain): a WasmPlugin's match[].ports select the chains
   * whose destination port (or, without one, the template's port) they
   * name. */
  uint64_t *on;
};

/* 1 if the template's selector (mode, labels) selects the proxy. */
int chain_tmpl_applies(const struct listener_tmpl *t, const struct proxy_id *p);

/* 1 if the proxy may see the extension at all: for a WasmExtension, same
 * organization and allowedIn empty or naming the proxy's tenant; for a
 * WasmPlugin, the proxy's namespace or the root namespace. This is the
 * isolation rule for ECDS requests too. */
int chain_ext_visible(const struct wasm_ext *e, const struct proxy_id *p);

/* The verdict for one extension on one listener of one proxy. On a
 * sidecar, match.mode CLIENT keeps OUTBOUND listeners, SERVER keeps
 * INBOUND ones, CLIENT_AND_SERVER both. On a gateway every listener is
 * client-side: CLIENT and CLIENT_AND_SERVER apply to every listener,
 * whatever its direction, and SERVER to none (CHAIN_GATEWAY_MODE). */
enum chain_verdict chain_judge(const struct wasm_ext *e,
                               const struct listener_tmpl *t,
                               const struct proxy_id *p);

/* 1 if a WasmPlugin's selector.matchLabels or targetRefs select the proxy
 * (neither set: every proxy of its scope). Always 1 for a WasmExtension.
 * targetRefs: a Gateway by name matches the proxy label
 * CHAIN_LABEL_GATEWAY_NAME, a Service the label CHAIN_LABEL_SERVICE. */
int chain_ext_selects(const struct wasm_ext *e, const struct proxy_id *p);

#define CHAIN_LABEL_GATEWAY_NAME "gateway.networking.k8s.io/gateway-name"
#define CHAIN_LABEL_SERVICE "service.istio.io/canonical-name"
/* A WasmDeployment workloadSelector's clusters match this proxy label
 * (Istio puts it on every workload), or Node.cluster when it is absent. */
#define CHAIN_LABEL_CLUSTER "topology.istio.io/cluster"

/* chain_judge() as one English sentence for render: the verdict's text,
 * made specific where the rule needs saying (which direction a match.mode
 * excludes; a CLIENT extension included on a gateway's inbound listener;
 * a SERVER-only extension left off a gateway). Static text. */
const char *chain_explain(const struct wasm_ext *e,
                          const struct listener_tmpl *t,
                          const struct proxy_id *p);

/* Total order of extensions inside a chain: phase (AUTHN, AUTHZ, STATS,
 * UNSPECIFIED), then priority descending; at equal phase and priority
 * WasmPlugins before WasmExtensions; WasmPlugins of the root namespace
 * before those of the proxy's namespace (p may be NULL: no root known),
 * then by name, then by namespace (Istio's tie rule without creation
 * times); WasmExtensions by fqn. WasmDeployment filters (phase
 * UNSPECIFIED) come after every other extension of their phase: weight
 * descending, then (equal weights) by namespace, then name, then their
 * position in filters[]. */
int chain_order_for(const struct wasm_ext *a, const struct wasm_ext *b,
                    const struct proxy_id *p);
/* chain_order_for(a, b, NULL). */
int chain_order(const struct wasm_ext *a, const struct wasm_ext *b);

/*
 * Appends to b what, beyond organization, tenant, mode and templates,
 * decides the proxy's chains: its namespace and, for each WasmPlugin in
 * its scope with a selector or targetRefs, whether it selects the proxy.
 * Two proxies with the same text get the same chains. Returns 0,
 * XDS_ENOMEM or XDS_ETOOBIG (b's limit).
 */
struct xds_buf;
int chain_scope_key(const struct catalog *cat, const struct proxy_id *p,
                    struct xds_buf *b);

/*
 * Computes the chain of template t for proxy p from catalog cat. out is
 * caller-owned storage; on success it holds a new array to release with
 * chain_cleanup(). Returns 0 or XDS_ENOMEM (out is then empty).
 */
int chain_compute(const struct catalog *cat, const struct proxy_id *p,
                  const struct listener_tmpl *t, struct chain *out);
/* chain_compute() with flags (CHAIN_ATTACHMENT_REQUIRED); an extension
 * is in the chain when chain_judge() and chain_attach_judge() both say
 * CHAIN_IN. chain_compute() is flags 0. */
int chain_compute_opts(const struct catalog *cat, const struct proxy_id *p,
                       const struct listener_tmpl *t, unsigned flags,
                       struct chain *out);
void chain_cleanup(struct chain *c);

/*
 * Where the Wasm filters go among the template's native filters. Calls
 * emit_native(i) for native filter i and emit_wasm(k) for chain entry k, in
 * the final HTTP filter order: a phase's Wasm filters go just before the
 * first native filter anchored at that phase or a later one; Wasm filters
 * of phases with no such anchor, and UNSPECIFIED ones, go just before the
 * router (the last native filter). A WasmDeployment filter whose
 * insertBeforeFilter names a native filter of the template other than the
 * router goes just before the first filter of that name (after the
 * anchored Wasm filters placed there), in chain order; one naming the
 * router or a filter the template does not have goes before the router.
 * Entries are therefore not always emitted in increasing k. Stops at the
 * first callback that returns non-zero and returns that value.
 */
int chain_interleave(const struct listener_tmpl *t, const struct chain *c,
                     int (*emit_native)(void *ctx, size_t i),
                     int (*emit_wasm)(void *ctx, size_t k), void *ctx);

#endif
