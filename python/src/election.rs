//! `qk.Election`: leader election on a `qk.LeaseTable`, a
//! `qk.RedisLeaseTable` or a `qk.LeaseClient` (the core's `lease::Election`).

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use quorumkit::lease::redis::RedisLeaseTable as CoreRedisTable;
use quorumkit::lease::{Election as CoreElection, Leader, LeaseTable as CoreTable};

use crate::args::type_name;
use crate::errors::{to_pyerr, type_error};
use crate::lease::{LeaseTable, seconds_arg, timeout_arg, to_ns, ttl_arg};
use crate::redis_lease::RedisLeaseTable;

enum Inner {
    Local(CoreElection<CoreTable>),
    Redis(CoreElection<CoreRedisTable>),
    Remote(CoreElection<quorumkit::service::LeaseClient>),
}

macro_rules! with {
    ($inner:expr, $e:ident => $body:expr) => {
        match $inner {
            Inner::Local($e) => $body,
            Inner::Redis($e) => $body,
            Inner::Remote($e) => $body,
        }
    };
}

/// One candidate in a named election. Whoever holds the election's lease
/// leads; its epoch is the lease's fencing token, so a `qk.Fence` refuses a
/// deposed leader's writes. Works across processes on a `RedisLeaseTable`.
#[pyclass(frozen, module = "quorumkit", name = "Election")]
pub struct Election {
    inner: Inner,
}

fn leader_tuple(l: Option<Leader>) -> Option<(String, u64)> {
    l.map(|l| (l.candidate, l.epoch))
}

impl Election {
    /// Checks the observers' arguments now, then hands them to the
    /// iterator of `quorumkit._election`.
    fn observer<'py>(
        slf: &Bound<'py, Self>,
        which: &str,
        poll: Option<&Bound<'py, PyAny>>,
        idle_timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if let Some(p) = poll {
            to_ns(py, seconds_arg(p, "poll")?, "poll")?;
        }
        timeout_arg(idle_timeout)?;
        let none = py.None().into_bound(py);
        let f = py.import("quorumkit._election")?.getattr(which)?;
        f.call1((slf, poll.unwrap_or(&none), idle_timeout.unwrap_or(&none)))
    }
}

#[pymethods]
impl Election {
    /// `Election(table, name, candidate, ttl)`: `ttl` seconds of leadership
    /// lease, renewed in the background every ttl/3 while leading.
    #[new]
    fn new(
        table: &Bound<'_, PyAny>,
        name: &str,
        candidate: &str,
        ttl: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let py = table.py();
        let ttl = ttl_arg(ttl)?;
        let inner = if let Ok(t) = table.cast::<LeaseTable>() {
            let core = Arc::new(t.get().core.clone());
            Inner::Local(
                CoreElection::new(core, name, candidate, ttl).map_err(|e| to_pyerr(py, e))?,
            )
        } else if let Ok(t) = table.cast::<RedisLeaseTable>() {
            let core = Arc::new(t.get().core.clone());
            Inner::Redis(
                CoreElection::new(core, name, candidate, ttl).map_err(|e| to_pyerr(py, e))?,
            )
        } else if let Ok(t) = table.cast::<crate::lease_client::LeaseClient>() {
            let core = t.get().core.clone();
            Inner::Remote(
                CoreElection::new(core, name, candidate, ttl).map_err(|e| to_pyerr(py, e))?,
            )
        } else {
            return Err(type_error(format!(
                "table must be a LeaseTable, a RedisLeaseTable or a LeaseClient, not {}",
                type_name(table)
            )));
        };
        Ok(Election { inner })
    }

    /// Blocks (GIL released) until this candidate leads, FIFO behind the
    /// others, or `timeout` seconds pass (`LockTimeoutError`). Returns the
    /// term's epoch.
    #[pyo3(signature = (timeout=None))]
    fn campaign(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let timeout = timeout_arg(timeout)?;
        let r = py.detach(|| with!(&self.inner, e => e.campaign(timeout)));
        r.map_err(|e| to_pyerr(py, e))
    }

    /// `await election.campaign_async(timeout=None)`: `campaign` on a
    /// worker thread, so the event loop never blocks. A campaign cannot be
    /// withdrawn mid-wait: if the task is cancelled, the term it wins (if
    /// any) is resigned at once (quorumkit._election).
    #[pyo3(signature = (timeout=None))]
    fn campaign_async<'py>(
        slf: &Bound<'py, Self>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // Checked now, so a bad value raises at the call, not at await.
        timeout_arg(timeout)?;
        let none = py.None().into_bound(py);
        let f = py
            .import("quorumkit._election")?
            .getattr("campaign_async")?;
        f.call1((slf, timeout.unwrap_or(&none)))
    }

    /// `for leader in election.observe(poll=None, idle_timeout=None):`
    /// yields the leader now (a `(candidate, epoch)` tuple or None), then
    /// each change of term, as `wait_change` sees them every `poll`
    /// seconds; it ends once `idle_timeout` seconds pass with no change
    /// (None: never).
    #[pyo3(signature = (*, poll=None, idle_timeout=None))]
    fn observe<'py>(
        slf: &Bound<'py, Self>,
        poll: Option<&Bound<'py, PyAny>>,
        idle_timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::observer(slf, "observe", poll, idle_timeout)
    }

    /// `async for leader in election.observe_async(...)`: `observe` for
    /// asyncio, each wait on a worker thread in slices of at most 0.25 s,
    /// so cancelling the task leaves nothing waiting for long.
    #[pyo3(signature = (*, poll=None, idle_timeout=None))]
    fn observe_async<'py>(
        slf: &Bound<'py, Self>,
        poll: Option<&Bound<'py, PyAny>>,
        idle_timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::observer(slf, "observe_async", poll, idle_timeout)
    }

    /// Gives up leadership at once (a no-op when not leading).
    fn resign(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| with!(&self.inner, e => e.resign()));
        r.map_err(|e| to_pyerr(py, e))
    }

    /// Whether this candidate leads (won, not resigned, no failed renewal).
    #[getter]
    fn is_leader(&self) -> bool {
        with!(&self.inner, e => e.is_leader())
    }

    /// `(candidate, epoch)` of the current leader, or None (asks the table).
    fn leader(&self, py: Python<'_>) -> PyResult<Option<(String, u64)>> {
        let r = py.detach(|| with!(&self.inner, e => e.leader()));
        r.map(leader_tuple).map_err(|e| to_pyerr(py, e))
    }

    /// Blocks until the leader differs from `last` (a `(candidate, epoch)`
    /// tuple or None) or `timeout` passes; returns the leader then. The
    /// table is asked every `poll` seconds (default 0.05).
    #[pyo3(signature = (last, *, poll=None, timeout=None))]
    fn wait_change(
        &self,
        py: Python<'_>,
        last: Option<(String, u64)>,
        poll: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<(String, u64)>> {
        let p = match poll {
            Some(p) => seconds_arg(p, "poll")?,
            None => 0.05,
        };
        let poll = Duration::from_nanos(to_ns(py, p, "poll")?.max(1_000_000));
        let timeout = timeout_arg(timeout)?;
        let last = last.map(|(candidate, epoch)| Leader { candidate, epoch });
        // Slices of at most 100 ms so Ctrl-C is honoured.
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            let r = py.detach(
                || with!(&self.inner, e => e.wait_change(last.as_ref(), poll, Some(slice))),
            );
            let now = r.map_err(|e| to_pyerr(py, e))?;
            let expired = deadline.is_some_and(|d| std::time::Instant::now() >= d);
            if now != last || expired {
                return Ok(leader_tuple(now));
            }
            py.check_signals()?;
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving a `with` block resigns.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.resign(py)?;
        Ok(false)
    }
}
