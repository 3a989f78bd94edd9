/*
 * ads_slots.c: the order in which a stream's ECDS slot updates go out
 * (--ecds-slots; README "Zero-drain changes (slots)", "Switch-over").
 *
 * A proxy applies the configs of a response one after the other, and may
 * run requests between any two, so every state in between must be safe:
 *   (1) a fail-closed extension (FAIL_CLOSE or FAIL_RELOAD) that the proxy
 *       runs now and must still run afterwards is never absent;
 *   (2) no other extension ever runs twice.
 * A fail-closed extension may run twice for the time of one update: when
 * two of them swap slots, no sequence of single-slot writes avoids both a
 * hole and a duplicate, and the duplicate is the safe side (it can only
 * deny more). To plan, the stream remembers what each slot it sent holds
 * (slot_holds); a slot never sent holds nothing yet (its listener is still
 * warming, waiting for it).
 *
 * The plan, greedy and deterministic (slots in listener order):
 *   a. a final write whose old content is not the last copy of a needed
 *      fail-closed extension, and whose new content is not already
 *      running;
 *   b. else such a write whose new content is a fail-closed extension
 *      (a transient duplicate, allowed by (1)/(2) above);
 *   c. else, for a write whose new content (not fail-closed) still runs in
 *      another slot, that other slot is first emptied (a transit write: its
 *      own final content follows in the next response);
 *   d. else (fail-closed extensions in a cycle) one of them is copied into
 *      a spare slot, one that runs nothing (a transit write too), which
 *      frees its old slot.
 * A slot written once in a response cannot be written again in it: a
 * transit write defers that slot's final content to the next response, and
 * when no step applies the rest is deferred. The stream's flow control
 * sends the next response as soon as this one is written, from what is
 * still owed. If nothing at all could be planned, the writes go out in
 * listener order (not reached with slots sized as encode_slot_capacity
 * sizes them, which always leaves a spare).
 *
 * A proxy that reconnects keeps the configs it had. What each slot holds
 * then comes from what it reports: a slot version names its occupant
 * (encode_slot_version), so a delta proxy's initial_resource_versions say
 * it; a SotW proxy reports the version_info of its last ECDS response,
 * which for a class with slots carries the holdings of every slot
 * (ads_slots_holdings, parsed by ads_slots_resume). An occupant that is
 * no extension of the store any more cannot be needed (SLOT_OTHER); one
 * that cannot be told (SLOT_UNKNOWN: a version of another form, or an
 * ambiguous ident) might be any needed fail-closed extension, so its slot
 * is only written once every needed one runs elsewhere (a missing one is
 * first copied into a spare, step e).
 */
#include "server/ads/ads_impl.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "server/compose/encode.h"

/* Occupants that are no extension of the plan: not needed, or not known. */
static const char SLOT_OTHER[] = "\x01other";
static const char SLOT_UNKNOWN[] = "\x01unknown";

/* Slot i of the class: what runs there now (cur), what must run there
 * (want), whether its final config is owed (res) and whether this response
 * wrote it already (used). */
struct plan_slot {
  const char *cur;
  const char *want;
  const struct xds_resource *res; /* owed final config, or NULL */
  int used;
  size_t grp; /* its listener: the invariants hold per listener */
};

struct plan {
  struct ads_stream *s;
  const struct xds_class *cls;
  struct plan_slot *slot;
  size_t n;
  const struct xds_resource **out;
  size_t n_out;
};

void ads_slots_cleanup(struct ads_stream *s) {
  for (size_t i = 0; i < s->n_transit; i++) {
    xds_free((char *)s->transit[i].name);
    xds_free(s->transit[i].bytes);
  }
  xds_free(s->transit);
  s->transit = NULL;
  s->n_transit = 0;
}

static int same(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Copies of x running now in listener g. */
static size_t running(const struct plan *p, const char *x, size_t g) {
  size_t c = 0;

  for (size_t i = 0; i < p->n; i++)
    c += p->slot[i].grp == g && same(p->slot[i].cur, x);
  return c;
}

static int fail_closed(const struct plan *p, const char *x) {
  const struct wasm_ext *e =
      x != NULL ? catalog_ext_find(snapshot_catalog(p->s->snap), x) : NULL;

  return e != NULL && e->fail_strategy != WASM_FAIL_OPEN;
}

/* A fail-closed extension that must still run in listener g afterwards. */
static int needed(const struct plan *p, const char *x, size_t g) {
  if (!fail_closed(p, x))
    return 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->slot[i].grp == g && same(p->slot[i].want, x))
      return 1;
  return 0;
}

/* A needed extension of listener g that runs nowhere in it now, or NULL. */
static const char *missing(const struct plan *p, size_t g) {
  for (size_t i = 0; i < p->n; i++)
    if (p->slot[i].grp == g && needed(p, p->slot[i].want, g) &&
        running(p, p->slot[i].want, g) == 0)
      return p->slot[i].want;
  return NULL;
}

/* Writing slot i loses nothing that must run. */
static int safe(const struct plan *p, size_t i) {
  const char *old = p->slot[i].cur;
  size_t g = p->slot[i].grp;

  if (old == SLOT_UNKNOWN) /* it might be any needed one */
    return missing(p, g) == NULL;
  return old == NULL || same(old, p->slot[i].want) || !needed(p, old, g) ||
         running(p, old, g) > 1;
}

/* Records the final write of slot i. */
static void put_final(struct plan *p, size_t i) {
  p->out[p->n_out++] = p->slot[i].res;
  p->slot[i].cur = p->slot[i].want;
  p->slot[i].res = NULL;
  p->slot[i].used = 1;
}

/* Writes x (NULL: nothing) into slot i for now; its final config is
 * deferred. Returns 0 or XDS_ENOMEM. */
static int put_transit(struct plan *p, size_t i, const char *x) {
  struct ads_stream *s = p->s;
  struct xds_resource *r = &s->transit[s->n_transit];
  const struct xds_resource *ext = x != NULL ? snapshot_ecds(s->snap, x) : NULL;
  struct xds_buf b;
  int rc;

  xds_buf_init(&b, 4 << 20);
  rc =
      encode_slot_config(p->cls->slots[i].name, ext != NULL ? ext->bytes : NULL,
                         ext != NULL ? ext->len : 0, p->cls->slot_net[i], &b);
  if (rc < 0) {
    xds_buf_cleanup(&b);
    return rc;
  }
  memset(r, 0, sizeof(*r));
  r->name = xds_strdup(p->cls->slots[i].name);
  if (r->name == NULL) {
    xds_buf_cleanup(&b);
    return XDS_ENOMEM;
  }
  r->len = b.len;
  r->bytes = (uint8_t *)xds_buf_steal(&b, NULL);
  encode_slot_version(r->bytes, r->len, x, r->version);
  s->n_transit++;
  p->out[p->n_out++] = r;
  p->slot[i].cur = x;
  p->slot[i].res = NULL; /* deferred: still owed afterwards */
  p->slot[i].used = 1;
  return 0;
}

/* One step of the plan: 1 made, 0 nothing possible, or XDS_ENOMEM. */
static int step(struct plan *p) {
  size_t dup_fc = p->n;

  /* a, and remember the first b. */
  for (size_t i = 0; i < p->n; i++) {
    const char *want = p->slot[i].want;
    if (p->slot[i].res == NULL || p->slot[i].used || !safe(p, i))
      continue;
    if (want == NULL || same(p->slot[i].cur, want) ||
        running(p, want, p->slot[i].grp) == 0) {
      put_final(p, i);
      return 1;
    }
    if (dup_fc == p->n && fail_closed(p, want))
      dup_fc = i;
  }
  if (dup_fc < p->n) { /* b */
    put_final(p, dup_fc);
    return 1;
  }
  /* c: empty the other slot that still runs a non-fail-closed want. */
  for (size_t i = 0; i < p->n; i++) {
    const char *want = p->slot[i].want;
    if (p->slot[i].res == NULL || p->slot[i].used || !safe(p, i) ||
        want == NULL)
      continue;
    for (size_t k = 0; k < p->n; k++)
      if (k != i && !p->slot[k].used && p->slot[k].grp == p->slot[i].grp &&
          same(p->slot[k].cur, want))
        return put_transit(p, k, NULL) < 0 ? XDS_ENOMEM : 1;
  }
  /* d: copy the fail-closed content of a blocked slot into a spare. */
  for (size_t i = 0; i < p->n; i++) {
    if (p->slot[i].res == NULL || p->slot[i].used || safe(p, i) ||
        p->slot[i].cur == SLOT_UNKNOWN)
      continue;
    for (size_t k = 0; k < p->n; k++) {
      const struct ads_type_state *t = &p->s->t[ADS_T_ECDS];
      if (k == i || p->slot[k].used || p->slot[k].cur != NULL ||
          p->slot[k].grp != p->slot[i].grp ||
          (!t->wildcard && !ads_sub_has(t, p->cls->slots[k].name)))
        continue;
      return put_transit(p, k, p->slot[i].cur) < 0 ? XDS_ENOMEM : 1;
    }
  }
  /* e: a slot of unknown content is blocked while a needed extension runs
   * nowhere: copy that one into a spare. */
  for (size_t i = 0; i < p->n; i++) {
    const char *w;
    if (p->slot[i].res == NULL || p->slot[i].used || safe(p, i) ||
        (w = missing(p, p->slot[i].grp)) == NULL)
      continue;
    for (size_t k = 0; k < p->n; k++) {
      const struct ads_type_state *t = &p->s->t[ADS_T_ECDS];
      if (k == i || p->slot[k].used || p->slot[k].cur != NULL ||
          p->slot[k].grp != p->slot[i].grp ||
          (!t->wildcard && !ads_sub_has(t, p->cls->slots[k].name)))
        continue;
      return put_transit(p, k, w) < 0 ? XDS_ENOMEM : 1;
    }
  }
  return 0;
}

static int same_listener(const char *a, const char *b);

/*
 * The occupant of a slot of the listener whose first slot is g (its
 * group) whose ident (encode_slot_ident) is ident:
 * NULL for 0 (empty), an extension the class places in the same listener,
 * else the one extension of the catalog with that ident; SLOT_OTHER when
 * none has it (no extension of the store, so not needed), SLOT_UNKNOWN
 * when several do.
 */
static const char *resolve(const struct ads_stream *s, size_t g,
                           uint32_t ident) {
  const struct xds_class *cls = s->cls;
  const struct catalog *cat = snapshot_catalog(s->snap);
  const char *found = NULL;

  if (ident == 0)
    return NULL;
  for (size_t k = g; k < cls->n_slots; k++) {
    if (k > g && !same_listener(cls->slots[k - 1].name, cls->slots[k].name))
      break;
    if (cls->slot_fqn[k] != NULL &&
        encode_slot_ident(cls->slot_fqn[k]) == ident)
      return cls->slot_fqn[k];
  }
  for (size_t k = 0; k < catalog_ext_count(cat); k++) {
    const char *f = catalog_ext_at(cat, k)->fqn;
    if (encode_slot_ident(f) != ident)
      continue;
    if (found != NULL)
      return SLOT_UNKNOWN;
    found = f;
  }
  return found != NULL ? found : SLOT_OTHER;
}

/* A slot_holds value as an occupant (the markers are stored as text). */
static const char *held_of(const char *v) {
  if (v == NULL)
    return SLOT_UNKNOWN;
  if (strcmp(v, SLOT_OTHER) == 0)
    return SLOT_OTHER;
  if (strcmp(v, SLOT_UNKNOWN) == 0)
    return SLOT_UNKNOWN;
  return v[0] != '\0' ? v : NULL;
}

/* Whether two slot names ("wasmxds.slot/<listener>/<PHASE>/<pos>") are of
 * one listener: equal up to their second-to-last '/'. */
static int same_listener(const char *a, const char *b) {
  const char *ea = strrchr(a, '/'), *eb = strrchr(b, '/');
  size_t la, lb;

  while (ea != NULL && ea > a && ea[-1] != '/')
    ea--;
  while (eb != NULL && eb > b && eb[-1] != '/')
    eb--;
  if (ea == NULL || eb == NULL)
    return 0;
  la = (size_t)(ea - a);
  lb = (size_t)(eb - b);
  return la == lb && memcmp(a, b, la) == 0;
}

/* The slot index of r in the class, or n when r is not a slot. */
static size_t slot_index(const struct xds_class *cls,
                         const struct xds_resource *r) {
  if (cls->n_slots > 0 && r >= cls->slots && r < cls->slots + cls->n_slots)
    return (size_t)(r - cls->slots);
  return cls->n_slots;
}

int ads_slots_plan(struct ads_stream *s, const struct xds_resource ***send,
                   size_t *n_send) {
  const struct xds_class *cls = s->cls;
  const struct xds_resource **v = *send;
  struct plan p = {s, cls, NULL, cls->n_slots, NULL, 0};
  size_t n_v = *n_send, left = 0;
  int rc = XDS_ENOMEM;

  ads_slots_cleanup(s);
  if (s->slot_holds == NULL && (s->slot_holds = xds_map_new()) == NULL)
    return XDS_ENOMEM;
  p.slot = xds_calloc(p.n + 1, sizeof(*p.slot));
  p.out = xds_calloc(n_v + p.n + 1, sizeof(*p.out));
  s->transit = xds_calloc(p.n + 1, sizeof(*s->transit));
  if (p.slot == NULL || p.out == NULL || s->transit == NULL)
    goto out;
  for (size_t i = 0; i < p.n; i++) {
    const char *held = xds_map_get(s->slot_holds, cls->slots[i].name);
    const struct ads_res *had =
        ads_sent_find(&s->t[ADS_T_ECDS].sent, cls->slots[i].name);
    uint32_t ident;
    char htext[VERSION_LEN + 1];
    p.slot[i].want = cls->slot_fqn[i];
    p.slot[i].grp =
        i > 0 && same_listener(cls->slots[i - 1].name, cls->slots[i].name)
            ? p.slot[i - 1].grp
            : i;
    if (held != NULL)
      p.slot[i].cur = held_of(held);
    else if (had != NULL && had->state == ADS_RES_CLIENT)
      /* Reported on reconnect (delta): its version names the occupant. */
      p.slot[i].cur = (ads_res_version_text(had, htext),
                       encode_slot_version_ident(htext, &ident)) == 0
                          ? resolve(s, p.slot[i].grp, ident)
                          : SLOT_UNKNOWN;
    else
      p.slot[i].cur = NULL; /* never sent: nothing (its listener warms) */
  }
  /* Other resources first, in their order; slots are planned. */
  for (size_t j = 0; j < n_v; j++) {
    size_t i = slot_index(cls, v[j]);
    if (i < p.n)
      p.slot[i].res = v[j];
    else
      p.out[p.n_out++] = v[j];
  }
  for (size_t i = 0; i < p.n; i++)
    if (p.slot[i].res == NULL &&
        ads_sent_find(&s->t[ADS_T_ECDS].sent, cls->slots[i].name) != NULL)
      p.slot[i].cur = p.slot[i].want;
  while ((rc = step(&p)) == 1)
    ;
  if (rc < 0)
    goto out;
  for (size_t i = 0; i < p.n; i++)
    left += p.slot[i].res != NULL;
  if (left > 0 && p.n_out == 0) /* stuck: send in listener order */
    for (size_t i = 0; i < p.n; i++)
      if (p.slot[i].res != NULL)
        put_final(&p, i);
  /* Deferred finals and transit slots are still owed after this. */
  s->slots_deferred = s->n_transit > 0;
  for (size_t i = 0; i < p.n; i++)
    s->slots_deferred |= p.slot[i].res != NULL;
  /* What each slot will hold once the proxy applies this response. */
  for (size_t j = 0; j < p.n_out; j++) {
    size_t i;
    const char *name = p.out[j]->name;
    char *copy;
    void *old = NULL;
    for (i = 0; i < p.n && strcmp(cls->slots[i].name, name) != 0; i++)
      ;
    if (i == p.n)
      continue;
    copy = xds_strdup(p.slot[i].cur != NULL ? p.slot[i].cur : "");
    /* (the markers are stored as their text, held_of reads them back) */
    if (copy == NULL || xds_map_put(s->slot_holds, name, copy, &old) < 0) {
      xds_free(copy);
      rc = XDS_ENOMEM;
      goto out;
    }
    xds_free(old);
  }
  xds_free(v);
  *send = p.out;
  *n_send = p.n_out;
  p.out = NULL;
  rc = 0;
out:
  xds_free(p.slot);
  xds_free(p.out);
  return rc;
}

int ads_slots_holdings(const struct ads_stream *s, struct xds_buf *out) {
  const struct xds_class *cls = s->cls;
  char tok[8] = "", prev[8] = "";
  size_t run = 0;
  int rc = xds_buf_printf(out, ":%s:", cls->slot_layout);

  for (size_t i = 0; rc == 0 && i <= cls->n_slots; i++) {
    if (i < cls->n_slots) {
      const char *h = s->slot_holds != NULL
                          ? xds_map_get(s->slot_holds, cls->slots[i].name)
                          : NULL;
      const char *o = h != NULL ? held_of(h) : SLOT_UNKNOWN;
      if (o == NULL)
        snprintf(tok, sizeof(tok), "-");
      else if (o == SLOT_UNKNOWN)
        snprintf(tok, sizeof(tok), "?");
      else if (o == SLOT_OTHER)
        snprintf(tok, sizeof(tok), "x");
      else
        snprintf(tok, sizeof(tok), "%06x", (unsigned)encode_slot_ident(o));
      if (run > 0 && strcmp(tok, prev) == 0) {
        run++;
        continue;
      }
    }
    if (run > 1)
      rc = xds_buf_printf(out, "%s*%zu.", prev, run);
    else if (run == 1)
      rc = xds_buf_puts(out, prev);
    memcpy(prev, tok, sizeof(prev));
    run = 1;
  }
  return rc;
}

int ads_slots_resume(struct ads_stream *s, const char *version) {
  const struct xds_class *cls = s->cls;
  const char *c = version + VERSION_LEN;
  size_t i = 0, g = 0, final = 0, ll = strlen(cls->slot_layout);

  if (strlen(version) < VERSION_LEN + ll + 2 || c[0] != ':' ||
      strncmp(c + 1, cls->slot_layout, ll) != 0 || c[1 + ll] != ':')
    return 0; /* not this layout: its slots are other names */
  if (s->slot_holds == NULL && (s->slot_holds = xds_map_new()) == NULL)
    return XDS_ENOMEM;
  c += ll + 2;
  while (*c != '\0') {
    const char *o;
    size_t n = 1, len = 1;
    uint32_t ident = 0;
    if (*c == '-')
      o = NULL;
    else if (*c == '?')
      o = SLOT_UNKNOWN;
    else if (*c == 'x')
      o = SLOT_OTHER;
    else {
      char hex[7];
      char *end;
      if (strlen(c) < 6)
        return 0;
      memcpy(hex, c, 6);
      hex[6] = '\0';
      ident = (uint32_t)strtoul(hex, &end, 16);
      if (*end != '\0' || ident == 0)
        return 0;
      len = 6;
      o = NULL; /* resolved per slot below */
    }
    c += len;
    if (*c == '*') {
      char *end;
      n = strtoul(c + 1, &end, 10);
      if (end == c + 1 || *end != '.' || n < 2 || n > cls->n_slots)
        return 0;
      c = end + 1;
    }
    for (; n > 0; n--, i++) {
      char *copy;
      void *old = NULL;
      if (i >= cls->n_slots)
        return 0;
      if (i > 0 && !same_listener(cls->slots[i - 1].name, cls->slots[i].name))
        g = i; /* the first slot of a listener */
      if (ident != 0)
        o = resolve(s, g, ident);
      if (o == SLOT_UNKNOWN)
        continue; /* not known: no entry */
      copy = xds_strdup(o != NULL ? o : "");
      if (copy == NULL ||
          xds_map_put(s->slot_holds, cls->slots[i].name, copy, &old) < 0) {
        xds_free(copy);
        return XDS_ENOMEM;
      }
      xds_free(old);
      final +=
          o == cls->slot_fqn[i] || (o != NULL && cls->slot_fqn[i] != NULL &&
                                    strcmp(o, cls->slot_fqn[i]) == 0);
    }
  }
  return i == cls->n_slots && final == cls->n_slots ? 1 : 0;
}
