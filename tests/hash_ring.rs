//! HashRing against an independent reference model, under random sequences
//! of membership changes. Each case takes a seed and names it on failure.

use quorumkit::Error;
use quorumkit::hash::{key_hash, vnode_hash};
use quorumkit::ring::{HashRing, Placement};

mod common;
use common::Rng;

/// The placement rule written out naively: every point of every node,
/// sorted by (position, name); the key goes to the first point >= its hash.
fn reference_owner(nodes: &[(String, u32)], vnodes: u32, key: &[u8]) -> String {
    let mut pts: Vec<(u64, &str)> = Vec::new();
    for (name, w) in nodes {
        for i in 0..vnodes * w {
            pts.push((vnode_hash(name, i), name));
        }
    }
    pts.sort();
    let h = key_hash(key);
    let i = pts.partition_point(|p| p.0 < h);
    pts[if i == pts.len() { 0 } else { i }].1.to_owned()
}

fn keys(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let mut k = format!("key-{i}-").into_bytes();
            k.extend((0..r.below(12)).map(|_| r.next() as u8));
            k
        })
        .collect()
}

#[test]
fn random_membership_changes_match_reference() {
    for seed in 0..40u64 {
        let mut rng = Rng(seed);
        let vnodes = 1 + rng.below(24) as u32;
        let mut ring = HashRing::with_vnodes(vnodes).unwrap();
        let mut model: Vec<(String, u32)> = Vec::new();
        for step in 0..25 {
            let name = format!("n{}", rng.below(10));
            let weight = 1 + rng.below(4) as u32;
            let present = model.iter().position(|(n, _)| *n == name);
            match (rng.below(3), present) {
                (0, None) | (_, None) => {
                    ring.add_node(&name, weight).unwrap();
                    model.push((name, weight));
                }
                (1, Some(i)) => {
                    ring.remove_node(&name).unwrap();
                    model.remove(i);
                }
                (_, Some(i)) => {
                    ring.set_weight(&name, weight).unwrap();
                    model[i].1 = weight;
                }
            }
            let names: Vec<&str> = model.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(ring.node_names(), names, "seed {seed} step {step}");
            let total: u32 = model.iter().map(|(_, w)| w * vnodes).sum();
            assert_eq!(
                ring.point_count(),
                total as usize,
                "seed {seed} step {step}"
            );
            if model.is_empty() {
                assert_eq!(ring.get_node(b"k"), Err(Error::EmptyRing));
                continue;
            }
            for k in keys(50, seed * 1000 + step) {
                assert_eq!(
                    ring.get_node(&k).unwrap(),
                    reference_owner(&model, vnodes, &k),
                    "seed {seed} step {step} key {k:?}"
                );
            }
        }
    }
}

#[test]
fn bulk_build_equals_incremental_build() {
    let nodes: Vec<(String, u32)> = (0..30).map(|i| (format!("n{i}"), 1 + i % 4)).collect();
    let bulk = HashRing::from_nodes(40, nodes.iter().map(|(n, w)| (n.as_str(), *w))).unwrap();
    let mut inc = HashRing::with_vnodes(40).unwrap();
    for (n, w) in &nodes {
        inc.add_node(n, *w).unwrap();
    }
    assert_eq!(bulk.continuum().points(), inc.continuum().points());
    assert_eq!(bulk.continuum().owners(), inc.continuum().owners());
    assert_eq!(bulk.node_names(), inc.node_names());
    assert_eq!(
        HashRing::from_nodes(160, [("a", 1), ("a", 2)]).unwrap_err(),
        Error::NodeExists("a".into())
    );
    assert!(matches!(
        HashRing::from_nodes(160, [("a", 0)]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn placement_does_not_depend_on_insertion_order() {
    let names: Vec<String> = (0..20).map(|i| format!("cache-{i}")).collect();
    let mut a = HashRing::new();
    let mut b = HashRing::new();
    for (i, n) in names.iter().enumerate() {
        a.add_node(n, 1 + (i % 3) as u32).unwrap();
    }
    for (i, n) in names.iter().enumerate().rev() {
        b.add_node(n, 1 + (i % 3) as u32).unwrap();
    }
    for k in keys(5000, 7) {
        assert_eq!(a.get_node(&k).unwrap(), b.get_node(&k).unwrap());
    }
}

#[test]
fn membership_changes_move_only_the_keys_they_must() {
    let mut ring = HashRing::new();
    for i in 0..10 {
        ring.add_node(&format!("n{i}"), 1).unwrap();
    }
    let ks = keys(20_000, 3);
    let before: Vec<String> = ks
        .iter()
        .map(|k| ring.get_node(k).unwrap().to_owned())
        .collect();

    ring.remove_node("n4").unwrap();
    let mut moved = 0;
    for (k, old) in ks.iter().zip(&before) {
        let now = ring.get_node(k).unwrap();
        if old == "n4" {
            moved += 1;
        } else {
            assert_eq!(now, old, "a key not on the removed node moved");
        }
    }
    // n4 owned about a tenth of the keys.
    assert!((1_400..2_600).contains(&moved), "moved {moved}");

    ring.add_node("n4", 1).unwrap();
    for (k, old) in ks.iter().zip(&before) {
        assert_eq!(
            ring.get_node(k).unwrap(),
            old,
            "re-adding must restore placement"
        );
    }

    ring.set_weight("n7", 3).unwrap();
    for (k, old) in ks.iter().zip(&before) {
        let now = ring.get_node(k).unwrap();
        assert!(
            now == old || now == "n7",
            "a weight increase moved a key elsewhere"
        );
    }
}

#[test]
fn preference_lists_are_distinct_and_start_at_the_owner() {
    let mut ring = HashRing::new();
    for i in 0..7 {
        ring.add_node(&format!("n{i}"), 1 + i % 2).unwrap();
    }
    let mut out = Vec::new();
    for k in keys(2000, 11) {
        for n in 1..=7 {
            ring.locate_n(&k, n, &mut out).unwrap();
            assert_eq!(out.len(), n);
            assert_eq!(out[0], ring.locate(&k).unwrap());
            let mut sorted = out.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), n, "duplicate node in {out:?}");
        }
        // A preference list is a prefix of the longer one.
        let three = ring.get_nodes(&k, 3).unwrap();
        let seven = ring.get_nodes(&k, 7).unwrap();
        assert_eq!(three[..], seven[..3]);
    }
    assert!(matches!(
        ring.get_nodes(b"k", 8),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn shares_are_exact_and_follow_weights() {
    let mut ring = HashRing::new();
    ring.add_node("a", 1).unwrap();
    ring.add_node("b", 3).unwrap();
    let s = ring.shares();
    assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // 160 vs 480 points: b holds close to three quarters.
    assert!((0.70..0.80).contains(&s[1]), "{s:?}");

    // Exact: recompute the arcs from the reference point list.
    let mut pts: Vec<(u64, usize)> = Vec::new();
    for (idx, (name, w)) in [("a", 1u32), ("b", 3)].iter().enumerate() {
        for i in 0..160 * w {
            pts.push((vnode_hash(name, i), idx));
        }
    }
    pts.sort();
    let mut arcs = [0u128; 2];
    for i in 0..pts.len() {
        let prev = if i == 0 {
            pts[pts.len() - 1].0
        } else {
            pts[i - 1].0
        };
        arcs[pts[i].1] += pts[i].0.wrapping_sub(prev) as u128;
    }
    let a = arcs[0] as f64 / 2f64.powi(64);
    assert!((s[0] - a).abs() < 1e-12, "{} vs {a}", s[0]);

    // The share predicts the fraction of keys.
    let ks = keys(50_000, 5);
    let on_a = ks
        .iter()
        .filter(|k| ring.get_node(k).unwrap() == "a")
        .count();
    assert!((on_a as f64 / 50_000.0 - s[0]).abs() < 0.01);
}

#[test]
fn bad_input_is_rejected_without_changing_the_ring() {
    let mut ring = HashRing::new();
    assert_eq!(ring.get_node(b"x"), Err(Error::EmptyRing));
    assert_eq!(ring.get_nodes(b"x", 1), Err(Error::EmptyRing));
    assert!(matches!(
        ring.add_node("a", 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ring.add_node("", 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ring.add_node("a\0b", 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ring.add_node("a", u32::MAX),
        Err(Error::InvalidArgument(_))
    ));
    assert!(ring.is_empty());
    ring.add_node("a", 1).unwrap();
    assert_eq!(ring.add_node("a", 2), Err(Error::NodeExists("a".into())));
    assert_eq!(
        ring.remove_node("zz"),
        Err(Error::NodeNotFound("zz".into()))
    );
    assert_eq!(
        ring.set_weight("zz", 1),
        Err(Error::NodeNotFound("zz".into()))
    );
    assert!(matches!(
        ring.set_weight("a", 0),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(ring.weight("a"), Some(1));
    assert_eq!(ring.point_count(), 160);
    assert!(matches!(
        HashRing::with_vnodes(0),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(ring.get_nodes(b"x", 0).unwrap(), Vec::<&str>::new());
}
