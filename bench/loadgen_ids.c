/*
 * loadgen_ids.c: loadgen run, interned resource names, sorted id sets, and the
 * decode cache (each distinct resource decoded once).
 */
#include "loadgen_run.h"

/* Interned resource names: id <-> string, open addressing. */

char **g_names;
static uint32_t g_nnames;
static uint32_t *g_name_slots; /* id + 1, 0 = empty */
static uint32_t g_name_cap;    /* slots, a power of two */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;

  while (*s != '\0') {
    h ^= (unsigned char)*s++;
    h *= 1099511628211ull;
  }
  return h;
}

/* Returns the id of s, adding it; UINT32_MAX when the table is full. */
uint32_t intern(const char *s) {
  uint32_t mask = g_name_cap - 1, i = (uint32_t)hash_str(s) & mask;

  for (;;) {
    uint32_t v = g_name_slots[i];

    if (v == 0)
      break;
    if (strcmp(g_names[v - 1], s) == 0)
      return v - 1;
    i = (i + 1) & mask;
  }
  if (g_nnames >= MAX_NAMES || (g_names[g_nnames] = strdup(s)) == NULL)
    return UINT32_MAX;
  g_name_slots[i] = ++g_nnames;
  return g_nnames - 1;
}

int intern_init(void) {
  g_name_cap = 1u << 21; /* > 2 x MAX_NAMES */
  g_names = calloc(MAX_NAMES, sizeof(*g_names));
  g_name_slots = calloc(g_name_cap, sizeof(*g_name_slots));
  return g_names != NULL && g_name_slots != NULL ? 0 : -1;
}

void intern_free(void) {
  uint32_t i;

  for (i = 0; i < g_nnames; i++)
    free(g_names[i]);
  free(g_names);
  free(g_name_slots);
}

/* Sorted id sets */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return x < y ? -1 : x > y;
}

int idset_has(const struct idset *s, uint32_t id) {
  uint32_t lo = 0, hi = s->n;

  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;

    if (s->v[mid] == id)
      return 1;
    if (s->v[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

uint32_t idset_index(const struct idset *s, uint32_t id) {
  uint32_t lo = 0, hi = s->n;

  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;

    if (s->v[mid] == id)
      return mid;
    if (s->v[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return UINT32_MAX;
}

/* Sorts and removes duplicates in place. */
void idset_normalize(struct idset *s) {
  uint32_t i, j = 0;

  if (s->n == 0)
    return;
  qsort(s->v, s->n, sizeof(uint32_t), cmp_u32);
  for (i = 1; i < s->n; i++)
    if (s->v[i] != s->v[j])
      s->v[++j] = s->v[i];
  s->n = j + 1;
}

int idset_equal(const struct idset *a, const struct idset *b) {
  return a->n == b->n &&
         (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(uint32_t)) == 0);
}

/* Decode cache. Proxies of one class receive the very same resource bytes;
 * each distinct resource is decoded once and its result (the listener's
 * ECDS names, or the ECDS name) reused when the bytes are equal (compared
 * in full, not only hashed). --no-decode-cache decodes every copy. */

struct dc_entry *g_dc; /* DC_SLOTS, open addressing */
static size_t g_dc_bytes, g_dc_n;
int g_dc_off;
uint64_t g_dc_hits, g_dc_misses;

uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
  size_t i = 0;

  for (; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  for (; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  return h ? h : 1;
}

struct dc_entry *dc_find(int kind, const uint8_t *p, size_t n, uint64_t h) {
  uint32_t i = (uint32_t)h & (DC_SLOTS - 1), k;

  if (g_dc == NULL)
    return NULL;
  for (k = 0; k < DC_SLOTS; k++, i = (i + 1) & (DC_SLOTS - 1)) {
    struct dc_entry *e = &g_dc[i];

    if (e->hash == 0)
      return NULL;
    if (e->hash == h && e->len == n && e->kind == kind &&
        memcmp(e->bytes, p, n) == 0)
      return e;
  }
  return NULL;
}

void dc_put(int kind, const uint8_t *p, size_t n, uint64_t h, uint32_t name,
            const struct idset *ecds) {
  uint32_t i = (uint32_t)h & (DC_SLOTS - 1);
  struct dc_entry *e;

  if (g_dc == NULL || g_dc_n >= DC_SLOTS / 2 || g_dc_bytes + n > DC_MAX_BYTES)
    return;
  while (g_dc[i].hash != 0)
    i = (i + 1) & (DC_SLOTS - 1);
  e = &g_dc[i];
  e->bytes = malloc(n > 0 ? n : 1);
  if (e->bytes == NULL)
    return;
  if (ecds != NULL && ecds->n > 0) {
    e->ecds.v = malloc(ecds->n * sizeof(uint32_t));
    if (e->ecds.v == NULL) {
      free(e->bytes);
      return;
    }
    memcpy(e->ecds.v, ecds->v, ecds->n * sizeof(uint32_t));
    e->ecds.n = ecds->n;
  }
  memcpy(e->bytes, p, n);
  e->hash = h;
  e->len = n;
  e->kind = kind;
  e->name = name;
  g_dc_bytes += n;
  g_dc_n++;
}

void dc_free(void) {
  uint32_t i;

  if (g_dc == NULL)
    return;
  for (i = 0; i < DC_SLOTS; i++) {
    free(g_dc[i].bytes);
    free(g_dc[i].ecds.v);
  }
  free(g_dc);
  g_dc = NULL;
}
