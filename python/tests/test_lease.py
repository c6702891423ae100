"""LeaseTable, Lease, ManualClock and Fence from Python: the contract on a
manual clock (deterministic), bad inputs with their exact exception classes."""

from __future__ import annotations

import math
import threading
import time

import pytest

import quorumkit as qk
from quorumkit import (
    InvalidArgumentError,
    LeaseExpiredError,
    LockTimeoutError,
    NotHolderError,
    QuorumkitError,
    StaleTokenError,
)


def raises(exc: type[BaseException], builtin: type[BaseException], fn, *args, **kwargs) -> BaseException:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert type(info.value) is exc, f"{type(info.value)} is not exactly {exc}"
    assert isinstance(info.value, builtin)
    return info.value


@pytest.fixture
def clock() -> qk.ManualClock:
    return qk.ManualClock()


@pytest.fixture
def table(clock: qk.ManualClock) -> qk.LeaseTable:
    return qk.LeaseTable(clock)


def start(fn, *args, **kwargs) -> tuple[threading.Thread, dict]:
    """Runs fn in a thread; the dict gets 'result' or 'error'."""
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def wait_queued(table: qk.LeaseTable, resource: str, n: int) -> None:
    """Waits (real time, bounded) until n requests are queued on resource."""
    deadline = time.monotonic() + 5
    while table.queued(resource) < n:
        assert time.monotonic() < deadline, f"{n} waiters never queued on {resource}"
        time.sleep(0.001)


# ---------------------------------------------------------------- basics


def test_hierarchy() -> None:
    assert issubclass(LockTimeoutError, QuorumkitError) and issubclass(LockTimeoutError, TimeoutError)
    assert issubclass(LeaseExpiredError, QuorumkitError)
    assert issubclass(NotHolderError, QuorumkitError) and issubclass(NotHolderError, PermissionError)
    assert issubclass(StaleTokenError, QuorumkitError) and issubclass(StaleTokenError, ValueError)


def test_manual_clock(clock: qk.ManualClock) -> None:
    assert clock.now() == 0.0
    clock.advance(1.5)
    assert clock.now() == 1.5
    clock.set(10.0)
    assert clock.now() == 10.0
    clock.advance(0)
    assert clock.now() == 10.0
    raises(InvalidArgumentError, ValueError, clock.set, 9.0)  # monotonic: never backwards
    raises(InvalidArgumentError, ValueError, clock.advance, -1.0)
    raises(InvalidArgumentError, ValueError, clock.advance, math.nan)
    assert clock.now() == 10.0
    assert qk.ManualClock(3.25).now() == 3.25
    assert "10" in repr(clock)


def test_acquire_release(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    clock.set(5.0)
    a = table.acquire("db", "alice", 10.0)
    assert (a.resource, a.owner, a.shared) == ("db", "alice", False)
    assert a.expires_at == 15.0 and not a.lost
    assert isinstance(a.token, int) and a.token >= 1
    assert "db" in repr(a) and "alice" in repr(a) and str(a.token) in repr(a)
    assert table.try_acquire("db", "bob", 1.0) is None
    raises(LockTimeoutError, TimeoutError, table.acquire, "db", "bob", 1.0, timeout=0)
    table.release(a)
    b = table.acquire("db", "bob", 1.0, timeout=0)
    assert b.token > a.token and b.owner == "bob"
    assert table.now() == 5.0 and table.clock is clock


def test_tokens_increase_across_resources(table: qk.LeaseTable) -> None:
    tokens = []
    for i in range(50):
        lease = table.acquire(f"r{i % 7}", "o", 1.0)
        tokens.append(lease.token)
        table.release(lease)
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)


def test_shared_mode(table: qk.LeaseTable) -> None:
    readers = [table.acquire("cfg", f"r{i}", 5.0, shared=True) for i in range(3)]
    assert all(r.shared for r in readers)
    assert table.try_acquire("cfg", "w", 5.0) is None  # exclusive waits for readers
    for r in readers[:2]:
        table.release(r)
    assert table.try_acquire("cfg", "w", 5.0) is None
    table.release(readers[2])
    w = table.try_acquire("cfg", "w", 5.0)
    assert w is not None and not w.shared
    assert table.try_acquire("cfg", "r", 5.0, shared=True) is None


def test_renew_and_expiry(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    a = table.acquire("job", "a", 2.0)
    clock.advance(1.5)
    assert table.renew(a, 2.0) is a  # updated in place
    assert a.expires_at == 3.5 and not a.lost
    clock.advance(1.9)
    assert not a.lost
    clock.advance(0.1)
    assert a.lost  # expired at now >= expires_at
    raises(LeaseExpiredError, QuorumkitError, table.renew, a, 1.0)
    raises(LeaseExpiredError, QuorumkitError, table.release, a)
    b = table.acquire("job", "b", 1.0, timeout=0)
    # a is superseded now: not the holder any more.
    raises(NotHolderError, PermissionError, table.renew, a, 1.0)
    raises(NotHolderError, PermissionError, table.release, a)
    assert not b.lost


def test_release_twice_and_foreign_lease(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    a = table.acquire("x", "a", 5.0)
    table.release(a)
    raises(NotHolderError, PermissionError, table.release, a)
    raises(NotHolderError, PermissionError, table.renew, a, 5.0)
    other = qk.LeaseTable(clock)
    foreign = other.acquire("x", "a", 5.0)
    mine = table.acquire("x", "a", 5.0)
    assert foreign.token == 1 and mine.token == 2
    # A lease from another table names a token this table never granted for "x".
    raises(NotHolderError, PermissionError, table.release, foreign)
    table.release(mine)


def test_wait_lost(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    a = table.acquire("w", "a", 1.0)
    assert a.wait_lost(0.01) is False
    t, out = start(a.wait_lost)
    time.sleep(0.02)
    assert t.is_alive()
    clock.advance(0.5)
    time.sleep(0.02)
    assert t.is_alive()
    clock.advance(0.5)
    t.join(5)
    assert out == {"result": True}
    assert a.wait_lost(0) is True


# ---------------------------------------------------------------- blocking, FIFO


def test_blocking_acquire_is_granted_on_release(table: qk.LeaseTable) -> None:
    a = table.acquire("q", "a", 100.0)
    t, out = start(table.acquire, "q", "b", 100.0)
    wait_queued(table, "q", 1)
    table.release(a)
    t.join(5)
    assert out["result"].owner == "b"


def test_fifo_order(table: qk.LeaseTable) -> None:
    holder = table.acquire("f", "h", 100.0)
    order: list[str] = []
    lock = threading.Lock()

    def waiter(name: str) -> None:
        lease = table.acquire("f", name, 100.0)
        with lock:
            order.append(name)
        table.release(lease)

    names = [f"w{i}" for i in range(8)]
    threads = []
    for i, name in enumerate(names):
        t = threading.Thread(target=waiter, args=(name,), daemon=True)
        t.start()
        threads.append(t)
        wait_queued(table, "f", i + 1)
    table.release(holder)
    for t in threads:
        t.join(5)
    assert order == names


def test_shared_waits_behind_exclusive(table: qk.LeaseTable) -> None:
    r1 = table.acquire("s", "r1", 100.0, shared=True)
    tw, w = start(table.acquire, "s", "writer", 100.0)
    wait_queued(table, "s", 1)
    # A reader arriving after the queued writer waits (no writer starvation).
    assert table.try_acquire("s", "r2", 100.0, shared=True) is None
    tr, r2 = start(table.acquire, "s", "r2", 100.0, shared=True)
    wait_queued(table, "s", 2)
    table.release(r1)
    tw.join(5)
    assert w["result"].owner == "writer" and tr.is_alive()
    table.release(w["result"])
    tr.join(5)
    assert r2["result"].shared


def test_expiry_while_queued(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    holder = table.acquire("e", "h", 10.0)
    t, out = start(table.acquire, "e", "w", 3.0)
    wait_queued(table, "e", 1)
    clock.advance(9.999)
    time.sleep(0.02)
    assert t.is_alive()
    clock.advance(0.001)  # the holder's lease expires; the waiter gets a fresh lease
    t.join(5)
    lease = out["result"]
    assert lease.token > holder.token
    assert lease.expires_at == 13.0 and not lease.lost  # grant time + its own ttl
    assert holder.lost


def test_timeout_leaves_holder_alone() -> None:
    table = qk.LeaseTable()
    holder = table.acquire("t", "h", 100.0)
    t0 = time.monotonic()
    e = raises(LockTimeoutError, TimeoutError, table.acquire, "t", "w", 1.0, timeout=0.05)
    assert time.monotonic() - t0 >= 0.045
    assert "t" in str(e)
    assert table.queued("t") == 0
    table.renew(holder, 100.0)  # still held, same token
    assert not holder.lost
    table.release(holder)
    assert table.try_acquire("t", "w", 1.0) is not None


def test_lock_delay(clock: qk.ManualClock) -> None:
    table = qk.LeaseTable(clock, lock_delay=5.0)
    assert table.lock_delay == 5.0
    a = table.acquire("d", "a", 10.0)
    clock.advance(10.0)  # expires without release: the resource rests 5 s
    assert table.try_acquire("d", "b", 1.0) is None
    clock.advance(4.999)
    assert table.try_acquire("d", "b", 1.0) is None
    clock.advance(0.001)
    b = table.try_acquire("d", "b", 1.0)
    assert b is not None and b.token > a.token
    # A release (not an expiry) frees the resource at once.
    table.release(b)
    assert table.try_acquire("d", "c", 1.0) is not None


def test_lock_delay_wakes_queued_waiter(clock: qk.ManualClock) -> None:
    table = qk.LeaseTable(clock, lock_delay=2.0)
    table.acquire("d", "a", 1.0)
    t, out = start(table.acquire, "d", "b", 1.0)
    wait_queued(table, "d", 1)
    clock.advance(1.0)
    time.sleep(0.02)
    assert t.is_alive()  # expired, but in lock-delay
    clock.advance(2.0)
    t.join(5)
    assert out["result"].owner == "b" and out["result"].expires_at == 4.0


def test_real_clock_expiry_hands_over() -> None:
    table = qk.LeaseTable()
    assert table.clock is None
    a = table.acquire("rc", "a", 0.05)
    t0 = time.monotonic()
    b = table.acquire("rc", "b", 1.0, timeout=2.0)
    assert b.owner == "b" and a.lost
    assert time.monotonic() - t0 < 1.0


# ---------------------------------------------------------------- lock()


def test_lock_context_manager(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    with table.lock("cm", owner="a", ttl=5.0, auto_renew=False) as lease:
        assert lease.owner == "a" and table.try_acquire("cm", "b", 1.0) is None
    assert table.try_acquire("cm", "b", 1.0) is not None
    ctx = table.lock("cm2", owner="a", ttl=5.0, auto_renew=False)
    with pytest.raises(RuntimeError):
        with ctx:
            raise RuntimeError("body fails")
    assert table.try_acquire("cm2", "b", 1.0) is not None  # released anyway
    # A lease lost inside the block: the exit says so.
    with pytest.raises(LeaseExpiredError):
        with table.lock("cm3", owner="a", ttl=1.0, auto_renew=False) as lease:
            clock.advance(2.0)
            assert lease.lost


def test_timeout_on_manual_clock(table: qk.LeaseTable, clock: qk.ManualClock) -> None:
    """Timeouts run on the table's clock: a manual one must be moved."""
    table.acquire("mt", "h", 100.0)
    t, out = start(table.acquire, "mt", "w", 1.0, timeout=5.0)
    wait_queued(table, "mt", 1)
    time.sleep(0.02)
    assert t.is_alive()
    clock.advance(5.0)
    t.join(5)
    assert type(out["error"]) is LockTimeoutError
    assert table.queued("mt") == 0


def test_lock_timeout(table: qk.LeaseTable) -> None:
    table.acquire("busy", "h", 100.0)
    with pytest.raises(LockTimeoutError):
        with table.lock("busy", owner="a", ttl=1.0, timeout=0):
            pass


# ---------------------------------------------------------------- Fence


def test_fence() -> None:
    fence = qk.Fence()
    fence.check("db", 5)
    fence.check("db", 5)  # equal is fine (the same holder writes twice)
    fence.check("db", 7)
    e = raises(StaleTokenError, ValueError, fence.check, "db", 6)
    assert "6" in str(e) and "7" in str(e)
    fence.check("other", 1)  # per resource
    raises(InvalidArgumentError, ValueError, fence.check, "db", -1)
    with pytest.raises(TypeError):
        fence.check("db", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fence.check(1, 1)  # type: ignore[arg-type]


def test_fence_threads() -> None:
    fence = qk.Fence()
    accepted: list[int] = []
    lock = threading.Lock()

    def run(base: int) -> None:
        for t in range(base, 2000, 4):
            try:
                fence.check("r", t)
            except StaleTokenError:
                continue
            with lock:
                accepted.append(t)

    threads = [threading.Thread(target=run, args=(b,)) for b in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1999 in accepted or 1998 in accepted or 1997 in accepted or 1996 in accepted
    raises(StaleTokenError, ValueError, fence.check, "r", 1995)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("ttl", [0, 0.0, -1.0, -1, math.nan, math.inf, -math.inf, 1e300])
def test_bad_ttl_values(table: qk.LeaseTable, ttl: float) -> None:
    raises(InvalidArgumentError, ValueError, table.acquire, "r", "o", ttl)
    raises(InvalidArgumentError, ValueError, table.try_acquire, "r", "o", ttl)
    lease = table.acquire("ok", "o", 1.0)
    raises(InvalidArgumentError, ValueError, table.renew, lease, ttl)
    raises(InvalidArgumentError, ValueError, table.lock, "r", owner="o", ttl=ttl)
    assert table.try_acquire("r", "o", 1.0) is not None  # nothing was left behind
    assert lease.expires_at == 1.0  # the failed renew did not touch it


@pytest.mark.parametrize("ttl", ["1", None, b"1", [1.0], True])
def test_ttl_wrong_type(table: qk.LeaseTable, ttl: object) -> None:
    with pytest.raises(TypeError, match="ttl"):
        table.acquire("r", "o", ttl)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ttl"):
        table.try_acquire("r", "o", ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [-0.001, -1, math.nan])
def test_bad_timeout_values(table: qk.LeaseTable, timeout: float) -> None:
    raises(InvalidArgumentError, ValueError, table.acquire, "r", "o", 1.0, timeout=timeout)


def test_timeout_wrong_type_and_inf(table: qk.LeaseTable) -> None:
    with pytest.raises(TypeError, match="timeout"):
        table.acquire("r", "o", 1.0, timeout="1")  # type: ignore[arg-type]
    assert table.acquire("r", "o", 1.0, timeout=math.inf).owner == "o"  # inf = wait forever


@pytest.mark.parametrize("bad", [1, b"r", None, 1.5, ["r"]])
def test_resource_owner_wrong_type(table: qk.LeaseTable, bad: object) -> None:
    with pytest.raises(TypeError, match="resource"):
        table.acquire(bad, "o", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="owner"):
        table.acquire("r", bad, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="resource"):
        table.try_acquire(bad, "o", 1.0)  # type: ignore[arg-type]


def test_empty_names(table: qk.LeaseTable) -> None:
    raises(InvalidArgumentError, ValueError, table.acquire, "", "o", 1.0)
    raises(InvalidArgumentError, ValueError, table.acquire, "r", "", 1.0)
    raises(InvalidArgumentError, ValueError, table.try_acquire, "", "o", 1.0)


def test_other_bad_arguments(table: qk.LeaseTable) -> None:
    with pytest.raises(TypeError, match="shared"):
        table.acquire("r", "o", 1.0, shared="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lease"):
        table.renew("lease", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lease"):
        table.release(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        qk.LeaseTable("clock")  # type: ignore[arg-type]
    for delay in [-1.0, math.nan, math.inf]:
        raises(InvalidArgumentError, ValueError, qk.LeaseTable, lock_delay=delay)
    with pytest.raises(TypeError, match="lock_delay"):
        qk.LeaseTable(lock_delay="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.Lease()  # type: ignore[call-arg]  # leases come from a table only
    lease = table.acquire("r", "o", 1.0)
    raises(InvalidArgumentError, ValueError, lease.wait_lost, -1.0)
    with pytest.raises(AttributeError):
        lease.token = 5  # type: ignore[misc]
