#!/bin/sh
# tests/fuzz/seeds.sh: (re)writes the generated seeds of tests/fuzz/corpus/
# from the example stores, tests/data/tar and protoc --encode (for the
# protobuf targets). Run from the source root; needs protoc and python3.
# Inputs the fuzzer found and regression inputs are committed next to
# these and are not touched.
set -eu
c=tests/fuzz/corpus
inc="-Iproto -I${PROTOBUF_INCLUDE:-/usr/include}"
enc() { # enc MESSAGE FILE.proto < text > bytes
  # shellcheck disable=SC2086
  protoc $inc --encode="$1" "$2"
}
mkdir -p $c/decode $c/pbyaml $c/ads_sotw $c/ads_delta $c/identity $c/oci \
  $c/unpack $c/creds $c/etcd $c/etcd_split $c/admin
for f in tests/data/store/roundtrip/*.yaml tests/data/istio/store/*.yaml \
  deploy/examples/store/*/*.yaml deploy/examples/istio/store/*.yaml; do
  cp "$f" "$c/decode/seed-$(echo "$f" | tr / _)"
done
for f in tests/data/tar/*.tar.gz; do
  cp "$f" "$c/unpack/seed-$(basename "$f")"
  gzip -dc "$f" >"$c/unpack/seed-$(basename "$f" .gz)"
done
D=proto/envoy/service/discovery/v3/discovery.proto
N=proto/envoy/config/core/v3/base.proto
node_body='id: "proxy-1" cluster: "c"
  metadata { fields { key: "wasmxds.organization" value { string_value: "acme" } }
             fields { key: "wasmxds.tenant" value { string_value: "organizations/acme/tenants/payments" } } }'
istio_body='id: "sidecar~10.0.0.1~pod-1.shop~shop.svc.cluster.local"
  metadata { fields { key: "NAMESPACE" value { string_value: "shop" } }
             fields { key: "LABELS" value { struct_value { fields { key: "app" value { string_value: "web" } } } } } }'
node="node { $node_body }"
istio_node="node { $istio_body }"
L=type.googleapis.com/envoy.config.listener.v3.Listener
E=type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$node type_url: \"$L\"" | enc envoy.service.discovery.v3.DiscoveryRequest $D >"$tmp/s1"
echo "$istio_node type_url: \"$L\"" | enc envoy.service.discovery.v3.DiscoveryRequest $D >"$tmp/s1i"
echo "type_url: \"$E\" resource_names: \"organizations/acme/extensions/a\" resource_names: \"organizations/acme/extensions/b\"" |
  enc envoy.service.discovery.v3.DiscoveryRequest $D >"$tmp/s2"
echo "type_url: \"$L\" version_info: \"1\" response_nonce: \"1\"" |
  enc envoy.service.discovery.v3.DiscoveryRequest $D >"$tmp/s3"
echo "type_url: \"$E\" response_nonce: \"2\" error_detail { code: 3 message: \"bad config\" }" |
  enc envoy.service.discovery.v3.DiscoveryRequest $D >"$tmp/s4"
echo "$node type_url: \"$L\"" | enc envoy.service.discovery.v3.DeltaDiscoveryRequest $D >"$tmp/d1"
echo "type_url: \"$E\" resource_names_subscribe: \"organizations/acme/extensions/a\" resource_names_subscribe: \"*\"" |
  enc envoy.service.discovery.v3.DeltaDiscoveryRequest $D >"$tmp/d2"
echo "type_url: \"$E\" resource_names_unsubscribe: \"organizations/acme/extensions/a\" initial_resource_versions { key: \"organizations/acme/extensions/b\" value: \"x\" }" |
  enc envoy.service.discovery.v3.DeltaDiscoveryRequest $D >"$tmp/d3"
echo "type_url: \"$L\" response_nonce: \"1\" error_detail { code: 3 message: \"nack\" }" |
  enc envoy.service.discovery.v3.DeltaDiscoveryRequest $D >"$tmp/d4"
echo "$node_body" | enc envoy.config.core.v3.Node $N >"$tmp/n1"
echo "$istio_body" | enc envoy.config.core.v3.Node $N >"$tmp/n2"
python3 - "$tmp" "$c" <<'PY'
import os, struct, sys, json, base64, gzip
tmp, c = sys.argv[1], sys.argv[2]
rd = lambda n: open(os.path.join(tmp, n), 'rb').read()
def rec(op, payload): return bytes([op]) + struct.pack('<H', len(payload)) + payload
def w(t, name, data):
    open(os.path.join(c, t, 'seed-' + name), 'wb').write(data if isinstance(data, bytes) else data.encode())
# SotW: first byte = service; records: op 0 request (0x10 nonce, 0x20
# version), 1 snapshot, 2 drain.
w('ads_sotw', 'ack-flow', b'\0' + rec(0, rd('s1')) + rec(2, b'') + rec(0x30, rd('s3')) +
  rec(0, rd('s2')) + rec(2, b'') + rec(1, b'\1') + rec(0x12, b'') + rec(0x30, rd('s2')) + rec(3, b'\2'))
w('ads_sotw', 'nack', b'\0' + rec(0, rd('s1')) + rec(2, b'') + rec(0x10, rd('s4')) + rec(2, b''))
w('ads_sotw', 'istio', b'\0' + rec(0, rd('s1i')) + rec(2, b'') + rec(0x30, rd('s3')))
w('ads_sotw', 'lds-only', b'\1' + rec(0, rd('s1')) + rec(2, b'') + rec(3, b'\2'))
w('ads_sotw', 'ecds-only', b'\2' + rec(0, rd('s1')[:0] + rd('s2')) + rec(2, b''))
w('ads_delta', 'flow', b'\0' + rec(0, rd('d1')) + rec(2, b'') + rec(0x10, rd('d2')) + rec(0x12, b'') +
  rec(1, b'\1') + rec(2, b'') + rec(0x10, rd('d3')) + rec(3, b'\2') + rec(0x10, rd('d4')))
w('ads_delta', 'ecds', b'\2' + rec(0, rd('d1')[:0] + rd('d2')) + rec(2, b''))
w('identity', 'node', b'\0' + rd('n1'))
w('identity', 'istio-node', b'\0' + rd('n2'))
w('identity', 'spiffe', b'\1spiffe://cluster.local/organizations/acme/tenants/payments/w/x')
w('identity', 'spiffe-istio', b'\1spiffe://cluster.local/ns/shop/sa/default')
w('identity', 'tenant', b'\1organizations/acme/tenants/web')
h = 'a' * 64
w('oci', 'image', json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.module.wasm.config.v1+json", "digest": "sha256:" + h, "size": 2},
  "layers": [{"mediaType": "application/vnd.module.wasm.content.layer.v1+wasm", "digest": "sha256:" + h, "size": 8}]}))
w('oci', 'compat', json.dumps({"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
  "digest": "sha256:" + h, "size": 2}, "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
  "digest": "sha256:" + h, "size": 100}]}))
w('oci', 'index', json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [{"digest": "sha256:" + h, "platform": {"os": "unknown", "architecture": "unknown"}},
                {"digest": "sha256:" + 'b' * 64, "platform": {"os": "linux", "architecture": "arm64"}},
                {"digest": "sha256:" + 'c' * 64, "platform": {"os": "wasip1", "architecture": "wasm"}}]}))
w('oci', 'config', json.dumps({"config": {"rootIds": ["a", "b"]}, "root_ids": ["c"]}))
w('creds', 'auths', b'\0' + json.dumps({"auths": {"registry.example.com": {"auth": base64.b64encode(b"u:p").decode()}}}).encode())
w('creds', 'userpass', b'\1' + json.dumps({"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"}}}).encode())
w('creds', 'legacy', b'\2' + json.dumps({"localhost:5000": {"auth": base64.b64encode(b"a:b").decode()}}).encode())
b64 = lambda s: base64.b64encode(s.encode()).decode()
ext = open('deploy/examples/store/extensions/authn-jwt.yaml').read()
tmpl = open('deploy/examples/store/listeners/inbound.yaml').read()
kv = lambda k, v, r: {"key": b64(k), "value": b64(v), "create_revision": str(r), "mod_revision": str(r), "version": "1"}
w('etcd', 'range', json.dumps({"header": {"cluster_id": "1", "member_id": "2", "revision": "9", "raft_term": "2"},
  "kvs": [kv("/wasmxds/extensions/acme/a", ext, 5), kv("/wasmxds/templates/in", tmpl, 6)], "count": "2"}))
w('etcd', 'watch', json.dumps({"result": {"header": {"revision": "10"}, "events": [
  {"kv": kv("/wasmxds/extensions/acme/a", ext, 10)}, {"type": "DELETE", "kv": {"key": b64("/wasmxds/templates/in"), "mod_revision": "10"}}]}}))
w('etcd', 'created', json.dumps({"result": {"header": {"cluster_id": "1", "revision": "3"}, "created": True}}))
w('etcd', 'compacted', json.dumps({"result": {"header": {"revision": "3"}, "compact_revision": "2", "canceled": True, "cancel_reason": "compacted"}}))
w('etcd', 'error', json.dumps({"error": {"grpc_code": 16, "message": "invalid auth token"}}))
w('etcd', 'error-unary', json.dumps({"error": "etcdserver: permission denied", "code": 7, "message": "permission denied"}))
stream = ''.join(json.dumps({"result": {"header": {"revision": str(i)}, "events": [{"kv": kv("/wasmxds/k", "x\"}{", i)}]}}) + "\n" for i in range(3))
w('etcd_split', 'stream', b'\3' + stream.encode())
w('etcd_split', 'escapes', b'\0' + b'{"a":"\\"}"}  {"b":{"c":"{"}}\r\n{')
w('admin', 'get-module', 'GET /modules/sha256/' + h + '.wasm HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/"' + h + '", *\r\n\r\n')
w('admin', 'post-body', 'POST /debug/reload?x=1 HTTP/1.1\r\nContent-Length: 5\r\nAuthorization: Bearer t\r\n\r\nhello')
w('admin', 'chunked', 'PUT /x HTTP/1.1\nTransfer-Encoding: chunked\n\n5\r\nhello\r\n0\r\n\r\n')
w('pbyaml', 'router', b'\0{"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": true}')
w('pbyaml', 'rbac', b'\1rules:\n  action: DENY\n  policies:\n    p:\n      permissions: [{any: true}]\n      principals: [{header: {name: x, string_match: {exact: y}}}]\n')
w('pbyaml', 'wasm', b'\2config:\n  name: x\n  vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: /a.wasm}}}\n  configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: "{}"}\n')
w('pbyaml', 'lua', b'\3default_source_code: {inline_string: "function envoy_on_request(h) end"}\n')
w('pbyaml', 'cors', b'\4{}\n')
w('pbyaml', 'hcm', b'\x0astat_prefix: in\nroute_config: {name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: app, timeout: 1.5s}}]}]}\nhttp_filters: [{name: r, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]\n')
w('pbyaml', 'struct', b'\x0ba: [1, 2.5, null, true, {b: c}]\n')
PY
