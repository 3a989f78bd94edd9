/*
 * notify.h: the service manager's readiness protocol (systemd's
 * sd_notify), written here so that wasmxds needs no libsystemd.
 *
 * When $NOTIFY_SOCKET names a unix datagram socket (a path, or '@' then a
 * name in the abstract namespace), notify_open() prepares one datagram
 * socket to it, and each notify_send() sends one state string ("READY=1",
 * "STOPPING=1") as one datagram. Without $NOTIFY_SOCKET everything here
 * does nothing. Nothing here is ever fatal: a failure is logged once
 * (notify_open, notify_say) and otherwise ignored.
 *
 * Threads: notify_open and notify_close on the main thread, before any
 * other thread sends and after every sender stopped. notify_send is
 * async-signal-safe (one sendto, no allocation, no logging) and may be
 * called from any thread or a signal handler; notify_say from any thread
 * but not from a signal handler.
 */
#ifndef XDS_APP_NOTIFY_H
#define XDS_APP_NOTIFY_H

/* Longest $NOTIFY_SOCKET accepted (sun_path's size, less the terminator). */
#define NOTIFY_PATH_MAX 107

/* Reads $NOTIFY_SOCKET and opens the socket. Returns 1 when notifications
 * will be sent, 0 when not (unset, or an error, logged once). */
int notify_open(void);

/* Sends state (NUL-terminated, borrowed). Returns 0 (sent, or nothing to
 * send to), or a negative errno. Async-signal-safe; logs nothing. */
int notify_send(const char *state);

/* notify_send(), and a failure is logged (the first one only). */
void notify_say(const char *state);

/* Logs a failure notify_send() returned in a signal handler (once, like
 * notify_say's). */
void notify_report(const char *state, int rc);

/* Closes the socket. */
void notify_close(void);

#endif
