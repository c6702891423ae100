"""asyncio face of ``RedisLeaseTable``: ``await table.acquire_async(...)`` and
``async with table.lock_async(...)``.

A Redis wait is a blocking read on the waiter's own connection, so each
waiting coroutine runs its blocking call on a worker thread (the loop's
default executor) and never blocks the event loop. Cancelling the task
cancels the wait through a ``CancelToken`` (the library wakes the blocked
read within a round trip); a grant that raced the cancellation is released
at once, so the lease moves on to the next waiter.
"""

from __future__ import annotations

import asyncio
import functools
from types import TracebackType
from typing import TYPE_CHECKING

from quorumkit._native import CancelToken

if TYPE_CHECKING:
    from quorumkit._native import RedisLease, RedisLeaseContext, RedisLeaseTable

__all__ = ["AsyncRedisLeaseContext", "acquire_async", "lost_event"]


async def acquire_async(
    table: RedisLeaseTable,
    resource: str,
    owner: str,
    ttl: float,
    timeout: float | None,
    shared: bool,
) -> RedisLease:
    loop = asyncio.get_running_loop()
    token = CancelToken()
    call = functools.partial(table.acquire, resource, owner, ttl, timeout, shared, cancel=token)
    fut = loop.run_in_executor(None, call)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        token.cancel()
        try:
            lease = await fut
        except Exception:  # the cancel won (AcquireCancelledError) or the call failed
            pass
        else:  # granted just before the cancel reached it: give it back
            await loop.run_in_executor(None, table.release, lease)
        raise


def lost_event(lease: RedisLease) -> asyncio.Event:
    """``RedisLease.lost_event()``: an event of the running loop, set from the
    renewer thread (through ``call_soon_threadsafe``) when the lease is lost."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def lost(_lease: RedisLease, _error: BaseException) -> None:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop was closed meanwhile: nobody waits
            pass

    lease.on_lost(lost)
    return event


class AsyncRedisLeaseContext:
    """What ``RedisLeaseTable.lock_async()`` returns: ``async with`` acquires
    (on a worker thread), keeps the lease alive with the table's renewer,
    and releases on exit, raising the reason if the lease was lost."""

    def __init__(self, ctx: RedisLeaseContext) -> None:
        self._ctx = ctx

    async def __aenter__(self) -> RedisLease:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, self._ctx.__enter__)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # Not cancellable mid-wait: once the acquire ends, leave again.
            def leave(f: asyncio.Future[RedisLease]) -> None:
                if not f.cancelled() and f.exception() is None:
                    loop.run_in_executor(None, self._ctx.__exit__, None, None, None)

            fut.add_done_callback(leave)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._ctx.__exit__, exc_type, exc, tb)
