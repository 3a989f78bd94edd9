/*
 * decode.h: one YAML document -> one validated record of store/model.h.
 *
 * Knows every kind an operator may write:
 *   extension.tsb.tetrate.io/v2 WasmExtension -> struct wasm_ext
 *   wasmxds.io/v1 ListenerTemplate            -> struct listener_tmpl
 *   extensions.istio.io/v1alpha1 WasmPlugin   -> struct wasm_ext (kind
 *                                                WASM_KIND_PLUGIN)
 *   networking.enterprise.mesh.gloo.solo.io/v1beta1 WasmDeployment
 *                                             -> one struct wasm_ext per
 *                                                filter (kind
 *                                                WASM_KIND_DEPLOYMENT)
 * and checks every field (types, enums, ranges, patterns, required fields,
 * unknown fields). Every error found in the document is added to the
 * problem list with the node's file:line:column, the field path and the
 * reason; a document with any error yields no record. Deprecations and
 * other advice are added as warnings and do not reject the document.
 *
 * Pure: no I/O, no globals; safe on any thread with its own arguments.
 * See the README ("Resource reference") for the rules, field by field.
 */
#ifndef XDS_STORE_DECODE_H
#define XDS_STORE_DECODE_H

#include <stddef.h>

#include "base/err.h"
#include "store/model.h"
#include "store/problems.h"

struct ynode;

/* Longest metadata name, organization or tenant (a DNS name's limit). */
#define DECODE_NAME_MAX 253
/* Largest spec.config once rendered as JSON: bounds what each proxy is
 * sent per extension. */
#define DECODE_MAX_CONFIG_JSON (1024u * 1024u)
/* Most items of the lists of one document: they bound the quadratic
 * duplicate checks and what one resource can cost. */
#define DECODE_MAX_ALLOWED_IN 1024
#define DECODE_MAX_ENV 256
#define DECODE_MAX_LABELS 64
#define DECODE_MAX_FILTERS 64
/* WasmPlugin: targetRefs (Istio's own limit), match[] items, ports of one
 * match[] item, and the items of one kind: List document. */
#define DECODE_MAX_TARGET_REFS 16
#define DECODE_MAX_MATCHES 64
#define DECODE_MAX_PORTS 256
#define DECODE_MAX_LIST_ITEMS 100000
/* Filter chains of one TCP template (the default one comes on top: 64 in
 * all, which lets composition keep a 64-bit set of chains per plugin). */
#define DECODE_MAX_TCP_CHAINS 63
/* SNI names of one TCP filter chain. */
#define DECODE_MAX_SERVER_NAMES 64

#define DECODE_WASMEXT_API "extension.tsb.tetrate.io/v2"
#define DECODE_WASMEXT_KIND "WasmExtension"
#define DECODE_TMPL_API "wasmxds.io/v1"
#define DECODE_TMPL_KIND "ListenerTemplate"
#define DECODE_WASMPLUGIN_API "extensions.istio.io/v1alpha1"
#define DECODE_WASMPLUGIN_KIND "WasmPlugin"
#define DECODE_WASMDEPLOY_API "networking.enterprise.mesh.gloo.solo.io/v1beta1"
#define DECODE_WASMDEPLOY_KIND "WasmDeployment"
#define DECODE_ROUTER_MSG "envoy.extensions.filters.http.router.v3.Router"
#define DECODE_TYPE_URL_PREFIX "type.googleapis.com/"

enum decode_kind {
  DECODE_NONE = 0, /* not a mapping, or an unknown apiVersion/kind */
  DECODE_WASM_EXT = 1,
  DECODE_LISTENER_TMPL = 2,
  DECODE_WASM_PLUGIN = 3,    /* an Istio WasmPlugin: a wasm_ext in out->ext */
  DECODE_WASM_DEPLOYMENT = 4 /* a Gloo Mesh WasmDeployment: one wasm_ext
                                per filter in out->exts (out->ext NULL) */
};

/* What one document turned out to be. The caller owns the struct
 * (zero-initialised or from a previous decode_result_cleanup()). */
struct decode_result {
  enum decode_kind kind;
  /* The resource's identity (fqn for extensions, name for templates) when
   * it could be read, valid or not, else NULL: lets a reload keep the last
   * good version of exactly this resource when its document breaks. */
  char *id;
  struct wasm_ext *ext;       /* set only when 0 is returned */
  struct listener_tmpl *tmpl; /* set only when 0 is returned */
  /* DECODE_WASM_DEPLOYMENT, set only when 0 is returned: its filters in
   * spec.filters order (the caller takes them by setting the pointers to
   * NULL; id is then the deployment's id). */
  struct wasm_ext **exts;
  size_t n_exts;
};

/*
 * Decodes and validates doc (borrowed; its nodes' locations are used for
 * problems, and a template's typedConfig mappings are copied).
 *
 * Returns 0 with out->ext or out->tmpl set (the caller owns it; warnings
 * may have been added to pb); XDS_EINVAL when the document has errors (all
 * of them added to pb, no record, out->kind and out->id filled as far as
 * known); XDS_ENOMEM (nothing usable in out). The caller always calls
 * decode_result_cleanup(out) afterwards.
 */
int decode_document(const struct ynode *doc, struct problems *pb,
                    struct decode_result *out);

/*
 * Whether doc is a Kubernetes list, as `kubectl get ... -o yaml` writes
 * one: apiVersion v1 kind List, or a kind's own list (kind WasmPluginList
 * of extensions.istio.io/v1alpha1), with its resources under items (its
 * metadata is ignored). Returns 0 when doc is not a list; 1 with *items
 * the sequence of items (borrowed from doc; each is a document for
 * decode_document()); XDS_EINVAL when it is a list of the wrong shape
 * (reported to pb, *items NULL); XDS_ENOMEM.
 */
int decode_list(const struct ynode *doc, struct problems *pb,
                const struct ynode **items);

/* Frees whatever out still owns (a record not taken by setting the pointer
 * to NULL, every exts[] not taken, and id) and zeroes it. */
void decode_result_cleanup(struct decode_result *out);

/*
 * Renders any node as compact JSON in document order: keys as strings,
 * plain scalars typed by the YAML 1.2 core schema (null, true/false,
 * integers in decimal, floats), every other scalar a string. Returns 0 with
 * *json (caller frees); XDS_EINVAL when a value has no JSON form (.inf,
 * .nan, an unknown tag) or XDS_ETOOBIG over max bytes, with err naming the
 * node's location; XDS_ENOMEM.
 */
int decode_json(const struct ynode *n, size_t max, char **json,
                struct xds_err *err);

#endif
