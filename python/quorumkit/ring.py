"""Placement quality report: how evenly an algorithm spreads keys over a
node set, and how many keys move when one node joins or leaves.

>>> from quorumkit.ring import report
>>> r = report(10, "hash", keys=20_000)
>>> abs(sum(r.shares.values()) - 1) < 1e-9
True

From the shell::

    python -m quorumkit.ring report --nodes 100 --algorithm hash --algorithm ketama-libmemcached \
        --keys 1000000 --plot shares.png

Algorithms live in :data:`ALGORITHMS`, a registry of name -> builder; add one
with :func:`register`. A builder takes a list of node names and returns a
ring with ``get_node_batch(keys) -> list[str]`` and, when it can say
exactly, ``shares() -> dict[str, float]`` (the fraction of the hash space
each node owns); without ``shares()`` the report uses the measured share.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from quorumkit._native import HashRing, KetamaRing, Maglev, Md5Ring, RendezvousHash, jump_hash_batch

__all__ = ["ALGORITHMS", "RingReport", "main", "plot", "register", "report"]

Builder = Callable[[List[str]], Any]

class _JumpBuckets:
    """Jump hash over numbered buckets: bucket i is ``nodes[i]`` (so only
    the last node can leave without renumbering; the report removes the
    last). No exact shares: the report measures them."""

    def __init__(self, nodes: List[str]) -> None:
        self.nodes = list(nodes)

    def get_node_batch(self, keys: List[str]) -> List[str]:
        return [self.nodes[b] for b in jump_hash_batch(keys, len(self.nodes))]


#: name -> builder(node names) -> ring. Extend with :func:`register`.
ALGORITHMS: Dict[str, Builder] = {
    "hash": lambda nodes: HashRing(nodes),
    "ketama-libmemcached": lambda nodes: KetamaRing(nodes, compat="libmemcached"),
    "ketama-uhashring": lambda nodes: KetamaRing(nodes, compat="uhashring"),
    "md5-uhashring": lambda nodes: Md5Ring(nodes),
    "rendezvous": lambda nodes: RendezvousHash(nodes),
    "maglev": lambda nodes: Maglev(nodes),
    "jump": _JumpBuckets,
}


def register(name: str, build: Builder) -> None:
    """Adds (or replaces) an algorithm in :data:`ALGORITHMS`."""
    ALGORITHMS[name] = build


@dataclass
class RingReport:
    """One algorithm on one node set."""

    algorithm: str
    nodes: List[str]
    keys: int
    #: each node's exact share of the hash space (measured when the ring cannot say)
    shares: Dict[str, float]
    exact: bool
    #: each node's share of the sample keys
    measured: Dict[str, float]
    max_over_mean: float
    min_over_mean: float
    moved_on_add: float
    ideal_add: float
    only_to_new: bool
    moved_on_remove: float
    ideal_remove: float
    only_from_removed: bool

    def format(self) -> str:
        """The report as text: one line per node, then the summary."""
        n = len(self.nodes)
        kind = "exact" if self.exact else "measured"
        lines = [
            f"algorithm {self.algorithm}: {n} nodes, {self.keys} keys",
            f"{'node':<24} {kind + ' share':>14} {'x ideal':>8} {'keys share':>11}",
        ]
        for name in self.nodes:
            s = self.shares[name]
            lines.append(f"{name:<24} {s:>14.6f} {s * n:>8.3f} {self.measured[name]:>11.6f}")
        lines += [
            f"max/mean {self.max_over_mean:.4f}  min/mean {self.min_over_mean:.4f}",
            f"moved on add    {self.moved_on_add:.4%} (ideal {self.ideal_add:.4%}), "
            f"only to the new node: {'yes' if self.only_to_new else 'NO'}",
            f"moved on remove {self.moved_on_remove:.4%} (ideal {self.ideal_remove:.4%}), "
            f"only from the removed node: {'yes' if self.only_from_removed else 'NO'}",
        ]
        return "\n".join(lines)


def sample_keys(count: int, seed: int) -> List[str]:
    """``count`` reproducible keys ``key:<16 hex>``."""
    r = random.Random(seed)
    return [f"key:{r.getrandbits(64):016x}" for _ in range(count)]


def report(
    nodes: "int | Sequence[str]",
    algorithm: str = "hash",
    *,
    keys: int = 100_000,
    seed: int = 20261101,
) -> RingReport:
    """Builds ``algorithm`` over ``nodes`` (a count, named ``node-0``...,
    or the names) and measures its balance and its movement when node
    ``node-<n>`` joins and when the last node leaves."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    names = [f"node-{i}" for i in range(nodes)] if isinstance(nodes, int) else list(nodes)
    if len(names) < 2:
        raise ValueError("a report needs at least 2 nodes")
    if keys < 1:
        raise ValueError("keys must be at least 1")
    build = ALGORITHMS[algorithm]
    sample = sample_keys(keys, seed)
    ring = build(names)
    owners = ring.get_node_batch(sample)
    counts = dict.fromkeys(names, 0)
    for o in owners:
        counts[o] += 1
    measured = {n: c / keys for n, c in counts.items()}
    exact = hasattr(ring, "shares")
    shares = dict(ring.shares()) if exact else measured
    mean = 1 / len(names)
    extra = f"node-{len(names)}"
    while extra in counts:
        extra += "+"
    grown = build(names + [extra]).get_node_batch(sample)
    shrunk = build(names[:-1]).get_node_batch(sample)
    moved_add = [i for i, (a, b) in enumerate(zip(owners, grown)) if a != b]
    moved_remove = [i for i, (a, b) in enumerate(zip(owners, shrunk)) if a != b]
    return RingReport(
        algorithm=algorithm,
        nodes=names,
        keys=keys,
        shares=shares,
        exact=exact,
        measured=measured,
        max_over_mean=max(shares.values()) / mean,
        min_over_mean=min(shares.values()) / mean,
        moved_on_add=len(moved_add) / keys,
        ideal_add=1 / (len(names) + 1),
        only_to_new=all(grown[i] == extra for i in moved_add),
        moved_on_remove=len(moved_remove) / keys,
        ideal_remove=1 / len(names),
        only_from_removed=all(owners[i] == names[-1] for i in moved_remove),
    )


def plot(reports: Sequence[RingReport], path: str) -> None:
    """Writes a PNG of each node's share (relative to the ideal 1/n), one
    panel per algorithm side by side. Needs matplotlib (imported here only,
    so quorumkit itself does not depend on it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(reports), figsize=(4.2 * len(reports), 3.8), sharey=True, squeeze=False
    )
    for ax, r in zip(axes[0], reports):
        n = len(r.nodes)
        rel = [r.shares[name] * n for name in r.nodes]
        # Bars from the ideal line, so the spread is what the eye sees.
        ax.bar(range(n), [v - 1 for v in rel], bottom=1.0, width=0.9, color="#4878a8")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(f"{r.algorithm}\nmax/mean {r.max_over_mean:.3f}", fontsize=10)
        ax.set_xlabel(f"node (of {n})")
        ax.set_xlim(-0.5, n - 0.5)
    lo = min(min(r.shares.values()) * len(r.nodes) for r in reports)
    hi = max(max(r.shares.values()) * len(r.nodes) for r in reports)
    axes[0][0].set_ylim(max(0.0, lo - 0.05), hi + 0.05)
    axes[0][0].set_ylabel("share x n (1 = ideal)")
    fig.suptitle(f"share of the hash space per node, {len(reports[0].nodes)} nodes", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m quorumkit.ring report ...``."""
    p = argparse.ArgumentParser(prog="python -m quorumkit.ring", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("report", help="balance and movement of placement algorithms")
    rp.add_argument("--nodes", type=int, default=100, help="node count (default 100)")
    rp.add_argument(
        "--algorithm",
        action="append",
        help=f"repeat or comma-separate; one of: {', '.join(ALGORITHMS)} (default: all)",
    )
    rp.add_argument("--keys", type=int, default=100_000, help="sample keys (default 100000)")
    rp.add_argument("--seed", type=int, default=20261101)
    rp.add_argument("--plot", metavar="PNG", help="also write a plot of the shares")
    args = p.parse_args(argv)
    algos = [a for arg in args.algorithm or [",".join(ALGORITHMS)] for a in arg.split(",") if a]
    try:
        reports = [report(args.nodes, a, keys=args.keys, seed=args.seed) for a in algos]
    except ValueError as e:
        p.error(str(e))
    print("\n\n".join(r.format() for r in reports))
    if args.plot:
        plot(reports, args.plot)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
