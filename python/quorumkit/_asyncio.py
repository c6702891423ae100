"""asyncio face of ``LeaseTable``: ``await table.acquire_async(...)`` and
``async with table.lock_async(...)``.

No polling and no thread per waiter: the request is queued in the table like
a blocking one, with a callback in place of a sleeping thread. Whichever
thread decides it (a release, another acquire, the table's timer thread at
a holder's expiry or at the request's timeout, a ``ManualClock`` move) calls
the callback, which hands the lease (or the timeout error) to the waiter's
event loop with ``call_soon_threadsafe``.

Cancelling a waiting task removes its request from the queue. A grant that
races with the cancellation (the task's future is cancelled at once, its
``except`` clause runs only on a later loop iteration) is passed on at once
by the thread that made it: the lock moves straight to the next live waiter
instead of waiting for the loop to reach each cancelled one.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Union

from quorumkit._native import _Ticket

if TYPE_CHECKING:
    from quorumkit._native import Lease, LeaseTable

__all__ = ["AsyncLeaseContext", "acquire_async"]


_passing = threading.local()


def _pass_on(table: LeaseTable, lease: Lease) -> None:
    """Releases a lease nobody waits for, on this thread, now. Releasing
    grants the next waiter, whose callback may land here again: those are
    queued and handled in this loop, not by recursion (a run of hundreds of
    cancelled waiters must not exhaust the stack)."""
    pending: list[tuple[LeaseTable, Lease]] | None = getattr(_passing, "pending", None)
    if pending is not None:
        pending.append((table, lease))
        return
    _passing.pending = pending = [(table, lease)]
    try:
        while pending:
            t, held = pending.pop()
            t._finish(held, False)
    finally:
        _passing.pending = None


def _deliver(fut: asyncio.Future[Lease], table: LeaseTable, outcome: Union[Lease, BaseException]) -> None:
    """On the waiter's loop: hand over the outcome, or give a lease back if
    nobody waits for it any more."""
    if isinstance(outcome, BaseException):
        if not fut.done():
            fut.set_exception(outcome)
    elif fut.done():  # cancelled while the grant was in flight
        _pass_on(table, outcome)
    else:
        fut.set_result(outcome)


async def acquire_async(
    table: LeaseTable,
    resource: str,
    owner: str,
    ttl: float,
    timeout: float | None = None,
    shared: bool = False,
) -> Lease:
    """See ``LeaseTable.acquire_async``."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Lease] = loop.create_future()

    def decided(outcome: Union[Lease, BaseException]) -> None:  # on the deciding thread
        if not isinstance(outcome, BaseException) and fut.cancelled():
            # The task was cancelled (wait_for timed out, ...): do not make
            # the lock wait for the loop to notice; give it to the next.
            _pass_on(table, outcome)
            return
        try:
            loop.call_soon_threadsafe(_deliver, fut, table, outcome)
        except RuntimeError:  # the loop is closed: nobody can take the lease
            if not isinstance(outcome, BaseException):
                table._finish(outcome, False)

    # Checks the arguments, then grants at once (a Lease), fails at once
    # (timeout=0 on a busy resource) or queues the request (a _Ticket).
    got = table._enqueue(resource, owner, ttl, timeout, shared, decided)
    if not isinstance(got, _Ticket):
        return got
    try:
        return await fut
    except asyncio.CancelledError:
        # Withdraw the request; if it was decided already, _deliver sees
        # the cancelled future and releases the lease.
        got.cancel()
        if fut.done() and not fut.cancelled():
            table._finish(fut.result(), False)  # delivered, but the task was cancelled
        raise


class AsyncLeaseContext:
    """``async with table.lock_async(...) as lease``: acquires without blocking
    the loop, renews in the background (``auto_renew``), releases on exit."""

    __slots__ = ("_table", "_args", "_auto_renew", "_lease")

    def __init__(
        self,
        table: LeaseTable,
        resource: str,
        owner: str,
        ttl: float,
        timeout: float | None,
        shared: bool,
        auto_renew: bool,
    ) -> None:
        self._table = table
        self._args = (resource, owner, ttl, timeout, shared)
        self._auto_renew = auto_renew
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        if self._lease is not None:
            raise RuntimeError("this lock_async() context is already entered")
        lease = await acquire_async(self._table, *self._args)
        if self._auto_renew:
            self._table._start_renewal(lease, self._args[2])
        self._lease = lease
        return lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            self._table._finish(lease, exc_type is None)
