# deploy/: what `make install` puts besides the binaries (README,
# "Installing"): the man pages, bash completion for both programs, the
# systemd unit, and the examples (a store, Envoy bootstraps, a module).
# tests/install.sh checks every path the README lists.

dist_man_MANS = man/wasmxds.1 man/wasmxdsctl.1

bashcompdir = $(datadir)/bash-completion/completions
systemdunitdir = $(prefix)/lib/systemd/system
exampledir = $(docdir)/examples

EXTRA_DIST += deploy/completion/wasmxds.bash

install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(bashcompdir)' '$(DESTDIR)$(systemdunitdir)' \
		'$(DESTDIR)$(exampledir)'
	$(INSTALL_DATA) $(srcdir)/deploy/completion/wasmxds.bash \
		'$(DESTDIR)$(bashcompdir)/wasmxds'
	$(INSTALL_DATA) $(srcdir)/deploy/completion/wasmxds.bash \
		'$(DESTDIR)$(bashcompdir)/wasmxdsctl'
	sed 's|/usr/local/bin/wasmxds|$(bindir)/wasmxds|' \
		$(srcdir)/deploy/wasmxds.service >wasmxds.service.tmp
	$(INSTALL_DATA) wasmxds.service.tmp \
		'$(DESTDIR)$(systemdunitdir)/wasmxds.service'
	rm -f wasmxds.service.tmp
	cd $(srcdir)/deploy/examples && find . -type d | while read -r d; do \
	  $(MKDIR_P) "$(DESTDIR)$(exampledir)/$$d" || exit 1; done
	cd $(srcdir)/deploy/examples && find . -type f | while read -r f; do \
	  $(INSTALL_DATA) "$$f" "$(DESTDIR)$(exampledir)/$$f" || exit 1; done

uninstall-local:
	rm -f '$(DESTDIR)$(bashcompdir)/wasmxds' \
		'$(DESTDIR)$(bashcompdir)/wasmxdsctl' \
		'$(DESTDIR)$(systemdunitdir)/wasmxds.service'
	rm -rf '$(DESTDIR)$(exampledir)'

# make install DESTDIR=... puts every file where the README says; the man
# pages format without a warning.
TESTS += tests/install.sh
EXTRA_DIST += tests/install.sh
