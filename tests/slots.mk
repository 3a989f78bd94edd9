# Zero-drain plugin changes (--ecds-slots, issue 19): an offline ADS
# stream plays a proxy applying every ECDS config one at a time.
check_PROGRAMS += tests/check_slots
tests_check_slots_SOURCES = tests/check_slots.c \
	tests/testutil.c tests/testutil.h tests/testkit.c tests/testkit.h
tests_check_slots_CFLAGS = $(TEST_CFLAGS)
tests_check_slots_LDADD = $(TEST_LIBS)
TESTS += tests/check_slots
