/*
 * assert.h: XDS_ASSERT, the check of an internal invariant.
 *
 * In a build configured with --enable-debug (XDS_DEBUG in config.h) a
 * failed XDS_ASSERT(expr) logs "assertion failed: expr at file:line (func)"
 * through base/log and aborts. Otherwise it compiles to nothing and expr
 * is not evaluated (it is only type-checked, so a variable used only in
 * assertions is not reported unused). Never put an expression with a side
 * effect the program needs inside it.
 *
 * Use it for what can only be false when wasmxds itself is wrong (the
 * order of operations on a stream, a data structure's shape). Bad input,
 * a slow peer or a failed allocation are errors, not assertions.
 */
#ifndef XDS_BASE_ASSERT_H
#define XDS_BASE_ASSERT_H

#include "config.h"

/* Logs the failed assertion (at error level, whatever the log level) and
 * aborts. Any thread. Never returns. */
_Noreturn void xds_assert_fail(const char *expr, const char *file, int line,
                               const char *func);

#ifdef XDS_DEBUG
#define XDS_ASSERT(expr)                                                       \
  ((expr) ? (void)0 : xds_assert_fail(#expr, __FILE__, __LINE__, __func__))
#else
#define XDS_ASSERT(expr) ((void)sizeof(!(expr)))
#endif

#endif
