/*
 * oci_parse.h: the pure part of oci_pull(): reading what a registry's
 * manifests ask for, with no I/O, so it can be tested and fuzzed on its
 * own (tests/fuzz/fuzz_oci.c). Private to modules/ and the tests.
 *
 * where names the repository in errors ("registry/repo"). The JSON values
 * are borrowed; what is returned points into them. Pure: any thread.
 */
#ifndef XDS_MODULES_OCI_PARSE_H
#define XDS_MODULES_OCI_PARSE_H

#include <jansson.h>

#include "base/err.h"
#include "modules/digest.h"

/* Room for "registry/repo" (struct oci_ref's two fields and the slash). */
#define OCI_WHERE_LEN 520

/* Picks the entry of an image index (manifests[]): linux/amd64, else the
 * only entry that is not a buildx attestation, and stores its digest's hex.
 * Returns 0, XDS_EINVAL (empty, or several and none linux/amd64: err lists
 * them) or XDS_EPARSE (the entry has no sha256 digest). */
int oci_index_pick(const char *where, json_t *idx,
                   char child_hex[DIGEST_HEX_LEN + 1], struct xds_err *err);

/* Chooses the layer of an image manifest that holds the module: the last
 * raw Wasm layer (*variant "oci", "wasm-to-oci" or "cncf"), else the last
 * layer when it is a tar (*gz 0) or tar+gzip (*gz 1; *variant "compat").
 * Returns 0 with *layer (borrowed from m) or XDS_EPARSE (no layers, or
 * none usable) with *layer NULL. */
int oci_manifest_layer(const char *where, json_t *m, json_t **layer,
                       const char **variant, int *gz, struct xds_err *err);

#endif
