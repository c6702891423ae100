//! The replica runtime: one `paxos::Node` driven over TCP, with its record
//! file, its peers, its clients and the user's state machine.
//!
//! Plain threads, not an async runtime: a replica has a handful of peer
//! links and a bounded number of clients, the node itself is one
//! single-threaded state machine, and threads keep the core free of an
//! executor that C and Python hosts would have to share. Threads:
//! - the *core* owns the node, the state machine and the session table.
//!   It blocks on one bounded event queue until an event arrives or the
//!   node's next deadline passes (no busy polling), handles every queued
//!   event, proposes the turn's commands together, sends the leader's
//!   `Accept`s, commits the record file once (group commit), then acts on
//!   the node's other outputs and writes each client's answers of the turn
//!   without blocking (a client that leaves 4 MiB of answers unread is
//!   disconnected);
//! - an *acceptor*, and a *reader* per inbound connection (handshake, then
//!   frames decoded into events; a bad frame closes that connection only);
//! - a *sender* per peer: one outbound connection, reconnected with
//!   backoff, fed by a bounded queue that drops when full (Paxos repeats
//!   what it needs).
//!
//! Backpressure: readers block when the event queue is full; proposals
//! beyond `max_pending` are answered `Busy`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::auth::{Identity, Role, handshake};
use super::frame::{DEFAULT_MAX_FRAME, push_frame, read_frame};
use super::group_commit::GroupCommit;
use super::proto::{
    AdminOp, ErrorCode, KIND_PAXOS, Request, Response, Status, decode_command, encode_command,
    encode_membership,
};
use super::sessions::{DEFAULT_MAX_SESSIONS, Sessions, Verdict};
use crate::error::{Error, Result};
use crate::paxos::{
    Config, FileIdentity, FileStorage, Membership, MembershipChange, Message, Node, NodeId, Output,
    wire,
};

/// A decided command as the state machine sees it.
#[derive(Debug, Clone, Copy)]
pub struct Applying<'a> {
    /// The client session that proposed it.
    pub client: u64,
    /// Its request id within the session.
    pub request: u64,
    /// Cluster time (nanoseconds) that the leader stamped on it: the same
    /// on every replica, never decreasing along the log, and advancing no
    /// faster than real time (see the module docs of `net`).
    pub time: u64,
    /// The command's bytes.
    pub command: &'a [u8],
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Its result, sent to the client at once.
    Done(Vec<u8>),
    /// Its result comes later, through [`StateMachine::take_completions`]
    /// (a lease request that waits in a queue).
    Deferred,
}

/// A deferred result, for the request `(client, request)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The session.
    pub client: u64,
    /// The request.
    pub request: u64,
    /// Its result.
    pub result: Vec<u8>,
}

/// The user's replicated state machine. Every replica applies the same
/// commands in the same order and must reach the same state: apply, advance
/// and completions must be deterministic functions of what they are given.
pub trait StateMachine: Send + 'static {
    /// Applies a decided command.
    fn apply(&mut self, command: &Applying<'_>) -> Applied;
    /// Moves the state's clock to `time` (a tick the leader proposed because
    /// [`next_deadline`](Self::next_deadline) passed).
    fn advance(&mut self, _time: u64) {}
    /// The cluster time at which time alone changes the state (a lease
    /// expiry), if any.
    fn next_deadline(&mut self) -> Option<u64> {
        None
    }
    /// Results of deferred commands that apply or advance just produced.
    fn take_completions(&mut self) -> Vec<Completion> {
        Vec::new()
    }
    /// Answers a read-only query from the current state (on the leader,
    /// under its read lease); `Err` refuses it with a message.
    fn query(&mut self, query: &[u8]) -> std::result::Result<Vec<u8>, String>;
    /// The whole state as bytes, for log compaction: the replica keeps
    /// this instead of the log before it. `None` (the default): no
    /// snapshot now (a machine that cannot be snapshotted keeps its whole
    /// log; the replica asks again at the next compaction point).
    /// Deterministic state only (every replica's must restore alike).
    fn snapshot(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// Replaces the state with `data`, which [`snapshot`](Self::snapshot)
    /// returned on this replica or another (a replica that fell behind a
    /// peer's compaction installs the peer's snapshot). `Err` stops the
    /// replica.
    fn restore(&mut self, _data: &[u8]) -> std::result::Result<(), String> {
        Err("this state machine cannot restore snapshots".into())
    }
}

/// How a leader answers reads linearizably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPolicy {
    /// From its state while it holds the leader lease (no message per
    /// read; safe while clocks drift apart by less than
    /// `max_clock_drift` over a lease).
    #[default]
    Lease,
    /// ReadIndex: a heartbeat round to a majority per turn of reads, then
    /// from its state once the commit index noted is applied (no clock
    /// assumption).
    ReadIndex,
}

/// The name of the record file in the data directory.
pub const LOG_FILE: &str = "paxos.log";

/// How a replica runs.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Paxos settings; `node.id` is this replica, `node.members` the ids of
    /// `peers`, `node.cluster_id` the cluster.
    pub node: Config,
    /// Every replica's address (this one's included): where peers connect
    /// and where clients are redirected. Replicas added later are made
    /// known with [`Replica::add_peer`].
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where to listen; `None`: this replica's entry in `peers`, which
    /// must then be a loopback address (listening beyond loopback is
    /// asked for explicitly).
    pub listen: Option<SocketAddr>,
    /// The data directory (holds [`LOG_FILE`]).
    pub data_dir: PathBuf,
    /// Create a new replica: the directory must hold no record file. A
    /// replica that lost its data must not silently rejoin as a voter that
    /// forgot its promises, so without `init` a missing file is an error.
    pub init: bool,
    /// This replica joins a running cluster ([`Node::join`]): with `init`
    /// it starts as no member, the other `peers` are the cluster's voters
    /// as the operator knows them, and it takes part once a leader adds it
    /// ([`Replica::change_membership`] with
    /// [`MembershipChange::AddLearner`]). Restart such a replica with
    /// `join` too (its log holds its membership).
    pub join: bool,
    /// The shared cluster secret (at least 16 bytes).
    pub secret: Vec<u8>,
    /// The largest frame accepted.
    pub max_frame: usize,
    /// Proposals waiting for their decision before new ones get `Busy`.
    pub max_pending: usize,
    /// Client sessions remembered for exactly-once retries.
    pub max_sessions: usize,
    /// Compact the log (snapshot the state machine, drop the slots before
    /// it) once this many slots were applied since the last snapshot (0:
    /// never by count). Only for machines that implement
    /// [`StateMachine::snapshot`].
    pub compact_every_slots: u64,
    /// Also compact once the commands applied since the last snapshot hold
    /// this many bytes (0: never by size).
    pub compact_every_bytes: u64,
    /// How the leader makes sure a read sees every write before it.
    pub read_policy: ReadPolicy,
    /// Log connection problems and leader changes to stderr.
    pub verbose: bool,
}

impl ReplicaConfig {
    /// Defaults for replica `id` of `peers`, storing in `data_dir`.
    pub fn new(
        id: NodeId,
        peers: BTreeMap<NodeId, SocketAddr>,
        data_dir: impl Into<PathBuf>,
        cluster_id: u64,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        let mut node = Config::new(id, peers.keys().copied().collect());
        node.cluster_id = cluster_id;
        node.seed = u64::from(id) ^ cluster_id;
        ReplicaConfig {
            node,
            peers,
            listen: None,
            data_dir: data_dir.into(),
            init: false,
            join: false,
            secret: secret.into(),
            max_frame: DEFAULT_MAX_FRAME,
            max_pending: 100_000,
            max_sessions: DEFAULT_MAX_SESSIONS,
            compact_every_slots: 10_000,
            compact_every_bytes: 64 << 20,
            read_policy: ReadPolicy::Lease,
            verbose: false,
        }
    }

    /// Sets the leader's heartbeat and scales the other timings with it:
    /// an election after 10 to 20 silent heartbeats, read leases of 10 (no
    /// longer than the shortest election wait, so a failover is not held
    /// up by the old leader's lease), and a clock-drift allowance of one.
    pub fn set_heartbeat(&mut self, interval: Duration) {
        let ns = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX / 20)
            .max(1);
        self.node.heartbeat_interval = ns;
        self.node.election_timeout = ns.saturating_mul(10);
        self.node.lease_duration = ns.saturating_mul(10);
        self.node.max_clock_drift = ns;
    }

    fn identity(&self) -> Identity {
        Identity {
            cluster_id: self.node.cluster_id,
            role: Role::Replica(self.node.id),
            secret: self.secret.clone(),
        }
    }
}

/// A running replica. Dropping it shuts it down.
pub struct Replica {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    events: SyncSender<Event>,
    core: Option<JoinHandle<Result<()>>>,
    acceptor: Option<JoinHandle<()>>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    status: Arc<Mutex<Status>>,
    /// The read policy the core applies to each read it takes next.
    read_index: Arc<AtomicBool>,
    /// The membership the core applied last.
    membership: Arc<Mutex<Membership>>,
}

/// How long an administrative call waits for the core.
const ADMIN_WAIT: Duration = Duration::from_secs(5);

enum Event {
    Peer(NodeId, Message),
    Client(Arc<ClientConn>, Request),
    /// An administrative call and where its outcome goes.
    Admin(AdminOp, SyncSender<Result<Vec<u8>>>),
    Stop,
}

/// The writing side of a client connection. Answers are not written as
/// they are made: the core gathers a turn's answers per connection and
/// writes each connection's at the end of the turn, without blocking (one
/// system call for many answers, and no writer thread to wake).
struct ClientConn {
    stream: TcpStream,
    outbox: Mutex<Outbox>,
    /// The replica's connections with answers to write (shared by all of
    /// them, drained by the core).
    ready: Arc<Mutex<Vec<Arc<ClientConn>>>>,
}

#[derive(Default)]
struct Outbox {
    /// Encoded answers not yet written.
    buf: Vec<u8>,
    /// Whether the connection is in `ready`.
    listed: bool,
    /// Closed after a write error or an overflow: answers are dropped.
    closed: bool,
}

/// A client that leaves this much of its answers unread is disconnected
/// (it does not read them, and the replica does not buffer without bound).
const MAX_UNREAD: usize = 4 << 20;

/// What writing a connection's answers did.
#[derive(PartialEq, Eq)]
enum Flushed {
    /// All written (or dropped: the connection is closed).
    Done,
    /// The socket is full; the rest waits for a later turn.
    Partly,
}

impl ClientConn {
    fn send(self: &Arc<Self>, resp: &Response) {
        let mut out = lock(&self.outbox);
        if out.closed {
            return;
        }
        let (kind, payload) = resp.encode();
        push_frame(&mut out.buf, kind, &payload);
        if !out.listed {
            out.listed = true;
            lock(&self.ready).push(self.clone());
        }
    }

    /// Writes what the socket takes now.
    fn flush(&self) -> Flushed {
        let mut out = lock(&self.outbox);
        out.listed = false;
        let mut written = 0;
        let result = loop {
            if written == out.buf.len() {
                break Flushed::Done;
            }
            match write_nowait(&self.stream, &out.buf[written..]) {
                Ok(0) => break self.close(&mut out),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Flushed::Partly,
                Err(_) => break self.close(&mut out),
            }
        };
        out.buf.drain(..written);
        if result == Flushed::Partly {
            if out.buf.len() > MAX_UNREAD {
                return self.close(&mut out);
            }
            out.listed = true;
        }
        result
    }

    fn close(&self, out: &mut Outbox) -> Flushed {
        out.closed = true;
        out.buf = Vec::new();
        let _ = self.stream.shutdown(Shutdown::Both);
        Flushed::Done
    }
}

/// A write that does not wait for room in the socket's buffer
/// (`WouldBlock` instead). The reader thread reads the same socket
/// blocking, so the socket itself stays in blocking mode and the flag is
/// per call.
#[cfg(unix)]
fn write_nowait(stream: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the pointer and length describe `data`, alive for the call.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Elsewhere: a blocking write (a client that stops reading holds up the
/// core until its socket's send timeout).
#[cfg(not(unix))]
fn write_nowait(mut stream: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
    stream.write(data)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Replica {
    /// Opens the record file, binds the listener and starts the threads.
    ///
    /// Errors: `InvalidArgument` (a bad config: this id not among the
    /// peers, a short secret, a non-loopback address without `listen`);
    /// `Storage` when the data directory holds no record file and `init`
    /// is false, or holds one and `init` is true; `StorageInUse` when
    /// another process runs this replica; the record file's errors; an I/O
    /// error binding the address.
    pub fn start(config: ReplicaConfig, machine: impl StateMachine) -> Result<Replica> {
        config.node.validate()?;
        config.identity().validate()?;
        let members: Vec<NodeId> = config.peers.keys().copied().collect();
        let mut node_config = config.node.clone();
        if config.join {
            // The cluster's voters as the operator knows them: the others.
            node_config.members.retain(|&m| m != config.node.id);
        }
        let mut sorted = node_config.members.clone();
        sorted.sort_unstable();
        let mut expected = members.clone();
        if config.join {
            expected.retain(|&m| m != config.node.id);
        }
        if sorted != expected {
            return Err(Error::invalid("net: node.members must be the ids of peers"));
        }
        let Some(&own) = config.peers.get(&config.node.id) else {
            return Err(Error::invalid(format!(
                "net: replica {} is not among the peers",
                config.node.id
            )));
        };
        let listen = match config.listen {
            Some(a) => a,
            None if own.ip().is_loopback() => own,
            None => {
                return Err(Error::invalid(format!(
                    "net: {own} is not a loopback address: set `listen` to listen beyond loopback"
                )));
            }
        };
        let path = config.data_dir.join(LOG_FILE);
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        if config.init && exists {
            return Err(Error::storage(format!(
                "{} already holds a replica: init would discard its promises",
                path.display()
            )));
        }
        if !config.init && !exists {
            return Err(Error::storage(format!(
                "{} holds no replica: start a new (or replaced) replica with init",
                path.display()
            )));
        }
        if config.init {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                Error::storage(format!("cannot create {}: {e}", config.data_dir.display()))
            })?;
        }
        let storage = FileStorage::open(
            &path,
            FileIdentity::new(config.node.cluster_id, config.node.id),
        )?;
        let clock = Instant::now();
        let node = if config.join {
            Node::join(node_config, GroupCommit::new(storage), 0)?
        } else {
            Node::new(node_config, GroupCommit::new(storage), 0)?
        };
        let membership = Arc::new(Mutex::new(node.membership().clone()));
        let listener = TcpListener::bind(listen)
            .map_err(|e| Error::storage(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::storage(e.to_string()))?;

        let stop = Arc::new(AtomicBool::new(false));
        let (events, rx) = sync_channel::<Event>(4096);
        let conns = Arc::new(Mutex::new(HashMap::new()));
        let status = Arc::new(Mutex::new(Status {
            id: config.node.id,
            leader: 0,
            ballot_round: 0,
            ballot_node: 0,
            commit_index: 0,
            applied: 0,
            read_lease: false,
        }));
        let identity = config.identity();
        let mut senders = HashMap::new();
        for (&peer, &peer_addr) in &config.peers {
            if peer == config.node.id {
                continue;
            }
            let queue = spawn_sender(peer, peer_addr, &identity, &stop, config.verbose)?;
            senders.insert(peer, queue);
        }
        let book = Arc::new(Mutex::new(config.peers.clone()));
        let ready = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, events, conns, identity, ready) = (
                stop.clone(),
                events.clone(),
                conns.clone(),
                identity.clone(),
                ready.clone(),
            );
            let book = book.clone();
            let (max_frame, verbose) = (config.max_frame, config.verbose);
            std::thread::Builder::new()
                .name("qk-accept".into())
                .spawn(move || {
                    accept(
                        listener, identity, book, events, ready, conns, stop, max_frame, verbose,
                    )
                })
                .map_err(|e| Error::storage(format!("cannot start a thread: {e}")))?
        };
        let read_index = Arc::new(AtomicBool::new(config.read_policy == ReadPolicy::ReadIndex));
        let core = Core {
            node,
            machine: Box::new(machine),
            sessions: Sessions::new(config.max_sessions),
            pending: HashMap::new(),
            proposals: Vec::new(),
            proposed: Vec::new(),
            reads: Vec::new(),
            index_reads: HashMap::new(),
            next_read_id: 0,
            read_index: read_index.clone(),
            membership: membership.clone(),
            book,
            identity: identity.clone(),
            stop: stop.clone(),
            held: Default::default(),
            ready,
            senders,
            peers: config.peers.clone(),
            clock,
            status: status.clone(),
            max_pending: config.max_pending,
            applied: 0,
            verbose: config.verbose,
            leader: None,
            anchor: (0, 0),
            tick_sent: None,
            next_tick_request: 1,
            applied_time: 0,
            next_slot: 0,
            since_snapshot: (0, 0),
            compact_every: (config.compact_every_slots, config.compact_every_bytes),
        };
        let core = std::thread::Builder::new()
            .name("qk-core".into())
            .spawn(move || core.run(rx))
            .map_err(|e| Error::storage(format!("cannot start a thread: {e}")))?;
        Ok(Replica {
            addr,
            stop,
            events,
            core: Some(core),
            acceptor: Some(acceptor),
            conns,
            status,
            read_index,
            membership,
        })
    }

    /// Makes replica `id` at `addr` known to this one: it connects to it
    /// and accepts its connections. Do this on every replica before a
    /// change adds `id` (a change naming a replica without an address is
    /// refused). Adding a known replica again at the same address does
    /// nothing; at another address it is refused.
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) -> Result<()> {
        self.admin(AdminOp::AddPeer { id, addr }).map(drop)
    }

    /// Proposes a membership change; only the leader takes it (else
    /// [`Error::NotLeader`]). `Ok` means the change was proposed; it is in
    /// force once [`membership`](Replica::membership) shows its epoch
    /// (every replica reports it when it applies the change). The refusals
    /// are [`Node::change_membership`]'s, and a change that adds a replica
    /// this one has no address for (see [`add_peer`](Replica::add_peer)).
    pub fn change_membership(&self, change: MembershipChange) -> Result<()> {
        self.admin(AdminOp::Change(change)).map(drop)
    }

    /// Hands the leadership to voter `to` (see
    /// [`Node::transfer_leadership`]); only the leader takes it.
    pub fn transfer_leadership(&self, to: NodeId) -> Result<()> {
        self.admin(AdminOp::Transfer { to }).map(drop)
    }

    /// The membership this replica applied last.
    pub fn membership(&self) -> Membership {
        lock(&self.membership).clone()
    }

    /// Runs `op` on the core's thread and waits (bounded) for its outcome.
    fn admin(&self, op: AdminOp) -> Result<Vec<u8>> {
        let (tx, rx) = sync_channel(1);
        let stopped = || Error::invalid("net: the replica was stopped");
        if self.is_stopped() {
            return Err(stopped());
        }
        self.events
            .send(Event::Admin(op, tx))
            .map_err(|_| stopped())?;
        match rx.recv_timeout(ADMIN_WAIT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(Error::BackendUnavailable(format!(
                "net: the replica did not answer within {ADMIN_WAIT:?}"
            ))),
            Err(RecvTimeoutError::Disconnected) => Err(stopped()),
        }
    }

    /// Changes how it answers reads, from the next read it takes on
    /// (reads already waiting finish under the policy they started with):
    /// for example to ReadIndex while clocks are suspect.
    pub fn set_read_policy(&self, policy: ReadPolicy) {
        self.read_index
            .store(policy == ReadPolicy::ReadIndex, Ordering::SeqCst);
    }

    /// How it answers reads now.
    pub fn read_policy(&self) -> ReadPolicy {
        if self.read_index.load(Ordering::SeqCst) {
            ReadPolicy::ReadIndex
        } else {
            ReadPolicy::Lease
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its status as of the core's last turn.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the core stopped (a storage failure); `shutdown` returns why.
    pub fn is_stopped(&self) -> bool {
        self.core.as_ref().is_none_or(|c| c.is_finished())
    }

    /// Stops every thread, closes every connection and releases the record
    /// file. Returns the core's error if it had stopped on one.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.events.try_send(Event::Stop);
        // Wake the acceptor, then close every connection so readers end.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for (_, s) in self.conns.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        match self.core.take() {
            Some(c) => c
                .join()
                .unwrap_or_else(|_| Err(Error::storage("net: the core thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.stop_threads();
    }
}

fn log(verbose: bool, msg: std::fmt::Arguments<'_>) {
    if verbose {
        eprintln!("quorumkit: {msg}");
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

#[allow(clippy::too_many_arguments)]
fn accept(
    listener: TcpListener,
    identity: Identity,
    book: Arc<Mutex<BTreeMap<NodeId, SocketAddr>>>,
    events: SyncSender<Event>,
    ready: Arc<Mutex<Vec<Arc<ClientConn>>>>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    stop: Arc<AtomicBool>,
    max_frame: usize,
    verbose: bool,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, clone);
        }
        let (identity, book, events, conns, ready) = (
            identity.clone(),
            book.clone(),
            events.clone(),
            conns.clone(),
            ready.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("qk-read".into())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = serve_conn(stream, &identity, &book, &events, &ready, max_frame) {
                    log(
                        verbose,
                        format_args!("connection from {peer:?} closed: {e}"),
                    );
                }
                conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            });
        if spawned.is_err() {
            log(
                verbose,
                format_args!("cannot start a reader thread; connection refused"),
            );
        }
    }
}

/// One inbound connection: the handshake, then frames until it closes.
fn serve_conn(
    mut stream: TcpStream,
    identity: &Identity,
    book: &Mutex<BTreeMap<NodeId, SocketAddr>>,
    events: &SyncSender<Event>,
    ready: &Arc<Mutex<Vec<Arc<ClientConn>>>>,
    max_frame: usize,
) -> Result<()> {
    let io = |e: std::io::Error| super::frame::io_error("socket", e);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    let role = handshake(&mut stream, identity)?;
    stream.set_read_timeout(None).map_err(io)?;
    match role {
        Role::Replica(from) => {
            if !lock(book).contains_key(&from) || Role::Replica(from) == identity.role {
                return Err(Error::invalid(format!(
                    "net: replica {from} is not a member of this cluster"
                )));
            }
            let mut r = std::io::BufReader::new(stream);
            while let Some((kind, payload)) = read_frame(&mut r, max_frame)? {
                if kind != KIND_PAXOS {
                    return Err(Error::corrupt(format!(
                        "net: frame kind {kind} on a replica link"
                    )));
                }
                let msg = wire::decode(&payload)?;
                if events.send(Event::Peer(from, msg)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
        Role::Client => {
            #[cfg(not(unix))]
            stream
                .set_write_timeout(Some(Duration::from_millis(100)))
                .map_err(io)?;
            let conn = Arc::new(ClientConn {
                stream: stream.try_clone().map_err(io)?,
                outbox: Mutex::new(Outbox::default()),
                ready: ready.clone(),
            });
            let mut r = std::io::BufReader::new(stream);
            while let Some((kind, payload)) = read_frame(&mut r, max_frame)? {
                let req = Request::decode(kind, &payload)?;
                if events.send(Event::Client(conn.clone(), req)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

/// The link to one peer: connect (with backoff), authenticate, write what
/// the core queues. Messages queued while the peer is unreachable are
/// dropped; the protocol repeats what matters.
/// Bytes of messages queued for one peer at most (flow control): a slow
/// or cut-off peer holds no more of this replica's memory. A message that
/// does not fit is dropped; accept retransmission, catch-up and snapshot
/// requests send again what the peer still needs.
const MAX_PEER_QUEUE_BYTES: usize = 64 << 20;

/// The queue of messages to one peer, bounded in messages and in bytes.
struct PeerQueue {
    tx: SyncSender<Vec<u8>>,
    /// Bytes queued and not yet taken by the peer's sender.
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl PeerQueue {
    fn new(max_bytes: usize) -> (PeerQueue, Receiver<Vec<u8>>) {
        let (tx, rx) = sync_channel::<Vec<u8>>(1024);
        let q = PeerQueue {
            tx,
            bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes,
        };
        (q, rx)
    }

    /// Queues `m` unless the queue is full (an empty queue takes any one
    /// message); false when it was dropped.
    fn offer(&self, m: Vec<u8>) -> bool {
        let n = m.len();
        let before = self.bytes.fetch_add(n, Ordering::SeqCst);
        if before > 0 && before + n > self.max_bytes {
            self.bytes.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        if self.tx.try_send(m).is_err() {
            self.bytes.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// Starts the thread that sends to `peer` at `addr` and returns its queue.
fn spawn_sender(
    peer: NodeId,
    addr: SocketAddr,
    identity: &Identity,
    stop: &Arc<AtomicBool>,
    verbose: bool,
) -> Result<PeerQueue> {
    let (queue, prx) = PeerQueue::new(MAX_PEER_QUEUE_BYTES);
    let bytes = queue.bytes.clone();
    let (stop, identity) = (stop.clone(), identity.clone());
    std::thread::Builder::new()
        .name(format!("qk-send-{peer}"))
        .spawn(move || sender(peer, addr, identity, prx, bytes, stop, verbose))
        .map_err(|e| Error::storage(format!("cannot start a thread: {e}")))?;
    Ok(queue)
}

fn sender(
    peer: NodeId,
    addr: SocketAddr,
    identity: Identity,
    rx: Receiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    verbose: bool,
) {
    let take = |m: Vec<u8>| {
        queued.fetch_sub(m.len(), Ordering::SeqCst);
        m
    };
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Duration::from_millis(20);
    let mut retry_at = Instant::now();
    let mut buf = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let first = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => take(m),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if conn.is_none() {
            if Instant::now() < retry_at {
                continue; // dropped: the peer is down and we wait to retry
            }
            match connect(addr, &identity) {
                Ok(s) => {
                    log(
                        verbose,
                        format_args!("connected to replica {peer} at {addr}"),
                    );
                    conn = Some(s);
                    backoff = Duration::from_millis(20);
                }
                Err(e) => {
                    log(verbose, format_args!("replica {peer} at {addr}: {e}"));
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        buf.clear();
        push_frame(&mut buf, KIND_PAXOS, &first);
        while let Ok(more) = rx.try_recv().map(take) {
            push_frame(&mut buf, KIND_PAXOS, &more);
            if buf.len() > 1 << 16 {
                break;
            }
        }
        if let Some(s) = conn.as_mut()
            && s.write_all(&buf).is_err()
        {
            conn = None; // reconnect on the next message
        }
    }
}

fn connect(addr: SocketAddr, identity: &Identity) -> Result<TcpStream> {
    let io = |e: std::io::Error| super::frame::io_error("connect", e);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(io)?;
    s.set_nodelay(true).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    handshake(&mut s, identity)?;
    Ok(s)
}

/// The answer to `r` from the machine's state.
fn query_response(machine: &mut Box<dyn StateMachine>, r: &PendingRead) -> Response {
    match machine.query(&r.query) {
        Ok(result) => Response::Ok {
            request: r.request,
            result,
        },
        Err(message) => Response::Error {
            request: r.request,
            code: ErrorCode::Rejected,
            message,
        },
    }
}

struct PendingRead {
    conn: Arc<ClientConn>,
    request: u64,
    query: Vec<u8>,
    until: u64,
}

struct Core {
    node: Node<GroupCommit<FileStorage>>,
    machine: Box<dyn StateMachine>,
    sessions: Sessions,
    pending: HashMap<(u64, u64), Arc<ClientConn>>,
    /// Commands accepted from clients this turn, proposed together at its
    /// end, and their (client, request) ids.
    proposals: Vec<crate::paxos::Command>,
    proposed: Vec<(u64, u64)>,
    reads: Vec<PendingRead>,
    /// Reads waiting for their ReadIndex, by id.
    index_reads: HashMap<u64, PendingRead>,
    next_read_id: u64,
    /// Shared with the [`Replica`] handle, which may change it any time.
    read_index: Arc<AtomicBool>,
    /// The membership applied last, published to the handle.
    membership: Arc<Mutex<Membership>>,
    /// Every replica's address known here, shared with the acceptor (which
    /// takes replica connections only from these).
    book: Arc<Mutex<BTreeMap<NodeId, SocketAddr>>>,
    /// For the senders of peers added later.
    identity: Identity,
    stop: Arc<AtomicBool>,
    /// Outputs taken from the node before the turn's fsync, to act on after it.
    held: std::collections::VecDeque<Output>,
    /// Connections with answers to write at the end of the turn.
    ready: Arc<Mutex<Vec<Arc<ClientConn>>>>,
    senders: HashMap<NodeId, PeerQueue>,
    peers: BTreeMap<NodeId, SocketAddr>,
    clock: Instant,
    status: Arc<Mutex<Status>>,
    max_pending: usize,
    applied: u64,
    verbose: bool,
    leader: Option<NodeId>,
    /// Cluster time: the largest `t + (now - seen)` over the stamped times
    /// `t` this replica applied at local time `seen`, as (t, seen).
    anchor: (u64, u64),
    /// A tick proposed and not yet applied (local time it was proposed).
    tick_sent: Option<u64>,
    next_tick_request: u64,
    /// The time of the last command applied (times never go back).
    applied_time: u64,
    /// The next slot to apply (every slot below it is in the state).
    next_slot: u64,
    /// Slots and command bytes applied since the last snapshot.
    since_snapshot: (u64, u64),
    /// When to compact: (slots, bytes) since the last snapshot, 0 = never.
    compact_every: (u64, u64),
}

/// The first byte of a runtime snapshot (its format).
const SNAPSHOT_FORMAT: u8 = 1;

/// How long a read waits on a leader for its lease before `Unavailable`.
const READ_WAIT_NS: u64 = 1_000_000_000;
/// A tick not applied within this long is proposed again.
const TICK_RESEND_NS: u64 = 500_000_000;
/// How soon a connection whose socket was full is written again.
const STALLED_RETRY_NS: u64 = 5_000_000;
/// Events handled before one group commit.
const MAX_BATCH: usize = 1024;

impl Core {
    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// This replica's estimate of cluster time.
    fn cluster_now(&self) -> u64 {
        let (t, seen) = self.anchor;
        t.saturating_add(self.now().saturating_sub(seen))
    }

    fn run(mut self, rx: Receiver<Event>) -> Result<()> {
        let result = self.turns(&rx);
        if let Err(e) = &result {
            eprintln!("quorumkit: replica {} stopped: {e}", self.node.id());
        }
        result
    }

    fn turns(&mut self, rx: &Receiver<Event>) -> Result<()> {
        loop {
            let now = self.now();
            // A connection whose socket was full is tried again soon.
            let most = if lock(&self.ready).is_empty() {
                100_000_000
            } else {
                STALLED_RETRY_NS
            };
            let wait = self.node.next_deadline().saturating_sub(now).min(most);
            let first = match rx.recv_timeout(Duration::from_nanos(wait)) {
                Ok(Event::Stop) => return Ok(()),
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            if let Some(ev) = first {
                self.handle(ev)?;
                for _ in 1..MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Event::Stop) => return Ok(()),
                        Ok(ev) => self.handle(ev)?,
                        Err(_) => break,
                    }
                }
            }
            self.propose_gathered()?;
            let now = self.now();
            if now >= self.node.next_deadline() {
                self.node.tick(now)?;
            }
            self.send_accepts_early();
            // One fsync for the whole batch, before anything it covers leaves.
            self.node.storage_mut().commit()?;
            self.act()?;
            self.maybe_compact()?;
            self.propose_tick()?;
            self.answer_reads();
            self.write_answers();
            self.publish();
        }
    }

    fn handle(&mut self, ev: Event) -> Result<()> {
        let now = self.now();
        match ev {
            Event::Peer(from, msg) => match self.node.step(from, msg, now) {
                Ok(()) => Ok(()),
                Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => Err(e),
                Err(e) => {
                    log(
                        self.verbose,
                        format_args!("message from replica {from} refused: {e}"),
                    );
                    Ok(())
                }
            },
            Event::Client(conn, req) => {
                self.request(conn, req, now)?;
                Ok(())
            }
            Event::Admin(op, reply) => {
                let result = self.admin(op, now);
                let fatal = match &result {
                    Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => Some(e.clone()),
                    _ => None,
                };
                let _ = reply.try_send(result);
                fatal.map_or(Ok(()), Err)
            }
            Event::Stop => Ok(()),
        }
    }

    /// An administrative request: its answer's bytes (empty but for
    /// `Membership`), or why it was refused.
    fn admin(&mut self, op: AdminOp, now: u64) -> Result<Vec<u8>> {
        match op {
            AdminOp::AddPeer { id, addr } => {
                if id == 0 {
                    return Err(Error::invalid("net: replica ids are numbers from 1"));
                }
                match self.peers.get(&id) {
                    Some(&known) if known == addr => return Ok(Vec::new()),
                    Some(&known) => {
                        return Err(Error::invalid(format!(
                            "net: replica {id} is already known at {known}, not {addr}"
                        )));
                    }
                    None => {}
                }
                if id != self.node.id() {
                    let queue = spawn_sender(id, addr, &self.identity, &self.stop, self.verbose)?;
                    self.senders.insert(id, queue);
                }
                self.peers.insert(id, addr);
                lock(&self.book).insert(id, addr);
                Ok(Vec::new())
            }
            AdminOp::Change(change) => {
                let added = match change {
                    MembershipChange::AddLearner(id) => Some(id),
                    MembershipChange::Replace { new, .. } => Some(new),
                    _ => None,
                };
                if let Some(id) = added.filter(|id| !self.peers.contains_key(id)) {
                    return Err(Error::invalid(format!(
                        "net: no address for replica {id}: add_peer it on every replica first"
                    )));
                }
                self.node.change_membership(change, now)?;
                Ok(Vec::new())
            }
            AdminOp::Transfer { to } => {
                self.node.transfer_leadership(to, now)?;
                Ok(Vec::new())
            }
            AdminOp::Membership => Ok(encode_membership(self.node.membership())),
        }
    }

    /// Proposes the turn's commands together (packed into as few slots as
    /// the node's batch size allows). A replica deposed during the turn
    /// redirects them instead.
    fn propose_gathered(&mut self) -> Result<()> {
        if self.proposals.is_empty() {
            return Ok(());
        }
        let commands = std::mem::take(&mut self.proposals);
        let ids = std::mem::take(&mut self.proposed);
        let outcome = if self.node.is_leader() {
            self.node.propose_all(commands, self.now())
        } else {
            Err(Error::NotLeader { leader: None })
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => Err(e),
            Err(_) => {
                for (client, request) in ids {
                    if let Some(conn) = self.pending.remove(&(client, request)) {
                        conn.send(&self.redirect(request));
                    }
                }
                Ok(())
            }
        }
    }

    fn redirect(&self, request: u64) -> Response {
        match self.node.leader() {
            Some(l) if l != self.node.id() => Response::Redirect {
                request,
                leader: l,
                addr: self
                    .peers
                    .get(&l)
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            },
            _ => Response::Error {
                request,
                code: ErrorCode::Unavailable,
                message: "no leader is known yet".into(),
            },
        }
    }

    fn request(&mut self, conn: Arc<ClientConn>, req: Request, now: u64) -> Result<()> {
        match req {
            Request::Status { request } => {
                let result = self.current_status(now).encode();
                conn.send(&Response::Ok { request, result });
            }
            Request::Admin { request, op } => match self.admin(op, now) {
                Ok(result) => conn.send(&Response::Ok { request, result }),
                Err(Error::NotLeader { .. }) => conn.send(&self.redirect(request)),
                Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => return Err(e),
                Err(e) => conn.send(&Response::Error {
                    request,
                    code: ErrorCode::Invalid,
                    message: e.to_string(),
                }),
            },
            Request::Propose {
                client,
                request,
                command,
            } => {
                if !self.node.is_leader() {
                    conn.send(&self.redirect(request));
                    return Ok(());
                }
                if let Verdict::Duplicate(r) = self.sessions.check(client, request) {
                    conn.send(&Response::Ok {
                        request,
                        result: r.to_vec(),
                    });
                    return Ok(());
                }
                if let Some(waiting) = self.pending.get_mut(&(client, request)) {
                    // A retry of a proposal still in flight: answer it here.
                    *waiting = conn;
                    return Ok(());
                }
                if self.pending.len() >= self.max_pending {
                    conn.send(&Response::Error {
                        request,
                        code: ErrorCode::Busy,
                        message: format!("{} proposals are pending", self.pending.len()),
                    });
                    return Ok(());
                }
                // Gathered for the end of the turn: one slot carries many.
                let time = self.cluster_now();
                self.proposals
                    .push(encode_command(client, request, time, &command));
                self.proposed.push((client, request));
                self.pending.insert((client, request), conn);
            }
            Request::Read { request, query } => {
                if !self.node.is_leader() {
                    conn.send(&self.redirect(request));
                    return Ok(());
                }
                let read = PendingRead {
                    conn,
                    request,
                    query,
                    until: now + READ_WAIT_NS,
                };
                if !self.read_index.load(Ordering::Relaxed) {
                    self.reads.push(read);
                    return Ok(());
                }
                let id = self.next_read_id;
                self.next_read_id += 1;
                match self.node.read_index(id, now) {
                    Ok(()) => {
                        self.index_reads.insert(id, read);
                    }
                    Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => return Err(e),
                    Err(_) => read.conn.send(&self.redirect(request)),
                }
            }
        }
        Ok(())
    }

    /// Sends the leader's `Accept` requests of this turn before the turn's
    /// fsync, so that the followers write and sync in parallel with the
    /// leader instead of after it. Safe because an `Accept` promises
    /// nothing, and the leader counts its own acceptance only when it
    /// handles the followers' answers, in a later turn, after this turn's
    /// fsync made its own records durable (the leader's parallel write of
    /// Raft, Ongaro's thesis 10.2.1). Every other output (answers that
    /// promise, decisions) still waits for the fsync, in order.
    fn send_accepts_early(&mut self) {
        let mut scratch = Vec::new();
        while let Some(out) = self.node.poll() {
            match out {
                Output::Send(env) if matches!(env.message, Message::Accept { .. }) => {
                    self.send_peer(&env.to, &env.message, &mut scratch);
                }
                other => self.held.push_back(other),
            }
        }
    }

    fn send_peer(&self, to: &NodeId, message: &Message, scratch: &mut Vec<u8>) {
        if let Some(q) = self.senders.get(to) {
            scratch.clear();
            wire::encode(message, scratch);
            q.offer(scratch.clone());
        }
    }

    fn act(&mut self) -> Result<()> {
        let mut scratch = Vec::new();
        let mut held = std::mem::take(&mut self.held);
        while let Some(out) = held.pop_front().or_else(|| self.node.poll()) {
            match out {
                Output::Send(env) => self.send_peer(&env.to, &env.message, &mut scratch),
                Output::ReadIndex { id, ready } => {
                    if let Some(r) = self.index_reads.remove(&id) {
                        let resp = if ready {
                            query_response(&mut self.machine, &r)
                        } else {
                            Response::Error {
                                request: r.request,
                                code: ErrorCode::Unavailable,
                                message: "leadership changed; retry".into(),
                            }
                        };
                        r.conn.send(&resp);
                    }
                }
                Output::Decided { slot, batch } => {
                    let bytes: usize = batch.iter().map(Vec::len).sum();
                    for cmd in batch {
                        self.apply(&cmd);
                    }
                    self.next_slot = slot + 1;
                    self.since_snapshot.0 += 1;
                    self.since_snapshot.1 += bytes as u64;
                }
                Output::Snapshot { slot, data } => {
                    self.restore(&data).map_err(|m| {
                        Error::corrupt(format!(
                            "replica {}: cannot restore the snapshot of slots below {slot}: {m}",
                            self.node.id()
                        ))
                    })?;
                    self.next_slot = slot;
                    self.since_snapshot = (0, 0);
                }
                Output::MembershipChanged(m) => {
                    *lock(&self.membership) = m.clone();
                    log(
                        self.verbose,
                        format_args!(
                            "replica {}: membership epoch {} from slot {}: voters {:?}, learners {:?}",
                            self.node.id(),
                            m.epoch,
                            m.start,
                            m.voters,
                            m.learners
                        ),
                    );
                }
                Output::LeaderChanged { leader, .. } => {
                    if leader != self.leader {
                        log(
                            self.verbose,
                            format_args!("replica {}: leader is now {leader:?}", self.node.id()),
                        );
                    }
                    let was_leader = self.leader == Some(self.node.id());
                    self.leader = leader;
                    if was_leader && leader != Some(self.node.id()) {
                        // Deposed: its proposals may or may not be decided.
                        // Clients retry with the same ids (applied once).
                        for ((_, request), conn) in self.pending.drain() {
                            conn.send(&Response::Error {
                                request,
                                code: ErrorCode::Unavailable,
                                message: "leadership changed; retry".into(),
                            });
                        }
                        for r in self.reads.drain(..) {
                            r.conn.send(&Response::Error {
                                request: r.request,
                                code: ErrorCode::Unavailable,
                                message: "leadership changed; retry".into(),
                            });
                        }
                    }
                }
                Output::Persisted { .. } => {}
            }
        }
        Ok(())
    }

    /// Compacts the log when the policy says so: the runtime's snapshot is
    /// its session table, its clocks and the machine's state.
    fn maybe_compact(&mut self) -> Result<()> {
        let (slots, bytes) = self.since_snapshot;
        let (every_slots, every_bytes) = self.compact_every;
        let due =
            (every_slots > 0 && slots >= every_slots) || (every_bytes > 0 && bytes >= every_bytes);
        if !due || self.next_slot <= self.node.log_start() {
            return Ok(());
        }
        let Some(state) = self.machine.snapshot() else {
            // Not now: ask again at the next compaction point.
            self.since_snapshot = (0, 0);
            return Ok(());
        };
        let mut data = Vec::with_capacity(state.len() + 64);
        data.push(SNAPSHOT_FORMAT);
        data.extend_from_slice(&self.applied.to_be_bytes());
        data.extend_from_slice(&self.applied_time.to_be_bytes());
        self.sessions.encode(&mut data);
        data.extend_from_slice(&state);
        let now = self.now();
        match self.node.compact(self.next_slot, data, now) {
            Ok(()) => {
                self.since_snapshot = (0, 0);
                Ok(())
            }
            Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => Err(e),
            // Not newer than an installed snapshot: nothing to do.
            Err(_) => Ok(()),
        }
    }

    /// Replaces the runtime's state with a snapshot's.
    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        let mut r = super::frame::Reader::new(data);
        let parsed = (|| {
            let format = r.u8()?;
            if format != SNAPSHOT_FORMAT {
                return Err(Error::corrupt(format!("snapshot format {format}")));
            }
            let applied = r.u64()?;
            let applied_time = r.u64()?;
            let sessions = Sessions::decode(&mut r)?;
            Ok((applied, applied_time, sessions))
        })();
        let (applied, applied_time, sessions) = parsed.map_err(|e| e.to_string())?;
        self.machine.restore(r.rest())?;
        self.sessions = sessions;
        self.applied = applied;
        if applied_time > self.cluster_now() {
            self.anchor = (applied_time, self.now());
        }
        self.applied_time = self.applied_time.max(applied_time);
        Ok(())
    }

    fn apply(&mut self, logged: &[u8]) {
        let Some(c) = decode_command(logged) else {
            return; // not a command of this runtime: nothing to apply
        };
        // Cluster time only moves forward, at most at real rate.
        let now = self.now();
        if c.time > self.cluster_now() {
            self.anchor = (c.time, now);
        }
        let time = c.time.max(self.applied_time);
        self.applied_time = time;
        if c.client == 0 {
            self.tick_sent = None;
            self.machine.advance(time);
        } else {
            let (client, request) = (c.client, c.request);
            let result = match self.sessions.check(client, request) {
                Verdict::Apply => {
                    let applying = Applying {
                        client,
                        request,
                        time,
                        command: c.command,
                    };
                    let r = match self.machine.apply(&applying) {
                        Applied::Done(r) => Some(r),
                        Applied::Deferred => None,
                    };
                    self.applied += 1;
                    self.sessions.record(client, request, r.clone());
                    r
                }
                Verdict::Duplicate(r) => Some(r.to_vec()),
                Verdict::Deferred | Verdict::Stale => None,
            };
            if let Some(result) = result
                && let Some(conn) = self.pending.remove(&(client, request))
            {
                conn.send(&Response::Ok { request, result });
            }
        }
        for done in self.machine.take_completions() {
            self.sessions
                .complete(done.client, done.request, done.result.clone());
            if let Some(conn) = self.pending.remove(&(done.client, done.request)) {
                conn.send(&Response::Ok {
                    request: done.request,
                    result: done.result,
                });
            }
        }
    }

    /// On the leader: when the state's next deadline has passed in cluster
    /// time, propose a tick (one at a time; re-sent if lost).
    fn propose_tick(&mut self) -> Result<()> {
        if !self.node.is_leader() {
            self.tick_sent = None;
            return Ok(());
        }
        let now = self.now();
        if self.tick_sent.is_some_and(|at| now < at + TICK_RESEND_NS) {
            return Ok(());
        }
        let time = self.cluster_now();
        match self.machine.next_deadline() {
            Some(d) if d <= time => {}
            _ => return Ok(()),
        }
        let request = self.next_tick_request;
        self.next_tick_request += 1;
        match self
            .node
            .propose(encode_command(0, request, time, &[]), now)
        {
            Ok(()) => self.tick_sent = Some(now),
            Err(e @ (Error::Storage(_) | Error::StorageCorrupt(_))) => return Err(e),
            Err(_) => {}
        }
        // The proposal's records are synced and its messages sent next turn;
        // make that turn come now.
        self.node.storage_mut().commit()?;
        self.act()
    }

    fn answer_reads(&mut self) {
        if self.reads.is_empty() {
            return;
        }
        let now = self.now();
        let lease = self.node.has_read_lease(now);
        let machine = &mut self.machine;
        self.reads.retain(|r| {
            if lease {
                r.conn.send(&query_response(machine, r));
                false
            } else if now >= r.until {
                r.conn.send(&Response::Error {
                    request: r.request,
                    code: ErrorCode::Unavailable,
                    message: "the leader holds no read lease".into(),
                });
                false
            } else {
                true
            }
        });
    }

    /// Writes the turn's answers, a connection at a time.
    fn write_answers(&mut self) {
        let ready = std::mem::take(&mut *lock(&self.ready));
        for conn in ready {
            if conn.flush() == Flushed::Partly {
                lock(&self.ready).push(conn);
            }
        }
    }

    fn current_status(&self, now: u64) -> Status {
        let b = self.node.ballot();
        Status {
            id: self.node.id(),
            leader: self.node.leader().unwrap_or(0),
            ballot_round: b.round,
            ballot_node: b.node,
            commit_index: self.node.commit_index(),
            applied: self.applied,
            read_lease: self.node.has_read_lease(now),
        }
    }

    fn publish(&self) {
        let s = self.current_status(self.now());
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_queue_holds_a_bounded_number_of_bytes() {
        let (q, rx) = PeerQueue::new(10 << 20);
        // Nobody takes: 1 MiB messages fit ten times, then are dropped.
        let taken: usize = (0..100)
            .map(|_| usize::from(q.offer(vec![0; 1 << 20])))
            .sum();
        assert_eq!(taken, 10);
        assert_eq!(q.bytes.load(Ordering::SeqCst), 10 << 20);
        // One larger than the bound still goes through an empty queue.
        let m = rx.try_recv().unwrap();
        q.bytes.fetch_sub(m.len(), Ordering::SeqCst);
        assert!(q.offer(vec![0; 1 << 20]));
        while let Ok(m) = rx.try_recv() {
            q.bytes.fetch_sub(m.len(), Ordering::SeqCst);
        }
        assert_eq!(q.bytes.load(Ordering::SeqCst), 0);
        assert!(q.offer(vec![0; 20 << 20]));
        assert!(!q.offer(vec![0; 1]));
        // Small messages: bounded by count as well.
        let (q, _rx) = PeerQueue::new(usize::MAX);
        let taken: usize = (0..2000).map(|_| usize::from(q.offer(vec![1]))).sum();
        assert_eq!(taken, 1024);
    }
}
