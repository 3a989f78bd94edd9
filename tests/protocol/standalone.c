/*
 * standalone.c: check_protocol, the standalone services: each serves its own
 * type.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- standalone services ----------------------------------------------- */

/* Each standalone service serves its own type, and a request for the other
 * type on it neither answers nor breaks the stream (loop: 0 StreamListeners,
 * 1 StreamExtensionConfigs, 2 DeltaListeners, 3 DeltaExtensionConfigs). */
START_TEST(standalone_serves_its_type) {
  static const char *const methods[] = {XDS_METHOD_LDS, XDS_METHOD_ECDS,
                                        XDS_METHOD_DELTA_LDS,
                                        XDS_METHOD_DELTA_ECDS};
  int delta = _i >= 2, lds = _i % 2 == 0;
  const char *mine = lds ? XDS_TYPE_LISTENER : XDS_TYPE_ECDS;
  const char *other = lds ? XDS_TYPE_ECDS : XDS_TYPE_LISTENER;
  const char *const *names = lds ? NULL : PAY_EXTS;
  Envoy__Config__Core__V3__Node *node =
      node_new("standalone-1", TENANT_PAYMENTS);
  struct xds_stream *s = open_stream(methods[_i]);
  struct got g;

  if (delta)
    delta_send(s, node, mine, NULL, names, NULL, NULL, NULL);
  else
    sotw_send(s, node, mine, NULL, NULL, names, NULL);
  must_recv(s, delta, mine, ANSWER_MS, &g, methods[_i]);
  got_exactly(&g, lds ? PAY_LISTENERS : PAY_EXTS, methods[_i]);
  ack(s, &g, names);

  server_proc_log_mark(g_sp);
  if (delta)
    delta_send(s, NULL, other, NULL, lds ? PAY_EXTS : NULL, NULL, NULL, NULL);
  else
    sotw_send(s, NULL, other, NULL, NULL, lds ? PAY_EXTS : NULL, NULL);
  quiet(s, delta, QUIET_MS, "a request for the other type");
  E2E_ASSERT(server_proc_wait_log(g_sp, other, 1000) == 0,
             "a request for %s on %s was not logged", other, methods[_i]);

  /* Still serving its type: a push arrives. */
  if (lds)
    store_add_extra("tmpl-extra.yaml");
  else
    store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(s, delta, mine, PUSH_MS, &g, "a push");
  xds_stream_free(s);
  xds_node_free(node);
}
END_TEST

void protocol_add_standalone(Suite *s) {
  TCase *tc = protocol_tcase(s, "standalone", setup_default, teardown);

  tcase_add_loop_test(tc, standalone_serves_its_type, 0, 4);
}
