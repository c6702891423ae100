#!/usr/bin/env bash
# `make install` as a user meets it: install into temp prefixes (a plain
# one with an unusual LIBDIR, and a DESTDIR-staged one), check every file
# and link, then build and run consumers against the installed copy only:
#   - C through pkg-config (shared, and static with --static),
#   - C++ through CMake's find_package,
#   - Go through `#cgo pkg-config` (the bindings/go module and its tests),
#   - docs/c-abi.md's ctypes, koffi, cgo and JNA snippets,
# and finally `make uninstall`, which must leave nothing behind.
#
# Usage: scripts/install_test.sh        (make install-test runs it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/qk-install.XXXXXX)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
fail() { echo "install_test: FAILED: $*" >&2; exit 1; }
step() { echo "== install_test: $*"; }

abi=$(sed -n 's/^#define QK_ABI_VERSION \(.*\)$/\1/p' "$ROOT/include/quorumkit.h")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
WARN=(-Wall -Wextra -Werror)

# A Debian multiarch LIBDIR (lib/<triplet>), which CMake and pkg-config
# users meet on this platform, rather than the default lib.
multiarch=$(gcc -print-multiarch)
step "make install PREFIX=$TMP/prefix LIBDIR=\$PREFIX/lib/$multiarch"
PREFIX=$TMP/prefix
LIB=$PREFIX/lib/$multiarch
make -s -C "$ROOT" install PREFIX="$PREFIX" LIBDIR="$LIB" >/dev/null
for f in "$LIB/libquorumkit.so.$abi.$version" "$LIB/libquorumkit.a" "$PREFIX/include/quorumkit.h" \
         "$PREFIX/include/quorumkit.hpp" "$LIB/pkgconfig/quorumkit.pc" \
         "$LIB/cmake/quorumkit/quorumkitConfig.cmake" "$LIB/cmake/quorumkit/quorumkitConfigVersion.cmake" \
         "$PREFIX/share/quorumkit/quorumkit-constants.json"; do
    [ -f "$f" ] || fail "$f missing"
done
[ "$(readlink "$LIB/libquorumkit.so.$abi")" = "libquorumkit.so.$abi.$version" ] || fail "SONAME link"
[ "$(readlink "$LIB/libquorumkit.so")" = "libquorumkit.so.$abi" ] || fail "dev link"
soname=$(readelf -d "$LIB/libquorumkit.so.$abi.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libquorumkit.so.$abi" ] || fail "installed SONAME is $soname"
cmp -s "$ROOT/include/quorumkit.h" "$PREFIX/include/quorumkit.h" || fail "header differs"

export PKG_CONFIG_PATH=$LIB/pkgconfig
[ "$(pkg-config --modversion quorumkit)" = "$version" ] || fail "pkg-config version"
[ "$(pkg-config --variable=libdir quorumkit)" = "$LIB" ] || fail "pkg-config libdir"

step "C consumer through pkg-config (shared)"
# shellcheck disable=SC2046 # word splitting of the flags is intended
gcc -std=c11 "${WARN[@]}" "$ROOT/examples/c/ring_example.c" -o "$TMP/c_shared" \
    $(pkg-config --cflags --libs quorumkit) -Wl,-rpath,"$LIB"
# ldd's output is taken whole before grep reads it: `ldd | grep -q` under
# pipefail fails at random when grep exits on its match and ldd's next
# write meets a closed pipe (SIGPIPE).
deps=$(ldd "$TMP/c_shared")
grep -q "libquorumkit.so.$abi => $LIB/libquorumkit.so.$abi" <<<"$deps" \
    || fail "the C consumer does not load the installed library"
"$TMP/c_shared" >/dev/null

step "C consumer through pkg-config --static"
# shellcheck disable=SC2046
gcc -std=c11 "${WARN[@]}" "$ROOT/examples/c/ring_example.c" -o "$TMP/c_static" \
    $(pkg-config --cflags quorumkit) "$LIB/libquorumkit.a" \
    $(pkg-config --static --libs-only-l quorumkit | sed 's/-lquorumkit//')
deps=$(ldd "$TMP/c_static")
! grep -q libquorumkit <<<"$deps" || fail "the static consumer loads the shared library"
"$TMP/c_static" >/dev/null

step "C++ consumer through CMake find_package"
cmake -S "$ROOT/examples/cpp" -B "$TMP/cmake" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_BUILD_TYPE=Release >"$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log"; fail "cmake configure"; }
cmake --build "$TMP/cmake" >>"$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log"; fail "cmake build"; }
deps=$(ldd "$TMP/cmake/ring_example_cpp")
grep -q "libquorumkit.so.$abi => $LIB/libquorumkit.so.$abi" <<<"$deps" \
    || fail "the C++ consumer does not load the installed library"
"$TMP/cmake/ring_example_cpp" >/dev/null

step "Go consumer through #cgo pkg-config (bindings/go, go test -race)"
command -v go >/dev/null || fail "go is missing (make sysdeps installs golang-go)"
export GOFLAGS=-mod=mod GOCACHE=${GOCACHE:-$TMP/gocache} GOPATH=${GOPATH:-$TMP/gopath}
(cd "$ROOT/bindings/go" && CGO_LDFLAGS="-Wl,-rpath,$LIB" go vet ./... && \
    CGO_LDFLAGS="-Wl,-rpath,$LIB" go test -count=1 -race ./...)
unset PKG_CONFIG_PATH

step "docs/c-abi.md's ctypes, koffi, cgo and JNA snippets against the installed copy"
"$ROOT/scripts/ffi_snippets_test.sh" "$LIB" "$LIB/pkgconfig"

step "make install DESTDIR (staged: nothing outside DESTDIR, paths without it)"
STAGE=$TMP/stage
make -s -C "$ROOT" install DESTDIR="$STAGE" PREFIX=/opt/quorumkit >/dev/null
[ -f "$STAGE/opt/quorumkit/lib/libquorumkit.so.$abi.$version" ] || fail "staged library"
grep -qx "prefix=/opt/quorumkit" "$STAGE/opt/quorumkit/lib/pkgconfig/quorumkit.pc" || fail "staged pc prefix"
grep -q '"/opt/quorumkit/include"' "$STAGE/opt/quorumkit/lib/cmake/quorumkit/quorumkitPaths.cmake" \
    || fail "staged CMake paths"
[ ! -e /opt/quorumkit ] || [ -n "$(ls -A /opt/quorumkit 2>/dev/null)" ] || fail "wrote outside DESTDIR"

step "make uninstall leaves nothing"
make -s -C "$ROOT" uninstall PREFIX="$PREFIX" LIBDIR="$LIB" >/dev/null
left=$(find "$PREFIX" -type f -o -type l)
[ -z "$left" ] || fail "left behind: $left"
make -s -C "$ROOT" uninstall DESTDIR="$STAGE" PREFIX=/opt/quorumkit >/dev/null
left=$(find "$STAGE" -type f -o -type l)
[ -z "$left" ] || fail "left behind (staged): $left"
echo "install_test: install, consumers (C shared/static, C++ CMake, Go) and uninstall passed"
