//! A simulated Multi-Paxos cluster: real [`Node`]s on in-memory storage,
//! wired through the fault-injecting [`Network`], on a simulated clock, with
//! every decision fed to the [`check`](super::check) checkers.
//!
//! Node ids are `0..n`, and a node's id is its index in every method here.
//! Everything, from network faults to each node's election jitter and clock
//! offset, follows from `SimConfig::seed`: one seed replays one run exactly.
//!
//! Time: the simulation's clock is `now()` (nanoseconds from 0). Node `i`
//! reads its own clock as `offset_i + now * (1 + rate_i)`: the offsets differ
//! by at most `max_skew` between any two nodes, the rates (parts per
//! million) by at most `max_rate_ppm`, so over one lease two clocks drift
//! apart by at most `max_rate_ppm * lease_duration / 10^6`, which
//! [`PaxosCluster::new`] requires to stay within the nodes'
//! `max_clock_drift`. Every node's clock is monotonic.
//!
//! ```
//! use quorumkit::sim::{PaxosCluster, SimConfig};
//!
//! let mut c = PaxosCluster::new(SimConfig::new(3, 42)).unwrap();
//! c.run_for(1_000_000_000).unwrap(); // one simulated second: an election
//! let leader = c.leader().expect("a leader");
//! let (_, cmd) = c.propose_new(None).unwrap();
//! c.run_for(100_000_000).unwrap();
//! assert!(c.is_decided_on(&cmd, &c.alive()));
//!
//! c.crash(leader).unwrap();
//! c.run_for(1_000_000_000).unwrap();
//! assert!(c.leader().is_some_and(|l| l != leader));
//! c.restart(leader).unwrap();
//! c.run_for(1_000_000_000).unwrap();
//! assert_eq!(c.decided(leader).concat(), vec![cmd]);
//! c.check().unwrap(); // no checker found a violation
//! ```

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::paxos::wire;
use crate::paxos::{
    Ballot, Batch, Command, Config, Envelope, Membership, MembershipChange, MemoryStorage, Message,
    Node, NodeId, Output, Slot,
};
use crate::rng::SplitMix64;

use super::check::{Checkers, Violation, ViolationKind};
use super::net::{NetConfig, NetStats, Network};

/// What the network carries: the envelope encoded by [`wire`], as a real
/// transport would carry it; it is decoded on delivery.
type Packet = Vec<u8>;

fn encode_packet(envelope: &Envelope) -> Packet {
    let mut out = Vec::with_capacity(32);
    wire::encode_envelope(envelope, &mut out);
    out
}

/// The message in `packet`, which the network carried from `from` to `to`.
fn decode_packet(packet: &[u8], from: NodeId, to: NodeId) -> std::result::Result<Message, String> {
    let env = wire::decode_envelope(packet).map_err(|e| e.to_string())?;
    if (env.from, env.to) != (from, to) {
        return Err(format!(
            "the envelope says {} -> {}, the network carried it {from} -> {to}",
            env.from, env.to
        ));
    }
    Ok(env.message)
}

/// What the simulator needs of a replica: [`Node`]'s interface over
/// [`MemoryStorage`]. The simulator runs real `Node`s; tests implement it
/// for deliberately broken replicas to show the checkers catch them.
pub trait SimNode: Sized {
    /// Start (or restart) from `storage` at local time `now`.
    fn start(config: Config, storage: MemoryStorage, now: u64) -> Result<Self>;
    /// Handle a message from `from`.
    fn step(&mut self, from: NodeId, message: Message, now: u64) -> Result<()>;
    /// Let time pass.
    fn tick(&mut self, now: u64) -> Result<()>;
    /// Propose a command.
    fn propose(&mut self, command: Command, now: u64) -> Result<()>;
    /// The next output.
    fn poll(&mut self) -> Option<Output>;
    /// When `tick` is next due (local time).
    fn next_deadline(&self) -> u64;
    /// The leader it follows.
    fn leader(&self) -> Option<NodeId>;
    /// Whether it leads.
    fn is_leader(&self) -> bool;
    /// Whether it holds the read lease at local time `now`.
    fn has_read_lease(&self, now: u64) -> bool;
    /// Every slot below this is chosen and delivered.
    fn commit_index(&self) -> Slot;
    /// Its ballot.
    fn ballot(&self) -> Ballot;
    /// Stop, handing back the storage.
    fn into_storage(self) -> MemoryStorage;
    /// The first slot its log holds (0 for a replica that never compacts).
    fn log_start(&self) -> Slot {
        0
    }
    /// Compact the log below `slot` into the snapshot `data`
    /// ([`Node::compact`]); a replica that cannot is never asked to
    /// (`SimConfig::compact_every` 0).
    fn compact(&mut self, slot: Slot, data: Vec<u8>, now: u64) -> Result<()> {
        let _ = (slot, data, now);
        Err(Error::invalid("this replica does not compact"))
    }
    /// Ask for a ReadIndex read ([`Node::read_index`]); a replica without
    /// them answers `NotLeader`.
    fn read_index(&mut self, id: u64, now: u64) -> Result<()> {
        let _ = (id, now);
        Err(Error::NotLeader { leader: None })
    }
    /// Start a replica that joins a running cluster ([`Node::join`]).
    fn join(config: Config, storage: MemoryStorage, now: u64) -> Result<Self> {
        Self::start(config, storage, now)
    }
    /// Propose a membership change ([`Node::change_membership`]); a
    /// replica without them refuses.
    fn change_membership(&mut self, change: MembershipChange, now: u64) -> Result<()> {
        let _ = (change, now);
        Err(Error::invalid(
            "this replica does not change its membership",
        ))
    }
    /// Hand the leadership over ([`Node::transfer_leadership`]); a replica
    /// without it refuses.
    fn transfer_leadership(&mut self, to: NodeId, now: u64) -> Result<()> {
        let _ = (to, now);
        Err(Error::invalid(
            "this replica does not transfer its leadership",
        ))
    }
}

impl SimNode for Node<MemoryStorage> {
    fn start(config: Config, storage: MemoryStorage, now: u64) -> Result<Self> {
        Node::new(config, storage, now)
    }
    fn step(&mut self, from: NodeId, message: Message, now: u64) -> Result<()> {
        Node::step(self, from, message, now)
    }
    fn tick(&mut self, now: u64) -> Result<()> {
        Node::tick(self, now)
    }
    fn propose(&mut self, command: Command, now: u64) -> Result<()> {
        Node::propose(self, command, now)
    }
    fn poll(&mut self) -> Option<Output> {
        Node::poll(self)
    }
    fn next_deadline(&self) -> u64 {
        Node::next_deadline(self)
    }
    fn leader(&self) -> Option<NodeId> {
        Node::leader(self)
    }
    fn is_leader(&self) -> bool {
        Node::is_leader(self)
    }
    fn has_read_lease(&self, now: u64) -> bool {
        Node::has_read_lease(self, now)
    }
    fn commit_index(&self) -> Slot {
        Node::commit_index(self)
    }
    fn ballot(&self) -> Ballot {
        Node::ballot(self)
    }
    fn into_storage(self) -> MemoryStorage {
        Node::into_storage(self)
    }
    fn log_start(&self) -> Slot {
        Node::log_start(self)
    }
    fn compact(&mut self, slot: Slot, data: Vec<u8>, now: u64) -> Result<()> {
        Node::compact(self, slot, data, now)
    }
    fn read_index(&mut self, id: u64, now: u64) -> Result<()> {
        Node::read_index(self, id, now)
    }
    fn join(config: Config, storage: MemoryStorage, now: u64) -> Result<Self> {
        Node::join(config, storage, now)
    }
    fn change_membership(&mut self, change: MembershipChange, now: u64) -> Result<()> {
        Node::change_membership(self, change, now)
    }
    fn transfer_leadership(&mut self, to: NodeId, now: u64) -> Result<()> {
        Node::transfer_leadership(self, to, now)
    }
}

/// How to build a simulated cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// How many replicas (ids `0..n`).
    pub n: usize,
    /// Drives everything random: network faults, election jitter (each
    /// node's `Config::seed` is derived from it), clock offsets, commands.
    pub seed: u64,
    /// Delays, loss and duplication.
    pub net: NetConfig,
    /// The replicas' configuration; `id`, `members` and `seed` are filled
    /// in per node.
    pub node: Config,
    /// The largest difference between two nodes' clocks (each node gets a
    /// constant offset drawn within it). Keep it at most
    /// `node.max_clock_drift` for the lease's drift bound to hold.
    pub max_skew: u64,
    /// The largest difference between two nodes' clock rates, in parts per
    /// million (each node's rate is drawn within ±half of it).
    pub max_rate_ppm: u32,
    /// Check lease exclusivity after every event.
    pub check_leases: bool,
    /// Also check that a lease holder has delivered every slot delivered
    /// anywhere (lease reads are linearizable).
    pub check_lease_reads: bool,
    /// Keep a readable trace of every event (see [`PaxosCluster::trace`]).
    pub trace: bool,
    /// Each node compacts its log once it holds this many delivered slots
    /// (0: never). Its snapshot is its application state, a digest of the
    /// batches it applied, which the checkers verify wherever a snapshot
    /// is handed out (a restart, an install).
    pub compact_every: u64,
}

impl SimConfig {
    /// `n` replicas with simulation-friendly timing: heartbeat 10 ms,
    /// election timeout 100 ms, lease 100 ms, drift 10 ms (and that much
    /// clock skew, and rates 9 % apart: 90 % of the drift over one lease),
    /// a network delaying 1–5 ms without loss.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut node = Config::new(0, Vec::new());
        node.heartbeat_interval = 10_000_000;
        node.election_timeout = 100_000_000;
        node.lease_duration = 100_000_000;
        node.max_clock_drift = 10_000_000;
        SimConfig {
            n,
            seed,
            net: NetConfig {
                min_delay: 1_000_000,
                max_delay: 5_000_000,
                loss_per_million: 0,
                duplicate_per_million: 0,
            },
            max_skew: node.max_clock_drift,
            max_rate_ppm: rate_bound(&node),
            node,
            check_leases: true,
            check_lease_reads: true,
            trace: false,
            compact_every: 0,
        }
    }
}

/// Clock rates that drift apart by 90 % of `max_clock_drift` over one lease
/// (5 % when leases are off).
pub fn rate_bound(node: &Config) -> u32 {
    if node.lease_duration == 0 {
        return 50_000;
    }
    let ppm = node.max_clock_drift as u128 * 900_000 / node.lease_duration as u128;
    ppm.min(200_000) as u32
}

/// One node as [`PaxosCluster::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's id.
    pub id: NodeId,
    /// Running (not crashed).
    pub alive: bool,
    /// Times it was started (1 for a node never restarted).
    pub incarnation: u32,
    /// The leader it follows (itself when it leads), if any (None when down).
    pub leader: Option<NodeId>,
    /// Whether it leads.
    pub is_leader: bool,
    /// Whether it holds the read lease now (on its own clock).
    pub read_lease: bool,
    /// Its ballot (round, node).
    pub ballot: (u64, NodeId),
    /// Every slot below this is chosen and delivered.
    pub commit_index: u64,
    /// Slots it delivered in its current incarnation.
    pub decided: u64,
}

/// What happened during a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Network counters (sent, delivered, lost, duplicated, cut).
    pub net: NetStats,
    /// Messages that arrived at a node that was down.
    pub to_down_node: u64,
    /// Events processed (deliveries and timer ticks).
    pub events: u64,
    /// Timer ticks.
    pub ticks: u64,
    /// Commands proposed by clients.
    pub proposals: u64,
    /// Slots decided, counted per node and incarnation.
    pub decisions: u64,
    /// Distinct commands decided somewhere.
    pub commands_decided: u64,
    /// Decisions of a command already decided in another slot.
    pub duplicate_decisions: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Partitions imposed.
    pub partitions: u64,
    /// Heals.
    pub heals: u64,
    /// Changes of network settings.
    pub net_changes: u64,
    /// Times a node won an election (reported itself leader).
    pub elections: u64,
    /// Times the cluster's leader (see [`PaxosCluster::leader`]) changed.
    pub leader_changes: u64,
    /// Times the read lease passed to a new holder.
    pub lease_grants: u64,
    /// Commands required decided everywhere in time (liveness checks).
    pub liveness_checks: u64,
    /// Highest commit index seen.
    pub max_commit: u64,
    /// Compactions (a node's own snapshot of its state).
    pub compactions: u64,
    /// Snapshots a node installed from a peer (restores on restart are
    /// not counted).
    pub snapshots_installed: u64,
    /// ReadIndex reads asked for at a leader.
    pub reads: u64,
    /// ReadIndex reads answered (each checked to see every slot delivered
    /// anywhere before it was asked).
    pub reads_served: u64,
    /// Membership epochs the cluster went through.
    pub membership_changes: u64,
    /// Replicas started after the cluster (to be added as learners).
    pub replicas_added: u64,
    /// Replicas shut down for good: removed, or added and never a member.
    pub replicas_retired: u64,
    /// Leadership transfers started.
    pub transfers: u64,
}

struct Replica<N> {
    node: Option<N>,
    /// Storage of a crashed node, kept for its restart.
    parked: Option<MemoryStorage>,
    offset: u64,
    /// Clock rate offset, parts per million (may be negative).
    rate_ppm: i64,
    /// Next tick due, on the simulation clock (None when down).
    deadline: Option<u64>,
    incarnation: u32,
    leader_view: Option<NodeId>,
    /// For a replica added after the start: the voters it was told of
    /// (it starts with `Node::join`).
    joined: Option<Vec<NodeId>>,
    /// Removed from the cluster (or never added): shut down for good.
    retired: bool,
    /// The newest membership epoch it reported.
    epoch: u64,
}

impl<N> Replica<N> {
    /// The node's clock at simulation time `t`: offset + ⌊t·(10^6 + rate)/10^6⌋.
    fn local(&self, t: u64) -> u64 {
        let scaled = t as u128 * (1_000_000 + self.rate_ppm) as u128 / 1_000_000;
        (self.offset as u128 + scaled).min(u64::MAX as u128) as u64
    }

    /// The first simulation time at which the node's clock reads `local`.
    fn global(&self, local: u64) -> u64 {
        let Some(x) = local.checked_sub(self.offset) else {
            return 0;
        };
        let rate = (1_000_000 + self.rate_ppm) as u128;
        // ⌈x·10^6/rate⌉: the least t with t·rate/10^6 ≥ x.
        let t = (x as u128 * 1_000_000).div_ceil(rate);
        t.min(u64::MAX as u128) as u64
    }
}

/// A simulated Multi-Paxos cluster of real [`Node`]s (or of any
/// [`SimNode`]). See the module docs.
pub struct PaxosCluster<N: SimNode = Node<MemoryStorage>> {
    config: SimConfig,
    replicas: Vec<Replica<N>>,
    net: Network<Packet>,
    rng: SplitMix64,
    now: u64,
    checkers: Checkers,
    violation: Option<Violation>,
    stats: SimStats,
    next_command: u64,
    leader: Option<NodeId>,
    digest: u64,
    trace: Vec<String>,
    same_time_events: u64,
    /// A node's first outputs (after a start) are being drained.
    booting: bool,
    /// ReadIndex reads in flight: id -> (node, slots delivered anywhere
    /// when it was asked).
    pending_reads: std::collections::HashMap<u64, (NodeId, Slot)>,
    next_read: u64,
    /// The newest membership any node delivered.
    membership: Membership,
    /// Every replica that was ever a voter or a learner.
    members_seen: std::collections::BTreeSet<NodeId>,
}

/// Events processed at one instant before the run counts as stuck.
const STUCK_EVENTS: u64 = 200_000;

fn mix(h: u64, x: u64) -> u64 {
    let mut r = SplitMix64::new(h ^ x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.next_u64()
}

impl PaxosCluster {
    /// Start `config.n` real [`Node`]s at time 0.
    pub fn new(config: SimConfig) -> Result<Self> {
        Self::start(config)
    }
}

impl<N: SimNode> PaxosCluster<N> {
    /// Start `config.n` replicas of type `N` at time 0.
    pub fn start(config: SimConfig) -> Result<Self> {
        if config.n == 0 || config.n > 64 {
            return Err(Error::InvalidArgument(format!(
                "a simulated cluster has 1 to 64 nodes, not {}",
                config.n
            )));
        }
        if config.net.min_delay > config.net.max_delay {
            return Err(Error::InvalidArgument(
                "network min_delay exceeds max_delay".into(),
            ));
        }
        let mut probe = config.node.clone();
        probe.id = 0;
        probe.members = (0..config.n as NodeId).collect();
        probe.validate()?;
        if config.max_skew > config.node.max_clock_drift {
            return Err(Error::InvalidArgument(
                "max_skew exceeds the nodes' max_clock_drift".into(),
            ));
        }
        let lease_drift = config.max_rate_ppm as u128 * config.node.lease_duration as u128;
        if config.max_rate_ppm > 500_000
            || lease_drift > config.node.max_clock_drift as u128 * 1_000_000
        {
            return Err(Error::InvalidArgument(format!(
                "clock rates {} ppm apart drift more than max_clock_drift over a lease",
                config.max_rate_ppm
            )));
        }
        let mut rng = SplitMix64::new(config.seed);
        let net_seed = rng.next_u64();
        // Offsets in [base - skew/2, base + skew/2]: any two differ by at
        // most max_skew, and base keeps every node's clock above zero.
        let base = config.max_skew;
        let replicas = (0..config.n)
            .map(|_| {
                let offset = base - config.max_skew / 2 + rng.between(0, config.max_skew);
                let half = config.max_rate_ppm as i64 / 2;
                let rate_ppm = rng.between(0, 2 * half as u64) as i64 - half;
                Replica {
                    node: None,
                    parked: Some(MemoryStorage::new()),
                    offset,
                    rate_ppm,
                    deadline: None,
                    incarnation: 0,
                    leader_view: None,
                    joined: None,
                    retired: false,
                    epoch: 0,
                }
            })
            .collect();
        let mut cluster = PaxosCluster {
            net: Network::new(config.net.clone(), net_seed),
            checkers: Checkers::new(config.seed),
            replicas,
            rng,
            now: 0,
            violation: None,
            stats: SimStats::default(),
            next_command: 0,
            leader: None,
            digest: config.seed,
            trace: Vec::new(),
            same_time_events: 0,
            booting: false,
            pending_reads: std::collections::HashMap::new(),
            next_read: 0,
            membership: Membership::initial((0..config.n as NodeId).collect()),
            members_seen: (0..config.n as NodeId).collect(),
            config,
        };
        for i in 0..cluster.config.n {
            cluster.boot(i as NodeId);
        }
        Ok(cluster)
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// How many replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Always false: a cluster has at least one replica.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Simulated time, nanoseconds since the run began.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// What node `i` reads on its own clock now.
    pub fn local_time(&self, i: NodeId) -> u64 {
        self.replicas[i as usize].local(self.now)
    }

    fn node_config(&self, id: NodeId) -> Config {
        let mut c = self.config.node.clone();
        c.id = id;
        c.members = match &self.replicas[id as usize].joined {
            Some(voters) => voters.clone(),
            None => (0..self.config.n as NodeId).collect(),
        };
        c.seed = mix(self.config.seed, 0x5eed_0000 + id as u64);
        c
    }

    fn boot(&mut self, id: NodeId) {
        let config = self.node_config(id);
        let local = self.local_time(id);
        let r = &mut self.replicas[id as usize];
        let storage = r.parked.take().expect("a down node keeps its storage");
        r.incarnation += 1;
        let before = self.checkers.delivery.delivered(id);
        self.checkers.started(id);
        let started = if self.replicas[id as usize].joined.is_some() {
            N::join(config, storage, local)
        } else {
            N::start(config, storage, local)
        };
        match started {
            Ok(node) => {
                self.replicas[id as usize].node = Some(node);
                self.note(2, id as u64, 0, || format!("start node {id}"));
                self.booting = true;
                self.drain(id);
                self.booting = false;
                // What a node delivered was durable first: a restart hands
                // all of it out again before anything else happens.
                let again = self.checkers.delivery.delivered(id);
                if again < before {
                    self.fail(Violation::new(
                        ViolationKind::Durability,
                        self.now,
                        Some(id),
                        Some(again),
                        format!(
                            "node {id} re-delivered slots 0..{again} on restart but had \
                             delivered 0..{before} before its crash"
                        ),
                    ));
                }
            }
            Err(e) => self.fail(Violation::new(
                ViolationKind::Node,
                self.now,
                Some(id),
                None,
                format!("Node::new failed: {e}"),
            )),
        }
    }

    fn check_id(&self, i: NodeId) -> Result<()> {
        if (i as usize) < self.replicas.len() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "no node {i} in a cluster of {}",
                self.replicas.len()
            )))
        }
    }

    /// Whether node `i` is running.
    pub fn is_alive(&self, i: NodeId) -> bool {
        self.replicas
            .get(i as usize)
            .is_some_and(|r| r.node.is_some())
    }

    /// The running nodes' ids.
    pub fn alive(&self) -> Vec<NodeId> {
        (0..self.replicas.len() as NodeId)
            .filter(|&i| self.is_alive(i))
            .collect()
    }

    /// A fresh command no client proposed before (`c<seed>-<k>`).
    pub fn new_command(&mut self) -> Command {
        self.next_command += 1;
        format!("c{}-{}", self.config.seed, self.next_command).into_bytes()
    }

    /// Propose `command` at node `target`, or at a random running node when
    /// `None`; returns the node it went to. Fails if the target is down or
    /// unknown, or every node is down. Commands should be unique (see
    /// [`new_command`](Self::new_command)): validity is checked by content.
    pub fn propose(&mut self, target: Option<NodeId>, command: Command) -> Result<NodeId> {
        let id = match target {
            Some(i) => {
                self.check_id(i)?;
                i
            }
            None => {
                let alive = self.alive();
                if alive.is_empty() {
                    return Err(Error::InvalidArgument("every node is down".into()));
                }
                alive[self.rng.below(alive.len() as u64) as usize]
            }
        };
        if !self.is_alive(id) {
            return Err(Error::InvalidArgument(format!("node {id} is down")));
        }
        self.checkers.proposed(&command);
        self.stats.proposals += 1;
        let h = xxhash_rust::xxh3::xxh3_64(&command);
        self.note(3, id as u64, h, || {
            format!(
                "propose {:?} at node {id}",
                String::from_utf8_lossy(&command)
            )
        });
        let local = self.local_time(id);
        let node = self.replicas[id as usize].node.as_mut().expect("alive");
        if let Err(e) = node.propose(command, local) {
            self.fail(Violation::new(
                ViolationKind::Node,
                self.now,
                Some(id),
                None,
                format!("propose failed: {e}"),
            ));
        }
        self.drain(id);
        Ok(id)
    }

    /// Ask node `i` for a ReadIndex read ([`Node::read_index`]); false when
    /// it is down or does not lead. When it is answered, the checkers
    /// require node `i` to have delivered every slot delivered anywhere
    /// when it was asked.
    pub fn read_index(&mut self, i: NodeId) -> Result<bool> {
        self.check_id(i)?;
        if !self.is_alive(i) {
            return Ok(false);
        }
        let id = self.next_read;
        self.next_read += 1;
        let floor = self.checkers.linearizable.delivered();
        let local = self.local_time(i);
        let node = self.replicas[i as usize].node.as_mut().expect("alive");
        match node.read_index(id, local) {
            Ok(()) => {
                self.pending_reads.insert(id, (i, floor));
                self.stats.reads += 1;
                self.note(15, i as u64, id, || format!("read {id} at node {i}"));
                self.drain(i);
                Ok(true)
            }
            Err(Error::NotLeader { .. }) => Ok(false),
            Err(e) => {
                self.fail(Violation::new(
                    ViolationKind::Node,
                    self.now,
                    Some(i),
                    None,
                    format!("read_index failed: {e}"),
                ));
                Ok(false)
            }
        }
    }

    /// Propose a fresh command (see [`new_command`](Self::new_command)) and
    /// return it with the node it went to.
    pub fn propose_new(&mut self, target: Option<NodeId>) -> Result<(NodeId, Command)> {
        let c = self.new_command();
        let id = self.propose(target, c.clone())?;
        Ok((id, c))
    }

    /// Crash node `i`: its volatile state is gone, records it appended but
    /// did not sync are lost, and messages in flight to or from it vanish.
    /// Crashing a node that is down does nothing.
    pub fn crash(&mut self, i: NodeId) -> Result<()> {
        self.check_id(i)?;
        let r = &mut self.replicas[i as usize];
        let Some(node) = r.node.take() else {
            return Ok(());
        };
        let mut storage = node.into_storage();
        storage.crash();
        r.parked = Some(storage);
        r.deadline = None;
        r.leader_view = None;
        self.pending_reads.retain(|_, (n, _)| *n != i);
        self.net.drop_node(i);
        self.stats.crashes += 1;
        self.checkers.liveness.clear();
        self.note(4, i as u64, 0, || format!("crash node {i}"));
        self.update_leader();
        Ok(())
    }

    /// Restart node `i` from its storage. Restarting a running node, or
    /// one retired after its removal, does nothing.
    pub fn restart(&mut self, i: NodeId) -> Result<()> {
        self.check_id(i)?;
        if self.is_alive(i) || self.replicas[i as usize].retired {
            return Ok(());
        }
        self.stats.restarts += 1;
        self.boot(i);
        self.update_leader();
        Ok(())
    }

    /// The newest membership any node delivered (the initial one, ids
    /// `0..n` as voters, until a change).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether node `i` was retired: removed from the membership (or added
    /// and never made a member), it is shut down for good.
    pub fn is_retired(&self, i: NodeId) -> bool {
        self.replicas.get(i as usize).is_some_and(|r| r.retired)
    }

    /// Start a new replica (the next id) that joins with `Node::join`, and
    /// propose at the leader to add it as a learner. Returns its id; once
    /// the change is delivered it catches up and follows. Fails (and the
    /// new replica is retired) when there is no leader or the leader
    /// refuses (another change under way, 64 replicas).
    pub fn add_learner(&mut self) -> Result<NodeId> {
        if self.leader.is_none() {
            return Err(Error::NotLeader { leader: None });
        }
        if self.replicas.len() >= 64 {
            return Err(Error::invalid(
                "a simulated cluster has at most 64 replicas",
            ));
        }
        let id = self.replicas.len() as NodeId;
        // Its clock from a generator of its own: the cluster's draws stay.
        let mut rng = SplitMix64::new(mix(self.config.seed, 0x6a6f_696e_0000 + id as u64));
        let base = self.config.max_skew;
        let half = self.config.max_rate_ppm as i64 / 2;
        self.replicas.push(Replica {
            node: None,
            parked: Some(MemoryStorage::new()),
            offset: base - self.config.max_skew / 2 + rng.between(0, self.config.max_skew),
            rate_ppm: rng.between(0, 2 * half as u64) as i64 - half,
            deadline: None,
            incarnation: 0,
            leader_view: None,
            joined: Some(self.membership.voters.clone()),
            retired: false,
            epoch: 0,
        });
        self.boot(id);
        if let Err(e) = self.change_membership(MembershipChange::AddLearner(id)) {
            self.retire(id);
            return Err(e);
        }
        self.stats.replicas_added += 1;
        Ok(id)
    }

    /// Propose a membership change at the leader ([`Node::change_membership`]).
    /// The ids must be replicas of the simulation (see
    /// [`add_learner`](Self::add_learner) for new ones). Errors as the node's.
    pub fn change_membership(&mut self, change: MembershipChange) -> Result<()> {
        let ids = match change {
            MembershipChange::AddLearner(i)
            | MembershipChange::Promote(i)
            | MembershipChange::Remove(i) => [i, i],
            MembershipChange::Replace { old, new } => [old, new],
        };
        for i in ids {
            self.check_id(i)?;
        }
        let (leader, local, node) = self.leader_node()?;
        let r = node.change_membership(change, local);
        if r.is_ok() {
            self.note(16, leader as u64, 0, || {
                format!("change {change:?} at node {leader}")
            });
        }
        self.drain(leader);
        r
    }

    /// The current leader, its local time and its node: where a cluster-wide
    /// operation (a membership change, a transfer) is asked. `NotLeader`
    /// while the cluster has none.
    fn leader_node(&mut self) -> Result<(NodeId, u64, &mut N)> {
        let Some(leader) = self.leader else {
            return Err(Error::NotLeader { leader: None });
        };
        let local = self.local_time(leader);
        let node = self.replicas[leader as usize]
            .node
            .as_mut()
            .expect("the leader runs");
        Ok((leader, local, node))
    }

    /// Hand the leadership from the current leader to voter `to`
    /// ([`Node::transfer_leadership`]). Errors as the node's.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<()> {
        self.check_id(to)?;
        let (leader, local, node) = self.leader_node()?;
        let r = node.transfer_leadership(to, local);
        if r.is_ok() {
            self.stats.transfers += 1;
            self.note(18, leader as u64, to as u64, || {
                format!("transfer the leadership from node {leader} to node {to}")
            });
        }
        self.drain(leader);
        r
    }

    /// Shut node `i` down for good (it is not a member).
    fn retire(&mut self, i: NodeId) {
        if self.replicas[i as usize].retired {
            return;
        }
        if self.is_alive(i) {
            let _ = self.crash(i);
        }
        self.replicas[i as usize].retired = true;
        self.replicas[i as usize].parked = None;
        self.stats.replicas_retired += 1;
        self.note(17, i as u64, 0, || format!("retire node {i}"));
    }

    /// Retire the added replicas that never became members (their change
    /// was lost with its leader, or refused).
    pub fn retire_strangers(&mut self) {
        for i in 0..self.replicas.len() as NodeId {
            if !self.members_seen.contains(&i) && !self.membership.contains(i) {
                self.retire(i);
            }
        }
    }

    /// Retire the replicas the newest membership removed, once every one
    /// of its voters has it: an operator shuts a removed replica down only
    /// then, as until then it may hold the only copy of the change.
    fn retire_removed(&mut self) {
        let m = &self.membership;
        let ready = m
            .voters
            .iter()
            .all(|&v| self.replicas[v as usize].epoch >= m.epoch);
        if !ready {
            return;
        }
        let gone: Vec<NodeId> = self
            .members_seen
            .iter()
            .copied()
            .filter(|&j| !m.contains(j))
            .collect();
        for j in gone {
            self.retire(j);
        }
    }

    /// Split the network into `groups` of node ids (nodes in no group can
    /// still reach everyone); lasts until [`heal`](Self::heal).
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Result<()> {
        for g in groups {
            for &i in g {
                self.check_id(i)?;
            }
        }
        self.net.partition(groups);
        self.stats.partitions += 1;
        self.checkers.liveness.clear();
        self.note(5, groups.len() as u64, 0, || {
            format!("partition {groups:?}")
        });
        Ok(())
    }

    /// Reconnect every node.
    pub fn heal(&mut self) {
        self.net.heal();
        self.stats.heals += 1;
        self.note(6, 0, 0, || "heal".to_string());
    }

    /// Whether nodes `a` and `b` can exchange messages now.
    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.net.connected(a, b)
    }

    /// Change the network's delays, loss and duplication from now on.
    pub fn set_net(&mut self, net: NetConfig) -> Result<()> {
        if net.min_delay > net.max_delay {
            return Err(Error::InvalidArgument(
                "network min_delay exceeds max_delay".into(),
            ));
        }
        self.note(7, net.loss_per_million as u64, net.max_delay, || {
            format!("network {net:?}")
        });
        if net.loss_per_million > 0 {
            self.checkers.liveness.clear();
        }
        self.net.set_config(net);
        self.stats.net_changes += 1;
        Ok(())
    }

    /// The network's current settings.
    pub fn net_config(&self) -> &NetConfig {
        self.net.config()
    }

    /// The leader: among running nodes that lead, the one with the highest
    /// ballot.
    pub fn leader(&self) -> Option<NodeId> {
        self.replicas
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.node.as_ref().map(|n| (i, n)))
            .filter(|(_, n)| n.is_leader())
            .max_by_key(|(_, n)| n.ballot())
            .map(|(i, _)| i as NodeId)
    }

    /// Every node's state.
    pub fn status(&self) -> Vec<NodeStatus> {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = i as NodeId;
                let decided = self.checkers.delivery.delivered(id);
                match &r.node {
                    Some(n) => {
                        let b = n.ballot();
                        NodeStatus {
                            id,
                            alive: true,
                            incarnation: r.incarnation,
                            leader: n.leader(),
                            is_leader: n.is_leader(),
                            read_lease: n.has_read_lease(r.local(self.now)),
                            ballot: (b.round, b.node),
                            commit_index: n.commit_index(),
                            decided,
                        }
                    }
                    None => NodeStatus {
                        id,
                        alive: false,
                        incarnation: r.incarnation,
                        leader: None,
                        is_leader: false,
                        read_lease: false,
                        ballot: (0, 0),
                        commit_index: 0,
                        decided,
                    },
                }
            })
            .collect()
    }

    /// The log node `i` delivered in its current incarnation: the batch of
    /// every slot from 0, in order (the checker keeps each slot's value).
    pub fn decided(&self, i: NodeId) -> Vec<Batch> {
        let upto = self.checkers.delivery.delivered(i);
        (0..upto)
            .map(|s| {
                self.checkers
                    .agreement
                    .value(s)
                    .cloned()
                    .expect("a delivered slot is recorded")
            })
            .collect()
    }

    /// Whether every node in `nodes` delivered `command` (in its current
    /// incarnation; a restarted node must deliver it again).
    pub fn is_decided_on(&self, command: &[u8], nodes: &[NodeId]) -> bool {
        // Delivery is in order from slot 0, so a node delivered the command
        // once it delivered past the first slot it was decided in.
        self.checkers.validity.slot_of(command).is_some_and(|s| {
            nodes
                .iter()
                .all(|&i| self.checkers.delivery.delivered(i) > s)
        })
    }

    /// Run until every running node delivered `command`, for at most
    /// `within` nanoseconds; `Ok(false)` if time ran out first.
    pub fn run_until_decided(
        &mut self,
        command: &[u8],
        within: u64,
    ) -> std::result::Result<bool, Violation> {
        let deadline = self.now.saturating_add(within);
        self.run_until(deadline, |c| c.is_decided_on(command, &c.live_members()))
    }

    /// The running replicas of the newest membership (voters and learners).
    pub fn live_members(&self) -> Vec<NodeId> {
        self.alive()
            .into_iter()
            .filter(|&i| self.membership.contains(i))
            .collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        let mut s = self.stats;
        s.net = self.net.stats();
        s.commands_decided = self.checkers.validity.decided_commands() as u64;
        s.duplicate_decisions = self.checkers.validity.duplicates();
        s.lease_grants = self.checkers.lease.grants();
        s
    }

    /// A fingerprint of every event so far: equal seeds give equal digests.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The readable trace (empty unless `SimConfig::trace`).
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// The checkers (for their counters).
    pub fn checkers(&self) -> &Checkers {
        &self.checkers
    }

    /// Expect `command` (call this before proposing it: a leader may decide
    /// its own proposal at once) decided on every running node
    /// within `within` nanoseconds; [`check`](Self::check) fails once the
    /// deadline passes without it. Crashes and partitions cancel
    /// expectations (liveness holds only while the cluster is healthy), and
    /// so does a network setting that loses messages (a node does not
    /// retry a lost `Forward`).
    pub fn expect_decided(&mut self, command: Command, within: u64) {
        let nodes = self.live_members();
        self.stats.liveness_checks += 1;
        self.checkers
            .liveness
            .expect(command, nodes, self.now, self.now.saturating_add(within));
    }

    /// The first violation any checker found, or a liveness deadline that
    /// passed.
    pub fn check(&self) -> std::result::Result<(), Violation> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        self.checkers.check(self.now)
    }

    fn fail(&mut self, v: Violation) {
        if self.violation.is_none() {
            let v = v.with_seed(self.config.seed);
            if self.config.trace {
                self.trace.push(format!("VIOLATION {v}"));
            }
            self.violation = Some(v);
        }
    }

    fn note(&mut self, kind: u64, a: u64, b: u64, text: impl FnOnce() -> String) {
        self.digest = mix(self.digest, kind ^ (a << 8) ^ (b << 24) ^ (self.now << 1));
        if self.config.trace {
            let mut line = String::new();
            let _ = write!(line, "{:>12} ", self.now);
            line.push_str(&text());
            self.trace.push(line);
        }
    }

    /// The earliest pending event: (time, Some(node) for its timer or None
    /// for a message arrival).
    fn next_event(&self) -> Option<(u64, Option<NodeId>)> {
        let mut best = self.net.next_arrival().map(|t| (t, None));
        for (i, r) in self.replicas.iter().enumerate() {
            if let Some(d) = r.deadline
                && best.is_none_or(|(t, _)| d < t)
            {
                best = Some((d, Some(i as NodeId)));
            }
        }
        best.map(|(t, n)| (t.max(self.now), n))
    }

    /// When the next event happens, if anything is pending.
    pub fn next_event_time(&self) -> Option<u64> {
        self.next_event().map(|(t, _)| t)
    }

    /// Process the next event (a message arrival or a node's timer),
    /// advancing the clock to it. `Ok(false)` when nothing is pending.
    pub fn step(&mut self) -> std::result::Result<bool, Violation> {
        self.step_until(u64::MAX)
    }

    /// Process the next event if it happens by `limit`.
    fn step_until(&mut self, limit: u64) -> std::result::Result<bool, Violation> {
        self.check()?;
        let Some((t, timer)) = self.next_event() else {
            return Ok(false);
        };
        if t > limit {
            return Ok(false);
        }
        if t == self.now {
            self.same_time_events += 1;
            if self.same_time_events > STUCK_EVENTS {
                self.fail(Violation::new(
                    ViolationKind::Stuck,
                    self.now,
                    timer,
                    None,
                    format!("{STUCK_EVENTS} events at one instant: time does not advance"),
                ));
                return self.check().map(|()| true);
            }
        } else {
            self.same_time_events = 0;
        }
        self.now = t;
        self.stats.events += 1;
        match timer {
            Some(i) => self.tick(i),
            None => self.deliver(),
        }
        if self.config.check_leases {
            self.check_leases();
        }
        self.check().map(|()| true)
    }

    fn tick(&mut self, i: NodeId) {
        self.stats.ticks += 1;
        let local = self.local_time(i);
        self.note(8, i as u64, 0, || format!("tick node {i}"));
        let node = self.replicas[i as usize].node.as_mut().expect("alive");
        if let Err(e) = node.tick(local) {
            self.fail(Violation::new(
                ViolationKind::Node,
                self.now,
                Some(i),
                None,
                format!("tick failed: {e}"),
            ));
        }
        self.drain(i);
    }

    fn deliver(&mut self) {
        let Some((from, to, packet)) = self.net.deliver_due(self.now) else {
            return;
        };
        let h = xxhash_rust::xxh3::xxh3_64(&packet);
        self.note(
            9,
            from as u64 | ((to as u64) << 16),
            h,
            || match wire::decode_envelope(&packet) {
                Ok(env) => format!("deliver {from} -> {to}: {:?}", env.message),
                Err(e) => format!("deliver {from} -> {to}: undecodable: {e}"),
            },
        );
        if (to as usize) >= self.replicas.len() {
            self.fail(Violation::new(
                ViolationKind::Wire,
                self.now,
                Some(from),
                None,
                format!("node {from} sent a message to unknown node {to}"),
            ));
            return;
        }
        let message = match decode_packet(&packet, from, to) {
            Ok(m) => m,
            Err(e) => {
                self.fail(Violation::new(
                    ViolationKind::Wire,
                    self.now,
                    Some(to),
                    None,
                    format!("message from {from} does not decode: {e}"),
                ));
                return;
            }
        };
        let local = self.local_time(to);
        let Some(node) = self.replicas[to as usize].node.as_mut() else {
            self.stats.to_down_node += 1;
            return;
        };
        if let Err(e) = node.step(from, message, local) {
            self.fail(Violation::new(
                ViolationKind::Node,
                self.now,
                Some(to),
                None,
                format!("step of a message from {from} failed: {e}"),
            ));
        }
        self.drain(to);
    }

    /// Carry out node `i`'s outputs: send, record decisions, track leaders.
    fn drain(&mut self, i: NodeId) {
        let mut changed = false;
        loop {
            let Some(node) = self.replicas[i as usize].node.as_mut() else {
                return;
            };
            let Some(out) = node.poll() else { break };
            match out {
                Output::Persisted { .. } => {}
                Output::Send(envelope) => {
                    let (from, to) = (envelope.from, envelope.to);
                    if from != i {
                        self.fail(Violation::new(
                            ViolationKind::Wire,
                            self.now,
                            Some(i),
                            None,
                            format!("node {i} sent a message as node {from}"),
                        ));
                        continue;
                    }
                    let packet = encode_packet(&envelope);
                    self.net.send(self.now, from, to, packet);
                }
                Output::Decided { slot, batch } => {
                    self.stats.decisions += 1;
                    let h = batch.len() as u64;
                    self.note(10, i as u64 | (slot << 16), h, || {
                        format!(
                            "node {i} decided slot {slot}: {}",
                            super::check::show_batch(&batch)
                        )
                    });
                    let twice = self.checkers.validity.duplicates();
                    if let Err(v) = self.checkers.decided(i, slot, &batch, self.now) {
                        self.fail(v);
                    } else if self.checkers.validity.duplicates() > twice
                        && self.stats.restarts == 0
                    {
                        // Nodes drop duplicated `Forward`s, so nothing may be
                        // decided twice: at most once. Only a receiver that
                        // restarts between two copies forgets the first.
                        self.fail(Violation::new(
                            ViolationKind::Validity,
                            self.now,
                            Some(i),
                            Some(slot),
                            format!(
                                "a command of {} was already decided in another slot, and \
                                 no node restarted",
                                super::check::show_batch(&batch)
                            ),
                        ));
                    }
                }
                Output::ReadIndex { id, ready } => {
                    let Some((asked_at, floor)) = self.pending_reads.remove(&id) else {
                        self.fail(Violation::new(
                            ViolationKind::Node,
                            self.now,
                            Some(i),
                            None,
                            format!("node {i} answered read {id}, which nobody asked"),
                        ));
                        continue;
                    };
                    let delivered = self.checkers.delivery.delivered(i);
                    if asked_at != i {
                        self.fail(Violation::new(
                            ViolationKind::Node,
                            self.now,
                            Some(i),
                            None,
                            format!("node {i} answered read {id}, asked at node {asked_at}"),
                        ));
                    } else if ready && delivered < floor {
                        self.fail(Violation::new(
                            ViolationKind::Linearizability,
                            self.now,
                            Some(i),
                            Some(delivered),
                            format!(
                                "node {i} served read {id} having delivered slots below \
                                 {delivered}, but slots below {floor} were delivered before \
                                 it was asked: the read is stale"
                            ),
                        ));
                    } else if ready {
                        self.stats.reads_served += 1;
                    }
                }
                Output::Snapshot { slot, data } => {
                    if !self.booting {
                        self.stats.snapshots_installed += 1;
                    }
                    self.note(13, i as u64 | (slot << 16), data.len() as u64, || {
                        format!("node {i} restored a snapshot of slots below {slot}")
                    });
                    if let Err(v) = self.checkers.installed(i, slot, &data, self.now) {
                        self.fail(v);
                    }
                }
                Output::MembershipChanged(m) => {
                    self.note(16, i as u64 | (m.epoch << 16), m.start, || {
                        format!(
                            "node {i} entered epoch {} from slot {}: voters {:?}, learners {:?}",
                            m.epoch, m.start, m.voters, m.learners
                        )
                    });
                    let r = &mut self.replicas[i as usize];
                    r.epoch = r.epoch.max(m.epoch);
                    if m.epoch > self.membership.epoch {
                        self.members_seen.extend(self.membership.peers());
                        self.membership = m;
                        self.stats.membership_changes += 1;
                    }
                    changed = true;
                }
                Output::LeaderChanged { leader, ballot } => {
                    self.note(
                        11,
                        i as u64 | ((leader.unwrap_or(u32::MAX) as u64) << 16),
                        0,
                        || format!("node {i} follows {leader:?} at ballot {ballot}"),
                    );
                    if leader == Some(i) {
                        self.stats.elections += 1;
                    }
                    self.replicas[i as usize].leader_view = leader;
                }
            }
        }
        if changed {
            self.retire_removed();
            if !self.is_alive(i) {
                return;
            }
        }
        if self.maybe_compact(i) {
            return self.drain(i);
        }
        let r = &mut self.replicas[i as usize];
        if let Some(node) = &r.node {
            let local = node.next_deadline();
            // Back on the simulation clock; a deadline already past is due
            // now, and u64::MAX means no timer.
            r.deadline = (local != u64::MAX).then(|| r.global(local).max(self.now));
            let commit = node.commit_index();
            self.stats.max_commit = self.stats.max_commit.max(commit);
            let delivered = self.checkers.delivery.delivered(i);
            if commit > delivered {
                // `commit_index`: every slot below it is chosen and delivered.
                self.fail(Violation::new(
                    ViolationKind::Order,
                    self.now,
                    Some(i),
                    Some(delivered),
                    format!(
                        "node {i} reports commit index {commit} but delivered slots below \
                         {delivered}"
                    ),
                ));
            }
        }
        self.update_leader();
    }

    /// Node `i` compacts when it holds `compact_every` delivered slots:
    /// its snapshot is the state of every slot it delivered. True when it
    /// compacted (its outputs are then to be drained).
    fn maybe_compact(&mut self, i: NodeId) -> bool {
        let every = self.config.compact_every;
        let delivered = self.checkers.delivery.delivered(i);
        let local = self.local_time(i);
        let Some(node) = self.replicas[i as usize].node.as_mut() else {
            return false;
        };
        if every == 0 || delivered < node.log_start().saturating_add(every) {
            return false;
        }
        let Some(data) = self
            .checkers
            .snapshots
            .state(&self.checkers.agreement, delivered)
        else {
            return false;
        };
        match node.compact(delivered, data, local) {
            Ok(()) => {
                self.stats.compactions += 1;
                self.note(14, i as u64 | (delivered << 16), 0, || {
                    format!("node {i} compacted its log below slot {delivered}")
                });
                true
            }
            Err(e) => {
                self.fail(Violation::new(
                    ViolationKind::Node,
                    self.now,
                    Some(i),
                    Some(delivered),
                    format!("compact({delivered}) failed: {e}"),
                ));
                false
            }
        }
    }

    fn update_leader(&mut self) {
        let l = self.leader();
        if l != self.leader {
            if l.is_some() {
                self.stats.leader_changes += 1;
            }
            self.leader = l;
        }
    }

    fn check_leases(&mut self) {
        let mut holders = Vec::new();
        for (i, r) in self.replicas.iter().enumerate() {
            if let Some(n) = &r.node
                && n.has_read_lease(r.local(self.now))
            {
                holders.push(i as NodeId);
            }
        }
        let fresh = self.config.check_lease_reads;
        if let Err(v) = self.checkers.lease_holders(&holders, fresh, self.now) {
            self.fail(v);
        }
    }

    /// Process every event up to `deadline` (absolute), then set the clock
    /// to it.
    pub fn run_until_time(&mut self, deadline: u64) -> std::result::Result<(), Violation> {
        while self.step_until(deadline)? {}
        self.now = self.now.max(deadline);
        self.check()
    }

    /// Run for `duration` nanoseconds of simulated time.
    pub fn run_for(&mut self, duration: u64) -> std::result::Result<(), Violation> {
        self.run_until_time(self.now.saturating_add(duration))
    }

    /// Run until `done` holds (checked after every event; `Ok(true)`) or
    /// `deadline` passes (`Ok(false)`).
    pub fn run_until(
        &mut self,
        deadline: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> std::result::Result<bool, Violation> {
        loop {
            if done(self) {
                return Ok(true);
            }
            if !self.step_until(deadline)? {
                self.now = self.now.max(deadline);
                self.check()?;
                return Ok(done(self));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes node `i`'s clock rate from now on, keeping its clock
    /// continuous (the rate may only go down, so the offset stays positive),
    /// ignoring the drift bound.
    fn slow_down(c: &mut PaxosCluster, i: usize, rate_ppm: i64) {
        let now = c.now();
        let r = &mut c.replicas[i];
        assert!(rate_ppm <= r.rate_ppm);
        let local = r.local(now);
        r.rate_ppm = rate_ppm;
        r.offset = 0;
        r.offset = local - r.local(now);
        assert_eq!(r.local(now), local);
        let d = r.node.as_ref().unwrap().next_deadline();
        r.deadline = Some(r.global(d).max(now));
    }

    #[test]
    fn clocks_drifting_past_the_bound_break_lease_exclusivity() {
        // A leader whose clock runs at 40 % of the true rate keeps its
        // lease long after its followers' promises ran out; cut off, it
        // still holds it when the others elect a leader of their own.
        let mut cfg = SimConfig::new(3, 5);
        cfg.net = NetConfig::reliable(1_000_000);
        let mut c = PaxosCluster::new(cfg).unwrap();
        c.run_for(2_000_000_000).unwrap();
        let l = c.leader().unwrap();
        slow_down(&mut c, l as usize, -600_000);
        c.run_for(100_000_000).unwrap();
        assert!(c.status()[l as usize].read_lease);
        let others: Vec<NodeId> = (0..3).filter(|&i| i != l).collect();
        c.partition(&[vec![l], others]).unwrap();
        let v = c.run_for(2_000_000_000).unwrap_err();
        assert_eq!((v.kind, v.seed), (ViolationKind::Lease, 5), "{v}");
    }

    #[test]
    fn clocks_drifting_within_the_bound_keep_leases_exclusive() {
        for seed in 0..20 {
            let mut cfg = SimConfig::new(3, seed);
            cfg.net = NetConfig::reliable(1_000_000);
            let half = cfg.max_rate_ppm as i64 / 2;
            let mut c = PaxosCluster::new(cfg).unwrap();
            c.run_for(2_000_000_000).unwrap();
            let l = c.leader().unwrap();
            for i in 0..3 {
                let target = if i == l as usize { -half } else { half };
                if target <= c.replicas[i].rate_ppm {
                    slow_down(&mut c, i, target);
                }
            }
            c.run_for(100_000_000).unwrap();
            let others: Vec<NodeId> = (0..3).filter(|&i| i != l).collect();
            c.partition(&[vec![l], others]).unwrap();
            c.run_for(2_000_000_000).unwrap();
            assert!(c.leader().is_some_and(|n| n != l));
            c.check().unwrap();
        }
    }

    #[test]
    fn a_cluster_can_move_between_threads() {
        // The C and Python faces hold clusters behind handles.
        fn send<T: Send + 'static>() {}
        send::<PaxosCluster>();
        send::<Violation>();
    }

    #[test]
    fn skewed_clocks_are_monotonic_and_deadlines_map_back_exactly() {
        let mut rng = SplitMix64::new(9);
        for rate_ppm in [-450_000, -90_000, -1, 0, 1, 7, 45_000, 450_000] {
            let r: Replica<()> = Replica {
                node: None,
                parked: None,
                offset: rng.between(0, 1 << 30),
                rate_ppm,
                deadline: None,
                incarnation: 0,
                leader_view: None,
                joined: None,
                retired: false,
                epoch: 0,
            };
            let mut last = 0;
            for _ in 0..2000 {
                let t = rng.between(0, 1 << 40);
                let l = r.local(t);
                let g = r.global(l);
                // The first instant the clock shows l: not after t, and it
                // does show l then (and not a moment before).
                assert!(g <= t && r.local(g) == l, "rate {rate_ppm} t {t}");
                assert!(g == 0 || r.local(g - 1) < l);
                let d = l + rng.between(0, 1 << 20);
                assert!(r.local(r.global(d)) >= d);
                last = last.max(l);
            }
            assert!(r.local(0) <= r.local(1) && r.local(1 << 41) >= last);
        }
    }
}
