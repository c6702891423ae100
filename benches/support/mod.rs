//! A three-replica Multi-Paxos cluster in one process, shared by the
//! Paxos benchmarks: a FIFO network, a frozen clock, and the benchmark
//! thread's CPU time to measure it with.

// Each bench that includes this module uses a part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Duration;

use quorumkit::paxos::{
    Config, FileIdentity, FileStorage, MemoryStorage, Message, Node, NodeId, Output, Storage, wire,
};

pub const MEMBERS: [NodeId; 3] = [0, 1, 2];

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Linux's `CLOCK_THREAD_CPUTIME_ID`.
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// Linux's `CLOCK_PROCESS_CPUTIME_ID`.
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;

fn cpu_clock(clock: i32) -> Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a writable timespec.
    let rc = unsafe { clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({clock})");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The calling thread's CPU time.
pub fn thread_cpu() -> Duration {
    cpu_clock(CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time of every thread of the process (a background compaction's
/// included).
pub fn process_cpu() -> Duration {
    cpu_clock(CLOCK_PROCESS_CPUTIME_ID)
}

/// What travels between replicas: bytes (the wire format) or values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Bytes,
    Values,
}

pub enum Packet {
    Bytes(Vec<u8>),
    Value(Message),
}

/// Three replicas, a FIFO network, a frozen clock (no timers fire while
/// measuring: the leader is stable).
pub struct Cluster<S: Storage = MemoryStorage> {
    nodes: Vec<Node<S>>,
    queue: VecDeque<(NodeId, NodeId, Packet)>,
    transport: Transport,
    now: u64,
    /// Commands delivered at the leader.
    delivered: u64,
    /// Slots delivered at the leader.
    slots: u64,
    leader: NodeId,
    /// Each node compacts its log once it holds this many delivered slots
    /// (0: never), with a snapshot of `snapshot_bytes` (4 KiB unless set).
    compact_every: u64,
    snapshot_bytes: usize,
    /// Slots delivered per node.
    node_slots: Vec<u64>,
}

impl Cluster {
    pub fn new(max_batch: usize, max_inflight: usize, transport: Transport) -> Self {
        Self::with_storage(max_batch, max_inflight, transport, 0, |_| {
            MemoryStorage::new()
        })
    }

    /// The same cluster, each node compacting every `every` slots.
    pub fn compacting(max_batch: usize, max_inflight: usize, every: u64) -> Self {
        let mut c = Self::new(max_batch, max_inflight, Transport::Bytes);
        c.compact_every = every;
        c
    }
}

/// The cluster id of the benches' record files.
const FILE_CLUSTER: u64 = 42;

impl Cluster<FileStorage> {
    /// Unbatched (64 slots in flight), each node on a new record file in
    /// `dir`, compacting every `every` slots (0: never) with a snapshot of
    /// `snapshot_bytes`; the node's own compactions are written in the
    /// background as a replica's are.
    pub fn on_files(dir: &std::path::Path, every: u64, snapshot_bytes: usize) -> Self {
        let mut c = Self::with_storage(1, 64, Transport::Bytes, FILE_CLUSTER, |id| {
            // A new log: the last run's log file and segments go first.
            let dir = dir.join(format!("replica-{id}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("bench directory");
            let path = dir.join("replica.qkpx");
            FileStorage::open(&path, FileIdentity::new(FILE_CLUSTER, id)).expect("record file")
        });
        c.compact_every = every;
        c.snapshot_bytes = snapshot_bytes;
        c
    }
}

impl<S: Storage> Cluster<S> {
    fn with_storage(
        max_batch: usize,
        max_inflight: usize,
        transport: Transport,
        cluster_id: u64,
        mut storage: impl FnMut(NodeId) -> S,
    ) -> Self {
        let nodes = MEMBERS
            .iter()
            .map(|&id| {
                let mut c = Config::new(id, MEMBERS.to_vec());
                c.max_batch = max_batch;
                c.max_inflight = max_inflight;
                c.seed = 7 + u64::from(id);
                c.cluster_id = cluster_id;
                Node::new(c, storage(id), 0).expect("node")
            })
            .collect();
        let mut c = Cluster {
            nodes,
            queue: VecDeque::new(),
            transport,
            now: 0,
            delivered: 0,
            slots: 0,
            leader: 0,
            compact_every: 0,
            snapshot_bytes: 4096,
            node_slots: vec![0; MEMBERS.len()],
        };
        c.elect();
        c
    }

    /// Moves time until a leader is elected and known to all.
    fn elect(&mut self) {
        for _ in 0..10_000 {
            self.pump();
            let leaders: Vec<NodeId> = MEMBERS
                .iter()
                .copied()
                .filter(|&i| self.nodes[i as usize].is_leader())
                .collect();
            if let [l] = leaders[..]
                && self.nodes.iter().all(|n| n.leader() == Some(l))
            {
                self.leader = l;
                self.delivered = 0;
                self.slots = 0;
                return;
            }
            let next = self.nodes.iter().map(|n| n.next_deadline()).min().unwrap();
            self.now = self.now.max(next);
            for i in 0..self.nodes.len() {
                if self.nodes[i].next_deadline() <= self.now {
                    self.nodes[i].tick(self.now).unwrap();
                    self.drain(i as NodeId);
                }
            }
        }
        panic!("no leader elected");
    }

    fn drain(&mut self, i: NodeId) {
        while let Some(o) = self.nodes[i as usize].poll() {
            match o {
                Output::Send(env) => {
                    let p = match self.transport {
                        Transport::Bytes => {
                            let mut buf = Vec::with_capacity(64);
                            wire::encode(&env.message, &mut buf);
                            Packet::Bytes(buf)
                        }
                        Transport::Values => Packet::Value(env.message),
                    };
                    self.queue.push_back((i, env.to, p));
                }
                Output::Decided { batch, .. } => {
                    self.node_slots[i as usize] += 1;
                    if i == self.leader {
                        self.delivered += batch.len() as u64;
                        self.slots += 1;
                    }
                }
                _ => {}
            }
        }
        let n = &self.nodes[i as usize];
        let every = self.compact_every;
        if every > 0 && n.log_len() >= every {
            let upto = self.node_slots[i as usize];
            if upto > n.log_start() && upto <= n.commit_index() {
                let state = vec![(upto % 251) as u8; self.snapshot_bytes];
                self.nodes[i as usize]
                    .compact(upto, state, self.now)
                    .unwrap();
                self.drain(i);
            }
        }
    }

    fn pump(&mut self) {
        while let Some((from, to, p)) = self.queue.pop_front() {
            let msg = match p {
                Packet::Bytes(b) => wire::decode(&b).expect("decodes"),
                Packet::Value(m) => m,
            };
            self.nodes[to as usize].step(from, msg, self.now).unwrap();
            self.drain(to);
        }
    }

    /// Proposes `cmds` at the leader and runs until the leader delivered
    /// them all.
    pub fn decide(&mut self, cmds: &[Vec<u8>]) {
        let want = self.delivered + cmds.len() as u64;
        let l = self.leader;
        for c in cmds {
            self.nodes[l as usize].propose(c.clone(), self.now).unwrap();
        }
        self.drain(l);
        self.pump();
        assert_eq!(self.delivered, want, "every command decided");
    }
}

/// Runs `iters` rounds of `cmds` on fresh clusters (rebuilt, untimed, every
/// `rebuild` rounds so memory stays bounded) and returns the time spent
/// deciding.
pub fn timed_rounds<S: Storage>(
    iters: u64,
    cmds: &[Vec<u8>],
    rebuild: u64,
    make: impl Fn() -> Cluster<S>,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut cluster = make();
    for r in 0..iters {
        if r > 0 && r % rebuild == 0 {
            cluster = make();
        }
        let t = thread_cpu();
        cluster.decide(black_box(cmds));
        total += thread_cpu() - t;
    }
    total
}
