/*
 * fsdir.h: directories the program creates for the operator's flags
 * (--module-cache, render --dump-dir), with every missing parent.
 */
#ifndef XDS_BASE_FSDIR_H
#define XDS_BASE_FSDIR_H

#include <sys/types.h>

/* Longest path accepted (more is XDS_ETOOBIG). */
#define XDS_FSDIR_PATH_MAX 4096

/*
 * Creates path and each missing parent, like `mkdir -p`, each new one
 * with mode (the umask applies); existing directories are left as they
 * are. Returns 0, XDS_EINVAL (empty path), XDS_ETOOBIG (longer than
 * XDS_FSDIR_PATH_MAX), or XDS_EIO with errno from the mkdir(2) or
 * stat(2) that failed (a component that exists and is not a directory:
 * ENOTDIR). Any thread.
 */
int xds_mkdir_p(const char *path, mode_t mode);

#endif
