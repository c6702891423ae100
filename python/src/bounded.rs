//! `BoundedLoadBalancer`: the core's `SharedBoundedLoad` over a `HashRing`.
//!
//! Thread safety: every method takes the core's mutex for a short piece of
//! Rust work that never runs Python code or waits for the GIL, so it cannot
//! deadlock with the GIL (and stays correct on a free-threaded build).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyIterator, PyList, PyString};
use quorumkit::ring::{BoundedLoad, DEFAULT_VNODES, HashRing, Placement, SharedBoundedLoad};

use crate::args::{key_bytes, str_arg, str_utf8, type_name, u32_arg};
use crate::errors::{guard, to_pyerr, type_error};
use crate::rings::node_weights;

/// Consistent hashing with bounded loads.
#[pyclass(frozen, module = "quorumkit", name = "BoundedLoadBalancer")]
pub struct BoundedLoadBalancer {
    inner: SharedBoundedLoad<HashRing>,
}

#[pymethods]
impl BoundedLoadBalancer {
    #[new]
    #[pyo3(
        signature = (nodes, *, balance_factor=None, vnodes=None),
        text_signature = "(nodes, *, balance_factor=1.25, vnodes=160)"
    )]
    fn new(
        py: Python<'_>,
        nodes: &Bound<'_, PyAny>,
        balance_factor: Option<&Bound<'_, PyAny>>,
        vnodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let c = match balance_factor {
            // bool is an int subclass: reject it as a number.
            Some(c) if c.is_instance_of::<pyo3::types::PyBool>() => {
                return Err(type_error("balance_factor must be a float, not bool"));
            }
            Some(c) if c.is_instance_of::<PyFloat>() || c.is_instance_of::<PyInt>() => c
                .extract::<f64>()
                .map_err(|_| to_pyerr(py, invalid_factor(c)))?,
            Some(c) => {
                return Err(type_error(format!(
                    "balance_factor must be a float, not {}",
                    type_name(c)
                )));
            }
            None => 1.25,
        };
        let vnodes = match vnodes {
            Some(v) => u32_arg(v, "vnodes")?,
            None => DEFAULT_VNODES,
        };
        let nodes = node_weights(nodes, 1u32)?;
        let b = guard(py, || {
            BoundedLoad::new(HashRing::from_nodes(vnodes, nodes)?, c)
        })?;
        Ok(BoundedLoadBalancer {
            inner: SharedBoundedLoad::new(b),
        })
    }

    /// Assigns `key` to the first node clockwise from it whose load is
    /// below its capacity, counts it there and returns the node.
    fn acquire(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyString>> {
        let key = key_bytes(key)?;
        let mut b = self.inner.lock();
        let name = guard(py, || b.acquire_node(&key))?;
        Ok(PyString::new(py, name).unbind())
    }

    /// Gives back one unit of `node`'s load.
    fn release(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<()> {
        let node = str_arg(node, "node")?;
        guard(py, || self.inner.release_node(&node))
    }

    /// Each node's load.
    fn loads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let b = self.inner.lock();
        for (i, &load) in b.loads().iter().enumerate() {
            d.set_item(b.ring().node_name(i).unwrap_or_default(), load)?;
        }
        Ok(d)
    }

    /// The capacity `node` has for the next placement:
    /// ceil(balance_factor × (total_load + 1) × weight / total_weight).
    fn capacity(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<u64> {
        let node = str_arg(node, "node")?;
        let b = self.inner.lock();
        let i = b
            .ring()
            .node_index(&node)
            .ok_or_else(|| to_pyerr(py, quorumkit::Error::NodeNotFound(node.clone())))?;
        Ok(b.capacity(i).expect("index from node_index"))
    }

    /// Adds a node with load 0; the others keep theirs.
    #[pyo3(signature = (name, weight=None), text_signature = "($self, name, weight=1)")]
    fn add_node(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = str_arg(name, "name")?;
        let weight = weight.map_or(Ok(1), |w| u32_arg(w, "weight"))?;
        guard(py, || self.inner.lock().add_node(&name, weight))
    }

    /// Removes a node and returns the load it held (keys to re-acquire).
    fn remove_node(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<u64> {
        let name = str_arg(name, "name")?;
        guard(py, || self.inner.lock().remove_node(&name))
    }

    /// The sum of all loads.
    #[getter]
    fn total_load(&self) -> u64 {
        self.inner.lock().total_load()
    }

    /// The balance factor c.
    #[getter]
    fn balance_factor(&self) -> f64 {
        self.inner.lock().balance_factor()
    }

    /// Virtual nodes per unit of weight.
    #[getter]
    fn vnodes(&self) -> u32 {
        self.inner.lock().ring().vnodes()
    }

    /// Node names in insertion order.
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names: Vec<String> = self
            .inner
            .lock()
            .ring()
            .node_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        PyList::new(py, names)
    }

    fn __len__(&self) -> usize {
        self.inner.lock().len()
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        match name.cast::<PyString>() {
            Ok(s) => {
                let b = str_utf8(s)?;
                Ok(std::str::from_utf8(&b).is_ok_and(|n| self.inner.lock().ring().contains(n)))
            }
            Err(_) => Ok(false),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.nodes(py)?.try_iter()
    }

    fn __repr__(&self) -> String {
        let b = self.inner.lock();
        format!(
            "BoundedLoadBalancer(nodes={}, balance_factor={}, total_load={}, vnodes={})",
            b.len(),
            b.balance_factor(),
            b.total_load(),
            b.ring().vnodes()
        )
    }
}

fn invalid_factor(c: &Bound<'_, PyAny>) -> quorumkit::Error {
    quorumkit::Error::InvalidArgument(format!(
        "balance factor must be a finite number greater than 1, got {c}"
    ))
}
