/*
 * ydoc.c: compose libyaml's event stream into ynode trees.
 *
 * Invariants: the nodes of a parsed ydoc live in its arena (one per ydoc:
 * a file of a hundred documents is about 100,000 nodes, and freeing them
 * one by one cost as much as composing them) and borrow the ydoc's
 * reference on its struct ysrc (the shared, immutable source name). Nodes
 * made by ynode_clone() and ydoc_take_root(), and the composer's private
 * anchor copies, are "heap" nodes: allocated one by one, each holding a
 * reference on its ysrc, so such a copy outlives the ydoc it came from. A
 * tree is either all arena or all heap nodes, never shares nodes (aliases
 * are copied), and ynode_free() is a no-op on arena nodes, so a heap tree is
 * freed by a plain recursive walk bounded by YDOC_MAX_DEPTH. Scalars are
 * typed once, when composed. libyaml's own allocations do not go through
 * xds_malloc (it has no allocator hook); everything this module keeps does.
 */
#include "store/ydoc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/buf.h"

struct ysrc {
  atomic_long refs;
  char name[];
};

struct ypair {
  struct ynode *key;
  struct ynode *value;
};

struct ynode {
  enum ynode_kind kind;
  enum ynode_style style;
  enum yscalar_type stype;
  int heap; /* allocated alone (see the invariants above), else in an arena */
  struct ysrc *src;
  int line;
  int column;
  char *tag;
  char *text; /* scalars (and "" for null) */
  size_t len;
  struct ypair *pairs;  /* mappings */
  struct ynode **items; /* sequences */
  size_t n;
};

struct ydoc_rec {
  struct ynode *root;
  struct ydoc_issue *issues;
  size_t n_issues;
};

struct ydoc {
  struct ysrc *src;
  struct xds_arena arena; /* every node of docs[] */
  struct ydoc_rec *docs;
  size_t n_docs;
  size_t cap_docs;
  int err_code;
  int err_line;
  int err_column;
  char err_msg[YDOC_MSG_MAX];
};

struct anchor {
  char *name;
  struct ynode *node; /* a private copy of the anchored node */
};

struct composer {
  yaml_parser_t parser;
  struct ydoc *doc;
  struct ydoc_rec *cur; /* document being composed */
  struct anchor *anchors;
  size_t n_anchors;
  size_t cap_anchors;
  long alias_nodes;
  /* The children of the collections being composed, innermost last (a
   * mapping's as key, value, key, ...): a complete collection gets them in
   * one arena array of the right size, not a growing one. */
  struct ynode **stack;
  size_t n_stack;
  size_t cap_stack;
};

static const char TAG_STR[] = "tag:yaml.org,2002:str";
static const char TAG_INT[] = "tag:yaml.org,2002:int";
static const char TAG_FLOAT[] = "tag:yaml.org,2002:float";
static const char TAG_BOOL[] = "tag:yaml.org,2002:bool";
static const char TAG_NULL[] = "tag:yaml.org,2002:null";
static const char TAG_MERGE[] = "tag:yaml.org,2002:merge";

/* ---- source names ---- */

static struct ysrc *ysrc_new(const char *name) {
  size_t len = strlen(name);
  struct ysrc *s = xds_malloc(sizeof(*s) + len + 1);

  if (s == NULL)
    return NULL;
  atomic_init(&s->refs, 1);
  memcpy(s->name, name, len + 1);
  return s;
}

static struct ysrc *ysrc_ref(struct ysrc *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  return s;
}

static void ysrc_unref(struct ysrc *s) {
  if (s != NULL &&
      atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    xds_free(s);
}

/* ---- YAML 1.2 core schema ---- */

/* 1 when the n > 0 bytes at s are all digits of base 8, 10 or 16. */
static int is_digits(const char *s, size_t n, int base) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    int ok = base == 8 ? ch >= '0' && ch <= '7'
             : base == 10
                 ? ch >= '0' && ch <= '9'
                 : (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                       (ch >= 'A' && ch <= 'F');

    if (!ok)
      return 0;
  }
  return 1;
}

static int text_is(const char *s, size_t n, const char *const *words) {
  for (; *words != NULL; words++)
    if (strlen(*words) == n && memcmp(*words, s, n) == 0)
      return 1;
  return 0;
}

static const char *const NULL_WORDS[] = {"~", "null", "Null", "NULL", NULL};
static const char *const BOOL_WORDS[] = {"true",  "True",  "TRUE", "false",
                                         "False", "FALSE", NULL};
static const char *const NAN_WORDS[] = {".nan", ".NaN", ".NAN", NULL};
static const char *const INF_WORDS[] = {".inf", ".Inf", ".INF", NULL};

static int is_int(const char *s, size_t n) {
  if (n > 2 && s[0] == '0' && s[1] == 'o')
    return is_digits(s + 2, n - 2, 8);
  if (n > 2 && s[0] == '0' && s[1] == 'x')
    return is_digits(s + 2, n - 2, 16);
  if (n > 0 && (s[0] == '-' || s[0] == '+'))
    s++, n--;
  return is_digits(s, n, 10);
}

static int is_float(const char *s, size_t n) {
  size_t i = 0, digits = 0;

  if (text_is(s, n, NAN_WORDS))
    return 1;
  if (n > 0 && (s[0] == '-' || s[0] == '+'))
    i++;
  if (text_is(s + i, n - i, INF_WORDS))
    return 1;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++, digits++;
  if (i < n && s[i] == '.') {
    size_t frac = 0;

    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++, frac++;
    /* "1." is a float; "." is not. */
    if (digits == 0 && frac == 0)
      return 0;
  } else if (digits == 0) {
    return 0;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    size_t exp = 0;

    i++;
    if (i < n && (s[i] == '-' || s[i] == '+'))
      i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++, exp++;
    if (exp == 0)
      return 0;
  }
  return i == n;
}

/* The first byte decides which rules can match (most plain scalars are
 * words that none can): a null starts with '~' or 'n'/'N', a boolean with
 * 't', 'T', 'f' or 'F', a number with a digit, a sign or '.'. */
static enum yscalar_type resolve_plain(const char *s, size_t n) {
  if (n == 0)
    return YSCALAR_NULL;
  switch (s[0]) {
  case '~':
  case 'n':
  case 'N':
    return text_is(s, n, NULL_WORDS) ? YSCALAR_NULL : YSCALAR_STR;
  case 't':
  case 'T':
  case 'f':
  case 'F':
    return text_is(s, n, BOOL_WORDS) ? YSCALAR_BOOL : YSCALAR_STR;
  case '+':
  case '-':
  case '.':
    break;
  default:
    if (s[0] < '0' || s[0] > '9')
      return YSCALAR_STR;
    break;
  }
  if (is_int(s, n))
    return YSCALAR_INT;
  if (is_float(s, n))
    return YSCALAR_FLOAT;
  return YSCALAR_STR;
}

static enum yscalar_type resolve(const char *s, size_t n, int plain,
                                 const char *tag) {
  if (tag == NULL)
    return plain ? resolve_plain(s, n) : YSCALAR_STR;
  if (strcmp(tag, "!") == 0 || strcmp(tag, TAG_STR) == 0)
    return YSCALAR_STR;
  if (strcmp(tag, TAG_NULL) == 0)
    return n == 0 || text_is(s, n, NULL_WORDS) ? YSCALAR_NULL : YSCALAR_INVALID;
  if (strcmp(tag, TAG_BOOL) == 0)
    return text_is(s, n, BOOL_WORDS) ? YSCALAR_BOOL : YSCALAR_INVALID;
  if (strcmp(tag, TAG_INT) == 0)
    return is_int(s, n) ? YSCALAR_INT : YSCALAR_INVALID;
  if (strcmp(tag, TAG_FLOAT) == 0)
    return is_int(s, n) || is_float(s, n) ? YSCALAR_FLOAT : YSCALAR_INVALID;
  return YSCALAR_INVALID;
}

/* ---- nodes ---- */

/* A new node from arena a, or a heap node (holding a reference on src)
 * when a is NULL; with text (scalars) of len bytes, the text is copied into
 * the same allocation, right after the node. */
static struct ynode *node_new_text(struct xds_arena *a, struct ysrc *src,
                                   enum ynode_kind kind, int line, int column,
                                   const char *text, size_t len) {
  size_t size = sizeof(struct ynode) + (text != NULL ? len + 1 : 0);
  struct ynode *n = a != NULL ? xds_arena_alloc(a, size) : xds_calloc(1, size);

  if (n == NULL)
    return NULL;
  if (text != NULL) {
    n->text = (char *)(n + 1);
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    n->len = len;
  }
  n->kind = kind;
  n->heap = a == NULL;
  n->src = a == NULL ? ysrc_ref(src) : src;
  n->line = line;
  n->column = column;
  n->stype = kind == YNODE_MAPPING || kind == YNODE_SEQUENCE
                 ? YSCALAR_NOT_SCALAR
                 : YSCALAR_NULL;
  return n;
}

/* A copy of s from arena a, or from the heap when a is NULL. */
static char *str_dup(struct xds_arena *a, const char *s) {
  return a != NULL ? xds_arena_strdup(a, s) : xds_strdup(s);
}

/* An array of n pointer-sized slots (n > 0) from a or the heap. */
static void *slots_new(struct xds_arena *a, size_t n, size_t size) {
  return a != NULL ? xds_arena_alloc(a, n * size) : xds_calloc(n, size);
}

void ynode_free(struct ynode *n) {
  if (n == NULL || !n->heap)
    return;
  for (size_t i = 0; i < n->n; i++) {
    if (n->kind == YNODE_MAPPING) {
      ynode_free(n->pairs[i].key);
      ynode_free(n->pairs[i].value);
    } else {
      ynode_free(n->items[i]);
    }
  }
  xds_free(n->pairs);
  xds_free(n->items);
  xds_free(n->tag);
  ysrc_unref(n->src);
  xds_free(n);
}

/* Copies n into arena a (NULL: heap nodes); *budget (nullable) counts down
 * the nodes still allowed. Returns NULL on allocation failure, or with
 * *budget < 0 when over it. */
static struct ynode *copy_tree(struct xds_arena *a, const struct ynode *n,
                               long *budget) {
  struct ynode *c;

  if (budget != NULL && --*budget < 0)
    return NULL;
  c = node_new_text(a, n->src, n->kind, n->line, n->column, n->text, n->len);
  if (c == NULL)
    return NULL;
  c->style = n->style;
  c->stype = n->stype;
  c->len = n->len;
  if (n->tag != NULL && (c->tag = str_dup(a, n->tag)) == NULL)
    goto fail;
  if (n->kind == YNODE_MAPPING && n->n > 0) {
    if ((c->pairs = slots_new(a, n->n, sizeof(*c->pairs))) == NULL)
      goto fail;
    for (size_t i = 0; i < n->n; i++, c->n++) {
      c->pairs[i].key = copy_tree(a, n->pairs[i].key, budget);
      if (c->pairs[i].key == NULL)
        goto fail;
      c->pairs[i].value = copy_tree(a, n->pairs[i].value, budget);
      if (c->pairs[i].value == NULL) {
        c->n++; /* free the key too */
        goto fail;
      }
    }
  } else if (n->kind == YNODE_SEQUENCE && n->n > 0) {
    if ((c->items = slots_new(a, n->n, sizeof(*c->items))) == NULL)
      goto fail;
    for (size_t i = 0; i < n->n; i++, c->n++)
      if ((c->items[i] = copy_tree(a, n->items[i], budget)) == NULL)
        goto fail;
  }
  return c;

fail:
  ynode_free(c);
  return NULL;
}

struct ynode *ynode_clone(const struct ynode *n) {
  return copy_tree(NULL, n, NULL);
}

/* Pushes a child of the collection being composed. */
static int stack_push(struct composer *c, struct ynode *n) {
  if (c->n_stack == c->cap_stack) {
    size_t cap = c->cap_stack ? c->cap_stack * 2 : 64;
    struct ynode **p = xds_realloc(c->stack, cap * sizeof(*p));

    if (p == NULL)
      return XDS_ENOMEM;
    c->stack = p;
    c->cap_stack = cap;
  }
  c->stack[c->n_stack++] = n;
  return 0;
}

/* ---- composer ---- */

static int fail_at(struct composer *c, int code, int line, int column,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail_at(struct composer *c, int code, int line, int column,
                   const char *fmt, ...) {
  va_list ap;

  if (c->doc->err_code != 0)
    return c->doc->err_code;
  c->doc->err_code = code;
  c->doc->err_line = line;
  c->doc->err_column = column;
  va_start(ap, fmt);
  vsnprintf(c->doc->err_msg, sizeof(c->doc->err_msg), fmt, ap);
  va_end(ap);
  return code;
}

static int add_issue(struct composer *c, const struct ynode *at,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_issue(struct composer *c, const struct ynode *at,
                     const char *fmt, ...) {
  struct ydoc_rec *r = c->cur;
  struct ydoc_issue *is;
  va_list ap;

  if (r->n_issues >= YDOC_MAX_ISSUES)
    return 0;
  if (r->issues == NULL) {
    r->issues = xds_calloc(YDOC_MAX_ISSUES, sizeof(*r->issues));
    if (r->issues == NULL)
      return XDS_ENOMEM;
  }
  is = &r->issues[r->n_issues++];
  is->line = at->line;
  is->column = at->column;
  va_start(ap, fmt);
  vsnprintf(is->msg, sizeof(is->msg), fmt, ap);
  va_end(ap);
  return 0;
}

static int next_event(struct composer *c, yaml_event_t *ev) {
  if (yaml_parser_parse(&c->parser, ev))
    return 0;
  if (c->parser.error == YAML_MEMORY_ERROR)
    return XDS_ENOMEM;
  {
    const yaml_mark_t *m = &c->parser.problem_mark;
    const char *problem = c->parser.problem ? c->parser.problem : "error";

    if (c->parser.context != NULL)
      return fail_at(c, XDS_EPARSE, (int)m->line + 1, (int)m->column + 1,
                     "%s %s", c->parser.context, problem);
    return fail_at(c, XDS_EPARSE, (int)m->line + 1, (int)m->column + 1, "%s",
                   problem);
  }
}

/* An anchor keeps its own copy of the anchored node: the composer may free
 * the original (a merged mapping, a rejected key) before an alias to it. */
static int remember_anchor(struct composer *c, const char *name,
                           const struct ynode *node) {
  struct anchor a;

  if (name == NULL)
    return 0;
  if (c->n_anchors == c->cap_anchors) {
    size_t cap = c->cap_anchors ? c->cap_anchors * 2 : 8;
    struct anchor *p = xds_realloc(c->anchors, cap * sizeof(*p));

    if (p == NULL)
      return XDS_ENOMEM;
    c->anchors = p;
    c->cap_anchors = cap;
  }
  a.name = xds_strdup(name);
  a.node = copy_tree(NULL, node, NULL);
  if (a.name == NULL || a.node == NULL) {
    xds_free(a.name);
    ynode_free(a.node);
    return XDS_ENOMEM;
  }
  c->anchors[c->n_anchors++] = a;
  return 0;
}

static void forget_anchors(struct composer *c) {
  for (size_t i = 0; i < c->n_anchors; i++) {
    xds_free(c->anchors[i].name);
    ynode_free(c->anchors[i].node);
  }
  c->n_anchors = 0;
}

static int node_depth(const struct ynode *n) {
  int d = 0;

  for (size_t i = 0; i < n->n; i++) {
    int k = n->kind == YNODE_MAPPING ? node_depth(n->pairs[i].value)
                                     : node_depth(n->items[i]);
    if (k > d)
      d = k;
  }
  return n->kind == YNODE_MAPPING || n->kind == YNODE_SEQUENCE ? d + 1 : d;
}

static int is_merge_key(const struct ynode *k) {
  if (k->kind != YNODE_SCALAR || k->len != 2 || memcmp(k->text, "<<", 2))
    return 0;
  return k->tag == NULL ? k->style == YNODE_PLAIN
                        : strcmp(k->tag, TAG_MERGE) == 0;
}

static int key_cmp(const void *a, const void *b) {
  const struct ypair *pa = *(const struct ypair *const *)a;
  const struct ypair *pb = *(const struct ypair *const *)b;
  size_t la = pa->key->len, lb = pb->key->len;
  int r = memcmp(pa->key->text, pb->key->text, la < lb ? la : lb);

  if (r != 0)
    return r;
  if (la != lb)
    return la < lb ? -1 : 1;
  /* Equal keys stay in document order so the later one is reported. */
  return pa < pb ? -1 : pa > pb;
}

static int key_eq(const struct ynode *a, const struct ynode *b) {
  return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

static int has_key(const struct ypair *pairs, size_t n,
                   const struct ynode *key) {
  for (size_t i = 0; i < n; i++)
    if (key_eq(pairs[i].key, key))
      return 1;
  return 0;
}

/* The growing list of a mapping's entries while merge keys are applied. */
struct pairv {
  struct ypair *v;
  size_t n;
  size_t cap;
};

static int pairv_push(struct pairv *pv, struct ynode *key,
                      struct ynode *value) {
  if (pv->n == pv->cap) {
    size_t cap = pv->cap ? pv->cap * 2 : 8;
    struct ypair *p = xds_realloc(pv->v, cap * sizeof(*p));

    if (p == NULL)
      return XDS_ENOMEM;
    pv->v = p;
    pv->cap = cap;
  }
  pv->v[pv->n].key = key;
  pv->v[pv->n].value = value;
  pv->n++;
  return 0;
}

/* Reports duplicate scalar keys in O(n log n): a 16 MiB mapping must not
 * take quadratic time. */
/* Reports every key equal to an earlier one, naming the nearest earlier
 * one. Small mappings (nearly all of them) are checked pair by pair, larger
 * ones through a sort; both report the same duplicates (the problems of a
 * file are sorted by position afterwards). */
static int check_duplicates(struct composer *c, struct ynode *map) {
  const struct ypair **v;
  int rc = 0;

  if (map->n < 2)
    return 0;
  if (map->n <= 16) {
    for (size_t i = 1; i < map->n && rc == 0; i++)
      for (size_t j = i; j-- > 0;)
        if (key_eq(map->pairs[j].key, map->pairs[i].key)) {
          const struct ynode *k = map->pairs[i].key, *f = map->pairs[j].key;

          rc = add_issue(c, k,
                         "duplicate key \"%s\" (first at line %d, column %d)",
                         k->text, f->line, f->column);
          break;
        }
    return rc;
  }
  v = xds_malloc(map->n * sizeof(*v));
  if (v == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < map->n; i++)
    v[i] = &map->pairs[i];
  qsort(v, map->n, sizeof(*v), key_cmp);
  for (size_t i = 1; i < map->n && rc == 0; i++)
    if (key_eq(v[i - 1]->key, v[i]->key))
      rc = add_issue(
          c, v[i]->key, "duplicate key \"%s\" (first at line %d, column %d)",
          v[i]->key->text, v[i - 1]->key->line, v[i - 1]->key->column);
  xds_free(v);
  return rc;
}

/* Applies `<<` merge keys: the entries of the merged mapping(s) not given
 * explicitly take the place of the `<<` entry. Earlier mappings of a merge
 * sequence win over later ones, as the YAML merge spec says. */
static int apply_merges(struct composer *c, struct ynode *map) {
  struct pairv merged = {0};
  int rc = 0, any = 0;

  for (size_t i = 0; i < map->n; i++)
    any |= is_merge_key(map->pairs[i].key);
  if (!any)
    return 0;
  for (size_t i = 0; i < map->n && rc == 0; i++) {
    struct ypair *p = &map->pairs[i];
    struct ynode *srcs[1], **list = srcs;
    size_t n_list = 1;

    if (!is_merge_key(p->key)) {
      rc = pairv_push(&merged, p->key, p->value);
      if (rc == 0)
        p->key = p->value = NULL;
      continue;
    }
    srcs[0] = p->value;
    if (p->value->kind == YNODE_SEQUENCE) {
      list = p->value->items;
      n_list = p->value->n;
    }
    for (size_t j = 0; j < n_list && rc == 0; j++) {
      struct ynode *m = list[j];

      if (m->kind != YNODE_MAPPING) {
        rc = add_issue(c, m,
                       "a merge key (<<) takes a mapping or a sequence "
                       "of mappings, not %s",
                       ynode_describe(m));
        continue;
      }
      for (size_t k = 0; k < m->n && rc == 0; k++) {
        struct ypair *q = &m->pairs[k];
        int explicit_key = 0;

        for (size_t e = 0; e < map->n; e++)
          if (map->pairs[e].key != NULL && !is_merge_key(map->pairs[e].key) &&
              key_eq(map->pairs[e].key, q->key))
            explicit_key = 1;
        if (explicit_key || has_key(merged.v, merged.n, q->key))
          continue;
        rc = pairv_push(&merged, q->key, q->value);
        if (rc == 0)
          q->key = q->value = NULL;
      }
    }
  }
  /* Adopt the merged list (what was not moved, the merge entries and the
   * shadowed keys they held, stays unused in the arena). */
  if (rc == 0 && merged.n > 0) {
    struct ypair *pairs =
        xds_arena_alloc(&c->doc->arena, merged.n * sizeof(*pairs));

    if (pairs == NULL) {
      rc = XDS_ENOMEM;
    } else {
      memcpy(pairs, merged.v, merged.n * sizeof(*pairs));
      map->pairs = pairs;
      map->n = merged.n;
    }
  } else if (rc == 0) {
    map->pairs = NULL;
    map->n = 0;
  }
  xds_free(merged.v);
  return rc;
}

static int compose(struct composer *c, yaml_event_t *ev, int depth,
                   struct ynode **out);

static int compose_alias(struct composer *c, yaml_event_t *ev, int depth,
                         struct ynode **out) {
  const char *name = (const char *)ev->data.alias.anchor;
  int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
  long budget = YDOC_MAX_ALIAS_NODES - c->alias_nodes;
  struct ynode *target = NULL, *copy;

  for (size_t i = c->n_anchors; i > 0; i--)
    if (strcmp(c->anchors[i - 1].name, name) == 0) {
      target = c->anchors[i - 1].node;
      break;
    }
  if (target == NULL)
    return fail_at(c, XDS_EPARSE, line, col, "unknown alias \"*%s\"", name);
  if (depth + node_depth(target) > YDOC_MAX_DEPTH)
    return fail_at(c, XDS_ETOOBIG, line, col,
                   "alias \"*%s\" nests deeper than %d levels", name,
                   YDOC_MAX_DEPTH);
  copy = copy_tree(&c->doc->arena, target, &budget);
  if (copy == NULL) {
    if (budget < 0)
      return fail_at(c, XDS_ETOOBIG, line, col,
                     "aliases expand to more than %d nodes (alias bomb?)",
                     YDOC_MAX_ALIAS_NODES);
    return XDS_ENOMEM;
  }
  c->alias_nodes = YDOC_MAX_ALIAS_NODES - budget;
  *out = copy;
  return 0;
}

static int compose_scalar(struct composer *c, yaml_event_t *ev,
                          struct ynode **out) {
  const char *tag = (const char *)ev->data.scalar.tag;
  const char *text = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  struct ynode *n;
  int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  int rc;

  /* libyaml reports an explicit "!" tag as the tag "!"; a plain scalar that
   * is implicitly typed has no tag. */
  n = node_new_text(&c->doc->arena, c->doc->src, YNODE_SCALAR,
                    (int)ev->start_mark.line + 1,
                    (int)ev->start_mark.column + 1, text, len);
  if (n == NULL)
    return XDS_ENOMEM;
  switch (ev->data.scalar.style) {
  case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    n->style = YNODE_SINGLE_QUOTED;
    break;
  case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
    n->style = YNODE_DOUBLE_QUOTED;
    break;
  case YAML_LITERAL_SCALAR_STYLE:
    n->style = YNODE_LITERAL;
    break;
  case YAML_FOLDED_SCALAR_STYLE:
    n->style = YNODE_FOLDED;
    break;
  default:
    n->style = YNODE_PLAIN;
    break;
  }
  if (tag != NULL && (n->tag = xds_arena_strdup(&c->doc->arena, tag)) == NULL)
    return XDS_ENOMEM;
  n->stype = resolve(text, len, plain, n->tag);
  if (n->stype == YSCALAR_NULL)
    n->kind = YNODE_NULL;
  rc = remember_anchor(c, (const char *)ev->data.scalar.anchor, n);
  if (rc < 0)
    return XDS_ENOMEM;
  *out = n;
  return 0;
}

/* Moves the children above base on the stack into one arena array of n
 * (pairs for a mapping). */
static int adopt_children(struct composer *c, struct ynode *n, size_t base) {
  size_t k = c->n_stack - base;
  struct ynode **from;

  c->n_stack = base;
  if (k == 0)
    return 0; /* (the stack may not exist yet) */
  from = c->stack + base;
  if (n->kind == YNODE_MAPPING) {
    n->pairs = xds_arena_alloc(&c->doc->arena, k / 2 * sizeof(*n->pairs));
    if (n->pairs == NULL)
      return XDS_ENOMEM;
    for (size_t i = 0; i < k / 2; i++) {
      n->pairs[i].key = from[2 * i];
      n->pairs[i].value = from[2 * i + 1];
    }
    n->n = k / 2;
  } else {
    n->items = xds_arena_alloc(&c->doc->arena, k * sizeof(*n->items));
    if (n->items == NULL)
      return XDS_ENOMEM;
    memcpy(n->items, from, k * sizeof(*n->items));
    n->n = k;
  }
  return 0;
}

static int compose_collection(struct composer *c, yaml_event_t *ev, int depth,
                              struct ynode **out) {
  int is_map = ev->type == YAML_MAPPING_START_EVENT;
  yaml_event_type_t end =
      is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
  const yaml_char_t *anchor =
      is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
  const yaml_char_t *tag =
      is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
  int flow = is_map ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                    : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
  struct ynode *n, *key = NULL, *value = NULL;
  char *anchor_name = NULL;
  size_t base = c->n_stack;
  int rc;

  if (depth >= YDOC_MAX_DEPTH)
    return fail_at(c, XDS_ETOOBIG, (int)ev->start_mark.line + 1,
                   (int)ev->start_mark.column + 1,
                   "collections nest deeper than %d levels", YDOC_MAX_DEPTH);
  n = node_new_text(
      &c->doc->arena, c->doc->src, is_map ? YNODE_MAPPING : YNODE_SEQUENCE,
      (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, NULL, 0);
  if (n == NULL)
    return XDS_ENOMEM;
  n->style = flow ? YNODE_FLOW : YNODE_BLOCK;
  rc = XDS_ENOMEM;
  if (tag != NULL &&
      (n->tag = xds_arena_strdup(&c->doc->arena, (const char *)tag)) == NULL)
    goto fail;
  /* The anchor is registered when the collection is complete, so an alias
   * to it from inside (a cycle) is an unknown alias. The name is copied:
   * the event that holds it is deleted before then. */
  if (anchor != NULL && (anchor_name = xds_arena_strdup(
                             &c->doc->arena, (const char *)anchor)) == NULL)
    goto fail;
  for (;;) {
    yaml_event_t child;

    rc = next_event(c, &child);
    if (rc < 0)
      goto fail;
    if (child.type == end) {
      yaml_event_delete(&child);
      break;
    }
    rc = compose(c, &child, depth + 1, is_map && key == NULL ? &key : &value);
    if (rc < 0)
      goto fail;
    if (!is_map) {
      rc = stack_push(c, value);
      if (rc < 0)
        goto fail;
      value = NULL;
    } else if (value != NULL) {
      if (key->kind == YNODE_MAPPING || key->kind == YNODE_SEQUENCE) {
        rc = add_issue(c, key, "a mapping key must be a scalar, not %s",
                       ynode_describe(key));
        if (rc < 0)
          goto fail;
        key = value = NULL;
        continue;
      }
      rc = stack_push(c, key);
      if (rc == 0)
        rc = stack_push(c, value);
      if (rc < 0)
        goto fail;
      key = value = NULL;
    }
  }
  rc = adopt_children(c, n, base);
  if (rc < 0)
    goto fail;
  if (is_map) {
    rc = apply_merges(c, n);
    if (rc == 0)
      rc = check_duplicates(c, n);
    if (rc < 0)
      goto fail;
  }
  if (anchor_name != NULL) {
    rc = remember_anchor(c, anchor_name, n);
    if (rc < 0)
      goto fail;
  }
  *out = n;
  return 0;

fail:
  /* The nodes are in the arena: they go with the ydoc. */
  c->n_stack = base;
  return rc;
}

/* Composes the node that starts with ev (consumed) into *out. */
static int compose(struct composer *c, yaml_event_t *ev, int depth,
                   struct ynode **out) {
  int rc;

  *out = NULL;
  switch (ev->type) {
  case YAML_SCALAR_EVENT:
    rc = compose_scalar(c, ev, out);
    break;
  case YAML_ALIAS_EVENT:
    rc = compose_alias(c, ev, depth, out);
    break;
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT:
    rc = compose_collection(c, ev, depth, out);
    break;
  default:
    rc = fail_at(c, XDS_EPARSE, (int)ev->start_mark.line + 1,
                 (int)ev->start_mark.column + 1, "unexpected YAML event %d",
                 (int)ev->type);
    break;
  }
  yaml_event_delete(ev);
  return rc;
}

static int push_doc(struct ydoc *d) {
  if (d->n_docs == d->cap_docs) {
    size_t cap = d->cap_docs ? d->cap_docs * 2 : 4;
    struct ydoc_rec *p = xds_realloc(d->docs, cap * sizeof(*p));

    if (p == NULL)
      return XDS_ENOMEM;
    d->docs = p;
    d->cap_docs = cap;
  }
  memset(&d->docs[d->n_docs], 0, sizeof(d->docs[0]));
  return 0;
}

static int compose_stream(struct composer *c) {
  yaml_event_t ev;
  int rc;

  for (;;) {
    struct ynode *root = NULL;
    yaml_event_t end;

    rc = next_event(c, &ev);
    if (rc < 0)
      return rc;
    if (ev.type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      return 0;
    }
    if (ev.type != YAML_DOCUMENT_START_EVENT) { /* STREAM_START */
      yaml_event_delete(&ev);
      continue;
    }
    yaml_event_delete(&ev);
    rc = push_doc(c->doc);
    if (rc < 0)
      return rc;
    c->cur = &c->doc->docs[c->doc->n_docs];
    rc = next_event(c, &ev);
    if (rc == 0)
      rc = compose(c, &ev, 0, &root);
    if (rc == 0)
      rc = next_event(c, &end);
    if (rc < 0) {
      xds_free(c->cur->issues);
      return rc;
    }
    yaml_event_delete(&end); /* DOCUMENT_END */
    c->cur->root = root;
    c->doc->n_docs++;
    forget_anchors(c); /* anchors do not cross documents */
  }
}

int ydoc_parse(const char *source, const char *text, size_t len,
               struct ydoc **out, struct xds_err *err) {
  struct composer c;
  struct ydoc *d;
  int rc;

  *out = NULL;
  d = xds_calloc(1, sizeof(*d));
  if (d == NULL)
    return XDS_ENOMEM;
  xds_arena_init(&d->arena, 0);
  d->src = ysrc_new(source);
  if (d->src == NULL) {
    xds_free(d);
    return XDS_ENOMEM;
  }
  if (len > YDOC_MAX_FILE_BYTES) {
    *out = d;
    rc = XDS_ETOOBIG;
    d->err_code = rc;
    d->err_line = d->err_column = 1;
    snprintf(d->err_msg, sizeof(d->err_msg),
             "larger than the limit of %u bytes", YDOC_MAX_FILE_BYTES);
    return xds_err_set(err, rc, "%s:1:1: %s", source, d->err_msg);
  }
  memset(&c, 0, sizeof(c));
  c.doc = d;
  if (!yaml_parser_initialize(&c.parser)) {
    ydoc_free(d);
    return XDS_ENOMEM;
  }
  yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
  rc = compose_stream(&c);
  yaml_parser_delete(&c.parser);
  forget_anchors(&c);
  xds_free(c.anchors);
  xds_free(c.stack);
  if (rc == XDS_ENOMEM) {
    ydoc_free(d);
    return rc;
  }
  *out = d;
  if (rc < 0)
    xds_err_set(err, rc, "%s:%d:%d: %s", source, d->err_line, d->err_column,
                d->err_msg);
  return rc;
}

int ydoc_read_file(const char *path, struct xds_buf *text,
                   struct xds_err *err) {
  struct stat st;
  char chunk[65536];
  int fd, rc = 0;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return xds_err_set(err, XDS_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
  xds_buf_init(text, YDOC_MAX_FILE_BYTES);
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    rc = xds_err_set(err, XDS_EIO, "%s: not a regular file", path);
    goto out;
  }
  /* Read through the bounded buffer: the file may grow while it is read,
   * so st_size is only a hint. */
  for (;;) {
    ssize_t got = read(fd, chunk, sizeof(chunk));

    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      rc = xds_err_set(err, XDS_EIO, "%s: read failed: %s", path,
                       strerror(errno));
      goto out;
    }
    if (got == 0)
      break;
    rc = xds_buf_append(text, chunk, (size_t)got);
    if (rc == XDS_ETOOBIG) {
      xds_err_set(err, rc, "%s: larger than the limit of %u bytes", path,
                  YDOC_MAX_FILE_BYTES);
      goto out;
    }
    if (rc < 0)
      goto out;
  }

out:
  if (rc < 0)
    xds_buf_cleanup(text);
  close(fd);
  return rc;
}

int ydoc_load_file(const char *path, struct ydoc **out, struct xds_err *err) {
  struct xds_buf text;
  int rc;

  *out = NULL;
  rc = ydoc_read_file(path, &text, err);
  if (rc < 0)
    return rc;
  rc = ydoc_parse(path, text.data != NULL ? text.data : "", text.len, out, err);
  xds_buf_cleanup(&text);
  return rc;
}

int ynode_equal(const struct ynode *a, const struct ynode *b) {
  if (a == b)
    return 1;
  if (a == NULL || b == NULL || a->kind != b->kind || a->stype != b->stype ||
      a->n != b->n)
    return 0;
  if ((a->tag == NULL) != (b->tag == NULL) ||
      (a->tag != NULL && strcmp(a->tag, b->tag) != 0))
    return 0;
  switch (a->kind) {
  case YNODE_NULL:
    return 1;
  case YNODE_SCALAR:
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
  case YNODE_MAPPING:
    for (size_t i = 0; i < a->n; i++)
      if (!ynode_equal(a->pairs[i].key, b->pairs[i].key) ||
          !ynode_equal(a->pairs[i].value, b->pairs[i].value))
        return 0;
    return 1;
  case YNODE_SEQUENCE:
    for (size_t i = 0; i < a->n; i++)
      if (!ynode_equal(a->items[i], b->items[i]))
        return 0;
    return 1;
  }
  return 0;
}

void ydoc_free(struct ydoc *d) {
  if (d == NULL)
    return;
  for (size_t i = 0; i < d->n_docs; i++)
    xds_free(d->docs[i].issues);
  xds_free(d->docs);
  xds_arena_cleanup(&d->arena);
  ysrc_unref(d->src);
  xds_free(d);
}

int ydoc_error(const struct ydoc *d, int *line, int *column, const char **msg) {
  if (line != NULL)
    *line = d->err_line;
  if (column != NULL)
    *column = d->err_column;
  if (msg != NULL)
    *msg = d->err_msg;
  return d->err_code;
}

size_t ydoc_count(const struct ydoc *d) {
  return d->n_docs;
}

const struct ynode *ydoc_root(const struct ydoc *d, size_t i) {
  return d->docs[i].root;
}

struct ynode *ydoc_take_root(struct ydoc *d, size_t i) {
  struct ynode *root = d->docs[i].root;
  struct ynode *null = node_new_text(&d->arena, d->src, YNODE_NULL, root->line,
                                     root->column, "", 0);
  struct ynode *copy;

  if (null == NULL)
    return NULL;
  /* The root's nodes are in d's arena: the caller gets a heap copy. */
  copy = ynode_clone(root);
  if (copy == NULL)
    return NULL;
  d->docs[i].root = null;
  return copy;
}

size_t ydoc_issue_count(const struct ydoc *d, size_t i) {
  return d->docs[i].n_issues;
}

const struct ydoc_issue *ydoc_issue(const struct ydoc *d, size_t i, size_t k) {
  return &d->docs[i].issues[k];
}

/* ---- accessors ---- */

enum ynode_kind ynode_kind(const struct ynode *n) {
  return n->kind;
}
enum ynode_style ynode_style(const struct ynode *n) {
  return n->style;
}
const char *ynode_tag(const struct ynode *n) {
  return n->tag;
}

const char *ynode_text(const struct ynode *n, size_t *len) {
  if (n->kind == YNODE_MAPPING || n->kind == YNODE_SEQUENCE) {
    if (len != NULL)
      *len = 0;
    return NULL;
  }
  if (len != NULL)
    *len = n->len;
  return n->text != NULL ? n->text : "";
}

enum yscalar_type ynode_scalar_type(const struct ynode *n) {
  return n->stype;
}

const char *ynode_describe(const struct ynode *n) {
  switch (n->kind) {
  case YNODE_MAPPING:
    return "a mapping";
  case YNODE_SEQUENCE:
    return "a sequence";
  case YNODE_NULL:
    return "null";
  case YNODE_SCALAR:
    break;
  }
  switch (n->stype) {
  case YSCALAR_BOOL:
    return "a boolean";
  case YSCALAR_INT:
    return "an integer";
  case YSCALAR_FLOAT:
    return "a number";
  case YSCALAR_STR:
    return "a string";
  default:
    return "a value of an unsupported tag";
  }
}

int ynode_int64(const struct ynode *n, int64_t *out) {
  const char *s = n->text;
  unsigned long long u;
  long long v;
  char *end;

  if (n->stype != YSCALAR_INT)
    return XDS_EINVAL;
  errno = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    u = strtoull(s + 2, &end, s[1] == 'x' ? 16 : 8);
    if (errno == ERANGE || u > (unsigned long long)INT64_MAX)
      return XDS_ETOOBIG;
    *out = (int64_t)u;
    return 0;
  }
  v = strtoll(s, &end, 10);
  if (errno == ERANGE)
    return XDS_ETOOBIG;
  *out = (int64_t)v;
  return 0;
}

int ynode_double(const struct ynode *n, double *out) {
  const char *s = n->text;
  int64_t i;
  int rc;

  if (n->stype == YSCALAR_INT) {
    rc = ynode_int64(n, &i);
    if (rc == 0) {
      *out = (double)i;
      return 0;
    }
    *out = strtod(s, NULL);
    return 0;
  }
  if (n->stype != YSCALAR_FLOAT)
    return XDS_EINVAL;
  if (text_is(s, n->len, NAN_WORDS)) {
    *out = NAN;
    return 0;
  }
  {
    int neg = s[0] == '-';
    const char *t = s + (s[0] == '-' || s[0] == '+');

    if (text_is(t, strlen(t), INF_WORDS)) {
      *out = neg ? -INFINITY : INFINITY;
      return 0;
    }
  }
  *out = strtod(s, NULL);
  return 0;
}

int ynode_bool(const struct ynode *n, int *out) {
  if (n->stype != YSCALAR_BOOL)
    return XDS_EINVAL;
  *out = n->text[0] == 't' || n->text[0] == 'T';
  return 0;
}

size_t ynode_len(const struct ynode *n) {
  return n->kind == YNODE_MAPPING || n->kind == YNODE_SEQUENCE ? n->n : 0;
}

const struct ynode *ynode_map_key(const struct ynode *n, size_t i) {
  return n->pairs[i].key;
}

const struct ynode *ynode_map_value(const struct ynode *n, size_t i) {
  return n->pairs[i].value;
}

const struct ynode *ynode_map_get(const struct ynode *n, const char *key) {
  size_t len = strlen(key);

  if (n->kind != YNODE_MAPPING)
    return NULL;
  for (size_t i = 0; i < n->n; i++) {
    const struct ynode *k = n->pairs[i].key;

    if (k->len == len && memcmp(k->text, key, len) == 0)
      return n->pairs[i].value;
  }
  return NULL;
}

const struct ynode *ynode_seq_item(const struct ynode *n, size_t i) {
  return n->items[i];
}

const char *ynode_source(const struct ynode *n) {
  return n->src->name;
}
int ynode_line(const struct ynode *n) {
  return n->line;
}
int ynode_column(const struct ynode *n) {
  return n->column;
}
