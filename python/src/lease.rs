//! `LeaseTable`, `Lease`, `LeaseContext`, `ManualClock` and `Fence`: the
//! Python face of `quorumkit::lease`. Times are float seconds at this
//! boundary and nanoseconds inside.
//!
//! Blocking: a blocking acquire queues once (`enqueue`, keeping its FIFO
//! place) and then waits on its ticket in slices of `SLICE` with the GIL
//! released, checking for signals between slices, so Ctrl-C interrupts it;
//! the dropped ticket withdraws the request. asyncio (`quorumkit._asyncio`)
//! hands the ticket a callback instead of a thread.
//!
//! Locks: nothing here holds a Rust lock while taking the GIL, and the
//! table's callbacks run after the table's locks are dropped, so the GIL
//! and the table's locks cannot deadlock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use quorumkit::lease::{
    CancelToken as CoreCancelToken, Cancelled, Clock, Enqueued, Fence as CoreFence,
    Lease as CoreLease, LeaseConfig, LeaseGuard, LeaseTable as CoreTable,
    ManualClock as CoreManualClock, Mode, Ticket,
};

use crate::args::{int_in_range, str_utf8, type_name};
use crate::errors::{guard, invalid, to_pyerr, type_error};

/// How long a blocking wait runs with the GIL released before it checks
/// for signals (Ctrl-C) again.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- arguments

/// A number of seconds (int or float, not bool): finite and >= 0.
pub(crate) fn seconds_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    let ok_type = (obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
        && !obj.is_instance_of::<PyBool>();
    if !ok_type {
        return Err(type_error(format!(
            "{what} must be a number of seconds (int or float), not {}",
            type_name(obj)
        )));
    }
    let s: f64 = obj.extract()?;
    if s.is_nan() || s < 0.0 {
        return Err(invalid(
            obj.py(),
            format!("{what} must be >= 0 seconds, got {s}"),
        ));
    }
    Ok(s)
}

/// Seconds to nanoseconds (rounded); `InvalidArgument` beyond u64
/// nanoseconds (584 years), infinite, or positive but below 1 ns (such a
/// value used to become 1 ns silently: a 1e-12 s heartbeat made a driver
/// spin).
pub(crate) fn to_ns(py: Python<'_>, s: f64, what: &str) -> PyResult<u64> {
    let ns = (s * 1e9).round();
    if !ns.is_finite() || ns >= u64::MAX as f64 {
        return Err(invalid(
            py,
            format!("{what} must be finite and below 584 years, got {s}"),
        ));
    }
    if s > 0.0 && s < 1e-9 {
        return Err(invalid(
            py,
            format!("{what} must be 0 or at least 1 ns (1e-9 s), got {s}"),
        ));
    }
    Ok(ns as u64)
}

/// A TTL: finite seconds > 0.
pub(crate) fn ttl_arg(obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let s = seconds_arg(obj, "ttl")?;
    if s == 0.0 {
        return Err(invalid(obj.py(), "ttl must be > 0 seconds, got 0"));
    }
    Ok(Duration::from_nanos(to_ns(obj.py(), s, "ttl")?))
}

/// A timeout: None or infinity (wait forever), else finite seconds >= 0.
pub(crate) fn timeout_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            let s = seconds_arg(o, "timeout")?;
            if s.is_infinite() {
                return Ok(None);
            }
            Ok(Some(Duration::from_nanos(to_ns(o.py(), s, "timeout")?)))
        }
    }
}

pub(crate) fn str_obj<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyString>> {
    obj.cast::<PyString>()
        .cloned()
        .map_err(|_| type_error(format!("{what} must be a str, not {}", type_name(obj))))
}

pub(crate) fn utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<std::borrow::Cow<'a, str>> {
    Ok(match str_utf8(s)? {
        std::borrow::Cow::Borrowed(b) => String::from_utf8_lossy(b),
        std::borrow::Cow::Owned(o) => {
            std::borrow::Cow::Owned(String::from_utf8_lossy(&o).into_owned())
        }
    })
}

pub(crate) fn mode_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Mode> {
    match obj {
        None => Ok(Mode::Exclusive),
        Some(o) => match o.cast::<PyBool>() {
            Ok(b) if b.is_true() => Ok(Mode::Shared),
            Ok(_) => Ok(Mode::Exclusive),
            Err(_) => Err(type_error(format!(
                "shared must be a bool, not {}",
                type_name(o)
            ))),
        },
    }
}

pub(crate) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

// ---------------------------------------------------------------- wake-ups

/// Wakes `wait_lost` callers of leases without a renewer: bumped when a
/// manual clock moves, a lease is renewed, released or marked lost.
#[derive(Default)]
struct Signal {
    generation: Mutex<u64>,
    cv: Condvar,
    /// Threads in `wait_lost` (changed under `generation`): a release on
    /// the hot path skips the mutex when nobody waits.
    waiting: AtomicU64,
}

impl Signal {
    fn notify(&self) {
        // SeqCst pairs with the waiter's increment before it re-checks.
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        *lock(&self.generation) += 1;
        self.cv.notify_all();
    }
}

// ---------------------------------------------------------------- ManualClock

/// A monotonic clock that moves only when told to (seconds as floats).
/// Moving it drives every table on it before `advance`/`set` return.
#[pyclass(frozen, module = "quorumkit", name = "ManualClock")]
pub struct ManualClock {
    core: CoreManualClock,
    signal: Arc<Signal>,
}

#[pymethods]
impl ManualClock {
    #[new]
    #[pyo3(signature = (start=None), text_signature = "(start=0.0)")]
    fn new(py: Python<'_>, start: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let start = match start {
            Some(s) => to_ns(py, seconds_arg(s, "start")?, "start")?,
            None => 0,
        };
        Ok(ManualClock {
            core: CoreManualClock::new(start),
            signal: Arc::default(),
        })
    }

    /// The current reading in seconds.
    fn now(&self) -> f64 {
        secs(self.core.now_ns())
    }

    /// Moves the clock forward by `seconds`.
    fn advance(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let by = to_ns(py, seconds_arg(seconds, "seconds")?, "seconds")?;
        // Moving runs the tables' grants and renewals: no GIL needed.
        py.detach(|| self.core.advance_ns(by));
        self.signal.notify();
        Ok(())
    }

    /// Moves the clock to `seconds` (never backwards).
    fn set(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let to = to_ns(py, seconds_arg(seconds, "seconds")?, "seconds")?;
        let r = py.detach(|| self.core.set(to));
        self.signal.notify();
        r.map_err(|e| to_pyerr(py, e))
    }

    fn __repr__(&self) -> String {
        format!("ManualClock(now={:?})", secs(self.core.now_ns()))
    }
}

// ---------------------------------------------------------------- Lease

/// A granted lease. `expires_at` is in seconds of its table's clock and
/// moves forward on renewal.
#[pyclass(frozen, module = "quorumkit", name = "Lease")]
pub struct Lease {
    resource: Py<PyString>,
    owner: Py<PyString>,
    token: u64,
    shared: bool,
    /// The expiry (ns) the table last reported; kept after the lease is
    /// lost, so `expires_at` then says when it was due to end.
    expires_at: AtomicU64,
    /// The table that granted it: the truth every read is checked against.
    table: CoreTable,
    /// `resource` as Rust text, for those checks.
    resource_key: Arc<str>,
    /// Released, or a renewal failed: no longer held whatever the clock says.
    gone: AtomicBool,
    clock: Clock,
    signal: Arc<Signal>,
    /// The background renewer while `auto_renew` is on.
    renewer: Mutex<Option<LeaseGuard>>,
}

impl Lease {
    /// Asks the table whether the lease is still held, and records the
    /// expiry it reports (renewals by anyone included). No caching of what
    /// the lease *should* be: released, superseded and expired all come
    /// back as "not held".
    fn check_table(&self) -> bool {
        if self.gone.load(Ordering::Acquire) {
            return false;
        }
        match self.table.lease_status(&self.resource_key, self.token) {
            Some(l) => {
                self.expires_at.store(l.expires_at, Ordering::Release);
                true
            }
            None => {
                self.gone.store(true, Ordering::SeqCst);
                false
            }
        }
    }

    fn core_expires(&self) -> u64 {
        self.check_table();
        self.expires_at.load(Ordering::Acquire)
    }

    fn is_lost(&self) -> bool {
        !self.check_table()
    }

    fn mark_gone(&self) {
        self.gone.store(true, Ordering::SeqCst);
        self.signal.notify();
    }

    /// Waits with the GIL released until lost or `until`; false on timeout.
    fn wait_lost_slice(&self, until: Option<Instant>) -> bool {
        let generation = lock(&self.signal.generation);
        self.signal.waiting.fetch_add(1, Ordering::SeqCst);
        let lost = self.wait_lost_locked(generation, until);
        self.signal.waiting.fetch_sub(1, Ordering::SeqCst);
        lost
    }

    fn wait_lost_locked(
        &self,
        mut generation: MutexGuard<'_, u64>,
        until: Option<Instant>,
    ) -> bool {
        loop {
            if self.is_lost() {
                return true;
            }
            let now = Instant::now();
            let mut wait = SLICE;
            if let Some(u) = until {
                if now >= u {
                    return false;
                }
                wait = wait.min(u - now);
            }
            if let Clock::Monotonic(c) = &self.clock {
                let left = self
                    .expires_at
                    .load(Ordering::Acquire)
                    .saturating_sub(c.now_ns());
                wait = wait.min(Duration::from_nanos(left.max(1)));
            }
            let (g, timed_out) = self
                .signal
                .cv
                .wait_timeout(generation, wait)
                .unwrap_or_else(|e| e.into_inner());
            generation = g;
            if timed_out.timed_out() && wait == SLICE {
                return self.is_lost(); // let the caller check for signals
            }
        }
    }
}

#[pymethods]
impl Lease {
    #[getter]
    fn resource(&self, py: Python<'_>) -> Py<PyString> {
        self.resource.clone_ref(py)
    }

    #[getter]
    fn owner(&self, py: Python<'_>) -> Py<PyString> {
        self.owner.clone_ref(py)
    }

    /// The fencing token: greater than every token the table granted before.
    #[getter]
    fn token(&self) -> u64 {
        self.token
    }

    #[getter]
    fn shared(&self) -> bool {
        self.shared
    }

    /// When the lease ends unless renewed, in seconds of the table's clock.
    #[getter]
    fn expires_at(&self) -> f64 {
        secs(self.core_expires())
    }

    /// True once the lease is no longer held: released, a renewal failed,
    /// or its table's clock reached `expires_at` (exact at the deadline).
    #[getter]
    fn lost(&self) -> bool {
        self.is_lost()
    }

    /// Blocks (GIL released, Ctrl-C honoured) until the lease is lost
    /// (True) or `timeout` seconds pass (False).
    #[pyo3(signature = (timeout=None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let timeout = timeout_arg(timeout)?;
        let until = timeout.map(|t| Instant::now() + t);
        loop {
            if self.is_lost() {
                return Ok(true);
            }
            let guarded = lock(&self.renewer).is_some();
            let done = py.detach(|| {
                if guarded {
                    let left = until.map(|u| u.saturating_duration_since(Instant::now()));
                    let slice = left.map_or(SLICE, |l| l.min(SLICE));
                    let g = lock(&self.renewer);
                    match &*g {
                        Some(g) => g.wait_lost(Some(slice)),
                        None => self.is_lost(),
                    }
                } else {
                    self.wait_lost_slice(until)
                }
            });
            if done {
                return Ok(true);
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return Ok(self.is_lost());
            }
            py.check_signals()?;
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Lease(resource={}, owner={}, token={}, shared={}, expires_at={:?}, lost={})",
            self.resource
                .bind(py)
                .repr()
                .map_or("?".into(), |r| r.to_string()),
            self.owner
                .bind(py)
                .repr()
                .map_or("?".into(), |r| r.to_string()),
            self.token,
            if self.shared { "True" } else { "False" },
            secs(self.core_expires()),
            if self.is_lost() { "True" } else { "False" },
        )
    }
}

// ---------------------------------------------------------------- LeaseTable

/// Expiring shared/exclusive locks with fencing tokens and FIFO waiters.
#[pyclass(frozen, module = "quorumkit", name = "LeaseTable")]
pub struct LeaseTable {
    pub(crate) core: CoreTable,
    clock: Option<Py<ManualClock>>,
    signal: Arc<Signal>,
}

/// A lease request's arguments, checked.
pub(crate) struct Request<'py> {
    pub(crate) resource: Bound<'py, PyString>,
    pub(crate) owner: Bound<'py, PyString>,
    pub(crate) ttl: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) mode: Mode,
}

impl<'py> Request<'py> {
    pub(crate) fn parse(
        resource: &Bound<'py, PyAny>,
        owner: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Request {
            resource: str_obj(resource, "resource")?,
            owner: str_obj(owner, "owner")?,
            ttl: ttl_arg(ttl)?,
            timeout: timeout_arg(timeout)?,
            mode: mode_arg(shared)?,
        })
    }
}

impl LeaseTable {
    fn wrap(&self, req: &Request<'_>, core: CoreLease) -> Lease {
        Lease {
            resource: req.resource.clone().unbind(),
            owner: req.owner.clone().unbind(),
            token: core.token,
            shared: core.mode == Mode::Shared,
            expires_at: AtomicU64::new(core.expires_at),
            table: self.core.clone(),
            resource_key: core.resource.clone(),
            gone: AtomicBool::new(false),
            clock: self.core.clock().clone(),
            signal: self.signal.clone(),
            renewer: Mutex::new(None),
        }
    }

    fn enqueue(&self, py: Python<'_>, req: &Request<'_>) -> PyResult<Enqueued> {
        let resource = utf8(&req.resource)?;
        let owner = utf8(&req.owner)?;
        guard(py, || {
            self.core
                .enqueue(&resource, &owner, req.ttl, req.mode, req.timeout)
        })
    }

    /// The blocking acquire: queue once, then wait in GIL-free slices
    /// (woken early by `cancel`).
    fn acquire_req(
        &self,
        py: Python<'_>,
        req: &Request<'_>,
        cancel: Option<&CoreCancelToken>,
    ) -> PyResult<Lease> {
        let cancelled = |py| {
            crate::errors::new_err(
                py,
                crate::errors::Kind::Cancelled,
                "the acquire was cancelled",
            )
        };
        if cancel.is_some_and(CoreCancelToken::is_cancelled) {
            return Err(cancelled(py));
        }
        let mut ticket = match self.enqueue(py, req)? {
            Enqueued::Granted(l) => return Ok(self.wrap(req, l)),
            Enqueued::Queued(t) => t,
        };
        loop {
            let r = py.detach(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cancel {
                    Some(c) => ticket.wait_cancellable(Some(SLICE), c),
                    None => ticket.wait(Some(SLICE)),
                }))
            });
            match r {
                Ok(Ok(Some(l))) => return Ok(self.wrap(req, l)),
                Ok(Ok(None)) if cancel.is_some_and(CoreCancelToken::is_cancelled) => {
                    // Withdraw; a grant that raced the cancel goes back.
                    if let Cancelled::Granted(l) = ticket.cancel() {
                        guard(py, || self.core.release(&l))?;
                    }
                    return Err(cancelled(py));
                }
                Ok(Ok(None)) => {
                    // Ctrl-C: returning the error drops the ticket, which
                    // withdraws the request (or releases a racing grant).
                    py.check_signals()?;
                }
                Ok(Err(e)) => return Err(to_pyerr(py, e)),
                Err(p) => return Err(crate::errors::panic_err(py, p)),
            }
        }
    }

    fn lease_arg<'a, 'py>(lease: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, Lease>> {
        lease
            .cast::<Lease>()
            .map_err(|_| type_error(format!("lease must be a Lease, not {}", type_name(lease))))
    }

    fn release_lease(&self, py: Python<'_>, lease: &Lease) -> PyResult<()> {
        let resource = utf8(lease.resource.bind(py))?;
        let owner = utf8(lease.owner.bind(py))?;
        guard(py, || {
            self.core.release_token(&resource, &owner, lease.token)
        })?;
        lease.mark_gone();
        Ok(())
    }

    /// Stops `lease`'s renewer (if any) and releases it; errors are raised
    /// only if `raise_errors`.
    fn finish_lease(&self, py: Python<'_>, lease: &Lease, raise_errors: bool) -> PyResult<()> {
        let renewer = lock(&lease.renewer).take();
        let result = match renewer {
            Some(g) => {
                lease
                    .expires_at
                    .store(g.lease().expires_at, Ordering::Release);
                // Joins the renewer thread (it wakes at once): GIL released.
                let r = py.detach(|| g.release());
                lease.mark_gone();
                r.map_err(|e| to_pyerr(py, e))
            }
            None => self.release_lease(py, lease),
        };
        match result {
            Err(e) if raise_errors => Err(e),
            _ => Ok(()),
        }
    }

    fn start_renewal(&self, lease: &Lease, ttl: Duration, py: Python<'_>) -> PyResult<()> {
        let mut slot = lock(&lease.renewer);
        if slot.is_some() {
            return Err(invalid(
                py,
                "this lease is already renewed in the background",
            ));
        }
        let core = CoreLease {
            resource: Arc::from(&*utf8(lease.resource.bind(py))?),
            owner: Arc::from(&*utf8(lease.owner.bind(py))?),
            token: lease.token,
            mode: if lease.shared {
                Mode::Shared
            } else {
                Mode::Exclusive
            },
            expires_at: lease.expires_at.load(Ordering::Acquire),
        };
        *slot = Some(LeaseGuard::new(&self.core, core, ttl));
        Ok(())
    }
}

#[pymethods]
impl LeaseTable {
    #[new]
    #[pyo3(signature = (clock=None, *, lock_delay=None), text_signature = "(clock=None, *, lock_delay=0.0)")]
    fn new(
        py: Python<'_>,
        clock: Option<&Bound<'_, PyAny>>,
        lock_delay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let lock_delay_ns = match lock_delay {
            Some(d) => to_ns(py, seconds_arg(d, "lock_delay")?, "lock_delay")?,
            None => 0,
        };
        let config = LeaseConfig { lock_delay_ns };
        let clock = match clock.filter(|c| !c.is_none()) {
            None => None,
            Some(c) => Some(c.cast::<ManualClock>().map_err(|_| {
                type_error(format!(
                    "clock must be a ManualClock or None, not {}",
                    type_name(c)
                ))
            })?),
        };
        Ok(match clock {
            None => LeaseTable {
                core: CoreTable::new(Clock::default(), config),
                clock: None,
                signal: Arc::default(),
            },
            Some(c) => {
                let mc = c.get();
                LeaseTable {
                    core: CoreTable::new(mc.core.clone(), config),
                    signal: mc.signal.clone(),
                    clock: Some(c.clone().unbind()),
                }
            }
        })
    }

    /// The ManualClock the table runs on, or None for the monotonic clock.
    #[getter]
    fn clock(&self, py: Python<'_>) -> Option<Py<ManualClock>> {
        self.clock.as_ref().map(|c| c.clone_ref(py))
    }

    /// Seconds a resource stays unavailable after a lease on it expires
    /// without being released.
    #[getter]
    fn lock_delay(&self) -> f64 {
        secs(self.core.config().lock_delay_ns)
    }

    /// The table's clock reading in seconds (the time base of `expires_at`).
    fn now(&self) -> f64 {
        secs(self.core.now_ns())
    }

    /// Blocks until the lease is granted (FIFO) or `timeout` seconds pass
    /// (`LockTimeoutError`; 0 is a try-lock). The GIL is released while
    /// waiting; Ctrl-C interrupts and withdraws the request, and so does
    /// `cancel.cancel()` from any thread (`AcquireCancelledError`).
    #[pyo3(signature = (resource, owner, ttl, timeout=None, shared=None, *, cancel=None), text_signature = "($self, resource, owner, ttl, timeout=None, shared=False, *, cancel=None)")]
    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
        cancel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Lease> {
        let req = Request::parse(resource, owner, ttl, timeout, shared)?;
        let token = match cancel {
            None => None,
            Some(c) if c.is_none() => None,
            Some(c) => Some(
                c.cast::<CancelToken>()
                    .map_err(|_| {
                        type_error(format!(
                            "cancel must be a CancelToken or None, not {}",
                            type_name(c)
                        ))
                    })?
                    .get()
                    .core
                    .clone(),
            ),
        };
        self.acquire_req(py, &req, token.as_ref())
    }

    /// The lease if it is free now, else None; never queues.
    #[pyo3(signature = (resource, owner, ttl, shared=None), text_signature = "($self, resource, owner, ttl, shared=False)")]
    fn try_acquire(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        shared: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Lease>> {
        let req = Request::parse(resource, owner, ttl, None, shared)?;
        let r = utf8(&req.resource)?;
        let o = utf8(&req.owner)?;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.core.try_acquire(&r, &o, req.ttl, req.mode)
        })) {
            Ok(Ok(l)) => Ok(Some(self.wrap(&req, l))),
            Ok(Err(quorumkit::Error::Busy { .. })) => Ok(None),
            Ok(Err(e)) => Err(to_pyerr(py, e)),
            Err(p) => Err(crate::errors::panic_err(py, p)),
        }
    }

    /// Extends `lease` to now + `ttl` (in place; returns it).
    fn renew<'py>(
        &self,
        py: Python<'py>,
        lease: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Lease>> {
        let lease = Self::lease_arg(lease)?;
        let ttl = ttl_arg(ttl)?;
        let l = lease.get();
        let resource = utf8(l.resource.bind(py))?;
        let owner = utf8(l.owner.bind(py))?;
        let renewed = guard(py, || {
            self.core.renew_token(&resource, &owner, l.token, ttl)
        })?;
        // The table's answer, shorter ttl included (never a max-merge).
        l.expires_at.store(renewed.expires_at, Ordering::SeqCst);
        l.signal.notify();
        Ok(lease.clone())
    }

    /// Ends `lease` and grants the next waiters.
    fn release(&self, py: Python<'_>, lease: &Bound<'_, PyAny>) -> PyResult<()> {
        let lease = Self::lease_arg(lease)?;
        self.release_lease(py, lease.get())
    }

    /// How many resources the table keeps state for: held, queued for, in
    /// lock-delay, or with a lease that expired within max(ttl, 60 s).
    /// Released names cost nothing, however many distinct names were used.
    fn resource_count(&self) -> usize {
        self.core.resource_count()
    }

    /// The number of requests queued on `resource`.
    fn queued(&self, resource: &Bound<'_, PyAny>) -> PyResult<usize> {
        let r = str_obj(resource, "resource")?;
        Ok(self.core.queue_len(&utf8(&r)?))
    }

    /// `with table.lock(...) as lease:` acquire, renew every ttl/3 in the
    /// background (`auto_renew`), release on exit.
    #[pyo3(signature = (resource, *, owner, ttl, timeout=None, shared=None, auto_renew=true), text_signature = "($self, resource, *, owner, ttl, timeout=None, shared=False, auto_renew=True)")]
    #[allow(clippy::too_many_arguments)]
    fn lock(
        slf: &Bound<'_, Self>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
        auto_renew: bool,
    ) -> PyResult<LeaseContext> {
        let req = Request::parse(resource, owner, ttl, timeout, shared)?;
        Ok(LeaseContext {
            table: slf.clone().unbind(),
            resource: req.resource.unbind(),
            owner: req.owner.unbind(),
            ttl: req.ttl,
            timeout: req.timeout,
            mode: req.mode,
            auto_renew,
            lease: Mutex::new(None),
        })
    }

    /// `await table.acquire_async(...)`: like `acquire`, without blocking
    /// the event loop (no thread per waiter, no polling).
    #[pyo3(signature = (resource, owner, ttl, timeout=None, shared=None), text_signature = "($self, resource, owner, ttl, timeout=None, shared=False)")]
    #[allow(clippy::too_many_arguments)]
    fn acquire_async<'py>(
        slf: &Bound<'py, Self>,
        resource: &Bound<'py, PyAny>,
        owner: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let f = py.import("quorumkit._asyncio")?.getattr("acquire_async")?;
        let none = py.None().into_bound(py);
        let no = PyBool::new(py, false).to_owned().into_any();
        f.call1((
            slf,
            resource,
            owner,
            ttl,
            timeout.unwrap_or(&none),
            shared.unwrap_or(&no),
        ))
    }

    /// `async with table.lock_async(...) as lease:`.
    #[pyo3(signature = (resource, *, owner, ttl, timeout=None, shared=None, auto_renew=None), text_signature = "($self, resource, *, owner, ttl, timeout=None, shared=False, auto_renew=True)")]
    #[allow(clippy::too_many_arguments)]
    fn lock_async<'py>(
        slf: &Bound<'py, Self>,
        resource: &Bound<'py, PyAny>,
        owner: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
        auto_renew: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let cls = py
            .import("quorumkit._asyncio")?
            .getattr("AsyncLeaseContext")?;
        let none = py.None().into_bound(py);
        let no = PyBool::new(py, false).to_owned().into_any();
        let yes = PyBool::new(py, true).to_owned().into_any();
        cls.call1((
            slf,
            resource,
            owner,
            ttl,
            timeout.unwrap_or(&none),
            shared.unwrap_or(&no),
            auto_renew.unwrap_or(&yes),
        ))
    }

    /// Grants at once (returns the Lease) or queues with `callback`, which
    /// the granting thread calls with the Lease or the exception (returns
    /// a `_Ticket` to withdraw the request). For `quorumkit._asyncio`.
    #[allow(clippy::too_many_arguments)]
    fn _enqueue<'py>(
        slf: &Bound<'py, Self>,
        resource: &Bound<'py, PyAny>,
        owner: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
        timeout: &Bound<'py, PyAny>,
        shared: &Bound<'py, PyAny>,
        callback: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let req = Request::parse(resource, owner, ttl, Some(timeout), Some(shared))?;
        match this.enqueue(py, &req)? {
            Enqueued::Granted(l) => Ok(Bound::new(py, this.wrap(&req, l))?.into_any()),
            Enqueued::Queued(mut ticket) => {
                let table = slf.clone().unbind();
                let res = req.resource.clone().unbind();
                let own = req.owner.clone().unbind();
                let set = ticket.on_done(Box::new(move |outcome| {
                    Python::attach(|py| {
                        let this = table.get();
                        let arg: PyResult<Py<PyAny>> = match outcome {
                            Ok(l) => {
                                let req = Request {
                                    resource: res.bind(py).clone(),
                                    owner: own.bind(py).clone(),
                                    ttl: Duration::ZERO,
                                    timeout: None,
                                    mode: l.mode,
                                };
                                Bound::new(py, this.wrap(&req, l)).map(|b| b.into_any().unbind())
                            }
                            Err(e) => Ok(to_pyerr(py, e).into_value(py).into_any()),
                        };
                        let r = arg.and_then(|a| callback.call1(py, (a,)));
                        if let Err(e) = r {
                            e.write_unraisable(py, None);
                        }
                    })
                }));
                guard(py, || set)?;
                Ok(Bound::new(
                    py,
                    AsyncTicket {
                        ticket: Mutex::new(Some(ticket)),
                    },
                )?
                .into_any())
            }
        }
    }

    /// Starts background renewal of `lease` every ttl/3 (for lock_async).
    fn _start_renewal(
        &self,
        py: Python<'_>,
        lease: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let lease = Self::lease_arg(lease)?;
        let ttl = ttl_arg(ttl)?;
        self.start_renewal(lease.get(), ttl, py)
    }

    /// Stops renewal and releases `lease`; raises only if `raise_errors`.
    fn _finish(
        &self,
        py: Python<'_>,
        lease: &Bound<'_, PyAny>,
        raise_errors: bool,
    ) -> PyResult<()> {
        let lease = Self::lease_arg(lease)?;
        self.finish_lease(py, lease.get(), raise_errors)
    }

    fn __repr__(&self) -> String {
        format!(
            "LeaseTable(clock={}, lock_delay={:?})",
            if self.clock.is_some() {
                "ManualClock"
            } else {
                "monotonic"
            },
            secs(self.core.config().lock_delay_ns)
        )
    }
}

/// A queued asynchronous request; `cancel()` withdraws it.
#[pyclass(frozen, module = "quorumkit._native", name = "_Ticket")]
pub struct AsyncTicket {
    ticket: Mutex<Option<Ticket>>,
}

#[pymethods]
impl AsyncTicket {
    /// Withdraws the request if it is still queued (True); False if it was
    /// decided already (the callback then has, or will get, the outcome).
    fn cancel(&self, py: Python<'_>) -> bool {
        let t = lock(&self.ticket).take();
        match t {
            // With a callback set, a decided request answers AlreadyTaken:
            // the callback has, or will get, the outcome.
            Some(mut t) => matches!(py.detach(|| t.cancel()), Cancelled::Withdrawn),
            None => false,
        }
    }
}

// ---------------------------------------------------------------- LeaseContext

/// `with table.lock(...) as lease:`.
#[pyclass(frozen, module = "quorumkit", name = "LeaseContext")]
pub struct LeaseContext {
    table: Py<LeaseTable>,
    resource: Py<PyString>,
    owner: Py<PyString>,
    ttl: Duration,
    timeout: Option<Duration>,
    mode: Mode,
    auto_renew: bool,
    lease: Mutex<Option<Py<Lease>>>,
}

#[pymethods]
impl LeaseContext {
    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<Lease>> {
        if lock(&self.lease).is_some() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this lock() context is already entered",
            ));
        }
        let table = self.table.get();
        let req = Request {
            resource: self.resource.bind(py).clone(),
            owner: self.owner.bind(py).clone(),
            ttl: self.ttl,
            timeout: self.timeout,
            mode: self.mode,
        };
        let lease = table.acquire_req(py, &req, None)?;
        if self.auto_renew {
            table.start_renewal(&lease, self.ttl, py)?;
        }
        let lease = Py::new(py, lease)?;
        *lock(&self.lease) = Some(lease.clone_ref(py));
        Ok(lease)
    }

    #[pyo3(signature = (exc_type, _exc, _tb))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let lease = lock(&self.lease).take();
        if let Some(lease) = lease {
            self.table
                .get()
                .finish_lease(py, lease.get(), exc_type.is_none())?;
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "LeaseContext(resource={}, held={})",
            self.resource.bind(py),
            lock(&self.lease).is_some()
        )
    }
}

// ---------------------------------------------------------------- CancelToken

/// A one-shot signal that stops blocking acquires from another thread:
/// pass it as `acquire(..., cancel=token)`; `token.cancel()` makes them
/// raise `AcquireCancelledError` holding nothing.
#[pyclass(frozen, module = "quorumkit", name = "CancelToken")]
pub struct CancelToken {
    pub(crate) core: CoreCancelToken,
}

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        CancelToken {
            core: CoreCancelToken::new(),
        }
    }

    /// Cancels every acquire waiting on this token, now or later.
    fn cancel(&self) {
        self.core.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.core.is_cancelled()
    }

    fn __repr__(&self) -> String {
        let c = if self.core.is_cancelled() {
            "True"
        } else {
            "False"
        };
        format!("CancelToken(cancelled={c})")
    }
}

// ---------------------------------------------------------------- Fence

/// Highest fencing token seen per resource: what a protected resource
/// checks before acting for a lease holder.
#[pyclass(frozen, module = "quorumkit", name = "Fence")]
pub struct Fence {
    core: CoreFence,
}

#[pymethods]
impl Fence {
    #[new]
    fn new() -> Self {
        Fence {
            core: CoreFence::new(),
        }
    }

    /// Accepts `token` if it is >= the highest seen for `resource` (and
    /// records it); else raises `StaleTokenError`.
    fn check(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
        token: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let r = str_obj(resource, "resource")?;
        let token = int_in_range(token, "token", 0, i64::MAX)? as u64;
        let r = utf8(&r)?;
        guard(py, || self.core.check(&r, token))
    }

    /// The highest token seen for `resource`, or None.
    fn highest(&self, resource: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let r = str_obj(resource, "resource")?;
        Ok(self.core.highest(&utf8(&r)?))
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    fn __repr__(&self) -> String {
        format!("Fence(resources={})", self.core.len())
    }
}
