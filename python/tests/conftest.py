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
