#!/bin/sh
# tests/fuzz/run.sh: runs libFuzzer targets of tests/fuzz/ for a bounded
# time each on the committed seed corpus, and prints one line per target:
# executions, edges covered (cov), features (ft), corpus size, result.
#   run.sh --seconds N [--jobs J] [--scratch] --srcdir S --builddir B T...
# New inputs are kept in B/fuzz-corpus/<target>/ (with --scratch: in a
# temporary directory, removed); crashes in B/fuzz-artifacts/. Exits 1
# when any target found something (its log: B/fuzz-logs/<target>.log).
set -u
seconds=20 jobs=1 scratch=0 srcdir=. builddir=.
while [ $# -gt 0 ]; do
  case $1 in
  --seconds) seconds=$2; shift 2 ;;
  --jobs) jobs=$2; shift 2 ;;
  --scratch) scratch=1; shift ;;
  --srcdir) srcdir=$2; shift 2 ;;
  --builddir) builddir=$2; shift 2 ;;
  --*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "run.sh: no targets" >&2; exit 2; }
mkdir -p "$builddir/fuzz-logs" "$builddir/fuzz-artifacts"
tmp=
if [ "$scratch" = 1 ]; then
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/wasmxds-fuzz-XXXXXX") || exit 1
  trap 'rm -rf "$tmp"' EXIT
fi

one() {
  t=$1
  bin=$builddir/tests/fuzz/fuzz_$t
  seed=$srcdir/tests/fuzz/corpus/$t
  if [ -n "$tmp" ]; then work=$tmp/$t; else work=$builddir/fuzz-corpus/$t; fi
  mkdir -p "$work"
  dict=
  [ -f "$srcdir/tests/fuzz/$t.dict" ] && dict=-dict=$srcdir/tests/fuzz/$t.dict
  log=$builddir/fuzz-logs/$t.log
  # shellcheck disable=SC2086
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    nice "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$builddir/fuzz-artifacts/$t-" $dict "$work" "$seed" \
    >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  if [ "$rc" = 0 ]; then res=ok; else res="FAILED (see $log)"; fi
  printf '%-11s %4ss  execs %10s  cov %6s  ft %7s  corpus %5s  %s\n' \
    "$t" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$res"
  [ "$rc" = 0 ]
}

status=0
if [ "$jobs" -le 1 ]; then
  for t in "$@"; do one "$t" || status=1; done
else
  running=0
  pids=
  for t in "$@"; do
    one "$t" &
    pids="$pids $!"
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      for p in $pids; do wait "$p" || status=1; done
      pids= running=0
    fi
  done
  for p in $pids; do wait "$p" || status=1; done
fi
exit $status
