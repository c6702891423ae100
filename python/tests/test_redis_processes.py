"""RedisLeaseTable across real OS processes: 8 workers contend and an
independent checker finds no overlap; a kill -9'd holder's lease passes on
only after its TTL; a SIGSTOPped holder's late write is refused by a Fence
(and, as a negative control, loses an update without one); redis-server
killed and restarted twice under 6 contending processes, with and without
an fsynced append-only file: tokens never go backwards in real time, held
leases are reported lost, and every process recovers."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import quorumkit as qk

WORKER = r"""
import json, sys, time
import quorumkit as qk
url, me, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = qk.RedisLeaseTable(url, namespace="procs")
out = []
for i in range(rounds):
    resource = "r%d" % (i % 2)
    shared = (hash((me, i)) % 4 == 0)
    lease = t.acquire(resource, me, 5, timeout=60, shared=shared)
    start = time.monotonic_ns()   # CLOCK_MONOTONIC: one clock for every process
    time.sleep(0.0002)
    end = time.monotonic_ns()
    out.append((resource, shared, lease.token, start, end))
    t.release(lease)
print(json.dumps(out))
"""


def test_eight_processes_never_overlap(server):
    rounds = 260  # 8 x 260 = 2,080 grants
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, server.url, f"w{i}", str(rounds)],
                              stdout=subprocess.PIPE, text=True) for i in range(8)]
    grants = []
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0
        grants += [tuple(g) for g in json.loads(out)]
    assert len(grants) == 8 * rounds
    for resource in ("r0", "r1"):
        gs = sorted((g for g in grants if g[0] == resource), key=lambda g: g[3])
        tokens = [g[2] for g in gs]
        assert len(set(tokens)) == len(tokens), "a token was granted twice"
        # Each hold [start, end] lies inside its lease: an exclusive hold
        # overlaps nothing, shared holds overlap only each other.
        for a, b in zip(gs, gs[1:]):
            if b[3] < a[4]:
                assert a[1] and b[1], f"overlap on {resource}: {a} and {b}"
        # Exclusive grants are ordered by token in time.
        excl = [g for g in gs if not g[1]]
        assert [g[2] for g in excl] == sorted(g[2] for g in excl)


HOLDER = r"""
import sys, time
import quorumkit as qk
t = qk.RedisLeaseTable(sys.argv[1], namespace="procs")
lease = t.acquire("job", "holder", float(sys.argv[2]))
print(lease.token, time.monotonic_ns(), flush=True)
time.sleep(60)
"""


def test_a_killed_holders_lease_passes_on_after_its_ttl_not_before(server):
    ttl = 1.0
    p = subprocess.Popen([sys.executable, "-c", HOLDER, server.url, str(ttl)],
                         stdout=subprocess.PIPE, text=True)
    token, granted_ns = map(int, p.stdout.readline().split())
    os.kill(p.pid, signal.SIGKILL)
    p.wait(5)
    t = qk.RedisLeaseTable(server.url, namespace="procs")
    lease = t.acquire("job", "next", 5, timeout=10)
    waited = (time.monotonic_ns() - granted_ns) / 1e9
    assert lease.token > token
    assert waited >= ttl * 0.95, f"granted {waited:.3f}s after a {ttl}s lease began"
    assert waited < ttl + 3


class Store:
    """A counter behind a socket: GET, and SET <value> <token>, refused when a
    Fence is in use and the token is stale (the protected resource)."""

    def __init__(self, fenced):
        self.value = 0
        self.acked = 0  # increments acknowledged to writers
        self.fence = qk.Fence() if fenced else None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        f = c.makefile("rw")
        for line in f:
            parts = line.split()
            if parts[0] == "GET":
                f.write(f"{self.value}\n")
            else:
                value, token = int(parts[1]), int(parts[2])
                try:
                    if self.fence is not None:
                        self.fence.check("counter", token)
                    self.value = value
                    self.acked += 1
                    f.write("OK\n")
                except qk.StaleTokenError:
                    f.write("STALE\n")
            f.flush()


INCREMENTER = r"""
import socket, sys, time
import quorumkit as qk
url, port, name, ttl = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
t = qk.RedisLeaseTable(url, namespace="procs")
lease = t.acquire("counter", name, ttl, timeout=30)
f = socket.create_connection(("127.0.0.1", port)).makefile("rw")
f.write("GET\n"); f.flush()
value = int(f.readline())
print("read", value, lease.token, flush=True)
sys.stdin.readline()          # the parent may SIGSTOP us here
f.write("SET %d %d\n" % (value + 1, lease.token)); f.flush()
print(f.readline().strip(), flush=True)
"""


def paused_writer_run(server, fenced):
    store = Store(fenced)

    def start(name, ttl):
        return subprocess.Popen([sys.executable, "-c", INCREMENTER, server.url, str(store.port), name, str(ttl)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    a = start("a", 0.5)
    ra = a.stdout.readline().split()
    assert ra[:2] == ["read", "0"]
    os.kill(a.pid, signal.SIGSTOP)        # a stalls past its TTL while holding
    time.sleep(1.0)
    b = start("b", 5)
    rb = b.stdout.readline().split()
    assert rb[:2] == ["read", "0"]
    assert int(rb[2]) > int(ra[2]), (ra, rb)
    b.stdin.write("\n")
    b.stdin.flush()
    assert b.stdout.readline().strip() == "OK"
    os.kill(a.pid, signal.SIGCONT)
    a.stdin.write("\n")
    a.stdin.flush()
    a_answer = a.stdout.readline().strip()
    for p in (a, b):
        p.stdin.close()
        p.wait(10)
    lost = store.acked - store.value
    return a_answer, lost


def test_a_paused_holders_late_write_is_fenced(server):
    answer, lost = paused_writer_run(server, fenced=True)
    assert answer == "STALE"
    assert lost == 0


def test_without_a_fence_the_paused_holder_loses_an_update(server):
    # The negative control: the same run with no fence must lose an update,
    # or the test above proves nothing.
    answer, lost = paused_writer_run(server, fenced=False)
    assert answer == "OK"
    assert lost == 1


RESTART_WORKER = r"""
import json, sys, time
import quorumkit as qk
url, me, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
# A waiter that gave up while the server was down stays queued in a
# persisted queue until its registration lapses (waiter_ttl): keep it short.
t = qk.RedisLeaseTable(url, namespace="restart", connect_timeout=0.2, command_timeout=0.2,
                       waiter_ttl=1.0, recheck_interval=0.25)
grants, lost, errors = [], 0, 0
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    i += 1
    invoked = time.monotonic_ns()
    try:
        with t.lock("r%d" % (i % 2), owner=me, ttl=0.3, timeout=2) as lease:
            returned = time.monotonic_ns()
            grants.append((lease.token, invoked, returned))
            time.sleep(0.05 + 0.05 * (i % 3))
    except (qk.BackendUnavailableError, qk.NotHolderError, qk.LeaseExpiredError) as e:
        # Down while waiting (BackendUnavailable), or the lease was lost
        # while held: leaving lock() says so, it is never silently kept.
        if isinstance(e, qk.BackendUnavailableError) and len(grants) and grants[-1][2] < invoked:
            errors += 1
        else:
            lost += 1
        time.sleep(0.02)
    except qk.LockTimeoutError:
        pass
print(json.dumps({"grants": grants, "lost": lost, "errors": errors}))
"""


def restart_run(persist):
    from conftest import Server

    server = Server(persist=persist)
    try:
        procs = [subprocess.Popen([sys.executable, "-c", RESTART_WORKER, server.url, f"w{i}", "7"],
                                  stdout=subprocess.PIPE, text=True) for i in range(6)]
        restarts = []
        for _ in range(2):
            time.sleep(2)
            restarts.append(time.monotonic_ns())
            server.restart()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0
            results.append(json.loads(out))
    finally:
        server.stop()
    grants = [tuple(g) for r in results for g in r["grants"]]
    tokens = [g[0] for g in grants]
    assert len(set(tokens)) == len(tokens), "a token was granted twice"
    # Real-time order: a grant that returned before another was even
    # asked for has the smaller token, across both restarts.
    by_return = sorted(grants, key=lambda g: g[2])
    backwards = 0
    for j, later in enumerate(sorted(grants, key=lambda g: g[1])):
        earlier = [g for g in by_return if g[2] < later[1]]
        if earlier and max(g[0] for g in earlier) >= later[0]:
            backwards += 1
    assert backwards == 0, f"{backwards} grants got a token below an earlier grant's (persist={persist})"
    # Every worker got grants after the last restart: all recovered.
    last = restarts[-1]
    for r in results:
        assert any(g[2] > last + 300_000_000 for g in r["grants"]), r
    return results


def test_tokens_never_go_backwards_across_restarts_without_persistence():
    results = restart_run(persist=False)
    # The wiped leases of holders mid-hold were reported lost on leaving lock().
    assert sum(r["lost"] for r in results) >= 1


def test_tokens_never_go_backwards_across_restarts_with_an_fsynced_aof():
    restart_run(persist=True)
