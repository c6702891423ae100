//! `qk_lease_table` and `qk_fence`: lock leases ([`LeaseTable`], [`Fence`]).
//!
//! Resource and owner names travel with every call (a plain `qk_lease`
//! cannot own strings safely); the struct carries the token, the expiry and
//! the mode.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::args::{Out, arg_ref, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{Failure, FfiResult, boundary, catch_or};
use super::inflight::Inside;
use super::status::qk_status;
use crate::lease::{
    CancelToken, Fence, Lease, LeaseConfig, LeaseTable, ManualClock, Mode, MonotonicClock,
};

/// `qk_lease.mode`: one holder at a time.
pub const QK_LEASE_EXCLUSIVE: u32 = 0;
/// `qk_lease.mode`: any number of shared holders, no exclusive one.
pub const QK_LEASE_SHARED: u32 = 1;
/// A `timeout_ns` that waits as long as it takes.
pub const QK_TIMEOUT_FOREVER: u64 = u64::MAX;

/// A granted lease as C sees it. The resource and owner are the ones
/// passed to the call that granted it; pass them again to renew or release.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct qk_lease {
    /// The fencing token: greater than every token the table granted before.
    pub token: u64,
    /// When the lease ends unless renewed, in nanoseconds of the table's
    /// clock (`qk_lease_table_now()`).
    pub expires_at_ns: u64,
    /// `QK_LEASE_EXCLUSIVE` or `QK_LEASE_SHARED`.
    pub mode: u32,
}

impl From<Lease> for qk_lease {
    fn from(l: Lease) -> Self {
        qk_lease {
            token: l.token,
            expires_at_ns: l.expires_at,
            mode: match l.mode {
                Mode::Exclusive => QK_LEASE_EXCLUSIVE,
                Mode::Shared => QK_LEASE_SHARED,
            },
        }
    }
}

/// A thread-safe lease table (docs/leases.md): exclusive and shared
/// leases with TTLs, strictly increasing fencing tokens, FIFO blocking
/// acquire with timeouts, owner-checked renew and release, optional
/// lock-delay.
///
/// Thread safety: every function taking a `const qk_lease_table *` may run
/// concurrently from any number of threads (blocking acquires wake one by
/// one as leases are handed over). `qk_lease_table_free()` cancels the
/// acquires blocked in it (they return `QK_ERR_CANCELLED`) and waits for
/// them to return; no call may start once it has begun.
///
/// Create with `qk_lease_table_new()` or `qk_lease_table_new_manual()`,
/// destroy with `qk_lease_table_free()`.
#[allow(non_camel_case_types)]
pub struct qk_lease_table {
    pub(crate) table: LeaseTable,
    manual: Option<ManualClock>,
    /// Cancelled by `qk_lease_table_free()`; every blocking acquire
    /// listens to it.
    closing: CancelToken,
    /// The blocking acquires in progress, which free waits out.
    inside: Arc<Inside>,
}

impl qk_lease_table {
    fn wrap(table: LeaseTable, manual: Option<ManualClock>) -> Self {
        qk_lease_table {
            table,
            manual,
            closing: CancelToken::new(),
            inside: Arc::default(),
        }
    }
}

/// A cancel signal for blocking acquires (`qk_lease_table_acquire_cancellable()`):
/// firing it from any thread stops every acquire waiting on it with
/// `QK_ERR_CANCELLED`. One-shot: once fired it stays fired.
///
/// Thread safety: every function may run concurrently from any thread
/// (that is its purpose). The acquires that use it keep their own
/// reference, so it may be freed while they wait.
///
/// Create with `qk_cancel_new()`, destroy with `qk_cancel_free()`.
#[allow(non_camel_case_types)]
pub struct qk_cancel(CancelToken);

/// The highest fencing token seen per resource: a protected resource
/// checks each request's token with `qk_fence_check()`. Thread-safe: every
/// function taking a `const qk_fence *` may run concurrently.
///
/// Create with `qk_fence_new()`, destroy with `qk_fence_free()`.
#[allow(non_camel_case_types)]
pub struct qk_fence(Fence);

pub(crate) fn mode_of(mode: u32) -> FfiResult<Mode> {
    match mode {
        QK_LEASE_EXCLUSIVE => Ok(Mode::Exclusive),
        QK_LEASE_SHARED => Ok(Mode::Shared),
        m => Err(Failure::invalid(format!(
            "mode {m} is neither QK_LEASE_EXCLUSIVE nor QK_LEASE_SHARED"
        ))),
    }
}

/// Creates a lease table on the library's monotonic clock (the clock of
/// `qk_lease_table_now()`; wall-clock changes do not affect it) and stores
/// it in `*table_out`. That clock's zero is the first time this copy of the
/// library read it in this process (so its readings are small and never
/// comparable across processes or with `CLOCK_MONOTONIC`); every
/// `expires_at_ns` of such a table is on it. `lock_delay_ns`: after a lease expires without
/// release, its resource grants nothing for this long (0 = none).
///
/// Ownership: the caller owns the table; free it with `qk_lease_table_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `table_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_new(
    lock_delay_ns: u64,
    table_out: *mut *mut qk_lease_table,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(table_out, "table_out") }?;
        let config = LeaseConfig { lock_delay_ns };
        hand_out(
            out,
            qk_lease_table::wrap(LeaseTable::new(MonotonicClock, config), None),
        );
        Ok(())
    })
}

/// Creates a lease table on a manual clock that reads `start_ns` and moves
/// only through `qk_lease_table_set_time()` (deterministic tests,
/// simulations, a caller-owned clock). Otherwise as `qk_lease_table_new()`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// As `qk_lease_table_new()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_new_manual(
    lock_delay_ns: u64,
    start_ns: u64,
    table_out: *mut *mut qk_lease_table,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(table_out, "table_out") }?;
        let clock = ManualClock::new(start_ns);
        let config = LeaseConfig { lock_delay_ns };
        hand_out(
            out,
            qk_lease_table::wrap(LeaseTable::new(&clock, config), Some(clock)),
        );
        Ok(())
    })
}

/// Frees a table. NULL is a no-op. Acquires blocked in the table at that
/// moment return `QK_ERR_CANCELLED` (holding nothing), and this waits
/// until they have returned. Leases still held simply end with the table.
///
/// Thread safety: needs the `qk_lease_table` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `table` is NULL or a live table that is not used again: no call on it
/// may start once this has begun (blocked acquires are fine), and no other
/// call than a blocked acquire may be running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_free(table: *mut qk_lease_table) {
    catch_or((), || {
        if table.is_null() {
            return;
        }
        // SAFETY: live per the contract; only shared access until the
        // blocked acquires are gone.
        let t = unsafe { &*table };
        t.closing.cancel();
        t.inside.wait_empty();
        unsafe { free_boxed(table) }
    })
}

/// Moves a manual table's clock to `now_ns`: expiries, lock-delay ends
/// and timeouts up to then take effect and blocked acquires are granted or
/// time out before this returns.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` if the table is not
/// manual or `now_ns` is earlier than its current time.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or a live table.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_set_time(
    table: *const qk_lease_table,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let t = unsafe { arg_ref(table, "table") }?;
        match &t.manual {
            Some(c) => Ok(c.set(now_ns)?),
            None => Err(Failure::invalid(
                "the table runs on the monotonic clock (use qk_lease_table_new_manual)",
            )),
        }
    })
}

/// Stores the table's clock reading (nanoseconds) in `*now_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or a live table; `now_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_now(
    table: *const qk_lease_table,
    now_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (t, out) = unsafe { (arg_ref(table, "table")?, Out::new(now_out, "now_out")?) };
        out.set(t.table.now_ns());
        Ok(())
    })
}

/// The table, resource and owner arguments every lease call takes (of
/// `qk_lease_table` or `qk_redis_lease_table`).
pub(crate) struct Names<'a, T> {
    pub(crate) table: &'a T,
    pub(crate) resource: &'a str,
    pub(crate) owner: &'a str,
}

/// # Safety
/// As the callers' contracts.
pub(crate) unsafe fn names<'a, T>(
    table: *const T,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
) -> FfiResult<Names<'a, T>> {
    unsafe {
        Ok(Names {
            table: arg_ref(table, "table")?,
            resource: arg_str(resource, resource_len, "resource")?,
            owner: arg_str(owner, owner_len, "owner")?,
        })
    }
}

/// The arguments of a blocking acquire.
struct Request<'a> {
    names: Names<'a, qk_lease_table>,
    ttl: Duration,
    mode: Mode,
    timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    /// # Safety
    /// As the blocking acquires' contracts.
    #[allow(clippy::too_many_arguments)]
    unsafe fn parse(
        table: *const qk_lease_table,
        resource: *const c_char,
        resource_len: usize,
        owner: *const c_char,
        owner_len: usize,
        ttl_ns: u64,
        mode: u32,
        timeout_ns: u64,
    ) -> FfiResult<Self> {
        Ok(Request {
            names: unsafe { names(table, resource, resource_len, owner, owner_len) }?,
            ttl: Duration::from_nanos(ttl_ns),
            mode: mode_of(mode)?,
            timeout: (timeout_ns != QK_TIMEOUT_FOREVER).then(|| Duration::from_nanos(timeout_ns)),
        })
    }

    /// Blocks until granted, timed out, or cancelled by `user` or by the
    /// table's free.
    fn acquire(&self, user: Option<&CancelToken>) -> FfiResult<Lease> {
        let t = self.names.table;
        // Counted in first, so counted out last: free waits for this
        // call to stop touching the table.
        let _inside = t.inside.enter();
        let cancel = t.closing.child();
        if let Some(u) = user {
            u.link(&cancel);
        }
        let lease = t.table.acquire_cancellable(
            self.names.resource,
            self.names.owner,
            self.ttl,
            self.mode,
            self.timeout,
            &cancel,
        )?;
        Ok(lease)
    }
}

/// Acquires a lease on `resource` for `owner`, blocking until it is granted
/// or `timeout_ns` passes (`QK_TIMEOUT_FOREVER` waits as long as it takes;
/// 0 fails at once unless the lease is free). Requests are served in
/// arrival order; a shared request queued behind an exclusive one waits.
/// The lease expires `ttl_ns` after it is granted. On success stores it in
/// `*lease_out`. A failed or timed-out acquire changes no held lease.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (empty resource or owner, ttl_ns 0, unknown mode), `QK_ERR_TIMEOUT`,
/// `QK_ERR_CANCELLED` (the table was freed while this waited). To stop
/// one acquire from another thread, use
/// `qk_lease_table_acquire_cancellable()`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or a live table; `resource` and `owner` are NULL or
/// point to that many readable bytes; `lease_out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_table_acquire(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    ttl_ns: u64,
    mode: u32,
    timeout_ns: u64,
    lease_out: *mut qk_lease,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let req = unsafe {
            Request::parse(
                table,
                resource,
                resource_len,
                owner,
                owner_len,
                ttl_ns,
                mode,
                timeout_ns,
            )
        }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        out.set(req.acquire(None)?.into());
        Ok(())
    })
}

/// `qk_lease_table_acquire()` that `cancel` can stop: once
/// `qk_cancel_fire(cancel)` runs (before or during the wait), the request is
/// withdrawn and this returns `QK_ERR_CANCELLED` holding nothing (a grant
/// that raced the cancel is released again). `cancel` may be NULL (then
/// only `qk_lease_table_free()` cancels, as for the plain acquire).
///
/// Errors: as `qk_lease_table_acquire()`, plus `QK_ERR_CANCELLED`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// As `qk_lease_table_acquire()`; `cancel` is NULL or a live `qk_cancel`
/// when the call starts.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_table_acquire_cancellable(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    ttl_ns: u64,
    mode: u32,
    timeout_ns: u64,
    cancel: *const qk_cancel,
    lease_out: *mut qk_lease,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let user = unsafe { cancel_token(cancel) }?;
        let req = unsafe {
            Request::parse(
                table,
                resource,
                resource_len,
                owner,
                owner_len,
                ttl_ns,
                mode,
                timeout_ns,
            )
        }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        out.set(req.acquire(user.as_ref())?.into());
        Ok(())
    })
}

/// Stores in `*len_out` how many acquire requests wait in `resource`'s
/// queue now.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or live; `resource` is NULL or points to
/// `resource_len` readable bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_queue_len(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (t, r, out) = unsafe {
            (
                arg_ref(table, "table")?,
                arg_str(resource, resource_len, "resource")?,
                Out::new(len_out, "len_out")?,
            )
        };
        out.set(t.table.queue_len(r));
        Ok(())
    })
}

/// Receives the outcome of `qk_lease_table_acquire_async()`, exactly once:
/// `status` is `QK_OK` with the granted `lease`, or an error status
/// (`QK_ERR_TIMEOUT`, `QK_ERR_CANCELLED`, ...) with `lease` NULL; `message`
/// is the detailed message ("" on success). `lease` and `message` are lent
/// for the duration of the call. It may run on any thread: the caller's,
/// the one that released the lease, or the table's timer thread.
#[allow(non_camel_case_types)]
pub type qk_lease_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: qk_status,
        lease: *const qk_lease,
        message: *const c_char,
    ),
>;

/// The C callback and its user data, sent to whichever thread decides.
pub(crate) struct CCallback {
    f: unsafe extern "C" fn(*mut c_void, qk_status, *const qk_lease, *const c_char),
    user_data: usize,
}

impl CCallback {
    /// `callback` with `user_data`; `QK_ERR_NULL_ARG` for a NULL callback.
    pub(crate) fn new(callback: qk_lease_callback, user_data: *mut c_void) -> FfiResult<Self> {
        let f = callback.ok_or_else(|| Failure::null("callback"))?;
        Ok(CCallback {
            f,
            user_data: user_data as usize,
        })
    }

    fn call(&self, outcome: crate::error::Result<Lease>) {
        self.deliver(outcome.map(qk_lease::from))
    }

    /// Calls the callback once with `outcome` (a panic inside stays here).
    pub(crate) fn deliver(&self, outcome: crate::error::Result<qk_lease>) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (status, lease, message) = match outcome {
                Ok(l) => (super::status::QK_OK, Some(l), String::new()),
                Err(e) => (super::status::status_of(&e), None, e.to_string()),
            };
            let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
            let lease_ptr = lease
                .as_ref()
                .map_or(std::ptr::null(), |l| l as *const qk_lease);
            // SAFETY: the caller handed us a function and its user data to
            // call exactly once with these arguments.
            unsafe {
                (self.f)(
                    self.user_data as *mut c_void,
                    status,
                    lease_ptr,
                    message.as_ptr(),
                )
            }
        }));
    }
}

/// Starts an acquire that does not block: `callback(user_data, ...)` gets
/// the outcome exactly once (see `qk_lease_callback`), possibly before
/// this returns (a free lease is granted at once). For event loops and
/// bindings that must not park a thread per waiter (Node.js, asyncio).
/// `cancel` (NULL for none) and `qk_lease_table_free()` end the wait with
/// `QK_ERR_CANCELLED`; the callback runs inside the cancelling call.
///
/// Errors (the callback is then never called): `QK_ERR_NULL_ARG` (also for
/// a NULL callback), `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`,
/// `QK_ERR_TIMEOUT` (timeout 0 on a busy resource), `QK_ERR_CANCELLED`
/// (`cancel` already fired).
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_table` except its free.
///
/// # Safety
/// As `qk_lease_table_acquire_cancellable()`; `callback` may be called from
/// any thread with `user_data`, which must stay valid until it is.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_table_acquire_async(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    ttl_ns: u64,
    mode: u32,
    timeout_ns: u64,
    cancel: *const qk_cancel,
    callback: qk_lease_callback,
    user_data: *mut c_void,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let cb = CCallback::new(callback, user_data)?;
        let user = unsafe { cancel_token(cancel) }?;
        let req = unsafe {
            Request::parse(
                table,
                resource,
                resource_len,
                owner,
                owner_len,
                ttl_ns,
                mode,
                timeout_ns,
            )
        }?;
        let t = req.names.table;
        let mut cancels = vec![&t.closing];
        cancels.extend(user.as_ref());
        t.table.acquire_with_callback(
            req.names.resource,
            req.names.owner,
            req.ttl,
            req.mode,
            req.timeout,
            &cancels,
            Box::new(move |outcome| cb.call(outcome)),
        )?;
        Ok(())
    })
}

/// The token behind an optional `qk_cancel` argument (NULL: none), cloned
/// so that the call keeps its own.
///
/// # Safety
/// `cancel` is NULL or live.
pub(crate) unsafe fn cancel_token(cancel: *const qk_cancel) -> FfiResult<Option<CancelToken>> {
    if cancel.is_null() {
        return Ok(None);
    }
    Ok(Some(unsafe { arg_ref(cancel, "cancel") }?.0.clone()))
}

/// Creates a cancel signal (not fired) and stores it in `*cancel_out`.
///
/// Ownership: the caller owns it; free it with `qk_cancel_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `cancel_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_cancel_new(
    cancel_out: *mut *mut qk_cancel,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(cancel_out, "cancel_out") }?;
        hand_out(out, qk_cancel(CancelToken::new()));
        Ok(())
    })
}

/// Fires the signal: every acquire waiting on it (now or later) returns
/// `QK_ERR_CANCELLED`. Idempotent. Thread-safe; async-signal-unsafe.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// # Safety
/// `cancel` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_cancel_fire(cancel: *const qk_cancel, err: *mut qk_error) -> qk_status {
    boundary(err, || {
        unsafe { arg_ref(cancel, "cancel") }?.0.cancel();
        Ok(())
    })
}

/// Stores 1 in `*fired_out` if the signal was fired, else 0.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same `qk_cancel` except its free.
///
/// # Safety
/// `cancel` is NULL or live; `fired_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_cancel_is_fired(
    cancel: *const qk_cancel,
    fired_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (c, out) = unsafe {
            (
                arg_ref(cancel, "cancel")?,
                Out::new(fired_out, "fired_out")?,
            )
        };
        out.set_flag(c.0.is_cancelled());
        Ok(())
    })
}

/// Frees a cancel signal. NULL is a no-op. Acquires waiting on it keep
/// their own reference (firing is then no longer possible, of course).
///
/// Thread safety: needs the `qk_cancel` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `cancel` is NULL or live and not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_cancel_free(cancel: *mut qk_cancel) {
    catch_or((), || unsafe { free_boxed(cancel) })
}

/// Grants the lease if it is free now; never waits, never queues.
///
/// Errors: as `qk_lease_table_acquire()`, with `QK_ERR_BUSY` instead of
/// `QK_ERR_TIMEOUT` when the resource is held, queued for or in lock-delay.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// As `qk_lease_table_acquire()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_try_acquire(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    ttl_ns: u64,
    mode: u32,
    lease_out: *mut qk_lease,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { names(table, resource, resource_len, owner, owner_len) }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        let lease = n.table.table.try_acquire(
            n.resource,
            n.owner,
            Duration::from_nanos(ttl_ns),
            mode_of(mode)?,
        )?;
        out.set(lease.into());
        Ok(())
    })
}

/// Extends the lease `token` on `resource` held by `owner` to now +
/// `ttl_ns` and stores it in `*lease_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (ttl_ns 0), `QK_ERR_LEASE_EXPIRED` (it ran out first),
/// `QK_ERR_NOT_HOLDER` (another owner, an unknown token, released, or
/// superseded by a later grant).
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// As `qk_lease_table_acquire()`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_table_renew(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    token: u64,
    ttl_ns: u64,
    lease_out: *mut qk_lease,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { names(table, resource, resource_len, owner, owner_len) }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        let lease =
            n.table
                .table
                .renew_token(n.resource, n.owner, token, Duration::from_nanos(ttl_ns))?;
        out.set(lease.into());
        Ok(())
    })
}

/// Ends the lease `token` on `resource` held by `owner` and grants the
/// next waiters. Not idempotent: releasing again gives `QK_ERR_NOT_HOLDER`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_LEASE_EXPIRED`,
/// `QK_ERR_NOT_HOLDER`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// As `qk_lease_table_acquire()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_release(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    token: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { names(table, resource, resource_len, owner, owner_len) }?;
        Ok(n.table.table.release_token(n.resource, n.owner, token)?)
    })
}

/// Stores in `*count_out` how many resources the table keeps state for:
/// held, queued for, in lock-delay, or with a lease that expired within
/// max(its TTL, 60 s). Released names cost nothing, so this (and the
/// table's memory) stays bounded by the live leases, the waiters and the
/// recently expired leases, however many distinct names were used.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or a live table; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_resource_count(
    table: *const qk_lease_table,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (t, out) = unsafe { (arg_ref(table, "table")?, Out::new(count_out, "count_out")?) };
        out.set(t.table.resource_count());
        Ok(())
    })
}

/// Looks up the lease `token` on `resource` now: stores in `*held_out`
/// whether it is still held and, if it is, the lease as the table has it
/// (its current expiry, renewals included) in `*lease_out` (left alone
/// otherwise). Not held: released, expired, or superseded.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`.
///
/// Thread safety: may run concurrently with any call on the same `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or a live table; `resource` points to `resource_len`
/// bytes; `lease_out` and `held_out` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_table_lease_status(
    table: *const qk_lease_table,
    resource: *const c_char,
    resource_len: usize,
    token: u64,
    lease_out: *mut qk_lease,
    held_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (t, r, lease_out, held_out) = unsafe {
            (
                arg_ref(table, "table")?,
                arg_str(resource, resource_len, "resource")?,
                Out::new(lease_out, "lease_out")?,
                Out::new(held_out, "held_out")?,
            )
        };
        match t.table.lease_status(r, token) {
            Some(l) => {
                lease_out.set(l.into());
                held_out.set_flag(true);
            }
            None => held_out.set_flag(false),
        }
        Ok(())
    })
}

/// Creates a fence that has seen no tokens and stores it in `*fence_out`.
///
/// Ownership: the caller owns the fence; free it with `qk_fence_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `fence_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_fence_new(
    fence_out: *mut *mut qk_fence,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(fence_out, "fence_out") }?;
        hand_out(out, qk_fence(Fence::new()));
        Ok(())
    })
}

/// Frees a fence. NULL is a no-op.
///
/// Thread safety: needs the `qk_fence` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `fence` is NULL or a live fence that no other thread uses and that is
/// not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_fence_free(fence: *mut qk_fence) {
    catch_or((), || unsafe { free_boxed(fence) })
}

/// Accepts `token` for `resource` if it is at least the highest token
/// seen for it, and records it (one atomic step); otherwise
/// `QK_ERR_STALE_TOKEN` (the holder paused past its lease: refuse its write).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_STALE_TOKEN`.
///
/// Thread safety: may run concurrently with any call on the same `qk_fence` except its free.
///
/// # Safety
/// `fence` is NULL or a live fence; `resource` is NULL or points to
/// `resource_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_fence_check(
    fence: *const qk_fence,
    resource: *const c_char,
    resource_len: usize,
    token: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (f, r) = unsafe {
            (
                arg_ref(fence, "fence")?,
                arg_str(resource, resource_len, "resource")?,
            )
        };
        Ok(f.0.check(r, token)?)
    })
}

/// Stores the highest token seen for `resource` in `*token_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`
/// (no token seen for it yet).
///
/// Thread safety: may run concurrently with any call on the same `qk_fence` except its free.
///
/// # Safety
/// As `qk_fence_check()`; `token_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_fence_highest(
    fence: *const qk_fence,
    resource: *const c_char,
    resource_len: usize,
    token_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (f, r, out) = unsafe {
            (
                arg_ref(fence, "fence")?,
                arg_str(resource, resource_len, "resource")?,
                Out::new(token_out, "token_out")?,
            )
        };
        let h =
            f.0.highest(r)
                .ok_or_else(|| Failure::not_found(format!("no token seen for {r:?}")))?;
        out.set(h);
        Ok(())
    })
}
