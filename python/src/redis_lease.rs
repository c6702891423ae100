//! `qk.RedisLeaseTable`: leases kept in Redis and shared by processes and
//! machines (the core's `lease::redis`), with the in-process table's
//! surface: blocking FIFO `acquire` (GIL released, Ctrl-C honoured),
//! `try_acquire`, `renew`, `release`, and `lock()` whose leases the
//! table's one background renewer keeps alive (the core's `KeepAlive`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyString;
use quorumkit::lease::redis::{
    KeepAlive, RedisConfig, RedisEnqueued, RedisLeaseTable as CoreTable,
};
use quorumkit::lease::{CancelToken as CoreCancelToken, Mode};

use crate::args::type_name;
use crate::errors::{guard, to_pyerr, type_error};
use crate::lease::{Request, SLICE, seconds_arg, str_obj, timeout_arg, to_ns, utf8};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lease granted by a `RedisLeaseTable`. `expires_at` is in seconds of
/// this process's monotonic clock (`RedisLeaseTable.now()`), measured from
/// when the request was sent, so it errs early.
#[pyclass(frozen, module = "quorumkit", name = "RedisLease")]
pub struct RedisLease {
    #[pyo3(get)]
    resource: Py<PyString>,
    #[pyo3(get)]
    owner: Py<PyString>,
    #[pyo3(get)]
    token: u64,
    #[pyo3(get)]
    shared: bool,
    expires_at_ns: u64,
    table: CoreTable,
    /// The background renewal while `lock()` holds it (shared so a loss
    /// callback can be registered without holding this lock).
    keep: Mutex<Option<Arc<KeepAlive>>>,
    /// Released through this object (or its `lock()` ended).
    gone: AtomicBool,
}

impl RedisLease {
    fn kept(&self) -> Option<Arc<KeepAlive>> {
        lock(&self.keep).clone()
    }

    fn local_expiry(&self) -> u64 {
        match &*lock(&self.keep) {
            Some(k) => k.lease().expires_at,
            None => self.expires_at_ns,
        }
    }

    /// Stops the background renewal (if any) and releases the lease.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        let keep = lock(&self.keep).take();
        let r = match keep {
            Some(k) => py.detach(|| k.stop_and_release()),
            None => {
                let (r, o) = (
                    utf8(self.resource.bind(py))?.into_owned(),
                    utf8(self.owner.bind(py))?.into_owned(),
                );
                py.detach(|| self.table.release_token(&r, &o, self.token))
            }
        };
        self.gone.store(true, Ordering::SeqCst);
        r.map_err(|e| to_pyerr(py, e))
    }
}

#[pymethods]
impl RedisLease {
    /// When the lease ends unless renewed (this process's monotonic clock,
    /// seconds); moves forward while `lock()` renews it.
    #[getter]
    fn expires_at(&self) -> f64 {
        crate::lease::secs(self.local_expiry())
    }

    /// Whether this lease is no longer held. Under `lock()`: released, a
    /// renewal was refused or failed until the expiry, or the local expiry
    /// passed (no server call). Otherwise asks the server (released,
    /// expired, or taken over).
    #[getter]
    fn lost(&self, py: Python<'_>) -> PyResult<bool> {
        if self.gone.load(Ordering::SeqCst) {
            return Ok(true);
        }
        if let Some(k) = self.kept() {
            return Ok(k.is_lost());
        }
        let r = utf8(self.resource.bind(py))?.into_owned();
        let held = py.detach(|| self.table.lease_status(&r, self.token));
        Ok(held.map_err(|e| to_pyerr(py, e))?.is_none())
    }

    /// Blocks (GIL released, Ctrl-C honoured) until the lease is lost
    /// (True) or `timeout` seconds pass (False). Under `lock()` a failed
    /// renewal wakes it at once; otherwise it wakes at the local expiry
    /// and then asks the server.
    #[pyo3(signature = (timeout=None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let until = timeout_arg(timeout)?.map(|t| Instant::now() + t);
        loop {
            if self.gone.load(Ordering::SeqCst) {
                return Ok(true);
            }
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            let slice = left.map_or(SLICE, |l| l.min(SLICE));
            let kept = py.detach(|| self.kept().map(|k| k.wait_lost(Some(slice))));
            match kept {
                Some(true) => return Ok(true),
                Some(false) => {}
                None => {
                    let to_expiry = self.expires_at_ns.saturating_sub(self.table.now_ns());
                    // Past the local expiry the server decides (it may
                    // have been renewed elsewhere).
                    if to_expiry == 0 && self.lost(py)? {
                        return Ok(true);
                    }
                    let nap = if to_expiry == 0 {
                        slice
                    } else {
                        slice.min(Duration::from_nanos(to_expiry))
                    };
                    py.detach(|| std::thread::sleep(nap));
                }
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }

    /// Calls `callback(lease, error)` once when the background renewal of
    /// `lock()` finds this lease lost (a renewal refused, or failing until
    /// the expiry); `error` is the `LeaseExpiredError` / `NotHolderError` /
    /// `BackendUnavailableError` that leaving the block will raise. It runs
    /// on the table's renewer thread (at once, on this thread, if the loss
    /// is known already), never after the lease is released; exceptions
    /// it raises are reported as unraisable. Keep it quick: it delays the
    /// renewal of the table's other leases. Only leases under `lock()`
    /// with `auto_renew` have a renewal to report a loss (`ValueError`
    /// otherwise; use `wait_lost`).
    fn on_lost(slf: &Bound<'_, Self>, callback: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        if !callback.bind(py).is_callable() {
            return Err(type_error(format!(
                "callback must be callable, not {}",
                type_name(callback.bind(py))
            )));
        }
        let Some(k) = slf.get().kept() else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "only a lease held by lock() with auto_renew has a background renewal to \
                 report its loss; use wait_lost()",
            ));
        };
        let me = slf.clone().unbind();
        k.on_lost(move |e| {
            Python::attach(|py| {
                let err = to_pyerr(py, e.clone());
                if let Err(raised) = callback.call1(py, (me, err.value(py))) {
                    raised.write_unraisable(py, Some(callback.bind(py)));
                }
            })
        });
        Ok(())
    }

    /// An `asyncio.Event` of the running loop, set when `on_lost` would
    /// call back (see there); for `await lease.lost_event().wait()`.
    fn lost_event<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let f = slf
            .py()
            .import("quorumkit._redis_asyncio")?
            .getattr("lost_event")?;
        f.call1((slf,))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "RedisLease(resource={:?}, owner={:?}, token={}, shared={})",
            self.resource.bind(py).to_string(),
            self.owner.bind(py).to_string(),
            self.token,
            if self.shared { "True" } else { "False" }
        )
    }
}

/// Expiring shared/exclusive locks with fencing tokens and FIFO waiters,
/// kept in Redis: every process that opens the same URL and namespace
/// shares them. Each operation is one atomic script; expiry is Redis's own,
/// so a crashed holder's lease ends with no client alive.
#[pyclass(frozen, module = "quorumkit", name = "RedisLeaseTable")]
pub struct RedisLeaseTable {
    pub(crate) core: CoreTable,
}

fn secs_opt(obj: Option<&Bound<'_, PyAny>>, what: &str, default: Duration) -> PyResult<Duration> {
    match obj {
        None => Ok(default),
        Some(o) => {
            let s = seconds_arg(o, what)?;
            Ok(Duration::from_nanos(to_ns(o.py(), s, what)?))
        }
    }
}

impl RedisLeaseTable {
    fn wrap(&self, req: &Request<'_>, l: quorumkit::lease::Lease) -> RedisLease {
        RedisLease {
            resource: req.resource.clone().unbind(),
            owner: req.owner.clone().unbind(),
            token: l.token,
            shared: l.mode == Mode::Shared,
            expires_at_ns: l.expires_at,
            table: self.core.clone(),
            keep: Mutex::new(None),
            gone: AtomicBool::new(false),
        }
    }

    /// The blocking acquire: queue once, then wait in GIL-free slices,
    /// checking for Ctrl-C between them (a `cancel` wakes the wait at once).
    fn acquire_req(
        &self,
        py: Python<'_>,
        req: &Request<'_>,
        cancel: Option<&CoreCancelToken>,
    ) -> PyResult<RedisLease> {
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
        let (r, o) = (
            utf8(&req.resource)?.into_owned(),
            utf8(&req.owner)?.into_owned(),
        );
        let (ttl, mode, timeout) = (req.ttl, req.mode, req.timeout);
        let queued = py.detach(|| self.core.enqueue(&r, &o, ttl, mode, timeout));
        let mut ticket = match queued.map_err(|e| to_pyerr(py, e))? {
            RedisEnqueued::Granted(l) => return Ok(self.wrap(req, l)),
            RedisEnqueued::Queued(t) => t,
        };
        loop {
            let r = py.detach(|| match cancel {
                Some(c) => ticket.wait_cancellable(Some(SLICE), c),
                None => ticket.wait(Some(SLICE)),
            });
            match r {
                Ok(Some(l)) => return Ok(self.wrap(req, l)),
                // Dropping the ticket (on Ctrl-C or a cancel) withdraws
                // the request, releasing a grant that raced it.
                Ok(None) if cancel.is_some_and(CoreCancelToken::is_cancelled) => {
                    return Err(cancelled(py));
                }
                Ok(None) => py.check_signals()?,
                Err(e) => return Err(to_pyerr(py, e)),
            }
        }
    }

    fn lease_arg<'a, 'py>(lease: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, RedisLease>> {
        lease.cast::<RedisLease>().map_err(|_| {
            type_error(format!(
                "lease must be a RedisLease, not {}",
                crate::args::type_name(lease)
            ))
        })
    }
}

#[pymethods]
impl RedisLeaseTable {
    /// Opens a table on `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://` for TLS, `redis+unix:///path`, `redis-cluster://h1:p1,h2:p2`
    /// for a Redis Cluster). Connects lazily: an
    /// unreachable server is reported by the first call, within
    /// `connect_timeout` (`BackendUnavailableError`).
    #[new]
    #[pyo3(signature = (url, *, namespace="qk", connect_timeout=None, command_timeout=None, recheck_interval=None, waiter_ttl=None, lock_delay=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        namespace: &str,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        command_timeout: Option<&Bound<'_, PyAny>>,
        recheck_interval: Option<&Bound<'_, PyAny>>,
        waiter_ttl: Option<&Bound<'_, PyAny>>,
        lock_delay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let url = str_obj(url, "url")?;
        let url = utf8(&url)?.into_owned();
        let d = RedisConfig::default();
        let config = RedisConfig {
            namespace: namespace.to_owned(),
            connect_timeout: secs_opt(connect_timeout, "connect_timeout", d.connect_timeout)?,
            command_timeout: secs_opt(command_timeout, "command_timeout", d.command_timeout)?,
            recheck_interval: secs_opt(recheck_interval, "recheck_interval", d.recheck_interval)?,
            waiter_ttl: secs_opt(waiter_ttl, "waiter_ttl", d.waiter_ttl)?,
            lock_delay: secs_opt(lock_delay, "lock_delay", d.lock_delay)?,
            ..d
        };
        let core = guard(py, || CoreTable::open(&url, config))?;
        Ok(RedisLeaseTable { core })
    }

    /// This process's monotonic clock in seconds (the time base of
    /// `RedisLease.expires_at`).
    fn now(&self) -> f64 {
        crate::lease::secs(self.core.now_ns())
    }

    /// Round trip to the server; raises `BackendUnavailableError` if down.
    fn ping(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| self.core.ping());
        r.map_err(|e| to_pyerr(py, e))
    }

    /// Blocks until the lease is granted (FIFO across every process) or
    /// `timeout` seconds pass (`LockTimeoutError`; 0 is a try-lock). The
    /// GIL is released while waiting; Ctrl-C withdraws the request, and so
    /// does `cancel` (a `CancelToken`; `AcquireCancelledError`).
    #[pyo3(signature = (resource, owner, ttl, timeout=None, shared=None, cancel=None), text_signature = "($self, resource, owner, ttl, timeout=None, shared=False, cancel=None)")]
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
    ) -> PyResult<RedisLease> {
        let req = Request::parse(resource, owner, ttl, timeout, shared)?;
        let token = match cancel.filter(|c| !c.is_none()) {
            None => None,
            Some(c) => Some(
                c.cast::<crate::lease::CancelToken>()
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
    #[pyo3(signature = (resource, owner, ttl, shared=None))]
    fn try_acquire(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        shared: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<RedisLease>> {
        let req = Request::parse(resource, owner, ttl, None, shared)?;
        let (r, o) = (
            utf8(&req.resource)?.into_owned(),
            utf8(&req.owner)?.into_owned(),
        );
        match py.detach(|| self.core.try_acquire(&r, &o, req.ttl, req.mode)) {
            Ok(l) => Ok(Some(self.wrap(&req, l))),
            Err(quorumkit::Error::Busy { .. }) => Ok(None),
            Err(e) => Err(to_pyerr(py, e)),
        }
    }

    /// Extends `lease` to now + `ttl`; returns the renewed lease.
    /// `LeaseExpiredError` if it ran out first, `NotHolderError` if it is
    /// not (or no longer) this owner's.
    fn renew(
        &self,
        py: Python<'_>,
        lease: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
    ) -> PyResult<RedisLease> {
        let l = Self::lease_arg(lease)?.get();
        let ttl = crate::lease::ttl_arg(ttl)?;
        let (r, o) = (
            utf8(l.resource.bind(py))?.into_owned(),
            utf8(l.owner.bind(py))?.into_owned(),
        );
        let renewed = py.detach(|| self.core.renew_token(&r, &o, l.token, ttl));
        let renewed = renewed.map_err(|e| to_pyerr(py, e))?;
        Ok(RedisLease {
            resource: l.resource.clone_ref(py),
            owner: l.owner.clone_ref(py),
            token: renewed.token,
            shared: l.shared,
            expires_at_ns: renewed.expires_at,
            table: self.core.clone(),
            keep: Mutex::new(None),
            gone: AtomicBool::new(false),
        })
    }

    /// Ends `lease` (stopping its background renewal, if any) and hands
    /// the resource to the next waiter.
    fn release(&self, py: Python<'_>, lease: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::lease_arg(lease)?.get().finish(py)
    }

    /// `with table.lock(resource, owner=..., ttl=...) as lease:` acquires
    /// (blocking, as `acquire`), keeps the lease alive with the table's one
    /// background renewer (every ttl/3, measured from when each renewal is
    /// sent) and releases it on exit. If the lease was lost meanwhile
    /// (`lease.lost` turns True, `wait_lost` returns), leaving the block
    /// raises `LeaseExpiredError` / `NotHolderError` /
    /// `BackendUnavailableError`: the critical section ran unprotected.
    /// `await table.acquire_async(...)`: like `acquire`, on a worker thread
    /// so the event loop never blocks; cancelling the task withdraws the
    /// request (quorumkit._redis_asyncio).
    #[pyo3(signature = (resource, owner, ttl, timeout=None, shared=false))]
    fn acquire_async<'py>(
        slf: &Bound<'py, Self>,
        resource: &Bound<'py, PyAny>,
        owner: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        shared: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // Types and ranges checked now, so they raise at the call, not at await.
        Request::parse(resource, owner, ttl, timeout, None)?;
        let f = py
            .import("quorumkit._redis_asyncio")?
            .getattr("acquire_async")?;
        let none = py.None().into_bound(py);
        f.call1((slf, resource, owner, ttl, timeout.unwrap_or(&none), shared))
    }

    /// `async with table.lock_async(...) as lease:` (see `lock`).
    #[pyo3(signature = (resource, *, owner, ttl, timeout=None, shared=None, auto_renew=true, on_lost=None))]
    #[allow(clippy::too_many_arguments)]
    fn lock_async<'py>(
        slf: &Bound<'py, Self>,
        resource: &Bound<'py, PyAny>,
        owner: &Bound<'py, PyAny>,
        ttl: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
        auto_renew: bool,
        on_lost: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let ctx = Self::lock(
            slf, resource, owner, ttl, timeout, shared, auto_renew, on_lost,
        )?;
        let cls = py
            .import("quorumkit._redis_asyncio")?
            .getattr("AsyncRedisLeaseContext")?;
        cls.call1((Bound::new(py, ctx)?,))
    }

    #[pyo3(signature = (resource, *, owner, ttl, timeout=None, shared=None, auto_renew=true, on_lost=None), text_signature = "($self, resource, *, owner, ttl, timeout=None, shared=False, auto_renew=True, on_lost=None)")]
    #[allow(clippy::too_many_arguments)]
    fn lock(
        slf: &Bound<'_, Self>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
        auto_renew: bool,
        on_lost: Option<Py<PyAny>>,
    ) -> PyResult<RedisLeaseContext> {
        let req = Request::parse(resource, owner, ttl, timeout, shared)?;
        let py = slf.py();
        let on_lost = on_lost.filter(|c| !c.is_none(py));
        if let Some(c) = &on_lost {
            if !auto_renew {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "on_lost needs auto_renew: only the background renewal can tell of a loss",
                ));
            }
            if !c.bind(py).is_callable() {
                return Err(type_error(format!(
                    "on_lost must be callable, not {}",
                    type_name(c.bind(py))
                )));
            }
        }
        Ok(RedisLeaseContext {
            table: slf.clone().unbind(),
            resource: req.resource.unbind(),
            owner: req.owner.unbind(),
            ttl: req.ttl,
            timeout: req.timeout,
            mode: req.mode,
            auto_renew,
            on_lost,
            lease: Mutex::new(None),
        })
    }

    /// How many requests wait for `resource`.
    fn queued(&self, py: Python<'_>, resource: &Bound<'_, PyAny>) -> PyResult<usize> {
        let r = utf8(&str_obj(resource, "resource")?)?.into_owned();
        let n = py.detach(|| self.core.queue_len(&r));
        n.map_err(|e| to_pyerr(py, e))
    }

    /// The tokens of `resource`'s current holders.
    fn holders(&self, py: Python<'_>, resource: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
        let r = utf8(&str_obj(resource, "resource")?)?.into_owned();
        let h = py.detach(|| self.core.holders(&r));
        Ok(h.map_err(|e| to_pyerr(py, e))?
            .iter()
            .map(|l| l.token)
            .collect())
    }
}

/// `with table.lock(...) as lease:` on a `RedisLeaseTable`.
#[pyclass(frozen, module = "quorumkit", name = "RedisLeaseContext")]
pub struct RedisLeaseContext {
    table: Py<RedisLeaseTable>,
    resource: Py<PyString>,
    owner: Py<PyString>,
    ttl: Duration,
    timeout: Option<Duration>,
    mode: Mode,
    auto_renew: bool,
    on_lost: Option<Py<PyAny>>,
    lease: Mutex<Option<Py<RedisLease>>>,
}

#[pymethods]
impl RedisLeaseContext {
    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<RedisLease>> {
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
            let core = quorumkit::lease::Lease {
                resource: utf8(&req.resource)?.as_ref().into(),
                owner: utf8(&req.owner)?.as_ref().into(),
                token: lease.token,
                mode: self.mode,
                expires_at: lease.expires_at_ns,
            };
            match table.core.keep_alive(core, self.ttl) {
                Ok(k) => *lock(&lease.keep) = Some(Arc::new(k)),
                Err(e) => {
                    let _ = lease.finish(py);
                    return Err(to_pyerr(py, e));
                }
            }
        }
        let lease = Bound::new(py, lease)?;
        if let Some(c) = &self.on_lost {
            RedisLease::on_lost(&lease, c.clone_ref(py))?;
        }
        let lease = lease.unbind();
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
            match lease.get().finish(py) {
                // An exception already leaving the block wins.
                Err(e) if exc_type.is_none() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "RedisLeaseContext(resource={}, held={})",
            self.resource.bind(py),
            lock(&self.lease).is_some()
        )
    }
}
