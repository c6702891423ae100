//! Paxos Commit (Gray and Lamport, "Consensus on Transaction Commit",
//! 2006) as sans-IO state machines.
//!
//! Each participant's Prepared/Aborted decision is the value of its own
//! single-decree Paxos instance, run on 2F+1 acceptors; the transaction
//! commits iff every instance chooses Prepared. The participant proposes
//! its vote itself in ballot 0 (no phase 1: it is the only proposer of
//! ballot 0, and acceptors take ballot-0 proposals only from the
//! instance's own participant), so with no failures a commit costs one
//! message delay more than the votes. Acceptors send phase 2b messages to
//! the coordinator and to every participant, which learn each instance
//! from a majority. When that stalls — the coordinator died, messages were
//! lost, a participant never voted — any participant in doubt and the
//! coordinator run phase 1 with a higher ballot for the undecided
//! instances and propose Aborted unless phase 1 reveals an accepted value.
//! With at most F acceptors down, the outcome is reached without the
//! coordinator: no blocking.
//!
//! The per-instance Paxos roles are [`crate::paxos::single`]'s.

use std::collections::{BTreeMap, BTreeSet};

use super::ids::{ProcessId, TxnId};
use super::message::{Message, PaxosMsg};
use super::output::{Io, Output, TxnConfig, check_members};
use super::participant::TxnState;
use super::record::{Record, TxnStorage};
use crate::error::{Error, Result};
use crate::paxos::Ballot;
use crate::rng::SplitMix64;

type Instance = (TxnId, ProcessId);

/// A majority of `n` acceptors.
fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// A learner of one instance: counts phase 2b messages per ballot.
#[derive(Debug, Clone, Default)]
struct Learner {
    votes: BTreeMap<Ballot, (bool, BTreeSet<ProcessId>)>,
    chosen: Option<bool>,
}

impl Learner {
    fn on_accepted(&mut self, from: ProcessId, ballot: Ballot, value: bool, quorum: usize) {
        if self.chosen.is_some() {
            return;
        }
        let e = self
            .votes
            .entry(ballot)
            .or_insert_with(|| (value, BTreeSet::new()));
        if e.0 == value {
            e.1.insert(from);
            if e.1.len() >= quorum {
                self.chosen = Some(value);
            }
        }
    }
}

/// A recovery proposer for one instance (phase 1, then phase 2).
#[derive(Debug, Clone)]
struct Proposer {
    ballot: Ballot,
    promises: BTreeMap<ProcessId, Option<(Ballot, bool)>>,
    proposed: bool,
}

impl Proposer {
    /// The value to propose once a quorum promised: the highest-ballot
    /// accepted value, or Aborted when none was accepted.
    fn on_promise(
        &mut self,
        from: ProcessId,
        ballot: Ballot,
        accepted: Option<(Ballot, bool)>,
        quorum: usize,
    ) -> Option<bool> {
        if ballot != self.ballot || self.proposed {
            return None;
        }
        self.promises.insert(from, accepted);
        if self.promises.len() < quorum {
            return None;
        }
        self.proposed = true;
        Some(
            self.promises
                .values()
                .flatten()
                .max_by_key(|(b, _)| *b)
                .map(|(_, v)| *v)
                .unwrap_or(false),
        )
    }
}

/// What a coordinator or participant knows of one transaction's instances.
#[derive(Debug, Clone)]
struct Tracker {
    participants: Vec<ProcessId>,
    acceptors: Vec<ProcessId>,
    learners: BTreeMap<ProcessId, Learner>,
    proposers: BTreeMap<ProcessId, Proposer>,
}

impl Tracker {
    fn new(participants: Vec<ProcessId>, acceptors: Vec<ProcessId>) -> Self {
        Tracker {
            learners: participants
                .iter()
                .map(|p| (*p, Learner::default()))
                .collect(),
            participants,
            acceptors,
            proposers: BTreeMap::new(),
        }
    }

    /// Commit iff every instance chose Prepared; abort as soon as one
    /// chose Aborted.
    fn outcome(&self) -> Option<bool> {
        let mut all = true;
        for l in self.learners.values() {
            match l.chosen {
                Some(false) => return Some(false),
                Some(true) => {}
                None => all = false,
            }
        }
        all.then_some(true)
    }

    /// Handles a Paxos message about instance `rm`; returns the messages
    /// to send (phase 2a after a quorum of promises).
    fn on_paxos(
        &mut self,
        from: ProcessId,
        rm: ProcessId,
        msg: PaxosMsg,
        hi: &mut u64,
    ) -> Vec<PaxosMsg> {
        let q = majority(self.acceptors.len());
        if !self.acceptors.contains(&from) {
            return Vec::new();
        }
        match msg {
            PaxosMsg::Accepted { ballot, prepared } => {
                if let Some(l) = self.learners.get_mut(&rm) {
                    l.on_accepted(from, ballot, prepared, q);
                }
            }
            PaxosMsg::Promise { ballot, accepted } => {
                if let Some(p) = self.proposers.get_mut(&rm)
                    && let Some(v) = p.on_promise(from, ballot, accepted, q)
                {
                    return vec![PaxosMsg::Accept {
                        ballot,
                        prepared: v,
                    }];
                }
            }
            PaxosMsg::Nack { promised, .. } => *hi = (*hi).max(promised.round),
            _ => {}
        }
        Vec::new()
    }

    /// Instances with no chosen value.
    fn undecided(&self) -> Vec<ProcessId> {
        self.learners
            .iter()
            .filter(|(_, l)| l.chosen.is_none())
            .map(|(k, _)| *k)
            .collect()
    }
}

/// Shared by the coordinator and participants: starting recovery of every
/// undecided instance of `txn` with a fresh ballot, persisted first so it
/// is never reused after a restart.
fn start_recovery<S: TxnStorage>(
    io: &mut Io<S>,
    me: ProcessId,
    txn: TxnId,
    t: &mut Tracker,
    hi: &mut u64,
) -> Result<()> {
    let undecided = t.undecided();
    if undecided.is_empty() {
        return Ok(());
    }
    *hi += 1;
    let ballot = Ballot::new(*hi, me);
    for &rm in &undecided {
        io.record(Record::Promise { txn, rm, ballot });
    }
    io.flush()?;
    for rm in undecided {
        t.proposers.insert(
            rm,
            Proposer {
                ballot,
                promises: BTreeMap::new(),
                proposed: false,
            },
        );
        for &a in &t.acceptors {
            io.send(
                a,
                Message::Paxos {
                    txn,
                    rm,
                    msg: PaxosMsg::Prepare { ballot },
                },
            );
        }
    }
    Ok(())
}

/// The highest ballot round in `records` (this process's own ballots).
fn highest_round(records: &[Record]) -> u64 {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Promise { ballot, .. } => Some(ballot.round),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn jitter(rng: &mut SplitMix64, base: u64) -> u64 {
    base.saturating_add(rng.below(base.max(1)))
}

#[derive(Debug, Clone)]
struct CTxn {
    tracker: Tracker,
    decision: Option<bool>,
    next: u64,
}

/// The Paxos Commit coordinator (the initial leader). It begins
/// transactions, learns the instances from the acceptors and announces the
/// outcome; after `vote_timeout` it leads recovery of undecided instances.
/// It persists only the ballots it uses: its decisions are the instances',
/// which the acceptors hold.
#[derive(Debug)]
pub struct PcCoordinator<S: TxnStorage> {
    id: ProcessId,
    config: TxnConfig,
    io: Io<S>,
    txns: BTreeMap<TxnId, CTxn>,
    round: u64,
    rng: SplitMix64,
}

impl<S: TxnStorage> PcCoordinator<S> {
    /// A coordinator `id` on `storage` (which holds only its ballots).
    /// After a restart it has forgotten its transactions; their
    /// participants finish them with the acceptors.
    pub fn new(id: ProcessId, config: TxnConfig, mut storage: S, now: u64) -> Result<Self> {
        config.check()?;
        let records = storage.load()?;
        Ok(PcCoordinator {
            id,
            config,
            io: Io::new(storage),
            txns: BTreeMap::new(),
            round: highest_round(&records),
            rng: SplitMix64::new(u64::from(id) ^ now.rotate_left(17)),
        })
    }

    /// Begins `txn` among `participants` with `acceptors` (an odd number,
    /// 2F+1): sends Prepare to every participant and acceptor.
    ///
    /// Errors: `InvalidArgument` for empty or duplicate lists, an even
    /// number of acceptors, overlapping lists, or a transaction id in use.
    pub fn begin(
        &mut self,
        txn: TxnId,
        participants: Vec<ProcessId>,
        acceptors: Vec<ProcessId>,
        now: u64,
    ) -> Result<()> {
        self.io.check()?;
        check_members(&participants, "participants", self.id)?;
        check_members(&acceptors, "acceptors", self.id)?;
        if acceptors.len() % 2 == 0 {
            return Err(Error::invalid(
                "Paxos Commit needs an odd number (2F+1) of acceptors",
            ));
        }
        if participants.iter().any(|p| acceptors.contains(p)) {
            return Err(Error::invalid(
                "a process cannot be both participant and acceptor",
            ));
        }
        if self.txns.contains_key(&txn) {
            return Err(Error::invalid(format!("transaction {txn} already exists")));
        }
        let prepare = Message::Prepare {
            txn,
            participants: participants.clone(),
            acceptors: acceptors.clone(),
        };
        for &p in participants.iter().chain(&acceptors) {
            self.io.send(p, prepare.clone());
        }
        self.txns.insert(
            txn,
            CTxn {
                tracker: Tracker::new(participants, acceptors),
                decision: None,
                next: now.saturating_add(self.config.vote_timeout),
            },
        );
        Ok(())
    }

    /// Handles `message` from `from`.
    pub fn step(&mut self, from: ProcessId, message: Message, now: u64) -> Result<()> {
        self.io.check()?;
        match message {
            Message::Paxos { txn, rm, msg } => {
                let Some(t) = self.txns.get_mut(&txn) else {
                    return Ok(());
                };
                if t.decision.is_some() {
                    return Ok(());
                }
                for m in t.tracker.on_paxos(from, rm, msg, &mut self.round) {
                    for &a in &t.tracker.acceptors {
                        self.io.send(a, Message::Paxos { txn, rm, msg: m });
                    }
                }
                if let Some(commit) = t.tracker.outcome() {
                    t.decision = Some(commit);
                    for &p in &t.tracker.participants {
                        self.io.send(p, Message::Outcome { txn, commit });
                    }
                    self.io.emit(Output::Outcome { txn, commit });
                }
            }
            Message::DecisionRequest { txn } => {
                if let Some(commit) = self.txns.get(&txn).and_then(|t| t.decision) {
                    self.io.send(from, Message::Outcome { txn, commit });
                }
            }
            _ => {}
        }
        let _ = now;
        Ok(())
    }

    /// Advances time: transactions undecided past `vote_timeout` get
    /// recovery rounds every `retry_interval` (with jitter).
    pub fn tick(&mut self, now: u64) -> Result<()> {
        self.io.check()?;
        let due: Vec<TxnId> = self
            .txns
            .iter()
            .filter(|(_, t)| t.decision.is_none() && now >= t.next)
            .map(|(k, _)| *k)
            .collect();
        for txn in due {
            let t = self.txns.get_mut(&txn).expect("listed");
            t.next = now.saturating_add(jitter(&mut self.rng, self.config.retry_interval));
            start_recovery(&mut self.io, self.id, txn, &mut t.tracker, &mut self.round)?;
        }
        Ok(())
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    /// The earliest time `tick` has work to do, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.txns
            .values()
            .filter(|t| t.decision.is_none())
            .map(|t| t.next)
            .min()
    }

    /// The outcome of `txn` once learned.
    pub fn decision(&self, txn: TxnId) -> Option<bool> {
        self.txns.get(&txn).and_then(|t| t.decision)
    }

    /// Gives the storage back (to restart from it).
    pub fn into_storage(self) -> S {
        self.io.storage
    }
}

#[derive(Debug, Clone)]
enum PState {
    Asked {
        coordinator: ProcessId,
        tracker: Tracker,
    },
    Prepared {
        coordinator: ProcessId,
        tracker: Tracker,
        yes: bool,
        next: u64,
    },
    Done {
        commit: bool,
    },
}

/// A Paxos Commit participant (resource manager). It proposes its vote in
/// ballot 0 of its own instance, learns every instance from the
/// acceptors, and when in doubt leads recovery of the undecided instances.
#[derive(Debug)]
pub struct PcParticipant<S: TxnStorage> {
    id: ProcessId,
    config: TxnConfig,
    io: Io<S>,
    txns: BTreeMap<TxnId, PState>,
    round: u64,
    rng: SplitMix64,
}

impl<S: TxnStorage> PcParticipant<S> {
    /// A participant `id` on `storage`, recovering from its records: a
    /// transaction it voted on without a recorded outcome resumes at the
    /// first `tick` (it proposes its recorded vote again and recovers).
    pub fn new(id: ProcessId, config: TxnConfig, mut storage: S, now: u64) -> Result<Self> {
        config.check()?;
        let records = storage.load()?;
        let mut txns = BTreeMap::new();
        for r in &records {
            match r {
                Record::Voted {
                    txn,
                    yes,
                    coordinator,
                    participants,
                    acceptors,
                } => {
                    txns.insert(
                        *txn,
                        PState::Prepared {
                            coordinator: *coordinator,
                            tracker: Tracker::new(participants.clone(), acceptors.clone()),
                            yes: *yes,
                            next: now,
                        },
                    );
                }
                Record::Outcome { txn, commit } => {
                    txns.insert(*txn, PState::Done { commit: *commit });
                }
                _ => {}
            }
        }
        Ok(PcParticipant {
            id,
            config,
            io: Io::new(storage),
            txns,
            round: highest_round(&records),
            rng: SplitMix64::new(u64::from(id) ^ now.rotate_left(29)),
        })
    }

    /// This participant's id.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// Handles `message` from `from`.
    pub fn step(&mut self, from: ProcessId, message: Message, _now: u64) -> Result<()> {
        self.io.check()?;
        match message {
            Message::Prepare {
                txn,
                participants,
                acceptors,
            } => {
                let ok = participants.contains(&self.id)
                    && !acceptors.is_empty()
                    && acceptors.len() % 2 == 1
                    && check_members(&acceptors, "acceptors", self.id).is_ok();
                if ok && !self.txns.contains_key(&txn) {
                    self.txns.insert(
                        txn,
                        PState::Asked {
                            coordinator: from,
                            tracker: Tracker::new(participants, acceptors),
                        },
                    );
                    self.io.emit(Output::VoteRequested { txn });
                }
            }
            Message::Outcome { txn, commit } => match self.txns.get(&txn) {
                Some(PState::Prepared { yes: true, .. }) => self.finish(txn, commit)?,
                Some(PState::Done { .. }) | None => {}
                // Did not vote yes: only an abort can be real.
                Some(_) => {
                    if !commit {
                        self.finish(txn, false)?;
                    }
                }
            },
            Message::DecisionRequest { txn } => {
                if let Some(PState::Done { commit }) = self.txns.get(&txn) {
                    let commit = *commit;
                    self.io.send(from, Message::Outcome { txn, commit });
                }
            }
            Message::Paxos { txn, rm, msg } => {
                let Some(PState::Asked { tracker, .. } | PState::Prepared { tracker, .. }) =
                    self.txns.get_mut(&txn)
                else {
                    return Ok(());
                };
                for m in tracker.on_paxos(from, rm, msg, &mut self.round) {
                    for &a in &tracker.acceptors {
                        self.io.send(a, Message::Paxos { txn, rm, msg: m });
                    }
                }
                if let Some(commit) = tracker.outcome() {
                    self.finish(txn, commit)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Votes on `txn`, which must be awaiting a vote: persists the vote and
    /// proposes it (Prepared or Aborted) in ballot 0 of its own instance.
    ///
    /// Errors: `InvalidArgument` if `txn` is not awaiting a vote; `Storage`.
    pub fn vote(&mut self, txn: TxnId, yes: bool, now: u64) -> Result<()> {
        self.io.check()?;
        let Some(PState::Asked {
            coordinator,
            tracker,
        }) = self.txns.get(&txn).cloned()
        else {
            return Err(Error::invalid(format!(
                "transaction {txn} is not awaiting a vote (it is {})",
                self.state(txn).name()
            )));
        };
        self.io.record(Record::Voted {
            txn,
            yes,
            coordinator,
            participants: tracker.participants.clone(),
            acceptors: tracker.acceptors.clone(),
        });
        self.io.flush()?;
        self.propose_vote(txn, yes, &tracker.acceptors);
        let next = now.saturating_add(self.config.vote_timeout);
        self.txns.insert(
            txn,
            PState::Prepared {
                coordinator,
                tracker,
                yes,
                next,
            },
        );
        if !yes {
            // Its own instance can only choose Aborted: abort now.
            self.finish(txn, false)?;
        }
        Ok(())
    }

    fn propose_vote(&mut self, txn: TxnId, yes: bool, acceptors: &[ProcessId]) {
        for &a in acceptors {
            self.io.send(
                a,
                Message::Paxos {
                    txn,
                    rm: self.id,
                    msg: PaxosMsg::Accept {
                        ballot: Ballot::ZERO,
                        prepared: yes,
                    },
                },
            );
        }
    }

    fn finish(&mut self, txn: TxnId, commit: bool) -> Result<()> {
        self.io.record(Record::Outcome { txn, commit });
        self.io.flush()?;
        self.txns.insert(txn, PState::Done { commit });
        self.io.emit(Output::Outcome { txn, commit });
        Ok(())
    }

    /// Advances time: a transaction in doubt past its deadline proposes its
    /// vote again, asks the coordinator, and leads recovery of the
    /// undecided instances (repeated every `retry_interval`, with jitter).
    pub fn tick(&mut self, now: u64) -> Result<()> {
        self.io.check()?;
        let due: Vec<TxnId> = self
            .txns
            .iter()
            .filter(|(_, s)| matches!(s, PState::Prepared { next, .. } if now >= *next))
            .map(|(k, _)| *k)
            .collect();
        for txn in due {
            let Some(PState::Prepared {
                coordinator,
                tracker,
                yes,
                next,
            }) = self.txns.get_mut(&txn)
            else {
                continue;
            };
            *next = now.saturating_add(jitter(&mut self.rng, self.config.retry_interval));
            let (coordinator, yes, acceptors) = (*coordinator, *yes, tracker.acceptors.clone());
            start_recovery(&mut self.io, self.id, txn, tracker, &mut self.round)?;
            self.propose_vote(txn, yes, &acceptors);
            self.io.send(coordinator, Message::DecisionRequest { txn });
        }
        Ok(())
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    /// The earliest time `tick` has work to do, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.txns
            .values()
            .filter_map(|s| match s {
                PState::Prepared { next, .. } => Some(*next),
                _ => None,
            })
            .min()
    }

    /// Where this participant stands on `txn`.
    pub fn state(&self, txn: TxnId) -> TxnState {
        match self.txns.get(&txn) {
            None => TxnState::Unknown,
            Some(PState::Asked { .. }) => TxnState::AwaitingVote,
            Some(PState::Prepared { .. }) => TxnState::Prepared,
            Some(PState::Done { commit }) => TxnState::done(*commit),
        }
    }

    /// Gives the storage back (to restart from it).
    pub fn into_storage(self) -> S {
        self.io.storage
    }
}

/// One instance's acceptor state.
#[derive(Debug, Clone, Copy, Default)]
struct AcceptorState {
    promised: Ballot,
    accepted: Option<(Ballot, bool)>,
}

/// A Paxos Commit acceptor: one single-decree acceptor per instance
/// (transaction, participant), persisting promises and accepts before it
/// answers. It sends phase 2b messages to the proposer and to the
/// transaction's coordinator and participants when it knows them (from the
/// coordinator's Prepare; not durable: after a restart it answers the
/// proposer only, and recovery fills the gap).
#[derive(Debug)]
pub struct PcAcceptor<S: TxnStorage> {
    id: ProcessId,
    io: Io<S>,
    instances: BTreeMap<Instance, AcceptorState>,
    listeners: BTreeMap<TxnId, Vec<ProcessId>>,
}

impl<S: TxnStorage> PcAcceptor<S> {
    /// An acceptor `id` on `storage`, recovering its promises and accepts.
    pub fn new(id: ProcessId, mut storage: S) -> Result<Self> {
        let mut instances: BTreeMap<Instance, AcceptorState> = BTreeMap::new();
        for r in storage.load()? {
            match r {
                Record::Promise { txn, rm, ballot } => {
                    let s = instances.entry((txn, rm)).or_default();
                    s.promised = s.promised.max(ballot);
                }
                Record::Accept {
                    txn,
                    rm,
                    ballot,
                    prepared,
                } => {
                    let s = instances.entry((txn, rm)).or_default();
                    s.promised = s.promised.max(ballot);
                    s.accepted = Some((ballot, prepared));
                }
                _ => {}
            }
        }
        Ok(PcAcceptor {
            id,
            io: Io::new(storage),
            instances,
            listeners: BTreeMap::new(),
        })
    }

    /// This acceptor's id.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// Handles `message` from `from`.
    pub fn step(&mut self, from: ProcessId, message: Message, _now: u64) -> Result<()> {
        self.io.check()?;
        match message {
            Message::Prepare {
                txn,
                mut participants,
                ..
            } => {
                participants.push(from);
                self.listeners.insert(txn, participants);
            }
            Message::Paxos { txn, rm, msg } => self.on_paxos(from, txn, rm, msg)?,
            _ => {}
        }
        Ok(())
    }

    fn on_paxos(
        &mut self,
        from: ProcessId,
        txn: TxnId,
        rm: ProcessId,
        msg: PaxosMsg,
    ) -> Result<()> {
        let s = self.instances.entry((txn, rm)).or_default();
        let reply = |m| Message::Paxos { txn, rm, msg: m };
        match msg {
            PaxosMsg::Prepare { ballot } => {
                if ballot.round == 0 {
                    return Ok(()); // ballot 0 belongs to the participant, without phase 1
                }
                if ballot < s.promised {
                    let promised = s.promised;
                    self.io
                        .send(from, reply(PaxosMsg::Nack { ballot, promised }));
                    return Ok(());
                }
                let accepted = s.accepted;
                if ballot > s.promised {
                    s.promised = ballot;
                    self.io.record(Record::Promise { txn, rm, ballot });
                    self.io.flush()?;
                }
                self.io
                    .send(from, reply(PaxosMsg::Promise { ballot, accepted }));
            }
            PaxosMsg::Accept { ballot, prepared } => {
                if ballot == Ballot::ZERO && from != rm {
                    return Ok(()); // only the participant proposes in ballot 0
                }
                if ballot < s.promised {
                    let promised = s.promised;
                    self.io
                        .send(from, reply(PaxosMsg::Nack { ballot, promised }));
                    return Ok(());
                }
                if s.accepted.is_some_and(|(b, _)| b == ballot) {
                    // A repeat: answer again with what was accepted.
                } else {
                    s.promised = ballot;
                    s.accepted = Some((ballot, prepared));
                    self.io.record(Record::Accept {
                        txn,
                        rm,
                        ballot,
                        prepared,
                    });
                    self.io.flush()?;
                }
                let (ballot, prepared) = s.accepted.expect("accepted above");
                let mut to: Vec<ProcessId> = self.listeners.get(&txn).cloned().unwrap_or_default();
                if !to.contains(&from) {
                    to.push(from);
                }
                for p in to {
                    self.io
                        .send(p, reply(PaxosMsg::Accepted { ballot, prepared }));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    /// Gives the storage back (to restart from it).
    pub fn into_storage(self) -> S {
        self.io.storage
    }
}
