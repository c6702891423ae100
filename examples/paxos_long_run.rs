//! A long run of Multi-Paxos with log compaction, and what it costs:
//!
//! 1. **Memory and disk over many commands.** Three replicas in this
//!    process, each on a `FileStorage` record file, decide `COMMANDS`
//!    commands (64 bytes, batched 256 to a slot); each compacts its log
//!    every `EVERY` slots. Every tenth of the run it prints the process's
//!    resident memory, the three files' bytes and the longest in-memory log,
//!    and times a restart of one replica (reopen the file, replay): with
//!    compaction all three stay flat. A first, shorter run without
//!    compaction shows what they do otherwise.
//! 2. **Snapshot install.** A replica with an empty disk joins a cluster
//!    whose others compacted a `STATE_MB` MiB state: the time until it has
//!    installed the snapshot (chunks pulled through the wire format, as a
//!    transport carries them) and caught up.
//!
//! ```text
//! cargo run --release --example paxos_long_run -- [COMMANDS] [EVERY] [STATE_MB] [DIR]
//! ```
//! Defaults: 10,000,000 commands, every 1,000 slots, 1024 MiB, a directory
//! under /dev/shm (the point is memory and disk use, not fsync latency; pass
//! a directory on a disk to include it).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use quorumkit::paxos::{
    Config, FileIdentity, FileStorage, MemoryStorage, Node, NodeId, Output, Storage, wire,
};

const MEMBERS: [NodeId; 3] = [0, 1, 2];

/// Resident memory of this process, MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn config(id: NodeId, max_batch: usize) -> Config {
    let mut c = Config::new(id, MEMBERS.to_vec());
    c.max_batch = max_batch;
    c.max_inflight = 64;
    c.seed = 11 + u64::from(id);
    c.cluster_id = 42;
    c
}

/// Three nodes on a FIFO network of wire-encoded messages and a clock
/// that only moves to elect; each node's application state is a digest
/// of the commands it applied.
struct Cluster<S: Storage> {
    nodes: Vec<Option<Node<S>>>,
    queue: VecDeque<(NodeId, NodeId, Vec<u8>)>,
    now: u64,
    slots: Vec<u64>,
    state: Vec<u64>,
    every: u64,
    compactions: u64,
    delivered: u64,
    leader: NodeId,
}

fn digest(state: u64, cmd: &[u8]) -> u64 {
    cmd.iter().fold(state, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl<S: Storage> Cluster<S> {
    fn new(nodes: Vec<Node<S>>, every: u64) -> Self {
        let mut c = Cluster {
            nodes: nodes.into_iter().map(Some).collect(),
            queue: VecDeque::new(),
            now: 0,
            slots: vec![0; 3],
            state: vec![0; 3],
            every,
            compactions: 0,
            delivered: 0,
            leader: 0,
        };
        for i in MEMBERS {
            c.drain(i);
        }
        c.elect();
        c
    }

    fn node(&mut self, i: NodeId) -> &mut Node<S> {
        self.nodes[i as usize].as_mut().expect("running")
    }

    fn elect(&mut self) {
        for _ in 0..100_000 {
            self.pump();
            let live: Vec<&Node<S>> = self.nodes.iter().flatten().collect();
            if let Some(l) = live.iter().find(|n| n.is_leader())
                && live.iter().all(|n| n.leader() == Some(l.id()))
            {
                self.leader = l.id();
                return;
            }
            let next = live.iter().map(|n| n.next_deadline()).min().unwrap();
            self.now = self.now.max(next);
            for i in MEMBERS {
                if let Some(n) = self.nodes[i as usize].as_mut()
                    && n.next_deadline() <= self.now
                {
                    n.tick(self.now).unwrap();
                    self.drain(i);
                }
            }
        }
        panic!("no leader");
    }

    fn drain(&mut self, i: NodeId) {
        let k = i as usize;
        let Some(node) = self.nodes[k].as_mut() else {
            return;
        };
        while let Some(o) = node.poll() {
            match o {
                Output::Send(env) => {
                    self.queue
                        .push_back((i, env.to, wire::encode_to_vec(&env.message)));
                }
                Output::Decided { slot, batch } => {
                    assert_eq!(slot, self.slots[k]);
                    self.slots[k] += 1;
                    for c in &batch {
                        self.state[k] = digest(self.state[k], c);
                    }
                    if i == self.leader {
                        self.delivered += batch.len() as u64;
                    }
                }
                Output::Snapshot { slot, data } => {
                    // The state is the digest in the snapshot's first bytes.
                    self.slots[k] = slot;
                    self.state[k] = u64::from_le_bytes(data[..8].try_into().unwrap());
                }
                Output::Persisted { .. }
                | Output::LeaderChanged { .. }
                | Output::ReadIndex { .. }
                | Output::MembershipChanged(_) => {}
            }
        }
        if self.every > 0 && node.log_len() >= self.every && self.slots[k] > node.log_start() {
            let mut snap = self.state[k].to_le_bytes().to_vec();
            snap.resize(64, 0);
            node.compact(self.slots[k], snap, self.now).unwrap();
            self.compactions += 1;
            self.drain(i);
        }
    }

    fn pump(&mut self) {
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            if let Some(n) = self.nodes[to as usize].as_mut() {
                n.step(from, wire::decode(&bytes).unwrap(), self.now)
                    .unwrap();
                self.drain(to);
            }
        }
    }

    fn decide(&mut self, cmds: Vec<Vec<u8>>) {
        let want = self.delivered + cmds.len() as u64;
        let l = self.leader;
        let now = self.now;
        self.node(l).propose_all(cmds, now).unwrap();
        self.drain(l);
        self.pump();
        assert_eq!(self.delivered, want);
    }

    fn longest_log(&self) -> u64 {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.log_len())
            .max()
            .unwrap_or(0)
    }
}

fn file_node(dir: &Path, id: NodeId) -> Node<FileStorage> {
    let path = dir.join(format!("node{id}.log"));
    let s = FileStorage::open(&path, FileIdentity::new(42, id)).unwrap();
    Node::new(config(id, 256), s, 0).unwrap()
}

fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Decides `total` commands; prints a line every tenth.
fn long_run(dir: &Path, total: u64, every: u64) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let nodes = MEMBERS.iter().map(|&id| file_node(dir, id)).collect();
    let mut c = Cluster::new(nodes, every);
    println!(
        "\n{} commands, compaction {}:",
        total,
        if every == 0 {
            "off".to_string()
        } else {
            format!("every {every} slots")
        }
    );
    println!("  commands   RSS MiB  disk bytes  log slots  restart ms  compactions");
    let started = Instant::now();
    let step = (total / 10).max(1);
    let mut done = 0u64;
    let mut k = 0u64;
    while done < total {
        let target = (done + step).min(total);
        while done < target {
            let n = (target - done).min(256 * 64);
            let cmds = (0..n)
                .map(|j| {
                    let mut v = vec![0u8; 64];
                    v[..8].copy_from_slice(&(k + j).to_le_bytes());
                    v
                })
                .collect();
            c.decide(cmds);
            k += n;
            done += n;
        }
        // Restart a follower: reopen its file and replay.
        let f = (c.leader + 1) % 3;
        let storage = c.nodes[f as usize].take().unwrap().into_storage();
        drop(storage);
        let t = Instant::now();
        let node = file_node(dir, f);
        let restart = t.elapsed();
        c.nodes[f as usize] = Some(node);
        c.slots[f as usize] = 0;
        c.state[f as usize] = 0;
        c.drain(f);
        c.pump();
        println!(
            "  {:>9}  {:>8.1}  {:>10}  {:>9}  {:>10.2}  {:>11}",
            done,
            rss_mib(),
            disk_bytes(dir),
            c.longest_log(),
            restart.as_secs_f64() * 1e3,
            c.compactions
        );
    }
    println!(
        "  {:.1} s, {:.0} commands/s",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    drop(c);
    let _ = std::fs::remove_dir_all(dir);
}

/// A replica with an empty disk catches up from a `mib` MiB snapshot.
fn install(mib: usize) {
    let nodes = MEMBERS
        .iter()
        .map(|&id| Node::new(config(id, 64), MemoryStorage::new(), 0).unwrap())
        .collect();
    let mut c = Cluster::new(nodes, 0);
    for r in 0..10u64 {
        c.decide(
            (0..64)
                .map(|j| (r * 64 + j).to_le_bytes().to_vec())
                .collect(),
        );
    }
    let f = (c.leader + 1) % 3;
    c.nodes[f as usize] = None;
    for r in 10..20u64 {
        c.decide(
            (0..64)
                .map(|j| (r * 64 + j).to_le_bytes().to_vec())
                .collect(),
        );
    }
    // The two others compact a state of `mib` MiB.
    let mut state = vec![0u8; mib << 20];
    for (i, b) in state.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    for i in MEMBERS.iter().copied().filter(|&i| i != f) {
        let upto = c.slots[i as usize];
        let mut snap = c.state[i as usize].to_le_bytes().to_vec();
        snap.extend_from_slice(&state[8..]);
        let now = c.now;
        c.node(i).compact(upto, snap, now).unwrap();
    }
    drop(state);
    let target = c.nodes[c.leader as usize].as_ref().unwrap().commit_index();
    let t = Instant::now();
    let node = Node::new(config(f, 64), MemoryStorage::new(), c.now).unwrap();
    c.nodes[f as usize] = Some(node);
    c.slots[f as usize] = 0;
    // Its catch-up request goes out on its first tick with a known leader.
    for _ in 0..1_000_000 {
        c.pump();
        let n = c.nodes[f as usize].as_ref().unwrap();
        if n.commit_index() >= target {
            break;
        }
        let next = c
            .nodes
            .iter()
            .flatten()
            .map(|n| n.next_deadline())
            .min()
            .unwrap();
        c.now = c.now.max(next);
        for i in MEMBERS {
            if let Some(n) = c.nodes[i as usize].as_mut()
                && n.next_deadline() <= c.now
            {
                n.tick(c.now).unwrap();
                c.drain(i);
            }
        }
    }
    let took = t.elapsed();
    let n = c.nodes[f as usize].as_ref().unwrap();
    assert!(n.commit_index() >= target, "caught up");
    assert_eq!(c.state[f as usize], c.state[c.leader as usize]);
    println!(
        "\nsnapshot install: a {mib} MiB state to an empty replica, caught up to slot {target} in {:.2} s: {:.0} MiB/s",
        took.as_secs_f64(),
        mib as f64 / took.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let total = num(0, 10_000_000);
    let every = num(1, 1000);
    let state_mb = num(2, 1024) as usize;
    let dir = args.get(3).map(PathBuf::from).unwrap_or_else(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("qk-long-run-{}", std::process::id()))
    });
    println!("rss at start: {:.1} MiB", rss_mib());
    long_run(&dir, (total / 10).max(1), 0);
    long_run(&dir, total, every);
    install(state_mb);
}
