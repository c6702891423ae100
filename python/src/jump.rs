//! `jump_hash` and `jump_hash_batch`: jump consistent hash onto numbered
//! buckets. An `int` key is the 64-bit key itself (as in the paper and the
//! `jump-consistent-hash` package); a str or bytes-like key is hashed with
//! `key_hash` first.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList};

use crate::args::{key_bytes, type_name, u32_arg};
use crate::errors::{guard, invalid, type_error};

/// Ints in `-2**63 .. 2**64` are keys; negative ones wrap to their 64-bit
/// two's complement, as the paper's `uint64_t` (and the `jump` package) do.
fn jump_key(key: &Bound<'_, PyAny>) -> PyResult<u64> {
    if key.is_instance_of::<PyInt>() {
        if let Ok(v) = key.extract::<u64>() {
            return Ok(v);
        }
        if let Ok(v) = key.extract::<i64>() {
            return Ok(v as u64);
        }
        return Err(invalid(
            key.py(),
            format!("an int key must be between -2**63 and 2**64 - 1, got {key}"),
        ));
    }
    match key_bytes(key) {
        Ok(b) => Ok(quorumkit::hash::key_hash(&b)),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(key.py()) => {
            Err(type_error(format!(
                "key must be int, str, bytes, bytearray or memoryview, not {}",
                type_name(key)
            )))
        }
        Err(e) => Err(e),
    }
}

/// The bucket in `range(num_buckets)` of `key`.
///
/// Domain, against the `jump-consistent-hash` package: an int key wider
/// than 64 bits is refused (`InvalidArgumentError`) where the package
/// silently keeps its low 64 bits, so distinct keys never share a bucket
/// by truncation; `num_buckets` may go up to 2**32 - 1, where the package
/// stops at 2**31 - 1 (`OverflowError`); below that both give the same
/// bucket for every key.
#[pyfunction]
pub fn jump_hash(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    num_buckets: &Bound<'_, PyAny>,
) -> PyResult<u32> {
    let k = jump_key(key)?;
    let n = u32_arg(num_buckets, "num_buckets")?;
    guard(py, || quorumkit::ring::jump_hash(k, n))
}

/// The buckets of many keys; the hashing runs with the GIL released.
#[pyfunction]
pub fn jump_hash_batch<'py>(
    py: Python<'py>,
    keys: &Bound<'py, PyAny>,
    num_buckets: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let n = u32_arg(num_buckets, "num_buckets")?;
    guard(py, || quorumkit::ring::jump_hash(0, n))?;
    crate::rings::reject_scalar(keys, "keys")?;
    let it = keys.try_iter().map_err(|_| {
        type_error(format!(
            "keys must be an iterable of keys, not {}",
            type_name(keys)
        ))
    })?;
    let hint = keys.len().unwrap_or(0);
    let mut ks = Vec::with_capacity(hint);
    for k in it {
        ks.push(jump_key(&k?)?);
    }
    let mut out = Vec::new();
    py.detach(|| quorumkit::ring::jump_hash_batch(&ks, n, &mut out))
        .map_err(|e| crate::errors::to_pyerr(py, e))?;
    PyList::new(py, out)
}
