//! Frames on a replica's TCP connections: a 4-byte big-endian length, then
//! that many bytes (a one-byte kind and its payload). A frame longer than
//! the reader's limit, or a connection that ends inside one, is an error
//! that closes the connection; nothing else on the replica changes.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

/// The largest frame a replica accepts by default (16 MiB): more than any
/// batch of commands a client may send, far less than memory.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Writes one frame of `kind` with `payload` (one `write_all`, so small
/// frames leave in one segment).
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    push_frame(&mut buf, kind, payload);
    w.write_all(&buf)
}

/// Appends one frame to `buf` (to batch several into one write).
pub fn push_frame(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len() + 1).expect("frame length fits in u32");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
}

/// Reads one frame: `(kind, payload)`. `Ok(None)` when the peer closed the
/// connection between frames.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_error("read", e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(Error::corrupt("net: empty frame"));
    }
    if len > max {
        return Err(Error::LimitExceeded(format!(
            "net: a frame of {len} bytes exceeds the limit of {max}"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| io_error("read", e))?;
    let kind = body.remove(0);
    Ok(Some((kind, body)))
}

/// An I/O failure on a connection, as the crate's error.
pub(crate) fn io_error(what: &str, e: io::Error) -> Error {
    Error::BackendUnavailable(format!("net: {what}: {e}"))
}

/// A cursor over a payload, for the message codecs of this module.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::corrupt("net: truncated message"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| Error::corrupt("net: a string is not UTF-8"))
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().unwrap())
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::corrupt("net: trailing bytes after a message"))
        }
    }
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, 7, b"hello").unwrap();
        push_frame(&mut buf, 9, b"");
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r, 100).unwrap(),
            Some((7, b"hello".to_vec()))
        );
        assert_eq!(read_frame(&mut r, 100).unwrap(), Some((9, vec![])));
        assert_eq!(read_frame(&mut r, 100).unwrap(), None);
        // Oversized: refused before anything is allocated.
        let mut r = &[0xff, 0xff, 0xff, 0xff, 1][..];
        assert!(matches!(
            read_frame(&mut r, 100),
            Err(Error::LimitExceeded(_))
        ));
        // Empty, and cut inside the body.
        assert!(matches!(
            read_frame(&mut &[0, 0, 0, 0][..], 100),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            read_frame(&mut &[0, 0, 0, 9, 1, 2][..], 100),
            Err(Error::BackendUnavailable(_))
        ));
    }

    #[test]
    fn reader_refuses_truncated_fields() {
        let mut out = Vec::new();
        put_bytes(&mut out, b"abc");
        let mut r = Reader::new(&out);
        assert_eq!(r.bytes().unwrap(), b"abc");
        r.finish().unwrap();
        let mut r = Reader::new(&out[..5]);
        assert!(r.bytes().is_err());
        let mut r = Reader::new(&[0, 0, 0]);
        assert!(r.u32().is_err());
    }
}
