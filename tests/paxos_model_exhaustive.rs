//! Exhaustive model checks (stateright) of the real Multi-Paxos [`Node`],
//! run to the end of their state space: no depth bound, the checker stops
//! only when every reachable state was explored (`tests/paxos_model_multi.rs`
//! is the depth-bounded check of a larger configuration).
//!
//! Three kinds of model share the code below:
//! - `multi_paxos_exhaustive`: 3 replicas, 2 commands, 2 candidates (only
//!   nodes 1 and 2 ever time out and stand for election), 1 crash-restart of
//!   any node, and a network that duplicates, delays and reorders (delivery
//!   leaves the message in the network, so it can arrive again at any time;
//!   never delivering it is a loss).
//! - `multi_paxos_snapshot_install`: 3 replicas, 3 commands, 2 candidates,
//!   no crash, and one compaction (`Node::compact` at slot 1, by any node
//!   that decided slot 0), so a lagging node catches up by installing the
//!   snapshot (`SnapshotChunk` / `SnapshotRequest`). Each replica's
//!   application state is the list of batches it applied; a snapshot is
//!   that list encoded, and an `Output::Snapshot` replaces it.
//!   With 3 commands and 2 elections it was not seen to finish; what is
//!   checked to the end with 2 elections is narrowed (below, "Snapshot
//!   install, two elections").
//! - `membership_window_*`: membership change from 3 voters to 4 and back
//!   (below).
//!
//! # Membership change: three windows
//! Replica 4 starts with `Node::join` knowing the voters 1, 2 and 3, and
//! the path is `AddLearner(4)` (epoch 1), `Promote(4)` (epoch 2: four
//! voters, a majority of three), `Remove(1)` (epoch 3: voters 2, 3 and 4;
//! replica 1 leads when it removes itself). The whole path from the start
//! is far too large to explore to its end, so each change is checked in a
//! window of its own: a fixed prefix reaches the window's start (replica 1
//! elected; each earlier change proposed by it and chosen, every message
//! delivered once in order, replica 1 elected in the new epoch and its
//! heartbeat answered), and from there every interleaving is explored to
//! the end of the budgets: the one change (proposed by whichever replica
//! leads, from its own membership), one command (proposed once some
//! replica delivered the change, or at any time in the
//! `command_any_time` variant) and one election (a tick of replica 1 or
//! 2: the new epoch's election, or a rival's in the old epoch). Extra
//! properties: every replica reports each epoch right after the slot that
//! changed it, one epoch at a time, and with the same membership; the
//! value compared for agreement in a change's slot is the change itself
//! (the application sees an empty batch there, as for a no-op). What the
//! windows leave out: a change proposed while messages of the previous
//! change are still in flight, and a crash during a change.
//!
//! **Window 1b** (`membership_window_1b_two_elections`) starts earlier in
//! the change and explores more behind it. Its prefix is window 1's, and
//! then replica 1 proposes `AddLearner(4)` and the messages are delivered
//! once each, in order, only until some replica delivers the change (the
//! same stop rule for any code: the first `MembershipChanged` of the new
//! epoch); what is still in the network stays there, undelivered (here:
//! the old leader's last heartbeats, so replicas 2 and 3 have accepted the
//! change but not delivered it). From there: 2 commands, 2 elections, no
//! change, a duplicating network. So that this space closes (about 416
//! thousand states, 2 minutes; without the restrictions below more than
//! 1.5 million states after 9 minutes, not finished) it is narrowed, and
//! only these behaviours are checked:
//! - the joiner is cut off from the window's start (every message to or
//!   from it is lost: a behaviour a real network has). In window 1 it is
//!   only a learner: its acknowledgements count in no quorum, so what is
//!   given up is its own decisions and the routes by which it would relay
//!   a refusal the voters send anyway; windows 1 to 3 keep it.
//! - one election at a time: a candidate stands only while no node has a
//!   pre-vote or election in progress (no duelling candidates here; the
//!   `multi_paxos_*` models have them).
//! - a leader takes at most one command per ballot: a client whose command
//!   a leader took sends its next command to another leader (or to the
//!   same replica after it was elected again).
//!
//! It catches the planted bug of `tests/planted/old_config_voter.patch` (a
//! replica that delivers the change but keeps voting in the old epoch),
//! which needs the two elections (the buggy replica leading in the old
//! epoch, another in the new one) and the two commands.
//!
//! **Snapshot install, two elections**
//! (`multi_paxos_snapshot_install_two_elections`): the snapshot model with
//! 2 commands (not 3), 2 elections, no heartbeat ticks, no crash, the one
//! compaction at slot 1 and a duplicating network, narrowed by two of
//! window 1b's restrictions so that its space closes (13,495 states, 69,178 generated, max depth 27, about 5 s in release):
//! - one election at a time: a candidate stands only while no node has a
//!   pre-vote or election in progress (no duelling candidates).
//! - a leader takes at most one command per ballot, so the second command
//!   is taken only by a second leader (or by the first one elected again).
//!
//! It keeps the reachability checks (a snapshot installed, two leaders
//! elected, every command decided). It does NOT catch the planted bug of
//! `tests/planted/install_clears_log.patch` (an install that forgets the
//! values its node accepted after the snapshot slot): that bug needs the
//! first leader to take two commands in one ballot, which the second
//! restriction forbids. The unrestricted `multi_paxos_snapshot_install`
//! catches it (agreement, 855,251 states, 274 s in release).
//!
//! `multi_paxos_snapshot_install_one_election_at_a_time` drops the second
//! restriction (374,232 states, 68 s) and still does not catch it: in the
//! counterexample leader 1 takes commands 0 and 1, the compaction covers
//! slot 0, node 2 (which accepted slot 1) installs the snapshot and forgets
//! slot 1, is elected with node 3's promise, and puts command 2 in slot 1.
//! With 2 commands the second leader has nothing to put there. Narrowings
//! of the 3-command model tried without closing its space (each stopped by
//! a timeout): one election at a time (3.56 million states after 580 s);
//! with, in addition, node 1 standing first and node 2 second, commands
//! only at a leader whose ballot no node has promised past, the second
//! election only after 2 commands, compaction only at a leader, and the
//! first election a fixed prefix (813 thousand states after 150 s).
//!
//! Leases are off (`lease_duration = 0`: safety never depends on them),
//! `max_batch = 1`, and clients propose only at a node that believes it
//! leads (so nothing is ever forwarded; a property checks that premise).
//!
//! # Abstractions, and why they are sound
//! A state holds real `Node`s (cloned per successor) but is compared and
//! hashed through an abstraction; two states with equal abstractions are
//! merged, and only the first one reached is explored further. Merging is
//! sound when the merged states have the same future behaviours; each point
//! below says why that holds, or what it may hide.
//!
//! 1. **Time.** One clock, which only moves by a jump of `JUMP` = 4
//!    election timeouts: `Tick(i)` jumps it and ticks node i. Every timer a
//!    node sets lies less than 2 election timeouts ahead of the clock, so
//!    after a jump every earlier timer has expired: a tick always finds its
//!    election timer (or, at a leader, its heartbeat, quorum-check and
//!    retransmission timers) expired, and between jumps the clock stands
//!    still. So the absolute times in a node do not matter, only two facts
//!    about them: whether it heard a leader since the last jump (it then
//!    refuses pre-votes; kept only while a pre-vote can still come) and
//!    whether its next catch-up request waits for a jump (`catchup_due`
//!    past the clock). The abstraction keeps those two bits and drops the
//!    times (and the election-jitter generator, whose draws only set
//!    timers). What this hides: ticks at a moment when some timers have
//!    expired and others not (a follower's tick that only retries a
//!    catch-up, a leader's heartbeat without its quorum check), and clocks
//!    that drift apart. Catch-up requests are still sent when a leader's
//!    message reveals a higher commit index.
//! 2. **Node state.** A node is compared by its derived `Debug` text, which
//!    shows every field (a field added later is compared too), with the
//!    time fields of point 1 replaced by the two bits, and with fields that
//!    cannot influence behaviour here removed: the config (fixed per node),
//!    the heartbeat sequence numbers and their acknowledgement record (they
//!    only serve leases and ReadIndex reads, both unused; a slot's `acks`
//!    are kept: with four voters one acknowledgement is not yet a
//!    majority), when a leader last heard its learner (kept as a bit:
//!    heard within an election timeout, which a promotion needs), the `Forward`
//!    sequence counter (no `Forward` is ever sent: checked), and the
//!    storage (point 3). `Node::fingerprint` would keep the times and
//!    the generator, and every redelivered heartbeat draws a new election
//!    timeout, so with it the state space would never close.
//! 3. **Storage.** Every call syncs before it returns, and a restart reads
//!    the records only through replay, so the storage is compared by what
//!    replay rebuilds from it (promise, snapshot, each slot's ballot, value
//!    and chosen mark, commit index), not by the record sequence. Once the
//!    one crash has happened the storage is never read again and is left
//!    out.
//! 4. **Heartbeat sequence numbers in messages** are set to 0 (see 2: a
//!    leader matches them only for leases and reads), so two heartbeats of
//!    one leader with the same commit index are one message.
//! 5. **Network.** A set of (from, to, message): a duplicate send adds
//!    nothing, and delivery does not remove. Messages that can no longer
//!    change anything are dropped (`State::prune`), using the durable,
//!    monotone facts `promised` and the commit index (a crash keeps both):
//!    leader and candidate traffic in a ballot below every node's promise,
//!    nacks and pre-vote replies their receiver has outgrown, and catch-up
//!    replies and snapshot chunks below their receiver's commit index. The
//!    one effect given up: a stale `PreVote`, `Prepare`, `Accept` or
//!    `Heartbeat` would still draw a refusal carrying the receiver's
//!    current promise, which could raise its sender's `highest_seen` and
//!    so the round of its next ballot. That changes only ballot numbers,
//!    and its sender learns the same promise from the refusal of its next
//!    pre-vote or prepare.
//! 6. **Budgets**, not a depth bound, keep the space finite: commands,
//!    elections (ticks of a candidate that does not lead, each one a
//!    pre-vote round), heartbeats (ticks of a leader: heartbeat,
//!    retransmission, quorum check), the crash and the compaction.
//!
//! Node ids break ties between equal rounds, and any node may crash, so
//! the nodes are not interchangeable and no symmetry reduction is used.
//!
//! Properties: agreement (no two replicas, across the crash, decide
//! different batches for a slot; in the snapshot model also the applied
//! state of every pair of replicas agrees slot by slot, snapshots
//! included), validity (only proposed commands are decided, a snapshot
//! holds exactly its slots), in-order delivery (each replica applies slots
//! 0, 1, 2, ... since it last started, a snapshot standing for the slots
//! below it), and reachability checks so that a model exploring nothing
//! fails: every command decided, two different leaders elected, a decision
//! after the crash, a snapshot installed.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use quorumkit::paxos::membership::parse_change;
use quorumkit::paxos::{
    Ballot, Batch, Command, Config, Envelope, Membership, MembershipChange, MemoryStorage, Message,
    Node, NodeId, Output, Record, Slot, wire,
};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Property};

/// The voters a cluster starts with (ids 1 to 3).
const N: usize = 3;
/// The replica that joins in the membership models (`Node::join`).
const JOINER: NodeId = 4;
/// The voter the membership path removes again (module docs): the leader
/// of the window's start, so it leaves the cluster it leads.
const REMOVED: NodeId = 1;
/// Only these node positions (ids 1 and 2) ever time out and stand.
const CANDIDATES: [usize; 2] = [0, 1];
const HEARTBEAT: u64 = 1_000_000;
const ELECTION_TIMEOUT: u64 = 10_000_000;
/// A clock jump: past every timer a node can have set (the farthest, an
/// election deadline, is under 2 election timeouts ahead).
const JUMP: u64 = 4 * ELECTION_TIMEOUT;

fn config(id: NodeId) -> Config {
    let mut c = Config::new(id, (1..=N as NodeId).collect());
    c.heartbeat_interval = HEARTBEAT;
    c.election_timeout = ELECTION_TIMEOUT;
    c.lease_duration = 0;
    c.max_clock_drift = 0;
    c.max_batch = 1;
    // Above any number of slots these models reach, so a leader never
    // queues a command (a queued one would be forwarded on stepping down).
    c.max_inflight = 16;
    c.seed = u64::from(id);
    c
}

fn command(k: u8) -> Command {
    vec![b'c', b'0' + k]
}

fn position(id: NodeId) -> usize {
    (id - 1) as usize
}

/// Replica `id` started (or restarted) on `storage`: the joiner with
/// `Node::join`, knowing the first voters.
fn start(id: NodeId, storage: MemoryStorage, now: u64) -> Node<MemoryStorage> {
    if id == JOINER {
        Node::join(config(id), storage, now).expect("the joiner starts")
    } else {
        Node::new(config(id), storage, now).expect("a voter starts")
    }
}

/// A snapshot's bytes: the applied batches, each as a command count and
/// length-prefixed commands.
fn encode_app(batches: &[Batch]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in batches {
        out.push(b.len() as u8);
        for c in b {
            out.push(c.len() as u8);
            out.extend_from_slice(c);
        }
    }
    out
}

fn decode_app(mut bytes: &[u8]) -> Option<Vec<Batch>> {
    let mut batches = Vec::new();
    while let Some((&n, rest)) = bytes.split_first() {
        bytes = rest;
        let mut batch = Batch::new();
        for _ in 0..n {
            let (&len, rest) = bytes.split_first()?;
            let len = usize::from(len);
            if rest.len() < len {
                return None;
            }
            batch.push(rest[..len].to_vec());
            bytes = &rest[len..];
        }
        batches.push(batch);
    }
    Some(batches)
}

// ------------------------------------------------------------ abstraction

/// Fields of `Node`'s `Debug` text left out of the comparison (module docs,
/// points 1 to 3). A top-level one missing from the text fails the check,
/// so a rename cannot silently put a clock back into the state (`sent_at`
/// is a field of each in-flight slot, absent when none is in flight).
const SCRUBBED: &[&str] = &[
    "config",
    "storage",
    "rng",
    "now",
    "election_deadline",
    "leader_heard_at",
    "next_heartbeat",
    "hb_seq",
    "hb_sent",
    "lease_until",
    "quorum_check_at",
    "sent_at",
    "forward_seq",
    "lease_promise_until",
    "restart_block_until",
    "catchup_due",
    "quorum_heard",
    "leader_ballot",
    "highest_seen",
    "learner_heard",
];

/// `debug` with the value of every `SCRUBBED` field (at any depth) replaced
/// by `_`, and the raw values of the first occurrence of each.
fn scrub(debug: &str) -> (String, Vec<(&str, &str)>) {
    let b = debug.as_bytes();
    let mut out = String::with_capacity(debug.len());
    let mut values: Vec<(&str, &str)> = Vec::new();
    let mut i = 2;
    let mut copied = 0;
    while i < b.len() {
        // A field name follows "{ " or ", " and is a lowercase identifier.
        if !(b[i].is_ascii_lowercase() && b[i - 1] == b' ' && matches!(b[i - 2], b',' | b'{')) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < b.len() && (b[e].is_ascii_lowercase() || b[e] == b'_') {
            e += 1;
        }
        let name = &debug[i..e];
        if !(b[e..].starts_with(b": ") && SCRUBBED.contains(&name)) {
            i = e;
            continue;
        }
        let start = e + 2;
        let mut j = start;
        let mut depth = 0usize;
        while j < b.len() {
            match b[j] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => break,
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        out.push_str(&debug[copied..start]);
        out.push('_');
        if !values.iter().any(|(n, _)| *n == name) {
            values.push((name, &debug[start..j]));
        }
        copied = j;
        i = j;
    }
    out.push_str(&debug[copied..]);
    (out, values)
}

fn parse_u64(s: &str) -> u64 {
    s.trim().parse().expect("a number in Node's Debug text")
}

/// `Some(Ballot { round: R, node: N }, ...)`-like text to the first ballot.
fn parse_ballot(s: &str) -> Option<Ballot> {
    let r = s.find("round: ")? + 7;
    let round = s[r..].split(|c: char| !c.is_ascii_digit()).next()?;
    let n = s.find("node: ")? + 6;
    let node = s[n..].split(|c: char| !c.is_ascii_digit()).next()?;
    Some(Ballot::new(round.parse().ok()?, node.parse().ok()?))
}

/// What replay rebuilds from a node's records (module docs, point 3).
fn storage_key(records: &[Record]) -> u64 {
    let mut promised = Ballot::ZERO;
    let mut base: Slot = 0;
    let mut snapshot: Option<(Slot, Vec<u8>)> = None;
    let mut commit: Slot = 0;
    let mut log: BTreeMap<Slot, (Ballot, Batch, bool)> = BTreeMap::new();
    let mut memberships: Vec<Membership> = Vec::new();
    for r in records {
        match r {
            Record::Promise { ballot } => promised = promised.max(*ballot),
            Record::Accept {
                slot,
                ballot,
                batch,
            } if *slot >= base => {
                let e = log.entry(*slot).or_default();
                if !e.2 {
                    e.1 = batch.clone();
                }
                e.0 = *ballot;
            }
            Record::Chosen { slot, batch } if *slot >= base => {
                let e = log.entry(*slot).or_default();
                e.1 = batch.clone();
                e.2 = true;
            }
            Record::Commit { commit: c } => commit = commit.max(*c),
            Record::Snapshot { slot, data } => {
                if *slot > base {
                    base = *slot;
                    log = log.split_off(slot);
                    snapshot = Some((*slot, data.to_vec()));
                }
                commit = commit.max(*slot);
            }
            Record::Membership(m) => memberships.push(m.clone()),
            Record::Accept { .. } | Record::Chosen { .. } => {}
        }
    }
    for (_, e) in log.range_mut(..commit) {
        e.2 = true;
    }
    let mut h = DefaultHasher::new();
    (promised, base, snapshot, commit, log, memberships).hash(&mut h);
    h.finish()
}

/// One replica: the real node and its abstraction (cached; refreshed
/// after every call into the node).
#[derive(Clone)]
struct Replica {
    node: Node<MemoryStorage>,
    /// Hash of the scrubbed `Debug` text.
    core: u64,
    storage: u64,
    leader_heard_at: Option<u64>,
    catchup_due: u64,
    /// The pre-vote in progress, if any (hidden state the pruning needs).
    prevote: Option<Ballot>,
    /// A leader heard from a majority since its last quorum check.
    quorum: bool,
    /// The highest ballot the node heard of: its next ballot exceeds it.
    highest_seen: Ballot,
    /// When a leader last heard from its learner (the joiner), if it has
    /// one: a promotion needs it heard within an election timeout.
    learner_heard: Option<u64>,
    /// A leader's membership change is under way (proposed, not yet
    /// delivered): it takes commands only into its queue then.
    changing: bool,
}

impl Replica {
    fn new(node: Node<MemoryStorage>) -> Self {
        let mut r = Replica {
            node,
            core: 0,
            storage: 0,
            leader_heard_at: None,
            catchup_due: 0,
            prevote: None,
            quorum: false,
            highest_seen: Ballot::ZERO,
            learner_heard: None,
            changing: false,
        };
        r.refresh();
        r
    }

    fn refresh(&mut self) {
        let debug = format!("{:?}", self.node);
        let (scrubbed, values) = scrub(&debug);
        let value = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let missing: Vec<_> = SCRUBBED
            .iter()
            .filter(|n| **n != "sent_at" && value(n).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "scrubbed fields missing from Node's Debug text: {missing:?}"
        );
        let mut h = DefaultHasher::new();
        scrubbed.hash(&mut h);
        self.core = h.finish();
        self.storage = storage_key(self.node.storage().records());
        let (Some(heard), Some(due), Some(quorum), Some(seen), Some(learner)) = (
            value("leader_heard_at"),
            value("catchup_due"),
            value("quorum_heard"),
            value("highest_seen"),
            value("learner_heard"),
        ) else {
            unreachable!("checked above");
        };
        // `{4: t}`: only the joiner is ever a learner here.
        self.learner_heard = learner
            .split_once(": ")
            .map(|(_, t)| parse_u64(t.trim_end_matches('}')));
        self.changing =
            !debug.contains(", pending_change: None,") || !debug.contains(", change_slot: None,");
        self.highest_seen = parse_ballot(seen).expect("a ballot");
        self.leader_heard_at = heard
            .strip_prefix("Some(")
            .map(|v| parse_u64(v.trim_end_matches(')')));
        self.catchup_due = parse_u64(due);
        let majority = self.node.membership().voters.len() / 2 + 1;
        self.quorum = parse_u64(quorum).count_ones() as usize >= majority;
        let prevote_start = debug.find(", prevote: ").expect("a prevote field") + 11;
        let prevote = &debug[prevote_start..];
        self.prevote = if prevote.starts_with("Some(") {
            parse_ballot(prevote)
        } else {
            None
        };
    }

    /// The two timing facts that matter at `clock` (module docs, point 1):
    /// whether the node heard a leader since the last jump (it refuses
    /// pre-votes), and whether its next catch-up request waits for a jump.
    fn time_bits(&self, clock: u64) -> (bool, bool) {
        // A leader refuses pre-votes by its role; when it steps down it
        // either follows a leader it just heard or knows none, so its
        // earlier timestamp never matters. A candidate knows no leader.
        let hears = !self.node.is_leader()
            && self.node.leader().is_some()
            && self
                .leader_heard_at
                .is_some_and(|t| clock < t.saturating_add(ELECTION_TIMEOUT));
        (hears, self.catchup_due > clock)
    }

    /// Whether a leader may promote its learner now (heard within an
    /// election timeout; the clock stands still between jumps).
    fn learner_fresh(&self, clock: u64) -> bool {
        self.learner_heard
            .is_some_and(|t| clock.saturating_sub(t) <= ELECTION_TIMEOUT)
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = &self.node;
        write!(
            f,
            "node {} promised {} leader {:?}{}{} commit {} log_start {} log {:?}",
            n.id(),
            n.promised(),
            n.leader(),
            if n.is_leader() { " (leads)" } else { "" },
            if n.is_candidate() { " (stands)" } else { "" },
            n.commit_index(),
            n.log_start(),
            (n.log_start()..n.log_start() + n.log_len())
                .map(|s| n.accepted(s).map(|(b, v, c)| (b, v.clone(), c)))
                .collect::<Vec<_>>()
        )
    }
}

// ------------------------------------------------------------ the model

#[derive(Clone, Copy, Debug)]
struct Params {
    commands: u8,
    elections: u8,
    heartbeats: u8,
    crashes: u8,
    /// The slot a node may compact at once (after deciding the slots
    /// below it); `None`: no compaction.
    compact_at: Option<Slot>,
    /// Drop messages that can no longer change anything (module docs,
    /// point 5); off only to measure what it saves.
    prune: bool,
    /// The last command is proposed only once a second node was elected
    /// (a client that retries with a new command after a failover).
    last_after_failover: bool,
    /// The membership window (module docs, "Membership change"): 0 for
    /// none, else 1, 2 or 3; the joiner takes part from window 1 on.
    window: u8,
    /// Membership changes a leader may propose in the window.
    changes: u8,
    /// Whether a delivered message stays in the network (so it can come
    /// again); without, each message arrives at most once (still in any
    /// order, or never), a far smaller space for hunting deep bugs.
    duplicates: bool,
    /// Commands are proposed only once the window's change was decided
    /// somewhere (each membership window runs once with and once without).
    commands_after_change: bool,
    /// The prefix also proposes the window's own change and stops as soon
    /// as a replica delivered it (module docs, window 1b).
    prefix_to_choice: bool,
    /// From the window's start on, every message to or from the joiner is
    /// lost (module docs, window 1b).
    cut_joiner: bool,
    /// A candidate stands only while no other node stands (no pre-vote or
    /// election in progress anywhere).
    one_election_at_a_time: bool,
    /// A leader takes at most one command per ballot (a client whose
    /// command was taken sends its next one to another leader).
    one_command_per_ballot: bool,
}

impl Params {
    fn replicas(&self) -> usize {
        if self.window > 0 { N + 1 } else { N }
    }
}

/// A message in the network: compared by (from, to, wire bytes), shared
/// between states, decoded once.
#[derive(Clone)]
struct Sent(Arc<(NodeId, NodeId, Vec<u8>, Message)>);

impl Sent {
    fn new(from: NodeId, to: NodeId, message: Message) -> Self {
        Sent(Arc::new((from, to, wire::encode_to_vec(&message), message)))
    }

    fn key(&self) -> (NodeId, NodeId, &[u8]) {
        (self.0.0, self.0.1, &self.0.2)
    }
}

impl PartialEq for Sent {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Sent {}

impl PartialOrd for Sent {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sent {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl Hash for Sent {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

impl std::fmt::Debug for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}: {:?}", self.0.0, self.0.1, self.0.3)
    }
}

#[derive(Clone)]
struct State {
    /// The time every node is at (module docs, point 1); not compared.
    clock: u64,
    replicas: Vec<Replica>,
    /// Delivery leaves a message here.
    net: BTreeSet<Sent>,
    proposed: u8,
    elections_left: u8,
    heartbeats_left: u8,
    crashes_left: u8,
    compacts_left: u8,
    changes_left: u8,
    /// Ghosts for the properties: the first batch decided per slot (or
    /// found in a snapshot), each replica's applied state since it last
    /// started, leaders elected (a bit per node), and what went wrong.
    decided: BTreeMap<Slot, Batch>,
    apps: Vec<Vec<Batch>>,
    elected: u8,
    decided_after_crash: bool,
    installed: bool,
    /// Each epoch's membership as first reported, each replica's epoch
    /// since it last started, and whether a replica reported one out of
    /// turn or one that differs from another's.
    memberships: BTreeMap<u64, Membership>,
    epochs: Vec<u64>,
    membership_wrong: bool,
    /// The last slot a change was decided in, and whether a command was
    /// decided after it.
    change_decided: Option<Slot>,
    command_after_change: bool,
    conflict: bool,
    out_of_order: bool,
    invalid: bool,
    forwarded: bool,
    /// Messages to or from the joiner are lost (`Params::cut_joiner`).
    joiner_cut: bool,
    /// The ballots in which a leader took a command
    /// (`Params::one_command_per_ballot`).
    took: BTreeSet<Ballot>,
}

impl State {
    fn key(&self) -> impl Hash + Eq + '_ {
        let storage_matters = self.crashes_left > 0;
        // Hearing a leader only matters to a pre-vote that can still come.
        let prevotes = self.elections_left > 0
            || self
                .net
                .iter()
                .any(|m| matches!(m.0.3, Message::PreVote { .. }));
        (
            self.replicas
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (hears, waits) = r.time_bits(self.clock);
                    let storage = storage_matters.then_some(r.storage);
                    // Only a leader's heartbeat tick reads its quorum.
                    let quorum = r.quorum && self.heartbeats_left > 0;
                    // Read only when the node picks a ballot to stand with.
                    let stands =
                        CANDIDATES.contains(&i) && (self.elections_left > 0 || r.prevote.is_some());
                    let seen = stands.then_some(r.highest_seen);
                    // Read only by a promotion, which needs a change left.
                    let fresh = self.changes_left > 0 && r.learner_fresh(self.clock);
                    (
                        r.core,
                        hears && prevotes,
                        waits,
                        quorum,
                        seen,
                        storage,
                        fresh,
                    )
                })
                .collect::<Vec<_>>(),
            &self.net,
            (
                self.proposed,
                self.elections_left,
                self.heartbeats_left,
                self.crashes_left,
                self.compacts_left,
                self.changes_left,
            ),
            (&self.decided, &self.apps, self.elected, &self.took),
            (
                &self.memberships,
                &self.epochs,
                self.membership_wrong,
                self.change_decided,
                self.command_after_change,
            ),
            (
                self.decided_after_crash,
                self.installed,
                self.conflict,
                self.out_of_order,
                self.invalid,
                self.forwarded,
            ),
        )
    }

    fn record_decision(&mut self, slot: Slot, batch: &Batch) {
        match self.decided.get(&slot) {
            Some(b) if b != batch => self.conflict = true,
            Some(_) => {}
            None => {
                self.decided.insert(slot, batch.clone());
            }
        }
    }

    /// Takes replica `i`'s outputs (`restart`: those of `Node::new`).
    fn absorb(&mut self, i: usize, restart: bool) {
        while let Some(o) = self.replicas[i].node.poll() {
            match o {
                Output::Persisted { .. } => {}
                Output::ReadIndex { .. } => self.invalid = true,
                Output::MembershipChanged(m) => self.on_membership(i, m, restart),
                Output::Send(Envelope { from, to, message }) => {
                    let message = match message {
                        Message::Heartbeat { ballot, commit, .. } => Message::Heartbeat {
                            ballot,
                            commit,
                            seq: 0,
                        },
                        Message::HeartbeatAck { ballot, .. } => {
                            Message::HeartbeatAck { ballot, seq: 0 }
                        }
                        Message::Forward { .. } => {
                            self.forwarded = true;
                            message
                        }
                        m => m,
                    };
                    if !(self.joiner_cut && (from == JOINER || to == JOINER)) {
                        self.net.insert(Sent::new(from, to, message));
                    }
                }
                Output::Decided { slot, batch } => {
                    if slot != self.apps[i].len() as Slot {
                        self.out_of_order = true;
                    }
                    if batch
                        .iter()
                        .any(|c| !(0..self.proposed).any(|k| command(k) == *c))
                    {
                        self.invalid = true;
                    }
                    // A change reaches the application as an empty batch;
                    // the value compared is the change itself.
                    let change = self.replicas[i]
                        .node
                        .accepted(slot)
                        .map(|(_, v, _)| v)
                        .filter(|v| parse_change(v).is_some())
                        .cloned();
                    match change {
                        Some(v) => {
                            if !batch.is_empty() {
                                self.invalid = true;
                            }
                            self.record_decision(slot, &v);
                            self.change_decided = self.change_decided.max(Some(slot));
                        }
                        None => {
                            self.record_decision(slot, &batch);
                            if !batch.is_empty() && self.change_decided.is_some_and(|c| slot > c) {
                                self.command_after_change = true;
                            }
                        }
                    }
                    if self.crashes_left == 0 && !restart {
                        self.decided_after_crash = true;
                    }
                    self.apps[i].push(batch);
                }
                Output::Snapshot { slot, data } => {
                    match decode_app(&data) {
                        Some(batches) if batches.len() as Slot == slot => {
                            for (s, b) in batches.iter().enumerate() {
                                self.record_decision(s as Slot, b);
                            }
                            self.apps[i] = batches;
                        }
                        _ => self.invalid = true,
                    }
                    if !restart {
                        self.installed = true;
                    }
                }
                Output::LeaderChanged { leader, .. } => {
                    if leader == Some(self.replicas[i].node.id()) {
                        self.elected |= 1 << i;
                    }
                }
            }
        }
        self.replicas[i].refresh();
    }

    /// Replica `i` entered an epoch: right after the slot that changed it,
    /// one epoch at a time, and with the membership every other replica
    /// reports for that epoch.
    /// (A restart reports the membership its records end with.)
    fn on_membership(&mut self, i: usize, m: Membership, restart: bool) {
        let in_turn = if restart {
            m.epoch > self.epochs[i]
        } else {
            m.start == self.apps[i].len() as Slot && m.epoch == self.epochs[i] + 1
        };
        if !in_turn {
            self.membership_wrong = true;
        }
        self.epochs[i] = m.epoch;
        match self.memberships.get(&m.epoch) {
            Some(have) if *have != m => self.membership_wrong = true,
            Some(_) => {}
            None => {
                self.memberships.insert(m.epoch, m);
            }
        }
    }

    /// Whether the applied states of every two replicas agree slot by slot.
    fn apps_agree(&self) -> bool {
        self.apps.iter().enumerate().all(|(i, a)| {
            self.apps[i + 1..]
                .iter()
                .all(|b| a.iter().zip(b).all(|(x, y)| x == y))
        })
    }

    /// Drops the messages that can no longer change anything (module docs,
    /// point 5). The tests use `promised` and commit indexes, which only
    /// grow (a crash keeps both: they are durable), and a leader's or
    /// candidate's own ballot, which equals its promise (promising a higher
    /// ballot makes it a follower) and which it never takes again once its
    /// promise is at or above it (a new ballot exceeds the promise). So a
    /// message dropped here stays useless.
    fn prune(&mut self, compact_at: Option<Slot>) {
        // No node's log can start past this (snapshots are only taken there).
        let max_base = compact_at.unwrap_or(0);
        let heartbeats_left = self.heartbeats_left;
        let replicas = &self.replicas;
        // Whether `n` leads or stands in ballot `b`, now or ever again.
        let may_hold = |n: &Node<MemoryStorage>, b: Ballot| {
            ((n.is_leader() || n.is_candidate()) && n.ballot() == b) || n.promised() < b
        };
        self.net.retain(|sent| {
            let (from, to, _, m) = &*sent.0;
            let s = &replicas[position(*from)];
            let r = &replicas[position(*to)];
            let (sn, rn) = (&s.node, &r.node);
            let dead = match m {
                // The receiver refuses a ballot below its promise with a
                // nack or a refused pre-vote, which can only depose a
                // sender still holding that ballot (otherwise it only
                // carries a ballot hint: point 5).
                Message::PreVote { ballot } => {
                    s.prevote != Some(*ballot) && *ballot <= sn.promised()
                }
                Message::Accept { ballot, .. } | Message::Heartbeat { ballot, .. } => {
                    *ballot < rn.promised() && !may_hold(sn, *ballot)
                }
                // The same, unless the receiver's log may start after the
                // candidate's first slot (it would send its snapshot).
                Message::Prepare { ballot, first_slot } => {
                    *ballot < rn.promised() && !may_hold(sn, *ballot) && *first_slot >= max_base
                }
                // Only the leader or candidate of that ballot counts them
                // (acknowledgements of slots it committed, and heartbeat
                // acknowledgements, count only towards its next quorum
                // check, which needs a heartbeat tick).
                Message::Accepted {
                    ballot,
                    first_slot,
                    count,
                } => {
                    !may_hold(rn, *ballot)
                        || (heartbeats_left == 0 && first_slot + count <= rn.commit_index())
                }
                Message::HeartbeatAck { ballot, .. } => {
                    !may_hold(rn, *ballot) || heartbeats_left == 0
                }
                // The same for the vote, and the commit index it reports
                // is known.
                Message::Promise { ballot, commit, .. } => {
                    !(rn.is_candidate() && rn.ballot() == *ballot || rn.promised() < *ballot)
                        && *commit <= rn.commit_index()
                }
                // A nack deposes only a leader or candidate whose ballot is
                // below `promised`; the receiver's promise is at least that.
                Message::Nack { promised, .. } => *promised <= rn.promised(),
                // Counted only by the pre-vote it answers, which is over for
                // good; the promise it reports is known.
                Message::PreVoteReply {
                    ballot, promised, ..
                } => {
                    r.prevote != Some(*ballot)
                        && *ballot <= rn.promised()
                        && *promised <= rn.promised()
                }
                // Slots below the receiver's commit index are skipped.
                Message::CatchUp {
                    first_slot,
                    batches,
                    commit,
                } => {
                    first_slot + batches.len() as Slot <= rn.commit_index()
                        && *commit <= rn.commit_index()
                }
                Message::SnapshotChunk { slot, .. } => *slot <= rn.commit_index(),
                // Every snapshot covers at most `max_base` slots.
                Message::SnapshotRequest { .. } => sn.commit_index() >= max_base,
                Message::CatchUpRequest { .. }
                | Message::Forward { .. }
                | Message::Handoff { .. } => false,
            };
            !dead
        });
    }
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for State {}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("replicas", &self.replicas)
            .field("net", &self.net.len())
            .field("decided", &self.decided)
            .field("apps", &self.apps)
            .field("conflict", &self.conflict)
            .field("out_of_order", &self.out_of_order)
            .field("invalid", &self.invalid)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Action {
    /// The clock jumps and node i is ticked: a candidate stands (pre-vote),
    /// a leader sends heartbeats, retransmits and checks its quorum.
    Tick(usize),
    /// The next command is proposed at node i, which believes it leads.
    Propose(usize),
    /// Deliver a message.
    Deliver(Sent),
    /// Node i loses its volatile state and restarts from its storage.
    Crash(usize),
    /// Node i compacts its log at `Params::compact_at`.
    Compact(usize),
    /// Node i, which believes it leads, proposes the next membership change
    /// of the path (module docs).
    Change(usize, MembershipChange),
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Tick(i) => write!(f, "Tick(node {})", i + 1),
            Action::Propose(i) => write!(f, "Propose(node {})", i + 1),
            Action::Crash(i) => write!(f, "Crash(node {})", i + 1),
            Action::Compact(i) => write!(f, "Compact(node {})", i + 1),
            Action::Change(i, c) => write!(f, "Change(node {}, {c:?})", i + 1),
            Action::Deliver(m) => write!(f, "Deliver({m:?})"),
        }
    }
}

struct PaxosModel {
    p: Params,
}

impl Model for PaxosModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut s = State {
            clock: 0,
            replicas: Vec::new(),
            net: BTreeSet::new(),
            proposed: 0,
            elections_left: self.p.elections,
            heartbeats_left: self.p.heartbeats,
            crashes_left: self.p.crashes,
            compacts_left: u8::from(self.p.compact_at.is_some()),
            changes_left: 0,
            decided: BTreeMap::new(),
            apps: vec![Vec::new(); self.p.replicas()],
            elected: 0,
            decided_after_crash: false,
            installed: false,
            memberships: BTreeMap::from([(0, Membership::initial((1..=N as NodeId).collect()))]),
            epochs: vec![0; self.p.replicas()],
            membership_wrong: false,
            change_decided: None,
            command_after_change: false,
            conflict: false,
            out_of_order: false,
            invalid: false,
            forwarded: false,
            joiner_cut: false,
            took: BTreeSet::new(),
        };
        for i in 0..self.p.replicas() {
            let node = start(i as NodeId + 1, MemoryStorage::new(), 0);
            s.replicas.push(Replica::new(node));
            s.absorb(i, true);
        }
        if self.p.window > 0 {
            self.window_prefix(&mut s);
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let standing = s
            .replicas
            .iter()
            .any(|r| r.prevote.is_some() || r.node.is_candidate());
        for (i, r) in s.replicas.iter().enumerate() {
            let n = &r.node;
            if CANDIDATES.contains(&i) {
                let budget = if n.is_leader() {
                    s.heartbeats_left
                } else {
                    s.elections_left
                };
                let wait = self.p.one_election_at_a_time && !n.is_leader() && standing;
                if budget > 0 && !wait {
                    actions.push(Action::Tick(i));
                }
            }
            let held = (self.p.last_after_failover
                && s.proposed + 1 == self.p.commands
                && s.elected.count_ones() < 2)
                || (self.p.commands_after_change
                    && s.memberships.len() <= usize::from(self.p.window));
            // A client waits out a leader's membership change (a command
            // would only be queued, and forwarded when the leader steps
            // down into the new epoch).
            let took = self.p.one_command_per_ballot && s.took.contains(&n.ballot());
            if s.proposed < self.p.commands && n.is_leader() && !held && !r.changing && !took {
                actions.push(Action::Propose(i));
            }
            if s.changes_left > 0 && n.is_leader() {
                for c in next_changes(n) {
                    actions.push(Action::Change(i, c));
                }
            }
            if s.crashes_left > 0 {
                actions.push(Action::Crash(i));
            }
            if let Some(at) = self.p.compact_at
                && s.compacts_left > 0
                && n.commit_index() >= at
            {
                actions.push(Action::Compact(i));
            }
        }
        for m in &s.net {
            actions.push(Action::Deliver(m.clone()));
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        self.apply(&mut s, action)?;
        if self.p.prune {
            s.prune(self.p.compact_at);
        }
        (s != *last).then_some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut ps = vec![
            Property::always("agreement", |_, s: &State| !s.conflict && s.apps_agree()),
            Property::always("in-order delivery", |_, s: &State| !s.out_of_order),
            Property::always("validity", |_, s: &State| !s.invalid),
            Property::always("no forwards (model premise)", |_, s: &State| !s.forwarded),
            Property::sometimes("every command decided", |m: &Self, s: &State| {
                (0..m.p.commands).all(|k| s.decided.values().flatten().any(|c| *c == command(k)))
            }),
        ];
        if self.p.elections >= 2 {
            ps.push(Property::sometimes(
                "two leaders elected",
                |_, s: &State| s.elected.count_ones() >= 2,
            ));
        }
        if self.p.crashes > 0 {
            ps.push(Property::sometimes(
                "decided after the crash",
                |_, s: &State| s.decided_after_crash,
            ));
        }
        if self.p.compact_at.is_some() {
            ps.push(Property::sometimes(
                "a snapshot installed",
                |_, s: &State| s.installed,
            ));
        }
        if self.p.window > 0 {
            ps.push(Property::always(
                "one membership per epoch, in turn",
                |_, s: &State| !s.membership_wrong,
            ));
            ps.push(Property::sometimes(
                "the window's change delivered everywhere",
                |m: &Self, s: &State| {
                    let cut = usize::from(m.p.cut_joiner);
                    s.epochs[..s.epochs.len() - cut]
                        .iter()
                        .all(|&e| e == u64::from(m.p.window))
                },
            ));
            ps.push(Property::sometimes(
                "a command decided after the change",
                |_, s: &State| s.command_after_change,
            ));
        } else {
            ps.push(Property::always(
                "no membership change (model premise)",
                |_, s: &State| s.memberships.len() == 1,
            ));
        }
        ps
    }
}

impl PaxosModel {
    /// Applies `action` to `s` in place: `None` when it is no step.
    fn apply(&self, s: &mut State, action: Action) -> Option<()> {
        let result = match action {
            Action::Tick(i) => {
                if s.replicas[i].node.is_leader() {
                    s.heartbeats_left -= 1;
                } else {
                    s.elections_left -= 1;
                }
                s.clock += JUMP;
                s.replicas[i].node.tick(s.clock).map(|()| i)
            }
            Action::Propose(i) => {
                let c = command(s.proposed);
                s.proposed += 1;
                if self.p.one_command_per_ballot {
                    s.took.insert(s.replicas[i].node.ballot());
                }
                s.replicas[i].node.propose(c, s.clock).map(|()| i)
            }
            Action::Deliver(m) => {
                if !self.p.duplicates {
                    s.net.remove(&m);
                }
                let (from, to, _, message) = &*m.0;
                let i = position(*to);
                let t = s.clock;
                s.replicas[i]
                    .node
                    .step(*from, message.clone(), t)
                    .map(|()| i)
            }
            Action::Crash(i) => {
                s.crashes_left -= 1;
                let id = s.replicas[i].node.id();
                let mut storage = s.replicas[i].node.storage().clone();
                storage.crash();
                let node = start(id, storage, s.clock);
                s.replicas[i] = Replica::new(node);
                s.apps[i].clear();
                s.epochs[i] = 0;
                s.absorb(i, true);
                Ok(i)
            }
            Action::Compact(i) => {
                s.compacts_left -= 1;
                let at = self.p.compact_at.expect("compaction is on");
                let data = encode_app(&s.apps[i][..at as usize]);
                s.replicas[i].node.compact(at, data, s.clock).map(|()| i)
            }
            Action::Change(i, c) => {
                // Refused (a learner not heard from lately): no step.
                if c == MembershipChange::Promote(JOINER) && !s.replicas[i].learner_fresh(s.clock) {
                    return None;
                }
                s.changes_left -= 1;
                let done = s.replicas[i].node.change_membership(c, s.clock).map(|()| i);
                assert!(
                    done.is_ok(),
                    "change refused: {done:?} at {:?}",
                    s.replicas[i]
                );
                done
            }
        };
        // Memory storage never fails, the model calls `compact` only with a
        // decided slot past the log's start, and a change only when the
        // leader can take it.
        let i = result.expect("the node accepts the call");
        s.absorb(i, false);
        Some(())
    }

    /// The fixed path to a membership window's start (module docs): replica
    /// 1 is elected, then makes each earlier change of the path; every
    /// message is delivered once, in order, until none is left.
    fn window_prefix(&self, s: &mut State) {
        s.elections_left = u8::MAX;
        s.heartbeats_left = u8::MAX;
        s.changes_left = u8::MAX;
        self.apply(s, Action::Tick(0));
        self.settle(s);
        assert!(s.replicas[0].node.is_leader(), "{s:?}");
        for _ in 1..self.p.window {
            let epoch = s.replicas[0].node.membership().epoch;
            let change = next_changes(&s.replicas[0].node)[0];
            self.apply(s, Action::Change(0, change))
                .expect("the change is taken");
            self.settle(s);
            // The old leader stands in the new epoch; then its first
            // heartbeat tick, which its learner answers.
            for _ in 0..2 {
                self.apply(s, Action::Tick(0));
                self.settle(s);
            }
            assert!(s.replicas[0].node.is_leader(), "{s:?}");
            for r in &s.replicas {
                assert_eq!(r.node.membership().epoch, epoch + 1, "{s:?}");
            }
        }
        if self.p.prefix_to_choice {
            let change = next_changes(&s.replicas[0].node)[0];
            self.apply(s, Action::Change(0, change))
                .expect("the change is taken");
            self.settle_until(s, |s| s.memberships.len() > usize::from(self.p.window));
            assert!(s.change_decided.is_some(), "{s:?}");
        }
        assert!(
            !(s.conflict || s.invalid || s.out_of_order || s.membership_wrong),
            "{s:?}"
        );
        if self.p.cut_joiner {
            s.joiner_cut = true;
            s.net.retain(|m| m.0.0 != JOINER && m.0.1 != JOINER);
        }
        s.elections_left = self.p.elections;
        s.heartbeats_left = self.p.heartbeats;
        s.changes_left = self.p.changes;
    }

    fn settle(&self, s: &mut State) {
        self.settle_until(s, |_| false);
    }

    /// Delivers the messages in the network once each, in order, until
    /// none is left or `done` holds.
    fn settle_until(&self, s: &mut State, done: impl Fn(&State) -> bool) {
        for _ in 0..10_000 {
            if done(s) {
                return;
            }
            let Some(m) = s.net.pop_first() else {
                return;
            };
            self.apply(s, Action::Deliver(m));
        }
        panic!("the prefix does not settle: {s:?}");
    }
}

/// The next change of the membership path from leader `n`'s membership:
/// add the joiner as a learner, promote it, then remove `REMOVED`.
fn next_changes(n: &Node<MemoryStorage>) -> Vec<MembershipChange> {
    let m = n.membership();
    if !m.contains(JOINER) {
        vec![MembershipChange::AddLearner(JOINER)]
    } else if m.is_learner(JOINER) {
        vec![MembershipChange::Promote(JOINER)]
    } else if m.voters.len() == N + 1 {
        vec![MembershipChange::Remove(REMOVED)]
    } else {
        Vec::new()
    }
}

fn env_u8(name: &str, default: u8) -> u8 {
    std::env::var(name).map_or(default, |v| v.parse().expect("a small number"))
}

/// Runs the model to the end of its state space (or to the first failed
/// property), prints what it explored and checks every property.
fn check(label: &str, p: Params) {
    let t = Instant::now();
    let mut builder = PaxosModel { p }
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyFailures);
    // For experiments only: a timeout or a depth bound leaves the run
    // incomplete, and the test then fails below.
    let timeout = std::env::var("QK_MODEL_TIMEOUT")
        .ok()
        .map(|v| std::time::Duration::from_secs(v.parse().expect("seconds")));
    if let Some(limit) = timeout {
        builder = builder.timeout(limit);
    }
    let depth_bound = std::env::var("QK_MODEL_DEPTH").ok();
    if let Some(depth) = &depth_bound {
        builder = builder.target_max_depth(depth.parse().expect("a depth"));
    }
    // Depth first reaches a deep bug sooner (hunting a planted one);
    // breadth first gives the shortest counterexample.
    let limits = (t, timeout, depth_bound.is_some());
    if std::env::var("QK_MODEL_DFS").is_ok_and(|v| v == "1") {
        report(label, p, builder.spawn_dfs().join(), limits);
    } else {
        report(label, p, builder.spawn_bfs().join(), limits);
    }
}

/// Prints what `checker` explored and checks every property, and that the
/// state space was explored to its end.
fn report(
    label: &str,
    p: Params,
    checker: impl Checker<PaxosModel>,
    (t, timeout, depth_bound): (Instant, Option<std::time::Duration>, bool),
) {
    let elapsed = t.elapsed();
    // `is_done` is true after a timeout, or a failure, too.
    let failed = checker
        .model()
        .properties()
        .iter()
        .any(|q| q.expectation == Expectation::Always && checker.discovery(q.name).is_some());
    let complete =
        checker.is_done() && !failed && !depth_bound && timeout.is_none_or(|limit| elapsed < limit);
    println!(
        "{label} {p:?}: {} unique states ({} generated), max depth {}, {elapsed:.2?}, complete: {complete}",
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
    );
    checker.assert_properties();
    assert!(complete, "the state space was not explored to its end");
}

fn multi(elections: u8, heartbeats: u8) -> Params {
    Params {
        commands: 2,
        elections: env_u8("QK_EXH_ELECTIONS", elections),
        heartbeats: env_u8("QK_EXH_HEARTBEATS", heartbeats),
        crashes: env_u8("QK_EXH_CRASHES", 1),
        compact_at: None,
        prune: env_u8("QK_EXH_PRUNE", 1) == 1,
        last_after_failover: false,
        window: 0,
        changes: 0,
        duplicates: true,
        commands_after_change: false,
        prefix_to_choice: false,
        cut_joiner: false,
        one_election_at_a_time: false,
        one_command_per_ballot: false,
    }
}

fn snapshot(commands: u8, elections: u8) -> Params {
    Params {
        commands: env_u8("QK_SNAP_COMMANDS", commands),
        elections: env_u8("QK_SNAP_ELECTIONS", elections),
        heartbeats: env_u8("QK_SNAP_HEARTBEATS", 0),
        crashes: 0,
        compact_at: Some(1),
        prune: env_u8("QK_EXH_PRUNE", 1) == 1,
        last_after_failover: commands >= 3,
        window: 0,
        changes: 0,
        duplicates: true,
        commands_after_change: false,
        prefix_to_choice: false,
        cut_joiner: false,
        one_election_at_a_time: false,
        one_command_per_ballot: false,
    }
}

fn membership(window: u8, commands: u8, elections: u8, after: bool) -> Params {
    Params {
        commands: env_u8("QK_MEM_COMMANDS", commands),
        elections: env_u8("QK_MEM_ELECTIONS", elections),
        heartbeats: env_u8("QK_MEM_HEARTBEATS", 0),
        crashes: env_u8("QK_MEM_CRASHES", 0),
        compact_at: None,
        prune: env_u8("QK_EXH_PRUNE", 1) == 1,
        last_after_failover: false,
        window,
        changes: 1,
        duplicates: env_u8("QK_MEM_DUPLICATES", 1) == 1,
        commands_after_change: after,
        prefix_to_choice: false,
        cut_joiner: false,
        one_election_at_a_time: false,
        one_command_per_ballot: false,
    }
}

/// The configuration: 3 replicas, 2 commands, 2 candidates, 1
/// crash-restart of any node, a duplicating network; 2 elections, no
/// heartbeat ticks (a new leader's first heartbeat is still sent). About
/// 1.1 million states, 3 minutes on 2 cores: `make model-exhaustive`.
#[test]
#[ignore = "minutes in release: make model-exhaustive"]
fn multi_paxos_exhaustive() {
    check("exhaustive multi-paxos", multi(2, 0));
}

/// The same with one election and one heartbeat tick (retransmission and
/// the leader's quorum check), small enough for every test run.
#[test]
fn multi_paxos_exhaustive_one_election() {
    check("exhaustive multi-paxos, one election", multi(1, 1));
}

/// 3 replicas, 3 commands (the last proposed after a failover), 2
/// candidates, 2 elections, one compaction at slot 1: a lagging node
/// installs the snapshot, and a leader elected after the install must not
/// lose values the installing node had accepted after the snapshot.
/// Large: more than 1.2 million states after 4 minutes, not seen to finish.
/// The only test here that catches `tests/planted/install_clears_log.patch`
/// (agreement, 22 steps; 857,353 states, 78 s in one run, 274 s in an earlier one).
#[test]
#[ignore = "minutes in release: make model-exhaustive"]
fn multi_paxos_snapshot_install() {
    check("snapshot install", snapshot(3, 2));
}

/// The snapshot model with 2 commands and 2 elections, narrowed as window
/// 1b is (module docs, "Snapshot install, two elections"): one election
/// at a time, each leader taking at most one command, so the second
/// command goes to the second leader. A lagging node installs the
/// snapshot and a leader elected later must keep what it had accepted.
#[test]
#[ignore = "minutes in release: make model-exhaustive"]
fn multi_paxos_snapshot_install_two_elections() {
    let mut p = snapshot(2, 2);
    p.one_election_at_a_time = true;
    p.one_command_per_ballot = true;
    check("snapshot install, two elections", p);
}

/// The snapshot model with 2 commands and 2 elections, narrowed only by
/// one election at a time (a candidate stands only while no node has a
/// pre-vote or election in progress: no duelling candidates). Unlike
/// `multi_paxos_snapshot_install_two_elections` a leader may take both
/// commands in one ballot; its behaviours include all of that test's.
/// On correct code: 374,232 states, 2,352,122 generated, max depth 36,
/// 68 s in release on 2 shared cores. It does NOT catch
/// `tests/planted/install_clears_log.patch` (passes on it: 382,306 states,
/// 73 s): the plant's counterexample needs a third value, a command the
/// second leader puts in the slot the installing node forgot.
#[test]
#[ignore = "a minute in release: make model-exhaustive"]
fn multi_paxos_snapshot_install_one_election_at_a_time() {
    let mut p = snapshot(2, 2);
    p.one_election_at_a_time = true;
    check("snapshot install, one election at a time", p);
}

/// The snapshot model with 2 commands and one election: installs and
/// agreement of the installed state, small enough for every test run.
#[test]
fn multi_paxos_snapshot_install_one_election() {
    check("snapshot install, one election", snapshot(2, 1));
}

/// Membership change, window 1 (module docs): 3 voters add the joiner as a
/// learner; one command, proposed once the change was decided somewhere,
/// and one election (the new epoch's, or a rival's in the old one).
#[test]
fn membership_window_1_add_learner() {
    check("membership window 1", membership(1, 1, 1, true));
}

/// Window 2: the learner is promoted (4 voters, a majority of 3).
#[test]
fn membership_window_2_promote() {
    check("membership window 2", membership(2, 1, 1, true));
}

/// Window 3: replica 1, the leader, removes itself (back to 3 voters).
#[test]
fn membership_window_3_remove() {
    check("membership window 3", membership(3, 1, 1, true));
}

/// Window 1 with the command proposed at any time, so it can be in flight
/// (or queued behind the change) while the epoch ends.
#[test]
fn membership_window_1_command_any_time() {
    check(
        "membership window 1, command any time",
        membership(1, 1, 1, false),
    );
}

/// Window 1 with two commands and two elections: the space in which a
/// replica that keeps the old configuration after the change breaks
/// agreement. Large: more than 2.5 million states after 5 minutes, not
/// seen to finish.
#[test]
#[ignore = "not seen to finish: make model-exhaustive"]
fn membership_window_1_two_elections() {
    check(
        "membership window 1, two elections",
        membership(1, 2, 2, true),
    );
}

/// Window 1b (module docs): the prefix stops once the add-learner change
/// is chosen, then two commands and two elections, one at a time, each
/// leader taking at most one command, the joiner cut off. The space in
/// which a replica that keeps voting in the old configuration after the
/// change breaks agreement (`tests/planted/`): about 416 thousand states,
/// 2 minutes on 2 cores.
#[test]
#[ignore = "minutes in release: make model-exhaustive"]
fn membership_window_1b_two_elections() {
    let mut p = membership(1, 2, 2, true);
    p.prefix_to_choice = true;
    p.changes = 0;
    p.cut_joiner = true;
    p.one_election_at_a_time = true;
    p.one_command_per_ballot = true;
    check("membership window 1b, two elections", p);
}
