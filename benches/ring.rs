//! Ring lookup benchmarks: `cargo bench --bench ring` (a few minutes).
//!
//! Targets: a pre-hashed lookup (`locate_hash`) in at most 5 ns on a
//! 100-node ring of 160 points each, and at most 35 ns on 1.6 M points.
//! The `binary_search` rows run a plain `partition_point` over the same
//! sorted points, to show what the continuum's prefix index gains.
//!
//! All inputs are pre-generated from a fixed seed; lookups cycle through
//! 64 Ki random hashes or keys so the branch predictor cannot learn them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use quorumkit::hash::key_hash;
use quorumkit::ring::{
    BoundedLoad, DEFAULT_TABLE_SIZE, DEFAULT_VNODES, HashRing, KetamaCompat, KetamaRing,
    KetamaServer, Maglev, Placement, Rendezvous, SharedBoundedLoad, Snapshot, jump_hash,
    jump_hash_key,
};

const SEED: u64 = 0x5eed_0000_0000_0001;
/// Number of pre-generated inputs (a power of two).
const INPUTS: usize = 1 << 16;
const MASK: usize = INPUTS - 1;
/// Keys per `locate_batch` call.
const BATCH: usize = 1024;

/// splitmix64: a seeded, dependency-free generator for bench inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn random_hashes(seed: u64) -> Vec<u64> {
    let mut r = SplitMix(seed);
    (0..INPUTS).map(|_| r.next()).collect()
}

/// 16-byte keys of random bytes.
fn random_keys(seed: u64) -> Vec<[u8; 16]> {
    let mut r = SplitMix(seed);
    (0..INPUTS)
        .map(|_| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&r.next().to_le_bytes());
            k[8..].copy_from_slice(&r.next().to_le_bytes());
            k
        })
        .collect()
}

/// `nodes` nodes named `node-i`, each of `weight` (160 points per unit).
fn ring(nodes: u32, weight: u32) -> HashRing {
    HashRing::from_nodes(
        DEFAULT_VNODES,
        (0..nodes).map(|i| (format!("node-{i}"), weight)),
    )
    .expect("from_nodes")
}

fn servers(n: u16) -> Vec<KetamaServer> {
    (0..n)
        .map(|i| KetamaServer::new(&format!("10.0.{}.{}", i / 250, i % 250 + 1), 11211, 1))
        .collect::<Result<_, _>>()
        .expect("servers")
}

/// The owner by a plain binary search over the ring's sorted points.
#[inline]
fn binary_search_owner(points: &[u64], owners: &[u32], h: u64) -> u32 {
    let i = points.partition_point(|&x| x < h);
    owners[if i == points.len() { 0 } else { i }]
}

fn bench_prehashed(c: &mut Criterion) {
    let hashes = random_hashes(SEED);
    for (label, r) in [
        ("100x160", ring(100, 1)),
        ("10000x160", ring(10_000, 1)),
        ("100x16000", ring(100, 100)),
    ] {
        let cont = r.continuum();
        // Both lookups agree (a quick self-check before timing them).
        for &h in hashes.iter().take(10_000) {
            assert_eq!(
                r.locate_hash(h).unwrap() as u32,
                binary_search_owner(cont.points(), cont.owners(), h)
            );
        }
        let mut g = c.benchmark_group(format!("prehashed/{label}"));
        g.throughput(Throughput::Elements(1));
        let mut i = 0usize;
        // The harness alone (fetching the next input): subtract it mentally.
        g.bench_function("baseline_input_only", |b| {
            b.iter(|| {
                i = (i + 1) & MASK;
                black_box(black_box(hashes[i]) >> 7)
            })
        });
        g.bench_function("locate_hash", |b| {
            b.iter(|| {
                i = (i + 1) & MASK;
                black_box(r.locate_hash(black_box(hashes[i])).unwrap())
            })
        });
        let (pts, owners) = (cont.points(), cont.owners());
        g.bench_function("binary_search", |b| {
            b.iter(|| {
                i = (i + 1) & MASK;
                black_box(binary_search_owner(pts, owners, black_box(hashes[i])))
            })
        });
        g.finish();
    }
}

fn bench_keys(c: &mut Criterion) {
    let keys = random_keys(SEED ^ 1);
    let r = ring(100, 1);
    let mut g = c.benchmark_group("hash_ring/100x160");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("key_hash_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(key_hash(black_box(&keys[i])))
        })
    });
    g.bench_function("locate_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(r.locate(black_box(&keys[i])).unwrap())
        })
    });
    let mut out = Vec::with_capacity(3);
    g.bench_function("locate_n3_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            r.locate_n(black_box(&keys[i]), 3, &mut out).unwrap();
            black_box(out[2])
        })
    });
    g.finish();

    // locate_batch: time per call of BATCH keys; throughput gives keys/s.
    let mut g = c.benchmark_group("hash_ring/100x160/batch1024");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut out = Vec::with_capacity(BATCH);
    let mut start = 0usize;
    g.bench_function("locate_batch", |b| {
        b.iter(|| {
            start = (start + BATCH) & MASK;
            r.locate_batch(black_box(&keys[start..start + BATCH]), &mut out)
                .unwrap();
            black_box(out[BATCH - 1])
        })
    });
    g.finish();
}

fn bench_ketama(c: &mut Criterion) {
    let keys = random_keys(SEED ^ 2);
    let hashes: Vec<u32> = random_hashes(SEED ^ 3).iter().map(|&h| h as u32).collect();
    for compat in [KetamaCompat::Libmemcached, KetamaCompat::Uhashring] {
        let k = KetamaRing::new(servers(100), compat).expect("ketama");
        let mut g = c.benchmark_group(format!("ketama/{}/100", compat.as_str()));
        g.throughput(Throughput::Elements(1));
        let mut i = 0usize;
        g.bench_function("locate_hash", |b| {
            b.iter(|| {
                i = (i + 1) & MASK;
                black_box(k.locate_hash(black_box(hashes[i])).unwrap())
            })
        });
        g.bench_function("locate_16B", |b| {
            b.iter(|| {
                i = (i + 1) & MASK;
                black_box(k.locate(black_box(&keys[i])).unwrap())
            })
        });
        g.finish();
    }
}

fn bench_membership(c: &mut Criterion) {
    let mut g = c.benchmark_group("membership/100x160");
    g.bench_function("build_100_nodes", |b| b.iter(|| black_box(ring(100, 1))));
    g.bench_function("build_100_nodes_incrementally", |b| {
        b.iter(|| {
            let mut r = HashRing::new();
            for i in 0..100 {
                r.add_node(&format!("node-{i}"), 1).expect("add_node");
            }
            black_box(r)
        })
    });
    let base = ring(100, 1);
    g.bench_function("add_node", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |r| r.add_node("node-new", 1).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("remove_node", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |r| r.remove_node("node-50").unwrap(),
            BatchSize::LargeInput,
        )
    });
    let k = KetamaRing::new(servers(100), KetamaCompat::Libmemcached).expect("ketama");
    g.bench_function("ketama_build_100", |b| {
        b.iter(|| black_box(KetamaRing::new(servers(100), KetamaCompat::Libmemcached).unwrap()))
    });
    g.bench_function("ketama_add_server", |b| {
        b.iter_batched_ref(
            || k.clone(),
            |r| {
                r.add_server(KetamaServer::new("10.9.9.9", 11211, 1).unwrap())
                    .unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_bounded(c: &mut Criterion) {
    // Steady state: 10,000 keys held (100 per node on average), then each
    // iteration acquires a fresh key and releases it. `ring_locate_16B` is
    // the plain ring's lookup of the same keys, for the ratio.
    let keys = random_keys(SEED ^ 4);
    let r = ring(100, 1);
    let mut g = c.benchmark_group("bounded/100x160/c1.25/held10000");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("ring_locate_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(r.locate(black_box(&keys[i])).unwrap())
        })
    });
    let mut bl = BoundedLoad::new(r.clone(), 1.25).unwrap();
    for k in 0..10_000u32 {
        bl.acquire(&k.to_le_bytes()).unwrap();
    }
    g.bench_function("acquire_release_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            let n = bl.acquire(black_box(&keys[i])).unwrap();
            bl.release(n).unwrap();
            black_box(n)
        })
    });
    let shared = SharedBoundedLoad::new(bl.clone());
    g.bench_function("shared_acquire_release_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            let n = shared.acquire(black_box(&keys[i])).unwrap();
            shared.release(n).unwrap();
            black_box(n)
        })
    });
    g.finish();
}

fn bench_snapshot(c: &mut Criterion) {
    // decode rebuilds the points; `build_from_nodes` is that rebuild alone.
    let r = ring(100, 1);
    let bytes = r.to_snapshot();
    let mut g = c.benchmark_group("snapshot/100x160");
    g.bench_function("build_from_nodes", |b| b.iter(|| black_box(ring(100, 1))));
    g.bench_function("encode", |b| b.iter(|| black_box(r.to_snapshot())));
    g.bench_function("decode", |b| {
        b.iter(|| black_box(HashRing::from_snapshot(black_box(&bytes)).unwrap()))
    });
    let k = KetamaRing::new(servers(100), KetamaCompat::Libmemcached).expect("ketama");
    let kbytes = k.to_snapshot();
    g.bench_function("ketama_encode", |b| b.iter(|| black_box(k.to_snapshot())));
    g.bench_function("ketama_decode", |b| {
        b.iter(|| black_box(KetamaRing::from_snapshot(black_box(&kbytes)).unwrap()))
    });
    g.finish();
}

/// Jump hash, Maglev and rendezvous: pre-hashed lookups, 16-byte keys,
/// and Maglev's table build. Targets: jump at 1000 buckets <= 50 ns,
/// Maglev lookup <= 5 ns.
fn bench_algos(c: &mut Criterion) {
    let hashes = random_hashes(SEED ^ 4);
    let keys = random_keys(SEED ^ 5);
    let nodes = || (0..100).map(|i| (format!("node-{i}"), 1u32));

    let mut g = c.benchmark_group("jump");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    for buckets in [10u32, 1000, 1_000_000] {
        g.bench_function(format!("jump_hash_{buckets}"), |b| {
            b.iter(|| {
                i = (i + 1) & MASK;
                black_box(jump_hash(black_box(hashes[i]), buckets).unwrap())
            })
        });
    }
    g.bench_function("jump_hash_key_16B_1000", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(jump_hash_key(black_box(&keys[i]), 1000).unwrap())
        })
    });
    g.finish();

    let m = Maglev::from_nodes(DEFAULT_TABLE_SIZE, nodes()).expect("maglev");
    let mut g = c.benchmark_group("maglev/100x65537");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_input_only", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(black_box(hashes[i]) >> 7)
        })
    });
    g.bench_function("locate_hash", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(m.locate_hash(black_box(hashes[i])).unwrap())
        })
    });
    g.bench_function("locate_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(m.locate(black_box(&keys[i])).unwrap())
        })
    });
    g.bench_function("build_100_nodes", |b| {
        b.iter(|| black_box(Maglev::from_nodes(DEFAULT_TABLE_SIZE, nodes()).unwrap()))
    });
    g.bench_function("remove_node", |b| {
        b.iter_batched_ref(
            || m.clone(),
            |m| m.remove_node("node-50").unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let r = Rendezvous::from_nodes((0..100).map(|i| (format!("node-{i}"), 1.0 + (i % 3) as f64)))
        .expect("rendezvous");
    let mut g = c.benchmark_group("rendezvous/100");
    g.throughput(Throughput::Elements(1));
    g.bench_function("locate_hash", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(r.locate_hash(black_box(hashes[i])).unwrap())
        })
    });
    g.bench_function("locate_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            black_box(r.locate(black_box(&keys[i])).unwrap())
        })
    });
    let mut out = Vec::with_capacity(3);
    g.bench_function("locate_n3_16B", |b| {
        b.iter(|| {
            i = (i + 1) & MASK;
            r.locate_n(black_box(&keys[i]), 3, &mut out).unwrap();
            black_box(out[2])
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_prehashed, bench_keys, bench_ketama, bench_membership, bench_bounded,
        bench_snapshot, bench_algos
}
criterion_main!(benches);
