//! `qk_md5ring`: uhashring's default placement, 128-bit MD5 points
//! ([`Md5Ring`]). 128-bit positions cross the ABI as 16 bytes, big-endian
//! (the MD5 digest as is).

use std::ffi::c_char;

use super::args::{Out, arg_slice, arg_slice_mut, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{Failure, boundary, catch_or};
use super::placement::{self as common, CHandle, Handle, handle, handle_mut};
use super::status::qk_status;
use crate::ring::{MD5_DEFAULT_VNODES, Md5Ring};

/// uhashring 2.5's default ring (`HashRing(nodes)` without `hash_fn`): node
/// `name` has `vnodes * weight` points at md5("{name}-{i}") read as a
/// big-endian 128-bit integer, and a key goes to the first point strictly
/// greater than md5(key), wrapping around. Nodes have dense indices
/// `0..count` in insertion order; removing one shifts the later indices
/// down by one. A node may have weight 0: it is a member with no points.
///
/// Thread safety: as `qk_ring`: functions taking a `const qk_md5ring *`
/// may run concurrently; those taking a `qk_md5ring *` need exclusive access.
///
/// Create with `qk_md5ring_new()`, destroy with `qk_md5ring_free()`.
#[allow(non_camel_case_types)]
pub struct qk_md5ring(Handle<Md5Ring>);

impl CHandle for qk_md5ring {
    type P = Md5Ring;
    const ARG: &'static str = "ring";
    fn handle(&self) -> &Handle<Md5Ring> {
        &self.0
    }
    fn handle_mut(&mut self) -> &mut Handle<Md5Ring> {
        &mut self.0
    }
}

/// Creates an empty ring whose nodes get `vnodes` points per unit of
/// weight unless they say otherwise (0 means uhashring's default, 160),
/// and stores it in `*ring_out`.
///
/// Ownership: the caller owns the ring and releases it with `qk_md5ring_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `ring_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_new(
    vnodes: u32,
    ring_out: *mut *mut qk_md5ring,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(ring_out, "ring_out") }?;
        let vnodes = if vnodes == 0 {
            MD5_DEFAULT_VNODES
        } else {
            vnodes
        };
        hand_out(out, qk_md5ring(Handle::new(Md5Ring::with_vnodes(vnodes))));
        Ok(())
    })
}

/// Frees a ring made by `qk_md5ring_new()`. NULL is a no-op. Node names
/// borrowed from the ring become invalid.
///
/// Thread safety: needs the `qk_md5ring` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `ring` is NULL or a live ring, not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_free(ring: *mut qk_md5ring) {
    catch_or((), || unsafe { free_boxed(ring) })
}

/// Adds node `name` (`name_len` bytes of UTF-8, no NUL byte) with `vnodes`
/// points per unit of weight (0 means the ring's) and `weight` (0 allowed:
/// no points). Only the keys that now belong to it move. The name is copied.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_ALREADY_EXISTS`,
/// `QK_ERR_INVALID_ARG` (empty name, NUL in the name, too many points).
///
/// Thread safety: needs the `qk_md5ring` to itself: no other call on it may overlap.
///
/// # Safety
/// `ring` is NULL or a live ring used by no other thread during the call;
/// `name` is NULL or points to `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_add_node(
    ring: *mut qk_md5ring,
    name: *const c_char,
    name_len: usize,
    vnodes: u32,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, name) = unsafe { (handle_mut(ring)?, arg_str(name, name_len, "name")?) };
        h.mutate(|r| {
            let v = if vnodes == 0 { r.vnodes() } else { vnodes };
            r.add_node_with_vnodes(name, v, weight)
        })
    })
}

/// Removes the named node. Only the keys it owned move.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: needs the `qk_md5ring` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_md5ring_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_remove_node(
    ring: *mut qk_md5ring,
    name: *const c_char,
    name_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::remove(ring, name, name_len) })
}

/// Sets the named node's weight (0 allowed), keeping its vnodes. Only keys
/// moving to or from this node move.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`,
/// `QK_ERR_INVALID_ARG` (too many points).
///
/// Thread safety: needs the `qk_md5ring` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_md5ring_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_set_weight(
    ring: *mut qk_md5ring,
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
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `name` is NULL or points to `name_len`
/// readable bytes; `weight_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_weight(
    ring: *const qk_md5ring,
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
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_node_count(
    ring: *const qk_md5ring,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::node_count(ring, count_out) })
}

/// Stores the number of points in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// As `qk_md5ring_node_count()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_point_count(
    ring: *const qk_md5ring,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::point_count(ring, count_out) })
}

/// Stores the name of node `index` (NUL-terminated, borrowed from the ring
/// until it is next mutated or freed) in `*name_out` and its length in
/// `*name_len_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_node_name(
    ring: *const qk_md5ring,
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
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `name` is NULL or points to `name_len`
/// readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_node_index(
    ring: *const qk_md5ring,
    name: *const c_char,
    name_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_index(ring, name, name_len, index_out)
    })
}

/// Stores the index of the node owning `key` (`key_len` bytes; NULL allowed
/// when 0) in `*index_out`. uhashring hashes `str(key)` as UTF-8: pass
/// those bytes for the same answer.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY` (no node holds a point).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `key` is NULL or points to `key_len`
/// readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_get_node(
    ring: *const qk_md5ring,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node(ring, key, key_len, index_out)
    })
}

/// Stores the first `n` distinct nodes for `key`, in preference order, in
/// `indices_out[0..n]` (NULL allowed when `n` is 0).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (`n`
/// more than the nodes, or than the nodes that hold points).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `key` is NULL or points to `key_len`
/// readable bytes; `indices_out` is NULL or points to `n` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_get_nodes(
    ring: *const qk_md5ring,
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

/// Locates `count` keys: `indices_out[i]` becomes the owner of `keys[i]`
/// (`key_lens[i]` bytes). The arrays may be NULL when `count` is 0.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY` (also when `count` is 0).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `keys` and `key_lens` are NULL or point
/// to `count` readable elements, each key to its length in readable bytes;
/// `indices_out` is NULL or points to `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_get_node_batch(
    ring: *const qk_md5ring,
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

/// As `qk_md5ring_get_node_batch()`, with the keys laid end to end in one
/// buffer: key `i` is bytes `offsets[i]` to `offsets[i + 1]` of `keys`
/// (`keys_len` bytes), so `offsets` holds `count + 1` non-decreasing
/// entries, the last at most `keys_len` (Go and JavaScript pass one buffer
/// without a copy per key). The arrays may be NULL when `count` is 0.
/// Nothing is written unless every offset is valid.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (an
/// offset that decreases or passes `keys_len`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or live; `keys` is NULL or points to `keys_len` readable
/// bytes; `offsets` to `count + 1` readable `size_t`; `indices_out` to
/// `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_get_node_batch_flat(
    ring: *const qk_md5ring,
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

/// Writes each node's exact fraction of the 2^128 circle to
/// `shares_out[index]`; `cap` is the array's length.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL` (`cap` < node count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `shares_out` is NULL or points to `cap`
/// writable `double`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_shares(
    ring: *const qk_md5ring,
    shares_out: *mut f64,
    cap: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::shares(ring, shares_out, cap) })
}

/// Writes md5(key), the key's 128-bit position, big-endian, to
/// `hash_out[0..16]`. Thread-safe.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// # Safety
/// `key` is NULL or points to `key_len` readable bytes; `hash_out` is NULL
/// or points to 16 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_hash(
    key: *const u8,
    key_len: usize,
    hash_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (key, out) = unsafe {
            (
                super::args::arg_key(key, key_len, "key")?,
                arg_slice_mut(hash_out, 16, "hash_out")?,
            )
        };
        out.copy_from_slice(&Md5Ring::key_hash(key).to_be_bytes());
        Ok(())
    })
}

/// Like `qk_md5ring_get_node()` for a key hashed with `qk_md5ring_hash()`
/// (`hash[0..16]`, big-endian).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `hash` is NULL or points to 16 readable
/// bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_get_node_by_hash(
    ring: *const qk_md5ring,
    hash: *const u8,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let h = unsafe { arg_slice(hash, 16, "hash") }?;
        let h = u128::from_be_bytes(h.try_into().expect("16 bytes"));
        unsafe { common::locate_with(ring, index_out, |r| r.locate_hash(h)) }
    })
}

/// Reads point `index` (`0..point_count`, ascending): its position,
/// big-endian, to `point_out[0..16]` and its node's index to
/// `*node_index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= point_count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_md5ring *`; not with one taking `qk_md5ring *`.
///
/// # Safety
/// `ring` is NULL or a live ring; `point_out` is NULL or points to 16
/// writable bytes; `node_index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_md5ring_point(
    ring: *const qk_md5ring,
    index: usize,
    point_out: *mut u8,
    node_index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, point_out, node_out) = unsafe {
            (
                handle(ring)?,
                arg_slice_mut(point_out, 16, "point_out")?,
                Out::new(node_index_out, "node_index_out")?,
            )
        };
        let r = h.get();
        let (p, node) = r.point(index).ok_or_else(|| {
            Failure::not_found(format!(
                "no point at index {index}: the ring has {}",
                r.point_count()
            ))
        })?;
        point_out.copy_from_slice(&p.to_be_bytes());
        node_out.set(node);
        Ok(())
    })
}
