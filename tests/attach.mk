# Issue 16 item 3: attachments (README "Attachments"). Offline: the file
# store of tests/data/attach, composition, render and the rules.
check_PROGRAMS += tests/check_attach
tests_check_attach_SOURCES = tests/check_attach.c tests/storekit.c \
	tests/storekit.h
tests_check_attach_CFLAGS = $(TEST_CFLAGS) \
	-DXDS_TEST_DATA='"$(abs_top_srcdir)/tests/data"'
tests_check_attach_LDADD = $(TEST_LIBS)
TESTS += tests/check_attach
