/*
 * testutil.h: helpers shared by the offline suites.
 */
#ifndef XDS_TESTUTIL_H
#define XDS_TESTUTIL_H

#include "server/compose/proxy.h"
#include "store/catalog.h"

/* Loads yaml (one or more documents) through the file store, as the server
 * would, failing the test on any problem. Returns a new catalog reference. */
struct catalog *tu_catalog(const char *yaml);

/* Fills p for a proxy; tenant may be NULL; labels is "k=v,k2=v2" or NULL. */
void tu_proxy(struct proxy_id *p, const char *id, const char *org,
              const char *tenant, enum proxy_mode mode, const char *labels);

#endif
