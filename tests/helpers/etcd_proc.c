/*
 * etcd_proc.c: a real etcd for the tests, and a TCP proxy to cut it off.
 *
 * etcd runs as a child process with its output in <dir>/etcd.log (kept
 * next to the data until the test ends, shown when it fails to start).
 * Readiness is `etcdctl endpoint health`, polled at most
 * ETCD_PROC_START_TRIES times.
 */
#include "tests/helpers/etcd_proc.h"
#include "tests/testkit.h"

#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
/* 100 ms apart: 20 s for etcd to answer. */
#define ETCD_PROC_START_TRIES 200
#define PROXY_MAX_PAIRS 64

int etcd_proc_available(void) {
  return access(ETCD_BIN, X_OK) == 0 && access(ETCDCTL_BIN, X_OK) == 0;
}

int etcd_free_port(void) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  ck_assert_int_ge(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

static void make_certs(struct etcd_proc *p) {
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  int rc;

  snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
  snprintf(p->cert, sizeof(p->cert), "%s/server.pem", p->dir);
  snprintf(p->key, sizeof(p->key), "%s/server.key", p->dir);
  snprintf(p->client_cert, sizeof(p->client_cert), "%s/client.pem", p->dir);
  snprintf(p->client_key, sizeof(p->client_key), "%s/client.key", p->dir);
  rc =
      tk_sh("cd %s && exec >>openssl.log 2>&1 && "
            "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
            "-subj /CN=wasmxds-test-ca && "
            "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
            "clientAuth\\n' > server.ext && "
            "openssl req %s -keyout server.key -out server.csr "
            "-subj /CN=127.0.0.1 && "
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
            "-CAcreateserial -out server.pem -days 2 -extfile server.ext && "
            "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
            "openssl req %s -keyout client.key -out client.csr "
            "-subj /CN=wasmxds-client && "
            "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
            "-CAcreateserial -out client.pem -days 2 -extfile client.ext",
            p->dir, ec, ec, ec);
  ck_assert_msg(rc == 0, "openssl failed; see %s/openssl.log", p->dir);
}

static void spawn(struct etcd_proc *p) {
  char data[300], log[300], listen[96], peer[96], cluster[128];
  char extra[512];
  char *argv[64];
  int n = 0;
  pid_t pid;

  snprintf(data, sizeof(data), "%s/data", p->dir);
  snprintf(log, sizeof(log), "%s/etcd.log", p->dir);
  snprintf(listen, sizeof(listen), "%s", p->url);
  snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", p->peer_port);
  snprintf(cluster, sizeof(cluster), "default=%s", peer);
  argv[n++] = ETCD_BIN;
  argv[n++] = "--name=default";
  argv[n++] = "--data-dir";
  argv[n++] = data;
  argv[n++] = "--listen-client-urls";
  argv[n++] = listen;
  argv[n++] = "--advertise-client-urls";
  argv[n++] = listen;
  argv[n++] = "--listen-peer-urls";
  argv[n++] = peer;
  argv[n++] = "--initial-advertise-peer-urls";
  argv[n++] = peer;
  argv[n++] = "--initial-cluster";
  argv[n++] = cluster;
  if (p->tls) {
    argv[n++] = "--cert-file";
    argv[n++] = p->cert;
    argv[n++] = "--key-file";
    argv[n++] = p->key;
    argv[n++] = "--trusted-ca-file";
    argv[n++] = p->ca;
    argv[n++] = "--client-cert-auth";
  }
  snprintf(extra, sizeof(extra), "%s", p->extra);
  for (char *tok = extra, *sp; tok != NULL && *tok != '\0' && n < 62;
       tok = sp) {
    sp = strchr(tok, ' ');
    if (sp != NULL)
      *sp++ = '\0';
    if (*tok != '\0')
      argv[n++] = tok;
  }
  argv[n] = NULL;
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setpgid(0, 0);
    /* A test that fails exits without its teardown: etcd goes with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(ETCD_BIN, argv);
    _exit(127);
  }
  p->pid = pid;
}

static void wait_ready(struct etcd_proc *p) {
  for (int i = 0; i < ETCD_PROC_START_TRIES; i++) {
    int st;

    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
      p->pid = 0;
      tk_sh("tail -20 %s/etcd.log >&2", p->dir);
      ck_abort_msg("etcd exited at start; see %s/etcd.log", p->dir);
    }
    if (etcd_proc_ctl(p, "--command-timeout=1s endpoint health") == 0)
      return;
    usleep(100 * 1000);
  }
  ck_abort_msg("etcd did not answer within %d s", ETCD_PROC_START_TRIES / 10);
}

void etcd_proc_start(struct etcd_proc *p, int tls, const char *extra) {
  memset(p, 0, sizeof(*p));
  snprintf(p->dir, sizeof(p->dir), "/tmp/wasmxds-etcd.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(p->dir));
  p->tls = tls;
  p->client_port = etcd_free_port();
  do
    p->peer_port = etcd_free_port();
  while (p->peer_port == p->client_port);
  snprintf(p->endpoint, sizeof(p->endpoint), "127.0.0.1:%d", p->client_port);
  snprintf(p->url, sizeof(p->url), "%s://%s", tls ? "https" : "http",
           p->endpoint);
  snprintf(p->extra, sizeof(p->extra), "%s", extra != NULL ? extra : "");
  if (tls)
    make_certs(p);
  spawn(p);
  wait_ready(p);
}

void etcd_proc_kill(struct etcd_proc *p) {
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
  }
}

void etcd_proc_restart(struct etcd_proc *p) {
  etcd_proc_kill(p);
  spawn(p);
  wait_ready(p);
}

void etcd_proc_stop(struct etcd_proc *p) {
  etcd_proc_kill(p);
  if (p->dir[0] != '\0' && strncmp(p->dir, "/tmp/wasmxds-etcd.", 18) == 0)
    tk_sh("rm -rf '%s'", p->dir);
  p->dir[0] = '\0';
}

/* "ETCDCTL_API=3 etcdctl --endpoints=... [TLS] [auth]" into out. */
static void ctl_prefix(struct etcd_proc *p, char *out, size_t n) {
  char tls[1200] = "";

  if (p->tls)
    snprintf(tls, sizeof(tls), "--cacert=%s --cert=%s --key=%s", p->ca,
             p->client_cert, p->client_key);
  snprintf(out, n, "ETCDCTL_API=3 " ETCDCTL_BIN " --endpoints=%s %s %s",
           p->endpoint, tls, p->ctl_auth);
}

int etcd_proc_ctl(struct etcd_proc *p, const char *fmt, ...) {
  char args[2048], prefix[1600];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  ctl_prefix(p, prefix, sizeof(prefix));
  return tk_sh("%s %s >>%s/etcdctl.log 2>&1", prefix, args, p->dir);
}

int etcd_proc_put(struct etcd_proc *p, const char *key, const char *value) {
  char file[320];
  FILE *f;

  snprintf(file, sizeof(file), "%s/value.tmp", p->dir);
  f = fopen(file, "w");
  ck_assert_ptr_nonnull(f);
  fputs(value, f);
  fclose(f);
  return etcd_proc_ctl(p, "put '%s' < %s", key, file);
}

long long etcd_proc_revision(struct etcd_proc *p) {
  char file[320], line[4096];
  long long rev = -1;
  FILE *f;

  char prefix[1600];

  snprintf(file, sizeof(file), "%s/rev.json", p->dir);
  ctl_prefix(p, prefix, sizeof(prefix));
  if (tk_sh("%s get / --prefix --keys-only --limit=1 -w json >%s 2>>%s/"
            "etcdctl.log",
            prefix, file, p->dir) != 0)
    return -1;
  f = fopen(file, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    char *r = strstr(line, "\"revision\":");

    if (r != NULL)
      rev = strtoll(r + 11, NULL, 10);
  }
  fclose(f);
  return rev;
}

/* ---- proxy ---- */

struct etcd_proxy {
  int listen_fd;
  int upstream_port;
  int wake[2];
  pthread_t thread;
  pthread_mutex_t mu;
  int blocked;
  int stop;
  int pairs[PROXY_MAX_PAIRS][2]; /* client, upstream; -1 when free */
};

static void close_pair(struct etcd_proxy *x, int i) {
  close(x->pairs[i][0]);
  close(x->pairs[i][1]);
  x->pairs[i][0] = x->pairs[i][1] = -1;
}

static int connect_upstream(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  if (fd < 0)
    return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void *proxy_run(void *arg) {
  struct etcd_proxy *x = arg;
  char buf[65536];

  for (;;) {
    struct pollfd pf[2 + 2 * PROXY_MAX_PAIRS];
    int idx[2 + 2 * PROXY_MAX_PAIRS];
    int n = 0, blocked;

    pthread_mutex_lock(&x->mu);
    if (x->stop) {
      pthread_mutex_unlock(&x->mu);
      break;
    }
    blocked = x->blocked;
    pthread_mutex_unlock(&x->mu);
    if (blocked)
      for (int i = 0; i < PROXY_MAX_PAIRS; i++)
        if (x->pairs[i][0] >= 0)
          close_pair(x, i);
    pf[n].fd = x->wake[0];
    pf[n++].events = POLLIN;
    pf[n].fd = x->listen_fd;
    pf[n++].events = POLLIN;
    for (int i = 0; i < PROXY_MAX_PAIRS; i++)
      for (int s = 0; s < 2 && x->pairs[i][0] >= 0; s++) {
        pf[n].fd = x->pairs[i][s];
        pf[n].events = POLLIN;
        idx[n++] = i * 2 + s;
      }
    if (poll(pf, (nfds_t)n, 1000) <= 0)
      continue;
    if (pf[0].revents & POLLIN) {
      char c[16];

      if (read(x->wake[0], c, sizeof(c)) < 0) {
        /* Nothing to do: the loop re-reads the flags. */
      }
    }
    if (pf[1].revents & POLLIN) {
      int cfd = accept(x->listen_fd, NULL, NULL), ufd, slot = -1;

      if (cfd >= 0) {
        for (int i = 0; i < PROXY_MAX_PAIRS && slot < 0; i++)
          if (x->pairs[i][0] < 0)
            slot = i;
        ufd = blocked || slot < 0 ? -1 : connect_upstream(x->upstream_port);
        if (ufd < 0) {
          close(cfd);
        } else {
          x->pairs[slot][0] = cfd;
          x->pairs[slot][1] = ufd;
        }
      }
    }
    for (int k = 2; k < n; k++) {
      int i = idx[k] / 2, s = idx[k] % 2;
      ssize_t r;

      if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)) || x->pairs[i][0] < 0)
        continue;
      r = read(x->pairs[i][s], buf, sizeof(buf));
      if (r <= 0 || write(x->pairs[i][1 - s], buf, (size_t)r) != r)
        close_pair(x, i);
    }
  }
  for (int i = 0; i < PROXY_MAX_PAIRS; i++)
    if (x->pairs[i][0] >= 0)
      close_pair(x, i);
  return NULL;
}

struct etcd_proxy *etcd_proxy_start(int upstream_port, int *port) {
  struct etcd_proxy *x = calloc(1, sizeof(*x));
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int one = 1;

  ck_assert_ptr_nonnull(x);
  x->upstream_port = upstream_port;
  for (int i = 0; i < PROXY_MAX_PAIRS; i++)
    x->pairs[i][0] = x->pairs[i][1] = -1;
  ck_assert_int_eq(pipe(x->wake), 0);
  pthread_mutex_init(&x->mu, NULL);
  x->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(x->listen_fd, 0);
  setsockopt(x->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(x->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(listen(x->listen_fd, 64), 0);
  getsockname(x->listen_fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  ck_assert_int_eq(pthread_create(&x->thread, NULL, proxy_run, x), 0);
  return x;
}

void etcd_proxy_block(struct etcd_proxy *x, int blocked) {
  pthread_mutex_lock(&x->mu);
  x->blocked = blocked;
  pthread_mutex_unlock(&x->mu);
  if (write(x->wake[1], "x", 1) != 1)
    ck_abort_msg("proxy wake-up failed");
  usleep(50 * 1000); /* let the thread act on it */
}

void etcd_proxy_stop(struct etcd_proxy *x) {
  if (x == NULL)
    return;
  pthread_mutex_lock(&x->mu);
  x->stop = 1;
  pthread_mutex_unlock(&x->mu);
  if (write(x->wake[1], "x", 1) != 1) {
    /* The poll timeout ends the loop anyway. */
  }
  pthread_join(x->thread, NULL);
  close(x->listen_fd);
  close(x->wake[0]);
  close(x->wake[1]);
  pthread_mutex_destroy(&x->mu);
  free(x);
}
