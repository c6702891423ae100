#!/usr/bin/env python3
"""quorumkit in one minute: consistent hashing that moves only what it must.

Run with `make demo` (builds the package first) or `.venv/bin/python examples/demo.py`.
Exits non-zero if an invariant does not hold.
"""

import random
import sys

import quorumkit as qk

failures = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)


print(f"quorumkit {qk.__version__}\n")

# 1. A ring of five cache nodes (160 virtual nodes each, xxh3-64 placement).
ring = qk.HashRing(["cache-a", "cache-b", "cache-c", "cache-d", "cache-e"])
print(repr(ring))
for key in ["user:42", "user:43", "session:9f1c", "cart:1001", "cart:1002",
            "img/logo.png", "img/hero.jpg", "feed:home", "feed:sports", "ключ"]:
    print(f"  {key:<14} -> {ring.get_node(key)}")

# 2. A preference list: three distinct nodes for one key (e.g. for replicas).
replicas = ring.get_nodes("user:42", 3)
print(f"\nget_nodes('user:42', 3) = {replicas}")
check(len(set(replicas)) == 3 and replicas[0] == ring.get_node("user:42"),
      "three distinct nodes, the first is get_node's")

# 3. Remove a node: only its own keys move, and they spread over the others.
rng = random.Random(7)
keys = [f"key-{rng.getrandbits(64):016x}" for _ in range(100_000)]
before = ring.get_node_batch(keys)
ring.remove_node("cache-c")
after = ring.get_node_batch(keys)
moved = [i for i, (b, a) in enumerate(zip(before, after)) if b != a]
print(f"\nremove_node('cache-c'): {len(moved):,} of {len(keys):,} keys moved "
      f"({len(moved) / len(keys):.1%}; ideal 1/5 = 20.0%)")
check(all(before[i] == "cache-c" for i in moved), "every moved key was on cache-c")
check(all(a != "cache-c" for a in after), "no key is left on cache-c")
check(abs(len(moved) / len(keys) - 0.2) < 0.05, "the moved fraction is close to 1/5")
landed = {n: sum(after[i] == n for i in moved) for n in ring.nodes}
print(f"  cache-c's keys went to: {landed}")

# 4. Ketama, bit-exact with libmemcached's weighted ketama: a drop-in for a
#    memcached client's server selection.
servers = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11212"]
k = qk.KetamaRing(servers, compat="libmemcached")
print(f"\n{k!r}")
for key in ["user:42", "session:9f1c"]:
    print(f"  {key:<14} -> {k.get_node(key)}  (ketama hash {qk.ketama_hash(key):#010x})")
check(k.get_node("user:42") in servers, "ketama lookups return one of the servers")

if failures:
    print(f"\n{len(failures)} invariant(s) failed", file=sys.stderr)
    sys.exit(1)
print("\nall invariants hold")
