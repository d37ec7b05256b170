#!/bin/sh
# Compiles tests/c/test_capi.c and tests/c/test_fork.c against CInclude/swiftattr.h and
# .build/release/libswiftattr.so, then runs them. Builds the release library first when it is absent.
# Run from anywhere; exits non-zero on failure. SA_FORK_CHILDREN sets test_fork's children per phase.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f .build/release/libswiftattr.so ]; then
    swift build -c release
fi
out="${TMPDIR:-/tmp}/swiftattr_test_capi.$$"
trap 'rm -f "$out" "$out.fork"' EXIT
cc -std=c11 -Wall -Wextra -Werror -I CInclude tests/c/test_capi.c -o "$out" \
    -L .build/release -lswiftattr -Wl,-rpath,"$PWD/.build/release" -lpthread -lm
cc -std=c11 -Wall -Wextra -Werror -I CInclude tests/c/test_fork.c -o "$out.fork" \
    -L .build/release -lswiftattr -Wl,-rpath,"$PWD/.build/release" -lpthread -lm
"$out"
"$out.fork"
