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
    with pytest.raises(TypeError):
        qk.Election(t, "x", "a", 1).observe(poll="fast")
    with pytest.raises(ValueError):
        qk.Election(t, "x", "a", 1).observe(idle_timeout=-1)
    with pytest.raises(TypeError):
        qk.Election(t, "x", "a", 1).campaign_async(timeout="soon")


def observation(table):
    watcher = qk.Election(table, "obs", "watcher", 0.3)
    seen = []
    done = threading.Event()

    def watch():
        for leader in watcher.observe(poll=0.005, idle_timeout=1.0):
            seen.append(leader)
        done.set()

    th = threading.Thread(target=watch)
    th.start()

    def until(n):
        deadline = time.monotonic() + 3
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(seen) == n, seen

    until(1)
    a = qk.Election(table, "obs", "a", 0.3)
    b = qk.Election(table, "obs", "b", 0.3)
    ea = a.campaign(timeout=1)
    until(2)
    time.sleep(0.7)  # renewals are not changes
    a.resign()
    until(3)
    eb = b.campaign(timeout=1)
    until(4)
    b.resign()
    until(5)
    ea2 = a.campaign(timeout=1)
    until(6)
    start = time.monotonic()
    assert done.wait(3)
    assert time.monotonic() - start >= 0.9  # ended by idle_timeout
    th.join()
    assert seen == [None, ("a", ea), None, ("b", eb), None, ("a", ea2)]
    assert ea < eb < ea2
    a.resign()


def test_observe_in_process():
    observation(qk.LeaseTable())


def test_observe_over_redis(server):
    observation(qk.RedisLeaseTable(server.url))


def test_asyncio_campaign_and_observe(server):
    import asyncio

    table = qk.RedisLeaseTable(server.url)

    async def main():
        a = qk.Election(table, "svc", "a", 0.3)
        b = qk.Election(table, "svc", "b", 0.3)
        changes = []

        async def watch():
            async for leader in qk.Election(table, "svc", "w", 0.3).observe_async(poll=0.005, idle_timeout=0.6):
                changes.append(leader)

        watcher = asyncio.ensure_future(watch())
        while not changes:
            await asyncio.sleep(0.005)
        ea = await a.campaign_async(timeout=1)
        # b waits for its turn while the loop keeps running.
        bt = asyncio.ensure_future(b.campaign_async(timeout=5))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not bt.done()
        a.resign()
        eb = await asyncio.wait_for(bt, 2)
        assert eb > ea and b.is_leader
        # A cancelled campaign resigns the term it wins later.
        c = qk.Election(table, "svc", "c", 0.3)
        ct = asyncio.ensure_future(c.campaign_async(timeout=5))
        await asyncio.sleep(0.05)
        ct.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ct
        b.resign()  # c's queued campaign wins now, and resigns at once
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (c.is_leader or a.leader() is not None):
            await asyncio.sleep(0.01)
        assert not c.is_leader and a.leader() is None
        await asyncio.wait_for(watcher, 3)
        # c's instant term may or may not be seen between polls.
        terms = [x for x in changes if x is not None]
        assert changes[0] is None and changes[-1] is None
        assert terms[:2] == [("a", ea), ("b", eb)] and len(terms) <= 3

    asyncio.run(main())
