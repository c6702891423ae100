//! `qk.RedisLeaseTable`: leases kept in Redis and shared by processes and
//! machines (the core's `lease::redis`), with the in-process table's
//! surface: blocking FIFO `acquire` (GIL released, Ctrl-C honoured),
//! `try_acquire`, `renew`, `release`.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyString;
use quorumkit::lease::Mode;
use quorumkit::lease::redis::{RedisConfig, RedisEnqueued, RedisLeaseTable as CoreTable};

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
        let (r, o) = (
            utf8(&req.resource)?.into_owned(),
            utf8(&req.owner)?.into_owned(),
        );
        let queued = py.detach(|| self.core.enqueue(&r, &o, req.ttl, req.mode, req.timeout));
        let mut ticket = match queued.map_err(|e| to_pyerr(py, e))? {
            RedisEnqueued::Granted(l) => return Ok(self.wrap(&req, l)),
            RedisEnqueued::Queued(t) => t,
        };
        loop {
            match py.detach(|| ticket.wait(Some(SLICE))) {
                Ok(Some(l)) => return Ok(self.wrap(&req, l)),
                // Ctrl-C: dropping the ticket withdraws the request.
                Ok(None) => py.check_signals()?,
                Err(e) => return Err(to_pyerr(py, e)),
            }
        }
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
