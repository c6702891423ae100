"""qk.RedisLeaseTable against a redis-server this test starts on a free
loopback port in a temp dir (the `server` fixture of conftest.py), and
stops by its PID."""

import threading
import time

import pytest

import quorumkit as qk


def test_tokens_fifo_and_owner_checks(server):
    t = qk.RedisLeaseTable(server.url, namespace="test", command_timeout=2.0)
    t.ping()
    a = t.acquire("db", "a", 30)
    assert isinstance(a, qk.RedisLease) and not a.lost
    assert t.try_acquire("db", "x", 30) is None
    got = []

    def wait(owner):
        lease = t.acquire("db", owner, 30, timeout=10)
        got.append((owner, lease.token))
        t.release(lease)

    b = threading.Thread(target=wait, args=("b",))
    b.start()
    deadline = time.monotonic() + 5
    while t.queued("db") < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    c = threading.Thread(target=wait, args=("c",))
    c.start()
    while t.queued("db") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    t.release(a)
    b.join(10)
    c.join(10)
    assert [o for o, _ in got] == ["b", "c"]
    assert a.token < got[0][1] < got[1][1]
    assert a.lost
    with pytest.raises(qk.NotHolderError):
        t.release(a)
    fence = qk.Fence()
    fence.check("db", got[1][1])
    with pytest.raises(qk.StaleTokenError):
        fence.check("db", a.token)
    # Nothing is left behind once every lease is released (expired-lease
    # memory aside, which carries a TTL).
    assert t.holders("db") == []


def test_expired_and_not_holder_are_told_apart(server):
    t = qk.RedisLeaseTable(server.url)
    lease = t.acquire("r", "me", 0.1)
    time.sleep(0.25)
    with pytest.raises(qk.LeaseExpiredError):
        t.renew(lease, 1)
    other = t.acquire("r", "other", 5)
    with pytest.raises(qk.NotHolderError):
        t.release(lease)
    renewed = t.renew(other, 10)
    assert renewed.token == other.token and renewed.expires_at > other.expires_at
    t.release(renewed)
    with pytest.raises(qk.LockTimeoutError):
        t.acquire("busy", "a", 5) and t.acquire("busy", "b", 5, timeout=0.05)


def test_bad_input_gets_typed_errors(server):
    with pytest.raises(qk.QuorumkitError):
        qk.RedisLeaseTable("http://nope")
    t = qk.RedisLeaseTable(server.url)
    with pytest.raises(qk.InvalidArgumentError):
        t.acquire("", "me", 1)
    with pytest.raises(qk.InvalidArgumentError):
        t.acquire("r", "me", float("nan"))
    with pytest.raises(TypeError):
        t.acquire("r", "me", "1s")
    with pytest.raises(TypeError):
        t.release("not a lease")


def test_redis_down_is_a_clean_error_within_the_timeout(server):
    t = qk.RedisLeaseTable(server.url, connect_timeout=0.5, command_timeout=0.5)
    lease = t.acquire("r", "me", 30)
    server.stop()
    start = time.monotonic()
    with pytest.raises(qk.BackendUnavailableError) as e:
        t.renew(lease, 30)
    assert isinstance(e.value, ConnectionError)
    assert time.monotonic() - start < 3
    with pytest.raises(qk.BackendUnavailableError):
        t.try_acquire("r", "other", 1)


def test_lock_renews_in_the_background_and_reports_loss(server):
    t = qk.RedisLeaseTable(server.url, command_timeout=0.5, connect_timeout=0.5)
    with t.lock("job", owner="me", ttl=0.3) as lease:
        time.sleep(1.0)  # > 3 ttls: the table's renewer keeps it
        assert not lease.lost
        assert t.try_acquire("job", "other", 1) is None
    assert t.holders("job") == []
    # Taken away while held: lost turns true, and leaving the block raises.
    ctx = t.lock("job2", owner="me", ttl=0.3)
    with pytest.raises(qk.NotHolderError):
        with ctx as lease:
            t.release(lease)  # someone else ends it (here: directly)
            assert ctx.wait_lost(timeout=2)
            assert ctx.lost
    # Redis gone: reported lost within the timeouts, never silently kept.
    ctx = t.lock("job3", owner="me", ttl=0.3)
    with pytest.raises(qk.BackendUnavailableError):
        with ctx:
            server.stop()
            assert ctx.wait_lost(timeout=5)
    with pytest.raises(TypeError):
        t.lock("x", owner="me", ttl="1")
