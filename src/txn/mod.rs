//! Atomic commitment: two-phase commit and Paxos Commit as sans-IO state
//! machines.
//!
//! Processes take messages, ticks and votes with the current time passed
//! in, and hand back records to persist, messages to send and outcomes
//! ([`Output`]). [`Coordinator`] and [`Participant`] run two-phase commit
//! with timeouts, recovery from durable records and cooperative
//! termination; [`paxos_commit`] runs Gray and Lamport's Paxos Commit, which
//! decides without blocking when the coordinator dies. [`wire`] encodes
//! messages as bytes for transports and the C and Python faces.

pub mod coordinator;
pub mod ids;
pub mod message;
pub mod output;
pub mod participant;
pub mod paxos_commit;
pub mod record;
pub mod wire;

#[cfg(test)]
mod tests;

pub use coordinator::Coordinator;
pub use ids::{ProcessId, TxnId};
pub use message::{Message, PaxosMsg};
pub use output::{Output, TxnConfig};
pub use participant::{Participant, TxnState};
pub use paxos_commit::{PcAcceptor, PcCoordinator, PcParticipant};
pub use record::{MemoryTxnStorage, Record, TxnStorage};
