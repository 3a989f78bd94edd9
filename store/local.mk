# store/: what is configured. Parses and validates documents into the plain
# records of store/model.h. May use server/base, libyaml and jansson; never
# gRPC or protobuf.

noinst_LIBRARIES += libxdsstore.a
libxdsstore_a_SOURCES = \
	store/model.h store/model.c
libxdsstore_a_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS)
