//! Peak memory and time of one `FileStorage` compaction with a large
//! snapshot: the checkpoint is streamed to the file, so the peak grows by
//! about the snapshot's size (the caller's copy), not twice that. Then the
//! same checkpoint written in the background: how long the caller waits.
//!
//! `cargo run --release --example compaction_memory -- [MiB] [dir]`
//! (defaults: 512 MiB, the system's temp dir).

use std::sync::Arc;

use quorumkit::paxos::{FileIdentity, FileStorage, Record, Storage};

/// The process's peak resident memory in KiB (Linux; 0 elsewhere).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> quorumkit::Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(512, |a| a.parse().expect("MiB"));
    let dir = args.next().map_or_else(std::env::temp_dir, Into::into);
    // A directory of its own: the log is a log file and the segments
    // beside it, all removed at the end.
    let dir = dir.join(format!("qk-compaction-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| quorumkit::Error::Storage(format!("{}: {e}", dir.display())))?;
    let path = dir.join("replica.log");
    let mut storage = FileStorage::open(&path, FileIdentity::new(1, 1))?;
    // Touch every page, so the snapshot counts in the resident set.
    let data: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
    let data = Arc::new(data);
    let before = peak_kib();
    let t = std::time::Instant::now();
    storage.compact(vec![
        Record::Snapshot { slot: 1, data },
        Record::Commit { commit: 1 },
    ])?;
    let took = t.elapsed();
    let after = peak_kib();
    println!(
        "compacted a {mib} MiB snapshot in {took:.2?}: peak RSS {} MiB before, {} MiB after (+{} MiB); file {} MiB",
        before >> 10,
        after >> 10,
        after.saturating_sub(before) >> 10,
        storage.len_bytes() >> 20
    );
    // The same checkpoint in the background, as a node compacting its own
    // log does: how long the caller waits, and how long until it is in
    // place (the syncs of a busy node land it; here, a sync every ms).
    let data = match &storage.load()?[0] {
        Record::Snapshot { data, .. } => data.clone(),
        _ => unreachable!("a checkpoint starts with its snapshot"),
    };
    let t = std::time::Instant::now();
    storage.compact_in_background(vec![
        Record::Snapshot { slot: 2, data },
        Record::Commit { commit: 2 },
    ])?;
    let returned = t.elapsed();
    let mut syncs = 0u64;
    while storage.compacting() {
        std::thread::sleep(std::time::Duration::from_millis(1));
        storage.append(&Record::Commit { commit: 2 + syncs })?;
        storage.sync()?;
        syncs += 1;
    }
    println!(
        "in the background: the call returned in {returned:.2?}, in place after {:.2?} ({syncs} appends and syncs meanwhile)",
        t.elapsed()
    );
    drop(storage);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
