/*
 * changes.c: diff, log and report for every store source (changes.h).
 */
#include "store/changes.h"

#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"

void changes_init(struct changes *c, const char *name) {
  memset(c, 0, sizeof(*c));
  snprintf(c->name, sizeof(c->name), "%s", name != NULL ? name : "");
}

void changes_cleanup(struct changes *c) {
  catalog_unref(c->last);
  c->last = NULL;
}

static uint64_t fnv(uint64_t h, const char *s) {
  for (; s != NULL && *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull; /* a separator */
}

/* Tells one report of problems from another. */
static uint64_t problems_sig(const struct problems *pb) {
  uint64_t h = 1469598103934665603ull;

  for (size_t i = 0; pb != NULL && i < problems_count(pb); i++) {
    const struct problem *p = problems_at(pb, i);

    h = fnv(h, p->severity == PROBLEM_ERROR ? "E" : "W");
    h = fnv(h, p->where);
    h = fnv(h, p->path);
    h = fnv(h, p->msg);
  }
  if (pb != NULL)
    h ^= (uint64_t)pb->n_errors * 31 + (uint64_t)pb->n_warnings +
         ((uint64_t)pb->dropped << 20);
  return h;
}

struct change_log {
  long counts[3]; /* by enum catalog_op */
  long n;
  int quiet; /* count only */
};

static int log_change(void *ctx, const struct catalog_change *ch) {
  struct change_log *cl = ctx;
  const struct src_loc *loc;

  cl->counts[ch->op]++;
  if (cl->quiet || cl->n++ >= CHANGES_MAX_LOGGED)
    return 0;
  if (ch->kind == CATALOG_EXT)
    loc = ch->new_ext != NULL ? &ch->new_ext->loc : &ch->old_ext->loc;
  else
    loc = ch->new_tmpl != NULL ? &ch->new_tmpl->loc : &ch->old_tmpl->loc;
  XDS_LOGI("store: %s %s %s (%s:%d:%d)", catalog_op_name(ch->op),
           catalog_change_kind_name(ch), ch->id, loc->source, loc->line,
           loc->column);
  return 0;
}

void changes_log_problems(const struct problems *pb) {
  struct xds_buf line;

  xds_buf_init(&line, PROBLEMS_MSG_MAX * 4);
  for (size_t i = 0; i < problems_count(pb); i++) {
    const struct problem *p = problems_at(pb, i);

    xds_buf_reset(&line);
    if (problem_format(p, &line) < 0 || line.data == NULL)
      continue;
    if (line.len > 0 && line.data[line.len - 1] == '\n')
      line.data[--line.len] = '\0';
    if (p->severity == PROBLEM_ERROR)
      XDS_LOGE("store: %s", line.data);
    else
      XDS_LOGW("store: %s", line.data);
  }
  if (pb->dropped > 0)
    XDS_LOGW("store: ... and %zu more problems", pb->dropped);
  xds_buf_cleanup(&line);
}

int changes_apply(struct changes *c, struct catalog *next,
                  const struct problems *pb, const char *why, unsigned flags,
                  double ms) {
  struct change_log cl;
  uint64_t sig = problems_sig(pb);
  int initial = (flags & CHANGES_INITIAL) || c->delivered == 0;
  long n;

  memset(&cl, 0, sizeof(cl));
  n = initial ? 0 : catalog_diff(c->last, next, NULL, NULL);
  if (!initial && n == 0 && sig == c->sig) {
    if (flags & CHANGES_SAY)
      XDS_LOGI("store %s reloaded (%s): nothing changed; the store holds %zu "
               "extensions, %zu listener templates (%.1f ms)",
               c->name, why, catalog_ext_count(next), catalog_tmpl_count(next),
               ms);
    else
      XDS_LOGD("store %s reloaded (%s): nothing changed", c->name, why);
    return 0;
  }
  cl.quiet = initial;
  catalog_diff(initial ? NULL : c->last, next, log_change, &cl);
  if (!initial && cl.n > CHANGES_MAX_LOGGED)
    XDS_LOGI("store: ... and %ld more changes", cl.n - CHANGES_MAX_LOGGED);
  if (pb != NULL)
    changes_log_problems(pb);
  if (initial)
    XDS_LOGI("store %s loaded (%s): %zu extensions, %zu listener templates; "
             "%zu errors, %zu warnings (%.1f ms)",
             c->name, why, catalog_ext_count(next), catalog_tmpl_count(next),
             pb != NULL ? pb->n_errors : 0, pb != NULL ? pb->n_warnings : 0,
             ms);
  else
    XDS_LOGI(
        "store %s reloaded (%s): %ld added, %ld updated, %ld removed; "
        "%zu errors (rejected), %zu warnings; the store holds %zu extensions, "
        "%zu listener templates (%.1f ms)",
        c->name, why, cl.counts[CATALOG_ADDED], cl.counts[CATALOG_UPDATED],
        cl.counts[CATALOG_REMOVED], pb != NULL ? pb->n_errors : 0,
        pb != NULL ? pb->n_warnings : 0, catalog_ext_count(next),
        catalog_tmpl_count(next), ms);
  catalog_unref(c->last);
  c->last = catalog_ref(next);
  c->sig = sig;
  c->delivered++;
  return 1;
}
