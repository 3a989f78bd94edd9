# server/app/: the wasmxds program: flags, subcommands and wiring. No gRPC
# headers (the transport hides them).

# Link order: users before what they use.
XDS_LIBS = libxdsadmin.a libxdstransport.a libxdsads.a libxdscompose.a \
	libxdspb.a libxdsmodules.a libxdsstore.a libxdsproto.a libxdsbase.a
XDS_EXT_LIBS = $(GRPC_LIBS) $(PROTOBUFC_LIBS) $(YAML_LIBS) $(JANSSON_LIBS) \
	$(CURL_LIBS) $(OPENSSL_LIBS) $(MHD_LIBS) $(ZLIB_LIBS) -lpthread -lm

bin_PROGRAMS += wasmxds
wasmxds_SOURCES = server/app/main.c server/app/cmd.h \
	server/app/flags.c server/app/flags.h \
	server/app/cmd_serve.c server/app/cmd_validate.c server/app/cmd_render.c \
	server/app/notify.c server/app/notify.h
wasmxds_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) $(JANSSON_CFLAGS)
wasmxds_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
