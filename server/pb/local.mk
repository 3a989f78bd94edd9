# server/pb/: protobuf on the wire (varints, Any packing), the descriptor
# walker, and the YAML/JSON <-> protobuf converters used for native filter
# configs. Uses base, store/ydoc.h and protobuf-c.

noinst_LIBRARIES += libxdspb.a
libxdspb_a_SOURCES = \
	server/pb/pbdesc.h \
	server/pb/pbjson.c server/pb/pbjson.h \
	server/pb/pbyaml.c server/pb/pbyaml.h \
	server/pb/typeurl.h \
	server/pb/wire.c server/pb/wire.h \
	server/pb/wirecheck.c server/pb/wirecheck.h
libxdspb_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) $(JANSSON_CFLAGS) \
	$(YAML_CFLAGS)
