# tests/wirecompat.*: proves proto/ is wire-compatible with the upstream
# Envoy API (npm @grpc/grpc-js-xds@1.14.1, cached outside the tree; see
# tests/wirecompat.sh). wirecompat.c reads descriptor sets, so it needs
# protoc-c's C code for descriptor.proto, generated here into the build
# directory.

WIRECOMPAT_GEN = \
	tests/gen/google/protobuf/descriptor.pb-c.c \
	tests/gen/google/protobuf/descriptor.pb-c.h

tests/gen/.stamp: $(PROTOBUF_INCLUDE)/google/protobuf/descriptor.proto
	@$(MKDIR_P) tests/gen
	$(AM_V_GEN)cd $(PROTOBUF_INCLUDE) && $(PROTOC_C) \
		--c_out=$(abs_builddir)/tests/gen -I. google/protobuf/descriptor.proto
	$(AM_V_at)touch $@
$(WIRECOMPAT_GEN): tests/gen/.stamp

check_PROGRAMS += tests/wirecompat
tests_wirecompat_SOURCES = tests/wirecompat.c
nodist_tests_wirecompat_SOURCES = $(WIRECOMPAT_GEN)
tests_wirecompat_CPPFLAGS = $(AM_CPPFLAGS) -I$(builddir)/tests/gen
# Generated code is not ours to fix: allow its known harmless warnings.
tests_wirecompat_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) \
	-Wno-unused-parameter
tests_wirecompat_LDADD = $(PROTOBUFC_LIBS)
# Generate before compiling (dependency tracking only learns about the
# header after the first compile).
$(tests_wirecompat_OBJECTS): tests/gen/.stamp

TESTS += tests/wirecompat.sh
EXTRA_DIST += tests/wirecompat.sh
CLEANFILES += tests/gen/.stamp $(WIRECOMPAT_GEN) \
	tests/wirecompat-ours.pb tests/wirecompat-upstream.pb
