//! BoundedLoad against a naive reference model under seeded random
//! sequences of acquire, release and membership changes, and its
//! thread-safe form under contention. Each case names its seed on failure.

use std::sync::Arc;

use quorumkit::Error;
use quorumkit::ring::{
    BoundedLoad, HashRing, KetamaCompat, KetamaRing, KetamaServer, Placement, SharedBoundedLoad,
};

mod common;
use common::Rng;

/// The rule written out naively over the ring's preference list of
/// distinct nodes: capacities from the paper's formula with weights, the
/// first node in preference order below its capacity.
fn reference_pick<P: Placement>(ring: &P, loads: &[u64], c: f64, key: &[u8]) -> usize {
    let total: u64 = loads.iter().sum::<u64>() + 1;
    let w_sum: u64 = (0..ring.len())
        .map(|i| ring.node_weight(i).unwrap() as u64)
        .sum();
    let mut prefs = Vec::new();
    ring.locate_n(key, ring.len(), &mut prefs).unwrap();
    *prefs
        .iter()
        .find(|&&i| {
            let cap =
                (c * total as f64 * ring.node_weight(i).unwrap() as f64 / w_sum as f64).ceil();
            (loads[i] as f64) < cap
        })
        .expect("some node has room")
}

#[test]
fn matches_reference_and_never_exceeds_the_cap() {
    for seed in 0..30u64 {
        let mut rng = Rng(seed);
        let n = 1 + rng.below(12) as usize;
        let c = 1.0 + (1 + rng.below(100)) as f64 / 100.0;
        let ring = HashRing::from_nodes(
            20,
            (0..n).map(|i| {
                (
                    format!("node-{i}"),
                    1 + (seed % 3 == 0) as u32 * (i as u32 % 3),
                )
            }),
        )
        .unwrap();
        let mut b = BoundedLoad::new(ring, c).unwrap();
        let mut held: Vec<usize> = Vec::new();
        let mut next_node = n;
        for step in 0..3000 {
            let ctx = format!("seed {seed} step {step} c {c}");
            match rng.below(10) {
                0..=5 => {
                    let key = format!("key-{}", rng.next());
                    let want = reference_pick(b.ring(), b.loads(), c, key.as_bytes());
                    let cap = b.capacity(want).unwrap();
                    let got = b.acquire(key.as_bytes()).unwrap();
                    assert_eq!(got, want, "{ctx}");
                    assert!(b.load(got).unwrap() <= cap, "{ctx}: over the cap");
                    held.push(got);
                }
                6..=8 if !held.is_empty() => {
                    let j = rng.below(held.len() as u64) as usize;
                    let i = held.swap_remove(j);
                    b.release(i).unwrap();
                }
                9 if rng.below(20) == 0 => {
                    // Membership change: drop a node (and what it held) or add one.
                    if b.len() > 1 && rng.below(2) == 0 {
                        let gone = rng.below(b.len() as u64) as usize;
                        let name = b.ring().node_name(gone).unwrap().to_owned();
                        let dropped = b.remove_node(&name).unwrap();
                        assert_eq!(dropped, held.iter().filter(|&&h| h == gone).count() as u64);
                        held.retain(|&h| h != gone);
                        for h in &mut held {
                            if *h > gone {
                                *h -= 1;
                            }
                        }
                    } else {
                        b.add_node(&format!("node-{next_node}"), 1).unwrap();
                        next_node += 1;
                    }
                }
                _ => {}
            }
            assert_eq!(b.total_load(), held.len() as u64, "{ctx}");
            let mut counts = vec![0u64; b.len()];
            for &h in &held {
                counts[h] += 1;
            }
            assert_eq!(b.loads(), &counts[..], "{ctx}");
        }
    }
}

#[test]
fn acquire_only_keeps_every_node_under_the_bound() {
    // With no releases the capacity only grows, so after every step every
    // node is within ceil(c × L / n) of the current total L.
    for seed in 0..10u64 {
        let mut rng = Rng(seed);
        let n = 2 + rng.below(30) as usize;
        let c = [1.01, 1.1, 1.25, 1.5, 2.0][seed as usize % 5];
        let ring = HashRing::from_nodes(40, (0..n).map(|i| (format!("n{i}"), 1))).unwrap();
        let mut b = BoundedLoad::new(ring, c).unwrap();
        for step in 1..=5000u64 {
            b.acquire(&rng.next().to_le_bytes()).unwrap();
            let bound = (c * step as f64 / n as f64).ceil() as u64;
            let max = *b.loads().iter().max().unwrap();
            assert!(max <= bound, "seed {seed} step {step}: max {max} > {bound}");
        }
    }
}

#[test]
fn large_factor_behaves_like_the_plain_ring() {
    let ring = HashRing::from_nodes(160, (0..10).map(|i| (format!("n{i}"), 1))).unwrap();
    let mut b = BoundedLoad::new(ring.clone(), 1e12).unwrap();
    for k in 0..20_000u32 {
        let key = k.to_le_bytes();
        assert_eq!(
            b.acquire(&key).unwrap(),
            ring.locate(&key).unwrap(),
            "key {k}"
        );
    }
}

#[test]
fn keys_stay_on_their_ring_node_while_loads_allow() {
    // A key goes to its ring node whenever that node is below capacity,
    // and elsewhere only when it is full.
    let ring = HashRing::from_nodes(160, (0..8).map(|i| (format!("n{i}"), 1))).unwrap();
    let mut b = BoundedLoad::new(ring.clone(), 1.25).unwrap();
    let mut moved = 0;
    for k in 0..4000u32 {
        let key = format!("user:{k}");
        let home = ring.locate(key.as_bytes()).unwrap();
        let room = b.load(home).unwrap() < b.capacity(home).unwrap();
        let got = b.acquire(key.as_bytes()).unwrap();
        if room {
            assert_eq!(got, home, "key {key} had room at home");
        } else {
            assert_ne!(got, home, "key {key}: home was full");
            moved += 1;
        }
    }
    // Most keys stay home; the bound moves a few.
    assert!(moved > 0 && moved < 1000, "moved {moved}");
}

#[test]
fn tight_factor_spreads_a_hot_spot() {
    // Many acquires of the same key: a plain ring sends all to one node;
    // the balancer fills it to capacity and spills clockwise.
    let ring = HashRing::from_nodes(160, (0..5).map(|i| (format!("n{i}"), 1))).unwrap();
    let mut b = BoundedLoad::new(ring, 1.1).unwrap();
    for _ in 0..1000 {
        b.acquire(b"hot").unwrap();
    }
    let max = *b.loads().iter().max().unwrap();
    assert!(
        max <= (1.1f64 * 1000.0 / 5.0).ceil() as u64,
        "{:?}",
        b.loads()
    );
    assert!(b.loads().iter().all(|&l| l > 0), "{:?}", b.loads());
}

#[test]
fn works_over_ketama() {
    let servers = (1..=4)
        .map(|i| KetamaServer::parse(&format!("10.0.0.{i}:11211"), i).unwrap())
        .collect();
    let k = KetamaRing::new(servers, KetamaCompat::Libmemcached).unwrap();
    let mut b = BoundedLoad::new(k, 1.2).unwrap();
    for i in 0..1000u32 {
        let want = reference_pick(b.ring(), b.loads(), 1.2, &i.to_le_bytes());
        assert_eq!(b.acquire(&i.to_le_bytes()).unwrap(), want);
    }
    let dropped = b
        .change_membership(|r| r.remove_server("10.0.0.4:11211"))
        .unwrap();
    assert!(dropped > 0);
    assert_eq!(b.total_load(), 1000 - dropped);
}

#[test]
fn shared_balancer_under_threads() {
    let n = 6;
    let c = 1.25;
    let ring = HashRing::from_nodes(40, (0..n).map(|i| (format!("n{i}"), 1))).unwrap();
    let shared = Arc::new(SharedBoundedLoad::new(BoundedLoad::new(ring, c).unwrap()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut rng = Rng(t);
                let mut held = Vec::new();
                for _ in 0..5000 {
                    held.push(s.acquire(&rng.next().to_le_bytes()).unwrap());
                    if rng.below(3) == 0 {
                        let i = held.swap_remove(rng.below(held.len() as u64) as usize);
                        s.release(i).unwrap();
                    }
                }
                held
            })
        })
        .collect();
    let mut counts = vec![0u64; n];
    for t in threads {
        for i in t.join().unwrap() {
            counts[i] += 1;
        }
    }
    assert_eq!(shared.loads(), counts);
    // Acquire-only from here: every node stays under the bound.
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut rng = Rng(100 + t);
                for _ in 0..5000 {
                    s.acquire(&rng.next().to_le_bytes()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let b = Arc::into_inner(shared).unwrap().into_inner();
    let total = b.total_load();
    assert_eq!(total, counts.iter().sum::<u64>() + 20_000);
    let bound = (c * total as f64 / n as f64).ceil() as u64;
    assert!(
        b.loads().iter().all(|&l| l <= bound),
        "{:?} > {bound}",
        b.loads()
    );
    assert!(matches!(
        BoundedLoad::new(HashRing::new(), 1.5).unwrap().release(0),
        Err(Error::NodeNotFound(_))
    ));
}
