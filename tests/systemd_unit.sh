#!/bin/sh
# systemd_unit.sh: deploy/wasmxds.service, with ExecStart pointed at the
# built binary, passes `systemd-analyze verify` without a single complaint
# about it (verify exits 0 on unknown keys or bad values, so its output is
# checked too), and keeps what the README promises of it. Skipped (exit
# 77) where systemd-analyze is not installed. This checks the unit file;
# it does not run wasmxds under systemd.
set -u

fail() {
  echo "systemd_unit: FAIL: $*" >&2
  exit 1
}

srcdir=${WASMXDS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
bin=${WASMXDS_BIN:-${WASMXDS_BUILDDIR:-.}/wasmxds}
unit=$srcdir/deploy/wasmxds.service

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd_unit: systemd-analyze not installed; skipped" >&2
  exit 77
fi
[ -x "$bin" ] || fail "$bin not built"
[ -r "$unit" ] || fail "$unit missing"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed "s|^ExecStart=/usr/local/bin/wasmxds |ExecStart=$bin |" "$unit" \
  >"$tmp/wasmxds.service"
grep -q "^ExecStart=$bin --store " "$tmp/wasmxds.service" ||
  fail "ExecStart is not /usr/local/bin/wasmxds --store ..."

out=$(systemd-analyze verify "$tmp/wasmxds.service" 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "systemd-analyze verify exited $rc: $out"
# Lines about other units of this machine are not ours to fix.
ours=$(printf '%s\n' "$out" | grep 'wasmxds')
[ -z "$ours" ] || fail "systemd-analyze verify complains: $ours"

# What the README says of the unit.
for want in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' \
  'DynamicUser=yes' 'CacheDirectory=wasmxds' 'ProtectSystem=strict' \
  'NoNewPrivileges=yes' 'KillSignal=SIGTERM'; do
  grep -qxF "$want" "$unit" || fail "no line '$want'"
done
# wasmxds is the main process: the default NotifyAccess=main suffices.
! grep -q '^NotifyAccess=' "$unit" || fail "NotifyAccess= set, but only the main process notifies"
# The cache directory is where wasmxds keeps modules by default.
"$bin" --help 2>&1 | grep -q '/var/cache/wasmxds/modules' ||
  fail "the default --module-cache is no longer in /var/cache/wasmxds"
echo "systemd_unit: ok"
