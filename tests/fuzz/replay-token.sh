#!/bin/bash
# Replay the token corpus through the fuzz target (plain build; no libFuzzer needed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "${FUZZ_TOKEN:-./tests/fuzz/fuzz-token}" "$here"/corpus/token/*
