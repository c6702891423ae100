//! Consistent-hash placement.
//!
//! Every placement implements [`Placement`]: nodes have dense indices in
//! insertion order (`0..len()`; removing a node shifts the later ones down),
//! a key is located to a node index, and `locate_n` gives a preference list
//! of distinct nodes.
//!
//! - [`HashRing`]: virtual nodes on xxh3-64 ([`crate::hash`]), integer
//!   weights, incremental membership changes.
//! - [`KetamaRing`]: MD5 ketama, bit-exact with libmemcached 1.1.4
//!   (weighted) or uhashring 2.5, chosen by [`KetamaCompat`].
//! - [`BoundedLoad`]: consistent hashing with bounded loads over any
//!   [`Walk`]able ring; [`SharedBoundedLoad`] for many threads.
//! - [`snapshot`]: a versioned binary format to save and restore rings.
//! - [`Rendezvous`]: weighted rendezvous (HRW) hashing, `f64` weights.
//! - [`Maglev`]: Maglev's prime-sized lookup table, integer weights.
//! - [`jump_hash`]: jump consistent hash onto numbered buckets (no
//!   [`Placement`]: it has no node names).
//! - [`Md5Ring`]: uhashring 2.5's default placement (128-bit MD5 points).

mod bounded;
mod continuum;
mod hash_ring;
mod jump;
mod ketama;
mod maglev;
mod md5_ring;
mod nodes;
mod rendezvous;
pub mod snapshot;

pub use bounded::{BoundedLoad, SharedBoundedLoad, Walk, check_balance_factor};
pub use continuum::Continuum;
pub use hash_ring::{DEFAULT_VNODES, HashRing, MAX_POINTS_PER_NODE};
pub use jump::{jump_hash, jump_hash_batch, jump_hash_key};
pub use ketama::{KetamaCompat, KetamaRing, KetamaServer, MEMCACHED_DEFAULT_PORT};
pub use maglev::{DEFAULT_TABLE_SIZE, MAGLEV_SKIP_SEED, MAX_TABLE_SIZE, Maglev, is_prime};
pub use md5_ring::{MD5_DEFAULT_VNODES, Md5Ring, md5_vnode_hash};
pub use rendezvous::{Rendezvous, rendezvous_node_hash, rendezvous_pair_hash, rendezvous_score};
pub use snapshot::Snapshot;

use crate::error::{Error, Result};

/// Operations common to every placement algorithm.
pub trait Placement {
    /// Number of nodes.
    fn len(&self) -> usize;

    /// True when there are no nodes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name of the node at `index`.
    fn node_name(&self, index: usize) -> Option<&str>;

    /// Index of the named node.
    fn node_index(&self, name: &str) -> Option<usize>;

    /// True when the named node is present.
    fn contains(&self, name: &str) -> bool {
        self.node_index(name).is_some()
    }

    /// Weight of the node at `index`. Placements with fractional weights
    /// ([`Rendezvous`]) give `None` for a weight that is not a whole `u32`.
    fn node_weight(&self, index: usize) -> Option<u32>;

    /// Weight of the node at `index` as an `f64`, exact for every placement.
    fn node_weight_f64(&self, index: usize) -> Option<f64> {
        self.node_weight(index).map(f64::from)
    }

    /// Index of the node that owns `key`. Fails with [`Error::EmptyRing`].
    fn locate(&self, key: &[u8]) -> Result<usize>;

    /// The first `n` distinct nodes for `key` in preference order (the
    /// first is `locate(key)`). Fails when `n` exceeds the node count.
    fn locate_n(&self, key: &[u8], n: usize, out: &mut Vec<usize>) -> Result<()>;

    /// Each node's fraction of the hash space, by node index: exact for
    /// rings and Maglev, the expected share `w / Σw` for [`Rendezvous`].
    fn shares(&self) -> Vec<f64>;

    /// Name of the node that owns `key`.
    fn get_node(&self, key: &[u8]) -> Result<&str> {
        let i = self.locate(key)?;
        Ok(self.node_name(i).expect("located index is in range"))
    }

    /// Names of the first `n` distinct nodes for `key`.
    fn get_nodes(&self, key: &[u8], n: usize) -> Result<Vec<&str>> {
        let mut idx = Vec::with_capacity(n);
        self.locate_n(key, n, &mut idx)?;
        Ok(idx
            .into_iter()
            .map(|i| self.node_name(i).expect("located index is in range"))
            .collect())
    }

    /// Locates many keys at once; `out[i]` is the node index of `keys[i]`.
    fn locate_batch<K: AsRef<[u8]>>(&self, keys: &[K], out: &mut Vec<u32>) -> Result<()>
    where
        Self: Sized,
    {
        out.clear();
        if self.is_empty() {
            return Err(Error::EmptyRing);
        }
        out.reserve(keys.len());
        for k in keys {
            out.push(self.locate(k.as_ref())? as u32);
        }
        Ok(())
    }

    /// Node names in index order.
    fn node_names(&self) -> Vec<&str> {
        (0..self.len()).filter_map(|i| self.node_name(i)).collect()
    }
}

/// Membership changes every named placement supports beyond [`Placement`]:
/// removing a node and changing its weight. Types whose inherent methods
/// report more (Maglev's disruption) or are named for their domain
/// (`KetamaRing::remove_server`) keep them; this trait delegates to them so
/// generic code (the C and Python bindings) is written once.
pub trait Membership: Placement {
    /// The weight type: `u32`, or `f64` for [`Rendezvous`].
    type Weight: Copy;

    /// Removes the named node; later node indices shift down by one.
    /// Fails with [`Error::NodeNotFound`].
    fn remove_node(&mut self, name: &str) -> Result<()>;

    /// Changes the named node's weight. Fails with [`Error::NodeNotFound`]
    /// or on a weight the placement does not accept.
    fn set_weight(&mut self, name: &str, weight: Self::Weight) -> Result<()>;

    /// Weight of the node at `index`, exact in [`Self::Weight`].
    fn weight_at(&self, index: usize) -> Option<Self::Weight>;
}

/// Validates a preference-list length against the node count.
pub(crate) fn check_replicas(n: usize, nodes: usize) -> Result<()> {
    if nodes == 0 {
        return Err(Error::EmptyRing);
    }
    if n > nodes {
        return Err(Error::invalid(format!(
            "asked for {n} distinct nodes but the ring has {nodes}"
        )));
    }
    Ok(())
}

/// Validates a node name: non-empty, no NUL byte (C strings end there).
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("node name is empty"));
    }
    if name.contains('\0') {
        return Err(Error::invalid("node name contains a NUL byte"));
    }
    Ok(())
}
