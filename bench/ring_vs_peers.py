#!/usr/bin/env python3
"""quorumkit's rings side by side with the PyPI rings, in one run.

    .venv/bin/python bench/ring_vs_peers.py              # 100 nodes, 1,000,000 keys
    .venv/bin/python bench/ring_vs_peers.py --keys 100000 --json out.json

Compared (all with the same 100 node names "10.0.x.y:11211" and the same keys):
  quorumkit HashRing (xxh3, 160 vnodes), quorumkit KetamaRing in both compat modes,
  quorumkit Md5Ring (uhashring's default placement), the drop-in
  quorumkit.compat.uhashring.HashRing in both modes, uhashring 2.x default (MD5
  vnodes, 160 per node) and hash_fn="ketama", hashring 1.5.1 (MD5 ketama-like,
  120 points per node), and the jump-consistent-hash package (jump needs an int
  key: str keys go through quorumkit.key_hash first; it can only remove the
  last bucket, so its remove row removes the last node).

The rows come from IMPLEMENTATIONS, a list of functions node names -> Impl:
append one to add a row.

Measured per implementation: build time of the 100-node ring; add-node and
remove-node time (hashring has no add/remove: it is rebuilt); single-key
lookups from Python in a tight loop (peers on the first --peer-keys keys,
scaled to per key); batch lookup ns/key (quorumkit: get_node_batch over all
keys; peers have no batch call, so a list comprehension over all keys);
max/mean keys per node; the fraction of keys that move when a node is added
and when one is removed, against the ideal 1/(n+1) and 1/n, and whether only
the keys of the changed node moved. Ratios are against uhashring measured in
the same run, in the same mode (vnode rows vs uhashring default, ketama rows
vs uhashring ketama): on a shared machine absolute numbers drift, ratios less.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Callable

import hashring
import jump
import uhashring

import quorumkit as qk
from quorumkit.compat import uhashring as qk_uhashring


@dataclass
class Impl:
    label: str
    mode: str  # "vnode" or "ketama": which uhashring mode it is compared with
    build: Callable[[list[str]], Any]
    add: Callable[[Any, str], Any] | None  # returns the ring after adding (may be new)
    remove: Callable[[Any, str], Any] | None
    batch: Callable[[Any, list[str]], list[str]] | None = None
    remove_last: bool = False  # the algorithm can only remove the last node (jump)
    same_as: str | None = None  # label of a row whose placements it must equal
    results: dict[str, Any] = field(default_factory=dict)
    placements: list[str] = field(default_factory=list)


def rebuild_add(nodes: list[str]) -> Callable[[Any, str], Any]:
    return lambda ring, name: hashring.HashRing(nodes + [name])


def rebuild_remove(nodes: list[str]) -> Callable[[Any, str], Any]:
    return lambda ring, name: hashring.HashRing([n for n in nodes if n != name])


def mutate(method: str) -> Callable[[Any, str], Any]:
    def op(ring: Any, name: str) -> Any:
        getattr(ring, method)(name)
        return ring

    return op


class JumpRing:
    """Bucket i is nodes[i]; a str key is hashed to 64 bits by quorumkit."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = list(nodes)
        self._n = len(self.nodes)
        h, jh, names, n = qk.key_hash, jump.hash, self.nodes, self._n
        self.get_node = lambda key: names[jh(h(key), n)]

    def add_node(self, name: str) -> None:
        self.__init__(self.nodes + [name])  # type: ignore[misc]

    def remove_node(self, name: str) -> None:
        assert name == self.nodes[-1], "jump can only remove the last bucket"
        self.__init__(self.nodes[:-1])  # type: ignore[misc]


class QkJumpRing(JumpRing):
    """quorumkit's jump hash: bucket i is nodes[i]; str keys go through key_hash."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = list(nodes)
        self._n = len(self.nodes)
        jh, names, n = qk.jump_hash, self.nodes, self._n
        self.get_node = lambda key: names[jh(key, n)]

    def get_node_batch(self, keys: list[str]) -> list[str]:
        names = self.nodes
        return [names[b] for b in qk.jump_hash_batch(keys, self._n)]


QK_BATCH = lambda ring, keys: ring.get_node_batch(keys)  # noqa: E731


def quorumkit_rows(nodes: list[str]) -> list[Impl]:
    return [
        Impl("quorumkit HashRing", "vnode", lambda n: qk.HashRing(n),
             mutate("add_node"), mutate("remove_node"), QK_BATCH),
        Impl("quorumkit KetamaRing libmemcached", "ketama",
             lambda n: qk.KetamaRing(n, compat="libmemcached"),
             mutate("add_node"), mutate("remove_node"), QK_BATCH),
        Impl("quorumkit KetamaRing uhashring", "ketama",
             lambda n: qk.KetamaRing(n, compat="uhashring"),
             mutate("add_node"), mutate("remove_node"), QK_BATCH, same_as="uhashring ketama"),
        Impl("quorumkit Md5Ring", "vnode", lambda n: qk.Md5Ring(n),
             mutate("add_node"), mutate("remove_node"), QK_BATCH, same_as="uhashring default"),
        Impl("quorumkit.compat.uhashring default", "vnode", lambda n: qk_uhashring.HashRing(n),
             mutate("add_node"), mutate("remove_node"), same_as="uhashring default"),
        Impl("quorumkit.compat.uhashring ketama", "ketama",
             lambda n: qk_uhashring.HashRing(n, hash_fn="ketama"),
             mutate("add_node"), mutate("remove_node"), same_as="uhashring ketama"),
        Impl("quorumkit Maglev", "vnode", lambda n: qk.Maglev(n),
             mutate("add_node"), mutate("remove_node"), QK_BATCH),
        Impl("quorumkit RendezvousHash", "vnode", lambda n: qk.RendezvousHash(n),
             mutate("add_node"), mutate("remove_node"), QK_BATCH),
        Impl("quorumkit jump_hash", "vnode", QkJumpRing,
             mutate("add_node"), mutate("remove_node"), QK_BATCH, remove_last=True),
    ]


def peer_rows(nodes: list[str]) -> list[Impl]:
    return [
        Impl("uhashring default", "vnode", lambda n: uhashring.HashRing(n),
             mutate("add_node"), mutate("remove_node")),
        Impl("uhashring ketama", "ketama", lambda n: uhashring.HashRing(n, hash_fn="ketama"),
             mutate("add_node"), mutate("remove_node")),
        Impl("hashring 1.5.1", "ketama", lambda n: hashring.HashRing(n),
             rebuild_add(nodes), rebuild_remove(nodes)),
        Impl(f"jump-consistent-hash {version('jump-consistent-hash')}", "vnode", JumpRing,
             mutate("add_node"), mutate("remove_node"), remove_last=True),
    ]


#: Each entry maps the node names to rows of the tables; append to extend.
IMPLEMENTATIONS: list[Callable[[list[str]], list[Impl]]] = [quorumkit_rows, peer_rows]


def implementations(nodes: list[str]) -> list[Impl]:
    return [impl for rows in IMPLEMENTATIONS for impl in rows(nodes)]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.disable()
    try:
        t = time.perf_counter_ns()
        out = fn()
        return (time.perf_counter_ns() - t) / 1e9, out
    finally:
        gc.enable()


def place(impl: Impl, ring: Any, keys: list[str]) -> tuple[float, list[str]]:
    """All keys' nodes; the time is the batch (or list-comprehension) time."""
    if impl.batch is not None:
        return timed(lambda: impl.batch(ring, keys))
    get = ring.get_node
    return timed(lambda: [get(k) for k in keys])


def tight_loop(ring: Any, keys: list[str]) -> float:
    get = ring.get_node

    def loop() -> None:
        for k in keys:
            get(k)

    return timed(loop)[0]


def moved(before: list[str], after: list[str]) -> tuple[float, list[int]]:
    idx = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    return len(idx) / len(before), idx


def run(impl: Impl, nodes: list[str], keys: list[str], loop_keys: int, reps: int) -> None:
    r = impl.results
    builds = [timed(lambda: impl.build(list(nodes))) for _ in range(reps)]
    r["build_ms"] = min(t for t, _ in builds) * 1e3
    ring = builds[0][1]

    r["loop_keys"] = loop_keys
    r["lookup_ns"] = min(tight_loop(ring, keys[:loop_keys]) for _ in range(2)) / loop_keys * 1e9
    t, base = place(impl, ring, keys)
    r["batch_ns"] = t / len(keys) * 1e9
    counts = Counter(base)
    mean = len(keys) / len(nodes)
    r["max_over_mean"] = max(counts[n] for n in nodes) / mean
    r["min_over_mean"] = min(counts[n] for n in nodes) / mean
    impl.placements = base

    new, victim = "10.9.9.9:11211", nodes[-1] if impl.remove_last else nodes[len(nodes) // 3]
    # Add and remove times: median over fresh rings (the ops mutate).
    adds, removes = [], []
    for _ in range(reps):
        fresh = impl.build(list(nodes))
        t, _ = timed(lambda: impl.add(fresh, new))
        adds.append(t)
        fresh = impl.build(list(nodes))
        t, _ = timed(lambda: impl.remove(fresh, victim))
        removes.append(t)
    r["add_ms"] = statistics.median(adds) * 1e3
    r["remove_ms"] = statistics.median(removes) * 1e3

    grown = impl.add(impl.build(list(nodes)), new)
    _, after_add = place(impl, grown, keys)
    frac, idx = moved(base, after_add)
    r["moved_add"] = frac
    r["moved_add_only_to_new"] = all(after_add[i] == new for i in idx)
    shrunk = impl.remove(impl.build(list(nodes)), victim)
    _, after_rm = place(impl, shrunk, keys)
    frac, idx = moved(base, after_rm)
    r["moved_remove"] = frac
    r["moved_remove_only_from_removed"] = all(base[i] == victim for i in idx)


def fmt_ratio(ref: float, val: float) -> str:
    return f"{ref / val:.1f}×" if val > 0 else "—"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--peer-keys", type=int, default=200_000,
                    help="keys in the peers' tight lookup loop (scaled to per key)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of build/add/remove")
    ap.add_argument("--seed", type=int, default=20261101)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    nodes = [f"10.0.{i // 250}.{i % 250 + 1}:11211" for i in range(args.nodes)]
    keys = [f"key:{rng.getrandbits(64):016x}" for _ in range(args.keys)]
    impls = implementations(nodes)
    started = time.time()
    for impl in impls:
        peer = not impl.label.startswith("quorumkit") or impl.label.startswith("quorumkit.compat")
        loop_keys = min(args.keys, args.peer_keys) if peer else args.keys
        print(f"… {impl.label}", file=sys.stderr, flush=True)
        run(impl, nodes, keys, loop_keys, args.reps)
    elapsed = time.time() - started

    ref = {i.mode: i.results for i in impls if i.label == f"uhashring {'default' if i.mode == 'vnode' else 'ketama'}"}
    n = args.nodes
    print(f"## quorumkit {qk.__version__} vs peers — {n} nodes, {args.keys:,} keys\n")
    print(f"Settings: seed {args.seed}; keys `key:<16 hex>` (20 bytes, str); peers' tight loop over "
          f"the first {min(args.keys, args.peer_keys):,} keys, quorumkit's over all; build/add/remove: "
          f"best/median of {args.reps}; Python {platform.python_version()} on {platform.machine()}, "
          f"uhashring {getattr(uhashring, '__version__', '?')}, hashring 1.5.1; run took {elapsed:.0f} s. "
          "Ratios: uhashring's time ÷ this row's, same mode (vnode rows vs uhashring default, "
          "ketama rows vs uhashring ketama), measured in this run.\n")
    print("| implementation | lookup ns/key (loop) | lookups/s | batch ns/key | build ms | add node ms | remove node ms "
          "| lookup × | batch × | build × | add × | remove × |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i in impls:
        r, b = i.results, ref[i.mode]
        batch_note = "" if i.batch else " (loop)"
        print(f"| {i.label} | {r['lookup_ns']:.0f} | {1e9 / r['lookup_ns'] / 1e6:.2f} M | "
              f"{r['batch_ns']:.0f}{batch_note} | {r['build_ms']:.2f} | {r['add_ms']:.3f} | {r['remove_ms']:.3f} | "
              f"{fmt_ratio(b['lookup_ns'], r['lookup_ns'])} | {fmt_ratio(b['batch_ns'], r['batch_ns'])} | "
              f"{fmt_ratio(b['build_ms'], r['build_ms'])} | {fmt_ratio(b['add_ms'], r['add_ms'])} | "
              f"{fmt_ratio(b['remove_ms'], r['remove_ms'])} |")
    print("\nhashring has no add/remove: its add/remove column is a rebuild with the new node list.\n")
    print(f"| implementation | max/mean load | min/mean load | moved on add (ideal {1 / (n + 1):.2%}) "
          f"| only to the new node | moved on remove (ideal {1 / n:.2%}) | only from the removed node |")
    print("|---|---:|---:|---:|:---:|---:|:---:|")
    for i in impls:
        r = i.results
        print(f"| {i.label} | {r['max_over_mean']:.3f} | {r['min_over_mean']:.3f} | {r['moved_add']:.2%} | "
              f"{'yes' if r['moved_add_only_to_new'] else 'NO'} | {r['moved_remove']:.2%} | "
              f"{'yes' if r['moved_remove_only_from_removed'] else 'NO'} |")

    by_label = {i.label: i for i in impls}
    same = True
    print()
    for i in impls:
        if i.same_as is None:
            continue
        ok = i.placements == by_label[i.same_as].placements
        same = same and ok
        print(f"{i.label} placed all {args.keys:,} keys {'exactly as' if ok else 'NOT as'} {i.same_as} did.  ")
    lmc = by_label["quorumkit KetamaRing libmemcached"].results
    if not (lmc["moved_add_only_to_new"] and lmc["moved_remove_only_from_removed"]):
        print("\nKetamaRing libmemcached moves more keys, as libmemcached itself does: its float32 point "
              "count gives each of 100 equal servers 156 points but 160 at 99 and 101 servers, so a "
              "membership change there moves points of every server (checked against libmemcached "
              "by python/tests/test_ketama_oracle.py).")

    if args.json:
        out = {
            "settings": {**vars(args), "python": platform.python_version(), "elapsed_s": elapsed,
                         "quorumkit": qk.__version__},
            "results": {i.label: i.results for i in impls},
            "identical_to_peer": same,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
