"""Rendezvous and jump hash from Python against uhashring and the PyPI
`jump` package, in one run (README, "Jump, Maglev and rendezvous").

Usage: python bench/hrw_jump_vs_peers.py [--nodes 100] [--keys 20000]
"""

from __future__ import annotations

import argparse
import random
import string
import timeit

import jump
import uhashring

import quorumkit as qk


def per_key(fn, n_keys: int, reps: int = 5) -> float:
    """Best of `reps` runs of `fn()` (which handles `n_keys` keys), ns/key."""
    return min(timeit.repeat(fn, number=1, repeat=reps)) / n_keys * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=20261101)
    a = ap.parse_args()
    r = random.Random(a.seed)
    keys = ["".join(r.choices(string.ascii_letters, k=20)) for _ in range(a.keys)]
    ints = [r.getrandbits(64) for _ in range(a.keys)]
    names = [f"node-{i}" for i in range(a.nodes)]
    uh = uhashring.HashRing(names)
    equal = qk.RendezvousHash(names)
    three = qk.RendezvousHash({n: 1.0 + i % 3 for i, n in enumerate(names)})
    distinct = qk.RendezvousHash({n: 1.0 + i / 7 for i, n in enumerate(names)})
    maglev = qk.Maglev(names)

    rows = [
        ("uhashring 2.5 `HashRing.get_node`", lambda: [uh.get_node(k) for k in keys]),
        ("`Maglev.get_node` / `get_node_batch`", lambda: [maglev.get_node(k) for k in keys],
         lambda: maglev.get_node_batch(keys)),
        ("`RendezvousHash.get_node` / batch, equal weights",
         lambda: [equal.get_node(k) for k in keys], lambda: equal.get_node_batch(keys)),
        ("`RendezvousHash.get_node` / batch, 3 distinct weights",
         lambda: [three.get_node(k) for k in keys], lambda: three.get_node_batch(keys)),
        (f"`RendezvousHash.get_node` / batch, {a.nodes} distinct weights",
         lambda: [distinct.get_node(k) for k in keys], lambda: distinct.get_node_batch(keys)),
        ("`jump_hash(str, 100)`", lambda: [qk.jump_hash(k, 100) for k in keys]),
        ("`jump_hash(int, 1000)` / `jump_hash_batch`",
         lambda: [qk.jump_hash(k, 1000) for k in ints], lambda: qk.jump_hash_batch(ints, 1000)),
        ("`jump.hash(int, 1000)` (PyPI jump-consistent-hash)",
         lambda: [jump.hash(k, 1000) for k in ints]),
    ]
    base = per_key(rows[0][1], a.keys)
    print(f"{a.nodes} nodes, {a.keys} 20-letter str keys, seed {a.seed}; ratio = uhashring / row\n")
    print("| call | ns/key | × uhashring |\n|---|---:|---:|")
    for label, *fns in rows:
        ts = [per_key(f, a.keys) for f in fns]
        print(f"| {label} | {' / '.join(f'{t:.0f}' for t in ts)} | "
              f"{' / '.join(f'{base / t:.1f}×' for t in ts)} |")


if __name__ == "__main__":
    main()
