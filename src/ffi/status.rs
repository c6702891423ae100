//! `qk_status`: the result code of every fallible C function, and how a core
//! [`Error`] maps to one.
//!
//! The numbers are ABI: a code keeps its number forever and a retired code's
//! number is never reused. New codes take the next free number.

use std::ffi::c_char;

use crate::error::Error;

/// The result of every fallible `qk_` function: `QK_OK` (0) or one of the
/// `QK_ERR_*` codes. `qk_status_str()` names a code and
/// `qk_last_error_message()` gives the details of the calling thread's most
/// recent failure. The numbers are ABI-stable: they never change and are
/// never reused.
#[allow(non_camel_case_types)]
pub type qk_status = u32;

/// Success.
pub const QK_OK: qk_status = 0;
/// A required pointer argument is NULL.
pub const QK_ERR_NULL_ARG: qk_status = 1;
/// An argument is out of range or malformed (zero weight, bad server spec,
/// more replicas than nodes, an unknown enum value, ...).
pub const QK_ERR_INVALID_ARG: qk_status = 2;
/// A name is not valid UTF-8.
pub const QK_ERR_INVALID_UTF8: qk_status = 3;
/// A lookup on a ring that has no nodes.
pub const QK_ERR_EMPTY: qk_status = 4;
/// The named node (or the node or point at an index) does not exist.
pub const QK_ERR_NOT_FOUND: qk_status = 5;
/// A node of that name is already present.
pub const QK_ERR_ALREADY_EXISTS: qk_status = 6;
/// A caller-supplied buffer is too small; the message says how large it must be.
pub const QK_ERR_BUFFER_TOO_SMALL: qk_status = 7;
/// The library panicked (a bug in quorumkit). The call had no effect that
/// can be relied on: the only safe thing to do with the handle is free it.
pub const QK_ERR_PANIC: qk_status = 8;
/// Serialized data (a snapshot) is damaged: bad magic, truncated, trailing
/// bytes, checksum mismatch, or fields no encoder writes.
pub const QK_ERR_CORRUPT: qk_status = 9;
/// A snapshot in a format version this library cannot read.
pub const QK_ERR_UNSUPPORTED_VERSION: qk_status = 10;
// 11 is reserved (snapshot branch).
/// A blocking acquire's timeout passed before the lease was granted.
pub const QK_ERR_TIMEOUT: qk_status = 12;
/// The lease expired before this renew or release.
pub const QK_ERR_LEASE_EXPIRED: qk_status = 13;
/// The caller does not hold this lease (wrong owner, unknown token,
/// released, or superseded).
pub const QK_ERR_NOT_HOLDER: qk_status = 14;
/// A fencing token older than the newest one the fence has seen.
pub const QK_ERR_STALE_TOKEN: qk_status = 15;
/// A try-acquire found the resource held, queued for, or in lock-delay.
pub const QK_ERR_BUSY: qk_status = 16;
/// Durable storage failed (I/O error). A Paxos node that hits one stops:
/// every later call on it returns this code; free it and restart it.
pub const QK_ERR_STORAGE: qk_status = 17;
/// The operation needs the leader and this node is not it.
pub const QK_ERR_NOT_LEADER: qk_status = 18;
// 19–23 are reserved for transactions (two-phase commit).
/// A time earlier than one already seen for the same node (failure
/// detector times must come from a monotonic clock).
pub const QK_ERR_NOT_MONOTONIC: qk_status = 24;
/// A Paxos record file is damaged (a checksum mismatch or undecodable data,
/// not a torn final write). The file was left untouched; do not start the
/// replica on it (docs/PAXOS-STORAGE.md says what to do).
pub const QK_ERR_STORAGE_CORRUPT: qk_status = 25;
/// A Paxos record file is locked by another open node (in this or another
/// process).
pub const QK_ERR_STORAGE_IN_USE: qk_status = 26;
/// A Paxos record file belongs to another cluster id or replica id.
pub const QK_ERR_STORAGE_MISMATCH: qk_status = 27;
/// Decoding a snapshot would need more points than the decode budget
/// (`max_points` of the `_restore_limited` functions; the plain `_restore`
/// functions use `QK_DEFAULT_MAX_POINTS`).
pub const QK_ERR_LIMIT_EXCEEDED: qk_status = 28;
/// A blocking acquire was cancelled (`qk_cancel_fire()`) or its table was
/// freed while it waited; nothing is held.
pub const QK_ERR_CANCELLED: qk_status = 29;
/// A lease backend (a Redis server) cannot be reached or refused the
/// session (connection refused or dropped, timeout, authentication). It
/// came back within the configured timeouts; a later call reconnects.
pub const QK_ERR_BACKEND_UNAVAILABLE: qk_status = 30;

/// The status code of a core error.
pub(crate) fn status_of(e: &Error) -> qk_status {
    // Exhaustive on purpose: a new core error variant must pick a code here.
    match e {
        Error::InvalidArgument(_) => QK_ERR_INVALID_ARG,
        Error::EmptyRing => QK_ERR_EMPTY,
        Error::NodeNotFound(_) => QK_ERR_NOT_FOUND,
        Error::NodeExists(_) => QK_ERR_ALREADY_EXISTS,
        Error::Corrupt(_) => QK_ERR_CORRUPT,
        Error::UnsupportedVersion { .. } => QK_ERR_UNSUPPORTED_VERSION,
        Error::Timeout { .. } => QK_ERR_TIMEOUT,
        Error::Cancelled { .. } => QK_ERR_CANCELLED,
        Error::LeaseExpired { .. } => QK_ERR_LEASE_EXPIRED,
        Error::NotHolder { .. } => QK_ERR_NOT_HOLDER,
        Error::StaleToken { .. } => QK_ERR_STALE_TOKEN,
        Error::Busy { .. } => QK_ERR_BUSY,
        Error::NotMonotonic { .. } => QK_ERR_NOT_MONOTONIC,
        Error::Storage(_) => QK_ERR_STORAGE,
        Error::StorageCorrupt(_) => QK_ERR_STORAGE_CORRUPT,
        Error::StorageInUse(_) => QK_ERR_STORAGE_IN_USE,
        Error::StorageMismatch(_) => QK_ERR_STORAGE_MISMATCH,
        Error::LimitExceeded(_) => QK_ERR_LIMIT_EXCEEDED,
        Error::NotLeader { .. } => QK_ERR_NOT_LEADER,
        Error::BackendUnavailable(_) => QK_ERR_BACKEND_UNAVAILABLE,
    }
}

/// The static name of a status code.
pub(crate) fn status_name(status: qk_status) -> &'static std::ffi::CStr {
    match status {
        QK_OK => c"ok",
        QK_ERR_NULL_ARG => c"null argument",
        QK_ERR_INVALID_ARG => c"invalid argument",
        QK_ERR_INVALID_UTF8 => c"invalid UTF-8",
        QK_ERR_EMPTY => c"empty ring",
        QK_ERR_NOT_FOUND => c"not found",
        QK_ERR_ALREADY_EXISTS => c"already exists",
        QK_ERR_BUFFER_TOO_SMALL => c"buffer too small",
        QK_ERR_PANIC => c"internal panic",
        QK_ERR_CORRUPT => c"corrupt data",
        QK_ERR_UNSUPPORTED_VERSION => c"unsupported version",
        QK_ERR_TIMEOUT => c"timed out",
        QK_ERR_LEASE_EXPIRED => c"lease expired",
        QK_ERR_NOT_HOLDER => c"not the holder",
        QK_ERR_STALE_TOKEN => c"stale token",
        QK_ERR_BUSY => c"busy",
        QK_ERR_NOT_MONOTONIC => c"time went backwards",
        QK_ERR_STORAGE => c"storage failure",
        QK_ERR_NOT_LEADER => c"not the leader",
        QK_ERR_STORAGE_CORRUPT => c"storage corrupt",
        QK_ERR_STORAGE_IN_USE => c"storage in use",
        QK_ERR_STORAGE_MISMATCH => c"storage belongs to another replica",
        QK_ERR_LIMIT_EXCEEDED => c"decode limit exceeded",
        QK_ERR_CANCELLED => c"cancelled",
        QK_ERR_BACKEND_UNAVAILABLE => c"backend unavailable",
        _ => c"unknown status",
    }
}

/// A short, static, human-readable name of `status` ("ok", "not found",
/// ...); "unknown status" for a number that is not a `qk_status` code.
/// Never NULL. The string is static: do not free it.
/// Thread-safe; does not change `qk_last_error_message()`.
#[unsafe(no_mangle)]
pub extern "C" fn qk_status_str(status: qk_status) -> *const c_char {
    super::boundary::catch_or(c"unknown status".as_ptr(), || status_name(status).as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        // These numbers are ABI: this test pins them.
        let codes = [
            QK_OK,
            QK_ERR_NULL_ARG,
            QK_ERR_INVALID_ARG,
            QK_ERR_INVALID_UTF8,
            QK_ERR_EMPTY,
            QK_ERR_NOT_FOUND,
            QK_ERR_ALREADY_EXISTS,
            QK_ERR_BUFFER_TOO_SMALL,
            QK_ERR_PANIC,
            QK_ERR_CORRUPT,
            QK_ERR_UNSUPPORTED_VERSION,
            QK_ERR_TIMEOUT,
            QK_ERR_LEASE_EXPIRED,
            QK_ERR_NOT_HOLDER,
            QK_ERR_STALE_TOKEN,
            QK_ERR_BUSY,
            QK_ERR_STORAGE,
            QK_ERR_NOT_LEADER,
            QK_ERR_NOT_MONOTONIC,
            QK_ERR_STORAGE_CORRUPT,
            QK_ERR_STORAGE_IN_USE,
            QK_ERR_STORAGE_MISMATCH,
            QK_ERR_LIMIT_EXCEEDED,
            QK_ERR_CANCELLED,
            QK_ERR_BACKEND_UNAVAILABLE,
        ];
        assert_eq!(
            codes,
            [
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 24, 25, 26, 27, 28,
                29, 30
            ]
        );
        for c in codes {
            assert_ne!(status_name(c), c"unknown status", "{c}");
        }
        assert_eq!(status_name(11), c"unknown status");
        assert_eq!(status_name(u32::MAX), c"unknown status");
    }

    #[test]
    fn core_errors_map_to_codes() {
        assert_eq!(
            status_of(&Error::StorageCorrupt("x".into())),
            QK_ERR_STORAGE_CORRUPT
        );
        assert_eq!(
            status_of(&Error::StorageInUse("x".into())),
            QK_ERR_STORAGE_IN_USE
        );
        assert_eq!(
            status_of(&Error::StorageMismatch("x".into())),
            QK_ERR_STORAGE_MISMATCH
        );
        assert_eq!(status_of(&Error::EmptyRing), QK_ERR_EMPTY);
        assert_eq!(
            status_of(&Error::NodeExists("a".into())),
            QK_ERR_ALREADY_EXISTS
        );
        assert_eq!(
            status_of(&Error::NodeNotFound("a".into())),
            QK_ERR_NOT_FOUND
        );
        assert_eq!(status_of(&Error::invalid("x")), QK_ERR_INVALID_ARG);
        assert_eq!(status_of(&Error::corrupt("x")), QK_ERR_CORRUPT);
        assert_eq!(
            status_of(&Error::UnsupportedVersion {
                found: 2,
                supported: 1
            }),
            QK_ERR_UNSUPPORTED_VERSION
        );
        let r = || "r".to_owned();
        assert_eq!(status_of(&Error::Timeout { resource: r() }), QK_ERR_TIMEOUT);
        assert_eq!(status_of(&Error::Busy { resource: r() }), QK_ERR_BUSY);
        assert_eq!(
            status_of(&Error::LeaseExpired {
                resource: r(),
                token: 1
            }),
            QK_ERR_LEASE_EXPIRED
        );
        let nh = Error::NotHolder {
            resource: r(),
            owner: r(),
            token: 1,
        };
        assert_eq!(status_of(&nh), QK_ERR_NOT_HOLDER);
        let st = Error::StaleToken {
            resource: r(),
            token: 1,
            highest: 2,
        };
        assert_eq!(status_of(&st), QK_ERR_STALE_TOKEN);
        let nm = Error::NotMonotonic {
            node: r(),
            last_ns: 2,
            now_ns: 1,
        };
        assert_eq!(status_of(&nm), QK_ERR_NOT_MONOTONIC);
        assert_eq!(status_of(&Error::storage("disk")), QK_ERR_STORAGE);
        assert_eq!(
            status_of(&Error::NotLeader { leader: Some(2) }),
            QK_ERR_NOT_LEADER
        );
    }
}
