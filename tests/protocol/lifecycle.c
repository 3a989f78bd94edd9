/*
 * lifecycle.c: check_protocol, drain and restart.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- drain and restart ------------------------------------------------- */

#define DRAIN_MS 1500

/* SIGTERM: every stream ends with UNAVAILABLE (the server's status, not a
 * transport reset) within --drain-ms; the server restarts on the same port
 * and store; clients reconnect with their versions and get nothing new. */
START_TEST(drain_and_restart) {
  static const char *const args[] = {"--drain-ms", "1500", NULL};
  char *lkv[2 * MAXR + 2] = {NULL}, *ekv[2 * MAXR + 2] = {NULL};
  char lds_ver[128], ecds_ver[128];
  struct sess sotw, delta;
  struct got l, e;
  long long t0;
  int ws = 0;

  setup_store();
  start_plain(args);
  /* What an Envoy remembers: the SotW versions, the delta resource
   * versions. */
  sess_open(&sotw, 0, 0, "drain-sotw", TENANT_PAYMENTS);
  sess_lds(&sotw, &l);
  snprintf(lds_ver, sizeof(lds_ver), "%s", l.version);
  sess_ecds(&sotw, PAY_EXTS, &e);
  snprintf(ecds_ver, sizeof(ecds_ver), "%s", e.version);
  sess_open(&delta, 1, 0, "drain-delta", TENANT_PAYMENTS);
  sess_lds(&delta, &l);
  kv_add(lkv, 2 * MAXR + 2, &l);
  sess_ecds(&delta, PAY_EXTS, &e);
  kv_add(ekv, 2 * MAXR + 2, &e);
  quiet(sotw.lds, 0, 100, "the ACKs");

  t0 = tk_now_ms();
  ck_assert_int_eq(kill(server_proc_pid(g_sp), SIGTERM), 0);
  for (int k = 0; k < 2; k++) {
    struct xds_stream *s = k ? delta.lds : sotw.lds;
    grpc_status_code code;
    char *details = NULL;
    long long took;

    code = must_status(s, DRAIN_MS + 3000, &details, "SIGTERM");
    took = tk_now_ms() - t0;
    E2E_ASSERT(code == GRPC_STATUS_UNAVAILABLE,
               "%s stream after SIGTERM: status %d (%s), want UNAVAILABLE",
               k ? "delta" : "SotW", (int)code, details);
    E2E_ASSERT(details != NULL && strstr(details, "shutting down") != NULL,
               "%s stream after SIGTERM: UNAVAILABLE '%s' is not the "
               "server's drain status (a transport reset?)",
               k ? "delta" : "SotW", details);
    E2E_ASSERT(took <= DRAIN_MS + 500,
               "%s stream ended %lld ms after SIGTERM; --drain-ms is %d",
               k ? "delta" : "SotW", took, DRAIN_MS);
    free(details);
  }
  for (long long end = tk_now_ms() + 5000;
       server_proc_alive(g_sp) && tk_now_ms() < end;)
    tk_sleep_ms(10);
  E2E_ASSERT(!server_proc_alive(g_sp), "the server did not exit after SIGTERM");
  server_proc_stop(g_sp, &ws);
  E2E_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
             "the server exited with status 0x%x after SIGTERM", ws);
  sess_close(&sotw);
  sess_close(&delta);
  xds_client_free(g_client);
  g_client = NULL;

  /* Restart on the same port and store. */
  ck_assert_int_eq(server_proc_restart(g_sp), 0);
  g_gen_from = server_proc_log_get_mark(g_sp);
  g_gen = 0;
  store_changed();
  ck_assert_int_eq(xds_client_new(server_proc_target(g_sp), NULL, &g_client),
                   0);

  /* SotW: the versions it had; nothing is sent. */
  sess_open(&sotw, 0, 0, "drain-sotw", TENANT_PAYMENTS);
  sotw_send(sotw.lds, sotw.node, XDS_TYPE_LISTENER, lds_ver, NULL, NULL, NULL);
  sotw_send(sotw.ecds, sotw.node, XDS_TYPE_ECDS, ecds_ver, NULL, PAY_EXTS,
            NULL);
  /* Delta: initial_resource_versions; no resources. */
  {
    static const char *const star[] = {"*", NULL};
    sess_open(&delta, 1, 0, "drain-delta", TENANT_PAYMENTS);
    delta_send(delta.lds, delta.node, XDS_TYPE_LISTENER, NULL, star, NULL,
               (const char *const *)lkv, NULL);
    delta_send(delta.ecds, delta.node, XDS_TYPE_ECDS, NULL, PAY_EXTS, NULL,
               (const char *const *)ekv, NULL);
  }
  quiet(sotw.lds, 0, RESTART_QUIET_MS,
        "a SotW reconnect with the current versions");
  {
    int rc;
    char buf[1024];
    while ((rc = recv_got(delta.lds, 1, 200, &l)) == 0)
      E2E_ASSERT(l.n == 0 && l.n_removed == 0,
                 "a delta reconnect with the current versions got %s %s",
                 l.lds ? "LDS" : "ECDS", got_names(&l, buf, sizeof(buf)));
    E2E_ASSERT(rc == XDS_CLIENT_ETIMEDOUT, "delta after restart: %s",
               rc_str(rc));
  }
  kv_free(lkv);
  kv_free(ekv);
  sess_close(&sotw);
  sess_close(&delta);
}
END_TEST

void protocol_add_lifecycle(Suite *s) {
  TCase *tc = protocol_tcase(s, "lifecycle", NULL, teardown);

  tcase_add_test(tc, drain_and_restart);
}
