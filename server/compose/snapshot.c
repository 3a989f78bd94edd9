/*
 * snapshot.c: building snapshots and their class views.
 *
 * Invariant: once published, nothing a reader can reach changes, except the
 * class map, which only grows and is guarded by class_lock.
 */
#include "server/compose/snapshot.h"

#include <pthread.h>
#include <stdatomic.h>
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

/* An extension's module delivery, copied out of the resolver when the
 * snapshot was built (so a snapshot never changes). */
struct snap_module {
  struct encode_module m; /* its strings point into the fields below */
  char *uri;
  char *sha256;
  char *root_id;
  char *reason;
};

struct snapshot {
  atomic_long refs;
  uint64_t generation;
  struct catalog *cat;
  struct encode_opts opts;
  struct xds_resource *ecds; /* parallel to the catalog's extensions */
  size_t n_ecds;
  struct snap_module *mods;     /* parallel too */
  uint8_t *entry_bytes;         /* every extension's HCM http_filters entry */
  struct encode_entry *entries; /* parallel: slices of entry_bytes */
  pthread_mutex_t class_lock;
  struct xds_map *classes;    /* key -> struct xds_class */
  struct xds_buf scratch;     /* reused by class_build (class_lock) */
  struct xds_stats *stats;    /* nullable: server counters */
  unsigned long class_builds; /* views built (guarded by class_lock) */
  unsigned long class_hits;   /* lookups answered by a built view */
  size_t class_bytes;         /* bytes of encoded listeners, all views */
};

static void resource_cleanup(struct xds_resource *r) {
  xds_free(r->bytes);
  r->bytes = NULL;
}

static void class_free(void *p) {
  struct xds_class *c = p;

  if (c == NULL)
    return;
  /* Listener bytes point into lds_body. */
  xds_free(c->listeners);
  for (size_t i = 0; i < c->n_slots; i++) {
    xds_free((char *)c->slots[i].name);
    xds_free(c->slots[i].bytes);
  }
  xds_free(c->slots);
  xds_free(c->slot_fqn);
  xds_free(c->slot_by_name);
  xds_free(c->lds_body);
  xds_free(c->problems);
  xds_free(c->key);
  xds_free(c);
}

static void snapshot_free(struct snapshot *s) {
  for (size_t i = 0; i < s->n_ecds; i++)
    resource_cleanup(&s->ecds[i]);
  xds_free(s->ecds);
  for (size_t i = 0; s->mods != NULL && i < catalog_ext_count(s->cat); i++) {
    xds_free(s->mods[i].uri);
    xds_free(s->mods[i].sha256);
    xds_free(s->mods[i].root_id);
    xds_free(s->mods[i].reason);
  }
  xds_free(s->mods);
  xds_free(s->entry_bytes);
  xds_free(s->entries);
  xds_map_free(s->classes, class_free);
  xds_buf_cleanup(&s->scratch);
  pthread_mutex_destroy(&s->class_lock);
  catalog_unref(s->cat);
  xds_free(s);
}

/* Moves a buffer's bytes into a resource and stamps its version. */
static void resource_take(struct xds_resource *r, const char *name,
                          struct xds_buf *b) {
  r->name = name;
  r->len = b->len;
  r->bytes = (uint8_t *)xds_buf_steal(b, NULL);
  version_of(r->bytes, r->len, r->version);
}

static int dup_or_null(const char *in, char **out) {
  *out = NULL;
  if (in == NULL)
    return 0;
  *out = xds_strdup(in);
  return *out == NULL ? XDS_ENOMEM : 0;
}

/* Decides and copies extension i's module delivery. */
static int take_module(struct snapshot *s, size_t i, const struct wasm_ext *e,
                       const struct encode_opts *o) {
  struct snap_module *sm = &s->mods[i];
  struct encode_module m;
  int rc;

  if (o->module_of != NULL) {
    rc = o->module_of(o->module_ctx, e, &m);
    if (rc < 0)
      return rc;
  } else {
    encode_module_default(e, &m);
  }
  if (dup_or_null(m.uri, &sm->uri) < 0 ||
      dup_or_null(m.sha256, &sm->sha256) < 0 ||
      dup_or_null(m.root_id, &sm->root_id) < 0 ||
      dup_or_null(m.reason, &sm->reason) < 0)
    return XDS_ENOMEM;
  sm->m.kind = m.kind;
  sm->m.uri = sm->uri;
  sm->m.sha256 = sm->sha256;
  sm->m.root_id = sm->root_id;
  sm->m.reason = sm->reason;
  return 0;
}

int snapshot_build(struct catalog *cat, const struct encode_opts *o,
                   uint64_t generation, struct snapshot **out,
                   struct xds_err *err) {
  struct snapshot *s;
  struct xds_buf b;
  size_t n = catalog_ext_count(cat);
  int rc = XDS_ENOMEM;

  *out = NULL;
  s = xds_calloc(1, sizeof(*s));
  if (s == NULL)
    return xds_err_set(err, XDS_ENOMEM, "snapshot: out of memory");
  atomic_init(&s->refs, 1);
  s->generation = generation;
  s->opts = *o;
  s->cat = catalog_ref(cat);
  pthread_mutex_init(&s->class_lock, NULL);
  xds_buf_init(&s->scratch, SNAPSHOT_LDS_MAX);
  s->classes = xds_map_new();
  s->ecds = xds_calloc(n, sizeof(*s->ecds));
  s->mods = xds_calloc(n, sizeof(*s->mods));
  if (s->classes == NULL || s->ecds == NULL || s->mods == NULL)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    rc = take_module(s, i, catalog_ext_at(cat, i), o);
    if (rc < 0)
      goto fail;
  }
  xds_buf_init(&b, SNAPSHOT_LDS_MAX);
  for (size_t i = 0; i < n; i++) {
    const struct wasm_ext *e = catalog_ext_at(cat, i);
    rc = encode_extension_config(e, &s->mods[i].m, o, &b);
    if (rc < 0) {
      xds_err_set(err, rc, "%s: extension %s cannot be encoded: %s",
                  e->loc.source, e->fqn, xds_strerror(rc));
      xds_buf_cleanup(&b);
      goto fail;
    }
    resource_take(&s->ecds[i], e->fqn, &b);
    s->n_ecds++;
  }
  /* Each extension's entry in a listener's filter list, encoded once for
   * every listener that references it. */
  s->entries = xds_calloc(n + 1, sizeof(*s->entries));
  if (s->entries == NULL) {
    rc = XDS_ENOMEM;
    xds_buf_cleanup(&b);
    goto fail;
  }
  {
    size_t *ends = xds_calloc(n + 1, sizeof(*ends));
    if (ends == NULL) {
      rc = XDS_ENOMEM;
      xds_buf_cleanup(&b);
      goto fail;
    }
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
      rc = encode_wasm_filter_entry(catalog_ext_at(cat, i), &s->mods[i].m, o,
                                    &b);
      ends[i] = b.len;
    }
    if (rc < 0) {
      xds_free(ends);
      xds_buf_cleanup(&b);
      goto fail;
    }
    s->entry_bytes = (uint8_t *)xds_buf_steal(&b, NULL);
    for (size_t i = 0; i < n; i++) {
      size_t start = i == 0 ? 0 : ends[i - 1];
      s->entries[i].data = s->entry_bytes + start;
      s->entries[i].len = ends[i] - start;
    }
    xds_free(ends);
  }
  xds_buf_cleanup(&b);
  *out = s;
  return 0;
fail:
  if (rc == XDS_ENOMEM)
    xds_err_set(err, rc, "snapshot: out of memory");
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

  return r != NULL ? &s->mods[r - s->ecds].m : NULL;
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

/* The class key: everything composition depends on. Labels matter only
 * through the templates and WasmPlugins they select, so proxies whose
 * labels differ but select the same ones share a class. Each string is
 * written with its length first ("<len>:<bytes>"; "-" for no tenant) and
 * templates by catalog position, so two different identities never make
 * the same key whatever bytes their strings hold; chain_scope_key's part
 * (namespace and WasmPlugin selections, names from validated grammars)
 * follows. Returns a new string or NULL. */
static char *class_key(const struct catalog *cat, const struct proxy_id *p) {
  struct xds_buf b;
  int rc;

  xds_buf_init(&b, 1 << 20);
  rc = xds_buf_printf(&b, "%zu:%s|", strlen(p->organization), p->organization);
  if (rc == 0 && p->tenant == NULL)
    rc = xds_buf_printf(&b, "-|");
  else if (rc == 0)
    rc = xds_buf_printf(&b, "%zu:%s|", strlen(p->tenant), p->tenant);
  if (rc == 0)
    rc = xds_buf_printf(&b, "%c|", p->mode == PROXY_MODE_GATEWAY ? 'G' : 'S');
  for (size_t i = 0; rc == 0 && i < catalog_tmpl_count(cat); i++) {
    const struct listener_tmpl *t = catalog_tmpl_at(cat, i);
    if (chain_tmpl_applies(t, p))
      rc = xds_buf_printf(&b, "%zu,", i);
  }
  if (rc == 0)
    rc = xds_buf_printf(&b, "|");
  if (rc == 0)
    rc = chain_scope_key(cat, p, &b);
  if (rc < 0) {
    xds_buf_cleanup(&b);
    return NULL;
  }
  return xds_buf_steal(&b, NULL);
}

/* Stand-ins that only carry a phase: the "chain" of a slotted listener is
 * its slots, placed among the native filters as Wasm filters of their
 * phase would be. */
static const struct wasm_ext slot_phase_ext[4] = {
    {.phase = WASM_PHASE_AUTHN},
    {.phase = WASM_PHASE_AUTHZ},
    {.phase = WASM_PHASE_STATS},
    {.phase = WASM_PHASE_UNSPECIFIED}};

/* Adds one slot resource to c (arrays grown by the caller). */
static int slot_add(struct snapshot *s, struct xds_class *c, const char *name,
                    const char *fqn, size_t ext_i, struct xds_buf *tmp) {
  struct xds_resource *r = &c->slots[c->n_slots];
  const struct xds_resource *ext = fqn != NULL ? &s->ecds[ext_i] : NULL;
  int rc;

  xds_buf_reset(tmp);
  rc = encode_slot_config(name, ext != NULL ? ext->bytes : NULL,
                          ext != NULL ? ext->len : 0, tmp);
  if (rc < 0)
    return rc;
  r->name = xds_strdup(name);
  if (r->name == NULL)
    return XDS_ENOMEM;
  r->len = tmp->len;
  r->bytes = (uint8_t *)xds_buf_steal(tmp, NULL);
  version_of(r->bytes, r->len, r->version);
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
  xds_buf_init(&eb, SNAPSHOT_LDS_MAX);
  xds_buf_init(&name, 4096);
  xds_buf_init(&tmp, SNAPSHOT_LDS_MAX);
  exts = xds_calloc(n, sizeof(*exts));
  entries = xds_calloc(n, sizeof(*entries));
  ends = xds_calloc(n, sizeof(*ends));
  {
    struct xds_resource *r =
        xds_realloc(c->slots, (c->n_slots + n) * sizeof(*c->slots));
    if (r != NULL)
      c->slots = r;
    const char **f =
        r == NULL ? NULL
                  : xds_realloc(c->slot_fqn, (c->n_slots + n) * sizeof(*f));
    if (f != NULL)
      c->slot_fqn = f;
    if (r == NULL || f == NULL)
      goto out;
  }
  if (exts == NULL || entries == NULL || ends == NULL)
    goto out;
  memset(c->slots + c->n_slots, 0, n * sizeof(*c->slots));
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
      rc = encode_slot_name(t->name, encode_slot_phases[p], j, &name);
      if (rc == 0)
        rc = xds_buf_putc(&name, '\0');
      if (rc == 0)
        rc = encode_slot_entry(name.data, &s->opts, &eb);
      ends[i] = eb.len;
      if (rc == 0)
        rc = slot_add(s, c, name.data, fqn, ext_i, &tmp);
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

static int class_build(struct snapshot *s, const struct proxy_id *p, char *key,
                       struct xds_class **out) {
  const struct catalog *cat = s->cat;
  struct xds_class *c;
  struct xds_buf *all_p = &s->scratch, body, problems;
  struct version_hasher h;
  struct encode_entry *entries = NULL;
  size_t *ends = NULL, n_t = catalog_tmpl_count(cat);
  struct chain ch;
  struct xds_err err;
  int rc = XDS_ENOMEM;

  c = xds_calloc(1, sizeof(*c));
  if (c == NULL)
    return XDS_ENOMEM;
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
    /* Slots on HTTP listeners; TCP listeners keep their network filters
     * by name (README "Zero-drain changes (slots)"). */
    if (s->opts.ecds_slots > 0 && !s->opts.inline_wasm &&
        t->protocol != TMPL_TCP) {
      size_t keep = c->n_slots;
      rc = slots_encode(s, c, t, &ch, all_p, &err);
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
  if (rc < 0)
    goto fail_bufs;
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
  *out = c;
  return 0;
fail_bufs:
  xds_buf_cleanup(&body);
  xds_buf_cleanup(&problems);
fail:
  xds_free(ends);
  xds_free(entries);
  c->key = NULL; /* the caller still owns key on failure */
  class_free(c);
  return rc == XDS_ETOOBIG ? XDS_ETOOBIG : XDS_ENOMEM;
}

int snapshot_class(struct snapshot *s, const struct proxy_id *p,
                   const struct xds_class **out) {
  struct xds_class *c;
  char *key = class_key(s->cat, p);
  int rc = 0;

  *out = NULL;
  if (key == NULL)
    return XDS_ENOMEM;
  pthread_mutex_lock(&s->class_lock);
  c = xds_map_get(s->classes, key);
  if (c != NULL) {
    xds_free(key);
    s->class_hits++;
    if (s->stats != NULL)
      atomic_fetch_add(&s->stats->class_reuses, 1);
  } else {
    rc = class_build(s, p, key, &c);
    if (rc < 0) {
      xds_free(key);
    } else if ((rc = xds_map_put(s->classes, key, c, NULL)) < 0) {
      class_free(c);
    } else {
      s->class_builds++;
      if (s->stats != NULL)
        atomic_fetch_add(&s->stats->class_builds, 1);
      s->class_bytes += c->lds_body_len;
    }
  }
  pthread_mutex_unlock(&s->class_lock);
  *out = rc < 0 ? NULL : c;
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
  pthread_mutex_unlock(&s->class_lock);
  out->ecds = s->n_ecds;
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

    if (x->len != y->len || (x->len > 0 && memcmp(x->bytes, y->bytes, x->len)))
      return 0;
    if (ex->len != ey->len ||
        (ex->len > 0 && memcmp(ex->data, ey->data, ex->len) != 0))
      return 0;
  }
  return 1;
}
