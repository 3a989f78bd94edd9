/*
 * csds_dump.c: writes the ClientStatusResponse bytes of a real wasmxds
 * ($WASMXDS_BIN, on the store given) with three proxies (acknowledged with
 * a Wasm module, a substitute and a missing extension; rejected; pending)
 * to a file, and the value of each resource's xds_config to
 * OUT.d/<n>.<message full name>.pb, for tests/upstream_decode.sh to decode
 * with the upstream protos (protoc --decode prints an Any's value as
 * bytes).
 *
 *   csds_dump STORE OUT
 *
 * Exit status 0, or 1 with a message on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "tests/csds/fleet.h"
#include "tests/e2e/server_proc.h"
#include "tests/e2e/xds_client.h"

#include "envoy/admin/v3/config_dump_shared.pb-c.h"

/* Each xds_config's value to its own file under out.d/. */
static int
write_parts(const Envoy__Service__Status__V3__ClientStatusResponse *r,
            const char *out) {
  char dir[4096], path[4200];
  int n = 0;

  snprintf(dir, sizeof(dir), "%s.d", out);
  if (mkdir(dir, 0700) < 0) {
    fprintf(stderr, "csds_dump: cannot create %s\n", dir);
    return -1;
  }
  for (size_t i = 0; i < r->n_config; i++)
    for (size_t j = 0; j < r->config[i]->n_generic_xds_configs; j++) {
      const Google__Protobuf__Any *a =
          r->config[i]->generic_xds_configs[j]->xds_config;
      const char *name;
      FILE *f;
      if (a == NULL)
        continue;
      name = strrchr(a->type_url, '/');
      snprintf(path, sizeof(path), "%s/%d.%s.pb", dir, n++,
               name != NULL ? name + 1 : a->type_url);
      f = fopen(path, "wb");
      if (f == NULL ||
          fwrite(a->value.data, 1, a->value.len, f) != a->value.len ||
          fclose(f) != 0) {
        fprintf(stderr, "csds_dump: cannot write %s\n", path);
        return -1;
      }
    }
  return 0;
}

int main(int argc, char **argv) {
  struct fleet_proxy *p[3] = {NULL, NULL, NULL};
  Envoy__Service__Status__V3__ClientStatusResponse *r = NULL;
  struct server_proc *sp = NULL;
  uint8_t *bytes = NULL;
  size_t len;
  FILE *f;
  int rc = 1;

  if (argc != 3) {
    fprintf(stderr, "usage: csds_dump STORE OUT\n");
    return 1;
  }
  if (server_proc_start(argv[1], NULL, &sp) < 0) {
    fprintf(stderr, "csds_dump: cannot start wasmxds\n");
    return 1;
  }
  if (fleet_proxy_new(server_proc_target(sp), "dump-acked",
                      "organizations/acme/tenants/payments", FLEET_ACKED,
                      &p[0]) < 0 ||
      fleet_proxy_new(server_proc_target(sp), "dump-nacked",
                      "organizations/acme/tenants/payments", FLEET_NACKED,
                      &p[1]) < 0 ||
      fleet_proxy_new(server_proc_target(sp), "dump-pending",
                      "organizations/acme/tenants/web", FLEET_PENDING,
                      &p[2]) < 0)
    goto done;
  fleet_response_free(
      fleet_wait_state(server_proc_target(sp), "dump-nacked", XDS_TYPE_LISTENER,
                       ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED, 5000));
  r = fleet_wait_state(server_proc_target(sp), "dump-acked", XDS_TYPE_LISTENER,
                       ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED, 5000);
  if (r == NULL || r->n_config != 3) {
    fprintf(stderr, "csds_dump: the fleet did not settle\n");
    goto done;
  }
  len = protobuf_c_message_get_packed_size(&r->base);
  bytes = malloc(len + 1);
  if (bytes == NULL)
    goto done;
  protobuf_c_message_pack(&r->base, bytes);
  f = fopen(argv[2], "wb");
  if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "csds_dump: cannot write %s\n", argv[2]);
    goto done;
  }
  if (write_parts(r, argv[2]) < 0)
    goto done;
  rc = 0;
done:
  free(bytes);
  fleet_response_free(r);
  for (int i = 0; i < 3; i++)
    fleet_proxy_free(p[i]);
  server_proc_stop(sp, NULL);
  server_proc_free(sp);
  return rc;
}
