#!/usr/bin/env bash
# quorumkit's lease service and KV against a 3-member etcd cluster, in one
# run on this machine (examples/etcd_compare.rs). Installs Debian's
# etcd-server when etcd is missing.
#   bench/etcd_compare.sh [--seconds S] [--clients N]     (make bench-etcd)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v etcd >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null
fi
cargo build --release --bin quorumkit --example etcd_compare
exec target/release/examples/etcd_compare "$@"
