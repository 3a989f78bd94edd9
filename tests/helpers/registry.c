/*
 * registry.c: see registry.h.
 */
#include "tests/helpers/registry.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "tests/helpers/modtest.h"
#include "tests/testkit.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGISTRY_START_TIMEOUT_MS 15000

struct registry {
  pid_t pid;
  char dir[256];
  char root[300];
  char log[300];
  char host[64];
  char userpwd[128];
  const char *scheme; /* "http", or "https" (registry_start_tls) */
};

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  struct xds_buf *b = ud;

  if (b != NULL)
    xds_buf_append(b, p, s * n);
  return s * n;
}

struct hdrs {
  char location[1024];
  char digest[128];
};

static size_t on_header(char *p, size_t s, size_t n, void *ud) {
  struct hdrs *h = ud;
  size_t len = s * n;

  if (len > 10 && strncasecmp(p, "Location: ", 10) == 0)
    snprintf(h->location, sizeof(h->location), "%.*s", (int)(len - 12), p + 10);
  if (len > 23 && strncasecmp(p, "Docker-Content-Digest: ", 23) == 0)
    snprintf(h->digest, sizeof(h->digest), "%.*s", (int)(len - 25), p + 23);
  return len;
}

/* One request; returns the HTTP status or -1. */
static long req(struct registry *r, const char *method, const char *url,
                const char *ctype, const void *body, size_t len,
                struct hdrs *h) {
  CURL *c = curl_easy_init();
  struct curl_slist *hl = NULL;
  char ct[256];
  long status = -1;

  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
  /* The TLS registry's certificate is self-signed: the helper itself
   * does not check it (the code under test does). */
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  if (r->userpwd[0])
    curl_easy_setopt(c, CURLOPT_USERPWD, r->userpwd);
  if (ctype != NULL) {
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    hl = curl_slist_append(hl, ct);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  }
  if (body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return status;
}

static int run_htpasswd(const char *file, const char *user, const char *pass) {
  pid_t pid = fork();
  int st;

  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);

    dup2(null, 1);
    dup2(null, 2);
    execlp("htpasswd", "htpasswd", "-Bbc", file, user, pass, (char *)NULL);
    _exit(127);
  }
  if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
      WEXITSTATUS(st) != 0) {
    fprintf(stderr, "registry: htpasswd failed (install apache2-utils)\n");
    return -1;
  }
  return 0;
}

static struct registry *start(const char *user, const char *pass, int tls) {
  struct registry *r = xds_calloc(1, sizeof(*r));
  char cfg[512], yaml[2048], url[128];
  int port = mt_free_port();
  long long t0;
  FILE *f;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  mt_tmpdir(r->dir, sizeof(r->dir));
  snprintf(r->root, sizeof(r->root), "%s/storage", r->dir);
  snprintf(r->log, sizeof(r->log), "%s/registry.log", r->dir);
  snprintf(r->host, sizeof(r->host), "127.0.0.1:%d", port);
  snprintf(cfg, sizeof(cfg), "%s/config.yml", r->dir);
  snprintf(yaml, sizeof(yaml),
           "version: 0.1\n"
           "log: {level: info, accesslog: {disabled: false}}\n"
           "storage: {filesystem: {rootdirectory: %s}, delete: {enabled: "
           "true}}\n"
           "http: {addr: 127.0.0.1:%d, secret: test",
           r->root, port);
  r->scheme = tls ? "https" : "http";
  if (tls) {
    /* A self-signed certificate for 127.0.0.1, made by the openssl CLI. */
    if (tk_sh("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout "
              "key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 -addext "
              "subjectAltName=IP:127.0.0.1 >openssl.log 2>&1",
              r->dir) != 0) {
      fprintf(stderr, "registry: openssl failed (%s/openssl.log)\n", r->dir);
      goto fail;
    }
    snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml),
             ", tls: {certificate: %s/cert.pem, key: %s/key.pem}", r->dir,
             r->dir);
  }
  snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml), "}\n");
  if (user != NULL) {
    char htp[300];

    snprintf(htp, sizeof(htp), "%s/htpasswd", r->dir);
    if (run_htpasswd(htp, user, pass) < 0)
      goto fail;
    snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml),
             "auth: {htpasswd: {realm: test, path: %s}}\n", htp);
    snprintf(r->userpwd, sizeof(r->userpwd), "%s:%s", user, pass);
  }
  f = fopen(cfg, "w");
  if (f == NULL)
    goto fail;
  fputs(yaml, f);
  fclose(f);
  r->pid = fork();
  if (r->pid == 0) {
    int fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fd, 1);
    dup2(fd, 2);
    execl("/usr/bin/docker-registry", "docker-registry", "serve", cfg,
          (char *)NULL);
    _exit(127);
  }
  if (r->pid < 0)
    goto fail;
  snprintf(url, sizeof(url), "%s://%s/v2/", r->scheme, r->host);
  t0 = tk_now_ms();
  for (;;) {
    struct hdrs h = {"", ""};
    long st = req(r, "GET", url, NULL, NULL, 0, &h);

    if (st == 200 || st == 401)
      return r;
    if (tk_now_ms() - t0 > REGISTRY_START_TIMEOUT_MS) {
      fprintf(stderr, "registry: not ready after %d ms (log %s)\n",
              REGISTRY_START_TIMEOUT_MS, r->log);
      goto fail;
    }
    usleep(50000);
  }
fail:
  registry_stop(r);
  return NULL;
}

struct registry *registry_start(const char *user, const char *pass) {
  return start(user, pass, 0);
}

struct registry *registry_start_tls(const char *user, const char *pass) {
  return start(user, pass, 1);
}

void registry_stop(struct registry *r) {
  if (r == NULL)
    return;
  if (r->pid > 0) {
    int st;

    kill(r->pid, SIGKILL);
    waitpid(r->pid, &st, 0);
  }
  if (getenv("WASMXDS_KEEP_TMP") == NULL)
    mt_rmrf(r->dir);
  xds_free(r);
}

const char *registry_host(const struct registry *r) {
  return r->host;
}
const char *registry_root(const struct registry *r) {
  return r->root;
}

int registry_push_blob(struct registry *r, const char *repo, const void *data,
                       size_t len, char *hex) {
  char url[2048];
  struct hdrs h = {"", ""};
  long st;

  mt_sha(data, len, hex);
  snprintf(url, sizeof(url), "%s://%s/v2/%s/blobs/uploads/", r->scheme, r->host,
           repo);
  st = req(r, "POST", url, NULL, NULL, 0, &h);
  if (st != 202 || h.location[0] == '\0') {
    fprintf(stderr, "registry: upload start: HTTP %ld\n", st);
    return -1;
  }
  if (strncmp(h.location, "http", 4) == 0)
    snprintf(url, sizeof(url), "%s%cdigest=sha256:%s", h.location,
             strchr(h.location, '?') ? '&' : '?', hex);
  else
    snprintf(url, sizeof(url), "%s://%s%s%cdigest=sha256:%s", r->scheme,
             r->host, h.location, strchr(h.location, '?') ? '&' : '?', hex);
  st = req(r, "PUT", url, "application/octet-stream", data, len, &h);
  if (st != 201) {
    fprintf(stderr, "registry: upload: HTTP %ld\n", st);
    return -1;
  }
  return 0;
}

int registry_push_manifest(struct registry *r, const char *repo,
                           const char *ref, const char *media_type,
                           const char *json, char *hex) {
  char url[1024];
  struct hdrs h = {"", ""};
  long st;

  mt_sha(json, strlen(json), hex);
  snprintf(url, sizeof(url), "%s://%s/v2/%s/manifests/%s", r->scheme, r->host,
           repo, ref);
  st = req(r, "PUT", url, media_type, json, strlen(json), &h);
  if (st != 201) {
    fprintf(stderr, "registry: manifest %s:%s: HTTP %ld\n", repo, ref, st);
    return -1;
  }
  return 0;
}

long registry_requests(const struct registry *r) {
  FILE *f = fopen(r->log, "r");
  char line[8192];
  long n = 0;

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strstr(line, "\"GET /v2/") != NULL ||
        strstr(line, "\"HEAD /v2/") != NULL)
      n++;
  fclose(f);
  return n;
}
