//! Single-decree Paxos: one value chosen once, by the three roles of Lamport's
//! "Paxos Made Simple" as pure state machines.
//!
//! - [`Acceptor`] answers `Prepare` and `Accept` and says which [`Record`]
//!   must be durable before its answer leaves the node.
//! - [`Proposer`] runs phase 1 (prepare, collect a majority of promises) and
//!   phase 2 (accept the value of the highest-ballot accepted value reported,
//!   or its own value if none was reported), and retries with a higher ballot.
//! - [`Learner`] counts `Accepted` messages and reports the value once a
//!   majority of acceptors accepted it in the same ballot.
//! - [`SingleDecree`] puts the three roles in one node with a sans-IO driver
//!   interface (`propose`, `step`, `tick`, `poll`) and seeded retry backoff.
//!
//! Nothing here does I/O, reads a clock or draws unseeded randomness. Every
//! handler is safe to call with duplicated, reordered or stale messages.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::ballot::{Ballot, NodeId};
use super::storage::Record;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// A single-decree Paxos message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// Phase 1a: a proposer asks acceptors to promise `ballot`.
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
    },
    /// Phase 1b: the acceptor promised `ballot` and reports the value it
    /// accepted last (with its ballot), if any.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's highest-ballot accepted value.
        accepted: Option<(Ballot, Vec<u8>)>,
    },
    /// Phase 2a: a proposer asks acceptors to accept `value` in `ballot`.
    Accept {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The value proposed.
        value: Vec<u8>,
    },
    /// Phase 2b: the acceptor accepted `value` in `ballot` (sent to learners).
    Accepted {
        /// The ballot.
        ballot: Ballot,
        /// The value accepted.
        value: Vec<u8>,
    },
    /// The acceptor refused `ballot` because it promised `promised`, which
    /// is higher.
    Nack {
        /// The refused ballot.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
}

/// Deliberate protocol bugs, for tests that show a checker catches them.
/// Always `None` outside such tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Fault {
    /// Correct behaviour.
    #[default]
    None,
    /// Acceptor: accept in any ballot, even below its promise.
    ForgetPromise,
    /// Proposer: propose its own value even when a promise reports an
    /// accepted one.
    IgnoreAccepted,
}

/// The slot single-decree records use in [`Record::Accept`].
const SLOT: u64 = 0;

/// An acceptor: the highest ballot it promised and the last value it
/// accepted. Both must survive a restart: persist the [`Record`] each
/// handler returns before sending its message, and rebuild with
/// [`Acceptor::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acceptor {
    promised: Ballot,
    accepted: Option<(Ballot, Vec<u8>)>,
    fault: Fault,
}

impl Acceptor {
    /// An acceptor that has promised nothing and accepted nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The acceptor described by `records` (in the order they were
    /// persisted). `Record::Promise` raises the promise; `Record::Accept` for
    /// slot 0 with a one-value batch sets the accepted value and raises the
    /// promise to its ballot; `Chosen` and `Commit` records are ignored.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an `Accept` record of another slot or
    /// with other than one value: the records are not single-decree ones.
    pub fn restore(records: &[Record]) -> Result<Self> {
        let mut a = Acceptor::new();
        for r in records {
            match r {
                Record::Promise { ballot } => a.promised = a.promised.max(*ballot),
                Record::Accept {
                    slot: SLOT,
                    ballot,
                    batch,
                } if batch.len() == 1 => {
                    a.promised = a.promised.max(*ballot);
                    a.accepted = Some((*ballot, batch[0].clone()));
                }
                Record::Accept { slot, batch, .. } => {
                    return Err(Error::InvalidArgument(format!(
                        "not a single-decree record: accept of {} values for slot {slot}",
                        batch.len()
                    )));
                }
                Record::Chosen { .. } | Record::Commit { .. } => {}
                Record::Snapshot { .. } | Record::Membership(_) => {
                    return Err(Error::InvalidArgument(
                        "not a single-decree record: a snapshot or membership".into(),
                    ));
                }
            }
        }
        Ok(a)
    }

    /// The highest ballot promised (`Ballot::ZERO` if none).
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The last value accepted, with its ballot.
    pub fn accepted(&self) -> Option<&(Ballot, Vec<u8>)> {
        self.accepted.as_ref()
    }

    #[doc(hidden)]
    pub fn set_fault(&mut self, fault: Fault) {
        self.fault = fault;
    }

    /// Phase 1b. Promises a ballot above the current promise (returning the
    /// record to persist first), repeats the promise for a duplicate of the
    /// promised ballot (nothing new to persist), and refuses anything lower
    /// with a `Nack`.
    pub fn on_prepare(&mut self, ballot: Ballot) -> (Option<Record>, Msg) {
        if ballot > self.promised {
            self.promised = ballot;
            let promise = Msg::Promise {
                ballot,
                accepted: self.accepted.clone(),
            };
            (Some(Record::Promise { ballot }), promise)
        } else if ballot == self.promised && ballot != Ballot::ZERO {
            let promise = Msg::Promise {
                ballot,
                accepted: self.accepted.clone(),
            };
            (None, promise)
        } else {
            (None, self.nack(ballot))
        }
    }

    /// Phase 2b. Accepts `value` iff `ballot` is at least the promise (which
    /// rises to `ballot`), returning the record to persist before the
    /// `Accepted` is sent; a duplicate of the last accept needs no new
    /// record. Anything below the promise gets a `Nack`.
    pub fn on_accept(&mut self, ballot: Ballot, value: Vec<u8>) -> (Option<Record>, Msg) {
        let allowed = ballot >= self.promised || self.fault == Fault::ForgetPromise;
        if !allowed || ballot == Ballot::ZERO {
            return (None, self.nack(ballot));
        }
        let already = matches!(&self.accepted, Some((b, v)) if *b == ballot && *v == value);
        self.promised = self.promised.max(ballot);
        let record = if already {
            None
        } else {
            self.accepted = Some((ballot, value.clone()));
            Some(Record::Accept {
                slot: SLOT,
                ballot,
                batch: vec![value.clone()],
            })
        };
        (record, Msg::Accepted { ballot, value })
    }

    /// Handles `Prepare` or `Accept`; `None` for the messages acceptors do
    /// not take.
    pub fn on_message(&mut self, msg: &Msg) -> Option<(Option<Record>, Msg)> {
        match msg {
            Msg::Prepare { ballot } => Some(self.on_prepare(*ballot)),
            Msg::Accept { ballot, value } => Some(self.on_accept(*ballot, value.clone())),
            _ => None,
        }
    }

    fn nack(&self, ballot: Ballot) -> Msg {
        Msg::Nack {
            ballot,
            promised: self.promised,
        }
    }
}

/// Where a proposer is in its current ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Phase {
    /// No ballot under way: not started, or the last one was refused.
    #[default]
    Idle,
    /// Phase 1: `Prepare` sent, collecting promises.
    Preparing,
    /// Phase 2: `Accept` sent for the ballot.
    Accepting,
}

/// A proposer: its ballot, the promises collected for it, the highest
/// accepted value they reported, and its own value.
///
/// A proposer keeps no durable state of its own: each ballot it starts is
/// above every ballot it has heard of, and the ballot's node id keeps it
/// apart from other proposers. A proposer that restarts must learn a
/// ballot above its old ones before proposing again (co-locate it with an
/// acceptor and seed it with [`Proposer::observe`] of the acceptor's
/// promise, as [`SingleDecree`] does).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proposer {
    id: NodeId,
    quorum: usize,
    ballot: Ballot,
    highest_seen: Ballot,
    phase: Phase,
    promises: BTreeSet<NodeId>,
    best: Option<(Ballot, Vec<u8>)>,
    value: Option<Vec<u8>>,
    proposal: Option<Vec<u8>>,
    fault: Fault,
}

impl Proposer {
    /// A proposer with node id `id` that needs `quorum` promises (a
    /// majority of the acceptors: see [`majority`]).
    ///
    /// # Panics
    /// If `quorum` is 0.
    pub fn new(id: NodeId, quorum: usize) -> Self {
        assert!(quorum > 0, "a quorum has at least one acceptor");
        Proposer {
            id,
            quorum,
            ballot: Ballot::ZERO,
            highest_seen: Ballot::ZERO,
            phase: Phase::Idle,
            promises: BTreeSet::new(),
            best: None,
            value: None,
            proposal: None,
            fault: Fault::None,
        }
    }

    #[doc(hidden)]
    pub fn set_fault(&mut self, fault: Fault) {
        self.fault = fault;
    }

    /// This proposer's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current ballot (`Ballot::ZERO` before the first prepare).
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// Where the current ballot stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The value this proposer would propose if no promise reports one.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// The value sent in the current ballot's `Accept`, once in phase 2.
    pub fn proposal(&self) -> Option<&[u8]> {
        self.proposal.as_deref()
    }

    /// The highest ballot this proposer has heard of (its own included).
    pub fn highest_seen(&self) -> Ballot {
        self.highest_seen.max(self.ballot)
    }

    /// Sets this proposer's own value and starts a ballot: the `Prepare` to
    /// send to every acceptor.
    pub fn start(&mut self, value: Vec<u8>) -> Msg {
        self.value = Some(value);
        self.begin()
    }

    /// Starts a new ballot above every ballot heard of (a retry after a
    /// `Nack` or a timeout): the `Prepare` to send to every acceptor, or
    /// `None` if [`start`](Proposer::start) was never called.
    pub fn prepare(&mut self) -> Option<Msg> {
        self.value.as_ref()?;
        Some(self.begin())
    }

    fn begin(&mut self) -> Msg {
        self.ballot = self.highest_seen().next_for(self.id);
        self.phase = Phase::Preparing;
        self.promises.clear();
        self.best = None;
        self.proposal = None;
        Msg::Prepare {
            ballot: self.ballot,
        }
    }

    /// Renames the acceptors whose promises were counted: a model checker's
    /// symmetry reduction permutes interchangeable acceptors.
    #[doc(hidden)]
    pub fn rename_acceptors(&mut self, rename: impl Fn(NodeId) -> NodeId) {
        self.promises = self.promises.iter().map(|&a| rename(a)).collect();
    }

    /// Notes a ballot heard of elsewhere, so the next prepare exceeds it.
    pub fn observe(&mut self, ballot: Ballot) {
        self.highest_seen = self.highest_seen.max(ballot);
    }

    /// Counts a promise from acceptor `from`. Once `quorum` distinct
    /// acceptors promised the current ballot, returns the `Accept` to send
    /// to every acceptor: the value of the highest-ballot accepted value
    /// the promises reported, else this proposer's own value. Promises for
    /// other ballots, duplicates and promises after the `Accept` went out
    /// return `None`.
    pub fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Option<(Ballot, Vec<u8>)>,
    ) -> Option<Msg> {
        if self.phase != Phase::Preparing || ballot != self.ballot {
            return None;
        }
        if !self.promises.insert(from) {
            return None;
        }
        if let Some((b, v)) = accepted
            && self.best.as_ref().is_none_or(|(best, _)| b > *best)
        {
            self.best = Some((b, v));
        }
        if self.promises.len() < self.quorum {
            return None;
        }
        let adopted = match (&self.best, self.fault) {
            (Some((_, v)), f) if f != Fault::IgnoreAccepted => v.clone(),
            _ => self
                .value
                .clone()
                .expect("a preparing proposer has a value"),
        };
        self.phase = Phase::Accepting;
        self.promises.clear();
        self.best = None;
        self.proposal = Some(adopted.clone());
        Some(Msg::Accept {
            ballot: self.ballot,
            value: adopted,
        })
    }

    /// Takes a `Nack`: remembers `promised` so the next ballot exceeds it,
    /// and returns true if it refused the current ballot (which is then
    /// abandoned: the proposer is idle until [`prepare`](Proposer::prepare)).
    pub fn on_nack(&mut self, ballot: Ballot, promised: Ballot) -> bool {
        self.observe(promised);
        if ballot == self.ballot && self.phase != Phase::Idle && promised > ballot {
            self.phase = Phase::Idle;
            self.promises.clear();
            self.best = None;
            true
        } else {
            false
        }
    }

    /// Handles `Promise` or `Nack` from acceptor `from`: the `Accept` to
    /// send, if this message completed phase 1. Other messages are ignored.
    pub fn on_message(&mut self, from: NodeId, msg: &Msg) -> Option<Msg> {
        match msg {
            Msg::Promise { ballot, accepted } => self.on_promise(from, *ballot, accepted.clone()),
            Msg::Nack { ballot, promised } => {
                self.on_nack(*ballot, *promised);
                None
            }
            _ => None,
        }
    }
}

/// The size of a majority of `n` acceptors.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// A learner: counts which acceptors accepted which value in which ballot
/// and reports the value a majority accepted in one ballot. Once it has a
/// value it never reports another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Learner {
    quorum: usize,
    votes: BTreeMap<Ballot, (Vec<u8>, BTreeSet<NodeId>)>,
    chosen: Option<Vec<u8>>,
}

impl Learner {
    /// A learner that needs `quorum` acceptors to agree in one ballot.
    ///
    /// # Panics
    /// If `quorum` is 0.
    pub fn new(quorum: usize) -> Self {
        assert!(quorum > 0, "a quorum has at least one acceptor");
        Learner {
            quorum,
            votes: BTreeMap::new(),
            chosen: None,
        }
    }

    /// Counts an `Accepted` from acceptor `from`. Returns the chosen value
    /// the first time a majority accepted one value in one ballot; `None`
    /// otherwise (duplicates, later messages, or not yet a majority).
    pub fn on_accepted(&mut self, from: NodeId, ballot: Ballot, value: Vec<u8>) -> Option<Vec<u8>> {
        if self.chosen.is_some() {
            return None;
        }
        let entry = self
            .votes
            .entry(ballot)
            .or_insert_with(|| (value.clone(), BTreeSet::new()));
        // One ballot carries one value; anything else is not from a
        // correct proposer and is not counted.
        if entry.0 != value {
            return None;
        }
        entry.1.insert(from);
        if entry.1.len() >= self.quorum {
            self.votes.clear();
            self.chosen = Some(value.clone());
            return Some(value);
        }
        None
    }

    /// The chosen value, once learned.
    pub fn chosen(&self) -> Option<&[u8]> {
        self.chosen.as_deref()
    }
}

/// How a [`SingleDecree`] node behaves. Times are nanoseconds on the
/// caller's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's id; must be in `members`.
    pub id: NodeId,
    /// Every node (each is proposer, acceptor and learner), this one included.
    pub members: Vec<NodeId>,
    /// A ballot that has not chosen a value within this long is retried,
    /// with the wait doubling (up to `max_retry`) and jittered.
    pub min_retry: u64,
    /// The longest wait before a retry.
    pub max_retry: u64,
    /// Seeds the retry jitter.
    pub seed: u64,
}

impl Config {
    /// Defaults for `id` in `members`: retry after 100 ms to 3.2 s, seed 0.
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Self {
        Config {
            id,
            members,
            min_retry: 100_000_000,
            max_retry: 3_200_000_000,
            seed: 0,
        }
    }
}

/// What a [`SingleDecree`] node asks its driver to do, in `poll` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make this record durable before acting on any later output.
    Persist(Record),
    /// Send `msg` to node `to`.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Msg,
    },
    /// The value is chosen (reported once).
    Chosen(Vec<u8>),
}

/// A node playing all three roles for one value: the sans-IO shape of the
/// Multi-Paxos [`Node`](super::Node) for a single decree. Messages to itself
/// are handled inside; everything else comes out of [`poll`](Self::poll).
#[derive(Debug, Clone)]
pub struct SingleDecree {
    config: Config,
    acceptor: Acceptor,
    proposer: Proposer,
    learner: Learner,
    outputs: VecDeque<Output>,
    retry_at: Option<u64>,
    backoff: u64,
    rng: SplitMix64,
}

impl SingleDecree {
    /// A node with empty durable state.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `members` is empty, has duplicates or
    /// lacks `id`, or if `min_retry` is 0 or above `max_retry`.
    pub fn new(config: Config) -> Result<Self> {
        Self::restore(config, &[])
    }

    /// A node restarted from its persisted records (in persist order).
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`Error::InvalidArgument`] for records
    /// that are not single-decree ones.
    pub fn restore(config: Config, records: &[Record]) -> Result<Self> {
        let mut ids = config.members.clone();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() || ids.len() != config.members.len() {
            return Err(Error::InvalidArgument(
                "members must be non-empty and distinct".into(),
            ));
        }
        if !ids.contains(&config.id) {
            return Err(Error::InvalidArgument(format!(
                "node {} is not among the members",
                config.id
            )));
        }
        if config.min_retry == 0 || config.min_retry > config.max_retry {
            return Err(Error::InvalidArgument(
                "retry times must satisfy 0 < min_retry <= max_retry".into(),
            ));
        }
        let acceptor = Acceptor::restore(records)?;
        let quorum = majority(ids.len());
        let mut proposer = Proposer::new(config.id, quorum);
        // The promise covers every ballot this node ever prepared (it
        // promises its own ballots first), so new ballots exceed them.
        proposer.observe(acceptor.promised());
        let mut learner = Learner::new(quorum);
        for r in records {
            if let Record::Chosen { batch, .. } = r
                && let [v] = batch.as_slice()
            {
                learner.chosen = Some(v.clone());
            }
        }
        Ok(SingleDecree {
            rng: SplitMix64::new(config.seed ^ u64::from(config.id).rotate_left(32)),
            backoff: config.min_retry,
            config,
            acceptor,
            proposer,
            learner,
            outputs: VecDeque::new(),
            retry_at: None,
        })
    }

    /// Proposes `value` (if this node has not proposed already): starts a
    /// ballot now. Does nothing once a value is chosen.
    pub fn propose(&mut self, value: Vec<u8>, now: u64) {
        if self.learner.chosen().is_some() || self.proposer.value().is_some() {
            return;
        }
        let prepare = self.proposer.start(value);
        self.backoff = self.config.min_retry;
        self.arm(now);
        self.broadcast(prepare, now);
    }

    /// Handles `msg` from node `from`. The time is unused today (retries
    /// run from [`tick`](Self::tick)); it keeps the drivers' shape uniform.
    pub fn step(&mut self, from: NodeId, msg: Msg, _now: u64) {
        let mut queue = VecDeque::from([(from, msg)]);
        while let Some((from, msg)) = queue.pop_front() {
            for (to, reply) in self.handle(from, msg) {
                if to == self.config.id {
                    queue.push_back((to, reply));
                } else {
                    self.outputs.push_back(Output::Send { to, msg: reply });
                }
            }
        }
    }

    /// Retries the ballot if its time is up and no value is chosen.
    pub fn tick(&mut self, now: u64) {
        let due = matches!(self.retry_at, Some(t) if now >= t);
        if !due || self.learner.chosen().is_some() {
            return;
        }
        self.backoff = (self.backoff.saturating_mul(2)).min(self.config.max_retry);
        self.arm(now);
        if let Some(prepare) = self.proposer.prepare() {
            self.broadcast(prepare, now);
        }
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`tick`](Self::tick) next has work (a retry), if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.learner.chosen().is_some() {
            None
        } else {
            self.retry_at
        }
    }

    /// The chosen value, once this node learned it.
    pub fn chosen(&self) -> Option<&[u8]> {
        self.learner.chosen()
    }

    /// This node's acceptor.
    pub fn acceptor(&self) -> &Acceptor {
        &self.acceptor
    }

    /// This node's proposer.
    pub fn proposer(&self) -> &Proposer {
        &self.proposer
    }

    /// This node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The retry wait is uniform in `[backoff/2, backoff]` so competing
    /// proposers drift apart instead of preempting each other forever.
    fn arm(&mut self, now: u64) {
        let wait = self.rng.between(self.backoff / 2, self.backoff).max(1);
        self.retry_at = Some(now.saturating_add(wait));
    }

    /// Sends `msg` to every member. This node handles its own copy first, so
    /// the record of its own promise is persisted before the `Prepare`
    /// leaves: a restarted node then never reuses a ballot.
    fn broadcast(&mut self, msg: Msg, now: u64) {
        let me = self.config.id;
        self.step(me, msg.clone(), now);
        for to in self.config.members.clone() {
            if to != me {
                self.outputs.push_back(Output::Send {
                    to,
                    msg: msg.clone(),
                });
            }
        }
    }

    /// One message through the roles; the replies and their destinations.
    fn handle(&mut self, from: NodeId, msg: Msg) -> Vec<(NodeId, Msg)> {
        let mut out = Vec::new();
        match msg {
            Msg::Prepare { .. } | Msg::Accept { .. } => {
                if let Some((record, reply)) = self.acceptor.on_message(&msg) {
                    self.proposer.observe(self.acceptor.promised());
                    if let Some(r) = record {
                        self.outputs.push_back(Output::Persist(r));
                    }
                    match reply {
                        accepted @ Msg::Accepted { .. } => {
                            for &to in &self.config.members {
                                out.push((to, accepted.clone()));
                            }
                        }
                        other => out.push((from, other)),
                    }
                }
            }
            Msg::Promise { .. } => {
                if let Some(accept) = self.proposer.on_message(from, &msg) {
                    for &to in &self.config.members {
                        out.push((to, accept.clone()));
                    }
                }
            }
            Msg::Nack { ballot, promised } => {
                // The retry waits for the timer, not at once: the backoff is
                // what lets one of two competing proposers finish.
                self.proposer.on_nack(ballot, promised);
            }
            Msg::Accepted { ballot, value } => {
                if let Some(v) = self.learner.on_accepted(from, ballot, value) {
                    self.retry_at = None;
                    // Kept so a restarted node still knows the value.
                    self.outputs.push_back(Output::Persist(Record::Chosen {
                        slot: SLOT,
                        batch: vec![v.clone()],
                    }));
                    self.outputs.push_back(Output::Chosen(v));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
