#!/bin/sh
# build_info.sh: `-V` and `--version` of wasmxds and wasmxdsctl print
# "NAME VERSION (commit COMMIT)", COMMIT being what `git describe --always
# --dirty` says of the source tree (or "unknown" outside a git checkout),
# and base/build_commit.sh says "unknown" for a tree without its own .git
# (a release tarball, even one unpacked inside another repository).
set -u

fail() {
  echo "build_info: FAIL: $*" >&2
  exit 1
}

srcdir=${WASMXDS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${WASMXDS_BUILDDIR:-.}
gen=$srcdir/base/build_commit.sh
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$builddir/config.h")
[ -n "$version" ] || fail "no PACKAGE_VERSION in $builddir/config.h"

# The commit the tree is at now, without "-dirty" (which may change
# between the build and this test).
now=$(sh "$gen" "$srcdir")
now=${now%-dirty}
if [ -e "$srcdir/.git" ] && command -v git >/dev/null 2>&1 &&
  git -C "$srcdir" rev-parse HEAD >/dev/null 2>&1; then
  [ "$now" != unknown ] || fail "a git checkout reads as commit unknown"
  git -C "$srcdir" describe --always 2>/dev/null | grep -qxF "$now" ||
    fail "build_commit.sh says $now, git describe says otherwise"
fi

for name in wasmxds wasmxdsctl; do
  for flag in -V --version; do
    out=$("$builddir/$name" "$flag" 2>&1) || fail "$name $flag exited $?"
    case $out in
      "$name $version (commit $now)" | "$name $version (commit $now-dirty)") ;;
      *) fail "$name $flag: '$out', want '$name $version (commit $now[-dirty])'" ;;
    esac
  done
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tarball"
[ "$(sh "$gen" "$tmp/tarball")" = unknown ] || fail "a tree without .git"
if command -v git >/dev/null 2>&1; then
  git -C "$tmp" init -q . && git -C "$tmp" -c user.name=t -c user.email=t@t \
    commit -q --allow-empty -m x ||
    fail "git init in $tmp"
  [ "$(sh "$gen" "$tmp/tarball")" = unknown ] ||
    fail "a tarball inside another repository"
  [ "$(sh "$gen" "$tmp")" = "$(git -C "$tmp" describe --always --dirty)" ] ||
    fail "the other repository's own commit"
fi
echo "build_info: ok ($name $version, commit $now)"
