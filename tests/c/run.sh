#!/bin/sh
# Compiles tests/c/test_capi.c against CInclude/swiftattr.h and .build/release/libswiftattr.so, then runs it.
# Builds the release library first when it is absent. Run from anywhere; exits non-zero on failure.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f .build/release/libswiftattr.so ]; then
    swift build -c release
fi
out="${TMPDIR:-/tmp}/swiftattr_test_capi.$$"
trap 'rm -f "$out"' EXIT
cc -std=c11 -Wall -Wextra -Werror -I CInclude tests/c/test_capi.c -o "$out" \
    -L .build/release -lswiftattr -Wl,-rpath,"$PWD/.build/release" -lpthread -lm
"$out"
