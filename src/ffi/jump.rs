//! `qk_jump_hash*`: jump consistent hash ([`crate::ring::jump_hash`]) onto
//! numbered buckets. Stateless: every function is thread-safe.

use super::args::{Out, arg_key, arg_slice, arg_slice_mut};
use super::boundary::boundary;
use super::boundary::qk_error;
use super::status::qk_status;
use crate::ring::{jump_hash, jump_hash_key};

/// Stores the bucket in `0 .. num_buckets` of the 64-bit `key` in
/// `*bucket_out` (Lamping & Veach's jump consistent hash; the key is used
/// as is, so integer keys give the same buckets as other implementations
/// of the paper's algorithm).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_ARG` (`num_buckets` is 0).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `bucket_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_jump_hash(
    key: u64,
    num_buckets: u32,
    bucket_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(bucket_out, "bucket_out") }?;
        out.set(jump_hash(key, num_buckets)?);
        Ok(())
    })
}

/// Like `qk_jump_hash()` for a byte key (`key_len` bytes; `key` may be
/// NULL when `key_len` is 0), hashed first with `qk_hash_key()` (xxh3-64,
/// quorumkit's fixed seed): the bucket is `qk_jump_hash(qk_hash_key(key))`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_ARG` (`num_buckets` is 0).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `key` is NULL or points to `key_len` readable bytes; `bucket_out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_jump_hash_key(
    key: *const u8,
    key_len: usize,
    num_buckets: u32,
    bucket_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (key, out) = unsafe {
            (
                arg_key(key, key_len, "key")?,
                Out::new(bucket_out, "bucket_out")?,
            )
        };
        out.set(jump_hash_key(key, num_buckets)?);
        Ok(())
    })
}

/// `buckets_out[i] = qk_jump_hash(keys[i], num_buckets)` for `i < count`.
/// The arrays may be NULL when `count` is 0. Nothing is written on failure.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_ARG` (`num_buckets` is 0).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `keys` is NULL or points to `count` readable `uint64_t`; `buckets_out`
/// is NULL or points to `count` writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_jump_hash_batch(
    keys: *const u64,
    count: usize,
    num_buckets: u32,
    buckets_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (keys, out) = unsafe {
            (
                arg_slice(keys, count, "keys")?,
                arg_slice_mut(buckets_out, count, "buckets_out")?,
            )
        };
        jump_hash(0, num_buckets)?; // validates num_buckets before writing
        for (slot, &k) in out.iter_mut().zip(keys) {
            *slot = jump_hash(k, num_buckets)?;
        }
        Ok(())
    })
}
