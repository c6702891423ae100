//! [`FileStorage`]: a node's records in an append-only, checksummed file
//! (`docs/WIRE.md`, "Record file").
//!
//! ```text
//! offset  size  field
//! 0       4     magic, the bytes "QKPX"
//! 4       2     file format version, u16 LE (this build: 1)
//! 6       ...   frames, one per record:
//!                 4  payload length N, u32 LE
//!                 4  CRC-32 (IEEE, as zlib.crc32) of the payload, u32 LE
//!                 N  payload: the record in the wire format (wire::encode_record)
//! ```
//!
//! Appends are buffered in memory; [`sync`](Storage::sync) writes them and
//! calls `fsync` (`File::sync_data`), so a crash loses at most the records
//! appended since the last sync — and a crash during a sync can leave a
//! *torn tail*: a short frame, a garbage length or a checksum mismatch.
//!
//! Recovery (in [`open`](FileStorage::open), and again in
//! [`load`](Storage::load)) reads frames from the start and stops at the
//! first bad one: a frame header cut short, a length past the end of the
//! file, a checksum mismatch, or a payload that does not decode. Everything
//! from there on is discarded and the file is truncated there, so later
//! appends follow valid data and no record is ever half applied. A file
//! cannot tell a torn tail from damage in the middle, so damage in the middle
//! also ends the log there; that is sound because records only become
//! durable at a sync, in order, so only the unsynced tail can be torn.
//!
//! What recovery refuses instead of repairing: a file whose header is not
//! ours ([`Error::Corrupt`]; nothing is truncated), and a header or an
//! intact (checksummed) record of a newer format
//! ([`Error::UnsupportedVersion`]). I/O errors are [`Error::Storage`],
//! naming the path and the OS error; after one the store refuses every
//! later call, since after a failed write or `fsync` nothing is known about
//! what reached the disk.
//!
//! One `FileStorage` at a time may use a file (no lock is taken).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::storage::{Record, Storage};
use super::wire;
use crate::error::{Error, Result};

/// The first four bytes of a record file.
pub const FILE_MAGIC: [u8; 4] = *b"QKPX";
/// The record file format version this build writes and reads.
pub const FILE_FORMAT_VERSION: u16 = 1;
/// Bytes of the file header (magic and version).
pub const FILE_HEADER_LEN: u64 = 6;
/// Bytes of a frame's header (length and checksum).
pub const FRAME_HEADER_LEN: usize = 8;

/// Buffered appends beyond this are written out (without `fsync`) at once,
/// so a long run of appends without a sync does not grow memory unbounded.
const WRITE_OUT_AT: usize = 1 << 20;

fn header() -> [u8; FILE_HEADER_LEN as usize] {
    let v = FILE_FORMAT_VERSION.to_le_bytes();
    let m = FILE_MAGIC;
    [m[0], m[1], m[2], m[3], v[0], v[1]]
}

/// A [`Storage`] in an append-only file of checksummed records (see the
/// [module docs](self) for the format and the recovery rules).
///
/// Dropping it without a [`sync`](Storage::sync) discards the records
/// appended since the last one, as a crash would.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    file: File,
    /// Framed records appended but not yet written to the file.
    buf: Vec<u8>,
    /// Length of the file's valid data (header and whole frames written).
    written: u64,
    /// Bytes were written since the last `fsync`.
    dirty: bool,
    /// Records in the file plus those buffered.
    records: u64,
    syncs: u64,
    /// Bytes recovery cut off a torn or corrupt tail, in total.
    discarded: u64,
    /// Why recovery last cut the file, if it did.
    last_discard: Option<String>,
    /// The records recovery read in `open`, handed out by the first `load`
    /// if nothing was appended in between.
    recovered: Option<Vec<Record>>,
    /// Set by the first I/O error; every later call fails with it.
    failed: Option<String>,
}

impl FileStorage {
    /// Opens the record file at `path`, creating it (with its header, made
    /// durable) if it does not exist or is empty, and recovers it: a torn
    /// or corrupt tail is cut off (see the module docs).
    ///
    /// Errors: [`Error::Storage`] for I/O errors (a missing directory, a
    /// path that is a directory, no permission), [`Error::Corrupt`] if the
    /// file is not a record file, [`Error::UnsupportedVersion`] if it is one
    /// of a newer format.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, &e))?;
        let mut s = FileStorage {
            path,
            file,
            buf: Vec::new(),
            written: 0,
            dirty: false,
            records: 0,
            syncs: 0,
            discarded: 0,
            last_discard: None,
            recovered: None,
            failed: None,
        };
        s.check_header()?;
        let records = s.recover()?;
        s.recovered = Some(records);
        Ok(s)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
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

    /// Bytes recovery has cut off torn or corrupt tails since `open`.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// Why recovery last cut off a tail (offset and cause), if it did.
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
        let want = header();
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
        if len < FILE_HEADER_LEN {
            // New, or torn while the header was being written (so it holds
            // no records): write the header and make the file durable.
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
        let version = u16::from_le_bytes([have[4], have[5]]);
        if version != FILE_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FILE_FORMAT_VERSION,
            });
        }
        self.written = FILE_HEADER_LEN;
        Ok(())
    }

    /// Reads every frame, stops at the first bad one and truncates the file
    /// there. Sets `written` and `records`; the buffer must be empty.
    fn recover(&mut self) -> Result<Vec<Record>> {
        debug_assert!(self.buf.is_empty());
        let len = self
            .file
            .metadata()
            .map_err(|e| self.fail("cannot stat", &e))?
            .len();
        let mut records = Vec::new();
        let mut pos = FILE_HEADER_LEN;
        let mut bad = None;
        let mut payload = Vec::new();
        {
            let mut file = &self.file;
            if let Err(e) = file.seek(SeekFrom::Start(pos)) {
                return Err(self.fail("cannot seek in", &e));
            }
            let mut rd = BufReader::with_capacity(1 << 16, file);
            while pos < len {
                let left = len - pos;
                if left < FRAME_HEADER_LEN as u64 {
                    bad = Some(format!(
                        "a frame header cut short ({left} of {FRAME_HEADER_LEN} bytes)"
                    ));
                    break;
                }
                let mut head = [0u8; FRAME_HEADER_LEN];
                if let Err(e) = rd.read_exact(&mut head) {
                    return Err(self.fail("cannot read", &e));
                }
                let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                let room = left - FRAME_HEADER_LEN as u64;
                if u64::from(n) > room {
                    bad = Some(format!(
                        "a frame of {n} bytes with only {room} bytes left in the file"
                    ));
                    break;
                }
                payload.resize(n as usize, 0);
                if let Err(e) = rd.read_exact(&mut payload) {
                    return Err(self.fail("cannot read", &e));
                }
                let actual = crc32fast::hash(&payload);
                if actual != crc {
                    bad = Some(format!(
                        "a checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
                    ));
                    break;
                }
                match wire::decode_record(&payload) {
                    Ok(r) => records.push(r),
                    // Intact but newer: not damage, so never cut it off.
                    Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                    Err(e) => {
                        bad = Some(format!("a record that does not decode ({e})"));
                        break;
                    }
                }
                pos += FRAME_HEADER_LEN as u64 + u64::from(n);
            }
        }
        if let Some(why) = bad {
            self.file
                .set_len(pos)
                .and_then(|_| self.file.sync_data())
                .map_err(|e| self.fail("cannot truncate the torn tail of", &e))?;
            self.discarded += len - pos;
            self.last_discard = Some(format!("cut {} bytes at offset {pos}: {why}", len - pos));
        }
        self.written = pos;
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
}

impl Storage for FileStorage {
    /// Frames the record into the buffer (written out early, without
    /// `fsync`, once the buffer passes 1 MiB). A record whose encoding
    /// exceeds 4 GiB − 1 bytes is an [`Error::InvalidArgument`].
    fn append(&mut self, record: &Record) -> Result<()> {
        self.check_failed()?;
        self.recovered = None;
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
        wire::encode_record(record, &mut self.buf);
        let payload = &self.buf[start + FRAME_HEADER_LEN..];
        let Ok(n) = u32::try_from(payload.len()) else {
            let n = payload.len();
            self.buf.truncate(start);
            return Err(Error::invalid(format!(
                "a record of {n} bytes does not fit a frame (at most {} bytes)",
                u32::MAX
            )));
        };
        let crc = crc32fast::hash(payload);
        self.buf[start..start + 4].copy_from_slice(&n.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.records += 1;
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
        self.recover()
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
