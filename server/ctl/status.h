/*
 * status.h: `wasmxdsctl status`, the proxies connected to one or several
 * wasmxds servers and where their configuration stands, over CSDS.
 *
 * Threads: the calling thread only (blocking gRPC calls, one per server,
 * each bounded by --timeout-ms).
 */
#ifndef XDS_CTL_STATUS_H
#define XDS_CTL_STATUS_H

/* Exit codes (the other wasmxdsctl commands use 0 to 5). */
enum {
  CTL_STATUS_OK = 0,          /* every proxy listed is SYNCED */
  CTL_STATUS_USAGE = 2,       /* bad flags */
  CTL_STATUS_NOTFOUND = 4,    /* status PROXY: not connected to them */
  CTL_STATUS_OUT_OF_SYNC = 6, /* some proxy is STALE, NACKED or NOT SENT */
  CTL_STATUS_UNREACHABLE = 7  /* a server could not be asked */
};

/* Runs `status` with argv[0] = "status" and its own flags after it.
 * Prints to stdout, errors to stderr; returns an exit code above. */
int ctl_status(int argc, char **argv);

#endif
