/*
 * notify.c: sd_notify's datagram, without libsystemd. See notify.h.
 */
#include "config.h"

#include "server/app/notify.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

/* Set by notify_open before any sender runs, read-only after. */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
/* A failure was logged: the others are not. */
static atomic_int notify_logged;

static void log_once(const char *what, int err) {
  if (atomic_exchange(&notify_logged, 1) == 0)
    XDS_LOGW("NOTIFY_SOCKET %s: %s: %s (the service manager is not told; "
             "serving goes on)",
             notify_addr.sun_path[0] != '\0' ? notify_addr.sun_path : "(@)",
             what, strerror(err));
}

int notify_open(void) {
  const char *path = getenv("NOTIFY_SOCKET");
  size_t len;

  if (path == NULL || path[0] == '\0')
    return 0;
  len = strlen(path);
  memset(&notify_addr, 0, sizeof(notify_addr));
  notify_addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || len > NOTIFY_PATH_MAX) {
    XDS_LOGW("NOTIFY_SOCKET %.*s: not an absolute path or @name of at most "
             "%d bytes; the service manager is not told",
             NOTIFY_PATH_MAX, path, NOTIFY_PATH_MAX);
    return 0;
  }
  memcpy(notify_addr.sun_path, path, len);
  notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  if (path[0] == '@')
    notify_addr.sun_path[0] = '\0'; /* the abstract namespace */
  else
    notify_addr_len++; /* the terminator of a path */
  notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (notify_fd < 0) {
    log_once("socket", errno);
    return 0;
  }
  return 1;
}

int notify_send(const char *state) {
  ssize_t n;
  int saved = errno;
  int rc = 0;

  if (notify_fd < 0)
    return 0;
  n = sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL,
             (const struct sockaddr *)&notify_addr, notify_addr_len);
  if (n < 0)
    rc = -errno;
  errno = saved;
  return rc;
}

void notify_report(const char *state, int rc) {
  if (rc < 0)
    log_once(state, -rc);
}

void notify_say(const char *state) {
  notify_report(state, notify_send(state));
}

void notify_close(void) {
  if (notify_fd >= 0)
    close(notify_fd);
  notify_fd = -1;
}
