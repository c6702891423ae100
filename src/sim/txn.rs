//! Simulated atomic commitment: a coordinator, participants (and, for Paxos
//! Commit, acceptors) on a fault-injecting [`Network`], with crashes and
//! restarts from durable records, and checkers for the properties every
//! run must keep.
//!
//! - **Atomicity**: no transaction is committed at one process and aborted
//!   at another — across crashes, restarts and the whole run.
//! - **Validity**: a transaction commits only if every participant voted yes.
//! - **Agreement per instance** (Paxos Commit): no two processes learn
//!   different values for one participant's instance.
//!
//! Termination is a liveness property and is checked where it must hold:
//! at the end of a random run, after every process is back and the network
//! is reliable, no participant that voted yes is still in doubt; and in
//! [`blocking_scenario`], which crashes the coordinator for good just after
//! every participant voted yes — two-phase commit stays blocked, Paxos
//! Commit with F = 1 and one acceptor down as well decides.
//!
//! Process ids: the coordinator is 0, participants 1..=n, acceptors
//! n+1..=n+2F+1.

use std::collections::{BTreeMap, BTreeSet};

use super::net::{NetConfig, NetStats, Network};
use crate::error::{Error, Result};
use crate::paxos::Ballot;
use crate::rng::SplitMix64;
use crate::txn::paxos_commit::{PcAcceptor, PcCoordinator, PcParticipant};
use crate::txn::{
    Coordinator, MemoryTxnStorage, Message, Output, Participant, PaxosMsg, ProcessId, TxnConfig,
    TxnId, TxnState,
};

/// Which atomic commitment protocol to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Two-phase commit with cooperative termination.
    TwoPhaseCommit,
    /// Paxos Commit with 2F+1 acceptors.
    PaxosCommit {
        /// How many acceptor failures it tolerates.
        f: usize,
    },
}

impl Protocol {
    /// "2pc" or "paxos-commit".
    pub fn name(self) -> &'static str {
        match self {
            Protocol::TwoPhaseCommit => "2pc",
            Protocol::PaxosCommit { .. } => "paxos-commit",
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// How many participants (1..=64).
    pub participants: usize,
    /// The processes' timing.
    pub txn: TxnConfig,
    /// The network's faults.
    pub net: NetConfig,
}

impl SimConfig {
    /// `participants` participants on a network with 1–5 ms delays and no
    /// loss, 2PC timing of 200 ms votes and 50 ms retries.
    pub fn new(protocol: Protocol, participants: usize) -> Self {
        SimConfig {
            protocol,
            participants,
            txn: TxnConfig {
                vote_timeout: 200 * MS,
                retry_interval: 50 * MS,
                cooperative: true,
            },
            net: NetConfig {
                min_delay: MS,
                max_delay: 5 * MS,
                loss_per_million: 0,
                duplicate_per_million: 0,
            },
        }
    }
}

const MS: u64 = 1_000_000;

/// A property a run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// "atomicity", "validity", "agreement" or "termination".
    pub property: &'static str,
    /// What happened.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} violated: {}", self.property, self.detail)
    }
}

enum Proc {
    Coord(Coordinator<MemoryTxnStorage>),
    Part(Participant<MemoryTxnStorage>),
    PcCoord(PcCoordinator<MemoryTxnStorage>),
    PcPart(PcParticipant<MemoryTxnStorage>),
    PcAcc(PcAcceptor<MemoryTxnStorage>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Coordinator,
    Participant,
    Acceptor,
}

struct Slot {
    role: Role,
    proc: Option<Proc>,
    /// The durable records while the process is down.
    disk: Option<MemoryTxnStorage>,
}

/// Counts of the faults a simulation injected and what it decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Process crashes.
    pub crashes: u64,
    /// Process restarts.
    pub restarts: u64,
    /// Messages that reached a crashed process (and were lost).
    pub to_crashed: u64,
    /// Transactions begun.
    pub begun: u64,
    /// What the network did.
    pub net: NetStats,
}

/// A deterministic simulation of one coordinator, its participants and
/// (for Paxos Commit) its acceptors.
pub struct CommitSim {
    config: SimConfig,
    net: Network<Message>,
    now: u64,
    slots: BTreeMap<ProcessId, Slot>,
    /// Votes each participant will cast when asked, per transaction.
    planned: BTreeMap<(TxnId, ProcessId), bool>,
    /// Votes cast.
    votes: BTreeMap<(TxnId, ProcessId), bool>,
    /// Every outcome reported: (txn, process) → commit, first report kept.
    outcomes: BTreeMap<(TxnId, ProcessId), bool>,
    /// Paxos Commit: who accepted what in each ballot of each instance.
    accepted: BTreeMap<(TxnId, ProcessId, Ballot), (bool, BTreeSet<ProcessId>)>,
    /// Paxos Commit: the value each instance chose (by a majority).
    chosen: BTreeMap<(TxnId, ProcessId), bool>,
    participants_of: BTreeMap<TxnId, Vec<ProcessId>>,
    violation: Option<Violation>,
    /// Crash the coordinator (for good) once every participant of a
    /// transaction has voted yes.
    crash_coordinator_after_votes: bool,
    stats: SimStats,
    rng: SplitMix64,
}

impl CommitSim {
    /// A simulation with every process up and no transaction begun; faults
    /// and vote choices are drawn from `seed`.
    ///
    /// Errors: `InvalidArgument` for 0 or more than 64 participants, more
    /// than 3 tolerated acceptor failures, or bad timing.
    pub fn new(config: SimConfig, seed: u64) -> Result<Self> {
        config.txn.check()?;
        if !(1..=64).contains(&config.participants) {
            return Err(Error::invalid("participants must be in 1..=64"));
        }
        let mut slots = BTreeMap::new();
        let n = config.participants as ProcessId;
        slots.insert(0, Slot::new(Role::Coordinator));
        for p in 1..=n {
            slots.insert(p, Slot::new(Role::Participant));
        }
        if let Protocol::PaxosCommit { f } = config.protocol {
            if f > 3 {
                return Err(Error::invalid("f must be in 0..=3"));
            }
            for a in 0..(2 * f + 1) as ProcessId {
                slots.insert(n + 1 + a, Slot::new(Role::Acceptor));
            }
        }
        let mut sim = CommitSim {
            net: Network::new(config.net.clone(), seed),
            config,
            now: 0,
            slots,
            planned: BTreeMap::new(),
            votes: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            accepted: BTreeMap::new(),
            chosen: BTreeMap::new(),
            participants_of: BTreeMap::new(),
            violation: None,
            crash_coordinator_after_votes: false,
            stats: SimStats::default(),
            rng: SplitMix64::new(seed ^ 0x7478_6e5f_7369_6d00),
        };
        let ids: Vec<ProcessId> = sim.slots.keys().copied().collect();
        for id in ids {
            sim.start(id)?;
        }
        Ok(sim)
    }

    /// The coordinator's id (0).
    pub fn coordinator(&self) -> ProcessId {
        0
    }

    /// The participants' ids.
    pub fn participants(&self) -> Vec<ProcessId> {
        self.ids(Role::Participant)
    }

    /// The acceptors' ids (empty for 2PC).
    pub fn acceptors(&self) -> Vec<ProcessId> {
        self.ids(Role::Acceptor)
    }

    fn ids(&self, role: Role) -> Vec<ProcessId> {
        self.slots
            .iter()
            .filter(|(_, s)| s.role == role)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The simulated time, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// What was injected and done so far.
    pub fn stats(&self) -> SimStats {
        SimStats {
            net: self.net.stats(),
            ..self.stats
        }
    }

    /// The network, to change its faults or partition it.
    pub fn network(&mut self) -> &mut Network<Message> {
        &mut self.net
    }

    /// Crash the coordinator for good as soon as every participant of a
    /// transaction has voted yes (before it can announce anything).
    pub fn crash_coordinator_after_votes(&mut self, on: bool) {
        self.crash_coordinator_after_votes = on;
    }

    /// Begins `txn` at the coordinator; participant `i` will vote `votes[i]`
    /// when asked.
    ///
    /// Errors: `InvalidArgument` if `votes` does not have one entry per
    /// participant, the coordinator is down, or `txn` was begun before.
    pub fn begin(&mut self, txn: TxnId, votes: &[bool]) -> Result<()> {
        let parts = self.participants();
        if votes.len() != parts.len() {
            return Err(Error::invalid(format!(
                "{} votes for {} participants",
                votes.len(),
                parts.len()
            )));
        }
        let acceptors = self.acceptors();
        let now = self.now;
        let Some(proc) = self.slots.get_mut(&0).and_then(|s| s.proc.as_mut()) else {
            return Err(Error::invalid("the coordinator is down"));
        };
        match proc {
            Proc::Coord(c) => c.begin(txn, parts.clone(), now)?,
            Proc::PcCoord(c) => c.begin(txn, parts.clone(), acceptors, now)?,
            _ => unreachable!("process 0 is the coordinator"),
        }
        for (p, v) in parts.iter().zip(votes) {
            self.planned.insert((txn, *p), *v);
        }
        self.participants_of.insert(txn, parts);
        self.stats.begun += 1;
        self.drain(0);
        Ok(())
    }

    /// Crashes process `id`: its volatile state and the messages in flight
    /// to and from it are lost; its synced records survive.
    ///
    /// Errors: `InvalidArgument` for an unknown or already crashed process.
    pub fn crash(&mut self, id: ProcessId) -> Result<()> {
        let slot = self
            .slots
            .get_mut(&id)
            .ok_or_else(|| Error::invalid(format!("no process {id}")))?;
        let proc = slot
            .proc
            .take()
            .ok_or_else(|| Error::invalid(format!("process {id} is already down")))?;
        let mut disk = match proc {
            Proc::Coord(c) => c.into_storage(),
            Proc::Part(p) => p.into_storage(),
            Proc::PcCoord(c) => c.into_storage(),
            Proc::PcPart(p) => p.into_storage(),
            Proc::PcAcc(a) => a.into_storage(),
        };
        disk.crash();
        slot.disk = Some(disk);
        self.net.drop_node(id);
        self.stats.crashes += 1;
        Ok(())
    }

    /// Restarts a crashed process from its records.
    ///
    /// Errors: `InvalidArgument` for an unknown or running process.
    pub fn restart(&mut self, id: ProcessId) -> Result<()> {
        let slot = self
            .slots
            .get(&id)
            .ok_or_else(|| Error::invalid(format!("no process {id}")))?;
        if slot.proc.is_some() {
            return Err(Error::invalid(format!("process {id} is running")));
        }
        self.start(id)?;
        self.stats.restarts += 1;
        Ok(())
    }

    /// Whether process `id` is running.
    pub fn is_up(&self, id: ProcessId) -> bool {
        self.slots.get(&id).is_some_and(|s| s.proc.is_some())
    }

    fn start(&mut self, id: ProcessId) -> Result<()> {
        let cfg = self.config.txn;
        let now = self.now;
        let slot = self.slots.get_mut(&id).expect("known id");
        let disk = slot.disk.take().unwrap_or_default();
        let proc = match (slot.role, self.config.protocol) {
            (Role::Coordinator, Protocol::TwoPhaseCommit) => {
                Proc::Coord(Coordinator::new(id, cfg, disk, now)?)
            }
            (Role::Participant, Protocol::TwoPhaseCommit) => {
                Proc::Part(Participant::new(id, cfg, disk, now)?)
            }
            (Role::Coordinator, Protocol::PaxosCommit { .. }) => {
                Proc::PcCoord(PcCoordinator::new(id, cfg, disk, now)?)
            }
            (Role::Participant, Protocol::PaxosCommit { .. }) => {
                Proc::PcPart(PcParticipant::new(id, cfg, disk, now)?)
            }
            (Role::Acceptor, _) => Proc::PcAcc(PcAcceptor::new(id, disk)?),
        };
        slot.proc = Some(proc);
        self.drain(id);
        Ok(())
    }

    /// Where participant `id` stands on `txn` (`Unknown` while it is down
    /// or for a process that is not a participant).
    pub fn state(&self, id: ProcessId, txn: TxnId) -> TxnState {
        match self.slots.get(&id).and_then(|s| s.proc.as_ref()) {
            Some(Proc::Part(p)) => p.state(txn),
            Some(Proc::PcPart(p)) => p.state(txn),
            _ => TxnState::Unknown,
        }
    }

    /// The outcome of `txn` as first reported by process `id`, if any
    /// (kept across its crashes).
    pub fn outcome(&self, id: ProcessId, txn: TxnId) -> Option<bool> {
        self.outcomes.get(&(txn, id)).copied()
    }

    /// Participants of `txn` that voted yes and do not know the outcome
    /// (down participants count by their durable state, as they would be
    /// after a restart).
    pub fn in_doubt(&self, txn: TxnId) -> Vec<ProcessId> {
        self.participants_of
            .get(&txn)
            .map(|ps| {
                ps.iter()
                    .copied()
                    .filter(|p| {
                        self.votes.get(&(txn, *p)) == Some(&true)
                            && !self.outcomes.contains_key(&(txn, *p))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs the simulation for `duration` nanoseconds of simulated time.
    pub fn run_for(&mut self, duration: u64) {
        let end = self.now.saturating_add(duration);
        loop {
            let next = [self.net.next_arrival(), self.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.step_once();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn next_deadline(&self) -> Option<u64> {
        self.slots
            .values()
            .filter_map(|s| match s.proc.as_ref()? {
                Proc::Coord(c) => c.next_deadline(),
                Proc::Part(p) => p.next_deadline(),
                Proc::PcCoord(c) => c.next_deadline(),
                Proc::PcPart(p) => p.next_deadline(),
                Proc::PcAcc(_) => None,
            })
            .min()
    }

    fn step_once(&mut self) {
        let now = self.now;
        while let Some((from, to, msg)) = self.net.deliver_due(now) {
            let Some(proc) = self.slots.get_mut(&to).and_then(|s| s.proc.as_mut()) else {
                self.stats.to_crashed += 1;
                continue;
            };
            // Errors here can only be storage failures, which memory
            // storage does not have.
            let r = match proc {
                Proc::Coord(c) => c.step(from, msg, now),
                Proc::Part(p) => p.step(from, msg, now),
                Proc::PcCoord(c) => c.step(from, msg, now),
                Proc::PcPart(p) => p.step(from, msg, now),
                Proc::PcAcc(a) => a.step(from, msg, now),
            };
            r.expect("memory storage does not fail");
            self.drain(to);
        }
        let ids: Vec<ProcessId> = self.slots.keys().copied().collect();
        for id in ids {
            let Some(proc) = self.slots.get_mut(&id).and_then(|s| s.proc.as_mut()) else {
                continue;
            };
            let r = match proc {
                Proc::Coord(c) if c.next_deadline().is_some_and(|d| d <= now) => c.tick(now),
                Proc::Part(p) if p.next_deadline().is_some_and(|d| d <= now) => p.tick(now),
                Proc::PcCoord(c) if c.next_deadline().is_some_and(|d| d <= now) => c.tick(now),
                Proc::PcPart(p) if p.next_deadline().is_some_and(|d| d <= now) => p.tick(now),
                _ => continue,
            };
            r.expect("memory storage does not fail");
            self.drain(id);
        }
    }

    fn poll(&mut self, id: ProcessId) -> Option<Output> {
        match self.slots.get_mut(&id)?.proc.as_mut()? {
            Proc::Coord(c) => c.poll(),
            Proc::Part(p) => p.poll(),
            Proc::PcCoord(c) => c.poll(),
            Proc::PcPart(p) => p.poll(),
            Proc::PcAcc(a) => a.poll(),
        }
    }

    /// Carries out process `id`'s outputs.
    fn drain(&mut self, id: ProcessId) {
        while let Some(o) = self.poll(id) {
            match o {
                Output::Persisted { .. } => {}
                Output::Send { to, message } => {
                    if let Message::Paxos { txn, rm, msg } = &message {
                        self.note_paxos(id, *txn, *rm, msg);
                    }
                    self.net.send(self.now, id, to, message);
                }
                Output::VoteRequested { txn } => {
                    let yes = match self.planned.get(&(txn, id)) {
                        Some(v) => *v,
                        // A transaction the driver did not plan: vote at random.
                        None => self.rng.chance(800_000),
                    };
                    let now = self.now;
                    let r = match self.slots.get_mut(&id).and_then(|s| s.proc.as_mut()) {
                        Some(Proc::Part(p)) => p.vote(txn, yes, now),
                        Some(Proc::PcPart(p)) => p.vote(txn, yes, now),
                        _ => unreachable!("only participants ask for votes"),
                    };
                    r.expect("a requested vote is accepted");
                    self.votes.insert((txn, id), yes);
                    self.after_vote(txn);
                }
                Output::Outcome { txn, commit } => self.note_outcome(id, txn, commit),
            }
        }
    }

    fn after_vote(&mut self, txn: TxnId) {
        if !self.crash_coordinator_after_votes || !self.is_up(0) {
            return;
        }
        let all_yes = self
            .participants_of
            .get(&txn)
            .is_some_and(|ps| ps.iter().all(|p| self.votes.get(&(txn, *p)) == Some(&true)));
        if all_yes {
            self.crash(0).expect("the coordinator is up");
        }
    }

    /// Watches every phase 2b message an acceptor sends: a value accepted
    /// by a majority of acceptors in one ballot is chosen, and one
    /// instance must never choose two values (nor accept two values in
    /// one ballot).
    fn note_paxos(&mut self, from: ProcessId, txn: TxnId, rm: ProcessId, msg: &PaxosMsg) {
        let PaxosMsg::Accepted { ballot, prepared } = *msg else {
            return;
        };
        let majority = self.acceptors().len() / 2 + 1;
        let entry = self
            .accepted
            .entry((txn, rm, ballot))
            .or_insert_with(|| (prepared, BTreeSet::new()));
        if entry.0 != prepared {
            self.fail(
                "agreement",
                format!("instance ({txn}, {rm}): two values accepted in ballot {ballot}"),
            );
            return;
        }
        entry.1.insert(from);
        if entry.1.len() >= majority {
            let prev = *self.chosen.entry((txn, rm)).or_insert(prepared);
            if prev != prepared {
                self.fail(
                    "agreement",
                    format!("instance ({txn}, {rm}) chose both Prepared and Aborted"),
                );
            }
        }
    }

    fn fail(&mut self, property: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation { property, detail });
        }
    }

    fn note_outcome(&mut self, id: ProcessId, txn: TxnId, commit: bool) {
        if self.violation.is_some() {
            return;
        }
        // Atomicity: against every earlier report of this transaction.
        if let Some(((_, other), c)) = self
            .outcomes
            .range((txn, 0)..=(txn, ProcessId::MAX))
            .find(|(_, c)| **c != commit)
        {
            self.violation = Some(Violation {
                property: "atomicity",
                detail: format!(
                    "txn {txn}: process {id} reports {} but process {other} reported {}",
                    word(commit),
                    word(*c)
                ),
            });
            return;
        }
        if commit {
            let parts = self.participants_of.get(&txn).cloned().unwrap_or_default();
            if let Some(p) = parts
                .iter()
                .find(|p| self.votes.get(&(txn, **p)) != Some(&true))
            {
                self.violation = Some(Violation {
                    property: "validity",
                    detail: format!(
                        "txn {txn} committed at process {id} but participant {p} did not vote yes"
                    ),
                });
                return;
            }
        }
        self.outcomes.entry((txn, id)).or_insert(commit);
    }

    /// The first safety violation seen, if any.
    pub fn check(&self) -> std::result::Result<(), Violation> {
        match &self.violation {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    /// Transactions begun, with how many committed and aborted according
    /// to the outcomes reported (a transaction counts once).
    pub fn tally(&self) -> (u64, u64) {
        let mut decided: BTreeMap<TxnId, bool> = BTreeMap::new();
        for ((t, _), c) in &self.outcomes {
            decided.insert(*t, *c);
        }
        let commits = decided.values().filter(|c| **c).count() as u64;
        (commits, decided.len() as u64 - commits)
    }
}

fn word(commit: bool) -> &'static str {
    if commit { "commit" } else { "abort" }
}

impl Slot {
    fn new(role: Role) -> Self {
        Slot {
            role,
            proc: None,
            disk: None,
        }
    }
}

/// What one random run did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The seed that replays it.
    pub seed: u64,
    /// The protocol.
    pub protocol: Protocol,
    /// How many participants.
    pub participants: usize,
    /// Transactions committed.
    pub committed: u64,
    /// Transactions aborted.
    pub aborted: u64,
    /// Faults injected and messages moved.
    pub stats: SimStats,
    /// The first property broken, if any.
    pub violation: Option<Violation>,
}

/// One random run from `seed`: 2–4 participants (and, for Paxos Commit,
/// 2F+1 acceptors), 1–6 transactions with random votes, a network that
/// loses, duplicates and reorders up to 10% of messages, and up to five
/// crashes of any process (each restarting after 10–500 ms) in the first
/// 1.5 s. Then every process restarts, the network turns reliable and the
/// run goes on for 10 s, after which no participant that voted yes may be
/// in doubt. Safety (atomicity, validity, agreement) is checked throughout.
pub fn random_run(protocol: Protocol, seed: u64) -> RunReport {
    let mut rng = SplitMix64::new(seed);
    let participants = rng.between(2, 4) as usize;
    let mut config = SimConfig::new(protocol, participants);
    config.net = NetConfig {
        min_delay: MS,
        max_delay: rng.between(2, 10) * MS,
        loss_per_million: rng.below(100_001) as u32,
        duplicate_per_million: rng.below(100_001) as u32,
    };
    let mut sim = CommitSim::new(config, rng.next_u64()).expect("valid config");
    let ids: Vec<ProcessId> = sim.slots.keys().copied().collect();

    // Events: (time, kind, arg): 0 = begin txn, 1 = crash, 2 = restart.
    let mut events: Vec<(u64, u8, u64)> = Vec::new();
    for t in 1..=rng.between(1, 6) {
        events.push((rng.below(1_000) * MS, 0, t));
    }
    for _ in 0..rng.below(6) {
        let at = rng.below(1_500) * MS;
        let who = ids[rng.below(ids.len() as u64) as usize];
        events.push((at, 1, who as u64));
        events.push((at + rng.between(10, 500) * MS, 2, who as u64));
    }
    events.sort_unstable();
    for (at, kind, arg) in events {
        sim.run_for(at.saturating_sub(sim.now()));
        match kind {
            0 => {
                let votes: Vec<bool> = (0..participants).map(|_| rng.chance(850_000)).collect();
                // The coordinator may be down: then the transaction never begins.
                let _ = sim.begin(arg, &votes);
            }
            // Crash windows of one process may overlap: crashing a process
            // that is down, or restarting one that is up, is skipped.
            1 => {
                let _ = sim.crash(arg as ProcessId);
            }
            _ => {
                let _ = sim.restart(arg as ProcessId);
            }
        }
        if sim.check().is_err() {
            break;
        }
    }
    // Quiet phase: everyone back, no more faults.
    sim.run_for(100 * MS);
    sim.network().set_config(NetConfig {
        min_delay: MS,
        max_delay: 5 * MS,
        loss_per_million: 0,
        duplicate_per_million: 0,
    });
    for id in ids {
        if !sim.is_up(id) {
            sim.restart(id).expect("down process restarts");
        }
    }
    sim.run_for(10_000 * MS);
    if sim.violation.is_none() {
        let txns: Vec<TxnId> = sim.participants_of.keys().copied().collect();
        for txn in txns {
            let stuck = sim.in_doubt(txn);
            if !stuck.is_empty() {
                sim.fail(
                    "termination",
                    format!(
                        "txn {txn}: participants {stuck:?} still in doubt with every process up"
                    ),
                );
                break;
            }
        }
    }
    let (committed, aborted) = sim.tally();
    RunReport {
        seed,
        protocol,
        participants,
        committed,
        aborted,
        stats: sim.stats(),
        violation: sim.violation.clone(),
    }
}

/// The outcome of [`blocking_scenario`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingReport {
    /// The protocol.
    pub protocol: Protocol,
    /// Participants still in doubt at the end.
    pub in_doubt: Vec<ProcessId>,
    /// Each participant's outcome, if it learned one.
    pub outcomes: Vec<(ProcessId, Option<bool>)>,
    /// Simulated nanoseconds run.
    pub ran_for: u64,
    /// Faults and messages.
    pub stats: SimStats,
}

/// Three participants all vote yes on one transaction, and the coordinator
/// crashes for good the moment the last vote is cast, before it can
/// announce anything; for Paxos Commit with 2F+1 acceptors, F acceptors
/// are down from the start as well. Runs `duration` nanoseconds on a
/// reliable network: two-phase commit stays blocked (every participant in
/// doubt: none can decide, and cooperative termination cannot help when
/// all voted yes), Paxos Commit decides commit everywhere.
pub fn blocking_scenario(protocol: Protocol, seed: u64, duration: u64) -> BlockingReport {
    let mut sim = CommitSim::new(SimConfig::new(protocol, 3), seed).expect("valid config");
    if let Protocol::PaxosCommit { f } = protocol {
        for a in sim.acceptors().into_iter().take(f) {
            sim.crash(a).expect("acceptor is up");
        }
    }
    sim.crash_coordinator_after_votes(true);
    sim.begin(1, &[true, true, true])
        .expect("coordinator is up");
    sim.run_for(duration);
    BlockingReport {
        protocol,
        in_doubt: sim.in_doubt(1),
        outcomes: sim
            .participants()
            .into_iter()
            .map(|p| (p, sim.outcome(p, 1)))
            .collect(),
        ran_for: duration,
        stats: sim.stats(),
    }
}
