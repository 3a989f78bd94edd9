# What an operator installs and runs: -V with the build's commit, the
# systemd unit in deploy/ (issue 17, item 5).
TESTS += tests/build_info.sh tests/systemd_unit.sh
EXTRA_DIST += tests/build_info.sh tests/systemd_unit.sh

# The README's first command in a fresh clone, with no /var/cache/wasmxds
# (issue 14, item 9): builds its own build/, so only the plain suite runs it.
TESTS += tests/first_command.sh
EXTRA_DIST += tests/first_command.sh
