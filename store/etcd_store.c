/*
 * etcd_store.c: a sorted table of keys, each with its value, the result
 * of decoding it (lazily) and its last good record.
 *
 * Invariants: keys are sorted by byte order and unique; an entry's
 * good_ext/good_tmpl is the record of the last value of that key that
 * decoded without errors (at most one of the two is set), and is what the
 * key serves; `broken` says the current value is not that one.
 */
#include "store/etcd_store.h"

#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "base/alloc.h"
#include "store/decode.h"
#include "store/ydoc.h"

struct key_entry {
  char *key;
  char *value;
  size_t len;
  int64_t mod_revision;
  int seen;    /* put since etcd_store_relist_begin() */
  int decoded; /* broken, pb and the good record reflect value */
  int broken;
  struct problems pb;
  struct wasm_ext *good_ext;
  struct listener_tmpl *good_tmpl;
  /* A WasmDeployment's filters (good_ext NULL): one record each. */
  struct wasm_ext **good_deploy;
  size_t n_good_deploy;
};

static void free_deploy(struct key_entry *e) {
  for (size_t i = 0; i < e->n_good_deploy; i++)
    wasm_ext_free(e->good_deploy[i]);
  xds_free(e->good_deploy);
  e->good_deploy = NULL;
  e->n_good_deploy = 0;
}

struct etcd_store {
  char *prefix; /* with the trailing '/' */
  size_t prefix_len;
  char *bare_prefix; /* without it, for canonical keys */
  struct store_hooks hooks;
  int has_hooks;
  struct key_entry **v; /* sorted by key */
  size_t n;
  size_t cap;
  unsigned long decodes;
};

static void entry_free(struct key_entry *e) {
  if (e == NULL)
    return;
  xds_free(e->key);
  xds_free(e->value);
  problems_cleanup(&e->pb);
  wasm_ext_free(e->good_ext);
  listener_tmpl_free(e->good_tmpl);
  free_deploy(e);
  xds_free(e);
}

struct etcd_store *etcd_store_new(const char *prefix,
                                  const struct store_hooks *hooks) {
  struct etcd_store *s = xds_calloc(1, sizeof(*s));

  if (s == NULL)
    return NULL;
  s->bare_prefix = xds_strdup(prefix);
  s->prefix = xds_asprintf("%s/", prefix);
  if (s->bare_prefix == NULL || s->prefix == NULL) {
    etcd_store_free(s);
    return NULL;
  }
  s->prefix_len = strlen(s->prefix);
  if (hooks != NULL) {
    s->hooks = *hooks;
    s->has_hooks = 1;
  }
  return s;
}

void etcd_store_free(struct etcd_store *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++)
    entry_free(s->v[i]);
  xds_free(s->v);
  xds_free(s->prefix);
  xds_free(s->bare_prefix);
  xds_free(s);
}

size_t etcd_store_count(const struct etcd_store *s) {
  return s->n;
}

unsigned long etcd_store_decodes(const struct etcd_store *s) {
  return s->decodes;
}

/* Index of key, or of where it would go (*found 0). */
static size_t find(const struct etcd_store *s, const char *key, int *found) {
  size_t lo = 0, hi = s->n;

  *found = 0;
  /* Listings arrive in key order: check the end first. */
  if (s->n > 0 && strcmp(s->v[s->n - 1]->key, key) < 0)
    return s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(s->v[mid]->key, key);

    if (r == 0) {
      *found = 1;
      return mid;
    }
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int etcd_store_put(struct etcd_store *s, const char *key, const char *value,
                   size_t len, int64_t mod_revision) {
  struct key_entry *e;
  char *copy;
  int found;
  size_t i;

  if (strncmp(key, s->prefix, s->prefix_len) != 0)
    return 0;
  i = find(s, key, &found);
  if (found) {
    e = s->v[i];
    e->seen = 1;
    e->mod_revision = mod_revision;
    if (e->len == len && memcmp(e->value, value, len) == 0)
      return 0; /* the same bytes: keep what they gave */
    if ((copy = xds_malloc(len + 1)) == NULL)
      return XDS_ENOMEM;
    memcpy(copy, value, len);
    copy[len] = '\0';
    xds_free(e->value);
    e->value = copy;
    e->len = len;
    e->decoded = 0;
    return 0;
  }
  if (s->n >= ETCD_STORE_MAX_KEYS)
    return XDS_ETOOBIG;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct key_entry **v = xds_realloc(s->v, cap * sizeof(*v));

    if (v == NULL)
      return XDS_ENOMEM;
    s->v = v;
    s->cap = cap;
  }
  e = xds_calloc(1, sizeof(*e));
  if (e == NULL)
    return XDS_ENOMEM;
  problems_init(&e->pb, ETCD_STORE_MAX_KEY_PROBLEMS);
  e->key = xds_strdup(key);
  e->value = xds_malloc(len + 1);
  if (e->key == NULL || e->value == NULL) {
    entry_free(e);
    return XDS_ENOMEM;
  }
  memcpy(e->value, value, len);
  e->value[len] = '\0';
  e->len = len;
  e->mod_revision = mod_revision;
  e->seen = 1;
  memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
  s->v[i] = e;
  s->n++;
  return 0;
}

int etcd_store_delete(struct etcd_store *s, const char *key) {
  int found;
  size_t i = find(s, key, &found);

  if (!found)
    return 0;
  entry_free(s->v[i]);
  memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
  s->n--;
  return 1;
}

void etcd_store_relist_begin(struct etcd_store *s) {
  for (size_t i = 0; i < s->n; i++)
    s->v[i]->seen = 0;
}

size_t etcd_store_relist_end(struct etcd_store *s) {
  size_t kept = 0, gone = 0;

  for (size_t i = 0; i < s->n; i++) {
    if (s->v[i]->seen) {
      s->v[kept++] = s->v[i];
    } else {
      entry_free(s->v[i]);
      gone++;
    }
  }
  s->n = kept;
  return gone;
}

/* ---- decoding one value ---- */

static void set_good(struct key_entry *e, struct wasm_ext *x,
                     struct listener_tmpl *t) {
  wasm_ext_free(e->good_ext);
  listener_tmpl_free(e->good_tmpl);
  free_deploy(e);
  e->good_ext = x;
  e->good_tmpl = t;
}

/* Adds a warning when the record does not live at its canonical key. */
static int check_key(const struct etcd_store *s, struct key_entry *e,
                     const char *kind, const char *id, char *canonical) {
  int rc = 0;

  if (canonical == NULL)
    return XDS_ENOMEM;
  if (strcmp(canonical, e->key) != 0)
    rc = problems_add(&e->pb, PROBLEM_WARNING, e->key, 0, 0, "",
                      "%s \"%s\" belongs under the key %s (wasmxdsctl writes "
                      "it there); served from this key anyway",
                      kind, id, canonical);
  (void)s;
  xds_free(canonical);
  return rc;
}

/* Runs the server's check on a template; 0 keeps it, 1 rejected it. */
static int run_check(const struct etcd_store *s, struct key_entry *e,
                     const struct listener_tmpl *t) {
  size_t errors = e->pb.n_errors;
  int rc;

  if (!s->has_hooks || s->hooks.check_tmpl == NULL)
    return 0;
  rc = s->hooks.check_tmpl(s->hooks.ctx, t, &e->pb);
  if (rc >= 0)
    return 0;
  if (rc == XDS_ENOMEM)
    return rc;
  if (e->pb.n_errors == errors &&
      problems_add(&e->pb, PROBLEM_ERROR, t->loc.source, t->loc.line,
                   t->loc.column, "",
                   "ListenerTemplate \"%s\" was rejected by the server's "
                   "check",
                   t->name) < 0)
    return XDS_ENOMEM;
  return 1;
}

static int decode_entry(struct etcd_store *s, struct key_entry *e) {
  struct decode_result r = {0};
  struct xds_err xerr = {0, ""};
  struct ydoc *d = NULL;
  size_t n_docs = 0, doc = 0;
  const char *msg;
  int rc, line, column;

  problems_reset(&e->pb);
  e->broken = 1;
  e->decoded = 1;
  s->decodes++;
  if (e->len > ETCD_STORE_MAX_VALUE)
    return problems_add(&e->pb, PROBLEM_ERROR, e->key, 0, 0, "",
                        "the value is larger than %u bytes",
                        ETCD_STORE_MAX_VALUE);
  rc = ydoc_parse(e->key, e->value, e->len, &d, &xerr);
  if (rc == XDS_ENOMEM)
    goto out;
  if (ydoc_error(d, &line, &column, &msg) != 0) {
    rc = problems_add(&e->pb, PROBLEM_ERROR, e->key, line, column, "",
                      "not valid YAML: %s", msg);
    goto out;
  }
  for (size_t i = 0; i < ydoc_count(d); i++)
    if (ynode_kind(ydoc_root(d, i)) != YNODE_NULL) {
      if (n_docs++ == 0)
        doc = i;
      else if (n_docs == 2)
        rc = problems_add(&e->pb, PROBLEM_ERROR, e->key,
                          ynode_line(ydoc_root(d, i)),
                          ynode_column(ydoc_root(d, i)), "",
                          "a key holds exactly one document; this is a "
                          "second one");
    }
  if (rc < 0 || n_docs > 1)
    goto out;
  if (n_docs == 0) {
    rc = problems_add(&e->pb, PROBLEM_ERROR, e->key, 0, 0, "",
                      "the value holds no document (delete the key to "
                      "remove its resource)");
    goto out;
  }
  for (size_t k = 0; k < ydoc_issue_count(d, doc) && rc >= 0; k++) {
    const struct ydoc_issue *is = ydoc_issue(d, doc, k);

    rc = problems_add(&e->pb, PROBLEM_ERROR, e->key, is->line, is->column, "",
                      "%s", is->msg);
  }
  if (rc < 0 || ydoc_issue_count(d, doc) > 0)
    goto out;
  rc = decode_document(ydoc_root(d, doc), &e->pb, &r);
  if (rc == XDS_ENOMEM)
    goto out;
  if (rc < 0) {
    rc = 0;
    goto out;
  }
  if (r.ext != NULL) {
    rc = check_key(s, e, wasm_ext_kind_name(r.ext), r.ext->fqn,
                   etcd_store_key_of_ext(s->bare_prefix, r.ext));
    if (rc < 0)
      goto out;
    set_good(e, r.ext, NULL);
    r.ext = NULL;
    e->broken = 0;
  } else if (r.kind == DECODE_WASM_DEPLOYMENT && r.n_exts > 0) {
    rc = check_key(s, e, "WasmDeployment", r.id,
                   etcd_store_key_of_ext(s->bare_prefix, r.exts[0]));
    if (rc < 0)
      goto out;
    set_good(e, NULL, NULL);
    e->good_deploy = r.exts;
    e->n_good_deploy = r.n_exts;
    r.exts = NULL;
    r.n_exts = 0;
    e->broken = 0;
  } else if (r.tmpl != NULL) {
    rc = run_check(s, e, r.tmpl);
    if (rc != 0) {
      rc = rc < 0 ? rc : 0;
      goto out;
    }
    rc = check_key(s, e, "ListenerTemplate", r.tmpl->name,
                   etcd_store_key_tmpl(s->bare_prefix, r.tmpl->name));
    if (rc < 0)
      goto out;
    set_good(e, NULL, r.tmpl);
    r.tmpl = NULL;
    e->broken = 0;
  }
out:
  /* The document's problems by line and column, not in the order its
   * fields were checked. */
  problems_sort(&e->pb);
  decode_result_cleanup(&r);
  ydoc_free(d);
  if (rc == XDS_ENOMEM)
    e->decoded = 0; /* try again at the next build */
  return rc < 0 ? rc : 0;
}

/* ---- building ---- */

int etcd_store_build(struct etcd_store *s, struct catalog **out,
                     struct problems *pb) {
  return etcd_store_build_ex(s, NULL, out, pb);
}

int etcd_store_build_ex(struct etcd_store *s, const struct catalog *served,
                        struct catalog **out, struct problems *pb) {
  struct catalog_builder *b;
  int rc = 0;

  *out = NULL;
  if ((b = catalog_builder_new()) == NULL)
    return XDS_ENOMEM;
  /* A resource being served keeps its key against a newcomer. */
  catalog_builder_set_served(b, served);
  for (size_t i = 0; i < s->n && rc >= 0; i++) {
    struct key_entry *e = s->v[i];

    if (!e->decoded && (rc = decode_entry(s, e)) < 0)
      break;
    {
      /* A broken value's problems (and the warning that the last good
       * version stays) are the served resource's: tagged for status. */
      const char *id = !e->broken             ? NULL
                       : e->n_good_deploy > 0 ? e->good_deploy[0]->resource
                       : e->good_ext != NULL ? wasm_ext_resource_id(e->good_ext)
                       : e->good_tmpl != NULL ? e->good_tmpl->name
                                              : NULL;
      size_t from = pb->n;

      if ((rc = problems_append(pb, &e->pb)) < 0)
        break;
      if (e->broken && e->n_good_deploy > 0) {
        const struct wasm_ext *x = e->good_deploy[0];

        rc = problems_add(pb, PROBLEM_WARNING, e->key, x->loc.line,
                          x->loc.column, "",
                          "keeping the last good version of WasmDeployment "
                          "\"%s\": the key's value is broken",
                          x->resource);
      }
      if (rc == 0 && e->broken &&
          (e->good_ext != NULL || e->good_tmpl != NULL)) {
        const struct src_loc *loc =
            e->good_ext != NULL ? &e->good_ext->loc : &e->good_tmpl->loc;

        rc = problems_add(
            pb, PROBLEM_WARNING, e->key, loc->line, loc->column, "",
            "keeping the last good version of %s \"%s\": the "
            "key's value is broken",
            e->good_ext != NULL ? wasm_ext_kind_name(e->good_ext)
                                : "ListenerTemplate",
            e->good_ext != NULL ? e->good_ext->fqn : e->good_tmpl->name);
      }
      if (rc == 0 && id != NULL)
        rc = problems_set_resource(pb, from, id);
      if (rc < 0)
        break;
    }
    for (size_t k = 0; k < e->n_good_deploy && rc >= 0; k++) {
      rc = catalog_builder_add_ext(b, wasm_ext_ref(e->good_deploy[k]), pb);
      if (rc == XDS_ECONFLICT || rc == XDS_ETOOBIG)
        rc = 0; /* reported; the first definition stays */
    }
    if (rc < 0)
      break;
    if (e->good_ext != NULL)
      rc = catalog_builder_add_ext(b, wasm_ext_ref(e->good_ext), pb);
    else if (e->good_tmpl != NULL)
      rc = catalog_builder_add_tmpl(b, listener_tmpl_ref(e->good_tmpl), pb);
    if (rc == XDS_ECONFLICT || rc == XDS_ETOOBIG)
      rc = 0; /* reported; the first definition stays */
  }
  if (rc < 0) {
    catalog_builder_free(b);
    return rc;
  }
  return catalog_builder_finish(b, pb, out);
}

/* ---- key layout ---- */

char *etcd_store_key_ext(const char *prefix, const char *org,
                         const char *name) {
  return xds_asprintf("%s/" ETCD_KIND_EXT_DIR "/%s/%s", prefix, org, name);
}

char *etcd_store_key_plugin(const char *prefix, const char *ns,
                            const char *name) {
  return xds_asprintf("%s/" ETCD_KIND_PLUGIN_DIR "/%s/%s", prefix, ns, name);
}

char *etcd_store_key_deploy(const char *prefix, const char *ns,
                            const char *name) {
  return xds_asprintf("%s/" ETCD_KIND_DEPLOY_DIR "/%s/%s", prefix, ns, name);
}

char *etcd_store_key_of_ext(const char *prefix, const struct wasm_ext *e) {
  if (e->kind == WASM_KIND_DEPLOYMENT)
    return etcd_store_key_deploy(prefix, e->namespace, e->name);
  return e->kind == WASM_KIND_PLUGIN
             ? etcd_store_key_plugin(prefix, e->namespace, e->name)
             : etcd_store_key_ext(prefix, e->organization, e->name);
}

char *etcd_store_key_tmpl(const char *prefix, const char *name) {
  return xds_asprintf("%s/" ETCD_KIND_TMPL_DIR "/%s", prefix, name);
}

/* A metadata name: 1..253 of A-Za-z0-9-_. starting with a letter or
 * digit (store/decode.c's rule). */
static int name_ok(const char *s, size_t n) {
  if (n == 0 || n > 253)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9');

    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
      return 0;
  }
  return 1;
}

static int is_one_of(const char *s, size_t n, const char *const *names) {
  for (size_t i = 0; names[i] != NULL; i++)
    if (strlen(names[i]) == n && strncasecmp(s, names[i], n) == 0)
      return 1;
  return 0;
}

/* The names an operator may give each kind (case-insensitive). */
static const char *const ext_kinds[] = {"WasmExtension", "WasmExtensions",
                                        "ext", "extension", NULL};
static const char *const tmpl_kinds[] = {
    "ListenerTemplate", "ListenerTemplates", "tmpl", "template", NULL};
static const char *const plugin_kinds[] = {"WasmPlugin", "WasmPlugins",
                                           "wasmplugin", NULL};
static const char *const deploy_kinds[] = {"WasmDeployment", "WasmDeployments",
                                           "wasmdeployment", NULL};

const char *etcd_store_kind_dir(const char *kind) {
  size_t n = strlen(kind);

  if (is_one_of(kind, n, ext_kinds))
    return ETCD_KIND_EXT_DIR;
  if (is_one_of(kind, n, tmpl_kinds))
    return ETCD_KIND_TMPL_DIR;
  if (is_one_of(kind, n, plugin_kinds))
    return ETCD_KIND_PLUGIN_DIR;
  if (is_one_of(kind, n, deploy_kinds))
    return ETCD_KIND_DEPLOY_DIR;
  return NULL;
}

int etcd_store_key_of_ref(const char *prefix, const char *ref, char **key,
                          struct xds_err *err) {
  static const char istio_prefix[] = WASM_PLUGIN_FQN_PREFIX;
  static const char deploy_prefix[] = WASM_DEPLOY_FQN_PREFIX;
  const char *part[5];
  size_t len[5], n = 0;
  const char *p = ref;
  char *org, *name;

  *key = NULL;
  /* extensions.istio.io/wasmplugin/<namespace>.<name> */
  if (strncmp(ref, istio_prefix, sizeof(istio_prefix) - 1) == 0) {
    const char *nsn = ref + sizeof(istio_prefix) - 1, *dot = strchr(nsn, '.');

    if (dot == NULL || !name_ok(nsn, (size_t)(dot - nsn)) ||
        !name_ok(dot + 1, strlen(dot + 1)) || strchr(dot, '/') != NULL)
      return xds_err_set(
          err, XDS_EINVAL,
          "\"%s\": expected " WASM_PLUGIN_FQN_PREFIX "NAMESPACE.NAME", ref);
    org = xds_strndup(nsn, (size_t)(dot - nsn));
    *key = org != NULL ? etcd_store_key_plugin(prefix, org, dot + 1) : NULL;
    xds_free(org);
    return *key == NULL ? XDS_ENOMEM : 0;
  }
  /* networking.enterprise.mesh.gloo.solo.io/wasmdeployment/<ns>.<name>
   * [/<filter index>] */
  if (strncmp(ref, deploy_prefix, sizeof(deploy_prefix) - 1) == 0) {
    const char *nsn = ref + sizeof(deploy_prefix) - 1, *dot = strchr(nsn, '.');
    const char *end = dot != NULL ? strchr(dot, '/') : NULL;
    size_t nlen = dot == NULL   ? 0
                  : end != NULL ? (size_t)(end - dot - 1)
                                : strlen(dot + 1);

    if (end != NULL &&
        (end[1] == '\0' || strspn(end + 1, "0123456789") != strlen(end + 1)))
      dot = NULL;
    if (dot == NULL || !name_ok(nsn, (size_t)(dot - nsn)) ||
        !name_ok(dot + 1, nlen))
      return xds_err_set(
          err, XDS_EINVAL,
          "\"%s\": expected " WASM_DEPLOY_FQN_PREFIX "NAMESPACE.NAME", ref);
    org = xds_strndup(nsn, (size_t)(dot - nsn));
    name = xds_strndup(dot + 1, nlen);
    *key = org != NULL && name != NULL
               ? etcd_store_key_deploy(prefix, org, name)
               : NULL;
    xds_free(org);
    xds_free(name);
    return *key == NULL ? XDS_ENOMEM : 0;
  }
  while (n < 5) {
    const char *slash = strchr(p, '/');

    part[n] = p;
    len[n] = slash != NULL ? (size_t)(slash - p) : strlen(p);
    n++;
    if (slash == NULL)
      break;
    p = slash + 1;
  }
  if (n == 4 && len[0] == 13 && strncmp(part[0], "organizations", 13) == 0 &&
      len[2] == 10 && strncmp(part[2], "extensions", 10) == 0 &&
      name_ok(part[1], len[1]) && name_ok(part[3], len[3])) {
    org = xds_strndup(part[1], len[1]);
    name = xds_strndup(part[3], len[3]);
  } else if (n == 3 && is_one_of(part[0], len[0], ext_kinds) &&
             name_ok(part[1], len[1]) && name_ok(part[2], len[2])) {
    org = xds_strndup(part[1], len[1]);
    name = xds_strndup(part[2], len[2]);
  } else if (n == 3 && is_one_of(part[0], len[0], plugin_kinds) &&
             name_ok(part[1], len[1]) && name_ok(part[2], len[2])) {
    org = xds_strndup(part[1], len[1]);
    name = xds_strndup(part[2], len[2]);
    *key = org != NULL && name != NULL
               ? etcd_store_key_plugin(prefix, org, name)
               : NULL;
    xds_free(org);
    xds_free(name);
    return *key == NULL ? XDS_ENOMEM : 0;
  } else if (n == 3 && is_one_of(part[0], len[0], deploy_kinds) &&
             name_ok(part[1], len[1]) && name_ok(part[2], len[2])) {
    org = xds_strndup(part[1], len[1]);
    name = xds_strndup(part[2], len[2]);
    *key = org != NULL && name != NULL
               ? etcd_store_key_deploy(prefix, org, name)
               : NULL;
    xds_free(org);
    xds_free(name);
    return *key == NULL ? XDS_ENOMEM : 0;
  } else if (n == 2 && is_one_of(part[0], len[0], tmpl_kinds) &&
             name_ok(part[1], len[1])) {
    name = xds_strndup(part[1], len[1]);
    if (name == NULL)
      return XDS_ENOMEM;
    *key = etcd_store_key_tmpl(prefix, name);
    xds_free(name);
    return *key == NULL ? XDS_ENOMEM : 0;
  } else {
    return xds_err_set(err, XDS_EINVAL,
                       "\"%s\": expected WasmExtension/ORG/NAME, "
                       "ListenerTemplate/NAME, WasmPlugin/NAMESPACE/NAME, "
                       "WasmDeployment/NAMESPACE/NAME, "
                       "organizations/ORG/extensions/NAME, "
                       "extensions.istio.io/wasmplugin/NAMESPACE.NAME "
                       "or " WASM_DEPLOY_FQN_PREFIX "NAMESPACE.NAME",
                       ref);
  }
  if (org != NULL && name != NULL)
    *key = etcd_store_key_ext(prefix, org, name);
  xds_free(org);
  xds_free(name);
  return *key == NULL ? XDS_ENOMEM : 0;
}
