"""quorumkit: consistent hashing and lock leases (and, later, Paxos) from one Rust core.

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
    LeaseExpiredError,
    LockBusyError,
    LockTimeoutError,
    NodeExistsError,
    NodeNotFoundError,
    NonMonotonicTimeError,
    NotHolderError,
    NotLeaderError,
    QuorumkitError,
    SimulationViolation,
    StaleTokenError,
    StorageError,
    UnsupportedVersionError,
)
from quorumkit._native import (
    RING_SEED,
    BoundedLoadBalancer,
    CommitSimulation,
    FailureDetector,
    Fence,
    HashRing,
    KetamaRing,
    Lease,
    LeaseContext,
    LeaseTable,
    Maglev,
    ManualClock,
    PaxosCluster,
    PaxosNode,
    RendezvousHash,
    Md5Ring,
    TwoPhaseCommitCoordinator,
    TwoPhaseCommitParticipant,
    TxnOutput,
    __version__,
    jump_hash,
    jump_hash_batch,
    ketama_hash,
    key_hash,
)

# The simulated cluster under its generic name.
Simulation = PaxosCluster

__all__ = [
    "RING_SEED",
    "BoundedLoadBalancer",
    "CommitSimulation",
    "CorruptSnapshotError",
    "EmptyRingError",
    "FailureDetector",
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
    "Maglev",
    "Md5Ring",
    "ManualClock",
    "NodeExistsError",
    "NodeNotFoundError",
    "NonMonotonicTimeError",
    "NotHolderError",
    "NotLeaderError",
    "PaxosCluster",
    "PaxosNode",
    "QuorumkitError",
    "RendezvousHash",
    "SimulationViolation",
    "Simulation",
    "StaleTokenError",
    "StorageError",
    "TwoPhaseCommitCoordinator",
    "TwoPhaseCommitParticipant",
    "TxnOutput",
    "UnsupportedVersionError",
    "__version__",
    "jump_hash",
    "jump_hash_batch",
    "ketama_hash",
    "key_hash",
]
