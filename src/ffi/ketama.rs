//! `qk_ketama`: ketama (MD5) placement, bit-exact with libmemcached or
//! uhashring ([`KetamaRing`]).

use std::ffi::c_char;

use super::args::{Out, arg_slice, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{Failure, boundary, catch_or};
use super::placement::{self as common, CHandle, Handle, handle, handle_mut};
use super::status::qk_status;
use crate::ring::{KetamaCompat, KetamaRing, KetamaServer};

/// Which ketama implementation a `qk_ketama` is bit-exact with: one of the
/// `QK_KETAMA_*` constants.
#[allow(non_camel_case_types)]
pub type qk_ketama_compat = u32;

/// libmemcached 1.1.4 with `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`.
pub const QK_KETAMA_LIBMEMCACHED: qk_ketama_compat = 0;
/// uhashring 2.5 `HashRing(nodes, hash_fn="ketama")`.
pub const QK_KETAMA_UHASHRING: qk_ketama_compat = 1;

fn compat_of(c: qk_ketama_compat) -> Result<KetamaCompat, Failure> {
    match c {
        QK_KETAMA_LIBMEMCACHED => Ok(KetamaCompat::Libmemcached),
        QK_KETAMA_UHASHRING => Ok(KetamaCompat::Uhashring),
        _ => Err(Failure::invalid(format!(
            "unknown ketama compat {c}: expected QK_KETAMA_LIBMEMCACHED or QK_KETAMA_UHASHRING"
        ))),
    }
}

/// A ketama continuum over memcached servers. Servers have dense indices
/// `0..count` in the order given (the order breaks ties between equal
/// points); removing one shifts the later indices down by one. Every
/// membership change rebuilds the continuum, as libmemcached does.
///
/// Thread safety: as `qk_ring`: functions taking a `const qk_ketama *` may
/// run concurrently; those taking a `qk_ketama *` need exclusive access.
///
/// Create with `qk_ketama_new()`, destroy with `qk_ketama_free()`.
#[allow(non_camel_case_types)]
pub struct qk_ketama(Handle<KetamaRing>);

impl CHandle for qk_ketama {
    type P = KetamaRing;
    const ARG: &'static str = "ketama";
    fn handle(&self) -> &Handle<KetamaRing> {
        &self.0
    }
    fn handle_mut(&mut self) -> &mut Handle<KetamaRing> {
        &mut self.0
    }
}

/// Creates a continuum over `count` servers and stores it in `*ketama_out`.
/// Server `i` is `specs[i]` (`spec_lens[i]` bytes of UTF-8, `"host"`,
/// `"host:port"` or `"[v6addr]:port"`; the port defaults to 11211 and the
/// spec as given is the server's name) with weight `weights[i]` (>= 1), or
/// 1 when `weights` is NULL. `count` may be 0 (lookups then fail with
/// `QK_ERR_EMPTY` until a server is added); the arrays may then be NULL.
///
/// Ownership: the caller owns the new continuum and must release it with
/// `qk_ketama_free()`. The specs are copied.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (unknown `compat`, bad spec, weight 0), `QK_ERR_ALREADY_EXISTS`
/// (a repeated spec).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `specs` and `spec_lens` are NULL or point to `count` readable elements,
/// each spec to its length in readable bytes; `weights` is NULL or points
/// to `count` readable `uint32_t`; `ketama_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_new(
    compat: qk_ketama_compat,
    specs: *const *const c_char,
    spec_lens: *const usize,
    weights: *const u32,
    count: usize,
    ketama_out: *mut *mut qk_ketama,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (specs, lens, out) = unsafe {
            (
                arg_slice(specs, count, "specs")?,
                arg_slice(spec_lens, count, "spec_lens")?,
                Out::new(ketama_out, "ketama_out")?,
            )
        };
        let weights = match weights.is_null() {
            true => None,
            false => Some(unsafe { arg_slice(weights, count, "weights") }?),
        };
        let compat = compat_of(compat)?;
        let mut servers = Vec::with_capacity(count);
        for (i, (&spec, &len)) in specs.iter().zip(lens).enumerate() {
            let spec = unsafe { arg_str(spec, len, &format!("specs[{i}]")) }?;
            let weight = weights.map_or(1, |w| w[i]);
            servers.push(KetamaServer::parse(spec, weight)?);
        }
        hand_out(
            out,
            qk_ketama(Handle::new(KetamaRing::new(servers, compat)?)),
        );
        Ok(())
    })
}

/// Frees a continuum made by `qk_ketama_new()`. NULL is a no-op. Server
/// names borrowed from it become invalid.
///
/// Thread safety: needs the `qk_ketama` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `ketama` is NULL or a live continuum, not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_free(ketama: *mut qk_ketama) {
    catch_or((), || unsafe { free_boxed(ketama) })
}

/// Adds the server `spec` (as in `qk_ketama_new()`) with `weight` (>= 1)
/// at the end of the order, and rebuilds the continuum.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`
/// (bad spec, weight 0), `QK_ERR_ALREADY_EXISTS`.
///
/// Thread safety: needs the `qk_ketama` to itself: no other call on it may overlap.
///
/// # Safety
/// `ketama` is NULL or a live continuum used by no other thread during the
/// call; `spec` is NULL or points to `spec_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_add_server(
    ketama: *mut qk_ketama,
    spec: *const c_char,
    spec_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, spec) = unsafe { (handle_mut(ketama)?, arg_str(spec, spec_len, "spec")?) };
        let server = KetamaServer::parse(spec, weight)?;
        h.mutate(|k| k.add_server(server))
    })
}

/// Removes the named server (its name is its spec as given).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: needs the `qk_ketama` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_ketama_add_server()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_remove_server(
    ketama: *mut qk_ketama,
    name: *const c_char,
    name_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::remove(ketama, name, name_len) })
}

/// Sets the named server's weight (>= 1), keeping its place in the order.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`,
/// `QK_ERR_INVALID_ARG` (weight 0).
///
/// Thread safety: needs the `qk_ketama` to itself: no other call on it may overlap.
///
/// # Safety
/// As `qk_ketama_add_server()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_set_weight(
    ketama: *mut qk_ketama,
    name: *const c_char,
    name_len: usize,
    weight: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::set_weight(ketama, name, name_len, weight)
    })
}

/// Stores the named server's weight in `*weight_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `name` is NULL or points to
/// `name_len` readable bytes; `weight_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_weight(
    ketama: *const qk_ketama,
    name: *const c_char,
    name_len: usize,
    weight_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::weight(ketama, name, name_len, weight_out)
    })
}

/// Stores the number of servers in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `count_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_node_count(
    ketama: *const qk_ketama,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::node_count(ketama, count_out) })
}

/// Stores the number of points on the continuum in `*count_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// As `qk_ketama_node_count()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_point_count(
    ketama: *const qk_ketama,
    count_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::point_count(ketama, count_out) })
}

/// Stores the name of server `index` in `*name_out` (NUL-terminated) and
/// its length in bytes, without the NUL, in `*name_len_out`.
///
/// Ownership: borrowed from the continuum: do not free it. It stays valid
/// until the continuum is next mutated or freed.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_node_name(
    ketama: *const qk_ketama,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_name(ketama, index, name_out, name_len_out)
    })
}

/// Stores the index of the named server in `*index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_NOT_FOUND`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `name` is NULL or points to
/// `name_len` readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_node_index(
    ketama: *const qk_ketama,
    name: *const c_char,
    name_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::node_index(ketama, name, name_len, index_out)
    })
}

/// Stores the index of the server owning `key` in `*index_out`, as the
/// compat mode's implementation would choose it.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `key` is NULL or points to
/// `key_len` readable bytes; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_get_node(
    ketama: *const qk_ketama,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node(ketama, key, key_len, index_out)
    })
}

/// Stores the first `n` distinct servers for `key`, walking the continuum
/// from the key's point, in `indices_out[0..n]`. `indices_out` may be NULL
/// when `n` is 0.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (`n` >
/// server count, or fewer than `n` servers hold points).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `key` is NULL or points to
/// `key_len` readable bytes; `indices_out` is NULL or points to `n`
/// writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_get_nodes(
    ketama: *const qk_ketama,
    key: *const u8,
    key_len: usize,
    n: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_nodes(ketama, key, key_len, n, indices_out)
    })
}

/// Locates `count` keys at once, as `qk_ring_get_node_batch()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY` (also when `count` is 0).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `keys` and `key_lens` are NULL or
/// point to `count` readable elements, each key to its length in readable
/// bytes; `indices_out` is NULL or points to `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_get_node_batch(
    ketama: *const qk_ketama,
    keys: *const *const u8,
    key_lens: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch(ketama, keys, key_lens, count, indices_out)
    })
}

/// As `qk_ketama_get_node_batch()`, with the keys laid end to end in one
/// buffer: key `i` is bytes `offsets[i]` to `offsets[i + 1]` of `keys`
/// (`keys_len` bytes), so `offsets` holds `count + 1` non-decreasing
/// entries, the last at most `keys_len` (Go and JavaScript pass one buffer
/// without a copy per key). The arrays may be NULL when `count` is 0.
/// Nothing is written unless every offset is valid.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`, `QK_ERR_INVALID_ARG` (an
/// offset that decreases or passes `keys_len`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or live; `keys` is NULL or points to `keys_len` readable
/// bytes; `offsets` to `count + 1` readable `size_t`; `indices_out` to
/// `count` writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_get_node_batch_flat(
    ketama: *const qk_ketama,
    keys: *const u8,
    keys_len: usize,
    offsets: *const usize,
    count: usize,
    indices_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::get_node_batch_flat(ketama, keys, keys_len, offsets, count, indices_out)
    })
}

/// Writes each server's exact fraction of the 32-bit hash space to
/// `shares_out[index]`, as `qk_ring_shares()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL` (`cap` < server count).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `shares_out` is NULL or points to
/// `cap` writable `double`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_shares(
    ketama: *const qk_ketama,
    shares_out: *mut f64,
    cap: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe { common::shares(ketama, shares_out, cap) })
}

/// Stores ketama's hash of `key` (the little-endian `uint32_t` of the first
/// four bytes of MD5(key)) in `*hash_out`, for
/// `qk_ketama_get_node_by_hash()`. Thread-safe.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// # Safety
/// `key` is NULL or points to `key_len` readable bytes; `hash_out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_hash(
    key: *const u8,
    key_len: usize,
    hash_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::hash_key(key, key_len, hash_out, KetamaRing::key_hash)
    })
}

/// Like `qk_ketama_get_node()` for a key already hashed with `qk_ketama_hash()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_EMPTY`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `index_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_get_node_by_hash(
    ketama: *const qk_ketama,
    hash: u32,
    index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        common::locate_with(ketama, index_out, |k| k.locate_hash(hash))
    })
}

/// Reads point `index` of the continuum (`0..point_count`, in lookup
/// order): its 32-bit position in `*point_out` and the owning server's
/// index in `*server_index_out`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_NOT_FOUND` (`index >= point_count`).
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_point(
    ketama: *const qk_ketama,
    index: usize,
    point_out: *mut u32,
    server_index_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (h, point_out, server_out) = unsafe {
            (
                handle(ketama)?,
                Out::new(point_out, "point_out")?,
                Out::new(server_index_out, "server_index_out")?,
            )
        };
        let k = h.get();
        let (point, server) = k.point(index).ok_or_else(|| {
            Failure::not_found(format!(
                "no point at index {index}: the continuum has {}",
                k.point_count()
            ))
        })?;
        point_out.set(point);
        server_out.set(server);
        Ok(())
    })
}

/// Writes a snapshot of the continuum (docs/snapshots.md: its
/// compat mode and servers in order, versioned and checksummed) to `buf[0..cap]`
/// and its length to `*len_out`.
///
/// Two-call pattern: call with `cap` 0 (`buf` may then be NULL) to get
/// `QK_ERR_BUFFER_TOO_SMALL` with the size needed in `*len_out`, allocate,
/// call again. `*len_out` is written on success and on
/// `QK_ERR_BUFFER_TOO_SMALL` only.
///
/// Errors: `QK_ERR_NULL_ARG` (`ketama`, `len_out`, or `buf` with `cap` > 0),
/// `QK_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: may run concurrently with other calls taking a `const qk_ketama *`; not with one taking `qk_ketama *`.
///
/// # Safety
/// `ketama` is NULL or a live continuum; `buf` is NULL or points to `cap`
/// writable bytes; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_snapshot(
    ketama: *const qk_ketama,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::snapshot(ketama, buf, cap, len_out)
    })
}

/// Restores a continuum from `len` bytes of a snapshot made by
/// `qk_ketama_snapshot()` (in any process, by any face of quorumkit) and
/// stores it in `*ketama_out`: the same compat mode and servers in the same order, the same
/// placements. The points are rebuilt from the membership.
///
/// Ownership: the caller owns the new continuum (`qk_ketama_free()`); `data` is
/// only read.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_CORRUPT` (bad magic, truncated,
/// trailing bytes, checksum mismatch, unknown kind, invalid fields),
/// `QK_ERR_UNSUPPORTED_VERSION`, `QK_ERR_INVALID_ARG` (a valid snapshot
/// of another kind, e.g. a `qk_ring`).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `ketama_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_restore(
    data: *const u8,
    len: usize,
    ketama_out: *mut *mut qk_ketama,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(
            data,
            len,
            super::snapshot::QK_DEFAULT_MAX_POINTS,
            ketama_out,
            qk_ketama,
        )
    })
}

/// As `qk_ketama_restore()`, with a decode budget: a snapshot that would need more
/// than `max_points` points (a crafted one can declare millions in a few
/// bytes) is refused with `QK_ERR_LIMIT_EXCEEDED` before any of that work
/// is done. `qk_ketama_restore()` uses `QK_DEFAULT_MAX_POINTS` (2^22); at most 2^26
/// points are ever built.
///
/// Errors: as `qk_ketama_restore()`, and `QK_ERR_LIMIT_EXCEEDED`.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// As `qk_ketama_restore()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_ketama_restore_limited(
    data: *const u8,
    len: usize,
    max_points: u64,
    ketama_out: *mut *mut qk_ketama,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || unsafe {
        super::snapshot::restore(data, len, max_points, ketama_out, qk_ketama)
    })
}
