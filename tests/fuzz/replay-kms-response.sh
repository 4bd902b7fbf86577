#!/bin/bash
# Replay the KMS response corpus through the fuzz target (plain build; no libFuzzer needed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "${FUZZ_KMS:-./tests/fuzz/fuzz-kms-response}" "$here"/corpus/kms/*
