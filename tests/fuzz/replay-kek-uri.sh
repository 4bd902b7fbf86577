#!/bin/bash
# Replay the KEK URI corpus through the fuzz target (plain build; no libFuzzer needed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "${FUZZ_KEK_URI:-./tests/fuzz/fuzz-kek-uri}" "$here"/corpus/kek-uri/*
