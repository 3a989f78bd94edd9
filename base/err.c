/*
 * err.c: error codes and the detail record. No allocation, so it can report
 * an allocation failure.
 */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

int xds_err_set(struct xds_err *err, int code, const char *fmt, ...) {
  va_list ap;

  if (err == NULL)
    return code;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return code;
}

const char *xds_strerror(int code) {
  switch (code) {
  case XDS_OK:
    return "success";
  case XDS_ENOMEM:
    return "out of memory";
  case XDS_EINVAL:
    return "invalid value";
  case XDS_EPARSE:
    return "parse error";
  case XDS_EIO:
    return "input/output error";
  case XDS_ETOOBIG:
    return "limit exceeded";
  case XDS_ENOTFOUND:
    return "not found";
  case XDS_EPERM:
    return "permission denied";
  case XDS_ECONFLICT:
    return "conflict";
  default:
    return "unknown error";
  }
}
