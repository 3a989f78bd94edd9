/*
 * testkit.h: the helpers every test program had its own copy of.
 *
 * Time (a monotonic clock in milliseconds, a sleep that survives signals),
 * files (read a whole file, write one, write a store document, remove a
 * tree), shell commands, a test PKI made with the openssl CLI, a body
 * collector for libcurl, running a suite, and the E2E_FAIL/E2E_ASSERT
 * macros of the end-to-end programs. For Check tests: the functions that
 * fail the test say so; none keeps state. Any thread may call them
 * (tk_run_suite: the main thread).
 */
#ifndef XDS_TESTS_TESTKIT_H
#define XDS_TESTS_TESTKIT_H

#include <stddef.h>

struct Suite; /* Check's Suite */

/*
 * E2E_FAIL(fmt, ...) fails the test like ck_abort_msg(), after copying the
 * log of the running server to stderr. The program says which server by
 * defining E2E_SERVER (an expression of type struct server_proc *, NULL
 * when none runs; e.g. `#define E2E_SERVER g_sp`) and including
 * tests/e2e/server_proc.h before its first use.
 */
#define E2E_FAIL(...)                                                          \
  do {                                                                         \
    if ((E2E_SERVER) != NULL)                                                  \
      server_proc_dump_log(E2E_SERVER);                                        \
    ck_abort_msg(__VA_ARGS__);                                                 \
  } while (0)

/* E2E_ASSERT(cond, fmt, ...): E2E_FAIL(fmt, ...) unless cond holds. */
#define E2E_ASSERT(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      E2E_FAIL(__VA_ARGS__);                                                   \
  } while (0)

/* Milliseconds on the monotonic clock (for deadlines and durations). */
long long tk_now_ms(void);

/* Sleeps ms milliseconds, resuming after signals. */
void tk_sleep_ms(int ms);

/* Removes path and everything under it (symbolic links are not followed);
 * an empty path or one that does not exist is left alone. */
void tk_rm_tree(const char *path);

/*
 * Reads the whole file at path (also /proc files, whose size reads as 0)
 * into a new NUL-terminated buffer the caller frees, with its length in
 * *len (nullable). NULL when the file cannot be read; fails the test when
 * memory runs out.
 */
char *tk_read_file(const char *path, size_t *len);

/* Writes len bytes of data to path (created or truncated); fails the test
 * naming path when it cannot. */
void tk_write_file(const char *path, const void *data, size_t len);

/* Runs the command made from fmt with /bin/sh; returns its exit status,
 * or 128 when it did not exit normally (a signal, or no shell). */
int tk_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads dir/name (as tk_read_file); fails the test naming the path when
 * it cannot. The caller frees the result. */
char *tk_read_in(const char *dir, const char *name);

/* Writes text as dir/store/name, making dir/store first; fails the test
 * when it cannot. */
void tk_write_store_doc(const char *dir, const char *name, const char *text);

/* One certificate of tk_make_pki(): name.key and name.crt, with the
 * subjectAltName san ("IP:127.0.0.1", "URI:spiffe://...", several joined
 * by ",") and the extendedKeyUsage eku ("serverAuth" or "clientAuth"). */
struct tk_cert {
  const char *name;
  const char *san;
  const char *eku;
};

/* What tk_make_pki() made: its directory, the paths of the CA certificate
 * and of the server's certificate and key, and the flags that start
 * wasmxds with them (--tls-cert, --tls-key, --tls-client-ca; NULL-ended,
 * pointing into this struct). */
struct tk_pki {
  char dir[512];
  char ca_crt[600], server_crt[600], server_key[600];
  const char *server_args[7];
};

/*
 * Makes the directory dir and in it, with the openssl CLI (its output in
 * dir/openssl.log), a CA (ca.key, ca.crt; subject CN=ca_cn) and the n
 * certificates certs signed by it, in that order (one of them named
 * "server" for pki->server_args); every key is EC P-256, every
 * certificate valid for 2 days. Fills pki. Fails the test when a step
 * fails.
 */
void tk_make_pki(struct tk_pki *pki, const char *dir, const char *ca_cn,
                 const struct tk_cert *certs, size_t n);

/* A response body collected by tk_body_write; data is NUL-terminated
 * (NULL when nothing came) and freed with free(). */
struct tk_body {
  char *data;
  size_t len;
};

/* A libcurl CURLOPT_WRITEFUNCTION appending to the struct tk_body given as
 * CURLOPT_WRITEDATA; returns 0 (libcurl then fails the transfer) when
 * memory runs out. */
size_t tk_body_write(char *p, size_t size, size_t n, void *arg);

/* The value of the Prometheus sample line of a /metrics body that starts
 * with name (its labels included, as written: `m{l="v"}`), or -1 when no
 * line does. */
double tk_metric_sample(const char *body, const char *name);

/* The YAML of a WasmExtension acme/name (url file:///wasm/<name>.wasm,
 * the given priority) and of a ListenerTemplate name (INBOUND on port,
 * route to cluster app, the router filter), for stores the tests write.
 * Each returns one of 4 static buffers in turn: the main thread only. */
const char *tk_ext_doc(const char *name, int prio);
const char *tk_tmpl_doc(const char *name, int port);

/* Runs s (CK_NORMAL) and frees it; returns EXIT_SUCCESS when no test
 * failed, else EXIT_FAILURE, for main() to return. */
int tk_run_suite(struct Suite *s);

#endif
