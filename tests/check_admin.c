/*
 * check_admin.c: the admin HTTP server (server/admin/admin.h) against
 * hostile clients, in process on loopback: slow-header sockets
 * (slowloris) must not keep /healthz from answering, a request must be
 * complete within the header deadline however often bytes trickle in, one
 * client address gets at most max_per_ip connections, /debug-style paths
 * need the bearer token, and a slow route does not hold up other clients.
 *
 * Client addresses: Linux routes all of 127.0.0.0/8 to loopback, so the
 * tests bind their sockets to 127.0.0.1, .2, .3 to be different clients.
 */
#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "server/admin/admin.h"
#include "tests/testkit.h"

/* A TCP connection from src (a 127.x.y.z address) to 127.0.0.1:port. */
static int connect_from(const char *src, int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  ck_assert_int_ge(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, src, &sa.sin_addr);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                "connect: %s", strerror(errno));
  return fd;
}

static void send_all(int fd, const char *s) {
  size_t n = strlen(s);

  while (n > 0) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

    if (w <= 0)
      return; /* the server may have closed it: the caller checks */
    s += w;
    n -= (size_t)w;
  }
}

/* Reads until the peer closes or timeout_ms pass. Returns the bytes read
 * (into buf, NUL-terminated), or -1 on timeout. */
static long read_until_close(int fd, char *buf, size_t cap, int timeout_ms) {
  long long until = tk_now_ms() + timeout_ms;
  size_t n = 0;

  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    long long left = until - tk_now_ms();
    ssize_t r;

    if (left <= 0)
      return -1;
    if (poll(&pfd, 1, (int)left) <= 0)
      continue;
    r = recv(fd, buf + n, cap - 1 - n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) { /* closed (or reset) */
      buf[n] = '\0';
      return (long)n;
    }
    n += (size_t)r;
    if (n + 1 >= cap) {
      buf[n] = '\0';
      return (long)n;
    }
  }
}

/* One request from src; returns the status (0 when the connection closed
 * without an answer, -1 when nothing came within timeout_ms) and the
 * response in buf. */
static int request(const char *src, int port, const char *req, char *buf,
                   size_t cap, int timeout_ms) {
  int fd = connect_from(src, port), status = 0;
  long n;

  send_all(fd, req);
  n = read_until_close(fd, buf, cap, timeout_ms);
  close(fd);
  if (n < 0)
    return -1;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    return 0;
  return status;
}

static int get(const char *src, int port, const char *path,
               const char *extra_header, int timeout_ms) {
  char req[512], buf[4096];

  snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s%s\r\n", path,
           extra_header ? extra_header : "", extra_header ? "\r\n" : "");
  return request(src, port, req, buf, sizeof(buf), timeout_ms);
}

static int on_ok(void *arg, const struct admin_req *req,
                 struct admin_resp *resp) {
  (void)arg;
  resp->body = xds_asprintf("ok %s %zu\n", req->path, req->body_len);
  if (resp->body == NULL)
    return XDS_ENOMEM;
  resp->body_len = strlen(resp->body);
  return 0;
}

static int on_slow(void *arg, const struct admin_req *req,
                   struct admin_resp *resp) {
  const char *q = req->query(req, "who");

  (void)arg;
  tk_sleep_ms(1500);
  resp->body = xds_asprintf("slow %s\n", q ? q : "-");
  if (resp->body == NULL)
    return XDS_ENOMEM;
  resp->body_len = strlen(resp->body);
  return 0;
}

static struct admin *start(struct admin_config *cfg) {
  struct admin *a;
  struct xds_err err = {0, ""};

  cfg->listen = "127.0.0.1:0";
  ck_assert_msg(admin_new(cfg, &a, &err) == 0, "%s", err.msg);
  ck_assert_int_eq(admin_route(a, "/healthz", "GET,HEAD", on_ok, NULL), 0);
  ck_assert_int_eq(admin_route(a, "/echo", "POST", on_ok, NULL), 0);
  ck_assert_int_eq(admin_route(a, "/debug/fast", "GET", on_ok, NULL), 0);
  ck_assert_int_eq(admin_route_slow(a, "/debug/slow", "GET", on_slow, NULL), 0);
  ck_assert_int_eq(admin_protect(a, "/debug/"), 0);
  ck_assert_msg(admin_start(a, &err) == 0, "%s", err.msg);
  return a;
}

/* 300 sockets that send a header line now and then: /healthz from another
 * address still answers within 1 s (the connection limit is set below the
 * number of slow sockets: before the fix they took every slot). */
START_TEST(slowloris_healthz) {
  struct admin_config cfg;
  struct admin *a;
  int fds[300], port, code;
  long long t0;

  memset(&cfg, 0, sizeof(cfg));
  cfg.max_connections = 256;
  a = start(&cfg);
  port = admin_port(a);
  for (int i = 0; i < 300; i++) {
    fds[i] = connect_from("127.0.0.1", port);
    send_all(fds[i], "GET /healthz HTTP/1.1\r\n");
  }
  tk_sleep_ms(200);
  for (int i = 0; i < 300; i++)
    send_all(fds[i], "X-Slow: 1\r\n");
  tk_sleep_ms(100);
  t0 = tk_now_ms();
  code = get("127.0.0.2", port, "/healthz", NULL, 1000);
  ck_assert_msg(code == 200, "/healthz under slowloris: %d after %lld ms", code,
                tk_now_ms() - t0);
  for (int i = 0; i < 300; i++)
    close(fds[i]);
  admin_free(a);
}
END_TEST

/* A request whose header lines trickle in is closed at the deadline. */
START_TEST(header_deadline) {
  struct admin_config cfg;
  struct admin *a;
  int fd, port, closed = 0;
  long long t0, took;
  char buf[256];

  memset(&cfg, 0, sizeof(cfg));
  cfg.header_timeout_ms = 800;
  a = start(&cfg);
  port = admin_port(a);
  t0 = tk_now_ms();
  fd = connect_from("127.0.0.1", port);
  send_all(fd, "GET /healthz HTTP/1.1\r\n");
  while (tk_now_ms() - t0 < 3000) {
    struct pollfd pfd = {fd, POLLIN, 0};

    send_all(fd, "X-Trickle: 1\r\n");
    if (poll(&pfd, 1, 100) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0) {
      closed = 1;
      break;
    }
  }
  took = tk_now_ms() - t0;
  close(fd);
  ck_assert_msg(closed, "a trickling request was still open after %lld ms",
                took);
  ck_assert_msg(took >= 700 && took < 2000, "closed after %lld ms, want ~800",
                took);
  /* A complete request still works, and a body sent in two parts too. */
  ck_assert_int_eq(get("127.0.0.1", port, "/healthz", NULL, 2000), 200);
  fd = connect_from("127.0.0.1", port);
  send_all(fd,
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12");
  tk_sleep_ms(200);
  send_all(fd, "34567890");
  ck_assert_int_gt(read_until_close(fd, buf, sizeof(buf), 2000), 0);
  close(fd);
  ck_assert_msg(strstr(buf, "HTTP/1.1 200") == buf, "%s", buf);
  ck_assert_msg(strstr(buf, "ok /echo 10") != NULL, "%s", buf);
  ck_assert_msg(strcasestr(buf, "Connection: close") != NULL, "%s", buf);
  admin_free(a);
}
END_TEST

START_TEST(per_ip_cap) {
  struct admin_config cfg;
  struct admin *a;
  int fds[3], port, fd, code = 0;
  char buf[256];
  long n;

  memset(&cfg, 0, sizeof(cfg));
  cfg.max_per_ip = 3;
  a = start(&cfg);
  port = admin_port(a);
  for (int i = 0; i < 3; i++) {
    fds[i] = connect_from("127.0.0.1", port);
    send_all(fds[i], "GET /healthz HTTP/1.1\r\n");
  }
  tk_sleep_ms(200);
  /* The fourth from the same address is closed without an answer. */
  fd = connect_from("127.0.0.1", port);
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  n = read_until_close(fd, buf, sizeof(buf), 2000);
  close(fd);
  ck_assert_msg(n == 0, "fourth connection from one address: %ld bytes: %s", n,
                n > 0 ? buf : "");
  /* Another address is served. */
  ck_assert_int_eq(get("127.0.0.3", port, "/healthz", NULL, 2000), 200);
  for (int i = 0; i < 3; i++)
    close(fds[i]);
  /* Once they are closed, the address is served again. */
  for (int i = 0; i < 50 && code != 200; i++) {
    tk_sleep_ms(50);
    code = get("127.0.0.1", port, "/healthz", NULL, 2000);
  }
  ck_assert_int_eq(code, 200);
  admin_free(a);
}
END_TEST

START_TEST(bearer_token) {
  char dir[] = "/tmp/check_admin.XXXXXX", path[128];
  struct admin_config cfg;
  struct admin *a;
  struct xds_err err;
  FILE *f;
  int port;

  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/token", dir);
  f = fopen(path, "w");
  fputs("short\n", f);
  fclose(f);
  memset(&cfg, 0, sizeof(cfg));
  cfg.listen = "127.0.0.1:0";
  cfg.token_file = path;
  ck_assert_int_eq(admin_new(&cfg, &a, &err), XDS_EINVAL);
  ck_assert_msg(strstr(err.msg, path) != NULL, "%s", err.msg);
  f = fopen(path, "w");
  fputs("s3cret-s3cret-s3cret\n", f);
  fclose(f);
  memset(&cfg, 0, sizeof(cfg));
  cfg.token_file = path;
  a = start(&cfg);
  port = admin_port(a);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/fast", NULL, 2000), 401);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/fast",
                       "Authorization: Bearer wrong", 2000),
                   401);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/fast",
                       "Authorization: Bearer s3cret-s3cret-s3cre", 2000),
                   401);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/fast",
                       "Authorization: Bearer s3cret-s3cret-s3cret-", 2000),
                   401);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/fast",
                       "Authorization: Basic s3cret-s3cret-s3cret", 2000),
                   401);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/fast",
                       "Authorization: Bearer s3cret-s3cret-s3cret", 2000),
                   200);
  ck_assert_int_eq(get("127.0.0.1", port, "/debug/slow",
                       "Authorization: Bearer s3cret-s3cret-s3cret", 3000),
                   200);
  ck_assert_int_eq(get("127.0.0.1", port, "/healthz", NULL, 2000), 200);
  admin_free(a);
  unlink(path);
  rmdir(dir);
}
END_TEST

struct slow_call {
  int port;
  int code;
  char buf[1024];
};

static void *slow_thread(void *arg) {
  struct slow_call *c = arg;

  c->code = request("127.0.0.2", c->port,
                    "GET /debug/slow?who=me HTTP/1.1\r\nHost: t\r\n\r\n",
                    c->buf, sizeof(c->buf), 5000);
  return NULL;
}

/* A slow page (1.5 s) with a single admin thread: /healthz is not held
 * up, and the slow page still gets its own answer (query copied). */
START_TEST(slow_route_apart) {
  struct admin_config cfg;
  struct admin *a;
  struct slow_call c;
  pthread_t th;
  long long t0;
  int code;

  memset(&cfg, 0, sizeof(cfg));
  cfg.threads = 1;
  a = start(&cfg);
  memset(&c, 0, sizeof(c));
  c.port = admin_port(a);
  ck_assert_int_eq(pthread_create(&th, NULL, slow_thread, &c), 0);
  tk_sleep_ms(200);
  t0 = tk_now_ms();
  code = get("127.0.0.1", c.port, "/healthz", NULL, 1000);
  ck_assert_msg(code == 200 && tk_now_ms() - t0 < 500,
                "/healthz during a slow page: %d after %lld ms", code,
                tk_now_ms() - t0);
  pthread_join(th, NULL);
  ck_assert_int_eq(c.code, 200);
  ck_assert_msg(strstr(c.buf, "slow me") != NULL, "%s", c.buf);
  /* Stopping with a slow request in flight answers it and returns. */
  ck_assert_int_eq(pthread_create(&th, NULL, slow_thread, &c), 0);
  tk_sleep_ms(200);
  admin_free(a);
  pthread_join(th, NULL);
}
END_TEST

static Suite *admin_suite(void) {
  Suite *s = suite_create("admin");
  TCase *tc = tcase_create("hostile");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, slowloris_healthz);
  tcase_add_test(tc, header_deadline);
  tcase_add_test(tc, per_ip_cap);
  tcase_add_test(tc, bearer_token);
  tcase_add_test(tc, slow_route_apart);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(admin_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
