#!/bin/bash
# upstream_decode.sh: the bytes wasmxds sends, decoded by protoc with the
# upstream Envoy API descriptors (not ours). `wasmxds render --dump-dir`
# writes every Listener and TypedExtensionConfig a proxy would receive from
# the end-to-end test store; each must decode with the upstream protos,
# carry no field those protos do not know (bar the allow-listed
# PluginConfig.failure_policy, newer than the snapshot), and show the
# expected structure (ECDS references, Wasm and RBAC filters). A second
# render, of the Istio store (tests/data/istio/store) for an Istio-identified
# sidecar, adds a TCP listener with network Wasm filters over ECDS, their
# network RBAC substitute, tcp_proxy and the TLS inspector.

set -euo pipefail

fail() {
  echo "upstream_decode: FAIL: $*" >&2
  exit 1
}

# shellcheck source=tests/upstream.sh
. "$(dirname "$0")/upstream.sh"

bin=${WASMXDS_BIN:-$builddir/wasmxds}
[ -x "$bin" ] || fail "$bin not built"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" render --store "$srcdir/tests/data/e2e/store.yaml" --node-id decode-1 \
  --metadata wasmxds.tenant=organizations/acme/tenants/payments \
  --dump-dir "$tmp" >"$tmp/render.json" 2>"$tmp/render.err" ||
  fail "render failed: $(cat "$tmp/render.err")"
mkdir "$tmp/istio"
"$bin" render --store "$srcdir/tests/data/istio/store" \
  --node-id 'sidecar~10.0.0.1~reviews-v1-1.bookinfo~bookinfo.svc.cluster.local' \
  --metadata NAMESPACE=bookinfo --metadata 'LABELS={"app":"reviews"}' \
  --dump-dir "$tmp/istio" >"$tmp/istio.json" 2>"$tmp/istio.err" ||
  fail "render of the Istio store failed: $(cat "$tmp/istio.err")"

# Gloo Mesh WasmDeployments (a BytesValue configuration among them) and a
# WasmExtension with Envoy's VM and capability fields (issue 16).
mkdir "$tmp/gloo" "$tmp/globex"
"$bin" render --store "$srcdir/tests/data/gloo/store" \
  --node-id 'sidecar~10.0.0.1~reviews-v1-1.bookinfo~bookinfo.svc.cluster.local' \
  --metadata NAMESPACE=bookinfo --metadata 'LABELS={"app":"reviews"}' \
  --dump-dir "$tmp/gloo" >"$tmp/gloo.json" 2>"$tmp/gloo.err" ||
  fail "render of the Gloo store failed: $(cat "$tmp/gloo.err")"
"$bin" render --store "$srcdir/tests/data/gloo/store" --node-id globex-1 \
  --metadata wasmxds.organization=globex \
  --dump-dir "$tmp/globex" >"$tmp/globex.json" 2>"$tmp/globex.err" ||
  fail "render of the globex extension failed: $(cat "$tmp/globex.err")"

# Attachments (issue 16 item 3): an edge gateway's per-attachment
# override, served as its own ECDS resource "<fqn>@edge".
mkdir "$tmp/attach"
"$bin" render --store "$srcdir/tests/data/attach/store.yaml" --node-id edge-1 \
  --metadata wasmxds.organization=acme --metadata wasmxds.mode=GATEWAY \
  --metadata wasmxds.tenant=organizations/acme/tenants/payments \
  --dump-dir "$tmp/attach" >"$tmp/attach.json" 2>"$tmp/attach.err" ||
  fail "render of the attachment store failed: $(cat "$tmp/attach.err")"

# --attachment-required: stats, attached nowhere, reaches nobody, and
# render says why.
"$bin" render --store "$srcdir/tests/data/attach/store.yaml" --node-id edge-1 \
  --metadata wasmxds.organization=acme --metadata wasmxds.mode=GATEWAY \
  --metadata wasmxds.tenant=organizations/acme/tenants/payments \
  --attachment-required >"$tmp/attach-req.json" 2>"$tmp/attach.err" ||
  fail "render --attachment-required failed: $(cat "$tmp/attach.err")"
grep -qF 'attached to no listener template (--attachment-required)' \
  "$tmp/attach-req.json" ||
  fail "render --attachment-required does not say why stats is left out"
grep -qaF 'organizations/acme/extensions/stats' "$tmp/attach/lds-edge.pb" ||
  fail "without --attachment-required, the unattached stats is missing"

inc=(-I "$deps/envoy-api" -I "$deps/xds" -I "$deps/googleapis"
     -I "$deps/protoc-gen-validate" -I "$pb_include")
# Every message type an Any inside our resources can hold, so protoc
# expands them instead of printing bytes.
files=(envoy/config/listener/v3/listener.proto
       envoy/config/core/v3/extension.proto
       envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto
       envoy/extensions/filters/http/router/v3/router.proto
       envoy/extensions/filters/http/wasm/v3/wasm.proto
       envoy/extensions/filters/http/rbac/v3/rbac.proto
       envoy/extensions/filters/network/wasm/v3/wasm.proto
       envoy/extensions/filters/network/rbac/v3/rbac.proto
       envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto
       envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto
       google/protobuf/wrappers.proto)

decode() { # $1 message type, $2 file
  "$protoc" "${inc[@]}" --decode="$1" "${files[@]}" <"$2" ||
    fail "$(basename "$2") does not decode as $1 with the upstream protos"
}

split="$builddir/tests/any_split"
[ -x "$split" ] || fail "$split not built"

# Unknown fields print as bare field numbers: there must be none, except
# PluginConfig.failure_policy (7), newer than the upstream snapshot.
check_known() { # $1 name, $2 decoded text, $3 allowed extra pattern
  local bad
  bad=$(grep -E '^[[:space:]]*[0-9]+:' <<<"$2" | grep -Ev "${3:-^\$}" || true)
  [ -z "$bad" ] || fail "$1 has fields the upstream protos do not know: $bad"
}

# Each resource, then every Any inside it, decoded with upstream types.
check_resource() { # $1 type, $2 file
  local out parts part type
  out=$(decode "$1" "$2")
  check_known "$(basename "$2")" "$out"
  mkdir -p "$2.d"
  parts=$("$split" "$1" "$2" "$2.d") || fail "cannot split the Anys of $2"
  for part in $parts; do
    type=${part##*/}
    type=${type#*.}
    type=${type%.pb}
    out=$(decode "$type" "$part")
    case "$type" in
    envoy.extensions.wasm.v3.PluginConfig|envoy.extensions.filters.http.wasm.v3.Wasm|envoy.extensions.filters.network.wasm.v3.Wasm)
      check_known "$(basename "$2") $type" "$out" '^[[:space:]]*7: [0-9]+$' ;;
    *) check_known "$(basename "$2") $type" "$out" ;;
    esac
    echo "$type" >>"$tmp/types"
  done
}

n=0
for f in "$tmp"/lds-*.pb "$tmp"/istio/lds-*.pb "$tmp"/gloo/lds-*.pb \
         "$tmp"/globex/lds-*.pb "$tmp"/attach/lds-*.pb; do
  check_resource envoy.config.listener.v3.Listener "$f"
  n=$((n + 1))
done
m=0
for f in "$tmp"/ecds-*.pb "$tmp"/istio/ecds-*.pb "$tmp"/gloo/ecds-*.pb \
         "$tmp"/globex/ecds-*.pb "$tmp"/attach/ecds-*.pb; do
  check_resource envoy.config.core.v3.TypedExtensionConfig "$f"
  m=$((m + 1))
done
[ "$n" -gt 0 ] || fail "render wrote no listener"
[ "$m" -gt 0 ] || fail "render wrote no extension config"
for t in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager \
         envoy.extensions.filters.http.wasm.v3.Wasm \
         envoy.extensions.filters.http.rbac.v3.RBAC \
         envoy.extensions.filters.http.router.v3.Router \
         envoy.extensions.filters.network.wasm.v3.Wasm \
         envoy.extensions.filters.network.rbac.v3.RBAC \
         envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy \
         envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector \
         google.protobuf.StringValue \
         google.protobuf.BytesValue; do
  grep -qx "$t" "$tmp/types" || fail "no $t found inside the served resources"
done
# The VM and capability fields, as upstream reads them.
wasm=$(for f in "$tmp"/globex/ecds-*.pb.d/*Wasm.pb; do
  decode envoy.extensions.filters.http.wasm.v3.Wasm "$f"
done)
flat=$(tr -s ' \n' ' ' <<<"$wasm")
for want in 'allow_precompiled: true' 'nack_on_code_cache_miss: true' \
            'vm_id: "restricted-vm"' \
            'capability_restriction_config { allowed_capabilities { key: "proxy_log" value { } } allowed_capabilities { key: "proxy_on_request_headers" value { } } }'; do
  grep -qF "$want" <<<"$flat" ||
    fail "the globex Wasm config, decoded upstream, lacks $want: $flat"
done
# The RDS route of outbound-http: a v3 gRPC ApiConfigSource to the
# template's rdsCluster, as upstream reads it.
hcm=$(for f in "$tmp"/lds-*.pb.d/*HttpConnectionManager.pb; do
  decode envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager "$f"
done)
flat=$(tr -s ' \n' ' ' <<<"$hcm")
want='rds { config_source { api_config_source { api_type: GRPC grpc_services { envoy_grpc { cluster_name: "route-server" } } transport_api_version: V3 } resource_api_version: V3 } route_config_name: "outbound-routes" }'
grep -qF "$want" <<<"$flat" ||
  fail "no RDS config source to route-server in the served listeners: $flat"

# CSDS: a ClientStatusResponse about three proxies (acknowledged, with a
# substitute and a missing extension; rejected; pending), as upstream reads
# it, the resources inside expanded.
dump="$builddir/tests/csds_dump"
[ -x "$dump" ] || fail "$dump not built"
"$dump" "$srcdir/tests/data/e2e/store.yaml" "$tmp/csds.pb" 2>"$tmp/csds.err" ||
  fail "csds_dump failed: $(cat "$tmp/csds.err")"
files+=(envoy/service/status/v3/csds.proto)
csds=$(decode envoy.service.status.v3.ClientStatusResponse "$tmp/csds.pb")
check_known csds.pb "$csds" '^[[:space:]]*7: [0-9]+$'
for want in 'id: "dump-acked"' 'id: "dump-nacked"' 'id: "dump-pending"' \
            'client_status: ACKED' 'config_status: SYNCED' \
            'client_status: NACKED' 'config_status: ERROR' \
            'client_status: REQUESTED' 'config_status: STALE' \
            'client_status: DOES_NOT_EXIST' 'config_status: NOT_SENT' \
            'details: "listener inbound-http: bad filter (test NACK)"' \
            'type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"' \
            'key: "wasmxds.csds"'; do
  grep -qF "$want" <<<"$csds" ||
    fail "the CSDS response, decoded upstream, lacks $want"
done
# The resources inside (xds_config), each decoded as upstream reads it.
mv "$tmp/types" "$tmp/types.render"
: >"$tmp/types"
k=0
for part in "$tmp"/csds.pb.d/*.pb; do
  type=${part##*/}
  type=${type#*.}
  type=${type%.pb}
  check_resource "$type" "$part"
  k=$((k + 1))
done
[ "$k" -gt 0 ] || fail "the CSDS response carries no resource"
for t in envoy.extensions.filters.http.wasm.v3.Wasm \
         envoy.extensions.filters.http.rbac.v3.RBAC \
         envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager; do
  grep -qx "$t" "$tmp/types" || fail "no $t inside the CSDS resources"
done
cat "$tmp/types" >>"$tmp/types.render"
mv "$tmp/types.render" "$tmp/types"

# --ecds-slots: the slotted listeners and every slot's config (a Wasm
# filter renamed to its slot, or the empty slot's RBAC filter without
# rules) decode the same way.
mkdir -p "$tmp/slots"
"$bin" render --store "$srcdir/tests/data/e2e/store.yaml" --node-id decode-1 \
  --metadata wasmxds.tenant=organizations/acme/tenants/payments \
  --ecds-slots 2 --dump-dir "$tmp/slots" >/dev/null 2>"$tmp/render.err" ||
  fail "render --ecds-slots failed: $(cat "$tmp/render.err")"
k=0
for f in "$tmp"/slots/lds-*.pb; do
  check_resource envoy.config.listener.v3.Listener "$f"
done
for f in "$tmp"/slots/ecds-wasmxds.slot_*.pb; do
  check_resource envoy.config.core.v3.TypedExtensionConfig "$f"
  k=$((k + 1))
done
[ "$k" -gt 0 ] || fail "render --ecds-slots wrote no slot config"
out=$(for f in "$tmp"/slots/lds-*.pb.d/*HttpConnectionManager.pb; do
  decode envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager "$f"
done)
grep -q 'name: "wasmxds.slot/' <<<"$out" ||
  fail "no slot ECDS reference in the slotted listener"

# Network slots: the Istio store's TCP listener (NETWORK WasmPlugins) gets
# slots in each filter chain; the slots' configs are the network Wasm
# filter or the empty slot's network RBAC filter without rules.
mkdir -p "$tmp/netslots"
"$bin" render --store "$srcdir/tests/data/istio/store" \
  --node-id 'sidecar~10.0.0.1~reviews-v1-1.bookinfo~bookinfo.svc.cluster.local' \
  --metadata NAMESPACE=bookinfo --metadata 'LABELS={"app":"reviews"}' \
  --ecds-slots 2 --dump-dir "$tmp/netslots" >/dev/null 2>"$tmp/render.err" ||
  fail "render of the Istio store --ecds-slots failed: $(cat "$tmp/render.err")"
check_resource envoy.config.listener.v3.Listener "$tmp/netslots/lds-tcp-5432.pb"
out=$(decode envoy.config.listener.v3.Listener "$tmp/netslots/lds-tcp-5432.pb")
grep -Eq 'name: "wasmxds.slot/tcp-5432/L[0-9a-f]{8}/default/AUTHZ/0"' <<<"$out" ||
  fail "no network slot in the TCP listener's default chain"
grep -q 'type_urls: "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"' <<<"$out" ||
  fail "the network slots do not admit the network Wasm filter"
kn=0
for f in "$tmp"/netslots/ecds-wasmxds.slot_tcp-5432_*.pb; do
  check_resource envoy.config.core.v3.TypedExtensionConfig "$f"
  kn=$((kn + 1))
done
[ "$kn" -gt 0 ] || fail "render --ecds-slots wrote no network slot config"
# An empty slot is the network RBAC filter with its own stat_prefix and no
# rules; other RBAC configs there are an extension's substitute (an oci://
# plugin render does not fetch: deny-all, rules present).
empty=0
for f in "$tmp"/netslots/ecds-wasmxds.slot_tcp-5432_*.pb.d/*network.rbac.v3.RBAC.pb; do
  out=$(decode envoy.extensions.filters.network.rbac.v3.RBAC "$f")
  grep -q '^stat_prefix: "wasmxds_slot."' <<<"$out" || continue
  ! grep -q '^rules' <<<"$out" ||
    fail "an empty network slot carries RBAC rules (it must enforce nothing)"
  empty=$((empty + 1))
done
[ "$empty" -gt 0 ] || fail "no empty network slot (network RBAC, no rules)"
ls "$tmp"/netslots/ecds-wasmxds.slot_tcp-5432_*.pb.d/*network.wasm.v3.Wasm.pb \
  >/dev/null 2>&1 || fail "no network slot holds a network Wasm filter"
echo "upstream_decode: $kn network slot configs decode too"

# The attachment override reaches the edge under its own name.
edge=$(decode envoy.config.core.v3.TypedExtensionConfig \
  "$tmp/attach/ecds-organizations_acme_extensions_jwt-authn@edge.pb")
grep -qF 'name: "organizations/acme/extensions/jwt-authn@edge"' <<<"$edge" &&
  grep -qF 'edge.acme.example' <<<"$edge" ||
  fail "the edge's jwt-authn@edge, decoded upstream, lacks its override: $edge"

echo "upstream_decode: $k slot configs decode too"
echo "upstream_decode: $n listeners, $m extension configs and" \
     "$(wc -l <"$tmp/types") nested messages, and a CSDS response decode" \
     "with the upstream Envoy protos"
