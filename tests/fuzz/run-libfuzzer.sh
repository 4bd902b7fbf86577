#!/bin/bash
# Build the token fuzz target with clang's libFuzzer + ASan/UBSan and run it for a while.
# Usage: tests/fuzz/run-libfuzzer.sh [SECONDS]   (from a configured source tree)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=$(pkg-config --cflags --libs libcryptsetup json-c libcrypto blkid devmapper p11-kit-1)
clang -g -O1 -fsanitize=fuzzer,address,undefined -DKC_LIBFUZZER -include config.h -Ilib \
	tests/fuzz/fuzz-token.c lib/ctx.c lib/config.c lib/secret.c lib/util.c lib/token.c \
	lib/provider.c lib/providers/*.c $flags -o "$out/fuzz-token"
mkdir "$out/corpus"
cp tests/fuzz/corpus/token/* "$out/corpus/"
"$out/fuzz-token" -max_total_time="$secs" -max_len=8192 "$out/corpus"
