#!/usr/bin/env bash
# Builds and runs the C and C++ tests of the C API against include/ and the
# shared library in LIBDIR (built by `cargo build --release --lib`):
#   1. plainly, 2. under AddressSanitizer + UBSan, 3. under valgrind;
# then builds and runs the C example through pkg-config and the C++ example
# through CMake, from the source tree and from a staged install.
#
# Usage: scripts/c_tests.sh LIBDIR        (make c-test does this)
# Needs: gcc, g++, valgrind, pkg-config, cmake, readelf (make sysdeps).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 LIBDIR" >&2; exit 2; }
LIBDIR=$(cd "$1" && pwd)
BUILD=$ROOT/build/c
# The SONAME follows the ABI version (src/ffi/abi.rs, QK_ABI_VERSION in the header).
abi=$(sed -n 's/^#define QK_ABI_VERSION \(.*\)$/\1/p' "$ROOT/include/quorumkit.h")
[ -n "$abi" ] || { echo "c_tests: FAILED: no QK_ABI_VERSION in include/quorumkit.h" >&2; exit 1; }
SONAME=libquorumkit.so.$abi

step() { printf '\n== %s\n' "$*"; }
fail() { echo "c_tests: FAILED: $*" >&2; exit 1; }

[ -f "$LIBDIR/libquorumkit.so" ] || fail "$LIBDIR/libquorumkit.so missing (cargo build --release --lib)"
for tool in gcc g++ valgrind pkg-config cmake readelf; do
    command -v "$tool" >/dev/null || fail "$tool not installed (make sysdeps)"
done

step "shared library"
soname=$(readelf -d "$LIBDIR/libquorumkit.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "$SONAME" ] || fail "SONAME is '$soname', expected $SONAME"
echo "SONAME $soname"
# What ldconfig does in an install: the SONAME link next to the library.
ln -sfn libquorumkit.so "$LIBDIR/$SONAME"
stray=$(nm -D --defined-only "$LIBDIR/libquorumkit.so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^qk_' || true)
[ -z "$stray" ] || fail "unprefixed exported symbols: $stray"
echo "exported: $(nm -D --defined-only "$LIBDIR/libquorumkit.so" | grep -c ' T qk_') qk_ functions, nothing else"

version=$(sed -n 's/^#define QK_VERSION_STRING "\(.*\)"$/\1/p' "$ROOT/include/quorumkit.h")
[ -n "$version" ] || fail "no QK_VERSION_STRING in include/quorumkit.h"

rm -rf "$BUILD"
mkdir -p "$BUILD"
WARN=(-Wall -Wextra -Werror)
INC=(-I"$ROOT/include" -I"$ROOT/bindings/cpp")
LINK=(-L"$LIBDIR" -lquorumkit -Wl,-rpath,"$LIBDIR")
C_SRC=("$ROOT"/tests/c/test_main.c "$ROOT"/tests/c/test_errors.c "$ROOT"/tests/c/test_election.c "$ROOT"/tests/c/test_redis_lease.c "$ROOT"/tests/c/test_lease_client.c "$ROOT"/tests/c/test_replica.c "$ROOT"/tests/c/net_util.c "$ROOT"/tests/c/test_ring.c "$ROOT"/tests/c/test_ketama.c
       "$ROOT"/tests/c/test_threads.c "$ROOT"/tests/c/test_bounded.c "$ROOT"/tests/c/test_snapshot.c
       "$ROOT"/tests/c/test_algos.c "$ROOT"/tests/c/test_md5ring.c "$ROOT"/tests/c/test_lease.c
       "$ROOT"/tests/c/test_detect.c "$ROOT"/tests/c/test_paxos.c "$ROOT"/tests/c/test_txn.c
       "$ROOT"/tests/c/test_batch_flat.c)

# build VARIANT EXTRA_FLAGS...: the C and C++ test programs into $BUILD/VARIANT.
build() {
    local dir=$BUILD/$1
    shift
    mkdir -p "$dir"
    gcc -std=c11 -pedantic -g "${WARN[@]}" "$@" "${INC[@]}" -DQK_VECTORS_DIR="\"$ROOT/tests/vectors\"" \
        -DQK_BIN_PATH="\"$ROOT/target/release/quorumkit\"" \
        "${C_SRC[@]}" \
        -o "$dir/test_c" "${LINK[@]}" -pthread -lm
    g++ -std=c++17 -pedantic -g "${WARN[@]}" "$@" "${INC[@]}" "$ROOT/tests/c/test_cpp.cpp" \
        -o "$dir/test_cpp" "${LINK[@]}"
}

# loads_soname PROGRAM: it needs $SONAME and finds it in LIBDIR.
loads_soname() {
    readelf -d "$1" | grep "NEEDED.*\[$SONAME\]" >/dev/null || fail "$1 does not need $SONAME"
    ldd "$1" | grep "$SONAME => $LIBDIR/$SONAME" >/dev/null || fail "$1 does not load $LIBDIR/$SONAME"
}

step "plain build"
build plain -O2
loads_soname "$BUILD/plain/test_c"
loads_soname "$BUILD/plain/test_cpp"
"$BUILD/plain/test_c"
"$BUILD/plain/test_cpp"

step "AddressSanitizer + UndefinedBehaviorSanitizer"
build asan -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"$BUILD/asan/test_c"
"$BUILD/asan/test_cpp"
unset ASAN_OPTIONS UBSAN_OPTIONS

step "valgrind"
VALGRIND=(valgrind -q --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,indirect
          --suppressions="$ROOT/tests/c/valgrind.supp")
"${VALGRIND[@]}" "$BUILD/plain/test_c"
"${VALGRIND[@]}" "$BUILD/plain/test_cpp"

step "C example through pkg-config (source tree)"
mkdir -p "$BUILD/pkgconfig"
sed -e "s|@PREFIX@|$ROOT|" -e "s|@LIBDIR@|$LIBDIR|" -e "s|@INCLUDEDIR@|$ROOT/include|" \
    -e "s|@VERSION@|$version|" "$ROOT/bindings/pkgconfig/quorumkit.pc.in" >"$BUILD/pkgconfig/quorumkit.pc"
export PKG_CONFIG_PATH=$BUILD/pkgconfig
[ "$(pkg-config --modversion quorumkit)" = "$version" ] || fail "pkg-config version"
pc_libdir=$(pkg-config --variable=libdir quorumkit)
# shellcheck disable=SC2046 # word splitting of the flags is intended
gcc -std=c11 "${WARN[@]}" "$ROOT/examples/c/ring_example.c" -o "$BUILD/ring_example" \
    $(pkg-config --cflags --libs quorumkit) -Wl,-rpath,"$pc_libdir"
loads_soname "$BUILD/ring_example"
"$BUILD/ring_example"
unset PKG_CONFIG_PATH

# cmake_example NAME PREFIX [ARGS...]: configure, build and run examples/cpp.
cmake_example() {
    local dir=$BUILD/$1 prefix=$2
    shift 2
    cmake -S "$ROOT/examples/cpp" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="${WARN[*]}" "$@" >"$dir.log" 2>&1 \
        || { cat "$dir.log"; fail "cmake configure ($1)"; }
    cmake --build "$dir" >>"$dir.log" 2>&1 || { cat "$dir.log"; fail "cmake build ($1)"; }
    "$dir/ring_example_cpp"
}

step "C++ example through CMake (source tree: bindings/cmake)"
cmake_example cmake-tree "$ROOT/bindings/cmake" -DQUORUMKIT_LIBRARY_DIR="$LIBDIR"
loads_soname "$BUILD/cmake-tree/ring_example_cpp"

# Installed copies (make install) are tested by scripts/install_test.sh.

printf '\nc_tests: all C and C++ checks passed\n'
