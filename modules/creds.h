/*
 * creds.h: registry credentials from pull secrets.
 *
 * An extension's imagePullSecret NAME is looked up in the pull-secret
 * directory (--pull-secrets DIR) as DIR/NAME.json, else
 * DIR/NAME/.dockerconfigjson (the file a Kubernetes docker-registry secret
 * mounts as), else the files DIR/NAME/username and DIR/NAME/password (a
 * secret with the keys username and password, as a Gloo Mesh
 * WasmDeployment's imagePullOptions.pullSecret names one; one trailing
 * newline of each is dropped; good for any registry). The config file is
 * Docker's config.json format:
 *   {"auths": {"registry.example:5000": {"auth": "<base64 user:password>"}}}
 * ("username"/"password" are accepted instead of "auth"). Keys may carry a
 * scheme or path ("https://index.docker.io/v1/"); they are matched on
 * host[:port], and docker.io, index.docker.io and registry-1.docker.io are
 * one registry. NAME must be a plain file name (no '/', not starting with
 * '.'), so a resource cannot read files outside DIR.
 *
 * Credentials are secrets: nothing here logs them, errors never quote them,
 * and creds_cleanup wipes them. Any thread.
 */
#ifndef XDS_MODULES_CREDS_H
#define XDS_MODULES_CREDS_H

#include <stddef.h>

#include "base/err.h"

/* Largest pull-secret file read. */
#define CREDS_MAX_FILE (256 * 1024)

struct creds {
  char *basic; /* base64 "user:password", ready for "Authorization: Basic" */
};

/* Finds the credentials for registry (host[:port]) in the pull secret
 * `name` under dir. Returns 0 and fills out (release with creds_cleanup),
 * XDS_EINVAL (bad name, or dir NULL), XDS_ENOTFOUND (no such secret, or no
 * entry for the registry), XDS_EPARSE (not Docker config JSON), XDS_ETOOBIG
 * or XDS_ENOMEM. */
int creds_load(const char *dir, const char *name, const char *registry,
               struct creds *out, struct xds_err *err);

/* Same, from config JSON text already in memory. */
int creds_from_json(const char *json, size_t len, const char *registry,
                    struct creds *out, struct xds_err *err);

/* Wipes and frees. Safe on a zeroed struct. */
void creds_cleanup(struct creds *c);

#endif
