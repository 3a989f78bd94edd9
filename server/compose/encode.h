/*
 * encode.h: from validated records to Envoy resources, as protobuf bytes.
 *
 * Pure and deterministic: the same inputs give the same bytes on any
 * replica, so versions (hashes of these bytes) agree everywhere. Safe from
 * any thread.
 */
#ifndef XDS_ENCODE_H
#define XDS_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "server/compose/chain.h"
#include "server/compose/version.h"
#include "store/model.h"

/* Default cluster, in the Envoy bootstrap, through which Envoy fetches
 * remote Wasm code. */
#define ENCODE_DEFAULT_MODULE_CLUSTER "wasmxds_modules"
/* Default runtime when an extension names none. */
#define ENCODE_DEFAULT_RUNTIME "envoy.wasm.runtime.v8"

/* How an extension's code reaches Envoy, decided before encoding (by the
 * module resolver when module fetching runs). */
enum encode_module_kind {
  ENCODE_MOD_LOCAL = 0,      /* file://: code.local.filename, or for the null
                                runtime local.inline_string (its name) */
  ENCODE_MOD_REMOTE = 1,     /* code.remote{http_uri{uri}, sha256} */
  ENCODE_MOD_UNAVAILABLE = 2 /* not servable yet: fail-strategy substitute */
};

struct encode_module {
  enum encode_module_kind kind;
  const char *uri;     /* REMOTE: where Envoy fetches the module */
  const char *sha256;  /* REMOTE: 64 lowercase hex digits */
  const char *root_id; /* a default root_id (from the image), or NULL */
  const char *reason;  /* UNAVAILABLE: why, for logs, status and render */
};

/* Decides, for extension e, how its code is served. Fills *out with
 * strings that stay valid until the next call on the same thread. Returns
 * 0 or XDS_ENOMEM. */
typedef int (*encode_module_fn)(void *ctx, const struct wasm_ext *e,
                                struct encode_module *out);

/* stat_prefix of a NETWORK plugin's RBAC substitute (Envoy requires one):
 * its stats read <prefix>denied etc. */
#define ENCODE_SUBSTITUTE_STAT_PREFIX "wasmxds_substitute."

struct encode_opts {
  const char *module_cluster;       /* HttpUri.cluster for remote code */
  uint32_t module_fetch_timeout_ms; /* HttpUri.timeout */
  uint32_t module_fetch_retries;    /* RemoteDataSource.retry_policy */
  uint32_t ecds_fetch_timeout_ms;   /* config_discovery initial_fetch_timeout;
                                       0: the listener waits for its ECDS
                                       configs however long it takes */
  int inline_wasm;                  /* 1: Wasm configs inline in the listener
                                       instead of ECDS references */
  uint32_t ecds_slots;              /* --ecds-slots: 0 off; N: each listener
                                       gets ECDS filter slots per phase,
                                       at least N (README "Zero-drain
                                       changes (slots)"); ignored with
                                       inline_wasm */
  const char *istio_root_namespace; /* --istio-root-namespace; NULL:
                                       PROXY_ISTIO_ROOT_DEFAULT. Must outlive
                                       every snapshot and proxy_id built
                                       with these options */
  int attachment_required;          /* --attachment-required: an extension
                                       no template attaches reaches no
                                       listener (README "Attachments") */
  encode_module_fn module_of;       /* NULL: no module fetching (see
                                       encode_module_default) */
  void *module_ctx;
};

/* Largest --ecds-slots, and most slots one phase of a listener may have
 * (a phase with more extensions is refused as too big). */
#define ENCODE_SLOTS_MAX 64
#define ENCODE_SLOTS_PHASE_MAX 1024
/* Every slot's ECDS name starts with this (never an fqn: fqns start with
 * "organizations/" or a namespace). */
#define ENCODE_SLOT_PREFIX "wasmxds.slot/"

/* Fills o with the documented defaults. */
void encode_opts_default(struct encode_opts *o);

/*
 * How extension e is served when modules are not fetched by wasmxds:
 * file:// modules are local, http(s):// ones with a sha256 are fetched by
 * Envoy from their url, anything else (oci://, or no sha256) is
 * unavailable. reason and the strings point into e or static text.
 */
void encode_module_default(const struct wasm_ext *e, struct encode_module *out);

/*
 * Appends to out the serialized envoy.config.core.v3.TypedExtensionConfig
 * of extension e delivered as mod: the Wasm filter, or, when mod is
 * UNAVAILABLE, a deny-all (FAIL_CLOSE) or allow-all (FAIL_OPEN) RBAC
 * filter. Returns 0, XDS_ENOMEM or XDS_ETOOBIG.
 */
int encode_extension_config(const struct wasm_ext *e,
                            const struct encode_module *mod,
                            const struct encode_opts *o, struct xds_buf *out);

/*
 * Appends to out the serialized envoy.config.listener.v3.Listener of
 * template t with Wasm chain c. Returns 0, XDS_ENOMEM, XDS_ETOOBIG, or
 * XDS_EINVAL when a native filter's typedConfig cannot be converted (err
 * then names the template, the filter and the field).
 */
int encode_listener(const struct listener_tmpl *t, const struct chain *c,
                    const struct encode_opts *o, struct xds_buf *out,
                    struct xds_err *err);

/* Pre-encoded bytes (borrowed). */
struct encode_entry {
  const uint8_t *data;
  size_t len;
};

/*
 * Appends extension e's entry in an HCM's http_filters (the field's tag,
 * length and HttpFilter: an ECDS reference, or with --inline-wasm the
 * config itself delivered as mod). A snapshot encodes this once per
 * extension and splices it into every listener. Returns 0, XDS_ENOMEM or
 * XDS_ETOOBIG.
 */
int encode_wasm_filter_entry(const struct wasm_ext *e,
                             const struct encode_module *mod,
                             const struct encode_opts *o, struct xds_buf *out);

/* encode_listener with, for chain entry k, its delivery mods[k] (NULL:
 * encode_module_default) or its pre-encoded http_filters entry entries[k]
 * (from encode_wasm_filter_entry; it wins when given). Either array may be
 * NULL. */
int encode_listener_mods(const struct listener_tmpl *t, const struct chain *c,
                         const struct encode_module *const *mods,
                         const struct encode_entry *entries,
                         const struct encode_opts *o, struct xds_buf *out,
                         struct xds_err *err);

/*
 * Converts every native filter's typedConfig of template t to protobuf, as
 * encode_listener would, and discards the result: the load-time check that
 * keeps a template with a bad typedConfig out of the catalog. Returns 0,
 * XDS_EINVAL (err: "file:line:column: path: reason") or XDS_ENOMEM.
 */
int encode_check_template(const struct listener_tmpl *t, struct xds_err *err);

/*
 * Slots. The slots a phase holding n extensions gets with headroom h (h >
 * 0): the smallest h * 2^k strictly greater than n, so a phase always keeps
 * one empty slot (the switch-over needs it) and grows by doubling. A pure
 * function of n: the same store gives the same listener everywhere.
 * Returns 0 when that would exceed ENCODE_SLOTS_PHASE_MAX.
 */
size_t encode_slot_capacity(uint32_t h, size_t n);

/* The four phases in chain order (AUTHN, AUTHZ, STATS, UNSPECIFIED) and
 * their names in slot names. */
extern const enum wasm_phase encode_slot_phases[4];
const char *encode_slot_phase_name(enum wasm_phase p);

/* The layout tag of a listener's slots: "L" and ENCODE_SLOT_LAYOUT_LEN - 1
 * hex digits of a hash of its slot counts caps[0..n) (per filter chain,
 * per phase, in order). Every slot name of the listener holds it, so a
 * listener whose layout changes (a phase grows or shrinks) names only new
 * slots, and the slots of the listener it replaces, which Envoy keeps
 * serving until the new one is warm, are never written again. */
#define ENCODE_SLOT_LAYOUT_LEN 9
void encode_slot_layout(const size_t *caps, size_t n,
                        char out[ENCODE_SLOT_LAYOUT_LEN + 1]);

/* Appends to out the slot name
 * "wasmxds.slot/<listener>/<layout>/<PHASE>/<pos>" (no terminating NUL).
 * Returns 0, XDS_ENOMEM or XDS_ETOOBIG. */
int encode_slot_name(const char *listener, const char *layout,
                     enum wasm_phase p, size_t pos, struct xds_buf *out);

/*
 * A slot resource's version says what it holds: the first 9 hex digits of
 * the content's version (version_of), 's', and the 6 hex digits of
 * encode_slot_ident(fqn) (000000 for an empty slot). A proxy reports the
 * versions it holds when it reconnects (delta initial_resource_versions),
 * and so which extension runs in each slot (README "Switch-over").
 */
uint32_t encode_slot_ident(const char *fqn); /* 24 bits; 0 iff fqn NULL */
void encode_slot_version(const void *bytes, size_t len, const char *fqn,
                         char out[VERSION_LEN + 1]);
/* *ident from a slot version; XDS_EINVAL when version is not one. */
int encode_slot_version_ident(const char *version, uint32_t *ident);

/* Appends to out the slot name of a TCP listener's network filter chain,
 * "wasmxds.slot/<listener>/<layout>/<chain>/<PHASE>/<pos>" where chain is
 * c<ci> for spec.tcp.filterChains[ci] and "default" for the default chain
 * (ci == n_tcp_chains); no terminating NUL. Returns 0, XDS_ENOMEM or
 * XDS_ETOOBIG. */
int encode_tcp_slot_name(const char *listener, const char *layout, size_t ci,
                         size_t n_tcp_chains, enum wasm_phase p, size_t pos,
                         struct xds_buf *out);

/* Appends the HCM http_filters entry of slot name: an ECDS reference like
 * an extension's, with type_urls {Wasm, RBAC} and a deny-all default_config
 * (what sits in a slot is not known to the listener, so a timeout fails
 * closed). Returns 0, XDS_ENOMEM or XDS_ETOOBIG. */
int encode_slot_entry(const char *name, const struct encode_opts *o,
                      struct xds_buf *out);

/*
 * Appends the TypedExtensionConfig served under slot name: with ext (the
 * serialized TypedExtensionConfig of the extension placed there, as
 * encode_extension_config wrote it) the same config renamed to the slot;
 * with ext NULL the empty slot's no-op, an RBAC filter without rules: the
 * HTTP one (envoy.extensions.filters.http.rbac.v3.RBAC), or with network
 * set (a slot of a TCP listener's network filter chain) the network one
 * (envoy.extensions.filters.network.rbac.v3.RBAC, stat_prefix
 * ENCODE_SLOT_STAT_PREFIX). Returns 0, XDS_ENOMEM, XDS_ETOOBIG, or
 * XDS_EINVAL when ext does not start with its name field.
 */
int encode_slot_config(const char *name, const uint8_t *ext, size_t ext_len,
                       int network, struct xds_buf *out);

/* The stat_prefix of an empty network slot's RBAC filter (required by the
 * network RBAC filter; it counts nothing without rules). */
#define ENCODE_SLOT_STAT_PREFIX "wasmxds_slot."

/* 1 when extension k of TCP chain c runs on filter chain ci of its
 * template (spec.tcp.filterChains[ci]; ci == n_tcp_chains: the default
 * chain): a WasmPlugin's match[].ports may keep it off some. */
int encode_tcp_chain_has(const struct chain *c, size_t k, size_t ci);

/*
 * Appends TCP template t's Listener (as encode_listener would) whose filter
 * chain i (spec.tcp.filterChains[i], then the default chain at
 * t->n_tcp_chains) holds, before its tcp_proxy, the n_slots[i] network
 * filters named slots[i][0..]: ECDS references admitting the network Wasm
 * and RBAC filters, each with a deny-all network RBAC default_config.
 * slots and the names must outlive the call only. Returns 0, XDS_ENOMEM,
 * XDS_ETOOBIG, or XDS_EINVAL when t is not a TCP template.
 */
int encode_tcp_listener_slots(const struct listener_tmpl *t,
                              const char *const *const *slots,
                              const size_t *n_slots,
                              const struct encode_opts *o, struct xds_buf *out);

struct problems;

/*
 * The store's template check (struct store_hooks.check_tmpl): runs
 * encode_check_template and records a failure in pb with the template's
 * location, so the store rejects the template like any invalid document.
 * ctx is unused. Thread-safe (the store may call it from several loader
 * threads). Returns 0, XDS_EINVAL or XDS_ENOMEM.
 */
int encode_store_check(void *ctx, const struct listener_tmpl *t,
                       struct problems *pb);

#endif
