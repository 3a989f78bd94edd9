#!/bin/sh
# soak.sh: churn against two real wasmxds servers for a long time (`make
# soak`, not in CI), reporting each server's RSS, open descriptors and CPU
# every minute, so a leak shows as a rising curve.
#   - a file-store server and, when etcd is installed, an etcd-store server
#     (both with a module cache), on free loopback ports;
#   - every second the store changes: an extension file of the file store
#     is replaced (alternating two versions, so every proxy gets an ECDS
#     push), and an etcd key is rewritten through wasmxdsctl apply;
#   - proxies churn: bench/loadgen connects --proxies simulated Envoys to
#     each server (a connect storm), holds them --hold seconds, and drops
#     them all; again and again until the end;
# usage: soak.sh --wasmxds BIN --wasmxdsctl BIN --loadgen BIN
#                [--minutes M (60)] [--proxies N (500)] [--hold S (20)]
#                [--sample S (60)] [--workdir DIR] [--keep]
# Output: one line per sample and server:
#   soak MIN server=file rss_kib=... fds=... cpu_s=... proxies_cycles=...
# and a closing summary (first sample after warm-up vs last).
set -u
WASMXDS= CTL= LOADGEN= MINUTES=60 PROXIES=500 HOLD=20 SAMPLE=60 WORKDIR= KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
  --wasmxds) WASMXDS=$2; shift 2 ;;
  --wasmxdsctl) CTL=$2; shift 2 ;;
  --loadgen) LOADGEN=$2; shift 2 ;;
  --minutes) MINUTES=$2; shift 2 ;;
  --proxies) PROXIES=$2; shift 2 ;;
  --hold) HOLD=$2; shift 2 ;;
  --sample) SAMPLE=$2; shift 2 ;;
  --workdir) WORKDIR=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$WASMXDS" ] || [ -z "$LOADGEN" ] || [ -z "$CTL" ]; then
  echo "usage: soak.sh --wasmxds BIN --wasmxdsctl BIN --loadgen BIN [--minutes M] [--proxies N] [--hold S] [--sample S]" >&2
  exit 2
fi
CREATED=0
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/wasmxds-soak.XXXXXX") || exit 1
  CREATED=1
fi
mkdir -p "$WORKDIR"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

port_free() {
  ! (ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$1\$")
}
next_port() { # next_port FROM: the first free port at or above FROM
  p=$1
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

PIDS=
cleanup() {
  for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
  sleep 1
  for p in $PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ "$KEEP" = 1 ] || [ "$CREATED" = 0 ] || rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # wait_ready PID ADMIN_PORT LOG
  i=0
  while [ $i -lt 200 ]; do
    kill -0 "$1" 2>/dev/null || break
    curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
    i=$((i + 1))
  done
  echo "soak: a server did not become ready; its log:" >&2
  tail -20 "$3" >&2
  exit 1
}

TEN=10
"$LOADGEN" gen-store --dir "$WORKDIR/gen" --extensions 40 --tenants $TEN >/dev/null || exit 1
base=$((20000 + $$ % 20000))
F_XDS=$(next_port $base)
F_ADM=$(next_port $((F_XDS + 1)))
"$WASMXDS" --store "$WORKDIR/gen/store" --listen "127.0.0.1:$F_XDS" \
  --admin-listen "127.0.0.1:$F_ADM" --module-cache "$WORKDIR/cache-file" \
  >"$WORKDIR/server-file.log" 2>&1 &
F_PID=$!
PIDS="$PIDS $F_PID"
wait_ready $F_PID $F_ADM "$WORKDIR/server-file.log"
SERVERS="file:$F_PID:$F_XDS"

E_PID=
if command -v etcd >/dev/null 2>&1; then
  # Ports can be taken between the check and etcd's bind (other programs
  # on the machine): a few attempts at random places.
  tries=0
  while :; do
    r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    E_CLI=$(next_port $((30000 + r % 20000)))
    E_PEER=$(next_port $((E_CLI + 1)))
    rm -rf "$WORKDIR/etcd"
    etcd --data-dir "$WORKDIR/etcd" --name soak \
      --listen-client-urls "http://127.0.0.1:$E_CLI" \
      --advertise-client-urls "http://127.0.0.1:$E_CLI" \
      --listen-peer-urls "http://127.0.0.1:$E_PEER" \
      --initial-advertise-peer-urls "http://127.0.0.1:$E_PEER" \
      --initial-cluster "soak=http://127.0.0.1:$E_PEER" \
      >"$WORKDIR/etcd.log" 2>&1 &
    E_ETCD=$!
    i=0
    while kill -0 $E_ETCD 2>/dev/null &&
      ! curl -fs "http://127.0.0.1:$E_CLI/health" >/dev/null 2>&1 && [ $i -lt 100 ]; do
      sleep 0.2
      i=$((i + 1))
    done
    if curl -fs "http://127.0.0.1:$E_CLI/health" >/dev/null 2>&1; then
      PIDS="$PIDS $E_ETCD"
      break
    fi
    kill -KILL $E_ETCD 2>/dev/null
    wait $E_ETCD 2>/dev/null
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { echo "soak: etcd did not start:" >&2; tail -3 "$WORKDIR/etcd.log" >&2; exit 1; }
  done
  URL="etcd://127.0.0.1:$E_CLI/wasmxds"
  "$CTL" --store "$URL" apply -f "$WORKDIR/gen/store" >"$WORKDIR/ctl.log" 2>&1 ||
    { echo "soak: wasmxdsctl apply failed:" >&2; tail -5 "$WORKDIR/ctl.log" >&2; exit 1; }
  E_XDS=$(next_port $((E_PEER + 1)))
  E_ADM=$(next_port $((E_XDS + 1)))
  "$WASMXDS" --store "$URL" --listen "127.0.0.1:$E_XDS" \
    --admin-listen "127.0.0.1:$E_ADM" --module-cache "$WORKDIR/cache-etcd" \
    >"$WORKDIR/server-etcd.log" 2>&1 &
  E_PID=$!
  PIDS="$PIDS $E_PID"
  wait_ready $E_PID $E_ADM "$WORKDIR/server-etcd.log"
  SERVERS="$SERVERS etcd:$E_PID:$E_XDS"
else
  echo "soak: etcd not installed: the file store only"
fi

# Store changes, every second, through both stores.
(
  f=$WORKDIR/gen/store/ext-org.yaml
  cp "$f" "$WORKDIR/v0.yaml"
  cp "$WORKDIR/gen/changes/b1.yaml" "$WORKDIR/v1.yaml"
  i=0
  while :; do
    v=$((i % 2))
    cp "$WORKDIR/v$v.yaml" "$f.tmp" && mv -f "$f.tmp" "$f"
    if [ -n "$E_PID" ]; then
      "$CTL" --store "$URL" apply -f "$WORKDIR/v$v.yaml" >>"$WORKDIR/ctl.log" 2>&1
    fi
    i=$((i + 1))
    sleep 1
  done
) &
PIDS="$PIDS $!"

# Proxy churn: connect, hold, drop, again, per server.
for s in $SERVERS; do
  name=${s%%:*}
  port=${s##*:}
  (
    n=0
    while :; do
      "$LOADGEN" run --target "127.0.0.1:$port" -n "$PROXIES" --tenants $TEN \
        --idle-s "$HOLD" --timeout-s 120 --label "soak-$name" \
        >"$WORKDIR/loadgen-$name.out" 2>>"$WORKDIR/loadgen-$name.err"
      n=$((n + 1))
      echo "$n" >"$WORKDIR/cycles-$name"
    done
  ) &
  PIDS="$PIDS $!"
done

tck=$(getconf CLK_TCK)
sample() { # sample MINUTE
  for s in $SERVERS; do
    name=${s%%:*}
    rest=${s#*:}
    pid=${rest%%:*}
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    cpu=$(awk -v t="$tck" '{printf "%.1f", ($14 + $15) / t}' "/proc/$pid/stat" 2>/dev/null)
    cyc=$(cat "$WORKDIR/cycles-$name" 2>/dev/null || echo 0)
    echo "soak $1 server=$name rss_kib=${rss:-gone} fds=$fds cpu_s=${cpu:-?} proxy_cycles=$cyc"
  done
}
echo "soak: $(nproc) cores; $MINUTES min; $PROXIES proxies per cycle per server, held ${HOLD}s; store change every 1 s; servers: $SERVERS; workdir $WORKDIR"
start=$(date +%s)
m=0
sample 0 | tee -a "$WORKDIR/samples.txt"
while [ $(($(date +%s) - start)) -lt $((MINUTES * 60)) ]; do
  sleep "$SAMPLE"
  m=$((m + 1))
  for s in $SERVERS; do
    rest=${s#*:}
    kill -0 "${rest%%:*}" 2>/dev/null || { echo "soak: server ${s%%:*} died" >&2; sample "$m"; exit 1; }
  done
  sample "$m" | tee -a "$WORKDIR/samples.txt"
done
echo "soak: done; loadgen NACK/failure lines: $(cat "$WORKDIR"/loadgen-*.err 2>/dev/null | wc -l)"
