//! What every placement class shares: a thread-safe snapshot of a core
//! ring plus each node's name as a cached Python `str`, and every operation
//! written once over the core's `Placement` trait.
//!
//! Concurrency: the state is an `Arc<Snapshot>` behind an `RwLock`. The
//! lock is only ever held for work that neither waits for the GIL nor runs
//! Python code, so it cannot deadlock with the GIL:
//! - single lookups hold the read lock while they hash, locate and incref
//!   the cached name;
//! - batch lookups clone the `Arc` under the read lock, release it, then
//!   hash with the GIL released on their own snapshot;
//! - membership changes clone the ring, change the clone, and swap it in
//!   under the write lock, so a failed change leaves the ring untouched and
//!   in-flight batches keep their consistent snapshot.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyString, PyTuple};
use quorumkit::ring::Placement;

use crate::args::{append_key, append_key_ptr, count_arg, key_bytes, str_utf8, type_name};
use crate::errors::{guard, invalid, to_pyerr, type_error};

/// A core ring and its node names as Python strings (index-aligned).
pub struct Snapshot<R> {
    pub ring: R,
    pub names: Vec<Py<PyString>>,
}

/// A ring shared between Python threads.
pub struct Shared<R> {
    state: RwLock<Arc<Snapshot<R>>>,
}

impl<R> Shared<R>
where
    R: SplitLocate + Clone + Send + Sync,
{
    pub fn new(py: Python<'_>, ring: R) -> Self {
        let names = (0..ring.len())
            .map(|i| PyString::new(py, ring.node_name(i).unwrap_or_default()).unbind())
            .collect();
        Shared {
            state: RwLock::new(Arc::new(Snapshot { ring, names })),
        }
    }

    /// The current snapshot, read-locked. Lock poisoning cannot leave the
    /// state half-changed (changes are swapped in whole), so it is ignored.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, Arc<Snapshot<R>>> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A reference to the current snapshot that outlives the lock.
    pub fn snapshot(&self) -> Arc<Snapshot<R>> {
        Arc::clone(&self.read())
    }

    /// Like [`Self::snapshot`], but an empty ring is an `EmptyRingError`
    /// (even for an empty batch, as the core's `locate_batch` does).
    fn nonempty_snapshot(&self, py: Python<'_>) -> PyResult<Arc<Snapshot<R>>> {
        let snap = self.snapshot();
        if snap.ring.is_empty() {
            return Err(to_pyerr(py, quorumkit::Error::EmptyRing));
        }
        Ok(snap)
    }

    /// Applies a membership change to a copy of the ring and swaps it in.
    pub fn mutate(
        &self,
        py: Python<'_>,
        change: impl FnOnce(&mut R) -> quorumkit::Result<()>,
    ) -> PyResult<()> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let old = Arc::clone(&state);
        let mut ring = old.ring.clone();
        guard(py, || change(&mut ring))?;
        let names = (0..ring.len())
            .map(|i| {
                let name = ring.node_name(i).unwrap_or_default();
                match old.ring.node_index(name) {
                    Some(j) => old.names[j].clone_ref(py),
                    None => PyString::new(py, name).unbind(),
                }
            })
            .collect();
        let previous = std::mem::replace(&mut *state, Arc::new(Snapshot { ring, names }));
        drop(state);
        // Drop the old snapshot (and its strings' references) unlocked.
        drop(previous);
        drop(old);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.read().ring.len()
    }

    pub fn contains(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        match name.cast::<PyString>() {
            Ok(s) => {
                let b = str_utf8(s)?;
                Ok(std::str::from_utf8(&b).is_ok_and(|n| self.read().ring.contains(n)))
            }
            Err(_) => Ok(false),
        }
    }

    /// The named node's weight, read with `get` (by node index).
    pub fn weight<W>(
        &self,
        py: Python<'_>,
        name: &str,
        get: impl FnOnce(&R, usize) -> Option<W>,
    ) -> PyResult<W> {
        let snap = self.read();
        let idx = snap
            .ring
            .node_index(name)
            .ok_or_else(|| to_pyerr(py, quorumkit::Error::NodeNotFound(name.to_owned())))?;
        guard(py, || {
            get(&snap.ring, idx).ok_or(quorumkit::Error::NodeNotFound(name.to_owned()))
        })
    }

    #[inline]
    pub fn get_node(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyString>> {
        let key = key_bytes(key)?;
        let snap = self.read();
        let i = guard(py, || snap.ring.locate(&key))?;
        Ok(snap.names[i].clone_ref(py))
    }

    /// uhashring's lookup rule: the key is `str(key)` as UTF-8 (a `str`
    /// as is), and a ring where no node holds a point answers `None`.
    #[inline]
    pub fn locate_str(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<PyString>>> {
        let owned;
        let s = match key.cast_exact::<PyString>() {
            Ok(s) => s,
            Err(_) => {
                owned = key.str()?;
                &owned
            }
        };
        let bytes = str_utf8(s)?;
        let snap = self.read();
        match snap.ring.locate(&bytes) {
            Ok(i) => Ok(Some(snap.names[i].clone_ref(py))),
            Err(quorumkit::Error::EmptyRing) => Ok(None),
            Err(e) => Err(to_pyerr(py, e)),
        }
    }

    pub fn get_nodes<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = count_arg(n, "n")?;
        let key = key_bytes(key)?;
        let snap = self.read();
        let mut idx = Vec::new();
        guard(py, || snap.ring.locate_n(&key, n, &mut idx))?;
        PyList::new(py, idx.iter().map(|&i| snap.names[i].bind(py)))
    }

    /// Looks up many keys: `keys` is an iterable of keys, or with
    /// `key_size` one bytes-like object holding fixed-width keys.
    pub fn get_node_batch<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        key_size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let idx = match key_size {
            Some(ks) => {
                let ks = count_arg(ks, "key_size")?;
                if ks == 0 {
                    return Err(invalid(py, "key_size must be at least 1"));
                }
                self.locate_fixed(py, keys, ks)?
            }
            None => self.locate_iter(py, keys)?,
        };
        let (snap, idx) = idx;
        PyList::new(py, idx.iter().map(|&i| snap.names[i as usize].bind(py)))
    }

    fn locate_iter(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
    ) -> PyResult<(Arc<Snapshot<R>>, Vec<u32>)> {
        if keys.is_instance_of::<PyString>()
            || keys.is_instance_of::<PyBytes>()
            || keys.is_instance_of::<PyByteArray>()
            || keys.is_instance_of::<PyMemoryView>()
        {
            return Err(type_error(format!(
                "keys must be an iterable of keys, not one {}; \
                 pass key_size= to split a bytes-like object into fixed-width keys",
                type_name(keys)
            )));
        }
        let hint = keys.len().unwrap_or(0);
        let mut buf: Vec<u8> = Vec::with_capacity(hint * 16);
        // offs[i]..offs[i + 1] is key i.
        let mut offs: Vec<usize> = Vec::with_capacity(hint + 1);
        offs.push(0);
        if let Ok(list) = keys.cast_exact::<PyList>() {
            // Index instead of iterating: no reference count traffic per
            // key. PyList_GetItem bounds-checks, so a list that shrinks
            // under us (a slow-path key conversion can run Python code)
            // raises IndexError instead of reading freed memory.
            for i in 0..list.len() {
                // SAFETY: the GIL is held; the item is borrowed from a live
                // list and `append_key_ptr` takes a strong reference before
                // running any Python code.
                unsafe {
                    let item = ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t);
                    if item.is_null() {
                        return Err(PyErr::fetch(py));
                    }
                    append_key_ptr(py, item, &mut buf)?;
                }
                offs.push(buf.len());
            }
        } else if let Ok(tuple) = keys.cast_exact::<PyTuple>() {
            for i in 0..tuple.len() {
                // SAFETY: as above; tuples are immutable.
                unsafe {
                    let item = ffi::PyTuple_GetItem(tuple.as_ptr(), i as ffi::Py_ssize_t);
                    if item.is_null() {
                        return Err(PyErr::fetch(py));
                    }
                    append_key_ptr(py, item, &mut buf)?;
                }
                offs.push(buf.len());
            }
        } else {
            let it = keys.try_iter().map_err(|_| {
                type_error(format!(
                    "keys must be an iterable of keys, not {}",
                    type_name(keys)
                ))
            })?;
            for k in it {
                append_key(&k?, &mut buf)?;
                offs.push(buf.len());
            }
        }
        let snap = self.nonempty_snapshot(py)?;
        let ring = &snap.ring;
        let (buf, offs) = (&buf[..], &offs[..]);
        let idx = py.detach(|| {
            guard_detached(|| locate_all(ring, offs.len() - 1, |i| &buf[offs[i]..offs[i + 1]]))
        });
        Ok((Arc::clone(&snap), finish(py, idx)?))
    }

    fn locate_fixed(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        key_size: usize,
    ) -> PyResult<(Arc<Snapshot<R>>, Vec<u32>)> {
        // bytes are immutable: borrow them; anything mutable is copied so
        // another thread cannot change it while the GIL is released.
        let bytes: std::borrow::Cow<'_, [u8]> = if let Ok(b) = data.cast::<PyBytes>() {
            std::borrow::Cow::Borrowed(b.as_bytes())
        } else if data.is_instance_of::<PyByteArray>() || data.is_instance_of::<PyMemoryView>() {
            std::borrow::Cow::Owned(key_bytes(data)?.into_owned())
        } else {
            return Err(type_error(format!(
                "with key_size, keys must be bytes, bytearray or memoryview, not {}",
                type_name(data)
            )));
        };
        if !bytes.len().is_multiple_of(key_size) {
            return Err(invalid(
                py,
                format!(
                    "keys has {} bytes, not a multiple of key_size {key_size}",
                    bytes.len()
                ),
            ));
        }
        let snap = self.nonempty_snapshot(py)?;
        let ring = &snap.ring;
        let data: &[u8] = &bytes;
        let idx = py.detach(|| {
            guard_detached(|| {
                locate_all(ring, data.len() / key_size, |i| {
                    &data[i * key_size..(i + 1) * key_size]
                })
            })
        });
        Ok((Arc::clone(&snap), finish(py, idx)?))
    }

    pub fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let snap = self.read();
        PyList::new(py, snap.names.iter().map(|n| n.bind(py)))
    }

    pub fn shares<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snap = self.read();
        let shares = guard(py, || Ok(snap.ring.shares()))?;
        let d = PyDict::new(py);
        for (name, share) in snap.names.iter().zip(shares) {
            d.set_item(name.bind(py), share)?;
        }
        Ok(d)
    }
}

/// Batches at least this large are split across threads.
const PARALLEL_MIN_KEYS: usize = 1 << 16;
/// Keys per thread at least, and threads at most.
const PARALLEL_CHUNK: usize = 1 << 15;
const PARALLEL_MAX_THREADS: usize = 8;

/// Hash-then-locate, split so batches can hash a block of keys before
/// looking any of them up: the hashing loop and the lookup loop each run
/// faster alone (the lookups' memory accesses overlap better) than fused
/// in `Placement::locate`. Both steps are the core's own functions.
pub trait SplitLocate: Placement {
    type Hash: Copy + Default;
    fn hash_key(key: &[u8]) -> Self::Hash;
    fn locate_hashed(&self, h: Self::Hash) -> quorumkit::Result<usize>;
}

impl SplitLocate for quorumkit::ring::HashRing {
    type Hash = u64;
    #[inline]
    fn hash_key(key: &[u8]) -> u64 {
        quorumkit::hash::key_hash(key)
    }
    #[inline]
    fn locate_hashed(&self, h: u64) -> quorumkit::Result<usize> {
        self.locate_hash(h)
    }
}

impl SplitLocate for quorumkit::ring::KetamaRing {
    type Hash = u32;
    #[inline]
    fn hash_key(key: &[u8]) -> u32 {
        quorumkit::ring::KetamaRing::key_hash(key)
    }
    #[inline]
    fn locate_hashed(&self, h: u32) -> quorumkit::Result<usize> {
        self.locate_hash(h)
    }
}

impl SplitLocate for quorumkit::ring::Md5Ring {
    type Hash = u128;
    #[inline]
    fn hash_key(key: &[u8]) -> u128 {
        quorumkit::ring::Md5Ring::key_hash(key)
    }
    #[inline]
    fn locate_hashed(&self, h: u128) -> quorumkit::Result<usize> {
        self.locate_hash(h)
    }
}

impl SplitLocate for quorumkit::ring::Rendezvous {
    type Hash = u64;
    #[inline]
    fn hash_key(key: &[u8]) -> u64 {
        quorumkit::hash::key_hash(key)
    }
    #[inline]
    fn locate_hashed(&self, h: u64) -> quorumkit::Result<usize> {
        self.locate_hash(h)
    }
}

impl SplitLocate for quorumkit::ring::Maglev {
    type Hash = u64;
    #[inline]
    fn hash_key(key: &[u8]) -> u64 {
        quorumkit::hash::key_hash(key)
    }
    #[inline]
    fn locate_hashed(&self, h: u64) -> quorumkit::Result<usize> {
        self.locate_hash(h)
    }
}

/// Keys hashed per block before their lookups.
const HASH_BLOCK: usize = 256;

/// Locates keys `0..n` (`key(i)` gives key i's bytes), on several threads
/// for large batches. Runs with the GIL released.
fn locate_all<'k, R, K>(ring: &R, n: usize, key: K) -> quorumkit::Result<Vec<u32>>
where
    R: SplitLocate + Sync,
    K: Fn(usize) -> &'k [u8] + Sync,
{
    let mut out = vec![0u32; n];
    let seq = |first: usize, out: &mut [u32]| -> quorumkit::Result<()> {
        let mut hashes = [R::Hash::default(); HASH_BLOCK];
        for (b, block) in out.chunks_mut(HASH_BLOCK).enumerate() {
            let base = first + b * HASH_BLOCK;
            for (j, h) in hashes[..block.len()].iter_mut().enumerate() {
                *h = R::hash_key(key(base + j));
            }
            for (slot, &h) in block.iter_mut().zip(&hashes) {
                *slot = ring.locate_hashed(h)? as u32;
            }
        }
        Ok(())
    };
    let threads = if n < PARALLEL_MIN_KEYS {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .min(PARALLEL_MAX_THREADS)
            .min(n / PARALLEL_CHUNK)
    };
    if threads <= 1 {
        seq(0, &mut out)?;
        return Ok(out);
    }
    let per = n.div_ceil(threads);
    let mut spawn_failed = false;
    std::thread::scope(|s| {
        let seq = &seq;
        let mut chunks = out.chunks_mut(per).enumerate();
        // The calling thread takes the first chunk itself.
        let (_, mine) = chunks.next().expect("n > 0");
        let mut handles = Vec::new();
        for (c, chunk) in chunks {
            let first = c * per;
            let builder = std::thread::Builder::new().name("quorumkit-batch".into());
            match builder.spawn_scoped(s, move || seq(first, chunk)) {
                Ok(h) => handles.push(h),
                Err(_) => spawn_failed = true,
            }
        }
        let mut result = seq(0, mine);
        for h in handles {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            result = result.and(r);
        }
        result
    })?;
    if spawn_failed {
        // A thread could not start (resource limits): redo it all here.
        seq(0, &mut out)?;
    }
    Ok(out)
}

/// Outcome of work done with the GIL released: a core error or a panic.
enum Detached {
    Core(quorumkit::Error),
    Panic(Box<dyn std::any::Any + Send>),
}

fn guard_detached<T>(f: impl FnOnce() -> quorumkit::Result<T>) -> Result<T, Detached> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Detached::Core(e)),
        Err(p) => Err(Detached::Panic(p)),
    }
}

fn finish<T>(py: Python<'_>, r: Result<T, Detached>) -> PyResult<T> {
    r.map_err(|e| match e {
        Detached::Core(e) => to_pyerr(py, e),
        Detached::Panic(p) => crate::errors::panic_err(py, p),
    })
}
