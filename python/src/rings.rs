//! The placement classes: `HashRing`, `KetamaRing`, `RendezvousHash` and
//! `Maglev`. Their common methods are written once in `Shared` and listed
//! once in `ring_class!` (membership and weights too, where their Python
//! signatures agree: `weights: T` selects them).

use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyIterator, PyList, PyMapping, PyMemoryView, PyString, PyTuple,
    PyType,
};
use quorumkit::ring::{
    DEFAULT_TABLE_SIZE, DEFAULT_VNODES, HashRing as CoreHashRing, KetamaCompat,
    KetamaRing as CoreKetamaRing, KetamaServer, MD5_DEFAULT_VNODES, Maglev as CoreMaglev,
    Md5Ring as CoreMd5Ring, Membership, Placement, Rendezvous as CoreRendezvous, Snapshot,
};

use crate::args::{WeightArg, f64_arg, int_in_range, key_bytes, str_arg, type_name, u32_arg};
use crate::errors::{guard, invalid, type_error};
use crate::shared::Shared;

/// Defines a frozen pyclass over `Shared<$core>` with the lookups every
/// placement has, with `weights: T` remove/set_weight/weight over
/// [`Membership`], with `snapshot: "doc"` to_bytes/from_bytes/pickling over
/// [`Snapshot`], plus `$extra` methods.
macro_rules! ring_class {
    ($cls:ident, $core:ty, $pyname:literal, $(weights: $w:ty,)? $(snapshot: $snapdoc:literal,)?
     { $($extra:tt)* }) => {
        #[pyclass(frozen, module = "quorumkit", name = $pyname)]
        pub struct $cls {
            inner: Shared<$core>,
        }

        #[pymethods]
        impl $cls {
            $(
            /// Removes the named node; only the keys it owned move.
            fn remove_node(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
                let name = str_arg(name, "name")?;
                self.inner.mutate(py, |r| Membership::remove_node(r, &name))
            }

            /// Changes the named node's weight.
            fn set_weight(
                &self,
                py: Python<'_>,
                name: &Bound<'_, PyAny>,
                weight: &Bound<'_, PyAny>,
            ) -> PyResult<()> {
                let name = str_arg(name, "name")?;
                let weight = <$w as WeightArg>::from_py(weight, "weight")?;
                self.inner.mutate(py, |r| Membership::set_weight(r, &name, weight))
            }

            /// The named node's weight.
            fn weight(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<$w> {
                let name = str_arg(name, "name")?;
                self.inner.weight(py, &name, Membership::weight_at)
            }
            )?

            /// The node that owns `key`.
            fn get_node(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyString>> {
                self.inner.get_node(py, key)
            }

            /// uhashring's lookup: the node for `str(key)` as UTF-8, or
            /// None when no node holds a point.
            fn locate_str(
                &self,
                py: Python<'_>,
                key: &Bound<'_, PyAny>,
            ) -> PyResult<Option<Py<PyString>>> {
                self.inner.locate_str(py, key)
            }

            /// `mapping[node]` for the node of `str(key)` as one native call:
            /// `ring.bind_lookup(mapping).lookup` is what a Python wrapper
            /// would do with a frame (the uhashring drop-in's `get`).
            fn bind_lookup(
                slf: &Bound<'_, Self>,
                mapping: &Bound<'_, pyo3::types::PyDict>,
            ) -> crate::bound_lookup::BoundLookup {
                let ring: Py<Self> = slf.clone().unbind();
                crate::bound_lookup::BoundLookup::new(
                    Box::new(move |py, key| ring.get().inner.locate_str(py, key)),
                    mapping.clone().unbind(),
                )
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

            fn __len__(&self) -> usize {
                self.inner.len()
            }

            fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
                self.inner.contains(name)
            }

            fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
                self.inner.nodes(py)?.try_iter()
            }

            $(
            #[doc = $snapdoc]
            fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                let snap = self.inner.snapshot();
                PyBytes::new(py, &snap.ring.to_snapshot())
            }

            /// Restores a ring from `to_bytes()` output. A snapshot that would
            /// build more than `max_points` points (default 2**22) raises
            /// `LimitExceededError` before doing that work.
            #[classmethod]
            #[pyo3(signature = (data, *, max_points=None))]
            fn from_bytes(
                _cls: &Bound<'_, PyType>,
                py: Python<'_>,
                data: &Bound<'_, PyAny>,
                max_points: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Self> {
                let data = snapshot_bytes(data)?;
                let limits = quorumkit::ring::snapshot::DecodeLimits {
                    max_points: match max_points {
                        None => quorumkit::ring::snapshot::DEFAULT_MAX_POINTS,
                        Some(v) => crate::args::int_in_range(v, "max_points", 0, i64::MAX)? as u64,
                    },
                };
                let ring = py.detach(|| <$core as Snapshot>::from_snapshot_with_limits(&data, &limits));
                let ring = guard(py, || ring)?;
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
            )?

            $($extra)*
        }
    };
}

ring_class!(HashRing, CoreHashRing, "HashRing", weights: u32,
    snapshot: "The ring as a snapshot: versioned, checksummed bytes (docs/snapshots.md) that `from_bytes` restores in any process and from C.", {
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
            Some(nodes) => node_weights(nodes, 1u32)?,
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

    /// Number of points on the ring.
    #[getter]
    fn point_count(&self) -> usize {
        self.inner.read().ring.point_count()
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

ring_class!(KetamaRing, CoreKetamaRing, "KetamaRing", weights: u32,
    snapshot: "The ring as a snapshot: versioned, checksummed bytes (docs/snapshots.md) that `from_bytes` restores in any process and from C.", {
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

    /// Number of points on the ring.
    #[getter]
    fn point_count(&self) -> usize {
        self.inner.read().ring.point_count()
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

ring_class!(RendezvousHash, CoreRendezvous, "RendezvousHash", weights: f64,
    snapshot: "The placement as a snapshot: versioned, checksummed bytes (docs/snapshots.md) that `from_bytes` restores in any process and from C.", {
    #[new]
    #[pyo3(signature = (nodes=None))]
    fn new(py: Python<'_>, nodes: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let nodes = match nodes.filter(|n| !n.is_none()) {
            Some(nodes) => node_weights(nodes, 1.0f64)?,
            None => Vec::new(),
        };
        let hrw = guard(py, || CoreRendezvous::from_nodes(nodes))?;
        Ok(RendezvousHash {
            inner: Shared::new(py, hrw),
        })
    }

    /// Adds a node; only the keys it now wins move, all to it.
    #[pyo3(signature = (name, weight=None), text_signature = "($self, name, weight=1.0)")]
    fn add_node(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = str_arg(name, "name")?;
        let weight = weight.map_or(Ok(1.0), |w| f64_arg(w, "weight"))?;
        self.inner.mutate(py, |r| r.add_node(&name, weight))
    }

    fn __repr__(&self) -> String {
        format!("RendezvousHash(nodes={})", self.inner.len())
    }
});

ring_class!(Maglev, CoreMaglev, "Maglev",
    snapshot: "The table as a snapshot: versioned, checksummed bytes (docs/snapshots.md; backends, weights and table size: the table is rebuilt) that `from_bytes` restores in any process and from C.", {
    #[new]
    #[pyo3(
        signature = (nodes=None, *, table_size=None),
        text_signature = "(nodes=None, *, table_size=65537)"
    )]
    fn new(
        py: Python<'_>,
        nodes: Option<&Bound<'_, PyAny>>,
        table_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let size = match table_size {
            Some(t) => u32_arg(t, "table_size")?,
            None => DEFAULT_TABLE_SIZE,
        };
        let nodes = match nodes.filter(|n| !n.is_none()) {
            Some(nodes) => node_weights(nodes, 1u32)?,
            None => Vec::new(),
        };
        let m = guard(py, || CoreMaglev::from_nodes(size, nodes))?;
        Ok(Maglev {
            inner: Shared::new(py, m),
        })
    }

    /// Adds a backend and rebuilds the table; returns the fraction of
    /// table entries (keys) that changed backend.
    #[pyo3(signature = (name, weight=None), text_signature = "($self, name, weight=1)")]
    fn add_node(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let name = str_arg(name, "name")?;
        let weight = weight.map_or(Ok(1), |w| u32_arg(w, "weight"))?;
        self.change(py, |m| m.add_node(&name, weight))
    }

    /// Removes a backend and rebuilds the table; returns the fraction of
    /// table entries (keys) that changed backend.
    fn remove_node(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<f64> {
        let name = str_arg(name, "name")?;
        self.change(py, |m| m.remove_node(&name))
    }

    /// Changes a backend's weight and rebuilds the table; returns the
    /// fraction of table entries (keys) that changed backend.
    fn set_weight(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let name = str_arg(name, "name")?;
        let weight = u32_arg(weight, "weight")?;
        self.change(py, |m| m.set_weight(&name, weight))
    }

    /// The named backend's weight.
    fn weight(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<u32> {
        let name = str_arg(name, "name")?;
        self.inner.weight(py, &name, |m, i| m.node_weight(i))
    }

    /// The fraction of table entries whose backend differs from `other`'s.
    fn diff(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<f64> {
        let other = other
            .cast::<Maglev>()
            .map_err(|_| type_error(format!("other must be a Maglev, not {}", type_name(other))))?;
        let (a, b) = (self.inner.snapshot(), other.get().inner.snapshot());
        guard(py, || a.ring.diff(&b.ring))
    }

    /// The number of table entries.
    #[getter]
    fn table_size(&self) -> u32 {
        self.inner.read().ring.table_size()
    }

    fn __repr__(&self) -> String {
        let s = self.inner.read();
        format!(
            "Maglev(nodes={}, table_size={})",
            s.ring.len(),
            s.ring.table_size()
        )
    }
});

impl Maglev {
    /// Runs a table-rebuilding change and returns its disruption.
    fn change(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CoreMaglev) -> quorumkit::Result<f64>,
    ) -> PyResult<f64> {
        let mut moved = 0.0;
        self.inner.mutate(py, |m| {
            moved = f(m)?;
            Ok(())
        })?;
        Ok(moved)
    }
}

ring_class!(Md5Ring, CoreMd5Ring, "Md5Ring", weights: u32, {
    #[new]
    #[pyo3(signature = (nodes=None, *, vnodes=None), text_signature = "(nodes=None, *, vnodes=160)")]
    fn new(
        py: Python<'_>,
        nodes: Option<&Bound<'_, PyAny>>,
        vnodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let vnodes = match vnodes {
            Some(v) => u32_arg(v, "vnodes")?,
            None => MD5_DEFAULT_VNODES,
        };
        let nodes = match nodes.filter(|n| !n.is_none()) {
            Some(nodes) => node_weights(nodes, 1u32)?,
            None => Vec::new(),
        };
        let ring = guard(py, || {
            CoreMd5Ring::from_nodes(vnodes, nodes.iter().map(|(n, w)| (n, vnodes, *w)))
        })?;
        Ok(Md5Ring {
            inner: Shared::new(py, ring),
        })
    }

    /// Adds a node with `weight` (0 allowed: a member with no points) and
    /// `vnodes` points per unit of weight (default: the ring's).
    #[pyo3(signature = (name, weight=None, *, vnodes=None), text_signature = "($self, name, weight=1, *, vnodes=None)")]
    fn add_node(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: Option<&Bound<'_, PyAny>>,
        vnodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = str_arg(name, "name")?;
        let weight = weight.map_or(Ok(1), |w| u32_arg(w, "weight"))?;
        let vnodes = vnodes.map(|v| u32_arg(v, "vnodes")).transpose()?;
        self.inner.mutate(py, |r| {
            let v = vnodes.unwrap_or(r.vnodes());
            r.add_node_with_vnodes(&name, v, weight)
        })
    }

    /// Sets the named node's weight and, if given, its vnodes.
    #[pyo3(signature = (name, weight, *, vnodes=None))]
    fn set_node(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        weight: &Bound<'_, PyAny>,
        vnodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = str_arg(name, "name")?;
        let weight = u32_arg(weight, "weight")?;
        let vnodes = vnodes.map(|v| u32_arg(v, "vnodes")).transpose()?;
        self.inner.mutate(py, |r| {
            let v = match vnodes {
                Some(v) => v,
                None => {
                    r.node_config(&name)
                        .ok_or_else(|| quorumkit::Error::NodeNotFound(name.clone()))?
                        .0
                }
            };
            r.set_node(&name, v, weight)
        })
    }

    /// The named node's vnodes.
    fn node_vnodes(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<u32> {
        let name = str_arg(name, "name")?;
        let snap = self.inner.read();
        guard(py, || {
            snap.ring
                .node_config(&name)
                .map(|c| c.0)
                .ok_or(quorumkit::Error::NodeNotFound(name.clone()))
        })
    }

    /// Number of points on the ring.
    #[getter]
    fn point_count(&self) -> usize {
        self.inner.read().ring.point_count()
    }

    /// The ring's vnodes per unit of weight for `add_node`.
    #[getter]
    fn vnodes(&self) -> u32 {
        self.inner.read().ring.vnodes()
    }

    /// md5(key) as a 128-bit big-endian integer: the key's position.
    #[staticmethod]
    fn key_hash(key: &Bound<'_, PyAny>) -> PyResult<u128> {
        Ok(CoreMd5Ring::key_hash(&crate::args::key_bytes(key)?))
    }

    /// Index, in ascending point order, of the first point greater than
    /// the position `hash` (wrapping to 0): uhashring's `get_node_pos`.
    fn point_index(&self, py: Python<'_>, hash: &Bound<'_, PyAny>) -> PyResult<usize> {
        let h = u128_arg(hash)?;
        let snap = self.inner.read();
        guard(py, || snap.ring.point_index(h))
    }

    /// Every point as (128-bit position, node name), ascending.
    fn points<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let snap = self.inner.read();
        let items = (0..snap.ring.point_count())
            .map(|i| {
                let (p, o) = snap.ring.point(i).expect("in range");
                PyTuple::new(
                    py,
                    [
                        p.into_pyobject(py)?.into_any(),
                        snap.names[o].bind(py).clone().into_any(),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.read();
        format!(
            "Md5Ring(nodes={}, points={}, vnodes={})",
            s.ring.len(),
            s.ring.point_count(),
            s.ring.vnodes()
        )
    }
});

/// A 128-bit position: an int in 0..2^128.
fn u128_arg(obj: &Bound<'_, PyAny>) -> PyResult<u128> {
    if !obj.is_instance_of::<pyo3::types::PyInt>() {
        return Err(type_error(format!(
            "hash must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<u128>().map_err(|_| {
        invalid(
            obj.py(),
            format!("hash must be between 0 and 2**128 - 1, got {obj}"),
        )
    })
}

/// Rejects a lone str/bytes where a collection is expected (iterating it
/// would silently give one node per character).
pub fn reject_scalar(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
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

/// `HashRing(nodes)` and friends: an iterable of names (weight `default`)
/// or a mapping name -> weight.
pub(crate) fn node_weights<W: WeightArg + Copy>(
    nodes: &Bound<'_, PyAny>,
    default: W,
) -> PyResult<Vec<(String, W)>> {
    reject_scalar(nodes, "nodes")?;
    let mut out = Vec::new();
    if let Ok(m) = nodes.cast::<PyMapping>() {
        for item in m.items()?.iter() {
            let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            out.push((str_arg(&k, "node name")?, W::from_py(&v, "weight")?));
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
        out.push((str_arg(&name?, "node name")?, default));
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
