"""Leases under Python threads, on the real monotonic clock: mutual
exclusion and token order checked by an independent observer, the fenced
lock-set with pauses longer than the TTL (and, to prove the test can fail,
the same without the fence), auto-renewal, Ctrl-C during a blocking acquire."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

import quorumkit as qk
from quorumkit import LeaseExpiredError, LockTimeoutError, NotHolderError, StaleTokenError

from conftest import BASE_SEED


class Checker:
    """Sees every grant right after acquire returns and every release right
    before release is called; fails on any overlap the modes forbid and on
    any token not above every token granted before the acquire began."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders: dict[str, dict[int, bool]] = {}  # resource -> token -> shared
        self.max_token = 0
        self.tokens: set[int] = set()
        self.errors: list[str] = []
        self.grants = 0
        self.shared_overlaps = 0

    def before_acquire(self) -> int:
        with self.lock:
            return self.max_token

    def granted(self, lease: qk.Lease, floor: int, where: str) -> None:
        with self.lock:
            held = self.holders.setdefault(lease.resource, {})
            if lease.token <= floor:
                self.errors.append(f"{where}: token {lease.token} not above {floor} granted earlier")
            if lease.token in self.tokens:
                self.errors.append(f"{where}: token {lease.token} granted twice")
            if not lease.shared and held:
                self.errors.append(f"{where}: exclusive {lease.token} while {held} hold {lease.resource}")
            if lease.shared and any(not s for s in held.values()):
                self.errors.append(f"{where}: shared {lease.token} beside an exclusive holder {held}")
            if lease.shared and held:
                self.shared_overlaps += 1
            held[lease.token] = lease.shared
            self.tokens.add(lease.token)
            self.max_token = max(self.max_token, lease.token)
            self.grants += 1

    def releasing(self, lease: qk.Lease) -> None:
        with self.lock:
            del self.holders[lease.resource][lease.token]


def test_mutual_exclusion_and_token_order() -> None:
    table = qk.LeaseTable()
    checker = Checker()
    threads_n, rounds, resources = 8, 250, [f"res-{i}" for i in range(3)]

    def worker(i: int) -> None:
        seed = BASE_SEED + i
        r = random.Random(seed)
        for n in range(rounds):
            resource = r.choice(resources)
            shared = r.random() < 0.4
            floor = checker.before_acquire()
            try:
                lease = table.acquire(resource, f"w{i}", 30.0, timeout=r.choice([None, 0, 0.002]),
                                      shared=shared)
            except LockTimeoutError:
                continue
            checker.granted(lease, floor, f"seed {seed} round {n}")
            if r.random() < 0.3:
                time.sleep(0.0002)  # hold it a little, let others pile up
            checker.releasing(lease)
            table.release(lease)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not checker.errors, f"QK_TEST_SEED={BASE_SEED}: {checker.errors[:5]}"
    assert checker.grants > threads_n * rounds // 2
    assert checker.shared_overlaps > 0, "shared leases never overlapped: the test did not test sharing"


def test_checker_catches_overlap() -> None:
    """The checker has teeth: two exclusive leases on one resource from
    different tables (no shared exclusion) are reported."""
    checker = Checker()
    a = qk.LeaseTable().acquire("x", "a", 1.0)
    b = qk.LeaseTable().acquire("x", "b", 1.0)
    checker.granted(a, 0, "a")
    checker.granted(b, 0, "b")
    assert any("exclusive" in e for e in checker.errors)
    assert any("granted twice" in e for e in checker.errors)  # both tables start at token 1


# ---------------------------------------------------------------- fenced lock-set


class Store:
    """The protected resource: a counter. With a fence, every read and write
    presents the caller's token and the store refuses stale ones (check and
    act are one step under the store's own lock)."""

    def __init__(self, fenced: bool) -> None:
        self.fence = qk.Fence() if fenced else None
        self.lock = threading.Lock()
        self.value = 0

    def read(self, token: int) -> int:
        with self.lock:
            if self.fence is not None:
                self.fence.check("counter", token)
            return self.value

    def write(self, token: int, value: int) -> None:
        with self.lock:
            if self.fence is not None:
                self.fence.check("counter", token)
            self.value = value


def run_lock_set(fenced: bool, seed: int) -> tuple[int, int, int]:
    """Writers increment the counter under a lease with a TTL of 30 ms; some
    pause 70 ms between read and write (a GC pause, a swapped-out process).
    Returns (final value, increments the writers believe they made, stale
    tokens refused)."""
    table = qk.LeaseTable()
    store = Store(fenced)
    ttl, pause = 0.03, 0.07
    writers, per_writer = 4, 5
    done = [0] * writers
    refused = [0] * writers

    def writer(i: int) -> None:
        r = random.Random(seed + i)
        pauses = set(r.sample(range(per_writer), 2))
        n = 0
        while done[i] < per_writer:
            n += 1
            lease = table.acquire("counter", f"w{i}", ttl)
            try:
                v = store.read(lease.token)
                if done[i] in pauses:
                    pauses.discard(done[i])
                    time.sleep(pause)  # the lease expires; another writer goes ahead
                store.write(lease.token, v + 1)
                done[i] += 1
            except StaleTokenError:
                refused[i] += 1  # a newer holder was seen: redo the increment
            try:
                table.release(lease)
            except (LeaseExpiredError, NotHolderError):
                pass  # it expired during the pause

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return store.value, sum(done), sum(refused)


def test_fenced_lock_set_loses_nothing() -> None:
    value, increments, refused = run_lock_set(fenced=True, seed=BASE_SEED)
    assert increments == 20
    assert value == increments, f"QK_TEST_SEED={BASE_SEED}: lost {increments - value} updates"
    assert refused > 0, "no stale write was refused: the pauses did not overlap another holder"


def test_unfenced_lock_set_loses_updates() -> None:
    """The same writers without the fence: a lease alone is not enough."""
    value, increments, refused = run_lock_set(fenced=False, seed=BASE_SEED)
    assert refused == 0 and increments == 20
    assert value < increments, f"QK_TEST_SEED={BASE_SEED}: no update lost without a fence"


# ---------------------------------------------------------------- auto-renew


def test_auto_renew_outlives_ttl() -> None:
    table = qk.LeaseTable()
    ttl = 0.05
    with table.lock("ar", owner="a", ttl=ttl) as lease:
        first_expiry = lease.expires_at
        time.sleep(5 * ttl)
        assert not lease.lost
        assert lease.expires_at > first_expiry  # renewed in place
        assert table.try_acquire("ar", "b", 1.0) is None
        assert lease.wait_lost(0.01) is False
    assert table.try_acquire("ar", "b", 1.0) is not None


def test_auto_renew_lost_on_clock_jump() -> None:
    clock = qk.ManualClock()
    table = qk.LeaseTable(clock)
    with pytest.raises((LeaseExpiredError, NotHolderError)):
        with table.lock("ar", owner="a", ttl=3.0) as lease:
            clock.advance(1.0)  # past ttl/3: renewed (by the clock move itself)
            assert lease.expires_at == 4.0 and not lease.lost
            clock.advance(10.0)  # a jump past the deadline: renewal must fail
            assert lease.lost
            assert lease.wait_lost(0) is True
            other = table.acquire("ar", "b", 1.0, timeout=0)
            assert other.token > lease.token


def test_auto_renew_lost_when_released_underneath() -> None:
    table = qk.LeaseTable()
    with pytest.raises(NotHolderError):
        with table.lock("ar2", owner="a", ttl=0.06) as lease:
            table.release(lease)  # its renewals now fail
            t0 = time.monotonic()
            assert lease.wait_lost(2.0) is True
            assert time.monotonic() - t0 < 0.06 + 0.05
            assert lease.lost


def test_lost_at_local_deadline() -> None:
    """Without renewal, `lost` flips at the local deadline and wait_lost
    returns within a millisecond or so of it (scheduling slack allowed)."""
    table = qk.LeaseTable()
    lease = table.acquire("dl", "a", 0.05)
    assert not lease.lost
    assert lease.wait_lost(5.0) is True
    late = table.now() - lease.expires_at
    assert lease.lost and late >= 0
    assert late < 0.02, f"wait_lost woke {late * 1e3:.2f} ms after the deadline"


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_interrupts_blocking_acquire() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    table = qk.LeaseTable()
    holder = table.acquire("cc", "h", 30.0)
    timer = threading.Timer(0.1, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        table.acquire("cc", "w", 1.0)
    assert time.monotonic() - t0 < 1.0
    timer.join()
    assert table.queued("cc") == 0  # the interrupted request left the queue
    table.release(holder)
    assert table.acquire("cc", "x", 1.0, timeout=0).owner == "x"
