#!/usr/bin/env python3
"""Bounded-load balancing and snapshots from Python, as ratios in one run.

    .venv/bin/python bench/bounded_snapshot.py [--nodes 100] [--keys 200000]

Rows (100 nodes "10.0.x.y:11211", 160 vnodes per node, random 16-char keys):
  - quorumkit BoundedLoadBalancer.acquire + release per key, with 10,000 keys
    held (c = 1.25), against quorumkit HashRing.get_node and uhashring's
    get_node (no peer on PyPI offers bounded loads; uhashring is the usual
    ring a Python user has today) on the same keys;
  - HashRing.to_bytes / from_bytes and pickle round trips, against building
    the ring from its node list (what a restore must redo) and against
    pickling uhashring's ring object (which fails: it holds a lambda).
Each timing is the median of 5 runs.
"""

from __future__ import annotations

import argparse
import pickle
import random
import statistics
import string
import time
from typing import Callable

import uhashring

import quorumkit as qk


def median_ns(fn: Callable[[], object], per: int, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t) / per)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=20261124)
    args = ap.parse_args()
    r = random.Random(args.seed)
    nodes = [f"10.0.{i // 250}.{i % 250 + 1}:11211" for i in range(args.nodes)]
    keys = ["".join(r.choices(string.ascii_letters, k=16)) for _ in range(args.keys)]
    peer_keys = keys[: max(1, args.keys // 10)]

    ring = qk.HashRing(nodes)
    bal = qk.BoundedLoadBalancer(nodes, balance_factor=1.25)
    for i in range(10_000):
        bal.acquire(f"held-{i}")
    uh = uhashring.HashRing(nodes)

    def acquire_release() -> None:
        acq, rel = bal.acquire, bal.release
        for k in keys:
            rel(acq(k))

    def ring_get() -> None:
        get = ring.get_node
        for k in keys:
            get(k)

    def uh_get() -> None:
        get = uh.get_node
        for k in peer_keys:
            get(k)

    rows: list[tuple[str, float, str]] = []
    uh_ns = median_ns(uh_get, len(peer_keys))
    ring_ns = median_ns(ring_get, len(keys))
    acq_ns = median_ns(acquire_release, len(keys))
    assert bal.total_load == 10_000
    rows.append(("uhashring get_node", uh_ns, "1.00x"))
    rows.append(("quorumkit HashRing.get_node", ring_ns, f"{uh_ns / ring_ns:.1f}x faster than uhashring"))
    rows.append((
        "quorumkit BoundedLoadBalancer acquire+release",
        acq_ns,
        f"{uh_ns / acq_ns:.1f}x faster than uhashring get_node; {acq_ns / ring_ns:.2f}x HashRing.get_node",
    ))

    data = ring.to_bytes()
    build_ns = median_ns(lambda: qk.HashRing(nodes), 1)
    enc_ns = median_ns(ring.to_bytes, 1)
    dec_ns = median_ns(lambda: qk.HashRing.from_bytes(data), 1)
    pk_ns = median_ns(lambda: pickle.loads(pickle.dumps(ring)), 1)
    assert qk.HashRing.from_bytes(data).get_node_batch(keys[:1000]) == ring.get_node_batch(keys[:1000])
    rows.append(("build HashRing from node list", build_ns, "1.00x"))
    rows.append(("HashRing.to_bytes", enc_ns, f"{build_ns / enc_ns:.0f}x faster than a build; {len(data)} bytes"))
    rows.append(("HashRing.from_bytes", dec_ns, f"{dec_ns / build_ns:.2f}x a build (it rebuilds the points)"))
    rows.append(("pickle round trip, quorumkit HashRing", pk_ns, f"{len(pickle.dumps(ring))} bytes"))
    try:
        pickle.dumps(uh)
        uh_note = "picklable"
    except (AttributeError, TypeError, pickle.PicklingError) as e:
        uh_note = f"uhashring's ring does not pickle: {type(e).__name__}"
    rows.append(("pickle round trip, uhashring HashRing", float("nan"), uh_note))

    print(f"quorumkit {qk.__version__}, {args.nodes} nodes, {args.keys} keys, seed {args.seed}")
    for label, ns, note in rows:
        unit = "-" if ns != ns else f"{ns:,.0f} ns" if ns < 100_000 else f"{ns / 1e6:,.2f} ms"
        print(f"  {label:48s} {unit:>12s}  {note}")


if __name__ == "__main__":
    main()
