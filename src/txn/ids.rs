//! The numbers every transaction message carries.

/// A transaction's id, chosen by its coordinator (unique per coordinator).
pub type TxnId = u64;

/// A process's id: a coordinator, a participant (resource manager) or a
/// Paxos Commit acceptor. Any `u32` the application chooses, distinct
/// within one deployment.
pub type ProcessId = u32;
