//! Snapshots: a versioned binary format that saves a ring's membership and
//! restores it with identical placements (docs/snapshots.md).
//!
//! ```text
//! offset  size  field
//! 0       4     magic, the bytes "QKSN"
//! 4       2     format version, u16 LE (this build: 1)
//! 6       2     kind, u16 LE (HASH_RING = 1, KETAMA_RING = 2,
//!                 RENDEZVOUS = 3, MAGLEV = 4)
//! 8       4     body length B, u32 LE
//! 12      B     body, the kind's fields
//! 12+B    4     CRC-32 (IEEE, as zlib.crc32) of bytes 0..12+B, u32 LE
//! ```
//!
//! Integers are little-endian; a string is a u32 LE byte length then that
//! many bytes of UTF-8; an f64 is its IEEE-754 bits as a u64 LE. Only the membership is stored, in node-index order:
//! the points are derived from it by the placement's fixed rules, so a
//! restore rebuilds them (and a snapshot stays small and cannot disagree
//! with its own points).
//!
//! A new placement adds its kind by implementing [`Snapshot`] with the next
//! free kind number (`5` onwards) and listing it in [`kind_name`].
//!
//! Reading checks, in order: magic, version ([`Error::UnsupportedVersion`]),
//! length (truncated or trailing bytes), checksum, kind, then the body's
//! fields; every failure is an [`Error::Corrupt`] (or, for a valid snapshot
//! of another kind, [`Error::InvalidArgument`]), never a panic.

use super::{HashRing, KetamaCompat, KetamaRing, KetamaServer, Maglev, Rendezvous};
use crate::error::{Error, Result};

/// The first four bytes of every snapshot.
pub const MAGIC: [u8; 4] = *b"QKSN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Kind of a [`HashRing`] snapshot.
pub const KIND_HASH_RING: u16 = 1;
/// Kind of a [`KetamaRing`] snapshot.
pub const KIND_KETAMA_RING: u16 = 2;
/// Kind of a [`Rendezvous`] snapshot.
pub const KIND_RENDEZVOUS: u16 = 3;
/// Kind of a [`Maglev`] snapshot.
pub const KIND_MAGLEV: u16 = 4;
/// Restoring refuses rings of more points than this (about 800 MB of
/// continuum) whatever the limits say: a checksum guards against damage,
/// not against a crafted snapshot asking for unbounded memory.
pub const MAX_RESTORE_POINTS: u64 = 1 << 26;
/// The default [`DecodeLimits::max_points`]: 2^22 points (a 100-node ring
/// of weight-1 nodes has 16,000), restored in well under a second.
pub const DEFAULT_MAX_POINTS: u64 = 1 << 22;

/// A budget for decoding untrusted snapshot bytes. A 60-byte snapshot can
/// declare weights that ask for millions of points (once: 7.6 s and 1.8 GB
/// for 60 bytes), so the work a restore may do is bounded before any of it
/// is done; beyond it the restore fails with [`Error::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most points (a ring's continuum entries, a Maglev table's
    /// entries, a rendezvous ring's nodes) a restore may build; at most
    /// [`MAX_RESTORE_POINTS`] takes effect.
    pub max_points: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_points: DEFAULT_MAX_POINTS,
        }
    }
}

impl DecodeLimits {
    /// `LimitExceeded` if building `points` points is over budget
    /// (`what` names them for the message).
    fn check(&self, points: u64, what: &str) -> Result<()> {
        if points > self.max_points {
            return Err(Error::LimitExceeded(format!(
                "the snapshot asks for {points} {what}, more than the decode budget of {} \
                 (raise max_points to restore it)",
                self.max_points
            )));
        }
        Ok(())
    }
}

const HEADER_LEN: usize = 12;
const CRC_LEN: usize = 4;

/// The type name of a known kind, for messages.
pub fn kind_name(kind: u16) -> Option<&'static str> {
    match kind {
        KIND_HASH_RING => Some("HashRing"),
        KIND_KETAMA_RING => Some("KetamaRing"),
        KIND_RENDEZVOUS => Some("Rendezvous"),
        KIND_MAGLEV => Some("Maglev"),
        _ => None,
    }
}

/// A type that can be saved as a snapshot and restored from one.
pub trait Snapshot: Sized {
    /// The kind tag in the header.
    const KIND: u16;

    /// Appends the body (the kind's fields) to `out`.
    fn encode_body(&self, out: &mut Writer);

    /// Reads the body within `limits`; the reader checks that nothing is
    /// left over.
    fn decode_body(body: &mut Reader<'_>, limits: &DecodeLimits) -> Result<Self>;

    /// The complete snapshot: header, body, checksum.
    fn to_snapshot(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(256));
        w.0.extend_from_slice(&MAGIC);
        w.u16(FORMAT_VERSION);
        w.u16(Self::KIND);
        w.u32(0); // body length, patched below
        self.encode_body(&mut w);
        let body_len = w.0.len() - HEADER_LEN;
        let body_len = u32::try_from(body_len).expect("a snapshot body under 4 GiB");
        w.0[8..12].copy_from_slice(&body_len.to_le_bytes());
        let crc = crc32fast::hash(&w.0);
        w.u32(crc);
        w.0
    }

    /// Restores from a snapshot made by [`Self::to_snapshot`], within the
    /// default [`DecodeLimits`].
    fn from_snapshot(bytes: &[u8]) -> Result<Self> {
        Self::from_snapshot_with_limits(bytes, &DecodeLimits::default())
    }

    /// Restores from a snapshot, refusing one that would need more work
    /// than `limits` allow ([`Error::LimitExceeded`]) before doing it.
    fn from_snapshot_with_limits(bytes: &[u8], limits: &DecodeLimits) -> Result<Self> {
        let (kind, body) = open(bytes)?;
        if kind != Self::KIND {
            return Err(Error::invalid(format!(
                "the snapshot holds a {}, not a {}",
                kind_name(kind).unwrap_or("?"),
                kind_name(Self::KIND).unwrap_or("?")
            )));
        }
        let mut r = Reader { buf: body, pos: 0 };
        let value = Self::decode_body(&mut r, limits)?;
        if r.pos != body.len() {
            return Err(Error::corrupt(format!(
                "{} unread bytes at the end of the body",
                body.len() - r.pos
            )));
        }
        Ok(value)
    }
}

/// Checks a snapshot's framing (magic, version, length, checksum, known
/// kind) and returns its kind and body.
pub fn open(bytes: &[u8]) -> Result<(u16, &[u8])> {
    let n = bytes.len();
    if bytes[..n.min(4)] != MAGIC[..n.min(4)] {
        return Err(Error::corrupt("bad magic: not a quorumkit snapshot"));
    }
    if n >= 6 {
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
    }
    if n < HEADER_LEN + CRC_LEN {
        return Err(Error::corrupt(format!(
            "truncated: {n} bytes, a snapshot has at least {}",
            HEADER_LEN + CRC_LEN
        )));
    }
    let kind = u16::from_le_bytes([bytes[6], bytes[7]]);
    let body_len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as u64;
    let want = HEADER_LEN as u64 + body_len + CRC_LEN as u64;
    if (n as u64) < want {
        return Err(Error::corrupt(format!(
            "truncated: {n} bytes, the header announces {want}"
        )));
    }
    if (n as u64) > want {
        return Err(Error::corrupt(format!(
            "{} trailing bytes after the checksum",
            n as u64 - want
        )));
    }
    let end = n - CRC_LEN;
    let stored = u32::from_le_bytes(bytes[end..].try_into().expect("4 bytes"));
    let actual = crc32fast::hash(&bytes[..end]);
    if stored != actual {
        return Err(Error::corrupt(format!(
            "checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    if kind_name(kind).is_none() {
        return Err(Error::corrupt(format!("unknown snapshot kind {kind}")));
    }
    Ok((kind, &bytes[HEADER_LEN..end]))
}

/// Appends little-endian fields to a snapshot body.
pub struct Writer(Vec<u8>);

impl Writer {
    /// A u8.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// A u16, little-endian.
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A u32, little-endian.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A u64, little-endian.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An f64 as its IEEE-754 bits, little-endian.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// A length (element count) as a u32.
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("fewer than 2^32 elements"));
    }
    /// A string: u32 byte length, then its UTF-8 bytes.
    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads little-endian fields from a snapshot body; running out is
/// [`Error::Corrupt`].
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(Error::corrupt(format!(
                "body ends inside {what} (offset {})",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// A u8.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    /// A u16.
    pub fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2"),
        ))
    }
    /// A u32.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4"),
        ))
    }
    /// A u64.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8"),
        ))
    }
    /// An f64 from its IEEE-754 bits (any bits: the caller validates).
    pub fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// A string.
    pub fn str(&mut self, what: &str) -> Result<&'a str> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map_err(|e| Error::corrupt(format!("{what} is not valid UTF-8: {e}")))
    }
    /// An element count, checked against the bytes left (each element
    /// takes at least `min_size` bytes) so a corrupt count cannot make the
    /// decoder reserve unbounded memory.
    pub fn count(&mut self, what: &str, min_size: usize) -> Result<usize> {
        let n = self.u32(what)? as usize;
        let left = self.buf.len() - self.pos;
        if n.saturating_mul(min_size) > left {
            return Err(Error::corrupt(format!(
                "{what} is {n} but only {left} bytes follow"
            )));
        }
        Ok(n)
    }
}

/// Rebuilding from decoded fields failed: in a snapshot that passed its
/// checksum, values no encoder writes (zero weight, duplicate names...).
fn invalid_content(e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::corrupt(m),
        Error::NodeExists(name) => Error::corrupt(format!("duplicate node name {name:?}")),
        other => other,
    }
}

/// Body: vnodes u32, node count u32, then per node in index order its
/// name (string) and weight u32.
impl Snapshot for HashRing {
    const KIND: u16 = KIND_HASH_RING;

    fn encode_body(&self, out: &mut Writer) {
        out.u32(self.vnodes());
        out.len(super::Placement::len(self));
        for (name, weight) in self.iter() {
            out.str(name);
            out.u32(weight);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &DecodeLimits) -> Result<Self> {
        let vnodes = r.u32("vnodes")?;
        let n = r.count("node count", 8)?;
        let mut nodes = Vec::with_capacity(n);
        let mut points = 0u64;
        for i in 0..n {
            let name = r.str(&format!("node {i} name"))?;
            let weight = r.u32(&format!("node {i} weight"))?;
            points += vnodes as u64 * weight as u64;
            nodes.push((name, weight));
        }
        if points > MAX_RESTORE_POINTS {
            return Err(Error::corrupt(format!(
                "the ring would have {points} points, more than the restore limit {MAX_RESTORE_POINTS}"
            )));
        }
        limits.check(points, "ring points")?;
        HashRing::from_nodes(vnodes, nodes).map_err(invalid_content)
    }
}

/// Body: compat u8 (0 libmemcached, 1 uhashring), server count u32, then
/// per server in index order its name (string), host (string), port u16
/// and weight u32.
impl Snapshot for KetamaRing {
    const KIND: u16 = KIND_KETAMA_RING;

    fn encode_body(&self, out: &mut Writer) {
        out.u8(match self.compat() {
            KetamaCompat::Libmemcached => 0,
            KetamaCompat::Uhashring => 1,
        });
        out.len(self.servers().len());
        for s in self.servers() {
            out.str(&s.name);
            out.str(&s.host);
            out.u16(s.port);
            out.u32(s.weight);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &DecodeLimits) -> Result<Self> {
        let compat = match r.u8("compat")? {
            0 => KetamaCompat::Libmemcached,
            1 => KetamaCompat::Uhashring,
            c => return Err(Error::corrupt(format!("unknown ketama compat {c}"))),
        };
        let n = r.count("server count", 14)?;
        // Ketama gives 160 points per server whatever the weights.
        limits.check(160 * n as u64, "ring points")?;
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            servers.push(KetamaServer {
                name: r.str(&format!("server {i} name"))?.to_owned(),
                host: r.str(&format!("server {i} host"))?.to_owned(),
                port: r.u16(&format!("server {i} port"))?,
                weight: r.u32(&format!("server {i} weight"))?,
            });
        }
        // Ketama gives about 160 points per server whatever the weights.
        KetamaRing::new(servers, compat).map_err(invalid_content)
    }
}

/// Body: node count u32, then per node in index order its name (string)
/// and weight f64. The scores are derived from names and weights.
impl Snapshot for Rendezvous {
    const KIND: u16 = KIND_RENDEZVOUS;

    fn encode_body(&self, out: &mut Writer) {
        out.len(super::Placement::len(self));
        for (name, weight) in self.iter() {
            out.str(name);
            out.f64(weight);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &DecodeLimits) -> Result<Self> {
        let n = r.count("node count", 12)?;
        limits.check(n as u64, "nodes")?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let name = r.str(&format!("node {i} name"))?;
            let weight = r.f64(&format!("node {i} weight"))?;
            nodes.push((name, weight));
        }
        // Non-finite, zero or negative weights fail here as Corrupt.
        Rendezvous::from_nodes(nodes).map_err(invalid_content)
    }
}

/// Body: table size u32, backend count u32, then per backend in index
/// order its name (string) and weight u32. The table is rebuilt: it is a
/// function of these fields (docs/rings.md).
impl Snapshot for Maglev {
    const KIND: u16 = KIND_MAGLEV;

    fn encode_body(&self, out: &mut Writer) {
        out.u32(self.table_size());
        out.len(super::Placement::len(self));
        for (name, weight) in self.iter() {
            out.str(name);
            out.u32(weight);
        }
    }

    fn decode_body(r: &mut Reader<'_>, limits: &DecodeLimits) -> Result<Self> {
        let size = r.u32("table size")?;
        // Sizes no encoder writes stay Corrupt (below); the budget is for
        // valid ones.
        if u64::from(size) <= u64::from(super::maglev::MAX_TABLE_SIZE) {
            limits.check(u64::from(size), "Maglev table entries")?;
        }
        let n = r.count("backend count", 8)?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let name = r.str(&format!("backend {i} name"))?;
            let weight = r.u32(&format!("backend {i} weight"))?;
            nodes.push((name, weight));
        }
        // A table size that is not prime or above MAX_TABLE_SIZE (which
        // bounds the memory a restore can ask for), zero weights and
        // weights beyond the table fail here as Corrupt.
        Maglev::from_nodes(size, nodes).map_err(invalid_content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Placement;

    fn ring() -> HashRing {
        HashRing::from_nodes(16, [("a", 1), ("b", 2), ("ü", 1)]).unwrap()
    }

    /// A snapshot with a fresh checksum over `header + body`.
    fn framed(version: u16, kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&version.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    fn corrupt<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Corrupt(m)) => m,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    /// A 60-byte HashRing snapshot that declares 2^26 points (160 vnodes
    /// × weight 419,430 for one node): it once took 7.6 s and 1.8 GB.
    fn amplifying_snapshot() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&160u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(b"a");
        body.extend_from_slice(&419_430u32.to_le_bytes());
        framed(1, 1, &body)
    }

    #[test]
    fn a_snapshot_asking_for_too_much_work_is_refused_before_doing_it() {
        let s = amplifying_snapshot();
        assert!(s.len() <= 60, "{}", s.len());
        let t = std::time::Instant::now();
        match HashRing::from_snapshot(&s) {
            Err(Error::LimitExceeded(m)) => {
                assert!(m.contains("67108800") && m.contains("max_points"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        // Refused before building anything (a build would take seconds).
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        // Within a raised budget it is a valid snapshot (checked on a
        // smaller one to keep the test fast).
        let small = HashRing::from_nodes(160, [("a", 100)])
            .unwrap()
            .to_snapshot();
        let tight = DecodeLimits { max_points: 15_999 };
        assert!(matches!(
            HashRing::from_snapshot_with_limits(&small, &tight),
            Err(Error::LimitExceeded(_))
        ));
        let exact = DecodeLimits { max_points: 16_000 };
        assert_eq!(
            HashRing::from_snapshot_with_limits(&small, &exact)
                .unwrap()
                .continuum()
                .points()
                .len(),
            16_000
        );
        // Every kind has a budget.
        let tiny = DecodeLimits { max_points: 10 };
        let k = KetamaRing::new(
            vec![KetamaServer::parse("10.0.0.1:11211", 1).unwrap()],
            KetamaCompat::Libmemcached,
        )
        .unwrap();
        assert!(matches!(
            KetamaRing::from_snapshot_with_limits(&k.to_snapshot(), &tiny),
            Err(Error::LimitExceeded(_))
        ));
        let m = Maglev::from_nodes(13, [("a", 1)]).unwrap();
        assert!(matches!(
            Maglev::from_snapshot_with_limits(&m.to_snapshot(), &tiny),
            Err(Error::LimitExceeded(_))
        ));
        let h = Rendezvous::from_nodes((0..11).map(|i| (format!("n{i}"), 1.0))).unwrap();
        assert!(matches!(
            Rendezvous::from_snapshot_with_limits(&h.to_snapshot(), &tiny),
            Err(Error::LimitExceeded(_))
        ));
        // The default budget loads ordinary rings.
        assert_eq!(DecodeLimits::default().max_points, 1 << 22);
        HashRing::from_snapshot(&ring().to_snapshot()).unwrap();
    }

    #[test]
    fn layout_is_as_documented() {
        let r = HashRing::from_nodes(7, [("ab", 3)]).unwrap();
        let s = r.to_snapshot();
        let mut body = Vec::new();
        body.extend_from_slice(&7u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(b"ab");
        body.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(s, framed(1, 1, &body));
        assert_eq!(&s[..4], b"QKSN");
    }

    #[test]
    fn round_trip_keeps_order_and_placements() {
        let r = ring();
        let back = HashRing::from_snapshot(&r.to_snapshot()).unwrap();
        assert_eq!(back.node_names(), r.node_names());
        assert_eq!(back.vnodes(), 16);
        assert_eq!(back.continuum().points(), r.continuum().points());
        assert_eq!(back.continuum().owners(), r.continuum().owners());
        let k = KetamaRing::new(
            vec![
                KetamaServer::parse("10.0.0.1:11211", 2).unwrap(),
                KetamaServer::parse("[::1]:11300", 1).unwrap(),
            ],
            KetamaCompat::Uhashring,
        )
        .unwrap();
        let kb = KetamaRing::from_snapshot(&k.to_snapshot()).unwrap();
        assert_eq!(kb.servers(), k.servers());
        assert_eq!(kb.compat(), KetamaCompat::Uhashring);
        assert_eq!(kb.points(), k.points());
        // Empty rings too.
        let e = HashRing::from_snapshot(&HashRing::new().to_snapshot()).unwrap();
        assert!(e.is_empty());
    }

    #[test]
    fn framing_errors() {
        let good = ring().to_snapshot();
        assert!(corrupt(HashRing::from_snapshot(b"")).contains("truncated"));
        assert!(corrupt(HashRing::from_snapshot(b"QK")).contains("truncated"));
        assert!(corrupt(HashRing::from_snapshot(b"XKSN")).contains("magic"));
        let mut v = good.clone();
        v[4] = 2;
        assert_eq!(
            HashRing::from_snapshot(&v).unwrap_err(),
            Error::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        );
        let mut v = good.clone();
        v.push(0);
        assert!(corrupt(HashRing::from_snapshot(&v)).contains("trailing"));
        let mut v = good.clone();
        let last = v.len() - 6;
        v[last] ^= 1;
        assert!(corrupt(HashRing::from_snapshot(&v)).contains("checksum"));
        assert!(corrupt(HashRing::from_snapshot(&framed(1, 77, &[]))).contains("kind 77"));
        // A valid snapshot of the other kind.
        let k = KetamaRing::new(vec![], KetamaCompat::Libmemcached).unwrap();
        assert!(matches!(
            HashRing::from_snapshot(&k.to_snapshot()),
            Err(Error::InvalidArgument(_))
        ));
    }

    fn body(vnodes: u32, nodes: &[(&[u8], u32)]) -> Vec<u8> {
        let mut b = vnodes.to_le_bytes().to_vec();
        b.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
        for (name, w) in nodes {
            b.extend_from_slice(&(name.len() as u32).to_le_bytes());
            b.extend_from_slice(name);
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }

    #[test]
    fn content_errors() {
        let restore = |b: Vec<u8>| HashRing::from_snapshot(&framed(1, 1, &b));
        assert!(restore(body(4, &[(b"a", 1)])).is_ok());
        assert!(corrupt(restore(body(4, &[(b"a", 1), (b"a", 2)]))).contains("duplicate"));
        assert!(corrupt(restore(body(4, &[(b"a", 0)]))).contains("weight"));
        assert!(corrupt(restore(body(0, &[(b"a", 1)]))).contains("vnodes"));
        assert!(corrupt(restore(body(4, &[(b"\xff", 1)]))).contains("UTF-8"));
        assert!(corrupt(restore(body(4, &[(b"", 1)]))).contains("empty"));
        assert!(
            corrupt(restore(body(
                1 << 20,
                &[(b"a", 16), (b"b", 16), (b"c", 16), (b"d", 16), (b"e", 1)]
            )))
            .contains("limit")
        );
        let mut b = body(4, &[(b"a", 1)]);
        b.push(9);
        assert!(corrupt(restore(b)).contains("unread"));
        let mut b = body(4, &[]);
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(corrupt(restore(b)).contains("node count"));
        let b = body(4, &[(b"abc", 1)]);
        assert!(corrupt(restore(b[..b.len() - 1].to_vec())).contains("weight"));
    }

    #[test]
    fn rendezvous_layout_round_trip_and_content_errors() {
        let r = Rendezvous::from_nodes([("b", 2.5), ("a", 1.0)]).unwrap();
        let s = r.to_snapshot();
        let mut body = 2u32.to_le_bytes().to_vec();
        for (name, w) in [(b"b", 2.5f64), (b"a", 1.0)] {
            body.extend_from_slice(&1u32.to_le_bytes());
            body.extend_from_slice(name);
            body.extend_from_slice(&w.to_bits().to_le_bytes());
        }
        assert_eq!(s, framed(1, 3, &body));
        let back = Rendezvous::from_snapshot(&s).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            r.iter().collect::<Vec<_>>()
        );
        for k in 0..200u32 {
            let k = k.to_le_bytes();
            assert_eq!(back.locate(&k), r.locate(&k));
        }
        let one = |w: f64| {
            let mut b = 1u32.to_le_bytes().to_vec();
            b.extend_from_slice(&1u32.to_le_bytes());
            b.push(b'a');
            b.extend_from_slice(&w.to_bits().to_le_bytes());
            Rendezvous::from_snapshot(&framed(1, 3, &b))
        };
        assert!(one(0.25).is_ok());
        for w in [f64::NAN, -1.0, 0.0, -0.0, f64::INFINITY] {
            assert!(corrupt(one(w)).contains("weight"), "{w}");
        }
        // Wrong kind both ways.
        assert!(matches!(
            HashRing::from_snapshot(&s),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            Rendezvous::from_snapshot(&ring().to_snapshot()),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn maglev_layout_round_trip_and_content_errors() {
        let m = Maglev::from_nodes(13, [("y", 2), ("x", 1)]).unwrap();
        let s = m.to_snapshot();
        let body = |size: u32, nodes: &[(&[u8], u32)]| {
            let mut b = size.to_le_bytes().to_vec();
            b.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
            for (name, w) in nodes {
                b.extend_from_slice(&(name.len() as u32).to_le_bytes());
                b.extend_from_slice(name);
                b.extend_from_slice(&w.to_le_bytes());
            }
            b
        };
        assert_eq!(s, framed(1, 4, &body(13, &[(b"y", 2), (b"x", 1)])));
        let back = Maglev::from_snapshot(&s).unwrap();
        assert_eq!(back.table(), m.table());
        assert_eq!(back.table_size(), 13);
        let empty = Maglev::with_table_size(7).unwrap();
        let e = Maglev::from_snapshot(&empty.to_snapshot()).unwrap();
        assert!(e.is_empty() && e.table_size() == 7);
        let restore = |b: Vec<u8>| Maglev::from_snapshot(&framed(1, 4, &b));
        assert!(corrupt(restore(body(15, &[(b"a", 1)]))).contains("prime"));
        assert!(corrupt(restore(body(0, &[]))).contains("prime"));
        assert!(corrupt(restore(body((1 << 26) + 15, &[]))).contains("limit"));
        assert!(corrupt(restore(body(13, &[(b"a", 0)]))).contains("weight"));
        assert!(corrupt(restore(body(13, &[(b"a", 14)]))).contains("weights sum"));
        assert!(corrupt(restore(body(13, &[(b"a", 1), (b"a", 1)]))).contains("duplicate"));
        assert!(matches!(
            Rendezvous::from_snapshot(&s),
            Err(Error::InvalidArgument(_))
        ));
    }
}
