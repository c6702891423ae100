//! The Multi-Paxos replica as a sans-IO state machine.
//!
//! SKELETON: the interface other modules build on. Bodies are filled in by
//! the Multi-Paxos implementation branch.
#![allow(unused_variables, dead_code)]

use super::ballot::{Ballot, NodeId, Slot};
use super::message::{Batch, Command, Envelope, Message};
use super::storage::Storage;
use crate::error::Result;

/// How a replica behaves. Times are nanoseconds on the caller's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This replica's id; must be in `members`.
    pub id: NodeId,
    /// Every replica of the cluster (distinct ids), this one included.
    pub members: Vec<NodeId>,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval: u64,
    /// A follower that hears nothing from a leader for a time drawn
    /// uniformly from `[election_timeout, 2 * election_timeout)` stands for
    /// election. Must exceed `heartbeat_interval`.
    pub election_timeout: u64,
    /// How long a follower's acknowledgement of a heartbeat promises not to
    /// help elect another leader (the leader lease). 0 disables leases.
    pub lease_duration: u64,
    /// The most the clocks of two replicas can drift apart over one lease;
    /// the leader's lease ends this much before the followers' promises.
    pub max_clock_drift: u64,
    /// At most this many commands go into one slot (1 = no batching).
    pub max_batch: usize,
    /// At most this many slots are proposed and not yet chosen at a time;
    /// commands proposed beyond it wait and are batched.
    pub max_inflight: usize,
    /// Seeds the election-timeout jitter.
    pub seed: u64,
}

impl Config {
    /// Defaults for `id` in `members`: heartbeat 50 ms, election timeout
    /// 500 ms, lease 1 s, drift 50 ms, batch 64, 64 slots in flight.
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Self {
        Config {
            id,
            members,
            heartbeat_interval: 50_000_000,
            election_timeout: 500_000_000,
            lease_duration: 1_000_000_000,
            max_clock_drift: 50_000_000,
            max_batch: 64,
            max_inflight: 64,
            seed: 0,
        }
    }
}

/// What a node asks its driver to do, in the order `poll` returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The node appended `records` records to its storage and synced it:
    /// the messages after this may now be sent.
    Persisted {
        /// How many records.
        records: usize,
    },
    /// Send `message` to `to`.
    Send(Envelope),
    /// `batch` is chosen for `slot`. Slots are delivered in order with no
    /// gaps (no-op slots are delivered with an empty batch).
    Decided {
        /// The slot.
        slot: Slot,
        /// Its commands.
        batch: Batch,
    },
    /// This node's view of the leader changed.
    LeaderChanged {
        /// The leader it now follows (itself when elected), or `None`.
        leader: Option<NodeId>,
        /// That leader's ballot.
        ballot: Ballot,
    },
}

/// A Multi-Paxos replica: proposer, acceptor and learner in one.
pub struct Node<S: Storage> {
    config: Config,
    storage: S,
}

impl<S: Storage> Node<S> {
    /// Start (or restart) a replica: replays `storage`'s records, so a
    /// restarted acceptor keeps every promise and accept it acknowledged.
    pub fn new(config: Config, storage: S, now: u64) -> Result<Self> {
        unimplemented!("Multi-Paxos node")
    }

    /// Handle a message from `from`.
    pub fn step(&mut self, from: NodeId, message: Message, now: u64) -> Result<()> {
        unimplemented!()
    }

    /// Let time pass: heartbeats, election timeouts, lease expiry, retries.
    pub fn tick(&mut self, now: u64) -> Result<()> {
        unimplemented!()
    }

    /// Propose a command: batched into a slot at the leader, forwarded by a
    /// follower that knows the leader, otherwise held until one is known.
    pub fn propose(&mut self, command: Command, now: u64) -> Result<()> {
        unimplemented!()
    }

    /// The next output, or `None` when there is nothing to do.
    pub fn poll(&mut self) -> Option<Output> {
        unimplemented!()
    }

    /// When `tick` must next be called (absolute, on the caller's clock).
    pub fn next_deadline(&self) -> u64 {
        unimplemented!()
    }

    /// The leader this node follows (itself when it leads), if any.
    pub fn leader(&self) -> Option<NodeId> {
        unimplemented!()
    }

    /// Whether this node is the leader (it finished phase 1).
    pub fn is_leader(&self) -> bool {
        unimplemented!()
    }

    /// Whether this node leads and holds a majority's lease at `now`, so it
    /// may answer reads from its own state.
    pub fn has_read_lease(&self, now: u64) -> bool {
        unimplemented!()
    }

    /// Every slot below this is chosen and delivered.
    pub fn commit_index(&self) -> Slot {
        unimplemented!()
    }

    /// The node's current ballot (promised or led).
    pub fn ballot(&self) -> Ballot {
        unimplemented!()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Stop the node and hand back its storage (to restart it, as after a crash).
    pub fn into_storage(self) -> S {
        self.storage
    }
}
