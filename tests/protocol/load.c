/*
 * load.c: check_protocol, load: a NACK storm, a client that never reads.
 */
#include "tests/protocol/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- load -------------------------------------------------------------- */

#define STORM_CHANGES 10

/* One client NACKs every ECDS update while the store changes N times: it
 * gets at most one message per change (no resend loop), and another client
 * gets every update (loop: 0 SotW ADS, 1 delta ADS). */
START_TEST(nack_storm) {
  static const char *const args[] = {"--debounce-ms", "20", NULL};
  struct sess bad, good;
  char want[32];
  struct got g;
  uint64_t base;
  int nacker_msgs = 0, rc;

  setup_store();
  start_plain(args);
  push_session(&bad, _i, "storm-nacker", TENANT_PAYMENTS, PAY_EXTS);
  push_session(&good, _i, "storm-good", TENANT_PAYMENTS, PAY_EXTS);
  base = xds_stream_msgs_received(bad.ecds);
  for (int i = 1; i <= STORM_CHANGES; i++) {
    store_set_rev(F_AUTHZ, i);
    store_changed();
    must_recv(good.ecds, _i, XDS_TYPE_ECDS, PUSH_MS, &g, "the good client");
    snprintf(want, sizeof(want), "\"rev\":%d", i);
    E2E_ASSERT(got_has(&g, E_AUTHZ) &&
                   strstr(g.body[got_find(&g, E_AUTHZ)], want) != NULL,
               "change %d did not reach the good client", i);
    ack(good.ecds, &g, PAY_EXTS);
    /* The nacker reads whatever came and rejects it. */
    while ((rc = recv_got(bad.ecds, _i, 150, &g)) == 0) {
      E2E_ASSERT(!g.lds, "the nacker got LDS for a config-only change");
      nacker_msgs++;
      nack(bad.ecds, &g, "", PAY_EXTS, "e2e-storm: rejected");
    }
    E2E_ASSERT(rc == XDS_CLIENT_ETIMEDOUT, "the nacker's stream: %s",
               rc_str(rc));
  }
  quiet(bad.ecds, _i, 800, "the last NACK of the storm");
  E2E_ASSERT(nacker_msgs <= STORM_CHANGES,
             "the nacker got %d messages for %d changes: a resend loop",
             nacker_msgs, STORM_CHANGES);
  E2E_ASSERT(nacker_msgs >= 1, "the nacker got no update at all");
  E2E_ASSERT(xds_stream_msgs_received(bad.ecds) - base == (uint64_t)nacker_msgs,
             "message count mismatch");
  sess_close(&bad);
  sess_close(&good);
}
END_TEST

#define SLOW_CHANGES 50
#define SLOW_BLOB_BYTES (192 * 1024)

/* 1 if process pid runs with AddressSanitizer (its allocator keeps freed
 * memory in a quarantine, which is not growth per stream). */
static int runs_asan(int pid) {
  char path[64], *maps;
  int yes;

  snprintf(path, sizeof(path), "/proc/%d/maps", pid);
  maps = tk_read_file(path, NULL);
  yes = maps != NULL && strstr(maps, "libasan") != NULL;
  free(maps);
  return yes;
}

static long vm_rss_kib(int pid) {
  char path[64], *text, *p;
  long kib = -1;

  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  text = tk_read_file(path, NULL);
  if (text == NULL)
    return -1;
  p = strstr(text, "VmRSS:");
  if (p != NULL)
    kib = strtol(p + 6, NULL, 10);
  free(text);
  return kib;
}

/* The big extension's document: a payments-only config of ~192 KiB. */
static void write_big(int rev) {
  size_t cap = SLOW_BLOB_BYTES + 1024, off;
  char *doc = malloc(cap);

  ck_assert_ptr_nonnull(doc);
  off = (size_t)snprintf(doc, cap,
                         "apiVersion: extension.tsb.tetrate.io/v2\n"
                         "kind: WasmExtension\n"
                         "metadata: {organization: acme, name: big-blob}\n"
                         "spec:\n"
                         "  url: file:///etc/envoy/wasm/big.wasm\n"
                         "  phase: STATS\n"
                         "  allowedIn: [" TENANT_PAYMENTS "]\n"
                         "  config: {rev: %d, blob: ",
                         rev);
  for (size_t i = 0; i < SLOW_BLOB_BYTES; i++)
    doc[off++] = (char)('a' + (i * 7 + (size_t)rev) % 26);
  off += (size_t)snprintf(doc + off, cap - off, "}\n");
  store_write("ext-big.yaml", doc, off);
  free(doc);
}

/* A client that never reads: the server's memory does not grow with the
 * updates it owes it, and other clients keep getting every update. */
START_TEST(never_reading_client) {
  static const char *const args[] = {"--debounce-ms", "20", NULL};
  static const char *const names[] = {E_BIG, E_AUTHZ, E_AUDIT, E_SHARED, NULL};
  Envoy__Config__Core__V3__Node *node;
  struct xds_stream *slow;
  struct sess good;
  long rss10 = -1, rss50 = -1;
  char want[32];
  struct got g;

  setup_store();
  write_big(0);
  {
    /* Under AddressSanitizer: no quarantine, so that freed snapshots are
     * reused as they are in a plain build. */
    const char *old = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0",
             old != NULL ? old : "", old != NULL && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
  }
  start_plain(args);
  node = node_new("slow-reader", TENANT_PAYMENTS);
  slow = open_stream(XDS_METHOD_ADS);
  sotw_send(slow, node, XDS_TYPE_LISTENER, NULL, NULL, NULL, NULL);
  sotw_send(slow, node, XDS_TYPE_ECDS, NULL, NULL, names, NULL);
  push_session(&good, 0, "fast-reader", TENANT_PAYMENTS, names);

  for (int i = 1; i <= SLOW_CHANGES; i++) {
    write_big(i);
    store_changed();
    must_recv(good.ecds, 0, XDS_TYPE_ECDS, PUSH_MS, &g, "the reading client");
    snprintf(want, sizeof(want), "\"rev\":%d,", i);
    E2E_ASSERT(got_has(&g, E_BIG) && strncmp(g.body[got_find(&g, E_BIG)] + 1,
                                             want, strlen(want)) == 0,
               "change %d did not reach the reading client", i);
    ack(good.ecds, &g, names);
    if (i == 10)
      rss10 = vm_rss_kib(server_proc_pid(g_sp));
  }
  tk_sleep_ms(200);
  rss50 = vm_rss_kib(server_proc_pid(g_sp));
  E2E_ASSERT(rss10 > 0 && rss50 > 0, "cannot read the server's VmRSS");
  fprintf(stderr,
          "never_reading_client: server VmRSS %ld KiB after 10 "
          "changes, %ld KiB after %d (%d KiB per update unread)\n",
          rss10, rss50, SLOW_CHANGES, SLOW_BLOB_BYTES / 1024);
  /* Queued updates would add ~40 x 192 KiB = 7.5 MiB. */
  E2E_ASSERT(rss50 - rss10 < (runs_asan(server_proc_pid(g_sp)) ? 4096 : 2048),
             "the server's VmRSS grew by %ld KiB between 10 and %d updates "
             "owed to a client that does not read",
             rss50 - rss10, SLOW_CHANGES);
  /* The slow client is still connected: the server did not drop it. */
  E2E_ASSERT(xds_stream_msgs_received(slow) == 0, "the slow client read");
  xds_stream_free(slow);
  xds_node_free(node);
  sess_close(&good);
}
END_TEST

void protocol_add_load(Suite *s) {
  TCase *tc = protocol_tcase(s, "load", NULL, teardown);

  tcase_add_loop_test(tc, nack_storm, 0, 2);
  tcase_add_test(tc, never_reading_client);
}
