"""HashRing placement, checked against a pure-Python model of the documented
algorithm and against the structural properties of consistent hashing.

The model: node ``name`` with weight ``w`` has ``vnodes * w`` points at
``key_hash(f"{name}-{i}")``; points at the same position are ordered by node
name (bytewise); a key goes to the first point at or after
``key_hash(key)``, wrapping around. ``key_hash`` itself is pinned against an
independent xxh3 implementation in test_api.py.
"""

from __future__ import annotations

import bisect
import random
from fractions import Fraction

import pytest

import quorumkit as qk
from conftest import BASE_SEED, random_keys


class Model:
    """The documented HashRing placement, in plain Python."""

    def __init__(self, weights: dict[str, int], vnodes: int = 160) -> None:
        pts = []
        for name, w in weights.items():
            for i in range(vnodes * w):
                pts.append((qk.key_hash(f"{name}-{i}"), name.encode(), name))
        pts.sort()
        self.points = [p for p, _, _ in pts]
        self.owners = [n for _, _, n in pts]

    def position(self, key: str | bytes) -> int:
        i = bisect.bisect_left(self.points, qk.key_hash(key))
        return 0 if i == len(self.points) else i

    def get_node(self, key: str | bytes) -> str:
        return self.owners[self.position(key)]

    def get_nodes(self, key: str | bytes, n: int) -> list[str]:
        start = self.position(key)
        out: list[str] = []
        for step in range(len(self.points)):
            o = self.owners[(start + step) % len(self.points)]
            if o not in out:
                out.append(o)
                if len(out) == n:
                    break
        return out

    def shares(self) -> dict[str, Fraction]:
        total = 1 << 64
        arcs: dict[str, int] = {}
        for i, p in enumerate(self.points):
            arc = (total - self.points[-1] + p) if i == 0 else p - self.points[i - 1]
            arcs[self.owners[i]] = arcs.get(self.owners[i], 0) + arc
        return {n: Fraction(a, total) for n, a in arcs.items()}


def random_weights(r: random.Random, count: int, max_weight: int = 4) -> dict[str, int]:
    return {f"node-{r.getrandbits(24):06x}-{i}": r.randint(1, max_weight) for i in range(count)}


@pytest.mark.parametrize("case", range(6))
def test_matches_reference_model(case: int) -> None:
    seed = BASE_SEED + case
    r = random.Random(seed)
    weights = random_weights(r, r.choice([1, 2, 3, 10, 37]))
    vnodes = r.choice([1, 3, 40, 160])
    ring = qk.HashRing(weights, vnodes=vnodes)
    model = Model(weights, vnodes)
    assert ring.point_count == len(model.points), f"seed={seed}"
    keys = random_keys(r, 3000)
    # Keys that hash exactly onto points: the vnode strings themselves.
    keys += [f"{name}-{i}" for name in list(weights)[:5] for i in range(vnodes)]
    for k in keys:
        assert ring.get_node(k) == model.get_node(k), f"seed={seed} key={k!r}"
    assert ring.get_node_batch(keys) == [model.get_node(k) for k in keys], f"seed={seed}"
    n = min(3, len(weights))
    for k in keys[:500]:
        assert ring.get_nodes(k, n) == model.get_nodes(k, n), f"seed={seed} key={k!r}"
    exact = model.shares()
    got = ring.shares()
    assert set(got) == set(weights)
    for name, share in got.items():
        assert share == pytest.approx(float(exact.get(name, 0)), abs=1e-12), f"seed={seed} {name}"


def test_vnode_string_lands_on_its_own_point() -> None:
    # key_hash("node-a-0") is node-a's virtual node 0 (pinned in the core);
    # a key hashing exactly onto a point belongs to that point's node.
    ring = qk.HashRing(["node-a", "node-b", "node-c"])
    assert qk.key_hash("node-a-0") == 0xAEABA1C045AB69FF
    for name in ring.nodes:
        for i in range(160):
            assert ring.get_node(f"{name}-{i}") == name


def test_shares_sum_to_one_and_follow_weights() -> None:
    weights = {"a": 1, "b": 2, "c": 3, "d": 4}
    ring = qk.HashRing(weights)
    shares = ring.shares()
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    for x in weights:
        for y in weights:
            ratio = shares[x] / shares[y]
            expect = weights[x] / weights[y]
            assert ratio == pytest.approx(expect, rel=0.3), (x, y, shares)
    # And the shares are what keys see: 40k keys split accordingly.
    keys = [f"k{i}" for i in range(40_000)]
    counts = {n: 0 for n in weights}
    for n in ring.get_node_batch(keys):
        counts[n] += 1
    for n in weights:
        assert counts[n] / len(keys) == pytest.approx(shares[n], abs=0.015), (n, counts, shares)


def test_removing_a_node_moves_only_its_keys(rng: random.Random) -> None:
    weights = random_weights(rng, 12)
    ring = qk.HashRing(weights)
    keys = random_keys(rng, 10_000)
    before = ring.get_node_batch(keys)
    gone = list(weights)[5]
    ring.remove_node(gone)
    after = ring.get_node_batch(keys)
    moved = 0
    for k, b, a in zip(keys, before, after):
        if b == gone:
            assert a != gone
            moved += 1
        else:
            assert a == b, f"seed={BASE_SEED} key {k!r} moved {b} -> {a}"
    assert moved > 0
    # Same as a ring built without it.
    del weights[gone]
    assert after == qk.HashRing(weights).get_node_batch(keys)


def test_adding_a_node_moves_keys_only_to_it(rng: random.Random) -> None:
    weights = random_weights(rng, 12)
    ring = qk.HashRing(weights)
    keys = random_keys(rng, 10_000)
    before = ring.get_node_batch(keys)
    ring.add_node("newcomer", 2)
    after = ring.get_node_batch(keys)
    moved = [(b, a) for b, a in zip(before, after) if a != b]
    assert moved, "a new node of weight 2 among 12 takes some keys"
    assert all(a == "newcomer" for _, a in moved)


def test_set_weight_moves_keys_only_to_or_from_the_node(rng: random.Random) -> None:
    weights = random_weights(rng, 8)
    ring = qk.HashRing(weights)
    keys = random_keys(rng, 10_000)
    name = list(weights)[3]
    before = ring.get_node_batch(keys)
    ring.set_weight(name, weights[name] + 3)
    assert ring.weight(name) == weights[name] + 3
    grown = ring.get_node_batch(keys)
    assert all(a == b or a == name for b, a in zip(before, grown))
    ring.set_weight(name, weights[name])
    assert ring.get_node_batch(keys) == before
    ring.set_weight(name, 1)
    shrunk = ring.get_node_batch(keys)
    assert all(a == b or b == name for b, a in zip(before, shrunk))


def test_insertion_order_does_not_matter(rng: random.Random) -> None:
    weights = random_weights(rng, 20)
    keys = random_keys(rng, 10_000)
    names = list(weights)
    a = qk.HashRing({n: weights[n] for n in names})
    rng.shuffle(names)
    b = qk.HashRing()
    for n in names:
        b.add_node(n, weights[n])
    assert a.get_node_batch(keys) == b.get_node_batch(keys)
    assert a.shares() == b.shares()
    # nodes keeps insertion order, though.
    assert b.nodes == names


def test_get_nodes_are_distinct_and_start_with_get_node(rng: random.Random) -> None:
    ring = qk.HashRing(random_weights(rng, 7))
    for k in random_keys(rng, 2000):
        for n in (1, 3, 7):
            got = ring.get_nodes(k, n)
            assert len(got) == n == len(set(got))
            assert got[0] == ring.get_node(k)
        assert ring.get_nodes(k, 0) == []
        # A longer preference list extends a shorter one.
        assert ring.get_nodes(k, 7)[:3] == ring.get_nodes(k, 3)


def test_batch_equals_single_in_every_input_form(rng: random.Random) -> None:
    ring = qk.HashRing(random_weights(rng, 30))
    keys = random_keys(rng, 5000)
    single = [ring.get_node(k) for k in keys]
    assert ring.get_node_batch(keys) == single
    assert ring.get_node_batch(tuple(keys)) == single
    assert ring.get_node_batch(k for k in keys) == single
    assert ring.get_node_batch([k.encode() for k in keys]) == single
    assert ring.get_node_batch([bytearray(k.encode()) for k in keys]) == single
    assert ring.get_node_batch([memoryview(k.encode()) for k in keys]) == single
    assert ring.get_node_batch([]) == []


def test_large_batch_split_across_threads_matches_single() -> None:
    # Batches of >= 65536 keys are located on several threads.
    ring = qk.HashRing({f"n{i}": 1 + i % 3 for i in range(100)})
    keys = [f"key-{i}" for i in range(200_003)]
    got = ring.get_node_batch(keys)
    assert len(got) == len(keys)
    for i in range(0, len(keys), 997):
        assert got[i] == ring.get_node(keys[i]), i
    assert got[-1] == ring.get_node(keys[-1])


def test_fixed_width_batch(rng: random.Random) -> None:
    ring = qk.HashRing(random_weights(rng, 10))
    raw = [rng.getrandbits(64).to_bytes(8, "little") for _ in range(100_000)]
    data = b"".join(raw)
    expect = [ring.get_node(k) for k in raw]
    assert ring.get_node_batch(data, key_size=8) == expect
    assert ring.get_node_batch(bytearray(data), key_size=8) == expect
    assert ring.get_node_batch(memoryview(data), key_size=8) == expect
    assert ring.get_node_batch(data[:16], key_size=16) == [ring.get_node(data[:16])]
    assert ring.get_node_batch(b"", key_size=4) == []


def test_str_key_is_its_utf8_bytes(rng: random.Random) -> None:
    ring = qk.HashRing(random_weights(rng, 10))
    for k in random_keys(rng, 1000) + ["", "ü", "ключ", "🙂", "a\0b"]:
        b = k.encode("utf-8")
        assert qk.key_hash(k) == qk.key_hash(b) == qk.key_hash(bytearray(b)) == qk.key_hash(memoryview(b))
        assert ring.get_node(k) == ring.get_node(b) == ring.get_node(bytearray(b))
        assert ring.get_nodes(k, 2) == ring.get_nodes(b, 2)


def test_lookups_return_cached_name_objects() -> None:
    ring = qk.HashRing(["alpha", "beta"])
    a = ring.get_node("x")
    assert a is ring.get_node("x")
    assert all(n is m for n, m in zip(ring.get_node_batch(["x", "x"]), [a, a]))
