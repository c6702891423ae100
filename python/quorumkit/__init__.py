"""quorumkit: consistent hashing (and, later, lock leases and Paxos) from one Rust core.

>>> import quorumkit as qk
>>> ring = qk.HashRing(["cache-a", "cache-b", "cache-c"])
>>> ring.get_node("user:42") in ring
True
"""

from __future__ import annotations

from quorumkit._errors import (
    EmptyRingError,
    InvalidArgumentError,
    NodeExistsError,
    NodeNotFoundError,
    QuorumkitError,
)
from quorumkit._native import (
    RING_SEED,
    HashRing,
    KetamaRing,
    Md5Ring,
    __version__,
    ketama_hash,
    key_hash,
)

__all__ = [
    "RING_SEED",
    "EmptyRingError",
    "HashRing",
    "InvalidArgumentError",
    "KetamaRing",
    "Md5Ring",
    "NodeExistsError",
    "NodeNotFoundError",
    "QuorumkitError",
    "__version__",
    "ketama_hash",
    "key_hash",
]
