/*
 * testkit.h: the helpers every test program had its own copy of.
 *
 * Time (a monotonic clock in milliseconds, a sleep that survives signals),
 * files (read a whole file, write one, remove a tree), shell commands, and
 * the E2E_FAIL/E2E_ASSERT macros of the end-to-end programs. For Check
 * tests: the functions that fail the test say so; none keeps state. Any
 * thread may call them.
 */
#ifndef XDS_TESTS_TESTKIT_H
#define XDS_TESTS_TESTKIT_H

#include <stddef.h>

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

#endif
