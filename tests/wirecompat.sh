#!/bin/bash
# wirecompat.sh: prove that proto/ is wire-compatible with the upstream
# Envoy API. Builds a descriptor set of our proto/ files and one of the same
# files from the upstream Envoy API snapshot shipped in the npm package
# @grpc/grpc-js-xds@1.14.1, then lets tests/wirecompat compare them.
#
# The upstream copy lives in a cache outside the tree:
#   ${WASMXDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmxds}/npm/grpc-js-xds-1.14.1/
# If it is absent, `npm pack` fetches the pinned tarball (checked against a
# pinned SHA-512) and it is unpacked there. No network and no cache is a
# failure, never a skip.
#
# Environment (set by AM_TESTS_ENVIRONMENT): WASMXDS_SRCDIR,
# WASMXDS_BUILDDIR, PROTOC (default protoc), PROTOBUF_INCLUDE (default
# /usr/include).

set -euo pipefail

fail() {
  echo "wirecompat: FAIL: $*" >&2
  exit 1
}

# shellcheck source=tests/upstream.sh
. "$(dirname "$0")/upstream.sh"

prog="$builddir/tests/wirecompat"
[ -x "$prog" ] || fail "$prog not built (run make check)"
[ -f "$srcdir/proto/local.mk" ] || fail "no proto/local.mk under $srcdir"

# --- 3. Our file list: every .proto under proto/, which must equal
# PROTO_REL in proto/local.mk, whose PROTO_GEN_C must match it. ----------

mk_list() { # $1: variable name in proto/local.mk
  sed -n "/^$1 = /,/^\$/p" "$srcdir/proto/local.mk" |
    tr -s "[:space:]\\\\" '\n' | grep -E '\.(proto|c)$' | sort
}
ours=$(cd "$srcdir/proto" && find . -name '*.proto' | sed 's|^\./||' | sort)
listed=$(mk_list PROTO_REL)
gen=$(mk_list PROTO_GEN_C | sed -n 's|^proto/gen/\(.*\)\.pb-c\.c$|\1.proto|p' |
      grep -v '^google/protobuf/' | sort)
[ -n "$ours" ] || fail "no .proto files under $srcdir/proto"
[ "$ours" = "$listed" ] ||
  fail "proto/*.proto and PROTO_REL in proto/local.mk differ:" \
       "$(diff <(echo "$ours") <(echo "$listed") | grep '^[<>]' | tr '\n' ' ')"
[ "$listed" = "$gen" ] ||
  fail "PROTO_REL and PROTO_GEN_C in proto/local.mk differ:" \
       "$(diff <(echo "$listed") <(echo "$gen") | grep '^[<>]' | tr '\n' ' ')"

# --- 4. Two descriptor sets. ------------------------------------------------

mkdir -p "$builddir/tests"
ours_pb="$builddir/tests/wirecompat-ours.pb"
up_pb="$builddir/tests/wirecompat-upstream.pb"
rm -f "$ours_pb" "$up_pb"

# shellcheck disable=SC2086 # $ours is a newline-separated list of paths.
(cd "$srcdir/proto" &&
  "$protoc" -I . -I "$pb_include" --include_imports -o "$ours_pb" $ours) ||
  fail "protoc rejected our proto/ files"

roots=(envoy-api xds googleapis protoc-gen-validate)
missing=0
for f in $ours; do
  found=
  for r in "${roots[@]}"; do
    if [ -f "$deps/$r/$f" ]; then found=1; break; fi
  done
  if [ -z "$found" ]; then
    echo "$f: file missing upstream (not in ${roots[*]})"
    missing=$((missing + 1))
  fi
done
[ "$missing" -eq 0 ] ||
  fail "$missing of our files have no upstream counterpart"

iflags=()
for r in "${roots[@]}"; do iflags+=(-I "$deps/$r"); done
# shellcheck disable=SC2086
"$protoc" "${iflags[@]}" -I "$pb_include" --include_imports -o "$up_pb" $ours ||
  fail "protoc rejected the upstream files from $deps"

# --- 5. Compare. ------------------------------------------------------------

"$prog" "$ours_pb" "$up_pb"
