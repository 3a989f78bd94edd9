/*
 * assert.c: the failure path of XDS_ASSERT (base/assert.h).
 */
#include "base/assert.h"

#include "base/log.h"

#include <stdlib.h>

void xds_assert_fail(const char *expr, const char *file, int line,
                     const char *func) {
  xds_log(XDS_LOG_ERROR, "assertion failed: %s at %s:%d (%s)", expr, file, line,
          func);
  abort();
}
