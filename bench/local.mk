# bench/: figures, not tests. `make bench` builds and runs every benchmark
# in turn; `make bench-store`, `bench-compose`, `bench-modules`,
# `bench-etcd` run one.
# None is part of `make check` (EXTRA_PROGRAMS are built only on demand).
# Arguments: BENCH_ARGS, passed to the one benchmark run.

EXTRA_PROGRAMS = bench/store_bench bench/compose_bench bench/modules_bench \
	bench/etcd_bench
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
	bench/etcd_bench

.PHONY: bench bench-store bench-compose bench-modules bench-etcd
bench-etcd: bench/etcd_bench$(EXEEXT)
	./bench/etcd_bench$(EXEEXT) $(BENCH_ARGS)
bench-store: bench/store_bench$(EXEEXT)
	./bench/store_bench$(EXEEXT) $(BENCH_ARGS)
bench-compose: bench/compose_bench$(EXEEXT)
	./bench/compose_bench$(EXEEXT) $(BENCH_ARGS)
bench-modules: bench/modules_bench$(EXEEXT)
	./bench/modules_bench$(EXEEXT) $(BENCH_ARGS)
bench: bench/store_bench$(EXEEXT) bench/compose_bench$(EXEEXT) \
	bench/modules_bench$(EXEEXT) bench/etcd_bench$(EXEEXT)
	./bench/store_bench$(EXEEXT)
	./bench/compose_bench$(EXEEXT)
	./bench/modules_bench$(EXEEXT)
	./bench/etcd_bench$(EXEEXT)

