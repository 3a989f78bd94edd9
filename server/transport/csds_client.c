/*
 * csds_client.c: FetchClientStatus over the gRPC C core client API: one
 * batch (metadata, the request, half-close, and every receive) on a
 * completion queue of its own, waited for until the deadline.
 */
#include "server/transport/csds_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"

#define CSDS_METHOD                                                            \
  "/envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus"
/* Largest PEM file read. */
#define CSDS_PEM_MAX (1024 * 1024)

static int read_file(const char *path, char **out, struct xds_err *err) {
  FILE *f = fopen(path, "rb");
  struct xds_buf b;
  char chunk[4096];
  size_t n;
  int rc = 0;

  *out = NULL;
  if (f == NULL)
    return xds_err_set(err, XDS_EINVAL, "%s: %s", path, strerror(errno));
  xds_buf_init(&b, CSDS_PEM_MAX);
  while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    rc = xds_buf_append(&b, chunk, n);
  if (rc == 0 && ferror(f))
    rc = XDS_EIO;
  fclose(f);
  if (rc == 0 && (b.len == 0 || strstr(b.data, "-----BEGIN") == NULL))
    rc = XDS_EINVAL;
  if (rc < 0) {
    xds_buf_cleanup(&b);
    return xds_err_set(err, XDS_EINVAL, "%s: %s", path,
                       rc == XDS_EINVAL    ? "not a PEM file"
                       : rc == XDS_ETOOBIG ? "larger than 1 MiB"
                                           : xds_strerror(rc));
  }
  *out = xds_buf_steal(&b, NULL);
  return 0;
}

static grpc_channel_credentials *make_creds(const struct csds_client_opts *o,
                                            struct xds_err *err) {
  grpc_channel_credentials *creds = NULL;
  grpc_ssl_pem_key_cert_pair pair;
  char *ca = NULL, *cert = NULL, *key = NULL;

  if (o->tls_ca == NULL) {
    if (o->tls_cert != NULL || o->tls_key != NULL) {
      xds_err_set(err, XDS_EINVAL, "a client certificate needs a CA (TLS)");
      return NULL;
    }
    return grpc_insecure_credentials_create();
  }
  if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
    xds_err_set(err, XDS_EINVAL, "the client certificate and key go together");
    return NULL;
  }
  if (read_file(o->tls_ca, &ca, err) < 0 ||
      (o->tls_cert != NULL && read_file(o->tls_cert, &cert, err) < 0) ||
      (o->tls_key != NULL && read_file(o->tls_key, &key, err) < 0))
    goto done;
  pair.private_key = key;
  pair.cert_chain = cert;
  creds =
      grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL, NULL);
  if (creds == NULL)
    xds_err_set(err, XDS_EINVAL, "gRPC refused the TLS files");
done:
  xds_free(ca);
  xds_free(cert);
  xds_free(key);
  return creds;
}

/* The message of a status slice, bounded, for err. */
static void status_text(grpc_slice details, char *out, size_t size) {
  size_t n = GRPC_SLICE_LENGTH(details);

  if (n >= size)
    n = size - 1;
  memcpy(out, GRPC_SLICE_START_PTR(details), n);
  out[n] = '\0';
}

int csds_fetch(const struct csds_client_opts *o, const uint8_t *req,
               size_t req_len, uint8_t **resp, size_t *resp_len,
               struct xds_err *err) {
  grpc_channel_credentials *creds;
  grpc_channel *ch = NULL;
  grpc_completion_queue *cq = NULL;
  grpc_call *call = NULL;
  grpc_byte_buffer *send = NULL, *recv = NULL;
  grpc_metadata_array md_init, md_trail;
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice(), slice;
  grpc_arg args[4];
  grpc_channel_args cargs = {0, args};
  grpc_op ops[6];
  gpr_timespec deadline;
  grpc_event ev;
  char text[256];
  int rc = 0, timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000;

  *resp = NULL;
  *resp_len = 0;
  if (o->target == NULL || o->target[0] == '\0')
    return xds_err_set(err, XDS_EINVAL, "no server address");
  grpc_init();
  grpc_metadata_array_init(&md_init);
  grpc_metadata_array_init(&md_trail);
  creds = make_creds(o, err);
  if (creds == NULL) {
    rc = XDS_EINVAL;
    goto done;
  }
  args[cargs.num_args].type = GRPC_ARG_INTEGER;
  args[cargs.num_args].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[cargs.num_args++].value.integer = CSDS_CLIENT_MAX_RESPONSE;
  /* Uncompressed answers only: gRPC 1.51 inflates a message before it
   * checks its size, so a server's gzip could cost gigabytes here. */
  args[cargs.num_args].type = GRPC_ARG_INTEGER;
  args[cargs.num_args].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
  args[cargs.num_args++].value.integer = 1 << GRPC_COMPRESS_NONE;
  if (o->tls_name != NULL) {
    args[cargs.num_args].type = GRPC_ARG_STRING;
    args[cargs.num_args].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[cargs.num_args++].value.string = (char *)o->tls_name;
  }
  ch = grpc_channel_create(o->target, creds, &cargs);
  grpc_channel_credentials_release(creds);
  cq = grpc_completion_queue_create_for_pluck(NULL);
  deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                          gpr_time_from_millis(timeout, GPR_TIMESPAN));
  call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                  grpc_slice_from_static_string(CSDS_METHOD),
                                  NULL, deadline, NULL);
  if (call == NULL) {
    rc = xds_err_set(err, XDS_EIO, "%s: cannot create the call", o->target);
    goto done;
  }
  slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
  send = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_init;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
  ops[5].data.recv_status_on_client.status = &code;
  ops[5].data.recv_status_on_client.status_details = &details;
  if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
    rc = xds_err_set(err, XDS_EIO, "%s: cannot start the call", o->target);
    goto done;
  }
  /* The call's own deadline ends it; the extra second only bounds the
   * wait should the deadline's completion be late. */
  ev = grpc_completion_queue_pluck(
      cq, call,
      gpr_time_add(deadline, gpr_time_from_millis(1000, GPR_TIMESPAN)), NULL);
  if (ev.type != GRPC_OP_COMPLETE) {
    grpc_call_cancel(call, NULL);
    ev = grpc_completion_queue_pluck(cq, call,
                                     gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  }
  if (code != GRPC_STATUS_OK) {
    status_text(details, text, sizeof(text));
    rc = xds_err_set(err, XDS_EIO,
                     "%s: FetchClientStatus failed: gRPC status %d%s%s",
                     o->target, (int)code, text[0] != '\0' ? ": " : "", text);
    goto done;
  }
  if (recv == NULL) {
    rc = xds_err_set(err, XDS_EIO, "%s: FetchClientStatus: no response",
                     o->target);
    goto done;
  } else {
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, recv)) {
      rc = xds_err_set(err, XDS_EIO, "%s: cannot read the response", o->target);
      goto done;
    }
    slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    *resp_len = GRPC_SLICE_LENGTH(slice);
    *resp = xds_malloc(*resp_len > 0 ? *resp_len : 1);
    if (*resp == NULL)
      rc = xds_err_set(err, XDS_ENOMEM, "out of memory");
    else
      memcpy(*resp, GRPC_SLICE_START_PTR(slice), *resp_len);
    grpc_slice_unref(slice);
  }
done:
  if (send != NULL)
    grpc_byte_buffer_destroy(send);
  if (recv != NULL)
    grpc_byte_buffer_destroy(recv);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&md_init);
  grpc_metadata_array_destroy(&md_trail);
  if (call != NULL)
    grpc_call_unref(call);
  if (cq != NULL) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN)
      ;
    grpc_completion_queue_destroy(cq);
  }
  if (ch != NULL)
    grpc_channel_destroy(ch);
  grpc_shutdown();
  if (rc < 0 && *resp != NULL) {
    xds_free(*resp);
    *resp = NULL;
    *resp_len = 0;
  }
  return rc;
}
