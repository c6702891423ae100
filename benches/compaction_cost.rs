//! What log compaction costs a Multi-Paxos cluster's decisions, measured
//! in pairs so that the machine's noise cancels out.
//!
//! The `paxos` criterion bench runs "decisions unbatched" with compaction
//! off and on one after the other; on a shared machine the load changes
//! between the two by as much as the cost being measured (±10 % or more).
//! Here each pair runs the same work twice, back to back, once without
//! compaction and once with each node compacting every 1,000 slots (a
//! 4 KiB snapshot), in an order that alternates from pair to pair; the
//! figure is the median of the pairs' ratios, with a 95 % confidence
//! interval from the order statistics (a sign-test interval: it assumes
//! nothing about how the noise is distributed).
//!
//! Two settings:
//! - `MemoryStorage`, a 4 KiB snapshot: the protocol's own cost (dropping
//!   slots, the snapshot record). Time is the benchmark thread's CPU time,
//!   as in the `paxos` bench. A run is `QK_ROUNDS` rounds (default 100) of
//!   256 one-command slots on a fresh three-replica cluster (built
//!   untimed); `QK_PAIRS` pairs (default 40).
//! - `FileStorage` record files in `QK_BENCH_DIR` (default: the temp
//!   directory), every node syncing each step, with a `QK_SNAPSHOT_BYTES`
//!   snapshot (default 1 MiB) written in the background as a replica's
//!   are: wall time and the process's CPU time (the checkpoint threads
//!   included), closing the files (which waits for a checkpoint still
//!   being written) inside the timed region. `QK_FILE_ROUNDS` rounds
//!   (default 10) per run, `QK_FILE_PAIRS` pairs (default 12; 0 skips it).
//!
//! Both compact every `QK_COMPACT_EVERY` slots (default 1,000).
//!
//! `cargo bench --bench compaction_cost`.

use std::time::{Duration, Instant};

mod support;
use support::{Cluster, Transport, process_cpu, timed_rounds};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// One run's CPU time, compacting every `every` slots (0: never).
fn run(rounds: u64, every: u64, cmds: &[Vec<u8>]) -> Duration {
    timed_rounds(rounds, cmds, rounds + 1, || {
        if every == 0 {
            Cluster::new(1, 64, Transport::Bytes)
        } else {
            Cluster::compacting(1, 64, every)
        }
    })
}

/// The 1-based rank `k` such that `[x_(k), x_(n+1-k)]` of `n` sorted
/// samples holds their median with at least 95 % confidence: the largest
/// `k` with P(Binomial(n, 1/2) < k) ≤ 2.5 %.
fn sign_test_rank(n: usize) -> usize {
    let mut below = 0.0; // P(B < k), for k = 1, 2, ...
    let mut p_k = 0.5f64.powi(n as i32); // P(B = k - 1)
    let mut k = 0;
    while k < n / 2 {
        if below + p_k > 0.025 {
            break;
        }
        below += p_k;
        // P(B = k) from P(B = k - 1).
        p_k *= (n - k) as f64 / (k + 1) as f64;
        k += 1;
    }
    k.max(1)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Prints the median of the pairs' on/off ratios and its interval, and
/// whether the 10 % goal is shown.
fn report(what: &str, per_run: u64, off: &[f64], on: &[f64]) {
    let pairs = off.len();
    let mut ratios: Vec<f64> = on.iter().zip(off).map(|(b, a)| b / a).collect();
    let (mut off, mut on) = (off.to_vec(), on.to_vec());
    for v in [&mut off, &mut on, &mut ratios] {
        v.sort_by(f64::total_cmp);
    }
    let k = sign_test_rank(pairs);
    let (lo, hi) = (ratios[k - 1], ratios[pairs - k]);
    let rate = |secs: f64| per_run as f64 / secs;
    println!("{what}:");
    println!(
        "  off: median {:.1} ms per run, {:.0} decisions/s",
        median(&off) * 1e3,
        rate(median(&off))
    );
    println!(
        "  on:  median {:.1} ms per run, {:.0} decisions/s",
        median(&on) * 1e3,
        rate(median(&on))
    );
    // Below 6 pairs even the extreme ratios do not bound the median with
    // 95 % confidence (P(all on one side) = 2 / 2^n > 5 %).
    let interval = if pairs >= 6 {
        "95 % interval"
    } else {
        "range (too few pairs for a 95 % interval)"
    };
    println!(
        "  on/off per pair: median {:+.1} %, {interval} [{:+.1} %, {:+.1} %] (ranks {k} and {} of {pairs})",
        (median(&ratios) - 1.0) * 100.0,
        (lo - 1.0) * 100.0,
        (hi - 1.0) * 100.0,
        pairs + 1 - k
    );
    println!(
        "  goal (cost <= 10 %): {}",
        if pairs < 6 {
            "not shown (too few pairs)"
        } else if hi <= 1.10 {
            "met (the whole interval is at or below +10 %)"
        } else if lo > 1.10 {
            "missed (the whole interval is above +10 %)"
        } else {
            "not shown (the interval straddles +10 %; run more pairs on a quieter machine)"
        }
    );
}

/// One run on record files: wall time and process CPU time, closing the
/// files included.
fn file_run(
    dir: &std::path::Path,
    rounds: u64,
    every: u64,
    snapshot: usize,
    cmds: &[Vec<u8>],
) -> (f64, f64) {
    let mut cluster = Cluster::on_files(dir, every, snapshot);
    let (wall, cpu) = (Instant::now(), process_cpu());
    for _ in 0..rounds {
        cluster.decide(cmds);
    }
    drop(cluster);
    (
        wall.elapsed().as_secs_f64(),
        (process_cpu() - cpu).as_secs_f64(),
    )
}

fn main() {
    // The binomial tables: n = 20, P(B <= 5) = 0.0207 and P(B <= 6) =
    // 0.0577; n = 40, P(B <= 13) = 0.0192 and P(B <= 14) = 0.0403.
    assert_eq!((sign_test_rank(20), sign_test_rank(40)), (6, 14));
    let pairs = env_or("QK_PAIRS", 40) as usize;
    let rounds = env_or("QK_ROUNDS", 100);
    let every = env_or("QK_COMPACT_EVERY", 1000);
    let cmds: Vec<Vec<u8>> = (0..256u32).map(|i| i.to_le_bytes().to_vec()).collect();

    // One untimed pair first: page faults and lazy allocations land there.
    run(rounds, 0, &cmds);
    run(rounds, every, &cmds);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for p in 0..pairs {
        let (a, b) = if p % 2 == 0 {
            let a = run(rounds, 0, &cmds);
            (a, run(rounds, every, &cmds))
        } else {
            let b = run(rounds, every, &cmds);
            (run(rounds, 0, &cmds), b)
        };
        off.push(a.as_secs_f64());
        on.push(b.as_secs_f64());
    }
    let per_run = rounds * cmds.len() as u64;
    report(
        &format!(
            "MemoryStorage, {pairs} pairs of {per_run} unbatched decisions (3 replicas, encoded; \
             compaction every {every} slots, 4 KiB snapshot), thread CPU time"
        ),
        per_run,
        &off,
        &on,
    );

    let file_pairs = std::env::var("QK_FILE_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12usize);
    if file_pairs == 0 {
        return;
    }
    let rounds = env_or("QK_FILE_ROUNDS", 10);
    let snapshot = env_or("QK_SNAPSHOT_BYTES", 1 << 20) as usize;
    let base = std::env::var_os("QK_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("quorumkit-compaction-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    file_run(&dir, 1, every, snapshot, &cmds);
    let (mut off_wall, mut on_wall, mut off_cpu, mut on_cpu) = (vec![], vec![], vec![], vec![]);
    for p in 0..file_pairs {
        let (a, b) = if p % 2 == 0 {
            let a = file_run(&dir, rounds, 0, snapshot, &cmds);
            (a, file_run(&dir, rounds, every, snapshot, &cmds))
        } else {
            let b = file_run(&dir, rounds, every, snapshot, &cmds);
            (file_run(&dir, rounds, 0, snapshot, &cmds), b)
        };
        off_wall.push(a.0);
        on_wall.push(b.0);
        off_cpu.push(a.1);
        on_cpu.push(b.1);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let per_run = rounds * cmds.len() as u64;
    let what = format!(
        "FileStorage in {}, {file_pairs} pairs of {per_run} unbatched decisions (every node syncs \
         each step; compaction every {every} slots, a {} KiB snapshot written in the background)",
        base.display(),
        snapshot >> 10
    );
    report(&format!("{what}, wall time"), per_run, &off_wall, &on_wall);
    report(
        &format!("{what}, process CPU time"),
        per_run,
        &off_cpu,
        &on_cpu,
    );
}
