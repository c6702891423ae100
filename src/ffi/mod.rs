//! The C ABI (`include/quorumkit.h`, generated from this module by cbindgen).
//!
//! Conventions, shared by every component (model: rustls-ffi):
//!
//! - Every exported symbol is `qk_<object>_<verb>`, every constant `QK_…`.
//! - Objects are opaque handles: `qk_x_new(..., qk_x **out)` pairs with
//!   `qk_x_free(qk_x *)`, which accepts NULL.
//! - Every fallible function returns a [`status::qk_status`] and writes its
//!   results through trailing `*_out` parameters only on success;
//!   `qk_last_error_message()` gives the calling thread's detailed message.
//! - Every body runs inside the panic boundary ([`boundary`]): a panic
//!   becomes `QK_ERR_PANIC` and never unwinds into C.
//! - Every pointer is NULL-checked; keys are `(const uint8_t *, size_t)`,
//!   names `(const char *, size_t)` of UTF-8 (`args`).
//!
//! Layout: `status` (codes), `boundary` (panic boundary, last error),
//! `abi` (the ABI version and struct sizes, checkable at run time),
//! `args` (checked argument conversions), `placement` (what every
//! placement handle shares), `snapshot` (save/restore bodies), then one file per component.

// The header lists items in this order: the basics first, then one
// component after another.
pub mod status;

pub mod boundary;

pub(crate) mod args;
pub(crate) mod inflight;
pub(crate) mod placement;
pub(crate) mod snapshot;

pub mod ring;

pub mod ketama;

pub mod bounded;
pub mod rendezvous;

pub mod maglev;

pub mod jump;
pub mod md5ring;

pub mod lease;
#[cfg(feature = "redis")]
pub mod redis_keep_alive;
#[cfg(feature = "redis")]
pub mod redis_lease;

pub mod election;
#[cfg(feature = "server")]
pub mod lease_client;
#[cfg(feature = "server")]
pub mod replica;

pub mod detect;

pub mod paxos;
pub mod txn;

pub mod abi;

use std::ffi::{CStr, c_char};

const VERSION_C: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version contains a NUL byte"),
    };

/// The library's version, "MAJOR.MINOR.PATCH", as a static NUL-terminated
/// string (do not free it). Compare with `QK_VERSION_STRING` to detect a
/// header/library mismatch. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn qk_version() -> *const c_char {
    boundary::catch_or(VERSION_C.as_ptr(), || VERSION_C.as_ptr())
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: qk_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(super::qk_version()) };
        assert_eq!(v.to_str().unwrap(), crate::VERSION);
    }
}
