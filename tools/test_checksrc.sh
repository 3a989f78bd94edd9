#!/bin/sh
# tools/test_checksrc.sh: tests of tools/checksrc itself (run by make check).
#
# 1. A tiny tree with exactly one violation of each rule, at known lines,
#    plus code each rule must leave alone (the same calls in comments and
#    strings, exceptions with a reason, commented prototype groups, tests/
#    including anything): checksrc must exit 1 and print exactly the
#    expected "file:line: rule:" lines.
# 2. The same tree with the violations removed: exit 0, no output.
# 3. The real tree ($WASMXDS_SRCDIR, else this script's tree): exit 0.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${WASMXDS_SRCDIR:-$(dirname "$here")}
checksrc="$src/tools/checksrc"
py=${PYTHON3:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
  echo "test_checksrc: $py not found; skipped"
  exit 77
fi

tmp=$(mktemp -d /tmp/wasmxds-checksrc-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

mk() { # mk PATH: writes stdin to $tmp/tree/PATH
  mkdir -p "$(dirname "$tmp/tree/$1")"
  cat >"$tmp/tree/$1"
}

# ---- the fixture: one violation of each rule ----
mk base/buf.h <<'EOF'
/* buf.h: a fixture header. */
#ifndef BUF_H
#define BUF_H
#include <stddef.h>

/* Commented alone. */
int buf_one(void);

/* One comment for a group of consecutive declarations. */
int buf_two(void);
int buf_three(int a,
              int b);

void buf_inline(void); /* an inline comment counts */

typedef void (*buf_cb)(void *arg);
struct buf_ops {
  int (*open)(void);
};

int buf_naked(void);
#endif
EOF
mk base/buf.c <<'EOF'
#include "base/buf.h"
#include <string.h>
/* strcpy(a, b) in a comment is fine, and so is "strcat(x)" in a string. */
static const char *s = "sprintf(";
void buf_copy(char *d, const char *s2) {
  strcpy(d, s2);
}
void buf_free(void *p) {
  free(p); /* checksrc: allow alloc: the fixture's documented exception */
}
#include <yaml.h>
EOF
mk store/model.c <<'EOF'
#include "base/buf.h"
#include "server/compose/chain.h"
#include "model.h"
#include "envoy/config/core/v3/base.pb-c.h"
void *model_new(void) {
  return malloc(4);
}
EOF
mk server/compose/chain.c <<'EOF'
#include "store/model.h"
#include "server/pb/wire.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include <grpc/grpc.h>
EOF
mk server/transport/xds_server.c <<'EOF'
#include <grpc/grpc.h>
#include "server/admin/admin.h"
EOF
mk server/ads/ads.c <<'EOF'
#include <microhttpd.h>
EOF
mk server/admin/admin.c <<'EOF'
#include <microhttpd.h>
#include "server/transport/xds_server.h"
EOF
mk server/ctl/ctl.c <<'EOF'
#include "server/compose/chain.h"
#include "server/ads/ads.h"
#include <zlib.h>
#include <yaml.h>
EOF
mk store/catalog.c <<'EOF'
#include <jansson.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>
EOF
mk server/newstage/thing.c <<'EOF'
int thing;
EOF
mk tests/check_x.c <<'EOF'
#include <grpc/grpc.h>
#include <microhttpd.h>
#include "server/app/main.h"
void *t(void) { return malloc(1); }
int n(const char *s) { return atoi(s); }
EOF
mk modules/fetch.c <<'EOF'
void f(void *p) {
  /* checksrc: allow alloc */
  free(p);
}
EOF

cat >"$tmp/want" <<'EOF'
base/buf.c:6: banned: strcpy(): unbounded copy; use snprintf or memcpy with a length
base/buf.c:11: library: <yaml.h>: libyaml, a library of layer store and above; base may use only libc
base/buf.h:21: comment: buf_naked(): a public prototype needs a comment saying what it does, its errors and ownership
modules/fetch.c:2: allow: an exception needs a rule and a reason: /* checksrc: allow RULE: REASON */
modules/fetch.c:3: alloc: free(): use xds_free (base/alloc.h), which the allocation-failure tests can fail
server/ads/ads.c:1: microhttpd: <microhttpd.h>: only server/admin/ may include it
server/compose/chain.c:4: grpc: <grpc/grpc.h>: only server/transport/ may include gRPC headers
server/ctl/ctl.c:2: layer: "server/ads/ads.h": a header of layer ads; ctl may use only base, compose, pb, store
server/ctl/ctl.c:3: library: <zlib.h>: zlib, a library of layer modules and above; ctl may use only libc, libyaml, jansson, libcurl, protobuf-c
server/newstage/thing.c:1: folder: server/newstage is in no layer of tools/checksrc's table; add it there (and to the README's module map)
server/transport/xds_server.c:2: layer: "server/admin/admin.h": a header of layer admin, above transport (order: base < store < modules < pb < compose < ads < transport < admin < app)
store/catalog.c:3: library: <openssl/evp.h>: OpenSSL, a library of layer modules and above; store may use only libc, libyaml, jansson, libcurl
store/catalog.c:4: library: <protobuf-c/protobuf-c.h>: protobuf-c, a library of layer pb and above; store may use only libc, libyaml, jansson, libcurl
store/model.c:2: layer: "server/compose/chain.h": a header of layer compose, above store (order: base < store < modules < pb < compose < ads < transport < admin < app)
store/model.c:3: layer: "model.h": write includes from the root ("base/buf.h")
store/model.c:4: layer: "envoy/config/core/v3/base.pb-c.h": the generated protobuf header, above store (order: base < store < modules < pb < compose < ads < transport < admin < app)
store/model.c:6: alloc: malloc(): use xds_malloc (base/alloc.h), which the allocation-failure tests can fail
tests/check_x.c:5: banned: atoi(): no error detection; use strtol and check the end
EOF

"$py" "$checksrc" --root "$tmp/tree" >"$tmp/got.unsorted" 2>"$tmp/err"
rc=$?
sort "$tmp/got.unsorted" >"$tmp/got"
sort -o "$tmp/want" "$tmp/want"
if [ "$rc" != 1 ]; then
  echo "FAIL: checksrc on the fixture exited $rc, want 1"
  fail=1
fi
if ! diff -u "$tmp/want" "$tmp/got"; then
  echo "FAIL: checksrc on the fixture: output differs (- want, + got)"
  fail=1
fi
for rule in banned alloc layer grpc microhttpd library folder comment allow; do
  if ! grep -q "^[^:]*:[0-9]*: $rule: " "$tmp/got"; then
    echo "FAIL: no violation of rule $rule reported"
    fail=1
  fi
done

# ---- the fixture fixed: nothing to report ----
mk base/buf.h <<'EOF'
/* buf.h: a fixture header. */
#ifndef BUF_H
#define BUF_H
/* Commented. */
int buf_naked(void);
#endif
EOF
mk base/buf.c <<'EOF'
#include "base/buf.h"
#include <stdio.h>
void buf_copy(char *d, size_t n, const char *s2) {
  snprintf(d, n, "%s", s2);
}
EOF
mk store/model.c <<'EOF'
#include "base/buf.h"
#include "store/model.h"
EOF
mk server/compose/chain.c <<'EOF'
#include "store/model.h"
#include "server/pb/wire.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>
#include <yaml.h>
EOF
mk store/catalog.c <<'EOF'
#include <jansson.h>
#include <curl/curl.h>
#include <yaml.h>
#include <sys/stat.h>
EOF
mk server/transport/xds_server.c <<'EOF'
#include <grpc/grpc.h>
#include "server/compose/chain.h"
EOF
mk server/ads/ads.c <<'EOF'
#include "server/compose/chain.h"
EOF
mk server/admin/admin.c <<'EOF'
#include <microhttpd.h>
#include "server/ads/ads.h"
EOF
mk server/ctl/ctl.c <<'EOF'
#include "server/compose/chain.h"
#include "store/model.h"
#include <yaml.h>
#include <protobuf-c/protobuf-c.h>
EOF
rm -r "$tmp/tree/server/newstage"
mk tests/check_x.c <<'EOF'
#include <grpc/grpc.h>
#include <microhttpd.h>
#include "server/app/main.h"
void *t(void) { return malloc(1); }
EOF
mk modules/fetch.c <<'EOF'
void f(void *p) {
  /* checksrc: allow alloc: handed over by a library that used malloc */
  free(p);
}
EOF
# What a build in the tree generates is skipped.
mk config.h <<'EOF'
/* config.h.  Generated from config.h.in by configure.  */
#define X(a) strcpy(a, "x")
int config_generated(void);
EOF
mk base/build_commit.h <<'EOF'
int build_commit_generated(void);
EOF
mk tests/gen/x.pb-c.c <<'EOF'
char *y(void) { char b[4]; return strcpy(b, "y"); }
EOF
# A build directory inside the tree is skipped.
mk build/config.status </dev/null
mk build/proto/gen/x.pb-c.c <<'EOF'
char *x(void) { char b[4]; return strcpy(b, "x"); }
EOF

"$py" "$checksrc" --root "$tmp/tree" >"$tmp/got2" 2>&1
rc=$?
if [ "$rc" != 0 ] || [ -s "$tmp/got2" ]; then
  echo "FAIL: checksrc on the fixed fixture exited $rc, want 0 and no output:"
  cat "$tmp/got2"
  fail=1
fi

# ---- the real tree ----
"$py" "$checksrc" --root "$src" >"$tmp/real" 2>&1
rc=$?
if [ "$rc" != 0 ]; then
  echo "FAIL: checksrc on the tree exited $rc:"
  cat "$tmp/real"
  fail=1
fi

if [ "$fail" = 0 ]; then
  echo "test_checksrc: ok (fixture: $(wc -l <"$tmp/got") violations found, as expected; tree clean)"
fi
exit "$fail"
