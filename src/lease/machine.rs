//! The pure lease state machine: commands with an explicit `now`
//! (monotonic nanoseconds), deterministic results, events, and the next
//! deadline at which time alone changes something. No threads, no clock:
//! the same machine backs the in-process [`super::LeaseTable`] and can be
//! replicated (every command is a deterministic function of its inputs).
//!
//! Time: every command first advances the machine to its `now`; a `now`
//! below one seen before counts as that earlier time (time never goes back).
//!
//! Memory: a resource's entry lives while it has holders, waiters, a
//! lock-delay, or leases that expired without release (kept so a late
//! holder hears `LeaseExpired`, not `NotHolder`, until the resource is
//! granted again). Idle entries are swept in amortized O(1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Lease, Mode};
use crate::error::{Error, Result};

type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Machine settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Chubby's lock-delay: after a lease expires without being released,
    /// its resource grants nothing for this long (0 = no delay).
    pub lock_delay_ns: u64,
}

/// A queued acquire request (unique within one machine, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(pub u64);

/// An acquire command.
#[derive(Debug, Clone, Copy)]
pub struct AcquireRequest<'a> {
    /// The resource name (non-empty).
    pub resource: &'a str,
    /// The requesting owner (non-empty).
    pub owner: &'a str,
    /// Lease length in nanoseconds (> 0), counted from the grant.
    pub ttl_ns: u64,
    /// Exclusive or shared.
    pub mode: Mode,
    /// Queue when the lease cannot be granted now (`false`: a try-lock that
    /// answers `Busy` and changes nothing).
    pub wait: bool,
    /// When a queued request gives up (absolute clock time; `None` = never).
    /// A request whose deadline is not after `now` is not queued (`Busy`).
    pub deadline: Option<u64>,
}

/// What an acquire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// Granted at once.
    Granted(Lease),
    /// Queued: an `Event::Granted` or `Event::TimedOut` with this id follows.
    Queued(WaiterId),
    /// Not granted and not queued (try-lock, or deadline already passed).
    Busy,
}

/// Something that happened, in order; read them with
/// [`LeaseMachine::drain_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lease was granted: to a queued request (`waiter`) or at once.
    Granted {
        /// The queued request served, if it was queued.
        waiter: Option<WaiterId>,
        /// The new lease.
        lease: Lease,
    },
    /// A lease got a new expiry.
    Renewed {
        /// The lease after renewal.
        lease: Lease,
    },
    /// A lease was released by its holder.
    Released {
        /// The lease as it was.
        lease: Lease,
    },
    /// A lease reached its expiry without renewal or release.
    Expired {
        /// The lease as it was.
        lease: Lease,
    },
    /// A queued request's deadline passed before a grant.
    TimedOut {
        /// The request.
        waiter: WaiterId,
        /// Its resource.
        resource: Arc<str>,
    },
}

#[derive(Debug, Clone)]
struct Holder {
    token: u64,
    owner: Arc<str>,
    mode: Mode,
    expires_at: u64,
}

#[derive(Debug, Clone)]
struct Waiter {
    id: WaiterId,
    owner: Arc<str>,
    ttl_ns: u64,
    mode: Mode,
    deadline: Option<u64>,
}

#[derive(Debug)]
struct Resource {
    name: Arc<str>,
    holders: Vec<Holder>,
    queue: VecDeque<Waiter>,
    /// Leases that expired un-released since the last grant here.
    expired: Vec<Holder>,
    /// Lock-delay: nothing is granted before this time.
    blocked_until: u64,
    /// The last owner granted here: a repeat owner costs no allocation.
    last_owner: Option<Arc<str>>,
}

impl Resource {
    fn idle(&self, now: u64) -> bool {
        self.holders.is_empty()
            && self.queue.is_empty()
            && self.expired.is_empty()
            && self.blocked_until <= now
    }

    fn lease(&self, h: &Holder) -> Lease {
        Lease {
            resource: self.name.clone(),
            owner: h.owner.clone(),
            token: h.token,
            mode: h.mode,
            expires_at: h.expires_at,
        }
    }

    /// Whether a request of `mode` fits beside the current holders.
    fn compatible(&self, mode: Mode) -> bool {
        match self.holders.first() {
            None => true,
            Some(h) => mode == Mode::Shared && h.mode == Mode::Shared,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Expiry(u64),
    WaiterTimeout(WaiterId),
    DelayEnd,
}

/// A deadline in the heap; stale entries (renewed, released, granted) are
/// skipped when popped rather than removed (cheaper than a search).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: u64,
    kind: TimerKind,
    resource: Arc<str>,
}

/// Where tokens come from: the machine's own counter, or one shared by
/// several machines (the table's shards) so tokens stay strictly
/// increasing across all of them.
#[derive(Debug)]
enum Tokens {
    Local(u64),
    Shared(Arc<AtomicU64>),
}

impl Tokens {
    fn next(&mut self) -> u64 {
        match self {
            Tokens::Local(n) => {
                *n += 1;
                *n
            }
            // Relaxed is enough: the token is published under the caller's lock.
            Tokens::Shared(a) => a.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// The lease state machine. See the module docs.
#[derive(Debug)]
pub struct LeaseMachine {
    config: LeaseConfig,
    now: u64,
    tokens: Tokens,
    next_waiter: u64,
    resources: Map<Arc<str>, Resource>,
    /// Queued request -> its resource.
    waiting: Map<WaiterId, Arc<str>>,
    timers: BinaryHeap<Reverse<Timer>>,
    live_timers: usize,
    events: Vec<Event>,
    ops_since_sweep: usize,
}

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        Err(Error::invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

fn check_ttl(ttl_ns: u64) -> Result<()> {
    if ttl_ns == 0 {
        Err(Error::invalid("ttl must be > 0"))
    } else {
        Ok(())
    }
}

fn not_holder(resource: &str, owner: &str, token: u64) -> Error {
    Error::NotHolder {
        resource: resource.to_owned(),
        owner: owner.to_owned(),
        token,
    }
}

impl LeaseMachine {
    /// An empty machine at time 0 whose first token is 1.
    pub fn new(config: LeaseConfig) -> Self {
        Self::with_tokens(config, Tokens::Local(0))
    }

    /// A machine drawing tokens from a counter shared with other machines
    /// (each token is `counter + 1` after an atomic increment).
    pub fn with_shared_tokens(config: LeaseConfig, counter: Arc<AtomicU64>) -> Self {
        Self::with_tokens(config, Tokens::Shared(counter))
    }

    fn with_tokens(config: LeaseConfig, tokens: Tokens) -> Self {
        LeaseMachine {
            config,
            now: 0,
            tokens,
            next_waiter: 0,
            resources: Map::default(),
            waiting: Map::default(),
            timers: BinaryHeap::new(),
            live_timers: 0,
            events: Vec::new(),
            ops_since_sweep: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// The latest time the machine has seen.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The number of queued requests.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The live leases on `resource` (after advancing to `now`), in grant order.
    pub fn holders(&mut self, now: u64, resource: &str) -> Vec<Lease> {
        self.advance(now);
        match self.resources.get(resource) {
            Some(r) => r.holders.iter().map(|h| r.lease(h)).collect(),
            None => Vec::new(),
        }
    }

    /// The queued requests on `resource`, head first.
    pub fn queued(&self, resource: &str) -> Vec<WaiterId> {
        self.resources
            .get(resource)
            .map(|r| r.queue.iter().map(|w| w.id).collect())
            .unwrap_or_default()
    }

    /// Takes the events recorded since the last call, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// The earliest time at which time alone changes the state (a lease
    /// expiry, a lock-delay end, a queued request's deadline), if any.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse(t)) = self.timers.peek() {
            if self.timer_live(t) {
                return Some(t.at);
            }
            self.timers.pop();
        }
        None
    }

    /// Acquire: grants at once when the resource is free for `mode` and
    /// nobody is queued (FIFO: a shared request behind a queued exclusive
    /// one waits); otherwise queues (`wait`) or answers `Busy`. A request
    /// that is not granted changes nothing but the queue.
    pub fn acquire(&mut self, now: u64, req: AcquireRequest<'_>) -> Result<AcquireOutcome> {
        check_name("resource", req.resource)?;
        check_name("owner", req.owner)?;
        check_ttl(req.ttl_ns)?;
        self.advance(now);
        let now = self.now;
        self.maybe_sweep();
        let r = match self.resources.get_mut(req.resource) {
            Some(r) => r,
            None => {
                let name: Arc<str> = Arc::from(req.resource);
                self.resources
                    .entry(name.clone())
                    .or_insert_with(|| Resource {
                        name,
                        holders: Vec::new(),
                        queue: VecDeque::new(),
                        expired: Vec::new(),
                        blocked_until: 0,
                        last_owner: None,
                    })
            }
        };
        if r.queue.is_empty() && r.blocked_until <= now && r.compatible(req.mode) {
            let owner = match &r.last_owner {
                Some(o) if &**o == req.owner => o.clone(),
                _ => Arc::from(req.owner),
            };
            let lease = grant(
                r,
                &mut self.tokens,
                &mut self.timers,
                &mut self.live_timers,
                now,
                owner,
                req.ttl_ns,
                req.mode,
            );
            self.events.push(Event::Granted {
                waiter: None,
                lease: lease.clone(),
            });
            return Ok(AcquireOutcome::Granted(lease));
        }
        if !req.wait || req.deadline.is_some_and(|d| d <= now) {
            return Ok(AcquireOutcome::Busy);
        }
        self.next_waiter += 1;
        let id = WaiterId(self.next_waiter);
        r.queue.push_back(Waiter {
            id,
            owner: Arc::from(req.owner),
            ttl_ns: req.ttl_ns,
            mode: req.mode,
            deadline: req.deadline,
        });
        let name = r.name.clone();
        if let Some(d) = req.deadline {
            self.push_timer(d, TimerKind::WaiterTimeout(id), name.clone());
        }
        self.waiting.insert(id, name);
        Ok(AcquireOutcome::Queued(id))
    }

    /// Withdraws a queued request (a timeout or an interrupt on the
    /// caller's side). Returns whether it was still queued; a request
    /// already granted or timed out is left as it is. Removing a queued
    /// exclusive request may let shared requests behind it in.
    pub fn cancel(&mut self, now: u64, waiter: WaiterId) -> bool {
        self.advance(now);
        let Some(name) = self.waiting.remove(&waiter) else {
            return false;
        };
        if let Some(r) = self.resources.get_mut(&*name) {
            if let Some(i) = r.queue.iter().position(|w| w.id == waiter) {
                if r.queue.remove(i).is_some_and(|w| w.deadline.is_some()) {
                    self.live_timers = self.live_timers.saturating_sub(1);
                }
            }
        }
        self.pump(&name);
        true
    }

    /// Extends a live lease to `now + ttl_ns`. Only its owner may:
    /// `NotHolder` for anyone else or an unknown, released or superseded
    /// token; `LeaseExpired` when it ran out first.
    pub fn renew(
        &mut self,
        now: u64,
        resource: &str,
        owner: &str,
        token: u64,
        ttl_ns: u64,
    ) -> Result<Lease> {
        check_ttl(ttl_ns)?;
        self.advance(now);
        let now = self.now;
        let r = self.find_held(resource, owner, token)?;
        let h = r
            .holders
            .iter_mut()
            .find(|h| h.token == token)
            .expect("find_held found it");
        h.expires_at = now.saturating_add(ttl_ns);
        let h = h.clone();
        let lease = r.lease(&h);
        let name = r.name.clone();
        // The old expiry timer goes stale (its time no longer matches).
        self.timers.push(Reverse(Timer {
            at: h.expires_at,
            kind: TimerKind::Expiry(token),
            resource: name,
        }));
        self.events.push(Event::Renewed {
            lease: lease.clone(),
        });
        Ok(lease)
    }

    /// Ends a live lease and grants the head waiters. Errors as
    /// [`renew`](Self::renew). Not idempotent: the lease no longer exists
    /// afterwards, so a second release answers `NotHolder`.
    pub fn release(&mut self, now: u64, resource: &str, owner: &str, token: u64) -> Result<()> {
        self.advance(now);
        let r = self.find_held(resource, owner, token)?;
        let i = r
            .holders
            .iter()
            .position(|h| h.token == token)
            .expect("held");
        let h = r.holders.remove(i);
        let lease = r.lease(&h);
        let name = r.name.clone();
        self.live_timers = self.live_timers.saturating_sub(1);
        self.events.push(Event::Released { lease });
        self.pump(&name);
        Ok(())
    }

    fn find_held(&mut self, resource: &str, owner: &str, token: u64) -> Result<&mut Resource> {
        let Some(r) = self.resources.get_mut(resource) else {
            return Err(not_holder(resource, owner, token));
        };
        if r.holders
            .iter()
            .any(|h| h.token == token && &*h.owner == owner)
        {
            return Ok(r);
        }
        if r.expired
            .iter()
            .any(|h| h.token == token && &*h.owner == owner)
        {
            return Err(Error::LeaseExpired {
                resource: resource.to_owned(),
                token,
            });
        }
        Err(not_holder(resource, owner, token))
    }

    /// Moves time to `now`: expires leases (`expires_at <= now`), ends
    /// lock-delays, times out queued requests, and grants head waiters,
    /// in deadline order. Grants made here expire at `now + ttl`.
    pub fn advance(&mut self, now: u64) {
        if now > self.now {
            self.now = now;
        }
        let now = self.now;
        while let Some(Reverse(t)) = self.timers.peek() {
            if t.at > now {
                break;
            }
            let Reverse(t) = self.timers.pop().expect("peeked");
            if !self.timer_live(&t) {
                continue;
            }
            self.live_timers = self.live_timers.saturating_sub(1);
            match t.kind {
                TimerKind::Expiry(token) => self.expire(&t.resource, token, t.at),
                TimerKind::WaiterTimeout(id) => {
                    self.waiting.remove(&id);
                    if let Some(r) = self.resources.get_mut(&*t.resource) {
                        r.queue.retain(|w| w.id != id);
                    }
                    self.events.push(Event::TimedOut {
                        waiter: id,
                        resource: t.resource.clone(),
                    });
                }
                TimerKind::DelayEnd => {}
            }
            self.pump(&t.resource);
        }
        // `live_timers` is an estimate kept in O(1); compaction recounts it.
        if self.timers.len() > 64 + 4 * self.live_timers {
            self.compact_timers();
        }
    }

    fn expire(&mut self, resource: &str, token: u64, at: u64) {
        let delay = self.config.lock_delay_ns;
        let Some(r) = self.resources.get_mut(resource) else {
            return;
        };
        let Some(i) = r.holders.iter().position(|h| h.token == token) else {
            return;
        };
        let h = r.holders.remove(i);
        let lease = r.lease(&h);
        r.expired.push(h);
        let mut delay_end = None;
        if delay > 0 {
            let end = at.saturating_add(delay);
            if end > r.blocked_until {
                r.blocked_until = end;
                if end > self.now {
                    delay_end = Some((end, r.name.clone()));
                }
            }
        }
        self.events.push(Event::Expired { lease });
        if let Some((end, name)) = delay_end {
            self.push_timer(end, TimerKind::DelayEnd, name);
        }
    }

    /// Grants the head of `resource`'s queue: one exclusive request, or the
    /// run of shared requests at the head, while compatible with the holders
    /// and past any lock-delay.
    fn pump(&mut self, resource: &str) {
        let now = self.now;
        let Some(r) = self.resources.get_mut(resource) else {
            return;
        };
        if r.blocked_until > now {
            return;
        }
        while let Some(w) = r.queue.front() {
            if !r.compatible(w.mode) {
                break;
            }
            let w = r.queue.pop_front().expect("front");
            self.waiting.remove(&w.id);
            if w.deadline.is_some() {
                // Its timeout timer is now stale.
                self.live_timers = self.live_timers.saturating_sub(1);
            }
            let lease = grant(
                r,
                &mut self.tokens,
                &mut self.timers,
                &mut self.live_timers,
                now,
                w.owner,
                w.ttl_ns,
                w.mode,
            );
            self.events.push(Event::Granted {
                waiter: Some(w.id),
                lease,
            });
        }
    }

    fn push_timer(&mut self, at: u64, kind: TimerKind, resource: Arc<str>) {
        self.live_timers += 1;
        self.timers.push(Reverse(Timer { at, kind, resource }));
    }

    fn timer_live(&self, t: &Timer) -> bool {
        let Some(r) = self.resources.get(&*t.resource) else {
            return false;
        };
        match t.kind {
            TimerKind::Expiry(token) => r
                .holders
                .iter()
                .any(|h| h.token == token && h.expires_at == t.at),
            TimerKind::WaiterTimeout(id) => self.waiting.contains_key(&id),
            TimerKind::DelayEnd => r.blocked_until == t.at,
        }
    }

    fn compact_timers(&mut self) {
        let timers = std::mem::take(&mut self.timers);
        let live: Vec<_> = timers
            .into_vec()
            .into_iter()
            .filter(|Reverse(t)| self.timer_live(t))
            .collect();
        self.live_timers = live.len();
        self.timers = BinaryHeap::from(live);
    }

    fn maybe_sweep(&mut self) {
        self.ops_since_sweep += 1;
        if self.ops_since_sweep > 1024.max(self.resources.len()) {
            self.ops_since_sweep = 0;
            let now = self.now;
            self.resources.retain(|_, r| !r.idle(now));
        }
    }
}

/// Adds a holder to `r` with a fresh token; returns its lease. A grant
/// supersedes the resource's expired leases (they become `NotHolder`).
#[allow(clippy::too_many_arguments)]
fn grant(
    r: &mut Resource,
    tokens: &mut Tokens,
    timers: &mut BinaryHeap<Reverse<Timer>>,
    live_timers: &mut usize,
    now: u64,
    owner: Arc<str>,
    ttl_ns: u64,
    mode: Mode,
) -> Lease {
    r.expired.clear();
    r.last_owner = Some(owner.clone());
    let token = tokens.next();
    let h = Holder {
        token,
        owner,
        mode,
        expires_at: now.saturating_add(ttl_ns),
    };
    let lease = r.lease(&h);
    *live_timers += 1;
    timers.push(Reverse(Timer {
        at: h.expires_at,
        kind: TimerKind::Expiry(token),
        resource: r.name.clone(),
    }));
    r.holders.push(h);
    lease
}
