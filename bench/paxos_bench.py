#!/usr/bin/env python3
"""The cost of Paxos from Python, in one run.

    .venv/bin/python bench/paxos_bench.py            # about 10 s
    .venv/bin/python bench/paxos_bench.py --quick

Measured:
  * one Python call into a ``PaxosNode``: ``tick`` (nothing due),
    ``commit_index``, and ``step`` of a heartbeat plus the ``poll()`` of its
    reply (the heartbeat is a real one, captured from a leader);
  * three ``PaxosNode`` replicas driven from Python over bytes (propose at the
    leader, carry every message, poll everything): decisions per second,
    unbatched (``max_batch=1``) and batched (``max_batch=64``);
  * ``PaxosCluster``, the simulator: commands decided per second (3 replicas,
    1-5 ms simulated delay), and simulated seconds per second.

Times are this thread's CPU time (``time.thread_time``), not wall time: the
numbers are quoted from a shared machine, where wall time would also count
the time other processes held the core.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from typing import Callable

import quorumkit as qk

MEMBERS = [1, 2, 3]


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Mean seconds per call of fn, over about `seconds`."""
    n = 1000
    while True:
        t = time.thread_time()
        for _ in range(n):
            fn()
        dt = time.thread_time() - t
        if dt >= seconds:
            return dt / n
        n *= 2


class Trio:
    """Three replicas, a FIFO network of bytes, a fake clock."""

    def __init__(self, max_batch: int) -> None:
        self.now = 0.0
        self.nodes = {i: qk.PaxosNode(i, MEMBERS, seed=i, max_batch=max_batch) for i in MEMBERS}
        self.queue: deque[tuple[int, int, bytes]] = deque()
        self.decided = 0
        self.heartbeat: bytes | None = None
        while True:
            self.pump()
            leaders = [i for i, n in self.nodes.items() if n.is_leader]
            if len(leaders) == 1 and all(n.leader == leaders[0] for n in self.nodes.values()):
                self.leader = leaders[0]
                break
            self.now = max(self.now, min(n.next_deadline for n in self.nodes.values()))
            for i, n in self.nodes.items():
                if n.next_deadline <= self.now:
                    n.tick(self.now)
                    self.drain(i)

    def drain(self, i: int) -> None:
        for out in self.nodes[i].poll():
            if out[0] == "send":
                self.queue.append((i, out[1], out[2]))
            elif out[0] == "decided" and i == getattr(self, "leader", None):
                self.decided += len(out[2])

    def pump(self) -> None:
        q, nodes, now = self.queue, self.nodes, self.now
        while q:
            frm, to, data = q.popleft()
            nodes[to].step(frm, data, now)
            self.drain(to)

    def capture_heartbeat(self) -> tuple[int, bytes]:
        """A heartbeat the leader sends to a follower (ticks until it does)."""
        while True:
            self.now = self.nodes[self.leader].next_deadline
            self.nodes[self.leader].tick(self.now)
            for out in self.nodes[self.leader].poll():
                if out[0] == "send":
                    self.queue.append((self.leader, out[1], out[2]))
            for frm, to, data in self.queue:
                if frm == self.leader:
                    self.queue.clear()
                    return to, data
            self.queue.clear()


def trio_rate(max_batch: int, commands: int, seconds: float) -> float:
    """Commands decided per CPU second, 3 replicas driven from Python."""
    trio = Trio(max_batch)
    lead = trio.nodes[trio.leader]
    cmds = [b"cmd-%06d" % k for k in range(commands)]
    done = 0
    t = time.thread_time()
    while time.thread_time() - t < seconds:
        want = trio.decided + commands
        for c in cmds:
            lead.propose(c, trio.now)
        trio.drain(trio.leader)
        trio.pump()
        assert trio.decided == want
        done += commands
    return done / (time.thread_time() - t)


def cluster_rate(commands: int, seconds: float) -> tuple[float, float]:
    """Commands decided per CPU second and simulated seconds per CPU second."""
    done = 0
    sim = 0.0
    t = time.thread_time()
    seed = 0
    while time.thread_time() - t < seconds:
        c = qk.PaxosCluster(3, seed=seed)
        seed += 1
        c.run_until(lambda cl: cl.leader() is not None, timeout=5.0)
        last = b""
        for k in range(commands):
            last = b"c%d-%d" % (seed, k)
            c.propose(last, node=c.leader())
        assert c.run_until_decided(last, timeout=30.0)
        c.check()
        done += commands
        sim += c.now
    cpu = time.thread_time() - t
    return done / cpu, sim / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    args = ap.parse_args()
    s = 0.2 if args.quick else 1.0

    trio = Trio(64)
    follower = next(i for i in MEMBERS if i != trio.leader)
    to, hb = trio.capture_heartbeat()
    node = trio.nodes[to]
    now = trio.now

    def step_poll() -> None:
        node.step(trio.leader, hb, now)
        node.poll()

    idle = trio.nodes[follower]
    rows = [
        ("PaxosNode.tick (nothing due)", per_call(lambda: idle.tick(now), s), "call"),
        ("PaxosNode.commit_index", per_call(lambda: idle.commit_index, s), "call"),
        ("PaxosNode.step(heartbeat) + poll()", per_call(step_poll, s), "call"),
    ]
    print(f"quorumkit {qk.__version__}: Paxos from Python")
    print(f"{'what':<48} {'per op':>12} {'ops/s':>14}")
    for name, sec, _ in rows:
        print(f"{name:<48} {sec * 1e9:>9.0f} ns {1 / sec:>14,.0f}")
    for name, rate in [
        ("3 PaxosNodes over bytes, max_batch=1", trio_rate(1, 64, 2 * s)),
        ("3 PaxosNodes over bytes, max_batch=64", trio_rate(64, 1024, 2 * s)),
    ]:
        print(f"{name:<48} {1e9 / rate:>9.0f} ns {rate:>14,.0f}  commands decided")
    rate, speed = cluster_rate(200, 2 * s)
    print(f"{'PaxosCluster(3): 200 commands per run':<48} {1e9 / rate:>9.0f} ns {rate:>14,.0f}  commands decided"
          f" ({speed:,.0f} simulated s per CPU s)")


if __name__ == "__main__":
    main()
