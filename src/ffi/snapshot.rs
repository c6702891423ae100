//! The bodies of `qk_<x>_snapshot` and `qk_<x>_restore`, written once over
//! [`CHandle`] for every placement with a [`Snapshot`] kind.
//!
//! Snapshots use the two-call pattern: call with `cap` 0 (`buf` may then
//! be NULL) to learn the size in `*len_out` (`QK_ERR_BUFFER_TOO_SMALL`),
//! then again with a buffer that large. This is the one place an
//! out-parameter (`*len_out`) is written on failure, and only with that
//! status.

use super::args::{Out, arg_key, arg_slice_mut, hand_out};
use super::boundary::{Failure, FfiResult};
use super::placement::{CHandle, Handle, handle};
use super::status::QK_ERR_BUFFER_TOO_SMALL;
use crate::ring::Snapshot;
use crate::ring::snapshot::{DEFAULT_MAX_POINTS, DecodeLimits};

/// The decode budget of the plain `qk_<x>_restore()` functions, in points
/// (`qk_<x>_restore_limited()` takes its own).
pub const QK_DEFAULT_MAX_POINTS: u64 = 4194304; // 2^22

const _: () = assert!(QK_DEFAULT_MAX_POINTS == DEFAULT_MAX_POINTS);

/// Encodes the handle's placement into `buf[0..cap]`.
pub(crate) unsafe fn snapshot<H>(
    h: *const H,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> FfiResult
where
    H: CHandle,
    H::P: Snapshot,
{
    let (h, buf, len_out) = unsafe {
        (
            handle(h)?,
            arg_slice_mut(buf, cap, "buf")?,
            Out::new(len_out, "len_out")?,
        )
    };
    let bytes = h.get().to_snapshot();
    if bytes.len() > cap {
        let need = bytes.len();
        len_out.set(need);
        return Err(Failure::new(
            QK_ERR_BUFFER_TOO_SMALL,
            format!("buf holds {cap} bytes but the snapshot needs {need}; *len_out says so"),
        ));
    }
    buf[..bytes.len()].copy_from_slice(&bytes);
    len_out.set(bytes.len());
    Ok(())
}

/// Decodes `len` bytes at `data` into a new handle made by `wrap`, within
/// a budget of `max_points` points.
pub(crate) unsafe fn restore<H>(
    data: *const u8,
    len: usize,
    max_points: u64,
    out: *mut *mut H,
    wrap: fn(Handle<H::P>) -> H,
) -> FfiResult
where
    H: CHandle,
    H::P: Snapshot,
{
    let (data, out) = unsafe { (arg_key(data, len, "data")?, Out::new(out, "out")?) };
    let p = H::P::from_snapshot_with_limits(data, &DecodeLimits { max_points })?;
    hand_out(out, wrap(Handle::new(p)));
    Ok(())
}
