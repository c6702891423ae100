//! `LeaseClient`: the lease table's surface over a replicated lease
//! service. Safe to share between threads: each call borrows a connection
//! from a small pool (a blocking acquire does not hold up a renew).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::leases;
use crate::error::{Error, Result};
use crate::lease::{Lease, LeaseBackend, Mode};
use crate::net::{Client, ClientConfig};

/// A lease held through the service. `lease.expires_at` is in cluster
/// time; `valid_until` is this process's conservative view: the request's
/// send time plus the TTL (the service's expiry is never earlier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLease {
    /// The lease as the service granted it (the token is the fencing token).
    pub lease: Lease,
    /// Until when this process may act on it.
    pub valid_until: Instant,
}

impl RemoteLease {
    /// Whether this process may still act on it.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// Idle connections a `LeaseClient` keeps. As many as the threads that
/// share one client at once: a call that finds none idle opens a new
/// connection (a handshake and a new session), and one beyond this bound
/// is closed after its call.
const MAX_IDLE: usize = 256;

/// A client of a replicated lease service (`quorumkit serve --state lease`).
pub struct LeaseClient {
    config: ClientConfig,
    pool: Mutex<Vec<Client>>,
}

impl LeaseClient {
    /// A client of the cluster in `config`; no connection is made yet.
    ///
    /// Errors: `InvalidArgument` (no address, a short secret).
    pub fn new(config: ClientConfig) -> Result<LeaseClient> {
        let first = Client::new(config.clone())?;
        Ok(LeaseClient {
            config,
            pool: Mutex::new(vec![first]),
        })
    }

    /// Runs `f` on a pooled connection whose calls may take `timeout` in all.
    fn with_client<T>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut Client) -> Result<T>,
    ) -> Result<T> {
        let popped = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut c = match popped {
            Some(c) => c,
            None => Client::new(self.config.clone())?,
        };
        c.set_timeout(timeout);
        let out = f(&mut c);
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE {
            pool.push(c);
        }
        out
    }

    /// The argument checks of every grant: non-empty names, a positive TTL
    /// (returned in nanoseconds).
    pub(crate) fn check(resource: &str, owner: &str, ttl: Duration) -> Result<u64> {
        if resource.is_empty() || owner.is_empty() {
            return Err(Error::invalid(
                "lease: resource and owner must be non-empty",
            ));
        }
        let ns = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        if ns == 0 {
            return Err(Error::invalid("lease: ttl must be positive"));
        }
        Ok(ns)
    }

    /// Blocks until the lease is granted (FIFO), or `timeout` passes
    /// (`Timeout`; `None` waits without end). The service tells the
    /// waiting client when it is granted: no polling.
    pub fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<RemoteLease> {
        let ttl_ns = Self::check(resource, owner, ttl)?;
        let wait_ns = match timeout {
            Some(t) => u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).max(1),
            None => 0,
        };
        let cmd = leases::acquire(resource, owner, ttl_ns, mode, Some(wait_ns));
        // The answer may come after the whole wait (None: without end).
        self.grant(resource, owner, ttl, &cmd, timeout)
    }

    /// Takes the lease if it is free now, else `Busy`.
    pub fn try_acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
    ) -> Result<RemoteLease> {
        let ttl_ns = Self::check(resource, owner, ttl)?;
        self.grant(
            resource,
            owner,
            ttl,
            &leases::acquire(resource, owner, ttl_ns, mode, None),
            Some(Duration::ZERO),
        )
    }

    fn grant(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        cmd: &[u8],
        wait: Option<Duration>,
    ) -> Result<RemoteLease> {
        let sent = Instant::now();
        // A waiting acquire re-asks every attempt timeout (its retry finds
        // the request queued and waits on); an unreachable cluster still
        // fails within the timeout.
        let result = self.with_client(self.config.timeout, |c| c.propose_waiting(cmd, wait))?;
        let lease = leases::decode_lease_result(&result, resource, owner, 0)?;
        // Valid from when this process learned of the grant, at the latest;
        // counted conservatively from the send time.
        Ok(RemoteLease {
            lease,
            valid_until: sent + ttl,
        })
    }

    /// Extends a held lease to `ttl` from now (the service's now).
    pub fn renew(&self, lease: &RemoteLease, ttl: Duration) -> Result<RemoteLease> {
        let l = &lease.lease;
        // A renewal that cannot finish while the lease is valid is of no use.
        let left = lease.valid_until.saturating_duration_since(Instant::now());
        let timeout = self.config.timeout.min(left.max(Duration::from_millis(1)));
        self.renew_token(&l.resource, &l.owner, l.token, ttl, timeout)
    }

    /// Extends the lease `token` of `owner` on `resource` (known by its
    /// names alone, as the C face and `Election` hold it); the call may
    /// take `timeout`.
    pub fn renew_token(
        &self,
        resource: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<RemoteLease> {
        let ttl_ns = Self::check(resource, owner, ttl)?;
        let sent = Instant::now();
        let result = self.with_client(timeout, |c| {
            c.propose(&leases::renew(resource, owner, token, ttl_ns))
        })?;
        let renewed = leases::decode_lease_result(&result, resource, owner, token)?;
        Ok(RemoteLease {
            lease: renewed,
            valid_until: sent + ttl,
        })
    }

    /// Ends a held lease; the next waiter is granted at once.
    pub fn release(&self, lease: &RemoteLease) -> Result<()> {
        let l = &lease.lease;
        self.release_token(&l.resource, &l.owner, l.token)
    }

    /// Ends the lease `token` of `owner` on `resource`.
    pub fn release_token(&self, resource: &str, owner: &str, token: u64) -> Result<()> {
        if resource.is_empty() || owner.is_empty() {
            return Err(Error::invalid(
                "lease: resource and owner must be non-empty",
            ));
        }
        let result = self.with_client(self.config.timeout, |c| {
            c.propose(&leases::release(resource, owner, token))
        })?;
        leases::decode_unit_result(&result, resource, owner, token)
    }

    /// The longest any call may take (retries included).
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// The current holders of `resource` (a linearizable read on the leader).
    pub fn holders(&self, resource: &str) -> Result<Vec<Lease>> {
        let result =
            self.with_client(self.config.timeout, |c| c.read(&leases::holders(resource)))?;
        leases::decode_holders(&result, resource)
    }
}

/// Leader election over the service: `lease::Election::new(client, ...)`.
impl LeaseBackend for LeaseClient {
    fn acquire_exclusive(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        timeout: Option<Duration>,
    ) -> Result<Lease> {
        self.acquire(resource, owner, ttl, Mode::Exclusive, timeout)
            .map(|l| l.lease)
    }
    fn renew_lease(&self, resource: &str, owner: &str, token: u64, ttl: Duration) -> Result<Lease> {
        // The caller does not say how long the lease has left: the renewal
        // may take up to the TTL (it is useless after that).
        let timeout = self.config.timeout.min(ttl);
        self.renew_token(resource, owner, token, ttl, timeout)
            .map(|l| l.lease)
    }
    fn release_lease(&self, resource: &str, owner: &str, token: u64) -> Result<()> {
        self.release_token(resource, owner, token)
    }
    fn lease_holders(&self, resource: &str) -> Result<Vec<Lease>> {
        self.holders(resource)
    }
}
