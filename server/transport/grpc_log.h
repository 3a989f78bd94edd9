/*
 * grpc_log.h: gRPC core's own log lines (failed TLS handshakes, reset
 * connections) written through base/log.h: escaped, prefixed "grpc:", and
 * at most one line per distinct text every 60 s, with the count of those
 * left out (README "Running", logs).
 */
#ifndef XDS_GRPC_LOG_H
#define XDS_GRPC_LOG_H

/* Installs the hook (gpr_set_log_function). Call before grpc_init();
 * process-wide; any thread. */
void grpc_log_route(void);

#endif
