//! What every placement handle (`qk_ring`, `qk_ketama`, `qk_rendezvous`,
//! `qk_maglev`) shares:
//! a [`Handle`] around a core [`Placement`] that keeps C copies of the node
//! names, and the bodies of the lookup and membership functions, written
//! once over [`CHandle`] and called by each type's thin `extern "C"` shims.

use std::ffi::{CString, c_char};

use super::args::{Out, arg_key, arg_mut, arg_ref, arg_slice, arg_slice_mut, arg_str, c_name};
use super::boundary::{Failure, FfiResult};
use crate::error::Result;
use crate::ring::{HashRing, KetamaRing, Md5Ring, Membership, Placement};

/// Placements made of points on a continuum.
pub(crate) trait Points: Placement {
    fn point_count(&self) -> usize;
}

impl Points for HashRing {
    fn point_count(&self) -> usize {
        HashRing::point_count(self)
    }
}

impl Points for KetamaRing {
    fn point_count(&self) -> usize {
        KetamaRing::point_count(self)
    }
}

impl Points for Md5Ring {
    fn point_count(&self) -> usize {
        Md5Ring::point_count(self)
    }
}

/// A placement plus NUL-terminated copies of its node names, so that
/// `qk_*_node_name` can lend C a `const char *` that stays valid until the
/// next mutation.
pub(crate) struct Handle<P> {
    inner: P,
    names: Vec<CString>,
}

impl<P: Membership> Handle<P> {
    pub(crate) fn new(inner: P) -> Self {
        let mut h = Handle {
            inner,
            names: Vec::new(),
        };
        h.sync_names();
        h
    }

    fn sync_names(&mut self) {
        self.names = (0..self.inner.len())
            .filter_map(|i| self.inner.node_name(i))
            .map(c_name)
            .collect();
    }

    /// The placement, read-only.
    pub(crate) fn get(&self) -> &P {
        &self.inner
    }

    /// Runs a membership change and refreshes the name copies.
    pub(crate) fn mutate(&mut self, change: impl FnOnce(&mut P) -> Result<()>) -> FfiResult {
        let result = change(&mut self.inner);
        self.sync_names();
        result.map_err(Failure::from)
    }
}

/// A C handle type wrapping a [`Handle`].
pub(crate) trait CHandle {
    type P: Membership;
    /// The handle argument's C name, for error messages.
    const ARG: &'static str;
    fn handle(&self) -> &Handle<Self::P>;
    fn handle_mut(&mut self) -> &mut Handle<Self::P>;
}

/// Borrows the handle behind `h`.
///
/// # Safety
/// `h` is NULL or a live handle of type `H`, not mutated during `'a`.
pub(crate) unsafe fn handle<'a, H: CHandle + 'a>(h: *const H) -> FfiResult<&'a Handle<H::P>> {
    // SAFETY: the caller's contract.
    Ok(unsafe { arg_ref(h, H::ARG) }?.handle())
}

/// Borrows the handle behind `h` mutably.
///
/// # Safety
/// `h` is NULL or a live handle of type `H`, not otherwise accessed during `'a`.
pub(crate) unsafe fn handle_mut<'a, H: CHandle + 'a>(h: *mut H) -> FfiResult<&'a mut Handle<H::P>> {
    // SAFETY: the caller's contract.
    Ok(unsafe { arg_mut(h, H::ARG) }?.handle_mut())
}

// The bodies below share one contract, stated once here and on every
// exported function: `h` is NULL or a live handle; buffers point to at
// least as many readable (or writable) elements as their lengths say;
// out-parameters are NULL or writable. Each checks every pointer before
// doing any work and writes its out-parameters only on success.

/// Removes the named node.
pub(crate) unsafe fn remove<H: CHandle>(h: *mut H, name: *const c_char, len: usize) -> FfiResult {
    let (h, name) = unsafe { (handle_mut(h)?, arg_str(name, len, "name")?) };
    h.mutate(|p| p.remove_node(name))
}

/// Sets the named node's weight.
pub(crate) unsafe fn set_weight<H: CHandle>(
    h: *mut H,
    name: *const c_char,
    len: usize,
    weight: <H::P as Membership>::Weight,
) -> FfiResult {
    let (h, name) = unsafe { (handle_mut(h)?, arg_str(name, len, "name")?) };
    h.mutate(|p| p.set_weight(name, weight))
}

fn index_of<P: Placement>(p: &P, name: &str) -> FfiResult<usize> {
    p.node_index(name)
        .ok_or_else(|| Failure::not_found(format!("node not found: {name:?}")))
}

/// The named node's weight.
pub(crate) unsafe fn weight<H: CHandle>(
    h: *const H,
    name: *const c_char,
    len: usize,
    weight_out: *mut <H::P as Membership>::Weight,
) -> FfiResult {
    let (h, name, out) = unsafe {
        (
            handle(h)?,
            arg_str(name, len, "name")?,
            Out::new(weight_out, "weight_out")?,
        )
    };
    let p = h.get();
    let i = index_of(p, name)?;
    out.set(p.weight_at(i).expect("index from node_index"));
    Ok(())
}

/// The number of nodes.
pub(crate) unsafe fn node_count<H: CHandle>(h: *const H, count_out: *mut usize) -> FfiResult {
    let (h, out) = unsafe { (handle(h)?, Out::new(count_out, "count_out")?) };
    out.set(h.get().len());
    Ok(())
}

/// The number of points on the continuum.
pub(crate) unsafe fn point_count<H: CHandle>(h: *const H, count_out: *mut usize) -> FfiResult
where
    H::P: Points,
{
    let (h, out) = unsafe { (handle(h)?, Out::new(count_out, "count_out")?) };
    out.set(h.get().point_count());
    Ok(())
}

/// The name of node `index`, borrowed from the handle.
pub(crate) unsafe fn node_name<H: CHandle>(
    h: *const H,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
) -> FfiResult {
    let (h, name_out, len_out) = unsafe {
        (
            handle(h)?,
            Out::new(name_out, "name_out")?,
            Out::new(name_len_out, "name_len_out")?,
        )
    };
    let name = h.names.get(index).ok_or_else(|| {
        Failure::not_found(format!(
            "no node at index {index}: there are {} nodes",
            h.names.len()
        ))
    })?;
    name_out.set(name.as_ptr());
    len_out.set(name.as_bytes().len());
    Ok(())
}

/// The index of the named node.
pub(crate) unsafe fn node_index<H: CHandle>(
    h: *const H,
    name: *const c_char,
    len: usize,
    index_out: *mut usize,
) -> FfiResult {
    let (h, name, out) = unsafe {
        (
            handle(h)?,
            arg_str(name, len, "name")?,
            Out::new(index_out, "index_out")?,
        )
    };
    out.set(index_of(h.get(), name)?);
    Ok(())
}

/// Hashes a key with `hash` into `*hash_out`.
pub(crate) unsafe fn hash_key<T>(
    key: *const u8,
    key_len: usize,
    hash_out: *mut T,
    hash: impl FnOnce(&[u8]) -> T,
) -> FfiResult {
    let (key, out) = unsafe {
        (
            arg_key(key, key_len, "key")?,
            Out::new(hash_out, "hash_out")?,
        )
    };
    out.set(hash(key));
    Ok(())
}

/// Locates through `locate` (a key, a pre-hashed key, ...).
pub(crate) unsafe fn locate_with<H: CHandle>(
    h: *const H,
    index_out: *mut usize,
    locate: impl FnOnce(&H::P) -> Result<usize>,
) -> FfiResult {
    let (h, out) = unsafe { (handle(h)?, Out::new(index_out, "index_out")?) };
    out.set(locate(h.get())?);
    Ok(())
}

/// The node owning a key.
pub(crate) unsafe fn get_node<H: CHandle>(
    h: *const H,
    key: *const u8,
    key_len: usize,
    index_out: *mut usize,
) -> FfiResult {
    let key = unsafe { arg_key(key, key_len, "key") }?;
    unsafe { locate_with(h, index_out, |p| p.locate(key)) }
}

/// The first `n` distinct nodes for a key into a caller array of `n`.
pub(crate) unsafe fn get_nodes<H: CHandle>(
    h: *const H,
    key: *const u8,
    key_len: usize,
    n: usize,
    indices_out: *mut usize,
) -> FfiResult {
    let (h, key, out) = unsafe {
        (
            handle(h)?,
            arg_key(key, key_len, "key")?,
            arg_slice_mut(indices_out, n, "indices_out")?,
        )
    };
    let mut found = Vec::with_capacity(n);
    h.get().locate_n(key, n, &mut found)?;
    out.copy_from_slice(&found);
    Ok(())
}

/// Locates `count` keys into a caller array of `count` indices.
pub(crate) unsafe fn get_node_batch<H: CHandle>(
    h: *const H,
    keys: *const *const u8,
    key_lens: *const usize,
    count: usize,
    indices_out: *mut usize,
) -> FfiResult {
    let (h, keys, lens, out) = unsafe {
        (
            handle(h)?,
            arg_slice(keys, count, "keys")?,
            arg_slice(key_lens, count, "key_lens")?,
            arg_slice_mut(indices_out, count, "indices_out")?,
        )
    };
    let p = h.get();
    if p.is_empty() {
        return Err(crate::Error::EmptyRing.into());
    }
    // Check every key before writing anything: after that, on a ring with
    // nodes, no lookup can fail, so the output is written only on success.
    for (i, (&k, &len)) in keys.iter().zip(lens).enumerate() {
        unsafe { arg_key(k, len, "key") }
            .map_err(|e| Failure::new(e.status, format!("keys[{i}]: {}", e.message)))?;
    }
    for ((slot, &k), &len) in out.iter_mut().zip(keys).zip(lens) {
        *slot = p.locate(unsafe { arg_key(k, len, "key") }?)?;
    }
    Ok(())
}

/// Locates `count` keys laid end to end in one buffer: key `i` is
/// `keys[offsets[i]..offsets[i + 1]]` (so `offsets` holds `count + 1`
/// non-decreasing entries, the last at most `keys_len`). One flat buffer is
/// what Go and JavaScript can pass without a copy per key.
pub(crate) unsafe fn get_node_batch_flat<H: CHandle>(
    h: *const H,
    keys: *const u8,
    keys_len: usize,
    offsets: *const usize,
    count: usize,
    indices_out: *mut usize,
) -> FfiResult {
    let n_offsets = if count == 0 { 0 } else { count + 1 };
    let (h, keys, offsets, out) = unsafe {
        (
            handle(h)?,
            arg_key(keys, keys_len, "keys")?,
            arg_slice(offsets, n_offsets, "offsets")?,
            arg_slice_mut(indices_out, count, "indices_out")?,
        )
    };
    let p = h.get();
    if p.is_empty() {
        return Err(crate::Error::EmptyRing.into());
    }
    // Check every offset before writing anything.
    for (i, w) in offsets.windows(2).enumerate() {
        if w[0] > w[1] || w[1] > keys.len() {
            return Err(Failure::invalid(format!(
                "offsets[{i}..={}] = {}..{} is not a range within the {} key bytes",
                i + 1,
                w[0],
                w[1],
                keys.len()
            )));
        }
    }
    for (slot, w) in out.iter_mut().zip(offsets.windows(2)) {
        *slot = p.locate(&keys[w[0]..w[1]])?;
    }
    Ok(())
}

/// Each node's share of the hash space, by node index.
pub(crate) unsafe fn shares<H: CHandle>(
    h: *const H,
    shares_out: *mut f64,
    cap: usize,
) -> FfiResult {
    let (h, out) = unsafe { (handle(h)?, arg_slice_mut(shares_out, cap, "shares_out")?) };
    let p = h.get();
    if cap < p.len() {
        return Err(Failure::too_small("shares_out", p.len(), cap));
    }
    out[..p.len()].copy_from_slice(&p.shares());
    Ok(())
}
