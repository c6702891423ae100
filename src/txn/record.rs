//! Durable transaction state: the records a process persists before it
//! sends the messages that depend on them, and the [`TxnStorage`] behind
//! which they live.

use super::ids::{ProcessId, TxnId};
use crate::error::Result;
use crate::paxos::Ballot;

/// One durable fact. A process replays its records in order on restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Coordinator: it began `txn` with these participants (written before
    /// the first Prepare leaves, so a restarted coordinator knows to abort
    /// it if it never decided).
    Started {
        /// The transaction.
        txn: TxnId,
        /// Its participants.
        participants: Vec<ProcessId>,
    },
    /// Coordinator: its decision (written before anyone hears of it).
    Decision {
        /// The transaction.
        txn: TxnId,
        /// Commit or abort.
        commit: bool,
    },
    /// Participant: its vote (written before the vote is sent; a yes vote
    /// binds it to wait for the outcome, across restarts).
    Voted {
        /// The transaction.
        txn: TxnId,
        /// The vote.
        yes: bool,
        /// Whom to ask for the outcome.
        coordinator: ProcessId,
        /// The peers to ask (cooperative termination).
        participants: Vec<ProcessId>,
        /// Paxos Commit's acceptors (empty for 2PC).
        acceptors: Vec<ProcessId>,
    },
    /// Participant: the outcome it learned (or its unilateral abort).
    Outcome {
        /// The transaction.
        txn: TxnId,
        /// Commit or abort.
        commit: bool,
    },
    /// Paxos Commit: an acceptor promised `ballot` in instance (`txn`,
    /// `rm`); in a coordinator's or participant's records, it claimed
    /// `ballot` for a recovery proposal there (so it never reuses it).
    Promise {
        /// The transaction.
        txn: TxnId,
        /// The instance's participant.
        rm: ProcessId,
        /// The ballot promised.
        ballot: Ballot,
    },
    /// Paxos Commit acceptor: it accepted `prepared` in `ballot` in
    /// instance (`txn`, `rm`).
    Accept {
        /// The transaction.
        txn: TxnId,
        /// The instance's participant.
        rm: ProcessId,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        prepared: bool,
    },
}

/// Where a transaction process keeps its records: the same contract as
/// [`crate::paxos::Storage`] — after `sync` returns `Ok`, `load` after any
/// crash returns every record appended before it, in order, and may
/// return a prefix of those appended after it, never a damaged one.
pub trait TxnStorage {
    /// Add a record; it need not be durable until `sync`.
    fn append(&mut self, record: &Record) -> Result<()>;
    /// Make every appended record durable.
    fn sync(&mut self) -> Result<()>;
    /// The durable records, in append order (read once, at start).
    fn load(&mut self) -> Result<Vec<Record>>;
}

/// Records in memory, for tests and the simulator;
/// [`crash`](MemoryTxnStorage::crash) loses whatever was not synced.
#[derive(Debug, Clone, Default)]
pub struct MemoryTxnStorage {
    records: Vec<Record>,
    synced: usize,
    syncs: u64,
}

impl MemoryTxnStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget every record not yet synced, as a power cut would.
    pub fn crash(&mut self) {
        self.records.truncate(self.synced);
    }

    /// Every record held (synced or not).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// How many times `sync` was called.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }
}

impl TxnStorage for MemoryTxnStorage {
    fn append(&mut self, record: &Record) -> Result<()> {
        self.records.push(record.clone());
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        self.synced = self.records.len();
        self.syncs += 1;
        Ok(())
    }
    fn load(&mut self) -> Result<Vec<Record>> {
        Ok(self.records.clone())
    }
}

impl<S: TxnStorage + ?Sized> TxnStorage for Box<S> {
    fn append(&mut self, record: &Record) -> Result<()> {
        (**self).append(record)
    }
    fn sync(&mut self) -> Result<()> {
        (**self).sync()
    }
    fn load(&mut self) -> Result<Vec<Record>> {
        (**self).load()
    }
}
