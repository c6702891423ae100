//! The two-phase commit participant (resource manager) as a sans-IO state
//! machine.
//!
//! On Prepare it asks its application for a vote ([`Output::VoteRequested`]);
//! a yes vote is persisted before it is sent and binds the participant to
//! wait, across restarts, until it learns the outcome. A participant in
//! doubt asks the coordinator every `retry_interval` once `vote_timeout`
//! has passed, and — with cooperative termination — its peers too: a peer
//! that knows the outcome tells it, and a peer that has not voted aborts on
//! its own and says so. When every participant voted yes and the
//! coordinator is gone, no one can answer: two-phase commit blocks.

use std::collections::BTreeMap;

use super::ids::{ProcessId, TxnId};
use super::message::Message;
use super::output::{Io, Output, TxnConfig};
use super::record::{Record, TxnStorage};
use crate::error::{Error, Result};

/// Where a participant stands on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// It has not heard of the transaction.
    Unknown,
    /// It was asked to prepare and has not voted.
    AwaitingVote,
    /// It voted yes and does not know the outcome (in doubt).
    Prepared,
    /// It learned that the transaction committed.
    Committed,
    /// It learned the transaction aborted, or aborted it on its own.
    Aborted,
}

impl TxnState {
    /// The state as a small integer (0 unknown, 1 awaiting vote, 2
    /// prepared, 3 committed, 4 aborted), as the C ABI reports it.
    pub fn code(self) -> u32 {
        match self {
            TxnState::Unknown => 0,
            TxnState::AwaitingVote => 1,
            TxnState::Prepared => 2,
            TxnState::Committed => 3,
            TxnState::Aborted => 4,
        }
    }

    /// The state's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Unknown => "unknown",
            TxnState::AwaitingVote => "awaiting_vote",
            TxnState::Prepared => "prepared",
            TxnState::Committed => "committed",
            TxnState::Aborted => "aborted",
        }
    }

    pub(crate) fn done(commit: bool) -> Self {
        if commit {
            TxnState::Committed
        } else {
            TxnState::Aborted
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Asked {
        coordinator: ProcessId,
        participants: Vec<ProcessId>,
    },
    Prepared {
        coordinator: ProcessId,
        participants: Vec<ProcessId>,
        next_ask: u64,
    },
    Done {
        commit: bool,
    },
}

/// A two-phase commit participant.
#[derive(Debug)]
pub struct Participant<S: TxnStorage> {
    id: ProcessId,
    config: TxnConfig,
    io: Io<S>,
    txns: BTreeMap<TxnId, State>,
}

impl<S: TxnStorage> Participant<S> {
    /// A participant `id` on `storage`, recovering from its records: a
    /// transaction it voted yes on without a recorded outcome is in doubt
    /// and asks for the outcome at the first `tick`.
    pub fn new(id: ProcessId, config: TxnConfig, mut storage: S, now: u64) -> Result<Self> {
        config.check()?;
        let records = storage.load()?;
        let mut txns = BTreeMap::new();
        for r in records {
            match r {
                Record::Voted {
                    txn,
                    yes,
                    coordinator,
                    participants,
                    ..
                } => {
                    let s = if yes {
                        State::Prepared {
                            coordinator,
                            participants,
                            next_ask: now,
                        }
                    } else {
                        State::Done { commit: false }
                    };
                    txns.insert(txn, s);
                }
                Record::Outcome { txn, commit } => {
                    txns.insert(txn, State::Done { commit });
                }
                _ => {}
            }
        }
        Ok(Participant {
            id,
            config,
            io: Io::new(storage),
            txns,
        })
    }

    /// This participant's id.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// Handles `message` from `from`. Unknown, duplicate and late messages
    /// are answered from the state they find or ignored; none is an error.
    pub fn step(&mut self, from: ProcessId, message: Message, _now: u64) -> Result<()> {
        self.io.check()?;
        match message {
            Message::Prepare {
                txn,
                participants,
                acceptors,
            } => {
                if !acceptors.is_empty() || !participants.contains(&self.id) {
                    return Ok(()); // not a 2PC Prepare for us
                }
                match self.txns.get(&txn) {
                    None => {
                        self.txns.insert(
                            txn,
                            State::Asked {
                                coordinator: from,
                                participants,
                            },
                        );
                        self.io.emit(Output::VoteRequested { txn });
                    }
                    Some(State::Asked { .. }) => {}
                    Some(State::Prepared { .. }) => {
                        self.io.send(from, Message::Vote { txn, yes: true });
                    }
                    Some(State::Done { commit }) => {
                        let yes = *commit;
                        self.io.send(from, Message::Vote { txn, yes });
                    }
                }
            }
            Message::Outcome { txn, commit } => match self.txns.get(&txn) {
                Some(State::Done { .. }) => {}
                Some(State::Prepared { .. }) => self.finish(txn, commit)?,
                // Not voted yes: only an abort can be real.
                Some(State::Asked { .. }) | None => {
                    if !commit {
                        self.finish(txn, false)?;
                    }
                }
            },
            Message::DecisionRequest { txn } => match self.txns.get(&txn) {
                Some(State::Done { commit }) => {
                    let commit = *commit;
                    self.io.send(from, Message::Outcome { txn, commit });
                }
                Some(State::Prepared { .. }) => {} // in doubt too
                Some(State::Asked { .. }) | None => {
                    // Not voted: abort on our own, so the asker can too.
                    self.finish(txn, false)?;
                    self.io.send(from, Message::Outcome { txn, commit: false });
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// Votes on `txn`, which must be awaiting a vote. Yes persists the vote
    /// and sends it: the participant is then in doubt until it learns the
    /// outcome. No aborts at once.
    ///
    /// Errors: `InvalidArgument` if `txn` is not awaiting a vote (unknown,
    /// already voted or decided); `Storage`.
    pub fn vote(&mut self, txn: TxnId, yes: bool, now: u64) -> Result<()> {
        self.io.check()?;
        let Some(State::Asked {
            coordinator,
            participants,
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
            participants: participants.clone(),
            acceptors: Vec::new(),
        });
        if yes {
            self.io.flush()?;
            self.io.send(coordinator, Message::Vote { txn, yes });
            self.txns.insert(
                txn,
                State::Prepared {
                    coordinator,
                    participants,
                    next_ask: now.saturating_add(self.config.vote_timeout),
                },
            );
        } else {
            self.finish(txn, false)?;
            self.io.send(coordinator, Message::Vote { txn, yes });
        }
        Ok(())
    }

    fn finish(&mut self, txn: TxnId, commit: bool) -> Result<()> {
        self.io.record(Record::Outcome { txn, commit });
        self.io.flush()?;
        self.txns.insert(txn, State::Done { commit });
        self.io.emit(Output::Outcome { txn, commit });
        Ok(())
    }

    /// Advances time: a transaction in doubt past its deadline asks the
    /// coordinator (and, cooperatively, its peers) for the outcome.
    pub fn tick(&mut self, now: u64) -> Result<()> {
        self.io.check()?;
        let retry = self.config.retry_interval;
        for (&txn, s) in self.txns.iter_mut() {
            if let State::Prepared {
                coordinator,
                participants,
                next_ask,
            } = s
                && now >= *next_ask
            {
                *next_ask = now.saturating_add(retry);
                self.io.out.push_back(Output::Send {
                    to: *coordinator,
                    message: Message::DecisionRequest { txn },
                });
                if self.config.cooperative {
                    for &p in participants.iter().filter(|&&p| p != self.id) {
                        self.io.out.push_back(Output::Send {
                            to: p,
                            message: Message::DecisionRequest { txn },
                        });
                    }
                }
            }
        }
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
            .filter_map(|s| match s {
                State::Prepared { next_ask, .. } => Some(*next_ask),
                _ => None,
            })
            .min()
    }

    /// Where this participant stands on `txn`.
    pub fn state(&self, txn: TxnId) -> TxnState {
        match self.txns.get(&txn) {
            None => TxnState::Unknown,
            Some(State::Asked { .. }) => TxnState::AwaitingVote,
            Some(State::Prepared { .. }) => TxnState::Prepared,
            Some(State::Done { commit }) => TxnState::done(*commit),
        }
    }

    /// The transactions it voted yes on and has no outcome for.
    pub fn in_doubt(&self) -> Vec<TxnId> {
        self.txns
            .iter()
            .filter(|(_, s)| matches!(s, State::Prepared { .. }))
            .map(|(k, _)| *k)
            .collect()
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
