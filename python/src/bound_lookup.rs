//! `BoundLookup`: a ring's `str(key)` lookup with a dict of per-node values
//! bound to it, so `lookup(key)` returns `mapping[node]` in one native call.
//! The uhashring drop-in stores `lookup` as the instance's `get` (and behind
//! `ring[key]`): a `functools.partial` over a two-argument method cost one
//! more call per lookup.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// The ring's lookup (`locate_str` of whichever ring class made it).
type Locate =
    Box<dyn Fn(Python<'_>, &Bound<'_, PyAny>) -> PyResult<Option<Py<PyString>>> + Send + Sync>;

/// `lookup(key)`: `mapping[node]` for the node of `str(key)`, None on an
/// empty ring, `KeyError` for a node the mapping lacks. Made by a ring's
/// `bind_lookup(mapping)`; it follows later changes of the ring and of the
/// mapping (it keeps references, not copies).
#[pyclass(frozen, module = "quorumkit")]
pub struct BoundLookup {
    locate: Locate,
    mapping: Py<PyDict>,
}

impl BoundLookup {
    pub fn new(locate: Locate, mapping: Py<PyDict>) -> Self {
        BoundLookup { locate, mapping }
    }
}

#[pymethods]
impl BoundLookup {
    /// `mapping[node]` for the node of `str(key)`, or None on an empty ring.
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match (self.locate)(py, key)? {
            None => Ok(None),
            Some(name) => match self.mapping.bind(py).get_item(name.bind(py))? {
                Some(v) => Ok(Some(v)),
                None => Err(pyo3::exceptions::PyKeyError::new_err(name)),
            },
        }
    }

    /// The bound mapping.
    #[getter]
    fn mapping(&self, py: Python<'_>) -> Py<PyDict> {
        self.mapping.clone_ref(py)
    }
}
