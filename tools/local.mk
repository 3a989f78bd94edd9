# tools/: the house rules checked mechanically (README, "Building and
# testing"). Both checks are part of `make check` (check-local):
#   make check-src     tools/checksrc: banned calls, raw allocation in the
#                      libraries, the include-direction table, a comment on
#                      every public prototype
#   make check-format  clang-format --dry-run -Werror over every .c/.h that
#                      checksrc walks (the tree, by folder, without proto/);
#                      skipped with a message when clang-format is missing
# tools/test_checksrc.sh tests the checker itself (a fixture tree with one
# violation of each rule, the same tree fixed, the real tree).
# tools/test_module_map.sh checks that the README's module map names every
# library file and nothing that is gone.

PYTHON3 = python3
CLANG_FORMAT = clang-format

dist_noinst_SCRIPTS += tools/checksrc tools/test_checksrc.sh \
	tools/test_module_map.sh
TESTS += tools/test_checksrc.sh tools/test_module_map.sh

.PHONY: check-src check-format
check-src:
	@if ! command -v $(PYTHON3) >/dev/null 2>&1; then \
	  echo "check-src: $(PYTHON3) not found; skipped"; exit 0; fi; \
	$(PYTHON3) $(srcdir)/tools/checksrc --root $(srcdir) && \
	  echo "check-src: ok"

check-format:
	@if ! command -v $(CLANG_FORMAT) >/dev/null 2>&1; then \
	  echo "check-format: $(CLANG_FORMAT) not found; skipped" \
	    "(deploy/setup.sh --test-deps installs it)"; exit 0; fi; \
	if ! command -v $(PYTHON3) >/dev/null 2>&1; then \
	  echo "check-format: $(PYTHON3) not found; skipped"; exit 0; fi; \
	files=`$(PYTHON3) $(srcdir)/tools/checksrc --root $(srcdir) --list` && \
	cd $(srcdir) && $(CLANG_FORMAT) --dry-run -Werror $$files && \
	  echo "check-format: ok ($(CLANG_FORMAT), `echo $$files | wc -w` files)"

check-local: check-src check-format
