//! Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
//! Network Load Balancer", NSDI 2016, section 3.4), with integer weights.
//!
//! A lookup table of prime size `M` is filled from per-backend
//! permutations of `0..M`; a key goes to `table[key_hash % M]`, one array
//! read. Backends get near-equal (or weight-proportional) numbers of
//! entries; a membership change rebuilds the table and moves somewhat more
//! than the ideal fraction of keys (the paper's trade-off: balance over
//! minimal disruption). [`Maglev::diff`] and the membership methods report
//! that disruption.
//!
//! Placement (fixed forever, see docs/rings.md):
//! - `offset = xxh3_64(utf8(name), seed RING_SEED) mod M`,
//!   `skip = xxh3_64(utf8(name), seed MAGLEV_SKIP_SEED) mod (M − 1) + 1`;
//!   backend `i`'s permutation is `perm_i[j] = (offset + j × skip) mod M`;
//! - backends take turns in bytewise order of their names (not insertion
//!   order, so the table does not depend on the order they joined); in
//!   each round a backend of weight `w` takes `w` turns in a row; a turn
//!   claims the first entry of its permutation not yet claimed (the
//!   paper's Figure/pseudocode 3.4 with weight 1 everywhere);
//! - filling stops when all `M` entries are claimed; a key goes to
//!   `table[key_hash(key) mod M]`.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::nodes::{Named, NodeSet};
use super::{Membership, Placement, check_name, check_replicas};
use crate::error::{Error, Result};
use crate::hash::{RING_SEED, key_hash};

/// The table size unless chosen otherwise (the paper's small size).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

/// The largest table size accepted (4 bytes per entry: 256 MiB).
pub const MAX_TABLE_SIZE: u32 = 1 << 26;

/// The seed of the second backend hash (`skip`): "qkring" then 0x0002.
pub const MAGLEV_SKIP_SEED: u64 = 0x716b_7269_6e67_0002;

const EMPTY: u32 = u32::MAX;

/// True when `n` is prime. Trial division up to √n: at most 8,192 odd
/// divisors for `n < 2^26`, run once per table; no crate needed.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// `x mod m` by multiplication (Lemire, Kaser & Kurz, "Faster Remainder by
/// Direct Computation", 2019): with `c = ⌈2^128 / m⌉`, `x mod m` is the high
/// 128 bits of `(c × x mod 2^128) × m`, exact for every 64-bit `x`. A
/// 64-bit `div` costs 20–90 cycles; this costs three multiplications.
#[derive(Debug, Clone, Copy)]
struct FastMod {
    c: u128,
    m: u64,
}

impl FastMod {
    fn new(m: u64) -> Self {
        debug_assert!(m >= 2);
        FastMod {
            c: (u128::MAX / m as u128).wrapping_add(1),
            m,
        }
    }

    #[inline(always)]
    fn rem(&self, x: u64) -> u64 {
        let low = self.c.wrapping_mul(x as u128);
        // High 128 bits of low × m, with m < 2^64: split low in halves.
        let hi = (low >> 64) * self.m as u128;
        let lo = (low as u64 as u128) * self.m as u128;
        ((hi + (lo >> 64)) >> 64) as u64
    }
}

#[derive(Debug, Clone)]
struct Backend {
    name: String,
    weight: u32,
}

impl Named for Backend {
    fn name(&self) -> &str {
        &self.name
    }
}

/// A Maglev lookup table over named, weighted backends. Lookups take
/// `&self`; membership changes take `&mut self` and rebuild the table.
#[derive(Debug, Clone)]
pub struct Maglev {
    size: u32,
    fast: FastMod,
    backends: NodeSet<Backend>,
    /// `table[slot]` = backend index; empty when there are no backends.
    table: Vec<u32>,
}

impl Default for Maglev {
    fn default() -> Self {
        Self::new()
    }
}

impl Maglev {
    /// No backends, a table of [`DEFAULT_TABLE_SIZE`].
    pub fn new() -> Self {
        Self::with_table_size(DEFAULT_TABLE_SIZE).expect("the default size is prime")
    }

    /// No backends, a table of `size` entries: a prime, at most
    /// [`MAX_TABLE_SIZE`].
    pub fn with_table_size(size: u32) -> Result<Self> {
        if size > MAX_TABLE_SIZE {
            return Err(Error::invalid(format!(
                "table size {size} exceeds the limit of {MAX_TABLE_SIZE}"
            )));
        }
        if !is_prime(size as u64) {
            return Err(Error::invalid(format!(
                "table size must be a prime number, got {size}"
            )));
        }
        Ok(Maglev {
            size,
            fast: FastMod::new(size as u64),
            backends: NodeSet::default(),
            table: Vec::new(),
        })
    }

    /// A table of `size` over `(name, weight)` backends, built once.
    pub fn from_nodes<S: AsRef<str>>(
        size: u32,
        nodes: impl IntoIterator<Item = (S, u32)>,
    ) -> Result<Self> {
        let mut m = Self::with_table_size(size)?;
        for (name, weight) in nodes {
            m.push(name.as_ref(), weight)?;
        }
        m.check_capacity()?;
        m.rebuild();
        Ok(m)
    }

    /// The table size `M`.
    pub fn table_size(&self) -> u32 {
        self.size
    }

    /// The lookup table: `table()[slot]` is the backend index owning
    /// `slot`. Empty when there are no backends.
    pub fn table(&self) -> &[u32] {
        &self.table
    }

    /// The named backend's weight.
    pub fn weight(&self, name: &str) -> Option<u32> {
        self.backends.by_name(name).map(|b| b.weight)
    }

    /// Backends and weights in index order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.backends.iter().map(|b| (b.name.as_str(), b.weight))
    }

    fn push(&mut self, name: &str, weight: u32) -> Result<()> {
        check_name(name)?;
        if weight == 0 {
            return Err(Error::invalid("weight must be at least 1"));
        }
        self.backends.check_absent(name)?;
        self.backends.push(Backend {
            name: name.to_owned(),
            weight,
        });
        Ok(())
    }

    /// Every backend must get at least one full round of turns: fewer
    /// backends than entries, and the weights sum to at most `M`.
    fn check_capacity(&self) -> Result<()> {
        let n = self.backends.len() as u64;
        if n >= self.size as u64 {
            return Err(Error::invalid(format!(
                "{n} backends need a table larger than {} entries",
                self.size
            )));
        }
        let total: u64 = self.backends.iter().map(|b| b.weight as u64).sum();
        if total > self.size as u64 {
            return Err(Error::invalid(format!(
                "the weights sum to {total}, more than the table's {} entries; \
                 use smaller weights or a larger table",
                self.size
            )));
        }
        Ok(())
    }

    /// Refills the table from scratch (section 3.4's population).
    fn rebuild(&mut self) {
        let m = self.size as u64;
        self.table.clear();
        if self.backends.is_empty() {
            return;
        }
        let mut order: Vec<usize> = (0..self.backends.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            self.backends[a]
                .name
                .as_bytes()
                .cmp(self.backends[b].name.as_bytes())
        });
        // Per backend in turn order: (index, weight, next position, skip).
        let mut perm: Vec<(u32, u32, u64, u64)> = order
            .iter()
            .map(|&i| {
                let name = self.backends[i].name.as_bytes();
                let offset = xxh3_64_with_seed(name, RING_SEED) % m;
                let skip = xxh3_64_with_seed(name, MAGLEV_SKIP_SEED) % (m - 1) + 1;
                (i as u32, self.backends[i].weight, offset, skip)
            })
            .collect();
        let mut table = vec![EMPTY; m as usize];
        let mut filled = 0u64;
        'fill: loop {
            for (idx, weight, pos, skip) in perm.iter_mut() {
                for _ in 0..*weight {
                    // M is prime and 1 <= skip < M, so the permutation
                    // visits every slot: a free one exists while filled < M.
                    while table[*pos as usize] != EMPTY {
                        *pos += *skip;
                        if *pos >= m {
                            *pos -= m;
                        }
                    }
                    table[*pos as usize] = *idx;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
        self.table = table;
    }

    /// Runs a membership change on a copy and, when it succeeds, swaps it
    /// in and returns the fraction of table entries whose backend changed.
    fn change(&mut self, f: impl FnOnce(&mut Maglev) -> Result<()>) -> Result<f64> {
        let mut next = Maglev {
            size: self.size,
            fast: self.fast,
            backends: self.backends.clone(),
            table: Vec::new(),
        };
        f(&mut next)?;
        next.check_capacity()?;
        next.rebuild();
        let moved = self.diff(&next)?;
        *self = next;
        Ok(moved)
    }

    /// Adds a backend and rebuilds the table. Returns the fraction of
    /// entries that changed backend (the keys that move).
    pub fn add_node(&mut self, name: &str, weight: u32) -> Result<f64> {
        self.change(|m| m.push(name, weight))
    }

    /// Removes a backend and rebuilds the table; later indices shift down
    /// by one. Returns the fraction of entries that changed backend.
    pub fn remove_node(&mut self, name: &str) -> Result<f64> {
        self.backends.find(name)?;
        self.change(|m| m.backends.remove(name).map(drop))
    }

    /// Changes a backend's weight and rebuilds the table. Returns the
    /// fraction of entries that changed backend.
    pub fn set_weight(&mut self, name: &str, weight: u32) -> Result<f64> {
        if weight == 0 {
            return Err(Error::invalid("weight must be at least 1"));
        }
        let idx = self.backends.find(name)?;
        self.change(|m| {
            m.backends[idx].weight = weight;
            Ok(())
        })
    }

    /// The fraction of table entries whose backend (by name) differs
    /// between `self` and `other`: the share of keys that move from one
    /// to the other. An empty table owns nothing, so against an empty
    /// table the answer is 1 (or 0 when both are empty). Fails unless the
    /// tables have the same size.
    pub fn diff(&self, other: &Maglev) -> Result<f64> {
        if self.size != other.size {
            return Err(Error::invalid(format!(
                "cannot compare tables of {} and {} entries",
                self.size, other.size
            )));
        }
        match (self.table.is_empty(), other.table.is_empty()) {
            (true, true) => return Ok(0.0),
            (true, false) | (false, true) => return Ok(1.0),
            _ => {}
        }
        // Translate self's indices to other's once, then compare integers.
        let map: Vec<u32> = self
            .backends
            .iter()
            .map(|b| other.backends.position(&b.name).map_or(EMPTY, |i| i as u32))
            .collect();
        let changed = self
            .table
            .iter()
            .zip(&other.table)
            .filter(|&(&a, &b)| map[a as usize] != b)
            .count();
        Ok(changed as f64 / self.size as f64)
    }

    /// The slot of a key already hashed with [`crate::hash::key_hash`]:
    /// `hash mod M`.
    #[inline(always)]
    pub fn slot(&self, h: u64) -> usize {
        self.fast.rem(h) as usize
    }

    /// Index of the backend owning a pre-hashed key: one table read.
    #[inline(always)]
    pub fn locate_hash(&self, h: u64) -> Result<usize> {
        if self.table.is_empty() {
            return Err(Error::EmptyRing);
        }
        // SAFETY-free: slot < M == table.len(); the bounds check is elided
        // or cheap next to the remainder.
        Ok(self.table[self.slot(h)] as usize)
    }

    /// The first `n` distinct backends met walking the table from the
    /// key's slot (wrapping): the first is the owner.
    pub fn locate_n_hash(&self, h: u64, n: usize, out: &mut Vec<usize>) -> Result<()> {
        check_replicas(n, self.backends.len())?;
        out.clear();
        if n == 0 {
            return Ok(());
        }
        let mut seen = vec![false; self.backends.len()];
        let start = self.slot(h);
        for &b in self.table[start..].iter().chain(&self.table[..start]) {
            if !std::mem::replace(&mut seen[b as usize], true) {
                out.push(b as usize);
                if out.len() == n {
                    break;
                }
            }
        }
        debug_assert_eq!(out.len(), n, "every backend owns at least one entry");
        Ok(())
    }
}

impl Membership for Maglev {
    type Weight = u32;

    fn remove_node(&mut self, name: &str) -> Result<()> {
        Maglev::remove_node(self, name).map(drop)
    }

    fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        Maglev::set_weight(self, name, weight).map(drop)
    }

    fn weight_at(&self, index: usize) -> Option<u32> {
        self.node_weight(index)
    }
}

impl Placement for Maglev {
    fn len(&self) -> usize {
        self.backends.len()
    }

    fn node_name(&self, index: usize) -> Option<&str> {
        self.backends.name(index)
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.backends.position(name)
    }

    fn node_weight(&self, index: usize) -> Option<u32> {
        self.backends.get(index).map(|b| b.weight)
    }

    #[inline]
    fn locate(&self, key: &[u8]) -> Result<usize> {
        self.locate_hash(key_hash(key))
    }

    fn locate_n(&self, key: &[u8], n: usize, out: &mut Vec<usize>) -> Result<()> {
        self.locate_n_hash(key_hash(key), n, out)
    }

    /// Each backend's entries over `M`: the exact fraction of hashes it owns
    /// (up to the `2^64 mod M` hashes that make low slots one part in
    /// 2^48 likelier).
    fn shares(&self) -> Vec<f64> {
        let mut counts = vec![0u64; self.backends.len()];
        for &b in &self.table {
            counts[b as usize] += 1;
        }
        counts
            .into_iter()
            .map(|c| c as f64 / self.size as f64)
            .collect()
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

    fn names(n: usize) -> Vec<(String, u32)> {
        (0..n).map(|i| (format!("backend-{i}"), 1)).collect()
    }

    /// The paper's population pseudocode, written plainly with explicit
    /// permutation arrays and `next[]`, for weight 1.
    fn reference_table(size: u64, names: &[&str]) -> Vec<usize> {
        let mut sorted: Vec<(usize, &str)> = names.iter().copied().enumerate().collect();
        sorted.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
        let perms: Vec<Vec<u64>> = sorted
            .iter()
            .map(|(_, n)| {
                let offset = xxh3_64_with_seed(n.as_bytes(), RING_SEED) % size;
                let skip = xxh3_64_with_seed(n.as_bytes(), MAGLEV_SKIP_SEED) % (size - 1) + 1;
                (0..size).map(|j| (offset + j * skip) % size).collect()
            })
            .collect();
        let mut next = vec![0usize; sorted.len()];
        let mut entry = vec![usize::MAX; size as usize];
        let mut n = 0;
        loop {
            for i in 0..sorted.len() {
                let mut c = perms[i][next[i]];
                while entry[c as usize] != usize::MAX {
                    next[i] += 1;
                    c = perms[i][next[i]];
                }
                entry[c as usize] = sorted[i].0;
                next[i] += 1;
                n += 1;
                if n == size {
                    return entry;
                }
            }
        }
    }

    #[test]
    fn matches_the_papers_pseudocode() {
        for (size, n) in [(7u32, 3usize), (13, 5), (101, 10), (1009, 37)] {
            let nodes = names(n);
            let m = Maglev::from_nodes(size, nodes.iter().map(|(s, w)| (s.as_str(), *w))).unwrap();
            let refs: Vec<&str> = nodes.iter().map(|(s, _)| s.as_str()).collect();
            let want = reference_table(size as u64, &refs);
            let got: Vec<usize> = m.table().iter().map(|&b| b as usize).collect();
            assert_eq!(got, want, "M={size} n={n}");
        }
    }

    #[test]
    fn fastmod_is_exact() {
        let mut x: u64 = 0x6d61_676c;
        for m in [
            2u64,
            3,
            7,
            65_537,
            1_000_003,
            MAX_TABLE_SIZE as u64 - 1,
            4_294_967_291,
        ] {
            let f = FastMod::new(m);
            for v in [0, 1, m - 1, m, m + 1, u64::MAX, u64::MAX - 1, 1 << 63] {
                assert_eq!(f.rem(v), v % m, "{v} mod {m}");
            }
            for _ in 0..100_000 {
                let v = splitmix(&mut x);
                assert_eq!(f.rem(v), v % m, "{v} mod {m}");
            }
        }
    }

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..40).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]);
        assert!(is_prime(65_537) && is_prime(4_294_967_291));
        assert!(!is_prime(65_535) && !is_prime(65_537 * 3) && !is_prime(4_294_967_297));
    }

    #[test]
    fn bad_arguments() {
        for size in [0u32, 1, 4, 65_535, 65_536] {
            assert!(matches!(
                Maglev::with_table_size(size),
                Err(Error::InvalidArgument(_))
            ));
        }
        assert!(Maglev::with_table_size(MAX_TABLE_SIZE + 15).is_err());
        let mut m = Maglev::with_table_size(7).unwrap();
        assert_eq!(m.locate(b"k"), Err(Error::EmptyRing));
        assert!(m.add_node("a", 0).is_err());
        assert!(m.add_node("", 1).is_err());
        for i in 0..6 {
            m.add_node(&format!("n{i}"), 1).unwrap();
        }
        // 7 backends need more than 7 entries.
        assert!(matches!(
            m.add_node("n6", 1),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(m.len(), 6);
        assert!(matches!(
            m.set_weight("n0", 3),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(m.weight("n0"), Some(1));
        assert_eq!(m.add_node("n0", 1), Err(Error::NodeExists("n0".into())));
        assert_eq!(m.remove_node("zz"), Err(Error::NodeNotFound("zz".into())));
        assert_eq!(m.set_weight("zz", 1), Err(Error::NodeNotFound("zz".into())));
        assert!(m.set_weight("n0", 0).is_err());
        let other = Maglev::with_table_size(11).unwrap();
        assert!(m.diff(&other).is_err());
        assert!(Maglev::from_nodes(7, [("a", 4), ("b", 4)]).is_err());
    }

    #[test]
    fn balance_at_100_backends_default_table() {
        let m = Maglev::from_nodes(DEFAULT_TABLE_SIZE, names(100)).unwrap();
        let shares = m.shares();
        let mean = 1.0 / 100.0;
        let max = shares.iter().cloned().fold(0.0, f64::max);
        let min = shares.iter().cloned().fold(1.0, f64::min);
        assert!(max / mean <= 1.01, "max/mean {}", max / mean);
        assert!(min / mean >= 0.99, "min/mean {}", min / mean);
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn weights_scale_entries() {
        let m = Maglev::from_nodes(10_007, [("a", 1), ("b", 2), ("c", 5)]).unwrap();
        let s = m.shares();
        // Each takes `w` turns per round; shares are w/8 up to a round's turns.
        for (share, w) in s.iter().zip([1.0, 2.0, 5.0]) {
            assert!((share - w / 8.0).abs() <= 8.0 / 10_007.0, "{s:?}");
        }
    }

    #[test]
    fn disruption_is_reported_and_bounded() {
        let seed = 0x6d67_6c76;
        let mut m = Maglev::from_nodes(DEFAULT_TABLE_SIZE, names(50)).unwrap();
        let before = m.clone();
        let moved = m.remove_node("backend-7").unwrap();
        assert_eq!(moved, before.diff(&m).unwrap());
        // Everything backend-7 owned moves (2%), plus some churn elsewhere.
        assert!((0.02..0.05).contains(&moved), "moved {moved}");
        // Keys move at the rate the table says.
        let mut x = seed;
        let mut changed = 0;
        const N: usize = 50_000;
        for _ in 0..N {
            let h = splitmix(&mut x);
            let a = before.node_name(before.locate_hash(h).unwrap());
            let b = m.node_name(m.locate_hash(h).unwrap());
            if a != b {
                changed += 1;
                assert_ne!(b, Some("backend-7"));
            }
        }
        let frac = changed as f64 / N as f64;
        assert!(
            (frac - moved).abs() < 0.005,
            "seed {seed:#x}: {frac} vs {moved}"
        );
        let added = m.add_node("backend-7", 1).unwrap();
        assert!((0.02..0.05).contains(&added), "added {added}");
        // Same members, same table, whatever the order they joined in.
        assert_eq!(before.diff(&m).unwrap(), 0.0);
        assert_eq!(m.set_weight("backend-7", 1).unwrap(), 0.0);
        let mut empty = Maglev::new();
        assert_eq!(empty.diff(&Maglev::new()).unwrap(), 0.0);
        assert_eq!(empty.add_node("x", 1).unwrap(), 1.0);
        assert_eq!(empty.remove_node("x").unwrap(), 1.0);
    }

    #[test]
    fn preference_lists() {
        let seed = 0x6d67_6c77;
        let m = Maglev::from_nodes(1009, names(9)).unwrap();
        let mut x = seed;
        let mut out = Vec::new();
        for _ in 0..1000 {
            let h = splitmix(&mut x);
            m.locate_n_hash(h, 9, &mut out).unwrap();
            assert_eq!(out[0], m.locate_hash(h).unwrap());
            let mut s = out.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 9, "seed {seed:#x}");
        }
        assert!(m.locate_n_hash(1, 10, &mut out).is_err());
    }
}
