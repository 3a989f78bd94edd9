/*
 * snapshot.h: one immutable, reference-counted generation of everything
 * wasmxds serves.
 *
 * A snapshot holds a catalog, the encoded ECDS resource of every extension
 * (built once when the snapshot is built), and, built on first use, one
 * class view per proxy class: the proxies that share an organization,
 * tenant, workload mode and set of selected listener templates share one
 * view, so listeners are encoded once per class, not once per proxy.
 *
 * Incremental builds (snapshot_build_from): a snapshot built from the one
 * before it shares, reference-counted, the encodings of every extension
 * whose record and module result did not change, and takes over every
 * class view the change cannot touch. Which views a change touches: those
 * of the tenants a changed WasmExtension's allowedIn names (its old and
 * its new version), every view of its organization when allowedIn is
 * empty, and every view when a listener template, a WasmPlugin or a
 * WasmDeployment changed or the encoding options differ. The result is the
 * same, byte for byte, as a build from scratch (tests/check_compose).
 *
 * Threads: snapshot_build runs on whichever thread loads the store (the
 * publisher's); snapshot_build_from reads the previous snapshot under its
 * mutex, so the previous one may be in use meanwhile. After that every
 * function may be called from any thread; class views are built under the
 * snapshot's own mutex and never change once built.
 */
#ifndef XDS_SNAPSHOT_H
#define XDS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "server/compose/encode.h"
#include "server/compose/proxy.h"
#include "server/compose/stats.h"
#include "store/catalog.h"
#include "server/compose/version.h"

/* One encoded resource: bytes are the serialized message that goes in an
 * Any's value. */
struct xds_resource {
  const char *name;
  char version[VERSION_LEN + 1];
  uint8_t *bytes;
  size_t len;
};

/* What one proxy class receives. Owned by the snapshots that share it
 * (valid while the caller holds a reference to the one it came from). */
struct xds_class {
  char *key;
  struct xds_resource *listeners; /* sorted by name */
  size_t n_listeners;
  /* Version of the whole LDS state: hash of every listener's name and
   * version. */
  char lds_version[VERSION_LEN + 1];
  /* The shared part of the LDS DiscoveryResponse (version_info, resources,
   * type_url), encoded once; a stream appends only its nonce. */
  uint8_t *lds_body;
  size_t lds_body_len;
  /* One line per listener that could not be encoded (empty when none). */
  char *problems;
  /* With --ecds-slots: every slot of every listener, by listener, then
   * phase (AUTHN, AUTHZ, STATS, UNSPECIFIED), then position; names and
   * bytes owned by the view. slot_fqn[i] is the extension placed in slot
   * i (borrowed from the catalog), NULL for an empty slot. slot_net[i] is
   * 1 for a slot of a TCP listener's network filter chain (its empty
   * config is the network RBAC filter), 0 for an HTTP filter slot. */
  struct xds_resource *slots;
  const char **slot_fqn;
  unsigned char *slot_net;
  size_t n_slots;
  size_t *slot_by_name;              /* indexes into slots, sorted by name */
  char slot_layout[VERSION_LEN + 1]; /* hash of the slot names in order */
};

/* The slot named name in class view c, or NULL. */
const struct xds_resource *snapshot_class_slot(const struct xds_class *c,
                                               const char *name);

struct snapshot;

/*
 * Builds a snapshot of catalog cat (the snapshot takes a reference) with
 * encoding options o (copied; strings must outlive the snapshot). Returns 0
 * and a new snapshot with one reference in *out, or XDS_ENOMEM.
 */
int snapshot_build(struct catalog *cat, const struct encode_opts *o,
                   uint64_t generation, struct snapshot **out,
                   struct xds_err *err);

/* A class view no proxy looked up for this many generations is not taken
 * over by the next snapshot (views of proxies gone are not kept for
 * ever); the next proxy of that class has it built again. */
#define SNAPSHOT_CLASS_KEEP 8

/*
 * snapshot_build, sharing what it can with prev (nullable: none; borrowed
 * for the call): the encodings of the extensions whose record and module
 * result are the same in both, and prev's class views that the change
 * from prev's catalog to cat cannot touch (see above) and that a proxy
 * looked up in the last SNAPSHOT_CLASS_KEEP generations. Same results
 * and errors as snapshot_build.
 */
int snapshot_build_from(struct snapshot *prev, struct catalog *cat,
                        const struct encode_opts *o, uint64_t generation,
                        struct snapshot **out, struct xds_err *err);

/* Returns s with one more reference (any thread). */
struct snapshot *snapshot_ref(struct snapshot *s);
/* Drops a reference; the last one frees the snapshot. NULL: no-op. */
void snapshot_unref(struct snapshot *s);

/* What s was built from (borrowed while s is referenced): the store
 * generation, the catalog and the encoding options. */
uint64_t snapshot_generation(const struct snapshot *s);
const struct catalog *snapshot_catalog(const struct snapshot *s);
const struct encode_opts *snapshot_opts(const struct snapshot *s);

/* The ECDS resource named fqn, or NULL when no such extension exists. The
 * caller checks visibility (chain_ext_visible) before serving it. */
const struct xds_resource *snapshot_ecds(const struct snapshot *s,
                                         const char *fqn);

/* How the extension named fqn is delivered in this snapshot (module
 * resolved, fetched by Envoy, or unavailable and why), or NULL. */
const struct encode_module *snapshot_module(const struct snapshot *s,
                                            const char *fqn);

/* What an extension is served as: its Wasm filter, or the RBAC
 * substitute of its fail strategy when its module is unavailable. */
enum served_as {
  SERVED_WASM = 0,
  SERVED_DENY_ALL = 1,  /* FAIL_CLOSE substitute */
  SERVED_ALLOW_ALL = 2, /* FAIL_OPEN substitute */
  SERVED_AS_N = 3       /* = STATS_SERVED_AS */
};

/* The extension named fqn in s: what it is served as (*m, nullable, gets
 * its delivery: digest, URL, or why unavailable). SERVED_WASM too when s
 * has no such extension (*m NULL). */
enum served_as snapshot_served_as(const struct snapshot *s, const char *fqn,
                                  const struct encode_module **m);

/* "wasm", "deny_all", "allow_all" (the /metrics label values). */
const char *served_as_label(enum served_as a);

/*
 * The class view for proxy p, built on first use. Returns 0 and a view
 * owned by s (valid while the caller holds a reference to s), or
 * XDS_ENOMEM with *out NULL and nothing kept (a later call builds the view
 * again). A listener that cannot be encoded is left out of the view and
 * described in view->problems.
 */
int snapshot_class(struct snapshot *s, const struct proxy_id *p,
                   const struct xds_class **out);

/* Counts class views built and reused in stats (borrowed, must outlive s)
 * from now on. Call before publishing. */
void snapshot_set_stats(struct snapshot *s, struct xds_stats *stats);

/* Number of class views held so far (built or taken over; for tests and
 * metrics). */
size_t snapshot_n_classes(struct snapshot *s);

struct snapshot_stats {
  size_t classes;              /* views held */
  unsigned long class_builds;  /* views encoded (one per class) */
  unsigned long class_hits;    /* lookups that reused a held view */
  unsigned long class_carried; /* views taken over from the previous
                                  snapshot (snapshot_build_from) */
  size_t class_bytes;          /* encoded listener bytes over all views */
  size_t ecds;                 /* ECDS resources (one per extension) */
  size_t ecds_shared;          /* of which shared with the previous one */
  size_t ecds_bytes;
};

/*
 * Whether a and b serve the same thing to every proxy: equal catalogs
 * (catalog_diff finds no change) and, extension by extension, the same
 * ECDS bytes and the same listener filter entry (so every listener a class
 * view would encode is the same too). Generations, module reasons and
 * other details no proxy receives are not compared. NULL differs from
 * everything. Any thread.
 */
int snapshot_same_content(const struct snapshot *a, const struct snapshot *b);

/* Counters of s: encodings built versus reused, and their sizes. */
void snapshot_class_stats(struct snapshot *s, struct snapshot_stats *out);

#endif
