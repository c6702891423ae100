"""asyncio: acquire_async / lock_async wait without polling and without a
thread per waiter, in FIFO order; cancelling a waiting task removes its
request and disturbs nobody else."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import quorumkit as qk
from quorumkit import InvalidArgumentError, LockTimeoutError


def run(coro):
    return asyncio.run(coro)


def test_acquire_async_free_and_held() -> None:
    async def main() -> None:
        table = qk.LeaseTable()
        a = await table.acquire_async("r", "a", 5.0)
        assert a.owner == "a"
        waiter = asyncio.ensure_future(table.acquire_async("r", "b", 5.0))
        await asyncio.sleep(0.01)
        assert not waiter.done() and table.queued("r") == 1
        table.release(a)
        b = await asyncio.wait_for(waiter, 2)
        assert b.owner == "b" and b.token > a.token

    run(main())


def test_fifo_many_waiters_no_thread_each() -> None:
    async def main() -> None:
        table = qk.LeaseTable()
        holder = await table.acquire_async("q", "h", 30.0)
        order: list[int] = []
        n = 200

        async def waiter(i: int) -> None:
            lease = await table.acquire_async("q", f"w{i}", 30.0)
            order.append(i)
            await asyncio.sleep(0)  # let others run while holding it
            table.release(lease)

        threads_before = threading.active_count()
        tasks = [asyncio.ensure_future(waiter(i)) for i in range(n)]
        await asyncio.sleep(0.01)
        assert table.queued("q") == n
        assert threading.active_count() <= threads_before + 1  # no thread per waiter
        table.release(holder)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert order == list(range(n))

    run(main())


def test_cancel_waiting_task() -> None:
    async def main() -> None:
        table = qk.LeaseTable()
        holder = table.acquire("c", "h", 30.0)
        got: list[str] = []

        async def waiter(name: str) -> None:
            lease = await table.acquire_async("c", name, 30.0)
            got.append(name)
            table.release(lease)

        tasks = {name: asyncio.ensure_future(waiter(name)) for name in ["a", "b", "c", "d"]}
        await asyncio.sleep(0.01)
        assert table.queued("c") == 4
        tasks["b"].cancel()
        tasks["c"].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks["b"]
        assert table.queued("c") == 2  # the cancelled requests left the queue
        table.release(holder)
        await asyncio.wait_for(asyncio.gather(tasks["a"], tasks["d"]), 5)
        assert got == ["a", "d"]
        assert tasks["c"].cancelled()
        assert table.try_acquire("c", "x", 1.0) is not None  # nothing leaked

    run(main())


def test_cancel_racing_a_grant_releases_it() -> None:
    """A grant that lands while the task is being cancelled is given back."""

    async def main() -> None:
        table = qk.LeaseTable()
        holder = table.acquire("race", "h", 30.0)
        task = asyncio.ensure_future(table.acquire_async("race", "w", 30.0))
        await asyncio.sleep(0.01)
        table.release(holder)  # grants w (delivery is scheduled on the loop)
        task.cancel()  # ... but w gives up before it runs
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        assert table.try_acquire("race", "x", 1.0) is not None

    run(main())


def test_async_timeout() -> None:
    async def main() -> None:
        table = qk.LeaseTable()
        holder = table.acquire("t", "h", 30.0)
        behind = asyncio.ensure_future(table.acquire_async("t", "b", 30.0, timeout=5.0))
        t0 = time.monotonic()
        with pytest.raises(LockTimeoutError):
            await table.acquire_async("t", "w", 1.0, timeout=0.05)
        assert 0.04 <= time.monotonic() - t0 < 1.0
        with pytest.raises(LockTimeoutError):
            await table.acquire_async("t", "w", 1.0, timeout=0)
        await asyncio.sleep(0.01)
        assert table.queued("t") == 1  # only `behind` is left
        table.release(holder)
        assert (await behind).owner == "b"

    run(main())


def test_async_expiry_of_holder_wakes_waiter() -> None:
    """No thread sleeps for an async waiter: the holder's expiry still hands over."""

    async def main() -> None:
        table = qk.LeaseTable()
        holder = table.acquire("x", "h", 0.05)
        t0 = time.monotonic()
        lease = await asyncio.wait_for(table.acquire_async("x", "w", 1.0), 2)
        assert lease.owner == "w" and holder.lost
        assert time.monotonic() - t0 < 0.5

    run(main())


def test_async_manual_clock() -> None:
    async def main() -> None:
        clock = qk.ManualClock()
        table = qk.LeaseTable(clock, lock_delay=1.0)
        table.acquire("m", "h", 10.0)
        task = asyncio.ensure_future(table.acquire_async("m", "w", 2.0))
        await asyncio.sleep(0.01)
        clock.advance(10.0)  # expired, then in lock-delay
        await asyncio.sleep(0.01)
        assert not task.done()
        clock.advance(1.0)
        lease = await asyncio.wait_for(task, 2)
        assert lease.expires_at == 13.0

    run(main())


def test_lock_async() -> None:
    async def main() -> None:
        table = qk.LeaseTable()
        inside = 0
        peak = 0

        async def worker(i: int) -> None:
            nonlocal inside, peak
            async with table.lock_async("la", owner=f"w{i}", ttl=0.05) as lease:
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.002 if i % 5 else 0.12)  # some outlive the TTL: auto-renew
                assert not lease.lost
                inside -= 1

        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(12))), 10)
        assert peak == 1
        assert table.try_acquire("la", "x", 1.0) is not None

    run(main())


def test_async_bad_arguments() -> None:
    async def main() -> None:
        table = qk.LeaseTable()
        with pytest.raises(InvalidArgumentError):
            await table.acquire_async("r", "o", -1.0)
        with pytest.raises(InvalidArgumentError):
            await table.acquire_async("r", "o", 1.0, timeout=-1)
        with pytest.raises(TypeError, match="resource"):
            await table.acquire_async(5, "o", 1.0)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            async with table.lock_async("r", owner="o", ttl=float("nan")):
                pass
        assert table.queued("r") == 0

    run(main())
