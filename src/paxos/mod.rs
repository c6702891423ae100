//! Paxos: single-decree Paxos and Multi-Paxos as sans-IO state machines.
//!
//! Nodes take messages, ticks and proposals with the current time passed in,
//! and hand back records to persist, messages to send and decided values; no
//! sockets, threads or clocks inside, randomness only from a seed.
//!
//! [`wire`] encodes messages and records in a versioned binary format
//! (`docs/WIRE.md`) for any transport; [`FileStorage`] keeps a node's
//! records in a checksummed append-only file that survives torn writes.

pub mod ballot;
pub mod file_storage;
pub mod membership;
pub mod message;
pub mod node;
pub mod single;
pub mod storage;
pub mod wire;

pub use ballot::{Ballot, NodeId, Slot};
pub use file_storage::{FileIdentity, FileStorage};
pub use membership::{Membership, MembershipChange};
pub use message::{AcceptedEntry, Batch, Command, Envelope, Message};
pub use node::{Config, MIN_HEARTBEAT_INTERVAL, Node, Output};
pub use storage::{MemoryStorage, Record, SnapshotData, Storage};
