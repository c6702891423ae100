#!/usr/bin/env python3
"""quorumkit in one minute: consistent hashing that moves only what it must,
and lock leases whose fencing tokens stop a paused holder's late write — in
one process, across processes through a redis-server the demo starts, and
through three `quorumkit serve` replicas while one is killed and one paused.

Run with `make demo` (builds the package first) or `.venv/bin/python examples/demo.py`.
Exits non-zero if an invariant does not hold.
"""

import random
import sys

import quorumkit as qk

failures = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)


print(f"quorumkit {qk.__version__}\n")

# 1. A ring of five cache nodes (160 virtual nodes each, xxh3-64 placement).
ring = qk.HashRing(["cache-a", "cache-b", "cache-c", "cache-d", "cache-e"])
print(repr(ring))
for key in ["user:42", "user:43", "session:9f1c", "cart:1001", "cart:1002",
            "img/logo.png", "img/hero.jpg", "feed:home", "feed:sports", "ключ"]:
    print(f"  {key:<14} -> {ring.get_node(key)}")

# 2. A preference list: three distinct nodes for one key (e.g. for replicas).
replicas = ring.get_nodes("user:42", 3)
print(f"\nget_nodes('user:42', 3) = {replicas}")
check(len(set(replicas)) == 3 and replicas[0] == ring.get_node("user:42"),
      "three distinct nodes, the first is get_node's")

# 3. Remove a node: only its own keys move, and they spread over the others.
rng = random.Random(7)
keys = [f"key-{rng.getrandbits(64):016x}" for _ in range(100_000)]
before = ring.get_node_batch(keys)
ring.remove_node("cache-c")
after = ring.get_node_batch(keys)
moved = [i for i, (b, a) in enumerate(zip(before, after)) if b != a]
print(f"\nremove_node('cache-c'): {len(moved):,} of {len(keys):,} keys moved "
      f"({len(moved) / len(keys):.1%}; ideal 1/5 = 20.0%)")
check(all(before[i] == "cache-c" for i in moved), "every moved key was on cache-c")
check(all(a != "cache-c" for a in after), "no key is left on cache-c")
check(abs(len(moved) / len(keys) - 0.2) < 0.05, "the moved fraction is close to 1/5")
landed = {n: sum(after[i] == n for i in moved) for n in ring.nodes}
print(f"  cache-c's keys went to: {landed}")

# 4. Ketama, bit-exact with libmemcached's weighted ketama: a drop-in for a
#    memcached client's server selection.
servers = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11212"]
k = qk.KetamaRing(servers, compat="libmemcached")
print(f"\n{k!r}")
for key in ["user:42", "session:9f1c"]:
    print(f"  {key:<14} -> {k.get_node(key)}  (ketama hash {qk.ketama_hash(key):#010x})")
check(k.get_node("user:42") in servers, "ketama lookups return one of the servers")

# 5. Lock leases: an expiring lock with a fencing token. A holder that pauses
#    past its TTL loses the lease; the protected store's Fence refuses its
#    stale token. Waiters are served first come, first served.
print("\nlock leases")
clock = qk.ManualClock()  # time moves only when told to: the demo is deterministic
table = qk.LeaseTable(clock)
store, fence = {"balance": 100}, qk.Fence()


def fenced_write(lease: qk.Lease, value: int) -> bool:
    try:
        fence.check("balance", lease.token)
    except qk.StaleTokenError as e:
        print(f"  store refuses {lease.owner}'s write: {e}")
        return False
    store["balance"] = value
    return True


a = table.acquire("balance", "worker-a", ttl=10.0)
print(f"  {a!r}")
seen = store["balance"]
clock.advance(15.0)  # worker-a stalls (a GC pause) past its 10 s TTL ...
check(a.lost, "worker-a's lease is lost after its TTL")
b = table.acquire("balance", "worker-b", ttl=10.0, timeout=0)  # ... so worker-b gets it
check(b.token > a.token, f"worker-b's token {b.token} is newer than worker-a's {a.token}")
check(fenced_write(b, seen + 50), "worker-b's write goes through")
check(not fenced_write(a, seen - 30), "worker-a's late write is rejected by the fence")
check(store["balance"] == 150, "the balance keeps worker-b's update")

# A fair hand-off: three threads queue while worker-b holds the lease; each
# release wakes exactly the next one in arrival order.
import threading  # noqa: E402

order: list[str] = []


def wait_turn(name: str) -> None:
    lease = table.acquire("balance", name, ttl=10.0)
    order.append(name)
    table.release(lease)


waiters = []
for name in ["c", "d", "e"]:
    t = threading.Thread(target=wait_turn, args=(f"worker-{name}",))
    t.start()
    waiters.append(t)
    while table.queued("balance") < len(waiters):  # let it join the queue
        threading.Event().wait(0.001)
table.release(b)
for t in waiters:
    t.join()
print(f"  hand-off order: {order}")
check(order == ["worker-c", "worker-d", "worker-e"], "waiters are served in arrival order")


def paxos_part() -> None:
    """Three replicas agree on a log; the leader crashes and a new one carries on."""
    print("\nPaxos: a simulated 3-replica cluster (seeded: the same run every time)")
    c = qk.PaxosCluster(3, seed=2026, loss=0.01)
    for k in range(5):
        c.propose(f"set x={k}")
    decided = c.run_until(lambda cl: len(cl.decided()) == 5, timeout=5.0)
    old = c.leader()
    print(f"  t={c.now:.3f}s leader: node {old}; decided (proposed at random replicas, one order for all): "
          f"{[v.decode() for v in c.decided()]}")
    check(decided and old is not None, "five commands are decided under one leader")
    assert old is not None
    c.crash(old)
    print(f"  node {old} (the leader) crashes")
    elected = c.run_until(lambda cl: cl.leader() not in (None, old), timeout=5.0)
    new = c.leader()
    print(f"  t={c.now:.3f}s new leader: node {new}")
    check(elected and new != old, "the surviving replicas elect a new leader")
    for k in range(5, 8):
        c.propose(f"set x={k}")
    c.run_until(lambda cl: len(cl.decided()) == 8, timeout=5.0)
    c.restart(old)
    c.run_for(1.0)
    logs = [c.decided(i) for i in range(3)]
    print(f"  t={c.now:.3f}s node {old} restarted; every log: {[v.decode() for v in logs[0]]}")
    check(len(logs[0]) == 8 and logs[0] == logs[1] == logs[2],
          "every replica, the restarted one too, holds the same 8 commands in the same order")
    try:
        c.check()
        verdict = "no violation (agreement, validity, order, leases)"
    except qk.SimulationViolation as e:
        verdict = f"VIOLATION: {e}"
    print(f"  checker: {verdict}; stats: {c.stats()['sent']} messages, "
          f"{c.stats()['lost']} lost")
    check(verdict.startswith("no violation"), "the checkers found no violation")


paxos_part()
def demo_transactions() -> None:
    """Two-phase commit blocks when its coordinator dies after every
    participant voted yes; Paxos Commit, with the same crash and one of its
    three acceptors down too, still commits."""
    print("\nTransactions: the coordinator crashes right after the last yes vote")
    results = {}
    for proto in ("2pc", "paxos-commit"):
        sim = qk.CommitSimulation(proto, participants=3, seed=7)
        if sim.acceptors:
            sim.crash(sim.acceptors[0])  # F = 1: one of three acceptors is down
        sim.crash_coordinator_after_votes()
        sim.begin(1)  # every participant votes yes
        sim.run(10.0)  # ten simulated seconds
        states = [sim.state(p, 1) for p in sim.participants]
        results[proto] = states
        print(f"  {proto:<13} after {sim.now:.0f} s: participants {states}, "
              f"{sim.stats['sent']} messages")
    check(results["2pc"] == ["prepared"] * 3,
          "2PC blocks: every participant is still in doubt")
    check(results["paxos-commit"] == ["committed"] * 3,
          "Paxos Commit decides without the coordinator (F = 1)")
    runs = [qk.CommitSimulation.random_run(p, seed) for p in ("2pc", "paxos-commit")
            for seed in range(200)]
    crashes = sum(r["crashes"] for r in runs)
    lost = sum(r["lost"] for r in runs)
    dups = sum(r["duplicated"] for r in runs)
    print(f"  {len(runs)} random runs: {crashes} crashes, {lost} messages lost, "
          f"{dups} duplicated")
    check(all(r["violation"] is None for r in runs),
          "no run broke atomicity, validity or termination")


demo_transactions()


# 7. Leases across processes, through Redis: two worker processes contend for
#    one lease in a redis-server this demo starts (loopback, temp dir). The
#    holder is paused (SIGSTOP) past its TTL; the waiter gets the lease with a
#    higher token; when the holder wakes, its late write is refused by the
#    store's Fence.
REDIS_WORKER = r"""
import sys, time
import quorumkit as qk
url, me, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
table = qk.RedisLeaseTable(url, namespace="demo")
lease = table.acquire("ledger", me, ttl=1.0, timeout=10)
print("granted", lease.token, flush=True)
time.sleep(pause)  # the work; a SIGSTOP here outlives the lease
print("write", lease.token, me, flush=True)
try:
    table.release(lease)
except qk.QuorumkitError as e:
    print("release", type(e).__name__, flush=True)
"""


def demo_redis() -> None:
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    print("\nLeases across processes: two workers share one lease through Redis")
    binary = shutil.which("redis-server")
    if binary is None:
        check(False, "redis-server is installed (make sysdeps installs it)")
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="qk-demo-redis-")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    workers = []
    try:
        table = qk.RedisLeaseTable(url, namespace="demo")
        for _ in range(500):
            try:
                table.ping()
                break
            except qk.BackendUnavailableError:
                time.sleep(0.01)

        def spawn(name: str, pause: float) -> subprocess.Popen:
            p = subprocess.Popen([sys.executable, "-c", REDIS_WORKER, url, name, str(pause)],
                                 stdout=subprocess.PIPE, text=True)
            workers.append(p)
            return p

        def line(p: subprocess.Popen) -> list:
            return p.stdout.readline().split()

        a = spawn("worker-a", 0.5)
        token_a = int(line(a)[1])
        b = spawn("worker-b", 0.0)
        for _ in range(500):
            if table.queued("ledger") == 1:
                break
            time.sleep(0.01)
        os.kill(a.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        print(f"  worker-a (pid {a.pid}) holds the lease with token {token_a}; "
              f"worker-b (pid {b.pid}) waits; worker-a is paused (SIGSTOP)")
        granted = line(b)
        waited = time.monotonic() - stopped
        token_b = int(granted[1])
        print(f"  worker-b granted token {token_b} after {waited:.2f} s (the 1 s TTL ran out)")
        fence, store = qk.Fence(), {}

        def apply(words: list) -> bool:
            _, token, who = words
            try:
                fence.check("ledger", int(token))
            except qk.StaleTokenError:
                return False
            store["ledger"] = who
            return True

        ok_b = apply(line(b))
        os.kill(a.pid, signal.SIGCONT)
        ok_a = apply(line(a))
        after = line(a)
        print(f"  store: worker-b's write {'applied' if ok_b else 'refused'}; worker-a wakes, "
              f"its late write with token {token_a} is {'applied' if ok_a else 'refused'}; "
              f"its release says {after[1] if len(after) > 1 else after}")
        check(token_b > token_a and waited >= 0.5, "the waiter got the lease only after the TTL, "
              "with a higher token")
        check(ok_b and not ok_a and store["ledger"] == "worker-b",
              "the paused holder's late write was fenced off")
    finally:
        for p in workers:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            p.wait(5)
        server.kill()
        server.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


demo_redis()


def demo_service() -> None:
    import os
    import pathlib
    import shutil
    import signal
    import socket
    import subprocess
    import tempfile
    import threading
    import time

    print("\nA replicated lease service: three `quorumkit serve` processes, one killed, one paused")
    binary = os.environ.get("QK_BIN") or str(
        pathlib.Path(__file__).resolve().parents[1] / "target" / "release" / "quorumkit")
    if not os.path.exists(binary):
        check(False, f"{binary} is built (make demo builds it)")
        return
    ports = {}
    for i in (1, 2, 3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports[i] = sock.getsockname()[1]
    peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in ports.items())
    secret = "demo-cluster-secret-0123"
    env = dict(os.environ, QK_CLUSTER_SECRET=secret)
    workdir = tempfile.mkdtemp(prefix="qk-demo-serve-")
    procs = {}

    def start(i: int, init: bool) -> None:
        procs[i] = subprocess.Popen(
            [binary, "serve", "--state", "lease", "--id", str(i), "--peers", peers, "--heartbeat-ms", "20",
             "--data", f"{workdir}/r{i}"] + (["--init"] if init else []), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def leader() -> int:
        out = subprocess.run([binary, "status", "--peers", peers], env=env, capture_output=True,
                             text=True, timeout=10).stdout
        for row in out.splitlines()[1:]:
            cols = row.split()
            if len(cols) >= 3 and cols[2].isdigit():
                return int(cols[2])
        return 0

    holds, lock, stop = [], threading.Lock(), threading.Event()
    fence, ledger = qk.Fence(), {"balance": 0, "writes": 0}

    def worker(name: str) -> None:
        client = qk.LeaseClient([f"127.0.0.1:{p}" for p in ports.values()], secret=secret, timeout=10)
        end = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < end:
            try:
                lease = client.acquire("ledger", name, ttl=0.5, timeout=5)
            except (qk.LockTimeoutError, qk.BackendUnavailableError):
                continue
            got = time.monotonic()
            valid_until = got + lease.remaining()
            # A read-modify-write on the store, fenced at the read and at the
            # write: a newer holder's read makes an older holder's write fail.
            try:
                fence.check("ledger", lease.token)
                seen = ledger["balance"]
                time.sleep(0.002)
                if lease.valid:
                    fence.check("ledger", lease.token)
                    ledger["balance"] = seen + 1
                    ledger["writes"] += 1
            except qk.StaleTokenError:
                pass
            # A grant learned only after its validity ended (the reply was
            # held up by the paused leader) was never acted on: no hold.
            if got < valid_until:
                with lock:
                    holds.append((lease.token, got, min(time.monotonic(), valid_until)))
            try:
                client.release(lease)
            except qk.QuorumkitError:
                pass

    try:
        for i in ports:
            start(i, init=True)
        threads = [threading.Thread(target=worker, args=(f"worker-{w}",)) for w in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        first = leader()
        victim = first or 1
        os.kill(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait(5)
        print(f"  replica {victim} (the leader, pid {procs[victim].pid}) killed with SIGKILL")
        time.sleep(1.0)
        start(victim, init=False)
        paused = leader() or next(i for i in ports if i != victim)
        print(f"  replica {victim} restarted from its data directory; replica {paused} leads")
        os.kill(procs[paused].pid, signal.SIGSTOP)
        print(f"  replica {paused} (the leader) paused with SIGSTOP for 1 s")
        time.sleep(1.0)
        os.kill(procs[paused].pid, signal.SIGCONT)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        holds.sort()
        tokens_rise = all(a[0] < b[0] for a, b in zip(holds, holds[1:]))
        # In token order, each hold must end before the next one starts.
        overlaps = sum(1 for a, b in zip(holds, holds[1:]) if a[2] > b[1])
        print(f"  {len(holds)} holds by 3 workers; tokens {holds[0][0] if holds else '-'}.."
              f"{holds[-1][0] if holds else '-'}; fenced balance {ledger['balance']} after "
              f"{ledger['writes']} writes")
        verdict = "linearizable" if tokens_rise and overlaps == 0 else f"violation ({overlaps} overlaps)"
        print(f"  checker (mutual exclusion over the recorded holds): {verdict}")
        check(len(holds) > 10 and tokens_rise and overlaps == 0,
              "holders never overlapped and tokens rose, through a kill -9 and a pause")
        check(ledger["balance"] == ledger["writes"], "the fenced ledger lost no update")
    finally:
        stop.set()
        for p in procs.values():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            p.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


demo_service()

if failures:
    print(f"\n{len(failures)} invariant(s) failed", file=sys.stderr)
    sys.exit(1)
print("\nall invariants hold")
