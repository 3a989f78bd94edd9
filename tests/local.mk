# tests/: Check suites. check_unit runs every offline suite listed in
# tests/suites.h; check_e2e starts the real wasmxds binary on loopback and
# talks to it with a gRPC C core client.

TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(GRPC_CFLAGS) \
	$(PROTOBUFC_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS) $(OPENSSL_CFLAGS)
TEST_LIBS = $(XDS_LIBS) $(CHECK_LIBS) $(XDS_EXT_LIBS)

check_PROGRAMS += tests/check_unit
tests_check_unit_SOURCES = tests/check_main.c tests/suites.h \
	tests/check_ads.c tests/check_ads_oom.c tests/check_ads_limits.c \
	tests/check_ads_sync.c tests/check_ads_wire.c \
	tests/check_base.c tests/check_chain.c \
	tests/check_compose.c tests/check_compose_oom.c tests/check_encode.c \
	tests/check_publisher.c tests/check_source.c \
	tests/testutil.c tests/testutil.h tests/testkit.c tests/testkit.h \
	tests/check_store.c tests/check_store_ydoc.c \
	tests/check_store_watch.c tests/check_store_walk.c \
	tests/check_modules.c tests/check_modules_http.c \
	tests/check_modules_oci.c tests/check_unpack.c \
	tests/helpers/modtest.c tests/helpers/modtest.h \
	tests/helpers/origin.c tests/helpers/origin.h \
	tests/helpers/registry.c tests/helpers/registry.h
tests_check_unit_CFLAGS = $(TEST_CFLAGS) -DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_unit_LDADD = $(TEST_LIBS)
TESTS += tests/check_unit

EXTRA_DIST += tests/data
include $(srcdir)/tests/wirecompat.mk

# End-to-end: the real wasmxds binary ($(WASMXDS_BIN) via AM_TESTS_ENVIRONMENT)
# on loopback, driven by the gRPC C core client in tests/e2e/.
check_PROGRAMS += tests/check_e2e
tests_check_e2e_SOURCES = tests/check_e2e.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_e2e_CFLAGS = $(TEST_CFLAGS) -DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_e2e_LDADD = $(TEST_LIBS)
TESTS += tests/check_e2e

# The served bytes, decoded with the upstream Envoy protos.
TESTS += tests/upstream_decode.sh
EXTRA_DIST += tests/upstream_decode.sh tests/upstream.sh
# Zero-drain plugin changes (issue 19): tests/slots.mk.
include $(srcdir)/tests/slots.mk

# An independent xDS client (Python, messages generated from the upstream
# Envoy protos into tests/conformance-gen/) against the real wasmxds.
TESTS += tests/conformance.sh
EXTRA_DIST += tests/conformance.sh tests/conformance/xds_conformance.py
clean-local: conformance-clean
conformance-clean:
	-rm -rf tests/conformance-gen
.PHONY: conformance-clean

# The etcd store: offline suite in check_unit; live tests (a real etcd) in
# their own program, tests/etcd.mk.
tests_check_unit_SOURCES += tests/check_etcd.c tests/check_etcd_oom.c \
	tests/check_modules_oom.c
include $(srcdir)/tests/etcd.mk
check_PROGRAMS += tests/any_split
tests_any_split_SOURCES = tests/any_split.c
tests_any_split_CFLAGS = $(TEST_CFLAGS)
tests_any_split_LDADD = $(TEST_LIBS)

# Protocol end-to-end tests of issue 5 (SotW and delta, ADS and standalone,
# push, NACK storms, slow readers, mutual TLS, drain and restart, the admin
# status pages): the real wasmxds binary on loopback, like check_e2e.
check_PROGRAMS += tests/check_protocol
tests_check_protocol_SOURCES = tests/check_protocol.c \
	tests/protocol/protocol.h tests/protocol/fixture.c \
	tests/protocol/sotw.c tests/protocol/delta.c \
	tests/protocol/standalone.c tests/protocol/push.c \
	tests/protocol/load.c tests/protocol/mtls.c \
	tests/protocol/lifecycle.c tests/protocol/admin.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_protocol_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_protocol_LDADD = $(TEST_LIBS)
TESTS += tests/check_protocol
include $(srcdir)/tests/delivery.mk
# The admin server and render (issues 13 and 14): tests/admin.mk.
include $(srcdir)/tests/admin.mk
# Native HTTP filter configs from YAML (server/pb/pbyaml.h).
tests_check_unit_SOURCES += tests/check_pbyaml.c

# The wasmxds program as a user runs it (subcommands, first run, signals):
# the real binary, like check_e2e.
check_PROGRAMS += tests/check_app
tests_check_app_SOURCES = tests/check_app.c \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/helpers/etcd_proc.c tests/helpers/etcd_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_app_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_app_LDADD = $(TEST_LIBS)
TESTS += tests/check_app

# How a store load reports: problems by line and column, an empty store.
tests_check_unit_SOURCES += tests/check_store_report.c

include $(srcdir)/tests/packaging.mk

include $(srcdir)/tests/istio.mk
include $(srcdir)/tests/gloo.mk
include $(srcdir)/tests/attach.mk

# Hostile clients (issue 13): the real wasmxds binary under name floods
# while another client's pushes are timed. Part of make check (CI runs it).
check_PROGRAMS += tests/check_hostile
tests_check_hostile_SOURCES = tests/check_hostile.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_hostile_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_hostile_LDADD = $(TEST_LIBS) $(CURL_LIBS)
TESTS += tests/check_hostile

# Identity grammar, NUL on the wire, class keys.
tests_check_unit_SOURCES += tests/check_proxyid.c

# The serving loops' status answers, in-process on loopback.
tests_check_unit_SOURCES += tests/check_transport.c

# Who a proxy is, and the server's edges (issues 13 and 14): forged proxy
# classes, identity grammar, NUL bytes, identity from the certificate alone,
# gRPC's log lines, a taken port, a bounded shutdown. The real wasmxds
# binary on loopback, like check_protocol.
check_PROGRAMS += tests/check_identity
tests_check_identity_SOURCES = tests/check_identity.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_identity_CFLAGS = $(TEST_CFLAGS)
tests_check_identity_LDADD = $(TEST_LIBS)
TESTS += tests/check_identity

# CSDS (issue 17): the real wasmxds binary with proxies in every state,
# asked over FetchClientStatus (server/transport/csds_client) and
# StreamClientStatus.
check_PROGRAMS += tests/check_csds
tests_check_csds_SOURCES = tests/check_csds.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_csds_CFLAGS = $(TEST_CFLAGS) -DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_csds_LDADD = libxdscsdsclient.a $(TEST_LIBS)
TESTS += tests/check_csds
# The CSDS bytes for tests/upstream_decode.sh.
check_PROGRAMS += tests/csds_dump
tests_csds_dump_SOURCES = tests/csds/csds_dump.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_csds_dump_CFLAGS = $(TEST_CFLAGS)
tests_csds_dump_LDADD = libxdscsdsclient.a $(TEST_LIBS)

# /metrics parsed by python3-prometheus-client, every metric the README
# names present; HEAD on every GET route (issue 17).
check_PROGRAMS += tests/check_metrics
tests_check_metrics_SOURCES = tests/check_metrics.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_metrics_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"' \
	-DXDS_SRCDIR='"$(abs_top_srcdir)"'
tests_check_metrics_LDADD = libxdscsdsclient.a $(TEST_LIBS)
TESTS += tests/check_metrics
EXTRA_DIST += tests/metrics_check.py

# --log-format json, in process and from the real binary, gRPC's own lines
# included (issue 17).
check_PROGRAMS += tests/check_logs
tests_check_logs_SOURCES = tests/check_logs.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_logs_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_logs_LDADD = libxdscsdsclient.a $(TEST_LIBS)
TESTS += tests/check_logs

# CSDS behind mutual TLS: what a caller may list follows its certificate.
check_PROGRAMS += tests/check_csds_mtls
tests_check_csds_mtls_SOURCES = tests/check_csds_mtls.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_csds_mtls_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_csds_mtls_LDADD = libxdscsdsclient.a $(TEST_LIBS)
TESTS += tests/check_csds_mtls

# An idle server sleeps: no wake-ups of the serving loop without work, and
# a prompt stop (issue 20): the real wasmxds binary, like check_e2e.
check_PROGRAMS += tests/check_idle
tests_check_idle_SOURCES = tests/check_idle.c \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_idle_CFLAGS = $(TEST_CFLAGS)
tests_check_idle_LDADD = $(TEST_LIBS)
TESTS += tests/check_idle

# --threads 3: pushes, connects and admin/CSDS reads at once over three
# serving loops; the pages, CSDS and /metrics cover every loop (issue 20).
# Also run under ThreadSanitizer by tests/tsan.sh.
check_PROGRAMS += tests/check_threads
tests_check_threads_SOURCES = tests/check_threads.c \
	tests/csds/fleet.c tests/csds/fleet.h \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h
tests_check_threads_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_threads_LDADD = libxdscsdsclient.a $(TEST_LIBS)
TESTS += tests/check_threads
