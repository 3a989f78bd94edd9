# store/: what is configured. Parses and validates documents into the plain
# records of store/model.h. May use server/base, libyaml and jansson; never
# gRPC or protobuf.

noinst_LIBRARIES += libxdsstore.a
libxdsstore_a_SOURCES = \
	store/model.h store/model.c \
	store/ydoc.h store/ydoc.c \
	store/problems.h store/problems.c \
	store/decode.h store/decode.c \
	store/catalog.h store/catalog.c \
	store/file_store.h store/file_store.c \
	store/file_watch.h store/file_watch.c
libxdsstore_a_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS)

EXTRA_DIST += store/REFERENCE.md
