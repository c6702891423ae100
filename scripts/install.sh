#!/usr/bin/env bash
# Installs or uninstalls the C library (what `make install` / `make
# uninstall` run):
#   $LIBDIR/libquorumkit.so.<ABI>.<VERSION>   the shared library
#   $LIBDIR/libquorumkit.so.<ABI>             -> it (the SONAME)
#   $LIBDIR/libquorumkit.so                   -> libquorumkit.so.<ABI> (for -lquorumkit)
#   $LIBDIR/libquorumkit.a                    the static library
#   $INCLUDEDIR/quorumkit.h, quorumkit.hpp    the C header and the C++ wrapper
#   $LIBDIR/pkgconfig/quorumkit.pc
#   $LIBDIR/cmake/quorumkit/                  the CMake package
#   $DATADIR/quorumkit/quorumkit-constants.json   every constant, for FFI layers
# Every path is prefixed with $DESTDIR (staged installs, packaging).
#
# Usage: PREFIX=... [LIBDIR=...] [INCLUDEDIR=...] [DATADIR=...] [DESTDIR=...] \
#        scripts/install.sh install|uninstall BUILD_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 install|uninstall BUILD_DIR" >&2; exit 2; }
action=$1
build=$2
PREFIX=${PREFIX:-/usr/local}
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=${INCLUDEDIR:-$PREFIX/include}
DATADIR=${DATADIR:-$PREFIX/share}
DESTDIR=${DESTDIR:-}
for v in PREFIX LIBDIR INCLUDEDIR DATADIR; do
    case ${!v} in /*) ;; *) echo "install: $v must be an absolute path, not '${!v}'" >&2; exit 2 ;; esac
done

abi=$(sed -n 's/^#define QK_ABI_VERSION \(.*\)$/\1/p' "$ROOT/include/quorumkit.h")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
[ -n "$abi" ] && [ -n "$version" ] || { echo "install: cannot read the ABI or crate version" >&2; exit 1; }
real=libquorumkit.so.$abi.$version
soname=libquorumkit.so.$abi

lib=$DESTDIR$LIBDIR
inc=$DESTDIR$INCLUDEDIR
share=$DESTDIR$DATADIR/quorumkit
cmake=$lib/cmake/quorumkit

# Everything install writes, for uninstall to remove (files and links).
files=("$lib/$real" "$lib/$soname" "$lib/libquorumkit.so" "$lib/libquorumkit.a"
       "$inc/quorumkit.h" "$inc/quorumkit.hpp" "$lib/pkgconfig/quorumkit.pc"
       "$cmake/quorumkitConfig.cmake" "$cmake/quorumkitConfigVersion.cmake"
       "$cmake/quorumkitPaths.cmake" "$share/quorumkit-constants.json")

case $action in
install)
    for f in libquorumkit.so libquorumkit.a; do
        [ -f "$build/$f" ] || { echo "install: $build/$f missing (cargo build --release --lib)" >&2; exit 1; }
    done
    got=$(readelf -d "$build/libquorumkit.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
    [ "$got" = "$soname" ] || { echo "install: the built library's SONAME is '$got', the header says $soname" >&2; exit 1; }
    install -d "$lib/pkgconfig" "$cmake" "$inc" "$share"
    install -m 755 "$build/libquorumkit.so" "$lib/$real"
    ln -sfn "$real" "$lib/$soname"
    ln -sfn "$soname" "$lib/libquorumkit.so"
    install -m 644 "$build/libquorumkit.a" "$lib/libquorumkit.a"
    install -m 644 "$ROOT/include/quorumkit.h" "$ROOT/bindings/cpp/quorumkit.hpp" "$inc/"
    install -m 644 "$ROOT/include/quorumkit-constants.json" "$share/"
    sed -e "s|@PREFIX@|$PREFIX|" -e "s|@LIBDIR@|$LIBDIR|" -e "s|@INCLUDEDIR@|$INCLUDEDIR|" \
        -e "s|@VERSION@|$version|" "$ROOT/bindings/pkgconfig/quorumkit.pc.in" >"$lib/pkgconfig/quorumkit.pc"
    chmod 644 "$lib/pkgconfig/quorumkit.pc"
    install -m 644 "$ROOT"/bindings/cmake/quorumkitConfig.cmake \
        "$ROOT"/bindings/cmake/quorumkitConfigVersion.cmake "$cmake/"
    # Where the package is (without DESTDIR: where it will be found), so that
    # any LIBDIR/INCLUDEDIR layout works, not only <prefix>/lib + <prefix>/include.
    printf 'set(_qk_include_hints "%s")\nset(_qk_lib_hints "%s")\n' "$INCLUDEDIR" "$LIBDIR" \
        >"$cmake/quorumkitPaths.cmake"
    chmod 644 "$cmake/quorumkitPaths.cmake"
    echo "installed quorumkit $version (ABI $abi) into ${DESTDIR}$PREFIX"
    ;;
uninstall)
    for f in "${files[@]}"; do
        if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f"; fi
    done
    # Directories only we use; the shared ones (lib/pkgconfig, include) stay.
    rmdir "$cmake" "$share" 2>/dev/null || true
    rmdir "$lib/cmake" 2>/dev/null || true
    echo "uninstalled quorumkit from ${DESTDIR}$PREFIX"
    ;;
*) echo "usage: $0 install|uninstall BUILD_DIR" >&2; exit 2 ;;
esac
