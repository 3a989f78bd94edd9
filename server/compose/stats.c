/*
 * stats.c: counters and their Prometheus exposition.
 */
#include "server/compose/stats.h"

#include "server/compose/snapshot.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/build_info.h"
#include "server/compose/delivery.h"

/* Upper bounds of the histogram buckets, seconds. */
static const double bounds[STATS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

static const char *const stream_labels[STATS_STREAM_KINDS] = {
    "service=\"ads\",protocol=\"sotw\"",
    "service=\"ads\",protocol=\"delta\"",
    "service=\"lds\",protocol=\"sotw\"",
    "service=\"lds\",protocol=\"delta\"",
    "service=\"ecds\",protocol=\"sotw\"",
    "service=\"ecds\",protocol=\"delta\""};
static const char *const type_labels[STATS_TYPES] = {"LDS", "ECDS", "other"};

/* Bytes of one /metrics answer at most. */
#define STATS_BODY_MAX (64 * 1024)

void stats_init(struct xds_stats *st) {
  memset(st, 0, sizeof(*st));
}

void stats_observe(struct stats_hist *h, double seconds) {
  int i = 0;

  while (i < STATS_BUCKETS && seconds > bounds[i])
    i++;
  atomic_fetch_add(&h->buckets[i], 1);
  atomic_fetch_add(&h->count, 1);
  atomic_fetch_add(&h->sum_us,
                   (unsigned long long)(seconds > 0 ? seconds * 1e6 : 0));
}

static void put_hist(struct xds_buf *b, const char *name, const char *help,
                     struct stats_hist *h) {
  unsigned long cum = 0;

  xds_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  for (int i = 0; i < STATS_BUCKETS; i++) {
    cum += atomic_load(&h->buckets[i]);
    xds_buf_printf(b, "%s_bucket{le=\"%g\"} %lu\n", name, bounds[i], cum);
  }
  cum += atomic_load(&h->buckets[STATS_BUCKETS]);
  xds_buf_printf(b, "%s_bucket{le=\"+Inf\"} %lu\n", name, cum);
  xds_buf_printf(b, "%s_sum %.6f\n%s_count %lu\n", name,
                 (double)atomic_load(&h->sum_us) / 1e6, name,
                 atomic_load(&h->count));
}

static void put_counter(struct xds_buf *b, const char *name, const char *help,
                        const char *type, unsigned long v) {
  xds_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name,
                 type, name, v);
}

static void put_typed(struct xds_buf *b, const char *name, const char *help,
                      atomic_ulong *v) {
  xds_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (int i = 0; i < STATS_TYPES; i++)
    xds_buf_printf(b, "%s{type=\"%s\"} %lu\n", name, type_labels[i],
                   atomic_load(&v[i]));
}

static const char *const sync_labels[STATS_SYNC_STATES] = {"synced", "not_sent",
                                                           "stale", "nacked"};

/* Seconds since the epoch at which the machine booted (/proc/stat btime),
 * or 0. */
static double boot_time(void) {
  FILE *f = fopen("/proc/stat", "r");
  char line[256];
  double bt = 0;

  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "btime ", 6) == 0) {
      bt = strtod(line + 6, NULL);
      break;
    }
  if (f != NULL)
    fclose(f);
  return bt;
}

/* The process_* metrics of the Prometheus client conventions, from
 * /proc/self: CPU seconds, resident memory, open and maximum file
 * descriptors, start time. Left out when /proc cannot be read. */
static void put_process(struct xds_buf *b) {
  char buf[1024], *p;
  unsigned long utime, stime;
  unsigned long long start;
  long rss_pages, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/stat", "r");
  size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
  DIR *d;
  struct dirent *de;
  long fds = 0;

  if (f != NULL)
    fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which may hold spaces: state is 3. */
  p = strrchr(buf, ')');
  if (p != NULL && ticks > 0 &&
      sscanf(p + 2,
             "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d "
             "%*d %*d %*d %*d %llu %*u %ld",
             &utime, &stime, &start, &rss_pages) == 4) {
    xds_buf_printf(b,
                   "# HELP process_cpu_seconds_total User and system CPU "
                   "time spent, in seconds.\n"
                   "# TYPE process_cpu_seconds_total counter\n"
                   "process_cpu_seconds_total %.2f\n",
                   (double)(utime + stime) / (double)ticks);
    xds_buf_printf(b,
                   "# HELP process_resident_memory_bytes Resident memory "
                   "size in bytes.\n"
                   "# TYPE process_resident_memory_bytes gauge\n"
                   "process_resident_memory_bytes %ld\n",
                   rss_pages * page);
    xds_buf_printf(b,
                   "# HELP process_start_time_seconds Start time of the "
                   "process since the epoch, in seconds.\n"
                   "# TYPE process_start_time_seconds gauge\n"
                   "process_start_time_seconds %.2f\n",
                   boot_time() + (double)start / (double)ticks);
  }
  d = opendir("/proc/self/fd");
  if (d != NULL) {
    while ((de = readdir(d)) != NULL)
      if (de->d_name[0] != '.')
        fds++;
    closedir(d);
    xds_buf_printf(b,
                   "# HELP process_open_fds Number of open file "
                   "descriptors.\n# TYPE process_open_fds gauge\n"
                   "process_open_fds %ld\n",
                   fds - 1 /* the directory's own */);
  }
  xds_buf_printf(b,
                 "# HELP process_max_fds Maximum number of open file "
                 "descriptors.\n# TYPE process_max_fds gauge\n"
                 "process_max_fds %ld\n",
                 sysconf(_SC_OPEN_MAX));
}

int stats_handle(void *arg, const struct admin_req *req,
                 struct admin_resp *resp) {
  struct xds_stats *st = arg;
  struct xds_buf b;

  (void)req;
  xds_buf_init(&b, STATS_BODY_MAX);
  xds_buf_puts(&b, "# HELP wasmxds_streams Open xDS streams by service and "
                   "protocol.\n# TYPE wasmxds_streams gauge\n");
  for (int i = 0; i < STATS_STREAM_KINDS; i++)
    xds_buf_printf(&b, "wasmxds_streams{%s} %ld\n", stream_labels[i],
                   atomic_load(&st->streams[i]));
  put_counter(&b, "wasmxds_proxies", "Connected proxies (streams with a node).",
              "gauge", (unsigned long)atomic_load(&st->proxies));
  put_typed(&b, "wasmxds_responses_total", "Responses (pushes) sent.",
            st->responses);
  put_typed(&b, "wasmxds_resources_sent_total", "Resources sent.",
            st->resources_sent);
  put_typed(&b, "wasmxds_acks_total", "ACKs received.", st->acks);
  put_typed(&b, "wasmxds_nacks_total", "NACKs received.", st->nacks);
  put_counter(&b, "wasmxds_refused_streams_total",
              "Streams refused (limits, identity, certificates).", "counter",
              atomic_load(&st->refused_streams));
  put_counter(&b, "wasmxds_refused_names_total",
              "ECDS names refused to a proxy that may not have them.",
              "counter", atomic_load(&st->refused_names));
  put_counter(&b, "wasmxds_log_lines_suppressed_total",
              "Log lines about one proxy's events (NACKs, refused names, "
              "unserved types) left out by the per-proxy rate limit.",
              "counter", atomic_load(&st->log_suppressed));
  put_counter(&b, "wasmxds_snapshots_total", "Snapshots published.", "counter",
              atomic_load(&st->snapshots));
  put_counter(&b, "wasmxds_class_encodings_built_total",
              "Proxy-class views encoded.", "counter",
              atomic_load(&st->class_builds));
  put_counter(&b, "wasmxds_class_encodings_reused_total",
              "Proxy-class views shared by another proxy of the class.",
              "counter", atomic_load(&st->class_reuses));
  put_counter(&b, "wasmxds_store_reloads_total",
              "Catalogs delivered by the store.", "counter",
              atomic_load(&st->store_reloads));
  put_counter(&b, "wasmxds_store_errors_total",
              "Errors (rejected documents) in those loads.", "counter",
              atomic_load(&st->store_errors));
  put_counter(&b, "wasmxds_store_removals_held_total",
              "Store changes held because they removed every listener "
              "template or more than --max-removal-share of the resources.",
              "counter", atomic_load(&st->store_holds));
  put_counter(&b, "wasmxds_store_removal_held",
              "1 while such a change is held (the previous catalog is "
              "served) and waits for POST /store/confirm-removal.",
              "gauge", (unsigned long)atomic_load(&st->store_held));

  xds_buf_puts(&b, "# HELP wasmxds_extensions Extensions of the served "
                   "snapshot by what they are served as (their Wasm filter, "
                   "or the RBAC substitute of their fail strategy).\n"
                   "# TYPE wasmxds_extensions gauge\n");
  for (int i = 0; i < STATS_SERVED_AS; i++)
    xds_buf_printf(&b, "wasmxds_extensions{served_as=\"%s\"} %ld\n",
                   served_as_label((enum served_as)i),
                   atomic_load(&st->extensions_served[i]));
  put_counter(&b, "wasmxds_store_errors",
              "Errors (rejected documents) in the store's last load.", "gauge",
              (unsigned long)atomic_load(&st->store_errors_now));
  put_counter(&b, "wasmxds_store_degraded",
              "1 while the store is degraded (etcd unreachable or its watch "
              "down, a removal held): the last good catalog is served.",
              "gauge", (unsigned long)atomic_load(&st->store_degraded));
  xds_buf_printf(&b,
                 "# HELP wasmxds_store_revision The etcd revision the served "
                 "catalog reflects (0 with a file store).\n"
                 "# TYPE wasmxds_store_revision gauge\n"
                 "wasmxds_store_revision %lld\n",
                 (long long)atomic_load(&st->store_revision));
  xds_buf_puts(&b, "# HELP wasmxds_proxies_by_state Connected proxies by "
                   "sync state (their worst resource).\n"
                   "# TYPE wasmxds_proxies_by_state gauge\n");
  for (int i = 0; i < STATS_SYNC_STATES; i++)
    xds_buf_printf(&b, "wasmxds_proxies_by_state{state=\"%s\"} %ld\n",
                   sync_labels[i], atomic_load(&st->proxies_by_state[i]));
  if (st->delivery != NULL)
    delivery_metrics(st->delivery, &b);
  xds_buf_printf(&b,
                 "# HELP wasmxds_build_info The running build.\n"
                 "# TYPE wasmxds_build_info gauge\n"
                 "wasmxds_build_info{version=\"%s\",commit=\"%s\"} 1\n",
                 xds_build_version(), xds_build_commit());
  put_process(&b);
  put_hist(&b, "wasmxds_push_latency_seconds",
           "From a snapshot's publication to a response it caused being sent.",
           &st->push_latency);
  put_hist(&b, "wasmxds_snapshot_build_seconds", "Time to build a snapshot.",
           &st->snapshot_build);
  if (b.data == NULL) {
    xds_buf_cleanup(&b);
    return XDS_ENOMEM;
  }
  resp->body = xds_buf_steal(&b, &resp->body_len);
  resp->status = 200;
  snprintf(resp->content_type, sizeof(resp->content_type),
           "text/plain; version=0.0.4");
  return 0;
}
