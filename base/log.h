/*
 * log.h: levelled logging to stderr, one line per call, safe from any
 * thread. Libraries return errors; only the program's edges (main, the
 * serving loop, the store watcher) log them.
 */
#ifndef XDS_BASE_LOG_H
#define XDS_BASE_LOG_H

#include <stddef.h>

enum xds_log_level {
  XDS_LOG_ERROR = 0,
  XDS_LOG_WARN = 1,
  XDS_LOG_INFO = 2,
  XDS_LOG_DEBUG = 3
};

/* Sets the most verbose level printed (default XDS_LOG_INFO). */
void xds_log_set_level(enum xds_log_level level);
enum xds_log_level xds_log_get_level(void);

/* Parses "error", "warn", "info" or "debug"; returns 0 or XDS_EINVAL. */
int xds_log_parse_level(const char *name, enum xds_log_level *out);

/* How lines are written: text ("TIME LEVEL message") or one JSON object a
 * line: {"time", "level", "message"} plus, when the message names them
 * in the project's usual words, "node" ("node ID"), "tenant" ("tenant
 * FQN"), "resource" (an extension fqn organizations/O/extensions/N, or
 * "listener NAME"), "version" ("version V") and "error" (the proxy's
 * message of a NACK line), and, for gRPC core's own lines
 * (server/transport/grpc_log: "grpc: TEXT [file:line]"), "component":
 * "grpc" and "source": "file:line". */
enum xds_log_format { XDS_LOG_TEXT = 0, XDS_LOG_JSON = 1 };

/* Sets the format (default XDS_LOG_TEXT); any thread. */
void xds_log_set_format(enum xds_log_format format);
/* Parses "text" or "json"; returns 0 or XDS_EINVAL. */
int xds_log_parse_format(const char *name, enum xds_log_format *out);

/* Writes one line "TIME LEVEL message" (UTC, milliseconds; cut with "..."
 * when too long) to stderr when level is within the level set; any thread,
 * one write() per line. */
void xds_log(enum xds_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Longest escaped string xds_log_escape writes, terminator included, for
 * callers sizing their buffers. */
#define XDS_LOG_ESC_MAX 512

/*
 * Writes into buf (size bytes, at least 8) a copy of in that is safe to put
 * in a log line: printable ASCII and valid UTF-8 are kept; backslash and
 * double quote are escaped as \\ and \"; \n, \r and \t as themselves;
 * every other control character (C0, DEL, C1), every byte that is not part
 * of valid UTF-8, and the line and paragraph separators U+2028/U+2029 as
 * \xNN (their bytes). An output that would not fit ends in "...". in NULL
 * writes "(null)". Returns buf. Any thread; no allocation.
 * Use it for everything a peer sent (node ids, names, type URLs, NACK
 * messages) before logging it: a peer can then neither forge a line nor
 * write bytes a terminal would interpret.
 */
const char *xds_log_escape(const char *in, char *buf, size_t size);

/*
 * Length of the well-formed UTF-8 sequence at p (1 to 4 bytes; an ASCII
 * byte, NUL included, is 1), of at most avail bytes (at least 1), or 0:
 * overlong forms, surrogates, values past U+10FFFF and cut sequences are
 * not well-formed (RFC 3629). Stops at the first byte that does not
 * continue the sequence, so a NUL-terminated p may be read with avail 4.
 * Its code point goes into *cp (nullable). Any thread. Shared by the
 * escapes here and wasmxdsctl's terminal text.
 */
size_t xds_log_utf8_len(const unsigned char *p, size_t avail, unsigned *cp);

#define XDS_LOGE(...) xds_log(XDS_LOG_ERROR, __VA_ARGS__)
#define XDS_LOGW(...) xds_log(XDS_LOG_WARN, __VA_ARGS__)
#define XDS_LOGI(...) xds_log(XDS_LOG_INFO, __VA_ARGS__)
#define XDS_LOGD(...)                                                          \
  do {                                                                         \
    if (xds_log_get_level() >= XDS_LOG_DEBUG)                                  \
      xds_log(XDS_LOG_DEBUG, __VA_ARGS__);                                     \
  } while (0)

#endif
