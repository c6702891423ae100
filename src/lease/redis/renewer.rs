//! Auto-renewal for a [`RedisLeaseTable`]: one renewer thread per table
//! serves every lease kept alive through it (not a thread per lease).
//!
//! Each lease is renewed `ttl / 3` after its last renewal *was sent*, so
//! the schedule never drifts past the expiry the server computed from that
//! request. A renewal that Redis refuses (`LeaseExpired`, `NotHolder`)
//! marks the lease lost at once; one that cannot reach Redis is retried
//! (every `ttl / 10`, at most 200 ms apart) until the lease's local expiry
//! passes, and then it is lost too: a lease whose renewals fail is
//! reported lost, never silently kept. `is_lost` is also true as soon as
//! the local clock passes the last known expiry, even if the renewer is
//! late.
//!
//! A loss also runs the callbacks registered with [`KeepAlive::on_lost`],
//! once each, on the renewer thread, so a program learns of it without
//! polling.
//!
//! The thread holds the table while it has leases to renew and exits when
//! it has none; the next [`RedisLeaseTable::keep_alive`] starts it again.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::RedisLeaseTable;
use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::lease::clock::nanos;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Told once why a kept-alive lease was lost.
pub type LostCallback = Box<dyn FnOnce(&Error) + Send>;

struct EntryState {
    lease: Lease,
    /// Local monotonic ns at which the next renewal is due.
    next_at: u64,
    renewals: u64,
    lost: Option<Error>,
    stopped: bool,
    on_lost: Vec<LostCallback>,
}

struct Entry {
    ttl: Duration,
    st: Mutex<EntryState>,
    cv: Condvar,
}

impl Entry {
    fn period(&self) -> u64 {
        (nanos(self.ttl) / 3).max(1)
    }

    fn retry(&self) -> u64 {
        (nanos(self.ttl) / 10).clamp(1_000_000, 200_000_000)
    }

    fn done(st: &EntryState) -> bool {
        st.stopped || st.lost.is_some()
    }
}

#[derive(Default)]
struct Sched {
    entries: Vec<Arc<Entry>>,
    running: bool,
}

/// The table's renewer: its schedule and the condvar its thread sleeps on.
#[derive(Default)]
pub(crate) struct Renewer {
    sched: Mutex<Sched>,
    cv: Condvar,
}

impl Renewer {
    fn add(&self, table: &RedisLeaseTable, e: Arc<Entry>) {
        let mut s = lock(&self.sched);
        s.entries.push(e);
        if !s.running {
            s.running = true;
            let t = table.clone();
            let spawned = std::thread::Builder::new()
                .name("quorumkit-redis-renewer".into())
                .spawn(move || run(t));
            if spawned.is_err() {
                s.running = false;
                // Without a thread nothing renews: the lease is lost at
                // its expiry, which `is_lost` reports.
            }
        }
        drop(s);
        self.cv.notify_all();
    }

    fn poke(&self) {
        let _s = lock(&self.sched);
        self.cv.notify_all();
    }
}

fn run(table: RedisLeaseTable) {
    let renewer = table.renewer();
    loop {
        let due: Vec<Arc<Entry>> = {
            let mut s = lock(&renewer.sched);
            loop {
                s.entries.retain(|e| !Entry::done(&lock(&e.st)));
                if s.entries.is_empty() {
                    s.running = false;
                    return;
                }
                let now = table.now_ns();
                let next = s
                    .entries
                    .iter()
                    .map(|e| lock(&e.st).next_at)
                    .min()
                    .unwrap_or(u64::MAX);
                if next <= now {
                    break;
                }
                s = renewer
                    .cv
                    .wait_timeout(s, Duration::from_nanos(next - now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let now = table.now_ns();
            s.entries
                .iter()
                .filter(|e| lock(&e.st).next_at <= now)
                .cloned()
                .collect()
        };
        for e in due {
            renew_one(&table, &e);
        }
    }
}

fn renew_one(table: &RedisLeaseTable, e: &Entry) {
    let lease = {
        let st = lock(&e.st);
        if Entry::done(&st) {
            return;
        }
        st.lease.clone()
    };
    let sent = table.now_ns();
    // Past its local expiry (the renewer was held up by slow calls for
    // other leases, or the process was paused): lost without asking, so
    // the callbacks hear of it no later than this.
    let result = if sent >= lease.expires_at {
        Err(Error::BackendUnavailable(format!(
            "no renewal of the lease on {:?} reached the server before its expiry",
            lease.resource
        )))
    } else {
        table.renew_token(&lease.resource, &lease.owner, lease.token, e.ttl)
    };
    let mut st = lock(&e.st);
    if st.stopped {
        return;
    }
    match result {
        Ok(l) => {
            st.lease.expires_at = l.expires_at;
            st.next_at = sent.saturating_add(e.period());
            st.renewals += 1;
        }
        Err(err @ Error::BackendUnavailable(_)) => {
            let now = table.now_ns();
            if now >= st.lease.expires_at {
                st.lost = Some(err);
            } else {
                st.next_at = now.saturating_add(e.retry()).min(st.lease.expires_at);
            }
        }
        Err(err) => st.lost = Some(err),
    }
    let told = match &st.lost {
        Some(err) => Some((err.clone(), std::mem::take(&mut st.on_lost))),
        None => None,
    };
    drop(st);
    e.cv.notify_all();
    // Outside the entry's lock: a callback may call back into the KeepAlive.
    if let Some((err, callbacks)) = told {
        for f in callbacks {
            // A panicking callback must not end the thread that renews
            // every other lease of the table.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&err)));
        }
    }
}

/// A lease that the table's renewer keeps alive (see the module docs).
/// Dropping it stops the renewals and releases the lease (best effort).
pub struct KeepAlive {
    table: RedisLeaseTable,
    entry: Arc<Entry>,
}

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAlive")
            .field("lease", &self.lease())
            .field("lost", &self.is_lost())
            .finish()
    }
}

impl RedisLeaseTable {
    /// Keeps `lease` (held from this table) alive: the table's one renewer
    /// thread renews it to `ttl` every `ttl / 3`, counted from when the
    /// previous renewal was sent (from the lease's grant for the first).
    pub fn keep_alive(&self, lease: Lease, ttl: Duration) -> Result<KeepAlive> {
        super::config::ttl_ms(ttl)?;
        let ttl = ttl.max(Duration::from_nanos(1));
        let period = (nanos(ttl) / 3).max(1);
        // The grant's expiry was counted from its request's sending: the
        // first renewal is due a third of the way through, whatever `ttl`.
        let granted_at = lease.expires_at.saturating_sub(nanos(ttl));
        let entry = Arc::new(Entry {
            ttl,
            st: Mutex::new(EntryState {
                next_at: granted_at.saturating_add(period),
                lease,
                renewals: 0,
                lost: None,
                stopped: false,
                on_lost: Vec::new(),
            }),
            cv: Condvar::new(),
        });
        self.renewer().add(self, entry.clone());
        Ok(KeepAlive {
            table: self.clone(),
            entry,
        })
    }
}

impl KeepAlive {
    /// The lease as last renewed (its `expires_at` moves forward).
    pub fn lease(&self) -> Lease {
        lock(&self.entry.st).lease.clone()
    }

    /// How many renewals succeeded.
    pub fn renewals(&self) -> u64 {
        lock(&self.entry.st).renewals
    }

    fn lost_in(&self, st: &EntryState) -> bool {
        st.lost.is_some() || (!st.stopped && self.table.now_ns() >= st.lease.expires_at)
    }

    /// Whether the lease is lost: a renewal was refused or failed until
    /// the expiry, or the local clock has passed its last known expiry.
    pub fn is_lost(&self) -> bool {
        self.lost_in(&lock(&self.entry.st))
    }

    /// Why it was lost, if a renewal said so (`LeaseExpired`, `NotHolder`,
    /// `BackendUnavailable`).
    pub fn lost_reason(&self) -> Option<Error> {
        lock(&self.entry.st).lost.clone()
    }

    /// Runs `f` once with the reason when the renewer finds the lease lost
    /// (a renewal refused, or failing until the expiry), on the renewer's
    /// thread; at once, on this thread, if that has happened already.
    /// Never runs after [`stop`](Self::stop) or a release. `f` should be
    /// quick: it delays the renewals of the table's other leases.
    pub fn on_lost(&self, f: impl FnOnce(&Error) + Send + 'static) {
        let mut st = lock(&self.entry.st);
        match st.lost.clone() {
            Some(err) => {
                drop(st);
                f(&err);
            }
            None if st.stopped => {}
            None => st.on_lost.push(Box::new(f)),
        }
    }

    /// Blocks until the lease is lost (true) or `timeout` passes (false;
    /// `None`: as long as it takes, or until stopped).
    pub fn wait_lost(&self, timeout: Option<Duration>) -> bool {
        let until = timeout.map(|t| Instant::now() + t);
        let mut st = lock(&self.entry.st);
        loop {
            if self.lost_in(&st) {
                return true;
            }
            if st.stopped {
                return false;
            }
            let left = st.lease.expires_at.saturating_sub(self.table.now_ns());
            let mut wait = Duration::from_nanos(left.max(1));
            if let Some(u) = until {
                let now = Instant::now();
                if now >= u {
                    return false;
                }
                wait = wait.min(u - now);
            }
            st = self
                .entry
                .cv
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops renewing; returns the lease as last renewed and why a renewal
    /// lost it, if one did.
    pub fn stop(&self) -> (Lease, Option<Error>) {
        let out = {
            let mut st = lock(&self.entry.st);
            st.stopped = true;
            st.on_lost.clear();
            (st.lease.clone(), st.lost.clone())
        };
        self.entry.cv.notify_all();
        self.table.renewer().poke();
        out
    }

    /// Stops renewing and releases the lease. If a renewal lost it,
    /// returns why and releases nothing; if only the local expiry passed,
    /// the server decides (`LeaseExpired` if it had ended).
    pub fn release(self) -> Result<()> {
        self.stop_and_release()
    }

    /// [`release`](Self::release) through a shared reference (for handles
    /// that are freed separately, such as the C ABI's); a second call
    /// answers `NotHolder` from the server.
    pub fn stop_and_release(&self) -> Result<()> {
        let (lease, lost) = self.stop();
        match lost {
            Some(e) => Err(e),
            None => self.table.release(&lease),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        if lock(&self.entry.st).stopped {
            return;
        }
        let (lease, lost) = self.stop();
        if lost.is_none() {
            let _ = self.table.release(&lease);
        }
    }
}
