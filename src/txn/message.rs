//! What coordinators, participants and acceptors say to one another.

use super::ids::{ProcessId, TxnId};
use crate::paxos::Ballot;

/// One protocol message. Two-phase commit uses the first four; Paxos Commit
/// adds the Paxos messages of its per-participant instances.
///
/// Every message names its transaction, so a late or duplicated message
/// is recognised and answered (or ignored) by the state it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Coordinator → participant: prepare `txn`, whose participants are
    /// `participants` (a participant in doubt asks its peers from this list).
    /// In Paxos Commit `acceptors` names the acceptors of every instance
    /// (empty in two-phase commit).
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// Every participant of the transaction, the receiver included.
        participants: Vec<ProcessId>,
        /// Paxos Commit's acceptors (2F+1 of them); empty for 2PC.
        acceptors: Vec<ProcessId>,
    },
    /// Participant → coordinator: its vote.
    Vote {
        /// The transaction.
        txn: TxnId,
        /// Yes = prepared (it can commit and will wait for the outcome).
        yes: bool,
    },
    /// The outcome of `txn`: from the coordinator, or from a peer answering
    /// a [`Message::DecisionRequest`].
    Outcome {
        /// The transaction.
        txn: TxnId,
        /// Commit (true) or abort (false).
        commit: bool,
    },
    /// A participant in doubt asks for the outcome of `txn` (of the
    /// coordinator, or of its peers: cooperative termination).
    DecisionRequest {
        /// The transaction.
        txn: TxnId,
    },
    /// Paxos Commit: a message of the Paxos instance that decides whether
    /// participant `rm` of `txn` is prepared.
    Paxos {
        /// The transaction.
        txn: TxnId,
        /// The participant whose instance this is.
        rm: ProcessId,
        /// The instance's message.
        msg: PaxosMsg,
    },
}

/// A single-decree Paxos message of one Paxos Commit instance. The value
/// is a bool: `true` = Prepared, `false` = Aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaxosMsg {
    /// Phase 1a: a recovery leader asks acceptors to promise `ballot`.
    Prepare {
        /// The ballot.
        ballot: Ballot,
    },
    /// Phase 1b: an acceptor promises `ballot`, reporting what it accepted.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The highest-ballot value it accepted, if any.
        accepted: Option<(Ballot, bool)>,
    },
    /// Phase 2a: accept `prepared` in `ballot` (round 1 comes only from the
    /// instance's own participant).
    Accept {
        /// The ballot.
        ballot: Ballot,
        /// Prepared (true) or Aborted (false).
        prepared: bool,
    },
    /// Phase 2b: an acceptor accepted `prepared` in `ballot`; sent to the
    /// coordinator and to every participant, which learn from a majority.
    Accepted {
        /// The ballot.
        ballot: Ballot,
        /// The value accepted.
        prepared: bool,
    },
    /// An acceptor refuses `ballot`: it promised `promised`.
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The ballot it promised.
        promised: Ballot,
    },
}

impl Message {
    /// The transaction the message is about.
    pub fn txn(&self) -> TxnId {
        match self {
            Message::Prepare { txn, .. }
            | Message::Vote { txn, .. }
            | Message::Outcome { txn, .. }
            | Message::DecisionRequest { txn }
            | Message::Paxos { txn, .. } => *txn,
        }
    }
}
