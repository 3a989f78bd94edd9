#!/bin/sh
# install.sh: `make install DESTDIR=...` puts every file README.md's
# "Installing" table lists where it says (PREFIX being the configured
# prefix), the installed programs run, and the man pages format without a
# single warning (groff -ww, and man --warnings where man-db is present).
set -u

fail() {
  echo "install: FAIL: $*" >&2
  exit 1
}

srcdir=${WASMXDS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${WASMXDS_BUILDDIR:-.}
readme=$srcdir/README.md
[ -f "$builddir/Makefile" ] || fail "no Makefile in $builddir"
prefix=$(sed -n 's/^prefix = //p' "$builddir/Makefile")
[ -n "$prefix" ] || fail "no prefix in $builddir/Makefile"
tmp=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT

${MAKE:-make} -C "$builddir" install DESTDIR="$tmp/root" >"$tmp/log" 2>&1 ||
  { cat "$tmp/log" >&2; fail "make install DESTDIR=... failed"; }

# The table: rows "| `PREFIX/...` | ... |" under "### Installing".
paths=$(sed -n '/^### Installing/,/^##/p' "$readme" |
  sed -n 's/^| `PREFIX\/\([^`]*\)`.*/\1/p')
n=$(echo "$paths" | grep -c .)
[ "$n" -ge 8 ] || fail "only $n paths in README's Installing table"
for p in $paths; do
  [ -f "$tmp/root$prefix/$p" ] || fail "README lists PREFIX/$p; not installed"
done
for b in wasmxds wasmxdsctl; do
  "$tmp/root$prefix/bin/$b" -V >/dev/null 2>&1 || fail "installed $b -V fails"
done
bash -n "$tmp/root$prefix/share/bash-completion/completions/wasmxdsctl" ||
  fail "the bash completion has a syntax error"

for m in wasmxds.1 wasmxdsctl.1; do
  page=$tmp/root$prefix/share/man/man1/$m
  out=$(groff -ww -man -z "$page" 2>&1) || fail "groff failed on $m"
  [ -z "$out" ] || fail "groff -ww warns about $m: $out"
  if command -v man >/dev/null 2>&1; then
    out=$(LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$out" ] || fail "man --warnings warns about $m: $out"
  fi
done

# The unit starts the binary where this install put it, whatever the
# prefix (a unit naming /usr/local/bin after --prefix=/usr starts nothing).
unit=$tmp/root$prefix/lib/systemd/system/wasmxds.service
grep -q "^ExecStart=$prefix/bin/wasmxds " "$unit" ||
  fail "the installed unit does not start $prefix/bin/wasmxds"
${MAKE:-make} -C "$builddir" install-data-local prefix=/opt/wx \
  DESTDIR="$tmp/other" >"$tmp/log" 2>&1 ||
  { cat "$tmp/log" >&2; fail "make install-data-local prefix=/opt/wx failed"; }
grep -q '^ExecStart=/opt/wx/bin/wasmxds ' \
  "$tmp/other/opt/wx/lib/systemd/system/wasmxds.service" ||
  fail "with prefix=/opt/wx the unit does not start /opt/wx/bin/wasmxds"
echo "install: $n files where the README says; man pages clean"
