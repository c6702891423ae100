//! Weighted rendezvous (highest random weight, HRW) hashing with the
//! logarithmic method (Schindelhauer & Schomaker, "Weighted distributed
//! hash tables", 2005; the form used by e.g. Tarantool's vshard and
//! "Weighted Rendezvous Hashing" write-ups).
//!
//! Every node scores every key; the key goes to the highest score. With
//! `u` uniform in (0, 1), `-w / ln(u)` is distributed so that node `i`
//! wins with probability exactly `w_i / Σw` — shares proportional to the
//! weights, and a membership change moves only the keys that must move
//! (scores of the other nodes do not change).
//!
//! Placement (fixed forever, see README "Placement"):
//! - `node_hash = xxh3_64(utf8(name), seed RING_SEED)`, computed once;
//! - `h = xxh3_64(le64(key_hash(key)) ‖ le64(node_hash), seed RING_SEED)`
//!   (16 bytes, little-endian);
//! - `u = ((h >> 11) + 0.5) / 2^53`, in (0, 1) exclusive;
//! - `score = -weight / ln(u)`; the largest wins, equal scores go to the
//!   bytewise smaller name.
//!
//! A lookup costs O(nodes): fine for tens to hundreds of nodes.

use std::cmp::Ordering;
use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{Placement, check_name, check_replicas};
use crate::error::{Error, Result};
use crate::hash::{RING_SEED, key_hash};

#[derive(Debug, Clone)]
struct Node {
    name: String,
    weight: f64,
    hash: u64,
}

/// Weighted rendezvous hashing over named nodes with positive, finite
/// `f64` weights. Lookups take `&self`; membership changes `&mut self`.
#[derive(Debug, Clone, Default)]
pub struct Rendezvous {
    nodes: Vec<Node>,
    by_name: HashMap<String, usize>,
}

/// The per-node hash: xxh3-64 of the name's UTF-8 bytes with [`RING_SEED`].
#[inline]
pub fn rendezvous_node_hash(name: &str) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), RING_SEED)
}

/// The hash of a (key, node) pair from the key's [`key_hash`] and the
/// node's [`rendezvous_node_hash`].
#[inline]
pub fn rendezvous_pair_hash(key_hash: u64, node_hash: u64) -> u64 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&key_hash.to_le_bytes());
    buf[8..].copy_from_slice(&node_hash.to_le_bytes());
    xxh3_64_with_seed(&buf, RING_SEED)
}

/// A node's score for a key: `-weight / ln(u)`, `u` from the pair hash.
#[inline]
pub fn rendezvous_score(key_hash: u64, node_hash: u64, weight: f64) -> f64 {
    let h = rendezvous_pair_hash(key_hash, node_hash);
    // 53 random bits, centred in their interval: never 0, never 1.
    let u = ((h >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    -weight / u.ln()
}

fn check_weight(weight: f64) -> Result<()> {
    if weight.is_finite() && weight > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "weight must be a positive finite number, got {weight}"
        )))
    }
}

impl Rendezvous {
    /// No nodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Nodes `(name, weight)` in this order.
    pub fn from_nodes<S: AsRef<str>>(nodes: impl IntoIterator<Item = (S, f64)>) -> Result<Self> {
        let mut r = Self::new();
        for (name, weight) in nodes {
            r.add_node(name.as_ref(), weight)?;
        }
        Ok(r)
    }

    /// Adds a node; only the keys it now wins move (to it).
    pub fn add_node(&mut self, name: &str, weight: f64) -> Result<()> {
        check_name(name)?;
        check_weight(weight)?;
        if self.by_name.contains_key(name) {
            return Err(Error::NodeExists(name.to_owned()));
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(Error::invalid("too many nodes"));
        }
        self.by_name.insert(name.to_owned(), self.nodes.len());
        self.nodes.push(Node {
            name: name.to_owned(),
            weight,
            hash: rendezvous_node_hash(name),
        });
        Ok(())
    }

    /// Removes a node; only the keys it owned move. Later indices shift
    /// down by one.
    pub fn remove_node(&mut self, name: &str) -> Result<()> {
        let idx = self
            .by_name
            .remove(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))?;
        self.nodes.remove(idx);
        for v in self.by_name.values_mut() {
            if *v > idx {
                *v -= 1;
            }
        }
        Ok(())
    }

    /// Changes a node's weight; only keys moving to or from it move.
    pub fn set_weight(&mut self, name: &str, weight: f64) -> Result<()> {
        check_weight(weight)?;
        let idx = *self
            .by_name
            .get(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))?;
        self.nodes[idx].weight = weight;
        Ok(())
    }

    /// The named node's weight.
    pub fn weight(&self, name: &str) -> Option<f64> {
        self.by_name.get(name).map(|&i| self.nodes[i].weight)
    }

    /// Nodes and weights in index order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.nodes.iter().map(|n| (n.name.as_str(), n.weight))
    }

    /// True when node `a` beats node `b` at these scores.
    #[inline]
    fn beats(&self, sa: f64, a: usize, sb: f64, b: usize) -> bool {
        match sa.partial_cmp(&sb) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Less) => false,
            _ => self.nodes[a].name.as_bytes() < self.nodes[b].name.as_bytes(),
        }
    }

    /// Index of the node owning a key already hashed with
    /// [`crate::hash::key_hash`].
    #[inline]
    pub fn locate_hash(&self, h: u64) -> Result<usize> {
        let mut best = usize::MAX;
        let mut best_score = f64::NEG_INFINITY;
        for (i, n) in self.nodes.iter().enumerate() {
            let s = rendezvous_score(h, n.hash, n.weight);
            if best == usize::MAX || self.beats(s, i, best_score, best) {
                best = i;
                best_score = s;
            }
        }
        if best == usize::MAX {
            return Err(Error::EmptyRing);
        }
        Ok(best)
    }

    /// The first `n` nodes by score for a pre-hashed key.
    pub fn locate_n_hash(&self, h: u64, n: usize, out: &mut Vec<usize>) -> Result<()> {
        check_replicas(n, self.nodes.len())?;
        let mut scored: Vec<(f64, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (rendezvous_score(h, node.hash, node.weight), i))
            .collect();
        let order = |a: &(f64, usize), b: &(f64, usize)| {
            if self.beats(a.0, a.1, b.0, b.1) {
                Ordering::Less
            } else if self.beats(b.0, b.1, a.0, a.1) {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        };
        if n > 0 && n < scored.len() {
            scored.select_nth_unstable_by(n - 1, order);
            scored.truncate(n);
        }
        scored.sort_unstable_by(order);
        out.clear();
        out.extend(scored.iter().take(n).map(|&(_, i)| i));
        Ok(())
    }
}

impl Placement for Rendezvous {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn node_name(&self, index: usize) -> Option<&str> {
        self.nodes.get(index).map(|n| n.name.as_str())
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The weight when it is a whole number in `u32` range, else `None`:
    /// use [`Placement::node_weight_f64`] for the exact value.
    fn node_weight(&self, index: usize) -> Option<u32> {
        let w = self.nodes.get(index)?.weight;
        (w.fract() == 0.0 && w <= u32::MAX as f64).then_some(w as u32)
    }

    fn node_weight_f64(&self, index: usize) -> Option<f64> {
        self.nodes.get(index).map(|n| n.weight)
    }

    #[inline]
    fn locate(&self, key: &[u8]) -> Result<usize> {
        self.locate_hash(key_hash(key))
    }

    fn locate_n(&self, key: &[u8], n: usize, out: &mut Vec<usize>) -> Result<()> {
        self.locate_n_hash(key_hash(key), n, out)
    }

    /// The *expected* share `w_i / Σw` of each node — exact in expectation
    /// over keys, unlike a ring's exact arc measure: HRW has no arcs to
    /// measure.
    fn shares(&self) -> Vec<f64> {
        let total: f64 = self.nodes.iter().map(|n| n.weight).sum();
        self.nodes.iter().map(|n| n.weight / total).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitmix(x: &mut u64) -> u64 {
        *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn keys(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed;
        (0..n).map(|_| splitmix(&mut x)).collect()
    }

    #[test]
    fn pinned_placement() {
        // The formula in the module docs, checked independently by the
        // Python tests (xxhash package + math.log); pinned so it never changes.
        let nh = rendezvous_node_hash("node-a");
        assert_eq!(nh, xxh3_64_with_seed(b"node-a", RING_SEED));
        let mut buf = Vec::new();
        buf.extend_from_slice(&key_hash(b"user:42").to_le_bytes());
        buf.extend_from_slice(&nh.to_le_bytes());
        assert_eq!(
            rendezvous_pair_hash(key_hash(b"user:42"), nh),
            xxh3_64_with_seed(&buf, RING_SEED)
        );
        let r = Rendezvous::from_nodes([("a", 1.0), ("b", 2.0), ("c", 0.5)]).unwrap();
        let mut best = (f64::MIN, "");
        for (name, w) in r.iter() {
            let s = rendezvous_score(key_hash(b"k"), rendezvous_node_hash(name), w);
            if s > best.0 {
                best = (s, name);
            }
        }
        assert_eq!(r.get_node(b"k").unwrap(), best.1);
    }

    #[test]
    fn bad_arguments() {
        let mut r = Rendezvous::new();
        assert_eq!(r.locate(b"k"), Err(Error::EmptyRing));
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(r.add_node("a", w), Err(Error::InvalidArgument(_))));
        }
        assert!(r.add_node("", 1.0).is_err());
        assert!(r.add_node("a\0", 1.0).is_err());
        r.add_node("a", 1.0).unwrap();
        assert_eq!(r.add_node("a", 2.0), Err(Error::NodeExists("a".into())));
        assert_eq!(r.remove_node("b"), Err(Error::NodeNotFound("b".into())));
        assert!(r.set_weight("a", 0.0).is_err());
        assert_eq!(r.set_weight("b", 1.0), Err(Error::NodeNotFound("b".into())));
        let mut out = Vec::new();
        assert!(r.locate_n(b"k", 2, &mut out).is_err());
        assert_eq!(r.weight("a"), Some(1.0));
    }

    #[test]
    fn shares_follow_weights() {
        let seed = 0x4852_5701;
        let weights = [1.0, 2.0, 3.5, 0.5];
        let r = Rendezvous::from_nodes(
            weights
                .iter()
                .enumerate()
                .map(|(i, &w)| (format!("n{i}"), w)),
        )
        .unwrap();
        let total: f64 = weights.iter().sum();
        let shares = r.shares();
        let mut counts = [0usize; 4];
        const N: usize = 200_000;
        for h in keys(seed, N) {
            counts[r.locate_hash(h).unwrap()] += 1;
        }
        for i in 0..4 {
            assert!((shares[i] - weights[i] / total).abs() < 1e-12);
            let got = counts[i] as f64 / N as f64;
            // ~4.5 standard deviations at 200k keys.
            assert!(
                (got - shares[i]).abs() < 0.005,
                "seed {seed:#x}: node {i} got {got}, expected {}",
                shares[i]
            );
        }
        assert_eq!(r.node_weight(1), Some(2));
        assert_eq!(r.node_weight(2), None);
        assert_eq!(r.node_weight_f64(2), Some(3.5));
    }

    #[test]
    fn only_the_keys_that_must_move_move() {
        let seed = 0x4852_5702;
        let mut r =
            Rendezvous::from_nodes((0..10).map(|i| (format!("n{i}"), 1.0 + i as f64))).unwrap();
        let ks = keys(seed, 20_000);
        let before: Vec<String> = ks
            .iter()
            .map(|&h| r.nodes[r.locate_hash(h).unwrap()].name.clone())
            .collect();
        let owner = |r: &Rendezvous, h| r.nodes[r.locate_hash(h).unwrap()].name.clone();

        r.add_node("new", 5.0).unwrap();
        let mut moved = 0;
        for (h, b) in ks.iter().zip(&before) {
            let a = owner(&r, *h);
            if &a != b {
                assert_eq!(a, "new", "seed {seed:#x}");
                moved += 1;
            }
        }
        assert!(moved > 0, "seed {seed:#x}");
        r.remove_node("new").unwrap();
        for (h, b) in ks.iter().zip(&before) {
            assert_eq!(&owner(&r, *h), b, "seed {seed:#x}");
        }

        r.remove_node("n3").unwrap();
        for (h, b) in ks.iter().zip(&before) {
            if b != "n3" {
                assert_eq!(&owner(&r, *h), b, "seed {seed:#x}");
            }
        }
        // Raising a weight only pulls keys to that node.
        r.set_weight("n0", 30.0).unwrap();
        for (h, b) in ks.iter().zip(&before) {
            let a = owner(&r, *h);
            assert!(b == "n3" || a == *b || a == "n0", "seed {seed:#x}");
        }
    }

    #[test]
    fn preference_lists_are_distinct_and_start_with_the_owner() {
        let seed = 0x4852_5703;
        let r = Rendezvous::from_nodes((0..7).map(|i| (format!("n{i}"), 0.5 + i as f64))).unwrap();
        let mut out = Vec::new();
        for h in keys(seed, 2_000) {
            r.locate_n_hash(h, 7, &mut out).unwrap();
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 7);
            assert_eq!(out[0], r.locate_hash(h).unwrap(), "seed {seed:#x}");
            let full = out.clone();
            for n in 0..=7 {
                r.locate_n_hash(h, n, &mut out).unwrap();
                assert_eq!(out[..], full[..n], "seed {seed:#x}");
            }
            // Scores descend along the list.
            let s: Vec<f64> = full
                .iter()
                .map(|&i| rendezvous_score(h, r.nodes[i].hash, r.nodes[i].weight))
                .collect();
            assert!(s.windows(2).all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn placement_ignores_insertion_order() {
        let a = Rendezvous::from_nodes([("x", 1.0), ("y", 2.0), ("z", 3.0)]).unwrap();
        let b = Rendezvous::from_nodes([("z", 3.0), ("x", 1.0), ("y", 2.0)]).unwrap();
        for h in keys(9, 1000) {
            assert_eq!(
                a.node_name(a.locate_hash(h).unwrap()),
                b.node_name(b.locate_hash(h).unwrap())
            );
        }
    }
}
