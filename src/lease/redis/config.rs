//! Settings of a [`super::RedisLeaseTable`]. Every process sharing a
//! namespace should use the same lock-delay and expired-lease memory: the
//! scripts apply the caller's values.

use std::time::Duration;

use super::keys::check_namespace;
use crate::error::{Error, Result};

/// How a Redis lease table connects, waits and remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Prefix of every key (`{namespace:resource}:…`): tables with different
    /// namespaces never see each other's leases.
    pub namespace: String,
    /// Longest wait for a new connection (TCP/TLS connect and handshake).
    pub connect_timeout: Duration,
    /// Longest wait for any one reply; past it the call fails with
    /// `BackendUnavailable` and the connection is dropped.
    pub command_timeout: Duration,
    /// Longest sleep of a queued waiter between re-checks: bounds the delay
    /// a lost wake-up can cause. The queue head also wakes at the holder's
    /// expiry.
    pub recheck_interval: Duration,
    /// A queued waiter that has not re-checked for this long is taken to be
    /// dead and leaves the queue. Must exceed `recheck_interval +
    /// command_timeout` so a live waiter is never evicted (one that was,
    /// after a long pause, gets its old place back on its next re-check).
    pub waiter_ttl: Duration,
    /// Chubby's lock-delay: after a lease expires without being released,
    /// its resource grants nothing for this long (zero: no delay).
    pub lock_delay: Duration,
    /// How long an expired, un-released lease is remembered so its late
    /// holder hears `LeaseExpired` rather than `NotHolder` (raised to
    /// `lock_delay` if shorter). Its keys live this long after the expiry.
    pub expired_memory: Duration,
    /// Idle connections kept for reuse.
    pub max_idle_connections: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            namespace: "qk".into(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            recheck_interval: Duration::from_secs(1),
            waiter_ttl: Duration::from_secs(10),
            lock_delay: Duration::ZERO,
            expired_memory: Duration::from_secs(60),
            max_idle_connections: 16,
        }
    }
}

/// Milliseconds, rounded up (a TTL never shrinks to nothing).
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// The longest TTL a lease can have: far beyond any use, and small enough
/// that server times stay exact in Lua's doubles.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn ttl_ms(ttl: Duration) -> Result<u64> {
    if ttl.is_zero() {
        return Err(Error::invalid("ttl must be > 0"));
    }
    if ttl > MAX_TTL {
        return Err(Error::invalid(format!(
            "ttl {ttl:?} is longer than the limit of 100 years"
        )));
    }
    Ok(ceil_ms(ttl))
}

impl RedisConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        check_namespace(&self.namespace)?;
        for (what, d) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("recheck_interval", self.recheck_interval),
        ] {
            if d < Duration::from_millis(1) {
                return Err(Error::invalid(format!("{what} must be at least 1 ms")));
            }
        }
        if self.waiter_ttl <= self.recheck_interval + self.command_timeout {
            return Err(Error::invalid(
                "waiter_ttl must exceed recheck_interval + command_timeout \
                 (else live waiters could be evicted)",
            ));
        }
        for (what, d) in [
            ("waiter_ttl", self.waiter_ttl),
            ("lock_delay", self.lock_delay),
            ("expired_memory", self.expired_memory),
        ] {
            if d > MAX_TTL {
                return Err(Error::invalid(format!("{what} is longer than 100 years")));
            }
        }
        Ok(())
    }

    /// `expired_memory`, at least the lock-delay and 1 ms, in ms.
    pub(crate) fn memory_ms(&self) -> u64 {
        ceil_ms(self.expired_memory.max(self.lock_delay)).max(1)
    }
}
