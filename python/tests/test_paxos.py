"""qk.PaxosNode and qk.PaxosCluster: three replicas driven from Python over
bytes (a little in-test network and a fake clock), crash and restart on file
storage, a simulated cluster with faults held to its checkers, bad inputs
raising the exact quorumkit class, and determinism by seed."""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import pytest

import quorumkit as qk
from quorumkit import (
    CorruptSnapshotError,
    InvalidArgumentError,
    PaxosCluster,
    PaxosNode,
    QuorumkitError,
    SimulationViolation,
    StorageCorruptError,
    StorageError,
)

MEMBERS = [1, 2, 3]


def raises(exc: type[BaseException], fn: Callable[..., Any], *args: Any, **kw: Any) -> BaseException:
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert type(info.value) is exc, f"{type(info.value)} is not exactly {exc}"
    return info.value


def encode_state(log: list[bytes]) -> bytes:
    """The test application's snapshot: its whole log, length-prefixed."""
    return b"".join(len(c).to_bytes(4, "little") + c for c in log)


def decode_state(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        n = int.from_bytes(data[at : at + 4], "little")
        out.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    assert at == len(data)
    return out


class Net:
    """Three PaxosNodes, a FIFO network of (from, to, bytes), a fake clock
    moved to the earliest next_deadline."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.now = 0.0
        self.nodes: dict[int, PaxosNode | None] = {}
        self.logs: dict[int, list[bytes]] = {}
        self.slots: dict[int, int] = {}
        self.queue: deque[tuple[int, int, bytes]] = deque()
        self.snapshots: dict[int, int] = {}
        self.reads: list[tuple[int, int, bool, int]] = []
        for i in MEMBERS:
            self.start(i)

    def start(self, i: int) -> None:
        path = self.path if (i == 3 and self.path is not None) else None
        self.nodes[i] = PaxosNode(i, MEMBERS, seed=100 + i, max_batch=4, path=path, now=self.now)
        self.logs[i] = []
        self.slots[i] = 0
        self.drain(i)

    def crash(self, i: int) -> None:
        node = self.nodes[i]
        if node is not None:
            node.close()  # releases its file now, whoever still holds the object
        self.nodes[i] = None

    def drain(self, i: int) -> None:
        node = self.nodes[i]
        assert node is not None
        for out in node.poll():
            if out[0] == "send":
                _, to, data = out
                assert isinstance(data, bytes) and to in MEMBERS and to != i
                self.queue.append((i, to, data))
            elif out[0] == "decided":
                _, slot, cmds = out
                assert slot == self.slots[i], (i, slot, self.slots[i])
                self.slots[i] += 1
                self.logs[i].extend(cmds)
            elif out[0] == "persisted":
                assert out[1] > 0
            elif out[0] == "read":
                _, read_id, ready = out
                assert isinstance(ready, bool)
                self.reads.append((i, read_id, ready, len(self.logs[i])))
            elif out[0] == "snapshot":
                _, slot, data = out
                assert slot >= self.slots[i], (i, slot, self.slots[i])
                self.logs[i] = decode_state(data)
                self.slots[i] = slot
                self.snapshots[i] = self.snapshots.get(i, 0) + 1
            else:
                assert out[0] == "leader"
                assert out[1] is None or out[1] in MEMBERS

    def deliver(self) -> None:
        while self.queue:
            frm, to, data = self.queue.popleft()
            node = self.nodes[to]
            if node is not None:
                node.step(frm, data, self.now)
                self.drain(to)

    def advance(self) -> None:
        live = [(i, n) for i, n in self.nodes.items() if n is not None]
        self.now = max(self.now, min(n.next_deadline for _, n in live))
        for i, n in live:
            if n.next_deadline <= self.now:
                n.tick(self.now)
                self.drain(i)

    def run_until(self, done: Callable[[], bool], limit: float = 60.0) -> None:
        end = self.now + limit
        while self.now <= end:
            self.deliver()
            if done():
                return
            self.advance()
        raise AssertionError("condition not reached")

    def leader(self) -> int | None:
        live = {i: n for i, n in self.nodes.items() if n is not None}
        leaders = [i for i, n in live.items() if n.is_leader]
        if len(leaders) != 1:
            return None
        if all(n.leader == leaders[0] for n in live.values()):
            return leaders[0]
        return None

    def compact(self, i: int) -> None:
        node = self.nodes[i]
        assert node is not None
        node.compact(self.slots[i], encode_state(self.logs[i]), self.now)
        self.drain(i)

    def propose(self, i: int, cmd: bytes) -> None:
        node = self.nodes[i]
        assert node is not None
        node.propose(cmd, self.now)
        self.drain(i)


def test_three_nodes_over_bytes(tmp_path: Path) -> None:
    net = Net(tmp_path / "node3.log")
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    follower = next(i for i in MEMBERS if i != leader)
    for k in range(5):
        net.propose(leader, b"a%d" % k)
        net.propose(follower, b"b%d" % k)
    net.run_until(lambda: all(len(log) >= 10 for log in net.logs.values()))
    log = net.logs[1]
    assert net.logs[2] == log and net.logs[3] == log
    assert sorted(log) == sorted([b"a%d" % k for k in range(5)] + [b"b%d" % k for k in range(5)])
    assert [c for c in log if c.startswith(b"a")] == [b"a%d" % k for k in range(5)]
    for i, n in net.nodes.items():
        assert n is not None and n.commit_index == net.slots[i] >= 3  # max_batch 4
        assert n.is_leader == (i == leader)
        assert n.ballot[1] == leader
    # The leader acquires the read lease; followers never hold it.
    net.run_until(lambda: (l := net.leader()) is not None and net.nodes[l].has_read_lease(net.now))  # type: ignore[union-attr]
    leader = net.leader()
    for i, n in net.nodes.items():
        assert n is not None and n.has_read_lease(net.now) == (i == leader)

    # Crash the replica on file storage, decide more without it, restart it
    # from the same file: it delivers the whole log again and catches up.
    before = list(net.logs[3])
    net.crash(3)
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    for k in range(3):
        net.propose(leader, b"c%d" % k)
    net.run_until(lambda: all(len(net.logs[i]) >= 13 for i in (1, 2)))
    net.start(3)
    node3 = net.nodes[3]
    assert node3 is not None and node3.path == tmp_path / "node3.log"
    net.run_until(lambda: len(net.logs[3]) >= 13)
    net.deliver()
    assert net.logs[3] == net.logs[1] == net.logs[2]
    assert net.logs[3][: len(before)] == before


def test_propose_all_packs_a_call_into_one_slot() -> None:
    net = Net()
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    node = net.nodes[leader]
    assert node is not None
    # A bad element refuses the whole call: nothing is proposed.
    raises(TypeError, node.propose_all, [b"x", 5], net.now)
    raises(TypeError, node.propose_all, 5, net.now)
    node.propose_all([], net.now)
    before = net.slots[leader]
    node.propose_all([b"p0", bytearray(b"p1"), memoryview(b"p2"), b"p3"], net.now)
    net.drain(leader)
    net.run_until(lambda: all(len(log) >= 4 for log in net.logs.values()))
    net.deliver()
    for log in net.logs.values():
        assert log == [b"p0", b"p1", b"p2", b"p3"]
    assert net.slots[leader] == before + 1  # max_batch 4: one slot, not four
    # From a follower: forwarded, decided in order.
    follower = next(i for i in MEMBERS if i != leader)
    f = net.nodes[follower]
    assert f is not None
    f.propose_all((b"q%d" % k for k in range(6)), net.now)
    net.drain(follower)
    net.run_until(lambda: all(len(log) >= 10 for log in net.logs.values()))
    assert net.logs[1][4:] == [b"q%d" % k for k in range(6)]


def test_node_bad_inputs(tmp_path: Path) -> None:
    n = PaxosNode(1, [1, 2, 3])
    assert (n.id, n.members, n.path, n.leader, n.is_leader, n.commit_index) == (1, [1, 2, 3], None, None, False, 0)
    assert 0.5 <= n.next_deadline < 1.0
    assert repr(n) == "PaxosNode(id=1, members=[1, 2, 3], leader=None, commit_index=0)"
    assert all(o[0] in ("persisted", "leader") for o in n.poll())
    assert n.poll() == []
    # Config errors.
    raises(InvalidArgumentError, PaxosNode, 7, [1, 2, 3])
    raises(InvalidArgumentError, PaxosNode, 1, [])
    raises(InvalidArgumentError, PaxosNode, 1, [1, 1, 2])
    raises(InvalidArgumentError, PaxosNode, 1, [1, 2, 3], heartbeat_interval=0)
    raises(InvalidArgumentError, PaxosNode, 1, [1, 2, 3], heartbeat_interval=-1.0)
    raises(InvalidArgumentError, PaxosNode, 1, [1, 2, 3], now=-1.0)
    raises(InvalidArgumentError, PaxosNode, -1, [1, 2, 3])
    raises(InvalidArgumentError, PaxosNode, 1, [1, 2, 2**32])
    raises(TypeError, PaxosNode, "1", [1, 2, 3])
    raises(TypeError, PaxosNode, 1, "123")
    raises(TypeError, PaxosNode, 1, [1, 2, "3"])
    raises(TypeError, PaxosNode, 1, 5)
    raises(TypeError, PaxosNode, 1, [1, 2, 3], path=5)
    raises(TypeError, PaxosNode, 1, [1, 2, 3], heartbeat_interval="fast")
    # Storage: a directory that does not exist; a file that is not a log.
    e = raises(StorageError, PaxosNode, 1, [1, 2, 3], path=tmp_path / "missing" / "n.log")
    assert isinstance(e, OSError) and isinstance(e, QuorumkitError)
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"not a paxos log")
    raises(CorruptSnapshotError, PaxosNode, 1, [1, 2, 3], path=junk)
    raises(InvalidArgumentError, PaxosNode, 9, [1, 2, 3], path=tmp_path / "unused.log")
    assert not (tmp_path / "unused.log").exists()
    # Calls.
    e = raises(CorruptSnapshotError, n.step, 2, b"\x01\xeegarbage", 0.0)
    assert isinstance(e, ValueError)
    raises(qk.UnsupportedVersionError, n.step, 2, b"\xff\x01", 0.0)
    raises(CorruptSnapshotError, n.step, 2, b"", 0.0)
    raises(CorruptSnapshotError, n.step, 2, bytearray(b"\x01\xff"), 0.0)
    raises(TypeError, n.step, 2, "text", 0.0)
    raises(TypeError, n.step, 2, None, 0.0)
    raises(TypeError, n.step, "2", b"", 0.0)
    raises(InvalidArgumentError, n.step, -2, b"", 0.0)
    raises(InvalidArgumentError, n.tick, -0.5)
    raises(TypeError, n.tick, None)
    raises(TypeError, n.propose, "text", 0.0)
    raises(TypeError, n.propose, 5, 0.0)
    raises(TypeError, n.propose, [1, 2, 3], 0.0)
    raises(InvalidArgumentError, n.propose, b"x", float("nan"))
    raises(InvalidArgumentError, n.has_read_lease, -1)
    n.propose(memoryview(b"held"), 0.0)  # held until a leader is known


def test_messages_survive_a_round_trip_between_nodes() -> None:
    # A single-member cluster elects itself and decides alone.
    n = PaxosNode(5, [5], election_timeout=0.2, heartbeat_interval=0.01)
    now = 0.0
    while not n.is_leader:
        now = max(now, n.next_deadline)
        n.tick(now)
        n.poll()
        assert now < 10
    n.propose(b"solo", now)
    outs = n.poll()
    assert ("decided", 0, [b"solo"]) in outs or any(o[0] == "decided" and b"solo" in o[2] for o in outs)  # type: ignore[operator]
    assert n.commit_index >= 1


def test_cluster_basics_and_old_snippet() -> None:
    c = qk.PaxosCluster(3, seed=1)
    assert qk.Simulation is PaxosCluster
    assert len(c) == 3 and c.seed == 1 and c.now == 0.0
    c.propose(b"value1")
    assert c.run_until_decided(b"value1")
    st = c.status()
    assert st["leader"] in (0, 1, 2)
    assert [n["id"] for n in st["nodes"]] == [0, 1, 2]
    assert all(n["alive"] and n["leader"] == st["leader"] for n in st["nodes"])
    assert sum(n["is_leader"] for n in st["nodes"]) == 1
    assert c.decided() == [b"value1"]
    for i in range(3):
        assert c.decided(i) == [b"value1"]
    c.propose("value2", node=0)  # str as UTF-8
    assert c.run_until_decided("value2")
    assert c.decided() == [b"value1", b"value2"]
    c.check()
    s = c.stats()
    assert s["proposals"] == 2 and s["commands_decided"] == 2 and s["sent"] > 0
    assert repr(c).startswith("PaxosCluster(n=3, seed=1, time=")


def test_cluster_faults_leader_crash() -> None:
    c = PaxosCluster(5, seed=7, loss=0.01)
    assert c.run_until(lambda cl: cl.leader() is not None, timeout=5.0)
    for k in range(10):
        c.propose(b"before-%d" % k)
    c.run_for(1.0)
    old = c.leader()
    assert old is not None
    c.crash(old)
    assert c.run_until(lambda cl: cl.leader() not in (None, old), timeout=5.0)
    new = c.leader()
    assert new is not None and new != old
    c.partition([0, 1], [2, 3, 4])
    c.run_for(0.5)
    c.heal()
    c.restart(old)
    for k in range(10):
        c.propose(b"after-%d" % k)
    c.run_for(3.0)
    c.check()
    log = c.decided()
    assert len(log) == len(set(log))  # no command decided twice
    assert all(x.startswith((b"before-", b"after-")) for x in log)
    assert sum(x.startswith(b"after-") for x in log) >= 1
    st = c.status()
    assert st["nodes"][old]["alive"]
    assert c.stats()["crashes"] == 1 and c.stats()["restarts"] == 1


def test_cluster_is_deterministic_by_seed() -> None:
    def run(seed: int) -> tuple[int, list[bytes], int | None]:
        c = PaxosCluster(3, seed=seed, loss=0.05, duplicate=0.05)
        for k in range(20):
            c.propose(b"v%d" % k)
            c.run_for(0.01)
        c.crash(0)
        c.run_for(1.0)
        return c.digest(), c.decided(), c.leader()

    assert run(11) == run(11)
    assert run(11)[0] != run(12)[0]


def test_cluster_bad_inputs() -> None:
    raises(InvalidArgumentError, PaxosCluster, 0)
    raises(InvalidArgumentError, PaxosCluster, -1)
    raises(InvalidArgumentError, PaxosCluster, 3, loss=1.5)
    raises(InvalidArgumentError, PaxosCluster, 3, loss=-0.1)
    raises(InvalidArgumentError, PaxosCluster, 3, min_delay=0.01, max_delay=0.001)
    raises(InvalidArgumentError, PaxosCluster, 3, min_delay=-1)
    raises(TypeError, PaxosCluster, "3")
    raises(TypeError, PaxosCluster, 3, seed="x")
    c = PaxosCluster(3)
    raises(InvalidArgumentError, c.crash, 3)
    raises(InvalidArgumentError, c.restart, -1)
    raises(InvalidArgumentError, c.partition, [0], [5])
    raises(InvalidArgumentError, c.propose, b"x", 9)
    raises(InvalidArgumentError, c.decided, 3)
    raises(InvalidArgumentError, c.run_for, -1.0)
    raises(InvalidArgumentError, c.run_until)
    raises(TypeError, c.run_until, 5)
    raises(TypeError, c.propose, 5)
    raises(TypeError, c.partition, "01")
    raises(TypeError, c.crash, "0")
    c.crash(0)
    raises(InvalidArgumentError, c.propose, b"x", 0)  # node 0 is down


def test_violation_class() -> None:
    assert issubclass(SimulationViolation, QuorumkitError)
    assert issubclass(SimulationViolation, AssertionError)
    assert qk.SimulationViolation is SimulationViolation
    assert "SimulationViolation" in qk.__all__ and "PaxosNode" in qk.__all__


def test_the_same_file_restarts_a_single_node(tmp_path: Path) -> None:
    path = str(tmp_path / "solo.log")
    n = PaxosNode(1, [1], election_timeout=0.2, heartbeat_interval=0.01, path=path)
    now = 0.0
    while not n.is_leader:
        now = max(now, n.next_deadline)
        n.tick(now)
        n.poll()
    for k in range(3):
        n.propose(b"x%d" % k, now)
    first = [c for o in n.poll() if o[0] == "decided" for c in o[2]]  # type: ignore[union-attr]
    assert first == [b"x0", b"x1", b"x2"]
    assert os.path.getsize(path) > 0
    del n
    n2 = PaxosNode(1, [1], election_timeout=0.2, heartbeat_interval=0.01, path=path, now=now)
    again = [c for o in n2.poll() if o[0] == "decided" for c in o[2]]  # type: ignore[union-attr]
    while len(again) < 3 and now < 30:
        now = max(now, n2.next_deadline)
        n2.tick(now)
        again += [c for o in n2.poll() if o[0] == "decided" for c in o[2]]  # type: ignore[union-attr]
    assert again == first


def test_compaction_snapshot_install_and_restart_from_a_snapshot(tmp_path: Path) -> None:
    net = Net(path=tmp_path / "node3.log")
    net.run_until(lambda: net.leader() is not None)
    net.crash(3)
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    for k in range(30):
        net.propose(leader, b"c%d" % k)
    net.run_until(lambda: all(len(net.logs[i]) >= 30 for i in (1, 2)))
    for i in (1, 2):
        node = net.nodes[i]
        assert node is not None
        upto = net.slots[i]
        net.compact(i)
        assert (node.log_start, node.log_len) == (upto, 0)
        assert node.compacting is False  # in memory: nothing to write
        # Refused, nothing changed: not newer, not decided yet, bad types.
        raises(InvalidArgumentError, node.compact, upto, b"x", net.now)
        raises(InvalidArgumentError, node.compact, upto + 5, b"x", net.now)
        raises(InvalidArgumentError, node.compact, -1, b"x", net.now)
        raises(TypeError, node.compact, upto, "not bytes", net.now)
        raises(TypeError, node.compact, "1", b"x", net.now)
        assert node.log_start == upto
    # Node 3 comes back behind both snapshots: it installs one.
    net.start(3)
    net.run_until(lambda: len(net.logs[3]) >= 30)
    assert net.snapshots.get(3) == 1
    assert net.logs[3] == net.logs[1] == [b"c%d" % k for k in range(30)]
    # It compacts too, then restarts from its file: snapshot first.
    net.propose(leader, b"after")
    net.run_until(lambda: all(len(net.logs[i]) >= 31 for i in MEMBERS))
    net.compact(3)
    n3 = net.nodes[3]
    assert n3 is not None and n3.compacting in (True, False)
    net.propose(leader, b"later")
    net.run_until(lambda: all(len(net.logs[i]) >= 32 for i in MEMBERS))
    # Its checkpoint was written in the background; a later call put it in place.
    deadline = time.monotonic() + 20
    while n3.compacting:
        assert time.monotonic() < deadline, "the checkpoint never landed"
        time.sleep(0.002)
        n3.tick(net.now)
    assert n3.log_start > 0
    # On disk: the checkpoint in the log file, what came since in the
    # segment the compaction began; the segments before it are deleted.
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "node3.log" and len(files) == 2, files
    assert files[1].startswith("node3.log.seg.") and files[1][-6:].isdigit(), files
    net.crash(3)
    # Damage in the segment is refused like damage in the log file, and
    # changes nothing.
    seg = tmp_path / files[1]
    good = seg.read_bytes()
    assert len(good) > 31
    seg.write_bytes(good[:-1] + bytes([good[-1] ^ 0x01]))
    with pytest.raises(StorageCorruptError, match=files[1]):
        PaxosNode(3, MEMBERS, path=tmp_path / "node3.log")
    assert seg.read_bytes() == good[:-1] + bytes([good[-1] ^ 0x01])
    seg.write_bytes(good)
    net.start(3)
    assert net.snapshots.get(3) == 2
    net.run_until(lambda: len(net.logs[3]) >= 32)
    assert net.logs[3] == net.logs[1]
    assert net.logs[3][-2:] == [b"after", b"later"]


def test_read_index_is_ready_after_a_majority_and_refused_on_a_follower() -> None:
    net = Net()
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    for k in range(3):
        net.propose(leader, b"w%d" % k)
    node = net.nodes[leader]
    assert node is not None
    node.read_index(41, net.now)
    net.drain(leader)
    assert net.reads == []  # a heartbeat round first
    net.deliver()
    assert net.reads == [(leader, 41, True, 3)]  # and the writes before it delivered
    follower = next(i for i in MEMBERS if i != leader)
    f = net.nodes[follower]
    assert f is not None
    raises(qk.NotLeaderError, f.read_index, 1, net.now)
    raises(InvalidArgumentError, node.read_index, -1, net.now)
    raises(TypeError, node.read_index, "1", net.now)


class MemberNet(Net):
    """Net with replicas joining and leaving: every node id it started,
    the memberships each reported."""

    def __init__(self) -> None:
        self.memberships: dict[int, list[tuple[int, int, list[int], list[int]]]] = {}
        super().__init__()

    def start(self, i: int) -> None:
        self.memberships[i] = []
        super().start(i)

    def join(self, i: int) -> None:
        self.memberships[i] = []
        self.nodes[i] = PaxosNode(i, MEMBERS, seed=100 + i, max_batch=4, now=self.now, join=True)
        self.logs[i] = []
        self.slots[i] = 0
        self.drain(i)

    def drain(self, i: int) -> None:
        node = self.nodes[i]
        assert node is not None
        for out in node.poll():
            if out[0] == "membership":
                _, epoch, start, voters, learners = out
                assert start <= self.slots[i], (i, start, self.slots[i])
                self.memberships[i].append((epoch, start, voters, learners))
            elif out[0] == "send":
                _, to, data = out
                assert to in self.nodes and to != i
                self.queue.append((i, to, data))
            elif out[0] == "decided":
                _, slot, cmds = out
                assert slot == self.slots[i], (i, slot, self.slots[i])
                self.slots[i] += 1
                self.logs[i].extend(cmds)
            elif out[0] == "snapshot":
                _, slot, data = out
                self.logs[i] = decode_state(data)
                self.slots[i] = slot

    def live(self) -> dict[int, PaxosNode]:
        return {i: n for i, n in self.nodes.items() if n is not None}

    def epoch_everywhere(self, epoch: int) -> None:
        self.run_until(lambda: all(n.membership[0] == epoch for n in self.live().values()))

    def any_leader(self) -> int:
        self.run_until(lambda: any(n.is_leader for n in self.live().values()))
        # A few heartbeats, so the leader has heard from every learner.
        until = self.now + 0.2
        self.run_until(lambda: self.now >= until)
        return max((n.ballot, i) for i, n in self.live().items() if n.is_leader)[1]


def test_membership_on_nodes_learner_promote_replace_remove() -> None:
    net = MemberNet()
    leader = net.any_leader()
    for k in range(5):
        net.propose(leader, b"m%d" % k)
    net.run_until(lambda: all(len(net.logs[i]) >= 5 for i in MEMBERS))
    net.join(4)
    n4 = net.nodes[4]
    assert n4 is not None and not n4.is_voter
    assert n4.membership == (0, 0, MEMBERS, [])
    lead = net.nodes[leader]
    assert lead is not None
    follower = next(i for i in MEMBERS if i != leader)
    f = net.nodes[follower]
    assert f is not None
    # Refused, nothing changes.
    raises(InvalidArgumentError, lead.promote, 4, net.now)  # not a learner
    raises(InvalidArgumentError, lead.remove, 9, net.now)  # unknown
    raises(InvalidArgumentError, lead.add_learner, follower, net.now)  # a member
    raises(InvalidArgumentError, lead.replace, 9, 4, net.now)
    raises(qk.NotLeaderError, f.add_learner, 4, net.now)
    raises(TypeError, lead.add_learner, "4", net.now)
    raises(InvalidArgumentError, lead.add_learner, -1, net.now)
    raises(InvalidArgumentError, lead.propose, b"\xffqk-cfg\x01" + b"forged", net.now)
    assert lead.membership[0] == 0
    lead.add_learner(4, net.now)
    net.drain(leader)
    raises(InvalidArgumentError, lead.add_learner, 5, net.now)  # one at a time
    net.epoch_everywhere(1)
    assert n4.learners == [4] and n4.members == MEMBERS and not n4.is_voter
    net.run_until(lambda: net.logs[4] == net.logs[leader])
    assert net.logs[4][:5] == [b"m%d" % k for k in range(5)]
    # Promote: four voters.
    leader = net.any_leader()
    lead = net.nodes[leader]
    assert lead is not None
    lead.promote(4, net.now)
    net.drain(leader)
    net.epoch_everywhere(2)
    for n in net.live().values():
        assert n.members == [1, 2, 3, 4] and n.learners == []
    assert n4.is_voter
    # Every replica reported the same memberships, in order, after the
    # change's slot (decided as a no-op).
    assert [m[0] for m in net.memberships[1]] == [1, 2]
    assert net.memberships[1] == net.memberships[4]
    # A voter fails for good; a new replica takes its place.
    leader = net.any_leader()
    dead = next(i for i in MEMBERS if i != leader)
    net.crash(dead)
    net.join(5)
    lead = net.nodes[leader]
    assert lead is not None
    lead.add_learner(5, net.now)
    net.drain(leader)
    net.epoch_everywhere(3)
    net.run_until(lambda: len(net.logs[5]) >= 5)
    leader = net.any_leader()
    lead = net.nodes[leader]
    assert lead is not None
    lead.replace(dead, 5, net.now)
    net.drain(leader)
    net.epoch_everywhere(4)
    voters = sorted(lead.members)
    assert dead not in voters and 5 in voters and len(voters) == 4
    # Down to three, then the cluster still decides.
    leader = net.any_leader()
    lead = net.nodes[leader]
    assert lead is not None
    gone = next(v for v in lead.members if v != leader)
    lead.remove(gone, net.now)
    net.drain(leader)
    net.run_until(lambda: all(n.membership[0] == 5 for i, n in net.live().items() if i != gone))
    leader = net.any_leader()
    net.propose(leader, b"after")
    net.run_until(lambda: all(net.logs[i][-1:] == [b"after"] for i in net.live() if i != gone))
    logs = [net.logs[i] for i in net.live() if i != gone]
    assert all(log == logs[0] for log in logs)


def test_membership_on_the_simulated_cluster() -> None:
    c = PaxosCluster(3, seed=5)
    assert c.membership == (0, 0, [0, 1, 2], [])
    assert c.run_until(lambda cl: cl.leader() is not None, timeout=5.0)
    c.propose(b"before")
    assert c.run_until_decided(b"before")
    new = c.add_learner()
    assert new == 3 and len(c) == 4
    raises(InvalidArgumentError, c.promote, 1)  # a voter, not a learner
    raises(InvalidArgumentError, c.promote, 99)  # no such node
    raises(InvalidArgumentError, c.remove, 99)
    raises(TypeError, c.promote, "3")
    assert c.run_until(lambda cl: cl.membership[0] == 1, timeout=5.0)
    assert c.membership[3] == [3]
    c.run_for(0.5)
    assert c.decided(3)[:1] == [b"before"]
    c.promote(3)
    assert c.run_until(lambda cl: cl.membership[0] == 2, timeout=5.0)
    assert sorted(c.membership[2]) == [0, 1, 2, 3]
    # The new epoch elects its leader.
    assert c.run_until(lambda cl: cl.leader() is not None, timeout=5.0)
    victim = next(i for i in range(3) if i != c.leader())
    c.remove(victim)
    assert c.run_until(lambda cl: cl.is_retired(victim), timeout=5.0)
    assert victim not in c.membership[2]
    c.restart(victim)  # a retired node stays down
    assert not c.status()["nodes"][victim]["alive"]
    c.propose(b"after")
    assert c.run_until_decided(b"after")
    c.check()
    s = c.stats()
    assert s["membership_changes"] == 3 and s["replicas_added"] == 1 and s["replicas_retired"] == 1


def test_leadership_transfer_on_nodes_and_on_the_simulated_cluster() -> None:
    net = Net()
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    lead = net.nodes[leader]
    assert lead is not None
    target = next(i for i in MEMBERS if i != leader)
    t = net.nodes[target]
    assert t is not None
    raises(qk.NotLeaderError, t.transfer_leadership, leader, net.now)
    raises(InvalidArgumentError, lead.transfer_leadership, leader, net.now)  # leads already
    raises(InvalidArgumentError, lead.transfer_leadership, 99, net.now)  # not a voter
    raises(TypeError, lead.transfer_leadership, "2", net.now)
    started = net.now
    lead.transfer_leadership(target, net.now)
    net.drain(leader)
    net.propose(leader, b"during")
    net.run_until(lambda: net.leader() == target)
    # Leases are released, not waited out (the lease is 1 s here).
    assert net.now - started < 0.3
    net.run_until(lambda: all(b"during" in net.logs[i] for i in MEMBERS))
    assert all(net.logs[i].count(b"during") == 1 for i in MEMBERS)

    c = PaxosCluster(3, seed=9)
    assert c.run_until(lambda cl: cl.leader() is not None, timeout=5.0)
    old = c.leader()
    assert old is not None
    new = (old + 1) % 3
    raises(InvalidArgumentError, c.transfer_leadership, old)
    raises(InvalidArgumentError, c.transfer_leadership, 7)
    c.transfer_leadership(new)
    assert c.run_until(lambda cl: cl.leader() == new, timeout=1.0)
    c.propose(b"x")
    assert c.run_until_decided(b"x")
    c.check()
    assert c.stats()["transfers"] == 1
