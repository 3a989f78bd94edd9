# base/: the project-wide library at the bottom of every layer: allocation
# (with the failure hook), arenas, bounded buffers, the one error enum,
# interning, logging, maps and the plain HTTP route types. Depends on
# nothing of the project and on no library but libc.

noinst_LIBRARIES += libxdsbase.a
libxdsbase_a_SOURCES = \
	base/alloc.c base/alloc.h \
	base/arena.c base/arena.h \
	base/assert.c base/assert.h \
	base/buf.c base/buf.h \
	base/err.c base/err.h \
	base/fsdir.c base/fsdir.h \
	base/http_route.h \
	base/intern.c base/intern.h \
	base/log.c base/log.h \
	base/map.c base/map.h \
	base/ratelog.c base/ratelog.h
libxdsbase_a_CPPFLAGS = $(LAYER_CPPFLAGS)

# What the binaries were built from (-V): base/build_commit.h is written
# on every build from base/build_commit.sh (`git describe --always
# --dirty`, "unknown" in a tarball) and replaced only when it changed.
libxdsbase_a_SOURCES += base/build_info.c base/build_info.h
nodist_libxdsbase_a_SOURCES = base/build_commit.h
BUILT_SOURCES += base/build_commit.h
CLEANFILES += base/build_commit.h
EXTRA_DIST += base/build_commit.sh
base/libxdsbase_a-build_info.$(OBJEXT): base/build_commit.h
base/build_commit.h: xds-build-commit-always
	@$(MKDIR_P) base
	@c=`$(SHELL) $(srcdir)/base/build_commit.sh $(srcdir)`; \
	echo "#define XDS_BUILD_COMMIT \"$$c\"" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
.PHONY: xds-build-commit-always
xds-build-commit-always:
