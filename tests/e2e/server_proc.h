/*
 * server_proc.h: the real wasmxds binary as a child process, for the
 * end-to-end tests.
 *
 * server_proc_start() picks a free loopback port, runs
 *   $WASMXDS_BIN --listen 127.0.0.1:PORT --store PATH --log-level debug ARGS...
 *     [--admin-listen 127.0.0.1:0]
 * (the admin address is added unless ARGS name one, so that servers of
 * tests running at the same time never compete for the default admin port;
 * server_proc_admin_port() reads the port chosen from the log) with stdout
 * and stderr sent to a temporary log file, and returns once the
 * port accepts TCP connections (or fails). The child gets SIGKILL if the
 * test process dies first (PR_SET_PDEATHSIG), so a test that times out never
 * leaves a server behind. Only loopback addresses are used and every wait is
 * bounded.
 *
 * Errors are the negative XDS_E* codes of base/err.h. One thread only: the
 * test's.
 */
#ifndef XDS_TESTS_SERVER_PROC_H
#define XDS_TESTS_SERVER_PROC_H

#include <stddef.h>

struct server_proc;

/* How long server_proc_start() waits for the port to accept, in ms. */
#define SERVER_PROC_START_TIMEOUT_MS 10000

/* How long server_proc_stop() waits after SIGTERM before SIGKILL, in ms. */
#define SERVER_PROC_STOP_TIMEOUT_MS 5000

/*
 * Starts the server binary named by $WASMXDS_BIN on the store at store_path,
 * with the NULL-terminated extra_args (may be NULL) appended. If the child
 * exits before its port accepts (for example because another process took
 * the port between probe and bind), it is retried on a new port a few times.
 * On success *out is a new handle to free with server_proc_free().
 * Returns 0, XDS_EINVAL (no $WASMXDS_BIN), XDS_ENOMEM, or XDS_EIO (could not
 * spawn, the child kept exiting, or the port never accepted; the log is
 * copied to stderr to say why).
 */
int server_proc_start(const char *store_path, const char *const *extra_args,
                      struct server_proc **out);

/* "127.0.0.1:PORT", owned by sp, for grpc_channel_create(). */
const char *server_proc_target(const struct server_proc *sp);

/* The child's TCP port. */
int server_proc_port(const struct server_proc *sp);

/*
 * Starts the server again after it has exited (server_proc_stop(), or a
 * signal the test sent and reaped with server_proc_stop()), with the same
 * command line, on the same port, appending to the same log; the log mark
 * moves to the end of the old log. Returns 0 once the port accepts,
 * XDS_EINVAL if the child still runs, XDS_EIO otherwise (log dumped).
 */
int server_proc_restart(struct server_proc *sp);

/* The child's process id, or 0 once it has been reaped. */
int server_proc_pid(const struct server_proc *sp);

/*
 * The admin HTTP port of the running child, read from its log line
 * "admin HTTP on ... (port N)" (waits up to 5 s for it). Returns the port
 * or XDS_ENOTFOUND. Does not move the log mark.
 */
int server_proc_admin_port(struct server_proc *sp);

/* The log mark as an offset, and setting it back to one (so a test can
 * search again from an earlier point). */
size_t server_proc_log_get_mark(const struct server_proc *sp);
void server_proc_log_set_mark(struct server_proc *sp, size_t offset);

/*
 * Remembers the current end of the log: later server_proc_wait_log*() calls
 * only look at what is written after this point. Lets a test assert that a
 * line was caused by what it did next.
 */
void server_proc_log_mark(struct server_proc *sp);

/*
 * Waits up to timeout_ms for a log line (after the mark) containing substr.
 * Returns 0 when found, XDS_ENOTFOUND on timeout, XDS_EIO if the log cannot
 * be read.
 */
int server_proc_wait_log(struct server_proc *sp, const char *substr,
                         int timeout_ms);

/*
 * As server_proc_wait_log(), and on success sets *line to a new
 * NUL-terminated copy of the first matching line (without its newline),
 * which the caller frees with free(). Returns XDS_ENOMEM too.
 */
int server_proc_wait_log_line(struct server_proc *sp, const char *substr,
                              int timeout_ms, char **line);

/* Number of complete lines after the mark that contain substr, or
 * XDS_EIO when the log cannot be read. */
long server_proc_log_count(struct server_proc *sp, const char *substr);

/* Number of bytes in the log so far (0 if it cannot be read). */
size_t server_proc_log_size(const struct server_proc *sp);

/* Copies the whole log to stderr, prefixed, to explain a failure. */
void server_proc_dump_log(const struct server_proc *sp);

/*
 * Returns 1 while the child runs, 0 once it has exited (its wait status is
 * then kept for server_proc_stop()).
 */
int server_proc_alive(struct server_proc *sp);

/*
 * Stops the child: SIGTERM, wait up to SERVER_PROC_STOP_TIMEOUT_MS, then
 * SIGKILL and reap. Sets *wstatus (nullable) to the waitpid() status.
 * Returns 0 if it exited by itself after SIGTERM, XDS_EIO if it had to be
 * killed or was already dead before SIGTERM. Safe to call twice.
 */
int server_proc_stop(struct server_proc *sp, int *wstatus);

/* Stops the child if still running, removes the log file, frees sp.
 * NULL is a no-op. */
void server_proc_free(struct server_proc *sp);

#endif
