/*
 * csds_client.h: one unary FetchClientStatus call
 * (envoy.service.status.v3.ClientStatusDiscoveryService) to one xDS
 * server, for wasmxdsctl and the tests.
 *
 * The header is free of gRPC: callers pass and get packed protobuf bytes
 * (ClientStatusRequest in, ClientStatusResponse out) and never include
 * <grpc/...> (only server/transport/ may). Each call initializes gRPC,
 * opens its own channel and shuts both down before returning.
 *
 * Threads: any thread; calls are independent.
 */
#ifndef XDS_CSDS_CLIENT_H
#define XDS_CSDS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct csds_client_opts {
  const char *target;   /* host:port of the xDS server */
  const char *tls_ca;   /* PEM CA bundle file: use TLS and verify the
                           server with it; NULL: plaintext */
  const char *tls_cert; /* PEM client certificate chain file (mutual TLS);
                           NULL: none */
  const char *tls_key;  /* its PEM private key file, with tls_cert */
  const char *tls_name; /* name to verify in the server certificate;
                           NULL: the target's host */
  int timeout_ms;       /* the whole call's deadline; <= 0: 10 s */
};

/* Largest response accepted (the server's own message limit). */
#define CSDS_CLIENT_MAX_RESPONSE (4 * 1024 * 1024)

/*
 * Sends req (req_len bytes of a packed ClientStatusRequest) and waits for
 * the answer. Returns 0 with *resp a new buffer (free with xds_free) of
 * *resp_len bytes holding a packed ClientStatusResponse; or XDS_EINVAL
 * (bad options, unreadable PEM files), XDS_ENOMEM, XDS_EIO (the call
 * failed: err says the target, the gRPC status and its message).
 */
int csds_fetch(const struct csds_client_opts *o, const uint8_t *req,
               size_t req_len, uint8_t **resp, size_t *resp_len,
               struct xds_err *err);

#endif
