# store/: what is configured. Parses and validates documents into the plain
# records of store/model.h. May use base, libyaml and jansson; never
# gRPC or protobuf.

noinst_LIBRARIES += libxdsstore.a
libxdsstore_a_SOURCES = \
	store/model.h store/model.c \
	store/ydoc.h store/ydoc.c \
	store/problems.h store/problems.c \
	store/decode.h store/decode_priv.h store/decode.c \
	store/decode_json.c store/decode_common.c store/decode_wasmext.c \
	store/decode_template.c \
	store/decode_wasmplugin.c store/decode_wasmdeploy.c \
	store/catalog.h store/catalog.c \
	store/changes.h store/changes.c \
	store/source.h store/source.c \
	store/file_store.h store/file_store.c \
	store/file_watch.h store/file_watch.c
libxdsstore_a_CPPFLAGS = $(LAYER_CPPFLAGS)
libxdsstore_a_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS)


# The etcd store (README, "The etcd store"): config, wire helpers, the libcurl client,
# the key table and the watcher thread.
libxdsstore_a_SOURCES += \
	store/etcd_config.h store/etcd_config.c \
	store/etcd_proto.h store/etcd_proto.c \
	store/etcd_client.h store/etcd_client.c \
	store/etcd_lease.h store/etcd_lease.c \
	store/etcd_store.h store/etcd_store.c \
	store/etcd_load.h store/etcd_load.c \
	store/etcd_watch.h store/etcd_watch.c
libxdsstore_a_CFLAGS += $(CURL_CFLAGS)
