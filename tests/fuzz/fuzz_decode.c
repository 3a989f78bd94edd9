/*
 * fuzz_decode.c: YAML text as the file store or an etcd value holds it,
 * through the composer (store/ydoc.h), list expansion and the decoder of
 * every kind (store/decode.h: WasmExtension, ListenerTemplate, WasmPlugin
 * and their lists), then into a catalog and a snapshot as a reload does.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h"
#include "base/log.h"
#include "server/compose/encode.h"
#include "server/compose/snapshot.h"
#include "store/catalog.h"
#include "store/decode.h"
#include "store/problems.h"
#include "store/ydoc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

static void add_one(struct catalog_builder *b, const struct ynode *doc,
                    struct problems *pb) {
  struct decode_result r = {0};

  if (decode_document(doc, pb, &r) == 0) {
    if (r.ext != NULL) {
      catalog_builder_add_ext(b, r.ext, pb);
      r.ext = NULL;
    } else if (r.tmpl != NULL) {
      catalog_builder_add_tmpl(b, r.tmpl, pb);
      r.tmpl = NULL;
    }
  }
  decode_result_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ydoc *d = NULL;
  struct problems pb;
  struct catalog_builder *b;
  struct catalog *cat = NULL;
  struct xds_err err = {0, ""};

  problems_init(&pb, 200);
  ydoc_parse("fuzz.yaml", (const char *)data, size, &d, &err);
  b = catalog_builder_new();
  if (d == NULL || b == NULL)
    goto out;
  for (size_t i = 0; i < ydoc_count(d); i++) {
    const struct ynode *doc = ydoc_root(d, i), *items = NULL;
    char *json = NULL;

    if (decode_list(doc, &pb, &items) == 1) {
      for (size_t k = 0; k < ynode_len(items) && k < 64; k++)
        add_one(b, ynode_seq_item(items, k), &pb);
    } else {
      add_one(b, doc, &pb);
    }
    if (decode_json(doc, 4096, &json, &err) == 0)
      xds_free(json);
  }
  if (catalog_builder_finish(b, &pb, &cat) == 0) {
    struct encode_opts o;
    struct snapshot *s = NULL;

    encode_opts_default(&o);
    if (snapshot_build(cat, &o, 1, &s, NULL) == 0)
      snapshot_unref(s);
    catalog_unref(cat);
  }
  b = NULL;
out:
  catalog_builder_free(b);
  ydoc_free(d);
  problems_cleanup(&pb);
  return 0;
}
