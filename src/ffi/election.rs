//! `qk_election`: leader election on leases ([`Election`]), over a
//! `qk_lease_table` (one process), a `qk_redis_lease_table` or a
//! `qk_lease_client` (processes and machines). The leader's epoch is its lease's fencing token.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use super::args::{Out, arg_ref, arg_slice_mut, arg_str, free_boxed, hand_out};
use super::boundary::{Failure, FfiResult, boundary, catch_or, qk_error};
use super::lease::{QK_TIMEOUT_FOREVER, qk_lease_table};
use super::status::qk_status;
use crate::lease::{Election, Leader, LeaseBackend, LeaseTable};

#[cfg(feature = "redis")]
use super::redis_lease::qk_redis_lease_table;
#[cfg(feature = "redis")]
use crate::lease::redis::RedisLeaseTable;

#[cfg(feature = "server")]
use super::lease_client::qk_lease_client;
#[cfg(feature = "server")]
use crate::service::LeaseClient;

enum Inner {
    Local(Election<LeaseTable>),
    #[cfg(feature = "redis")]
    Redis(Election<RedisLeaseTable>),
    #[cfg(feature = "server")]
    Service(Election<LeaseClient>),
}

macro_rules! with {
    ($inner:expr, $e:ident => $body:expr) => {
        match $inner {
            Inner::Local($e) => $body,
            #[cfg(feature = "redis")]
            Inner::Redis($e) => $body,
            #[cfg(feature = "server")]
            Inner::Service($e) => $body,
        }
    };
}

/// One candidate in a named election (docs/leases.md). It
/// holds its own reference to the table's state, so it may outlive the
/// table handle it was made from.
///
/// Thread safety: every function taking a `const qk_election *` may run
/// concurrently; `qk_election_free()` needs it to itself.
///
/// Create with `qk_election_new()` or `qk_election_new_redis()`, destroy
/// with `qk_election_free()` (which resigns).
#[allow(non_camel_case_types)]
pub struct qk_election(Inner);

/// A candidate on its own handle to `table`'s state.
///
/// # Safety
/// The names are NULL or point to that many readable bytes.
unsafe fn candidate_of<B: LeaseBackend + Clone>(
    table: &B,
    name: *const c_char,
    name_len: usize,
    candidate: *const c_char,
    candidate_len: usize,
    ttl_ns: u64,
) -> FfiResult<Election<B>> {
    let name = unsafe { arg_str(name, name_len, "name") }?;
    let cand = unsafe { arg_str(candidate, candidate_len, "candidate") }?;
    let ttl = Duration::from_nanos(ttl_ns);
    Ok(Election::new(Arc::new(table.clone()), name, cand, ttl)?)
}

/// Creates candidate `candidate` in election `name` on an in-process
/// lease table; its leadership lease lasts `ttl_ns` (>= 3 ms) unless
/// renewed (every ttl/3, in the background, while it leads).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (empty name or candidate, ttl below 3 ms).
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_table` except its free.
///
/// # Safety
/// `table` is NULL or live; the names are NULL or point to that many
/// readable bytes; `election_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_new(
    table: *const qk_lease_table,
    name: *const c_char,
    name_len: usize,
    candidate: *const c_char,
    candidate_len: usize,
    ttl_ns: u64,
    election_out: *mut *mut qk_election,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        let t = arg_ref(table, "table")?;
        let e = candidate_of(&t.table, name, name_len, candidate, candidate_len, ttl_ns)?;
        hand_out(
            Out::new(election_out, "election_out")?,
            qk_election(Inner::Local(e)),
        );
        Ok(())
    })
}

/// As `qk_election_new()`, on a Redis lease table: candidates in every
/// process that uses the same server and namespace take part.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_redis_lease_table` except its free.
///
/// # Safety
/// As `qk_election_new()`.
#[cfg(feature = "redis")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_new_redis(
    table: *const qk_redis_lease_table,
    name: *const c_char,
    name_len: usize,
    candidate: *const c_char,
    candidate_len: usize,
    ttl_ns: u64,
    election_out: *mut *mut qk_election,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        let t = arg_ref(table, "table")?;
        let e = candidate_of(&t.table, name, name_len, candidate, candidate_len, ttl_ns)?;
        hand_out(
            Out::new(election_out, "election_out")?,
            qk_election(Inner::Redis(e)),
        );
        Ok(())
    })
}

/// As `qk_election_new()`, over a replicated lease service: candidates in
/// every process that reaches the same cluster take part, and a replica's
/// failure does not end the term.
///
/// Thread safety: may run concurrently with any call on the same
/// `qk_lease_client` except its free.
///
/// # Safety
/// As `qk_election_new()`.
#[cfg(feature = "server")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_new_service(
    client: *const qk_lease_client,
    name: *const c_char,
    name_len: usize,
    candidate: *const c_char,
    candidate_len: usize,
    ttl_ns: u64,
    election_out: *mut *mut qk_election,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        let c = arg_ref(client, "client")?;
        let name = arg_str(name, name_len, "name")?;
        let cand = arg_str(candidate, candidate_len, "candidate")?;
        let e = Election::new(
            Arc::clone(&c.client),
            name,
            cand,
            Duration::from_nanos(ttl_ns),
        )?;
        hand_out(
            Out::new(election_out, "election_out")?,
            qk_election(Inner::Service(e)),
        );
        Ok(())
    })
}

/// Resigns (if leading) and frees the candidate. NULL is a no-op.
///
/// Thread safety: needs the `qk_election` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `election` is NULL or live and not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_free(election: *mut qk_election) {
    catch_or((), || unsafe { free_boxed(election) })
}

/// Blocks until this candidate leads (FIFO behind other candidates) or
/// `timeout_ns` passes (`QK_TIMEOUT_FOREVER`: no limit); stores the term's
/// epoch (a fencing token, greater than every earlier leader's).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_TIMEOUT`, and the table's errors
/// (`QK_ERR_BACKEND_UNAVAILABLE` for Redis).
///
/// Thread safety: may run concurrently with any call on the same `qk_election` except its free.
///
/// # Safety
/// `election` is NULL or live; `epoch_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_campaign(
    election: *const qk_election,
    timeout_ns: u64,
    epoch_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (e, out) = unsafe {
            (
                arg_ref(election, "election")?,
                Out::new(epoch_out, "epoch_out")?,
            )
        };
        let timeout = (timeout_ns != QK_TIMEOUT_FOREVER).then(|| Duration::from_nanos(timeout_ns));
        out.set(with!(&e.0, x => x.campaign(timeout))?);
        Ok(())
    })
}

/// Gives up leadership at once (a no-op when not leading).
///
/// Errors: `QK_ERR_NULL_ARG`, the table's errors.
///
/// Thread safety: may run concurrently with any call on the same `qk_election` except its free.
///
/// # Safety
/// `election` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_resign(
    election: *const qk_election,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let e = unsafe { arg_ref(election, "election") }?;
        with!(&e.0, x => x.resign())?;
        Ok(())
    })
}

/// Stores 1 in `*leading_out` if this candidate leads (won, not resigned,
/// no failed renewal), else 0.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with any call on the same `qk_election` except its free.
///
/// # Safety
/// `election` is NULL or live; `leading_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_is_leader(
    election: *const qk_election,
    leading_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (e, out) = unsafe {
            (
                arg_ref(election, "election")?,
                Out::new(leading_out, "leading_out")?,
            )
        };
        out.set_flag(with!(&e.0, x => x.is_leader()));
        Ok(())
    })
}

/// The out-parameters of a leader answer.
///
/// # Safety
/// Each pointer is NULL or writable.
unsafe fn leader_outs(
    name_len_out: *mut usize,
    epoch_out: *mut u64,
    has_out: *mut u8,
) -> FfiResult<(Out<usize>, Out<u64>, Out<u8>)> {
    unsafe {
        Ok((
            Out::new(name_len_out, "name_len_out")?,
            Out::new(epoch_out, "epoch_out")?,
            Out::new(has_out, "has_out")?,
        ))
    }
}

fn write_leader(
    leader: Option<Leader>,
    name_buf: *mut c_char,
    cap: usize,
    name_len_out: Out<usize>,
    epoch_out: Out<u64>,
    has_out: Out<u8>,
) -> FfiResult {
    let Some(l) = leader else {
        has_out.set_flag(false);
        return Ok(());
    };
    let bytes = l.candidate.as_bytes();
    if bytes.len() > cap {
        return Err(Failure::too_small("name_buf", bytes.len(), cap));
    }
    if !bytes.is_empty() {
        // SAFETY: the caller's buffer holds `cap` >= len bytes.
        let dst = unsafe { arg_slice_mut(name_buf.cast::<u8>(), bytes.len(), "name_buf") }?;
        dst.copy_from_slice(bytes);
    }
    name_len_out.set(bytes.len());
    epoch_out.set(l.epoch);
    has_out.set_flag(true);
    Ok(())
}

/// Asks the table who leads: stores 1 in `*has_out` and the leader's name
/// (not NUL-terminated) in `name_buf[0..*name_len_out]` with its epoch in
/// `*epoch_out`, or 0 in `*has_out` when nobody leads.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_BUFFER_TOO_SMALL` when the name is
/// longer than `cap` (nothing written; names are at most 1024 bytes); the
/// table's errors.
///
/// Thread safety: may run concurrently with any call on the same `qk_election` except its free.
///
/// # Safety
/// `election` is NULL or live; `name_buf` is NULL or holds `cap` writable
/// bytes; the out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_election_leader(
    election: *const qk_election,
    name_buf: *mut c_char,
    cap: usize,
    name_len_out: *mut usize,
    epoch_out: *mut u64,
    has_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let e = unsafe { arg_ref(election, "election") }?;
        let (len, epoch, has) = unsafe { leader_outs(name_len_out, epoch_out, has_out) }?;
        let leader = with!(&e.0, x => x.leader())?;
        write_leader(leader, name_buf, cap, len, epoch, has)
    })
}

/// Observes leadership: blocks until the term differs from the one whose
/// epoch is `last_epoch` (0: "nobody leads"), asking the table every
/// `poll_ns` (0: 50 ms; at least 1 ms), or until `timeout_ns` passes
/// (`QK_TIMEOUT_FOREVER`: as long as it takes). Then stores the leader
/// as `qk_election_leader()` does; at the timeout that is the unchanged
/// leader. A loop over this call, feeding back `*epoch_out` (0 when
/// `*has_out` is 0), sees every term change.
///
/// Errors: as `qk_election_leader()`.
///
/// Thread safety: may run concurrently with any call on the same `qk_election` except its free.
///
/// # Safety
/// As `qk_election_leader()`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_election_wait_change(
    election: *const qk_election,
    last_epoch: u64,
    poll_ns: u64,
    timeout_ns: u64,
    name_buf: *mut c_char,
    cap: usize,
    name_len_out: *mut usize,
    epoch_out: *mut u64,
    has_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let e = unsafe { arg_ref(election, "election") }?;
        let (len, epoch, has) = unsafe { leader_outs(name_len_out, epoch_out, has_out) }?;
        let poll = match poll_ns {
            0 => Duration::from_millis(50),
            ns => Duration::from_nanos(ns).max(Duration::from_millis(1)),
        };
        let timeout = (timeout_ns != QK_TIMEOUT_FOREVER).then(|| Duration::from_nanos(timeout_ns));
        let last = (last_epoch != 0).then_some(last_epoch);
        let leader = with!(&e.0, x => x.wait_epoch_change(last, poll, timeout))?;
        write_leader(leader, name_buf, cap, len, epoch, has)
    })
}
