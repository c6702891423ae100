//! `qk.LeaseClient`: leases from a replicated lease service
//! (`quorumkit serve`), with the lease table's surface. The context
//! manager with auto-renew and the asyncio calls are in
//! `quorumkit/_lease_client.py`, on top of these.

use std::sync::Arc;
use std::time::Instant;

use pyo3::prelude::*;
use quorumkit::lease::{Lease as CoreLease, Mode};
use quorumkit::service::{LeaseClient as CoreClient, RemoteLease as CoreRemote};

use crate::args::type_name;
use crate::errors::{to_pyerr, type_error};
use crate::lease::{mode_arg, str_obj, timeout_arg, ttl_arg, utf8};

/// A lease granted by the service. `token` is the fencing token;
/// `valid` says whether this process may still act on it (its view ends
/// one TTL after the request was sent; the service's never earlier).
#[pyclass(frozen, module = "quorumkit", name = "RemoteLease")]
pub struct RemoteLease {
    inner: CoreRemote,
}

#[pymethods]
impl RemoteLease {
    #[getter]
    fn resource(&self) -> &str {
        &self.inner.lease.resource
    }
    #[getter]
    fn owner(&self) -> &str {
        &self.inner.lease.owner
    }
    #[getter]
    fn token(&self) -> u64 {
        self.inner.lease.token
    }
    #[getter]
    fn shared(&self) -> bool {
        self.inner.lease.mode == Mode::Shared
    }
    /// When the service expires it, in seconds of cluster time.
    #[getter]
    fn expires_at(&self) -> f64 {
        self.inner.lease.expires_at as f64 / 1e9
    }
    /// Whether this process may still act on it.
    #[getter]
    fn valid(&self) -> bool {
        self.inner.is_valid()
    }
    /// Seconds left in this process's view (0.0 once it ended).
    fn remaining(&self) -> f64 {
        self.inner
            .valid_until
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    }
    fn __repr__(&self) -> String {
        let l = &self.inner.lease;
        format!(
            "RemoteLease(resource={:?}, owner={:?}, token={}, shared={}, valid={})",
            l.resource,
            l.owner,
            l.token,
            if l.mode == Mode::Shared {
                "True"
            } else {
                "False"
            },
            if self.inner.is_valid() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// A client of a replicated lease service. Thread-safe; every blocking
/// call releases the GIL.
#[pyclass(frozen, subclass, module = "quorumkit", name = "LeaseClient")]
pub struct LeaseClient {
    pub(crate) core: Arc<CoreClient>,
}

fn names(resource: &Bound<'_, PyAny>, owner: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    let r = utf8(&str_obj(resource, "resource")?)?.into_owned();
    let o = utf8(&str_obj(owner, "owner")?)?.into_owned();
    Ok((r, o))
}

fn lease_arg<'a, 'py>(lease: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, RemoteLease>> {
    lease.cast::<RemoteLease>().map_err(|_| {
        type_error(format!(
            "lease must be a RemoteLease, not {}",
            type_name(lease)
        ))
    })
}

#[pymethods]
impl LeaseClient {
    /// `LeaseClient(["127.0.0.1:7001", ...], secret=..., cluster_id=1,
    /// timeout=10.0)`: a client of the cluster whose replicas listen at
    /// `addrs`. No connection is made until the first call; a cluster that
    /// cannot be reached is a `BackendUnavailableError` within `timeout`.
    #[new]
    #[pyo3(signature = (addrs, *, secret, cluster_id=1, timeout=None))]
    fn new(
        py: Python<'_>,
        addrs: &Bound<'_, PyAny>,
        secret: &Bound<'_, PyAny>,
        cluster_id: u64,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let cfg = crate::replica::client_config(py, addrs, secret, cluster_id, timeout)?;
        let core = CoreClient::new(cfg).map_err(|e| to_pyerr(py, e))?;
        Ok(LeaseClient {
            core: Arc::new(core),
        })
    }

    /// Blocks (GIL released) until the lease is granted, FIFO, or `timeout`
    /// seconds pass (`LockTimeoutError`; None waits without end). The
    /// service tells this client when it is granted: no polling.
    #[pyo3(signature = (resource, owner, ttl, timeout=None, shared=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RemoteLease> {
        let (r, o) = names(resource, owner)?;
        let (ttl, timeout, mode) = (ttl_arg(ttl)?, timeout_arg(timeout)?, mode_arg(shared)?);
        let got = py.detach(|| self.core.acquire(&r, &o, ttl, mode, timeout));
        Ok(RemoteLease {
            inner: got.map_err(|e| to_pyerr(py, e))?,
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
    ) -> PyResult<Option<RemoteLease>> {
        let (r, o) = names(resource, owner)?;
        let (ttl, mode) = (ttl_arg(ttl)?, mode_arg(shared)?);
        match py.detach(|| self.core.try_acquire(&r, &o, ttl, mode)) {
            Ok(l) => Ok(Some(RemoteLease { inner: l })),
            Err(quorumkit::Error::Busy { .. }) => Ok(None),
            Err(e) => Err(to_pyerr(py, e)),
        }
    }

    /// Extends `lease` to `ttl` seconds from now; returns the renewed lease.
    /// `LeaseExpiredError` / `NotHolderError` when it is no longer held.
    fn renew(
        &self,
        py: Python<'_>,
        lease: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
    ) -> PyResult<RemoteLease> {
        let held = lease_arg(lease)?.get().inner.clone();
        let ttl = ttl_arg(ttl)?;
        let got = py.detach(|| self.core.renew(&held, ttl));
        Ok(RemoteLease {
            inner: got.map_err(|e| to_pyerr(py, e))?,
        })
    }

    /// Ends `lease`; the next waiter is granted at once.
    fn release(&self, py: Python<'_>, lease: &Bound<'_, PyAny>) -> PyResult<()> {
        let held = lease_arg(lease)?.get().inner.clone();
        py.detach(|| self.core.release(&held))
            .map_err(|e| to_pyerr(py, e))
    }

    /// The fencing tokens of `resource`'s current holders (a linearizable
    /// read on the leader).
    fn holders(&self, py: Python<'_>, resource: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
        let r = utf8(&str_obj(resource, "resource")?)?.into_owned();
        let hs: Vec<CoreLease> = py
            .detach(|| self.core.holders(&r))
            .map_err(|e| to_pyerr(py, e))?;
        Ok(hs.iter().map(|l| l.token).collect())
    }
}
