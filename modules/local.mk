# modules/: Wasm module sources (OCI registries, HTTP), verification, the
# on-disk content-addressed cache, the background resolver, and the HTTP
# handler that serves cached modules through the admin server (base/http_route.h types). Uses base,
# store/model.h (records only), libcurl, OpenSSL, jansson and zlib; never
# gRPC or protobuf.

noinst_LIBRARIES += libxdsmodules.a
libxdsmodules_a_SOURCES = \
	modules/digest.c modules/digest.h \
	modules/unpack.c modules/unpack.h \
	modules/fetch.c modules/fetch.h \
	modules/creds.c modules/creds.h \
	modules/oci.c modules/oci.h modules/oci_parse.h \
	modules/cache.c modules/cache.h \
	modules/resolver.c modules/resolver.h \
	modules/serve.c modules/serve.h
libxdsmodules_a_CPPFLAGS = $(LAYER_CPPFLAGS)
libxdsmodules_a_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(OPENSSL_CFLAGS) \
	$(JANSSON_CFLAGS) $(ZLIB_CFLAGS)



