#!/bin/sh
# Compiles each C test program (tests/c/test_*.c) against CInclude/swiftattr.h and
# .build/release/libswiftattr.so, then runs them all. The header is also compiled as C++ (it is meant to
# be included from C++ too). Builds the release library first when it is absent. Run from anywhere; exits
# non-zero on any failure.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f .build/release/libswiftattr.so ]; then
    swift build -c release
fi
tmp="${TMPDIR:-/tmp}/swiftattr_test_c.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
if command -v c++ >/dev/null 2>&1; then
    printf '#include "swiftattr.h"\nint main() { return sa_version() == SA_VERSION ? 0 : 1; }\n' > "$tmp/header.cpp"
    c++ -std=c++11 -Wall -Wextra -Werror -I CInclude "$tmp/header.cpp" -o "$tmp/header_cpp" \
        -L .build/release -lswiftattr -Wl,-rpath,"$PWD/.build/release"
    "$tmp/header_cpp"
fi
status=0
for src in tests/c/test_*.c; do
    name=$(basename "$src" .c)
    cc -std=c11 -Wall -Wextra -Werror -I CInclude -I tests/c "$src" -o "$tmp/$name" \
        -L .build/release -lswiftattr -Wl,-rpath,"$PWD/.build/release" -lpthread -lm
    echo "$name:"
    "$tmp/$name" || status=1
done
exit $status
