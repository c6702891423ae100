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
//! lock-delay, or leases that expired without release within their last
//! TTL (kept so a late holder hears `LeaseExpired`, not `NotHolder`, until
//! the resource is granted again or one more TTL, at least a minute
//! ([`EXPIRED_MEMORY_MIN_NS`]), has passed). An entry is
//! removed the moment it becomes idle, and the maps shrink when they become
//! mostly empty, so memory is bounded by the live leases, the waiters and
//! the recently expired leases — not by every name ever used.
//!
//! Timers: each resource is *armed* at most once in a min-heap, at its
//! earliest pending deadline (holder expiry, waiter deadline, lock-delay
//! end); a later deadline needs no heap entry, so the uncontended
//! acquire/release path touches no heap. When an armed time comes, the
//! resource's earliest due item is handled and the resource is re-armed, so
//! items are handled in global (time, resource, kind, key) order.

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
    /// Its last TTL: an expired lease is remembered for this long.
    ttl_ns: u64,
}

/// An expired lease is remembered (`LeaseExpired` rather than `NotHolder`
/// for a late renew or release) for its TTL, and at least this long.
pub const EXPIRED_MEMORY_MIN_NS: u64 = 60_000_000_000;

impl Holder {
    /// When an expired lease is forgotten (`NotHolder` from then on).
    fn forget_at(&self) -> u64 {
        self.expires_at
            .saturating_add(self.ttl_ns.max(EXPIRED_MEMORY_MIN_NS))
    }
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
    /// Leases that expired un-released since the last grant here, each
    /// until one more TTL has passed.
    expired: Vec<Holder>,
    /// Lock-delay: nothing is granted before this time.
    blocked_until: u64,
    /// A lock-delay end not yet handled (it lets waiters in).
    delay_pending: bool,
    /// The (time, sequence number) of this resource's live heap entry.
    armed: Option<(u64, u64)>,
    /// The last owner granted here: a repeat owner costs no allocation.
    last_owner: Option<Arc<str>>,
}

impl Resource {
    fn new(name: Arc<str>) -> Self {
        Resource {
            name,
            holders: Vec::new(),
            queue: VecDeque::new(),
            expired: Vec::new(),
            blocked_until: 0,
            delay_pending: false,
            armed: None,
            last_owner: None,
        }
    }

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

    /// The earliest pending deadline.
    fn next_deadline(&self) -> Option<u64> {
        let holders = self.holders.iter().map(|h| h.expires_at);
        let waiters = self.queue.iter().filter_map(|w| w.deadline);
        let delay = self.delay_pending.then_some(self.blocked_until);
        let forget = self.expired.iter().map(Holder::forget_at);
        holders.chain(waiters).chain(delay).chain(forget).min()
    }
}

/// What is due on a resource, in handling order at equal times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Expiry(u64),
    WaiterTimeout(WaiterId),
    DelayEnd,
    Forget(u64),
}

/// A heap entry: look at `resource` at `at`. Stale entries (the resource
/// was re-armed, or is gone) are skipped when popped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: u64,
    resource: Arc<str>,
    /// Tells this entry from an older one of the same resource and time
    /// (the resource may be swept and made anew).
    seq: u64,
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

/// Everything but the resources, so a resource and the rest can be
/// borrowed mutably at once.
#[derive(Debug)]
struct Core {
    now: u64,
    delay_ns: u64,
    tokens: Tokens,
    next_waiter: u64,
    /// Queued request -> its resource.
    waiting: Map<WaiterId, Arc<str>>,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    events: Vec<Event>,
    /// Record every event, or only those about queued requests.
    all_events: bool,
}

impl Core {
    fn arm(&mut self, r: &mut Resource, at: u64) {
        if r.armed.is_none_or(|(a, _)| at < a) {
            self.timer_seq += 1;
            r.armed = Some((at, self.timer_seq));
            self.timers.push(Reverse(Timer {
                at,
                resource: r.name.clone(),
                seq: self.timer_seq,
            }));
        }
    }

    /// Adds a holder with a fresh token. A grant supersedes the resource's
    /// expired leases (they become `NotHolder`).
    fn grant(
        &mut self,
        r: &mut Resource,
        owner: Arc<str>,
        ttl_ns: u64,
        mode: Mode,
        waiter: Option<WaiterId>,
    ) -> Lease {
        r.expired.clear();
        if r.last_owner
            .as_ref()
            .is_none_or(|o| !Arc::ptr_eq(o, &owner))
        {
            r.last_owner = Some(owner.clone());
        }
        let h = Holder {
            token: self.tokens.next(),
            owner,
            mode,
            expires_at: self.now.saturating_add(ttl_ns),
            ttl_ns,
        };
        let lease = r.lease(&h);
        self.arm(r, h.expires_at);
        r.holders.push(h);
        if self.all_events || waiter.is_some() {
            self.events.push(Event::Granted {
                waiter,
                lease: lease.clone(),
            });
        }
        lease
    }

    /// Grants the head of the queue: one exclusive request, or the run of
    /// shared requests at the head, while compatible with the holders and
    /// past any lock-delay.
    fn pump(&mut self, r: &mut Resource) {
        if r.blocked_until > self.now {
            return;
        }
        while let Some(w) = r.queue.front() {
            if !r.compatible(w.mode) {
                break;
            }
            let w = r.queue.pop_front().expect("front");
            self.waiting.remove(&w.id);
            self.grant(r, w.owner, w.ttl_ns, w.mode, Some(w.id));
        }
    }

    /// Handles the earliest item of `r` due by now, if any; returns whether
    /// there was one.
    fn handle_due(&mut self, r: &mut Resource) -> bool {
        let now = self.now;
        let holders = r
            .holders
            .iter()
            .filter(|h| h.expires_at <= now)
            .map(|h| (h.expires_at, Due::Expiry(h.token)));
        let waiters = r.queue.iter().filter_map(|w| {
            w.deadline
                .filter(|&d| d <= now)
                .map(|d| (d, Due::WaiterTimeout(w.id)))
        });
        let delay =
            (r.delay_pending && r.blocked_until <= now).then_some((r.blocked_until, Due::DelayEnd));
        let forget = r
            .expired
            .iter()
            .filter(|h| h.forget_at() <= now)
            .map(|h| (h.forget_at(), Due::Forget(h.token)));
        let Some((at, due)) = holders.chain(waiters).chain(delay).chain(forget).min() else {
            return false;
        };
        match due {
            Due::Expiry(token) => {
                let i = r
                    .holders
                    .iter()
                    .position(|h| h.token == token)
                    .expect("due");
                let h = r.holders.remove(i);
                if self.all_events {
                    self.events.push(Event::Expired { lease: r.lease(&h) });
                }
                r.expired.push(h);
                let end = at.saturating_add(self.delay_ns);
                if self.delay_ns > 0 && end > r.blocked_until {
                    r.blocked_until = end;
                    r.delay_pending = true;
                }
            }
            Due::WaiterTimeout(id) => {
                r.queue.retain(|w| w.id != id);
                self.waiting.remove(&id);
                self.events.push(Event::TimedOut {
                    waiter: id,
                    resource: r.name.clone(),
                });
            }
            Due::DelayEnd => r.delay_pending = false,
            Due::Forget(token) => r.expired.retain(|h| h.token != token),
        }
        self.pump(r);
        true
    }

    fn rearm(&mut self, r: &mut Resource) {
        if let Some(at) = r.next_deadline() {
            self.arm(r, at);
        }
    }
}

/// The lease state machine. See the module docs.
#[derive(Debug)]
pub struct LeaseMachine {
    config: LeaseConfig,
    resources: Map<Arc<str>, Resource>,
    core: Core,
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

/// Finds the live lease `token` of `owner`, telling an expired one
/// (`LeaseExpired`) from one that is not the caller's (`NotHolder`).
fn find_held<'a>(
    resources: &'a mut Map<Arc<str>, Resource>,
    resource: &str,
    owner: &str,
    token: u64,
) -> Result<(&'a mut Resource, usize)> {
    let Some(r) = resources.get_mut(resource) else {
        return Err(not_holder(resource, owner, token));
    };
    if let Some(i) = r
        .holders
        .iter()
        .position(|h| h.token == token && &*h.owner == owner)
    {
        return Ok((r, i));
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

/// The snapshot format of [`LeaseMachine::snapshot`].
const SNAPSHOT_FORMAT: u8 = 1;

/// Big-endian fields for a machine snapshot.
struct SnapWriter(Vec<u8>);

impl SnapWriter {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn mode(&mut self, m: Mode) {
        self.0.push(u8::from(m == Mode::Shared));
    }
    fn holder(&mut self, h: &Holder) {
        self.u64(h.token);
        self.str(&h.owner);
        self.mode(h.mode);
        self.u64(h.expires_at);
        self.u64(h.ttl_ns);
    }
}

struct SnapReader<'a>(&'a [u8]);

impl SnapReader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let n = usize::try_from(n).ok().filter(|&n| n <= self.0.len());
        let Some(n) = n else {
            return Err(Error::corrupt("lease snapshot: truncated"));
        };
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self) -> Result<Arc<str>> {
        let n = self.u64()?;
        std::str::from_utf8(self.take(n)?)
            .map(Arc::from)
            .map_err(|_| Error::corrupt("lease snapshot: a name is not UTF-8"))
    }
    fn mode(&mut self) -> Result<Mode> {
        match self.u8()? {
            0 => Ok(Mode::Exclusive),
            1 => Ok(Mode::Shared),
            b => Err(Error::corrupt(format!("lease snapshot: mode {b}"))),
        }
    }
    /// A count of items at least `min` bytes each (bounds what a lie allocates).
    fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.u64()?;
        if n > (self.0.len() / min.max(1)) as u64 {
            return Err(Error::corrupt("lease snapshot: a count past its end"));
        }
        Ok(n as usize)
    }
    fn holder(&mut self) -> Result<Holder> {
        Ok(Holder {
            token: self.u64()?,
            owner: self.str()?,
            mode: self.mode()?,
            expires_at: self.u64()?,
            ttl_ns: self.u64()?,
        })
    }
}

impl LeaseMachine {
    /// The whole state as bytes (for a replicated machine's log
    /// compaction): clock, token counter, every resource's holders, queue,
    /// remembered expired leases and lock-delay. Events not yet drained are
    /// not included. Resources are written in name order, so equal states
    /// give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = SnapWriter(vec![SNAPSHOT_FORMAT]);
        w.u64(self.core.now);
        w.u64(match &self.core.tokens {
            Tokens::Local(n) => *n,
            Tokens::Shared(a) => a.load(Ordering::Relaxed),
        });
        w.u64(self.core.next_waiter);
        let mut names: Vec<&Arc<str>> = self.resources.keys().collect();
        names.sort_unstable();
        w.u64(names.len() as u64);
        for name in names {
            let r = &self.resources[name];
            w.str(name);
            w.u64(r.holders.len() as u64);
            for h in &r.holders {
                w.holder(h);
            }
            w.u64(r.queue.len() as u64);
            for q in &r.queue {
                w.u64(q.id.0);
                w.str(&q.owner);
                w.u64(q.ttl_ns);
                w.mode(q.mode);
                match q.deadline {
                    None => w.0.push(0),
                    Some(d) => {
                        w.0.push(1);
                        w.u64(d);
                    }
                }
            }
            w.u64(r.expired.len() as u64);
            for h in &r.expired {
                w.holder(h);
            }
            w.u64(r.blocked_until);
            w.0.push(u8::from(r.delay_pending));
        }
        w.0
    }

    /// A machine in the state [`snapshot`](Self::snapshot) wrote, with
    /// `config` (its own token counter, recording every event as `new`'s).
    /// Errors: [`Error::Corrupt`] for bytes that are not such a snapshot.
    pub fn restore(config: LeaseConfig, data: &[u8]) -> Result<Self> {
        let mut r = SnapReader(data);
        let format = r.u8()?;
        if format != SNAPSHOT_FORMAT {
            return Err(Error::corrupt(format!(
                "lease snapshot: format {format}, not {SNAPSHOT_FORMAT}"
            )));
        }
        let now = r.u64()?;
        let mut m = Self::new(config);
        m.core.now = now;
        m.core.tokens = Tokens::Local(r.u64()?);
        m.core.next_waiter = r.u64()?;
        let n = r.count(8)?;
        for _ in 0..n {
            let name = r.str()?;
            let mut res = Resource::new(name.clone());
            for _ in 0..r.count(8)? {
                res.holders.push(r.holder()?);
            }
            for _ in 0..r.count(8)? {
                let id = WaiterId(r.u64()?);
                let owner = r.str()?;
                let ttl_ns = r.u64()?;
                let mode = r.mode()?;
                let deadline = match r.u8()? {
                    0 => None,
                    1 => Some(r.u64()?),
                    b => return Err(Error::corrupt(format!("lease snapshot: flag {b}"))),
                };
                m.core.waiting.insert(id, name.clone());
                res.queue.push_back(Waiter {
                    id,
                    owner,
                    ttl_ns,
                    mode,
                    deadline,
                });
            }
            for _ in 0..r.count(8)? {
                res.expired.push(r.holder()?);
            }
            res.blocked_until = r.u64()?;
            res.delay_pending = r.u8()? != 0;
            m.core.rearm(&mut res);
            m.resources.insert(name, res);
        }
        if !r.0.is_empty() {
            return Err(Error::corrupt("lease snapshot: trailing bytes"));
        }
        Ok(m)
    }

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
            resources: Map::default(),
            core: Core {
                now: 0,
                delay_ns: config.lock_delay_ns,
                tokens,
                next_waiter: 0,
                waiting: Map::default(),
                timers: BinaryHeap::new(),
                timer_seq: 0,
                events: Vec::new(),
                all_events: true,
            },
        }
    }

    /// Whether to record every event (the default) or only those about
    /// queued requests (`Granted` with a waiter, `TimedOut`): a driver that
    /// only delivers outcomes to waiters saves the copies.
    pub fn record_all_events(&mut self, all: bool) {
        self.core.all_events = all;
    }

    /// The settings.
    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// The latest time the machine has seen.
    pub fn now(&self) -> u64 {
        self.core.now
    }

    /// The number of queued requests.
    pub fn waiting(&self) -> usize {
        self.core.waiting.len()
    }

    /// The live leases on `resource` (after advancing to `now`), in grant order.
    pub fn holders(&mut self, now: u64, resource: &str) -> Vec<Lease> {
        self.advance(now);
        match self.resources.get(resource) {
            Some(r) => r.holders.iter().map(|h| r.lease(h)).collect(),
            None => Vec::new(),
        }
    }

    /// The live lease `token` on `resource` (after advancing to `now`), if
    /// it is still held: its current expiry, renewals included.
    pub fn lease(&mut self, now: u64, resource: &str, token: u64) -> Option<Lease> {
        self.advance(now);
        let r = self.resources.get(resource)?;
        r.holders
            .iter()
            .find(|h| h.token == token)
            .map(|h| r.lease(h))
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
        self.core.events.drain(..)
    }

    /// When to call [`advance`](Self::advance) next: the earliest time at
    /// which time alone may change the state (a lease expiry, a lock-delay
    /// end, a queued request's deadline). It can be early (a lease renewed
    /// since), never late.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse(t)) = self.core.timers.peek() {
            if self.timer_live(t) {
                return Some(t.at);
            }
            self.core.timers.pop();
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
        let now = self.core.now;
        let r = match self.resources.get_mut(req.resource) {
            Some(r) => r,
            None => {
                let name: Arc<str> = Arc::from(req.resource);
                self.resources
                    .entry(name.clone())
                    .or_insert_with(|| Resource::new(name))
            }
        };
        if r.queue.is_empty() && r.blocked_until <= now && r.compatible(req.mode) {
            let owner = match &r.last_owner {
                Some(o) if &**o == req.owner => o.clone(),
                _ => Arc::from(req.owner),
            };
            let lease = self.core.grant(r, owner, req.ttl_ns, req.mode, None);
            return Ok(AcquireOutcome::Granted(lease));
        }
        if !req.wait || req.deadline.is_some_and(|d| d <= now) {
            return Ok(AcquireOutcome::Busy);
        }
        self.core.next_waiter += 1;
        let id = WaiterId(self.core.next_waiter);
        r.queue.push_back(Waiter {
            id,
            owner: Arc::from(req.owner),
            ttl_ns: req.ttl_ns,
            mode: req.mode,
            deadline: req.deadline,
        });
        if let Some(d) = req.deadline {
            self.core.arm(r, d);
        }
        self.core.waiting.insert(id, r.name.clone());
        Ok(AcquireOutcome::Queued(id))
    }

    /// Withdraws a queued request (a timeout or an interrupt on the
    /// caller's side). Returns whether it was still queued; a request
    /// already granted or timed out is left as it is. Removing a queued
    /// exclusive request may let shared requests behind it in.
    pub fn cancel(&mut self, now: u64, waiter: WaiterId) -> bool {
        self.advance(now);
        let Some(name) = self.core.waiting.remove(&waiter) else {
            return false;
        };
        if let Some(r) = self.resources.get_mut(&*name) {
            r.queue.retain(|w| w.id != waiter);
            self.core.pump(r);
        }
        self.remove_if_idle(&name);
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
        let (r, i) = find_held(&mut self.resources, resource, owner, token)?;
        let at = self.core.now.saturating_add(ttl_ns);
        r.holders[i].expires_at = at;
        r.holders[i].ttl_ns = ttl_ns;
        let lease = r.lease(&r.holders[i]);
        // A shorter ttl may need an earlier look; a longer one is found
        // when the armed time comes.
        self.core.arm(r, at);
        if self.core.all_events {
            self.core.events.push(Event::Renewed {
                lease: lease.clone(),
            });
        }
        Ok(lease)
    }

    /// Ends a live lease and grants the head waiters. Errors as
    /// [`renew`](Self::renew). Not idempotent: the lease no longer exists
    /// afterwards, so a second release answers `NotHolder`.
    pub fn release(&mut self, now: u64, resource: &str, owner: &str, token: u64) -> Result<()> {
        self.advance(now);
        let (r, i) = find_held(&mut self.resources, resource, owner, token)?;
        let h = r.holders.remove(i);
        if self.core.all_events {
            self.core
                .events
                .push(Event::Released { lease: r.lease(&h) });
        }
        if !r.queue.is_empty() {
            self.core.pump(r);
        }
        self.remove_if_idle(resource);
        Ok(())
    }

    /// Moves time to `now`: expires leases (`expires_at <= now`), ends
    /// lock-delays, times out queued requests, and grants head waiters,
    /// in deadline order. Grants made here expire at `now + ttl`.
    pub fn advance(&mut self, now: u64) {
        if now > self.core.now {
            self.core.now = now;
        }
        let now = self.core.now;
        while let Some(Reverse(t)) = self.core.timers.peek() {
            if t.at > now {
                break;
            }
            let Reverse(t) = self.core.timers.pop().expect("peeked");
            let Some(r) = self.resources.get_mut(&*t.resource) else {
                continue;
            };
            if r.armed != Some((t.at, t.seq)) {
                continue;
            }
            r.armed = None;
            // An entry can be early (a lease renewed since it was armed):
            // then re-arm at the true deadline, so that due work of all
            // resources runs in time order, not in arming order.
            if let Some(d) = r.next_deadline().filter(|&d| d > t.at) {
                self.core.arm(r, d);
                continue;
            }
            self.core.handle_due(r);
            self.core.rearm(r);
            self.remove_if_idle(&t.resource);
        }
        if self.core.timers.len() > 64 + 2 * self.resources.len() {
            self.compact_timers();
        }
    }

    /// How many resources the machine keeps state for (held, queued for,
    /// in lock-delay, or with a recently expired lease).
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// Drops `resource`'s entry once nothing needs it, and gives memory
    /// back when the maps are mostly empty.
    fn remove_if_idle(&mut self, resource: &str) {
        let now = self.core.now;
        if self.resources.get(resource).is_some_and(|r| r.idle(now)) {
            // Its heap entry, if any, is dead from now on (a new entry of
            // the same name gets a new sequence number).
            self.resources.remove(resource);
            shrink(&mut self.resources);
            shrink(&mut self.core.waiting);
        }
    }

    fn timer_live(&self, t: &Timer) -> bool {
        self.resources
            .get(&*t.resource)
            .is_some_and(|r| r.armed == Some((t.at, t.seq)))
    }

    fn compact_timers(&mut self) {
        let timers = std::mem::take(&mut self.core.timers);
        let mut live: Vec<_> = timers
            .into_vec()
            .into_iter()
            .filter(|Reverse(t)| self.timer_live(t))
            .collect();
        if live.capacity() > 4 * live.len() + 64 {
            live.shrink_to_fit();
        }
        self.core.timers = BinaryHeap::from(live);
    }
}

/// Gives a map's memory back once it is at most an eighth full (and not
/// small): a burst of a million names must not pin its peak forever.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut Map<K, V>) {
    if map.capacity() > 1024 && map.len() * 8 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives `m` with a seeded mix of acquires (try and queued, both
    /// modes, with and without deadlines), renews, releases, cancels and
    /// time; returns what each step answered and the events it made.
    fn drive(m: &mut LeaseMachine, seed: u64, steps: u64, t0: u64) -> Vec<String> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let mut out = Vec::new();
        let mut t = t0;
        for _ in 0..steps {
            t += rng.below(7);
            let res = format!("r{}", rng.below(4));
            let owner = format!("o{}", rng.below(5));
            let line = match rng.below(6) {
                0 | 1 => {
                    let r = AcquireRequest {
                        resource: &res,
                        owner: &owner,
                        ttl_ns: 1 + rng.below(30),
                        mode: if rng.below(3) == 0 {
                            Mode::Shared
                        } else {
                            Mode::Exclusive
                        },
                        wait: rng.below(2) == 0,
                        deadline: (rng.below(2) == 0).then(|| t + rng.below(40)),
                    };
                    format!("{:?}", m.acquire(t, r))
                }
                2 => {
                    let token = rng.below(40);
                    format!("{:?}", m.renew(t, &res, &owner, token, 1 + rng.below(20)))
                }
                3 => format!("{:?}", m.release(t, &res, &owner, rng.below(40))),
                4 => format!("{:?}", m.cancel(t, WaiterId(rng.below(20)))),
                _ => {
                    m.advance(t);
                    format!("{:?}", m.next_deadline())
                }
            };
            out.push(line);
            out.extend(m.drain_events().map(|e| format!("{e:?}")));
        }
        out
    }

    #[test]
    fn a_restored_machine_behaves_as_the_original() {
        let config = LeaseConfig { lock_delay_ns: 5 };
        for seed in 0..200 {
            let mut a = LeaseMachine::new(config);
            drive(&mut a, seed, 300, 0);
            let bytes = a.snapshot();
            let mut b = LeaseMachine::restore(config, &bytes)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(b.snapshot(), bytes, "seed {seed}: restored state differs");
            let t = a.now();
            let (x, y) = (
                drive(&mut a, seed ^ 1, 300, t),
                drive(&mut b, seed ^ 1, 300, t),
            );
            assert_eq!(
                x, y,
                "seed {seed}: the restored machine answered differently"
            );
            assert_eq!(a.snapshot(), b.snapshot(), "seed {seed}");
        }
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_never_a_panic() {
        let mut a = LeaseMachine::new(LeaseConfig::default());
        drive(&mut a, 7, 200, 0);
        let bytes = a.snapshot();
        for cut in 0..bytes.len() {
            assert!(LeaseMachine::restore(LeaseConfig::default(), &bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(LeaseMachine::restore(LeaseConfig::default(), &longer).is_err());
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(LeaseMachine::restore(LeaseConfig::default(), &other).is_err());
        // Flipped bytes anywhere: an error or some valid state, never a panic.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = LeaseMachine::restore(LeaseConfig::default(), &b);
        }
    }

    fn req(resource: &str) -> AcquireRequest<'_> {
        AcquireRequest {
            resource,
            owner: "o",
            ttl_ns: 10,
            mode: Mode::Exclusive,
            wait: false,
            deadline: None,
        }
    }

    #[test]
    fn timer_heap_stays_small_at_a_constant_time() {
        // Regression: a swept and re-made resource re-armed at the same
        // time must not revive the old heap entry (the heap grew without
        // bound and every command compacted it).
        let mut m = LeaseMachine::new(LeaseConfig::default());
        for _ in 0..150_000 {
            let AcquireOutcome::Granted(l) = m.acquire(5, req("r")).unwrap() else {
                panic!("busy")
            };
            m.release(5, "r", "o", l.token).unwrap();
        }
        assert!(m.core.timers.len() <= 66, "{}", m.core.timers.len());
        // Many resources over time: stale entries are compacted away.
        for i in 0..50_000u64 {
            let name = format!("r{}", i % 500);
            if let AcquireOutcome::Granted(l) = m.acquire(i, req(&name)).unwrap() {
                m.release(i, &name, "o", l.token).unwrap();
            }
        }
        assert!(m.core.timers.len() <= 64 + 2 * m.resources.len() + 1);
        // Every lease was released: nothing is left to wake for.
        assert_eq!(m.resources.len(), 0);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn a_million_distinct_names_leave_no_state_behind() {
        // "A lock per job id": names are never reused. Before idle entries
        // were removed at once, every name stayed (~600 B each).
        let mut m = LeaseMachine::new(LeaseConfig::default());
        let mut peak = 0;
        for i in 0..1_000_000u64 {
            let name = format!("job-{i}");
            let AcquireOutcome::Granted(l) = m.acquire(i, req(&name)).unwrap() else {
                panic!("busy")
            };
            peak = peak.max(m.resources.len());
            m.release(i, &name, "o", l.token).unwrap();
        }
        assert_eq!(peak, 1);
        assert_eq!(m.resource_count(), 0);
        assert!(m.resources.capacity() <= 1024, "{}", m.resources.capacity());
        assert!(m.core.timers.len() <= 66, "{}", m.core.timers.len());
        assert!(
            m.core.timers.capacity() <= 4 * 66 + 64,
            "{}",
            m.core.timers.capacity()
        );
    }

    #[test]
    fn expired_leases_are_remembered_for_a_bounded_time_then_forgotten() {
        let mut m = LeaseMachine::new(LeaseConfig::default());
        let ttl = 1_000_000_000;
        let mut tokens = Vec::new();
        for i in 0..100_000u64 {
            let mut r = req("x");
            let name = format!("job-{i}");
            r.resource = &name;
            r.ttl_ns = ttl;
            let AcquireOutcome::Granted(l) = m.acquire(0, r).unwrap() else {
                panic!("busy")
            };
            tokens.push(l.token);
        }
        assert_eq!(m.resource_count(), 100_000);
        // Expired, not released: a late holder hears LeaseExpired...
        m.advance(ttl);
        assert_eq!(m.resource_count(), 100_000);
        assert!(matches!(
            m.renew(ttl, "job-7", "o", tokens[7], ttl),
            Err(Error::LeaseExpired { .. })
        ));
        // ...for one more TTL (at least a minute), then the name is gone.
        m.advance(ttl + EXPIRED_MEMORY_MIN_NS);
        assert_eq!(m.resource_count(), 0);
        assert!(m.resources.capacity() <= 1024, "{}", m.resources.capacity());
        assert!(matches!(
            m.renew(ttl + EXPIRED_MEMORY_MIN_NS, "job-7", "o", tokens[7], ttl),
            Err(Error::NotHolder { .. })
        ));
    }
}
