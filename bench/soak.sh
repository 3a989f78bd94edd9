#!/bin/sh
# soak.sh: churn against two real wasmxds servers for a long time (`make
# soak`, not in CI), reporting each server's RSS, open descriptors and CPU
# every minute, so a leak shows as a rising curve.
#   - a file-store server and, when etcd is installed, an etcd-store server,
#     on free loopback ports, each with its own module cache bounded by
#     --cache-max bytes;
#   - every second the store changes: an extension file of the file store
#     is replaced (alternating two versions, so every proxy gets an ECDS
#     push), and the same document is applied to etcd with wasmxdsctl;
#   - modules: a loopback HTTP origin (python3 -m http.server) serves the
#     modules of 3 organization-wide extensions (soak-mod-0..2, pinned by
#     sha256); every --module-every seconds one of them gets a new module
#     version (new bytes, new url), through both stores, so each server
#     pulls it and the cache, over its bound, evicts the module no longer
#     referenced;
#   - proxies churn: bench/loadgen connects --proxies simulated Envoys to
#     each server (a connect storm), holds them --hold seconds, drops them
#     all, waits --gap seconds and starts again;
#   - NACK waves: --nack-wave P:PCT is passed to bench/loadgen: during every
#     other period of P seconds (wall clock), PCT % of the proxies NACK every
#     ECDS push (one a second), keeping their last good version.
# Every loop is bounded by the end time; every process started is stopped
# at the end (and on INT/TERM).
# usage: soak.sh --wasmxds BIN --wasmxdsctl BIN --loadgen BIN
#                [--minutes M (60)] [--proxies N (2000)] [--hold S (20)]
#                [--gap S (3)] [--sample S (60)] [--warmup M (10)]
#                [--nack-wave P:PCT (300:20)] [--module-every S (60)]
#                [--module-kib K (64)] [--cache-max BYTES (262144)]
#                [--workdir DIR] [--keep]
# Output (also appended to WORKDIR/samples.txt, and with --log FILE to
# FILE): one line per sample and server:
#   soak MIN server=file rss_kib=... rss_max_kib=... fds=... fds_min=...
#     fds_max=... cpu_s=... proxy_cycles=... pulls_ok=... pulls_other=...
#     evictions=... cache_entries=... nacks=... log_suppressed=... log_kib=...
# (rss_max and fds_min/max over the per-second readings of that minute;
# fds_min is read while no proxy is connected, between cycles; the
# counters are the server's /metrics), then a summary per server: the
# least-squares slope of RSS and of fds_min from --warmup to the end, and
# the checks that NACKs, pulls and evictions happened (exit 1 otherwise).
set -u
WASMXDS= CTL= LOADGEN= MINUTES=60 PROXIES=2000 HOLD=20 GAP=3 SAMPLE=60
WARMUP=10 WAVE=300:20 MODEVERY=60 MODKIB=64 CACHEMAX=262144 WORKDIR= KEEP=0
LOG=
while [ $# -gt 0 ]; do
  case "$1" in
  --wasmxds) WASMXDS=$2; shift 2 ;;
  --wasmxdsctl) CTL=$2; shift 2 ;;
  --loadgen) LOADGEN=$2; shift 2 ;;
  --minutes) MINUTES=$2; shift 2 ;;
  --proxies) PROXIES=$2; shift 2 ;;
  --hold) HOLD=$2; shift 2 ;;
  --gap) GAP=$2; shift 2 ;;
  --sample) SAMPLE=$2; shift 2 ;;
  --warmup) WARMUP=$2; shift 2 ;;
  --nack-wave) WAVE=$2; shift 2 ;;
  --module-every) MODEVERY=$2; shift 2 ;;
  --module-kib) MODKIB=$2; shift 2 ;;
  --cache-max) CACHEMAX=$2; shift 2 ;;
  --workdir) WORKDIR=$2; shift 2 ;;
  --log) LOG=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$WASMXDS" ] || [ -z "$LOADGEN" ] || [ -z "$CTL" ]; then
  echo "usage: soak.sh --wasmxds BIN --wasmxdsctl BIN --loadgen BIN [--minutes M] [--proxies N] [--hold S] [--gap S] [--sample S] [--warmup M] [--nack-wave P:PCT] [--module-every S] [--module-kib K] [--cache-max BYTES] [--workdir DIR] [--log FILE] [--keep]" >&2
  exit 2
fi
command -v python3 >/dev/null 2>&1 || { echo "soak: python3 is needed (module origin)" >&2; exit 1; }
CREATED=0
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/wasmxds-soak.XXXXXX") || exit 1
  CREATED=1
fi
mkdir -p "$WORKDIR"
[ -n "$LOG" ] || LOG=$WORKDIR/samples.txt
ulimit -n "$(ulimit -Hn)" 2>/dev/null
need=$((PROXIES * 2 + 512))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $need ]; then
  echo "soak: ulimit -n is $(ulimit -n); $PROXIES proxies need about $need" >&2
  exit 1
fi
START=$(date +%s)
END=$((START + MINUTES * 60))

say() { echo "$*" | tee -a "$LOG"; }

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
ORG=acme
"$LOADGEN" gen-store --dir "$WORKDIR/gen" --extensions 40 --tenants $TEN --org $ORG >/dev/null || exit 1

# The module origin: a loopback HTTP server over WORKDIR/origin.
mkdir -p "$WORKDIR/origin"
O_PORT=$(next_port $((20000 + $$ % 20000)))
python3 -m http.server --bind 127.0.0.1 --directory "$WORKDIR/origin" "$O_PORT" \
  >"$WORKDIR/origin.log" 2>&1 &
PIDS="$PIDS $!"

# new_module K V: writes origin/mK-vV.wasm (a valid module: the header and
# one custom section "soak" of MODKIB KiB of random bytes) and prints its
# sha256.
new_module() {
  python3 - "$WORKDIR/origin/m$1-v$2.wasm" "$MODKIB" <<'EOF'
import hashlib, os, sys
path, kib = sys.argv[1], int(sys.argv[2])
name = b"soak"
body = bytes([len(name)]) + name + os.urandom(kib * 1024)
n, leb = len(body), bytearray()
while True:
    b = n & 0x7F
    n >>= 7
    leb.append(b | (0x80 if n else 0))
    if not n:
        break
data = b"\0asm\1\0\0\0" + b"\0" + bytes(leb) + body
with open(path + ".tmp", "wb") as f:
    f.write(data)
os.rename(path + ".tmp", path)
print(hashlib.sha256(data).hexdigest())
EOF
}

# write_mod_store FILE: the three soak-mod extensions at their current
# versions (MV0..2, MS0..2).
write_mod_store() {
  {
    echo "# generated by bench/soak.sh"
    for k in 0 1 2; do
      eval "v=\$MV$k s=\$MS$k"
      [ $k = 0 ] || echo "---"
      cat <<EOF
apiVersion: extension.tsb.tetrate.io/v2
kind: WasmExtension
metadata:
  organization: $ORG
  name: soak-mod-$k
spec:
  url: http://127.0.0.1:$O_PORT/m$k-v$v.wasm
  sha256: $s
  phase: STATS
  priority: $((60 + k))
  match:
    mode: CLIENT_AND_SERVER
  failStrategy: FAIL_OPEN
  pluginName: soak-mod-$k
  vmConfig:
    vmId: soak-mod-$k
  config:
    module_version: $v
EOF
    done
  } >"$1.tmp" && mv -f "$1.tmp" "$1"
}

for k in 0 1 2; do
  eval "MV$k=1; MS$k=\$(new_module $k 1)" || exit 1
done
write_mod_store "$WORKDIR/gen/store/ext-mod.yaml"

base=$((O_PORT + 1))
F_XDS=$(next_port $base)
F_ADM=$(next_port $((F_XDS + 1)))
"$WASMXDS" --store "$WORKDIR/gen/store" --listen "127.0.0.1:$F_XDS" \
  --admin-listen "127.0.0.1:$F_ADM" --module-cache "$WORKDIR/cache-file" \
  --module-cache-max-bytes "$CACHEMAX" \
  >"$WORKDIR/server-file.log" 2>&1 &
F_PID=$!
PIDS="$PIDS $F_PID"
wait_ready $F_PID $F_ADM "$WORKDIR/server-file.log"
SERVERS="file:$F_PID:$F_XDS:$F_ADM"

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
      --auto-compaction-mode revision --auto-compaction-retention 1000 \
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
    --module-cache-max-bytes "$CACHEMAX" \
    >"$WORKDIR/server-etcd.log" 2>&1 &
  E_PID=$!
  PIDS="$PIDS $E_PID"
  wait_ready $E_PID $E_ADM "$WORKDIR/server-etcd.log"
  SERVERS="$SERVERS etcd:$E_PID:$E_XDS:$E_ADM"
else
  echo "soak: etcd not installed: the file store only"
fi

# Store changes, every second, through both stores; every MODEVERY
# seconds one soak-mod extension gets a new module version.
(
  f=$WORKDIR/gen/store/ext-org.yaml
  m=$WORKDIR/gen/store/ext-mod.yaml
  cp "$f" "$WORKDIR/v0.yaml"
  cp "$WORKDIR/gen/changes/b1.yaml" "$WORKDIR/v1.yaml"
  i=0
  next_mod=$(($(date +%s) + MODEVERY))
  rot=0
  while [ "$(date +%s)" -lt $END ]; do
    v=$((i % 2))
    cp "$WORKDIR/v$v.yaml" "$f.tmp" && mv -f "$f.tmp" "$f"
    if [ -n "$E_PID" ]; then
      "$CTL" --store "$URL" apply -f "$WORKDIR/v$v.yaml" >>"$WORKDIR/ctl.log" 2>&1
    fi
    if [ "$(date +%s)" -ge $next_mod ]; then
      k=$((rot % 3))
      eval "old=\$MV$k"
      new=$((old + 1))
      if s=$(new_module $k $new); then
        eval "MV$k=$new MS$k=$s"
        write_mod_store "$m"
        if [ -n "$E_PID" ]; then
          "$CTL" --store "$URL" apply -f "$m" >>"$WORKDIR/ctl.log" 2>&1
        fi
        # The origin keeps the last 3 versions of each module.
        rm -f "$WORKDIR/origin/m$k-v$((new - 3)).wasm"
        echo "$((rot + 1))" >"$WORKDIR/module-versions"
      fi
      rot=$((rot + 1))
      next_mod=$((next_mod + MODEVERY))
    fi
    i=$((i + 1))
    sleep 1
  done
) &
PIDS="$PIDS $!"

# Proxy churn: connect, hold, drop, pause, again, per server.
for s in $SERVERS; do
  name=${s%%:*}
  port=$(echo "$s" | cut -d: -f3)
  (
    n=0
    while [ "$(date +%s)" -lt $((END - HOLD)) ]; do
      "$LOADGEN" run --target "127.0.0.1:$port" -n "$PROXIES" --tenants $TEN \
        --org $ORG --idle-s "$HOLD" --timeout-s 120 --label "soak-$name" \
        --nack-wave "$WAVE" \
        >"$WORKDIR/loadgen-$name.out" 2>>"$WORKDIR/loadgen-$name.err"
      echo "rc=$?" >>"$WORKDIR/loadgen-$name.rcs"
      w=$(awk '/ECDS pushes NACKed on purpose/ {print $(NF-5)}' "$WORKDIR/loadgen-$name.out")
      echo "${w:-0}" >>"$WORKDIR/wave-nacks-$name"
      n=$((n + 1))
      echo "$n" >"$WORKDIR/cycles-$name"
      sleep "$GAP"
    done
  ) &
  PIDS="$PIDS $!"
done

# metric ADMIN_PORT NAME: the sum of the series of NAME (labels ignored,
# _bucket/_sum/_count excluded) in WORKDIR/metrics-ADMIN_PORT.
metric() {
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f", s }' \
    "$WORKDIR/metrics-$1" 2>/dev/null
}
tck=$(getconf CLK_TCK)
# Per-second readings: per server, the RSS max and fds min/max of the
# current minute, in WORKDIR/acc-NAME ("rss_max fds_min fds_max").
read_second() {
  for s in $SERVERS; do
    name=${s%%:*}
    pid=$(echo "$s" | cut -d: -f2)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] || continue
    if [ -f "$WORKDIR/acc-$name" ]; then
      read -r rmax fmin fmax <"$WORKDIR/acc-$name"
    else
      rmax=0 fmin=999999 fmax=0
    fi
    [ "$rss" -gt "$rmax" ] && rmax=$rss
    [ "$fds" -lt "$fmin" ] && fmin=$fds
    [ "$fds" -gt "$fmax" ] && fmax=$fds
    echo "$rmax $fmin $fmax" >"$WORKDIR/acc-$name"
  done
}
sample() { # sample MINUTE
  for s in $SERVERS; do
    name=${s%%:*}
    pid=$(echo "$s" | cut -d: -f2)
    adm=$(echo "$s" | cut -d: -f4)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    cpu=$(awk -v t="$tck" '{printf "%.1f", ($14 + $15) / t}' "/proc/$pid/stat" 2>/dev/null)
    cyc=$(cat "$WORKDIR/cycles-$name" 2>/dev/null || echo 0)
    if [ -f "$WORKDIR/acc-$name" ]; then
      read -r rmax fmin fmax <"$WORKDIR/acc-$name"
    else
      rmax=${rss:-0} fmin=$fds fmax=$fds
    fi
    # The reading of this sample counts too.
    [ "${rss:-0}" -gt "$rmax" ] && rmax=$rss
    [ "$fds" -lt "$fmin" ] && fmin=$fds
    [ "$fds" -gt "$fmax" ] && fmax=$fds
    rm -f "$WORKDIR/acc-$name"
    curl -fs --max-time 10 "http://127.0.0.1:$adm/metrics" >"$WORKDIR/metrics-$adm" 2>/dev/null
    ok=$(awk '/^wasmxds_module_fetches_total\{result="ok"\}/ {s += $2} END {printf "%.0f", s}' "$WORKDIR/metrics-$adm")
    all=$(metric "$adm" wasmxds_module_fetches_total)
    ev=$(metric "$adm" wasmxds_module_cache_evictions_total)
    ce=$(metric "$adm" wasmxds_module_cache_entries)
    nk=$(metric "$adm" wasmxds_nacks_total)
    sup=$(metric "$adm" wasmxds_log_lines_suppressed_total)
    lk=$(($(wc -c <"$WORKDIR/server-$name.log") / 1024))
    echo "soak $1 server=$name rss_kib=${rss:-gone} rss_max_kib=$rmax fds=$fds fds_min=$fmin fds_max=$fmax cpu_s=${cpu:-?} proxy_cycles=$cyc pulls_ok=${ok:-?} pulls_other=$((${all:-0} - ${ok:-0})) evictions=${ev:-?} cache_entries=${ce:-?} nacks=${nk:-?} log_suppressed=${sup:-?} log_kib=$lk"
  done
}
say "soak: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $MINUTES min; $PROXIES proxies per cycle per server, held ${HOLD}s, ${GAP}s apart; store change every 1 s; a new module version every ${MODEVERY}s (${MODKIB} KiB, cache bound $CACHEMAX bytes); NACK waves $WAVE (period s:percent); servers: $SERVERS; origin 127.0.0.1:$O_PORT; workdir $WORKDIR"
sample 0 | tee -a "$LOG"
m=0
next=$((START + SAMPLE))
while [ "$(date +%s)" -lt $END ]; do
  while [ "$(date +%s)" -lt $next ]; do
    read_second
    sleep 1
  done
  m=$((m + 1))
  next=$((next + SAMPLE))
  for s in $SERVERS; do
    pid=$(echo "$s" | cut -d: -f2)
    kill -0 "$pid" 2>/dev/null || { say "soak: server ${s%%:*} died"; sample "$m" | tee -a "$LOG"; exit 1; }
  done
  sample "$m" | tee -a "$LOG"
  say "soak: load average $(cut -d' ' -f1-3 /proc/loadavg)"
done

# Summary: slopes after warm-up (least squares, per minute) and the checks.
fail=0
for s in $SERVERS; do
  name=${s%%:*}
  grep "^soak [0-9]* server=$name " "$LOG" | awk -v w="$WARMUP" -v name="$name" '
    { m = $2; for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      if (m >= w && v["rss_kib"] != "gone") {
        n++; sx += m; sy += v["rss_kib"]; sxx += m * m; sxy += m * v["rss_kib"]
        sf += v["fds_min"]; sxf += m * v["fds_min"]
        if (n == 1) { r0 = v["rss_kib"]; f0 = v["fds_min"]; m0 = m }
        r1 = v["rss_kib"]; f1 = v["fds_min"]; m1 = m
      } }
    END { if (n < 2) { print "soak summary " name ": too few samples after warm-up"; exit }
      d = n * sxx - sx * sx
      printf "soak summary %s: minutes %d..%d: rss %d -> %d KiB (slope %.1f KiB/min), fds_min %d -> %d (slope %.2f/min)\n",
        name, m0, m1, r0, r1, (n * sxy - sx * sy) / d, f0, f1, (n * sxf - sx * sf) / d }' |
    tee -a "$LOG"
  last=$(grep "^soak [0-9]* server=$name " "$LOG" | tail -1)
  for k in pulls_ok evictions nacks; do
    v=$(echo "$last" | tr ' ' '\n' | awk -F= -v k=$k '$1 == k {print $2}')
    if [ "${v:-0}" = 0 ] || [ "${v:-?}" = "?" ]; then
      say "soak: FAIL: server=$name: $k is ${v:-absent}: the soak did not exercise it"
      fail=1
    fi
  done
  wn=$(awk '{s += $1} END {print s + 0}' "$WORKDIR/wave-nacks-$name" 2>/dev/null)
  say "soak: server=$name: loadgen NACKed $wn ECDS pushes on purpose; loadgen exits: $(sort "$WORKDIR/loadgen-$name.rcs" 2>/dev/null | uniq -c | tr '\n' ' ')"
done
say "soak: done; loadgen error lines (undecodable, stream failures): $(cat "$WORKDIR"/loadgen-*.err 2>/dev/null | wc -l); module versions published: $(cat "$WORKDIR/module-versions" 2>/dev/null || echo 0)"
exit $fail
