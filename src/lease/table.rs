//! `LeaseTable`: the thread-safe lease table over [`LeaseMachine`] shards.
//!
//! - Sharded by resource (ahash) into `Mutex<LeaseMachine>`s that draw
//!   tokens from one atomic counter, so tokens strictly increase across the
//!   whole table.
//! - Each queued request has its own slot (mutex + condvar): a grant wakes
//!   exactly the waiters it serves (no polling, no thundering herd). Slots
//!   are filled after the shard lock is dropped, so a callback may block.
//! - Time: with the monotonic clock, one timer thread per table (started
//!   on the first queued request) sleeps until the earliest deadline of a
//!   shard that has waiters (holder expiry, lock-delay end, waiter timeout)
//!   and advances it. With a [`ManualClock`](super::ManualClock), moving
//!   the clock advances the table in the moving thread instead.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::cancel::{CancelToken, Wake};
use super::clock::{Clock, TimeListener, nanos};
use super::guard::LeaseGuard;
use super::machine::{AcquireOutcome, AcquireRequest, Event, LeaseConfig, LeaseMachine, WaiterId};
use super::{Lease, Mode};
use crate::error::{Error, Result};

type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

const SHARDS: usize = 16;

/// What a queued request's outcome is handed to instead of a waiting
/// thread (asyncio: it schedules the future's result on the event loop).
pub type Callback = Box<dyn FnOnce(Result<Lease>) + Send>;

enum SlotState {
    Pending(Option<Callback>),
    Done(Result<Lease>),
    /// The outcome went to its reader or callback.
    Taken,
}

struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

impl Wake for Slot {
    fn wake(&self) {
        // Taking the lock orders this wake after a waiter's check of the
        // token: it is either seen or the waiter is already asleep.
        let _st = self.lock();
        self.cv.notify_all();
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fill(&self, outcome: Result<Lease>) {
        let mut st = self.lock();
        match std::mem::replace(&mut *st, SlotState::Taken) {
            SlotState::Pending(Some(cb)) => {
                drop(st);
                cb(outcome);
            }
            SlotState::Pending(None) => {
                *st = SlotState::Done(outcome);
                drop(st);
                self.cv.notify_one();
            }
            // Filled once by construction; keep what is there.
            other => *st = other,
        }
    }
}

struct Shard {
    machine: LeaseMachine,
    slots: Map<WaiterId, Arc<Slot>>,
}

/// Outcomes to hand to slots once the shard lock is dropped.
type Deliveries = Vec<(Arc<Slot>, Result<Lease>)>;

impl Shard {
    fn collect(&mut self, out: &mut Deliveries) {
        for ev in self.machine.drain_events() {
            match ev {
                Event::Granted {
                    waiter: Some(id),
                    lease,
                } => {
                    if let Some(s) = self.slots.remove(&id) {
                        out.push((s, Ok(lease)));
                    }
                }
                Event::TimedOut { waiter, resource } => {
                    if let Some(s) = self.slots.remove(&waiter) {
                        out.push((
                            s,
                            Err(Error::Timeout {
                                resource: resource.to_string(),
                            }),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

fn deliver(d: Deliveries) {
    for (slot, outcome) in d {
        slot.fill(outcome);
    }
}

#[derive(Default)]
struct TimerState {
    /// The earliest deadline to wake for (u64::MAX: none).
    wake_at: u64,
    shutdown: bool,
}

#[derive(Default)]
struct TimerSignal {
    state: Mutex<TimerState>,
    cv: Condvar,
}

impl TimerSignal {
    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Inner {
    clock: Clock,
    config: LeaseConfig,
    hasher: ahash::RandomState,
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    timer: Arc<TimerSignal>,
    timer_started: OnceLock<()>,
    me: Weak<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.timer.lock().shutdown = true;
        self.timer.cv.notify_one();
    }
}

impl TimeListener for Inner {
    fn time_changed(&self, now: u64) {
        self.tick_all(now);
    }
}

impl Inner {
    fn shard_index(&self, resource: &str) -> usize {
        (self.hasher.hash_one(resource) as usize) % SHARDS
    }

    fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic inside the machine is a bug; the data is still the best we have.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on shard `i` at the clock's current time, then hands
    /// outcomes to waiters and tells the timer about new deadlines.
    fn with_shard<R>(&self, i: usize, f: impl FnOnce(&mut Shard, u64) -> R) -> R {
        let mut d = Deliveries::new();
        let mut wake = None;
        let r = {
            let mut s = self.lock_shard(i);
            let now = self.clock.now_ns();
            let r = f(&mut s, now);
            s.collect(&mut d);
            if s.machine.waiting() > 0 {
                wake = s.machine.next_deadline();
            }
            r
        };
        if let Some(at) = wake {
            self.schedule(at);
        }
        deliver(d);
        r
    }

    /// Advances every shard that has waiters and a due deadline; returns
    /// the earliest deadline of a shard that still has waiters.
    fn tick_all(&self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        for i in 0..SHARDS {
            let mut d = Deliveries::new();
            {
                let mut s = self.lock_shard(i);
                if s.machine.waiting() == 0 {
                    continue;
                }
                if s.machine.next_deadline().is_some_and(|at| at <= now) {
                    s.machine.advance(now);
                    s.collect(&mut d);
                }
                if s.machine.waiting() > 0
                    && let Some(at) = s.machine.next_deadline()
                {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
            deliver(d);
        }
        next
    }

    /// Makes the timer wake by `at` (monotonic clock only).
    fn schedule(&self, at: u64) {
        if !matches!(self.clock, Clock::Monotonic(_)) {
            return;
        }
        self.timer_started.get_or_init(|| {
            let weak = self.me.clone();
            let signal = self.timer.clone();
            std::thread::Builder::new()
                .name("quorumkit-lease-timer".into())
                .spawn(move || timer_loop(weak, signal))
                .expect("spawn the lease timer thread");
        });
        let mut st = self.timer.lock();
        if at < st.wake_at {
            st.wake_at = at;
            drop(st);
            self.timer.cv.notify_one();
        }
    }
}

/// The monotonic-clock timer: sleeps until the earliest deadline a shard
/// with waiters reported, advances the shards, repeats. Holds the table
/// only while ticking, so dropping the table ends it.
fn timer_loop(table: Weak<Inner>, signal: Arc<TimerSignal>) {
    let clock = super::clock::MonotonicClock;
    let mut st = signal.lock();
    loop {
        if st.shutdown {
            return;
        }
        let now = clock.now_ns();
        if st.wake_at > now {
            st = if st.wake_at == u64::MAX {
                signal.cv.wait(st).unwrap_or_else(|e| e.into_inner())
            } else {
                let dt = Duration::from_nanos(st.wake_at - now);
                signal
                    .cv
                    .wait_timeout(st, dt)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            };
            continue;
        }
        st.wake_at = u64::MAX;
        drop(st);
        let next = match table.upgrade() {
            Some(t) => t.tick_all(clock.now_ns()),
            None => return,
        };
        st = signal.lock();
        if let Some(at) = next {
            st.wake_at = st.wake_at.min(at);
        }
    }
}

/// The result of [`LeaseTable::enqueue`].
#[derive(Debug)]
pub enum Enqueued {
    /// Granted at once.
    Granted(Lease),
    /// Queued; the ticket waits for, or hands off, the outcome.
    Queued(Ticket),
}

/// A thread-safe lease table (see the module docs and docs/leases.md).
/// Cloning gives another handle to the same table.
#[derive(Clone)]
pub struct LeaseTable {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LeaseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseTable")
            .field("clock", &self.inner.clock)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for LeaseTable {
    fn default() -> Self {
        Self::new(Clock::default(), LeaseConfig::default())
    }
}

fn ttl_ns(ttl: Duration) -> Result<u64> {
    match nanos(ttl) {
        0 => Err(Error::invalid("ttl must be > 0")),
        n => Ok(n),
    }
}

impl LeaseTable {
    /// A table on `clock` (`MonotonicClock` or a `ManualClock`).
    pub fn new(clock: impl Into<Clock>, config: LeaseConfig) -> Self {
        let clock = clock.into();
        let tokens = Arc::new(AtomicU64::new(0));
        let inner = Arc::new_cyclic(|me| Inner {
            shards: (0..SHARDS)
                .map(|_| {
                    let mut machine = LeaseMachine::with_shared_tokens(config, tokens.clone());
                    // The table only delivers outcomes to queued requests.
                    machine.record_all_events(false);
                    CachePadded::new(Mutex::new(Shard {
                        machine,
                        slots: Map::default(),
                    }))
                })
                .collect(),
            clock: clock.clone(),
            config,
            hasher: ahash::RandomState::new(),
            timer: Arc::new(TimerSignal {
                state: Mutex::new(TimerState {
                    wake_at: u64::MAX,
                    shutdown: false,
                }),
                cv: Condvar::new(),
            }),
            timer_started: OnceLock::new(),
            me: me.clone(),
        });
        if let Clock::Manual(m) = &clock {
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            m.subscribe(weak);
        }
        LeaseTable { inner }
    }

    /// The table's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The settings.
    pub fn config(&self) -> LeaseConfig {
        self.inner.config
    }

    /// The clock's current reading (the time base of `Lease::expires_at`).
    pub fn now_ns(&self) -> u64 {
        self.inner.clock.now_ns()
    }

    fn request<'a>(
        resource: &'a str,
        owner: &'a str,
        ttl: Duration,
        mode: Mode,
        wait: bool,
        deadline: Option<u64>,
    ) -> Result<AcquireRequest<'a>> {
        Ok(AcquireRequest {
            resource,
            owner,
            ttl_ns: ttl_ns(ttl)?,
            mode,
            wait,
            deadline,
        })
    }

    /// Acquires a lease, blocking until it is granted (FIFO behind earlier
    /// requests) or until `timeout` passes (`Timeout`; `None` waits
    /// forever; zero fails at once unless the lease is free). The lease
    /// expires `ttl` after it is granted.
    pub fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<Lease> {
        match self.enqueue(resource, owner, ttl, mode, timeout)? {
            Enqueued::Granted(lease) => Ok(lease),
            Enqueued::Queued(mut ticket) => loop {
                if let Some(lease) = ticket.wait(None)? {
                    return Ok(lease);
                }
            },
        }
    }

    /// [`acquire`](Self::acquire) that `cancel` can stop: a cancel (before
    /// or during the wait) withdraws the request and answers `Cancelled`.
    /// A grant that races the cancel is released again, so `Cancelled`
    /// always means nothing is held.
    pub fn acquire_cancellable(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Lease> {
        let cancelled = || Error::Cancelled {
            resource: resource.to_owned(),
        };
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let mut ticket = match self.enqueue(resource, owner, ttl, mode, timeout)? {
            Enqueued::Granted(lease) => return Ok(lease),
            Enqueued::Queued(ticket) => ticket,
        };
        loop {
            if let Some(lease) = ticket.wait_cancellable(None, cancel)? {
                return Ok(lease);
            }
            if cancel.is_cancelled() {
                return match ticket.cancel() {
                    Cancelled::Granted(lease) => {
                        self.release(&lease)?;
                        Err(cancelled())
                    }
                    Cancelled::TimedOut => Err(Error::Timeout {
                        resource: resource.to_owned(),
                    }),
                    Cancelled::Withdrawn | Cancelled::AlreadyTaken => Err(cancelled()),
                };
            }
        }
    }

    /// The callback form of [`acquire_cancellable`](Self::acquire_cancellable),
    /// for callers that must not park a thread per waiter (an event loop, a
    /// binding's worker pool): `callback` receives the outcome exactly once,
    /// in this thread if it is decided at once, else in the thread that
    /// decides it (a release, the timer, or the thread that cancels one of
    /// `cancels`, which yields `Cancelled`). An `Err` from this call means
    /// the request was refused up front and the callback is never called.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire_with_callback(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
        cancels: &[&CancelToken],
        callback: Callback,
    ) -> Result<()> {
        if cancels.iter().any(|c| c.is_cancelled()) {
            return Err(Error::Cancelled {
                resource: resource.to_owned(),
            });
        }
        let mut ticket = match self.enqueue(resource, owner, ttl, mode, timeout)? {
            Enqueued::Granted(lease) => {
                callback(Ok(lease));
                return Ok(());
            }
            Enqueued::Queued(ticket) => ticket,
        };
        let once = Arc::new(OnceCallback(Mutex::new(Some(callback))));
        let waiter = Arc::new(CallbackWaiter {
            once: once.clone(),
            ticket: Mutex::new(None),
            table: self.clone(),
            resource: resource.to_owned(),
        });
        // The table's slot holds the waiter until the outcome is handed
        // over; the waiter holds the ticket so that a cancel can withdraw it.
        let held = waiter.clone();
        ticket.on_done(Box::new(move |outcome| {
            held.once.fire(outcome);
            held.ticket.lock().unwrap_or_else(|e| e.into_inner()).take();
        }))?;
        *waiter.ticket.lock().unwrap_or_else(|e| e.into_inner()) = Some(ticket);
        let weak: Arc<dyn Wake> = waiter;
        for c in cancels {
            c.register(Arc::downgrade(&weak));
        }
        Ok(())
    }

    /// Grants the lease if it is free now, else `Busy`; never queues and
    /// never disturbs holders or waiters.
    pub fn try_acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
    ) -> Result<Lease> {
        let req = Self::request(resource, owner, ttl, mode, false, None)?;
        let i = self.inner.shard_index(resource);
        let out = self
            .inner
            .with_shard(i, |s, now| s.machine.acquire(now, req))?;
        match out {
            AcquireOutcome::Granted(lease) => Ok(lease),
            _ => Err(Error::Busy {
                resource: resource.to_owned(),
            }),
        }
    }

    /// The non-blocking half of [`acquire`](Self::acquire): grants at once
    /// or queues and returns a [`Ticket`] to wait on (in slices, e.g. to
    /// check for signals) or to hand a callback. The ticket keeps the
    /// request's place in the queue. `timeout` (from now) is enforced by
    /// the table: the ticket then ends with `Timeout`. A zero timeout on a
    /// busy resource gives `Timeout` at once.
    pub fn enqueue(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<Enqueued> {
        let i = self.inner.shard_index(resource);
        let out = self.inner.with_shard(i, |s, now| {
            let deadline = timeout.map(|t| now.saturating_add(nanos(t)));
            let req = Self::request(resource, owner, ttl, mode, true, deadline)?;
            let out = s.machine.acquire(now, req)?;
            Ok::<_, Error>(match out {
                AcquireOutcome::Queued(id) => {
                    let slot = Arc::new(Slot {
                        state: Mutex::new(SlotState::Pending(None)),
                        cv: Condvar::new(),
                    });
                    s.slots.insert(id, slot.clone());
                    Ok((id, slot))
                }
                other => Err(other),
            })
        })?;
        match out {
            Ok((id, slot)) => Ok(Enqueued::Queued(Ticket {
                table: self.clone(),
                shard: i,
                id,
                slot,
                finished: false,
                callback: false,
            })),
            Err(AcquireOutcome::Granted(lease)) => Ok(Enqueued::Granted(lease)),
            Err(_) => Err(Error::Timeout {
                resource: resource.to_owned(),
            }),
        }
    }

    /// Extends `lease` to now + `ttl`; returns the renewed lease.
    /// `LeaseExpired` if it ran out first, `NotHolder` if it is not held
    /// (released, superseded, never granted).
    pub fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.renew_token(&lease.resource, &lease.owner, lease.token, ttl)
    }

    /// [`renew`](Self::renew) by resource, owner and token.
    pub fn renew_token(
        &self,
        resource: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
    ) -> Result<Lease> {
        let ttl = ttl_ns(ttl)?;
        let i = self.inner.shard_index(resource);
        self.inner.with_shard(i, |s, now| {
            s.machine.renew(now, resource, owner, token, ttl)
        })
    }

    /// Ends `lease` and grants the next waiters. Errors as
    /// [`renew`](Self::renew); a second release gives `NotHolder`.
    pub fn release(&self, lease: &Lease) -> Result<()> {
        self.release_token(&lease.resource, &lease.owner, lease.token)
    }

    /// [`release`](Self::release) by resource, owner and token.
    pub fn release_token(&self, resource: &str, owner: &str, token: u64) -> Result<()> {
        let i = self.inner.shard_index(resource);
        self.inner
            .with_shard(i, |s, now| s.machine.release(now, resource, owner, token))
    }

    /// The live leases on `resource`, oldest first.
    pub fn holders(&self, resource: &str) -> Vec<Lease> {
        let i = self.inner.shard_index(resource);
        self.inner
            .with_shard(i, |s, now| s.machine.holders(now, resource))
    }

    /// The live lease `token` on `resource`, if it is still held now (with
    /// its current expiry); `None` once it was released, expired or
    /// superseded. What a `Lease` handle reports is checked against this.
    pub fn lease_status(&self, resource: &str, token: u64) -> Option<Lease> {
        let i = self.inner.shard_index(resource);
        self.inner
            .with_shard(i, |s, now| s.machine.lease(now, resource, token))
    }

    /// How many resources the table keeps state for: held, queued for, in
    /// lock-delay, or with a lease that expired within its last TTL. Names
    /// that are none of these cost no memory.
    pub fn resource_count(&self) -> usize {
        // Advanced to now first: an expired lease's memory ends by time.
        (0..SHARDS)
            .map(|i| {
                self.inner.with_shard(i, |s, now| {
                    s.machine.advance(now);
                    s.machine.resource_count()
                })
            })
            .sum()
    }

    /// The number of queued requests on `resource`.
    pub fn queue_len(&self, resource: &str) -> usize {
        let i = self.inner.shard_index(resource);
        self.inner
            .with_shard(i, |s, _| s.machine.queued(resource).len())
    }

    /// Advances every shard to the clock's time now: expiries, lock-delay
    /// ends and waiter timeouts take effect and waiters are granted. The
    /// table does this by itself (timer thread or manual clock); calling it
    /// is never needed for correctness.
    pub fn advance(&self) {
        let now = self.now_ns();
        for i in 0..SHARDS {
            self.inner.with_shard(i, |s, _| s.machine.advance(now));
        }
    }

    /// The earliest time at which time alone changes the table's state.
    pub fn next_deadline(&self) -> Option<u64> {
        (0..SHARDS)
            .filter_map(|i| self.inner.with_shard(i, |s, _| s.machine.next_deadline()))
            .min()
    }

    /// Acquires (as [`acquire`](Self::acquire)) and returns a guard that
    /// renews the lease every `ttl / 3` in the background and releases it
    /// when dropped.
    pub fn lock(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<LeaseGuard> {
        let lease = self.acquire(resource, owner, ttl, mode, timeout)?;
        Ok(LeaseGuard::new(self, lease, ttl))
    }
}

/// A queued acquire request. Wait for it ([`wait`](Self::wait)), hand it a
/// callback ([`on_done`](Self::on_done)), or withdraw it
/// ([`cancel`](Self::cancel)). Dropping an unfinished ticket cancels it
/// (and releases a lease that was granted but never read).
pub struct Ticket {
    table: LeaseTable,
    shard: usize,
    id: WaiterId,
    slot: Arc<Slot>,
    /// The outcome was taken (`wait`) or the request withdrawn.
    finished: bool,
    /// A callback receives the outcome.
    callback: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("id", &self.id)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Ticket {
    /// The request's id in its shard's machine.
    pub fn id(&self) -> WaiterId {
        self.id
    }

    /// Blocks up to `max` (`None`: until decided) for the outcome:
    /// `Ok(Some(lease))` granted, `Err(Timeout)` the request's timeout
    /// passed, `Ok(None)` still queued. The outcome is given once; after
    /// that (or after `on_done`) this answers `InvalidArgument`.
    pub fn wait(&mut self, max: Option<Duration>) -> Result<Option<Lease>> {
        self.wait_inner(max, None)
    }

    /// [`wait`](Self::wait) that also returns `Ok(None)` as soon as
    /// `cancel` is cancelled (the request stays queued: withdraw it with
    /// [`cancel`](Self::cancel)).
    pub fn wait_cancellable(
        &mut self,
        max: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Option<Lease>> {
        let slot: Arc<dyn Wake> = self.slot.clone();
        cancel.register(Arc::downgrade(&slot));
        self.wait_inner(max, Some(cancel))
    }

    fn wait_inner(
        &mut self,
        max: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Option<Lease>> {
        if self.finished || self.callback {
            return Err(Error::invalid("this ticket's outcome was already taken"));
        }
        let mut st = self.slot.lock();
        let deadline = max.map(|m| std::time::Instant::now() + m);
        loop {
            if let SlotState::Done(_) = &*st {
                let SlotState::Done(outcome) = std::mem::replace(&mut *st, SlotState::Taken) else {
                    unreachable!()
                };
                self.finished = true;
                return outcome.map(Some);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Ok(None);
            }
            st = match deadline {
                None => self.slot.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    self.slot
                        .cv
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Hands the outcome to `callback`, called exactly once: at once (in
    /// this thread) if already decided, else from the thread that decides
    /// it (a release, an acquire, the timer, a manual clock move), after the
    /// table's locks are dropped. The callback owns a granted lease. The
    /// ticket can still be [`cancel`](Self::cancel)led; dropping it then
    /// leaves the request queued for the callback.
    pub fn on_done(&mut self, callback: Callback) -> Result<()> {
        if self.finished || self.callback {
            return Err(Error::invalid("this ticket's outcome was already taken"));
        }
        self.callback = true;
        let mut st = self.slot.lock();
        match std::mem::replace(&mut *st, SlotState::Taken) {
            SlotState::Done(outcome) => {
                drop(st);
                callback(outcome);
            }
            SlotState::Pending(_) => *st = SlotState::Pending(Some(callback)),
            SlotState::Taken => {}
        }
        Ok(())
    }

    /// Withdraws the request; says what became of it. After a grant that
    /// raced ahead (`Cancelled::Granted`) the caller holds the lease and
    /// should release it.
    pub fn cancel(&mut self) -> Cancelled {
        if self.finished {
            return Cancelled::AlreadyTaken;
        }
        self.finished = true;
        let id = self.id;
        let removed = self.table.inner.with_shard(self.shard, |s, now| {
            let removed = s.machine.cancel(now, id);
            if removed {
                s.slots.remove(&id);
            }
            removed
        });
        if removed {
            return Cancelled::Withdrawn;
        }
        if self.callback {
            return Cancelled::AlreadyTaken;
        }
        // Decided by another thread, which fills the slot right after
        // dropping the shard lock: wait for it.
        let mut st = self.slot.lock();
        loop {
            match std::mem::replace(&mut *st, SlotState::Taken) {
                SlotState::Done(Ok(lease)) => return Cancelled::Granted(lease),
                SlotState::Done(Err(_)) => return Cancelled::TimedOut,
                SlotState::Pending(cb) => {
                    *st = SlotState::Pending(cb);
                    st = self.slot.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                SlotState::Taken => return Cancelled::AlreadyTaken,
            }
        }
    }
}

/// A callback that runs at most once, whichever path gets to it first.
struct OnceCallback(Mutex<Option<Callback>>);

impl OnceCallback {
    fn fire(&self, outcome: Result<Lease>) {
        let cb = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(cb) = cb {
            cb(outcome);
        }
    }
}

/// A queued callback acquire, woken by its cancel tokens.
struct CallbackWaiter {
    once: Arc<OnceCallback>,
    ticket: Mutex<Option<Ticket>>,
    table: LeaseTable,
    resource: String,
}

impl Wake for CallbackWaiter {
    fn wake(&self) {
        let ticket = self.ticket.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut ticket) = ticket else { return };
        match ticket.cancel() {
            Cancelled::Withdrawn => self.once.fire(Err(Error::Cancelled {
                resource: self.resource.clone(),
            })),
            Cancelled::Granted(lease) => {
                let _ = self.table.release(&lease);
                self.once.fire(Err(Error::Cancelled {
                    resource: self.resource.clone(),
                }));
            }
            // Decided already: the table hands the outcome to the callback.
            Cancelled::TimedOut | Cancelled::AlreadyTaken => {}
        }
    }
}

/// What [`Ticket::cancel`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// The request was still queued and is gone; nothing was granted.
    Withdrawn,
    /// It had been granted: the caller now holds this lease.
    Granted(Lease),
    /// Its timeout had passed.
    TimedOut,
    /// The outcome was already taken by `wait` or goes to the callback.
    AlreadyTaken,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.callback {
            return;
        }
        if let Cancelled::Granted(lease) = self.cancel() {
            let _ = self.table.release(&lease);
        }
    }
}
