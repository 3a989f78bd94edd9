# server/ctl/: wasmxdsctl, the operator's tool for the etcd store
# (store/ETCD.md). Links the libraries so that `apply` validates
# with exactly the server's code, the template check included.

bin_PROGRAMS += wasmxdsctl
wasmxdsctl_SOURCES = server/ctl/wasmxdsctl.c
wasmxdsctl_CPPFLAGS = $(LAYER_CPPFLAGS)
wasmxdsctl_CFLAGS = $(AM_CFLAGS) \
	$(YAML_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
wasmxdsctl_LDADD = $(XDS_LIBS) $(XDS_EXT_LIBS)
