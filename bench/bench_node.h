/*
 * bench_node.h: the Envoy Node the benchmarks' simulated proxies send
 * (id, cluster, user agent "envoy", metadata wasmxds.tenant, wasmxds.mode
 * and wasmxds.labels {app, version}), built in a caller's struct without
 * allocating; shared by bench/loadgen and bench/ack_bench.
 */
#ifndef WASMXDS_BENCH_NODE_H
#define WASMXDS_BENCH_NODE_H

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

/* A Node and every message it points to. */
struct bench_node {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md, labels;
  Google__Protobuf__Struct__FieldsEntry e[3], le[2];
  Google__Protobuf__Struct__FieldsEntry *ep[3], *lep[2];
  Google__Protobuf__Value v[3], lv[2];
};

/* Fills n as that Node. The strings are borrowed: they must outlive every
 * use of n->node (packing it). */
void bench_node_fill(struct bench_node *n, const char *id, const char *cluster,
                     const char *tenant, const char *mode, const char *app,
                     const char *version);

#endif
