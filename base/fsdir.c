/*
 * fsdir.c: mkdir -p (fsdir.h).
 */
#include "base/fsdir.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"

/* mkdir of one component; an existing directory is fine. */
static int mkdir_one(const char *path, mode_t mode) {
  struct stat st;

  if (mkdir(path, mode) == 0)
    return 0;
  if (errno != EEXIST)
    return XDS_EIO;
  if (stat(path, &st) < 0)
    return XDS_EIO;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return XDS_EIO;
  }
  return 0;
}

int xds_mkdir_p(const char *path, mode_t mode) {
  char buf[XDS_FSDIR_PATH_MAX];
  size_t n = path != NULL ? strlen(path) : 0;

  if (n == 0)
    return XDS_EINVAL;
  if (n >= sizeof(buf))
    return XDS_ETOOBIG;
  memcpy(buf, path, n + 1);
  while (n > 1 && buf[n - 1] == '/')
    buf[--n] = '\0';
  /* Each parent in turn, from the root down (a leading '/' is skipped). */
  for (size_t i = 1; i < n; i++) {
    if (buf[i] != '/' || buf[i - 1] == '/')
      continue;
    buf[i] = '\0';
    if (mkdir_one(buf, mode) < 0)
      return XDS_EIO;
    buf[i] = '/';
  }
  return mkdir_one(buf, mode);
}
