#!/bin/sh
# ack_callgrind.sh: instructions per ACK of bench/ack_bench, counted by
# callgrind in the measured phase only (the function ack_phase), so the
# figure does not depend on the machine's load.
#
#   bench/ack_callgrind.sh ./bench/ack_bench [ack_bench options...]
#
# ACK_CALLGRIND_TOP=N also prints the N functions with the most
# instructions of their own (callgrind_annotate). Default size 1,000
# proxies (pass --proxies to change it).
set -eu
bench=$1
shift
out=$(mktemp /tmp/wasmxds-ack-cg.XXXXXX)
trap 'rm -f "$out" "$out.log"' EXIT
valgrind --tool=callgrind --collect-atstart=no --toggle-collect=ack_phase \
  --callgrind-out-file="$out" "$bench" "$@" >"$out.log" 2>&1 || {
  cat "$out.log" >&2
  exit 1
}
acks=$(sed -n 's/^ACKS //p' "$out.log")
ir=$(sed -n 's/^totals: *//p; s/^summary: *//p' "$out" | head -n 1)
line=$(grep -v '^ACKS ' "$out.log" | grep ' per ACK' | sed 's/: [0-9.]* us of CPU per ACK//')
echo "$line: $((ir / acks)) instructions per ACK ($ir over $acks ACKs)"
if [ -n "${ACK_CALLGRIND_TOP:-}" ]; then
  callgrind_annotate --inclusive=no "$out" 2>/dev/null |
    sed -n '/^ *Ir/,$p' | head -n $((ACK_CALLGRIND_TOP + 3))
fi
