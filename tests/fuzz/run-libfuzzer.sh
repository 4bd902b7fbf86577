#!/bin/bash
# Build a fuzz target with clang's libFuzzer + ASan/UBSan and run it for a while.
# Usage: tests/fuzz/run-libfuzzer.sh [token|kms-response] [SECONDS]
#   (from a configured source tree; needs clang and libclang-rt-14-dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:-token}
secs=${2:-60}
case $target in
token) corpus=token ;;
kms-response) corpus=kms ;;
*) echo "unknown target '$target'" >&2; exit 2 ;;
esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=$(pkg-config --cflags --libs libcryptsetup json-c libcrypto libcurl blkid devmapper p11-kit-1)
clang -g -O1 -fsanitize=fuzzer,address,undefined -DKC_LIBFUZZER -include config.h -Ilib \
	"tests/fuzz/fuzz-$target.c" lib/ctx.c lib/config.c lib/secret.c lib/util.c lib/token.c \
	lib/provider.c lib/http.c lib/providers/*.c $flags -o "$out/fuzz"
mkdir "$out/corpus"
cp "tests/fuzz/corpus/$corpus"/* "$out/corpus/"
"$out/fuzz" -max_total_time="$secs" -max_len=8192 "$out/corpus"
