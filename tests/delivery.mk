# The module path end to end (issue 7): a real docker-registry, the real
# wasmxds, an ADS client and an HTTP fetch of the served module.
check_PROGRAMS += tests/check_delivery
tests_check_delivery_SOURCES = tests/check_delivery.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h \
	tests/helpers/modtest.c tests/helpers/modtest.h \
	tests/helpers/registry.c tests/helpers/registry.h
tests_check_delivery_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_delivery_LDADD = $(TEST_LIBS)
TESTS += tests/check_delivery
