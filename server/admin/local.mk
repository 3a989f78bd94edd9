# server/admin/: the operator's view: the admin HTTP server
# (libmicrohttpd), health and status pages, and render. Reads published
# copies of the served state, never a stream's.

noinst_LIBRARIES += libxdsadmin.a
libxdsadmin_a_SOURCES = \
	server/admin/admin.c server/admin/admin.h \
	server/admin/render.c server/admin/render.h \
	server/admin/status.c server/admin/status.h \
	server/admin/status_etcd.c server/admin/status_etcd.h
libxdsadmin_a_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(PROTOBUFC_CFLAGS) \
	$(JANSSON_CFLAGS)
