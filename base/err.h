/*
 * err.h: the one error convention of wasmxds.
 *
 * Functions that can fail return int: 0 on success or a negative XDS_E*
 * code. When the caller needs to know where and why, they also take a
 * nullable struct xds_err *, filled only at the failure site by xds_err_set()
 * (which does nothing when given NULL). The message names the source of the
 * bad input (file:line:column, etcd key, proxy id) and what is wrong.
 */
#ifndef XDS_BASE_ERR_H
#define XDS_BASE_ERR_H

#include <stddef.h>

enum xds_errc {
  XDS_OK = 0,
  XDS_ENOMEM = -1,    /* an allocation failed */
  XDS_EINVAL = -2,    /* a value breaks a rule (bad field, bad flag) */
  XDS_EPARSE = -3,    /* input could not be parsed (YAML, protobuf) */
  XDS_EIO = -4,       /* a system call or network operation failed */
  XDS_ETOOBIG = -5,   /* a configured limit would be exceeded */
  XDS_ENOTFOUND = -6, /* a named thing does not exist */
  XDS_EPERM = -7,     /* the caller is not allowed to do this */
  XDS_ECONFLICT = -8  /* a concurrent writer got there first */
};

/* Longest message kept in a struct xds_err, including the terminator. */
#define XDS_ERR_MSG_MAX 512

struct xds_err {
  int code;                  /* one of enum xds_errc */
  char msg[XDS_ERR_MSG_MAX]; /* "where: what", always NUL-terminated */
};

/*
 * Records code and a printf-style message into err, replacing what was there.
 * Does nothing when err is NULL. Returns code, so a failure site can write
 * `return xds_err_set(err, XDS_EINVAL, "...")`.
 */
int xds_err_set(struct xds_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Static English text for a code; never NULL. */
const char *xds_strerror(int code);

#endif
