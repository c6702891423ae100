//! Hand-computed φ values for fixed heartbeat series. Each expected value
//! comes from the formula in `phi.rs` worked through in the comment (and
//! checked with a calculator); none is read back from this code.

use super::*;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

fn det(config: DetectorConfig) -> FailureDetector {
    FailureDetector::new(config).unwrap()
}

/// y at which φ crosses 8: 1 − F = 1e-8 means e/(1+e) = 1e-8, so
/// y·(1.5976 + 0.070566·y²) = ln((1 − 1e-8)/1e-8) = 18.4206807; the root of
/// 0.070566·y³ + 1.5976·y − 18.4206807 = 0 (bisection) is y = 5.2259866.
const Y8: f64 = 5.225986644093562;

#[test]
fn first_heartbeat_uses_the_estimate() {
    let mut d = det(DetectorConfig::default());
    d.heartbeat("a", 100 * S).unwrap();
    // Seeds 750 ms and 1250 ms: mean 1 s, variance (0.25² + 0.25²)/2 =
    // 0.0625 s², std 0.25 s; plus the 3 s pause: mean' = 4 s.
    assert_eq!(d.intervals("a").unwrap(), [750 * MS, 1250 * MS]);
    // Δt = 4 s: y = 0, φ = log10 2.
    close(d.phi("a", 104 * S).unwrap(), std::f64::consts::LOG10_2);
    // Δt = 4.5 s: y = 2, e = exp(−2·(1.5976 + 0.070566·4)) = 0.0232873,
    // φ = −log10(e/(1+e)) = 1.6428279.
    close(d.phi("a", 104 * S + 500 * MS).unwrap(), 1.6428278854871123);
    // Δt = 5 s: y = 4, e = exp(−4·(1.5976 + 0.070566·16)) = 1.83364e-5,
    // φ = 4.7366946.
    close(d.phi("a", 105 * S).unwrap(), 4.736694582705181);
    // Δt = 0: y = −16, φ is 0 (1 − F rounds to exactly 1).
    assert_eq!(d.phi("a", 100 * S).unwrap(), 0.0);
}

#[test]
fn regular_series_crosses_at_a_computable_time() {
    let mut d = det(DetectorConfig::default());
    for i in 0..10 {
        d.heartbeat("a", i * S).unwrap();
    }
    // Window: 0.75, 1.25 and nine 1 s intervals: n = 11, mean = 11/11 = 1 s,
    // E[x²] = (0.5625 + 1.5625 + 9)/11 = 11.125/11, variance = 0.125/11 =
    // 0.0113636 s², std = 0.1066004 s (above the 0.1 s floor). mean' = 4 s.
    assert_eq!(d.intervals("a").unwrap().len(), 11);
    let last = 9 * S;
    // Just after a heartbeat φ is 0; at Δt = 1 s (y = −28.1) it still is.
    assert_eq!(d.phi("a", last).unwrap(), 0.0);
    assert_eq!(d.phi("a", last + S).unwrap(), 0.0);
    // Δt = 4.2 s: y = 0.2/0.1066004 = 1.876170, φ = 1.5175254.
    close(d.phi("a", last + 4200 * MS).unwrap(), 1.5175254409299836);
    // Δt = 4.3 s: y = 2.814255, φ = 2.6366849.
    close(d.phi("a", last + 4300 * MS).unwrap(), 2.6366849284666607);
    // φ = 8 at Δt = 4 + Y8 · 0.1066004 = 4.5570920 s.
    let cross = last + 4_557_092_048;
    assert!(d.is_available("a", cross - 2 * MS).unwrap());
    assert!(!d.is_available("a", cross + 2 * MS).unwrap());
    let p = d.phi("a", cross).unwrap();
    assert!((p - 8.0).abs() < 1e-3, "{p}");
}

#[test]
fn jittery_series() {
    let mut d = det(DetectorConfig::default());
    // Intervals 0.9, 1.2, 0.8, 1.1 s after the seeds 0.75, 1.25.
    let mut t = 0;
    d.heartbeat("j", t).unwrap();
    for iv in [900, 1200, 800, 1100] {
        t += iv * MS;
        d.heartbeat("j", t).unwrap();
    }
    // n = 6, Σ = 6.0 s, mean 1 s; deviations −0.25, 0.25, −0.1, 0.2, −0.2,
    // 0.1: Σd² = 0.0625·2 + 0.01·2 + 0.04·2 = 0.225, variance = 0.0375 s²,
    // std = 0.1936492 s. mean' = 4 s.
    close(d.phi("j", t + 4 * S).unwrap(), std::f64::consts::LOG10_2);
    // Δt = 4.5 s: y = 0.5/0.1936492 = 2.581989, φ = 2.3210618.
    close(d.phi("j", t + 4500 * MS).unwrap(), 2.3210618289889147);
    // Crossing: 4 + Y8 · 0.1936492 = 5.0120097 s.
    let cross = t + 4 * S + (Y8 * 0.19364916731037107 * 1e9) as u64;
    assert!(d.is_available("j", cross - 5 * MS).unwrap());
    assert!(!d.is_available("j", cross + 5 * MS).unwrap());
}

#[test]
fn window_eviction_and_the_std_floor() {
    let mut d = det(DetectorConfig {
        max_samples: 4,
        ..DetectorConfig::default()
    });
    for i in 0..=2 {
        d.heartbeat("a", i * S).unwrap();
    }
    // Two 1 s intervals after the seeds: [0.75, 1.25, 1, 1].
    assert_eq!(d.intervals("a").unwrap(), [750 * MS, 1250 * MS, S, S]);
    for i in 3..=4 {
        d.heartbeat("a", i * S).unwrap();
    }
    // Both seeds evicted: [1, 1, 1, 1], variance 0, so std = the 0.1 s floor.
    assert_eq!(d.intervals("a").unwrap(), [S; 4]);
    // mean' = 4 s: crossing at 4 + Y8 · 0.1 = 4.5225987 s.
    let last = 4 * S;
    // Δt = 4.3 s: y = 3, e = exp(−3·(1.5976 + 0.070566·9)) = exp(−6.698082)
    // = 0.00123328, φ = −log10(e/(1+e)) = 2.9094753.
    let p = d.phi("a", last + 4300 * MS).unwrap();
    assert!((p - 2.9094753264849538).abs() < 1e-9, "{p}");
    assert!(d.is_available("a", last + 4_521 * MS).unwrap());
    assert!(!d.is_available("a", last + 4_524 * MS).unwrap());
}

#[test]
fn a_pause_crosses_the_threshold_and_is_not_learned() {
    let mut d = det(DetectorConfig::default());
    for i in 0..10 {
        d.heartbeat("a", i * S).unwrap();
    }
    let before = d.intervals("a").unwrap();
    // Silence for 10 s: φ = +inf-ish, unavailable.
    let late = 9 * S + 10 * S;
    assert!(!d.is_available("a", late).unwrap());
    assert!(d.phi("a", late).unwrap() > 8.0);
    // The late heartbeat restarts the clock but the 10 s gap is not
    // recorded (Akka's rule), so the statistics are unchanged.
    d.heartbeat("a", late).unwrap();
    assert_eq!(d.intervals("a").unwrap(), before);
    assert_eq!(d.last_heartbeat("a").unwrap(), late);
    assert!(d.is_available("a", late + S).unwrap());
    // A 4 s gap (φ = 0.30 < 8) is recorded.
    d.heartbeat("a", late + 4 * S).unwrap();
    assert_eq!(d.intervals("a").unwrap().last(), Some(&(4 * S)));
}

#[test]
fn nodes_are_independent() {
    let mut d = det(DetectorConfig::default());
    d.heartbeat("b", 0).unwrap();
    d.heartbeat("a", 5 * S).unwrap();
    assert_eq!(d.nodes().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(d.len(), 2);
    // b's clock started at 0, a's at 5 s: at 6 s, b is 6 s quiet, a 1 s.
    assert!(d.phi("b", 6 * S).unwrap() > d.phi("a", 6 * S).unwrap());
    d.remove("b").unwrap();
    assert!(!d.contains("b"));
    assert!(d.contains("a"));
    assert_eq!(d.remove("b"), Err(Error::NodeNotFound("b".into())));
    assert_eq!(d.len(), 1);
    // A removed node starts over from the estimate.
    d.heartbeat("b", 7 * S).unwrap();
    assert_eq!(d.intervals("b").unwrap(), [750 * MS, 1250 * MS]);
}

#[test]
fn bad_inputs() {
    let mut d = det(DetectorConfig::default());
    assert_eq!(d.phi("x", 0), Err(Error::NodeNotFound("x".into())));
    assert_eq!(d.is_available("x", 0), Err(Error::NodeNotFound("x".into())));
    assert!(d.intervals("x").is_err());
    d.heartbeat("a", 10 * S).unwrap();
    // Out of order (two threads, the later reading landing first): no
    // error. A query at or before the latest heartbeat is phi at it; an
    // older or equal heartbeat is absorbed and changes nothing.
    let at_latest = d.phi("a", 10 * S).unwrap();
    assert_eq!(d.phi("a", 9 * S), Ok(at_latest));
    assert_eq!(d.phi("a", 0), Ok(at_latest));
    assert!(at_latest < 1e-3, "{at_latest}");
    assert_eq!(d.is_available("a", 9 * S), Ok(true));
    d.heartbeat("a", 9 * S).unwrap();
    d.heartbeat("a", 10 * S).unwrap();
    assert_eq!(d.last_heartbeat("a").unwrap(), 10 * S);
    assert_eq!(d.intervals("a").unwrap(), [750 * MS, 1250 * MS]);
    // A later one counts as usual.
    d.heartbeat("a", 11 * S).unwrap();
    assert_eq!(d.intervals("a").unwrap().last(), Some(&S));
    // Far-future times do not overflow: φ is +inf, not a panic.
    assert_eq!(d.phi("a", u64::MAX).unwrap(), f64::INFINITY);
    d.heartbeat("a", u64::MAX).unwrap();
}

#[test]
fn bad_configs() {
    let ok = DetectorConfig::default();
    let bad = [
        DetectorConfig {
            threshold: 0.0,
            ..ok
        },
        DetectorConfig {
            threshold: -1.0,
            ..ok
        },
        DetectorConfig {
            threshold: f64::NAN,
            ..ok
        },
        DetectorConfig {
            threshold: f64::INFINITY,
            ..ok
        },
        DetectorConfig {
            max_samples: 0,
            ..ok
        },
        DetectorConfig {
            max_samples: window::MAX_WINDOW + 1,
            ..ok
        },
        DetectorConfig {
            min_std_dev_ns: 0,
            ..ok
        },
        DetectorConfig {
            first_heartbeat_estimate_ns: 0,
            ..ok
        },
        // Once clamped to 2^55 ns silently (the node was then reported dead).
        DetectorConfig {
            first_heartbeat_estimate_ns: MAX_INTERVAL_NS + 1,
            ..ok
        },
        DetectorConfig {
            acceptable_pause_ns: MAX_INTERVAL_NS + 1,
            ..ok
        },
        DetectorConfig {
            min_std_dev_ns: u64::MAX,
            ..ok
        },
    ];
    for c in bad {
        assert!(
            matches!(FailureDetector::new(c), Err(Error::InvalidArgument(_))),
            "{c:?}"
        );
    }
    // Edges that are fine: one sample, no pause, the largest window.
    for c in [
        DetectorConfig {
            max_samples: 1,
            ..ok
        },
        DetectorConfig {
            acceptable_pause_ns: 0,
            ..ok
        },
        DetectorConfig {
            max_samples: window::MAX_WINDOW,
            ..ok
        },
        DetectorConfig {
            first_heartbeat_estimate_ns: MAX_INTERVAL_NS,
            acceptable_pause_ns: MAX_INTERVAL_NS,
            min_std_dev_ns: MAX_INTERVAL_NS,
            ..ok
        },
    ] {
        FailureDetector::new(c).unwrap();
    }
    // The largest estimate is kept as given: a node is available at first.
    let mut far = det(DetectorConfig {
        first_heartbeat_estimate_ns: MAX_INTERVAL_NS,
        ..ok
    });
    far.heartbeat("a", 0).unwrap();
    assert!(far.is_available("a", MAX_INTERVAL_NS / 2).unwrap());
    // One sample: the seeds leave [1.25 s] behind, std = the floor.
    let mut d = det(DetectorConfig {
        max_samples: 1,
        ..ok
    });
    d.heartbeat("a", 0).unwrap();
    assert_eq!(d.intervals("a").unwrap(), [1250 * MS]);
}
