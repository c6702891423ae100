//! Failure detector benchmarks: the cost of a heartbeat (window full, so
//! every call also evicts) and of a φ query, on a registry of one node and
//! of 1000 nodes; beside them, the same φ computed by re-summing the
//! 1000-sample window on each query (what a detector without running sums
//! pays), as the in-run baseline the README's ratio is quoted against.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quorumkit::detect::{DetectorConfig, FailureDetector, phi::phi};

const MS: u64 = 1_000_000;

/// A detector with `nodes` nodes, each with a full window of jittery
/// ~1 s intervals; returns it and the time of the last heartbeat.
fn warmed(nodes: usize) -> (FailureDetector, Vec<String>, u64) {
    let mut d = FailureDetector::new(DetectorConfig::default()).unwrap();
    let names: Vec<String> = (0..nodes).map(|i| format!("node-{i:04}")).collect();
    let mut t = 0u64;
    for i in 0..1100u64 {
        t += 1000 * MS + (i * 7919 % 200) * MS;
        for n in &names {
            d.heartbeat(n, t).unwrap();
        }
    }
    (d, names, t)
}

fn detect(c: &mut Criterion) {
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));

    for nodes in [1usize, 1000] {
        let (mut d, names, mut t) = warmed(nodes);
        let mut i = 0usize;
        g.bench_function(format!("heartbeat ({nodes} nodes, full window)"), |b| {
            // Each node hears from itself about once a second, so every
            // heartbeat is recorded (and evicts the oldest sample).
            let step = 1000 * MS / nodes as u64;
            b.iter(|| {
                t += step;
                i = (i + 1) % names.len();
                d.heartbeat(black_box(&names[i]), t).unwrap();
            })
        });
        g.bench_function(format!("phi ({nodes} nodes)"), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(d.phi(black_box(&names[i]), t + 2000 * MS).unwrap())
            })
        });
        g.bench_function(format!("is_available ({nodes} nodes)"), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(d.is_available(black_box(&names[i]), t + 2000 * MS).unwrap())
            })
        });
    }

    // Baseline: φ from a window re-summed per query (1000 samples).
    let (d, names, _) = warmed(1);
    let window: Vec<u64> = d.intervals(&names[0]).unwrap();
    let cfg = DetectorConfig::default();
    g.bench_function("phi, re-summing the 1000-sample window (baseline)", |b| {
        b.iter(|| {
            let w = black_box(&window);
            let n = w.len() as f64;
            let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            let std = var.sqrt().max(cfg.min_std_dev_ns as f64);
            black_box(phi(
                2000.0 * MS as f64,
                mean + cfg.acceptable_pause_ns as f64,
                std,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, detect);
criterion_main!(benches);
