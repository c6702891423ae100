//! Paxos Commit (Gray and Lamport, "Consensus on Transaction Commit",
//! 2006) as sans-IO state machines.
//!
//! Each participant's Prepared/Aborted decision is the value of its own
//! single-decree Paxos instance, run on 2F+1 acceptors; the transaction
//! commits iff every instance chooses Prepared. The participant proposes
//! its vote itself in its instance's lowest ballot without phase 1 (Gray
//! and Lamport's ballot 0; round 1 here, as `paxos::single` never accepts
//! `Ballot::ZERO`): it is the only proposer of that ballot, acceptors take
//! it only from the instance's own participant, and recovery ballots are
//! all higher. With no failures a commit costs one message delay more
//! than the votes. Acceptors send phase 2b messages to
//! the coordinator and to every participant, which learn each instance
//! from a majority. When that stalls — the coordinator died, messages were
//! lost, a participant never voted — any participant in doubt and the
//! coordinator run phase 1 with a higher ballot for the undecided
//! instances and propose Aborted unless phase 1 reveals an accepted value.
//! With at most F acceptors down, the outcome is reached without the
//! coordinator: no blocking.
//!
//! The per-instance Paxos roles — acceptor, recovery proposer, learner —
//! are [`crate::paxos::single`]'s; this module only routes their messages
//! by (transaction, participant) and persists their records.

use std::collections::BTreeMap;

use super::ids::{ProcessId, TxnId};
use super::message::{Message, PaxosMsg};
use super::output::{Io, Output, TxnConfig, check_members};
use super::participant::TxnState;
use super::record::{Record, TxnStorage};
use crate::error::{Error, Result};
use crate::paxos::{Ballot, Record as PaxosRecord, single};
use crate::rng::SplitMix64;

type Instance = (TxnId, ProcessId);

/// An instance's value as `paxos::single` carries it: one byte, 1 =
/// Prepared, 0 = Aborted.
fn value(prepared: bool) -> Vec<u8> {
    vec![prepared as u8]
}

/// The instance value in `v`, if it is one (only 0 and 1 are).
fn prepared_of(v: &[u8]) -> Option<bool> {
    match v {
        [0] => Some(false),
        [1] => Some(true),
        _ => None,
    }
}

/// The ballot in which participant `rm` proposes its own vote without
/// phase 1 (Gray and Lamport's ballot 0; `paxos::single`'s acceptors never
/// accept `Ballot::ZERO`, so round 1 plays its part). Skipping phase 1 is
/// safe because no lower ballot is ever used in instance `rm`: round-1
/// ballots of other nodes are refused there, and recovery ballots start
/// above [`recovery_floor`].
fn fast_ballot(rm: ProcessId) -> Ballot {
    Ballot::new(1, rm)
}

/// Every recovery proposer observes this first, so its ballots are in
/// round 2 or above: above every participant's fast ballot.
fn recovery_floor() -> Ballot {
    Ballot::new(1, ProcessId::MAX)
}

/// `paxos::single`'s message for one of ours.
fn to_single(m: PaxosMsg) -> single::Msg {
    match m {
        PaxosMsg::Prepare { ballot } => single::Msg::Prepare { ballot },
        PaxosMsg::Promise { ballot, accepted } => single::Msg::Promise {
            ballot,
            accepted: accepted.map(|(b, v)| (b, value(v))),
        },
        PaxosMsg::Accept { ballot, prepared } => single::Msg::Accept {
            ballot,
            value: value(prepared),
        },
        PaxosMsg::Accepted { ballot, prepared } => single::Msg::Accepted {
            ballot,
            value: value(prepared),
        },
        PaxosMsg::Nack { ballot, promised } => single::Msg::Nack { ballot, promised },
    }
}

/// Ours for `paxos::single`'s; `None` if a value is not an instance value
/// (no role here produces one).
fn from_single(m: single::Msg) -> Option<PaxosMsg> {
    Some(match m {
        single::Msg::Prepare { ballot } => PaxosMsg::Prepare { ballot },
        single::Msg::Promise { ballot, accepted } => PaxosMsg::Promise {
            ballot,
            accepted: match accepted {
                None => None,
                Some((b, v)) => Some((b, prepared_of(&v)?)),
            },
        },
        single::Msg::Accept { ballot, value } => PaxosMsg::Accept {
            ballot,
            prepared: prepared_of(&value)?,
        },
        single::Msg::Accepted { ballot, value } => PaxosMsg::Accepted {
            ballot,
            prepared: prepared_of(&value)?,
        },
        single::Msg::Nack { ballot, promised } => PaxosMsg::Nack { ballot, promised },
    })
}

/// What a coordinator or participant knows of one transaction's instances:
/// a `paxos::single` learner per instance, and a recovery proposer for each
/// instance it is recovering.
#[derive(Debug, Clone)]
struct Tracker {
    participants: Vec<ProcessId>,
    acceptors: Vec<ProcessId>,
    learners: BTreeMap<ProcessId, single::Learner>,
    proposers: BTreeMap<ProcessId, single::Proposer>,
}

impl Tracker {
    fn new(participants: Vec<ProcessId>, acceptors: Vec<ProcessId>) -> Self {
        let q = single::majority(acceptors.len());
        Tracker {
            learners: participants
                .iter()
                .map(|p| (*p, single::Learner::new(q)))
                .collect(),
            participants,
            acceptors,
            proposers: BTreeMap::new(),
        }
    }

    fn chosen(&self, rm: ProcessId) -> Option<bool> {
        self.learners.get(&rm)?.chosen().and_then(prepared_of)
    }

    /// Commit iff every instance chose Prepared; abort as soon as one
    /// chose Aborted.
    fn outcome(&self) -> Option<bool> {
        let mut all = true;
        for &rm in self.learners.keys() {
            match self.chosen(rm) {
                Some(false) => return Some(false),
                Some(true) => {}
                None => all = false,
            }
        }
        all.then_some(true)
    }

    /// Handles a Paxos message from acceptor `from` about instance `rm`;
    /// returns the phase 2a message to send to every acceptor when it
    /// completes a recovery proposer's phase 1. `hi` keeps the highest
    /// round heard of, for the next ballot.
    fn on_paxos(
        &mut self,
        from: ProcessId,
        rm: ProcessId,
        msg: PaxosMsg,
        hi: &mut u64,
    ) -> Option<PaxosMsg> {
        if !self.acceptors.contains(&from) {
            return None;
        }
        match msg {
            PaxosMsg::Accepted { ballot, prepared } => {
                if let Some(l) = self.learners.get_mut(&rm) {
                    l.on_accepted(from, ballot, value(prepared));
                }
                None
            }
            PaxosMsg::Promise { .. } | PaxosMsg::Nack { .. } => {
                if let PaxosMsg::Nack { promised, .. } = msg {
                    *hi = (*hi).max(promised.round);
                }
                let p = self.proposers.get_mut(&rm)?;
                p.on_message(from, &to_single(msg)).and_then(from_single)
            }
            _ => None,
        }
    }

    /// Instances with no chosen value.
    fn undecided(&self) -> Vec<ProcessId> {
        self.learners
            .keys()
            .copied()
            .filter(|rm| self.chosen(*rm).is_none())
            .collect()
    }
}

/// Starts a recovery ballot for every undecided instance of `txn`: a
/// `paxos::single` proposer whose own value is Aborted (or, for the
/// caller's own instance, its vote), with a ballot above every one it used
/// before — persisted before the Prepare leaves, so a restart never
/// reuses it.
fn start_recovery<S: TxnStorage>(
    io: &mut Io<S>,
    me: ProcessId,
    txn: TxnId,
    t: &mut Tracker,
    hi: &mut u64,
    my_vote: Option<bool>,
) -> Result<()> {
    let undecided = t.undecided();
    if undecided.is_empty() {
        return Ok(());
    }
    let q = single::majority(t.acceptors.len());
    let mut prepares = Vec::new();
    for rm in undecided {
        let p = t
            .proposers
            .entry(rm)
            .or_insert_with(|| single::Proposer::new(me, q));
        p.observe(recovery_floor());
        p.observe(Ballot::new(*hi, ProcessId::MAX));
        let own = if rm == me {
            my_vote.unwrap_or(false)
        } else {
            false
        };
        let msg = p.start(value(own));
        let ballot = p.ballot();
        *hi = (*hi).max(ballot.round);
        io.record(Record::Promise { txn, rm, ballot });
        prepares.push((rm, msg));
    }
    io.flush()?;
    for (rm, msg) in prepares {
        let Some(msg) = from_single(msg) else {
            continue;
        };
        for &a in &t.acceptors {
            io.send(a, Message::Paxos { txn, rm, msg });
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
        if acceptors.len().is_multiple_of(2) {
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
    pub fn step(&mut self, from: ProcessId, message: Message, _now: u64) -> Result<()> {
        self.io.check()?;
        match message {
            Message::Paxos { txn, rm, msg } => {
                let Some(t) = self.txns.get_mut(&txn) else {
                    return Ok(());
                };
                if t.decision.is_some() {
                    return Ok(());
                }
                if let Some(m) = t.tracker.on_paxos(from, rm, msg, &mut self.round) {
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
            start_recovery(
                &mut self.io,
                self.id,
                txn,
                &mut t.tracker,
                &mut self.round,
                None,
            )?;
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
/// the fast ballot of its own instance, learns every instance from the
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
                if let Some(m) = tracker.on_paxos(from, rm, msg, &mut self.round) {
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
    /// proposes it (Prepared or Aborted) in the fast ballot of its own instance.
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
                        ballot: fast_ballot(self.id),
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
            start_recovery(
                &mut self.io,
                self.id,
                txn,
                tracker,
                &mut self.round,
                Some(yes),
            )?;
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

/// A Paxos Commit acceptor: one `paxos::single` acceptor per instance
/// (transaction, participant), persisting the records it asks for before
/// answering. It sends phase 2b messages to the proposer and to the
/// transaction's coordinator and participants when it knows them (from the
/// coordinator's Prepare; not durable: after a restart it answers the
/// proposer only, and recovery fills the gap).
#[derive(Debug)]
pub struct PcAcceptor<S: TxnStorage> {
    id: ProcessId,
    io: Io<S>,
    instances: BTreeMap<Instance, single::Acceptor>,
    listeners: BTreeMap<TxnId, Vec<ProcessId>>,
}

impl<S: TxnStorage> PcAcceptor<S> {
    /// An acceptor `id` on `storage`, recovering its promises and accepts.
    pub fn new(id: ProcessId, mut storage: S) -> Result<Self> {
        let mut per: BTreeMap<Instance, Vec<PaxosRecord>> = BTreeMap::new();
        for r in storage.load()? {
            match r {
                Record::Promise { txn, rm, ballot } => {
                    per.entry((txn, rm))
                        .or_default()
                        .push(PaxosRecord::Promise { ballot });
                }
                Record::Accept {
                    txn,
                    rm,
                    ballot,
                    prepared,
                } => per.entry((txn, rm)).or_default().push(PaxosRecord::Accept {
                    slot: 0,
                    ballot,
                    batch: vec![value(prepared)],
                }),
                _ => {}
            }
        }
        let instances = per
            .into_iter()
            .map(|(k, rs)| Ok((k, single::Acceptor::restore(&rs)?)))
            .collect::<Result<_>>()?;
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
                // Votes that arrived before the Prepare were answered to
                // their proposer only: tell everyone else now.
                for ((_, rm), a) in self.instances.range((txn, 0)..=(txn, ProcessId::MAX)) {
                    let Some((ballot, v)) = a.accepted() else {
                        continue;
                    };
                    let Some(prepared) = prepared_of(v) else {
                        continue;
                    };
                    for &p in &participants {
                        self.io.send(
                            p,
                            Message::Paxos {
                                txn,
                                rm: *rm,
                                msg: PaxosMsg::Accepted {
                                    ballot: *ballot,
                                    prepared,
                                },
                            },
                        );
                    }
                }
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
        match msg {
            // Round 1 is the participant's own, without phase 1.
            PaxosMsg::Prepare { ballot } if ballot.round <= 1 => return Ok(()),
            PaxosMsg::Accept { ballot, .. }
                if ballot.round <= 1 && (ballot != fast_ballot(rm) || from != rm) =>
            {
                return Ok(());
            }
            PaxosMsg::Prepare { .. } | PaxosMsg::Accept { .. } => {}
            _ => return Ok(()),
        }
        let acceptor = self.instances.entry((txn, rm)).or_default();
        let Some((record, reply)) = acceptor.on_message(&to_single(msg)) else {
            return Ok(());
        };
        match record {
            Some(PaxosRecord::Promise { ballot }) => {
                self.io.record(Record::Promise { txn, rm, ballot });
            }
            Some(PaxosRecord::Accept { ballot, batch, .. }) => {
                let prepared = batch.first().and_then(|v| prepared_of(v)).unwrap_or(false);
                self.io.record(Record::Accept {
                    txn,
                    rm,
                    ballot,
                    prepared,
                });
            }
            _ => {}
        }
        self.io.flush()?;
        let Some(reply) = from_single(reply) else {
            return Ok(());
        };
        let mut to = vec![from];
        if matches!(reply, PaxosMsg::Accepted { .. }) {
            for &p in self.listeners.get(&txn).into_iter().flatten() {
                if !to.contains(&p) {
                    to.push(p);
                }
            }
        }
        for p in to {
            self.io.send(
                p,
                Message::Paxos {
                    txn,
                    rm,
                    msg: reply,
                },
            );
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
