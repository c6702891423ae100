"""quorumkit: consistent hashing and lock leases (and, later, Paxos) from one Rust core.

>>> import quorumkit as qk
>>> ring = qk.HashRing(["cache-a", "cache-b", "cache-c"])
>>> ring.get_node("user:42") in ring
True
"""

from __future__ import annotations

from quorumkit._errors import (
    EmptyRingError,
    InvalidArgumentError,
    LeaseExpiredError,
    LockBusyError,
    LockTimeoutError,
    NodeExistsError,
    NodeNotFoundError,
    NotHolderError,
    QuorumkitError,
    StaleTokenError,
)
from quorumkit._native import (
    RING_SEED,
    Fence,
    HashRing,
    KetamaRing,
    Lease,
    LeaseContext,
    LeaseTable,
    ManualClock,
    __version__,
    ketama_hash,
    key_hash,
)

__all__ = [
    "RING_SEED",
    "EmptyRingError",
    "Fence",
    "HashRing",
    "InvalidArgumentError",
    "KetamaRing",
    "Lease",
    "LeaseContext",
    "LeaseExpiredError",
    "LeaseTable",
    "LockBusyError",
    "LockTimeoutError",
    "ManualClock",
    "NodeExistsError",
    "NodeNotFoundError",
    "NotHolderError",
    "QuorumkitError",
    "StaleTokenError",
    "__version__",
    "ketama_hash",
    "key_hash",
]
