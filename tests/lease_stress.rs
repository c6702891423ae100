//! Real threads on the monotonic clock: mutual exclusion under stress, the
//! fenced lock-set (zero lost updates with the fence; lost updates without
//! it), FIFO hand-off between blocked threads, the timer thread granting on
//! expiry, and the auto-renewing guard.
//!
//! Seeded: set `LEASE_SEED=<n>` to replay; the seed is printed on failure.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quorumkit::Error;
use quorumkit::lease::{Enqueued, Fence, LeaseConfig, LeaseTable, Mode, MonotonicClock};

mod common;
use common::Rng;

fn seed() -> u64 {
    let s = std::env::var("LEASE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    // Printed with the test's output when it fails.
    println!("LEASE_SEED={s}");
    s
}

fn table() -> LeaseTable {
    LeaseTable::new(MonotonicClock, LeaseConfig::default())
}

/// The independent checker: per resource, who is inside right now and the
/// tokens seen, updated by holders on entry and exit.
#[derive(Default)]
struct Occupancy {
    exclusive: u32,
    shared: u32,
    max_token: u64,
    max_exclusive_token: u64,
}

#[test]
fn mutual_exclusion_under_stress() {
    let seed = seed();
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 400;
    const RESOURCES: u64 = 4;
    let t = table();
    let occ: Arc<Vec<Mutex<Occupancy>>> =
        Arc::new((0..RESOURCES).map(|_| Mutex::default()).collect());
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|id| {
            let (t, occ, tokens, violations) =
                (t.clone(), occ.clone(), tokens.clone(), violations.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (id + 1).wrapping_mul(0x1234_5678_9abc_def1));
                let owner = format!("w{id}");
                let mut granted = 0;
                for _ in 0..ROUNDS {
                    let r = rng.below(RESOURCES);
                    let res = format!("res{r}");
                    let mode = if rng.below(3) == 0 {
                        Mode::Exclusive
                    } else {
                        Mode::Shared
                    };
                    let lease = match rng.below(4) {
                        0 => t.try_acquire(&res, &owner, Duration::from_secs(30), mode),
                        1 => t.acquire(
                            &res,
                            &owner,
                            Duration::from_secs(30),
                            mode,
                            Some(Duration::from_micros(200)),
                        ),
                        _ => t.acquire(&res, &owner, Duration::from_secs(30), mode, None),
                    };
                    let lease = match lease {
                        Ok(l) => l,
                        Err(Error::Busy { .. } | Error::Timeout { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    };
                    granted += 1;
                    tokens.lock().unwrap().push(lease.token);
                    {
                        let mut o = occ[r as usize].lock().unwrap();
                        let bad = match mode {
                            Mode::Exclusive => {
                                let bad =
                                    o.exclusive > 0 || o.shared > 0 || lease.token <= o.max_token;
                                o.exclusive += 1;
                                o.max_exclusive_token = lease.token;
                                bad
                            }
                            Mode::Shared => {
                                let bad = o.exclusive > 0 || lease.token <= o.max_exclusive_token;
                                o.shared += 1;
                                bad
                            }
                        };
                        o.max_token = o.max_token.max(lease.token);
                        if bad {
                            violations.lock().unwrap().push(format!(
                                "{res}: {mode:?} token {} entered with {} exclusive, {} shared",
                                lease.token, o.exclusive, o.shared
                            ));
                        }
                    }
                    if rng.below(4) == 0 {
                        std::thread::yield_now();
                    }
                    {
                        let mut o = occ[r as usize].lock().unwrap();
                        match mode {
                            Mode::Exclusive => o.exclusive -= 1,
                            Mode::Shared => o.shared -= 1,
                        }
                    }
                    t.release(&lease).unwrap();
                }
                granted
            })
        })
        .collect();
    let granted: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    let v = violations.lock().unwrap();
    assert!(v.is_empty(), "seed {seed}: {:?}", &v[..v.len().min(5)]);
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len() as u64, granted);
    assert_eq!(
        tokens.iter().collect::<HashSet<_>>().len(),
        tokens.len(),
        "seed {seed}: duplicate tokens"
    );
    assert!(
        granted > THREADS * ROUNDS / 2,
        "seed {seed}: only {granted} grants"
    );
    for r in 0..RESOURCES {
        assert!(t.holders(&format!("res{r}")).is_empty());
    }
}

/// A storage service that holds one counter. With a fence, every read and
/// write presents the caller's token and the check and the operation are
/// one atomic step (as a real storage service would do them).
struct Storage {
    value: Mutex<u64>,
    fence: Option<Fence>,
}

impl Storage {
    fn op(&self, token: u64, f: impl FnOnce(&mut u64)) -> Result<(), Error> {
        let mut v = self.value.lock().unwrap();
        if let Some(fence) = &self.fence {
            fence.check("counter", token)?;
        }
        f(&mut v);
        Ok(())
    }
}

/// Writers increment the counter under a lease; some pause after reading
/// until their lease expired and someone else wrote (a GC pause longer
/// than the TTL). Returns (final value, increments the writers believe
/// they made, writes the fence refused).
fn lock_set(seed: u64, fenced: bool) -> (u64, u64, u64) {
    const WRITERS: u64 = 4;
    const INCREMENTS: u64 = 25;
    let ttl = Duration::from_millis(5);
    let t = table();
    let storage = Arc::new(Storage {
        value: Mutex::new(0),
        fence: fenced.then(Fence::new),
    });
    let writes = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..WRITERS)
        .map(|id| {
            let (t, storage, writes) = (t.clone(), storage.clone(), writes.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (id + 7).wrapping_mul(0x9e37_79b9));
                let owner = format!("writer{id}");
                let (mut done, mut refused) = (0, 0);
                while done < INCREMENTS {
                    let lease = t
                        .acquire("counter", &owner, ttl, Mode::Exclusive, None)
                        .unwrap();
                    let mut seen = 0;
                    if storage.op(lease.token, |v| seen = *v).is_err() {
                        refused += 1;
                        let _ = t.release(&lease);
                        continue;
                    }
                    if rng.below(3) == 0 {
                        // The pause: past the TTL, until another write lands.
                        let start = Instant::now();
                        let base = writes.load(Ordering::SeqCst);
                        while start.elapsed() < ttl * 2
                            || (writes.load(Ordering::SeqCst) == base
                                && start.elapsed() < Duration::from_millis(100))
                        {
                            std::thread::sleep(Duration::from_micros(500));
                        }
                    }
                    match storage.op(lease.token, |v| *v = seen + 1) {
                        Ok(()) => {
                            done += 1;
                            writes.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(Error::StaleToken { .. }) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                    // Expired leases answer LeaseExpired or NotHolder: fine.
                    let _ = t.release(&lease);
                }
                (done, refused)
            })
        })
        .collect();
    let (mut done, mut refused) = (0, 0);
    for h in threads {
        let (d, r) = h.join().unwrap();
        done += d;
        refused += r;
    }
    let value = *storage.value.lock().unwrap();
    (value, done, refused)
}

#[test]
fn fenced_lock_set_loses_no_updates() {
    let seed = seed();
    let (value, done, refused) = lock_set(seed, true);
    assert_eq!(value, done, "seed {seed}: lost updates with the fence");
    assert!(
        refused > 0,
        "seed {seed}: no pause ever overlapped another writer"
    );
}

#[test]
fn unfenced_lock_set_loses_updates() {
    // The same test without the fence: the lease alone cannot protect a
    // holder that pauses past its TTL, and the test sees it.
    let seed = seed();
    let (value, done, _) = lock_set(seed, false);
    assert!(
        value < done,
        "seed {seed}: expected lost updates without the fence ({value} of {done})"
    );
}

#[test]
fn blocked_threads_are_served_fifo() {
    let t = table();
    let first = t
        .acquire(
            "r",
            "holder",
            Duration::from_secs(30),
            Mode::Exclusive,
            None,
        )
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = vec![];
    for i in 0..6 {
        let (t2, order) = (t.clone(), order.clone());
        threads.push(std::thread::spawn(move || {
            let mode = if i % 3 == 2 {
                Mode::Exclusive
            } else {
                Mode::Shared
            };
            let l = t2
                .acquire("r", &format!("t{i}"), Duration::from_secs(30), mode, None)
                .unwrap();
            order.lock().unwrap().push((i, l.token));
            std::thread::sleep(Duration::from_millis(2));
            t2.release(&l).unwrap();
        }));
        // Wait until this thread is queued, so arrival order is i.
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.queue_len("r") < i + 1 {
            assert!(Instant::now() < deadline, "thread {i} never queued");
            std::thread::yield_now();
        }
    }
    t.release(&first).unwrap();
    for h in threads {
        h.join().unwrap();
    }
    let order = order.lock().unwrap();
    // Tokens in arrival order: t0,t1 (shared run), t2 (exclusive), t3,t4, t5.
    let mut by_arrival = order.clone();
    by_arrival.sort_by_key(|&(i, _)| i);
    assert!(
        by_arrival.windows(2).all(|w| w[0].1 < w[1].1),
        "grants not FIFO: {by_arrival:?}"
    );
}

/// Free-running contention: 8 threads loop on one resource. Each joins the
/// queue while holding an arrival lock, so the arrival number it records is
/// its place in the queue; exclusive grants in FIFO order then carry tokens
/// that rise with the arrival number. Any overtaking shows up as a descent.
#[test]
fn contended_grants_follow_queue_order() {
    let seed = seed();
    let t = table();
    let arrival = Arc::new(Mutex::new(0u64));
    let grants = Arc::new(Mutex::new(Vec::new()));
    let ttl = Duration::from_secs(30);
    let mut threads = vec![];
    for i in 0..8u64 {
        let (t, arrival, grants) = (t.clone(), arrival.clone(), grants.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(seed ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let owner = format!("t{i}");
            for _ in 0..300 {
                let (seq, queued) = {
                    let mut n = arrival.lock().unwrap();
                    let q = t.enqueue("r", &owner, ttl, Mode::Exclusive, None).unwrap();
                    *n += 1;
                    (*n, q)
                };
                let lease = match queued {
                    Enqueued::Granted(l) => l,
                    Enqueued::Queued(mut ticket) => {
                        let deadline = Instant::now() + Duration::from_secs(20);
                        loop {
                            if let Some(l) = ticket.wait(Some(Duration::from_millis(100))).unwrap()
                            {
                                break l;
                            }
                            assert!(Instant::now() < deadline, "seed {seed}: never granted");
                        }
                    }
                };
                grants.lock().unwrap().push((seq, lease.token));
                if rng.below(4) == 0 {
                    std::thread::sleep(Duration::from_micros(rng.below(50)));
                }
                t.release(&lease).unwrap();
            }
        }));
    }
    for h in threads {
        h.join().unwrap();
    }
    let mut g = grants.lock().unwrap().clone();
    assert_eq!(g.len(), 8 * 300);
    g.sort_by_key(|&(seq, _)| seq);
    if let Some(w) = g.windows(2).find(|w| w[0].1 >= w[1].1) {
        panic!(
            "seed {seed}: arrival {} got token {} after arrival {} got {}",
            w[1].0, w[1].1, w[0].0, w[0].1
        );
    }
}

#[test]
fn timer_grants_at_expiry_and_times_out_waiters() {
    let t = table();
    let ttl = Duration::from_millis(30);
    let a = t.acquire("r", "a", ttl, Mode::Exclusive, None).unwrap();
    let start = Instant::now();
    // Nobody releases: the timer thread grants b at a's expiry.
    let b = t
        .acquire(
            "r",
            "b",
            ttl,
            Mode::Exclusive,
            Some(Duration::from_secs(10)),
        )
        .unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(25), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(b.token > a.token);
    assert!(b.expires_at > t.now_ns());
    // A waiter with a short timeout fails on time and leaves b alone.
    let start = Instant::now();
    let e = t
        .acquire(
            "r",
            "c",
            ttl,
            Mode::Exclusive,
            Some(Duration::from_millis(5)),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert_eq!(t.holders("r").first().map(|l| l.token), Some(b.token));
    // A ticket waited in slices keeps its place.
    let mut ticket = match t.enqueue("r", "d", ttl, Mode::Exclusive, None).unwrap() {
        Enqueued::Queued(ticket) => ticket,
        Enqueued::Granted(_) => panic!("granted while b holds it"),
    };
    let mut slices = 0;
    let d = loop {
        if let Some(l) = ticket.wait(Some(Duration::from_millis(2))).unwrap() {
            break l;
        }
        slices += 1;
    };
    assert!(slices >= 1 && d.token > b.token);
    t.release(&d).unwrap();
}

#[test]
fn guard_keeps_the_lease_then_loses_it_on_time() {
    let t = table();
    let ttl = Duration::from_millis(30);
    let g = t.lock("r", "a", ttl, Mode::Exclusive, None).unwrap();
    std::thread::sleep(ttl * 4);
    assert!(!g.is_lost(), "renewed in the background");
    assert!(g.renewals() >= 3, "{}", g.renewals());
    assert!(matches!(
        t.try_acquire("r", "b", ttl, Mode::Exclusive),
        Err(Error::Busy { .. })
    ));
    // Someone steals it (release by token, as a broken peer would):
    // the guard notices at its next renewal.
    let l = g.lease();
    t.release(&l).unwrap();
    assert!(g.wait_lost(Some(Duration::from_secs(5))));
    assert!(matches!(g.lost_reason(), Some(Error::NotHolder { .. })));
    drop(g);

    // Loss at the local deadline: a guard whose renewal period (ttl / 3 of
    // 600 ms) is later than the lease's real expiry (20 ms) cannot renew in
    // time; it reads as lost from the deadline on, and `wait_lost` wakes
    // within a millisecond or so of it.
    let lease = t
        .acquire("r2", "a", Duration::from_millis(20), Mode::Exclusive, None)
        .unwrap();
    let g = quorumkit::lease::LeaseGuard::new(&t, lease.clone(), Duration::from_millis(600));
    assert!(!g.is_lost());
    assert!(g.wait_lost(Some(Duration::from_secs(5))));
    let late_ns = t.now_ns() - lease.expires_at;
    assert!(t.now_ns() >= lease.expires_at);
    // 1 ms is the contract; allow scheduling noise on a loaded CI machine.
    assert!(late_ns < 5_000_000, "woke {late_ns} ns after the deadline");
    println!("wait_lost woke {late_ns} ns after the deadline");
    assert!(matches!(
        g.release(),
        Err(Error::LeaseExpired { .. } | Error::NotHolder { .. })
    ));
}
