# server/ads/: the ADS protocol core, sans-I/O. Takes decoded requests and
# the current snapshot, returns the responses to send. No gRPC.

noinst_LIBRARIES += libxdsads.a
libxdsads_a_SOURCES = \
	server/ads/ads.c server/ads/ads.h
libxdsads_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) $(JANSSON_CFLAGS)
