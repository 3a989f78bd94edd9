/*
 * push.c: check_protocol, pushes: a config-only change is ECDS alone,
 * membership is LDS, another tenant is untouched, LDS before ECDS.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- push -------------------------------------------------------------- */

/* Loop index: 0 SotW ADS, 1 delta ADS. A session that holds LDS and the
 * ECDS names of its listeners, both ACKed. */
/* A config-only change reaches the stream as ECDS alone. */
START_TEST(push_config_only_is_ecds) {
  struct sess ss;
  struct got g;
  int at;

  push_session(&ss, _i, "push-cfg-1", TENANT_PAYMENTS, PAY_EXTS);
  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(ss.ecds, _i, NULL, PUSH_MS, &g, "a config-only change");
  E2E_ASSERT(!g.lds, "a config-only change sent LDS");
  at = got_find(&g, E_AUTHZ);
  E2E_ASSERT(at >= 0 && strstr(g.body[at], "\"rev\":1") != NULL,
             "the ECDS push lacks pay-authz rev 1");
  ack(ss.ecds, &g, PAY_EXTS);
  quiet(ss.lds, _i, QUIET_MS, "a config-only change (no LDS may follow)");
  sess_close(&ss);
}
END_TEST

/* A membership change (a new extension for the proxy's tenant) reaches the
 * stream as LDS; its config follows once subscribed. */
START_TEST(push_membership_is_lds) {
  static const char *const with_late[] = {E_LATE, E_AUTHZ, E_AUDIT, E_SHARED,
                                          NULL};
  static const char *const late[] = {E_LATE, NULL};
  struct sess ss;
  struct got g;

  push_session(&ss, _i, "push-lds-1", TENANT_PAYMENTS, PAY_EXTS);
  store_add_extra("ext-late.yaml");
  store_changed();
  must_recv(ss.lds, _i, NULL, PUSH_MS, &g, "an extension added");
  E2E_ASSERT(g.lds, "adding an extension sent ECDS first, not LDS");
  for (size_t i = 0; i < g.n; i++)
    E2E_ASSERT(strncmp(g.body[i], E_LATE " ", strlen(E_LATE) + 1) == 0,
               "listener %s: chain '%s' does not start with late-authn",
               g.name[i], g.body[i]);
  ack(ss.lds, &g, NULL);
  /* Not subscribed yet: no ECDS. Then subscribe as Envoy would. */
  quiet(ss.ecds, _i, QUIET_MS, "the LDS ACK (late-authn is not subscribed)");
  if (_i)
    delta_send(ss.ecds, NULL, XDS_TYPE_ECDS, NULL, late, NULL, NULL, NULL);
  else
    sotw_send(ss.ecds, NULL, XDS_TYPE_ECDS, NULL, NULL, with_late, NULL);
  must_recv(ss.ecds, _i, XDS_TYPE_ECDS, ANSWER_MS, &g, "subscribe late-authn");
  got_exactly(&g, late, "ECDS after subscribing late-authn");
  sess_close(&ss);
}
END_TEST

/* A change for one tenant sends nothing to another tenant's stream. */
START_TEST(push_other_tenant_untouched) {
  static const char *const web_exts[] = {E_WEB, E_SHARED, NULL};
  struct sess pay, web;
  struct got g;

  push_session(&pay, _i, "push-pay-1", TENANT_PAYMENTS, PAY_EXTS);
  push_session(&web, _i, "push-web-1", TENANT_WEB, web_exts);
  store_set_rev(F_AUTHZ, 1);
  store_changed();
  must_recv(pay.ecds, _i, XDS_TYPE_ECDS, PUSH_MS, &g, "payments config change");
  ack(pay.ecds, &g, PAY_EXTS);
  quiet(web.lds, _i, QUIET_MS, "a config change of a payments-only extension");

  store_add_extra("ext-late.yaml");
  store_changed();
  must_recv(pay.lds, _i, XDS_TYPE_LISTENER, PUSH_MS, &g,
            "a payments-only extension added");
  ack(pay.lds, &g, NULL);
  quiet(web.lds, _i, QUIET_MS, "a payments-only extension added");
  sess_close(&pay);
  sess_close(&web);
}
END_TEST

/* When a listener and a config it references change together, LDS comes
 * first. Both edits land within the debounce, so they form one snapshot. */
START_TEST(push_lds_before_ecds) {
  struct sess ss;
  struct got a, b;
  char pat[48];
  unsigned gen;

  push_session(&ss, _i, "push-order-1", TENANT_PAYMENTS, PAY_EXTS);
  /* The config change is written first on purpose. */
  store_set_rev(F_AUTHZ, 1);
  store_add_extra("ext-late.yaml");
  store_changed();
  gen = g_gen;
  must_recv(ss.lds, _i, NULL, PUSH_MS, &a, "both changed");
  if (!a.lds) {
    snprintf(pat, sizeof(pat), "generation %u", gen + 1);
    E2E_ASSERT(server_proc_wait_log(g_sp, pat, 1000) != 0,
               "the two edits were not coalesced into one snapshot (the "
               "debounce did not hold)");
  }
  E2E_ASSERT(a.lds,
             "a listener and a config changed together: ECDS came "
             "first (%zu resources), LDS must",
             a.n);
  ack(ss.lds, &a, NULL);
  must_recv(ss.ecds, _i, XDS_TYPE_ECDS, PUSH_MS, &b, "both changed");
  E2E_ASSERT(got_has(&b, E_AUTHZ), "the ECDS push after LDS lacks pay-authz");
  sess_close(&ss);
}
END_TEST

void protocol_add_push(Suite *s) {
  TCase *tc = protocol_tcase(s, "push", setup_default, teardown);

  tcase_add_loop_test(tc, push_config_only_is_ecds, 0, 2);
  tcase_add_loop_test(tc, push_membership_is_lds, 0, 2);
  tcase_add_loop_test(tc, push_other_tenant_untouched, 0, 2);
  tcase_add_loop_test(tc, push_lds_before_ecds, 0, 2);
}
