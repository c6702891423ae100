"""``qk.LeaseClient``: the native client of a replicated lease service
(``quorumkit serve``), plus ``lock()`` with auto-renew and the asyncio
calls, written on the native acquire/renew/release."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType


from quorumkit import _native
from quorumkit._native import RemoteLease


class LeaseClient(_native.LeaseClient):
    """A client of a replicated lease service: ``LeaseClient(["127.0.0.1:7001",
    ...], secret=..., cluster_id=1, timeout=10.0)``. Thread-safe."""

    def lock(self, resource: str, *, owner: str, ttl: float, timeout: float | None = None,
             shared: bool = False) -> RemoteLeaseContext:
        """``with client.lock(resource, owner=..., ttl=...) as lease:`` acquires
        (blocking), renews every ttl/3 in the background and releases on exit.
        If the lease was lost meanwhile (``ctx.lost`` set), leaving the block
        raises the error that ended it (``LeaseExpiredError``, ``NotHolderError``
        or ``BackendUnavailableError``): the critical section ran unprotected."""
        return RemoteLeaseContext(self, resource, owner, ttl, timeout, shared)

    async def acquire_async(self, resource: str, owner: str, ttl: float, timeout: float | None = None,
                            shared: bool = False) -> RemoteLease:
        """``acquire`` on a worker thread: the event loop never blocks. A
        cancelled task's request stays queued until its timeout; pass one."""
        return await asyncio.to_thread(self.acquire, resource, owner, ttl, timeout, shared)

    def lock_async(self, resource: str, *, owner: str, ttl: float, timeout: float | None = None,
                   shared: bool = False) -> RemoteLeaseContext:
        """``async with client.lock_async(...) as lease:``: ``lock`` for asyncio."""
        return RemoteLeaseContext(self, resource, owner, ttl, timeout, shared)


class RemoteLeaseContext:
    """The context manager of ``LeaseClient.lock`` (sync and async)."""

    def __init__(self, client: LeaseClient, resource: str, owner: str, ttl: float,
                 timeout: float | None, shared: bool) -> None:
        self._client = client
        self._args = (resource, owner, ttl, timeout, shared)
        self._ttl = ttl
        self.lease: RemoteLease | None = None
        self.lost = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _renew_loop(self) -> None:
        interval = self._ttl / 3
        while not self._stop.wait(interval):
            lease = self.lease
            assert lease is not None
            try:
                lease = self.lease = self._client.renew(lease, self._ttl)
            except Exception as e:  # noqa: BLE001 - every failure ends the lease's protection
                if not lease.valid or not isinstance(e, ConnectionError):
                    self.error = e
                    self.lost.set()
                    return
            if not lease.valid:
                self.error = self.error or TimeoutError("the lease ran out before a renewal succeeded")
                self.lost.set()
                return

    def _start(self, lease: RemoteLease) -> RemoteLease:
        self.lease = lease
        self._renewer = threading.Thread(target=self._renew_loop, name="qk-lease-renew", daemon=True)
        self._renewer.start()
        return lease

    def _finish(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        lease = self.lease
        if self.lost.is_set():
            assert self.error is not None
            raise self.error
        if lease is not None:
            self._client.release(lease)

    def __enter__(self) -> RemoteLease:
        return self._start(self._client.acquire(*self._args))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._finish()

    async def __aenter__(self) -> RemoteLease:
        return self._start(await self._client.acquire_async(*self._args))

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self._finish)

    def __repr__(self) -> str:
        return f"RemoteLeaseContext({self._args[0]!r}, lease={self.lease!r}, lost={self.lost.is_set()})"


__all__ = ["LeaseClient", "RemoteLeaseContext", "RemoteLease"]
