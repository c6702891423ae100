//! Checked conversions of C arguments: handles, byte buffers, UTF-8 names,
//! arrays and out-parameters. Each takes the argument's C name for the
//! error message.
//!
//! Out-parameters are checked up front with [`Out::new`] and written at the
//! end with [`Out::set`], so a failing call leaves them untouched.

use std::ffi::{CString, c_char};
use std::ptr::NonNull;

use super::boundary::{Failure, FfiResult};

fn check_aligned<T>(p: *const T, arg: &str) -> FfiResult {
    if p.is_aligned() {
        Ok(())
    } else {
        Err(Failure::invalid(format!("{arg} is misaligned")))
    }
}

/// Borrows `*p`.
///
/// # Safety
/// `p` is NULL or points to a live `T` not mutated during `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, arg: &str) -> FfiResult<&'a T> {
    check_aligned(p, arg)?;
    // SAFETY: the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(arg))
}

/// Borrows `*p` mutably.
///
/// # Safety
/// `p` is NULL or points to a live `T` not otherwise accessed during `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, arg: &str) -> FfiResult<&'a mut T> {
    check_aligned(p, arg)?;
    // SAFETY: the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null(arg))
}

fn checked_bytes<T>(len: usize, arg: &str) -> FfiResult {
    match len.checked_mul(size_of::<T>()) {
        Some(b) if b <= isize::MAX as usize => Ok(()),
        _ => Err(Failure::invalid(format!(
            "{arg}: length {len} is too large"
        ))),
    }
}

/// Borrows an array of `len` elements; `p` may be NULL only when `len` is 0.
///
/// # Safety
/// Unless NULL, `p` points to `len` initialized `T`s not mutated during `'a`.
pub(crate) unsafe fn arg_slice<'a, T>(p: *const T, len: usize, arg: &str) -> FfiResult<&'a [T]> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::null(arg))
        };
    }
    check_aligned(p, arg)?;
    checked_bytes::<T>(len, arg)?;
    // SAFETY: non-NULL, aligned, the size fits in isize, and the caller
    // vouches for the rest.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows a writable array of `len` elements; `p` may be NULL only when
/// `len` is 0.
///
/// # Safety
/// Unless NULL, `p` points to `len` writable `T`s (initialized or not; `T`
/// must be plain data) not otherwise accessed during `'a`.
pub(crate) unsafe fn arg_slice_mut<'a, T: Copy>(
    p: *mut T,
    len: usize,
    arg: &str,
) -> FfiResult<&'a mut [T]> {
    if p.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(Failure::null(arg))
        };
    }
    check_aligned(p, arg)?;
    checked_bytes::<T>(len, arg)?;
    // SAFETY: as in arg_slice; C memory of plain data counts as initialized.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// A key: `len` bytes at `p`, which may be NULL only when `len` is 0.
///
/// # Safety
/// As [`arg_slice`].
pub(crate) unsafe fn arg_key<'a>(p: *const u8, len: usize, arg: &str) -> FfiResult<&'a [u8]> {
    // SAFETY: the caller's contract.
    unsafe { arg_slice(p, len, arg) }
}

/// A name: `len` bytes of UTF-8 at `p` (not NUL-terminated). (NULL, 0) is
/// the empty name, as (NULL, 0) is the empty key: FFI layers pass an empty
/// string that way (Go's `""`); whether an empty name is allowed is the
/// callee's rule, not a NULL-pointer error.
///
/// # Safety
/// Unless NULL, `p` points to `len` readable bytes not mutated during `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, len: usize, arg: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return if len == 0 {
            Ok("")
        } else {
            Err(Failure::null(arg))
        };
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { arg_slice(p.cast::<u8>(), len, arg) }?;
    std::str::from_utf8(bytes).map_err(|e| Failure::utf8(arg, e))
}

/// An out-parameter, checked for NULL and alignment before the call does
/// any work and written only when it succeeds.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// # Safety
    /// Unless NULL, `p` is valid for a write of `T` until [`Out::set`].
    pub(crate) unsafe fn new(p: *mut T, arg: &str) -> FfiResult<Self> {
        check_aligned(p, arg)?;
        NonNull::new(p).map(Out).ok_or_else(|| Failure::null(arg))
    }

    /// Writes the result (without dropping what was there: C memory).
    pub(crate) fn set(self, value: T) {
        // SAFETY: checked non-NULL and aligned in `new`, writable per its contract.
        unsafe { self.0.as_ptr().write(value) }
    }
}

impl Out<u8> {
    /// Writes a yes/no answer as 0 or 1: the boundary uses `uint8_t`, not
    /// C's `bool`, whose size FFI layers guess wrong (JNA reads 4 bytes).
    pub(crate) fn set_flag(self, value: bool) {
        self.set(u8::from(value))
    }
}

/// A yes/no argument: 0 or 1, anything else is refused (a guessed-wrong
/// width at the caller would otherwise read as "yes").
pub(crate) fn arg_flag(value: u8, arg: &str) -> FfiResult<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Failure::invalid(format!("{arg} is {v}: a flag is 0 or 1"))),
    }
}

/// Moves `value` to the heap and hands it to C through `out`; the matching
/// `qk_*_free` takes it back with [`free_boxed`].
pub(crate) fn hand_out<T>(out: Out<*mut T>, value: T) {
    out.set(Box::into_raw(Box::new(value)));
}

/// Frees a handle made by [`hand_out`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from [`hand_out`] with the same `T` and is not used
/// again.
pub(crate) unsafe fn free_boxed<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: the caller's contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A node name as C sees it: a NUL-terminated copy. The core rejects names
/// with a NUL byte, so this cannot fail for a name the core accepted.
pub(crate) fn c_name(name: &str) -> CString {
    CString::new(name).expect("the core rejects names containing NUL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;

    #[test]
    fn null_and_empty_buffers() {
        unsafe {
            assert_eq!(arg_key(std::ptr::null(), 0, "key").unwrap(), b"");
            let e = arg_key(std::ptr::null(), 3, "key").unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (QK_ERR_NULL_ARG, "key is NULL")
            );
            // (NULL, 0) is the empty name, as it is the empty key.
            assert_eq!(arg_str(std::ptr::null(), 0, "name").unwrap(), "");
            let e = arg_str(std::ptr::null(), 1, "name").unwrap_err();
            assert_eq!(e.status, QK_ERR_NULL_ARG);
            let bad = [0x66u8, 0xff];
            let e = arg_str(bad.as_ptr().cast(), 2, "name").unwrap_err();
            assert_eq!(e.status, QK_ERR_INVALID_UTF8);
            let big = arg_slice(std::ptr::dangling::<u64>(), usize::MAX / 4, "xs").unwrap_err();
            assert_eq!(big.status, QK_ERR_INVALID_ARG);
            let odd = arg_ref(
                (&[0u64; 2] as *const u64).cast::<u8>().add(1).cast::<u64>(),
                "p",
            );
            assert_eq!(odd.unwrap_err().status, QK_ERR_INVALID_ARG);
            assert!(Out::<u32>::new(std::ptr::null_mut(), "x_out").is_err());
        }
    }
}
