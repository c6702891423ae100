//! Deterministic tests of the Multi-Paxos node: a tiny in-test driver (a
//! VecDeque network, a fake clock advanced to the nodes' deadlines) and
//! direct message-level checks of single nodes.

use super::*;
use crate::paxos::storage::MemoryStorage;

const MS: u64 = 1_000_000;

fn cfg(id: NodeId, n: u32, seed: u64) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.heartbeat_interval = 10 * MS;
    c.election_timeout = 100 * MS;
    c.lease_duration = 200 * MS;
    c.max_clock_drift = 10 * MS;
    c.seed = seed;
    c
}

fn cmd(i: u64) -> Command {
    i.to_le_bytes().to_vec()
}

type DropFn = Box<dyn FnMut(&Envelope) -> bool>;

struct Cluster {
    configs: Vec<Config>,
    nodes: Vec<Option<Node<MemoryStorage>>>,
    parked: Vec<Option<MemoryStorage>>,
    net: VecDeque<Envelope>,
    now: u64,
    /// Per node: the batches delivered, index = slot.
    decided: Vec<Vec<Batch>>,
    leader_changes: Vec<Vec<(Option<NodeId>, Ballot)>>,
    /// Returns true to drop a message as it is delivered.
    drop: Option<DropFn>,
    rng: SplitMix64,
    /// Deliver in random order instead of FIFO.
    shuffle: bool,
    /// Deliver a message twice with this chance (per million).
    duplicate: u32,
    /// Every value ever decided anywhere, by slot (survives restarts).
    chosen: std::collections::HashMap<Slot, Batch>,
    /// ReadIndex outputs: (node, read id, ready, slots it had delivered).
    reads: Vec<(usize, u64, bool, usize)>,
    /// Per node: the memberships it reported, in order.
    memberships: Vec<Vec<Membership>>,
    /// Per node: started with `Node::join`.
    joined: Vec<bool>,
}

impl Cluster {
    fn new(n: u32, seed: u64, tweak: impl Fn(&mut Config)) -> Self {
        let configs: Vec<Config> = (1..=n)
            .map(|id| {
                let mut c = cfg(id, n, seed);
                tweak(&mut c);
                c
            })
            .collect();
        let nodes = configs
            .iter()
            .map(|c| Some(Node::new(c.clone(), MemoryStorage::new(), 0).unwrap()))
            .collect();
        Cluster {
            configs,
            nodes,
            parked: (0..n).map(|_| None).collect(),
            net: VecDeque::new(),
            now: 0,
            decided: vec![Vec::new(); n as usize],
            leader_changes: vec![Vec::new(); n as usize],
            drop: None,
            rng: SplitMix64::new(seed),
            shuffle: false,
            duplicate: 0,
            chosen: std::collections::HashMap::new(),
            reads: Vec::new(),
            memberships: vec![Vec::new(); n as usize],
            joined: vec![false; n as usize],
        }
    }

    fn node(&self, i: usize) -> &Node<MemoryStorage> {
        self.nodes[i].as_ref().unwrap()
    }

    fn drain(&mut self, i: usize) {
        let id = self.configs[i].id;
        let node = self.nodes[i].as_mut().unwrap();
        let mut seen_other = false;
        while let Some(o) = node.poll() {
            match o {
                Output::Persisted { records } => {
                    assert!(records > 0);
                    assert!(!seen_other, "Persisted after other outputs of the call");
                }
                Output::Send(env) => {
                    assert_eq!(env.from, id);
                    assert_ne!(env.to, id, "no messages to self");
                    self.net.push_back(env);
                }
                Output::Decided { slot, batch } => {
                    assert_eq!(
                        slot,
                        self.decided[i].len() as u64,
                        "gap or repeat at node {id}"
                    );
                    let first = self.chosen.entry(slot).or_insert_with(|| batch.clone());
                    assert_eq!(*first, batch, "two values decided for slot {slot}");
                    self.decided[i].push(batch);
                }
                Output::LeaderChanged { leader, ballot } => {
                    self.leader_changes[i].push((leader, ballot))
                }
                Output::ReadIndex { id, ready } => {
                    self.reads.push((i, id, ready, self.decided[i].len()))
                }
                Output::Snapshot { slot, data } => {
                    // The test application's snapshot is its whole log.
                    let log = snapshot_log(&data);
                    assert_eq!(log.len() as u64, slot, "a snapshot's slot and state differ");
                    assert!(
                        self.decided[i].len() as u64 <= slot,
                        "a snapshot older than the state it replaces"
                    );
                    for (s, b) in log.iter().enumerate() {
                        let first = self.chosen.entry(s as u64).or_insert_with(|| b.clone());
                        assert_eq!(first, b, "the snapshot disagrees at slot {s}");
                    }
                    self.decided[i] = log;
                }
                Output::MembershipChanged(m) => {
                    let len = self.decided[i].len() as u64;
                    assert!(
                        m.start <= len,
                        "node {id}: membership from slot {} with {len} delivered",
                        m.start
                    );
                    if m.start == len && len > 0 {
                        assert!(
                            self.decided[i][len as usize - 1].is_empty(),
                            "node {id}: the change's slot is delivered as a no-op"
                        );
                    }
                    self.memberships[i].push(m);
                }
            }
            seen_other = true;
        }
    }

    fn deliver_one(&mut self) -> bool {
        let env = if self.shuffle && !self.net.is_empty() {
            let k = self.rng.below(self.net.len() as u64) as usize;
            self.net.remove(k)
        } else {
            self.net.pop_front()
        };
        let Some(env) = env else { return false };
        if let Some(d) = self.drop.as_mut()
            && d(&env)
        {
            return true;
        }
        if self.duplicate > 0 && self.rng.chance(self.duplicate) {
            self.net.push_back(env.clone());
        }
        let i = (env.to - 1) as usize;
        if let Some(Some(node)) = self.nodes.get_mut(i) {
            node.step(env.from, env.message, self.now).unwrap();
            self.drain(i);
        }
        true
    }

    fn deliver_all(&mut self) {
        let mut k = 0u64;
        while self.deliver_one() {
            k += 1;
            assert!(k < 50_000_000, "message storm");
        }
    }

    /// Advance the clock to the earliest deadline and tick the nodes due.
    fn advance(&mut self) {
        let t = self
            .nodes
            .iter()
            .flatten()
            .map(|n| n.next_deadline())
            .min()
            .unwrap();
        assert!(t >= self.now);
        self.now = t;
        for i in 0..self.nodes.len() {
            if self.nodes[i]
                .as_ref()
                .is_some_and(|n| n.next_deadline() <= t)
            {
                self.nodes[i].as_mut().unwrap().tick(t).unwrap();
                self.drain(i);
            }
        }
        self.check_leases();
    }

    /// One clock for all: at most one node holds a read lease, and its
    /// state includes every slot any node has seen committed.
    fn check_leases(&self) {
        let holders: Vec<usize> = self
            .alive()
            .into_iter()
            .filter(|&i| self.node(i).has_read_lease(self.now))
            .collect();
        assert!(holders.len() <= 1, "two lease holders at {}", self.now);
        if let Some(&h) = holders.first() {
            let most = self
                .alive()
                .iter()
                .map(|&i| self.node(i).commit_index())
                .max();
            assert_eq!(
                most,
                Some(self.node(h).commit_index()),
                "lease holder {} behind another node",
                h + 1
            );
        }
    }

    /// Deliver and advance until `pred` holds; false if `limit` rounds pass.
    fn run_until(&mut self, limit: usize, mut pred: impl FnMut(&Self) -> bool) -> bool {
        for _ in 0..limit {
            self.deliver_all();
            if pred(self) {
                return true;
            }
            self.advance();
        }
        self.deliver_all();
        pred(self)
    }

    fn run_for(&mut self, duration: u64) {
        let end = self.now + duration;
        while self.now < end {
            self.deliver_all();
            self.advance();
        }
        self.deliver_all();
    }

    fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.as_ref()
                    .filter(|n| n.is_leader())
                    .map(|n| (n.ballot(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    fn elect(&mut self) -> usize {
        assert!(self.run_until(10_000, |c| c.leader().is_some()));
        // Let the followers hear from it.
        self.run_for(30 * MS);
        self.leader().unwrap()
    }

    fn propose(&mut self, i: usize, c: Command) {
        let now = self.now;
        self.nodes[i].as_mut().unwrap().propose(c, now).unwrap();
        self.drain(i);
    }

    fn crash(&mut self, i: usize) {
        let mut s = self.nodes[i].take().unwrap().into_storage();
        s.crash();
        self.parked[i] = Some(s);
        let id = self.configs[i].id;
        self.net.retain(|e| e.to != id);
    }

    fn restart(&mut self, i: usize) {
        let s = self.parked[i].take().unwrap();
        let c = self.configs[i].clone();
        let node = if self.joined[i] {
            Node::join(c, s, self.now)
        } else {
            Node::new(c, s, self.now)
        };
        self.nodes[i] = Some(node.unwrap());
        self.decided[i].clear();
        self.memberships[i].clear();
        self.drain(i);
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }

    /// Any two nodes' delivered logs agree on their common prefix.
    fn check_agreement(&self) {
        for a in 0..self.decided.len() {
            for b in a + 1..self.decided.len() {
                let n = self.decided[a].len().min(self.decided[b].len());
                assert_eq!(
                    self.decided[a][..n],
                    self.decided[b][..n],
                    "nodes {} and {} disagree",
                    a + 1,
                    b + 1
                );
            }
        }
    }

    fn commands(&self, i: usize) -> Vec<Command> {
        self.decided[i].iter().flatten().cloned().collect()
    }
}

/// The test application's snapshot: its whole log, encoded as a Promise
/// message's entries (any encoding of batches would do).
fn snapshot_bytes(log: &[Batch]) -> Vec<u8> {
    crate::paxos::wire::encode_to_vec(&Message::CatchUp {
        first_slot: 0,
        batches: log.to_vec(),
        commit: log.len() as u64,
    })
}

fn snapshot_log(data: &[u8]) -> Vec<Batch> {
    match crate::paxos::wire::decode(data).expect("a snapshot of the test application") {
        Message::CatchUp { batches, .. } => batches,
        other => panic!("not a snapshot: {other:?}"),
    }
}

impl Cluster {
    /// Node `i` compacts everything it delivered.
    fn compact(&mut self, i: usize) {
        let slot = self.decided[i].len() as u64;
        let data = snapshot_bytes(&self.decided[i]);
        let now = self.now;
        self.nodes[i]
            .as_mut()
            .unwrap()
            .compact(slot, data, now)
            .unwrap();
        self.drain(i);
    }
}

fn outputs<S: Storage>(n: &mut Node<S>) -> Vec<Output> {
    std::iter::from_fn(|| n.poll()).collect()
}

fn sends(outs: &[Output]) -> Vec<Message> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send(e) => Some(e.message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn elects_exactly_one_leader() {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed, |_| {});
        let l = c.elect();
        let lid = c.configs[l].id;
        c.run_for(200 * MS);
        assert_eq!(
            c.leader(),
            Some(l),
            "seed {seed}: leadership moved without faults"
        );
        let leaders = c.alive().iter().filter(|&&i| c.node(i).is_leader()).count();
        assert_eq!(leaders, 1, "seed {seed}");
        let to_self: Vec<_> = c.leader_changes[l]
            .iter()
            .filter(|(who, _)| *who == Some(lid))
            .collect();
        assert_eq!(to_self.len(), 1, "seed {seed}: {:?}", c.leader_changes[l]);
        for i in c.alive() {
            assert_eq!(c.node(i).leader(), Some(lid), "seed {seed}");
            assert_eq!(
                c.leader_changes[i].last().unwrap().0,
                Some(lid),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn proposals_everywhere_decided_in_one_order() {
    let mut c = Cluster::new(5, 7, |_| {});
    let l = c.elect();
    for k in 0..300u64 {
        c.propose((k % 5) as usize, cmd(k));
        if k % 7 == 0 {
            c.deliver_all();
        }
    }
    c.run_for(100 * MS);
    c.check_agreement();
    let first = c.commands(0);
    assert_eq!(first.len(), 300);
    let mut sorted = first.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 300, "a command decided twice");
    for i in 0..5 {
        assert_eq!(c.commands(i), first);
        assert_eq!(c.node(i).commit_index(), c.decided[i].len() as u64);
    }
    // The leader's own proposals keep their relative order.
    let own: Vec<_> = first
        .iter()
        .filter(|x| u64::from_le_bytes(x[..].try_into().unwrap()) % 5 == l as u64)
        .cloned()
        .collect();
    let mut own_sorted = own.clone();
    own_sorted.sort_by_key(|x| u64::from_le_bytes(x[..].try_into().unwrap()));
    assert_eq!(own, own_sorted);
}

#[test]
fn batching_packs_commands_into_few_slots() {
    let mut c = Cluster::new(3, 3, |c| {
        c.max_batch = 64;
        c.max_inflight = 4;
    });
    let l = c.elect();
    let base = c.decided[l].len();
    for k in 0..1000 {
        c.propose(l, cmd(k));
    }
    assert!(c.node(l).pending_commands() > 900);
    c.run_for(50 * MS);
    c.check_agreement();
    let slots = c.decided[l].len() - base;
    assert!(slots < 40, "{slots} slots for 1000 commands");
    assert!(c.decided[l][base..].iter().all(|b| b.len() <= 64));
    let got = c.commands(l);
    assert_eq!(got, (0..1000).map(cmd).collect::<Vec<_>>());

    // Unbatched: one command per slot.
    let mut c = Cluster::new(3, 3, |c| {
        c.max_batch = 1;
        c.max_inflight = 8;
    });
    let l = c.elect();
    let base = c.decided[l].len();
    for k in 0..100 {
        c.propose(l, cmd(k));
    }
    c.run_for(50 * MS);
    assert_eq!(c.decided[l].len() - base, 100);
    c.check_agreement();
}

#[test]
fn propose_all_packs_one_call_into_one_slot_and_forwards_from_a_follower() {
    let mut c = Cluster::new(3, 5, |c| {
        c.max_batch = 64;
        c.max_inflight = 64;
    });
    let l = c.elect();
    let base = c.decided[l].len();
    let now = c.now;
    c.nodes[l]
        .as_mut()
        .unwrap()
        .propose_all((0..100).map(cmd).collect(), now)
        .unwrap();
    c.drain(l);
    c.run_for(50 * MS);
    c.check_agreement();
    // 100 commands, batches of at most 64: two slots, where one `propose`
    // per command would have taken one slot each (nothing was in flight).
    assert_eq!(c.decided[l].len() - base, 2);
    assert_eq!(c.commands(l), (0..100).map(cmd).collect::<Vec<_>>());

    // From a follower: forwarded to the leader, decided in order.
    let f = (l + 1) % 3;
    let now = c.now;
    c.nodes[f]
        .as_mut()
        .unwrap()
        .propose_all((100..110).map(cmd).collect(), now)
        .unwrap();
    c.drain(f);
    c.run_for(50 * MS);
    c.check_agreement();
    assert_eq!(c.commands(l), (0..110).map(cmd).collect::<Vec<_>>());
}

#[test]
fn leader_crash_elects_another_and_continues() {
    for seed in 0..10 {
        let mut c = Cluster::new(3, seed, |_| {});
        let l = c.elect();
        for k in 0..20 {
            c.propose(l, cmd(k));
        }
        c.run_for(30 * MS);
        let before = c.commands(l);
        assert_eq!(before.len(), 20);
        let old_ballot = c.node(l).ballot();
        let crash_at = c.now;
        c.crash(l);
        assert!(c.run_until(10_000, |c| c.leader().is_some()), "seed {seed}");
        let l2 = c.leader().unwrap();
        assert_ne!(l2, l);
        assert!(c.node(l2).ballot() > old_ballot);
        assert!(
            c.now - crash_at >= c.configs[0].election_timeout,
            "seed {seed}"
        );
        for k in 20..40 {
            c.propose(l2, cmd(k));
        }
        c.run_for(50 * MS);
        c.check_agreement();
        for i in c.alive() {
            assert_eq!(
                c.commands(i),
                (0..40).map(cmd).collect::<Vec<_>>(),
                "seed {seed}"
            );
        }
        // The old leader comes back, replays and catches up.
        c.restart(l);
        c.run_for(300 * MS);
        c.check_agreement();
        assert_eq!(
            c.commands(l),
            (0..40).map(cmd).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

#[test]
fn restarted_follower_replays_from_zero_and_catches_up() {
    let mut c = Cluster::new(3, 11, |c| c.max_batch = 2);
    let l = c.elect();
    let f = (l + 1) % 3;
    for k in 0..50 {
        c.propose(l, cmd(k));
    }
    c.run_for(30 * MS);
    let had = c.decided[f].len();
    assert!(had > 0);
    let syncs = c.node(f).storage().syncs();
    assert!(syncs > 0);
    c.crash(f);
    for k in 50..3000 {
        c.propose(l, cmd(k));
        if k % 100 == 0 {
            c.deliver_all();
        }
    }
    c.run_for(30 * MS);
    c.restart(f);
    // Replay of what it had committed durably, from slot 0.
    assert!(!c.decided[f].is_empty());
    assert_eq!(c.decided[f][..], c.decided[l][..c.decided[f].len()]);
    c.run_for(500 * MS);
    c.check_agreement();
    assert_eq!(c.node(f).commit_index(), c.node(l).commit_index());
    assert_eq!(c.commands(f), (0..3000).map(cmd).collect::<Vec<_>>());
}

#[test]
fn value_accepted_by_a_majority_survives_leader_crash() {
    // 3 nodes: the leader's accept reaches one follower only, the acks are
    // lost, then the leader dies. The value is chosen (leader + follower) so
    // the next leader must re-propose it.
    for seed in 0..10 {
        let mut c = Cluster::new(3, seed, |_| {});
        let l = c.elect();
        let lid = c.configs[l].id;
        let keep = c.configs[(l + 1) % 3].id;
        c.drop = Some(Box::new(move |e: &Envelope| {
            (e.from == lid && e.to != keep) || e.to == lid
        }));
        c.propose(l, b"X".to_vec());
        c.deliver_all();
        assert!(
            c.decided
                .iter()
                .all(|d| d.iter().flatten().all(|x| x != b"X"))
        );
        c.crash(l);
        c.drop = None;
        assert!(c.run_until(10_000, |c| c.leader().is_some()), "seed {seed}");
        c.run_for(50 * MS);
        c.check_agreement();
        for i in c.alive() {
            assert_eq!(c.commands(i), vec![b"X".to_vec()], "seed {seed}");
        }
    }
}

#[test]
fn value_accepted_by_a_minority_is_chosen_once_or_never() {
    let mut outcomes = [0usize; 2];
    for seed in 0..30 {
        let mut c = Cluster::new(5, seed, |_| {});
        let l = c.elect();
        let lid = c.configs[l].id;
        let keep = c.configs[(l + 1) % 5].id;
        c.drop = Some(Box::new(move |e: &Envelope| {
            (e.from == lid && e.to != keep) || e.to == lid
        }));
        c.propose(l, b"X".to_vec());
        c.deliver_all();
        c.crash(l);
        c.drop = None;
        assert!(c.run_until(10_000, |c| c.leader().is_some()), "seed {seed}");
        let l2 = c.leader().unwrap();
        c.propose(l2, b"Y".to_vec());
        c.run_for(100 * MS);
        c.check_agreement();
        let cmds = c.commands(l2);
        let xs = cmds.iter().filter(|x| x[..] == b"X"[..]).count();
        assert!(xs <= 1, "seed {seed}");
        assert_eq!(cmds.iter().filter(|x| x[..] == b"Y"[..]).count(), 1);
        outcomes[xs] += 1;
        c.restart(l);
        c.run_for(300 * MS);
        c.check_agreement();
        assert_eq!(c.commands(l), cmds, "seed {seed}");
    }
    // Both outcomes are legal; across seeds the one who held X is sometimes
    // in the new leader's quorum.
    assert!(outcomes[1] > 0, "{outcomes:?}");
}

fn follower(id: NodeId, n: u32) -> Node<MemoryStorage> {
    let mut c = cfg(id, n, 1);
    c.lease_duration = 0;
    c.max_clock_drift = 0;
    Node::new(c, MemoryStorage::new(), 0).unwrap()
}

#[test]
fn acceptor_never_accepts_below_its_promise() {
    let mut n = follower(2, 3);
    n.step(
        3,
        Message::Prepare {
            ballot: Ballot::new(5, 3),
            first_slot: 0,
        },
        1,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert_eq!(outs[0], Output::Persisted { records: 1 });
    assert!(
        matches!(sends(&outs)[0], Message::Promise { ballot, .. } if ballot == Ballot::new(5, 3))
    );
    n.step(
        1,
        Message::Accept {
            ballot: Ballot::new(4, 1),
            first_slot: 0,
            batches: vec![vec![b"a".to_vec()]],
            commit: 0,
        },
        2,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert_eq!(
        sends(&outs),
        vec![Message::Nack {
            ballot: Ballot::new(4, 1),
            promised: Ballot::new(5, 3)
        }]
    );
    assert!(n.accepted(0).is_none());
    // A lower prepare is refused too.
    n.step(
        1,
        Message::Prepare {
            ballot: Ballot::new(5, 1),
            first_slot: 0,
        },
        3,
    )
    .unwrap();
    assert!(matches!(sends(&outputs(&mut n))[0], Message::Nack { .. }));
    // The promised leader's accept is taken, then reported in promises.
    n.step(
        3,
        Message::Accept {
            ballot: Ballot::new(5, 3),
            first_slot: 0,
            batches: vec![vec![b"b".to_vec()]],
            commit: 0,
        },
        4,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert_eq!(
        sends(&outs),
        vec![Message::Accepted {
            ballot: Ballot::new(5, 3),
            first_slot: 0,
            count: 1
        }]
    );
    assert_eq!(n.accepted(0).unwrap().0, Ballot::new(5, 3));
    n.step(
        1,
        Message::Prepare {
            ballot: Ballot::new(6, 1),
            first_slot: 0,
        },
        5,
    )
    .unwrap();
    let outs = outputs(&mut n);
    match &sends(&outs)[0] {
        Message::Promise {
            accepted, commit, ..
        } => {
            assert_eq!(*commit, 0);
            assert_eq!(
                accepted,
                &vec![AcceptedEntry {
                    slot: 0,
                    ballot: Ballot::new(5, 3),
                    batch: vec![b"b".to_vec()],
                    chosen: false
                }]
            );
        }
        m => panic!("{m:?}"),
    }
    assert_eq!(n.promised(), Ballot::new(6, 1));
}

#[test]
fn persisted_precedes_sends_and_syncs_once_per_call() {
    let mut n = follower(2, 3);
    assert_eq!(n.storage().syncs(), 0);
    n.step(
        1,
        Message::Accept {
            ballot: Ballot::new(1, 1),
            first_slot: 0,
            batches: vec![vec![b"a".to_vec()], vec![b"b".to_vec()], vec![]],
            commit: 0,
        },
        10,
    )
    .unwrap();
    let outs = outputs(&mut n);
    // Promise + 3 accepts, one sync, then the ack.
    assert_eq!(outs[0], Output::Persisted { records: 4 });
    assert!(
        matches!(&outs[1], Output::Send(e) if e.to == 1 && matches!(e.message, Message::Accepted { count: 3, .. }))
    );
    assert_eq!(n.storage().syncs(), 1);
    // The commit arrives with a heartbeat: decided in order, after the ack.
    n.step(
        1,
        Message::Heartbeat {
            ballot: Ballot::new(1, 1),
            commit: 3,
            seq: 1,
        },
        11,
    )
    .unwrap();
    let outs = outputs(&mut n);
    let kinds: Vec<u8> = outs
        .iter()
        .map(|o| match o {
            Output::Persisted { .. } => 0,
            Output::Send(_) => 1,
            Output::Decided { .. }
            | Output::Snapshot { .. }
            | Output::ReadIndex { .. }
            | Output::MembershipChanged(_) => 2,
            Output::LeaderChanged { .. } => 3,
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted, "{outs:?}");
    let decided: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Decided { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    assert_eq!(decided, vec![0, 1, 2]);
    assert_eq!(n.commit_index(), 3);
    // A call that persists nothing does not sync.
    let syncs = n.storage().syncs();
    n.step(
        1,
        Message::Heartbeat {
            ballot: Ballot::new(1, 1),
            commit: 3,
            seq: 2,
        },
        12,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert!(!outs.iter().any(|o| matches!(o, Output::Persisted { .. })));
    assert_eq!(n.storage().syncs(), syncs);
}

struct FailingStorage {
    inner: MemoryStorage,
    fail_sync: bool,
}

impl Storage for FailingStorage {
    fn append(&mut self, record: &Record) -> Result<()> {
        self.inner.append(record)
    }
    fn sync(&mut self) -> Result<()> {
        if self.fail_sync {
            return Err(Error::storage("disk on fire"));
        }
        self.inner.sync()
    }
    fn load(&mut self) -> Result<Vec<Record>> {
        self.inner.load()
    }
}

#[test]
fn storage_failure_stops_the_node() {
    let s = FailingStorage {
        inner: MemoryStorage::new(),
        fail_sync: true,
    };
    let mut n = Node::new(cfg(2, 3, 0), s, 0).unwrap();
    // Nothing persisted: nothing synced, fine.
    n.tick(1).unwrap();
    let err = n
        .step(
            1,
            Message::Accept {
                ballot: Ballot::new(1, 1),
                first_slot: 0,
                batches: vec![vec![b"a".to_vec()]],
                commit: 0,
            },
            2,
        )
        .unwrap_err();
    match &err {
        Error::Storage(m) => {
            assert!(m.contains("node stopped after a storage failure"), "{m}");
            assert!(m.contains("disk on fire"), "{m}");
        }
        e => panic!("{e:?}"),
    }
    assert!(n.is_stopped());
    assert_eq!(n.poll(), None, "no Accepted may leave without the sync");
    assert!(matches!(n.tick(3), Err(Error::Storage(_))));
    assert!(matches!(
        n.propose(b"x".to_vec(), 4),
        Err(Error::Storage(_))
    ));
    assert!(matches!(
        n.step(1, Message::CatchUpRequest { first_slot: 0 }, 5),
        Err(Error::Storage(_))
    ));
    assert_eq!(n.poll(), None);
    assert_eq!(n.next_deadline(), u64::MAX);
}

#[test]
fn storage_failure_on_load_is_reported() {
    struct NoLoad;
    impl Storage for NoLoad {
        fn append(&mut self, _: &Record) -> Result<()> {
            Ok(())
        }
        fn sync(&mut self) -> Result<()> {
            Ok(())
        }
        fn load(&mut self) -> Result<Vec<Record>> {
            Err(Error::storage("unreadable"))
        }
    }
    assert!(matches!(
        Node::new(cfg(1, 3, 0), NoLoad, 0),
        Err(Error::Storage(_))
    ));
}

#[test]
fn follower_lease_refuses_other_candidates() {
    let lease = 200 * MS;
    let mut n = Node::new(cfg(2, 3, 0), MemoryStorage::new(), 0).unwrap();
    n.step(
        1,
        Message::Heartbeat {
            ballot: Ballot::new(1, 1),
            commit: 0,
            seq: 1,
        },
        MS,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert!(sends(&outs).contains(&Message::HeartbeatAck {
        ballot: Ballot::new(1, 1),
        seq: 1
    }));
    assert_eq!(n.leader(), Some(1));
    let prepare = |round| Message::Prepare {
        ballot: Ballot::new(round, 3),
        first_slot: 0,
    };
    n.step(3, prepare(2), MS + lease - 1).unwrap();
    assert_eq!(
        sends(&outputs(&mut n)),
        vec![Message::Nack {
            ballot: Ballot::new(2, 3),
            promised: Ballot::new(1, 1)
        }]
    );
    // The leased leader itself may still raise its ballot.
    n.step(
        1,
        Message::Prepare {
            ballot: Ballot::new(3, 1),
            first_slot: 0,
        },
        MS + 2,
    )
    .unwrap();
    assert!(matches!(
        sends(&outputs(&mut n))[0],
        Message::Promise { .. }
    ));
    // Once the lease ends, others may be helped.
    n.step(3, prepare(4), MS + lease).unwrap();
    assert!(matches!(
        sends(&outputs(&mut n))[0],
        Message::Promise { .. }
    ));
    assert_eq!(n.promised(), Ballot::new(4, 3));
}

/// Drive a lone node (id 1 of 3) into leadership; returns (node, now).
/// Ticks `n` at `t` (its election timer due) and grants its pre-vote from
/// member 2: returns the outputs after which it stands (sends prepares).
fn stand(n: &mut Node<MemoryStorage>, t: u64) -> Vec<Output> {
    n.tick(t).unwrap();
    let outs = outputs(n);
    let Some(Message::PreVote { ballot }) = sends(&outs).first().cloned() else {
        panic!("no pre-vote: {outs:?}");
    };
    assert!(!n.is_candidate(), "a pre-vote raises nothing");
    n.step(
        2,
        Message::PreVoteReply {
            ballot,
            granted: true,
            promised: Ballot::ZERO,
        },
        t,
    )
    .unwrap();
    outputs(n)
}

fn lone_leader(c: Config) -> (Node<MemoryStorage>, u64) {
    let mut n = Node::new(c, MemoryStorage::new(), 0).unwrap();
    let t = n.next_deadline();
    let outs = stand(&mut n, t);
    let ballot = match sends(&outs).first() {
        Some(Message::Prepare { ballot, .. }) => *ballot,
        m => panic!("{m:?}"),
    };
    assert!(n.is_candidate());
    n.step(
        2,
        Message::Promise {
            ballot,
            accepted: vec![],
            commit: 0,
        },
        t,
    )
    .unwrap();
    assert!(n.is_leader());
    (n, t)
}

#[test]
fn leader_read_lease_needs_majority_and_ends_early() {
    let c = cfg(1, 3, 5);
    let (lease, drift) = (c.lease_duration, c.max_clock_drift);
    let (mut n, t0) = lone_leader(c);
    let outs = outputs(&mut n);
    let seq = sends(&outs)
        .iter()
        .find_map(|m| match m {
            Message::Heartbeat { seq, .. } => Some(*seq),
            _ => None,
        })
        .expect("a heartbeat right after election");
    assert!(!n.has_read_lease(t0), "no lease before a majority acked");
    let b = n.ballot();
    // A stale-ballot or unknown-seq ack does not count.
    n.step(
        3,
        Message::HeartbeatAck {
            ballot: Ballot::new(1, 3),
            seq,
        },
        t0 + 1,
    )
    .unwrap();
    n.step(
        3,
        Message::HeartbeatAck {
            ballot: b,
            seq: seq + 100,
        },
        t0 + 1,
    )
    .unwrap();
    assert!(!n.has_read_lease(t0 + 1));
    n.step(2, Message::HeartbeatAck { ballot: b, seq }, t0 + MS)
        .unwrap();
    assert!(n.has_read_lease(t0 + MS));
    assert!(n.has_read_lease(t0 + lease - drift - 1));
    assert!(!n.has_read_lease(t0 + lease - drift));
    // Disabled leases never hold.
    let mut c = cfg(1, 3, 5);
    c.lease_duration = 0;
    c.max_clock_drift = 0;
    let (mut n, t0) = lone_leader(c);
    let b = n.ballot();
    n.step(2, Message::HeartbeatAck { ballot: b, seq: 1 }, t0)
        .unwrap();
    assert!(!n.has_read_lease(t0));
}

#[test]
fn restarted_node_refuses_promises_for_a_lease() {
    let c = cfg(2, 3, 0);
    let lease = c.lease_duration;
    let mut s = MemoryStorage::new();
    s.append(&Record::Promise {
        ballot: Ballot::new(1, 1),
    })
    .unwrap();
    s.sync().unwrap();
    let start = 1_000 * MS;
    let mut n = Node::new(c.clone(), s, start).unwrap();
    assert_eq!(n.promised(), Ballot::new(1, 1));
    n.step(
        3,
        Message::Prepare {
            ballot: Ballot::new(7, 3),
            first_slot: 0,
        },
        start + lease - 1,
    )
    .unwrap();
    assert!(matches!(sends(&outputs(&mut n))[0], Message::Nack { .. }));
    // Nor does it stand itself before then.
    n.tick(start + lease - 1).unwrap();
    assert!(!n.is_candidate());
    assert!(n.next_deadline() >= start + lease - 1);
    n.step(
        3,
        Message::Prepare {
            ballot: Ballot::new(7, 3),
            first_slot: 0,
        },
        start + lease,
    )
    .unwrap();
    assert!(matches!(
        sends(&outputs(&mut n))[0],
        Message::Promise { .. }
    ));
    // A fresh node (no records) promises at once.
    let mut fresh = Node::new(c, MemoryStorage::new(), start).unwrap();
    fresh
        .step(
            3,
            Message::Prepare {
                ballot: Ballot::new(7, 3),
                first_slot: 0,
            },
            start,
        )
        .unwrap();
    assert!(matches!(
        sends(&outputs(&mut fresh))[0],
        Message::Promise { .. }
    ));
}

#[test]
fn restart_never_reuses_a_ballot() {
    let c = cfg(1, 3, 9);
    let (n, _) = lone_leader(c.clone());
    let b = n.ballot();
    let mut s = n.into_storage();
    s.crash();
    let mut n = Node::new(c, s, 10_000 * MS).unwrap();
    assert!(n.promised() >= b);
    let t = 10_000 * MS + 10 * n.config().lease_duration;
    n.tick(t).unwrap();
    let t = n.next_deadline();
    stand(&mut n, t);
    assert!(n.is_candidate());
    assert!(n.ballot() > b);
}

#[test]
fn bad_configs_are_refused() {
    let ok = cfg(1, 3, 0);
    assert!(ok.validate().is_ok());
    type Tweak = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Tweak)> = vec![
        ("empty members", Box::new(|c| c.members.clear())),
        ("id not a member", Box::new(|c| c.id = 9)),
        ("duplicate member", Box::new(|c| c.members = vec![1, 2, 2])),
        ("zero heartbeat", Box::new(|c| c.heartbeat_interval = 0)),
        // Once accepted (as 1 ns from Python's 1e-12 s): drivers spun.
        ("1 ns heartbeat", Box::new(|c| c.heartbeat_interval = 1)),
        (
            "heartbeat just under 1 ms",
            Box::new(|c| c.heartbeat_interval = MIN_HEARTBEAT_INTERVAL - 1),
        ),
        (
            "timeout not above heartbeat",
            Box::new(|c| c.election_timeout = c.heartbeat_interval),
        ),
        ("zero batch", Box::new(|c| c.max_batch = 0)),
        ("zero inflight", Box::new(|c| c.max_inflight = 0)),
        (
            "drift not below lease",
            Box::new(|c| c.max_clock_drift = c.lease_duration),
        ),
        (
            "too many members",
            Box::new(|c| c.members = (1..=65).collect()),
        ),
        ("huge timeout", Box::new(|c| c.election_timeout = u64::MAX)),
    ];
    for (what, f) in cases {
        let mut c = ok.clone();
        f(&mut c);
        match Node::new(c, MemoryStorage::new(), 0) {
            Err(Error::InvalidArgument(_)) => {}
            Err(e) => panic!("{what}: {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    // Leases off: any drift is fine.
    let mut c = ok;
    c.lease_duration = 0;
    c.max_clock_drift = 5;
    assert!(Node::new(c, MemoryStorage::new(), 0).is_ok());
}

fn random_ballot(r: &mut SplitMix64) -> Ballot {
    let round = match r.below(4) {
        0 => u64::MAX,
        1 => 0,
        2 => MAX_ROUND + r.below(3),
        _ => r.below(5),
    };
    Ballot::new(round, r.below(6) as NodeId)
}

fn random_slot(r: &mut SplitMix64) -> Slot {
    match r.below(4) {
        0 => u64::MAX - r.below(3),
        1 => r.below(1 << 40),
        _ => r.below(20),
    }
}

fn random_message(r: &mut SplitMix64) -> Message {
    let batches = |r: &mut SplitMix64| -> Vec<Batch> {
        (0..r.below(4))
            .map(|_| vec![vec![r.below(256) as u8]])
            .collect()
    };
    match r.below(10) {
        0 => Message::Prepare {
            ballot: random_ballot(r),
            first_slot: random_slot(r),
        },
        1 => Message::Promise {
            ballot: random_ballot(r),
            accepted: (0..r.below(3))
                .map(|_| AcceptedEntry {
                    slot: random_slot(r),
                    ballot: random_ballot(r),
                    batch: vec![],
                    chosen: r.chance(500_000),
                })
                .collect(),
            commit: random_slot(r),
        },
        2 => Message::Accept {
            ballot: random_ballot(r),
            first_slot: random_slot(r),
            batches: batches(r),
            commit: random_slot(r),
        },
        3 => Message::Accepted {
            ballot: random_ballot(r),
            first_slot: random_slot(r),
            count: random_slot(r),
        },
        4 => Message::Nack {
            ballot: random_ballot(r),
            promised: random_ballot(r),
        },
        5 => Message::Heartbeat {
            ballot: random_ballot(r),
            commit: random_slot(r),
            seq: r.next_u64(),
        },
        6 => Message::HeartbeatAck {
            ballot: random_ballot(r),
            seq: r.below(5),
        },
        7 => Message::Forward {
            seq: r.below(4),
            commands: vec![vec![1]; r.below(3) as usize],
        },
        8 => Message::CatchUpRequest {
            first_slot: random_slot(r),
        },
        _ => Message::CatchUp {
            first_slot: random_slot(r),
            batches: batches(r),
            commit: random_slot(r),
        },
    }
}

#[test]
fn garbage_messages_never_panic_or_allocate_wildly() {
    for seed in 0..8u64 {
        let mut c = Cluster::new(3, seed, |_| {});
        if seed % 2 == 0 {
            c.elect();
        }
        let mut r = SplitMix64::new(seed ^ 0xbad);
        for k in 0..3000u64 {
            let i = r.below(3) as usize;
            let from = r.below(6) as NodeId; // 0, 4, 5 are strangers
            let msg = random_message(&mut r);
            let now = c.now + k;
            let node = c.nodes[i].as_mut().unwrap();
            // Only storage failures may be errors, and MemoryStorage never fails.
            node.step(from, msg, now).unwrap();
            while node.poll().is_some() {}
            let window = MIN_WINDOW.max(4 * node.config().max_inflight as u64);
            assert!(
                (node.log.len() as u64) <= node.commit_index() + window,
                "seed {seed}: log grew to {}",
                node.log.len()
            );
        }
    }
}

#[test]
fn strangers_are_ignored() {
    let mut n = follower(2, 3);
    n.step(
        9,
        Message::Prepare {
            ballot: Ballot::new(1, 9),
            first_slot: 0,
        },
        1,
    )
    .unwrap();
    n.step(
        2,
        Message::Heartbeat {
            ballot: Ballot::new(1, 2),
            commit: 0,
            seq: 0,
        },
        1,
    )
    .unwrap();
    // A member speaking with another member's ballot is ignored too.
    n.step(
        3,
        Message::Accept {
            ballot: Ballot::new(1, 1),
            first_slot: 0,
            batches: vec![vec![]],
            commit: 0,
        },
        1,
    )
    .unwrap();
    assert_eq!(n.poll(), None);
    assert_eq!(n.promised(), Ballot::ZERO);
    assert_eq!(n.storage().syncs(), 0);
}

#[test]
fn single_node_cluster_decides_alone() {
    let mut c = cfg(7, 1, 0);
    c.members = vec![7];
    let mut n = Node::new(c, MemoryStorage::new(), 0).unwrap();
    let t = n.next_deadline();
    n.tick(t).unwrap();
    assert!(n.is_leader());
    assert!(n.has_read_lease(t));
    for k in 0..10 {
        n.propose(cmd(k), t).unwrap();
    }
    let outs = outputs(&mut n);
    assert!(sends(&outs).is_empty());
    let got: Vec<Command> = outs
        .into_iter()
        .filter_map(|o| match o {
            Output::Decided { batch, .. } => Some(batch),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(got, (0..10).map(cmd).collect::<Vec<_>>());
    // Restart replays everything.
    let mut s = n.into_storage();
    s.crash();
    let c = {
        let mut c = cfg(7, 1, 0);
        c.members = vec![7];
        c
    };
    let mut n = Node::new(c, s, t + 1).unwrap();
    let replay: Vec<Command> = outputs(&mut n)
        .into_iter()
        .filter_map(|o| match o {
            Output::Decided { batch, .. } => Some(batch),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(replay, (0..10).map(cmd).collect::<Vec<_>>());
}

#[test]
fn follower_buffers_until_a_leader_is_known() {
    let mut c = Cluster::new(3, 21, |_| {});
    // Before any election: proposals wait at the follower.
    c.propose(0, cmd(1));
    c.propose(1, cmd(2));
    assert_eq!(c.node(0).pending_commands(), 1);
    c.elect();
    c.run_for(50 * MS);
    c.check_agreement();
    let mut got = c.commands(2);
    got.sort();
    assert_eq!(got, vec![cmd(1), cmd(2)]);
    assert!(c.alive().iter().all(|&i| c.node(i).pending_commands() == 0));
}

/// The commands of the Accepts to node 2 in `outs`.
fn accepted_commands(outs: &[Output]) -> Vec<Command> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send(Envelope {
                to: 2,
                message: Message::Accept { batches, .. },
                ..
            }) => Some(batches.clone()),
            _ => None,
        })
        .flatten()
        .flatten()
        .collect()
}

#[test]
fn duplicated_forward_is_proposed_once() {
    let (mut n, t) = lone_leader(cfg(1, 3, 9));
    outputs(&mut n);
    let none: Vec<Command> = vec![];
    let fwd = |n: &mut Node<MemoryStorage>, from: NodeId, seq: u64, c: u64| {
        let commands = vec![cmd(c)];
        n.step(from, Message::Forward { seq, commands }, t).unwrap();
        accepted_commands(&outputs(n))
    };
    // Seqs wrap: the sender starts anywhere.
    let s0 = u64::MAX - 1;
    assert_eq!(fwd(&mut n, 2, s0, 1), vec![cmd(1)]);
    assert_eq!(fwd(&mut n, 2, s0, 1), none, "a duplicate is dropped");
    assert_eq!(fwd(&mut n, 2, s0.wrapping_add(3), 2), vec![cmd(2)]);
    // An older seq within the window, reordered: taken once.
    assert_eq!(fwd(&mut n, 2, s0.wrapping_add(1), 3), vec![cmd(3)]);
    assert_eq!(fwd(&mut n, 2, s0.wrapping_add(1), 3), none);
    assert_eq!(fwd(&mut n, 2, s0, 1), none);
    // Windows are per sender.
    assert_eq!(fwd(&mut n, 3, s0, 4), vec![cmd(4)]);
    // The window slides: a seq 1023 behind the highest is remembered, and
    // the slots it reuses are cleared.
    let hi = s0.wrapping_add(1000);
    assert_eq!(fwd(&mut n, 2, hi, 5), vec![cmd(5)]);
    assert_eq!(fwd(&mut n, 2, s0.wrapping_add(3), 2), none);
    assert_eq!(fwd(&mut n, 2, s0.wrapping_add(2), 6), vec![cmd(6)]);
    assert_eq!(fwd(&mut n, 2, hi.wrapping_add(1023), 7), vec![cmd(7)]);
    assert_eq!(fwd(&mut n, 2, hi, 5), none, "1023 behind: still seen");
    assert_eq!(fwd(&mut n, 2, hi.wrapping_add(1023), 7), none);
    // A sender restarted at another random point is heard.
    assert_eq!(fwd(&mut n, 2, 1 << 40, 8), vec![cmd(8)]);
    assert_eq!(fwd(&mut n, 2, 1 << 40, 8), none);
}

#[test]
fn forwards_carry_consecutive_seqs() {
    let mut c = Cluster::new(3, 4, |_| {});
    let l = c.elect();
    let f = (l + 1) % 3;
    c.propose(f, cmd(1));
    c.propose(f, cmd(2));
    let seqs: Vec<u64> = c
        .net
        .iter()
        .filter_map(|e| match e.message {
            Message::Forward { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs.len(), 2, "{seqs:?}");
    assert_eq!(seqs[1], seqs[0].wrapping_add(1));
}

#[test]
fn lossy_reordering_network_keeps_agreement() {
    // QK_NODE_SEEDS=N explores more seeds (each failure names its seed).
    let seeds: u64 = std::env::var("QK_NODE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    for seed in 0..seeds {
        let mut c = Cluster::new(if seed % 2 == 0 { 3 } else { 5 }, seed, |c| {
            c.max_batch = 3;
            c.max_inflight = 5;
        });
        c.shuffle = true;
        // Duplication in half the seeds: a duplicated Forward must still be
        // proposed once (receivers drop seqs they have seen).
        let dups = seed % 4 >= 2;
        if dups {
            c.duplicate = 50_000;
        }
        let mut r = SplitMix64::new(seed * 31 + 1);
        c.drop = Some(Box::new(move |_| r.chance(100_000)));
        let n = c.nodes.len();
        let mut k = 0u64;
        for round in 0..60 {
            for _ in 0..5 {
                let i = (c.rng.below(n as u64)) as usize;
                if c.nodes[i].is_some() {
                    c.propose(i, cmd(k));
                    k += 1;
                }
            }
            c.deliver_all();
            c.check_leases();
            c.advance();
            if round == 20
                && let Some(l) = c.leader()
            {
                c.crash(l);
            }
            if round == 30 {
                // And a random follower.
                let i = c.rng.below(n as u64) as usize;
                if c.nodes[i].is_some() && c.alive().len() > n / 2 + 1 {
                    c.crash(i);
                }
            }
            if round == 40 {
                for i in 0..n {
                    if c.nodes[i].is_none() {
                        c.restart(i);
                    }
                }
            }
        }
        c.drop = None;
        c.run_for(2_000 * MS);
        c.check_agreement();
        let most = c.decided.iter().map(Vec::len).max().unwrap();
        for i in c.alive() {
            assert_eq!(c.decided[i].len(), most, "seed {seed}: node {} lags", i + 1);
        }
        let cmds = c.commands(0);
        let mut sorted = cmds.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            cmds.len(),
            "seed {seed} (duplication {dups}): a command decided twice"
        );
        assert!(!cmds.is_empty(), "seed {seed}: nothing decided");
    }
}

#[test]
fn partitioned_leader_yields_after_its_lease() {
    for seed in 0..8u64 {
        let mut c = Cluster::new(3, seed, |_| {});
        let l = c.elect();
        let lid = c.configs[l].id;
        for k in 0..10 {
            c.propose(l, cmd(k));
        }
        c.run_for(30 * MS);
        assert!(c.node(l).has_read_lease(c.now));
        let cut_at = c.now;
        c.drop = Some(Box::new(move |e: &Envelope| e.from == lid || e.to == lid));
        c.propose(l, b"lost?".to_vec());
        // `advance` checks at every step that at most one node holds a read
        // lease and that it is not behind anyone.
        assert!(
            c.run_until(10_000, |c| c
                .alive()
                .iter()
                .any(|&i| i != l && c.node(i).is_leader())),
            "seed {seed}"
        );
        let lease = c.configs[0].lease_duration;
        assert!(
            c.now >= cut_at + lease - c.configs[0].heartbeat_interval,
            "seed {seed}"
        );
        assert!(!c.node(l).has_read_lease(c.now), "seed {seed}");
        let l2 = c.leader_changes[(l + 1) % 3].last().unwrap().0.unwrap();
        let l2 = (l2 - 1) as usize;
        for k in 10..20 {
            c.propose(l2, cmd(k));
        }
        c.run_for(50 * MS);
        // The old leader still thinks it leads until it hears otherwise.
        c.drop = None;
        c.run_for(300 * MS);
        assert!(!c.node(l).is_leader(), "seed {seed}");
        assert_eq!(c.node(l).leader(), Some(c.configs[l2].id), "seed {seed}");
        c.check_agreement();
        let want: Vec<Command> = (0..20).map(cmd).collect();
        for i in 0..3 {
            let got: Vec<Command> = c
                .commands(i)
                .into_iter()
                .filter(|x| x[..] != b"lost?"[..])
                .collect();
            assert_eq!(got, want, "seed {seed} node {}", i + 1);
            assert!(
                c.commands(i)
                    .iter()
                    .filter(|x| x[..] == b"lost?"[..])
                    .count()
                    <= 1
            );
        }
    }
}

#[test]
fn far_future_accept_is_not_taken_and_triggers_catch_up() {
    let mut n = follower(2, 3);
    let b = Ballot::new(1, 1);
    n.step(
        1,
        Message::Accept {
            ballot: b,
            first_slot: MIN_WINDOW,
            batches: vec![vec![b"far".to_vec()]],
            commit: 5,
        },
        MS,
    )
    .unwrap();
    let msgs = sends(&outputs(&mut n));
    assert_eq!(msgs, vec![Message::CatchUpRequest { first_slot: 0 }]);
    assert!(n.accepted(MIN_WINDOW).is_none());
    assert!(n.log.len() < 16);
    assert_eq!(n.leader(), Some(1));
    assert_eq!(n.known_commit(), 5);
    // At most one request per heartbeat interval.
    let hb = n.config().heartbeat_interval;
    for t in [MS + 1, MS + hb - 1] {
        n.step(
            1,
            Message::Heartbeat {
                ballot: b,
                commit: 5,
                seq: t,
            },
            t,
        )
        .unwrap();
        let msgs = sends(&outputs(&mut n));
        assert!(
            !msgs
                .iter()
                .any(|m| matches!(m, Message::CatchUpRequest { .. }))
        );
    }
    assert!(n.next_deadline() <= MS + hb);
    n.tick(MS + hb).unwrap();
    assert_eq!(
        sends(&outputs(&mut n)),
        vec![Message::CatchUpRequest { first_slot: 0 }]
    );
    // The reply fills the log, persisted as Chosen records, and delivers.
    n.step(
        1,
        Message::CatchUp {
            first_slot: 0,
            batches: (0..5).map(|k| vec![cmd(k)]).collect(),
            commit: 5,
        },
        MS + hb + 1,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert_eq!(outs[0], Output::Persisted { records: 6 }); // 5 Chosen + Commit
    assert_eq!(n.commit_index(), 5);
    assert!(matches!(
        n.storage().records().last(),
        Some(Record::Commit { commit: 5 })
    ));
}

#[test]
fn lost_accepts_are_retransmitted() {
    let mut c = Cluster::new(3, 4, |_| {});
    let l = c.elect();
    let mut dropped = 0;
    c.drop = Some(Box::new(move |e: &Envelope| {
        if matches!(e.message, Message::Accept { .. }) && dropped < 2 {
            dropped += 1;
            return true;
        }
        false
    }));
    let syncs = c.node(l).storage().syncs();
    c.propose(l, b"again".to_vec());
    assert_eq!(c.node(l).storage().syncs(), syncs + 1);
    c.deliver_all();
    assert!(!c.commands(l).contains(&b"again".to_vec()));
    let hb = c.configs[0].heartbeat_interval;
    c.run_for(3 * hb + 1);
    for i in 0..3 {
        assert_eq!(c.commands(i), vec![b"again".to_vec()]);
    }
}

#[test]
fn higher_nack_makes_a_leader_step_down() {
    let (mut n, t) = lone_leader(cfg(1, 3, 2));
    let b = n.ballot();
    outputs(&mut n);
    // A nack for some other ballot, or with a lower promise, is ignored.
    n.step(
        2,
        Message::Nack {
            ballot: Ballot::new(b.round + 7, 1),
            promised: Ballot::new(b.round + 9, 3),
        },
        t,
    )
    .unwrap();
    assert!(n.is_leader());
    n.step(
        2,
        Message::Nack {
            ballot: b,
            promised: Ballot::new(b.round + 5, 3),
        },
        t + 1,
    )
    .unwrap();
    assert!(!n.is_leader());
    assert_eq!(n.leader(), None);
    assert!(outputs(&mut n).contains(&Output::LeaderChanged {
        leader: None,
        ballot: Ballot::new(b.round + 5, 3)
    }));
    // Its next candidacy outbids every ballot it heard of.
    let mut t = t + 1;
    let asked = loop {
        t = n.next_deadline().max(t + 1);
        n.tick(t).unwrap();
        if let Some(b) = election_ballot(&outputs(&mut n)) {
            break b;
        }
    };
    assert!(asked > Ballot::new(b.round + 9, 3));
}

#[test]
fn clone_and_fingerprint_track_the_state() {
    let mut a = follower(2, 3);
    let b = a.clone();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert!(format!("{a:?}").contains("promised"));
    let ballot = Ballot { round: 3, node: 1 };
    a.step(
        1,
        Message::Prepare {
            ballot,
            first_slot: 0,
        },
        MS,
    )
    .unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    // The clone evolves alone: the same input brings it to the same state.
    let mut c = b.clone();
    c.step(
        1,
        Message::Prepare {
            ballot,
            first_slot: 0,
        },
        MS,
    )
    .unwrap();
    assert_eq!(a.fingerprint(), c.fingerprint());
    assert_eq!(b.promised(), Ballot::ZERO);
    assert_eq!(c.promised(), ballot);
}

/// The ballot of the first election message in `outs` (a pre-vote or a
/// prepare).
fn election_ballot(outs: &[Output]) -> Option<Ballot> {
    sends(outs).into_iter().find_map(|m| match m {
        Message::Prepare { ballot, .. } | Message::PreVote { ballot } => Some(ballot),
        _ => None,
    })
}

#[test]
fn candidate_outbids_a_prepare_it_refused_under_lease() {
    let mut n = Node::new(cfg(2, 3, 7), MemoryStorage::new(), 0).unwrap();
    let leader = Ballot { round: 1, node: 1 };
    n.step(
        1,
        Message::Heartbeat {
            ballot: leader,
            commit: 0,
            seq: 1,
        },
        MS,
    )
    .unwrap();
    let high = Ballot { round: 9, node: 3 };
    n.step(
        3,
        Message::Prepare {
            ballot: high,
            first_slot: 0,
        },
        2 * MS,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert!(
        sends(&outs)
            .iter()
            .any(|m| matches!(m, Message::Nack { ballot, .. } if *ballot == high)),
        "{outs:?}"
    );
    assert_eq!(n.promised(), leader);
    // The leader goes quiet: once the lease and the timer run out this node
    // stands, above the ballot it refused.
    let mut t = 2 * MS;
    let ballot = loop {
        t = n.next_deadline().max(t + 1);
        n.tick(t).unwrap();
        let outs = outputs(&mut n);
        if let Some(b) = election_ballot(&outs) {
            break b;
        }
        assert!(t < 10_000 * MS, "never stood for election");
    };
    assert!(ballot > high, "{ballot:?} <= {high:?}");
}

#[test]
fn prevote_is_refused_while_a_leader_is_heard_and_a_cut_off_leader_steps_down() {
    let mut n = follower(2, 3);
    let leader = Ballot { round: 1, node: 1 };
    let hb = Message::Heartbeat {
        ballot: leader,
        commit: 0,
        seq: 1,
    };
    n.step(1, hb, MS).unwrap();
    outputs(&mut n);
    let ask = Ballot { round: 2, node: 3 };
    n.step(3, Message::PreVote { ballot: ask }, 2 * MS).unwrap();
    let outs = outputs(&mut n);
    assert!(
        sends(&outs).contains(&Message::PreVoteReply {
            ballot: ask,
            granted: false,
            promised: leader
        }),
        "{outs:?}"
    );
    assert_eq!(n.promised(), leader, "a pre-vote raises nothing");
    // An election timeout after the last heartbeat it grants.
    let t = MS + n.config().election_timeout;
    n.step(3, Message::PreVote { ballot: ask }, t).unwrap();
    assert!(sends(&outputs(&mut n)).contains(&Message::PreVoteReply {
        ballot: ask,
        granted: true,
        promised: leader
    }));
    // A leader that hears nobody steps down within two election timeouts.
    let (mut l, t) = lone_leader(cfg(1, 3, 4));
    let mut now = t;
    while l.is_leader() {
        now = l.next_deadline().max(now + 1);
        assert!(
            now <= t + 2 * l.config().election_timeout,
            "never stepped down"
        );
        l.tick(now).unwrap();
    }
    assert_eq!(l.leader(), None);
}

// ------------------------------------------------------------ compaction

#[test]
fn compaction_drops_the_prefix_and_a_restart_replays_only_the_suffix() {
    let mut c = Cluster::new(3, 21, |c| c.max_batch = 1);
    let l = c.elect();
    for k in 0..100 {
        c.propose(l, cmd(k));
    }
    c.run_for(50 * MS);
    let f = (l + 1) % 3;
    assert_eq!(c.decided[f].len(), c.decided[l].len());
    let upto = c.decided[f].len() as u64;
    c.compact(f);
    let n = c.node(f);
    assert_eq!((n.log_start(), n.log_len()), (upto, 0));
    assert_eq!(n.snapshot().map(|(s, _)| s), Some(upto));
    // The storage holds the checkpoint only: a snapshot, a promise, a commit.
    let kinds: Vec<&str> = n
        .storage()
        .records()
        .iter()
        .map(|r| match r {
            Record::Snapshot { .. } => "snapshot",
            Record::Promise { .. } => "promise",
            Record::Commit { .. } => "commit",
            _ => "entry",
        })
        .collect();
    assert_eq!(kinds, ["snapshot", "promise", "commit"]);
    // Refusals change nothing.
    let now = c.now;
    let node = c.nodes[f].as_mut().unwrap();
    let e = node.compact(upto, vec![], now).unwrap_err();
    assert!(e.to_string().contains("already starts at slot"), "{e}");
    let e = node.compact(upto + 50, vec![], now).unwrap_err();
    assert!(e.to_string().contains("not decided yet"), "{e}");
    assert_eq!(node.log_start(), upto);
    // More commands, then a crash: the restart restores the snapshot, then
    // replays only the slots after it.
    for k in 100..110 {
        c.propose(l, cmd(k));
    }
    c.run_for(50 * MS);
    c.crash(f);
    c.restart(f);
    let outs_slots = c.decided[f].len() as u64;
    assert!(outs_slots >= upto + 10, "{outs_slots}");
    assert_eq!(c.commands(f), (0..110).map(cmd).collect::<Vec<_>>());
    c.check_agreement();
}

#[test]
fn a_lagging_replica_installs_the_snapshot_in_chunks_and_catches_up() {
    let mut c = Cluster::new(3, 22, |c| c.max_batch = 4);
    let l = c.elect();
    let f = (l + 1) % 3;
    c.crash(f);
    // Big commands, so the snapshot spans several chunks.
    let big = |k: u64| {
        let mut v = vec![(k % 251) as u8; 300 * 1024];
        v.extend_from_slice(&k.to_le_bytes());
        v
    };
    for k in 0..12 {
        c.propose(l, big(k));
        c.run_for(5 * MS);
    }
    c.run_for(50 * MS);
    let other = 3 - l - f;
    c.compact(l);
    c.compact(other);
    let snap_len = c.node(l).snapshot().unwrap().1.len();
    assert!(snap_len > 3 * SNAPSHOT_CHUNK, "{snap_len}");
    // Lose every second chunk once: the install resumes where it stood.
    let mut n = 0u64;
    c.drop = Some(Box::new(move |e: &Envelope| {
        if matches!(e.message, Message::SnapshotChunk { .. }) {
            n += 1;
            n.is_multiple_of(2)
        } else {
            false
        }
    }));
    c.restart(f);
    c.propose(l, big(12));
    assert!(c.run_until(20_000, |c| c.decided[f].len() == c.decided[l].len()));
    c.run_for(50 * MS);
    c.check_agreement();
    assert_eq!(c.commands(f), (0..13).map(big).collect::<Vec<_>>());
    assert!(c.node(f).log_start() > 0);
    assert!(c.node(f).install_progress().is_none());
    // Its storage was rewritten as a checkpoint at the snapshot.
    assert!(matches!(
        c.node(f).storage().records().first(),
        Some(Record::Snapshot { .. })
    ));
}

#[test]
fn an_install_keeps_the_accepted_values_after_the_snapshot() {
    // A follower that accepted slot 5 in ballot 1.1 installs a snapshot
    // of slots below 3: it must still report slot 5 in its promises (a
    // snapshot installed over newer accepted values would forget it).
    let mut n = Node::new(cfg(2, 3, 1), MemoryStorage::new(), 0).unwrap();
    let b = Ballot::new(1, 1);
    let batches: Vec<Batch> = (0..6).map(|k| vec![cmd(k)]).collect();
    n.step(
        1,
        Message::Accept {
            ballot: b,
            first_slot: 0,
            batches,
            commit: 0,
        },
        MS,
    )
    .unwrap();
    outputs(&mut n);
    let data = b"state below 3".to_vec();
    let (image, checksum) = install_image(&data, vec![1, 2, 3]);
    n.step(
        1,
        Message::SnapshotChunk {
            cluster: 0,
            slot: 3,
            total: image.len() as u64,
            checksum,
            offset: 0,
            data: image,
        },
        2 * MS,
    )
    .unwrap();
    let outs = outputs(&mut n);
    assert!(outs.iter().any(
        |o| matches!(o, Output::Snapshot { slot: 3, data: d } if d.as_slice() == data.as_slice())
    ));
    assert_eq!((n.log_start(), n.commit_index()), (3, 3));
    for slot in 3..6 {
        let (ballot, batch, chosen) = n.accepted(slot).expect("kept");
        assert_eq!((ballot, batch.clone(), chosen), (b, vec![cmd(slot)], false));
    }
    // A restart keeps them too (they are in the checkpoint).
    let mut n = Node::new(cfg(2, 3, 1), n.into_storage(), 3 * MS).unwrap();
    let outs = outputs(&mut n);
    assert!(matches!(
        outs.first(),
        Some(Output::Snapshot { slot: 3, .. })
    ));
    assert_eq!(n.accepted(5).map(|e| e.0), Some(b));
    // A candidate behind the snapshot gets no promise, but the snapshot.
    let later = 3 * MS + 2 * 200 * MS;
    n.step(
        3,
        Message::Prepare {
            ballot: Ballot::new(2, 3),
            first_slot: 1,
        },
        later,
    )
    .unwrap();
    let m = sends(&outputs(&mut n));
    assert!(
        matches!(
            m.as_slice(),
            [Message::SnapshotChunk {
                slot: 3,
                offset: 0,
                ..
            }]
        ),
        "{m:?}"
    );
    assert_eq!(n.promised(), b);
}

#[test]
fn damaged_foreign_and_implausible_chunks_are_ignored() {
    let mut n = Node::new(cfg(2, 3, 1), MemoryStorage::new(), 0).unwrap();
    let (data, good) = install_image(b"snapshot", vec![1, 2, 3]);
    let chunk = |cluster: u64, checksum: u32, total: u64, offset: u64, data: &[u8]| {
        Message::SnapshotChunk {
            cluster,
            slot: 4,
            total,
            checksum,
            offset,
            data: data.to_vec(),
        }
    };
    let len = data.len() as u64;
    for m in [
        chunk(9, good, len, 0, &data),                    // another cluster
        chunk(0, good ^ 1, len, 0, &data),                // damaged: checksum differs
        chunk(0, good, len - 1, 0, &data),                // runs past its total
        chunk(0, good, MAX_SNAPSHOT_BYTES + 1, 0, &data), // too large
        chunk(0, good, u64::MAX, u64::MAX, &data),        // offset overflows
        {
            // The checksum holds but the membership after the state does
            // not parse.
            let mut bad = data.clone();
            let n = bad.len();
            bad[n - 1] ^= 0x40;
            let sum = crc32fast::hash(&bad);
            chunk(0, sum, len, 0, &bad)
        },
        {
            // A membership that lists no voter.
            let (bad, sum) = install_image(b"snapshot", vec![]);
            chunk(0, sum, bad.len() as u64, 0, &bad)
        },
    ] {
        n.step(1, m, MS).unwrap();
        let outs = outputs(&mut n);
        assert!(
            !outs.iter().any(|o| matches!(o, Output::Snapshot { .. })),
            "{outs:?}"
        );
        assert_eq!((n.log_start(), n.commit_index()), (0, 0));
    }
    // A chunk from the middle of an unknown snapshot asks for its start.
    n.step(1, chunk(0, good, 100, 50, &data), MS).unwrap();
    let m = sends(&outputs(&mut n));
    assert_eq!(m, [Message::SnapshotRequest { slot: 4, offset: 0 }]);
    // Then the whole of the good one installs.
    n.step(1, chunk(0, good, len, 0, &data), MS).unwrap();
    assert!(
        outputs(&mut n)
            .iter()
            .any(|o| matches!(o, Output::Snapshot { slot: 4, .. }))
    );
    assert_eq!(n.commit_index(), 4);
}

/// What an install transfers for application bytes `data` and a membership
/// of `voters` (epoch 0), and its checksum.
fn install_image(data: &[u8], voters: Vec<NodeId>) -> (Vec<u8>, u32) {
    let snap = Snap::new(
        1,
        std::sync::Arc::new(data.to_vec()),
        Membership::initial(voters),
    );
    (snap.image(0, snap.image_len()), snap.checksum)
}

// ------------------------------------------------------------ ReadIndex

#[test]
fn read_index_waits_for_a_majority_after_the_read_and_fails_when_deposed() {
    let mut c = Cluster::new(3, 31, |c| c.lease_duration = 0);
    let l = c.elect();
    for k in 0..5 {
        c.propose(l, cmd(k));
    }
    let f = (l + 1) % 3;
    let now = c.now;
    let e = c.nodes[f].as_mut().unwrap().read_index(7, now).unwrap_err();
    assert!(matches!(e, Error::NotLeader { leader: Some(_) }), "{e}");
    // Not ready at once: it needs a majority's answer to a heartbeat sent
    // after it, and the writes before it delivered.
    c.nodes[l].as_mut().unwrap().read_index(8, now).unwrap();
    c.nodes[l].as_mut().unwrap().read_index(9, now).unwrap();
    c.drain(l);
    assert!(c.reads.is_empty());
    c.deliver_all();
    assert_eq!(
        c.reads.iter().map(|r| (r.0, r.1, r.2)).collect::<Vec<_>>(),
        [(l, 8, true), (l, 9, true)]
    );
    // Ready means everything proposed before was delivered at the leader.
    assert!(c.reads.iter().all(|r| r.3 >= 5), "{:?}", c.reads);
    // Cut the leader off: a read there never becomes ready; it fails when
    // the leader steps down.
    c.reads.clear();
    let lid = c.configs[l].id;
    c.drop = Some(Box::new(move |e: &Envelope| e.from == lid || e.to == lid));
    let now = c.now;
    c.nodes[l].as_mut().unwrap().read_index(10, now).unwrap();
    c.drain(l);
    assert!(c.run_until(10_000, |c| !c.reads.is_empty()));
    assert_eq!(c.reads[0].0, l);
    assert_eq!((c.reads[0].1, c.reads[0].2), (10, false));
    assert!(!c.node(l).is_leader());
}

#[test]
fn a_lone_node_answers_read_index_at_once() {
    let mut c = Cluster::new(1, 32, |_| {});
    let l = c.elect();
    c.propose(l, cmd(1));
    let now = c.now;
    c.nodes[l].as_mut().unwrap().read_index(1, now).unwrap();
    c.drain(l);
    assert_eq!(c.reads, [(l, 1, true, 1)]);
}

mod membership;
mod transfer;
