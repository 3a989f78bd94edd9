/*
 * cmd_render.c: wasmxds render: prints, as JSON, what one proxy would
 * receive from a store and why each extension is in or out; with
 * --dump-dir, the exact bytes of each resource; with --fetch-modules, the
 * modules resolved as the server would.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "base/fsdir.h"
#include "modules/resolver.h"
#include "server/admin/render.h"
#include "server/app/cmd.h"
#include "server/app/flags.h"
#include "server/compose/chain.h"
#include "server/compose/delivery.h"
#include "server/compose/identity.h"
#include "server/compose/snapshot.h"

/* Metadata built from --metadata KEY=VALUE flags. */
struct meta_builder {
  Google__Protobuf__Struct st;
  Google__Protobuf__Struct__FieldsEntry *entries[64];
  Google__Protobuf__Struct__FieldsEntry e[64];
  Google__Protobuf__Value v[64];
  /* Labels given as a JSON object: one nested struct per flag. */
  Google__Protobuf__Struct nested[8];
  Google__Protobuf__Struct__FieldsEntry *nested_entries[8][64];
  Google__Protobuf__Struct__FieldsEntry ne[8][64];
  Google__Protobuf__Value nv[8][64];
  size_t n_nested;
  json_t *json[8];
};

static int meta_add(struct meta_builder *m, char *kv) {
  char *eq = strchr(kv, '=');
  size_t i = m->st.n_fields;
  Google__Protobuf__Value *v;

  if (eq == NULL || eq == kv) {
    fprintf(stderr, "wasmxds: --metadata \"%s\": expected KEY=VALUE\n", kv);
    return -1;
  }
  if (i == 64) {
    fprintf(stderr, "wasmxds: more than 64 --metadata flags\n");
    return -1;
  }
  *eq = '\0';
  google__protobuf__struct__fields_entry__init(&m->e[i]);
  v = &m->v[i];
  google__protobuf__value__init(v);
  m->e[i].key = kv;
  m->e[i].value = v;
  if (eq[1] == '{') {
    json_error_t jerr;
    const char *k;
    json_t *val, *obj;
    size_t n = m->n_nested, j = 0;
    if (n == 8) {
      fprintf(stderr, "wasmxds: more than 8 JSON --metadata values\n");
      return -1;
    }
    obj = json_loads(eq + 1, 0, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
      fprintf(stderr, "wasmxds: --metadata %s: not a JSON object: %s\n", kv,
              obj == NULL ? jerr.text : "another JSON value");
      json_decref(obj);
      return -1;
    }
    m->json[n] = obj;
    m->n_nested++;
    google__protobuf__struct__init(&m->nested[n]);
    json_object_foreach(obj, k, val) {
      if (j == 64 || !json_is_string(val)) {
        fprintf(stderr,
                "wasmxds: --metadata %s: values must be strings "
                "(at most 64)\n",
                kv);
        return -1;
      }
      google__protobuf__struct__fields_entry__init(&m->ne[n][j]);
      google__protobuf__value__init(&m->nv[n][j]);
      m->nv[n][j].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
      m->nv[n][j].string_value = (char *)json_string_value(val);
      m->ne[n][j].key = (char *)k;
      m->ne[n][j].value = &m->nv[n][j];
      m->nested_entries[n][j] = &m->ne[n][j];
      j++;
    }
    m->nested[n].fields = m->nested_entries[n];
    m->nested[n].n_fields = j;
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    v->struct_value = &m->nested[n];
  } else {
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = eq + 1;
  }
  m->entries[i] = &m->e[i];
  m->st.n_fields++;
  return 0;
}

/* Writes one file of serialized bytes. */
static int write_file(const char *dir, const char *prefix, const char *name,
                      const uint8_t *p, size_t n) {
  char path[4096];
  FILE *f;
  int len = snprintf(path, sizeof(path), "%s/%s-", dir, prefix);

  for (const char *c = name; *c && len < (int)sizeof(path) - 8; c++)
    path[len++] = *c == '/' ? '_' : *c;
  snprintf(path + len, sizeof(path) - (size_t)len, ".pb");
  f = fopen(path, "wb");
  if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "wasmxds render: cannot write %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  return 0;
}

/* render --dump-dir: the exact bytes the proxy would be sent, one file per
 * resource (lds-<listener>.pb: envoy.config.listener.v3.Listener;
 * ecds-<fqn or slot name with / as _>.pb:
 * envoy.config.core.v3.TypedExtensionConfig),
 * for protoc --decode or any other tool. */
static int dump_resources(struct snapshot *snap, const struct proxy_id *pid,
                          const char *dir) {
  const struct catalog *cat = snapshot_catalog(snap);
  const struct xds_class *cls;

  if (snapshot_class(snap, pid, &cls) < 0)
    return -1;
  for (size_t i = 0; i < cls->n_listeners; i++)
    if (write_file(dir, "lds", cls->listeners[i].name, cls->listeners[i].bytes,
                   cls->listeners[i].len) < 0)
      return -1;
  for (size_t i = 0; i < catalog_ext_count(cat); i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    const struct xds_resource *r = snapshot_ecds(snap, e->fqn);
    if (!chain_ext_visible(e, pid))
      continue;
    if (write_file(dir, "ecds", e->fqn, r->bytes, r->len) < 0)
      return -1;
  }
  /* --ecds-slots: each slot's config, as ecds-<slot name>.pb too. */
  for (size_t i = 0; i < cls->n_slots; i++)
    if (write_file(dir, "ecds", cls->slots[i].name, cls->slots[i].bytes,
                   cls->slots[i].len) < 0)
      return -1;
  return 0;
}

/*
 * render --fetch-modules: resolves every module of cat as the server
 * would (same cache, pull secrets and limits) and waits until none is
 * still being fetched, at most one fetch timeout plus 5 s; what is still
 * pending then renders as its substitute. Returns 0 with *out, or -1
 * (said on stderr).
 */
static int render_fetch(const struct delivery_config *dcfg, struct catalog *cat,
                        struct delivery **out) {
  struct xds_err err = {0, ""};
  long limit_ms = (dcfg->fetch_timeout_ms > 0 ? dcfg->fetch_timeout_ms
                                              : RESOLVER_DEFAULT_TIMEOUT_MS) +
                  5000,
       waited = 0, pending = 1;

  if (delivery_new(dcfg, out, &err) < 0) {
    fprintf(stderr, "wasmxds render: module fetching: %s\n", err.msg);
    return -1;
  }
  if (delivery_update(*out, cat) < 0) {
    fprintf(stderr, "wasmxds render: out of memory\n");
    return -1;
  }
  while (waited < limit_ms && (pending = delivery_pending(*out)) > 0) {
    struct timespec ts = {0, 50 * 1000000L};

    nanosleep(&ts, NULL);
    waited += 50;
  }
  if (pending < 0) {
    fprintf(stderr, "wasmxds render: out of memory\n");
    return -1;
  }
  if (pending > 0)
    fprintf(stderr,
            "wasmxds render: %ld modules still being fetched after "
            "%ld ms; they render as their substitute\n",
            pending, waited);
  return 0;
}

int cmd_render(int argc, char **argv) {
  Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
  struct render_config cfg;
  struct delivery *delivery = NULL;
  struct meta_builder *mb = xds_calloc(1, sizeof(*mb));
  struct catalog *cat = NULL;
  struct snapshot *snap = NULL;
  struct proxy_id pid = {0};
  struct xds_err err = {0, ""};
  json_t *out = NULL;
  int status = 2;

  switch (flags_parse_render(argc, argv, &cfg)) {
  case FLAGS_EXIT:
    status = EXIT_SUCCESS;
    goto out;
  case FLAGS_ERROR:
    goto out;
  default:
    break;
  }
  if (mb == NULL)
    goto out;
  google__protobuf__struct__init(&mb->st);
  mb->st.fields = mb->entries;
  for (size_t i = 0; i < cfg.n_metadata; i++)
    if (meta_add(mb, cfg.metadata[i]) < 0)
      goto out;
  node.id = (char *)cfg.node_id;
  node.cluster = (char *)cfg.cluster;
  node.metadata = &mb->st;
  if (identity_from_node(&node, &pid, &err) < 0) {
    fprintf(stderr, "wasmxds render: %s\n", err.msg);
    goto out;
  }
  pid.root_namespace = cfg.encode.istio_root_namespace;
  /* Problems go to stderr; like the server, render serves what is valid. */
  if (cmd_load_store(cfg.store, &cfg.etcd, &cat, stderr) < 0)
    goto out;
  if (cfg.fetch_modules && cfg.modules.fetch &&
      render_fetch(&cfg.modules.delivery, cat, &delivery) < 0)
    goto out;
  if (delivery != NULL) {
    cfg.encode.module_of = delivery_module_of;
    cfg.encode.module_ctx = delivery;
  } else if (cfg.modules.fetch) {
    /* The server fetches modules: decide as it does, and say plainly
     * which modules render did not fetch. (--no-module-fetch keeps the
     * default, as the server does with it.) */
    cfg.encode.module_of = delivery_module_unfetched;
    cfg.encode.module_ctx = &cfg.modules.delivery;
  }
  if (snapshot_build(cat, &cfg.encode, 1, &snap, &err) < 0) {
    fprintf(stderr, "wasmxds render: %s\n", err.msg);
    goto out;
  }
  if (cfg.dump_dir != NULL) {
    int rc = xds_mkdir_p(cfg.dump_dir, 0755);

    if (rc < 0) {
      fprintf(stderr, "wasmxds render: --dump-dir %s: cannot create: %s\n",
              cfg.dump_dir, rc == XDS_EIO ? strerror(errno) : xds_strerror(rc));
      goto out;
    }
  }
  if (cfg.dump_dir != NULL && dump_resources(snap, &pid, cfg.dump_dir) < 0)
    goto out;
  out = render_proxy(snap, &pid);
  if (out == NULL || json_dumpf(out, stdout, JSON_INDENT(2)) < 0) {
    fprintf(stderr, "wasmxds render: out of memory\n");
    goto out;
  }
  putchar('\n');
  status = EXIT_SUCCESS;
out:
  json_decref(out);
  snapshot_unref(snap);
  catalog_unref(cat);
  proxy_id_cleanup(&pid);
  delivery_free(delivery);
  if (mb != NULL)
    for (size_t i = 0; i < mb->n_nested; i++)
      json_decref(mb->json[i]);
  xds_free(mb);
  flags_render_cleanup(&cfg);
  return status;
}
