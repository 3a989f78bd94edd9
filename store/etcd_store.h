/*
 * etcd_store.h: the etcd store's keys -> a catalog, with last-good
 * retention. No I/O: the watcher (store/etcd_watch.h) feeds it what etcd
 * says, and tests feed it directly.
 *
 * Key layout (what wasmxdsctl writes; see the README, "The etcd store"):
 *   <prefix>/WasmExtension/<organization>/<name>
 *   <prefix>/ListenerTemplate/<name>
 *   <prefix>/WasmPlugin/<namespace>/<name>     (Istio's kind)
 * Every key below <prefix>/ holds exactly one YAML or JSON document of
 * either kind (store/decode.h). A key whose document's identity does not
 * match its canonical key is still served, with a warning; two keys
 * defining the same resource are settled as duplicates by the catalog
 * builder: the key whose resource is being served keeps it, and between
 * two new ones byte order of the key decides (the first wins).
 *
 * Problems name the key as their source and the line and column inside
 * the value; each key's problems are sorted by line and column.
 *
 * Retention, per key, like the file store's per file:
 *   - a key whose value is valid serves its resource;
 *   - a key whose value is broken (not YAML, not exactly one document,
 *     empty, invalid, rejected by the server's check hook) keeps serving
 *     the last good resource of that key, with a warning saying so;
 *   - a deleted key removes its resource.
 * A connection error never reaches this module, so it never removes
 * anything: only a put, a delete, or a complete re-list does.
 *
 * A value is decoded once, when a build first needs it; a build after a
 * burst of puts to one key decodes only the last value. Records are shared
 * between builds (model.h refcounts). Not thread-safe: one thread (the
 * watcher's) uses a store.
 */
#ifndef XDS_STORE_ETCD_STORE_H
#define XDS_STORE_ETCD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"

/* Most keys below the prefix: the same bound as the file store's files. */
#define ETCD_STORE_MAX_KEYS 100000
/* Largest value decoded (larger ones are reported and kept as broken). */
#define ETCD_STORE_MAX_VALUE (4u * 1024u * 1024u)
/* Most problems kept per key (the rest counted). */
#define ETCD_STORE_MAX_KEY_PROBLEMS 64

#define ETCD_KIND_EXT_DIR "WasmExtension"
#define ETCD_KIND_TMPL_DIR "ListenerTemplate"
#define ETCD_KIND_PLUGIN_DIR "WasmPlugin"
#define ETCD_KIND_DEPLOY_DIR "WasmDeployment"

struct etcd_store;

/*
 * A new, empty store for keys below prefix + "/" (prefix copied), with
 * hooks (nullable, copied; check_tmpl is called on the thread that calls
 * etcd_store_build()). NULL when out of memory.
 */
struct etcd_store *etcd_store_new(const char *prefix,
                                  const struct store_hooks *hooks);
void etcd_store_free(struct etcd_store *s);

/*
 * Records that key now holds the len bytes of value (copied), written at
 * mod_revision. A key outside the prefix is ignored. Returns 0,
 * XDS_ETOOBIG (more than ETCD_STORE_MAX_KEYS keys; the put is dropped) or
 * XDS_ENOMEM (the store is unchanged).
 */
int etcd_store_put(struct etcd_store *s, const char *key, const char *value,
                   size_t len, int64_t mod_revision);
/* Records that key was deleted. Returns 1 when it was present, else 0. */
int etcd_store_delete(struct etcd_store *s, const char *key);

/*
 * A complete listing replaces the keys: begin, put every listed key, end.
 * end deletes every key not put since begin (their resources go) and
 * keeps, for a key whose value is the same bytes, its decoded result and
 * its last good record, so a re-list after a compaction changes exactly
 * what changed in etcd. Between begin and end, etcd_store_build() must
 * not be called. end returns the number of keys deleted.
 */
void etcd_store_relist_begin(struct etcd_store *s);
size_t etcd_store_relist_end(struct etcd_store *s);

/* Number of keys held. */
size_t etcd_store_count(const struct etcd_store *s);
/* Number of values decoded so far (a test and benchmark counter). */
unsigned long etcd_store_decodes(const struct etcd_store *s);

/*
 * Builds the catalog of the current keys: decodes values not decoded yet,
 * adds every key's problems to pb in key order, serves valid records and,
 * for broken keys, their last good record (a warning each). Returns 0 with
 * *out (one reference; whatever was valid, even when pb got errors), or
 * XDS_ENOMEM with *out NULL and the store still usable.
 */
int etcd_store_build(struct etcd_store *s, struct catalog **out,
                     struct problems *pb);
/* The same, settling duplicates in favour of the resource served
 * (catalog_builder_set_served): a key that newly defines a resource
 * another key serves is the one rejected. served is borrowed, nullable. */
int etcd_store_build_ex(struct etcd_store *s, const struct catalog *served,
                        struct catalog **out, struct problems *pb);

/*
 * The canonical key of a resource, in a new string (caller frees), or NULL
 * on ENOMEM: prefix + "/WasmExtension/<org>/<name>" for an extension fqn
 * "organizations/<org>/extensions/<name>", prefix + "/ListenerTemplate/
 * <name>" for a template name.
 */
char *etcd_store_key_ext(const char *prefix, const char *org, const char *name);
char *etcd_store_key_plugin(const char *prefix, const char *ns,
                            const char *name);
/* prefix + "/WasmDeployment/<namespace>/<name>": the key of a whole
 * WasmDeployment (all its filters). */
char *etcd_store_key_deploy(const char *prefix, const char *ns,
                            const char *name);
/* The canonical key of a WasmExtension, WasmPlugin or WasmDeployment
 * filter record. */
char *etcd_store_key_of_ext(const char *prefix, const struct wasm_ext *e);
char *etcd_store_key_tmpl(const char *prefix, const char *name);

/*
 * Reads an operator's reference to a resource: "WasmExtension/ORG/NAME",
 * "ListenerTemplate/NAME" (kinds case-insensitive; also "ext", "tmpl",
 * "wasmextensions", "listenertemplates"), or an extension fqn
 * "organizations/ORG/extensions/NAME", or WasmPlugin/NAMESPACE/NAME and
 * "extensions.istio.io/wasmplugin/NAMESPACE.NAME", WasmDeployment/NAMESPACE/
 * NAME and "networking.enterprise.mesh.gloo.solo.io/wasmdeployment/
 * NAMESPACE.NAME" (optionally with a filter's "/INDEX", naming its
 * deployment's key). Returns 0 with *key (new
 * string, the canonical key under prefix), or XDS_EINVAL (err says why) or
 * XDS_ENOMEM.
 */
int etcd_store_key_of_ref(const char *prefix, const char *ref, char **key,
                          struct xds_err *err);

/* The key folder of a kind as an operator names it (the kinds of
 * etcd_store_key_of_ref(), case-insensitive): ETCD_KIND_EXT_DIR,
 * ETCD_KIND_TMPL_DIR, ETCD_KIND_PLUGIN_DIR, ETCD_KIND_DEPLOY_DIR, or NULL
 * for an unknown kind. The
 * result is a static string. */
const char *etcd_store_kind_dir(const char *kind);

#endif
