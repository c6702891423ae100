"""qk.LeaseClient against a real replicated lease service: three
`quorumkit serve` processes that the fixture starts on loopback."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import quorumkit as qk
from conftest import CLUSTER_SECRET


def client(c, **kw):
    return qk.LeaseClient(c.addrs, secret=CLUSTER_SECRET, cluster_id=c.cluster_id, **kw)


def test_acquire_renew_release_and_fifo_hand_off(lease_cluster):
    lc = client(lease_cluster)
    a = lc.acquire("db", "a", 5.0, timeout=10)
    assert a.resource == "db" and a.owner == "a" and a.token >= 1 and a.valid and not a.shared
    assert 0 < a.remaining() <= 5.0
    assert lc.try_acquire("db", "b", 5.0) is None
    with pytest.raises(qk.LockTimeoutError):
        lc.acquire("db", "b", 5.0, timeout=0.2)
    assert lc.holders("db") == [a.token]
    # A waiter is told when it is granted (FIFO), with a larger token.
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("b", lc.acquire("db", "b", 5.0, timeout=10)))
    t.start()
    time.sleep(0.3)
    a2 = lc.renew(a, 5.0)
    assert a2.token == a.token
    lc.release(a2)
    t.join(10)
    b = got["b"]
    assert b.owner == "b" and b.token > a.token
    with pytest.raises(qk.NotHolderError):
        lc.release(a2)
    with pytest.raises(qk.NotHolderError):
        lc.renew(a2, 1.0)
    lc.release(b)
    # Shared holders overlap each other.
    s1 = lc.acquire("cfg", "r1", 5.0, shared=True)
    s2 = lc.acquire("cfg", "r2", 5.0, shared=True, timeout=1)
    assert s1.shared and sorted(lc.holders("cfg")) == sorted([s1.token, s2.token])


def test_lock_renews_and_fences_and_election_works(lease_cluster):
    lc = client(lease_cluster)
    fence = qk.Fence()
    with lc.lock("job", owner="w1", ttl=0.6) as lease:
        time.sleep(1.0)  # past the TTL: kept alive by the renewer
        fence.check("job", lease.token)
        assert lc.holders("job") == [lease.token]
    assert lc.holders("job") == []
    e1 = qk.Election(lc, "leader", "n1", 2.0)
    e2 = qk.Election(lc, "leader", "n2", 2.0)
    epoch = e1.campaign(timeout=5)
    assert e2.leader() == ("n1", epoch)
    e1.resign()
    assert e2.campaign(timeout=5) > epoch


def test_async_calls(lease_cluster):
    lc = client(lease_cluster)

    async def main():
        lease = await lc.acquire_async("a", "x", 2.0, timeout=5)
        lc.release(lease)
        async with lc.lock_async("a", owner="y", ttl=2.0, timeout=5) as l2:
            assert l2.owner == "y"
        return lease.token, l2.token

    t1, t2 = asyncio.run(main())
    assert t2 > t1


def test_bad_input_and_an_unreachable_cluster(lease_cluster):
    with pytest.raises(TypeError):
        qk.LeaseClient("127.0.0.1:1", secret=CLUSTER_SECRET)
    with pytest.raises(qk.InvalidArgumentError):
        qk.LeaseClient(["not an address"], secret=CLUSTER_SECRET)
    with pytest.raises(qk.InvalidArgumentError):
        qk.LeaseClient(lease_cluster.addrs, secret="short")
    with pytest.raises(TypeError):
        qk.LeaseClient(lease_cluster.addrs, secret=12)
    lc = client(lease_cluster)
    for bad in [lambda: lc.acquire("", "o", 1.0), lambda: lc.acquire("r", "o", 0), lambda: lc.acquire("r", "o", -1)]:
        with pytest.raises((qk.InvalidArgumentError, ValueError)):
            bad()
    with pytest.raises(TypeError):
        lc.acquire(b"r", "o", 1.0)
    with pytest.raises(TypeError):
        lc.release("not a lease")
    # A wrong secret: refused by every replica, reported within the timeout.
    wrong = qk.LeaseClient(lease_cluster.addrs, secret="a-wrong-secret-of-enough-length",
                           cluster_id=lease_cluster.cluster_id, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(qk.BackendUnavailableError) as e:
        wrong.acquire("r", "o", 1.0)
    assert isinstance(e.value, ConnectionError) and time.monotonic() - t0 < 5
    # The whole cluster gone: the same, within the timeout; a lock held
    # meanwhile reports the loss on exit.
    short = client(lease_cluster, timeout=1.0)
    with pytest.raises(qk.BackendUnavailableError):
        with short.lock("gone", owner="o", ttl=0.5):
            for i in list(lease_cluster.procs):
                lease_cluster.kill(i)
            time.sleep(1.5)
    t0 = time.monotonic()
    with pytest.raises(qk.BackendUnavailableError):
        short.acquire("r", "o", 1.0)
    assert time.monotonic() - t0 < 5
