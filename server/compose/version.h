/*
 * version.h: content-derived versions. A version is the first 64 bits of
 * the SHA-256 of the bytes it describes, as 16 lowercase hex digits, so the
 * same content has the same version on every replica and after restarts.
 */
#ifndef XDS_VERSION_H
#define XDS_VERSION_H

#include <stddef.h>

#define VERSION_LEN 16

struct version_hasher {
  void *ctx; /* EVP_MD_CTX */
};

/* Writes the version of n bytes at p into out (VERSION_LEN + 1 bytes). */
void version_of(const void *p, size_t n, char out[VERSION_LEN + 1]);

/* Incremental form, for versions over several resources. _begin returns 0
 * or XDS_ENOMEM; _end releases the hasher in every case. */
int version_begin(struct version_hasher *h);
void version_add(struct version_hasher *h, const void *p, size_t n);
/* Adds s and its terminating NUL, so ("ab","c") and ("a","bc") differ. */
void version_add_str(struct version_hasher *h, const char *s);
void version_end(struct version_hasher *h, char out[VERSION_LEN + 1]);

#endif
