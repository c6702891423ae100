//! `qk_detector`: the phi-accrual failure detector ([`FailureDetector`]).
//! Times are u64 nanoseconds of a monotonic clock the caller owns.

use std::ffi::c_char;

use super::args::{Out, arg_mut, arg_ref, arg_str, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{boundary, catch_or};
use super::status::qk_status;
use crate::detect::{DetectorConfig, FailureDetector};

/// A registry of monitored nodes, each with a sliding window of heartbeat
/// inter-arrival times and a suspicion level φ (docs/failure-detection.md).
///
/// Thread safety: none inside. Calls on one detector must not overlap
/// (functions taking a `const qk_detector *` may overlap each other, but
/// not a call taking `qk_detector *`).
///
/// Create with `qk_detector_new()`, destroy with `qk_detector_free()`.
#[allow(non_camel_case_types)]
pub struct qk_detector(FailureDetector);

/// Creates a detector and stores it in `*detector_out`. Akka's defaults
/// are `threshold` 8.0, `max_samples` 1000, `min_std_dev_ns` 100 ms,
/// `acceptable_pause_ns` 3 s, `first_heartbeat_estimate_ns` 1 s.
///
/// Ownership: the caller owns the detector; free it with `qk_detector_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` if `threshold` is not
/// finite and > 0, `max_samples` is not in 1..=65536, or `min_std_dev_ns`
/// or `first_heartbeat_estimate_ns` is 0.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `detector_out` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_new(
    threshold: f64,
    max_samples: usize,
    min_std_dev_ns: u64,
    acceptable_pause_ns: u64,
    first_heartbeat_estimate_ns: u64,
    detector_out: *mut *mut qk_detector,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(detector_out, "detector_out") }?;
        let d = FailureDetector::new(DetectorConfig {
            threshold,
            max_samples,
            min_std_dev_ns,
            acceptable_pause_ns,
            first_heartbeat_estimate_ns,
        })?;
        hand_out(out, qk_detector(d));
        Ok(())
    })
}

/// Frees a detector. NULL is a no-op.
///
/// Thread safety: needs the `qk_detector` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `detector` is NULL or a live detector that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_free(detector: *mut qk_detector) {
    catch_or((), || unsafe { free_boxed(detector) })
}

/// Records a heartbeat from the node `name` (`name_len` bytes of UTF-8) at
/// `now_ns`; the first one registers the node.
///
/// A heartbeat at or before the node's latest one (two threads that read
/// the clock in one order and call in the other) is absorbed: `QK_OK`, and
/// nothing changes.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`.
///
/// Thread safety: none inside; no other call on the same `qk_detector` may overlap.
///
/// # Safety
/// `detector` is NULL or a live detector; `name` is NULL or points to
/// `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_heartbeat(
    detector: *mut qk_detector,
    name: *const c_char,
    name_len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let d = unsafe { arg_mut(detector, "detector") }?;
        let name = unsafe { arg_str(name, name_len, "name") }?;
        Ok(d.0.heartbeat(name, now_ns)?)
    })
}

/// Stores the node's suspicion level φ at `now_ns` in `*phi_out` (≥ 0; may
/// be infinite long after the last heartbeat).
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`; `QK_ERR_NOT_FOUND` for
/// a node never heard from or removed. A `now_ns` at or before the node's
/// latest heartbeat gives φ at that heartbeat (not an error).
///
/// Thread safety: none inside; no other call on the same `qk_detector` may overlap.
///
/// # Safety
/// `detector` is NULL or a live detector; `name` as in
/// `qk_detector_heartbeat()`; `phi_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_phi(
    detector: *const qk_detector,
    name: *const c_char,
    name_len: usize,
    now_ns: u64,
    phi_out: *mut f64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let d = unsafe { arg_ref(detector, "detector") }?;
        let name = unsafe { arg_str(name, name_len, "name") }?;
        let out = unsafe { Out::new(phi_out, "phi_out") }?;
        out.set(d.0.phi(name, now_ns)?);
        Ok(())
    })
}

/// Stores in `*available_out` whether the node's φ at `now_ns` is below
/// the threshold. Errors as `qk_detector_phi()`.
///
/// Thread safety: none inside; no other call on the same `qk_detector` may overlap.
///
/// # Safety
/// As `qk_detector_phi()`, with `available_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_is_available(
    detector: *const qk_detector,
    name: *const c_char,
    name_len: usize,
    now_ns: u64,
    available_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let d = unsafe { arg_ref(detector, "detector") }?;
        let name = unsafe { arg_str(name, name_len, "name") }?;
        let out = unsafe { Out::new(available_out, "available_out") }?;
        out.set_flag(d.0.is_available(name, now_ns)?);
        Ok(())
    })
}

/// Stops monitoring the node.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`; `QK_ERR_NOT_FOUND` if
/// it was not monitored.
///
/// Thread safety: none inside; no other call on the same `qk_detector` may overlap.
///
/// # Safety
/// As `qk_detector_heartbeat()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_remove(
    detector: *mut qk_detector,
    name: *const c_char,
    name_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let d = unsafe { arg_mut(detector, "detector") }?;
        let name = unsafe { arg_str(name, name_len, "name") }?;
        Ok(d.0.remove(name)?)
    })
}

/// Stores the number of monitored nodes in `*len_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_detector` may overlap.
///
/// # Safety
/// `detector` is NULL or a live detector; `len_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_detector_len(
    detector: *const qk_detector,
    len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let d = unsafe { arg_ref(detector, "detector") }?;
        let out = unsafe { Out::new(len_out, "len_out") }?;
        out.set(d.0.len());
        Ok(())
    })
}
