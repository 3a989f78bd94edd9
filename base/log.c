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

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 when the bytes
 * there are not one (overlong forms, surrogates and values past U+10FFFF
 * are not). */
static size_t utf8_len(const unsigned char *p) {
  unsigned c = p[0];
  size_t n;
  unsigned v;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    v = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0; /* also stops at the terminator */
    v = (v << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
      (n == 4 && (v < 0x10000 || v > 0x10ffff)))
    return 0;
  /* C1 controls and the Unicode line and paragraph separators. */
  if ((v >= 0x80 && v <= 0x9f) || v == 0x2028 || v == 0x2029)
    return 0;
  return n;
}

const char *xds_log_escape(const char *in, char *buf, size_t size) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)(in != NULL ? in : "(null)");
  size_t o = 0;

  if (size < 8) {
    if (size > 0)
      buf[0] = '\0';
    return buf;
  }
  while (*p != '\0') {
    char esc[4 * 4];
    size_t n = 0, len = utf8_len(p);

    if (len == 1 && *p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '"') {
      esc[n++] = (char)*p;
    } else if (len == 1 && (*p == '\\' || *p == '"')) {
      esc[n++] = '\\';
      esc[n++] = (char)*p;
    } else if (len == 1 && (*p == '\n' || *p == '\r' || *p == '\t')) {
      esc[n++] = '\\';
      esc[n++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
    } else if (len > 1) {
      memcpy(esc, p, len);
      n = len;
    } else {
      /* Not printable, or not valid UTF-8 (or a separator): its bytes. */
      size_t bytes = 1;
      if (len == 0 && *p >= 0xc2 && *p <= 0xf4) {
        /* A well-formed separator or C1 control: escape all its bytes. */
        bytes = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
        for (size_t i = 1; i < bytes; i++)
          if ((p[i] & 0xc0) != 0x80)
            bytes = 1;
      }
      for (size_t i = 0; i < bytes; i++) {
        esc[n++] = '\\';
        esc[n++] = 'x';
        esc[n++] = hex[p[i] >> 4];
        esc[n++] = hex[p[i] & 15];
      }
      len = bytes;
    }
    if (o + n + 4 > size) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(buf + o, esc, n);
    o += n;
    p += len;
  }
  buf[o] = '\0';
  return buf;
}
