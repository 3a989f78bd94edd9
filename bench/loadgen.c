/*
 * loadgen.c: the fleet load generator. N simulated Envoys on ADS against a
 * running wasmxds, each on its own gRPC connection, all driven by ONE
 * thread and ONE completion queue.
 *
 *   loadgen run --target HOST:PORT -n N --tenants T [options]
 *   loadgen gen-store --dir DIR --extensions E --tenants T [--churn]
 *                                                       (loadgen_store.c)
 *
 * Files: loadgen.c (options, main), loadgen_sample.c (server and own CPU
 * and RSS), loadgen_ids.c (interned names, id sets, decode cache),
 * loadgen_proxy.c (proxy state, requests), loadgen_response.c (decoding
 * responses), loadgen_stream.c (gRPC operations, the pump),
 * loadgen_phase.c (phases and reports); loadgen_run.h is what they share.
 *
 * Each proxy behaves as Envoy over ADS, state of the world (or delta with
 * --delta): LDS wildcard; decode every Listener and its HTTP connection
 * manager; subscribe ECDS to exactly the names of the HCMs' http_filters
 * that use config_discovery; decode every TypedExtensionConfig (Wasm with
 * its PluginConfig, or the RBAC substitute); ACK after decoding, NACK (with
 * error_detail, keeping the last good version) what it cannot decode; keep
 * the stream open and ACK every later push. A proxy "holds a full config"
 * once it has acknowledged LDS and every ECDS name its listeners reference.
 * With --nack-wave P:PCT, PCT % of the proxies (idx % 100 < PCT) NACK every
 * ECDS push that arrives while they hold a full config during the odd
 * periods of P wall-clock seconds (a wave on, a wave off), keeping their
 * last good version, as Envoy does with a config it cannot load; the soak
 * uses it for NACK storms.
 *
 * Phases, in order:
 *  1. storm: all N channels and streams are created at once; the phase ends
 *     when all N hold a full config (or a stream fails, or --timeout-s).
 *  2. each --step NAME,SRC,DST,EXPECT[,hup]: t0 is taken, SRC is renamed
 *     over DST (one atomic store write; the server's inotify watcher
 *     reloads after its debounce), and with "hup" the server is sent
 *     SIGHUP at once (a reload without the debounce). EXPECT says which
 *     proxies should change: all, none, or tenant=tNNN. The step ends when
 *     every expected proxy has received something since t0 and no message
 *     has arrived for --quiet-ms. Per proxy, the latency is t0 -> the last
 *     request (ACK) it sent after receiving the change, once it again holds
 *     a full config. Proxies that were not expected to change but received
 *     anything are counted and named. Per step it also counts, per proxy,
 *     LDS and ECDS messages, ECDS configs, and drains: each listener a
 *     proxy held whose bytes changed (or that was removed), as Envoy
 *     drains a listener whose config changed.
 *  3. --idle-s S: nothing changes for S seconds; messages received, server
 *     CPU and RSS are reported.
 * Then every call is cancelled, drained (bounded), and the process exits.
 *
 * Decoding: each distinct resource (equal bytes) is decoded once and the
 * result reused by every proxy receiving the same bytes (a proxy class gets
 * identical listeners), which keeps the generator's CPU off the server's
 * cores; --no-decode-cache decodes every copy, as N real Envoys would.
 *
 * With --server-pid, the server's RSS (VmRSS of /proc/PID/status) and CPU
 * seconds (utime + stime of /proc/PID/stat, all its threads) are sampled at
 * the phase boundaries; the generator's own CPU is from getrusage().
 *
 * Output: a table per phase on stdout, and one machine-readable line per
 * phase starting with "FLEET " (key=value pairs).
 */
#include "bench/bench_args.h"
#include "loadgen_run.h"

struct lg_state g;

/* Options */

static int parse_step(const char *arg, struct step *st) {
  char buf[4096], *f[5], *save = NULL, *tok;
  int n = 0;

  memset(st, 0, sizeof(*st));
  snprintf(buf, sizeof(buf), "%s", arg);
  for (tok = strtok_r(buf, ",", &save); tok != NULL && n < 5;
       tok = strtok_r(NULL, ",", &save))
    f[n++] = tok;
  if (n < 4)
    return -1;
  snprintf(st->name, sizeof(st->name), "%s", f[0]);
  snprintf(st->src, sizeof(st->src), "%s", f[1]);
  snprintf(st->dst, sizeof(st->dst), "%s", f[2]);
  if (strcmp(f[3], "all") == 0)
    st->expect_kind = 0;
  else if (strcmp(f[3], "none") == 0)
    st->expect_kind = 1;
  else if (sscanf(f[3], "tenant=t%d", &st->expect_tenant) == 1)
    st->expect_kind = 2;
  else
    return -1;
  if (n == 5) {
    if (strcmp(f[4], "hup") == 0)
      st->hup = 1;
    else if (strcmp(f[4], "inotify") != 0)
      return -1;
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen run --target HOST:PORT -n N --tenants T [OPTION]...\n"
          "       loadgen gen-store --dir DIR --extensions E --tenants T "
          "[--churn]\n"
          "run options:\n"
          "  --org ORG            organization (default %s)\n"
          "  --gateway-every K    every K-th proxy is a GATEWAY (default 10)\n"
          "  --delta              delta ADS instead of state of the world\n"
          "  --server-pid PID     sample the server's RSS and CPU in /proc\n"
          "  --step NAME,SRC,DST,EXPECT[,hup]   a change (repeatable, in "
          "order);\n"
          "                       SRC cmd:COMMAND runs COMMAND instead of "
          "renaming\n"
          "                       SRC over DST (no commas in it)\n"
          "                       EXPECT: all | none | tenant=tNNN\n"
          "  --idle-s S           hold the fleet idle S seconds at the end\n"
          "  --quiet-ms MS        a step ends after MS without a message "
          "(2000)\n"
          "  --timeout-s S        bound on each phase (60)\n"
          "  --label TEXT         copied into the report\n"
          "  --nack-wave P:PCT    NACK waves: in every odd period of P "
          "seconds of the\n"
          "                       wall clock, PCT %% of the proxies NACK "
          "each ECDS push\n"
          "                       once they hold a full config (keeping "
          "their last good)\n"
          "  --no-decode-cache    decode every copy of a resource (default: "
          "each\n"
          "                       distinct resource is decoded once, equal "
          "bytes reuse it)\n",
          LOADGEN_DEFAULT_ORG);
}

static int run_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"target", required_argument, NULL, 'T'},
      {"n", required_argument, NULL, 'n'},
      {"tenants", required_argument, NULL, 't'},
      {"org", required_argument, NULL, 'o'},
      {"gateway-every", required_argument, NULL, 'G'},
      {"delta", no_argument, NULL, 'D'},
      {"server-pid", required_argument, NULL, 'P'},
      {"step", required_argument, NULL, 'S'},
      {"idle-s", required_argument, NULL, 'I'},
      {"quiet-ms", required_argument, NULL, 'Q'},
      {"timeout-s", required_argument, NULL, 'W'},
      {"label", required_argument, NULL, 'L'},
      {"no-decode-cache", no_argument, NULL, 'C'},
      {"nack-wave", required_argument, NULL, 'N'},
      {NULL, 0, NULL, 0}};
  grpc_channel_credentials *creds;
  char target[512];
  struct rlimit rl;
  int c, i, rc;

  g.org = LOADGEN_DEFAULT_ORG;
  g.gateway_every = 10;
  g.quiet_ms = 2000;
  g.timeout_s = 60;
  g.label = "-";
  optind = 1;
  while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
    switch (c) {
    case 'T':
      g.target = optarg;
      break;
    case 'n':
      g.n = bench_arg_int("loadgen", "-n", optarg);
      break;
    case 't':
      g.tenants = bench_arg_int("loadgen", "--tenants", optarg);
      break;
    case 'o':
      g.org = optarg;
      break;
    case 'G':
      g.gateway_every = bench_arg_int("loadgen", "--gateway-every", optarg);
      break;
    case 'D':
      g.delta = 1;
      break;
    case 'P':
      g_server_pid = bench_arg_int("loadgen", "--server-pid", optarg);
      break;
    case 'S':
      if (g.nsteps >= MAX_STEPS || parse_step(optarg, &g.steps[g.nsteps]) < 0) {
        fprintf(stderr, "loadgen: bad --step %s\n", optarg);
        return 2;
      }
      g.nsteps++;
      break;
    case 'I':
      g.idle_s = bench_arg_int("loadgen", "--idle-s", optarg);
      break;
    case 'Q':
      g.quiet_ms = bench_arg_int("loadgen", "--quiet-ms", optarg);
      break;
    case 'W':
      g.timeout_s = bench_arg_int("loadgen", "--timeout-s", optarg);
      break;
    case 'L':
      g.label = optarg;
      break;
    case 'C':
      g_dc_off = 1;
      break;
    case 'N':
      if (sscanf(optarg, "%d:%d", &g.wave_period_s, &g.wave_percent) != 2 ||
          g.wave_period_s < 1 || g.wave_percent < 0 || g.wave_percent > 100) {
        fprintf(stderr, "loadgen: bad --nack-wave %s (PERIOD_S:PERCENT)\n",
                optarg);
        return 2;
      }
      break;
    default:
      usage();
      return 2;
    }
  }
  if (g.target == NULL || g.n < 1 || g.n > MAX_PROXIES || g.tenants < 1 ||
      g.tenants > 65535 || g.gateway_every < 1 || g.quiet_ms < 0 ||
      g.timeout_s < 1 || g.idle_s < 0) {
    usage();
    return 2;
  }
  /* The sockaddr resolver for a literal address: no DNS per channel. */
  if (strchr(g.target, ':') != NULL && strncmp(g.target, "ipv4:", 5) != 0 &&
      strncmp(g.target, "ipv6:", 5) != 0 && strncmp(g.target, "dns:", 4) != 0 &&
      g.target[0] >= '0' && g.target[0] <= '9')
    snprintf(target, sizeof(target), "ipv4:%s", g.target);
  else
    snprintf(target, sizeof(target), "%s", g.target);
  g.target = target;

  /* One descriptor per connection plus gRPC's own. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t need = (rlim_t)g.n + 256;

    if (rl.rlim_cur < need) {
      rl.rlim_cur = need <= rl.rlim_max ? need : rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)g.n + 64) {
      fprintf(stderr,
              "loadgen: RLIMIT_NOFILE is %llu, %d proxies need "
              "about %d (raise the hard limit)\n",
              (unsigned long long)rl.rlim_cur, g.n, g.n + 256);
      return 1;
    }
  }
  g_clk_tck = sysconf(_SC_CLK_TCK);
  if (g_clk_tck <= 0)
    g_clk_tck = 100;
  signal(SIGPIPE, SIG_IGN);

  /* Client tuning as perf-notes.md: smaller idle read buffers. */
  setenv("GRPC_EXPERIMENTS", "-tcp_read_chunks", 0);
  if (_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE)
    _ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(0);
  if (intern_init() < 0)
    return 1;
  if (!g_dc_off && (g_dc = calloc(DC_SLOTS, sizeof(*g_dc))) == NULL)
    return 1;
  g.px = calloc((size_t)g.n, sizeof(*g.px));
  if (g.px == NULL)
    return 1;
  for (i = 0; i < g.n; i++) {
    g.px[i].idx = (uint32_t)i;
    g.px[i].tenant = (uint16_t)(i % g.tenants);
    g.px[i].gateway = i % g.gateway_every == g.gateway_every - 1;
  }

  grpc_init();
  g.cq = grpc_completion_queue_create_for_next(NULL);
  g.method =
      grpc_slice_from_static_string(g.delta ? METHOD_DELTA_ADS : METHOD_ADS);
  channel_args_init();
  creds = grpc_insecure_credentials_create();

  {
    struct srv_sample s = srv_sample();
    g_srv_baseline_kib = s.ok ? s.rss_kib : 0;
  }
  printf("loadgen: %d proxies (%d tenants of %s, every %d-th a GATEWAY, "
         "labels app=app-<i%%%d>), %s ADS, target %s, one thread, one "
         "completion queue\n",
         g.n, g.tenants, g.org, g.gateway_every, LOADGEN_APPS,
         g.delta ? "delta" : "SotW", g.target);
  printf("loadgen: NOTE the generator and the server share this machine's "
         "%ld cores: the figures include that contention\n",
         sysconf(_SC_NPROCESSORS_ONLN));
  if (g_server_pid > 0)
    printf("loadgen: server pid %d, RSS with 0 proxies (baseline) %.1f MiB\n",
           g_server_pid, g_srv_baseline_kib / 1024.0);
  fflush(stdout);

  rc = run_storm(creds);
  if (rc == 0) {
    for (i = 0; i < g.nsteps; i++)
      run_step(&g.steps[i]);
    if (g.idle_s > 0)
      run_idle();
  } else {
    fprintf(stderr, "loadgen: the storm did not complete; skipping the "
                    "later phases\n");
  }
  {
    double t = now_s();

    teardown();
    printf("loadgen: teardown of %d streams in %.2f s; total generator CPU "
           "%.2f s; decode cache %s: %" PRIu64 " hits, %" PRIu64
           " distinct resources decoded\n",
           g.n, now_s() - t, self_sample().user_s + self_sample().sys_s,
           g_dc_off ? "off" : "on", g_dc_hits, g_dc_misses);
    if (g.wave_period_s > 0)
      printf("loadgen: NACK waves (%d s, %d %%): %" PRIu64
             " ECDS pushes NACKed on purpose\n",
             g.wave_period_s, g.wave_percent, g.wave_nacks);
  }
  grpc_channel_credentials_release(creds);
  grpc_shutdown();
  free(g.px);
  free(g_chargs);
  dc_free();
  intern_free();
  return rc == 0 && g.n_failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "gen-store") == 0)
    return loadgen_gen_store_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "run") == 0)
    return run_main(argc - 1, argv + 1);
  usage();
  return 2;
}
