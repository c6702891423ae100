"""Leases as a hostile user meets them: a million distinct names leave no
memory behind, a Lease object always agrees with its table (random renew
sequences against a model), and an asyncio storm of timed-out waiters does
not starve the live ones."""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

import quorumkit as qk
from quorumkit import LeaseExpiredError, LeaseTable, ManualClock, NotHolderError


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_a_million_distinct_names_leave_no_memory_behind() -> None:
    table = LeaseTable(clock=ManualClock())
    for i in range(1000):
        table.release(table.acquire(f"warm-{i}", "w", ttl=30))
    before = rss_bytes()
    for i in range(1_000_000):
        lease = table.acquire(f"job-{i}", "worker", ttl=30)
        table.release(lease)
    after = rss_bytes()
    assert table.resource_count() == 0
    # Before the fix: ~600 bytes per name ever used, ~600 MB here.
    assert after - before < 48 * 1024 * 1024, (before, after)


def test_expired_names_are_forgotten_after_a_bounded_time() -> None:
    clock = ManualClock()
    table = LeaseTable(clock=clock)
    leases = [table.acquire(f"job-{i}", "w", ttl=1.0) for i in range(10_000)]
    assert table.resource_count() == 10_000
    clock.advance(1.0)
    assert all(lease.lost for lease in leases)
    with pytest.raises(LeaseExpiredError):
        table.renew(leases[5], 1.0)
    clock.advance(61.0)
    assert table.resource_count() == 0
    with pytest.raises(NotHolderError):
        table.renew(leases[5], 1.0)


def test_the_issue_sequence_a_shorter_renewal_then_a_takeover() -> None:
    clock = ManualClock()
    table = LeaseTable(clock=clock)
    a = table.acquire("r", "a", ttl=10)
    table.renew(a, 2.0)
    assert a.expires_at == 2.0 and not a.lost
    clock.advance(3.0)
    b = table.acquire("r", "b", ttl=10)
    assert b.token == a.token + 1
    assert a.lost and a.expires_at == 2.0
    assert "lost=True" in repr(a)


def test_a_lease_agrees_with_its_table_under_random_renewals() -> None:
    """A model of one resource: who holds it, its token and expiry. After
    every step each Lease object ever handed out must say what the model
    says (lost, expires_at, token)."""
    seed = int(os.environ.get("QK_TEST_SEED", "20261202"))
    for run in range(40):
        rng = random.Random(seed + run)
        clock = ManualClock()
        table = LeaseTable(clock=clock)
        now = 0.0
        holder: tuple[qk.Lease, float] | None = None  # the live lease and its expiry
        leases: list[qk.Lease] = []
        expiry: dict[int, float] = {}  # token -> last expiry the table set
        for step in range(60):
            where = f"seed {seed + run} step {step}"
            if holder is not None and now >= holder[1]:
                holder = None
            op = rng.choice(["acquire", "renew", "renew", "release", "advance", "advance"])
            if op == "acquire":
                owner = rng.choice("ab")
                ttl = rng.choice([0.5, 1.0, 2.0, 10.0])
                got = table.try_acquire("r", owner, ttl=ttl)
                assert (got is None) == (holder is not None), where
                if got is not None:
                    holder = (got, now + ttl)
                    leases.append(got)
                    expiry[got.token] = now + ttl
            elif op == "renew" and leases:
                lease = rng.choice(leases)
                ttl = rng.choice([0.25, 1.0, 3.0, 10.0])
                if holder is not None and holder[0] is lease:
                    table.renew(lease, ttl)
                    holder = (lease, now + ttl)
                    expiry[lease.token] = now + ttl
                else:
                    with pytest.raises((LeaseExpiredError, NotHolderError)):
                        table.renew(lease, ttl)
            elif op == "release" and leases:
                lease = rng.choice(leases)
                if holder is not None and holder[0] is lease:
                    table.release(lease)
                    holder = None
                else:
                    with pytest.raises((LeaseExpiredError, NotHolderError)):
                        table.release(lease)
            else:
                dt = rng.choice([0.1, 0.5, 1.0, 2.5])
                clock.advance(dt)
                now += dt
            if holder is not None and now >= holder[1]:
                holder = None
            for lease in leases:
                live = holder is not None and holder[0] is lease
                assert lease.lost == (not live), f"{where}: {lease!r}"
                assert lease.expires_at == pytest.approx(expiry[lease.token], abs=1e-9), f"{where}: {lease!r}"


def test_an_asyncio_storm_of_timed_out_waiters_does_not_starve_live_ones() -> None:
    """5,000 tasks wait with wait_for(0.2 s); the holder lets go at 2 ms.
    Waiters that time out must pass a grant on at once, so the lock keeps
    moving: before, every waiter timed out although the lock was free."""

    async def storm() -> tuple[int, int, float]:
        table = LeaseTable()
        holder = table.acquire("hot", "holder", ttl=30)
        got = 0
        timed_out = 0

        async def waiter(i: int) -> None:
            nonlocal got, timed_out
            try:
                lease = await asyncio.wait_for(table.acquire_async("hot", f"w{i}", ttl=30), 0.2)
            except asyncio.TimeoutError:
                timed_out += 1
                return
            got += 1
            table.release(lease)

        async def let_go() -> None:
            await asyncio.sleep(0.002)
            table.release(holder)

        start = time.monotonic()
        await asyncio.gather(let_go(), *(waiter(i) for i in range(5000)))
        # Nobody may be left holding or queued.
        assert table.queued("hot") == 0
        assert table.try_acquire("hot", "after", ttl=1) is not None
        return got, timed_out, time.monotonic() - start

    got, timed_out, took = asyncio.run(storm())
    assert got + timed_out == 5000
    assert got > 0 and took < 20, (got, timed_out, took)


def test_a_grant_to_cancelled_waiters_passes_on_at_once() -> None:
    """Waiters cancelled (as wait_for does at its deadline) but not yet run
    by the loop: a release must hand the lock straight to the live waiter
    behind them, in the releasing call, not one loop iteration per dead
    waiter."""

    async def main() -> None:
        table = LeaseTable()
        holder = table.acquire("r", "holder", ttl=30)
        dead = [asyncio.ensure_future(table.acquire_async("r", f"dead{i}", ttl=30)) for i in range(300)]
        live = asyncio.ensure_future(table.acquire_async("r", "live", ttl=30))
        await asyncio.sleep(0)  # every request is queued now
        assert table.queued("r") == 301
        for d in dead:
            d.cancel()  # their futures are cancelled now; their tasks run later
        table.release(holder)
        # In the releasing call: past all 300 cancelled waiters to the live one.
        assert table.queued("r") == 0
        assert table.try_acquire("r", "intruder", ttl=1) is None
        lease = await asyncio.wait_for(live, 5)
        assert lease.owner == "live" and not lease.lost
        for d in dead:
            with pytest.raises(asyncio.CancelledError):
                await d
        table.release(lease)
        assert table.try_acquire("r", "after", ttl=1) is not None

    asyncio.run(main())
