/*
 * fuzz_oci.c: what an OCI registry answers, read as oci_pull() reads it
 * (modules/oci_parse.h): an image index (which entry), an image manifest
 * (which layer), the runtime config's root ids (modules/oci.h), and a
 * descriptor's digest. The bytes are the manifest or config JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "modules/digest.h"
#include "modules/oci.h"
#include "modules/oci_parse.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct xds_err err = {0, ""};
  json_error_t jerr;
  json_t *m = json_loadb((const char *)data, size, 0, &jerr);
  char **ids = NULL;
  size_t n_ids = 0;

  if (oci_parse_root_ids((const char *)data, size, &ids, &n_ids) == 0)
    xds_strv_free(ids, n_ids);
  if (!json_is_object(m))
    goto out;
  if (json_is_array(json_object_get(m, "manifests"))) {
    char child[DIGEST_HEX_LEN + 1];

    if (oci_index_pick("fuzz/repo", m, child, &err) == 0 &&
        (strlen(child) != DIGEST_HEX_LEN || !digest_is_hex(child)))
      __builtin_trap();
  } else {
    json_t *layer = NULL;
    const char *variant = NULL;
    int gz = -1;

    if (oci_manifest_layer("fuzz/repo", m, &layer, &variant, &gz, &err) == 0) {
      const char *d = json_string_value(json_object_get(layer, "digest"));
      char hex[DIGEST_HEX_LEN + 1];

      if (layer == NULL || variant == NULL || (gz != 0 && gz != 1))
        __builtin_trap();
      if (d != NULL)
        digest_parse_oci(d, hex);
    }
  }
out:
  json_decref(m);
  return 0;
}
