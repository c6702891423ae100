//! The `HashRing` and `KetamaRing` classes. Their common methods are
//! written once in `Shared` and listed once in `ring_class!`.

use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyIterator, PyList, PyMapping, PyMemoryView, PyString, PyTuple,
    PyType,
};
use quorumkit::ring::{
    DEFAULT_VNODES, HashRing as CoreHashRing, KetamaCompat, KetamaRing as CoreKetamaRing,
    KetamaServer, Placement, Snapshot,
};

use crate::args::{int_in_range, key_bytes, str_arg, type_name, u32_arg};
use crate::errors::{guard, invalid, type_error};
use crate::shared::Shared;

/// Defines a frozen pyclass over `Shared<$core>` with the methods both
/// rings have, plus `$extra` methods.
macro_rules! ring_class {
    ($cls:ident, $core:ty, $pyname:literal, { $($extra:tt)* }) => {
        #[pyclass(frozen, module = "quorumkit", name = $pyname)]
        pub struct $cls {
            inner: Shared<$core>,
        }

        #[pymethods]
        impl $cls {
            /// Removes the named node.
            fn remove_node(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
                let name = str_arg(name, "name")?;
                self.inner.mutate(py, |r| Self::core_remove(r, &name))
            }

            /// Changes the named node's weight.
            fn set_weight(
                &self,
                py: Python<'_>,
                name: &Bound<'_, PyAny>,
                weight: &Bound<'_, PyAny>,
            ) -> PyResult<()> {
                let name = str_arg(name, "name")?;
                let weight = u32_arg(weight, "weight")?;
                self.inner.mutate(py, |r| r.set_weight(&name, weight))
            }

            /// The named node's weight.
            fn weight(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<u32> {
                let name = str_arg(name, "name")?;
                self.inner.weight(py, &name)
            }

            /// The node that owns `key`.
            fn get_node(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyString>> {
                self.inner.get_node(py, key)
            }

            /// The first `n` distinct nodes for `key`, in preference order.
            fn get_nodes<'py>(
                &self,
                py: Python<'py>,
                key: &Bound<'py, PyAny>,
                n: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyList>> {
                self.inner.get_nodes(py, key, n)
            }

            /// The node of each key; hashing runs with the GIL released.
            #[pyo3(signature = (keys, *, key_size=None))]
            fn get_node_batch<'py>(
                &self,
                py: Python<'py>,
                keys: &Bound<'py, PyAny>,
                key_size: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyList>> {
                self.inner.get_node_batch(py, keys, key_size)
            }

            /// Each node's exact fraction of the hash space.
            fn shares<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                self.inner.shares(py)
            }

            /// Node names in insertion order.
            #[getter(nodes)]
            fn node_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
                self.inner.nodes(py)
            }

            /// Number of points on the ring.
            #[getter]
            fn point_count(&self) -> usize {
                self.inner.read().ring.point_count()
            }

            fn __len__(&self) -> usize {
                self.inner.len()
            }

            fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
                self.inner.contains(name)
            }

            fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
                self.inner.nodes(py)?.try_iter()
            }

            /// The ring as a snapshot: versioned, checksummed bytes
            /// (README, "Snapshot format") that `from_bytes` restores in
            /// any process and from C.
            fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                let snap = self.inner.snapshot();
                PyBytes::new(py, &snap.ring.to_snapshot())
            }

            /// Restores a ring from `to_bytes()` output.
            #[classmethod]
            fn from_bytes(
                _cls: &Bound<'_, PyType>,
                py: Python<'_>,
                data: &Bound<'_, PyAny>,
            ) -> PyResult<Self> {
                let data = snapshot_bytes(data)?;
                let ring = guard(py, || <$core as Snapshot>::from_snapshot(&data))?;
                Ok(Self {
                    inner: Shared::new(py, ring),
                })
            }

            /// Pickles through `to_bytes` / `from_bytes`.
            fn __reduce__<'py>(
                slf: &Bound<'py, Self>,
            ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
                let from = slf.get_type().getattr("from_bytes")?;
                Ok((from, (slf.get().to_bytes(slf.py()),)))
            }

            $($extra)*
        }
    };
}

ring_class!(HashRing, CoreHashRing, "HashRing", {
    #[new]
    #[pyo3(signature = (nodes=None, *, vnodes=None), text_signature = "(nodes=None, *, vnodes=160)")]
    fn new(
        py: Python<'_>,
        nodes: Option<&Bound<'_, PyAny>>,
        vnodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let vnodes = match vnodes {
            Some(v) => u32_arg(v, "vnodes")?,
            None => DEFAULT_VNODES,
        };
        let nodes = match nodes.filter(|n| !n.is_none()) {
            Some(nodes) => node_weights(nodes)?,
            None => Vec::new(),
        };
        let ring = guard(py, || CoreHashRing::from_nodes(vnodes, nodes))?;
        Ok(HashRing {
            inner: Shared::new(py, ring),
        })
    }

    /// Adds a node; only the keys that now belong to it move.
    #[pyo3(signature = (name, weight=None), text_signature = "($self, name, weight=1)")]
    fn add_node(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = str_arg(name, "name")?;
        let weight = weight.map_or(Ok(1), |w| u32_arg(w, "weight"))?;
        self.inner.mutate(py, |r| r.add_node(&name, weight))
    }

    /// Virtual nodes per unit of weight.
    #[getter]
    fn vnodes(&self) -> u32 {
        self.inner.read().ring.vnodes()
    }

    fn __repr__(&self) -> String {
        let s = self.inner.read();
        format!(
            "HashRing(nodes={}, points={}, vnodes={})",
            s.ring.len(),
            s.ring.point_count(),
            s.ring.vnodes()
        )
    }
});

impl HashRing {
    fn core_remove(r: &mut CoreHashRing, name: &str) -> quorumkit::Result<()> {
        r.remove_node(name)
    }
}

ring_class!(KetamaRing, CoreKetamaRing, "KetamaRing", {
    #[new]
    #[pyo3(signature = (servers, *, compat=None), text_signature = "(servers, *, compat='libmemcached')")]
    fn new(
        py: Python<'_>,
        servers: &Bound<'_, PyAny>,
        compat: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let compat = match compat {
            Some(c) => {
                let c = str_arg(c, "compat")?;
                guard(py, || KetamaCompat::parse(&c))?
            }
            None => KetamaCompat::Libmemcached,
        };
        let servers = parse_servers(py, servers)?;
        let ring = guard(py, || CoreKetamaRing::new(servers, compat))?;
        Ok(KetamaRing {
            inner: Shared::new(py, ring),
        })
    }

    /// Adds a server `"host[:port]"`; the continuum is recomputed.
    #[pyo3(signature = (spec, weight=None), text_signature = "($self, spec, weight=1)")]
    fn add_node(
        &self,
        py: Python<'_>,
        spec: &Bound<'_, PyAny>,
        weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let spec = str_arg(spec, "spec")?;
        let weight = weight.map_or(Ok(1), |w| u32_arg(w, "weight"))?;
        let server = guard(py, || KetamaServer::parse(&spec, weight))?;
        self.inner.mutate(py, |r| r.add_server(server))
    }

    /// The continuum as (32-bit point, node name) in lookup order.
    fn points<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let s = self.inner.read();
        let pts = guard(py, || Ok(s.ring.points()))?;
        let items = pts
            .into_iter()
            .map(|(p, o)| {
                PyTuple::new(
                    py,
                    [
                        p.into_pyobject(py)?.into_any(),
                        s.names[o].bind(py).clone().into_any(),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// ketama's key hash: little-endian u32 of md5(key)[0:4].
    #[staticmethod]
    fn key_hash(key: &Bound<'_, PyAny>) -> PyResult<u32> {
        crate::ketama_hash(key)
    }

    /// The compat mode: "libmemcached" or "uhashring".
    #[getter]
    fn compat(&self) -> &'static str {
        self.inner.read().ring.compat().as_str()
    }

    fn __repr__(&self) -> String {
        let s = self.inner.read();
        format!(
            "KetamaRing(nodes={}, points={}, compat='{}')",
            s.ring.len(),
            s.ring.point_count(),
            s.ring.compat().as_str()
        )
    }
});

impl KetamaRing {
    fn core_remove(r: &mut CoreKetamaRing, name: &str) -> quorumkit::Result<()> {
        r.remove_server(name)
    }
}

/// Rejects a lone str/bytes where a collection is expected (iterating it
/// would silently give one node per character).
fn reject_scalar(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(type_error(format!(
            "{what} must be a collection, not a single {}",
            type_name(obj)
        )));
    }
    Ok(())
}

/// Snapshot input: bytes, bytearray or memoryview (not str).
fn snapshot_bytes<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if data.is_instance_of::<PyBytes>()
        || data.is_instance_of::<PyByteArray>()
        || data.is_instance_of::<PyMemoryView>()
    {
        return key_bytes(data);
    }
    Err(type_error(format!(
        "a snapshot must be bytes, bytearray or memoryview, not {}",
        type_name(data)
    )))
}

/// `HashRing(nodes)`: an iterable of names or a mapping name -> weight.
pub(crate) fn node_weights(nodes: &Bound<'_, PyAny>) -> PyResult<Vec<(String, u32)>> {
    reject_scalar(nodes, "nodes")?;
    let mut out = Vec::new();
    if let Ok(m) = nodes.cast::<PyMapping>() {
        for item in m.items()?.iter() {
            let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            out.push((str_arg(&k, "node name")?, u32_arg(&v, "weight")?));
        }
        return Ok(out);
    }
    let it = nodes.try_iter().map_err(|_| {
        type_error(format!(
            "nodes must be None, an iterable of names or a mapping of name to weight, not {}",
            type_name(nodes)
        ))
    })?;
    for name in it {
        out.push((str_arg(&name?, "node name")?, 1));
    }
    Ok(out)
}

/// `KetamaRing(servers)`: "host[:port]" strings, (host, port, weight)
/// tuples, or a mapping "host[:port]" -> weight.
fn parse_servers(py: Python<'_>, servers: &Bound<'_, PyAny>) -> PyResult<Vec<KetamaServer>> {
    reject_scalar(servers, "servers")?;
    let mut out = Vec::new();
    if let Ok(m) = servers.cast::<PyMapping>() {
        for item in m.items()?.iter() {
            let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            let spec = str_arg(&k, "server spec")?;
            let weight = u32_arg(&v, "weight")?;
            out.push(guard(py, || KetamaServer::parse(&spec, weight))?);
        }
        return Ok(out);
    }
    let it = servers.try_iter().map_err(|_| {
        type_error(format!(
            "servers must be a list of \"host[:port]\" strings or (host, port, weight) tuples, \
             or a mapping of \"host[:port]\" to weight, not {}",
            type_name(servers)
        ))
    })?;
    for item in it {
        let item = item?;
        if item.is_instance_of::<PyString>() {
            let spec = str_arg(&item, "server spec")?;
            out.push(guard(py, || KetamaServer::parse(&spec, 1))?);
        } else if let Ok(t) = item.cast::<PyTuple>() {
            if t.len() != 3 {
                return Err(invalid(
                    py,
                    format!(
                        "a server tuple is (host, port, weight), got {} items",
                        t.len()
                    ),
                ));
            }
            let host = str_arg(&t.get_item(0)?, "host")?;
            let port = int_in_range(&t.get_item(1)?, "port", 0, u16::MAX as i64)? as u16;
            let weight = u32_arg(&t.get_item(2)?, "weight")?;
            out.push(guard(py, || KetamaServer::new(&host, port, weight))?);
        } else {
            return Err(type_error(format!(
                "a server must be a \"host[:port]\" str or a (host, port, weight) tuple, not {}",
                type_name(&item)
            )));
        }
    }
    Ok(out)
}
