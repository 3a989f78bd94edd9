/*
 * render.h: what one proxy would receive, as readable JSON, with the
 * reason each extension of its organization is in or out of each listener
 * (`wasmxds render`, and later the admin debug pages). Pure apart from the
 * snapshot's class cache; safe from any thread.
 */
#ifndef XDS_RENDER_H
#define XDS_RENDER_H

#include <jansson.h>

#include "server/compose/proxy.h"
#include "server/compose/snapshot.h"

/* A new JSON object for proxy p on snapshot s, or NULL when out of
 * memory. */
json_t *render_proxy(struct snapshot *s, const struct proxy_id *p);

#endif
