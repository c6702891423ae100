"""quorumkit: consistent hashing (and, later, lock leases and Paxos) from one Rust core.

>>> import quorumkit as qk
>>> ring = qk.HashRing(["cache-a", "cache-b", "cache-c"])
>>> ring.get_node("user:42") in ring
True
"""

from __future__ import annotations

from quorumkit._errors import (
    CorruptSnapshotError,
    EmptyRingError,
    InvalidArgumentError,
    NodeExistsError,
    NodeNotFoundError,
    QuorumkitError,
    UnsupportedVersionError,
)
from quorumkit._native import (
    RING_SEED,
    BoundedLoadBalancer,
    HashRing,
    KetamaRing,
    Maglev,
    RendezvousHash,
    Md5Ring,
    __version__,
    jump_hash,
    jump_hash_batch,
    ketama_hash,
    key_hash,
)

__all__ = [
    "RING_SEED",
    "BoundedLoadBalancer",
    "CorruptSnapshotError",
    "EmptyRingError",
    "HashRing",
    "InvalidArgumentError",
    "KetamaRing",
    "Maglev",
    "Md5Ring",
    "NodeExistsError",
    "NodeNotFoundError",
    "QuorumkitError",
    "UnsupportedVersionError",
    "RendezvousHash",
    "__version__",
    "jump_hash",
    "jump_hash_batch",
    "ketama_hash",
    "key_hash",
]
