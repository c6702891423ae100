//! `qk_rendezvous`: weighted rendezvous (HRW) hashing ([`Rendezvous`]).

use std::ffi::c_char;

use super::args::{Out, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{boundary, catch_or};
use super::placement::{self as common, CHandle, Handle, handle_mut};
use super::status::qk_status;
use crate::ring::Rendezvous;

/// Weighted rendezvous (highest random weight) hashing with `double`
/// weights: a node's expected share of keys is its weight over the sum of
/// weights, and a membership change moves only the keys that must move
/// (see the docs/rings.md). A lookup scores every node: O(nodes).
/// Nodes have dense indices `0..count` in insertion order; removing a node
/// shifts the later indices down by one.
///
/// Thread safety: functions taking a `const qk_rendezvous *` only read and
/// may run concurrently; functions taking a `qk_rendezvous *` (add,
/// remove, set_weight, free) need exclusive access.
///
/// Create with `qk_rendezvous_new()`, destroy with `qk_rendezvous_free()`.
#[allow(non_camel_case_types)]
pub struct qk_rendezvous(Handle<Rendezvous>);

impl CHandle for qk_rendezvous {
    type P = Rendezvous;
    const ARG: &'static str = "hrw";
    fn handle(&self) -> &Handle<Rendezvous> {
        &self.0
    }
    fn handle_mut(&mut self) -> &mut Handle<Rendezvous> {
        &mut self.0
    }
}

/// Creates an empty rendezvous placement and stores it in `*hrw_out`.
///
/// Ownership: the caller owns it and must release it with
/// `qk_rendezvous_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `hrw_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_new(
    hrw_out: *mut *mut qk_rendezvous,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(hrw_out, "hrw_out") }?;
        hand_out(out, qk_rendezvous(Handle::new(Rendezvous::new())));
        Ok(())
    })
}

/// Frees a placement made by `qk_rendezvous_new()`. NULL is a no-op. Node
/// names borrowed from it become invalid.
///
/// Thread safety: needs the `qk_rendezvous` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `hrw` is NULL or live, not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_free(hrw: *mut qk_rendezvous) {
    catch_or((), || unsafe { free_boxed(hrw) })
}

/// Adds node `name` (`name_len` bytes of UTF-8, no NUL byte) with `weight`
/// (positive and finite). Only the keys it now wins move, all to it.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_ALREADY_EXISTS`,
/// `QK_ERR_INVALID_ARG` (empty name, NUL in the name, weight <= 0, NaN or
/// infinite).
///
/// Thread safety: needs the `qk_rendezvous` to itself: no other call on it may overlap.
///
/// # Safety
/// `hrw` is NULL or live and used by no other thread during the call;
/// `name` is NULL or points to `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_add_node(
    hrw: *mut qk_rendezvous,
    name: *const c_char,
    name_len: usize,
    weight: f64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, name) = unsafe { (handle_mut(hrw)?, arg_str(name, name_len, "name")?) };
        h.mutate(|r| r.add_node(name, weight))
    })
}

/// Removes the named node. Only the keys it owned move.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: needs the `qk_rendezvous` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_rendezvous_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_remove_node(
    hrw: *mut qk_rendezvous,
    name: *const c_char,
    name_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::remove(hrw, name, name_len) })
}

/// Sets the named node's weight (positive and finite). Only keys moving to
/// or from this node move.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`,
/// `QK_ERR_INVALID_ARG`.
///
/// Thread safety: needs the `qk_rendezvous` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_rendezvous_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_set_weight(
    hrw: *mut qk_rendezvous,
    name: *const c_char,
    name_len: usize,
    weight: f64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::set_weight(hrw, name, name_len, weight)
    })
}

/// Stores the named node's weight in `*weight_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `name` is NULL or points to `name_len` readable
/// bytes; `weight_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_weight(
    hrw: *const qk_rendezvous,
    name: *const c_char,
    name_len: usize,
    weight_out: *mut f64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::weight(hrw, name, name_len, weight_out)
    })
}

/// Stores the number of nodes in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_node_count(
    hrw: *const qk_rendezvous,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::node_count(hrw, count_out) })
}

/// Stores the name of node `index` in `*name_out` (NUL-terminated) and its
/// length in bytes, without the NUL, in `*name_len_out`.
///
/// Ownership: borrowed from `hrw`: do not free it. Valid until `hrw` is
/// next mutated or freed.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_node_name(
    hrw: *const qk_rendezvous,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_name(hrw, index, name_out, name_len_out)
    })
}

/// Stores the index of the named node in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `name` is NULL or points to `name_len` readable
/// bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_node_index(
    hrw: *const qk_rendezvous,
    name: *const c_char,
    name_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_index(hrw, name, name_len, index_out)
    })
}

/// Stores the index of the node with the highest score for `key`
/// (`key_len` bytes; `key` may be NULL when `key_len` is 0) in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `key` is NULL or points to `key_len` readable
/// bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_get_node(
    hrw: *const qk_rendezvous,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node(hrw, key, key_len, index_out)
    })
}

/// Stores the indices of the `n` nodes with the highest scores for `key`,
/// best first, in `indices_out[0..n]` (distinct; the first is what
/// `qk_rendezvous_get_node()` returns). `indices_out` may be NULL when `n`
/// is 0.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (`n` >
/// node count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `key` is NULL or points to `key_len` readable
/// bytes; `indices_out` is NULL or points to `n` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_get_nodes(
    hrw: *const qk_rendezvous,
    key: *const u8,
    key_len: usize,
    n: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_nodes(hrw, key, key_len, n, indices_out)
    })
}

/// Locates `count` keys at once: `indices_out[i]` becomes the index of the
/// node owning `keys[i]` (`key_lens[i]` bytes). The arrays may be NULL
/// when `count` is 0. Nothing is written on failure.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY` (also when `count` is 0).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `keys` and `key_lens` are NULL or point to
/// `count` readable elements, each key to its length in readable bytes;
/// `indices_out` is NULL or points to `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_get_node_batch(
    hrw: *const qk_rendezvous,
    keys: *const *const u8,
    key_lens: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch(hrw, keys, key_lens, count, indices_out)
    })
}

/// As `qk_rendezvous_get_node_batch()`, with the keys laid end to end in one
/// buffer: key `i` is bytes `offsets[i]` to `offsets[i + 1]` of `keys`
/// (`keys_len` bytes), so `offsets` holds `count + 1` non-decreasing
/// entries, the last at most `keys_len` (Go and JavaScript pass one buffer
/// without a copy per key). The arrays may be NULL when `count` is 0.
/// Nothing is written unless every offset is valid.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (an
/// offset that decreases or passes `keys_len`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `keys` is NULL or points to `keys_len` readable
/// bytes; `offsets` to `count + 1` readable `size_t`; `indices_out` to
/// `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_get_node_batch_flat(
    hrw: *const qk_rendezvous,
    keys: *const u8,
    keys_len: usize,
    offsets: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch_flat(hrw, keys, keys_len, offsets, count, indices_out)
    })
}

/// Writes each node's expected share of keys, `weight / sum of weights`,
/// to `shares_out[index]` (an expectation over keys, not a measured
/// fraction). `cap` is the array's length.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL` (`cap` < count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `shares_out` is NULL or points to `cap` writable
/// `double`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_shares(
    hrw: *const qk_rendezvous,
    shares_out: *mut f64,
    cap: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::shares(hrw, shares_out, cap) })
}

/// Like `qk_rendezvous_get_node()` for a key already hashed with
/// `qk_hash_key()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_get_node_by_hash(
    hrw: *const qk_rendezvous,
    hash: u64,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::locate_with(hrw, index_out, |r| r.locate_hash(hash))
    })
}

/// Writes a snapshot of the placement (docs/snapshots.md: its nodes and weights in node order,
/// versioned and checksummed) to `buf[0..cap]` and its length to
/// `*len_out`.
///
/// Two-call pattern: call with `cap` 0 (`buf` may then be NULL) to get
/// `QK_ERR_BUFFER_TOO_SMALL` with the size needed in `*len_out`, allocate,
/// call again. `*len_out` is written on success and on
/// `QK_ERR_BUFFER_TOO_SMALL` only.
///
/// Errors: `QK_ERR_NULL_ARG` (`hrw`, `len_out`, or `buf` with `cap` > 0),
/// `QK_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_rendezvous *`; not with one taking `qk_rendezvous *`.
///
/// # Safety
/// `hrw` is NULL or live; `buf` is NULL or points to `cap` writable
/// bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_snapshot(
    hrw: *const qk_rendezvous,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::snapshot(hrw, buf, cap, len_out)
    })
}

/// Restores a placement from `len` bytes of a snapshot made by
/// `qk_rendezvous_snapshot()` (in any process, by any face of quorumkit) and
/// stores it in `*hrw_out`: the same nodes and weights in the same order, the
/// same placements. The scores are derived from them.
///
/// Ownership: the caller owns the result (`qk_rendezvous_free()`); `data` is
/// only read.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_CORRUPT` (bad magic, truncated,
/// trailing bytes, checksum mismatch, unknown kind, invalid fields: empty, duplicate or NUL-holding names, weights that are not positive finite numbers),
/// `QK_ERR_UNSUPPORTED_VERSION`, `QK_ERR_INVALID_ARG` (a valid snapshot
/// of another kind, e.g. a `qk_ring`).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `hrw_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_restore(
    data: *const u8,
    len: usize,
    hrw_out: *mut *mut qk_rendezvous,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(
            data,
            len,
            super::snapshot::QK_DEFAULT_MAX_POINTS,
            hrw_out,
            qk_rendezvous,
        )
    })
}

/// As `qk_rendezvous_restore()`, with a decode budget: a snapshot that would need more
/// than `max_points` points (a crafted one can declare millions in a few
/// bytes) is refused with `QK_ERR_LIMIT_EXCEEDED` before any of that work
/// is done. `qk_rendezvous_restore()` uses `QK_DEFAULT_MAX_POINTS` (2^22); at most 2^26
/// points are ever built.
///
/// Errors: as `qk_rendezvous_restore()`, and `QK_ERR_LIMIT_EXCEEDED`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// As `qk_rendezvous_restore()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_rendezvous_restore_limited(
    data: *const u8,
    len: usize,
    max_points: u64,
    hrw_out: *mut *mut qk_rendezvous,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(data, len, max_points, hrw_out, qk_rendezvous)
    })
}
