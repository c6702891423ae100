//! The damaged-replica scenario that once broke agreement, on real nodes and
//! record files: replicas 1 and 2 decide commands while replica 3 is cut
//! off; one bit flips in a frame a third into replica 2's file; replica 2
//! restarts with replica 3 (replica 1 down).
//!
//! Before record files refused damage, replica 2's open cut its log at the
//! damaged frame without an error, forgot promises and accepts it had
//! acknowledged, and with replica 3 decided most of the old slots again
//! with new values while replica 1 still re-delivered the old ones. Now the
//! open is refused; the second test shows what the old cut would do.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use quorumkit::Error;
use quorumkit::paxos::file_storage::{FILE_HEADER_LEN, FRAME_HEADER_LEN};
use quorumkit::paxos::{Batch, Config, Envelope, FileIdentity, FileStorage, Node, NodeId, Output};

const CLUSTER: u64 = 42;
const MS: u64 = 1_000_000;

struct Cluster {
    dir: PathBuf,
    nodes: BTreeMap<NodeId, Node<FileStorage>>,
    net: VecDeque<Envelope>,
    /// What each node delivered in its current incarnation.
    delivered: BTreeMap<NodeId, BTreeMap<u64, Batch>>,
    now: u64,
}

impl Cluster {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("quorumkit-damaged-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Cluster {
            dir,
            nodes: BTreeMap::new(),
            net: VecDeque::new(),
            delivered: BTreeMap::new(),
            now: 0,
        }
    }

    fn path(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("replica-{id}.qkpx"))
    }

    fn start(&mut self, id: NodeId) -> quorumkit::Result<()> {
        let mut config = Config::new(id, vec![1, 2, 3]);
        config.cluster_id = CLUSTER;
        config.seed = u64::from(id) * 7919;
        let storage = FileStorage::open(self.path(id), FileIdentity::new(CLUSTER, id))?;
        let node = Node::new(config, storage, self.now)?;
        self.delivered.insert(id, BTreeMap::new());
        self.nodes.insert(id, node);
        self.drain(id);
        Ok(())
    }

    fn stop(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        self.net.retain(|e| e.to != id && e.from != id);
    }

    fn drain(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        while let Some(out) = node.poll() {
            match out {
                Output::Send(e) => self.net.push_back(e),
                Output::Decided { slot, batch } => {
                    self.delivered.get_mut(&id).unwrap().insert(slot, batch);
                }
                _ => {}
            }
        }
    }

    /// One millisecond: deliver what is in flight (to running nodes), then
    /// tick the nodes whose deadline came.
    fn step(&mut self) {
        self.now += MS;
        let now = self.now;
        for e in std::mem::take(&mut self.net) {
            if let Some(n) = self.nodes.get_mut(&e.to) {
                n.step(e.from, e.message, now).unwrap();
                self.drain(e.to);
            }
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            let n = self.nodes.get_mut(&id).unwrap();
            if n.next_deadline() <= now {
                n.tick(now).unwrap();
                self.drain(id);
            }
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|(_, n)| n.is_leader())
            .map(|(&id, _)| id)
    }

    /// Proposes `commands` at the leader and runs until every running node
    /// delivered `upto` slots (bounded: 20 simulated seconds).
    fn decide(&mut self, commands: &[&str], upto: u64) {
        for _ in 0..20_000 {
            if self.leader().is_some() {
                break;
            }
            self.step();
        }
        let leader = self.leader().expect("a leader within 20 s");
        for c in commands {
            let now = self.now;
            let n = self.nodes.get_mut(&leader).unwrap();
            n.propose(c.as_bytes().to_vec(), now).unwrap();
            self.drain(leader);
        }
        for _ in 0..20_000 {
            let done = self
                .nodes
                .keys()
                .all(|id| self.delivered[id].len() as u64 >= upto);
            if done {
                return;
            }
            self.step();
        }
        panic!("not decided within 20 s: {:?}", self.delivered);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Flips one payload bit in the frame a third of the way into `path`;
/// returns the frame's offset.
fn flip_a_bit_a_third_in(path: &Path) -> u64 {
    let mut bytes = std::fs::read(path).unwrap();
    let mut pos = FILE_HEADER_LEN as usize;
    let mut frames = Vec::new();
    while pos + FRAME_HEADER_LEN <= bytes.len() {
        let n = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push(pos);
        pos += FRAME_HEADER_LEN + n;
    }
    assert_eq!(pos, bytes.len(), "a whole log");
    assert!(frames.len() >= 20, "{} frames", frames.len());
    let at = frames[frames.len() / 3];
    bytes[at + FRAME_HEADER_LEN] ^= 0x10;
    std::fs::write(path, &bytes).unwrap();
    at as u64
}

/// Phase 1 of the scenario: 20 commands decided by replicas 1 and 2.
fn decide_twenty_without_replica_3(c: &mut Cluster) -> BTreeMap<u64, Batch> {
    c.start(1).unwrap();
    c.start(2).unwrap();
    let cmds: Vec<String> = (0..20).map(|i| format!("old-{i}")).collect();
    let cmds: Vec<&str> = cmds.iter().map(|s| s.as_str()).collect();
    // One command per slot, so the slots are easy to compare.
    for (i, cmd) in cmds.iter().enumerate() {
        c.decide(&[cmd], i as u64 + 1);
    }
    let old = c.delivered[&1].clone();
    assert_eq!(old, c.delivered[&2]);
    assert!(old.len() >= 20);
    c.stop(1);
    c.stop(2);
    old
}

#[test]
fn a_replica_with_a_flipped_bit_refuses_to_start_and_agreement_holds() {
    let mut c = Cluster::new("refused");
    let old = decide_twenty_without_replica_3(&mut c);
    let before = std::fs::read(c.path(2)).unwrap();
    let at = flip_a_bit_a_third_in(&c.path(2));
    let damaged = std::fs::read(c.path(2)).unwrap();
    assert_ne!(before, damaged);
    match c.start(2) {
        Err(Error::StorageCorrupt(m)) => assert!(m.contains(&format!("byte {at}")), "{m}"),
        Err(e) => panic!("{e:?}"),
        Ok(()) => panic!("a damaged replica started"),
    }
    assert_eq!(std::fs::read(c.path(2)).unwrap(), damaged, "left untouched");
    // Replica 3 alone cannot decide anything; with replica 1 back, the
    // cluster continues and every old slot keeps its value.
    c.start(3).unwrap();
    c.start(1).unwrap();
    c.decide(&["new-0", "new-1"], old.len() as u64 + 1);
    for id in [1, 3] {
        for (slot, batch) in &old {
            assert_eq!(
                c.delivered[&id].get(slot),
                Some(batch),
                "node {id} slot {slot}"
            );
        }
    }
}

#[test]
fn the_old_silent_cut_would_have_broken_agreement() {
    // What open used to do with the damage: cut the log at the damaged
    // frame, as if it were a torn tail. Done by hand here (and the frame
    // boundary kept whole) to show why a refusal is the only safe answer.
    let mut c = Cluster::new("cut");
    let old = decide_twenty_without_replica_3(&mut c);
    let at = flip_a_bit_a_third_in(&c.path(2));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(c.path(2))
        .unwrap();
    f.set_len(at).unwrap();
    drop(f);
    c.start(2).unwrap();
    c.start(3).unwrap();
    let cmds: Vec<String> = (0..20).map(|i| format!("new-{i}")).collect();
    for (i, cmd) in cmds.iter().enumerate() {
        let upto = c.delivered[&2].len().max(i) as u64 + 1;
        c.decide(&[cmd.as_str()], upto);
    }
    let redecided = old
        .iter()
        .filter(|(slot, batch)| c.delivered[&2].get(slot).is_some_and(|b| b != *batch))
        .count();
    eprintln!(
        "{redecided} of {} old slots decided again with new values",
        old.len()
    );
    assert!(
        redecided > 0,
        "the truncated replica and replica 3 kept every old value: {:?}",
        c.delivered[&2]
    );
}
