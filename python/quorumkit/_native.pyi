"""Type stubs for quorumkit._native, the Rust extension (checked by mypy.stubtest)."""

from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, final

from typing_extensions import Buffer, Self, TypeAlias

from quorumkit._asyncio import AsyncLeaseContext

__all__ = [
    "Fence",
    "HashRing",
    "KetamaRing",
    "Lease",
    "LeaseContext",
    "LeaseTable",
    "ManualClock",
    "RING_SEED",
    "_Ticket",
    "__version__",
    "ketama_hash",
    "key_hash",
]

__version__: str
RING_SEED: int

_Key: TypeAlias = str | bytes | bytearray | memoryview
"""A key: str (hashed as UTF-8), bytes, bytearray or memoryview."""

def key_hash(key: _Key) -> int:
    """xxh3-64 of ``key`` with RING_SEED: the key's position on a HashRing."""

def ketama_hash(key: _Key) -> int:
    """ketama's hash: the little-endian u32 of md5(key)[0:4]."""

@final
class HashRing:
    """A weighted virtual-node ring on xxh3-64."""

    def __new__(
        cls,
        nodes: Iterable[str] | Mapping[str, int] | None = None,
        *,
        vnodes: int = 160,
    ) -> Self: ...
    def add_node(self, name: str, weight: int = 1) -> None: ...
    def remove_node(self, name: str) -> None: ...
    def set_weight(self, name: str, weight: int) -> None: ...
    def weight(self, name: str) -> int: ...
    def get_node(self, key: _Key) -> str: ...
    def get_nodes(self, key: _Key, n: int) -> list[str]: ...
    def get_node_batch(
        self, keys: Iterable[_Key] | Buffer, *, key_size: int | None = None
    ) -> list[str]: ...
    def shares(self) -> dict[str, float]: ...
    @property
    def nodes(self) -> list[str]: ...
    @property
    def vnodes(self) -> int: ...
    @property
    def point_count(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...

@final
class KetamaRing:
    """Ketama (MD5) consistent hashing, bit-exact with libmemcached or uhashring."""

    def __new__(
        cls,
        servers: Iterable[str | tuple[str, int, int]] | Mapping[str, int],
        *,
        compat: str = "libmemcached",
    ) -> Self: ...
    def add_node(self, spec: str, weight: int = 1) -> None: ...
    def remove_node(self, name: str) -> None: ...
    def set_weight(self, name: str, weight: int) -> None: ...
    def weight(self, name: str) -> int: ...
    def get_node(self, key: _Key) -> str: ...
    def get_nodes(self, key: _Key, n: int) -> list[str]: ...
    def get_node_batch(
        self, keys: Iterable[_Key] | Buffer, *, key_size: int | None = None
    ) -> list[str]: ...
    def shares(self) -> dict[str, float]: ...
    def points(self) -> list[tuple[int, str]]: ...
    @staticmethod
    def key_hash(key: _Key) -> int: ...
    @property
    def compat(self) -> str: ...
    @property
    def nodes(self) -> list[str]: ...
    @property
    def point_count(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...

# ---------------------------------------------------------------- leases

@final
class ManualClock:
    """A monotonic clock that moves only when told to (seconds as floats).

    Moving it drives every table on it before ``advance``/``set`` return:
    expired leases are dropped, waiters granted, auto-renewals run.
    """

    def __new__(cls, start: float = 0.0) -> Self: ...
    def now(self) -> float: ...
    def advance(self, seconds: float) -> None: ...
    def set(self, seconds: float) -> None: ...

@final
class Lease:
    """A granted lease. ``expires_at`` is in seconds of its table's clock and
    moves forward on renewal; ``token`` is the fencing token."""

    @property
    def resource(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def token(self) -> int: ...
    @property
    def shared(self) -> bool: ...
    @property
    def expires_at(self) -> float: ...
    @property
    def lost(self) -> bool: ...
    def wait_lost(self, timeout: float | None = None) -> bool: ...

@final
class LeaseContext:
    """``with table.lock(...) as lease``: acquires on entry, renews in the
    background (``auto_renew``), releases on exit."""

    def __enter__(self) -> Lease: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

@final
class _Ticket:
    """A queued asynchronous request (used by quorumkit._asyncio)."""

    def cancel(self) -> bool: ...

@final
class LeaseTable:
    """Expiring shared/exclusive locks with fencing tokens and FIFO waiters."""

    def __new__(cls, clock: ManualClock | None = None, *, lock_delay: float = 0.0) -> Self: ...
    @property
    def clock(self) -> ManualClock | None: ...
    @property
    def lock_delay(self) -> float: ...
    def now(self) -> float: ...
    def acquire(
        self,
        resource: str,
        owner: str,
        ttl: float,
        timeout: float | None = None,
        shared: bool = False,
    ) -> Lease: ...
    def try_acquire(self, resource: str, owner: str, ttl: float, shared: bool = False) -> Lease | None: ...
    def renew(self, lease: Lease, ttl: float) -> Lease: ...
    def release(self, lease: Lease) -> None: ...
    def queued(self, resource: str) -> int: ...
    def lock(
        self,
        resource: str,
        *,
        owner: str,
        ttl: float,
        timeout: float | None = None,
        shared: bool = False,
        auto_renew: bool = True,
    ) -> LeaseContext: ...
    def acquire_async(
        self,
        resource: str,
        owner: str,
        ttl: float,
        timeout: float | None = None,
        shared: bool = False,
    ) -> Coroutine[Any, Any, Lease]: ...
    def lock_async(
        self,
        resource: str,
        *,
        owner: str,
        ttl: float,
        timeout: float | None = None,
        shared: bool = False,
        auto_renew: bool = True,
    ) -> AsyncLeaseContext: ...
    def _enqueue(
        self,
        resource: str,
        owner: str,
        ttl: float,
        timeout: float | None,
        shared: bool,
        callback: Callable[[Lease | BaseException], object],
    ) -> Lease | _Ticket: ...
    def _start_renewal(self, lease: Lease, ttl: float) -> None: ...
    def _finish(self, lease: Lease, raise_errors: bool) -> None: ...

@final
class Fence:
    """Highest fencing token seen per resource: what a protected resource
    checks before acting for a lease holder."""

    def __new__(cls) -> Self: ...
    def check(self, resource: str, token: int) -> None: ...
    def highest(self, resource: str) -> int | None: ...
    def __len__(self) -> int: ...
