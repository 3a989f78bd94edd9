# bench/: figures, not tests. `make bench` builds and runs every benchmark
# in turn; `make bench-store`, `bench-compose`, `bench-modules`,
# `bench-etcd` run one.
# None is part of `make check` (EXTRA_PROGRAMS are built only on demand).
# Arguments: BENCH_ARGS, passed to the one benchmark run.

EXTRA_PROGRAMS = bench/store_bench bench/compose_bench bench/modules_bench \
	bench/etcd_bench bench/churn_bench bench/ack_bench
bench_ack_bench_SOURCES = bench/ack_bench.c bench/bench_node.c bench/bench_node.h
bench_ack_bench_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS)
bench_ack_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
bench_churn_bench_SOURCES = bench/churn_bench.c
bench_churn_bench_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS)
bench_churn_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
bench_store_bench_SOURCES = bench/store_bench.c
bench_store_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
bench_compose_bench_SOURCES = bench/compose_bench.c
bench_compose_bench_CFLAGS = $(AM_CFLAGS) $(GRPC_CFLAGS) $(PROTOBUFC_CFLAGS)
bench_compose_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
bench_modules_bench_SOURCES = bench/modules_bench.c \
	tests/helpers/modtest.c tests/helpers/modtest.h
bench_modules_bench_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
bench_modules_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
bench_etcd_bench_SOURCES = bench/etcd_bench.c
bench_etcd_bench_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
bench_etcd_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
CLEANFILES += bench/store_bench bench/compose_bench bench/modules_bench \
	bench/etcd_bench bench/churn_bench bench/ack_bench

.PHONY: bench bench-store bench-compose bench-modules bench-etcd bench-churn \
	bench-ack bench-ack-callgrind
# The server core's cost per ACK (issue 20 item 1), offline: CPU time per
# ACK, SotW and delta; bench-ack-callgrind counts instructions per ACK
# (load-independent) with callgrind. BENCH_ARGS adds options to each run.
ACK_BENCH_RUNS = "" "--node-every" "--push lds" "--delta" \
	"--delta --node-every"
bench-ack: bench/ack_bench$(EXEEXT)
	@for a in $(ACK_BENCH_RUNS); do \
	  ./bench/ack_bench$(EXEEXT) $$a $(BENCH_ARGS) || exit 1; done
bench-ack-callgrind: bench/ack_bench$(EXEEXT)
	@for a in $(ACK_BENCH_RUNS); do \
	  $(srcdir)/bench/ack_callgrind.sh ./bench/ack_bench$(EXEEXT) \
	    $$a $(BENCH_ARGS) || exit 1; done
# Plugin churn with and without --ecds-slots (issue 19): drains per proxy.
# BENCH_ARGS="--proxies 2000 --slots 8" for another size.
bench-churn: bench/churn_bench$(EXEEXT)
	./bench/churn_bench$(EXEEXT) $(BENCH_ARGS)
bench-etcd: bench/etcd_bench$(EXEEXT)
	./bench/etcd_bench$(EXEEXT) $(BENCH_ARGS)
bench-store: bench/store_bench$(EXEEXT)
	./bench/store_bench$(EXEEXT) $(BENCH_ARGS)
bench-compose: bench/compose_bench$(EXEEXT)
	./bench/compose_bench$(EXEEXT) $(BENCH_ARGS)
bench-modules: bench/modules_bench$(EXEEXT)
	./bench/modules_bench$(EXEEXT) $(BENCH_ARGS)
bench: bench/store_bench$(EXEEXT) bench/compose_bench$(EXEEXT) \
	bench/modules_bench$(EXEEXT) bench/etcd_bench$(EXEEXT) \
	bench/churn_bench$(EXEEXT)
	./bench/store_bench$(EXEEXT)
	./bench/churn_bench$(EXEEXT)
	./bench/compose_bench$(EXEEXT)
	./bench/modules_bench$(EXEEXT)
	./bench/etcd_bench$(EXEEXT)


# The fleet benchmark (issue 8): bench/loadgen simulates N Envoys on ADS
# (one connection each) against a real wasmxds; bench/fleet.sh runs the
# scenarios (connect storm, one-extension push, one-tenant push, allowedIn
# move, idle) and prints a table per scenario.
#   make bench-fleet                     the full runs: N=1,000 and 10,000,
#                                        stores 100x50 and 1000x200, 60 s idle
#   make bench-fleet FLEET_SIZES="2000" FLEET_STORES="100x50" FLEET_IDLE=10
#   FLEET_ARGS="--delta" adds options to every loadgen run.
#   FLEET_THREADS ("1 default"): scenarios (a)-(e) once per server thread
#   count, "default" being the server's own (the online CPUs, up to 16),
#   so 1 vs N threads are side by side; FLEET_THREADS=default runs once.
#   FLEET_CHURN_SIZES (10000; bench-fleet-quick: 1000): the plugin churn
#   scenario (issue 19) at these sizes, slots off and --ecds-slots
#   FLEET_CHURN_SLOTS (8), on the FLEET_CHURN_STORE (100x50) store;
#   `make bench-fleet-churn` runs it alone.
# `make bench` runs FLEET_QUICK_*: N=1,000 and 10,000, 10 s idle (the
# issue 20 figures), the churn at 1,000.
EXTRA_PROGRAMS += bench/loadgen
bench_loadgen_SOURCES = bench/loadgen.c bench/loadgen_store.c bench/loadgen.h \
	bench/loadgen_run.h bench/loadgen_sample.c bench/loadgen_ids.c \
	bench/loadgen_proxy.c bench/loadgen_response.c bench/loadgen_stream.c \
	bench/loadgen_phase.c bench/bench_args.h bench/bench_node.c bench/bench_node.h
bench_loadgen_CFLAGS = $(AM_CFLAGS) $(GRPC_CFLAGS) $(PROTOBUFC_CFLAGS)
bench_loadgen_LDADD = libxdsproto.a $(GRPC_LIBS) $(PROTOBUFC_LIBS) -lm
CLEANFILES += bench/loadgen
EXTRA_DIST += bench/fleet.sh bench/ack_callgrind.sh

FLEET_SIZES = 1000 10000
FLEET_STORES = 100x50 1000x200
FLEET_IDLE = 60
FLEET_QUICK_SIZES = 1000 10000
FLEET_QUICK_STORES = 100x50 1000x200
FLEET_QUICK_IDLE = 10
FLEET_ARGS =
FLEET_THREADS = 1 default
FLEET_CHURN_SIZES = 10000
FLEET_QUICK_CHURN_SIZES = 1000
FLEET_CHURN_SLOTS = 8
FLEET_CHURN_STORE = 100x50

.PHONY: bench-fleet bench-fleet-quick bench-fleet-churn
bench-fleet: wasmxds$(EXEEXT) bench/loadgen$(EXEEXT)
	$(SHELL) $(srcdir)/bench/fleet.sh --wasmxds ./wasmxds$(EXEEXT) \
	  --loadgen ./bench/loadgen$(EXEEXT) --sizes "$(FLEET_SIZES)" \
	  --stores "$(FLEET_STORES)" --idle $(FLEET_IDLE) \
	  --churn-sizes "$(FLEET_CHURN_SIZES)" --churn-slots $(FLEET_CHURN_SLOTS) \
	  --churn-store $(FLEET_CHURN_STORE) --threads "$(FLEET_THREADS)" \
	  $(FLEET_ARGS)
bench-fleet-quick: wasmxds$(EXEEXT) bench/loadgen$(EXEEXT)
	$(SHELL) $(srcdir)/bench/fleet.sh --wasmxds ./wasmxds$(EXEEXT) \
	  --loadgen ./bench/loadgen$(EXEEXT) --sizes "$(FLEET_QUICK_SIZES)" \
	  --stores "$(FLEET_QUICK_STORES)" --idle $(FLEET_QUICK_IDLE) \
	  --churn-sizes "$(FLEET_QUICK_CHURN_SIZES)" \
	  --churn-slots $(FLEET_CHURN_SLOTS) --churn-store $(FLEET_CHURN_STORE) \
	  --threads "$(FLEET_THREADS)" $(FLEET_ARGS)
bench-fleet-churn: wasmxds$(EXEEXT) bench/loadgen$(EXEEXT)
	$(SHELL) $(srcdir)/bench/fleet.sh --wasmxds ./wasmxds$(EXEEXT) \
	  --loadgen ./bench/loadgen$(EXEEXT) --stores "" \
	  --churn-sizes "$(FLEET_CHURN_SIZES)" --churn-slots $(FLEET_CHURN_SLOTS) \
	  --churn-store $(FLEET_CHURN_STORE) $(FLEET_ARGS)
bench: bench-fleet-quick bench-ack

# The soak (README, "Building and testing"; not in CI): bench/soak.sh
# churns proxies (with NACK waves), store changes and module versions
# (pulled from a loopback origin, evicted from a bounded cache) against a
# file-store and an etcd-store server for SOAK_MINUTES, printing RSS,
# descriptors, CPU, pulls, evictions and NACKs each minute; SOAK_ARGS
# passes more options (bench/soak.sh's header lists them).
SOAK_MINUTES = 60
SOAK_PROXIES = 2000
SOAK_HOLD = 20
SOAK_ARGS =
EXTRA_DIST += bench/soak.sh
.PHONY: soak
soak: wasmxds wasmxdsctl bench/loadgen
	$(SHELL) $(srcdir)/bench/soak.sh --wasmxds ./wasmxds \
	  --wasmxdsctl ./wasmxdsctl --loadgen bench/loadgen \
	  --minutes $(SOAK_MINUTES) --proxies $(SOAK_PROXIES) --hold $(SOAK_HOLD) \
	  $(SOAK_ARGS)
