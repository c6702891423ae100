//! Seeded fault schedules: [`run_random`] builds a cluster from a seed and
//! interleaves client proposals with crashes, restarts, partitions, heals
//! and changes of network loss, duplication and delay; then it heals
//! everything, lets the cluster settle, and checks that a command proposed
//! at every node is decided everywhere (liveness) — safety is checked after
//! every event throughout.

use crate::paxos::{MembershipChange, NodeId};
use crate::rng::SplitMix64;

use super::check::{Violation, ViolationKind};
use super::net::NetConfig;
use super::paxos::{PaxosCluster, SimConfig, SimNode, SimStats, rate_bound};

/// What a random run may do, and how often. Weights are relative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    /// Cluster sizes to draw from.
    pub sizes: Vec<usize>,
    /// Simulated nanoseconds of faults and proposals before the final heal.
    pub duration: u64,
    /// Mean simulated nanoseconds between two actions (each run scales it
    /// by a factor drawn from 1/4 to 2).
    pub mean_gap: u64,
    /// Weight of proposing a command at a random running node.
    pub propose: u32,
    /// Weight of crashing a random running node (any number may be down).
    pub crash: u32,
    /// Weight of restarting a random crashed node.
    pub restart: u32,
    /// Weight of a new random partition.
    pub partition: u32,
    /// Weight of healing the network.
    pub heal: u32,
    /// Weight of new random network settings.
    pub net_change: u32,
    /// Weight of a calm spell: heal, stop losing messages, bring a majority
    /// up (others stay down), wait, then require a command proposed at a
    /// running node to be decided on every running node in time.
    pub calm: u32,
    /// The most loss a network setting draws, per million.
    pub max_loss_per_million: u32,
    /// The most duplication a network setting draws, per million.
    pub max_duplicate_per_million: u32,
    /// Chance per million that new network settings delay messages up to
    /// twice the election timeout.
    pub slow_net_per_million: u32,
    /// Keep a readable trace (slow; for replaying one seed).
    pub trace: bool,
    /// Ask the leader for ReadIndex reads now and then (each checked for
    /// staleness when it is answered).
    pub reads: bool,
    /// Let nodes compact their logs (each run draws how often, from every
    /// slot to every 50; one run in eight never compacts), so installs of
    /// snapshots meet crashes, partitions, loss and duplication.
    pub compaction: bool,
    /// Change the membership now and then (from a generator of its own):
    /// add a learner (a new replica), promote one, remove a voter, replace
    /// a voter with a learner; the replicas removed are shut down.
    pub membership: bool,
}

impl Default for FaultPlan {
    /// Sizes 1 to 7 (mostly 3 and 5), 2 s of faults with an action every
    /// 10 ms on average, up to 10 % loss and 5 % duplication, one network
    /// setting in ten slower than the election timeout.
    fn default() -> Self {
        FaultPlan {
            sizes: vec![1, 2, 3, 3, 3, 4, 5, 5, 5, 7],
            duration: 2_000_000_000,
            mean_gap: 10_000_000,
            propose: 60,
            crash: 6,
            restart: 8,
            partition: 5,
            heal: 6,
            net_change: 5,
            calm: 2,
            max_loss_per_million: 100_000,
            max_duplicate_per_million: 50_000,
            slow_net_per_million: 100_000,
            trace: false,
            compaction: true,
            reads: true,
            membership: true,
        }
    }
}

/// What one random run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub n: usize,
    /// Counters (faults injected, messages, decisions).
    pub stats: SimStats,
    /// Fingerprint of every event (equal seeds, equal digests).
    pub digest: u64,
    /// Simulated time at the end.
    pub end_time: u64,
    /// How long the final commands took to be decided everywhere.
    pub settle_time: u64,
    /// Slots every running node delivered by the end.
    pub final_log_len: u64,
}

fn random_net(rng: &mut SplitMix64, plan: &FaultPlan, election_timeout: u64) -> NetConfig {
    let min_delay = rng.between(100_000, 3_000_000);
    // Now and then a network slower than the election timeout: leaders are
    // deposed by their own slow heartbeats and candidates duel.
    let spread = if rng.chance(plan.slow_net_per_million) {
        2 * election_timeout
    } else {
        15_000_000
    };
    let max_delay = min_delay + rng.between(0, spread);
    let lossy = rng.chance(700_000);
    NetConfig {
        min_delay,
        max_delay,
        loss_per_million: if lossy {
            rng.between(0, plan.max_loss_per_million as u64) as u32
        } else {
            0
        },
        duplicate_per_million: if rng.chance(500_000) {
            rng.between(0, plan.max_duplicate_per_million as u64) as u32
        } else {
            0
        },
    }
}

fn random_groups(rng: &mut SplitMix64, n: usize) -> Vec<Vec<NodeId>> {
    let mut ids: Vec<NodeId> = (0..n as NodeId).collect();
    for i in (1..ids.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    let groups = rng.between(2, 3.min(n.max(2)) as u64) as usize;
    let mut out = vec![Vec::new(); groups];
    for (k, id) in ids.into_iter().enumerate() {
        // The first `groups` ids seed one group each; the rest land anywhere.
        let g = if k < groups {
            k
        } else {
            rng.below(groups as u64) as usize
        };
        out[g].push(id);
    }
    out
}

/// The cluster `run_random` builds for `seed` under `plan`.
pub fn random_config(seed: u64, plan: &FaultPlan) -> SimConfig {
    let mut rng = SplitMix64::new(seed ^ 0x706c_616e_5f63_6667);
    let n = plan.sizes[rng.below(plan.sizes.len().max(1) as u64) as usize];
    let mut cfg = SimConfig::new(n, seed);
    let node = &mut cfg.node;
    node.heartbeat_interval = rng.between(3_000_000, 20_000_000);
    node.election_timeout = node.heartbeat_interval * rng.between(3, 15);
    node.max_clock_drift = rng.between(0, 10_000_000);
    node.lease_duration = if rng.chance(200_000) {
        0
    } else {
        node.max_clock_drift + rng.between(1, 2 * node.election_timeout)
    };
    node.max_batch = rng.between(1, 8) as usize;
    node.max_inflight = rng.between(1, 8) as usize;
    cfg.max_skew = rng.between(0, node.max_clock_drift);
    cfg.max_rate_ppm = rng.between(0, rate_bound(node) as u64) as u32;
    let election_timeout = node.election_timeout;
    cfg.net = random_net(&mut rng, plan, election_timeout);
    cfg.trace = plan.trace;
    // From a generator of its own, so every other draw (and so every
    // schedule found before compaction existed) stays as it was.
    let mut compaction = SplitMix64::new(seed ^ 0x636f_6d70_6163_7421);
    cfg.compact_every = if plan.compaction {
        [0, 1, 2, 3, 5, 8, 20, 50][compaction.below(8) as usize]
    } else {
        0
    };
    cfg
}

/// Run the random schedule of `seed` under `plan`: faults, then a heal and
/// the liveness check. The first violation of any checker ends the run.
pub fn run_random(seed: u64, plan: &FaultPlan) -> Result<RunReport, Violation> {
    run_random_in(seed, plan).0
}

/// [`run_random`], also handing back the cluster (for its trace and status).
pub fn run_random_in(seed: u64, plan: &FaultPlan) -> (Result<RunReport, Violation>, PaxosCluster) {
    run_random_on(seed, plan)
}

/// [`run_random_in`] on replicas of type `N`.
pub fn run_random_on<N: SimNode>(
    seed: u64,
    plan: &FaultPlan,
) -> (Result<RunReport, Violation>, PaxosCluster<N>) {
    let cfg = random_config(seed, plan);
    let mut c = PaxosCluster::<N>::start(cfg).expect("a valid random configuration");
    let r = drive(&mut c, seed, plan);
    (r, c)
}

/// Heal, stop loss and duplication, wait out elections, leases and the
/// backlog, then propose a fresh command at each node of `at` and require
/// each decided on every running node within the liveness bound
/// (10 election timeouts + 2 leases). Returns how long that took.
fn probe<N: SimNode>(c: &mut PaxosCluster<N>, at: &[NodeId]) -> Result<u64, Violation> {
    c.heal();
    // Added replicas whose change was lost with its leader never join.
    c.retire_strangers();
    let node = c.config().node.clone();
    let mut net = c.net_config().clone();
    net.loss_per_million = 0;
    net.duplicate_per_million = 0;
    // Round trips well inside the election timeout, or no leader lasts.
    net.max_delay = net.max_delay.min(node.election_timeout / 4);
    net.min_delay = net.min_delay.min(net.max_delay);
    c.set_net(net).expect("a valid network");
    c.run_for(3 * node.election_timeout + node.lease_duration)?;
    let bound = 10 * node.election_timeout + 2 * node.lease_duration;
    stable_leader(c, bound)?;
    // Let the backlog of earlier commands drain (with one slot in flight a
    // leader orders one command per round trip): wait until a whole
    // election timeout passes without a decision, or give up after 100.
    for _ in 0..100 {
        let before = c.stats().decisions;
        c.run_for(node.election_timeout)?;
        if c.stats().decisions == before {
            break;
        }
    }
    stable_leader(c, bound)?;
    let start = c.now();
    let at: Vec<NodeId> = at
        .iter()
        .copied()
        .filter(|&i| c.is_alive(i) && c.membership().contains(i))
        .collect();
    for i in at {
        // Expect first: a leader may decide its own proposal at once.
        let cmd = c.new_command();
        c.expect_decided(cmd.clone(), bound);
        c.propose(Some(i), cmd).expect("a running node");
    }
    if !c.run_until(start + bound + 1, |c| c.checkers().liveness.satisfied())? {
        c.check()?;
        unreachable!("an expectation past its deadline fails check()");
    }
    Ok(c.now() - start)
}

/// Runs until one leader leads and every running node follows it: a command
/// taken by a leader that is then deposed may be dropped (the node's
/// documented at-most-once semantics: clients retry), so probes propose
/// only then. A healthy cluster must get there within `bound`.
fn stable_leader<N: SimNode>(c: &mut PaxosCluster<N>, bound: u64) -> Result<(), Violation> {
    let deadline = c.now() + bound;
    let step = c.config().node.election_timeout;
    let mut rounds = 0;
    loop {
        // A membership change (one proposed before the calm) may have made
        // voters of crashed replicas: bring back enough for a majority.
        let voters = c.membership().voters.clone();
        for &v in &voters {
            let up = voters.iter().filter(|&&x| c.is_alive(x)).count();
            if up > voters.len() / 2 {
                break;
            }
            c.restart(v).expect("a valid node");
        }
        if rounds > 0 && c.membership().epoch > 0 {
            // Still no leader after a membership change: the running
            // replicas may not have the newest change yet, and the older
            // epoch's majority is down. Bring every replica back (a removed
            // one is retired only once the new voters have the change).
            // Without a change, a majority up must do (a cluster that needs
            // one particular replica is a bug the calm must catch).
            for i in down_nodes(c) {
                c.restart(i).expect("a valid node");
            }
        }
        rounds += 1;
        let stable = c.run_until(deadline.min(c.now() + step), |c| {
            let l = c.leader();
            let m = c.membership();
            l.is_some()
                && c.status()
                    .iter()
                    .all(|s| !s.alive || s.leader == l || !m.contains(s.id))
        })?;
        if stable {
            return Ok(());
        }
        if c.now() >= deadline {
            break;
        }
    }
    Err(Violation::new(
        ViolationKind::Liveness,
        c.now(),
        None,
        None,
        format!(
            "no leader that every running node follows within {bound} ns in a healthy \
             cluster: {:?}",
            c.status()
        ),
    )
    .with_seed(c.config().seed))
}

/// The crashed replicas that may restart (not the retired ones).
fn down_nodes<N: SimNode>(c: &PaxosCluster<N>) -> Vec<NodeId> {
    (0..c.len() as NodeId)
        .filter(|&i| !c.is_alive(i) && !c.is_retired(i))
        .collect()
}

/// One random membership change (or, one time in four, a leadership
/// transfer) at the leader, if there is one (a refusal, such as a change
/// already under way, is part of the game).
fn change_membership<N: SimNode>(c: &mut PaxosCluster<N>, rng: &mut SplitMix64) {
    let m = c.membership().clone();
    let pick = |rng: &mut SplitMix64, ids: &[NodeId]| ids[rng.below(ids.len() as u64) as usize];
    if rng.chance(250_000) {
        // Or a planned hand-over of the leadership.
        let _ = c.transfer_leadership(pick(rng, &m.voters));
        return;
    }
    let change = match rng.below(4) {
        0 if m.voters.len() + m.learners.len() < 7 => {
            let _ = c.add_learner();
            return;
        }
        1 if !m.learners.is_empty() => MembershipChange::Promote(pick(rng, &m.learners)),
        2 if m.voters.len() > 2 => MembershipChange::Remove(pick(rng, &m.voters)),
        3 if !m.learners.is_empty() => MembershipChange::Replace {
            old: pick(rng, &m.voters),
            new: pick(rng, &m.learners),
        },
        _ => return,
    };
    let _ = c.change_membership(change);
}

fn drive<N: SimNode>(
    c: &mut PaxosCluster<N>,
    seed: u64,
    plan: &FaultPlan,
) -> Result<RunReport, Violation> {
    let mut rng = SplitMix64::new(seed ^ 0x6661_756c_7473_2121);
    let mut reads = SplitMix64::new(seed ^ 0x7265_6164_696e_6478);
    let mut members = SplitMix64::new(seed ^ 0x6d65_6d62_6572_7321);
    let n = c.len();
    let weights = [
        plan.propose,
        plan.crash,
        plan.restart,
        plan.partition,
        plan.heal,
        plan.net_change,
        plan.calm,
    ];
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    // Some runs are storms (actions 4x as often), some are gentle (half).
    let mean_gap = (plan.mean_gap.max(4) / 4) * rng.between(1, 8);
    loop {
        let gap = rng.between(1, 2 * mean_gap);
        let t = c.now() + gap;
        if t > plan.duration {
            break;
        }
        c.run_until_time(t)?;
        if total == 0 {
            continue;
        }
        let mut pick = rng.below(total);
        let mut action = 0;
        while pick >= weights[action] as u64 {
            pick -= weights[action] as u64;
            action += 1;
        }
        match action {
            0 => {
                // Sometimes a burst, so batching and pipelining get exercised.
                let k = if rng.chance(100_000) {
                    rng.between(2, 20)
                } else {
                    1
                };
                for _ in 0..k {
                    if c.alive().is_empty() {
                        break;
                    }
                    c.propose_new(None).expect("a running node");
                }
                // And, from a generator of its own (every other draw stays
                // as it was), a ReadIndex read at the node that leads.
                if plan.reads && reads.chance(500_000) {
                    let leaders: Vec<_> = c
                        .status()
                        .iter()
                        .filter(|s| s.is_leader)
                        .map(|s| s.id)
                        .collect();
                    if let Some(&l) = leaders.get(reads.below(leaders.len().max(1) as u64) as usize)
                    {
                        c.read_index(l).expect("a node id");
                    }
                }
            }
            1 => {
                let alive = c.alive();
                if !alive.is_empty() {
                    let i = alive[rng.below(alive.len() as u64) as usize];
                    c.crash(i).expect("a valid node");
                }
            }
            2 => {
                let down = down_nodes(c);
                if !down.is_empty() {
                    let i = down[rng.below(down.len() as u64) as usize];
                    c.restart(i).expect("a valid node");
                }
            }
            3 => {
                if n > 1 {
                    let groups = random_groups(&mut rng, n);
                    c.partition(&groups).expect("valid groups");
                }
            }
            4 => c.heal(),
            5 => {
                let net = random_net(&mut rng, plan, c.config().node.election_timeout);
                c.set_net(net).expect("a valid network");
            }
            _ => {
                // A majority of the voters up.
                let voters = c.membership().voters.clone();
                let mut down: Vec<NodeId> =
                    voters.iter().copied().filter(|&i| !c.is_alive(i)).collect();
                while voters.len() - down.len() <= voters.len() / 2 {
                    let k = rng.below(down.len() as u64) as usize;
                    c.restart(down.swap_remove(k)).expect("a valid node");
                }
                let at = c.alive()[rng.below(c.alive().len() as u64) as usize];
                probe(c, &[at])?;
            }
        }
        if plan.membership && members.chance(25_000) {
            change_membership(c, &mut members);
        }
        c.check()?;
    }

    // Settle: every node up, every link back, no loss; then every node
    // proposes and every node must decide it all.
    for i in 0..c.len() as NodeId {
        c.restart(i).expect("a valid node");
    }
    let settle_time = probe(c, &(0..c.len() as NodeId).collect::<Vec<_>>())?;
    let final_log_len = c
        .alive()
        .into_iter()
        .map(|i| c.checkers().delivery.delivered(i))
        .min()
        .unwrap_or(0);
    Ok(RunReport {
        seed,
        n,
        stats: c.stats(),
        digest: c.digest(),
        end_time: c.now(),
        settle_time,
        final_log_len,
    })
}
