# server/ads/: the ADS protocol core, sans-I/O. Takes decoded requests and
# the current snapshot, returns the responses to send. No gRPC.
# ads_impl.h is private to these files (and the offline tests).

noinst_LIBRARIES += libxdsads.a
libxdsads_a_SOURCES = \
	server/ads/ads.c server/ads/ads.h server/ads/ads_impl.h \
	server/ads/ads_node.c server/ads/ads_precheck.c server/ads/ads_sub.c \
	server/ads/ads_wire.c \
	server/ads/ads_sent.c \
	server/ads/ads_sotw.c server/ads/ads_delta.c server/ads/ads_other.c \
	server/ads/ads_resp.c server/ads/ads_slots.c server/ads/ads_status.c \
	server/ads/ads_csds.c
libxdsads_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) $(JANSSON_CFLAGS)
