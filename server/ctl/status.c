/*
 * status.c: `wasmxdsctl status`, the fleet as the servers see it, over
 * CSDS (server/transport/csds_client.h, a header free of gRPC).
 *
 *   wasmxdsctl status [PROXY | REF] [--server HOST:PORT]... [-o json|yaml|wide]
 *                     [--tls-ca F [--tls-cert F --tls-key F]
 *                      [--tls-server-name N]] [--timeout-ms N]
 *
 * Every server is asked with FetchClientStatus; each proxy is listed with
 * the server it is connected to. Per proxy and served type (LDS, ECDS) one
 * state sums up its resources: NACKED if any was rejected, else STALE if
 * any was sent and not answered, else NOT SENT if any was asked for and
 * not sent (a name that does not exist included) or none was asked for,
 * else SYNCED. With PROXY, its listeners and their HTTP filters in order,
 * with what each filter is served as and its state.
 */
#include "server/ctl/status.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "server/transport/csds_client.h"
#include "store/model.h"

#include "envoy/admin/v3/config_dump_shared.pb-c.h"
#include "envoy/config/core/v3/extension.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/service/status/v3/csds.pb-c.h"

/* Servers one run may ask. */
#define STATUS_MAX_SERVERS 32

#define TYPE_PREFIX "type.googleapis.com/"
#define T_LISTENER TYPE_PREFIX "envoy.config.listener.v3.Listener"
#define T_ECDS TYPE_PREFIX "envoy.config.core.v3.TypedExtensionConfig"
#define T_HCM                                                                  \
  TYPE_PREFIX                                                                  \
  "envoy.extensions.filters.network.http_connection_manager.v3."               \
  "HttpConnectionManager"
#define T_WASM TYPE_PREFIX "envoy.extensions.filters.http.wasm.v3.Wasm"
#define T_RBAC TYPE_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"

typedef Envoy__Service__Status__V3__ClientStatusResponse Resp;
typedef Envoy__Service__Status__V3__ClientConfig Config;
typedef Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig Generic;

enum sync_state { S_SYNCED, S_NOT_SENT, S_STALE, S_NACKED };
static const char *const state_names[] = {"SYNCED", "NOT SENT", "STALE",
                                          "NACKED"};

static void usage(FILE *f) {
  fprintf(
      f, "Usage: wasmxdsctl status [PROXY | REF] [--server HOST:PORT]... [-o "
         "FORMAT]\n"
         "Show every proxy connected to the servers (over CSDS), one line "
         "each, or with\n"
         "PROXY its listeners and HTTP filters in order, each with what it is "
         "served as\n"
         "and its acknowledgement state. With REF (WasmExtension/ORG/NAME, "
         "WasmPlugin/NS/NAME,\n"
         "WasmDeployment/NS/NAME or an fqn) that resource's state on every "
         "proxy sent it:\n"
         "DEPLOYMENT_FAILED, DEPLOYMENT_PENDING or FILTERS_DEPLOYED (exit 0 "
         "when all are\n"
         "deployed, 4 when no proxy was sent it, 6 otherwise).\n"
         "\n"
         "  --server HOST:PORT     a wasmxds xDS address; repeat for each "
         "replica\n"
         "                         (default $WASMXDS_SERVER, else "
         "127.0.0.1:18000)\n"
         "  -o, --output FORMAT    wide, json or yaml (default: a table)\n"
         "  --tls-ca FILE          use TLS, verify the servers with this CA\n"
         "  --tls-cert FILE, --tls-key FILE\n"
         "                         client certificate and key (servers with "
         "mutual TLS)\n"
         "  --tls-server-name NAME name to verify in the server "
         "certificates\n"
         "  --timeout-ms N         per server (default 10000)\n"
         "\n"
         "States: SYNCED (every resource acknowledged), STALE (sent, no answer "
         "yet),\n"
         "NACKED (rejected), NOT SENT (asked for and not sent, or does not "
         "exist).\n"
         "Exit status: 0 every proxy SYNCED, 2 usage, 4 PROXY not found, 6 "
         "some proxy\n"
         "not SYNCED, 7 a server could not be asked (the others are still "
         "shown).\n");
}

/* ---- reading what CSDS says --------------------------------------------- */

static const Google__Protobuf__Value *meta(const Config *c, const char *key) {
  const Google__Protobuf__Struct *md =
      c->node != NULL ? c->node->metadata : NULL;

  for (size_t i = 0; md != NULL && i < md->n_fields; i++)
    if (strcmp(md->fields[i]->key, key) == 0)
      return md->fields[i]->value;
  return NULL;
}

static const char *meta_str(const Config *c, const char *key, const char *sub) {
  const Google__Protobuf__Value *v = meta(c, key);

  if (v != NULL && sub != NULL &&
      v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE) {
    const Google__Protobuf__Struct *st = v->struct_value;
    v = NULL;
    for (size_t i = 0; i < st->n_fields; i++)
      if (strcmp(st->fields[i]->key, sub) == 0)
        v = st->fields[i]->value;
  } else if (sub != NULL) {
    v = NULL;
  }
  if (v == NULL || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
    return NULL;
  return v->string_value;
}

static const char *client_status_name(int cs) {
  switch (cs) {
  case ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__REQUESTED:
    return "REQUESTED";
  case ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__DOES_NOT_EXIST:
    return "DOES_NOT_EXIST";
  case ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED:
    return "ACKED";
  case ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED:
    return "NACKED";
  default:
    return "UNKNOWN";
  }
}

/* One resource's state in the four the table shows. */
static enum sync_state res_state(const Generic *g) {
  if (g->client_status == ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED)
    return S_NACKED;
  if (g->config_status == ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__STALE)
    return S_STALE;
  if (g->client_status == ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED)
    return S_SYNCED;
  return S_NOT_SENT;
}

/* The state of a type: the worst of its resources; NOT SENT when none. */
static enum sync_state type_state(const Config *c, const char *type_url,
                                  size_t *n) {
  enum sync_state s = S_SYNCED;

  *n = 0;
  for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
    const Generic *g = c->generic_xds_configs[i];
    enum sync_state r;
    if (strcmp(g->type_url, type_url) != 0)
      continue;
    (*n)++;
    r = res_state(g);
    if (r > s)
      s = r;
  }
  return *n == 0 ? S_NOT_SENT : s;
}

static const Generic *find_res(const Config *c, const char *type_url,
                               const char *name) {
  for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
    const Generic *g = c->generic_xds_configs[i];
    if (strcmp(g->type_url, type_url) == 0 && strcmp(g->name, name) == 0)
      return g;
  }
  return NULL;
}

/* What an ECDS resource is served as: the Wasm module (its sha256, file or
 * inline code), or an RBAC substitute. A new string in buf. */
static const char *served_as(const Google__Protobuf__Any *any, char *buf,
                             size_t size) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;

  snprintf(buf, size, "-");
  if (any == NULL)
    return buf;
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, any->value.len, any->value.data);
  if (tec == NULL || tec->typed_config == NULL) {
    snprintf(buf, size, "(undecodable)");
  } else if (strcmp(tec->typed_config->type_url, T_WASM) == 0) {
    Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w =
        envoy__extensions__filters__http__wasm__v3__wasm__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    const Envoy__Config__Core__V3__AsyncDataSource *code =
        w != NULL && w->config != NULL && w->config->vm_config != NULL
            ? w->config->vm_config->code
            : NULL;
    if (code != NULL &&
        code->specifier_case ==
            ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_REMOTE)
      snprintf(buf, size, "wasm sha256:%.12s", code->remote->sha256);
    else if (code != NULL &&
             code->specifier_case ==
                 ENVOY__CONFIG__CORE__V3__ASYNC_DATA_SOURCE__SPECIFIER_LOCAL &&
             code->local->specifier_case ==
                 ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME)
      snprintf(buf, size, "wasm file %s", code->local->filename);
    else
      snprintf(buf, size, "wasm");
    if (w != NULL)
      envoy__extensions__filters__http__wasm__v3__wasm__free_unpacked(w, NULL);
  } else if (strcmp(tec->typed_config->type_url, T_RBAC) == 0) {
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *r =
        envoy__extensions__filters__http__rbac__v3__rbac__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);
    snprintf(buf, size, "%s",
             r != NULL && r->rules == NULL
                 ? "substitute: allow-all RBAC (FAIL_OPEN)"
                 : "substitute: deny-all RBAC (FAIL_CLOSE)");
    if (r != NULL)
      envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(r, NULL);
  } else {
    const char *t = strrchr(tec->typed_config->type_url, '/');
    snprintf(buf, size, "%s", t != NULL ? t + 1 : tec->typed_config->type_url);
  }
  if (tec != NULL)
    envoy__config__core__v3__typed_extension_config__free_unpacked(tec, NULL);
  return buf;
}

/* ---- JSON model --------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (1 to 4 bytes) that is
 * not a control character (C0, DEL or C1), or 0. */
static size_t text_char(const unsigned char *p) {
  unsigned v;
  size_t n = xds_log_utf8_len(p, 4, &v);

  if (n == 0 || v < 0x20 || v == 0x7f || (v >= 0x80 && v <= 0x9f))
    return 0;
  return n;
}

/* A proxy's own text (a NACK's error) as a JSON string fit for a
 * terminal: tabs, newlines and carriage returns become spaces; other
 * control characters and bytes that are not UTF-8 become U+FFFD. (jansson
 * refuses a string that is not UTF-8; the text output prints it raw.) */
static json_t *peer_text(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0, len = strlen(s);
  char *buf = xds_malloc(len * 3 + 1);
  json_t *j;

  if (buf == NULL)
    return NULL;
  while (*p != '\0') {
    size_t n = text_char(p);

    if (n > 0) {
      memcpy(buf + o, p, n);
      o += n;
      p += n;
    } else if (*p == '\t' || *p == '\n' || *p == '\r') {
      buf[o++] = ' ';
      p++;
    } else {
      memcpy(buf + o, "\xef\xbf\xbd", 3);
      o += 3;
      p++;
    }
  }
  j = json_stringn(buf, o);
  xds_free(buf);
  return j;
}

static json_t *type_json(const Config *c, const char *type_url) {
  size_t n;
  enum sync_state s = type_state(c, type_url, &n);
  json_t *o = json_object(), *res = json_array();

  json_object_set_new(o, "state", json_string(state_names[s]));
  for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
    const Generic *g = c->generic_xds_configs[i];
    json_t *r;
    if (strcmp(g->type_url, type_url) != 0)
      continue;
    r = json_object();
    json_object_set_new(r, "name", json_string(g->name));
    json_object_set_new(r, "version", json_string(g->version_info));
    json_object_set_new(r, "state", json_string(state_names[res_state(g)]));
    json_object_set_new(r, "client_status",
                        json_string(client_status_name(g->client_status)));
    if (g->error_state != NULL)
      json_object_set_new(r, "error", peer_text(g->error_state->details));
    json_array_append_new(res, r);
  }
  json_object_set_new(o, "resources", res);
  return o;
}

/* The HTTP filters of a listener, in order, each with its state. */
static json_t *filters_json(const Config *c, const Generic *lg) {
  Envoy__Config__Listener__V3__Listener *l;
  json_t *arr = json_array();
  char buf[256];

  if (lg->xds_config == NULL)
    return arr;
  l = envoy__config__listener__v3__listener__unpack(
      NULL, lg->xds_config->value.len, lg->xds_config->value.data);
  for (size_t i = 0; l != NULL && i < l->n_filter_chains; i++) {
    const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[i];
    for (size_t j = 0; j < fc->n_filters; j++) {
      const Envoy__Config__Listener__V3__Filter *f = fc->filters[j];
      Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
          *h;
      if (f->config_type_case !=
              ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
          strcmp(f->typed_config->type_url, T_HCM) != 0)
        continue;
      h = envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
          NULL, f->typed_config->value.len, f->typed_config->value.data);
      for (size_t k = 0; h != NULL && k < h->n_http_filters; k++) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter
            *hf = h->http_filters[k];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(hf->name));
        if (hf->config_type_case ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY) {
          const Generic *eg = find_res(c, T_ECDS, hf->name);
          json_object_set_new(o, "source", json_string("ECDS"));
          json_object_set_new(
              o, "served_as",
              json_string(served_as(eg != NULL ? eg->xds_config : NULL, buf,
                                    sizeof(buf))));
          json_object_set_new(o, "state",
                              json_string(eg != NULL
                                              ? state_names[res_state(eg)]
                                              : "NOT SENT"));
          json_object_set_new(
              o, "client_status",
              json_string(eg != NULL ? client_status_name(eg->client_status)
                                     : "NOT REQUESTED"));
          if (eg != NULL)
            json_object_set_new(o, "version", json_string(eg->version_info));
          if (eg != NULL && eg->error_state != NULL)
            json_object_set_new(o, "error",
                                peer_text(eg->error_state->details));
        } else {
          const char *t =
              hf->config_type_case ==
                      ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG
                  ? strrchr(hf->typed_config->type_url, '/')
                  : NULL;
          json_object_set_new(o, "source", json_string("listener"));
          json_object_set_new(o, "served_as",
                              json_string(t != NULL ? t + 1 : "-"));
          json_object_set_new(o, "state",
                              json_string(state_names[res_state(lg)]));
        }
        json_array_append_new(arr, o);
      }
      if (h != NULL)
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
            h, NULL);
    }
  }
  if (l != NULL)
    envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  return arr;
}

static json_t *proxy_json(const Config *c, const char *server, int detail) {
  json_t *o = json_object();
  const char *v;

  json_object_set_new(o, "node", json_string(c->node->id));
  json_object_set_new(o, "cluster", json_string(c->node->cluster));
  v = meta_str(c, "wasmxds.organization", NULL);
  json_object_set_new(o, "organization", v ? json_string(v) : json_null());
  v = meta_str(c, "wasmxds.tenant", NULL);
  json_object_set_new(o, "tenant", v ? json_string(v) : json_null());
  v = meta_str(c, "wasmxds.mode", NULL);
  json_object_set_new(o, "mode", json_string(v ? v : "SIDECAR"));
  json_object_set_new(o, "server", json_string(server));
  v = meta_str(c, "wasmxds.csds", "peer");
  json_object_set_new(o, "peer", json_string(v ? v : ""));
  v = meta_str(c, "wasmxds.csds", "protocol");
  json_object_set_new(o, "protocol", json_string(v ? v : ""));
  v = meta_str(c, "wasmxds.csds", "connected_since");
  json_object_set_new(o, "connected_since", json_string(v ? v : ""));
  json_object_set_new(o, "lds", type_json(c, T_LISTENER));
  json_object_set_new(o, "ecds", type_json(c, T_ECDS));
  if (detail) {
    json_t *ls = json_array();
    for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
      const Generic *g = c->generic_xds_configs[i];
      json_t *lo;
      if (strcmp(g->type_url, T_LISTENER) != 0)
        continue;
      lo = json_object();
      json_object_set_new(lo, "name", json_string(g->name));
      json_object_set_new(lo, "version", json_string(g->version_info));
      json_object_set_new(lo, "state", json_string(state_names[res_state(g)]));
      if (g->error_state != NULL)
        json_object_set_new(lo, "error", peer_text(g->error_state->details));
      json_object_set_new(lo, "http_filters", filters_json(c, g));
      json_array_append_new(ls, lo);
    }
    json_object_set_new(o, "listeners", ls);
  }
  return o;
}

/* ---- output ------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s != NULL ? s : "-";
}

static const char *jstate(json_t *o, const char *type) {
  return jstr(json_object_get(o, type), "state");
}

/* A type's versions: the one all its resources share, or "N versions". */
static const char *jversions(json_t *o, const char *type, char *buf,
                             size_t size) {
  json_t *res = json_object_get(json_object_get(o, type), "resources");
  const char *first = NULL;
  size_t i, distinct = 0;
  json_t *r;

  json_array_foreach(res, i, r) {
    const char *v = jstr(r, "version");
    if (first == NULL || strcmp(first, v) != 0)
      distinct++;
    if (first == NULL)
      first = v;
  }
  if (first == NULL || first[0] == '\0')
    snprintf(buf, size, "-");
  else if (distinct == 1)
    snprintf(buf, size, "%s", first);
  else
    snprintf(buf, size, "%zu resources", json_array_size(res));
  return buf;
}

static void print_table(json_t *all, int wide) {
  size_t i;
  json_t *p;
  char v1[64], v2[64];

  if (wide)
    printf("%-28s %-40s %-8s %-22s %-9s %-9s %-17s %-17s %-21s %-6s %s\n",
           "NODE", "TENANT", "MODE", "SERVER", "LDS", "ECDS", "LDS VERSION",
           "ECDS VERSION", "CONNECTED SINCE", "PROTO", "PEER");
  else
    printf("%-28s %-40s %-8s %-22s %-9s %-9s %s\n", "NODE", "TENANT", "MODE",
           "SERVER", "LDS", "ECDS", "CONNECTED SINCE");
  json_array_foreach(all, i, p) {
    const char *tenant = json_string_value(json_object_get(p, "tenant"));
    char tbuf[160];
    if (tenant == NULL)
      snprintf(tbuf, sizeof(tbuf), "(organization %s)",
               jstr(p, "organization"));
    else
      snprintf(tbuf, sizeof(tbuf), "%s", tenant);
    if (wide)
      printf("%-28s %-40s %-8s %-22s %-9s %-9s %-17s %-17s %-21s %-6s %s\n",
             jstr(p, "node"), tbuf, jstr(p, "mode"), jstr(p, "server"),
             jstate(p, "lds"), jstate(p, "ecds"),
             jversions(p, "lds", v1, sizeof(v1)),
             jversions(p, "ecds", v2, sizeof(v2)), jstr(p, "connected_since"),
             jstr(p, "protocol"), jstr(p, "peer"));
    else
      printf("%-28s %-40s %-8s %-22s %-9s %-9s %s\n", jstr(p, "node"), tbuf,
             jstr(p, "mode"), jstr(p, "server"), jstate(p, "lds"),
             jstate(p, "ecds"), jstr(p, "connected_since"));
  }
}

static void print_detail(json_t *p) {
  size_t i, j;
  json_t *l, *f, *r;

  printf("Node:       %s (cluster %s)\n", jstr(p, "node"), jstr(p, "cluster"));
  printf("Tenant:     %s\n",
         json_string_value(json_object_get(p, "tenant")) != NULL
             ? jstr(p, "tenant")
             : "(none)");
  printf("Mode:       %s\n", jstr(p, "mode"));
  printf("Server:     %s (%s, peer %s, since %s)\n", jstr(p, "server"),
         jstr(p, "protocol"), jstr(p, "peer"), jstr(p, "connected_since"));
  printf("LDS:        %s\n", jstate(p, "lds"));
  printf("ECDS:       %s\n", jstate(p, "ecds"));
  json_array_foreach(json_object_get(p, "listeners"), i, l) {
    printf("\nListener %s  version %s  %s\n", jstr(l, "name"),
           jstr(l, "version"), jstr(l, "state"));
    if (json_object_get(l, "error") != NULL)
      printf("  error: %s\n", jstr(l, "error"));
    printf("  %-3s %-48s %-9s %-9s %s\n", "#", "HTTP FILTER", "SOURCE", "STATE",
           "SERVED AS");
    json_array_foreach(json_object_get(l, "http_filters"), j, f) {
      printf("  %-3zu %-48s %-9s %-9s %s\n", j + 1, jstr(f, "name"),
             jstr(f, "source"), jstr(f, "state"), jstr(f, "served_as"));
      if (json_object_get(f, "error") != NULL)
        printf("      error: %s\n", jstr(f, "error"));
    }
  }
  /* ECDS resources no listener references (asked for by name). */
  json_array_foreach(json_object_get(json_object_get(p, "ecds"), "resources"),
                     i, r) {
    if (strcmp(jstr(r, "client_status"), "DOES_NOT_EXIST") == 0)
      printf("\nECDS %s: does not exist for this proxy\n", jstr(r, "name"));
    if (json_object_get(r, "error") != NULL)
      printf("\nECDS %s: rejected: %s\n", jstr(r, "name"), jstr(r, "error"));
  }
}

/* YAML from a JSON tree: block style, strings double-quoted (JSON string
 * escapes are valid YAML double-quoted escapes). */
static void yaml_scalar(json_t *v) {
  char *s;

  if (json_is_string(v)) {
    s = json_dumps(v, JSON_ENCODE_ANY);
    printf("%s", s != NULL ? s : "\"\"");
    free(s); /* checksrc: allow alloc: from json_dumps() */
  } else if (json_is_null(v)) {
    printf("null");
  } else {
    s = json_dumps(v, JSON_ENCODE_ANY);
    printf("%s", s != NULL ? s : "null");
    free(s); /* checksrc: allow alloc: from json_dumps() */
  }
}

static void yaml_value(json_t *v, int indent);

static void yaml_object(json_t *o, int indent, int first_inline) {
  const char *k;
  json_t *v;
  int first = 1;

  json_object_foreach(o, k, v) {
    if (!(first && first_inline))
      printf("%*s", indent, "");
    first = 0;
    printf("%s:", k);
    if ((json_is_object(v) && json_object_size(v) > 0) ||
        (json_is_array(v) && json_array_size(v) > 0)) {
      printf("\n");
      yaml_value(v, indent + 2);
    } else if (json_is_object(v)) {
      printf(" {}\n");
    } else if (json_is_array(v)) {
      printf(" []\n");
    } else {
      printf(" ");
      yaml_scalar(v);
      printf("\n");
    }
  }
}

static void yaml_value(json_t *v, int indent) {
  size_t i;
  json_t *e;

  if (json_is_object(v)) {
    yaml_object(v, indent, 0);
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, e) {
      printf("%*s- ", indent, "");
      if (json_is_object(e) && json_object_size(e) > 0)
        yaml_object(e, indent + 2, 1);
      else {
        yaml_scalar(e);
        printf("\n");
      }
    }
  }
}

/* ---- the command -------------------------------------------------------- */

enum {
  OPT_SERVER = 1000,
  OPT_TLS_CA,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_NAME,
  OPT_TIMEOUT
};

static const struct option status_opts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"output", required_argument, NULL, 'o'},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-server-name", required_argument, NULL, OPT_TLS_NAME},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* Sends req to the server of o; returns its answer (free with
 * ..._free_unpacked), or NULL after saying why on stderr. */
static Resp *fetch(const struct csds_client_opts *o,
                   const Envoy__Service__Status__V3__ClientStatusRequest *req) {
  struct xds_err err = {0, ""};
  uint8_t buf[2048], *out = NULL;
  size_t n, out_len;
  Resp *r;

  if (protobuf_c_message_get_packed_size(&req->base) > sizeof(buf)) {
    fprintf(stderr, "wasmxdsctl: status: the proxy name is too long\n");
    return NULL;
  }
  n = protobuf_c_message_pack(&req->base, buf);
  if (csds_fetch(o, buf, n, &out, &out_len, &err) < 0) {
    fprintf(stderr, "wasmxdsctl: status: %s\n", err.msg);
    return NULL;
  }
  r = envoy__service__status__v3__client_status_response__unpack(NULL, out_len,
                                                                 out);
  xds_free(out);
  if (r == NULL)
    fprintf(stderr,
            "wasmxdsctl: status: %s: the ClientStatusResponse does not "
            "decode\n",
            o->target);
  return r;
}

/* Asks one server; appends its proxies (all, or only `only`) to all. */
static int ask(const struct csds_client_opts *o, const char *only, int detail,
               json_t *all) {
  Envoy__Service__Status__V3__ClientStatusRequest req =
      ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  Envoy__Type__Matcher__V3__NodeMatcher m =
      ENVOY__TYPE__MATCHER__V3__NODE_MATCHER__INIT;
  Envoy__Type__Matcher__V3__StringMatcher id =
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT;
  Envoy__Type__Matcher__V3__NodeMatcher *ms[1] = {&m};
  Resp *r;

  if (only != NULL) {
    id.match_pattern_case =
        ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    id.exact = (char *)only;
    m.node_id = &id;
    req.n_node_matchers = 1;
    req.node_matchers = ms;
  }
  /* The table needs no resource bytes; the detail decodes them. */
  req.exclude_resource_contents = !detail;
  r = fetch(o, &req);
  if (r == NULL)
    return -1;
  for (size_t i = 0; i < r->n_config; i++)
    if (r->config[i]->node != NULL)
      json_array_append_new(all, proxy_json(r->config[i], o->target, detail));
  envoy__service__status__v3__client_status_response__free_unpacked(r, NULL);
  return 0;
}

static int node_cmp(const void *a, const void *b) {
  json_t *const *x = a, *const *y = b;
  int c = strcmp(jstr(*x, "node"), jstr(*y, "node"));

  return c != 0 ? c : strcmp(jstr(*x, "server"), jstr(*y, "server"));
}

/* ---- status REF: one resource on every proxy ---- */

/* The ECDS names a resource ref stands for: an exact fqn (a WasmExtension
 * or WasmPlugin) or, for a WasmDeployment, "<id>/" prefixing its filters.
 * Returns 1 with name and *prefix set when ref is a resource ref
 * (WasmExtension/ORG/NAME, WasmPlugin/NS/NAME, WasmDeployment/NS/NAME or
 * an fqn), else 0 (a proxy name). */
static int resource_ref(const char *ref, char *name, size_t size, int *prefix) {
  char a[256], b[256], kind[32];
  int n;

  *prefix = 0;
  if (strncmp(ref, WASM_DEPLOY_FQN_PREFIX, strlen(WASM_DEPLOY_FQN_PREFIX)) ==
      0) {
    const char *slash = strchr(ref + strlen(WASM_DEPLOY_FQN_PREFIX), '/');
    size_t len = slash != NULL ? (size_t)(slash - ref) : strlen(ref);

    snprintf(name, size, "%.*s/", (int)len, ref);
    *prefix = 1;
    return 1;
  }
  if (strncmp(ref, WASM_PLUGIN_FQN_PREFIX, strlen(WASM_PLUGIN_FQN_PREFIX)) ==
          0 ||
      (strncmp(ref, "organizations/", 14) == 0 &&
       strstr(ref, "/extensions/") != NULL)) {
    snprintf(name, size, "%s", ref);
    return 1;
  }
  n = sscanf(ref, "%31[^/]/%255[^/]/%255[^/]", kind, a, b);
  if (n != 3 || strchr(ref + strlen(kind) + strlen(a) + strlen(b) + 2, '/'))
    return 0;
  if (strcmp(kind, "WasmExtension") == 0)
    snprintf(name, size, "organizations/%s/extensions/%s", a, b);
  else if (strcmp(kind, "WasmPlugin") == 0)
    snprintf(name, size, WASM_PLUGIN_FQN_PREFIX "%s.%s", a, b);
  else if (strcmp(kind, "WasmDeployment") == 0) {
    snprintf(name, size, WASM_DEPLOY_FQN_PREFIX "%s.%s/", a, b);
    *prefix = 1;
  } else
    return 0;
  return 1;
}

/* The state of the resource on one proxy, in WasmDeploymentStatus terms:
 * DEPLOYMENT_FAILED if any of its ECDS resources was NACKED (error: the
 * proxy's), else DEPLOYMENT_PENDING if any is not acknowledged, else
 * FILTERS_DEPLOYED; NULL when the proxy has none of them. */
static json_t *resource_on(const Config *c, const char *name, int prefix,
                           const char *server) {
  const char *state = NULL, *error = NULL;
  size_t len = strlen(name);
  json_t *o;

  for (size_t i = 0; i < c->n_generic_xds_configs; i++) {
    const Generic *g = c->generic_xds_configs[i];
    enum sync_state r;

    if (strcmp(g->type_url, T_ECDS) != 0 ||
        (prefix ? strncmp(g->name, name, len) != 0
                : strcmp(g->name, name) != 0))
      continue;
    r = res_state(g);
    if (r == S_NACKED) {
      if (error == NULL && g->error_state != NULL)
        error = g->error_state->details;
      state = "DEPLOYMENT_FAILED";
    } else if (r != S_SYNCED &&
               (state == NULL || strcmp(state, "DEPLOYMENT_FAILED") != 0)) {
      state = "DEPLOYMENT_PENDING";
    } else if (state == NULL) {
      state = "FILTERS_DEPLOYED";
    }
  }
  if (state == NULL)
    return NULL;
  o = json_object();
  json_object_set_new(o, "node", json_string(c->node->id));
  json_object_set_new(o, "server", json_string(server));
  json_object_set_new(o, "state", json_string(state));
  if (error != NULL)
    json_object_set_new(o, "error", peer_text(error));
  return o;
}

/* Asks one server about every proxy; appends each that has the resource. */
static int ask_resource(const struct csds_client_opts *o, const char *name,
                        int prefix, json_t *all) {
  Envoy__Service__Status__V3__ClientStatusRequest req =
      ENVOY__SERVICE__STATUS__V3__CLIENT_STATUS_REQUEST__INIT;
  Resp *r;

  req.exclude_resource_contents = 1;
  r = fetch(o, &req);
  if (r == NULL)
    return -1;
  for (size_t i = 0; i < r->n_config; i++) {
    json_t *one = r->config[i]->node != NULL
                      ? resource_on(r->config[i], name, prefix, o->target)
                      : NULL;

    if (one != NULL)
      json_array_append_new(all, one);
  }
  envoy__service__status__v3__client_status_response__free_unpacked(r, NULL);
  return 0;
}

/* `status REF`: prints the resource's state on every proxy that was sent
 * it (a table, or -o json/yaml); returns the exit code. */
static int status_resource(const struct csds_client_opts *base,
                           const char *const *servers, size_t n_servers,
                           const char *ref, const char *name, int prefix,
                           const char *format) {
  struct csds_client_opts o = *base;
  json_t *all = json_array(), *doc, *p;
  int failed = 0, deployed = 1, status;
  size_t i, n;
  json_t **v;

  if (all == NULL)
    return CTL_STATUS_UNREACHABLE;
  for (i = 0; i < n_servers; i++) {
    o.target = servers[i];
    if (ask_resource(&o, name, prefix, all) < 0)
      failed = 1;
  }
  n = json_array_size(all);
  v = xds_calloc(n > 0 ? n : 1, sizeof(*v));
  doc = json_object();
  if (v == NULL || doc == NULL) {
    xds_free(v);
    json_decref(all);
    json_decref(doc);
    return CTL_STATUS_UNREACHABLE;
  }
  json_array_foreach(all, i, p) v[i] = p;
  qsort(v, n, sizeof(*v), node_cmp);
  json_object_set_new(doc, "resource", json_string(ref));
  json_object_set_new(doc, "workloadStates", json_array());
  for (i = 0; i < n; i++) {
    json_array_append(json_object_get(doc, "workloadStates"), v[i]);
    if (strcmp(jstr(v[i], "state"), "FILTERS_DEPLOYED") != 0)
      deployed = 0;
  }
  xds_free(v);
  if (strcmp(format, "json") == 0) {
    char *s = json_dumps(doc, JSON_INDENT(2));
    if (s != NULL)
      printf("%s\n", s);
    free(s); /* checksrc: allow alloc: from json_dumps() */
  } else if (strcmp(format, "yaml") == 0) {
    yaml_object(doc, 0, 0);
  } else if (n > 0) {
    printf("%-40s %-22s %-20s %s\n", "NODE", "SERVER", "STATE", "ERROR");
    for (i = 0; i < n; i++) {
      p = json_array_get(json_object_get(doc, "workloadStates"), i);
      printf("%-40s %-22s %-20s %s\n", jstr(p, "node"), jstr(p, "server"),
             jstr(p, "state"),
             json_object_get(p, "error") != NULL ? jstr(p, "error") : "-");
    }
  }
  if (n == 0 && !failed)
    fprintf(stderr, "wasmxdsctl: status: no connected proxy was sent %s\n",
            ref);
  status = failed     ? CTL_STATUS_UNREACHABLE
           : n == 0   ? CTL_STATUS_NOTFOUND
           : deployed ? CTL_STATUS_OK
                      : CTL_STATUS_OUT_OF_SYNC;
  json_decref(all);
  json_decref(doc);
  return status;
}

int ctl_status(int argc, char **argv) {
  const char *servers[STATUS_MAX_SERVERS];
  size_t n_servers = 0;
  struct csds_client_opts o = {0};
  const char *format = "table", *only = NULL;
  json_t *all = NULL, *sorted = NULL, *p;
  int c, status = CTL_STATUS_USAGE, failed = 0, insync = 1;
  size_t i;

  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", status_opts, NULL)) != -1) {
    switch (c) {
    case OPT_SERVER:
      if (n_servers == STATUS_MAX_SERVERS) {
        fprintf(stderr, "wasmxdsctl: status: more than %d --server\n",
                STATUS_MAX_SERVERS);
        return CTL_STATUS_USAGE;
      }
      servers[n_servers++] = optarg;
      break;
    case 'o':
      format = optarg;
      if (strcmp(format, "json") != 0 && strcmp(format, "yaml") != 0 &&
          strcmp(format, "wide") != 0) {
        fprintf(stderr,
                "wasmxdsctl: status: -o %s: wide, json or yaml expected\n",
                format);
        return CTL_STATUS_USAGE;
      }
      break;
    case OPT_TLS_CA:
      o.tls_ca = optarg;
      break;
    case OPT_TLS_CERT:
      o.tls_cert = optarg;
      break;
    case OPT_TLS_KEY:
      o.tls_key = optarg;
      break;
    case OPT_TLS_NAME:
      o.tls_name = optarg;
      break;
    case OPT_TIMEOUT: {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end != '\0' || v <= 0 || v > 3600000) {
        fprintf(stderr, "wasmxdsctl: status: --timeout-ms: 1 to 3600000\n");
        return CTL_STATUS_USAGE;
      }
      o.timeout_ms = (int)v;
      break;
    }
    case 'h':
      usage(stdout);
      return CTL_STATUS_OK;
    default:
      usage(stderr);
      return CTL_STATUS_USAGE;
    }
  }
  if (argc - optind > 1) {
    usage(stderr);
    return CTL_STATUS_USAGE;
  }
  if (argc - optind == 1)
    only = argv[optind];
  if (n_servers == 0) {
    const char *env = getenv("WASMXDS_SERVER");
    servers[n_servers++] = env != NULL && env[0] ? env : "127.0.0.1:18000";
  }
  if (only != NULL) {
    char name[600];
    int prefix;

    if (resource_ref(only, name, sizeof(name), &prefix))
      return status_resource(&o, servers, n_servers, only, name, prefix,
                             format);
  }
  all = json_array();
  if (all == NULL)
    return CTL_STATUS_UNREACHABLE;
  for (i = 0; i < n_servers; i++) {
    o.target = servers[i];
    if (ask(&o, only, only != NULL, all) < 0)
      failed = 1;
  }
  /* One order whatever the servers' order: by node, then server. */
  {
    size_t n = json_array_size(all);
    json_t **v = xds_calloc(n > 0 ? n : 1, sizeof(*v));
    sorted = json_array();
    if (v == NULL || sorted == NULL) {
      xds_free(v);
      status = CTL_STATUS_UNREACHABLE;
      goto out;
    }
    json_array_foreach(all, i, p) v[i] = p;
    qsort(v, n, sizeof(*v), node_cmp);
    for (i = 0; i < n; i++)
      json_array_append(sorted, v[i]);
    xds_free(v);
  }
  json_array_foreach(sorted, i, p) {
    if (strcmp(jstate(p, "lds"), "SYNCED") != 0 ||
        (strcmp(jstate(p, "ecds"), "SYNCED") != 0 &&
         json_array_size(
             json_object_get(json_object_get(p, "ecds"), "resources")) > 0))
      insync = 0;
  }
  if (only != NULL && json_array_size(sorted) == 0) {
    fprintf(stderr, "wasmxdsctl: status: proxy %s is not connected to %s%s\n",
            only, n_servers > 1 ? "any of these servers" : servers[0],
            failed ? " (or to a server that could not be asked)" : "");
    status = failed ? CTL_STATUS_UNREACHABLE : CTL_STATUS_NOTFOUND;
    goto out;
  }
  if (strcmp(format, "json") == 0) {
    json_t *doc = only != NULL && json_array_size(sorted) == 1
                      ? json_array_get(sorted, 0)
                      : sorted;
    char *s = json_dumps(doc, JSON_INDENT(2));
    if (s != NULL)
      printf("%s\n", s);
    free(s); /* checksrc: allow alloc: from json_dumps() */
  } else if (strcmp(format, "yaml") == 0) {
    if (only != NULL && json_array_size(sorted) == 1)
      yaml_object(json_array_get(sorted, 0), 0, 0);
    else if (json_array_size(sorted) == 0)
      printf("[]\n");
    else
      yaml_value(sorted, 0);
  } else if (only != NULL) {
    json_array_foreach(sorted, i, p) {
      if (i > 0)
        printf("\n");
      print_detail(p);
    }
  } else {
    print_table(sorted, strcmp(format, "wide") == 0);
  }
  status = failed   ? CTL_STATUS_UNREACHABLE
           : insync ? CTL_STATUS_OK
                    : CTL_STATUS_OUT_OF_SYNC;
out:
  json_decref(all);
  json_decref(sorted);
  return status;
}
