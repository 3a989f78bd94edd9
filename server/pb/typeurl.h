/*
 * typeurl.h: the type URLs wasmxds sends and accepts.
 */
#ifndef XDS_TYPEURL_H
#define XDS_TYPEURL_H

#define TYPE_PREFIX "type.googleapis.com/"
#define TYPE_LISTENER TYPE_PREFIX "envoy.config.listener.v3.Listener"
#define TYPE_ECDS TYPE_PREFIX "envoy.config.core.v3.TypedExtensionConfig"
#define TYPE_HCM                                                               \
  TYPE_PREFIX                                                                  \
  "envoy.extensions.filters.network.http_connection_manager.v3."               \
  "HttpConnectionManager"
#define TYPE_WASM TYPE_PREFIX "envoy.extensions.filters.http.wasm.v3.Wasm"
#define TYPE_RBAC TYPE_PREFIX "envoy.extensions.filters.http.rbac.v3.RBAC"
#define TYPE_ROUTER TYPE_PREFIX "envoy.extensions.filters.http.router.v3.Router"
#define TYPE_STRING_VALUE TYPE_PREFIX "google.protobuf.StringValue"
#define TYPE_BYTES_VALUE TYPE_PREFIX "google.protobuf.BytesValue"
/* Network (L4) filters: Istio WasmPlugins of type NETWORK, their
 * substitute, the terminal filter of TCP listeners, SNI matching. */
#define TYPE_NET_WASM                                                          \
  TYPE_PREFIX "envoy.extensions.filters.network.wasm.v3.Wasm"
#define TYPE_NET_RBAC                                                          \
  TYPE_PREFIX "envoy.extensions.filters.network.rbac.v3.RBAC"
#define TYPE_TCP_PROXY                                                         \
  TYPE_PREFIX "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define TYPE_TLS_INSPECTOR                                                     \
  TYPE_PREFIX "envoy.extensions.filters.listener.tls_inspector.v3."            \
              "TlsInspector"

/* Names Envoy knows these filters by. */
#define HCM_FILTER_NAME "envoy.filters.network.http_connection_manager"
#define TCP_PROXY_FILTER_NAME "envoy.filters.network.tcp_proxy"
#define TLS_INSPECTOR_FILTER_NAME "envoy.filters.listener.tls_inspector"

#endif
