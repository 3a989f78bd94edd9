/*
 * main.c: wasmxds, the program. Wiring only: flags, the store, the first
 * snapshot, signals, the serving loop.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "encode.h"
#include "snapshot.h"
#include "store/catalog.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "identity.h"
#include "render.h"

#include <jansson.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "xds_server.h"

#define DEFAULT_LISTEN "127.0.0.1:18000"

/* The one global: the server the signal handler stops. */
static struct xds_server *volatile signal_target;

static void on_stop_signal(int sig) {
  (void)sig;
  if (signal_target != NULL)
    xds_server_stop(signal_target);
}

/* Logs every problem of a store load, errors as errors. */
static void log_problems(const struct problems *pb) {
  struct xds_buf line;

  xds_buf_init(&line, 4096);
  for (size_t i = 0; i < problems_count(pb); i++) {
    const struct problem *p = problems_at(pb, i);
    xds_buf_reset(&line);
    if (problem_format(p, &line) < 0)
      continue;
    if (p->severity == PROBLEM_ERROR)
      XDS_LOGE("%s", line.data);
    else
      XDS_LOGW("%s", line.data);
  }
  if (pb->dropped > 0)
    XDS_LOGE("... and %zu more problems", pb->dropped);
  xds_buf_cleanup(&line);
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: wasmxds [serve] [OPTION]...\n"
          "       wasmxds validate PATH\n"
          "       wasmxds render --store PATH --node-id ID [--cluster NAME]\n"
          "                      [--metadata KEY=VALUE]... [OPTION]...\n"
          "Serve WebAssembly HTTP filters to Envoy over xDS (LDS + ECDS).\n"
          "\n"
          "validate loads a store exactly as the server does, prints every\n"
          "problem and a summary, and exits 1 when there is an error.\n"
          "render prints, as JSON, what the proxy described by --node-id,\n"
          "--cluster and --metadata would receive, and why each extension is\n"
          "in or out. VALUE may be a JSON object (for wasmxds.labels).\n"
          "\n"
          "  --listen HOST:PORT     address of the xDS gRPC server "
          "(default " DEFAULT_LISTEN ")\n"
          "  --store PATH           YAML file or directory of WasmExtension "
          "and\n"
          "                         ListenerTemplate documents (required)\n"
          "  --module-cluster NAME  Envoy cluster through which remote "
          "modules are\n"
          "                         fetched (default " ENCODE_DEFAULT_MODULE_CLUSTER
          ")\n"
          "  --ecds-fetch-timeout MS  initial_fetch_timeout of each ECDS "
          "reference;\n"
          "                         0 (default) waits for the config\n"
          "  --inline-wasm          put Wasm configs inline in listeners "
          "instead of\n"
          "                         ECDS references (every change drains "
          "listeners)\n"
          "  --log-level LEVEL      error, warn, info (default) or debug\n"
          "  -h, --help             print this help and exit\n"
          "  -V, --version          print the version and exit\n");
}

enum {
  OPT_LISTEN = 256,
  OPT_STORE,
  OPT_LOG_LEVEL,
  OPT_MODULE_CLUSTER,
  OPT_ECDS_FETCH_TIMEOUT,
  OPT_INLINE_WASM
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"store", required_argument, NULL, OPT_STORE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"module-cluster", required_argument, NULL, OPT_MODULE_CLUSTER},
    {"ecds-fetch-timeout", required_argument, NULL, OPT_ECDS_FETCH_TIMEOUT},
    {"inline-wasm", no_argument, NULL, OPT_INLINE_WASM},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

static int parse_ms(const char *flag, const char *s, uint32_t *out) {
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > 86400000UL) {
    fprintf(stderr, "wasmxds: %s: \"%s\" is not a number of milliseconds "
                    "between 0 and 86400000\n",
            flag, s);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

static int cmd_serve(int argc, char **argv) {
  struct xds_server_config scfg = {DEFAULT_LISTEN, 0};
  struct encode_opts eopts;
  struct xds_server *server = NULL;
  struct snapshot *snap = NULL;
  struct catalog *cat = NULL;
  struct problems problems;
  struct xds_err err;
  const char *store = NULL;
  enum xds_log_level level;
  struct sigaction sa;
  int c, rc, status = EXIT_FAILURE;

  encode_opts_default(&eopts);
  while ((c = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
    switch (c) {
    case OPT_LISTEN:
      scfg.listen = optarg;
      break;
    case OPT_STORE:
      store = optarg;
      break;
    case OPT_LOG_LEVEL:
      if (xds_log_parse_level(optarg, &level) < 0) {
        fprintf(stderr, "wasmxds: --log-level: \"%s\" is not one of error, "
                        "warn, info, debug\n",
                optarg);
        return EXIT_FAILURE;
      }
      xds_log_set_level(level);
      break;
    case OPT_MODULE_CLUSTER:
      if (optarg[0] == '\0') {
        fprintf(stderr, "wasmxds: --module-cluster: must not be empty\n");
        return EXIT_FAILURE;
      }
      eopts.module_cluster = optarg;
      break;
    case OPT_ECDS_FETCH_TIMEOUT:
      if (parse_ms("--ecds-fetch-timeout", optarg,
                   &eopts.ecds_fetch_timeout_ms) < 0)
        return EXIT_FAILURE;
      break;
    case OPT_INLINE_WASM:
      eopts.inline_wasm = 1;
      break;
    case 'h':
      usage(stdout);
      return EXIT_SUCCESS;
    case 'V':
      printf("wasmxds %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    default:
      usage(stderr);
      return EXIT_FAILURE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "wasmxds: unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return EXIT_FAILURE;
  }
  if (store == NULL) {
    fprintf(stderr, "wasmxds: --store PATH is required\n");
    usage(stderr);
    return EXIT_FAILURE;
  }

  problems_init(&problems, PROBLEMS_DEFAULT_MAX);
  rc = file_store_load(store, NULL, &cat, &problems, &err);
  log_problems(&problems);
  if (rc < 0) {
    XDS_LOGE("store %s: %s", store, err.msg);
    goto out;
  }
  XDS_LOGI("loaded store %s: %zu extensions, %zu listener templates, %zu "
           "problems",
           store, catalog_ext_count(cat), catalog_tmpl_count(cat), problems_count(&problems));
  rc = snapshot_build(cat, &eopts, 1, &snap, &err);
  if (rc < 0) {
    XDS_LOGE("%s", err.msg);
    goto out;
  }
  rc = xds_server_new(&scfg, &server, &err);
  if (rc < 0) {
    XDS_LOGE("%s", err.msg);
    goto out;
  }
  xds_server_publish(server, snap);

  signal_target = server;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  xds_server_run(server);
  signal_target = NULL;
  XDS_LOGI("stopped");
  status = EXIT_SUCCESS;
out:
  xds_server_free(server);
  snapshot_unref(snap);
  catalog_unref(cat);
  problems_cleanup(&problems);
  return status;
}

/* Loads a store for a one-shot command: every problem is printed to out,
 * templates whose native filters do not convert are reported too. Returns
 * the number of errors, or -1 when the store cannot be read at all. */
static int load_for_command(const char *path, struct catalog **cat, FILE *out) {
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf line;
  int errors;

  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  if (file_store_load(path, NULL, cat, &pb, &err) < 0) {
    fprintf(stderr, "wasmxds: %s: %s\n", path, err.msg);
    problems_cleanup(&pb);
    return -1;
  }
  for (size_t i = 0; i < catalog_tmpl_count(*cat); i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(*cat, i);
    if (encode_check_template(t, &err) < 0)
      problems_add(&pb, PROBLEM_ERROR, t->loc.source, t->loc.line,
                   t->loc.column, "spec.httpFilters", "%s", err.msg);
  }
  xds_buf_init(&line, 8192);
  for (size_t i = 0; i < problems_count(&pb); i++) {
    xds_buf_reset(&line);
    if (problem_format(problems_at(&pb, i), &line) == 0)
      fprintf(out, "%s\n", line.data);
  }
  xds_buf_cleanup(&line);
  if (pb.dropped > 0)
    fprintf(out, "... and %zu more problems\n", pb.dropped);
  errors = (int)pb.n_errors;
  fprintf(out, "%s: %zu extensions, %zu listener templates, %zu errors, %zu "
               "warnings\n",
          path, catalog_ext_count(*cat), catalog_tmpl_count(*cat),
          pb.n_errors, pb.n_warnings);
  problems_cleanup(&pb);
  return errors;
}

static int cmd_validate(int argc, char **argv) {
  struct catalog *cat = NULL;
  int errors;

  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "Usage: wasmxds validate PATH\n");
    return 2;
  }
  errors = load_for_command(argv[1], &cat, stdout);
  catalog_unref(cat);
  return errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

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
        fprintf(stderr, "wasmxds: --metadata %s: values must be strings "
                        "(at most 64)\n", kv);
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

static int cmd_render(int argc, char **argv) {
  static const struct option opts[] = {
      {"store", required_argument, NULL, 's'},
      {"node-id", required_argument, NULL, 'n'},
      {"cluster", required_argument, NULL, 'c'},
      {"metadata", required_argument, NULL, 'm'},
      {"module-cluster", required_argument, NULL, OPT_MODULE_CLUSTER},
      {"ecds-fetch-timeout", required_argument, NULL, OPT_ECDS_FETCH_TIMEOUT},
      {"inline-wasm", no_argument, NULL, OPT_INLINE_WASM},
      {NULL, 0, NULL, 0}};
  Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
  struct meta_builder *mb = calloc(1, sizeof(*mb));
  struct encode_opts eopts;
  struct catalog *cat = NULL;
  struct snapshot *snap = NULL;
  struct proxy_id pid = {0};
  struct xds_err err = {0, ""};
  const char *store = NULL;
  json_t *out = NULL;
  int c, status = 2;

  if (mb == NULL)
    return 2;
  encode_opts_default(&eopts);
  google__protobuf__struct__init(&mb->st);
  mb->st.fields = mb->entries;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      store = optarg;
      break;
    case 'n':
      node.id = optarg;
      break;
    case 'c':
      node.cluster = optarg;
      break;
    case 'm':
      if (meta_add(mb, optarg) < 0)
        goto out;
      break;
    case OPT_MODULE_CLUSTER:
      eopts.module_cluster = optarg;
      break;
    case OPT_ECDS_FETCH_TIMEOUT:
      if (parse_ms("--ecds-fetch-timeout", optarg,
                   &eopts.ecds_fetch_timeout_ms) < 0)
        goto out;
      break;
    case OPT_INLINE_WASM:
      eopts.inline_wasm = 1;
      break;
    default:
      usage(stderr);
      goto out;
    }
  }
  if (store == NULL || node.id == NULL) {
    fprintf(stderr, "wasmxds render: --store and --node-id are required\n");
    goto out;
  }
  node.metadata = &mb->st;
  if (identity_from_node(&node, &pid, &err) < 0) {
    fprintf(stderr, "wasmxds render: %s\n", err.msg);
    goto out;
  }
  if (load_for_command(store, &cat, stderr) != 0)
    goto out;
  if (snapshot_build(cat, &eopts, 1, &snap, &err) < 0) {
    fprintf(stderr, "wasmxds render: %s\n", err.msg);
    goto out;
  }
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
  for (size_t i = 0; i < mb->n_nested; i++)
    json_decref(mb->json[i]);
  free(mb);
  return status;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "validate") == 0)
    return cmd_validate(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "render") == 0)
    return cmd_render(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "serve") == 0)
    return cmd_serve(argc - 1, argv + 1);
  return cmd_serve(argc, argv);
}
