/*
 * registry.h: Debian's docker-registry (distribution 2.8) as a child process
 * on 127.0.0.1, with filesystem storage in a temporary directory and
 * optional htpasswd (bcrypt, made by apache2-utils' htpasswd) auth, plus a
 * small libcurl pusher for blobs and manifests. Every wait is bounded; the
 * child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG).
 */
#ifndef XDS_TESTS_REGISTRY_H
#define XDS_TESTS_REGISTRY_H

#include <stddef.h>

struct registry;

/* Starts a registry; user/pass non-NULL turn on htpasswd auth. Returns
 * NULL (and prints why) when it cannot start. */
struct registry *registry_start(const char *user, const char *pass);
/* The same serving https only, with a self-signed certificate for
 * 127.0.0.1 made by the openssl CLI (which the helper's own pusher does not
 * verify). */
struct registry *registry_start_tls(const char *user, const char *pass);
void registry_stop(struct registry *r);

/* "127.0.0.1:PORT" */
const char *registry_host(const struct registry *r);
/* The storage root (for tampering with blobs). */
const char *registry_root(const struct registry *r);

/* Uploads a blob; writes its hex digest. Returns 0 or -1. */
int registry_push_blob(struct registry *r, const char *repo, const void *data,
                       size_t len, char *hex);
/* Uploads a manifest under ref (tag or "sha256:..."); writes its digest.
 * Returns 0 or -1. */
int registry_push_manifest(struct registry *r, const char *repo,
                           const char *ref, const char *media_type,
                           const char *json, char *hex);

/* HTTP requests to /v2/<something> the registry has logged so far. */
long registry_requests(const struct registry *r);

#endif
