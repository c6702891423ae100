#!/usr/bin/env python3
"""quorumkit's LeaseTable side by side with Python's lock peers, in one run.

    .venv/bin/python bench/lease_vs_peers.py                # about 20 s
    .venv/bin/python bench/lease_vs_peers.py --quick --json out.json

Compared: quorumkit ``LeaseTable`` (in-process leases with fencing tokens) and
``RedisLeaseTable`` (the same leases kept in Redis),
``threading.Lock`` (the floor: no TTL, no token, not distributed), redis-py's
``Lock`` and python-redis-lock's ``Lock`` against a ``redis-server`` that this
script starts on a free loopback port (``--save "" --appendonly no``) and stops
by its PID at exit. The two Redis locks pay a loopback round trip per call:
that is the price quorumkit's in-process table avoids until the lease table is
replicated (later issues), and the comparison says how large it is.

Measured per lock:
  * uncontended acquire+release per second (one thread, one resource);
  * 8 threads on 8 resources and 8 threads on 1 resource, acquire+release per
    second summed over the threads (fixed wall time per case);
  * release -> waiter hand-off latency: a holder releases while one waiter is
    blocked in acquire; the time from just before release() to just after the
    waiter's acquire() returns, p50 and p99.

redis-py's blocking ``Lock.acquire`` polls (it sleeps ``sleep`` seconds between
tries, 0.1 s by default); it is given ``sleep=0.001`` here, which flatters its
hand-off latency and costs it CPU. python-redis-lock wakes waiters with BLPOP.
quorumkit's ratios are against each peer measured in the same run: on a shared
machine absolute numbers drift, ratios less.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import quorumkit as qk

THREADS = 8
TTL = 30.0  # seconds: long enough that no lease expires during a measurement


# ---------------------------------------------------------------- redis-server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_redis_server() -> str | None:
    """The redis-server binary, installed from Debian's packages if missing."""
    path = shutil.which("redis-server")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("redis-server missing: apt-get install -y redis-server", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False, env=env,
                       stdout=subprocess.DEVNULL)
    return shutil.which("redis-server")


@contextlib.contextmanager
def redis_server() -> Iterator[int | None]:
    """A throwaway redis-server on a loopback port; yields the port (None if unavailable)."""
    binary = ensure_redis_server()
    if binary is None:
        print("redis-server unavailable: the Redis rows are skipped", file=sys.stderr)
        yield None
        return
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.02)
        client.close()
        yield port
    finally:
        # Stop exactly the server this script started.
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------- the locks


@dataclass
class Impl:
    label: str
    # make(resource, owner) -> (acquire, release): blocking acquire, release of what it got.
    make: Callable[[str, str], tuple[Callable[[], Any], Callable[[Any], None]]]
    scale: float = 1.0  # fraction of the iteration counts (slow peers run fewer)
    results: dict[str, Any] = field(default_factory=dict)


def quorumkit_impl() -> Impl:
    table = qk.LeaseTable()

    def make(resource: str, owner: str):
        return functools.partial(table.acquire, resource, owner, TTL), table.release

    return Impl("quorumkit LeaseTable", make)


def threading_impl() -> Impl:
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def make(resource: str, owner: str):
        with guard:
            lock = locks.setdefault(resource, threading.Lock())
        acq, rel = lock.acquire, lock.release
        return acq, (lambda _: rel())

    return Impl("threading.Lock", make)


def redis_py_impl(port: int) -> Impl:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, max_connections=64)

    def make(resource: str, owner: str):
        lock = client.lock(f"rp:{resource}", timeout=TTL, sleep=0.001)
        return functools.partial(lock.acquire, blocking=True), (lambda _: lock.release())

    return Impl("redis-py Lock", make, scale=0.02)


def python_redis_lock_impl(port: int) -> Impl:
    import redis
    import redis_lock

    client = redis.Redis(host="127.0.0.1", port=port, max_connections=64)

    def make(resource: str, owner: str):
        # One Lock object per thread (it holds that holder's id).
        lock = redis_lock.Lock(client, f"prl:{resource}", expire=int(TTL))
        return functools.partial(lock.acquire, blocking=True), (lambda _: lock.release())

    return Impl("python-redis-lock", make, scale=0.02)


def quorumkit_redis_impl(port: int) -> Impl:
    table = qk.RedisLeaseTable(f"redis://127.0.0.1:{port}", namespace="bench")

    def make(resource: str, owner: str):
        return functools.partial(table.acquire, resource, owner, TTL), table.release

    return Impl("quorumkit RedisLeaseTable", make, scale=0.02)


def ping_rate(port: int, n: int) -> float:
    """Round trips per second of one client on one connection (PING)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    client.ping()
    t0 = time.perf_counter()
    for _ in range(n):
        client.ping()
    return n / (time.perf_counter() - t0)


# ---------------------------------------------------------------- measurements


def uncontended(impl: Impl, n: int) -> float:
    acquire, release = impl.make("res-solo", "solo")
    for _ in range(min(n, 1000)):  # warm-up
        release(acquire())
    gc.disable()
    try:
        t = time.perf_counter()
        for _ in range(n):
            release(acquire())
        return n / (time.perf_counter() - t)
    finally:
        gc.enable()


def threaded(impl: Impl, resources: int, seconds: float) -> float:
    """acquire+release per second summed over THREADS threads on `resources` resources."""
    counts = [0] * THREADS
    start = threading.Barrier(THREADS + 1)
    stop = threading.Event()

    def worker(i: int) -> None:
        acquire, release = impl.make(f"res-{resources}-{i % resources}", f"owner-{i}")
        n = 0
        start.wait()
        while not stop.is_set():
            for _ in range(16):
                release(acquire())
            n += 16
        counts[i] = n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def handoff(impl: Impl, rounds: int) -> tuple[float, float]:
    """p50 and p99 (µs) from just before release() to the blocked waiter's return."""
    holder_acq, holder_rel = impl.make("res-handoff", "holder")
    waiter_acq, waiter_rel = impl.make("res-handoff", "waiter")
    samples: list[float] = []
    go, ready, got, done = (threading.Event() for _ in range(4))
    released_at = [0]
    got_at = [0]

    def waiter() -> None:
        for _ in range(rounds):
            go.wait()
            go.clear()
            ready.set()
            lease = waiter_acq()
            got_at[0] = time.perf_counter_ns()
            got.set()
            waiter_rel(lease)
            done.set()

    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(rounds):
        held = holder_acq()
        go.set()
        ready.wait()
        ready.clear()
        time.sleep(0.002)  # let the waiter block inside acquire()
        released_at[0] = time.perf_counter_ns()
        holder_rel(held)
        got.wait()
        got.clear()
        samples.append((got_at[0] - released_at[0]) / 1000)
        done.wait()
        done.clear()
    t.join()
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


# ---------------------------------------------------------------- report


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M/s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k/s"
    return f"{x:.0f}/s"


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "—"
    r = a / b
    return f"{r:,.0f}×" if r >= 100 else f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def report(impls: list[Impl]) -> str:
    qk_r = impls[0].results
    lines = [
        "| lock | uncontended acq+rel | 8 threads / 8 resources | 8 threads / 1 resource "
        "| hand-off p50 | hand-off p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for impl in impls:
        r = impl.results
        lines.append(
            f"| {impl.label} | {fmt_rate(r['uncontended'])} | {fmt_rate(r['t8r8'])} "
            f"| {fmt_rate(r['t8r1'])} | {r['p50']:.1f} µs | {r['p99']:.1f} µs |"
        )
    lines += [
        "",
        "quorumkit ÷ peer (throughput: higher is better for quorumkit; latency: peer ÷ quorumkit):",
        "",
        "| vs | uncontended | 8 threads / 8 resources | 8 threads / 1 resource | hand-off p50 | hand-off p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for impl in impls[1:]:
        r = impl.results
        lines.append(
            f"| {impl.label} | {ratio(qk_r['uncontended'], r['uncontended'])} "
            f"| {ratio(qk_r['t8r8'], r['t8r8'])} | {ratio(qk_r['t8r1'], r['t8r1'])} "
            f"| {ratio(r['p50'], qk_r['p50'])} | {ratio(r['p99'], qk_r['p99'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--no-redis", action="store_true", help="skip the Redis peers")
    ap.add_argument("--json", help="also write the raw numbers here")
    args = ap.parse_args()
    n = 200_000 if args.quick else 2_000_000
    seconds = 0.5 if args.quick else 2.0
    rounds = 100 if args.quick else 500

    print(f"quorumkit {qk.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs\n", flush=True)
    with contextlib.ExitStack() as stack:
        port = None if args.no_redis else stack.enter_context(redis_server())
        impls = [quorumkit_impl(), threading_impl()]
        if port is not None:
            impls += [redis_py_impl(port), python_redis_lock_impl(port), quorumkit_redis_impl(port)]
        for impl in impls:
            r = impl.results
            r["uncontended"] = uncontended(impl, max(1000, int(n * impl.scale)))
            r["t8r8"] = threaded(impl, THREADS, seconds)
            r["t8r1"] = threaded(impl, 1, seconds)
            r["p50"], r["p99"] = handoff(impl, max(50, int(rounds * max(impl.scale * 10, 0.2))))
            print(f"  {impl.label}: {fmt_rate(r['uncontended'])} uncontended, "
                  f"{fmt_rate(r['t8r8'])} 8/8, {fmt_rate(r['t8r1'])} 8/1, "
                  f"hand-off p50 {r['p50']:.1f} µs p99 {r['p99']:.1f} µs", flush=True)

        ping = ping_rate(port, 2000 if args.quick else 20000) if port is not None else None

    print()
    print(report(impls))
    qr = next((i for i in impls if i.label == "quorumkit RedisLeaseTable"), None)
    if qr is not None:
        print("\nquorumkit RedisLeaseTable ÷ Redis peer (same server, same run):\n")
        print("| vs | uncontended | 8 threads / 8 resources | 8 threads / 1 resource | hand-off p50 | hand-off p99 |")
        print("|---|---:|---:|---:|---:|---:|")
        for impl in impls:
            if impl.label in ("redis-py Lock", "python-redis-lock"):
                r, q2 = impl.results, qr.results
                print(f"| {impl.label} | {ratio(q2['uncontended'], r['uncontended'])} "
                      f"| {ratio(q2['t8r8'], r['t8r8'])} | {ratio(q2['t8r1'], r['t8r1'])} "
                      f"| {ratio(r['p50'], q2['p50'])} | {ratio(r['p99'], q2['p99'])} |")
        pairs = qr.results["uncontended"]
        print(f"\nPING (redis-py, one connection) {fmt_rate(ping)}; RedisLeaseTable acquire+release {fmt_rate(pairs)} "
              f"= {pairs / (ping / 2):.2f} x (PING/s / 2) (goal >= 0.9)")
    q = impls[0].results
    redis_py = next((i.results for i in impls if i.label == "redis-py Lock"), None)
    print("\ntargets:")
    print(f"  Python uncontended >= 1 M/s: {fmt_rate(q['uncontended'])} "
          f"{'met' if q['uncontended'] >= 1e6 else 'NOT met'}")
    if redis_py:
        x = q["uncontended"] / redis_py["uncontended"]
        print(f"  >= 300x redis-py Lock: {x:,.0f}x {'met' if x >= 300 else 'NOT met'}")
    print(f"  hand-off p50 <= 100 µs: {q['p50']:.1f} µs {'met' if q['p50'] <= 100 else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({i.label: i.results for i in impls}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
