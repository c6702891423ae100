//! Simulated two-phase commit and Paxos Commit under crashes, loss,
//! duplication and reordering: thousands of seeded runs with zero
//! violations, replayable by seed, and the blocking comparison.
//!
//! Replay one run: `TXN_SIM_SEED=<seed> TXN_SIM_PROTOCOL=2pc|paxos-commit
//! cargo test --test txn_sim replay -- --exact --nocapture`.

use quorumkit::sim::txn::{Protocol, RunReport, blocking_scenario, random_run};

const RUNS: u64 = 1_000;
const PC: Protocol = Protocol::PaxosCommit { f: 1 };

fn many(protocol: Protocol, base: u64) {
    let mut totals = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut restarts = 0u64;
    for i in 0..RUNS {
        let seed = base.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let r: RunReport = random_run(protocol, seed);
        if let Some(v) = &r.violation {
            panic!(
                "{v}\nseed {seed} ({}); replay: TXN_SIM_SEED={seed} TXN_SIM_PROTOCOL={} \
                 cargo test --test txn_sim replay -- --exact --nocapture\n{r:?}",
                protocol.name(),
                protocol.name()
            );
        }
        totals.0 += r.committed;
        totals.1 += r.aborted;
        totals.2 += r.stats.crashes;
        restarts += r.stats.restarts;
        totals.3 += r.stats.net.lost;
        totals.4 += r.stats.net.duplicated;
        totals.5 += r.stats.net.sent;
    }
    println!(
        "{}: {RUNS} runs, {} committed, {} aborted, {} crashes, {restarts} restarts, \
         {} messages sent, {} lost, {} duplicated",
        protocol.name(),
        totals.0,
        totals.1,
        totals.2,
        totals.5,
        totals.3,
        totals.4
    );
    // The runs must exercise both outcomes and the faults, or they prove little.
    assert!(totals.0 > RUNS / 4 && totals.1 > RUNS / 4, "{totals:?}");
    assert!(
        totals.2 > RUNS && totals.3 > RUNS && totals.4 > RUNS,
        "{totals:?}"
    );
}

#[test]
fn two_phase_commit_keeps_atomicity_validity_and_terminates() {
    many(Protocol::TwoPhaseCommit, 0x2bc_0001);
}

#[test]
fn paxos_commit_keeps_atomicity_validity_agreement_and_terminates() {
    many(PC, 0x9c_0001);
}

#[test]
fn runs_replay_from_their_seed() {
    for p in [Protocol::TwoPhaseCommit, PC] {
        for seed in [1, 42, 0xdead_beef] {
            assert_eq!(random_run(p, seed), random_run(p, seed));
        }
        assert_ne!(random_run(p, 1).stats, random_run(p, 2).stats);
    }
}

#[test]
fn two_phase_commit_blocks_where_paxos_commit_decides() {
    let ten_seconds = 10_000_000_000;
    for seed in 0..20 {
        let two = blocking_scenario(Protocol::TwoPhaseCommit, seed, ten_seconds);
        assert_eq!(two.in_doubt, vec![1, 2, 3], "seed {seed}: {two:?}");
        assert!(two.outcomes.iter().all(|(_, o)| o.is_none()), "{two:?}");
        let pc = blocking_scenario(PC, seed, ten_seconds);
        assert!(pc.in_doubt.is_empty(), "seed {seed}: {pc:?}");
        assert!(
            pc.outcomes.iter().all(|(_, o)| *o == Some(true)),
            "seed {seed}: every participant voted yes, so Paxos Commit commits: {pc:?}"
        );
        assert_eq!(pc.stats.crashes, 2, "the coordinator and one acceptor");
    }
}

#[test]
fn paxos_commit_tolerates_f_acceptor_failures() {
    for f in 0..=2 {
        let r = blocking_scenario(Protocol::PaxosCommit { f }, 5, 10_000_000_000);
        assert!(r.in_doubt.is_empty(), "f = {f}: {r:?}");
        assert_eq!(r.stats.crashes, 1 + f as u64);
        assert!(r.outcomes.iter().all(|(_, o)| *o == Some(true)), "{r:?}");
    }
}

#[test]
fn replay() {
    let Ok(seed) = std::env::var("TXN_SIM_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("TXN_SIM_SEED is a u64");
    let protocol = match std::env::var("TXN_SIM_PROTOCOL").as_deref() {
        Ok("paxos-commit") => PC,
        _ => Protocol::TwoPhaseCommit,
    };
    let r = random_run(protocol, seed);
    println!("{r:#?}");
    assert!(r.violation.is_none());
}

#[test]
fn paxos_commit_needs_a_majority_of_acceptors() {
    use quorumkit::sim::txn::{CommitSim, SimConfig};
    // F + 1 = 2 of 3 acceptors down: no instance can be chosen, so the
    // participants wait (safely) — until one acceptor comes back.
    let mut sim = CommitSim::new(SimConfig::new(PC, 3), 9).unwrap();
    let acc = sim.acceptors();
    sim.crash(acc[0]).unwrap();
    sim.crash(acc[1]).unwrap();
    sim.crash_coordinator_after_votes(true);
    sim.begin(1, &[true, true, true]).unwrap();
    sim.run_for(5_000_000_000);
    assert_eq!(sim.in_doubt(1), vec![1, 2, 3]);
    sim.restart(acc[1]).unwrap();
    sim.run_for(5_000_000_000);
    assert!(sim.in_doubt(1).is_empty());
    assert!(
        sim.participants()
            .iter()
            .all(|p| sim.outcome(*p, 1) == Some(true))
    );
    sim.check().unwrap();
}
