//! [`FileStorage`]: a node's records in append-only, checksummed files
//! (`docs/WIRE.md`, "Record file"), locked by the node that uses them.
//!
//! ```text
//! offset  size  field
//! 0       4     magic, the bytes "QKPX"
//! 4       2     file format version, u16 LE (this build: 3)
//! 6       8     cluster id, u64 LE
//! 14      4     replica id, u32 LE
//! 18      1     kind: 0 the log file, 1 a segment
//! 19      8     sequence number, u64 LE (the log file: the first segment
//!               that follows it; a segment: its own number)
//! 27      4     CRC-32 (IEEE, as zlib.crc32) of bytes 0..27, u32 LE
//! 31      ...   frames, one per record:
//!                 4  payload length N, u32 LE
//!                 4  CRC-32 of the payload, u32 LE
//!                 4  CRC-32 of the 8 bytes before it (the frame header)
//!                 N  payload: the record in the wire format (wire::encode_record)
//! ```
//!
//! # The files of a log
//! The **log file** at the path the store is opened with holds the log's
//! first records: a checkpoint once the log was compacted. **Segments**
//! named `PATH.seg.000001`, `PATH.seg.000002`, ... hold the records
//! appended after it, in order; the log file's header names the first one
//! that follows it. Appends go to the newest file; a segment is closed
//! (synced, never written again) and the next one begun when it passes
//! [`SEGMENT_BYTES`] and when a compaction starts. A compaction writes the
//! checkpoint as a new log file that names the next segment, renames it
//! over the old one, and deletes the segments it stands for, so disk use
//! is one checkpoint plus the segments since.
//!
//! Appends are buffered in memory; [`sync`](Storage::sync) writes them and
//! calls `fsync` (`File::sync_data`), so a crash loses at most the records
//! appended since the last sync — and a crash during a sync can leave a
//! *torn tail*: a final frame the newest file ends inside.
//!
//! # Recovery: a torn tail is cut, damage is refused
//! [`open`](FileStorage::open) reads every frame of every file, in order.
//! - **Torn write** (repaired): the newest file ends inside its last frame
//!   (fewer than 12 header bytes left, or a header whose own checksum
//!   holds and whose length runs past the end of the file), or a newest
//!   segment ends inside its file header. Only that incomplete frame (or
//!   header) is cut off or completed; it was never synced, since a sync
//!   returns only after the whole frame is on disk.
//! - **Corruption** (refused with [`Error::StorageCorrupt`], files left
//!   byte for byte as they were): a complete frame header whose checksum
//!   does not match (so a damaged length can never pass for a torn tail),
//!   a payload whose checksum does not match, a checksummed payload that
//!   does not decode, a damaged file header, a file other than the newest
//!   that ends inside a frame (it was synced before the next was begun), a
//!   missing segment, or a segment whose header names another number.
//!   Damage anywhere, with intact frames after it or not, is corruption:
//!   those records may be promises and accepts the replica acknowledged,
//!   and a replica that forgets them can break agreement.
//!   `docs/PAXOS-STORAGE.md` says what an operator does then.
//!
//! # Compaction
//! [`compact`](Storage::compact) writes the checkpoint to `PATH.compact`,
//! syncs it and renames it over the log file, then deletes every segment,
//! so a crash leaves the old log or the new one (a leftover `.compact`
//! file is removed on open, and so are segments the log file's header
//! says it stands for). [`compact_in_background`](Storage::compact_in_background)
//! first begins a new segment, then writes the checkpoint of everything
//! before it on a thread of its own while appends go on into that
//! segment; the first sync after the thread is done renames it into
//! place and deletes the segments before that one. Nothing is copied.
//!
//! # One owner, the right owner
//! Every file records the cluster id and replica id it belongs to, and an
//! open with another identity is refused ([`Error::StorageMismatch`]). An
//! exclusive advisory lock (`flock`) on the log file is held for as long
//! as the `FileStorage` lives; a second open, from this process or
//! another, is refused ([`Error::StorageInUse`]).
//!
//! Other refusals (nothing is changed): a file whose first bytes are not
//! the magic ([`Error::Corrupt`]: not a record file), a file or an intact
//! record of another format version ([`Error::UnsupportedVersion`]; log
//! files of format 2, written before segments, are read, and format 1,
//! written before identities and frame-header checksums, is not). I/O
//! errors are [`Error::Storage`], naming the path and the OS error; after
//! one the store refuses every later call, since after a failed write or
//! `fsync` nothing is known about what reached the disk.

mod format;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use self::format::{FILE_FORMAT_VERSION, FILE_HEADER_LEN, FILE_MAGIC, FRAME_HEADER_LEN};
use self::format::{
    Header, Kind, Scan, ScanError, check_frames, header, parse_header, put_frame, scan_frames,
    write_checkpoint,
};
use super::ballot::NodeId;
use super::storage::{Record, Storage};
use crate::error::{Error, Result};

/// Buffered appends beyond this are written out (without `fsync`) at once,
/// so a long run of appends without a sync does not grow memory unbounded.
const WRITE_OUT_AT: usize = 1 << 20;

/// Once the newest file holds this many bytes, the next sync begins a new
/// segment ([`FileStorage::set_segment_bytes`] changes it).
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Whose log a record file is: written into the file when it is created and
/// checked on every open, so a replica never starts on another's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// The cluster (any number the operator picks; [`Config::cluster_id`](super::Config::cluster_id)).
    pub cluster_id: u64,
    /// The replica ([`Config::id`](super::Config::id)).
    pub replica_id: NodeId,
}

impl FileIdentity {
    /// The identity of replica `replica_id` of cluster `cluster_id`.
    pub fn new(cluster_id: u64, replica_id: NodeId) -> Self {
        FileIdentity {
            cluster_id,
            replica_id,
        }
    }
}

/// A [`Storage`] in append-only files of checksummed records (see the
/// [module docs](self) for the format, the files and the recovery rules).
///
/// Dropping it without a [`sync`](Storage::sync) discards the records
/// appended since the last one, as a crash would. Dropping it releases the
/// log's lock.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    /// The log file, holding the exclusive lock for as long as the storage
    /// lives.
    lock: File,
    identity: FileIdentity,
    /// The first segment that follows the log file.
    log_next: u64,
    /// Bytes and records of the log file, while a segment is the newest
    /// file (otherwise `written` and `active_records` count them).
    log_bytes: u64,
    log_records: u64,
    /// The segments before the newest file, oldest first.
    closed: Vec<Segment>,
    /// The newest file's segment number; `None`: the log file is newest.
    active: Option<u64>,
    /// The newest file, where appends go.
    file: File,
    /// Framed records appended but not yet written to the file.
    buf: Vec<u8>,
    /// Length of the newest file's valid data (header and whole frames).
    written: u64,
    /// Records in the newest file plus those buffered.
    active_records: u64,
    /// Bytes were written to the newest file since its last `fsync`.
    dirty: bool,
    /// A segment was created since the directory's last `fsync`.
    dir_dirty: bool,
    segment_bytes: u64,
    syncs: u64,
    /// Bytes recovery cut off a torn final frame, in total.
    discarded: u64,
    /// Why recovery last cut the file, if it did.
    last_discard: Option<String>,
    /// The records recovery read in `open`, handed out by the first `load`
    /// if nothing was appended in between.
    recovered: Option<Vec<Record>>,
    /// Set by the first I/O error; every later call fails with it.
    failed: Option<String>,
    /// A checkpoint being written in the background, if one is.
    pending: Option<Pending>,
}

/// A closed segment: synced, never written again.
#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u64,
    bytes: u64,
    records: u64,
}

/// A checkpoint a thread is writing to the `.compact` file
/// ([`Storage::compact_in_background`]). It stands for every record
/// before segment `follows`, which was begun when it was asked for; until
/// it is renamed over the log file, the old files stay the whole truth.
#[derive(Debug)]
struct Pending {
    /// Writes the header and the checkpoint, syncs, and hands back the
    /// file (locked) and its length; stops early once `cancel` is set.
    worker: std::thread::JoinHandle<std::io::Result<(File, u64)>>,
    cancel: Arc<AtomicBool>,
    /// Records in the checkpoint.
    checkpoint_records: u64,
    /// The first segment after the checkpoint.
    follows: u64,
}

/// How often, and how far apart, `open` asks again for a lock held by
/// someone else (at most 100 ms in all) before answering `StorageInUse`.
const LOCK_ATTEMPTS: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(5);

/// What reading one file of the log found.
struct FileScan {
    records: Vec<Record>,
    /// Where its whole frames end.
    end: u64,
    /// Its length.
    len: u64,
    /// Why the bytes after `end` are to be cut, if there are any.
    torn: Option<String>,
    /// It ends inside its header (a segment being begun): the header is
    /// to be written.
    headless: bool,
    /// The sequence number its header names (a new log file's: 1).
    seq: u64,
}

impl FileStorage {
    /// Opens the log of replica `identity` at `path` (the log file, and
    /// the segments beside it), creating the log file (with its header,
    /// made durable) if it does not exist or is empty, locks it, and
    /// recovers the log: an incomplete final frame (a torn write) is cut
    /// off; any other damage is refused (see the module docs).
    ///
    /// Errors: [`Error::StorageInUse`] if another `FileStorage` (in any
    /// process) holds the log; [`Error::StorageMismatch`] if it belongs to
    /// another cluster or replica; [`Error::StorageCorrupt`] if it is
    /// damaged (the files are left untouched); [`Error::Corrupt`] if it is
    /// not a record file; [`Error::UnsupportedVersion`] if it is one of
    /// another format; [`Error::Storage`] for I/O errors (a missing
    /// directory, a path that is a directory, no permission).
    pub fn open(path: impl AsRef<Path>, identity: FileIdentity) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let open_log = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_error("cannot open", &path, &e))
        };
        let mut file = open_log()?;
        // A lock can be held for an instant by no replica at all: a child
        // that another thread is spawning inherits every descriptor between
        // fork and exec, and with it the lock of a file just closed here. A
        // live holder keeps it; that window closes within milliseconds, so
        // ask again for a short, bounded while before saying "in use".
        let mut attempts = 0;
        loop {
            match file.try_lock() {
                Ok(()) if same_file(&file, &path).unwrap_or(true) => break,
                Ok(()) if attempts < LOCK_ATTEMPTS => {
                    // The lock's last holder compacted: a new file is at
                    // `path` now. Lock that one instead.
                    attempts += 1;
                    file = open_log()?;
                }
                Ok(()) => {
                    return Err(Error::StorageInUse(format!(
                        "{} keeps being replaced while it is opened",
                        path.display()
                    )));
                }
                Err(TryLockError::WouldBlock) if attempts < LOCK_ATTEMPTS => {
                    attempts += 1;
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::StorageInUse(format!(
                        "{} is locked by another open storage (a live replica in this or another process)",
                        path.display()
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(io_error("cannot lock", &path, &e)),
            }
        }
        let active = file
            .try_clone()
            .map_err(|e| io_error("cannot open", &path, &e))?;
        let mut s = FileStorage {
            path,
            lock: file,
            identity,
            log_next: 1,
            log_bytes: 0,
            log_records: 0,
            closed: Vec::new(),
            active: None,
            file: active,
            buf: Vec::new(),
            written: 0,
            active_records: 0,
            dirty: false,
            dir_dirty: false,
            segment_bytes: SEGMENT_BYTES,
            syncs: 0,
            discarded: 0,
            last_discard: None,
            recovered: None,
            failed: None,
            pending: None,
        };
        // A compaction that crashed before its rename left this: the log
        // file at `path` is still the whole truth.
        let _ = std::fs::remove_file(compact_path(&s.path));
        match s.recover() {
            Ok(records) => {
                s.recovered = Some(records);
                Ok(s)
            }
            Err(e) => {
                // A refused open leaves the directory as it found it: the
                // empty log file it created goes again.
                if !existed && s.lock.metadata().is_ok_and(|m| m.len() == 0) {
                    let _ = std::fs::remove_file(&s.path);
                }
                Err(e)
            }
        }
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's files, oldest first: the log file, then its segments.
    pub fn files(&self) -> Vec<PathBuf> {
        let segments = self.closed.iter().map(|s| s.seq).chain(self.active);
        std::iter::once(self.path.clone())
            .chain(segments.map(|n| segment_path(&self.path, n)))
            .collect()
    }

    /// The cluster and replica the log belongs to.
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// Bytes of the log: the files' valid data plus buffered appends.
    pub fn len_bytes(&self) -> u64 {
        let older = if self.active.is_some() {
            self.log_bytes
        } else {
            0
        };
        older
            + self.closed.iter().map(|s| s.bytes).sum::<u64>()
            + self.written
            + self.buf.len() as u64
    }

    /// Records in the log, buffered appends included.
    pub fn record_count(&self) -> u64 {
        let older = if self.active.is_some() {
            self.log_records
        } else {
            0
        };
        older + self.closed.iter().map(|s| s.records).sum::<u64>() + self.active_records
    }

    /// How many times data was written and `fsync`ed (by a
    /// [`sync`](Storage::sync), or in closing a segment or landing a
    /// checkpoint).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Bytes recovery has cut off torn final frames since `open`.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// Why recovery last cut off a torn final frame (offset and cause), if
    /// it did.
    pub fn last_discard(&self) -> Option<&str> {
        self.last_discard.as_deref()
    }

    /// Begin a new segment at the first sync after the newest file holds
    /// `bytes` bytes or more ([`SEGMENT_BYTES`] by default; at least one
    /// record per segment).
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes;
    }

    fn check_failed(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(m) => Err(Error::storage(format!(
                "{} is unusable after an earlier failure: {m}",
                self.path.display()
            ))),
        }
    }

    /// Records the first I/O error; the store refuses work from then on.
    fn fail(&mut self, what: &str, e: &std::io::Error) -> Error {
        self.fail_at(what, &self.path.clone(), e)
    }

    fn fail_at(&mut self, what: &str, path: &Path, e: &std::io::Error) -> Error {
        let err = io_error(what, path, e);
        if let Error::Storage(m) = &err {
            self.failed.get_or_insert_with(|| m.clone());
        }
        err
    }

    /// Reads the header of `file` (`len` bytes long) at `path`, which is
    /// to be a file of `kind` with sequence number `seq` (for a segment).
    /// `Ok(None)`: a file torn while its header was being written (a
    /// prefix of the header it would have: a log file's names segment 1),
    /// holding no records.
    fn read_header(
        &mut self,
        file: &File,
        len: u64,
        path: &Path,
        kind: Kind,
        seq: u64,
    ) -> Result<Option<Header>> {
        let mut have = [0u8; FILE_HEADER_LEN as usize];
        let have_len = len.min(FILE_HEADER_LEN) as usize;
        let mut rd = file;
        if let Err(e) = rd
            .seek(SeekFrom::Start(0))
            .and_then(|_| rd.read_exact(&mut have[..have_len]))
        {
            return Err(self.fail_at("cannot read", path, &e));
        }
        let have = &have[..have_len];
        let Some(h) = parse_header(have, path)? else {
            let want = header(self.identity, kind, seq);
            if have != &want[..have_len] {
                return Err(Error::StorageCorrupt(format!(
                    "{}: a {len}-byte file header that is neither complete nor a prefix of this replica's header",
                    path.display()
                )));
            }
            return Ok(None);
        };
        if h.identity != self.identity {
            return Err(Error::StorageMismatch(format!(
                "{} belongs to replica {} of cluster {:#x}, not to replica {} of cluster {:#x}",
                path.display(),
                h.identity.replica_id,
                h.identity.cluster_id,
                self.identity.replica_id,
                self.identity.cluster_id
            )));
        }
        match (kind, h.kind) {
            (Kind::Log, Kind::Log) => {}
            (Kind::Segment, Kind::Segment) if h.seq == seq => {}
            (Kind::Segment, Kind::Segment) => {
                return Err(Error::StorageCorrupt(format!(
                    "{}: its header says it is segment {}, not {seq}",
                    path.display(),
                    h.seq
                )));
            }
            (want, _) => {
                return Err(Error::StorageCorrupt(format!(
                    "{}: its header says it is {}, not {}",
                    path.display(),
                    kind_name(h.kind),
                    kind_name(want)
                )));
            }
        }
        Ok(Some(h))
    }

    /// Reads the frames of `file` at `path` from `from`, its header's end.
    fn scan_file(&mut self, file: &File, path: &Path, from: u64, len: u64) -> Result<FileScan> {
        let mut rd = file;
        if let Err(e) = rd.seek(SeekFrom::Start(from)) {
            return Err(self.fail_at("cannot seek in", path, &e));
        }
        let scan = match scan_frames(BufReader::with_capacity(1 << 16, rd), from, len) {
            Ok(scan) => scan,
            Err(ScanError::Io(e)) => return Err(self.fail_at("cannot read", path, &e)),
            Err(ScanError::Newer(e)) => return Err(e),
        };
        match scan {
            Scan::Ok { records, end, torn } => Ok(FileScan {
                records,
                end,
                len,
                torn,
                headless: false,
                seq: 0,
            }),
            Scan::Corrupt(why) => Err(Error::StorageCorrupt(format!(
                "{}: {why}; the files were left untouched (see docs/PAXOS-STORAGE.md)",
                path.display()
            ))),
        }
    }

    /// Reads the header and frames of the log file or of segment `seq`.
    fn read_file(&mut self, file: &File, path: &Path, kind: Kind, seq: u64) -> Result<FileScan> {
        let len = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Err(self.fail_at("cannot stat", path, &e)),
        };
        match self.read_header(file, len, path, kind, seq)? {
            Some(h) => {
                let scan = self.scan_file(file, path, h.len, len)?;
                Ok(FileScan { seq: h.seq, ..scan })
            }
            None => Ok(FileScan {
                records: Vec::new(),
                end: 0,
                len,
                torn: None,
                seq,
                headless: true,
            }),
        }
    }

    /// Reads every file of the log (see the module docs for the rules),
    /// and only once all of it is known good repairs what a crash left:
    /// a torn tail is cut, a header torn at creation written whole,
    /// segments the log file stands for deleted. Sets the store's view of
    /// its files; the buffer must be empty.
    fn recover(&mut self) -> Result<Vec<Record>> {
        debug_assert!(self.buf.is_empty());
        let log_file = self
            .lock
            .try_clone()
            .map_err(|e| self.fail("cannot open", &e))?;
        let log = self.read_file(&log_file, &self.path.clone(), Kind::Log, 1)?;
        self.log_next = log.seq;
        let listed = match list_segments(&self.path) {
            Ok(l) => l,
            Err(e) => return Err(self.fail("cannot list the segments of", &e)),
        };
        if log.headless && !listed.is_empty() {
            return Err(Error::StorageCorrupt(format!(
                "{} is new or empty, but segments of a log lie beside it ({} and {} more): the log file is missing; restore it or move the segments away (see docs/PAXOS-STORAGE.md)",
                self.path.display(),
                segment_path(&self.path, listed[0]).display(),
                listed.len() - 1
            )));
        }
        let (stale, live): (Vec<u64>, Vec<u64>) =
            listed.into_iter().partition(|&n| n < self.log_next);
        for (i, &n) in live.iter().enumerate() {
            let want = self.log_next + i as u64;
            if n != want {
                return Err(Error::StorageCorrupt(format!(
                    "{}: segment {want} is missing (found {}); the files were left untouched (see docs/PAXOS-STORAGE.md)",
                    self.path.display(),
                    segment_path(&self.path, n).display()
                )));
            }
        }
        // Every file but the newest was synced whole before the next was
        // begun: only the newest can end inside a frame or its header.
        let mut files = vec![(log_file, self.path.clone(), log)];
        for &n in &live {
            let path = segment_path(&self.path, n);
            let f = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(e) => return Err(self.fail_at("cannot open", &path, &e)),
            };
            let scan = self.read_file(&f, &path, Kind::Segment, n)?;
            files.push((f, path, scan));
        }
        let newest = files.len() - 1;
        for (_, path, scan) in &files[..newest] {
            if scan.headless || scan.torn.is_some() {
                let why = scan
                    .torn
                    .as_deref()
                    .unwrap_or("the file ends inside its header");
                return Err(Error::StorageCorrupt(format!(
                    "{}: {why}, but a newer file of the log follows it (a file is synced whole before the next is begun); the files were left untouched (see docs/PAXOS-STORAGE.md)",
                    path.display()
                )));
            }
        }

        // All of it is good: repair, then take it as the store's view.
        let (f, path, scan) = files.pop().expect("the log file at least");
        if scan.headless {
            let (kind, seq) = match live.last() {
                Some(&n) => (Kind::Segment, n),
                None => (Kind::Log, 1),
            };
            let want = header(self.identity, kind, seq);
            let mut w = &f;
            let res = f
                .set_len(0)
                .and_then(|_| w.seek(SeekFrom::Start(0)).map(drop))
                .and_then(|_| w.write_all(&want))
                .and_then(|_| f.sync_all())
                .and_then(|_| sync_parent_dir(&path));
            if let Err(e) = res {
                return Err(self.fail_at("cannot write the header of", &path, &e));
            }
        }
        let end = if scan.headless {
            FILE_HEADER_LEN
        } else {
            scan.end
        };
        if let Some(why) = &scan.torn {
            if let Err(e) = f.set_len(scan.end).and_then(|_| f.sync_data()) {
                return Err(self.fail_at("cannot truncate the torn tail of", &path, &e));
            }
            let cut = scan.len - scan.end;
            self.discarded += cut;
            self.last_discard = Some(format!(
                "cut {cut} bytes at offset {} of {}: {why}",
                scan.end,
                path.display()
            ));
        }
        for n in stale {
            // The log file stands for these: a crash came between a
            // checkpoint's rename and their deletion.
            let _ = std::fs::remove_file(segment_path(&self.path, n));
        }
        let mut records = Vec::new();
        self.closed.clear();
        for (i, (_, _, s)) in files.into_iter().enumerate() {
            let n = s.records.len() as u64;
            if i == 0 {
                self.log_bytes = s.end;
                self.log_records = n;
            } else {
                self.closed.push(Segment {
                    seq: live[i - 1],
                    bytes: s.end,
                    records: n,
                });
            }
            records.extend(s.records);
        }
        self.active_records = scan.records.len() as u64;
        records.extend(scan.records);
        self.active = live.last().copied();
        self.file = f;
        self.written = end;
        // `dirty` and `dir_dirty` stay as they are: a `load` in mid-life
        // reads what was written but not yet made durable.
        Ok(records)
    }

    /// Writes the buffered frames to the newest file (no `fsync`).
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = self.written;
        let res = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&self.buf));
        if let Err(e) = res {
            return Err(self.fail("cannot write to", &e));
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    /// Makes what was written durable: the newest file's data, then the
    /// directory entries of segments begun since the last time.
    fn flush_durable(&mut self) -> Result<()> {
        self.write_out()?;
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                return Err(self.fail("cannot fsync", &e));
            }
            self.dirty = false;
            self.syncs += 1;
        }
        if self.dir_dirty {
            if let Err(e) = sync_parent_dir(&self.path) {
                return Err(self.fail("cannot sync the directory of", &e));
            }
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Closes the newest file and begins the next segment. Everything
    /// before it is made durable first, so a crash can never keep a
    /// record of the new segment and lose one of an older file. The new
    /// segment's header and directory entry are made durable by the next
    /// sync (a crash before leaves it missing or torn at its header, and
    /// it holds nothing synced).
    fn roll_over(&mut self) -> Result<()> {
        self.flush_durable()?;
        let n = self.active.map_or(self.log_next, |s| s + 1);
        let path = segment_path(&self.path, n);
        let created = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(&header(self.identity, Kind::Segment, n))
                    .map(|_| f)
            });
        let f = match created {
            Ok(f) => f,
            Err(e) => return Err(self.fail_at("cannot begin the segment", &path, &e)),
        };
        match self.active {
            Some(seq) => self.closed.push(Segment {
                seq,
                bytes: self.written,
                records: self.active_records,
            }),
            None => {
                self.log_bytes = self.written;
                self.log_records = self.active_records;
            }
        }
        self.active = Some(n);
        self.file = f;
        self.written = FILE_HEADER_LEN;
        self.active_records = 0;
        self.dirty = true;
        self.dir_dirty = true;
        Ok(())
    }

    /// Renames the new log file written at the `.compact` path (synced,
    /// locked, `len` bytes holding `records` records, followed by segment
    /// `next`) over the log file and deletes the segments before `next`;
    /// on any error, here or in writing it, removes it and stops the store
    /// (the old files are whole).
    fn put_in_place(
        &mut self,
        written: std::io::Result<(File, u64)>,
        next: u64,
        records: u64,
    ) -> Result<()> {
        let tmp = compact_path(&self.path);
        let dir_dirty = self.dir_dirty;
        let placed = written.and_then(|(f, len)| {
            if dir_dirty {
                // Segments begun since the last sync exist before the
                // log file that names them.
                sync_parent_dir(&self.path)?;
            }
            std::fs::rename(&tmp, &self.path)?;
            sync_parent_dir(&self.path)?;
            Ok((f, len))
        });
        match placed {
            Ok((f, len)) => {
                // Dropping the old handle releases the old inode's lock.
                self.lock = f;
                self.dir_dirty = false;
                self.log_next = next;
                self.log_bytes = len;
                self.log_records = records;
                let gone = self.closed.iter().map(|s| s.seq).chain(self.active);
                for n in gone.filter(|&n| n < next) {
                    // A crash before this leaves them to the next open,
                    // which deletes them: the log file stands for them.
                    let _ = std::fs::remove_file(segment_path(&self.path, n));
                }
                self.closed.retain(|s| s.seq >= next);
                self.syncs += 1;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(self.fail("cannot compact", &e))
            }
        }
    }

    /// Waits for the background checkpoint and puts it in place.
    fn finish_compaction(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let joined = p
            .worker
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the compaction thread panicked")));
        self.put_in_place(joined, p.follows, p.checkpoint_records)
    }

    /// Stops the checkpoint being written in the background, if one is,
    /// and removes what it wrote: the log's files, which hold every
    /// record, stay the truth. This is what a crash before the checkpoint
    /// lands leaves (for tests, and for a caller that must stop at once;
    /// dropping the store waits for the checkpoint and puts it in place).
    pub fn abandon_compaction(&mut self) {
        self.cancel_compaction();
    }

    /// Stops a background checkpoint and removes what it wrote.
    fn cancel_compaction(&mut self) {
        if let Some(p) = self.pending.take() {
            p.cancel.store(true, Ordering::Relaxed);
            let _ = p.worker.join();
            let _ = std::fs::remove_file(compact_path(&self.path));
        }
    }

    /// Writes `checkpoint` as a new log file beside this one, syncs it,
    /// renames it over this one and deletes every segment: a crash leaves
    /// the old log or the new one, never a mix. Appends go on into the new
    /// log file after the checkpoint.
    fn rewrite(&mut self, checkpoint: &[Record]) -> Result<()> {
        check_frames(checkpoint)?;
        let next = self.active.map_or(self.log_next, |s| s + 1);
        let never = AtomicBool::new(false);
        let written = write_checkpoint(
            &compact_path(&self.path),
            &header(self.identity, Kind::Log, next),
            checkpoint,
            &never,
        );
        self.put_in_place(written, next, checkpoint.len() as u64)?;
        let file = match self.lock.try_clone() {
            Ok(f) => f,
            Err(e) => return Err(self.fail("cannot open", &e)),
        };
        self.file = file;
        self.active = None;
        self.written = self.log_bytes;
        self.active_records = self.log_records;
        self.buf.clear();
        self.dirty = false;
        Ok(())
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Log => "a log file",
        Kind::Segment => "a segment",
    }
}

/// Where a compaction writes the new log file before renaming it over
/// the old.
fn compact_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".compact");
    PathBuf::from(name)
}

/// The path of segment `n` of the log at `path`.
fn segment_path(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".seg.{n:06}"));
    PathBuf::from(name)
}

/// The numbers of the segments of the log at `path` in its directory, in
/// order. Only names [`segment_path`] makes count.
fn list_segments(path: &Path) -> std::io::Result<Vec<u64>> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(base) = path.file_name() else {
        return Ok(Vec::new());
    };
    let mut prefix = base.to_owned();
    prefix.push(".seg.");
    let prefix = prefix.as_encoded_bytes().to_vec();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(digits) = name.as_encoded_bytes().strip_prefix(&prefix[..]) else {
            continue;
        };
        let Some(n) = std::str::from_utf8(digits)
            .ok()
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok())
        else {
            continue;
        };
        if segment_path(path, n).file_name() == Some(&name) {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Whether `file` is still the file at `path` (a compaction by the
/// previous holder of the lock may have renamed a new one over it).
fn same_file(file: &File, path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (file.metadata()?, std::fs::metadata(path)?);
        Ok(a.dev() == b.dev() && a.ino() == b.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        Ok(true)
    }
}

impl Storage for FileStorage {
    /// Frames the record into the buffer (written out early, without
    /// `fsync`, once the buffer passes 1 MiB). A record whose encoding
    /// exceeds 4 GiB − 1 bytes is an [`Error::InvalidArgument`].
    fn append(&mut self, record: &Record) -> Result<()> {
        self.check_failed()?;
        self.recovered = None;
        put_frame(record, &mut self.buf)?;
        self.active_records += 1;
        if self.buf.len() >= WRITE_OUT_AT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffered records and `fsync`s the newest file (skipped
    /// when nothing was written since the last sync); puts a background
    /// checkpoint whose thread is done in place; begins a new segment
    /// once the newest file holds [`SEGMENT_BYTES`].
    fn sync(&mut self) -> Result<()> {
        self.check_failed()?;
        self.flush_durable()?;
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.worker.is_finished())
        {
            self.finish_compaction()?;
        }
        if self.written >= self.segment_bytes && self.active_records > 0 {
            self.roll_over()?;
        }
        Ok(())
    }

    /// The records in the files (buffered appends are written out first,
    /// not synced), after recovery cuts off a torn tail.
    fn load(&mut self) -> Result<Vec<Record>> {
        self.check_failed()?;
        if let Some(records) = self.recovered.take() {
            return Ok(records);
        }
        self.write_out()?;
        if self.pending.is_some() {
            self.finish_compaction()?;
        }
        self.recover()
    }

    /// Rewrites the log as the checkpoint (a new log file renamed over
    /// this one, then every segment deleted), so the disk holds only the
    /// snapshot and what follows it; records buffered and not yet synced
    /// are dropped (the checkpoint stands for them).
    fn compact(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.check_failed()?;
        self.recovered = None;
        self.cancel_compaction();
        self.rewrite(&checkpoint)
    }

    /// A checkpoint is in place once a sync found its thread done.
    fn compacting(&self) -> bool {
        self.pending.is_some()
    }

    /// Begins a new segment (making every record before it durable), then
    /// writes the checkpoint of everything before that segment to the
    /// `.compact` file on a thread of its own and returns; appends and
    /// syncs go on into the new segment meanwhile. The first
    /// [`sync`](Storage::sync) after the thread is done renames it over
    /// the log file and deletes the segments it stands for (a crash before
    /// that leaves the old files, which still hold every record).
    ///
    /// While one is being written, another is skipped: the one being
    /// written still lands, and the next compaction catches up (cancelling
    /// it instead could starve a large state of compaction under a steady
    /// load, and the log would grow without bound). A
    /// [`compact`](Storage::compact) abandons it; closing the store waits
    /// for it. A failure to write it stops the store at that sync, as a
    /// failed `compact` would.
    fn compact_in_background(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.check_failed()?;
        self.recovered = None;
        if self.pending.is_some() {
            return Ok(());
        }
        check_frames(&checkpoint)?;
        if self.active.is_none() || self.active_records > 0 {
            // An empty newest segment already follows everything before
            // it: the checkpoint can stand for that.
            self.roll_over()?;
        }
        let follows = self.active.expect("a segment was just begun");
        let cancel = Arc::new(AtomicBool::new(false));
        let checkpoint_records = checkpoint.len() as u64;
        let (tmp, head, stop) = (
            compact_path(&self.path),
            header(self.identity, Kind::Log, follows),
            cancel.clone(),
        );
        let worker = std::thread::Builder::new()
            .name("qk-compaction".into())
            .spawn(move || write_checkpoint(&tmp, &head, &checkpoint, &stop))
            .map_err(|e| self.fail("cannot start compacting", &e))?;
        self.pending = Some(Pending {
            worker,
            cancel,
            checkpoint_records,
            follows,
        });
        Ok(())
    }
}

impl Drop for FileStorage {
    /// Puts a checkpoint still being written in place first (waiting for
    /// it), so a store closed on purpose keeps its compaction; after a
    /// failure it is abandoned instead (the files are whole).
    fn drop(&mut self) {
        if self.pending.is_some() && self.failed.is_none() {
            // Records still buffered are dropped, as without a compaction.
            self.buf.clear();
            if self.finish_compaction().is_ok() {
                return;
            }
        }
        self.cancel_compaction();
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::storage(format!("{what} {}: {e}", path.display()))
}

/// Makes a new file's directory entry durable (Unix; elsewhere a no-op).
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}
