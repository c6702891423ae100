//! Seeded simulations of the Multi-Paxos node under crashes, restarts,
//! partitions, loss, duplication, reordering and clock skew, held to the
//! agreement, validity, in-order delivery, lease and liveness checkers.
//!
//! `QK_SIM_SEEDS` (default 2000) seeds from `QK_SIM_SEED_BASE` (default 0)
//! run, split over four tests so the harness runs them in parallel; a
//! failing seed prints the command that replays it with a trace:
//! `QK_SIM_SEED=<seed> cargo test --test paxos_sim replay -- --nocapture`.

use quorumkit::paxos::{
    Ballot, Batch, Command, Config, MemoryStorage, Message, NodeId, Output, Record, Slot, Storage,
};
use quorumkit::paxos::{Envelope, Node};
use quorumkit::sim::plan::run_random_on;
use quorumkit::sim::{
    FaultPlan, NetConfig, PaxosCluster, RunReport, SimConfig, SimNode, SimStats, ViolationKind,
    run_random, run_random_in,
};
use std::collections::BTreeMap;

const PARTS: u64 = 4;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn add(total: &mut SimStats, s: &SimStats) {
    total.net.sent += s.net.sent;
    total.net.delivered += s.net.delivered;
    total.net.lost += s.net.lost;
    total.net.duplicated += s.net.duplicated;
    total.net.cut += s.net.cut;
    total.events += s.events;
    total.proposals += s.proposals;
    total.decisions += s.decisions;
    total.commands_decided += s.commands_decided;
    total.duplicate_decisions += s.duplicate_decisions;
    total.crashes += s.crashes;
    total.restarts += s.restarts;
    total.partitions += s.partitions;
    total.heals += s.heals;
    total.net_changes += s.net_changes;
    total.elections += s.elections;
    total.leader_changes += s.leader_changes;
    total.lease_grants += s.lease_grants;
    total.liveness_checks += s.liveness_checks;
    total.compactions += s.compactions;
    total.snapshots_installed += s.snapshots_installed;
    total.reads += s.reads;
    total.reads_served += s.reads_served;
    total.membership_changes += s.membership_changes;
    total.replicas_added += s.replicas_added;
    total.replicas_retired += s.replicas_retired;
    total.transfers += s.transfers;
}

/// Runs this part's share of the seeds; fails listing every failing seed.
fn seeds_part(part: u64) {
    let count = env_u64("QK_SIM_SEEDS", 2000);
    let base = env_u64("QK_SIM_SEED_BASE", 0);
    let plan = FaultPlan::default();
    let started = std::time::Instant::now();
    let mut total = SimStats::default();
    let mut failures = Vec::new();
    let mut runs = 0;
    for k in (part..count).step_by(PARTS as usize) {
        let seed = base + k;
        runs += 1;
        match run_random(seed, &plan) {
            Ok(r) => add(&mut total, &r.stats),
            Err(v) => failures.push(format!(
                "{v}\n    replay: QK_SIM_SEED={seed} cargo test --test paxos_sim replay -- --nocapture"
            )),
        }
    }
    eprintln!(
        "part {part}: {runs} seeds in {:.1?}: {} crashes, {} restarts, {} partitions, {} heals, \
         {} network changes; messages {} sent, {} lost, {} duplicated, {} cut; {} proposals, \
         {} commands decided ({} twice), {} elections, {} leader changes, {} lease grants, {} liveness checks, \
         {} compactions, {} snapshots installed, {} ReadIndex reads ({} answered), \
         {} membership changes ({} replicas added, {} retired), {} leadership transfers",
        started.elapsed(),
        total.crashes,
        total.restarts,
        total.partitions,
        total.heals,
        total.net_changes,
        total.net.sent,
        total.net.lost,
        total.net.duplicated,
        total.net.cut,
        total.proposals,
        total.commands_decided,
        total.duplicate_decisions,
        total.elections,
        total.leader_changes,
        total.lease_grants,
        total.liveness_checks,
        total.compactions,
        total.snapshots_installed,
        total.reads,
        total.reads_served,
        total.membership_changes,
        total.replicas_added,
        total.replicas_retired,
        total.transfers,
    );
    assert!(
        failures.is_empty(),
        "{} of {runs} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The schedule really injects faults.
    if runs >= 50 {
        assert!(total.crashes > 0 && total.restarts > 0 && total.partitions > 0);
        assert!(total.net.lost > 0 && total.net.duplicated > 0);
        assert!(total.commands_decided > 0);
        assert!(total.membership_changes > 0 && total.replicas_retired > 0);
    }
}

#[test]
fn seeds_0() {
    seeds_part(0);
}
#[test]
fn seeds_1() {
    seeds_part(1);
}
#[test]
fn seeds_2() {
    seeds_part(2);
}
#[test]
fn seeds_3() {
    seeds_part(3);
}

/// Seeds `make soak` once failed on, kept as regressions.
const FOUND_BY_SOAK: [u64; 3] = [5_012_353, 1_060_331, 1_076_365];

#[test]
fn seeds_found_by_soak() {
    for seed in FOUND_BY_SOAK {
        if let Err(v) = run_random(seed, &FaultPlan::default()) {
            panic!(
                "{v}\n    replay: QK_SIM_SEED={seed} cargo test --test paxos_sim replay -- --nocapture"
            );
        }
    }
}

/// A livelock the node once had: a candidate that rejoined with a higher
/// ballot deposed every new leader while the others' leases kept it from
/// winning (each new leader picked a ballot below one it had refused).
#[test]
fn seeds_found_by_soak_livelock() {
    for seed in [1_061_305, 20_073_266] {
        if let Err(v) = run_random(seed, &FaultPlan::default()) {
            panic!(
                "{v}\n    replay: QK_SIM_SEED={seed} cargo test --test paxos_sim replay -- --nocapture"
            );
        }
    }
}

/// Replays one seed (`QK_SIM_SEED`, default `QK_SIM_SEED_BASE`); prints the
/// last `QK_SIM_TRACE_LINES` (400) events of the trace when it fails, or
/// always with `QK_SIM_TRACE=1`.
#[test]
fn replay() {
    let seed = env_u64("QK_SIM_SEED", env_u64("QK_SIM_SEED_BASE", 0));
    let plan = FaultPlan {
        trace: true,
        ..FaultPlan::default()
    };
    let (result, cluster) = run_random_in(seed, &plan);
    let keep = env_u64("QK_SIM_TRACE_LINES", 400) as usize;
    let trace = cluster.trace();
    eprintln!("seed {seed}: {:?}", cluster.config());
    match result {
        Ok(r) => {
            if std::env::var_os("QK_SIM_TRACE").is_some() {
                for line in &trace[trace.len().saturating_sub(keep)..] {
                    eprintln!("{line}");
                }
            }
            eprintln!("seed {seed}: ok: {r:?}")
        }
        Err(v) => {
            for line in &trace[trace.len().saturating_sub(keep)..] {
                eprintln!("{line}");
            }
            eprintln!("status: {:#?}", cluster.status());
            panic!("{v}");
        }
    }
}

fn replays_exactly<N: SimNode>(plan: FaultPlan) {
    let plan = FaultPlan {
        trace: true,
        ..plan
    };
    for seed in [3, 17, 2024] {
        let (a, ca) = run_random_on::<N>(seed, &plan);
        let (b, cb) = run_random_on::<N>(seed, &plan);
        let (a, b): (RunReport, RunReport) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(ca.trace(), cb.trace(), "seed {seed}");
        assert!(ca.trace().len() > 100);
        let (c, _) = run_random_on::<N>(seed + 1, &plan);
        assert_ne!(c.unwrap().digest, a.digest, "seed {seed}");
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    replays_exactly::<Node<MemoryStorage>>(FaultPlan::default());
}

#[test]
fn the_same_seed_replays_the_same_run_of_any_replica() {
    replays_exactly::<Sequencer<CORRECT>>(seq_plan());
}

// ------------------------------------------------ scenarios on real nodes

fn quiet_cluster(n: usize, seed: u64) -> PaxosCluster {
    let mut cfg = SimConfig::new(n, seed);
    cfg.net = NetConfig::reliable(2_000_000);
    PaxosCluster::new(cfg).unwrap()
}

fn settle(c: &mut PaxosCluster) -> NodeId {
    let ok = c
        .run_until(c.now() + 2_000_000_000, |c| c.leader().is_some())
        .unwrap();
    assert!(ok, "no leader elected: {:#?}", c.status());
    c.leader().unwrap()
}

fn propose_and_wait(c: &mut PaxosCluster, at: Option<NodeId>) -> Command {
    let cmd = c.new_command();
    c.expect_decided(cmd.clone(), 2_000_000_000);
    c.propose(at, cmd.clone()).unwrap();
    assert!(c.run_until_decided(&cmd, 2_000_000_000).unwrap());
    cmd
}

#[test]
fn a_quiet_cluster_decides_every_command_in_order_everywhere() {
    let mut c = quiet_cluster(3, 1);
    settle(&mut c);
    let mut cmds = Vec::new();
    for i in 0..9u32 {
        cmds.push(propose_and_wait(&mut c, Some(i % 3)));
    }
    c.check().unwrap();
    for i in 0..3 {
        let log: Vec<Command> = c.decided(i).into_iter().flatten().collect();
        assert_eq!(log, cmds, "node {i}");
        let st = &c.status()[i as usize];
        assert_eq!(st.decided, c.decided(i).len() as u64);
        assert!(st.alive);
    }
    assert!(c.stats().elections >= 1);
    assert_eq!(c.stats().commands_decided, 9);
}

#[test]
fn a_crashed_leader_is_replaced_and_recovers_the_log() {
    let mut c = quiet_cluster(5, 2);
    let first = settle(&mut c);
    let a = propose_and_wait(&mut c, None);
    c.crash(first).unwrap();
    assert!(!c.is_alive(first));
    let second = settle(&mut c);
    assert_ne!(first, second);
    let b = propose_and_wait(&mut c, Some(second));
    c.restart(first).unwrap();
    let d = propose_and_wait(&mut c, Some(first));
    let log: Vec<Command> = c.decided(first).into_iter().flatten().collect();
    assert_eq!(log, vec![a, b, d]);
    let s = c.stats();
    assert_eq!((s.crashes, s.restarts), (1, 1));
    assert!(s.leader_changes >= 2);
    c.check().unwrap();
}

#[test]
fn a_minority_partition_stalls_and_the_majority_goes_on() {
    let mut c = quiet_cluster(5, 3);
    let l = settle(&mut c);
    let others: Vec<NodeId> = (0..5).filter(|&i| i != l).collect();
    // The old leader and one follower on one side; three on the other.
    c.partition(&[vec![l, others[0]], others[1..].to_vec()])
        .unwrap();
    let (_, stuck) = c.propose_new(Some(l)).unwrap();
    c.run_for(1_000_000_000).unwrap();
    assert!(!c.is_decided_on(&stuck, &[others[1]]));
    let majority_leader = c.leader().unwrap();
    assert!(others[1..].contains(&majority_leader), "{:#?}", c.status());
    let m = propose_and_wait_on(&mut c, majority_leader, &others[1..]);
    c.heal();
    // The old leader learns it was deposed (a command it took as leader
    // just before may be dropped: clients retry), then forwards.
    c.run_for(1_000_000_000).unwrap();
    let after = propose_and_wait(&mut c, Some(l));
    assert!(c.is_decided_on(&m, &c.alive()));
    assert!(c.is_decided_on(&after, &c.alive()));
    c.check().unwrap();
}

fn propose_and_wait_on(c: &mut PaxosCluster, at: NodeId, on: &[NodeId]) -> Command {
    let (_, cmd) = c.propose_new(Some(at)).unwrap();
    let ok = c
        .run_until(c.now() + 2_000_000_000, |c| c.is_decided_on(&cmd, on))
        .unwrap();
    assert!(ok, "{:#?}", c.status());
    cmd
}

#[test]
fn bad_arguments_are_refused() {
    let mut c = quiet_cluster(3, 4);
    assert!(c.propose(Some(7), b"x".to_vec()).is_err());
    assert!(c.crash(3).is_err());
    c.crash(1).unwrap();
    assert!(c.propose(Some(1), b"x".to_vec()).is_err());
    assert!(c.partition(&[vec![0], vec![9]]).is_err());
    assert!(PaxosCluster::new(SimConfig::new(0, 1)).is_err());
}

// ------------------------------------- the checkers catch broken replicas

/// A replica that is correct only while node 0 never loses its memory: node
/// 0 orders every command and tells the others. `MODE` breaks it on purpose.
struct Sequencer<const MODE: u8> {
    id: NodeId,
    members: Vec<NodeId>,
    storage: MemoryStorage,
    chosen: BTreeMap<Slot, Batch>,
    next_slot: Slot,
    delivered: Slot,
    out: Vec<Output>,
    now: u64,
    /// The seq of this node's next `Forward` (from the start time, so a
    /// restarted node does not reuse one).
    next_seq: u64,
    /// Node 0: the `(sender, seq)` of every `Forward` ordered (a duplicate
    /// is ordered once).
    seen: std::collections::HashSet<(NodeId, u64)>,
}

const CORRECT: u8 = 0;
/// Node 0 does not sync: after a crash it reuses slots.
const FORGETFUL: u8 = 1;
/// Node 0 invents a command.
const FORGER: u8 = 2;
/// Followers deliver slots as they arrive.
const HASTY: u8 = 3;
/// Node 0 never orders anything.
const MUTE: u8 = 4;

/// Followers send as someone else.
const IMPOSTOR: u8 = 5;
/// Followers ask to be ticked again at the same instant, forever.
const SPINNER: u8 = 6;

const POLL: u64 = 20_000_000;

impl<const MODE: u8> Sequencer<MODE> {
    fn send(&mut self, to: NodeId, message: Message) {
        let from = if MODE == IMPOSTOR && self.id != 0 {
            self.id + 100
        } else {
            self.id
        };
        self.out.push(Output::Send(Envelope { from, to, message }));
    }

    fn learn(&mut self, slot: Slot, batch: Batch) {
        if MODE == HASTY && self.id != 0 {
            if self.chosen.insert(slot, batch.clone()).is_none() {
                self.out.push(Output::Decided { slot, batch });
            }
            return;
        }
        self.chosen.entry(slot).or_insert(batch);
        while let Some(b) = self.chosen.get(&self.delivered) {
            self.out.push(Output::Decided {
                slot: self.delivered,
                batch: b.clone(),
            });
            self.delivered += 1;
        }
    }

    fn order(&mut self, mut commands: Vec<Command>) {
        if MODE == MUTE {
            return;
        }
        if MODE == FORGER && self.next_slot == 2 {
            commands.push(b"never proposed".to_vec());
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        self.storage
            .append(&Record::Chosen {
                slot,
                batch: commands.clone(),
            })
            .unwrap();
        if MODE != FORGETFUL {
            self.storage.sync().unwrap();
            self.out.push(Output::Persisted { records: 1 });
        }
        self.learn(slot, commands.clone());
        for to in self.members.clone() {
            if to != self.id {
                self.send(
                    to,
                    Message::CatchUp {
                        first_slot: slot,
                        batches: vec![commands.clone()],
                        commit: 0,
                    },
                );
            }
        }
    }
}

impl<const MODE: u8> SimNode for Sequencer<MODE> {
    fn start(config: Config, mut storage: MemoryStorage, now: u64) -> quorumkit::Result<Self> {
        let mut s = Sequencer {
            id: config.id,
            members: config.members,
            chosen: BTreeMap::new(),
            next_slot: 0,
            delivered: 0,
            out: Vec::new(),
            now,
            next_seq: now.wrapping_mul(1 << 16),
            seen: Default::default(),
            storage: MemoryStorage::new(),
        };
        for r in storage.load()? {
            if let Record::Chosen { slot, batch } = r {
                s.next_slot = slot + 1;
                s.learn(slot, batch);
            }
        }
        s.storage = storage;
        Ok(s)
    }

    fn step(&mut self, from: NodeId, message: Message, now: u64) -> quorumkit::Result<()> {
        self.now = now;
        match message {
            // A duplicate fails the guard and is ignored below.
            Message::Forward { seq, commands } if self.id == 0 && self.seen.insert((from, seq)) => {
                self.order(commands)
            }
            Message::CatchUp {
                first_slot,
                batches,
                ..
            } => {
                // What a follower delivers is durable first (the simulator
                // checks that a restart re-delivers it).
                let mut wrote = 0;
                for (k, b) in batches.iter().enumerate() {
                    let slot = first_slot + k as u64;
                    if !self.chosen.contains_key(&slot) {
                        let batch = b.clone();
                        self.storage.append(&Record::Chosen { slot, batch })?;
                        wrote += 1;
                    }
                }
                if wrote > 0 {
                    self.storage.sync()?;
                    self.out.push(Output::Persisted { records: wrote });
                }
                for (k, b) in batches.into_iter().enumerate() {
                    self.learn(first_slot + k as u64, b);
                }
            }
            Message::CatchUpRequest { first_slot } if self.id == 0 => {
                let batches: Vec<Batch> = self
                    .chosen
                    .range(first_slot..)
                    .map(|(_, b)| b.clone())
                    .collect();
                if !batches.is_empty() {
                    self.send(
                        from,
                        Message::CatchUp {
                            first_slot,
                            batches,
                            commit: 0,
                        },
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn tick(&mut self, now: u64) -> quorumkit::Result<()> {
        self.now = now;
        if self.id != 0 {
            let first_slot = self.delivered;
            self.send(0, Message::CatchUpRequest { first_slot });
        }
        Ok(())
    }

    fn propose(&mut self, command: Command, now: u64) -> quorumkit::Result<()> {
        self.now = now;
        if self.id == 0 {
            self.order(vec![command]);
        } else {
            self.next_seq += 1;
            self.send(
                0,
                Message::Forward {
                    seq: self.next_seq,
                    commands: vec![command],
                },
            );
        }
        Ok(())
    }

    fn poll(&mut self) -> Option<Output> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.remove(0))
        }
    }

    fn next_deadline(&self) -> u64 {
        if self.id == 0 {
            u64::MAX
        } else if MODE == SPINNER {
            self.now
        } else {
            (self.now / POLL + 1) * POLL
        }
    }

    fn leader(&self) -> Option<NodeId> {
        Some(0)
    }

    fn is_leader(&self) -> bool {
        self.id == 0
    }

    fn has_read_lease(&self, _now: u64) -> bool {
        false
    }

    fn commit_index(&self) -> Slot {
        self.delivered
    }

    fn ballot(&self) -> Ballot {
        Ballot::new(1, 0)
    }

    fn into_storage(self) -> MemoryStorage {
        self.storage
    }
}

/// The default plan without calm spells: they may leave node 0 down, and
/// then no sequencer is live.
fn seq_plan() -> FaultPlan {
    FaultPlan {
        calm: 0,
        // The sequencer keeps its whole log: it does not compact.
        compaction: false,
        ..FaultPlan::default()
    }
}

/// Seeds `0..count` of the random plan on `Sequencer<MODE>`: the kinds of
/// violation found, with how many seeds found each.
fn violations<const MODE: u8>(count: u64) -> BTreeMap<String, u64> {
    violations_under::<MODE>(count, &seq_plan())
}

fn violations_under<const MODE: u8>(count: u64, plan: &FaultPlan) -> BTreeMap<String, u64> {
    let mut found = BTreeMap::new();
    for seed in 0..count {
        if let Err(v) = run_random_on::<Sequencer<MODE>>(seed, plan).0 {
            assert_eq!(v.seed, seed);
            *found.entry(v.kind.to_string()).or_insert(0) += 1;
        }
    }
    found
}

#[test]
fn the_simulator_passes_a_correct_replica_through_every_fault() {
    // The sequencer is safe under any fault and live once node 0 is back.
    assert_eq!(violations::<CORRECT>(60), BTreeMap::new());
    let r = run_random_on::<Sequencer<CORRECT>>(5, &seq_plan())
        .0
        .unwrap();
    assert!(
        r.stats.commands_decided > 10 && r.stats.crashes > 0,
        "{r:?}"
    );
}

#[test]
fn a_leader_that_forgets_across_a_crash_is_caught() {
    // It delivered slots it never made durable: the restart check sees it
    // re-deliver less (before it could reuse those slots for new values,
    // which the agreement checker used to be the first to catch).
    let found = violations::<FORGETFUL>(60);
    assert!(
        found.contains_key(&ViolationKind::Durability.to_string()),
        "{found:?}"
    );
}

#[test]
fn validity_catches_an_invented_command() {
    let found = violations::<FORGER>(20);
    assert_eq!(
        found.get(&ViolationKind::Validity.to_string()),
        Some(&20),
        "{found:?}"
    );
}

#[test]
fn order_catches_delivery_with_gaps() {
    let found = violations::<HASTY>(40);
    assert!(
        found.contains_key(&ViolationKind::Order.to_string()),
        "{found:?}"
    );
}

#[test]
fn calm_spells_catch_a_cluster_that_needs_one_particular_node() {
    // With a majority up but node 0 down, a sequencer decides nothing.
    let plan = FaultPlan {
        compaction: false,
        ..FaultPlan::default()
    };
    let found = violations_under::<CORRECT>(40, &plan);
    let kinds: Vec<&String> = found.keys().collect();
    assert_eq!(kinds, vec!["liveness"], "{found:?}");
    assert!(found["liveness"] >= 2, "{found:?}");
}

#[test]
fn liveness_catches_a_cluster_that_never_decides() {
    let found = violations::<MUTE>(10);
    assert_eq!(
        found.get(&ViolationKind::Liveness.to_string()),
        Some(&10),
        "{found:?}"
    );
}

#[test]
fn a_node_with_the_real_type_is_what_run_random_drives() {
    // run_random_in's cluster is a PaxosCluster of real nodes.
    fn is_real(_: &PaxosCluster<Node<MemoryStorage>>) {}
    let (_, c) = run_random_in(1, &FaultPlan::default());
    is_real(&c);
}

#[test]
fn a_node_that_sends_as_another_is_caught() {
    let found = violations::<IMPOSTOR>(10);
    // Seeds with one node have no follower to misbehave.
    assert!(
        found.get(&ViolationKind::Wire.to_string()) >= Some(&7),
        "{found:?}"
    );
}

#[test]
fn a_timer_that_never_moves_on_is_caught() {
    let mut c = PaxosCluster::<Sequencer<SPINNER>>::start(SimConfig::new(2, 8)).unwrap();
    let v = c.run_for(1_000_000).unwrap_err();
    assert_eq!(v.kind, ViolationKind::Stuck, "{v}");
    assert_eq!(c.check().unwrap_err(), v);
    assert_eq!(c.step().unwrap_err(), v);
}
