/*
 * problems.c: the bounded problem list. Entries are appended in the order
 * found; counters count everything, the array keeps at most max entries.
 */
#include "store/problems.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

void problems_init(struct problems *p, size_t max) {
  memset(p, 0, sizeof(*p));
  p->max = max;
}

static void problem_cleanup(struct problem *pr) {
  xds_free(pr->source);
  xds_free(pr->where);
  xds_free(pr->path);
  xds_free(pr->msg);
  xds_free(pr->resource);
}

void problems_reset(struct problems *p) {
  for (size_t i = 0; i < p->n; i++)
    problem_cleanup(&p->items[i]);
  p->n = 0;
  p->dropped = p->n_errors = p->n_warnings = 0;
}

void problems_cleanup(struct problems *p) {
  problems_reset(p);
  xds_free(p->items);
  p->items = NULL;
  p->cap = 0;
}

int problems_vadd(struct problems *p, enum problem_severity sev,
                  const char *source, int line, int column, const char *path,
                  const char *fmt, va_list ap) {
  struct problem pr;
  char msg[PROBLEMS_MSG_MAX];

  if (sev == PROBLEM_ERROR)
    p->n_errors++;
  else
    p->n_warnings++;
  if (p->n >= p->max) {
    p->dropped++;
    return 0;
  }
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct problem *items;

    if (cap > p->max)
      cap = p->max;
    items = xds_realloc(p->items, cap * sizeof(*items));
    if (items == NULL)
      return XDS_ENOMEM;
    p->items = items;
    p->cap = cap;
  }
  if (source == NULL)
    source = "";
  if (path == NULL)
    path = "";
  vsnprintf(msg, sizeof(msg), fmt, ap);
  memset(&pr, 0, sizeof(pr));
  pr.severity = sev;
  pr.line = line;
  pr.column = column;
  pr.source = xds_strdup(source);
  pr.path = xds_strndup(path, PROBLEMS_PATH_MAX - 1);
  pr.msg = xds_strdup(msg);
  if (line > 0)
    pr.where = xds_asprintf("%s:%d:%d", source, line, column);
  else
    pr.where = xds_strdup(source);
  if (pr.source == NULL || pr.path == NULL || pr.msg == NULL ||
      pr.where == NULL) {
    problem_cleanup(&pr);
    return XDS_ENOMEM;
  }
  p->items[p->n++] = pr;
  return 0;
}

int problems_add(struct problems *p, enum problem_severity sev,
                 const char *source, int line, int column, const char *path,
                 const char *fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = problems_vadd(p, sev, source, line, column, path, fmt, ap);
  va_end(ap);
  return rc;
}

size_t problems_count(const struct problems *p) {
  return p->n;
}

const struct problem *problems_at(const struct problems *p, size_t i) {
  return &p->items[i];
}

int problem_format(const struct problem *pr, struct xds_buf *out) {
  const char *sev = pr->severity == PROBLEM_ERROR ? "error" : "warning";

  if (pr->path[0] == '\0')
    return xds_buf_printf(out, "%s: %s: %s\n", sev, pr->where, pr->msg);
  return xds_buf_printf(out, "%s: %s: %s: %s\n", sev, pr->where, pr->path,
                        pr->msg);
}

/* Insertion sort keeps it stable without an index array; lists are bounded
 * by max (PROBLEMS_DEFAULT_MAX is small). */
static int problem_cmp(const struct problem *a, const struct problem *b) {
  int r = strcmp(a->source, b->source);

  if (r != 0)
    return r;
  if (a->line != b->line)
    return a->line < b->line ? -1 : 1;
  if (a->column != b->column)
    return a->column < b->column ? -1 : 1;
  return 0;
}

void problems_sort(struct problems *p) {
  for (size_t i = 1; i < p->n; i++) {
    struct problem cur = p->items[i];
    size_t j = i;

    while (j > 0 && problem_cmp(&p->items[j - 1], &cur) > 0) {
      p->items[j] = p->items[j - 1];
      j--;
    }
    p->items[j] = cur;
  }
}

int problems_append(struct problems *to, const struct problems *from) {
  size_t kept_errors = 0, kept_warnings = 0;

  for (size_t i = 0; i < problems_count(from); i++) {
    const struct problem *pr = problems_at(from, i);
    int rc;

    if (pr->severity == PROBLEM_ERROR)
      kept_errors++;
    else
      kept_warnings++;
    size_t n = to->n;

    rc = problems_add(to, pr->severity, pr->source, pr->line, pr->column,
                      pr->path, "%s", pr->msg);
    if (rc == 0 && pr->resource != NULL && to->n > n)
      rc = problems_set_resource(to, n, pr->resource);
    if (rc < 0)
      return rc;
  }
  /* What the file's own list dropped still counts. */
  to->dropped += from->dropped;
  to->n_errors += from->n_errors - kept_errors;
  to->n_warnings += from->n_warnings - kept_warnings;
  return 0;
}

int problems_set_resource(struct problems *p, size_t from, const char *id) {
  for (size_t i = from; i < p->n; i++) {
    if (p->items[i].resource != NULL)
      continue;
    p->items[i].resource = xds_strdup(id);
    if (p->items[i].resource == NULL)
      return XDS_ENOMEM;
  }
  return 0;
}
