/*
 * bench_node.c: the simulated proxies' Envoy Node (bench_node.h).
 */
#include "bench_node.h"

static Google__Protobuf__Value *str_value(Google__Protobuf__Value *v,
                                          const char *s) {
  google__protobuf__value__init(v);
  v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  v->string_value = (char *)s;
  return v;
}

void bench_node_fill(struct bench_node *n, const char *id, const char *cluster,
                     const char *tenant, const char *mode, const char *app,
                     const char *version) {
  envoy__config__core__v3__node__init(&n->node);
  google__protobuf__struct__init(&n->md);
  google__protobuf__struct__init(&n->labels);
  for (int i = 0; i < 3; i++) {
    google__protobuf__struct__fields_entry__init(&n->e[i]);
    n->ep[i] = &n->e[i];
  }
  for (int i = 0; i < 2; i++) {
    google__protobuf__struct__fields_entry__init(&n->le[i]);
    n->lep[i] = &n->le[i];
  }
  n->e[0].key = "wasmxds.tenant";
  n->e[0].value = str_value(&n->v[0], tenant);
  n->e[1].key = "wasmxds.mode";
  n->e[1].value = str_value(&n->v[1], mode);
  n->le[0].key = "app";
  n->le[0].value = str_value(&n->lv[0], app);
  n->le[1].key = "version";
  n->le[1].value = str_value(&n->lv[1], version);
  n->labels.n_fields = 2;
  n->labels.fields = n->lep;
  google__protobuf__value__init(&n->v[2]);
  n->v[2].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
  n->v[2].struct_value = &n->labels;
  n->e[2].key = "wasmxds.labels";
  n->e[2].value = &n->v[2];
  n->md.n_fields = 3;
  n->md.fields = n->ep;
  n->node.id = (char *)id;
  n->node.cluster = (char *)cluster;
  n->node.metadata = &n->md;
  n->node.user_agent_name = "envoy";
}
