/*
 * decode_priv.h: what the files of the decoder share; private to store/
 * (decode.c, decode_json.c, decode_common.c and one decode_<kind>.c per
 * resource kind).
 *
 * decode.c owns the field walker below (a current field path, typed
 * getters that report every error with file:line:column and path) and
 * dispatches a document by apiVersion and kind through the table of
 * struct decode_kind_ops. To add a kind: write decode_<kind>.c with its
 * decode_kind_ops, declare it here, add it to the table in decode.c, and
 * give it an enum decode_kind value and a record in struct decode_result
 * (decode.h).
 *
 * Pure: no I/O, no globals; every function works on its own arguments and
 * may run on any thread.
 */
#ifndef XDS_STORE_DECODE_PRIV_H
#define XDS_STORE_DECODE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "store/decode.h"
#include "store/problems.h"
#include "store/ydoc.h"

/* Longest field path built while decoding (longer ones are cut). */
#define DECODE_PATH_MAX PROBLEMS_PATH_MAX

/* The state of one document's decode. */
struct dctx {
  struct problems *pb;
  int rc;     /* 0 or XDS_ENOMEM, sticky */
  int errors; /* errors found in this document */
  char path[DECODE_PATH_MAX];
  size_t plen;
};

/* One resource kind: the apiVersion and kind that select it, the value
 * that goes into decode_result.kind, and its walker. decode() records
 * every error through c and fills its record in out (out->ext or
 * out->tmpl, and out->id as soon as the identity is known); decode.c drops
 * the record when any error was found. */
struct decode_kind_ops {
  const char *api_version;
  const char *kind;
  enum decode_kind id;
  void (*decode)(struct dctx *c, const struct ynode *doc,
                 struct decode_result *out);
  /* The top-level keys the kind allows (NULL-terminated); NULL: apiVersion,
   * kind, metadata and spec. */
  const char *const *top_keys;
};

/* extension.tsb.tetrate.io/v2 WasmExtension (decode_wasmext.c). */
extern const struct decode_kind_ops decode_wasmext_ops;
/* wasmxds.io/v1 ListenerTemplate (decode_template.c). */
extern const struct decode_kind_ops decode_template_ops;
/* extensions.istio.io/v1alpha1 WasmPlugin (decode_wasmplugin.c). */
extern const struct decode_kind_ops decode_wasmplugin_ops;
/* networking.enterprise.mesh.gloo.solo.io/v1beta1 WasmDeployment
 * (decode_wasmdeploy.c): one record per filter, in out->exts. */
extern const struct decode_kind_ops decode_wasmdeploy_ops;

/* ---- module URLs (decode_wasmext.c) ---- */

/* Validates the module location s (reported at node at) and gives it a
 * scheme ("oci://" when none): oci, http, https or file (an absolute
 * path). Returns a new string (caller frees) and *scheme, or NULL
 * (reported, or c->rc set to XDS_ENOMEM). */
char *decode_normalise_url(struct dctx *c, const struct ynode *at,
                           const char *s, enum wasm_url_scheme *scheme);

/* ---- the field path (decode.c) ---- */

/* Appends ".key" (or "key" at the root) to the path; returns the mark to
 * give dctx_path_restore(). A path longer than DECODE_PATH_MAX is cut. */
size_t dctx_path_key(struct dctx *c, const char *key);
/* Appends "[i]" to the path; returns the mark to restore. */
size_t dctx_path_index(struct dctx *c, size_t i);
/* Cuts the path back to a mark from dctx_path_key/dctx_path_index. */
void dctx_path_restore(struct dctx *c, size_t mark);

/* ---- reports (decode.c) ---- */

/* Adds an error at node at (its file:line:column) and the current path;
 * counts it in c->errors. Allocation failure sets c->rc. */
void dctx_bad(struct dctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a warning (it does not reject the document). */
void dctx_warn(struct dctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A copy of s (caller frees), or NULL with c->rc set to XDS_ENOMEM. */
char *dctx_strdup(struct dctx *c, const char *s);

/* ---- typed getters (decode.c) ---- */

/* 1 when n is a mapping, else reports "expected a mapping" and returns 0. */
int dctx_want_map(struct dctx *c, const struct ynode *n);
/* 1 when n is a sequence, else reports "expected a sequence" and returns 0. */
int dctx_want_seq(struct dctx *c, const struct ynode *n);
/* Reports each key of map that is not in allowed (NULL-terminated). */
void dctx_check_keys(struct dctx *c, const struct ynode *map,
                     const char *const *allowed);
/* The value under key, or NULL when absent or null (null means "not set",
 * as in protobuf JSON). */
const struct ynode *decode_field(const struct ynode *map, const char *key);
/* Checks that n is a string scalar; returns its text (borrowed from n) or
 * NULL (reported). */
const char *dctx_want_str(struct dctx *c, const struct ynode *n);
/*
 * Reads the string field key of map into *out (a new string, or NULL when
 * absent, null or empty). A required field that is missing or empty is
 * reported at the mapping. Returns the value node or NULL.
 */
const struct ynode *dctx_get_str(struct dctx *c, const struct ynode *map,
                                 const char *key, int required, char **out);
/* Reads the enum field key: *out is the index of its value in names
 * (NULL-terminated), or left alone when absent. Returns the value node or
 * NULL. */
const struct ynode *dctx_get_enum(struct dctx *c, const struct ynode *map,
                                  const char *key, const char *const *names,
                                  int *out);
/* Reads the integer field key within [min, max] (range is the text of the
 * range for the message). Returns 1 when *out was set, 0 when absent or
 * bad (bad is reported). */
int dctx_get_int(struct dctx *c, const struct ynode *map, const char *key,
                 int64_t min, int64_t max, const char *range, int64_t *out);

/* ---- names (decode.c) ---- */

/* 1 when s is a name of an organization, tenant, extension or template: 1
 * to DECODE_NAME_MAX letters, digits, '-', '_' or '.', starting with a
 * letter or digit (which also keeps '/' out of fqns). */
int decode_valid_name(const char *s);
/* Reports s (when not NULL) at node at unless it is a valid name. */
void dctx_check_name(struct dctx *c, const struct ynode *at, const char *s);
/* 1 when the n bytes at s are a C identifier ([A-Za-z_][A-Za-z0-9_]*). */
int decode_is_ident(const char *s, size_t n);

/* ---- shared checks and readers (decode_common.c) ---- */

/* The metadata keys a Kubernetes-style kind accepts: name, namespace and
 * what Kubernetes owns (uid, resourceVersion, generation, labels, ...;
 * read and ignored). NULL-terminated, for dctx_check_keys(). */
extern const char *const decode_k8s_meta_keys[];
/* 1 when s is one of list (NULL-terminated). */
int decode_in_list(const char *s, const char *const *list);
/* 1 when the n bytes at s are a DNS-1123 label: 1..63 of [a-z0-9-],
 * alphanumeric at both ends. */
int decode_dns_label(const char *s, size_t n);
/* 1 when s is a DNS-1123 subdomain: 1..DECODE_NAME_MAX, dot-separated
 * labels. */
int decode_dns_subdomain(const char *s);
/* qsort comparator of struct label (model.h) by key. */
int decode_label_cmp(const void *a, const void *b);
/* Reads the bool field key of map into *out (left alone when absent);
 * anything but a YAML bool is reported. */
void dctx_get_bool(struct dctx *c, const struct ynode *map, const char *key,
                   int *out);
/* Converts the Struct v to compact JSON: *out is a new string (caller
 * frees) on success and left alone otherwise. A value with no JSON form is
 * reported "<why> (<text>) in <where>" at the value; more than
 * DECODE_MAX_CONFIG_JSON bytes is reported at v; XDS_ENOMEM sets c->rc. */
void dctx_struct_json(struct dctx *c, const struct ynode *v, const char *where,
                      char **out);

/* Reads a Kubernetes object's metadata meta (a mapping): its generation
 * into *generation (0 unless a non-negative integer; anything else is
 * ignored, as the rest of what Kubernetes owns is) and its required name,
 * a DNS-1123 subdomain (else reported as not a valid <kind> name), into
 * *name (NULL when missing). The path is at meta. */
void dctx_get_k8s_name(struct dctx *c, const struct ynode *meta,
                       const char *kind, char **name, int64_t *generation);
/* Reports ns, read at node v, unless it is a valid namespace (a DNS-1123
 * label). The path is at the metadata. */
void dctx_check_namespace(struct dctx *c, const struct ynode *v,
                          const char *ns);
/* The names of enum wasm_phase and of enum wasm_pull_policy in their
 * order (NULL-terminated), as WasmExtension and WasmPlugin spell them. */
extern const char *const decode_phase_names[];
extern const char *const decode_pull_policy_names[];
/* 1 when s is a sha256 digest in hex: 64 lowercase hexadecimal digits. */
int decode_is_sha256(const char *s);
/* A new zeroed record located at doc (its line, column and source; the
 * caller owns it), or NULL with c->rc set to XDS_ENOMEM. */
struct wasm_ext *dctx_ext_new(struct dctx *c, const struct ynode *doc);
/*
 * Room for the items of v (a sequence or a mapping, already checked):
 * *n is its length and the result a new zeroed array of *n items of size
 * bytes (caller frees). NULL with *n 0 when v is empty, when it has more
 * than max items (reported "more than <max> <what>" at v), or when memory
 * runs out (c->rc set).
 */
void *dctx_items(struct dctx *c, const struct ynode *v, size_t max,
                 const char *what, size_t size, size_t *n);
/* Reads spec's phase (into e->phase; WASM_PHASE_UNSPECIFIED when absent)
 * and priority (an int32, into e->priority when set). */
void dctx_get_phase(struct dctx *c, const struct ynode *spec,
                    struct wasm_ext *e);
/* Reads spec's imagePullPolicy (into e->pull_policy;
 * WASM_PULL_UNSPECIFIED when absent) and imagePullSecret (into
 * e->pull_secret); a secret longer than secret_max characters (0: no
 * limit) is reported. */
void dctx_get_pull(struct dctx *c, const struct ynode *spec, size_t secret_max,
                   struct wasm_ext *e);

/* The rules of an env list (vmConfig.env) that differ between kinds. */
struct decode_env_rules {
  /* Longest name; 0: no limit. A bad name is reported "is not a C
   * identifier of at most <name_max> characters" when set, else "does not
   * match [A-Za-z_][A-Za-z0-9_]*". */
  size_t name_max;
  /* Longest value; 0: no limit. */
  size_t value_max;
  /* 1: a value with valueFrom HOST is an error; 0: a warning and the
   * value is dropped. */
  int host_value_is_error;
  /* 1: a duplicate name's report gives the line of the first. */
  int dup_first_line;
  /* 1: an item with an unknown key is left out of the list (so it is not
   * seen by the duplicate check); 0: it is kept (the document is rejected
   * for the unknown key either way). */
  int drop_on_key_error;
};
/* Reads vm's env list (a sequence of {name, valueFrom, value}, at most
 * DECODE_MAX_ENV) into e->env and e->n_env under the rules r: names are C
 * identifiers and unique, valueFrom is INLINE (the default; an absent
 * value is "") or HOST (no value kept). Items with errors are reported and
 * left out. */
void dctx_get_env(struct dctx *c, const struct ynode *vm,
                  const struct decode_env_rules *r, struct wasm_ext *e);

/* ---- JSON (decode_json.c) ---- */

/*
 * Appends n to out as compact JSON (the rules of decode_json() in
 * decode.h). Returns 0; XDS_EINVAL with *bad_node and *why (a static
 * string) saying where and why a value has no JSON form; XDS_ETOOBIG when
 * out's limit is reached; XDS_ENOMEM.
 */
int decode_json_put(struct xds_buf *out, const struct ynode *n,
                    const struct ynode **bad_node, const char **why);

#endif
