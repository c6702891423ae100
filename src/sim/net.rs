//! A deterministic, fault-injecting network for simulations: messages of any
//! type between numbered nodes, delayed, lost, duplicated and reordered as a
//! seed dictates, and cut by partitions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::rng::SplitMix64;

/// How unreliable the network is. Times are nanoseconds of simulated time;
/// probabilities are per million messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Fewest nanoseconds a message spends in flight.
    pub min_delay: u64,
    /// Most nanoseconds a message spends in flight (delays are uniform in
    /// between, so messages overtake one another: reordering).
    pub max_delay: u64,
    /// Chance a message is lost, per million.
    pub loss_per_million: u32,
    /// Chance a message is delivered twice, per million.
    pub duplicate_per_million: u32,
}

impl NetConfig {
    /// A network that delivers everything once after `delay`.
    pub fn reliable(delay: u64) -> Self {
        NetConfig {
            min_delay: delay,
            max_delay: delay,
            loss_per_million: 0,
            duplicate_per_million: 0,
        }
    }
}

/// Counts of what the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to `send`.
    pub sent: u64,
    /// Messages handed out by `deliver_due`.
    pub delivered: u64,
    /// Messages lost at random.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Messages dropped because a partition separated sender and receiver.
    pub cut: u64,
}

struct InFlight<M> {
    at: u64,
    seq: u64,
    from: u32,
    to: u32,
    message: M,
}

impl<M> PartialEq for InFlight<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<M> Eq for InFlight<M> {}
impl<M> PartialOrd for InFlight<M> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for InFlight<M> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The simulated network. Node ids are `u32`; a node not named in any
/// partition group is reachable from everyone.
pub struct Network<M> {
    config: NetConfig,
    rng: SplitMix64,
    queue: BinaryHeap<Reverse<InFlight<M>>>,
    seq: u64,
    /// `group[node]`: nodes in different groups cannot talk. Empty = healed.
    groups: Vec<(u32, u32)>,
    stats: NetStats,
}

impl<M: Clone> Network<M> {
    /// A network with faults drawn from `seed`.
    pub fn new(config: NetConfig, seed: u64) -> Self {
        Network {
            config,
            rng: SplitMix64::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            groups: Vec::new(),
            stats: NetStats::default(),
        }
    }

    /// Change the fault settings from now on.
    pub fn set_config(&mut self, config: NetConfig) {
        self.config = config;
    }

    /// The fault settings.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Put `message` in flight at `now`, subject to loss, duplication,
    /// delay and the partition in force.
    pub fn send(&mut self, now: u64, from: u32, to: u32, message: M) {
        self.stats.sent += 1;
        if !self.connected(from, to) {
            self.stats.cut += 1;
            return;
        }
        if self.rng.chance(self.config.loss_per_million) {
            self.stats.lost += 1;
            return;
        }
        if self.rng.chance(self.config.duplicate_per_million) {
            self.stats.duplicated += 1;
            self.enqueue(now, from, to, message.clone());
        }
        self.enqueue(now, from, to, message);
    }

    fn enqueue(&mut self, now: u64, from: u32, to: u32, message: M) {
        let delay = self.rng.between(
            self.config.min_delay,
            self.config.max_delay.max(self.config.min_delay),
        );
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at: now.saturating_add(delay),
            seq: self.seq,
            from,
            to,
            message,
        }));
    }

    /// When the next message arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<u64> {
        self.queue.peek().map(|m| m.0.at)
    }

    /// The next message due at or before `now` as `(from, to, message)`.
    /// Messages whose ends a partition separated while in flight are dropped.
    pub fn deliver_due(&mut self, now: u64) -> Option<(u32, u32, M)> {
        while self.queue.peek().is_some_and(|m| m.0.at <= now) {
            let Reverse(m) = self.queue.pop().expect("peeked");
            if !self.connected(m.from, m.to) {
                self.stats.cut += 1;
                continue;
            }
            self.stats.delivered += 1;
            return Some((m.from, m.to, m.message));
        }
        None
    }

    /// Drop every message in flight to or from `node` (it crashed: what was
    /// on its sockets is gone).
    pub fn drop_node(&mut self, node: u32) {
        let before = self.queue.len();
        let kept: Vec<_> = std::mem::take(&mut self.queue)
            .into_vec()
            .into_iter()
            .filter(|m| m.0.from != node && m.0.to != node)
            .collect();
        self.stats.lost += (before - kept.len()) as u64;
        self.queue = kept.into();
    }

    /// Split the network: nodes in different `groups` cannot exchange
    /// messages until [`heal`](Network::heal). Nodes in no group stay
    /// connected to everyone.
    pub fn partition(&mut self, groups: &[Vec<u32>]) {
        self.groups.clear();
        for (g, members) in groups.iter().enumerate() {
            for &n in members {
                self.groups.push((n, g as u32));
            }
        }
    }

    /// Reconnect everyone.
    pub fn heal(&mut self) {
        self.groups.clear();
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Whether `a` and `b` can exchange messages now.
    pub fn connected(&self, a: u32, b: u32) -> bool {
        let group = |n| self.groups.iter().find(|(m, _)| *m == n).map(|(_, g)| *g);
        match (group(a), group(b)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// What the network has done so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Draw from the network's random stream (for schedulers that want one
    /// seed to drive everything).
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(net: &mut Network<u32>, now: u64) -> Vec<(u32, u32, u32)> {
        std::iter::from_fn(|| net.deliver_due(now)).collect()
    }

    #[test]
    fn reliable_network_delivers_in_send_order_after_delay() {
        let mut net = Network::new(NetConfig::reliable(10), 1);
        net.send(0, 1, 2, 100);
        net.send(0, 1, 2, 101);
        assert_eq!(net.next_arrival(), Some(10));
        assert!(drain(&mut net, 9).is_empty());
        assert_eq!(drain(&mut net, 10), vec![(1, 2, 100), (1, 2, 101)]);
        assert_eq!(net.stats().delivered, 2);
    }

    #[test]
    fn faults_follow_the_seed() {
        let cfg = NetConfig {
            min_delay: 1,
            max_delay: 100,
            loss_per_million: 200_000,
            duplicate_per_million: 200_000,
        };
        let run = |seed| {
            let mut net = Network::new(cfg.clone(), seed);
            for i in 0..1000 {
                net.send(i, 0, 1, i as u32);
            }
            (drain(&mut net, u64::MAX), net.stats())
        };
        let (a, sa) = run(5);
        assert_eq!(run(5).0, a);
        assert_ne!(run(6).0, a);
        assert!(sa.lost > 100 && sa.duplicated > 100, "{sa:?}");
        assert_eq!(sa.delivered as usize, a.len());
        assert_eq!(sa.sent - sa.lost + sa.duplicated, sa.delivered);
        // Random delays reorder.
        assert!(a.windows(2).any(|w| w[0].2 > w[1].2));
    }

    #[test]
    fn partitions_cut_in_flight_and_new_messages() {
        let mut net = Network::new(NetConfig::reliable(5), 1);
        net.send(0, 1, 2, 1);
        net.send(0, 1, 3, 2);
        net.partition(&[vec![1, 3], vec![2]]);
        net.send(1, 2, 1, 3);
        assert!(!net.connected(1, 2));
        assert!(net.connected(1, 3));
        assert!(net.connected(4, 2));
        assert_eq!(drain(&mut net, 100), vec![(1, 3, 2)]);
        net.heal();
        net.send(100, 2, 1, 4);
        assert_eq!(drain(&mut net, 200), vec![(2, 1, 4)]);
        assert_eq!(net.stats().cut, 2);
        net.send(200, 1, 2, 5);
        net.drop_node(2);
        assert!(drain(&mut net, 300).is_empty());
    }
}
