//! `qk_keep_alive`: a lease of a `qk_redis_lease_table` that the table's
//! one renewer thread keeps alive ([`KeepAlive`]), with a callback told
//! when it is lost.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use super::args::{Out, arg_ref, free_boxed, hand_out};
use super::boundary::{Failure, boundary, catch_or, qk_error};
use super::lease::{QK_TIMEOUT_FOREVER, mode_of, names, qk_lease};
use super::redis_lease::qk_redis_lease_table;
use super::status::{qk_status, status_of};
use crate::lease::Lease;
use crate::lease::redis::KeepAlive;

/// A lease kept alive by its table's renewer: renewed to its TTL every
/// TTL/3, counted from when each renewal was sent. A renewal the server
/// refuses, or renewals failing until the lease's expiry, make it lost.
///
/// Thread safety: every function taking a `const qk_keep_alive *` may run
/// concurrently from any number of threads; none may run or start once
/// `qk_keep_alive_free()` has begun. It may outlive its table.
///
/// Create with `qk_redis_lease_table_keep_alive()`, destroy with
/// `qk_keep_alive_free()`.
#[allow(non_camel_case_types)]
pub struct qk_keep_alive(KeepAlive);

/// Told once that a kept-alive lease was lost: `status` says why
/// (`QK_ERR_NOT_HOLDER`, `QK_ERR_LEASE_EXPIRED`, `QK_ERR_BACKEND_UNAVAILABLE`)
/// and `message` (lent for the call) in detail. It runs on the table's
/// renewer thread (or inside `qk_keep_alive_on_lost()` if the lease was
/// lost already) and should return quickly: it delays other renewals.
#[allow(non_camel_case_types)]
pub type qk_lost_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, status: qk_status, message: *const c_char)>;

/// Starts keeping alive `lease` (as granted by `table` to `owner` on
/// `resource`; its `token`, `mode` and `expires_at_ns` are read): renewed
/// to `ttl_ns` every `ttl_ns / 3`, the first a third of the way from its
/// grant. Freeing the result stops the renewals and releases the lease.
///
/// Ownership: the caller owns `*out`; free it with `qk_keep_alive_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (a zero or too large TTL, a bad mode).
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// `table` and `lease` are NULL or live; `resource`/`owner` are NULL or
/// point to `resource_len`/`owner_len` readable bytes; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_redis_lease_table_keep_alive(
    table: *const qk_redis_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    lease: *const qk_lease,
    ttl_ns: u64,
    out: *mut *mut qk_keep_alive,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { names(table, resource, resource_len, owner, owner_len) }?;
        let l = unsafe { arg_ref(lease, "lease") }?;
        let out = unsafe { Out::new(out, "out") }?;
        if ttl_ns == 0 {
            return Err(Failure::invalid("ttl_ns must be positive"));
        }
        let lease = Lease {
            resource: n.resource.into(),
            owner: n.owner.into(),
            token: l.token,
            mode: mode_of(l.mode)?,
            expires_at: l.expires_at_ns,
        };
        let k = n
            .table
            .table
            .keep_alive(lease, Duration::from_nanos(ttl_ns))?;
        hand_out(out, qk_keep_alive(k));
        Ok(())
    })
}

/// Stops the renewals and releases the lease unless it was lost (best
/// effort: errors are not reported; use `qk_keep_alive_release()` first to
/// see them). NULL is a no-op.
///
/// Thread safety: no call on `keep_alive` may run or start once this has
/// begun.
///
/// # Safety
/// `keep_alive` is NULL or live and not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_keep_alive_free(keep_alive: *mut qk_keep_alive) {
    catch_or((), || unsafe { free_boxed(keep_alive) })
}

/// The C callback and its user data, moved to the renewer thread.
struct LostCallback {
    f: unsafe extern "C" fn(*mut c_void, qk_status, *const c_char),
    user_data: usize,
}

/// Registers `callback(user_data, status, message)`, called once when the
/// lease is found lost (see `qk_lost_callback`); at once, inside this
/// call, if it was lost already. Never called after
/// `qk_keep_alive_release()`, `qk_keep_alive_stop()` or free.
///
/// Errors: `QK_ERR_NULL_ARG` (also for a NULL callback).
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_keep_alive` except its free.
///
/// # Safety
/// `keep_alive` is NULL or live; `user_data` stays valid until the
/// callback has run or the keep-alive is stopped or freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_keep_alive_on_lost(
    keep_alive: *const qk_keep_alive,
    callback: qk_lost_callback,
    user_data: *mut c_void,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let k = unsafe { arg_ref(keep_alive, "keep_alive") }?;
        let f = callback.ok_or_else(|| Failure::null("callback"))?;
        let cb = LostCallback {
            f,
            user_data: user_data as usize,
        };
        k.0.on_lost(move |e| {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let message = CString::new(e.to_string().replace('\0', "\\0")).unwrap_or_default();
                // SAFETY: the caller handed us a function and its user
                // data to call once with these arguments.
                unsafe { (cb.f)(cb.user_data as *mut c_void, status_of(e), message.as_ptr()) }
            }));
        });
        Ok(())
    })
}

/// Stores in `*lost_out` 1 if the lease is lost (a renewal was refused or
/// failed until the expiry, or the local clock passed its last known
/// expiry), else 0.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_keep_alive` except its free.
///
/// # Safety
/// `keep_alive` is NULL or live; `lost_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_keep_alive_is_lost(
    keep_alive: *const qk_keep_alive,
    lost_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (k, out) = unsafe {
            (
                arg_ref(keep_alive, "keep_alive")?,
                Out::new(lost_out, "lost_out")?,
            )
        };
        out.set_flag(k.0.is_lost());
        Ok(())
    })
}

/// Blocks until the lease is lost (`*lost_out` = 1), or `timeout_ns`
/// passes or the keep-alive is stopped (0). `QK_TIMEOUT_FOREVER` waits as
/// long as it takes.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_keep_alive` except its free.
///
/// # Safety
/// As `qk_keep_alive_is_lost()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_keep_alive_wait_lost(
    keep_alive: *const qk_keep_alive,
    timeout_ns: u64,
    lost_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (k, out) = unsafe {
            (
                arg_ref(keep_alive, "keep_alive")?,
                Out::new(lost_out, "lost_out")?,
            )
        };
        let timeout = (timeout_ns != QK_TIMEOUT_FOREVER).then(|| Duration::from_nanos(timeout_ns));
        out.set_flag(k.0.wait_lost(timeout));
        Ok(())
    })
}

/// Stores the lease as last renewed (its `expires_at_ns` moves forward)
/// in `*lease_out`, and how many renewals succeeded in `*renewals_out`
/// (NULL to skip).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_keep_alive` except its free.
///
/// # Safety
/// `keep_alive` is NULL or live; `lease_out` is NULL or writable;
/// `renewals_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_keep_alive_lease(
    keep_alive: *const qk_keep_alive,
    lease_out: *mut qk_lease,
    renewals_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (k, out) = unsafe {
            (
                arg_ref(keep_alive, "keep_alive")?,
                Out::new(lease_out, "lease_out")?,
            )
        };
        out.set(k.0.lease().into());
        if !renewals_out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *renewals_out = k.0.renewals() };
        }
        Ok(())
    })
}

/// Stops the renewals and releases the lease. If a renewal lost it, this
/// returns that reason (`QK_ERR_NOT_HOLDER`, `QK_ERR_LEASE_EXPIRED`,
/// `QK_ERR_BACKEND_UNAVAILABLE`) and releases nothing: the work done under
/// it ran unprotected. Calling it again answers `QK_ERR_NOT_HOLDER`.
/// The keep-alive must still be freed.
///
/// Errors: `QK_ERR_NULL_ARG`, and the reasons above.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_keep_alive` except its free.
///
/// # Safety
/// `keep_alive` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_keep_alive_release(
    keep_alive: *const qk_keep_alive,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let k = unsafe { arg_ref(keep_alive, "keep_alive") }?;
        k.0.stop_and_release()?;
        Ok(())
    })
}
