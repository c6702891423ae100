"""qk.RedisLeaseTable on a real three-master Redis Cluster that this test
starts (free loopback ports, temp dir, `redis-cli --cluster create`) and
stops by PID."""

import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

import quorumkit as qk
from conftest import REDIS, free_port

CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def cli(port, *args):
    return subprocess.run([CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                          capture_output=True, text=True, timeout=10).stdout


@pytest.fixture
def cluster():
    if not os.path.exists(REDIS) or not os.path.exists(CLI):
        pytest.skip("redis-server / redis-cli not installed (make sysdeps installs them)")
    workdir = tempfile.mkdtemp(prefix="qk-cluster-py-")
    ports, procs = [], []
    try:
        for i in range(3):
            port, bus = free_port(), free_port()
            procs.append(subprocess.Popen(
                [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-port", str(bus), "--cluster-config-file", f"nodes-{i}.conf",
                 "--save", "", "--appendonly", "no", "--dir", workdir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
        for p in ports:
            deadline = time.monotonic() + 5
            while cli(p, "PING").strip() != "PONG":
                assert time.monotonic() < deadline, f"redis-server on {p} did not start"
                time.sleep(0.01)
        subprocess.run([CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while not all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in ports):
            assert time.monotonic() < deadline, "the cluster did not reach state ok"
            time.sleep(0.05)
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


def keys_by_master(ports):
    return {p: cli(p, "--scan").split() for p in ports}


def test_leases_on_a_three_master_cluster(cluster):
    url = "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p in cluster)
    t = qk.RedisLeaseTable(url, command_timeout=1, connect_timeout=1)
    held = [t.acquire(f"res-{i}", "me", 30) for i in range(24)]
    assert all(t.try_acquire(f"res-{i}", "other", 1) is None for i in range(24))
    placed = keys_by_master(cluster)
    assert sum(1 for ks in placed.values() if ks) == 3, placed  # spread over every master
    for lease in held:
        t.release(lease)

    # FIFO hand-off between threads, each blocked in acquire.
    first = t.acquire("queue", "a", 30)
    order = []

    def wait(name):
        lease = t.acquire("queue", name, 30, timeout=10)
        order.append((name, lease.token))
        time.sleep(0.02)
        t.release(lease)

    threads = []
    for name in ("w1", "w2", "w3"):
        th = threading.Thread(target=wait, args=(name,))
        th.start()
        threads.append(th)
        deadline = time.monotonic() + 3
        while t.queued("queue") < len(threads):
            assert time.monotonic() < deadline
            time.sleep(0.005)
    t.release(first)
    for th in threads:
        th.join(10)
    assert [n for n, _ in order] == ["w1", "w2", "w3"]
    tokens = [first.token] + [tok for _, tok in order]
    assert tokens == sorted(tokens) and len(set(tokens)) == 4

    # lock() with auto-renew outlives its TTL; a Fence orders the tokens.
    with t.lock("job", owner="me", ttl=0.3) as lease:
        time.sleep(0.8)
        assert not lease.lost
    later = t.acquire("job", "other", 30)
    fence = qk.Fence()
    fence.check("job", later.token)
    with pytest.raises(qk.StaleTokenError):
        fence.check("job", lease.token)  # the earlier holder's token
    t.release(later)

    # Shared holders together.
    s1, s2 = t.acquire("shared", "s1", 30, shared=True), t.acquire("shared", "s2", 30, shared=True)
    assert sorted(t.holders("shared")) == sorted([s1.token, s2.token])
    t.release(s1)
    t.release(s2)

    deadline = time.monotonic() + 15
    while any(keys_by_master(cluster).values()):
        assert time.monotonic() < deadline, keys_by_master(cluster)
        time.sleep(0.1)


def test_bad_cluster_urls():
    with pytest.raises(qk.InvalidArgumentError, match="database"):
        qk.RedisLeaseTable("redis-cluster://127.0.0.1:1/3")
    with pytest.raises(qk.InvalidArgumentError, match="empty"):
        qk.RedisLeaseTable("redis-cluster://127.0.0.1:1,,127.0.0.1:2")
    t = qk.RedisLeaseTable(f"redis-cluster://127.0.0.1:{free_port()}", connect_timeout=0.5,
                           command_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(qk.BackendUnavailableError):
        t.ping()
    assert time.monotonic() - start < 5
