//! Phi-accrual failure detection (Hayashibara et al. 2004, as in Akka's
//! `PhiAccrualFailureDetector`): instead of a yes/no timeout, each
//! monitored node gets a suspicion level φ that grows with the time since
//! its last heartbeat, scaled by how regular its heartbeats have been.
//!
//! Sans-IO: every call takes the current time as u64 nanoseconds of a
//! monotonic clock the caller owns; nothing here reads a clock or sleeps.
//!
//! Times out of order are not errors, because they are what concurrent use
//! looks like: two threads read the clock, and the later reading lands
//! first. So a query (`phi`, `is_available`) at or before a node's latest
//! heartbeat is answered as at that heartbeat (elapsed time 0), and a
//! heartbeat at or before the latest one is absorbed: it is concurrent with
//! a heartbeat already counted, so it changes nothing (the latest stays the
//! latest, and no interval is recorded: a negative or zero interval would
//! teach the window a rhythm the node does not have).
//!
//! Per node, as Akka does:
//! - the first heartbeat only starts the clock; the window is seeded with
//!   two samples, `estimate − estimate/4` and `estimate + estimate/4`
//!   (mean = `first_heartbeat_estimate`, std = estimate/4);
//! - every later heartbeat records its inter-arrival time, but only if the
//!   node was still available at that moment, so one long pause does not
//!   teach the detector that long pauses are normal;
//! - φ(now) = [`phi::phi`]`(now − last, mean + acceptable_pause,
//!   max(std, min_std_dev))`, and the node is available while φ < threshold.
//!
//! ```
//! use quorumkit::detect::{DetectorConfig, FailureDetector};
//!
//! const S: u64 = 1_000_000_000;
//! let mut d = FailureDetector::new(DetectorConfig::default()).unwrap();
//! for i in 0..10 {
//!     d.heartbeat("node-a", i * S).unwrap();
//! }
//! assert!(d.is_available("node-a", 10 * S).unwrap());
//! assert!(!d.is_available("node-a", 30 * S).unwrap());
//! ```

pub mod phi;
mod window;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
pub use window::MAX_INTERVAL_NS;
use window::{MAX_WINDOW, Window};

/// How a [`FailureDetector`] judges its nodes. Times are nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// φ at and above which a node counts as unavailable (finite, > 0).
    /// Akka's default 8.0: a false suspicion about once in 10^8 checks
    /// if the heartbeats were truly normal.
    pub threshold: f64,
    /// How many inter-arrival times each node's window keeps (1..=65536).
    pub max_samples: usize,
    /// A floor for the standard deviation (> 0), so a very regular node is
    /// not suspected at the first slightly late heartbeat.
    pub min_std_dev_ns: u64,
    /// Added to the mean: a pause this long (GC, network hiccup) costs
    /// little suspicion.
    pub acceptable_pause_ns: u64,
    /// The assumed mean interval before any has been measured
    /// (1..=[`MAX_INTERVAL_NS`], about 417 days; longer intervals cannot
    /// be represented exactly in the window's sums).
    pub first_heartbeat_estimate_ns: u64,
}

impl Default for DetectorConfig {
    /// Akka's defaults: threshold 8, 1000 samples, min std 100 ms,
    /// acceptable pause 3 s, first heartbeat estimate 1 s.
    fn default() -> Self {
        DetectorConfig {
            threshold: 8.0,
            max_samples: 1000,
            min_std_dev_ns: 100_000_000,
            acceptable_pause_ns: 3_000_000_000,
            first_heartbeat_estimate_ns: 1_000_000_000,
        }
    }
}

impl DetectorConfig {
    /// `InvalidArgument` unless every field is in range.
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(Error::invalid(format!(
                "threshold must be finite and > 0, got {}",
                self.threshold
            )));
        }
        if !(1..=MAX_WINDOW).contains(&self.max_samples) {
            return Err(Error::invalid(format!(
                "max_samples must be in 1..={MAX_WINDOW}, got {}",
                self.max_samples
            )));
        }
        if self.min_std_dev_ns == 0 {
            return Err(Error::invalid("min_std_dev must be > 0"));
        }
        if !(1..=MAX_INTERVAL_NS).contains(&self.first_heartbeat_estimate_ns) {
            return Err(Error::invalid(format!(
                "first_heartbeat_estimate must be in 1 ns..={MAX_INTERVAL_NS} ns (about 417 days), got {} ns",
                self.first_heartbeat_estimate_ns
            )));
        }
        if self.acceptable_pause_ns > MAX_INTERVAL_NS {
            return Err(Error::invalid(format!(
                "acceptable_pause must be at most {MAX_INTERVAL_NS} ns (about 417 days), got {} ns",
                self.acceptable_pause_ns
            )));
        }
        if self.min_std_dev_ns > MAX_INTERVAL_NS {
            return Err(Error::invalid(format!(
                "min_std_dev must be at most {MAX_INTERVAL_NS} ns (about 417 days), got {} ns",
                self.min_std_dev_ns
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Node {
    last_ns: u64,
    window: Window,
}

/// A registry of monitored nodes, each with its own heartbeat window.
/// Single-threaded (`&mut self` to record a heartbeat); wrap it in a lock
/// to share it (the C and Python faces do, and are safe to call from many
/// threads at once: see the module docs for times that arrive out of order).
#[derive(Debug, Clone)]
pub struct FailureDetector {
    config: DetectorConfig,
    nodes: BTreeMap<String, Node>,
}

impl FailureDetector {
    /// An empty registry; `InvalidArgument` for a bad config.
    pub fn new(config: DetectorConfig) -> Result<Self> {
        config.validate()?;
        Ok(FailureDetector {
            config,
            nodes: BTreeMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Records a heartbeat from `node` at `now_ns`; the first one registers
    /// the node. A heartbeat at or before the node's latest one is absorbed (see
    /// the module docs): `Ok`, and nothing changes.
    pub fn heartbeat(&mut self, node: &str, now_ns: u64) -> Result<()> {
        let config = self.config;
        if let Some(n) = self.nodes.get_mut(node) {
            let interval = now_ns.saturating_sub(n.last_ns);
            if interval == 0 {
                return Ok(()); // concurrent with (or a copy of) one already counted
            }
            // Akka's rule: a heartbeat after the node was already suspected
            // restarts the clock but does not enter the window.
            if node_phi(&config, n, interval) < config.threshold {
                n.window.push(interval);
            }
            n.last_ns = now_ns;
            return Ok(());
        }
        let mut window = Window::new(config.max_samples);
        let est = config.first_heartbeat_estimate_ns;
        let std = est / 4;
        window.push(est - std);
        window.push(est + std);
        self.nodes.insert(
            node.to_owned(),
            Node {
                last_ns: now_ns,
                window,
            },
        );
        Ok(())
    }

    /// The suspicion level of `node` at `now_ns` (≥ 0, may be `+inf`);
    /// at or before its latest heartbeat, φ at that heartbeat.
    /// `NodeNotFound` for a node never heard from (or removed).
    pub fn phi(&self, node: &str, now_ns: u64) -> Result<f64> {
        let n = self.get(node)?;
        Ok(node_phi(&self.config, n, now_ns.saturating_sub(n.last_ns)))
    }

    /// Whether φ(`node`, `now_ns`) is below the threshold. Errors as [`phi`](Self::phi).
    pub fn is_available(&self, node: &str, now_ns: u64) -> Result<bool> {
        Ok(self.phi(node, now_ns)? < self.config.threshold)
    }

    /// The time of `node`'s last heartbeat.
    pub fn last_heartbeat(&self, node: &str) -> Result<u64> {
        Ok(self.get(node)?.last_ns)
    }

    /// The inter-arrival times in `node`'s window, oldest first (the two
    /// seed samples included until they are evicted).
    pub fn intervals(&self, node: &str) -> Result<Vec<u64>> {
        Ok(self.get(node)?.window.samples().collect())
    }

    /// Stops monitoring `node`; `NodeNotFound` if it was not monitored.
    pub fn remove(&mut self, node: &str) -> Result<()> {
        self.nodes
            .remove(node)
            .map(|_| ())
            .ok_or_else(|| Error::NodeNotFound(node.to_owned()))
    }

    /// Whether `node` is monitored.
    pub fn contains(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
    }

    /// The monitored nodes in name order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.nodes.keys().map(String::as_str)
    }

    /// How many nodes are monitored.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is monitored.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn get(&self, node: &str) -> Result<&Node> {
        self.nodes
            .get(node)
            .ok_or_else(|| Error::NodeNotFound(node.to_owned()))
    }
}

fn node_phi(config: &DetectorConfig, n: &Node, elapsed_ns: u64) -> f64 {
    let mean = n.window.mean() + config.acceptable_pause_ns as f64;
    let std = libm::sqrt(n.window.variance()).max(config.min_std_dev_ns as f64);
    phi::phi(elapsed_ns as f64, mean, std)
}

#[cfg(test)]
mod tests;
