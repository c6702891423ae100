//! Paxos replicas as processes on a network: the replica runtime
//! ([`Replica`], generic over the user's [`StateMachine`]), its client
//! ([`Client`]), a state machine made of the host's functions
//! ([`hosted`], for the C and Python faces), and a replicated key-value
//! store ([`kv`]).
//!
//! Every connection starts with a handshake in which both ends prove that
//! they hold the cluster secret ([`auth`]); frames are length-prefixed
//! ([`frame`]); replicas exchange the Paxos wire format, clients the
//! requests of [`proto`].

pub mod auth;
pub mod client;
pub mod frame;
pub mod group_commit;
pub mod hosted;
pub mod kv;
pub mod proto;
pub mod replica;
pub mod sessions;

pub use client::{Client, ClientConfig, parse_addrs};
pub use replica::{
    Applied, Applying, Completion, LOG_FILE, ReadPolicy, Replica, ReplicaConfig, StateMachine,
};
