//! Lease benchmarks: uncontended acquire+release on one core — the pure
//! state machine and the thread-safe table separately — the fence check,
//! the release-to-waiter hand-off between two blocked threads, and 8
//! threads contending for one resource (the issue-11 case).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quorumkit::lease::{
    AcquireOutcome, AcquireRequest, Fence, LeaseConfig, LeaseMachine, LeaseTable, ManualClock,
    Mode, MonotonicClock,
};

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lease_uncontended");
    g.throughput(Throughput::Elements(1));

    for (name, all_events) in [
        ("machine acquire+release (waiter events only)", false),
        ("machine acquire+release (all events)", true),
    ] {
        let mut m = LeaseMachine::new(LeaseConfig::default());
        m.record_all_events(all_events);
        let mut now = 1u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 1;
                let req = AcquireRequest {
                    resource: "job",
                    owner: "worker-1",
                    ttl_ns: 10_000_000_000,
                    mode: Mode::Exclusive,
                    wait: false,
                    deadline: None,
                };
                let AcquireOutcome::Granted(l) = m.acquire(now, black_box(req)).unwrap() else {
                    panic!("busy")
                };
                m.release(now, "job", "worker-1", l.token).unwrap();
                m.drain_events().for_each(drop);
            })
        });
    }

    let clock = ManualClock::new(1);
    let t = LeaseTable::new(&clock, LeaseConfig::default());
    g.bench_function("table try_acquire+release (manual clock)", |b| {
        b.iter(|| {
            let l = t
                .try_acquire(
                    black_box("job"),
                    "worker-1",
                    Duration::from_secs(10),
                    Mode::Exclusive,
                )
                .unwrap();
            t.release(&l).unwrap();
        })
    });

    let t = LeaseTable::new(MonotonicClock, LeaseConfig::default());
    g.bench_function("table acquire+release (monotonic clock)", |b| {
        b.iter(|| {
            let l = t
                .acquire(
                    black_box("job"),
                    "worker-1",
                    Duration::from_secs(10),
                    Mode::Exclusive,
                    None,
                )
                .unwrap();
            t.release(&l).unwrap();
        })
    });

    let f = Fence::new();
    let mut token = 0;
    g.bench_function("fence check", |b| {
        b.iter(|| {
            token += 1;
            f.check(black_box("db"), token).unwrap();
        })
    });

    // Baseline in the same run: an uncontended std Mutex lock+unlock.
    let mutex = std::sync::Mutex::new(0u64);
    g.bench_function("baseline std Mutex lock+unlock", |b| {
        b.iter(|| *black_box(&mutex).lock().unwrap() += 1)
    });
    g.finish();
}

/// Hand-off latency: a thread blocked in `acquire` is granted when the
/// holder releases; measured from just before `release` to just after the
/// waiter's `acquire` returns. Returns the latencies of `n` hand-offs.
fn handoffs(t: &LeaseTable, n: u64) -> Vec<Duration> {
    let ttl = Duration::from_secs(60);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let mut held = t.acquire("r", "main", ttl, Mode::Exclusive, None).unwrap();
    let t2 = t.clone();
    let helper = std::thread::spawn(move || {
        for _ in 0..n {
            // Only once main holds the lease again: every grant is a hand-off.
            go_rx.recv().unwrap();
            let l = t2
                .acquire("r", "helper", ttl, Mode::Exclusive, None)
                .unwrap();
            tx.send(Instant::now()).unwrap();
            t2.release(&l).unwrap();
        }
    });
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        go_tx.send(()).unwrap();
        // The helper must be queued, so that the release is a hand-off.
        while t.queue_len("r") == 0 {
            std::thread::yield_now();
        }
        let t0 = Instant::now();
        t.release(&held).unwrap();
        let t1 = rx.recv().unwrap();
        out.push(t1 - t0);
        held = t.acquire("r", "main", ttl, Mode::Exclusive, None).unwrap();
    }
    t.release(&held).unwrap();
    helper.join().unwrap();
    out
}

fn handoff(c: &mut Criterion) {
    let t = LeaseTable::new(MonotonicClock, LeaseConfig::default());
    // Percentiles first (criterion reports means).
    let mut lat = handoffs(&t, 5_000);
    lat.sort();
    let pct = |p: usize| lat[(lat.len() - 1) * p / 100];
    println!(
        "lease hand-off latency over {} hand-offs: p50 {:?}, p90 {:?}, p99 {:?}",
        lat.len(),
        pct(50),
        pct(90),
        pct(99)
    );
    let mut g = c.benchmark_group("lease_handoff");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("table release->blocked waiter hand-off", |b| {
        b.iter_custom(|iters| handoffs(&t, iters).into_iter().sum())
    });
    g.finish();
}

/// 8 threads, 1 resource: each does `per` blocking acquire+release pairs.
/// Returns the wall time for all `8 * per` pairs.
fn contended(t: &LeaseTable, per: u64) -> Duration {
    let ttl = Duration::from_secs(60);
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..8 {
            let owner = format!("w{i}");
            s.spawn(move || {
                for _ in 0..per {
                    let l = t.acquire("r", &owner, ttl, Mode::Exclusive, None).unwrap();
                    t.release(&l).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn contention(c: &mut Criterion) {
    let t = LeaseTable::new(MonotonicClock, LeaseConfig::default());
    let mut g = c.benchmark_group("lease_contended");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(8 * 2_000));
    g.bench_function("table 8 threads x 1 resource, 2000 pairs each", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| contended(&t, 2_000)).sum())
    });
    g.finish();
}

criterion_group!(benches, uncontended, handoff, contention);
criterion_main!(benches);
