# proto/: the project's own minimal Envoy/xDS .proto files (upstream
# packages, names and field numbers; our own comments), compiled by protoc-c
# at build time into proto/gen/ together with the well-known types from
# protoc's own google/protobuf/*.proto. Nothing generated is committed.

# Paths relative to proto/, as they appear in import statements.
PROTO_REL = \
	google/rpc/status.proto \
	envoy/admin/v3/config_dump_shared.proto \
	envoy/config/core/v3/address.proto \
	envoy/config/core/v3/backoff.proto \
	envoy/config/core/v3/base.proto \
	envoy/config/core/v3/config_source.proto \
	envoy/config/core/v3/extension.proto \
	envoy/config/core/v3/grpc_service.proto \
	envoy/config/core/v3/http_uri.proto \
	envoy/config/core/v3/protocol.proto \
	envoy/config/listener/v3/listener.proto \
	envoy/config/listener/v3/listener_components.proto \
	envoy/config/rbac/v3/rbac.proto \
	envoy/config/route/v3/route.proto \
	envoy/config/route/v3/route_components.proto \
	envoy/extensions/filters/http/cors/v3/cors.proto \
	envoy/extensions/filters/http/lua/v3/lua.proto \
	envoy/extensions/filters/http/rbac/v3/rbac.proto \
	envoy/extensions/filters/http/router/v3/router.proto \
	envoy/extensions/filters/http/wasm/v3/wasm.proto \
	envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto \
	envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto \
	envoy/extensions/filters/network/rbac/v3/rbac.proto \
	envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto \
	envoy/extensions/filters/network/wasm/v3/wasm.proto \
	envoy/extensions/wasm/v3/wasm.proto \
	envoy/service/discovery/v3/ads.proto \
	envoy/service/discovery/v3/discovery.proto \
	envoy/service/extension/v3/config_discovery.proto \
	envoy/service/listener/v3/lds.proto \
	envoy/service/status/v3/csds.proto \
	envoy/type/matcher/v3/node.proto \
	envoy/type/matcher/v3/number.proto \
	envoy/type/matcher/v3/path.proto \
	envoy/type/matcher/v3/regex.proto \
	envoy/type/matcher/v3/string.proto \
	envoy/type/matcher/v3/struct.proto \
	envoy/type/matcher/v3/value.proto \
	envoy/type/v3/percent.proto \
	envoy/type/v3/range.proto \
	envoy/type/v3/semantic_version.proto \
	xds/core/v3/authority.proto \
	xds/core/v3/context_params.proto

# Well-known types, relative to $(PROTOBUF_INCLUDE).
PROTO_WKT = \
	google/protobuf/any.proto \
	google/protobuf/duration.proto \
	google/protobuf/struct.proto \
	google/protobuf/timestamp.proto \
	google/protobuf/wrappers.proto

PROTO_GEN_C = \
	proto/gen/google/rpc/status.pb-c.c \
	proto/gen/envoy/admin/v3/config_dump_shared.pb-c.c \
	proto/gen/envoy/config/core/v3/address.pb-c.c \
	proto/gen/envoy/config/core/v3/backoff.pb-c.c \
	proto/gen/envoy/config/core/v3/base.pb-c.c \
	proto/gen/envoy/config/core/v3/config_source.pb-c.c \
	proto/gen/envoy/config/core/v3/extension.pb-c.c \
	proto/gen/envoy/config/core/v3/grpc_service.pb-c.c \
	proto/gen/envoy/config/core/v3/http_uri.pb-c.c \
	proto/gen/envoy/config/core/v3/protocol.pb-c.c \
	proto/gen/envoy/config/listener/v3/listener.pb-c.c \
	proto/gen/envoy/config/listener/v3/listener_components.pb-c.c \
	proto/gen/envoy/config/rbac/v3/rbac.pb-c.c \
	proto/gen/envoy/config/route/v3/route.pb-c.c \
	proto/gen/envoy/config/route/v3/route_components.pb-c.c \
	proto/gen/envoy/extensions/filters/http/cors/v3/cors.pb-c.c \
	proto/gen/envoy/extensions/filters/http/lua/v3/lua.pb-c.c \
	proto/gen/envoy/extensions/filters/http/rbac/v3/rbac.pb-c.c \
	proto/gen/envoy/extensions/filters/http/router/v3/router.pb-c.c \
	proto/gen/envoy/extensions/filters/http/wasm/v3/wasm.pb-c.c \
	proto/gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.c \
	proto/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.c \
	proto/gen/envoy/extensions/filters/network/rbac/v3/rbac.pb-c.c \
	proto/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.c \
	proto/gen/envoy/extensions/filters/network/wasm/v3/wasm.pb-c.c \
	proto/gen/envoy/extensions/wasm/v3/wasm.pb-c.c \
	proto/gen/envoy/service/discovery/v3/ads.pb-c.c \
	proto/gen/envoy/service/discovery/v3/discovery.pb-c.c \
	proto/gen/envoy/service/extension/v3/config_discovery.pb-c.c \
	proto/gen/envoy/service/listener/v3/lds.pb-c.c \
	proto/gen/envoy/service/status/v3/csds.pb-c.c \
	proto/gen/envoy/type/matcher/v3/node.pb-c.c \
	proto/gen/envoy/type/matcher/v3/number.pb-c.c \
	proto/gen/envoy/type/matcher/v3/path.pb-c.c \
	proto/gen/envoy/type/matcher/v3/regex.pb-c.c \
	proto/gen/envoy/type/matcher/v3/string.pb-c.c \
	proto/gen/envoy/type/matcher/v3/struct.pb-c.c \
	proto/gen/envoy/type/matcher/v3/value.pb-c.c \
	proto/gen/envoy/type/v3/percent.pb-c.c \
	proto/gen/envoy/type/v3/range.pb-c.c \
	proto/gen/envoy/type/v3/semantic_version.pb-c.c \
	proto/gen/xds/core/v3/authority.pb-c.c \
	proto/gen/xds/core/v3/context_params.pb-c.c \
	proto/gen/google/protobuf/any.pb-c.c \
	proto/gen/google/protobuf/duration.pb-c.c \
	proto/gen/google/protobuf/struct.pb-c.c \
	proto/gen/google/protobuf/wrappers.pb-c.c \
	proto/gen/google/protobuf/timestamp.pb-c.c
PROTO_GEN_H = $(PROTO_GEN_C:.c=.h)

EXTRA_DIST += $(addprefix proto/,$(PROTO_REL))
BUILT_SOURCES += proto/gen/.stamp
CLEANFILES += proto/gen/.stamp $(PROTO_GEN_C) $(PROTO_GEN_H)

# One protoc-c run per set; every generated file depends on the stamp.
proto/gen/.stamp: $(addprefix $(srcdir)/proto/,$(PROTO_REL))
	@$(MKDIR_P) proto/gen
	$(AM_V_GEN)cd $(srcdir)/proto && $(PROTOC_C) \
		--c_out=$(abs_builddir)/proto/gen -I. -I$(PROTOBUF_INCLUDE) \
		$(PROTO_REL)
	$(AM_V_at)cd $(PROTOBUF_INCLUDE) && $(PROTOC_C) \
		--c_out=$(abs_builddir)/proto/gen -I. $(PROTO_WKT)
	$(AM_V_at)touch $@
$(PROTO_GEN_C) $(PROTO_GEN_H): proto/gen/.stamp

noinst_LIBRARIES += libxdsproto.a
nodist_libxdsproto_a_SOURCES = $(PROTO_GEN_C) $(PROTO_GEN_H)
# Generated code is not ours to fix: keep -Werror but allow its known
# harmless warnings.
libxdsproto_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUFC_CFLAGS) -Wno-unused-parameter
