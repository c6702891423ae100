//! `LeaseGuard`: a held lease renewed in the background every `ttl / 3`.
//! If a renewal fails the guard is *lost*; it also counts as lost from the
//! moment the clock passes the lease's last known expiry, even if the
//! renewer is late (so `is_lost` is exact at the local deadline).
//!
//! Monotonic clock: one renewer thread per guard sleeps on a condvar until
//! the next renewal or the expiry. Manual clock: renewals run in the thread
//! that moves the clock, so tests are deterministic.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Lease;
use super::clock::{Clock, TimeListener, nanos};
use super::table::LeaseTable;
use crate::error::{Error, Result};

struct State {
    lease: Lease,
    renewed_at: u64,
    renewals: u64,
    lost: Option<Error>,
    stopped: bool,
}

struct Shared {
    table: LeaseTable,
    ttl: Duration,
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn period(&self) -> u64 {
        (nanos(self.ttl) / 3).max(1)
    }

    /// When the renewer must next act: the next renewal, or the expiry.
    fn next_wake(&self, st: &State) -> u64 {
        st.renewed_at
            .saturating_add(self.period())
            .min(st.lease.expires_at)
    }

    /// Renews if due at `now`; returns whether the guard is still live.
    fn step(&self, now: u64) -> bool {
        let lease = {
            let st = self.lock();
            if st.stopped || st.lost.is_some() {
                return false;
            }
            if now < self.next_wake(&st) {
                return true;
            }
            st.lease.clone()
        };
        let result = self.table.renew(&lease, self.ttl);
        let mut st = self.lock();
        if st.stopped {
            return false;
        }
        let live = match result {
            Ok(l) => {
                st.lease = l;
                st.renewed_at = now;
                st.renewals += 1;
                true
            }
            Err(e) => {
                st.lost = Some(e);
                false
            }
        };
        drop(st);
        self.cv.notify_all();
        live
    }

    fn is_lost(&self, st: &State) -> bool {
        !st.stopped && (st.lost.is_some() || self.table.now_ns() >= st.lease.expires_at)
    }
}

/// Receives manual clock moves (holds the guard weakly).
struct ManualRenewer(Weak<Shared>);

impl TimeListener for ManualRenewer {
    fn time_changed(&self, now: u64) {
        if let Some(s) = self.0.upgrade() {
            s.step(now);
            s.cv.notify_all();
        }
    }
}

fn renewer_loop(shared: Arc<Shared>) {
    let clock = super::clock::MonotonicClock;
    loop {
        {
            let mut st = shared.lock();
            loop {
                if st.stopped || st.lost.is_some() {
                    return;
                }
                let now = clock.now_ns();
                let wake = shared.next_wake(&st);
                if now >= wake {
                    break;
                }
                st = shared
                    .cv
                    .wait_timeout(st, Duration::from_nanos(wake - now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        if !shared.step(clock.now_ns()) {
            return;
        }
    }
}

/// A lease kept alive in the background; made by [`LeaseTable::lock`].
/// Dropping it stops the renewals and releases the lease.
pub struct LeaseGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    _listener: Option<Arc<ManualRenewer>>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("lease", &self.lease())
            .field("lost", &self.is_lost())
            .finish()
    }
}

impl LeaseGuard {
    /// Starts renewing `lease` (held from `table`) every `ttl / 3`, each
    /// time to `ttl` from the renewal.
    pub fn new(table: &LeaseTable, lease: Lease, ttl: Duration) -> LeaseGuard {
        let now = table.now_ns();
        let shared = Arc::new(Shared {
            table: table.clone(),
            ttl: ttl.max(Duration::from_nanos(1)),
            state: Mutex::new(State {
                lease,
                renewed_at: now,
                renewals: 0,
                lost: None,
                stopped: false,
            }),
            cv: Condvar::new(),
        });
        match table.clock() {
            Clock::Monotonic(_) => {
                let s = shared.clone();
                let thread = std::thread::Builder::new()
                    .name("quorumkit-lease-renewer".into())
                    .spawn(move || renewer_loop(s))
                    .expect("spawn the lease renewer thread");
                LeaseGuard {
                    shared,
                    thread: Some(thread),
                    _listener: None,
                }
            }
            Clock::Manual(m) => {
                let l = Arc::new(ManualRenewer(Arc::downgrade(&shared)));
                let weak: Weak<ManualRenewer> = Arc::downgrade(&l);
                m.subscribe(weak);
                LeaseGuard {
                    shared,
                    thread: None,
                    _listener: Some(l),
                }
            }
        }
    }

    /// The lease as last renewed.
    pub fn lease(&self) -> Lease {
        self.shared.lock().lease.clone()
    }

    /// The fencing token (constant across renewals).
    pub fn token(&self) -> u64 {
        self.shared.lock().lease.token
    }

    /// How many renewals succeeded.
    pub fn renewals(&self) -> u64 {
        self.shared.lock().renewals
    }

    /// Whether the lease is lost: a renewal failed, or the clock has passed
    /// its last known expiry.
    pub fn is_lost(&self) -> bool {
        let st = self.shared.lock();
        self.shared.is_lost(&st)
    }

    /// Why a renewal failed, if one did.
    pub fn lost_reason(&self) -> Option<Error> {
        self.shared.lock().lost.clone()
    }

    /// Blocks until the lease is lost (true) or `timeout` passes (false;
    /// `None` waits as long as it takes).
    pub fn wait_lost(&self, timeout: Option<Duration>) -> bool {
        let until = timeout.map(|t| Instant::now() + t);
        let mut st = self.shared.lock();
        loop {
            if self.shared.is_lost(&st) {
                return true;
            }
            if st.stopped {
                return false;
            }
            // Wake at the local expiry (monotonic) or when notified.
            let mut wait = match self.shared.table.clock() {
                Clock::Monotonic(c) => Some(Duration::from_nanos(
                    st.lease.expires_at.saturating_sub(c.now_ns()).max(1),
                )),
                Clock::Manual(_) => None,
            };
            if let Some(u) = until {
                let now = Instant::now();
                if now >= u {
                    return false;
                }
                wait = Some(wait.map_or(u - now, |w| w.min(u - now)));
            }
            st = match wait {
                None => self.shared.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(w) => {
                    self.shared
                        .cv
                        .wait_timeout(st, w)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    fn stop(&mut self) -> (Lease, Option<Error>) {
        let out = {
            let mut st = self.shared.lock();
            st.stopped = true;
            (st.lease.clone(), st.lost.clone())
        };
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        out
    }

    /// Stops renewing and releases the lease. If it was lost, returns why
    /// (`LeaseExpired` or `NotHolder`) and releases nothing.
    pub fn release(mut self) -> Result<()> {
        let (lease, lost) = self.stop();
        match lost {
            Some(e) => Err(e),
            None => self.shared.table.release(&lease),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.thread.is_none() && self.shared.lock().stopped {
            return;
        }
        let (lease, lost) = self.stop();
        if lost.is_none() {
            let _ = self.shared.table.release(&lease);
        }
    }
}
