//! `qk.Replica` (the networked replica runtime with a Python state
//! machine: `apply` and `query` callables) and `qk.ReplicaClient` (its
//! client), over the core's `net::Replica` and `net::hosted`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use quorumkit::net::hosted::{self, HostedMachine};
use quorumkit::net::{Client, ClientConfig, Replica as CoreReplica, ReplicaConfig};
use quorumkit::paxos::MembershipChange;

use crate::args::{key_bytes, type_name};
use crate::errors::{invalid, to_pyerr, type_error};
use crate::lease::{seconds_arg, to_ns};

/// One `"host:port"` string as an address.
fn addr_arg(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
    let s: String = a
        .cast::<PyString>()
        .map_err(|_| type_error(format!("an address must be a str, not {}", type_name(a))))?
        .to_str()?
        .to_owned();
    std::net::ToSocketAddrs::to_socket_addrs(&s)
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| invalid(py, format!("{s:?} is not a host:port address")))
}

/// A list of `"host:port"` strings.
pub(crate) fn addrs_arg(py: Python<'_>, addrs: &Bound<'_, PyAny>) -> PyResult<Vec<SocketAddr>> {
    if addrs.is_instance_of::<PyString>() {
        return Err(type_error(
            "addrs must be a list of \"host:port\" strings, not one str",
        ));
    }
    let mut list = Vec::new();
    for a in addrs.try_iter()? {
        list.push(addr_arg(py, &a?)?);
    }
    if list.is_empty() {
        return Err(invalid(py, "addrs is empty"));
    }
    Ok(list)
}

/// The cluster secret: str (UTF-8) or bytes.
pub(crate) fn secret_arg(secret: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = secret.cast::<PyString>() {
        Ok(s.to_str()?.as_bytes().to_vec())
    } else if let Ok(b) = secret.cast::<PyBytes>() {
        Ok(b.as_bytes().to_vec())
    } else {
        Err(type_error(format!(
            "secret must be str or bytes, not {}",
            type_name(secret)
        )))
    }
}

/// A client config with an optional `timeout` in seconds.
pub(crate) fn client_config(
    py: Python<'_>,
    addrs: &Bound<'_, PyAny>,
    secret: &Bound<'_, PyAny>,
    cluster_id: u64,
    timeout: Option<&Bound<'_, PyAny>>,
) -> PyResult<ClientConfig> {
    let mut cfg = ClientConfig::new(addrs_arg(py, addrs)?, cluster_id, secret_arg(secret)?);
    if let Some(t) = timeout.filter(|t| !t.is_none()) {
        let s = seconds_arg(t, "timeout")?;
        if s == 0.0 {
            return Err(invalid(py, "timeout must be > 0 seconds"));
        }
        cfg.timeout = Duration::from_nanos(to_ns(py, s, "timeout")?);
        cfg.attempt_timeout = cfg.attempt_timeout.min(cfg.timeout);
    }
    Ok(cfg)
}

/// What a Python callable returned, as the replicated result.
fn reply_of(r: PyResult<Bound<'_, PyAny>>) -> std::result::Result<Vec<u8>, String> {
    match r {
        Ok(v) if v.is_none() => Ok(Vec::new()),
        Ok(v) => match key_bytes(&v) {
            Ok(b) => Ok(b.into_owned()),
            Err(_) => Err(format!(
                "the state machine returned {}, not bytes, str or None",
                type_name(&v)
            )),
        },
        Err(e) => Python::attach(|py| {
            let name = e
                .get_type(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "Exception".into());
            Err(format!("{name}: {}", e.value(py)))
        }),
    }
}

/// A replica of a cluster, running on its own threads: it listens on its
/// entry of `peers`, connects to the others, keeps its log in `data_dir`
/// (one fsync per batch), and applies every decided command, in log order,
/// by calling `apply(command: bytes, time_ns: int)` on its own thread.
/// What `apply` returns (bytes, str or None) goes back to the proposer;
/// an exception refuses the command (the proposer gets
/// `InvalidArgumentError` with its message). `apply` must be
/// deterministic — every replica calls it with the same commands — and,
/// since a restarted replica applies its whole log again, the state must
/// start empty each time the replica starts. `query(q: bytes)` answers
/// linearizable reads on the leader (None: reads are refused).
#[pyclass(module = "quorumkit", name = "Replica")]
pub struct Replica {
    inner: Mutex<Option<CoreReplica>>,
    address: String,
}

/// `{id: "host:port"}`, or `"1=host:port,2=..."`.
fn peers_arg(py: Python<'_>, peers: &Bound<'_, PyAny>) -> PyResult<BTreeMap<u32, SocketAddr>> {
    let mut out = BTreeMap::new();
    if let Ok(d) = peers.cast::<PyDict>() {
        for (k, v) in d.iter() {
            let id: u32 = k.extract().map_err(|_| {
                type_error(format!(
                    "a replica id must be an int, not {}",
                    type_name(&k)
                ))
            })?;
            if id == 0 {
                return Err(invalid(py, "replica ids start at 1"));
            }
            out.insert(id, addr_arg(py, &v)?);
        }
    } else if let Ok(s) = peers.cast::<PyString>() {
        for item in s
            .to_str()?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (id, addr) = item
                .split_once('=')
                .ok_or_else(|| invalid(py, format!("{item:?} is not ID=HOST:PORT")))?;
            let id: u32 = id
                .parse()
                .ok()
                .filter(|&i| i > 0)
                .ok_or_else(|| invalid(py, format!("{item:?}: ids are numbers from 1")))?;
            let a = PyString::new(py, addr).into_any();
            if out.insert(id, addr_arg(py, &a)?).is_some() {
                return Err(invalid(py, format!("replica {id} is listed twice")));
            }
        }
    } else {
        return Err(type_error(format!(
            "peers must be a dict {{id: \"host:port\"}} or a str, not {}",
            type_name(peers)
        )));
    }
    if out.is_empty() {
        return Err(invalid(py, "peers is empty"));
    }
    Ok(out)
}

#[pymethods]
impl Replica {
    #[new]
    #[pyo3(signature = (id, peers, data_dir, *, secret, apply, query=None, cluster_id=1, init=false, join=false, heartbeat=None, snapshot=None, restore=None, compact_every=None, read_policy="lease"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        id: u32,
        peers: &Bound<'_, PyAny>,
        data_dir: std::path::PathBuf,
        secret: &Bound<'_, PyAny>,
        apply: Py<PyAny>,
        query: Option<Py<PyAny>>,
        cluster_id: u64,
        init: bool,
        join: bool,
        heartbeat: Option<&Bound<'_, PyAny>>,
        snapshot: Option<Py<PyAny>>,
        restore: Option<Py<PyAny>>,
        compact_every: Option<&Bound<'_, PyAny>>,
        read_policy: &str,
    ) -> PyResult<Self> {
        let peers = peers_arg(py, peers)?;
        if !peers.contains_key(&id) {
            return Err(invalid(py, format!("replica {id} is not among the peers")));
        }
        if !apply.bind(py).is_callable() {
            return Err(type_error("apply must be callable"));
        }
        if let Some(q) = &query
            && !q.bind(py).is_callable()
        {
            return Err(type_error("query must be callable or None"));
        }
        for (f, what) in [(&snapshot, "snapshot"), (&restore, "restore")] {
            if let Some(f) = f
                && !f.bind(py).is_callable()
            {
                return Err(type_error(format!("{what} must be callable or None")));
            }
        }
        if snapshot.is_some() != restore.is_some() {
            return Err(invalid(
                py,
                "snapshot and restore go together: give both or neither",
            ));
        }
        let compact_every = match compact_every {
            Some(c) => crate::args::int_in_range(c, "compact_every", 0, i64::MAX)? as u64,
            None => 10_000,
        };
        let beat = match heartbeat.filter(|h| !h.is_none()) {
            Some(h) => seconds_arg(h, "heartbeat")?,
            None => 0.05,
        };
        if beat < 0.001 {
            return Err(invalid(py, "heartbeat must be at least 0.001 seconds"));
        }
        let mut config = ReplicaConfig::new(id, peers, data_dir, cluster_id, secret_arg(secret)?);
        config.init = init;
        config.join = join;
        config.compact_every_slots = compact_every;
        config.read_policy = parse_read_policy(py, read_policy)?;
        if compact_every == 0 {
            config.compact_every_bytes = 0;
        }
        config.set_heartbeat(Duration::from_nanos(to_ns(py, beat, "heartbeat")?));
        let apply_fn: hosted::ApplyFn = Box::new(move |time, command| {
            Python::attach(|py| {
                let cmd = PyBytes::new(py, command);
                reply_of(apply.bind(py).call1((cmd, time)))
            })
        });
        let query_fn: Option<hosted::QueryFn> = query.map(|q| {
            let f: hosted::QueryFn = Box::new(move |bytes: &[u8]| {
                Python::attach(|py| reply_of(q.bind(py).call1((PyBytes::new(py, bytes),))))
            });
            f
        });
        let mut machine = HostedMachine::new(apply_fn, query_fn);
        if let (Some(snap), Some(rest)) = (snapshot, restore) {
            let snapshot_fn: hosted::SnapshotFn = Box::new(move || {
                Python::attach(|py| {
                    let out = snap.bind(py).call0().map_err(|e| e.to_string())?;
                    crate::paxos::bytes_of(&out).map_err(|e| e.to_string())
                })
            });
            let restore_fn: hosted::RestoreFn = Box::new(move |data: &[u8]| {
                Python::attach(|py| {
                    rest.bind(py)
                        .call1((PyBytes::new(py, data),))
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            });
            machine = machine.with_snapshots(snapshot_fn, restore_fn);
        }
        let replica = py
            .detach(|| CoreReplica::start(config, machine))
            .map_err(|e| to_pyerr(py, e))?;
        let address = replica.local_addr().to_string();
        Ok(Replica {
            inner: Mutex::new(Some(replica)),
            address,
        })
    }

    /// The address it listens on.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// Whether it still runs (False after `stop()` or a fatal storage error).
    #[getter]
    fn running(&self) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().is_some_and(|r| !r.is_stopped())
    }

    /// How it answers reads: `"lease"` or `"read_index"`. Setting it takes
    /// effect from the next read the replica takes (reads already waiting
    /// finish under the policy they started with); for example switch to
    /// `"read_index"` while the clocks are suspect.
    #[getter]
    fn read_policy(&self, py: Python<'_>) -> PyResult<&'static str> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref().map(|r| r.read_policy()) {
            Some(quorumkit::net::ReadPolicy::Lease) => Ok("lease"),
            Some(quorumkit::net::ReadPolicy::ReadIndex) => Ok("read_index"),
            None => Err(invalid(py, "the replica was stopped")),
        }
    }

    #[setter]
    fn set_read_policy(&self, py: Python<'_>, policy: &str) -> PyResult<()> {
        let policy = parse_read_policy(py, policy)?;
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(r) => {
                r.set_read_policy(policy);
                Ok(())
            }
            None => Err(invalid(py, "the replica was stopped")),
        }
    }

    /// Makes replica `id` at `addr` (`"host:port"`) known to this one: it
    /// connects to it and accepts its connections. Call it on every replica
    /// before a change adds `id`. Again at the same address: nothing
    /// changes; at another address: `InvalidArgumentError`.
    fn add_peer(&self, py: Python<'_>, id: u32, addr: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = addr_arg(py, addr)?;
        self.on_core(py, move |r| r.add_peer(id, addr))
    }

    /// Proposes adding replica `id` (started with `join=True`, and known to
    /// every replica through `add_peer`) as a learner: it catches up
    /// without a vote. Only the leader takes a change (`NotLeaderError`);
    /// it is in force once `membership()` shows its epoch.
    fn add_learner(&self, py: Python<'_>, id: u32) -> PyResult<()> {
        self.change(py, MembershipChange::AddLearner(id))
    }

    /// Proposes making the learner `id` a voter (refused if the leader has
    /// not heard from it within an election timeout: retry).
    fn promote(&self, py: Python<'_>, id: u32) -> PyResult<()> {
        self.change(py, MembershipChange::Promote(id))
    }

    /// Proposes removing the voter or learner `id` (the leader may remove
    /// itself).
    fn remove(&self, py: Python<'_>, id: u32) -> PyResult<()> {
        self.change(py, MembershipChange::Remove(id))
    }

    /// Proposes giving the voter `old`'s vote to the learner `new`, in one
    /// change.
    fn replace(&self, py: Python<'_>, old: u32, new: u32) -> PyResult<()> {
        self.change(py, MembershipChange::Replace { old, new })
    }

    /// Hands the leadership to voter `to`: the leader waits until `to` has
    /// every slot, steps down, and `to` stands at once.
    fn transfer_leadership(&self, py: Python<'_>, to: u32) -> PyResult<()> {
        self.on_core(py, move |r| r.transfer_leadership(to))
    }

    /// The membership applied last: `(epoch, start, voters, learners)`.
    fn membership(&self, py: Python<'_>) -> PyResult<(u64, u64, Vec<u32>, Vec<u32>)> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(r) => {
                let m = r.membership();
                Ok((m.epoch, m.start, m.voters, m.learners))
            }
            None => Err(invalid(py, "the replica was stopped")),
        }
    }

    /// `{"id", "leader" (0: none known), "ballot": (round, replica),
    /// "commit_index", "applied", "read_lease"}`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match g.as_ref() {
                Some(r) => r.status(),
                None => return Err(invalid(py, "the replica was stopped")),
            }
        };
        let d = PyDict::new(py);
        d.set_item("id", s.id)?;
        d.set_item("leader", s.leader)?;
        d.set_item("ballot", (s.ballot_round, s.ballot_node))?;
        d.set_item("commit_index", s.commit_index)?;
        d.set_item("applied", s.applied)?;
        d.set_item("read_lease", s.read_lease)?;
        Ok(d)
    }

    /// Stops it (its threads end; nothing more is applied). Its data
    /// directory keeps the log for a restart. Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let r = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = r {
            // The core thread may be waiting for the GIL inside `apply`.
            py.detach(|| r.shutdown()).map_err(|e| to_pyerr(py, e))?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: &Bound<'_, PyAny>,
        _v: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "Replica(address={:?}, running={})",
            self.address,
            self.running()
        )
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let r = self
            .inner
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = r {
            // Without the GIL: the replica's thread may need it to finish.
            Python::attach(|py| py.detach(|| drop(r)));
        }
    }
}

/// A client of a replica cluster: finds the leader, follows redirects,
/// and retries a command with the same request id, so it is applied once.
/// Calls release the GIL; one connection, calls take turns (use a client
/// per thread for parallel calls).
#[pyclass(frozen, module = "quorumkit", name = "ReplicaClient")]
pub struct ReplicaClient {
    inner: Mutex<Client>,
}

#[pymethods]
impl ReplicaClient {
    #[new]
    #[pyo3(signature = (addrs, *, secret, cluster_id=1, timeout=None))]
    fn new(
        py: Python<'_>,
        addrs: &Bound<'_, PyAny>,
        secret: &Bound<'_, PyAny>,
        cluster_id: u64,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let cfg = client_config(py, addrs, secret, cluster_id, timeout)?;
        let c = Client::new(cfg).map_err(|e| to_pyerr(py, e))?;
        Ok(ReplicaClient {
            inner: Mutex::new(c),
        })
    }

    /// Replicates `command` (bytes or str) and returns what `apply`
    /// returned once it is decided and applied. `InvalidArgumentError`
    /// when `apply` refused it; `BackendUnavailableError` when no leader
    /// answered within the timeout (the command may or may not be applied).
    fn propose<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let cmd = key_bytes(command)?.into_owned();
        let r = py.detach(|| {
            let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            hosted::propose(&mut c, &cmd)
        });
        Ok(PyBytes::new(py, &r.map_err(|e| to_pyerr(py, e))?))
    }

    /// Answers `query` with the leader's `query` callable, under its read
    /// lease (linearizable; not logged).
    fn read<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let q = key_bytes(query)?.into_owned();
        let r = py.detach(|| {
            let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            c.read(&q)
        });
        Ok(PyBytes::new(py, &r.map_err(|e| to_pyerr(py, e))?))
    }
}

fn parse_read_policy(py: Python<'_>, policy: &str) -> PyResult<quorumkit::net::ReadPolicy> {
    match policy {
        "lease" => Ok(quorumkit::net::ReadPolicy::Lease),
        "read_index" => Ok(quorumkit::net::ReadPolicy::ReadIndex),
        other => Err(invalid(
            py,
            format!("read_policy must be \"lease\" or \"read_index\", not {other:?}"),
        )),
    }
}

impl Replica {
    fn change(&self, py: Python<'_>, change: MembershipChange) -> PyResult<()> {
        self.on_core(py, move |r| r.change_membership(change))
    }

    /// Runs `op` on the running replica without the GIL: it waits for the
    /// core's thread, which may be applying a command in Python.
    fn on_core(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&CoreReplica) -> quorumkit::Result<()> + Send,
    ) -> PyResult<()> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = g.as_ref() else {
            return Err(invalid(py, "the replica was stopped"));
        };
        py.detach(|| op(r)).map_err(|e| to_pyerr(py, e))
    }
}
