//! Deterministic simulation: everything driven by one seed, so a failing run
//! prints its seed and replays exactly.

pub mod net;
pub mod txn;

pub use net::{NetConfig, NetStats, Network};
