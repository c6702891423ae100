"""Paxos record files as a hostile user meets them: damage refused with the
file untouched, one live node per file (also across processes), files tied
to their cluster and replica id, and kill -9 of a real process running
three replicas: a restart re-delivers, at once, every slot it delivered."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import quorumkit as qk
from quorumkit import (
    PaxosNode,
    StorageCorruptError,
    StorageError,
    StorageInUseError,
    StorageMismatchError,
)


def decide_alone(path: Path, n: int, *, cluster_id: int = 0) -> PaxosNode:
    node = PaxosNode(1, [1], election_timeout=0.2, heartbeat_interval=0.01, path=path, cluster_id=cluster_id)
    now = 0.0
    while not node.is_leader:
        now = max(now, node.next_deadline)
        node.tick(now)
        node.poll()
    for k in range(n):
        node.propose(b"cmd-%d" % k, now)
    node.poll()
    return node


def decided(node: PaxosNode) -> dict[int, list[bytes]]:
    return {o[1]: o[2] for o in node.poll() if o[0] == "decided"}  # type: ignore[misc]


def test_the_error_classes() -> None:
    for cls in (StorageCorruptError, StorageInUseError, StorageMismatchError):
        assert issubclass(cls, StorageError) and issubclass(cls, OSError)
        assert getattr(qk, cls.__name__) is cls and cls.__name__ in qk.__all__
    assert issubclass(StorageMismatchError, ValueError)


def test_a_flipped_bit_anywhere_in_the_log_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "r1.log"
    node = decide_alone(path, 10, cluster_id=9)
    del node
    good = path.read_bytes()
    rng = random.Random(20261202)
    for _ in range(40):
        bit = rng.randrange(31 * 8, len(good) * 8)  # anywhere after the header
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(bad))
        with pytest.raises(StorageCorruptError) as info:
            PaxosNode(1, [1], path=path, cluster_id=9)
        assert "untouched" in str(info.value), f"bit {bit}: {info.value}"
        assert path.read_bytes() == bytes(bad), f"bit {bit}: the file changed"
    path.write_bytes(good)
    again = PaxosNode(1, [1], path=path, cluster_id=9)
    assert [c for s, cs in sorted(decided(again).items()) for c in cs] == [b"cmd-%d" % k for k in range(10)]


def test_one_live_node_per_file(tmp_path: Path) -> None:
    path = tmp_path / "r1.log"
    node = decide_alone(path, 3)
    with pytest.raises(StorageInUseError, match="locked"):
        PaxosNode(1, [1], path=path)
    del node
    PaxosNode(1, [1], path=path).close()  # released with the first node
    with PaxosNode(1, [1], path=path) as held:
        assert not held.closed
        with pytest.raises(StorageInUseError):
            PaxosNode(1, [1], path=path)
    assert held.closed
    with pytest.raises(qk.InvalidArgumentError, match="closed"):
        held.tick(1.0)
    with pytest.raises(qk.InvalidArgumentError, match="closed"):
        held.is_leader
    assert "closed" in repr(held)
    held.close()  # twice: nothing
    PaxosNode(1, [1], path=path).close()


def test_a_file_of_another_cluster_or_replica_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r1.log"
    del_me = decide_alone(path, 3, cluster_id=2**64 - 1)
    assert del_me.cluster_id == 2**64 - 1
    del del_me
    before = path.read_bytes()
    with pytest.raises(StorageMismatchError, match="cluster"):
        PaxosNode(1, [1], path=path, cluster_id=5)
    with pytest.raises(StorageMismatchError, match="replica"):
        PaxosNode(2, [1, 2], path=path, cluster_id=2**64 - 1)
    assert path.read_bytes() == before
    with pytest.raises(TypeError):
        PaxosNode(1, [1], cluster_id="7")  # type: ignore[arg-type]
    for bad in (-1, 2**64):
        with pytest.raises(qk.InvalidArgumentError):
            PaxosNode(1, [1], cluster_id=bad)


CHILD = textwrap.dedent(
    """
    import sys
    from collections import deque
    from quorumkit import PaxosNode

    members = [1, 2, 3]
    paths = {i: sys.argv[1] + "/r%d.log" % i for i in members}
    nodes = {i: PaxosNode(i, members, seed=i, path=paths[i], cluster_id=77) for i in members}
    queue = deque()
    now = 0.0

    def drain(i):
        said = False
        for out in nodes[i].poll():
            if out[0] == "send":
                queue.append((i, out[1], out[2]))
            elif out[0] == "decided":
                print("D", i, out[1], b"|".join(out[2]).decode())
                said = True
        if said:
            # Wait for the parent: it may kill us right here, just after a
            # delivery and before anything else this process would write.
            print("W", flush=True)
            sys.stdin.readline()

    for i in members:
        drain(i)
    k = 0
    while True:
        while queue:
            frm, to, data = queue.popleft()
            nodes[to].step(frm, data, now)
            drain(to)
        leader = [i for i in members if nodes[i].is_leader]
        if leader and k < 10**6:
            nodes[leader[0]].propose(("%s-%d" % (sys.argv[2], k)).encode(), now)
            drain(leader[0])
            k += 1
        now = max(now + 0.001, min(n.next_deadline for n in nodes.values()) if not leader else now + 0.001)
        for i in members:
            if nodes[i].next_deadline <= now:
                nodes[i].tick(now)
                drain(i)
    """
)


def test_kill_9_then_restart_re_delivers_every_slot_delivered_before(tmp_path: Path) -> None:
    seed = int(os.environ.get("QK_TEST_SEED", "20261202"))
    rng = random.Random(seed)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    delivered: dict[int, dict[int, str]] = {1: {}, 2: {}, 3: {}}
    deadline = time.monotonic() + 120
    for round_ in range(12):
        assert time.monotonic() < deadline, f"seed {seed}: out of time"
        child = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), "r%d" % round_],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdin is not None
        want = rng.randrange(5, 80)
        lines = 0  # new deliveries (a restart first re-delivers the old ones)
        while True:
            line = child.stdout.readline()
            if not line:
                err = child.stderr.read() if child.stderr else ""
                pytest.fail(f"seed {seed}: the child ended: {err}")
            if line == "W\n":
                if lines >= want:
                    break
                child.stdin.write("\n")
                child.stdin.flush()
                continue
            _, node, slot, value = line.rstrip("\n").split(" ", 3)
            if int(slot) not in delivered[int(node)]:
                lines += 1
            seen = delivered[int(node)].setdefault(int(slot), value)
            assert seen == value, f"seed {seed}: node {node} slot {slot}: {seen!r} then {value!r}"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdin.close()
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
        # Each replica, restarted on its file, hands out at once (before any
        # message or tick) every slot it delivered before, with its value.
        for i in (1, 2, 3):
            node = PaxosNode(i, [1, 2, 3], seed=i, path=tmp_path / ("r%d.log" % i), cluster_id=77)
            again = {s: b"|".join(cs).decode() for s, cs in decided(node).items()}
            missing = sorted(set(delivered[i]) - set(again))
            assert not missing, f"seed {seed} round {round_}: node {i} lost delivered slots {missing[:10]}"
            for s, v in delivered[i].items():
                assert again[s] == v, f"seed {seed}: node {i} slot {s}: {again[s]!r} != {v!r}"
            node.close()
    total = sum(len(d) for d in delivered.values())
    print(f"seed {seed}: 12 kills, {total} delivered slots re-delivered after each")
    assert total > 100, delivered
