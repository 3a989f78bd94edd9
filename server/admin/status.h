/*
 * status.h: the admin endpoints about the server itself:
 *   GET /healthz             200 "ok" while the process serves
 *   GET /readyz              200 once a store has loaded and a snapshot is
 *                            served; 503 before; 200 with "degraded" and the
 *                            reason while the store cannot be refreshed
 *                            (the last good snapshot is still served), and
 *                            while a FAIL_CLOSE extension is served as its
 *                            deny-all substitute (which ones, and why)
 *   GET /debug/modules       per extension of the served snapshot: what it
 *                            is served as and the resolver's state of its
 *                            module (digest, source, last error, retries)
 *   GET /debug/proxies       the connected proxies' status (JSON array, in
 *                            stream_id order); query: node, organization,
 *                            tenant (fqn) filter; limit=N and after=ID
 *                            page (a full page names the next after= in
 *                            the STATUS_NEXT_HEADER response header)
 *   GET /debug/proxies/{id}  the streams of node id (404 when none)
 *   GET /debug/resources/{kind}/{a}/{b}
 *                            the status of one served resource
 *                            (WasmExtension/ORG/NAME, WasmPlugin/NS/NAME,
 *                            WasmDeployment/NS/NAME), in the shape of Gloo
 *                            Mesh's WasmDeploymentStatus: observedGeneration
 *                            (metadata.generation of the version served),
 *                            error (why a filter is served as a
 *                            substitute: pull failures; the store's
 *                            problems with the resource's current document
 *                            while its last good version is served), and
 *                            per connected
 *                            node its workloadStates from what it ACKed or
 *                            NACKed over ECDS; 404 when not served
 * /debug/ needs the admin's bearer token when it has one (admin_protect).
 * /debug/proxies runs on the admin's worker thread (admin_route_slow); the
 * per-stream state is built by the serving loop in short slices
 * (xds_server_status_query), so nothing here touches a stream.
 */
#ifndef XDS_STATUS_H
#define XDS_STATUS_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "server/admin/admin.h"
#include "server/compose/delivery.h"
#include "server/compose/snapshot.h"
#include "server/compose/stats.h"
#include "server/transport/xds_server.h"
#include "store/problems.h"

/* Store problems kept for /debug/resources (those tagged with a
 * resource; more are not kept). */
#define STATUS_PROBLEMS_MAX 1000

/* One store problem about a resource's current document. */
struct status_problem {
  char *resource; /* problem.resource */
  char *text;     /* "error: WHERE: PATH: MSG" */
};

/* Bytes of the /readyz line about substitutes (the rest is elided). */
#define STATUS_SUBST_MAX 2048

/* How long a /debug request waits for the serving loop. */
#define STATUS_WAIT_MS 10000
/* Proxies per status page read for /debug/resources. */
#define STATUS_RESOURCE_PAGE 256
/* The response header naming the next page's after= value. */
#define STATUS_NEXT_HEADER "X-Wasmxds-Next-After"

struct status {
  struct xds_server *server; /* borrowed */
  atomic_int ready;          /* a snapshot is served */
  pthread_mutex_t lock;      /* guards what follows, to generation */
  int degraded;
  char reason[256];
  struct snapshot *snap;           /* the one served (a reference), or NULL */
  char *subst;                     /* FAIL_CLOSE substitutes served, or NULL */
  atomic_ulong generation;         /* snapshot generation served */
  struct status_problem *problems; /* of the store's last load, tagged */
  size_t n_problems;
  /* Set by status_attach before the admin server starts: */
  struct delivery *delivery; /* nullable: no module fetching */
  struct xds_stats *stats;   /* nullable */
};

/* Starts st not ready and not degraded, asking server (borrowed, may be
 * NULL) for stream status; status_cleanup() releases its lock. */
void status_init(struct status *st, struct xds_server *server);
void status_cleanup(struct status *st);

/* Any thread: records that a snapshot is served, or that the store is
 * degraded (reason NULL clears it). */
void status_set_ready(struct status *st, unsigned long generation);
void status_set_degraded(struct status *st, const char *reason);

/* Where /debug/modules and /metrics' extension gauges come from (both
 * nullable). Before the admin server starts. */
void status_attach(struct status *st, struct delivery *d,
                   struct xds_stats *stats);

/* Any thread: snap is the snapshot now served. Counts its extensions by
 * what they are served as (stats->extensions_served) and keeps which
 * FAIL_CLOSE extensions are served as deny-all (for /readyz, logged when
 * that changes). Out of memory keeps the previous state. */
void status_set_served(struct status *st, struct snapshot *snap);

/* Any thread: the problems of the store's latest load (borrowed); those
 * tagged with a resource (problem.resource) are kept, at most
 * STATUS_PROBLEMS_MAX, for /debug/resources. Out of memory keeps the
 * previous list. */
void status_set_problems(struct status *st, const struct problems *pb);

/* Appends to out, separated by "; ", the kept problems of resource id
 * (borrowed). Returns 0, XDS_ENOMEM or XDS_ETOOBIG (out is full). */
int status_resource_problems(struct status *st, const char *id,
                             struct xds_buf *out);

/* Bounds of status_collect's answer. */
struct status_collect_opts {
  size_t max_failed; /* failed proxies listed per resource */
  size_t max_error;  /* bytes of an error text (the resource's, a proxy's) */
};

/*
 * The status of every stored resource the served snapshot holds
 * (WasmExtension, WasmPlugin, WasmDeployment; records derived for
 * attachments are not stored ones), in one pass over the connected
 * proxies: a new JSON object "<Kind>/<a>/<b>" -> {"observedGeneration",
 * "error" (as /debug/resources), "workloadStates": the number of proxies
 * (streams) per state FILTERS_DEPLOYED / DEPLOYMENT_PENDING /
 * DEPLOYMENT_FAILED, "failedWorkloads": the first max_failed failed ones
 * by node id [{node, error}], "failedWorkloadsNotListed" when there are
 * more}. Any thread but the serving loop's (it waits for the loop).
 * Returns 0 with *out, XDS_ENOTFOUND (nothing served yet), XDS_ETOOBIG
 * (the loop did not answer in time) or XDS_ENOMEM.
 */
int status_collect(struct status *st, const struct status_collect_opts *opts,
                   json_t **out);

/* Registers the endpoints above on a (before admin_start). Returns 0 or
 * an admin_route error. */
int status_register(struct status *st, struct admin *a);

#endif
