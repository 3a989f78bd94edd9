# server/compose/: what each proxy gets. Node identity, the filter chain of
# a proxy class, encoding to Envoy resources, snapshots, module delivery
# into ECDS, and the server's counters. Pure data: no gRPC, no HTTP server.

noinst_LIBRARIES += libxdscompose.a
libxdscompose_a_SOURCES = \
	server/compose/chain.c server/compose/chain.h \
	server/compose/delivery.c server/compose/delivery.h \
	server/compose/encode.c server/compose/encode.h \
	server/compose/identity.c server/compose/identity.h \
	server/compose/identity_istio.c \
	server/compose/proxy.h \
	server/compose/publisher.c server/compose/publisher.h \
	server/compose/snapshot.c server/compose/snapshot.h \
	server/compose/stats.c server/compose/stats.h \
	server/compose/version.c server/compose/version.h
libxdscompose_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) $(OPENSSL_CFLAGS) \
	$(JANSSON_CFLAGS)
