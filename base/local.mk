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
	base/http_route.h \
	base/intern.c base/intern.h \
	base/log.c base/log.h \
	base/map.c base/map.h
libxdsbase_a_CPPFLAGS = $(LAYER_CPPFLAGS)
