/*
 * storekit.h: the store fixtures the Istio and Gloo test programs share
 * (tests/check_istio_*.c, tests/check_gloo.c): loading YAML or a store
 * directory through the file store, building an etcd store's catalog, and
 * a main() that runs the named test cases. Every failure fails the
 * calling test. Single-threaded, as Check tests are.
 */
#ifndef XDS_TESTS_STOREKIT_H
#define XDS_TESTS_STOREKIT_H

#include <check.h>
#include <stddef.h>

struct catalog;
struct encode_opts;
struct etcd_store;
struct problems;
struct snapshot;

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
