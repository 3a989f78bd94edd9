/*
 * storekit.h: the store fixtures the Istio, Gloo and attachment test
 * programs share (tests/check_istio_*.c, tests/check_gloo.c,
 * tests/check_attach.c): loading YAML or a store directory through the
 * file store, building an etcd store's catalog, proxies described as
 * istio-agent would, the HTTP connection manager of a listener, and a
 * main() that runs the named test cases. Every failure fails the calling
 * test. Single-threaded, as Check tests are.
 */
#ifndef XDS_TESTS_STOREKIT_H
#define XDS_TESTS_STOREKIT_H

#include <check.h>
#include <stddef.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

#define HCM_T                                                                  \
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager

struct catalog;
struct encode_opts;
struct etcd_store;
struct problems;
struct proxy_id;
struct snapshot;
struct xds_buf;
struct xds_class;

/* Loads yaml (one file) through the file store into *cat; returns every
 * problem, one per line, with the temporary path replaced by "F" (caller
 * frees). */
char *sk_load_yaml(const char *yaml, struct catalog **cat);

/* Loads the store directory dir, which must hold n_exts extensions and
 * load with no problem (warn NULL) or exactly one warning containing warn,
 * into *cat; sets *opts to the defaults and builds *snap (version 1) from
 * it. */
void sk_load_store(const char *dir, size_t n_exts, const char *warn,
                   struct catalog **cat, struct encode_opts *opts,
                   struct snapshot **snap);

/* The catalog of the etcd store s (a new reference); pb is reset first
 * and receives the problems. */
struct catalog *sk_etcd_build(struct etcd_store *s, struct problems *pb);

/* A proxy as a test describes it: what it is (for messages), its node id,
 * its node metadata (key, value pairs, NULL-terminated), its LABELS (at
 * most two key, value pairs, NULL-terminated) and what the test wants of
 * it (in the test's own form). */
struct sk_proxy {
  const char *what;
  const char *id;
  const char *meta[6];
  const char *labels[6];
  const char *want;
};

/* Fills p (proxy_id_cleanup() it) from k through identity_from_node, as
 * the server does; fails the test when the node is refused. */
void sk_identify(const struct sk_proxy *k, struct proxy_id *p);

/* The HttpConnectionManager of l's first filter of its first filter chain
 * (free it with its _free_unpacked), or NULL when it does not decode. */
HCM_T *sk_hcm_of(const Envoy__Config__Listener__V3__Listener *l);

/* Renders the class snap gives the proxy k with render (into a buffer it
 * NUL-terminates) and fails the test unless the text is k->want. */
void sk_check_render(struct snapshot *snap, const struct sk_proxy *k,
                     void (*render)(const struct xds_class *c,
                                    const struct proxy_id *p,
                                    struct xds_buf *b));

/* A test case of a program, by the name its command line selects it. */
struct sk_case {
  const char *name;
  TCase *(*make)(void);
};

/* Runs the suite named suite with the cases named on the command line
 * (argv[1..]; all of them when none is). Returns main()'s exit status. */
int sk_run(const char *suite, int argc, char **argv,
           const struct sk_case *cases, size_t n);

#endif
