//! [`Renewer`]: one background thread that keeps every registered lease
//! of a [`RedisLeaseTable`] alive, renewing each at a third of its TTL
//! measured from when the previous renewal was *sent* (so a slow reply
//! never pushes a renewal past the expiry). A failed renewal ends that
//! lease's protection at once: it is reported lost, never silently kept.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::RedisLeaseTable;
use crate::error::{Error, Result};
use crate::lease::Lease;

/// What the renewer and the lease's owner share.
#[derive(Default)]
struct Status {
    state: Mutex<StatusState>,
    cv: Condvar,
}

#[derive(Default)]
struct StatusState {
    lease: Option<Lease>,
    lost: Option<Error>,
}

struct Entry {
    lease: Lease,
    ttl: Duration,
    next: Instant,
    status: Arc<Status>,
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    next_id: u64,
    thread: bool,
}

struct Inner {
    table: RedisLeaseTable,
    state: Mutex<State>,
    wake: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The table-wide renewer. Cloning gives another handle to the same one.
#[derive(Clone)]
pub struct Renewer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Renewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewer")
            .field("leases", &self.inner.lock().entries.len())
            .finish()
    }
}

/// A lease kept alive by a [`Renewer`] until [`release`](Self::release)d
/// (or dropped, which releases it too).
pub struct RenewedLease {
    id: u64,
    renewer: Renewer,
    status: Arc<Status>,
    released: bool,
}

impl Renewer {
    /// A renewer for `table`; its thread starts with the first lease and
    /// ends when none is left.
    pub fn new(table: RedisLeaseTable) -> Self {
        Renewer {
            inner: Arc::new(Inner {
                table,
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Keeps `lease` alive, renewing it for `ttl` every `ttl / 3`.
    pub fn keep(&self, lease: Lease, ttl: Duration) -> RenewedLease {
        let status = Arc::new(Status::default());
        status.state.lock().unwrap_or_else(|e| e.into_inner()).lease = Some(lease.clone());
        let mut st = self.inner.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.entries.insert(
            id,
            Entry {
                lease,
                ttl,
                next: Instant::now() + ttl / 3,
                status: status.clone(),
            },
        );
        if !st.thread {
            st.thread = true;
            let weak = Arc::downgrade(&self.inner);
            std::thread::Builder::new()
                .name("qk-redis-renewer".into())
                .spawn(move || run(weak))
                .expect("spawn the lease renewer thread");
        }
        drop(st);
        self.inner.wake.notify_all();
        RenewedLease {
            id,
            renewer: self.clone(),
            status,
            released: false,
        }
    }

    /// How many leases it keeps alive now.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Whether it keeps none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The renewer thread: sleeps until the earliest renewal is due, renews
/// the due leases, and exits when none is left.
fn run(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let due: Vec<(u64, Lease, Duration)> = {
            let mut st = inner.lock();
            loop {
                if st.entries.is_empty() {
                    st.thread = false;
                    return;
                }
                let now = Instant::now();
                let earliest = st
                    .entries
                    .values()
                    .map(|e| e.next)
                    .min()
                    .expect("not empty");
                if earliest <= now {
                    break;
                }
                st = inner
                    .wake
                    .wait_timeout(st, earliest - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let now = Instant::now();
            st.entries
                .iter()
                .filter(|(_, e)| e.next <= now)
                .map(|(id, e)| (*id, e.lease.clone(), e.ttl))
                .collect()
        };
        for (id, lease, ttl) in due {
            let sent = Instant::now();
            let result = inner.table.renew(&lease, ttl);
            let mut st = inner.lock();
            let Some(entry) = st.entries.get_mut(&id) else {
                continue; // released meanwhile
            };
            let status = entry.status.clone();
            match result {
                Ok(l) => {
                    entry.lease = l.clone();
                    entry.next = sent + ttl / 3;
                    drop(st);
                    status.state.lock().unwrap_or_else(|e| e.into_inner()).lease = Some(l);
                }
                Err(e) => {
                    st.entries.remove(&id);
                    drop(st);
                    status.state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(e);
                    status.cv.notify_all();
                }
            }
        }
        drop(inner);
    }
}

/// A handle that watches one [`RenewedLease`] for loss from anywhere
/// (cloneable; it does not keep the lease alive).
#[derive(Clone)]
pub struct LossWatch {
    status: Arc<Status>,
}

impl LossWatch {
    /// Whether a renewal failed.
    pub fn is_lost(&self) -> bool {
        self.status
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost
            .is_some()
    }

    /// Blocks until the lease is lost (true) or `timeout` passes (false).
    pub fn wait_lost(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.status.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.lost.is_some() {
                return true;
            }
            st = match deadline {
                None => self.status.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.status
                        .cv
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl RenewedLease {
    /// A watcher of this lease's loss, usable from other threads.
    pub fn watch(&self) -> LossWatch {
        LossWatch {
            status: self.status.clone(),
        }
    }

    /// The lease as last renewed.
    pub fn lease(&self) -> Lease {
        let st = self.status.state.lock().unwrap_or_else(|e| e.into_inner());
        st.lease.clone().expect("set at creation")
    }

    /// Whether a renewal failed (the lease may have passed to another).
    pub fn is_lost(&self) -> bool {
        self.lost_reason().is_some()
    }

    /// Why the renewal failed (`LeaseExpired`, `NotHolder`,
    /// `BackendUnavailable`, ...), if it did.
    pub fn lost_reason(&self) -> Option<Error> {
        self.status
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost
            .clone()
    }

    /// Blocks until the lease is lost (true) or `timeout` passes (false).
    pub fn wait_lost(&self, timeout: Option<Duration>) -> bool {
        self.watch().wait_lost(timeout)
    }

    /// Stops renewing and releases the lease. If it was lost, returns why
    /// (the work done under it was not protected the whole time).
    pub fn release(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        self.renewer.inner.lock().entries.remove(&self.id);
        self.renewer.inner.wake.notify_all();
        if let Some(e) = self.lost_reason() {
            return Err(e);
        }
        let lease = self.lease();
        self.renewer.inner.table.release(&lease)
    }
}

impl Drop for RenewedLease {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
