//! The bytes of record files (`docs/WIRE.md`, "Record file"): their
//! header, the frames that hold records, and the reader that applies the
//! recovery rules. Pure over readers and writers, so the rules are tested
//! on bytes alone; [`FileStorage`](super::FileStorage) decides what to do
//! with the files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::FileIdentity;
use crate::error::{Error, Result};
use crate::paxos::storage::Record;
use crate::paxos::wire;

/// The first four bytes of a record file.
pub const FILE_MAGIC: [u8; 4] = *b"QKPX";
/// The record file format version this build writes (it also reads
/// format 2, the header of a log file written before segments).
pub const FILE_FORMAT_VERSION: u16 = 3;
/// Bytes of the file header this build writes (magic, version, identity,
/// kind, sequence number, checksum).
pub const FILE_HEADER_LEN: u64 = 31;
/// Bytes of a format-2 header (magic, version, identity, checksum).
const FORMAT_2_HEADER_LEN: u64 = 22;
/// Bytes of a frame's header (length, payload checksum, header checksum).
pub const FRAME_HEADER_LEN: usize = 12;

/// Which of a log's files a record file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The file at the log's path: a checkpoint, or the log's first
    /// records; its sequence number is the first segment that follows it.
    Log,
    /// A segment of records appended after the log file and the segments
    /// before it; its sequence number is its own.
    Segment,
}

/// What a whole header says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    /// Where the frames start.
    pub len: u64,
    pub identity: FileIdentity,
    pub kind: Kind,
    pub seq: u64,
}

/// The header of a new record file.
pub(super) fn header(id: FileIdentity, kind: Kind, seq: u64) -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[0..4].copy_from_slice(&FILE_MAGIC);
    h[4..6].copy_from_slice(&FILE_FORMAT_VERSION.to_le_bytes());
    h[6..14].copy_from_slice(&id.cluster_id.to_le_bytes());
    h[14..18].copy_from_slice(&id.replica_id.to_le_bytes());
    h[18] = match kind {
        Kind::Log => 0,
        Kind::Segment => 1,
    };
    h[19..27].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..27]);
    h[27..31].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Parses the first bytes of the file at `path` (as many as a header
/// holds, fewer if the file is shorter). `Ok(None)`: the bytes are fewer
/// than a whole header of their version. Refuses a file that does not
/// start with the magic ([`Error::Corrupt`]), a version this build does
/// not read ([`Error::UnsupportedVersion`]), a header whose checksum does
/// not match or whose kind is unknown ([`Error::StorageCorrupt`]).
pub(super) fn parse_header(have: &[u8], path: &Path) -> Result<Option<Header>> {
    let magic_len = have.len().min(FILE_MAGIC.len());
    if have[..magic_len] != FILE_MAGIC[..magic_len] {
        return Err(Error::corrupt(format!(
            "{} is not a record file: it starts with {:02x?}, not the magic \"QKPX\"",
            path.display(),
            &have[..magic_len]
        )));
    }
    if have.len() < 6 {
        return Ok(None);
    }
    let version = u16::from_le_bytes([have[4], have[5]]);
    let len = match version {
        2 => FORMAT_2_HEADER_LEN,
        FILE_FORMAT_VERSION => FILE_HEADER_LEN,
        found => {
            return Err(Error::UnsupportedVersion {
                found,
                supported: FILE_FORMAT_VERSION,
            });
        }
    };
    if (have.len() as u64) < len {
        return Ok(None);
    }
    let have = &have[..len as usize];
    let body = &have[..have.len() - 4];
    let stored = u32::from_le_bytes(have[have.len() - 4..].try_into().expect("4 bytes"));
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(Error::StorageCorrupt(format!(
            "{}: the file header's checksum does not match (stored {stored:#010x}, computed {actual:#010x}); the files were left untouched (see docs/PAXOS-STORAGE.md)",
            path.display()
        )));
    }
    let identity = FileIdentity {
        cluster_id: u64::from_le_bytes(have[6..14].try_into().expect("8 bytes")),
        replica_id: u32::from_le_bytes(have[14..18].try_into().expect("4 bytes")),
    };
    if version == 2 {
        // A log file of the format before segments: none follow it yet.
        return Ok(Some(Header {
            len,
            identity,
            kind: Kind::Log,
            seq: 1,
        }));
    }
    let kind = match have[18] {
        0 => Kind::Log,
        1 => Kind::Segment,
        k => {
            return Err(Error::StorageCorrupt(format!(
                "{}: the file header names an unknown kind of file ({k}); the files were left untouched (see docs/PAXOS-STORAGE.md)",
                path.display()
            )));
        }
    };
    Ok(Some(Header {
        len,
        identity,
        kind,
        seq: u64::from_le_bytes(have[19..27].try_into().expect("8 bytes")),
    }))
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

/// Appends `record` to `buf` as one frame.
pub(super) fn put_frame(record: &Record, buf: &mut Vec<u8>) -> Result<()> {
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

/// Refuses a checkpoint with a record too large for a frame, before any
/// file is touched.
pub(super) fn check_frames(checkpoint: &[Record]) -> Result<()> {
    checkpoint
        .iter()
        .try_for_each(|r| frame_payload_len(r).map(|_| ()))
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

/// Writes a record file holding `checkpoint` after `head` at `tmp`
/// (created, locked, synced) and returns it with its length, or stops
/// with an error once `cancel` is set. The frames are streamed: a
/// snapshot's bytes are not copied into a buffer first, so compacting a
/// large state needs no second copy of it in memory.
pub(super) fn write_checkpoint(
    tmp: &Path,
    head: &[u8],
    checkpoint: &[Record],
    cancel: &AtomicBool,
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
    if cancel.load(Ordering::Relaxed) {
        return Err(std::io::Error::other("compaction abandoned"));
    }
    f.sync_all()?;
    Ok((f, len))
}

/// A writer that gives up once `cancel` is set, checked every MiB at most.
struct Cancellable<'a> {
    inner: File,
    cancel: &'a AtomicBool,
}

impl Write for Cancellable<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("compaction abandoned"));
        }
        self.inner.write(&buf[..buf.len().min(1 << 20)])
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What reading the frames of a file found.
pub(super) enum Scan {
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

pub(super) enum ScanError {
    Io(std::io::Error),
    /// An intact record of a newer format: not damage, never cut off.
    Newer(Error),
}

/// Reads the frames of a record file from `rd`, positioned at byte `pos`
/// of a file of `len` bytes, applying the recovery rules of the module
/// docs.
pub(super) fn scan_frames(
    mut rd: impl Read,
    mut pos: u64,
    len: u64,
) -> std::result::Result<Scan, ScanError> {
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

    /// A format-2 header (a log file from before segments) reads as a log
    /// file that no segment follows yet; a format-3 one as written.
    #[test]
    fn headers_of_both_formats_parse() {
        let id = FileIdentity::new(7, 1);
        let mut v2 =
            Vec::from(&b"QKPX\x02\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"[..]);
        let crc = crc32fast::hash(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        let h = parse_header(&v2, Path::new("x")).unwrap().unwrap();
        assert_eq!((h.len, h.identity, h.kind, h.seq), (22, id, Kind::Log, 1));
        let v3 = header(id, Kind::Segment, 41);
        let h = parse_header(&v3, Path::new("x")).unwrap().unwrap();
        assert_eq!(
            (h.len, h.identity, h.kind, h.seq),
            (31, id, Kind::Segment, 41)
        );
        assert!(parse_header(&v3[..30], Path::new("x")).unwrap().is_none());
        let mut bad = v3;
        bad[18] = 2;
        let crc = crc32fast::hash(&bad[..27]);
        bad[27..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            parse_header(&bad, Path::new("x")),
            Err(Error::StorageCorrupt(_))
        ));
    }
}
