//! The one error type of the core. Each variant maps to a stable C status
//! code (`src/ffi/status.rs`) and to a Python exception class.

use thiserror::Error as ThisError;

/// What went wrong, with a message meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of range or malformed (zero weight, bad server spec, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A lookup on a ring that has no nodes.
    #[error("the ring has no nodes")]
    EmptyRing,
    /// The named node is not in the ring.
    #[error("node not found: {0:?}")]
    NodeNotFound(String),
    /// A node of that name is already in the ring.
    #[error("node already exists: {0:?}")]
    NodeExists(String),
    /// Serialized data (a ring snapshot, a Paxos wire message or record
    /// file) is damaged: bad magic, truncated, trailing bytes, checksum
    /// mismatch, or fields no encoder writes.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Data (a snapshot, a wire message, a record file) in a format version
    /// this build cannot read.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version the data declares.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// A blocking acquire gave up: its timeout passed before the lease was
    /// granted (a timeout of zero fails at once when the lease is not free).
    #[error("timed out waiting for a lease on {resource:?}")]
    Timeout {
        /// The resource that was asked for.
        resource: String,
    },
    /// A blocking acquire was stopped by its cancel token (or its table
    /// was closed) before the lease was granted; nothing is held.
    #[error("the acquire of {resource:?} was cancelled")]
    Cancelled {
        /// The resource that was asked for.
        resource: String,
    },
    /// A try-acquire found the resource held, queued for, or in lock-delay.
    #[error("resource {resource:?} is busy")]
    Busy {
        /// The resource that was asked for.
        resource: String,
    },
    /// The lease's time ran out before this renew or release (and no one
    /// has been granted the resource since).
    #[error("lease {token} on {resource:?} has expired")]
    LeaseExpired {
        /// The lease's resource.
        resource: String,
        /// The lease's fencing token.
        token: u64,
    },
    /// The caller does not hold this lease: wrong owner, unknown token,
    /// released already, or superseded by a later grant.
    #[error("{owner:?} does not hold lease {token} on {resource:?}")]
    NotHolder {
        /// The resource named in the call.
        resource: String,
        /// The owner named in the call.
        owner: String,
        /// The token named in the call.
        token: u64,
    },
    /// A fencing token older than the newest one the fence has seen.
    #[error("stale fencing token {token} for {resource:?}: {highest} was seen")]
    StaleToken {
        /// The protected resource.
        resource: String,
        /// The rejected token.
        token: u64,
        /// The highest token seen for the resource.
        highest: u64,
    },
    /// A time earlier than one already seen for the same node (times must
    /// come from a monotonic clock).
    #[error(
        "time went backwards for {node:?}: {now_ns} ns is before the last heartbeat at {last_ns} ns"
    )]
    NotMonotonic {
        /// The node named in the call.
        node: String,
        /// Its last heartbeat.
        last_ns: u64,
        /// The rejected time.
        now_ns: u64,
    },
    /// Durable storage failed (an I/O error reading, writing or syncing).
    /// A Paxos node that hits one stops: every later call returns this error.
    #[error("storage failure: {0}")]
    Storage(String),
    /// A record file is damaged (not a torn final write): a checksum
    /// mismatch or undecodable data with or without intact records after
    /// it. The file was left untouched; the replica must not start on it
    /// (`docs/PAXOS-STORAGE.md`).
    #[error("storage corrupt: {0}")]
    StorageCorrupt(String),
    /// A record file is locked by another open storage (a live replica).
    #[error("storage in use: {0}")]
    StorageInUse(String),
    /// A record file belongs to another cluster or replica.
    #[error("storage mismatch: {0}")]
    StorageMismatch(String),
    /// Decoding untrusted bytes would need more work or memory than the
    /// caller's budget allows (a snapshot declaring a huge ring).
    #[error("decode limit exceeded: {0}")]
    LimitExceeded(String),
    /// The operation needs the leader and this node is not it; `leader` is
    /// the leader this node knows of, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node follows, if it knows one.
        leader: Option<u32>,
    },
    /// The lease backend (a Redis server) cannot be reached or refused the
    /// session: connection refused or dropped, connect or command timeout,
    /// authentication failed, server loading or read-only. Returned within
    /// the configured timeouts; a later call reconnects.
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub(crate) fn storage(msg: impl Into<String>) -> Self {
        Error::Storage(msg.into())
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn unavailable(msg: impl Into<String>) -> Self {
        Error::BackendUnavailable(msg.into())
    }
}
