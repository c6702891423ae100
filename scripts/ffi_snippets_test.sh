#!/usr/bin/env bash
# docs/c-abi.md's "Calling from other languages" snippets: each guide copy
# must equal its file under docs/ffi, and each file must run and print the
# right lookup and error through its FFI layer: Python ctypes, Node koffi,
# Go cgo (pkg-config), Java JNA.
#
# Usage: scripts/ffi_snippets_test.sh LIBDIR PKG_CONFIG_DIR
#   LIBDIR holds libquorumkit.so; PKG_CONFIG_DIR a quorumkit.pc for cgo.
#   koffi comes from bindings/node/node_modules (make node-deps).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 LIBDIR PKG_CONFIG_DIR" >&2; exit 2; }
LIBDIR=$(cd "$1" && pwd)
PCDIR=$(cd "$2" && pwd)
fail() { echo "ffi_snippets_test: FAILED: $*" >&2; exit 1; }
TMP=$(mktemp -d /tmp/qk-snippets.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export QUORUMKIT_LIB=$LIBDIR/libquorumkit.so

# The guide's copy of each snippet equals its file.
python3 - "$ROOT" <<'PY'
import re, sys, pathlib
root = pathlib.Path(sys.argv[1])
readme = (root / "docs" / "c-abi.md").read_text()
found = re.findall(r"<!-- snippet: (\S+) [^>]*-->\n```\w*\n(.*?)```\n", readme, re.S)
assert len(found) == 4, f"expected 4 snippets in docs/c-abi.md, found {len(found)}"
for path, body in found:
    if (root / path).read_text() != body:
        sys.exit(f"docs/c-abi.md's copy of {path} differs from the file (copy the file into the guide)")
PY

expect() { # NAME OUTPUT
    grep -qx 'user:42 -> kaché-e' <<<"$2" || fail "$1 printed: $2"
    grep -q '^error: node not found: "ghost"$' <<<"$2" || fail "$1 printed: $2"
    echo "ffi_snippets_test: $1 ok"
}

expect ctypes "$(python3 "$ROOT/docs/ffi/ring_ctypes.py")"

[ -d "$ROOT/bindings/node/node_modules/koffi" ] || fail "koffi missing: run make node-deps"
expect koffi "$(NODE_PATH=$ROOT/bindings/node/node_modules node "$ROOT/docs/ffi/ring_koffi.js")"

export GOFLAGS=-mod=mod GOCACHE=${GOCACHE:-$TMP/gocache} GOPATH=${GOPATH:-$TMP/gopath}
expect cgo "$(cd "$ROOT/docs/ffi/cgo" && PKG_CONFIG_PATH=$PCDIR CGO_LDFLAGS="-Wl,-rpath,$LIBDIR" go run .)"

JNA=/usr/share/java/jna.jar
[ -f "$JNA" ] || fail "$JNA missing (make sysdeps installs libjna-java)"
javac -d "$TMP/java" -cp "$JNA" "$ROOT/docs/ffi/RingJna.java"
expect JNA "$(java -cp "$TMP/java:$JNA" RingJna)"
