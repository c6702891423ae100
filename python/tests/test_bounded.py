"""BoundedLoadBalancer: the capacity bound, load accounting, membership,
bad inputs with their exact exceptions, and threads hammering it."""

from __future__ import annotations

import math
import random
import threading

import pytest

import quorumkit as qk
from conftest import BASE_SEED


def test_basics() -> None:
    b = qk.BoundedLoadBalancer(["a", "b", "c"])
    assert b.balance_factor == 1.25 and b.vnodes == 160
    assert len(b) == 3 and "a" in b and "z" not in b and 3 not in b
    assert list(b) == ["a", "b", "c"] == b.nodes
    assert b.loads() == {"a": 0, "b": 0, "c": 0}
    node = b.acquire("user:1")
    assert node in b and b.loads()[node] == 1 and b.total_load == 1
    assert repr(b) == "BoundedLoadBalancer(nodes=3, balance_factor=1.25, total_load=1, vnodes=160)"
    b.release(node)
    assert b.total_load == 0
    # ceil(1.25 * 1 / 3) = 1
    assert b.capacity("a") == 1
    w = qk.BoundedLoadBalancer({"a": 1, "b": 3}, balance_factor=2, vnodes=10)
    # ceil(2 * 1 * 3 / 4) = 2
    assert w.capacity("b") == 2 and w.vnodes == 10 and w.balance_factor == 2.0


def test_same_node_as_the_ring_while_loads_allow() -> None:
    nodes = [f"n{i}" for i in range(8)]
    ring = qk.HashRing(nodes, vnodes=40)
    b = qk.BoundedLoadBalancer(nodes, vnodes=40, balance_factor=1e9)
    for i in range(3000):
        assert b.acquire(f"k{i}") == ring.get_node(f"k{i}")
    # One at a time (acquire then release): always the ring's node.
    tight = qk.BoundedLoadBalancer(nodes, vnodes=40, balance_factor=1.01)
    for i in range(500):
        n = tight.acquire(f"k{i}")
        assert n == ring.get_node(f"k{i}")
        tight.release(n)


def test_hot_key_spills_within_the_bound() -> None:
    b = qk.BoundedLoadBalancer([f"n{i}" for i in range(5)], balance_factor=1.1)
    for i in range(1, 1001):
        b.acquire("hot")
        assert max(b.loads().values()) <= math.ceil(1.1 * i / 5)
    assert all(v > 0 for v in b.loads().values())


def test_membership() -> None:
    b = qk.BoundedLoadBalancer(["a", "b", "c"], balance_factor=3.0)
    for i in range(60):
        b.acquire(f"k{i}")
    before = b.loads()
    b.add_node("d", 2)
    assert b.loads() == {**before, "d": 0}
    assert b.remove_node("a") == before["a"]
    assert b.total_load == 60 - before["a"]
    assert "a" not in b and b.nodes == ["b", "c", "d"]


def raises(exc: type[BaseException], builtin: type[BaseException], fn, *args, **kwargs) -> str:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert type(info.value) is exc and isinstance(info.value, builtin)
    return str(info.value)


def test_bad_inputs() -> None:
    I = qk.InvalidArgumentError
    for c in (1, 1.0, 0.5, -3, float("nan"), float("inf"), float("-inf"), 10**400):
        raises(I, ValueError, qk.BoundedLoadBalancer, ["a"], balance_factor=c)
    for c in ("1.5", True, [1.5]):
        with pytest.raises(TypeError):
            qk.BoundedLoadBalancer(["a"], balance_factor=c)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.BoundedLoadBalancer("abc")
    raises(I, ValueError, qk.BoundedLoadBalancer, ["a"], vnodes=0)
    raises(I, ValueError, qk.BoundedLoadBalancer, {"a": 0})
    raises(qk.NodeExistsError, ValueError, qk.BoundedLoadBalancer, ["a", "a"])
    raises(qk.EmptyRingError, LookupError, qk.BoundedLoadBalancer([]).acquire, "k")
    b = qk.BoundedLoadBalancer(["a", "b"])
    assert "no load" in raises(I, ValueError, b.release, "a")
    raises(qk.NodeNotFoundError, KeyError, b.release, "zz")
    raises(qk.NodeNotFoundError, KeyError, b.capacity, "zz")
    raises(qk.NodeNotFoundError, KeyError, b.remove_node, "zz")
    raises(qk.NodeExistsError, ValueError, b.add_node, "a")
    raises(I, ValueError, b.add_node, "c", 0)
    raises(I, ValueError, b.add_node, "c", -1)
    with pytest.raises(TypeError):
        b.acquire(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        b.release(0)  # type: ignore[arg-type]
    assert b.total_load == 0 and len(b) == 2


def test_threads_keep_the_cap_and_the_count() -> None:
    nodes = [f"n{i}" for i in range(6)]
    c = 1.05
    b = qk.BoundedLoadBalancer(nodes, balance_factor=c, vnodes=40)
    held: list[list[str]] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def churn(t: int) -> None:
        r = random.Random(BASE_SEED + t)
        try:
            for i in range(3000):
                held[t].append(b.acquire(f"t{t}-{i}"))
                if r.random() < 0.4:
                    b.release(held[t].pop(r.randrange(len(held[t]))))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=churn, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"seed {BASE_SEED}: {errors[:3]}"
    counts = dict.fromkeys(nodes, 0)
    for h in held:
        for n in h:
            counts[n] += 1
    assert b.loads() == counts, f"seed {BASE_SEED}"
    # Release everything from many threads, then acquire only: the bound holds.
    rel = [threading.Thread(target=lambda h=h: [b.release(n) for n in h]) for h in held]
    for t in rel:
        t.start()
    for t in rel:
        t.join()
    assert b.total_load == 0

    def fill(t: int) -> None:
        for i in range(2000):
            b.acquire(f"f{t}-{i}")

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.total_load == 16000
    assert max(b.loads().values()) <= math.ceil(c * 16000 / len(nodes))
