/*
 * version.c: SHA-256 through OpenSSL's EVP interface.
 */
#include "server/compose/version.h"

#include <openssl/evp.h>
#include <string.h>

#include "base/err.h"

static void hex64(const unsigned char *md, char out[VERSION_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";

  for (int i = 0; i < VERSION_LEN / 2; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[VERSION_LEN] = '\0';
}

void version_of(const void *p, size_t n, char out[VERSION_LEN + 1]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;

  if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len < 8) {
    /* EVP_Digest without an engine only fails on allocation failure; a
     * version that can never match keeps the stream correct (it resends). */
    memset(out, '0', VERSION_LEN);
    out[VERSION_LEN] = '\0';
    return;
  }
  hex64(md, out);
}

int version_begin(struct version_hasher *h) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  h->ctx = ctx;
  if (ctx == NULL)
    return XDS_ENOMEM;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    h->ctx = NULL;
    return XDS_ENOMEM;
  }
  return 0;
}

void version_add(struct version_hasher *h, const void *p, size_t n) {
  EVP_DigestUpdate(h->ctx, p, n);
}

void version_add_str(struct version_hasher *h, const char *s) {
  EVP_DigestUpdate(h->ctx, s, strlen(s) + 1);
}

void version_end(struct version_hasher *h, char out[VERSION_LEN + 1]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;

  if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len < 8)
    memset(md, 0, sizeof(md));
  EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
  hex64(md, out);
}
