/*
 * build_info.c: the version and commit. base/build_commit.h is generated
 * in the build directory on every build and replaced only when the commit
 * changed (base/local.mk), so only this file is compiled again then.
 */
#include "config.h"

#include "base/build_info.h"

#include "base/build_commit.h"

const char *xds_build_version(void) {
  return PACKAGE_VERSION;
}

const char *xds_build_commit(void) {
  return XDS_BUILD_COMMIT;
}
