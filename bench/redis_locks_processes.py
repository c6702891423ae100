#!/usr/bin/env python3
"""Redis locks across OS processes: quorumkit's RedisLeaseTable beside
redis-py's Lock, python-redis-lock and pottery's Redlock, in one run.

    .venv/bin/python bench/redis_locks_processes.py           # about 1 minute
    .venv/bin/python bench/redis_locks_processes.py --quick   # a smoke run

Every lock runs against the same redis-server, which this script starts on a
free loopback port (``--save "" --appendonly no``) and stops by its PID.

Measured per lock:
  * uncontended acquire+release per second (one process, one resource),
    beside the same client's PING round trips per second: a pair costs two
    round trips, so the ceiling is PING/s / 2 (goal: quorumkit >= 0.9 x that);
  * N processes (default 8) on 1 resource for a fixed wall time: grants per
    second, and the hand-off latency (from the holder's release() call to the
    next holder's acquire() return, when that one was already waiting), p50
    and p99, on CLOCK_MONOTONIC, which every process shares;
  * CPU per acquire+release: the workers' own CPU time and redis-server's
    (INFO cpu), each divided by the grants.

redis-py's blocking acquire polls (``sleep=0.001`` here, 0.1 s by default);
pottery's Redlock polls with a random sleep of up to 0.2 s; python-redis-lock
and quorumkit wake waiters through a blocking list pop. The ratios are against
each peer measured in the same run: on a shared machine absolute numbers drift.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lease_vs_peers import ping_rate, redis_server  # noqa: E402  (shared with that benchmark)

TTL = 10.0
IMPLS = ["quorumkit", "redis-py", "python-redis-lock", "pottery"]
LABELS = {
    "quorumkit": "quorumkit RedisLeaseTable",
    "redis-py": "redis-py Lock (sleep=0.001)",
    "python-redis-lock": "python-redis-lock",
    "pottery": "pottery Redlock",
}


def make_lock(impl: str, port: int, resource: str, owner: str):
    """(acquire, release) for one holder of `resource`."""
    if impl == "quorumkit":
        import quorumkit as qk

        table = qk.RedisLeaseTable(f"redis://127.0.0.1:{port}", namespace="bench")
        return (lambda: table.acquire(resource, owner, TTL)), table.release
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    if impl == "redis-py":
        lock = client.lock(f"rp:{resource}", timeout=TTL, sleep=0.001)
        return (lambda: lock.acquire(blocking=True)), (lambda _: lock.release())
    if impl == "python-redis-lock":
        import redis_lock

        prl = redis_lock.Lock(client, f"prl:{resource}", expire=int(TTL))
        return (lambda: prl.acquire(blocking=True)), (lambda _: prl.release())
    if impl == "pottery":
        from pottery import Redlock

        rl = Redlock(key=f"pot:{resource}", masters={client}, auto_release_time=TTL)
        return (lambda: rl.acquire(blocking=True)), (lambda _: rl.release())
    raise ValueError(impl)


def uncontended(impl: str, port: int, n: int) -> float:
    acquire, release = make_lock(impl, port, "solo", "solo")
    for _ in range(min(n // 10, 200)):
        release(acquire())
    t0 = time.perf_counter()
    for _ in range(n):
        release(acquire())
    return n / (time.perf_counter() - t0)


def worker(impl: str, port: int, me: str, start_ns: int, seconds: float) -> None:
    """One contending process: prints its grants and CPU time as JSON."""
    acquire, release = make_lock(impl, port, "shared", me)
    end_ns = start_ns + int(seconds * 1e9)
    while time.monotonic_ns() < start_ns:
        time.sleep(0.0005)
    cpu0 = time.process_time()
    grants = []
    while True:
        invoked = time.monotonic_ns()
        if invoked >= end_ns:
            break
        held = acquire()
        acquired = time.monotonic_ns()
        releasing = time.monotonic_ns()
        release(held)
        grants.append((invoked, acquired, releasing))
    print(json.dumps({"grants": grants, "cpu": time.process_time() - cpu0}))


def server_cpu(port: int) -> float:
    import redis

    info = redis.Redis(host="127.0.0.1", port=port).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def contended(impl: str, port: int, procs: int, seconds: float) -> dict:
    start_ns = time.monotonic_ns() + 1_500_000_000  # time for every process to import and connect
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", impl, str(port), f"p{i}", str(start_ns), str(seconds)],
            stdout=subprocess.PIPE, text=True)
        for i in range(procs)
    ]
    while time.monotonic_ns() < start_ns:
        time.sleep(0.01)
    cpu0 = server_cpu(port)
    results = []
    for c in children:
        out, _ = c.communicate(timeout=seconds + 120)
        if c.returncode != 0:
            raise RuntimeError(f"{impl} worker failed ({c.returncode})")
        results.append(json.loads(out))
    server = server_cpu(port) - cpu0
    grants = sorted((tuple(g) for r in results for g in r["grants"]), key=lambda g: g[1])
    n = len(grants)
    # Hand-off: the next holder was already waiting when the previous one released.
    handoffs = sorted(
        (b[1] - a[2]) / 1000 for a, b in zip(grants, grants[1:]) if b[0] < a[2] and b[1] >= a[2]
    )
    return {
        "rate": n / seconds,
        "grants": n,
        "p50": statistics.median(handoffs) if handoffs else float("nan"),
        "p99": handoffs[min(len(handoffs) - 1, int(len(handoffs) * 0.99))] if handoffs else float("nan"),
        "handoffs": len(handoffs),
        "client_cpu_us": sum(r["cpu"] for r in results) / max(n, 1) * 1e6,
        "server_cpu_us": server / max(n, 1) * 1e6,
    }


def fmt_rate(x: float) -> str:
    return f"{x / 1e3:.1f} k/s" if x >= 1e3 else f"{x:.0f}/s"


def ratio(a: float, b: float) -> str:
    if not b or b != b:
        return "—"
    r = a / b
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, port, me, start_ns, seconds = sys.argv[2:7]
        worker(impl, int(port), me, int(start_ns), float(seconds))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--procs", type=int, default=8, help="contending processes (default 8)")
    ap.add_argument("--json", help="also write the raw numbers here")
    args = ap.parse_args()
    n = 2000 if args.quick else 20000
    seconds = 2.0 if args.quick else 5.0

    import quorumkit as qk

    print(f"quorumkit {qk.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs; {args.procs} processes on 1 resource\n", flush=True)
    results: dict[str, dict] = {}
    with redis_server() as port:
        if port is None:
            print("no redis-server: nothing to measure", file=sys.stderr)
            return 1
        ping = ping_rate(port, n)
        for impl in IMPLS:
            # pottery's polling acquire is slow: fewer uncontended pairs.
            r = {"uncontended": uncontended(impl, port, n if impl != "pottery" else max(500, n // 4))}
            r.update(contended(impl, port, args.procs, seconds))
            results[impl] = r
            print(f"  {LABELS[impl]}: {fmt_rate(r['uncontended'])} uncontended, {fmt_rate(r['rate'])} "
                  f"with {args.procs} processes, hand-off p50 {r['p50']:.0f} µs p99 {r['p99']:.0f} µs "
                  f"({r['handoffs']} hand-offs), CPU {r['client_cpu_us']:.0f} µs client + "
                  f"{r['server_cpu_us']:.0f} µs server per pair", flush=True)

    print(f"\nPING (redis-py, one connection): {fmt_rate(ping)}; ceiling for a pair: {fmt_rate(ping / 2)}\n")
    print(f"| lock | uncontended acq+rel | ÷ (PING/s ÷ 2) | {args.procs} processes / 1 resource "
          "| hand-off p50 | hand-off p99 | client CPU / pair | server CPU / pair |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for impl in IMPLS:
        r = results[impl]
        print(f"| {LABELS[impl]} | {fmt_rate(r['uncontended'])} | {r['uncontended'] / (ping / 2):.2f} "
              f"| {fmt_rate(r['rate'])} | {r['p50']:.0f} µs | {r['p99']:.0f} µs "
              f"| {r['client_cpu_us']:.0f} µs | {r['server_cpu_us']:.0f} µs |")
    q = results["quorumkit"]
    print("\nquorumkit ÷ peer (throughput: quorumkit ÷ peer; latency and CPU: peer ÷ quorumkit):\n")
    print(f"| vs | uncontended | {args.procs} processes | hand-off p50 | hand-off p99 | client CPU | server CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for impl in IMPLS[1:]:
        r = results[impl]
        print(f"| {LABELS[impl]} | {ratio(q['uncontended'], r['uncontended'])} | {ratio(q['rate'], r['rate'])} "
              f"| {ratio(r['p50'], q['p50'])} | {ratio(r['p99'], q['p99'])} "
              f"| {ratio(r['client_cpu_us'], q['client_cpu_us'])} | {ratio(r['server_cpu_us'], q['server_cpu_us'])} |")
    print(f"\ntargets: uncontended >= 0.9 x (PING/s / 2): {q['uncontended'] / (ping / 2):.2f}; "
          f"hand-off p99 <= 2 ms with {args.procs} processes: {q['p99'] / 1000:.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ping": ping, "procs": args.procs, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
