//! `paxos::FileStorage`: records survive reopening, unsynced ones may be
//! lost but synced ones never are, and a torn or damaged tail — cut at every
//! byte offset, or with bits flipped — is discarded and truncated so that
//! later appends follow valid data.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use quorumkit::Error;
use quorumkit::paxos::file_storage::{FILE_HEADER_LEN, FRAME_HEADER_LEN};
use quorumkit::paxos::wire::encode_record;
use quorumkit::paxos::{Ballot, FileStorage, Record, Storage};

/// A file path in the system temp directory, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "quorumkit-test-{}-{n}-{name}.qkpx",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&p);
        TempPath(p)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn b(round: u64, node: u32) -> Ballot {
    Ballot { round, node }
}

/// A mix of every record kind and of sizes (one frame crosses 300 bytes).
fn sample_records(n: usize) -> Vec<Record> {
    (0..n as u64)
        .map(|i| match i % 4 {
            0 => Record::Promise {
                ballot: b(i + 1, 2),
            },
            1 => Record::Accept {
                slot: i,
                ballot: b(i, 1),
                batch: vec![
                    format!("cmd-{i}").into_bytes(),
                    vec![i as u8; (i as usize * 37) % 300],
                ],
            },
            2 => Record::Chosen {
                slot: i,
                batch: vec![],
            },
            _ => Record::Commit { commit: i * 1000 },
        })
        .collect()
}

/// The file offset at which each record's frame ends.
fn frame_ends(records: &[Record]) -> Vec<u64> {
    let mut at = FILE_HEADER_LEN;
    records
        .iter()
        .map(|r| {
            let mut p = Vec::new();
            encode_record(r, &mut p);
            at += (FRAME_HEADER_LEN + p.len()) as u64;
            at
        })
        .collect()
}

fn write_store(path: &Path, records: &[Record]) {
    let mut s = FileStorage::open(path).unwrap();
    for r in records {
        s.append(r).unwrap();
    }
    s.sync().unwrap();
}

fn reload(path: &Path) -> Vec<Record> {
    FileStorage::open(path).unwrap().load().unwrap()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn records_survive_reopening_in_order() {
    let path = TempPath::new("reopen");
    let recs = sample_records(10);
    {
        let mut s = FileStorage::open(&*path).unwrap();
        assert_eq!(s.path(), &*path);
        assert_eq!(s.load().unwrap(), vec![]);
        for r in &recs[..6] {
            s.append(r).unwrap();
        }
        assert_eq!(s.record_count(), 6);
        s.sync().unwrap();
        assert_eq!(s.syncs(), 1);
        // Nothing new: no second fsync.
        s.sync().unwrap();
        assert_eq!(s.syncs(), 1);
        assert_eq!(s.len_bytes(), frame_ends(&recs[..6])[5]);
    }
    let bytes = std::fs::read(&*path).unwrap();
    assert_eq!(&bytes[..6], b"QKPX\x01\x00");
    {
        let mut s = FileStorage::open(&*path).unwrap();
        assert_eq!(s.record_count(), 6);
        assert_eq!(s.load().unwrap(), &recs[..6]);
        for r in &recs[6..] {
            s.append(r).unwrap();
        }
        s.sync().unwrap();
        // A second load re-reads the file, appends included.
        assert_eq!(s.load().unwrap(), recs);
        assert_eq!(s.discarded_bytes(), 0);
        assert_eq!(s.last_discard(), None);
    }
    assert_eq!(reload(&path), recs);
    assert_eq!(file_len(&path), *frame_ends(&recs).last().unwrap());
}

#[test]
fn the_file_layout_matches_docs_wire_md() {
    // docs/WIRE.md, "Record file": the example file, byte for byte.
    let path = TempPath::new("layout");
    write_store(
        &path,
        &[Record::Accept {
            slot: 1,
            ballot: b(1, 2),
            batch: vec![b"set".to_vec()],
        }],
    );
    let want: [u8; 24] = [
        0x51, 0x4B, 0x50, 0x58, 0x01, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x19, 0x45, 0x57, 0x88, 0x01,
        0x21, 0x01, 0x01, 0x02, 0x01, 0x03, 0x73, 0x65, 0x74,
    ];
    assert_eq!(std::fs::read(&*path).unwrap(), want);
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

#[test]
fn load_includes_appends_not_yet_synced() {
    let path = TempPath::new("load-buffered");
    let recs = sample_records(3);
    let mut s = FileStorage::open(&*path).unwrap();
    for r in &recs {
        s.append(r).unwrap();
    }
    assert_eq!(s.load().unwrap(), recs);
    s.append(&Record::Commit { commit: 1 }).unwrap();
    assert_eq!(s.load().unwrap().len(), 4);
}

#[test]
fn unsynced_appends_are_lost_on_drop_synced_ones_never() {
    let path = TempPath::new("crash");
    let recs = sample_records(8);
    {
        let mut s = FileStorage::open(&*path).unwrap();
        for r in &recs[..5] {
            s.append(r).unwrap();
        }
        s.sync().unwrap();
        for r in &recs[5..] {
            s.append(r).unwrap();
        }
        // Dropped without a sync: a crash.
    }
    let got = reload(&path);
    assert!(got.len() >= 5 && got[..] == recs[..got.len()], "{got:?}");
    assert_eq!(got, &recs[..5], "drop writes nothing unsynced");
}

#[test]
fn large_unsynced_runs_are_written_out_early_and_recover_as_a_prefix() {
    let path = TempPath::new("write-out");
    let rec = |i: u64| Record::Accept {
        slot: i,
        ballot: b(1, 1),
        batch: vec![vec![i as u8; 10_000]],
    };
    {
        let mut s = FileStorage::open(&*path).unwrap();
        for i in 0..250 {
            s.append(&rec(i)).unwrap();
        }
        // Past the 1 MiB buffer: some frames are already in the file.
        assert!(file_len(&path) > 1 << 20);
    }
    let got = reload(&path);
    assert!(!got.is_empty() && got.len() < 250);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(*r, rec(i as u64));
    }
}

#[test]
fn a_cut_at_every_offset_of_the_tail_recovers_the_complete_records_before_it() {
    let src = TempPath::new("cut-src");
    let recs = sample_records(12);
    write_store(&src, &recs);
    let full = std::fs::read(&*src).unwrap();
    let ends = frame_ends(&recs);
    assert_eq!(full.len() as u64, *ends.last().unwrap());

    // The last four records' bytes, and the header region too.
    let tail_from = ends[recs.len() - 5];
    let cuts = (0..=FILE_HEADER_LEN).chain(tail_from..=full.len() as u64);
    let path = TempPath::new("cut");
    for cut in cuts {
        std::fs::write(&*path, &full[..cut as usize]).unwrap();
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        let boundary = if complete == 0 {
            FILE_HEADER_LEN
        } else {
            ends[complete - 1]
        };
        let mut s = FileStorage::open(&*path).unwrap();
        assert_eq!(s.load().unwrap(), &recs[..complete], "cut at {cut}");
        // Truncated at the last whole frame (a cut inside the header
        // rewrites the header of an empty file).
        assert_eq!(file_len(&path), boundary, "cut at {cut}");
        assert_eq!(s.len_bytes(), boundary);
        assert_eq!(
            s.discarded_bytes() > 0,
            cut > boundary && cut >= FILE_HEADER_LEN
        );
        // Appending after recovery follows valid data.
        let extra = Record::Commit { commit: 777 };
        s.append(&extra).unwrap();
        s.sync().unwrap();
        drop(s);
        let mut want = recs[..complete].to_vec();
        want.push(extra);
        assert_eq!(reload(&path), want, "cut at {cut}");
    }
}

#[test]
fn flipped_bits_in_the_last_frame_discard_it() {
    let src = TempPath::new("flip-src");
    let recs = sample_records(6);
    write_store(&src, &recs);
    let full = std::fs::read(&*src).unwrap();
    let ends = frame_ends(&recs);
    let last_start = ends[ends.len() - 2] as usize;
    let path = TempPath::new("flip");
    for bit in last_start * 8..full.len() * 8 {
        let mut damaged = full.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&*path, &damaged).unwrap();
        let mut s = FileStorage::open(&*path).unwrap();
        assert_eq!(s.load().unwrap(), &recs[..recs.len() - 1], "bit {bit}");
        assert!(s.last_discard().is_some());
        assert_eq!(file_len(&path), last_start as u64);
    }
}

#[test]
fn damage_in_the_middle_ends_the_log_there() {
    let path = TempPath::new("middle");
    let recs = sample_records(6);
    write_store(&path, &recs);
    let ends = frame_ends(&recs);
    let mut bytes = std::fs::read(&*path).unwrap();
    // Flip a payload byte of record 2 (its frame starts at ends[1]).
    bytes[ends[1] as usize + FRAME_HEADER_LEN + 1] ^= 0x40;
    std::fs::write(&*path, &bytes).unwrap();
    let s = FileStorage::open(&*path).unwrap();
    assert!(
        s.last_discard().unwrap().contains("checksum mismatch"),
        "{:?}",
        s.last_discard()
    );
    drop(s);
    assert_eq!(reload(&path), &recs[..2]);
    assert_eq!(file_len(&path), ends[1]);
}

#[test]
fn a_valid_checksum_over_an_undecodable_payload_is_discarded() {
    let path = TempPath::new("undecodable");
    let recs = sample_records(2);
    write_store(&path, &recs);
    let mut bytes = std::fs::read(&*path).unwrap();
    let payload = [1u8, 0x7F]; // version 1, no such tag
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&*path, &bytes).unwrap();
    let s = FileStorage::open(&*path).unwrap();
    assert!(s.last_discard().unwrap().contains("does not decode"));
    drop(s);
    assert_eq!(reload(&path), recs);
}

#[test]
fn a_file_that_is_not_ours_is_refused_untouched() {
    let path = TempPath::new("magic");
    for content in [
        &b"NOPE\x01\x00rest of someone else's file"[..],
        b"QX",
        b"hello",
    ] {
        std::fs::write(&*path, content).unwrap();
        match FileStorage::open(&*path) {
            Err(Error::Corrupt(m)) => assert!(m.contains("not a record file"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&*path).unwrap(), content);
    }
}

#[test]
fn newer_formats_are_refused_untouched() {
    let path = TempPath::new("version");
    std::fs::write(&*path, b"QKPX\x02\x00more").unwrap();
    assert_eq!(
        FileStorage::open(&*path).unwrap_err(),
        Error::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    // An intact record (good checksum) in a newer wire version.
    std::fs::remove_file(&*path).unwrap();
    let recs = sample_records(2);
    write_store(&path, &recs);
    let mut bytes = std::fs::read(&*path).unwrap();
    let payload = [2u8, 0x20, 0x01, 0x01];
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&*path, &bytes).unwrap();
    assert!(matches!(
        FileStorage::open(&*path),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    assert_eq!(std::fs::read(&*path).unwrap(), bytes);
}

#[test]
fn io_errors_are_storage_errors_naming_the_path() {
    let missing = std::env::temp_dir()
        .join(format!("quorumkit-no-such-dir-{}", std::process::id()))
        .join("log.qkpx");
    match FileStorage::open(&missing) {
        Err(Error::Storage(m)) => {
            assert!(m.contains("cannot open") && m.contains("log.qkpx"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let dir = std::env::temp_dir();
    assert!(matches!(FileStorage::open(&dir), Err(Error::Storage(_))));
}

#[cfg(target_os = "linux")]
#[test]
fn a_device_that_fails_writes_is_a_storage_error() {
    // /dev/full opens, reads as empty here, and refuses the header write
    // (or the truncate before it).
    match FileStorage::open("/dev/full") {
        Err(Error::Storage(m)) => assert!(m.contains("/dev/full"), "{m}"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random records with random sync points; the unsynced tail is torn at
    /// a random offset (and may be followed by garbage, as a torn write can
    /// leave): the load is a prefix of what was appended and holds every
    /// record synced before the tear.
    #[test]
    fn torn_tails_keep_every_synced_record(
        ops in vec((0usize..4, 0usize..400, any::<bool>()), 1..40),
        tear in any::<u64>(),
        garbage in vec(any::<u8>(), 0..40),
    ) {
        let path = TempPath::new("prop");
        let mut all = Vec::new();
        let mut durable = (0usize, FILE_HEADER_LEN); // (records, bytes) at the last sync
        {
            let mut s = FileStorage::open(&*path).unwrap();
            for (i, (kind, size, sync)) in ops.iter().enumerate() {
                let i = i as u64;
                let r = match kind {
                    0 => Record::Promise { ballot: b(i, 1) },
                    1 => Record::Accept { slot: i, ballot: b(i, 2), batch: vec![vec![7; *size]] },
                    2 => Record::Chosen { slot: i, batch: vec![vec![1; *size % 7]; *size % 5] },
                    _ => Record::Commit { commit: i },
                };
                s.append(&r).unwrap();
                all.push(r);
                if *sync {
                    s.sync().unwrap();
                    durable = (all.len(), s.len_bytes());
                }
            }
            // Everything reaches the file; only the part after the last
            // real sync point may be torn.
            s.sync().unwrap();
        }
        let full = std::fs::read(&*path).unwrap();
        let cut = durable.1 + tear % (full.len() as u64 - durable.1 + 1);
        let mut torn = full[..cut as usize].to_vec();
        torn.extend_from_slice(&garbage);
        std::fs::write(&*path, &torn).unwrap();

        let got = reload(&path);
        prop_assert!(got.len() >= durable.0, "lost synced records: {} < {}", got.len(), durable.0);
        prop_assert!(got.len() <= all.len());
        prop_assert_eq!(&got[..], &all[..got.len()]);
        if garbage.is_empty() {
            let ends = frame_ends(&all);
            prop_assert_eq!(got.len(), ends.iter().filter(|&&e| e <= cut).count());
        }
        // And the store keeps working after recovery.
        let mut s = FileStorage::open(&*path).unwrap();
        s.append(&Record::Commit { commit: 1 }).unwrap();
        s.sync().unwrap();
        drop(s);
        prop_assert_eq!(reload(&path).len(), got.len() + 1);
    }
}
