#!/usr/bin/env bash
# Builds the release artifacts into dist/ (make dist):
#   quorumkit-<v>-cp310-abi3-manylinux_2_34_x86_64.whl  an abi3 wheel, checked by auditwheel
#   quorumkit-<v>.tar.gz                                the sdist (Rust core + Python package)
#   quorumkit-<v>.crate                                 the crate, as `cargo package` verifies it
#   quorumkit-c-sdk-<v>-linux-<arch>.tar.gz             shared and static libraries, headers,
#                                                       pkg-config and CMake files (relocatable)
# The wheel's tag is the oldest glibc its symbols allow (auditwheel shows
# which): this machine's toolchain needs glibc 2.34 symbols.
#
# Usage: scripts/dist.sh [PYTHON]   (needs cargo build --release --lib first)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${1:-$ROOT/.venv/bin/python}
DIST=$ROOT/dist
TAG=manylinux_2_34
cd "$ROOT"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(uname -m)
rm -rf "$DIST"
mkdir -p "$DIST"

echo "== dist: wheel ($TAG, abi3)"
"$PY" -m maturin build --release -m python/Cargo.toml -o "$DIST" --compatibility "$TAG"
wheel=$(ls "$DIST"/quorumkit-"$version"-cp310-abi3-"$TAG"_"$arch".whl)
shown=$("$PY" -m auditwheel show "$wheel" | tr '\n' ' ')
grep -q "consistent with the following platform tag: \"${TAG}_$arch\"" <<<"$shown" ||
    { echo "dist: auditwheel does not confirm $TAG: $shown" >&2; exit 1; }

echo "== dist: sdist"
"$PY" -m maturin sdist -m python/Cargo.toml -o "$DIST"

echo "== dist: crate (cargo package builds it from the packaged sources)"
cargo package --locked --allow-dirty -q
cp "target/package/quorumkit-$version.crate" "$DIST/"

echo "== dist: C SDK"
stage=$(mktemp -d /tmp/qk-sdk.XXXXXX)
trap 'rm -rf "$stage"' EXIT
top=quorumkit-c-sdk-$version-linux-$arch
DESTDIR=$stage PREFIX=/$top LIBDIR=/$top/lib INCLUDEDIR=/$top/include DATADIR=/$top/share \
    scripts/install.sh install target/release >/dev/null
# Relocatable: pkg-config paths relative to the .pc file, and CMake's
# config finds the tree from its own place (no recorded absolute paths).
sed -i -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' -e 's|^libdir=.*|libdir=${prefix}/lib|' \
    -e 's|^includedir=.*|includedir=${prefix}/include|' "$stage/$top/lib/pkgconfig/quorumkit.pc"
rm "$stage/$top/lib/cmake/quorumkit/quorumkitPaths.cmake"
install -m 644 README.md CHANGELOG.md "$stage/$top/"
tar -C "$stage" -czf "$DIST/$top.tar.gz" "$top"

ls -l "$DIST"
