/*
 * fuzz_etcd_split.c: the watch stream of the etcd gateway as libcurl
 * hands it over, in pieces (store/etcd_proto.h splitter). The first byte
 * sets the piece size; every message handed out must be one whole
 * top-level value: it starts with '{' and ends with the bracket that
 * closes it, and feeding the same bytes in one piece gives the same messages.
 */
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "store/etcd_proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xds_log_set_level(XDS_LOG_ERROR);
  return 0;
}

/* Every message, each followed by a NUL, so two runs can be compared. */
static int collect(void *ctx, const char *json, size_t len) {
  struct xds_buf *all = ctx;

  /* Brackets are counted together, so "{]" ends a message: the JSON
   * parser refuses it afterwards. */
  if (len < 2 || json[0] != '{' ||
      (json[len - 1] != '}' && json[len - 1] != ']'))
    __builtin_trap();
  if (xds_buf_append(all, json, len) < 0 || xds_buf_putc(all, '\0') < 0)
    return XDS_ENOMEM;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct etcd_splitter a, b;
  struct xds_buf ma, mb;
  size_t piece, at;
  int ra = 0, rb;

  if (size < 1)
    return 0;
  piece = (size_t)data[0] % 17 + 1;
  data++;
  size--;
  etcd_splitter_init(&a, 4096);
  etcd_splitter_init(&b, 4096);
  xds_buf_init(&ma, 1u << 20);
  xds_buf_init(&mb, 1u << 20);
  for (at = 0; at < size && ra == 0; at += piece) {
    size_t n = size - at < piece ? size - at : piece;

    ra = etcd_splitter_feed(&a, (const char *)data + at, n, collect, &ma);
  }
  rb = etcd_splitter_feed(&b, (const char *)data, size, collect, &mb);
  if (ra != rb || ma.len != mb.len ||
      (ma.len > 0 && memcmp(ma.data, mb.data, ma.len) != 0))
    __builtin_trap();
  if (ra == 0 && etcd_splitter_pending(&a) != etcd_splitter_pending(&b))
    __builtin_trap();
  xds_buf_cleanup(&ma);
  xds_buf_cleanup(&mb);
  etcd_splitter_cleanup(&a);
  etcd_splitter_cleanup(&b);
  return 0;
}
