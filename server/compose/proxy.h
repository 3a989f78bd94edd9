/*
 * proxy.h: who a connected proxy is, as plain data.
 *
 * Filled from the Envoy Node by identity.c (and, with mutual TLS, checked
 * against the client certificate). Composition (chain.c) reads only this
 * struct, so it never sees protobuf.
 */
#ifndef XDS_PROXY_H
#define XDS_PROXY_H

#include <stddef.h>

#include "store/model.h"

struct proxy_id {
  char *node_id;      /* Node.id, never NULL */
  char *cluster;      /* Node.cluster, "" when absent */
  char *organization; /* never NULL once valid */
  char *tenant;       /* tenant fqn, NULL: the proxy belongs to no tenant */
  enum proxy_mode mode;
  struct label *labels; /* sorted by key, keys unique */
  size_t n_labels;
};

/* Frees what the struct owns and zeroes it. */
void proxy_id_cleanup(struct proxy_id *p);

/* Returns the value of label key, or NULL. */
const char *proxy_id_label(const struct proxy_id *p, const char *key);

#endif
