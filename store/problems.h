/*
 * problems.h: a bounded list of what is wrong with a store load.
 *
 * Every error and warning of a load is collected, not only the first, each
 * with where it is ("file:line:column"), the field path inside the document
 * ("spec.vmConfig.env[1].name"; "" for the whole document) and the reason.
 * The list keeps at most `max` entries; later ones are counted but dropped,
 * so one broken 16 MiB file cannot use unbounded memory for its report.
 *
 * The caller owns struct problems (problems_init/problems_cleanup); the list
 * owns its entries. Not thread-safe: one load fills one list.
 */
#ifndef XDS_STORE_PROBLEMS_H
#define XDS_STORE_PROBLEMS_H

#include <stdarg.h>
#include <stddef.h>

#include "base/buf.h"

/* A sensible default for problems_init(): enough for a CI report of a large
 * store, small enough to show on the admin endpoint. */
#define PROBLEMS_DEFAULT_MAX 1000
/* Longest reason kept, including the terminator; longer ones are cut. */
#define PROBLEMS_MSG_MAX 512
/* Longest field path kept, including the terminator. */
#define PROBLEMS_PATH_MAX 256

enum problem_severity {
  PROBLEM_ERROR = 0,  /* the document (or resource) was rejected */
  PROBLEM_WARNING = 1 /* accepted, but the operator should act */
};

struct problem {
  enum problem_severity severity;
  char *source;   /* file path or etcd key */
  int line;       /* 1-based; 0 when unknown */
  int column;     /* 1-based; 0 when unknown */
  char *where;    /* "source:line:column" (or "source" when line is 0) */
  char *path;     /* field path, "" for the document itself */
  char *msg;      /* the reason, one English sentence without a period */
  char *resource; /* nullable: the resource the document claims (a
                     WasmExtension or WasmPlugin fqn, a WasmDeployment id,
                     a ListenerTemplate name) when known; set by
                     problems_set_resource, for status pages */
};

struct problems {
  struct problem *items;
  size_t n;
  size_t cap;
  size_t max;        /* most entries kept */
  size_t dropped;    /* entries over max, counted but not kept */
  size_t n_errors;   /* all errors, dropped ones included */
  size_t n_warnings; /* all warnings, dropped ones included */
};

/* Starts an empty list keeping at most max entries (more are counted,
 * not kept); problems_cleanup() frees every entry. */
void problems_init(struct problems *p, size_t max);
void problems_cleanup(struct problems *p);
/* Drops every entry and zeroes the counters, keeping max. */
void problems_reset(struct problems *p);

/*
 * Records one problem. source is copied (NULL is taken as ""); path is
 * copied (NULL is taken as ""); the reason is formatted from fmt. Returns 0
 * (also when the entry was dropped for being over max) or XDS_ENOMEM.
 */
int problems_add(struct problems *p, enum problem_severity sev,
                 const char *source, int line, int column, const char *path,
                 const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int problems_vadd(struct problems *p, enum problem_severity sev,
                  const char *source, int line, int column, const char *path,
                  const char *fmt, va_list ap);

/* Number of entries kept (at most max). */
size_t problems_count(const struct problems *p);
/* Entry i (borrowed), i < problems_count(). */
const struct problem *problems_at(const struct problems *p, size_t i);

/* Appends "error: WHERE: PATH: MSG\n" (PATH and its colon left out when
 * empty) to out. Returns 0, XDS_ENOMEM or XDS_ETOOBIG. */
int problem_format(const struct problem *pr, struct xds_buf *out);

/* Stable sort by source, line, column (then insertion order), so reports
 * read top to bottom per file. */
void problems_sort(struct problems *p);

/* Sets the resource of entries from..count-1 that have none to a copy of
 * id (the document they were found in claims it). Returns 0 or
 * XDS_ENOMEM. */
int problems_set_resource(struct problems *p, size_t from, const char *id);

/* Appends every entry of from to to, and adds what from dropped or
 * counted to to's counters. Returns 0 or XDS_ENOMEM (to keeps what was
 * appended before). */
int problems_append(struct problems *to, const struct problems *from);

#endif
