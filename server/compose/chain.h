/*
 * chain.h: composition. For one proxy and one listener template, which Wasm
 * extensions run and in which order (design.md §4). Pure: no I/O, no
 * protobuf, safe from any thread on an immutable catalog.
 */
#ifndef XDS_CHAIN_H
#define XDS_CHAIN_H

#include <stddef.h>

#include "server/compose/proxy.h"
#include "store/catalog.h"
#include "store/model.h"

/* Why an extension is or is not in a chain. */
enum chain_verdict {
  CHAIN_IN = 0,              /* runs on this listener */
  CHAIN_OTHER_ORG = 1,       /* belongs to another organization */
  CHAIN_NOT_ALLOWED = 2,     /* allowedIn excludes the proxy's tenant */
  CHAIN_WRONG_DIRECTION = 3, /* match.mode excludes the listener direction */
  CHAIN_GATEWAY_MODE = 4     /* SERVER-only extension on a gateway */
};

/* Short English text for a verdict, for logs and render output. */
const char *chain_verdict_str(enum chain_verdict v);

/* The ordered Wasm extensions of one listener. exts is owned by the chain;
 * the extensions it points to are borrowed from the catalog. */
struct chain {
  const struct wasm_ext **exts;
  size_t *index; /* index[k]: catalog position of exts[k] */
  size_t n;
};

/* 1 if the template's selector (mode, labels) selects the proxy. */
int chain_tmpl_applies(const struct listener_tmpl *t, const struct proxy_id *p);

/* 1 if the proxy may see the extension at all: same organization and
 * allowedIn empty or naming the proxy's tenant. This is the isolation rule
 * for ECDS requests too. */
int chain_ext_visible(const struct wasm_ext *e, const struct proxy_id *p);

/* The verdict for one extension on one listener of one proxy. */
enum chain_verdict chain_judge(const struct wasm_ext *e,
                               const struct listener_tmpl *t,
                               const struct proxy_id *p);

/* Total order of extensions inside a chain: phase (AUTHN, AUTHZ, STATS,
 * UNSPECIFIED), then priority descending, then fqn ascending. */
int chain_order(const struct wasm_ext *a, const struct wasm_ext *b);

/*
 * Computes the chain of template t for proxy p from catalog cat. out is
 * caller-owned storage; on success it holds a new array to release with
 * chain_cleanup(). Returns 0 or XDS_ENOMEM (out is then empty).
 */
int chain_compute(const struct catalog *cat, const struct proxy_id *p,
                  const struct listener_tmpl *t, struct chain *out);
void chain_cleanup(struct chain *c);

/*
 * Where the Wasm filters go among the template's native filters. Calls
 * emit_native(i) for native filter i and emit_wasm(k) for chain entry k, in
 * the final HTTP filter order: a phase's Wasm filters go just before the
 * first native filter anchored at that phase or a later one; Wasm filters
 * of phases with no such anchor, and UNSPECIFIED ones, go just before the
 * router (the last native filter). Stops at the first callback that returns
 * non-zero and returns that value.
 */
int chain_interleave(const struct listener_tmpl *t, const struct chain *c,
                     int (*emit_native)(void *ctx, size_t i),
                     int (*emit_wasm)(void *ctx, size_t k), void *ctx);

#endif
