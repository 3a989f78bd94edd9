/*
 * fuzz_unpack.c: a compat image layer (modules/unpack.h): tar or
 * tar+gzip, as a registry serves it, searched for the module and its
 * runtime config the way oci_pull() does.
 */
#include <stdint.h>

#include "base/buf.h"
#include "base/log.h"
#include "modules/unpack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

/* The found parts must lie inside the archive. */
static void check_inside(const void *base, size_t len,
                         const struct unpack_found *f) {
  const unsigned char *b = base;

  if (f->wasm != NULL && (f->wasm < b || f->wasm_len > len ||
                          f->wasm - b > (long)(len - f->wasm_len)))
    __builtin_trap();
  if (f->runtime_config != NULL &&
      (f->runtime_config < b || f->runtime_config_len > len ||
       f->runtime_config - b > (long)(len - f->runtime_config_len)))
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct xds_err err = {0, ""};
  struct xds_buf plain;
  struct unpack_found f;
  const void *tar = data;
  size_t tar_len = size;

  xds_buf_init(&plain, 8u << 20);
  if (unpack_is_gzip(data, size)) {
    if (unpack_gunzip(data, size, &plain, &err) < 0)
      goto out;
    tar = plain.data != NULL ? plain.data : "";
    tar_len = plain.len;
  }
  unpack_is_tar(tar, tar_len);
  if (unpack_tar_find_wasm(tar, tar_len, &f, &err) == 0)
    check_inside(tar, tar_len, &f);
out:
  xds_buf_cleanup(&plain);
  return 0;
}
