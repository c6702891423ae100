//! Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
//! "Consistent Hashing with Bounded Loads", SODA 2018; the scheme behind
//! HAProxy's `hash-balance-factor` and Envoy's `hash_balance_factor`).
//!
//! A balancer over a ring tracks how many keys each node currently holds.
//! `acquire(key)` walks the ring clockwise from the key's position and
//! gives the key to the first node whose load is below its capacity;
//! `release(node)` gives one unit back. With balance factor `c > 1` no node
//! is ever handed a key that takes it past
//!
//! ```text
//! capacity(i) = ceil(c × (L + 1) × w_i / W)
//! ```
//!
//! where `L` is the total load before the placement (so `L + 1` counts the
//! key being placed, as in the paper: the average *after* placing it), `w_i`
//! node i's weight and `W` the sum of weights. With equal weights this is
//! the paper's `ceil(c × (L + 1) / n)`. The capacities sum to at least
//! `c × (L + 1) > L`, so some node always has room and `acquire` never
//! fails on a ring with nodes. The product is computed in IEEE-754 double
//! precision (deterministic on every platform).
//!
//! HAProxy and Envoy express the factor as an integer percentage: their
//! `150` is `c = 1.5` here ([`BoundedLoad::from_percent`]). Both accept
//! 100 (`c = 1`); this balancer requires `c > 1` (the paper's `1 + ε`).
//!
//! Membership changes keep each remaining node's load (loads follow node
//! names, not indices). A removed node's load is dropped: the keys it held
//! have no node any more, the caller re-acquires them elsewhere, and
//! [`BoundedLoad::remove_node`] returns how many there were.

use std::sync::{Mutex, MutexGuard};

use super::{Continuum, HashRing, Placement};
use crate::error::{Error, Result};
use crate::hash::key_hash;

/// A placement that can walk its nodes clockwise from a key, as a
/// bounded-load balancer needs: the continuum's points in ring order.
pub trait Walk: Placement {
    /// Visits node indices in the key's clockwise order (one full turn of
    /// points; a node repeats once per point) and returns the first for
    /// which `stop` is true. Nodes that hold no point are not visited.
    fn walk(&self, key: &[u8], stop: impl FnMut(usize) -> bool) -> Option<usize>;
}

impl Walk for HashRing {
    fn walk(&self, key: &[u8], mut stop: impl FnMut(usize) -> bool) -> Option<usize> {
        walk_continuum(self.continuum(), key_hash(key), &mut stop)
    }
}

pub(crate) fn walk_continuum(
    c: &Continuum,
    h: u64,
    stop: &mut impl FnMut(usize) -> bool,
) -> Option<usize> {
    c.walk(h, |o| stop(o as usize)).map(|o| o as usize)
}

/// A bounded-load balancer over a ring `P` (by default a [`HashRing`]).
/// Not synchronized: `acquire` and `release` take `&mut self`; see
/// [`SharedBoundedLoad`] for the thread-safe form.
#[derive(Debug, Clone)]
pub struct BoundedLoad<P = HashRing> {
    ring: P,
    c: f64,
    /// `loads[i]` is the load of node index i.
    loads: Vec<u64>,
    total: u64,
    total_weight: u64,
}

/// Validates a balance factor: finite and greater than 1.
pub fn check_balance_factor(c: f64) -> Result<()> {
    if c.is_finite() && c > 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "balance factor must be a finite number greater than 1, got {c}"
        )))
    }
}

impl<P: Walk> BoundedLoad<P> {
    /// A balancer over `ring` with balance factor `c` (finite, > 1), every
    /// load 0.
    pub fn new(ring: P, c: f64) -> Result<Self> {
        check_balance_factor(c)?;
        let mut b = BoundedLoad {
            loads: vec![0; ring.len()],
            ring,
            c,
            total: 0,
            total_weight: 0,
        };
        b.total_weight = b.weight_sum();
        Ok(b)
    }

    /// Like [`Self::new`] with the factor as HAProxy's and Envoy's integer
    /// percentage: `percent / 100`, so `percent` must exceed 100.
    pub fn from_percent(ring: P, percent: u32) -> Result<Self> {
        if percent <= 100 {
            return Err(Error::invalid(format!(
                "balance factor percentage must be greater than 100, got {percent}"
            )));
        }
        Self::new(ring, percent as f64 / 100.0)
    }

    fn weight_sum(&self) -> u64 {
        (0..self.ring.len())
            .filter_map(|i| self.ring.node_weight(i))
            .map(u64::from)
            .sum()
    }

    /// The balance factor `c`.
    pub fn balance_factor(&self) -> f64 {
        self.c
    }

    /// The ring, read-only (change membership through this balancer so the
    /// loads stay aligned).
    pub fn ring(&self) -> &P {
        &self.ring
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Each node's load, by node index.
    pub fn loads(&self) -> &[u64] {
        &self.loads
    }

    /// The load of node `index`.
    pub fn load(&self, index: usize) -> Option<u64> {
        self.loads.get(index).copied()
    }

    /// The sum of all loads.
    pub fn total_load(&self) -> u64 {
        self.total
    }

    /// Capacity of node `index` when the total load, counting the key
    /// being placed, is `total`; may be +inf for a huge `c`.
    #[inline]
    fn cap(&self, index: usize, total: u64) -> f64 {
        let w = self.ring.node_weight(index).unwrap_or(0) as f64;
        (self.c * total as f64 * w / self.total_weight as f64).ceil()
    }

    /// The capacity node `index` has for the next placement:
    /// `ceil(c × (total_load + 1) × w / W)` (saturating at `u64::MAX`).
    pub fn capacity(&self, index: usize) -> Option<u64> {
        (index < self.len()).then(|| self.cap(index, self.total + 1) as u64)
    }

    /// Gives `key` to the first node clockwise from it whose load is below
    /// its capacity, increments that node's load and returns its index.
    /// Fails only with [`Error::EmptyRing`].
    pub fn acquire(&mut self, key: &[u8]) -> Result<usize> {
        if self.ring.is_empty() {
            return Err(Error::EmptyRing);
        }
        let total = self.total + 1;
        let has_room = |i: usize| (self.loads[i] as f64) < self.cap(i, total);
        // A node that holds no point (a tiny ketama weight share) is never
        // walked; it is the fallback when every walked node is full.
        let i = self
            .ring
            .walk(key, has_room)
            .or_else(|| (0..self.loads.len()).find(|&i| has_room(i)))
            .expect("capacities sum to more than the total load");
        self.loads[i] += 1;
        self.total = total;
        Ok(i)
    }

    /// Like [`Self::acquire`], returning the node's name.
    pub fn acquire_node(&mut self, key: &[u8]) -> Result<&str> {
        let i = self.acquire(key)?;
        Ok(self.ring.node_name(i).expect("acquired index is in range"))
    }

    /// Gives back one unit of node `index`'s load. Fails with
    /// [`Error::NodeNotFound`] for an index out of range and
    /// [`Error::InvalidArgument`] when the node's load is already 0.
    pub fn release(&mut self, index: usize) -> Result<()> {
        let name = || self.ring.node_name(index).unwrap_or_default().to_owned();
        match self.loads.get(index) {
            None => Err(Error::NodeNotFound(format!("#{index}"))),
            Some(0) => Err(Error::invalid(format!(
                "node {:?} has no load to release",
                name()
            ))),
            Some(_) => {
                self.loads[index] -= 1;
                self.total -= 1;
                Ok(())
            }
        }
    }

    /// [`Self::release`] by node name.
    pub fn release_node(&mut self, name: &str) -> Result<()> {
        let i = self
            .ring
            .node_index(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))?;
        self.release(i)
    }

    /// Applies a membership change to the ring. Loads follow node names:
    /// a remaining node keeps its load, a new node starts at 0, a removed
    /// node's load is dropped. Returns the dropped load.
    pub fn change_membership(&mut self, change: impl FnOnce(&mut P) -> Result<()>) -> Result<u64> {
        let before: Vec<(String, u64)> = (0..self.ring.len())
            .filter_map(|i| Some((self.ring.node_name(i)?.to_owned(), self.loads[i])))
            .collect();
        let result = change(&mut self.ring);
        // Realign even on failure: the change may have done part of its work.
        let mut loads = vec![0u64; self.ring.len()];
        let mut dropped = 0;
        for (name, load) in before {
            match self.ring.node_index(&name) {
                Some(i) => loads[i] = load,
                None => dropped += load,
            }
        }
        self.total = loads.iter().sum();
        self.loads = loads;
        self.total_weight = self.weight_sum();
        result.map(|()| dropped)
    }

    /// Sets every load to 0.
    pub fn reset_loads(&mut self) {
        self.loads.fill(0);
        self.total = 0;
    }
}

impl BoundedLoad<HashRing> {
    /// Adds a node with load 0.
    pub fn add_node(&mut self, name: &str, weight: u32) -> Result<()> {
        self.change_membership(|r| r.add_node(name, weight))
            .map(|_| ())
    }

    /// Removes a node and drops its load; returns that load (the number of
    /// keys the caller must re-acquire elsewhere).
    pub fn remove_node(&mut self, name: &str) -> Result<u64> {
        self.change_membership(|r| r.remove_node(name))
    }
}

/// A [`BoundedLoad`] behind a mutex, for many threads.
///
/// A mutex, not atomics: `acquire` reads every load it walks past and the
/// total (which sets every capacity), then increments one load and the
/// total. With per-node atomics two threads could both see the last free
/// slot of a node and both take it, breaking the bound; making that safe
/// would need a retry loop over a consistent (total, loads) pair. The
/// critical section is a short walk with no allocation, so a mutex is both
/// correct and cheap.
#[derive(Debug)]
pub struct SharedBoundedLoad<P = HashRing> {
    inner: Mutex<BoundedLoad<P>>,
}

impl<P: Walk> SharedBoundedLoad<P> {
    /// Wraps a balancer.
    pub fn new(balancer: BoundedLoad<P>) -> Self {
        SharedBoundedLoad {
            inner: Mutex::new(balancer),
        }
    }

    /// Locks the balancer for a compound operation (acquire and read the
    /// node's name, change membership, ...). Poisoning is ignored: every
    /// change to a balancer completes or leaves it consistent.
    pub fn lock(&self) -> MutexGuard<'_, BoundedLoad<P>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`BoundedLoad::acquire`].
    pub fn acquire(&self, key: &[u8]) -> Result<usize> {
        self.lock().acquire(key)
    }

    /// [`BoundedLoad::release`].
    pub fn release(&self, index: usize) -> Result<()> {
        self.lock().release(index)
    }

    /// [`BoundedLoad::release_node`].
    pub fn release_node(&self, name: &str) -> Result<()> {
        self.lock().release_node(name)
    }

    /// A copy of every load, by node index.
    pub fn loads(&self) -> Vec<u64> {
        self.lock().loads().to_vec()
    }

    /// The balancer, unwrapped.
    pub fn into_inner(self) -> BoundedLoad<P> {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// The balancer, for exclusive use (no locking needed).
    pub fn get_mut(&mut self) -> &mut BoundedLoad<P> {
        self.inner.get_mut().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> HashRing {
        HashRing::from_nodes(40, (0..n).map(|i| (format!("n{i}"), 1))).unwrap()
    }

    #[test]
    fn capacity_formula() {
        let mut b = BoundedLoad::new(ring(4), 1.25).unwrap();
        // ceil(1.25 × 1 / 4) = 1
        assert_eq!(b.capacity(0), Some(1));
        // While L + 1 <= 3 the cap is ceil(1.25 × 3 / 4) = 1: three keys
        // land on three different nodes.
        for k in 0..3 {
            b.acquire(format!("k{k}").as_bytes()).unwrap();
        }
        assert!(b.loads().iter().all(|&l| l <= 1), "{:?}", b.loads());
        // L = 3: ceil(1.25 × 4 / 4) = 2
        assert_eq!(b.capacity(0), Some(2));
        b.acquire(b"k3").unwrap();
        // L = 4: ceil(1.25 × 5 / 4) = ceil(1.5625) = 2
        assert_eq!(b.capacity(0), Some(2));
        assert_eq!(b.capacity(4), None);
    }

    #[test]
    fn weighted_capacity() {
        let r = HashRing::from_nodes(40, [("a", 1), ("b", 3)]).unwrap();
        let mut b = BoundedLoad::new(r, 2.0).unwrap();
        for k in 0..99 {
            b.acquire(format!("k{k}").as_bytes()).unwrap();
        }
        // L = 99: a: ceil(2 × 100 × 1/4) = 50, b: ceil(2 × 100 × 3/4) = 150.
        assert_eq!(b.capacity(0), Some(50));
        assert_eq!(b.capacity(1), Some(150));
    }

    #[test]
    fn bad_factors_are_rejected() {
        for c in [1.0, 0.5, -2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                matches!(BoundedLoad::new(ring(2), c), Err(Error::InvalidArgument(_))),
                "{c}"
            );
        }
        assert!(BoundedLoad::from_percent(ring(2), 100).is_err());
        assert_eq!(
            BoundedLoad::from_percent(ring(2), 150)
                .unwrap()
                .balance_factor(),
            1.5
        );
    }

    #[test]
    fn release_errors() {
        let mut b = BoundedLoad::new(ring(2), 1.5).unwrap();
        assert!(matches!(b.release(0), Err(Error::InvalidArgument(_))));
        assert!(matches!(b.release(2), Err(Error::NodeNotFound(_))));
        assert!(matches!(b.release_node("zz"), Err(Error::NodeNotFound(_))));
        let i = b.acquire(b"x").unwrap();
        b.release(i).unwrap();
        assert_eq!(b.total_load(), 0);
        let mut e = BoundedLoad::new(HashRing::new(), 1.5).unwrap();
        assert_eq!(e.acquire(b"x"), Err(Error::EmptyRing));
    }

    #[test]
    fn membership_keeps_loads_by_name() {
        let mut b = BoundedLoad::new(ring(3), 3.0).unwrap();
        for k in 0..30 {
            b.acquire(format!("k{k}").as_bytes()).unwrap();
        }
        let before = b.loads().to_vec();
        b.add_node("new", 2).unwrap();
        assert_eq!(&b.loads()[..3], &before[..]);
        assert_eq!(b.loads()[3], 0);
        let dropped = b.remove_node("n0").unwrap();
        assert_eq!(dropped, before[0]);
        assert_eq!(b.loads(), &[before[1], before[2], 0]);
        assert_eq!(b.total_load(), 30 - before[0]);
        assert!(matches!(b.remove_node("n0"), Err(Error::NodeNotFound(_))));
        assert!(matches!(b.add_node("n1", 1), Err(Error::NodeExists(_))));
        assert_eq!(b.total_load(), 30 - before[0]);
    }
}
