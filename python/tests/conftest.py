"""Shared helpers for the quorumkit Python tests."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

# Every randomized test derives its seeds from this base; override with
# QK_TEST_SEED=<int> to replay a failure (the seed is in every assert message).
BASE_SEED = int(os.environ.get("QK_TEST_SEED", "20261124"))


@pytest.fixture
def rng() -> random.Random:
    return random.Random(BASE_SEED)


def random_keys(r: random.Random, n: int) -> list[str]:
    """A mix of short, long, unicode and numeric keys."""
    out = []
    for i in range(n):
        kind = r.randrange(4)
        if kind == 0:
            out.append(f"key-{r.getrandbits(32)}")
        elif kind == 1:
            out.append(str(r.getrandbits(64)))
        elif kind == 2:
            out.append("".join(chr(r.choice([r.randrange(32, 127), r.randrange(0xA0, 0x3000)])) for _ in range(r.randrange(1, 12))))
        else:
            out.append(f"user:{i}:" + "x" * r.randrange(0, 80))
    return out


# ---------------------------------------------------------------- redis-server
# A throwaway redis-server per test: a free loopback port, a temp dir, stopped
# by its PID (tests of qk.RedisLeaseTable and qk.Election).


REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """persist: an append-only file fsynced on every write (what survives a
    kill -9); otherwise nothing survives a restart."""

    def __init__(self, persist=False):
        self.dir = tempfile.mkdtemp(prefix="qk-redis-py-")
        self.persist = persist
        for _ in range(5):
            self.port = free_port()
            if self._spawn():
                return
            self.stop()
        raise RuntimeError("could not start redis-server")

    def _spawn(self):
        durability = (["--appendonly", "yes", "--appendfsync", "always"] if self.persist
                      else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *durability, "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self._answers()

    def restart(self):
        """kill -9, then a new server on the same port and directory."""
        self.stop()
        if not self._spawn():
            raise RuntimeError(f"redis-server did not come back on port {self.port}")

    def _answers(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    c.sendall(b"INFO server\r\n")
                    data = c.recv(65536)
                    return f"process_id:{self.proc.pid}\r".encode() in data
            except OSError:
                time.sleep(0.01)
        return False

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def server():
    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed (make sysdeps installs it)")
    s = Server()
    yield s
    s.stop()
    shutil.rmtree(s.dir, ignore_errors=True)


QK_BIN = os.environ.get("QK_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "release", "quorumkit")
CLUSTER_SECRET = "python-tests-cluster-secret"


class LeaseCluster:
    """`quorumkit serve` processes on free loopback ports in a temp dir,
    stopped by PID."""

    def __init__(self, n=3, state="lease", cluster_id=7):
        self.dir = tempfile.mkdtemp(prefix="qk-serve-py-")
        self.cluster_id = cluster_id
        self.state = state
        self.ports = {i: free_port() for i in range(1, n + 1)}
        self.procs = {}
        for i in self.ports:
            self.start(i, init=True)

    @property
    def peers(self):
        return ",".join(f"{i}=127.0.0.1:{p}" for i, p in self.ports.items())

    @property
    def addrs(self):
        return [f"127.0.0.1:{p}" for p in self.ports.values()]

    def start(self, i, init=False):
        cmd = [QK_BIN, "serve", "--state", self.state, "--id", str(i), "--peers", self.peers,
               "--cluster-id", str(self.cluster_id), "--heartbeat-ms", "20",
               "--data", os.path.join(self.dir, f"r{i}")] + (["--init"] if init else [])
        env = dict(os.environ, QK_CLUSTER_SECRET=CLUSTER_SECRET)
        self.procs[i] = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, i):
        p = self.procs.pop(i, None)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)

    def stop(self):
        for i in list(self.procs):
            self.kill(i)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def lease_cluster():
    if not os.path.exists(QK_BIN):
        if os.environ.get("CI"):
            pytest.fail(f"{QK_BIN} is missing (cargo build --release --bin quorumkit)")
        pytest.skip("the quorumkit binary is not built (cargo build --release --bin quorumkit)")
    c = LeaseCluster()
    yield c
    c.stop()
