#![allow(dead_code)] // each fuzz target uses one of these
//! The properties every fuzz target checks, shared with the plain
//! `cargo test` replay of the committed corpus and regressions
//! (`tests/fuzz_regressions.rs`). Each takes arbitrary bytes and panics
//! only on a real bug: a decoder that panics, or one that accepts bytes
//! whose re-encoding is different (every format here is canonical: one
//! value, one encoding).

use quorumkit::paxos::wire;
use quorumkit::paxos::{FileIdentity, FileStorage, Storage};
use quorumkit::ring::snapshot::DecodeLimits;
use quorumkit::ring::{HashRing, KetamaRing, Maglev, Rendezvous, Snapshot};

/// Paxos wire: messages, envelopes, records and single-decree messages
/// (the first byte picks the decoder, the rest is the input).
pub fn paxos_wire(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    match pick % 4 {
        0 => {
            if let Ok(m) = wire::decode(bytes) {
                let mut out = Vec::new();
                wire::encode(&m, &mut out);
                assert_eq!(out, bytes, "message {m:?} re-encodes differently");
            }
        }
        1 => {
            if let Ok(e) = wire::decode_envelope(bytes) {
                let mut out = Vec::new();
                wire::encode_envelope(&e, &mut out);
                assert_eq!(out, bytes, "envelope {e:?} re-encodes differently");
            }
        }
        2 => {
            if let Ok(r) = wire::decode_record(bytes) {
                let mut out = Vec::new();
                wire::encode_record(&r, &mut out);
                assert_eq!(out, bytes, "record {r:?} re-encodes differently");
            }
        }
        _ => {
            if let Ok(m) = wire::decode_single(bytes) {
                let mut out = Vec::new();
                wire::encode_single(&m, &mut out);
                assert_eq!(out, bytes, "single-decree {m:?} re-encodes differently");
            }
        }
    }
}

/// Transaction (2PC and Paxos Commit) wire messages.
pub fn txn_wire(data: &[u8]) {
    if let Ok(m) = quorumkit::txn::wire::decode(data) {
        let out = quorumkit::txn::wire::encode(&m);
        assert_eq!(out, data, "txn message {m:?} re-encodes differently");
    }
}

/// Ring snapshots of every kind, within a small decode budget (a valid
/// snapshot may ask for millions of points; the budget refuses it early).
pub fn snapshot(data: &[u8]) {
    let limits = DecodeLimits {
        max_points: 1 << 16,
    };
    fn check<T: Snapshot>(data: &[u8], limits: &DecodeLimits) {
        if let Ok(v) = T::from_snapshot_with_limits(data, limits) {
            assert_eq!(v.to_snapshot(), data, "a snapshot re-encodes differently");
        }
    }
    check::<HashRing>(data, &limits);
    check::<KetamaRing>(data, &limits);
    check::<Rendezvous>(data, &limits);
    check::<Maglev>(data, &limits);
}

/// A Paxos record file: a valid header for replica 1 of cluster 7, then
/// the input as its frames. Opening never panics; if it opens, its records
/// survive an append, a sync and a reopen.
pub fn record_file(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let id = FileIdentity::new(7, 1);
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "quorumkit-fuzz-{}-{}.qkpx",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    // A fresh file gets this replica's header; then the input follows it.
    drop(FileStorage::open(&path, id).expect("a new file opens"));
    let mut bytes = std::fs::read(&path).expect("read back");
    bytes.extend_from_slice(data);
    std::fs::write(&path, &bytes).expect("write");
    let before = std::fs::read(&path).expect("read");
    match FileStorage::open(&path, id) {
        Ok(mut s) => {
            let records = s.load().expect("load after open");
            let extra = quorumkit::paxos::Record::Commit { commit: 1 };
            s.append(&extra).expect("append");
            s.sync().expect("sync");
            drop(s);
            let mut again = FileStorage::open(&path, id).expect("reopen");
            let mut want = records;
            want.push(extra);
            assert_eq!(
                again.load().expect("load"),
                want,
                "records lost across a reopen"
            );
        }
        Err(_) => {
            // A refusal leaves the file exactly as it was.
            assert_eq!(
                std::fs::read(&path).expect("read"),
                before,
                "a refused open changed the file"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}
