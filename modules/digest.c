/*
 * digest.c: SHA-256 through OpenSSL's EVP one-shot API, digest string
 * parsing, and the Wasm header check.
 */
#include "modules/digest.h"

#include "base/err.h"

#include <openssl/evp.h>
#include <string.h>

int digest_sha256_hex(const void *data, size_t len,
                      char out[DIGEST_HEX_LEN + 1]) {
  static const char hexd[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;

  if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    return XDS_EIO;
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hexd[md[i] >> 4];
    out[2 * i + 1] = hexd[md[i] & 15];
  }
  out[DIGEST_HEX_LEN] = '\0';
  return 0;
}

int digest_is_hex(const char *s) {
  size_t i;

  if (s == NULL)
    return 0;
  for (i = 0; i < DIGEST_HEX_LEN; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return s[i] == '\0';
}

int digest_parse_oci(const char *s, char hex[DIGEST_HEX_LEN + 1]) {
  if (s == NULL || strncmp(s, "sha256:", 7) != 0 || !digest_is_hex(s + 7))
    return XDS_EINVAL;
  memcpy(hex, s + 7, DIGEST_HEX_LEN + 1);
  return 0;
}

int digest_is_wasm(const void *data, size_t len) {
  static const unsigned char hdr[WASM_HEADER_LEN] = {0, 'a', 's', 'm',
                                                     1, 0,   0,   0};

  return len >= WASM_HEADER_LEN && memcmp(data, hdr, WASM_HEADER_LEN) == 0;
}
