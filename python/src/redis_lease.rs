//! `qk.RedisLeaseTable`: leases kept in Redis and shared by processes and
//! machines (the core's `lease::redis`), with the in-process table's
//! surface: blocking FIFO `acquire` (GIL released, Ctrl-C honoured),
//! `try_acquire`, `renew`, `release`.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyString;
use quorumkit::lease::Mode;
use quorumkit::lease::redis::{
    RedisConfig, RedisEnqueued, RedisLeaseTable as CoreTable, RenewedLease, Renewer,
};

use crate::errors::{guard, to_pyerr, type_error};
use crate::lease::{Request, SLICE, seconds_arg, str_obj, to_ns, utf8};

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
}

#[pymethods]
impl RedisLease {
    #[getter]
    fn expires_at(&self) -> f64 {
        crate::lease::secs(self.expires_at_ns)
    }

    /// Whether Redis no longer holds this lease (released, expired, or
    /// taken over); asks the server.
    #[getter]
    fn lost(&self, py: Python<'_>) -> PyResult<bool> {
        let r = utf8(self.resource.bind(py))?.into_owned();
        let held = py.detach(|| self.table.lease_status(&r, self.token));
        Ok(held.map_err(|e| to_pyerr(py, e))?.is_none())
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
    /// One renewer thread for every `lock()` of this table.
    renewer: Renewer,
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
        }
    }

    /// The blocking acquire: queue once, then wait in GIL-free slices.
    fn acquire_req(
        &self,
        py: Python<'_>,
        req: &Request<'_>,
    ) -> PyResult<(RedisLease, quorumkit::lease::Lease)> {
        let (r, o) = (
            utf8(&req.resource)?.into_owned(),
            utf8(&req.owner)?.into_owned(),
        );
        let (ttl, mode, timeout) = (req.ttl, req.mode, req.timeout);
        let queued = py.detach(|| self.core.enqueue(&r, &o, ttl, mode, timeout));
        let mut ticket = match queued.map_err(|e| to_pyerr(py, e))? {
            RedisEnqueued::Granted(l) => return Ok((self.wrap(req, l.clone()), l)),
            RedisEnqueued::Queued(t) => t,
        };
        loop {
            match py.detach(|| ticket.wait(Some(SLICE))) {
                Ok(Some(l)) => return Ok((self.wrap(req, l.clone()), l)),
                // Ctrl-C: dropping the ticket withdraws the request.
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
    /// `rediss://` for TLS, `redis+unix:///path`). Connects lazily: an
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
        Ok(RedisLeaseTable {
            renewer: Renewer::new(core.clone()),
            core,
        })
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
    /// GIL is released while waiting; Ctrl-C withdraws the request.
    #[pyo3(signature = (resource, owner, ttl, timeout=None, shared=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RedisLease> {
        let req = Request::parse(resource, owner, ttl, timeout, shared)?;
        self.acquire_req(py, &req).map(|(l, _)| l)
    }

    /// `with table.lock(resource, owner=..., ttl=...) as lease:` acquires
    /// (as `acquire`), keeps the lease alive with the table's one renewer
    /// (every ttl/3 from when each renewal is sent), and releases on exit.
    /// If a renewal fails, `lost` turns true and `wait_lost` returns; leaving
    /// the block then raises the reason (the work in it was not protected
    /// the whole time).
    #[pyo3(signature = (resource, *, owner, ttl, timeout=None, shared=None))]
    fn lock(
        slf: &Bound<'_, Self>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RedisLeaseContext> {
        // Parsed now so bad arguments fail at the call, not at `with`.
        let req = Request::parse(resource, owner, ttl, timeout, shared)?;
        Ok(RedisLeaseContext {
            table: slf.clone().unbind(),
            resource: req.resource.unbind(),
            owner: req.owner.unbind(),
            ttl: req.ttl,
            timeout: req.timeout,
            mode: req.mode,
            held: std::sync::Mutex::new(None),
        })
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
        })
    }

    /// Ends `lease` and hands the resource to the next waiter.
    fn release(&self, py: Python<'_>, lease: &Bound<'_, PyAny>) -> PyResult<()> {
        let l = Self::lease_arg(lease)?.get();
        let (r, o) = (
            utf8(l.resource.bind(py))?.into_owned(),
            utf8(l.owner.bind(py))?.into_owned(),
        );
        let done = py.detach(|| self.core.release_token(&r, &o, l.token));
        done.map_err(|e| to_pyerr(py, e))
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

/// What `RedisLeaseTable.lock()` returns: a context manager.
#[pyclass(frozen, module = "quorumkit", name = "RedisLeaseContext")]
pub struct RedisLeaseContext {
    table: Py<RedisLeaseTable>,
    resource: Py<PyString>,
    owner: Py<PyString>,
    ttl: Duration,
    timeout: Option<Duration>,
    mode: Mode,
    held: std::sync::Mutex<Option<RenewedLease>>,
}

impl RedisLeaseContext {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<RenewedLease>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl RedisLeaseContext {
    fn __enter__(&self, py: Python<'_>) -> PyResult<RedisLease> {
        if self.held().is_some() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this lock() context is already entered",
            ));
        }
        let table = self.table.bind(py).get();
        let req = Request {
            resource: self.resource.bind(py).clone(),
            owner: self.owner.bind(py).clone(),
            ttl: self.ttl,
            timeout: self.timeout,
            mode: self.mode,
        };
        let (lease, core) = table.acquire_req(py, &req)?;
        *self.held() = Some(table.renewer.keep(core, self.ttl));
        Ok(lease)
    }

    /// Releases the lease; raises why it was lost, if it was, unless the
    /// block is already raising.
    #[pyo3(signature = (exc_type, _exc, _tb))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let held = self.held().take();
        if let Some(h) = held {
            let r = py.detach(|| h.release());
            if let Err(e) = r
                && exc_type.is_none()
            {
                return Err(to_pyerr(py, e));
            }
        }
        Ok(false)
    }

    /// Whether a renewal failed while the block ran.
    #[getter]
    fn lost(&self) -> bool {
        self.held().as_ref().is_some_and(|h| h.is_lost())
    }

    /// Blocks (GIL released) until the lease is lost (True) or `timeout`
    /// seconds pass (False).
    #[pyo3(signature = (timeout=None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let timeout = crate::lease::timeout_arg(timeout)?;
        let Some(watch) = self.held().as_ref().map(RenewedLease::watch) else {
            return Ok(false);
        };
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        // GIL-free slices, so Ctrl-C is honoured.
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(SLICE),
                None => SLICE,
            };
            if py.detach(|| watch.wait_lost(Some(slice))) {
                return Ok(true);
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }
}
