//! Ketama placements checked against vectors produced by libmemcached 1.1.4
//! and uhashring 2.5 (tests/vectors/ketama-sample.json).

use quorumkit::ring::{KetamaCompat, KetamaRing, KetamaServer, Placement};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ketama-sample.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// libmemcached's own name for a server: host, plus :port off 11211.
fn lmc_name(host: &str, port: u16) -> String {
    if port == 11211 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

#[test]
fn matches_libmemcached_and_uhashring_sample() {
    let v = vectors();
    let mut checked = 0;
    for (cfg_name, cfg) in v["configs"].as_object().unwrap() {
        let servers: Vec<(String, u16, u32)> = cfg["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["host"].as_str().unwrap().to_owned(),
                    s["port"].as_u64().unwrap() as u16,
                    s["weight"].as_u64().unwrap() as u32,
                )
            })
            .collect();
        let spec = |names: &dyn Fn(&str, u16) -> String| -> Vec<KetamaServer> {
            servers
                .iter()
                .map(|(h, p, w)| KetamaServer::parse(&names(h, *p), *w).unwrap())
                .collect()
        };
        let lmc = KetamaRing::new(spec(&lmc_name), KetamaCompat::Libmemcached).unwrap();
        let uh_lmc = KetamaRing::new(spec(&lmc_name), KetamaCompat::Uhashring).unwrap();
        let uh_kt = KetamaRing::new(
            spec(&|h: &str, p: u16| format!("{h}:{p}")),
            KetamaCompat::Uhashring,
        )
        .unwrap();
        for vec in cfg["vectors"].as_array().unwrap() {
            let key = vec["key"].as_str().unwrap().as_bytes();
            assert_eq!(
                KetamaRing::key_hash(key) as u64,
                vec["md5_u32"].as_u64().unwrap()
            );
            let ctx = format!("{cfg_name} key {:?}", vec["key"]);
            assert_eq!(
                lmc.get_node(key).unwrap(),
                vec["libmemcached"].as_str().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                uh_lmc.get_node(key).unwrap(),
                vec["uhashring_lmc_names"].as_str().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                uh_kt.get_node(key).unwrap(),
                vec["uhashring_kt_names"].as_str().unwrap(),
                "{ctx}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 600, "only {checked} vectors");
}

#[test]
fn libmemcached_float32_point_counts() {
    // 25 equal servers: float32 rounding gives 39 digests (156 points), not 40.
    assert_eq!(
        KetamaRing::digests_per_server(KetamaCompat::Libmemcached, 1, 25, 25),
        39
    );
    assert_eq!(
        KetamaRing::digests_per_server(KetamaCompat::Libmemcached, 1, 4, 4),
        40
    );
    assert_eq!(
        KetamaRing::digests_per_server(KetamaCompat::Uhashring, 1, 25, 25),
        40
    );
    let servers = (0..25)
        .map(|i| KetamaServer::new(&format!("10.0.0.{i}"), 11211, 1).unwrap())
        .collect();
    let r = KetamaRing::new(servers, KetamaCompat::Libmemcached).unwrap();
    assert_eq!(r.point_count(), 25 * 156);
}
