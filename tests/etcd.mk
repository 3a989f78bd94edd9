# tests/check_etcd: the etcd store and wasmxdsctl against a real etcd
# (Debian's etcd-server), started by each test on free loopback ports.
# Skipped (exit 77) when /usr/bin/etcd is not installed.

check_PROGRAMS += tests/check_etcd
tests_check_etcd_SOURCES = tests/check_etcd_live.c \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_etcd_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_etcd_LDADD = $(TEST_LIBS)
TESTS += tests/check_etcd

# Two wasmxds replicas on one real etcd, with ADS clients.
check_PROGRAMS += tests/check_replicas
tests_check_replicas_SOURCES = tests/check_replicas.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h
tests_check_replicas_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_replicas_LDADD = $(TEST_LIBS)
TESTS += tests/check_replicas

# wasmxdsctl against a real etcd: apply all or none, list, get, --dry-run.
check_PROGRAMS += tests/check_ctl
tests_check_ctl_SOURCES = tests/check_ctl.c \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_ctl_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_ctl_LDADD = $(TEST_LIBS)
TESTS += tests/check_ctl

# wasmxdsctl status (CSDS) against two replicas on one etcd, proxies on
# both (issue 17).
check_PROGRAMS += tests/check_ctl_status
tests_check_ctl_status_SOURCES = tests/check_ctl_status.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h
tests_check_ctl_status_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_ctl_status_LDADD = libxdscsdsclient.a $(TEST_LIBS)
TESTS += tests/check_ctl_status
