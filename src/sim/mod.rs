//! Deterministic simulation: everything driven by one seed, so a failing run
//! prints its seed and replays exactly.
//!
//! - [`net`]: a fault-injecting network (delay, reordering, loss,
//!   duplication, partitions).
//! - [`paxos`]: [`PaxosCluster`], real Multi-Paxos nodes on that network
//!   (messages travel as `paxos::wire` bytes) with crashes, restarts and
//!   skewed, drifting clocks.
//! - [`check`]: the properties every run is held to — agreement, validity
//!   (and at-most-once while no node restarts), in-order gap-free
//!   delivery, lease exclusivity, linearizability (real-time order, fresh
//!   lease reads) and liveness once the cluster is healthy.
//! - [`plan`]: [`run_random`], a seeded schedule of proposals and faults
//!   ending in a heal and a liveness check.
//! - [`txn`]: simulated atomic commitment (two-phase commit, Paxos Commit).
//!
//! `cargo test --test paxos_sim` runs 2,000 seeds (`QK_SIM_SEEDS`,
//! `QK_SIM_SEED_BASE`), `make soak` 100,000 in release; a failure prints
//! `QK_SIM_SEED=<seed> cargo test --test paxos_sim replay -- --nocapture`,
//! which replays it with a trace of every event.

pub mod check;
pub mod net;
pub mod paxos;
pub mod plan;
pub mod txn;

pub use check::{Checkers, Violation, ViolationKind};
pub use net::{NetConfig, NetStats, Network};
pub use paxos::{NodeStatus, PaxosCluster, SimConfig, SimNode, SimStats};
pub use plan::{FaultPlan, RunReport, run_random, run_random_in, run_random_on};
