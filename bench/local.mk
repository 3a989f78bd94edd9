# bench/: figures, not tests. `make bench` builds and runs each benchmark;
# none of them is part of `make check` (EXTRA_PROGRAMS are built only on
# demand).

EXTRA_PROGRAMS = bench/store_bench
bench_store_bench_SOURCES = bench/store_bench.c
bench_store_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
CLEANFILES += bench/store_bench

.PHONY: bench
bench: bench/store_bench$(EXEEXT)
	./bench/store_bench$(EXEEXT)
