/*
 * fuzz_etcd.c: what the etcd JSON gateway answers (store/etcd_proto.h):
 * a range response (header, kvs[], more) or one watch message (result:
 * header, events[] with kv, compact_revision, canceled), or an error body,
 * read as store/etcd_client.c and store/etcd_watch.c read them; every key
 * and value then goes into the etcd store (store/etcd_store.h), which
 * decodes the values (YAML of any kind) and builds a catalog, as a watch
 * does.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "store/catalog.h"
#include "store/etcd_proto.h"
#include "store/etcd_store.h"
#include "store/problems.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

static void put_kv(struct etcd_store *s, const json_t *obj, int del) {
  struct etcd_kv kv;
  struct xds_err err = {0, ""};

  memset(&kv, 0, sizeof(kv));
  if (etcd_parse_kv(obj, &kv, &err) == 0) {
    if (kv.key == NULL || kv.value == NULL || strlen(kv.key) > kv.key_len ||
        kv.value[kv.value_len] != '\0')
      __builtin_trap(); /* decoded and NUL-terminated, as promised */
    if (del)
      etcd_store_delete(s, kv.key);
    else
      etcd_store_put(s, kv.key, kv.value, kv.value_len, kv.mod_revision);
  }
  etcd_kv_cleanup(&kv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t jerr;
  json_t *msg = json_loadb((const char *)data, size, 0, &jerr);
  const json_t *res, *v;
  struct etcd_store *s = NULL;
  struct etcd_header h;
  struct catalog *cat = NULL;
  struct problems pb;
  const char *emsg;
  int64_t i64;
  uint64_t u64;
  int code;
  size_t i;

  problems_init(&pb, 100);
  if (msg == NULL)
    goto out;
  if (etcd_error_of(msg, &code, &emsg) && emsg == NULL)
    __builtin_trap();
  etcd_parse_header(msg, &h);
  etcd_json_int64(json_object_get(msg, "count"), &i64);
  etcd_json_uint64(json_object_get(msg, "count"), &u64);
  s = etcd_store_new("/wasmxds", NULL);
  if (s == NULL)
    goto out;
  json_array_foreach(json_object_get(msg, "kvs"), i, v) put_kv(s, v, 0);
  res = json_object_get(msg, "result");
  if (json_is_object(res)) {
    etcd_parse_header(res, &h);
    etcd_json_int64(json_object_get(res, "compact_revision"), &i64);
    json_array_foreach(json_object_get(res, "events"), i, v) {
      const json_t *type = json_object_get(v, "type");

      put_kv(s, json_object_get(v, "kv"),
             json_is_string(type) &&
                 strcmp(json_string_value(type), "DELETE") == 0);
    }
  }
  if (etcd_store_build(s, &cat, &pb) == 0)
    catalog_unref(cat);
out:
  etcd_store_free(s);
  problems_cleanup(&pb);
  json_decref(msg);
  return 0;
}
