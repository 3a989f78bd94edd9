#!/bin/bash
# conformance.sh: checks the real wasmxds ($WASMXDS_BIN) with an xDS client
# of its own, tests/conformance/xds_conformance.py, whose messages come from
# the UPSTREAM Envoy API snapshot (the one tests/upstream.sh caches outside
# the tree), not from our proto/: so a deviation our proto/ files share with
# the server cannot hide. Python modules are generated with protoc
# --python_out into the build dir ($builddir/tests/conformance-gen, never the
# source tree); the gRPC methods are called through grpc's generic
# stream_stream with those messages' serializers (python3-grpc-tools' own
# protoc, 3.5, is too old for the snapshot).
#
# Needs Debian's python3-grpcio (/usr/bin/python3); exits 77 (skip) without
# it. Environment as for tests/wirecompat.sh, plus WASMXDS_BIN.

set -euo pipefail

fail() {
  echo "conformance: FAIL: $*" >&2
  exit 1
}

py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "conformance: SKIP: python3-grpcio not installed (deploy/setup.sh --test-deps)"
  exit 77
fi

# shellcheck source=tests/upstream.sh
. "$(dirname "$0")/upstream.sh"

bin=${WASMXDS_BIN:-$builddir/wasmxds}
[ -x "$bin" ] || fail "$bin not built (run make check)"

gen="$builddir/tests/conformance-gen"
rm -rf "$gen"
mkdir -p "$gen"
iflags=()
for r in envoy-api xds googleapis protoc-gen-validate; do
  iflags+=(-I "$deps/$r")
done
roots=(
  envoy/service/discovery/v3/ads.proto
  envoy/service/listener/v3/lds.proto
  envoy/service/extension/v3/config_discovery.proto
  envoy/config/listener/v3/listener.proto
  envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto
  envoy/extensions/filters/http/wasm/v3/wasm.proto
  envoy/extensions/filters/http/rbac/v3/rbac.proto
  envoy/extensions/filters/network/wasm/v3/wasm.proto
  envoy/extensions/filters/network/rbac/v3/rbac.proto
)
"$protoc" "${iflags[@]}" -I "$pb_include" --include_imports \
  -o "$gen/set.pb" "${roots[@]}" ||
  fail "protoc rejected the upstream files from $deps"
# Every file those need, except google/protobuf/ (python3-protobuf has them).
mapfile -t files < <("$py" -c '
import sys
from google.protobuf import descriptor_pb2
s = descriptor_pb2.FileDescriptorSet()
s.ParseFromString(open(sys.argv[1], "rb").read())
for f in s.file:
    if not f.name.startswith("google/protobuf/"):
        print(f.name)
' "$gen/set.pb")
[ "${#files[@]}" -gt 0 ] || fail "no files in $gen/set.pb"
"$protoc" "${iflags[@]}" -I "$pb_include" --python_out="$gen" "${files[@]}" ||
  fail "protoc --python_out failed on the upstream files"

timeout 90 "$py" "$srcdir/tests/conformance/xds_conformance.py" "$bin" "$gen"
