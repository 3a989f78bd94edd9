/*
 * loadgen_phase.c: loadgen run, the phases (storm, steps, idle, teardown) and
 * their reports.
 */
#include "loadgen_run.h"

/* Reporting */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q) {
  size_t k;

  if (n == 0)
    return NAN;
  k = (size_t)ceil(q * (double)n);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return v[k - 1];
}

static void fmt_bytes(char *out, size_t len, double b) {
  if (b >= 1048576.0)
    snprintf(out, len, "%.1f MiB", b / 1048576.0);
  else if (b >= 1024.0)
    snprintf(out, len, "%.1f KiB", b / 1024.0);
  else
    snprintf(out, len, "%.0f B", b);
}

static struct phase_base phase_begin(void) {
  struct phase_base b;

  b.t0 = now_s();
  b.msgs = g.msgs;
  b.bytes = g.bytes;
  b.lds = g.msgs_lds;
  b.ecds = g.msgs_ecds;
  b.nacks = g.nacks;
  b.decode_errors = g.decode_errors;
  b.stray = g.stray_ecds;
  b.removed = g.ecds_removed;
  b.reqs = g.reqs_sent;
  b.drains = g.drains;
  b.ecds_res = g.ecds_res;
  b.failed = g.n_failed;
  b.srv = srv_sample();
  b.self = self_sample();
  return b;
}

double g_srv_baseline_kib;

static void print_common(const struct phase_base *b,
                         const struct srv_sample *srv_end,
                         const struct self_sample *self_end, char *ml,
                         size_t mllen) {
  char b1[32];
  size_t o = strlen(ml);

  fmt_bytes(b1, sizeof(b1), (double)(g.bytes - b->bytes));
  printf("  %-34s %" PRIu64 " (LDS %" PRIu64 ", ECDS %" PRIu64 "), %s\n",
         "messages received", g.msgs - b->msgs, g.msgs_lds - b->lds,
         g.msgs_ecds - b->ecds, b1);
  printf("  %-34s %" PRIu64 "\n", "requests sent (incl. ACKs)",
         g.reqs_sent - b->reqs);
  printf("  %-34s NACKs %" PRIu64 ", undecodable %" PRIu64
         ", stream failures %u, unreferenced ECDS %" PRIu64 "\n",
         "errors", g.nacks - b->nacks, g.decode_errors - b->decode_errors,
         g.n_failed - b->failed, g.stray_ecds - b->stray);
  o += (size_t)snprintf(
      ml + o, mllen - o,
      " msgs=%" PRIu64 " lds_msgs=%" PRIu64 " ecds_msgs=%" PRIu64
      " bytes=%" PRIu64 " nacks=%" PRIu64 " decode_errors=%" PRIu64
      " stream_failures=%u",
      g.msgs - b->msgs, g.msgs_lds - b->lds, g.msgs_ecds - b->ecds,
      g.bytes - b->bytes, g.nacks - b->nacks,
      g.decode_errors - b->decode_errors, g.n_failed - b->failed);
  if (b->srv.ok && srv_end->ok) {
    double per = g.n > 0 ? (srv_end->rss_kib - g_srv_baseline_kib) / g.n : 0;

    printf("  %-34s %.2f core-s; RSS %.1f MiB (baseline %.1f MiB, "
           "%+.1f KiB per proxy above it)\n",
           "server CPU, RSS at end", srv_end->cpu_s - b->srv.cpu_s,
           srv_end->rss_kib / 1024.0, g_srv_baseline_kib / 1024.0, per);
    o += (size_t)snprintf(ml + o, mllen - o,
                          " server_cpu_s=%.3f server_rss_kib=%.0f "
                          "server_baseline_kib=%.0f server_kib_per_proxy=%.2f",
                          srv_end->cpu_s - b->srv.cpu_s, srv_end->rss_kib,
                          g_srv_baseline_kib, per);
  }
  printf("  %-34s %.2f core-s (user %.2f, sys %.2f); RSS %.1f MiB\n",
         "generator CPU (separate process)",
         self_end->user_s + self_end->sys_s - b->self.user_s - b->self.sys_s,
         self_end->user_s - b->self.user_s, self_end->sys_s - b->self.sys_s,
         self_rss_kib() / 1024.0);
  snprintf(ml + o, mllen - o, " gen_cpu_s=%.3f gen_rss_kib=%.0f",
           self_end->user_s + self_end->sys_s - b->self.user_s - b->self.sys_s,
           self_rss_kib());
}

/* Phases */

int run_storm(grpc_channel_credentials *creds) {
  struct phase_base b = phase_begin();
  double t_created, deadline, *lat, now, t_all = NAN, t_quiet;
  struct srv_sample srv_end;
  int quiet;
  struct self_sample self_end;
  char ml[1024];
  size_t nl = 0;
  int i;

  for (i = 0; i < g.n; i++) {
    if (start_proxy(&g.px[i], creds) < 0) {
      fprintf(stderr, "loadgen: proxy-%05d: cannot create its channel/call\n",
              i);
      return -1;
    }
    if ((i & 255) == 255)
      pump(0); /* keep completions flowing while creating */
  }
  t_created = now_s();
  deadline = b.t0 + g.timeout_s;
  for (;;) {
    pump(TICK_MS);
    now = now_s();
    if (g.n_full + g.n_failed >= (uint32_t)g.n) {
      t_all = now;
      break;
    }
    if (now >= deadline)
      break;
  }
  /* The storm ends when the server is quiet: the last ACKs read, nothing
   * of the storm left to leak into the first push or the memory figure. */
  srv_end = srv_wait_quiet(&t_quiet, &quiet);
  self_end = self_sample();
  lat = malloc(((size_t)g.n + 1) * sizeof(double));
  if (lat == NULL)
    abort();
  for (i = 0; i < g.n; i++)
    if (g.px[i].ever_full)
      lat[nl++] = g.px[i].t_full - b.t0;
  qsort(lat, nl, sizeof(double), cmp_double);

  printf("\n[a] connect storm: %d proxies at once (%s ADS), %s\n", g.n,
         g.delta ? "delta" : "SotW", g.label);
  printf("  %-34s %s\n", "all hold a full config after",
         g.n_full == (uint32_t)g.n ? "" : "NOT REACHED");
  if (!isnan(t_all) && g.n_full == (uint32_t)g.n)
    printf("  %-34s %.3f s\n", "  time", t_all - b.t0);
  else
    printf("  %-34s %u of %d hold a full config, %u failed (timeout %d s)\n",
           "  state", g.n_full, g.n, g.n_failed, g.timeout_s);
  printf("  %-34s %.3f s (client side)\n", "channels+streams created in",
         t_created - b.t0);
  if (srv_end.ok)
    printf("  %-34s %.3f s%s\n", "server quiet after", t_quiet - b.t0,
           quiet ? "" : " (NOT quiet: the phase timed out)");
  printf("  %-34s p50 %.3f s, p99 %.3f s, max %.3f s (%zu proxies)\n",
         "per proxy: start -> full config", pct(lat, nl, 0.5),
         pct(lat, nl, 0.99), nl > 0 ? lat[nl - 1] : NAN, nl);
  snprintf(ml, sizeof(ml),
           "FLEET phase=storm label=%s n=%d proxies_full=%u all_full_s=%.3f "
           "p50_s=%.3f p99_s=%.3f max_s=%.3f quiet_s=%.3f quiet=%d",
           g.label, g.n, g.n_full,
           g.n_full == (uint32_t)g.n ? t_all - b.t0 : -1.0, pct(lat, nl, 0.5),
           pct(lat, nl, 0.99), nl > 0 ? lat[nl - 1] : NAN,
           srv_end.ok ? t_quiet - b.t0 : -1.0, quiet);
  print_common(&b, &srv_end, &self_end, ml, sizeof(ml));
  printf("%s\n", ml);
  fflush(stdout);
  free(lat);
  return g.n_full == (uint32_t)g.n ? 0 : -1;
}

void run_step(const struct step *st) {
  struct phase_base b;
  double now, deadline, *lat;
  struct srv_sample srv_end, srv_settled = {0, 0, 0};
  struct self_sample self_end;
  uint32_t changed = 0, exp_changed = 0, unsettled = 0, unexpected = 0;
  uint32_t drained = 0, max_drains = 0;
  uint64_t unexpected_msgs = 0;
  double per;
  char ml[2048], names[512] = "";
  size_t nl = 0, o = 0;
  double t_settled = NAN, t_quiet = NAN;
  int i, done = 0, timed_out = 0, quiet = 0;

  /* The expectation. */
  g.expect_kind = st->expect_kind;
  g.expect_tenant = st->expect_tenant;
  g.expected = 0;
  g.expected_rx = 0;
  for (i = 0; i < g.n; i++)
    if (!g.px[i].failed && expected_proxy(&g.px[i]))
      g.expected++;
  g.t_last_delivery = NAN;
  g.t_last_done = 0;
  g.srv_at_delivery.ok = 0;

  b = phase_begin(); /* server CPU sampled before the write */
  g.gen++;
  g.mark_t0 = b.t0 = now_s();
  if (strncmp(st->src, "cmd:", 4) == 0) {
    /* A change made by a command (e.g. `etcdctl put` for an etcd store);
     * the clock starts when the command starts. */
    int rc = system(st->src + 4);
    if (rc != 0) {
      fprintf(stderr, "loadgen: step %s: \"%s\" failed (%d)\n", st->name,
              st->src + 4, rc);
      return;
    }
  } else if (rename(st->src, st->dst) < 0) {
    fprintf(stderr, "loadgen: step %s: rename %s -> %s: %s\n", st->name,
            st->src, st->dst, strerror(errno));
    return;
  }
  if (st->hup && g_server_pid > 0)
    kill(g_server_pid, SIGHUP);
  if (g.expected == 0) {
    /* Wait for anything at all for a fixed window. */
    g.expected_rx = 0;
  }
  deadline = b.t0 + g.timeout_s;
  for (;;) {
    pump(TICK_MS);
    now = now_s();
    if (g.expected_rx >= g.expected && g.n_full + g.n_failed >= (uint32_t)g.n) {
      /* Server CPU including the ACKs: up to the server's quiet point once
       * every expected proxy has ACKed (for expect=none, once the 3 s
       * window below has passed: the reload must have happened). */
      if (isnan(t_settled) && (g.expected > 0 || now - b.t0 >= 3.0)) {
        srv_settled = srv_wait_quiet(&t_quiet, &quiet);
        now = t_settled = now_s();
      }
      /* quiet: nothing received for quiet_ms, and for expect=none at
       * least 3 s after the write (debounce + reload + push) */
      if (!isnan(t_settled) &&
          now - (g.last_rx > b.t0 ? g.last_rx : b.t0) >= g.quiet_ms / 1000.0) {
        done = 1;
        break;
      }
    } else if (!isnan(t_settled)) {
      t_settled = NAN; /* something more arrived: not settled after all */
      srv_settled.ok = 0;
    }
    if (!isnan(t_settled) && g.last_rx > t_settled) {
      t_settled = NAN; /* a message after the quiet point: measure again */
      srv_settled.ok = 0;
    }
    if (now >= deadline) {
      timed_out = 1;
      break;
    }
  }
  /* The phase's server CPU and RSS are those of its quiet point. */
  srv_end = srv_settled.ok ? srv_settled : srv_sample();
  self_end = self_sample();

  lat = malloc(((size_t)g.n + 1) * sizeof(double));
  if (lat == NULL)
    abort();
  for (i = 0; i < g.n; i++) {
    struct proxy *p = &g.px[i];
    int exp = expected_proxy(p);

    if (p->mark_gen != g.gen)
      continue; /* received nothing since t0 */
    changed++;
    drained += p->mark_drains > 0;
    if (p->mark_drains > max_drains)
      max_drains = p->mark_drains;
    if (exp) {
      exp_changed++;
      if (p->t_done > 0)
        lat[nl++] = p->t_done - b.t0;
      else
        unsettled++;
    } else {
      unexpected++;
      unexpected_msgs += p->mark_msgs;
      if (o < sizeof(names) - 64)
        o += (size_t)snprintf(names + o, sizeof(names) - o,
                              "%sproxy-%05u(t%03u: %u LDS, %u ECDS)",
                              o > 0 ? ", " : "", p->idx, p->tenant, p->mark_lds,
                              p->mark_ecds);
    }
  }
  qsort(lat, nl, sizeof(double), cmp_double);

  printf("\n[%s] %s -> %s, reload by %s, expect %s%s, %s\n", st->name,
         strrchr(st->src, '/') ? strrchr(st->src, '/') + 1 : st->src, st->dst,
         st->hup ? "SIGHUP (no debounce)" : "inotify (debounce)",
         st->expect_kind == 0   ? "all"
         : st->expect_kind == 1 ? "none"
                                : "tenant ",
         "", g.label);
  if (st->expect_kind == 2)
    printf("  %-34s t%03d\n", "expected tenant", st->expect_tenant);
  printf("  %-34s expected %u, changed %u (of them expected %u), "
         "settled %zu, unsettled %u\n",
         "proxies", g.expected, changed, exp_changed, nl, unsettled);
  printf("  %-34s %u proxies, %" PRIu64 " messages%s%s\n",
         "received but not expected to", unexpected, unexpected_msgs,
         unexpected ? ": " : "", names);
  printf("  %-34s p50 %.3f s, p99 %.3f s, max %.3f s\n",
         "change -> ACK of new version", pct(lat, nl, 0.5), pct(lat, nl, 0.99),
         nl > 0 ? lat[nl - 1] : NAN);
  /* Drains: listeners whose config changed under a proxy (Envoy drains
   * each); per proxy over the expected ones (all proxies when none). */
  per = g.expected > 0 ? (double)g.expected : (double)g.n;
  printf("  %-34s %" PRIu64 " (%.2f per proxy, max %u; %u proxies drained)\n",
         "listener drains", g.drains - b.drains,
         (double)(g.drains - b.drains) / per, max_drains, drained);
  printf("  %-34s LDS %.2f, ECDS %.2f messages (%.2f configs)\n", "per proxy",
         (double)(g.msgs_lds - b.lds) / per,
         (double)(g.msgs_ecds - b.ecds) / per,
         (double)(g.ecds_res - b.ecds_res) / per);
  if (!isnan(g.t_last_delivery))
    printf("  %-34s %.3f s\n", "change -> last expected delivery",
           g.t_last_delivery - b.t0);
  if (g.srv_at_delivery.ok && b.srv.ok)
    printf("  %-34s %.2f core-s to the last delivery (reload + send), "
           "%.2f to the server's quiet point (ACKs included)\n",
           "server CPU for the push", g.srv_at_delivery.cpu_s - b.srv.cpu_s,
           (srv_settled.ok ? srv_settled.cpu_s : srv_end.cpu_s) - b.srv.cpu_s);
  if (srv_settled.ok)
    printf("  %-34s %.3f s after the change%s\n", "server quiet",
           t_quiet - b.t0, quiet ? "" : " (NOT quiet: the bound ran out)");
  if (timed_out)
    printf("  %-34s timed out after %d s: %u of %u expected proxies "
           "received anything\n",
           "RESULT", g.timeout_s, g.expected_rx, g.expected);
  o = (size_t)snprintf(
      ml, sizeof(ml),
      "FLEET phase=%s label=%s n=%d trigger=%s expected=%u changed=%u "
      "expected_changed=%u settled=%zu unsettled=%u unexpected=%u "
      "unexpected_msgs=%" PRIu64 " p50_s=%.4f p99_s=%.4f max_s=%.4f "
      "last_delivery_s=%.4f timed_out=%d quiet_s=%.3f quiet=%d drains=%" PRIu64
      " drained_proxies=%u max_drains=%u drains_per_proxy=%.3f "
      "lds_per_proxy=%.3f ecds_per_proxy=%.3f ecds_configs_per_proxy=%.3f",
      st->name, g.label, g.n, st->hup ? "sighup" : "inotify", g.expected,
      changed, exp_changed, nl, unsettled, unexpected, unexpected_msgs,
      pct(lat, nl, 0.5), pct(lat, nl, 0.99), nl > 0 ? lat[nl - 1] : NAN,
      isnan(g.t_last_delivery) ? -1.0 : g.t_last_delivery - b.t0, timed_out,
      srv_settled.ok ? t_quiet - b.t0 : -1.0, srv_settled.ok ? quiet : 0,
      g.drains - b.drains, drained, max_drains,
      (double)(g.drains - b.drains) / per, (double)(g.msgs_lds - b.lds) / per,
      (double)(g.msgs_ecds - b.ecds) / per,
      (double)(g.ecds_res - b.ecds_res) / per);
  if (g.srv_at_delivery.ok && b.srv.ok)
    snprintf(ml + o, sizeof(ml) - o,
             " server_push_send_cpu_s=%.3f server_push_total_cpu_s=%.3f",
             g.srv_at_delivery.cpu_s - b.srv.cpu_s,
             (srv_settled.ok ? srv_settled.cpu_s : srv_end.cpu_s) -
                 b.srv.cpu_s);
  print_common(&b, &srv_end, &self_end, ml, sizeof(ml));
  printf("%s\n", ml);
  fflush(stdout);
  free(lat);
  (void)done;
}

void run_idle(void) {
  struct phase_base b = phase_begin();
  struct srv_sample srv_end;
  struct self_sample self_end;
  char ml[1024];
  double until = b.t0 + g.idle_s;

  g.gen++; /* so messages during idle are attributed to it */
  g.expect_kind = 1;
  g.expected = 0;
  while (now_s() < until)
    pump(TICK_MS * 10);
  srv_end = srv_sample();
  self_end = self_sample();
  printf("\n[e] idle: %d proxies held for %d s, %s\n", g.n, g.idle_s, g.label);
  printf("  %-34s %u of %d\n", "proxies holding a full config", g.n_full, g.n);
  snprintf(ml, sizeof(ml),
           "FLEET phase=idle label=%s n=%d idle_s=%d "
           "proxies_full=%u",
           g.label, g.n, g.idle_s, g.n_full);
  print_common(&b, &srv_end, &self_end, ml, sizeof(ml));
  printf("%s\n", ml);
  fflush(stdout);
}

void teardown(void) {
  double deadline = now_s() + DRAIN_S;
  int i, busy;

  for (i = 0; i < g.n; i++) {
    struct proxy *p = &g.px[i];

    if (p->call != NULL && !p->cancelled) {
      p->cancelled = 1;
      grpc_call_cancel(p->call, NULL);
    }
  }
  do {
    pump(TICK_MS);
    busy = 0;
    for (i = 0; i < g.n && !busy; i++)
      busy = g.px[i].recv_pending || g.px[i].send_pending ||
             g.px[i].status_pending;
  } while (busy && now_s() < deadline);
  if (busy)
    fprintf(stderr,
            "loadgen: teardown: operations still pending after "
            "%.0f s; leaking them\n",
            DRAIN_S);
  for (i = 0; i < g.n; i++) {
    struct proxy *p = &g.px[i];

    if (p->recv_pending || p->send_pending || p->status_pending)
      continue;
    if (p->call != NULL)
      grpc_call_unref(p->call);
    if (p->ch != NULL)
      grpc_channel_destroy(p->ch);
    if (p->recv_bb != NULL)
      grpc_byte_buffer_destroy(p->recv_bb);
    grpc_metadata_array_destroy(&p->imd);
    grpc_metadata_array_destroy(&p->tmd);
    grpc_slice_unref(p->details);
    free_lis(p->lis, p->nlis);
    free(p->want.v);
    free(p->got);
    free(p->sub.v);
    free(p->lds_ver);
    free(p->lds_nonce);
    free(p->ecds_ver);
    free(p->ecds_nonce);
    free(p->lds_err);
    free(p->ecds_err);
  }
  grpc_completion_queue_shutdown(g.cq);
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        g.cq,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(1000, GPR_TIMESPAN)),
        NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_QUEUE_TIMEOUT && now_s() > deadline + 5)
      break;
  }
  grpc_completion_queue_destroy(g.cq);
}
