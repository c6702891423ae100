//! The two-phase commit coordinator as a sans-IO state machine.
//!
//! It sends Prepare, collects votes, persists its decision before anyone
//! hears it, and announces it. A transaction without all votes by
//! `vote_timeout` is aborted; a transaction it began but had not decided
//! when it crashed is aborted on restart. Decisions are kept for the
//! process's lifetime, so a late DecisionRequest always gets the right
//! answer; a request about a transaction it never began is answered
//! "abort" (presumed abort: a participant can only be prepared for a
//! transaction whose Started record is durable here).

use std::collections::BTreeMap;

use super::ids::{ProcessId, TxnId};
use super::message::Message;
use super::output::{Io, Output, TxnConfig, check_members};
use super::record::{Record, TxnStorage};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
struct Txn {
    participants: Vec<ProcessId>,
    votes: BTreeMap<ProcessId, bool>,
    deadline: u64,
    next_retry: u64,
    decision: Option<bool>,
}

/// A two-phase commit coordinator.
#[derive(Debug)]
pub struct Coordinator<S: TxnStorage> {
    id: ProcessId,
    config: TxnConfig,
    io: Io<S>,
    txns: BTreeMap<TxnId, Txn>,
}

impl<S: TxnStorage> Coordinator<S> {
    /// A coordinator `id` on `storage`, recovering from its records: a
    /// transaction begun but not decided is aborted now (the Decision
    /// record and the Abort messages are in the outputs).
    pub fn new(id: ProcessId, config: TxnConfig, mut storage: S, now: u64) -> Result<Self> {
        config.check()?;
        let records = storage.load()?;
        let mut c = Coordinator {
            id,
            config,
            io: Io::new(storage),
            txns: BTreeMap::new(),
        };
        for r in records {
            match r {
                Record::Started { txn, participants } => {
                    c.txns.insert(
                        txn,
                        Txn {
                            participants,
                            votes: BTreeMap::new(),
                            deadline: now,
                            next_retry: now,
                            decision: None,
                        },
                    );
                }
                Record::Decision { txn, commit } => {
                    if let Some(t) = c.txns.get_mut(&txn) {
                        t.decision = Some(commit);
                    }
                }
                _ => {}
            }
        }
        let undecided: Vec<TxnId> = c
            .txns
            .iter()
            .filter(|(_, t)| t.decision.is_none())
            .map(|(k, _)| *k)
            .collect();
        for txn in undecided {
            c.decide(txn, false)?;
        }
        Ok(c)
    }

    /// This coordinator's id.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// Begins `txn` among `participants` (non-empty, distinct, not this
    /// coordinator): persists Started and sends Prepare to each.
    ///
    /// Errors: `InvalidArgument` for a bad list or a transaction id already
    /// used; `Storage` if the record cannot be written.
    pub fn begin(&mut self, txn: TxnId, participants: Vec<ProcessId>, now: u64) -> Result<()> {
        self.io.check()?;
        check_members(&participants, "participants", self.id)?;
        if self.txns.contains_key(&txn) {
            return Err(Error::invalid(format!("transaction {txn} already exists")));
        }
        self.io.record(Record::Started {
            txn,
            participants: participants.clone(),
        });
        self.io.flush()?;
        for &p in &participants {
            self.io.send(
                p,
                Message::Prepare {
                    txn,
                    participants: participants.clone(),
                    acceptors: Vec::new(),
                },
            );
        }
        self.txns.insert(
            txn,
            Txn {
                participants,
                votes: BTreeMap::new(),
                deadline: now.saturating_add(self.config.vote_timeout),
                next_retry: now.saturating_add(self.config.retry_interval),
                decision: None,
            },
        );
        Ok(())
    }

    /// Handles `message` from `from`. Messages about unknown transactions,
    /// from non-participants, duplicates and late ones are answered from
    /// the state they find or ignored; none is an error.
    pub fn step(&mut self, from: ProcessId, message: Message, _now: u64) -> Result<()> {
        self.io.check()?;
        match message {
            Message::Vote { txn, yes } => {
                let Some(t) = self.txns.get_mut(&txn) else {
                    // Never begun here: presumed abort.
                    self.io.send(from, Message::Outcome { txn, commit: false });
                    return Ok(());
                };
                if !t.participants.contains(&from) {
                    return Ok(());
                }
                if let Some(commit) = t.decision {
                    // A late or repeated vote: tell it again.
                    self.io.send(from, Message::Outcome { txn, commit });
                    return Ok(());
                }
                t.votes.insert(from, yes);
                if !yes {
                    self.decide(txn, false)?;
                } else if t.votes.len() == t.participants.len() {
                    self.decide(txn, true)?;
                }
            }
            Message::DecisionRequest { txn } => match self.txns.get(&txn) {
                None => self.io.send(from, Message::Outcome { txn, commit: false }),
                Some(t) => {
                    if let Some(commit) = t.decision {
                        self.io.send(from, Message::Outcome { txn, commit });
                    }
                }
            },
            // Nothing else is for a coordinator.
            _ => {}
        }
        Ok(())
    }

    /// Advances time: aborts transactions whose vote timeout passed and
    /// repeats Prepare to participants that have not voted.
    pub fn tick(&mut self, now: u64) -> Result<()> {
        self.io.check()?;
        let mut expired = Vec::new();
        for (&txn, t) in self.txns.iter_mut() {
            if t.decision.is_some() {
                continue;
            }
            if now >= t.deadline {
                expired.push(txn);
            } else if now >= t.next_retry {
                t.next_retry = now.saturating_add(self.config.retry_interval);
                for &p in &t.participants {
                    if !t.votes.contains_key(&p) {
                        self.io.out.push_back(Output::Send {
                            to: p,
                            message: Message::Prepare {
                                txn,
                                participants: t.participants.clone(),
                                acceptors: Vec::new(),
                            },
                        });
                    }
                }
            }
        }
        for txn in expired {
            self.decide(txn, false)?;
        }
        Ok(())
    }

    fn decide(&mut self, txn: TxnId, commit: bool) -> Result<()> {
        self.io.record(Record::Decision { txn, commit });
        self.io.flush()?;
        let t = self.txns.get_mut(&txn).expect("decide on a known txn");
        t.decision = Some(commit);
        for &p in &t.participants {
            self.io.out.push_back(Output::Send {
                to: p,
                message: Message::Outcome { txn, commit },
            });
        }
        self.io.emit(Output::Outcome { txn, commit });
        Ok(())
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    /// The output `poll` would return next, left in place.
    pub fn peek(&self) -> Option<&Output> {
        self.io.out.front()
    }

    /// The earliest time `tick` has work to do, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.txns
            .values()
            .filter(|t| t.decision.is_none())
            .map(|t| t.deadline.min(t.next_retry))
            .min()
    }

    /// The decision on `txn`: `Some(commit)` once decided, `None` while
    /// collecting votes. Errors with `InvalidArgument` for a transaction
    /// this coordinator does not know.
    pub fn decision(&self, txn: TxnId) -> Result<Option<bool>> {
        self.txns
            .get(&txn)
            .map(|t| t.decision)
            .ok_or_else(|| Error::invalid(format!("unknown transaction {txn}")))
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.io.storage
    }

    /// Gives the storage back (to restart from it).
    pub fn into_storage(self) -> S {
        self.io.storage
    }
}
