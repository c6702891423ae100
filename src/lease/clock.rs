//! Clocks for the lease table: the process's monotonic clock, or a manual
//! clock that tests move by hand. Both count nanoseconds; wall-clock
//! changes never affect either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Something that reacts when a [`ManualClock`] is moved (a table grants
/// and times out waiters; a guard renews). Runs in the moving thread.
pub(crate) trait TimeListener: Send + Sync {
    fn time_changed(&self, now: u64);
}

/// The process's monotonic clock (`std::time::Instant`): nanoseconds since
/// a fixed point early in the process, shared by every table, so times from
/// different tables compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl MonotonicClock {
    /// Nanoseconds since the process's clock origin (saturating; 584 years).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

struct ManualInner {
    now: AtomicU64,
    listeners: Mutex<Vec<Weak<dyn TimeListener>>>,
    /// Serializes moves so listeners see times in order.
    moving: Mutex<()>,
}

/// A clock that only moves when told to. Moving it runs, in the moving
/// thread and before `set`/`advance` return, every table and guard that
/// uses it: waiters whose lease became free are granted, timed-out ones
/// fail, guards renew or are marked lost. Tests with it are deterministic.
/// Cloning gives another handle to the same clock.
#[derive(Clone)]
pub struct ManualClock(Arc<ManualInner>);

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManualClock({} ns)", self.now_ns())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ManualClock {
    /// A clock reading `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        ManualClock(Arc::new(ManualInner {
            now: AtomicU64::new(start_ns),
            listeners: Mutex::new(Vec::new()),
            moving: Mutex::new(()),
        }))
    }

    /// The current reading.
    pub fn now_ns(&self) -> u64 {
        self.0.now.load(Ordering::Acquire)
    }

    /// Moves the clock to `now_ns`; `InvalidArgument` if that is earlier
    /// than the current reading (monotonic time never goes back).
    pub fn set(&self, now_ns: u64) -> Result<()> {
        self.move_by(|cur| {
            if now_ns < cur {
                Err(Error::invalid(format!(
                    "a manual clock cannot go back (from {cur} ns to {now_ns} ns)"
                )))
            } else {
                Ok(now_ns)
            }
        })
        .map(|_| ())
    }

    /// Moves the clock forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        self.advance_ns(nanos(by));
    }

    /// Moves the clock forward by `by_ns` nanoseconds (saturating); returns
    /// the new reading.
    pub fn advance_ns(&self, by_ns: u64) -> u64 {
        self.move_by(|cur| Ok(cur.saturating_add(by_ns)))
            .expect("moving forward cannot fail")
    }

    fn move_by(&self, to: impl FnOnce(u64) -> Result<u64>) -> Result<u64> {
        let _moving = self.0.moving.lock().unwrap_or_else(|e| e.into_inner());
        let to = to(self.now_ns())?;
        self.0.now.store(to, Ordering::Release);
        let listeners: Vec<_> = {
            let mut l = self.0.listeners.lock().unwrap_or_else(|e| e.into_inner());
            l.retain(|w| w.strong_count() > 0);
            l.iter().filter_map(Weak::upgrade).collect()
        };
        for l in listeners {
            l.time_changed(to);
        }
        Ok(to)
    }

    pub(crate) fn subscribe(&self, l: Weak<dyn TimeListener>) {
        self.0
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(l);
    }

    /// Whether two handles are the same clock.
    pub fn same_as(&self, other: &ManualClock) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The clock a table runs on.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The process's monotonic clock; the table runs a timer thread.
    Monotonic(MonotonicClock),
    /// A manual clock; moving it drives the table.
    Manual(ManualClock),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::Monotonic(MonotonicClock)
    }
}

impl From<MonotonicClock> for Clock {
    fn from(c: MonotonicClock) -> Self {
        Clock::Monotonic(c)
    }
}

impl From<ManualClock> for Clock {
    fn from(c: ManualClock) -> Self {
        Clock::Manual(c)
    }
}

impl From<&ManualClock> for Clock {
    fn from(c: &ManualClock) -> Self {
        Clock::Manual(c.clone())
    }
}

impl Clock {
    /// The current reading in nanoseconds.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match self {
            Clock::Monotonic(c) => c.now_ns(),
            Clock::Manual(c) => c.now_ns(),
        }
    }
}

/// Nanoseconds of a duration, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
