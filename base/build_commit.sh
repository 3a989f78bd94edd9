#!/bin/sh
# base/build_commit.sh SRCDIR: prints the commit the tree at SRCDIR was
# built from, as `git describe --always --dirty` says it ("8f2c8d6",
# "v0.1.0-3-g8f2c8d6-dirty"), or "unknown" when SRCDIR is not a git
# checkout (a release tarball) or git cannot say. Only SRCDIR's own .git
# counts: a tarball unpacked inside another repository is still
# "unknown". Used by base/local.mk to write base/build_commit.h.
srcdir=${1:-.}
commit=unknown
if test -e "$srcdir/.git"; then
  c=$(git -C "$srcdir" describe --always --dirty 2>/dev/null) && test -n "$c" &&
    commit=$c
fi
# Nothing but what a C string literal may hold as is.
case $commit in
  *[!A-Za-z0-9._+-]*) commit=unknown ;;
esac
echo "$commit"
