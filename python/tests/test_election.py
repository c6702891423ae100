"""qk.Election over the in-process table and over Redis (a server the
`server` fixture of conftest.py starts)."""

import threading
import time

import pytest

import quorumkit as qk


def succession(table):
    a = qk.Election(table, "jobs", "a", 0.3)
    b = qk.Election(table, "jobs", "b", 0.3)
    assert a.leader() is None
    ea = a.campaign(timeout=2)
    assert a.is_leader and a.leader() == ("a", ea)
    with pytest.raises(qk.LockTimeoutError):
        b.campaign(timeout=0.05)
    won = {}
    th = threading.Thread(target=lambda: won.setdefault("epoch", b.campaign(timeout=5)))
    th.start()
    time.sleep(0.7)  # beyond a's ttl: renewals keep it leading
    assert a.is_leader and "epoch" not in won
    assert a.wait_change(("a", ea), timeout=0.02) == ("a", ea)
    a.resign()
    th.join(5)
    assert not a.is_leader and won["epoch"] > ea
    assert a.wait_change(("a", ea), timeout=2) == ("b", won["epoch"])
    fence = qk.Fence()
    fence.check("jobs", won["epoch"])
    with pytest.raises(qk.StaleTokenError):
        fence.check("jobs", ea)
    with b:
        assert b.is_leader
    assert not b.is_leader and a.leader() is None


def test_succession_in_process():
    succession(qk.LeaseTable())


def test_succession_over_redis(server):
    succession(qk.RedisLeaseTable(server.url))


def test_bad_arguments():
    t = qk.LeaseTable()
    with pytest.raises(qk.InvalidArgumentError):
        qk.Election(t, "", "a", 1)
    with pytest.raises(qk.InvalidArgumentError):
        qk.Election(t, "x", "a", 0.001)
    with pytest.raises(TypeError):
        qk.Election("not a table", "x", "a", 1)
    with pytest.raises(TypeError):
        qk.Election(t, "x", "a", "1s")
