/*
 * loadgen_sample.c: loadgen run, time, /proc and getrusage samples of the
 * server and of the generator.
 */
#include "loadgen_run.h"

/* Time, /proc, rusage */

double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long g_clk_tck = 100;
int g_server_pid;

struct srv_sample srv_sample(void) {
  struct srv_sample s = {0, 0, 0};
  char path[64], buf[4096], *p;
  unsigned long long ut = 0, st = 0;
  FILE *f;
  size_t n;
  int field;

  if (g_server_pid <= 0)
    return s;
  snprintf(path, sizeof(path), "/proc/%d/stat", g_server_pid);
  f = fopen(path, "r");
  if (f == NULL)
    return s;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');
  if (p == NULL)
    return s;
  /* After ")": field 3 (state) ... utime is field 14, stime 15. */
  p += 2;
  for (field = 3; field < 14 && p != NULL; field++) {
    p = strchr(p, ' ');
    if (p != NULL)
      p++;
  }
  if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2)
    return s;
  s.cpu_s = (double)(ut + st) / (double)g_clk_tck;
  snprintf(path, sizeof(path), "/proc/%d/status", g_server_pid);
  f = fopen(path, "r");
  if (f == NULL)
    return s;
  while (fgets(buf, sizeof(buf), f) != NULL) {
    if (strncmp(buf, "VmRSS:", 6) == 0) {
      s.rss_kib = strtod(buf + 6, NULL);
      break;
    }
  }
  fclose(f);
  s.ok = 1;
  return s;
}

struct self_sample self_sample(void) {
  struct rusage ru;
  struct self_sample s = {0, 0, 0};

  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    s.user_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    s.sys_s = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    s.maxrss_kib = (double)ru.ru_maxrss;
  }
  return s;
}

double self_rss_kib(void) {
  char buf[256];
  double v = 0;
  FILE *f = fopen("/proc/self/status", "r");

  if (f == NULL)
    return 0;
  while (fgets(buf, sizeof(buf), f) != NULL)
    if (strncmp(buf, "VmRSS:", 6) == 0) {
      v = strtod(buf + 6, NULL);
      break;
    }
  fclose(f);
  return v;
}

struct srv_sample srv_wait_quiet(double *t_quiet, int *quiet) {
  double t0 = now_s(), deadline = t0 + g.timeout_s, now;
  struct srv_sample last = srv_sample(), s;

  *t_quiet = t0;
  *quiet = 0;
  if (!last.ok)
    return last;
  for (;;) {
    pump(TICK_MS);
    now = now_s();
    s = srv_sample();
    if (!s.ok)
      return last;
    if (s.cpu_s != last.cpu_s)
      *t_quiet = now;
    last = s;
    if (now - *t_quiet >= QUIET_SETTLE_MS / 1000.0) {
      *quiet = 1;
      return last;
    }
    if (now >= deadline)
      return last;
  }
}
