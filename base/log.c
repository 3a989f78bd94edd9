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

static atomic_int log_format = XDS_LOG_TEXT;

void xds_log_set_format(enum xds_log_format format) {
  atomic_store(&log_format, (int)format);
}

int xds_log_parse_format(const char *name, enum xds_log_format *out) {
  if (strcmp(name, "text") == 0)
    *out = XDS_LOG_TEXT;
  else if (strcmp(name, "json") == 0)
    *out = XDS_LOG_JSON;
  else
    return XDS_EINVAL;
  return 0;
}

size_t xds_log_utf8_len(const unsigned char *p, size_t avail, unsigned *cp) {
  unsigned c = p[0], v;
  size_t n;

  if (c < 0x80) {
    n = 1;
    v = c;
  } else if (c >= 0xc2 && c <= 0xdf) {
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
  if (n > avail)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0; /* also stops at a terminator */
    v = (v << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
      (n == 4 && (v < 0x10000 || v > 0x10ffff)))
    return 0;
  if (cp != NULL)
    *cp = v;
  return n;
}

/* Appends s (n bytes) to out as the inside of a JSON string: quote,
 * backslash and control characters escaped, bytes that are not valid
 * UTF-8 as U+FFFD. Stops (returns 0) when out's size would be passed. */
static int json_put(char *out, size_t size, size_t *o, const char *s,
                    size_t n) {
  static const char hex[] = "0123456789abcdef";

  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    size_t k = 0, adv = 1;

    if (c == '"' || c == '\\') {
      esc[k++] = '\\';
      esc[k++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(esc, "\\u00", 4);
      k = 4;
      esc[k++] = hex[c >> 4];
      esc[k++] = hex[c & 15];
    } else if (c < 0x80) {
      esc[k++] = (char)c;
    } else {
      size_t len = xds_log_utf8_len((const unsigned char *)s + i, n - i, NULL);
      if (len > 0) {
        memcpy(esc, s + i, len);
        k = len;
        adv = len;
      } else {
        memcpy(esc, "\xef\xbf\xbd", 3); /* U+FFFD */
        k = 3;
      }
    }
    if (*o + k + 8 > size)
      return 0;
    memcpy(out + *o, esc, k);
    *o += k;
    i += adv;
  }
  return 1;
}

/* Words that follow "node", "tenant", "version" or "listener" in prose,
 * not names. */
static int is_prose(const char *w, size_t n) {
  static const char *const words[] = {
      "a",        "an",       "and",       "the",       "of",   "is",
      "id",       "ids",      "metadata",  "templates", "with", "without",
      "template", "mismatch", "disagrees", "names",     "that", "it"};

  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (strlen(words[i]) == n && strncmp(words[i], w, n) == 0)
      return 1;
  return 0;
}

/* The word after `key ` in msg (up to a space, colon, comma, semicolon or
 * parenthesis), or NULL; *n its length. key must start a word; the word
 * must not be prose (is_prose). */
static const char *word_after(const char *msg, const char *key, size_t *n) {
  size_t kl = strlen(key);

  for (const char *p = strstr(msg, key); p != NULL; p = strstr(p + 1, key)) {
    if ((p == msg || p[-1] == ' ' || p[-1] == '(') && p[kl] == ' ') {
      const char *w = p + kl + 1;
      *n = strcspn(w, " :,;()");
      if (*n > 0 && !is_prose(w, *n))
        return w;
    }
  }
  return NULL;
}

static void json_field(char *out, size_t size, size_t *o, const char *name,
                       const char *v, size_t n) {
  size_t start = *o;
  int len = snprintf(out + *o, size - *o, ",\"%s\":\"", name);

  if (len < 0 || (size_t)len >= size - *o)
    return;
  *o += (size_t)len;
  if (!json_put(out, size, o, v, n) || *o + 2 > size) {
    *o = start;
    return;
  }
  out[(*o)++] = '"';
}

/* The JSON line of msg (NUL-terminated) into out; returns its length
 * (newline included). */
static size_t json_line(char *out, size_t size, const char *when,
                        enum xds_log_level level, const char *msg) {
  size_t o = 0, n;
  const char *v;

  o = (size_t)snprintf(out, size, "{\"time\":\"%s\",\"level\":\"%s\"", when,
                       level_names[level]);
  /* gRPC core's lines (server/transport/grpc_log): "grpc: TEXT [file:line]". */
  if (strncmp(msg, "grpc: ", 6) == 0) {
    const char *br = strrchr(msg, '[');
    json_field(out, size, &o, "component", "grpc", 4);
    if (br != NULL && br > msg && br[-1] == ' ' && strchr(br, ']') != NULL)
      json_field(out, size, &o, "source", br + 1, strcspn(br + 1, "]"));
  }
  if ((v = word_after(msg, "node", &n)) != NULL)
    json_field(out, size, &o, "node", v, n);
  if ((v = word_after(msg, "tenant", &n)) != NULL)
    json_field(out, size, &o, "tenant", v, n);
  if ((v = strstr(msg, "organizations/")) != NULL &&
      (v == msg || v[-1] == ' ') &&
      strstr(v, "/extensions/") == v + strcspn(v + 14, "/") + 14) {
    n = strcspn(v, " :,;()");
    json_field(out, size, &o, "resource", v, n);
  } else if ((v = word_after(msg, "listener", &n)) != NULL) {
    json_field(out, size, &o, "resource", v, n);
  }
  if ((v = word_after(msg, "version", &n)) != NULL)
    json_field(out, size, &o, "version", v, n);
  if (strncmp(msg, "NACK ", 5) == 0 && (v = strstr(msg, "): ")) != NULL)
    json_field(out, size, &o, "error", v + 3, strlen(v + 3));
  /* The message last: cut (with "...") to what is left. */
  if (o + 16 < size) {
    size_t mark;
    memcpy(out + o, ",\"message\":\"", 12);
    o += 12;
    mark = o;
    if (!json_put(out, size - 8, &o, msg, strlen(msg))) {
      if (o < mark)
        o = mark;
      memcpy(out + o, "...", 3);
      o += 3;
    }
  }
  memcpy(out + o, "\"}\n", 3);
  return o + 3;
}

/* Writes msg as one JSON line. */
static void emit_json(enum xds_log_level level, const char *msg) {
  char line[LOG_LINE_MAX * 2], when[80];
  struct timespec ts;
  struct tm tm;
  size_t len;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, ts.tv_nsec / 1000000);
  len = json_line(line, sizeof(line), when, level, msg);
  /* A short write to stderr has no useful recovery. */
  if (write(STDERR_FILENO, line, len) < 0)
    return;
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
  if (atomic_load(&log_format) == XDS_LOG_JSON) {
    char msg[LOG_LINE_MAX];
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
      msg[0] = '\0';
    emit_json(level, msg);
    return;
  }
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

/* Length of the valid UTF-8 sequence at p (1 to 4) fit to log as it is,
 * or 0 when the bytes there are not one: not well-formed, a C1 control or
 * the Unicode line or paragraph separator. */
static size_t utf8_len(const unsigned char *p) {
  unsigned v;
  size_t n = xds_log_utf8_len(p, 4, &v);

  if (n > 1 && ((v >= 0x80 && v <= 0x9f) || v == 0x2028 || v == 0x2029))
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
