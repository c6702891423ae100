//! Two-phase commit and Paxos Commit: the Python face of
//! `quorumkit::txn` and `quorumkit::sim::txn`. The machines are sans-IO:
//! the caller carries message bytes between them and passes ``now`` (float
//! seconds of a monotonic clock); `CommitSimulation` runs whole
//! deployments in simulated time.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyString};
use quorumkit::sim::txn::{CommitSim, Protocol, SimConfig, random_run};
use quorumkit::txn::{Coordinator, MemoryTxnStorage, Output, Participant, TxnConfig, TxnId, wire};

use crate::args::{type_name, u32_arg};
use crate::errors::{guard, invalid, type_error};
use crate::lease::{seconds_arg, secs, to_ns};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A time or duration in seconds as nanoseconds.
fn ns(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    let s = seconds_arg(obj, what)?;
    to_ns(obj.py(), s, what)
}

/// A transaction id: an int in 0..2**64.
fn txn_arg(obj: &Bound<'_, PyAny>) -> PyResult<TxnId> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(type_error(format!(
            "txn must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<u64>()
        .map_err(|_| invalid(obj.py(), format!("txn must be in 0..2**64, got {obj}")))
}

fn seed_arg(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(type_error(format!(
            "seed must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<u64>()
        .map_err(|_| invalid(obj.py(), format!("seed must be in 0..2**64, got {obj}")))
}

fn bool_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<bool> {
    obj.cast::<PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| type_error(format!("{what} must be a bool, not {}", type_name(obj))))
}

fn ids_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u32>> {
    if obj.is_instance_of::<PyString>() {
        return Err(type_error(format!(
            "{what} must be a list of ints, not str"
        )));
    }
    obj.try_iter()
        .map_err(|_| {
            type_error(format!(
                "{what} must be a list of ints, not {}",
                type_name(obj)
            ))
        })?
        .map(|x| u32_arg(&x?, what))
        .collect()
}

fn message_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    Err(type_error(format!(
        "message must be bytes or bytearray, not {}",
        type_name(obj)
    )))
}

fn config(
    vote_timeout: Option<&Bound<'_, PyAny>>,
    retry_interval: Option<&Bound<'_, PyAny>>,
    cooperative: Option<&Bound<'_, PyAny>>,
) -> PyResult<TxnConfig> {
    let mut c = TxnConfig::default();
    if let Some(v) = vote_timeout {
        c.vote_timeout = ns(v, "vote_timeout")?;
    }
    if let Some(r) = retry_interval {
        c.retry_interval = ns(r, "retry_interval")?;
    }
    if let Some(b) = cooperative {
        c.cooperative = bool_arg(b, "cooperative")?;
    }
    Ok(c)
}

/// One thing a machine asks its caller to do: ``kind`` is ``"persisted"``
/// (``records`` were made durable), ``"send"`` (send ``message`` bytes to
/// process ``to``), ``"vote_requested"`` (vote on ``txn``) or
/// ``"outcome"`` (``txn`` is decided; ``commit`` says how).
#[pyclass(frozen, module = "quorumkit", name = "TxnOutput")]
pub struct TxnOutput {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    to: Option<u32>,
    #[pyo3(get)]
    txn: Option<u64>,
    #[pyo3(get)]
    records: Option<usize>,
    #[pyo3(get)]
    commit: Option<bool>,
    message: Option<Vec<u8>>,
}

#[pymethods]
impl TxnOutput {
    /// The encoded message of a ``"send"``, else None.
    #[getter]
    fn message<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.message.as_ref().map(|m| PyBytes::new(py, m))
    }

    fn __repr__(&self) -> String {
        match self.kind {
            "persisted" => format!(
                "TxnOutput(persisted, records={})",
                self.records.unwrap_or(0)
            ),
            "send" => format!(
                "TxnOutput(send, to={}, txn={}, {} bytes)",
                self.to.unwrap_or(0),
                self.txn.unwrap_or(0),
                self.message.as_ref().map_or(0, Vec::len)
            ),
            "vote_requested" => format!("TxnOutput(vote_requested, txn={})", self.txn.unwrap_or(0)),
            _ => format!(
                "TxnOutput(outcome, txn={}, commit={})",
                self.txn.unwrap_or(0),
                if self.commit == Some(true) {
                    "True"
                } else {
                    "False"
                }
            ),
        }
    }
}

fn to_py(o: Output) -> TxnOutput {
    let mut t = TxnOutput {
        kind: "persisted",
        to: None,
        txn: None,
        records: None,
        commit: None,
        message: None,
    };
    match o {
        Output::Persisted { records } => t.records = Some(records),
        Output::Send { to, message } => {
            t.kind = "send";
            t.to = Some(to);
            t.txn = Some(message.txn());
            t.message = Some(wire::encode(&message));
        }
        Output::VoteRequested { txn } => {
            t.kind = "vote_requested";
            t.txn = Some(txn);
        }
        Output::Outcome { txn, commit } => {
            t.kind = "outcome";
            t.txn = Some(txn);
            t.commit = Some(commit);
        }
    }
    t
}

struct CoordState {
    id: u32,
    config: TxnConfig,
    machine: Coordinator<MemoryTxnStorage>,
}

/// A two-phase commit coordinator (sans-IO). ``begin`` a transaction,
/// feed it the participants' messages with ``step``, call ``tick`` as time
/// passes, and carry out what ``poll`` returns. Its records are kept in
/// memory; ``restart`` recovers from them as after a crash.
#[pyclass(frozen, module = "quorumkit", name = "TwoPhaseCommitCoordinator")]
pub struct TwoPhaseCommitCoordinator(Mutex<CoordState>);

#[pymethods]
impl TwoPhaseCommitCoordinator {
    #[new]
    #[pyo3(
        signature = (id, *, vote_timeout=None, retry_interval=None, now=None),
        text_signature = "(id, *, vote_timeout=1.0, retry_interval=0.1, now=0.0)"
    )]
    fn new(
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        vote_timeout: Option<&Bound<'_, PyAny>>,
        retry_interval: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let id = u32_arg(id, "id")?;
        let config = config(vote_timeout, retry_interval, None)?;
        let now = now.map(|n| ns(n, "now")).transpose()?.unwrap_or(0);
        let machine = guard(py, || {
            Coordinator::new(id, config, MemoryTxnStorage::new(), now)
        })?;
        Ok(Self(Mutex::new(CoordState {
            id,
            config,
            machine,
        })))
    }

    /// This coordinator's process id.
    #[getter]
    fn id(&self) -> u32 {
        lock(&self.0).id
    }

    /// Begins ``txn`` among ``participants`` (distinct process ids, not this
    /// one): records it and queues a Prepare to each.
    fn begin(
        &self,
        py: Python<'_>,
        txn: &Bound<'_, PyAny>,
        participants: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let txn = txn_arg(txn)?;
        let ps = ids_arg(participants, "participants")?;
        let now = ns(now, "now")?;
        guard(py, || lock(&self.0).machine.begin(txn, ps, now))
    }

    /// Hands it the encoded ``message`` from process ``sender``.
    /// ``CorruptSnapshotError`` for bytes that are not a message.
    fn step(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let from = u32_arg(sender, "sender")?;
        let bytes = message_arg(message)?;
        let now = ns(now, "now")?;
        guard(py, || {
            let m = wire::decode(&bytes)?;
            lock(&self.0).machine.step(from, m, now)
        })
    }

    /// Advances time: aborts transactions past their vote timeout.
    fn tick(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = ns(now, "now")?;
        guard(py, || lock(&self.0).machine.tick(now))
    }

    /// Takes every queued output, in order.
    fn poll(&self) -> Vec<TxnOutput> {
        let mut s = lock(&self.0);
        std::iter::from_fn(|| s.machine.poll()).map(to_py).collect()
    }

    /// True (commit), False (abort) or None (votes awaited).
    /// ``InvalidArgumentError`` for a transaction it does not know.
    fn decision(&self, py: Python<'_>, txn: &Bound<'_, PyAny>) -> PyResult<Option<bool>> {
        let txn = txn_arg(txn)?;
        guard(py, || lock(&self.0).machine.decision(txn))
    }

    /// When ``tick`` next has work, in seconds, or None.
    fn next_deadline(&self) -> Option<f64> {
        lock(&self.0).machine.next_deadline().map(secs)
    }

    /// Crashes and restarts it from its records at ``now``: undecided
    /// transactions abort, decisions survive, queued outputs are lost.
    fn restart(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = ns(now, "now")?;
        let mut s = lock(&self.0);
        let (id, config) = (s.id, s.config);
        let placeholder = guard(py, || {
            Coordinator::new(id, config, MemoryTxnStorage::new(), 0)
        })?;
        let mut disk = std::mem::replace(&mut s.machine, placeholder).into_storage();
        disk.crash();
        s.machine = guard(py, || Coordinator::new(id, config, disk, now))?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("TwoPhaseCommitCoordinator(id={})", lock(&self.0).id)
    }
}

struct PartState {
    id: u32,
    config: TxnConfig,
    machine: Participant<MemoryTxnStorage>,
}

/// A two-phase commit participant (sans-IO). On a ``"vote_requested"``
/// output, call ``vote``; a yes vote leaves it in doubt (``state`` is
/// ``"prepared"``) until it learns the outcome — from the coordinator or,
/// with ``cooperative=True``, from a peer.
#[pyclass(frozen, module = "quorumkit", name = "TwoPhaseCommitParticipant")]
pub struct TwoPhaseCommitParticipant(Mutex<PartState>);

#[pymethods]
impl TwoPhaseCommitParticipant {
    #[new]
    #[pyo3(
        signature = (id, *, vote_timeout=None, retry_interval=None, cooperative=None, now=None),
        text_signature = "(id, *, vote_timeout=1.0, retry_interval=0.1, cooperative=True, now=0.0)"
    )]
    fn new(
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        vote_timeout: Option<&Bound<'_, PyAny>>,
        retry_interval: Option<&Bound<'_, PyAny>>,
        cooperative: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let id = u32_arg(id, "id")?;
        let config = config(vote_timeout, retry_interval, cooperative)?;
        let now = now.map(|n| ns(n, "now")).transpose()?.unwrap_or(0);
        let machine = guard(py, || {
            Participant::new(id, config, MemoryTxnStorage::new(), now)
        })?;
        Ok(Self(Mutex::new(PartState {
            id,
            config,
            machine,
        })))
    }

    /// This participant's process id.
    #[getter]
    fn id(&self) -> u32 {
        lock(&self.0).id
    }

    /// Hands it the encoded ``message`` from process ``sender``.
    fn step(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let from = u32_arg(sender, "sender")?;
        let bytes = message_arg(message)?;
        let now = ns(now, "now")?;
        guard(py, || {
            let m = wire::decode(&bytes)?;
            lock(&self.0).machine.step(from, m, now)
        })
    }

    /// Votes on ``txn`` (which must be awaiting a vote).
    fn vote(
        &self,
        py: Python<'_>,
        txn: &Bound<'_, PyAny>,
        yes: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let txn = txn_arg(txn)?;
        let yes = bool_arg(yes, "yes")?;
        let now = ns(now, "now")?;
        guard(py, || lock(&self.0).machine.vote(txn, yes, now))
    }

    /// Advances time: transactions in doubt ask for their outcome.
    fn tick(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = ns(now, "now")?;
        guard(py, || lock(&self.0).machine.tick(now))
    }

    /// Takes every queued output, in order.
    fn poll(&self) -> Vec<TxnOutput> {
        let mut s = lock(&self.0);
        std::iter::from_fn(|| s.machine.poll()).map(to_py).collect()
    }

    /// ``"unknown"``, ``"awaiting_vote"``, ``"prepared"``, ``"committed"``
    /// or ``"aborted"``.
    fn state(&self, txn: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let txn = txn_arg(txn)?;
        Ok(lock(&self.0).machine.state(txn).name())
    }

    /// Transactions it voted yes on without knowing the outcome.
    fn in_doubt(&self) -> Vec<u64> {
        lock(&self.0).machine.in_doubt()
    }

    /// When ``tick`` next has work, in seconds, or None.
    fn next_deadline(&self) -> Option<f64> {
        lock(&self.0).machine.next_deadline().map(secs)
    }

    /// Crashes and restarts it from its records at ``now``.
    fn restart(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = ns(now, "now")?;
        let mut s = lock(&self.0);
        let (id, config) = (s.id, s.config);
        let placeholder = guard(py, || {
            Participant::new(id, config, MemoryTxnStorage::new(), 0)
        })?;
        let mut disk = std::mem::replace(&mut s.machine, placeholder).into_storage();
        disk.crash();
        s.machine = guard(py, || Participant::new(id, config, disk, now))?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        let s = lock(&self.0);
        format!(
            "TwoPhaseCommitParticipant(id={}, in_doubt={:?})",
            s.id,
            s.machine.in_doubt()
        )
    }
}

fn protocol_arg(py: Python<'_>, name: &str, f: usize) -> PyResult<Protocol> {
    match name {
        "2pc" => Ok(Protocol::TwoPhaseCommit),
        "paxos-commit" => Ok(Protocol::PaxosCommit { f }),
        other => Err(invalid(
            py,
            format!("protocol must be \"2pc\" or \"paxos-commit\", got {other:?}"),
        )),
    }
}

/// A deterministic in-process simulation of one coordinator (process 0),
/// ``participants`` participants (1..n) and, for ``"paxos-commit"``,
/// 2``f``+1 acceptors, on a simulated network (1–5 ms delays) driven by
/// ``seed``. Times are simulated seconds.
#[pyclass(frozen, module = "quorumkit", name = "CommitSimulation")]
pub struct CommitSimulation(Mutex<CommitSim>);

#[pymethods]
impl CommitSimulation {
    #[new]
    #[pyo3(
        signature = (protocol=None, *, participants=None, f=None, seed=None),
        text_signature = "(protocol='2pc', *, participants=3, f=1, seed=0)"
    )]
    fn new(
        py: Python<'_>,
        protocol: Option<&Bound<'_, PyAny>>,
        participants: Option<&Bound<'_, PyAny>>,
        f: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let name = match protocol {
            None => "2pc".to_owned(),
            Some(p) => p
                .cast::<PyString>()
                .map_err(|_| type_error(format!("protocol must be a str, not {}", type_name(p))))?
                .to_string(),
        };
        let n = participants
            .map(|p| u32_arg(p, "participants"))
            .transpose()?
            .unwrap_or(3) as usize;
        let f = f.map(|x| u32_arg(x, "f")).transpose()?.unwrap_or(1) as usize;
        let seed = seed.map(seed_arg).transpose()?.unwrap_or(0);
        let p = protocol_arg(py, &name, f)?;
        let sim = guard(py, || CommitSim::new(SimConfig::new(p, n), seed))?;
        Ok(Self(Mutex::new(sim)))
    }

    /// ``"2pc"`` or ``"paxos-commit"``.
    #[getter]
    fn protocol(&self) -> &'static str {
        lock(&self.0).config().protocol.name()
    }

    /// The coordinator's process id (0).
    #[getter]
    fn coordinator(&self) -> u32 {
        lock(&self.0).coordinator()
    }

    /// The participants' process ids.
    #[getter]
    fn participants(&self) -> Vec<u32> {
        lock(&self.0).participants()
    }

    /// The acceptors' process ids (empty for 2PC).
    #[getter]
    fn acceptors(&self) -> Vec<u32> {
        lock(&self.0).acceptors()
    }

    /// Simulated seconds since the start.
    #[getter]
    fn now(&self) -> f64 {
        secs(lock(&self.0).now())
    }

    /// Begins ``txn``; participant i votes ``votes[i]`` when asked (all yes
    /// by default). ``InvalidArgumentError`` if the coordinator is down,
    /// the id is in use, or the number of votes is wrong.
    #[pyo3(signature = (txn, votes=None))]
    fn begin(
        &self,
        py: Python<'_>,
        txn: &Bound<'_, PyAny>,
        votes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let txn = txn_arg(txn)?;
        let mut s = lock(&self.0);
        let votes: Vec<bool> = match votes {
            None => vec![true; s.participants().len()],
            Some(v) => v
                .try_iter()
                .map_err(|_| type_error("votes must be a list of bools"))?
                .map(|x| bool_arg(&x?, "votes"))
                .collect::<PyResult<_>>()?,
        };
        guard(py, || s.begin(txn, &votes))
    }

    /// Crashes process ``id`` (its durable records survive).
    fn crash(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = u32_arg(id, "id")?;
        guard(py, || lock(&self.0).crash(id))
    }

    /// Restarts crashed process ``id`` from its records.
    fn restart(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = u32_arg(id, "id")?;
        guard(py, || lock(&self.0).restart(id))
    }

    /// Whether process ``id`` is running.
    fn is_up(&self, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(lock(&self.0).is_up(u32_arg(id, "id")?))
    }

    /// Crash the coordinator for good the moment every participant of a
    /// transaction has voted yes.
    #[pyo3(signature = (on=None), text_signature = "(self, on=True)")]
    fn crash_coordinator_after_votes(&self, on: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let on = on.map(|o| bool_arg(o, "on")).transpose()?.unwrap_or(true);
        lock(&self.0).crash_coordinator_after_votes(on);
        Ok(())
    }

    /// Runs ``seconds`` of simulated time (the GIL is released).
    fn run(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = ns(seconds, "seconds")?;
        py.detach(|| lock(&self.0).run_for(d));
        Ok(())
    }

    /// Where participant ``id`` stands on ``txn`` (``"unknown"`` while it
    /// is down).
    fn state(&self, id: &Bound<'_, PyAny>, txn: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let id = u32_arg(id, "id")?;
        let txn = txn_arg(txn)?;
        Ok(lock(&self.0).state(id, txn).name())
    }

    /// The outcome process ``id`` reported for ``txn``: True, False or None.
    fn outcome(&self, id: &Bound<'_, PyAny>, txn: &Bound<'_, PyAny>) -> PyResult<Option<bool>> {
        let id = u32_arg(id, "id")?;
        let txn = txn_arg(txn)?;
        Ok(lock(&self.0).outcome(id, txn))
    }

    /// Participants that voted yes on ``txn`` and do not know its outcome.
    fn in_doubt(&self, txn: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let txn = txn_arg(txn)?;
        Ok(lock(&self.0).in_doubt(txn))
    }

    /// The first safety violation (atomicity, validity, agreement) as a
    /// string, or None.
    #[getter]
    fn violation(&self) -> Option<String> {
        lock(&self.0).check().err().map(|v| v.to_string())
    }

    /// Faults injected and transactions decided, as a dict.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = lock(&self.0);
        let st = s.stats();
        let (committed, aborted) = s.tally();
        let d = PyDict::new(py);
        d.set_item("crashes", st.crashes)?;
        d.set_item("restarts", st.restarts)?;
        d.set_item("begun", st.begun)?;
        d.set_item("committed", committed)?;
        d.set_item("aborted", aborted)?;
        d.set_item("sent", st.net.sent)?;
        d.set_item("delivered", st.net.delivered)?;
        d.set_item("lost", st.net.lost + st.to_crashed)?;
        d.set_item("duplicated", st.net.duplicated)?;
        Ok(d)
    }

    /// One random run (random participants, votes, loss, duplication,
    /// crashes and restarts, then a quiet phase) from ``seed``, checked
    /// for atomicity, validity, agreement and termination. Returns a dict
    /// with the counts and ``violation`` (None when every check held).
    #[staticmethod]
    #[pyo3(signature = (protocol, seed, *, f=None), text_signature = "(protocol, seed, *, f=1)")]
    fn random_run<'py>(
        py: Python<'py>,
        protocol: &Bound<'py, PyAny>,
        seed: &Bound<'py, PyAny>,
        f: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name: String = protocol
            .cast::<PyString>()
            .map_err(|_| {
                type_error(format!(
                    "protocol must be a str, not {}",
                    type_name(protocol)
                ))
            })?
            .to_string();
        let f = f.map(|x| u32_arg(x, "f")).transpose()?.unwrap_or(1) as usize;
        if f > 3 {
            return Err(invalid(py, "f must be in 0..=3"));
        }
        let p = protocol_arg(py, &name, f)?;
        let seed = seed_arg(seed)?;
        let r = py.detach(|| random_run(p, seed));
        let d = PyDict::new(py);
        d.set_item("seed", r.seed)?;
        d.set_item("protocol", r.protocol.name())?;
        d.set_item("participants", r.participants)?;
        d.set_item("committed", r.committed)?;
        d.set_item("aborted", r.aborted)?;
        d.set_item("crashes", r.stats.crashes)?;
        d.set_item("sent", r.stats.net.sent)?;
        d.set_item("lost", r.stats.net.lost + r.stats.to_crashed)?;
        d.set_item("duplicated", r.stats.net.duplicated)?;
        d.set_item("violation", r.violation.map(|v| v.to_string()))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = lock(&self.0);
        format!(
            "CommitSimulation(protocol={:?}, participants={}, acceptors={}, now={})",
            s.config().protocol.name(),
            s.participants().len(),
            s.acceptors().len(),
            secs(s.now())
        )
    }
}
