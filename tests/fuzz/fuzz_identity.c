/*
 * fuzz_identity.c: who a proxy says it is (server/compose/identity.h).
 * The first byte picks the reader: even, an Envoy Node message (protobuf
 * bytes, as in a DiscoveryRequest) through identity_from_node and the
 * Istio reader; odd, a client certificate's URI SAN through
 * identity_from_spiffe, and the same text as a tenant fqn.
 */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "server/compose/identity.h"
#include "server/compose/proxy.h"

#include "envoy/config/core/v3/base.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

static void from_node(const uint8_t *p, size_t n) {
  Envoy__Config__Core__V3__Node *node =
      envoy__config__core__v3__node__unpack(NULL, n, p);
  struct proxy_id a, b;
  struct identity_istio ist;
  struct xds_err err = {0, ""};

  if (node == NULL)
    return;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  memset(&ist, 0, sizeof(ist));
  if (identity_from_node(node, &a, &err) == 0) {
    /* The same node reads the same twice. */
    if (identity_from_node(node, &b, &err) != 0 || !identity_equal(&a, &b))
      __builtin_trap();
  }
  identity_istio_read(node, &ist, &err);
  identity_istio_cleanup(&ist);
  proxy_id_cleanup(&a);
  proxy_id_cleanup(&b);
  envoy__config__core__v3__node__free_unpacked(node, NULL);
}

static void from_text(const uint8_t *p, size_t n) {
  struct proxy_id id;
  struct xds_err err = {0, ""};
  char *s = xds_strndup((const char *)p, n), *org = NULL;

  memset(&id, 0, sizeof(id));
  identity_from_spiffe((const char *)p, n, &id, &err);
  proxy_id_cleanup(&id);
  if (s == NULL)
    return;
  if (identity_parse_tenant(s, &org) == 0 && org == NULL)
    __builtin_trap();
  xds_free(org);
  identity_namespace_valid(s, strlen(s));
  xds_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  if (data[0] & 1)
    from_text(data + 1, size - 1);
  else
    from_node(data + 1, size - 1);
  return 0;
}
