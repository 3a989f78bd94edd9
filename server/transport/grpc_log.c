/*
 * grpc_log.c: gRPC core's own log lines through wasmxds' logger.
 *
 * gRPC writes "E1202 ... ssl_transport_security.cc:1446] Handshake failed
 * ..." to stderr itself, once per connection attempt: a plaintext client
 * retrying against a TLS port writes one such line per retry, in another
 * format than every other line. Here each line is escaped, prefixed
 * "grpc:" and written by base/log.h, and a line whose text was already
 * written within GRPC_LOG_WINDOW_S is counted instead; the count is
 * written with the next line of that text after the window ("... (and 41
 * more like it in the last 60 s)").
 *
 * gRPC calls the hook from any of its threads: the table is guarded by a
 * mutex and bounded (GRPC_LOG_KINDS texts; the oldest is reused).
 */
#include "server/transport/grpc_log.h"

#include <grpc/support/log.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

#define GRPC_LOG_WINDOW_S 60
#define GRPC_LOG_KINDS 32
/* Bytes of a message that identify its kind (what follows is usually
 * detail of the same reason). */
#define GRPC_LOG_KEY_MAX 160

struct log_kind {
  char key[GRPC_LOG_KEY_MAX];
  time_t since;     /* when it was last written; 0: slot unused */
  uint64_t dropped; /* lines of this kind not written since then */
};

static pthread_mutex_t kinds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_kind kinds[GRPC_LOG_KINDS];

static time_t now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1; /* never 0 */
}

/* Whether to write a line of this text now; *dropped is how many were not
 * written since the last one. */
static int should_write(const char *msg, uint64_t *dropped) {
  struct log_kind *k = NULL, *oldest = &kinds[0];
  time_t now = now_s();
  int write;

  *dropped = 0;
  pthread_mutex_lock(&kinds_lock);
  for (int i = 0; i < GRPC_LOG_KINDS; i++) {
    if (kinds[i].since != 0 &&
        strncmp(kinds[i].key, msg, GRPC_LOG_KEY_MAX - 1) == 0) {
      k = &kinds[i];
      break;
    }
    if (kinds[i].since < oldest->since)
      oldest = &kinds[i];
  }
  if (k == NULL) {
    k = oldest;
    snprintf(k->key, sizeof(k->key), "%s", msg);
    k->since = 0;
    k->dropped = 0;
  }
  write = k->since == 0 || now - k->since >= GRPC_LOG_WINDOW_S;
  if (write) {
    *dropped = k->dropped;
    k->dropped = 0;
    k->since = now;
  } else {
    k->dropped++;
  }
  pthread_mutex_unlock(&kinds_lock);
  return write;
}

static void on_grpc_log(gpr_log_func_args *args) {
  char text[XDS_LOG_ESC_MAX], more[96] = "";
  const char *file = args->file != NULL ? args->file : "?";
  const char *base = strrchr(file, '/');
  enum xds_log_level level;
  uint64_t dropped;

  if (args->message == NULL)
    return;
  switch (args->severity) {
  case GPR_LOG_SEVERITY_ERROR:
    /* What gRPC calls an error is, in a server, nearly always a peer's
     * doing (a failed handshake, a reset connection). */
    level = XDS_LOG_WARN;
    break;
  case GPR_LOG_SEVERITY_INFO:
    level = XDS_LOG_INFO;
    break;
  default:
    level = XDS_LOG_DEBUG;
    break;
  }
  if (level > xds_log_get_level())
    return;
  if (!should_write(args->message, &dropped))
    return;
  if (dropped > 0)
    snprintf(more, sizeof(more), " (and %llu more like it in the last %d s)",
             (unsigned long long)dropped, GRPC_LOG_WINDOW_S);
  xds_log(level, "grpc: %s [%s:%d]%s",
          xds_log_escape(args->message, text, sizeof(text)),
          base != NULL ? base + 1 : file, args->line, more);
}

void grpc_log_route(void) {
  gpr_set_log_function(on_grpc_log);
}
