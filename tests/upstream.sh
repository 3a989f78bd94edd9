# upstream.sh: sourced by the tests that need the upstream Envoy API
# protos (wirecompat.sh, upstream_decode.sh). Makes sure the pinned npm
# package @grpc/grpc-js-xds@1.14.1 is unpacked in the cache outside the tree
#   ${WASMXDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmxds}/npm/grpc-js-xds-1.14.1/
# (fetched with `npm pack` and checked against a pinned SHA-512 when it is
# absent; no network and no cache is a failure, never a skip), patches its
# validate.proto so protoc accepts the snapshot, and sets `deps` to its
# deps/ directory. The sourcing script defines fail().

NPM_PKG='@grpc/grpc-js-xds'
NPM_VER='1.14.1'
NPM_TGZ="grpc-grpc-js-xds-${NPM_VER}.tgz"
# sha512 of the registry tarball (its dist.integrity, in hex).
NPM_SHA512='1769955f011e316c35ce73d4ae9fbcca48ec20e5677fb46ff84c88bd739fcfbdf0e6d3689429f3a24a4b904fddd84871df43c99995ea09074ca71f0370126884'

srcdir=${WASMXDS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${WASMXDS_BUILDDIR:-$(pwd)}
protoc=${PROTOC:-protoc}
pb_include=${PROTOBUF_INCLUDE:-/usr/include}
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

