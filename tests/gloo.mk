# Issue 16: Gloo Mesh's WasmDeployment as input. Offline: decode, the file
# store and composition of three deployments, the etcd key layout.
check_PROGRAMS += tests/check_gloo
tests_check_gloo_SOURCES = tests/check_gloo.c tests/check_istio.h \
	tests/storekit.c tests/storekit.h
tests_check_gloo_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_gloo_LDADD = $(TEST_LIBS)
TESTS += tests/check_gloo

# Per-resource status (/debug/resources) on the real binary, with a client
# that NACKs and ACKs.
check_PROGRAMS += tests/check_status_e2e
tests_check_status_e2e_SOURCES = tests/check_status_e2e.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h \
	tests/helpers/modtest.c tests/helpers/modtest.h \
	tests/helpers/origin.c tests/helpers/origin.h \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h
tests_check_status_e2e_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) $(MHD_CFLAGS)
tests_check_status_e2e_LDADD = $(TEST_LIBS) $(CURL_LIBS)
TESTS += tests/check_status_e2e
