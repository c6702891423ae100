//! `paxos::FileStorage`: records survive reopening, unsynced ones may be
//! lost but synced ones never are, a torn final frame — cut at every byte
//! offset — is discarded and truncated so that later appends follow valid
//! data, and any other damage (flipped bits, zeroed sectors, garbage, in any
//! frame) is refused with the file left untouched. The file is locked while
//! open and tied to one cluster and replica id.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use quorumkit::Error;
use quorumkit::paxos::file_storage::{FILE_HEADER_LEN, FRAME_HEADER_LEN};
use quorumkit::paxos::wire::encode_record;
use quorumkit::paxos::{Ballot, FileIdentity, FileStorage, Record, Storage};

/// The identity the tests' files belong to.
const ID: FileIdentity = FileIdentity {
    cluster_id: 7,
    replica_id: 1,
};

fn open(path: impl AsRef<Path>) -> quorumkit::Result<FileStorage> {
    FileStorage::open(path, ID)
}

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
    /// Removes the file and its log's other files (segments, a leftover
    /// `.compact`).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut prefix = self.0.file_name().unwrap().to_owned();
        prefix.push(".");
        let prefix = prefix.into_string().unwrap();
        for e in std::fs::read_dir(self.0.parent().unwrap())
            .unwrap()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
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
    let mut s = open(path).unwrap();
    for r in records {
        s.append(r).unwrap();
    }
    s.sync().unwrap();
}

fn reload(path: &Path) -> Vec<Record> {
    open(path).unwrap().load().unwrap()
}

/// The bytes of every file of the store's log.
fn files_len(s: &FileStorage) -> u64 {
    s.files().iter().map(|p| file_len(p)).sum()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn records_survive_reopening_in_order() {
    let path = TempPath::new("reopen");
    let recs = sample_records(10);
    {
        let mut s = open(&*path).unwrap();
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
    assert_eq!(
        &bytes[..14],
        b"QKPX\x03\x00\x07\x00\x00\x00\x00\x00\x00\x00"
    );
    {
        let mut s = open(&*path).unwrap();
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
    let want: [u8; 53] = [
        0x51, 0x4B, 0x50, 0x58, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0A, 0x8D, 0x3B,
        0x8D, 0x0A, 0x00, 0x00, 0x00, 0x19, 0x45, 0x57, 0x88, 0x1E, 0x54, 0x3B, 0xB9, 0x01, 0x21,
        0x01, 0x01, 0x02, 0x01, 0x03, 0x73, 0x65, 0x74,
    ];
    assert_eq!(std::fs::read(&*path).unwrap(), want);
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

#[test]
fn load_includes_appends_not_yet_synced() {
    let path = TempPath::new("load-buffered");
    let recs = sample_records(3);
    let mut s = open(&*path).unwrap();
    for r in &recs {
        s.append(r).unwrap();
    }
    assert_eq!(s.load().unwrap(), recs);
    s.append(&Record::Commit { commit: 1 }).unwrap();
    assert_eq!(s.load().unwrap().len(), 4);
}

#[test]
fn a_load_leaves_what_is_not_yet_durable_to_the_next_sync() {
    // A segment begun by a sync is made durable (its header, its directory
    // entry) by the next one; a load in between must not skip that.
    let path = TempPath::new("load-dirty");
    let mut s = open(&*path).unwrap();
    s.set_segment_bytes(1);
    s.append(&Record::Commit { commit: 1 }).unwrap();
    s.sync().unwrap();
    assert_eq!(s.files().len(), 2, "the sync began segment 1");
    let before = s.syncs();
    s.append(&Record::Commit { commit: 2 }).unwrap();
    assert_eq!(s.load().unwrap(), commits(1, 2));
    s.sync().unwrap();
    assert_eq!(s.syncs(), before + 1, "the segment was not synced");
}

#[test]
fn unsynced_appends_are_lost_on_drop_synced_ones_never() {
    let path = TempPath::new("crash");
    let recs = sample_records(8);
    {
        let mut s = open(&*path).unwrap();
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
        let mut s = open(&*path).unwrap();
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
        let mut s = open(&*path).unwrap();
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

/// Whether `e` is a refusal to open a damaged file (the header's own
/// refusals included, for damage inside the header).
fn is_refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::StorageCorrupt(_)
            | Error::Corrupt(_)
            | Error::UnsupportedVersion { .. }
            | Error::StorageMismatch(_)
    )
}

/// Opens `damaged` (written to `path`) and checks the rule: the open is
/// refused and the file is byte for byte as it was, or (only when `torn_ok`)
/// it opens and holds every record.
fn assert_refused_untouched(path: &Path, damaged: &[u8], what: &str) {
    std::fs::write(path, damaged).unwrap();
    match open(path) {
        Err(e) => assert!(is_refusal(&e), "{what}: {e:?}"),
        Ok(s) => panic!(
            "{what}: a damaged file opened ({} records, discarded {:?})",
            s.record_count(),
            s.last_discard()
        ),
    }
    assert!(
        std::fs::read(path).unwrap() == damaged,
        "{what}: a refused open changed the file"
    );
}

/// A log of many small frames of every kind (and one large one).
fn generated_log() -> (Vec<Record>, Vec<u8>) {
    let src = TempPath::new("gen");
    let recs = sample_records(24);
    write_store(&src, &recs);
    (recs, std::fs::read(&*src).unwrap())
}

#[test]
fn every_single_bit_flip_anywhere_is_refused_untouched() {
    let (recs, full) = generated_log();
    let ends = frame_ends(&recs);
    assert_eq!(full.len() as u64, *ends.last().unwrap());
    let path = TempPath::new("flip");
    // Every bit of the file: header, every frame header, every payload.
    for bit in 0..full.len() * 8 {
        let mut damaged = full.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert_refused_untouched(&path, &damaged, &format!("bit {bit}"));
    }
}

#[test]
fn every_zeroed_512_byte_sector_is_refused_untouched() {
    let (recs, full) = generated_log();
    let ends = frame_ends(&recs);
    let path = TempPath::new("sector");
    // Aligned sectors, and a sector starting at each frame (and inside
    // each frame header), as far as the file reaches.
    let mut starts: Vec<usize> = (0..full.len()).step_by(512).collect();
    let mut frame_starts = vec![FILE_HEADER_LEN as usize];
    frame_starts.extend(ends[..ends.len() - 1].iter().map(|&e| e as usize));
    for f in frame_starts {
        starts.extend([f, f + 4, f + 8, f + FRAME_HEADER_LEN]);
    }
    for at in starts.into_iter().filter(|&a| a < full.len()) {
        let mut damaged = full.clone();
        let end = (at + 512).min(damaged.len());
        if damaged[at..end].iter().all(|&b| b == 0) {
            continue; // nothing changes
        }
        damaged[at..end].fill(0);
        assert_refused_untouched(&path, &damaged, &format!("zeroed sector at {at}"));
    }
}

#[test]
fn garbage_in_the_middle_and_a_bad_first_frame_are_refused_untouched() {
    let (recs, full) = generated_log();
    let ends = frame_ends(&recs);
    let path = TempPath::new("garbage");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut garbage = vec![0u8; 4096];
    for g in garbage.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *g = seed as u8;
    }
    // 4 KiB of garbage over the middle of the log.
    let mut bigger = full.clone();
    while bigger.len() < 3 * 4096 {
        bigger.extend_from_slice(&full[FILE_HEADER_LEN as usize..]);
    }
    // (A log that long is valid first: every frame repeated.)
    std::fs::write(&*path, &bigger).unwrap();
    assert!(open(&*path).is_ok());
    let mut damaged = bigger.clone();
    damaged[4096..8192].copy_from_slice(&garbage);
    assert_refused_untouched(&path, &damaged, "4 KiB of garbage at 4096");
    // Garbage inserted between two frames.
    let mid = ends[recs.len() / 2] as usize;
    let mut inserted = full[..mid].to_vec();
    inserted.extend_from_slice(&garbage);
    inserted.extend_from_slice(&full[mid..]);
    assert_refused_untouched(&path, &inserted, "4 KiB of garbage inserted");
    // A bad payload checksum on the very first frame.
    let mut first = full.clone();
    first[FILE_HEADER_LEN as usize + 4] ^= 0x01;
    std::fs::write(&*path, &first).unwrap();
    match open(&*path) {
        Err(Error::StorageCorrupt(m)) => {
            assert!(m.contains("frame 0") && m.contains("byte 31"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&*path).unwrap(), first);
}

#[test]
fn damage_in_the_middle_is_refused_naming_the_frame() {
    let path = TempPath::new("middle");
    let recs = sample_records(6);
    write_store(&path, &recs);
    let ends = frame_ends(&recs);
    let mut bytes = std::fs::read(&*path).unwrap();
    // Flip a payload byte of record 2 (its frame starts at ends[1]).
    bytes[ends[1] as usize + FRAME_HEADER_LEN + 1] ^= 0x40;
    std::fs::write(&*path, &bytes).unwrap();
    match open(&*path) {
        Err(Error::StorageCorrupt(m)) => assert!(
            m.contains("frame 2")
                && m.contains(&format!("byte {}", ends[1]))
                && m.contains("checksum mismatch")
                && m.contains("untouched"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&*path).unwrap(), bytes);
}

/// A frame (header with both checks, then the payload) as a writer makes it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let h = crc32fast::hash(&f);
    f.extend_from_slice(&h.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_valid_checksum_over_an_undecodable_payload_is_refused() {
    let path = TempPath::new("undecodable");
    let recs = sample_records(2);
    write_store(&path, &recs);
    let mut bytes = std::fs::read(&*path).unwrap();
    bytes.extend_from_slice(&frame(&[1u8, 0x7F])); // version 1, no such tag
    std::fs::write(&*path, &bytes).unwrap();
    match open(&*path) {
        Err(Error::StorageCorrupt(m)) => assert!(m.contains("does not decode"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&*path).unwrap(), bytes);
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
        match open(&*path) {
            Err(Error::Corrupt(m)) => assert!(m.contains("not a record file"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&*path).unwrap(), content);
    }
}

#[test]
fn other_formats_are_refused_untouched() {
    let path = TempPath::new("version");
    for (content, found) in [
        (&b"QKPX\x04\x00more than a header's worth of bytes"[..], 4),
        // Format 1 (no identity, no frame-header checks) is not read.
        (b"QKPX\x01\x00\x0A\x00\x00\x00\x19\x45\x57\x88", 1),
    ] {
        std::fs::write(&*path, content).unwrap();
        assert_eq!(
            open(&*path).unwrap_err(),
            Error::UnsupportedVersion {
                found,
                supported: 3
            }
        );
        assert_eq!(std::fs::read(&*path).unwrap(), content);
    }
    // An intact record (good checksums) in a newer wire version.
    std::fs::remove_file(&*path).unwrap();
    let recs = sample_records(2);
    write_store(&path, &recs);
    let mut bytes = std::fs::read(&*path).unwrap();
    bytes.extend_from_slice(&frame(&[2u8, 0x20, 0x01, 0x01]));
    std::fs::write(&*path, &bytes).unwrap();
    assert!(matches!(
        open(&*path),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    assert_eq!(std::fs::read(&*path).unwrap(), bytes);
}

#[test]
fn a_file_of_another_cluster_or_replica_is_refused_untouched() {
    let path = TempPath::new("identity");
    write_store(&path, &sample_records(3));
    let before = std::fs::read(&*path).unwrap();
    for other in [FileIdentity::new(7, 2), FileIdentity::new(8, 1)] {
        match FileStorage::open(&*path, other) {
            Err(Error::StorageMismatch(m)) => assert!(
                m.contains("replica 1 of cluster 0x7")
                    && m.contains(&format!("not to replica {}", other.replica_id)),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&*path).unwrap(), before);
    }
    assert_eq!(reload(&path), sample_records(3));
    // A torn header is only rewritten when it is a prefix of this
    // replica's own header.
    std::fs::write(&*path, &before[..16]).unwrap();
    assert!(matches!(
        FileStorage::open(&*path, FileIdentity::new(7, 2)),
        Err(Error::StorageCorrupt(_))
    ));
    assert_eq!(std::fs::read(&*path).unwrap(), &before[..16]);
    assert_eq!(reload(&path), vec![]);
}

#[test]
fn a_second_open_is_refused_while_the_first_lives() {
    let path = TempPath::new("lock");
    let mut first = open(&*path).unwrap();
    first.append(&Record::Commit { commit: 1 }).unwrap();
    first.sync().unwrap();
    match open(&*path) {
        Err(Error::StorageInUse(m)) => assert!(m.contains("locked"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Also under another identity: the lock comes first, nothing is read.
    assert!(matches!(
        FileStorage::open(&*path, FileIdentity::new(1, 1)),
        Err(Error::StorageInUse(_))
    ));
    drop(first);
    assert_eq!(reload(&path), vec![Record::Commit { commit: 1 }]);
}

/// The child side of `a_lock_held_by_another_process_...`: opens the file
/// named by the environment, says so, and waits to be killed.
#[test]
fn child_holds_a_record_file() {
    let Ok(path) = std::env::var("QK_TEST_LOCK_CHILD") else {
        return; // run as a normal test: nothing to do
    };
    let _s = open(&path).unwrap();
    println!("locked {path}");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(30));
}

#[cfg(unix)]
#[test]
fn a_lock_held_by_another_process_refuses_the_open_until_it_is_killed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let path = TempPath::new("lock-proc");
    write_store(&path, &sample_records(2));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_a_record_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("QK_TEST_LOCK_CHILD", &*path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !line.contains("locked") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the child never locked"
        );
    }
    assert!(matches!(open(&*path), Err(Error::StorageInUse(_))));
    child.kill().unwrap(); // SIGKILL: the kernel drops its lock
    child.wait().unwrap();
    assert_eq!(reload(&path), sample_records(2));
}

#[test]
fn io_errors_are_storage_errors_naming_the_path() {
    let missing = std::env::temp_dir()
        .join(format!("quorumkit-no-such-dir-{}", std::process::id()))
        .join("log.qkpx");
    match open(&missing) {
        Err(Error::Storage(m)) => {
            assert!(m.contains("cannot open") && m.contains("log.qkpx"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let dir = std::env::temp_dir();
    assert!(matches!(open(&dir), Err(Error::Storage(_))));
}

#[cfg(target_os = "linux")]
#[test]
fn a_device_that_fails_writes_is_a_storage_error() {
    // /dev/full opens, reads as empty here, and refuses the header write
    // (or the truncate before it).
    match open("/dev/full") {
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
            let mut s = open(&*path).unwrap();
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
        if !garbage.is_empty() {
            // Garbage after the data is not a torn write: refused untouched
            // unless it is too short to be a frame header (then cut).
            if let Err(e) = open(&*path) {
                prop_assert!(matches!(e, Error::StorageCorrupt(_)), "{e:?}");
                prop_assert!(std::fs::read(&*path).unwrap() == torn);
                return Ok(());
            }
        }

        let got = reload(&path);
        prop_assert!(got.len() >= durable.0, "lost synced records: {} < {}", got.len(), durable.0);
        prop_assert!(got.len() <= all.len());
        prop_assert_eq!(&got[..], &all[..got.len()]);
        if garbage.is_empty() {
            let ends = frame_ends(&all);
            prop_assert_eq!(got.len(), ends.iter().filter(|&&e| e <= cut).count());
        }
        // And the store keeps working after recovery.
        let mut s = open(&*path).unwrap();
        s.append(&Record::Commit { commit: 1 }).unwrap();
        s.sync().unwrap();
        drop(s);
        prop_assert_eq!(reload(&path).len(), got.len() + 1);
    }
}

// ------------------------------------------------------------ compaction

fn checkpoint(slot: u64, state: &[u8]) -> Vec<Record> {
    vec![
        Record::Snapshot {
            slot,
            data: std::sync::Arc::new(state.to_vec()),
        },
        Record::Promise { ballot: b(9, 2) },
        Record::Accept {
            slot,
            ballot: b(9, 2),
            batch: vec![b"next".to_vec()],
        },
        Record::Commit { commit: slot },
    ]
}

fn compact_file(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".compact");
    PathBuf::from(p)
}

#[test]
fn compaction_replaces_the_file_with_the_checkpoint_and_appends_go_on() {
    let path = TempPath::new("compact");
    let recs = sample_records(2000);
    write_store(&path, &recs);
    let before = file_len(&path);
    let mut s = open(&*path).unwrap();
    assert_eq!(s.load().unwrap(), recs);
    let cp = checkpoint(5000, b"the state after 5000 slots");
    s.append(&Record::Commit { commit: 1 }).unwrap(); // buffered: dropped
    s.compact(cp.clone()).unwrap();
    assert_eq!(s.record_count(), 4);
    assert_eq!(s.len_bytes(), file_len(&path));
    assert!(
        file_len(&path) < before / 100,
        "{} of {before}",
        file_len(&path)
    );
    assert!(!compact_file(&path).exists());
    let more = Record::Commit { commit: 5001 };
    s.append(&more).unwrap();
    s.sync().unwrap();
    drop(s);
    let mut want = cp.clone();
    want.push(more);
    assert_eq!(reload(&path), want);
    // Compacting again, and again: the file never grows past one checkpoint.
    for k in 0..5u64 {
        let mut s = open(&*path).unwrap();
        s.compact(checkpoint(6000 + k, &[k as u8; 100])).unwrap();
    }
    assert_eq!(reload(&path), checkpoint(6004, &[4; 100]));
}

#[test]
fn a_compaction_cut_short_before_its_rename_leaves_the_old_file_whole() {
    let path = TempPath::new("cut");
    let recs = sample_records(40);
    write_store(&path, &recs);
    // What a crash mid-compaction leaves: part of the new file beside it.
    std::fs::write(compact_file(&path), b"QKPX\x02\x00 half a checkpoint").unwrap();
    assert_eq!(reload(&path), recs);
    assert!(!compact_file(&path).exists(), "the leftover is removed");
}

#[test]
fn the_compacted_file_is_still_locked_and_still_checked() {
    let path = TempPath::new("relock");
    write_store(&path, &sample_records(10));
    let mut s = open(&*path).unwrap();
    s.compact(checkpoint(77, &[0xAB; 300])).unwrap();
    // The new file (a new inode) is held just as the old one was.
    assert!(matches!(open(&*path), Err(Error::StorageInUse(_))));
    // Opened as another replica: refused.
    drop(s);
    let other = FileIdentity {
        cluster_id: 8,
        replica_id: 1,
    };
    assert!(matches!(
        FileStorage::open(&*path, other),
        Err(Error::StorageMismatch(_))
    ));
    // Every bit flip in the snapshot's frame is refused, the file untouched.
    let full = std::fs::read(&*path).unwrap();
    let end = frame_ends(&checkpoint(77, &[0xAB; 300]))[0] as usize;
    let probe = TempPath::new("relock-flip");
    for bit in (FILE_HEADER_LEN as usize * 8..end * 8).step_by(7) {
        let mut damaged = full.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert_refused_untouched(&probe, &damaged, &format!("bit {bit}"));
    }
    assert_eq!(reload(&path), checkpoint(77, &[0xAB; 300]));
}

// ------------------------------------------------- background compaction

/// Syncs until the background checkpoint is in place (bounded: 20 s).
fn settle(s: &mut FileStorage) {
    let start = std::time::Instant::now();
    while s.compacting() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the background checkpoint never landed"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.sync().unwrap();
    }
}

/// A store at `path` holding `records`, opened and loaded.
fn loaded_store(path: &Path, records: &[Record]) -> FileStorage {
    write_store(path, records);
    let mut s = open(path).unwrap();
    s.load().unwrap();
    s
}

/// Waits until the background checkpoint `cp` is in place, followed by
/// `since` (the records appended meanwhile): the new file is the store's
/// (locked, its length the store's), takes one more record, and is what a
/// reopening reads.
fn assert_lands_followed_by(mut s: FileStorage, path: &Path, cp: Vec<Record>, since: Vec<Record>) {
    settle(&mut s);
    assert!(!compact_file(path).exists());
    assert_eq!(s.record_count(), (cp.len() + since.len()) as u64);
    assert_eq!(s.len_bytes(), files_len(&s));
    assert!(matches!(open(path), Err(Error::StorageInUse(_))));
    let more = Record::Commit { commit: 9999 };
    s.append(&more).unwrap();
    s.sync().unwrap();
    drop(s);
    let mut want = cp;
    want.extend(since);
    want.push(more);
    assert_eq!(reload(path), want);
}

fn commits(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|commit| Record::Commit { commit })
        .collect()
}

#[test]
fn a_background_checkpoint_lands_at_a_sync_with_the_records_that_came_since() {
    let path = TempPath::new("bg");
    let recs = sample_records(2000);
    write_store(&path, &recs);
    let mut s = open(&*path).unwrap();
    assert_eq!(s.load().unwrap(), recs);
    let cp = checkpoint(5000, &[0x5A; 4 << 20]);
    s.compact_in_background(cp.clone()).unwrap();
    assert!(s.compacting());
    // Appends and syncs go on while it is written, into a new segment.
    let since = commits(5001, 60);
    for (i, r) in since.iter().enumerate() {
        s.append(r).unwrap();
        if i % 10 == 9 {
            s.sync().unwrap();
        }
    }
    assert_lands_followed_by(s, &path, cp, since);
}

#[test]
fn megabytes_appended_during_a_background_checkpoint_follow_it_whole() {
    // More than the write-out buffer holds, several times over: the records
    // that came since stay in the segment begun for them when the
    // checkpoint lands, those written out early and synced or not alike.
    let path = TempPath::new("bg-big");
    let mut s = loaded_store(&path, &sample_records(50));
    // Records still buffered when the compaction is asked for are in the
    // state it stands for: they do not follow it.
    for r in commits(900, 3) {
        s.append(&r).unwrap();
    }
    let cp = checkpoint(1000, &[0x3C; 24 << 20]);
    s.compact_in_background(cp.clone()).unwrap();
    let since: Vec<Record> = (1001..1400u64)
        .map(|slot| Record::Accept {
            slot,
            ballot: b(9, 2),
            batch: vec![vec![(slot % 256) as u8; 10_000 + slot as usize % 97]],
        })
        .collect();
    for (i, r) in since.iter().enumerate() {
        s.append(r).unwrap();
        if i == 150 {
            s.sync().unwrap();
        }
    }
    s.sync().unwrap();
    assert_lands_followed_by(s, &path, cp, since);
}

#[test]
fn a_store_dropped_with_unsynced_records_from_before_its_background_checkpoint() {
    // The records buffered when the compaction was asked for are in the
    // state the checkpoint stands for: it lands alone, and they go with
    // the file they were written to.
    let path = TempPath::new("bg-drop-buffered");
    let mut s = loaded_store(&path, &sample_records(20));
    for r in commits(300, 4) {
        s.append(&r).unwrap();
    }
    let cp = checkpoint(400, &[6; 2 << 20]);
    s.compact_in_background(cp.clone()).unwrap();
    drop(s);
    assert_eq!(reload(&path), cp);
    assert!(!compact_file(&path).exists());
}

#[test]
fn a_background_checkpoint_not_yet_in_place_leaves_every_record() {
    let path = TempPath::new("bg-drop");
    let recs = sample_records(300);
    write_store(&path, &recs);
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    // 64 MiB: still being written at the sync below on any disk we know
    // of; whether it landed or not, no synced record may be missing.
    let cp = checkpoint(900, &vec![7u8; 64 << 20]);
    s.compact_in_background(cp.clone()).unwrap();
    let since = commits(901, 5);
    for r in &since {
        s.append(r).unwrap();
    }
    s.sync().unwrap();
    let landed = !s.compacting();
    s.abandon_compaction(); // what a crash before it lands leaves
    drop(s);
    assert!(
        !compact_file(&path).exists(),
        "the abandoned file is removed"
    );
    let mut want = if landed { cp } else { recs };
    want.extend(since);
    assert_eq!(reload(&path), want, "landed: {landed}");
}

#[test]
fn load_and_compact_during_a_background_checkpoint() {
    // `load` waits for it and reads the new file.
    let path = TempPath::new("bg-load");
    let mut s = loaded_store(&path, &sample_records(100));
    let cp = checkpoint(400, &[1; 1 << 20]);
    s.compact_in_background(cp.clone()).unwrap();
    s.append(&Record::Commit { commit: 401 }).unwrap();
    let mut want = cp;
    want.push(Record::Commit { commit: 401 });
    assert_eq!(s.load().unwrap(), want);
    assert!(!s.compacting());
    drop(s);
    assert_eq!(reload(&path), want);
    // Closing the store puts a checkpoint still being written in place
    // (records not synced are dropped, as always).
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    let cp = checkpoint(450, &[9; 16 << 20]);
    s.compact_in_background(cp.clone()).unwrap();
    s.append(&Record::Commit { commit: 451 }).unwrap();
    s.sync().unwrap();
    s.append(&Record::Commit { commit: 452 }).unwrap();
    drop(s);
    let mut want = cp;
    want.push(Record::Commit { commit: 451 });
    assert_eq!(reload(&path), want);
    assert!(!compact_file(&path).exists());
    // A newer background checkpoint while one is being written is
    // skipped: the first lands, followed by every record after it.
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    let first = checkpoint(500, &[2; 8 << 20]);
    s.compact_in_background(first.clone()).unwrap();
    s.append(&Record::Commit { commit: 550 }).unwrap();
    s.compact_in_background(checkpoint(600, &[3; 1 << 20]))
        .unwrap();
    settle(&mut s);
    drop(s);
    let mut want = first;
    want.push(Record::Commit { commit: 550 });
    assert_eq!(reload(&path), want);
    // A checkpoint written at once (an installed snapshot) replaces one
    // still being written in the background.
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    s.compact_in_background(checkpoint(600, &[3; 8 << 20]))
        .unwrap();
    s.compact(checkpoint(700, b"installed")).unwrap();
    assert!(!s.compacting());
    s.sync().unwrap();
    drop(s);
    assert_eq!(reload(&path), checkpoint(700, b"installed"));
    assert!(!compact_file(&path).exists());
}

/// A one-replica node on a record file: what its application holds after
/// every output so far (a snapshot replaces it; it is the commands, one per
/// line).
struct App {
    node: quorumkit::paxos::Node<FileStorage>,
    state: Vec<u8>,
    now: u64,
}

impl App {
    fn start(path: &Path) -> App {
        let mut config = quorumkit::paxos::Config::new(1, vec![1]);
        config.cluster_id = ID.cluster_id;
        let storage = FileStorage::open(path, ID).unwrap();
        let node = quorumkit::paxos::Node::new(config, storage, 0).unwrap();
        let mut app = App {
            node,
            state: Vec::new(),
            now: 0,
        };
        app.drain();
        for _ in 0..10_000 {
            if app.node.is_leader() {
                return app;
            }
            app.now += 1_000_000;
            app.node.tick(app.now).unwrap();
            app.drain();
        }
        panic!("a lone replica never led");
    }

    fn drain(&mut self) {
        while let Some(out) = self.node.poll() {
            match out {
                quorumkit::paxos::Output::Decided { batch, .. } => {
                    for c in batch {
                        self.state.extend_from_slice(&c);
                        self.state.push(b'\n');
                    }
                }
                quorumkit::paxos::Output::Snapshot { data, .. } => self.state = data.to_vec(),
                _ => {}
            }
        }
    }

    fn propose(&mut self, k: u32) {
        self.now += 1_000_000;
        self.node
            .propose(format!("cmd {k}").into_bytes(), self.now)
            .unwrap();
        self.drain();
    }
}

#[test]
fn a_node_restarted_before_or_after_its_background_checkpoint_lands_has_every_command() {
    let want = |n: u32| -> Vec<u8> {
        (0..n)
            .flat_map(|k| format!("cmd {k}\n").into_bytes())
            .collect()
    };
    for wait_for_it in [false, true] {
        let path = TempPath::new(&format!("bg-node-{wait_for_it}"));
        let mut app = App::start(&path);
        for k in 0..200 {
            app.propose(k);
        }
        assert_eq!(app.state, want(200));
        // A large state, so the checkpoint takes a while to write.
        let mut data = app.state.clone();
        data.resize(48 << 20, b'#');
        let slot = app.node.commit_index();
        app.node.compact(slot, data, app.now).unwrap();
        assert_eq!(app.node.log_start(), slot);
        for k in 200..250 {
            app.propose(k);
        }
        if wait_for_it {
            let start = std::time::Instant::now();
            while app.node.compacting() {
                assert!(start.elapsed().as_secs() < 20, "never landed");
                std::thread::sleep(std::time::Duration::from_millis(2));
                app.propose(9999); // any call syncs, which lands it when ready
            }
        }
        // A crash now: a checkpoint not yet in place is lost.
        app.node.storage_mut().abandon_compaction();
        let landed = std::fs::metadata(&*path).unwrap().len() > 10 << 20;
        assert!(landed || !wait_for_it);
        let extra = app.state.len() - want(250).len();
        drop(app);
        let app = App::start(&path);
        let state: Vec<u8> = app.state.iter().copied().filter(|&c| c != b'#').collect();
        assert!(
            state.starts_with(&want(250)) && state.len() == want(250).len() + extra,
            "wait {wait_for_it}, landed {landed}: the restarted application lost commands"
        );
        assert_eq!(app.node.log_start() > 0, landed, "wait {wait_for_it}");
    }
}

#[test]
fn a_background_checkpoint_that_cannot_be_written_stops_the_store_and_loses_nothing() {
    let path = TempPath::new("bg-fail");
    let recs = sample_records(50);
    write_store(&path, &recs);
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    // A directory where the new file must go: the thread cannot create it.
    std::fs::create_dir(compact_file(&path)).unwrap();
    s.compact_in_background(checkpoint(60, b"state")).unwrap();
    let more = Record::Commit { commit: 61 };
    let start = std::time::Instant::now();
    let err = loop {
        assert!(start.elapsed().as_secs() < 20, "the failure never surfaced");
        s.append(&more).unwrap();
        match s.sync() {
            Ok(()) => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, Error::Storage(m) if m.contains("cannot compact")),
        "{err:?}"
    );
    // Refused from then on; the old file holds every synced record.
    assert!(matches!(s.sync(), Err(Error::Storage(_))));
    drop(s);
    std::fs::remove_dir(compact_file(&path)).unwrap();
    let back = reload(&path);
    assert_eq!(back[..recs.len()], recs[..]);
    assert!(back[recs.len()..].iter().all(|r| *r == more));
    assert!(back.len() > recs.len());
}

// -------------------------------------------------------------- segments

fn seg(path: &Path, n: u64) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".seg.{n:06}"));
    PathBuf::from(p)
}

/// Every file of the log at `path` (the log file and its segments, by
/// name) with its bytes, sorted by name.
fn log_files(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut files: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == name || n.starts_with(&format!("{name}.seg."))
        })
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// A log of `n` sample records in segments of about `segment` bytes,
/// syncing after every 3 appends; returns its records.
fn segmented_store(path: &Path, n: usize, segment: u64) -> Vec<Record> {
    let recs = sample_records(n);
    let mut s = open(path).unwrap();
    s.set_segment_bytes(segment);
    for (i, r) in recs.iter().enumerate() {
        s.append(r).unwrap();
        if i % 3 == 2 {
            s.sync().unwrap();
        }
    }
    s.sync().unwrap();
    assert_eq!(s.len_bytes(), files_len(&s));
    recs
}

/// Writes each file's bytes to its path.
fn write_files(files: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in files {
        std::fs::write(p, bytes).unwrap();
    }
}

/// Opens the log with `files` written in place of its files and checks
/// that the open is refused and changes no file.
fn assert_log_refused_untouched(path: &Path, files: &[(PathBuf, Vec<u8>)], what: &str) {
    write_files(files);
    match open(path) {
        Err(e) => assert!(is_refusal(&e), "{what}: {e:?}"),
        Ok(s) => panic!(
            "{what}: a damaged log opened ({} records)",
            s.record_count()
        ),
    }
    assert!(
        log_files(path) == files,
        "{what}: a refused open changed the files"
    );
}

#[test]
fn segments_begin_at_their_size_and_are_read_back_in_order() {
    let path = TempPath::new("seg");
    let recs = segmented_store(&path, 120, 1024);
    let files = log_files(&path);
    assert!(files.len() >= 5, "{} files", files.len());
    // The log file and segments 1, 2, ... in order, none much past the size.
    for (i, (p, bytes)) in files.iter().enumerate() {
        if i > 0 {
            assert_eq!(*p, seg(&path, i as u64));
        }
        assert!(
            bytes.len() < 1024 + 3 * 400,
            "{}: {}",
            p.display(),
            bytes.len()
        );
    }
    let mut s = open(&*path).unwrap();
    assert_eq!(
        s.files(),
        files.iter().map(|f| f.0.clone()).collect::<Vec<_>>()
    );
    assert_eq!(s.record_count(), recs.len() as u64);
    assert_eq!(s.len_bytes(), files_len(&s));
    assert_eq!(s.load().unwrap(), recs);
    // Appends go on into the newest segment.
    let more = commits(7000, 5);
    for r in &more {
        s.append(r).unwrap();
    }
    s.sync().unwrap();
    drop(s);
    let mut want = recs;
    want.extend(more);
    assert_eq!(reload(&path), want);
}

#[test]
fn a_background_checkpoint_deletes_the_segments_it_stands_for() {
    let path = TempPath::new("seg-bg");
    let recs = segmented_store(&path, 90, 1024);
    let before = log_files(&path);
    let mut s = open(&*path).unwrap();
    s.set_segment_bytes(1024);
    s.load().unwrap();
    let cp = checkpoint(5000, &[0x5A; 3000]);
    s.compact_in_background(cp.clone()).unwrap();
    // A new segment (or the empty newest one) is for what comes next; the
    // old files stay until the checkpoint lands.
    let follows = s.files().last().unwrap().clone();
    assert_eq!(file_len(&follows), FILE_HEADER_LEN);
    assert!(before.iter().all(|(p, _)| p.exists()));
    let since = commits(5001, 100);
    for (i, r) in since.iter().enumerate() {
        s.append(r).unwrap();
        if i % 4 == 3 {
            s.sync().unwrap();
        }
    }
    settle(&mut s);
    for (p, _) in before[1..].iter().filter(|(p, _)| *p != follows) {
        assert!(!p.exists(), "{} was not deleted", p.display());
    }
    let files = s.files();
    assert_eq!(files[0], *path);
    assert_eq!(files[1], follows);
    assert!(
        files.len() > 2,
        "the 100 records since fill more than a segment"
    );
    assert_eq!(log_files(&path).len(), files.len());
    drop(s);
    let mut want = cp;
    want.extend(since);
    assert_eq!(reload(&path), want);
    assert!(recs.len() > 4);
}

#[test]
fn disk_use_stays_bounded_over_many_background_checkpoints() {
    let path = TempPath::new("seg-bounded");
    let mut s = open(&*path).unwrap();
    s.set_segment_bytes(4096);
    let mut peak = 0;
    let mut commit = 0;
    for round in 0..40u64 {
        for _ in 0..200 {
            commit += 1;
            s.append(&Record::Commit { commit }).unwrap();
            if commit % 5 == 0 {
                s.sync().unwrap();
            }
        }
        s.compact_in_background(checkpoint(commit, &[round as u8; 2000]))
            .unwrap();
        settle(&mut s);
        peak = peak.max(files_len(&s));
        assert_eq!(log_files(&path).len(), s.files().len(), "round {round}");
    }
    // About 200 commits (about 3 KiB) and one checkpoint at a time, never
    // the 8,000 commits of the whole history.
    assert!(peak < 16 * 1024, "peak {peak} bytes");
    drop(s);
    let back = reload(&path);
    assert!(matches!(back[0], Record::Snapshot { slot, .. } if slot == commit));
}

#[test]
fn a_compaction_deletes_every_segment_and_appends_follow_the_checkpoint() {
    let path = TempPath::new("seg-compact");
    segmented_store(&path, 90, 1024);
    let n = log_files(&path).len() as u64;
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    let cp = checkpoint(300, b"state");
    s.compact(cp.clone()).unwrap();
    assert_eq!(s.files(), vec![path.to_path_buf()]);
    assert_eq!(log_files(&path).len(), 1);
    let more = commits(301, 3);
    for r in &more {
        s.append(r).unwrap();
    }
    s.sync().unwrap();
    // The next segment is numbered after the deleted ones.
    s.set_segment_bytes(1);
    s.append(&Record::Commit { commit: 304 }).unwrap();
    s.sync().unwrap();
    s.append(&Record::Commit { commit: 305 }).unwrap();
    s.sync().unwrap();
    // (The second sync began segment n + 1 for what comes next.)
    assert_eq!(
        s.files(),
        vec![path.to_path_buf(), seg(&path, n), seg(&path, n + 1)]
    );
    drop(s);
    let mut want = cp;
    want.extend(more);
    want.extend(commits(304, 2));
    assert_eq!(reload(&path), want);
}

#[test]
fn damage_in_any_file_of_a_segmented_log_is_refused_untouched() {
    let path = TempPath::new("seg-flip");
    segmented_store(&path, 60, 600);
    let good = log_files(&path);
    assert!(good.len() >= 4, "{} files", good.len());
    // Every 7th bit of every file, header and frames.
    for (i, (p, bytes)) in good.iter().enumerate() {
        for bit in (0..bytes.len() * 8).step_by(7) {
            let mut damaged = good.clone();
            damaged[i].1[bit / 8] ^= 1 << (bit % 8);
            assert_log_refused_untouched(&path, &damaged, &format!("{}: bit {bit}", p.display()));
        }
    }
    // An older file cut short: it was synced whole before the next began.
    for i in 0..good.len() - 1 {
        let mut damaged = good.clone();
        let len = damaged[i].1.len();
        damaged[i].1.truncate(len - 5);
        assert_log_refused_untouched(&path, &damaged, &format!("file {i} cut short"));
    }
    write_files(&good);
    assert_eq!(reload(&path).len(), 60);
}

#[test]
fn a_missing_or_misplaced_segment_is_refused_untouched() {
    let path = TempPath::new("seg-missing");
    segmented_store(&path, 60, 600);
    let good = log_files(&path);
    let last = good.len() as u64 - 1;
    assert!(last >= 3);
    for gone in 1..last {
        std::fs::remove_file(seg(&path, gone)).unwrap();
        let rest: Vec<_> = good
            .iter()
            .filter(|f| f.0 != seg(&path, gone))
            .cloned()
            .collect();
        match open(&*path) {
            Err(Error::StorageCorrupt(m)) => {
                assert!(m.contains(&format!("segment {gone} is missing")), "{m}")
            }
            other => panic!("segment {gone} removed: {other:?}"),
        }
        assert!(
            log_files(&path) == rest,
            "segment {gone} removed: files changed"
        );
        std::fs::write(seg(&path, gone), &good[gone as usize].1).unwrap();
    }
    // Segment 2's bytes under segment 1's name: its header says 2.
    let mut swapped = good.clone();
    swapped[1].1 = good[2].1.clone();
    assert_log_refused_untouched(&path, &swapped, "segment 2 as segment 1");
    // The log file's bytes as a segment, a segment's as the log file.
    let mut as_seg = good.clone();
    as_seg[1].1 = good[0].1.clone();
    assert_log_refused_untouched(&path, &as_seg, "the log file as segment 1");
    let mut as_log = good.clone();
    as_log[0].1 = good[1].1.clone();
    assert_log_refused_untouched(&path, &as_log, "segment 1 as the log file");
    // Another replica's segment.
    let other = TempPath::new("seg-other");
    {
        let mut s = FileStorage::open(&*other, FileIdentity::new(7, 2)).unwrap();
        s.set_segment_bytes(100);
        for r in sample_records(20) {
            s.append(&r).unwrap();
            s.sync().unwrap();
        }
    }
    let mut foreign = good.clone();
    foreign[1].1 = std::fs::read(seg(&other, 1)).unwrap();
    write_files(&foreign);
    assert!(matches!(open(&*path), Err(Error::StorageMismatch(_))));
    write_files(&good);
    assert_eq!(reload(&path).len(), 60);
}

#[test]
fn the_newest_segment_torn_in_its_header_or_a_frame_is_repaired() {
    let path = TempPath::new("seg-torn");
    let recs = segmented_store(&path, 40, 700);
    let good = log_files(&path);
    let newest = good.last().unwrap().clone();
    let frames: usize = good[..good.len() - 1]
        .iter()
        .map(|(_, b)| {
            let mut at = FILE_HEADER_LEN as usize;
            let mut n = 0;
            while at < b.len() {
                let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
                at += FRAME_HEADER_LEN + len;
                n += 1;
            }
            n
        })
        .sum();
    // Torn inside its header (a crash while it was begun): completed, and
    // it holds nothing.
    for cut in [0, 1, 10, FILE_HEADER_LEN as usize - 1] {
        std::fs::write(&newest.0, &newest.1[..cut]).unwrap();
        let mut s = open(&*path).unwrap();
        assert_eq!(s.load().unwrap(), recs[..frames]);
        drop(s);
        assert_eq!(
            std::fs::read(&newest.0).unwrap(),
            newest.1[..FILE_HEADER_LEN as usize]
        );
    }
    // A header prefix that is not this segment's: refused.
    let mut wrong = newest.1[..20].to_vec();
    wrong[19] ^= 1;
    let mut damaged = good.clone();
    *damaged.last_mut().unwrap() = (newest.0.clone(), wrong);
    assert_log_refused_untouched(&path, &damaged, "a torn header of another segment");
    // Torn inside its last frame: cut, the frames before it kept.
    let mut torn = newest.1.clone();
    torn.truncate(torn.len() - 3);
    std::fs::write(&newest.0, &torn).unwrap();
    let mut s = open(&*path).unwrap();
    assert_eq!(s.load().unwrap(), recs[..recs.len() - 1]);
    assert!(
        s.last_discard().unwrap().contains(".seg."),
        "{:?}",
        s.last_discard()
    );
}

#[test]
fn segments_a_landed_checkpoint_stands_for_are_deleted_on_open() {
    // A crash between a checkpoint's rename and the deletion of the
    // segments it stands for leaves them; the next open deletes them and
    // reads only the checkpoint and what follows it.
    let path = TempPath::new("seg-stale");
    segmented_store(&path, 60, 700);
    let old = log_files(&path);
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    let cp = checkpoint(900, b"state");
    s.compact_in_background(cp.clone()).unwrap();
    s.append(&Record::Commit { commit: 901 }).unwrap();
    settle(&mut s);
    drop(s);
    for (p, bytes) in &old[1..] {
        assert!(!p.exists());
        std::fs::write(p, bytes).unwrap();
    }
    let mut s = open(&*path).unwrap();
    let mut want = cp;
    want.push(Record::Commit { commit: 901 });
    assert_eq!(s.load().unwrap(), want);
    for (p, _) in &old[1..] {
        assert!(!p.exists(), "{} is still there", p.display());
    }
    // A name that is not a segment's is not touched.
    let stray = PathBuf::from(format!("{}.seg.7x", path.display()));
    std::fs::write(&stray, b"not ours").unwrap();
    drop(s);
    assert_eq!(reload(&path), want);
    assert_eq!(std::fs::read(&stray).unwrap(), b"not ours");
}

#[test]
fn a_log_file_of_format_2_is_read_and_compacts_into_format_3() {
    // Format 2 (before segments): a 22-byte header without kind and
    // sequence number, then the same frames.
    let path = TempPath::new("v2");
    let recs = sample_records(30);
    write_store(&path, &recs);
    let v3 = std::fs::read(&*path).unwrap();
    let mut v2 = b"QKPX\x02\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00".to_vec();
    let crc = crc32fast::hash(&v2);
    v2.extend_from_slice(&crc.to_le_bytes());
    v2.extend_from_slice(&v3[FILE_HEADER_LEN as usize..]);
    std::fs::write(&*path, &v2).unwrap();
    let mut s = open(&*path).unwrap();
    s.set_segment_bytes(1);
    assert_eq!(s.load().unwrap(), recs);
    // Appends go on into it, then into segment 1 (each sync here begins
    // the next segment).
    s.append(&Record::Commit { commit: 31 }).unwrap();
    s.sync().unwrap();
    s.append(&Record::Commit { commit: 32 }).unwrap();
    s.sync().unwrap();
    assert_eq!(
        s.files(),
        vec![path.to_path_buf(), seg(&path, 1), seg(&path, 2)]
    );
    assert_eq!(std::fs::read(&*path).unwrap()[..6], *b"QKPX\x02\x00");
    drop(s);
    let mut want = recs;
    want.extend(commits(31, 2));
    assert_eq!(reload(&path), want);
    let mut s = open(&*path).unwrap();
    s.load().unwrap();
    s.compact_in_background(checkpoint(40, b"st")).unwrap();
    settle(&mut s);
    drop(s);
    assert_eq!(std::fs::read(&*path).unwrap()[..6], *b"QKPX\x03\x00");
    assert_eq!(reload(&path), checkpoint(40, b"st"));
}

#[test]
fn segments_without_their_log_file_are_refused_and_nothing_is_created() {
    // The log file deleted (or not restored from a backup) with its
    // segments left beside it: the open must not start a new log under
    // them, nor leave an empty log file behind.
    let path = TempPath::new("seg-orphans");
    segmented_store(&path, 40, 600);
    let good = log_files(&path);
    std::fs::remove_file(&*path).unwrap();
    match open(&*path) {
        Err(Error::StorageCorrupt(m)) => assert!(m.contains("the log file is missing"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "the refused open left a log file");
    assert!(log_files(&path) == good[1..], "the segments changed");
    // An empty log file (truncated) is refused the same way, and kept.
    std::fs::write(&*path, b"").unwrap();
    assert!(matches!(open(&*path), Err(Error::StorageCorrupt(_))));
    assert_eq!(std::fs::read(&*path).unwrap(), b"");
    std::fs::write(&*path, &good[0].1).unwrap();
    assert_eq!(reload(&path).len(), 40);
}
