#!/bin/sh
# tests/tsan.sh: the suites that run threads, under ThreadSanitizer (a
# build configured with --enable-tsan; `make check-tsan`): the file
# store's watcher and parallel walk, the publisher, the store source, the
# module resolver's workers (check_unit suites store_watch, store_walk,
# publisher, source, modules), the admin server's threads (check_admin),
# the etcd watcher against a real etcd (check_etcd) and the serving loops
# of the real binary with --threads 3 under pushes, connects and admin
# reads at once (check_threads: the server exits 66 on a report), and
# in-process the serving loops' status answers (check_unit transport, with
# the same suppressions for gRPC's internals). Any report fails
# the run (exit code 66); each program's output is in tsan-<name>.log.
set -u
b=${WASMXDS_BUILDDIR:-.}
export CK_TIMEOUT_MULTIPLIER="${CK_TIMEOUT_MULTIPLIER:-4}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 exitcode=66 second_deadlock_stack=1}"
status=0
run() { # run NAME COMMAND...
  name=$1
  shift
  start=$(date +%s)
  if "$@" >"$b/tsan-$name.log" 2>&1; then res=ok; else res="FAILED (see $b/tsan-$name.log)"; status=1; fi
  printf 'tsan %-14s %4ss  %s\n' "$name" "$(($(date +%s) - start))" "$res"
}
run unit "$b/tests/check_unit" store_watch store_walk publisher source modules
run admin "$b/tests/check_admin"
run etcd "$b/tests/check_etcd"
# check_threads judges the server: its own gRPC clients (Debian's gRPC
# and abseil are not instrumented, so their internals look racy) report
# nothing, the server it starts gets the options below; the suppressions
# drop only reports raised inside those libraries' system calls.
srcdir=${WASMXDS_SRCDIR:-$(dirname "$0")/..}
WASMXDS_SERVER_TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$srcdir/tests/tsan-grpc.supp" \
  TSAN_OPTIONS="report_bugs=0" run threads "$b/tests/check_threads"
TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$srcdir/tests/tsan-grpc.supp" \
  run transport "$b/tests/check_unit" transport
exit $status
