/*
 * ads_sent.c: what a proxy has of one type, as a compact array of small
 * records (struct ads_res, 32 bytes) sorted by name, with the versions in
 * binary. It replaced a hash map of 80-byte records holding the versions
 * as text: about 1.7 KiB per proxy instead of 7.5 (README "Figures").
 *
 * Records added by ads_sent_put go to a short unsorted tail after the
 * sorted part (a lookup scans it); ads_sent_settle merges the tail into
 * the sorted part, and ads_sent_put does so itself when the tail is full,
 * so adding n names costs O(n) moves per ADS_SENT_TAIL of them and never
 * a sort of the whole array. The counts of records pending and rejected
 * are kept on every change of state, so a proxy's sync state is known in
 * constant time.
 */
#include "server/ads/ads_impl.h"

#include <string.h>

#include "base/alloc.h"
#include "base/intern.h"

/* Hex digits of a version, by value. */
static const char hexdig[] = "0123456789abcdef";

int ads_ver_parse(const char *text, uint64_t *out) {
  uint64_t v = 0;
  int form = 1;

  for (int i = 0; i < VERSION_LEN; i++) {
    char c = text[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else if (c == 's' && i == ADS_VER_S_AT)
      d = 0, form = 2; /* a slot's version (encode_slot_version) */
    else
      return 0; /* also the terminator of a shorter string */
    v = v << 4 | d;
  }
  if (text[VERSION_LEN] != '\0')
    return 0;
  *out = v;
  return form;
}

void ads_ver_format(uint64_t v, int form, char out[VERSION_LEN + 1]) {
  for (int i = VERSION_LEN - 1; i >= 0; i--) {
    out[i] = hexdig[v & 0xf];
    v >>= 4;
  }
  if (form == 2)
    out[ADS_VER_S_AT] = 's';
  out[VERSION_LEN] = '\0';
}

void ads_res_version_text(const struct ads_res *r, char out[VERSION_LEN + 1]) {
  if (r->flags & ADS_RES_HAS_VERSION)
    ads_ver_format(r->version, r->flags & ADS_RES_VER_S ? 2 : 1, out);
  else
    out[0] = '\0';
}

/* The old list's entry of name, or NULL (binary search by address). */
static struct ads_old_ack *old_find(const struct ads_sent *a,
                                    const char *name) {
  uint32_t lo = 0, hi = a->n_old;

  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (a->old[mid].name == name)
      return &a->old[mid];
    if ((uintptr_t)a->old[mid].name < (uintptr_t)name)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Adds name's old acknowledged version. Returns 0 or XDS_ENOMEM. */
static int old_add(struct ads_sent *a, const char *name, uint64_t acked,
                   int form) {
  struct ads_old_ack *v = xds_realloc(a->old, (a->n_old + 1) * sizeof(*v));
  uint32_t i = 0;

  if (v == NULL)
    return XDS_ENOMEM;
  a->old = v;
  while (i < a->n_old && (uintptr_t)v[i].name < (uintptr_t)name)
    i++;
  memmove(v + i + 1, v + i, (a->n_old - i) * sizeof(*v));
  v[i].name = name;
  v[i].acked = acked;
  v[i].form = (uint8_t)form;
  a->n_old++;
  return 0;
}

/* Drops name's entry from the old list (there is one). */
static void old_del(struct ads_sent *a, const char *name) {
  struct ads_old_ack *e = old_find(a, name);
  uint32_t i;

  XDS_ASSERT(e != NULL);
  if (e == NULL)
    return;
  i = (uint32_t)(e - a->old);
  memmove(a->old + i, a->old + i + 1, (a->n_old - i - 1) * sizeof(*e));
  if (--a->n_old == 0) {
    xds_free(a->old);
    a->old = NULL;
  }
}

void ads_res_acked_text(const struct ads_sent *a, const struct ads_res *r,
                        char out[VERSION_LEN + 1]) {
  const struct ads_old_ack *e;

  if (r->flags & ADS_RES_ACKED_SAME)
    ads_ver_format(r->version, r->flags & ADS_RES_VER_S ? 2 : 1, out);
  else if ((r->flags & ADS_RES_ACKED_OLD) && (e = old_find(a, r->name)))
    ads_ver_format(e->acked, e->form, out);
  else
    out[0] = '\0';
}

int ads_res_version_is(const struct ads_res *r, const char *version) {
  uint64_t v;
  int form = ads_ver_parse(version, &v);

  return (r->flags & ADS_RES_HAS_VERSION) && form != 0 && v == r->version &&
         (form == 2) == ((r->flags & ADS_RES_VER_S) != 0);
}

void ads_res_ack_version(struct ads_sent *a, struct ads_res *r) {
  if (r->flags & ADS_RES_ACKED_OLD)
    old_del(a, r->name);
  r->flags &= (uint8_t) ~(ADS_RES_ACKED_SAME | ADS_RES_ACKED_OLD);
  if (r->flags & ADS_RES_HAS_VERSION)
    r->flags |= ADS_RES_ACKED_SAME;
}

/* Adjusts the counts for a record of state st leaving (d -1) or joining
 * (d +1) the array. */
static void count_state(struct ads_sent *a, uint8_t st, int d) {
  if (st == ADS_RES_PENDING)
    a->n_pending += (uint32_t)d;
  else if (st == ADS_RES_NACKED)
    a->n_nacked += (uint32_t)d;
}

void ads_res_set_state(struct ads_sent *a, struct ads_res *r,
                       enum ads_res_state st) {
  count_state(a, r->state, -1);
  r->state = (uint8_t)st;
  count_state(a, r->state, +1);
}

void ads_sent_cleanup(struct ads_sent *a) {
  for (uint32_t i = 0; i < a->n; i++)
    xds_intern_release(a->v[i].name);
  xds_free(a->v);
  xds_free(a->old);
  memset(a, 0, sizeof(*a));
}

/* The sorted part's record named name, by binary search, or NULL. */
static struct ads_res *find_sorted(const struct ads_sent *a, const char *name) {
  uint32_t lo = 0, hi = a->sorted;

  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(a->v[mid].name, name);
    if (c == 0)
      return &a->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

struct ads_res *ads_sent_find(const struct ads_sent *a, const char *name) {
  struct ads_res *r = find_sorted(a, name);

  for (uint32_t i = a->sorted; r == NULL && i < a->n; i++)
    if (a->v[i].name == name || strcmp(a->v[i].name, name) == 0)
      r = &a->v[i];
  return r;
}

void ads_sent_settle(struct ads_sent *a) {
  struct ads_res tail[ADS_SENT_TAIL];
  uint32_t nt = a->n - a->sorted, k;
  int64_t i, j;

  if (nt == 0)
    goto shrink;
  XDS_ASSERT(nt <= ADS_SENT_TAIL);
  memcpy(tail, a->v + a->sorted, nt * sizeof(*tail));
  /* Insertion sort of the (short) tail. */
  for (uint32_t p = 1; p < nt; p++) {
    struct ads_res x = tail[p];
    uint32_t q = p;
    while (q > 0 && strcmp(tail[q - 1].name, x.name) > 0) {
      tail[q] = tail[q - 1];
      q--;
    }
    tail[q] = x;
  }
  /* Merge from the back: the tail's slots at the end are free now. */
  i = (int64_t)a->sorted - 1;
  j = (int64_t)nt - 1;
  k = a->n;
  while (j >= 0) {
    if (i >= 0 && strcmp(a->v[i].name, tail[j].name) > 0)
      a->v[--k] = a->v[i--];
    else
      a->v[--k] = tail[j--];
  }
  a->sorted = a->n;
shrink:
  /* Give back what a burst of additions left unused. */
  if (a->cap > a->n + a->n / 8 + 4) {
    struct ads_res *v = a->n > 0 ? xds_realloc(a->v, a->n * sizeof(*v)) : NULL;
    if (a->n == 0) {
      xds_free(a->v);
      a->v = NULL;
      a->cap = 0;
    } else if (v != NULL) {
      a->v = v;
      a->cap = a->n;
    }
  }
}

int ads_sent_put(struct ads_sent *a, const char *name, const char *version,
                 uint64_t nonce, struct ads_res **out) {
  struct ads_res *r = ads_sent_find(a, name);
  uint64_t v;
  int valid = ads_ver_parse(version, &v);

  /* A new version replaces the one acknowledged: keep that apart. */
  if (r != NULL && (r->flags & ADS_RES_ACKED_SAME) && valid &&
      (v != r->version || (valid == 2) != ((r->flags & ADS_RES_VER_S) != 0))) {
    if (old_add(a, r->name, r->version, r->flags & ADS_RES_VER_S ? 2 : 1) < 0)
      return XDS_ENOMEM;
    r->flags = (uint8_t)((r->flags & ~ADS_RES_ACKED_SAME) | ADS_RES_ACKED_OLD);
  }
  if (r == NULL) {
    const char *in;

    if (a->n - a->sorted >= ADS_SENT_TAIL)
      ads_sent_settle(a);
    if (a->n == a->cap) {
      uint32_t cap = a->cap < 4 ? 4 : a->cap + a->cap / 2;
      struct ads_res *nv = xds_realloc(a->v, cap * sizeof(*nv));
      if (nv == NULL)
        return XDS_ENOMEM;
      a->v = nv;
      a->cap = cap;
    }
    if ((in = xds_intern(name)) == NULL)
      return XDS_ENOMEM;
    r = &a->v[a->n++];
    memset(r, 0, sizeof(*r));
    r->name = in;
    r->state = ADS_RES_PENDING;
    count_state(a, r->state, +1);
  }
  /* Without a version the value stays: it may be the acknowledged one. */
  r->flags &= (uint8_t)~ADS_RES_HAS_VERSION;
  if (valid) {
    r->version = v;
    r->flags = (uint8_t)((r->flags & ~ADS_RES_VER_S) | ADS_RES_HAS_VERSION |
                         (valid == 2 ? ADS_RES_VER_S : 0));
  }
  r->nonce = (uint32_t)nonce;
  ads_res_set_state(a, r, ADS_RES_PENDING);
  if (out != NULL)
    *out = r;
  return 0;
}

/* Drops the record at index i of a settled or unsettled array. */
static void drop_at(struct ads_sent *a, uint32_t i) {
  if (a->v[i].flags & ADS_RES_ACKED_OLD)
    old_del(a, a->v[i].name);
  count_state(a, a->v[i].state, -1);
  xds_intern_release(a->v[i].name);
  memmove(a->v + i, a->v + i + 1, (a->n - i - 1) * sizeof(*a->v));
  a->n--;
  if (i < a->sorted)
    a->sorted--;
}

int ads_sent_del(struct ads_sent *a, const char *name) {
  struct ads_res *r = ads_sent_find(a, name);

  if (r == NULL)
    return 0;
  drop_at(a, (uint32_t)(r - a->v));
  return 1;
}

void ads_sent_filter(struct ads_sent *a,
                     int (*keep)(const void *ctx, const char *name),
                     const void *ctx,
                     void (*dropped)(void *dctx, const char *name),
                     void *dctx) {
  uint32_t w = 0, sorted = 0;

  for (uint32_t i = 0; i < a->n; i++) {
    struct ads_res *r = &a->v[i];
    if (keep(ctx, r->name)) {
      if (i < a->sorted)
        sorted++;
      a->v[w++] = *r;
      continue;
    }
    if (dropped != NULL)
      dropped(dctx, r->name);
    if (r->flags & ADS_RES_ACKED_OLD)
      old_del(a, r->name);
    count_state(a, r->state, -1);
    xds_intern_release(r->name);
  }
  a->n = w;
  a->sorted = sorted; /* kept records keep their order */
}

void ads_sent_check(const struct ads_sent *a) {
  uint32_t pending = 0, nacked = 0, old = 0;

  XDS_ASSERT(a->sorted <= a->n && a->n <= a->cap);
  for (uint32_t i = 1; i < a->n_old; i++)
    XDS_ASSERT((uintptr_t)a->old[i - 1].name < (uintptr_t)a->old[i].name);
  XDS_ASSERT(a->n - a->sorted <= ADS_SENT_TAIL);
  for (uint32_t i = 0; i < a->n; i++) {
    XDS_ASSERT(a->v[i].name != NULL);
    if (i > 0 && i < a->sorted)
      XDS_ASSERT(strcmp(a->v[i - 1].name, a->v[i].name) < 0);
    XDS_ASSERT(a->v[i].state <= ADS_RES_CLIENT);
    pending += a->v[i].state == ADS_RES_PENDING;
    nacked += a->v[i].state == ADS_RES_NACKED;
    if (a->v[i].flags & ADS_RES_ACKED_OLD) {
      old++;
      XDS_ASSERT(old_find(a, a->v[i].name) != NULL);
    }
    XDS_ASSERT((a->v[i].flags & (ADS_RES_ACKED_SAME | ADS_RES_ACKED_OLD)) !=
               (ADS_RES_ACKED_SAME | ADS_RES_ACKED_OLD));
  }
  XDS_ASSERT(pending == a->n_pending && nacked == a->n_nacked);
  XDS_ASSERT(old == a->n_old);
}
