//! The replicated lease service as real `quorumkit serve` processes on
//! loopback: clients contend for a lease while replicas are killed -9 and
//! paused; exclusive holders never overlap (each holder's interval runs
//! from its grant to the earlier of its release and its own view of the
//! expiry), fencing tokens rise in grant order, a fenced counter loses no
//! update; a crashed holder's lease passes on after its TTL and not before;
//! `quorumkit lock` runs a command under the lease and exits 3 when it loses it.
//!
//! QK_SEED=n reruns one fault schedule; the seed is printed on failure.
#![cfg(feature = "cli")]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quorumkit::lease::{Fence, Mode};
use quorumkit::rng::SplitMix64;
use quorumkit::service::LeaseClient;

const SECRET: &str = "service-test-secret-0123456";
const CLUSTER: u64 = 0x1ea5e;

mod serve_cluster;
use serve_cluster::proxy::LinkMode;
use serve_cluster::{Procs, rounds, seed, work_bound};

fn client(procs: &Procs) -> LeaseClient {
    LeaseClient::new(procs.client_config(Duration::from_secs(20))).unwrap()
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    token: u64,
    from: Instant,
    to: Instant,
}

#[test]
fn exclusive_holders_never_overlap_under_kills_and_pauses() {
    let seed = seed();
    eprintln!("seed {seed}");
    let procs = Procs::new(3, "excl", "lease", CLUSTER, SECRET);
    check_exclusive(procs, seed, rounds(5), |procs, rng, round| {
        let victim = 1 + rng.below(3) as u32;
        if rng.below(2) == 0 {
            eprintln!("round {round}: kill -9 replica {victim}");
            procs.kill9(victim);
            wait(300 + rng.below(500));
            procs.spawn(victim, false);
        } else {
            eprintln!("round {round}: SIGSTOP replica {victim}");
            procs.signal(victim, "-STOP");
            wait(700 + rng.below(800));
            procs.signal(victim, "-CONT");
        }
    });
}

/// The replica that says it leads.
fn leader(procs: &Procs) -> Option<u32> {
    let mut c =
        quorumkit::net::Client::new(procs.client_config(Duration::from_millis(300))).ok()?;
    procs
        .peers
        .iter()
        .find(|&(&id, &addr)| c.status_of(addr).is_ok_and(|s| s.leader == id))
        .map(|(&id, _)| id)
}

#[test]
fn exclusive_holders_never_overlap_under_partitions() {
    let seed = seed() ^ 0xabab;
    eprintln!("seed {seed}");
    let procs = Procs::with_proxies(3, "excl-part", "lease", CLUSTER, SECRET);
    check_exclusive(procs, seed, rounds(6), |procs, rng, round| {
        let l = leader(procs).unwrap_or(1);
        let others: Vec<u32> = (1..=3).filter(|&x| x != l).collect();
        match rng.below(4) {
            0 => {
                eprintln!("round {round}: leader {l} cut off");
                procs.set_between(&[l], &others, LinkMode::Cut);
            }
            1 => {
                eprintln!("round {round}: bridge: link {l}-{} cut", others[0]);
                procs.set_between(&[l], &others[..1], LinkMode::Cut);
            }
            2 => {
                eprintln!("round {round}: links from leader {l} black-hole their bytes");
                procs.set_between(&[l], &others, LinkMode::Drop);
            }
            _ => {
                let ms = 5 + rng.below(40);
                eprintln!("round {round}: every link delayed {ms} ms");
                for link in procs.links.values() {
                    link.set_delay(ms);
                }
            }
        }
        wait(700 + rng.below(800));
        procs.heal();
    });
}

fn wait(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Four clients contend for one lease while `fault` runs `rounds` times;
/// then holds never overlap, tokens rise and the fenced counter is whole.
fn check_exclusive(
    mut procs: Procs,
    seed: u64,
    rounds: usize,
    mut fault: impl FnMut(&mut Procs, &mut SplitMix64, usize),
) {
    let mut rng = SplitMix64::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let holds = Arc::new(Mutex::new(Vec::<Hold>::new()));
    let fence = Arc::new(Fence::new());
    // The protected resource: a counter that only fenced writes reach.
    let counter = Arc::new(Mutex::new(0u64));
    let fenced_writes = Arc::new(Mutex::new(0u64));
    let mut workers = Vec::new();
    for w in 0..4 {
        let client = client(&procs);
        let (stop, holds, fence, counter, fenced_writes) = (
            stop.clone(),
            holds.clone(),
            fence.clone(),
            counter.clone(),
            fenced_writes.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let owner = format!("worker-{w}");
            let deadline = Instant::now() + work_bound(rounds);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok(lease) = client.acquire(
                    "res",
                    &owner,
                    Duration::from_millis(800),
                    Mode::Exclusive,
                    Some(Duration::from_secs(5)),
                ) else {
                    continue;
                };
                let from = Instant::now();
                // Read-modify-write through the fence, slowly enough to be interleaved.
                let seen = *counter.lock().unwrap();
                std::thread::sleep(Duration::from_millis(2));
                if lease.is_valid() && fence.check("res", lease.lease.token).is_ok() {
                    let mut c = counter.lock().unwrap();
                    if *c == seen {
                        *c += 1;
                    }
                    *fenced_writes.lock().unwrap() += 1;
                }
                let to = Instant::now().min(lease.valid_until);
                if lease.is_valid() {
                    holds.lock().unwrap().push(Hold {
                        token: lease.lease.token,
                        from,
                        to,
                    });
                }
                let _ = client.release(&lease);
            }
        }));
    }
    wait(800);
    for round in 0..rounds {
        fault(&mut procs, &mut rng, round);
        wait(500 + rng.below(500));
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let mut holds = holds.lock().unwrap().clone();
    assert!(holds.len() > 20, "seed {seed}: only {} holds", holds.len());
    holds.sort_by_key(|h| h.token);
    for w in holds.windows(2) {
        assert!(
            w[0].token < w[1].token,
            "seed {seed}: token {} granted twice",
            w[1].token
        );
        // In token order, each hold ends before the next begins.
        assert!(
            w[0].to <= w[1].from,
            "seed {seed}: holds {:?} and {:?} overlap",
            w[0],
            w[1]
        );
    }
    let (c, f) = (*counter.lock().unwrap(), *fenced_writes.lock().unwrap());
    assert_eq!(c, f, "seed {seed}: the fenced counter lost an update");
    eprintln!(
        "seed {seed}: {} holds, tokens up to {}",
        holds.len(),
        holds.last().unwrap().token
    );
}

#[test]
fn a_crashed_holders_lease_passes_on_after_its_ttl_and_lock_reports_loss() {
    let mut procs = Procs::new(3, "crash", "lease", CLUSTER, SECRET);
    let exe = env!("CARGO_BIN_EXE_quorumkit");
    let peers = procs.peer_list();
    let lock = |ttl: &str, script: &str| {
        Command::new(exe)
            .args(["lock", "job", "--ttl", ttl, "--peers", &peers])
            .args([
                "--cluster-id",
                &CLUSTER.to_string(),
                "--",
                "sh",
                "-c",
                script,
            ])
            .env("QK_CLUSTER_SECRET", SECRET)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A lock whose command finishes: its exit code, and the token in the environment.
    let out = lock("2s", "echo $QK_FENCING_TOKEN; exit 7")
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let first: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // kill -9 a `quorumkit lock` that holds the lease: the next waiter gets it after the TTL.
    let mut holder = lock("1500ms", "echo held; sleep 30");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    let _ = holder.kill();
    let _ = holder.wait();
    let killed_at = Instant::now();
    let client = client(&procs);
    let next = client
        .acquire(
            "job",
            "next",
            Duration::from_secs(5),
            Mode::Exclusive,
            Some(Duration::from_secs(10)),
        )
        .unwrap();
    let waited = killed_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "granted {waited:?} after the holder died: before its TTL"
    );
    assert!(
        waited < Duration::from_secs(6),
        "granted only after {waited:?}"
    );
    assert!(next.lease.token > first + 1);
    client.release(&next).unwrap();
    // `quorumkit lock` whose cluster disappears: the lease is lost, the command stopped, exit 3.
    let mut held = lock("1s", "echo held; sleep 30");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(held.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    for id in 1..=3 {
        procs.kill9(id);
    }
    let t = Instant::now();
    let status = held.wait().unwrap();
    assert_eq!(status.code(), Some(3), "after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// The control: the same read-modify-write by holders of real leases
/// whose TTL runs out mid-write. Unfenced, a stale holder overwrites a
/// newer holder's update (updates are lost); through the fence, whose
/// check is part of the store's read and write, none is.
#[test]
fn unfenced_control_loses_updates_that_the_fence_keeps() {
    let procs = Procs::new(3, "control", "lease", CLUSTER, SECRET);
    // (unfenced value, its writes, fenced value, its writes)
    let store = Arc::new(Mutex::new((0u64, 0u64, 0u64, 0u64)));
    let fence = Arc::new(Fence::new());
    let stop = Instant::now() + Duration::from_secs(4);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (client, store, fence) = (client(&procs), store.clone(), fence.clone());
            std::thread::spawn(move || {
                let owner = format!("control-{w}");
                let mut n = w;
                while Instant::now() < stop {
                    let Ok(lease) = client.acquire(
                        "ctl",
                        &owner,
                        Duration::from_millis(60),
                        Mode::Exclusive,
                        Some(Duration::from_secs(5)),
                    ) else {
                        continue;
                    };
                    let token = lease.lease.token;
                    let (seen_u, seen_f) = {
                        let s = store.lock().unwrap();
                        let f = fence.check("ctl", token).is_ok().then_some(s.2);
                        (s.0, f)
                    };
                    // Every other hold outlives its lease (another holder is
                    // granted meanwhile); the rest finish in time.
                    n += 1;
                    std::thread::sleep(Duration::from_millis(if n % 2 == 0 { 120 } else { 5 }));
                    let mut s = store.lock().unwrap();
                    s.0 = seen_u + 1;
                    s.1 += 1;
                    if let Some(f) = seen_f
                        && fence.check("ctl", token).is_ok()
                    {
                        s.2 = f + 1;
                        s.3 += 1;
                    }
                    drop(s);
                    let _ = client.release(&lease);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = *store.lock().unwrap();
    eprintln!(
        "unfenced: {} after {} writes; fenced: {} after {} writes",
        s.0, s.1, s.2, s.3
    );
    assert!(s.1 > 10, "too few writes: {s:?}");
    assert!(s.0 < s.1, "the unfenced control lost no update: {s:?}");
    assert_eq!(s.2, s.3, "the fenced store lost an update: {s:?}");
    assert!(s.3 > 0, "no fenced write succeeded: {s:?}");
    drop(procs);
}
