# ThreadSanitizer (README, "Building and testing"): in a build configured
# with --enable-tsan, `make check-tsan` runs the suites that use threads
# (tests/tsan.sh); deploy/test.sh runs it in build-tsan/.
EXTRA_DIST += tests/tsan.sh tests/tsan-grpc.supp
.PHONY: check-tsan
if TSAN
TSAN_RUN_BINS = tests/check_unit tests/check_admin tests/check_etcd \
	tests/check_threads wasmxds wasmxdsctl
# Builds only what it runs (the generated sources first).
check-tsan:
	@$(MAKE) $(AM_MAKEFLAGS) $(BUILT_SOURCES)
	@$(MAKE) $(AM_MAKEFLAGS) $(TSAN_RUN_BINS)
	@$(AM_TESTS_ENVIRONMENT) $(SHELL) $(srcdir)/tests/tsan.sh
else
check-tsan:
	@echo "check-tsan: configure with --enable-tsan" >&2; exit 1
endif
