//! A consistent-hash ring with weighted virtual nodes on xxh3-64.
//!
//! Placement (fixed forever, see docs/rings.md): node `name` with
//! weight `w` has `vnodes * w` points at `vnode_hash(name, i)` for
//! `i in 0..vnodes*w`; a key goes to the first point at or after
//! `key_hash(key)`, wrapping around. Points at the same position are
//! ordered by node name (bytewise), so placement never depends on the order
//! nodes were added in.

use super::nodes::{Named, NodeSet};
use super::{Continuum, Membership, Placement, check_name, check_replicas};
use crate::error::{Error, Result};
use crate::hash::{key_hash, vnode_hash};

/// Virtual nodes per unit of weight, unless chosen otherwise.
pub const DEFAULT_VNODES: u32 = 160;

/// Upper bound on `vnodes * weight` for one node.
pub const MAX_POINTS_PER_NODE: u64 = 1 << 24;

#[derive(Debug, Clone)]
struct Node {
    name: String,
    weight: u32,
}

impl Named for Node {
    fn name(&self) -> &str {
        &self.name
    }
}

/// A weighted virtual-node ring. Lookups take `&self` and are safe to run
/// from many threads at once; membership changes take `&mut self`.
#[derive(Debug, Clone)]
pub struct HashRing {
    vnodes: u32,
    nodes: NodeSet<Node>,
    continuum: Continuum,
}

impl Default for HashRing {
    fn default() -> Self {
        Self::new()
    }
}

impl HashRing {
    /// An empty ring with [`DEFAULT_VNODES`] virtual nodes per unit of weight.
    pub fn new() -> Self {
        HashRing {
            vnodes: DEFAULT_VNODES,
            nodes: NodeSet::default(),
            continuum: Continuum::default(),
        }
    }

    /// An empty ring with `vnodes` virtual nodes per unit of weight (>= 1).
    pub fn with_vnodes(vnodes: u32) -> Result<Self> {
        if vnodes == 0 {
            return Err(Error::invalid("vnodes must be at least 1"));
        }
        let mut r = Self::new();
        r.vnodes = vnodes;
        Ok(r)
    }

    /// A ring with `vnodes` virtual nodes per unit of weight over `nodes`
    /// (name, weight), built with one sort instead of one merge per node.
    /// The same placement as adding the nodes one by one.
    pub fn from_nodes<S: AsRef<str>>(
        vnodes: u32,
        nodes: impl IntoIterator<Item = (S, u32)>,
    ) -> Result<Self> {
        let mut ring = Self::with_vnodes(vnodes)?;
        let mut points: Vec<(u64, u32)> = Vec::new();
        for (name, weight) in nodes {
            let name = name.as_ref();
            check_name(name)?;
            let count = ring.points_for(weight)?;
            ring.nodes.check_absent(name)?;
            let idx = ring.nodes.push(Node {
                name: name.to_owned(),
                weight,
            }) as u32;
            points.extend((0..count).map(|i| (vnode_hash(name, i), idx)));
        }
        let names = &ring.nodes;
        points.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| names[a.1 as usize].name.cmp(&names[b.1 as usize].name))
        });
        let (pts, owners) = points.into_iter().unzip();
        ring.continuum = Continuum::from_sorted(pts, owners);
        Ok(ring)
    }

    /// Virtual nodes per unit of weight.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Total number of points on the ring.
    pub fn point_count(&self) -> usize {
        self.continuum.len()
    }

    /// The sorted points and their owners (node indices).
    pub fn continuum(&self) -> &Continuum {
        &self.continuum
    }

    /// Weight of the named node.
    pub fn weight(&self, name: &str) -> Option<u32> {
        self.nodes.by_name(name).map(|n| n.weight)
    }

    fn points_for(&self, weight: u32) -> Result<u32> {
        if weight == 0 {
            return Err(Error::invalid("weight must be at least 1"));
        }
        let n = self.vnodes as u64 * weight as u64;
        if n > MAX_POINTS_PER_NODE {
            return Err(Error::invalid(format!(
                "vnodes * weight = {n} exceeds the limit of {MAX_POINTS_PER_NODE} points per node"
            )));
        }
        Ok(n as u32)
    }

    /// Adds a node. Only the keys that now belong to it move.
    pub fn add_node(&mut self, name: &str, weight: u32) -> Result<()> {
        check_name(name)?;
        self.nodes.check_absent(name)?;
        let count = self.points_for(weight)?;
        let idx = self.nodes.len();
        if idx >= u32::MAX as usize {
            return Err(Error::invalid("too many nodes"));
        }
        self.nodes.push(Node {
            name: name.to_owned(),
            weight,
        });
        self.merge_points(idx as u32, count);
        Ok(())
    }

    /// Removes a node. Only the keys it owned move.
    pub fn remove_node(&mut self, name: &str) -> Result<()> {
        let idx = self.nodes.remove(name)?;
        self.continuum = self.continuum.without_owner(idx as u32, true);
        Ok(())
    }

    /// Changes a node's weight. Virtual node `i` has the same position at
    /// every weight, so only keys moving to or from this node move.
    pub fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        let idx = self.nodes.find(name)?;
        let count = self.points_for(weight)?;
        if self.nodes[idx].weight == weight {
            return Ok(());
        }
        self.nodes[idx].weight = weight;
        self.continuum = self.continuum.without_owner(idx as u32, false);
        self.merge_points(idx as u32, count);
        Ok(())
    }

    /// Merges `count` fresh points of node `idx` into the sorted continuum:
    /// O(P + count log count), no rehash of other nodes.
    fn merge_points(&mut self, idx: u32, count: u32) {
        let name = self.nodes[idx as usize].name.clone();
        let mut fresh: Vec<u64> = (0..count).map(|i| vnode_hash(&name, i)).collect();
        fresh.sort_unstable();
        let old_p = self.continuum.points();
        let old_o = self.continuum.owners();
        let mut pts = Vec::with_capacity(old_p.len() + fresh.len());
        let mut owners = Vec::with_capacity(old_p.len() + fresh.len());
        let (mut i, mut j) = (0, 0);
        while i < old_p.len() || j < fresh.len() {
            let take_old = if i == old_p.len() {
                false
            } else if j == fresh.len() {
                true
            } else if old_p[i] != fresh[j] {
                old_p[i] < fresh[j]
            } else {
                // Tie: the bytewise smaller name comes first.
                self.nodes[old_o[i] as usize].name.as_bytes() < name.as_bytes()
            };
            if take_old {
                pts.push(old_p[i]);
                owners.push(old_o[i]);
                i += 1;
            } else {
                pts.push(fresh[j]);
                owners.push(idx);
                j += 1;
            }
        }
        self.continuum = Continuum::from_sorted(pts, owners);
    }

    /// Index of the node owning a key that is already hashed with
    /// [`crate::hash::key_hash`]. Fails on an empty ring.
    #[inline]
    pub fn locate_hash(&self, h: u64) -> Result<usize> {
        if self.continuum.is_empty() {
            return Err(Error::EmptyRing);
        }
        Ok(self.continuum.owner_at_or_after(h) as usize)
    }

    /// Nodes and weights in index order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.nodes.iter().map(|n| (n.name.as_str(), n.weight))
    }
}

impl Membership for HashRing {
    type Weight = u32;

    fn remove_node(&mut self, name: &str) -> Result<()> {
        HashRing::remove_node(self, name)
    }

    fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        HashRing::set_weight(self, name, weight)
    }

    fn weight_at(&self, index: usize) -> Option<u32> {
        self.node_weight(index)
    }
}

impl Placement for HashRing {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn node_name(&self, index: usize) -> Option<&str> {
        self.nodes.name(index)
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.position(name)
    }

    fn node_weight(&self, index: usize) -> Option<u32> {
        self.nodes.get(index).map(|n| n.weight)
    }

    #[inline]
    fn locate(&self, key: &[u8]) -> Result<usize> {
        self.locate_hash(key_hash(key))
    }

    fn locate_n(&self, key: &[u8], n: usize, out: &mut Vec<usize>) -> Result<()> {
        check_replicas(n, self.nodes.len())?;
        let mut owners = Vec::with_capacity(n);
        self.continuum
            .distinct_owners(key_hash(key), n, self.nodes.len(), &mut owners);
        out.clear();
        out.extend(owners.into_iter().map(|o| o as usize));
        Ok(())
    }

    fn shares(&self) -> Vec<f64> {
        self.continuum.shares(self.nodes.len())
    }
}
