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

NPM_PKG='@grpc/grpc-js-xds'
NPM_VER='1.14.1'
NPM_TGZ="grpc-grpc-js-xds-${NPM_VER}.tgz"
# sha512 of the registry tarball (its dist.integrity, in hex).
NPM_SHA512='1769955f011e316c35ce73d4ae9fbcca48ec20e5677fb46ff84c88bd739fcfbdf0e6d3689429f3a24a4b904fddd84871df43c99995ea09074ca71f0370126884'

fail() {
  echo "wirecompat: FAIL: $*" >&2
  exit 1
}

srcdir=${WASMXDS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${WASMXDS_BUILDDIR:-$(pwd)}
protoc=${PROTOC:-protoc}
pb_include=${PROTOBUF_INCLUDE:-/usr/include}
prog="$builddir/tests/wirecompat"

[ -x "$prog" ] || fail "$prog not built (run make check)"
[ -f "$srcdir/proto/local.mk" ] || fail "no proto/local.mk under $srcdir"
[ -f "$pb_include/google/protobuf/any.proto" ] ||
  fail "no google/protobuf/any.proto under $pb_include"

cache_root=${WASMXDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmxds}
pkgdir="$cache_root/npm/grpc-js-xds-$NPM_VER"
deps="$pkgdir/package/deps"

# --- 1. The upstream snapshot, fetched once. --------------------------------

fetch_snapshot() {
  local tmp
  mkdir -p "$pkgdir" || fail "cannot create cache directory $pkgdir"
  tmp=$(mktemp -d "$pkgdir/.fetch.XXXXXX") || fail "mktemp in $pkgdir"
  # Removed on any exit from here on, success included.
  trap 'rm -rf "$tmp"' EXIT

  command -v npm >/dev/null ||
    fail "npm not found: cannot fetch $NPM_PKG@$NPM_VER into $pkgdir" \
         "(install npm, or unpack that package's tarball there by hand)"
  echo "wirecompat: fetching $NPM_PKG@$NPM_VER into $pkgdir"
  if ! (cd "$tmp" &&
         npm pack --silent "$NPM_PKG@$NPM_VER" >npm.out 2>npm.err); then
    cat "$tmp/npm.err" >&2 || true
    fail "npm pack $NPM_PKG@$NPM_VER failed; the upstream Envoy API protos" \
         "are needed from that package (cache: $pkgdir)"
  fi
  [ -f "$tmp/$NPM_TGZ" ] ||
    fail "npm pack $NPM_PKG@$NPM_VER did not produce $NPM_TGZ"
  local sum
  sum=$(sha512sum "$tmp/$NPM_TGZ" | cut -d' ' -f1)
  [ "$sum" = "$NPM_SHA512" ] ||
    fail "$NPM_PKG@$NPM_VER: tarball sha512 $sum, expected $NPM_SHA512"
  mkdir "$tmp/unpack"
  tar -xzf "$tmp/$NPM_TGZ" -C "$tmp/unpack" ||
    fail "cannot unpack $NPM_TGZ"
  [ -d "$tmp/unpack/package/deps/envoy-api" ] ||
    fail "$NPM_PKG@$NPM_VER has no package/deps/envoy-api"
  # A concurrent run may have won; either copy is the same.
  if [ ! -d "$pkgdir/package" ]; then
    mv "$tmp/unpack/package" "$pkgdir/package" ||
      fail "cannot move the unpacked package into $pkgdir"
  fi
  mv -f "$tmp/$NPM_TGZ" "$pkgdir/$NPM_TGZ" || true
  rm -rf "$tmp"
  trap - EXIT
}

if [ ! -d "$deps/envoy-api" ]; then
  fetch_snapshot
fi
[ -d "$deps/envoy-api" ] || fail "no $deps/envoy-api after fetching"

# --- 2. Patch the snapshot's validate.proto (idempotent). -------------------
# The bundled protoc-gen-validate predates StringRules.ignore_empty (26),
# which the Envoy files use, so protoc refuses them. Only StringRules needs
# it: every ignore_empty in the snapshot is a string rule
# (protocol.proto, among others). Should a later snapshot use it in other
# *Rules, protoc fails in step 4 and names the message.

validate="$deps/protoc-gen-validate/validate/validate.proto"
[ -f "$validate" ] || fail "no $validate in the snapshot"
if ! grep -q 'optional bool ignore_empty = 26;' "$validate"; then
  awk '
    /^message StringRules[[:space:]]*\{/ { inside = 1 }
    inside && /^\}/ {
      print "  optional bool ignore_empty = 26;"
      inside = 0
      done = 1
    }
    { print }
    END { if (!done) exit 1 }
  ' "$validate" >"$validate.tmp.$$" ||
    { rm -f "$validate.tmp.$$"; fail "cannot patch StringRules in $validate"; }
  mv "$validate.tmp.$$" "$validate" || fail "cannot replace $validate"
fi

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
