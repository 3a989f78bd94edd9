/*
 * check_istio.h: the test cases of tests/check_istio, one TCase per file
 * (README "Coming from Istio"; issue 15).
 */
#ifndef XDS_CHECK_ISTIO_H
#define XDS_CHECK_ISTIO_H

#include <check.h>
#include <stdarg.h>
#include <string.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

TCase *istio_identity_tcase(void);
TCase *istio_decode_tcase(void);
TCase *istio_store_tcase(void);
TCase *istio_etcd_tcase(void);
TCase *istio_oci_tcase(void);

/* A Node on the stack: up to 8 metadata fields, strings or one struct. */
struct tnode {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md, labels;
  Google__Protobuf__Struct__FieldsEntry e[8], le[8];
  Google__Protobuf__Struct__FieldsEntry *ep[8], *lep[8];
  Google__Protobuf__Value v[8], lv[8];
};

static inline void tnode_init(struct tnode *t, const char *id) {
  memset(t, 0, sizeof(*t));
  envoy__config__core__v3__node__init(&t->node);
  google__protobuf__struct__init(&t->md);
  google__protobuf__struct__init(&t->labels);
  t->node.id = (char *)id;
  t->node.metadata = &t->md;
  t->md.fields = t->ep;
  t->labels.fields = t->lep;
}

static inline void tnode_str(struct tnode *t, const char *key,
                             const char *value) {
  size_t i = t->md.n_fields++;

  google__protobuf__struct__fields_entry__init(&t->e[i]);
  google__protobuf__value__init(&t->v[i]);
  t->e[i].key = (char *)key;
  t->e[i].value = &t->v[i];
  t->v[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  t->v[i].string_value = (char *)value;
  t->ep[i] = &t->e[i];
}

/* key holds a struct of the labels "k", "v", ..., NULL. */
static inline void tnode_labels(struct tnode *t, const char *key, ...) {
  size_t i = t->md.n_fields++;
  va_list ap;
  const char *k;

  google__protobuf__struct__fields_entry__init(&t->e[i]);
  google__protobuf__value__init(&t->v[i]);
  t->e[i].key = (char *)key;
  t->e[i].value = &t->v[i];
  t->v[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
  t->v[i].struct_value = &t->labels;
  t->ep[i] = &t->e[i];
  va_start(ap, key);
  while ((k = va_arg(ap, const char *)) != NULL) {
    size_t j = t->labels.n_fields++;

    google__protobuf__struct__fields_entry__init(&t->le[j]);
    google__protobuf__value__init(&t->lv[j]);
    t->le[j].key = (char *)k;
    t->le[j].value = &t->lv[j];
    t->lv[j].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    t->lv[j].string_value = va_arg(ap, char *);
    t->lep[j] = &t->le[j];
  }
  va_end(ap);
}

#endif
