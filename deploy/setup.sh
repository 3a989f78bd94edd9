#!/usr/bin/env bash
# deploy/setup.sh: install the Debian packages wasmxds needs, then build it.
#
# Usage: deploy/setup.sh [--no-build] [--test-deps]
#   --no-build   install packages only
#   --test-deps  also install what the test suite needs (etcd,
#                docker-registry, npm for the upstream Envoy protos,
#                clang-format and python3 for make check-format and
#                check-src, python3-grpcio and python3-grpc-tools for
#                tests/conformance.sh, clang and its sanitizer runtimes
#                for the fuzz targets)
#
# The build goes to build/ (an out-of-tree build, so a sanitizer build can
# sit beside it in build-asan/); the server is build/wasmxds.
#
# Idempotent: a package already installed is not touched. Packages are
# installed in small groups and each one is verified with `dpkg -s`, because
# one large `apt-get install` has been seen to fail with "held broken
# packages" on bookworm. libupb-dev is never installed: it conflicts with
# libgrpc-dev and removing that breaks the build.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=1
test_deps=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --test-deps) test_deps=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

# Groups, installed in this order. Each line is one apt-get call.
groups=(
  "build-essential autoconf automake libtool pkg-config"
  "libgrpc-dev"
  "protobuf-compiler libprotobuf-dev"
  "libprotobuf-c-dev protobuf-c-compiler"
  "libyaml-dev libjansson-dev"
  "libcurl4-openssl-dev libssl-dev"
  "libmicrohttpd-dev zlib1g-dev"
  "check"
)
if [ "$test_deps" = 1 ]; then
  groups+=(
    "etcd-server etcd-client"
    "docker-registry"
    "openssl curl apache2-utils"
    "nodejs"
    "npm"
    "clang-format python3"
    "python3-prometheus-client"
    "python3-grpcio python3-grpc-tools"
    "clang libclang-rt-14-dev"
  )
fi

missing() {
  local p out=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || out+=("$p")
  done
  echo "${out[@]:-}"
}

# npm may already be present outside dpkg (for example a Node.js install in
# /usr/bin from another source): then the Debian package is not needed.
have_cmd_for() {
  case "$1" in
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
for g in "${groups[@]}"; do
  # shellcheck disable=SC2086
  todo=$(missing $g)
  [ -n "$todo" ] || continue
  rest=()
  for p in $todo; do
    have_cmd_for "$p" || rest+=("$p")
  done
  [ "${#rest[@]}" -gt 0 ] || continue
  if [ "$updated" = 0 ]; then
    apt-get update -q
    updated=1
  fi
  echo "setup.sh: installing ${rest[*]}"
  apt-get install -y -q --no-install-recommends "${rest[@]}"
  left=$(missing "${rest[@]}")
  if [ -n "$left" ]; then
    echo "setup.sh: failed to install: $left" >&2
    exit 1
  fi
done

if dpkg -s libupb-dev >/dev/null 2>&1; then
  echo "setup.sh: libupb-dev is installed and conflicts with libgrpc-dev;" \
       "remove it (apt-get remove libupb-dev)" >&2
  exit 1
fi

[ "$build" = 1 ] || exit 0

cd "$here"
if [ -f config.status ]; then
  echo "setup.sh: the source tree was configured in place; run 'make distclean'" \
       "there first (builds go to build/)" >&2
  exit 1
fi
if [ ! -f configure ] || [ configure.ac -nt configure ] || \
   [ Makefile.am -nt configure ]; then
  autoreconf -fi
fi
mkdir -p build
cd build
if [ ! -f config.status ] || [ ../configure -nt config.status ]; then
  ../configure ${WASMXDS_CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)"
