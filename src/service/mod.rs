//! The replicated lease service: [`LeaseService`], the in-process
//! [`LeaseMachine`](crate::lease::LeaseMachine) as the state machine of the
//! replica runtime (`quorumkit serve --state lease`), and its client,
//! [`LeaseClient`].
//!
//! Time: the leader stamps every command with cluster time, so every
//! replica expires leases at the same point of the log, and a lease
//! expires only through a replicated command (a tick the leader proposes
//! when the next expiry passes). Cluster time advances no faster than any
//! replica's clock and never goes back, so a new leader — whose estimate
//! starts from the last time it applied — honours every lease the old one
//! granted for at least its TTL (Chubby's grace period comes for free:
//! without a leader no time passes in the log at all).
//!
//! The client counts a lease's validity from when it sent the request, so
//! its own view ends no later than the service's.

pub mod client;
pub mod leases;

pub use client::{LeaseClient, RemoteLease};
pub use leases::LeaseService;
