//! `qk_ring`: the virtual-node consistent-hash ring ([`HashRing`]).

use std::ffi::c_char;

use super::args::{Out, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{boundary, catch_or};
use super::placement::{self as common, CHandle, Handle, handle_mut};
use super::status::qk_status;
use crate::hash::key_hash;
use crate::ring::{DEFAULT_VNODES, HashRing};

/// A consistent-hash ring with weighted virtual nodes on xxh3-64 (see the
/// docs/rings.md). Nodes have dense indices `0..count` in insertion
/// order; removing a node shifts the later indices down by one.
///
/// Thread safety: functions taking a `const qk_ring *` only read and may
/// run concurrently from any number of threads. Functions taking a
/// `qk_ring *` (add, remove, set_weight, free) need exclusive access: no
/// other call may use the same ring at the same time.
///
/// Create with `qk_ring_new()`, destroy with `qk_ring_free()`.
#[allow(non_camel_case_types)]
pub struct qk_ring(Handle<HashRing>);

impl CHandle for qk_ring {
    type P = HashRing;
    const ARG: &'static str = "ring";
    fn handle(&self) -> &Handle<HashRing> {
        &self.0
    }
    fn handle_mut(&mut self) -> &mut Handle<HashRing> {
        &mut self.0
    }
}

/// Creates an empty ring with `vnodes` virtual nodes per unit of weight
/// (0 means the default, 160) and stores it in `*ring_out`.
///
/// Ownership: the caller owns the new ring and must release it with
/// `qk_ring_free()`.
///
/// Errors: `QK_ERR_NULL_ARG` if `ring_out` is NULL.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `ring_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_new(
    vnodes: u32,
    ring_out: *mut *mut qk_ring,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(ring_out, "ring_out") }?;
        let vnodes = if vnodes == 0 { DEFAULT_VNODES } else { vnodes };
        hand_out(out, qk_ring(Handle::new(HashRing::with_vnodes(vnodes)?)));
        Ok(())
    })
}

/// Frees a ring made by `qk_ring_new()`. NULL is a no-op. Node names
/// borrowed from the ring become invalid.
///
/// Thread safety: needs the `qk_ring` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `ring` is NULL or a live ring, not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_free(ring: *mut qk_ring) {
    catch_or((), || unsafe { free_boxed(ring) })
}

/// Adds node `name` (`name_len` bytes of UTF-8, no NUL byte) with `weight`
/// (>= 1; the node gets `vnodes * weight` points). Only the keys that now
/// belong to the new node move. The ring copies the name.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_ALREADY_EXISTS`,
/// `QK_ERR_INVALID_ARG` (empty name, NUL in the name, weight 0, too many points).
///
/// Thread safety: needs the `qk_ring` to itself: no other call on it may overlap.
///
/// # Safety
/// `ring` is NULL or a live ring used by no other thread during the call;
/// `name` is NULL or points to `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_add_node(
    ring: *mut qk_ring,
    name: *const c_char,
    name_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, name) = unsafe { (handle_mut(ring)?, arg_str(name, name_len, "name")?) };
        h.mutate(|r| r.add_node(name, weight))
    })
}

/// Removes the named node. Only the keys it owned move; later node indices
/// shift down by one.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: needs the `qk_ring` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_ring_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_remove_node(
    ring: *mut qk_ring,
    name: *const c_char,
    name_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::remove(ring, name, name_len) })
}

/// Sets the named node's weight (>= 1). Only keys moving to or from this
/// node move.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`,
/// `QK_ERR_INVALID_ARG` (weight 0 or too many points).
///
/// Thread safety: needs the `qk_ring` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_ring_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_set_weight(
    ring: *mut qk_ring,
    name: *const c_char,
    name_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::set_weight(ring, name, name_len, weight)
    })
}

/// Stores the named node's weight in `*weight_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `name` is NULL or points to `name_len`
/// readable bytes; `weight_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_weight(
    ring: *const qk_ring,
    name: *const c_char,
    name_len: usize,
    weight_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::weight(ring, name, name_len, weight_out)
    })
}

/// Stores the number of nodes in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_node_count(
    ring: *const qk_ring,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::node_count(ring, count_out) })
}

/// Stores the total number of virtual-node points in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// As `qk_ring_node_count()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_point_count(
    ring: *const qk_ring,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::point_count(ring, count_out) })
}

/// Stores the name of node `index` in `*name_out` (NUL-terminated) and its
/// length in bytes, without the NUL, in `*name_len_out`.
///
/// Ownership: the name is borrowed from the ring: do not free it. It stays
/// valid until the ring is next mutated (add, remove, set_weight) or freed.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_node_name(
    ring: *const qk_ring,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_name(ring, index, name_out, name_len_out)
    })
}

/// Stores the index of the named node in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `name` is NULL or points to `name_len`
/// readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_node_index(
    ring: *const qk_ring,
    name: *const c_char,
    name_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_index(ring, name, name_len, index_out)
    })
}

/// Stores the index of the node owning `key` (`key_len` bytes; `key` may
/// be NULL when `key_len` is 0) in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `key` is NULL or points to `key_len`
/// readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_get_node(
    ring: *const qk_ring,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node(ring, key, key_len, index_out)
    })
}

/// Stores the indices of the first `n` distinct nodes for `key`, in
/// preference order, in the caller's array `indices_out[0..n]` (the first
/// is what `qk_ring_get_node()` returns). `indices_out` may be NULL when
/// `n` is 0.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (`n` >
/// node count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `key` is NULL or points to `key_len`
/// readable bytes; `indices_out` is NULL or points to `n` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_get_nodes(
    ring: *const qk_ring,
    key: *const u8,
    key_len: usize,
    n: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_nodes(ring, key, key_len, n, indices_out)
    })
}

/// Locates `count` keys at once: `indices_out[i]` becomes the index of the
/// node owning `keys[i]` (`key_lens[i]` bytes; `keys[i]` may be NULL when
/// its length is 0). The arrays may be NULL when `count` is 0.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY` (also when `count` is 0).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `keys` and `key_lens` are NULL or point
/// to `count` readable elements, each key to its length in readable bytes;
/// `indices_out` is NULL or points to `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_get_node_batch(
    ring: *const qk_ring,
    keys: *const *const u8,
    key_lens: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch(ring, keys, key_lens, count, indices_out)
    })
}

/// As `qk_ring_get_node_batch()`, with the keys laid end to end in one
/// buffer: key `i` is bytes `offsets[i]` to `offsets[i + 1]` of `keys`
/// (`keys_len` bytes), so `offsets` holds `count + 1` non-decreasing
/// entries, the last at most `keys_len` (Go and JavaScript pass one buffer
/// without a copy per key). The arrays may be NULL when `count` is 0.
/// Nothing is written unless every offset is valid.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (an
/// offset that decreases or passes `keys_len`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or live; `keys` is NULL or points to `keys_len` readable
/// bytes; `offsets` to `count + 1` readable `size_t`; `indices_out` to
/// `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_get_node_batch_flat(
    ring: *const qk_ring,
    keys: *const u8,
    keys_len: usize,
    offsets: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch_flat(ring, keys, keys_len, offsets, count, indices_out)
    })
}

/// Writes each node's exact fraction of the hash space to
/// `shares_out[index]` for every node index; the fractions sum to 1 (0 for
/// all on an empty ring, which writes nothing). `cap` is the array's length.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL` (`cap` < node count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `shares_out` is NULL or points to `cap`
/// writable `double`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_shares(
    ring: *const qk_ring,
    shares_out: *mut f64,
    cap: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::shares(ring, shares_out, cap) })
}

/// Stores the placement hash of `key` (xxh3-64 with quorumkit's fixed
/// seed: the key's position on a `qk_ring`) in `*hash_out`, for
/// `qk_ring_get_node_by_hash()`. Thread-safe.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// # Safety
/// `key` is NULL or points to `key_len` readable bytes; `hash_out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_hash_key(
    key: *const u8,
    key_len: usize,
    hash_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::hash_key(key, key_len, hash_out, key_hash)
    })
}

/// Like `qk_ring_get_node()` for a key already hashed with `qk_hash_key()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_get_node_by_hash(
    ring: *const qk_ring,
    hash: u64,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::locate_with(ring, index_out, |r| r.locate_hash(hash))
    })
}

/// Writes a snapshot of the ring (docs/snapshots.md: its
/// membership in node order, versioned and checksummed) to `buf[0..cap]`
/// and its length to `*len_out`.
///
/// Two-call pattern: call with `cap` 0 (`buf` may then be NULL) to get
/// `QK_ERR_BUFFER_TOO_SMALL` with the size needed in `*len_out`, allocate,
/// call again. `*len_out` is written on success and on
/// `QK_ERR_BUFFER_TOO_SMALL` only.
///
/// Errors: `QK_ERR_NULL_ARG` (`ring`, `len_out`, or `buf` with `cap` > 0),
/// `QK_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ring *`; not with one taking `qk_ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `buf` is NULL or points to `cap`
/// writable bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_snapshot(
    ring: *const qk_ring,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::snapshot(ring, buf, cap, len_out)
    })
}

/// Restores a ring from `len` bytes of a snapshot made by
/// `qk_ring_snapshot()` (in any process, by any face of quorumkit) and
/// stores it in `*ring_out`: the same nodes in the same order, the same
/// placements. The points are rebuilt from the membership.
///
/// Ownership: the caller owns the new ring (`qk_ring_free()`); `data` is
/// only read.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_CORRUPT` (bad magic, truncated,
/// trailing bytes, checksum mismatch, unknown kind, invalid fields),
/// `QK_ERR_UNSUPPORTED_VERSION`, `QK_ERR_INVALID_ARG` (a valid snapshot
/// of another kind, e.g. a `qk_ketama`).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `ring_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_restore(
    data: *const u8,
    len: usize,
    ring_out: *mut *mut qk_ring,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(
            data,
            len,
            super::snapshot::QK_DEFAULT_MAX_POINTS,
            ring_out,
            qk_ring,
        )
    })
}

/// As `qk_ring_restore()`, with a decode budget: a snapshot that would need more
/// than `max_points` points (a crafted one can declare millions in a few
/// bytes) is refused with `QK_ERR_LIMIT_EXCEEDED` before any of that work
/// is done. `qk_ring_restore()` uses `QK_DEFAULT_MAX_POINTS` (2^22); at most 2^26
/// points are ever built.
///
/// Errors: as `qk_ring_restore()`, and `QK_ERR_LIMIT_EXCEEDED`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// As `qk_ring_restore()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ring_restore_limited(
    data: *const u8,
    len: usize,
    max_points: u64,
    ring_out: *mut *mut qk_ring,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(data, len, max_points, ring_out, qk_ring)
    })
}
