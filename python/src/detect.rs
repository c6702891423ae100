//! `FailureDetector`: the Python face of `quorumkit::detect`. Times are
//! float seconds at this boundary (as in `LeaseTable`) and nanoseconds
//! inside; the caller passes `now` from a monotonic clock
//! (`time.monotonic()`), nothing here reads one.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList, PyString};
use quorumkit::detect::{DetectorConfig, FailureDetector as Core};

use crate::args::{count_arg, f64_arg, str_arg, str_utf8};
use crate::errors::guard;
use crate::lease::{seconds_arg, secs, to_ns};

/// A duration in seconds (>= 0, finite) as nanoseconds.
fn ns_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    let s = seconds_arg(obj, what)?;
    to_ns(obj.py(), s, what)
}

/// Phi-accrual failure detector (Hayashibara et al. 2004, as in Akka) over
/// any number of nodes; ``now`` is float seconds of a monotonic clock.
#[pyclass(frozen, module = "quorumkit", name = "FailureDetector")]
pub struct FailureDetector {
    core: Mutex<Core>,
    config: DetectorConfig,
}

impl FailureDetector {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl FailureDetector {
    #[new]
    #[pyo3(
        signature = (threshold=None, max_samples=None, min_std_dev=None, acceptable_pause=None, first_heartbeat_estimate=None),
        text_signature = "(threshold=8.0, max_samples=1000, min_std_dev=0.1, acceptable_pause=3.0, first_heartbeat_estimate=1.0)"
    )]
    fn new(
        py: Python<'_>,
        threshold: Option<&Bound<'_, PyAny>>,
        max_samples: Option<&Bound<'_, PyAny>>,
        min_std_dev: Option<&Bound<'_, PyAny>>,
        acceptable_pause: Option<&Bound<'_, PyAny>>,
        first_heartbeat_estimate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut c = DetectorConfig::default();
        if let Some(t) = threshold {
            c.threshold = f64_arg(t, "threshold")?;
        }
        if let Some(m) = max_samples {
            c.max_samples = count_arg(m, "max_samples")?;
        }
        if let Some(s) = min_std_dev {
            c.min_std_dev_ns = ns_arg(s, "min_std_dev")?;
        }
        if let Some(p) = acceptable_pause {
            c.acceptable_pause_ns = ns_arg(p, "acceptable_pause")?;
        }
        if let Some(e) = first_heartbeat_estimate {
            c.first_heartbeat_estimate_ns = ns_arg(e, "first_heartbeat_estimate")?;
        }
        let core = guard(py, || Core::new(c))?;
        Ok(FailureDetector {
            core: Mutex::new(core),
            config: c,
        })
    }

    /// φ at and above which a node counts as unavailable.
    #[getter]
    fn threshold(&self) -> f64 {
        self.config.threshold
    }

    /// How many inter-arrival times each node's window keeps.
    #[getter]
    fn max_samples(&self) -> usize {
        self.config.max_samples
    }

    /// The floor of the standard deviation, in seconds.
    #[getter]
    fn min_std_dev(&self) -> f64 {
        secs(self.config.min_std_dev_ns)
    }

    /// Added to the mean interval, in seconds.
    #[getter]
    fn acceptable_pause(&self) -> f64 {
        secs(self.config.acceptable_pause_ns)
    }

    /// The assumed mean interval before any is measured, in seconds.
    #[getter]
    fn first_heartbeat_estimate(&self) -> f64 {
        secs(self.config.first_heartbeat_estimate_ns)
    }

    /// Records a heartbeat from ``node`` at ``now``; the first registers it.
    /// A heartbeat at or before its latest one (another thread's later
    /// clock reading landed first) is absorbed: no error, no change.
    fn heartbeat(
        &self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let node = str_arg(node, "node")?;
        let now = ns_arg(now, "now")?;
        guard(py, || self.lock().heartbeat(&node, now))
    }

    /// The suspicion level of ``node`` at ``now`` (>= 0, may be ``inf``).
    fn phi(
        &self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let node = str_arg(node, "node")?;
        let now = ns_arg(now, "now")?;
        guard(py, || self.lock().phi(&node, now))
    }

    /// Whether φ(``node``, ``now``) is below the threshold.
    fn is_available(
        &self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let node = str_arg(node, "node")?;
        let now = ns_arg(now, "now")?;
        guard(py, || self.lock().is_available(&node, now))
    }

    /// Stops monitoring ``node``; ``NodeNotFoundError`` if it was not.
    fn remove(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<()> {
        let node = str_arg(node, "node")?;
        guard(py, || self.lock().remove(&node))
    }

    /// The inter-arrival times (seconds) in ``node``'s window, oldest first.
    fn intervals(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let node = str_arg(node, "node")?;
        let v = guard(py, || self.lock().intervals(&node))?;
        Ok(v.into_iter().map(secs).collect())
    }

    /// The monitored nodes in name order.
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names: Vec<String> = self.lock().nodes().map(str::to_owned).collect();
        PyList::new(py, names)
    }

    fn __len__(&self) -> usize {
        self.lock().len()
    }

    fn __contains__(&self, node: &Bound<'_, PyAny>) -> PyResult<bool> {
        match node.cast::<PyString>() {
            Ok(s) => {
                let b = str_utf8(s)?;
                Ok(std::str::from_utf8(&b).is_ok_and(|n| self.lock().contains(n)))
            }
            Err(_) => Ok(false),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.nodes(py)?.try_iter()
    }

    fn __repr__(&self) -> String {
        let c = &self.config;
        format!(
            "FailureDetector(threshold={}, max_samples={}, min_std_dev={}, acceptable_pause={}, first_heartbeat_estimate={}, nodes={})",
            c.threshold,
            c.max_samples,
            secs(c.min_std_dev_ns),
            secs(c.acceptable_pause_ns),
            secs(c.first_heartbeat_estimate_ns),
            self.lock().len()
        )
    }
}
