//! uhashring's default placement: 128-bit MD5 points, bit-exact with
//! uhashring 2.5 `HashRing(nodes)` (no `hash_fn`).
//!
//! Read from uhashring's `ring_meta.py` and `ring.py` and verified against
//! uhashring itself in `python/tests/test_compat_uhashring.py`:
//!
//! - a node `name` with `vnodes` and `weight` has `vnodes * weight` points,
//!   point `i` at `int(md5("{name}-{i}").hexdigest(), 16)`: the digest read
//!   as a big-endian 128-bit integer ([`md5_u128`]);
//! - a key's position is the same of its bytes (uhashring hashes
//!   `str(key)` as UTF-8);
//! - a key goes to the first point strictly greater than its position
//!   (`bisect_right`), wrapping to the smallest point.
//!
//! A node may have zero points (weight or vnodes 0), as in uhashring: it is
//! a member that owns no keys.
//!
//! Lookups use the [`Continuum`] prefix index on the top 64 bits of each
//! point, then compare the low 64 bits only among points whose top halves
//! equal the key's (in practice never more than one), so the answer is the
//! exact 128-bit `bisect_right`.

use super::nodes::{Named, NodeSet};
use super::{Continuum, MAX_POINTS_PER_NODE, Membership, Placement, check_name, check_replicas};
use crate::error::{Error, Result};
use crate::hash::md5_u128;

/// uhashring's default virtual nodes per unit of weight.
pub const MD5_DEFAULT_VNODES: u32 = 160;

#[derive(Debug, Clone)]
struct Node {
    name: String,
    vnodes: u32,
    weight: u32,
}

impl Named for Node {
    fn name(&self) -> &str {
        &self.name
    }
}

/// uhashring's default ring. Lookups take `&self` and may run from many
/// threads at once; membership changes take `&mut self`.
#[derive(Debug, Clone)]
pub struct Md5Ring {
    vnodes: u32,
    nodes: NodeSet<Node>,
    /// Top 64 bits of each point, ascending, with the owners.
    hi: Continuum,
    /// Low 64 bits of each point, in the same order.
    lo: Vec<u64>,
}

impl Default for Md5Ring {
    fn default() -> Self {
        Self::new()
    }
}

/// The position of point `i` of node `name`: md5 of `"{name}-{i}"`.
pub fn md5_vnode_hash(name: &str, i: u32) -> u128 {
    md5_u128(format!("{name}-{i}").as_bytes())
}

impl Md5Ring {
    /// An empty ring with [`MD5_DEFAULT_VNODES`] per unit of weight.
    pub fn new() -> Self {
        Md5Ring {
            vnodes: MD5_DEFAULT_VNODES,
            nodes: NodeSet::default(),
            hi: Continuum::default(),
            lo: Vec::new(),
        }
    }

    /// An empty ring whose [`Self::add_node`] gives `vnodes` points per
    /// unit of weight (any value, 0 included, as in uhashring).
    pub fn with_vnodes(vnodes: u32) -> Self {
        Md5Ring {
            vnodes,
            ..Self::new()
        }
    }

    /// A ring over `(name, vnodes, weight)` in this order, built with one
    /// sort. `default_vnodes` is what later [`Self::add_node`] calls use.
    pub fn from_nodes<S: AsRef<str>>(
        default_vnodes: u32,
        nodes: impl IntoIterator<Item = (S, u32, u32)>,
    ) -> Result<Self> {
        let mut ring = Self::with_vnodes(default_vnodes);
        for (name, vnodes, weight) in nodes {
            let name = name.as_ref();
            ring.check_new(name, vnodes, weight)?;
            ring.nodes.push(Node {
                name: name.to_owned(),
                vnodes,
                weight,
            });
        }
        ring.rebuild();
        Ok(ring)
    }

    fn check_new(&self, name: &str, vnodes: u32, weight: u32) -> Result<()> {
        check_name(name)?;
        self.nodes.check_absent(name)?;
        points_for(vnodes, weight)?;
        Ok(())
    }

    /// Virtual nodes per unit of weight for [`Self::add_node`].
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The named node's (vnodes, weight).
    pub fn node_config(&self, name: &str) -> Option<(u32, u32)> {
        self.nodes.by_name(name).map(|n| (n.vnodes, n.weight))
    }

    /// Total number of points.
    pub fn point_count(&self) -> usize {
        self.lo.len()
    }

    /// Point `i` in ascending order as (position, owner index).
    pub fn point(&self, i: usize) -> Option<(u128, usize)> {
        let hi = *self.hi.points().get(i)?;
        Some((
            ((hi as u128) << 64) | self.lo[i] as u128,
            self.hi.owners()[i] as usize,
        ))
    }

    /// A key's position: md5 of its bytes as a big-endian 128-bit integer.
    #[inline]
    pub fn key_hash(key: &[u8]) -> u128 {
        md5_u128(key)
    }

    /// Adds a node with the ring's vnodes per unit of weight.
    pub fn add_node(&mut self, name: &str, weight: u32) -> Result<()> {
        self.add_node_with_vnodes(name, self.vnodes, weight)
    }

    /// Adds a node with its own `vnodes`. Only the keys that now belong to
    /// it move.
    pub fn add_node_with_vnodes(&mut self, name: &str, vnodes: u32, weight: u32) -> Result<()> {
        self.check_new(name, vnodes, weight)?;
        if self.nodes.len() >= u32::MAX as usize {
            return Err(Error::invalid("too many nodes"));
        }
        let idx = self.nodes.push(Node {
            name: name.to_owned(),
            vnodes,
            weight,
        });
        self.merge(idx);
        Ok(())
    }

    /// Sets the named node's vnodes and weight, keeping its index. Point
    /// `i` sits at the same position whatever the count, so only keys
    /// moving to or from this node move.
    pub fn set_node(&mut self, name: &str, vnodes: u32, weight: u32) -> Result<()> {
        let idx = self.nodes.find(name)?;
        points_for(vnodes, weight)?;
        let n = &mut self.nodes[idx];
        if (n.vnodes, n.weight) == (vnodes, weight) {
            return Ok(());
        }
        (n.vnodes, n.weight) = (vnodes, weight);
        self.retain(|o| o != idx as u32, |o| o);
        self.merge(idx);
        Ok(())
    }

    /// Sets the named node's weight, keeping its vnodes.
    pub fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        let vnodes = self.nodes[self.nodes.find(name)?].vnodes;
        self.set_node(name, vnodes, weight)
    }

    /// Removes the named node; only the keys it owned move, later node
    /// indices shift down by one.
    pub fn remove_node(&mut self, name: &str) -> Result<()> {
        let idx = self.nodes.remove(name)?;
        let gone = idx as u32;
        self.retain(|o| o != gone, |o| if o > gone { o - 1 } else { o });
        Ok(())
    }

    /// Keeps the points whose owner passes `keep`, renumbering owners.
    fn retain(&mut self, keep: impl Fn(u32) -> bool, renumber: impl Fn(u32) -> u32) {
        let mut hi = Vec::with_capacity(self.lo.len());
        let mut lo = Vec::with_capacity(self.lo.len());
        let mut owners = Vec::with_capacity(self.lo.len());
        for ((&h, &l), &o) in self.hi.points().iter().zip(&self.lo).zip(self.hi.owners()) {
            if keep(o) {
                hi.push(h);
                lo.push(l);
                owners.push(renumber(o));
            }
        }
        self.hi = Continuum::from_sorted(hi, owners);
        self.lo = lo;
    }

    /// Merges node `idx`'s points into the sorted points.
    fn merge(&mut self, idx: usize) {
        let n = &self.nodes[idx];
        let count = n.vnodes * n.weight; // checked by points_for
        let mut fresh: Vec<u128> = (0..count).map(|i| md5_vnode_hash(&n.name, i)).collect();
        fresh.sort_unstable();
        let mut all: Vec<(u128, u32)> = Vec::with_capacity(self.lo.len() + fresh.len());
        let mut old = (0..self.lo.len()).map(|i| self.point(i).expect("in range"));
        let mut fresh = fresh.into_iter().peekable();
        let mut next_old = old.next();
        // Points are distinct: equal points would need equal "{name}-{i}"
        // strings, and names are unique.
        while next_old.is_some() || fresh.peek().is_some() {
            match (next_old, fresh.peek()) {
                (Some((p, o)), Some(&f)) if p <= f => {
                    all.push((p, o as u32));
                    next_old = old.next();
                }
                (Some((p, o)), None) => {
                    all.push((p, o as u32));
                    next_old = old.next();
                }
                (_, Some(&f)) => {
                    all.push((f, idx as u32));
                    fresh.next();
                }
                (None, None) => unreachable!("loop condition"),
            }
        }
        self.set_points(all);
    }

    /// Recomputes every point (bulk build).
    fn rebuild(&mut self) {
        let mut all: Vec<(u128, u32)> = Vec::new();
        for (idx, n) in self.nodes.iter().enumerate() {
            all.extend((0..n.vnodes * n.weight).map(|i| (md5_vnode_hash(&n.name, i), idx as u32)));
        }
        all.sort_unstable();
        self.set_points(all);
    }

    fn set_points(&mut self, all: Vec<(u128, u32)>) {
        let mut hi = Vec::with_capacity(all.len());
        let mut lo = Vec::with_capacity(all.len());
        let mut owners = Vec::with_capacity(all.len());
        for (p, o) in all {
            hi.push((p >> 64) as u64);
            lo.push(p as u64);
            owners.push(o);
        }
        self.hi = Continuum::from_sorted(hi, owners);
        self.lo = lo;
    }

    /// Index (in ascending point order) of the first point strictly
    /// greater than `h`, wrapping to 0: uhashring's `get_node_pos`.
    #[inline]
    pub fn point_index(&self, h: u128) -> Result<usize> {
        let len = self.lo.len();
        if len == 0 {
            return Err(Error::EmptyRing);
        }
        let (top, low) = ((h >> 64) as u64, h as u64);
        // First point whose top half is >= the key's (0 when none is).
        let mut i = self.hi.position(top);
        let his = self.hi.points();
        // Skip the points equal to or below h among those sharing its top
        // half; the wrap above means none is >= top, so the loop stops.
        while i < len && his[i] == top && self.lo[i] <= low {
            i += 1;
        }
        Ok(if i == len { 0 } else { i })
    }

    /// Index of the node owning a key already hashed with [`Self::key_hash`].
    #[inline]
    pub fn locate_hash(&self, h: u128) -> Result<usize> {
        let i = self.point_index(h)?;
        Ok(self.hi.owners()[i] as usize)
    }

    /// Nodes as (name, vnodes, weight) in index order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32, u32)> {
        self.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.vnodes, n.weight))
    }
}

fn points_for(vnodes: u32, weight: u32) -> Result<u32> {
    let n = vnodes as u64 * weight as u64;
    if n > MAX_POINTS_PER_NODE {
        return Err(Error::invalid(format!(
            "vnodes * weight = {n} exceeds the limit of {MAX_POINTS_PER_NODE} points per node"
        )));
    }
    Ok(n as u32)
}

impl Membership for Md5Ring {
    type Weight = u32;

    fn remove_node(&mut self, name: &str) -> Result<()> {
        Md5Ring::remove_node(self, name)
    }

    fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        Md5Ring::set_weight(self, name, weight)
    }

    fn weight_at(&self, index: usize) -> Option<u32> {
        self.node_weight(index)
    }
}

impl Placement for Md5Ring {
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
        self.locate_hash(md5_u128(key))
    }

    fn locate_n(&self, key: &[u8], n: usize, out: &mut Vec<usize>) -> Result<()> {
        check_replicas(n, self.nodes.len())?;
        out.clear();
        if n == 0 {
            return Ok(());
        }
        let start = self.point_index(md5_u128(key))?;
        let owners = self.hi.owners();
        let mut seen = vec![false; self.nodes.len()];
        for step in 0..owners.len() {
            let o = owners[(start + step) % owners.len()] as usize;
            if !seen[o] {
                seen[o] = true;
                out.push(o);
                if out.len() == n {
                    return Ok(());
                }
            }
        }
        Err(Error::invalid(format!(
            "only {} nodes hold points on the ring",
            out.len()
        )))
    }

    /// A key goes to the first point above it, so point `i` owns the arc
    /// `[points[i-1], points[i])` of the 2^128 circle.
    fn shares(&self) -> Vec<f64> {
        let mut arcs = vec![0f64; self.nodes.len()];
        let len = self.lo.len();
        if len == 0 {
            return arcs;
        }
        if len == 1 {
            arcs[self.hi.owners()[0] as usize] = 1.0;
            return arcs;
        }
        let scale = 2f64.powi(-128);
        let mut prev = self.point(len - 1).expect("in range").0;
        for i in 0..len {
            let (p, o) = self.point(i).expect("in range");
            // Wrapping: the first arc runs from the last point through 0.
            arcs[o] += p.wrapping_sub(prev) as f64 * scale;
            prev = p;
        }
        arcs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnode_hash_is_uhashring_point() {
        // int(md5(b"a-0").hexdigest(), 16), computed with Python's hashlib.
        assert_eq!(
            md5_vnode_hash("a", 0),
            u128::from_str_radix("a165efd196e17ba195ad4dc50028b39a", 16).unwrap()
        );
    }

    #[test]
    fn bisect_right_on_128_bits() {
        let mut r = Md5Ring::with_vnodes(4);
        r.add_node("a", 1).unwrap();
        r.add_node("b", 2).unwrap();
        let pts: Vec<u128> = (0..r.point_count())
            .map(|i| r.point(i).unwrap().0)
            .collect();
        assert!(pts.windows(2).all(|w| w[0] < w[1]));
        for (i, &p) in pts.iter().enumerate() {
            // A key exactly at a point goes to the next one (bisect_right).
            assert_eq!(r.point_index(p).unwrap(), (i + 1) % pts.len());
            assert_eq!(r.point_index(p - 1).unwrap(), i);
        }
        assert_eq!(r.point_index(u128::MAX).unwrap(), 0);
        assert_eq!(r.point_index(0).unwrap(), 0);
    }

    #[test]
    fn add_remove_reweigh_equal_bulk_build() {
        let mut r = Md5Ring::new();
        r.add_node("x", 1).unwrap();
        r.add_node_with_vnodes("y", 7, 3).unwrap();
        r.add_node("z", 0).unwrap();
        r.set_node("x", 10, 2).unwrap();
        r.remove_node("z").unwrap();
        let b = Md5Ring::from_nodes(160, [("x", 10, 2), ("y", 7, 3)]).unwrap();
        assert_eq!(r.point_count(), 41);
        for i in 0..r.point_count() {
            assert_eq!(r.point(i), b.point(i));
        }
        let s: f64 = r.shares().iter().sum();
        assert!((s - 1.0).abs() < 1e-12);
        assert!(matches!(r.add_node("x", 1), Err(Error::NodeExists(_))));
        assert!(matches!(r.remove_node("q"), Err(Error::NodeNotFound(_))));
        assert!(Md5Ring::new().locate(b"k").is_err());
    }
}
