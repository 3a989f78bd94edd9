/*
 * log.c: formats a whole line into a stack buffer and writes it with one
 * write(2), so lines from different threads never interleave.
 */
#include "base/log.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest line written; longer messages are cut and end in "...". */
#define LOG_LINE_MAX 2048

static atomic_int log_level = XDS_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void xds_log_set_level(enum xds_log_level level) {
  atomic_store(&log_level, (int)level);
}

enum xds_log_level xds_log_get_level(void) {
  return (enum xds_log_level)atomic_load(&log_level);
}

int xds_log_parse_level(const char *name, enum xds_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      *out = (enum xds_log_level)i;
      return 0;
    }
  }
  return XDS_EINVAL;
}

void xds_log(enum xds_log_level level, const char *fmt, ...) {
  char line[LOG_LINE_MAX];
  struct timespec ts;
  struct tm tm;
  size_t len;
  int n;
  va_list ap;

  if ((int)level > atomic_load(&log_level))
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
  len = n > 0 ? (size_t)n : 0;
  va_start(ap, fmt);
  n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(line) - len - 1) {
    len = sizeof(line) - 5;
    memcpy(line + len, "...", 3);
    len += 3;
  } else {
    len += (size_t)n;
  }
  line[len++] = '\n';
  /* A short write to stderr has no useful recovery. */
  if (write(STDERR_FILENO, line, len) < 0)
    return;
}
