"""Observers and the asyncio face of ``Election``: ``observe()`` (an
iterator of leadership changes), ``observe_async()`` and
``campaign_async()``; all built on the native ``wait_change`` and
``campaign``, which release the GIL while they wait."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Optional, Tuple

if TYPE_CHECKING:
    from quorumkit._native import Election

Leader = Optional[Tuple[str, int]]

__all__ = ["campaign_async", "observe", "observe_async"]

# The longest wait handed to a worker thread by observe_async: a cancelled
# observer leaves a thread behind for at most this long.
_SLICE = 0.25


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def observe(election: Election, poll: float | None, idle_timeout: float | None) -> Iterator[Leader]:
    last = election.leader()
    yield last
    while True:
        now = election.wait_change(last, poll=poll, timeout=idle_timeout)
        if now == last:  # idle_timeout passed with no change
            return
        last = now
        yield now


async def observe_async(
    election: Election, poll: float | None, idle_timeout: float | None
) -> AsyncIterator[Leader]:
    loop = asyncio.get_running_loop()
    last = await loop.run_in_executor(None, election.leader)
    yield last
    while True:
        deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
        while True:
            left = _left(deadline)
            step = _SLICE if left is None else min(_SLICE, left)
            wait = functools.partial(election.wait_change, last, poll=poll, timeout=step)
            now = await loop.run_in_executor(None, wait)
            if now != last or (deadline is not None and time.monotonic() >= deadline):
                break
        if now == last:
            return
        last = now
        yield now


async def campaign_async(election: Election, timeout: float | None) -> int:
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, election.campaign, timeout)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        # The campaign cannot be withdrawn mid-wait: resign what it wins.
        def resign_won(f: asyncio.Future[int]) -> None:
            if not f.cancelled() and f.exception() is None:
                election.resign()

        fut.add_done_callback(resign_won)
        raise
