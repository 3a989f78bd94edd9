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
  /* Istio identity (README "Coming from Istio"): the proxy's namespace,
   * NULL when it names none; WasmPlugins reach only proxies with one. */
  char *namespace;
  /* The Istio config root namespace whose WasmPlugins apply to every
   * namespace: borrowed from the server's configuration (never freed
   * here); NULL means PROXY_ISTIO_ROOT_DEFAULT. Not part of the identity. */
  const char *root_namespace;
};

/* Istio's default config root namespace (--istio-root-namespace). */
#define PROXY_ISTIO_ROOT_DEFAULT "istio-system"

/* The root namespace in force for p. */
static inline const char *proxy_id_root(const struct proxy_id *p) {
  return p->root_namespace != NULL ? p->root_namespace
                                   : PROXY_ISTIO_ROOT_DEFAULT;
}

/* Frees what the struct owns and zeroes it. */
void proxy_id_cleanup(struct proxy_id *p);

/* Returns the value of label key, or NULL. */
const char *proxy_id_label(const struct proxy_id *p, const char *key);

#endif
