/*
 * server_proc.c: runs wasmxds as a child process on a free loopback port.
 *
 * Invariants: the child's stdout and stderr go to one temporary file that is
 * unlinked as soon as it is created, so no file survives the test whatever
 * way it ends; the parent reads it with pread() on its own descriptor and
 * never moves the shared file offset. The child is started with fork() +
 * execv() and only async-signal-safe calls in between (the test process may
 * already run gRPC threads), and asks the kernel for SIGKILL when its parent
 * dies. Every wait polls with a short sleep against a monotonic deadline.
 */
#include "server_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "tests/testkit.h"

/* Start attempts before giving up (a new port each time). */
#define START_ATTEMPTS 3

/* Sleep between polls of the port, the log and waitpid, in ms. */
#define POLL_MS 10

/* Largest log the helpers read; a debug log of one test stays far below. */
#define LOG_READ_MAX (64u * 1024 * 1024)

/* Longest argument list: fixed arguments plus extra_args. */
#define MAX_ARGS 64

struct server_proc {
  pid_t pid;   /* 0 once reaped */
  int wstatus; /* valid once reaped */
  int log_fd;  /* read side of the unlinked log file */
  size_t mark; /* log offset where searches start */
  int port;
  int admin_port;     /* 0 until read from the log */
  char target[32];    /* "127.0.0.1:PORT" */
  char **argv;        /* the command line, kept for server_proc_restart() */
  char cache_dir[40]; /* the server's module cache, removed at the end */
  int cache_made;
};

/* Asks the kernel for a free loopback port. The port is released before the
 * child binds it; server_proc_start() retries if another process wins. */
static int free_port(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd, rc = XDS_EIO;

  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return XDS_EIO;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    goto out;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
    goto out;
  *port = ntohs(sa.sin_port);
  rc = 0;
out:
  close(fd);
  return rc;
}

/* 1 if 127.0.0.1:port accepts a TCP connection now. */
static int port_accepts(int port) {
  struct sockaddr_in sa;
  int fd, ok;

  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

/* Reaps the child without blocking; returns 1 if it has exited. */
static int reap_nohang(struct server_proc *sp) {
  pid_t r;

  if (sp->pid == 0)
    return 1;
  r = waitpid(sp->pid, &sp->wstatus, WNOHANG);
  if (r == sp->pid) {
    sp->pid = 0;
    return 1;
  }
  return 0;
}

/* Forks and execs argv with the log as stdout/stderr. Between fork and exec
 * only async-signal-safe calls. */
static int spawn(struct server_proc *sp, char *const *argv) {
  pid_t parent = getpid(), pid;
  int devnull;

  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0)
    return XDS_EIO;
  pid = fork();
  if (pid < 0) {
    close(devnull);
    return XDS_EIO;
  }
  if (pid == 0) {
    sigset_t all;

    /* Die with the test process, even if it is killed by a timeout. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
      _exit(127);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    if (dup2(devnull, 0) < 0 || dup2(sp->log_fd, 1) < 0 ||
        dup2(sp->log_fd, 2) < 0)
      _exit(127);
    closefrom(3);
    execv(argv[0], argv);
    _exit(127);
  }
  close(devnull);
  sp->pid = pid;
  return 0;
}

/* Reads the log from offset `from` into a new NUL-terminated buffer. */
static int read_log(const struct server_proc *sp, size_t from, char **out,
                    size_t *out_len) {
  struct stat st;
  size_t size, len = 0;
  char *buf;
  ssize_t n;

  *out = NULL;
  *out_len = 0;
  if (fstat(sp->log_fd, &st) < 0)
    return XDS_EIO;
  size = (size_t)st.st_size;
  if (size > LOG_READ_MAX)
    size = LOG_READ_MAX;
  if (from > size)
    from = size;
  buf = malloc(size - from + 1);
  if (buf == NULL)
    return XDS_ENOMEM;
  while (len < size - from) {
    n = pread(sp->log_fd, buf + len, size - from - len, (off_t)(from + len));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  *out = buf;
  *out_len = len;
  return 0;
}

/* Frees a NULL-terminated argv whose strings were strdup'ed, except the
 * entry that points at sp->target. */
static void free_argv(struct server_proc *sp) {
  if (sp->argv == NULL)
    return;
  for (int i = 0; sp->argv[i] != NULL; i++)
    if (sp->argv[i] != sp->target)
      free(sp->argv[i]);
  free(sp->argv);
  sp->argv = NULL;
}

/* Appends a copy of arg to sp->argv (room for MAX_ARGS entries). */
static int push_arg(struct server_proc *sp, int *argc, const char *arg) {
  if (*argc >= MAX_ARGS - 1)
    return XDS_EINVAL;
  sp->argv[*argc] = strdup(arg);
  if (sp->argv[*argc] == NULL)
    return XDS_ENOMEM;
  (*argc)++;
  return 0;
}

/* Waits until the child's port accepts, the child exits (returns
 * XDS_ENOTFOUND) or the start timeout passes (XDS_EIO). */
static int wait_accepting(struct server_proc *sp) {
  long long deadline = tk_now_ms() + SERVER_PROC_START_TIMEOUT_MS;

  while (tk_now_ms() < deadline) {
    if (reap_nohang(sp))
      return XDS_ENOTFOUND;
    if (port_accepts(sp->port))
      return 0;
    tk_sleep_ms(POLL_MS);
  }
  return XDS_EIO;
}

/* Module cache directories made by this process: removed at exit too, as
 * a failing Check test exits without its teardown. */
#define MAX_DIRS 64
static char made_dirs[MAX_DIRS][40];
static int n_made_dirs;

static void remove_made_dirs(void) {
  for (int i = 0; i < n_made_dirs; i++) {
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%.39s'", made_dirs[i]);
    if (system(cmd) != 0)
      fprintf(stderr, "server_proc: cannot remove %s\n", made_dirs[i]);
  }
  n_made_dirs = 0;
}

static void remember_dir(const char *dir) {
  if (n_made_dirs == 0)
    atexit(remove_made_dirs);
  if (n_made_dirs < MAX_DIRS)
    snprintf(made_dirs[n_made_dirs++], sizeof(made_dirs[0]), "%s", dir);
}

int server_proc_start(const char *store_path, const char *const *extra_args,
                      struct server_proc **out) {
  const char *bin = getenv("WASMXDS_BIN");
  char tmpl[] = "/tmp/wasmxds-e2e-XXXXXX";
  struct server_proc *sp;
  int rc = XDS_EIO, argc = 0, has_admin = 0, has_cache = 0;

  *out = NULL;
  if (bin == NULL || *bin == '\0' || store_path == NULL) {
    fprintf(stderr, "server_proc: WASMXDS_BIN is not set\n");
    return XDS_EINVAL;
  }
  sp = calloc(1, sizeof(*sp));
  if (sp == NULL)
    return XDS_ENOMEM;
  snprintf(sp->cache_dir, sizeof(sp->cache_dir),
           "/tmp/wasmxds-e2e-mods-XXXXXX");
  sp->log_fd = mkstemp(tmpl);
  if (sp->log_fd < 0) {
    free(sp);
    return XDS_EIO;
  }
  unlink(tmpl);
  sp->argv = calloc(MAX_ARGS, sizeof(*sp->argv));
  if (sp->argv == NULL) {
    rc = XDS_ENOMEM;
    goto fail;
  }

  if ((rc = push_arg(sp, &argc, bin)) < 0 ||
      (rc = push_arg(sp, &argc, "--listen")) < 0)
    goto fail;
  sp->argv[argc++] = sp->target;
  if ((rc = push_arg(sp, &argc, "--store")) < 0 ||
      (rc = push_arg(sp, &argc, store_path)) < 0 ||
      (rc = push_arg(sp, &argc, "--log-level")) < 0 ||
      (rc = push_arg(sp, &argc, "debug")) < 0)
    goto fail;
  for (int i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
    if (strcmp(extra_args[i], "--admin-listen") == 0 ||
        strncmp(extra_args[i], "--admin-listen=", 15) == 0)
      has_admin = 1;
    if (strcmp(extra_args[i], "--module-cache") == 0 ||
        strcmp(extra_args[i], "--no-module-fetch") == 0)
      has_cache = 1;
    if ((rc = push_arg(sp, &argc, extra_args[i])) < 0)
      goto fail;
  }
  /* A port of the kernel's choosing, so that servers of tests running at
   * the same time never fight over the default admin port. */
  if (!has_admin && ((rc = push_arg(sp, &argc, "--admin-listen")) < 0 ||
                     (rc = push_arg(sp, &argc, "127.0.0.1:0")) < 0))
    goto fail;
  /* A module cache of the test's own, never the system's. */
  if (!has_cache) {
    if (mkdtemp(sp->cache_dir) == NULL) {
      rc = XDS_EIO;
      goto fail;
    }
    sp->cache_made = 1;
    remember_dir(sp->cache_dir);
    if ((rc = push_arg(sp, &argc, "--module-cache")) < 0 ||
        (rc = push_arg(sp, &argc, sp->cache_dir)) < 0)
      goto fail;
  }
  sp->argv[argc] = NULL;

  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    if (ftruncate(sp->log_fd, 0) < 0 || lseek(sp->log_fd, 0, SEEK_SET) < 0)
      goto fail;
    rc = free_port(&sp->port);
    if (rc < 0)
      goto fail;
    snprintf(sp->target, sizeof(sp->target), "127.0.0.1:%d", sp->port);
    rc = spawn(sp, sp->argv);
    if (rc < 0)
      goto fail;
    rc = wait_accepting(sp);
    if (rc == 0) {
      *out = sp;
      return 0;
    }
    if (rc == XDS_EIO) {
      /* Still running but never listened: no retry would help. */
      fprintf(stderr, "server_proc: %s did not accept on %s within %d ms\n",
              bin, sp->target, SERVER_PROC_START_TIMEOUT_MS);
      goto fail;
    }
    fprintf(stderr, "server_proc: %s exited early (status 0x%x), attempt %d\n",
            bin, sp->wstatus, attempt + 1);
  }
  rc = XDS_EIO;
fail:
  server_proc_dump_log(sp);
  server_proc_free(sp);
  return rc;
}

int server_proc_restart(struct server_proc *sp) {
  int rc;

  if (sp->pid != 0 && !reap_nohang(sp))
    return XDS_EINVAL;
  sp->admin_port = 0;
  sp->mark = server_proc_log_size(sp);
  /* The same port: it was ours, so only a stray process could take it. */
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    rc = spawn(sp, sp->argv);
    if (rc < 0)
      return rc;
    rc = wait_accepting(sp);
    if (rc == 0)
      return 0;
    if (rc == XDS_EIO) {
      server_proc_stop(sp, NULL);
      break;
    }
    tk_sleep_ms(100); /* exited early: the port may be in use a moment more */
  }
  fprintf(stderr, "server_proc: restart on %s failed\n", sp->target);
  server_proc_dump_log(sp);
  return XDS_EIO;
}

int server_proc_pid(const struct server_proc *sp) {
  return (int)sp->pid;
}

int server_proc_admin_port(struct server_proc *sp) {
  char *line = NULL;
  const char *p;
  size_t saved = sp->mark;

  if (sp->admin_port > 0)
    return sp->admin_port;
  /* main.c logs "admin HTTP on HOST:PORT (port N)" once bound. */
  sp->mark = 0;
  if (server_proc_wait_log_line(sp, "admin HTTP on ", 5000, &line) == 0 &&
      (p = strstr(line, "(port ")) != NULL)
    sp->admin_port = (int)strtol(p + 6, NULL, 10);
  sp->mark = saved;
  free(line);
  return sp->admin_port > 0 ? sp->admin_port : XDS_ENOTFOUND;
}

const char *server_proc_target(const struct server_proc *sp) {
  return sp->target;
}

int server_proc_port(const struct server_proc *sp) {
  return sp->port;
}

size_t server_proc_log_size(const struct server_proc *sp) {
  struct stat st;

  if (fstat(sp->log_fd, &st) < 0)
    return 0;
  return (size_t)st.st_size;
}

void server_proc_log_mark(struct server_proc *sp) {
  sp->mark = server_proc_log_size(sp);
}

size_t server_proc_log_get_mark(const struct server_proc *sp) {
  return sp->mark;
}

void server_proc_log_set_mark(struct server_proc *sp, size_t offset) {
  sp->mark = offset;
}

/* Finds substr in the complete lines of buf (up to the last newline) and
 * returns the start of the matching line, or NULL. */
static const char *find_line(const char *buf, size_t len, const char *substr,
                             size_t *line_len) {
  const char *end, *hit, *start, *nl;

  end = buf + len;
  while (end > buf && end[-1] != '\n')
    end--;
  hit = buf;
  while (hit < end) {
    hit = strstr(hit, substr);
    if (hit == NULL || hit >= end)
      return NULL;
    start = hit;
    while (start > buf && start[-1] != '\n')
      start--;
    nl = memchr(hit, '\n', (size_t)(end - hit));
    if (nl != NULL && hit + strlen(substr) <= nl) {
      *line_len = (size_t)(nl - start);
      return start;
    }
    hit++; /* the match spans a newline: keep looking */
  }
  return NULL;
}

int server_proc_wait_log_line(struct server_proc *sp, const char *substr,
                              int timeout_ms, char **line) {
  long long deadline = tk_now_ms() + timeout_ms;
  const char *hit;
  size_t len, line_len = 0;
  char *buf;
  int rc;

  if (line != NULL)
    *line = NULL;
  for (;;) {
    rc = read_log(sp, sp->mark, &buf, &len);
    if (rc < 0)
      return rc;
    hit = find_line(buf, len, substr, &line_len);
    if (hit != NULL) {
      if (line != NULL) {
        *line = strndup(hit, line_len);
        if (*line == NULL)
          rc = XDS_ENOMEM;
      }
      free(buf);
      return rc;
    }
    free(buf);
    if (tk_now_ms() >= deadline)
      return XDS_ENOTFOUND;
    tk_sleep_ms(POLL_MS);
  }
}

long server_proc_log_count(struct server_proc *sp, const char *substr) {
  const char *p, *hit;
  size_t len, line_len;
  char *buf;
  long n = 0;

  if (read_log(sp, sp->mark, &buf, &len) < 0)
    return XDS_EIO;
  for (p = buf;
       (hit = find_line(p, len - (size_t)(p - buf), substr, &line_len)) != NULL;
       p = hit + line_len + 1)
    n++;
  free(buf);
  return n;
}

int server_proc_wait_log(struct server_proc *sp, const char *substr,
                         int timeout_ms) {
  return server_proc_wait_log_line(sp, substr, timeout_ms, NULL);
}

void server_proc_dump_log(const struct server_proc *sp) {
  const char *p, *nl;
  size_t len;
  char *buf;

  if (read_log(sp, 0, &buf, &len) < 0)
    return;
  fprintf(stderr, "---- wasmxds log (%s) ----\n", sp->target);
  for (p = buf; p < buf + len; p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(buf + len - p));
    if (nl == NULL) {
      fprintf(stderr, "| %s\n", p);
      break;
    }
    fprintf(stderr, "| %.*s\n", (int)(nl - p), p);
  }
  fprintf(stderr, "---- end of log ----\n");
  free(buf);
}

int server_proc_alive(struct server_proc *sp) {
  return !reap_nohang(sp);
}

int server_proc_stop(struct server_proc *sp, int *wstatus) {
  long long deadline;
  int rc = XDS_EIO;

  if (sp->pid != 0 && !reap_nohang(sp)) {
    kill(sp->pid, SIGTERM);
    deadline = tk_now_ms() + SERVER_PROC_STOP_TIMEOUT_MS;
    while (tk_now_ms() < deadline) {
      if (reap_nohang(sp)) {
        rc = 0;
        break;
      }
      tk_sleep_ms(POLL_MS);
    }
    if (sp->pid != 0) {
      fprintf(stderr, "server_proc: no exit %d ms after SIGTERM; SIGKILL\n",
              SERVER_PROC_STOP_TIMEOUT_MS);
      kill(sp->pid, SIGKILL);
      /* SIGKILL cannot be caught: this wait ends. */
      while (waitpid(sp->pid, &sp->wstatus, 0) < 0 && errno == EINTR)
        ;
      sp->pid = 0;
    }
  }
  if (wstatus != NULL)
    *wstatus = sp->wstatus;
  return rc;
}

void server_proc_free(struct server_proc *sp) {
  if (sp == NULL)
    return;
  server_proc_stop(sp, NULL);
  if (sp->log_fd >= 0)
    close(sp->log_fd);
  if (sp->cache_made) {
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sp->cache_dir);
    if (system(cmd) != 0)
      fprintf(stderr, "server_proc: cannot remove %s\n", sp->cache_dir);
  }
  free_argv(sp);
  free(sp);
}
