#!/bin/sh
# fleet.sh: the fleet benchmark scenarios (issue 8). For each store size and
# each fleet size it generates a store, starts a real wasmxds on free
# loopback ports, and runs bench/loadgen (a separate process) through:
#   (a) connect storm: N proxies connect at once, until all hold a full config
#   (b) one extension's spec.config changed, seen by every proxy (ECDS-only
#       push): b1 reloaded by inotify (with the --debounce-ms 100 debounce),
#       b2 by SIGHUP right after the write (no debounce)
#   (c) one tenant-scoped extension changed: only tenant t003's proxies may
#       receive anything; every other proxy that receives a message is counted
#   (d) allowedIn change: shared-move leaves tenant t001 (LDS push to t001's
#       proxies, which drop the ECDS name); nobody else may receive anything
#   (e) the fleet idle for --idle seconds
# and, for each --churn-sizes N, the plugin churn scenario (issue 19) twice,
# without slots and with --ecds-slots --churn-slots: on the --churn-store
# store plus two organization-wide AUTHZ extensions (gen-store --churn),
# three changes: add an extension (first in AUTHZ), remove it, swap the
# priorities of two fail-closed ones; loadgen counts per proxy the listener
# drains (listeners whose config changed), LDS and ECDS messages.
# The server's RSS (/proc/PID/status) and CPU (/proc/PID/stat) and the
# generator's own CPU (getrusage) are reported separately. Every phase ends
# when the server is quiet (its CPU counter unchanged for 500 ms, read every
# 10 ms): server CPU runs from before the phase to that point, RSS is read
# there. Both share the
# machine's cores, which the output says.
#
# usage: fleet.sh --wasmxds BIN --loadgen BIN [--sizes "1000 10000"]
#                 [--stores "100x50 1000x200"] [--idle 60] [--workdir DIR]
#                 [--keep] [--server-args "..."] [--churn-sizes "10000"]
#                 [--churn-slots 8] [--churn-store 100x50]
#                 [--threads "1 default"] [LOADGEN RUN OPTION]...
# --threads runs scenarios (a)-(e) once per value: a number is passed to the
# server as --threads N, "default" passes nothing (the server's default, the
# online CPUs up to 16); the label carries T=N, so 1 vs N threads are side
# by side in the summary. Unset: one run each at the server's default.
# Anything else (e.g. --delta, --no-decode-cache) goes to every loadgen run.
set -u

WASMXDS=
LOADGEN=
SIZES="1000 10000"
STORES="100x50 1000x200"
IDLE=60
WORKDIR=
KEEP=0
SERVER_ARGS=
EXTRA=
CHURN_SIZES=
CHURN_SLOTS=8
CHURN_STORE=100x50
THREADS=default

while [ $# -gt 0 ]; do
  case "$1" in
  --wasmxds) WASMXDS=$2; shift 2 ;;
  --loadgen) LOADGEN=$2; shift 2 ;;
  --sizes) SIZES=$2; shift 2 ;;
  --stores) STORES=$2; shift 2 ;;
  --idle) IDLE=$2; shift 2 ;;
  --workdir) WORKDIR=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  --server-args) SERVER_ARGS=$2; shift 2 ;;
  --churn-sizes) CHURN_SIZES=$2; shift 2 ;;
  --churn-slots) CHURN_SLOTS=$2; shift 2 ;;
  --churn-store) CHURN_STORE=$2; shift 2 ;;
  --threads) THREADS=$2; shift 2 ;;
  *) EXTRA="$EXTRA $1"; shift ;;
  esac
done
if [ -z "$WASMXDS" ] || [ -z "$LOADGEN" ]; then
  echo "usage: fleet.sh --wasmxds BIN --loadgen BIN [--sizes ...] [--stores ...] [--idle S]" >&2
  exit 2
fi
WASMXDS=$(cd "$(dirname "$WASMXDS")" && pwd)/$(basename "$WASMXDS")
LOADGEN=$(cd "$(dirname "$LOADGEN")" && pwd)/$(basename "$LOADGEN")
CREATED=0
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/wasmxds-fleet.XXXXXX") || exit 1
  CREATED=1
fi
mkdir -p "$WORKDIR"
RESULTS=$WORKDIR/results.txt
CHURN_RESULTS=$WORKDIR/churn.txt
: >"$RESULTS"
: >"$CHURN_RESULTS"

# Both processes hold one descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

port_free() {
  ! (ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$1\$")
}
pick_ports() {
  p=$((20000 + $$ % 20000))
  while :; do
    if port_free "$p" && port_free $((p + 1)); then
      XDS_PORT=$p
      ADMIN_PORT=$((p + 1))
      return 0
    fi
    p=$((p + 2))
  done
}

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    i=0
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 150 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
}
# start_server DIR LABEL [SERVER ARG]...: a wasmxds on DIR/store on free
# ports, waited for until ready; 1 (its log printed) when it is not.
start_server() {
  sdir=$1
  slabel=$2
  shift 2
  pick_ports
  "$WASMXDS" --store "$sdir/store" --listen "127.0.0.1:$XDS_PORT" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --module-cache "$sdir/cache" \
    "$@" >"$sdir/server.log" 2>&1 &
  SERVER_PID=$!
  i=0
  while [ $i -lt 100 ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
    i=$((i + 1))
  done
  echo "fleet: $slabel: the server did not become ready; its log:" >&2
  tail -20 "$sdir/server.log" >&2
  stop_server
  return 1
}
trap 'stop_server; [ "$KEEP" = 1 ] || [ "$CREATED" = 0 ] || rm -rf "$WORKDIR"' EXIT
trap 'exit 130' INT TERM

echo "fleet: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); server and generator run on the same machine and compete for its cores"
echo "fleet: wasmxds $("$WASMXDS" --version 2>/dev/null | head -1), sizes: $SIZES; stores: $STORES; idle $IDLE s; loadgen options:${EXTRA:- none}"
# The server's default thread count, as it computes it (online CPUs, 1..16).
DEFAULT_THREADS=$(nproc)
[ "$DEFAULT_THREADS" -le 16 ] || DEFAULT_THREADS=16
echo "fleet: server threads per run: $THREADS (default = $DEFAULT_THREADS)"
echo "fleet: GRPC_EXPERIMENTS=${GRPC_EXPERIMENTS:-(unset)} in the server's environment"

status=0
for store in $STORES; do
  ext=${store%x*}
  ten=${store#*x}
  for n in $SIZES; do
  for t in $THREADS; do
    if [ "$t" = default ]; then
      targs=
      tn=$DEFAULT_THREADS
    else
      targs="--threads $t"
      tn=$t
    fi
    label="${ext}ext/${ten}ten/N=$n/T=$tn"
    dir=$WORKDIR/s$ext-$ten-n$n-t$t
    rm -rf "$dir"
    "$LOADGEN" gen-store --dir "$dir" --extensions "$ext" --tenants "$ten" >/dev/null || exit 1
    # shellcheck disable=SC2086
    if ! start_server "$dir" "$label" $SERVER_ARGS $targs; then
      status=1
      continue
    fi
    sleep 1 # let the loaded store settle before the baseline RSS
    echo
    echo "=================== store $ext extensions over $ten tenants, N=$n, $tn server threads ==================="
    # shellcheck disable=SC2086
    "$LOADGEN" run --target "127.0.0.1:$XDS_PORT" -n "$n" --tenants "$ten" \
      --server-pid "$SERVER_PID" --label "$label" \
      --step "b1,$dir/changes/b1.yaml,$dir/store/ext-org.yaml,all" \
      --step "b2,$dir/changes/b2.yaml,$dir/store/ext-org.yaml,all,hup" \
      --step "c,$dir/changes/c.yaml,$dir/store/ext-t003.yaml,tenant=t003" \
      --step "d,$dir/changes/d.yaml,$dir/store/ext-shared.yaml,tenant=t001" \
      --idle-s "$IDLE" $EXTRA >"$dir/loadgen.out" 2>"$dir/loadgen.err"
    rc=$?
    grep -v '^FLEET ' "$dir/loadgen.out"
    grep '^FLEET ' "$dir/loadgen.out" >>"$RESULTS"
    if [ -s "$dir/loadgen.err" ]; then
      echo "  loadgen stderr (first lines):"
      head -15 "$dir/loadgen.err" | sed 's/^/    /'
    fi
    [ $rc = 0 ] || { echo "fleet: $label: loadgen exited $rc"; status=1; }
    stop_server
    warn=$(grep -c ' warn ' "$dir/server.log")
    err=$(grep -c ' error ' "$dir/server.log")
    nack=$(grep -E ' (warn|error) ' "$dir/server.log" | grep -c NACK)
    refused=$(grep -c 'refused' "$dir/server.log")
    echo "  server log: $warn warnings ($refused 'ECDS name refused'), $err errors, $nack NACK lines"
    grep -E ' (warn|error) ' "$dir/server.log" | grep -v refused | head -5 | sed 's/^/    /'
  done
  done
done

# The plugin churn scenario (issue 19): slots off, then --ecds-slots.
cext=${CHURN_STORE%x*}
cten=${CHURN_STORE#*x}
for n in $CHURN_SIZES; do
  for slots in 0 "$CHURN_SLOTS"; do
    label="churn/${cext}ext/${cten}ten/N=$n/slots=$slots"
    dir=$WORKDIR/churn-$cext-$cten-n$n-s$slots
    rm -rf "$dir"
    "$LOADGEN" gen-store --dir "$dir" --extensions "$cext" --tenants "$cten" --churn >/dev/null || exit 1
    sargs=
    [ "$slots" = 0 ] || sargs="--ecds-slots $slots"
    # shellcheck disable=SC2086
    if ! start_server "$dir" "$label" $SERVER_ARGS $sargs; then
      status=1
      continue
    fi
    sleep 1
    echo
    echo "=================== churn: store $cext extensions over $cten tenants, N=$n, ${sargs:-no slots} ==================="
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    # shellcheck disable=SC2086
    "$LOADGEN" run --target "127.0.0.1:$XDS_PORT" -n "$n" --tenants "$cten" \
      --server-pid "$SERVER_PID" --label "$label" --timeout-s 300 \
      --step "add,$dir/changes/churn-add.yaml,$dir/store/ext-churn.yaml,all" \
      --step "remove,$dir/changes/churn-remove.yaml,$dir/store/ext-churn.yaml,all" \
      --step "swap,$dir/changes/churn-swap.yaml,$dir/store/ext-churn.yaml,all" \
      $EXTRA >"$dir/loadgen.out" 2>"$dir/loadgen.err"
    rc=$?
    la=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "load average after: $la"
    grep -v '^FLEET ' "$dir/loadgen.out"
    grep '^FLEET ' "$dir/loadgen.out" | sed "s|\$| slots=$slots loadavg=$(echo "$la" | tr ' ' '/')|" >>"$CHURN_RESULTS"
    if [ -s "$dir/loadgen.err" ]; then
      echo "  loadgen stderr (first lines):"
      head -15 "$dir/loadgen.err" | sed 's/^/    /'
    fi
    [ $rc = 0 ] || { echo "fleet: $label: loadgen exited $rc"; status=1; }
    stop_server
  done
done

# Summary tables from the FLEET lines.
echo
echo "=================== summary (server and generator share $(nproc) cores) ==================="
[ -s "$RESULTS" ] && awk '
function kv(line,   i, n, a, p) {
  delete F
  n = split(line, a, " ")
  for (i = 2; i <= n; i++) { p = index(a[i], "="); if (p) F[substr(a[i], 1, p - 1)] = substr(a[i], p + 1) }
}
{ kv($0); ph = F["phase"]
  if (ph == "storm")
    storm = storm sprintf("| %s | %s | %s | %s | %s | %s | %s | %.1f MiB | %s | %s | %s |\n", F["label"], F["all_full_s"], F["p50_s"], F["p99_s"], F["quiet_s"], F["server_cpu_s"], F["msgs"], F["server_rss_kib"]/1024, F["server_kib_per_proxy"], F["gen_cpu_s"], F["nacks"] "/" F["stream_failures"])
  else if (ph == "idle")
    idle = idle sprintf("| %s | %s | %s | %s | %.1f MiB | %.1f MiB | %s | %s |\n", F["label"], F["idle_s"], F["msgs"], F["server_cpu_s"], F["server_baseline_kib"]/1024, F["server_rss_kib"]/1024, F["server_kib_per_proxy"], F["stream_failures"])
  else
    step = step sprintf("| %s | %s | %s | %s/%s | %s | %s/%s | %s | %s | %s | %s | %s | %s |\n", F["label"], ph, F["trigger"], F["expected"], F["expected_changed"], F["settled"], F["unexpected"], F["unexpected_msgs"], F["p50_s"], F["p99_s"], F["max_s"], F["server_push_send_cpu_s"], F["server_push_total_cpu_s"], F["lds_msgs"] "+" F["ecds_msgs"])
}
END {
  print "(a) connect storm"
  print "| run | all full (s) | p50 (s) | p99 (s) | server quiet (s) | server CPU to quiet (s) | msgs | server RSS at quiet | KiB/proxy over baseline | generator CPU (s) | NACKs/failures |"
  print "|---|---|---|---|---|---|---|---|---|---|---|"
  printf "%s", storm
  print ""
  print "(b) one extension, every proxy; (c) one tenant (t003); (d) allowedIn: shared-move leaves t001"
  print "| run | step | reload | expected/changed | settled | unexpected proxies/msgs | p50 (s) | p99 (s) | max (s) | server CPU to last delivery (s) | server CPU to quiet, ACKs incl. (s) | LDS+ECDS msgs |"
  print "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf "%s", step
  print ""
  print "(e) idle"
  print "| run | idle (s) | msgs | server CPU (s) | server RSS, 0 proxies | server RSS | KiB/proxy over baseline | failures |"
  print "|---|---|---|---|---|---|---|---|"
  printf "%s", idle
}' "$RESULTS"
if [ -s "$CHURN_RESULTS" ]; then
  echo
  echo "plugin churn (issue 19): drains per proxy, slots off vs --ecds-slots"
  echo "| run | step | drains per proxy (max) | proxies drained | LDS / ECDS msgs per proxy | ECDS configs per proxy | p99 (s) | server CPU to quiet (s) | storm: all full (s) | load average after |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk '
function kv(line,   i, n, a, p) {
  delete F
  n = split(line, a, " ")
  for (i = 2; i <= n; i++) { p = index(a[i], "="); if (p) F[substr(a[i], 1, p - 1)] = substr(a[i], p + 1) }
}
{ kv($0)
  if (F["phase"] == "storm") { storm[F["label"]] = F["all_full_s"]; next }
  printf "| %s | %s | %s (%s) | %s of %s | %s / %s | %s | %s | %s | %s | %s |\n", F["label"], F["phase"], F["drains_per_proxy"], F["max_drains"], F["drained_proxies"], F["n"], F["lds_per_proxy"], F["ecds_per_proxy"], F["ecds_configs_per_proxy"], F["p99_s"], F["server_push_total_cpu_s"], storm[F["label"]], F["loadavg"]
}' "$CHURN_RESULTS"
fi
exit $status
