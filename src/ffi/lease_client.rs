//! `qk_lease_client`: leases from a replicated lease service
//! (`quorumkit serve --state lease`, [`LeaseClient`]). The same calls as
//! `qk_lease_table`, across processes and machines, plus
//! `QK_ERR_BACKEND_UNAVAILABLE` when no replica answers in time.

use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{Out, arg_ref, arg_slice, arg_slice_mut, arg_str, free_boxed, hand_out};
use super::boundary::{Failure, boundary, catch_or, qk_error};
use super::inflight::Inside;
use super::lease::{CCallback, QK_TIMEOUT_FOREVER, mode_of, names, qk_lease, qk_lease_callback};
use super::status::qk_status;
use crate::error::Error;
use crate::lease::{Mode, MonotonicClock};
use crate::net::{ClientConfig, parse_addrs};
use crate::service::{LeaseClient, RemoteLease};

/// A client of a replicated lease service (docs/service.md): every
/// process that reaches the same cluster shares its leases, FIFO queues
/// and fencing tokens, and a leader's failure loses none of them.
///
/// Thread safety: every function taking a `const qk_lease_client *` may
/// run concurrently from any number of threads (connections are pooled;
/// a blocked acquire does not hold up a renew). `qk_lease_client_free()`
/// waits for the calls in progress, so bound blocking acquires with a
/// timeout in a program that frees its client while others still run.
///
/// Create with `qk_lease_client_new()`, destroy with
/// `qk_lease_client_free()`.
#[allow(non_camel_case_types)]
pub struct qk_lease_client {
    pub(crate) client: Arc<LeaseClient>,
    inside: Arc<Inside>,
}

/// Opens a client of the cluster whose replicas listen at `addrs`
/// (NUL-terminated, comma-separated `HOST:PORT` entries; the
/// `ID=HOST:PORT` form of `quorumkit serve --peers` is accepted too),
/// with the cluster's id and secret (`secret_len` >= 16 bytes).
/// `timeout_ns` bounds every call's search for a leader, retries included
/// (0: 10 s). Connects lazily: an unreachable cluster is reported by the
/// first call, as `QK_ERR_BACKEND_UNAVAILABLE`, within the timeout.
///
/// Ownership: the caller owns the client; free it with
/// `qk_lease_client_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (no address, one that does not resolve, a secret under 16 bytes).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `addrs` is NULL or NUL-terminated; `secret` is NULL or points to
/// `secret_len` readable bytes; `client_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_client_new(
    addrs: *const c_char,
    cluster_id: u64,
    secret: *const u8,
    secret_len: usize,
    timeout_ns: u64,
    client_out: *mut *mut qk_lease_client,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        if addrs.is_null() {
            return Err(Failure::null("addrs"));
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let addrs = unsafe { CStr::from_ptr(addrs) }
            .to_str()
            .map_err(|e| Failure::utf8("addrs", e))?;
        let secret = unsafe { arg_slice(secret, secret_len, "secret") }?;
        let out = unsafe { Out::new(client_out, "client_out") }?;
        let mut config = ClientConfig::new(parse_addrs(addrs)?, cluster_id, secret.to_vec());
        if timeout_ns != 0 {
            config.timeout = Duration::from_nanos(timeout_ns);
            config.attempt_timeout = config.attempt_timeout.min(config.timeout);
        }
        let client = LeaseClient::new(config)?;
        hand_out(
            out,
            qk_lease_client {
                client: Arc::new(client),
                inside: Arc::default(),
            },
        );
        Ok(())
    })
}

/// Frees a client. NULL is a no-op. Waits for the calls in progress on it
/// to return. Leases still held stay with the service until released
/// elsewhere or expired.
///
/// Thread safety: no call on the client may start once this has begun.
///
/// # Safety
/// `client` is NULL or a live client not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_client_free(client: *mut qk_lease_client) {
    catch_or((), || {
        if client.is_null() {
            return;
        }
        // SAFETY: live per the contract.
        unsafe { &*client }.inside.wait_empty();
        unsafe { free_boxed(client) }
    })
}

/// Stores the reading of the clock that `qk_lease.expires_at_ns` of this
/// client's leases is measured on: the process's monotonic clock, in
/// nanoseconds (the same for every client of the process).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call.
///
/// # Safety
/// `client` is NULL or live; `now_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_client_now(
    client: *const qk_lease_client,
    now_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (_, out) = unsafe { (arg_ref(client, "client")?, Out::new(now_out, "now_out")?) };
        out.set(MonotonicClock.now_ns());
        Ok(())
    })
}

/// An acquire with the C timeout convention: 0 tries once,
/// `QK_TIMEOUT_FOREVER` waits without end, anything else waits that long.
fn acquire_within(
    client: &LeaseClient,
    resource: &str,
    owner: &str,
    ttl: Duration,
    mode: Mode,
    timeout_ns: u64,
) -> crate::error::Result<RemoteLease> {
    match timeout_ns {
        0 => client.try_acquire(resource, owner, ttl, mode),
        QK_TIMEOUT_FOREVER => client.acquire(resource, owner, ttl, mode, None),
        ns => client.acquire(resource, owner, ttl, mode, Some(Duration::from_nanos(ns))),
    }
}

/// A held lease as C sees it: valid until this process's conservative
/// deadline (the request's send time plus the TTL) on the monotonic clock.
fn c_lease(l: RemoteLease) -> qk_lease {
    let now = Instant::now();
    let left =
        u64::try_from(l.valid_until.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX);
    let mut out: qk_lease = l.lease.into();
    out.expires_at_ns = MonotonicClock.now_ns().saturating_add(left);
    out
}

/// Acquires a lease, blocking until the service grants it (FIFO across
/// every client of the cluster; the service tells this client, with no
/// polling) or `timeout_ns` passes (`QK_TIMEOUT_FOREVER`: no limit; 0:
/// only if free now). A retried request (after a leader change) is never
/// granted twice. `lease_out->expires_at_ns` is on `qk_lease_client_now()`'s
/// clock, counted from when the request was sent (the service's own
/// expiry is never earlier); `token` is the fencing token, greater than
/// every token the cluster granted before on any resource.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (empty names, zero TTL, bad mode), `QK_ERR_TIMEOUT`,
/// `QK_ERR_BACKEND_UNAVAILABLE` (no leader answered within the client's
/// timeout).
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// `client` is NULL or live; `resource` and `owner` are NULL or point to
/// that many readable bytes; `lease_out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_client_acquire(
    client: *const qk_lease_client,
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
        let n = unsafe { names(client, resource, resource_len, owner, owner_len) }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        let mode = mode_of(mode)?;
        let c = n.table;
        let _inside = c.inside.enter();
        let ttl = Duration::from_nanos(ttl_ns);
        let l = acquire_within(&c.client, n.resource, n.owner, ttl, mode, timeout_ns)?;
        out.set(c_lease(l));
        Ok(())
    })
}

/// Starts an acquire that does not block the caller: it waits on a thread
/// of its own (for event loops and bindings; a program with thousands of
/// concurrent waiters should call `qk_lease_client_acquire()` from its
/// own pool instead), and `callback(user_data, ...)` gets the outcome
/// exactly once from that thread (see `qk_lease_callback`; `lease`'s
/// `expires_at_ns` as in `qk_lease_client_acquire()`). `timeout_ns` as
/// there. `qk_lease_client_free()` waits for the callback of every
/// acquire in progress, so give a timeout to an acquire that a free may
/// overtake, and do not free the client from its own callback.
///
/// Errors (the callback is then never called): `QK_ERR_NULL_ARG` (also
/// for a NULL callback), `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (empty names, zero TTL, bad mode), `QK_ERR_BACKEND_UNAVAILABLE` (no
/// thread could be started). Every later failure (`QK_ERR_TIMEOUT`,
/// `QK_ERR_BUSY` for timeout 0, `QK_ERR_BACKEND_UNAVAILABLE`) reaches the
/// callback.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// As `qk_lease_client_acquire()`; `callback` is called from another
/// thread with `user_data`, which must stay valid until it is.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_client_acquire_async(
    client: *const qk_lease_client,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    ttl_ns: u64,
    mode: u32,
    timeout_ns: u64,
    callback: qk_lease_callback,
    user_data: *mut c_void,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let cb = CCallback::new(callback, user_data)?;
        let n = unsafe { names(client, resource, resource_len, owner, owner_len) }?;
        let mode = mode_of(mode)?;
        let ttl = Duration::from_nanos(ttl_ns);
        // Refused here, not through the callback (the thread's acquire would).
        LeaseClient::check(n.resource, n.owner, ttl)?;
        let c = n.table;
        let (lc, resource, owner) = (c.client.clone(), n.resource.to_owned(), n.owner.to_owned());
        // Counted in before the thread starts, so that a free cannot slip
        // between this return and the thread's first step.
        let inside = c.inside.enter();
        std::thread::Builder::new()
            .name("qk-lease-acquire".into())
            .spawn(move || {
                let _inside = inside;
                let outcome = acquire_within(&lc, &resource, &owner, ttl, mode, timeout_ns);
                cb.deliver(outcome.map(c_lease));
            })
            .map_err(|e| Error::unavailable(format!("cannot start a thread: {e}")))?;
        Ok(())
    })
}

/// Grants the lease if it is free now (`QK_ERR_BUSY` otherwise); never
/// queues.
///
/// Errors: as `qk_lease_client_acquire()`, with `QK_ERR_BUSY`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// As `qk_lease_client_acquire()`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_client_try_acquire(
    client: *const qk_lease_client,
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
        let n = unsafe { names(client, resource, resource_len, owner, owner_len) }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        let mode = mode_of(mode)?;
        let _inside = n.table.inside.enter();
        let l =
            n.table
                .client
                .try_acquire(n.resource, n.owner, Duration::from_nanos(ttl_ns), mode)?;
        out.set(c_lease(l));
        Ok(())
    })
}

/// Extends the lease `token` to `ttl_ns` from the service's now; stores
/// the renewed lease (its `expires_at_ns` counted from this call's send
/// time).
///
/// Errors: `QK_ERR_LEASE_EXPIRED` (it ran out first), `QK_ERR_NOT_HOLDER`
/// (not this owner's, released, superseded), `QK_ERR_BACKEND_UNAVAILABLE`,
/// and the argument errors.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// As `qk_lease_client_acquire()`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_lease_client_renew(
    client: *const qk_lease_client,
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
        let n = unsafe { names(client, resource, resource_len, owner, owner_len) }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        let c = n.table;
        let _inside = c.inside.enter();
        let ttl = Duration::from_nanos(ttl_ns);
        // A renewal is useless once the TTL it asks for has passed.
        let timeout = c.client.timeout().min(ttl.max(Duration::from_millis(1)));
        let l = c
            .client
            .renew_token(n.resource, n.owner, token, ttl, timeout)?;
        out.set(c_lease(l));
        Ok(())
    })
}

/// Ends the lease `token`; the next waiter is granted at once.
///
/// Errors: as `qk_lease_client_renew()`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// As `qk_lease_client_acquire()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_client_release(
    client: *const qk_lease_client,
    resource: *const c_char,
    resource_len: usize,
    owner: *const c_char,
    owner_len: usize,
    token: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { names(client, resource, resource_len, owner, owner_len) }?;
        let _inside = n.table.inside.enter();
        n.table.client.release_token(n.resource, n.owner, token)?;
        Ok(())
    })
}

/// Reads the current holders of `resource` (a linearizable read on the
/// leader): stores their number in `*count_out` and the first
/// `min(count, cap)` of them in `holders[]` (`expires_at_ns` there is the
/// service's cluster time: it orders the holders' expiries but is not on
/// this process's clock).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`,
/// `QK_ERR_BUFFER_TOO_SMALL` (more holders than `cap`; `*count_out` says
/// how many), `QK_ERR_BACKEND_UNAVAILABLE`.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// `client` is NULL or live; `resource` is NULL or points to
/// `resource_len` readable bytes; `holders` is NULL (with `cap` 0) or holds
/// `cap` writable `qk_lease`s; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_lease_client_holders(
    client: *const qk_lease_client,
    resource: *const c_char,
    resource_len: usize,
    holders: *mut qk_lease,
    cap: usize,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (c, r, count) = unsafe {
            (
                arg_ref(client, "client")?,
                arg_str(resource, resource_len, "resource")?,
                Out::new(count_out, "count_out")?,
            )
        };
        let _inside = c.inside.enter();
        let list = c.client.holders(r)?;
        count.set(list.len());
        let n = list.len().min(cap);
        if n > 0 {
            // SAFETY: the caller's array holds `cap` >= n entries.
            let dst = unsafe { arg_slice_mut(holders, n, "holders") }?;
            for (d, l) in dst.iter_mut().zip(list.iter().cloned()) {
                *d = l.into();
            }
        }
        if list.len() > cap {
            return Err(Failure::too_small("holders", list.len(), cap));
        }
        Ok(())
    })
}
