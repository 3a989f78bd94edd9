/*
 * any_split.c: test helper for upstream_decode.sh. Reads a serialized
 * message of the named type (envoy.config.listener.v3.Listener or
 * envoy.config.core.v3.TypedExtensionConfig), walks it with protobuf-c
 * descriptors, and writes the value of every google.protobuf.Any inside,
 * at any depth, to OUTDIR/<n>.<message full name>.pb, so that protoc can
 * decode each one with the upstream descriptors (protoc --decode prints an
 * Any's value as raw bytes). Nested Anys are split too.
 *
 * Usage: any_split TYPE FILE OUTDIR. Prints the files written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/pb/pbyaml.h"

#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "google/protobuf/any.pb-c.h"

static int counter;

static int walk(const ProtobufCMessage *m, const char *outdir);

static int split_any(const Google__Protobuf__Any *any, const char *outdir) {
  const char *name = strrchr(any->type_url, '/');
  const ProtobufCMessageDescriptor *d;
  ProtobufCMessage *inner;
  char path[4096];
  FILE *f;
  int rc;

  name = name != NULL ? name + 1 : any->type_url;
  snprintf(path, sizeof(path), "%s/%d.%s.pb", outdir, counter++, name);
  f = fopen(path, "wb");
  /* An empty message has no bytes (and may have no buffer at all). */
  if (f == NULL ||
      (any->value.len > 0 &&
       fwrite(any->value.data, 1, any->value.len, f) != any->value.len) ||
      fclose(f) != 0) {
    fprintf(stderr, "any_split: cannot write %s\n", path);
    return -1;
  }
  printf("%s\n", path);
  d = pbyaml_find_type(name);
  if (d == NULL)
    return 0; /* a leaf type (StringValue...): nothing inside */
  inner = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
  if (inner == NULL) {
    fprintf(stderr, "any_split: %s does not decode as %s\n", path, name);
    return -1;
  }
  rc = walk(inner, outdir);
  protobuf_c_message_free_unpacked(inner, NULL);
  return rc;
}

static int walk(const ProtobufCMessage *m, const char *outdir) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;

  if (strcmp(d->name, "google.protobuf.Any") == 0)
    return split_any((const Google__Protobuf__Any *)m, outdir);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      ProtobufCMessage *const *arr =
          *(ProtobufCMessage *const *const *)(base + f->offset);
      for (size_t k = 0; k < n; k++)
        if (walk(arr[k], outdir) < 0)
          return -1;
      continue;
    }
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
      continue;
    if (*(ProtobufCMessage *const *)(base + f->offset) != NULL &&
        walk(*(ProtobufCMessage *const *)(base + f->offset), outdir) < 0)
      return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const ProtobufCMessageDescriptor *d;
  ProtobufCMessage *m;
  unsigned char *buf;
  size_t n;
  FILE *f;
  int rc;

  if (argc != 4) {
    fprintf(stderr, "usage: any_split TYPE FILE OUTDIR\n");
    return 2;
  }
  d = pbyaml_find_type(argv[1]);
  f = fopen(argv[2], "rb");
  if (d == NULL || f == NULL) {
    fprintf(stderr, "any_split: unknown type %s or unreadable %s\n", argv[1],
            argv[2]);
    return 2;
  }
  buf = malloc(4 << 20);
  n = fread(buf, 1, 4 << 20, f);
  fclose(f);
  m = protobuf_c_message_unpack(d, NULL, n, buf);
  free(buf);
  if (m == NULL) {
    fprintf(stderr, "any_split: %s does not decode as %s\n", argv[2], argv[1]);
    return 1;
  }
  rc = walk(m, argv[3]);
  protobuf_c_message_free_unpacked(m, NULL);
  return rc < 0 ? 1 : 0;
}
