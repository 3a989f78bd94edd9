/*
 * snapshot.c: building snapshots and their class views.
 *
 * Invariant: once published, nothing a reader can reach changes, except the
 * class map, which only grows and is guarded by class_lock. Extension
 * encodings and class views may be shared by several snapshots (reference
 * counts); each is immutable once built.
 */
#include "server/compose/snapshot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/map.h"
#include "server/compose/chain.h"
#include "server/pb/typeurl.h"
#include "server/pb/wire.h"

/* Largest LDS response body of one class: the gRPC message limit Envoy
 * applies by default is 4 MiB. */
#define SNAPSHOT_LDS_MAX (4 * 1024 * 1024 - 1024)

/* One extension's encodings and delivery: its ECDS resource, its entry in
 * a listener's filter list and its module result, in one allocation (the
 * header, the ECDS bytes, the entry bytes, then the module's strings).
 * Reference-counted: a snapshot built from a previous one shares the
 * encodings of every extension whose record and module result did not
 * change. Immutable once built. */
struct ext_enc {
  atomic_long refs;
  struct encode_module m; /* its strings point into data */
  size_t ecds_len, entry_len;
  char version[VERSION_LEN + 1]; /* of the ECDS bytes */
  uint8_t data[];
};

/* A class view and what sharing it between snapshots needs. A snapshot
 * built from a previous one takes over (one more reference) every view of
 * it that the change cannot touch. */
struct class_rec {
  struct xds_class c; /* handed out; c.key is the class map's key */
  atomic_long refs;
  atomic_ullong used; /* newest generation that looked it up */
  char *names;        /* c.listeners[].name and c.slot_fqn[] point here */
};

/* Which class views a change can touch (snapshot_build_from): all of them,
 * those of an organization (orgs) or those of one tenant (tenants). Keys
 * are the first parts of a class key (class_key): "<len>:<org>|" and
 * "<len>:<org>|<len>:<tenant>|". */
struct scope {
  int all;
  struct xds_map *orgs;
  struct xds_map *tenants;
};

struct snapshot {
  atomic_long refs;
  uint64_t generation;
  struct catalog *cat;
  struct encode_opts opts;
  struct xds_resource *ecds; /* parallel to the catalog's extensions; the
                                bytes are enc[i]'s */
  size_t n_ecds;
  struct ext_enc **enc;         /* parallel too */
  struct encode_entry *entries; /* parallel: each extension's HCM
                                   http_filters entry, in enc[i] */
  pthread_mutex_t class_lock;
  struct xds_map *classes;     /* key (borrowed from the view) -> class_rec */
  struct xds_buf scratch;      /* reused by class_build (class_lock) */
  struct xds_buf key;          /* class_key's, reused (class_lock) */
  struct xds_stats *stats;     /* nullable: server counters */
  unsigned long class_builds;  /* views built (guarded by class_lock) */
  unsigned long class_hits;    /* lookups answered by a held view */
  size_t class_bytes;          /* bytes of encoded listeners, all views */
  unsigned long class_carried; /* views taken over from the previous one */
  size_t enc_shared;           /* extension encodings shared with it */
  int deploy_selectors;        /* a WasmDeployment has a workloadSelector */
};

static void ext_enc_unref(struct ext_enc *x) {
  if (x != NULL && atomic_fetch_sub(&x->refs, 1) == 1)
    xds_free(x);
}

static void class_unref(void *p) {
  struct class_rec *r = p;
  struct xds_class *c;

  if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
    return;
  c = &r->c;
  /* Listener bytes point into lds_body. */
  xds_free(c->listeners);
  for (size_t i = 0; i < c->n_slots; i++) {
    xds_free((char *)c->slots[i].name);
    xds_free(c->slots[i].bytes);
  }
  xds_free(c->slots);
  xds_free(c->slot_fqn);
  xds_free(c->slot_net);
  xds_free(c->slot_by_name);
  xds_free(c->lds_body);
  xds_free(c->problems);
  xds_free(c->key);
  xds_free(r->names);
  xds_free(r);
}

static void snapshot_free(struct snapshot *s) {
  for (size_t i = 0; s->enc != NULL && i < catalog_ext_count(s->cat); i++)
    ext_enc_unref(s->enc[i]);
  xds_free(s->enc);
  xds_free(s->ecds);
  xds_free(s->entries);
  xds_map_free(s->classes, class_unref);
  xds_buf_cleanup(&s->scratch);
  xds_buf_cleanup(&s->key);
  pthread_mutex_destroy(&s->class_lock);
  catalog_unref(s->cat);
  xds_free(s);
}

static size_t len_or_0(const char *s) {
  return s != NULL ? strlen(s) + 1 : 0;
}

static int str_same(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static int module_same(const struct encode_module *a,
                       const struct encode_module *b) {
  return a->kind == b->kind && str_same(a->uri, b->uri) &&
         str_same(a->sha256, b->sha256) && str_same(a->root_id, b->root_id) &&
         str_same(a->reason, b->reason);
}

/* Copies string in (nullable) to *at, advancing it. */
static const char *put_str(const char *in, char **at) {
  char *out = *at;

  if (in == NULL)
    return NULL;
  size_t n = strlen(in) + 1;
  memcpy(out, in, n);
  *at += n;
  return out;
}

/* Encodes extension e delivered as m (whose strings may be scratch of the
 * module callback: they are copied) into a new ext_enc, using b as
 * scratch. Returns 0, XDS_ENOMEM or an encoding error (err says which
 * extension). */
static int ext_enc_build(const struct wasm_ext *e,
                         const struct encode_module *m,
                         const struct encode_opts *o, struct xds_buf *b,
                         struct ext_enc **out, struct xds_err *err) {
  struct ext_enc *x;
  size_t ecds_len, strs;
  char *at;
  int rc;

  *out = NULL;
  xds_buf_reset(b);
  rc = encode_extension_config(e, m, o, b);
  ecds_len = b->len;
  if (rc == 0)
    rc = encode_wasm_filter_entry(e, m, o, b);
  if (rc < 0) {
    if (rc != XDS_ENOMEM)
      xds_err_set(err, rc, "%s: extension %s cannot be encoded: %s",
                  e->loc.source, e->fqn, xds_strerror(rc));
    return rc;
  }
  strs = len_or_0(m->uri) + len_or_0(m->sha256) + len_or_0(m->root_id) +
         len_or_0(m->reason);
  x = xds_malloc(sizeof(*x) + b->len + strs);
  if (x == NULL)
    return XDS_ENOMEM;
  atomic_init(&x->refs, 1);
  x->ecds_len = ecds_len;
  x->entry_len = b->len - ecds_len;
  if (b->len > 0)
    memcpy(x->data, b->data, b->len);
  version_of(x->data, ecds_len, x->version);
  at = (char *)x->data + b->len;
  x->m.kind = m->kind;
  x->m.uri = put_str(m->uri, &at);
  x->m.sha256 = put_str(m->sha256, &at);
  x->m.root_id = put_str(m->root_id, &at);
  x->m.reason = put_str(m->reason, &at);
  *out = x;
  return 0;
}

/* ---- which classes a change touches ---- */

static void scope_cleanup(struct scope *sc) {
  xds_map_free(sc->orgs, NULL);
  xds_map_free(sc->tenants, NULL);
}

/* Marks what extension record e can reach: a WasmExtension reaches the
 * proxies of its organization that allowedIn admits (every one when
 * allowedIn is empty); a WasmPlugin or WasmDeployment is selected by
 * namespace and labels, which a class key does not spell out: every
 * class. Returns 0 or XDS_ENOMEM. */
static int scope_add(struct scope *sc, const struct wasm_ext *e) {
  struct xds_buf k;
  size_t org_end;
  int rc = 0;

  if (sc->all)
    return 0;
  if (e->kind != WASM_KIND_EXTENSION || e->organization == NULL) {
    sc->all = 1;
    return 0;
  }
  if (sc->orgs == NULL && (sc->orgs = xds_map_new()) == NULL)
    return XDS_ENOMEM;
  if (sc->tenants == NULL && (sc->tenants = xds_map_new()) == NULL)
    return XDS_ENOMEM;
  xds_buf_init(&k, 1 << 20);
  rc = xds_buf_printf(&k, "%zu:%s|", strlen(e->organization), e->organization);
  org_end = k.len;
  if (rc == 0 && e->n_allowed_in == 0)
    rc = xds_map_put(sc->orgs, k.data, sc, NULL);
  for (size_t i = 0; rc == 0 && i < e->n_allowed_in; i++) {
    k.len = org_end;
    rc = xds_buf_printf(&k, "%zu:%s|", strlen(e->allowed_in[i]),
                        e->allowed_in[i]);
    if (rc == 0)
      rc = xds_map_put(sc->tenants, k.data, sc, NULL);
  }
  xds_buf_cleanup(&k);
  return rc < 0 ? XDS_ENOMEM : 0;
}

/* The length of the "<len>:<text>|" part of key at off, or 0 when the key
 * does not have one there. */
static size_t key_part(const char *key, size_t off) {
  char *end;
  unsigned long long n;

  if (key[off] < '0' || key[off] > '9')
    return 0;
  n = strtoull(key + off, &end, 10);
  if (*end != ':' || n > strlen(end + 1) || end[1 + n] != '|')
    return 0;
  return (size_t)(end + 2 + n - (key + off));
}

/* Whether the class with this key may change under sc. */
static int scope_touches(const struct scope *sc, const char *key) {
  size_t org = key_part(key, 0), ten;
  char buf[1024];
  int hit;

  if (sc->all || org == 0 || org >= sizeof(buf))
    return 1;
  memcpy(buf, key, org);
  buf[org] = '\0';
  if (xds_map_get(sc->orgs, buf) != NULL)
    return 1;
  ten = key_part(key, org);
  if (ten == 0) /* "-|": no tenant; only organization-wide ones reach it */
    return 0;
  if (org + ten >= sizeof(buf))
    return 1;
  memcpy(buf + org, key + org, ten);
  buf[org + ten] = '\0';
  hit = xds_map_get(sc->tenants, buf) != NULL;
  return hit;
}

static int opts_same(const struct encode_opts *a, const struct encode_opts *b) {
  return str_same(a->module_cluster, b->module_cluster) &&
         a->module_fetch_timeout_ms == b->module_fetch_timeout_ms &&
         a->module_fetch_retries == b->module_fetch_retries &&
         a->ecds_fetch_timeout_ms == b->ecds_fetch_timeout_ms &&
         a->inline_wasm == b->inline_wasm && a->ecds_slots == b->ecds_slots &&
         str_same(a->istio_root_namespace, b->istio_root_namespace) &&
         a->attachment_required == b->attachment_required &&
         a->module_of == b->module_of && a->module_ctx == b->module_ctx;
}

/* Whether the two catalogs hold the same templates in the same order:
 * class keys name templates by position, and every listener depends on
 * its template. */
static int tmpls_same(const struct catalog *a, const struct catalog *b) {
  size_t n = catalog_tmpl_count(a);

  if (n != catalog_tmpl_count(b))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!catalog_tmpl_equal(catalog_tmpl_at(a, i), catalog_tmpl_at(b, i)))
      return 0;
  return 1;
}

/* Takes over the class views of prev that sc does not touch and that a
 * proxy looked up in the last SNAPSHOT_CLASS_KEEP generations (so views
 * of proxies long gone are not carried for ever). Returns 0 or
 * XDS_ENOMEM. */
static int carry_classes(struct snapshot *s, struct snapshot *prev,
                         const struct scope *sc) {
  const char *key;
  void *v;
  size_t pos = 0;
  int rc = 0;

  pthread_mutex_lock(&prev->class_lock);
  while (rc == 0 && xds_map_next(prev->classes, &pos, &key, &v)) {
    struct class_rec *r = v;
    unsigned long long used = atomic_load(&r->used);

    if (used + SNAPSHOT_CLASS_KEEP < s->generation ||
        scope_touches(sc, r->c.key))
      continue;
    rc = xds_map_put(s->classes, r->c.key, r, NULL);
    if (rc == 0) {
      atomic_fetch_add(&r->refs, 1);
      s->class_carried++;
      s->class_bytes += r->c.lds_body_len;
    }
  }
  pthread_mutex_unlock(&prev->class_lock);
  return rc;
}

/* ---- building ---- */

int snapshot_build(struct catalog *cat, const struct encode_opts *o,
                   uint64_t generation, struct snapshot **out,
                   struct xds_err *err) {
  return snapshot_build_from(NULL, cat, o, generation, out, err);
}

int snapshot_build_from(struct snapshot *prev, struct catalog *cat,
                        const struct encode_opts *o, uint64_t generation,
                        struct snapshot **out, struct xds_err *err) {
  struct snapshot *s;
  struct xds_buf b;
  struct scope sc = {0, NULL, NULL};
  size_t n = catalog_ext_count(cat), j = 0, n_prev = 0;
  int rc = XDS_ENOMEM;

  *out = NULL;
  /* Without a previous snapshot, or with other options or templates,
   * nothing is shared. */
  if (prev != NULL &&
      (!opts_same(&prev->opts, o) || !tmpls_same(prev->cat, cat)))
    prev = NULL;
  if (prev != NULL)
    n_prev = catalog_ext_count(prev->cat);
  s = xds_calloc(1, sizeof(*s));
  if (s == NULL)
    return xds_err_set(err, XDS_ENOMEM, "snapshot: out of memory");
  atomic_init(&s->refs, 1);
  s->generation = generation;
  s->opts = *o;
  s->cat = catalog_ref(cat);
  pthread_mutex_init(&s->class_lock, NULL);
  xds_buf_init(&s->scratch, SNAPSHOT_LDS_MAX);
  xds_buf_init(&s->key, 1 << 20);
  xds_buf_init(&b, SNAPSHOT_LDS_MAX);
  s->classes = xds_map_new_borrowed();
  s->ecds = xds_calloc(n + 1, sizeof(*s->ecds));
  s->enc = xds_calloc(n + 1, sizeof(*s->enc));
  s->entries = xds_calloc(n + 1, sizeof(*s->entries));
  if (s->classes == NULL || s->ecds == NULL || s->enc == NULL ||
      s->entries == NULL)
    goto fail;
  /* Both catalogs are in fqn order: one walk pairs each extension with
   * its previous version, whose encodings are shared when the record and
   * its module result are the same. Anything else marks the classes the
   * old and the new record reach. */
  for (size_t i = 0; i < n; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i), *pe = NULL;
    struct encode_module m;

    if (e->kind == WASM_KIND_DEPLOYMENT && e->n_selectors > 0)
      s->deploy_selectors = 1;
    if (o->module_of != NULL) {
      rc = o->module_of(o->module_ctx, e, &m);
      if (rc < 0)
        goto fail;
    } else {
      encode_module_default(e, &m);
    }
    for (; prev != NULL && j < n_prev; j++) {
      const struct wasm_ext *x = catalog_ext_at(prev->cat, j);
      int c = strcmp(x->fqn, e->fqn);

      if (c > 0)
        break;
      if (c == 0) {
        pe = x;
        j++;
        break;
      }
      if ((rc = scope_add(&sc, x)) < 0) /* removed */
        goto fail;
    }
    if (pe != NULL && (pe == e || catalog_ext_equal(pe, e)) &&
        module_same(&prev->enc[j - 1]->m, &m)) {
      s->enc[i] = prev->enc[j - 1];
      atomic_fetch_add(&s->enc[i]->refs, 1);
      s->enc_shared++;
    } else {
      if (prev != NULL && ((pe != NULL && (rc = scope_add(&sc, pe)) < 0) ||
                           (rc = scope_add(&sc, e)) < 0))
        goto fail;
      rc = ext_enc_build(e, &m, o, &b, &s->enc[i], err);
      if (rc < 0)
        goto fail;
    }
    s->ecds[i].name = e->fqn;
    memcpy(s->ecds[i].version, s->enc[i]->version, sizeof(s->ecds[i].version));
    s->ecds[i].bytes = s->enc[i]->data;
    s->ecds[i].len = s->enc[i]->ecds_len;
    s->entries[i].data = s->enc[i]->data + s->enc[i]->ecds_len;
    s->entries[i].len = s->enc[i]->entry_len;
    s->n_ecds++;
  }
  for (; prev != NULL && j < n_prev; j++)
    if ((rc = scope_add(&sc, catalog_ext_at(prev->cat, j))) < 0)
      goto fail;
  if (prev != NULL && (rc = carry_classes(s, prev, &sc)) < 0)
    goto fail;
  scope_cleanup(&sc);
  xds_buf_cleanup(&b);
  *out = s;
  return 0;
fail:
  if (rc == XDS_ENOMEM)
    xds_err_set(err, rc, "snapshot: out of memory");
  scope_cleanup(&sc);
  xds_buf_cleanup(&b);
  snapshot_free(s);
  return rc;
}

struct snapshot *snapshot_ref(struct snapshot *s) {
  atomic_fetch_add(&s->refs, 1);
  return s;
}

void snapshot_unref(struct snapshot *s) {
  if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
    snapshot_free(s);
}

uint64_t snapshot_generation(const struct snapshot *s) {
  return s->generation;
}

const struct catalog *snapshot_catalog(const struct snapshot *s) {
  return s->cat;
}

const struct encode_opts *snapshot_opts(const struct snapshot *s) {
  return &s->opts;
}

const struct xds_resource *snapshot_ecds(const struct snapshot *s,
                                         const char *fqn) {
  size_t lo = 0, hi = s->n_ecds;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->ecds[mid].name, fqn);
    if (c == 0)
      return &s->ecds[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

const struct encode_module *snapshot_module(const struct snapshot *s,
                                            const char *fqn) {
  const struct xds_resource *r = snapshot_ecds(s, fqn);

  return r != NULL ? &s->enc[r - s->ecds]->m : NULL;
}

enum served_as snapshot_served_as(const struct snapshot *s, const char *fqn,
                                  const struct encode_module **m) {
  const struct encode_module *mod = snapshot_module(s, fqn);
  const struct wasm_ext *e;

  if (m != NULL)
    *m = mod;
  if (mod == NULL || mod->kind != ENCODE_MOD_UNAVAILABLE)
    return SERVED_WASM;
  e = catalog_ext_find(s->cat, fqn);
  return e != NULL && e->fail_strategy == WASM_FAIL_OPEN ? SERVED_ALLOW_ALL
                                                         : SERVED_DENY_ALL;
}

const char *served_as_label(enum served_as a) {
  switch (a) {
  case SERVED_DENY_ALL:
    return "deny_all";
  case SERVED_ALLOW_ALL:
    return "allow_all";
  default:
    return "wasm";
  }
}

/* Appends n in decimal and then sep. */
static int put_num(struct xds_buf *b, size_t n, char sep) {
  char d[24];
  size_t i = sizeof(d);

  d[--i] = sep;
  do {
    d[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  return xds_buf_append(b, d + i, sizeof(d) - i);
}

/* Appends "<len>:<s>|". */
static int put_part(struct xds_buf *b, const char *s) {
  size_t n = strlen(s);
  int rc = put_num(b, n, ':');

  if (rc == 0)
    rc = xds_buf_append(b, s, n);
  if (rc == 0)
    rc = xds_buf_putc(b, '|');
  return rc;
}

/* The class key, written into b (emptied first): everything composition
 * depends on. Labels matter only through the templates and WasmPlugins
 * they select, so proxies whose labels differ but select the same ones
 * share a class. Each string is written with its length first
 * ("<len>:<bytes>|"; "-|" for no tenant) and templates by catalog
 * position, so two different identities never make the same key whatever
 * bytes their strings hold; chain_scope_key's part (namespace and
 * WasmPlugin selections, names from validated grammars) follows. The
 * organization and tenant parts come first: scope_touches reads them.
 * Written by hand, not with printf: every stream looks its class up when
 * it moves to a new snapshot. Returns 0, XDS_ENOMEM or XDS_ETOOBIG. */
static int class_key(const struct snapshot *s, const struct proxy_id *p,
                     struct xds_buf *b) {
  const struct catalog *cat = s->cat;
  int rc;

  xds_buf_reset(b);
  rc = put_part(b, p->organization);
  if (rc == 0)
    rc = p->tenant == NULL ? xds_buf_puts(b, "-|") : put_part(b, p->tenant);
  if (rc == 0)
    rc = xds_buf_puts(b, p->mode == PROXY_MODE_GATEWAY ? "G|" : "S|");
  for (size_t i = 0; rc == 0 && i < catalog_tmpl_count(cat); i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(cat, i);
    if (chain_tmpl_applies(t, p))
      rc = put_num(b, i, ',');
  }
  if (rc == 0)
    rc = xds_buf_putc(b, '|');
  /* Without a namespace and without selecting WasmDeployments, that part
   * is empty. */
  if (rc == 0 && (p->namespace != NULL || s->deploy_selectors))
    rc = chain_scope_key(cat, p, b);
  return rc;
}

/* Stand-ins that only carry a phase: the "chain" of a slotted listener is
 * its slots, placed among the native filters as Wasm filters of their
 * phase would be. */
static const struct wasm_ext slot_phase_ext[4] = {
    {.phase = WASM_PHASE_AUTHN},
    {.phase = WASM_PHASE_AUTHZ},
    {.phase = WASM_PHASE_STATS},
    {.phase = WASM_PHASE_UNSPECIFIED}};

/* Makes room in c's slot arrays for n more slots (zeroed). Returns 0 or
 * XDS_ENOMEM. */
static int slots_grow(struct xds_class *c, size_t n) {
  size_t total = c->n_slots + n + 1;
  struct xds_resource *r = xds_realloc(c->slots, total * sizeof(*r));
  const char **f;
  unsigned char *net;

  if (r == NULL)
    return XDS_ENOMEM;
  c->slots = r;
  f = xds_realloc(c->slot_fqn, total * sizeof(*f));
  if (f == NULL)
    return XDS_ENOMEM;
  c->slot_fqn = f;
  net = xds_realloc(c->slot_net, total * sizeof(*net));
  if (net == NULL)
    return XDS_ENOMEM;
  c->slot_net = net;
  memset(c->slots + c->n_slots, 0, n * sizeof(*c->slots));
  return 0;
}

/* Adds one slot resource to c (arrays grown by the caller); network: a
 * slot of a TCP listener's network filter chain. */
static int slot_add(struct snapshot *s, struct xds_class *c, const char *name,
                    const char *fqn, size_t ext_i, int network,
                    struct xds_buf *tmp) {
  struct xds_resource *r = &c->slots[c->n_slots];
  const struct xds_resource *ext = fqn != NULL ? &s->ecds[ext_i] : NULL;
  int rc;

  xds_buf_reset(tmp);
  rc = encode_slot_config(name, ext != NULL ? ext->bytes : NULL,
                          ext != NULL ? ext->len : 0, network, tmp);
  if (rc < 0)
    return rc;
  r->name = xds_strdup(name);
  if (r->name == NULL)
    return XDS_ENOMEM;
  r->len = tmp->len;
  r->bytes = (uint8_t *)xds_buf_steal(tmp, NULL);
  encode_slot_version(r->bytes, r->len, fqn, r->version);
  c->slot_net[c->n_slots] = (unsigned char)network;
  c->slot_fqn[c->n_slots++] = fqn;
  return 0;
}

/*
 * Encodes listener t of c in slots mode into all: its HCM holds, per phase,
 * encode_slot_capacity() slots, and the chain's extensions fill each
 * phase's first slots in chain order. Appends the slots' resources to c.
 * Returns 0, XDS_ENOMEM, XDS_ETOOBIG (a phase needs more than
 * ENCODE_SLOTS_PHASE_MAX slots) or XDS_EINVAL (err says why).
 */
static int slots_encode(struct snapshot *s, struct xds_class *c,
                        const struct listener_tmpl *t, const struct chain *ch,
                        struct xds_buf *all, struct xds_err *err) {
  size_t count[4] = {0}, cap[4], n = 0, first = 0, *ends = NULL;
  const struct wasm_ext **exts = NULL;
  struct encode_entry *entries = NULL;
  struct xds_buf eb, name, tmp;
  struct chain fake;
  char layout[ENCODE_SLOT_LAYOUT_LEN + 1];
  int rc = XDS_ENOMEM;

  for (size_t k = 0; k < ch->n; k++)
    count[wasm_phase_rank(ch->exts[k]->phase)]++;
  for (int p = 0; p < 4; p++) {
    cap[p] = encode_slot_capacity(s->opts.ecds_slots, count[p]);
    if (cap[p] == 0) {
      xds_err_set(err, XDS_ETOOBIG,
                  "phase %s has %zu extensions, more than %d slots allow",
                  encode_slot_phase_name(encode_slot_phases[p]), count[p],
                  ENCODE_SLOTS_PHASE_MAX);
      return XDS_EINVAL;
    }
    n += cap[p];
  }
  encode_slot_layout(cap, 4, layout);
  xds_buf_init(&eb, SNAPSHOT_LDS_MAX);
  xds_buf_init(&name, 4096);
  xds_buf_init(&tmp, SNAPSHOT_LDS_MAX);
  exts = xds_calloc(n, sizeof(*exts));
  entries = xds_calloc(n, sizeof(*entries));
  ends = xds_calloc(n, sizeof(*ends));
  if (slots_grow(c, n) < 0)
    goto out;
  if (exts == NULL || entries == NULL || ends == NULL)
    goto out;
  rc = 0;
  for (int p = 0, i = 0; rc == 0 && p < 4; p++) {
    for (size_t j = 0; rc == 0 && j < cap[p]; j++, i++) {
      const char *fqn = NULL;
      size_t ext_i = 0;

      if (j < count[p]) {
        fqn = ch->exts[first + j]->fqn;
        ext_i = ch->index[first + j];
      }
      exts[i] = &slot_phase_ext[p];
      xds_buf_reset(&name);
      rc = encode_slot_name(t->name, layout, encode_slot_phases[p], j, &name);
      if (rc == 0)
        rc = xds_buf_putc(&name, '\0');
      if (rc == 0)
        rc = encode_slot_entry(name.data, &s->opts, &eb);
      ends[i] = eb.len;
      if (rc == 0)
        rc = slot_add(s, c, name.data, fqn, ext_i, 0, &tmp);
    }
    first += count[p];
  }
  if (rc < 0)
    goto out;
  for (size_t i = 0; i < n; i++) {
    size_t start = i == 0 ? 0 : ends[i - 1];
    entries[i].data = (const uint8_t *)eb.data + start;
    entries[i].len = ends[i] - start;
  }
  fake.exts = exts;
  fake.index = NULL;
  fake.n = n;
  rc = encode_listener_mods(t, &fake, NULL, entries, &s->opts, all, err);
out:
  xds_buf_cleanup(&eb);
  xds_buf_cleanup(&name);
  xds_buf_cleanup(&tmp);
  xds_free(exts);
  xds_free(entries);
  xds_free(ends);
  return rc;
}

/*
 * Encodes TCP listener t of c in slots mode into all: each of its filter
 * chains (spec.tcp.filterChains, then the default chain) holds, per phase,
 * encode_slot_capacity() network slots, filled in chain order with the
 * chain's extensions that run on that filter chain. Appends the slots'
 * resources to c. Returns 0, XDS_ENOMEM, XDS_ETOOBIG or XDS_EINVAL (err
 * says why).
 */
static int slots_encode_tcp(struct snapshot *s, struct xds_class *c,
                            const struct listener_tmpl *t,
                            const struct chain *ch, struct xds_buf *all,
                            struct xds_err *err) {
  size_t n_fc = t->n_tcp_chains + 1, n = 0, first_slot = c->n_slots;
  size_t(*count)[4] = xds_calloc(n_fc, sizeof(*count));
  size_t(*cap)[4] = xds_calloc(n_fc, sizeof(*cap));
  const char ***names = xds_calloc(n_fc, sizeof(*names));
  size_t *n_names = xds_calloc(n_fc, sizeof(*n_names));
  struct xds_buf name, tmp;
  char layout[ENCODE_SLOT_LAYOUT_LEN + 1];
  int rc = XDS_ENOMEM;

  xds_buf_init(&name, 4096);
  xds_buf_init(&tmp, SNAPSHOT_LDS_MAX);
  if (count == NULL || cap == NULL || names == NULL || n_names == NULL)
    goto out;
  for (size_t fc = 0; fc < n_fc; fc++) {
    for (size_t k = 0; k < ch->n; k++)
      if (encode_tcp_chain_has(ch, k, fc))
        count[fc][wasm_phase_rank(ch->exts[k]->phase)]++;
    for (int p = 0; p < 4; p++) {
      cap[fc][p] = encode_slot_capacity(s->opts.ecds_slots, count[fc][p]);
      if (cap[fc][p] == 0) {
        xds_err_set(err, XDS_ETOOBIG,
                    "phase %s has %zu extensions, more than %d slots allow",
                    encode_slot_phase_name(encode_slot_phases[p]), count[fc][p],
                    ENCODE_SLOTS_PHASE_MAX);
        rc = XDS_EINVAL;
        goto out;
      }
      n += cap[fc][p];
    }
  }
  if (slots_grow(c, n) < 0)
    goto out;
  encode_slot_layout(&cap[0][0], n_fc * 4, layout);
  rc = 0;
  for (size_t fc = 0; rc == 0 && fc < n_fc; fc++) {
    for (int p = 0; rc == 0 && p < 4; p++) {
      size_t j = 0;
      /* The chain's extensions of phase p on this filter chain, in order
       * (a chain is sorted by phase, so they are consecutive). */
      for (size_t k = 0; rc == 0 && k < ch->n; k++) {
        if (wasm_phase_rank(ch->exts[k]->phase) != p ||
            !encode_tcp_chain_has(ch, k, fc))
          continue;
        xds_buf_reset(&name);
        rc = encode_tcp_slot_name(t->name, layout, fc, t->n_tcp_chains,
                                  encode_slot_phases[p], j++, &name);
        if (rc == 0)
          rc = xds_buf_putc(&name, '\0');
        if (rc == 0)
          rc = slot_add(s, c, name.data, ch->exts[k]->fqn, ch->index[k], 1,
                        &tmp);
      }
      for (; rc == 0 && j < cap[fc][p]; j++) {
        xds_buf_reset(&name);
        rc = encode_tcp_slot_name(t->name, layout, fc, t->n_tcp_chains,
                                  encode_slot_phases[p], j, &name);
        if (rc == 0)
          rc = xds_buf_putc(&name, '\0');
        if (rc == 0)
          rc = slot_add(s, c, name.data, NULL, 0, 1, &tmp);
      }
    }
  }
  if (rc < 0)
    goto out;
  /* The filter chains' slot names, borrowed from c's slots. */
  for (size_t fc = 0, at = first_slot; fc < n_fc; fc++) {
    names[fc] = xds_calloc(n + 1, sizeof(*names[fc]));
    if (names[fc] == NULL) {
      rc = XDS_ENOMEM;
      goto out;
    }
    for (int p = 0; p < 4; p++)
      for (size_t j = 0; j < cap[fc][p]; j++)
        names[fc][n_names[fc]++] = c->slots[at++].name;
  }
  rc = encode_tcp_listener_slots(t, (const char *const *const *)names, n_names,
                                 &s->opts, all);
out:
  for (size_t fc = 0; names != NULL && fc < n_fc; fc++)
    xds_free(names[fc]);
  xds_free(names);
  xds_free(n_names);
  xds_free(count);
  xds_free(cap);
  xds_buf_cleanup(&name);
  xds_buf_cleanup(&tmp);
  return rc;
}

/* Drops the slots of c from index keep on (a listener that failed). */
static void slots_truncate(struct xds_class *c, size_t keep) {
  while (c->n_slots > keep) {
    c->n_slots--;
    xds_free((char *)c->slots[c->n_slots].name);
    xds_free(c->slots[c->n_slots].bytes);
  }
}

struct slot_key {
  const char *name;
  size_t i;
};

static int slot_key_cmp(const void *a, const void *b) {
  return strcmp(((const struct slot_key *)a)->name,
                ((const struct slot_key *)b)->name);
}

/* Fills c->slot_by_name. Returns 0 or XDS_ENOMEM. */
static int slots_index(struct xds_class *c) {
  struct slot_key *k = xds_calloc(c->n_slots + 1, sizeof(*k));

  c->slot_by_name = xds_calloc(c->n_slots + 1, sizeof(*c->slot_by_name));
  if (k == NULL || c->slot_by_name == NULL) {
    xds_free(k);
    return XDS_ENOMEM;
  }
  for (size_t i = 0; i < c->n_slots; i++) {
    k[i].name = c->slots[i].name;
    k[i].i = i;
  }
  qsort(k, c->n_slots, sizeof(*k), slot_key_cmp);
  for (size_t i = 0; i < c->n_slots; i++)
    c->slot_by_name[i] = k[i].i;
  xds_free(k);
  return 0;
}

const struct xds_resource *snapshot_class_slot(const struct xds_class *c,
                                               const char *name) {
  size_t lo = 0, hi = c->n_slots;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct xds_resource *r = &c->slots[c->slot_by_name[mid]];
    int cmp = strcmp(r->name, name);
    if (cmp == 0)
      return r;
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Copies the listener names and slot fqns of r's view (borrowed from the
 * catalog while it is built) into r->names, so that the view outlives the
 * catalog when later snapshots share it. Returns 0 or XDS_ENOMEM. */
static int class_own_names(struct class_rec *r) {
  struct xds_class *c = &r->c;
  size_t n = 1;
  char *at;

  for (size_t i = 0; i < c->n_listeners; i++)
    n += strlen(c->listeners[i].name) + 1;
  for (size_t i = 0; i < c->n_slots; i++)
    n += len_or_0(c->slot_fqn[i]);
  r->names = xds_malloc(n);
  if (r->names == NULL)
    return XDS_ENOMEM;
  at = r->names;
  for (size_t i = 0; i < c->n_listeners; i++)
    c->listeners[i].name = put_str(c->listeners[i].name, &at);
  for (size_t i = 0; i < c->n_slots; i++)
    c->slot_fqn[i] = put_str(c->slot_fqn[i], &at);
  return 0;
}

static int class_build(struct snapshot *s, const struct proxy_id *p, char *key,
                       struct class_rec **out) {
  const struct catalog *cat = s->cat;
  struct class_rec *r;
  struct xds_class *c;
  struct xds_buf *all_p = &s->scratch, body, problems;
  struct version_hasher h;
  struct encode_entry *entries = NULL;
  size_t *ends = NULL, n_t = catalog_tmpl_count(cat);
  struct chain ch;
  struct xds_err err;
  int rc = XDS_ENOMEM;

  r = xds_calloc(1, sizeof(*r));
  if (r == NULL)
    return XDS_ENOMEM;
  atomic_init(&r->refs, 1);
  atomic_init(&r->used, s->generation);
  c = &r->c;
  c->key = key;
  c->listeners = xds_calloc(n_t + 1, sizeof(*c->listeners));
  ends = xds_calloc(n_t + 1, sizeof(*ends));
  if (c->listeners == NULL || ends == NULL)
    goto fail;
  xds_buf_reset(all_p);
  xds_buf_init(&body, SNAPSHOT_LDS_MAX);
  xds_buf_init(&problems, 64 * 1024);
  /* 1. Every listener, one after the other, in all. */
  for (size_t i = 0; i < n_t; i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(cat, i);
    size_t before = all_p->len;
    if (!chain_tmpl_applies(t, p))
      continue;
    rc = chain_compute_opts(
        cat, p, t, s->opts.attachment_required ? CHAIN_ATTACHMENT_REQUIRED : 0,
        &ch);
    if (rc < 0)
      goto fail_bufs;
    err.msg[0] = '\0';
    /* Slots: in the HCM of HTTP listeners, in each network filter chain
     * of TCP ones (README "Zero-drain changes (slots)"). */
    if (s->opts.ecds_slots > 0 && !s->opts.inline_wasm) {
      size_t keep = c->n_slots;
      rc = t->protocol == TMPL_TCP ? slots_encode_tcp(s, c, t, &ch, all_p, &err)
                                   : slots_encode(s, c, t, &ch, all_p, &err);
      chain_cleanup(&ch);
      if (rc == XDS_ENOMEM)
        goto fail_bufs;
      if (rc < 0) {
        slots_truncate(c, keep);
        all_p->len = before;
        xds_buf_printf(&problems, "listener %s: %s\n", t->name,
                       err.msg[0] ? err.msg : xds_strerror(rc));
        continue;
      }
      c->listeners[c->n_listeners].name = t->name;
      ends[c->n_listeners] = all_p->len;
      version_of(all_p->data + before, all_p->len - before,
                 c->listeners[c->n_listeners].version);
      c->n_listeners++;
      continue;
    }
    xds_free(entries);
    entries = xds_calloc(ch.n + 1, sizeof(*entries));
    if (entries == NULL) {
      chain_cleanup(&ch);
      rc = XDS_ENOMEM;
      goto fail_bufs;
    }
    for (size_t k = 0; k < ch.n; k++)
      entries[k] = s->entries[ch.index[k]];
    rc = encode_listener_mods(t, &ch, NULL, entries, &s->opts, all_p, &err);
    chain_cleanup(&ch);
    if (rc == XDS_ENOMEM)
      goto fail_bufs;
    if (rc < 0) {
      /* Keep the other listeners; report this one. */
      all_p->len = before;
      xds_buf_printf(&problems, "listener %s: %s\n", t->name,
                     err.msg[0] ? err.msg : xds_strerror(rc));
      continue;
    }
    c->listeners[c->n_listeners].name = t->name;
    ends[c->n_listeners] = all_p->len;
    version_of(all_p->data + before, all_p->len - before,
               c->listeners[c->n_listeners].version);
    c->n_listeners++;
  }
  rc = slots_index(c);
  if (rc == 0)
    rc = class_own_names(r);
  if (rc < 0)
    goto fail_bufs;
  /* The names of every slot, in order: what a SotW ECDS version_info's
   * slot holdings are positions in (ads_slots.c). */
  if (c->n_slots > 0) {
    rc = version_begin(&h);
    if (rc < 0)
      goto fail_bufs;
    for (size_t i = 0; i < c->n_slots; i++)
      version_add_str(&h, c->slots[i].name);
    version_end(&h, c->slot_layout);
  }
  /* Templates are sorted by name, so listeners are too. */
  rc = version_begin(&h);
  if (rc < 0)
    goto fail_bufs;
  for (size_t i = 0; i < c->n_listeners; i++) {
    version_add_str(&h, c->listeners[i].name);
    version_add_str(&h, c->listeners[i].version);
  }
  version_end(&h, c->lds_version);

  /* 2. The shared LDS response body; each listener's bytes are the value
   * of its Any inside it, so they are stored once: a listener's resource
   * records its offset there (in .bytes until the body is final). */
  /* One allocation of the right size: the listeners plus their framing. */
  {
    char *p0;
    rc = xds_buf_extend(&body, all_p->len + 64 * (c->n_listeners + 2), &p0);
    if (rc < 0)
      goto fail_bufs;
    xds_buf_reset(&body);
  }
  rc = wire_put_string(&body, 1, c->lds_version);
  for (size_t i = 0; rc == 0 && i < c->n_listeners; i++) {
    size_t start = i == 0 ? 0 : ends[i - 1], off = 0;
    rc = wire_put_any_at(&body, 2, TYPE_LISTENER, all_p->data + start,
                         ends[i] - start, &off);
    c->listeners[i].len = ends[i] - start;
    c->listeners[i].bytes = (uint8_t *)(uintptr_t)off;
  }
  if (rc == 0)
    rc = wire_put_string(&body, 4, TYPE_LISTENER);
  if (rc < 0)
    goto fail_bufs;
  c->lds_body = (uint8_t *)xds_buf_steal(&body, &c->lds_body_len);
  for (size_t i = 0; i < c->n_listeners; i++)
    c->listeners[i].bytes = c->lds_body + (uintptr_t)c->listeners[i].bytes;
  if (problems.len > 0)
    c->problems = xds_buf_steal(&problems, NULL);
  xds_buf_cleanup(&problems);
  xds_free(ends);
  xds_free(entries);
  *out = r;
  return 0;
fail_bufs:
  xds_buf_cleanup(&body);
  xds_buf_cleanup(&problems);
fail:
  xds_free(ends);
  xds_free(entries);
  c->key = NULL; /* the caller still owns key on failure */
  class_unref(r);
  return rc == XDS_ETOOBIG ? XDS_ETOOBIG : XDS_ENOMEM;
}

int snapshot_class(struct snapshot *s, const struct proxy_id *p,
                   const struct xds_class **out) {
  struct class_rec *r = NULL;
  char *key;
  int rc;

  *out = NULL;
  pthread_mutex_lock(&s->class_lock);
  rc = class_key(s, p, &s->key);
  if (rc < 0) {
    pthread_mutex_unlock(&s->class_lock);
    return XDS_ENOMEM;
  }
  r = xds_map_get(s->classes, s->key.data);
  if (r != NULL) {
    s->class_hits++;
    if (s->stats != NULL)
      atomic_fetch_add(&s->stats->class_reuses, 1);
    /* A view shared by several snapshots: the newest that uses it. */
    if (atomic_load(&r->used) < s->generation)
      atomic_store(&r->used, s->generation);
  } else if ((key = xds_strdup(s->key.data)) == NULL) {
    rc = XDS_ENOMEM;
  } else {
    rc = class_build(s, p, key, &r);
    if (rc < 0) {
      xds_free(key);
    } else if ((rc = xds_map_put(s->classes, r->c.key, r, NULL)) < 0) {
      class_unref(r); /* frees key */
    } else {
      s->class_builds++;
      if (s->stats != NULL)
        atomic_fetch_add(&s->stats->class_builds, 1);
      s->class_bytes += r->c.lds_body_len;
    }
  }
  pthread_mutex_unlock(&s->class_lock);
  *out = rc < 0 ? NULL : &r->c;
  return rc;
}

void snapshot_set_stats(struct snapshot *s, struct xds_stats *stats) {
  s->stats = stats;
}

size_t snapshot_n_classes(struct snapshot *s) {
  size_t n;

  pthread_mutex_lock(&s->class_lock);
  n = xds_map_count(s->classes);
  pthread_mutex_unlock(&s->class_lock);
  return n;
}

void snapshot_class_stats(struct snapshot *s, struct snapshot_stats *out) {
  pthread_mutex_lock(&s->class_lock);
  out->classes = xds_map_count(s->classes);
  out->class_builds = s->class_builds;
  out->class_hits = s->class_hits;
  out->class_bytes = s->class_bytes;
  out->class_carried = s->class_carried;
  pthread_mutex_unlock(&s->class_lock);
  out->ecds = s->n_ecds;
  out->ecds_shared = s->enc_shared;
  out->ecds_bytes = 0;
  for (size_t i = 0; i < s->n_ecds; i++)
    out->ecds_bytes += s->ecds[i].len;
}

int snapshot_same_content(const struct snapshot *a, const struct snapshot *b) {
  if (a == NULL || b == NULL || a->n_ecds != b->n_ecds)
    return 0;
  if (catalog_diff(a->cat, b->cat, NULL, NULL) != 0)
    return 0;
  for (size_t i = 0; i < a->n_ecds; i++) {
    const struct xds_resource *x = &a->ecds[i], *y = &b->ecds[i];
    const struct encode_entry *ex = &a->entries[i], *ey = &b->entries[i];

    if (a->enc[i] == b->enc[i]) /* shared: the same bytes */
      continue;
    if (x->len != y->len || (x->len > 0 && memcmp(x->bytes, y->bytes, x->len)))
      return 0;
    if (ex->len != ey->len ||
        (ex->len > 0 && memcmp(ex->data, ey->data, ex->len) != 0))
      return 0;
  }
  return 1;
}
