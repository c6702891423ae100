//! [`FileStorage`]: a node's records in an append-only, checksummed file
//! (`docs/WIRE.md`, "Record file"), locked by the node that uses it.
//!
//! ```text
//! offset  size  field
//! 0       4     magic, the bytes "QKPX"
//! 4       2     file format version, u16 LE (this build: 2)
//! 6       8     cluster id, u64 LE
//! 14      4     replica id, u32 LE
//! 18      4     CRC-32 (IEEE, as zlib.crc32) of bytes 0..18, u32 LE
//! 22      ...   frames, one per record:
//!                 4  payload length N, u32 LE
//!                 4  CRC-32 of the payload, u32 LE
//!                 4  CRC-32 of the 8 bytes before it (the frame header)
//!                 N  payload: the record in the wire format (wire::encode_record)
//! ```
//!
//! Appends are buffered in memory; [`sync`](Storage::sync) writes them and
//! calls `fsync` (`File::sync_data`), so a crash loses at most the records
//! appended since the last sync — and a crash during a sync can leave a
//! *torn tail*: a final frame the file ends inside.
//!
//! # Recovery: a torn tail is cut, damage is refused
//! [`open`](FileStorage::open) reads every frame from the start.
//! - **Torn write** (repaired): the file ends inside its last frame (fewer
//!   than 12 header bytes left, or a header whose own checksum holds and
//!   whose length runs past the end of the file). Only that incomplete
//!   frame is cut off; it was never synced, since a sync returns only after
//!   the whole frame is on disk.
//! - **Corruption** (refused with [`Error::StorageCorrupt`], file left
//!   byte for byte as it was): a complete frame header whose checksum does
//!   not match (so a damaged length can never pass for a torn tail), a
//!   payload whose checksum does not match, a checksummed payload that does
//!   not decode, or a damaged file header. Damage anywhere, with intact
//!   frames after it or not, is corruption: those records may be promises
//!   and accepts the replica acknowledged, and a replica that forgets them
//!   can break agreement. `docs/PAXOS-STORAGE.md` says what an operator
//!   does then.
//!
//! # Compaction
//! [`compact`](Storage::compact) writes the checkpoint to `PATH.compact`,
//! syncs it and renames it over the file, so a crash leaves the old file
//! or the new one (a leftover `.compact` file is removed on open).
//! [`compact_in_background`](Storage::compact_in_background) does the
//! same on a thread of its own while appends go on into the old file; the
//! first sync after the thread is done copies those records from the old
//! file to the new one (so they are not held in memory meanwhile) and
//! renames it into place.
//!
//! # One owner, the right owner
//! The file records the cluster id and replica id it belongs to, and an
//! open with another identity is refused ([`Error::StorageMismatch`]). An
//! exclusive advisory lock (`flock`) is held for as long as the
//! `FileStorage` lives; a second open, from this process or another, is
//! refused ([`Error::StorageInUse`]).
//!
//! Other refusals (nothing is changed): a file whose first bytes are not
//! the magic ([`Error::Corrupt`]: not a record file), a file or an intact
//! record of another format version ([`Error::UnsupportedVersion`]; files
//! of format 1, written before identities and frame-header checksums, are
//! not read). I/O errors are [`Error::Storage`], naming the path and the OS
//! error; after one the store refuses every later call, since after a
//! failed write or `fsync` nothing is known about what reached the disk.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::ballot::NodeId;
use super::storage::{Record, Storage};
use super::wire;
use crate::error::{Error, Result};

/// The first four bytes of a record file.
pub const FILE_MAGIC: [u8; 4] = *b"QKPX";
/// The record file format version this build writes and reads.
pub const FILE_FORMAT_VERSION: u16 = 2;
/// Bytes of the file header (magic, version, identity, checksum).
pub const FILE_HEADER_LEN: u64 = 22;
/// Bytes of a frame's header (length, payload checksum, header checksum).
pub const FRAME_HEADER_LEN: usize = 12;

/// Buffered appends beyond this are written out (without `fsync`) at once,
/// so a long run of appends without a sync does not grow memory unbounded.
const WRITE_OUT_AT: usize = 1 << 20;

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

fn header(id: FileIdentity) -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[0..4].copy_from_slice(&FILE_MAGIC);
    h[4..6].copy_from_slice(&FILE_FORMAT_VERSION.to_le_bytes());
    h[6..14].copy_from_slice(&id.cluster_id.to_le_bytes());
    h[14..18].copy_from_slice(&id.replica_id.to_le_bytes());
    let crc = crc32fast::hash(&h[..18]);
    h[18..22].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The frame header of a payload: length, payload CRC, header CRC.
fn frame_header(payload: &[u8], n: u32) -> [u8; FRAME_HEADER_LEN] {
    frame_header_crc(crc32fast::hash(payload), n)
}

/// The frame header of an `n`-byte payload whose CRC is `crc`.
fn frame_header_crc(crc: u32, n: u32) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0..4].copy_from_slice(&n.to_le_bytes());
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32fast::hash(&h[..8]);
    h[8..12].copy_from_slice(&hcrc.to_le_bytes());
    h
}

/// What reading the frames of a file found.
enum Scan {
    /// Every frame whole up to `end`; `torn` says why the bytes after it
    /// (an incomplete final frame) are to be cut, if there are any.
    Ok {
        records: Vec<Record>,
        end: u64,
        torn: Option<String>,
    },
    /// Damage: a storage-corrupt error naming where.
    Corrupt(String),
}

/// A [`Storage`] in an append-only file of checksummed records (see the
/// [module docs](self) for the format and the recovery rules).
///
/// Dropping it without a [`sync`](Storage::sync) discards the records
/// appended since the last one, as a crash would. Dropping it releases the
/// file's lock.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    /// Holds the exclusive lock for as long as the storage lives.
    file: File,
    identity: FileIdentity,
    /// Framed records appended but not yet written to the file.
    buf: Vec<u8>,
    /// Length of the file's valid data (header and whole frames written).
    written: u64,
    /// Bytes were written since the last `fsync`.
    dirty: bool,
    /// Records in the file plus those buffered.
    records: u64,
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

/// A checkpoint a thread is writing to the `.compact` file
/// ([`Storage::compact_in_background`]). Until it is renamed over the
/// record file, that file stays the whole truth: appends go on into it as
/// usual, and are copied from it to follow the checkpoint in the new file.
#[derive(Debug)]
struct Pending {
    /// Writes the header and the checkpoint, syncs, and hands back the
    /// file (locked) and its length; stops early once `cancel` is set.
    worker: std::thread::JoinHandle<std::io::Result<(File, u64)>>,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Records in the checkpoint.
    checkpoint_records: u64,
    /// Where the frames appended since the compaction began start in the
    /// record file, and how many there are. They are copied from there when
    /// the checkpoint lands rather than kept in memory: a large checkpoint
    /// under a heavy load would otherwise hold every record of the
    /// meantime twice.
    since_offset: u64,
    since_records: u64,
}

/// How often, and how far apart, `open` asks again for a lock held by
/// someone else (at most 100 ms in all) before answering `StorageInUse`.
const LOCK_ATTEMPTS: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(5);

impl FileStorage {
    /// Opens the record file of replica `identity` at `path`, creating it
    /// (with its header, made durable) if it does not exist or is empty,
    /// locks it, and recovers it: an incomplete final frame (a torn write)
    /// is cut off; any other damage is refused (see the module docs).
    ///
    /// Errors: [`Error::StorageInUse`] if another `FileStorage` (in any
    /// process) holds the file; [`Error::StorageMismatch`] if it belongs to
    /// another cluster or replica; [`Error::StorageCorrupt`] if it is
    /// damaged (the file is left untouched); [`Error::Corrupt`] if it is not
    /// a record file; [`Error::UnsupportedVersion`] if it is one of another
    /// format; [`Error::Storage`] for I/O errors (a missing directory, a
    /// path that is a directory, no permission).
    pub fn open(path: impl AsRef<Path>, identity: FileIdentity) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, &e))?;
        // A lock can be held for an instant by no replica at all: a child
        // that another thread is spawning inherits every descriptor between
        // fork and exec, and with it the lock of a file just closed here. A
        // live holder keeps it; that window closes within milliseconds, so
        // ask again for a short, bounded while before saying "in use".
        let mut file = file;
        let mut attempts = 0;
        loop {
            match file.try_lock() {
                Ok(()) if same_file(&file, &path).unwrap_or(true) => break,
                Ok(()) if attempts < LOCK_ATTEMPTS => {
                    // The lock's last holder compacted: a new file is at
                    // `path` now. Lock that one instead.
                    attempts += 1;
                    file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)
                        .map_err(|e| io_error("cannot open", &path, &e))?;
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
        let mut s = FileStorage {
            path,
            file,
            identity,
            buf: Vec::new(),
            written: 0,
            dirty: false,
            records: 0,
            syncs: 0,
            discarded: 0,
            last_discard: None,
            recovered: None,
            failed: None,
            pending: None,
        };
        // A compaction that crashed before its rename left this: the file
        // at `path` is still the whole truth.
        let _ = std::fs::remove_file(compact_path(&s.path));
        s.check_header()?;
        let records = s.recover()?;
        s.recovered = Some(records);
        Ok(s)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cluster and replica the file belongs to.
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// Bytes of the log: the file's valid data plus buffered appends.
    pub fn len_bytes(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Records in the log, buffered appends included.
    pub fn record_count(&self) -> u64 {
        self.records
    }

    /// How many times [`sync`](Storage::sync) wrote and `fsync`ed data.
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
        let err = io_error(what, &self.path, e);
        if let Error::Storage(m) = &err {
            self.failed.get_or_insert_with(|| m.clone());
        }
        err
    }

    fn check_header(&mut self) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|e| self.fail("cannot stat", &e))?
            .len();
        let want = header(self.identity);
        let have_len = len.min(FILE_HEADER_LEN) as usize;
        let mut have = [0u8; FILE_HEADER_LEN as usize];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_exact(&mut have[..have_len]))
            .map_err(|e| self.fail("cannot read", &e))?;
        let have = &have[..have_len];
        let magic_len = have_len.min(FILE_MAGIC.len());
        if have[..magic_len] != FILE_MAGIC[..magic_len] {
            return Err(Error::corrupt(format!(
                "{} is not a record file: it starts with {:02x?}, not the magic \"QKPX\"",
                self.path.display(),
                &have[..magic_len]
            )));
        }
        if have_len >= 6 {
            let version = u16::from_le_bytes([have[4], have[5]]);
            if version != FILE_FORMAT_VERSION {
                return Err(Error::UnsupportedVersion {
                    found: version,
                    supported: FILE_FORMAT_VERSION,
                });
            }
        }
        if len < FILE_HEADER_LEN {
            // New, or torn while the header was being written (the header
            // is made durable before any record is appended, so such a file
            // holds none). Only a prefix of this very header is rewritten.
            if have != &want[..have_len] {
                return Err(Error::StorageCorrupt(format!(
                    "{}: a {len}-byte file header that is neither complete nor a prefix of this replica's header",
                    self.path.display()
                )));
            }
            self.file
                .set_len(0)
                .and_then(|_| self.file.seek(SeekFrom::Start(0)).map(drop))
                .and_then(|_| self.file.write_all(&want))
                .and_then(|_| self.file.sync_all())
                .map_err(|e| self.fail("cannot write the header of", &e))?;
            sync_parent_dir(&self.path)
                .map_err(|e| self.fail("cannot sync the directory of", &e))?;
            self.written = FILE_HEADER_LEN;
            return Ok(());
        }
        let stored = u32::from_le_bytes([have[18], have[19], have[20], have[21]]);
        let actual = crc32fast::hash(&have[..18]);
        if stored != actual {
            return Err(Error::StorageCorrupt(format!(
                "{}: the file header's checksum does not match (stored {stored:#010x}, computed {actual:#010x})",
                self.path.display()
            )));
        }
        let cluster_id = u64::from_le_bytes(have[6..14].try_into().expect("8 bytes"));
        let replica_id = u32::from_le_bytes(have[14..18].try_into().expect("4 bytes"));
        let found = FileIdentity {
            cluster_id,
            replica_id,
        };
        if found != self.identity {
            return Err(Error::StorageMismatch(format!(
                "{} belongs to replica {} of cluster {:#x}, not to replica {} of cluster {:#x}",
                self.path.display(),
                found.replica_id,
                found.cluster_id,
                self.identity.replica_id,
                self.identity.cluster_id
            )));
        }
        self.written = FILE_HEADER_LEN;
        Ok(())
    }

    /// Reads every frame. A torn final frame is cut off; damage is an
    /// [`Error::StorageCorrupt`] and leaves the file as it was. Sets
    /// `written` and `records`; the buffer must be empty.
    fn recover(&mut self) -> Result<Vec<Record>> {
        debug_assert!(self.buf.is_empty());
        let len = self
            .file
            .metadata()
            .map_err(|e| self.fail("cannot stat", &e))?
            .len();
        let scan = {
            let mut file = &self.file;
            if let Err(e) = file.seek(SeekFrom::Start(FILE_HEADER_LEN)) {
                return Err(self.fail("cannot seek in", &e));
            }
            let rd = BufReader::with_capacity(1 << 16, file);
            match scan_frames(rd, FILE_HEADER_LEN, len) {
                Ok(scan) => scan,
                Err(ScanError::Io(e)) => return Err(self.fail("cannot read", &e)),
                Err(ScanError::Newer(e)) => return Err(e),
            }
        };
        let (records, end, torn) = match scan {
            Scan::Ok { records, end, torn } => (records, end, torn),
            Scan::Corrupt(why) => {
                return Err(Error::StorageCorrupt(format!(
                    "{}: {why}; the file was left untouched (see docs/PAXOS-STORAGE.md)",
                    self.path.display()
                )));
            }
        };
        if let Some(why) = torn {
            self.file
                .set_len(end)
                .and_then(|_| self.file.sync_data())
                .map_err(|e| self.fail("cannot truncate the torn tail of", &e))?;
            self.discarded += len - end;
            self.last_discard = Some(format!("cut {} bytes at offset {end}: {why}", len - end));
        }
        self.written = end;
        self.records = records.len() as u64;
        Ok(records)
    }

    /// Writes the buffered frames to the file (no `fsync`).
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

    /// Waits for the background checkpoint, copies the records that came
    /// since from the record file to it, syncs and renames it over the
    /// record file. The record file's appends must be written out first.
    fn finish_compaction(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        debug_assert!(self.buf.is_empty(), "written out before");
        let joined = p
            .worker
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the compaction thread panicked")));
        // Short of the offset only when closing dropped records buffered
        // before the compaction was asked for: none came since.
        let since_len = self.written.saturating_sub(p.since_offset);
        let old = &mut self.file;
        let written = joined.and_then(|(mut f, len)| {
            f.seek(SeekFrom::Start(len))?;
            old.seek(SeekFrom::Start(p.since_offset))?;
            let copied = std::io::copy(&mut Read::by_ref(old).take(since_len), &mut f)?;
            if copied != since_len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the record file ended {copied} bytes into the {since_len} appended during the compaction"),
                ));
            }
            f.sync_all()?;
            Ok((f, len + since_len))
        });
        self.put_in_place(written, p.checkpoint_records + p.since_records)
    }

    /// Renames the new record file written at the `.compact` path (synced,
    /// locked, `len` bytes holding `records` records) over the record file
    /// and makes it this store's file; on any error, here or in writing it,
    /// removes it and stops the store (the old file is whole).
    fn put_in_place(&mut self, written: std::io::Result<(File, u64)>, records: u64) -> Result<()> {
        let tmp = compact_path(&self.path);
        let placed = written.and_then(|(f, len)| {
            std::fs::rename(&tmp, &self.path)?;
            sync_parent_dir(&self.path)?;
            Ok((f, len))
        });
        match placed {
            Ok((f, len)) => {
                // Dropping the old handle releases the old inode's lock.
                self.file = f;
                self.buf.clear();
                self.written = len;
                self.dirty = false;
                self.records = records;
                self.syncs += 1;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(self.fail("cannot compact", &e))
            }
        }
    }

    /// Stops the checkpoint being written in the background, if one is,
    /// and removes what it wrote: the record file, which holds every
    /// record, stays the truth. This is what a crash before the checkpoint
    /// lands leaves (for tests, and for a caller that must stop at once;
    /// dropping the store waits for the checkpoint and puts it in place).
    pub fn abandon_compaction(&mut self) {
        self.cancel_compaction();
    }

    /// Stops a background checkpoint and removes what it wrote.
    fn cancel_compaction(&mut self) {
        if let Some(p) = self.pending.take() {
            p.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = p.worker.join();
            let _ = std::fs::remove_file(compact_path(&self.path));
        }
    }
}

/// Appends `record` to `buf` as one frame.
fn put_frame(record: &Record, buf: &mut Vec<u8>) -> Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    wire::encode_record(record, buf);
    let payload = &buf[start + FRAME_HEADER_LEN..];
    let Ok(n) = u32::try_from(payload.len()) else {
        let n = payload.len();
        buf.truncate(start);
        return Err(Error::invalid(format!(
            "a record of {n} bytes does not fit a frame (at most {} bytes)",
            u32::MAX
        )));
    };
    let head = frame_header(payload, n);
    buf[start..start + FRAME_HEADER_LEN].copy_from_slice(&head);
    Ok(())
}

/// Where a compaction writes the new file before renaming it over the old.
fn compact_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".compact");
    PathBuf::from(name)
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

impl FileStorage {
    /// Writes `checkpoint` to a new file beside this one, syncs it and
    /// renames it over this one: a crash leaves the old file or the new
    /// one, never a mix (a leftover `.compact` file is removed on open).
    /// The frames are streamed to the file: a snapshot's bytes are not
    /// copied into a buffer first, so compacting a large state needs no
    /// second copy of it in memory.
    fn rewrite(&mut self, checkpoint: &[Record]) -> Result<()> {
        check_frames(checkpoint)?;
        let never = std::sync::atomic::AtomicBool::new(false);
        let written = write_checkpoint(
            &compact_path(&self.path),
            &header(self.identity),
            checkpoint,
            &never,
        );
        self.put_in_place(written, checkpoint.len() as u64)
    }
}

/// The payload length of `record`'s frame, or an [`Error::InvalidArgument`]
/// if it does not fit one. Only a snapshot can be that large; other
/// records are checked when they are framed.
fn frame_payload_len(record: &Record) -> Result<u32> {
    let n = match record {
        Record::Snapshot { slot, data } => {
            let mut head = Vec::with_capacity(24);
            wire::snapshot_record_head(*slot, data.len(), &mut head);
            head.len() as u64 + data.len() as u64
        }
        _ => 0,
    };
    u32::try_from(n).map_err(|_| {
        Error::invalid(format!(
            "a record of {n} bytes does not fit a frame (at most {} bytes)",
            u32::MAX
        ))
    })
}

/// Writes `record` to `w` as one frame (the bytes [`put_frame`] makes) and
/// returns its length. A snapshot's data goes from its own buffer to `w`;
/// other records are framed in `scratch` first.
fn write_frame(record: &Record, scratch: &mut Vec<u8>, w: &mut impl Write) -> std::io::Result<u64> {
    scratch.clear();
    let Record::Snapshot { slot, data } = record else {
        put_frame(record, scratch).map_err(std::io::Error::other)?;
        w.write_all(scratch)?;
        return Ok(scratch.len() as u64);
    };
    wire::snapshot_record_head(*slot, data.len(), scratch);
    let n = u32::try_from(scratch.len() + data.len()).map_err(std::io::Error::other)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(scratch);
    crc.update(data);
    let head = frame_header_crc(crc.finalize(), n);
    w.write_all(&head)?;
    w.write_all(scratch)?;
    w.write_all(data)?;
    Ok(FRAME_HEADER_LEN as u64 + u64::from(n))
}

impl Storage for FileStorage {
    /// Frames the record into the buffer (written out early, without
    /// `fsync`, once the buffer passes 1 MiB). A record whose encoding
    /// exceeds 4 GiB − 1 bytes is an [`Error::InvalidArgument`].
    fn append(&mut self, record: &Record) -> Result<()> {
        self.check_failed()?;
        self.recovered = None;
        put_frame(record, &mut self.buf)?;
        self.records += 1;
        if let Some(p) = &mut self.pending {
            p.since_records += 1;
        }
        if self.buf.len() >= WRITE_OUT_AT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffered records and `fsync`s the file (skipped when
    /// nothing was written since the last sync).
    fn sync(&mut self) -> Result<()> {
        self.check_failed()?;
        self.write_out()?;
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                return Err(self.fail("cannot fsync", &e));
            }
            self.dirty = false;
            self.syncs += 1;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.worker.is_finished())
        {
            self.finish_compaction()?;
        }
        Ok(())
    }

    /// The records in the file (buffered appends are written out first, not
    /// synced), after recovery cuts off a torn or corrupt tail.
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

    /// Rewrites the file as the checkpoint (a new file renamed over this
    /// one), so the disk holds only the snapshot and what follows it;
    /// records buffered and not yet synced are dropped (the checkpoint
    /// stands for them).
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

    /// Writes the checkpoint to the `.compact` file on a thread of its
    /// own and returns at once; appends and syncs go on meanwhile, into
    /// the record file as always. The first [`sync`](Storage::sync) after
    /// the thread is done appends the records that came since to the new
    /// file, syncs it and renames it over the record file (a crash before
    /// that leaves the old file, which still holds every record).
    ///
    /// While one is being written, another is skipped: the one being
    /// written still lands, with every record after it, and the next
    /// compaction catches up (cancelling it instead could starve a large
    /// state of compaction under a steady load, and the file would grow
    /// without bound). A [`compact`](Storage::compact) abandons it; closing
    /// the store waits for it. A failure to write it stops the store at
    /// that sync, as a failed `compact` would.
    fn compact_in_background(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.check_failed()?;
        self.recovered = None;
        if self.pending.is_some() {
            return Ok(());
        }
        check_frames(&checkpoint)?;
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoint_records = checkpoint.len() as u64;
        let (tmp, head, stop) = (
            compact_path(&self.path),
            header(self.identity),
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
            since_offset: self.written + self.buf.len() as u64,
            since_records: 0,
        });
        Ok(())
    }
}

impl Drop for FileStorage {
    /// Puts a checkpoint still being written in place first (waiting for
    /// it), so a store closed on purpose keeps its compaction; after a
    /// failure it is abandoned instead (the record file is whole).
    fn drop(&mut self) {
        if self.pending.is_some() && self.failed.is_none() {
            // Records still buffered are dropped, as without a compaction
            // (those written out early are in the record file, and follow
            // the checkpoint as they would stay without it).
            self.buf.clear();
            if self.finish_compaction().is_ok() {
                return;
            }
        }
        self.cancel_compaction();
    }
}

/// Refuses a checkpoint with a record too large for a frame, before any
/// file is touched.
fn check_frames(checkpoint: &[Record]) -> Result<()> {
    checkpoint
        .iter()
        .try_for_each(|r| frame_payload_len(r).map(|_| ()))
}

/// Writes a record file holding `checkpoint` at `tmp` (created, locked,
/// synced) and returns it with its length, or stops with an error once
/// `cancel` is set.
fn write_checkpoint(
    tmp: &Path,
    head: &[u8],
    checkpoint: &[Record],
    cancel: &std::sync::atomic::AtomicBool,
) -> std::io::Result<(File, u64)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    // A new inode nobody else can have locked.
    f.try_lock().map_err(std::io::Error::other)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, Cancellable { inner: f, cancel });
    w.write_all(head)?;
    let mut len = head.len() as u64;
    let mut scratch = Vec::new();
    for r in checkpoint {
        len += write_frame(r, &mut scratch, &mut w)?;
    }
    let f = w.into_inner().map_err(|e| e.into_error())?.inner;
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(std::io::Error::other("compaction abandoned"));
    }
    f.sync_all()?;
    Ok((f, len))
}

/// A writer that gives up once `cancel` is set, checked every MiB at most.
struct Cancellable<'a> {
    inner: File,
    cancel: &'a std::sync::atomic::AtomicBool,
}

impl Write for Cancellable<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("compaction abandoned"));
        }
        self.inner.write(&buf[..buf.len().min(1 << 20)])
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

enum ScanError {
    Io(std::io::Error),
    /// An intact record of a newer format: not damage, never cut off.
    Newer(Error),
}

/// Reads the frames of a record file from `rd`, positioned at byte `pos`
/// of a file of `len` bytes, applying the recovery rules of the module
/// docs. Pure over its reader, so the rules are tested on bytes alone.
fn scan_frames(mut rd: impl Read, mut pos: u64, len: u64) -> std::result::Result<Scan, ScanError> {
    let mut records = Vec::new();
    let mut payload = Vec::new();
    let mut index = 0u64;
    while pos < len {
        let left = len - pos;
        if left < FRAME_HEADER_LEN as u64 {
            let torn = format!(
                "frame {index}: the file ends inside its header ({left} of {FRAME_HEADER_LEN} bytes)"
            );
            return Ok(Scan::Ok {
                records,
                end: pos,
                torn: Some(torn),
            });
        }
        let mut head = [0u8; FRAME_HEADER_LEN];
        rd.read_exact(&mut head).map_err(ScanError::Io)?;
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let hcrc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if crc32fast::hash(&head[..8]) != hcrc {
            return Ok(Scan::Corrupt(format!(
                "frame {index} at byte {pos}: its header's checksum does not match"
            )));
        }
        let room = left - FRAME_HEADER_LEN as u64;
        if u64::from(n) > room {
            let torn =
                format!("frame {index}: the file ends inside it ({room} of {n} payload bytes)");
            return Ok(Scan::Ok {
                records,
                end: pos,
                torn: Some(torn),
            });
        }
        payload.resize(n as usize, 0);
        rd.read_exact(&mut payload).map_err(ScanError::Io)?;
        let actual = crc32fast::hash(&payload);
        if actual != crc {
            return Ok(Scan::Corrupt(format!(
                "frame {index} at byte {pos}: payload checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
            )));
        }
        match wire::decode_record(&payload) {
            Ok(r) => records.push(r),
            Err(e @ Error::UnsupportedVersion { .. }) => return Err(ScanError::Newer(e)),
            Err(e) => {
                return Ok(Scan::Corrupt(format!(
                    "frame {index} at byte {pos}: an intact payload that does not decode ({e})"
                )));
            }
        }
        pos += FRAME_HEADER_LEN as u64 + u64::from(n);
        index += 1;
    }
    Ok(Scan::Ok {
        records,
        end: pos,
        torn: None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::ballot::Ballot;

    /// A streamed checkpoint is byte for byte the frames `put_frame` makes
    /// (the format `scan_frames` reads), for a snapshot and the rest.
    #[test]
    fn streamed_frames_are_the_framed_records() {
        let records = vec![
            Record::Snapshot {
                slot: 300,
                data: std::sync::Arc::new((0..70_000u32).map(|i| (i * 7) as u8).collect()),
            },
            Record::Promise {
                ballot: Ballot { round: 9, node: 2 },
            },
            Record::Snapshot {
                slot: 0,
                data: std::sync::Arc::new(Vec::new()),
            },
            Record::Commit { commit: 301 },
        ];
        let mut framed = Vec::new();
        let mut streamed = Vec::new();
        let mut scratch = Vec::new();
        let mut total = 0;
        for r in &records {
            put_frame(r, &mut framed).unwrap();
            total += write_frame(r, &mut scratch, &mut streamed).unwrap();
        }
        assert!(streamed == framed, "the streamed bytes differ");
        assert_eq!(total, streamed.len() as u64);
        let Ok(Scan::Ok {
            records: back,
            torn: None,
            ..
        }) = scan_frames(&streamed[..], 0, streamed.len() as u64)
        else {
            panic!("the streamed frames do not scan");
        };
        assert_eq!(back, records);
    }
}
