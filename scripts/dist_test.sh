#!/usr/bin/env bash
# Installs each artifact of `make dist` in a clean place and runs a smoke test:
#   - the wheel into a fresh venv;
#   - the sdist, copied alone to a temp dir, built from scratch by pip in a
#     fresh venv (cargo compiles the Rust core: the slow step, minutes);
#   - the crate, unpacked and used as a dependency of a new cargo project;
#   - the C SDK, unpacked elsewhere and used through pkg-config (shared and
#     static) and CMake's find_package.
# The Python smoke test: a ring lookup, a lease with a fence, a Paxos decision.
#
# Usage: scripts/dist_test.sh [PYTHON]   (make dist-test runs make dist, then this)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOST_PY=${1:-python3}
DIST=$ROOT/dist
TMP=$(mktemp -d /tmp/qk-dist.XXXXXX)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
fail() { echo "dist_test: FAILED: $*" >&2; exit 1; }
step() { echo "== dist_test: $*"; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)

cat >"$TMP/smoke.py" <<'PY'
import quorumkit as qk

ring = qk.HashRing(["a", "b", "c"])
assert ring.get_node("user:42") in ("a", "b", "c")
table, fence = qk.LeaseTable(), qk.Fence()
first = table.acquire("job", "w1", 10)
table.release(first)
second = table.acquire("job", "w2", 10)
fence.check("job", second.token)
try:
    fence.check("job", first.token)
    raise SystemExit("a stale token passed the fence")
except qk.StaleTokenError:
    pass
cluster = qk.PaxosCluster(3, seed=1)
cluster.propose(b"v")
assert cluster.run_until_decided(b"v")
cluster.check()
from quorumkit.compat.paxos import Paxos
assert Paxos(3).propose("value1") == "value1"
print("smoke ok", qk.__version__)
PY

step "wheel into a fresh venv"
wheel=$(ls "$DIST"/quorumkit-"$version"-cp310-abi3-manylinux_*.whl) || fail "no wheel in dist/"
"$HOST_PY" -m venv "$TMP/wheel-venv"
"$TMP/wheel-venv/bin/pip" install -q "$wheel"
# Outputs are taken whole before grep reads them (see install_test.sh:
# `cmd | grep -q` under pipefail can fail on SIGPIPE).
out=$(cd "$TMP" && "$TMP/wheel-venv/bin/python" smoke.py) || fail "wheel smoke test"
grep -q "smoke ok $version" <<<"$out" || fail "wheel smoke test"

step "sdist alone, built from scratch in a fresh venv"
mkdir "$TMP/sdist"
cp "$DIST/quorumkit-$version.tar.gz" "$TMP/sdist/"
"$HOST_PY" -m venv "$TMP/sdist-venv"
start=$(date +%s)
(cd "$TMP/sdist" && CARGO_TARGET_DIR="$TMP/sdist-target" \
    "$TMP/sdist-venv/bin/pip" install -q "quorumkit-$version.tar.gz") || fail "sdist build"
echo "sdist built and installed in $(($(date +%s) - start)) s"
out=$(cd "$TMP" && "$TMP/sdist-venv/bin/python" smoke.py) || fail "sdist smoke test"
grep -q "smoke ok $version" <<<"$out" || fail "sdist smoke test"

step "crate as a dependency of a new project"
mkdir -p "$TMP/crate" "$TMP/app/src"
tar -C "$TMP/crate" -xzf "$DIST/quorumkit-$version.crate"
cat >"$TMP/app/Cargo.toml" <<TOML
[package]
name = "qk-smoke"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
quorumkit = { path = "$TMP/crate/quorumkit-$version" }

[workspace]
TOML
cat >"$TMP/app/src/main.rs" <<'RS'
use quorumkit::lease::{Fence, LeaseTable, Mode};
use quorumkit::ring::{HashRing, Placement};
use std::time::Duration;

fn main() {
    let mut ring = HashRing::new();
    ring.add_node("a", 1).unwrap();
    ring.add_node("b", 1).unwrap();
    assert!(["a", "b"].contains(&ring.get_node(b"user:42").unwrap()));
    let table = LeaseTable::default();
    let l = table.acquire("job", "me", Duration::from_secs(5), Mode::Exclusive, None).unwrap();
    Fence::new().check("job", l.token).unwrap();
    table.release(&l).unwrap();
    println!("crate smoke ok");
}
RS
# The repository's target dir: the crate's dependencies are built already.
out=$(cd "$TMP/app" && CARGO_TARGET_DIR="$ROOT/target/dist-smoke" cargo run -q --release) || fail "crate smoke test"
grep -q "crate smoke ok" <<<"$out" || fail "crate smoke test"

step "C SDK through pkg-config and CMake"
tar -C "$TMP" -xzf "$DIST/quorumkit-c-sdk-$version-linux-$(uname -m).tar.gz"
sdk=$TMP/quorumkit-c-sdk-$version-linux-$(uname -m)
export PKG_CONFIG_PATH=$sdk/lib/pkgconfig
[ "$(pkg-config --modversion quorumkit)" = "$version" ] || fail "pkg-config version"
gcc -Wall -Wextra -Werror "$ROOT/examples/c/ring_example.c" -o "$TMP/c-shared" \
    $(pkg-config --cflags --libs quorumkit) -Wl,-rpath,"$sdk/lib"
"$TMP/c-shared" >/dev/null || fail "C program on the shared library"
gcc -Wall -Wextra -Werror "$ROOT/examples/c/ring_example.c" -o "$TMP/c-static" \
    $(pkg-config --cflags quorumkit) "$sdk/lib/libquorumkit.a" $(pkg-config --static --libs-only-l quorumkit | sed 's/-lquorumkit//')
"$TMP/c-static" >/dev/null || fail "C program on the static library"
deps=$(ldd "$TMP/c-static")
! grep -q quorumkit <<<"$deps" || fail "the static build links the shared library"
cmake -S "$ROOT/examples/cpp" -B "$TMP/cmake" -DCMAKE_PREFIX_PATH="$sdk" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$TMP/cmake" >/dev/null
LD_LIBRARY_PATH=$sdk/lib "$TMP/cmake/$(sed -n 's/^add_executable(\([^ ]*\).*/\1/p' "$ROOT/examples/cpp/CMakeLists.txt")" >/dev/null ||
    fail "C++ program through CMake"

echo "dist_test: wheel, sdist (from scratch), crate and C SDK installed and passed their smoke tests"
