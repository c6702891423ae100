//! Lease benchmarks: uncontended acquire+release on one core — the pure
//! state machine and the thread-safe table separately — the fence check,
//! and the release-to-waiter hand-off between two blocked threads.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
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

/// Two threads pass one exclusive lease back and forth; each iteration is
/// one release -> blocked waiter wake-up -> grant.
fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("lease_handoff");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("table release->waiter hand-off", |b| {
        b.iter_custom(|iters| {
            let t = LeaseTable::new(MonotonicClock, LeaseConfig::default());
            let ttl = Duration::from_secs(60);
            let start = Arc::new(Barrier::new(2));
            let first = t.acquire("r", "main", ttl, Mode::Exclusive, None).unwrap();
            let (t2, s2) = (t.clone(), start.clone());
            let helper = std::thread::spawn(move || {
                s2.wait();
                for _ in 0..iters {
                    let l = t2
                        .acquire("r", "helper", ttl, Mode::Exclusive, None)
                        .unwrap();
                    // Wait until main is queued so every grant is a hand-off.
                    while t2.queue_len("r") == 0 {
                        std::hint::spin_loop();
                    }
                    t2.release(&l).unwrap();
                }
            });
            start.wait();
            while t.queue_len("r") == 0 {
                std::hint::spin_loop();
            }
            let begin = Instant::now();
            t.release(&first).unwrap();
            for i in 0..iters {
                let l = t.acquire("r", "main", ttl, Mode::Exclusive, None).unwrap();
                if i + 1 < iters {
                    while t.queue_len("r") == 0 {
                        std::hint::spin_loop();
                    }
                }
                t.release(&l).unwrap();
            }
            let total = begin.elapsed();
            helper.join().unwrap();
            // Two hand-offs per iteration.
            total / 2
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended, handoff);
criterion_main!(benches);
