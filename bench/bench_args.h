/*
 * bench_args.h: numeric command-line arguments of the benchmarks, checked
 * (atoi() would take "10k" as 10 and "x" as 0 without a word).
 */
#ifndef WASMXDS_BENCH_ARGS_H
#define WASMXDS_BENCH_ARGS_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* The whole of s as a decimal long in [min, max]; otherwise prints
 * "PROG: WHAT wants ..." and exits with status 2 (argument parsing happens
 * before anything is started). */
static inline long bench_arg_long(const char *prog, const char *what,
                                  const char *s, long min, long max) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "%s: %s wants an integer in %ld..%ld, not '%s'\n", prog,
            what, min, max, s);
    exit(2);
  }
  return v;
}

/* bench_arg_long() for an int. */
static inline int bench_arg_int(const char *prog, const char *what,
                                const char *s) {
  return (int)bench_arg_long(prog, what, s, INT_MIN, INT_MAX);
}

#endif
