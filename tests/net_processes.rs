//! Real `quorumkit serve` processes on loopback, under faults: kill -9 of
//! the leader and of random replicas, SIGSTOP/SIGCONT (a leader paused past
//! its lease), the whole cluster killed and restarted from disk. Clients
//! add 1 to a counter; the history must be linearizable (an add that ended
//! before another began got the smaller value), no add may be applied twice
//! or lost, and every acknowledged write must survive.
//!
//! The fault schedule comes from a seed: QK_SEED=n reruns one; the seed is
//! printed when a check fails.
#![cfg(feature = "cli")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quorumkit::net::{Client, kv};
use quorumkit::rng::SplitMix64;

const SECRET: &str = "processes-test-secret-0123";
const CLUSTER: u64 = 0x9e;

mod serve_cluster;
use serve_cluster::proxy::LinkMode;
use serve_cluster::{Procs, rounds, seed, work_bound};

fn client(procs: &Procs, timeout: Duration) -> Client {
    Client::new(procs.client_config(timeout)).unwrap()
}

/// The replica that says it leads (asked over the network).
fn leader(procs: &Procs) -> Option<u32> {
    let mut c = client(procs, Duration::from_millis(300));
    for (&id, &addr) in &procs.peers {
        if let Ok(s) = c.status_of(addr)
            && s.leader == id
        {
            return Some(id);
        }
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct Op {
    start: Instant,
    end: Instant,
    value: i64,
}

/// Reads of the counter must fit the adds: a read of `v` ended after every
/// add of a value <= v began, began before every add of a larger value
/// ended, and reads never go back in real time.
fn check_reads(adds: &[Op], reads: &[Op]) -> Result<(), String> {
    for r in reads {
        for a in adds {
            if a.value <= r.value && a.start > r.end {
                return Err(format!(
                    "a read of {} ended before the add of {} began",
                    r.value, a.value
                ));
            }
            if a.value > r.value && a.end < r.start {
                return Err(format!(
                    "a read of {} began after the add of {} had ended",
                    r.value, a.value
                ));
            }
        }
    }
    for r1 in reads {
        for r2 in reads {
            if r1.end < r2.start && r1.value > r2.value {
                return Err(format!(
                    "a read of {} followed a read of {}: time went back",
                    r2.value, r1.value
                ));
            }
        }
    }
    Ok(())
}

/// A fetch-and-add history is linearizable iff no add that ended before
/// another began got a larger value (values are distinct: checked first).
fn check_counter(ops: &mut [Op]) -> Result<(), String> {
    ops.sort_by_key(|o| o.value);
    for w in ops.windows(2) {
        if w[0].value == w[1].value {
            return Err(format!(
                "value {} was returned twice: an add applied twice or lost",
                w[0].value
            ));
        }
    }
    let mut min_end_above: Option<Instant> = None;
    for o in ops.iter().rev() {
        if let Some(e) = min_end_above
            && e < o.start
        {
            return Err(format!(
                "an add that ended before the add of {} began got a larger value",
                o.value
            ));
        }
        min_end_above = Some(min_end_above.map_or(o.end, |e| e.min(o.end)));
    }
    Ok(())
}

#[test]
fn the_checker_catches_bad_histories() {
    let t0 = Instant::now();
    let at = |s: u64, e: u64, v: i64| Op {
        start: t0 + Duration::from_millis(s),
        end: t0 + Duration::from_millis(e),
        value: v,
    };
    assert!(check_counter(&mut [at(0, 5, 1), at(3, 9, 2), at(10, 12, 3)]).is_ok());
    assert!(check_counter(&mut [at(0, 5, 1), at(3, 9, 3), at(1, 2, 2)]).is_ok()); // overlapping: any order
    assert!(check_counter(&mut [at(0, 5, 2), at(6, 9, 1)]).is_err()); // a stale read of the counter
    assert!(check_counter(&mut [at(0, 5, 1), at(6, 9, 1)]).is_err()); // applied twice / lost update
    let adds = [at(0, 5, 1), at(6, 9, 2)];
    assert!(
        check_reads(
            &adds,
            &[at(5, 6, 1), at(7, 8, 1), at(7, 8, 2), at(10, 11, 2)]
        )
        .is_ok()
    );
    assert!(check_reads(&adds, &[at(10, 11, 1)]).is_err()); // stale: add 2 had ended
    assert!(check_reads(&adds, &[at(1, 2, 2)]).is_err()); // from the future: add 2 not begun
    assert!(check_reads(&adds, &[at(6, 7, 2), at(8, 9, 1)]).is_err()); // went back
}

fn run_under_faults(n: u32, name: &str, seed: u64, fault_rounds: usize) {
    let mut procs = Procs::new(n, name, "kv", CLUSTER, SECRET);
    let mut rng = SplitMix64::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (mut c, stop) = (client(&procs, Duration::from_secs(20)), stop.clone());
        workers.push(std::thread::spawn(move || {
            let (mut ok, mut unknown) = (Vec::new(), 0u64);
            let deadline = Instant::now() + work_bound(fault_rounds);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let start = Instant::now();
                match c.propose(&kv::add(b"counter", 1)) {
                    Ok(r) => ok.push(Op {
                        start,
                        end: Instant::now(),
                        value: kv::decode_i64(&r).unwrap(),
                    }),
                    Err(_) => unknown += 1,
                }
            }
            (ok, unknown)
        }));
    }
    let wait = |ms: u64| std::thread::sleep(Duration::from_millis(ms));
    wait(500);
    for round in 0..fault_rounds {
        let leader = leader(&procs);
        let victim = match (rng.below(2), leader) {
            (0, Some(l)) => l,
            _ => 1 + rng.below(u64::from(n)) as u32,
        };
        match rng.below(3) {
            0 => {
                eprintln!("round {round}: kill -9 replica {victim} (leader {leader:?})");
                procs.kill9(victim);
                wait(300 + rng.below(700));
                procs.spawn(victim, false);
            }
            1 => {
                // Paused well past its lease (10 heartbeats of 20 ms), then resumed.
                eprintln!("round {round}: SIGSTOP replica {victim} (leader {leader:?})");
                procs.signal(victim, "-STOP");
                wait(600 + rng.below(900));
                procs.signal(victim, "-CONT");
            }
            _ => {
                eprintln!("round {round}: kill -9 every replica, restart from disk");
                for id in 1..=n {
                    procs.kill9(id);
                }
                wait(100);
                for id in 1..=n {
                    procs.spawn(id, false);
                }
            }
        }
        wait(400 + rng.below(600));
    }
    wait(500);
    stop.store(true, Ordering::SeqCst);
    let mut ops = Vec::new();
    let mut unknown = 0;
    for w in workers {
        let (o, u) = w.join().unwrap();
        ops.extend(o);
        unknown += u;
    }
    let acked = ops.len() as i64;
    assert!(acked > 20, "seed {seed}: only {acked} adds succeeded");
    if let Err(e) = check_counter(&mut ops) {
        panic!("seed {seed}: {e}");
    }
    // Every acknowledged add is in the final value; an add whose outcome
    // was unknown may or may not be.
    let mut c = client(&procs, Duration::from_secs(20));
    let final_value =
        kv::decode_i64(&kv::decode_previous(&c.read(&kv::get(b"counter")).unwrap()).unwrap())
            .unwrap();
    let top = ops.iter().map(|o| o.value).max().unwrap();
    assert!(
        final_value >= top && final_value <= acked + unknown as i64,
        "seed {seed}: final {final_value}, largest acknowledged {top}, {acked} acknowledged, {unknown} unknown"
    );
    eprintln!(
        "seed {seed}: {acked} adds acknowledged, {unknown} unknown, final value {final_value}"
    );
}

#[test]
fn three_replicas_under_kills_pauses_and_restarts() {
    let seed = seed();
    eprintln!("seed {seed}");
    run_under_faults(3, "three", seed, rounds(6));
}

#[test]
fn five_replicas_under_kills_pauses_and_restarts() {
    let seed = seed() ^ 0x5555;
    eprintln!("seed {seed}");
    run_under_faults(5, "five", seed, rounds(5));
}

/// The same counter through proxies on every replica link: partitions
/// that isolate the leader, cut a minority or a majority, a bridge (one
/// link cut, the rest whole), links that black-hole their bytes, and
/// slow links. Adds and reads must stay linearizable.
fn run_under_partitions(n: u32, name: &str, seed: u64, fault_rounds: usize) {
    let procs = Procs::with_proxies(n, name, "kv", CLUSTER, SECRET);
    let mut rng = SplitMix64::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (mut c, stop) = (client(&procs, Duration::from_secs(20)), stop.clone());
        workers.push(std::thread::spawn(move || {
            let (mut adds, mut reads, mut unknown) = (Vec::new(), Vec::new(), 0u64);
            let deadline = Instant::now() + work_bound(fault_rounds);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let start = Instant::now();
                // Worker 0 reads; the others add.
                let r = if w == 0 {
                    c.read(&kv::get(b"counter"))
                        .map(|r| kv::decode_previous(&r).map_or(0, |v| kv::decode_i64(&v).unwrap()))
                } else {
                    c.propose(&kv::add(b"counter", 1))
                        .map(|r| kv::decode_i64(&r).unwrap())
                };
                match r {
                    Ok(value) => {
                        let op = Op {
                            start,
                            end: Instant::now(),
                            value,
                        };
                        if w == 0 {
                            reads.push(op)
                        } else {
                            adds.push(op)
                        }
                    }
                    Err(_) => unknown += u64::from(w != 0),
                }
            }
            (adds, reads, unknown)
        }));
    }
    let wait = |ms: u64| std::thread::sleep(Duration::from_millis(ms));
    let all: Vec<u32> = (1..=n).collect();
    wait(500);
    let mut faults = 0;
    for round in 0..fault_rounds {
        let leader = leader(&procs).unwrap_or(1);
        let others: Vec<u32> = all.iter().copied().filter(|&x| x != leader).collect();
        match rng.below(5) {
            0 => {
                eprintln!("round {round}: leader {leader} cut off from {others:?}");
                procs.set_between(&[leader], &others, LinkMode::Cut);
            }
            1 => {
                // A minority against a majority; the leader on either side.
                let k = (n as usize - 1) / 2;
                let side: Vec<u32> = if rng.below(2) == 0 {
                    std::iter::once(leader)
                        .chain(others[..k - 1].iter().copied())
                        .collect()
                } else {
                    others[..k].to_vec()
                };
                let rest: Vec<u32> = all.iter().copied().filter(|x| !side.contains(x)).collect();
                eprintln!(
                    "round {round}: partition minority {side:?} | {rest:?} (leader {leader})"
                );
                procs.set_between(&side, &rest, LinkMode::Cut);
            }
            2 => {
                let (a, b) = (others[0], others[others.len() - 1]);
                let c = if a == b { leader } else { a };
                eprintln!("round {round}: bridge: link {leader}-{c} cut, the rest whole");
                procs.set_between(&[leader], &[c], LinkMode::Cut);
            }
            3 => {
                eprintln!("round {round}: links from leader {leader} black-hole their bytes");
                procs.set_between(&[leader], &others, LinkMode::Drop);
            }
            _ => {
                let ms = 5 + rng.below(40);
                eprintln!("round {round}: every link delayed {ms} ms");
                for l in procs.links.values() {
                    l.set_delay(ms);
                }
            }
        }
        faults += 1;
        wait(700 + rng.below(800));
        procs.heal();
        wait(400 + rng.below(600));
    }
    wait(500);
    stop.store(true, Ordering::SeqCst);
    let (mut adds, mut reads, mut unknown) = (Vec::new(), Vec::new(), 0);
    for w in workers {
        let (a, r, u) = w.join().unwrap();
        adds.extend(a);
        reads.extend(r);
        unknown += u;
    }
    let acked = adds.len() as i64;
    assert!(acked > 20, "seed {seed}: only {acked} adds succeeded");
    assert!(
        reads.len() > 5,
        "seed {seed}: only {} reads succeeded",
        reads.len()
    );
    if let Err(e) = check_counter(&mut adds).and_then(|()| check_reads(&adds, &reads)) {
        panic!("seed {seed}: {e}");
    }
    let mut c = client(&procs, Duration::from_secs(20));
    let final_value =
        kv::decode_i64(&kv::decode_previous(&c.read(&kv::get(b"counter")).unwrap()).unwrap())
            .unwrap();
    let top = adds.iter().map(|o| o.value).max().unwrap();
    assert!(
        final_value >= top && final_value <= acked + unknown as i64,
        "seed {seed}: final {final_value}, largest acknowledged {top}, {acked} acknowledged, {unknown} unknown"
    );
    eprintln!(
        "seed {seed}: {faults} partition faults; {acked} adds and {} reads checked, {unknown} adds unknown, final value {final_value}",
        reads.len()
    );
    procs.heal();
}

#[test]
fn three_replicas_under_partitions() {
    let seed = seed() ^ 0x3333;
    eprintln!("seed {seed}");
    run_under_partitions(3, "part3", seed, rounds(6));
}

#[test]
fn five_replicas_under_partitions() {
    let seed = seed() ^ 0x7777;
    eprintln!("seed {seed}");
    run_under_partitions(5, "part5", seed, rounds(5));
}
