/*
 * fuzz_creds.c: an imagePullSecret (modules/creds.h): Docker config JSON
 * ({"auths": {...}}, legacy .dockercfg too), looked up for a registry the
 * first byte picks.
 */
#include <stdint.h>

#include "base/log.h"
#include "modules/creds.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const REG[] = {"registry.example.com", "docker.io",
                                    "localhost:5000", "ghcr.io"};
  struct creds c = {0};
  struct xds_err err = {0, ""};

  if (size < 1)
    return 0;
  creds_from_json((const char *)data + 1, size - 1, REG[data[0] % 4], &c, &err);
  creds_cleanup(&c);
  return 0;
}
