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
    /// Serialized data (a snapshot) is damaged: bad magic, truncated,
    /// trailing bytes, checksum mismatch, or fields no encoder writes.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// A snapshot in a format version this build cannot read.
    #[error("unsupported snapshot format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version the data declares.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }
}
