//! `qk_bounded`: consistent hashing with bounded loads over a copy of a
//! `qk_ring` ([`BoundedLoad`], internally locked).

use std::ffi::{CString, c_char};

use super::args::{
    Out, arg_key, arg_mut, arg_ref, arg_slice_mut, arg_str, c_name, free_boxed, hand_out,
};
use super::boundary::qk_error;
use super::boundary::{Failure, FfiResult, boundary, catch_or};
use super::placement::handle;
use super::ring::qk_ring;
use super::status::qk_status;
use crate::ring::{BoundedLoad, HashRing, Placement, SharedBoundedLoad};

/// A bounded-load balancer (Mirrokni, Thorup, Zadimoghaddam 2018; HAProxy
/// `hash-balance-factor`): `qk_bounded_acquire()` gives a key to the first
/// node clockwise from it on the ring whose load is below
/// `ceil(c × (total_load + 1) × weight / total_weight)` and counts it;
/// `qk_bounded_release()` gives the unit back. HAProxy's and Envoy's
/// percentage `p` is `c = p / 100.0`.
///
/// Ownership: the balancer owns its own copy of the ring it was made from.
///
/// Thread safety: functions taking a `const qk_bounded *` may run
/// concurrently from any number of threads — including acquire and
/// release, which change the loads under an internal lock (so no node is
/// ever over its capacity, whatever the interleaving). Functions taking a
/// `qk_bounded *` (add_node, remove_node, free) need exclusive access.
///
/// Create with `qk_bounded_new()`, destroy with `qk_bounded_free()`.
#[allow(non_camel_case_types)]
pub struct qk_bounded {
    inner: SharedBoundedLoad<HashRing>,
    /// NUL-terminated node names, index-aligned; change only under
    /// exclusive access (add/remove), so lending them out is safe.
    names: Vec<CString>,
}

impl qk_bounded {
    fn sync_names(&mut self) {
        let b = self.inner.get_mut();
        self.names = (0..b.len())
            .filter_map(|i| b.ring().node_name(i))
            .map(c_name)
            .collect();
    }
}

/// Borrows the balancer behind `b`.
///
/// # Safety
/// `b` is NULL or a live balancer.
unsafe fn borrow<'a>(b: *const qk_bounded) -> FfiResult<&'a qk_bounded> {
    unsafe { arg_ref(b, "bounded") }
}

/// Creates a balancer over a copy of `ring`'s nodes, weights and vnodes
/// with balance factor `balance_factor` (finite and > 1, e.g. 1.25), every
/// load 0, and stores it in `*bounded_out`.
///
/// Ownership: the caller owns the new balancer (`qk_bounded_free()`). It
/// copies the ring: later changes to `ring` do not affect it, and `ring`
/// may be freed at once.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_ARG` (`balance_factor` not
/// finite or <= 1).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `bounded_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_new(
    ring: *const qk_ring,
    balance_factor: f64,
    bounded_out: *mut *mut qk_bounded,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (ring, out) = unsafe { (handle(ring)?, Out::new(bounded_out, "bounded_out")?) };
        let b = BoundedLoad::new(ring.get().clone(), balance_factor)?;
        let mut h = qk_bounded {
            inner: SharedBoundedLoad::new(b),
            names: Vec::new(),
        };
        h.sync_names();
        hand_out(out, h);
        Ok(())
    })
}

/// Frees a balancer. NULL is a no-op. Names borrowed from it become
/// invalid.
///
/// Thread safety: needs the `qk_bounded` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `bounded` is NULL or a live balancer, not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_free(bounded: *mut qk_bounded) {
    catch_or((), || unsafe { free_boxed(bounded) })
}

/// Assigns `key` (`key_len` bytes; `key` may be NULL when `key_len` is 0)
/// to the first node clockwise from it whose load is below its capacity,
/// increments that node's load and stores its index in `*index_out`.
/// Thread-safe (internally locked).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// # Safety
/// `bounded` is NULL or a live balancer; `key` is NULL or points to
/// `key_len` readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_acquire(
    bounded: *const qk_bounded,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, key, out) = unsafe {
            (
                borrow(bounded)?,
                arg_key(key, key_len, "key")?,
                Out::new(index_out, "index_out")?,
            )
        };
        out.set(b.inner.acquire(key)?);
        Ok(())
    })
}

/// Gives back one unit of node `index`'s load. Thread-safe.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index` >= node count),
/// `QK_ERR_INVALID_ARG` (the node's load is already 0).
///
/// # Safety
/// `bounded` is NULL or a live balancer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_release(
    bounded: *const qk_bounded,
    index: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let b = unsafe { borrow(bounded) }?;
        b.inner.release(index).map_err(|e| match e {
            crate::Error::NodeNotFound(_) => Failure::not_found(format!(
                "no node at index {index}: there are {} nodes",
                b.names.len()
            )),
            other => other.into(),
        })
    })
}

/// Writes each node's load to `loads_out[index]` for every node index and
/// the total to `*total_out`, read together under the lock (a consistent
/// picture). `cap` is the array's length; `loads_out` may be NULL when
/// `cap` is 0 and the balancer has no nodes. Thread-safe.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL` (`cap` < node count).
///
/// # Safety
/// `bounded` is NULL or a live balancer; `loads_out` is NULL or points to
/// `cap` writable `uint64_t`; `total_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_loads(
    bounded: *const qk_bounded,
    loads_out: *mut u64,
    cap: usize,
    total_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, out, total_out) = unsafe {
            (
                borrow(bounded)?,
                arg_slice_mut(loads_out, cap, "loads_out")?,
                Out::new(total_out, "total_out")?,
            )
        };
        let g = b.inner.lock();
        let loads = g.loads();
        if cap < loads.len() {
            return Err(Failure::too_small("loads_out", loads.len(), cap));
        }
        out[..loads.len()].copy_from_slice(loads);
        total_out.set(g.total_load());
        Ok(())
    })
}

/// Stores node `index`'s capacity for the next placement,
/// `ceil(c × (total_load + 1) × weight / total_weight)`, in
/// `*capacity_out` (`UINT64_MAX` when it does not fit). Thread-safe.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index` >= node count).
///
/// # Safety
/// `bounded` is NULL or a live balancer; `capacity_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_capacity(
    bounded: *const qk_bounded,
    index: usize,
    capacity_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, out) = unsafe { (borrow(bounded)?, Out::new(capacity_out, "capacity_out")?) };
        let cap = b.inner.lock().capacity(index).ok_or_else(|| {
            Failure::not_found(format!(
                "no node at index {index}: there are {} nodes",
                b.names.len()
            ))
        })?;
        out.set(cap);
        Ok(())
    })
}

/// Stores the balance factor `c` in `*factor_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls on the same `qk_bounded` (internally locked) except those taking `qk_bounded *` and its free.
///
/// # Safety
/// `bounded` is NULL or a live balancer; `factor_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_balance_factor(
    bounded: *const qk_bounded,
    factor_out: *mut f64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, out) = unsafe { (borrow(bounded)?, Out::new(factor_out, "factor_out")?) };
        out.set(b.inner.lock().balance_factor());
        Ok(())
    })
}

/// Stores the number of nodes in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls on the same `qk_bounded` (internally locked) except those taking `qk_bounded *` and its free.
///
/// # Safety
/// `bounded` is NULL or a live balancer; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_node_count(
    bounded: *const qk_bounded,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, out) = unsafe { (borrow(bounded)?, Out::new(count_out, "count_out")?) };
        out.set(b.names.len());
        Ok(())
    })
}

/// Stores the name of node `index` in `*name_out` (NUL-terminated) and its
/// length in bytes in `*name_len_out`.
///
/// Ownership: borrowed from the balancer, valid until its next
/// `qk_bounded_add_node()`, `qk_bounded_remove_node()` or
/// `qk_bounded_free()` (acquire and release do not invalidate it).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index` >= node count).
///
/// Thread safety: may run concurrently with other calls on the same `qk_bounded` (internally locked) except those taking `qk_bounded *` and its free.
///
/// # Safety
/// `bounded` is NULL or a live balancer; the out pointers are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_node_name(
    bounded: *const qk_bounded,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, name_out, len_out) = unsafe {
            (
                borrow(bounded)?,
                Out::new(name_out, "name_out")?,
                Out::new(name_len_out, "name_len_out")?,
            )
        };
        let name = b.names.get(index).ok_or_else(|| {
            Failure::not_found(format!(
                "no node at index {index}: there are {} nodes",
                b.names.len()
            ))
        })?;
        name_out.set(name.as_ptr());
        len_out.set(name.as_bytes().len());
        Ok(())
    })
}

/// Adds node `name` (UTF-8, `name_len` bytes) with `weight` (>= 1) and
/// load 0. Other nodes keep their loads. Needs exclusive access.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_ALREADY_EXISTS`,
/// `QK_ERR_INVALID_ARG` (empty name, NUL in the name, weight 0, too many
/// points).
///
/// Thread safety: needs the `qk_bounded` to itself: no other call on it may overlap.
///
/// # Safety
/// `bounded` is NULL or a live balancer used by no other thread during the
/// call; `name` is NULL or points to `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_add_node(
    bounded: *mut qk_bounded,
    name: *const c_char,
    name_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, name) = unsafe {
            (
                arg_mut(bounded, "bounded")?,
                arg_str(name, name_len, "name")?,
            )
        };
        let r = b.inner.get_mut().add_node(name, weight);
        b.sync_names();
        Ok(r?)
    })
}

/// Removes the named node. Its load is dropped (the keys it held have no
/// node; re-acquire them) and stored in `*dropped_out`; the other nodes
/// keep theirs and later indices shift down by one. Needs exclusive access.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: needs the `qk_bounded` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_bounded_add_node()`; `dropped_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bounded_remove_node(
    bounded: *mut qk_bounded,
    name: *const c_char,
    name_len: usize,
    dropped_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (b, name, out) = unsafe {
            (
                arg_mut(bounded, "bounded")?,
                arg_str(name, name_len, "name")?,
                Out::new(dropped_out, "dropped_out")?,
            )
        };
        let r = b.inner.get_mut().remove_node(name);
        b.sync_names();
        out.set(r?);
        Ok(())
    })
}
