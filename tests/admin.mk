# The admin HTTP server and render (issue 13 item 7, issue 14 items 3
# and 7), included from tests/local.mk.

# The admin HTTP server against hostile clients (slowloris, per-address
# cap, header deadline, bearer token, slow pages), in process on loopback.
check_PROGRAMS += tests/check_admin
tests_check_admin_SOURCES = tests/check_admin.c tests/testkit.c \
	tests/testkit.h
tests_check_admin_CFLAGS = $(TEST_CFLAGS)
tests_check_admin_LDADD = $(TEST_LIBS)
TESTS += tests/check_admin

# The admin server of the real binary (issue 13 item 7): modules on their
# own listener, the bearer token, /debug/proxies pages, and a large page
# that must not delay pushes.
check_PROGRAMS += tests/check_admin_e2e
tests_check_admin_e2e_SOURCES = tests/check_admin_e2e.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h \
	tests/helpers/modtest.c tests/helpers/modtest.h \
	tests/helpers/origin.c tests/helpers/origin.h
tests_check_admin_e2e_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS) $(MHD_CFLAGS)
tests_check_admin_e2e_LDADD = $(TEST_LIBS)
TESTS += tests/check_admin_e2e

# render computes what the server serves (issue 14 item 3): the real
# binary, render against the server on one store.
check_PROGRAMS += tests/check_render
tests_check_render_SOURCES = tests/check_render.c \
	tests/e2e/xds_client.c tests/e2e/xds_client.h \
	tests/e2e/server_proc.c tests/e2e/server_proc.h \
	tests/testkit.c tests/testkit.h \
	tests/helpers/modtest.c tests/helpers/modtest.h \
	tests/helpers/origin.c tests/helpers/origin.h
tests_check_render_CFLAGS = $(TEST_CFLAGS) $(MHD_CFLAGS)
tests_check_render_LDADD = $(TEST_LIBS)
TESTS += tests/check_render
