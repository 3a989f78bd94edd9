# server/ctl/: wasmxdsctl, the operator's tool for the etcd store
# (store/ETCD.md). Links the libraries so that `apply` validates
# with exactly the server's code, the template check included.

bin_PROGRAMS += wasmxdsctl
wasmxdsctl_SOURCES = server/ctl/wasmxdsctl.c \
	server/ctl/status.c server/ctl/status.h
# status decodes CSDS answers (proto/gen) and asks over
# server/transport/csds_client, whose header is free of gRPC.
wasmxdsctl_CPPFLAGS = $(AM_CPPFLAGS)
wasmxdsctl_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) \
	$(YAML_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
wasmxdsctl_LDADD = libxdscsdsclient.a $(XDS_LIBS) $(XDS_EXT_LIBS)
