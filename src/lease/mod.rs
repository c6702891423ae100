//! Lock leases: expiring shared/exclusive locks with fencing tokens.
//!
//! - [`machine`]: the pure state machine ([`LeaseMachine`]): explicit `now`,
//!   no threads, no clock; deterministic results, events and the next deadline.
//! - [`fence`]: [`Fence`], the check a protected resource makes on tokens.
//! - [`clock`]: [`MonotonicClock`] and [`ManualClock`] (time moved by hand).
//! - [`table`]: [`LeaseTable`], the thread-safe table with real blocking,
//!   per-waiter wake-ups, timeouts and asynchronous tickets.
//! - [`cancel`]: [`CancelToken`], which stops blocked acquires from
//!   another thread.
//! - [`election`]: [`Election`], leader election on leases (the epoch is
//!   the fencing token), over the in-process or the Redis table.
//! - [`guard`]: [`LeaseGuard`], a held lease renewed in the background.
//! - `redis` (feature `redis`): `RedisLeaseTable`, the same table kept in
//!   Redis and shared by processes and machines.
//!
//! The contract (docs/leases.md): tokens strictly increase across the
//! whole table; waiters are served FIFO per resource (a shared request
//! queued behind an exclusive one waits); a queued request is granted with
//! `expires_at = grant time + ttl`; failed or timed-out acquires never touch
//! a held lease; renew/release check the owner and token and tell an expired
//! lease (`LeaseExpired`) from one that is not the caller's (`NotHolder`).

pub mod cancel;
pub mod clock;
pub mod election;
pub mod fence;
pub mod guard;
pub mod machine;
#[cfg(feature = "redis")]
pub mod redis;
pub mod table;

/// Leases from a replicated lease service (`quorumkit serve --state
/// lease`): the same surface as [`LeaseTable`], across processes and
/// machines. Another name for [`crate::service`]'s client.
#[cfg(feature = "server")]
pub mod remote {
    pub use crate::service::{LeaseClient as Client, RemoteLease};
}

use std::sync::Arc;

pub use cancel::CancelToken;
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use election::{Election, Leader, LeaseBackend, Observe};
pub use fence::Fence;
pub use guard::LeaseGuard;
pub use machine::{AcquireOutcome, AcquireRequest, Event, LeaseConfig, LeaseMachine, WaiterId};
pub use table::{Callback, Cancelled, Enqueued, LeaseTable, Ticket};

/// Exclusive (one holder) or shared (any number of shared holders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// One holder at a time; no shared holders alongside.
    Exclusive,
    /// Any number of shared holders, no exclusive one.
    Shared,
}

/// A granted lease. `expires_at` is in nanoseconds of the granting table's
/// clock (the machine's `now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The resource name.
    pub resource: Arc<str>,
    /// Who holds it.
    pub owner: Arc<str>,
    /// The fencing token: greater than every token granted before it.
    pub token: u64,
    /// Exclusive or shared.
    pub mode: Mode,
    /// When it ends unless renewed (clock nanoseconds; it is expired at
    /// `now >= expires_at`).
    pub expires_at: u64,
}
