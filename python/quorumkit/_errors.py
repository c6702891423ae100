"""quorumkit's exception classes.

Each specific error also subclasses the matching built-in, so callers can
catch by kind (``except ValueError``) or by library (``except QuorumkitError``).
The native module raises these very classes.
"""

from __future__ import annotations

__all__ = [
    "QuorumkitError",
    "InvalidArgumentError",
    "EmptyRingError",
    "NodeNotFoundError",
    "NodeExistsError",
    "CorruptSnapshotError",
    "UnsupportedVersionError",
    "LockTimeoutError",
    "LockBusyError",
    "LeaseExpiredError",
    "NotHolderError",
    "StaleTokenError",
    "NonMonotonicTimeError",
    "StorageError",
    "StorageCorruptError",
    "StorageInUseError",
    "StorageMismatchError",
    "LimitExceededError",
    "AcquireCancelledError",
    "BackendUnavailableError",
    "NotLeaderError",
    "SimulationViolation",
]


class QuorumkitError(Exception):
    """Base class of every error quorumkit raises (besides TypeError for wrong types)."""


class InvalidArgumentError(QuorumkitError, ValueError):
    """An argument is out of range or malformed: zero or negative weight,
    ``n`` larger than the ring, a bad server spec or compat mode, ..."""


class EmptyRingError(QuorumkitError, LookupError):
    """A lookup on a ring that has no nodes."""


class NodeNotFoundError(QuorumkitError, KeyError):
    """The named node is not in the ring."""


class NodeExistsError(QuorumkitError, ValueError):
    """A node of that name is already in the ring."""


class CorruptSnapshotError(QuorumkitError, ValueError):
    """Snapshot bytes are damaged: bad magic, truncated, trailing bytes,
    checksum mismatch, or fields no encoder writes."""


class UnsupportedVersionError(QuorumkitError, ValueError):
    """A snapshot in a format version this build cannot read."""


class LockTimeoutError(QuorumkitError, TimeoutError):
    """A blocking acquire's timeout passed before the lease was granted."""


class LockBusyError(QuorumkitError, BlockingIOError):
    """A try-acquire found the resource held, queued for, or in lock-delay."""


class LeaseExpiredError(QuorumkitError):
    """The lease expired before this renew or release."""


class NotHolderError(QuorumkitError, PermissionError):
    """The caller does not hold this lease: wrong owner, unknown token,
    released already, or superseded by a later grant."""


class StaleTokenError(QuorumkitError, ValueError):
    """A fencing token older than the newest one the fence has seen."""


class NonMonotonicTimeError(QuorumkitError, ValueError):
    """A time earlier than one already seen for the same node: failure
    detector times must come from a monotonic clock."""


class StorageError(QuorumkitError, OSError):
    """Durable storage failed (an I/O error). A Paxos node that hits one
    stops: every later call on it raises this error."""


class StorageCorruptError(StorageError):
    """A Paxos record file is damaged: a checksum mismatch or undecodable
    data, not a torn final write. The file was left untouched; do not start
    the replica on it (docs/PAXOS-STORAGE.md says what to do)."""


class StorageInUseError(StorageError):
    """A Paxos record file is locked by another open node, in this process
    or another."""


class StorageMismatchError(StorageError, ValueError):
    """A Paxos record file belongs to another cluster id or replica id."""


class LimitExceededError(QuorumkitError, ValueError):
    """Decoding untrusted bytes would need more work than the budget allows:
    a snapshot declaring a ring of more points than ``max_points`` (default
    2**22). Pass a larger ``max_points`` to ``from_bytes`` to load it."""


class AcquireCancelledError(QuorumkitError):
    """A blocking acquire was stopped by its ``CancelToken`` before the lease
    was granted; nothing is held."""


class BackendUnavailableError(QuorumkitError, ConnectionError):
    """A lease backend (a Redis server) cannot be reached or refused the
    session; raised within the configured timeouts, never a hang."""


class NotLeaderError(QuorumkitError):
    """The operation needs the leader and this node is not it."""


class SimulationViolation(QuorumkitError, AssertionError):
    """A simulated cluster (``PaxosCluster``) broke a property its checkers
    watch: agreement, validity, in-order delivery, lease exclusivity,
    liveness. Attributes: ``kind`` (the property), ``seed`` (replays the
    run), ``time`` (simulated seconds), ``node`` and ``slot`` (or None),
    ``detail``."""

    kind: str
    seed: int
    time: float
    node: int | None
    slot: int | None
    detail: str
