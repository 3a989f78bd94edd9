/*
 * catalog.h: the validated set of resources, immutable and shared.
 *
 * A catalog holds WasmExtensions sorted by fqn and listener templates
 * sorted by name, with lookup by binary search. Once built it never
 * changes, so any thread may read it while it holds a reference; the
 * reference count is atomic. Records keep their provenance in loc (file or
 * etcd key, line, column), which a reload uses to keep the last good
 * version of a resource whose document broke.
 *
 * A catalog is built by a builder, which owns what it is given and rejects
 * what may not be served together:
 *   - a second resource with the same fqn (or template name): the first
 *     added is kept, the second is rejected, and the error names both
 *     locations. Loaders add in a deterministic order (the file store: by
 *     sorted path, then document order), so "first" is stable;
 *   - a template whose port another template already uses on a proxy both
 *     could apply to (same port, overlapping selectors: a conservative
 *     check that ignores the bind address): the later one is rejected.
 * Builders are used by one thread.
 */
#ifndef XDS_STORE_CATALOG_H
#define XDS_STORE_CATALOG_H

#include <stddef.h>

#include "store/model.h"
#include "store/problems.h"

/* Most resources of each kind in one catalog: bounds one store's memory. */
#define CATALOG_MAX_EXTS 100000
#define CATALOG_MAX_TMPLS 10000

struct catalog;
struct catalog_builder;

/* A new, empty builder, or NULL when out of memory. */
struct catalog_builder *catalog_builder_new(void);
/* Frees the builder and every record it still owns. NULL is a no-op. */
void catalog_builder_free(struct catalog_builder *b);

/*
 * Duplicates are settled in favour of the resource being served: with
 * served set (borrowed, nullable; it must outlive the builder's use), a
 * record whose fqn or name served has from the same source (file or etcd
 * key) wins over another definition whatever the order they are added in,
 * and the other one is rejected with an error naming both locations.
 * Between two definitions neither of which is served, the first added
 * wins (callers add in path or key order).
 */
void catalog_builder_set_served(struct catalog_builder *b,
                                const struct catalog *served);

/*
 * Adds e, taking ownership in every case. Returns 0; XDS_ECONFLICT when
 * its fqn is already present (the one kept by the rule above stays, the
 * other is freed, and an error naming both locations is added to pb);
 * XDS_ETOOBIG over CATALOG_MAX_EXTS (e freed, error added); XDS_ENOMEM (e
 * freed).
 */
int catalog_builder_add_ext(struct catalog_builder *b, struct wasm_ext *e,
                            struct problems *pb);
/* Same for templates, by name. */
int catalog_builder_add_tmpl(struct catalog_builder *b, struct listener_tmpl *t,
                             struct problems *pb);
/* Whether a resource with this fqn / name was added. */
int catalog_builder_has_ext(const struct catalog_builder *b, const char *fqn);
int catalog_builder_has_tmpl(const struct catalog_builder *b, const char *name);

/*
 * Checks template ports, resolves attachments (README "Attachments": a
 * template's spec.extensions fqn that names no WasmExtension is an error
 * at the attachment, and the template is kept without it; each attachment
 * with a config or match override adds a record "<fqn>@<template>" copied
 * from the extension with the overrides and attached_to set; records
 * derived for an earlier catalog are dropped and derived afresh), sorts,
 * and turns the builder into a catalog with
 * one reference. Always consumes b. Returns 0 with *out, or XDS_ENOMEM with
 * *out NULL. Port conflicts are reported to pb (the later template, in the
 * order added, is left out), they do not fail the call. Extensions of any
 * kind that share a vmId but differ in runtime, code (url or sha256),
 * environment, VM configuration or allowPrecompiled/nackOnCodeCacheMiss
 * are reported as warnings (Envoy gives them separate VMs; the later one
 * in fqn order names the earlier).
 */
int catalog_builder_finish(struct catalog_builder *b, struct problems *pb,
                           struct catalog **out);

/* Returns c with one more reference (c may be NULL). */
struct catalog *catalog_ref(struct catalog *c);
/* Drops a reference; the last one frees the catalog. NULL is a no-op. */
void catalog_unref(struct catalog *c);

/* Number of extensions in c. */
size_t catalog_ext_count(const struct catalog *c);
/* The i-th extension in fqn order (borrowed while c is referenced). */
const struct wasm_ext *catalog_ext_at(const struct catalog *c, size_t i);
/* The extension with this fqn, or NULL. O(log n). */
const struct wasm_ext *catalog_ext_find(const struct catalog *c,
                                        const char *fqn);

/* Whether a template's spec.extensions attaches extension i (by its fqn,
 * with or without overrides). Records derived for an attachment (their
 * attached_to set) are not themselves attached. See README
 * "Attachments". */
int catalog_ext_attached(const struct catalog *c, size_t i);

/* The templates of c, as the extensions above: count, the i-th in name
 * order, and by name (NULL when absent); borrowed while c is referenced. */
size_t catalog_tmpl_count(const struct catalog *c);
const struct listener_tmpl *catalog_tmpl_at(const struct catalog *c, size_t i);
const struct listener_tmpl *catalog_tmpl_find(const struct catalog *c,
                                              const char *name);

/* Deep copies of records, for carrying a last-good record from one catalog
 * into the next. NULL when out of memory. */
struct wasm_ext *catalog_ext_copy(const struct wasm_ext *e);
struct listener_tmpl *catalog_tmpl_copy(const struct listener_tmpl *t);

/*
 * Whether two records say the same thing: every field compared, typed
 * configs as data (ynode_equal), locations ignored (a resource moved to
 * another file or line is not a change). The same pointer is equal.
 */
int catalog_ext_equal(const struct wasm_ext *a, const struct wasm_ext *b);
int catalog_tmpl_equal(const struct listener_tmpl *a,
                       const struct listener_tmpl *b);

enum catalog_kind {
  CATALOG_EXT = 0, /* a WasmExtension, by fqn */
  CATALOG_TMPL = 1 /* a ListenerTemplate, by name */
};

enum catalog_op { CATALOG_ADDED = 0, CATALOG_UPDATED = 1, CATALOG_REMOVED = 2 };

/* One difference between two catalogs. Records are borrowed from them. */
struct catalog_change {
  enum catalog_kind kind;
  enum catalog_op op;
  const char *id; /* fqn or template name */
  /* CATALOG_EXT: old_ext is NULL when added, new_ext NULL when removed. */
  const struct wasm_ext *old_ext;
  const struct wasm_ext *new_ext;
  /* CATALOG_TMPL: the same for templates. */
  const struct listener_tmpl *old_tmpl;
  const struct listener_tmpl *new_tmpl;
};

/* Returns 0 to go on, or a negative value that stops catalog_diff(). */
typedef int (*catalog_diff_fn)(void *ctx, const struct catalog_change *ch);

/*
 * Compares old and next (either may be NULL: an empty catalog) record by
 * record (catalog_*_equal) and calls fn (nullable: just count) for each
 * change: extensions first in fqn order, then templates in name order.
 * Unchanged records are not reported. Pure; O(n) over both catalogs, and
 * records the two share (the file store reuses the records of unchanged
 * files) compare by pointer. Returns the number of changes, or the first
 * negative value fn returned.
 */
long catalog_diff(const struct catalog *old, const struct catalog *next,
                  catalog_diff_fn fn, void *ctx);

/* Short names for messages: "WasmExtension", "ListenerTemplate";
 * "added", "updated", "removed". */
const char *catalog_kind_name(enum catalog_kind k);
/* The kind of a change's resource for messages: catalog_kind_name(), but
 * "WasmPlugin" for an Istio WasmPlugin. */
const char *catalog_change_kind_name(const struct catalog_change *ch);
const char *catalog_op_name(enum catalog_op op);

/* Whether two templates could apply to the same proxy (their selectors
 * overlap): a mode each names differently, or a label key both require
 * with different values, keeps them apart; anything else may overlap. */
int catalog_tmpl_selectors_overlap(const struct listener_tmpl *a,
                                   const struct listener_tmpl *b);

#endif
