# modules/: Wasm module sources (OCI registries, HTTP), verification, the
# on-disk content-addressed cache, the background resolver, and the HTTP
# handler that serves cached modules through server/admin. Uses server/base,
# store/model.h (records only), libcurl, OpenSSL, jansson and zlib; never
# gRPC or protobuf.

noinst_LIBRARIES += libxdsmodules.a
libxdsmodules_a_SOURCES = \
	modules/digest.c modules/digest.h \
	modules/unpack.c modules/unpack.h \
	modules/fetch.c modules/fetch.h \
	modules/creds.c modules/creds.h \
	modules/oci.c modules/oci.h \
	modules/cache.c modules/cache.h \
	modules/resolver.c modules/resolver.h \
	modules/serve.c modules/serve.h
libxdsmodules_a_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(OPENSSL_CFLAGS) \
	$(JANSSON_CFLAGS) $(ZLIB_CFLAGS)

EXTRA_DIST += modules/README-modules.md

# A benchmark, not a test: `make bench-modules` serves one cached 2 MiB
# module to 200 concurrent fetchers and prints throughput and latency.
# (Listed in check_PROGRAMS only so automake knows it, as bench/local.mk,
# included later, owns EXTRA_PROGRAMS; it is not in TESTS.)
check_PROGRAMS += bench/modules_bench
bench_modules_bench_SOURCES = bench/modules_bench.c \
	tests/helpers/modtest.c tests/helpers/modtest.h
bench_modules_bench_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
bench_modules_bench_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
CLEANFILES += bench/modules_bench
bench-modules: bench/modules_bench$(EXEEXT)
	./bench/modules_bench $(BENCH_ARGS)
.PHONY: bench-modules
