#!/bin/bash
# Install what is needed, build with warnings as errors, run the static checks (`make lint`,
# scripts/lint-*.sh), and run every test (`make check`):
# unit, fuzz corpus replay, host tests on images and loop devices, and the QEMU guest tests
# with real dm-crypt; then the unit, fuzz replay and host suites again in an ASan + UBSan
# build (scripts/test-sanitizers.sh). Needs root. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -x configure ]; then ./autogen.sh; fi
if [ ! -f Makefile ]; then ./configure --enable-werror; fi
make -j"$(nproc)"
make lint
make -j1 check || { cat tests/*/*.log 2>/dev/null | tail -n 200; exit 1; }
scripts/test-sanitizers.sh
