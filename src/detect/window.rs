//! The sliding window of heartbeat inter-arrival times, with exact running
//! sums so the mean and variance cost O(1) per heartbeat and do not drift
//! as samples are evicted (integer sums, not floats). The sums are of each
//! sample's offset from a pivot near the mean: the variance is
//! shift-invariant, and small offsets keep E[d²] − E[d]² free of the
//! cancellation that E[x²] − E[x]² suffers at nanosecond magnitudes. The
//! pivot moves to the current mean once per `capacity` pushes (the sums are
//! then recomputed: amortized O(1)).

use std::collections::VecDeque;

/// The largest number of samples a window may keep.
pub const MAX_WINDOW: usize = 1 << 16;

/// Intervals longer than this (2^55 ns, about 417 days) are recorded as
/// this, so a full window's sum of squares (at most 2^16 · 2^110 = 2^126)
/// fits in u128.
pub const MAX_INTERVAL_NS: u64 = 1 << 55;

/// At most `capacity` inter-arrival times, oldest first.
#[derive(Debug, Clone)]
pub struct Window {
    capacity: usize,
    samples: VecDeque<u64>,
    pivot: u64,
    /// Pushes since the pivot last moved.
    since_rebase: usize,
    /// Σ (x − pivot).
    sum: i128,
    /// Σ (x − pivot)².
    sum_sq: u128,
}

impl Window {
    /// An empty window of `capacity` (1..=[`MAX_WINDOW`]) samples.
    pub fn new(capacity: usize) -> Self {
        debug_assert!((1..=MAX_WINDOW).contains(&capacity));
        Window {
            capacity,
            samples: VecDeque::with_capacity(capacity.min(1024)),
            pivot: 0,
            since_rebase: 0,
            sum: 0,
            sum_sq: 0,
        }
    }

    /// Appends an interval, evicting the oldest when full.
    pub fn push(&mut self, interval_ns: u64) {
        let x = interval_ns.min(MAX_INTERVAL_NS);
        if self.samples.is_empty() {
            self.pivot = x;
        }
        if self.samples.len() == self.capacity
            && let Some(old) = self.samples.pop_front()
        {
            let d = self.offset(old);
            self.sum -= d;
            self.sum_sq -= d.unsigned_abs() * d.unsigned_abs();
        }
        self.samples.push_back(x);
        let d = self.offset(x);
        self.sum += d;
        self.sum_sq += d.unsigned_abs() * d.unsigned_abs();
        self.since_rebase += 1;
        if self.since_rebase >= self.capacity {
            self.rebase();
        }
    }

    /// Moves the pivot to the (rounded) mean and recomputes the sums.
    fn rebase(&mut self) {
        self.pivot = self.mean().round() as u64;
        self.since_rebase = 0;
        self.sum = 0;
        self.sum_sq = 0;
        for i in 0..self.samples.len() {
            let d = self.offset(self.samples[i]);
            self.sum += d;
            self.sum_sq += d.unsigned_abs() * d.unsigned_abs();
        }
    }

    /// x − pivot: |offset| ≤ 2^55, so its square fits in u128 2^16 times over.
    fn offset(&self, x: u64) -> i128 {
        i128::from(x) - i128::from(self.pivot)
    }

    /// How many samples the window holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.samples.iter().copied()
    }

    /// The mean in nanoseconds (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.pivot as f64 + self.sum as f64 / self.samples.len() as f64
    }

    /// The population variance E[d²] − E[d]² in ns² with d = x − pivot
    /// (Akka computes the same population variance from E[x²] − E[x]²;
    /// clamped at 0 against rounding).
    pub fn variance(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let n = self.samples.len() as f64;
        let m = self.sum as f64 / n;
        (self.sum_sq as f64 / n - m * m).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_and_keeps_exact_sums() {
        let mut w = Window::new(3);
        for x in [10, 20, 30, 40] {
            w.push(x);
        }
        // 10 was evicted: [20, 30, 40], mean 30,
        // variance ((-10)² + 0² + 10²) / 3 = 200/3 = 66.67.
        assert_eq!(w.samples().collect::<Vec<_>>(), [20, 30, 40]);
        assert_eq!(w.mean(), 30.0);
        assert!((w.variance() - 200.0 / 3.0).abs() < 1e-9);
        // A million pushes later the sums are still exact.
        for i in 0..1_000_000u64 {
            w.push(1_000_000_000 + i % 7);
        }
        // Last three: i = 999_997, 999_998, 999_999 → i % 7 = 5, 6, 0
        // (999_999 = 7 · 142_857): mean 1e9 + 11/3, variance
        // (25 + 36 + 0)/3 − (11/3)² = 62/9 (exact to 1e-6 even though the
        // samples are 1e9 ns: the sums are of offsets from a nearby pivot).
        assert!((w.mean() - (1e9 + 11.0 / 3.0)).abs() < 1e-6);
        assert!((w.variance() - 62.0 / 9.0).abs() < 1e-6, "{}", w.variance());
    }

    #[test]
    fn huge_intervals_are_clamped() {
        let mut w = Window::new(MAX_WINDOW);
        for _ in 0..MAX_WINDOW + 5 {
            w.push(u64::MAX);
        }
        assert_eq!(w.len(), MAX_WINDOW);
        assert_eq!(w.mean(), MAX_INTERVAL_NS as f64);
        assert_eq!(w.variance(), 0.0);
    }
}
