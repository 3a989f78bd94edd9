#!/bin/sh
# tests/first_command.sh: the README's first command, run as a newcomer
# runs it: in a fresh `git clone` of this checkout (no build/, no
# configure), on a machine without /var/cache/wasmxds (a private mount
# namespace with an empty tmpfs over /var/cache), until /readyz answers.
# The command is read from the README's Quick start, so the two cannot
# drift apart; only the ports change (free ones, so a developer's own
# server on 18000/18001 is left alone).
#
# Skipped (77) in a sanitizer build (the plain build's suite runs it: the
# command builds its own plain build/), outside a git checkout (a dist
# tarball), or without root (unshare -m).
set -u

fail() { echo "first_command: FAIL: $*" >&2; exit 1; }
skip() { echo "first_command: skipped: $*"; exit 77; }

src=${WASMXDS_SRCDIR:?}
builddir=${WASMXDS_BUILDDIR:?}
if grep -q -- '--enable-sanitizers' "$builddir/config.log" 2>/dev/null; then
  skip "sanitizer build (the plain build's suite runs it)"
fi
git -C "$src" rev-parse --verify -q HEAD >/dev/null 2>&1 ||
  skip "$src is not a git checkout"
unshare -m true 2>/dev/null || skip "unshare -m needs root"
command -v curl >/dev/null 2>&1 || skip "no curl"

cmd=$(sed -n '/^# 1\. /{n;p;q;}' "$src/README.md")
case "$cmd" in
"deploy/setup.sh && build/wasmxds "*"--listen 127.0.0.1:18000"*) ;;
*) fail "README Quick start: first command not found or changed shape: '$cmd'" ;;
esac

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
xport=$(free_port)
aport=$(free_port)
cmd=$(printf '%s' "$cmd" | sed "s/127\\.0\\.0\\.1:18000/127.0.0.1:$xport/")
cmd="$cmd --admin-listen 127.0.0.1:$aport"

tmp=$(mktemp -d /tmp/first_command.XXXXXX)
pgid=
cleanup() {
  if [ -n "$pgid" ]; then
    kill -TERM "-$pgid" 2>/dev/null
    i=0
    while kill -0 "-$pgid" 2>/dev/null && [ $i -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -KILL "-$pgid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

git clone -q "$src" "$tmp/wasmxds" || fail "git clone $src"
cd "$tmp/wasmxds" || fail "cd"
[ ! -e build ] && [ ! -e configure ] || fail "the clone is not fresh"

# Its own session, so the whole tree (setup.sh, make, wasmxds) can be
# stopped; its own mount namespace, so /var/cache is empty for it alone.
setsid unshare -m sh -c "mount -t tmpfs tmpfs /var/cache && { $cmd; }" \
  >"$tmp/log" 2>&1 &
pgid=$!

# The build comes first: allow it up to 15 minutes (a loaded 2-core CI).
deadline=$(($(date +%s) + 900))
ready=
while [ "$(date +%s)" -lt "$deadline" ]; do
  if ! kill -0 "$pgid" 2>/dev/null; then
    tail -30 "$tmp/log" >&2
    fail "the first command exited before /readyz answered"
  fi
  body=$(curl -s -m 2 "http://127.0.0.1:$aport/readyz" 2>/dev/null) &&
    case "$body" in ready*) ready=1; break ;; esac
  sleep 1
done
[ -n "$ready" ] || { tail -30 "$tmp/log" >&2; fail "/readyz never said ready"; }

grep -q 'module fetching on: cache /var/cache/wasmxds/modules' "$tmp/log" ||
  fail "not serving with the default module cache"
if grep -E 'Z (error|warn) ' "$tmp/log" >&2; then
  fail "the first run logged an error or a warning"
fi
echo "first_command: ready on 127.0.0.1:$xport from a fresh clone, /var/cache empty"
exit 0
