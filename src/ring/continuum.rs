//! The sorted circle of points shared by every ring, with a prefix index
//! for O(1) expected lookup.
//!
//! Points are 64-bit positions, each owned by a node index. A lookup finds
//! the first point at or after a hash, wrapping to the start. A plain binary
//! search over 16,000 points costs ~14 dependent cache misses; instead, as
//! groupcache's consistent-hash table does, an index on the top `bits` bits
//! of the hash narrows the search to the few points that share that prefix.

/// Sorted points with their owners and a prefix index.
#[derive(Debug, Clone)]
pub struct Continuum {
    /// Point positions, ascending, followed by [`PAD`] sentinels of
    /// `u64::MAX` so the lookup can scan a fixed width without bounds checks.
    points: Vec<u64>,
    /// Number of real points.
    len: usize,
    /// `owners[i]` is the node index owning `points[i]`; `owners[len]` repeats
    /// `owners[0]` so the wrap-around needs no branch.
    owners: Vec<u32>,
    /// `index[p]` = first i with `points[i] >> shift >= p`; length 2^bits + 1.
    index: Vec<u32>,
    /// For rings larger than [`CACHED_POINTS`]: `bucket_owner[p]` is the
    /// owner of point `index[p]` (wrapping), so a lookup whose bucket holds
    /// no point (most of them) needs no access to the points.
    bucket_owner: Vec<u32>,
    shift: u32,
}

/// Up to this many points the continuum and its index stay in L2 cache.
const CACHED_POINTS: usize = 1 << 16;

/// Buckets with at most this many points are scanned branch-free; larger
/// ones (rare: the index has about two buckets per point) binary-searched.
const PAD: usize = 4;

impl Default for Continuum {
    fn default() -> Self {
        Continuum::from_sorted(Vec::new(), Vec::new())
    }
}

impl Continuum {
    /// Builds from points already sorted by position (ties in the order
    /// the caller wants them found).
    pub fn from_sorted(mut points: Vec<u64>, mut owners: Vec<u32>) -> Self {
        debug_assert_eq!(points.len(), owners.len());
        debug_assert!(points.windows(2).all(|w| w[0] <= w[1]));
        let len = points.len();
        points.extend([u64::MAX; PAD]);
        owners.push(owners.first().copied().unwrap_or(0));
        let mut c = Continuum {
            points,
            len,
            owners,
            index: Vec::new(),
            bucket_owner: Vec::new(),
            shift: 64,
        };
        c.build_index();
        c
    }

    fn build_index(&mut self) {
        let n = self.len;
        // Two to four buckets per point, capped at 2^22 (32 MiB of index).
        let bits = if n == 0 {
            0
        } else {
            ((n as u64).next_power_of_two().trailing_zeros() + 1).min(22)
        };
        self.shift = 64 - bits;
        let buckets = 1usize << bits;
        let mut index = Vec::with_capacity(buckets + 1);
        let mut i = 0usize;
        for p in 0..buckets as u64 {
            while i < n && self.prefix(self.points[i]) < p {
                i += 1;
            }
            index.push(i as u32);
        }
        index.push(n as u32);
        // owners[n] repeats owners[0]: the wrap-around.
        self.bucket_owner = if n > CACHED_POINTS {
            index.iter().map(|&i| self.owners[i as usize]).collect()
        } else {
            Vec::new()
        };
        self.index = index;
    }

    #[inline]
    fn prefix(&self, h: u64) -> u64 {
        // shift is 64 when the index has a single bucket.
        h.checked_shr(self.shift).unwrap_or(0)
    }

    /// Number of points.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no points.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Point positions, ascending.
    pub fn points(&self) -> &[u64] {
        &self.points[..self.len]
    }

    /// Owner of each point.
    pub fn owners(&self) -> &[u32] {
        &self.owners[..self.len]
    }

    /// Position of the first point `>= h`, wrapping to 0 past the end.
    /// The continuum must not be empty.
    #[inline]
    pub fn position(&self, h: u64) -> usize {
        let p = self.prefix(h) as usize;
        let lo = self.index[p] as usize;
        let hi = self.index[p + 1] as usize;
        let found = if hi - lo <= PAD {
            // Every point past this bucket (and every sentinel) is > h, so
            // counting the points < h among the next PAD gives the answer
            // with no data-dependent branch.
            let w: &[u64; PAD] = self.points[lo..lo + PAD].try_into().expect("padded");
            lo + w.iter().map(|&x| (x < h) as usize).sum::<usize>()
        } else {
            lo + self.points[lo..hi].partition_point(|&x| x < h)
        };
        if found == self.len { 0 } else { found }
    }

    /// Owner of the first point `>= h` (wrapping). Must not be empty.
    #[inline]
    pub fn owner_at_or_after(&self, h: u64) -> u32 {
        let p = self.prefix(h) as usize;
        let lo = self.index[p] as usize;
        let hi = self.index[p + 1] as usize;
        // A ring that fits in cache is fastest with no data-dependent
        // branch; in a large one each access is a cache miss, so an empty
        // bucket answers from the index alone. (The test is on the ring's
        // size: always predicted.)
        if self.len <= CACHED_POINTS {
            return self.owners[self.position(h)];
        }
        if lo == hi {
            return self.bucket_owner[p];
        }
        let found = if hi - lo <= PAD {
            let w: &[u64; PAD] = self.points[lo..lo + PAD].try_into().expect("padded");
            lo + w.iter().map(|&x| (x < h) as usize).sum::<usize>()
        } else {
            lo + self.points[lo..hi].partition_point(|&x| x < h)
        };
        // found <= len, and owners[len] is owners[0]: the wrap-around.
        self.owners[found]
    }

    /// The continuum without `owner`'s points; with `renumber`, owners after
    /// it shift down by one (the owner left the node list).
    pub fn without_owner(&self, owner: u32, renumber: bool) -> Continuum {
        let (pts, owners) = self
            .points()
            .iter()
            .zip(self.owners())
            .filter(|&(_, &o)| o != owner)
            .map(|(&p, &o)| (p, if renumber && o > owner { o - 1 } else { o }))
            .unzip();
        Continuum::from_sorted(pts, owners)
    }

    /// Walks the circle from the first point `>= h` and returns the first
    /// `n` distinct owners in order. `node_count` bounds the owner indices;
    /// `n` must not exceed the number of distinct owners.
    pub fn distinct_owners(&self, h: u64, n: usize, node_count: usize, out: &mut Vec<u32>) {
        out.clear();
        if n == 0 || self.is_empty() {
            return;
        }
        let start = self.position(h);
        let len = self.len;
        let mut seen = vec![false; node_count];
        for step in 0..len {
            let o = self.owners[(start + step) % len];
            if !seen[o as usize] {
                seen[o as usize] = true;
                out.push(o);
                if out.len() == n {
                    return;
                }
            }
        }
    }

    /// Visits the owners of one full turn of points clockwise from the
    /// first point `>= h` (an owner repeats once per point it holds) and
    /// returns the first for which `stop` is true; `None` on an empty
    /// continuum or when `stop` is never true.
    pub fn walk(&self, h: u64, mut stop: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        let start = self.position(h);
        let owners = &self.owners[..self.len];
        owners[start..]
            .iter()
            .chain(&owners[..start])
            .copied()
            .find(|&o| stop(o))
    }

    /// The exact fraction of the 2^64 circle each owner holds: point `i`
    /// holds the arc `(points[i-1], points[i]]`, the first point also the
    /// wrap-around arc. Owners with no points get 0.
    pub fn shares(&self, node_count: usize) -> Vec<f64> {
        let mut arcs = vec![0u128; node_count];
        let n = self.len;
        if n == 0 {
            return vec![0.0; node_count];
        }
        for i in 0..n {
            let arc: u128 = if i == 0 {
                // From just after the last point, around through 0, to the first.
                (1u128 << 64) - self.points[n - 1] as u128 + self.points[0] as u128
            } else {
                (self.points[i] - self.points[i - 1]) as u128
            };
            arcs[self.owners[i] as usize] += arc;
        }
        let total = (1u128 << 64) as f64;
        arcs.into_iter().map(|a| a as f64 / total).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_position(points: &[u64], h: u64) -> usize {
        let i = points.partition_point(|&x| x < h);
        if i == points.len() { 0 } else { i }
    }

    #[test]
    fn position_matches_binary_search() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [1usize, 2, 3, 7, 100, 1000, 5000] {
            let mut pts: Vec<u64> = (0..n).map(|_| next()).collect();
            // Clusters and duplicates exercise the binary-search branch.
            pts.extend(std::iter::repeat_n(pts[0], 20));
            pts.sort_unstable();
            let owners = (0..pts.len() as u32).collect();
            let c = Continuum::from_sorted(pts.clone(), owners);
            for _ in 0..2000 {
                let h = next();
                assert_eq!(c.position(h), naive_position(&pts, h), "n={n} h={h}");
            }
            for &p in &pts {
                assert_eq!(c.position(p), naive_position(&pts, p));
                assert_eq!(
                    c.position(p.wrapping_add(1)),
                    naive_position(&pts, p.wrapping_add(1))
                );
            }
            assert_eq!(c.position(0), 0);
            assert_eq!(c.position(u64::MAX), naive_position(&pts, u64::MAX));
        }
    }

    #[test]
    fn shares_sum_to_one_and_are_exact() {
        // Two points at a quarter and three quarters: each owns half.
        let c = Continuum::from_sorted(vec![1 << 62, 3 << 62], vec![0, 1]);
        assert_eq!(c.shares(2), vec![0.5, 0.5]);
        let c = Continuum::from_sorted(vec![1 << 62, 1 << 63], vec![0, 1]);
        assert_eq!(c.shares(3), vec![0.75, 0.25, 0.0]);
    }

    #[test]
    fn distinct_owners_walks_and_wraps() {
        let c = Continuum::from_sorted(vec![10, 20, 30, 40], vec![0, 0, 1, 2]);
        let mut out = Vec::new();
        c.distinct_owners(35, 3, 3, &mut out);
        assert_eq!(out, vec![2, 0, 1]);
        c.distinct_owners(5, 2, 3, &mut out);
        assert_eq!(out, vec![0, 1]);
    }

    #[test]
    fn walk_visits_one_turn_from_the_key() {
        let c = Continuum::from_sorted(vec![10, 20, 30, 40], vec![0, 0, 1, 2]);
        let mut seen = Vec::new();
        assert_eq!(
            c.walk(25, |o| {
                seen.push(o);
                false
            }),
            None
        );
        assert_eq!(seen, vec![1, 2, 0, 0]);
        assert_eq!(c.walk(41, |o| o == 1), Some(1));
        assert_eq!(Continuum::default().walk(0, |_| true), None);
    }
}
