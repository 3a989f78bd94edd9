# What an operator installs and runs: -V with the build's commit, the
# systemd unit in deploy/ (issue 17, item 5).
TESTS += tests/build_info.sh tests/systemd_unit.sh
EXTRA_DIST += tests/build_info.sh tests/systemd_unit.sh
