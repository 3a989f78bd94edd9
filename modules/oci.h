/*
 * oci.h: pulling a Wasm module out of an OCI registry (distribution API v2).
 *
 * References: oci://[REGISTRY/]REPO[:TAG][@sha256:HEX]. The first path part
 * is a registry when it contains '.' or ':' or is "localhost"; otherwise the
 * registry is docker.io and a one-part repository gets "library/". No tag
 * and no digest means tag "latest".
 *
 * Transport: https, except plain http for a loopback registry (localhost,
 * 127.0.0.0/8, [::1]) and for registries listed in opts->insecure. Auth:
 * anonymous first; on 401 the WWW-Authenticate challenge is answered,
 * Bearer (token from realm?service=&scope=, with the pull secret's basic
 * credentials when there are some) or Basic (the pull secret). Basic
 * credentials are never sent to a plain-http token realm that is not
 * loopback or listed as insecure.
 *
 * Formats: an image index picks linux/amd64, else its only entry (buildx
 * attestation entries, platform unknown/unknown, do not count), else fails
 * naming the platforms. In an image manifest the module is the last layer of
 * a raw Wasm type — application/vnd.module.wasm.content.layer.v1+wasm (the
 * solo "oci" variant), application/vnd.wasm.content.layer.v1+wasm
 * (wasm-to-oci), application/wasm (CNCF Wasm artifact) — else the last
 * layer, which must be a tar or tar+gzip ("compat" variant) holding
 * plugin.wasm or a single .wasm file. The oci variant's config
 * (application/vnd.module.wasm.config.v1+json) and a compat layer's
 * runtime-config.json give root_ids.
 *
 * Verification: every manifest and blob is hashed and compared with the
 * digest that named it (and Docker-Content-Digest when sent), blob sizes
 * with their descriptors, and the module must start with the Wasm header.
 * Every read is bounded (opts limits). Any thread; blocking.
 */
#ifndef XDS_MODULES_OCI_H
#define XDS_MODULES_OCI_H

#include <stddef.h>

#include "base/err.h"
#include "modules/digest.h"
#include "modules/fetch.h"

/* Default limits, each protecting memory from a hostile registry. */
#define OCI_DEFAULT_MAX_MANIFEST (4u * 1024 * 1024) /* manifest, index */
#define OCI_MAX_CONFIG (1024u * 1024)               /* config blob */
#define OCI_MAX_TOKEN_RESPONSE (64u * 1024)         /* token endpoint body */
#define OCI_MAX_ROOT_IDS 16
#define OCI_MAX_REDIRECTS 5

struct oci_ref {
  char registry[256];              /* host[:port]; "docker.io" for Docker Hub */
  char repo[256];                  /* path inside the registry */
  char tag[129];                   /* "" when the reference has only a digest */
  char digest[DIGEST_HEX_LEN + 1]; /* hex of @sha256:, "" when none */
};

/* Parses url (with or without "oci://"). Returns 0 or XDS_EINVAL. */
int oci_ref_parse(const char *url, struct oci_ref *out, struct xds_err *err);

/* 1 when the reference floats: no digest, and tag "latest". */
int oci_ref_is_latest(const struct oci_ref *ref);

/* 1 when registry (host[:port]) is localhost, 127.0.0.0/8 or [::1]. */
int oci_registry_is_loopback(const char *registry);

struct oci_opts {
  struct fetch_policy fetch;   /* timeouts, CA file, link-local policy */
  size_t max_manifest;         /* 0: OCI_DEFAULT_MAX_MANIFEST */
  size_t max_module;           /* largest module and largest layer blob;
                                  an unpacked layer may be twice that */
  const char *const *insecure; /* NULL-terminated host[:port] reached over
                                  plain http; nullable */
  const char *basic;           /* nullable: base64 "user:password" */
  int plain_http;              /* 1: this registry over plain http (a
                                  WasmDeployment's imagePullOptions
                                  .plainHttp), as if listed in insecure */
  /* Nullable. Asked with the chosen image manifest's digest (hex) before
   * any blob is fetched; returns 1 and fills module_hex when that manifest's
   * module is already cached, so nothing more is downloaded. */
  int (*known)(void *arg, const char *manifest_hex,
               char module_hex[DIGEST_HEX_LEN + 1]);
  void *known_arg;
};

struct oci_result {
  char manifest_digest[DIGEST_HEX_LEN + 1]; /* the image manifest used */
  char sha256[DIGEST_HEX_LEN + 1];          /* the module's */
  unsigned char *module; /* NULL when known() answered; else xds_malloc'd */
  size_t module_len;
  char **root_ids; /* from the image's runtime config; may be empty */
  size_t n_root_ids;
  const char *variant; /* static: "oci", "compat", "wasm-to-oci", "cncf",
                          or "cached" */
};

/* Resolves ref and downloads its module. Returns 0 and fills res (release
 * with oci_result_cleanup, also after an error), or: XDS_EIO (network,
 * timeout, 5xx, 429: worth retrying soon), XDS_EPERM (401/403 after
 * authenticating, or a refused destination), XDS_ENOTFOUND (404, no module
 * in the image), XDS_EINVAL (a digest or size mismatch, unusable index),
 * XDS_EPARSE (bad manifest, not Wasm, unsupported layer), XDS_ETOOBIG
 * (a limit), XDS_ENOMEM. err says which, never quoting credentials. */
int oci_pull(const struct oci_ref *ref, const struct oci_opts *opts,
             struct oci_result *res, struct xds_err *err);

/* Frees the module bytes and root ids res holds and clears them. */
void oci_result_cleanup(struct oci_result *res);

/* Reads root ids from a runtime config JSON ({"config": {"rootIds": [...]}},
 * root_ids also accepted, at top level too) into a new array. Returns 0
 * (possibly with *n = 0), XDS_EPARSE or XDS_ENOMEM. */
int oci_parse_root_ids(const char *json, size_t len, char ***ids, size_t *n);

#endif
