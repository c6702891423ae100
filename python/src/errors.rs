//! The one place where core errors become Python exceptions.
//!
//! The exception classes live in `quorumkit/_errors.py` (Python makes the
//! multiple inheritance, e.g. `InvalidArgumentError(QuorumkitError,
//! ValueError)`, trivial); this module imports them once and raises them.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use quorumkit::Error;

/// Which exception class to raise.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `QuorumkitError`, the base (internal errors).
    Base,
    /// `InvalidArgumentError(QuorumkitError, ValueError)`.
    InvalidArgument,
    /// `EmptyRingError(QuorumkitError, LookupError)`.
    EmptyRing,
    /// `NodeNotFoundError(QuorumkitError, KeyError)`.
    NodeNotFound,
    /// `NodeExistsError(QuorumkitError, ValueError)`.
    NodeExists,
    /// `CorruptSnapshotError(QuorumkitError, ValueError)`.
    Corrupt,
    /// `UnsupportedVersionError(QuorumkitError, ValueError)`.
    UnsupportedVersion,
    /// `LockTimeoutError(QuorumkitError, TimeoutError)`.
    LockTimeout,
    /// `LockBusyError(QuorumkitError, BlockingIOError)`.
    LockBusy,
    /// `LeaseExpiredError(QuorumkitError)`.
    LeaseExpired,
    /// `NotHolderError(QuorumkitError, PermissionError)`.
    NotHolder,
    /// `StaleTokenError(QuorumkitError, ValueError)`.
    StaleToken,
    /// `NonMonotonicTimeError(QuorumkitError, ValueError)`.
    NotMonotonic,
    /// `StorageError(QuorumkitError, OSError)`.
    Storage,
    /// `NotLeaderError(QuorumkitError)`.
    NotLeader,
    /// `StorageCorruptError(StorageError)`.
    StorageCorrupt,
    /// `StorageInUseError(StorageError)`.
    StorageInUse,
    /// `StorageMismatchError(StorageError, ValueError)`.
    StorageMismatch,
    /// `LimitExceededError(QuorumkitError, ValueError)`.
    LimitExceeded,
    /// `AcquireCancelledError(QuorumkitError)`.
    Cancelled,
    /// `BackendUnavailableError(QuorumkitError, ConnectionError)`.
    BackendUnavailable,
}

struct Classes {
    base: Py<PyType>,
    invalid: Py<PyType>,
    empty: Py<PyType>,
    not_found: Py<PyType>,
    exists: Py<PyType>,
    corrupt: Py<PyType>,
    version: Py<PyType>,
    timeout: Py<PyType>,
    busy: Py<PyType>,
    expired: Py<PyType>,
    not_holder: Py<PyType>,
    stale: Py<PyType>,
    not_monotonic: Py<PyType>,
    storage: Py<PyType>,
    not_leader: Py<PyType>,
    storage_corrupt: Py<PyType>,
    storage_in_use: Py<PyType>,
    storage_mismatch: Py<PyType>,
    limit: Py<PyType>,
    cancelled: Py<PyType>,
    unavailable: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&'static Classes> {
    CLASSES.get_or_try_init(py, || {
        let m = py.import("quorumkit._errors")?;
        let get = |name: &str| -> PyResult<Py<PyType>> {
            Ok(m.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Classes {
            base: get("QuorumkitError")?,
            invalid: get("InvalidArgumentError")?,
            empty: get("EmptyRingError")?,
            not_found: get("NodeNotFoundError")?,
            exists: get("NodeExistsError")?,
            corrupt: get("CorruptSnapshotError")?,
            version: get("UnsupportedVersionError")?,
            timeout: get("LockTimeoutError")?,
            busy: get("LockBusyError")?,
            expired: get("LeaseExpiredError")?,
            not_holder: get("NotHolderError")?,
            stale: get("StaleTokenError")?,
            not_monotonic: get("NonMonotonicTimeError")?,
            storage: get("StorageError")?,
            not_leader: get("NotLeaderError")?,
            storage_corrupt: get("StorageCorruptError")?,
            storage_in_use: get("StorageInUseError")?,
            storage_mismatch: get("StorageMismatchError")?,
            limit: get("LimitExceededError")?,
            cancelled: get("AcquireCancelledError")?,
            unavailable: get("BackendUnavailableError")?,
        })
    })
}

/// A new exception of `kind` with message `msg`.
pub fn new_err(py: Python<'_>, kind: Kind, msg: impl Into<String>) -> PyErr {
    let c = match classes(py) {
        Ok(c) => c,
        // The package is broken (quorumkit._errors missing): say so.
        Err(e) => return e,
    };
    let ty = match kind {
        Kind::Base => &c.base,
        Kind::InvalidArgument => &c.invalid,
        Kind::EmptyRing => &c.empty,
        Kind::NodeNotFound => &c.not_found,
        Kind::NodeExists => &c.exists,
        Kind::Corrupt => &c.corrupt,
        Kind::UnsupportedVersion => &c.version,
        Kind::LockTimeout => &c.timeout,
        Kind::LockBusy => &c.busy,
        Kind::LeaseExpired => &c.expired,
        Kind::NotHolder => &c.not_holder,
        Kind::StaleToken => &c.stale,
        Kind::NotMonotonic => &c.not_monotonic,
        Kind::Storage => &c.storage,
        Kind::NotLeader => &c.not_leader,
        Kind::StorageCorrupt => &c.storage_corrupt,
        Kind::StorageInUse => &c.storage_in_use,
        Kind::StorageMismatch => &c.storage_mismatch,
        Kind::LimitExceeded => &c.limit,
        Kind::Cancelled => &c.cancelled,
        Kind::BackendUnavailable => &c.unavailable,
    };
    PyErr::from_type(ty.bind(py).clone(), msg.into())
}

/// `InvalidArgumentError(msg)`.
pub fn invalid(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    new_err(py, Kind::InvalidArgument, msg)
}

/// `TypeError(msg)`.
pub fn type_error(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

/// Maps a core error to its Python exception.
pub fn to_pyerr(py: Python<'_>, e: Error) -> PyErr {
    let kind = match &e {
        Error::InvalidArgument(_) => Kind::InvalidArgument,
        Error::EmptyRing => Kind::EmptyRing,
        Error::NodeNotFound(_) => Kind::NodeNotFound,
        Error::NodeExists(_) => Kind::NodeExists,
        Error::Corrupt(_) => Kind::Corrupt,
        Error::UnsupportedVersion { .. } => Kind::UnsupportedVersion,
        Error::Timeout { .. } => Kind::LockTimeout,
        Error::Busy { .. } => Kind::LockBusy,
        Error::LeaseExpired { .. } => Kind::LeaseExpired,
        Error::NotHolder { .. } => Kind::NotHolder,
        Error::StaleToken { .. } => Kind::StaleToken,
        Error::NotMonotonic { .. } => Kind::NotMonotonic,
        Error::Storage(_) => Kind::Storage,
        Error::NotLeader { .. } => Kind::NotLeader,
        Error::StorageCorrupt(_) => Kind::StorageCorrupt,
        Error::StorageInUse(_) => Kind::StorageInUse,
        Error::StorageMismatch(_) => Kind::StorageMismatch,
        Error::LimitExceeded(_) => Kind::LimitExceeded,
        Error::Cancelled { .. } => Kind::Cancelled,
        Error::BackendUnavailable(_) => Kind::BackendUnavailable,
        // `Error` is non_exhaustive: a variant added later is still ours.
        _ => Kind::Base,
    };
    let msg = match e {
        // KeyError's str() is the repr of its argument: keep it short.
        Error::NodeNotFound(name) => format!("node not found: {name:?}"),
        other => other.to_string(),
    };
    new_err(py, kind, msg)
}

/// Runs a core operation, mapping its error and turning a panic into a
/// `QuorumkitError` (never a `PanicException`).
pub fn guard<T>(py: Python<'_>, f: impl FnOnce() -> quorumkit::Result<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_pyerr(py, e)),
        Err(payload) => Err(panic_err(py, payload)),
    }
}

/// A `QuorumkitError` describing a caught panic.
pub fn panic_err(py: Python<'_>, payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    new_err(
        py,
        Kind::Base,
        format!("internal error in quorumkit: {what}"),
    )
}
