/*
 * check_protocol.c: the end-to-end tests of issue 5, the xDS protocol.
 *
 * Each test starts the real wasmxds ($WASMXDS_BIN) on a free loopback port
 * on a private copy of tests/data/protocol/store (see its README.md), talks
 * to it with the gRPC C core client of tests/e2e/xds_client.h (SotW and
 * delta, on ADS and on the standalone LDS and ECDS services), edits the
 * store copy on disk to make the server push (it reloads through inotify
 * after its debounce; every wait for that is bounded), and checks what goes
 * over the wire against the rules of the xDS protocol (prior-art.md §2).
 *
 * Test groups, one file each under tests/protocol/: SotW semantics
 * (sotw.c), delta semantics (delta.c), standalone services
 * (standalone.c), push (push.c), load (load.c: a NACK storm, a client that
 * never reads), mutual TLS (mtls.c: certificates made with the openssl
 * CLI), drain and restart (lifecycle.c), the admin endpoints (admin.c).
 * What they share is in tests/protocol/protocol.h and fixture.c; this
 * file is the runner.
 * Tests that apply to several services or modes are Check loop tests; the
 * loop index picks the service (see the tables next to each test).
 *
 * Check's fork mode gives each test a fresh process, server and store; all
 * temporary directories live under one directory that main() removes at
 * the end, so even a test killed by its timeout leaves nothing behind (its
 * server dies with it: PR_SET_PDEATHSIG in server_proc.c).
 *
 * Usage: check_protocol. CK_TIMEOUT_MULTIPLIER scales the per-test limits;
 * CK_RUN_CASE / CK_RUN_SUITE select tests as in every Check program.
 */
#include "tests/protocol/protocol.h"

#include <stdio.h>
#include <stdlib.h>

static Suite *protocol_suite(void) {
  Suite *s = suite_create("protocol");

  protocol_add_sotw(s);
  protocol_add_delta(s);
  protocol_add_standalone(s);
  protocol_add_push(s);
  protocol_add_load(s);
  protocol_add_mtls(s);
  protocol_add_lifecycle(s);
  protocol_add_admin(s);
  return s;
}

int main(void) {
  SRunner *sr;
  int failed;

  snprintf(g_base, sizeof(g_base), "/tmp/wasmxds-protocol-XXXXXX");
  if (mkdtemp(g_base) == NULL) {
    perror("mkdtemp");
    return EXIT_FAILURE;
  }
  sr = srunner_create(protocol_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  tk_rm_tree(g_base);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
