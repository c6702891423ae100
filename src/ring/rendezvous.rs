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
//! Placement (fixed forever, see docs/rings.md):
//! - `node_hash = xxh3_64(utf8(name), seed RING_SEED)`, computed once;
//! - `h = xxh3_64(le64(key_hash(key)) ‖ le64(node_hash), seed RING_SEED)`
//!   (16 bytes, little-endian);
//! - `a = min(h >> 11, 2^53 − 2)`, `u = (a + 0.5) / 2^53` rounded to
//!   double, in (0, 1) exclusive (`2^53 − 1` would round to `u = 1`);
//! - `score = -weight / ln(u)` in IEEE-754 double arithmetic, `ln` being
//!   musl's `log` (the `libm` crate) so that every platform computes the
//!   same bits; the largest wins, equal scores go to the bytewise smaller
//!   name.
//!
//! A lookup costs O(nodes): fine for tens to hundreds of nodes. It needs
//! one `ln` per distinct weight, not per node (see [`Groups`]).

use std::cmp::Ordering;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::nodes::{Named, NodeSet};
use super::{Membership, Placement, check_name, check_replicas};
use crate::error::{Error, Result};
use crate::hash::{RING_SEED, key_hash};

#[derive(Debug, Clone)]
struct Node {
    name: String,
    weight: f64,
    hash: u64,
}

impl Named for Node {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Weighted rendezvous hashing over named nodes with positive, finite
/// `f64` weights. Lookups take `&self`; membership changes `&mut self`.
#[derive(Debug, Clone, Default)]
pub struct Rendezvous {
    nodes: NodeSet<Node>,
    /// Derived from `nodes` after every change: the lookup's layout.
    groups: Groups,
}

/// The nodes grouped by weight, for lookups with one `ln` per group.
///
/// Within a group every node has the same weight `w`, and the score
/// `-w / ln(u)` never decreases as `h` grows (`h -> u` is monotone and so
/// are `ln` and the division, up to `ln`'s rounding). So the node with the
/// largest pair hash `h` has the group's best score, and only its score is
/// computed. Two things could make that differ from scoring every node:
/// scores that tie after rounding (then the smaller name must win), and
/// `ln`'s sub-ulp errors on nearly equal inputs. Both need the group's top
/// two `u` within a relative `2^-40` of each other; [`fast_winner`] checks
/// that gap and, when it is smaller (about once in 2^40 lookups), answers
/// by scoring every node. With a gap of at least `2^-40`, the true `ln`s
/// differ by more than `2^-40` while `ln`'s error is below one ulp
/// (`<= 2^-47` for `|ln u| < 38`) and the division keeps the order
/// strictly, as long as `w / |ln u|` stays a normal, finite number: weights
/// in `[2^-900, 2^900]`. Other weights make every lookup score every node.
///
/// [`fast_winner`]: Rendezvous::fast_winner
#[derive(Debug, Clone, Default)]
struct Groups {
    /// `(weight, end)`: group `g` holds `members[groups[g-1].1..groups[g].1]`.
    bounds: Vec<(f64, u32)>,
    /// Per member, grouped: its node hash's [`pair::node_half`] and its
    /// node index.
    members: Vec<(u64, u32)>,
    /// Every weight is in the range where the fast path is exact.
    fast: bool,
}

/// 2^-900 and 2^900: the weights for which the fast path is exact.
const FAST_MIN_WEIGHT: f64 = f64::from_bits((1023 - 900) << 52);
const FAST_MAX_WEIGHT: f64 = f64::from_bits((1023 + 900) << 52);

/// The fast path gives up when the top two `a = u_bits(h)` of a group are
/// closer than `((a1 + 1) >> GAP_SHIFT) + 2` (a relative gap in `u`
/// of at least `2^-40`, see [`Groups`]).
const GAP_SHIFT: u32 = 40;

impl Groups {
    fn build(nodes: &[Node]) -> Groups {
        let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&nodes[a as usize], &nodes[b as usize]);
            a.weight.total_cmp(&b.weight)
        });
        let mut bounds: Vec<(f64, u32)> = Vec::new();
        let mut members = Vec::with_capacity(nodes.len());
        for i in order {
            let n = &nodes[i as usize];
            if bounds.last().is_some_and(|&(w, _)| w != n.weight) {
                bounds.last_mut().expect("non-empty").1 = members.len() as u32;
            }
            if bounds.last().is_none_or(|&(w, _)| w != n.weight) {
                bounds.push((n.weight, 0));
            }
            members.push((pair::node_half(n.hash), i));
        }
        if let Some(last) = bounds.last_mut() {
            last.1 = members.len() as u32;
        }
        let fast = nodes
            .iter()
            .all(|n| (FAST_MIN_WEIGHT..=FAST_MAX_WEIGHT).contains(&n.weight));
        Groups {
            bounds,
            members,
            fast,
        }
    }
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

/// [`rendezvous_pair_hash`] split in its key half and its node half, so a
/// lookup mixes the key once and then does a multiply and an avalanche per
/// node. Hand-written because the crate exposes xxh3 only on whole inputs;
/// this is xxh3-64's path for 9..=16-byte inputs (XXH3 specification,
/// `XXH3_len_9to16_64b`) at exactly 16 bytes, and a test compares it with
/// the crate on random inputs.
mod pair {
    use crate::hash::RING_SEED;

    /// Bytes 24..56 of xxh3's default secret (`kSecret`), as u64 LE.
    const SECRET_24_56: [u64; 4] = [
        0x1f67_b3b7_a4a4_4072,
        0x78e5_c0cc_4ee6_79cb,
        0x2172_ffcc_7dd0_5a82,
        0x8e24_43f7_7446_08b8,
    ];
    const FLIP_KEY: u64 = (SECRET_24_56[0] ^ SECRET_24_56[1]).wrapping_add(RING_SEED);
    const FLIP_NODE: u64 = (SECRET_24_56[2] ^ SECRET_24_56[3]).wrapping_sub(RING_SEED);

    /// The node half: stored per node.
    #[inline]
    pub fn node_half(node_hash: u64) -> u64 {
        node_hash ^ FLIP_NODE
    }

    /// The key half: `(lo, 16 + bswap(lo))`, once per lookup.
    #[inline]
    pub fn key_half(key_hash: u64) -> (u64, u64) {
        let lo = key_hash ^ FLIP_KEY;
        (lo, 16u64.wrapping_add(lo.swap_bytes()))
    }

    /// The pair hash from both halves.
    #[inline(always)]
    pub fn finish((lo, lo_mix): (u64, u64), hi: u64) -> u64 {
        let m = lo as u128 * hi as u128;
        let mut acc = lo_mix
            .wrapping_add(hi)
            .wrapping_add((m as u64) ^ ((m >> 64) as u64));
        // xxh3's avalanche.
        acc ^= acc >> 37;
        acc = acc.wrapping_mul(0x1656_6791_9E37_79F9);
        acc ^ (acc >> 32)
    }
}

/// A node's score for a key: `-weight / ln(u)`, `u` from the pair hash.
#[inline]
pub fn rendezvous_score(key_hash: u64, node_hash: u64, weight: f64) -> f64 {
    let h = rendezvous_pair_hash(key_hash, node_hash);
    // 53 random bits, centred in their interval: never 0, never 1.
    score_of(h, weight)
}

/// The 53 bits of `h` that make `u`: `h >> 11`, except that the top value
/// `2^53 − 1` counts as `2^53 − 2` — `2^53 − 1 + 0.5` rounds (to even) to
/// `2^53`, which would make `u` exactly 1, `ln(u)` 0 and the score `−∞`.
#[inline]
fn u_bits(h: u64) -> u64 {
    (h >> 11).min((1 << 53) - 2)
}

/// `-weight / ln(u)` with `u = (u_bits(h) + 0.5) / 2^53` (rounded to
/// double): 53 random bits, centred in their interval, in (0, 1).
///
/// `ln` is the `libm` crate's `log` (a Rust port of musl/FreeBSD's, error
/// < 1 ulp), not `f64::ln`: that calls the platform's libm, whose last bit
/// may differ between libcs and flip a near-tie. Pure Rust arithmetic
/// (no FMA contraction) gives the same bits on every platform.
#[inline]
fn score_of(h: u64, weight: f64) -> f64 {
    let u = (u_bits(h) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    -weight / libm::log(u)
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
            r.push(name.as_ref(), weight)?;
        }
        r.regroup();
        Ok(r)
    }

    fn push(&mut self, name: &str, weight: f64) -> Result<()> {
        check_name(name)?;
        check_weight(weight)?;
        self.nodes.check_absent(name)?;
        if self.nodes.len() >= u32::MAX as usize {
            return Err(Error::invalid("too many nodes"));
        }
        self.nodes.push(Node {
            name: name.to_owned(),
            weight,
            hash: rendezvous_node_hash(name),
        });
        Ok(())
    }

    fn regroup(&mut self) {
        self.groups = Groups::build(&self.nodes);
    }

    /// Adds a node; only the keys it now wins move (to it).
    pub fn add_node(&mut self, name: &str, weight: f64) -> Result<()> {
        self.push(name, weight)?;
        self.regroup();
        Ok(())
    }

    /// Removes a node; only the keys it owned move. Later indices shift
    /// down by one.
    pub fn remove_node(&mut self, name: &str) -> Result<()> {
        self.nodes.remove(name)?;
        self.regroup();
        Ok(())
    }

    /// Changes a node's weight; only keys moving to or from it move.
    pub fn set_weight(&mut self, name: &str, weight: f64) -> Result<()> {
        check_weight(weight)?;
        let idx = self.nodes.find(name)?;
        self.nodes[idx].weight = weight;
        self.regroup();
        Ok(())
    }

    /// The named node's weight.
    pub fn weight(&self, name: &str) -> Option<f64> {
        self.nodes.by_name(name).map(|n| n.weight)
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
        if self.nodes.is_empty() {
            return Err(Error::EmptyRing);
        }
        if self.groups.fast
            && let Some(i) = self.fast_winner(h, GAP_SHIFT)
        {
            return Ok(i);
        }
        Ok(self.exact_winner(h))
    }

    /// The spec read literally: score every node, keep the best.
    fn exact_winner(&self, h: u64) -> usize {
        let mut best = 0;
        let mut best_score = f64::NEG_INFINITY;
        for (i, n) in self.nodes.iter().enumerate() {
            let s = rendezvous_score(h, n.hash, n.weight);
            if i == 0 || self.beats(s, i, best_score, best) {
                best = i;
                best_score = s;
            }
        }
        best
    }

    /// The winner from one score per weight group (see [`Groups`]), or
    /// `None` when a group's top two are too close to tell without scoring
    /// every node. `gap_shift` is [`GAP_SHIFT`] except in tests.
    #[inline]
    fn fast_winner(&self, h: u64, gap_shift: u32) -> Option<usize> {
        let g = &self.groups;
        let key = pair::key_half(h);
        let mut best = usize::MAX;
        let mut best_score = f64::NEG_INFINITY;
        let mut start = 0usize;
        for &(weight, end) in &g.bounds {
            let group = &g.members[start..end as usize];
            start = end as usize;
            // Top two pair hashes, branch-free (a new maximum is too
            // unpredictable to branch on); `first` is the position of the
            // first member with the top hash.
            let (mut top, mut second, mut first) = (0u64, 0u64, 0usize);
            for (j, &(node_half, _)) in group.iter().enumerate() {
                let p = pair::finish(key, node_half);
                second = second.max(p.min(top));
                first = if p > top { j } else { first };
                top = top.max(p);
            }
            if group.len() > 1 {
                let (a1, a2) = (u_bits(top), u_bits(second));
                if a1 - a2 < ((a1 + 1) >> gap_shift) + 2 {
                    return None;
                }
            }
            let s = score_of(top, weight);
            let i = group[first].1 as usize;
            if best == usize::MAX || self.beats(s, i, best_score, best) {
                best = i;
                best_score = s;
            }
        }
        Some(best)
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

impl Membership for Rendezvous {
    type Weight = f64;

    fn remove_node(&mut self, name: &str) -> Result<()> {
        Rendezvous::remove_node(self, name)
    }

    fn set_weight(&mut self, name: &str, weight: f64) -> Result<()> {
        Rendezvous::set_weight(self, name, weight)
    }

    fn weight_at(&self, index: usize) -> Option<f64> {
        self.node_weight_f64(index)
    }
}

impl Placement for Rendezvous {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn node_name(&self, index: usize) -> Option<&str> {
        self.nodes.name(index)
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.position(name)
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

    /// Random node sets: equal weights, a few distinct weights, all
    /// distinct, and near-equal distinct weights (adjacent doubles).
    fn random_case(x: &mut u64) -> Rendezvous {
        let n = 1 + (splitmix(x) % 40) as usize;
        let style = splitmix(x) % 4;
        let base = 0.01 + (splitmix(x) % 1000) as f64 / 7.0;
        let nodes = (0..n).map(|i| {
            let w = match style {
                0 => base,
                1 => [1.0, 2.0, 0.5][(splitmix(x) % 3) as usize],
                2 => (splitmix(x) >> 11) as f64 / (1u64 << 40) as f64 + 1e-3,
                _ => f64::from_bits(base.to_bits() + splitmix(x) % 3),
            };
            (format!("n{}-{i}", splitmix(x) % 1000), w)
        });
        Rendezvous::from_nodes(nodes).unwrap()
    }

    #[test]
    fn fast_path_agrees_with_scoring_every_node() {
        let seed = 0x4852_5704u64;
        let mut x = seed;
        let (mut fallbacks, mut checked) = (0, 0);
        for case in 0..300 {
            let r = random_case(&mut x);
            assert!(r.groups.fast);
            for h in keys(splitmix(&mut x), 300) {
                let want = r.exact_winner(h);
                assert_eq!(
                    r.locate_hash(h).unwrap(),
                    want,
                    "seed {seed:#x} case {case}"
                );
                // A coarse gap forces the fallback often: it must give the
                // same answer as the fast path wherever both answer.
                match r.fast_winner(h, 3) {
                    Some(i) => assert_eq!(i, want, "seed {seed:#x} case {case}"),
                    None => fallbacks += 1,
                }
                checked += 1;
            }
        }
        assert!(
            fallbacks > 1000 && fallbacks < checked,
            "{fallbacks} of {checked}"
        );
    }

    #[test]
    fn extreme_weights_score_every_node() {
        let r = Rendezvous::from_nodes([("a", 1e-300), ("b", 2e-300), ("c", 1e300)]).unwrap();
        assert!(!r.groups.fast);
        let mut x = 0x4852_5705u64;
        for _ in 0..1000 {
            let h = splitmix(&mut x);
            assert_eq!(r.locate_hash(h).unwrap(), r.exact_winner(h));
        }
        assert!(
            Rendezvous::from_nodes([("a", FAST_MAX_WEIGHT), ("b", FAST_MIN_WEIGHT)])
                .unwrap()
                .groups
                .fast
        );
        assert_eq!(FAST_MAX_WEIGHT, 2f64.powi(900));
        assert_eq!(FAST_MIN_WEIGHT, 2f64.powi(-900));
    }

    #[test]
    fn groups_follow_membership_changes() {
        let mut r = Rendezvous::from_nodes([("a", 1.0), ("b", 2.0), ("c", 1.0)]).unwrap();
        assert_eq!(r.groups.bounds, vec![(1.0, 2), (2.0, 3)]);
        r.set_weight("b", 1.0).unwrap();
        assert_eq!(r.groups.bounds, vec![(1.0, 3)]);
        r.add_node("d", 0.5).unwrap();
        r.remove_node("a").unwrap();
        assert_eq!(r.groups.bounds, vec![(0.5, 1), (1.0, 3)]);
        let idx: Vec<u32> = r.groups.members.iter().map(|m| m.1).collect();
        assert_eq!(idx, vec![2, 0, 1]);
        for h in keys(11, 500) {
            assert_eq!(r.locate_hash(h).unwrap(), r.exact_winner(h));
        }
    }

    #[test]
    fn split_pair_hash_is_xxh3() {
        let mut x = 0x4852_5706u64;
        for _ in 0..100_000 {
            let (k, n) = (splitmix(&mut x), splitmix(&mut x));
            assert_eq!(
                pair::finish(pair::key_half(k), pair::node_half(n)),
                rendezvous_pair_hash(k, n),
                "{k:#x} {n:#x}"
            );
        }
    }

    #[test]
    fn pinned_scores() {
        // Bits of `-w / ln(u)` with musl's log; the same on every platform.
        // (Cross-checked with CPython's math.log on glibc x86-64, whose
        // log agrees on these inputs.)
        let cases: [(u64, f64, u64); 7] = [
            (0x0000_0000_0000_0000, 1.0, 0x3F9B_5B96_FCA5_58E1),
            (0xFFFF_FFFF_FFFF_FFFF, 1.0, 0x432F_FFFF_FFFF_FFFE),
            (0x8000_0000_0000_0000, 1.0, 0x3FF7_1547_652B_82FE),
            (0x0123_4567_89AB_CDEF, 2.5, 0x3FDD_8AA3_02BB_9CC0),
            (0xDEAD_BEEF_0BAD_F00D, 0.3, 0x4001_35F5_36FB_7C87),
            (0x0000_0000_0000_0800, 7.0, 0x3FC8_A972_B52A_7353),
            (0xFFFF_FFFF_FFFF_F7FF, 3.0, 0x4347_FFFF_FFFF_FFFF),
        ];
        for (h, w, bits) in cases {
            let got = score_of(h, w);
            assert_eq!(
                got.to_bits(),
                bits,
                "h {h:#x} w {w}: got {got} = {:#x}",
                got.to_bits()
            );
        }
    }
}
