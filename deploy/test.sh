#!/usr/bin/env bash
# deploy/test.sh: install everything the test suite needs, build, and run
# the whole suite twice: first under AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/), then every libFuzzer target for
# FUZZ_CI_SECONDS (20) each on the committed corpus (build-fuzz/, clang),
# then the suites that run threads under ThreadSanitizer (build-tsan/,
# make check-tsan), then the plain build (build/), so the output ends with the plain suite's
# summary. Exits non-zero when any test fails or a fuzz target finds
# something. This is the README's test command and what CI runs.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
"$here/deploy/setup.sh" --test-deps

cd "$here"
mkdir -p build-asan
cd build-asan
if [ ! -f config.status ] || [ ../configure -nt config.status ]; then
  ../configure --enable-sanitizers --enable-debug
fi
make -j"$(nproc)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  make --no-print-directory -j"$(nproc)" check

cd "$here"
mkdir -p build-fuzz
cd build-fuzz
if [ ! -f config.status ] || [ ../configure -nt config.status ]; then
  CC=clang ../configure --enable-fuzzing
fi
make --no-print-directory -j"$(nproc)" fuzz-ci FUZZ_JOBS="$(nproc)"

cd "$here"
mkdir -p build-tsan
cd build-tsan
if [ ! -f config.status ] || [ ../configure -nt config.status ]; then
  ../configure --enable-tsan
fi
make --no-print-directory -j"$(nproc)" check-tsan

cd "$here/build"
status=0
make --no-print-directory -j"$(nproc)" check || status=$?
# One closing line for whoever reads only the end: every Check case of the
# plain run, counted from the test logs.
awk '/^[0-9]+%: Checks: / {
       gsub(",", ""); n += $3; f += $5 + $7
     }
     END { printf "check: %d passed, %d failed\n", n - f, f }' tests/*.log
exit "$status"
