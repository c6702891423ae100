//! `qk_maglev`: Maglev lookup tables ([`Maglev`]).

use std::ffi::c_char;

use super::args::{Out, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{boundary, catch_or};
use super::placement::{self as common, CHandle, Handle, handle, handle_mut};
use super::status::qk_status;
use crate::ring::{DEFAULT_TABLE_SIZE, Maglev};

/// A Maglev lookup table (Eisenbud et al., NSDI 2016) of prime size over
/// named backends with integer weights: a lookup is one table read; a
/// membership change rebuilds the table (see the docs/rings.md).
/// `qk_maglev_diff()` of a copy (`qk_maglev_clone()`) before and after a
/// change gives the fraction of keys that moved. Backends have dense
/// indices `0..count` in insertion order; removing one shifts the later
/// indices down by one.
///
/// Thread safety: functions taking a `const qk_maglev *` only read and may
/// run concurrently; functions taking a `qk_maglev *` (add, remove,
/// set_weight, free) need exclusive access.
///
/// Create with `qk_maglev_new()`, destroy with `qk_maglev_free()`.
#[allow(non_camel_case_types)]
pub struct qk_maglev(Handle<Maglev>);

impl CHandle for qk_maglev {
    type P = Maglev;
    const ARG: &'static str = "maglev";
    fn handle(&self) -> &Handle<Maglev> {
        &self.0
    }
    fn handle_mut(&mut self) -> &mut Handle<Maglev> {
        &mut self.0
    }
}

/// The default table size, 65537.
pub const QK_MAGLEV_DEFAULT_TABLE_SIZE: u32 = 65_537;

/// Creates an empty table of `table_size` entries (a prime, at most 2^26;
/// 0 means `QK_MAGLEV_DEFAULT_TABLE_SIZE`) and stores it in `*maglev_out`.
///
/// Ownership: the caller owns it and must release it with `qk_maglev_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_ARG` (not a prime, too large).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `maglev_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_new(
    table_size: u32,
    maglev_out: *mut *mut qk_maglev,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(maglev_out, "maglev_out") }?;
        let size = if table_size == 0 {
            DEFAULT_TABLE_SIZE
        } else {
            table_size
        };
        hand_out(out, qk_maglev(Handle::new(Maglev::with_table_size(size)?)));
        Ok(())
    })
}

/// Stores a copy of `maglev` (same backends, same table) in `*copy_out`.
///
/// Ownership: the caller owns the copy and must release it with
/// `qk_maglev_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `copy_out` is NULL or valid for writing a
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_clone(
    maglev: *const qk_maglev,
    copy_out: *mut *mut qk_maglev,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, out) = unsafe { (handle(maglev)?, Out::new(copy_out, "copy_out")?) };
        hand_out(out, qk_maglev(Handle::new(h.get().clone())));
        Ok(())
    })
}

/// Frees a table made by `qk_maglev_new()` or `qk_maglev_clone()`. NULL is
/// a no-op. Names borrowed from it become invalid.
///
/// Thread safety: needs the `qk_maglev` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `maglev` is NULL or live, not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_free(maglev: *mut qk_maglev) {
    catch_or((), || unsafe { free_boxed(maglev) })
}

/// Adds backend `name` (`name_len` bytes of UTF-8, no NUL byte) with
/// `weight` (>= 1: it takes `weight` turns per round of the table fill)
/// and rebuilds the table.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_ALREADY_EXISTS`,
/// `QK_ERR_INVALID_ARG` (empty name, NUL in the name, weight 0, as many
/// backends as table entries, weights summing to more than the table size).
///
/// Thread safety: needs the `qk_maglev` to itself: no other call on it may overlap.
///
/// # Safety
/// `maglev` is NULL or live and used by no other thread during the call;
/// `name` is NULL or points to `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_add_node(
    maglev: *mut qk_maglev,
    name: *const c_char,
    name_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, name) = unsafe { (handle_mut(maglev)?, arg_str(name, name_len, "name")?) };
        h.mutate(|m| m.add_node(name, weight).map(drop))
    })
}

/// Removes the named backend and rebuilds the table.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: needs the `qk_maglev` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_maglev_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_remove_node(
    maglev: *mut qk_maglev,
    name: *const c_char,
    name_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::remove(maglev, name, name_len) })
}

/// Sets the named backend's weight (>= 1) and rebuilds the table.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`,
/// `QK_ERR_INVALID_ARG` (weight 0, weights summing to more than the table).
///
/// Thread safety: needs the `qk_maglev` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_maglev_add_node()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_set_weight(
    maglev: *mut qk_maglev,
    name: *const c_char,
    name_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::set_weight(maglev, name, name_len, weight)
    })
}

/// Stores the named backend's weight in `*weight_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `name` is NULL or points to `name_len`
/// readable bytes; `weight_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_weight(
    maglev: *const qk_maglev,
    name: *const c_char,
    name_len: usize,
    weight_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::weight(maglev, name, name_len, weight_out)
    })
}

/// Stores the number of backends in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_node_count(
    maglev: *const qk_maglev,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::node_count(maglev, count_out) })
}

/// Stores the table size in `*size_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `size_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_table_size(
    maglev: *const qk_maglev,
    size_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, out) = unsafe { (handle(maglev)?, Out::new(size_out, "size_out")?) };
        out.set(h.get().table_size());
        Ok(())
    })
}

/// Stores the name of backend `index` in `*name_out` (NUL-terminated) and
/// its length in bytes, without the NUL, in `*name_len_out`.
///
/// Ownership: borrowed from `maglev`: do not free it. Valid until `maglev`
/// is next mutated or freed.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_node_name(
    maglev: *const qk_maglev,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_name(maglev, index, name_out, name_len_out)
    })
}

/// Stores the index of the named backend in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `name` is NULL or points to `name_len`
/// readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_node_index(
    maglev: *const qk_maglev,
    name: *const c_char,
    name_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_index(maglev, name, name_len, index_out)
    })
}

/// Stores the index of the backend owning `key` (`key_len` bytes; `key`
/// may be NULL when `key_len` is 0) in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `key` is NULL or points to `key_len` readable
/// bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_get_node(
    maglev: *const qk_maglev,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node(maglev, key, key_len, index_out)
    })
}

/// Stores the first `n` distinct backends met walking the table from the
/// key's entry (wrapping) in `indices_out[0..n]`; the first is the owner.
/// `indices_out` may be NULL when `n` is 0.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (`n` >
/// backend count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `key` is NULL or points to `key_len` readable
/// bytes; `indices_out` is NULL or points to `n` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_get_nodes(
    maglev: *const qk_maglev,
    key: *const u8,
    key_len: usize,
    n: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_nodes(maglev, key, key_len, n, indices_out)
    })
}

/// Locates `count` keys at once: `indices_out[i]` becomes the index of the
/// backend owning `keys[i]` (`key_lens[i]` bytes). The arrays may be NULL
/// when `count` is 0. Nothing is written on failure.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY` (also when `count` is 0).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `keys` and `key_lens` are NULL or point to
/// `count` readable elements, each key to its length in readable bytes;
/// `indices_out` is NULL or points to `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_get_node_batch(
    maglev: *const qk_maglev,
    keys: *const *const u8,
    key_lens: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch(maglev, keys, key_lens, count, indices_out)
    })
}

/// As `qk_maglev_get_node_batch()`, with the keys laid end to end in one
/// buffer: key `i` is bytes `offsets[i]` to `offsets[i + 1]` of `keys`
/// (`keys_len` bytes), so `offsets` holds `count + 1` non-decreasing
/// entries, the last at most `keys_len` (Go and JavaScript pass one buffer
/// without a copy per key). The arrays may be NULL when `count` is 0.
/// Nothing is written unless every offset is valid.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (an
/// offset that decreases or passes `keys_len`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `keys` is NULL or points to `keys_len` readable
/// bytes; `offsets` to `count + 1` readable `size_t`; `indices_out` to
/// `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_get_node_batch_flat(
    maglev: *const qk_maglev,
    keys: *const u8,
    keys_len: usize,
    offsets: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch_flat(maglev, keys, keys_len, offsets, count, indices_out)
    })
}

/// Writes each backend's exact fraction of the table entries to
/// `shares_out[index]`. `cap` is the array's length.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL` (`cap` < count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `shares_out` is NULL or points to `cap`
/// writable `double`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_shares(
    maglev: *const qk_maglev,
    shares_out: *mut f64,
    cap: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::shares(maglev, shares_out, cap) })
}

/// Like `qk_maglev_get_node()` for a key already hashed with
/// `qk_hash_key()`: the owner of entry `hash mod table_size`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_get_node_by_hash(
    maglev: *const qk_maglev,
    hash: u64,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::locate_with(maglev, index_out, |m| m.locate_hash(hash))
    })
}

/// Stores in `*fraction_out` the fraction of table entries whose backend
/// (by name) differs between `a` and `b`: the share of keys that move from
/// one to the other (1 when exactly one of them is empty).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_ARG` (different table sizes).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `a` and `b` are NULL or live (they may be the same table);
/// `fraction_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_diff(
    a: *const qk_maglev,
    b: *const qk_maglev,
    fraction_out: *mut f64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (a, b, out) = unsafe {
            (
                super::args::arg_ref(a, "a")?,
                super::args::arg_ref(b, "b")?,
                Out::new(fraction_out, "fraction_out")?,
            )
        };
        out.set(a.0.get().diff(b.0.get())?);
        Ok(())
    })
}

/// Writes a snapshot of the table (docs/snapshots.md: its backends and weights in backend order and the table size,
/// versioned and checksummed) to `buf[0..cap]` and its length to
/// `*len_out`.
///
/// Two-call pattern: call with `cap` 0 (`buf` may then be NULL) to get
/// `QK_ERR_BUFFER_TOO_SMALL` with the size needed in `*len_out`, allocate,
/// call again. `*len_out` is written on success and on
/// `QK_ERR_BUFFER_TOO_SMALL` only.
///
/// Errors: `QK_ERR_NULL_ARG` (`maglev`, `len_out`, or `buf` with `cap` > 0),
/// `QK_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_maglev *`; not with one taking `qk_maglev *`.
///
/// # Safety
/// `maglev` is NULL or live; `buf` is NULL or points to `cap` writable
/// bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_snapshot(
    maglev: *const qk_maglev,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::snapshot(maglev, buf, cap, len_out)
    })
}

/// Restores a table from `len` bytes of a snapshot made by
/// `qk_maglev_snapshot()` (in any process, by any face of quorumkit) and
/// stores it in `*maglev_out`: the same backends and weights, table size in the same order, the
/// same placements. The table is rebuilt from them.
///
/// Ownership: the caller owns the result (`qk_maglev_free()`); `data` is
/// only read.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_CORRUPT` (bad magic, truncated,
/// trailing bytes, checksum mismatch, unknown kind, invalid fields: a table size that is not a prime up to 2^26, empty, duplicate or NUL-holding names, weights 0 or summing to more than the table size),
/// `QK_ERR_UNSUPPORTED_VERSION`, `QK_ERR_INVALID_ARG` (a valid snapshot
/// of another kind, e.g. a `qk_ring`).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `maglev_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_restore(
    data: *const u8,
    len: usize,
    maglev_out: *mut *mut qk_maglev,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(
            data,
            len,
            super::snapshot::QK_DEFAULT_MAX_POINTS,
            maglev_out,
            qk_maglev,
        )
    })
}

/// As `qk_maglev_restore()`, with a decode budget: a snapshot that would need more
/// than `max_points` points (a crafted one can declare millions in a few
/// bytes) is refused with `QK_ERR_LIMIT_EXCEEDED` before any of that work
/// is done. `qk_maglev_restore()` uses `QK_DEFAULT_MAX_POINTS` (2^22); at most 2^26
/// points are ever built.
///
/// Errors: as `qk_maglev_restore()`, and `QK_ERR_LIMIT_EXCEEDED`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// As `qk_maglev_restore()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_maglev_restore_limited(
    data: *const u8,
    len: usize,
    max_points: u64,
    maglev_out: *mut *mut qk_maglev,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(data, len, max_points, maglev_out, qk_maglev)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_size_matches_the_core() {
        assert_eq!(
            super::QK_MAGLEV_DEFAULT_TABLE_SIZE,
            super::DEFAULT_TABLE_SIZE
        );
    }
}
