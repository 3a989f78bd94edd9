/*
 * fuzz_pbyaml.c: the descriptor-driven YAML/JSON -> protobuf converter
 * (server/pb/pbyaml.h) as a template's typedConfig reaches it. The first
 * byte picks the message type; the rest is YAML (JSON is YAML). The
 * message built is then packed, serialized, and rendered back to JSON by
 * server/pb/pbjson.h.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/log.h"
#include "server/pb/pbjson.h"
#include "server/pb/pbyaml.h"
#include "store/ydoc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HCM                                                                    \
  "envoy.extensions.filters.network.http_connection_manager.v3."               \
  "HttpConnectionManager"

static const char *const TYPES[] = {
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.extensions.filters.http.rbac.v3.RBAC",
    "envoy.extensions.filters.http.wasm.v3.Wasm",
    "envoy.extensions.filters.http.lua.v3.Lua",
    "envoy.extensions.filters.http.cors.v3.Cors",
    "envoy.extensions.filters.http.lua.v3.LuaPerRoute",
    "envoy.extensions.filters.http.cors.v3.CorsPolicy",
    "envoy.config.rbac.v3.RBAC",
    "envoy.config.listener.v3.Listener",
    "envoy.config.core.v3.TypedExtensionConfig",
    HCM,
    "google.protobuf.Struct",
    "google.protobuf.StringValue",
};
#define N_TYPES (sizeof(TYPES) / sizeof(TYPES[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const ProtobufCMessageDescriptor *desc;
  struct ydoc *d = NULL;
  struct xds_err err = {0, ""};
  struct xds_arena a;
  const char *name;

  if (size < 1)
    return 0;
  name = TYPES[data[0] % N_TYPES];
  desc = pbyaml_find_type(name);
  if (desc == NULL)
    __builtin_trap(); /* the table above names only known types */
  ydoc_parse("fuzz.yaml", (const char *)data + 1, size - 1, &d, &err);
  if (d == NULL)
    return 0;
  xds_arena_init(&a, 16u << 20);
  for (size_t i = 0; i < ydoc_count(d) && i < 4; i++) {
    const struct ynode *root = ydoc_root(d, i);
    ProtobufCMessage *m = NULL;
    Google__Protobuf__Any *any = NULL;
    struct pbyaml_fault fault;

    if (pbyaml_to_message(root, desc, "typedConfig", &a, &m, &err) == 0) {
      size_t n = protobuf_c_message_get_packed_size(m);
      uint8_t *buf = xds_arena_alloc(&a, n ? n : 1);
      json_t *j;

      if (buf != NULL) {
        protobuf_c_message_pack(m, buf);
        j = pbjson_bytes(desc, buf, n);
        json_decref(j);
      }
      j = pbjson_message(m);
      json_decref(j);
    }
    if (pbyaml_pack_any_ex(root, "type.googleapis.com/" /* @type decides */, &a,
                           &any, &err, &fault) == 0 &&
        any == NULL)
      __builtin_trap(); /* 0 promises a message */
  }
  xds_arena_cleanup(&a);
  ydoc_free(d);
  return 0;
}
