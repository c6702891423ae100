//! Leader election on leases: whoever holds the exclusive lease on
//! `election/<name>` leads, and the lease's fencing token is the leader's
//! epoch, so a [`Fence`](super::Fence) refuses a deposed leader's writes.
//!
//! Works over any [`LeaseBackend`]: the in-process [`LeaseTable`] and, with
//! the `redis` feature, the Redis table shared by processes and machines.
//! A campaign waits FIFO behind other candidates; the winner's lease is
//! renewed in the background every `ttl / 3` (measured from when each
//! renewal is sent), and a failed renewal ends the term (`is_lost`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Lease, LeaseTable, Mode};
use crate::error::{Error, Result};

/// What an election needs from a lease table.
pub trait LeaseBackend: Send + Sync + 'static {
    /// Blocks until the exclusive lease is granted or `timeout` passes.
    fn acquire_exclusive(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        timeout: Option<Duration>,
    ) -> Result<Lease>;
    /// Extends a held lease.
    fn renew_lease(&self, resource: &str, owner: &str, token: u64, ttl: Duration) -> Result<Lease>;
    /// Ends a held lease.
    fn release_lease(&self, resource: &str, owner: &str, token: u64) -> Result<()>;
    /// The current holders of `resource`.
    fn lease_holders(&self, resource: &str) -> Result<Vec<Lease>>;
}

impl LeaseBackend for LeaseTable {
    fn acquire_exclusive(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        timeout: Option<Duration>,
    ) -> Result<Lease> {
        self.acquire(resource, owner, ttl, Mode::Exclusive, timeout)
    }
    fn renew_lease(&self, resource: &str, owner: &str, token: u64, ttl: Duration) -> Result<Lease> {
        self.renew_token(resource, owner, token, ttl)
    }
    fn release_lease(&self, resource: &str, owner: &str, token: u64) -> Result<()> {
        self.release_token(resource, owner, token)
    }
    fn lease_holders(&self, resource: &str) -> Result<Vec<Lease>> {
        Ok(self.holders(resource))
    }
}

#[cfg(feature = "redis")]
impl LeaseBackend for super::redis::RedisLeaseTable {
    fn acquire_exclusive(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        timeout: Option<Duration>,
    ) -> Result<Lease> {
        self.acquire(resource, owner, ttl, Mode::Exclusive, timeout)
    }
    fn renew_lease(&self, resource: &str, owner: &str, token: u64, ttl: Duration) -> Result<Lease> {
        self.renew_token(resource, owner, token, ttl)
    }
    fn release_lease(&self, resource: &str, owner: &str, token: u64) -> Result<()> {
        self.release_token(resource, owner, token)
    }
    fn lease_holders(&self, resource: &str) -> Result<Vec<Lease>> {
        self.holders(resource)
    }
}

/// Who leads, and since which epoch (the fencing token of its lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leading candidate's name.
    pub candidate: String,
    /// The epoch: strictly greater for every later leader.
    pub epoch: u64,
}

struct Term {
    lease: Lease,
    lost: Option<Error>,
    resigned: bool,
}

struct Shared<B> {
    backend: Arc<B>,
    resource: String,
    candidate: String,
    ttl: Duration,
    term: Mutex<Option<Term>>,
    changed: Condvar,
}

impl<B> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, Option<Term>> {
        self.term.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One candidate in the election `name` (see the module docs).
pub struct Election<B: LeaseBackend> {
    shared: Arc<Shared<B>>,
    renewer: Mutex<Option<JoinHandle<()>>>,
}

impl<B: LeaseBackend> std::fmt::Debug for Election<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("resource", &self.shared.resource)
            .field("candidate", &self.shared.candidate)
            .finish()
    }
}

impl<B: LeaseBackend> Election<B> {
    /// A candidate `candidate` in election `name`, whose leadership lease
    /// lasts `ttl` unless renewed.
    pub fn new(backend: Arc<B>, name: &str, candidate: &str, ttl: Duration) -> Result<Self> {
        if name.is_empty() || candidate.is_empty() {
            return Err(Error::invalid(
                "election and candidate names must not be empty",
            ));
        }
        if ttl < Duration::from_millis(3) {
            return Err(Error::invalid(format!(
                "the leadership ttl must be at least 3 ms, got {ttl:?}"
            )));
        }
        Ok(Election {
            shared: Arc::new(Shared {
                backend,
                resource: format!("election/{name}"),
                candidate: candidate.to_owned(),
                ttl,
                term: Mutex::new(None),
                changed: Condvar::new(),
            }),
            renewer: Mutex::new(None),
        })
    }

    /// Blocks until this candidate leads (FIFO behind other candidates) or
    /// `timeout` passes (`Timeout`). Returns the term's epoch. Campaigning
    /// while leading returns the current epoch.
    pub fn campaign(&self, timeout: Option<Duration>) -> Result<u64> {
        if let Some(t) = self.shared.lock().as_ref()
            && t.lost.is_none()
            && !t.resigned
        {
            return Ok(t.lease.token);
        }
        self.stop_renewer();
        let s = &self.shared;
        let lease = s
            .backend
            .acquire_exclusive(&s.resource, &s.candidate, s.ttl, timeout)?;
        let epoch = lease.token;
        *s.lock() = Some(Term {
            lease,
            lost: None,
            resigned: false,
        });
        let shared = self.shared.clone();
        *self.renewer.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::thread::spawn(move || renew_loop(&shared)));
        Ok(epoch)
    }

    /// Gives up leadership (releases the lease so the next candidate leads
    /// at once). A no-op when not leading.
    pub fn resign(&self) -> Result<()> {
        let lease = {
            let mut t = self.shared.lock();
            match t.as_mut() {
                Some(term) if !term.resigned && term.lost.is_none() => {
                    term.resigned = true;
                    Some(term.lease.clone())
                }
                _ => None,
            }
        };
        self.shared.changed.notify_all();
        self.stop_renewer();
        if let Some(l) = lease {
            let s = &self.shared;
            match s.backend.release_lease(&s.resource, &s.candidate, l.token) {
                Ok(()) | Err(Error::LeaseExpired { .. }) | Err(Error::NotHolder { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether this candidate leads now, as far as it knows: it won, has
    /// not resigned, and no renewal failed.
    pub fn is_leader(&self) -> bool {
        matches!(self.shared.lock().as_ref(), Some(t) if t.lost.is_none() && !t.resigned)
    }

    /// Why the last term ended, if a renewal failed (`LeaseExpired`,
    /// `NotHolder`, `BackendUnavailable`, ...).
    pub fn lost_reason(&self) -> Option<Error> {
        self.shared.lock().as_ref().and_then(|t| t.lost.clone())
    }

    /// Who leads now, asked of the table.
    pub fn leader(&self) -> Result<Option<Leader>> {
        let s = &self.shared;
        let holders = s.backend.lease_holders(&s.resource)?;
        Ok(holders.into_iter().max_by_key(|l| l.token).map(|l| Leader {
            candidate: l.owner.to_string(),
            epoch: l.token,
        }))
    }

    /// Observes leadership: returns as soon as the leader differs from
    /// `last` (None: "no leader"), or at `timeout` with the unchanged value.
    /// Asks the table every `poll` (a table cannot push changes across
    /// processes); this candidate's own changes are seen at once.
    /// Terms are told apart by their epochs: a later term always has a
    /// greater one, even with the same candidate.
    pub fn wait_change(
        &self,
        last: Option<&Leader>,
        poll: Duration,
        timeout: Option<Duration>,
    ) -> Result<Option<Leader>> {
        self.wait_epoch_change(last.map(|l| l.epoch), poll, timeout)
    }

    /// [`wait_change`](Self::wait_change) from the last term's epoch alone
    /// (None: "no leader").
    pub fn wait_epoch_change(
        &self,
        last_epoch: Option<u64>,
        poll: Duration,
        timeout: Option<Duration>,
    ) -> Result<Option<Leader>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let now_leader = self.leader()?;
            if now_leader.as_ref().map(|l| l.epoch) != last_epoch {
                return Ok(now_leader);
            }
            let mut wait = poll;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Ok(now_leader);
                }
                wait = wait.min(d - now);
            }
            let t = self.shared.lock();
            drop(
                self.shared
                    .changed
                    .wait_timeout(t, wait)
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
    }

    /// Observes leadership as an iterator: first the leader now, then each
    /// change (a new term, or nobody leading), as [`wait_change`] sees
    /// them every `poll`. It ends after `idle` passes with no change
    /// (`None`: never), and after an error, which it yields.
    ///
    /// [`wait_change`]: Self::wait_change
    pub fn observe(&self, poll: Duration, idle: Option<Duration>) -> Observe<'_, B> {
        Observe {
            election: self,
            poll,
            idle,
            last: None,
            done: false,
        }
    }

    fn stop_renewer(&self) {
        let handle = self
            .renewer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            self.shared.changed.notify_all();
            let _ = h.join();
        }
    }
}

/// The iterator of [`Election::observe`].
#[derive(Debug)]
pub struct Observe<'a, B: LeaseBackend> {
    election: &'a Election<B>,
    poll: Duration,
    idle: Option<Duration>,
    /// The last term yielded (`Some(None)`: "nobody led"); None before the first.
    last: Option<Option<u64>>,
    done: bool,
}

impl<B: LeaseBackend> Iterator for Observe<'_, B> {
    type Item = Result<Option<Leader>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.last {
            None => self.election.leader(),
            Some(last) => self.election.wait_epoch_change(last, self.poll, self.idle),
        };
        match r {
            Ok(now) => {
                let epoch = now.as_ref().map(|l| l.epoch);
                if self.last == Some(epoch) {
                    // `idle` passed with no change.
                    self.done = true;
                    return None;
                }
                self.last = Some(epoch);
                Some(Ok(now))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<B: LeaseBackend> Drop for Election<B> {
    fn drop(&mut self) {
        let _ = self.resign();
    }
}

/// Renews the term's lease every ttl/3 until it is resigned or lost.
fn renew_loop<B: LeaseBackend>(s: &Shared<B>) {
    let period = (s.ttl / 3).max(Duration::from_millis(1));
    let mut next = Instant::now() + period;
    loop {
        let lease = {
            let mut t = s.lock();
            loop {
                match t.as_ref() {
                    Some(term) if term.lost.is_none() && !term.resigned => {}
                    _ => return,
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                t = s
                    .changed
                    .wait_timeout(t, next - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            t.as_ref().map(|term| term.lease.clone())
        };
        let Some(lease) = lease else { return };
        let sent = Instant::now();
        let result = s
            .backend
            .renew_lease(&s.resource, &s.candidate, lease.token, s.ttl);
        let mut t = s.lock();
        let Some(term) = t.as_mut() else { return };
        if term.resigned {
            return;
        }
        match result {
            Ok(l) => term.lease = l,
            Err(e) => {
                term.lost = Some(e);
                drop(t);
                s.changed.notify_all();
                return;
            }
        }
        next = sent + period;
    }
}
