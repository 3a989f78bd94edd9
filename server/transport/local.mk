# server/transport/: the gRPC C core transport: the completion-queue
# thread, calls, TLS, and the streams it drives through server/ads/. The
# only code that may include <grpc/...> (tools/checksrc enforces it) and
# the only library built with gRPC's flags.

noinst_LIBRARIES += libxdstransport.a
libxdstransport_a_SOURCES = \
	server/transport/grpc_log.c server/transport/grpc_log.h \
	server/transport/xds_server.c server/transport/xds_server.h
libxdstransport_a_CFLAGS = $(AM_CFLAGS) $(GRPC_CFLAGS) $(PROTOBUFC_CFLAGS) \
	$(JANSSON_CFLAGS)

# The CSDS client (FetchClientStatus), its own library so that wasmxdsctl
# links it without the server; its header is free of gRPC.
noinst_LIBRARIES += libxdscsdsclient.a
libxdscsdsclient_a_SOURCES = \
	server/transport/csds_client.c server/transport/csds_client.h
libxdscsdsclient_a_CFLAGS = $(AM_CFLAGS) $(GRPC_CFLAGS)
