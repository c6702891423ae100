//! `PaxosNode` and `PaxosCluster`: the Python face of `quorumkit::paxos`
//! and `quorumkit::sim`. Times are float seconds at this boundary (as in
//! `FailureDetector`) and nanoseconds inside; messages and commands are
//! bytes. A `PaxosNode` is driven by the caller (it owns the sockets and the
//! clock); a `PaxosCluster` is a whole simulated cluster on a simulated
//! clock, with faults and the safety checkers.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
    PyType,
};
use quorumkit::paxos::{
    Config, FileIdentity, FileStorage, MembershipChange, MemoryStorage, Node, NodeId, Output,
    Storage, wire,
};
use quorumkit::sim::{PaxosCluster as SimCluster, SimConfig, Violation};

use crate::args::{count_arg, int_in_range, type_name, u32_arg};
use crate::errors::{guard, invalid, type_error};
use crate::lease::{seconds_arg, secs, to_ns};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds (int or float, >= 0, finite) as nanoseconds.
fn ns_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    let s = seconds_arg(obj, what)?;
    to_ns(obj.py(), s, what)
}

/// A command or message: bytes, bytearray or memoryview (copied).
/// A bytes-like result of a host callable (bytes, bytearray, memoryview).
pub(crate) fn bytes_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    bytes_arg(obj, "the snapshot")
}

fn bytes_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        // bytes(memoryview) copies its contents (any contiguous buffer).
        let b = obj.py().get_type::<PyBytes>().call1((obj,))?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(type_error(format!(
        "{what} must be bytes (or bytearray, memoryview), not {}",
        type_name(obj)
    )))
}

/// A cluster command: bytes-like, or a str (encoded as UTF-8).
fn command_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    bytes_arg(obj, "value")
}

/// A node id (an int in the u32 range).
fn node_id_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<NodeId> {
    if obj.is_instance_of::<PyBool>() {
        return Err(type_error(format!("{what} must be an int, not bool")));
    }
    u32_arg(obj, what)
}

/// A probability in [0, 1] as parts per million.
fn per_million_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    let ok = (obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
        && !obj.is_instance_of::<PyBool>();
    if !ok {
        return Err(type_error(format!(
            "{what} must be a probability (float), not {}",
            type_name(obj)
        )));
    }
    let p: f64 = obj.extract()?;
    if !(0.0..=1.0).contains(&p) {
        return Err(invalid(
            obj.py(),
            format!("{what} must be between 0 and 1, got {p}"),
        ));
    }
    Ok((p * 1e6).round() as u32)
}

fn output_tuple<'py>(py: Python<'py>, o: Output) -> PyResult<Bound<'py, PyTuple>> {
    match o {
        Output::Send(env) => {
            let bytes = PyBytes::new(py, &wire::encode_to_vec(&env.message));
            ("send", env.to, bytes).into_pyobject(py)
        }
        Output::Decided { slot, batch } => {
            let cmds = PyList::new(py, batch.iter().map(|c| PyBytes::new(py, c)))?;
            ("decided", slot, cmds).into_pyobject(py)
        }
        Output::Persisted { records } => ("persisted", records).into_pyobject(py),
        Output::LeaderChanged { leader, .. } => ("leader", leader).into_pyobject(py),
        Output::Snapshot { slot, data } => {
            ("snapshot", slot, PyBytes::new(py, &data)).into_pyobject(py)
        }
        Output::ReadIndex { id, ready } => ("read", id, ready).into_pyobject(py),
        Output::MembershipChanged(m) => {
            ("membership", m.epoch, m.start, m.voters, m.learners).into_pyobject(py)
        }
    }
    .map(|t| t.into_any().cast_into::<PyTuple>().expect("a tuple"))
}

type DynNode = Node<Box<dyn Storage + Send>>;

/// One Multi-Paxos replica, driven by its caller: feed it messages
/// (``step``), time (``tick``) and commands (``propose``); after each call
/// take what it asks for from ``poll()``. ``now`` is float seconds of a
/// monotonic clock; messages are bytes of the wire format.
#[pyclass(frozen, module = "quorumkit", name = "PaxosNode")]
pub struct PaxosNode {
    /// `None` once closed (the record file's lock is released then).
    node: Mutex<Option<DynNode>>,
    config: Config,
    path: Option<PathBuf>,
}

fn closed_err(py: Python<'_>) -> PyErr {
    crate::errors::invalid(py, "the PaxosNode is closed")
}

impl PaxosNode {
    fn change(
        &self,
        py: Python<'_>,
        change: MembershipChange,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.change_membership(change, now))
    }

    /// Reads the open node (an error once closed).
    fn read<T>(&self, py: Python<'_>, f: impl FnOnce(&DynNode) -> T) -> PyResult<T> {
        match lock(&self.node).as_ref() {
            Some(n) => Ok(f(n)),
            None => Err(closed_err(py)),
        }
    }

    /// Runs `f` on the node; file-backed nodes release the GIL (a sync may
    /// wait for the disk).
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut DynNode) -> quorumkit::Result<T> + Send,
    ) -> PyResult<T> {
        let r = if self.path.is_some() {
            let r = py.detach(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    lock(&self.node).as_mut().map(f)
                }))
            });
            match r {
                Ok(r) => r,
                Err(payload) => return Err(crate::errors::panic_err(py, payload)),
            }
        } else {
            lock(&self.node).as_mut().map(f)
        };
        match r {
            Some(r) => guard(py, || r),
            None => Err(closed_err(py)),
        }
    }
}

#[pymethods]
impl PaxosNode {
    #[new]
    #[pyo3(
        signature = (id, members, *, heartbeat_interval=None, election_timeout=None, lease_duration=None, max_clock_drift=None, max_batch=None, max_inflight=None, seed=None, path=None, now=None, cluster_id=None, join=false),
        text_signature = "(id, members, *, heartbeat_interval=0.05, election_timeout=0.5, lease_duration=1.0, max_clock_drift=0.05, max_batch=64, max_inflight=64, seed=0, path=None, now=0.0, cluster_id=0, join=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        members: &Bound<'_, PyAny>,
        heartbeat_interval: Option<&Bound<'_, PyAny>>,
        election_timeout: Option<&Bound<'_, PyAny>>,
        lease_duration: Option<&Bound<'_, PyAny>>,
        max_clock_drift: Option<&Bound<'_, PyAny>>,
        max_batch: Option<&Bound<'_, PyAny>>,
        max_inflight: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        path: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
        cluster_id: Option<&Bound<'_, PyAny>>,
        join: bool,
    ) -> PyResult<Self> {
        let id = node_id_arg(id, "id")?;
        if members.is_instance_of::<PyString>() || members.is_instance_of::<PyBytes>() {
            return Err(type_error("members must be a sequence of ints"));
        }
        let mut ids = Vec::new();
        for m in members.try_iter().map_err(|_| {
            type_error(format!(
                "members must be a sequence of ints, not {}",
                type_name(members)
            ))
        })? {
            ids.push(node_id_arg(&m?, "members[i]")?);
        }
        let mut c = Config::new(id, ids);
        if let Some(v) = heartbeat_interval {
            c.heartbeat_interval = ns_arg(v, "heartbeat_interval")?;
        }
        if let Some(v) = election_timeout {
            c.election_timeout = ns_arg(v, "election_timeout")?;
        }
        if let Some(v) = lease_duration {
            c.lease_duration = ns_arg(v, "lease_duration")?;
        }
        if let Some(v) = max_clock_drift {
            c.max_clock_drift = ns_arg(v, "max_clock_drift")?;
        }
        if let Some(v) = max_batch {
            c.max_batch = count_arg(v, "max_batch")?;
        }
        if let Some(v) = max_inflight {
            c.max_inflight = count_arg(v, "max_inflight")?;
        }
        if let Some(v) = seed {
            c.seed = int_in_range(v, "seed", 0, i64::MAX)? as u64;
        }
        if let Some(v) = cluster_id {
            if !v.is_instance_of::<pyo3::types::PyInt>() {
                return Err(type_error(format!(
                    "cluster_id must be an int, not {}",
                    type_name(v)
                )));
            }
            c.cluster_id = v
                .extract::<u64>()
                .map_err(|_| crate::errors::invalid(py, "cluster_id must be in [0, 2**64 - 1]"))?;
        }
        let now = match now {
            Some(v) => ns_arg(v, "now")?,
            None => 0,
        };
        let path: Option<PathBuf> = match path {
            Some(p) if !p.is_none() => Some(p.extract().map_err(|_| {
                type_error(format!(
                    "path must be a str or os.PathLike, not {}",
                    type_name(p)
                ))
            })?),
            _ => None,
        };
        fn start<S: Storage>(c: Config, s: S, now: u64, join: bool) -> quorumkit::Result<Node<S>> {
            if join {
                Node::join(c, s, now)
            } else {
                Node::new(c, s, now)
            }
        }
        let node = match &path {
            None => guard(py, || {
                start(
                    c.clone(),
                    Box::new(MemoryStorage::new()) as Box<dyn Storage + Send>,
                    now,
                    join,
                )
            })?,
            Some(p) => {
                // Check the config before creating a file for it.
                guard(py, || {
                    start(c.clone(), MemoryStorage::new(), now, join).map(|_| ())
                })?;
                let (c2, p2) = (c.clone(), p.clone());
                let r = py.detach(move || {
                    let identity = FileIdentity::new(c2.cluster_id, c2.id);
                    let storage = FileStorage::open(&p2, identity)?;
                    start(c2, Box::new(storage) as Box<dyn Storage + Send>, now, join)
                });
                guard(py, || r)?
            }
        };
        Ok(PaxosNode {
            node: Mutex::new(Some(node)),
            config: c,
            path,
        })
    }

    /// The cluster id its record file is tied to (0 unless given).
    #[getter]
    fn cluster_id(&self) -> u64 {
        self.config.cluster_id
    }

    /// This replica's id.
    #[getter]
    fn id(&self) -> NodeId {
        self.config.id
    }

    /// The voters of the current membership (the ``members`` given until
    /// the first change; those given once closed).
    #[getter]
    fn members(&self) -> Vec<NodeId> {
        match lock(&self.node).as_ref() {
            Some(n) => n.members().to_vec(),
            None => self.config.members.clone(),
        }
    }

    /// The learners of the current membership.
    #[getter]
    fn learners(&self, py: Python<'_>) -> PyResult<Vec<NodeId>> {
        self.read(py, |n| n.learners().to_vec())
    }

    /// The current membership as ``(epoch, start, voters, learners)``:
    /// ``epoch`` counts the changes (0 at creation) and decides every slot
    /// from ``start`` on.
    #[getter]
    fn membership(&self, py: Python<'_>) -> PyResult<(u64, u64, Vec<NodeId>, Vec<NodeId>)> {
        self.read(py, |n| {
            let m = n.membership();
            (m.epoch, m.start, m.voters.clone(), m.learners.clone())
        })
    }

    /// Whether this replica votes in the current membership.
    #[getter]
    fn is_voter(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, |n| n.is_voter())
    }

    /// Leader only: hand the leadership to voter ``to`` (planned
    /// maintenance). The leader stops proposing, waits until ``to`` has
    /// caught up, steps down and tells ``to`` to stand at once; a
    /// ``("leader", ...)`` output follows. If ``to`` does not catch up within
    /// an election timeout the leader carries on. ``NotLeaderError`` on a
    /// follower; ``InvalidArgumentError`` when ``to`` is this node or not a
    /// voter, or while a membership change or another transfer is under way.
    fn transfer_leadership(
        &self,
        py: Python<'_>,
        to: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let to = node_id_arg(to, "to")?;
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.transfer_leadership(to, now))
    }

    /// Leader only: add replica ``id`` as a learner (it receives the log
    /// and catches up without a vote; start it with ``join=True``). The
    /// change takes a slot of its own; every replica hands out
    /// ``("membership", epoch, start, voters, learners)`` when it is
    /// delivered. ``NotLeaderError`` on a follower; ``InvalidArgumentError``
    /// (nothing changes) while another change is under way or when ``id``
    /// is already a member.
    fn add_learner(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let id = node_id_arg(id, "id")?;
        self.change(py, MembershipChange::AddLearner(id), now)
    }

    /// Leader only: make the learner ``id`` a voter. Errors as
    /// ``add_learner`` (``id`` must be a learner).
    fn promote(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let id = node_id_arg(id, "id")?;
        self.change(py, MembershipChange::Promote(id), now)
    }

    /// Leader only: remove the voter or learner ``id``. Errors as
    /// ``add_learner``; also refused when it would leave one voter.
    fn remove(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let id = node_id_arg(id, "id")?;
        self.change(py, MembershipChange::Remove(id), now)
    }

    /// Leader only: give the voter ``old``'s vote to the learner ``new``
    /// in one change (replace a failed replica). Errors as ``add_learner``.
    fn replace(
        &self,
        py: Python<'_>,
        old: &Bound<'_, PyAny>,
        new: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let old = node_id_arg(old, "old")?;
        let new = node_id_arg(new, "new")?;
        self.change(py, MembershipChange::Replace { old, new }, now)
    }

    /// The storage file, or ``None`` for memory storage.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    /// Handles ``data`` (a wire-encoded message) from replica ``sender``.
    /// ``CorruptSnapshotError`` when the bytes are not a message.
    fn step(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let from = node_id_arg(sender, "sender")?;
        let now = ns_arg(now, "now")?;
        let msg = match data.cast::<PyBytes>() {
            Ok(b) => guard(py, || wire::decode(b.as_bytes()))?,
            Err(_) => {
                let v = bytes_arg(data, "data")?;
                guard(py, || wire::decode(&v))?
            }
        };
        self.with(py, move |n| n.step(from, msg, now))
    }

    /// Lets time pass to ``now``: heartbeats, elections, retries. Call it
    /// when ``next_deadline`` passes.
    fn tick(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.tick(now))
    }

    /// Proposes ``command`` (bytes): put in a slot by the leader, forwarded
    /// by a follower that knows one, else held until one is elected.
    fn propose(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let cmd = bytes_arg(command, "command")?;
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.propose(cmd, now))
    }

    /// Proposes several commands at once (an iterable of bytes): as many
    /// ``propose`` calls, except that a leader packs them into as few slots
    /// as its batch size allows. ``TypeError`` (nothing proposed) if one
    /// is not bytes-like.
    fn propose_all(
        &self,
        py: Python<'_>,
        commands: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut cmds = Vec::new();
        for c in commands.try_iter()? {
            cmds.push(bytes_arg(&c?, "commands")?);
        }
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.propose_all(cmds, now))
    }

    /// Everything the node asks for, in order: ``("send", to, data)``,
    /// ``("decided", slot, [command, ...])`` (an empty list for a no-op
    /// slot), ``("persisted", records)``, ``("leader", leader_or_None)``,
    /// ``("snapshot", slot, data)`` (replace the application's state with
    /// ``data``, the state after every slot below ``slot``: installed from
    /// a peer, or the node's own after a restart; ``decided`` continues
    /// from ``slot``).
    fn poll<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let outputs: Vec<Output> = {
            let mut n = lock(&self.node);
            let Some(n) = n.as_mut() else {
                return Err(closed_err(py));
            };
            std::iter::from_fn(|| n.poll()).collect()
        };
        let list = PyList::empty(py);
        for o in outputs {
            list.append(output_tuple(py, o)?)?;
        }
        Ok(list)
    }

    /// Compacts the log: ``data`` (bytes) is the application's state after
    /// applying every slot below ``slot``. The node drops those slots and
    /// rewrites its storage as a checkpoint; a restart then polls
    /// ``("snapshot", slot, data)`` first and replays only later slots, and
    /// a replica that needs the dropped slots is sent the snapshot.
    /// ``InvalidArgumentError`` (nothing changes) when ``slot`` is above
    /// ``commit_index`` or not above ``log_start``.
    fn compact(
        &self,
        py: Python<'_>,
        slot: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let slot = int_in_range(slot, "slot", 0, i64::MAX)? as u64;
        let data = bytes_arg(data, "data")?;
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.compact(slot, data, now))
    }

    /// Asks for a linearizable read that needs no clock bound (ReadIndex):
    /// ``("read", read_id, True)`` follows in ``poll()`` once the leader
    /// confirmed its leadership after the read arrived and every slot up to
    /// its read index was delivered (answer it from the state then);
    /// ``("read", read_id, False)`` if it lost the leadership first.
    /// ``NotLeaderError`` on a follower.
    fn read_index(
        &self,
        py: Python<'_>,
        read_id: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let id = int_in_range(read_id, "read_id", 0, i64::MAX)? as u64;
        let now = ns_arg(now, "now")?;
        self.with(py, move |n| n.read_index(id, now))
    }

    /// The first slot the log holds; every slot below it is in the
    /// snapshot.
    #[getter]
    fn log_start(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |n| n.log_start())
    }

    /// How many slots the log holds in memory (from ``log_start``).
    #[getter]
    fn log_len(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |n| n.log_len())
    }

    /// Whether the checkpoint of the last ``compact`` is still being
    /// written in the background (a file-backed node writes it on a thread;
    /// the next call after it is written puts it in place).
    #[getter]
    fn compacting(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, |n| n.compacting())
    }

    /// When ``tick`` must next be called, in seconds.
    #[getter]
    fn next_deadline(&self, py: Python<'_>) -> PyResult<f64> {
        self.read(py, |n| secs(n.next_deadline()))
    }

    /// The leader this node follows (itself when it leads), or ``None``.
    #[getter]
    fn leader(&self, py: Python<'_>) -> PyResult<Option<NodeId>> {
        self.read(py, |n| n.leader())
    }

    /// Whether this node leads.
    #[getter]
    fn is_leader(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, |n| n.is_leader())
    }

    /// The node's ballot as ``(round, node)``.
    #[getter]
    fn ballot(&self, py: Python<'_>) -> PyResult<(u64, NodeId)> {
        self.read(py, |n| {
            let b = n.ballot();
            (b.round, b.node)
        })
    }

    /// Every slot below this is chosen and was delivered.
    #[getter]
    fn commit_index(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |n| n.commit_index())
    }

    /// Whether this node leads and holds a majority's lease at ``now``, so
    /// it may answer reads from its own state.
    fn has_read_lease(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<bool> {
        let now = ns_arg(now, "now")?;
        self.read(py, |n| n.has_read_lease(now))
    }

    /// Stops the node and releases its record file (and the file's lock)
    /// now rather than when the object is collected. Later calls raise
    /// ``InvalidArgumentError``; closing twice does nothing.
    fn close(&self, py: Python<'_>) {
        let node = lock(&self.node).take();
        // Dropping closes the file: no GIL needed.
        py.detach(move || drop(node));
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.node).is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let n = lock(&self.node);
        let Some(n) = n.as_ref() else {
            return format!("PaxosNode(id={}, closed)", self.config.id);
        };
        format!(
            "PaxosNode(id={}, members={:?}, leader={}, commit_index={})",
            self.config.id,
            self.config.members,
            n.leader()
                .map_or_else(|| "None".to_owned(), |l| l.to_string()),
            n.commit_index()
        )
    }
}

// ---------------------------------------------------------------- cluster

static VIOLATION: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `SimulationViolation(msg)` with the violation's fields as attributes.
fn violation_err(py: Python<'_>, v: Violation) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let ty = VIOLATION.get_or_try_init(py, || -> PyResult<_> {
            Ok(py
                .import("quorumkit._errors")?
                .getattr("SimulationViolation")?
                .cast_into::<PyType>()?
                .unbind())
        })?;
        let e = ty.bind(py).call1((v.to_string(),))?;
        e.setattr("kind", v.kind.to_string())?;
        e.setattr("seed", v.seed)?;
        e.setattr("time", secs(v.time))?;
        e.setattr("node", v.node)?;
        e.setattr("slot", v.slot)?;
        e.setattr("detail", v.detail)?;
        Ok(PyErr::from_value(e))
    };
    make().unwrap_or_else(|e| e)
}

fn sim<T>(py: Python<'_>, r: std::result::Result<T, Violation>) -> PyResult<T> {
    r.map_err(|v| violation_err(py, v))
}

/// A simulated Multi-Paxos cluster of ``n`` replicas (ids ``0..n``) on a
/// simulated clock and a faulty network (delay, ``loss``, ``duplicate``),
/// with crashes, restarts and partitions; the safety checkers (agreement,
/// validity, in-order delivery, lease exclusivity) watch every event. One
/// ``seed`` replays one run exactly. Times are simulated seconds.
#[pyclass(frozen, module = "quorumkit", name = "PaxosCluster")]
pub struct PaxosCluster {
    sim: Mutex<SimCluster>,
    seed: u64,
}

impl PaxosCluster {
    fn change(&self, py: Python<'_>, change: MembershipChange) -> PyResult<()> {
        guard(py, || lock(&self.sim).change_membership(change))
    }

    fn node_arg(&self, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<NodeId> {
        let i = node_id_arg(obj, what)?;
        let n = lock(&self.sim).len();
        if (i as usize) >= n {
            return Err(invalid(
                obj.py(),
                format!("{what}: no node {i} in a cluster of {n}"),
            ));
        }
        Ok(i)
    }
}

#[pymethods]
impl PaxosCluster {
    #[new]
    #[pyo3(
        signature = (n=None, *, seed=None, loss=None, duplicate=None, min_delay=None, max_delay=None, max_batch=None),
        text_signature = "(n=3, *, seed=0, loss=0.0, duplicate=0.0, min_delay=0.001, max_delay=0.005, max_batch=64)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        n: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        loss: Option<&Bound<'_, PyAny>>,
        duplicate: Option<&Bound<'_, PyAny>>,
        min_delay: Option<&Bound<'_, PyAny>>,
        max_delay: Option<&Bound<'_, PyAny>>,
        max_batch: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n = match n {
            Some(v) => count_arg(v, "n")?,
            None => 3,
        };
        let seed = match seed {
            Some(v) => int_in_range(v, "seed", 0, i64::MAX)? as u64,
            None => 0,
        };
        let mut c = SimConfig::new(n, seed);
        if let Some(v) = loss {
            c.net.loss_per_million = per_million_arg(v, "loss")?;
        }
        if let Some(v) = duplicate {
            c.net.duplicate_per_million = per_million_arg(v, "duplicate")?;
        }
        if let Some(v) = min_delay {
            c.net.min_delay = ns_arg(v, "min_delay")?;
        }
        if let Some(v) = max_delay {
            c.net.max_delay = ns_arg(v, "max_delay")?;
        }
        if let Some(v) = max_batch {
            c.node.max_batch = count_arg(v, "max_batch")?;
        }
        if c.net.min_delay > c.net.max_delay {
            return Err(invalid(py, "min_delay must not exceed max_delay"));
        }
        let sim = guard(py, || SimCluster::new(c))?;
        Ok(PaxosCluster {
            sim: Mutex::new(sim),
            seed,
        })
    }

    /// The seed this run follows.
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time, in seconds.
    #[getter]
    fn now(&self) -> f64 {
        secs(lock(&self.sim).now())
    }

    fn __len__(&self) -> usize {
        lock(&self.sim).len()
    }

    /// Proposes ``value`` (bytes, or str as UTF-8) at ``node``, or at a
    /// random running node; returns the node it went to. Values should be
    /// unique: the validity checker matches decided commands by content.
    #[pyo3(signature = (value, node=None))]
    fn propose(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        node: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<NodeId> {
        let cmd = command_arg(value)?;
        let target = match node {
            Some(n) if !n.is_none() => Some(self.node_arg(n, "node")?),
            _ => None,
        };
        guard(py, || lock(&self.sim).propose(target, cmd))
    }

    /// Runs for ``seconds`` of simulated time. ``SimulationViolation`` if a
    /// checker fails.
    fn run_for(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = ns_arg(seconds, "seconds")?;
        let r = py.detach(|| lock(&self.sim).run_for(d));
        sim(py, r)
    }

    /// Runs until ``predicate(cluster)`` is true (checked after every event)
    /// or ``timeout`` simulated seconds pass; returns whether it became
    /// true. Without a predicate, runs until the simulated time ``time``.
    #[pyo3(signature = (predicate=None, *, time=None, timeout=None))]
    fn run_until(
        slf: &Bound<'_, Self>,
        predicate: Option<&Bound<'_, PyAny>>,
        time: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let py = slf.py();
        let this = slf.get();
        let now = lock(&this.sim).now();
        let deadline = match (time, timeout) {
            (Some(t), None) => ns_arg(t, "time")?,
            (None, Some(t)) => now.saturating_add(ns_arg(t, "timeout")?),
            (None, None) => now.saturating_add(10_000_000_000),
            (Some(_), Some(_)) => return Err(invalid(py, "give time or timeout, not both")),
        };
        let Some(pred) = predicate.filter(|p| !p.is_none()) else {
            if time.is_none() {
                return Err(invalid(py, "run_until needs a predicate or a time"));
            }
            let r = py.detach(|| lock(&this.sim).run_until_time(deadline));
            sim(py, r)?;
            return Ok(true);
        };
        if !pred.is_callable() {
            return Err(type_error("predicate must be callable"));
        }
        loop {
            if pred.call1((slf,))?.is_truthy()? {
                return Ok(true);
            }
            let mut s = lock(&this.sim);
            match s.next_event_time() {
                Some(t) if t <= deadline => {
                    let r = s.step();
                    drop(s);
                    sim(py, r)?;
                }
                _ => {
                    let r = s.run_until_time(deadline);
                    drop(s);
                    sim(py, r)?;
                    return pred.call1((slf,))?.is_truthy();
                }
            }
        }
    }

    /// Runs until every running node delivered ``value`` or ``timeout``
    /// simulated seconds pass; returns whether it was.
    #[pyo3(signature = (value, *, timeout=None))]
    fn run_until_decided(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let cmd = command_arg(value)?;
        let within = match timeout {
            Some(t) => ns_arg(t, "timeout")?,
            None => 10_000_000_000,
        };
        let r = py.detach(|| {
            let mut s = lock(&self.sim);
            let deadline = s.now().saturating_add(within);
            s.run_until(deadline, |c| c.is_decided_on(&cmd, &c.live_members()))
        });
        sim(py, r)
    }

    /// Crashes node ``i``: it loses its volatile state and unsynced records
    /// (a crashed node does nothing until ``restart``).
    fn crash(&self, py: Python<'_>, i: &Bound<'_, PyAny>) -> PyResult<()> {
        let i = self.node_arg(i, "i")?;
        guard(py, || lock(&self.sim).crash(i))
    }

    /// Restarts node ``i`` from its storage (a retired node stays down).
    fn restart(&self, py: Python<'_>, i: &Bound<'_, PyAny>) -> PyResult<()> {
        let i = self.node_arg(i, "i")?;
        guard(py, || lock(&self.sim).restart(i))
    }

    /// Starts a new replica (the next id, returned) that joins the
    /// cluster, and proposes at the leader to add it as a learner: once the
    /// change is decided it catches up (by snapshot install if the log was
    /// compacted) and follows without a vote. ``NotLeaderError`` when no
    /// node leads; ``InvalidArgumentError`` while another change is under
    /// way (the new replica is then retired).
    fn add_learner(&self, py: Python<'_>) -> PyResult<NodeId> {
        guard(py, || lock(&self.sim).add_learner())
    }

    /// Hands the leadership from the current leader to voter ``i`` (see
    /// ``PaxosNode.transfer_leadership``). ``NotLeaderError`` when no node
    /// leads; ``InvalidArgumentError`` when ``i`` leads already, is not a
    /// voter, or a change or transfer is under way.
    fn transfer_leadership(&self, py: Python<'_>, i: &Bound<'_, PyAny>) -> PyResult<()> {
        let i = self.node_arg(i, "i")?;
        guard(py, || lock(&self.sim).transfer_leadership(i))
    }

    /// Proposes at the leader to make learner ``i`` a voter. Refused
    /// (``InvalidArgumentError``) unless ``i`` is a learner that answered
    /// the leader within an election timeout, or while another change is
    /// under way; ``NotLeaderError`` when no node leads.
    fn promote(&self, py: Python<'_>, i: &Bound<'_, PyAny>) -> PyResult<()> {
        let i = self.node_arg(i, "i")?;
        self.change(py, MembershipChange::Promote(i))
    }

    /// Proposes at the leader to remove voter or learner ``i``; once every
    /// new voter has the change, ``i`` is shut down for good (retired).
    /// Refused when it would leave one voter. Errors as ``promote``.
    fn remove(&self, py: Python<'_>, i: &Bound<'_, PyAny>) -> PyResult<()> {
        let i = self.node_arg(i, "i")?;
        self.change(py, MembershipChange::Remove(i))
    }

    /// Proposes at the leader to give voter ``old``'s vote to learner
    /// ``new`` in one change (replace a failed replica). Errors as
    /// ``promote``.
    fn replace(
        &self,
        py: Python<'_>,
        old: &Bound<'_, PyAny>,
        new: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let old = self.node_arg(old, "old")?;
        let new = self.node_arg(new, "new")?;
        self.change(py, MembershipChange::Replace { old, new })
    }

    /// The newest membership any node delivered, as ``(epoch, start,
    /// voters, learners)`` (epoch 0, ids ``0..n`` as voters, until a change).
    #[getter]
    fn membership(&self) -> (u64, u64, Vec<NodeId>, Vec<NodeId>) {
        let sim = lock(&self.sim);
        let m = sim.membership();
        (m.epoch, m.start, m.voters.clone(), m.learners.clone())
    }

    /// Whether node ``i`` was retired (removed, and shut down for good).
    fn is_retired(&self, i: &Bound<'_, PyAny>) -> PyResult<bool> {
        let i = self.node_arg(i, "i")?;
        Ok(lock(&self.sim).is_retired(i))
    }

    /// Splits the network into the given groups of node ids (e.g.
    /// ``partition([0], [1, 2])``) until ``heal()``.
    #[pyo3(signature = (*groups))]
    fn partition(&self, py: Python<'_>, groups: &Bound<'_, PyTuple>) -> PyResult<()> {
        let mut gs = Vec::new();
        for g in groups.iter() {
            if g.is_instance_of::<PyString>() || g.is_instance_of::<PyBytes>() {
                return Err(type_error("each group must be a sequence of node ids"));
            }
            let mut ids = Vec::new();
            for i in g.try_iter().map_err(|_| {
                type_error(format!(
                    "each group must be a sequence of node ids, not {}",
                    type_name(&g)
                ))
            })? {
                ids.push(self.node_arg(&i?, "node")?);
            }
            gs.push(ids);
        }
        guard(py, || lock(&self.sim).partition(&gs))
    }

    /// Reconnects every node.
    fn heal(&self) {
        lock(&self.sim).heal()
    }

    /// The leader (the running leader with the highest ballot), or ``None``.
    fn leader(&self) -> Option<NodeId> {
        lock(&self.sim).leader()
    }

    /// The cluster's state: ``{"time", "leader", "nodes": [{"id", "alive",
    /// "leader", "is_leader", "ballot", "commit_index", "decided"}, ...]}``.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = lock(&self.sim);
        let d = PyDict::new(py);
        d.set_item("time", secs(s.now()))?;
        d.set_item("leader", s.leader())?;
        let nodes = PyList::empty(py);
        for st in s.status() {
            let n = PyDict::new(py);
            n.set_item("id", st.id)?;
            n.set_item("alive", st.alive)?;
            n.set_item("leader", st.leader)?;
            n.set_item("is_leader", st.is_leader)?;
            n.set_item("ballot", st.ballot)?;
            n.set_item("commit_index", st.commit_index)?;
            n.set_item("decided", st.decided)?;
            nodes.append(n)?;
        }
        d.set_item("nodes", nodes)?;
        Ok(d)
    }

    /// The commands node ``i`` delivered, in order (no-op slots skipped);
    /// without ``i``, those of the node that delivered the most (every
    /// node's log is a prefix of it).
    #[pyo3(signature = (i=None))]
    fn decided<'py>(
        &self,
        py: Python<'py>,
        i: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let who = match i {
            Some(v) if !v.is_none() => Some(self.node_arg(v, "i")?),
            _ => None,
        };
        let s = lock(&self.sim);
        let who = who.unwrap_or_else(|| {
            s.status()
                .iter()
                .max_by_key(|st| (st.decided, std::cmp::Reverse(st.id)))
                .map_or(0, |st| st.id)
        });
        let log = s.decided(who);
        PyList::new(py, log.iter().flatten().map(|c| PyBytes::new(py, c)))
    }

    /// Raises ``SimulationViolation`` if any checker found a violation.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        let r = lock(&self.sim).check();
        sim(py, r)
    }

    /// Counters of the run so far, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let st = lock(&self.sim).stats();
        let d = PyDict::new(py);
        d.set_item("sent", st.net.sent)?;
        d.set_item("delivered", st.net.delivered)?;
        d.set_item("lost", st.net.lost)?;
        d.set_item("duplicated", st.net.duplicated)?;
        d.set_item("cut", st.net.cut)?;
        d.set_item("events", st.events)?;
        d.set_item("proposals", st.proposals)?;
        d.set_item("decisions", st.decisions)?;
        d.set_item("commands_decided", st.commands_decided)?;
        d.set_item("crashes", st.crashes)?;
        d.set_item("restarts", st.restarts)?;
        d.set_item("elections", st.elections)?;
        d.set_item("leader_changes", st.leader_changes)?;
        d.set_item("max_commit", st.max_commit)?;
        d.set_item("membership_changes", st.membership_changes)?;
        d.set_item("replicas_added", st.replicas_added)?;
        d.set_item("replicas_retired", st.replicas_retired)?;
        d.set_item("transfers", st.transfers)?;
        Ok(d)
    }

    /// A fingerprint of every event so far: equal seeds give equal digests.
    fn digest(&self) -> u64 {
        lock(&self.sim).digest()
    }

    fn __repr__(&self) -> String {
        let s = lock(&self.sim);
        format!(
            "PaxosCluster(n={}, seed={}, time={}, leader={})",
            s.len(),
            self.seed,
            secs(s.now()),
            s.leader()
                .map_or_else(|| "None".to_owned(), |l| l.to_string())
        )
    }
}
