//! Argument conversion: keys to bytes, ints to range-checked integers.
//!
//! Keys are `str` (hashed as UTF-8), `bytes`, `bytearray` or `memoryview`.
//! Integers must be `int`; out-of-range values (negative, too large) raise
//! `InvalidArgumentError`, never `OverflowError`.

use std::borrow::Cow;

use pyo3::exceptions::PyOverflowError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyFloat, PyInt, PyMemoryView, PyString};

use crate::errors::{invalid, type_error};

// `PyUnicode_AsUTF8AndSize` joined the limited API in 3.10, but CPython has
// exported it with this exact signature since 3.3, so on CPython 3.9 the
// symbol resolves too. It returns the UTF-8 form cached inside the str
// object (no copy for ASCII strings), where PyO3's abi3-py39 path would
// build a temporary bytes object per key. Windows' python3.dll only
// forwards stable-ABI symbols, so there we take PyO3's portable path.
#[cfg(not(windows))]
unsafe extern "C" {
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const std::os::raw::c_char;
}

/// The UTF-8 bytes of a str, borrowed from the object where possible.
#[inline]
pub fn str_utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, [u8]>> {
    #[cfg(not(windows))]
    {
        let mut len: ffi::Py_ssize_t = 0;
        // SAFETY: `s` is a live str; the returned buffer is owned by it and
        // lives as long as it does (the borrow of `s` bounds the slice).
        let p = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut len) };
        if p.is_null() {
            return Err(PyErr::fetch(s.py()));
        }
        Ok(Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(p.cast::<u8>(), len as usize)
        }))
    }
    #[cfg(windows)]
    {
        Ok(match s.to_cow()? {
            Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        })
    }
}

/// The bytes of a key: str as UTF-8, bytes as is, bytearray and
/// memoryview copied.
#[inline]
pub fn key_bytes<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    // Exact-type checks first: they compare a pointer, while the subclass
    // checks call into the interpreter under the limited API.
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return str_utf8(s);
    }
    if let Ok(b) = obj.cast_exact::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    key_bytes_slow(obj)
}

#[cold]
fn key_bytes_slow<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return str_utf8(s);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    owned_key_bytes(obj).map(Cow::Owned)
}

fn owned_key_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0("tobytes")?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(type_error(format!(
        "key must be str, bytes, bytearray or memoryview, not {}",
        type_name(obj)
    )))
}

/// Appends a key's bytes to `buf`.
#[inline]
pub fn append_key(obj: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> PyResult<()> {
    buf.extend_from_slice(&key_bytes(obj)?);
    Ok(())
}

/// Appends the bytes of the key `item` points to (a borrowed reference,
/// e.g. from `PyList_GetItem`) to `buf`. Exact str and bytes are read in
/// place; anything else takes a strong reference first, since its
/// conversion may run Python code.
///
/// # Safety
/// `item` must point to a live object, with the GIL held.
#[inline]
pub unsafe fn append_key_ptr(
    py: Python<'_>,
    item: *mut ffi::PyObject,
    buf: &mut Vec<u8>,
) -> PyResult<()> {
    unsafe {
        #[cfg(not(windows))]
        if ffi::PyUnicode_CheckExact(item) != 0 {
            let mut len: ffi::Py_ssize_t = 0;
            let p = PyUnicode_AsUTF8AndSize(item, &mut len);
            if p.is_null() {
                return Err(PyErr::fetch(py));
            }
            buf.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len as usize));
            return Ok(());
        }
        if ffi::PyBytes_CheckExact(item) != 0 {
            let mut p: *mut std::os::raw::c_char = std::ptr::null_mut();
            let mut len: ffi::Py_ssize_t = 0;
            if ffi::PyBytes_AsStringAndSize(item, &mut p, &mut len) != 0 {
                return Err(PyErr::fetch(py));
            }
            buf.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len as usize));
            return Ok(());
        }
        let owned = Bound::from_borrowed_ptr(py, item);
        append_key(&owned, buf)
    }
}

/// The name of an object's type, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// An `int` in `lo..=hi`; `what` names the argument in messages.
pub fn int_in_range(obj: &Bound<'_, PyAny>, what: &str, lo: i64, hi: i64) -> PyResult<i64> {
    if !obj.is_instance_of::<PyInt>() {
        return Err(type_error(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        )));
    }
    let out_of_range = || {
        invalid(
            obj.py(),
            format!("{what} must be between {lo} and {hi}, got {obj}"),
        )
    };
    match obj.extract::<i64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        Ok(_) => Err(out_of_range()),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(out_of_range()),
        Err(e) => Err(e),
    }
}

/// A `u32` argument (weights, vnodes, ports after a narrower check).
pub fn u32_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    int_in_range(obj, what, 0, u32::MAX as i64).map(|v| v as u32)
}

/// A positive finite float weight: an `int` or a `float` (checked by the
/// core, so its message names the bad value).
pub fn f64_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyFloat>() {
        return obj.extract::<f64>();
    }
    if obj.is_instance_of::<PyInt>() {
        // Ints beyond f64's range convert to inf, which the core rejects.
        return Ok(obj.extract::<f64>().unwrap_or(f64::INFINITY));
    }
    Err(type_error(format!(
        "{what} must be an int or a float, not {}",
        type_name(obj)
    )))
}

/// Conversion of a weight argument to the core's weight type.
pub trait WeightArg: Sized {
    fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self>;
}

impl WeightArg for u32 {
    fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
        u32_arg(obj, what)
    }
}

impl WeightArg for f64 {
    fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
        f64_arg(obj, what)
    }
}

/// A non-negative count (`n`, `key_size`).
pub fn count_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    int_in_range(obj, what, 0, i64::MAX).map(|v| v as usize)
}

/// A str argument (node names), as an owned `String`.
pub fn str_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    match obj.cast::<PyString>() {
        // CPython's UTF-8 form is always valid; lossy never replaces here.
        Ok(s) => Ok(String::from_utf8_lossy(&str_utf8(s)?).into_owned()),
        Err(_) => Err(type_error(format!(
            "{what} must be a str, not {}",
            type_name(obj)
        ))),
    }
}
