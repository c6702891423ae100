//! `InstanceCall`: a class attribute that, read through an instance, gives
//! the callable that instance keeps under a given name (or, while that is
//! None, a fallback function bound to the instance). Special methods such
//! as `__getitem__` are looked up on the class, so a per-instance native
//! fast path (a `functools.partial` over a ring method) is otherwise only
//! reachable through a Python frame.

use pyo3::prelude::*;
use pyo3::types::PyString;

/// `InstanceCall(attr, fallback)`: see the module docs.
#[pyclass(frozen, module = "quorumkit")]
pub struct InstanceCall {
    attr: Py<PyString>,
    fallback: Py<PyAny>,
}

#[pymethods]
impl InstanceCall {
    #[new]
    fn new(attr: Bound<'_, PyString>, fallback: Bound<'_, PyAny>) -> PyResult<Self> {
        if !fallback.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "fallback must be callable",
            ));
        }
        Ok(InstanceCall {
            attr: attr.unbind(),
            fallback: fallback.unbind(),
        })
    }

    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        obj: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(obj) = obj.filter(|o| !o.is_none()) else {
            return Ok(slf.clone().into_any());
        };
        let me = slf.get();
        let fast = obj.getattr(me.attr.bind(py))?;
        if !fast.is_none() {
            return Ok(fast);
        }
        me.fallback
            .bind(py)
            .call_method1("__get__", (obj, obj.get_type()))
    }
}
