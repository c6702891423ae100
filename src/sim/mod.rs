//! Deterministic simulation: everything driven by one seed, so a failing run
//! prints its seed and replays exactly.
//!
//! - [`net`]: a fault-injecting network (delay, reordering, loss,
//!   duplication, partitions).
//! - [`paxos`]: [`PaxosCluster`], real Multi-Paxos nodes on that network
//!   with crashes, restarts and skewed clocks.
//! - [`check`]: the safety and liveness checkers every run is held to.
//! - [`plan`]: [`run_random`], a seeded schedule of faults and proposals.

pub mod check;
pub mod net;
pub mod paxos;
pub mod plan;

pub use check::{Checkers, Violation, ViolationKind};
pub use net::{NetConfig, NetStats, Network};
pub use paxos::{NodeStatus, PaxosCluster, SimConfig, SimNode, SimStats};
pub use plan::{FaultPlan, RunReport, run_random, run_random_in, run_random_on};
