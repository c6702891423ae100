"""Many threads looking up on a shared ring while another thread changes
its membership: every answer is a valid node name, nothing raises, nothing
deadlocks (lookups run with and without the GIL held)."""

from __future__ import annotations

import random
import threading
import time

import quorumkit as qk
from conftest import BASE_SEED

DURATION = 1.5


def hammer(ring, base: list[str], churn: list[str], add) -> None:
    valid = set(base) | set(churn)
    errors: list[BaseException] = []
    stop = threading.Event()
    counts = [0] * 8

    def reader(t: int) -> None:
        r = random.Random(BASE_SEED + t)
        try:
            while not stop.is_set():
                op = r.randrange(4)
                if op == 0:
                    n = ring.get_node(f"k{r.getrandbits(32)}")
                    assert n in valid, n
                elif op == 1:
                    keys = [f"k{r.getrandbits(32)}" for _ in range(r.choice([10, 1000, 70_000]))]
                    got = ring.get_node_batch(keys)
                    assert len(got) == len(keys) and set(got) <= valid, set(got) - valid
                elif op == 2:
                    got = ring.get_nodes(f"k{r.getrandbits(32)}", 2)
                    assert len(set(got)) == 2 and set(got) <= valid
                else:
                    shares = ring.shares()
                    assert set(shares) <= valid
                    assert abs(sum(shares.values()) - 1.0) < 1e-9
                    assert set(ring.nodes) >= set(base)
                counts[t] += 1
        except BaseException as e:  # noqa: BLE001 - report any failure
            errors.append(e)
            stop.set()

    def writer() -> None:
        r = random.Random(BASE_SEED - 1)
        present: set[str] = set()
        try:
            while not stop.is_set():
                name = r.choice(churn)
                if name in present:
                    ring.remove_node(name)
                    present.discard(name)
                else:
                    add(name, r.randint(1, 3))
                    present.add(name)
                if present and r.random() < 0.3:
                    ring.set_weight(r.choice(sorted(present)), r.randint(1, 3))
                counts.append(1)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(8)]
    threads.append(threading.Thread(target=writer))
    for th in threads:
        th.start()
    time.sleep(DURATION)
    stop.set()
    for th in threads:
        th.join(timeout=30)
        assert not th.is_alive(), "a thread is stuck (deadlock?)"
    assert not errors, f"seed={BASE_SEED}: {errors[0]!r}"
    assert all(c > 0 for c in counts[:8]), counts[:8]
    assert len(counts) > 8 + 5, "the writer made too few changes"


def test_hash_ring_under_concurrent_changes() -> None:
    base = [f"base-{i}" for i in range(20)]
    churn = [f"churn-{i}" for i in range(10)]
    ring = qk.HashRing(base)
    hammer(ring, base, churn, ring.add_node)
    assert set(ring.nodes) >= set(base)


def test_ketama_ring_under_concurrent_changes() -> None:
    base = [f"10.0.0.{i}:11211" for i in range(1, 21)]
    churn = [f"10.0.1.{i}:11211" for i in range(1, 11)]
    ring = qk.KetamaRing(base, compat="uhashring")
    hammer(ring, base, churn, ring.add_node)
