//! Snapshots: the committed cross-face fixtures restore to their recorded
//! placements and re-encode byte for byte; random, mutated and truncated
//! input is rejected with an error, never a panic.
//!
//! `QK_REGEN_SNAPSHOT_VECTORS=1 cargo test --test snapshot` rewrites the
//! fixtures in tests/vectors/snapshot-v1/ (only when the format changes:
//! the C and Python tests read the same files).

use std::path::PathBuf;

use proptest::prelude::*;
use quorumkit::Error;
use quorumkit::ring::snapshot::{self, Snapshot};
use quorumkit::ring::{
    HashRing, KetamaCompat, KetamaRing, KetamaServer, Maglev, Placement, Rendezvous,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/snapshot-v1")
}

/// The rings the fixtures hold.
fn fixture_rings() -> (HashRing, KetamaRing) {
    let ring = HashRing::from_nodes(
        40,
        [
            ("cache-a", 1),
            ("cache-b", 2),
            ("cache-ü", 1),
            ("10.0.0.7:6379", 3),
        ],
    )
    .unwrap();
    let ketama = KetamaRing::new(
        vec![
            KetamaServer::parse("10.0.0.1:11211", 1).unwrap(),
            KetamaServer::parse("10.0.0.2:11212", 2).unwrap(),
            KetamaServer::parse("[::1]:11300", 1).unwrap(),
        ],
        KetamaCompat::Libmemcached,
    )
    .unwrap();
    (ring, ketama)
}

/// The kinds added later (3 and 4) have their own files, so the first
/// fixtures stay byte-identical.
fn fixture_hrw_maglev() -> (Rendezvous, Maglev) {
    let hrw = Rendezvous::from_nodes([
        ("cache-a", 1.0),
        ("cache-b", 2.5),
        ("cache-ü", 0.75),
        ("10.0.0.7:6379", 1.0),
    ])
    .unwrap();
    let maglev = Maglev::from_nodes(
        257,
        [("be-1", 1), ("be-2", 3), ("be-ü", 1), ("10.0.0.9:80", 2)],
    )
    .unwrap();
    (hrw, maglev)
}

fn placements_hrw_maglev_tsv(hrw: &Rendezvous, maglev: &Maglev) -> String {
    let mut out = String::from("# kind\tkey\tnode (tests/snapshot.rs writes this file)\n");
    for k in fixture_keys() {
        out += &format!("rendezvous\t{k}\t{}\n", hrw.get_node(k.as_bytes()).unwrap());
    }
    for k in fixture_keys() {
        out += &format!("maglev\t{k}\t{}\n", maglev.get_node(k.as_bytes()).unwrap());
    }
    out
}

fn fixture_keys() -> Vec<String> {
    (0..64).map(|i| format!("key-{i}")).collect()
}

fn placements_tsv(ring: &HashRing, ketama: &KetamaRing) -> String {
    let mut out = String::from("# kind\tkey\tnode (tests/snapshot.rs writes this file)\n");
    for k in fixture_keys() {
        out += &format!("ring\t{k}\t{}\n", ring.get_node(k.as_bytes()).unwrap());
    }
    for k in fixture_keys() {
        out += &format!("ketama\t{k}\t{}\n", ketama.get_node(k.as_bytes()).unwrap());
    }
    out
}

#[test]
fn fixtures_restore_to_their_placements() {
    let (ring, ketama) = fixture_rings();
    if std::env::var_os("QK_REGEN_SNAPSHOT_VECTORS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(dir().join("hash_ring.qksn"), ring.to_snapshot()).unwrap();
        std::fs::write(dir().join("ketama.qksn"), ketama.to_snapshot()).unwrap();
        std::fs::write(dir().join("placements.tsv"), placements_tsv(&ring, &ketama)).unwrap();
    }
    let (hrw, maglev) = fixture_hrw_maglev();
    if std::env::var_os("QK_REGEN_SNAPSHOT_VECTORS").is_some() {
        std::fs::write(dir().join("rendezvous.qksn"), hrw.to_snapshot()).unwrap();
        std::fs::write(dir().join("maglev.qksn"), maglev.to_snapshot()).unwrap();
        std::fs::write(
            dir().join("placements-hrw-maglev.tsv"),
            placements_hrw_maglev_tsv(&hrw, &maglev),
        )
        .unwrap();
    }
    let hrw_bytes = std::fs::read(dir().join("rendezvous.qksn")).unwrap();
    let maglev_bytes = std::fs::read(dir().join("maglev.qksn")).unwrap();
    let tsv2 = std::fs::read_to_string(dir().join("placements-hrw-maglev.tsv")).unwrap();
    assert_eq!(hrw.to_snapshot(), hrw_bytes);
    assert_eq!(maglev.to_snapshot(), maglev_bytes);
    let h = Rendezvous::from_snapshot(&hrw_bytes).unwrap();
    let m = Maglev::from_snapshot(&maglev_bytes).unwrap();
    assert_eq!(m.table(), maglev.table());
    assert_eq!(m.table_size(), 257);
    let mut checked2 = 0;
    for line in tsv2.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let got = match f[0] {
            "rendezvous" => h.get_node(f[1].as_bytes()).unwrap(),
            "maglev" => m.get_node(f[1].as_bytes()).unwrap(),
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(got, f[2], "{line}");
        checked2 += 1;
    }
    assert_eq!(checked2, 128);

    let ring_bytes = std::fs::read(dir().join("hash_ring.qksn")).unwrap();
    let ketama_bytes = std::fs::read(dir().join("ketama.qksn")).unwrap();
    let tsv = std::fs::read_to_string(dir().join("placements.tsv")).unwrap();
    // The format is stable: today's encoder writes the committed bytes.
    assert_eq!(ring.to_snapshot(), ring_bytes);
    assert_eq!(ketama.to_snapshot(), ketama_bytes);
    let r = HashRing::from_snapshot(&ring_bytes).unwrap();
    let k = KetamaRing::from_snapshot(&ketama_bytes).unwrap();
    let mut checked = 0;
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let got = match f[0] {
            "ring" => r.get_node(f[1].as_bytes()).unwrap(),
            "ketama" => k.get_node(f[1].as_bytes()).unwrap(),
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(got, f[2], "{line}");
        checked += 1;
    }
    assert_eq!(checked, 128);
}

/// Decoding never panics; when it succeeds, re-encoding gives the input
/// back (the encoding is canonical), so nothing was silently skipped.
fn check_any(bytes: &[u8]) {
    if let Ok(r) = HashRing::from_snapshot(bytes) {
        assert_eq!(r.to_snapshot(), bytes);
    }
    if let Ok(k) = KetamaRing::from_snapshot(bytes) {
        assert_eq!(k.to_snapshot(), bytes);
    }
    if let Ok(h) = Rendezvous::from_snapshot(bytes) {
        assert_eq!(h.to_snapshot(), bytes);
    }
    if let Ok(m) = Maglev::from_snapshot(bytes) {
        assert_eq!(m.to_snapshot(), bytes);
    }
}

/// Recomputes the checksum so a mutation reaches the body decoder.
fn fix_crc(v: &mut [u8]) {
    if v.len() >= 16 {
        let end = v.len() - 4;
        let crc = crc32fast_hash(&v[..end]);
        v[end..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// CRC-32 (IEEE), bitwise: an independent check of the crate's table
/// version, from the polynomial 0xEDB88320 (reflected).
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc_is_zlib_crc32() {
    // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
    assert_eq!(crc32fast_hash(b"123456789"), 0xCBF4_3926);
    let (ring, _) = fixture_rings();
    let s = ring.to_snapshot();
    let end = s.len() - 4;
    assert_eq!(
        u32::from_le_bytes(s[end..].try_into().unwrap()),
        crc32fast_hash(&s[..end])
    );
}

#[test]
fn every_truncation_is_rejected() {
    let (ring, ketama) = fixture_rings();
    let (hrw, maglev) = fixture_hrw_maglev();
    for full in [
        ring.to_snapshot(),
        ketama.to_snapshot(),
        hrw.to_snapshot(),
        maglev.to_snapshot(),
    ] {
        for cut in 0..full.len() {
            let e = Rendezvous::from_snapshot(&full[..cut]).unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "cut {cut}: {e:?}");
            let e = Maglev::from_snapshot(&full[..cut]).unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "cut {cut}: {e:?}");
            let e = HashRing::from_snapshot(&full[..cut]).unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "cut {cut}: {e:?}");
            let e = KetamaRing::from_snapshot(&full[..cut]).unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "cut {cut}: {e:?}");
            // Even with a valid checksum over what is left.
            let mut v = full[..cut].to_vec();
            fix_crc(&mut v);
            check_any(&v);
        }
    }
}

#[test]
fn every_single_byte_flip_is_rejected() {
    let (ring, _) = fixture_rings();
    let full = ring.to_snapshot();
    for i in 0..full.len() {
        for bit in 0..8 {
            let mut v = full.clone();
            v[i] ^= 1 << bit;
            // CRC-32 detects every single-bit error; the magic and the
            // version fail before it.
            let e = HashRing::from_snapshot(&v).unwrap_err();
            match i {
                4 | 5 => assert!(matches!(e, Error::UnsupportedVersion { .. }), "{i}: {e:?}"),
                _ => assert!(matches!(e, Error::Corrupt(_)), "{i}.{bit}: {e:?}"),
            }
        }
    }
}

#[test]
fn frame_reports_kind() {
    let (ring, ketama) = fixture_rings();
    assert_eq!(snapshot::open(&ring.to_snapshot()).unwrap().0, 1);
    assert_eq!(snapshot::open(&ketama.to_snapshot()).unwrap().0, 2);
    let (hrw, maglev) = fixture_hrw_maglev();
    assert_eq!(snapshot::open(&hrw.to_snapshot()).unwrap().0, 3);
    assert_eq!(snapshot::open(&maglev.to_snapshot()).unwrap().0, 4);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(HashRing::from_snapshot(&v).is_err() || v.starts_with(b"QKSN"));
        check_any(&v);
    }

    #[test]
    fn random_body_with_valid_frame_never_panics(
        kind in 0u16..6,
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut v = b"QKSN".to_vec();
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(&body);
        v.extend_from_slice(&[0; 4]);
        fix_crc(&mut v);
        check_any(&v);
    }

    #[test]
    fn mutated_snapshots_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        fix in any::<bool>(),
    ) {
        let (ring, ketama) = fixture_rings();
        let (hrw, maglev) = fixture_hrw_maglev();
        let mut v = match which {
            0 => ring.to_snapshot(),
            1 => ketama.to_snapshot(),
            2 => hrw.to_snapshot(),
            _ => maglev.to_snapshot(),
        };
        for (pos, byte, op) in edits {
            let p = pos % (v.len() + 1);
            match op {
                0 if p < v.len() => v[p] = byte,
                1 => v.insert(p, byte),
                _ if p < v.len() => { v.remove(p); }
                _ => {}
            }
        }
        if fix {
            fix_crc(&mut v);
        }
        check_any(&v);
    }
}
