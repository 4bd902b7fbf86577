#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Replay the token corpus through the fuzz target (plain build; no libFuzzer needed). The
# binary is in $KC_BUILDDIR (make check sets it), by default the tree this script is in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "${FUZZ_TOKEN:-${KC_BUILDDIR:-$here/../..}/tests/fuzz/fuzz-token}" "$here"/corpus/token/*
