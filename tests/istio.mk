# Issue 15: Istio's WasmPlugin as input and Istio-bootstrapped Envoys as
# clients. Offline: the store, identity and composition of WasmPlugins.
check_PROGRAMS += tests/check_istio
tests_check_istio_SOURCES = tests/check_istio.c tests/check_istio.h \
	tests/check_istio_identity.c tests/check_istio_decode.c \
	tests/check_istio_store.c tests/check_istio_etcd.c \
	tests/check_istio_oci.c tests/storekit.c tests/storekit.h \
	tests/helpers/modtest.c tests/helpers/modtest.h \
	tests/helpers/registry.c tests/helpers/registry.h \
	tests/testkit.c tests/testkit.h \
	tests/testutil.c tests/testutil.h
tests_check_istio_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"' \
	-DXDS_SRCDIR='"$(abs_top_srcdir)"'
tests_check_istio_LDADD = $(TEST_LIBS)
TESTS += tests/check_istio

# wasmxdsctl and the etcd store with a cluster export, on a real etcd.
check_PROGRAMS += tests/check_istio_live
tests_check_istio_live_SOURCES = tests/check_istio_live.c \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_istio_live_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_istio_live_LDADD = $(TEST_LIBS)
TESTS += tests/check_istio_live
