#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build a fuzz target with clang's libFuzzer + ASan/UBSan and run it for a while.
# Usage: tests/fuzz/run-libfuzzer.sh [token|kms-response|kek-uri] [SECONDS]
#   (from a configured source tree; needs clang and libclang-rt-14-dev)
# Every library source is compiled (lib/*.c, lib/providers/*.c: what lib/Makemodule.am
# lists), with the flags of the dependencies configure.ac asks pkg-config for, so that the
# script keeps linking as the library grows.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:-token}
secs=${2:-60}
case $target in
token) corpus=token ;;
kms-response) corpus=kms ;;
kek-uri) corpus=kek-uri ;;
*) echo "unknown target '$target'" >&2; exit 2 ;;
esac
[ -f config.h ] || { echo "run ./configure first (config.h is missing)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mods=$(sed -n 's/^PKG_CHECK_MODULES(\[[A-Z_0-9]*\], \[\(.*\)\])$/\1/p' configure.ac |
	sed 's/ *[<>=]=* *[0-9.]*//g')
# shellcheck disable=SC2086 # word splitting wanted
flags=$(pkg-config --cflags --libs $mods)
# shellcheck disable=SC2086
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DKC_LIBFUZZER -include config.h -Ilib "tests/fuzz/fuzz-$target.c" lib/*.c \
	lib/providers/*.c $flags -lpthread -o "$out/fuzz"
mkdir "$out/corpus"
cp "tests/fuzz/corpus/$corpus"/* "$out/corpus/"
"$out/fuzz" -max_total_time="$secs" -max_len=8192 "$out/corpus"
