//! Replays every committed fuzzing input — the seed corpora and the inputs
//! the fuzzers found (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`)
//! — through the same properties the fuzz targets check (`fuzz/checks.rs`),
//! so a regression fails plain `cargo test` without a fuzzer.
//! `QK_WRITE_FUZZ_SEEDS=1` (re)writes the txn, snapshot and record-file
//! seed corpora (the Paxos wire ones come from tests/paxos_wire.rs).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for e in dir {
            let p = e.unwrap().path();
            if p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep") {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, check: fn(&[u8]), at_least: usize) {
    let all = inputs(target);
    assert!(all.len() >= at_least, "{target}: {} inputs", all.len());
    for (path, bytes) in all {
        let r = std::panic::catch_unwind(|| check(&bytes));
        assert!(r.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn paxos_wire_inputs_hold() {
    replay("paxos_wire", checks::paxos_wire, 10);
}

#[test]
fn txn_wire_inputs_hold() {
    replay("txn_wire", checks::txn_wire, 3);
}

#[test]
fn snapshot_inputs_hold() {
    replay("snapshot", checks::snapshot, 4);
}

#[test]
fn record_file_inputs_hold() {
    replay("record_file", checks::record_file, 3);
}

#[test]
fn write_fuzz_seeds() {
    if std::env::var_os("QK_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    use quorumkit::paxos::{Ballot, FileIdentity, FileStorage, Record, Storage};
    use quorumkit::txn::{Message, PaxosMsg};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let msgs = [
        Message::Prepare {
            txn: 7,
            participants: vec![1, 2, 3],
            acceptors: vec![4, 5, 6],
        },
        Message::Vote { txn: 7, yes: true },
        Message::Outcome {
            txn: u64::MAX,
            commit: false,
        },
        Message::DecisionRequest { txn: 1 },
        Message::Paxos {
            txn: 9,
            rm: 2,
            msg: PaxosMsg::Prepare {
                ballot: Ballot { round: 2, node: 5 },
            },
        },
    ];
    for (i, m) in msgs.iter().enumerate() {
        put(
            "txn_wire",
            &format!("seed-{i:03}"),
            &quorumkit::txn::wire::encode(m),
        );
    }
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/snapshot-v1");
    for name in ["hash_ring", "ketama", "maglev", "rendezvous"] {
        let bytes = std::fs::read(vectors.join(format!("{name}.qksn"))).unwrap();
        put("snapshot", &format!("seed-{name}"), &bytes);
    }
    // Record files: the frames after the header of a real file.
    let tmp = std::env::temp_dir().join(format!("quorumkit-seed-{}.qkpx", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let records = [
        Record::Promise {
            ballot: Ballot { round: 3, node: 1 },
        },
        Record::Accept {
            slot: 0,
            ballot: Ballot { round: 3, node: 1 },
            batch: vec![b"set x 1".to_vec(), vec![]],
        },
        Record::Chosen {
            slot: 1,
            batch: vec![b"y".to_vec()],
        },
        Record::Commit { commit: 2 },
    ];
    for n in 1..=records.len() {
        let _ = std::fs::remove_file(&tmp);
        let mut s = FileStorage::open(&tmp, FileIdentity::new(7, 1)).unwrap();
        for r in &records[..n] {
            s.append(r).unwrap();
        }
        s.sync().unwrap();
        drop(s);
        let bytes = std::fs::read(&tmp).unwrap();
        let header = quorumkit::paxos::file_storage::FILE_HEADER_LEN as usize;
        put("record_file", &format!("seed-{n}"), &bytes[header..]);
    }
    let _ = std::fs::remove_file(&tmp);
}
