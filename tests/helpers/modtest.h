/*
 * modtest.h: builders and fixtures shared by the module tests: valid Wasm
 * binaries of any size, tar and gzip archives, temporary directories, free
 * loopback ports. Everything returned is xds_malloc'd unless said.
 */
#ifndef XDS_TESTS_MODTEST_H
#define XDS_TESTS_MODTEST_H

#include <stddef.h>

/* A valid Wasm binary of exactly len bytes (len >= 16): the header and a
 * custom section whose payload depends on seed. */
unsigned char *mt_wasm(size_t len, unsigned seed);

/* A ustar archive of n regular files. */
unsigned char *mt_tar(const char *const *names, const void *const *data,
                      const size_t *lens, size_t n, size_t *out_len);

/* gzip of data. */
unsigned char *mt_gzip(const void *data, size_t len, size_t *out_len);

/* Lowercase hex SHA-256 into hex[65]. */
void mt_sha(const void *data, size_t len, char *hex);

/* mkdtemp under $TMPDIR or /tmp into buf (cap >= 64). Returns buf. */
char *mt_tmpdir(char *buf, size_t cap);

/* rm -rf path (bounded depth). */
void mt_rmrf(const char *path);

/* An unused TCP port on 127.0.0.1 (bound and released). */
int mt_free_port(void);

/* Writes a file. Returns 0 or -1. */
int mt_write_file(const char *path, const void *data, size_t len);

#endif

#include "modules/resolver.h"
#include "store/model.h"

/* A WasmExtension record for the resolver (free with wasm_ext_free).
 * organization "org"; fqn organizations/org/extensions/<name>; sha and
 * secret nullable; allowed_in nullable (one tenant fqn). */
struct wasm_ext *mt_ext(const char *name, const char *url, const char *sha,
                        const char *secret, enum wasm_pull_policy policy,
                        const char *allowed_in);

/* Polls resolver_lookup until fqn reaches state (and, when min_attempts >
 * 0, has made that many attempts) or timeout_ms passes. Fills out (caller
 * cleans up). Returns 1 on success, 0 on timeout. */
int mt_wait(struct resolver *r, const char *fqn, enum module_state state,
            unsigned min_attempts, long timeout_ms, struct module_info *out);
