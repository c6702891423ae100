//! The Multi-Paxos replica as a sans-IO state machine.
//!
//! Every replica is proposer, acceptor and learner. One leader, elected with
//! ballots (phase 1 for every slot at once), proposes commands in slots of a
//! log (phase 2 only, pipelined and batched); followers accept, learn the
//! leader's commit index from its accepts and heartbeats, and catch up on
//! slots they missed by asking for chosen values.
//!
//! # Driving a node
//! Call [`Node::step`] for each message, [`Node::tick`] at
//! [`Node::next_deadline`], and [`Node::propose`] for commands; after every
//! call drain [`Node::poll`]. The outputs of one call come in this order:
//! `Persisted` (the storage was synced: the records of the call are
//! durable), then the `Send`s (which may only leave after that), then the
//! `Decided` values in slot order, then `LeaderChanged`.
//!
//! # Semantics worth knowing
//! - Commands are delivered at most once while they are not lost: a command
//!   forwarded to, or queued at, a leader that then fails may be lost (as
//!   with Raft clients that do not retry). Applications that need
//!   exactly-once add ids and retry. A `Forward` the transport duplicates
//!   is dropped (each carries a per-sender sequence number; every receiver
//!   keeps a window of the last 1024 per sender, in memory only). The one
//!   remaining exception: a receiver that restarts between two copies of a
//!   `Forward` has forgotten the first and proposes it again.
//! - The application state is volatile: a restarted node re-delivers
//!   `Decided` for every slot from its log's start (slot 0, or the slot of
//!   its latest snapshot, handed out first as [`Output::Snapshot`]). It
//!   re-delivers at least every slot it delivered before the restart, with
//!   the same values, before anything new: a slot is handed out as
//!   `Decided` only after a `Commit` record covering it was synced (in the
//!   call's one sync, so a call that decides something syncs even when it
//!   persisted nothing else). Slots decided after that come in order as the
//!   node catches up.
//! - Compaction ([`Node::compact`]): the application hands in its state
//!   after a slot; the node drops the slots before it, in memory and in
//!   storage (a checkpoint, [`Storage::compact`]). A replica that asks for
//!   dropped slots (a catch-up, or a candidate's prepare) is sent the
//!   snapshot in chunks of [`SNAPSHOT_CHUNK`] bytes instead, which it pulls
//!   one at a time and resumes after a loss; it installs the snapshot
//!   (checked by CRC-32 and cluster id) and keeps its accepted values after
//!   it. A candidate behind a peer's snapshot gets no promise from it
//!   (it could not learn what that acceptor accepted in the dropped slots).
//! - Messages from ids outside `members`, and messages whose ballots,
//!   senders or slots are implausible, are ignored (`Ok`), never trusted.
//! - A leader's read lease: see [`Node::has_read_lease`].
//! - Elections start with a pre-vote (Raft's PreVote): a node whose timer
//!   runs out asks whether the others would promise; they say yes only if
//!   they have not heard a leader within `election_timeout` and no lease
//!   binds them. Only with a majority's yes does it raise its ballot, so a
//!   node returning from a partition does not depose a healthy leader. A
//!   leader that hears no majority for an election timeout steps down
//!   (CheckQuorum), so this stickiness cannot outlive a cut-off leader. A
//!   candidate's ballot exceeds every ballot it has heard of.
//! - A leader's proposal queue is not bounded for `propose` (the caller
//!   paces it); forwarded commands beyond 100,000 queued are dropped.
//! - The log from its start is kept in memory; a follower more than 2^18
//!   slots (or 4 × `max_inflight`) behind ignores accepts and catches up
//!   first.

use std::collections::{BTreeMap, VecDeque};

use super::ballot::{Ballot, NodeId, Slot};
use super::membership::{
    self, MAX_MEMBERS, Membership, MembershipChange, ROUND_MASK, change_value, parse_change,
};
use super::message::{AcceptedEntry, Batch, Command, Envelope, Message};
use super::storage::{Record, SnapshotData, Storage};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// Ballot rounds above this are refused, so `next_for` never overflows.
const MAX_ROUND: u64 = u64::MAX >> 2;
/// A node holds log entries at most this many slots past its commit index
/// (at least; 4 × `max_inflight` when that is larger). Bounds what a
/// message can make it allocate.
const MIN_WINDOW: u64 = 1 << 18;
/// The shortest heartbeat interval accepted (1 ms). A driver ticks the
/// node about this often; anything shorter only burns CPU (a 1 ns
/// interval, once accepted, made drivers spin).
pub const MIN_HEARTBEAT_INTERVAL: u64 = 1_000_000;
/// Slots per catch-up reply.
const CATCHUP_CHUNK: u64 = 1024;
/// Slots per accept message when a new leader re-proposes.
const ACCEPT_CHUNK: u64 = 1024;
/// Commands a follower holds while no leader is known, and commands a
/// leader queues from forwards.
const MAX_PENDING: usize = 100_000;
/// Heartbeats whose acks a leader still counts.
const HEARTBEAT_HISTORY: usize = 64;
/// `Forward` sequence numbers a receiver remembers per sender.
const FORWARD_WINDOW: u64 = 1024;
/// Bytes per `SnapshotChunk`. The receiver pulls one chunk at a time, so
/// this is also what an install has in flight per receiver.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;
/// The largest snapshot a node accepts: it is kept in one record of the
/// record file, whose frames hold at most `u32::MAX` bytes.
pub const MAX_SNAPSHOT_BYTES: u64 = (u32::MAX as u64) - 64;

/// The `Forward` sequence numbers seen from one sender: the highest, and a
/// ring bitmap of the `FORWARD_WINDOW` seqs up to it (bit `seq % 1024`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ForwardWindow {
    highest: u64,
    seen: [u64; (FORWARD_WINDOW / 64) as usize],
}

impl ForwardWindow {
    fn new(seq: u64) -> Self {
        let mut w = ForwardWindow {
            highest: seq,
            seen: [0; (FORWARD_WINDOW / 64) as usize],
        };
        w.set(seq);
        w
    }

    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % FORWARD_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn set(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.seen[w] |= b;
    }

    fn clear(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.seen[w] &= !b;
    }

    /// Records `seq`; false if it was seen already. Seqs compare with
    /// wrapping arithmetic (a sender starts at a random point). A seq more
    /// than the window behind the highest is taken as a new incarnation of
    /// the sender (which restarted from another random point), not as a
    /// duplicate: dropping it could drop that sender's forwards for good.
    /// Only a copy delayed past 1024 later forwards from its sender could
    /// then be proposed twice.
    fn accept(&mut self, seq: u64) -> bool {
        let behind = self.highest.wrapping_sub(seq);
        if behind < FORWARD_WINDOW {
            let (w, b) = Self::bit(seq);
            let fresh = self.seen[w] & b == 0;
            self.seen[w] |= b;
            return fresh;
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead < FORWARD_WINDOW {
            // Forget the seqs that fall out of the window.
            for s in 1..=ahead {
                self.clear(self.highest.wrapping_add(s));
            }
            self.highest = seq;
            self.set(seq);
        } else {
            *self = ForwardWindow::new(seq);
        }
        true
    }
}

/// How a replica behaves. Times are nanoseconds on the caller's clock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Config {
    /// This replica's id; must be in `members`.
    pub id: NodeId,
    /// Every replica of the cluster (distinct ids, at most 64), this one
    /// included.
    pub members: Vec<NodeId>,
    /// How often a leader sends heartbeats; at least [`MIN_HEARTBEAT_INTERVAL`] (1 ms).
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
    /// Which cluster this replica belongs to: any number the operator
    /// picks, the same on every replica. A record file records it (with
    /// `id`), and a node refuses a file of another cluster or replica.
    pub cluster_id: u64,
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
            cluster_id: 0,
        }
    }

    /// Checks the rules `Node::new` enforces.
    pub fn validate(&self) -> Result<()> {
        self.validate_settings()?;
        if !self.members.contains(&self.id) {
            return Err(Error::invalid(format!(
                "paxos config: id {} is not among the members (a new replica joins with Node::join)",
                self.id
            )));
        }
        Ok(())
    }

    /// Every rule but `id` being a member: what `Node::join` enforces.
    pub fn validate_settings(&self) -> Result<()> {
        if self.members.is_empty() {
            return Err(Error::invalid("paxos config: members is empty"));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(Error::invalid(format!(
                "paxos config: {} members, at most {MAX_MEMBERS} are supported",
                self.members.len()
            )));
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].contains(m) {
                return Err(Error::invalid(format!(
                    "paxos config: member {m} is listed twice"
                )));
            }
        }
        if self.heartbeat_interval < MIN_HEARTBEAT_INTERVAL {
            return Err(Error::invalid(format!(
                "paxos config: heartbeat_interval must be at least {MIN_HEARTBEAT_INTERVAL} ns (1 ms), got {} ns: a shorter one makes a driver spin",
                self.heartbeat_interval
            )));
        }
        if self.election_timeout <= self.heartbeat_interval {
            return Err(Error::invalid(
                "paxos config: election_timeout must exceed heartbeat_interval",
            ));
        }
        if self.election_timeout > u64::MAX / 4 {
            return Err(Error::invalid(
                "paxos config: election_timeout is too large",
            ));
        }
        if self.max_batch == 0 {
            return Err(Error::invalid("paxos config: max_batch must be >= 1"));
        }
        if self.max_inflight == 0 {
            return Err(Error::invalid("paxos config: max_inflight must be >= 1"));
        }
        if self.max_inflight > 1 << 20 {
            return Err(Error::invalid("paxos config: max_inflight must be <= 2^20"));
        }
        if self.lease_duration > 0 && self.max_clock_drift >= self.lease_duration {
            return Err(Error::invalid(
                "paxos config: max_clock_drift must be below lease_duration",
            ));
        }
        Ok(())
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
    /// Replace the application's state with `data`, a snapshot of the
    /// state after every slot below `slot` (one this node installed from a
    /// peer, or, first thing after a restart, its own latest). The
    /// `Decided` outputs that follow continue from `slot`.
    Snapshot {
        /// The snapshot covers every slot below this.
        slot: Slot,
        /// The application's bytes, as given to [`Node::compact`].
        data: SnapshotData,
    },
    /// A read asked for with [`Node::read_index`]: `ready` — this node was
    /// still the leader after the read arrived (a majority acknowledged a
    /// heartbeat sent after it) and every slot up to its read index was
    /// delivered before this output, so the application may answer it from
    /// its state now. Not `ready` — leadership was lost first; ask the new
    /// leader.
    ReadIndex {
        /// The caller's id for the read.
        id: u64,
        /// Whether it may be answered.
        ready: bool,
    },
    /// A membership change was delivered (or, after a restart or an
    /// install, the membership the node holds): `membership` decides every
    /// slot from its `start` on. The `Decided` of the change's slot (just
    /// before it) has an empty batch. A node that is neither a voter nor a
    /// learner in it takes no further part and may be shut down.
    MembershipChanged(Membership),
    /// This node's view of the leader changed.
    LeaderChanged {
        /// The leader it now follows (itself when elected), or `None`.
        leader: Option<NodeId>,
        /// That leader's ballot.
        ballot: Ballot,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

/// One log slot as this acceptor knows it.
#[derive(Debug, Clone, Default, Hash)]
struct Entry {
    /// The ballot of the last accept (`ZERO`: none).
    ballot: Ballot,
    batch: Batch,
    /// Known chosen (then `batch` is the chosen value).
    chosen: bool,
}

impl Entry {
    fn present(&self) -> bool {
        self.chosen || self.ballot != Ballot::ZERO
    }
}

/// The latest snapshot: the state after every slot below `slot`.
#[derive(Debug, Clone, Hash)]
struct Snap {
    slot: Slot,
    data: SnapshotData,
    /// The membership that decides `slot`.
    membership: Membership,
    /// What an install sends after `data`: the membership's encoding,
    /// then its length (u32, little-endian).
    suffix: Vec<u8>,
    /// CRC-32 of `data` then `suffix`, sent with every chunk.
    checksum: u32,
}

impl Snap {
    fn new(slot: Slot, data: SnapshotData, membership: Membership) -> Self {
        let mut suffix = super::wire::encode_membership(&membership);
        let n = suffix.len() as u32;
        suffix.extend_from_slice(&n.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&data);
        crc.update(&suffix);
        Snap {
            slot,
            data,
            membership,
            suffix,
            checksum: crc.finalize(),
        }
    }

    /// The bytes an install transfers.
    fn image_len(&self) -> u64 {
        (self.data.len() + self.suffix.len()) as u64
    }

    /// `image[from..to]`, where the image is `data` then `suffix`.
    fn image(&self, from: u64, to: u64) -> Vec<u8> {
        let (from, to, d) = (from as usize, to as usize, self.data.len());
        let mut out = Vec::with_capacity(to - from);
        if from < d {
            out.extend_from_slice(&self.data[from..to.min(d)]);
        }
        if to > d {
            out.extend_from_slice(&self.suffix[from.max(d) - d..to - d]);
        }
        out
    }
}

/// Commands may not begin with the bytes that mark a membership change.
fn refuse_reserved(command: &[u8]) -> Result<()> {
    if membership::is_reserved(command) {
        return Err(Error::invalid(
            "propose: the command begins with the bytes reserved for membership changes \
             (0xff \"qk-cfg\" 0x01)",
        ));
    }
    Ok(())
}

/// Splits an assembled install image into the application's bytes and
/// the membership; `None` when the suffix is malformed.
fn split_image(mut image: Vec<u8>) -> Option<(Vec<u8>, Membership)> {
    let len_at = image.len().checked_sub(4)?;
    let n = u32::from_le_bytes(image[len_at..].try_into().ok()?) as usize;
    let at = len_at.checked_sub(n)?;
    let m = super::wire::decode_membership(&image[at..len_at]).ok()?;
    Membership::validate_sets(&m.voters, &m.learners).ok()?;
    image.truncate(at);
    Some((image, m))
}

/// A snapshot being received, chunk by chunk.
#[derive(Debug, Clone, Hash)]
struct Incoming {
    slot: Slot,
    total: u64,
    checksum: u32,
    data: Vec<u8>,
}

/// A read waiting for its leadership check (a heartbeat `seq` acknowledged
/// by a majority) and for the commit index to reach `index`.
#[derive(Debug, Clone, Copy, Hash)]
struct PendingRead {
    id: u64,
    index: Slot,
    seq: u64,
    confirmed: bool,
}

/// A leader's view of one slot it proposed.
#[derive(Debug, Clone, Copy, Hash)]
struct InFlight {
    /// Member positions that accepted it in the leader's ballot.
    acks: u64,
    /// When the accept was last sent.
    sent_at: u64,
}

/// A leadership transfer under way at the leader.
#[derive(Debug, Clone, Copy, Hash)]
struct Transfer {
    to: NodeId,
    /// The first heartbeat sent for it: the target must acknowledge it (or
    /// a later one).
    seq: u64,
    /// Given up (and proposing resumed) then.
    until: u64,
}

/// A candidate's phase 1.
#[derive(Debug, Clone, Default, Hash)]
struct Election {
    /// Member positions that promised.
    promises: u64,
    /// Per slot: the highest-ballot accepted value reported (or a chosen one).
    merged: BTreeMap<Slot, (Ballot, Batch, bool)>,
}

/// A Multi-Paxos replica: proposer, acceptor and learner in one.
///
/// `Clone` and `Debug` (when the storage has them) copy or show the whole
/// state, timers included; model checkers use them.
#[derive(Debug, Clone)]
pub struct Node<S: Storage> {
    config: Config,
    storage: S,
    /// The membership of the current epoch.
    membership: Membership,
    /// The earlier memberships still needed: the one the snapshot (or the
    /// log's start) belongs to and every one since, oldest first.
    earlier: Vec<Membership>,
    /// Whether this node votes in the current epoch.
    voter: bool,
    /// This node's position among the voters (its ack bit; 0 when it does
    /// not vote, and then unused).
    me: usize,
    /// A majority of the voters.
    majority: usize,
    /// See [`MIN_WINDOW`].
    window: u64,
    rng: SplitMix64,
    /// Set after a storage failure: every later call fails with it.
    stopped: Option<String>,
    /// The last `now` seen.
    now: u64,

    // Acceptor and learner (durable through records).
    promised: Ballot,
    /// The first slot `log` holds (`log[i]` is slot `base + i`); every slot
    /// below it is compacted into `snapshot`.
    base: Slot,
    log: Vec<Entry>,
    /// The latest snapshot (this node's compaction or an installed one).
    snapshot: Option<Snap>,
    /// A snapshot being installed from a peer.
    incoming: Option<Incoming>,
    commit: Slot,
    /// The commit index of the last `Commit` record: every `Decided` handed
    /// out is below it once the call that decided it has synced.
    commit_persisted: Slot,

    // Role.
    role: Role,
    /// The ballot this node stood for election with (or leads in).
    ballot: Ballot,
    /// The highest ballot heard of (in any message), so the next one
    /// exceeds it.
    highest_seen: Ballot,
    leader: Option<NodeId>,
    leader_ballot: Ballot,
    election_deadline: u64,
    election: Option<Election>,
    /// A pre-vote in progress: the ballot asked about and the member
    /// positions that granted it.
    prevote: Option<(Ballot, u64)>,
    /// When this node last heard a leader it follows (accept or heartbeat):
    /// within an election timeout of that it refuses pre-votes.
    leader_heard_at: Option<u64>,

    // Leader.
    queue: VecDeque<Command>,
    next_slot: Slot,
    /// Slots `commit..next_slot`.
    inflight: VecDeque<InFlight>,
    next_heartbeat: u64,
    hb_seq: u64,
    /// (seq, sent at, acks).
    hb_sent: VecDeque<(u64, u64, u64)>,
    lease_until: u64,
    /// Member positions heard in this ballot since the last quorum check.
    quorum_heard: u64,
    /// A leader that has not heard a majority since the last check by then
    /// steps down (so stickiness cannot keep a cut-off leader forever).
    quorum_check_at: u64,
    /// Lease reads wait until the slots re-proposed at election are chosen.
    lease_ready_slot: Slot,
    /// A membership change waiting for its slot.
    pending_change: Option<Batch>,
    /// Leader: a leadership transfer under way: the target, the heartbeat
    /// it must acknowledge, and when to give up.
    transfer: Option<Transfer>,
    /// Leader: when each learner last acknowledged one of its messages (a
    /// learner that has not recently is not promoted).
    learner_heard: BTreeMap<NodeId, u64>,
    /// The slot of this leader's membership change in flight: nothing is
    /// proposed after it until it is delivered (a value after it would be
    /// void).
    change_slot: Option<Slot>,
    /// ReadIndex reads in arrival order.
    reads: VecDeque<PendingRead>,
    /// The heartbeat sent in the current call, if one was (reads arriving
    /// in the same call share it: it leaves after all of them).
    call_heartbeat: Option<u64>,

    // Follower.
    forward: Vec<Command>,
    /// The seq of the next `Forward` this node sends (random start, so a
    /// restarted node does not reuse its previous incarnation's seqs).
    forward_seq: u64,
    /// Per peer: the `Forward` seqs seen from it (volatile).
    forward_seen: BTreeMap<NodeId, ForwardWindow>,
    lease_promise_to: Option<NodeId>,
    lease_promise_until: u64,
    restart_block_until: u64,
    /// The highest commit index heard from a leader or peer.
    known_commit: Slot,
    /// A replica of a newer epoch, outside this node's membership, that
    /// this node asked to catch up from (its replies are taken).
    catchup_peer: Option<NodeId>,
    catchup_due: u64,

    // Outputs of the current call, then the queue `poll` drains.
    records: usize,
    sends: Vec<Envelope>,
    decided: Vec<Output>,
    leader_changes: Vec<Output>,
    out: VecDeque<Output>,
}

impl<S: Storage> Node<S> {
    /// Start (or restart) a replica: replays `storage`'s records, so a
    /// restarted acceptor keeps every promise and accept it acknowledged.
    ///
    /// Every slot below the restored commit index is re-delivered as
    /// `Decided` (from slot 0, ready to `poll`): the application rebuilds its
    /// state by replay. A node with records (a restart) refuses to promise
    /// any candidate for `lease_duration`, as it may have granted a lease it
    /// no longer remembers.
    pub fn new(config: Config, storage: S, now: u64) -> Result<Self> {
        config.validate()?;
        Self::start(config, storage, now)
    }

    /// Start a replica that joins a running cluster: `config.members` names
    /// replicas of the cluster (its voters as the operator knows them) and
    /// need not include `config.id`. The node takes no part until a leader
    /// adds it ([`MembershipChange::AddLearner`]); then it catches up from
    /// the leader (by snapshot install if the log was compacted) and
    /// follows as a learner until promoted. Restart such a node with `join`
    /// too (its storage holds its membership).
    pub fn join(config: Config, storage: S, now: u64) -> Result<Self> {
        config.validate_settings()?;
        Self::start(config, storage, now)
    }

    fn start(config: Config, mut storage: S, now: u64) -> Result<Self> {
        let window = MIN_WINDOW.max(4 * config.max_inflight as u64);
        let mix = (config.id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let records = storage.load()?;
        let restarted = !records.is_empty();
        let mut node = Node {
            membership: Membership::initial(config.members.clone()),
            earlier: Vec::new(),
            voter: false,
            me: 0,
            majority: 1,
            window,
            rng: SplitMix64::new(config.seed ^ mix),
            stopped: None,
            now,
            promised: Ballot::ZERO,
            base: 0,
            log: Vec::new(),
            snapshot: None,
            incoming: None,
            commit: 0,
            commit_persisted: 0,
            role: Role::Follower,
            ballot: Ballot::ZERO,
            highest_seen: Ballot::ZERO,
            leader: None,
            leader_ballot: Ballot::ZERO,
            election_deadline: now,
            election: None,
            prevote: None,
            leader_heard_at: None,
            queue: VecDeque::new(),
            next_slot: 0,
            inflight: VecDeque::new(),
            next_heartbeat: now,
            hb_seq: 0,
            hb_sent: VecDeque::new(),
            lease_until: 0,
            quorum_heard: 0,
            quorum_check_at: now,
            lease_ready_slot: 0,
            pending_change: None,
            transfer: None,
            learner_heard: BTreeMap::new(),
            change_slot: None,
            reads: VecDeque::new(),
            call_heartbeat: None,
            forward: Vec::new(),
            // A separate generator, so the node's own draws are unchanged;
            // `now` and the record count tell incarnations apart.
            forward_seq: SplitMix64::new(
                config.seed ^ mix ^ now.rotate_left(17) ^ (records.len() as u64).rotate_left(41),
            )
            .next_u64(),
            forward_seen: BTreeMap::new(),
            lease_promise_to: None,
            lease_promise_until: 0,
            restart_block_until: 0,
            known_commit: 0,
            catchup_peer: None,
            catchup_due: now,
            records: 0,
            sends: Vec::new(),
            decided: Vec::new(),
            leader_changes: Vec::new(),
            out: VecDeque::new(),
            config,
            storage,
        };
        node.refresh_positions();
        node.replay(records)?;
        if restarted {
            node.restart_block_until = now.saturating_add(node.config.lease_duration);
        }
        node.election_deadline = now.saturating_add(node.election_timeout());
        node.out.extend(node.decided.drain(..));
        Ok(node)
    }

    fn replay(&mut self, records: Vec<Record>) -> Result<()> {
        let mut commit_rec: Slot = 0;
        for record in records {
            match record {
                Record::Promise { ballot } => self.promised = self.promised.max(ballot),
                Record::Accept {
                    slot,
                    ballot,
                    batch,
                } => {
                    self.check_replayed_slot(slot, commit_rec)?;
                    if slot < self.base {
                        continue; // covered by the snapshot
                    }
                    let e = self.entry_mut(slot);
                    if !e.chosen {
                        e.batch = batch;
                    }
                    e.ballot = ballot;
                }
                Record::Chosen { slot, batch } => {
                    self.check_replayed_slot(slot, commit_rec)?;
                    if slot < self.base {
                        continue;
                    }
                    let e = self.entry_mut(slot);
                    e.batch = batch;
                    e.chosen = true;
                }
                Record::Commit { commit } => commit_rec = commit_rec.max(commit),
                Record::Snapshot { slot, data } => {
                    if slot > self.base {
                        self.drop_below(slot);
                        self.snapshot = Some(Snap::new(slot, data, self.membership.clone()));
                        self.earlier.clear();
                    }
                    commit_rec = commit_rec.max(slot);
                }
                Record::Membership(m) => {
                    if m.epoch > self.membership.epoch {
                        // Entries recorded before this from `start` on
                        // were the older epoch's: void.
                        if m.start >= self.base {
                            let keep = (m.start - self.base) as usize;
                            self.log.truncate(keep);
                        }
                        let old = std::mem::replace(&mut self.membership, m);
                        self.earlier.push(old);
                        self.refresh_positions();
                    }
                }
            }
        }
        if commit_rec > self.log_end() {
            return Err(Error::corrupt(format!(
                "paxos storage: commit {commit_rec} but only slots up to {} recorded",
                self.log_end()
            )));
        }
        for s in self.base..commit_rec {
            let e = &mut self.log[(s - self.base) as usize];
            if !e.present() {
                return Err(Error::corrupt(format!(
                    "paxos storage: commit {commit_rec} but slot {s} has no value"
                )));
            }
            e.chosen = true;
        }
        self.commit = self.base;
        self.next_slot = self.base;
        if let Some(snap) = &self.snapshot {
            self.decided.push(Output::Snapshot {
                slot: snap.slot,
                data: snap.data.clone(),
            });
            if snap.membership.epoch > 0 {
                self.decided
                    .push(Output::MembershipChanged(snap.membership.clone()));
            }
        }
        self.advance_commit()?;
        self.commit_persisted = commit_rec;
        self.known_commit = self.commit;
        self.highest_seen = self.promised;
        Ok(())
    }

    fn check_replayed_slot(&self, slot: Slot, commit_rec: Slot) -> Result<()> {
        let cap = commit_rec.saturating_add(4 * self.window);
        if slot >= cap {
            return Err(Error::corrupt(format!(
                "paxos storage: record for slot {slot} far past commit {commit_rec}"
            )));
        }
        Ok(())
    }

    /// Handle a message from `from`. Messages from non-members, and messages
    /// from this node's own id, are ignored.
    pub fn step(&mut self, from: NodeId, message: Message, now: u64) -> Result<()> {
        self.run(now, |n| n.on_message(from, message))
    }

    /// Let time pass: heartbeats, election timeouts, lease expiry, retries.
    pub fn tick(&mut self, now: u64) -> Result<()> {
        self.run(now, |n| n.on_tick())
    }

    /// Propose a command: batched into a slot at the leader, forwarded by a
    /// follower that knows the leader, otherwise held until one is known
    /// (at most 100,000 commands; beyond that `Error::NotLeader{leader:
    /// None}`).
    pub fn propose(&mut self, command: Command, now: u64) -> Result<()> {
        self.run(now, |n| n.on_propose(command))
    }

    /// Propose several commands at once, as [`propose`](Self::propose)
    /// would one by one, except that a leader packs them into as few slots
    /// as `max_batch` allows (one record and one `Accept` per slot instead
    /// of per command): for a driver that gathers a turn's proposals.
    pub fn propose_all(&mut self, commands: Vec<Command>, now: u64) -> Result<()> {
        self.run(now, |n| n.on_propose_all(commands))
    }

    /// Compact the log: `data` is the application's state after applying
    /// every slot below `slot` (so `slot` is at most the commit index and
    /// the application applied every `Decided` below it). The node drops
    /// those slots from memory and replaces its storage's records with a
    /// checkpoint ([`Storage::compact_in_background`]: `FileStorage` writes
    /// it on a thread of its own, so this call does not wait for a large
    /// snapshot to reach the disk); a restart then hands out
    /// [`Output::Snapshot`] and replays only the slots from `slot` on, and
    /// a replica that needs the dropped slots gets the snapshot instead.
    ///
    /// Errors: `InvalidArgument` when `slot` is above the commit index,
    /// when the log already starts at or after `slot` (an older snapshot,
    /// or one that raced an install from a peer; nothing changes), or when
    /// `data` is larger than [`MAX_SNAPSHOT_BYTES`]; a storage error stops
    /// the node as for any call (the old records are left whole).
    pub fn compact(&mut self, slot: Slot, data: Vec<u8>, now: u64) -> Result<()> {
        self.run(now, |n| n.on_compact(slot, data))
    }

    /// The first slot the log holds: every slot below it was compacted
    /// into the snapshot.
    pub fn log_start(&self) -> Slot {
        self.base
    }

    /// How many slots the log holds in memory (from [`log_start`](Self::log_start)).
    pub fn log_len(&self) -> u64 {
        self.log.len() as u64
    }

    /// Whether the storage is still writing the checkpoint of the last
    /// [`compact`](Self::compact) in the background
    /// ([`Storage::compacting`]); a sync after it is written puts it in
    /// place, and any call syncs.
    pub fn compacting(&self) -> bool {
        self.storage.compacting()
    }

    /// The latest snapshot's slot and bytes, if the node has one.
    pub fn snapshot(&self) -> Option<(Slot, &SnapshotData)> {
        self.snapshot.as_ref().map(|s| (s.slot, &s.data))
    }

    /// A snapshot being installed from a peer: its slot, the bytes
    /// received so far and its total length.
    pub fn install_progress(&self) -> Option<(Slot, u64, u64)> {
        self.incoming
            .as_ref()
            .map(|i| (i.slot, i.data.len() as u64, i.total))
    }

    /// A linearizable read without clock assumptions (Raft's ReadIndex, an
    /// alternative to [`has_read_lease`](Self::has_read_lease)): the leader
    /// notes its commit index, sends a heartbeat, and once a majority has
    /// acknowledged it and the index is delivered hands out
    /// [`Output::ReadIndex`] `{ id, ready: true }`; the application then
    /// answers the read from its state. `ready: false` if it loses the
    /// leadership first.
    ///
    /// Errors: `NotLeader` (with the leader it knows) on a follower;
    /// `LimitExceeded` past 100,000 waiting reads.
    pub fn read_index(&mut self, id: u64, now: u64) -> Result<()> {
        self.run(now, |n| n.on_read_index(id))
    }

    /// Propose a membership change (leader only): a learner added, a
    /// learner promoted, a replica removed, a voter replaced. The change
    /// takes a slot of its own; when that slot is delivered the next epoch
    /// begins with the new membership ([`Output::MembershipChanged`]),
    /// and the cluster elects a leader among the new voters (the old
    /// leader, if it still votes, stands at once). Commands proposed
    /// meanwhile wait and are not lost. See [`membership`]
    /// for why any change is safe.
    ///
    /// Errors (nothing changes): `NotLeader` on a follower;
    /// `InvalidArgument` when a change is already under way, or the change
    /// names an unknown replica, adds an existing one, promotes a
    /// non-learner, would leave one voter, or exceeds 64 replicas.
    pub fn change_membership(&mut self, change: MembershipChange, now: u64) -> Result<()> {
        self.run(now, |n| n.on_change_membership(change))
    }

    /// Hand the leadership to the voter `to`, for planned maintenance
    /// (leader only). The leader stops proposing (commands wait, then go
    /// to the new leader), waits until `to` has acknowledged every slot in
    /// flight and a heartbeat carrying its commit index, then gives up its
    /// read lease, steps down and sends [`Message::Handoff`]: `to` stands
    /// at once (no pre-vote) and the other voters release their lease
    /// promises, so the time without a leader is about one round trip. If
    /// `to` has not caught up within an election timeout the transfer is
    /// dropped and the leader carries on. Watch `LeaderChanged`.
    ///
    /// Errors (nothing changes): `NotLeader` on a follower;
    /// `InvalidArgument` when `to` is this node or not a voter, or while a
    /// membership change or another transfer is under way.
    pub fn transfer_leadership(&mut self, to: NodeId, now: u64) -> Result<()> {
        self.run(now, |n| n.on_transfer(to))
    }

    /// The current membership (its epoch, first slot, voters, learners).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether this node votes in the current epoch.
    pub fn is_voter(&self) -> bool {
        self.voter
    }

    /// The next output, or `None` when there is nothing to do.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When `tick` must next be called (absolute, on the caller's clock;
    /// never before the last `now` seen). `u64::MAX` once stopped.
    pub fn next_deadline(&self) -> u64 {
        if self.stopped.is_some() {
            return u64::MAX;
        }
        let d = match self.role {
            Role::Leader => self.next_heartbeat.min(self.quorum_check_at),
            _ => {
                let mut d = self.election_deadline;
                if self.commit < self.known_commit && self.leader.is_some() {
                    d = d.min(self.catchup_due);
                }
                d
            }
        };
        d.max(self.now)
    }

    /// The leader this node follows (itself when it leads), if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Whether this node is the leader (it finished phase 1).
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Whether this node leads and holds a majority's lease at `now`, so it
    /// may answer reads from its own state.
    ///
    /// The lease runs to `t + lease_duration - max_clock_drift` for the
    /// latest heartbeat sent at `t` that a majority (this node included)
    /// acknowledged; it also waits until every slot the node re-proposed on
    /// election is chosen (so its state includes every earlier write).
    /// Never true when `lease_duration` is 0.
    pub fn has_read_lease(&self, now: u64) -> bool {
        self.role == Role::Leader
            && self.stopped.is_none()
            && self.config.lease_duration > 0
            && now < self.lease_until
            && self.commit >= self.lease_ready_slot
    }

    /// Every slot below this is chosen and delivered.
    pub fn commit_index(&self) -> Slot {
        self.commit
    }

    /// The node's current ballot (promised or led).
    pub fn ballot(&self) -> Ballot {
        self.promised.max(self.ballot)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutably: for a driver whose storage defers its sync to
    /// one call per batch of events (group commit, `net::GroupCommit`).
    /// Appending records through it, or loading, breaks the node.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Stop the node and hand back its storage (to restart it, as after a crash).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The voters of the current epoch (`config.members` until the first
    /// membership change).
    pub fn members(&self) -> &[NodeId] {
        &self.membership.voters
    }

    /// The learners of the current epoch.
    pub fn learners(&self) -> &[NodeId] {
        &self.membership.learners
    }

    /// Whether a storage failure stopped the node.
    pub fn is_stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// Whether the node is standing for election (phase 1 in progress).
    pub fn is_candidate(&self) -> bool {
        self.role == Role::Candidate
    }

    /// Commands waiting here: queued at a leader for a slot, or held by a
    /// follower that knows no leader.
    pub fn pending_commands(&self) -> usize {
        self.queue.len() + self.forward.len()
    }

    /// The highest ballot this acceptor promised (durable).
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The highest commit index this node has heard of (its own or a
    /// leader's); above `commit_index` while it catches up.
    pub fn known_commit(&self) -> Slot {
        self.known_commit.max(self.commit)
    }

    /// The ballot and value this acceptor holds for `slot`, and whether it
    /// knows the value is chosen; `None` when it accepted nothing there.
    pub fn accepted(&self, slot: Slot) -> Option<(Ballot, &Batch, bool)> {
        let e = self.entry(slot)?;
        e.present().then_some((e.ballot, &e.batch, e.chosen))
    }

    /// A hash of the whole protocol state (timers included), leaving out
    /// the storage and the outputs not yet polled: equal states hash
    /// equally. For model checkers.
    #[doc(hidden)]
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // Destructured so that a new field cannot be forgotten here.
        let Node {
            config,
            storage: _,
            membership,
            earlier,
            voter,
            me,
            majority,
            window,
            rng,
            stopped,
            now,
            promised,
            base,
            log,
            snapshot,
            incoming,
            commit,
            commit_persisted,
            role,
            ballot,
            highest_seen,
            leader,
            leader_ballot,
            election_deadline,
            election,
            prevote,
            leader_heard_at,
            queue,
            next_slot,
            inflight,
            next_heartbeat,
            hb_seq,
            hb_sent,
            lease_until,
            quorum_heard,
            quorum_check_at,
            lease_ready_slot,
            pending_change,
            transfer,
            learner_heard,
            change_slot,
            reads,
            call_heartbeat,
            forward,
            forward_seq,
            forward_seen,
            lease_promise_to,
            lease_promise_until,
            restart_block_until,
            known_commit,
            catchup_peer,
            catchup_due,
            records,
            sends: _,
            decided: _,
            leader_changes: _,
            out: _,
        } = self;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (config, me, majority, window).hash(&mut h);
        // splitmix64's step is a bijection of its state.
        rng.clone().next_u64().hash(&mut h);
        (stopped, now, promised, log, commit, commit_persisted).hash(&mut h);
        (role, ballot, highest_seen, leader).hash(&mut h);
        (leader_ballot, election_deadline, election, queue, next_slot).hash(&mut h);
        (inflight, next_heartbeat, hb_seq, hb_sent, lease_until).hash(&mut h);
        (
            lease_ready_slot,
            forward,
            lease_promise_to,
            lease_promise_until,
        )
            .hash(&mut h);
        (restart_block_until, known_commit, catchup_due, records).hash(&mut h);
        (prevote, leader_heard_at, quorum_heard, quorum_check_at).hash(&mut h);
        (forward_seq, forward_seen).hash(&mut h);
        (base, snapshot, incoming, reads, call_heartbeat).hash(&mut h);
        (membership, earlier, voter, pending_change, change_slot).hash(&mut h);
        (learner_heard, transfer).hash(&mut h);
        catchup_peer.hash(&mut h);
        h.finish()
    }

    // ------------------------------------------------------------ plumbing

    fn run(&mut self, now: u64, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        if let Some(msg) = &self.stopped {
            return Err(Error::Storage(msg.clone()));
        }
        self.now = now;
        self.call_heartbeat = None;
        let result = f(self);
        let result = match result {
            Err(e @ Error::Storage(_)) => Err(e),
            other => self.finish().and(other),
        };
        if let Err(Error::Storage(m)) = &result {
            let msg = format!("node stopped after a storage failure: {m}");
            self.stopped = Some(msg.clone());
            self.records = 0;
            self.sends.clear();
            self.decided.clear();
            self.leader_changes.clear();
            self.out.clear();
            return Err(Error::Storage(msg));
        }
        result
    }

    /// Ends a call: sync once, then hand out Persisted, Sends, Decided,
    /// LeaderChanged in that order.
    fn finish(&mut self) -> Result<()> {
        // A slot is handed out as `Decided` only with a durable `Commit`
        // record covering it (synced below, before any output), so a
        // restart re-delivers at least every slot delivered before it.
        if self.commit > self.commit_persisted {
            self.storage.append_owned(Record::Commit {
                commit: self.commit,
            })?;
            self.records += 1;
            self.commit_persisted = self.commit;
        }
        if self.records > 0 {
            self.storage.sync()?;
            self.out.push_back(Output::Persisted {
                records: self.records,
            });
            self.records = 0;
        } else if self.storage.compacting() {
            // Nothing new to make durable, but a sync is what puts a
            // checkpoint written in the background in place.
            self.storage.sync()?;
        }
        self.release_reads();
        self.out.extend(self.sends.drain(..).map(Output::Send));
        self.out.extend(self.decided.drain(..));
        self.out.extend(self.leader_changes.drain(..));
        Ok(())
    }

    fn persist(&mut self, record: &Record) -> Result<()> {
        self.storage.append(record)?;
        self.records += 1;
        Ok(())
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.sends.push(Envelope {
            from: self.config.id,
            to,
            message,
        });
    }

    /// Sends a `Forward` of `commands` to `to` with this node's next seq.
    fn send_forward(&mut self, to: NodeId, commands: Vec<Command>) {
        let seq = self.forward_seq;
        self.forward_seq = seq.wrapping_add(1);
        self.send(to, Message::Forward { seq, commands });
    }

    /// Sends `message` to every other voter and learner, cloning it once
    /// per peer but the last.
    fn broadcast(&mut self, message: Message) {
        let peers: Vec<NodeId> = self.membership.peers().collect();
        self.send_all(&peers, message);
    }

    /// Sends `message` to every other voter (phase 1 and pre-votes).
    fn broadcast_voters(&mut self, message: Message) {
        let voters = self.membership.voters.clone();
        self.send_all(&voters, message);
    }

    fn send_all(&mut self, to: &[NodeId], message: Message) {
        let id = self.config.id;
        let mut last = None;
        for &peer in to {
            if peer == id {
                continue;
            }
            if let Some(prev) = last.replace(peer) {
                self.send(prev, message.clone());
            }
        }
        if let Some(peer) = last {
            self.send(peer, message);
        }
    }

    /// `id`'s position among the voters (its ack bit).
    fn position(&self, id: NodeId) -> Option<usize> {
        self.membership.voters.iter().position(|&m| m == id)
    }

    /// A ballot this node takes part in: one of a voter of the current
    /// epoch, with rounds left after it in the epoch.
    fn valid_ballot(&self, b: Ballot) -> bool {
        let r = b.round & ROUND_MASK;
        (1..ROUND_MASK - 1).contains(&r)
            && b.round <= MAX_ROUND
            && b.epoch() == self.membership.epoch
            && self.position(b.node).is_some()
    }

    /// After a membership change: this node's vote, ack bit and majority,
    /// and the promise floor of the epoch.
    fn refresh_positions(&mut self) {
        let pos = self.position(self.config.id);
        self.voter = pos.is_some();
        self.me = pos.unwrap_or(0);
        self.majority = self.membership.voters.len() / 2 + 1;
        let m = &self.membership;
        self.forward_seen.retain(|id, _| m.contains(*id));
        let floor = m.ballot_floor();
        self.promised = self.promised.max(floor);
        self.highest_seen = self.highest_seen.max(floor);
    }

    /// A message of a newer epoch from `from`: this node missed the change
    /// that began it, so it catches up from `from` first.
    fn behind_epoch(&mut self, from: NodeId) {
        self.known_commit = self.known_commit.max(self.commit + 1);
        if !self.membership.contains(from) {
            self.catchup_peer = Some(from);
        }
        if self.role == Role::Follower && self.leader.is_some_and(|l| l != from) {
            // Its leader's epoch is over: stop asking it.
            let b = self.leader_ballot;
            self.set_leader(None, b);
        }
        // Ask at once: these messages come at most once per heartbeat or
        // election timeout.
        self.catchup_due = self.now;
        self.maybe_catch_up(from);
    }

    /// The membership that decides `slot` (at or after the log's start).
    fn membership_at(&self, slot: Slot) -> &Membership {
        if self.membership.start <= slot {
            return &self.membership;
        }
        self.earlier
            .iter()
            .rev()
            .find(|m| m.start <= slot)
            .unwrap_or(&self.membership)
    }

    fn election_timeout(&mut self) -> u64 {
        let t = self.config.election_timeout;
        self.rng.between(t, 2 * t - 1)
    }

    fn reset_election_timer(&mut self) {
        self.election_deadline = self.now.saturating_add(self.election_timeout());
    }

    /// One past the last slot the log holds.
    fn log_end(&self) -> Slot {
        self.base + self.log.len() as u64
    }

    /// The entry for `slot`, if the log holds it.
    fn entry(&self, slot: Slot) -> Option<&Entry> {
        let i = slot.checked_sub(self.base)?;
        self.log.get(usize::try_from(i).ok()?)
    }

    /// The entry for `slot`, growing the log; callers keep `slot` within
    /// the window and at or above `base`.
    fn entry_mut(&mut self, slot: Slot) -> &mut Entry {
        let i = (slot - self.base) as usize;
        if i >= self.log.len() {
            self.log.resize_with(i + 1, Entry::default);
        }
        &mut self.log[i]
    }

    /// The entries of slots `from..to` (both within the log).
    fn entries(&self, from: Slot, to: Slot) -> &[Entry] {
        &self.log[(from - self.base) as usize..(to - self.base) as usize]
    }

    /// Forget every entry below `slot` (now covered by a snapshot).
    fn drop_below(&mut self, slot: Slot) {
        let n = (slot - self.base).min(self.log.len() as u64) as usize;
        self.log.drain(..n);
        self.base = slot;
    }

    /// What the storage keeps after a compaction: the snapshot, then
    /// everything the node would otherwise need the dropped records for.
    fn checkpoint_records(&self) -> Vec<Record> {
        let mut records = Vec::with_capacity(self.log.len() + 4 + self.earlier.len());
        // The snapshot's membership before it (replay gives the snapshot
        // the membership current at its record), the later ones after.
        let snap_epoch = self.snapshot.as_ref().map_or(0, |s| s.membership.epoch);
        if let Some(s) = &self.snapshot {
            if s.membership.epoch > 0 {
                records.push(Record::Membership(s.membership.clone()));
            }
            records.push(Record::Snapshot {
                slot: s.slot,
                data: s.data.clone(),
            });
        }
        for m in self.earlier.iter().chain([&self.membership]) {
            if m.epoch > snap_epoch {
                records.push(Record::Membership(m.clone()));
            }
        }
        if self.promised != Ballot::ZERO {
            records.push(Record::Promise {
                ballot: self.promised,
            });
        }
        for (i, e) in self.log.iter().enumerate() {
            let slot = self.base + i as u64;
            if e.chosen {
                records.push(Record::Chosen {
                    slot,
                    batch: e.batch.clone(),
                });
            } else if e.ballot != Ballot::ZERO {
                records.push(Record::Accept {
                    slot,
                    ballot: e.ballot,
                    batch: e.batch.clone(),
                });
            }
        }
        records.push(Record::Commit {
            commit: self.commit,
        });
        records
    }

    /// Make `slot` and `data` the snapshot, drop the log below it and
    /// rewrite the storage as a checkpoint: in the background for the
    /// node's own snapshot (`own`: the records imply it), at once for one
    /// installed from a peer (replaying the old records would not rebuild
    /// it, and later commit records would count on it).
    fn take_snapshot(&mut self, slot: Slot, data: SnapshotData, own: bool) -> Result<()> {
        let membership = self.membership_at(slot).clone();
        self.earlier.retain(|m| m.epoch >= membership.epoch);
        self.drop_below(slot);
        self.snapshot = Some(Snap::new(slot, data, membership));
        if self.incoming.as_ref().is_some_and(|i| i.slot <= slot) {
            self.incoming = None;
        }
        let records = self.checkpoint_records();
        if own {
            self.storage.compact_in_background(records)?;
        } else {
            self.storage.compact(records)?;
        }
        self.commit_persisted = self.commit;
        Ok(())
    }

    fn in_window(&self, slot: Slot) -> bool {
        slot < self.commit.saturating_add(self.window)
    }

    /// Accept `batch` for `slot` in `ballot`, durably.
    fn accept_local(&mut self, slot: Slot, ballot: Ballot, batch: Batch) -> Result<()> {
        // Move the batch through the record instead of cloning it.
        let record = Record::Accept {
            slot,
            ballot,
            batch,
        };
        self.persist(&record)?;
        if let Record::Accept { batch, .. } = record {
            let e = self.entry_mut(slot);
            e.ballot = ballot;
            if !e.chosen {
                e.batch = batch;
            }
        }
        Ok(())
    }

    fn raise_promise(&mut self, b: Ballot) -> Result<()> {
        if b > self.promised {
            self.promised = b;
            self.storage.append_owned(Record::Promise { ballot: b })?;
            self.records += 1;
        }
        Ok(())
    }

    /// Deliver every chosen slot from the commit index on, in order; a
    /// delivered membership change begins the next epoch.
    fn advance_commit(&mut self) -> Result<()> {
        while let Some(e) = self.entry(self.commit) {
            if !e.chosen {
                break;
            }
            let slot = self.commit;
            let change = parse_change(&e.batch);
            let batch = if change.is_some() {
                Batch::new() // the application sees a no-op
            } else {
                e.batch.clone()
            };
            self.decided.push(Output::Decided { slot, batch });
            self.commit += 1;
            if self.role == Role::Leader {
                self.inflight.pop_front();
            }
            if let Some((voters, learners)) = change {
                if slot >= self.membership.start {
                    self.enter_epoch(slot, voters, learners)?;
                } else if let Some(m) = self.earlier.iter().find(|m| m.start == slot + 1) {
                    // Replayed after a restart: the record set it already.
                    self.decided.push(Output::MembershipChanged(m.clone()));
                } else if self.membership.start == slot + 1 {
                    let m = self.membership.clone();
                    self.decided.push(Output::MembershipChanged(m));
                }
            }
        }
        if self.next_slot < self.commit {
            self.next_slot = self.commit;
        }
        self.known_commit = self.known_commit.max(self.commit);
        Ok(())
    }

    /// The change in `slot` was delivered: the epoch ends there. Values
    /// held after it are void; the old epoch's replicas hear that `slot`
    /// is chosen (from its leader), then the new epoch elects a leader.
    fn enter_epoch(
        &mut self,
        slot: Slot,
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    ) -> Result<()> {
        let next = self.membership.next(slot, voters, learners);
        let was_leader = self.role == Role::Leader;
        let old_peers: Vec<NodeId> = self.membership.peers().collect();
        let (old_ballot, commit) = (self.ballot, self.commit);
        self.log.truncate((slot + 1 - self.base) as usize);
        self.next_slot = self.commit;
        self.persist(&Record::Membership(next.clone()))?;
        if was_leader {
            // The followers learn the change is chosen from a last
            // heartbeat of the old ballot (the removed replicas too).
            self.hb_seq += 1;
            let seq = self.hb_seq;
            self.send_all(
                &old_peers,
                Message::Heartbeat {
                    ballot: old_ballot,
                    commit,
                    seq,
                },
            );
        }
        self.adopt(next);
        if was_leader && self.voter {
            // Stand at once rather than after an election timeout.
            self.election_deadline = self.now;
        }
        Ok(())
    }

    /// Make `next` (of a newer epoch) the membership: this node's role
    /// in the old epoch ends.
    fn adopt(&mut self, next: Membership) {
        if self.role != Role::Follower {
            self.become_follower();
        }
        self.pending_change = None;
        self.change_slot = None;
        let old = std::mem::replace(&mut self.membership, next);
        self.earlier.push(old);
        self.refresh_positions();
        // No leader of the new epoch yet: pre-votes may be granted, and no
        // old leader's lease binds (the leader that got the change chosen
        // gave up its lease when it delivered it, before anyone else).
        self.leader_heard_at = None;
        self.lease_promise_to = None;
        self.lease_promise_until = 0;
        self.set_leader(None, self.membership.ballot_floor());
        self.reset_election_timer();
        self.decided
            .push(Output::MembershipChanged(self.membership.clone()));
    }

    fn set_leader(&mut self, leader: Option<NodeId>, ballot: Ballot) {
        if self.leader != leader || (leader.is_some() && self.leader_ballot != ballot) {
            self.leader = leader;
            self.leader_ballot = ballot;
            self.leader_changes
                .push(Output::LeaderChanged { leader, ballot });
        }
        if let Some(l) = leader
            && l != self.config.id
            && !self.forward.is_empty()
        {
            let commands = std::mem::take(&mut self.forward);
            self.send_forward(l, commands);
        }
    }

    fn become_follower(&mut self) {
        self.transfer = None;
        // A change this node proposed may or may not be chosen; a later
        // leader (this one again included) finds it among the accepted
        // values if it matters.
        self.pending_change = None;
        self.change_slot = None;
        if self.role == Role::Leader {
            // Queued commands go to the next leader.
            let queued: Vec<Command> = self.queue.drain(..).collect();
            let room = MAX_PENDING.saturating_sub(self.forward.len());
            self.forward.extend(queued.into_iter().take(room));
            self.inflight.clear();
            self.hb_sent.clear();
            self.lease_until = 0;
            for r in self.reads.drain(..) {
                self.decided.push(Output::ReadIndex {
                    id: r.id,
                    ready: false,
                });
            }
        }
        self.role = Role::Follower;
        self.election = None;
        self.prevote = None;
        self.reset_election_timer();
    }

    /// `b` (above or at our promise) is a leader's ballot we heard from.
    fn follow(&mut self, b: Ballot) {
        if self.role != Role::Follower {
            self.become_follower();
        }
        self.set_leader(Some(b.node), b);
        self.prevote = None;
        self.leader_heard_at = Some(self.now);
        self.reset_election_timer();
    }

    /// Whether a promise to `candidate` must be refused for a lease.
    fn lease_blocks(&self, candidate: NodeId) -> bool {
        self.now < self.restart_block_until
            || (self.now < self.lease_promise_until
                && self.lease_promise_to.is_some_and(|l| l != candidate))
    }

    fn lease_block_end(&self) -> u64 {
        let mut end = self.restart_block_until;
        if self.lease_promise_to.is_some_and(|l| l != self.config.id) {
            end = end.max(self.lease_promise_until);
        }
        end
    }

    fn maybe_catch_up(&mut self, target: NodeId) {
        if self.commit < self.known_commit
            && self.now >= self.catchup_due
            && target != self.config.id
        {
            let message = match &self.incoming {
                // Resume the install where it stands.
                Some(i) => Message::SnapshotRequest {
                    slot: i.slot,
                    offset: i.data.len() as u64,
                },
                None => Message::CatchUpRequest {
                    first_slot: self.commit,
                },
            };
            self.send(target, message);
            self.catchup_due = self.now.saturating_add(self.config.heartbeat_interval);
        }
    }

    // ------------------------------------------------------------ events

    fn on_propose(&mut self, command: Command) -> Result<()> {
        refuse_reserved(&command)?;
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                self.queue.push_back(command);
                self.flush()
            }
            (_, Some(l)) if l != self.config.id => {
                self.send_forward(l, vec![command]);
                Ok(())
            }
            _ => {
                if self.forward.len() >= MAX_PENDING {
                    return Err(Error::NotLeader { leader: None });
                }
                self.forward.push(command);
                Ok(())
            }
        }
    }

    fn on_compact(&mut self, slot: Slot, data: Vec<u8>) -> Result<()> {
        if slot > self.commit {
            return Err(Error::invalid(format!(
                "compact: slot {slot} is not decided yet (the commit index is {})",
                self.commit
            )));
        }
        if slot <= self.base {
            return Err(Error::invalid(format!(
                "compact: the log already starts at slot {} (a snapshot at {slot} is not newer)",
                self.base
            )));
        }
        if data.len() as u64 > MAX_SNAPSHOT_BYTES {
            return Err(Error::invalid(format!(
                "compact: a snapshot of {} bytes is larger than the {MAX_SNAPSHOT_BYTES} supported",
                data.len()
            )));
        }
        self.take_snapshot(slot, std::sync::Arc::new(data), true)
    }

    fn on_propose_all(&mut self, commands: Vec<Command>) -> Result<()> {
        for c in &commands {
            refuse_reserved(c)?;
        }
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                self.queue.extend(commands);
                self.flush()
            }
            (_, Some(l)) if l != self.config.id => {
                if !commands.is_empty() {
                    self.send_forward(l, commands);
                }
                Ok(())
            }
            _ => {
                if self.forward.len() + commands.len() > MAX_PENDING {
                    return Err(Error::NotLeader { leader: None });
                }
                self.forward.extend(commands);
                Ok(())
            }
        }
    }

    fn on_tick(&mut self) -> Result<()> {
        let now = self.now;
        match self.role {
            Role::Leader => {
                if now >= self.quorum_check_at {
                    if (self.quorum_heard.count_ones() as usize) < self.majority {
                        // CheckQuorum: cut off from a majority for a whole
                        // election timeout; let the others elect.
                        let b = self.ballot;
                        self.become_follower();
                        self.set_leader(None, b);
                        return Ok(());
                    }
                    self.quorum_heard = 1u64 << self.me;
                    self.quorum_check_at = now.saturating_add(self.config.election_timeout);
                }
                if now >= self.next_heartbeat {
                    self.send_heartbeat();
                    self.retransmit();
                }
                self.maybe_hand_off()?;
                self.flush()
            }
            Role::Follower | Role::Candidate => {
                if now >= self.election_deadline {
                    self.start_prevote()?;
                } else if let Some(l) = self.leader {
                    self.maybe_catch_up(l);
                }
                Ok(())
            }
        }
    }

    fn on_message(&mut self, from: NodeId, message: Message) -> Result<()> {
        if from == self.config.id {
            return Ok(());
        }
        if !self.membership.contains(from) {
            return self.on_stranger(from, message);
        }
        self.note_ballots(&message);
        match message {
            Message::Prepare { ballot, first_slot } => self.on_prepare(from, ballot, first_slot),
            Message::Promise {
                ballot,
                accepted,
                commit,
            } => self.on_promise(from, ballot, accepted, commit),
            Message::Accept {
                ballot,
                first_slot,
                batches,
                commit,
            } => self.on_accept(from, ballot, first_slot, batches, commit),
            Message::Accepted {
                ballot,
                first_slot,
                count,
            } => self.on_accepted(from, ballot, first_slot, count),
            Message::Nack { ballot, promised } => {
                self.on_nack(from, ballot, promised);
                Ok(())
            }
            Message::Heartbeat {
                ballot,
                commit,
                seq,
            } => self.on_heartbeat(from, ballot, commit, seq),
            Message::HeartbeatAck { ballot, seq } => {
                self.on_heartbeat_ack(from, ballot, seq);
                self.maybe_hand_off()
            }
            Message::Forward { seq, commands } => self.on_forward(from, seq, commands),
            Message::CatchUpRequest { first_slot } => {
                self.on_catch_up_request(from, first_slot);
                Ok(())
            }
            Message::CatchUp {
                first_slot,
                batches,
                commit,
            } => self.on_catch_up(from, first_slot, batches, commit),
            Message::PreVote { ballot } => {
                self.on_prevote(from, ballot);
                Ok(())
            }
            Message::PreVoteReply {
                ballot, granted, ..
            } => self.on_prevote_reply(from, ballot, granted),
            Message::SnapshotChunk {
                cluster,
                slot,
                total,
                checksum,
                offset,
                data,
            } => {
                if cluster != self.config.cluster_id {
                    return Ok(()); // another cluster's state: never installed
                }
                self.on_snapshot_chunk(from, slot, total, checksum, offset, data)
            }
            Message::SnapshotRequest { slot, offset } => {
                self.on_snapshot_request(from, slot, offset);
                Ok(())
            }
            Message::Handoff { ballot, to } => self.on_handoff(from, ballot, to),
        }
    }

    /// A message from a replica outside this node's membership. Two cases
    /// are served, everything else is ignored: a replica removed by a
    /// change it has not delivered yet may fetch that change (then it
    /// knows it is out); and a replica of a newer epoch (which this node
    /// has not reached, so it does not know its members) is where this
    /// node catches up from.
    fn on_stranger(&mut self, from: NodeId, message: Message) -> Result<()> {
        let former = self.earlier.iter().any(|m| m.contains(from));
        let asked = self.catchup_peer == Some(from);
        match message {
            Message::CatchUpRequest { first_slot } if former => {
                self.on_catch_up_request(from, first_slot);
            }
            Message::SnapshotRequest { slot, offset } if former => {
                self.on_snapshot_request(from, slot, offset);
            }
            Message::CatchUp {
                first_slot,
                batches,
                commit,
            } if asked => return self.on_catch_up(from, first_slot, batches, commit),
            Message::SnapshotChunk {
                cluster,
                slot,
                total,
                checksum,
                offset,
                data,
            } if asked && cluster == self.config.cluster_id => {
                return self.on_snapshot_chunk(from, slot, total, checksum, offset, data);
            }
            Message::Prepare { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Heartbeat { ballot, .. }
            | Message::PreVote { ballot }
                if ballot.node == from
                    && ballot.epoch() > self.membership.epoch
                    && ballot.round <= MAX_ROUND =>
            {
                self.behind_epoch(from);
            }
            _ => {}
        }
        Ok(())
    }

    /// Remembers the highest plausible ballot any message names, refused
    /// prepares included, so this node's next election outbids it: a
    /// candidate that picked a ballot below one it had just refused would
    /// win and at once be deposed by that ballot's holder, again and again.
    fn note_ballots(&mut self, message: &Message) {
        let (a, b) = match message {
            Message::Prepare { ballot, .. }
            | Message::Promise { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Accepted { ballot, .. }
            | Message::Heartbeat { ballot, .. }
            | Message::HeartbeatAck { ballot, .. }
            | Message::Handoff { ballot, .. } => (*ballot, Ballot::ZERO),
            Message::Nack { ballot, promised } => (*ballot, *promised),
            // A pre-vote's ballot is nobody's promise yet.
            Message::PreVoteReply { promised, .. } => (*promised, Ballot::ZERO),
            Message::PreVote { .. } => return,
            Message::Forward { .. }
            | Message::CatchUpRequest { .. }
            | Message::CatchUp { .. }
            | Message::SnapshotChunk { .. }
            | Message::SnapshotRequest { .. } => {
                return;
            }
        };
        for x in [a, b] {
            if x > self.highest_seen && self.valid_ballot(x) {
                self.highest_seen = x;
            }
        }
    }

    fn on_prepare(&mut self, from: NodeId, b: Ballot, first_slot: Slot) -> Result<()> {
        if self.other_epoch(from, b) || !self.voter || !self.valid_ballot(b) || b.node != from {
            return Ok(());
        }
        if first_slot < self.base {
            // The candidate lacks slots this node compacted away, so it
            // could not learn what this acceptor accepted there: no promise
            // (which is always safe), but the snapshot it needs to catch up.
            self.send_snapshot_chunk(from, 0);
            return Ok(());
        }
        if b < self.promised || self.lease_blocks(b.node) {
            let promised = self.promised;
            self.send(
                from,
                Message::Nack {
                    ballot: b,
                    promised,
                },
            );
            return Ok(());
        }
        self.raise_promise(b)?;
        if self.role != Role::Follower && self.ballot < b {
            self.become_follower();
        }
        if self.leader.is_some_and(|l| l != b.node) {
            self.set_leader(None, b);
        }
        self.reset_election_timer();
        let commit = self.commit;
        let start = first_slot.min(self.log_end());
        let accepted = self
            .entries(start, self.log_end())
            .iter()
            .enumerate()
            .filter(|(_, e)| e.present())
            .map(|(i, e)| {
                let slot = start + i as u64;
                AcceptedEntry {
                    slot,
                    ballot: e.ballot,
                    batch: e.batch.clone(),
                    chosen: e.chosen || slot < commit,
                }
            })
            .collect();
        self.send(
            from,
            Message::Promise {
                ballot: b,
                accepted,
                commit,
            },
        );
        Ok(())
    }

    fn on_promise(
        &mut self,
        from: NodeId,
        b: Ballot,
        accepted: Vec<AcceptedEntry>,
        their_commit: Slot,
    ) -> Result<()> {
        if their_commit > self.known_commit {
            self.known_commit = their_commit;
            self.maybe_catch_up(from);
        }
        if self.role != Role::Candidate || b != self.ballot {
            return Ok(());
        }
        let Some(p) = self.position(from) else {
            return Ok(()); // not a voter: its promise does not count
        };
        let bit = 1u64 << p;
        let commit = self.commit;
        let window_end = self.commit.saturating_add(self.window);
        if accepted.iter().any(|e| e.slot >= window_end) {
            // Implausible (or this node is too far behind to lead): ignore.
            return Ok(());
        }
        let Some(election) = self.election.as_mut() else {
            return Ok(());
        };
        if election.promises & bit != 0 {
            return Ok(());
        }
        election.promises |= bit;
        for e in accepted {
            if e.slot < commit {
                continue;
            }
            match election.merged.get_mut(&e.slot) {
                None => {
                    election
                        .merged
                        .insert(e.slot, (e.ballot, e.batch, e.chosen));
                }
                Some(have) => {
                    if !have.2 && (e.chosen || e.ballot > have.0) {
                        *have = (e.ballot, e.batch, e.chosen);
                    }
                }
            }
        }
        if election.promises.count_ones() as usize >= self.majority {
            self.become_leader()?;
        }
        Ok(())
    }

    /// The election timer ran out: first ask the others whether they
    /// would promise (pre-vote), raising nothing, so a node that cannot win
    /// (cut off, or the others still hear a leader) never bumps its ballot
    /// and cannot depose a healthy leader when it returns.
    fn start_prevote(&mut self) -> Result<()> {
        if !self.voter {
            // A learner (or a replica outside the membership) never
            // stands; having heard no leader for a while it asks its peers
            // for what it missed instead (say, the change that made it a
            // voter, when the old leader's last heartbeat was lost).
            self.reset_election_timer();
            let first_slot = self.commit;
            let peers: Vec<NodeId> = self.membership.peers().collect();
            self.send_all(&peers, Message::CatchUpRequest { first_slot });
            return Ok(());
        }
        let block = self.lease_block_end();
        if self.now < block {
            // A lease (or a restart) forbids helping any election yet.
            let jitter = self.rng.below(self.config.heartbeat_interval);
            self.election_deadline = block.saturating_add(jitter);
            return Ok(());
        }
        if self.majority == 1 {
            return self.start_election();
        }
        let base = self.promised.max(self.highest_seen).max(self.ballot);
        if !self.can_outbid(base) {
            self.reset_election_timer();
            return Ok(());
        }
        let b = base.next_for(self.config.id);
        self.prevote = Some((b, 1u64 << self.me));
        self.reset_election_timer();
        self.broadcast_voters(Message::PreVote { ballot: b });
        Ok(())
    }

    /// Whether a ballot above `base` is left in this epoch.
    fn can_outbid(&self, base: Ballot) -> bool {
        base.round < MAX_ROUND
            && base.epoch() == self.membership.epoch
            && (base.round & ROUND_MASK) < ROUND_MASK - 2
    }

    /// Whether this node heard a leader within the (minimum) election
    /// timeout, or leads itself: then it will not help elect another.
    fn hears_leader(&self) -> bool {
        self.role == Role::Leader
            || self.leader_heard_at.is_some_and(|t| {
                self.leader.is_some() && self.now < t.saturating_add(self.config.election_timeout)
            })
    }

    fn on_prevote(&mut self, from: NodeId, b: Ballot) {
        if b.epoch() > self.membership.epoch && b.node == from {
            self.behind_epoch(from);
            return;
        }
        if b.epoch() < self.membership.epoch && b.node == from {
            // A voter of an ended epoch: the nack tells it to catch up.
            let promised = self.promised;
            self.send(
                from,
                Message::Nack {
                    ballot: b,
                    promised,
                },
            );
            return;
        }
        if !self.voter || !self.valid_ballot(b) || b.node != from {
            return;
        }
        let granted = b > self.promised && !self.hears_leader() && !self.lease_blocks(from);
        let promised = self.promised;
        self.send(
            from,
            Message::PreVoteReply {
                ballot: b,
                granted,
                promised,
            },
        );
    }

    fn on_prevote_reply(&mut self, from: NodeId, b: Ballot, granted: bool) -> Result<()> {
        let Some(p) = self.position(from) else {
            return Ok(());
        };
        let bit = 1u64 << p;
        let Some((asked, votes)) = self.prevote.as_mut() else {
            return Ok(());
        };
        if !granted || *asked != b || self.role == Role::Leader {
            return Ok(());
        }
        *votes |= bit;
        if votes.count_ones() as usize >= self.majority {
            self.prevote = None;
            return self.start_election();
        }
        Ok(())
    }

    fn start_election(&mut self) -> Result<()> {
        let block = self.lease_block_end();
        if self.now < block {
            // A lease (or a restart) forbids helping any election yet.
            let jitter = self.rng.below(self.config.heartbeat_interval);
            self.election_deadline = block.saturating_add(jitter);
            return Ok(());
        }
        let base = self.promised.max(self.highest_seen).max(self.ballot);
        if !self.voter || !self.can_outbid(base) {
            self.reset_election_timer();
            return Ok(());
        }
        let b = base.next_for(self.config.id);
        self.raise_promise(b)?;
        self.role = Role::Candidate;
        self.ballot = b;
        self.set_leader(None, b);
        let commit = self.commit;
        let mut election = Election {
            promises: 1u64 << self.me,
            merged: BTreeMap::new(),
        };
        for (i, e) in self.entries(commit, self.log_end()).iter().enumerate() {
            if e.present() {
                election
                    .merged
                    .insert(commit + i as u64, (e.ballot, e.batch.clone(), e.chosen));
            }
        }
        self.election = Some(election);
        self.reset_election_timer();
        if self.majority == 1 {
            return self.become_leader();
        }
        self.broadcast_voters(Message::Prepare {
            ballot: b,
            first_slot: commit,
        });
        Ok(())
    }

    fn become_leader(&mut self) -> Result<()> {
        let Some(mut election) = self.election.take() else {
            return Ok(());
        };
        let b = self.ballot;
        let now = self.now;
        self.role = Role::Leader;
        let start = self.commit;
        let own_end = self
            .log
            .iter()
            .rposition(Entry::present)
            .map_or(0, |i| self.base + i as u64 + 1);
        let merged_end = election.merged.keys().next_back().map_or(0, |&s| s + 1);
        let end = start.max(own_end).max(merged_end);
        self.inflight.clear();
        self.learner_heard.clear();
        self.change_slot = None;
        let self_bit = 1u64 << self.me;
        // Re-propose every slot from the commit index on in the new ballot:
        // chosen or highest-ballot values, no-ops in the holes.
        for slot in start..end {
            let own = self.entry(slot).filter(|e| e.chosen);
            let (batch, chosen) = if let Some(e) = own {
                (e.batch.clone(), true)
            } else if let Some((_, batch, chosen)) = election.merged.remove(&slot) {
                (batch, chosen)
            } else {
                (Batch::new(), false)
            };
            if self.change_slot.is_none() && parse_change(&batch).is_some() {
                // A change found among the re-proposed slots: nothing new
                // is proposed after it until it is delivered.
                self.change_slot = Some(slot);
            }
            self.accept_local(slot, b, batch)?;
            if chosen || self.majority == 1 {
                self.entry_mut(slot).chosen = true;
            }
            self.inflight.push_back(InFlight {
                acks: self_bit,
                sent_at: now,
            });
        }
        self.next_slot = end;
        self.lease_ready_slot = end;
        self.lease_until = 0;
        self.hb_sent.clear();
        self.quorum_heard = self_bit;
        self.quorum_check_at = now.saturating_add(self.config.election_timeout);
        self.set_leader(Some(self.config.id), b);
        let mut first = start;
        while first < end {
            let last = end.min(first + ACCEPT_CHUNK);
            let batches = self
                .entries(first, last)
                .iter()
                .map(|e| e.batch.clone())
                .collect();
            let commit = self.commit;
            self.broadcast(Message::Accept {
                ballot: b,
                first_slot: first,
                batches,
                commit,
            });
            first = last;
        }
        self.send_heartbeat();
        let held = std::mem::take(&mut self.forward);
        self.queue.extend(held);
        self.advance_commit()?;
        self.flush()
    }

    /// Leader: put queued commands into new slots while the window allows
    /// (a membership change first, in a slot of its own; nothing after it
    /// until it is delivered).
    fn flush(&mut self) -> Result<()> {
        while self.role == Role::Leader && self.change_slot.is_none() && self.transfer.is_none() {
            if self.pending_change.is_some() {
                if self.next_slot - self.commit >= self.config.max_inflight as u64 {
                    break;
                }
                self.propose_change()?;
                continue;
            }
            if self.queue.is_empty() {
                break;
            }
            let b = self.ballot;
            let now = self.now;
            let first = self.next_slot;
            let self_bit = 1u64 << self.me;
            let mut batches = Vec::new();
            while !self.queue.is_empty()
                && self.next_slot - self.commit < self.config.max_inflight as u64
            {
                let n = self.config.max_batch.min(self.queue.len());
                let batch: Batch = self.queue.drain(..n).collect();
                batches.push(batch.clone());
                let slot = self.next_slot;
                self.accept_local(slot, b, batch)?;
                if self.majority == 1 {
                    self.entry_mut(slot).chosen = true;
                }
                self.inflight.push_back(InFlight {
                    acks: self_bit,
                    sent_at: now,
                });
                self.next_slot += 1;
            }
            if batches.is_empty() {
                break;
            }
            let commit = self.commit;
            self.broadcast(Message::Accept {
                ballot: b,
                first_slot: first,
                batches,
                commit,
            });
            if self.majority == 1 {
                self.advance_commit()?;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Leader: the pending membership change into the next slot.
    fn propose_change(&mut self) -> Result<()> {
        let Some(batch) = self.pending_change.take() else {
            return Ok(());
        };
        let (b, now, slot) = (self.ballot, self.now, self.next_slot);
        self.accept_local(slot, b, batch.clone())?;
        self.inflight.push_back(InFlight {
            acks: 1u64 << self.me,
            sent_at: now,
        });
        self.next_slot += 1;
        self.change_slot = Some(slot);
        let commit = self.commit;
        self.broadcast(Message::Accept {
            ballot: b,
            first_slot: slot,
            batches: vec![batch],
            commit,
        });
        if self.majority == 1 {
            self.entry_mut(slot).chosen = true;
            self.advance_commit()?;
        }
        Ok(())
    }

    fn on_transfer(&mut self, to: NodeId) -> Result<()> {
        if self.role != Role::Leader {
            let leader = self.leader.filter(|&l| l != self.config.id);
            return Err(Error::NotLeader { leader });
        }
        if to == self.config.id {
            return Err(Error::invalid(format!(
                "transfer leadership: replica {to} leads already"
            )));
        }
        if !self.membership.is_voter(to) {
            return Err(Error::invalid(format!(
                "transfer leadership: replica {to} is not a voter"
            )));
        }
        if self.change_slot.is_some() || self.pending_change.is_some() {
            return Err(Error::invalid(
                "transfer leadership: a membership change is under way",
            ));
        }
        if let Some(t) = self.transfer {
            return Err(Error::invalid(format!(
                "transfer leadership: a transfer to {} is under way",
                t.to
            )));
        }
        // A heartbeat now, carrying the commit index, for the target to
        // acknowledge.
        self.send_heartbeat();
        self.transfer = Some(Transfer {
            to,
            seq: self.hb_seq,
            until: self.now.saturating_add(self.config.election_timeout),
        });
        self.maybe_hand_off()
    }

    /// Leader: hands off once the transfer's target has caught up, or
    /// drops a transfer past its time.
    fn maybe_hand_off(&mut self) -> Result<()> {
        let Some(t) = self.transfer else {
            return Ok(());
        };
        if self.role != Role::Leader {
            self.transfer = None;
            return Ok(());
        }
        let Some(p) = self.position(t.to) else {
            self.transfer = None;
            return self.flush();
        };
        let bit = 1u64 << p;
        let heard = self.hb_sent.iter().any(|h| h.0 >= t.seq && h.2 & bit != 0);
        let caught_up = self.inflight.iter().all(|f| f.acks & bit != 0);
        if !(heard && caught_up) {
            if self.now >= t.until {
                self.transfer = None; // it did not catch up in time
                return self.flush();
            }
            return Ok(());
        }
        let b = self.ballot;
        self.transfer = None;
        // Give up the lease before anyone is released from it.
        self.lease_until = 0;
        self.become_follower();
        self.set_leader(None, b);
        self.lease_promise_to = None;
        self.lease_promise_until = 0;
        self.broadcast_voters(Message::Handoff {
            ballot: b,
            to: t.to,
        });
        Ok(())
    }

    /// A leader hands its leadership over: release the lease promise
    /// given to it; stand at once if this node is the target.
    fn on_handoff(&mut self, from: NodeId, b: Ballot, to: NodeId) -> Result<()> {
        if self.other_epoch(from, b) || !self.valid_ballot(b) || b.node != from {
            return Ok(());
        }
        if b < self.promised || self.role != Role::Follower {
            return Ok(()); // stale: another ballot has been promised since
        }
        if self.lease_promise_to == Some(from) {
            self.lease_promise_to = None;
            self.lease_promise_until = 0;
        }
        if self.leader == Some(from) {
            self.set_leader(None, b);
        }
        self.leader_heard_at = None;
        if to == self.config.id && self.voter {
            return self.start_election();
        }
        Ok(())
    }

    fn on_change_membership(&mut self, change: MembershipChange) -> Result<()> {
        if self.role != Role::Leader {
            let leader = self.leader.filter(|&l| l != self.config.id);
            return Err(Error::NotLeader { leader });
        }
        if let Some(slot) = self.change_slot {
            return Err(Error::invalid(format!(
                "membership change: another change (slot {slot}) is under way; wait for its MembershipChanged"
            )));
        }
        if self.pending_change.is_some() {
            return Err(Error::invalid(
                "membership change: another change is waiting for a slot",
            ));
        }
        if self.transfer.is_some() {
            return Err(Error::invalid(
                "membership change: a leadership transfer is under way",
            ));
        }
        if (self.membership.epoch + 1) << membership::EPOCH_SHIFT > MAX_ROUND {
            return Err(Error::invalid(
                "membership change: the epoch counter is exhausted",
            ));
        }
        let (voters, learners) = self.membership.apply(change)?;
        if let MembershipChange::Promote(id) | MembershipChange::Replace { new: id, .. } = change {
            // A vote for a learner that is down would count against the
            // new majority from the start.
            let heard = self.learner_heard.get(&id).copied();
            if heard.is_none_or(|t| self.now.saturating_sub(t) > self.config.election_timeout) {
                return Err(Error::invalid(format!(
                    "membership change: learner {id} has not answered this leader within the \
                     election timeout; start it (with join) and let it catch up first"
                )));
            }
        }
        self.pending_change = Some(change_value(&voters, &learners));
        self.flush()
    }

    fn send_heartbeat(&mut self) {
        let now = self.now;
        self.hb_seq += 1;
        let seq = self.hb_seq;
        self.hb_sent.push_back((seq, now, 1u64 << self.me));
        while self.hb_sent.len() > HEARTBEAT_HISTORY {
            self.hb_sent.pop_front();
        }
        if self.config.lease_duration > 0 {
            // The leader's own ack: it too will not help elect another.
            self.lease_promise_to = Some(self.config.id);
            self.lease_promise_until = now.saturating_add(self.config.lease_duration);
            if self.majority == 1 {
                self.extend_lease(now);
            }
        }
        self.next_heartbeat = now.saturating_add(self.config.heartbeat_interval);
        let (ballot, commit) = (self.ballot, self.commit);
        self.broadcast(Message::Heartbeat {
            ballot,
            commit,
            seq,
        });
    }

    fn extend_lease(&mut self, sent_at: u64) {
        let until = sent_at
            .saturating_add(self.config.lease_duration)
            .saturating_sub(self.config.max_clock_drift);
        self.lease_until = self.lease_until.max(until);
    }

    /// Leader: resend accepts unchosen for two heartbeat intervals to the
    /// followers that have not acknowledged them.
    fn retransmit(&mut self) {
        let rto = 2 * self.config.heartbeat_interval;
        let now = self.now;
        let mut due: Vec<(Slot, u64)> = Vec::new();
        for (i, f) in self.inflight.iter_mut().enumerate() {
            let slot = self.commit + i as u64;
            if self.log[(slot - self.base) as usize].chosen || now.saturating_sub(f.sent_at) < rto {
                continue;
            }
            f.sent_at = now;
            due.push((slot, f.acks));
        }
        if due.is_empty() {
            return;
        }
        let (b, commit) = (self.ballot, self.commit);
        for p in 0..self.membership.voters.len() {
            if p == self.me {
                continue;
            }
            let to = self.membership.voters[p];
            let mut run: Option<(Slot, Vec<Batch>)> = None;
            for &(slot, acks) in &due {
                if acks & (1u64 << p) != 0 {
                    continue;
                }
                let batch = self.log[(slot - self.base) as usize].batch.clone();
                match &mut run {
                    Some((first, batches)) if *first + batches.len() as u64 == slot => {
                        batches.push(batch)
                    }
                    _ => {
                        if let Some((first_slot, batches)) = run.replace((slot, vec![batch])) {
                            self.send(
                                to,
                                Message::Accept {
                                    ballot: b,
                                    first_slot,
                                    batches,
                                    commit,
                                },
                            );
                        }
                    }
                }
            }
            if let Some((first_slot, batches)) = run {
                self.send(
                    to,
                    Message::Accept {
                        ballot: b,
                        first_slot,
                        batches,
                        commit,
                    },
                );
            }
        }
    }

    fn on_accept(
        &mut self,
        from: NodeId,
        b: Ballot,
        first_slot: Slot,
        batches: Vec<Batch>,
        leader_commit: Slot,
    ) -> Result<()> {
        if !self.admit_leader(from, b)? {
            return Ok(());
        }
        let mut count = 0u64;
        for (i, batch) in batches.into_iter().enumerate() {
            let Some(slot) = first_slot.checked_add(i as u64) else {
                break;
            };
            if !self.in_window(slot) {
                break;
            }
            if slot >= self.commit {
                let known = self.entry(slot).is_some_and(|e| e.chosen || e.ballot == b);
                if !known {
                    self.accept_local(slot, b, batch)?;
                }
            }
            count += 1;
        }
        if count > 0 {
            self.send(
                from,
                Message::Accepted {
                    ballot: b,
                    first_slot,
                    count,
                },
            );
        }
        self.learn_commit(from, b, leader_commit)
    }

    /// The leader of ballot `b` says every slot below `leader_commit` is
    /// chosen: the ones this node accepted in `b` hold the chosen value.
    fn learn_commit(&mut self, from: NodeId, b: Ballot, leader_commit: Slot) -> Result<()> {
        self.known_commit = self.known_commit.max(leader_commit);
        let upto = leader_commit.min(self.log_end());
        for slot in self.commit..upto {
            let e = &mut self.log[(slot - self.base) as usize];
            if e.ballot == b {
                e.chosen = true;
            }
        }
        self.advance_commit()?;
        self.maybe_catch_up(from);
        Ok(())
    }

    fn on_accepted(&mut self, from: NodeId, b: Ballot, first_slot: Slot, count: u64) -> Result<()> {
        if self.role != Role::Leader || b != self.ballot {
            return Ok(());
        }
        let Some(p) = self.position(from) else {
            // A learner's ack does not count, but shows it is there.
            self.learner_heard.insert(from, self.now);
            return Ok(());
        };
        let bit = 1u64 << p;
        self.quorum_heard |= bit;
        let start = first_slot.max(self.commit);
        let end = first_slot.saturating_add(count).min(self.next_slot);
        for slot in start..end {
            let f = &mut self.inflight[(slot - self.commit) as usize];
            f.acks |= bit;
            if f.acks.count_ones() as usize >= self.majority {
                self.log[(slot - self.base) as usize].chosen = true;
            }
        }
        self.advance_commit()?;
        self.maybe_hand_off()?;
        self.flush()
    }

    fn on_nack(&mut self, from: NodeId, b: Ballot, promised: Ballot) {
        if promised.epoch() > self.membership.epoch && promised.round <= MAX_ROUND {
            // A replica of a newer epoch refused: this node missed a change.
            self.behind_epoch(from);
            return;
        }
        if !self.valid_ballot(promised) {
            return;
        }
        self.highest_seen = self.highest_seen.max(promised);
        if self.role != Role::Follower && b == self.ballot && promised > self.ballot {
            self.become_follower();
            self.set_leader(None, promised);
        }
    }

    /// A ballot `from` sent of another epoch: an older one is refused
    /// with this node's promise (which tells the sender its epoch ended);
    /// a newer one means this node missed a change, so it catches up. True
    /// when `b` is of another epoch (the message is then done with).
    fn other_epoch(&mut self, from: NodeId, b: Ballot) -> bool {
        let epoch = self.membership.epoch;
        if b.epoch() == epoch || b.node != from {
            return false;
        }
        if b.epoch() < epoch {
            let promised = self.promised;
            self.send(
                from,
                Message::Nack {
                    ballot: b,
                    promised,
                },
            );
        } else {
            self.behind_epoch(from);
        }
        true
    }

    /// The common gate of a leader's Accept and Heartbeat: ignore an
    /// implausible or spoofed ballot, nack one below our promise, otherwise
    /// promise it and follow its leader. True when the message is admitted.
    fn admit_leader(&mut self, from: NodeId, b: Ballot) -> Result<bool> {
        if self.other_epoch(from, b) || !self.valid_ballot(b) || b.node != from {
            return Ok(false);
        }
        if b < self.promised {
            let promised = self.promised;
            self.send(
                from,
                Message::Nack {
                    ballot: b,
                    promised,
                },
            );
            return Ok(false);
        }
        self.raise_promise(b)?;
        self.follow(b);
        Ok(true)
    }

    fn on_heartbeat(&mut self, from: NodeId, b: Ballot, commit: Slot, seq: u64) -> Result<()> {
        if !self.admit_leader(from, b)? {
            return Ok(());
        }
        if self.config.lease_duration > 0 {
            self.lease_promise_to = Some(b.node);
            self.lease_promise_until = self.now.saturating_add(self.config.lease_duration);
        }
        self.send(from, Message::HeartbeatAck { ballot: b, seq });
        self.learn_commit(from, b, commit)
    }

    fn on_heartbeat_ack(&mut self, from: NodeId, b: Ballot, seq: u64) {
        if self.role != Role::Leader || b != self.ballot {
            return;
        }
        let Some(p) = self.position(from) else {
            self.learner_heard.insert(from, self.now);
            return;
        };
        let bit = 1u64 << p;
        self.quorum_heard |= bit;
        let Some(h) = self.hb_sent.iter_mut().find(|h| h.0 == seq) else {
            return;
        };
        h.2 |= bit;
        if h.2.count_ones() as usize >= self.majority {
            let sent_at = h.1;
            if self.config.lease_duration > 0 {
                self.extend_lease(sent_at);
            }
            // Still the leader after every read that this heartbeat follows.
            for r in self.reads.iter_mut().filter(|r| r.seq <= seq) {
                r.confirmed = true;
            }
        }
    }

    fn on_read_index(&mut self, id: u64) -> Result<()> {
        if self.role != Role::Leader {
            let leader = self.leader.filter(|&l| l != self.config.id);
            return Err(Error::NotLeader { leader });
        }
        if self.reads.len() >= MAX_PENDING {
            return Err(Error::LimitExceeded(format!(
                "{MAX_PENDING} reads are waiting for their read index"
            )));
        }
        // Every write this leader's state must include: whatever was
        // committed, and the slots it re-proposed when elected.
        let index = self.commit.max(self.lease_ready_slot);
        let seq = if self.majority == 1 {
            0
        } else if let Some(seq) = self.call_heartbeat {
            seq
        } else {
            self.send_heartbeat();
            self.call_heartbeat = Some(self.hb_seq);
            self.hb_seq
        };
        self.reads.push_back(PendingRead {
            id,
            index,
            seq,
            confirmed: self.majority == 1,
        });
        Ok(())
    }

    /// Hands out the reads that are confirmed and whose index is delivered.
    fn release_reads(&mut self) {
        while let Some(r) = self.reads.front() {
            if !(r.confirmed && self.commit >= r.index) {
                break;
            }
            let id = r.id;
            self.reads.pop_front();
            self.decided.push(Output::ReadIndex { id, ready: true });
        }
    }

    fn on_forward(&mut self, from: NodeId, seq: u64, commands: Vec<Command>) -> Result<()> {
        match self.forward_seen.get_mut(&from) {
            Some(w) => {
                if !w.accept(seq) {
                    return Ok(()); // a duplicate: its commands were taken already
                }
            }
            None => {
                self.forward_seen.insert(from, ForwardWindow::new(seq));
            }
        }
        // A command that would read as a membership change is never
        // proposed (`propose` refuses it; a forward of one is dropped).
        let commands: Vec<Command> = commands
            .into_iter()
            .filter(|c| !membership::is_reserved(c))
            .collect();
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                let room = MAX_PENDING.saturating_sub(self.queue.len());
                self.queue.extend(commands.into_iter().take(room));
                self.flush()
            }
            (_, Some(l)) if l != from && l != self.config.id => {
                self.send_forward(l, commands);
                Ok(())
            }
            _ => {
                let room = MAX_PENDING.saturating_sub(self.forward.len());
                self.forward.extend(commands.into_iter().take(room));
                Ok(())
            }
        }
    }

    fn on_catch_up_request(&mut self, from: NodeId, first_slot: Slot) {
        if first_slot >= self.commit {
            return;
        }
        if first_slot < self.base {
            // Those slots are compacted: the asker installs the snapshot.
            self.send_snapshot_chunk(from, 0);
            return;
        }
        let end = self.commit.min(first_slot.saturating_add(CATCHUP_CHUNK));
        let batches = self
            .entries(first_slot, end)
            .iter()
            .map(|e| e.batch.clone())
            .collect();
        let commit = self.commit;
        self.send(
            from,
            Message::CatchUp {
                first_slot,
                batches,
                commit,
            },
        );
    }

    fn on_catch_up(
        &mut self,
        from: NodeId,
        first_slot: Slot,
        batches: Vec<Batch>,
        their_commit: Slot,
    ) -> Result<()> {
        if self.role == Role::Leader {
            // A leader's commit index is its own to advance.
            return Ok(());
        }
        for (i, batch) in batches.into_iter().enumerate() {
            let Some(slot) = first_slot.checked_add(i as u64) else {
                break;
            };
            if slot < self.commit {
                continue;
            }
            if !self.in_window(slot) {
                break;
            }
            if self.entry(slot).is_some_and(|e| e.chosen) {
                continue;
            }
            let record = Record::Chosen { slot, batch };
            self.persist(&record)?;
            if let Record::Chosen { batch, .. } = record {
                let e = self.entry_mut(slot);
                e.batch = batch;
                e.chosen = true;
            }
        }
        self.advance_commit()?;
        self.known_commit = self.known_commit.max(their_commit);
        if self.commit < their_commit {
            // More to fetch: ask again at once (replies drive this loop).
            self.catchup_due = self.now;
            self.maybe_catch_up(from);
        }
        Ok(())
    }
}

impl<S: Storage> Node<S> {
    // ------------------------------------------------------- snapshots

    /// Sends `to` the part of this node's snapshot from `offset` (from 0
    /// when `offset` is past its end).
    fn send_snapshot_chunk(&mut self, to: NodeId, offset: u64) {
        let Some(snap) = &self.snapshot else {
            return;
        };
        let total = snap.image_len();
        let offset = if offset <= total { offset } else { 0 };
        let end = total.min(offset + SNAPSHOT_CHUNK as u64);
        let message = Message::SnapshotChunk {
            cluster: self.config.cluster_id,
            slot: snap.slot,
            total,
            checksum: snap.checksum,
            offset,
            data: snap.image(offset, end),
        };
        self.send(to, message);
    }

    fn on_snapshot_request(&mut self, from: NodeId, slot: Slot, offset: u64) {
        match &self.snapshot {
            Some(s) if s.slot == slot => self.send_snapshot_chunk(from, offset),
            // A newer snapshot replaced the one asked for: start it over.
            Some(_) => self.send_snapshot_chunk(from, 0),
            None => {}
        }
    }

    fn on_snapshot_chunk(
        &mut self,
        from: NodeId,
        slot: Slot,
        total: u64,
        checksum: u32,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<()> {
        if self.role == Role::Leader || slot <= self.commit {
            // A leader's state is its own; an older snapshot is no news.
            return Ok(());
        }
        if total > MAX_SNAPSHOT_BYTES + 4096 || offset.saturating_add(data.len() as u64) > total {
            return Ok(()); // implausible
        }
        self.known_commit = self.known_commit.max(slot);
        let same = self
            .incoming
            .as_ref()
            .is_some_and(|i| i.slot == slot && i.total == total && i.checksum == checksum);
        if !same {
            if self.incoming.as_ref().is_some_and(|i| i.slot > slot) {
                return Ok(()); // a newer install is under way
            }
            if offset != 0 {
                self.send(from, Message::SnapshotRequest { slot, offset: 0 });
                return Ok(());
            }
            self.incoming = Some(Incoming {
                slot,
                total,
                checksum,
                data: Vec::new(),
            });
        }
        let Some(inc) = self.incoming.as_mut() else {
            return Ok(());
        };
        if offset != inc.data.len() as u64 {
            return Ok(()); // a duplicate or a stray: the next request resumes
        }
        inc.data.extend_from_slice(&data);
        let held = inc.data.len() as u64;
        if held < total {
            self.send(from, Message::SnapshotRequest { slot, offset: held });
            // The reply drives the next request; the timer only resumes a
            // lost one.
            self.catchup_due = self.now.saturating_add(2 * self.config.heartbeat_interval);
            return Ok(());
        }
        let Some(inc) = self.incoming.take() else {
            return Ok(());
        };
        let image = (crc32fast::hash(&inc.data) == inc.checksum)
            .then(|| split_image(inc.data))
            .flatten()
            .filter(|(_, m)| m.epoch >= self.membership.epoch && m.start <= slot);
        let Some((data, membership)) = image else {
            // Damaged in transit (or a lying sender): start over later.
            self.catchup_due = self.now;
            return Ok(());
        };
        self.install(slot, std::sync::Arc::new(data), membership)?;
        if self.commit < self.known_commit {
            self.catchup_due = self.now;
            self.maybe_catch_up(from);
        }
        Ok(())
    }

    /// Install a peer's snapshot: slots below `slot` are decided and in
    /// `data`. Entries from `slot` on stay: they are this acceptor's
    /// accepted values, which its promises must keep reporting.
    ///
    /// A snapshot of a newer epoch (`membership`) ends this node's epoch:
    /// its entries from `slot` on are then the old epoch's, void.
    fn install(&mut self, slot: Slot, data: SnapshotData, membership: Membership) -> Result<()> {
        self.commit = self.commit.max(slot);
        self.next_slot = self.next_slot.max(self.commit);
        self.decided.push(Output::Snapshot {
            slot,
            data: data.clone(),
        });
        if membership.epoch > self.membership.epoch {
            self.drop_below(slot);
            self.log.clear();
            self.earlier.clear();
            self.adopt(membership);
        }
        self.take_snapshot(slot, data, false)?;
        self.advance_commit()
    }
}

#[cfg(test)]
mod tests;
