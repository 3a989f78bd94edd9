# server/: what each proxy gets, and how it is served.

noinst_LIBRARIES += libxdsbase.a libxds.a
libxdsbase_a_SOURCES = \
	server/base/alloc.c server/base/alloc.h \
	server/base/arena.c server/base/arena.h \
	server/base/buf.c server/base/buf.h \
	server/base/err.c server/base/err.h \
	server/base/intern.c server/base/intern.h \
	server/base/log.c server/base/log.h \
	server/base/map.c server/base/map.h

libxds_a_SOURCES = \
	server/ads.c server/ads.h \
	server/chain.c server/chain.h \
	server/delivery.c server/delivery.h \
	server/encode.c server/encode.h \
	server/identity.c server/identity.h \
	server/pbdesc.h \
	server/pbjson.c server/pbjson.h \
	server/pbyaml.c server/pbyaml.h \
	server/proxy.h \
	server/render.c server/render.h \
	server/snapshot.c server/snapshot.h \
	server/stats.c server/stats.h \
	server/status.c server/status.h \
	server/typeurl.h \
	server/version.c server/version.h \
	server/wire.c server/wire.h \
	server/xds_server.c server/xds_server.h \
	server/admin.c server/admin.h
libxds_a_CFLAGS = $(AM_CFLAGS) $(GRPC_CFLAGS) $(PROTOBUFC_CFLAGS) \
	$(OPENSSL_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)

# Link order: users before what they use.
XDS_LIBS = libxds.a libxdsmodules.a libxdsstore.a libxdsproto.a libxdsbase.a
XDS_EXT_LIBS = $(GRPC_LIBS) $(PROTOBUFC_LIBS) $(YAML_LIBS) $(JANSSON_LIBS) \
	$(CURL_LIBS) $(OPENSSL_LIBS) $(MHD_LIBS) $(ZLIB_LIBS) -lpthread -lm

bin_PROGRAMS += wasmxds
wasmxds_SOURCES = server/main.c
wasmxds_CFLAGS = $(libxds_a_CFLAGS)
wasmxds_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
