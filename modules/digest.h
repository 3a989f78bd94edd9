/*
 * digest.h: SHA-256 digests and the Wasm binary header, the two facts every
 * fetched module is checked against before it is cached or served.
 *
 * A module's identity in wasmxds is the lowercase hex SHA-256 of its bytes
 * (64 characters), the same value Envoy checks in RemoteDataSource.sha256.
 * OCI descriptors write digests as "sha256:<hex>". Pure functions; any
 * thread.
 */
#ifndef XDS_MODULES_DIGEST_H
#define XDS_MODULES_DIGEST_H

#include <stddef.h>

/* Length of a hex SHA-256 digest, without its terminator. */
#define DIGEST_HEX_LEN 64
/* Length of "sha256:<hex>", without its terminator. */
#define DIGEST_OCI_LEN (7 + DIGEST_HEX_LEN)

/* Writes the lowercase hex SHA-256 of data[0..len) and a terminator into
 * out. Returns 0, or XDS_EIO when OpenSSL fails. */
int digest_sha256_hex(const void *data, size_t len,
                      char out[DIGEST_HEX_LEN + 1]);

/* 1 when s is exactly 64 lowercase hex digits, else 0. */
int digest_is_hex(const char *s);

/* Parses an OCI digest "sha256:<64 lowercase hex>" and copies the hex part
 * into hex. Returns 0, or XDS_EINVAL for any other algorithm or shape. */
int digest_parse_oci(const char *s, char hex[DIGEST_HEX_LEN + 1]);

/* Length of a Wasm binary's header: the magic "\0asm" and version 1. */
#define WASM_HEADER_LEN 8

/* 1 when data starts with the Wasm magic and binary version 1, else 0. */
int digest_is_wasm(const void *data, size_t len);

#endif
