//! The panic boundary and error details: the caller's `qk_error` and the
//! thread-local last-error message.
//!
//! Every exported function runs its body through `boundary` (functions
//! that return a `qk_status`) or `catch_or` (the few that return a value
//! and cannot fail). A panic never unwinds into C: since Rust 1.81 a panic
//! escaping an `extern "C"` function aborts the host process.
//!
//! Why both error channels: the thread-local message is what plain C
//! expects, but goroutines, koffi's async calls and Java's virtual threads
//! read it from another OS thread than the one that failed. The trailing
//! `qk_error *err` of every status-returning function carries the details
//! with the call itself.
//!
//! ```ignore
//! /// Stores the number of things in `*count_out`. (Doc comments reach the header.)
//! #[unsafe(no_mangle)]
//! pub unsafe extern "C" fn qk_thing_count(
//!     thing: *const qk_thing,
//!     count_out: *mut usize,
//!     err: *mut qk_error,
//! ) -> qk_status {
//!     boundary(err, || {
//!         let (thing, out) =
//!             unsafe { (arg_ref(thing, "thing")?, Out::new(count_out, "count_out")?) };
//!         out.set(thing.count()?); // a core `Error` converts with `?`
//!         Ok(())
//!     })
//! }
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::{
    QK_ERR_BUFFER_TOO_SMALL, QK_ERR_INVALID_ARG, QK_ERR_INVALID_UTF8, QK_ERR_NOT_FOUND,
    QK_ERR_NULL_ARG, QK_ERR_PANIC, QK_OK, qk_status, status_of,
};
use crate::error::Error;

/// How many bytes `qk_error.message` holds, its terminating NUL included.
/// Longer messages are cut at a UTF-8 character boundary.
pub const QK_ERROR_MESSAGE_CAPACITY: usize = 512;

/// The outcome of one call, written by the call itself (thread-independent,
/// unlike `qk_last_error_message()`): pass a `qk_error *` as the trailing
/// `err` argument of any status-returning function, or NULL to skip it.
///
/// After the call, `status` is its return value and `message` its detailed
/// message as NUL-terminated UTF-8 ("" on success). The caller owns the
/// struct (stack, heap or a binding's memory: it holds no pointers); the
/// library writes it only during the call that received it. One
/// `qk_error` may be reused for many calls, but not by two concurrent ones.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct qk_error {
    /// The call's return value.
    pub status: qk_status,
    /// The detailed message, NUL-terminated UTF-8; "" on success.
    pub message: [c_char; QK_ERROR_MESSAGE_CAPACITY],
}

/// Writes the outcome into the caller's `qk_error`, if one was passed.
///
/// # Safety
/// `err` is NULL or points to a writable `qk_error`.
unsafe fn write_error(err: *mut qk_error, status: qk_status, message: Option<&str>) {
    if err.is_null() {
        return;
    }
    // SAFETY: the caller passes NULL or a writable qk_error; raw field
    // pointers avoid forming a reference to memory C may not initialise.
    unsafe {
        std::ptr::addr_of_mut!((*err).status).write(status);
        let dst = std::ptr::addr_of_mut!((*err).message) as *mut u8;
        let msg = message.unwrap_or("");
        let mut n = msg.len().min(QK_ERROR_MESSAGE_CAPACITY - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        let bytes = &msg.as_bytes()[..n];
        // NUL bytes from user input end the C string early: escape-free
        // truncation would hide the rest, so replace them.
        for (i, &b) in bytes.iter().enumerate() {
            dst.add(i).write(if b == 0 { b'?' } else { b });
        }
        dst.add(n).write(0);
    }
}

/// A failed call on its way to C: the status to return and the message
/// `qk_last_error_message()` will give.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: qk_status,
    pub(crate) message: String,
}

/// The result of an extern function's body.
pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

impl Failure {
    pub(crate) fn new(status: qk_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A NULL pointer for the argument `arg`.
    pub(crate) fn null(arg: &str) -> Self {
        Self::new(QK_ERR_NULL_ARG, format!("{arg} is NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(QK_ERR_INVALID_ARG, message)
    }

    pub(crate) fn utf8(arg: &str, e: std::str::Utf8Error) -> Self {
        Self::new(
            QK_ERR_INVALID_UTF8,
            format!("{arg} is not valid UTF-8: {e}"),
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(QK_ERR_NOT_FOUND, message)
    }

    pub(crate) fn too_small(arg: &str, need: usize, cap: usize) -> Self {
        Self::new(
            QK_ERR_BUFFER_TOO_SMALL,
            format!("{arg} holds {cap} elements but {need} are needed"),
        )
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::new(status_of(&e), e.to_string())
    }
}

thread_local! {
    /// The message of this thread's most recent failed call; `None` after a
    /// success.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: Option<String>) {
    let message = message.map(|m| {
        // Messages quote user input, which could hold a NUL byte.
        CString::new(m.replace('\0', "\\0")).expect("NUL bytes were escaped")
    });
    // try_with: during thread teardown the slot may already be gone.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Drops a panic payload without letting a panicking `Drop` escape.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs the body of a status-returning extern function: `Ok` becomes
/// `QK_OK`, a [`Failure`] its status, a panic `QK_ERR_PANIC`. Writes the
/// caller's `err` (when not NULL) and sets the thread's last-error message
/// (cleared on success).
pub(crate) fn boundary(err: *mut qk_error, body: impl FnOnce() -> FfiResult) -> qk_status {
    let outcome = catch_unwind(AssertUnwindSafe(body));
    let (status, message) = match outcome {
        Ok(Ok(())) => (QK_OK, None),
        Ok(Err(f)) => (f.status, Some(f.message)),
        Err(payload) => {
            let msg = format!("panic in quorumkit: {}", panic_message(&*payload));
            drop_payload(payload);
            (QK_ERR_PANIC, Some(msg))
        }
    };
    // Setting the message cannot panic in practice; guard it all the same.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: every extern function passes its caller's `err`, which
        // the header documents as NULL or a writable qk_error.
        unsafe { write_error(err, status, message.as_deref()) };
        set_last_error(message)
    })) {
        drop_payload(payload);
    }
    status
}

/// Runs the body of an extern function that cannot fail and returns a value
/// (or nothing): on a panic returns `fallback`. Leaves the last-error
/// message alone.
pub(crate) fn catch_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            drop_payload(payload);
            fallback
        }
    }
}

/// The detailed message of the calling thread's most recent failed call
/// to a status-returning `qk_` function, or "" when that call succeeded or
/// no call failed yet. Never NULL.
///
/// The string belongs to the library: do not free it. It stays valid until
/// the calling thread's next call to a status-returning `qk_` function (or
/// the thread's exit); copy it to keep it. Each thread has its own message.
///
/// Thread safety: thread-safe (uses no shared handle).
#[unsafe(no_mangle)]
pub extern "C" fn qk_last_error_message() -> *const c_char {
    catch_or(c"".as_ptr(), || {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ref().map(|m| m.as_ptr()))
            .ok()
            .flatten()
            .unwrap_or(c"".as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn last() -> String {
        // SAFETY: qk_last_error_message never returns NULL and the string
        // lives until this thread's next status-returning call.
        unsafe { CStr::from_ptr(qk_last_error_message()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_panic_becomes_a_status() {
        let status = boundary(std::ptr::null_mut(), || panic!("boom {}", 42));
        assert_eq!(status, QK_ERR_PANIC);
        assert_eq!(last(), "panic in quorumkit: boom 42");
        let status = boundary(std::ptr::null_mut(), || std::panic::panic_any(7u8));
        assert_eq!(status, QK_ERR_PANIC);
        assert!(last().contains("(no message)"));
        assert_eq!(catch_or(5, || panic!("x")), 5);
    }

    #[test]
    fn messages_are_per_call_and_per_thread() {
        assert_eq!(
            boundary(std::ptr::null_mut(), || Err(Failure::null("ring"))),
            QK_ERR_NULL_ARG
        );
        assert_eq!(last(), "ring is NULL");
        std::thread::spawn(|| assert_eq!(last(), ""))
            .join()
            .unwrap();
        assert_eq!(last(), "ring is NULL");
        assert_eq!(boundary(std::ptr::null_mut(), || Ok(())), QK_OK);
        assert_eq!(last(), "");
        let status = boundary(std::ptr::null_mut(), || {
            Err(Error::NodeNotFound("a\0b".into()).into())
        });
        assert_eq!(status, QK_ERR_NOT_FOUND);
        assert!(last().starts_with("node not found"), "{}", last());
    }
}
