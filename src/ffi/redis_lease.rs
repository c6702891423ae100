//! `qk_redis_lease_table`: leases kept in Redis and shared by processes and
//! machines ([`RedisLeaseTable`]). The same calls as `qk_lease_table`, plus
//! `QK_ERR_BACKEND_UNAVAILABLE` when the server cannot be reached.

use std::ffi::{CStr, c_char};
use std::sync::Arc;
use std::time::Duration;

use super::args::{Out, arg_ref, arg_str, free_boxed, hand_out};
use super::boundary::{Failure, boundary, catch_or, qk_error};
use super::inflight::Inside;
use super::lease::{QK_TIMEOUT_FOREVER, cancel_token, mode_of, names, qk_cancel, qk_lease};
use super::status::qk_status;
use crate::error::Error;
use crate::lease::redis::{RedisConfig, RedisEnqueued, RedisLeaseTable};
use crate::lease::{CancelToken, Cancelled, Lease};

/// A lease table kept in Redis (docs/leases.md): every process that
/// opens the same server and namespace shares its leases, FIFO queues and
/// fencing tokens; expiry is the server's, so a crashed holder's lease
/// ends with no client alive.
///
/// Thread safety: every function taking a `const qk_redis_lease_table *`
/// may run concurrently from any number of threads (connections are
/// pooled). `qk_redis_lease_table_free()` cancels the acquires blocked in
/// it (they return `QK_ERR_CANCELLED`) and waits for them.
///
/// Create with `qk_redis_lease_table_new()`, destroy with
/// `qk_redis_lease_table_free()`.
#[allow(non_camel_case_types)]
pub struct qk_redis_lease_table {
    pub(crate) table: RedisLeaseTable,
    closing: CancelToken,
    inside: Arc<Inside>,
}

/// Opens a table on the server at `url` (NUL-terminated:
/// `redis://[user:password@]host:port[/db]`, `rediss://` for TLS (a trailing `#insecure` skips the certificate check),
/// `redis+unix:///path`, or `redis-cluster://host:port,host:port,...` for
/// a Redis Cluster, `rediss-cluster://` with TLS) under `namespace` (its keys' prefix; (NULL, 0)
/// means "qk"). `connect_timeout_ns` and `command_timeout_ns` bound every
/// wait for the server (0: the defaults, 2 s each). Connects lazily: an
/// unreachable server is reported by the first call.
///
/// Ownership: the caller owns the table; free it with
/// `qk_redis_lease_table_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (a bad URL or namespace).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `url` is NULL or NUL-terminated; `namespace` is NULL or points to
/// `namespace_len` readable bytes; `table_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_redis_lease_table_new(
    url: *const c_char,
    namespace: *const c_char,
    namespace_len: usize,
    connect_timeout_ns: u64,
    command_timeout_ns: u64,
    table_out: *mut *mut qk_redis_lease_table,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        if url.is_null() {
            return Err(Failure::null("url"));
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let url = unsafe { CStr::from_ptr(url) }
            .to_str()
            .map_err(|e| Failure::utf8("url", e))?;
        let ns = unsafe { arg_str(namespace, namespace_len, "namespace") }?;
        let out = unsafe { Out::new(table_out, "table_out") }?;
        let d = RedisConfig::default();
        let pick = |ns: u64, default: Duration| {
            if ns == 0 {
                default
            } else {
                Duration::from_nanos(ns)
            }
        };
        let config = RedisConfig {
            namespace: if ns.is_empty() {
                d.namespace.clone()
            } else {
                ns.to_owned()
            },
            connect_timeout: pick(connect_timeout_ns, d.connect_timeout),
            command_timeout: pick(command_timeout_ns, d.command_timeout),
            ..d
        };
        let table = RedisLeaseTable::open(url, config)?;
        hand_out(
            out,
            qk_redis_lease_table {
                table,
                closing: CancelToken::new(),
                inside: Arc::default(),
            },
        );
        Ok(())
    })
}

/// Frees a table. NULL is a no-op. Acquires blocked in it return
/// `QK_ERR_CANCELLED` (their requests withdrawn) and this waits for them.
/// Leases still held stay in Redis until released elsewhere or expired.
///
/// Thread safety: no call on the table may start once this has begun.
///
/// # Safety
/// `table` is NULL or a live table not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_redis_lease_table_free(table: *mut qk_redis_lease_table) {
    catch_or((), || {
        if table.is_null() {
            return;
        }
        // SAFETY: live per the contract.
        let t = unsafe { &*table };
        t.closing.cancel();
        t.inside.wait_empty();
        unsafe { free_boxed(table) }
    })
}

fn cancelled(resource: &str) -> Failure {
    Error::Cancelled {
        resource: resource.to_owned(),
    }
    .into()
}

/// Acquires a lease, blocking until granted (FIFO across every process),
/// `timeout_ns` passes (`QK_TIMEOUT_FOREVER`: no limit; 0: only if free
/// now), or `cancel` fires / the table is freed (`QK_ERR_CANCELLED`, seen
/// within a round trip to the server). `cancel` may be NULL. `expires_at_ns` of the result is on
/// this process's monotonic clock, measured from when the request was sent.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`,
/// `QK_ERR_TIMEOUT`, `QK_ERR_CANCELLED`, `QK_ERR_BACKEND_UNAVAILABLE`,
/// `QK_ERR_CORRUPT` (keys of another kind in the namespace).
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or live; `resource` and `owner` are NULL or point to
/// that many readable bytes; `cancel` is NULL or live when the call
/// starts; `lease_out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_redis_lease_table_acquire(
    table: *const qk_redis_lease_table,
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
        let n = unsafe { names(table, resource, resource_len, owner, owner_len) }?;
        let user = unsafe { cancel_token(cancel) }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        let mode = mode_of(mode)?;
        let t = n.table;
        let _inside = t.inside.enter();
        // Fires when the caller's signal does or the table is freed.
        let stop = CancelToken::new();
        t.closing.link(&stop);
        if let Some(u) = &user {
            u.link(&stop);
        }
        if stop.is_cancelled() {
            return Err(cancelled(n.resource));
        }
        let timeout = (timeout_ns != QK_TIMEOUT_FOREVER).then(|| Duration::from_nanos(timeout_ns));
        let ttl = Duration::from_nanos(ttl_ns);
        let lease: Lease = match t.table.enqueue(n.resource, n.owner, ttl, mode, timeout)? {
            RedisEnqueued::Granted(l) => l,
            RedisEnqueued::Queued(mut ticket) => match ticket.wait_cancellable(None, &stop)? {
                Some(l) => l,
                None => {
                    if let Cancelled::Granted(l) = ticket.cancel()? {
                        t.table.release(&l)?;
                    }
                    return Err(cancelled(n.resource));
                }
            },
        };
        out.set(lease.into());
        Ok(())
    })
}

/// Grants the lease if it is free now (`QK_ERR_BUSY` otherwise); never
/// queues.
///
/// Errors: as `qk_redis_lease_table_acquire()`, with `QK_ERR_BUSY`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// As `qk_redis_lease_table_acquire()`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_redis_lease_table_try_acquire(
    table: *const qk_redis_lease_table,
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
        let l = n.table.table.try_acquire(
            n.resource,
            n.owner,
            Duration::from_nanos(ttl_ns),
            mode_of(mode)?,
        )?;
        out.set(l.into());
        Ok(())
    })
}

/// Extends the lease `token` to now + `ttl_ns`; stores the renewed lease.
///
/// Errors: `QK_ERR_LEASE_EXPIRED` (it ran out first), `QK_ERR_NOT_HOLDER`
/// (not this owner's, released, superseded), `QK_ERR_BACKEND_UNAVAILABLE`,
/// and the argument errors.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// As `qk_redis_lease_table_acquire()`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_redis_lease_table_renew(
    table: *const qk_redis_lease_table,
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
        let l =
            n.table
                .table
                .renew_token(n.resource, n.owner, token, Duration::from_nanos(ttl_ns))?;
        out.set(l.into());
        Ok(())
    })
}

/// Ends the lease `token` and hands the resource to the next waiter.
///
/// Errors: as `qk_redis_lease_table_renew()`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// As `qk_redis_lease_table_acquire()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_redis_lease_table_release(
    table: *const qk_redis_lease_table,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    token: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { names(table, resource, resource_len, owner, owner_len) }?;
        n.table.table.release_token(n.resource, n.owner, token)?;
        Ok(())
    })
}

/// Stores in `*len_out` how many requests wait for `resource`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`,
/// `QK_ERR_BACKEND_UNAVAILABLE`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or live; `resource` is NULL or points to `resource_len`
/// readable bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_redis_lease_table_queue_len(
    table: *const qk_redis_lease_table,
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
        out.set(t.table.queue_len(r)?);
        Ok(())
    })
}
