/*
 * build_info.h: what this binary was built from, for `-V` and for anyone
 * who reports a problem: the package version (configure.ac) and the
 * source commit, read at build time by base/build_commit.sh (`git
 * describe --always --dirty`, or "unknown" outside a git checkout, as in
 * a release tarball).
 *
 * Both return static strings; any thread.
 */
#ifndef XDS_BASE_BUILD_INFO_H
#define XDS_BASE_BUILD_INFO_H

/* "0.1.0". */
const char *xds_build_version(void);
/* "8f2c8d6", "8f2c8d6-dirty", "v0.1.0-3-g8f2c8d6" or "unknown". */
const char *xds_build_commit(void);

#endif
