//! What a transaction process asks its driver to do, and the settings all
//! of them share.

use super::ids::{ProcessId, TxnId};
use super::message::Message;
use super::record::{Record, TxnStorage};
use crate::error::{Error, Result};

/// One thing for the driver to do, in the order `poll` returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `records` records were appended and synced: what follows may be sent.
    Persisted {
        /// How many records.
        records: usize,
    },
    /// Send `message` to `to`.
    Send {
        /// The receiver.
        to: ProcessId,
        /// The message.
        message: Message,
    },
    /// Participant: the coordinator asks for a vote on `txn`; answer with
    /// `vote(txn, yes, now)`.
    VoteRequested {
        /// The transaction.
        txn: TxnId,
    },
    /// `txn` is decided (the coordinator decided, or the participant
    /// learned the outcome or aborted on its own). Reported once per
    /// process lifetime; a restarted participant reports nothing new for
    /// outcomes it had recorded.
    Outcome {
        /// The transaction.
        txn: TxnId,
        /// Commit or abort.
        commit: bool,
    },
}

/// Timing of the protocols, in nanoseconds of the caller's clock. Timing
/// affects only liveness: no setting can make a process decide unsafely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// A coordinator aborts a transaction whose votes are not all in this
    /// long after it began (Paxos Commit: starts recovery of the missing
    /// instances).
    pub vote_timeout: u64,
    /// How often unanswered requests are repeated: Prepare to participants
    /// that have not voted, and a participant in doubt's DecisionRequest.
    pub retry_interval: u64,
    /// Whether a participant in doubt also asks its peers (cooperative
    /// termination) besides the coordinator.
    pub cooperative: bool,
}

impl Default for TxnConfig {
    /// Vote timeout 1 s, retry every 100 ms, cooperative termination on.
    fn default() -> Self {
        TxnConfig {
            vote_timeout: 1_000_000_000,
            retry_interval: 100_000_000,
            cooperative: true,
        }
    }
}

impl TxnConfig {
    pub(crate) fn check(&self) -> Result<()> {
        if self.vote_timeout == 0 || self.retry_interval == 0 {
            return Err(Error::invalid(
                "vote_timeout and retry_interval must be positive",
            ));
        }
        Ok(())
    }
}

/// The output queue and storage handling every process shares: records of
/// one step are appended, synced once, announced with `Persisted`, and only
/// then are the step's messages queued.
#[derive(Debug)]
pub(crate) struct Io<S> {
    pub(crate) storage: S,
    pub(crate) out: std::collections::VecDeque<Output>,
    pending: Vec<Record>,
    failed: Option<Error>,
}

impl<S: TxnStorage> Io<S> {
    pub(crate) fn new(storage: S) -> Self {
        Io {
            storage,
            out: Default::default(),
            pending: Vec::new(),
            failed: None,
        }
    }

    /// Fails every call after a storage error (the process must restart).
    pub(crate) fn check(&self) -> Result<()> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    pub(crate) fn record(&mut self, r: Record) {
        self.pending.push(r);
    }

    /// Makes the step's records durable. Must run before the step's
    /// messages are queued.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        let r = records
            .iter()
            .try_for_each(|r| self.storage.append(r))
            .and_then(|()| self.storage.sync());
        if let Err(e) = r {
            self.failed = Some(e.clone());
            return Err(e);
        }
        self.out.push_back(Output::Persisted {
            records: records.len(),
        });
        Ok(())
    }

    pub(crate) fn send(&mut self, to: ProcessId, message: Message) {
        self.out.push_back(Output::Send { to, message });
    }

    pub(crate) fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }
}

/// Checks a participant list: non-empty, distinct, without `me`.
pub(crate) fn check_members(list: &[ProcessId], what: &str, me: ProcessId) -> Result<()> {
    if list.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!("{what} contains a duplicate id")));
    }
    if list.contains(&me) {
        return Err(Error::invalid(format!(
            "{what} contains this process ({me})"
        )));
    }
    Ok(())
}
