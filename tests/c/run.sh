#!/bin/sh
# Compiles each C test program in tests/c (test_capi.c, test_robustness.c) against CInclude/swiftattr.h and
# .build/release/libswiftattr.so, then runs it. Builds the release library first when it is absent. Run from
# anywhere; exits non-zero on failure.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f .build/release/libswiftattr.so ]; then
    swift build -c release
fi
out="${TMPDIR:-/tmp}/swiftattr_test_c.$$"
trap 'rm -f "$out"' EXIT
for test in test_capi test_robustness; do
    cc -std=c11 -Wall -Wextra -Werror -I CInclude "tests/c/$test.c" -o "$out" \
        -L .build/release -lswiftattr -Wl,-rpath,"$PWD/.build/release" -lpthread -lm
    echo "$test:"
    "$out"
done
