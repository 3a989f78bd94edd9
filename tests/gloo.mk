# Issue 16: Gloo Mesh's WasmDeployment as input. Offline: decode, the file
# store and composition of three deployments, the etcd key layout.
check_PROGRAMS += tests/check_gloo
tests_check_gloo_SOURCES = tests/check_gloo.c tests/check_istio.h
tests_check_gloo_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_gloo_LDADD = $(TEST_LIBS)
TESTS += tests/check_gloo
