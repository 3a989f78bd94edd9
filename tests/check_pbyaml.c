/*
 * check_pbyaml.c: native HTTP filter configs written as YAML
 * (server/pb/pbyaml.h) converted, packed into an Any, decoded back with the
 * generated descriptor and checked field by field; the converter's errors, each
 * with its exact file:line:column, field path and reason; and a listener
 * template whose RBAC, Lua and CORS filters come out of encode_listener.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "server/compose/chain.h"
#include "server/compose/encode.h"
#include "server/pb/pbyaml.h"
#include "store/ydoc.h"
#include "testutil.h"
#include "server/pb/typeurl.h"

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "envoy/extensions/filters/http/lua/v3/lua.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/http/wasm/v3/wasm.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

/* Short names for the generated types (macros: never re-typedef'd). */
#define ROUTER_T Envoy__Extensions__Filters__Http__Router__V3__Router
#define HRBAC_T Envoy__Extensions__Filters__Http__Rbac__V3__RBAC
#define RBAC_T Envoy__Config__Rbac__V3__RBAC
#define POLICY_T Envoy__Config__Rbac__V3__Policy
#define PERM_T Envoy__Config__Rbac__V3__Permission
#define PRIN_T Envoy__Config__Rbac__V3__Principal
#define LUA_T Envoy__Extensions__Filters__Http__Lua__V3__Lua
#define LUAPR_T Envoy__Extensions__Filters__Http__Lua__V3__LuaPerRoute
#define CORSPOL_T Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy
#define WASM_T Envoy__Extensions__Filters__Http__Wasm__V3__Wasm
#define DS_T Envoy__Config__Core__V3__DataSource
#define HCM_T                                                                  \
  Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager

#define D_ROUTER                                                               \
  envoy__extensions__filters__http__router__v3__router__descriptor
#define D_HRBAC envoy__extensions__filters__http__rbac__v3__rbac__descriptor
#define D_LUA envoy__extensions__filters__http__lua__v3__lua__descriptor
#define D_LUAPR                                                                \
  envoy__extensions__filters__http__lua__v3__lua_per_route__descriptor
#define D_CORS envoy__extensions__filters__http__cors__v3__cors__descriptor
#define D_CORSPOL                                                              \
  envoy__extensions__filters__http__cors__v3__cors_policy__descriptor
#define D_WASM envoy__extensions__filters__http__wasm__v3__wasm__descriptor

#define PFX "type.googleapis.com/"
#define N_ROUTER "envoy.extensions.filters.http.router.v3.Router"
#define N_RBAC "envoy.extensions.filters.http.rbac.v3.RBAC"
#define N_LUA "envoy.extensions.filters.http.lua.v3.Lua"
#define N_CORS "envoy.extensions.filters.http.cors.v3.Cors"
#define N_WASM "envoy.extensions.filters.http.wasm.v3.Wasm"

/* The first line of most documents below. */
#define AT(name) "'@type': " PFX name "\n"

/* ------------------------------------------------------------------------ */
/* Helpers. */

/* Parses yaml as t.yaml (one document). The caller frees *doc. */
static const struct ynode *parse(const char *yaml, struct ydoc **doc) {
  struct xds_err err = {0, ""};

  ck_assert_msg(ydoc_parse("t.yaml", yaml, strlen(yaml), doc, &err) == 0,
                "YAML: %s", err.msg);
  ck_assert_uint_eq(ydoc_count(*doc), 1);
  return ydoc_root(*doc, 0);
}

/* The config packed by pbyaml_pack_any, unpacked with desc. The caller
 * frees it with protobuf_c_message_free_unpacked. */
static ProtobufCMessage *convert(const char *yaml,
                                 const ProtobufCMessageDescriptor *desc) {
  struct ydoc *doc = NULL;
  struct xds_arena a;
  struct xds_err err = {0, ""};
  Google__Protobuf__Any *any = NULL;
  ProtobufCMessage *m;
  char want_url[256];
  int rc;

  xds_arena_init(&a, 0);
  rc = pbyaml_pack_any(parse(yaml, &doc), NULL, &a, &any, &err);
  ck_assert_msg(rc == 0, "pbyaml_pack_any: %d %s", rc, err.msg);
  ck_assert_ptr_nonnull(any);
  snprintf(want_url, sizeof(want_url), PFX "%s", desc->name);
  ck_assert_str_eq(any->type_url, want_url);
  m = protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data);
  ck_assert_ptr_nonnull(m);
  xds_arena_cleanup(&a);
  ydoc_free(doc);
  return m;
}

/* Like convert, without an Any: pbyaml_to_message on desc (for the
 * messages that are not HTTP filter configs), packed and unpacked. */
static ProtobufCMessage *convert_msg(const char *yaml,
                                     const ProtobufCMessageDescriptor *desc) {
  struct ydoc *doc = NULL;
  struct xds_arena a;
  struct xds_err err = {0, ""};
  ProtobufCMessage *m = NULL, *back;
  uint8_t *bytes;
  size_t len;
  int rc;

  xds_arena_init(&a, 0);
  rc = pbyaml_to_message(parse(yaml, &doc), desc, "x", &a, &m, &err);
  ck_assert_msg(rc == 0, "pbyaml_to_message: %d %s", rc, err.msg);
  len = protobuf_c_message_get_packed_size(m);
  bytes = xds_arena_alloc(&a, len + 1);
  ck_assert_ptr_nonnull(bytes);
  protobuf_c_message_pack(m, bytes);
  back = protobuf_c_message_unpack(desc, NULL, len, bytes);
  ck_assert_ptr_nonnull(back);
  xds_arena_cleanup(&a);
  ydoc_free(doc);
  return back;
}

static const char *ds_string(const DS_T *ds) {
  ck_assert_ptr_nonnull(ds);
  ck_assert_int_eq(
      ds->specifier_case,
      ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING);
  return ds->inline_string;
}

static const POLICY_T *policy(const RBAC_T *r, size_t i, const char *name) {
  ck_assert_uint_gt(r->n_policies, i);
  ck_assert_str_eq(r->policies[i]->key, name);
  ck_assert_ptr_nonnull(r->policies[i]->value);
  return r->policies[i]->value;
}

/* ------------------------------------------------------------------------ */
/* Conversions that succeed: the YAML, and a check of the decoded message. */

struct good_case {
  const char *name;
  const char *yaml;
  const ProtobufCMessageDescriptor *desc;
  int any; /* 1: through pbyaml_pack_any; 0: pbyaml_to_message on desc */
  void (*check)(const ProtobufCMessage *m);
};

static void check_router_defaults(const ProtobufCMessage *m) {
  const ROUTER_T *r = (const ROUTER_T *)m;

  ck_assert_ptr_null(r->dynamic_stats);
  ck_assert_ptr_null(r->upstream_log_options);
  ck_assert_int_eq(r->suppress_envoy_headers, 0);
  ck_assert_uint_eq(r->n_strict_check_headers, 0);
}

static void check_router_fields(const ProtobufCMessage *m) {
  const ROUTER_T *r = (const ROUTER_T *)m;

  ck_assert_ptr_nonnull(r->dynamic_stats);
  ck_assert_int_eq(r->dynamic_stats->value, 0);
  ck_assert_int_eq(r->suppress_envoy_headers, 1);
  ck_assert_int_eq(r->respect_expected_rq_timeout, 1);
  ck_assert_uint_eq(r->n_strict_check_headers, 2);
  ck_assert_str_eq(r->strict_check_headers[0],
                   "x-envoy-upstream-rq-timeout-ms");
  ck_assert_str_eq(r->strict_check_headers[1], "x-envoy-max-retries");
  ck_assert_ptr_nonnull(r->upstream_log_options);
  ck_assert_int_eq(
      r->upstream_log_options->flush_upstream_log_on_upstream_stream, 1);
  ck_assert_ptr_nonnull(r->upstream_log_options->upstream_log_flush_interval);
  ck_assert_int_eq(
      r->upstream_log_options->upstream_log_flush_interval->seconds, 30);
  ck_assert_int_eq(r->upstream_log_options->upstream_log_flush_interval->nanos,
                   0);
}

static void check_duration(const ProtobufCMessage *m, int64_t s, int32_t ns) {
  const ROUTER_T *r = (const ROUTER_T *)m;
  const Google__Protobuf__Duration *d;

  ck_assert_ptr_nonnull(r->upstream_log_options);
  d = r->upstream_log_options->upstream_log_flush_interval;
  ck_assert_ptr_nonnull(d);
  ck_assert_int_eq(d->seconds, s);
  ck_assert_int_eq(d->nanos, ns);
}
static void check_dur_1_5s(const ProtobufCMessage *m) {
  check_duration(m, 1, 500000000);
}
static void check_dur_250ms(const ProtobufCMessage *m) {
  check_duration(m, 0, 250000000);
}
static void check_dur_map(const ProtobufCMessage *m) {
  check_duration(m, 2, 5000);
}

/* Deny requests under /admin from anyone. */
static void check_rbac_deny_path(const ProtobufCMessage *m) {
  const HRBAC_T *f = (const HRBAC_T *)m;
  const POLICY_T *p;
  const PERM_T *perm;

  ck_assert_ptr_nonnull(f->rules);
  ck_assert_ptr_null(f->shadow_rules);
  ck_assert_str_eq(f->rules_stat_prefix, "admin_");
  ck_assert_int_eq(f->rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
  ck_assert_uint_eq(f->rules->n_policies, 1);
  p = policy(f->rules, 0, "deny-admin");
  ck_assert_uint_eq(p->n_permissions, 1);
  perm = p->permissions[0];
  ck_assert_int_eq(perm->rule_case,
                   ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_URL_PATH);
  ck_assert_int_eq(perm->url_path->rule_case,
                   ENVOY__TYPE__MATCHER__V3__PATH_MATCHER__RULE_PATH);
  ck_assert_int_eq(
      perm->url_path->path->match_pattern_case,
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX);
  ck_assert_str_eq(perm->url_path->path->prefix, "/admin");
  ck_assert_int_eq(perm->url_path->path->ignore_case, 1);
  ck_assert_uint_eq(p->n_principals, 1);
  ck_assert_int_eq(p->principals[0]->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY);
  ck_assert_int_eq(p->principals[0]->any, 1);
}

/* Enums by number; two policies in document order; shadow rules. */
static void check_rbac_enum_numbers(const ProtobufCMessage *m) {
  const HRBAC_T *f = (const HRBAC_T *)m;

  ck_assert_int_eq(f->rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
  ck_assert_uint_eq(f->rules->n_policies, 2);
  ck_assert_int_eq(policy(f->rules, 0, "b")->permissions[0]->destination_port,
                   22);
  ck_assert_int_eq(policy(f->rules, 1, "a")->permissions[0]->destination_port,
                   23);
  ck_assert_ptr_nonnull(f->shadow_rules);
  ck_assert_int_eq(f->shadow_rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__LOG);
  ck_assert_ptr_nonnull(f->shadow_rules->audit_logging_options);
  ck_assert_int_eq(
      f->shadow_rules->audit_logging_options->audit_condition,
      ENVOY__CONFIG__RBAC__V3__RBAC__AUDIT_LOGGING_OPTIONS__AUDIT_CONDITION__ON_DENY_AND_ALLOW);
}

/* Every Permission rule a simple policy uses. */
static void check_rbac_permissions(const ProtobufCMessage *m) {
  const HRBAC_T *f = (const HRBAC_T *)m;
  const POLICY_T *p = policy(f->rules, 0, "p");
  const PERM_T *and, * or, *not ;

  ck_assert_int_eq(f->rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW);
  ck_assert_uint_eq(p->n_permissions, 4);
  and = p->permissions[0];
  ck_assert_int_eq(and->rule_case,
                   ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_AND_RULES);
  ck_assert_uint_eq(and->and_rules->n_rules, 2);
  ck_assert_int_eq(and->and_rules->rules[0]->rule_case,
                   ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_HEADER);
  ck_assert_str_eq(and->and_rules->rules[0]->header->name, ":method");
  ck_assert_int_eq(
          and->and_rules->rules[0]->header->header_match_specifier_case,
          ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH);
  ck_assert_str_eq(and->and_rules->rules[0]->header->string_match->exact,
                   "POST");
  ck_assert_str_eq(and->and_rules->rules[1]->header->name, "x-debug");
  ck_assert_int_eq(
          and->and_rules->rules[1]->header->header_match_specifier_case,
          ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH);
  ck_assert_int_eq(and->and_rules->rules[1]->header->present_match, 1);
  ck_assert_int_eq(and->and_rules->rules[1]->header->invert_match, 1);
  ck_assert_int_eq(
          and->and_rules->rules[1]->header->treat_missing_header_as_empty, 1);
  or = p->permissions[1];
  ck_assert_int_eq(or->rule_case,
                   ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_OR_RULES);
  ck_assert_uint_eq(or->or_rules->n_rules, 3);
  ck_assert_int_eq(or->or_rules->rules[0]->destination_port, 8443);
  ck_assert_int_eq(
      or->or_rules->rules[1]->rule_case,
      ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_PORT_RANGE);
  ck_assert_int_eq(or->or_rules->rules[1]->destination_port_range->start, 9000);
  ck_assert_int_eq(or->or_rules->rules[1]->destination_port_range->end, 9100);
  ck_assert_int_eq(or->or_rules->rules[2]->rule_case,
                   ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_IP);
  ck_assert_str_eq(or->or_rules->rules[2]->destination_ip->address_prefix,
                   "192.168.0.0");
  ck_assert_int_eq(or->or_rules->rules[2]->destination_ip->prefix_len->value,
                   16);
  not = p->permissions[2];
  ck_assert_int_eq(not ->rule_case,
                   ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_NOT_RULE);
  ck_assert_int_eq(
      not ->not_rule->rule_case,
      ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_REQUESTED_SERVER_NAME);
  ck_assert_int_eq(
      not ->not_rule->requested_server_name->match_pattern_case,
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX);
  ck_assert_str_eq(not ->not_rule->requested_server_name->suffix, ".internal");
  ck_assert_int_eq(
      p->permissions[3]->url_path->path->match_pattern_case,
      ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX);
  ck_assert_str_eq(p->permissions[3]->url_path->path->safe_regex->regex,
                   "^/api/v[0-9]+/.*");
}

/* Every Principal identifier a simple policy uses. */
static void check_rbac_principals(const ProtobufCMessage *m) {
  const HRBAC_T *f = (const HRBAC_T *)m;
  const POLICY_T *p = policy(f->rules, 0, "p");
  const PRIN_T * or, *x;

  ck_assert_uint_eq(p->n_principals, 5);
  or = p->principals[0];
  ck_assert_int_eq(or->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS);
  ck_assert_uint_eq(or->or_ids->n_ids, 2);
  x = or->or_ids->ids[0];
  ck_assert_int_eq(x->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_REMOTE_IP);
  ck_assert_str_eq(x->remote_ip->address_prefix, "10.0.0.0");
  ck_assert_ptr_nonnull(x->remote_ip->prefix_len);
  ck_assert_uint_eq(x->remote_ip->prefix_len->value, 8);
  x = or->or_ids->ids[1];
  ck_assert_int_eq(
      x->identifier_case,
      ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_DIRECT_REMOTE_IP);
  ck_assert_str_eq(x->direct_remote_ip->address_prefix, "::1");
  ck_assert_uint_eq(x->direct_remote_ip->prefix_len->value, 128);
  x = p->principals[1];
  ck_assert_int_eq(
      x->identifier_case,
      ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED);
  ck_assert_str_eq(x->authenticated->principal_name->exact,
                   "spiffe://acme/ns/web");
  x = p->principals[2];
  ck_assert_int_eq(x->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID);
  ck_assert_int_eq(x->not_id->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_HEADER);
  ck_assert_str_eq(x->not_id->header->name, "x-user");
  ck_assert_int_eq(
      x->not_id->header->header_match_specifier_case,
      ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH);
  ck_assert_str_eq(x->not_id->header->prefix_match, "bot-");
  x = p->principals[3];
  ck_assert_int_eq(x->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS);
  ck_assert_str_eq(x->and_ids->ids[0]->url_path->path->contains, "/internal/");
  ck_assert_int_eq(
      x->and_ids->ids[1]->header->header_match_specifier_case,
      ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH);
  ck_assert_str_eq(x->and_ids->ids[1]->header->suffix_match, ".acme.com");
  ck_assert_int_eq(p->principals[4]->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY);
}

/* 64-bit integers from strings and from plain integers. */
static void check_rbac_int64(const ProtobufCMessage *m) {
  const HRBAC_T *f = (const HRBAC_T *)m;
  const PERM_T *perm = policy(f->rules, 0, "big")->permissions[0];

  ck_assert_int_eq(
      perm->header->header_match_specifier_case,
      ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH);
  ck_assert_int_eq(perm->header->range_match->start, -9007199254740993LL);
  ck_assert_int_eq(perm->header->range_match->end, 9223372036854775807LL);
}

static void check_lua_default(const ProtobufCMessage *m) {
  const LUA_T *l = (const LUA_T *)m;

  ck_assert_str_eq(l->stat_prefix, "edge");
  ck_assert_str_eq(l->inline_code, "");
  ck_assert_uint_eq(l->n_source_codes, 0);
  ck_assert_str_eq(ds_string(l->default_source_code),
                   "function envoy_on_request(h)\n"
                   "  h:headers():add(\"x-lua\", \"1\")\nend\n");
}

/* A map of messages; bytes as base64; snake_case and camelCase mixed. */
static void check_lua_source_codes(const ProtobufCMessage *m) {
  const LUA_T *l = (const LUA_T *)m;
  const DS_T *ds;

  ck_assert_str_eq(l->inline_code, "-- deprecated");
  ck_assert_uint_eq(l->n_source_codes, 3);
  ck_assert_str_eq(l->source_codes[0]->key, "hello.lua");
  ck_assert_str_eq(ds_string(l->source_codes[0]->value), "-- hello");
  ck_assert_str_eq(l->source_codes[1]->key, "world.lua");
  ds = l->source_codes[1]->value;
  ck_assert_int_eq(ds->specifier_case,
                   ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME);
  ck_assert_str_eq(ds->filename, "/etc/lua/world.lua");
  ck_assert_str_eq(ds->watched_directory->path, "/etc/lua");
  ck_assert_str_eq(l->source_codes[2]->key, "bin.lua");
  ds = l->source_codes[2]->value;
  ck_assert_int_eq(
      ds->specifier_case,
      ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES);
  ck_assert_uint_eq(ds->inline_bytes.len, 11);
  ck_assert_int_eq(memcmp(ds->inline_bytes.data, "hello world", 11), 0);
  ck_assert_str_eq(l->default_source_code->environment_variable, "LUA_CODE");
}

static void check_lua_camel(const ProtobufCMessage *m) {
  const LUA_T *l = (const LUA_T *)m;

  ck_assert_str_eq(l->stat_prefix, "camel");
  ck_assert_str_eq(ds_string(l->default_source_code), "-- camel");
}

static void check_lua_per_route(const ProtobufCMessage *m) {
  const LUAPR_T *l = (const LUAPR_T *)m;

  ck_assert_int_eq(
      l->override_case,
      ENVOY__EXTENSIONS__FILTERS__HTTP__LUA__V3__LUA_PER_ROUTE__OVERRIDE_NAME);
  ck_assert_str_eq(l->name, "hello.lua");
}

static void check_cors(const ProtobufCMessage *m) {
  ck_assert_ptr_eq(m->descriptor, &D_CORS);
  ck_assert_uint_eq(protobuf_c_message_get_packed_size(m), 0);
}

/* Wrappers from bare scalars and as mappings; an enum by name and by
 * number; a repeated message. */
static void check_cors_policy(const ProtobufCMessage *m) {
  const CORSPOL_T *c = (const CORSPOL_T *)m;

  ck_assert_uint_eq(c->n_allow_origin_string_match, 2);
  ck_assert_str_eq(c->allow_origin_string_match[0]->exact, "https://acme.com");
  ck_assert_str_eq(c->allow_origin_string_match[1]->suffix, ".acme.com");
  ck_assert_int_eq(c->allow_origin_string_match[1]->ignore_case, 1);
  ck_assert_str_eq(c->allow_methods, "GET, POST");
  ck_assert_str_eq(c->max_age, "600");
  ck_assert_ptr_nonnull(c->allow_credentials);
  ck_assert_int_eq(c->allow_credentials->value, 1);
  ck_assert_ptr_nonnull(c->forward_not_matching_preflights);
  ck_assert_int_eq(c->forward_not_matching_preflights->value, 0);
  ck_assert_ptr_null(c->allow_private_network_access);
  ck_assert_uint_eq(c->filter_enabled->default_value->numerator, 50);
  ck_assert_int_eq(
      c->filter_enabled->default_value->denominator,
      ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND);
  ck_assert_str_eq(c->filter_enabled->runtime_key, "cors.enabled");
  ck_assert_int_eq(
      c->shadow_enabled->default_value->denominator,
      ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION);
}

/* An Any inside the config, with its own @type; an enum by name. */
static void check_wasm_any(const ProtobufCMessage *m) {
  const WASM_T *w = (const WASM_T *)m;
  const Google__Protobuf__Any *cfg;
  Google__Protobuf__StringValue *sv;

  ck_assert_ptr_nonnull(w->config);
  ck_assert_str_eq(w->config->name, "acme.auth");
  ck_assert_str_eq(w->config->root_id, "auth_root");
  ck_assert_int_eq(w->config->failure_policy,
                   ENVOY__EXTENSIONS__WASM__V3__FAILURE_POLICY__FAIL_OPEN);
  ck_assert_int_eq(w->config->vm_case,
                   ENVOY__EXTENSIONS__WASM__V3__PLUGIN_CONFIG__VM_VM_CONFIG);
  ck_assert_str_eq(w->config->vm_config->runtime, "envoy.wasm.runtime.v8");
  ck_assert_str_eq(w->config->vm_config->code->local->filename,
                   "/etc/envoy/a.wasm");
  ck_assert_uint_eq(w->config->vm_config->environment_variables->n_key_values,
                    1);
  ck_assert_str_eq(
      w->config->vm_config->environment_variables->key_values[0]->key, "LEVEL");
  ck_assert_str_eq(
      w->config->vm_config->environment_variables->key_values[0]->value,
      "debug");
  cfg = w->config->configuration;
  ck_assert_ptr_nonnull(cfg);
  ck_assert_str_eq(cfg->type_url, PFX "google.protobuf.StringValue");
  sv = google__protobuf__string_value__unpack(NULL, cfg->value.len,
                                              cfg->value.data);
  ck_assert_ptr_nonnull(sv);
  ck_assert_str_eq(sv->value, "{\"k\":1}");
  google__protobuf__string_value__free_unpacked(sv, NULL);
}

/* An Any holding a Struct, given by its own fields. */
static void check_wasm_struct_any(const ProtobufCMessage *m) {
  const WASM_T *w = (const WASM_T *)m;
  const Google__Protobuf__Any *cfg = w->config->configuration;
  Google__Protobuf__Struct *st;

  ck_assert_str_eq(cfg->type_url, PFX "google.protobuf.Struct");
  st = google__protobuf__struct__unpack(NULL, cfg->value.len, cfg->value.data);
  ck_assert_ptr_nonnull(st);
  ck_assert_uint_eq(st->n_fields, 2);
  ck_assert_str_eq(st->fields[0]->key, "limit");
  ck_assert_int_eq(st->fields[0]->value->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
  ck_assert_double_eq(st->fields[0]->value->number_value, 10);
  ck_assert_str_eq(st->fields[1]->key, "tags");
  ck_assert_int_eq(st->fields[1]->value->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  ck_assert_uint_eq(st->fields[1]->value->list_value->n_values, 2);
  google__protobuf__struct__free_unpacked(st, NULL);
}

/* Struct from any YAML: every kind of Value. */
static void check_struct(const ProtobufCMessage *m) {
  const Google__Protobuf__Struct *st = (const Google__Protobuf__Struct *)m;
  const Google__Protobuf__Value *v;

  ck_assert_uint_eq(st->n_fields, 6);
  ck_assert_str_eq(st->fields[0]->key, "s");
  ck_assert_int_eq(st->fields[0]->value->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
  ck_assert_str_eq(st->fields[0]->value->string_value, "text");
  ck_assert_str_eq(st->fields[1]->key, "n");
  ck_assert_double_eq(st->fields[1]->value->number_value, 1.5);
  ck_assert_int_eq(st->fields[2]->value->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  ck_assert_int_eq(st->fields[2]->value->bool_value, 1);
  ck_assert_int_eq(st->fields[3]->value->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
  v = st->fields[4]->value;
  ck_assert_str_eq(st->fields[4]->key, "list");
  ck_assert_int_eq(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  ck_assert_uint_eq(v->list_value->n_values, 3);
  ck_assert_double_eq(v->list_value->values[0]->number_value, 1);
  ck_assert_str_eq(v->list_value->values[1]->string_value, "2");
  ck_assert_int_eq(v->list_value->values[2]->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  ck_assert_str_eq(v->list_value->values[2]->struct_value->fields[0]->key, "k");
  v = st->fields[5]->value;
  ck_assert_int_eq(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  ck_assert_str_eq(v->struct_value->fields[0]->key, "deep");
  ck_assert_int_eq(v->struct_value->fields[0]->value->bool_value, 0);
}

static void check_list_value(const ProtobufCMessage *m) {
  const Google__Protobuf__ListValue *lv =
      (const Google__Protobuf__ListValue *)m;

  ck_assert_uint_eq(lv->n_values, 3);
  ck_assert_str_eq(lv->values[0]->string_value, "a");
  ck_assert_int_eq(lv->values[1]->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  ck_assert_uint_eq(lv->values[1]->list_value->n_values, 0);
  ck_assert_int_eq(lv->values[2]->kind_case,
                   GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
}

static void check_value(const ProtobufCMessage *m) {
  const Google__Protobuf__Value *v = (const Google__Protobuf__Value *)m;

  ck_assert_int_eq(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  ck_assert_str_eq(v->struct_value->fields[0]->key, "a");
  ck_assert_double_eq(v->struct_value->fields[0]->value->number_value, -3);
}

#define RBAC_POLICIES(body) AT(N_RBAC) "rules:\n  policies:\n" body

static const struct good_case good[] = {
    {"router_defaults", AT(N_ROUTER), &D_ROUTER, 1, check_router_defaults},
    /* A bare name as @type; camelCase and snake_case; BoolValue from a
     * bare false; a repeated string; a Duration "30s". */
    {"router_fields",
     "'@type': " N_ROUTER "\n"
     "dynamicStats: false\n"
     "suppress_envoy_headers: true\n"
     "respectExpectedRqTimeout: true\n"
     "strictCheckHeaders: [x-envoy-upstream-rq-timeout-ms, "
     "x-envoy-max-retries]\n"
     "upstream_log_options:\n"
     "  flushUpstreamLogOnUpstreamStream: true\n"
     "  upstream_log_flush_interval: 30s\n",
     &D_ROUTER, 1, check_router_fields},
    {"duration_fraction",
     AT(N_ROUTER) "upstreamLogOptions: {upstreamLogFlushInterval: 1.5s}\n",
     &D_ROUTER, 1, check_dur_1_5s},
    {"duration_ms",
     AT(N_ROUTER) "upstreamLogOptions: {upstreamLogFlushInterval: 250ms}\n",
     &D_ROUTER, 1, check_dur_250ms},
    {"duration_mapping",
     AT(N_ROUTER) "upstreamLogOptions:\n"
                  "  upstreamLogFlushInterval: {seconds: 2, nanos: 5000}\n",
     &D_ROUTER, 1, check_dur_map},
    {"rbac_deny_by_path",
     AT(N_RBAC) "rules_stat_prefix: admin_\n"
                "rules:\n"
                "  action: DENY\n"
                "  policies:\n"
                "    deny-admin:\n"
                "      permissions:\n"
                "      - url_path: {path: {prefix: /admin, ignore_case: "
                "true}}\n"
                "      principals:\n"
                "      - any: true\n",
     &D_HRBAC, 1, check_rbac_deny_path},
    {"rbac_enum_numbers",
     AT(N_RBAC) "rules:\n"
                "  action: 1\n"
                "  policies:\n"
                "    b: {permissions: [{destination_port: 22}], "
                "principals: [{any: true}]}\n"
                "    a: {permissions: [{destinationPort: 23}], "
                "principals: [{any: true}]}\n"
                "shadowRules:\n"
                "  action: LOG\n"
                "  auditLoggingOptions: {auditCondition: 3}\n",
     &D_HRBAC, 1, check_rbac_enum_numbers},
    {"rbac_permissions",
     RBAC_POLICIES(
         "    p:\n"
         "      permissions:\n"
         "      - and_rules:\n"
         "          rules:\n"
         "          - header: {name: ':method', string_match: {exact: POST}}\n"
         "          - header:\n"
         "              name: x-debug\n"
         "              present_match: true\n"
         "              invert_match: true\n"
         "              treatMissingHeaderAsEmpty: true\n"
         "      - orRules:\n"
         "          rules:\n"
         "          - destination_port: 8443\n"
         "          - destination_port_range: {start: 9000, end: 9100}\n"
         "          - destinationIp: {addressPrefix: 192.168.0.0, prefixLen: "
         "{value: 16}}\n"
         "      - not_rule:\n"
         "          requested_server_name: {suffix: .internal}\n"
         "      - url_path: {path: {safe_regex: {regex: '^/api/v[0-9]+/.*'}}}\n"
         "      principals: [{any: true}]\n"),
     &D_HRBAC, 1, check_rbac_permissions},
    {"rbac_principals",
     RBAC_POLICIES(
         "    p:\n"
         "      permissions: [{any: true}]\n"
         "      principals:\n"
         "      - or_ids:\n"
         "          ids:\n"
         "          - remote_ip: {address_prefix: 10.0.0.0, prefix_len: 8}\n"
         "          - directRemoteIp: {addressPrefix: '::1', prefixLen: 128}\n"
         "      - authenticated:\n"
         "          principal_name: {exact: 'spiffe://acme/ns/web'}\n"
         "      - not_id: {header: {name: x-user, prefix_match: bot-}}\n"
         "      - andIds:\n"
         "          ids:\n"
         "          - urlPath: {path: {contains: /internal/}}\n"
         "          - header: {name: host, suffixMatch: .acme.com}\n"
         "      - any: true\n"),
     &D_HRBAC, 1, check_rbac_principals},
    {"int64_from_strings",
     RBAC_POLICIES("    big:\n"
                   "      permissions:\n"
                   "      - header:\n"
                   "          name: content-length\n"
                   "          range_match: {start: '-9007199254740993', "
                   "end: 9223372036854775807}\n"
                   "      principals: [{any: true}]\n"),
     &D_HRBAC, 1, check_rbac_int64},
    {"lua_default_source",
     AT(N_LUA) "stat_prefix: edge\n"
               "default_source_code:\n"
               "  inline_string: |\n"
               "    function envoy_on_request(h)\n"
               "      h:headers():add(\"x-lua\", \"1\")\n"
               "    end\n",
     &D_LUA, 1, check_lua_default},
    {"lua_source_codes_bytes",
     AT(N_LUA) "inline_code: '-- deprecated'\n"
               "source_codes:\n"
               "  hello.lua: {inline_string: '-- hello'}\n"
               "  world.lua:\n"
               "    filename: /etc/lua/world.lua\n"
               "    watchedDirectory: {path: /etc/lua}\n"
               "  bin.lua: {inlineBytes: aGVsbG8gd29ybGQ=}\n"
               "defaultSourceCode: {environment_variable: LUA_CODE}\n",
     &D_LUA, 1, check_lua_source_codes},
    {"null_oneof_member_is_unset",
     AT(N_LUA) "stat_prefix: edge\n"
               "default_source_code:\n"
               "  filename: ~\n"
               "  inline_string: |\n"
               "    function envoy_on_request(h)\n"
               "      h:headers():add(\"x-lua\", \"1\")\n"
               "    end\n",
     &D_LUA, 1, check_lua_default},
    {"wasm_struct_any_value_form",
     AT(N_WASM) "config:\n"
                "  configuration:\n"
                "    '@type': google.protobuf.Struct\n"
                "    value: {limit: 10, tags: [a, b]}\n",
     &D_WASM, 1, check_wasm_struct_any},
    {"lua_camel_case",
     AT(N_LUA) "statPrefix: camel\n"
               "defaultSourceCode: {inlineString: '-- camel'}\n",
     &D_LUA, 1, check_lua_camel},
    {"lua_per_route", "name: hello.lua\n", &D_LUAPR, 0, check_lua_per_route},
    {"cors", AT(N_CORS), &D_CORS, 1, check_cors},
    {"cors_policy",
     "allow_origin_string_match:\n"
     "- exact: https://acme.com\n"
     "- {suffix: .acme.com, ignoreCase: true}\n"
     "allowMethods: GET, POST\n"
     "max_age: '600'\n"
     "allow_credentials: true\n"
     "forwardNotMatchingPreflights: {value: false}\n"
     "filter_enabled:\n"
     "  default_value: {numerator: 50, denominator: TEN_THOUSAND}\n"
     "  runtime_key: cors.enabled\n"
     "shadowEnabled: {defaultValue: {numerator: 1, denominator: 2}}\n",
     &D_CORSPOL, 0, check_cors_policy},
    {"wasm_nested_any",
     AT(N_WASM) "config:\n"
                "  name: acme.auth\n"
                "  root_id: auth_root\n"
                "  failurePolicy: FAIL_OPEN\n"
                "  vm_config:\n"
                "    runtime: envoy.wasm.runtime.v8\n"
                "    code: {local: {filename: /etc/envoy/a.wasm}}\n"
                "    environmentVariables: {keyValues: {LEVEL: debug}}\n"
                "  configuration:\n"
                "    '@type': type.googleapis.com/google.protobuf.StringValue\n"
                "    value: '{\"k\":1}'\n",
     &D_WASM, 1, check_wasm_any},
    {"wasm_struct_any",
     AT(N_WASM) "config:\n"
                "  configuration:\n"
                "    '@type': google.protobuf.Struct\n"
                "    fields: {limit: 10, tags: [a, b]}\n",
     &D_WASM, 1, check_wasm_struct_any},
    {"struct",
     "s: text\nn: 1.5\nb: true\nz: ~\nlist: [1, '2', {k: v}]\n"
     "nested: {deep: false}\n",
     &google__protobuf__struct__descriptor, 0, check_struct},
    {"list_value", "[a, [], null]\n", &google__protobuf__list_value__descriptor,
     0, check_list_value},
    {"value", "{a: -3}\n", &google__protobuf__value__descriptor, 0,
     check_value},
};

START_TEST(converts) {
  const struct good_case *g = &good[_i];
  ProtobufCMessage *m;

  m = g->any ? convert(g->yaml, g->desc) : convert_msg(g->yaml, g->desc);
  g->check(m);
  protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Conversions that fail: the exact message. */

struct bad_case {
  const char *name;
  const char *yaml;
  const char *msg;
};

#define RBAC_PERM(perm)                                                        \
  AT(N_RBAC)                                                                   \
  "rules:\n  policies:\n    p:\n      permissions:\n"                          \
  "      - " perm "\n"

/* A Principal nested more than PBYAML_MAX_DEPTH deep (filled in at run
 * time; see deep_yaml). */
#define DEEP_NOT_IDS 50

static const struct bad_case bad[] = {
    {"unknown_field", RBAC_PERM("{any: true, bogus: 1}"),
     "t.yaml:6:21: typedConfig.rules.policies[\"p\"].permissions[0].bogus: "
     "unknown field \"bogus\" of envoy.config.rbac.v3.Permission"},
    {"unknown_top_field", AT(N_LUA) "inline_codes: x\n",
     "t.yaml:2:1: typedConfig.inline_codes: unknown field \"inline_codes\" "
     "of envoy.extensions.filters.http.lua.v3.Lua"},
    {"unknown_camel_field", AT(N_LUA) "statPrefx: x\n",
     "t.yaml:2:1: typedConfig.statPrefx: unknown field \"statPrefx\" of "
     "envoy.extensions.filters.http.lua.v3.Lua"},
    {"unknown_field_in_map_value",
     AT(N_LUA) "source_codes:\n  a.lua: {inline: x}\n",
     "t.yaml:3:11: typedConfig.source_codes[\"a.lua\"].inline: unknown field "
     "\"inline\" of envoy.config.core.v3.DataSource"},
    {"string_for_message", AT(N_RBAC) "rules: deny\n",
     "t.yaml:2:8: typedConfig.rules: expected a mapping for message "
     "envoy.config.rbac.v3.RBAC, got a string"},
    {"string_for_map_value", AT(N_LUA) "source_codes: {a.lua: '-- x'}\n",
     "t.yaml:2:23: typedConfig.source_codes[\"a.lua\"]: expected a mapping for "
     "message envoy.config.core.v3.DataSource, got a string"},
    {"list_for_scalar", AT(N_LUA) "stat_prefix: [a, b]\n",
     "t.yaml:2:14: typedConfig.stat_prefix: expected a scalar, got a sequence"},
    {"scalar_for_list",
     AT(N_ROUTER) "strict_check_headers: x-envoy-max-retries\n",
     "t.yaml:2:23: typedConfig.strict_check_headers: expected a list, got a "
     "string"},
    {"list_for_map", AT(N_LUA) "source_codes: [a.lua]\n",
     "t.yaml:2:15: typedConfig.source_codes: expected a mapping, got a "
     "sequence"},
    {"int_for_string", AT(N_LUA) "stat_prefix: 12\n",
     "t.yaml:2:14: typedConfig.stat_prefix: expected a string, got an "
     "integer (quote it)"},
    {"spaces_in_quoted_int", RBAC_PERM("{destination_port: ' 80'}"),
     "t.yaml:6:28: typedConfig.rules.policies[\"p\"].permissions[0]."
     "destination_port: expected an integer, got a string"},
    {"type_not_a_string", "'@type': [a]\n",
     "t.yaml:1:10: typedConfig.@type: expected a type name string, got a "
     "sequence"},
    {"duration_bad_nanos",
     AT(N_WASM) "config: {vm_config: {code: {remote: {http_uri: {uri: x, "
                "cluster: c, timeout: {seconds: 1, nanos: 2000000000}}}}}}\n",
     "t.yaml:2:78: typedConfig.config.vm_config.code.remote.http_uri.timeout: "
     "not a valid duration: nanos must be within (-1e9, 1e9) with the sign of "
     "seconds, and seconds within +-10,000 years"},
    {"string_for_bool", AT(N_ROUTER) "suppress_envoy_headers: yes\n",
     "t.yaml:2:25: typedConfig.suppress_envoy_headers: expected true or false, "
     "got a string"},
    {"float_for_int", RBAC_PERM("{destination_port: 80.5}"),
     "t.yaml:6:28: typedConfig.rules.policies[\"p\"].permissions[0]."
     "destination_port: expected an integer, got a number"},
    {"unknown_enum_name", AT(N_RBAC) "rules: {action: MAYBE}\n",
     "t.yaml:2:17: typedConfig.rules.action: \"MAYBE\" is not a value of enum "
     "envoy.config.rbac.v3.RBAC.Action"},
    {"unknown_enum_number", AT(N_RBAC) "rules: {action: 7}\n",
     "t.yaml:2:17: typedConfig.rules.action: 7 is not a value of enum "
     "envoy.config.rbac.v3.RBAC.Action"},
    {"int32_out_of_range",
     RBAC_PERM("{destination_port_range: {start: 3000000000, end: 1}}"),
     "t.yaml:6:42: typedConfig.rules.policies[\"p\"].permissions[0]."
     "destination_port_range.start: 3000000000 does not fit an int32"},
    {"negative_uint", RBAC_PERM("{destination_port: -1}"),
     "t.yaml:6:28: typedConfig.rules.policies[\"p\"].permissions[0]."
     "destination_port: -1 does not fit a uint32"},
    {"uint32_wrapper_too_big",
     RBAC_PERM("{destination_ip: {address_prefix: 10.0.0.0, prefix_len: "
               "4294967296}}"),
     "t.yaml:6:65: "
     "typedConfig.rules.policies[\"p\"].permissions[0].destination_ip."
     "prefix_len: 4294967296 does not fit a uint32"},
    {"int64_bad_string",
     RBAC_PERM("{header: {name: a, range_match: {start: '12x'}}}"),
     "t.yaml:6:49: typedConfig.rules.policies[\"p\"].permissions[0].header."
     "range_match.start: expected an integer, got a string"},
    {"bad_duration",
     AT(N_ROUTER) "upstream_log_options:\n"
                  "  upstream_log_flush_interval: 30min\n",
     "t.yaml:3:32: typedConfig.upstream_log_options."
     "upstream_log_flush_interval: \"30min\" is not a duration like \"30s\" or "
     "\"1.5s\" or \"250ms\""},
    {"bad_base64", AT(N_LUA) "default_source_code: {inline_bytes: '%%%'}\n",
     "t.yaml:2:37: typedConfig.default_source_code.inline_bytes: expected "
     "base64 bytes"},
    {"oneof_two_members", RBAC_PERM("{any: true, header: {name: x}}"),
     "t.yaml:6:29: typedConfig.rules.policies[\"p\"].permissions[0].header: "
     "only "
     "one of header and any may be set"},
    {"oneof_data_source",
     AT(N_LUA) "default_source_code:\n  filename: /a.lua\n"
               "  inline_string: x\n",
     "t.yaml:4:18: typedConfig.default_source_code.inline_string: only one of "
     "inline_string and filename may be set"},
    {"oneof_header_matcher",
     RBAC_PERM("{header: {name: a, exact_match: b, string_match: {exact: b}}}"),
     "t.yaml:6:58: typedConfig.rules.policies[\"p\"].permissions[0].header."
     "string_match: only one of string_match and exact_match may be set"},
    {"unknown_type",
     "'@type': "
     "type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope\n",
     "t.yaml:1:10: typedConfig: unknown @type "
     "\"type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope\": "
     "wasmxds has no descriptor for it (add its messages to proto/)"},
    {"missing_type", "stat_prefix: x\n",
     "t.yaml:1:1: typedConfig: missing \"@type\""},
    {"listener_as_filter", AT("envoy.config.listener.v3.Listener") "name: x\n",
     "t.yaml:1:10: typedConfig.@type: envoy.config.listener.v3.Listener is "
     "not an HTTP filter configuration"},
    {"per_route_as_filter",
     AT("envoy.extensions.filters.http.lua.v3.LuaPerRoute"),
     "t.yaml:1:10: typedConfig.@type: "
     "envoy.extensions.filters.http.lua.v3.LuaPerRoute is not an HTTP filter "
     "configuration"},
    {"nested_any_unknown_type",
     AT(N_WASM) "config:\n  configuration: {'@type': acme.Config}\n",
     "t.yaml:3:28: typedConfig.config.configuration: unknown @type "
     "\"acme.Config\": wasmxds has no descriptor for it (add its messages to "
     "proto/)"},
    {"nested_any_missing_type",
     AT(N_WASM) "config:\n  configuration: {value: x}\n",
     "t.yaml:3:18: typedConfig.config.configuration: an Any needs an "
     "\"@type\" string"},
    {"nested_any_unknown_field",
     AT(N_WASM) "config:\n  configuration:\n"
                "    '@type': google.protobuf.StringValue\n"
                "    valu: x\n",
     "t.yaml:5:5: typedConfig.config.configuration.valu: unknown field "
     "\"valu\" of google.protobuf.StringValue"},
    {"too_deep", NULL, NULL}, /* built by deep_yaml */
};

/* RBAC with a principal that is DEEP_NOT_IDS not_ids deep, in flow style
 * on line 6; and the error it must give. */
static void deep_yaml(char *yaml, size_t n, char *msg, size_t mn) {
  char path[512];
  size_t len, col, depth_principal;

  len = (size_t)snprintf(yaml, n,
                         AT(N_RBAC) "rules:\n  policies:\n    p:\n"
                                    "      principals:\n      - ");
  col = 9; /* where the first Principal's '{' is, on line 6 */
  /* The RBAC filter, rules and the Policy are levels 1..3; Principal k
   * (from 1) is level 3 + k, so Principal 46 is the first too deep. */
  depth_principal = PBYAML_MAX_DEPTH + 1 - 3;
  snprintf(path, sizeof(path),
           "typedConfig.rules.policies[\"p\"].principals[0]");
  for (int k = 1; k <= DEEP_NOT_IDS; k++) {
    len += (size_t)snprintf(yaml + len, n - len, "{not_id: ");
    if ((size_t)k < depth_principal) {
      snprintf(path + strlen(path), sizeof(path) - strlen(path), ".not_id");
      col += strlen("{not_id: ");
    }
  }
  len += (size_t)snprintf(yaml + len, n - len, "{any: true}");
  for (int k = 1; k <= DEEP_NOT_IDS; k++)
    len += (size_t)snprintf(yaml + len, n - len, "}");
  snprintf(yaml + len, n - len, "\n");
  snprintf(msg, mn, "t.yaml:6:%zu: %s: nested deeper than %d levels", col, path,
           PBYAML_MAX_DEPTH);
}

START_TEST(rejects) {
  const struct bad_case *b = &bad[_i];
  char deep[2048], deep_msg[1024];
  const char *yaml = b->yaml, *want = b->msg;
  struct ydoc *doc = NULL;
  struct xds_arena a;
  struct xds_err err = {0, ""};
  Google__Protobuf__Any *any = (Google__Protobuf__Any *)&err; /* not NULL */
  int rc;

  if (yaml == NULL) {
    deep_yaml(deep, sizeof(deep), deep_msg, sizeof(deep_msg));
    yaml = deep;
    want = deep_msg;
  }
  xds_arena_init(&a, 0);
  rc = pbyaml_pack_any(parse(yaml, &doc), NULL, &a, &any, &err);
  ck_assert_msg(rc == XDS_EINVAL, "%s: rc %d, want XDS_EINVAL", b->name, rc);
  ck_assert_ptr_null(any);
  ck_assert_str_eq(err.msg, want);
  xds_arena_cleanup(&a);
  ydoc_free(doc);
}
END_TEST

/* The registry: which names are HTTP filter configs. */
START_TEST(registry) {
  static const char *const filters[] = {N_ROUTER, N_RBAC, N_LUA, N_CORS,
                                        N_WASM};
  static const char *const others[] = {
      "envoy.extensions.filters.http.lua.v3.LuaPerRoute",
      "envoy.extensions.filters.http.cors.v3.CorsPolicy",
      "envoy.config.rbac.v3.RBAC", "envoy.config.listener.v3.Listener"};

  for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
    ck_assert_ptr_nonnull(pbyaml_find_type(filters[i]));
    ck_assert_str_eq(pbyaml_find_type(filters[i])->name, filters[i]);
    ck_assert_int_eq(pbyaml_is_http_filter(filters[i]), 1);
  }
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    ck_assert_ptr_nonnull(pbyaml_find_type(others[i]));
    ck_assert_int_eq(pbyaml_is_http_filter(others[i]), 0);
  }
  ck_assert_ptr_null(
      pbyaml_find_type("envoy.extensions.filters.http.nope.v3.Nope"));
  ck_assert_int_eq(
      pbyaml_is_http_filter("envoy.extensions.filters.http.nope.v3.Nope"), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A listener template with RBAC, Lua and CORS, through the file store and
 * encode_listener. */

static const char tmpl_store[] =
    "apiVersion: wasmxds.io/v1\nkind: ListenerTemplate\n"
    "metadata: {name: edge}\n"
    "spec:\n"
    "  port: 8080\n"
    "  direction: INBOUND\n"
    "  route: {cluster: app}\n"
    "  httpFilters:\n"
    "  - name: envoy.filters.http.cors\n"
    "    typedConfig:\n"
    "      '@type': "
    "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors\n"
    "  - name: deny-admin\n"
    "    phase: AUTHZ\n"
    "    typedConfig:\n"
    "      '@type': "
    "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC\n"
    "      rules:\n"
    "        action: DENY\n"
    "        policies:\n"
    "          admin-paths:\n"
    "            permissions:\n"
    "            - url_path: {path: {prefix: /admin}}\n"
    "            principals:\n"
    "            - not_id: {remote_ip: {address_prefix: 10.0.0.0, prefix_len: "
    "8}}\n"
    "  - name: envoy.filters.http.lua\n"
    "    typedConfig:\n"
    "      '@type': "
    "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n"
    "      statPrefix: edge\n"
    "      defaultSourceCode:\n"
    "        inlineString: |\n"
    "          function envoy_on_response(h)\n"
    "            h:headers():add(\"x-edge\", \"1\")\n"
    "          end\n"
    "  - name: envoy.filters.http.router\n"
    "    typedConfig:\n"
    "      '@type': "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n";

START_TEST(template_rbac_lua_cors) {
  struct catalog *cat = tu_catalog(tmpl_store);
  const struct listener_tmpl *t = catalog_tmpl_find(cat, "edge");
  static const char *const names[] = {"envoy.filters.http.cors", "deny-admin",
                                      "envoy.filters.http.lua",
                                      "envoy.filters.http.router"};
  static const char *const urls[] = {PFX N_CORS, PFX N_RBAC, PFX N_LUA,
                                     PFX N_ROUTER};
  Envoy__Config__Listener__V3__Listener *l;
  Envoy__Config__Listener__V3__Filter *nf;
  HCM_T *hcm;
  HRBAC_T *rbac;
  LUA_T *lua;
  ProtobufCMessage *cors;
  const POLICY_T *p;
  struct encode_opts opts;
  struct proxy_id pid;
  struct chain c;
  struct xds_buf b;
  struct xds_err err = {0, ""};

  ck_assert_ptr_nonnull(t);
  encode_opts_default(&opts);
  tu_proxy(&pid, "n", "acme", NULL, PROXY_MODE_SIDECAR, NULL);
  ck_assert_int_eq(chain_compute(cat, &pid, t, &c), 0);
  xds_buf_init(&b, 1 << 20);
  ck_assert_msg(encode_listener(t, &c, &opts, &b, &err) == 0, "%s", err.msg);
  l = envoy__config__listener__v3__listener__unpack(NULL, b.len,
                                                    (const uint8_t *)b.data);
  ck_assert_ptr_nonnull(l);
  ck_assert_uint_eq(l->n_filter_chains, 1);
  ck_assert_uint_eq(l->filter_chains[0]->n_filters, 1);
  nf = l->filter_chains[0]->filters[0];
  ck_assert_str_eq(nf->typed_config->type_url, TYPE_HCM);
  hcm =
      envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
          NULL, nf->typed_config->value.len, nf->typed_config->value.data);
  ck_assert_ptr_nonnull(hcm);

  ck_assert_uint_eq(hcm->n_http_filters, 4);
  for (size_t i = 0; i < 4; i++) {
    ck_assert_str_eq(hcm->http_filters[i]->name, names[i]);
    ck_assert_ptr_nonnull(hcm->http_filters[i]->typed_config);
    ck_assert_str_eq(hcm->http_filters[i]->typed_config->type_url, urls[i]);
  }

  cors = protobuf_c_message_unpack(
      &D_CORS, NULL, hcm->http_filters[0]->typed_config->value.len,
      hcm->http_filters[0]->typed_config->value.data);
  ck_assert_ptr_nonnull(cors);
  ck_assert_uint_eq(hcm->http_filters[0]->typed_config->value.len, 0);
  protobuf_c_message_free_unpacked(cors, NULL);

  rbac = envoy__extensions__filters__http__rbac__v3__rbac__unpack(
      NULL, hcm->http_filters[1]->typed_config->value.len,
      hcm->http_filters[1]->typed_config->value.data);
  ck_assert_ptr_nonnull(rbac);
  ck_assert_int_eq(rbac->rules->action,
                   ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY);
  p = policy(rbac->rules, 0, "admin-paths");
  ck_assert_uint_eq(p->n_permissions, 1);
  ck_assert_str_eq(p->permissions[0]->url_path->path->prefix, "/admin");
  ck_assert_uint_eq(p->n_principals, 1);
  ck_assert_int_eq(p->principals[0]->identifier_case,
                   ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID);
  ck_assert_str_eq(p->principals[0]->not_id->remote_ip->address_prefix,
                   "10.0.0.0");
  ck_assert_uint_eq(p->principals[0]->not_id->remote_ip->prefix_len->value, 8);
  envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(rbac, NULL);

  lua = envoy__extensions__filters__http__lua__v3__lua__unpack(
      NULL, hcm->http_filters[2]->typed_config->value.len,
      hcm->http_filters[2]->typed_config->value.data);
  ck_assert_ptr_nonnull(lua);
  ck_assert_str_eq(lua->stat_prefix, "edge");
  ck_assert_str_eq(ds_string(lua->default_source_code),
                   "function envoy_on_response(h)\n"
                   "  h:headers():add(\"x-edge\", \"1\")\nend\n");
  envoy__extensions__filters__http__lua__v3__lua__free_unpacked(lua, NULL);

  envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
      hcm, NULL);
  envoy__config__listener__v3__listener__free_unpacked(l, NULL);
  xds_buf_cleanup(&b);
  chain_cleanup(&c);
  proxy_id_cleanup(&pid);
  catalog_unref(cat);
}
END_TEST

Suite *pbyaml_suite(void) {
  Suite *s = suite_create("pbyaml");
  TCase *tc = tcase_create("convert");
  TCase *te = tcase_create("errors");
  TCase *tt = tcase_create("template");

  tcase_add_loop_test(tc, converts, 0, sizeof(good) / sizeof(good[0]));
  tcase_add_test(tc, registry);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(te, rejects, 0, sizeof(bad) / sizeof(bad[0]));
  suite_add_tcase(s, te);
  tcase_add_test(tt, template_rbac_lua_cors);
  suite_add_tcase(s, tt);
  return s;
}
